"""Config -> datasets, loaders and the evaluation closure (the one place where dataset config keys are read)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch.utils.data import DataLoader

from adatad.data.annotations import load_annotations
from adatad.data.datasets import MissingVideosError, SlidingWindowDataset, TrainDataset, collate
from adatad.data.prepare import check_videos
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
    so does the deterministic short-side resize. A batch needs videos of one resolution."""

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
            return RawClip()
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
    )
    s = d[split]
    if split == "train":
        crop_ratio = None if s["crop_ratio"] is None else tuple(s["crop_ratio"])
        return TrainDataset(**common, subset_name=s["subset_name"], trunc_thresh=s["trunc_thresh"], crop_ratio=crop_ratio)
    return SlidingWindowDataset(**common, subset_name=s["subset_name"], window_overlap_ratio=s["window_overlap_ratio"], test_mode=True)


def check_dataset(cfg: dict, split: str) -> None:
    """Fast pre-flight check (existence + header probe) before a long run; refuses on problems."""
    if split == "train" and not cfg["dataset"]["train"]["check_videos"]:
        return

    d = cfg["dataset"]
    videos = load_annotations(
        d["annotation_path"],
        d["class_map"],
        d[split]["subset_name"],
        block_list=d["block_list"],
        data_path=d["data_path"],
        video_ext=d["video_ext"],
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


def build_loader(cfg: dict, split: str, info: DistInfo, seed: int) -> DataLoader:
    """The DataLoader of one split with OpenTAD's partitioning: each process gets ``batch_size // world_size``
    items per batch; training drops the ``N % world_size`` leftover items and keeps a last partial batch."""
    scfg = cfg["solver"]["train" if split == "train" else split]
    batch = per_process_batch(cfg, split, info.world_size)
    workers = int(scfg["num_workers"])
    dataset = build_dataset(cfg, split, decode_threads=1 if workers > 0 else 0)
    train = split == "train"
    sampler = ResumableSampler(
        len(dataset), shuffle=train, seed=seed, rank=info.rank, world_size=info.world_size, drop_last=train, batch_size=batch
    )
    return DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=info.device.type == "cuda",
        drop_last=False,
        persistent_workers=train and workers > 0,
        prefetch_factor=2 if workers > 0 else None,
    )
