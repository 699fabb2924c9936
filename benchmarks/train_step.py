"""Training-step (and inference) speed, peak memory and FLOP rate of the AdaTAD detector on one device.

Default: the seed's model and shape (VideoMAE-S + 12 TIA adapters, ActionFormer head, 768 frames at 160x160,
batch 2) built from ``configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py`` with random weights;
random uint8 inputs and random ground truth are created once, already on the device, so the numbers are the
model's alone (no data loading, no augmentation).

One *step* = forward (losses) + backward + gradient clipping (``solver.clip_grad_norm``, as the Trainer does) +
AdamW step (``adatad.engine.optim.build_optimizer``). Mixed precision as in the Trainer: ``torch.autocast`` with
bf16, or fp16 with a ``GradScaler``; fp32 runs without autocast. ``--compile on`` compiles the backbone in place
(``nn.Module.compile``; the detector's loss has data-dependent shapes).

Measured:

* median / min / mean wall time of ``--steps`` steps after ``--warmup`` steps (``torch.cuda.synchronize`` around
  each step on CUDA);
* peak memory during the timed steps: CUDA ``torch.cuda.max_memory_allocated`` (and reserved); CPU: the
  process' peak resident set minus the resident set before the timed steps (``VmHWM`` reset through
  ``/proc/self/clear_refs``), an upper bound that includes allocator caching;
* FLOPs of one step counted with ``torch.utils.flop_counter.FlopCounterMode`` (matmuls/convolutions/attention;
  elementwise work is not counted; attention on the math backend during the counting step, because the CPU
  flash kernel has no FLOP formula): ``executed`` = what this configuration runs (with checkpointing this
  includes the backbone's recomputed forward), ``useful`` = the same step without recompute (counted with
  checkpointing switched off for the counting step);
* achieved TFLOP/s = FLOPs / median step time, and utilisation = achieved useful TFLOP/s / peak, where the peak
  is ``--peak-tflops`` or measured with ``--measure-peak`` (CUDA: a 8192^3 bf16 matmul; CPU: a 2048^3 fp32 matmul
  with the benchmark's thread count).

Usage::

    python benchmarks/train_step.py --tiny --device cpu --steps 3 --warmup 1         # seconds, CI size
    python benchmarks/train_step.py --device cuda --dtype bf16 --measure-peak         # seed shape, one variant
    python benchmarks/train_step.py --device cuda --sweep --measure-peak              # all variants + inference

Results go to ``--out`` (default ``benchmarks/results``) as ``train_step_<name>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED_CONFIG = ROOT / "configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py"

# --tiny: same architecture family, small enough to run a step on one CPU core in well under a second
TINY_OVERRIDES = {
    "model.backbone.embed_dims": 64,
    "model.backbone.depth": 2,
    "model.backbone.num_heads": 2,
    "model.backbone.adapter_index": [0, 1],
    "model.projection.in_channels": 64,
    "model.projection.out_channels": 64,
    "model.projection.n_head": 4,
    "model.head.feat_channels": 64,
}
TINY_SHAPE = {"frames": 64, "size": 64, "batch": 2}
SEED_SHAPE = {"frames": 768, "size": 160, "batch": 2}


# ----------------------------------------------------------------------------------------------- helpers
def machine_info(device: str) -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    info = {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(
            gpu=torch.cuda.get_device_name(torch.device(device)),
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return info


def _status_kib(key: str) -> int | None:
    try:
        m = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _malloc_trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_peak_tflops(device, repeats: int = 10) -> dict:
    """Dense matmul rate: CUDA 8192^3 bf16 (the device's bf16 tensor-core rate), CPU 2048^3 fp32."""
    import torch

    if device.type == "cuda":
        n, dtype = 8192, torch.bfloat16
    else:
        n, dtype = 2048, torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for i in range(repeats + 2):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        if i >= 2:
            times.append(time.perf_counter() - t)
    best = min(times)
    return {
        "method": f"{n}^3 {str(dtype).replace('torch.', '')} matmul, best of {repeats}",
        "seconds": best,
        "tflops": 2 * n**3 / best / 1e12,
    }


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_config(args) -> dict:
    from adatad.config import load_config

    overrides = dict(TINY_OVERRIDES) if args.tiny else {}
    overrides["dataset.window_size"] = args.frames
    overrides["model.backbone.with_cp"] = args.checkpointing == "on"
    try:
        return load_config(args.config, overrides)
    except Exception as exc:
        raise SystemExit(f"train_step.py: cannot load config {args.config}: {exc}") from exc


def random_batch(args, num_classes: int, device):
    """uint8 frames ``[B, 3, T, S, S]``, masks ``[B, T]`` all valid, 4 random segments per sample in grid units."""
    import torch

    g = torch.Generator().manual_seed(0)
    b, t, s = args.batch, args.frames, args.size
    inputs = torch.randint(0, 256, (b, 3, t, s, s), generator=g, dtype=torch.uint8).to(device)
    masks = torch.ones(b, t, dtype=torch.bool, device=device)
    segs, labels = [], []
    for _ in range(b):
        start = torch.rand(4, generator=g) * 0.8 * t
        length = 2 + torch.rand(4, generator=g) * 0.15 * t
        segs.append(torch.stack([start, (start + length).clamp(max=t)], 1).float().to(device))
        labels.append(torch.randint(0, num_classes, (4,), generator=g).to(device))
    return inputs, masks, segs, labels


def resolve_dtype(args, device):
    """-> (autocast enabled, dtype, use GradScaler)."""
    import torch

    name = args.dtype
    if name == "fp32":
        return False, None, False, name
    if name == "bf16":
        return True, torch.bfloat16, False, name
    return True, torch.float16, True, name


# -------------------------------------------------------------------------------------------------- run
def run(args) -> dict:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from adatad.engine.optim import build_optimizer
    from adatad.models.detector import build_detector

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train_step.py: --device cuda but CUDA is not available here; use --device cpu")
    torch.manual_seed(0)
    cfg = build_config(args)
    model = build_detector(cfg, load_pretrained=False).to(device)
    amp, amp_dtype, use_scaler, dtype_name = resolve_dtype(args, device)
    scaler = torch.amp.GradScaler(device.type) if use_scaler else None
    optimizer = build_optimizer(model, cfg["optimizer"])
    clip = float(cfg["solver"].get("clip_grad_norm") or 0.0)
    trainable = [p for p in model.parameters() if p.requires_grad]
    inputs, masks, segs, labels = random_batch(args, model.num_classes, device)

    def autocast():
        return torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp)

    def forward_backward():
        with autocast():
            losses = model(inputs, masks, segs, labels, return_loss=True)
        loss = losses["cost"]
        (scaler.scale(loss) if scaler is not None else loss).backward()
        return loss

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = forward_backward()
        if clip > 0:
            if scaler is not None:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(trainable, clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        return loss

    def count(fn) -> tuple[int, dict]:
        # math attention while counting: FlopCounterMode has no formula for the CPU flash kernel (counted as 0);
        # the math backend's two batched matmuls count the same FLOPs as the CUDA kernels' formulas
        with FlopCounterMode(display=False) as fc, sdpa_kernel(SDPBackend.MATH):
            fn()
        by_op = {str(k): int(v) for k, v in fc.get_flop_counts().get("Global", {}).items()}
        return int(fc.get_total_flops()), by_op

    def fwd_eval():
        with torch.inference_mode(), autocast():
            model(inputs, masks, return_loss=False)

    result: dict = {}
    flops: dict = {}
    if args.flops == "on":  # counted before compiling; the optimizer is not stepped here
        model.train()
        flops["train_step_executed"], flops["train_step_by_op"] = count(forward_backward)
        cp_blocks = model.backbone.cp_blocks
        if cp_blocks:
            model.backbone.cp_blocks = set()
            flops["train_step_useful"], _ = count(forward_backward)
            model.backbone.cp_blocks = cp_blocks
        else:
            flops["train_step_useful"] = flops["train_step_executed"]
        optimizer.zero_grad(set_to_none=True)
        model.eval()
        flops["inference_forward"], _ = count(fwd_eval)
        model.train()
    if args.compile == "on":
        model.backbone.compile()

    peak = None
    if args.peak_tflops:
        peak = {"method": "given with --peak-tflops", "tflops": float(args.peak_tflops)}
    elif args.measure_peak:
        peak = measure_peak_tflops(device)

    # ------------------------------------------------------------------------------------------ training
    if not args.inference:
        model.train()
        t_compile = time.perf_counter()
        for _ in range(args.warmup):
            step()
        _sync(device)
        warmup_s = time.perf_counter() - t_compile
        mem: dict = {}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            mem["static_mib"] = torch.cuda.memory_allocated(device) / 2**20
        else:
            _malloc_trim()
            mem["rss_reset"] = _reset_peak_rss()
            mem["rss_before_mib"] = (_status_kib("VmRSS") or 0) / 1024
        times, losses = [], []
        for _ in range(args.steps):
            _sync(device)
            t = time.perf_counter()
            loss = step()
            _sync(device)
            times.append(time.perf_counter() - t)
            losses.append(float(loss.detach()))
        if device.type == "cuda":
            mem["peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            mem["peak_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
            mem["peak_mib"] = mem["peak_allocated_mib"]
            mem["method"] = "torch.cuda.max_memory_allocated over the timed steps (model, optimizer state included)"
        else:
            hwm = (_status_kib("VmHWM") or 0) / 1024
            mem["peak_rss_mib"] = hwm
            mem["peak_mib"] = hwm - mem["rss_before_mib"]
            mem["method"] = (
                "CPU: peak resident set during the timed steps minus the resident set before them "
                "(MALLOC_MMAP_THRESHOLD_=65536, malloc_trim, VmHWM reset via /proc/self/clear_refs): "
                "activations, gradients and transient buffers, not the model/optimizer state"
                if mem["rss_reset"]
                else "CPU: VmHWM could not be reset; peak_mib is the process peak delta"
            )
        med = statistics.median(times)
        result["train"] = {
            "steps": args.steps,
            "warmup": args.warmup,
            "warmup_s": warmup_s,
            "median_s": med,
            "min_s": min(times),
            "mean_s": statistics.fmean(times),
            "all_s": times,
            "windows_per_s": args.batch / med,
            "loss_finite": all(x == x and abs(x) != float("inf") for x in losses),
            "memory": mem,
        }
        if flops:
            result["train"]["tflops_useful"] = flops["train_step_useful"] / med / 1e12
            result["train"]["tflops_executed"] = flops["train_step_executed"] / med / 1e12
            if peak:
                result["train"]["utilisation_useful"] = result["train"]["tflops_useful"] / peak["tflops"]

    # ----------------------------------------------------------------------------------------- inference
    if args.inference or args.with_inference:
        model.eval()
        for _ in range(args.warmup):
            fwd_eval()
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(args.steps):
            _sync(device)
            t = time.perf_counter()
            fwd_eval()
            _sync(device)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        inf = {
            "steps": args.steps,
            "median_batch_s": med,
            "s_per_window": med / args.batch,
            "windows_per_s": args.batch / med,
            "all_s": times,
        }
        if device.type == "cuda":
            inf["peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        if flops:
            inf["tflops"] = flops["inference_forward"] / med / 1e12
        result["inference"] = inf

    counts = model.count_parameters()
    return {
        "benchmark": "train_step",
        "command": " ".join(["python", *sys.argv]) if args.command is None else args.command,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(args.device),
        "setup": {
            "config": str(Path(args.config).resolve().relative_to(ROOT))
            if Path(args.config).resolve().is_relative_to(ROOT)
            else str(args.config),
            "tiny": args.tiny,
            "batch": args.batch,
            "frames": args.frames,
            "size": args.size,
            "dtype": dtype_name,
            "checkpointing": args.checkpointing,
            "compile": args.compile,
            "grad_scaler": use_scaler,
            "clip_grad_norm": clip,
            "parameters": counts,
            "optimizer": cfg["optimizer"].get("type", "AdamW"),
        },
        "flops": flops or None,
        "peak": peak,
        **result,
    }


# ------------------------------------------------------------------------------------------------ output
def fmt_row(r: dict) -> str:
    s = r["setup"]
    tr = r.get("train") or {}
    inf = r.get("inference") or {}
    f = r.get("flops") or {}

    def g(d, k, spec):
        return format(d[k], spec) if d.get(k) is not None else "-"

    mem = tr.get("memory", {}).get("peak_mib")
    return (
        f"| {s['batch']} | {s['frames']}x{s['size']} | {s['dtype']} | {s['checkpointing']} | {s['compile']} | "
        f"{g(tr, 'median_s', '.3f')} | {g(tr, 'windows_per_s', '.2f')} | "
        f"{(format(mem, '.1f') if mem is not None else '-')} | "
        f"{(format(f['train_step_useful'] / 1e12, '.4g') if f else '-')} | "
        f"{(format(f['train_step_executed'] / 1e12, '.4g') if f else '-')} | {g(tr, 'tflops_useful', '.3g')} | "
        f"{(format(100 * tr['utilisation_useful'], '.0f') + '%') if tr.get('utilisation_useful') is not None else '-'} | "
        f"{g(inf, 's_per_window', '.4f')} |"
    )


TABLE_HEAD = [
    "| batch | frames x px | dtype | checkpointing | compile | step median (s) | windows/s | peak mem (MiB) | "
    "useful TFLOP/step | executed TFLOP/step | useful TFLOP/s | utilisation | inference s/window |",
    "|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def write_results(results: list[dict], out_dir: Path, name: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath, mpath = out_dir / f"train_step_{name}.json", out_dir / f"train_step_{name}.md"
    payload = results[0] if len(results) == 1 else {"benchmark": "train_step_sweep", "runs": results}
    jpath.write_text(json.dumps(payload, indent=2) + "\n")
    r0 = results[0]
    m = r0["machine"]
    dev = m.get("gpu") or f"CPU {m['cpu']} ({m['torch_threads']} thread(s), affinity {m['cpu_affinity']})"
    lines = [
        f"# Training step: {'tiny model' if r0['setup']['tiny'] else 'VideoMAE-S + TIA adapters (seed model)'} on {dev}",
        "",
        f"- date: {r0['date']}",
        f"- machine: {m['platform']}, {m['cpu']}, torch {m['torch']}"
        + (f", CUDA {m.get('cuda')}, {m.get('gpu')} {m.get('gpu_memory_gib')} GiB" if m.get("gpu") else ""),
        f"- config: `{r0['setup']['config']}`"
        + (" with the --tiny overrides" if r0["setup"]["tiny"] else "")
        + f"; parameters {r0['setup']['parameters']}",
        "- step = forward + backward + grad clipping + AdamW step; random weights, random uint8 inputs and GT on the device",
        "- FLOPs: torch.utils.flop_counter.FlopCounterMode over one step (matmul/conv/attention only); useful = without "
        "checkpointing recompute, executed = as run",
    ]
    if r0.get("peak"):
        lines.append(f"- peak rate: {r0['peak']['tflops']:.2f} TFLOP/s ({r0['peak']['method']}); utilisation = useful TFLOP/s / peak")
    mem_method = (r0.get("train") or {}).get("memory", {}).get("method")
    if mem_method:
        lines.append(f"- memory: {mem_method}")
    lines += ["", "Commands:", ""] + [f"- `{r['command']}`" for r in results] + ["", *TABLE_HEAD]
    lines += [fmt_row(r) for r in results]
    mpath.write_text("\n".join(lines) + "\n")
    return jpath, mpath


def default_name(args) -> str:
    if args.sweep:
        return f"{args.device.split(':')[0]}_sweep"
    parts = [
        args.device.split(":")[0],
        "tiny" if args.tiny else "seed",
        f"{args.frames}x{args.size}",
        f"b{args.batch}",
        args.dtype,
        f"cp-{args.checkpointing}",
    ]
    if args.compile == "on":
        parts.append("compile")
    if args.inference:
        parts.append("inference")
    return "_".join(parts)


SWEEP = [  # (dtype, checkpointing, compile)
    ("bf16", "on", "off"),
    ("bf16", "off", "off"),
    ("fp16", "on", "off"),
    ("fp16", "off", "off"),
    ("bf16", "on", "on"),
    ("bf16", "off", "on"),
]


def sweep(args, argv: list[str]) -> list[dict]:
    """Each variant in a fresh process (clean peak memory); the first also times inference."""
    import tempfile

    keep = []
    skip_next = False
    for a in argv:  # drop the options the sweep sets per run
        if skip_next:
            skip_next = False
            continue
        if a in ("--sweep",):
            continue
        if a in ("--dtype", "--checkpointing", "--compile", "--out", "--name"):
            skip_next = True
            continue
        if a.startswith(("--dtype=", "--checkpointing=", "--compile=", "--out=", "--name=")):
            continue
        keep.append(a)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (dtype, cp, comp) in enumerate(SWEEP):
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                *keep,
                "--dtype",
                dtype,
                "--checkpointing",
                cp,
                "--compile",
                comp,
                "--out",
                tmp,
                "--name",
                f"run{i}",
            ]
            if i == 0:
                cmd.append("--with-inference")
            print("+", " ".join(cmd), flush=True)
            proc = subprocess.run(cmd, cwd=ROOT)
            path = Path(tmp) / f"train_step_run{i}.json"
            if proc.returncode != 0 or not path.exists():
                print(f"variant {dtype}/cp-{cp}/compile-{comp} failed (exit {proc.returncode}); skipped", flush=True)
                continue
            r = json.loads(path.read_text())
            r["command"] = " ".join(
                ["python", "benchmarks/train_step.py", *keep, "--dtype", dtype, "--checkpointing", cp, "--compile", comp]
                + (["--with-inference"] if i == 0 else [])
            )
            results.append(r)
    return results


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(SEED_CONFIG), help="model config (default: the seed's THUMOS config)")
    ap.add_argument("--tiny", action="store_true", help="small model and shape for CPU/CI (embed 64, depth 2, 64 frames, 64 px)")
    ap.add_argument("--batch", type=int, help="windows per step (default 2)")
    ap.add_argument("--frames", type=int, help="frames per window, a multiple of 16 (default 768; --tiny 64)")
    ap.add_argument("--size", type=int, help="frame side in pixels (default 160; --tiny 64)")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "bf16", "fp16", "fp32"],
        help="autocast dtype (fp16 adds a GradScaler); auto = bf16 on CUDA, fp32 on CPU",
    )
    ap.add_argument("--checkpointing", default="on", choices=["on", "off"], help="model.backbone.with_cp")
    ap.add_argument("--compile", default="off", choices=["on", "off"], help="torch.compile the backbone")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, allocator, cuDNN)")
    ap.add_argument("--inference", action="store_true", help="time inference (eval mode, no grad) instead of training")
    ap.add_argument("--with-inference", action="store_true", help="time inference after the training steps")
    ap.add_argument("--flops", default="on", choices=["on", "off"], help="count one step's FLOPs (FlopCounterMode)")
    ap.add_argument("--peak-tflops", type=float, help="the device's dense bf16 matmul rate, for the utilisation")
    ap.add_argument("--measure-peak", action="store_true", help="measure the peak rate (CUDA: 8192^3 bf16 matmul)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument(
        "--sweep", action="store_true", help="run bf16/fp16 x checkpointing on/off (+ bf16 compile on) in fresh processes, one table"
    )
    ap.add_argument("--out", default=str(HERE / "results"), help="folder for the JSON and Markdown results")
    ap.add_argument("--name", help="results file stem after train_step_ (default from the options)")
    ap.add_argument("--command", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    shape = TINY_SHAPE if args.tiny else SEED_SHAPE
    for k, v in shape.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.frames % 16:
        ap.error(f"--frames {args.frames} must be a multiple of 16 (the ViT's chunk length)")
    if args.size % 16:
        ap.error(f"--size {args.size} must be a multiple of 16 (the patch size)")
    if args.dtype == "auto":
        args.dtype = "bf16" if args.device.startswith("cuda") else "fp32"
    if args.steps < 1 or args.warmup < 0 or args.batch < 1:
        ap.error("--steps and --batch must be >= 1, --warmup >= 0")
    return args


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.device == "cpu" and not args.sweep and "MALLOC_MMAP_THRESHOLD_" not in os.environ and sys.platform == "linux":
        # glibc keeps freed tensors below its dynamic mmap threshold (up to 32 MiB) in the heap, so the resident
        # set would hide the step's memory after the warm-up; with a fixed low threshold large tensors are
        # mmap-ed and returned on free (as in backbone_memory.py). Re-run this process with it set.
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
        os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()), *argv])
    sys.path.insert(0, str(ROOT))
    if args.command is None:
        args.command = " ".join(["python", "benchmarks/train_step.py", *argv])
    results = sweep(args, argv) if args.sweep else [run(args)]
    if not results:
        print("no variant ran", file=sys.stderr)
        return 1
    jpath, mpath = write_results(results, Path(args.out), args.name or default_name(args))
    print(mpath.read_text())
    print(f"wrote {jpath} and {mpath}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
