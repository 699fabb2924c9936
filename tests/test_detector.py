"""build_detector: the config keys that shape the model (scale_factor, backbone type, widths)."""

from __future__ import annotations

import pytest
import torch

from adatad.config import SCHEMA, _schema_defaults, config_root, merge
from adatad.models.detector import build_detector

torch.set_num_threads(1)


def tiny_cfg(**dataset) -> dict:
    return merge(
        _schema_defaults(SCHEMA),
        {
            "dataset": dict(window_size=32, **dataset),
            "model": {
                "backbone": dict(embed_dims=32, depth=1, num_heads=2, adapter_index=[0], drop_path_rate=0.0),
                "projection": dict(in_channels=32, out_channels=32, arch=[2, 2, 2], n_mha_win_size=-1, path_pdrop=0.0),
                "neck": dict(num_levels=3),
                "head": dict(num_classes=3, feat_channels=32, strides=[1, 2, 4], regression_range=[[0, 4], [4, 8], [8, 10000]]),
            },
        },
    )


def test_scale_factor_feeds_window_x_scale_frames_and_returns_window_steps():
    model = build_detector(tiny_cfg(scale_factor=2)).eval()
    assert model.backbone.total_frames == 64 and model.backbone.out_len == 32
    x = torch.randint(0, 256, (1, 3, 64, 32, 32), dtype=torch.uint8)
    masks = torch.ones(1, 32, dtype=torch.bool)
    with torch.no_grad():
        feats, fpn_feats, fpn_masks = model.features(x, masks)
        cands = model(x, masks, return_loss=False, pre_nms_thresh=0.0, pre_nms_topk=10)
    assert feats.shape == (1, 32, 32) and [f.shape[-1] for f in fpn_feats] == [32, 16, 8]
    assert len(cands) == 1
    with pytest.raises(ValueError, match="32 frames for 32 snippets.*2 frame"):
        model.features(x[:, :, :32], masks)


def test_backbone_type_and_widths_are_checked():
    cfg = tiny_cfg(scale_factor=2)
    cfg["model"]["backbone"].update(type="VisionTransformerLadder", mode="adapter")
    model = build_detector(cfg)
    assert type(model.backbone).__name__ == "LadderBackbone" and model.backbone.total_frames == 64
    cfg["model"]["backbone"]["type"] = "VisionTransformerNope"
    with pytest.raises(ValueError, match="VisionTransformerNope.*is unknown"):
        build_detector(cfg)
    cfg = tiny_cfg()
    cfg["model"]["projection"]["in_channels"] = 48
    with pytest.raises(ValueError, match="projection.in_channels=48 must equal model.backbone.embed_dims=32"):
        build_detector(cfg)


@pytest.mark.parametrize("name", sorted(p.stem for p in (config_root() / "adatad/thumos").glob("*.py")))
def test_every_shipped_thumos_recipe_builds_at_full_size_on_meta(name):
    """Each shipped recipe builds its real-size model (on the meta device: shapes only, no memory) with the
    trainable part its mode promises."""
    from adatad.config import load_config

    cfg = load_config(config_root() / f"adatad/thumos/{name}.py")
    with torch.device("meta"):
        model = build_detector(cfg, load_pretrained=False)
    b = cfg["model"]["backbone"]
    counts = model.backbone.count_parameters()
    assert model.backbone.total_frames == cfg["dataset"]["window_size"] * cfg["dataset"]["scale_factor"]
    assert model.projection.embed[0].conv.in_channels == b["embed_dims"]
    if name.endswith("_fullft"):
        assert counts["frozen"] == 0
    else:  # adapter, side and frozen recipes: the ViT itself does not train
        assert counts["frozen"] > 10 * counts["trainable"]
    assert model.count_parameters()["trainable"] > counts["trainable"]
