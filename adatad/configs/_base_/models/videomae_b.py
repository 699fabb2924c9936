# VideoMAE ViT-B/16 (Kinetics-400); merge after a recipe to change its backbone size.
model = dict(
    backbone=dict(
        embed_dims=768, depth=12, num_heads=12,
        pretrained="pretrained/vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400_20221013-860a3cd3.pth",
    ),
    projection=dict(in_channels=768),
)
