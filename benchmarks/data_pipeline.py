"""Data pipeline speed on one CPU core: windows per second of the training and test pipelines.

    taskset -c 0 python benchmarks/data_pipeline.py [--windows 4] [--out benchmarks/results]

Synthetic THUMOS-like video: 320x180, 30 fps, H.264 (libx264, GOP 250), moving texture. Training window:
decode a 3,072-frame span keeping every 4th frame (768 frames), then the train augmentation to 768x160x160.
Test window: the same decode, resize short side 160 + centre crop. OpenTAD on the same machine kind
(measured on this machine kind, one core): 3.95 s per training window, 2.91 s per test window.

    taskset -c 0,1 python benchmarks/data_pipeline.py --loader [--workers 0 1 2] [--windows 4] [--device cpu]

``--loader``: windows/s through the real loader path: the seed config
(configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py) loaded with ``load_config`` and overrides
pointing the dataset at a synthetic THUMOS-like dataset written to a temp dir (``--videos`` videos, 320x180,
30 fps, H.264, GOP 250, durations drawn from the real THUMOS validation durations in
adatad/data/thumos14/val_video_info.csv, capped at ``--max-seconds``), then ``build_loader`` with N workers for
the train split with CPU augmentation (``dataset.transform.on_gpu=False``), the train split with the GPU path
(``on_gpu=True``: workers only decode, ``build_gpu_augment`` runs on each batch on ``--device``) and the test
split. Writes results/data_pipeline_loader.{json,md}.
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

from adatad.data.annotations import thumos14_csv_dir

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


# ----------------------------------------------------------------------------------------------------------------
# --loader: the real loader path (config -> build_loader -> DataLoader workers), N workers, CPU vs GPU augmentation
# ----------------------------------------------------------------------------------------------------------------

SEED_CONFIG = "configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py"
THUMOS_DIR = thumos14_csv_dir()


def thumos_durations(thumos_dir: Path) -> list[tuple[str, float]]:
    """(video, seconds) of the THUMOS validation videos (the TAD training set): ``count / fps`` of
    ``val_video_info.csv``."""
    import csv

    path = Path(thumos_dir) / "val_video_info.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass --thumos-dir pointing at a folder with THUMOS-14's val_video_info.csv")
    with open(path, newline="") as f:
        return [(r["video"], float(r["count"]) / float(r["fps"])) for r in csv.DictReader(f)]


def thumos_segments(thumos_dir: Path) -> dict[str, list[tuple[str, float, float]]]:
    import csv

    out: dict[str, list[tuple[str, float, float]]] = {}
    with open(Path(thumos_dir) / "val_Annotation_ours.csv", newline="") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["video"], []).append((r["type"], float(r["start"]), float(r["end"])))
    return out


def _write_video_job(job: tuple[str, int]) -> str:
    write_video(Path(job[0]), job[1])
    return job[0]


def write_synthetic_thumos(root: Path, n_videos: int, max_seconds: float, thumos_dir: Path, seed: int, jobs: int) -> dict:
    """A THUMOS-like dataset in ``root``: ``n_videos`` synthetic videos (320x180, 30 fps, H.264, GOP 250) whose
    durations are real THUMOS validation durations (drawn without replacement with ``seed``), each capped at
    ``max_seconds``; ground truth = the real video's THUMOS annotations that end before the cap (one made-up
    instance in the middle when none does). Subset "training" = the videos; subset "validation" = the same
    files under other names (symlinks), for the sliding-window test split. Returns a description."""
    from concurrent.futures import ProcessPoolExecutor

    durations = thumos_durations(thumos_dir)
    segs = thumos_segments(thumos_dir)
    classes = [line.split(maxsplit=1)[1] for line in (Path(thumos_dir) / "class_index_detection.txt").read_text()
               .splitlines() if line.strip()]  # fmt: skip
    pick = np.random.default_rng(seed).choice(len(durations), size=n_videos, replace=False)
    vdir = root / "videos"
    vdir.mkdir(parents=True, exist_ok=True)
    database, videos, write_jobs = {}, [], []
    for i in pick:
        name, real_s = durations[int(i)]
        frames = int(round(min(real_s, max_seconds) * 30))
        dur = frames / 30.0
        annos = [dict(label=c, segment=[s, e]) for c, s, e in segs.get(name, []) if e <= dur and c in classes]
        if not annos:
            annos = [dict(label=classes[0], segment=[0.4 * dur, 0.6 * dur])]
        database[name] = dict(subset="training", duration=dur, frame=frames, annotations=annos)
        database[name + "_as_test"] = dict(subset="validation", duration=dur, frame=frames, annotations=annos)
        write_jobs.append((str(vdir / f"{name}.mp4"), frames))
        (vdir / f"{name}_as_test.mp4").symlink_to(f"{name}.mp4")
        videos.append(dict(video=name, real_seconds=round(real_s, 1), seconds=round(dur, 1), frames=frames))
    t = time.perf_counter()
    with ProcessPoolExecutor(max(1, min(jobs, n_videos))) as ex:
        list(ex.map(_write_video_job, write_jobs))
    ann = root / "thumos_14_anno.json"
    ann.write_text(json.dumps({"database": database}, indent=1))
    cmap = root / "category_idx.txt"
    cmap.write_text("".join(c + "\n" for c in classes))
    return dict(
        root=str(root),
        annotation_path=str(ann),
        class_map=str(cmap),
        data_path=str(vdir),
        videos=videos,
        write_seconds=round(time.perf_counter() - t, 1),
    )


class _TimedTransform:
    """Wraps the dataset's transform; remembers how long its last call took (per process: workers own copies)."""

    def __init__(self, inner):
        self.inner, self.last = inner, 0.0

    def __call__(self, frames, generator=None):
        t = time.perf_counter()
        out = self.inner(frames, generator)
        self.last = time.perf_counter() - t
        return out


def _instrument(loader) -> None:
    """Time each item where it is produced (worker or main process): total ``__getitem__`` (open + decode +
    transform) and the transform alone, carried back in ``metas["_bench"]``. The loader itself is untouched."""
    dataset = loader.dataset
    base = type(dataset)

    class Timed(base):
        def __getitem__(self, item):
            t = time.perf_counter()
            out = super().__getitem__(item)
            total = time.perf_counter() - t
            out["metas"]["_bench"] = dict(item_s=total, transform_s=self.transform.last)
            return out

    dataset.transform = _TimedTransform(dataset.transform)
    dataset.__class__ = Timed


def run_loader_setting(
    cfg_path: str, paths: dict, split: str, workers: int, on_gpu: bool, windows: int, device: str, decode_threads: int | None
) -> dict:
    """Windows/s of ``build_loader(cfg, split)`` with ``workers`` DataLoader workers; with ``on_gpu`` (train) the
    workers only decode and :func:`build_gpu_augment` runs on each batch on ``device`` in this process."""
    import gc

    from adatad.config import load_config
    from adatad.engine.builders import build_gpu_augment, build_loader
    from adatad.engine.dist import DistInfo

    sname = "train" if split == "train" else "test"
    overrides = {
        "dataset.annotation_path": paths["annotation_path"], "dataset.class_map": paths["class_map"],
        "dataset.data_path": paths["data_path"], "dataset.transform.on_gpu": bool(on_gpu),
        f"solver.{sname}.num_workers": int(workers),
        "dataset.test.decode_once": False,  # times window by window (the decode-once path has no per-item time)
    }  # fmt: skip
    cfg = load_config(cfg_path, overrides)
    dev = torch.device(device)
    info = DistInfo(device=dev)
    loader = build_loader(cfg, split, info, int(cfg["solver"]["seed"]))
    if decode_threads is not None:
        loader.dataset.decode_threads = int(decode_threads)
    _instrument(loader)
    aug = build_gpu_augment(cfg, dev) if (on_gpu and split == "train") else None
    size = cfg["dataset"]["transform"]["train" if split == "train" else "test"]["crop_size"]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    wait, aug_s, items, arrivals = [], [], [], []
    got, epoch = 0, 0
    t0 = time.perf_counter()
    it = iter(loader)
    while got < windows:
        tw = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:  # train split: one window per video per epoch; go on with the next epoch
            epoch += 1
            loader.sampler.set_epoch(epoch)
            it = iter(loader)
            continue
        tr = time.perf_counter()
        inputs = batch["inputs"].to(dev, non_blocking=True)
        if aug is not None:
            inputs = aug(inputs)
        sync()
        ta = time.perf_counter()
        b = inputs.shape[0]
        if tuple(inputs.shape[1:]) != (3, cfg["dataset"]["window_size"], size, size):
            raise RuntimeError(f"unexpected batch shape {tuple(inputs.shape)}")
        wait.append(tr - tw)
        aug_s.append((ta - tr) / b)
        items += [m["_bench"] for m in batch["metas"]]
        arrivals.append((ta - t0, b))
        got += b
    wall = time.perf_counter() - t0
    # steady state: after the first max(1, N) batches (the N workers deliver their first batches together)
    k = max(1, workers)
    first_t, first_b = arrivals[0]
    skip_t, skip_w = arrivals[k - 1][0] if len(arrivals) > k else None, sum(b for _, b in arrivals[:k])
    del it, loader, batch, inputs
    gc.collect()
    item_s = float(np.mean([m["item_s"] for m in items]))
    tf_s = float(np.mean([m["transform_s"] for m in items]))
    steady = (got - skip_w) / (wall - skip_t) if skip_t is not None and wall > skip_t else None
    return dict(
        split=split, augmentation=("gpu-batch (" + device + ")" if aug is not None else
                                   "cpu per-sample" if split == "train" else "test transform"),
        workers=workers, windows=got, batches=len(arrivals), wall_s=wall,
        windows_per_s=got / wall, s_per_window=wall / got, steady_windows_per_s=steady,
        first_batch_s=first_t, arrivals_s=[round(a, 3) for a, _ in arrivals],
        per_window=dict(decode_s=item_s - tf_s, worker_transform_s=tf_s, main_augment_s=float(np.mean(aug_s)),
                        main_wait_per_batch_s=float(np.mean(wait))),
    )  # fmt: skip


def loader_markdown(result: dict) -> str:
    """The Markdown table of a --loader result (the JSON written next to it)."""
    m = result["machine"]
    md = [
        "# Data pipeline through the real loader (build_loader, N DataLoader workers)",
        "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}  ",
        f"Machine: {result['machine']['platform']}, {m['cpu_count']} cores (affinity {m['cpu_affinity']}), torch "
        f"{m['torch']}, main process {m['main_process_torch_threads']} torch thread(s), augment device "
        f"{m['device']}; load average (1/5/15 min) before {_fmt_load(m['loadavg_before_after'][0])}, after "
        f"{_fmt_load(m['loadavg_before_after'][1])}  ",
        f"Config: `{SEED_CONFIG}` (batch 2, window 768 snippets = 3,072 frames, every 4th decoded)  ",
        f"Data: {result['dataset']['description']}: "
        + ", ".join(f"{v['seconds']:.0f} s" for v in result["dataset"]["videos"]) + "  ",
        f"{result['windows_per_setting']} windows per setting; decode threads per reader: {result['decode_threads']}",
        "",
        "| split | augmentation | workers | windows/s | s/window (wall) | steady windows/s | first batch (s) | "
        "decode s/window (in worker) | transform s/window (in worker) | augment s/window (main) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in result["rows"]:
        pw = r["per_window"]
        steady = f"{r['steady_windows_per_s']:.3f}" if r["steady_windows_per_s"] else "-"
        md.append(f"| {r['split']} | {r['augmentation']} | {r['workers']} | {r['windows_per_s']:.3f} | "
                  f"{r['s_per_window']:.2f} | {steady} | {r['first_batch_s']:.2f} | {pw['decode_s']:.2f} | "
                  f"{pw['worker_transform_s']:.2f} | {pw['main_augment_s']:.2f} |")  # fmt: skip
    md += [
        "",
        "windows/s = windows / wall time from `iter(loader)` (worker start-up included) to the last batch "
        "augmented; steady = windows after the first max(1, N) batches / time after them ('-': too few "
        "batches). Decode = item time in the worker "
        "(open + seek + decode + RGB) minus its transform; with on_gpu the worker transform is only the "
        "[T,H,W,3] -> [3,T,H,W] copy (RawClip) and the augmentation runs on whole batches in the main process.",
    ]
    if result["note"]:
        md += ["", f"Note: {result['note']}."]
    return "\n".join(md) + "\n"


def _fmt_load(x) -> str:
    return "/".join(f"{v:.1f}" for v in x) if x else "n/a"


def loader_main(args) -> int:
    torch.set_num_threads(args.threads)
    root = Path(__file__).resolve().parents[1]
    cfg_path = str(root / SEED_CONFIG)
    tmp = tempfile.TemporaryDirectory(prefix="adatad_dp_")
    t = time.perf_counter()
    data = write_synthetic_thumos(
        Path(tmp.name),
        args.videos,
        args.max_seconds,
        Path(args.thumos_dir),
        args.seed,
        jobs=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1,
    )
    print(f"wrote {len(data['videos'])} videos in {time.perf_counter() - t:.1f} s: "
          + ", ".join(f"{v['seconds']:.0f} s" for v in data["videos"]), flush=True)  # fmt: skip
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    settings = [(s, g) for s, g in (("train", False), ("train", True), ("test", False)) if s in args.splits]
    rows = []
    for split, on_gpu in settings:
        for n in args.workers:
            r = run_loader_setting(cfg_path, data, split, n, on_gpu, args.windows, args.device, args.decode_threads)
            rows.append(r)
            pw = r["per_window"]
            print(
                f"{split:5s} {r['augmentation']:22s} workers={n}: {r['windows_per_s']:.3f} windows/s "
                f"({r['s_per_window']:.2f} s/window; decode {pw['decode_s']:.2f}, worker transform "
                f"{pw['worker_transform_s']:.2f}, main augment {pw['main_augment_s']:.2f} s/window)",
                flush=True,
            )
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    cmd = " ".join([Path(sys.executable).name, *sys.argv])
    if affinity is not None:
        cmd = f"taskset -c {','.join(map(str, affinity))} {cmd}"
    result = {
        "command": cmd,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "cpu_affinity": affinity, "torch": torch.__version__,
                    "main_process_torch_threads": torch.get_num_threads(), "device": args.device,
                    "loadavg_before_after": [load_before, os.getloadavg() if hasattr(os, "getloadavg") else None]},
        "note": (f"this machine has {os.cpu_count()} cores (shared with other jobs), so worker counts above "
                 f"{os.cpu_count()} cannot be measured here" if (os.cpu_count() or 0) < 16 else ""),
        "config": SEED_CONFIG,
        "dataset": {k: data[k] for k in ("videos", "write_seconds")}
        | {"description": "synthetic 320x180 30 fps H.264 (libx264 veryfast crf 23, GOP 250) moving texture; "
                          "durations: real THUMOS validation videos (val_video_info.csv count/fps, drawn with "
                          f"seed {args.seed}), capped at {args.max_seconds:g} s; test split = the same files"},
        "windows_per_setting": args.windows,
        "batch_size": 2,
        "decode_threads": "FFmpeg auto (0), as build_dataset leaves it" if args.decode_threads is None
        else args.decode_threads,
        "rows": rows,
    }  # fmt: skip
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.name or "data_pipeline_loader"
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=2))
    md = loader_markdown(result)
    (out_dir / f"{stem}.md").write_text(md)
    print(md)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=4, help="windows timed per pipeline")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--video", help="use this video instead of a synthetic one")
    lo = ap.add_argument_group("--loader mode (the real loader path: config -> build_loader -> N workers)")
    lo.add_argument("--loader", action="store_true", help="measure build_loader with N workers instead")
    lo.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader worker counts")
    lo.add_argument("--splits", nargs="+", default=["train", "test"], choices=["train", "test"])
    lo.add_argument("--device", default="cpu", help="device of the GPU batch augmentation (cpu, cuda)")
    lo.add_argument("--videos", type=int, default=4, help="synthetic videos to write")
    lo.add_argument("--max-seconds", type=float, default=150.0, help="cap on each synthetic video's duration")
    lo.add_argument("--thumos-dir", default=str(THUMOS_DIR), help="THUMOS-14 CSVs (real durations; default: adatad/data/thumos14)")
    lo.add_argument("--seed", type=int, default=0, help="seed for drawing the THUMOS durations")
    lo.add_argument("--threads", type=int, default=1, help="torch threads of the main process")
    lo.add_argument(
        "--decode-threads",
        type=int,
        default=None,
        help="override the readers' FFmpeg thread count (default: as build_dataset leaves it, 0 = auto)",
    )
    lo.add_argument("--name", help="result file stem (default data_pipeline_loader)")
    args = ap.parse_args(argv)
    if args.loader:
        return loader_main(args)
    torch.set_num_threads(1)
    from adatad.data.transforms import EvalTransform, TrainTransform
    from adatad.data.video import VideoReader

    tmp = tempfile.TemporaryDirectory()
    video = Path(args.video) if args.video else Path(tmp.name) / "synthetic.mp4"
    if not args.video:
        t = time.perf_counter()
        write_video(video, 3072 * 2 + 500)
        print(f"wrote {video} in {time.perf_counter() - t:.1f} s")
    rng = np.random.default_rng(0)
    train_tf, test_tf = TrainTransform(seed=0), EvalTransform()
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
        "OpenTAD numbers: measured with OpenTAD's own pipeline (decord decode + mmaction/imgaug transforms), same machine kind, one core.",
    ]
    (out_dir / "data_pipeline_cpu.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
