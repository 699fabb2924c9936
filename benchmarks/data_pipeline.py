"""Data pipeline speed on one CPU core: windows per second of the training and test pipelines.

    taskset -c 0 python benchmarks/data_pipeline.py [--windows 4] [--out benchmarks/results]

Synthetic THUMOS-like video: 320x180, 30 fps, H.264 (libx264, GOP 250), moving texture. Training window:
decode a 3,072-frame span keeping every 4th frame (768 frames), then the train augmentation to 768x160x160.
Test window: the same decode, resize short side 160 + centre crop. OpenTAD on the same machine kind
(DESIGN.md): 3.95 s per training window, 2.91 s per test window.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

OPENTAD = {"train_s_per_window": 3.95, "test_s_per_window": 2.91}


def texture_frame(i: int, h: int, w: int) -> np.ndarray:
    """Moving texture with some colour, so the encoder has real work (like camera footage, not flat colour)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = i / 30.0
    r = 128 + 60 * np.sin(xx / 7.0 + 3 * t) * np.cos(yy / 11.0 - 2 * t)
    g = 128 + 60 * np.sin((xx + yy) / 13.0 - 4 * t)
    b = 128 + 60 * np.cos(xx / 5.0 - yy / 9.0 + t)
    noise = np.random.default_rng(i).integers(-20, 21, (h, w, 1))
    return np.clip(np.stack([r, g, b], -1) + noise, 0, 255).astype(np.uint8)


def write_video(path: Path, frames: int) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 320, 180, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23", "g": "250", "keyint_min": "25"}
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(texture_frame(i, 180, 320), format="rgb24")
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=4, help="windows timed per pipeline")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--video", help="use this video instead of a synthetic one")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from adatad.data.transforms import TestTransform, TrainTransform
    from adatad.data.video import VideoReader

    tmp = tempfile.TemporaryDirectory()
    video = Path(args.video) if args.video else Path(tmp.name) / "synthetic.mp4"
    if not args.video:
        t = time.perf_counter()
        write_video(video, 3072 * 2 + 500)
        print(f"wrote {video} in {time.perf_counter() - t:.1f} s")
    rng = np.random.default_rng(0)
    train_tf, test_tf = TrainTransform(seed=0), TestTransform()
    g = torch.Generator().manual_seed(0)
    res: dict[str, list[float]] = {"train_decode": [], "train_aug": [], "test_decode": [], "test_tf": []}
    for _ in range(args.windows):
        with VideoReader(video, num_threads=1) as r:
            start = int(rng.integers(0, r.num_frames - 3072)) // 4 * 4
            idx = np.arange(start, start + 3072, 4)
            t0 = time.perf_counter()
            frames = r.get_frames(idx)
            t1 = time.perf_counter()
        out = train_tf(frames, g)
        t2 = time.perf_counter()
        assert out.shape == (3, 768, 160, 160)
        res["train_decode"].append(t1 - t0)
        res["train_aug"].append(t2 - t1)
        with VideoReader(video, num_threads=1) as r:
            t0 = time.perf_counter()
            frames = r.get_frames(idx)
            t1 = time.perf_counter()
        out = test_tf(frames)
        t2 = time.perf_counter()
        res["test_decode"].append(t1 - t0)
        res["test_tf"].append(t2 - t1)
    m = {k: float(np.mean(v)) for k, v in res.items()}
    train_s = m["train_decode"] + m["train_aug"]
    test_s = m["test_decode"] + m["test_tf"]
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    result = {
        "command": "taskset -c 0 " + " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_affinity": affinity, "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "video": "synthetic 320x180 30 fps H.264 GOP 250 moving texture" if not args.video else str(args.video),
        "windows_timed": args.windows,
        "mean_seconds": m,
        "train_s_per_window": train_s,
        "test_s_per_window": test_s,
        "train_windows_per_s": 1 / train_s,
        "test_windows_per_s": 1 / test_s,
        "opentad": OPENTAD,
        "speedup_vs_opentad": {"train": OPENTAD["train_s_per_window"] / train_s,
                               "test": OPENTAD["test_s_per_window"] / test_s},
    }  # fmt: skip
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "data_pipeline_cpu.json").write_text(json.dumps(result, indent=2))
    md = [
        "# Data pipeline on one CPU core",
        "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}  ",
        f"Machine: {result['machine']['platform']}, cores {affinity}, torch {torch.__version__}, 1 thread  ",
        f"Video: {result['video']}; {args.windows} windows of 768 snippets (3,072 frames, every 4th decoded)",
        "",
        "| pipeline | decode (s) | transform (s) | total s/window | windows/s | OpenTAD s/window | speed-up |",
        "|---|---|---|---|---|---|---|",
        f"| train | {m['train_decode']:.2f} | {m['train_aug']:.2f} | {train_s:.2f} | {1 / train_s:.3f} | "
        f"{OPENTAD['train_s_per_window']} | {OPENTAD['train_s_per_window'] / train_s:.2f}x |",
        f"| test | {m['test_decode']:.2f} | {m['test_tf']:.2f} | {test_s:.2f} | {1 / test_s:.3f} | "
        f"{OPENTAD['test_s_per_window']} | {OPENTAD['test_s_per_window'] / test_s:.2f}x |",
        "",
        "OpenTAD numbers: DESIGN.md (decord decode + mmaction/imgaug transforms, same machine kind, one core).",
    ]
    (out_dir / "data_pipeline_cpu.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
