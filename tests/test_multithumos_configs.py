"""The shipped MultiTHUMOS configs (configs/adatad/multi_thumos/) are what `adatad convert-config` makes of OpenTAD's
MultiTHUMOS AdaTAD configs, hold the recipe values read by hand from OpenTAD's files, and build at a tiny size.

The equality with the converter's output needs OpenTAD's source (``$OPENTAD_ROOT`` or the mirror; see
``tests/test_recipes.py``) and skips without it; the hand-read values and the tiny builds run everywhere.
"""

from __future__ import annotations

import pytest
import torch
from test_recipes import opentad_configs  # noqa: F401 - the session fixture: OpenTAD's configs/ directory

from adatad.compat.convert_config import convert_file
from adatad.config import config_root, load_config
from adatad.models.detector import build_detector

SHIPPED = config_root() / "adatad" / "multi_thumos"
NAMES = sorted(
    [f"e2e_multithumos_{m}_768x1_160_adapter" for m in ("videomae_s", "videomae_b", "videomae_l", "videomae_h", "videomaev2_g")]
    + ["e2e_multithumos_videomaev2_g_768x2_224_adapter"]
)


def _sections(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def test_every_opentad_multithumos_config_is_shipped(opentad_configs):  # noqa: F811
    assert sorted(p.stem for p in (opentad_configs / "adatad" / "multi_thumos").glob("*.py")) == NAMES
    assert sorted(p.stem for p in SHIPPED.glob("*.py")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_shipped_config_equals_convert_config_output(name, opentad_configs, tmp_path):  # noqa: F811
    out = tmp_path / f"{name}.py"
    convert_file(opentad_configs / "adatad" / "multi_thumos" / f"{name}.py", out)
    assert _sections(load_config(SHIPPED / f"{name}.py")) == _sections(load_config(out))


def test_recipe_values_read_from_opentad():
    """Values read by hand from OpenTAD's files (configs/adatad/multi_thumos/*.py and
    _base_/datasets/multithumos/e2e_train_trunc_test_sw_256x224x224.py)."""
    s = load_config(SHIPPED / "e2e_multithumos_videomae_s_768x1_160_adapter.py")
    d, m, p = s["dataset"], s["model"], s["post_processing"]
    assert (d["sampling"], d["window_size"], d["scale_factor"], d["feature_stride"], d["class_agnostic"]) == ("windows", 768, 1, 4, False)
    assert d["annotation_path"] == "data/multithumos/annotations/multithumos_anno.json"
    assert (d["train"]["subset_name"], d["test"]["subset_name"], d["train"]["trunc_thresh"]) == ("training", "validation", 0.75)
    assert (m["head"]["num_classes"], m["projection"]["arch"], m["neck"]["num_levels"]) == (65, [3, 0, 5], 6)
    assert (p["pre_nms_topk"], p["nms"]["max_seg_num"], p["nms"]["sigma"], p["nms"]["multiclass"], p["nms"]["voting_thresh"]) == (
        8000,
        8000,
        0.5,
        True,
        0.7,
    )
    assert s["evaluation"]["tiou_thresholds"] == pytest.approx([0.1 * i for i in range(1, 10)])
    assert (s["scheduler"]["max_epoch"], s["workflow"]["end_epoch"], s["workflow"]["val_start_epoch"]) == (100, 80, 49)
    g = load_config(SHIPPED / "e2e_multithumos_videomaev2_g_768x2_224_adapter.py")
    assert (g["dataset"]["scale_factor"], g["dataset"]["transform"]["train"]["crop_size"], g["model"]["backbone"]["embed_dims"]) == (
        2,
        224,
        1408,
    )


@pytest.mark.parametrize("name", NAMES)
def test_shipped_config_builds_at_a_tiny_size(name):
    """Every recipe builds with its own window (768), scale factor and 65-class head, the ViT shrunk (width 32, one
    block); the VideoMAE-S one also runs a training step with a multi-label ground truth (one segment, two classes)."""
    cfg = load_config(SHIPPED / f"{name}.py")
    b = cfg["model"]["backbone"]
    b.update(embed_dims=32, depth=1, num_heads=2, mlp_ratio=2.0, with_cp=False, pretrained=None)
    b["adapter_index"] = [0] if b["adapter_index"] else []
    cfg["model"]["projection"].update(in_channels=32, out_channels=32)
    cfg["model"]["head"]["feat_channels"] = 32
    torch.manual_seed(0)
    model = build_detector(cfg, load_pretrained=False)
    scale = cfg["dataset"]["scale_factor"]
    assert model.scale_factor == scale and model.backbone.total_frames == 768 * scale and model.backbone.out_len == 768
    assert model.num_classes == 65
    if name != "e2e_multithumos_videomae_s_768x1_160_adapter":
        return
    inputs = torch.randint(0, 255, (1, 3, 768, 32, 32), dtype=torch.uint8)
    gt = [torch.tensor([[10.0, 50.0], [10.0, 50.0], [30.0, 90.0]])]
    losses = model(inputs, torch.ones(1, 768, dtype=torch.bool), gt, [torch.tensor([3, 7, 64])])
    losses["cost"].backward()
    assert torch.isfinite(losses["cost"])
