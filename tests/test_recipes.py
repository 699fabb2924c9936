"""The shipped THUMOS configs and `adatad convert-config` hold OpenTAD's AdaTAD recipes, value by value.

The reference is ``tests/opentad_thumos_recipes.py``: OpenTAD's recipes recorded by hand, in OpenTAD's terms.
:func:`expected_adatad` translates one into adatad's config keys (independently of the converter), and every
shipped config and every converted config must resolve to those values. The tests that read OpenTAD's own files
run when its source is available (``$OPENTAD_ROOT``, or the mirror this project was built with) and skip otherwise;
the others run everywhere (the converter is also exercised on OpenTAD-format configs generated from the recorded
recipes).
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentad_thumos_recipes import OPENTAD_DEFAULTS, RECIPES

from adatad.compat.convert_config import (
    UnsupportedOpenTADConfig,
    convert_file,
    convert_opentad_config,
    load_opentad_config,
    render_adatad_config,
)
from adatad.config import SCHEMA, _schema_defaults, config_root, get, load_config

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = config_root() / "adatad" / "thumos"
MIRROR = Path("/work/.mirror/sming256+OpenTAD/repo")
OPENTAD_COMMIT = "3dd7b03"

# Keys that are paths on disk or adatad-only helpers, not part of a recipe: the shipped configs use adatad's data
# layout (data/thumos-14/videos), the converted ones OpenTAD's (data/thumos-14/raw_data/video).
NOT_RECIPE = {
    "dataset.annotation_path",
    "dataset.class_map",
    "dataset.data_path",
    "evaluation.ground_truth_filename",
    "inference.reference_fps",  # adatad infer's time-based sampling of other frame rates
}
MMACTION_RRC = {"area_range": [0.08, 1.0], "aspect_ratio_range": [3 / 4, 4 / 3]}


# ------------------------------------------------------------------------------------- OpenTAD -> adatad keys
def _train_transform(pipeline: list) -> dict:
    types = [t for t, _ in pipeline]
    out = {"resize_short": pipeline[0][1]["scale"][1]}
    assert types[0] == "Resize" and pipeline[0][1]["scale"][0] == -1
    if types[1] == "RandomResizedCrop":
        assert types[2] == "Resize" and pipeline[2][1]["keep_ratio"] is False
        out.update(
            crop="random_resized", crop_size=pipeline[2][1]["scale"][0], **{k: pipeline[1][1].get(k, v) for k, v in MMACTION_RRC.items()}
        )
        rest = pipeline[3:]
    else:
        assert types[1] == "CenterCrop"
        out.update(crop="center", crop_size=pipeline[1][1]["crop_size"], **MMACTION_RRC)  # RRC settings unused
        rest = pipeline[2:]
    params = dict(rest)
    out["flip_ratio"] = params["Flip"]["flip_ratio"] if "Flip" in params else 0.0
    out["imgaug"] = "ImgAug" in params
    out["color_jitter"] = "ColorJitter" in params
    if out["imgaug"]:
        assert params["ImgAug"] == {"transforms": "default"}
    assert [t for t, _ in rest] == [t for t in ("Flip", "ImgAug", "ColorJitter") if t in params]
    return out


def expected_adatad(r: dict) -> dict:
    """One recorded OpenTAD recipe -> {adatad dotted key: value}."""
    w, s = r["window_size"], r["scale_factor"]
    e: dict = {
        "dataset.window_size": w,
        "dataset.scale_factor": s,
        "dataset.feature_stride": r["feature_stride"],
        "dataset.sample_stride": r["sample_stride"],
        "dataset.video_ext": r["video_format"],
        "dataset.train.subset_name": r["train.subset_name"],
        "dataset.train.trunc_thresh": r["train.trunc_thresh"],
        "dataset.train.crop_ratio": r["train.crop_ratio"],
        # OpenTAD's training loop evaluates mAP on dataset.test (tools/train.py); adatad's val split is that evaluation
        "dataset.val.subset_name": r["test.subset_name"],
        "dataset.val.window_overlap_ratio": r["test.window_overlap_ratio"],
        "dataset.test.subset_name": r["test.subset_name"],
        "dataset.test.window_overlap_ratio": r["test.window_overlap_ratio"],
        "model.mean": r["mean"],
        "model.std": r["std"],
    }
    assert r["test.test_mode"] is True and r["workflow.val_loss_interval"] <= 0
    assert r["evaluation.subset"] == r["test.subset_name"]
    for k, v in _train_transform(r["train.pipeline"]).items():
        e[f"dataset.transform.train.{k}"] = v
    test = r["test.pipeline"]
    assert [t for t, _ in test] == ["Resize", "CenterCrop"] and test[0][1]["scale"][0] == -1
    e["dataset.transform.test.resize_short"] = test[0][1]["scale"][1]
    e["dataset.transform.test.crop_size"] = test[1][1]["crop_size"]

    kind = r["backbone.type"]
    e["model.backbone.type"] = "VisionTransformerLadder" if kind == "VisionTransformerLadder" else "VisionTransformerAdapter"
    if r["backbone.freeze_backbone"]:
        assert kind == "VisionTransformerCP"
        e["model.backbone.mode"] = "frozen"
    else:
        e["model.backbone.mode"] = "full" if kind == "VisionTransformerCP" else "adapter"
    for k in (
        "img_size",
        "patch_size",
        "embed_dims",
        "depth",
        "num_heads",
        "mlp_ratio",
        "qkv_bias",
        "num_frames",
        "tubelet_size",
        "drop_path_rate",
        "norm_eps",
        "with_cp",
    ):
        e[f"model.backbone.{k}"] = r[f"backbone.{k}"]
    e["model.backbone.pretrained"] = r["backbone.pretrain"]
    e["model.backbone.adapter_index"] = r["backbone.adapter_index"] or []
    if r["backbone.adapter_mlp_ratio"] is not None:
        e["model.backbone.adapter_mlp_ratio"] = r["backbone.adapter_mlp_ratio"]
    # the backbone sees window x scale_factor frames in 16-frame chunks and its features are interpolated to the window
    assert r["chunks"] * r["backbone.num_frames"] == w * s and r["interpolate"] == w
    assert r["backbone.total_frames"] in (None, w * s)

    for k, ak in (
        ("in_channels", "in_channels"),
        ("out_channels", "out_channels"),
        ("arch", "arch"),
        ("kernel_size", "conv_kernel"),
        ("proj_pdrop", "proj_pdrop"),
        ("n_head", "n_head"),
        ("n_mha_win_size", "n_mha_win_size"),
        ("path_pdrop", "path_pdrop"),
        ("input_pdrop", "input_pdrop"),
        ("use_abs_pe", "use_abs_pe"),
    ):
        e[f"model.projection.{ak}"] = r[f"projection.{k}"]
    e["model.projection.max_seq_len"] = None if r["projection.max_seq_len"] == w else r["projection.max_seq_len"]
    e["model.neck.num_levels"] = r["neck.num_levels"]
    assert r["neck.channels"] == r["projection.out_channels"]
    for k in (
        "num_classes",
        "feat_channels",
        "num_convs",
        "cls_prior_prob",
        "strides",
        "regression_range",
        "loss_normalizer",
        "loss_normalizer_momentum",
        "center_sample_radius",
        "label_smoothing",
    ):
        e[f"model.head.{k}"] = r[f"head.{k}"]

    for split, src in (("train", "train"), ("val", "test"), ("test", "test")):  # adatad val = OpenTAD's test loader
        e[f"solver.{split}.batch_size"] = r[f"solver.{src}.batch_size"]
        e[f"solver.{split}.num_workers"] = r[f"solver.{src}.num_workers"]
    for k in ("clip_grad_norm", "amp", "fp16_compress", "static_graph", "ema"):
        e[f"solver.{k}"] = r[f"solver.{k}"]
    e["solver.amp_dtype"] = "fp16"  # OpenTAD: fp16 autocast + GradScaler
    for k in ("type", "lr", "weight_decay", "paramwise"):
        e[f"optimizer.{k}"] = r[f"optimizer.{k}"]
    bb = r["optimizer.backbone"] or {"lr": 0.0, "weight_decay": 0.0}  # frozen: no backbone groups
    e["optimizer.backbone"] = {
        "lr": bb["lr"],
        "weight_decay": bb["weight_decay"],
        "custom": bb.get("custom", []),
        "exclude": bb.get("exclude", []),
    }
    for k in ("type", "warmup_epoch", "max_epoch"):
        e[f"scheduler.{k}"] = r[f"scheduler.{k}"]
    e["post_processing.pre_nms_thresh"] = r["pre_nms_thresh"]
    e["post_processing.pre_nms_topk"] = r["pre_nms_topk"]
    for k in ("use_soft_nms", "sigma", "max_seg_num", "min_score", "iou_threshold", "multiclass", "voting_thresh"):
        e[f"post_processing.nms.{k}"] = r[f"nms.{k}"]
    for k in ("logging_interval", "checkpoint_interval", "val_eval_interval", "val_start_epoch", "end_epoch"):
        e[f"workflow.{k}"] = r[f"workflow.{k}"]
    e["evaluation.tiou_thresholds"] = r["evaluation.tiou_thresholds"]
    return e


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b or a == b and type(a) is type(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


_ABSENT = object()


def mismatches(cfg: dict, expected: dict) -> list[str]:
    out = []
    for key, want in expected.items():
        got = get(cfg, key, _ABSENT)
        if got is _ABSENT or not _same(got, want):
            out.append(f"{key}: config {'<absent>' if got is _ABSENT else repr(got)} != OpenTAD {want!r}")
    return out


def _leaves(cfg: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        if not prefix and (k.startswith("_") or not isinstance(v, dict)):
            continue  # _meta and free helper variables
        if isinstance(v, dict) and v:
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def recipe_diff(a: dict, b: dict) -> list[str]:
    la, lb = _leaves(a), _leaves(b)
    keys = (la.keys() | lb.keys()) - NOT_RECIPE
    return [f"{k}: {la.get(k, '<absent>')!r} != {lb.get(k, '<absent>')!r}" for k in sorted(keys) if not _same(la.get(k), lb.get(k))]


# -------------------------------------------------------------------------------------- shipped configs
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_shipped_config_holds_the_opentad_recipe(name):
    cfg = load_config(SHIPPED / f"{name}.py")
    assert mismatches(cfg, expected_adatad(RECIPES[name])) == []


def test_every_recipe_is_shipped_under_its_opentad_name():
    assert sorted(p.stem for p in SHIPPED.glob("*.py")) == sorted(RECIPES)


def test_schema_defaults_are_opentads_defaults():
    """Each default lives once, in adatad.config.SCHEMA, and is what OpenTAD uses when a config leaves the key out."""
    defaults = _schema_defaults(SCHEMA)
    wrong = [
        f"{k}: schema {get(defaults, k)!r} != OpenTAD {v!r} ({src})"
        for k, v, src in OPENTAD_DEFAULTS
        if not _same(get(defaults, k, _ABSENT), v)
    ]
    assert wrong == []


def test_recipe_values_are_not_repeated_in_the_bases():
    """MEAN/STD and the other generic defaults are not restated by the shipped config files."""
    text = "\n".join(p.read_text() for p in config_root().rglob("*.py"))
    assert "123.675" not in text and "58.395" not in text


# ------------------------------------------------------------------------- the converter (runs everywhere)
def opentad_config_from_recipe(r: dict) -> dict:
    """An OpenTAD-format config dict holding recipe ``r`` (as OpenTAD's loader would give it after merging)."""
    w, s = r["window_size"], r["scale_factor"]
    data = dict(
        ann_file="a.json",
        class_map="c.txt",
        data_path="videos",
        block_list=None,
        filter_gt=False,
        feature_stride=r["feature_stride"],
        sample_stride=r["sample_stride"],
    )

    def pipe(load: dict, images: list, keys: list) -> list:
        return [
            dict(type="PrepareVideoInfo", format=r["video_format"]),
            dict(type="mmaction.DecordInit", num_threads=4),
            dict(type="LoadFrames", num_clips=1, **load),
            dict(type="mmaction.DecordDecode"),
            *[dict(type=f"mmaction.{t}", **p) for t, p in images],
            dict(type="mmaction.FormatShape", input_format="NCTHW"),
            dict(type="ConvertToTensor", keys=["imgs", *keys]),
            dict(type="Collect", inputs="imgs", keys=["masks", *keys]),
        ]

    gt = ["gt_segments", "gt_labels"]
    train_load = dict(
        method="random_trunc", trunc_len=w, trunc_thresh=r["train.trunc_thresh"], crop_ratio=r["train.crop_ratio"], scale_factor=s
    )
    sliding = dict(method="sliding_window", scale_factor=s)
    dataset = dict(
        train=dict(
            type="ThumosPaddingDataset", subset_name=r["train.subset_name"], **data, pipeline=pipe(train_load, r["train.pipeline"], gt)
        ),
        val=dict(
            type="ThumosSlidingDataset",
            subset_name=r["val.subset_name"],
            **data,
            window_size=w,
            window_overlap_ratio=r["val.window_overlap_ratio"],
            pipeline=pipe(sliding, r["val.pipeline"], gt),
        ),
        test=dict(
            type="ThumosSlidingDataset",
            subset_name=r["test.subset_name"],
            **data,
            test_mode=True,
            window_size=w,
            window_overlap_ratio=r["test.window_overlap_ratio"],
            pipeline=pipe(sliding, r["test.pipeline"], []),
        ),
    )
    vit = {k.split(".", 1)[1]: v for k, v in r.items() if k.startswith("backbone.") and v is not None}
    custom = dict(pretrain=vit.pop("pretrain"), norm_eval=vit.pop("norm_eval"), freeze_backbone=vit.pop("freeze_backbone"))
    vit["norm_cfg"] = dict(type="LN", eps=vit.pop("norm_eps"))
    vit["return_feat_map"] = True
    chunks = r["chunks"]
    custom["pre_processing_pipeline"] = [dict(type="Rearrange", keys=["frames"], ops="b n c (t1 t) h w -> (b t1) n c t h w", t1=chunks)]
    custom["post_processing_pipeline"] = [
        dict(type="Reduce", keys=["feats"], ops="b n c t h w -> b c t", reduction="mean"),
        dict(type="Rearrange", keys=["feats"], ops="(b t1) c t -> b c (t1 t)", t1=chunks),
        dict(type="Interpolate", keys=["feats"], size=r["interpolate"]),
    ]
    p = {k.split(".", 1)[1]: v for k, v in r.items() if k.startswith("projection.")}
    model = dict(
        type="ActionFormer",
        backbone=dict(
            type="mmaction.Recognizer3D",
            backbone=vit,
            custom=custom,
            data_preprocessor=dict(type="mmaction.ActionDataPreprocessor", mean=r["mean"], std=r["std"], format_shape="NCTHW"),
        ),
        projection=dict(
            type="Conv1DTransformerProj",
            in_channels=p["in_channels"],
            out_channels=p["out_channels"],
            arch=tuple(p["arch"]),
            conv_cfg=dict(kernel_size=p["kernel_size"], proj_pdrop=p["proj_pdrop"]),
            norm_cfg=dict(type="LN"),
            attn_cfg=dict(n_head=p["n_head"], n_mha_win_size=p["n_mha_win_size"]),
            path_pdrop=p["path_pdrop"],
            use_abs_pe=p["use_abs_pe"],
            max_seq_len=p["max_seq_len"],
            input_pdrop=p["input_pdrop"],
        ),
        neck=dict(type="FPNIdentity", in_channels=r["neck.channels"], out_channels=r["neck.channels"], num_levels=r["neck.num_levels"]),
        rpn_head=dict(
            type="ActionFormerHead",
            in_channels=r["neck.channels"],
            center_sample="radius",
            prior_generator=dict(type="PointGenerator", strides=r["head.strides"], regression_range=r["head.regression_range"]),
            loss=dict(cls_loss=dict(type="FocalLoss"), reg_loss=dict(type="DIOULoss")),
            **{k.split(".", 1)[1]: v for k, v in r.items() if k.startswith("head.") and k not in ("head.strides", "head.regression_range")},
        ),
    )
    sub = lambda prefix: {k[len(prefix) :]: v for k, v in r.items() if k.startswith(prefix)}  # noqa: E731
    solver = {k: v for k, v in sub("solver.").items() if "." not in k}
    for split in ("train", "val", "test"):
        solver[split] = dict(batch_size=r[f"solver.{split}.batch_size"], num_workers=r[f"solver.{split}.num_workers"])
    optimizer = {k: v for k, v in sub("optimizer.").items() if k != "backbone"}
    if r["optimizer.backbone"] is not None:
        optimizer["backbone"] = copy.deepcopy(r["optimizer.backbone"])
    return dict(
        window_size=w,
        scale_factor=s,
        dataset=dataset,
        model=model,
        solver=solver,
        optimizer=optimizer,
        scheduler=sub("scheduler."),
        workflow=sub("workflow."),
        inference=dict(load_from_raw_predictions=False, save_raw_prediction=False),
        post_processing=dict(nms=sub("nms."), save_dict=False),
        evaluation=dict(
            type="mAP", subset=r["evaluation.subset"], tiou_thresholds=r["evaluation.tiou_thresholds"], ground_truth_filename="a.json"
        ),
        work_dir=f"exps/thumos/{w}",
    )


def _convert_and_load(opentad_cfg: dict, tmp_path: Path, name: str = "converted") -> dict:
    path = tmp_path / f"{name}.py"
    path.write_text(render_adatad_config(convert_opentad_config(opentad_cfg, name)))
    return load_config(path)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_converter_on_recipe_shaped_configs(name, tmp_path):
    cfg = _convert_and_load(opentad_config_from_recipe(RECIPES[name]), tmp_path)
    assert mismatches(cfg, expected_adatad(RECIPES[name])) == []
    assert recipe_diff(cfg, load_config(SHIPPED / f"{name}.py")) == []


def _s_adapter() -> dict:
    return opentad_config_from_recipe(RECIPES["e2e_thumos_videomae_s_768x1_160_adapter"])


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda c: c["dataset"]["train"]["pipeline"].insert(5, dict(type="mmaction.RandomErasing")),
            r"dataset\.train\.pipeline\[5\]\.type = 'mmaction\.RandomErasing': unknown transform",
        ),
        (
            lambda c: c["dataset"]["train"]["pipeline"][7].update(direction="vertical"),
            r"dataset\.train\.pipeline\[7\]\.direction = 'vertical'",
        ),
        (lambda c: c["dataset"]["train"]["pipeline"][9].update(hue=0.2), r"dataset\.train\.pipeline\[9\]\.hue = 0\.2"),
        (lambda c: c["dataset"]["train"]["pipeline"][5].update(lazy=True), r"pipeline\[5\]\.lazy = True"),
        (lambda c: c["dataset"]["test"]["pipeline"][4].update(scale=(160, -1)), r"dataset\.test\.pipeline\[4\]\.scale = \(160, -1\)"),
        (lambda c: c["dataset"]["train"].update(filter_gt=True), r"dataset\.train\.filter_gt = True"),
        (lambda c: c["dataset"]["train"].update(foo=1), r"dataset\.train\.foo = 1: not supported"),
        (lambda c: c["model"]["backbone"]["backbone"].update(qk_scale=0.1), r"model\.backbone\.backbone\.qk_scale = 0\.1"),
        (lambda c: c["model"]["backbone"]["backbone"].update(total_frames=512), r"total_frames = 512"),
        (lambda c: c["model"]["neck"].update(type="FPN"), r"model\.neck\.type = 'FPN'"),
        (lambda c: c["model"]["backbone"]["custom"].update(temporal_checkpointing=True), r"custom\.temporal_checkpointing = True"),
        (lambda c: c["workflow"].update(val_loss_interval=2), r"workflow\.val_loss_interval = 2: adatad has no validation-loss"),
        (lambda c: c["post_processing"]["nms"].update(method=1), r"post_processing\.nms\.method = 1"),
        (lambda c: c["evaluation"].update(subset="test"), r"evaluation\.subset = 'test'"),
        (lambda c: c["scheduler"].update(type="MultiStepLR"), r"scheduler\.type = 'MultiStepLR'"),
        (lambda c: c["optimizer"].update(type="SGD"), r"optimizer\.type = 'SGD'"),
        (lambda c: c["solver"]["train"].update(pin_memory=False), r"solver\.train\.pin_memory = False"),
        (lambda c: c["inference"].update(load_from_raw_predictions=True), r"inference\.load_from_raw_predictions = True"),
        (lambda c: c.update(resume=dict(path="x")), r"resume = \{'path': 'x'\}: not an OpenTAD section"),
        (lambda c: c["dataset"]["test"]["pipeline"][2].update(scale_factor=2), r"scale_factor = 2: differs"),
        (lambda c: c["model"]["backbone"]["custom"].update(freeze_backbone=True), r"freeze_backbone = True"),
    ],
)
def test_converter_names_what_it_cannot_represent(edit, message):
    cfg = _s_adapter()
    edit(cfg)
    with pytest.raises(UnsupportedOpenTADConfig, match=message):
        convert_opentad_config(cfg, "x.py")


def test_converter_lists_what_it_ignores(tmp_path):
    conv = convert_opentad_config(_s_adapter(), "x.py")
    ignored = {k: reason for k, _, reason in conv.ignored}
    assert "decoder threads" in ignored["dataset.train.pipeline[1].num_threads"]
    assert "validation loss" in ignored["dataset.val"] and "dataset.test" in ignored["dataset.val"]
    assert {
        "work_dir",
        "inference.load_from_raw_predictions",
        "post_processing.save_dict",
        "workflow.val_loss_interval",
        "window_size",
    } <= set(ignored)
    text = render_adatad_config(conv)
    assert "#   dataset.train.pipeline[1].num_threads = 4: decoder threads" in text


def test_converter_reads_base_chains_with_opentad_merge_rules(tmp_path):
    """_base_ lists merge in order, dicts merge, lists are replaced, _delete_ replaces a dict."""
    base = opentad_config_from_recipe(RECIPES["e2e_thumos_videomae_s_768x1_160_adapter"])
    (tmp_path / "base.py").write_text("".join(f"{k} = {v!r}\n" for k, v in base.items()))
    (tmp_path / "child.py").write_text(
        "_base_ = ['base.py']\n"
        "model = dict(backbone=dict(backbone=dict(depth=6, adapter_index=[0, 5])), projection=dict(in_channels=384))\n"
        "optimizer = dict(backbone=dict(_delete_=True, lr=1e-5, weight_decay=0.05))\n"
    )
    text = convert_file(tmp_path / "child.py", tmp_path / "out.py")
    cfg = load_config(tmp_path / "out.py")
    assert cfg["model"]["backbone"]["depth"] == 6 and cfg["model"]["backbone"]["adapter_index"] == [0, 5]
    assert cfg["model"]["backbone"]["embed_dims"] == 384
    assert cfg["optimizer"]["backbone"] == {"lr": 1e-5, "weight_decay": 0.05, "custom": [], "exclude": []}
    assert "child.py" in text


def test_convert_config_cli(tmp_path):
    base = opentad_config_from_recipe(RECIPES["e2e_thumos_videomae_s_768x1_160_frozen"])
    src = tmp_path / "frozen.py"
    src.write_text("".join(f"{k} = {v!r}\n" for k, v in base.items()))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run(
        [sys.executable, "-m", "adatad.cli", "convert-config", str(src), "--out", str(tmp_path / "a.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    cfg = load_config(tmp_path / "a.py")
    assert cfg["dataset"]["transform"]["train"]["crop"] == "center" and cfg["post_processing"]["nms"]["min_score"] == 0.001
    src.write_text(src.read_text() + "model['neck']['type'] = 'FPN'\n")
    res = subprocess.run(
        [sys.executable, "-m", "adatad.cli", "convert-config", str(src)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert res.returncode == 1 and "model.neck.type = 'FPN'" in res.stderr


# ------------------------------------------------------------------------------- OpenTAD's own files (optional)
def _opentad_root() -> Path | None:
    env = os.environ.get("OPENTAD_ROOT")
    if env:
        return Path(env) if (Path(env) / "configs" / "adatad" / "thumos").is_dir() else None
    return None


@pytest.fixture(scope="session")
def opentad_configs(tmp_path_factory) -> Path:
    """OpenTAD's configs/ directory: $OPENTAD_ROOT, else an export of the mirror at the recorded commit, else skip."""
    root = _opentad_root()
    if root is not None:
        return root / "configs"
    if not MIRROR.is_dir():
        pytest.skip("OpenTAD source not available (set OPENTAD_ROOT to an OpenTAD checkout)")
    out = tmp_path_factory.mktemp("opentad")
    archive = subprocess.run(["git", "-C", str(MIRROR), "archive", OPENTAD_COMMIT, "configs"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out / "configs"


def test_recorded_recipes_cover_opentads_thumos_configs(opentad_configs):
    assert sorted(p.stem for p in (opentad_configs / "adatad" / "thumos").glob("*.py")) == sorted(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_converted_opentad_config_matches_recipe_and_shipped(name, opentad_configs, tmp_path):
    out = tmp_path / f"{name}.py"
    convert_file(opentad_configs / "adatad" / "thumos" / f"{name}.py", out)
    converted = load_config(out)
    assert mismatches(converted, expected_adatad(RECIPES[name])) == []
    assert recipe_diff(converted, load_config(SHIPPED / f"{name}.py")) == []


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recorded_recipe_matches_opentad_source(name, opentad_configs):
    """The hand-recorded data against OpenTAD's merged config (raw keys, OpenTAD's defaults where a key is absent)."""
    c = load_opentad_config(opentad_configs / "adatad" / "thumos" / f"{name}.py")
    r = RECIPES[name]
    tr, va, te = c["dataset"]["train"], c["dataset"]["val"], c["dataset"]["test"]
    load = next(s for s in tr["pipeline"] if s["type"] == "LoadFrames")
    images = lambda p: [
        (s["type"].split(".", 1)[1], {k: v for k, v in s.items() if k != "type"})
        for s in p  # noqa: E731
        if s["type"].startswith("mmaction.") and s["type"] not in ("mmaction.DecordInit", "mmaction.DecordDecode", "mmaction.FormatShape")
    ]
    vit, custom = c["model"]["backbone"]["backbone"], c["model"]["backbone"]["custom"]
    proj, head, solver = c["model"]["projection"], c["model"]["rpn_head"], c["solver"]
    raw = {
        "window_size": te["window_size"],
        "scale_factor": load.get("scale_factor", 1),
        "feature_stride": tr["feature_stride"],
        "sample_stride": tr["sample_stride"],
        "video_format": tr["pipeline"][0]["format"],
        "train.subset_name": tr["subset_name"],
        "val.subset_name": va["subset_name"],
        "test.subset_name": te["subset_name"],
        "test.test_mode": te.get("test_mode", False),
        "train.trunc_thresh": load["trunc_thresh"],
        "train.crop_ratio": load["crop_ratio"],
        "val.window_overlap_ratio": va.get("window_overlap_ratio", 0.25),
        "test.window_overlap_ratio": te.get("window_overlap_ratio", 0.25),
        "train.pipeline": images(tr["pipeline"]),
        "val.pipeline": images(va["pipeline"]),
        "test.pipeline": images(te["pipeline"]),
        "mean": c["model"]["backbone"]["data_preprocessor"]["mean"],
        "std": c["model"]["backbone"]["data_preprocessor"]["std"],
        "backbone.type": vit["type"],
        "backbone.pretrain": custom["pretrain"],
        "backbone.norm_eval": custom.get("norm_eval", True),
        "backbone.freeze_backbone": custom.get("freeze_backbone", False),
        "backbone.norm_eps": vit["norm_cfg"]["eps"],
        "chunks": custom["pre_processing_pipeline"][0]["t1"],
        "interpolate": custom["post_processing_pipeline"][2]["size"],
        "projection.kernel_size": proj["conv_cfg"]["kernel_size"],
        "projection.proj_pdrop": proj["conv_cfg"]["proj_pdrop"],
        "projection.n_head": proj["attn_cfg"]["n_head"],
        "projection.n_mha_win_size": proj["attn_cfg"]["n_mha_win_size"],
        "projection.input_pdrop": proj.get("input_pdrop", 0.0),
        "neck.channels": c["model"]["neck"]["out_channels"],
        "neck.num_levels": c["model"]["neck"]["num_levels"],
        "head.strides": head["prior_generator"]["strides"],
        "head.regression_range": head["prior_generator"]["regression_range"],
        "optimizer.backbone": (None if custom.get("freeze_backbone") else {"custom": [], "exclude": [], **c["optimizer"]["backbone"]}),
        "pre_nms_thresh": c["post_processing"].get("pre_nms_thresh", 0.001),
        "pre_nms_topk": c["post_processing"].get("pre_nms_topk", 2000),
        "evaluation.subset": c["evaluation"]["subset"],
        "evaluation.tiou_thresholds": c["evaluation"]["tiou_thresholds"],
    }
    vit_defaults = {"tubelet_size": 2, "drop_path_rate": 0.0, "with_cp": False}
    adapter = vit["type"] != "VisionTransformerCP"
    for k in (
        "img_size",
        "patch_size",
        "embed_dims",
        "depth",
        "num_heads",
        "mlp_ratio",
        "qkv_bias",
        "num_frames",
        "tubelet_size",
        "drop_path_rate",
        "with_cp",
    ):
        raw[f"backbone.{k}"] = vit.get(k, vit_defaults.get(k))
    ladder = vit["type"] == "VisionTransformerLadder"
    raw["backbone.total_frames"] = vit.get("total_frames", 768) if adapter else None
    raw["backbone.adapter_index"] = vit.get("adapter_index", list(range(6, 12)) if ladder else [3, 5, 7, 11]) if adapter else None
    raw["backbone.adapter_mlp_ratio"] = vit.get("adapter_mlp_ratio", 0.25) if adapter else None
    for k in ("in_channels", "out_channels", "arch", "path_pdrop", "use_abs_pe", "max_seq_len"):
        raw[f"projection.{k}"] = proj.get(k)
    for k in (
        "num_classes",
        "feat_channels",
        "num_convs",
        "cls_prior_prob",
        "loss_normalizer",
        "loss_normalizer_momentum",
        "center_sample_radius",
        "label_smoothing",
    ):
        raw[f"head.{k}"] = head[k]
    for split in ("train", "val", "test"):
        for k in ("batch_size", "num_workers"):
            raw[f"solver.{split}.{k}"] = solver[split][k]
    for k, default in (("clip_grad_norm", None), ("amp", False), ("fp16_compress", False), ("static_graph", False), ("ema", False)):
        raw[f"solver.{k}"] = solver.get(k, default)
    for k in ("type", "lr", "weight_decay", "paramwise"):
        raw[f"optimizer.{k}"] = c["optimizer"].get(k, False)
    for k in ("type", "warmup_epoch", "max_epoch"):
        raw[f"scheduler.{k}"] = c["scheduler"][k]
    nms_defaults = {
        "iou_threshold": 0.0,
        "min_score": 0.0,
        "max_seg_num": 100,
        "use_soft_nms": True,
        "multiclass": True,
        "sigma": 0.5,
        "voting_thresh": 0.0,
    }
    for k, default in nms_defaults.items():
        raw[f"nms.{k}"] = c["post_processing"]["nms"].get(k, default)
    for k in ("logging_interval", "checkpoint_interval", "val_loss_interval", "val_eval_interval", "val_start_epoch", "end_epoch"):
        raw[f"workflow.{k}"] = c["workflow"][k]
    assert sorted(raw) == sorted(r)
    wrong = [f"{k}: recorded {r[k]!r} != OpenTAD {raw[k]!r}" for k in r if not _same(r[k], raw[k])]
    assert wrong == []
