"""Fine-tuning from a trained detector (``--load-from``) against training from scratch, on a new class set.

Synthetic videos (adatad.data.synthetic), the demo model (configs/demo/demo_tiny.py):

1. source: train the demo model on classes ``--source-classes`` (default MoveRight, Grow, Blink);
2. target: a fresh dataset (another seed) of the *other* classes (default MoveLeft, Shrink), trained twice with
   the same recipe and schedule: from scratch, and from the source's checkpoint (``adatad train --load-from``:
   backbone, adapters, projection, neck and head copied, the classifier re-initialised for the new class set).

mAP on the target's test split is measured every ``--eval-every`` epochs in both runs; the result lists the two
curves and, for thresholds of 90% and 100% of the scratch run's best mAP, the first epoch each run reaches it.
Runs one training at a time (each in a fresh process).

    OMP_NUM_THREADS=2 python benchmarks/finetune.py [--work /tmp/ft] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adatad.config import packaged_config  # noqa: E402


def data_options(data: dict, num_classes: int) -> list[str]:
    return [
        f"dataset.annotation_path={data['anno_file']}",
        f"dataset.class_map={data['class_file']}",
        f"dataset.data_path={data['video_dir']}",
        f"evaluation.ground_truth_filename={data['anno_file']}",
        f"model.head.num_classes={num_classes}",
    ]


def schedule_options(epochs: int, eval_every: int) -> list[str]:
    return [
        f"scheduler.max_epoch={epochs}",
        f"workflow.end_epoch={epochs}",
        f"workflow.val_eval_interval={eval_every}",
        f"workflow.checkpoint_interval={epochs}",
    ]


def train(work: Path, options: list[str], extra: list[str]) -> tuple[list[dict], float, list[str]]:
    """``adatad train`` in a fresh process; -> (history, seconds, command)."""
    cmd = [sys.executable, "-m", "adatad", "train", str(packaged_config("demo/demo_tiny.py")), "--work-dir", str(work), "--device", "cpu"]
    cmd += [*extra, "--cfg-options", *options]
    t0 = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if res.returncode != 0:
        sys.exit(f"training failed ({' '.join(cmd)}):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return json.loads((work / "history.json").read_text()), time.time() - t0, cmd


def curve(history: list[dict]) -> list[tuple[int, float]]:
    """(epochs trained, mAP %) at each evaluation."""
    return [(h["epoch"] + 1, round(h["mAP"], 2)) for h in history if "mAP" in h]


def first_epoch_reaching(points: list[tuple[int, float]], threshold: float) -> int | None:
    return next((e for e, m in points if m >= threshold), None)


def markdown(r: dict) -> str:
    """The Markdown page of a result (also: ``python -c 'from benchmarks.finetune import markdown; ...'``)."""
    src, tgt = r["source"], r["target"]
    scratch, finetune = r["curves_epochs_mAP"]["scratch"], r["curves_epochs_mAP"]["finetune"]
    rows = "\n".join(f"| {e} | {s:.2f} | {f:.2f} |" for (e, s), (_, f) in zip(scratch, finetune))
    reach_rows = "\n".join(f"| {k} | {v['scratch']} | {v['finetune']} |" for k, v in r["first_epoch_reaching"].items())
    return f"""# Fine-tuning from a detector vs from scratch (synthetic videos)

- command: `{r["command"]}` ({r["date"]}); machine: {r["machine"]}
- model: `{r["config"]}`; source: trained {src["epochs"]} epochs on {src["train_videos"]} videos of
  {", ".join(src["classes"])} (test mAP {src["final_mAP"]}); target: {tgt["train_videos"]} train / {tgt["test_videos"]} test
  videos of the other classes {", ".join(tgt["classes"])}, {tgt["epochs"]} epochs, the same recipe and schedule for both runs;
  fine-tuning: `adatad train ... --load-from <source>/checkpoint/latest.pth` (its EMA weights; classifier re-initialised:
  {len(src["classes"])} -> {len(tgt["classes"])} classes, as train.log's load report says).

| epochs trained | scratch mAP | fine-tuned mAP |
|---:|---:|---:|
{rows}

| first evaluation reaching | scratch (epochs) | fine-tuned (epochs) |
|---|---:|---:|
{reach_rows}

Wall time (2 shared cores, other jobs running): source {src["seconds"]} s, scratch {r["seconds"]["scratch"]} s,
fine-tuned {r["seconds"]["finetune"]} s.

Caveats: the target classes are new labels but related motions (MoveLeft mirrors MoveRight, Shrink reverses Grow), so
the source's features transfer well; on 32 training videos and 20 epochs the scratch run stays low (the demo, 96 videos
and 40 epochs from scratch, reaches about 72). One seed per run; mAP on 16 test videos is noisy by a few points.
"""


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--work", default="/tmp/adatad_finetune", help="data and run folders")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--source-classes", nargs="+", default=["MoveRight", "Grow", "Blink"])
    p.add_argument("--target-classes", nargs="+", default=["MoveLeft", "Shrink"])
    p.add_argument("--source-videos", type=int, default=64)
    p.add_argument("--target-videos", type=int, default=32)
    p.add_argument("--test-videos", type=int, default=16)
    p.add_argument("--source-epochs", type=int, default=30)
    p.add_argument("--target-epochs", type=int, default=20)
    p.add_argument("--eval-every", type=int, default=2)
    args = p.parse_args()
    from adatad.data.synthetic import generate_dataset

    work = Path(args.work)
    common = dict(duration_range=(20.0, 32.0), fps=30.0, size=(64, 64), progress=False)
    src = generate_dataset(
        work / "data_source", num_train=args.source_videos, num_test=args.test_videos, classes=args.source_classes, seed=1, **common
    )
    tgt = generate_dataset(
        work / "data_target", num_train=args.target_videos, num_test=args.test_videos, classes=args.target_classes, seed=2, **common
    )
    t_src = data_options(tgt, len(args.target_classes)) + schedule_options(args.target_epochs, args.eval_every)
    source_hist, source_s, source_cmd = train(
        work / "source",
        data_options(src, len(args.source_classes)) + schedule_options(args.source_epochs, args.source_epochs),
        [],
    )
    ckpt = work / "source" / "checkpoint" / "latest.pth"
    scratch_hist, scratch_s, scratch_cmd = train(work / "scratch", t_src, [])
    ft_hist, ft_s, ft_cmd = train(work / "finetune", t_src, ["--load-from", str(ckpt)])

    scratch, finetune = curve(scratch_hist), curve(ft_hist)
    best = max(m for _, m in scratch)
    reach = {
        f"{int(frac * 100)}% of scratch best ({frac * best:.2f})": {
            "scratch": first_epoch_reaching(scratch, frac * best),
            "finetune": first_epoch_reaching(finetune, frac * best),
        }
        for frac in (0.9, 1.0)
    }
    result = {
        "command": " ".join([f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')}", "python benchmarks/finetune.py", *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {os.cpu_count()} logical CPUs (shared with other jobs)",
        "config": "configs/demo/demo_tiny.py",
        "source": {
            "classes": args.source_classes,
            "train_videos": args.source_videos,
            "epochs": args.source_epochs,
            "final_mAP": curve(source_hist)[-1][1] if curve(source_hist) else None,
            "seconds": round(source_s),
        },
        "target": {
            "classes": args.target_classes,
            "train_videos": args.target_videos,
            "test_videos": args.test_videos,
            "epochs": args.target_epochs,
        },
        "curves_epochs_mAP": {"scratch": scratch, "finetune": finetune},
        "first_epoch_reaching": reach,
        "seconds": {"scratch": round(scratch_s), "finetune": round(ft_s)},
        "commands": {"source": " ".join(source_cmd), "scratch": " ".join(scratch_cmd), "finetune": " ".join(ft_cmd)},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "finetune_synthetic.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "finetune_synthetic.md").write_text(markdown(result))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
