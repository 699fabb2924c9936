_base_ = ["e2e_thumos_videomae_s_768x1_160_adapter.py"]

model = dict(
    backbone=dict(
        embed_dims=768, depth=12, num_heads=12, adapter_index=list(range(12)),
        pretrained="pretrained/vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400_20221013-860a3cd3.pth",
    ),
    projection=dict(in_channels=768),
)
optimizer = dict(backbone=dict(custom=[dict(name="adapter", lr=1e-4, weight_decay=0.05)]))
