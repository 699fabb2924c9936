"""The shipped MultiTHUMOS and Charades configs (configs/adatad/{multi_thumos,charades}/) are what `adatad
convert-config` makes of OpenTAD's AdaTAD configs of those benchmarks, hold the recipe values read by hand from
OpenTAD's files, and build at a tiny size.

The equality with the converter's output needs OpenTAD's source (``$OPENTAD_ROOT`` or the mirror; see
``tests/test_recipes.py``) and skips without it; the hand-read values and the tiny builds run everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_recipes import opentad_configs  # noqa: F401 - the session fixture: OpenTAD's configs/ directory

from adatad.compat.convert_config import UnsupportedOpenTADConfig, convert_file, convert_opentad_config, load_opentad_config
from adatad.config import config_root, load_config
from adatad.models.detector import build_detector

SIZES = ("videomae_s", "videomae_b", "videomae_l", "videomae_h", "videomaev2_g")
NAMES = {
    "multi_thumos": sorted([f"e2e_multithumos_{m}_768x1_160_adapter" for m in SIZES] + ["e2e_multithumos_videomaev2_g_768x2_224_adapter"]),
    "charades": sorted(f"e2e_charades_{m}_512x1_160_adapter" for m in SIZES),
}
ALL = [(d, n) for d, names in NAMES.items() for n in names]


def _sections(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


@pytest.mark.parametrize("folder", sorted(NAMES))
def test_every_opentad_config_is_shipped(folder, opentad_configs):  # noqa: F811
    assert sorted(p.stem for p in (opentad_configs / "adatad" / folder).glob("*.py")) == NAMES[folder]
    assert sorted(p.stem for p in (config_root() / "adatad" / folder).glob("*.py")) == NAMES[folder]


@pytest.mark.parametrize("folder, name", ALL)
def test_shipped_config_equals_convert_config_output(folder, name, opentad_configs, tmp_path):  # noqa: F811
    out = tmp_path / f"{name}.py"
    convert_file(opentad_configs / "adatad" / folder / f"{name}.py", out)
    assert _sections(load_config(config_root() / "adatad" / folder / f"{name}.py")) == _sections(load_config(out))


def test_multithumos_recipe_values_read_from_opentad():
    """Values read by hand from OpenTAD's configs/adatad/multi_thumos/*.py and
    _base_/datasets/multithumos/e2e_train_trunc_test_sw_256x224x224.py."""
    s = load_config(config_root() / "adatad" / "multi_thumos" / "e2e_multithumos_videomae_s_768x1_160_adapter.py")
    d, m, p = s["dataset"], s["model"], s["post_processing"]
    assert (d["sampling"], d["window_size"], d["scale_factor"], d["feature_stride"], d["fps"]) == ("windows", 768, 1, 4, -1)
    assert d["annotation_path"] == "data/multithumos/annotations/multithumos_anno.json"
    assert (d["train"]["subset_name"], d["test"]["subset_name"], d["train"]["trunc_thresh"]) == ("training", "validation", 0.75)
    assert (m["head"]["num_classes"], m["projection"]["arch"], m["neck"]["num_levels"]) == (65, [3, 0, 5], 6)
    nms = p["nms"]
    assert (p["pre_nms_topk"], nms["max_seg_num"], nms["sigma"], nms["multiclass"], nms["voting_thresh"]) == (8000, 8000, 0.5, True, 0.7)
    assert s["evaluation"]["tiou_thresholds"] == pytest.approx([0.1 * i for i in range(1, 10)])
    assert (s["scheduler"]["max_epoch"], s["workflow"]["end_epoch"], s["workflow"]["val_start_epoch"]) == (100, 80, 49)
    g = load_config(config_root() / "adatad" / "multi_thumos" / "e2e_multithumos_videomaev2_g_768x2_224_adapter.py")
    assert (g["dataset"]["scale_factor"], g["dataset"]["transform"]["train"]["crop_size"], g["model"]["backbone"]["embed_dims"]) == (
        2,
        224,
        1408,
    )


def test_charades_recipe_values_read_from_opentad():
    """Values read by hand from OpenTAD's configs/adatad/charades/*.py and
    _base_/datasets/charades/e2e_train_trunc_test_sw_s4_512x1_224.py (EpicKitchens datasets, fps=30)."""
    s = load_config(config_root() / "adatad" / "charades" / "e2e_charades_videomae_s_512x1_160_adapter.py")
    d, m, p = s["dataset"], s["model"], s["post_processing"]
    assert (d["window_size"], d["scale_factor"], d["fps"], d["train"]["trunc_thresh"]) == (512, 1, 30.0, 0.5)
    assert (d["train"]["subset_name"], d["val"]["subset_name"], d["test"]["subset_name"]) == ("training", "testing", "testing")
    assert d["annotation_path"] == "data/charades/annotations/charades.json"
    h, pr = m["head"], m["projection"]
    assert (h["num_classes"], m["neck"]["num_levels"], h["strides"][-1], h["regression_range"][-2:]) == (
        157,
        8,
        128,
        [[128, 256], [256, 10000]],
    )
    assert (pr["arch"], pr["use_abs_pe"], pr["input_pdrop"]) == ([2, 2, 7], True, 0.3)
    assert (p["pre_nms_topk"], p["nms"]["max_seg_num"], p["nms"]["sigma"], p["nms"]["multiclass"]) == (2000, 1000, 0.3, True)
    assert s["evaluation"]["tiou_thresholds"] == pytest.approx([0.1 * i for i in range(1, 10)])
    assert (s["solver"]["train"]["batch_size"], s["scheduler"]["max_epoch"], s["workflow"]["val_start_epoch"]) == (16, 20, 7)


@pytest.mark.parametrize("folder, name", ALL)
def test_shipped_config_builds_at_a_tiny_size(folder, name):
    """Every recipe builds with its own window, scale factor, levels and head, the ViT shrunk (width 32, one
    block); the VideoMAE-S ones also run a training step with a multi-label ground truth (one segment, two classes)."""
    cfg = load_config(config_root() / "adatad" / folder / f"{name}.py")
    b = cfg["model"]["backbone"]
    b.update(embed_dims=32, depth=1, num_heads=2, mlp_ratio=2.0, with_cp=False, pretrained=None)
    b["adapter_index"] = [0] if b["adapter_index"] else []
    cfg["model"]["projection"].update(in_channels=32, out_channels=32)
    cfg["model"]["head"]["feat_channels"] = 32
    torch.manual_seed(0)
    model = build_detector(cfg, load_pretrained=False)
    window, scale = cfg["dataset"]["window_size"], cfg["dataset"]["scale_factor"]
    assert model.scale_factor == scale and model.backbone.total_frames == window * scale and model.backbone.out_len == window
    assert model.num_classes == cfg["model"]["head"]["num_classes"] == {"multi_thumos": 65, "charades": 157}[folder]
    if "videomae_s" not in name:
        return
    inputs = torch.randint(0, 255, (1, 3, window, 32, 32), dtype=torch.uint8)
    gt = [torch.tensor([[10.0, 50.0], [10.0, 50.0], [30.0, 300.0]])]
    losses = model(inputs, torch.ones(1, window, dtype=torch.bool), gt, [torch.tensor([3, 7, 64])])
    losses["cost"].backward()
    assert torch.isfinite(losses["cost"])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["dataset"]["test"].update(type="ThumosSlidingDataset"), r"dataset\.test\.type = 'ThumosSlidingDataset'"),
        (lambda c: c["dataset"]["train"].update(fps=-1), r"dataset\.(train|test)\.fps = (-1|30)"),
        (lambda c: c["dataset"]["test"].update(fps=25), r"dataset\.test\.fps = 25(\.0)?: differs from dataset\.train\.fps"),
    ],
)
def test_converter_names_what_it_cannot_represent_in_charades_configs(edit, message, opentad_configs):  # noqa: F811
    cfg = load_opentad_config(opentad_configs / "adatad" / "charades" / "e2e_charades_videomae_s_512x1_160_adapter.py")
    edit(cfg)
    with pytest.raises(UnsupportedOpenTADConfig, match=message):
        convert_opentad_config(cfg, "x.py")


COUNTS = json.loads((Path(__file__).parent / "fixtures" / "opentad" / "param_counts" / "counts.json").read_text())
OPENTAD_CHILD = {"backbone": "backbone", "projection": "projection", "neck": "neck", "rpn_head": "head"}


@pytest.mark.parametrize("folder, name", ALL)
def test_full_size_parameter_counts_equal_opentads_on_meta(folder, name):
    """Built at full size on the meta device, each part of the detector has as many parameters (and buffer
    elements: position tables, the loss normaliser) as OpenTAD's model built from the same file (fixture
    param_counts, made by its make_fixture.py with OpenTAD's build_detector on the meta device)."""
    want = COUNTS[f"{folder}/{name}"]
    cfg = load_config(config_root() / "adatad" / folder / f"{name}.py")
    with torch.device("meta"):
        model = build_detector(cfg, load_pretrained=False)
    parts = dict(model.named_children())
    got = {}
    for theirs, ours in OPENTAD_CHILD.items():
        module = parts[ours] if ours in parts else parts[theirs]
        got[theirs] = {"params": sum(p.numel() for p in module.parameters()), "buffers": sum(b.numel() for b in module.buffers())}
    want_parts = {k: dict(want[k]) for k in OPENTAD_CHILD}
    want_parts["backbone"]["buffers"] -= 6  # OpenTAD's mmaction data preprocessor's mean and std (3 + 3), not ViT state
    assert got == want_parts
    assert sum(p.numel() for n, p in model.named_parameters() if "adapter" in n) == want["adapter_params"]


@pytest.mark.parametrize("window", [32, 512])
def test_charades_test_windows_equal_opentads(window, tmp_path):
    """dataset.fps=30: the test set's windows (from int(duration * 30) frames, not the file's ``frame``), their
    start frames and the fps / duration the post-processing reads equal OpenTAD's EpicKitchensSlidingDataset
    (fixture charades_windows, made by its make_fixture.py)."""
    from adatad.data.datasets import SlidingWindowDataset

    fix = json.loads((Path(__file__).parent / "fixtures" / "opentad" / "charades_windows" / "fixture.json").read_text())
    (tmp_path / "charades.json").write_text(json.dumps({"database": fix["database"]}))
    (tmp_path / "category_idx.txt").write_text("".join(c + "\n" for c in fix["classes"]))
    for name in fix["database"]:
        (tmp_path / f"{name}.mp4").write_bytes(b"")  # the windows need no decoding
    ds = SlidingWindowDataset(
        tmp_path / "charades.json", tmp_path / "category_idx.txt", tmp_path, subset_name="testing", window_size=window,
        feature_stride=4, sample_stride=1, window_overlap_ratio=0.5, test_mode=True, fps=30.0,
    )  # fmt: skip
    got = []
    for vi, start, _end, _, _ in ds.windows:
        v = ds.videos[vi]
        got.append([v.name, start * ds.snippet_stride, v.fps, v.duration])
    assert got == fix["windows"][str(window)]
