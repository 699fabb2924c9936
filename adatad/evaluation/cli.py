"""`adatad eval`: detection mAP of a predictions file against an annotation file (no torch import)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from adatad.annotation_io import load_class_map, read_annotation_json
from adatad.evaluation.detection_map import (
    DEFAULT_TIOU_THRESHOLDS,
    evaluate_detections,
    format_table,
    load_ground_truth,
    load_predictions,
    parse_tiou,
    read_blocked_videos,
)

DESCRIPTION = """\
Compute ActivityNet-style detection mAP (the numbers of OpenTAD's evaluator) for a predictions file
{"results": {video: [{"segment": [start, end], "label": name or class index, "score": x}]}}
against an annotation file {"database": {video: {"subset": ..., "annotations": [...]}}}.
"""

EPILOG = """\
subset rule: only videos whose "subset" equals --subset exactly are evaluated. OpenTAD's THUMOS-14 file
stores the THUMOS *test* videos as subset "validation" (and the THUMOS validation videos as "training"),
so the default is "validation" when the file has it (otherwise the file's only subset). "--subset test"
is accepted as an alias of "validation" only when the file has no "test" subset; a note says so.

predictions on videos absent from the annotation file or of another subset count as false positives and
labels that are not evaluated classes are ignored, as in OpenTAD; both are reported with counts. Video names
are compared exactly (ActivityNet: the annotation's ids, without the "v_" of the file names); a warning says
when predictions or blocked names differ from the annotation's only by that prefix.

ActivityNet-1.3 as OpenTAD evaluates it:
  adatad eval --gt activity_net.v1-3.min.json --pred result_detection.json --subset validation \
      --tiou 0.5:0.95:0.05 --blocked blocked.json
exit status: 0 on success, 2 on bad arguments or invalid input files.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="adatad eval",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--gt", required=True, metavar="ANN.json", help="annotation file (OpenTAD/ActivityNet format)")
    p.add_argument("--pred", required=True, metavar="PRED.json", help="predictions file")
    p.add_argument("--subset", default=None, help='subset to evaluate (default: "validation" if present; see below)')
    p.add_argument(
        "--tiou",
        nargs="+",
        default=None,
        metavar="T",
        help="tIoU thresholds: numbers and/or START:STOP:STEP ranges with STOP included, e.g. 0.5:0.95:0.05 "
        "(ActivityNet: exactly the floats of OpenTAD's config) (default: 0.3 0.4 0.5 0.6 0.7, THUMOS)",
    )
    p.add_argument("--per-class", action="store_true", help="also print the AP of every class")
    p.add_argument("--out", metavar="RESULTS.json", help="write every number (full precision) to this JSON file")
    p.add_argument(
        "--blocked",
        metavar="FILE",
        help="videos left out of ground truth and predictions alike, as OpenTAD's evaluator does with its blocked_videos "
        "(ActivityNet: annotations/blocked.json): a JSON list or one name per line; names compared exactly",
    )
    p.add_argument(
        "--class-map",
        metavar="FILE",
        help="class names, one per line, line k = class k-1 (e.g. category_idx.txt); needed when labels are class indices",
    )
    return p


def _subsets(ann_path: Path) -> tuple[dict, set[str]]:
    """The annotation file (parsed once, then handed to ``load_ground_truth``) and the subsets it has."""
    data = read_annotation_json(ann_path)
    return data, {str(v.get("subset")) for v in data["database"].values() if isinstance(v, dict)}


def resolve_subset(requested: str | None, available: set[str]) -> tuple[str, str | None]:
    """Apply the subset rule (see the epilog). Returns ``(subset, note or None)``."""
    if requested is None:
        if "validation" in available:
            return "validation", None
        if len(available) == 1:
            only = next(iter(available))
            return only, f'note: no "validation" subset; evaluating the only subset, "{only}"'
        raise ValueError(f'no "validation" subset; choose one with --subset from {sorted(available)}')
    if requested == "test" and "test" not in available and "validation" in available:
        return "validation", (
            'note: the annotation file has no "test" subset; evaluating "validation" (OpenTAD\'s THUMOS file '
            "stores the THUMOS test videos under that name)"
        )
    return requested, None


def main(argv: list[str] | None = None) -> int:
    """Run ``adatad eval``; returns the exit status (0 ok, 2 bad arguments or inputs)."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        ann, available = _subsets(Path(args.gt))
        subset, note = resolve_subset(args.subset, available)
        if note:
            print(note, file=sys.stderr)
        blocked = read_blocked_videos(args.blocked) if args.blocked else None
        class_names = load_class_map(args.class_map) if args.class_map else None
        thresholds = [t for tok in args.tiou for t in parse_tiou(tok)] if args.tiou else list(DEFAULT_TIOU_THRESHOLDS)
        gt = load_ground_truth(ann, subset, blocked, name=args.gt)
        preds = load_predictions(Path(args.pred), class_names)
        result = evaluate_detections(gt, preds, thresholds)
    except (FileNotFoundError, ValueError, TypeError) as e:
        print(f"adatad: error: {e}", file=sys.stderr)
        return 2

    s = result["stats"]
    print(
        f'subset "{subset}": {gt.stats["num_videos"]} videos, {result["num_ground_truth"]} ground-truth instances, '
        f"{len(result['classes'])} classes; {s['num_predictions']} predictions ({s['num_evaluated']} evaluated)"
    )
    print(format_table(result, per_class=args.per_class))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "gt": str(args.gt),
            "pred": str(args.pred),
            **result,
            "ground_truth_stats": gt.stats,
            "blocked_videos": sorted(gt.blocked_videos),
        }
        out.write_text(json.dumps(payload, indent=2))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
