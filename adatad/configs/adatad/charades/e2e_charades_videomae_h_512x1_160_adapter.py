# OpenTAD's Charades recipe configs/adatad/charades/e2e_charades_videomae_h_512x1_160_adapter.py
# (sming256/OpenTAD@3dd7b03) as `adatad convert-config` converts it; only the values that differ from adatad's
# defaults (adatad/config.py SCHEMA) are written. tests/test_multithumos_charades_configs.py checks that this file resolves to
# exactly what convert-config makes of OpenTAD's file.

dataset = {
    "name": "epic",
    "annotation_path": "data/charades/annotations/charades.json",
    "class_map": "data/charades/annotations/category_idx.txt",
    "data_path": "data/charades/raw_data/Charades_v1_480_30fps/",
    "window_size": 512,
    "fps": 30.0,
    "val": {"subset_name": "testing"},
    "test": {"subset_name": "testing"},
    "transform": {
        "train": {"resize_short": 182, "crop_size": 160, "imgaug": True, "color_jitter": True},
        "test": {"resize_short": 160, "crop_size": 160},
    },
}

model = {
    "backbone": {
        "embed_dims": 1280,
        "depth": 32,
        "num_heads": 16,
        "drop_path_rate": 0.1,
        "adapter_index": list(range(32)),
        "with_cp": True,
        "pretrained": "pretrained/vit-huge-p16_videomae-k400-pre_16x4x1_kinetics-400_my.pth",
    },
    "projection": {"in_channels": 1280, "arch": [2, 2, 7], "n_mha_win_size": -1, "input_pdrop": 0.3, "use_abs_pe": True},
    "neck": {"num_levels": 8},
    "head": {
        "num_classes": 157,
        "strides": [1, 2, 4, 8, 16, 32, 64, 128],
        "regression_range": [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 128], [128, 256], [256, 10000]],
    },
}

solver = {
    "train": {"batch_size": 16, "num_workers": 4},
    "val": {"batch_size": 16, "num_workers": 4},
    "test": {"batch_size": 16, "num_workers": 4},
    "amp": True,
    "fp16_compress": True,
    "static_graph": True,
    "ema": True,
}

optimizer = {"paramwise": True, "backbone": {"custom": [{"name": "adapter", "lr": 0.0001, "weight_decay": 0.05}], "exclude": ["backbone"]}}

scheduler = {"max_epoch": 20}

post_processing = {"nms": {"sigma": 0.3, "max_seg_num": 1000, "voting_thresh": 0.7}}

evaluation = {
    "tiou_thresholds": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    "ground_truth_filename": "data/charades/annotations/charades.json",
}

workflow = {"logging_interval": 200, "checkpoint_interval": 1, "val_eval_interval": 1, "val_start_epoch": 7}
