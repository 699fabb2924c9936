# VideoMAE V2-g in adapter mode at 224x224 with 2 frames per snippet (1536 frames per window), adapters after the
# last 20 blocks. The adapter lr stays the S recipe's 2e-4 (OpenTAD's file does not change it).
_base_ = [
    "e2e_thumos_videomae_s_768x1_160_adapter.py",
    "../../_base_/models/videomaev2_g.py",
    "../../_base_/datasets/thumos-14/e2e_768x2_224.py",
]

model = dict(backbone=dict(adapter_index=list(range(20, 40))))
workflow = dict(val_start_epoch=37, end_epoch=50)
