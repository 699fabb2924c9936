"""Benchmark: detection mAP on 420,000 predictions over the 211 THUMOS-14 test videos (20 classes, 5 tIoU).

Run on one core:  taskset -c 0 python benchmarks/eval_map.py
Writes benchmarks/results/eval_map.json and .md. The predictions are synthetic (seeded): ~2,000 per video
like OpenTAD's post-processing keeps, jittered copies of the ground truth plus random false positives,
segments rounded to 2 decimals and scores to 4 (so scores tie often, as in real output files).

Two kinds of figures: the steps timed inside this process (parse, load, evaluate), and the whole
``python -m adatad eval --gt ... --pred ... --out ...`` process, start-up and imports included, started
``--process-runs`` times as a subprocess pinned to CPU 0 with ``taskset`` when it exists (min / median /
max of the wall time; the median is the figure to quote).
Reference: OpenTAD's evaluator takes about 7.5 min on one core for this size (ActionFormer's about 8 min).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from adatad.annotation_io import gc_paused
from adatad.data.annotations import thumos14_csv_dir
from adatad.evaluation.detection_map import evaluate_detections, format_table, load_ground_truth, load_predictions

REPO = Path(__file__).resolve().parents[1]
DEFAULT_THUMOS = thumos14_csv_dir()
DROPPED = {"video_test_0000270", "video_test_0001292"}
# Measured once outside this repository (OpenTAD's code is not part of it): not re-run by this script.
OPENTAD_REFERENCE = {
    "seconds": 64.9,
    "how": (
        "OpenTAD opentad/evaluations/mAP.py (commit 3dd7b03) with thread=1, pandas 3.1.1, numpy 2.4.6, "
        "pinned to one core (taskset), on the 420,000 predictions this script generates (seed 0); it gave "
        "bit-identical mAP and per-class AP. OpenTAD's own setup takes ~7.5 min "
        "(16 worker processes, older pandas) on one core."
    ),
}

# The previous version of `adatad eval` (commit ad79d7a: stdlib json, GC collection after the parse, a Python
# generator per prediction), timed once against this one: not re-run by this script.
PREVIOUS_VERSION = {
    "commit": "ad79d7a",
    "whole_process_seconds_median": 1.032,
    "whole_process_cpu_seconds_median": 0.887,
    "how": (
        "the same adatad eval arguments and generated files, run through adatad.cli.main as the console script "
        "does (that version had no python -m adatad), 9 runs alternating with this version (0.647 s wall, 0.618 s "
        "CPU in those pairs), pinned to one core, timed from outside the process, 1-min load average 3.3-3.7 on "
        "2 logical CPUs"
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
        out = None  # free the previous run's result, and collect what it left, outside the timed region
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def rel(arg: str) -> str:
    """A command-line word as written from the repository root (no absolute paths in the results)."""
    if os.path.isabs(arg) and os.path.exists(arg):
        return os.path.relpath(arg, REPO)
    return arg


def time_process(cmd: list[str], runs: int, warmup: int = 1) -> dict:
    """Wall seconds of a whole subprocess (start to exit), ``runs`` times after ``warmup`` uncounted runs."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    times = []
    for k in range(warmup + runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
        if k >= warmup:
            times.append(dt)
    return {"min": min(times), "median": statistics.median(times), "max": max(times), "all_runs": times}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--thumos-dir", type=Path, default=DEFAULT_THUMOS)
    ap.add_argument("--num-predictions", type=int, default=420_000)
    ap.add_argument("--runs", type=int, default=3, help="runs of each in-process step (median reported)")
    ap.add_argument("--process-runs", type=int, default=9, help="runs of the whole `adatad eval` process (after one warm-up)")
    ap.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--save-inputs", type=Path, help="also keep the generated GT/prediction JSON files here")
    args = ap.parse_args(argv)

    load_avg = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    gt_dict = thumos_test_annotations(args.thumos_dir)
    preds_dict = synthetic_predictions(gt_dict, args.num_predictions)
    tmp = Path(args.save_inputs or tempfile.mkdtemp(prefix="eval_map_"))
    tmp.mkdir(parents=True, exist_ok=True)
    pred_file, gt_file, out_file = tmp / "predictions.json", tmp / "annotations.json", tmp / "eval.json"
    pred_file.write_text(json.dumps(preds_dict))
    gt_file.write_text(json.dumps(gt_dict))

    thr = (0.3, 0.4, 0.5, 0.6, 0.7)
    gt = load_ground_truth(gt_dict, "validation")
    # the generated dicts (~3 million objects) stay alive: keep the collector from traversing them in every step
    gc.collect()
    gc.freeze()

    def orjson_parse():
        with gc_paused():
            return orjson.loads(pred_file.read_bytes())

    t_json, t_json_all, _ = median_time(lambda: json.loads(pred_file.read_text()), args.runs)
    t_orjson, t_orjson_all, _ = median_time(orjson_parse, args.runs)
    t_load, t_load_all, preds = median_time(lambda: load_predictions(preds_dict), args.runs)
    t_loadf, t_loadf_all, _ = median_time(lambda: load_predictions(pred_file), args.runs)
    t_eval, t_eval_all, result = median_time(lambda: evaluate_detections(gt, preds, thr), args.runs)
    t_file, t_file_all, _ = median_time(lambda: evaluate_detections(gt, load_predictions(pred_file), thr), args.runs)

    # the whole command, start-up and imports included, as a user runs it
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    eval_cmd = [sys.executable, "-m", "adatad", "eval", "--gt", str(gt_file), "--pred", str(pred_file), "--out", str(out_file)]
    startup_cmd = [sys.executable, "-m", "adatad", "eval", "--help"]
    whole = time_process(pin + eval_cmd, args.process_runs)
    startup = time_process(pin + startup_cmd, args.process_runs)
    written = json.loads(out_file.read_text())
    if written["mAP"] != result["mAP"] or written["per_class_ap"] != result["per_class_ap"]:
        raise RuntimeError("the adatad eval process and the in-process evaluation disagree")
    load_avg_end = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None

    def shown(cmd: list[str]) -> str:
        words = [Path(w).name if w == sys.executable else w for w in cmd]
        return " ".join(w.replace(str(tmp), "INPUTS") if w.startswith(str(tmp)) else rel(w) for w in words)

    record = {
        "command": " ".join(["taskset -c 0", Path(sys.executable).name, "benchmarks/eval_map.py", *map(rel, argv or sys.argv[1:])]),
        "date": datetime.date.today().isoformat(),
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_name(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "orjson": orjson.__version__,
            "load_average_1min_at_start": load_avg,
            "load_average_1min_at_end": load_avg_end,
            "logical_cpus": os.cpu_count(),
        },
        "workload": {
            "videos": len(gt.video_names),
            "classes": len(gt.classes),
            "ground_truth": len(gt),
            "predictions": len(preds),
            "prediction_file_bytes": pred_file.stat().st_size,
            "distinct_scores": int(np.unique(preds.scores).size),
            "tiou_thresholds": list(thr),
        },
        "whole_process": {
            "command": shown(pin + eval_cmd),
            "inputs": "INPUTS = the files this script generates (kept with --save-inputs DIR)",
            "runs": args.process_runs,
            "warmup_runs": 1,
            "seconds": {k: whole[k] for k in ("min", "median", "max")},
            "seconds_all_runs": whole["all_runs"],
            "startup_command": shown(pin + startup_cmd),
            "startup_seconds": {k: startup[k] for k in ("min", "median", "max")},
        },
        "seconds_median": {
            "json_parse_stdlib": t_json,
            "orjson_parse": t_orjson,
            "load_predictions_from_dict": t_load,
            "load_predictions_from_file": t_loadf,
            "evaluate_detections": t_eval,
            "file_to_result": t_file,
        },
        "seconds_all_runs": {
            "json_parse_stdlib": t_json_all,
            "orjson_parse": t_orjson_all,
            "load_predictions_from_dict": t_load_all,
            "load_predictions_from_file": t_loadf_all,
            "evaluate_detections": t_eval_all,
            "file_to_result": t_file_all,
        },
        "runs": args.runs,
        "result": {"mAP": result["mAP"], "average_mAP": result["average_mAP"]},
        "opentad_reference": OPENTAD_REFERENCE,
        "previous_version": PREVIOUS_VERSION,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "eval_map.json").write_text(json.dumps(record, indent=2) + "\n")
    w, st, prev = whole, startup, PREVIOUS_VERSION
    md = [
        "# Detection mAP evaluator speed",
        "",
        f"Command: `{record['command']}`  ",
        f"Date: {record['date']}  ",
        f"Machine: {record['machine']['cpu']}, {record['machine']['platform']}, "
        f"Python {record['machine']['python']}, numpy {record['machine']['numpy']}, orjson {orjson.__version__}, one core "
        f"(1-min load average {load_avg} at start, {load_avg_end} at end, on {os.cpu_count()} logical CPUs: other jobs slow it down)  ",
        f"Workload: {len(preds):,} predictions ({record['workload']['distinct_scores']:,} distinct scores, "
        f"{pred_file.stat().st_size / 1e6:.1f} MB file), {len(gt):,} GT instances, {len(gt.video_names)} videos, "
        f"{len(gt.classes)} classes, tIoU {list(thr)}",
        "",
        f"## Whole process ({args.process_runs} runs after 1 warm-up, wall seconds)",
        "",
        f"`{record['whole_process']['command']}` (INPUTS: the generated files, kept with `--save-inputs DIR`)",
        "",
        "| process | min | median | max |",
        "| :--- | ---: | ---: | ---: |",
        f"| `adatad eval` on the 420k-prediction file, `--out` written | {w['min']:.3f} | **{w['median']:.3f}** | {w['max']:.3f} |",
        f"| start-up only: `adatad eval --help` (interpreter, imports) | {st['min']:.3f} | {st['median']:.3f} | {st['max']:.3f} |",
        "",
        f"Previous version (commit {prev['commit']}), same command: median {prev['whole_process_seconds_median']:.3f} s "
        f"wall, {prev['whole_process_cpu_seconds_median']:.3f} s CPU ({prev['how']}).",
        "",
        f"## Steps inside one process (median of {args.runs})",
        "",
        "| step | seconds |",
        "| :--- | ---: |",
        f"| stdlib `json.loads` of the predictions file (garbage collector on; for comparison) | {t_json:.3f} |",
        f"| `orjson.loads` of the predictions file (garbage collector paused, as `adatad.annotation_io.read_json`) | {t_orjson:.3f} |",
        f"| `load_predictions(dict)` (dict to arrays, checks) | {t_load:.3f} |",
        f"| `load_predictions(path)` (read, parse, arrays, checks, parsed objects freed) | {t_loadf:.3f} |",
        f"| `evaluate_detections` (matching + AP, 5 thresholds) | {t_eval:.3f} |",
        f"| file to result: `load_predictions(path)` + `evaluate_detections` | {t_file:.3f} |",
        f"| OpenTAD `mAP.py`, same kind of input, one core (see below) | {OPENTAD_REFERENCE['seconds']:.1f} |",
        "",
        "mAP of the synthetic predictions (a sanity value, not a model result; the `adatad eval` process wrote the same numbers):",
        "",
        format_table(result),
        "",
        f"OpenTAD reference: {OPENTAD_REFERENCE['how']}",
        "",
    ]
    (args.out_dir / "eval_map.md").write_text("\n".join(md))
    if not args.save_inputs:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
