"""The shipped EPIC-Kitchens-100 and Ego4D-MQ configs (configs/adatad/{epic,ego4d}/) are what `adatad convert-config`
makes of OpenTAD's AdaTAD configs, hold the recipe values read by hand from OpenTAD's files, build at a tiny size,
and at full size (meta device) have OpenTAD's parameter counts (``tests/fixtures/opentad/egocentric/param_counts.json``,
recorded by ``make_param_counts.py`` beside it). The converter comparison needs OpenTAD's source and skips without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_recipes import opentad_configs  # noqa: F401 - the session fixture: OpenTAD's configs/ directory

from adatad.compat.convert_config import convert_file
from adatad.config import config_root, load_config
from adatad.models.actionformer import pad_to_max_seq_len
from adatad.models.detector import build_detector
from adatad.models.weights import WeightLoadError

torch.set_num_threads(1)
CONFIGS = {
    "e2e_epic_videomae_l_ft_768x8_160_adapter_verb": "epic",
    "e2e_epic_videomae_l_ft_768x8_160_adapter_noun": "epic",
    "e2e_ego4d_internvideo_1800x4_192_adapter_lr4e-4": "ego4d",
}
COUNTS = json.loads((Path(__file__).parent / "fixtures/opentad/egocentric/param_counts.json").read_text())


def _shipped(name: str) -> Path:
    return config_root() / "adatad" / CONFIGS[name] / f"{name}.py"


def _sections(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def test_every_opentad_epic_and_ego4d_config_is_shipped(opentad_configs):  # noqa: F811
    for bench in ("epic", "ego4d"):
        want = sorted(p.stem for p in (opentad_configs / "adatad" / bench).glob("*.py"))
        assert sorted(p.stem for p in (config_root() / "adatad" / bench).glob("*.py")) == want


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shipped_config_equals_convert_config_output(name, opentad_configs, tmp_path):  # noqa: F811
    out = tmp_path / f"{name}.py"
    convert_file(opentad_configs / "adatad" / CONFIGS[name] / f"{name}.py", out)
    assert _sections(load_config(_shipped(name))) == _sections(load_config(out))


def test_recipe_values_read_from_opentad():
    """Values read by hand from OpenTAD's files (configs/adatad/{epic,ego4d}/*.py and their _base_ dataset files)."""
    verb = load_config(_shipped("e2e_epic_videomae_l_ft_768x8_160_adapter_verb"))
    noun = load_config(_shipped("e2e_epic_videomae_l_ft_768x8_160_adapter_noun"))
    ego = load_config(_shipped("e2e_ego4d_internvideo_1800x4_192_adapter_lr4e-4"))
    for c in (verb, noun):
        d, m = c["dataset"], c["model"]
        assert (d["window_size"], d["scale_factor"], d["feature_stride"], d["fps"]) == (768, 8, 16, 30)
        assert (d["train"]["filter_gt"], d["train"]["trunc_thresh"], d["test"]["window_overlap_ratio"]) == (True, 0.3, 0.5)
        assert (d["train"]["subset_name"], d["test"]["subset_name"]) == ("train", "val")
        assert m["projection"]["n_mha_win_size"] == 9 and m["projection"]["max_seq_len"] is None  # = window 768
        assert m["backbone"]["adapter_index"] == list(range(24)) and m["backbone"]["embed_dims"] == 1024
        assert (m["head"]["loss_normalizer"], m["head"]["loss_weight"]) == (250, 0.5)
        assert c["evaluation"]["tiou_thresholds"] == [0.1, 0.2, 0.3, 0.4, 0.5]
        nms = c["post_processing"]["nms"]
        assert (nms["sigma"], nms["voting_thresh"], c["post_processing"]["pre_nms_topk"]) == (0.4, 0.75, 5000)
    assert (verb["model"]["head"]["num_classes"], noun["model"]["head"]["num_classes"]) == (97, 293)
    assert (verb["model"]["head"]["label_smoothing"], noun["model"]["head"]["label_smoothing"]) == (0.0, 0.1)
    d, m = ego["dataset"], ego["model"]
    assert (d["window_size"], d["scale_factor"], d["feature_stride"], d["fps"]) == (1800, 4, 8, -1)
    assert (d["train"]["filter_gt"], d["test"]["window_overlap_ratio"], d["val"]["window_overlap_ratio"]) == (False, 0.0, 0.0)
    p = m["projection"]
    assert (p["arch"], p["n_mha_win_size"], p["max_seq_len"]) == ([2, 2, 9], [17] * 7 + [-1] * 3, 2048)
    assert (p["use_abs_pe"], p["proj_pdrop"], m["neck"]["num_levels"], m["head"]["num_classes"]) == (True, 0.1, 10, 110)
    assert m["backbone"]["adapter_index"] == list(range(12, 24)) and m["head"]["filter_similar_gt"] is False
    assert ego["evaluation"]["tiou_thresholds"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert (ego["post_processing"]["nms"]["sigma"], ego["post_processing"]["nms"]["voting_thresh"]) == (2.0, 0.95)


def test_tiou_and_nms_equal_the_post_processing_fixture():
    """The shipped configs carry the settings the egocentric post-processing fixture was recorded with."""
    fx = torch.load(Path(__file__).parent / "fixtures/opentad/egocentric/fixture.pt", weights_only=True)
    for name, bench in CONFIGS.items():
        if not name.endswith(("verb", "lr4e-4")):
            continue
        cfg = load_config(_shipped(name))
        assert cfg["evaluation"]["tiou_thresholds"] == fx[bench]["evaluation"]["tiou_thresholds"]
        for k, v in fx[bench]["post"]["nms"].items():
            assert cfg["post_processing"]["nms"][k] == v, (name, k)
        assert cfg["post_processing"]["pre_nms_topk"] == fx[bench]["post"]["pre_nms_topk"]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shipped_config_builds_at_a_tiny_size(name):
    """The recipe's window, scale factor, projection (local windows, levels, position table) and head with the ViT
    shrunk; a loss + backward of projection, neck and head on random backbone features of a window whose last 50
    snippets are padding (EPIC: 768 steps; Ego4D: 1800 padded to 2048)."""
    cfg = load_config(_shipped(name))
    b = cfg["model"]["backbone"]
    b.update(embed_dims=32, depth=2, num_heads=2, mlp_ratio=2.0, with_cp=False, pretrained=None)
    b["adapter_index"] = [1]
    cfg["model"]["projection"].update(in_channels=32, out_channels=32)
    cfg["model"]["head"]["feat_channels"] = 32
    torch.manual_seed(0)
    model = build_detector(cfg, load_pretrained=False)
    d = cfg["dataset"]
    assert model.backbone.total_frames == d["window_size"] * d["scale_factor"]
    assert len(model.rpn_head.strides) == cfg["model"]["neck"]["num_levels"]
    # a shorter window on the same model would need a rebuild of the ViT's table: run the projection + head only
    T = d["window_size"]
    feats = torch.randn(1, 32, T)
    masks = torch.zeros(1, T, dtype=torch.bool)
    masks[:, : T - 50] = True
    x, m = model.projection(*pad_to_max_seq_len(feats, masks, model.projection.max_seq_len, model.max_div_factor))
    x, m = model.neck(x, m)
    cls, reg = model.rpn_head(x, m)
    losses = model.rpn_head.losses(cls, reg, m, [torch.tensor([[10.0, 50.0]])], [torch.tensor([0])])
    losses["cost"].backward()
    assert torch.isfinite(losses["cost"]) and x[0].shape[-1] == (cfg["model"]["projection"]["max_seq_len"] or T)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_full_size_parameter_counts_equal_opentad(name):
    cfg = load_config(_shipped(name))
    with torch.device("meta"):
        model = build_detector(cfg, load_pretrained=False)
    want = COUNTS[name]
    got = {part: sum(p.numel() for p in getattr(model, part).parameters()) for part in ("backbone", "projection", "neck", "rpn_head")}
    assert got == {k: want[k] for k in got}
    assert sum(p.numel() for p in model.parameters()) == want["total"]
    adapters = sum(p.numel() for n, p in model.backbone.named_parameters() if "adapter" in n)
    assert adapters == want["adapters"]
    assert model.backbone.count_parameters()["trainable"] == adapters  # adapter mode: only the adapters train


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_missing_egocentric_checkpoint_names_what_is_missing(name, tmp_path, monkeypatch):
    cfg = load_config(_shipped(name))
    b = cfg["model"]["backbone"]
    b.update(embed_dims=32, depth=2, num_heads=2, mlp_ratio=2.0, with_cp=False, adapter_index=[1])
    cfg["model"]["projection"].update(in_channels=32, out_channels=32)
    cfg["model"]["head"]["feat_channels"] = 32
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightLoadError, match=rf"{Path(b['pretrained']).name}.*Google Drive.*put it at this path"):
        build_detector(cfg)


def test_epic_config_builds_its_datasets_with_fixed_fps_and_filter_gt(tmp_path):
    """The shipped EPIC config through the engine's builder: annotations without ``frame`` read at 30 fps, 0-frame
    training instances dropped (filter_gt), the test set keeps them; Ego4D reads ``frame``."""
    from adatad.engine.builders import build_dataset

    db = {
        "P01_01": {
            "subset": "train",
            "duration": 100.0,
            "annotations": [{"segment": [1.0, 2.5], "label": "id_001"}, {"segment": [5.0, 5.01], "label": "id_000"}],
        },  # fmt: skip
        "P02_01": {"subset": "val", "duration": 50.0, "annotations": [{"segment": [5.0, 5.01], "label": "id_000"}]},
    }
    (tmp_path / "ann.json").write_text(json.dumps({"database": db}))
    (tmp_path / "cls.txt").write_text("id_000\nid_001\n")
    for v in db:
        (tmp_path / f"{v}.mp4").touch()
    cfg = load_config(
        _shipped("e2e_epic_videomae_l_ft_768x8_160_adapter_verb"),
        [f"dataset.annotation_path={tmp_path / 'ann.json'}", f"dataset.class_map={tmp_path / 'cls.txt'}", f"dataset.data_path={tmp_path}"],
    )
    from adatad.data.datasets import SlidingWindowDataset

    train, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert isinstance(test, SlidingWindowDataset)
    (v,) = train.videos
    assert (v.frames, v.fps, v.segments.tolist()) == (3000, 30.0, [[30.0, 75.0]])  # int(t * 30); 5.0-5.01 s: 0 frames
    assert test.videos[0].segments.tolist() == [[150.0, 150.0]] and test.videos[0].frames == 1500
    assert len(test.windows) == 1 and test.windows[0][1:3] == (0, 94)  # ceil(1500 / 16) snippets, one window
