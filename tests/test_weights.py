"""Pretrained weight loading: checkpoint formats with the real key names, safety, reports, errors; download."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from adatad import download
from adatad.config import load_config, packaged_config
from adatad.models.videomae import VideoMAEBackbone
from adatad.models.weights import (
    KeyMapping,
    WeightLoadError,
    load_pretrained_backbone,
    opentad_backbone_key,
)

torch.set_num_threads(1)

C = 384  # ViT-S width: real shapes
HID = 4 * C
DEPTH = 2


def _sinusoid_numpy(n: int, d: int) -> np.ndarray:
    """The VideoMAE paper's table, written independently: angle p / 10000^(2*floor(i/2)/d)."""
    table = np.arange(n)[:, None] / np.power(10000.0, 2 * (np.arange(d)[None, :] // 2) / d)
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return table[None].astype(np.float32)


def _tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    """Backbone tensors under the VideoMAE release's own names (shapes of the real ViT-S)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.05  # noqa: E731
    t = {"patch_embed.proj.weight": r(C, 3, 2, 16, 16), "patch_embed.proj.bias": r(C)}
    for i in range(DEPTH):
        p = f"blocks.{i}."
        t.update(
            {
                p + "norm1.weight": 1 + r(C),
                p + "norm1.bias": r(C),
                p + "attn.q_bias": r(C),
                p + "attn.v_bias": r(C),
                p + "attn.qkv.weight": r(3 * C, C),
                p + "attn.proj.weight": r(C, C),
                p + "attn.proj.bias": r(C),
                p + "norm2.weight": 1 + r(C),
                p + "norm2.bias": r(C),
                p + "mlp.fc1.weight": r(HID, C),
                p + "mlp.fc1.bias": r(HID),
                p + "mlp.fc2.weight": r(C, HID),
                p + "mlp.fc2.bias": r(C),
            }
        )
    t.update({"fc_norm.weight": 1 + r(C), "fc_norm.bias": r(C), "head.weight": r(400, C), "head.bias": r(400)})
    return t


def _as_mmaction2(t: dict[str, torch.Tensor]) -> dict:
    """OpenTAD's converted file (`..._my.pth`): mmengine checkpoint, `backbone.` + mmcv FFN names, cls_head."""
    sd = {"backbone.pos_embed": torch.from_numpy(_sinusoid_numpy(8 * 14 * 14, C))}
    for k, v in t.items():
        if k.startswith("head."):
            sd["cls_head.fc_cls." + k[len("head.") :]] = v
            continue
        k = k.replace("patch_embed.proj.", "patch_embed.projection.")
        k = k.replace("mlp.fc1.", "mlp.layers.0.0.").replace("mlp.fc2.", "mlp.layers.1.")
        sd["backbone." + k] = v
    return {"meta": {"mmengine_version": "0.10.7"}, "state_dict": sd}


def _model(**kw) -> VideoMAEBackbone:
    args = dict(depth=DEPTH, embed_dims=C, num_heads=6, adapter_index=[0, 1], with_cp=False, out_len=None)
    args.update(kw)
    return VideoMAEBackbone(**args)


def _assert_loaded(model: VideoMAEBackbone, t: dict[str, torch.Tensor]) -> None:
    sd = model.state_dict()
    for i in range(DEPTH):
        torch.testing.assert_close(sd[f"blocks.{i}.mlp.layers.0.0.weight"], t[f"blocks.{i}.mlp.fc1.weight"])
        torch.testing.assert_close(sd[f"blocks.{i}.mlp.layers.1.bias"], t[f"blocks.{i}.mlp.fc2.bias"])
        torch.testing.assert_close(sd[f"blocks.{i}.attn.qkv.weight"], t[f"blocks.{i}.attn.qkv.weight"])
        torch.testing.assert_close(sd[f"blocks.{i}.attn.v_bias"], t[f"blocks.{i}.attn.v_bias"])
    torch.testing.assert_close(sd["patch_embed.projection.weight"], t["patch_embed.proj.weight"])


def test_mmaction2_format_loads_everything(tmp_path):
    t = _tensors()
    path = tmp_path / "vit-s_my.pth"
    torch.save(_as_mmaction2(t), path)
    model = _model()
    report = load_pretrained_backbone(model, path)
    assert report.format == "mmaction2"
    assert report.missing == []
    assert sorted(report.expected_missing) == sorted(k for k in model.state_dict() if ".adapter." in k)
    assert sorted(report.unused) == ["cls_head.fc_cls.bias", "cls_head.fc_cls.weight"]
    assert "pos_embed" in report.loaded and "fc_norm.weight" in report.loaded
    _assert_loaded(model, t)
    # our fixed table equals the independently computed sinusoid table
    fresh = _model()
    np.testing.assert_allclose(fresh.pos_embed.numpy(), _sinusoid_numpy(8 * 14 * 14, C), atol=1e-6)
    assert fresh.pos_embed.shape == model.pos_embed.shape
    assert "pos_embed" in dict(fresh.named_buffers()) and "pos_embed" in fresh.state_dict()


@pytest.mark.parametrize("container", ["model", "module"])
def test_videomae_release_format_finetuned(tmp_path, container):
    t = _tensors(seed=1)
    path = tmp_path / "checkpoint.pth"
    torch.save({container: t, "epoch": 1}, path)
    model = _model(adapter_index=None, mode="full")
    report = load_pretrained_backbone(model, path)
    assert report.format == "videomae" and report.missing == []
    assert report.expected_missing == ["pos_embed"]
    assert sorted(report.unused) == ["head.bias", "head.weight"]
    _assert_loaded(model, t)
    torch.testing.assert_close(model.state_dict()["fc_norm.bias"], t["fc_norm.bias"])


def test_videomae_release_format_pretraining_encoder_prefix(tmp_path):
    t = {k: v for k, v in _tensors(seed=2).items() if not k.startswith(("head.", "fc_norm."))}
    g = torch.Generator().manual_seed(5)
    sd = {"encoder." + k: v for k, v in t.items()}
    sd.update(
        {
            "encoder.norm.weight": torch.ones(C),
            "encoder.norm.bias": torch.zeros(C),
            "encoder_to_decoder.weight": torch.randn(192, C, generator=g),
            "mask_token": torch.zeros(1, 1, 192),
            "decoder.blocks.0.norm1.weight": torch.ones(192),
            "decoder.norm.weight": torch.ones(192),
            "decoder.head.weight": torch.randn(1536, 192, generator=g),
        }
    )
    path = tmp_path / "pretrain.pth"
    torch.save({"model": sd}, path)
    model = _model()
    report = load_pretrained_backbone(model, path)
    assert report.missing == []
    assert "fc_norm.weight" in report.expected_missing and "pos_embed" in report.expected_missing
    assert "encoder.norm.weight" in report.unused and "decoder.head.weight" in report.unused
    _assert_loaded(model, t)


def test_missing_block_fails_loudly_unless_allowed(tmp_path):
    ckpt = _as_mmaction2(_tensors())
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("backbone.blocks.1.")}
    path = tmp_path / "broken.pth"
    torch.save(ckpt, path)
    with pytest.raises(WeightLoadError, match=r"lacks 13 backbone tensors.*blocks\.1\."):
        load_pretrained_backbone(_model(), path)
    report = load_pretrained_backbone(_model(), path, allow_missing=True)
    assert len(report.missing) == 13 and all(k.startswith("blocks.1.") for k in report.missing)


def test_wrong_architecture_is_refused(tmp_path):
    path = tmp_path / "vit-s.pth"
    torch.save(_as_mmaction2(_tensors()), path)
    with pytest.raises(WeightLoadError, match="has no place for.*blocks.1"):
        load_pretrained_backbone(_model(depth=1, adapter_index=[0]), path)  # checkpoint deeper than model
    with pytest.raises(WeightLoadError, match="shape"):
        load_pretrained_backbone(_model(embed_dims=192, num_heads=3), path)  # checkpoint wider
    with pytest.raises(WeightLoadError, match="img_size"):
        load_pretrained_backbone(_model(img_size=160), path)  # position table of another size


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"backbone.pos_embed": torch.zeros(1)}, "payload": Evil()}, path)
    with pytest.raises(WeightLoadError, match="refused"):
        load_pretrained_backbone(_model(), path)
    assert not marker.exists()


def test_unreadable_and_absent_files(tmp_path):
    with pytest.raises(WeightLoadError, match="not found"):
        load_pretrained_backbone(_model(), tmp_path / "nope.pth")
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(WeightLoadError, match="truncated.pth"):
        load_pretrained_backbone(_model(), bad)
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, other)
    with pytest.raises(WeightLoadError, match="backbone"):
        load_pretrained_backbone(_model(), other)


def test_opentad_detector_checkpoint_and_key_mapping(tmp_path):
    src = _model()
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        for p in src.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    sd = {"module.backbone.model.backbone." + k: v for k, v in src.state_dict().items()}
    sd["module.projection.embed.0.conv.weight"] = torch.zeros(512, C, 3)
    sd["module.rpn_head.loss_normalizer"] = torch.tensor(100)
    path = tmp_path / "epoch_2.pth"
    torch.save({"epoch": 2, "state_dict": sd, "state_dict_ema": sd}, path)
    model = _model()
    report = load_pretrained_backbone(model, path)
    assert report.format == "opentad" and report.missing == [] and report.expected_missing == []
    assert sorted(report.unused) == ["module.projection.embed.0.conv.weight", "module.rpn_head.loss_normalizer"]
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k

    assert opentad_backbone_key("module.backbone.model.backbone.blocks.3.adapter.gamma") == "blocks.3.adapter.gamma"
    assert opentad_backbone_key("backbone.model.backbone.patch_embed.projection.weight") == ("patch_embed.projection.weight")
    assert opentad_backbone_key("module.rpn_head.cls_head.conv.weight") is None
    mapping = KeyMapping(rules=(("backbone.model.backbone.", "backbone."), ("rpn_head.", "head.")), ignore=(r"^neck",))
    renamed, unmapped = mapping.apply(
        {"module.rpn_head.scale.0.scale": torch.ones(1), "module.neck.x": torch.ones(1), "module.other": torch.ones(1)}
    )
    assert list(renamed) == ["head.scale.0.scale"] and unmapped == ["module.neck.x", "module.other"]


def test_hf_config_mismatch_is_refused(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.VideoMAEConfig(image_size=32, hidden_size=C, num_hidden_layers=3, num_attention_heads=6, intermediate_size=HID)
    transformers.VideoMAEModel(cfg).save_pretrained(tmp_path / "hf")
    with pytest.raises(WeightLoadError, match="num_hidden_layers=3"):
        load_pretrained_backbone(_model(img_size=32), tmp_path / "hf")


SEED_CFG = packaged_config("adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py")


# ------------------------------------------------------------------------------------------ download
def test_download_without_gdown_fails_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gdown", None)  # import gdown -> ImportError
    assert download.main(["videomae-s", "--out", str(tmp_path)]) == 2
    assert "pip install 'adatad[download]'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_download_network_failure_is_non_zero(tmp_path, monkeypatch, capsys):
    fake = types.SimpleNamespace(download=lambda **kw: None)  # gdown returns None when it cannot fetch
    monkeypatch.setitem(sys.modules, "gdown", fake)
    assert download.main(["videomae-s", "--out", str(tmp_path)]) == 1
    assert "could not download" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_download_saves_under_the_config_name_and_checks(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_download(id, output, quiet):  # noqa: A002 - gdown's keyword
        calls.append(id)
        # a real-shaped ViT-S checkpoint is large; a depth-2 one is enough to reach the load check,
        # which must then fail loudly because blocks 2..11 are missing
        torch.save(_as_mmaction2(_tensors()), output)
        return output

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=fake_download))
    rc = download.main(["videomae-s", "--out", str(tmp_path)])
    spec = download.MODELS["videomae-s"]
    target = tmp_path / spec["filename"]
    assert spec["filename"] == Path(load_config(SEED_CFG)["model"]["backbone"]["pretrained"]).name  # what the seed loads
    assert calls == ["1BH5BZmdImaZesUfqtW23eBGC341Gui1D"]
    assert target.is_file() and sorted(p.name for p in tmp_path.iterdir()) == [spec["filename"]]
    assert rc == 1 and "lacks" in capsys.readouterr().err
    # second run: no download; --no-check succeeds
    assert download.main(["videomae-s", "--out", str(tmp_path), "--no-check"]) == 0
    assert calls == ["1BH5BZmdImaZesUfqtW23eBGC341Gui1D"]
