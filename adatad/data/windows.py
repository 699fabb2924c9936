"""Temporal windows over a video's snippet grid (OpenTAD semantics, raw-video THUMOS configs).

Snippet ``k`` is frame ``k * snippet_stride``; a video of ``F`` frames has ``ceil(F / snippet_stride)``
snippets (``len(arange(0, F, snippet_stride))``). All segment coordinates here are in snippet units.

* :func:`random_truncation` (training): one window of ``window_size`` snippets at a uniformly random offset,
  retried up to 200 times until at least one ground-truth instance keeps ``>= trunc_thresh`` of its length;
  kept instances are clipped to the window and shifted to window-relative coordinates. A video with
  ``<= window_size`` snippets is instead cut to a random length in ``crop_ratio`` of itself (and kept whole
  when that length equals its own). Short windows are padded by repeating the last snippet, mask false.
* :func:`sliding_windows` (testing): windows of ``window_size`` with stride ``int(window_size * (1 - overlap))``
  starting at ``i * stride`` for ``i < max(1, n // stride)``; the window that would pass the end is moved back
  to end at the last snippet (start >= 0) and is the last one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

__all__ = [
    "TruncatedWindow",
    "random_truncation",
    "sliding_windows",
    "gt_completeness",
    "padded_window",
    "num_snippets",
]


def num_snippets(num_frames: int, snippet_stride: int = 4) -> int:
    """Number of snippets of a video: ``len(range(0, num_frames, snippet_stride))``."""
    return max(0, -(-int(num_frames) // int(snippet_stride)))


def _randint(rng, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]`` (both inclusive) from a numpy Generator, ``random.Random`` or None."""
    if rng is None:
        return random.randint(low, high)
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(low, high + 1))
    return int(rng.randint(low, high))


@dataclass
class TruncatedWindow:
    """Result of :func:`random_truncation`.

    Attributes:
        start: first snippet of the window (video snippet index).
        length: number of valid snippets (``<= window_size``).
        snippets: int64 ``[window_size]`` video snippet indices, padded by repeating the last valid one.
        mask: bool ``[window_size]``, true on the ``length`` valid snippets.
        segments: float32 ``[N, 2]`` kept instances, clipped to the window, window-relative snippet units.
        keep: int64 ``[N]`` indices of the kept instances in the input ``segments``.
    """

    start: int
    length: int
    snippets: np.ndarray
    mask: np.ndarray
    segments: np.ndarray
    keep: np.ndarray


def _pad(start: int, length: int, window_size: int) -> tuple[np.ndarray, np.ndarray]:
    snippets = np.arange(start, start + length, dtype=np.int64)
    mask = np.zeros(window_size, dtype=bool)
    mask[:length] = True
    if length < window_size:
        last = snippets[-1] if length > 0 else start
        snippets = np.concatenate([snippets, np.full(window_size - length, last, dtype=np.int64)])
    return snippets, mask


def random_truncation(
    num_snippets: int,
    segments,
    window_size: int = 768,
    trunc_thresh: float = 0.75,
    crop_ratio: tuple[float, float] | None = (0.9, 1.0),
    rng=None,
    max_trials: int = 200,
) -> TruncatedWindow:
    """Random training window, as OpenTAD's ``LoadFrames(method="random_trunc")``.

    Args:
        num_snippets: snippets in the video (see :func:`num_snippets`).
        segments: ``[N, 2]`` ground truth in video snippet units (float).
        window_size: snippets per window (``trunc_len``).
        trunc_thresh: minimum fraction of an instance's length inside the window to keep it.
        crop_ratio: for videos with ``<= window_size`` snippets, the random length range (fractions of the
            video); None keeps such videos whole.
        rng: ``numpy.random.Generator``, ``random.Random`` or None (global ``random``).
        max_trials: attempts to find a window holding one instance; after that the last attempt is used.
    """
    n = int(num_snippets)
    if n <= 0:
        raise ValueError("random_truncation needs a video with at least one snippet")
    seg = np.asarray(segments, dtype=np.float32).reshape(-1, 2)
    trunc_len = int(window_size)
    whole = False
    if n <= trunc_len:
        if crop_ratio is None:
            whole = True
        else:
            trunc_len = _randint(rng, max(round(crop_ratio[0] * n), 1), min(round(crop_ratio[1] * n), n))
            whole = trunc_len == n
    if whole:  # the video is used whole, every instance kept as is
        snippets, mask = _pad(0, n, window_size)
        return TruncatedWindow(0, n, snippets, mask, seg.copy(), np.arange(len(seg), dtype=np.int64))

    area = np.abs(seg[:, 1] - seg[:, 0])
    for _ in range(max_trials):
        st = _randint(rng, 0, n - trunc_len)
        ed = st + trunc_len
        left = np.maximum(np.float32(st), seg[:, 0])
        right = np.minimum(np.float32(ed), seg[:, 1])
        inter = np.clip(right - left, 0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = inter / area
        keep = ratio >= trunc_thresh
        if keep.any():
            break
    kept = np.stack([left[keep], right[keep]], axis=1).astype(np.float32) - np.float32(st)
    snippets, mask = _pad(st, trunc_len, window_size)
    return TruncatedWindow(st, trunc_len, snippets, mask, kept.reshape(-1, 2), np.nonzero(keep)[0].astype(np.int64))


def sliding_windows(num_snippets: int, window_size: int = 768, overlap_ratio: float = 0.5) -> list[tuple[int, int]]:
    """Test windows ``[(start, end), ...]`` in snippet indices (end exclusive; ``end - start <= window_size``)."""
    n = int(num_snippets)
    stride = int(window_size * (1 - overlap_ratio))
    if stride <= 0:
        raise ValueError(f"window stride must be positive (window_size={window_size}, overlap={overlap_ratio})")
    out: list[tuple[int, int]] = []
    for i in range(max(1, n // stride)):
        start = i * stride
        end = start + window_size
        last = False
        if end > n:
            end = n
            start = max(0, end - window_size)
            last = True
        out.append((start, end))
        if last:
            break
    return out


def gt_completeness(segments, window: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of each instance inside ``window`` and the instances clipped to it (OpenTAD's validation rule).

    Args:
        segments: ``[N, 2]``; window: ``(start, end)`` in the same units.
    Returns: ``(completeness [N], clipped [N, 2])``.
    """
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    ws, we = window
    scores = np.zeros(len(seg))
    inside = (seg[:, 0] < we) & (seg[:, 1] > ws)
    v = seg[inside]
    scores[inside] = (np.minimum(v[:, 1], we) - np.maximum(v[:, 0], ws)) / np.maximum(v[:, 1] - v[:, 0], 1e-6)
    clipped = np.stack([np.maximum(seg[:, 0], ws), np.minimum(seg[:, 1], we)], axis=1)
    return scores, clipped


def padded_window(snippet_frames: np.ndarray, start: int, end: int, window_size: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of snippets ``[start, end)`` of a video and the window's mask (sliding-window test path).

    ``snippet_frames``: the frame index of each snippet of the video (``arange(0, F, stride)`` for the dataset,
    the time-based plan of ``adatad infer``). Snippets past the end of ``snippet_frames`` (a decoder that holds
    fewer frames than the annotation says) are dropped; the window is padded to ``window_size`` by repeating
    its last frame (the video's last frame when none is left) and indices are clipped to ``[0, num_frames-1]``.
    -> (int64 ``[window_size]`` frame indices, bool ``[window_size]`` mask, true on the real snippets).
    """
    n = len(snippet_frames)
    idx = np.asarray(snippet_frames[min(start, n) : min(end, n)], dtype=np.int64)
    valid = len(idx)
    if valid == 0:
        idx = np.array([num_frames - 1], dtype=np.int64)
    if len(idx) < window_size:
        idx = np.pad(idx, (0, window_size - len(idx)), mode="edge")
    mask = np.zeros(window_size, dtype=bool)
    mask[:valid] = True
    return np.clip(idx, 0, num_frames - 1), mask
