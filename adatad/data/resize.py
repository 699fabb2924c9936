"""Whole-video resize dataset (OpenTAD ``AnetResizeDataset`` + ``LoadFrames(method="resize")``; ActivityNet-1.3).

Every video becomes one item: ``resize_length x scale_factor`` frames sampled uniformly over the whole video
(ActivityNet AdaTAD: 192 x 4 = 768), whatever its length; the detector works on a grid of ``resize_length``
steps (the backbone's features are interpolated from ``resize_length x scale_factor`` to ``resize_length``).

Frames (:func:`resize_frame_indices`): with ``n = resize_length * scale_factor`` and ``stride = total / n``,
frame ``k`` is the centre ``(k + 0.5) * stride - 0.5`` computed as OpenTAD does (``np.arange`` over
``[stride/2 - 0.5, total + stride/2 - 0.5)``), clipped to ``[0, total - 1]`` and rounded half-to-even. A video
shorter than ``n`` frames repeats frames (``stride < 1``); ``total`` is the decoder's frame count.

Ground truth (:func:`resize_segments`): seconds ``/ duration``, clipped to ``[0, 1]``, ``* resize_length``
(float32), so an instance running past the annotated duration ends at the last grid step and one entirely
past it becomes the empty segment ``[resize_length, resize_length]`` (kept, as OpenTAD keeps it).
Training filter (``filter_gt=True``, OpenTAD's ActivityNet train/val setting): an instance is kept only when it
covers more than 1 % of the annotated duration; a video left without instances is left out. Duplicated
``(segment, label)`` pairs are dropped (OpenTAD's ``filter_same_annotation``); ``class_agnostic`` labels every
instance 0 (1-class detector + external video classifier).

Item (the format of :mod:`adatad.data.datasets`, consumed by its ``collate``): ``inputs`` uint8
``[3, resize_length x scale_factor, H, W]`` (after the transform), ``masks`` bool ``[resize_length]`` (all
valid), ``gt_segments`` float32 ``[N, 2]`` (grid units), ``gt_labels`` int64 ``[N]``, ``metas`` with
``video_name, fps=-1, duration, resize_length, window_size, window_start_frame=0, num_frames, index``:
``fps == -1`` tells the post-processing to convert with ``x / resize_length * duration``
(:func:`adatad.models.postprocess.to_seconds`), as OpenTAD's ``convert_to_seconds``.

Deviation from OpenTAD: for 53 frame counts below 200,000 (8189, 16375, ...) the float ``np.arange`` yields one
centre too many and OpenTAD's ``LoadFrames`` fails its length assertion; here the first ``n`` centres are kept.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from adatad.annotation_io import AnnotationError, load_class_map, read_annotation_json, read_text_file

from .annotations import VideoInfo, _is_number, _subset_matches
from .datasets import _as_tensor_clip, _check_videos_exist, _split_item, item_generators, load_with_replacement
from .video import VideoError, VideoReader

__all__ = ["GT_MIN_SCALE", "ResizeDataset", "load_resize_annotations", "resize_frame_indices", "resize_segments"]

log = logging.getLogger(__name__)

GT_MIN_SCALE = 0.01  # OpenTAD AnetResizeDataset.get_gt(thresh=0.01): kept when (end - start) / duration > this


def resize_frame_indices(total_frames: int, resize_length: int, scale_factor: int = 1) -> np.ndarray:
    """int64 ``[resize_length * scale_factor]`` frame indices sampling a ``total_frames``-frame video uniformly."""
    if total_frames < 1:
        raise ValueError(f"a video needs at least one frame (got {total_frames})")
    n = int(resize_length) * int(scale_factor)
    stride = total_frames / n
    centres = np.arange(stride / 2 - 0.5, total_frames + stride / 2 - 0.5, stride)[:n]
    return np.clip(centres, 0, total_frames - 1).round().astype(np.int64)


def resize_segments(seconds: np.ndarray, duration: float, resize_length: int) -> np.ndarray:
    """float32 ``[N, 2]`` seconds -> the resize grid: ``clip(s / duration, 0, 1) * resize_length`` (float32)."""
    s = np.asarray(seconds, dtype=np.float32).reshape(-1, 2)
    return (np.clip(s / float(duration), 0.0, 1.0) * resize_length).astype(np.float32)


def _blocked(block_list) -> set[str]:
    if block_list is None:
        return set()
    if isinstance(block_list, (list, tuple, set)):
        return set(block_list)
    return {ln.rstrip("\n") for ln in read_text_file(block_list, "block list", "one video name per line").splitlines()}


def load_resize_annotations(
    ann_file: str | os.PathLike,
    class_map: str | os.PathLike | list[str],
    subset_name: str | list[str],
    resize_length: int,
    block_list=None,
    data_path: str | os.PathLike | None = None,
    video_ext: str = "mp4",
    video_prefix: str = "",
    filter_gt: bool = False,
    class_agnostic: bool = False,
    test_mode: bool = False,
) -> list[VideoInfo]:
    """Videos of ``subset_name`` with their instances on the resize grid (``VideoInfo.segments`` in grid units,
    ``frames`` from the file's ``"frame"`` or 0: the resize path reads the decoder's count). Without
    ``test_mode`` a video whose instances are all filtered out is left out. Every problem found is reported at
    once in one :class:`AnnotationError` naming the video and field."""
    path = Path(ann_file)
    classes = list(class_map) if isinstance(class_map, (list, tuple)) else load_class_map(class_map)
    index = {c: i for i, c in enumerate(classes)}
    database = read_annotation_json(path, hint="see `adatad prepare anet --help`")["database"]
    blocked = _blocked(block_list)
    out: list[VideoInfo] = []
    errors: list[str] = []
    for name, info in database.items():
        where = f"video {name!r}"
        if not isinstance(info, dict) or not isinstance(info.get("subset"), str):
            errors.append(f"{where}: needs a 'subset' string")
            continue
        if name in blocked or not _subset_matches(info["subset"], subset_name):
            continue
        raw_dur = info.get("duration")
        if not _is_number(raw_dur) or not raw_dur > 0:
            errors.append(f"{where}: 'duration' must be a positive number of seconds, got {raw_dur!r}")
            continue
        dur = float(raw_dur)
        pairs: list[tuple[list[float], int]] = []
        for k, a in enumerate([] if test_mode else info.get("annotations", [])):
            seg = a.get("segment") if isinstance(a, dict) else None
            if not (isinstance(seg, (list, tuple)) and len(seg) == 2 and all(map(_is_number, seg))):
                errors.append(f"{where}, annotation {k}: 'segment' must be [start, end] in seconds, got {seg!r}")
                continue
            label = a.get("label")
            if label not in index:
                errors.append(f"{where}, annotation {k}: unknown label {label!r} (not in the class map)")
                continue
            if filter_gt and not (float(seg[1]) - float(seg[0])) / dur > GT_MIN_SCALE:
                continue
            pair = (np.array(seg, dtype=np.float32).tolist(), 0 if class_agnostic else index[label])
            if pair not in pairs:  # OpenTAD's filter_same_annotation, on the float32 seconds
                pairs.append(pair)
        if not test_mode and not pairs:
            continue
        frames = info.get("frame", 0)
        out.append(
            VideoInfo(
                name=name,
                subset=info["subset"],
                duration=dur,
                frames=int(frames) if _is_number(frames) else 0,
                segments=resize_segments(np.array([p[0] for p in pairs], dtype=np.float32), dur, resize_length),
                labels=np.array([p[1] for p in pairs], dtype=np.int64),
                path=Path(data_path) / f"{video_prefix}{name}.{video_ext}" if data_path is not None else None,
            )
        )
    if errors:
        more = f"; ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise AnnotationError(f"{len(errors)} problem(s) in {path}: " + "; ".join(errors[:10]) + more)
    if not out:
        raise AnnotationError(f"{path}: no usable video in subset {subset_name!r}" + ("" if test_mode else " (none has ground truth)"))
    return out


class ResizeDataset(torch.utils.data.Dataset):
    """One item per video, resized to ``resize_length x scale_factor`` frames (see the module docstring).

    ``test_mode=True``: every video, no ground truth; a video that fails to decode gives black frames and
    ``metas["decode_error"]`` (the evaluation leaves it out and says so). ``test_mode=False`` (training): a video
    that fails to decode is replaced by the next one (seed derived from ``(seed, attempt)``), listed in
    ``metas["bad_samples"]``, as :class:`adatad.data.datasets.TrainDataset` does.
    """

    def __init__(
        self,
        ann_file,
        class_map,
        data_path,
        subset_name="training",
        resize_length: int = 192,
        scale_factor: int = 1,
        transform=None,
        block_list=None,
        video_ext: str = "mp4",
        video_prefix: str = "",
        filter_gt: bool = False,
        class_agnostic: bool = False,
        test_mode: bool = False,
        skip_missing: bool = False,
        backend: str = "pyav",
        decode_threads: int = 0,
    ):
        self.class_map = load_class_map(class_map) if not isinstance(class_map, (list, tuple)) else list(class_map)
        self.resize_length = int(resize_length)
        self.window_size = self.resize_length
        self.scale_factor = int(scale_factor)
        if self.resize_length < 1 or self.scale_factor < 1:
            raise ValueError(f"resize_length={resize_length} and scale_factor={scale_factor} must be positive")
        self.data_path = str(data_path)
        self.transform = transform
        self.test_mode = bool(test_mode)
        self.backend = backend
        self.decode_threads = decode_threads
        videos = load_resize_annotations(
            ann_file, self.class_map, subset_name, self.resize_length, block_list, data_path, video_ext, video_prefix,
            filter_gt=filter_gt, class_agnostic=class_agnostic, test_mode=test_mode,
        )  # fmt: skip
        self.videos = _check_videos_exist(videos, data_path, skip_missing)
        n, s = self.resize_length, self.scale_factor
        log.info("%s subset: %d videos, each resized to %d x %d frames", subset_name, len(self.videos), n, s)

    def __len__(self) -> int:
        return len(self.videos)

    def _load(self, index: int, seed: int | None, decode_errors_fatal: bool) -> dict:
        v = self.videos[index]
        assert v.path is not None  # _check_videos_exist kept only videos with a file
        _, gen = item_generators(seed)
        decode_error = None
        with VideoReader(v.path, backend=self.backend, num_threads=self.decode_threads) as reader:
            total = reader.num_frames
            idx = resize_frame_indices(total, self.resize_length, self.scale_factor)
            try:
                frames = reader.get_frames(idx)
            except VideoError as e:
                if decode_errors_fatal:
                    raise
                frames = np.zeros((len(idx), reader.height, reader.width, 3), dtype=np.uint8)
                decode_error = {"video": v.name, "path": str(v.path), "frame": e.frame, "error": str(e)}
        metas = {
            "video_name": v.name,
            "fps": -1,
            "duration": v.duration,
            "resize_length": self.resize_length,
            "window_size": self.resize_length,
            "window_start_frame": 0,
            "num_frames": int(total),
            "index": index,
        }
        if decode_error is not None:
            metas["decode_error"] = decode_error
        return {
            "inputs": _as_tensor_clip(frames, self.transform, gen),
            "masks": torch.ones(self.resize_length, dtype=torch.bool),
            "gt_segments": torch.from_numpy(v.segments.copy()),
            "gt_labels": torch.from_numpy(v.labels.copy()),
            "metas": metas,
        }

    def __getitem__(self, item) -> dict:
        index, seed = _split_item(item)
        if self.test_mode:
            return self._load(index, seed, decode_errors_fatal=False)
        return load_with_replacement(self.videos, index, seed, lambda j, s: self._load(j, s, True))
