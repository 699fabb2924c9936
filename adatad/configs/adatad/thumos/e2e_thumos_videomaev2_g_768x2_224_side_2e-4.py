# VideoMAE V2-g with a side (ladder) network over the last 20 blocks (adapter width 1/8, lr 2e-4), at 224x224 with
# 2 frames per snippet: the VideoMAE-S side recipe with the giant backbone.
_base_ = [
    "e2e_thumos_videomae_s_768x1_160_side.py",
    "../../_base_/models/videomaev2_g.py",
    "../../_base_/datasets/thumos-14/e2e_768x2_224.py",
]

model = dict(backbone=dict(adapter_mlp_ratio=1 / 8, adapter_index=list(range(20, 40))))
workflow = dict(val_start_epoch=37, end_epoch=50)
