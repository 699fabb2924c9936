"""``adatad infer``: detect actions in any video files with a trained checkpoint; per video a JSON, a CSV and a
timeline PNG, and ``summary.json``. The detection itself is :func:`adatad.engine.infer.infer_video`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger("adatad")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")


def build_parser() -> argparse.ArgumentParser:
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
    parser.add_argument(
        "--html",
        action="store_true",
        help="also write report.html: timelines of these videos beside a player (with --gt: mAP and error analysis)",
    )
    parser.add_argument("--class-map", default=None, help="class names file (default: the checkpoint's, else the config's)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override config values")
    return parser


def find_videos(items: list[str]) -> list[Path]:
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_EXTENSIONS))
        else:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import csv
    import json
    import time

    import torch

    from adatad.annotation_io import read_annotation_json
    from adatad.config import load_config
    from adatad.data.video import VideoError
    from adatad.engine.builders import build_test_transform
    from adatad.engine.checkpoint import load_detector_checkpoint
    from adatad.engine.infer import infer_video
    from adatad.engine.logs import setup_logging
    from adatad.models.detector import build_detector
    from adatad.models.postprocess import detection_records
    from adatad.viz import plot_timeline

    setup_logging()
    cfg = load_config(args.config, args.cfg_options)
    gt_db = read_annotation_json(args.gt)["database"] if args.gt else {}  # read before the model: fail early
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build_detector(cfg, load_pretrained=False)
    info = load_detector_checkpoint(model, args.checkpoint)
    model.to(device).eval()
    class_names = _class_names(args.class_map, info["class_names"], cfg, model.num_classes)
    transform = build_test_transform(cfg)
    reference_fps = cfg["inference"]["reference_fps"]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "config": str(args.config),
        "checkpoint": str(args.checkpoint),
        "score_threshold": args.score_threshold,
        "videos": {},
        "failed": {},
    }
    videos = find_videos(args.videos)
    if not videos:
        print("adatad infer: no videos found in " + " ".join(args.videos))
        return 2
    facts = ("fps", "num_frames", "duration", "width", "height", "num_windows", "num_snippets")
    done: dict[str, tuple[Path, list, float]] = {}  # for --html: video -> (file, detections, duration)
    for path in videos:
        t0 = time.time()
        try:
            det = infer_video(model, path, cfg, device, args.batch_size, transform, reference_fps)
        except (VideoError, OSError) as exc:
            logger.error("skipping %s: %s", path, exc)
            summary["failed"][str(path)] = str(exc)
            continue
        dets = detection_records(det, class_names, min_score=args.score_threshold, video=path.stem)
        video_info = {k: det[k] for k in facts}
        record = {
            "video": str(path),
            **video_info,
            "detections": dets,
            "config": str(args.config),
            "checkpoint": str(args.checkpoint),
            "score_threshold": args.score_threshold,
        }
        (out_dir / f"{path.stem}.json").write_text(json.dumps(record, indent=1))
        with open(out_dir / f"{path.stem}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["start", "end", "label", "score"])
            for dd in dets:
                w.writerow([f"{dd['segment'][0]:.2f}", f"{dd['segment'][1]:.2f}", dd["label"], f"{dd['score']:.4f}"])
        gt = gt_db.get(path.stem, {}).get("annotations")
        plot_timeline(
            out_dir / f"{path.stem}.png",
            video_info["duration"],
            class_names,
            dets,
            ground_truth=[dict(a, score=1.0) for a in gt] if gt else None,
            title=f"{path.name}: detections (score >= {args.score_threshold})",
        )
        summary["videos"][str(path)] = {"num_detections": len(dets), "seconds": round(time.time() - t0, 2), **video_info}
        done[path.stem] = (path, dets, float(video_info["duration"]))
        logger.info("%s: %d detections in %.1f s -> %s", path.name, len(dets), time.time() - t0, out_dir / f"{path.stem}.json")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    if args.html and done:
        _write_html(out_dir / "report.html", done, gt_db, args)
    print(f"adatad infer: {len(summary['videos'])} video(s) done, {len(summary['failed'])} failed; outputs in {out_dir}")
    return 0 if summary["videos"] else 1


def _write_html(out: Path, done: dict, gt_db: dict, args) -> None:
    """report.html for the videos just run: their detections (score >= --score-threshold), with --gt their ground
    truth, mAP and error analysis over these videos only."""
    from adatad.report import write_report

    gt = {"database": {v: gt_db[v] for v in done if v in gt_db}} if gt_db else None
    if gt is not None and not gt["database"]:
        logger.warning("--html: none of these videos is in %s: the report has no ground truth", args.gt)
        gt = None
    write_report(
        out,
        {"results": {v: dets for v, (_, dets, _) in done.items()}},
        gt,
        video_files={v: f for v, (f, _, _) in done.items()},
        durations={v: d for v, (_, _, d) in done.items()},
        score_threshold=args.score_threshold,
        title=f"adatad infer: {Path(args.checkpoint).name}",
        sources=f"config: {args.config} · checkpoint: {args.checkpoint}" + (f" · ground truth: {args.gt}" if gt else ""),
        note=f"Detections with score >= {args.score_threshold} only (adatad infer --score-threshold): the mAP here "
        "is lower than that of all of a model's predictions (adatad test)."
        if gt
        else None,
    )
    logger.info("report: %s", out)


def _class_names(class_map, checkpoint_names, cfg, num_classes) -> list[str]:
    """--class-map, else the names saved in the checkpoint (adatad), else the config's class map (OpenTAD)."""
    from adatad.annotation_io import load_class_map
    from adatad.engine.checkpoint import CheckpointError

    if class_map:
        names = load_class_map(class_map)
    else:
        names = checkpoint_names
        if not names and cfg["dataset"]["class_map"] and Path(cfg["dataset"]["class_map"]).is_file():
            names = load_class_map(cfg["dataset"]["class_map"])
    if not names:
        raise FileNotFoundError("no class names: pass --class-map FILE (one class name per line)")
    if len(names) != num_classes:
        raise CheckpointError(
            f"class map has {len(names)} classes but the model/checkpoint has {num_classes}; "
            "use the class map the checkpoint was trained with"
        )
    return list(names)
