# AdaTAD on THUMOS-14: VideoMAE-S with TIA adapters after every block, 768 snippets (one frame every 4) at 160x160.
# The seed's model (avg mAP 69.03); OpenTAD's configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py.
# Only what differs from the schema defaults (adatad/config.py, OpenTAD's own defaults) is written here. Unchanged,
# from there: snippet stride 4, sliding windows with overlap 0.5 for validation (OpenTAD evaluates mAP on its test
# set during training) and testing, global batch 2 with 2 loader workers, grad clip 1, AdamW lr 1e-4 wd 0.05 with a
# 5-epoch warmup + cosine schedule to 100 epochs, the ActionFormer projection (512 wide, arch 2-2-5, 4 heads, path
# drop 0.1), 6 FPN levels, the head, pre-NMS top 2000 above 0.001, checkpoint and validate every 2 epochs.
_base_ = ["../../_base_/datasets/thumos-14/e2e_videos.py"]

window_size = 768
dataset = dict(
    window_size=window_size,
    train=dict(trunc_thresh=0.75),  # crop_ratio [0.9, 1.0] for videos shorter than a window
    transform=dict(
        # short side 182, RandomResizedCrop (mmaction defaults), 160x160, flip 0.5, ImgAug "default", ColorJitter
        train=dict(resize_short=182, crop_size=160, imgaug=True, color_jitter=True),
        test=dict(resize_short=160, crop_size=160),
    ),
)

model = dict(
    backbone=dict(
        embed_dims=384,
        num_heads=6,  # depth 12, mlp ratio 4, patch 16, 16-frame chunks, tubelet 2: schema defaults
        drop_path_rate=0.1,
        adapter_index=list(range(12)),
        with_cp=True,  # activation checkpointing
        pretrained="pretrained/vit-small-p16_videomae-k400-pre_16x4x1_kinetics-400_my.pth",
    ),
    projection=dict(in_channels=384, n_mha_win_size=-1),  # global attention
)

solver = dict(amp=True, fp16_compress=True, static_graph=True, ema=True)  # amp: fp16 autocast + GradScaler

optimizer = dict(
    paramwise=True,
    # backbone: frozen (lr 0, not in the optimizer) except the adapters
    backbone=dict(custom=[dict(name="adapter", lr=2e-4, weight_decay=0.05)], exclude=["backbone"]),
)

post_processing = dict(nms=dict(sigma=0.7, max_seg_num=2000, voting_thresh=0.7))  # multiclass Gaussian soft-NMS

workflow = dict(val_start_epoch=40, end_epoch=60)

# adatad infer: videos of other frame rates are sampled by time as if they were 30 fps (THUMOS' rate)
inference = dict(reference_fps=30.0)
