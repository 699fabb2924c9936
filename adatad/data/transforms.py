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

One code path for one clip and for a batch: :meth:`TrainTransform.augment` runs the policy on uint8
``[N, F, 3, H, W]`` (``N`` clips of ``F`` frames) with clip ``n``'s parameters in row ``n`` of a :class:`BatchParams`;
the workers call it with ``N = 1``, :class:`GPUBatchAugment` with the whole batch on the device. Each op is one call
over the clips that drew it (the two ImgAug slots: all geometric ops of a slot in one ``grid_sample`` with a matrix
per clip, each pixel op once over the clips that chose it); ColorJitter takes per-clip factors as tensors. Only the
crop of a batch whose clips have different boxes differs from the one-clip path: ``grid_sample`` at the same
sampling points instead of torchvision's uint8 ``resized_crop`` (at most 1 grey level apart). Parameters are drawn
on the CPU generator clip after clip, as :meth:`TrainTransform.sample_params` draws them (a few scalars per clip).

CPU cost (``benchmarks/transform_ops.py``): the geometric ops are torchvision's own matrices sampled with one
``grid_sample`` per chunk (no mask channel: the fill-0 edge blend is one coverage map per clip); ColorJitter composes
brightness / contrast / saturation into one colour matrix per frame and shifts hue with same-shape ops only; clips go
through in chunks of 4 frames (float 160 x 160 chunks stay in a 1 MiB L2 cache).

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
    "BatchParams",
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


def resize_short_side(x: torch.Tensor, short: int) -> torch.Tensor:
    """The first step of both transforms: uint8 ``[..., 3, H, W]`` resized (bilinear, no antialias) so that its short
    side is ``short`` (:func:`rescale_short_side`); the input itself when it already has that size, so frames stored
    at this size (``adatad prepare cache --resolution transform``) give the same clip as their source."""
    h, w = x.shape[-2:]
    return F.resize(x, list(rescale_short_side(h, w, short)), interpolation=_BILINEAR, antialias=False)


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


def shift_hue(y: torch.Tensor, shift: float | torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue of float RGB ``[..., 3, H, W]`` (values 0..255) by ``shift`` turns; V and S kept.

    ``shift``: a number, or a tensor broadcastable to ``[..., 1, 1]`` (one shift per image of a batch).
    Hue ``u`` in sextants (0..6) from the max channel; back with ``channel = min + chroma * clamp(...)``: R
    ``|u-3|-1``, G ``2-|u-2|``, B ``2-|u-4|``. Written with same-shape and scalar ops only (CPU kernels for
    broadcast ``where``/``addcmul`` are several times slower).
    """
    r, g, b = y.unbind(-3)
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    c = maxc - minc
    inv = c.clamp_min(1e-3).reciprocal_()  # chroma is 0 or >= 1 on truncated pixels; 0 chroma: any hue
    # the max channel's formula (ties: R before G before B, as colorsys); same-shape where, no float masks
    u = torch.where(maxc == g, torch.sub(b, r).mul_(inv).add_(2.0), torch.sub(r, g).mul_(inv).add_(4.0))
    u = torch.where(maxc == r, torch.sub(g, b).mul_(inv), u)
    small = bool((shift.abs() <= 1 / 6).all()) if isinstance(shift, torch.Tensor) else abs(shift) <= 1 / 6
    u = u.add_(6.0 * shift)  # in [-1, 5] + 6 * shift
    # |shift| <= 1/6 turn (ColorJitter's hue <= 0.1): u > -2 and < 6, one wrap (the same float op as remainder)
    u = torch.where(u < 0, u + 6.0, u) if small else torch.remainder(u, 6.0)
    out = torch.empty_like(y)
    for i, (a, lo, sign) in enumerate(((3.0, -1.0, 1.0), (2.0, 2.0, -1.0), (4.0, 2.0, -1.0))):
        v = (u - a).abs_()
        v = (v.add_(lo) if sign > 0 else v.neg_().add_(lo)).clamp_(0.0, 1.0)
        torch.addcmul(minc, v, c, out=out[..., i, :, :])
    return out


_LUMA = (0.2989, 0.587, 0.114)


def _to_uint8(y: torch.Tensor) -> torch.Tensor:
    """Float ``y`` with values in ``[0, 255]`` -> uint8, truncating (as ``.to(torch.uint8)``). On CPU through int32:
    the same values, about twice as fast as torch's direct float -> uint8 conversion (measured on [4, 3, 160, 160])."""
    if y.device.type != "cpu":
        return y.to(torch.uint8)
    return y.to(torch.int32).to(torch.uint8)


def _lead(v: float | torch.Tensor, y: torch.Tensor) -> float | torch.Tensor:
    """A per-clip factor for float ``y [..., 3, H, W]`` as ``[N, 1, ..., 1]`` over the leading dims + a ``[1, 1]`` matrix
    tail; numbers stay numbers."""
    if not isinstance(v, torch.Tensor):
        return v
    return v.to(device=y.device, dtype=torch.float32).view(-1, *([1] * (y.ndim - 2)))


def _apply_colour_affine(y: torch.Tensor, m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``y' = m @ y + t`` per pixel: float ``y [..., 3, H, W]``, ``m [..., 3, 3]``, ``t [..., 3]`` (broadcast)."""
    out = torch.matmul(m, y.flatten(-2)).view(y.shape)  # one (3 x 3) @ (3 x HW) product per frame
    return out.add_(t[..., None, None])


def color_jitter(x: torch.Tensor, b, c, s, h, order=(0, 1, 2, 3)) -> torch.Tensor:
    """mmaction ColorJitter on uint8 ``[..., 3, H, W]`` with given factors (see module doc). Returns uint8.

    ``b, c, s, h``: numbers (one clip), or float tensors ``[N]`` for a batch ``x`` of ``N`` clips (``[N, ..., 3, H, W]``,
    one set of factors per clip). The hue offset is ``int(h * 255)`` OpenCV units (truncated toward zero).
    Brightness, contrast and saturation are linear in the pixel (contrast adds each frame's grey mean, itself linear
    in the frame's channel means), so each run of them between hue shifts is composed into one 3x3 colour matrix and
    offset per frame and applied in one pass; mathematically the sequential float formulas, without rounding.
    """
    y = x.float()
    dev = y.device
    hue: float | torch.Tensor
    if isinstance(h, torch.Tensor):
        hue = (torch.trunc(h.double() * 255) / 180.0).to(device=dev, dtype=torch.float32).view(-1, *([1] * (y.ndim - 2)))
    else:
        hue = int(h * 255) / 180.0
    w = torch.tensor(_LUMA, dtype=torch.float32, device=dev)
    eye = torch.eye(3, dtype=torch.float32, device=dev)
    m: torch.Tensor | None = None  # pending linear map of the current run: y_now = m @ y + t
    t = torch.zeros(3, dtype=torch.float32, device=dev)
    for fn in order:
        if fn == 3:
            if not isinstance(h, torch.Tensor) and h == 0:
                continue
            if m is not None:
                y, m, t = _apply_colour_affine(y, m, t), None, torch.zeros(3, dtype=torch.float32, device=dev)
            # mmaction: clip + truncate to uint8, cv2 HSV (hue unit = 2 degrees), offset int(h * 255) units
            y = shift_hue(y.clamp_(0, 255).floor_(), hue)
            continue
        f = _lead((b, c, s)[fn], y)  # [N, 1.., 1, 1] (matrix tail) or a number
        if not isinstance(f, torch.Tensor) and f == 1:
            continue
        fv = f[..., 0] if isinstance(f, torch.Tensor) else f  # for the [..., 3] offset
        m = eye if m is None else m
        if fn == 0:
            m, t = m * f, t * fv
        elif fn == 1:
            mean = (m @ y.mean(dim=(-2, -1)).unsqueeze(-1)).squeeze(-1) + t  # per-frame channel means now [..., 3]
            grey = (mean * w).sum(-1, keepdim=True)
            m, t = m * f, t * fv + grey * (1 - fv)
        else:
            sat = eye * f + (1 - f) * w.expand(3, 3)  # s * I + (1 - s) * [w; w; w]
            m, t = sat @ m, (sat @ t.unsqueeze(-1)).squeeze(-1)
    if m is not None:
        y = _apply_colour_affine(y, m, t)
    return _to_uint8(y.clamp_(0, 255))


def _cutout(x: torch.Tensor, center: tuple[float, float], size: float = 0.2 * LEVEL, fill: int = 128) -> torch.Tensor:
    H, W = x.shape[-2:]
    side = max(1, round(size * min(H, W)))
    cy, cx = center[0] * H, center[1] * W
    y0, x0 = max(0, int(round(cy - side / 2))), max(0, int(round(cx - side / 2)))
    y1, x1 = min(H, y0 + side), min(W, x0 + side)
    x = x.clone()
    x[..., y0:y1, x0:x1] = fill
    return x


def cutout_batch(x: torch.Tensor, centers: torch.Tensor, size: float = 0.2 * LEVEL, fill: int = 128) -> torch.Tensor:
    """Cutout on uint8 ``[N, ..., H, W]`` with one centre ``(y, x)`` (fractions of the frame) per clip: ``centers [N, 2]``."""
    H, W = x.shape[-2:]
    if x.shape[0] == 1:  # one clip: a slice fill instead of a full-size mask
        return _cutout(x, (float(centers[0, 0]), float(centers[0, 1])), size, fill)
    side = max(1, round(size * min(H, W)))
    c = centers.to(device=x.device, dtype=torch.float64) * torch.tensor([H, W], dtype=torch.float64, device=x.device)
    lo = torch.round(c - side / 2).clamp_(min=0).long()  # round half to even, as Python's round
    ys = torch.arange(H, device=x.device)
    xs = torch.arange(W, device=x.device)
    in_y = (ys >= lo[:, :1]) & (ys < lo[:, :1] + side)  # [N, H]
    in_x = (xs >= lo[:, 1:]) & (xs < lo[:, 1:] + side)  # [N, W]
    mask = (in_y[:, :, None] & in_x[:, None, :]).view(x.shape[0], *([1] * (x.ndim - 3)), H, W)
    return x.masked_fill(mask, fill)


def _op_matrix(op: str, sign: float, h: int, w: int) -> list[float]:
    """torchvision's inverse affine matrix (pixel units, centre at the middle of the frame) of a geometric op,
    exactly as ``F.affine`` / ``F.rotate`` build it for :func:`apply_randaug_op`."""
    from torchvision.transforms.functional import _get_inverse_affine_matrix

    shear, translate, angle = [0.0, 0.0], [0.0, 0.0], 0.0
    if op == "ShearX":
        shear = [17.19 * LEVEL * sign, 0.0]
    elif op == "ShearY":
        shear = [0.0, 17.19 * LEVEL * sign]
    elif op == "TranslateX":
        translate = [0.2 * LEVEL * sign * w, 0.0]
    elif op == "TranslateY":
        translate = [0.0, 0.2 * LEVEL * sign * h]
    elif op == "Rotate":
        angle = -30 * LEVEL * sign  # F.rotate passes -angle
    else:
        raise ValueError(f"{op!r} is not a geometric op; geometric: {SIGNED_OPS}")
    return _get_inverse_affine_matrix([0.0, 0.0], angle, translate, 1.0, shear)


def affine_batch(x: torch.Tensor, matrices: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
    """Bilinear affine warp of uint8 ``[N, F, 3, H, W]`` with one inverse matrix per clip (``matrices [N, 6]``, as
    torchvision's), fill 0 with torchvision's edge blend (``round(sampled * coverage)``). Same result as ``F.affine``
    up to float rounding (at most 1 grey level, on rare pixels); every frame of clip ``n`` gets matrix ``n``.
    ``cache``: a dict kept across the frame chunks of the same clips (the sampling grid and coverage map of a clip
    are the same for all its frames)."""
    n, f, ch, h, w = x.shape
    key = (tuple(matrices.flatten().tolist()), f, h, w, x.device)
    if cache is not None and key in cache:
        grid, cover = cache[key]
    else:
        m = matrices.to(device=x.device, dtype=torch.float32).view(n, 1, 1, 6)
        bx = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=x.device).view(1, 1, w)
        by = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=x.device).view(1, h, 1)
        gx = (bx * m[..., 0] + by * m[..., 1] + m[..., 2]) / (0.5 * w)
        gy = (bx * m[..., 3] + by * m[..., 4] + m[..., 5]) / (0.5 * h)
        grid = torch.stack([gx, gy], -1)  # [N, H, W, 2]
        ones = torch.ones((n, 1, h, w), dtype=torch.float32, device=x.device)
        cover = torch.nn.functional.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        grid = grid[:, None].expand(n, f, h, w, 2).reshape(n * f, h, w, 2)
        cover = cover.view(n, 1, 1, h, w)
        if cache is not None:
            cache[key] = grid, cover
    y = torch.nn.functional.grid_sample(
        x.reshape(n * f, ch, h, w).float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return _to_uint8(y.view(n, f, ch, h, w).mul_(cover).round_())


def resized_crop_batch(x: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop box ``(top, left, height, width)`` of clip ``n`` from uint8 ``[N, F, 3, H, W]``, resized (bilinear, no
    antialias, half-pixel centres, edges clamped to the box) to ``size x size``; ``boxes [N, 4]``. Same sampling
    points as ``F.resized_crop``; values equal up to its uint8 fixed-point rounding (at most 1 grey level)."""
    n, f, ch, h, w = x.shape
    bx = boxes.to(device=x.device, dtype=torch.float64)
    j = torch.arange(size, device=x.device, dtype=torch.float64) + 0.5

    def axis(start, extent, full):
        src = start[:, None] + j * (extent[:, None] / size) - 0.5
        src = torch.minimum(torch.maximum(src, start[:, None]), start[:, None] + extent[:, None] - 1)
        return ((2 * src + 1) / full - 1).float()  # [N, size], grid_sample's normalised coordinates

    gy = axis(bx[:, 0], bx[:, 2], h)
    gx = axis(bx[:, 1], bx[:, 3], w)
    grid = torch.stack([gx[:, None, :].expand(n, size, size), gy[:, :, None].expand(n, size, size)], -1)
    grid = grid[:, None].expand(n, f, size, size, 2).reshape(n * f, size, size, 2)
    y = torch.nn.functional.grid_sample(
        x.reshape(n * f, ch, h, w).float(), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return _to_uint8(y.round_()).view(n, f, ch, size, size)


def apply_randaug_op(x: torch.Tensor, op: str, sign: float = 1.0, cutout_center=(0.5, 0.5)) -> torch.Tensor:
    """One op of the ImgAug "default" policy on uint8 ``[T, 3, H, W]`` (same for every frame), with torchvision's
    functional ops: the per-clip reference the batched ops (:func:`randaug_slot`) are tested against."""
    H, W = x.shape[-2:]
    if op in ("ShearX", "ShearY", "TranslateX", "TranslateY"):
        a = {"ShearX": (0.0, [0.0, 0.0], [17.19 * LEVEL * sign, 0.0]), "ShearY": (0.0, [0.0, 0.0], [0.0, 17.19 * LEVEL * sign]),
             "TranslateX": (0.0, [0.2 * LEVEL * sign * W, 0.0], [0.0, 0.0]),
             "TranslateY": (0.0, [0.0, 0.2 * LEVEL * sign * H], [0.0, 0.0])}[op]  # fmt: skip
        return F.affine(x, angle=a[0], translate=a[1], scale=1.0, shear=a[2], interpolation=_BILINEAR, fill=[0.0])
    if op == "Rotate":
        return F.rotate(x, angle=30 * LEVEL * sign, interpolation=_BILINEAR, fill=[0.0])
    if op in _PIXEL_OPS:
        return _PIXEL_OPS[op](x)
    if op == "Cutout":
        return _cutout(x, cutout_center)
    raise ValueError(f"unknown RandAugment op {op!r}; known: {RANDAUG_OPS}")


def equalize(x: torch.Tensor) -> torch.Tensor:
    """``F.equalize`` of uint8 ``[..., H, W]`` (each image channel on its own), with one ``bincount`` for all the
    histograms and the identity table where torchvision leaves the image unchanged (its ``scatter_add`` histogram and
    full-size ``where`` cost about twice as much on CPU). Same formula, integer arithmetic: equal outputs."""
    shape = x.shape
    flat = x.reshape(-1, shape[-1] * shape[-2]).long()  # [K, HW]
    k, n = flat.shape
    offsets = torch.arange(k, device=x.device).mul_(256).unsqueeze_(1)
    hist = torch.bincount((flat + offsets).view(-1), minlength=k * 256).view(k, 256)
    cum = hist.cumsum(-1)
    last = cum.argmax(-1, keepdim=True)  # the last non-empty bin
    step = (n - hist.gather(-1, last)).div_(255, rounding_mode="floor")
    lut = (cum[:, :-1] + step // 2).div_(step.clamp(min=1), rounding_mode="floor").clamp_(0, 255)
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut], -1)
    lut = torch.where(step.ne(0), lut, torch.arange(256, device=x.device)).to(torch.uint8)
    return lut.gather(-1, flat).view(shape)


def _sharpness(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``F.adjust_sharpness`` on channels-last frames: its 3x3 blur is a conv2d, about 3x cheaper on CPU in that
    memory format (the other ops here are cheaper on contiguous frames, so the result is made contiguous again)."""
    frames = x.reshape(-1, *x.shape[-3:]).contiguous(memory_format=torch.channels_last)
    return F.adjust_sharpness(frames, factor).contiguous().view(x.shape)


_ENHANCE = 1.8 * LEVEL + 0.1
_PIXEL_OPS = {  # the ops without parameters: the same torchvision call on one clip or on a batch of clips
    "Posterize": lambda x: F.posterize(x, bits=max(1, int(4 * LEVEL))),
    "Solarize": lambda x: F.solarize(x, threshold=256 * LEVEL),
    "EnhanceColor": lambda x: F.adjust_saturation(x, _ENHANCE),
    "EnhanceContrast": lambda x: F.adjust_contrast(x, _ENHANCE),
    "EnhanceBrightness": lambda x: F.adjust_brightness(x, _ENHANCE),
    "EnhanceSharpness": lambda x: _sharpness(x, _ENHANCE),
    "Autocontrast": F.autocontrast,
    "Equalize": equalize,
    "Invert": F.invert,
}


@dataclass
class BatchParams:
    """Per-clip parameters of a batch of ``N`` clips as tensors (what :meth:`TrainTransform.sample_params` drew)."""

    crop: torch.Tensor  # [N, 4] int64: top, left, height, width in the short-side-resized frame
    flip: torch.Tensor  # [N] bool
    ops: torch.Tensor  # [N, 2] int64: indices into RANDAUG_OPS, -1 = none
    matrices: torch.Tensor  # [N, 2, 6] float64: torchvision inverse affine matrix of slot k's op (geometric ops)
    cutout_center: torch.Tensor  # [N, 2] float64
    jitter: torch.Tensor  # [N, 4] float64: brightness, contrast, saturation, hue
    jitter_order: tuple[int, ...]
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # per-clip grids reused across frame chunks

    @classmethod
    def stack(cls, params: list[ClipParams], size: int) -> BatchParams:
        ops = torch.full((len(params), 2), -1, dtype=torch.int64)
        mats = torch.zeros((len(params), 2, 6), dtype=torch.float64)
        for i, p in enumerate(params):
            for k, op in enumerate(p.ops):
                ops[i, k] = RANDAUG_OPS.index(op)
                if op in SIGNED_OPS:
                    mats[i, k] = torch.tensor(_op_matrix(op, p.signs.get(op, 1.0), size, size), dtype=torch.float64)
        orders = {p.jitter_order for p in params}
        if len(orders) != 1:
            raise ValueError(f"one batch needs one ColorJitter order, got {sorted(orders)}")
        return cls(
            crop=torch.tensor([p.crop for p in params], dtype=torch.int64).view(-1, 4),
            flip=torch.tensor([p.flip for p in params], dtype=torch.bool),
            ops=ops,
            matrices=mats,
            cutout_center=torch.tensor([p.cutout_center for p in params], dtype=torch.float64).view(-1, 2),
            jitter=torch.tensor([p.jitter for p in params], dtype=torch.float64).view(-1, 4),
            jitter_order=params[0].jitter_order,
        )


def randaug_slot(x: torch.Tensor, p: BatchParams, slot: int) -> torch.Tensor:
    """Apply op slot ``slot`` (0 or 1) of every clip of uint8 ``[N, F, 3, H, W]``: one call per distinct op (the clips
    that drew it, together), the geometric ops of all clips in one warp. Returns a new tensor."""
    ops = p.ops[:, slot]
    present = sorted(set(ops.tolist()) - {-1})
    if not present:
        return x
    geo = ops.lt(len(SIGNED_OPS)) & ops.ge(0)
    if len(present) == 1 and bool((ops == present[0]).all()):  # one op for the whole batch (always so for one clip)
        op = RANDAUG_OPS[present[0]]
        if op in SIGNED_OPS:
            return affine_batch(x, p.matrices[:, slot], p.cache)
        return cutout_batch(x, p.cutout_center) if op == "Cutout" else _PIXEL_OPS[op](x)
    out = x.clone()
    if bool(geo.any()):
        idx = geo.nonzero().flatten()
        out[idx.to(x.device)] = affine_batch(x[idx.to(x.device)], p.matrices[idx, slot], p.cache)
    for k in present:
        op = RANDAUG_OPS[k]
        if op in SIGNED_OPS:
            continue
        idx = (ops == k).nonzero().flatten()
        sel = x[idx.to(x.device)]
        out[idx.to(x.device)] = cutout_batch(sel, p.cutout_center[idx]) if op == "Cutout" else _PIXEL_OPS[op](sel)
    return out


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

    The pixel work (:meth:`augment`) runs on a batch of clips ``[N, F, 3, H, W]`` with per-clip parameters
    (:class:`BatchParams`); one clip is the batch ``N = 1``, so :class:`GPUBatchAugment` and the workers run the same
    code. Only the crop differs: one clip uses torchvision's uint8 ``resized_crop`` (fast on CPU), a batch of clips
    with different boxes one ``grid_sample`` (the same sampling points; at most 1 grey level apart).
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

    def sample_batch_params(self, n: int, h: int, w: int, g: torch.Generator | None = None) -> BatchParams:
        """``n`` clips' parameters: the draws of ``n`` calls of :meth:`sample_params` (a few scalars per clip, on
        the CPU generator), as tensors."""
        return BatchParams.stack([self.sample_params(h, w, g) for _ in range(n)], self.size)

    def apply(self, x: torch.Tensor, p: ClipParams, chunk: int = 4, channels_first: bool = False) -> torch.Tensor:
        """Apply given parameters to uint8 ``[T, 3, H, W]`` on any device; returns uint8 ``[T, 3, size, size]``
        (``channels_first``: ``[3, T, size, size]``, each chunk written straight into it).

        Every op works frame by frame with the clip's parameters, so the clip is processed in chunks of
        ``chunk`` frames (cache-friendly on CPU; the result does not depend on ``chunk``).
        """
        bp = BatchParams.stack([p], self.size)
        T, s = x.shape[0], self.size
        out = torch.empty((3, T, s, s) if channels_first else (T, 3, s, s), dtype=torch.uint8, device=x.device)
        frames_first = out.transpose(0, 1) if channels_first else out  # a [T, 3, s, s] view either way
        for i in range(0, T, chunk):
            frames_first[i : i + chunk] = self.augment(x[None, i : i + chunk], bp)[0]
        return out

    def augment(self, x: torch.Tensor, p: BatchParams) -> torch.Tensor:
        """The policy on uint8 ``[N, F, 3, H, W]`` (``N`` clips of ``F`` frames) with clip ``n``'s parameters from
        row ``n`` of ``p``; returns uint8 ``[N, F, 3, size, size]``, on ``x``'s device."""
        x = resize_short_side(x, self.short_side)
        if self.crop == "center":  # the same box for every clip
            x = F.crop(x, *p.crop[0].tolist())
        elif x.shape[0] == 1 or bool((p.crop == p.crop[0]).all()):
            top, left, ch, cw = p.crop[0].tolist()
            x = F.resized_crop(x, top, left, ch, cw, [self.size, self.size], interpolation=_BILINEAR, antialias=False)
        else:
            x = resized_crop_batch(x, p.crop, self.size)
        # torchvision's uint8 resize returns channels-last strides; reductions over (H, W) (Autocontrast, Equalize,
        # contrast means) are several times slower on them
        x = x.contiguous()
        if bool(p.flip.all()):
            x = x.flip(-1)
        elif bool(p.flip.any()):
            x = torch.where(p.flip.to(x.device).view(-1, 1, 1, 1, 1), x.flip(-1), x)
        for slot in (0, 1):
            x = randaug_slot(x, p, slot)
        if self.color_jitter:
            j = p.jitter
            x = color_jitter(x, j[:, 0], j[:, 1], j[:, 2], j[:, 3], order=p.jitter_order)
        return x

    def __call__(self, frames, generator: torch.Generator | None = None) -> torch.Tensor:
        x = to_tchw(frames)
        p = self.sample_params(x.shape[-2], x.shape[-1], generator)
        return self.apply(x, p, channels_first=True)


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
        x = resize_short_side(x, self.short_side)
        rh, rw = x.shape[-2:]
        top, left = (rh - self.size) // 2, (rw - self.size) // 2
        return F.crop(x, top, left, self.size, self.size)

    def __call__(self, frames, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(to_tchw(frames), channels_first=True)

    def per_frame(self, frames) -> torch.Tensor:
        """uint8 ``[n, H, W, 3]`` (or ``[n, 3, H, W]``) -> uint8 ``[n, 3, size, size]``: the transform is frame by frame
        and has no random draws, so the decode-once path applies it once per decoded frame
        (:func:`adatad.data.stream.stream_windows`' ``frame_fn``); a window is these frames stacked on dim 1."""
        return self.apply(to_tchw(frames))


class GPUBatchAugment(torch.nn.Module):
    """The train policy on a whole uint8 batch, on the batch's device, with per-sample random parameters.

    ``forward(x)``: x uint8 ``[B, 3, T, H, W]`` (raw decoded frames, any size, same for the batch) ->
    uint8 ``[B, 3, T, size, size]``. Parameters come from ``generator`` (a CPU ``torch.Generator``) or torch's
    global generator, drawn as :class:`TrainTransform` draws them clip after clip (same generator state, same
    parameters); the pixel work runs on the whole batch at once (:meth:`TrainTransform.augment`: no loop over
    samples), ``chunk`` frames at a time (default: 4 on CPU, 128 on other devices; the result does not depend on it).
    """

    def __init__(self, generator: torch.Generator | None = None, chunk: int | None = None, **train_kwargs):
        super().__init__()
        self.policy = TrainTransform(**train_kwargs)
        self.generator = generator
        self.chunk = chunk

    @torch.no_grad()
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"GPUBatchAugment expects uint8 [B, 3, T, H, W], got {x.dtype} {tuple(x.shape)}")
        g = generator if generator is not None else self.generator
        B, _, T, H, W = x.shape
        p = self.policy.sample_batch_params(B, H, W, g)
        chunk = self.chunk or (4 if x.device.type == "cpu" else 128)
        s = self.policy.size
        out = torch.empty((B, 3, T, s, s), dtype=torch.uint8, device=x.device)
        for t in range(0, T, chunk):
            y = self.policy.augment(x[:, :, t : t + chunk].permute(0, 2, 1, 3, 4), p)
            out[:, :, t : t + chunk] = y.permute(0, 2, 1, 3, 4)
        return out
