"""Activation memory of the ViT-S + TIA adapter backbone, forward + backward, checkpointing on vs off.

Setup: ``VideoMAEBackbone.from_size("s", adapter_index=range(12), mode="adapter")``, batch 1, 160x160 frames,
float32, random weights (memory does not depend on their values), loss = sum of the output features.

Method (CPU, the default): every configuration runs in a fresh subprocess with ``MALLOC_MMAP_THRESHOLD_=65536``,
so that glibc serves every large tensor with mmap and returns it on free (otherwise glibc's dynamic threshold keeps
freed tensors up to 32 MiB in its heap and the resident set overstates live memory 2-4x). After building the model,
one warm-up step on a single 16-frame chunk (one-time library/thread-pool costs are not activations) and
``malloc_trim``, the kernel's resident-set high-water mark is reset (``echo 5 > /proc/self/clear_refs``) and the
resident set is read (baseline); after forward + backward the high-water mark ``VmHWM`` is read. Activation memory
= peak - baseline: everything the step held at its worst moment (saved activations, transient buffers such as
attention/MLP intermediates, adapter gradients), plus allocator overhead, so it is an upper bound of the bytes the
tensors need. On CUDA (``--device cuda``) ``torch.cuda.max_memory_allocated`` minus the allocation before the step
is used instead.

A full 768-frame window without checkpointing does not fit comfortably on a small CPU machine, so by default
the script measures 64/128/256 frames and extrapolates each setting linearly (least squares over the measured
frame counts) to 768 frames; both the measurements and the extrapolation are saved. Memory is linear in the
window length here because attention stays inside 16-frame chunks and the adapters' temporal conv is local.

Usage::

    python benchmarks/backbone_memory.py                      # CPU, 64 128 256 frames, writes results/
    python benchmarks/backbone_memory.py --frames 768 --device cuda
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _status_kib(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1))


def measure_one(frames: int, with_cp: bool, size: int, device: str, threads: int) -> dict:
    """Run one forward + backward and return the memory numbers (MiB) and the wall time (s)."""
    sys.path.insert(0, str(ROOT))
    import torch

    from adatad.models.videomae import VideoMAEBackbone

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = VideoMAEBackbone.from_size(
        "s", adapter_index=list(range(12)), mode="adapter", with_cp=with_cp, total_frames=frames, out_len=frames
    ).to(device)
    model.train()
    # warm-up on one 16-frame chunk: one-time costs (kernel libraries, thread pools, autograd engine) are not
    # activation memory; then hand freed heap memory back to the OS so that it does not hide in the baseline
    model(torch.randn(1, 3, 16, size, size, device=device)).sum().backward()
    model.zero_grad(set_to_none=True)
    if device != "cuda":
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
    x = torch.randn(1, 3, frames, size, size, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_kib("VmRSS") * 1024
    t0 = time.perf_counter()
    out = model(x)
    out.sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _status_kib("VmHWM") * 1024
    elapsed = time.perf_counter() - t0
    grads = sum(p.grad is not None for p in model.parameters())
    assert grads == sum(p.requires_grad for p in model.parameters()), "every adapter parameter must get a gradient"
    mib = 1024**2
    return {
        "frames": frames,
        "with_cp": with_cp,
        "baseline_mib": round(base / mib, 1),
        "peak_mib": round(peak / mib, 1),
        "activation_mib": round((peak - base) / mib, 1),
        "fwd_bwd_seconds": round(elapsed, 2),
    }


def _fit(points: list[tuple[int, float]], at: int) -> float:
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    slope = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx if sxx else 0.0
    return my + slope * (at - mx)


def _machine(device: str) -> dict:
    cpu = platform.processor()
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    mem = None
    try:
        mem = round(int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 1024**2, 1)
    except (OSError, AttributeError):
        pass
    import torch

    info = {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "ram_gib": mem,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--target-frames", type=int, default=768)
    p.add_argument("--out", default=str(HERE / "results" / "backbone_memory"), help="output path without suffix")
    p.add_argument("--single", nargs=2, metavar=("FRAMES", "CP"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.single:
        res = measure_one(int(args.single[0]), args.single[1] == "1", args.size, args.device, args.threads)
        print(json.dumps(res))
        return 0

    rows = []
    for with_cp in (True, False):
        for frames in args.frames:
            cmd = [sys.executable, __file__, "--single", str(frames), "1" if with_cp else "0"]
            cmd += ["--size", str(args.size), "--device", args.device, "--threads", str(args.threads)]
            env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            if proc.returncode:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            print(row, flush=True)
            rows.append(row)

    extrapolated: dict[str, float] = {}
    slopes: dict[str, float] = {}
    for with_cp in (True, False):
        pts = [(r["frames"], r["activation_mib"]) for r in rows if r["with_cp"] == with_cp]
        if any(f == args.target_frames for f, _ in pts):
            continue
        key = "checkpointing_on" if with_cp else "checkpointing_off"
        extrapolated[key] = round(_fit(pts, args.target_frames), 1)
        if len(pts) > 1:
            slopes[key] = round((_fit(pts, 1000) - _fit(pts, 0)) / 1000, 3)

    result = {
        "benchmark": "VideoMAE-S + 12 TIA adapters, adapter mode, batch 1, float32, forward + backward",
        "command": "python benchmarks/backbone_memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(args.device),
        "image_size": args.size,
        "threads": args.threads,
        "method": (
            "CUDA max_memory_allocated minus allocation before the step"
            if args.device == "cuda"
            else "fresh subprocess per row with MALLOC_MMAP_THRESHOLD_=65536, after a 16-frame warm-up step and malloc_trim; "
            "peak RSS (VmHWM after resetting it via /proc/self/clear_refs) minus RSS before the step"
        ),
        "rows": rows,
        f"extrapolated_activation_mib_at_{args.target_frames}_frames": extrapolated,
        "activation_mib_per_frame": slopes,
        "extrapolation": "least-squares line through the measured rows of each setting" if extrapolated else None,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")

    lines = [
        "# Backbone activation memory (forward + backward)",
        "",
        f"{result['benchmark']}, {args.size}x{args.size} frames.",
        "",
        f"- command: `{result['command']}`",
        f"- date: {result['date']}",
        f"- machine: {result['machine']}",
        f"- method: {result['method']}",
        "",
        "| frames | checkpointing | activation MiB | peak MiB | baseline MiB | fwd+bwd s |",
        "|---:|:---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['frames']} | {'on' if r['with_cp'] else 'off'} | {r['activation_mib']} | {r['peak_mib']} | "
            f"{r['baseline_mib']} | {r['fwd_bwd_seconds']} |"
        )
    if extrapolated:
        lines += ["", f"Linear extrapolation to {args.target_frames} frames (one window of the THUMOS config):", ""]
        for k, v in extrapolated.items():
            per = f", {slopes[k]} MiB per frame" if k in slopes else ""
            lines.append(f"- {k.replace('_', ' ')}: {v} MiB ({v / 1024:.2f} GiB){per}")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
