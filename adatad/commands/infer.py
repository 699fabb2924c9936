"""``adatad infer``: detect actions in any video files with a trained checkpoint; per video a JSON, a CSV, a
timeline PNG (and on request SRT / WebVTT subtitles and an annotated MP4), and ``summary.json``. A thin layer over
:class:`adatad.api.Detector`."""

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
        "(adatad or OpenTAD). Writes <name>.json, <name>.csv and a <name>.png timeline per video (with --srt/--vtt "
        "subtitles, with --annotated-video an MP4 with the detections drawn), and summary.json.",
        epilog="Sampling rule: snippets are taken by time, every dataset.feature_stride x sample_stride frames of a "
        "video at inference.reference_fps (the training data's rate, 30 for THUMOS); a 25 or 60 fps video is read "
        "at the frames nearest to those times, so the model sees the same temporal rate it was trained on.",
    )
    parser.add_argument("videos", nargs="+", help="video files and/or folders of videos")
    parser.add_argument(
        "--config",
        default=None,
        help="the config the checkpoint was trained with, adatad or OpenTAD (default: the config saved in an adatad checkpoint)",
    )
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
    parser.add_argument("--srt", action="store_true", help="also write <name>.srt: SubRip subtitles, one cue per detection")
    parser.add_argument("--vtt", action="store_true", help="also write <name>.vtt: WebVTT subtitles, one cue per detection")
    parser.add_argument(
        "--annotated-video",
        nargs="?",
        const=True,
        default=None,
        metavar="OUT.mp4",
        help="also write an MP4 of the video with the detections drawn on its frames, at its frame rate "
        "(default <out>/<name>_annotated.mp4; a path only with one video)",
    )
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
    import json
    import time

    from adatad.annotation_io import read_annotation_json
    from adatad.api import Detector
    from adatad.engine.logs import setup_logging
    from adatad.engine.runner import configure_cpu_threads
    from adatad.errors import UserError
    from adatad.viz import plot_timeline

    setup_logging()
    configure_cpu_threads()
    gt_db = read_annotation_json(args.gt)["database"] if args.gt else {}  # read before the model: fail early
    videos = find_videos(args.videos)
    if not videos:
        print("adatad infer: no videos found in " + " ".join(args.videos))
        return 2
    if isinstance(args.annotated_video, str) and len(videos) > 1:
        raise UserError(
            f"--annotated-video {args.annotated_video}: one output file for {len(videos)} videos; give --annotated-video "
            "without a path to write <out>/<name>_annotated.mp4 for each video"
        )
    detector = Detector.from_checkpoint(
        args.checkpoint,
        args.config,
        device=args.device,
        class_names=args.class_map,
        cfg_options=args.cfg_options,
        score_threshold=args.score_threshold,
        batch_windows=args.batch_size,
    )
    config_name = str(args.config) if args.config else f"{args.checkpoint} (saved config)"
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"config": config_name, "checkpoint": str(args.checkpoint), "score_threshold": args.score_threshold}
    summary.update(videos={}, failed={})

    def skip(video, exc: Exception) -> None:
        logger.error("skipping %s: %s", video, exc)
        summary["failed"][str(video)] = str(exc)

    done: dict[str, tuple[Path, list, float]] = {}  # for --html: video -> (file, detections, duration)
    t0 = time.time()
    for dets in detector.run(videos, progress=True, on_error=skip):
        path = Path(str(dets.source))
        stem = path.stem
        records = dets.records()
        record = {
            "video": str(path),
            **dets.info,
            "detections": records,
            "config": config_name,
            "checkpoint": str(args.checkpoint),
            "score_threshold": args.score_threshold,
        }
        (out_dir / f"{stem}.json").write_text(json.dumps(record, indent=1))
        dets.to_csv(out_dir / f"{stem}.csv")
        if args.srt:
            dets.to_srt(out_dir / f"{stem}.srt")
        if args.vtt:
            dets.to_vtt(out_dir / f"{stem}.vtt")
        gt = gt_db.get(stem, {}).get("annotations")
        plot_timeline(
            out_dir / f"{stem}.png",
            dets.info["duration"],
            detector.class_names,
            records,
            ground_truth=[dict(a, score=1.0) for a in gt] if gt else None,
            title=f"{path.name}: detections (score >= {args.score_threshold})",
        )
        if args.annotated_video:
            target = args.annotated_video if isinstance(args.annotated_video, str) else out_dir / f"{stem}_annotated.mp4"
            n = dets.annotate_video(target)
            logger.info("%s: annotated video (%d frames) -> %s", path.name, n, target)
        seconds = time.time() - t0  # windows of consecutive videos share batches: the time since the previous video
        t0 = time.time()
        summary["videos"][str(path)] = {"num_detections": len(records), "seconds": round(seconds, 2), **dets.info}
        done[stem] = (path, records, float(dets.info["duration"]))
        logger.info("%s: %d detections in %.1f s -> %s", path.name, len(records), seconds, out_dir / f"{stem}.json")
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
