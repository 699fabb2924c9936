"""Side-tuning backbone: a frozen VideoMAE ViT plus a trainable ladder of temporal adapters beside it.

This is AdaTAD's "side" variant (OpenTAD's ``VisionTransformerLadder``). The window ``[B, 3, T, H, W]`` goes
through the ViT exactly as in :class:`~adatad.models.videomae.VideoMAEBackbone` (16-frame chunks, tubelet
tokens, the resized position table, plain pre-norm blocks), but the ViT carries no adapters and runs without
gradients. The hidden states after the blocks listed in ``adapter_index`` (taken in block order) feed a side
network:

    out = f[-1] + sum_i adapters[i].branch(f[i])

where ``f[i]`` is the i-th collected feature map, ``f[-1]`` the one of the deepest listed block, and
``branch`` the TIA adapter without its own residual: ``gamma * up_proj(h)``, ``h = g + conv(dwconv(g))``,
``g = gelu(down_proj(f))`` with the temporal convolutions along the whole window's tubelet axis. The sum runs
in index order. Blocks after the deepest listed block cannot change the output and are not run. ``out``
is pooled like the adapter backbone: mean over space, chunks concatenated, linear interpolation to
``out_len``; the output is float32 ``[B, C, out_len]``.

What trains and what is frozen (observed by running OpenTAD 3dd7b03): only the ladder's parameters get
gradients. The patch embedding and every block of the ViT are kept in eval mode, so stochastic depth in the
ViT never fires (OpenTAD puts each block's ``drop_path`` child in eval mode too); their parameters have
``requires_grad=False`` (OpenTAD sets that on its first forward; we set it at construction). Activation
checkpointing (``with_cp``) applies to the ladder's adapters, as in OpenTAD: the ViT keeps no activations.

Parameter names equal OpenTAD's after its ``backbone.model.backbone.``
prefix; there is no ``fc_norm`` (OpenTAD's ladder has none). A VideoMAE/mmaction2 pretrain file loads into
the ViT part through :func:`adatad.models.weights.load_pretrained_backbone`; the ladder's tensors are then
reported as expected-missing, like adapters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import cast

import torch
import torch.utils.checkpoint as torch_checkpoint
from torch import Tensor, nn

from adatad.models.layers import count_parameters, sinusoid_position_table
from adatad.models.videomae import (
    PatchEmbed3d,
    TIAdapter,
    ViTBlock,
    check_frames,
    chunk_frames,
    embed_chunks,
    init_vit_weights,
    pool_tokens,
)

__all__ = ["LadderBackbone", "SideLadder"]

logger = logging.getLogger(__name__)


class SideLadder(nn.Module):
    """The side network: one TIA adapter per tapped block, summed onto the deepest tapped feature map."""

    def __init__(self, num_taps: int, embed_dims: int, mlp_ratio: float = 0.25, kernel_size: int = 3, with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.adapters = nn.ModuleList(TIAdapter(embed_dims, mlp_ratio, kernel_size) for _ in range(num_taps))

    def forward(self, feats: Sequence[Tensor], batch: int, grid: tuple[int, int, int]) -> Tensor:
        """``feats``: one ``[B*chunks, t*h*w, C]`` map per adapter, in block order -> ``[B*chunks, t*h*w, C]``."""
        if len(feats) != len(self.adapters):
            raise ValueError(f"SideLadder has {len(self.adapters)} adapters but got {len(feats)} feature maps")
        out = feats[-1]
        for adapter, f in zip(cast(Iterable[TIAdapter], self.adapters), feats):
            if self.with_cp and torch.is_grad_enabled():
                delta = torch_checkpoint.checkpoint(adapter.branch, f, batch, grid, use_reentrant=False)
            else:
                delta = adapter.branch(f, batch, grid)
            out = out + delta
        return out


class LadderBackbone(nn.Module):
    """Frozen VideoMAE ViT + trainable side ladder; ``[B, 3, T, H, W]`` normalised float -> ``[B, C, out_len]``.

    Args:
        img_size, patch_size, embed_dims, depth, num_heads, mlp_ratio, qkv_bias, num_frames, tubelet_size,
            norm_eps, in_channels: the ViT, as in :class:`~adatad.models.videomae.VideoMAEBackbone`
            (``img_size`` and ``num_frames`` size the fixed position table; other frame sizes resize it).
        drop_path_rate: stochastic depth of the ViT blocks; kept for checkpoint/config compatibility only:
            the ViT is always in eval mode, so it never fires (OpenTAD's behaviour).
        total_frames: nominal window length in frames (a multiple of ``num_frames``); inputs of other
            multiples of ``num_frames`` also run, the ladder's temporal convolutions use the actual length.
        adapter_index: blocks whose output feeds the ladder (OpenTAD's default: blocks 6..11), distinct,
            taken in block order.
        adapter_mlp_ratio, adapter_kernel: ladder adapter width ratio and temporal kernel size.
        with_cp: activation checkpointing of the ladder's adapters.
        out_len: output length (linear interpolation); ``None``: ``T / tubelet_size``.
    """

    pos_embed: Tensor  # persistent buffer

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dims: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        num_frames: int = 16,
        tubelet_size: int = 2,
        drop_path_rate: float = 0.0,
        norm_eps: float = 1e-6,
        total_frames: int = 768,
        adapter_index: Sequence[int] | None = tuple(range(6, 12)),
        adapter_mlp_ratio: float = 0.25,
        adapter_kernel: int = 3,
        with_cp: bool = True,
        out_len: int | None = 768,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if num_frames % tubelet_size:
            raise ValueError(f"num_frames={num_frames} must be a multiple of tubelet_size={tubelet_size}")
        if total_frames % num_frames:
            raise ValueError(f"total_frames={total_frames} must be a multiple of num_frames={num_frames} (the ViT chunk length)")
        taps = [int(i) for i in (adapter_index or [])]
        if not taps:
            raise ValueError("the ladder backbone needs a non-empty adapter_index (the blocks that feed the side network)")
        if len(set(taps)) != len(taps):
            raise ValueError(f"adapter_index {taps} lists a block twice")
        bad = [i for i in taps if not 0 <= i < depth]
        if bad:
            raise ValueError(f"adapter_index {bad} out of range for depth={depth}")
        if not isinstance(with_cp, bool):
            raise ValueError(f"the ladder backbone's with_cp is True or False (it checkpoints the ladder), got {with_cp!r}")

        self.img_size = img_size
        self.patch_size = patch_size
        self.embed_dims = embed_dims
        self.depth = depth
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.total_frames = total_frames
        self.adapter_index = sorted(taps)
        self.out_len = out_len

        self.patch_embed = PatchEmbed3d(in_channels, embed_dims, tubelet_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        n_pos = (num_frames // tubelet_size) * self.grid_size[0] * self.grid_size[1]
        self.register_buffer("pos_embed", sinusoid_position_table(n_pos, embed_dims)[None], persistent=True)
        rates = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist() if depth > 0 else []
        self.blocks = nn.ModuleList(
            ViTBlock(embed_dims, num_heads, mlp_ratio, qkv_bias, drop_path=rates[i], norm_eps=norm_eps) for i in range(depth)
        )
        self.ladders = SideLadder(len(taps), embed_dims, adapter_mlp_ratio, adapter_kernel, with_cp=with_cp)

        init_vit_weights(self)  # the ladder's adapters initialise themselves
        for name, p in self.named_parameters():
            p.requires_grad_(self.is_adapter_param(name))
        self._set_frozen_eval()
        counts = self.count_parameters()
        logger.info(
            "LadderBackbone(depth=%d, width=%d, taps=%s): trainable %d, frozen %d parameters",
            depth,
            embed_dims,
            self.adapter_index,
            counts["trainable"],
            counts["frozen"],
        )

    @property
    def with_cp(self) -> bool:
        return self.ladders.with_cp

    @with_cp.setter
    def with_cp(self, value: bool) -> None:
        self.ladders.with_cp = bool(value)

    @staticmethod
    def is_adapter_param(name: str) -> bool:
        """True for the trainable side network's parameters (``ladders.*``)."""
        return name.startswith("ladders.")

    def count_parameters(self) -> dict[str, int]:
        return count_parameters(self)

    def _set_frozen_eval(self) -> None:
        for m in (self.patch_embed, self.blocks):
            for sub in m.modules():
                sub.training = False

    def train(self, mode: bool = True) -> LadderBackbone:
        super().train(mode)
        self._set_frozen_eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        """``x`` float ``[B, 3, T, H, W]`` (normalised; ``T`` a multiple of ``num_frames``) -> ``[B, C, out_len]``."""
        check_frames(x, self.patch_embed.projection.in_channels, self.num_frames, self.patch_size, "LadderBackbone")
        self._set_frozen_eval()
        b, _, t_in, h_in, w_in = x.shape
        t = self.num_frames // self.tubelet_size
        grid = (t_in // self.num_frames * t, h_in // self.patch_size, w_in // self.patch_size)
        feats = []
        with torch.no_grad():  # the ViT is frozen: no gradients, no stored activations
            tokens = embed_chunks(chunk_frames(x, self.num_frames), self.patch_embed, self.pos_embed, self.grid_size, self.patch_size)
            for i, block in enumerate(self.blocks[: self.adapter_index[-1] + 1]):
                tokens = block(tokens, b, grid)
                if i in self.adapter_index:
                    feats.append(tokens)
        out = self.ladders(feats, b, grid)
        return pool_tokens(out, b, t, self.out_len)
