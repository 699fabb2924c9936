"""``adatad prepare anet``: ActivityNet-1.3 annotations in OpenTAD's layout.

    adatad prepare anet --annotations activity_net.v1-3.min.json [--videos DIR] --out DIR

Input: the official file ``{"version", "taxonomy", "database": {id: {"subset", "duration", "resolution", "url",
"annotations": [{"segment": [s, e], "label": name}]}}}`` (ids are YouTube ids, *without* ``v_``; the
``testing`` subset has no annotations).

Output in ``--out`` -- what OpenTAD's ActivityNet configs name (``configs/_base_/datasets/activitynet-1.3/``):

- ``activity_net.v1-3.min.json``: the same database, ids unchanged (OpenTAD reads the video of id ``X`` from
  ``<data_path>/v_X.mp4``: ``PrepareVideoInfo(prefix="v_")``), each video with ``"frame"``, its frame count probed
  from the file when ``--videos`` is given (OpenTAD's padding/sliding ActivityNet datasets read it; ``adatad
  prepare check`` compares it with the file). Durations stay the annotation's: OpenTAD scales predictions with them.
- ``category_idx.txt``: the class map as OpenTAD builds it when it is absent (``get_class_index``): every label of
  every subset, sorted.
- ``missing_files.txt`` (with ``--videos``): ids whose ``v_<id>.<ext>`` is absent or unreadable, one per line --
  OpenTAD's ``block_list``, compared with the annotation ids. OpenTAD's configs expect it in the video folder;
  copy it there, or point the config's ``block_list`` at it.

Not written: ``blocked.json``, the evaluator's fixed list of validation videos taken down from YouTube (the
ActivityNet challenge's list; OpenTAD ships it with its annotations, ``adatad eval --blocked``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from adatad.annotation_io import AnnotationError, read_json

__all__ = ["ANET_ANNOTATION", "ANET_VIDEO_PREFIX", "AnetReport", "convert_anet", "write_anet"]

ANET_ANNOTATION = "activity_net.v1-3.min.json"
ANET_VIDEO_PREFIX = "v_"
SUBSETS = ("training", "validation", "testing")
DURATION_NOTE_SECONDS = 1.0  # report videos whose file is longer/shorter than the annotation by more than this


@dataclass
class AnetReport:
    """What :func:`convert_anet` did: videos and instances per subset, missing / unreadable videos, notes."""

    videos: dict[str, int] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{s}: {self.videos[s]} videos, {self.instances[s]} instances" for s in self.videos]
        if self.missing or self.unreadable:
            lines.append(f"{len(self.missing)} videos missing, {len(self.unreadable)} unreadable (listed in missing_files.txt)")
        return "\n".join(lines + self.notes)


def _validate(database: dict, path: Path) -> list[str]:
    """Every problem of the official-format database, each naming the video (empty list: all good)."""
    errors: list[str] = []
    for vid, info in database.items():
        where = f"video {vid!r}"
        if not isinstance(info, dict):
            errors.append(f"{where}: entry is not an object")
            continue
        if info.get("subset") not in SUBSETS:
            errors.append(f"{where}: 'subset' must be one of {list(SUBSETS)}, got {info.get('subset')!r}")
        dur = info.get("duration")
        if isinstance(dur, bool) or not isinstance(dur, (int, float)) or not (math.isfinite(dur) and dur > 0):
            errors.append(f"{where}: 'duration' must be a positive number of seconds, got {dur!r}")
        annos = info.get("annotations", [])
        if not isinstance(annos, list):
            errors.append(f"{where}: 'annotations' must be a list")
            continue
        for k, a in enumerate(annos):
            seg = a.get("segment") if isinstance(a, dict) else None
            ok = isinstance(seg, (list, tuple)) and len(seg) == 2
            ok = ok and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in seg or ())
            if not ok or not isinstance(a.get("label"), str) or not a["label"]:
                errors.append(f"{where}, annotation {k}: needs 'segment': [start, end] in seconds and 'label': class name; got {a!r}")
    return errors


def _find_video(videos_dir: Path, vid: str, ext: str) -> Path | None:
    p = videos_dir / f"{ANET_VIDEO_PREFIX}{vid}.{ext}"
    return p if p.is_file() else None


def convert_anet(
    annotations: str | os.PathLike,
    videos_dir: str | os.PathLike | None = None,
    video_ext: str = "mp4",
    progress: bool = True,
) -> tuple[dict, list[str], AnetReport]:
    """Read the official ActivityNet file; probe ``videos_dir/v_<id>.<ext>`` for frame counts when given.

    Returns ``(data, classes, report)``: ``data`` is the annotation file to write (the input's top-level fields,
    each video with ``"frame"`` when probed), ``classes`` the sorted labels, ``report.missing`` /
    ``report.unreadable`` the ids without a usable video. Raises :class:`AnnotationError` listing every
    problem of the input at once.
    """
    path = Path(annotations)
    data = read_json(path, "ActivityNet annotation file", key="database", hint="the official activity_net.v1-3.min.json")
    database = data["database"]
    errors = _validate(database, path)
    if errors:
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        raise AnnotationError(f"{len(errors)} problem(s) in {path}:\n" + "\n".join(errors[:50]) + more)
    report = AnetReport()
    prefixed = [v for v in database if v.startswith(ANET_VIDEO_PREFIX)]
    if database and len(prefixed) == len(database):
        report.notes.append(
            f'every id in {path.name} starts with "{ANET_VIDEO_PREFIX}"; OpenTAD adds that prefix to the file name itself '
            f"(v_<id>.mp4), so these videos are looked up as v_{prefixed[0]}.mp4 -- the official file has bare YouTube ids"
        )

    classes = sorted({a["label"] for info in database.values() for a in info.get("annotations", [])})
    for info in database.values():
        report.videos[info["subset"]] = report.videos.get(info["subset"], 0) + 1
        report.instances[info["subset"]] = report.instances.get(info["subset"], 0) + len(info.get("annotations", []))

    out_db: dict[str, dict] = {vid: dict(info) for vid, info in database.items()}
    if videos_dir is not None:
        from .video import VideoError, probe_video

        vdir = Path(videos_dir)
        if not vdir.is_dir():
            raise AnnotationError(f"video folder {vdir} does not exist")
        found = {vid: _find_video(vdir, vid, video_ext) for vid in database}
        bare = [vid for vid, p in found.items() if p is None and (vdir / f"{vid}.{video_ext}").is_file()]
        if bare:
            report.notes.append(
                f'{len(bare)} videos exist without the "{ANET_VIDEO_PREFIX}" prefix (e.g. {bare[0]}.{video_ext}); OpenTAD\'s '
                f"configs read {ANET_VIDEO_PREFIX}<id>.{video_ext}: rename them (they are listed as missing)"
            )
        bar = None
        if progress:
            from tqdm.auto import tqdm

            n_found = sum(p is not None for p in found.values())
            bar = tqdm(total=n_found, unit="video", desc=f"probing videos in {vdir}", dynamic_ncols=True)
        long_off: list[tuple[str, float, float]] = []
        for vid, p in found.items():
            if p is None:
                report.missing.append(vid)
                continue
            try:
                info = probe_video(p)
            except VideoError as e:
                report.unreadable[vid] = str(e)
            else:
                out_db[vid]["frame"] = int(info["num_frames"])
                if abs(float(info["duration"]) - float(database[vid]["duration"])) > DURATION_NOTE_SECONDS:
                    long_off.append((vid, float(info["duration"]), float(database[vid]["duration"])))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        for vid, err in report.unreadable.items():
            report.notes.append(f"unreadable: {vid}: {err}")
        if long_off:
            vid, fd, ad = long_off[0]
            report.notes.append(
                f"{len(long_off)} videos last more than {DURATION_NOTE_SECONDS:g} s longer or shorter than their annotated duration "
                f"(e.g. {vid}: file {fd:.2f} s, annotation {ad:.2f} s); durations kept from the annotation, as OpenTAD uses them"
            )
    out = {k: v for k, v in data.items() if k != "database"}
    out["database"] = out_db
    return out, classes, report


def write_anet(data: dict, classes: list[str], report: AnetReport, out_dir: str | os.PathLike, videos_probed: bool) -> list[Path]:
    """Write ``activity_net.v1-3.min.json``, ``category_idx.txt`` and (when videos were probed) ``missing_files.txt``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ann, cmap = out / ANET_ANNOTATION, out / "category_idx.txt"
    ann.write_text(json.dumps(data))
    cmap.write_text("".join(c + "\n" for c in classes))
    written = [ann, cmap]
    if videos_probed:
        missing = out / "missing_files.txt"
        missing.write_text("".join(v + "\n" for v in [*report.missing, *report.unreadable]))
        written.append(missing)
    return written


def cmd_anet(args) -> int:
    """``adatad prepare anet`` (parsed arguments: ``annotations``, ``videos``, ``video_ext``, ``out``)."""
    data, classes, report = convert_anet(args.annotations, args.videos, args.video_ext)
    written = write_anet(data, classes, report, args.out, videos_probed=args.videos is not None)
    print(report)
    print("wrote " + ", ".join(str(p) for p in written) + f" ({len(classes)} classes)")
    if args.videos is None:
        print('no --videos: no "frame" counts and no missing_files.txt (give --videos to probe the files)')
    else:
        print(
            f"check the videos with: adatad prepare check --ann {written[0]} --videos {args.videos} "
            f"--video-prefix {ANET_VIDEO_PREFIX} --block-list {written[-1]}"
        )
    return 0


def add_parser(sub) -> None:
    """Register ``anet`` on the ``adatad prepare`` subparsers."""
    a = sub.add_parser("anet", help=f"write OpenTAD-layout ActivityNet-1.3 annotations ({ANET_ANNOTATION}, class map, missing list)")
    a.add_argument("--annotations", required=True, help="the official activity_net.v1-3.min.json")
    a.add_argument("--videos", help="video folder with v_<id>.mp4: frame counts are probed and missing videos listed")
    a.add_argument("--video-ext", default="mp4")
    a.add_argument("--out", required=True, help="output folder")
