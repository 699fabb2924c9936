# The ActivityNet-1.3 recipe (configs/adatad/anet/: whole-video resize, class-agnostic 1-class head, external
# video-classifier fusion, mAP@0.5:0.05:0.95) shrunk to train on a CPU in minutes (configs/demo/cpu_small.py, then
# smaller still), on the built-in "ActivityNet-like" synthetic set (adatad.data.synthetic,
# generate_dataset(layout="anet"): 32x32 px, 15 fps, one class per video, 1-2 long actions, a noisy CUHK-layout
# classifier file made from the ground truth). `adatad demo --config configs/demo/anet_demo.py` generates that set
# and fills in the data and classifier paths (adatad.commands.demo.data_overrides).
_base_ = ["../adatad/anet/e2e_anet_videomae_s_192x4_160_adapter.py", "cpu_small.py"]

window_size = 32  # the resize grid (OpenTAD's resize_length; 192 in the recipe)

dataset = dict(
    name="anet_demo",
    annotation_path="demo_data_anet/annotations/activity_net.v1-3.min.json",
    class_map="demo_data_anet/annotations/category_idx.txt",
    data_path="demo_data_anet/videos",
    block_list=None,
    window_size=window_size,
    scale_factor=2,  # the backbone sees 64 frames per video; its features are interpolated to the 32-step grid
    transform=dict(train=dict(resize_short=36, crop_size=32), test=dict(resize_short=32, crop_size=32)),
)
model = dict(
    backbone=dict(embed_dims=64, depth=2, num_heads=2, adapter_index=[0, 1]),
    projection=dict(in_channels=64, out_channels=64),
    head=dict(feat_channels=64, loss_normalizer=20.0),  # the recipe's 200 is sized for 16 ActivityNet videos a batch
)
solver = dict(ema_decay=0.9)  # a short run: the EMA must follow within a few epochs
optimizer = dict(lr=2e-3, backbone=dict(lr=2e-3))
post_processing = dict(
    external_cls=dict(type="CUHKANETClassifier", path="demo_data_anet/classifiers/cuhk_val_simp_7.json", topk=2),
)
evaluation = dict(
    ground_truth_filename="demo_data_anet/annotations/activity_net.v1-3.min.json",
    blocked_videos=None,
)
scheduler = dict(warmup_epoch=1, max_epoch=10)
workflow = dict(logging_interval=8, checkpoint_interval=5, val_eval_interval=5, val_start_epoch=0, end_epoch=10)
