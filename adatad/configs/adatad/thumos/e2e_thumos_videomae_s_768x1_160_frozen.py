# VideoMAE-S frozen: a plain ViT run without gradient (no adapters, no drop path), no augmentation; only the
# detector trains. OpenTAD's e2e_thumos_videomae_s_768x1_160_frozen.py, written as its differences from the
# adapter recipe.
_base_ = ["e2e_thumos_videomae_s_768x1_160_adapter.py"]

# Resize(-1, 160) + CenterCrop(160), as the test transform
dataset = dict(transform=dict(train=dict(resize_short=160, crop="center", flip_ratio=0.0, imgaug=False, color_jitter=False)))

model = dict(
    backbone=dict(mode="frozen", adapter_index=[], drop_path_rate=0.0, with_cp=False),
    projection=dict(input_pdrop=0.2),
)
solver = dict(static_graph=False)
optimizer = dict(backbone=dict(_delete_=True))  # no backbone parameter groups
post_processing = dict(nms=dict(sigma=0.5, min_score=0.001))
workflow = dict(checkpoint_interval=5, val_eval_interval=5, val_start_epoch=39)
