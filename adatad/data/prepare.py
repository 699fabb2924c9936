"""``adatad prepare thumos|anet|epic|ego4d|multithumos|charades|check|cache``: build OpenTAD-format annotations
(THUMOS-14, ActivityNet-1.3, EPIC-Kitchens-100, Ego4D-MQ, MultiTHUMOS, Charades); check videos against them; cache the
snippets a config reads.

    adatad prepare thumos [--csv-dir DIR | --anno-dir DIR] [--videos DIR] --out DIR
    adatad prepare anet --annotations activity_net.v1-3.min.json [--videos DIR] --out DIR   (adatad/data/anet.py)
    adatad prepare epic --csv-dir DIR --out DIR                                           (adatad/data/egocentric.py)
    adatad prepare ego4d --anno-dir DIR --out DIR [--videos DIR --clips DIR]              (adatad/data/egocentric.py)
    adatad prepare multithumos --annotations DIR [--class-list FILE] [--videos DIR] --out DIR  (benchmarks_prepare.py)
    adatad prepare charades --train CSV --test CSV --classes TXT [--videos DIR] --out DIR     (benchmarks_prepare.py)
    adatad prepare check --config CFG | --ann FILE --videos DIR [--class-map FILE] [--subset S]
                         [--decode [--workers N] [--stride K]]
    adatad prepare cache --config CFG [--workers N] [--format raw|jpeg] [--quality Q] [--cache-dir DIR]

``check`` lists every problem in one run (missing, unreadable, frame count off by more than ``--tolerance``
frames) and exits 1 if there is any; it reads headers only (fast). With ``--decode`` it then decodes, in a pool of
``--workers`` processes with a progress bar and an estimate of the time left, every frame the pipeline reads:
``arange(0, frames, stride)`` with the config's stride (``feature_stride * sample_stride / scale_factor``; 4 with
``--ann``, ``--stride 1`` for every frame), and lists each video that fails with its first bad frame.
:func:`check_videos` is the header check as a function (the training engine calls it before a run);
:func:`decode_videos` the decoding pass.

``cache`` stores the frames the config's datasets can read (train, val and test subsets) in ``dataset.cache_dir``
(:mod:`adatad.data.cache`); it is resumable and prints the disk used per hour of video.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adatad.annotation_io import AnnotationError, load_class_map, read_annotation_json
from adatad.cpu import run_in_processes, usable_cores

from .annotations import VideoInfo, convert_thumos, load_annotations, thumos14_csv_dir, write_annotations

__all__ = ["Problem", "check_videos", "decode_videos", "main"]


@dataclass
class Problem:
    """One problem with one video. ``kind``: ``missing``, ``unreadable``, ``frames`` or ``decode``."""

    video: str
    path: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.video}: {self.kind}: {self.detail} ({self.path})"


def check_videos(videos: list[VideoInfo], fast: bool = True, tolerance: int = 3, backend: str = "pyav") -> list[Problem]:
    """Check that every video exists, opens, and has the annotated frame count (± ``tolerance``).

    ``fast=True`` reads headers only; ``fast=False`` also decodes every frame the pipeline reads (every 4th),
    which finds truncated or corrupt files. Returns the problems (empty list: all good).
    """
    from .video import VideoError, VideoReader

    problems: list[Problem] = []
    for v in videos:
        path = str(v.path) if v.path is not None else "?"
        if v.path is None or not Path(v.path).is_file():
            problems.append(Problem(v.name, path, "missing", "video file not found"))
            continue
        try:
            reader = VideoReader(v.path, backend=backend, num_threads=1 if fast else 0)
        except VideoError as e:
            problems.append(Problem(v.name, path, "unreadable", str(e).replace(path, "<file>")))
            continue
        with reader:
            if abs(reader.num_frames - v.frames) > tolerance:
                problems.append(
                    Problem(
                        v.name,
                        path,
                        "frames",
                        f"{reader.num_frames} frames in the file, {v.frames} in the annotation "
                        f"(tolerance {tolerance}); wrong or re-encoded video?",
                    )
                )
            if not fast:
                idx = np.arange(0, reader.num_frames, 4)
                try:
                    for i in range(0, len(idx), 256):
                        reader.get_frames(idx[i : i + 256])
                except VideoError as e:
                    problems.append(Problem(v.name, path, "decode", str(e).replace(path, "<file>")))
    return problems


def _decode_one(job: tuple[str, str, int, str]) -> tuple[str, int, int | None, str | None]:
    """Decode frames ``0, stride, 2*stride, ...`` of one video -> (name, frames decoded, first bad frame, error)."""
    from .video import VideoError, VideoReader

    name, path, stride, backend = job
    done = 0
    try:
        with VideoReader(path, backend=backend, num_threads=1) as reader:
            idx = np.arange(0, reader.num_frames, stride)
            for i in range(0, len(idx), 256):
                reader.get_frames(idx[i : i + 256])
                done += len(idx[i : i + 256])
    except VideoError as e:
        return name, done, e.frame, str(e).replace(path, "<file>")
    return name, done, None, None


def decode_videos(
    videos: list[VideoInfo], stride: int = 4, workers: int | None = None, backend: str = "pyav", progress: bool = True
) -> list[Problem]:
    """Decode frames ``arange(0, frames, stride)`` of every video in a pool of ``workers`` processes (default: the
    usable cores), with a tqdm bar (frames; its ETA is the time left). Returns one ``decode`` problem per video that
    fails, naming its first bad frame. Videos must exist (run :func:`check_videos` first)."""
    workers = workers or usable_cores()
    jobs = [(v.name, str(v.path), int(stride), backend) for v in videos]
    by_name = {v.name: v for v in videos}
    total = sum(len(range(0, v.frames, stride)) for v in videos)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="frame", desc=f"decoding {len(videos)} videos ({workers} workers)", dynamic_ncols=True)
    problems: list[Problem] = []

    def collect(res):
        name, done, frame, err = res
        v = by_name[name]
        if bar is not None:
            bar.update(len(range(0, v.frames, stride)) if err is None else done)
        if err is not None:
            problems.append(Problem(name, str(v.path), "decode", f"first bad frame {frame}: {err}"))

    for res in run_in_processes(_decode_one, jobs, workers):
        collect(res)
    if bar is not None:
        bar.close()
    order = {v.name: i for i, v in enumerate(videos)}
    return sorted(problems, key=lambda p: order[p.video])


def _print_problems(problems: list[Problem], n_videos: int, out=None) -> None:
    out = out or sys.stdout
    if not problems:
        print(f"all {n_videos} videos OK", file=out)
        return
    wv = max(len("video"), *(len(p.video) for p in problems))
    wk = max(len("problem"), *(len(p.kind) for p in problems))
    print(f"{len(problems)} problem(s) in {n_videos} videos:", file=out)
    print(f"{'video':<{wv}}  {'problem':<{wk}}  detail", file=out)
    for p in problems:
        print(f"{p.video:<{wv}}  {p.kind:<{wk}}  {p.detail} [{p.path}]", file=out)


def _class_map_for(ann: Path, class_map: str | None) -> list[str]:
    if class_map:
        return load_class_map(class_map)
    beside = ann.parent / "category_idx.txt"
    if beside.is_file():
        return load_class_map(beside)
    db = read_annotation_json(ann)["database"]
    labels = set()
    for v in db.values():
        annos = v.get("annotations") if isinstance(v, dict) else None
        labels.update(
            a["label"] for a in annos or [] if isinstance(annos, list) and isinstance(a, dict) and isinstance(a.get("label"), str)
        )
    return sorted(labels)


def _cmd_thumos(args) -> int:
    if not (args.csv_dir or args.anno_dir):
        print(f"reading the THUMOS-14 annotations shipped with adatad ({thumos14_csv_dir()}); --csv-dir / --anno-dir read others")
    data, classes, report = convert_thumos(csv_dir=args.csv_dir, anno_dir=args.anno_dir, videos_dir=args.videos)
    ann, cmap = write_annotations(data, classes, args.out)
    print(report)
    print(f"wrote {ann} and {cmap} ({len(classes)} classes)")
    print("subset names as OpenTAD: THUMOS validation videos = 'training', THUMOS test videos = 'validation'")
    return 0


def _cmd_check(args) -> int:
    if args.config:
        try:
            from adatad.config import load_config
        except ImportError:
            print("--config needs adatad.config; use --ann FILE --videos DIR", file=sys.stderr)
            return 2
        d = load_config(args.config)["dataset"]
        ann, cmap, videos = d["annotation_path"], d["class_map"], d["data_path"]
        ext, block, prefix, fps = d["video_ext"], d["block_list"], d["video_prefix"], d["fps"]
        stride = args.stride or max(1, int(d["feature_stride"]) * int(d["sample_stride"]) // int(d["scale_factor"]))
    else:
        if not (args.ann and args.videos):
            print("give --config CFG, or --ann FILE and --videos DIR", file=sys.stderr)
            return 2
        ann, cmap, videos, ext, block, prefix, fps = args.ann, args.class_map, args.videos, args.video_ext, None, "", args.fps
        stride = args.stride or 4
    ann = Path(ann)
    classes = load_class_map(cmap) if cmap else _class_map_for(ann, None)
    if args.subset:
        subsets = args.subset
    else:
        db = read_annotation_json(ann)["database"] if ann.exists() else {}
        subsets = sorted({v["subset"] for v in db.values() if isinstance(v, dict) and isinstance(v.get("subset"), str)}) or ["?"]
    block = args.block_list or block
    vids = load_annotations(ann, classes, subsets, block_list=block, data_path=videos, video_ext=ext, fps=fps)
    prefix = args.video_prefix or prefix  # ActivityNet: id X is read from v_X.mp4 (dataset.video_prefix)
    for v in vids if prefix else ():
        v.path = Path(videos) / f"{prefix}{v.name}.{ext}"
    decode = args.decode or args.full
    frames = "every frame" if stride == 1 else f"frames 0, {stride}, {2 * stride}, ..."
    what = f"headers, then decoding {frames}" if decode else "headers"
    print(f"checking {len(vids)} videos of {subsets} in {videos} ({what})")
    problems = check_videos(vids, fast=True, tolerance=args.tolerance)
    if decode:
        unopened = {p.video for p in problems if p.kind in ("missing", "unreadable")}
        problems += decode_videos([v for v in vids if v.name not in unopened], stride=stride, workers=args.workers)
    _print_problems(problems, len(vids))
    return 1 if problems else 0


def _cmd_cache(args) -> int:
    from dataclasses import replace

    from adatad.config import load_config

    from .cache import CacheSpec, build_cache, short_side_resolution

    cfg = load_config(args.config)
    d = cfg["dataset"]
    cache_dir = args.cache_dir or d["cache_dir"]
    if not cache_dir:
        print(f"{args.config}: dataset.cache_dir is not set; set it in the config or pass --cache-dir DIR", file=sys.stderr)
        return 2
    subsets = sorted({d[s]["subset_name"] for s in ("train", "val", "test")})
    classes = load_class_map(d["class_map"])
    vids = load_annotations(
        d["annotation_path"], classes, subsets, block_list=d["block_list"], data_path=d["data_path"], video_ext=d["video_ext"],
        fps=d["fps"],
    )  # fmt: skip
    missing = [v for v in vids if v.path is None or not Path(v.path).is_file()]
    if missing:
        print(f"skipping {len(missing)} videos without a file: {', '.join(v.name for v in missing[:10])}", file=sys.stderr)
    vids = [v for v in vids if v not in missing]
    spec = CacheSpec(
        feature_stride=int(d["feature_stride"]),
        sample_stride=int(d["sample_stride"]),
        scale_factor=int(d["scale_factor"]),
        backend=d["backend"],
        format=args.format,
        quality=int(args.quality),
    )
    # --resolution transform: each video at the first resize of the transform that reads it (source if both do)
    groups: dict[str, list] = {"source": vids}
    if args.resolution == "transform":
        t = d["transform"]
        train_res, test_res = (short_side_resolution(int(t[s]["resize_short"])) for s in ("train", "test"))
        groups = {}
        for v in vids:
            in_train = v.subset == d["train"]["subset_name"]
            in_test = v.subset in (d["val"]["subset_name"], d["test"]["subset_name"])
            both_differ = in_train and in_test and train_res != test_res  # no one size serves both exactly
            res = "source" if both_differ else train_res if in_train else test_res
            groups.setdefault(res, []).append(v)
    quality = f" q{spec.quality}" if spec.format == "jpeg" else ""
    sizes = ", ".join(f"{len(g)} at {res}" for res, g in sorted(groups.items()))
    print(
        f"caching {len(vids)} videos of {subsets} into {cache_dir}: frames 0, {spec.frame_stride}, "
        f"{2 * spec.frame_stride}, ... and the last, {sizes} (--resolution), {spec.format}{quality} (--format/--quality)"
    )
    st = {"built": 0, "rebuilt": 0, "skipped": 0, "bytes": 0, "hours": 0.0}
    for res, group in sorted(groups.items()):
        part = build_cache(group, cache_dir, replace(spec, resolution=res), workers=args.workers or usable_cores())
        st = {k: st[k] + part[k] for k in st}
    per_hour = st["bytes"] / 1e9 / st["hours"] if st["hours"] else 0.0
    print(
        f"built {st['built']} videos ({st['rebuilt']} stale/foreign rebuilt), {st['skipped']} already cached; cache: "
        f"{st['bytes'] / 1e9:.2f} GB for {st['hours']:.2f} h of video = {per_hour:.2f} GB per hour of video"
    )
    print(f"use it with dataset.cache_dir={cache_dir!r} (--cfg-options dataset.cache_dir={cache_dir})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adatad prepare", description="prepare / check datasets")
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("thumos", help="write OpenTAD-format THUMOS-14 annotations (thumos_14_anno.json, category_idx.txt)")
    src = t.add_mutually_exclusive_group()
    src.add_argument(
        "--csv-dir",
        help="folder with {val,test}_Annotation_ours.csv and {val,test}_video_info.csv "
        "(default: the copy shipped with adatad, AFSD's files; see adatad/data/thumos14/README.md)",
    )
    src.add_argument("--anno-dir", help="folder with the official <Class>_val.txt / <Class>_test.txt files")
    t.add_argument("--videos", help="video folder: fps / frame counts are probed from <video>.mp4 when present")
    t.add_argument("--out", required=True, help="output folder")
    c = sub.add_parser("check", help="check that videos exist, open and match the annotation's frame counts")
    c.add_argument("--config", help="config file (reads dataset.annotation_path, class_map, data_path)")
    c.add_argument("--ann", help="annotation JSON")
    c.add_argument("--videos", help="video folder")
    c.add_argument("--class-map", help="class map (default: category_idx.txt beside --ann, else the file's labels)")
    c.add_argument("--video-ext", default="mp4")
    c.add_argument("--video-prefix", default="", help='file name = PREFIX + video name (ActivityNet: "v_")')
    c.add_argument("--block-list", help="videos to skip, one per line (e.g. missing_files.txt of `prepare anet`)")
    c.add_argument("--subset", action="append", help="subset(s) to check (default: all); repeatable")
    c.add_argument("--fps", type=float, default=-1, help="fixed frame rate of annotations without 'frame' (EPIC-Kitchens: 30; "
                   "a config's dataset.fps); frame counts are then duration x fps")  # fmt: skip
    c.add_argument(
        "--decode",
        action="store_true",
        help="also decode every frame the pipeline reads (frames 0, stride, 2*stride, ...), in parallel; lists each "
        "bad video with its first bad frame (slow: minutes per 100 videos and core)",
    )
    c.add_argument("--full", action="store_true", help=argparse.SUPPRESS)  # the old name of --decode
    c.add_argument("--workers", type=int, default=None, help="decoding processes (default: the usable CPU cores)")
    c.add_argument(
        "--stride",
        type=int,
        default=None,
        help="decode every K-th frame (default: the config's feature_stride x sample_stride / scale_factor, 4 with --ann; 1 = every frame)",
    )
    c.add_argument("--tolerance", type=int, default=3, help="allowed frame-count difference (default 3)")
    from .anet import add_parser as add_anet

    add_anet(sub)
    from .egocentric import add_parsers as add_egocentric  # epic, ego4d

    add_egocentric(sub)
    from .benchmarks_prepare import add_parsers as add_benchmarks  # multithumos, charades

    add_benchmarks(sub)
    k = sub.add_parser("cache", help="store the frames the config reads in dataset.cache_dir (decodes >= 5x faster)")
    k.add_argument("--config", required=True, help="config file (dataset.* keys: annotations, videos, strides, cache_dir)")
    k.add_argument("--cache-dir", help="cache folder (default: the config's dataset.cache_dir)")
    k.add_argument("--workers", type=int, default=None, help="processes (default: the usable CPU cores)")
    k.add_argument("--format", choices=("raw", "jpeg"), default="raw", help="raw (default: exact, ~40x less CPU than H.264, "
                   "4.7 GB per hour of 320x180 video) or jpeg (4:4:4, PSNR >= 44 dB, ~2x less CPU, 0.6 GB per hour)")  # fmt: skip
    k.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    k.add_argument("--resolution", choices=("source", "transform"), default="source",
                   help="source (default: serves every split) or transform: train videos at the train transform's first "
                        "resize (short side resize_short), val/test videos at the test transform's (the clips are the same; "
                        "the workers skip that resize)")  # fmt: skip
    sub.add_parser(
        "custom",
        add_help=False,
        help="your own videos + one CSV/JSON -> annotations, class map and a ready config (see: prepare custom -h)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["custom"]:
        from adatad.data.custom import main as custom_main

        return custom_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.what == "thumos":
            return _cmd_thumos(args)
        if args.what == "anet":
            from .anet import cmd_anet

            return cmd_anet(args)
        if args.what in ("epic", "ego4d"):
            from .egocentric import cmd_ego4d, cmd_epic

            return cmd_epic(args) if args.what == "epic" else cmd_ego4d(args)
        if args.what in ("multithumos", "charades"):
            from . import benchmarks_prepare

            return benchmarks_prepare.cmd_multithumos(args) if args.what == "multithumos" else benchmarks_prepare.cmd_charades(args)
        if args.what == "cache":
            return _cmd_cache(args)
        return _cmd_check(args)
    except AnnotationError as e:
        print(f"adatad: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
