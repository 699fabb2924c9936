"""The demo's training step on a shared machine: another process holds one core (issue: 0.5 s -> 15-19 s).

Runs ``adatad train configs/demo/demo_tiny.py`` on the demo's synthetic videos (generated once into ``--data``)
for each scenario, reads the per-iteration ``data=`` and ``step=`` times from the log (``logging_interval=1``),
drops ``--warmup`` iterations and reports median / min / max of data+step:

* ``idle``: nothing else running, adatad's choice of threads;
* ``busy-auto``: a busy-loop process (not ours) holds a core, adatad's choice (the free cores);
* ``busy-all``: the same, with the thread count forced to every usable core (``ADATAD_THREADS``, torch's default).

Each scenario stops after ``--seconds`` of training (or the epoch). Slowdown = busy median / idle median.
Results: ``--out`` (default ``benchmarks/results``) ``shared_cpu.json`` and ``.md`` with the command, machine and date.

    python benchmarks/shared_cpu.py              # about 3-5 minutes on 2 cores
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
sys.path.insert(0, str(ROOT))

from adatad.cpu import usable_cores  # noqa: E402

STEP_RE = re.compile(r"data=([0-9.]+)s step=([0-9.]+)s")
LOG_RE = re.compile(r"cpu: [^\n]*")


def run_scenario(name: str, data: Path, work: Path, seconds: float, hog: bool, threads: int | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "ADATAD_THREADS")}
    env["PYTHONPATH"] = str(ROOT)
    if threads:
        env["ADATAD_THREADS"] = str(threads)
    ann = data / "annotations"
    cmd = [
        sys.executable, "-m", "adatad", "train", str(ROOT / "configs/demo/demo_tiny.py"), "--work-dir", str(work / name),
        "--cfg-options", f"dataset.annotation_path={ann / 'anno.json'}", f"dataset.class_map={ann / 'category_idx.txt'}",
        f"dataset.data_path={data / 'videos'}", f"evaluation.ground_truth_filename={ann / 'anno.json'}",
        "workflow.end_epoch=1", "workflow.logging_interval=1", "workflow.val_start_epoch=100",
    ]  # fmt: skip
    hog_proc = None
    if hog:  # started through a shell that exits, so it is not our descendant (adatad subtracts its own children)
        out = subprocess.run(
            ["sh", "-c", f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!"], capture_output=True, text=True
        )
        hog_proc = int(out.stdout.strip())
        time.sleep(0.5)
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, steps, choice = [], [], None
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line)
            m = STEP_RE.search(line)
            if m:
                steps.append(float(m.group(1)) + float(m.group(2)))
                if steps and time.time() - t0 > seconds:
                    break
            c = LOG_RE.search(line)
            if c and choice is None:
                choice = c.group(0)
    finally:
        proc.kill()
        proc.wait()
        if hog_proc:
            os.kill(hog_proc, 9)
    return {"scenario": name, "hog": hog, "forced_threads": threads, "choice": choice, "iterations": steps, "log_tail": lines[-3:]}


def summarise(r: dict, warmup: int) -> dict:
    s = r["iterations"][warmup:] or r["iterations"]
    r.update(n=len(s), median=statistics.median(s), min=min(s), max=max(s))
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="demo_data", help="the demo's synthetic dataset (generated once)")
    p.add_argument("--work", default="/tmp/adatad_shared_cpu")
    p.add_argument("--seconds", type=float, default=60.0, help="training time per scenario")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args()

    from adatad.commands.demo import DEMO_DATA
    from adatad.data.synthetic import generate_dataset

    data = Path(args.data).resolve()
    generate_dataset(data, **DEMO_DATA, progress=False)
    work = Path(args.work)
    cores = usable_cores()
    runs = [
        summarise(run_scenario("idle", data, work, args.seconds, False, None), args.warmup),
        summarise(run_scenario("busy-auto", data, work, args.seconds, True, None), args.warmup),
        summarise(run_scenario("busy-all", data, work, args.seconds, True, cores), args.warmup),
    ]
    idle = runs[0]["median"]
    for r in runs:
        r["slowdown_vs_idle"] = r["median"] / idle
    try:
        cpu_model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu_model = platform.processor()
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model, "usable_cores": cores, "platform": platform.platform()},
        "runs": runs,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "shared_cpu.json").write_text(json.dumps(result, indent=1))
    md = [
        "# Demo training step with one core taken by another process",
        "",
        f"`{result['command']}` — {result['date']} — {cpu_model}, {cores} usable cores",
        "",
        "| scenario | adatad's choice (log) | iterations | median s | min s | max s | vs idle |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        times = f"{r['median']:.3f} | {r['min']:.3f} | {r['max']:.3f}"
        md.append(f"| {r['scenario']} | {r['choice']} | {r['n']} | {times} | {r['slowdown_vs_idle']:.1f}x |")
    (out / "shared_cpu.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
