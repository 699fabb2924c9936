"""Config -> datasets, loaders and the evaluation closure (the one place where dataset config keys are read)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch.utils.data import DataLoader

from adatad.config import ConfigError
from adatad.cpu import usable_cores
from adatad.data.annotations import load_annotations
from adatad.data.datasets import MissingVideosError, SlidingWindowDataset, TrainDataset, collate
from adatad.data.prepare import check_videos
from adatad.data.resize import ResizeDataset, load_resize_annotations
from adatad.data.transforms import EvalTransform, GPUBatchAugment, TrainTransform, to_tchw
from adatad.engine.batching import per_process_batch
from adatad.engine.dist import DistInfo
from adatad.engine.sampler import ResumableSampler

logger = logging.getLogger("adatad")


def _paths(cfg: dict) -> dict:
    d = cfg["dataset"]
    missing = [k for k in ("annotation_path", "class_map", "data_path") if not d.get(k)]
    if missing:
        raise ValueError(f"config: dataset.{missing[0]} is not set (needed: annotation_path, class_map, data_path)")
    return dict(ann_file=d["annotation_path"], class_map=d["class_map"], data_path=d["data_path"])


class RawClip:
    """Worker-side transform when augmentation runs on the device (``dataset.transform.on_gpu``): no pixel work, the
    decoded frames as a uint8 ``[3, T, H, W]`` view of the decoder's ``[T, H, W, 3]`` array (the collate's stack is
    the one copy); every random op (crop, flip, ImgAug, ColorJitter) runs batched in :class:`GPUBatchAugment`, and
    so does the deterministic short-side resize. A batch needs videos of one resolution.

    ``short_side``: the device augmentation's first resize, so that a snippet cache stored at that size
    (``adatad prepare cache --resolution transform``) serves this split (that resize is then the identity)."""

    def __init__(self, short_side: int | None = None):
        self.short_side = short_side

    def __call__(self, frames, generator=None):
        return to_tchw(frames).permute(1, 0, 2, 3)


def _train_transform_args(t: dict) -> dict:
    return dict(
        short_side=t["resize_short"],
        size=t["crop_size"],
        crop=t["crop"],
        flip_ratio=t["flip_ratio"],
        randaug=t["imgaug"],
        color_jitter=t["color_jitter"],
        area_range=tuple(t["area_range"]),
        aspect_ratio_range=tuple(t["aspect_ratio_range"]),
    )


def build_transform(cfg: dict, split: str):
    tcfg = cfg["dataset"]["transform"]
    if split == "train":
        if tcfg["on_gpu"]:
            return RawClip(short_side=int(tcfg["train"]["resize_short"]))
        return TrainTransform(**_train_transform_args(tcfg["train"]), seed=int(cfg["solver"]["seed"]))
    return build_test_transform(cfg)


def build_test_transform(cfg: dict):
    t = cfg["dataset"]["transform"]["test"]
    return EvalTransform(short_side=t["resize_short"], size=t["crop_size"])


def build_gpu_augment(cfg: dict, device: torch.device):
    args = _train_transform_args(cfg["dataset"]["transform"]["train"])
    return GPUBatchAugment(**args, seed=int(cfg["solver"]["seed"])).to(device)


def build_dataset(cfg: dict, split: str, decode_threads: int = 0):
    """``decode_threads``: FFmpeg threads per reader (0: automatic; 1 when DataLoader workers already use the cores)."""
    d = cfg["dataset"]
    if d["sampling"] == "resize" or d["video_prefix"] or d["class_agnostic"]:
        return _resize_dataset(cfg, split, decode_threads)
    common: dict[str, Any] = dict(
        _paths(cfg),
        window_size=d["window_size"],
        feature_stride=d["feature_stride"],
        sample_stride=d["sample_stride"],
        scale_factor=d["scale_factor"],
        block_list=d["block_list"],
        video_ext=d["video_ext"],
        backend=d["backend"],
        transform=build_transform(cfg, split),
        decode_threads=decode_threads,
        skip_missing=d[split]["skip_missing"],
        cache_dir=d["cache_dir"],
        fps=d["fps"],
        filter_gt=split == "train" and d["train"]["filter_gt"],
    )
    s = d[split]
    if split == "train":
        crop_ratio = None if s["crop_ratio"] is None else tuple(s["crop_ratio"])
        return TrainDataset(**common, subset_name=s["subset_name"], trunc_thresh=s["trunc_thresh"], crop_ratio=crop_ratio)
    return SlidingWindowDataset(**common, subset_name=s["subset_name"], window_overlap_ratio=s["window_overlap_ratio"], test_mode=True)


def _resize_dataset(cfg: dict, split: str, decode_threads: int) -> ResizeDataset:
    """``dataset.sampling="resize"``: whole videos resized to ``window_size x scale_factor`` frames (ActivityNet)."""
    d, s = cfg["dataset"], cfg["dataset"][split]
    if d["sampling"] != "resize":
        raise ConfigError('config: dataset.video_prefix and dataset.class_agnostic are '
                         'implemented for dataset.sampling="resize" only')  # fmt: skip
    if d["cache_dir"]:
        raise ConfigError(
            f'config: dataset.cache_dir={d["cache_dir"]!r} cannot serve dataset.sampling="resize": the cache holds '
            "every snippet_stride-th frame of each video (sliding windows), and resizing a whole video to "
            f"window_size x scale_factor = {int(d['window_size']) * int(d['scale_factor'])} frames reads frames at "
            "other positions; set dataset.cache_dir=None (the videos are decoded)"
        )
    return ResizeDataset(
        **_paths(cfg), subset_name=s["subset_name"], resize_length=d["window_size"], scale_factor=d["scale_factor"],
        transform=build_transform(cfg, split), block_list=d["block_list"], video_ext=d["video_ext"],
        video_prefix=d["video_prefix"], filter_gt=split == "train" and d["train"]["filter_gt"],
        class_agnostic=d["class_agnostic"], test_mode=split != "train", skip_missing=s["skip_missing"],
        backend=d["backend"], decode_threads=decode_threads,
    )  # fmt: skip


def check_dataset(cfg: dict, split: str) -> None:
    """Fast pre-flight check (existence + header probe) before a long run; refuses on problems."""
    if split == "train" and not cfg["dataset"]["train"]["check_videos"]:
        return

    d = cfg["dataset"]
    if d["sampling"] == "resize":  # the decoder's frame count is what resizing uses: no frame-count check
        names = (d["annotation_path"], d["class_map"], d[split]["subset_name"], d["window_size"], d["block_list"])
        videos = load_resize_annotations(*names, d["data_path"], d["video_ext"], d["video_prefix"], test_mode=True)
        problems = [p for p in check_videos(videos, fast=True) if p.kind != "frames"]
    else:
        videos = load_annotations(
            d["annotation_path"],
            d["class_map"],
            d[split]["subset_name"],
            block_list=d["block_list"],
            data_path=d["data_path"],
            video_ext=d["video_ext"],
            fps=d["fps"],
        )
        problems = check_videos(videos, fast=True)
    if not problems:
        logger.info("dataset check: %d %s videos present and readable", len(videos), split)
        return
    missing_only = all(p.kind == "missing" for p in problems)
    listing = "\n".join(f"  {p}" for p in problems[:20]) + (f"\n  ... (+{len(problems) - 20})" if len(problems) > 20 else "")
    if missing_only and d[split]["skip_missing"]:
        logger.warning("dataset check: skipping %d missing videos (dataset.%s.skip_missing=True):\n%s", len(problems), split, listing)
        return
    raise MissingVideosError(
        f"dataset check found {len(problems)} problem(s) in the {split} split:\n{listing}\n"
        f"Fix the data (adatad prepare check --config ... prints the full table) or, for missing videos "
        f"only, pass --cfg-options dataset.{split}.skip_missing=True"
    )


def window_bytes(cfg: dict, split: str, dataset) -> int:
    """Bytes of one item's ``inputs`` (uint8 ``[3, window_size x scale_factor, H, W]``): ``H x W`` is the
    transform's output size, or, when the train augmentation runs on the device (raw frames), the resolution of the
    first video (read from its header)."""
    d = cfg["dataset"]
    frames = int(d["window_size"]) * int(d["scale_factor"])
    t = d["transform"]
    if split == "train" and t["on_gpu"]:
        from adatad.data.video import probe_video

        head = probe_video(dataset.videos[0].path, backend=d["backend"])
        h, w = int(head["height"]), int(head["width"])
    else:
        h = w = int(t["train" if split == "train" else "test"]["crop_size"])
    return 3 * frames * h * w


def prefetch_plan(item_bytes: int, batch: int, workers: int, pinned: bool, budget_gb: float, cap: int = 4) -> int:
    """Batches each worker prepares ahead: as many as ``budget_gb`` holds for all workers (twice the bytes when
    batches are also copied to pinned memory), between 1 and ``cap``."""
    per_batch = max(1, item_bytes * batch * (2 if pinned else 1))
    return max(1, min(cap, int(budget_gb * 2**30 // (per_batch * max(1, workers)))))


def _identity(batch):
    return batch


def build_loader(cfg: dict, split: str, info: DistInfo, seed: int) -> DataLoader:
    """The DataLoader of one split with OpenTAD's partitioning: each process gets ``batch_size // world_size``
    items per batch; training drops the ``N % world_size`` leftover items and keeps a last partial batch.

    Testing/validation with ``dataset.<split>.decode_once`` (default) reads each video once
    (:class:`adatad.data.stream.VideoStreamDataset`: whole videos per rank and worker, every window exactly once
    over all ranks, items identical to the window-by-window path). Workers persist across epochs (training) and
    validations; batches are pinned on CUDA; ``prefetch_factor`` comes from the window's bytes and
    ``solver.loader_memory_gb``. The choices are logged."""
    scfg = cfg["solver"]["train" if split == "train" else split]
    batch = per_process_batch(cfg, split, info.world_size)
    workers = min(int(scfg["num_workers"]), usable_cores())
    if workers < int(scfg["num_workers"]):
        logger.info("%s loader: %d worker(s), the usable CPU cores (solver.%s.num_workers=%s)", split, workers, split, scfg["num_workers"])
    dataset = build_dataset(cfg, split, decode_threads=1 if workers > 0 else 0)
    train = split == "train"
    pinned = info.device.type == "cuda"
    loader_args: dict[str, Any] = dict(num_workers=workers, pin_memory=pinned, persistent_workers=split != "test" and workers > 0)
    notes = []
    if workers > 0:
        item = window_bytes(cfg, split, dataset)
        budget = float(cfg["solver"]["loader_memory_gb"])
        loader_args["prefetch_factor"] = prefetch_plan(item, batch, workers, pinned, budget)
        notes.append(
            f"prefetch {loader_args['prefetch_factor']} batches/worker ({item / 2**20:.0f} MiB per window, batch {batch}, "
            f"{workers} workers, budget solver.loader_memory_gb={budget:g})"
        )
    notes.append(f"persistent workers {loader_args['persistent_workers']}, pin_memory {pinned}")
    if not train and cfg["dataset"][split]["decode_once"] and isinstance(dataset, SlidingWindowDataset):
        # (a whole-video item, dataset.sampling="resize", reads its video once anyway)
        from adatad.data.stream import VideoStreamDataset

        stream = VideoStreamDataset(dataset, batch, collate, info.rank, info.world_size, workers, seed=seed)
        logger.info(
            "%s loader: decode once (each video read once; dataset.%s.decode_once=False decodes window by window): "
            "%d of %d windows on this process in %d batches; %s",
            split, split, stream.num_windows, len(dataset), len(stream), "; ".join(notes),
        )  # fmt: skip
        return DataLoader(stream, batch_size=None, collate_fn=_identity, **loader_args)
    sampler = ResumableSampler(
        len(dataset), shuffle=train, seed=seed, rank=info.rank, world_size=info.world_size, drop_last=train, batch_size=batch
    )
    logger.info("%s loader: %s (override with --cfg-options)", split, "; ".join(notes))
    return DataLoader(dataset, batch_size=batch, sampler=sampler, collate_fn=collate, drop_last=False, **loader_args)
