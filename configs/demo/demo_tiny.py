# The demo: the seed's AdaTAD recipe shrunk to run on a CPU in minutes on built-in synthetic videos
# (adatad.data.synthetic: 64x64 px, 30 fps; classes differ only by motion over time).
# Same dataset classes, decoding, windows, transforms, model, losses, engine, post-processing and
# evaluator as configs/adatad/thumos/; only sizes and the schedule differ. `adatad demo` fills in the
# data paths (dataset.annotation_path / class_map / data_path) for the generated data folder.
_base_ = ["../adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py"]

window_size = 128  # snippets of 8 frames: 34 s, longer than every demo video (20-32 s)

dataset = dict(
    name="demo",
    annotation_path="demo_data/annotations/anno.json",
    class_map="demo_data/annotations/category_idx.txt",
    data_path="demo_data/videos",
    feature_stride=8,  # 3.75 snippets/s: half the seed's rate, plenty for 1-8 s actions, half the compute
    window_size=window_size,
    train=dict(trunc_thresh=0.5),
    test=dict(window_overlap_ratio=0.5),
    val=dict(window_overlap_ratio=0.5),
    transform=dict(
        # no horizontal flip: it would turn MoveRight into MoveLeft
        train=dict(resize_short=72, crop_size=64, area_range=[0.6, 1.0], flip_ratio=0.0, imgaug=False, color_jitter=False),
        test=dict(resize_short=64, crop_size=64),
    ),
)
evaluation = dict(ground_truth_filename="demo_data/annotations/anno.json")

model = dict(
    backbone=dict(
        embed_dims=128, depth=3, num_heads=4, adapter_index=[0, 1, 2], drop_path_rate=0.0,
        mode="full",  # random initialisation: the whole ViT learns (adapter mode needs pretrained weights)
        with_cp=False, pretrained=None,
    ),
    projection=dict(in_channels=128, out_channels=128, arch=[2, 2, 5], path_pdrop=0.0),
    head=dict(num_classes=5, feat_channels=128),
)

solver = dict(
    train=dict(batch_size=4, num_workers=2, accumulate=1),
    val=dict(batch_size=4, num_workers=2),
    test=dict(batch_size=4, num_workers=2),
    reference_batch=4,
    amp=False,
    fp16_compress=False,
    static_graph=False,
    ema=True,
    ema_decay=0.99,
)
optimizer = dict(lr=5e-4, weight_decay=0.05, backbone=dict(_delete_=True, lr=5e-4, weight_decay=0.05))
scheduler = dict(warmup_epoch=2, max_epoch=80)
workflow = dict(logging_interval=12, checkpoint_interval=20, val_eval_interval=20, val_start_epoch=0, end_epoch=80)
