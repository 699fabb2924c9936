"""Multi-label ground truth (MultiTHUMOS / Charades): adatad's label assignment and losses equal OpenTAD's
ActionFormerHead on one segment under several labels, exact duplicates, nested / overlapping instances of
different classes and equal-length ties, with Charades' 8 levels (fixture: tests/fixtures/opentad/multilabel_head,
made by its make_fixture.py from OpenTAD's code)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adatad.models import losses as L
from adatad.models.actionformer import ActionFormerHead

FIX = torch.load(Path(__file__).parent / "fixtures" / "opentad" / "multilabel_head" / "fixture.pt", weights_only=True)


def _head() -> ActionFormerHead:
    head = ActionFormerHead(**FIX["head_cfg"])
    head.load_state_dict(FIX["state_dict"])
    return head


def test_fixture_exercises_multilabel_targets():
    multi = FIX["gt_cls"].sum(-1) > 1
    assert int(multi.sum()) >= 4  # points whose target is multi-hot (one segment, two labels; equal-length ties)
    assert FIX["gt_cls"].shape == (2, sum(128 // s for s in FIX["head_cfg"]["strides"]), 5)


def test_assigned_targets_equal_opentads():
    head = _head()
    points = torch.cat(head.points([f.shape[-1] for f in FIX["feats"]]), dim=0)
    cls_t, reg_t = L.assign_targets(points, FIX["gt_segments"], FIX["gt_labels"], 5)
    assert torch.equal(cls_t, FIX["gt_cls"])
    pos = FIX["gt_cls"].sum(-1) > 0
    torch.testing.assert_close(reg_t[pos], FIX["gt_reg"][pos], rtol=0, atol=1e-6)


def test_losses_equal_opentads_in_eval_and_train_mode():
    head = _head()
    head.eval()
    with torch.no_grad():
        cls, reg = head(FIX["feats"], FIX["masks"])
        le = head.losses(cls, reg, FIX["masks"], FIX["gt_segments"], FIX["gt_labels"])
        head.train()
        cls, reg = head(FIX["feats"], FIX["masks"])
        lt = head.losses(cls, reg, FIX["masks"], FIX["gt_segments"], FIX["gt_labels"])
    for got, want in ((le, FIX["losses_eval"]), (lt, FIX["losses_train"])):
        for k in ("cls_loss", "reg_loss"):
            torch.testing.assert_close(got[k], want[k], rtol=1e-6, atol=0)
    torch.testing.assert_close(head.loss_normalizer, FIX["normalizer_after"], rtol=1e-6, atol=0)


NMS_FIX = torch.load(Path(__file__).parent / "fixtures" / "opentad" / "benchmark_nms" / "fixture.pt", weights_only=True)


@pytest.mark.parametrize("case", sorted(NMS_FIX))
def test_benchmark_nms_equals_opentads(case):
    """MultiTHUMOS' (sigma 0.5, up to 8,000 segments kept; and a cap of 40 that cuts) and Charades' (sigma 0.3,
    1,000 kept) multiclass soft-NMS on random candidates keep what OpenTAD's batched_nms keeps (fixture
    benchmark_nms)."""
    from adatad.models.postprocess import batched_nms

    f = NMS_FIX[case]
    segs, scores, labels = batched_nms(f["segments"], f["scores"], f["labels"], **f["nms"])
    assert segs.shape[0] == f["kept_segments"].shape[0] == min(f["nms"]["max_seg_num"], f["scores"].numel())
    torch.testing.assert_close(segs, f["kept_segments"], rtol=0, atol=1e-4)
    torch.testing.assert_close(scores, f["kept_scores"], rtol=0, atol=1e-4)
    assert torch.equal(labels.long(), f["kept_labels"])
