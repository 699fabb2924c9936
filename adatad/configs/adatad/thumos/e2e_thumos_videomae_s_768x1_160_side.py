# VideoMAE-S with a side (ladder) network of temporal adapters over blocks 6-11, the ViT frozen. OpenTAD's
# e2e_thumos_videomae_s_768x1_160_side.py, written as its differences from the adapter recipe.
_base_ = ["e2e_thumos_videomae_s_768x1_160_adapter.py"]

model = dict(
    backbone=dict(type="VisionTransformerLadder", drop_path_rate=0.0, adapter_index=list(range(6, 12))),
    projection=dict(input_pdrop=0.1),
)
