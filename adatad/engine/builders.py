"""Config -> datasets, loaders and the evaluation closure (the one place where dataset config keys are read)."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from adatad.engine.dist import DistInfo
from adatad.engine.sampler import ResumableSampler

logger = logging.getLogger("adatad")


class SeededDataset(Dataset):
    """Wraps a dataset so that item ``(index, seed)`` draws all its randomness from ``seed``: augmentation and
    truncation become a function of (run seed, epoch, index), independent of workers, and exactly resumable."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, item)
        py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            item = self.dataset[index]
        finally:  # leave the caller's RNG (e.g. the training process with num_workers=0) untouched
            random.setstate(py_state)
            np.random.set_state(np_state)
            torch.set_rng_state(torch_state)
        item["metas"] = dict(item["metas"], index=int(index))  # a unique window id (windows may repeat)
        return item


def _paths(cfg: dict) -> dict:
    d = cfg["dataset"]
    missing = [k for k in ("annotation_path", "class_map", "data_path") if not d.get(k)]
    if missing:
        raise ValueError(f"config: dataset.{missing[0]} is not set (needed: annotation_path, class_map, data_path)")
    return dict(ann_file=d["annotation_path"], class_map=d["class_map"], data_path=d["data_path"])


class RawClip:
    """Worker-side transform when augmentation runs on the device: frames as decoded, uint8 ``[3, T, H, W]``
    (a batch needs videos of one resolution)."""

    def __call__(self, frames, generator=None):
        from adatad.data.transforms import to_tchw

        return to_tchw(frames).permute(1, 0, 2, 3).contiguous()


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
    from adatad.data.transforms import TrainTransform

    tcfg = cfg["dataset"]["transform"]
    if split == "train":
        if tcfg["on_gpu"]:
            return RawClip()
        return TrainTransform(**_train_transform_args(tcfg["train"]), seed=int(cfg["solver"]["seed"]))
    return build_test_transform(cfg)


def build_test_transform(cfg: dict):
    from adatad.data.transforms import TestTransform

    t = cfg["dataset"]["transform"]["test"]
    return TestTransform(short_side=t["resize_short"], size=t["crop_size"])


def build_gpu_augment(cfg: dict, device: torch.device):
    from adatad.data.transforms import GPUBatchAugment

    args = _train_transform_args(cfg["dataset"]["transform"]["train"])
    return GPUBatchAugment(**args, seed=int(cfg["solver"]["seed"])).to(device)


def build_dataset(cfg: dict, split: str, decode_threads: int = 0):
    """``decode_threads``: FFmpeg threads per reader (0: automatic; 1 when DataLoader workers already use the cores)."""
    from adatad.data.datasets import SlidingWindowDataset, TrainDataset

    d = cfg["dataset"]
    common = dict(
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
    if not cfg["dataset"][split].get("check_videos", True):
        return
    from adatad.data.annotations import load_annotations

    try:
        from adatad.data.prepare import check_videos
    except ImportError:
        return

    d = cfg["dataset"]
    videos = load_annotations(
        d["annotation_path"],
        d["class_map"],
        d[split]["subset_name"],
        block_list=d.get("block_list"),
        data_path=d["data_path"],
        video_ext=d["video_ext"],
    )
    problems = check_videos(videos, fast=True)
    if not problems:
        logger.info("dataset check: %d %s videos present and readable", len(videos), split)
        return
    missing_only = all(p.kind == "missing" for p in problems)
    listing = "\n".join(f"  {p}" for p in problems[:20]) + (f"\n  ... (+{len(problems) - 20})" if len(problems) > 20 else "")
    if missing_only and d[split].get("skip_missing"):
        logger.warning("dataset check: skipping %d missing videos (dataset.%s.skip_missing=True):\n%s", len(problems), split, listing)
        return
    from adatad.data.datasets import MissingVideosError

    raise MissingVideosError(
        f"dataset check found {len(problems)} problem(s) in the {split} split:\n{listing}\n"
        f"Fix the data (adatad prepare check --config ... prints the full table) or, for missing videos "
        f"only, pass --cfg-options dataset.{split}.skip_missing=True"
    )


def build_loader(cfg: dict, split: str, info: DistInfo, seed: int) -> DataLoader:
    from adatad.data.datasets import collate

    scfg = cfg["solver"]["train" if split == "train" else split]
    workers = int(scfg["num_workers"])
    dataset = build_dataset(cfg, split, decode_threads=1 if workers > 0 else 0)
    train = split == "train"
    sampler = ResumableSampler(
        len(dataset), shuffle=train, seed=seed, rank=info.rank, world_size=info.world_size, drop_last=train, batch_size=scfg["batch_size"]
    )
    return DataLoader(
        SeededDataset(dataset),
        batch_size=scfg["batch_size"],
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=info.device.type == "cuda",
        drop_last=train,
        persistent_workers=train and workers > 0,
        prefetch_factor=2 if workers > 0 else None,
    )


def make_evaluate_fn(cfg: dict, split: str, info: DistInfo, work_dir: Path, not_eval: bool = False):
    """-> ``evaluate(model, epoch)``: sliding-window inference on ``split``, predictions JSON, mAP (rank 0)."""
    from adatad.engine.infer import predict_loader

    state: dict = {}

    def evaluate(model, epoch):
        if "loader" not in state:
            state["loader"] = build_loader(cfg, split, info, int(cfg["solver"]["seed"]))
            from adatad.data.annotations import load_class_map

            state["classes"] = load_class_map(cfg["dataset"]["class_map"])
        results = predict_loader(model, state["loader"], cfg, info, state["classes"])
        if not info.is_main:
            return None
        tag = f"epoch_{epoch}" if epoch is not None else "test"
        pred_path = Path(work_dir) / f"predictions_{tag}.json"
        pred_path.write_text(json.dumps({"results": results}))
        logger.info("predictions: %s (%d videos)", pred_path, len(results))
        if not_eval:
            return {"average_mAP": None, "predictions": str(pred_path)}
        from adatad.evaluation.detection_map import evaluate_detections, format_table, load_ground_truth, load_predictions

        ecfg = cfg["evaluation"]
        # the split's own subset (THUMOS: val and test are both "validation", as evaluation.subset)
        gt = load_ground_truth(
            ecfg.get("ground_truth_filename") or cfg["dataset"]["annotation_path"],
            cfg["dataset"][split]["subset_name"],
            blocked_videos=cfg["dataset"].get("block_list"),
        )
        preds = load_predictions({"results": results}, state["classes"])
        result = evaluate_detections(gt, preds, tiou_thresholds=ecfg["tiou_thresholds"])
        table = format_table(result)
        logger.info("%s mAP (%s):\n%s", split, tag, table)
        out = dict(result)
        out["predictions"] = str(pred_path)
        (Path(work_dir) / f"map_{tag}.json").write_text(json.dumps(out, indent=1, default=float))
        return out

    return evaluate
