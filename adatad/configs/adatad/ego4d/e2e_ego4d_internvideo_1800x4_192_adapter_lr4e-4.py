# OpenTAD's Ego4D-MQ recipe configs/adatad/ego4d/e2e_ego4d_internvideo_1800x4_192_adapter_lr4e-4.py
# (sming256/OpenTAD@3dd7b03) as `adatad convert-config` converts it; only the values that differ from adatad's
# defaults (adatad/config.py SCHEMA) are written. tests/test_egocentric_configs.py checks that this file resolves to
# exactly what convert-config makes of OpenTAD's file.

dataset = {
    "name": "ego4d",
    "annotation_path": "data/ego4d/annotations/ego4d_v2_220429.json",
    "class_map": "data/ego4d/annotations/category_idx.txt",
    "data_path": "data/ego4d/raw_data/MQ_data/mq_videos_short320/",
    "feature_stride": 8,
    "window_size": 1800,
    "scale_factor": 4,
    "train": {"subset_name": "train", "trunc_thresh": 0.3},
    "val": {"subset_name": "val", "window_overlap_ratio": 0.0},
    "test": {"subset_name": "val", "window_overlap_ratio": 0.0},
    "transform": {
        "train": {"resize_short": 220, "crop_size": 192, "imgaug": True, "color_jitter": True},
        "test": {"resize_short": 192, "crop_size": 192},
    },
}

model = {
    "backbone": {
        "embed_dims": 1024,
        "depth": 24,
        "num_heads": 16,
        "drop_path_rate": 0.1,
        "adapter_index": [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23],
        "with_cp": True,
        "pretrained": "pretrained/vit-large-p16_videomae_k700_mq_ft_internvideo.pth",
    },
    "projection": {
        "in_channels": 1024,
        "arch": [2, 2, 9],
        "n_mha_win_size": [17, 17, 17, 17, 17, 17, 17, -1, -1, -1],
        "proj_pdrop": 0.1,
        "input_pdrop": 0.2,
        "use_abs_pe": True,
        "max_seq_len": 2048,
    },
    "neck": {"num_levels": 10},
    "head": {
        "num_classes": 110,
        "strides": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
        "regression_range": [[0, 4], [2, 8], [4, 16], [8, 32], [16, 64], [32, 128], [64, 256], [128, 512], [256, 1024], [512, 10000]],
        "filter_similar_gt": False,
    },
}

solver = {"amp": True, "fp16_compress": True, "static_graph": True, "ema": True}

optimizer = {"paramwise": True, "backbone": {"custom": [{"name": "adapter", "lr": 0.0004, "weight_decay": 0.05}], "exclude": ["backbone"]}}

scheduler = {"max_epoch": 25}

post_processing = {"pre_nms_topk": 5000, "nms": {"sigma": 2.0, "max_seg_num": 2000, "min_score": 0.001, "voting_thresh": 0.95}}

evaluation = {"tiou_thresholds": [0.1, 0.2, 0.3, 0.4, 0.5], "ground_truth_filename": "data/ego4d/annotations/ego4d_v2_220429.json"}

workflow = {"logging_interval": 200, "checkpoint_interval": 1, "val_eval_interval": 1, "val_start_epoch": 12, "end_epoch": 20}
