"""Annotation files: OpenTAD's JSON + class map; loading, validation, conversion from THUMOS-14 sources.

OpenTAD JSON: ``{"database": {"<video>": {"subset", "duration" (s), "frame" (count), "annotations":
[{"segment": [start_s, end_s], "label": "<class>"}]}}}``; class map: one class name per line (the file
readers and the class-map rule live in :mod:`adatad.annotation_io`, shared with ``adatad eval``).
Careful with THUMOS subset names: OpenTAD stores the THUMOS *validation* videos (the TAD training set) as
``"training"`` and the THUMOS *test* videos as ``"validation"``; :func:`convert_thumos` writes the same.

Loading follows OpenTAD's THUMOS dataset: ``"Ambiguous"`` instances skipped; seconds -> frames with
``int(t / duration * frame)``; instances identical after that conversion (same frames, same label) kept once.
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

import numpy as np

from adatad.annotation_io import AnnotationError, load_class_map, read_annotation_json, read_text_file

__all__ = [
    "AnnotationError",
    "VideoInfo",
    "load_class_map",
    "load_annotations",
    "convert_thumos",
    "thumos14_csv_dir",
    "write_annotations",
    "THUMOS_DROPPED_TEST_VIDEOS",
]

THUMOS_DROPPED_TEST_VIDEOS = {
    "video_test_0000270": "wrong annotations",
    "video_test_0001292": "empty annotations",
}
AMBIGUOUS = "Ambiguous"


@dataclass
class VideoInfo:
    """One video of an annotation file.

    Attributes:
        name: video name (file stem).
        subset: subset name in the file.
        duration: seconds; frames: frame count (from the annotation file); fps = frames / duration.
        segments: float32 ``[N, 2]`` ground truth in frames (``int(t / duration * frames)``), Ambiguous skipped,
            duplicates removed.
        labels: int64 ``[N]`` class indices into the class map.
        path: video file path when ``data_path`` was given, else None.
        fixed_fps: OpenTAD's dataset ``fps`` > 0 (EpicKitchens-style datasets, e.g. Charades at 30): seconds are read
            at this rate (``int(t * fps)``), ``frames = int(duration * fps)``; None: ``frames / duration``.
    """

    name: str
    subset: str
    duration: float
    frames: int
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    path: Path | None = None
    rate: float | None = None  # a fixed frame rate given to load_annotations(fps=...) (EPIC: 30), else None

    @property
    def fps(self) -> float:
        return self.rate if self.rate is not None else self.frames / self.duration


def _read_json(path: Path) -> dict:
    return read_annotation_json(path, hint="see `adatad prepare thumos --help`")["database"]


def _is_number(x: object) -> TypeGuard[int | float]:
    """A JSON number that is finite (not a bool, not NaN / Infinity)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _subset_matches(subset: str, subset_name: str | list[str] | tuple[str, ...]) -> bool:
    if isinstance(subset_name, str):
        return subset == subset_name
    return subset in subset_name


def load_annotations(
    ann_file: str | os.PathLike,
    class_map: str | os.PathLike | list[str],
    subset_name: str | list[str] | tuple[str, ...],
    block_list: str | os.PathLike | list[str] | None = None,
    data_path: str | os.PathLike | None = None,
    video_ext: str = "mp4",
    fps: float = -1,
    filter_gt: bool = False,
) -> list[VideoInfo]:
    """Videos of ``subset_name`` (a name or list of names) from an OpenTAD annotation JSON, validated.

    Args:
        ann_file: the JSON file.
        class_map: class-map file or list of names; labels become indices into it.
        subset_name: e.g. ``"training"`` (THUMOS validation videos) or ``"validation"`` (THUMOS test videos).
        block_list: video names (or a file with one per line) to leave out.
        data_path: folder of the videos; sets ``VideoInfo.path = data_path/<name>.<video_ext>``.
        fps: OpenTAD's dataset ``fps``: when > 0 (EPIC-Kitchens: 30), the file needs no ``frame`` field: a video has
            ``int(duration * fps)`` frames and a segment's frames are ``int(t * fps)`` (EpicKitchens*Dataset.get_gt);
            otherwise ``int(t / duration * frame)`` with the file's ``frame``.
        filter_gt: OpenTAD's window datasets' ``filter_gt``: drop instances whose frame length is 0.
    Returns: list of :class:`VideoInfo` in file order. Every problem found is reported at once in one
    :class:`AnnotationError` (video and field named).
    """
    ann_path = Path(ann_file)
    classes = list(class_map) if isinstance(class_map, (list, tuple)) else load_class_map(class_map)
    cls_index = {n: i for i, n in enumerate(classes)}
    database = _read_json(ann_path)
    blocked: set[str] = set()
    if block_list is not None:
        if isinstance(block_list, (list, tuple, set)):
            blocked = set(block_list)
        else:
            text = read_text_file(block_list, "block list", "one video name per line")
            blocked = {ln.strip() for ln in text.splitlines() if ln.strip()}
    errors: list[str] = []
    out: list[VideoInfo] = []
    for name, info in database.items():
        where = f"{ann_path}: video {name!r}"
        if not isinstance(info, dict):
            errors.append(f"{where}: entry is not an object")
            continue
        if not isinstance(info.get("subset"), str):
            errors.append(f"{where}: 'subset' must be a string, got {info.get('subset', '(none)')!r}")
            continue
        if name in blocked or not _subset_matches(info["subset"], subset_name):
            continue
        dur, nfr = info.get("duration"), info.get("frame")
        bad = False
        if not _is_number(dur) or not dur > 0:
            errors.append(f"{where}: 'duration' must be a positive number of seconds, got {dur!r}")
            bad = True
        elif fps > 0:
            nfr = int(dur * fps)
        if fps <= 0 and (not _is_number(nfr) or not nfr > 0 or int(nfr) != nfr):
            errors.append(f"{where}: 'frame' must be a positive frame count, got {nfr!r}")
            bad = True
        annos = info.get("annotations", [])
        if not isinstance(annos, list):
            errors.append(f"{where}: 'annotations' must be a list")
            bad = True
        if bad:
            continue
        assert isinstance(dur, (int, float)) and isinstance(nfr, (int, float))  # validated above
        segs: list[tuple[float, float]] = []
        labels: list[int] = []
        seen: set[tuple[float, float, int]] = set()
        for k, a in enumerate(annos):
            aw = f"{where}, annotation {k}"
            if not isinstance(a, dict) or "segment" not in a or "label" not in a:
                errors.append(f"{aw}: needs 'segment' [start, end] and 'label'")
                continue
            seg, label = a["segment"], a["label"]
            if not isinstance(seg, (list, tuple)) or len(seg) != 2 or not all(map(_is_number, seg)):
                errors.append(f"{aw}: 'segment' must be [start, end] in seconds (finite numbers), got {seg!r}")
                continue
            if seg[1] < seg[0]:
                errors.append(f"{aw}: segment end {seg[1]} < start {seg[0]}")
                continue
            if not isinstance(label, str):
                errors.append(f"{aw}: 'label' must be a class name (a string), got {label!r}")
                continue
            if label == AMBIGUOUS:
                continue
            if label not in cls_index:
                errors.append(f"{aw}: unknown label {label!r} (not in the class map)")
                continue
            fs, fe = (seg[0] * fps, seg[1] * fps) if fps > 0 else (seg[0] / dur * nfr, seg[1] / dur * nfr)
            if not (math.isfinite(fs) and math.isfinite(fe)):
                errors.append(f"{aw}: segment {seg!r} is far beyond the video ({dur} s, {nfr} frames)")
                continue
            s = int(fs)
            e = int(fe)
            if filter_gt and not e - s > 0:
                continue
            key = (float(s), float(e), cls_index[label])
            if key in seen:  # OpenTAD's filter_same_annotation
                continue
            seen.add(key)
            segs.append((float(s), float(e)))
            labels.append(cls_index[label])
        out.append(
            VideoInfo(
                name=name,
                subset=info["subset"],
                duration=float(dur),
                frames=int(nfr),
                segments=np.asarray(segs, dtype=np.float32).reshape(-1, 2),
                labels=np.asarray(labels, dtype=np.int64),
                path=Path(data_path) / f"{name}.{video_ext}" if data_path is not None else None,
                rate=float(fps) if fps > 0 else None,
            )
        )
    if errors:  # one line: the first problems in full (each names the video and field), then the count of the rest
        more = f"; ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        shown = [e.removeprefix(f"{ann_path}: ") for e in errors[:10]]
        raise AnnotationError(f"{len(errors)} problem(s) in {ann_path}: " + "; ".join(shown) + more)
    if not out:
        subsets = sorted({v.get("subset", "?") for v in database.values() if isinstance(v, dict)})
        raise AnnotationError(
            f"{ann_path}: no video in subset {subset_name!r} (subsets in the file: {subsets}). Note OpenTAD's THUMOS "
            "file calls the THUMOS validation videos 'training' and the THUMOS test videos 'validation'."
        )
    return out


# ----------------------------------------------------------------------------------------------------------
# conversion from THUMOS-14 sources


@dataclass
class ConversionReport:
    """What :func:`convert_thumos` did, per subset: videos, instances and everything dropped (with reasons)."""

    videos: dict[str, int] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{s}: {self.videos[s]} videos, {self.instances[s]} instances" for s in sorted(self.videos)]
        return "\n".join(lines + self.notes)


_SPLITS = {"val": "training", "test": "validation"}  # THUMOS split -> OpenTAD subset name


def _csv_rows(path: Path, need: tuple[str, ...]) -> list[dict]:
    """The rows of a CSV with a header that has the columns ``need`` (UTF-8, a byte-order mark is fine)."""
    reader = csv.DictReader(io.StringIO(read_text_file(path, "CSV file")))
    missing = [c for c in need if c not in (reader.fieldnames or [])]
    if missing:
        raise AnnotationError(
            f"{path}: the header has no column {', '.join(missing)} (header: {reader.fieldnames}); expected {','.join(need)},..."
        )
    try:
        return list(reader)
    except csv.Error as e:
        raise AnnotationError(f"{path}: line {reader.line_num}: {e}") from e


def _finite(text: str | None, what: str) -> float:
    """A finite number from a CSV/TXT field (ValueError naming the field otherwise; None is a short row)."""
    if text is None:
        raise ValueError("the row is too short")
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"{what} {text[:24]!r} is not a finite number")
    return x


def _read_video_info_csv(path: Path) -> dict[str, tuple[float, int]]:
    out = {}
    for i, row in enumerate(_csv_rows(path, ("video", "fps", "count"))):
        try:
            fps, count = _finite(row["fps"], "fps"), _finite(row["count"], "count")
            if not fps > 0 or not count > 0:
                raise ValueError(f"fps and count must be positive, got {row['fps']!r}, {row['count']!r}")
        except ValueError as e:
            raise AnnotationError(f"{path}: row {i + 2} ({row.get('video')!r}) malformed: {e}; expected columns video,fps,...,count") from e
        out[row["video"]] = (fps, int(count))
    return out


def _read_csv_split(csv_dir: Path, split: str) -> list[tuple[str, str, float, float]]:
    path = csv_dir / f"{split}_Annotation_ours.csv"
    if not path.exists():
        raise AnnotationError(f"missing {path} (expected {split}_Annotation_ours.csv in --csv-dir)")
    rows = []
    for i, row in enumerate(_csv_rows(path, ("video", "type", "start", "end"))):
        try:
            rows.append((row["video"], row["type"], _finite(row["start"], "start"), _finite(row["end"], "end")))
        except ValueError as e:
            raise AnnotationError(f"{path}: row {i + 2} malformed ({e}); columns video,type,...,start,end") from e
    return rows


def _read_txt_split(anno_dir: Path, split: str) -> list[tuple[str, str, float, float]]:
    files = sorted(anno_dir.glob(f"*_{split}.txt"))
    if not files:
        raise AnnotationError(f"no <Class>_{split}.txt files in {anno_dir}")
    rows = []
    for fp in files:
        label = fp.name[: -len(f"_{split}.txt")]
        for ln, line in enumerate(read_text_file(fp, "annotation file").splitlines()):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise AnnotationError(f"{fp}: line {ln + 1} should be '<video> <start> <end>', got {line!r}")
            try:
                rows.append((parts[0], label, _finite(parts[1], "start"), _finite(parts[2], "end")))
            except ValueError as e:
                raise AnnotationError(f"{fp}: line {ln + 1}: {e}") from e
    return rows


def thumos14_csv_dir() -> Path:
    """The THUMOS-14 annotation CSVs shipped inside the package (``adatad/data/thumos14``, AFSD's files; see its
    README.md): the default source of :func:`convert_thumos` and ``adatad prepare thumos``."""
    root = importlib.resources.files("adatad.data").joinpath("thumos14")
    if not isinstance(root, Path) or not (root / "val_Annotation_ours.csv").is_file():
        raise AnnotationError(f"adatad's THUMOS-14 annotation files are missing from the installation ({root}); reinstall adatad")
    return root


def convert_thumos(
    csv_dir: str | os.PathLike | None = None,
    anno_dir: str | os.PathLike | None = None,
    videos_dir: str | os.PathLike | None = None,
    drop_videos: dict[str, str] | None = None,
    drop_past_end: bool = True,
    keep_ambiguous: bool = False,
    probe=None,
) -> tuple[dict, list[str], ConversionReport]:
    """Build OpenTAD's THUMOS-14 annotation JSON from the AFSD CSVs or the official per-class TXT files.

    Args:
        csv_dir: folder with ``{val,test}_Annotation_ours.csv`` and ``{val,test}_video_info.csv`` (the shipped
            copy, :func:`thumos14_csv_dir`, when neither ``csv_dir`` nor ``anno_dir`` is given).
        anno_dir: folder with the official ``<Class>_val.txt`` / ``<Class>_test.txt`` (and ``Ambiguous_*``);
            video metadata then comes from ``videos_dir`` or from ``{val,test}_video_info.csv`` in that folder.
        videos_dir: when given, fps / frame count / duration are probed from ``<video>.mp4`` (when present).
        drop_videos: videos to leave out (default: ``video_test_0000270``, ``video_test_0001292``).
        drop_past_end: drop instances ending after the video's last frame (``frames / fps``), as OpenTAD's file.
        keep_ambiguous: keep ``Ambiguous`` instances (OpenTAD's file has none; its loader skips them anyway).
        probe: function ``path -> {"num_frames", "fps", "duration"}`` (default :func:`adatad.data.video.probe_video`).
    Returns: ``(json_dict, class_names, report)``; THUMOS val -> subset ``"training"``, test -> ``"validation"``.
    """
    if csv_dir is not None and anno_dir is not None:
        raise ValueError("give at most one of csv_dir (AFSD CSV form) or anno_dir (official TXT form)")
    if csv_dir is None and anno_dir is None:
        csv_dir = thumos14_csv_dir()
    drop_videos = THUMOS_DROPPED_TEST_VIDEOS if drop_videos is None else drop_videos
    src_dir = csv_dir if csv_dir is not None else anno_dir
    assert src_dir is not None  # exactly one of them was given (checked above)
    src = Path(src_dir)
    if not src.is_dir():
        raise AnnotationError(f"not a folder: {src}")
    report = ConversionReport()
    database: dict[str, dict] = {}
    classes: set[str] = set()
    for split, subset in _SPLITS.items():
        rows = _read_csv_split(src, split) if csv_dir is not None else _read_txt_split(src, split)
        info_csv = src / f"{split}_video_info.csv"
        meta: dict[str, tuple[float, int]] = _read_video_info_csv(info_csv) if info_csv.exists() else {}
        names = list(dict.fromkeys(r[0] for r in rows))
        for v in sorted(set(meta) - set(names)):
            if v not in drop_videos:
                names.append(v)  # listed video without instances
        n_amb = n_past = 0
        kept_videos: dict[str, dict] = {}
        for v in names:
            if v in drop_videos:
                report.notes.append(f"dropped {v}: {drop_videos[v]}")
                continue
            fps = frames = dur = None
            vp = Path(videos_dir) / f"{v}.mp4" if videos_dir is not None else None
            if vp is not None and vp.is_file():
                if probe is None:
                    from .video import probe_video as probe
                pr = probe(vp)
                fps, frames, dur = float(pr["fps"]), int(pr["num_frames"]), float(pr["num_frames"]) / float(pr["fps"])
            elif v in meta:
                fps, frames = meta[v]
                dur = frames / fps
            else:
                hint = f" nor {vp}" if vp is not None else ""
                absent = "" if info_csv.is_file() else " (no such file)"
                raise AnnotationError(f"no metadata for {v}: not in {info_csv}{absent}{hint}; pass --videos DIR")
            kept_videos[v] = {"subset": subset, "duration": dur, "frame": frames, "annotations": []}
        for v, label, s, e in rows:
            if v not in kept_videos:
                continue
            if label == AMBIGUOUS and not keep_ambiguous:
                n_amb += 1
                continue
            if e < s:
                raise AnnotationError(f"{src}: {v} {label}: end {e} < start {s}")
            if drop_past_end and e > kept_videos[v]["duration"]:
                n_past += 1
                continue
            kept_videos[v]["annotations"].append({"segment": [s, e], "label": label})
            if label != AMBIGUOUS:
                classes.add(label)
        database.update(kept_videos)
        report.videos[subset] = len(kept_videos)
        report.instances[subset] = sum(len(x["annotations"]) for x in kept_videos.values())
        if n_amb:
            report.notes.append(f"{subset}: skipped {n_amb} Ambiguous instances")
        if n_past:
            report.notes.append(f"{subset}: dropped {n_past} instances ending after the last frame")
    return {"database": database}, sorted(classes), report


def write_annotations(
    data: dict, classes: list[str], out_dir: str | os.PathLike, ann_name: str = "thumos_14_anno.json"
) -> tuple[Path, Path]:
    """Write ``ann_name`` (OpenTAD's file name of the benchmark) and ``category_idx.txt`` into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ann, cmap = out / ann_name, out / "category_idx.txt"
    ann.write_text(json.dumps(data, indent=1))
    cmap.write_text("".join(c + "\n" for c in classes))
    return ann, cmap
