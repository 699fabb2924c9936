"""Benchmark: detection mAP on 420,000 predictions over the 211 THUMOS-14 test videos (20 classes, 5 tIoU).

Run on one core:  taskset -c 0 python benchmarks/eval_map.py
Writes benchmarks/results/eval_map.json and .md. The predictions are synthetic (seeded): ~2,000 per video
like OpenTAD's post-processing keeps, jittered copies of the ground truth plus random false positives,
segments rounded to 2 decimals and scores to 4 (so scores tie often, as in real output files).
Reference: OpenTAD's evaluator takes about 7.5 min on one core for this size (ActionFormer's about 8 min).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from adatad.evaluation.detection_map import evaluate_detections, format_table, load_ground_truth, load_predictions

REPO = Path(__file__).resolve().parents[1]
DEFAULT_THUMOS = REPO / "tests" / "data" / "thumos14"
DROPPED = {"video_test_0000270", "video_test_0001292"}
# Measured once outside this repository (OpenTAD's code is not part of it): not re-run by this script.
OPENTAD_REFERENCE = {
    "seconds": 64.9,
    "how": (
        "OpenTAD opentad/evaluations/mAP.py (commit 3dd7b03) with thread=1, pandas 3.1.1, numpy 2.4.6, "
        "pinned to one core (taskset), on the 420,000 predictions this script generates (seed 0); it gave "
        "bit-identical mAP and per-class AP. DESIGN.md quotes ~7.5 min for OpenTAD's setup "
        "(16 worker processes, older pandas) on one core."
    ),
}


def thumos_test_annotations(thumos_dir: Path) -> dict:
    """OpenTAD-format dict of the THUMOS-14 test split (subset "validation"), without Ambiguous / dropped videos."""
    with open(thumos_dir / "test_video_info.csv", newline="") as f:
        info = {r["video"]: r for r in csv.DictReader(f) if r["video"] not in DROPPED}
    db = {v: {"subset": "validation", "duration": float(r["count"]) / float(r["fps"]), "annotations": []} for v, r in info.items()}
    with open(thumos_dir / "test_Annotation_ours.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["video"] in db and r["type"] != "Ambiguous":
                db[r["video"]]["annotations"].append({"segment": [float(r["start"]), float(r["end"])], "label": r["type"]})
    return {"database": db}


def synthetic_predictions(gt: dict, total: int, seed: int = 0) -> dict:
    """`total` predictions spread evenly over the videos: 8 jittered copies per GT instance + random ones."""
    rng = np.random.default_rng(seed)
    classes = sorted({a["label"] for v in gt["database"].values() for a in v["annotations"]})
    videos = list(gt["database"])
    per_video = np.full(len(videos), total // len(videos))
    per_video[: total % len(videos)] += 1
    results = {}
    for v, n in zip(videos, per_video):
        d = gt["database"][v]
        dur = d["duration"]
        anns = d["annotations"]
        n_true = min(n, 8 * len(anns))
        starts = np.empty(n)
        ends = np.empty(n)
        labels = rng.integers(0, len(classes), n)
        scores = rng.uniform(0.0, 0.5, n)
        if n_true:
            src = rng.integers(0, len(anns), n_true)
            s = np.array([anns[i]["segment"][0] for i in src])
            e = np.array([anns[i]["segment"][1] for i in src])
            length = e - s
            centre = (s + e) / 2 + rng.uniform(-0.3, 0.3, n_true) * length
            half = length * rng.uniform(0.6, 1.4, n_true) / 2
            starts[:n_true], ends[:n_true] = centre - half, centre + half
            true_label = np.array([classes.index(anns[i]["label"]) for i in src])
            keep = rng.random(n_true) < 0.9
            labels[:n_true] = np.where(keep, true_label, labels[:n_true])
            scores[:n_true] = rng.uniform(0.1, 1.0, n_true)
        k = n - n_true
        starts[n_true:] = rng.uniform(0, dur, k)
        ends[n_true:] = starts[n_true:] + rng.uniform(0.5, 20.0, k)
        starts, ends = np.clip(starts, 0, dur).round(2), np.clip(ends, 0, dur).round(2)
        order = np.argsort(-scores, kind="stable")
        results[v] = [
            {"segment": [float(starts[i]), float(ends[i])], "label": classes[labels[i]], "score": round(float(scores[i]), 4)} for i in order
        ]
    return {"results": results}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def median_time(fn, runs: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--thumos-dir", type=Path, default=DEFAULT_THUMOS)
    ap.add_argument("--num-predictions", type=int, default=420_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--save-inputs", type=Path, help="also keep the generated GT/prediction JSON files here")
    args = ap.parse_args(argv)

    load_avg = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    gt_dict = thumos_test_annotations(args.thumos_dir)
    preds_dict = synthetic_predictions(gt_dict, args.num_predictions)
    tmp = Path(args.save_inputs or tempfile.mkdtemp(prefix="eval_map_"))
    tmp.mkdir(parents=True, exist_ok=True)
    pred_file = tmp / "predictions.json"
    pred_file.write_text(json.dumps(preds_dict))
    (tmp / "annotations.json").write_text(json.dumps(gt_dict))

    thr = (0.3, 0.4, 0.5, 0.6, 0.7)
    gt = load_ground_truth(gt_dict, "validation")
    t_json, t_json_all, _ = median_time(lambda: json.loads(pred_file.read_text()), args.runs)
    t_load, t_load_all, preds = median_time(lambda: load_predictions(preds_dict), args.runs)
    t_eval, t_eval_all, result = median_time(lambda: evaluate_detections(gt, preds, thr), args.runs)
    t_file, t_file_all, _ = median_time(lambda: evaluate_detections(gt, load_predictions(pred_file), thr), args.runs)

    record = {
        "command": "taskset -c 0 " + " ".join([Path(sys.executable).name, "benchmarks/eval_map.py", *(argv or sys.argv[1:])]),
        "date": datetime.date.today().isoformat(),
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_name(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "load_average_1min_at_start": load_avg,
            "logical_cpus": os.cpu_count(),
        },
        "workload": {
            "videos": len(gt.video_names),
            "classes": len(gt.classes),
            "ground_truth": len(gt),
            "predictions": len(preds),
            "distinct_scores": int(np.unique(preds.scores).size),
            "tiou_thresholds": list(thr),
        },
        "seconds_median": {
            "json_parse": t_json,
            "load_predictions_from_dict": t_load,
            "evaluate_detections": t_eval,
            "file_to_result": t_file,
        },
        "seconds_all_runs": {
            "json_parse": t_json_all,
            "load_predictions_from_dict": t_load_all,
            "evaluate_detections": t_eval_all,
            "file_to_result": t_file_all,
        },
        "runs": args.runs,
        "result": {"mAP": result["mAP"], "average_mAP": result["average_mAP"]},
        "opentad_reference": OPENTAD_REFERENCE,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "eval_map.json").write_text(json.dumps(record, indent=2) + "\n")
    md = [
        "# Detection mAP evaluator speed",
        "",
        f"Command: `{record['command']}`  ",
        f"Date: {record['date']}  ",
        f"Machine: {record['machine']['cpu']}, {record['machine']['platform']}, "
        f"Python {record['machine']['python']}, numpy {record['machine']['numpy']}, one core "
        f"(1-min load average at start {load_avg} on {os.cpu_count()} logical CPUs: other jobs slow it down)  ",
        f"Workload: {len(preds):,} predictions ({record['workload']['distinct_scores']:,} distinct scores), "
        f"{len(gt):,} GT instances, {len(gt.video_names)} videos, {len(gt.classes)} classes, tIoU {list(thr)}",
        "",
        f"| step (median of {args.runs}) | seconds |",
        "| :--- | ---: |",
        f"| plain `json.loads` of the predictions file (garbage collector on) | {t_json:.3f} |",
        f"| `load_predictions` (dict to arrays, checks) | {t_load:.3f} |",
        f"| `evaluate_detections` (matching + AP, 5 thresholds) | {t_eval:.3f} |",
        f"| file to result: `load_predictions(path)` (parse, GC paused) + `evaluate_detections` | {t_file:.3f} |",
        f"| OpenTAD `mAP.py`, same kind of input, one core (see below) | {OPENTAD_REFERENCE['seconds']:.1f} |",
        "",
        "mAP of the synthetic predictions (a sanity value, not a model result):",
        "",
        format_table(result),
        "",
        f"OpenTAD reference: {OPENTAD_REFERENCE['how']}",
        "",
    ]
    (args.out_dir / "eval_map.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
