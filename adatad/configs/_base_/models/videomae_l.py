# VideoMAE ViT-L/16 (Kinetics-400); merge after a recipe to change its backbone size.
model = dict(
    backbone=dict(
        embed_dims=1024, depth=24, num_heads=16,
        pretrained="pretrained/vit-large-p16_videomae-k400-pre_16x4x1_kinetics-400_20221013-229dbb03.pth",
    ),
    projection=dict(in_channels=1024),
)
