# OpenTAD's EPIC-Kitchens-100 recipe configs/adatad/epic/e2e_epic_videomae_l_ft_768x8_160_adapter_noun.py
# (sming256/OpenTAD@3dd7b03) as `adatad convert-config` converts it; only the values that differ from adatad's
# defaults (adatad/config.py SCHEMA) are written. tests/test_egocentric_configs.py checks that this file resolves to
# exactly what convert-config makes of OpenTAD's file.

dataset = {
    "name": "epic",
    "annotation_path": "data/epic_kitchens-100/annotations/epic_kitchens_noun.json",
    "class_map": "data/epic_kitchens-100/annotations/category_idx_noun.txt",
    "data_path": "data/epic_kitchens-100/raw_data/epic_kitchens_100_30fps_512x288/",
    "feature_stride": 16,
    "window_size": 768,
    "scale_factor": 8,
    "fps": 30.0,
    "train": {"subset_name": "train", "filter_gt": True, "trunc_thresh": 0.3},
    "val": {"subset_name": "val"},
    "test": {"subset_name": "val"},
    "transform": {
        "train": {"resize_short": 182, "crop_size": 160, "imgaug": True, "color_jitter": True},
        "test": {"resize_short": 160, "crop_size": 160},
    },
}

model = {
    "backbone": {
        "embed_dims": 1024,
        "depth": 24,
        "num_heads": 16,
        "drop_path_rate": 0.1,
        "adapter_index": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23],
        "with_cp": True,
        "pretrained": "pretrained/vit-large-p16_videomae-epic_noun.pth",
    },
    "projection": {"in_channels": 1024, "n_mha_win_size": 9, "input_pdrop": 0.2},
    "head": {
        "num_classes": 293,
        "regression_range": [[0, 4], [2, 8], [4, 16], [8, 32], [16, 64], [32, 10000]],
        "loss_normalizer": 250.0,
        "label_smoothing": 0.1,
        "loss_weight": 0.5,
    },
}

solver = {"amp": True, "fp16_compress": True, "static_graph": True, "ema": True}

optimizer = {"paramwise": True, "backbone": {"custom": [{"name": "adapter", "lr": 8e-05, "weight_decay": 0.05}], "exclude": ["backbone"]}}

scheduler = {"max_epoch": 250}

post_processing = {"pre_nms_topk": 5000, "nms": {"sigma": 0.4, "max_seg_num": 2000, "min_score": 0.001, "voting_thresh": 0.75}}

evaluation = {
    "tiou_thresholds": [0.1, 0.2, 0.3, 0.4, 0.5],
    "ground_truth_filename": "data/epic_kitchens-100/annotations/epic_kitchens_noun.json",
}

workflow = {"logging_interval": 200, "val_start_epoch": 19, "end_epoch": 35}
