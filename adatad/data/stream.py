"""Decode-once sliding windows: read a video once, forward, and cut all of its windows from memory.

Test windows overlap (by half in the THUMOS recipes) and only every ``snippet_stride``-th frame is used, so
decoding each window on its own decodes every frame of the video, about twice. :func:`stream_windows` instead
asks the reader for the union of the windows' frames in increasing order (``VideoReader.iter_frames``: one
forward decode), keeps only those frames, and yields each window as soon as its last frame has arrived. Frames
no window still to come needs are dropped at once, so at most the frames of the windows currently open are held
(``<= window_size`` frames for windows that start in increasing order, however long the video): a 2-hour video
never needs its whole frame array. A window's frames are exactly what ``reader.get_frames`` returns for it
(same indices from :func:`adatad.data.windows.padded_window`, same decoder). The reader skips the frames that
neither a window nor another frame needs (``VideoReader``: unreferenced B-frames off the snippet grid), and a
deterministic frame-by-frame transform (``frame_fn``: the test transform) runs once per frame, not once per window
that holds it.

:class:`VideoStreamDataset` runs the test/validation loader on it: every (rank, DataLoader worker) takes whole
videos (balanced by frame count, each window of the dataset exactly once over all ranks and workers) and yields
collated batches of items identical to :class:`adatad.data.datasets.SlidingWindowDataset`'s ``__getitem__``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from .video import VideoError
from .windows import padded_window

__all__ = ["stream_windows", "balance", "VideoStreamDataset"]


def _ordered_frames(reader, needed: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, frame)`` for sorted distinct ``needed``: the reader's forward iterator, or ``get_frames`` on runs
    (a reader with only the ``get_frames`` interface, e.g. a cache)."""
    sequential = getattr(reader, "iter_frames", None)
    if sequential is not None:
        yield from sequential(needed)
        return
    for c in range(0, len(needed), 64):
        part = needed[c : c + 64]
        yield from zip(part.tolist(), reader.get_frames(part))


def stream_windows(
    reader,
    frame_grid: Sequence[int] | np.ndarray,
    windows: Sequence[tuple[int, int]],
    window_size: int,
    on_error: Callable[[int, VideoError], np.ndarray] | None = None,
    stats: dict | None = None,
    frame_fn: Callable[[np.ndarray], torch.Tensor] | None = None,
    chunk: int = 16,
) -> Iterator[tuple[int, np.ndarray | torch.Tensor, np.ndarray]]:
    """Every window of one video from a single forward decode.

    Args:
        reader: an open :class:`adatad.data.video.VideoReader` (or any object with ``num_frames`` and
            ``get_frames``; ``iter_frames`` is used when present).
        frame_grid: the frame index of each grid position (``arange(0, num_frames, stride)`` for the datasets,
            the time-based plan of ``adatad infer``); non-decreasing.
        windows: ``(start, end)`` grid positions of each window (end exclusive), as from
            :func:`adatad.data.windows.sliding_windows`.
        window_size: grid positions per window (short windows are padded as :func:`padded_window` does).
        on_error: called as ``on_error(window_no, error)`` for a window whose frames cannot be decoded; returns
            the frames to use instead. None: the :class:`VideoError` propagates. After a decode error the
            remaining windows are decoded one by one with ``reader.get_frames`` (exactly the per-window path), so
            each window fails or succeeds as it would on its own.
        stats: if given, receives ``peak_frames`` (most frames held at once), ``decoded_frames`` (distinct
            frames read) and ``fallback_windows`` (windows decoded one by one after an error).
        frame_fn: a deterministic frame-by-frame transform, uint8 ``[n, H, W, 3]`` -> tensor ``[n, C, ...]``
            (e.g. :class:`adatad.data.transforms.EvalTransform`'s resize and centre crop), applied once to each
            decoded frame, ``chunk`` frames at a time, before it is buffered: overlapping windows share the
            transformed frames instead of transforming them again (half the transform work at overlap 0.5, and
            the buffer holds the smaller transformed frames). Windows then come as ``[C, window_size, ...]``,
            equal to ``frame_fn`` applied to the whole window as long as ``frame_fn`` treats frames independently.

    Yields ``(window_no, frames uint8 [window_size, H, W, 3], mask bool [window_size])`` for every window, in the
    order their last frame is reached (the order of ``windows`` for sliding windows); with ``frame_fn``,
    ``frames`` is the tensor ``[C, window_size, ...]``.
    """
    num_frames = int(reader.num_frames)
    grid = np.asarray(frame_grid, dtype=np.int64)
    plans = [padded_window(grid, int(s), int(e), int(window_size), num_frames) for s, e in windows]
    if stats is not None:
        stats.update(peak_frames=0, decoded_frames=0, fallback_windows=0)
    if not plans:
        return
    last = np.array([int(p[0].max()) for p in plans])
    first = np.array([int(p[0].min()) for p in plans])
    order = sorted(range(len(plans)), key=lambda k: (last[k], k))
    # lowest first frame of the windows from position j of `order` on: frames below it are no longer needed
    keep_from = np.minimum.accumulate(first[order][::-1])[::-1].tolist() + [num_frames]
    needed = np.unique(np.concatenate([p[0] for p in plans]))
    buffer: dict[int, np.ndarray | torch.Tensor] = {}
    pending: list[tuple[int, np.ndarray]] = []  # decoded frames waiting for frame_fn

    def flush() -> None:
        out = frame_fn(np.stack([f for _, f in pending]))  # type: ignore[misc]
        buffer.update((i, out[n]) for n, (i, _) in enumerate(pending))
        pending.clear()

    def assemble(frames: list) -> np.ndarray | torch.Tensor:
        return np.stack(frames, axis=0) if frame_fn is None else torch.stack(frames, dim=1)

    j = 0
    try:
        for fi, frame in _ordered_frames(reader, needed):
            fi = int(fi)
            if frame_fn is None:
                buffer[fi] = frame
            else:
                pending.append((fi, frame))
            if stats is not None:
                stats["decoded_frames"] += 1
                stats["peak_frames"] = max(stats["peak_frames"], len(buffer) + len(pending))
            done = j < len(order) and last[order[j]] <= fi
            if pending and (done or len(pending) >= chunk):
                flush()
            while j < len(order) and last[order[j]] <= fi:
                k = order[j]
                idx, mask = plans[k]
                frames = assemble([buffer[int(i)] for i in idx])
                j += 1
                for old in [i for i in buffer if i < keep_from[j]]:
                    del buffer[old]
                yield k, frames, mask
    except VideoError:
        pass  # the remaining windows go one by one below, each as the per-window path would see it
    buffer.clear()
    pending.clear()
    for k in order[j:]:
        idx, mask = plans[k]
        if stats is not None:
            stats["fallback_windows"] += 1
        try:
            frames = reader.get_frames(idx)
        except VideoError as e:
            if on_error is None:
                raise
            frames = on_error(k, e)
        yield k, (frames if frame_fn is None else assemble(list(frame_fn(frames)))), mask


def balance(costs: Sequence[float], bins: int) -> list[list[int]]:
    """Split items with ``costs`` into ``bins`` groups of near-equal total cost (longest first, each to the
    lightest group; ties to the lowest group number): deterministic, so every process computes the same split.
    -> the item indices of each group, each in the order assigned."""
    groups: list[list[int]] = [[] for _ in range(max(1, bins))]
    heap = [(0.0, b) for b in range(len(groups))]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, b = heapq.heappop(heap)
        groups[b].append(i)
        heapq.heappush(heap, (load + float(costs[i]), b))
    return groups


class VideoStreamDataset(torch.utils.data.IterableDataset):
    """The decode-once test/validation loader's dataset: collated batches of ``dataset``'s windows, each video
    read once by one (rank, worker).

    Args:
        dataset: a :class:`adatad.data.datasets.SlidingWindowDataset` (its ``iter_video`` does the decoding).
        batch_size: items per batch (per process); a worker's last batch may be partial.
        collate_fn: items -> batch.
        rank, world_size: this process and how many share the windows.
        num_workers: the DataLoader's workers (needed for the exact number of batches).
        seed: the run seed; item ``i`` gets the seed the map-style loader's sampler gives it
            (``sample_seed(seed, 0, i)``), so items are identical to that path's.

    Videos are split over ranks, then over each rank's workers, by frame count (:func:`balance`); ``len()`` is the
    exact number of batches this process yields. Use with ``DataLoader(batch_size=None)``.
    """

    def __init__(
        self, dataset, batch_size: int, collate_fn, rank: int = 0, world_size: int = 1, num_workers: int = 0, seed: int | None = None
    ):
        super().__init__()
        self.dataset = dataset
        self.videos = dataset.videos
        self.batch_size = int(batch_size)
        self.collate_fn = collate_fn
        self.seed = seed
        windows_of: dict[int, int] = {}
        for w in dataset.windows:
            windows_of[w[0]] = windows_of.get(w[0], 0) + 1
        vids = sorted(windows_of)
        frames = [float(self.videos[v].frames) for v in vids]
        mine = [vids[i] for i in balance(frames, world_size)[rank]]
        self.worker_videos = [[mine[i] for i in g] for g in balance([float(self.videos[v].frames) for v in mine], max(1, num_workers))]
        self._batches = sum(math.ceil(sum(windows_of[v] for v in g) / self.batch_size) for g in self.worker_videos)
        self.num_windows = sum(windows_of[v] for v in mine)

    def __len__(self) -> int:
        return self._batches

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        videos = self.worker_videos[worker] if worker < len(self.worker_videos) else []
        batch: list[dict] = []
        for vi in videos:
            for item in self.dataset.iter_video(vi, seed=self.seed):
                batch.append(item)
                if len(batch) == self.batch_size:
                    yield self.collate_fn(batch)
                    batch = []
        if batch:
            yield self.collate_fn(batch)
