# VideoMAE V2 ViT-g/14 (hybrid pretraining, Kinetics-710 fine-tuned); merge after a recipe to change its backbone.
model = dict(
    backbone=dict(
        patch_size=14, embed_dims=1408, depth=40, num_heads=16, mlp_ratio=48 / 11,
        pretrained="pretrained/vit-giant-p14_videomaev2-hybrid_pt_1200e_k710_ft_my.pth",
    ),
    projection=dict(in_channels=1408),
)
