"""Peak memory of `adatad infer` against video length: it must stay flat (windows are streamed).

Writes synthetic 64x64 30 fps videos of the given lengths (minutes), runs `adatad infer` on each in a fresh
process and reads the child's peak RSS (resource.getrusage RUSAGE_CHILDREN, Linux: KiB).

    python benchmarks/infer_memory.py --config CFG --checkpoint CKPT [--minutes 1 10] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_video(path: Path, minutes: float, seed: int) -> None:
    from adatad.data.synthetic import random_video_spec, render_video, write_video

    spec = random_video_spec(path.stem, minutes * 60.0, fps=30.0, size=(64, 64), seed=seed)
    write_video(path, render_video(spec), 30.0)


def peak_rss_of(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd`` in a child process; -> (peak RSS MiB of the child, seconds, output tail)."""
    code = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.stderr.write(r.stdout[-500:] + r.stderr[-1500:]); "
        "sys.exit(r.returncode)"
    )
    t0 = time.time()
    res = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"infer failed: {res.stderr[-2000:]}")
    return int(res.stdout.strip().splitlines()[-1]) / 1024.0, time.time() - t0, res.stderr[-300:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, minutes in enumerate(args.minutes):
            video = Path(tmp) / f"synthetic_{minutes:g}min.mp4"
            make_video(video, minutes, seed=i)
            cmd = [
                sys.executable,
                "-m",
                "adatad.cli",
                "infer",
                str(video),
                "--config",
                args.config,
                "--checkpoint",
                args.checkpoint,
                "--out",
                str(Path(tmp) / "out"),
                "--device",
                "cpu",
            ]
            peak, seconds, _ = peak_rss_of(cmd)
            rows.append(
                {"minutes": minutes, "frames": int(minutes * 60 * 30), "peak_rss_mib": round(peak, 1), "seconds": round(seconds, 1)}
            )
            print(rows[-1])
    result = {
        "command": " ".join(["python", *sys.argv]),
        "machine": f"{platform.platform()} ({platform.processor() or platform.machine()})",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "infer_memory.json").write_text(json.dumps(result, indent=1))
    md = [
        "# `adatad infer` peak memory vs video length (CPU)",
        "",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}",
        "",
        "| video (min) | frames | peak RSS (MiB) | wall (s) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    md += [f"| {r['minutes']:g} | {r['frames']} | {r['peak_rss_mib']} | {r['seconds']} |" for r in rows]
    (out / "infer_memory.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
