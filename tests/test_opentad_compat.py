"""OpenTAD compatibility: the parity harness on every stored fixture (numbers produced by running OpenTAD
itself), checkpoints in OpenTAD's real layout through tools/test.py's loading path, config conversion."""

import copy
import json
from pathlib import Path

import pytest
import torch

from adatad.compat import opentad_parity
from adatad.compat.opentad import UnsupportedOpenTADConfig, convert_opentad_model_config, opentad_config_to_adatad
from adatad.engine.checkpoint import CheckpointError, load_detector_checkpoint
from adatad.models.detector import build_detector

FIXTURES = sorted(p for p in (Path(__file__).parent / "fixtures" / "opentad").iterdir() if (p / "outputs.pt").is_file())
ADAPTER_FIXTURE = Path(__file__).parent / "fixtures" / "opentad" / "vit_other_padded"  # VisionTransformerAdapter


def test_fixtures_present():
    assert {"vit_s_small", "vit_other_padded", "ladder_small"} <= {f.name for f in FIXTURES}


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_parity_harness(fixture, tmp_path, capsys):
    rc = opentad_parity.main([str(fixture), "--out", str(tmp_path / "out.pt")])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "all keys within tolerance" in printed
    saved = torch.load(tmp_path / "out.pt", weights_only=True)
    ref = torch.load(fixture / "outputs.pt", weights_only=True)
    assert set(ref) <= set(saved)


@pytest.mark.parametrize(
    "fixture_name, suffix",
    [
        ("vit_other_padded", "adapter.down_proj.weight"),
        ("ladder_small", "ladders.adapters.0.dwconv.weight"),  # the side ladder
        ("ladder_small", "blocks.0.mlp.layers.1.weight"),  # the frozen ViT block that feeds the ladder
    ],
)
def test_harness_detects_a_wrong_weight(tmp_path, fixture_name, suffix):
    """The comparison can fail: perturb one weight and the harness must report it."""
    fixture = ADAPTER_FIXTURE.parent / fixture_name
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("model_cfg.json", "post_cfg.json", "inputs.pt", "outputs.pt"):
        (bad / name).write_bytes((fixture / name).read_bytes())
    state = torch.load(fixture / "state_dict.pt", weights_only=True)
    key = next(k for k in state if k.endswith(suffix))
    state[key] = state[key] * 1.01
    torch.save(state, bad / "state_dict.pt")
    assert opentad_parity.main([str(bad), "--out", str(tmp_path / "o.pt")]) == 1


def _fixture_model_and_state():
    fixture = ADAPTER_FIXTURE
    model_cfg = json.loads((fixture / "model_cfg.json").read_text())
    cfg = opentad_config_to_adatad(model_cfg)
    model = build_detector(cfg, load_pretrained=False)
    state = torch.load(fixture / "state_dict.pt", weights_only=True)
    return model, state


def test_opentad_checkpoint_layout_loads_and_prefers_ema(tmp_path):
    model, state = _fixture_model_and_state()
    ema = {k: v.clone() for k, v in state.items()}
    key = next(k for k in ema if k.endswith("rpn_head.cls_head.bias"))
    ema[key] = ema[key] + 1.0
    ema["rpn_head.loss_normalizer"] = torch.tensor(100)  # int64 in OpenTAD's EMA copies
    ckpt = {
        "epoch": 11,
        "state_dict": {f"module.{k}": v for k, v in state.items()},
        "state_dict_ema": {f"module.{k}": v for k, v in ema.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
        "scheduler": {"last_epoch": 10, "base_lrs": [1e-4]},
    }
    path = tmp_path / "epoch_11.pth"
    torch.save(ckpt, path)
    info = load_detector_checkpoint(model, path)
    assert info["source"] == "state_dict_ema" and info["epoch"] == 11
    assert torch.equal(model.rpn_head.cls_head.bias, ema[key])
    assert model.rpn_head.loss_normalizer.dtype == torch.float32 and float(model.rpn_head.loss_normalizer) == 100.0


def test_opentad_checkpoint_missing_tensor_is_named(tmp_path):
    model, state = _fixture_model_and_state()
    removed = next(k for k in state if "blocks.1.attn.qkv.weight" in k)
    del state[removed]
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "best.pth")
    with pytest.raises(CheckpointError, match="missing tensor.*backbone.blocks.1.attn.qkv.weight"):
        load_detector_checkpoint(model, tmp_path / "best.pth")


def test_checkpoint_of_other_architecture_is_refused(tmp_path):
    model, state = _fixture_model_and_state()
    cfg = opentad_config_to_adatad(json.loads((ADAPTER_FIXTURE / "model_cfg.json").read_text()))
    cfg["model"]["head"]["num_classes"] = 7
    other = build_detector(cfg, load_pretrained=False)
    torch.save({"state_dict": state}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match="shape mismatch.*rpn_head.cls_head"):
        load_detector_checkpoint(other, tmp_path / "c.pth")


def test_config_conversion_rejects_unknown_types():
    model_cfg = json.loads((ADAPTER_FIXTURE / "model_cfg.json").read_text())
    converted = convert_opentad_model_config(model_cfg)
    assert converted["model"]["backbone"]["mode"] == "adapter"
    assert converted["dataset"]["window_size"] == model_cfg["backbone"]["backbone"]["total_frames"]
    bad = copy.deepcopy(model_cfg)
    bad["neck"]["type"] = "FPN"
    with pytest.raises(UnsupportedOpenTADConfig, match="'FPN'.*FPNIdentity"):
        convert_opentad_model_config(bad)
    bad = copy.deepcopy(model_cfg)
    bad["type"] = "TriDet"
    with pytest.raises(UnsupportedOpenTADConfig, match="TriDet.*ActionFormer"):
        convert_opentad_model_config(bad)
    frozen = copy.deepcopy(model_cfg)
    frozen["backbone"]["backbone"]["type"] = "VisionTransformerCP"
    frozen["backbone"]["custom"]["freeze_backbone"] = True
    assert convert_opentad_model_config(frozen)["model"]["backbone"]["mode"] == "frozen"
