"""``adatad report``: one self-contained HTML page of a predictions file: mAP, DETAD-style error analysis, and per
video a timeline (ground truth above predictions, score slider) beside an HTML5 player (no torch import)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

DESCRIPTION = """\
Write one HTML file (no network needed: CSS, JavaScript and data are inside) that shows what a detector does:
mAP per tIoU and per class, the false positives split into double detection / wrong label / localization /
confusion / background errors with the mAP gained by removing each type, the sensitivity of AP to action
length, coverage and instances per video (after DETAD, Alwassel et al. ECCV 2018), and per video a timeline
with a score-threshold slider and, when --videos has the file, a player that a click on a segment seeks.
"""

EPILOG = """\
subset rule: as `adatad eval` (default "validation" when the annotation file has it). Without --gt the report
has timelines only. Video files are found as VIDEOS/<video name>.<ext> (mp4, webm, ...) and referenced by paths
relative to the HTML file: keep the two where they are relative to each other.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="adatad report", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--pred", required=True, metavar="PRED.json", help="predictions file")
    p.add_argument("--gt", metavar="ANN.json", help="annotation file (OpenTAD/ActivityNet format); omit for timelines only")
    p.add_argument("--out", default="report.html", metavar="report.html", help="the HTML file to write (default: report.html)")
    p.add_argument("--videos", metavar="DIR", help="folder with the video files, for the player")
    p.add_argument("--subset", default=None, help='subset to evaluate (default: "validation" if present)')
    p.add_argument("--class-map", metavar="FILE", help="class names, one per line (needed when labels are class indices)")
    p.add_argument("--blocked", metavar="FILE", help="videos to leave out: a JSON list or one name per line")
    p.add_argument(
        "--tiou",
        type=float,
        nargs="+",
        default=[0.3, 0.4, 0.5, 0.6, 0.7],
        metavar="T",
        help="tIoU thresholds (default: 0.3 0.4 0.5 0.6 0.7)",
    )
    p.add_argument("--score-threshold", type=float, default=0.3, help="initial score threshold of the timelines (default 0.3)")
    p.add_argument(
        "--bins",
        choices=("thumos", "activitynet"),
        default="thumos",
        help="DETAD's sensitivity bins (length in seconds etc.; default: thumos)",
    )
    p.add_argument("--title", default=None, help="page title")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    from adatad.annotation_io import load_class_map, read_annotation_json
    from adatad.evaluation.cli import resolve_subset
    from adatad.evaluation.detection_map import read_blocked_videos
    from adatad.report import write_report

    try:
        ann = subset = None
        if args.gt:
            ann = read_annotation_json(args.gt)
            available = {str(v.get("subset")) for v in ann["database"].values() if isinstance(v, dict)}
            subset, note = resolve_subset(args.subset, available)
            if note:
                print(note, file=sys.stderr)
        sources = f"predictions: {args.pred}" + (f" · ground truth: {args.gt}" if args.gt else "")
        out = write_report(
            args.out,
            Path(args.pred),
            ann,
            gt_name=args.gt,
            subset=subset,
            class_names=load_class_map(args.class_map) if args.class_map else None,
            blocked_videos=read_blocked_videos(args.blocked) if args.blocked else None,
            tiou_thresholds=args.tiou,
            videos_dir=args.videos,
            score_threshold=args.score_threshold,
            bins=args.bins,
            title=args.title or f"adatad report: {Path(args.pred).name}",
            sources=sources,
        )
    except (FileNotFoundError, ValueError, TypeError) as e:
        print(f"adatad: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
