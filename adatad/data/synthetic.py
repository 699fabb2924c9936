"""Synthetic untrimmed action videos for the demo and the tests.

Every video shows a textured background that pans slowly, shaken by a small camera jitter, with
several planted actions separated by empty stretches. An action is one object (a disk or a square of
a random saturated colour, drawn the same way for every class) doing something over time:

- ``MoveRight`` / ``MoveLeft``: the object crosses the centre of the frame horizontally;
- ``Grow`` / ``Shrink``: the object stays put and its size changes linearly;
- ``Blink``: the object stays put and switches on and off with a period of 0.4-0.8 s.

A single frame never tells the class: only the motion over time does. All actions stay inside the
central square of the frame (with a margin for the jitter), so a "resize short side + center crop"
test transform keeps them. Up to two actions overlap in time (always of different classes); they then
run in separate lanes (upper and lower half of the central square). With ``same_segment_prob`` > 0 an
overlapping pair may share its exact segment: one segment under two labels, MultiTHUMOS/Charades-style
multi-label ground truth.

Building blocks:

- :func:`random_video_spec` / :class:`VideoSpec` / :class:`PlantedAction`: what a video contains;
- :func:`render_video`: a spec -> iterator of ``uint8`` frames ``[H, W, 3]`` (RGB);
- :func:`write_video`: frames -> H.264 file (PyAV), any frame rate (29.97 as ``Fraction(30000, 1001)``);
- :func:`generate_dataset`: a whole dataset (videos + OpenTAD annotation JSON + class map), cached.
- :func:`anet_like_actions` / ``generate_dataset(layout="anet")``: an "ActivityNet-like" set (one class per
  video, 1-2 long actions covering a large part of it) in OpenTAD's ActivityNet layout, with a video-level
  classifier file (:func:`noisy_video_scores`, CUHK ``cuhk_val_simp_7.json`` layout) made from the ground truth.

The annotation format is OpenTAD's (see ``adatad/data/thumos14/README.md``): the train split is
stored as subset ``"training"`` and the test split as subset ``"validation"``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CLASSES",
    "GENERATOR_VERSION",
    "STEADY",
    "PlantedAction",
    "VideoSpec",
    "anet_like_actions",
    "as_fraction",
    "frame_range",
    "generate_dataset",
    "noisy_video_scores",
    "random_video_spec",
    "render_video",
    "write_video",
]

CLASSES: list[str] = ["MoveRight", "MoveLeft", "Grow", "Shrink", "Blink"]
"""Class names; they differ only by motion over time (direction, growing vs shrinking, blinking)."""

GENERATOR_VERSION = 2
"""Bumped whenever the rendered content for given parameters changes (invalidates caches)."""

STEADY = "_Steady"
"""Label of unannotated distractor objects that just stay put (never a class)."""

MANIFEST_NAME = "synthetic_manifest.json"
SUBSET_NAMES = {"train": "training", "test": "validation"}  # OpenTAD's THUMOS naming (and ActivityNet's)
LAYOUTS = ("thumos", "anet")
ANET_VIDEO_PREFIX = "v_"  # OpenTAD reads ActivityNet video X from v_X.mp4 (PrepareVideoInfo(prefix="v_"))
ANET_ANNOTATION = "activity_net.v1-3.min.json"
ANET_CLASSIFIER = "cuhk_val_simp_7.json"

# Geometry, in units of the central square's side S = min(H, W); offsets are from the frame centre.
_MOVE_HALF_SPAN = 0.22  # MoveRight/MoveLeft travel from -0.22 S to +0.22 S (plus the instance's x offset)
_RADIUS_RANGE = (0.13, 0.18)  # object "radius" (half side for squares) for Move and Blink: about one 16 px patch at 64 px
_GROW_SMALL = (0.05, 0.07)  # Grow starts / Shrink ends at this radius
_GROW_LARGE = (0.2, 0.24)  # Grow ends / Shrink starts at this radius
_LANE_Y = 0.21  # centre of the upper / lower lane when two actions overlap
_SOLO_Y = 0.10  # a lone action's centre y is drawn in [-0.10, 0.10] S
_STATIC_X = 0.18  # static actions' centre x is drawn in [-0.18, 0.18] S
_MOVE_X = 0.04  # Move actions' path centre x is drawn in [-0.04, 0.04] S
_JITTER_PX = 1.5  # camera jitter amplitude (pixels, at any resolution)


# ---------------------------------------------------------------------------------------------------------------------
# specs


@dataclass
class PlantedAction:
    """One action instance, in seconds.

    The object is drawn on every frame ``i`` with ``start <= i / fps < end`` (see :func:`frame_range`).
    Geometry (``x``, ``y``, ``radius``, ``radius_end``) is in units of the central square's side S = min(H, W),
    relative to the frame centre (x to the right, y downwards).
    """

    label: str
    start: float
    end: float
    color: tuple[int, int, int] = (230, 40, 40)
    shape: str = "disk"  # "disk" or "square"
    x: float = 0.0  # path centre (Move*) or position (others)
    y: float = 0.0
    radius: float = 0.09  # radius at the start of the action (Grow: small, Shrink: large)
    radius_end: float | None = None  # radius at the end (Grow/Shrink); None = constant
    period: float = 0.6  # Blink period in seconds (visible during the first half of each period)
    span: float = _MOVE_HALF_SPAN  # Move*: half the travelled distance, in S units


@dataclass
class VideoSpec:
    """Everything needed to render one video deterministically."""

    name: str
    fps: float | Fraction
    num_frames: int
    size: tuple[int, int] = (64, 64)  # (H, W)
    actions: list[PlantedAction] = field(default_factory=list)
    distractors: list[PlantedAction] = field(default_factory=list)  # drawn, never annotated (label STEADY)
    seed: int = 0  # background texture, pan and jitter
    pan: tuple[float, float] = (0.15, 0.05)  # background drift in pixels per frame (x, y)
    jitter: float = _JITTER_PX

    @property
    def duration(self) -> float:
        """Duration in seconds: ``num_frames / fps``."""
        return float(self.num_frames / as_fraction(self.fps))


def as_fraction(fps: float | int | Fraction) -> Fraction:
    """Frame rate as an exact fraction; NTSC rates (29.97, 23.976, 59.94) become ``N000/1001``."""
    if isinstance(fps, Fraction):
        return fps
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"frame rate must be a positive number, got {fps!r}")
    for base in (24, 30, 48, 60, 120):
        ntsc = Fraction(base * 1000, 1001)
        if abs(fps - float(ntsc)) < 5e-3:
            return ntsc
    return Fraction(fps).limit_denominator(1001)


def frame_range(start: float, end: float, fps: float | Fraction, num_frames: int | None = None) -> tuple[int, int]:
    """Frames ``[f0, f1)`` whose time ``i / fps`` lies in ``[start, end)`` (with a 1e-3 frame tolerance)."""
    fps_f = float(fps)
    f0 = max(0, math.ceil(start * fps_f - 1e-3))
    f1 = max(f0, math.ceil(end * fps_f - 1e-3))
    if num_frames is not None:
        f0, f1 = min(f0, num_frames), min(f1, num_frames)
    return f0, f1


def _random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated, bright RGB colour (saturation >= 0.8, value >= 0.85): stands out from the grey background."""
    h = rng.uniform(0, 6)
    s = rng.uniform(0.8, 1.0)
    v = rng.uniform(0.85, 1.0)
    c = v * s
    xx = c * (1 - abs(h % 2 - 1))
    m = v - c
    rgb = [(c, xx, 0), (xx, c, 0), (0, c, xx), (0, xx, c), (xx, 0, c), (c, 0, xx)][int(h) % 6]
    return tuple(int(round(255 * (ch + m))) for ch in rgb)  # type: ignore[return-value]


def _appearance(label: str, rng: np.random.Generator, lane_y: float | None) -> dict[str, Any]:
    """Random per-instance appearance; identical distributions for all classes except what the motion needs."""
    app: dict[str, Any] = dict(color=_random_color(rng), shape=str(rng.choice(["disk", "square"])))
    app["y"] = float(lane_y + rng.uniform(-0.02, 0.02)) if lane_y is not None else float(rng.uniform(-_SOLO_Y, _SOLO_Y))
    r = float(rng.uniform(*_RADIUS_RANGE))
    small, large = float(rng.uniform(*_GROW_SMALL)), float(rng.uniform(*_GROW_LARGE))
    if label in ("MoveRight", "MoveLeft"):
        app.update(x=float(rng.uniform(-_MOVE_X, _MOVE_X)), radius=r)
    elif label == "Grow":
        app.update(x=float(rng.uniform(-_STATIC_X, _STATIC_X)), radius=small, radius_end=large)
    elif label == "Shrink":
        app.update(x=float(rng.uniform(-_STATIC_X, _STATIC_X)), radius=large, radius_end=small)
    elif label == STEADY:
        app.update(x=float(rng.uniform(-_STATIC_X, _STATIC_X)), radius=r)
    elif label == "Blink":
        app.update(x=float(rng.uniform(-_STATIC_X, _STATIC_X)), radius=r, period=float(rng.uniform(0.4, 0.8)))
    else:
        raise ValueError(f"unknown synthetic class {label!r}; known classes: {CLASSES}")
    if lane_y is not None:  # keep two overlapping objects apart: large objects shrink a little in lanes
        app["radius"] = min(app["radius"], 0.15)
        if app.get("radius_end") is not None:
            app["radius_end"] = min(app["radius_end"], 0.15)
    return app


def random_video_spec(
    name: str,
    duration: float,
    fps: float | Fraction = 30.0,
    size: tuple[int, int] = (64, 64),
    classes: Sequence[str] = CLASSES,
    seed: int | Sequence[int] = 0,
    action_duration: tuple[float, float] = (1.0, 8.0),
    gap: tuple[float, float] = (1.0, 5.0),
    overlap_prob: float = 0.2,
    actions: Sequence[tuple[str, float, float]] | None = None,
    distractor_prob: float = 0.0,
    same_segment_prob: float = 0.0,
) -> VideoSpec:
    """Build a random :class:`VideoSpec`.

    Args:
        name: video name (no extension).
        duration: wanted duration in seconds; the video has ``round(duration * fps)`` frames.
        fps: frame rate (``29.97`` is understood as ``Fraction(30000, 1001)``).
        size: ``(H, W)``, both even (H.264 with 4:2:0 chroma).
        classes: class names to draw actions from (subset of :data:`CLASSES`).
        seed: int or sequence of ints (e.g. ``(seed, split, index)``).
        action_duration: range of action durations in seconds.
        gap: range of the empty stretches between consecutive actions, in seconds.
        overlap_prob: probability that an action gets a second, overlapping action of another class.
        distractor_prob: probability that an empty stretch of at least 1.5 s shows a steady, unannotated object
            (same appearance distribution as the actions), so that presence alone does not mean "action".
        actions: plant exactly these ``(label, start_s, end_s)`` instead of random ones (appearance is still
            random; overlapping pairs go to separate lanes).
        same_segment_prob: probability that an overlapping pair (see ``overlap_prob``) shares one exact segment
            (multi-label ground truth: the same segment with two labels). 0 (default) draws nothing extra, so the
            videos of the other settings are unchanged.
    """
    fps_q = as_fraction(fps)
    _check_size(size)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown or not classes:
        raise ValueError(f"classes must be a non-empty subset of {CLASSES}, got unknown {unknown}")
    rng = np.random.default_rng(seed)
    num_frames = max(1, int(round(duration * float(fps_q))))
    dur = float(num_frames / fps_q)

    def snap(t: float) -> float:  # to a frame boundary, exactly representable as f / fps
        return float(Fraction(int(round(t * float(fps_q)))) / fps_q)

    plan: list[tuple[str, float, float, float | None]] = []  # label, start, end, lane_y
    shared: set[int] = set()  # plan indices of same-segment pairs (their ends are kept as drawn)
    if actions is not None:
        for label, s, e in actions:
            if label not in CLASSES:
                raise ValueError(f"unknown synthetic class {label!r} in actions of {name}; known: {CLASSES}")
            if not 0 <= s < e <= dur + 1e-6:
                raise ValueError(f"action {label} [{s}, {e}] of {name} is not inside [0, {dur:.3f}] s")
        items = sorted(actions, key=lambda a: a[1])
        for i, (label, s, e) in enumerate(items):
            overl = [j for j, (_, s2, e2) in enumerate(items) if j != i and s2 < e and s < e2]
            lane = None if not overl else (-_LANE_Y if all(i < j for j in overl) else _LANE_Y)
            plan.append((label, float(s), float(e), lane))
    else:
        t = snap(rng.uniform(0.5, gap[1]))
        while True:
            d = rng.uniform(*action_duration)
            label = str(rng.choice(list(classes)))
            s, e = t, snap(t + d)
            if e > dur - 0.5 or e - s < 0.5:
                break
            pair = rng.uniform() < overlap_prob and len(classes) > 1
            if pair:
                label2 = str(rng.choice([c for c in classes if c != label]))
                s2 = snap(s + rng.uniform(0.2, 0.7) * (e - s))
                e2 = snap(min(s2 + rng.uniform(*action_duration), dur - 0.5))
                if same_segment_prob > 0 and rng.uniform() < same_segment_prob and e - s >= 1.0:
                    s2, e2 = s, e
                    shared.update((len(plan), len(plan) + 1))
                if e2 - s2 >= 1.0:
                    plan.append((label, s, e, -_LANE_Y))
                    plan.append((label2, s2, e2, _LANE_Y))
                    t = snap(max(e, e2) + rng.uniform(*gap))
                    continue
            plan.append((label, s, e, None))
            t = snap(e + rng.uniform(*gap))
        if not plan and dur >= 1.5:  # short video: still one action, fitted inside
            d = min(rng.uniform(*action_duration), dur - 1.0)
            s = snap(rng.uniform(0.5, dur - 0.5 - d))
            e = snap(s + d)
            if e - s > 0:
                plan.append((str(rng.choice(list(classes))), s, e, None))

    planted = []
    for i, (label, s, e, lane) in enumerate(plan):
        app = _appearance(label, rng, lane)
        if label == "Blink" and actions is None and i not in shared:  # end on a visible phase: (k + 1/2) periods
            k = max(1, int(round((e - s) / app["period"] - 0.5)))
            e2 = snap(s + (k + 0.5) * app["period"])
            if e2 <= dur - 0.5:
                e = e2
        planted.append(PlantedAction(label=label, start=s, end=e, **app))
    distractors = []
    if distractor_prob > 0:
        busy = sorted((a.start, a.end) for a in planted)
        free, t0 = [], 0.0
        for s0, e0 in busy + [(dur, dur)]:
            if s0 - t0 >= 1.5:
                free.append((t0 + 0.3, s0 - 0.3))
            t0 = max(t0, e0)
        for f0, f1 in free:
            if rng.uniform() < distractor_prob:
                d = rng.uniform(0.5, 1.0) * (f1 - f0)
                s = snap(rng.uniform(f0, f1 - d))
                distractors.append(PlantedAction(label=STEADY, start=s, end=snap(s + d), **_appearance(STEADY, rng, None)))
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.05, 0.25)
    return VideoSpec(
        name=name,
        fps=fps_q if fps_q.denominator != 1 else float(fps_q),
        num_frames=num_frames,
        size=(int(size[0]), int(size[1])),
        actions=planted,
        distractors=distractors,
        seed=int(rng.integers(0, 2**31 - 1)),
        pan=(float(speed * np.cos(angle)), float(speed * np.sin(angle))),
    )


def anet_like_actions(
    duration: float,
    classes: Sequence[str] = CLASSES,
    seed: int | Sequence[int] = 0,
    num_actions: tuple[int, int] = (1, 2),
    coverage: tuple[float, float] = (0.2, 0.6),
) -> list[tuple[str, float, float]]:
    """ActivityNet-like ground truth of one video: ``num_actions`` (inclusive range) non-overlapping instances of
    ONE class (drawn from ``classes``; ActivityNet videos show one activity) that together cover a fraction
    ``coverage`` of the video, separated and framed by random gaps. Returns ``[(label, start_s, end_s), ...]`` for
    :func:`random_video_spec`'s ``actions``."""
    lo, hi = num_actions
    if not 1 <= lo <= hi:
        raise ValueError(f"num_actions must satisfy 1 <= min <= max, got {num_actions}")
    if not 0 < coverage[0] <= coverage[1] < 1:
        raise ValueError(f"coverage must satisfy 0 < min <= max < 1, got {coverage}")
    rng = np.random.default_rng(seed)
    label = str(rng.choice(list(classes)))
    k = int(rng.integers(lo, hi + 1))
    covered = float(rng.uniform(*coverage)) * duration
    lengths = covered * rng.dirichlet(np.full(k, 4.0))  # similar lengths, never tiny
    gaps = (duration - covered) * rng.dirichlet(np.full(k + 1, 2.0))  # before, between and after the instances
    out, t = [], 0.0
    for length, gap in zip(lengths, gaps[:-1]):
        t += float(gap)
        out.append((label, round(t, 3), min(round(t + float(length), 3), float(duration))))
        t += float(length)
    return out


def noisy_video_scores(label: str, classes: Sequence[str], seed: int | Sequence[int] = 0, accuracy: float = 0.9) -> list[float]:
    """Video-level class scores made from the ground-truth ``label``, the way a decent classifier looks: the true
    class gets a high noisy score (U(0.5, 0.95)) and the others low random ones (U(0, 0.3)), except that with
    probability ``1 - accuracy`` one wrong class outranks it. One float per class, ``classes`` order."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.0, 0.3, size=len(classes))
    true = list(classes).index(label)
    scores[true] = rng.uniform(0.5, 0.95)
    if len(classes) > 1 and rng.uniform() >= accuracy:
        wrong = int(rng.choice([i for i in range(len(classes)) if i != true]))
        scores[wrong] = min(1.0, scores[true] + rng.uniform(0.02, 0.2))
    return [round(float(x), 4) for x in scores]


def _check_size(size: Sequence[int]) -> None:
    if len(size) != 2 or any(int(v) < 16 or int(v) % 2 for v in size):
        raise ValueError(f"size must be (H, W) with even values >= 16 (H.264 4:2:0), got {tuple(size)}")


# ---------------------------------------------------------------------------------------------------------------------
# rendering


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A periodic, smooth, low-saturation colour noise texture ``[h, w, 3]`` float32 in [0, 255].

    Sum of three octaves of band-limited noise (FFT filtered, hence tileable), mapped to grey 60..190
    with a small per-channel tint, so saturated objects stand out.
    """
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    grey = np.zeros((h, w), np.float64)
    for cutoff, weight in ((0.03, 1.0), (0.08, 0.6), (0.25, 0.35)):
        spec = np.fft.fft2(rng.standard_normal((h, w))) * np.exp(-((f / cutoff) ** 2))
        layer = np.real(np.fft.ifft2(spec))
        grey += weight * layer / (layer.std() + 1e-9)
    grey = (grey - grey.min()) / (grey.max() - grey.min() + 1e-9)
    tint = rng.uniform(-12, 12, size=3)
    tex = 60 + 130 * grey[..., None] + tint
    return np.clip(tex, 0, 255).astype(np.float32)


def _smooth_walk(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """A smooth random offset sequence ``[n, 2]`` (x, y) with values roughly within ``±amplitude``."""
    if amplitude <= 0 or n == 0:
        return np.zeros((n, 2))
    knots = np.arange(0, n + 8, 4)
    vals = rng.uniform(-amplitude, amplitude, size=(len(knots), 2))
    t = np.arange(n)
    return np.stack([np.interp(t, knots, vals[:, k]) for k in range(2)], axis=1)


def _object_state(a: PlantedAction, p: float, t_rel: float) -> tuple[float, float, float, bool]:
    """Centre x, centre y, radius (S units) and visibility of action ``a`` at progress ``p`` in [0, 1)."""
    r, x = a.radius, a.x
    if a.label == "MoveRight":
        x = a.x - a.span + 2 * a.span * p
    elif a.label == "MoveLeft":
        x = a.x + a.span - 2 * a.span * p
    elif a.label in ("Grow", "Shrink"):
        r_end = a.radius_end if a.radius_end is not None else a.radius
        r = a.radius + (r_end - a.radius) * p
    elif a.label == STEADY:
        pass
    elif a.label == "Blink":
        return x, a.y, r, (t_rel % a.period) < 0.5 * a.period
    else:
        raise ValueError(f"unknown synthetic class {a.label!r}; known classes: {CLASSES}")
    return x, a.y, r, True


def render_video(spec: VideoSpec, chunk: int = 64) -> Iterator[np.ndarray]:
    """Render ``spec`` frame by frame.

    Yields:
        ``uint8`` RGB frames ``[H, W, 3]``, ``spec.num_frames`` of them.
    """
    _check_size(spec.size)
    h, w = spec.size
    n = spec.num_frames
    fps = float(as_fraction(spec.fps))
    rng = np.random.default_rng(spec.seed)
    th, tw = 2 * h, 2 * w
    tex = _texture(rng, th, tw)
    shake = _smooth_walk(rng, n, spec.jitter)  # camera jitter (x, y), pixels
    t_idx = np.arange(n)
    pan_x = spec.pan[0] * t_idx + shake[:, 0]
    pan_y = spec.pan[1] * t_idx + shake[:, 1]
    rows0, cols0 = np.arange(h), np.arange(w)
    side = min(h, w)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    objects = list(spec.actions) + list(spec.distractors)
    ranges = [frame_range(a.start, a.end, fps, n) for a in objects]
    for a in objects:
        if a.shape not in ("disk", "square"):
            raise ValueError(f"{spec.name}: action shape must be 'disk' or 'square', got {a.shape!r}")
    colors = [np.asarray(a.color, np.float32) for a in objects]

    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        # background, vectorised over the chunk: integer shift of the periodic texture
        oy = np.floor(pan_y[c0:c1]).astype(np.int64)
        ox = np.floor(pan_x[c0:c1]).astype(np.int64)
        rows = (rows0[None, :] + oy[:, None]) % th  # [t, h]
        cols = (cols0[None, :] + ox[:, None]) % tw  # [t, w]
        frames = tex[rows[:, :, None], cols[:, None, :]]  # [t, h, w, 3]
        for k, i in enumerate(range(c0, c1)):
            frame = frames[k]
            for a, (f0, f1), col in zip(objects, ranges, colors):
                if not f0 <= i < f1:
                    continue
                length = max(f1 - f0, 1)
                p = (i - f0) / length
                x, y, r, visible = _object_state(a, p, (i - f0) / fps)
                if not visible:
                    continue
                # object centre in pixels, shaken with the camera (the object lives in the scene)
                px = cx + x * side - shake[i, 0]
                py = cy + y * side - shake[i, 1]
                rp = max(r * side, 0.75)
                if a.shape == "disk":
                    dist = np.sqrt((xx - px) ** 2 + (yy - py) ** 2)
                else:
                    dist = np.maximum(np.abs(xx - px), np.abs(yy - py))
                alpha = np.clip(rp + 0.5 - dist, 0.0, 1.0)[..., None]  # anti-aliased edge
                frame += alpha * (col - frame)
            yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------------
# encoding


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float | Fraction,
    gop: int = 32,
    crf: int = 18,
    preset: str = "veryfast",
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
) -> int:
    """Encode RGB ``uint8`` frames ``[H, W, 3]`` into a video file with PyAV.

    Args:
        path: output file; the container format follows the extension (``.mp4``, ``.mkv``, ...).
        frames: iterable of frames, all of the same even size.
        fps: frame rate; use ``Fraction(30000, 1001)`` (or 29.97, converted) for NTSC rates.
        gop: keyframe interval in frames (short GOPs make random access cheap).
        crf, preset: x264 quality / speed.

    Returns:
        the number of frames written. The file is written to ``path + ".tmp"`` then renamed, so an
        interrupted run never leaves a truncated video under the final name.
    """
    import av

    rate = as_fraction(fps)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    count = 0
    try:
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream(
                codec,
                rate=rate,
                options={"crf": str(crf), "preset": preset, "threads": "1"} if codec == "libx264" else {},
            )
            stream.pix_fmt = pix_fmt
            if codec == "libx264":  # one encoder thread: FFmpeg's automatic slice threads made some encodes differ
                stream.codec_context.thread_count = 1
            stream.codec_context.gop_size = int(gop)
            stream.codec_context.time_base = 1 / rate
            for frame_np in frames:
                frame_np = np.ascontiguousarray(frame_np)
                if frame_np.dtype != np.uint8 or frame_np.ndim != 3 or frame_np.shape[2] != 3:
                    raise ValueError(f"{path}: frames must be uint8 [H, W, 3], got {frame_np.dtype} {frame_np.shape}")
                if count == 0:
                    stream.height, stream.width = frame_np.shape[:2]
                    if stream.height % 2 or stream.width % 2:
                        raise ValueError(f"{path}: H.264 {pix_fmt} needs even H and W, got {frame_np.shape[:2]}")
                frame = av.VideoFrame.from_ndarray(frame_np, format="rgb24").reformat(format=pix_fmt)
                frame.pts = count
                frame.time_base = stream.codec_context.time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
                count += 1
            if count == 0:
                raise ValueError(f"{path}: no frames to write")
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return count


# ---------------------------------------------------------------------------------------------------------------------
# datasets


def _params(**kw) -> dict:
    """JSON-normalised generation parameters (the cache key)."""
    out = {}
    for k, v in kw.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, Fraction):
            v = f"{v.numerator}/{v.denominator}"
        if isinstance(v, list):
            v = [f"{x.numerator}/{x.denominator}" if isinstance(x, Fraction) else x for x in v]
        out[k] = v
    return json.loads(json.dumps(out))


def generate_dataset(
    out_dir: str | os.PathLike,
    num_train: int = 32,
    num_test: int = 8,
    duration_range: tuple[float, float] = (20.0, 40.0),
    fps: float | Fraction = 30.0,
    size: tuple[int, int] = (64, 64),
    classes: Sequence[str] = CLASSES,
    seed: int = 0,
    fps_choices: Sequence[float | Fraction] | None = None,
    video_ext: str = "mp4",
    gop: int = 32,
    progress: bool = True,
    distractor_prob: float = 0.0,
    same_segment_prob: float = 0.0,
    overlap_prob: float = 0.2,
    layout: str = "thumos",
    classifier_accuracy: float = 0.9,
) -> dict:
    """Write a synthetic TAD dataset (or reuse the one already there).

    Layout::

        out_dir/videos/<name>.<video_ext>        H.264, yuv420p
        out_dir/annotations/anno.json            OpenTAD format, subsets "training" (train) / "validation" (test)
        out_dir/annotations/category_idx.txt     one class name per line, in ``classes`` order
        out_dir/synthetic_manifest.json          parameters + generator version (the cache key)

    ``layout="anet"`` (ActivityNet-like, OpenTAD's ActivityNet layout): one class per video and 1-2 long
    instances covering 20-60 % of it (:func:`anet_like_actions`), videos ``videos/v_<name>.<video_ext>`` (the
    annotation ids have no ``v_``, as ActivityNet's), ``annotations/activity_net.v1-3.min.json``, and a
    video-level classifier ``classifiers/cuhk_val_simp_7.json`` (CUHK layout ``{"results": {id: [score per
    class]}, "class": [names]}``, test videos, :func:`noisy_video_scores` with ``classifier_accuracy``); the
    returned dict then also has ``"classifier_file"``.

    Video ``i`` of a split depends only on ``(seed, split, i)`` and the other parameters, so
    ``num_train`` does not change the test videos.

    Args:
        out_dir: dataset root (created).
        num_train, num_test: number of videos per split (names ``synth_train_0000``, ``synth_test_0000``, ...).
        duration_range: video durations are drawn uniformly in this range (seconds).
        fps: frame rate of all videos, unless ``fps_choices`` is given (then each video draws one of them).
        size: ``(H, W)``, even.
        classes: subset of :data:`CLASSES`; its order defines the class indices.
        seed: master seed.
        video_ext: container extension (``"mp4"``, ``"mkv"``).
        gop: keyframe interval in frames.
        progress: show a tqdm bar.
        distractor_prob: probability that an empty stretch shows a steady, unannotated object (harder data:
            only motion, not presence, then marks an action). 0 by default.
        same_segment_prob: probability that an overlapping pair of actions shares one segment (multi-label
            ground truth, see :func:`random_video_spec`). 0 by default.
        overlap_prob: probability that an action gets a second, overlapping action of another class (0.2).
        layout: ``"thumos"`` (default) or ``"anet"`` (see above).
        classifier_accuracy: ``layout="anet"``: how often the generated classifier ranks the true class first.

    Returns:
        ``{"root", "video_dir", "anno_file", "class_file", "manifest"}`` as strings, plus ``"cached"`` (bool):
        True when an identical dataset was already there and nothing was written.
    """
    classes = list(classes)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names from {CLASSES}, got {classes}")
    if num_train < 0 or num_test < 0 or num_train + num_test == 0:
        raise ValueError(f"need at least one video, got num_train={num_train}, num_test={num_test}")
    lo, hi = map(float, duration_range)
    if not 0 < lo <= hi:
        raise ValueError(f"duration_range must satisfy 0 < min <= max, got {duration_range}")
    _check_size(size)
    video_ext = video_ext.lstrip(".")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    anet = layout == "anet"
    prefix = ANET_VIDEO_PREFIX if anet else ""
    fps_list = [as_fraction(f) for f in (fps_choices if fps_choices else [fps])]

    root = Path(out_dir)
    video_dir = root / "videos"
    anno_dir = root / "annotations"
    paths = {
        "root": str(root),
        "video_dir": str(video_dir),
        "anno_file": str(anno_dir / (ANET_ANNOTATION if anet else "anno.json")),
        "class_file": str(anno_dir / "category_idx.txt"),
        "manifest": str(root / MANIFEST_NAME),
    }
    classifier_file = root / "classifiers" / ANET_CLASSIFIER
    if anet:
        paths["classifier_file"] = str(classifier_file)
    params = _params(
        version=GENERATOR_VERSION,
        num_train=int(num_train),
        num_test=int(num_test),
        duration_range=[lo, hi],
        fps=as_fraction(fps),
        size=[int(size[0]), int(size[1])],
        classes=classes,
        seed=int(seed),
        fps_choices=fps_list if fps_choices else None,
        video_ext=video_ext,
        gop=int(gop),
        distractor_prob=float(distractor_prob),
        **({"same_segment_prob": float(same_segment_prob)} if same_segment_prob > 0 else {}),  # old caches stay valid
        **({"overlap_prob": float(overlap_prob)} if overlap_prob != 0.2 else {}),
    )
    if anet:  # only then: the cache key of the THUMOS-like sets is unchanged
        params.update(layout=layout, classifier_accuracy=float(classifier_accuracy))
    manifest_path = Path(paths["manifest"])
    old_videos: list[str] = []
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text())
            old_videos = list(old.get("videos", []))
            if (
                old.get("params") == params
                and all((video_dir / v).is_file() for v in old_videos)
                and Path(paths["anno_file"]).is_file()
                and Path(paths["class_file"]).is_file()
                and (not anet or classifier_file.is_file())
            ):
                return {**paths, "cached": True}
        except (json.JSONDecodeError, OSError, TypeError, AttributeError):
            old_videos = []
        manifest_path.unlink()  # stale: rewritten at the very end, after every video

    specs: list[tuple[str, VideoSpec]] = []
    for split, count in (("train", num_train), ("test", num_test)):
        split_id = 0 if split == "train" else 1
        for i in range(count):
            rng = np.random.default_rng([int(seed), split_id, i, 0])
            dur = float(rng.uniform(lo, hi))
            vid_fps = fps_list[int(rng.integers(len(fps_list)))]
            planted = None
            if anet:  # on the video's exact duration (a whole number of frames)
                exact = float(max(1, int(round(dur * float(vid_fps)))) / vid_fps)
                planted = anet_like_actions(exact, classes, seed=[int(seed), split_id, i, 2])
            spec = random_video_spec(
                f"synth_{split}_{i:04d}",
                dur,
                vid_fps,
                size,
                classes,
                seed=[int(seed), split_id, i, 1],
                distractor_prob=distractor_prob,
                same_segment_prob=same_segment_prob,
                overlap_prob=overlap_prob,
                actions=planted,
            )
            specs.append((split, spec))

    video_dir.mkdir(parents=True, exist_ok=True)
    anno_dir.mkdir(parents=True, exist_ok=True)
    new_names = {f"{prefix}{spec.name}.{video_ext}" for _, spec in specs}
    for stale in old_videos:  # only files this generator wrote before
        if stale not in new_names and (video_dir / stale).is_file():
            (video_dir / stale).unlink()

    iterator: Iterable = specs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(specs, desc=f"synthetic videos -> {video_dir}", unit="video")
    database = {}
    for split, spec in iterator:
        write_video(video_dir / f"{prefix}{spec.name}.{video_ext}", render_video(spec), spec.fps, gop=gop)
        database[spec.name] = {
            "subset": SUBSET_NAMES[split],
            "duration": spec.duration,
            "frame": spec.num_frames,
            "fps": float(as_fraction(spec.fps)),
            "annotations": [{"segment": [a.start, a.end], "label": a.label} for a in spec.actions],
        }

    _atomic_write(Path(paths["anno_file"]), json.dumps({"database": database}, indent=1) + "\n")
    _atomic_write(Path(paths["class_file"]), "".join(f"{c}\n" for c in classes))
    if anet:
        scores = {
            spec.name: noisy_video_scores(spec.actions[0].label, classes, [int(seed), 1, i, 3], classifier_accuracy)
            for i, (_, spec) in enumerate(s for s in specs if s[0] == "test")
        }
        classifier_file.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(classifier_file, json.dumps({"results": scores, "class": classes}) + "\n")
    manifest = {
        "generator": "adatad.data.synthetic",
        "params": params,
        "videos": sorted(new_names),
        "specs": {spec.name: _spec_to_json(spec) for _, spec in specs},
    }
    _atomic_write(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return {**paths, "cached": False}


def _spec_to_json(spec: VideoSpec) -> dict:
    d = asdict(spec)
    fps = as_fraction(spec.fps)
    d["fps"] = f"{fps.numerator}/{fps.denominator}"
    return d


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
