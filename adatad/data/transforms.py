"""Clip transforms on uint8 video tensors (torchvision.transforms.v2 functional ops).

Input frames: uint8 ``[T, 3, H, W]`` (or numpy ``[T, H, W, 3]`` straight from the decoder); output uint8
``[3, T, h, w]``. Normalisation (mean/std) happens in the model, on the device. Every random parameter is drawn
once per clip (all frames of a clip get the same crop, flip, policy and colour change), from a
``torch.Generator`` passed in (or torch's global generator).

Train policy (OpenTAD AdaTAD THUMOS config, mmaction2 semantics):
  1. resize short side to 182 (mmcv ``rescale_size``: ``int(x * 182 / short + 0.5)``; bilinear, no antialias
     as cv2);
  2. RandomResizedCrop with mmaction defaults: 10 attempts of area ~ U(0.08, 1) * H * W and aspect ratio
     log-uniform in (3/4, 4/3), sides rounded, offsets uniform; fallback: centred square of the short side;
  3. resize to 160 x 160 (aspect ratio not kept);
  4. horizontal flip with probability 0.5;
  5. ImgAug "default" = RandAugment as mmaction builds it with imgaug: ``SomeOf(n=2)`` of 15 ops at magnitude
     9/10 (level 0.9), the two chosen ops applied in list order. Mapping of imgaug ops to torchvision:

     ===================  ==============================  ====================================================
     imgaug op             parameter                       here
     ===================  ==============================  ====================================================
     ShearX / ShearY       15.471 deg x sign                ``affine(shear=...)`` bilinear, fill 0
     TranslateX / Y        0.18 of width/height x sign      ``affine(translate=...)`` bilinear, fill 0
     Rotate                27 deg x sign                    ``affine(angle=...)`` bilinear, fill 0
     Posterize             3 bits                           ``posterize(bits=3)``
     Solarize              threshold 230.4                  ``solarize(threshold=230.4)``
     pillike.EnhanceColor  factor 1.72                      ``adjust_saturation(1.72)``
     pillike.EnhanceContrast  1.72                          ``adjust_contrast(1.72)``
     pillike.EnhanceBrightness 1.72                         ``adjust_brightness(1.72)``
     pillike.EnhanceSharpness  1.72                         ``adjust_sharpness(1.72)``
     pillike.Autocontrast  cutoff 0                         ``autocontrast``
     pillike.Equalize                                       ``equalize``
     Invert                p = 1                            ``invert``
     Cutout                1 square, 0.18 of the side       square of side ``round(0.18 * min(H, W))``,
                                                            uniform centre, fill 128 (imgaug's cval)
     ===================  ==============================  ====================================================

     As in mmaction, each signed op's sign is drawn once when the policy is built (``random.choice`` in
     ``default_transforms``) and then fixed for the run; ``per_sample_sign=True`` draws it per clip instead.
  6. ColorJitter with mmaction defaults (brightness 0.5, contrast 0.5, saturation 0.5, hue 0.1): factors
     ``b, c, s ~ U(0.5, 1.5)``, ``h ~ U(-0.1, 0.1)``; the four ops run in one fixed random order drawn when the
     transform is built (as mmaction's ``fn_idx``), in float without intermediate rounding; contrast blends with
     each frame's own grey mean (weights 0.2989/0.587/0.114); hue rotates by ``int(h * 255)`` OpenCV hue units
     (1 unit = 2 degrees) on the frame truncated to uint8, as mmaction's cv2 code does; the result is clipped
     and truncated to uint8.

Test policy: resize short side to 160, centre crop 160 (offsets ``(W - 160) // 2``, ``(H - 160) // 2``).

``crop="center"`` replaces steps 2-3 of the train policy by that centre crop (mmaction ``CenterCrop``); with
``flip_ratio=0``, ``randaug=False`` and ``color_jitter=False`` the train transform is then the test transform, which
is OpenTAD's frozen-backbone recipe (``Resize(-1, 160)`` + ``CenterCrop(160)`` only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

__all__ = [
    "RANDAUG_OPS",
    "CROP_MODES",
    "TrainTransform",
    "EvalTransform",
    "GPUBatchAugment",
    "ClipParams",
    "to_tchw",
    "rescale_short_side",
    "sample_resized_crop",
]

LEVEL = 0.9  # RandAugment magnitude 9 / 10
RANDAUG_OPS = (
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Posterize",
    "Solarize",
    "EnhanceColor",
    "EnhanceContrast",
    "EnhanceBrightness",
    "EnhanceSharpness",
    "Autocontrast",
    "Equalize",
    "Invert",
    "Cutout",
)
SIGNED_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
CROP_MODES = ("random_resized", "center")
_BILINEAR = InterpolationMode.BILINEAR


def to_tchw(frames) -> torch.Tensor:
    """uint8 numpy ``[T, H, W, 3]`` or tensor ``[T, 3, H, W]`` -> uint8 tensor ``[T, 3, H, W]``."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames [T, H, W, 3], got {frames.shape}")
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected a uint8 tensor [T, 3, H, W], got {getattr(frames, 'shape', type(frames))}")
    return frames


def rescale_short_side(h: int, w: int, short: int) -> tuple[int, int]:
    """Output ``(h, w)`` of mmcv's keep-ratio resize with scale ``(-1, short)``."""
    s = short / min(h, w)
    return int(h * s + 0.5), int(w * s + 0.5)


def _rand(g: torch.Generator | None, n: int = 1) -> list[float]:
    return torch.rand(n, generator=g, dtype=torch.float64).tolist()


def _randint(g: torch.Generator | None, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]`` inclusive."""
    return int(torch.randint(low, high + 1, (1,), generator=g).item())


def sample_resized_crop(
    h: int,
    w: int,
    g: torch.Generator | None = None,
    area_range: tuple[float, float] = (0.08, 1.0),
    aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3),
    max_attempts: int = 10,
) -> tuple[int, int, int, int]:
    """mmaction's RandomResizedCrop box ``(top, left, height, width)`` for an ``h x w`` image."""
    lr = _rand(g, max_attempts)
    ar = _rand(g, max_attempts)
    lo, hi = math.log(aspect_ratio_range[0]), math.log(aspect_ratio_range[1])
    for i in range(max_attempts):
        ratio = math.exp(lo + (hi - lo) * lr[i])
        area = (area_range[0] + (area_range[1] - area_range[0]) * ar[i]) * h * w
        cw = int(np.round(math.sqrt(area * ratio)))
        ch = int(np.round(math.sqrt(area / ratio)))
        if ch <= h and cw <= w:
            x = _randint(g, 0, w - cw)
            y = _randint(g, 0, h - ch)
            return y, x, ch, cw
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side, side


@dataclass
class ClipParams:
    """Random parameters of one clip's train augmentation (shared by all its frames)."""

    crop: tuple[int, int, int, int]  # top, left, height, width in the short-side-resized frame
    flip: bool
    ops: list[str]  # the two RandAugment ops, in list order
    signs: dict[str, float] = field(default_factory=dict)
    cutout_center: tuple[float, float] = (0.5, 0.5)  # (y, x) as fractions of the frame
    jitter: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 0.0)  # brightness, contrast, saturation, hue
    jitter_order: tuple[int, ...] = (0, 1, 2, 3)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Float ``[..., 3, H, W]`` -> ``[..., H, W]`` luma with the weights mmaction uses."""
    return 0.2989 * x[..., 0, :, :] + 0.587 * x[..., 1, :, :] + 0.114 * x[..., 2, :, :]


def shift_hue(y: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate the HSV hue of float RGB ``[..., 3, H, W]`` (values 0..255) by ``shift`` turns; V and S kept."""
    maxc, _ = y.max(dim=-3, keepdim=True)
    minc, _ = y.min(dim=-3, keepdim=True)
    c = maxc - minc
    safe = torch.where(c > 0, c, torch.ones_like(c))
    r, g, b = y.split(1, dim=-3)
    h = torch.where(maxc == r, torch.remainder((g - b) / safe, 6.0), torch.where(maxc == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    h = torch.remainder(h + 6.0 * shift, 6.0)
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(h + n, 6.0)
        out.append(maxc - c * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.cat(out, dim=-3)


def color_jitter(x: torch.Tensor, b: float, c: float, s: float, h: float, order=(0, 1, 2, 3)) -> torch.Tensor:
    """mmaction ColorJitter on uint8 ``[T, 3, H, W]`` with given factors (see module doc). Returns uint8."""
    y = x.float()
    w = torch.tensor([0.2989, 0.587, 0.114], dtype=y.dtype, device=y.device)
    for fn in order:
        if fn == 0 and b != 1:
            y.mul_(b)
        elif fn == 1 and c != 1:
            mean = (y.mean(dim=(-2, -1)) * w).sum(-1)  # per-frame grey mean [T]
            y.mul_(c).add_(((1 - c) * mean)[..., None, None, None])
        elif fn == 2 and s != 1:
            grey = _grey(y).unsqueeze(-3)
            y.mul_(s).add_(grey.mul_(1 - s))
        elif fn == 3 and h != 0:
            # mmaction: clip + truncate to uint8, cv2 HSV (hue unit = 2 degrees), offset int(h * 255) units
            y = shift_hue(y.clamp_(0, 255).floor_(), int(h * 255) / 180.0)
    return y.clamp_(0, 255).to(torch.uint8)


def _cutout(x: torch.Tensor, center: tuple[float, float], size: float = 0.2 * LEVEL, fill: int = 128) -> torch.Tensor:
    H, W = x.shape[-2:]
    side = max(1, round(size * min(H, W)))
    cy, cx = center[0] * H, center[1] * W
    y0, x0 = max(0, int(round(cy - side / 2))), max(0, int(round(cx - side / 2)))
    y1, x1 = min(H, y0 + side), min(W, x0 + side)
    x = x.clone()
    x[..., y0:y1, x0:x1] = fill
    return x


def apply_randaug_op(x: torch.Tensor, op: str, sign: float = 1.0, cutout_center=(0.5, 0.5)) -> torch.Tensor:
    """One op of the ImgAug "default" policy on uint8 ``[T, 3, H, W]`` (same for every frame)."""
    H, W = x.shape[-2:]
    if op == "ShearX":
        return F.affine(x, angle=0.0, translate=[0, 0], scale=1.0, shear=[17.19 * LEVEL * sign, 0.0],
                        interpolation=_BILINEAR, fill=[0.0])  # fmt: skip
    if op == "ShearY":
        return F.affine(x, angle=0.0, translate=[0, 0], scale=1.0, shear=[0.0, 17.19 * LEVEL * sign],
                        interpolation=_BILINEAR, fill=[0.0])  # fmt: skip
    if op == "TranslateX":
        return F.affine(x, angle=0.0, translate=[0.2 * LEVEL * sign * W, 0.0], scale=1.0, shear=[0.0, 0.0],
                        interpolation=_BILINEAR, fill=[0.0])  # fmt: skip
    if op == "TranslateY":
        return F.affine(x, angle=0.0, translate=[0.0, 0.2 * LEVEL * sign * H], scale=1.0, shear=[0.0, 0.0],
                        interpolation=_BILINEAR, fill=[0.0])  # fmt: skip
    if op == "Rotate":
        return F.rotate(x, angle=30 * LEVEL * sign, interpolation=_BILINEAR, fill=[0.0])
    if op == "Posterize":
        return F.posterize(x, bits=max(1, int(4 * LEVEL)))
    if op == "Solarize":
        return F.solarize(x, threshold=256 * LEVEL)
    if op == "EnhanceColor":
        return F.adjust_saturation(x, 1.8 * LEVEL + 0.1)
    if op == "EnhanceContrast":
        return F.adjust_contrast(x, 1.8 * LEVEL + 0.1)
    if op == "EnhanceBrightness":
        return F.adjust_brightness(x, 1.8 * LEVEL + 0.1)
    if op == "EnhanceSharpness":
        return F.adjust_sharpness(x, 1.8 * LEVEL + 0.1)
    if op == "Autocontrast":
        return F.autocontrast(x)
    if op == "Equalize":
        return F.equalize(x)
    if op == "Invert":
        return F.invert(x)
    if op == "Cutout":
        return _cutout(x, cutout_center)
    raise ValueError(f"unknown RandAugment op {op!r}; known: {RANDAUG_OPS}")


class TrainTransform:
    """Training clip augmentation (see module doc). ``__call__(frames, generator=None) -> uint8 [3, T, 160, 160]``.

    Args:
        short_side: first resize (182).
        size: output side (160).
        crop: ``"random_resized"`` (RandomResizedCrop, then resize to ``size``) or ``"center"`` (centre crop ``size``).
        flip_ratio: horizontal flip probability.
        randaug: apply the ImgAug "default" policy.
        color_jitter: apply mmaction's ColorJitter.
        per_sample_sign: draw the signed ops' direction per clip instead of once at construction.
        seed: seed for what is drawn at construction (signs, jitter order); None uses torch's global generator.
    """

    def __init__(
        self,
        short_side: int = 182,
        size: int = 160,
        flip_ratio: float = 0.5,
        randaug: bool = True,
        color_jitter: bool = True,
        area_range: tuple[float, float] = (0.08, 1.0),
        aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3),
        per_sample_sign: bool = False,
        seed: int | None = None,
        crop: str = "random_resized",
    ):
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")
        if crop == "center" and short_side < size:
            raise ValueError(f"a centre crop of {size} needs a short side >= {size} after the resize, got {short_side}")
        self.short_side = short_side
        self.size = size
        self.crop = crop
        self.flip_ratio = flip_ratio
        self.randaug = randaug
        self.color_jitter = color_jitter
        self.area_range = area_range
        self.aspect_ratio_range = aspect_ratio_range
        self.per_sample_sign = per_sample_sign
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        self.signs = {op: (1.0 if u < 0.5 else -1.0) for op, u in zip(SIGNED_OPS, _rand(g, len(SIGNED_OPS)))}
        self.jitter_order = tuple(torch.randperm(4, generator=g).tolist())

    def sample_params(self, h: int, w: int, g: torch.Generator | None = None) -> ClipParams:
        """Draw one clip's parameters for an input frame of ``h x w`` pixels."""
        rh, rw = rescale_short_side(h, w, self.short_side)
        if self.crop == "center":
            crop = ((rh - self.size) // 2, (rw - self.size) // 2, self.size, self.size)
        else:
            crop = sample_resized_crop(rh, rw, g, self.area_range, self.aspect_ratio_range)
        flip = _rand(g)[0] < self.flip_ratio
        ops: list[str] = []
        signs = dict(self.signs)
        center = (0.5, 0.5)
        if self.randaug:
            chosen = sorted(torch.randperm(len(RANDAUG_OPS), generator=g)[:2].tolist())
            ops = [RANDAUG_OPS[i] for i in chosen]
            if self.per_sample_sign:
                signs = {op: (1.0 if u < 0.5 else -1.0) for op, u in zip(SIGNED_OPS, _rand(g, len(SIGNED_OPS)))}
            c_y, c_x = _rand(g, 2)
            center = (c_y, c_x)
        jitter = (1.0, 1.0, 1.0, 0.0)
        if self.color_jitter:
            u = _rand(g, 4)
            jitter = (0.5 + u[0], 0.5 + u[1], 0.5 + u[2], -0.1 + 0.2 * u[3])
        return ClipParams(crop, flip, ops, signs, center, jitter, self.jitter_order)

    def apply(self, x: torch.Tensor, p: ClipParams, chunk: int = 16) -> torch.Tensor:
        """Apply given parameters to uint8 ``[T, 3, H, W]`` on any device; returns uint8 ``[T, 3, size, size]``.

        Every op works frame by frame with the clip's parameters, so the clip is processed in chunks of
        ``chunk`` frames (cache-friendly on CPU; the result does not depend on ``chunk``).
        """
        out = torch.empty((x.shape[0], 3, self.size, self.size), dtype=torch.uint8, device=x.device)
        for i in range(0, x.shape[0], chunk):
            out[i : i + chunk] = self._apply_chunk(x[i : i + chunk], p)
        return out

    def _apply_chunk(self, x: torch.Tensor, p: ClipParams) -> torch.Tensor:
        h, w = x.shape[-2:]
        rh, rw = rescale_short_side(h, w, self.short_side)
        x = F.resize(x, [rh, rw], interpolation=_BILINEAR, antialias=False)
        top, left, ch, cw = p.crop
        if self.crop == "center":
            x = F.crop(x, top, left, ch, cw)
        else:
            x = F.resized_crop(x, top, left, ch, cw, [self.size, self.size], interpolation=_BILINEAR, antialias=False)
        if p.flip:
            x = F.horizontal_flip(x)
        for op in p.ops:
            x = apply_randaug_op(x, op, p.signs.get(op, 1.0), p.cutout_center)
        if self.color_jitter:
            x = color_jitter(x, *p.jitter, order=p.jitter_order)
        return x

    def __call__(self, frames, generator: torch.Generator | None = None) -> torch.Tensor:
        x = to_tchw(frames)
        p = self.sample_params(x.shape[-2], x.shape[-1], generator)
        return self.apply(x, p).permute(1, 0, 2, 3).contiguous()


class EvalTransform:
    """Test clip transform: resize short side to ``short_side``, centre crop ``size``. Output uint8 ``[3, T, s, s]``."""

    def __init__(self, short_side: int = 160, size: int = 160):
        self.short_side = short_side
        self.size = size

    def apply(self, x: torch.Tensor, chunk: int = 16, channels_first: bool = False) -> torch.Tensor:
        """uint8 ``[T, 3, H, W]`` -> uint8 ``[T, 3, size, size]`` (``channels_first``: ``[3, T, size, size]``),
        ``chunk`` frames at a time, each chunk written straight into the output (no concatenation or transposing
        copy of the whole clip: ~30% of a cached test window's CPU time)."""
        T, s = x.shape[0], self.size
        out = torch.empty((3, T, s, s) if channels_first else (T, 3, s, s), dtype=torch.uint8, device=x.device)
        frames_first = out.transpose(0, 1) if channels_first else out  # a [T, 3, s, s] view either way
        for i in range(0, T, chunk):
            frames_first[i : i + chunk] = self._apply_chunk(x[i : i + chunk])
        return out

    def _apply_chunk(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        rh, rw = rescale_short_side(h, w, self.short_side)
        x = F.resize(x, [rh, rw], interpolation=_BILINEAR, antialias=False)
        top, left = (rh - self.size) // 2, (rw - self.size) // 2
        return F.crop(x, top, left, self.size, self.size)

    def __call__(self, frames, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(to_tchw(frames), channels_first=True)


class GPUBatchAugment(torch.nn.Module):
    """The train policy on a whole uint8 batch, on the batch's device, with per-sample random parameters.

    ``forward(x)``: x uint8 ``[B, 3, T, H, W]`` (raw decoded frames, any size, same for the batch) ->
    uint8 ``[B, 3, T, size, size]``. Parameters come from ``generator`` (a CPU ``torch.Generator``) or torch's
    global generator; the pixel work runs where ``x`` is. Sample ``b`` of a batch gets exactly what
    :class:`TrainTransform` with the same generator state would give that clip.
    """

    def __init__(self, generator: torch.Generator | None = None, **train_kwargs):
        super().__init__()
        self.policy = TrainTransform(**train_kwargs)
        self.generator = generator

    @torch.no_grad()
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"GPUBatchAugment expects uint8 [B, 3, T, H, W], got {x.dtype} {tuple(x.shape)}")
        g = generator if generator is not None else self.generator
        out = []
        for clip in x:  # [3, T, H, W]
            t = clip.permute(1, 0, 2, 3)
            p = self.policy.sample_params(t.shape[-2], t.shape[-1], g)
            out.append(self.policy.apply(t, p).permute(1, 0, 2, 3))
        return torch.stack(out, 0).contiguous()
