"""Benchmark: per-video multiclass Gaussian soft-NMS (adatad.models.postprocess.batched_nms).

One synthetic THUMOS-like video: 20,000 candidates over 20 classes (segments in seconds, scores rounded to 4
decimals as in the sliding-window path), NMS settings of the AdaTAD THUMOS config. Reports the median wall time.

    taskset -c 0 .venv/bin/python benchmarks/soft_nms.py [--repeats 5] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from adatad.models.postprocess import batched_nms


def make_video(n: int, num_classes: int, duration: float = 600.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(n, generator=g) * duration
    lengths = torch.exp(torch.rand(n, generator=g) * 4.0)  # 1 .. 55 s
    segs = torch.stack(((centers - lengths / 2).clamp(min=0), (centers + lengths / 2).clamp(max=duration)), dim=1)
    segs = torch.round(segs * 100) / 100
    scores = torch.round(torch.rand(n, generator=g) ** 3 * 1e4) / 1e4
    labels = torch.randint(0, num_classes, (n,), generator=g)
    return segs, scores, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=20000)
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    torch.set_num_threads(1)
    segs, scores, labels = make_video(args.candidates, args.classes)
    cfg = dict(use_soft_nms=True, sigma=0.7, max_seg_num=2000, multiclass=True, voting_thresh=0.7)
    batched_nms(segs[:500], scores[:500], labels[:500], **cfg)  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = batched_nms(segs, scores, labels, **cfg)
        times.append(time.perf_counter() - t0)
    result = {
        "benchmark": "soft_nms",
        "command": f"taskset -c 0 .venv/bin/python benchmarks/soft_nms.py --candidates {args.candidates} "
        f"--classes {args.classes} --repeats {args.repeats}",
        "candidates": args.candidates,
        "classes": args.classes,
        "nms": cfg,
        "kept": int(out[0].shape[0]),
        "median_s": statistics.median(times),
        "times_s": times,
        "torch_threads": torch.get_num_threads(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores visible), {platform.platform()}",
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soft_nms.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Soft-NMS benchmark",
        "",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}, torch {result['torch']}, 1 thread, CPU affinity {result['cpu_affinity']}",
        f"- date: {result['date']}",
        f"- input: one video, {args.candidates} candidates over {args.classes} classes; settings {cfg}",
        "",
        "| median (s) | min (s) | max (s) | kept |",
        "|---|---|---|---|",
        f"| {result['median_s']:.3f} | {min(times):.3f} | {max(times):.3f} | {result['kept']} |",
        "",
    ]
    (args.out / "soft_nms.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
