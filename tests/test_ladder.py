"""Side-tuning ladder backbone (OpenTAD's ``VisionTransformerLadder``): output formula and shapes, what is frozen
and what trains, parameter counts of the real VideoMAE-S side config, checkpointing, pretrained weights, wiring.

Numerical parity with OpenTAD itself is the harness test on ``tests/fixtures/opentad/ladder_small``
(``tests/test_opentad_compat.py``)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tinyrun import ROOT, write_tiny_config

from adatad.compat.opentad import UnsupportedOpenTADConfig, convert_opentad_model_config, opentad_config_to_adatad
from adatad.engine.optim import build_optimizer
from adatad.models import ladder as ladder_mod
from adatad.models.detector import build_backbone, build_detector
from adatad.models.ladder import LadderBackbone
from adatad.models.videomae import VideoMAEBackbone, chunk_frames, embed_chunks, pool_tokens
from adatad.models.weights import OPENTAD_DETECTOR_MAPPING, load_pretrained_backbone

torch.set_num_threads(1)

FIXTURE = Path(__file__).parent / "fixtures" / "opentad" / "ladder_small"
C = 64


def _ladder(**kw) -> LadderBackbone:
    args = dict(
        img_size=64, embed_dims=C, depth=3, num_heads=2, mlp_ratio=2, adapter_index=[0, 1], total_frames=32, with_cp=False, out_len=None
    )
    args.update(kw)
    torch.manual_seed(0)
    model = LadderBackbone(**args)
    _randomise(model)
    return model


def _randomise(model: torch.nn.Module, seed: int = 1) -> None:
    """Non-zero up-projections, biases and gammas away from 1, so the ladder really changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("bias", "up_proj.weight")):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            elif name.endswith("gamma"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)


def _frames(b=2, t=32, h=32, w=48, seed=2) -> torch.Tensor:
    return torch.randn(b, 3, t, h, w, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------ forward
def test_output_is_deepest_tap_plus_adapter_branches():
    """out = f[-1] + branch_0(f[0]) + branch_1(f[1]), pooled; the block after the deepest tap is never used."""
    model = _ladder().eval()
    x = _frames()
    with torch.no_grad():
        out = model(x)
        b, t = 2, model.num_frames // model.tubelet_size
        grid = (x.shape[2] // 2, 32 // 16, 48 // 16)
        tok = embed_chunks(chunk_frames(x, 16), model.patch_embed, model.pos_embed, model.grid_size, 16)
        f0 = model.blocks[0](tok, b, grid)
        f1 = model.blocks[1](f0, b, grid)
        a0, a1 = model.ladders.adapters
        expected = pool_tokens(f1 + a0.branch(f0, b, grid) + a1.branch(f1, b, grid), b, t, None)
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
        assert out.shape == (2, C, 16) and out.dtype == torch.float32
        plain = pool_tokens(f1, b, t, None)
        assert (out - plain).norm() / plain.norm() > 0.05  # the ladder matters in this test
        for p in model.blocks[2].parameters():  # a block past the deepest tap cannot change the output
            p.add_(1.0)
        assert torch.equal(model(x), out)
        assert model(x[:, :, :16]).shape == (2, C, 8)  # one chunk: other multiples of 16 run


def test_out_len_interpolates():
    model = _ladder(out_len=32).eval()
    with torch.no_grad():
        assert model(_frames()).shape == (2, C, 32)


def test_input_and_constructor_errors():
    model = _ladder()
    with pytest.raises(TypeError, match="float"):
        model(torch.zeros(1, 3, 16, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="multiple of the chunk length"):
        model(torch.zeros(1, 3, 24, 32, 32))
    with pytest.raises(ValueError, match="non-empty adapter_index"):
        _ladder(adapter_index=[])
    with pytest.raises(ValueError, match="twice"):
        _ladder(adapter_index=[1, 1])
    with pytest.raises(ValueError, match="out of range"):
        _ladder(adapter_index=[0, 3])


# ------------------------------------------------------------------------------- frozen / trainable
def test_train_mode_gradients_and_frozen_parts():
    """As OpenTAD does it: only the ladder trains; the patch embedding and the blocks (drop_path included) stay in
    eval mode; the ViT keeps no autograd graph."""
    model = _ladder()
    model.train()
    training = {n for n, m in model.named_modules() if m.training}
    assert training == {"", "ladders"} | {n for n, _ in model.ladders.named_modules(prefix="ladders")}
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        n for n, _ in model.named_parameters() if n.startswith("ladders.")
    }
    block_outputs = []
    hooks = [blk.register_forward_hook(lambda m, i, o: block_outputs.append(o)) for blk in model.blocks]
    model.blocks[1].train()  # a stray train() on a submodule is undone by the forward
    out = model(_frames())
    for h in hooks:
        h.remove()
    assert not model.blocks[1].training
    assert len(block_outputs) == 2 and not any(o.requires_grad for o in block_outputs)  # block 2 not run
    out.pow(2).mean().backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, _ in model.named_parameters() if n.startswith("ladders.")}
    assert all(model.get_parameter(n).grad.abs().sum() > 0 for n in with_grad)


def test_drop_path_never_fires():
    model = _ladder(drop_path_rate=0.5)
    assert model.blocks[2].drop_path.p == 0.5
    x = _frames()
    model.train()
    with torch.no_grad():
        a, b = model(x), model(x)
        model.eval()
        c = model(x)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_parameter_counts_of_the_real_side_config_on_meta():
    """OpenTAD's ``e2e_thumos_videomae_s_768x1_160_side.py`` at full size, built on the meta device.

    Reference numbers: OpenTAD 3dd7b03 built this config at full size on CPU (torch 2.13, no pretrain) and, after
    its first forward froze the ViT, reported 503,430 trainable / 21,879,168 frozen backbone parameters and
    27,199,138 trainable detector parameters. The hand calculation below gives the same backbone numbers."""
    model_cfg = json.loads((FIXTURE / "model_cfg.json").read_text())  # the side config, shrunk: restore its sizes
    vit = model_cfg["backbone"]["backbone"]
    vit.update(img_size=224, embed_dims=384, depth=12, num_heads=6, mlp_ratio=4, total_frames=768, adapter_index=list(range(6, 12)))
    custom = model_cfg["backbone"]["custom"]
    custom["pre_processing_pipeline"][0]["t1"] = 48
    custom["post_processing_pipeline"][1]["t1"] = 48
    custom["post_processing_pipeline"][2]["size"] = 768
    model_cfg["projection"].update(in_channels=384, out_channels=512, max_seq_len=768)
    model_cfg["neck"].update(in_channels=512, out_channels=512)
    model_cfg["rpn_head"].update(num_classes=20, in_channels=512, feat_channels=512)
    cfg = opentad_config_to_adatad(model_cfg)
    with torch.device("meta"):
        model = build_detector(cfg, load_pretrained=False)
    assert isinstance(model.backbone, LadderBackbone) and model.backbone.pos_embed.is_meta

    c, hid, side = 384, 4 * 384, 384 // 4
    patch_embed = c * 3 * 2 * 16 * 16 + c
    block = 2 * 2 * c + 3 * c * c + 2 * c + (c * c + c) + (c * hid + hid) + (hid * c + c)
    adapter = (c * side + side) + (side * c + c) + (side * 3 + side) + (side * side + side) + 1
    assert model.backbone.count_parameters() == {"trainable": 6 * adapter, "frozen": patch_embed + 12 * block}
    assert model.backbone.count_parameters() == {"trainable": 503_430, "frozen": 21_879_168}
    assert model.count_parameters() == {"trainable": 27_199_138, "frozen": 21_879_168}
    assert model.projection.input_pdrop is not None and model.projection.input_pdrop.p == 0.1


# --------------------------------------------------------------------------------------- checkpointing
def test_checkpointing_on_and_off_give_the_same_outputs_and_gradients(monkeypatch):
    calls = []
    real = ladder_mod.torch_checkpoint.checkpoint

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ladder_mod.torch_checkpoint, "checkpoint", spy)
    x = _frames()
    results = []
    for with_cp in (False, True):
        model = _ladder(with_cp=with_cp)
        model.train()
        out = model(x)
        out.pow(2).mean().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
        assert len(calls) == (2 if with_cp else 0)  # one checkpoint per ladder adapter
    (o0, g0), (o1, g1) = results
    assert torch.equal(o0, o1)
    assert g0.keys() == g1.keys() and all(torch.equal(g0[k], g1[k]) for k in g0)
    with torch.no_grad():  # no checkpointing without gradients
        _ladder(with_cp=True)(x)
    assert len(calls) == 2


# ----------------------------------------------------------------------------------------- weights
def _mmaction2_file(path: Path, depth: int, c: int, seed: int = 3) -> dict[str, torch.Tensor]:
    """A VideoMAE pretrain file in OpenTAD's converted layout (``{"meta", "state_dict"}``, ``backbone.*`` with mmcv
    FFN names, ``fc_norm``, ``cls_head``), built from a VideoMAEBackbone's names with random values."""
    g = torch.Generator().manual_seed(seed)
    vit = VideoMAEBackbone(embed_dims=c, depth=depth, num_heads=2, mlp_ratio=2, adapter_index=None, mode="full", with_cp=False)
    sd = {f"backbone.{k}": torch.randn(v.shape, generator=g) * 0.05 for k, v in vit.state_dict().items()}
    sd["backbone.pos_embed"] = vit.pos_embed.clone()
    sd["cls_head.fc_cls.weight"] = torch.randn(400, c, generator=g)
    sd["cls_head.fc_cls.bias"] = torch.randn(400, generator=g)
    torch.save({"meta": {"mmengine_version": "0.10.7"}, "state_dict": sd}, path)
    return sd


def test_mmaction2_pretrain_loads_into_the_vit_part(tmp_path):
    sd = _mmaction2_file(tmp_path / "vit_my.pth", depth=3, c=C)
    model = _ladder(img_size=224)
    ladder_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("ladders.")}
    report = load_pretrained_backbone(model, tmp_path / "vit_my.pth")
    assert report.format == "mmaction2" and report.missing == []
    assert sorted(report.expected_missing) == sorted(ladder_before)
    assert sorted(report.unused) == [
        "backbone.fc_norm.bias",
        "backbone.fc_norm.weight",
        "cls_head.fc_cls.bias",
        "cls_head.fc_cls.weight",
    ]  # OpenTAD's ladder has no fc_norm
    assert sorted(report.loaded) == sorted(k for k in model.state_dict() if not k.startswith("ladders."))
    for k, v in model.state_dict().items():
        expected = ladder_before[k] if k.startswith("ladders.") else sd[f"backbone.{k}"]
        assert torch.equal(v, expected), k
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith("ladders."))


def test_pretrain_of_another_depth_is_refused(tmp_path):
    _mmaction2_file(tmp_path / "deep.pth", depth=4, c=C)
    with pytest.raises(Exception, match="no place for"):
        load_pretrained_backbone(_ladder(img_size=224), tmp_path / "deep.pth")


def test_opentad_ladder_keys_map_onto_our_names():
    """Every backbone tensor of the OpenTAD fixture maps, through the one OpenTAD detector mapping, onto exactly
    the state dict of our ladder backbone (names equal OpenTAD's after its prefix)."""
    state = torch.load(FIXTURE / "state_dict.pt", weights_only=True)
    keys = [k for k in state if k.startswith("backbone.")]
    mapped = {OPENTAD_DETECTOR_MAPPING(k) for k in keys}
    assert OPENTAD_DETECTOR_MAPPING("module." + keys[0]) == OPENTAD_DETECTOR_MAPPING(keys[0])
    assert OPENTAD_DETECTOR_MAPPING("module.backbone.model.backbone.ladders.adapters.2.gamma") == "backbone.ladders.adapters.2.gamma"
    cfg = opentad_config_to_adatad(json.loads((FIXTURE / "model_cfg.json").read_text()))
    model = build_detector(cfg, load_pretrained=False)
    assert mapped == {f"backbone.{k}" for k in model.backbone.state_dict()}


def test_opentad_detector_checkpoint_loads_as_backbone(tmp_path):
    state = torch.load(FIXTURE / "state_dict.pt", weights_only=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "best.pth")
    cfg = opentad_config_to_adatad(json.loads((FIXTURE / "model_cfg.json").read_text()))
    backbone = build_detector(cfg, load_pretrained=False).backbone
    report = load_pretrained_backbone(backbone, tmp_path / "best.pth")
    assert report.format == "opentad" and report.missing == [] and report.expected_missing == []
    key = "backbone.model.backbone.ladders.adapters.1.gamma"
    assert torch.equal(backbone.ladders.adapters[1].gamma, state[key])


# ------------------------------------------------------------------------------------------- wiring
def _converted(**vit_changes) -> dict:
    model_cfg = json.loads((FIXTURE / "model_cfg.json").read_text())
    model_cfg["backbone"]["backbone"].update(vit_changes)
    return model_cfg


def test_config_conversion_of_the_side_config():
    model_cfg = _converted()
    conv = convert_opentad_model_config(model_cfg)
    b = conv["model"]["backbone"]
    assert b["type"] == "VisionTransformerLadder" and b["mode"] == "adapter" and b["adapter_index"] == [0, 1]
    assert b["img_size"] == 64 and b["with_cp"] is True and b["drop_path_rate"] == 0.0
    assert conv["model"]["projection"]["input_pdrop"] == 0.1  # the side config's projection input dropout
    no_index = copy.deepcopy(model_cfg)
    del no_index["backbone"]["backbone"]["adapter_index"]
    assert convert_opentad_model_config(no_index)["model"]["backbone"]["adapter_index"] == list(range(6, 12))
    with pytest.raises(UnsupportedOpenTADConfig, match="drop_rate"):
        convert_opentad_model_config(_converted(drop_rate=0.1))
    with pytest.raises(UnsupportedOpenTADConfig, match="qk_scale"):
        convert_opentad_model_config(_converted(qk_scale=0.5))


def test_build_backbone_picks_the_type():
    b = dict(img_size=64, embed_dims=32, depth=2, num_heads=2, mlp_ratio=1.0, adapter_index=[1], with_cp=False)
    assert isinstance(build_backbone(b, 32), VideoMAEBackbone)
    assert isinstance(build_backbone(dict(b, type="VisionTransformerAdapter"), 32), VideoMAEBackbone)
    ladder = build_backbone(dict(b, type="VisionTransformerLadder", mode="adapter"), 32)
    assert isinstance(ladder, LadderBackbone) and ladder.out_len == 32 and ladder.total_frames == 32
    with pytest.raises(ValueError, match="mode='full' is not available"):
        build_backbone(dict(b, type="VisionTransformerLadder", mode="full"), 32)
    with pytest.raises(ValueError, match="VisionTransformerCP.*VisionTransformerAdapter, VisionTransformerLadder"):
        build_backbone(dict(b, type="VisionTransformerCP"), 32)


def test_side_config_optimizer_trains_the_ladder():
    """OpenTAD's side-config optimizer (backbone lr 0, custom ``adapter`` lr 2e-4) puts exactly the ladder in the
    adapter group: the ladder's names contain ``adapter`` as OpenTAD's do."""
    cfg = opentad_config_to_adatad(json.loads((FIXTURE / "model_cfg.json").read_text()))
    model = build_detector(cfg, load_pretrained=False)
    opt_cfg = dict(
        type="AdamW",
        betas=[0.9, 0.999],
        lr=1e-4,
        weight_decay=0.05,
        paramwise=True,
        backbone=dict(lr=0.0, weight_decay=0.0, custom=[dict(name="adapter", lr=2e-4, weight_decay=0.05)], exclude=["backbone"]),
    )
    opt = build_optimizer(model, opt_cfg)
    groups = {g["name"]: g for g in opt.param_groups}
    ladder = {id(p) for p in model.backbone.ladders.parameters()}
    assert {id(p) for p in groups["backbone_adapter"]["params"]} == ladder and groups["backbone_adapter"]["lr"] == 2e-4
    vit = {id(p) for n, p in model.backbone.named_parameters() if not n.startswith("ladders.")}
    assert not vit & {id(p) for g in opt.param_groups for p in g["params"]}


def test_training_run_updates_only_the_ladder(tmp_path, tiny_dataset):
    """tools/train.py end to end on the tiny synthetic data with the ladder: between two epochs every ladder tensor
    changes and no ViT tensor does."""
    base = write_tiny_config(tmp_path / "tiny.py", tiny_dataset)
    cfg = tmp_path / "ladder.py"
    cfg.write_text(
        f'_base_ = ["{base}"]\nmodel = dict(backbone=dict(type="VisionTransformerLadder", depth=2, adapter_index=[0, 1], mode="adapter"))\n'
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools/train.py"), str(cfg), "--work-dir", str(tmp_path / "run"), "--device", "cpu"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    e0, e1 = (torch.load(tmp_path / "run" / "checkpoint" / f"epoch_{i}.pth", weights_only=True)["state_dict"] for i in (0, 1))
    ladder = [k for k in e0 if k.startswith("backbone.ladders.")]
    vit = [k for k in e0 if k.startswith("backbone.") and k not in ladder]
    assert len(ladder) == 18 and vit
    assert all(not torch.equal(e0[k], e1[k]) for k in ladder)
    assert all(torch.equal(e0[k], e1[k]) for k in vit)
