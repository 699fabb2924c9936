_base_ = ["e2e_thumos_videomae_s_768x1_160_adapter.py"]

model = dict(
    backbone=dict(
        patch_size=14, embed_dims=1408, depth=40, num_heads=16, mlp_ratio=48 / 11, adapter_index=list(range(40)),
        pretrained="pretrained/vit-giant-p14_videomaev2-hybrid_pt_1200e_k710_ft_my.pth",
    ),
    projection=dict(in_channels=1408),
)
optimizer = dict(backbone=dict(custom=[dict(name="adapter", lr=1e-4, weight_decay=0.05)]))
