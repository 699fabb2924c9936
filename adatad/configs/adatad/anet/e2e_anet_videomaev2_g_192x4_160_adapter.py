# OpenTAD's ActivityNet-1.3 recipe configs/adatad/anet/e2e_anet_videomaev2_g_192x4_160_adapter.py
# (sming256/OpenTAD@3dd7b03) as `adatad convert-config` converts it; only the values that differ from adatad's
# defaults (adatad/config.py SCHEMA) are written. tests/test_anet_configs.py checks that this file resolves to
# exactly what convert-config makes of OpenTAD's file.

dataset = {
    "name": "anet",
    "annotation_path": "data/activitynet-1.3/annotations/activity_net.v1-3.min.json",
    "class_map": "data/activitynet-1.3/annotations/category_idx.txt",
    "data_path": "data/activitynet-1.3/raw_data/Anet_videos_15fps_short256",
    "block_list": "data/activitynet-1.3/raw_data/Anet_videos_15fps_short256/missing_files.txt",
    "window_size": 192,
    "scale_factor": 4,
    "sampling": "resize",
    "video_prefix": "v_",
    "class_agnostic": True,
    "train": {"filter_gt": True},
    "transform": {
        "train": {"resize_short": 182, "crop_size": 160, "imgaug": True, "color_jitter": True},
        "test": {"resize_short": 160, "crop_size": 160},
    },
}

model = {
    "backbone": {
        "patch_size": 14,
        "embed_dims": 1408,
        "depth": 40,
        "num_heads": 16,
        "mlp_ratio": 4.363636363636363,
        "drop_path_rate": 0.1,
        "adapter_index": list(range(40)),
        "with_cp": True,
        "pretrained": "pretrained/vit-giant-p14_videomaev2-hybrid_pt_1200e_k710_ft_my.pth",
    },
    "projection": {"in_channels": 1408, "out_channels": 256, "n_mha_win_size": -1, "use_abs_pe": True},
    "head": {"num_classes": 1, "feat_channels": 256, "loss_normalizer": 200.0, "label_smoothing": 0.1, "loss_weight": 2.0},
}

solver = {
    "train": {"batch_size": 16, "num_workers": 8},
    "val": {"batch_size": 16, "num_workers": 8},
    "test": {"batch_size": 16, "num_workers": 8},
    "amp": True,
    "fp16_compress": True,
    "static_graph": True,
    "ema": True,
}

optimizer = {
    "lr": 0.001,
    "paramwise": True,
    "backbone": {"custom": [{"name": "adapter", "lr": 0.0001, "weight_decay": 0.05}], "exclude": ["backbone"]},
}

scheduler = {"max_epoch": 15}

post_processing = {
    "nms": {"sigma": 0.7, "min_score": 0.001, "multiclass": False, "voting_thresh": 0.9},
    "external_cls": {"type": "CUHKANETClassifier", "path": "data/activitynet-1.3/classifiers/cuhk_val_simp_7.json", "topk": 2},
}

evaluation = {
    "tiou_thresholds": [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95],
    "ground_truth_filename": "data/activitynet-1.3/annotations/activity_net.v1-3.min.json",
    "blocked_videos": "data/activitynet-1.3/annotations/blocked.json",
}

workflow = {"logging_interval": 200, "checkpoint_interval": 1, "val_eval_interval": 1, "val_start_epoch": 8}
