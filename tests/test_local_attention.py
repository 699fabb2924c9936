"""Local attention (``n_mha_win_size``) and OpenTAD's padding of the features to ``max_seq_len``.

Oracle: ``tests/fixtures/opentad/local_attn/fixture.pt``, recorded from OpenTAD's own ``ActionFormer`` detector
(``pad_data`` + ``Conv1DTransformerProj`` + ``FPNIdentity``) by ``make_fixture.py`` beside it, with the EPIC
projection (window 9 at every level) and the Ego4D one (windows 17 x 7 + global x 3, absolute position table).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adatad.models.actionformer import Conv1DTransformerProj, FPNIdentity, max_div_factor, pad_to_max_seq_len
from adatad.models.detector import build_detector
from tests.test_detector import tiny_cfg

torch.set_num_threads(1)
FIXTURE = Path(__file__).parent / "fixtures/opentad/local_attn/fixture.pt"


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIXTURE, weights_only=True)


def _build(cfg: dict) -> tuple[Conv1DTransformerProj, FPNIdentity]:
    p = cfg["projection"]
    proj = Conv1DTransformerProj(
        in_channels=p["in_channels"],
        out_channels=p["out_channels"],
        arch=tuple(p["arch"]),
        conv_kernel=p["conv_cfg"]["kernel_size"],
        n_head=p["attn_cfg"]["n_head"],
        n_mha_win_size=p["attn_cfg"]["n_mha_win_size"],
        path_pdrop=p["path_pdrop"],
        proj_pdrop=p["conv_cfg"]["proj_pdrop"],
        input_pdrop=p["input_pdrop"],
        use_abs_pe=p["use_abs_pe"],
        max_seq_len=p["max_seq_len"],
    )
    n = cfg["neck"]
    neck = FPNIdentity(n["in_channels"], n["out_channels"], n["num_levels"])
    return proj, neck


@pytest.mark.parametrize("case", ["epic", "ego4d"])
def test_padding_and_local_attention_projection_match_opentad(fixture, case):
    fx = fixture[case]
    cfg = fx["cfg"]
    proj, neck = _build(cfg)
    sd = fx["state_dict"]
    proj.load_state_dict({k.removeprefix("projection."): v for k, v in sd.items() if k.startswith("projection.")}, strict=True)
    neck.load_state_dict({k.removeprefix("neck."): v for k, v in sd.items() if k.startswith("neck.")}, strict=True)
    proj.eval()
    neck.eval()
    strides = cfg["rpn_head"]["prior_generator"]["strides"]
    div = max_div_factor(strides, proj.mha_win_size, proj.max_seq_len)
    assert div == fx["max_div_factor"]
    for run in fx["runs"]:
        x, mask = pad_to_max_seq_len(run["x"], run["mask"], proj.max_seq_len, div)
        assert torch.equal(x, run["padded_x"]) and torch.equal(mask, run["padded_mask"])
        with torch.no_grad():
            feats, masks = neck(*proj(x, mask))
        assert len(feats) == len(run["feats"])
        for lvl, (f, m, wf, wm) in enumerate(zip(feats, masks, run["feats"], run["masks"])):
            assert torch.equal(m, wm), f"{case} T={run['x'].shape[-1]} level {lvl}: masks differ"
            torch.testing.assert_close(f, wf, atol=1e-5, rtol=0, msg=f"{case} T={run['x'].shape[-1]} level {lvl}")


def test_max_div_factor_by_hand_and_bad_max_seq_len():
    # EPIC: window 9 -> 8 steps per window; stride 32 x 8 = 256 divides 768
    assert max_div_factor([1, 2, 4, 8, 16, 32], [9] * 6, 768) == 256
    # Ego4D: 64 x 16 = 1024 at the last local level, global levels need only their stride
    assert max_div_factor([1, 2, 4, 8, 16, 32, 64, 128, 256, 512], [17] * 7 + [-1] * 3, 2048) == 1024
    assert max_div_factor([1, 2, 4, 8, 16, 32], [-1] * 6, 768) == 32
    with pytest.raises(ValueError, match="max_seq_len=1800 must be divisible by 16"):
        max_div_factor([1, 2], [17, 17], 1800)


def test_pad_rules():
    x, m = torch.ones(1, 2, 5), torch.ones(1, 5, dtype=torch.bool)
    px, pm = pad_to_max_seq_len(x, m, 8, 4)
    assert px.shape[-1] == 8 and px[..., 5:].abs().sum() == 0 and pm.tolist() == [[True] * 5 + [False] * 3]
    px, pm = pad_to_max_seq_len(torch.ones(1, 2, 9), torch.ones(1, 9, dtype=torch.bool), 8, 4)
    assert px.shape[-1] == 12 and pm.sum() == 9  # longer than max_seq_len: next multiple of 4
    px, pm = pad_to_max_seq_len(x, m, 5, 4)
    assert px is x and pm is m


def test_detector_pads_window_to_max_seq_len_for_local_attention():
    """A window of 48 with local attention (window 9: 8 steps x stride 4 = 32) cannot run unpadded; the detector pads
    it to max_seq_len 64 and the head's levels have 64 / stride points, the padded ones masked."""
    cfg = tiny_cfg()
    cfg["dataset"]["window_size"] = 48
    cfg["model"]["projection"].update(n_mha_win_size=9, max_seq_len=64)
    model = build_detector(cfg).eval()
    assert model.max_div_factor == 32
    x = torch.randint(0, 256, (1, 3, 48, 32, 32), dtype=torch.uint8)
    masks = torch.ones(1, 48, dtype=torch.bool)
    with torch.no_grad():
        feats, fpn_feats, fpn_masks = model.features(x, masks)
        cands = model(x, masks, return_loss=False, pre_nms_thresh=0.0, pre_nms_topk=1000)
    assert feats.shape[-1] == 48
    assert [f.shape[-1] for f in fpn_feats] == [64, 32, 16]
    assert [int(m.sum()) for m in fpn_masks] == [48, 24, 12]
    # candidates come from valid points only: 48 + 24 + 12 points x 3 classes
    assert cands[0]["scores"].numel() == (48 + 24 + 12) * 3
    cfg["model"]["projection"]["max_seq_len"] = 48
    with pytest.raises(ValueError, match="max_seq_len=48 must be divisible by 32"):
        build_detector(cfg)
