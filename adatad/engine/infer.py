"""Sliding-window inference: a dataset loader (testing/validation) or any video file (``adatad infer``)."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import torch

from adatad.engine.dist import DistInfo, all_gather_objects

logger = logging.getLogger("adatad")


def _amp_context(cfg: dict, device: torch.device):
    from adatad.engine.train import amp_settings, autocast

    enabled, dtype, _ = amp_settings(cfg, device)
    return autocast(device, enabled, dtype)


@torch.no_grad()
def window_predictions(model, loader, cfg: dict, device: torch.device, progress: bool = True, desc: str = "test"):
    """Run the model on every window of ``loader``; -> {video: [(candidates in grid units, meta), ...]}."""
    pp = cfg["post_processing"]
    model.eval()
    per_video: dict[str, list] = defaultdict(list)
    seen: set = set()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(loader), desc=desc, dynamic_ncols=True, leave=False)
    for batch in loader:
        inputs = batch["inputs"].to(device, non_blocking=True)
        masks = batch["masks"].to(device, non_blocking=True)
        with _amp_context(cfg, device):
            candidates = model(inputs, masks, return_loss=False, pre_nms_thresh=pp["pre_nms_thresh"],
                               pre_nms_topk=pp["pre_nms_topk"])
        for cand, meta in zip(candidates, batch["metas"]):
            key = (meta["video_name"], int(meta.get("index", meta["window_start_frame"])))
            if key in seen:  # a distributed sampler pads with repeated windows (OpenTAD's own repeats are kept)
                continue
            seen.add(key)
            per_video[meta["video_name"]].append(({k: v.cpu() for k, v in cand.items()}, meta))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return per_video


def merge_windows(per_video: dict, cfg: dict, class_names: list[str]) -> dict[str, list[dict]]:
    """Per video: windows -> seconds -> multiclass soft-NMS -> result-format detections."""
    from adatad.models.postprocess import video_detections

    nms = cfg["post_processing"]["nms"]
    results: dict[str, list[dict]] = {}
    for video, windows in per_video.items():
        windows = sorted(windows, key=lambda w: (int(w[1]["window_start_frame"]), int(w[1].get("index", 0))))
        det = video_detections([w[0] for w in windows], [w[1] for w in windows], nms)
        results[video] = [
            {"segment": [float(s), float(e)], "label": class_names[int(lab)], "score": float(sc)}
            for (s, e), sc, lab in zip(det["segments"].tolist(), det["scores"].tolist(), det["labels"].tolist())
        ]
    return results


def predict_loader(model, loader, cfg: dict, info: DistInfo, class_names: list[str]) -> dict[str, list[dict]]:
    """Distributed sliding-window inference; every rank runs its share, rank 0 merges and returns all videos."""
    per_video = window_predictions(model, loader, cfg, info.device, progress=info.is_main)
    gathered = all_gather_objects(dict(per_video))
    if not info.is_main:
        return {}
    merged: dict[str, list] = defaultdict(list)
    seen: set = set()
    for part in gathered:
        for video, windows in part.items():
            for cand, meta in windows:
                key = (video, int(meta.get("index", meta["window_start_frame"])))
                if key not in seen:
                    seen.add(key)
                    merged[video].append((cand, meta))
    return merge_windows(merged, cfg, class_names)


# ------------------------------------------------------------------------------------------- adatad infer
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")


def snippet_plan(num_frames: int, fps: float, snippet_stride: int, reference_fps: float | None) -> tuple[list[int], float]:
    """Frames to read for each snippet of a video, sampled by time.

    The model was trained on snippets every ``snippet_stride`` frames of ``reference_fps`` video (THUMOS: 4 frames
    at 30 fps = 7.5 snippets/s). A video at another rate is sampled at the same times: snippet ``k`` reads the frame
    nearest to ``k * snippet_stride / reference_fps`` seconds. With ``reference_fps`` None (or equal to the
    video's rate) this is exactly the training rule ``arange(0, num_frames, snippet_stride)``.
    Returns (frame index per snippet, the frame rate in which window metas are expressed)."""
    if not reference_fps or abs(reference_fps - fps) < 1e-3:
        return list(range(0, num_frames, snippet_stride)), fps
    duration = num_frames / fps
    n_ref = max(1, int(round(duration * reference_fps)))
    frames = [min(num_frames - 1, int(round(k * snippet_stride / reference_fps * fps))) for k in range(0, -(-n_ref // snippet_stride))]
    return frames, reference_fps


def _find_videos(items: list[str]) -> list[Path]:
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_EXTENSIONS))
        else:
            out.append(p)
    return out


def infer_video(model, path: Path, cfg: dict, device: torch.device, batch_size: int, transform, reference_fps,
                progress: bool = True) -> dict:
    """Sliding-window detection on one video, streamed window by window (bounded memory).
    -> dict(segments [N,2] seconds, scores [N], labels [N], video facts)."""
    import numpy as np

    from adatad.data.video import VideoReader
    from adatad.data.windows import sliding_windows
    from adatad.models.postprocess import video_detections

    d = cfg["dataset"]
    stride = int(d["feature_stride"]) * int(d["sample_stride"])
    window = int(d["window_size"])
    pp = cfg["post_processing"]
    with VideoReader(path, backend=d.get("backend", "pyav")) as reader:
        frames_of, meta_fps = snippet_plan(reader.num_frames, reader.fps, stride, reference_fps)
        n = len(frames_of)
        wins = sliding_windows(n, window, d["test"]["window_overlap_ratio"])
        duration = reader.num_frames / reader.fps if reader.fps > 0 else reader.duration
        cands, metas = [], []
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(wins), desc=path.name, unit="win", dynamic_ncols=True, leave=False)
        model.eval()
        for b0 in range(0, len(wins), batch_size):
            chunk = wins[b0:b0 + batch_size]
            clips, masks = [], []
            for start, end in chunk:
                idx = frames_of[start:end] + [frames_of[end - 1]] * (window - (end - start))
                video = torch.from_numpy(reader.get_frames(np.asarray(idx)))  # [T, H, W, 3]
                clips.append(transform(video.permute(0, 3, 1, 2).contiguous()))  # [T, 3, H, W] -> [3, T, h, w]
                m = torch.zeros(window, dtype=torch.bool)
                m[: end - start] = True
                masks.append(m)
            inputs = torch.stack(clips).to(device)
            mask_t = torch.stack(masks).to(device)
            with torch.no_grad(), _amp_context(cfg, device):
                out = model(inputs, mask_t, return_loss=False, pre_nms_thresh=pp["pre_nms_thresh"], pre_nms_topk=pp["pre_nms_topk"])
            for (start, _end), c in zip(chunk, out):
                cands.append({k: v.cpu() for k, v in c.items()})
                metas.append(dict(video_name=path.stem, fps=meta_fps, duration=duration, snippet_stride=stride,
                                  window_start_frame=start * stride, window_size=window, offset_frames=0))
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        det = video_detections(cands, metas, pp["nms"])
        det.update(fps=reader.fps, num_frames=reader.num_frames, duration=duration, width=reader.width,
                   height=reader.height, num_windows=len(wins), num_snippets=n)
    return det


def cli_main(argv: list[str] | None = None) -> int:
    import argparse
    import csv
    import json
    import time

    parser = argparse.ArgumentParser(
        prog="adatad infer",
        description="Detect actions in videos of any length, resolution and frame rate with a trained checkpoint "
        "(adatad or OpenTAD). Writes <name>.json, <name>.csv and a <name>.png timeline per video, and summary.json.",
        epilog="Sampling rule: snippets are taken by time, every dataset.feature_stride x sample_stride frames of a "
        "video at inference.reference_fps (the training data's rate, 30 for THUMOS); a 25 or 60 fps video is read "
        "at the frames nearest to those times, so the model sees the same temporal rate it was trained on.",
    )
    parser.add_argument("videos", nargs="+", help="video files and/or folders of videos")
    parser.add_argument("--config", required=True, help="the config the checkpoint was trained with")
    parser.add_argument("--checkpoint", required=True, help="adatad or OpenTAD checkpoint (EMA weights preferred)")
    parser.add_argument("--out", default="infer_out", help="output folder (default: infer_out)")
    parser.add_argument("--score-threshold", type=float, default=0.3, help="keep detections with score >= this (default 0.3)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--batch-size", type=int, default=1, help="windows per forward pass (default 1)")
    parser.add_argument("--gt", default=None, help="annotation JSON: draw the ground truth above the predictions")
    parser.add_argument("--class-map", default=None, help="class names file (default: the checkpoint's, else the config's)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override config values")
    args = parser.parse_args(argv)

    from adatad.config import load_config
    from adatad.engine.checkpoint import load_detector_checkpoint
    from adatad.engine.runner import setup_logging
    from adatad.models.detector import build_detector

    setup_logging()
    cfg = load_config(args.config, args.cfg_options)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build_detector(cfg, load_pretrained=False)
    info = load_detector_checkpoint(model, args.checkpoint)
    model.to(device).eval()
    class_names = _infer_class_names(args.class_map, info.get("class_names"), cfg, model.num_classes)
    from adatad.engine.builders import build_test_transform

    transform = build_test_transform(cfg)
    reference_fps = cfg["inference"].get("reference_fps")
    gt_db = json.loads(Path(args.gt).read_text())["database"] if args.gt else {}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"config": str(args.config), "checkpoint": str(args.checkpoint), "score_threshold": args.score_threshold,
               "videos": {}, "failed": {}}
    videos = _find_videos(args.videos)
    if not videos:
        print("adatad infer: no videos found in " + " ".join(args.videos))
        return 2
    from adatad.data.video import VideoError

    for path in videos:
        t0 = time.time()
        try:
            det = infer_video(model, path, cfg, device, args.batch_size, transform, reference_fps)
        except (VideoError, OSError) as exc:
            logger.error("skipping %s: %s", path, exc)
            summary["failed"][str(path)] = str(exc)
            continue
        keep = det["scores"] >= args.score_threshold
        dets = [{"segment": [float(s), float(e)], "label": class_names[int(lab)], "score": float(sc)}
                for (s, e), sc, lab in zip(det["segments"][keep].tolist(), det["scores"][keep].tolist(),
                                           det["labels"][keep].tolist())]
        info = {k: det[k] for k in ("fps", "num_frames", "duration", "width", "height", "num_windows", "num_snippets")}
        record = {"video": str(path), **info, "detections": dets, "config": str(args.config),
                  "checkpoint": str(args.checkpoint), "score_threshold": args.score_threshold}
        (out_dir / f"{path.stem}.json").write_text(json.dumps(record, indent=1))
        with open(out_dir / f"{path.stem}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["start", "end", "label", "score"])
            for dd in dets:
                w.writerow([f"{dd['segment'][0]:.2f}", f"{dd['segment'][1]:.2f}", dd["label"], f"{dd['score']:.4f}"])
        from adatad.viz import plot_timeline

        gt = gt_db.get(path.stem, {}).get("annotations")
        plot_timeline(out_dir / f"{path.stem}.png", info["duration"], class_names, dets,
                      ground_truth=[dict(a, score=1.0) for a in gt] if gt else None,
                      title=f"{path.name}: detections (score >= {args.score_threshold})")
        summary["videos"][str(path)] = {"num_detections": len(dets), "seconds": round(time.time() - t0, 2), **info}
        logger.info("%s: %d detections in %.1f s -> %s", path.name, len(dets), time.time() - t0, out_dir / f"{path.stem}.json")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"adatad infer: {len(summary['videos'])} video(s) done, {len(summary['failed'])} failed; outputs in {out_dir}")
    return 0 if summary["videos"] else 1


def _infer_class_names(class_map, checkpoint_names, cfg, num_classes) -> list[str]:
    """--class-map, else the names saved in the checkpoint (adatad), else the config's class map (OpenTAD)."""
    from adatad.data.annotations import load_class_map

    if class_map:
        names = load_class_map(class_map)
    else:
        names = checkpoint_names
        if not names and cfg["dataset"].get("class_map") and Path(cfg["dataset"]["class_map"]).is_file():
            names = load_class_map(cfg["dataset"]["class_map"])
    if not names:
        raise FileNotFoundError("no class names: pass --class-map FILE (one class name per line)")
    if len(names) != num_classes:
        from adatad.engine.checkpoint import CheckpointError

        raise CheckpointError(f"class map has {len(names)} classes but the model/checkpoint has {num_classes}; "
                         "use the class map the checkpoint was trained with")
    return list(names)
