"""ActionFormer detector parts: transformer projection, identity FPN and the anchor-free head.

Shapes: features ``[B, C, T]``, masks ``[B, T]`` bool (True = valid step). Every module keeps OpenTAD's
sub-module names, so an OpenTAD state dict loads with ``load_state_dict(strict=True)`` once the
``projection.`` / ``neck.`` / ``rpn_head.`` prefixes are stripped.

Behaviour follows OpenTAD (``opentad/models/{projections/actionformer_proj.py, necks/fpn.py,
dense_heads/anchor_free_head.py, bricks/*}``), including details that look accidental:

* conv modules: conv (no bias when followed by a norm) -> x mask -> LayerNorm(eps 1e-6) -> ReLU -> x mask;
  a mask whose length differs from the conv output is resized by nearest interpolation;
* transformer blocks use PyTorch's default LayerNorm eps (1e-5) for ``ln1``, ``ln2`` and the q/k/v norms;
* classification logits are not masked; regression is ``relu(scale_l * conv(x))``;
* the FPN norms do not re-apply the mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from adatad.models import losses as L
from adatad.models.layers import drop_path, sinusoid_position_table

__all__ = [
    "ConvModule",
    "MaskedMHCA",
    "LocalMaskedMHCA",
    "AffineDropPath",
    "TransformerBlock",
    "Conv1DTransformerProj",
    "FPNIdentity",
    "Scale",
    "ActionFormerHead",
    "max_div_factor",
    "pad_to_max_seq_len",
]


def _resize_mask(mask: torch.Tensor, length: int) -> torch.Tensor:
    """Nearest-neighbour resize of a bool mask ``[B, T]`` to ``[B, length]`` (OpenTAD's rule)."""
    if mask.shape[-1] == length:
        return mask
    return F.interpolate(mask.unsqueeze(1).float(), size=length, mode="nearest").squeeze(1).bool()


def _ln_channels(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the channel axis of ``[B, C, T]``."""
    return norm(x.transpose(1, 2)).transpose(1, 2)


class ConvModule(nn.Module):
    """Masked 1D conv -> optional LayerNorm (eps 1e-6) -> optional ReLU.

    ``forward(x [B,C_in,T], mask [B,T] bool) -> (y [B,C_out,T'], mask [B,T'])``.
    Parameters: ``conv`` (bias only without norm, unless ``bias`` is given), ``norm``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        norm: bool = False,
        act: bool = False,
        groups: int = 1,
        bias: bool | None = None,
    ):
        super().__init__()
        if bias is None:
            bias = not norm
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups, bias=bias)
        self.norm = nn.LayerNorm(out_channels, eps=1e-6) if norm else None
        self.act = act
        # PyTorch default init for the weight (kaiming uniform, a=sqrt(5)), zero bias
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv(x)
        mask = _resize_mask(mask, x.shape[-1])
        m = mask.unsqueeze(1).to(x.dtype)
        x = x * m
        if self.norm is not None:
            x = _ln_channels(self.norm, x)
        if self.act:
            x = F.relu(x)
        return x * m, mask


class MaskedMHCA(nn.Module):
    """Global multi-head self-attention with depthwise-conv q/k/v embeddings and a key mask.

    ``forward(x [B,C,T], mask [B,T]) -> (y [B,C,T'], mask [B,T'])`` with ``T' = ceil(T / stride)``.
    Masked keys get -inf logits; masked values are zeroed; the output is multiplied by the query mask.
    """

    def __init__(self, n_embd: int, n_head: int, stride: int = 1, attn_pdrop: float = 0.0, proj_pdrop: float = 0.0):
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"embedding width {n_embd} is not divisible by the number of heads {n_head}")
        if stride != 1 and stride % 2 != 0:
            raise ValueError(f"attention stride must be 1 or even, got {stride}")
        self.n_embd = n_embd
        self.n_head = n_head
        self.n_channels = n_embd // n_head
        self.scale = 1.0 / math.sqrt(self.n_channels)
        kernel_size = stride + 1 if stride > 1 else 3

        def conv() -> ConvModule:  # depthwise q/k/v embedding
            return ConvModule(n_embd, n_embd, kernel_size, stride=stride, padding=kernel_size // 2, groups=n_embd, bias=False)

        self.query_conv = conv()
        self.query_norm = nn.LayerNorm(n_embd)
        self.key_conv = conv()
        self.key_norm = nn.LayerNorm(n_embd)
        self.value_conv = conv()
        self.value_norm = nn.LayerNorm(n_embd)
        self.key = nn.Conv1d(n_embd, n_embd, 1)
        self.query = nn.Conv1d(n_embd, n_embd, 1)
        self.value = nn.Conv1d(n_embd, n_embd, 1)
        self.attn_drop = nn.Dropout(attn_pdrop)
        self.proj_drop = nn.Dropout(proj_pdrop)
        self.proj = nn.Conv1d(n_embd, n_embd, 1)

    def _qkv(self, x: torch.Tensor, mask: torch.Tensor):
        q, qx_mask = self.query_conv(x, mask)
        q = _ln_channels(self.query_norm, q)
        k, kv_mask = self.key_conv(x, mask)
        k = _ln_channels(self.key_norm, k)
        v, _ = self.value_conv(x, mask)
        v = _ln_channels(self.value_norm, v)
        B = x.shape[0]
        # [B, nh*hs, T'] -> [B, nh, T', hs]
        q = self.query(q).view(B, self.n_head, self.n_channels, -1).transpose(2, 3)
        k = self.key(k).view(B, self.n_head, self.n_channels, -1).transpose(2, 3)
        v = self.value(v).view(B, self.n_head, self.n_channels, -1).transpose(2, 3)
        return q, k, v, qx_mask, kv_mask

    def _attend(self, q, k, v, kv_mask) -> torch.Tensor:
        att = (q * self.scale) @ k.transpose(-2, -1)  # [B, nh, T', T'']
        att = att.masked_fill(~kv_mask[:, None, None, :], float("-inf"))
        att = self.attn_drop(F.softmax(att, dim=-1))
        return att @ (v * kv_mask[:, None, :, None].to(v.dtype))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, C, _ = x.shape
        q, k, v, qx_mask, kv_mask = self._qkv(x, mask)
        out = self._attend(q, k, v, kv_mask)
        out = out.transpose(2, 3).contiguous().view(B, C, -1)
        out = self.proj_drop(self.proj(out)) * qx_mask.unsqueeze(1).to(out.dtype)
        return out, qx_mask


class LocalMaskedMHCA(MaskedMHCA):
    """Windowed variant: each query attends to keys within ``window_size // 2`` steps on either side.

    Computed as banded full attention (memory ``T^2``; fine for ActionFormer lengths). As in OpenTAD, masked
    keys get a -1e4 logit offset (not -inf), values are not masked, and masked query rows are zero.
    Parameter names equal :class:`MaskedMHCA`'s (OpenTAD's ``LocalMaskedMHCA`` has the same ones).
    """

    def __init__(self, n_embd: int, n_head: int, window_size: int, stride: int = 1, attn_pdrop: float = 0.0, proj_pdrop: float = 0.0):
        super().__init__(n_embd, n_head, stride=stride, attn_pdrop=attn_pdrop, proj_pdrop=proj_pdrop)
        if window_size <= 1:
            raise ValueError(f"local attention needs window_size > 1, got {window_size}")
        self.window_size = window_size
        self.window_overlap = window_size // 2

    def _attend(self, q, k, v, kv_mask) -> torch.Tensor:
        T = q.shape[-2]
        if T % (2 * self.window_overlap) != 0:
            raise ValueError(
                f"local attention with window {self.window_size} needs a sequence length divisible by "
                f"{2 * self.window_overlap}, got {T}: pad the input (max_seq_len) accordingly"
            )
        att = (q * self.scale) @ k.transpose(-2, -1)  # [B, nh, T, T]
        idx = torch.arange(T, device=q.device)
        band = (idx[:, None] - idx[None, :]).abs() <= self.window_overlap
        att = att + (~kv_mask).to(att.dtype)[:, None, None, :] * -1e4
        att = att.masked_fill(~band, float("-inf"))
        att = F.softmax(att, dim=-1)
        att = att.masked_fill(~kv_mask[:, None, :, None], 0.0)
        att = self.attn_drop(att)
        return att @ v


class AffineDropPath(nn.Module):
    """Per-channel learnable scale (``scale`` ``[1, C, 1]``, init 1e-4) followed by stochastic depth."""

    def __init__(self, num_dim: int, drop_prob: float = 0.0, init_scale_value: float = 1e-4):
        super().__init__()
        self.scale = nn.Parameter(init_scale_value * torch.ones((1, num_dim, 1)))
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(self.scale * x, self.drop_prob, self.training)


class TransformerBlock(nn.Module):
    """Pre-LN transformer block on ``[B, C, T]`` with masks; ``stride`` 2 halves the length (max-pool skip).

    ``out = skip(x) * mask' + s_attn * attn(ln1(x)); out = out + s_mlp * (mlp(ln2(out)) * mask')``.
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        stride: int = 1,
        attn_pdrop: float = 0.0,
        proj_pdrop: float = 0.0,
        path_pdrop: float = 0.0,
        mha_win_size: int = -1,
    ):
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)
        if mha_win_size > 1:
            self.attn = LocalMaskedMHCA(n_embd, n_head, mha_win_size, stride=stride, attn_pdrop=attn_pdrop, proj_pdrop=proj_pdrop)
        else:
            self.attn = MaskedMHCA(n_embd, n_head, stride=stride, attn_pdrop=attn_pdrop, proj_pdrop=proj_pdrop)
        if stride > 1:
            self.pool_skip = nn.MaxPool1d(stride + 1, stride=stride, padding=(stride + 1) // 2)
        else:
            self.pool_skip = nn.Identity()
        self.mlp = nn.Sequential(
            nn.Conv1d(n_embd, 4 * n_embd, 1),
            nn.GELU(),
            nn.Dropout(proj_pdrop),
            nn.Conv1d(4 * n_embd, n_embd, 1),
            nn.Dropout(proj_pdrop),
        )
        if path_pdrop > 0.0:
            self.drop_path_attn = AffineDropPath(n_embd, drop_prob=path_pdrop)
            self.drop_path_mlp = AffineDropPath(n_embd, drop_prob=path_pdrop)
        else:
            self.drop_path_attn = nn.Identity()
            self.drop_path_mlp = nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, out_mask = self.attn(_ln_channels(self.ln1, x), mask)
        m = out_mask.unsqueeze(1).to(out.dtype)
        out = self.pool_skip(x) * m + self.drop_path_attn(out)
        out = out + self.drop_path_mlp(self.mlp(_ln_channels(self.ln2, out)) * m)
        return out, out_mask


class Conv1DTransformerProj(nn.Module):
    """ActionFormer projection: masked conv embedding, a stem of transformer blocks, then a branch of
    stride-2 transformer blocks; one output level per stem output + branch block.

    ``forward(x [B,C_in,T], mask [B,T] bool) -> (list of [B,C_out,T_l], list of [B,T_l] bool)`` with
    ``T_0 = T`` and ``T_{l+1} = ceil(T_l / 2)``; ``len = 1 + arch[2]``.
    """

    pos_embed: torch.Tensor  # non-persistent buffer, registered only with use_abs_pe

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        arch: Sequence[int] = (2, 2, 5),
        conv_kernel: int = 3,
        n_head: int = 4,
        n_mha_win_size: int | Sequence[int] = -1,
        path_pdrop: float = 0.1,
        attn_pdrop: float = 0.0,
        proj_pdrop: float = 0.0,
        input_pdrop: float = 0.0,
        use_abs_pe: bool = False,
        max_seq_len: int = 768,
    ):
        super().__init__()
        if len(arch) != 3:
            raise ValueError(f"arch must be (#embed convs, #stem blocks, #branch blocks), got {arch}")
        if not isinstance(in_channels, int):
            raise ValueError(f"in_channels must be an int (multi-stream inputs are not supported), got {in_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.arch = tuple(arch)
        self.max_seq_len = max_seq_len
        self.use_abs_pe = use_abs_pe
        if isinstance(n_mha_win_size, int):
            self.mha_win_size = [n_mha_win_size] * (1 + arch[2])
        else:
            if len(n_mha_win_size) != 1 + arch[2]:
                raise ValueError(f"n_mha_win_size needs {1 + arch[2]} entries, got {list(n_mha_win_size)}")
            self.mha_win_size = list(n_mha_win_size)
        self.n_mha_win_size = n_mha_win_size

        self.input_pdrop = nn.Dropout1d(p=input_pdrop) if input_pdrop > 0 else None
        if use_abs_pe:
            pe = sinusoid_position_table(max_seq_len, out_channels).T[None] / (out_channels**0.5)  # [1, C, T]
            self.register_buffer("pos_embed", pe, persistent=False)

        self.embed = nn.ModuleList(
            ConvModule(
                in_channels if i == 0 else out_channels,
                out_channels,
                kernel_size=conv_kernel,
                padding=conv_kernel // 2,
                norm=True,
                act=True,
            )
            for i in range(arch[0])
        )
        blk = dict(attn_pdrop=attn_pdrop, proj_pdrop=proj_pdrop, path_pdrop=path_pdrop)
        self.stem = nn.ModuleList(
            TransformerBlock(out_channels, n_head, stride=1, mha_win_size=self.mha_win_size[0], **blk) for _ in range(arch[1])
        )
        self.branch = nn.ModuleList(
            TransformerBlock(out_channels, n_head, stride=2, mha_win_size=self.mha_win_size[1 + i], **blk) for i in range(arch[2])
        )
        # OpenTAD zeroes every Conv1d / Linear bias of the projection
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"projection expects features [B, {self.in_channels}, T], got {tuple(x.shape)}")
        if mask.dtype != torch.bool:
            mask = mask.bool()
        if self.input_pdrop is not None:
            x = self.input_pdrop(x)
        for layer in self.embed:
            x, mask = layer(x, mask)
        if self.use_abs_pe:
            T = x.shape[-1]
            if self.training:
                if T > self.max_seq_len:
                    raise ValueError(f"sequence length {T} exceeds max_seq_len {self.max_seq_len} in training")
                pe = self.pos_embed
            elif T >= self.max_seq_len:
                pe = F.interpolate(self.pos_embed, T, mode="linear", align_corners=False)
            else:
                pe = self.pos_embed
            x = x + pe[:, :, :T].to(x.dtype) * mask.unsqueeze(1).to(x.dtype)
        for blk in self.stem:
            x, mask = blk(x, mask)
        feats, masks = [x], [mask]
        for blk in self.branch:
            x, mask = blk(x, mask)
            feats.append(x)
            masks.append(mask)
        return feats, masks


def max_div_factor(strides: Sequence[int], mha_win_size: Sequence[int], max_seq_len: int) -> int:
    """The length every padded sequence must be a multiple of: ``max_l stride_l x 2 (window_l // 2)`` (``stride_l``
    on global-attention levels), as OpenTAD's ``ActionFormer`` computes it; ``max_seq_len`` must be a multiple of each.
    Levels pair with window sizes as Python's ``zip`` does (the shorter list wins)."""
    div = 1
    for s, w in zip(strides, mha_win_size):
        need = s * (w // 2) * 2 if w > 1 else s
        if max_seq_len % need != 0:
            raise ValueError(
                f"model.projection.max_seq_len={max_seq_len} must be divisible by {need} (FPN stride {s} x local "
                f"attention window {w} // 2 x 2); choose a multiple of it"
            )
        div = max(div, need)
    return div


def pad_to_max_seq_len(x: torch.Tensor, mask: torch.Tensor, max_seq_len: int, div: int) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenTAD's ``ActionFormer.pad_data``: zero-pad features ``[B,C,T]`` and mask ``[B,T]`` (padding invalid) on the right
    to ``max_seq_len``, or, for ``T > max_seq_len``, to the next multiple of ``div`` (:func:`max_div_factor`).
    ``T == max_seq_len`` returns the inputs unchanged."""
    T = x.shape[-1]
    if T == max_seq_len:
        return x, mask
    length = max_seq_len if T < max_seq_len else (T + div - 1) // div * div
    x = F.pad(x, (0, length - T), value=0.0)
    mask = F.pad(mask.bool(), (0, length - T), value=False)
    return x, mask


class FPNIdentity(nn.Module):
    """Per-level LayerNorm (eps 1e-6) over channels (``fpn_norms.N``); masks pass through unchanged."""

    def __init__(self, in_channels: int, out_channels: int, num_levels: int = 6):
        super().__init__()
        if in_channels != out_channels:
            raise ValueError(f"FPNIdentity needs in_channels == out_channels, got {in_channels} and {out_channels}")
        self.num_levels = num_levels
        self.fpn_norms = nn.ModuleList(nn.LayerNorm(out_channels, eps=1e-6) for _ in range(num_levels))

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]):
        if len(feats) != self.num_levels or len(masks) != self.num_levels:
            raise ValueError(f"FPNIdentity built for {self.num_levels} levels, got {len(feats)} features")
        return [_ln_channels(cast(nn.LayerNorm, n), x) for n, x in zip(self.fpn_norms, feats)], list(masks)


class Scale(nn.Module):
    """Learnable scalar ``scale`` (init 1.0) multiplying the input."""

    def __init__(self, init_value: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(init_value, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class ActionFormerHead(nn.Module):
    """Anchor-free head: per level, ``num_convs`` masked conv+LN+ReLU towers for classification and
    regression, then ``cls_head`` (raw logits ``[B,K,T_l]``) and ``reg_head`` (``relu(scale_l * conv)``,
    ``[B,2,T_l]``, distances to start/end in units of the level's stride).

    ``loss_normalizer`` is a persistent float32 buffer (EMA of the number of positives). OpenTAD stores it as an
    int64 scalar before the first training step (and keeps it int64 in EMA copies); ``load_state_dict`` copies
    such a value into the float32 buffer (``Tensor.copy_`` converts dtypes), so those checkpoints load unchanged.
    """

    loss_normalizer: torch.Tensor  # persistent buffer (see above)

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int,
        num_convs: int = 2,
        cls_prior_prob: float = 0.01,
        strides: Sequence[int] = (1, 2, 4, 8, 16, 32),
        regression_range: Sequence[Sequence[float]] = ((0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)),
        loss_normalizer: float = 100,
        loss_normalizer_momentum: float = 0.9,
        center_sample: str = "radius",
        center_sample_radius: float = 1.5,
        label_smoothing: float = 0.0,
        kernel_size: int = 3,
        loss_weight: float = 1.0,
        filter_similar_gt: bool = True,
    ):
        super().__init__()
        if len(strides) != len(regression_range):
            raise ValueError(f"{len(strides)} strides but {len(regression_range)} regression ranges")
        if center_sample not in ("radius", "none", None):
            raise ValueError(f"center_sample must be 'radius' or 'none', got {center_sample!r}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.num_convs = num_convs
        self.strides = tuple(int(s) for s in strides)
        self.regression_range = tuple((float(a), float(b)) for a, b in regression_range)
        self.loss_normalizer_momentum = loss_normalizer_momentum
        self.center_sample = center_sample
        self.center_sample_radius = center_sample_radius
        self.label_smoothing = label_smoothing
        self.loss_weight = loss_weight
        self.filter_similar_gt = filter_similar_gt
        self.register_buffer("loss_normalizer", torch.tensor(float(loss_normalizer), dtype=torch.float32))

        def tower():
            return nn.ModuleList(
                ConvModule(
                    in_channels if i == 0 else feat_channels,
                    feat_channels,
                    kernel_size=kernel_size,
                    padding=kernel_size // 2,
                    norm=True,
                    act=True,
                )
                for i in range(num_convs)
            )

        self.cls_convs = tower()
        self.reg_convs = tower()
        self.cls_head = nn.Conv1d(feat_channels, num_classes, kernel_size, padding=kernel_size // 2)
        self.reg_head = nn.Conv1d(feat_channels, 2, kernel_size, padding=kernel_size // 2)
        self.scale = nn.ModuleList(Scale() for _ in self.strides)
        if cls_prior_prob > 0:
            assert self.cls_head.bias is not None  # nn.Conv1d's default bias=True
            nn.init.constant_(self.cls_head.bias, -math.log((1 - cls_prior_prob) / cls_prior_prob))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # accept OpenTAD's int64 (or any dtype) scalar normaliser; copy_ into our float32 buffer
        key = prefix + "loss_normalizer"
        if key in state_dict and state_dict[key].dtype != torch.float32:
            state_dict[key] = state_dict[key].to(torch.float32)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]):
        """-> (cls_logits list ``[B,K,T_l]`` raw, reg list ``[B,2,T_l]`` non-negative)."""
        if len(feats) != len(self.strides):
            raise ValueError(f"head built for {len(self.strides)} levels, got {len(feats)}")
        cls_out, reg_out = [], []
        for lvl, (x, mask) in enumerate(zip(feats, masks)):
            c, r = x, x
            for conv in self.cls_convs:
                c, _ = conv(c, mask)
            for conv in self.reg_convs:
                r, _ = conv(r, mask)
            cls_out.append(self.cls_head(c))
            reg_out.append(F.relu(self.scale[lvl](self.reg_head(r))))
        return cls_out, reg_out

    def points(self, lengths: Sequence[int], device=None) -> list[torch.Tensor]:
        """Per level ``[T_l, 4]`` (t, reg_min, reg_max, stride); see :func:`adatad.models.losses.generate_points`."""
        return L.generate_points(lengths, self.strides, self.regression_range, device=device)

    def losses(
        self,
        cls_logits: Sequence[torch.Tensor],
        reg: Sequence[torch.Tensor],
        masks: Sequence[torch.Tensor],
        gt_segments: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Focal + DIoU losses -> ``dict(cls_loss, reg_loss, cost)``.

        ``gt_segments``: per sample float ``[N_i, 2]`` in grid units; ``gt_labels``: int64 ``[N_i]``.
        In training mode the EMA normaliser is updated before use; in eval mode ``max(num_pos, 1)`` is used.
        """
        device = cls_logits[0].device
        points = self.points([x.shape[-1] for x in cls_logits], device=device)
        concat_points = torch.cat(points, dim=0)
        gt_segments = [torch.as_tensor(g, device=device).float().reshape(-1, 2) for g in gt_segments]
        gt_labels = [torch.as_tensor(lab, device=device).long().reshape(-1) for lab in gt_labels]
        for i, lab in enumerate(gt_labels):
            if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= self.num_classes):
                raise ValueError(f"sample {i}: gt label outside [0, {self.num_classes}): {lab.tolist()}")
        gt_cls, gt_reg = L.assign_targets(
            concat_points,
            gt_segments,
            gt_labels,
            self.num_classes,
            center_sample=self.center_sample,
            center_sample_radius=self.center_sample_radius,
            filter_similar_gt=self.filter_similar_gt,
        )  # [B,P,K], [B,P,2]
        valid = torch.cat(list(masks), dim=1)
        pos_mask = (gt_cls.sum(-1) > 0) & valid
        num_pos = int(pos_mask.sum().item())

        if self.training:
            m = self.loss_normalizer_momentum
            with torch.no_grad():
                self.loss_normalizer.copy_(m * self.loss_normalizer + (1 - m) * max(num_pos, 1))
            normalizer = self.loss_normalizer.detach().clone()
        else:
            normalizer = max(num_pos, 1)

        cls_pred = torch.cat([x.permute(0, 2, 1) for x in cls_logits], dim=1)[valid]
        target = gt_cls[valid]
        if self.label_smoothing > 0:
            target = target * (1 - self.label_smoothing) + self.label_smoothing / (self.num_classes + 1)
        cls_loss = L.sigmoid_focal_loss(cls_pred, target, reduction="sum") / normalizer

        pred_segs = L.decode_segments(concat_points, torch.cat([r.permute(0, 2, 1) for r in reg], dim=1))[pos_mask]
        if num_pos == 0:
            reg_loss = pred_segs.sum() * 0
        else:
            gt_segs = L.decode_segments(concat_points, gt_reg)[pos_mask]
            reg_loss = L.diou_loss(pred_segs, gt_segs, reduction="sum") / normalizer
        if self.loss_weight > 0:
            reg_loss = reg_loss * self.loss_weight
        else:
            reg_loss = reg_loss * (cls_loss.detach() / max(reg_loss.item(), 0.01))
        return {"cls_loss": cls_loss, "reg_loss": reg_loss, "cost": cls_loss + reg_loss}
