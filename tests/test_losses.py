"""Points, label assignment, focal and DIoU losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from adatad.models.losses import (
    assign_targets,
    decode_segments,
    diou_loss,
    generate_points,
    sigmoid_focal_loss,
)

torch.set_num_threads(1)


def test_points_no_offset_with_range_and_stride():
    pts = generate_points([4, 2], [1, 2], [(0, 4), (4, 10000)])
    assert pts[0].tolist() == [[0, 0, 4, 1], [1, 0, 4, 1], [2, 0, 4, 1], [3, 0, 4, 1]]
    assert pts[1].tolist() == [[0, 4, 10000, 2], [2, 4, 10000, 2]]
    assert pts[0].dtype == torch.float32


def test_decode_segments():
    pts = torch.tensor([[4.0, 0, 8, 2.0], [6.0, 0, 8, 2.0]])
    off = torch.tensor([[[1.0, 0.5], [0.0, 2.0]]])
    assert decode_segments(pts, off).tolist() == [[[2.0, 5.0], [6.0, 10.0]]]


def test_focal_loss_hand_values():
    ln2 = math.log(2)
    # logit 0 (p = 0.5): target 1 -> ln2 * 0.5^2 * 0.25; target 0 -> ln2 * 0.5^2 * 0.75
    x = torch.zeros(2)
    y = torch.tensor([1.0, 0.0])
    loss = sigmoid_focal_loss(x, y, reduction="none")
    assert loss.tolist() == pytest.approx([ln2 * 0.0625, ln2 * 0.1875], rel=1e-6)
    # logit ln 3 (p = 0.75), target 1: -ln(0.75) * 0.25^2 * 0.25
    # logit ln 3, target 0: -ln(0.25) * 0.75^2 * 0.75
    x = torch.full((2,), math.log(3))
    loss = sigmoid_focal_loss(x, y, reduction="none")
    want = [-math.log(0.75) * 0.0625 * 0.25, -math.log(0.25) * 0.5625 * 0.75]
    assert loss.tolist() == pytest.approx(want, rel=1e-6)
    assert sigmoid_focal_loss(x, y).item() == pytest.approx(sum(want), rel=1e-6)  # default: sum
    # soft target 0.5 at logit 0: ce = ln2, p_t = 0.5, alpha_t = 0.5
    assert sigmoid_focal_loss(torch.zeros(1), torch.full((1,), 0.5)).item() == pytest.approx(ln2 * 0.25 * 0.5)


def test_diou_loss_hand_values():
    pred = torch.tensor([[0.0, 2.0], [0.0, 1.0], [1.0, 4.0], [3.0, 5.0]])
    gt = torch.tensor([[1.0, 3.0], [2.0, 3.0], [1.0, 4.0], [2.0, 5.0]])
    # 1: IoU 1/3, centres 1 vs 2 over enclosing 3 -> 1/9      -> 1 - 2/9
    # 2: disjoint, centre distance 2, enclosing 3 -> 4/9       -> 1 + 4/9
    # 3: identical                                             -> 0
    # 4: IoU 2/3, centres 4 vs 3.5, enclosing 3 -> 0.25/9      -> 1 - 2/3 + 1/36
    want = [7 / 9, 13 / 9, 0.0, 1 / 3 + 1 / 36]
    assert diou_loss(pred, gt, reduction="none").tolist() == pytest.approx(want, abs=1e-6)
    assert diou_loss(pred, gt).item() == pytest.approx(sum(want), abs=1e-6)
    assert diou_loss(torch.zeros(0, 2), torch.zeros(0, 2), reduction="mean").item() == 0.0


def _positives(cls_t: torch.Tensor) -> dict[int, list[int]]:
    return {int(p): torch.nonzero(cls_t[p]).flatten().tolist() for p in torch.nonzero(cls_t.sum(-1)).flatten()}


def test_assignment_toy_sequence():
    """Two levels: 16 points at stride 1 (range 0..4) then 8 points at stride 2 (range 4..100); the level-1
    point i sits at t = 2i and has flat index 16 + i.

    Sample 0, A = [2, 5] label 0: level 0 centre region [max(3.5-1.5, 2), min(5, 5)] = [2, 5] -> strictly inside
      t = 3, 4 (max distance 2, in range); level 1 region [2, 5] -> t = 4 but max distance 2 < 4.
      B = [6, 14] label 1: level 0 region [8.5, 11.5] -> t = 9, 10, 11 with max distances 5, 4, 5 -> only t = 10
      (range check inclusive); level 1 region [7, 13] -> t = 8, 10, 12 with max distances 6, 4, 6 -> all three.
    Sample 1: B again, C = [9, 11] label 2 and D = [9, 11.0005] label 1 (length within 1e-3 of C's):
      level-0 t = 10 is inside B, C and D; C is shortest and D ties with it -> multi-hot {1, 2}, regression to
      C = (1, 1); t = 11 lies strictly inside D's region [8.50025, 11.0005] only -> label 1, regression
      (2, 0.0005); level 1 keeps B's three points (C and D: max distance about 1 < 4).
    Sample 2 has no GT.
    """
    pts = torch.cat(generate_points([16, 8], [1, 2], [(0, 4), (4, 100)]))
    gts = [torch.tensor([[2.0, 5.0], [6.0, 14.0]]), torch.tensor([[6.0, 14.0], [9.0, 11.0], [9.0, 11.0005]]), torch.zeros(0, 2)]
    labels = [torch.tensor([0, 1]), torch.tensor([1, 2, 1]), torch.zeros(0, dtype=torch.long)]
    cls_t, reg_t = assign_targets(pts, gts, labels, num_classes=3, center_sample="radius", center_sample_radius=1.5)
    assert cls_t.shape == (3, 24, 3) and reg_t.shape == (3, 24, 2)

    assert _positives(cls_t[0]) == {3: [0], 4: [0], 10: [1], 16 + 4: [1], 16 + 5: [1], 16 + 6: [1]}
    assert reg_t[0, 3].tolist() == [1.0, 2.0]
    assert reg_t[0, 4].tolist() == [2.0, 1.0]
    assert reg_t[0, 10].tolist() == [4.0, 4.0]
    assert reg_t[0, 16 + 4].tolist() == [1.0, 3.0]  # t = 8: (2, 6) / stride 2
    assert reg_t[0, 16 + 5].tolist() == [2.0, 2.0]
    assert reg_t[0, 16 + 6].tolist() == [3.0, 1.0]

    assert _positives(cls_t[1]) == {10: [1, 2], 11: [1], 16 + 4: [1], 16 + 5: [1], 16 + 6: [1]}
    assert reg_t[1, 10].tolist() == [1.0, 1.0]
    assert reg_t[1, 11].tolist() == pytest.approx([2.0, 0.0005], abs=1e-6)
    assert cls_t[2].sum() == 0 and reg_t[2].abs().sum() == 0

    # without centre sampling every point strictly inside a segment is a candidate: A -> t = 3, 4 at level 0
    # (t = 2 and 5 sit on the boundary), B at level 0: t = 10 only (max distance <= 4)
    cls_n, _ = assign_targets(pts, gts[:1], labels[:1], num_classes=3, center_sample="none")
    assert sorted(_positives(cls_n[0])) == [3, 4, 10, 16 + 4, 16 + 5, 16 + 6]


def test_assignment_same_label_duplicates_are_not_double_counted():
    pts = torch.cat(generate_points([8], [1], [(0, 100)]))
    gts = [torch.tensor([[1.0, 5.0], [1.0, 5.0]])]
    cls_t, _ = assign_targets(pts, gts, [torch.tensor([1, 1])], num_classes=2)
    assert cls_t.max().item() == 1.0
    assert _positives(cls_t[0]) == {2: [1], 3: [1], 4: [1]}
