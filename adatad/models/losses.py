"""ActionFormer training targets and losses (OpenTAD semantics).

* points: level ``l`` has points ``t = i * stride_l`` (no half-step offset), each with its regression range
  and stride -> ``[T_l, 4]`` rows ``(t, reg_min, reg_max, stride)``;
* assignment: a point is positive for a segment when it lies strictly inside the centre region
  ``[max(c - r*s, start), min(c + r*s, end)]`` and ``max(t - start, end - t)`` lies in the point's regression
  range (inclusive at both ends); among several candidate segments the shortest wins and segments whose length
  is within 1e-3 of the shortest add their labels (multi-hot); regression targets are
  ``(t - start, end - t) / stride``;
* sigmoid focal loss (alpha 0.25, gamma 2) and DIoU loss on ``[N, 2]`` segments.

All functions are plain torch; shapes are documented per function.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "generate_points",
    "assign_targets",
    "decode_segments",
    "sigmoid_focal_loss",
    "diou",
    "diou_loss",
]


def generate_points(
    lengths: Sequence[int],
    strides: Sequence[int],
    regression_range: Sequence[Sequence[float]],
    device: torch.device | str | None = None,
) -> list[torch.Tensor]:
    """Points of every FPN level -> list of float32 ``[T_l, 4]``: ``(t = i*stride, reg_min, reg_max, stride)``."""
    if not (len(lengths) == len(strides) == len(regression_range)):
        raise ValueError(f"{len(lengths)} levels but {len(strides)} strides / {len(regression_range)} ranges")
    out = []
    for T, s, (lo, hi) in zip(lengths, strides, regression_range):
        t = torch.arange(int(T), dtype=torch.float32, device=device) * float(s)
        rows = torch.empty((int(T), 4), dtype=torch.float32, device=device)
        rows[:, 0] = t
        rows[:, 1] = float(lo)
        rows[:, 2] = float(hi)
        rows[:, 3] = float(s)
        out.append(rows)
    return out


def decode_segments(points: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``points [P, 4]``, ``offsets [..., P, 2]`` (in strides) -> segments ``[..., P, 2]``:
    ``(t - d0 * stride, t + d1 * stride)``."""
    t, s = points[:, 0], points[:, 3]
    start = t - offsets[..., 0] * s
    end = t + offsets[..., 1] * s
    return torch.stack((start, end), dim=-1)


@torch.no_grad()
def assign_targets(
    points: torch.Tensor,
    gt_segments: Sequence[torch.Tensor],
    gt_labels: Sequence[torch.Tensor],
    num_classes: int,
    center_sample: str | None = "radius",
    center_sample_radius: float = 1.5,
    filter_similar_gt: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label assignment for concatenated points ``[P, 4]``.

    ``gt_segments``: per sample float ``[N_i, 2]`` (grid units); ``gt_labels``: per sample int ``[N_i]``.
    Returns ``cls_targets [B, P, K]`` (0/1, multi-hot on near-equal-length ties) and ``reg_targets [B, P, 2]``
    (distances to start/end divided by the point's stride; meaningful only on positive points).
    """
    num_pts = points.shape[0]
    t = points[:, 0, None]  # [P,1]
    stride = points[:, 3, None]
    cls_all, reg_all = [], []
    for seg, lab in zip(gt_segments, gt_labels):
        seg = seg.to(points.device, torch.float32).reshape(-1, 2)
        n = seg.shape[0]
        if n == 0:
            cls_all.append(points.new_zeros((num_pts, num_classes)))
            reg_all.append(points.new_zeros((num_pts, 2)))
            continue
        lens = (seg[:, 1] - seg[:, 0])[None, :].repeat(num_pts, 1)  # [P,N]
        starts, ends = seg[None, :, 0], seg[None, :, 1]  # [1,N]
        left = t - starts
        right = ends - t
        reg = torch.stack((left, right), dim=-1)  # [P,N,2]
        if center_sample == "radius":
            center = 0.5 * (starts + ends)
            t_min = center - stride * center_sample_radius
            t_max = center + stride * center_sample_radius
            cb_left = t - torch.maximum(t_min, starts)
            cb_right = torch.minimum(t_max, ends) - t
            inside = torch.stack((cb_left, cb_right), -1).min(-1)[0] > 0
        else:
            inside = reg.min(-1)[0] > 0
        max_dist = reg.max(-1)[0]
        in_range = (max_dist >= points[:, 1, None]) & (max_dist <= points[:, 2, None])
        lens.masked_fill_(~inside, float("inf"))
        lens.masked_fill_(~in_range, float("inf"))
        min_len, min_ind = lens.min(dim=1)
        if filter_similar_gt:
            chosen = (lens <= (min_len[:, None] + 1e-3)) & (lens < float("inf"))
        else:
            chosen = lens < float("inf")
        one_hot = F.one_hot(lab.to(points.device).long().reshape(-1), num_classes).to(reg.dtype)
        cls_t = (chosen.to(reg.dtype) @ one_hot).clamp_(0.0, 1.0)
        reg_t = reg[torch.arange(num_pts, device=points.device), min_ind] / stride
        cls_all.append(cls_t)
        reg_all.append(reg_t)
    return torch.stack(cls_all), torch.stack(reg_all)


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "sum",
) -> torch.Tensor:
    """RetinaNet focal loss on logits and (soft) targets of any equal shape, computed in float32.

    ``loss = BCE(logits, y) * (1 - p_t)^gamma * (alpha*y + (1-alpha)*(1-y))`` with
    ``p_t = p*y + (1-p)*(1-y)``; ``alpha < 0`` disables the alpha weighting.
    """
    logits = logits.float()
    targets = targets.float()
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(loss, reduction)


def diou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Element-wise 1D DIoU of ``pred [N, 2]`` and ``target [N, 2]`` -> ``[N]``:
    ``IoU - (centre distance)^2 / (enclosing length)^2`` (denominators clamped at ``eps``)."""
    inter = (torch.minimum(pred[:, 1], target[:, 1]) - torch.maximum(pred[:, 0], target[:, 0])).clamp(min=0)
    union = (pred[:, 1] - pred[:, 0]) + (target[:, 1] - target[:, 0]) - inter
    iou = inter / union.clamp(min=eps)
    enclose = torch.maximum(pred[:, 1], target[:, 1]) - torch.minimum(pred[:, 0], target[:, 0])
    c_dist = ((target[:, 0] + target[:, 1]) / 2 - (pred[:, 0] + pred[:, 1]) / 2).abs()
    return iou - c_dist * c_dist / (enclose * enclose).clamp(min=eps)


def diou_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "sum", eps: float = 1e-7) -> torch.Tensor:
    """``1 - DIoU(pred, target)`` for ``[N, 2]`` segments, reduced (``"sum"``, ``"mean"`` or ``"none"``)."""
    loss = 1 - diou(pred, target, eps=eps)
    if reduction == "mean" and loss.numel() == 0:
        return loss.sum() * 0.0
    return _reduce(loss, reduction)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'sum', 'mean' or 'none', got {reduction!r}")
