"""VideoMAE vision transformer with temporal-informative adapters (TIA), as used by AdaTAD.

The backbone turns a window of normalised frames ``[B, 3, T, H, W]`` into a temporal feature map
``[B, C, out_len]``:

1. the window is cut into ``T / num_frames`` chunks of ``num_frames`` frames, stacked batch-major
   (row ``b * chunks + chunk``); the ViT attends only inside one chunk;
2. each chunk is embedded into tubelet tokens (Conv3d ``tubelet x patch x patch``), ordered t, y, x,
   and the fixed sinusoidal position table is added (its spatial grid bicubically resized, no
   antialias, ``align_corners=False``, when the input is not ``img_size`` pixels);
3. pre-norm transformer blocks; after the selected blocks a TIA adapter mixes information along the
   tubelet axis of the *whole window* (depthwise temporal conv across chunk borders);
4. no final norm; mean over space, chunks concatenated in time (``T / tubelet`` steps), then linear
   interpolation (``align_corners=False``) to ``out_len``.

Module names equal the inner names of OpenTAD's ``VisionTransformerAdapter``, so OpenTAD / mmaction2
state dicts map with a prefix change only (see :mod:`adatad.models.weights`):

=====================================================  ============================================
OpenTAD detector key (after DDP's ``module.``)          adatad ``VideoMAEBackbone`` key
=====================================================  ============================================
``backbone.model.backbone.pos_embed``                   ``pos_embed`` (persistent buffer)
``backbone.model.backbone.patch_embed.projection.*``    ``patch_embed.projection.*``
``backbone.model.backbone.blocks.N.<rest>``             ``blocks.N.<rest>`` (norm1, norm2,
                                                        attn.{q_bias,v_bias,qkv.weight,proj.*},
                                                        mlp.layers.0.0.*, mlp.layers.1.*,
                                                        adapter.{down_proj,up_proj,dwconv,conv,gamma})
``backbone.model.backbone.fc_norm.*``                   ``fc_norm.*`` (kept for key compatibility,
                                                        never used in ``forward``)
=====================================================  ============================================
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as torch_checkpoint
from torch import Tensor, nn

from adatad.models.layers import DropPath, count_parameters, sinusoid_position_table

__all__ = [
    "VIT_SIZES",
    "VideoMAEBackbone",
    "TIAdapter",
    "ViTBlock",
    "PatchEmbed3d",
    "resize_position_table",
    "init_vit_weights",
    "check_frames",
    "chunk_frames",
    "embed_chunks",
    "pool_tokens",
]

logger = logging.getLogger(__name__)

#: Architecture presets (``VideoMAEBackbone(**VIT_SIZES["s"], ...)``).
VIT_SIZES: dict[str, dict] = {
    "s": dict(embed_dims=384, depth=12, num_heads=6),
    "b": dict(embed_dims=768, depth=12, num_heads=12),
    "l": dict(embed_dims=1024, depth=24, num_heads=16),
    "h": dict(embed_dims=1280, depth=32, num_heads=16),
    "v2g": dict(patch_size=14, embed_dims=1408, depth=40, num_heads=16, mlp_ratio=48 / 11),
}

MODES = ("adapter", "frozen", "full")


def resize_position_table(table: Tensor, grid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Bicubically resize the spatial grid of a position table.

    Args:
        table: ``[1, t * gh * gw, C]`` tokens ordered t, y, x.
        grid: ``(gh, gw)`` of ``table``.
        size: target ``(h, w)``.

    Returns:
        ``[1, t * h * w, C]`` (same dtype), ``F.interpolate(mode="bicubic", align_corners=False)``, no antialias.
    """
    if tuple(size) == tuple(grid):
        return table
    c = table.shape[-1]
    t = table.reshape(-1, grid[0], grid[1], c).permute(0, 3, 1, 2)  # [t, C, gh, gw]
    t = F.interpolate(t, size=tuple(size), mode="bicubic", align_corners=False)
    return t.permute(0, 2, 3, 1).reshape(1, -1, c)


def init_vit_weights(module: nn.Module) -> None:
    """VideoMAE's init for a ViT: truncated normal (std 0.02) Linear weights, zero biases, unit LayerNorms.

    Sub-modules whose name contains ``adapter`` (``blocks.N.adapter``, the ladder's ``ladders.adapters``) are
    skipped: adapters initialise themselves.
    """
    for name, m in module.named_modules():
        if ".adapter" in f".{name}":
            continue
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def check_frames(x: Tensor, in_channels: int, num_frames: int, patch_size: int, owner: str) -> None:
    """Refuse what a chunked ViT cannot take: not ``[B, C, T, H, W]`` float frames, ``T`` not a multiple of
    ``num_frames``, frames smaller than a patch. ``owner`` names the module in the message."""
    if x.dim() != 5 or x.shape[1] != in_channels:
        raise ValueError(f"{owner} expects [B, {in_channels}, T, H, W] frames, got shape {tuple(x.shape)}")
    t, h, w = x.shape[2:]
    if t % num_frames:
        raise ValueError(f"input has {t} frames, not a multiple of the chunk length num_frames={num_frames}")
    if h < patch_size or w < patch_size:
        raise ValueError(f"input frames {h}x{w} are smaller than one {patch_size}px patch")
    if not torch.is_floating_point(x):
        raise TypeError(f"{owner} expects normalised float frames, got {x.dtype}")


def chunk_frames(x: Tensor, num_frames: int) -> Tensor:
    """``[B, C, T, H, W]`` -> ``[B * chunks, C, num_frames, H, W]``, rows batch-major (``b * chunks + chunk``)."""
    b, c, t, h, w = x.shape
    chunks = t // num_frames
    x = x.reshape(b, c, chunks, num_frames, h, w).transpose(1, 2)
    return x.reshape(b * chunks, c, num_frames, h, w)


def embed_chunks(x: Tensor, patch_embed: nn.Module, pos_embed: Tensor, grid_size: tuple[int, int], patch_size: int) -> Tensor:
    """Chunks ``[N, C, t_frames, H, W]`` -> tokens ``[N, t * h * w, D]`` plus the position table, whose spatial
    grid ``grid_size`` is resized to the input's ``(H // patch_size, W // patch_size)``."""
    h, w = x.shape[-2] // patch_size, x.shape[-1] // patch_size
    tokens = patch_embed(x)
    pos = resize_position_table(pos_embed, grid_size, (h, w))
    return tokens + pos  # float32 table: under autocast the residual stream stays float32, as in OpenTAD


def pool_tokens(tokens: Tensor, batch: int, t: int, out_len: int | None) -> Tensor:
    """Tokens ``[B * chunks, t * h * w, C]`` (ordered t, y, x) -> ``[B, C, chunks * t]`` by a mean over space,
    chunks concatenated in time, then linear interpolation (``align_corners=False``) to ``out_len`` (``None``:
    none). Returned as float32 whatever the compute dtype (OpenTAD casts the backbone features the same way)."""
    n, length, c = tokens.shape
    chunks = n // batch
    feats = tokens.reshape(n, t, length // t, c).mean(2)  # [B*chunks, t, C]
    feats = feats.reshape(batch, chunks * t, c).transpose(1, 2)  # [B, C, chunks*t]
    if out_len is not None and feats.shape[-1] != out_len:
        feats = F.interpolate(feats, size=out_len, mode="linear", align_corners=False)
    return feats.float()


class PatchEmbed3d(nn.Module):
    """Tubelet embedding: ``[N, 3, t, H, W]`` -> tokens ``[N, t' * h * w, C]`` ordered t, y, x."""

    def __init__(self, in_channels: int, embed_dims: int, tubelet_size: int, patch_size: int) -> None:
        super().__init__()
        k = (tubelet_size, patch_size, patch_size)
        self.projection = nn.Conv3d(in_channels, embed_dims, kernel_size=k, stride=k)

    def forward(self, x: Tensor) -> Tensor:
        return self.projection(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with learnable q/v biases and a zero k bias (VideoMAE)."""

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f"embed_dims={embed_dims} is not divisible by num_heads={num_heads}")
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(embed_dims))
            self.v_bias = nn.Parameter(torch.zeros(embed_dims))
        else:
            self.q_bias = None
            self.v_bias = None
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        """``x [N, L, C]`` -> ``[N, L, C]``."""
        n, length, c = x.shape
        bias = None
        if self.q_bias is not None and self.v_bias is not None:  # both set (qkv_bias) or both None
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias)
        q, k, v = qkv.reshape(n, length, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # default scale head_dim ** -0.5
        return self.proj(out.transpose(1, 2).reshape(n, length, c))


class Mlp(nn.Module):
    """Feed-forward ``Linear -> GELU(exact) -> Linear``; names follow mmcv's FFN (``layers.0.0``, ``layers.1``)."""

    def __init__(self, embed_dims: int, hidden_dims: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, hidden_dims), nn.GELU()),
            nn.Linear(hidden_dims, embed_dims),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class TIAdapter(nn.Module):
    """Temporal-informative adapter (AdaTAD), placed in series after a ViT block.

    ``h = gelu(down_proj(x)); h = h + conv(dwconv(h)); out = gamma * up_proj(h) + x``: ``gamma`` scales the
    up-projection's bias too. ``dwconv`` (depthwise, kernel ``kernel_size``) and ``conv`` (1x1) run along the
    tubelet axis of the whole window, i.e. across chunk borders, with zero padding only at the window ends.
    ``up_proj`` is zero-initialised, so a fresh adapter is the identity.
    """

    def __init__(self, embed_dims: int, mlp_ratio: float = 0.25, kernel_size: int = 3) -> None:
        super().__init__()
        hidden = int(embed_dims * mlp_ratio)
        self.down_proj = nn.Linear(embed_dims, hidden)
        self.act = nn.GELU()
        self.dwconv = nn.Conv1d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden)
        self.conv = nn.Conv1d(hidden, hidden, 1)
        self.up_proj = nn.Linear(hidden, embed_dims)
        self.gamma = nn.Parameter(torch.ones(1))
        assert self.dwconv.bias is not None and self.conv.bias is not None  # nn.Conv1d's default bias=True
        nn.init.normal_(self.dwconv.weight, std=math.sqrt(2.0 / kernel_size))
        nn.init.zeros_(self.dwconv.bias)
        nn.init.normal_(self.conv.weight, std=math.sqrt(2.0 / hidden))
        nn.init.zeros_(self.conv.bias)
        nn.init.trunc_normal_(self.down_proj.weight, std=0.02)
        nn.init.zeros_(self.down_proj.bias)
        nn.init.zeros_(self.up_proj.weight)
        nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: Tensor, batch: int, grid: tuple[int, int, int]) -> Tensor:
        """Args:
        x: ``[batch * chunks, t * h * w, C]``, rows batch-major, tokens ordered t, y, x.
        batch: ``B``.
        grid: ``(T_total, h, w)`` where ``T_total = chunks * t`` is the window's tubelet count.

        Returns:
            ``[batch * chunks, t * h * w, C]``: ``branch(x) + x``.
        """
        return self.branch(x, batch, grid) + x

    def branch(self, x: Tensor, batch: int, grid: tuple[int, int, int]) -> Tensor:
        """The adapter without its residual, ``gamma * up_proj(h)`` (same arguments as :meth:`forward`); the side
        ladder (:mod:`adatad.models.ladder`) adds it to another feature map."""
        t_total, h, w = grid
        n, length, _ = x.shape
        y = self.act(self.down_proj(x))
        c = y.shape[-1]
        # [B*chunks, t*h*w, c] -> [B, T_total, h, w, c] -> [B*h*w, c, T_total]
        z = y.reshape(batch, t_total, h, w, c).permute(0, 2, 3, 4, 1).reshape(batch * h * w, c, t_total)
        z = self.conv(self.dwconv(z))
        z = z.reshape(batch, h, w, c, t_total).permute(0, 4, 1, 2, 3).reshape(n, length, c)
        return self.up_proj(y + z) * self.gamma


class ViTBlock(nn.Module):
    """Pre-norm block: ``x += dp(attn(norm1(x))); x += dp(mlp(norm2(x))); x = adapter(x)`` (adapter optional)."""

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
        use_adapter: bool = False,
        adapter_mlp_ratio: float = 0.25,
        adapter_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = Attention(embed_dims, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio))
        self.adapter = TIAdapter(embed_dims, adapter_mlp_ratio, adapter_kernel) if use_adapter else None

    def forward(self, x: Tensor, batch: int, grid: tuple[int, int, int]) -> Tensor:
        """``x [B*chunks, t*h*w, C]`` -> same shape; see :meth:`TIAdapter.forward` for ``batch``/``grid``."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        if self.adapter is not None:
            x = self.adapter(x, batch, grid)
        return x


class VideoMAEBackbone(nn.Module):
    """VideoMAE ViT with optional TIA adapters, chunked over a long window; returns ``[B, C, out_len]``.

    Args:
        img_size: pretraining image size; sizes the fixed position table (``pos_embed``).
        patch_size, embed_dims, depth, num_heads, mlp_ratio, qkv_bias: ViT architecture
            (``qkv_bias`` = learnable q/v biases, k bias fixed at zero).
        num_frames: frames per chunk (the ViT's clip length); also sizes ``pos_embed`` in time.
        tubelet_size: frames per token.
        drop_path_rate: stochastic depth, linearly increasing from 0 at block 0 to this at the last block.
        norm_eps: LayerNorm epsilon.
        total_frames: nominal window length in frames (multiple of ``num_frames``). The adapters use the
            actual input length, so other multiples of ``num_frames`` also run (equal results when equal).
        adapter_index: indices of blocks followed by a TIA adapter; ``None``/``[]``: none.
        adapter_mlp_ratio, adapter_kernel: adapter hidden width ratio and temporal kernel size.
        mode: ``"adapter"``: only adapter parameters train; the patch embedding and each block's children
            other than ``adapter`` and ``drop_path`` are kept in eval mode with ``requires_grad=False``
            (re-applied on every ``train()`` and ``forward``), gradients still flow through them.
            Like OpenTAD, stochastic depth (``drop_path``) stays active in training unless
            ``freeze_drop_path=True``. ``"frozen"``: no adapters, whole backbone in eval mode, run under
            ``torch.no_grad()``. ``"full"``: everything trains.
        with_cp: activation checkpointing (``torch.utils.checkpoint``, non-reentrant, RNG preserved);
            ``True``/``False`` for all blocks or a list of block indices.
        out_len: temporal length of the output (linear interpolation); ``None``: ``T / tubelet_size``.
        freeze_drop_path: in adapter mode, also put ``drop_path`` in eval mode (not OpenTAD's behaviour).
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
        drop_path_rate: float = 0.1,
        norm_eps: float = 1e-6,
        total_frames: int = 768,
        adapter_index: Sequence[int] | None = None,
        adapter_mlp_ratio: float = 0.25,
        adapter_kernel: int = 3,
        mode: str = "adapter",
        with_cp: bool | Sequence[int] = True,
        out_len: int | None = 768,
        freeze_drop_path: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"backbone mode must be one of {MODES}, got {mode!r}")
        if num_frames % tubelet_size:
            raise ValueError(f"num_frames={num_frames} must be a multiple of tubelet_size={tubelet_size}")
        if total_frames % num_frames:
            raise ValueError(f"total_frames={total_frames} must be a multiple of num_frames={num_frames} (the ViT chunk length)")
        adapter_index = sorted(set(int(i) for i in (adapter_index or [])))
        bad = [i for i in adapter_index if not 0 <= i < depth]
        if bad:
            raise ValueError(f"adapter_index {bad} out of range for depth={depth}")
        if mode == "adapter" and not adapter_index:
            raise ValueError("mode='adapter' needs a non-empty adapter_index (nothing would train); use 'frozen'")
        if mode == "frozen" and adapter_index:
            raise ValueError("mode='frozen' runs without adapters; set adapter_index=None or use mode='adapter'")

        self.img_size = img_size
        self.patch_size = patch_size
        self.embed_dims = embed_dims
        self.depth = depth
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.total_frames = total_frames
        self.adapter_index = adapter_index
        self.mode = mode
        self.out_len = out_len
        self.freeze_drop_path = freeze_drop_path
        if isinstance(with_cp, bool):
            self.cp_blocks = set(range(depth)) if with_cp else set()
        else:
            self.cp_blocks = set(int(i) for i in with_cp)

        self.patch_embed = PatchEmbed3d(in_channels, embed_dims, tubelet_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        n_pos = (num_frames // tubelet_size) * self.grid_size[0] * self.grid_size[1]
        self.register_buffer("pos_embed", sinusoid_position_table(n_pos, embed_dims)[None], persistent=True)

        rates = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist() if depth > 0 else []
        self.blocks = nn.ModuleList(
            ViTBlock(
                embed_dims,
                num_heads,
                mlp_ratio,
                qkv_bias,
                drop_path=rates[i],
                norm_eps=norm_eps,
                use_adapter=i in adapter_index,
                adapter_mlp_ratio=adapter_mlp_ratio,
                adapter_kernel=adapter_kernel,
            )
            for i in range(depth)
        )
        # Present in OpenTAD/mmaction2 checkpoints; unused by forward (OpenTAD returns the feature map unnormed).
        self.fc_norm = nn.LayerNorm(embed_dims, eps=norm_eps)

        self._init_vit_weights()
        self._apply_mode()
        counts = self.count_parameters()
        logger.info(
            "VideoMAEBackbone(%s, depth=%d, width=%d, adapters=%s): trainable %d, frozen %d parameters",
            mode,
            depth,
            embed_dims,
            adapter_index,
            counts["trainable"],
            counts["frozen"],
        )

    @classmethod
    def from_size(cls, size: str, **kwargs) -> VideoMAEBackbone:
        """Build a preset from :data:`VIT_SIZES` (``"s"``, ``"b"``, ``"l"``, ``"h"``, ``"v2g"``)."""
        if size not in VIT_SIZES:
            raise ValueError(f"unknown ViT size {size!r}; choose one of {sorted(VIT_SIZES)}")
        return cls(**{**VIT_SIZES[size], **kwargs})

    # ----------------------------------------------------------------------------------------- setup
    def _init_vit_weights(self) -> None:
        init_vit_weights(self)  # adapters initialise themselves

    @staticmethod
    def is_adapter_param(name: str) -> bool:
        """True for parameter names inside an adapter (``blocks.N.adapter.*``)."""
        return ".adapter." in f".{name}"

    def _frozen_children(self) -> Iterable[nn.Module]:
        yield self.patch_embed
        for block in self.blocks:
            for name, child in block.named_children():
                if name == "adapter" or (name == "drop_path" and not self.freeze_drop_path):
                    continue
                yield child

    def _apply_mode(self) -> None:
        """Set ``requires_grad`` for the mode, and the train/eval state of frozen parts."""
        for name, p in self.named_parameters():
            if self.mode == "full":
                p.requires_grad_(True)
            elif self.mode == "frozen":
                p.requires_grad_(False)
            else:
                p.requires_grad_(self.is_adapter_param(name))
        self._set_frozen_eval()

    def _set_frozen_eval(self) -> None:
        if self.mode == "frozen":
            for m in self.modules():
                m.training = False
        elif self.mode == "adapter":
            for child in self._frozen_children():
                child.eval()

    def train(self, mode: bool = True) -> VideoMAEBackbone:
        super().train(mode)
        self._set_frozen_eval()
        return self

    def count_parameters(self) -> dict[str, int]:
        return count_parameters(self)

    # --------------------------------------------------------------------------------------- forward
    def _check_input(self, x: Tensor) -> None:
        check_frames(x, self.patch_embed.projection.in_channels, self.num_frames, self.patch_size, "VideoMAEBackbone")

    def _run_blocks(self, x: Tensor) -> tuple[Tensor, tuple[int, int, int, int]]:
        """``x [B, 3, T, H, W]`` -> tokens ``[B*chunks, t*h*w, C]`` and ``(B, chunks, t, h*w)``."""
        self._check_input(x)
        self._set_frozen_eval()
        b, _, t_in, h_in, w_in = x.shape
        chunks = t_in // self.num_frames
        h, w = h_in // self.patch_size, w_in // self.patch_size
        t = self.num_frames // self.tubelet_size

        x = embed_chunks(chunk_frames(x, self.num_frames), self.patch_embed, self.pos_embed, self.grid_size, self.patch_size)
        grid = (chunks * t, h, w)
        grad_on = torch.is_grad_enabled()
        for i, block in enumerate(self.blocks):
            if i in self.cp_blocks and grad_on and (x.requires_grad or any(p.requires_grad for p in block.parameters())):
                x = torch_checkpoint.checkpoint(block, x, b, grid, use_reentrant=False)
            else:
                x = block(x, b, grid)
        return x, (b, chunks, t, h * w)

    def forward_tokens(self, x: Tensor) -> Tensor:
        """Last hidden states ``[B * chunks, t*h*w, C]`` (no final norm), rows batch-major, tokens t, y, x."""
        if self.mode == "frozen":
            with torch.no_grad():
                return self._run_blocks(x)[0]
        return self._run_blocks(x)[0]

    def forward(self, x: Tensor) -> Tensor:
        """``x`` float ``[B, 3, T, H, W]`` (normalised) -> features ``[B, C, out_len]``.

        ``T`` must be a multiple of ``num_frames``; without ``out_len`` the output has ``T / tubelet_size`` steps.
        The output is float32 whatever the compute dtype (OpenTAD casts the backbone features the same way).
        """
        if self.mode == "frozen":
            with torch.no_grad():
                return self._forward(x)
        return self._forward(x)

    def _forward(self, x: Tensor) -> Tensor:
        tokens, (b, _, t, _) = self._run_blocks(x)
        return pool_tokens(tokens, b, t, self.out_len)  # float32, as OpenTAD hands the detector
