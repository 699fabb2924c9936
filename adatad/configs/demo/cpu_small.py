# A CPU-sized AdaTAD: put it after any dataset config to train from scratch in minutes, e.g.
#   _base_ = ["my_dataset/config.py", "<repo>/configs/demo/cpu_small.py"]
# Same model classes and code paths as the seed's recipe, randomly initialised and shrunk: a 3-block ViT of
# width 128 on 64x64 frames, one snippet every 8 frames, and an ActionFormer head of width 128.
window_size = 128  # snippets of 8 frames: 34 s at 30 fps

dataset = dict(
    feature_stride=8,  # 3.75 snippets/s at 30 fps: half the seed's rate, plenty for 1-8 s actions, half the compute
    window_size=window_size,
    train=dict(trunc_thresh=0.5),
    test=dict(window_overlap_ratio=0.5),
    val=dict(window_overlap_ratio=0.5),
    transform=dict(
        # no horizontal flip: it would turn a left-to-right motion into a right-to-left one
        train=dict(resize_short=72, crop_size=64, area_range=[0.6, 1.0], flip_ratio=0.0, imgaug=False, color_jitter=False),
        test=dict(resize_short=64, crop_size=64),
    ),
)

model = dict(
    backbone=dict(
        embed_dims=128, depth=3, num_heads=4, adapter_index=[0, 1, 2], drop_path_rate=0.0,
        mode="full",  # random initialisation: the whole ViT learns (adapter mode needs pretrained weights)
        with_cp=False, pretrained=None,
    ),
    projection=dict(in_channels=128, out_channels=128, arch=[2, 2, 5], path_pdrop=0.0),
    head=dict(feat_channels=128),
)

solver = dict(
    train=dict(batch_size=4, num_workers=2, accumulate=1),
    val=dict(batch_size=4, num_workers=2),
    test=dict(batch_size=4, num_workers=2),
    amp=False,
    fp16_compress=False,
    static_graph=False,
    ema=True,
    ema_decay=0.99,
)
optimizer = dict(lr=5e-4, weight_decay=0.05, backbone=dict(_delete_=True, lr=5e-4, weight_decay=0.05))
scheduler = dict(warmup_epoch=2, max_epoch=40)
workflow = dict(logging_interval=24, checkpoint_interval=10, val_eval_interval=10, val_start_epoch=0, end_epoch=40)
