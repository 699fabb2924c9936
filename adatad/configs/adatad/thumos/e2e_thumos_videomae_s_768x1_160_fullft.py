# VideoMAE-S full fine-tuning: a plain ViT (no adapters) trained whole at lr 1e-5. OpenTAD's
# e2e_thumos_videomae_s_768x1_160_fullft.py, written as its differences from the adapter recipe.
_base_ = ["e2e_thumos_videomae_s_768x1_160_adapter.py"]

model = dict(backbone=dict(mode="full", adapter_index=[]))
optimizer = dict(backbone=dict(_delete_=True, lr=1e-5, weight_decay=0.05))
workflow = dict(checkpoint_interval=5, val_eval_interval=5, val_start_epoch=39)
