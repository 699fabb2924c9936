"""OpenTAD's AdaTAD THUMOS-14 recipes, recorded by hand from OpenTAD's source (sming256/OpenTAD commit 3dd7b03).

One entry per file of OpenTAD's ``configs/adatad/thumos/``, in OpenTAD's own terms (not adatad's): what OpenTAD
trains and tests with once a config and its ``_base_`` files are merged and every key it leaves out takes OpenTAD's
default. ``tests/test_recipes.py`` translates these into adatad keys and checks both the shipped configs and
``adatad convert-config``'s output against them, so a recipe that drifts from OpenTAD by one number fails a test
(CI has no OpenTAD checkout: these values are the reference there).

Citations are ``file:line`` in the OpenTAD repository (``git show 3dd7b03:<file> | cat -n``):
    ADAPTER_S = configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py
    FROZEN_S  = configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_frozen.py
    FULLFT_S  = configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_fullft.py
    SIDE_S    = configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_side.py
    DATA_BASE = configs/_base_/datasets/thumos-14/e2e_train_trunc_test_sw_256x224x224.py
    AF_BASE   = configs/_base_/models/actionformer.py
Defaults: vit.py / vit_adapter.py / vit_ladder.py under opentad/models/backbones/; nms.py =
opentad/models/utils/post_processing/nms/nms.py; train.py = tools/train.py; wrapper = backbone_wrapper.py.

Keys (flat, OpenTAD semantics):
    window_size, scale_factor: LoadFrames trunc_len / dataset window_size and LoadFrames scale_factor
    train.* / val.* / test.*: the three dataset dicts (val is OpenTAD's validation-*loss* set)
    *.pipeline: the image transforms between DecordDecode and FormatShape, as (type without "mmaction.", params set)
    backbone.*: model.backbone.backbone (the ViT) and model.backbone.custom / data_preprocessor
    chunks, interpolate: t1 of the Rearrange steps and size of the Interpolate step of the backbone wrapper
"""

from __future__ import annotations

PIPE_ADAPTER_160 = [  # ADAPTER_S:24-29
    ("Resize", {"scale": (-1, 182)}),
    ("RandomResizedCrop", {}),
    ("Resize", {"scale": (160, 160), "keep_ratio": False}),
    ("Flip", {"flip_ratio": 0.5}),
    ("ImgAug", {"transforms": "default"}),
    ("ColorJitter", {}),
]
PIPE_TEST_160 = [("Resize", {"scale": (-1, 160)}), ("CenterCrop", {"crop_size": 160})]  # ADAPTER_S:42-43, :56-57
PIPE_ADAPTER_224 = [  # e2e_thumos_videomaev2_g_768x2_224_adapter.py:21-26
    ("Resize", {"scale": (-1, 256)}),
    ("RandomResizedCrop", {}),
    ("Resize", {"scale": (224, 224), "keep_ratio": False}),
    ("Flip", {"flip_ratio": 0.5}),
    ("ImgAug", {"transforms": "default"}),
    ("ColorJitter", {}),
]
PIPE_TEST_224 = [("Resize", {"scale": (-1, 224)}), ("CenterCrop", {"crop_size": 224})]  # ..._768x2_224_adapter.py:39-40, :53-54

ADAPTER_S = {
    "window_size": 768,  # ADAPTER_S:6
    "scale_factor": 1,  # ADAPTER_S:7, :21, :40, :54
    "feature_stride": 4,  # DATA_BASE:18, :50, :76
    "sample_stride": 1,  # DATA_BASE:19, :51, :77
    "video_format": "mp4",  # ADAPTER_S:12
    "train.subset_name": "training",  # DATA_BASE:12
    "val.subset_name": "validation",  # DATA_BASE:44
    "test.subset_name": "validation",  # DATA_BASE:70
    "test.test_mode": True,  # DATA_BASE:74
    "train.trunc_thresh": 0.75,  # ADAPTER_S:19
    "train.crop_ratio": [0.9, 1.0],  # ADAPTER_S:20
    "val.window_overlap_ratio": 0.25,  # DATA_BASE:53 (ADAPTER_S:35-48 overrides only window_size and pipeline)
    "test.window_overlap_ratio": 0.5,  # DATA_BASE:79
    "train.pipeline": PIPE_ADAPTER_160,
    "val.pipeline": PIPE_TEST_160,
    "test.pipeline": PIPE_TEST_160,
    "mean": [123.675, 116.28, 103.53],  # ADAPTER_S:88
    "std": [58.395, 57.12, 57.375],  # ADAPTER_S:89
    "backbone.type": "VisionTransformerAdapter",  # ADAPTER_S:70
    "backbone.img_size": 224,  # :71
    "backbone.patch_size": 16,  # :72
    "backbone.embed_dims": 384,  # :73
    "backbone.depth": 12,  # :74
    "backbone.num_heads": 6,  # :75
    "backbone.mlp_ratio": 4,  # :76
    "backbone.qkv_bias": True,  # :77
    "backbone.num_frames": 16,  # :78
    "backbone.tubelet_size": 2,  # vit_adapter.py:359 (default)
    "backbone.drop_path_rate": 0.1,  # :79
    "backbone.norm_eps": 1e-6,  # :80
    "backbone.with_cp": True,  # :82
    "backbone.total_frames": 768,  # :83
    "backbone.adapter_index": list(range(12)),  # :84
    "backbone.adapter_mlp_ratio": 0.25,  # vit_adapter.py:364 (default)
    "backbone.pretrain": "pretrained/vit-small-p16_videomae-k400-pre_16x4x1_kinetics-400_my.pth",  # :93
    "backbone.norm_eval": False,  # :102
    "backbone.freeze_backbone": False,  # :103
    "chunks": 48,  # :8, :95, :99
    "interpolate": 768,  # :100
    "projection.in_channels": 384,  # ADAPTER_S:107
    "projection.out_channels": 512,  # AF_BASE:6
    "projection.arch": [2, 2, 5],  # AF_BASE:7
    "projection.kernel_size": 3,  # AF_BASE:8
    "projection.proj_pdrop": 0.0,  # AF_BASE:8
    "projection.n_head": 4,  # AF_BASE:10
    "projection.n_mha_win_size": -1,  # ADAPTER_S:109
    "projection.path_pdrop": 0.1,  # AF_BASE:11
    "projection.input_pdrop": 0.0,  # actionformer_proj.py:23 (default)
    "projection.use_abs_pe": False,  # AF_BASE:12
    "projection.max_seq_len": 768,  # ADAPTER_S:108
    "neck.num_levels": 6,  # AF_BASE:19
    "neck.channels": 512,  # AF_BASE:17-18
    "head.num_classes": 20,  # AF_BASE:23
    "head.feat_channels": 512,  # AF_BASE:25
    "head.num_convs": 2,  # AF_BASE:26
    "head.cls_prior_prob": 0.01,  # AF_BASE:27
    "head.strides": [1, 2, 4, 8, 16, 32],  # AF_BASE:30
    "head.regression_range": [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]],  # AF_BASE:31
    "head.loss_normalizer": 100,  # AF_BASE:33
    "head.loss_normalizer_momentum": 0.9,  # AF_BASE:34
    "head.center_sample_radius": 1.5,  # AF_BASE:36
    "head.label_smoothing": 0.0,  # AF_BASE:37
    "solver.train.batch_size": 2,  # ADAPTER_S:114
    "solver.train.num_workers": 2,  # :114
    "solver.val.batch_size": 2,  # :115
    "solver.val.num_workers": 2,  # :115
    "solver.test.batch_size": 2,  # :116
    "solver.test.num_workers": 2,  # :116
    "solver.clip_grad_norm": 1,  # :117
    "solver.amp": True,  # :118 (train.py:133-135: fp16 autocast + GradScaler)
    "solver.fp16_compress": True,  # :119
    "solver.static_graph": True,  # :120
    "solver.ema": True,  # :121
    "optimizer.type": "AdamW",  # :125
    "optimizer.lr": 1e-4,  # :126
    "optimizer.weight_decay": 0.05,  # :127
    "optimizer.paramwise": True,  # :128
    "optimizer.backbone": {  # :129-134
        "lr": 0,
        "weight_decay": 0,
        "custom": [{"name": "adapter", "lr": 2e-4, "weight_decay": 0.05}],
        "exclude": ["backbone"],
    },
    "scheduler.type": "LinearWarmupCosineAnnealingLR",  # :136
    "scheduler.warmup_epoch": 5,  # :136
    "scheduler.max_epoch": 100,  # :136
    "pre_nms_thresh": 0.001,  # single_stage.py:101 (default)
    "pre_nms_topk": 2000,  # single_stage.py:102 (default)
    "nms.use_soft_nms": True,  # :141
    "nms.sigma": 0.7,  # :142
    "nms.max_seg_num": 2000,  # :143
    "nms.min_score": 0.0,  # nms.py:106 (default)
    "nms.iou_threshold": 0.0,  # nms.py:105 (default)
    "nms.multiclass": True,  # :144
    "nms.voting_thresh": 0.7,  # :145
    "workflow.logging_interval": 50,  # :151
    "workflow.checkpoint_interval": 2,  # :152
    "workflow.val_loss_interval": -1,  # :153
    "workflow.val_eval_interval": 2,  # :154
    "workflow.val_start_epoch": 40,  # :155
    "workflow.end_epoch": 60,  # :156
    "evaluation.subset": "validation",  # DATA_BASE:97
    "evaluation.tiou_thresholds": [0.3, 0.4, 0.5, 0.6, 0.7],  # DATA_BASE:98
}


def derive(parent: dict, **changes) -> dict:
    """A recipe that inherits ``parent``; keyword names use ``__`` for ``.`` (``backbone__depth=24``)."""
    out = dict(parent)
    for key, value in changes.items():
        key = key.replace("__", ".")
        if key not in parent:
            raise KeyError(f"unknown recipe field {key!r}")
        out[key] = value
    return out


# FROZEN_S is a standalone file: the adapter recipe's values except the lines cited here.
FROZEN_S = derive(
    ADAPTER_S,
    train__pipeline=[("Resize", {"scale": (-1, 160)}), ("CenterCrop", {"crop_size": 160})],  # FROZEN_S:24-25
    backbone__type="VisionTransformerCP",  # FROZEN_S:66
    backbone__drop_path_rate=0.0,  # not set (FROZEN_S:66-78); vit.py:249 default
    backbone__with_cp=False,  # FROZEN_S:77
    backbone__total_frames=None,  # VisionTransformerCP has no adapters (no total_frames)
    backbone__adapter_index=None,
    backbone__adapter_mlp_ratio=None,
    backbone__norm_eval=True,  # FROZEN_S:95
    backbone__freeze_backbone=True,  # FROZEN_S:96
    projection__input_pdrop=0.2,  # FROZEN_S:103
    solver__static_graph=False,  # not set (FROZEN_S:107-115); train.py:107 default
    optimizer__backbone=None,  # FROZEN_S:117 (no backbone groups: optimizer.py skips a frozen backbone)
    nms__sigma=0.5,  # FROZEN_S:124
    nms__min_score=0.001,  # FROZEN_S:126
    workflow__checkpoint_interval=5,  # FROZEN_S:135
    workflow__val_eval_interval=5,  # FROZEN_S:137
    workflow__val_start_epoch=39,  # FROZEN_S:138
)

# FULLFT_S is a standalone file: the adapter recipe's values except the lines cited here.
FULLFT_S = derive(
    ADAPTER_S,
    backbone__type="VisionTransformerCP",  # FULLFT_S:70
    backbone__total_frames=None,
    backbone__adapter_index=None,
    backbone__adapter_mlp_ratio=None,
    optimizer__backbone={"lr": 1e-5, "weight_decay": 0.05, "custom": [], "exclude": []},  # FULLFT_S:127
    workflow__checkpoint_interval=5,  # FULLFT_S:145
    workflow__val_eval_interval=5,  # FULLFT_S:147
    workflow__val_start_epoch=39,  # FULLFT_S:148
)

# SIDE_S is a standalone file: the adapter recipe's values except the lines cited here.
SIDE_S = derive(
    ADAPTER_S,
    backbone__type="VisionTransformerLadder",  # SIDE_S:70
    backbone__drop_path_rate=0.0,  # not set (SIDE_S:70-83); vit_ladder.py:338 default
    backbone__adapter_index=list(range(6, 12)),  # SIDE_S:83
    projection__input_pdrop=0.1,  # SIDE_S:109
)

SIZES = {  # (backbone fields, pretrain) of the B/L/H/g files, lines 3-8 (B), 3-13 (L, H), 3-15 (g) of each
    "b": dict(
        backbone__embed_dims=768,
        backbone__depth=12,
        backbone__num_heads=12,
        backbone__pretrain="pretrained/vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400_20221013-860a3cd3.pth",
        projection__in_channels=768,
    ),
    "l": dict(
        backbone__embed_dims=1024,
        backbone__depth=24,
        backbone__num_heads=16,
        backbone__pretrain="pretrained/vit-large-p16_videomae-k400-pre_16x4x1_kinetics-400_20221013-229dbb03.pth",
        projection__in_channels=1024,
    ),
    "h": dict(
        backbone__embed_dims=1280,
        backbone__depth=32,
        backbone__num_heads=16,
        backbone__pretrain="pretrained/vit-huge-p16_videomae-k400-pre_16x4x1_kinetics-400_my.pth",
        projection__in_channels=1280,
    ),
    "g": dict(
        backbone__patch_size=14,
        backbone__embed_dims=1408,
        backbone__depth=40,
        backbone__num_heads=16,
        backbone__mlp_ratio=48 / 11,
        backbone__pretrain="pretrained/vit-giant-p14_videomaev2-hybrid_pt_1200e_k710_ft_my.pth",
        projection__in_channels=1408,
    ),
}
ADAPTER_LR_1E4 = {  # b_..._adapter.py:11, l_..._adapter.py:16, h_..._adapter.py:16, g_..._adapter.py:18
    "lr": 0,
    "weight_decay": 0,
    "custom": [{"name": "adapter", "lr": 1e-4, "weight_decay": 0.05}],
    "exclude": ["backbone"],
}


def _name(size: str, mode: str) -> str:
    family = "videomaev2" if size == "g" else "videomae"
    return f"e2e_thumos_{family}_{size}_768x1_160_{mode}"


RECIPES: dict[str, dict] = {
    _name("s", "adapter"): ADAPTER_S,
    _name("s", "frozen"): FROZEN_S,
    _name("s", "fullft"): FULLFT_S,
    "e2e_thumos_videomae_s_768x1_160_side": SIDE_S,
}
for _size in ("b", "l", "h", "g"):
    _adapter = dict(SIZES[_size], optimizer__backbone=ADAPTER_LR_1E4)
    if _size != "b":  # L/H/g set adapter_index to every block (l/h :9, g :11); B inherits range(12) = its 12 blocks
        _adapter["backbone__adapter_index"] = list(range(SIZES[_size]["backbone__depth"]))
    RECIPES[_name(_size, "adapter")] = derive(ADAPTER_S, **_adapter)
    RECIPES[_name(_size, "frozen")] = derive(FROZEN_S, **SIZES[_size])
    RECIPES[_name(_size, "fullft")] = derive(FULLFT_S, **SIZES[_size])

_G224 = dict(  # e2e_thumos_videomaev2_g_768x2_224_adapter.py (inherits ADAPTER_S)
    SIZES["g"],
    scale_factor=2,  # :4
    train__pipeline=PIPE_ADAPTER_224,  # :21-26
    val__pipeline=PIPE_TEST_224,  # :39-40
    test__pipeline=PIPE_TEST_224,  # :53-54
    backbone__total_frames=1536,  # :71
    backbone__adapter_index=list(range(20, 40)),  # :72
    chunks=96,  # :5, :77, :81
    workflow__val_start_epoch=37,  # :94
    workflow__end_epoch=50,  # :95
)
RECIPES["e2e_thumos_videomaev2_g_768x2_224_adapter"] = derive(ADAPTER_S, **_G224)  # optimizer: ADAPTER_S's 2e-4
RECIPES["e2e_thumos_videomaev2_g_768x2_224_side_2e-4"] = derive(  # inherits SIDE_S
    SIDE_S,
    **_G224,
    backbone__adapter_mlp_ratio=1 / 8,  # e2e_thumos_videomaev2_g_768x2_224_side_2e-4.py:72
)  # optimizer :90 restates SIDE_S's adapter lr 2e-4; workflow :92-99 as above

# What OpenTAD uses when a config leaves a key out, for the keys where adatad's schema holds the same default
# (adatad.config.SCHEMA), as (adatad dotted key, value, source).
OPENTAD_DEFAULTS = [
    ("dataset.feature_stride", 4, "DATA_BASE:18"),
    ("dataset.sample_stride", 1, "DATA_BASE:19; padding_dataset.py:23"),
    ("dataset.window_size", 256, "DATA_BASE:6"),
    ("dataset.scale_factor", 1, "end_to_end.py:185 (LoadFrames)"),
    ("dataset.video_ext", "mp4", "end_to_end.py:16 (PrepareVideoInfo)"),
    ("dataset.block_list", None, "DATA_BASE:4"),
    ("dataset.train.subset_name", "training", "DATA_BASE:12"),
    ("dataset.train.trunc_thresh", 0.5, "DATA_BASE:28"),
    ("dataset.train.crop_ratio", [0.9, 1.0], "DATA_BASE:29"),
    ("dataset.val.subset_name", "validation", "DATA_BASE:70 (adatad's val is OpenTAD's test set)"),
    ("dataset.val.window_overlap_ratio", 0.5, "DATA_BASE:79 (adatad's val is OpenTAD's test set)"),
    ("dataset.test.subset_name", "validation", "DATA_BASE:70"),
    ("dataset.test.window_overlap_ratio", 0.5, "DATA_BASE:79"),
    ("dataset.transform.train.resize_short", 256, "DATA_BASE:32"),
    ("dataset.transform.train.crop", "random_resized", "DATA_BASE:33"),
    ("dataset.transform.train.area_range", [0.08, 1.0], "mmaction RandomResizedCrop"),
    ("dataset.transform.train.aspect_ratio_range", [3 / 4, 4 / 3], "mmaction RandomResizedCrop"),
    ("dataset.transform.train.crop_size", 224, "DATA_BASE:34"),
    ("dataset.transform.train.flip_ratio", 0.5, "DATA_BASE:35"),
    ("dataset.transform.train.imgaug", False, "DATA_BASE:20-39 (no ImgAug)"),
    ("dataset.transform.train.color_jitter", False, "DATA_BASE:20-39 (no ColorJitter)"),
    ("dataset.transform.test.resize_short", 224, "DATA_BASE:85"),
    ("dataset.transform.test.crop_size", 224, "DATA_BASE:86"),
    ("model.backbone.type", "VisionTransformerAdapter", "the AdaTAD backbone"),
    ("model.backbone.img_size", 224, "vit_adapter.py:345"),
    ("model.backbone.patch_size", 16, "vit_adapter.py:346"),
    ("model.backbone.embed_dims", 768, "vit_adapter.py:348"),
    ("model.backbone.depth", 12, "vit_adapter.py:349"),
    ("model.backbone.num_heads", 12, "vit_adapter.py:350"),
    ("model.backbone.mlp_ratio", 4.0, "vit_adapter.py:351"),
    ("model.backbone.qkv_bias", True, "vit_adapter.py:352"),
    ("model.backbone.num_frames", 16, "vit_adapter.py:358"),
    ("model.backbone.tubelet_size", 2, "vit_adapter.py:359"),
    ("model.backbone.drop_path_rate", 0.0, "vit_adapter.py:356"),
    ("model.backbone.norm_eps", 1e-6, "vit_adapter.py:357"),
    ("model.backbone.with_cp", False, "vit_adapter.py:363"),
    ("model.backbone.adapter_mlp_ratio", 0.25, "vit_adapter.py:364"),
    ("model.backbone.adapter_index", [3, 5, 7, 11], "vit_adapter.py:366"),
    ("model.backbone.mode", "adapter", "wrapper:50 (freeze_backbone=False) with VisionTransformerAdapter"),
    ("model.backbone.pretrained", None, "wrapper:26-31 (no pretrain: random initialisation)"),
    ("model.projection.in_channels", 2048, "AF_BASE:5"),
    ("model.projection.out_channels", 512, "AF_BASE:6"),
    ("model.projection.arch", [2, 2, 5], "AF_BASE:7"),
    ("model.projection.conv_kernel", 3, "AF_BASE:8"),
    ("model.projection.proj_pdrop", 0.0, "AF_BASE:8"),
    ("model.projection.n_head", 4, "AF_BASE:10"),
    ("model.projection.n_mha_win_size", 19, "AF_BASE:10"),
    ("model.projection.path_pdrop", 0.1, "AF_BASE:11"),
    ("model.projection.use_abs_pe", False, "AF_BASE:12"),
    ("model.projection.input_pdrop", 0.0, "actionformer_proj.py:23"),
    ("model.projection.attn_pdrop", 0.0, "actionformer_proj.py:36 (fixed)"),
    ("model.neck.num_levels", 6, "AF_BASE:19"),
    ("model.head.num_classes", 20, "AF_BASE:23"),
    ("model.head.feat_channels", 512, "AF_BASE:25"),
    ("model.head.num_convs", 2, "AF_BASE:26"),
    ("model.head.cls_prior_prob", 0.01, "AF_BASE:27"),
    ("model.head.strides", [1, 2, 4, 8, 16, 32], "AF_BASE:30"),
    ("model.head.regression_range", [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]], "AF_BASE:31"),
    ("model.head.loss_normalizer", 100, "AF_BASE:33"),
    ("model.head.loss_normalizer_momentum", 0.9, "AF_BASE:34"),
    ("model.head.center_sample_radius", 1.5, "AF_BASE:36"),
    ("model.head.label_smoothing", 0.0, "AF_BASE:37"),
    ("solver.amp", False, "train.py:133"),
    ("solver.amp_dtype", "fp16", "train_engine.py:38 (autocast dtype=torch.float16 + GradScaler)"),
    ("solver.fp16_compress", False, "train.py:119"),
    ("solver.static_graph", False, "train.py:107"),
    ("solver.ema", False, "train.py:125"),
    ("solver.ema_decay", 0.999, "ema.py:6"),
    ("solver.seed", 42, "train.py --seed default"),
    ("optimizer.paramwise", False, "optimizer.py:31"),
    ("optimizer.betas", [0.9, 0.999], "torch.optim.AdamW default"),
    ("optimizer.backbone.custom", [], "optimizer.py:74"),
    ("optimizer.backbone.exclude", [], "optimizer.py:80"),
    ("scheduler.warmup_start_lr", 0.0, "scheduler.py:74"),
    ("scheduler.eta_min", 1e-8, "scheduler.py:75"),
    ("post_processing.pre_nms_thresh", 0.001, "single_stage.py:101"),
    ("post_processing.pre_nms_topk", 2000, "single_stage.py:102"),
    ("post_processing.nms.iou_threshold", 0.0, "nms.py:105"),
    ("post_processing.nms.min_score", 0.0, "nms.py:106"),
    ("post_processing.nms.max_seg_num", 100, "nms.py:107"),
    ("post_processing.nms.use_soft_nms", True, "nms.py:108"),
    ("post_processing.nms.multiclass", True, "nms.py:109"),
    ("post_processing.nms.sigma", 0.5, "nms.py:110"),
    ("post_processing.nms.voting_thresh", 0.0, "nms.py:111"),
    ("evaluation.tiou_thresholds", [0.3, 0.4, 0.5, 0.6, 0.7], "DATA_BASE:98"),
    ("workflow.val_start_epoch", 0, "train.py:168"),
    ("workflow.end_epoch", None, "train.py:145 (scheduler.max_epoch)"),
]
