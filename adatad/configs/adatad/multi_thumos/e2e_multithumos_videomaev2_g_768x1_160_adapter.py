# OpenTAD's MultiTHUMOS recipe configs/adatad/multi_thumos/e2e_multithumos_videomaev2_g_768x1_160_adapter.py
# (sming256/OpenTAD@3dd7b03) as `adatad convert-config` converts it; only the values that differ from adatad's
# defaults (adatad/config.py SCHEMA) are written. tests/test_multithumos_charades_configs.py checks that this file resolves to
# exactly what convert-config makes of OpenTAD's file.

dataset = {
    "name": "thumos",
    "annotation_path": "data/multithumos/annotations/multithumos_anno.json",
    "class_map": "data/multithumos/annotations/category_idx.txt",
    "data_path": "data/thumos-14/raw_data/video",
    "window_size": 768,
    "train": {"trunc_thresh": 0.75},
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
    "projection": {"in_channels": 1408, "arch": [3, 0, 5], "n_mha_win_size": -1},
    "head": {"num_classes": 65},
}

solver = {"amp": True, "fp16_compress": True, "static_graph": True, "ema": True}

optimizer = {"paramwise": True, "backbone": {"custom": [{"name": "adapter", "lr": 0.0001, "weight_decay": 0.05}], "exclude": ["backbone"]}}

post_processing = {"pre_nms_topk": 8000, "nms": {"max_seg_num": 8000, "voting_thresh": 0.7}}

evaluation = {
    "tiou_thresholds": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    "ground_truth_filename": "data/multithumos/annotations/multithumos_anno.json",
}

workflow = {"val_start_epoch": 49, "end_epoch": 80}
