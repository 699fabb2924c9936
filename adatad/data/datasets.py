"""Datasets over raw videos (OpenTAD THUMOS semantics) and the batch collate.

Item (both datasets), consumed by :func:`collate`:
    ``inputs`` uint8 ``[3, T, H, W]`` (after the transform; raw frames if ``transform`` is None),
    ``masks`` bool ``[T]``, ``gt_segments`` float32 ``[N, 2]`` (snippet units, window-relative),
    ``gt_labels`` int64 ``[N]``, ``metas`` dict with ``video_name, fps, duration, snippet_stride,
    window_start_frame, window_size, offset_frames`` (+ ``num_frames``, ``window_start_snippet``, ``valid_len``).

Batch from :func:`collate`: ``inputs`` uint8 ``[B, 3, T, H, W]``, ``masks`` bool ``[B, T]``, ``gt_segments`` /
``gt_labels`` / ``metas`` lists of length B.

Snippet ``k`` is frame ``k * snippet_stride`` (``snippet_stride = feature_stride * sample_stride``); the snippet
grid of a video comes from the decoder's frame count (as OpenTAD's decord-based loader), frame indices are
clipped to ``[0, num_frames - 1]``. Ground truth is converted from seconds to frames with the annotation
file's own frame count (``int(t / duration * frame)``), then to snippets by dividing by the stride.

``scale_factor`` ``s`` (OpenTAD's ``LoadFrames(scale_factor=s)``): the backbone sees ``s`` frames per snippet, on
the finer grid of frames ``0, f, 2f, ...`` with ``f = snippet_stride / s``; a window of ``window_size`` snippets
holds ``window_size * s`` frames (``inputs`` ``[3, window_size * s, H, W]``) while ``masks`` and ground truth stay
in snippets (the backbone's features are interpolated back to ``window_size``). Random truncation runs on the
fine grid (window ``window_size * s``, ground truth ``* s``, then ``/ s``), and a window's valid snippets are its
valid frames ``// s``, as in OpenTAD. With ``s = 1`` (every AdaTAD 160 px recipe) the fine grid is the snippet grid.

Randomness (the project's one seeding mechanism): an item is requested either as a plain ``index`` or as
``(index, seed)``. With a seed, every random draw of that item (truncation offset, crop, flip, augmentation
parameters) comes from generators derived from that seed alone (:func:`item_generators`), so an item is a pure
function of ``(index, seed)``: independent of DataLoader workers and their scheduling, and reproducible on
resume. The engine's sampler (:class:`adatad.engine.sampler.ResumableSampler`) pairs each index with the seed
``sample_seed(run seed, epoch, index)``. A plain index draws from the process's global RNGs instead (ad-hoc use).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch

from adatad.annotation_io import load_class_map
from adatad.errors import UserError

from .annotations import VideoInfo, load_annotations
from .cache import CacheReader, CacheSpec, scan_cache, short_side_resolution
from .stream import stream_windows
from .video import VideoError, VideoReader
from .windows import gt_completeness, num_snippets, padded_window, random_truncation, sliding_windows

__all__ = ["TrainDataset", "SlidingWindowDataset", "collate", "item_generators", "MissingVideosError"]

log = logging.getLogger(__name__)


class MissingVideosError(UserError, FileNotFoundError):
    """Videos named in the annotation file are not in ``data_path``."""


def item_generators(seed: int | None) -> tuple[np.random.Generator | None, torch.Generator | None]:
    """(numpy generator for window choices, torch generator for augmentation) derived from one item seed;
    ``(None, None)`` without a seed (the global RNGs are used)."""
    if seed is None:
        return None, None
    a, b = np.random.SeedSequence(int(seed)).generate_state(2, dtype=np.uint64)
    return np.random.default_rng(int(a)), torch.Generator().manual_seed(int(b) & (2**63 - 1))


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of item ``index`` in ``epoch`` of a run seeded with ``seed`` (NumPy's SeedSequence mixing)."""
    return int(np.random.SeedSequence((int(seed), int(epoch), int(index))).generate_state(1, dtype=np.uint32)[0])


def replacement_seed(seed: int, attempt: int) -> int:
    """The seed of the ``attempt``-th replacement of an item seeded with ``seed`` (its video failed to decode)."""
    return int(np.random.SeedSequence((int(seed), 0xBADF, int(attempt))).generate_state(1, dtype=np.uint32)[0])


def load_with_replacement(videos: Sequence[VideoInfo], index: int, seed: int | None, load) -> dict:
    """Training items survive bad videos: ``load(index, seed)``, and when its video fails to decode
    (:class:`VideoError`), ``load(index + attempt, replacement_seed(seed, attempt))`` for ``attempt = 1, 2, ...``
    (modulo ``len(videos)``), so the replacement is a function of ``(index, seed)`` alone (exact resume holds).
    ``metas["bad_samples"]`` of the returned item lists each failure (``video``, ``path``, ``frame``, ``error``): the
    trainer counts and logs them (this may be a worker). All videos failing raises :class:`VideoError`."""
    failures: list[dict] = []
    for attempt in range(len(videos)):
        j = (index + attempt) % len(videos)
        try:
            out = load(j, seed if seed is None or attempt == 0 else replacement_seed(seed, attempt))
        except VideoError as e:
            failures.append({"video": videos[j].name, "path": str(videos[j].path), "frame": e.frame, "error": str(e)})
            continue
        out["metas"]["bad_samples"] = failures
        return out
    raise VideoError(
        f"all {len(videos)} training videos failed to decode (first: {failures[0]['error']}); "
        "run `adatad prepare check --decode` to list the bad files"
    )


def _split_item(item) -> tuple[int, int | None]:
    if isinstance(item, tuple):
        index, seed = item
        return int(index), int(seed)
    return int(item), None


def _check_videos_exist(videos: list[VideoInfo], data_path, skip_missing: bool) -> list[VideoInfo]:
    missing = [v for v in videos if v.path is None or not v.path.is_file()]
    if not missing:
        return videos
    names = ", ".join(str(v.path) for v in missing[:20]) + (f" ... ({len(missing)} in all)" if len(missing) > 20 else "")
    if not skip_missing:
        raise MissingVideosError(
            f"{len(missing)} of {len(videos)} videos are missing in {data_path}: {names}. Download them, fix "
            "data_path / video_ext, or set skip_missing=True (dataset.skip_missing) to train without them."
        )
    log.warning("skipping %d missing videos in %s: %s", len(missing), data_path, names)
    keep = [v for v in videos if v not in missing]
    if not keep:
        raise MissingVideosError(f"all {len(videos)} videos are missing in {data_path}")
    return keep


def _as_tensor_clip(frames: np.ndarray, transform, generator) -> torch.Tensor:
    if transform is not None:
        return transform(frames, generator)
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).contiguous()  # [3, T, H, W]


class _VideoDatasetBase(torch.utils.data.Dataset):
    def __init__(
        self,
        ann_file,
        class_map,
        data_path,
        subset_name,
        window_size: int,
        feature_stride: int,
        sample_stride: int,
        transform,
        block_list,
        video_ext: str,
        skip_missing: bool,
        backend: str,
        offset_frames: int,
        decode_threads: int,
        scale_factor: int = 1,
        cache_dir=None,
        fps: float = -1,
        filter_gt: bool = False,
    ):
        self.ann_file = str(ann_file)
        self.class_map = load_class_map(class_map) if not isinstance(class_map, (list, tuple)) else list(class_map)
        self.data_path = str(data_path)
        self.subset_name = subset_name
        self.window_size = int(window_size)
        self.feature_stride = int(feature_stride)
        self.sample_stride = int(sample_stride)
        self.snippet_stride = self.feature_stride * self.sample_stride
        self.scale_factor = int(scale_factor)
        if self.scale_factor < 1 or self.snippet_stride % self.scale_factor:
            raise ValueError(f"dataset.scale_factor={scale_factor} must be a positive divisor of the snippet stride "
                             f"{self.snippet_stride} (feature_stride x sample_stride), as in OpenTAD")  # fmt: skip
        self.frame_stride = self.snippet_stride // self.scale_factor  # frames between two frames the backbone sees
        self.offset_frames = int(offset_frames)
        self.transform = transform
        self.backend = backend
        self.decode_threads = decode_threads
        self.fps = fps  # OpenTAD's dataset fps: > 0 (EPIC: 30) fixes the frame rate; -1: each video's frame / duration
        videos = load_annotations(ann_file, self.class_map, subset_name, block_list, data_path, video_ext, fps=fps, filter_gt=filter_gt)
        self.videos = _check_videos_exist(videos, data_path, skip_missing)
        # snippet cache (adatad prepare cache): metas of the cached videos; the others are read from their files
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self._cached: dict[str, dict] = {}
        if self.cache_dir is not None:
            # a cache stored at the transform's first resize (prepare cache --resolution transform) serves this split
            # exactly when that resize is this split's too; the source resolution serves every split
            short = getattr(transform, "short_side", None)
            resolution = "source" if short is None else short_side_resolution(int(short))
            spec = CacheSpec(self.feature_stride, self.sample_stride, self.scale_factor, resolution=resolution, backend=self.backend)
            self._cached = scan_cache(self.cache_dir, self.videos, spec)

    def _open(self, v: VideoInfo) -> VideoReader | CacheReader:
        if v.name in self._cached:
            return CacheReader(self.cache_dir, v.name, self._cached[v.name])
        assert v.path is not None  # _check_videos_exist kept only videos with a file
        return VideoReader(v.path, backend=self.backend, num_threads=self.decode_threads)

    def _metas(self, v: VideoInfo, reader: VideoReader | CacheReader, start_snippet: int, valid_len: int) -> dict:
        return {
            "video_name": v.name,
            "fps": v.fps,
            "duration": v.duration,
            "snippet_stride": self.snippet_stride,
            "window_start_frame": int(start_snippet * self.snippet_stride),
            "window_size": self.window_size,
            "offset_frames": self.offset_frames,
            "window_start_snippet": int(start_snippet),
            "valid_len": int(valid_len),
            "num_frames": int(reader.num_frames),
        }


class TrainDataset(_VideoDatasetBase):
    """One random window per video per epoch (OpenTAD ``ThumosPaddingDataset`` + ``LoadFrames(random_trunc)``).

    Videos with no usable ground truth (after skipping Ambiguous) are left out, as in OpenTAD.
    ``transform(frames [T,H,W,3] uint8 numpy, generator) -> uint8 [3,T,h,w]``, e.g.
    :class:`adatad.data.transforms.TrainTransform`.
    """

    def __init__(
        self,
        ann_file,
        class_map,
        data_path,
        subset_name="training",
        window_size: int = 768,
        feature_stride: int = 4,
        sample_stride: int = 1,
        trunc_thresh: float = 0.75,
        crop_ratio: tuple[float, float] | None = (0.9, 1.0),
        transform=None,
        block_list=None,
        video_ext: str = "mp4",
        skip_missing: bool = False,
        backend: str = "pyav",
        offset_frames: int = 0,
        decode_threads: int = 0,
        scale_factor: int = 1,
        cache_dir=None,
        fps: float = -1,
        filter_gt: bool = False,
    ):
        super().__init__(
            ann_file, class_map, data_path, subset_name, window_size, feature_stride, sample_stride, transform,
            block_list, video_ext, skip_missing, backend, offset_frames, decode_threads, scale_factor, cache_dir,
            fps=fps, filter_gt=filter_gt,
        )  # fmt: skip
        self.trunc_thresh = trunc_thresh
        self.crop_ratio = (float(crop_ratio[0]), float(crop_ratio[1])) if crop_ratio is not None else None
        no_gt = [v.name for v in self.videos if len(v.segments) == 0]
        if no_gt:
            log.info("training set: %d videos without ground truth left out: %s", len(no_gt), no_gt[:10])
        self.videos = [v for v in self.videos if len(v.segments) > 0]
        if not self.videos:
            raise ValueError(f"{ann_file}: no video of subset {subset_name!r} has ground truth to train on")

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, item) -> dict:
        """The item at ``index``; when its video fails to decode, a replacement (:func:`load_with_replacement`)."""
        index, seed = _split_item(item)
        return load_with_replacement(self.videos, index, seed, self._load)

    def _load(self, index: int, seed: int | None) -> dict:
        v = self.videos[index]
        rng, gen = item_generators(seed)
        s = self.scale_factor
        with self._open(v) as reader:
            total = reader.num_frames
            n = num_snippets(total, self.frame_stride)  # frames on the fine grid (= snippets when s = 1)
            seg = (v.segments - np.float32(self.offset_frames)) / np.float32(self.snippet_stride)
            if s > 1:
                seg = seg * np.float32(s)
            w = random_truncation(n, seg, self.window_size * s, self.trunc_thresh, self.crop_ratio, rng=rng)
            frame_idx = np.clip(w.snippets * self.frame_stride, 0, total - 1)
            frames = reader.get_frames(frame_idx)
            valid = w.length // s
            metas = self._metas(v, reader, w.start // s, valid)
            metas["window_start_frame"] = int(w.start * self.frame_stride)
        mask = w.mask if s == 1 else np.arange(self.window_size) < valid
        segments = w.segments if s == 1 else w.segments / np.float32(s)
        return {
            "inputs": _as_tensor_clip(frames, self.transform, gen),
            "masks": torch.from_numpy(mask),
            "gt_segments": torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32)),
            "gt_labels": torch.from_numpy(v.labels[w.keep].astype(np.int64)),
            "metas": metas,
        }


class SlidingWindowDataset(_VideoDatasetBase):
    """One item per sliding window (OpenTAD ``ThumosSlidingDataset`` + ``LoadFrames(sliding_window)``).

    Windows come from the annotation file's frame count; ``window_overlap_ratio`` 0.5 for testing. With
    ``test_mode=True`` every window is kept and carries no ground truth (empty ``[0, 2]``); with
    ``test_mode=False`` only windows holding an instance more than ``ioa_thresh`` complete are kept, with the
    instances clipped to the window (OpenTAD's validation-loss set).
    """

    def __init__(
        self,
        ann_file,
        class_map,
        data_path,
        subset_name="validation",
        window_size: int = 768,
        feature_stride: int = 4,
        sample_stride: int = 1,
        window_overlap_ratio: float = 0.5,
        ioa_thresh: float = 0.75,
        test_mode: bool = True,
        transform=None,
        block_list=None,
        video_ext: str = "mp4",
        skip_missing: bool = False,
        backend: str = "pyav",
        offset_frames: int = 0,
        decode_threads: int = 0,
        scale_factor: int = 1,
        cache_dir=None,
        fps: float = -1,
        filter_gt: bool = False,
    ):
        super().__init__(
            ann_file, class_map, data_path, subset_name, window_size, feature_stride, sample_stride, transform,
            block_list, video_ext, skip_missing, backend, offset_frames, decode_threads, scale_factor, cache_dir,
            fps=fps, filter_gt=filter_gt,
        )  # fmt: skip
        self.window_overlap_ratio = window_overlap_ratio
        self.ioa_thresh = ioa_thresh
        self.test_mode = test_mode
        # (video index, start snippet, end snippet (exclusive), gt segments [N,2] window-relative, labels [N])
        self.windows: list[tuple[int, int, int, np.ndarray, np.ndarray]] = []
        empty_s, empty_l = np.zeros((0, 2), np.float32), np.zeros((0,), np.int64)
        for vi, v in enumerate(self.videos):
            n = num_snippets(v.frames, self.snippet_stride)
            for start, end in sliding_windows(n, self.window_size, window_overlap_ratio):
                if test_mode or ioa_thresh <= 0 or len(v.segments) == 0:
                    if not test_mode and len(v.segments) == 0:
                        continue
                    self.windows.append((vi, start, end, empty_s, empty_l))
                    continue
                ws, we = start * self.snippet_stride, (end - 1) * self.snippet_stride
                comp, clipped = gt_completeness(v.segments, (ws, we))
                valid = comp > ioa_thresh
                if valid.any():
                    seg = ((clipped[valid] - ws - self.offset_frames) / self.snippet_stride).astype(np.float32)
                    self.windows.append((vi, start, end, seg, v.labels[valid].astype(np.int64)))
        if not self.windows:
            raise ValueError(f"{ann_file}: no window in subset {subset_name!r}")
        log.info("%s subset: %d videos, %d windows", subset_name, len(self.videos), len(self.windows))

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, item) -> dict:
        index, seed = _split_item(item)
        with self._open(self.videos[self.windows[index][0]]) as reader:
            return self._read_window(index, seed, reader)

    def _read_window(self, index: int, seed: int | None, reader: VideoReader | CacheReader) -> dict:
        """The item of window ``index`` read on its own from the open ``reader`` of its video."""
        vi, start, end, _, _ = self.windows[index]
        s = self.scale_factor
        frame_idx, frame_mask = padded_window(self._frame_grid(reader), start * s, end * s, self.window_size * s, reader.num_frames)
        decode_error = None
        try:
            frames = reader.get_frames(frame_idx)
        except VideoError as e:
            frames, decode_error = self._black_window(self.videos[vi], reader, len(frame_idx), e)
        return self._item(index, seed, reader, frames, frame_mask, decode_error)

    def iter_video(self, vi: int, seed: int | None = None, stats: dict | None = None):
        """The items of all windows of video ``vi``, in window order, from one forward decode of the video
        (:func:`adatad.data.stream.stream_windows`, bounded memory); each item is identical to
        ``self[(index, sample_seed(seed, 0, index))]`` (``self[index]`` without a seed), ``decode_error`` included.

        A transform with a ``per_frame`` method (deterministic, frame by frame: :class:`EvalTransform`) is applied
        once to each frame as it is read, and overlapping windows share the result. A video in the snippet cache
        without such a transform is read window by window instead: nothing is decoded there, and reading a
        window's frames straight from the cache saves the stream buffer's extra copy (``stats`` stays untouched)."""
        indices = [i for i, w in enumerate(self.windows) if w[0] == vi]
        v = self.videos[vi]
        s = self.scale_factor
        errors: dict[int, dict] = {}
        per_frame = getattr(self.transform, "per_frame", None)
        with self._open(v) as reader:
            if isinstance(reader, CacheReader) and per_frame is None:
                for i in indices:
                    yield self._read_window(i, None if seed is None else sample_seed(seed, 0, i), reader)
                return

            def on_error(k: int, e: VideoError) -> np.ndarray:
                frames, errors[k] = self._black_window(v, reader, self.window_size * s, e)
                return frames

            spans = [(self.windows[i][1] * s, self.windows[i][2] * s) for i in indices]
            windows = stream_windows(reader, self._frame_grid(reader), spans, self.window_size * s, on_error, stats, frame_fn=per_frame)
            for k, frames, frame_mask in windows:
                i = indices[k]
                seed_i = None if seed is None else sample_seed(seed, 0, i)
                yield self._item(i, seed_i, reader, frames, frame_mask, errors.get(k), transformed=per_frame is not None)

    def _frame_grid(self, reader: VideoReader | CacheReader) -> np.ndarray:
        """The frames the backbone can see: every ``frame_stride``-th (the snippet grid when scale_factor is 1)."""
        return np.arange(0, reader.num_frames, self.frame_stride, dtype=np.int64)

    @staticmethod
    def _black_window(v: VideoInfo, reader: VideoReader | CacheReader, length: int, e: VideoError) -> tuple[np.ndarray, dict]:
        """A black window marked as such: the evaluation leaves the whole video out and says so."""
        h, w = getattr(reader, "frame_size", (reader.height, reader.width))  # a cache may store another size
        frames = np.zeros((length, h, w, 3), dtype=np.uint8)
        return frames, {"video": v.name, "path": str(v.path), "frame": e.frame, "error": str(e)}

    def _item(
        self,
        index: int,
        seed: int | None,
        reader: VideoReader | CacheReader,
        frames: np.ndarray | torch.Tensor,
        frame_mask: np.ndarray,
        decode_error,
        transformed: bool = False,
    ) -> dict:
        """The item of window ``index`` from its frames (``transformed``: already the transform's output)."""
        _, start, _, seg, labels = self.windows[index]
        _, gen = item_generators(seed)
        valid = int(frame_mask.sum()) // self.scale_factor  # a window's valid snippets are its valid frames // s, as OpenTAD
        metas = self._metas(self.videos[self.windows[index][0]], reader, start, valid)
        if decode_error is not None:
            metas["decode_error"] = decode_error
        mask = torch.zeros(self.window_size, dtype=torch.bool)
        mask[:valid] = True
        return {
            "inputs": cast(torch.Tensor, frames) if transformed else _as_tensor_clip(cast(np.ndarray, frames), self.transform, gen),
            "masks": mask,
            "gt_segments": torch.from_numpy(seg.copy()),
            "gt_labels": torch.from_numpy(labels.copy()),
            "metas": dict(metas, index=index),  # a unique window id: OpenTAD's windows may repeat
        }


def _stack(batch: Sequence[dict], key: str) -> torch.Tensor:
    """``torch.stack`` of the items' ``key``; one item that owns its whole storage is viewed, not copied (a test
    window is ~60 MB: the copy was ~15% of a cached test window's CPU time)."""
    if len(batch) == 1:
        x = batch[0][key]
        if x.is_contiguous() and x.storage_offset() == 0 and x.untyped_storage().nbytes() == x.numel() * x.element_size():
            return x.unsqueeze(0)
    return torch.stack([b[key] for b in batch], 0)


def collate(batch: Sequence[dict]) -> dict:
    """Stack items into the batch dict: ``inputs`` uint8 ``[B,3,T,H,W]``, ``masks`` bool ``[B,T]``, lists else."""
    if not isinstance(batch, Sequence) or not batch:
        raise TypeError("collate expects a non-empty list of dataset items")
    return {
        "inputs": _stack(batch, "inputs"),
        "masks": _stack(batch, "masks"),
        "gt_segments": [b["gt_segments"] for b in batch],
        "gt_labels": [b["gt_labels"] for b in batch],
        "metas": [b["metas"] for b in batch],
    }
