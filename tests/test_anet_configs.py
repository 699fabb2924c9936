"""The shipped ActivityNet-1.3 configs (configs/adatad/anet/) are what `adatad convert-config` makes of OpenTAD's
ActivityNet AdaTAD configs, hold the recipe values read by hand from OpenTAD's files, and build at a tiny size.

The equality with the converter's output needs OpenTAD's source (``$OPENTAD_ROOT`` or the mirror; see
``tests/test_recipes.py``) and skips without it; the hand-read values and the tiny builds run everywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_recipes import opentad_configs  # noqa: F401 - the session fixture: OpenTAD's configs/ directory

from adatad.compat.convert_config import convert_file
from adatad.config import config_root, load_config
from adatad.models.detector import build_detector

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = config_root() / "adatad" / "anet"
SIZES = ("videomae_s", "videomae_b", "videomae_l", "videomae_h", "videomaev2_g")
NAMES = sorted(
    [f"e2e_anet_{m}_192x4_160_{mode}" for m in SIZES for mode in ("adapter", "frozen", "fullft")]
    + [
        "e2e_anet_videomae_l_192x4_224_adapter_cls",
        "e2e_anet_videomaev2_g_192x4_224_adapter",
        "e2e_anet_videomaev2_g_192x4_224_adapter_internvideo",
        "e2e_anet_videomaev2_g_192x4_224_adapter_internvideo2",
    ]
)


def _sections(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def test_every_opentad_anet_config_is_shipped(opentad_configs):  # noqa: F811
    assert sorted(p.stem for p in (opentad_configs / "adatad" / "anet").glob("*.py")) == NAMES
    assert sorted(p.stem for p in SHIPPED.glob("*.py")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_shipped_config_equals_convert_config_output(name, opentad_configs, tmp_path):  # noqa: F811
    out = tmp_path / f"{name}.py"
    convert_file(opentad_configs / "adatad" / "anet" / f"{name}.py", out)
    assert _sections(load_config(SHIPPED / f"{name}.py")) == _sections(load_config(out))


def test_recipe_values_read_from_opentad():
    """Values read by hand from OpenTAD's files (configs/adatad/anet/*.py and the _base_ dataset file)."""
    s = load_config(SHIPPED / "e2e_anet_videomae_s_192x4_160_adapter.py")
    d, m, p = s["dataset"], s["model"], s["post_processing"]
    assert (d["sampling"], d["window_size"], d["scale_factor"], d["video_prefix"], d["class_agnostic"]) == ("resize", 192, 4, "v_", True)
    assert (d["train"]["filter_gt"], d["train"]["subset_name"], d["test"]["subset_name"]) == (True, "training", "validation")
    assert (d["transform"]["train"]["resize_short"], d["transform"]["train"]["crop_size"], d["transform"]["test"]["crop_size"]) == (
        182,
        160,
        160,
    )
    h = m["head"]
    assert (h["num_classes"], h["label_smoothing"], h["loss_weight"], h["loss_normalizer"]) == (1, 0.1, 2.0, 200)
    assert (m["backbone"]["embed_dims"], m["backbone"]["adapter_index"], m["projection"]["out_channels"]) == (384, list(range(12)), 256)
    assert p["nms"] == dict(p["nms"], sigma=0.7, max_seg_num=100, min_score=0.001, multiclass=False, voting_thresh=0.9)
    assert p["external_cls"] == {"type": "CUHKANETClassifier", "path": "data/activitynet-1.3/classifiers/cuhk_val_simp_7.json", "topk": 2}
    assert s["evaluation"]["tiou_thresholds"] == pytest.approx([0.5 + 0.05 * i for i in range(10)])
    assert s["evaluation"]["blocked_videos"] == "data/activitynet-1.3/annotations/blocked.json"
    assert (s["solver"]["train"]["batch_size"], s["optimizer"]["lr"], s["scheduler"]["max_epoch"]) == (16, 1e-3, 15)

    c = load_config(SHIPPED / "e2e_anet_videomae_l_192x4_224_adapter_cls.py")
    assert (c["dataset"]["class_agnostic"], c["model"]["head"]["num_classes"], c["post_processing"]["external_cls"]) == (False, 200, None)
    assert (c["post_processing"]["nms"]["multiclass"], c["post_processing"]["nms"]["sigma"], c["model"]["head"]["loss_weight"]) == (
        True,
        0.75,
        1.0,
    )
    assert (c["dataset"]["transform"]["train"]["crop_size"], c["workflow"]["end_epoch"], c["scheduler"]["max_epoch"]) == (224, 15, 20)

    i2 = load_config(SHIPPED / "e2e_anet_videomaev2_g_192x4_224_adapter_internvideo2.py")["post_processing"]["external_cls"]
    assert (i2["type"], i2["topk"], i2["path"].endswith("anet_UMTv2_6B_k710+K40_f16_frozenTuning.json_converted.json")) == (
        "StandardClassifier",
        2,
        True,
    )
    assert load_config(SHIPPED / "e2e_anet_videomae_s_192x4_160_frozen.py")["model"]["backbone"]["mode"] == "frozen"


@pytest.mark.parametrize("name", NAMES)
def test_shipped_config_builds_at_a_tiny_size(name):
    """Every recipe builds with its own window (192), scale factor (4) and head; the ViT shrunk (width 32, one
    block); two of them also run a training step on 768 random frames."""
    cfg = load_config(SHIPPED / f"{name}.py")
    b = cfg["model"]["backbone"]
    b.update(embed_dims=32, depth=1, num_heads=2, mlp_ratio=2.0, with_cp=False, pretrained=None)
    b["adapter_index"] = [0] if b["adapter_index"] else []
    cfg["model"]["projection"].update(in_channels=32, out_channels=32)
    cfg["model"]["head"]["feat_channels"] = 32
    torch.manual_seed(0)
    model = build_detector(cfg, load_pretrained=False)
    assert model.scale_factor == 4 and model.backbone.total_frames == 768 and model.backbone.out_len == 192
    if name not in ("e2e_anet_videomae_s_192x4_160_adapter", "e2e_anet_videomae_l_192x4_224_adapter_cls"):
        return
    inputs = torch.randint(0, 255, (1, 3, 768, 32, 32), dtype=torch.uint8)
    losses = model(inputs, torch.ones(1, 192, dtype=torch.bool), [torch.tensor([[10.0, 50.0]])], [torch.tensor([0])])
    losses["cost"].backward()
    assert torch.isfinite(losses["cost"]) and model.num_classes == cfg["model"]["head"]["num_classes"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["dataset"]["test"].update(resize_length=128), r"dataset\.test\.resize_length = 128: differs"),
        (lambda c: c["dataset"]["test"]["pipeline"][2].update(scale_factor=2), r"scale_factor = 2: differs"),
        (lambda c: c["dataset"]["train"]["pipeline"][2].update(method="random_trunc"), r"method = 'random_trunc'"),
        (lambda c: c["dataset"]["test"].update(class_agnostic=False), r"dataset\.test\.class_agnostic = False: differs"),
        (lambda c: c["post_processing"]["external_cls"].update(type="TCANetClassifier"), r"external_cls\.type = 'TCANetClassifier'"),
        (lambda c: c["post_processing"]["external_cls"].update(foo=1), r"external_cls\.foo = 1: not supported"),
    ],
)
def test_converter_names_what_it_cannot_represent_in_anet_configs(edit, message, opentad_configs):  # noqa: F811
    from adatad.compat.convert_config import UnsupportedOpenTADConfig, convert_opentad_config, load_opentad_config

    cfg = load_opentad_config(opentad_configs / "adatad" / "anet" / "e2e_anet_videomae_s_192x4_160_adapter.py")
    edit(cfg)
    with pytest.raises(UnsupportedOpenTADConfig, match=message):
        convert_opentad_config(cfg, "x.py")
