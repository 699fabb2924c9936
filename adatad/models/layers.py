"""Small pieces several models share: stochastic depth, the sinusoid position table, parameter counts."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["DropPath", "drop_path", "sinusoid_position_table", "count_parameters"]


def drop_path(x: Tensor, drop_prob: float = 0.0, training: bool = False) -> Tensor:
    """Stochastic depth: zero a whole sample's residual branch with probability ``drop_prob`` (training only),
    scaling kept samples by ``1 / (1 - drop_prob)``. The draw is ``floor(keep + U[0, 1))`` per sample, as in
    mmcv's ``DropPath`` (the ViT) and ActionFormer's ``drop_path`` (the projection) alike."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = (keep + torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)).floor()
    return x.div(keep) * mask


class DropPath(nn.Module):
    """:func:`drop_path` as a module (active in training mode)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def sinusoid_position_table(num_positions: int, dims: int) -> Tensor:
    """Fixed sine/cosine table ``[num_positions, dims]`` (float32, computed in float64).

    Entry ``(p, i)`` is ``sin(p / 10000^(2*floor(i/2)/dims))`` for even ``i`` and ``cos(...)`` for odd ``i``
    (VideoMAE's table, used as ``[1, N, C]``; ActionFormer's, used as ``[1, C, T]``).
    """
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    idx = torch.arange(dims, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, (idx - idx % 2) / dims)[None, :]
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.to(torch.float32)


def count_parameters(module: nn.Module) -> dict[str, int]:
    """``{"trainable": n, "frozen": m}`` parameter element counts (buffers excluded)."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    return {"trainable": trainable, "frozen": frozen}
