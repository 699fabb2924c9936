"""Fine-tuning from a trained detector (``load_from`` / ``--load-from``): which tensors are copied, which are skipped
and why, values equal to the source checkpoint's; adatad and OpenTAD checkpoints; the flag reaches training."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tinyrun import ROOT, write_tiny_config

from adatad.compat.opentad import opentad_config_to_adatad
from adatad.config import load_config
from adatad.engine.checkpoint import init_from_checkpoint
from adatad.models.detector import build_detector
from adatad.models.weights import WeightLoadError, load_detector_weights

torch.set_num_threads(1)
OPENTAD_FIXTURE = Path(__file__).parent / "fixtures" / "opentad" / "vit_other_padded"  # recorded from OpenTAD
CLS = ("rpn_head.cls_head.weight", "rpn_head.cls_head.bias")
PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)  # ActionFormer's classifier bias init (cls_prior_prob 0.01)


def tiny_model(cfg_file: Path, num_classes: int, seed: int):
    cfg = load_config(cfg_file, [f"model.head.num_classes={num_classes}"])
    torch.manual_seed(seed)
    return build_detector(cfg, load_pretrained=False)


def save_trained(model, path: Path, class_names: list[str]) -> dict:
    """An adatad-style checkpoint whose EMA weights (what load_from takes) differ from its raw weights."""
    ema = {k: v + 0.5 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save({"state_dict": model.state_dict(), "state_dict_ema": ema, "epoch": 9, "class_names": class_names}, path)
    return ema


def test_same_classes_copy_every_tensor(cfg_file, tmp_path):
    src = tiny_model(cfg_file, 3, seed=1)
    ema = save_trained(src, tmp_path / "src.pth", ["A", "B", "C"])
    dst = tiny_model(cfg_file, 3, seed=2)
    assert sum(not torch.equal(v, ema[k]) for k, v in dst.state_dict().items()) > 100  # all differ before
    report = init_from_checkpoint(dst, tmp_path / "src.pth", ["A", "B", "C"])
    assert report.skipped == [] and report.missing == [] and report.unused == []
    assert report.loaded == sorted(ema)
    for k, v in dst.state_dict().items():
        assert torch.equal(v, ema[k]), k


def test_other_class_count_reinitialises_the_classifier_only(cfg_file, tmp_path):
    src = tiny_model(cfg_file, 3, seed=1)
    ema = save_trained(src, tmp_path / "src.pth", ["A", "B", "C"])
    dst = tiny_model(cfg_file, 2, seed=2)
    fresh = {k: v.clone() for k, v in dst.state_dict().items()}
    report = init_from_checkpoint(dst, tmp_path / "src.pth", ["X", "Y"])
    assert sorted(s.split(":")[0] for s in report.skipped) == sorted(CLS)
    assert all("3 classes in the checkpoint, 2 in the config" in s for s in report.skipped)
    assert "skipped, re-initialised: 2" in report.summary()
    state = dst.state_dict()
    for k in state:
        if k in CLS:
            assert torch.equal(state[k], fresh[k]), k  # its own fresh initialisation
        else:
            assert torch.equal(state[k], ema[k]), k
    assert torch.allclose(state["rpn_head.cls_head.bias"], torch.full((2,), PRIOR_BIAS))


def test_same_count_other_classes_reinitialises_the_classifier(cfg_file, tmp_path):
    save_trained(tiny_model(cfg_file, 2, seed=1), tmp_path / "src.pth", ["A", "B"])
    dst = tiny_model(cfg_file, 2, seed=2)
    report = init_from_checkpoint(dst, tmp_path / "src.pth", ["B", "A"])  # same count, row i means another class
    assert sorted(s.split(":")[0] for s in report.skipped) == sorted(CLS) and "differ" in report.skipped[0]
    assert init_from_checkpoint(dst, tmp_path / "src.pth", ["A", "B"]).skipped == []


def test_opentad_checkpoint_loads_through_the_name_mapping():
    """A real OpenTAD state dict (recorded fixture, 4 classes) into a 7-class model: every tensor but the classifier
    arrives under adatad's name (OpenTAD ``backbone.model.backbone.X`` -> ``backbone.X``, the rest unchanged)."""
    state = torch.load(OPENTAD_FIXTURE / "state_dict.pt", weights_only=True)
    cfg = opentad_config_to_adatad(json.loads((OPENTAD_FIXTURE / "model_cfg.json").read_text()))
    cfg["model"]["head"]["num_classes"] = 7
    model = build_detector(cfg, load_pretrained=False)
    report = load_detector_weights(model, {f"module.{k}": v for k, v in state.items()}, "opentad.pth")
    assert report.format == "opentad" and sorted(s.split(":")[0] for s in report.skipped) == sorted(CLS)
    own = model.state_dict()
    copied = 0
    for k, v in state.items():
        name = "backbone." + k[len("backbone.model.backbone.") :] if k.startswith("backbone.model.backbone.") else k
        if name in CLS or name not in own:
            continue
        assert torch.equal(own[name], v.to(own[name].dtype)), k
        copied += 1
    assert copied == len(report.loaded) and copied > 100


def test_other_architecture_is_refused_naming_tensors(cfg_file, tmp_path):
    save_trained(tiny_model(cfg_file, 3, seed=1), tmp_path / "src.pth", ["A", "B", "C"])
    cfg = load_config(cfg_file, ["model.projection.out_channels=48", "model.head.feat_channels=48"])
    with pytest.raises(WeightLoadError, match=r"beyond the class count.*shape mismatch.*projection"):
        init_from_checkpoint(build_detector(cfg, load_pretrained=False), tmp_path / "src.pth", ["A", "B", "C"])


def test_load_from_flag_reaches_training_as_a_fresh_run(tiny_dataset, tmp_path):
    """tools/train.py --load-from: the run starts at epoch 0 from the checkpoint's weights. With the backbone's learning
    rate 0 (frozen) its saved backbone is exactly the loaded one; the rest moved by at most two small steps."""
    cfg_file = write_tiny_config(tmp_path / "tiny.py", tiny_dataset)
    src = tiny_model(cfg_file, 3, seed=1)
    ema = save_trained(src, tmp_path / "src.pth", ["A", "B", "C"])
    work = tmp_path / "run"
    zero_lr = ["optimizer.backbone.lr=0.0", "workflow.end_epoch=1"]
    cmd = [
        str(ROOT / "tools/train.py"),
        str(cfg_file),
        "--work-dir",
        str(work),
        "--device",
        "cpu",
        "--load-from",
        str(tmp_path / "src.pth"),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, *cmd, "--cfg-options", *zero_lr], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    log = (work / "train.log").read_text()
    assert "load_from" in log and "skipped, re-initialised: 2" in log and "5 in the config" in log
    ckpt = torch.load(work / "checkpoint" / "latest.pth", weights_only=True)
    assert ckpt["epoch"] == 0 and [h["epoch"] for h in ckpt["history"]] == [0]
    assert ckpt["config"]["load_from"] == str(tmp_path / "src.pth")
    fresh = tiny_model(cfg_file, 5, seed=42).state_dict()  # what the run would start from without --load-from
    for k, v in ckpt["state_dict"].items():
        if k.startswith("backbone."):
            assert torch.equal(v, ema[k]), k
        elif k not in CLS and k != "rpn_head.loss_normalizer" and v.is_floating_point():  # (a running loss statistic)
            assert (v - ema[k]).abs().max() < 1e-3 < (fresh[k] - ema[k]).abs().max(), k
