# 768 snippets of 2 frames each (scale_factor 2: frames 0, 2, 4, ... reach the backbone, whose features are
# interpolated back to 768) at 224x224, after the 160 px recipe (OpenTAD's e2e_thumos_videomaev2_g_768x2_224_*).
dataset = dict(
    scale_factor=2,
    transform=dict(train=dict(resize_short=256, crop_size=224), test=dict(resize_short=224, crop_size=224)),
)
