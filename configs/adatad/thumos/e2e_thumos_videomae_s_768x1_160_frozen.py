# VideoMAE-S frozen: backbone features without gradient, no adapters; only the detector trains.
_base_ = ["e2e_thumos_videomae_s_768x1_160_adapter.py"]

model = dict(
    backbone=dict(mode="frozen", adapter_index=[], with_cp=False),
    projection=dict(input_pdrop=0.2),
)
solver = dict(static_graph=False)
optimizer = dict(backbone=dict(_delete_=True, lr=0.0, weight_decay=0.0))
post_processing = dict(nms=dict(sigma=0.5))
workflow = dict(checkpoint_interval=5, val_eval_interval=5, val_start_epoch=39)
