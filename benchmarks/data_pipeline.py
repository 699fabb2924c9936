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

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/data_pipeline.py --modes --video thumoslike.mp4 --windows 8 \
        [--rounds 2] [--cache DIR] [--opentad-train T.json --opentad-test T.json | --opentad-python PY --opentad-anchor DIR]

``--modes [NAME ...]``: every data path of issue 19, per window, as one DataLoader worker spends it: the seed config
with overrides pointing at a one-video annotation set around ``--video`` (a synthetic one without it), the real
``build_dataset`` (decode threads 1) + ``collate``: training windows from the snippet cache or the video, augmentation
on the device (the worker reads and hands over; ``GPUBatchAugment`` timed apart on this CPU on batches of 2) or on
the CPU; test windows from the cache or the video, decode-once (amortised over whole passes of the video) or window
by window. Per-window CPU time of the process (primary) and wall time, median / p25 / p75 / min / max, the core each
window ran on, ``--warmup`` untimed windows per mode and round. With OpenTAD's per-window JSON
(../shared/opentad_pipeline/measure_pipeline.py; given, or run between rounds with ``--opentad-python``): speed-ups
per mode against the issue's targets, and the data-side wall time of THUMOS-14's 60 epochs + validations with
``--project-cores`` cores. Writes results/data_pipeline_modes.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from adatad.data.annotations import thumos14_csv_dir
from adatad.data.cache import short_side_resolution

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
        self.inner, self.last, self.last_cpu = inner, 0.0, 0.0
        self.cpu_since = 0.0  # CPU of every call since take_cpu() last ran (per-frame calls of decode-once included)
        if hasattr(inner, "per_frame"):  # the decode-once path transforms frame chunks as they are decoded
            self.per_frame = self._per_frame

    def __call__(self, frames, generator=None):
        t, c = time.perf_counter(), time.process_time()
        out = self.inner(frames, generator)
        self.last, self.last_cpu = time.perf_counter() - t, time.process_time() - c
        self.cpu_since += self.last_cpu
        return out

    def _per_frame(self, frames):
        c = time.process_time()
        out = self.inner.per_frame(frames)
        self.cpu_since += time.process_time() - c
        return out

    def take_cpu(self) -> float:
        """The transform's CPU time since the previous call (the share of the window just finished)."""
        out, self.cpu_since = self.cpu_since, 0.0
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
        loader.dataset.decode_threads = int(decode_threads)  # pyright: ignore[reportAttributeAccessIssue]
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
            loader.sampler.set_epoch(epoch)  # pyright: ignore[reportAttributeAccessIssue]
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


# ----------------------------------------------------------------------------------------------------------------
# --modes: every data path of issue 19's targets, per window, one core, one thread, the real dataset classes
# ----------------------------------------------------------------------------------------------------------------

# name -> (target letter or "" for the old per-window paths, split, from the cache, augmentation on the device,
#          decode once (test), what is timed)
MODE_SPECS: dict[str, tuple[str, str, bool, bool, bool, str]] = {
    "train_cache_device": ("a", "train", True, True, False, "training window from the cache, augmentation on the device: "
                           "the worker reads the frames and hands them over (RawClip + collate)"),
    "train_cache_cpu": ("b", "train", True, False, False, "training window from the cache, augmentation on the CPU in the worker"),
    "train_video_device": ("c", "train", False, True, False, "training window decoded from the video, augmentation on the device"),
    "train_video_cpu": ("", "train", False, False, False, "old path: training window decoded from the video, CPU augmentation"),
    "test_cache_once": ("d", "test", True, False, True, "test window from the cache, decode-once path (dataset.test.decode_once, "
                        "the default), amortised over the whole video"),
    "test_cache_window": ("d*", "test", True, False, False, "test window from the cache, window by window"),
    "test_video_once": ("e", "test", False, False, True, "test window decoded from the video once, amortised over the whole video"),
    "test_video_window": ("", "test", False, False, False, "old path: test window decoded from the video, window by window"),
}  # fmt: skip
# target letter -> (OpenTAD split, speed-up over OpenTAD required, seconds it means where OpenTAD takes 3.95 / 2.91 s)
TARGETS = {
    "a": ("train", 10.0, 0.40),
    "b": ("train", OPENTAD["train_s_per_window"] / 1.0, 1.0),
    "c": ("train", OPENTAD["train_s_per_window"] / 1.5, 1.5),
    "d": ("test", 8.0, 0.35),
    "e": ("test", OPENTAD["test_s_per_window"] / 0.7, 0.7),
}
AUG = "device_augment_on_cpu"


def current_core() -> int:
    """The CPU this process last ran on: field 39 (``processor``) of /proc/self/stat; -1 where there is none."""
    try:
        text = Path("/proc/self/stat").read_text()
    except OSError:
        return -1
    return int(text[text.rindex(")") + 2 :].split()[36])  # fields from 3 on after "pid (comm) "


def stats(xs) -> dict:
    """median, p25 / p75, min / max, mean, n of a list of seconds."""
    a = np.asarray(xs, dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    p25, med, p75 = np.percentile(a, [25, 50, 75])
    return dict(
        median=float(med), p25=float(p25), p75=float(p75), min=float(a.min()), max=float(a.max()), mean=float(a.mean()), n=int(a.size)
    )


class WindowTimer:
    """Per-window CPU time of this process (``time.process_time``: every thread, the primary number on a shared
    machine) and wall time, plus the core the window ended on."""

    def __init__(self, transform: _TimedTransform | None = None):
        self.cpu: list[float] = []
        self.wall: list[float] = []
        self.cores: list[int] = []
        self.transform_cpu: list[float] = []  # the dataset transform's share of each window (when given)
        self.transform = transform
        self._c = self._t = 0.0

    def start(self) -> None:
        if self.transform is not None:
            self.transform.take_cpu()
        self._c, self._t = time.process_time(), time.perf_counter()

    def lap(self, keep: bool = True) -> None:
        """Ends the window started by :meth:`start` (or the previous lap); ``keep=False`` for a warm-up window."""
        c, t = time.process_time(), time.perf_counter()
        if keep:
            self.cpu.append(c - self._c)
            self.wall.append(t - self._t)
            self.cores.append(current_core())
            if self.transform is not None:
                self.transform_cpu.append(self.transform.take_cpu())
        elif self.transform is not None:
            self.transform.take_cpu()
        self._c, self._t = c, t

    def summary(self) -> dict:
        out = dict(cpu_s=stats(self.cpu), wall_s=stats(self.wall), cpu_per_window_s=self.cpu, wall_per_window_s=self.wall,
                   cores=sorted(set(self.cores)))  # fmt: skip
        if self.transform is not None:
            out["transform_cpu_per_window_s"] = self.transform_cpu
        return out


def one_video_dataset(root: Path, video: Path, thumos_dir: Path) -> dict:
    """A one-video annotation set around ``video`` (OpenTAD's layout, as ../shared/opentad_pipeline/make_dataset.py
    writes it): subset "training", 2-10 s instances of 2 THUMOS classes, one per 25 s; the test split reads the
    same video (``dataset.test.subset_name=training``)."""
    from adatad.data.video import probe_video

    head = probe_video(video)
    frames, fps = int(head["num_frames"]), float(head["fps"])
    duration = frames / fps
    classes = [line.split(maxsplit=1)[1] for line in (thumos_dir / "class_index_detection.txt").read_text().splitlines() if line.strip()][
        :2
    ]
    rng = np.random.default_rng(2024)
    annos, slot = [], 25.0
    for j in range(max(1, int(duration // slot))):
        length = float(rng.uniform(2.0, min(10.0, slot - 1.0, max(2.0, duration - 1.0))))
        start = j * slot + float(rng.uniform(0.5, max(0.5, min(slot, duration) - length - 0.5)))
        annos.append(dict(label=classes[j % 2], segment=[round(start, 2), round(min(start + length, duration), 2)]))
    vdir = root / "videos"
    vdir.mkdir(parents=True, exist_ok=True)
    name = "video_bench_00"
    link = vdir / f"{name}.mp4"
    if not link.exists():
        link.symlink_to(video.resolve())
    ann = root / "anno.json"
    ann.write_text(json.dumps({"database": {name: dict(subset="training", duration=duration, frame=frames, annotations=annos)}}, indent=1))
    cmap = root / "category_idx.txt"
    cmap.write_text("".join(c + "\n" for c in classes))
    return dict(annotation_path=str(ann), class_map=str(cmap), data_path=str(vdir), video=name, frames=frames, fps=fps)


def mode_config(cfg_path: str, paths: dict, cache_dir: str | None, on_gpu: bool, window_size: int | None) -> dict:
    from adatad.config import load_config

    overrides = {
        "dataset.annotation_path": paths["annotation_path"], "dataset.class_map": paths["class_map"],
        "dataset.data_path": paths["data_path"], "dataset.transform.on_gpu": bool(on_gpu),
        "dataset.cache_dir": cache_dir, "dataset.test.subset_name": "training",
    }  # fmt: skip
    if window_size is not None:
        overrides["dataset.window_size"] = int(window_size)
    return load_config(cfg_path, overrides)


def _cache_desc(cache: dict) -> str:
    if "per_split" in cache:
        return "each split at its transform's first resize (`--resolution transform`: " + ", ".join(
            f"{split} {c['resolution']}" for split, c in sorted(cache["per_split"].items())) + ")"  # fmt: skip
    return "source resolution (`adatad prepare cache`'s default)"


def build_bench_cache(cfg: dict, cache_dir: str, resolution: str = "source") -> dict:
    """``adatad prepare cache``'s build (library call: same spec as the command, one worker) -> its statistics.
    ``resolution``: ``source``, or ``short<N>`` (``--resolution transform`` stores each split's video at its
    transform's first resize; the one-video set reads the same video in both splits, so each gets its own cache)."""
    from adatad.annotation_io import load_class_map
    from adatad.data.annotations import load_annotations
    from adatad.data.cache import CacheSpec, build_cache

    d = cfg["dataset"]
    vids = load_annotations(
        d["annotation_path"], load_class_map(d["class_map"]), ["training"], data_path=d["data_path"], video_ext=d["video_ext"]
    )
    spec = CacheSpec(feature_stride=int(d["feature_stride"]), sample_stride=int(d["sample_stride"]), scale_factor=int(d["scale_factor"]),
                     backend=d["backend"], resolution=resolution)  # fmt: skip
    c, t = time.process_time(), time.perf_counter()
    st = build_cache(vids, cache_dir, spec, workers=1, progress=False)
    return dict(cache_dir=cache_dir, format=spec.format, resolution=resolution, built=st["built"], skipped=st["skipped"],
                bytes=st["bytes"], build_cpu_s=time.process_time() - c, build_wall_s=time.perf_counter() - t)  # fmt: skip


def run_mode(name: str, cfg: dict, windows: int, warmup: int, round_no: int, aug=None) -> dict:
    """Per-window times of one mode (see :data:`MODE_SPECS`) through ``build_dataset`` (decode threads 1, as each
    DataLoader worker) and ``collate`` (workers collate their batches; timed per item). ``aug``: a device
    augmentation module run here on CPU on batches of 2 of this mode's raw clips (timed apart)."""
    from adatad.data.datasets import SlidingWindowDataset, collate, sample_seed
    from adatad.engine.builders import build_dataset

    _, split, _, on_gpu, once, _ = MODE_SPECS[name]
    ds = build_dataset(cfg, split, decode_threads=1)
    ds.transform = _TimedTransform(ds.transform)  # its share of each window, reported beside the whole
    seed = int(cfg["solver"]["seed"])
    timer, aug_timer = WindowTimer(ds.transform), WindowTimer()
    out: dict = {}
    if split == "train":
        pending: list[torch.Tensor] = []
        aug_batches = 0
        for k in range(warmup + windows):
            timer.start()
            item = ds[(k % len(ds), sample_seed(seed, round_no * 1000 + k, 0))]  # the same windows for every train mode
            batch = collate([item])
            timer.lap(keep=k >= warmup)
            if aug is not None:
                pending.append(batch["inputs"][0])
                if len(pending) == 2:  # the trainer's batch of 2; the first batch also runs once untimed (warm-up)
                    x = torch.stack(pending, 0)
                    pending = []
                    if not aug_batches:
                        aug(x)
                    aug_timer.start()
                    y = aug(x)
                    aug_timer.lap()
                    aug_batches += 1
                    if tuple(y.shape[2:]) != (x.shape[2], 160, 160):
                        raise RuntimeError(f"device augmentation gave {tuple(y.shape)}")
            del item, batch
        if aug is not None:
            s = aug_timer.summary()
            out[AUG] = dict(per_batch=s, batch_size=2, cpu_per_window_s=[v / 2 for v in aug_timer.cpu],
                            wall_per_window_s=[v / 2 for v in aug_timer.wall])  # fmt: skip
    elif not once:
        for k in range(warmup + windows):
            timer.start()
            batch = collate([ds[k % len(ds)]])
            timer.lap(keep=k >= warmup)
            del batch
    else:
        # decode once: whole passes over the video (VideoStreamDataset's per-worker loop), each window's time = the
        # interval since the previous window (the first carries the opening); amortised = pass total / windows
        assert isinstance(ds, SlidingWindowDataset)
        videos = sorted({w[0] for w in ds.windows})
        gen = ds.iter_video(videos[0], seed=seed)
        for _ in range(min(warmup, len(ds))):
            collate([next(gen)])
        gen.close()
        passes = []
        while len(timer.cpu) < windows:
            for vi in videos:
                n0, c0, t0 = len(timer.cpu), time.process_time(), time.perf_counter()
                timer.start()
                for item in ds.iter_video(vi, seed=seed):
                    collate([item])
                    timer.lap()
                n = len(timer.cpu) - n0
                passes.append(dict(video=ds.videos[vi].name, windows=n, cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - t0))
        cpu_tot, wall_tot, n_tot = (sum(p[k] for p in passes) for k in ("cpu_s", "wall_s", "windows"))
        out["passes"] = passes
        out["amortised"] = dict(cpu_s=cpu_tot / n_tot, wall_s=wall_tot / n_tot, windows=n_tot,
                                cpu_per_pass_s=stats([p["cpu_s"] / p["windows"] for p in passes]))  # fmt: skip
    out.update(timer.summary())
    return out


def _pool(runs: list[dict], key: str) -> list[float]:
    return [v for r in runs for v in r.get(key, [])]


def headline(mode: dict, key: str = "cpu") -> float:
    """The per-window figure compared with OpenTAD: the amortised mean for decode-once modes (whole passes over
    the video), the median of the windows otherwise."""
    if "amortised" in mode:
        return float(mode["amortised"][f"{key}_s"])
    return float(mode[f"{key}_s"]["median"])


def load_opentad(files: list[str]) -> dict | None:
    """Pooled per-window times of ../shared/opentad_pipeline/measure_pipeline.py JSON files (its warm-up item
    excluded, as it writes them)."""
    if not files:
        return None
    items, cores, splits = [], set(), set()
    for f in files:
        r = json.loads(Path(f).read_text())
        items += r["items"]
        cores.update(r.get("affinity", []))
        splits.add(r["split"])
    cpu, wall = [x["cpu_s"] for x in items], [x["wall_s"] for x in items]
    return dict(files=[str(f) for f in files], split=sorted(splits), cpu_s=stats(cpu), wall_s=stats(wall),
                cpu_per_window_s=cpu, wall_per_window_s=wall, affinity=sorted(cores),
                decode_s=stats([x["decode_s"] for x in items]), transforms_s=stats([x["transforms_s"] for x in items]))  # fmt: skip


def compare(modes: dict, opentad: dict) -> list[dict]:
    """One row per mode: adatad per window (CPU, wall), OpenTAD's window of the same split, the speed-up
    OpenTAD / adatad (CPU: primary; wall: secondary), the seconds it means where OpenTAD takes 3.95 / 2.91 s,
    the target and pass / fail."""
    rows = []
    for name, m in modes.items():
        target = MODE_SPECS[name][0]
        split = MODE_SPECS[name][1]
        ot = opentad.get(split)
        row = dict(mode=name, target=target, split=split, cpu_s=headline(m, "cpu"), wall_s=headline(m, "wall"))
        if ot is not None:
            row["opentad_cpu_s"], row["opentad_wall_s"] = ot["cpu_s"]["median"], ot["wall_s"]["median"]
            row["speedup_cpu"] = row["opentad_cpu_s"] / row["cpu_s"]
            row["speedup_wall"] = row["opentad_wall_s"] / row["wall_s"]
            row["s_equivalent"] = OPENTAD[f"{split}_s_per_window"] / row["speedup_cpu"]
            if target in TARGETS:
                need = TARGETS[target][1]
                row["required_speedup"], row["target_s"] = need, TARGETS[target][2]
                row["pass"] = bool(row["speedup_cpu"] >= need)
        rows.append(row)
    return rows


def thumos_schedule(cfg: dict, thumos_dir: Path) -> dict:
    """Windows of the seed recipe on THUMOS-14: training = one window per training video with ground truth per
    epoch (TrainDataset), validation = every sliding window of the "validation" subset (the THUMOS test videos),
    from the real annotation files (adatad/data/thumos14) and adatad.data.windows."""
    from adatad.data.annotations import convert_thumos, load_annotations
    from adatad.data.windows import num_snippets, sliding_windows

    data, classes, _ = convert_thumos(csv_dir=thumos_dir)
    with tempfile.TemporaryDirectory() as tmp:
        ann = Path(tmp) / "anno.json"
        ann.write_text(json.dumps(data))
        train = load_annotations(ann, classes, cfg["dataset"]["train"]["subset_name"])
        val = load_annotations(ann, classes, cfg["dataset"]["val"]["subset_name"])
    d, w = cfg["dataset"], cfg["workflow"]
    stride = int(d["feature_stride"]) * int(d["sample_stride"])
    ws = int(d["window_size"])
    val_windows = sum(len(sliding_windows(num_snippets(v.frames, stride), ws, d["val"]["window_overlap_ratio"])) for v in val)
    end = int(w["end_epoch"] or cfg["scheduler"]["max_epoch"])
    start, every = int(w["val_start_epoch"]), int(w["val_eval_interval"])
    # the trainer's rule (adatad/engine/train.py, as OpenTAD's tools/train.py): after epoch e >= start when (e + 1) % every == 0
    n_val = sum(1 for e in range(end) if e >= start and every > 0 and ((e + 1) % every == 0 or e == end - 1))
    return dict(train_videos=sum(1 for v in train if len(v.segments) > 0), epochs=end, val_videos=len(val),
                val_windows=val_windows, validations=n_val)  # fmt: skip


def projection(rows: list[dict], modes: dict, sched: dict, cores: int) -> list[dict]:
    """Data-side wall time of ``epochs`` epochs + ``validations`` validations with ``cores`` cores, each window
    costing its per-window CPU time measured here (perfect scaling over the cores: an upper bound on the speed)."""
    by = {r["mode"]: r for r in rows}
    train_w = sched["train_videos"] * sched["epochs"]
    val_w = sched["val_windows"] * sched["validations"]

    def hours(train_s: float, test_s: float) -> float:
        return (train_w * train_s + val_w * test_s) / cores / 3600

    ot_train, ot_test = (
        next((r["opentad_cpu_s"] for r in rows if r["split"] == s and "opentad_cpu_s" in r), None) for s in ("train", "test")
    )
    out = []
    aug = modes.get("train_cache_device", {}).get(AUG)
    c = partial(_cpu, by)
    paths = [
        ("OpenTAD (decord + mmaction/imgaug, window by window)", ot_train, ot_test, ""),
        ("adatad old paths (video, CPU augmentation; test window by window)", c("train_video_cpu"), c("test_video_window"), ""),
        ("adatad video, CPU augmentation, test decode-once", c("train_video_cpu"), c("test_video_once"), ""),
        ("adatad video, augmentation on the device (c), test decode-once (e)", c("train_video_device"), c("test_video_once"), "dev"),
        ("adatad cache, CPU augmentation (b), test from the cache (d)", c("train_cache_cpu"), c("test_cache_once"), ""),
        ("adatad cache, augmentation on the device (a), test from the cache (d)", c("train_cache_device"), c("test_cache_once"), "dev"),
    ]
    for label, tr, te, note in paths:
        if tr is None or te is None:
            continue
        row = dict(path=label, train_s=tr, test_s=te, hours=hours(tr, te), note=note)
        if ot_train and ot_test:  # the same ratios to OpenTAD on the machine where it takes 3.95 / 2.91 s
            ref = (OPENTAD["train_s_per_window"] / ot_train, OPENTAD["test_s_per_window"] / ot_test)
            row["hours_at_reference_machine"] = hours(tr * ref[0], te * ref[1])
        if note and aug is not None:
            row["hours_if_device_aug_ran_on_these_cpus"] = hours(tr + aug["per_batch"]["cpu_s"]["median"] / 2, te)
        out.append(row)
    return out


def _cpu(by: dict, name: str) -> float | None:
    return by[name]["cpu_s"] if name in by else None


def run_opentad(args, split: str, round_no: int, out_dir: Path, stem: str) -> str:
    """One interleaved OpenTAD round: measure_pipeline.py in its venv, on this process's cores, one thread; its
    per-window JSON is kept next to the results (``<stem>_opentad_<split>_r<round>.json``)."""
    import subprocess

    anchor = Path(args.opentad_anchor)
    out = out_dir / f"{stem}_opentad_{split}_r{round_no}.json"
    env = dict(os.environ, ANCHOR_DIR=str(anchor), OMP_NUM_THREADS="1")
    if args.opentad_pythonpath:
        env["PYTHONPATH"] = args.opentad_pythonpath
    cmd = [
        args.opentad_python,
        str(anchor / "measure_pipeline.py"),
        split,
        "--n",
        str(args.windows),
        "--decord-threads",
        "1",
        "--out",
        str(out),
    ]
    print(f"OpenTAD {split} round {round_no}: {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, cwd=anchor, env=env, check=True, stdout=subprocess.DEVNULL)
    return str(out)


def machine_info() -> dict:
    try:
        cpu_model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu_model = platform.processor() or platform.machine()
    return dict(platform=platform.platform(), cpu_model=cpu_model, cpu_count=os.cpu_count(),
                affinity=sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                torch=torch.__version__, torch_threads=torch.get_num_threads(), omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                loadavg=os.getloadavg() if hasattr(os, "getloadavg") else None)  # fmt: skip


def malloc_reuse() -> str:
    """glibc: serve every allocation from the heap and never give it back (``mallopt(M_MMAP_MAX, 0)``, trim and top-pad
    thresholds of 2 GiB / 512 MiB), as a DataLoader ``worker_init_fn`` could: a window's 60-130 MB arrays then reuse
    the previous window's pages instead of faulting in fresh zeroed ones (glibc serves blocks above 32 MB with mmap
    and unmaps them on free). -> what was set."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
    ok = [libc.mallopt(m_mmap_max, 0), libc.mallopt(m_trim_threshold, 2**31 - 1), libc.mallopt(m_top_pad, 512 * 2**20)]
    if not all(ok):
        raise RuntimeError(f"mallopt failed: {ok}")
    return "glibc mallopt M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB, M_TOP_PAD=512 MiB (--malloc-reuse)"


def modes_main(args) -> int:
    torch.set_num_threads(1)
    malloc = malloc_reuse() if args.malloc_reuse else "glibc defaults (blocks above 32 MB mmapped, unmapped on free)"
    from adatad.engine.builders import build_gpu_augment

    root = Path(__file__).resolve().parents[1]
    cfg_path = str(root / SEED_CONFIG)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix="adatad_modes_")
    work = Path(tmp.name)
    if args.video:
        video = Path(args.video)
        video_desc = f"{video.name} (sha256 {hashlib.sha256(video.read_bytes()).hexdigest()})"
    else:
        video = work / "synthetic.mp4"
        write_video(video, args.synthetic_frames)
        video_desc = f"synthetic 320x180 30 fps H.264 moving texture, {args.synthetic_frames} frames"
    paths = one_video_dataset(work / "data", video, Path(args.thumos_dir))
    cache_dir = args.cache or str(work / "cache")
    ws = args.window_size
    base_cfg = mode_config(cfg_path, paths, None, False, ws)
    cache_dirs = {"train": cache_dir, "test": cache_dir}
    caches: dict[str, dict] = {}
    for split in ("train", "test") if args.cache_resolution == "transform" else ("train",):
        res = "source"
        if args.cache_resolution == "transform":  # one cache per split, each at its transform's first resize
            res = short_side_resolution(int(base_cfg["dataset"]["transform"][split]["resize_short"]))
            cache_dirs[split] = str(Path(cache_dir) / res)
        c = caches[split] = build_bench_cache(base_cfg, cache_dirs[split], res)
        print(f"cache {cache_dirs[split]} ({res}): built {c['built']}, reused {c['skipped']} ({c['bytes'] / 1e6:.0f} MB, "
              f"{c['build_cpu_s']:.1f} s CPU)", flush=True)  # fmt: skip
    cache = caches["train"] if len(caches) == 1 else {"per_split": caches, "bytes": sum(c["bytes"] for c in caches.values())}
    stem = args.name or "data_pipeline_modes"
    names = [m for m in MODE_SPECS if m in args.modes]
    runs: dict[str, list[dict]] = {m: [] for m in names}
    ot_files: dict[str, list[str]] = {"train": list(args.opentad_train or []), "test": list(args.opentad_test or [])}
    load_before = machine_info()["loadavg"]
    for r in range(args.rounds):
        for split in ("train", "test"):
            if args.opentad_python:
                ot_files[split].append(run_opentad(args, split, r, out_dir, stem))
            order = [m for m in names if MODE_SPECS[m][1] == split]
            for name in order if r % 2 == 0 else order[::-1]:  # odd rounds in reverse: no mode always runs first
                _, _, from_cache, on_gpu, _, _ = MODE_SPECS[name]
                cfg = mode_config(cfg_path, paths, cache_dirs[split] if from_cache else None, on_gpu, ws)
                aug = build_gpu_augment(cfg, torch.device("cpu")) if name == "train_cache_device" else None
                res = run_mode(name, cfg, args.windows, args.warmup, r, aug)
                runs[name].append(res)
                extra = (
                    f", device aug on CPU {res[AUG]['per_batch']['cpu_s'].get('median', float('nan')) / 2:.3f} s/window"
                    if AUG in res
                    else ""
                )
                print(f"round {r} {name:20s}: CPU {headline(res):.3f} s/window (wall {headline(res, 'wall'):.3f}), cores "
                      f"{res['cores']}{extra}", flush=True)  # fmt: skip
    modes = {}
    for name in names:
        rs = runs[name]
        m: dict = dict(description=MODE_SPECS[name][5], target=MODE_SPECS[name][0], rounds=len(rs))
        cpu, wall = _pool(rs, "cpu_per_window_s"), _pool(rs, "wall_per_window_s")
        tf = _pool(rs, "transform_cpu_per_window_s")
        m.update(cpu_s=stats(cpu), wall_s=stats(wall), cpu_per_window_s=cpu, wall_per_window_s=wall,
                 cores=sorted({c for x in rs for c in x["cores"]}), transform_cpu_s=stats(tf), transform_cpu_per_window_s=tf)  # fmt: skip
        if "amortised" in rs[0]:
            passes = [p for x in rs for p in x["passes"]]
            n = sum(p["windows"] for p in passes)
            m["passes"] = passes
            m["amortised"] = dict(cpu_s=sum(p["cpu_s"] for p in passes) / n, wall_s=sum(p["wall_s"] for p in passes) / n, windows=n,
                                  cpu_per_pass_s=stats([p["cpu_s"] / p["windows"] for p in passes]))  # fmt: skip
        if AUG in rs[0]:
            a_cpu, a_wall = _pool([x[AUG] for x in rs], "cpu_per_window_s"), _pool([x[AUG] for x in rs], "wall_per_window_s")
            m[AUG] = dict(batch_size=2, cpu_s=stats(a_cpu), wall_s=stats(a_wall), cpu_per_window_s=a_cpu, wall_per_window_s=a_wall,
                          per_batch=dict(cpu_s=stats([2 * v for v in a_cpu]), wall_s=stats([2 * v for v in a_wall])),
                          note="GPUBatchAugment run on this CPU core on batches of 2 raw clips (the first batch of a round runs once "
                "untimed first): "
                               "an upper bound; a GPU must show its real time")  # fmt: skip
        modes[name] = m
    opentad = {s: load_opentad(f) for s, f in ot_files.items() if f}
    rows = compare(modes, opentad)
    cfg = mode_config(cfg_path, paths, None, False, ws)
    sched = thumos_schedule(load_config_seed(cfg_path), Path(args.thumos_dir))
    proj = projection(rows, modes, sched, args.project_cores)
    cmd = " ".join([Path(sys.executable).name, *sys.argv])
    aff = machine_info()["affinity"]
    if aff is not None:
        cmd = f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} taskset -c {','.join(map(str, aff))} {cmd}"
    result = dict(
        command=cmd, date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        machine=machine_info() | {"loadavg_before": load_before}, config=SEED_CONFIG, window_size=int(cfg["dataset"]["window_size"]),
        video=video_desc, dataset=paths, cache=cache, malloc=malloc,
        windows_per_round=args.windows, warmup_per_round=args.warmup, rounds=args.rounds,
        modes=modes, opentad=opentad, comparison=rows, schedule=sched, projection=dict(cores=args.project_cores, rows=proj),
        targets={k: dict(opentad_split=v[0], required_speedup=v[1], seconds=v[2]) for k, v in TARGETS.items()},
    )  # fmt: skip
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=1))
    md = modes_markdown(result)
    (out_dir / f"{stem}.md").write_text(md)
    print(md)
    return 0


def load_config_seed(cfg_path: str) -> dict:
    from adatad.config import load_config

    return load_config(cfg_path)


def _f(x, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def modes_markdown(res: dict) -> str:
    m = res["machine"]
    md = [
        "# Data pipeline per window, every path (one core, one thread), side by side with OpenTAD",
        "",
        f"Command: `{res['command']}`  ",
        f"Date: {res['date']}  ",
        f"Machine: {m['cpu_model']}, {m['platform']}, {m['cpu_count']} cores shared with other jobs (load average before "
        f"{_fmt_load(m['loadavg_before'])}, after {_fmt_load(m['loadavg'])}); affinity {m['affinity']}, torch {m['torch']}, "
        f"{m['torch_threads']} torch thread, OMP_NUM_THREADS={m['omp_num_threads']}  ",
        f"Video: {res['video']}; config `{res['config']}` (window {res['window_size']} snippets, every 4th frame), "
        f"one-video annotation set; cache: raw uint8, {_cache_desc(res['cache'])}, {res['cache']['bytes'] / 1e6:.0f} MB  ",
        f"{res['rounds']} round(s) x {res['windows_per_round']} timed windows after {res['warmup_per_round']} warm-up window(s) "
        f"per mode and round; OpenTAD rounds interleaved with adatad's when run by this script; allocator: {res['malloc']}",
        "",
        "Per-window **CPU time of the process** (`time.process_time`, primary: the machine is shared) and wall time (secondary). "
        "Per-window modes: median [p25, p75] (min-max). Decode-once modes: the amortised time (all windows' time over whole "
        "passes of the video / windows) and, in brackets, the spread of the single windows' intervals. 'Of which transform': "
        "median CPU of the dataset's transform alone (TrainTransform / EvalTransform, or the RawClip hand-over with "
        "augmentation on the device); the rest is reading or decoding, the item's assembly and the collate.",
        "",
        "| mode | target | adatad CPU s/window | spread [p25, p75] (min-max) | of which transform | wall s | cores | OpenTAD CPU s | "
        "speed-up (CPU) | speed-up (wall) | s-equivalent | target | pass |",
        "|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---|---|",
    ]  # fmt: skip
    for row in res["comparison"]:
        mode = res["modes"][row["mode"]]
        c = mode["cpu_s"]
        spread = f"[{c['p25']:.3f}, {c['p75']:.3f}] ({c['min']:.3f}-{c['max']:.3f})" if c.get("n") else "-"
        tgt = f">= {row['required_speedup']:.2f}x (<= {row['target_s']} s)" if "required_speedup" in row else "-"
        ok = ("PASS" if row["pass"] else "FAIL") if "pass" in row else "-"
        tf = mode.get("transform_cpu_s", {}).get("median")
        md.append(f"| {row['mode']} | {row['target'] or 'old'} | {row['cpu_s']:.3f} | {spread} | {_f(tf)} | {row['wall_s']:.3f} | "
                  f"{','.join(map(str, mode['cores']))} | {_f(row.get('opentad_cpu_s'))} | {_f(row.get('speedup_cpu'), '.2f')}x | "
                  f"{_f(row.get('speedup_wall'), '.2f')}x | {_f(row.get('s_equivalent'), '.2f')} | {tgt} | {ok} |")  # fmt: skip
    aug = res["modes"].get("train_cache_device", {}).get(AUG)
    if aug:
        a = aug["cpu_s"]
        md += ["", f"Device augmentation (GPUBatchAugment) run on this CPU core, batches of 2 raw 180x320 clips: "
               f"{a['median']:.3f} s CPU per window [{a['p25']:.3f}, {a['p75']:.3f}] ({a['min']:.3f}-{a['max']:.3f}), "
               f"n={a['n']} windows: an upper bound, not part of (a)/(c) (the workers never run it); "
               "**a GPU must show its real time** (it runs in the training process, overlapped with the model step)."]  # fmt: skip
    for split, ot in res["opentad"].items():
        if ot:
            md.append(f"\nOpenTAD {split} (measure_pipeline.py, {ot['cpu_s']['n']} windows, cores {ot['affinity']}): CPU "
                      f"{ot['cpu_s']['median']:.3f} s [{ot['cpu_s']['p25']:.3f}, {ot['cpu_s']['p75']:.3f}] "
                      f"({ot['cpu_s']['min']:.3f}-{ot['cpu_s']['max']:.3f}), wall {ot['wall_s']['median']:.3f} s; decode "
                      f"{ot['decode_s']['median']:.3f} s + transforms {ot['transforms_s']['median']:.3f} s (wall medians)")  # fmt: skip
    md += ["", "Speed-up = OpenTAD's median / adatad's figure, both measured in this session on the same video; s-equivalent "
           "= what the speed-up means where OpenTAD takes 3.95 s (train) / 2.91 s (test). `d*`: the cache read window by "
           "window (not the default path)."]  # fmt: skip
    s, p = res["schedule"], res["projection"]
    md += ["", f"## Projection: THUMOS-14, {s['epochs']} epochs + {s['validations']} validations, {p['cores']} cores on the data side", "",
           f"{s['train_videos']} training videos with ground truth -> {s['train_videos']} windows per epoch; {s['val_videos']} "
           f"validation videos -> {s['val_windows']} sliding windows per validation (real annotation files, adatad.data.windows). "
           "Data-side hours = (train windows x train s + validation windows x test s) / cores, CPU seconds per window as "
           "measured here, perfect scaling (no GPU time, no contention).", "",
           "| path | train CPU s/window | test CPU s/window | data-side hours here | at the reference machine's speed "
           "(OpenTAD 3.95 / 2.91 s) | here, with the device augmentation run on these CPUs |",
           "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in p["rows"]:
        alt, ref = r.get("hours_if_device_aug_ran_on_these_cpus"), r.get("hours_at_reference_machine")
        md.append(f"| {r['path']} | {r['train_s']:.3f} | {r['test_s']:.3f} | {r['hours']:.2f} | {_f(ref, '.2f')} | {_f(alt, '.2f')} |")
    return "\n".join(md) + "\n"


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
    lo.add_argument("--name", help="result file stem (default data_pipeline_loader, data_pipeline_modes)")
    mo = ap.add_argument_group("--modes (every path of issue 19's targets, per window, real dataset classes)")
    mo.add_argument("--modes", nargs="*", choices=list(MODE_SPECS), help="measure these modes (no name: all)")
    mo.add_argument("--warmup", type=int, default=1, help="warm-up windows per mode and round (not timed)")
    mo.add_argument("--rounds", type=int, default=1, help="rounds over all modes (with OpenTAD's, interleaved)")
    mo.add_argument("--cache", help="snippet cache folder (built if missing, reused if complete; default: a temp dir)")
    mo.add_argument("--cache-resolution", choices=("source", "transform"), default="source",
                    help="adatad prepare cache --resolution: source, or each split at its transform's first resize")  # fmt: skip
    mo.add_argument("--window-size", type=int, help="override dataset.window_size (tests: tiny windows)")
    mo.add_argument("--synthetic-frames", type=int, default=3072 * 2 + 500, help="frames of the synthetic video (no --video)")
    mo.add_argument("--opentad-train", nargs="+", help="measure_pipeline.py train JSON file(s) (pooled)")
    mo.add_argument("--opentad-test", nargs="+", help="measure_pipeline.py test JSON file(s) (pooled)")
    mo.add_argument("--opentad-python", help="run OpenTAD's measure_pipeline.py with this Python before each round's adatad modes")
    mo.add_argument("--opentad-anchor", help="ANCHOR_DIR of ../shared/opentad_pipeline (OpenTAD, stubs, data, measure_pipeline.py)")
    mo.add_argument("--opentad-pythonpath", help="PYTHONPATH for OpenTAD's run (e.g. where decord / imgaug are)")
    mo.add_argument("--malloc-reuse", action="store_true", help="glibc allocator keeps and reuses big blocks (see malloc_reuse)")
    mo.add_argument("--project-cores", type=int, default=16, help="cores on the data side for the THUMOS projection")
    args = ap.parse_args(argv)
    if args.loader:
        return loader_main(args)
    if args.modes is not None:
        args.modes = args.modes or list(MODE_SPECS)
        return modes_main(args)
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
