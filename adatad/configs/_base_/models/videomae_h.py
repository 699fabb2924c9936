# VideoMAE ViT-H/16 (Kinetics-400); merge after a recipe to change its backbone size.
model = dict(
    backbone=dict(
        embed_dims=1280, depth=32, num_heads=16,
        pretrained="pretrained/vit-huge-p16_videomae-k400-pre_16x4x1_kinetics-400_my.pth",
    ),
    projection=dict(in_channels=1280),
)
