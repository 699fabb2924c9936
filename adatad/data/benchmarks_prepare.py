"""``adatad prepare multithumos|charades``: OpenTAD-layout annotations from the official MultiTHUMOS and Charades files.

Both write ``{"database": {"<video>": {"subset", "duration" (s), "frame" (count), "annotations": [{"segment":
[start_s, end_s], "label": "<class>"}]}}}`` and ``category_idx.txt`` (one class per line), the layout OpenTAD's
``ThumosPaddingDataset`` (MultiTHUMOS) and ``EpicKitchensPaddingDataset`` (Charades) read, under the file names
OpenTAD's ``_base_/datasets/{multithumos,charades}`` configs name:

- MultiTHUMOS (65 classes on the THUMOS-14 videos; dense and multi-label, so one segment may carry several labels
  and exact (segment, label) duplicates are removed when loading, OpenTAD's ``filter_same_annotation``):
  ``multithumos_anno.json``; THUMOS validation videos -> subset ``"training"``, THUMOS test videos ->
  ``"validation"`` (OpenTAD's THUMOS subset names). Frame counts and fps from ``--videos`` (probed) or THUMOS-14's
  ``{val,test}_video_info.csv`` (the copy shipped with adatad by default).
- Charades (157 classes): ``charades.json``; ``Charades_v1_train.csv`` -> ``"training"``, ``Charades_v1_test.csv``
  -> ``"testing"``. OpenTAD's Charades recipe reads seconds at a fixed 30 fps (the videos re-encoded at 30 fps,
  ``Charades_v1_480_30fps``), so ``frame`` is ``int(length * fps)`` unless ``--videos`` gives the files to probe.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from adatad.annotation_io import AnnotationError, read_text_file

from .annotations import ConversionReport, _csv_rows, _finite, _read_video_info_csv, thumos14_csv_dir, write_annotations

__all__ = ["convert_multithumos", "convert_charades", "add_parsers", "cmd_multithumos", "cmd_charades"]

MULTITHUMOS_ANNOTATION = "multithumos_anno.json"
CHARADES_ANNOTATION = "charades.json"
CHARADES_FPS = 30.0  # OpenTAD's Charades dataset setting (fps=30 in _base_/datasets/charades/*.py)
_THUMOS_SUBSET = {"video_validation_": ("val", "training"), "video_test_": ("test", "validation")}


def _count(report: ConversionReport, database: dict) -> None:
    """Videos and instances per subset into ``report``."""
    for v in database.values():
        report.videos[v["subset"]] = report.videos.get(v["subset"], 0) + 1
        report.instances[v["subset"]] = report.instances.get(v["subset"], 0) + len(v["annotations"])


def _probe(videos_dir: str | os.PathLike | None, name: str, probe) -> tuple[int, float] | None:
    """(frames, duration) of ``videos_dir/<name>.mp4`` when the file exists, else None."""
    if videos_dir is None:
        return None
    path = Path(videos_dir) / f"{name}.mp4"
    if not path.is_file():
        return None
    if probe is None:
        from .video import probe_video as probe
    info = probe(path)
    return int(info["num_frames"]), float(info["num_frames"]) / float(info["fps"])


def _read_class_list(path: Path) -> list[str]:
    """MultiTHUMOS ``class_list.txt``: ``<index> <Class>`` per line (a bare ``<Class>`` is accepted), in index order."""
    names = []
    for ln, line in enumerate(read_text_file(path, "class list", "'<index> <Class>' per line").splitlines()):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise AnnotationError(f"{path}: line {ln + 1} should be '<index> <Class>', got {line!r}")
        names.append(parts[-1])
    if not names:
        raise AnnotationError(f"{path}: no class in the file (expected '<index> <Class>' per line)")
    return names


def convert_multithumos(
    anno_dir: str | os.PathLike,
    class_list: str | os.PathLike | None = None,
    info_dir: str | os.PathLike | None = None,
    videos_dir: str | os.PathLike | None = None,
    probe=None,
) -> tuple[dict, list[str], ConversionReport]:
    """OpenTAD-layout MultiTHUMOS annotations from the official per-class files.

    Args:
        anno_dir: folder of ``<Class>.txt`` files, one instance per line: ``<video> <start_s> <end_s>``.
        class_list: ``class_list.txt`` (``<index> <Class>`` per line) fixing the class order; default: the
            ``<Class>.txt`` names sorted.
        info_dir: folder with THUMOS-14's ``{val,test}_video_info.csv`` (columns ``video,fps,...,count``); default:
            the copy shipped with adatad. Used for videos not found in ``videos_dir``.
        videos_dir: when given, frame count and duration are probed from ``<video>.mp4`` where present.
        probe: ``path -> {"num_frames", "fps", ...}`` (default :func:`adatad.data.video.probe_video`).
    Returns: ``(json_dict, class_names, report)``. Every instance is kept (several labels on one segment are
    MultiTHUMOS's multi-label ground truth); loading removes exact (segment, label) duplicates as OpenTAD does.
    """
    src = Path(anno_dir)
    if not src.is_dir():
        raise AnnotationError(f"not a folder: {src} (expected MultiTHUMOS's annotations/ with <Class>.txt files)")
    files = {p.stem: p for p in sorted(src.glob("*.txt")) if p.name != "class_list.txt"}
    if not files:
        raise AnnotationError(f"no <Class>.txt files in {src}")
    classes = _read_class_list(Path(class_list)) if class_list is not None else sorted(files)
    unlisted = sorted(set(files) - set(classes))
    if unlisted:
        raise AnnotationError(f"{src}: files {', '.join(f'{c}.txt' for c in unlisted[:5])} are not in the class list {class_list}")
    info = Path(info_dir) if info_dir is not None else thumos14_csv_dir()
    meta: dict[str, tuple[float, int]] = {}
    for split in ("val", "test"):
        if (info / f"{split}_video_info.csv").is_file():
            meta.update(_read_video_info_csv(info / f"{split}_video_info.csv"))
    database: dict[str, dict] = {}
    report = ConversionReport()
    for label in classes:
        if label not in files:
            report.notes.append(f"class {label}: no {label}.txt (no instance)")
            continue
        fp = files[label]
        for ln, line in enumerate(read_text_file(fp, "annotation file", "'<video> <start> <end>' per line").splitlines()):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise AnnotationError(f"{fp}: line {ln + 1} should be '<video> <start_s> <end_s>', got {line!r}")
            name = parts[0]
            try:
                s, e = _finite(parts[1], "start"), _finite(parts[2], "end")
            except ValueError as err:
                raise AnnotationError(f"{fp}: line {ln + 1}: {err}") from err
            if e < s:
                raise AnnotationError(f"{fp}: line {ln + 1}: end {e} < start {s}")
            if name not in database:
                subset = next((sub for pre, (_, sub) in _THUMOS_SUBSET.items() if name.startswith(pre)), None)
                if subset is None:
                    raise AnnotationError(f"{fp}: line {ln + 1}: video {name!r} is neither video_validation_* nor video_test_*")
                probed = _probe(videos_dir, name, probe)
                if probed is not None:
                    frames, duration = probed
                elif name in meta:
                    fps, frames = meta[name]
                    duration = frames / fps
                else:
                    raise AnnotationError(f"no frame count for {name} ({fp}): not in {info}/{{val,test}}_video_info.csv; pass --videos DIR")
                database[name] = {"subset": subset, "duration": duration, "frame": frames, "annotations": []}
            database[name]["annotations"].append({"segment": [s, e], "label": label})
    database = dict(sorted(database.items()))
    _count(report, database)
    return {"database": database}, classes, report


_ACTION = re.compile(r"^(c\d{3})\s+(\S+)\s+(\S+)$")


def _read_charades_classes(path: Path) -> dict[str, str]:
    """``Charades_v1_classes.txt``: ``c000 Holding some clothes`` per line -> {id: name}."""
    out: dict[str, str] = {}
    for ln, line in enumerate(read_text_file(path, "class file", "'c000 <class name>' per line").splitlines()):
        if not line.strip():
            continue
        cid, _, name = line.strip().partition(" ")
        if not re.fullmatch(r"c\d{3}", cid) or not name.strip():
            raise AnnotationError(f"{path}: line {ln + 1} should be 'c<3 digits> <class name>', got {line!r}")
        out[cid] = name.strip()
    if not out:
        raise AnnotationError(f"{path}: no class (expected 'c000 <class name>' per line)")
    return out


def convert_charades(
    train_csv: str | os.PathLike,
    test_csv: str | os.PathLike,
    classes_txt: str | os.PathLike,
    videos_dir: str | os.PathLike | None = None,
    fps: float = CHARADES_FPS,
    probe=None,
) -> tuple[dict, list[str], ConversionReport]:
    """OpenTAD-layout Charades annotations from the official CSVs.

    Args:
        train_csv, test_csv: ``Charades_v1_train.csv`` / ``Charades_v1_test.csv``; columns used: ``id``, ``length``
            (seconds) and ``actions`` (``c092 11.90 21.20;c147 0.00 12.60``; empty for a video without action).
        classes_txt: ``Charades_v1_classes.txt`` (``c000 Holding some clothes``); labels are written as these names,
            in this order in ``category_idx.txt``.
        videos_dir: when given, ``frame`` and ``duration`` are probed from ``<id>.mp4`` where present.
        fps: the frame rate of the videos read (OpenTAD: 30); ``frame = int(length * fps)`` without a probe.
    Returns: ``(json_dict, class_names, report)``; train -> subset ``"training"``, test -> ``"testing"``.
    """
    cls = _read_charades_classes(Path(classes_txt))
    database: dict[str, dict] = {}
    report = ConversionReport()
    for path, subset in ((Path(train_csv), "training"), (Path(test_csv), "testing")):
        empty = 0
        for i, row in enumerate(_csv_rows(path, ("id", "length", "actions"))):
            where = f"{path}: row {i + 2} ({row.get('id')!r})"
            try:
                length = _finite(row["length"], "length")
                if not length > 0:
                    raise ValueError(f"length must be positive, got {row['length']!r}")
            except ValueError as e:
                raise AnnotationError(f"{where}: {e}; expected columns id,...,length,...,actions") from e
            annos = []
            for item in (row["actions"] or "").split(";"):
                if not item.strip():
                    continue
                m = _ACTION.match(item.strip())
                if m is None:
                    raise AnnotationError(f"{where}: action {item!r} should be 'c<3 digits> <start_s> <end_s>'")
                cid, a, b = m.groups()
                try:
                    s, e = _finite(a, "start"), _finite(b, "end")
                except ValueError as err:
                    raise AnnotationError(f"{where}: action {item!r}: {err}") from err
                if cid not in cls:
                    raise AnnotationError(f"{where}: class {cid} is not in {classes_txt}")
                if e < s:
                    raise AnnotationError(f"{where}: action {item!r}: end < start")
                annos.append({"segment": [s, e], "label": cls[cid]})
            empty += not annos
            probed = _probe(videos_dir, row["id"], probe)
            frames, duration = probed if probed is not None else (int(length * fps), length)
            if row["id"] in database:
                raise AnnotationError(f"{where}: video {row['id']} appears twice")
            database[row["id"]] = {"subset": subset, "duration": duration, "frame": frames, "annotations": annos}
        if empty:
            report.notes.append(f"{subset}: {empty} videos without an action (kept)")
    _count(report, database)
    return {"database": database}, list(cls.values()), report


def cmd_multithumos(args) -> int:
    data, classes, report = convert_multithumos(args.annotations, args.class_list, args.video_info, args.videos)
    ann, cmap = write_annotations(data, classes, args.out, MULTITHUMOS_ANNOTATION)
    print(report)
    print(f"wrote {ann} and {cmap} ({len(classes)} classes)")
    print("subset names as OpenTAD: THUMOS validation videos = 'training', THUMOS test videos = 'validation'")
    return 0


def cmd_charades(args) -> int:
    data, classes, report = convert_charades(args.train, args.test, args.classes, args.videos, fps=args.fps)
    ann, cmap = write_annotations(data, classes, args.out, CHARADES_ANNOTATION)
    print(report)
    print(f"wrote {ann} and {cmap} ({len(classes)} classes); subsets 'training' (train CSV) and 'testing' (test CSV)")
    return 0


def add_parsers(sub) -> None:
    """Register ``multithumos`` and ``charades`` on the ``adatad prepare`` subparsers."""
    m = sub.add_parser(
        "multithumos",
        help=f"write OpenTAD-layout MultiTHUMOS annotations ({MULTITHUMOS_ANNOTATION}, category_idx.txt)",
        description="MultiTHUMOS (65 classes, dense multi-label, on the THUMOS-14 videos) -> OpenTAD's layout.",
    )
    m.add_argument(
        "--annotations",
        required=True,
        help="MultiTHUMOS's annotations/ folder: one <Class>.txt per class, one instance per line: '<video> <start_s> <end_s>' "
        "(e.g. 'video_validation_0000051 12.3 15.6')",
    )
    m.add_argument("--class-list", help="class_list.txt ('<index> <Class>' per line) fixing the class order (default: file names sorted)")
    m.add_argument(
        "--video-info",
        help="folder with THUMOS-14's {val,test}_video_info.csv (columns video,fps,...,count) for frame counts "
        "(default: the copy shipped with adatad)",
    )
    m.add_argument("--videos", help="THUMOS-14 video folder: frame counts are probed from <video>.mp4 where present")
    m.add_argument("--out", required=True, help="output folder")
    c = sub.add_parser(
        "charades",
        help=f"write OpenTAD-layout Charades annotations ({CHARADES_ANNOTATION}, category_idx.txt)",
        description="Charades (157 classes) -> OpenTAD's layout (seconds; OpenTAD reads them at 30 fps).",
    )
    c.add_argument("--train", required=True, help="Charades_v1_train.csv (columns id, length (s), actions 'c092 11.90 21.20;...')")
    c.add_argument("--test", required=True, help="Charades_v1_test.csv (same columns)")
    c.add_argument("--classes", required=True, help="Charades_v1_classes.txt ('c000 Holding some clothes' per line)")
    c.add_argument("--videos", help="video folder (<id>.mp4, e.g. Charades_v1_480_30fps): frame counts are probed where present")
    c.add_argument("--fps", type=float, default=CHARADES_FPS, help="frame rate of the videos: frame counts without --videos (default 30)")
    c.add_argument("--out", required=True, help="output folder")
