"""``adatad prepare custom``: from a folder of videos and one annotation file to a ready training config.

Reads ``video,start,end,label[,subset]`` CSV (seconds) or an ActivityNet/OpenTAD-style JSON, probes every
video, checks everything a long run would otherwise trip on (reported with the CSV line number), splits
videos (not instances) into train/val reproducibly when no subset is given, and writes:

- ``<out>/annotations.json``: OpenTAD format (subsets ``training`` / ``validation`` / ``test``);
- ``<out>/category_idx.txt``: one class name per line (sorted);
- ``<out>/config.py``: inherits the seed's VideoMAE-S adapter config, with the paths, classes and a window
  chosen from the data (the reasons are written next to the values);
- ``<out>/report.json`` and a printed report.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import json
import math
import os
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from adatad.annotation_io import AnnotationError, read_json, read_text_file

SEED_CONFIG = "adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py"  # a shipped config (adatad.config.packaged_config)
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")
SUBSETS = {"train": "training", "training": "training", "val": "validation", "validation": "validation", "test": "test"}
WINDOW_CHOICES = (128, 192, 256, 384, 512, 640, 768)
MAX_WINDOW = 768


@dataclass
class Row:
    line: int | str  # CSV line number, or "video[index]" for JSON input
    video: str
    start: float
    end: float
    label: str
    subset: str | None = None


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bad_rows: set = field(default_factory=set)

    def problem(self, where, text: str, row_key=None) -> None:
        self.problems.append(f"{where}: {text}")
        if row_key is not None:
            self.bad_rows.add(row_key)


# ----------------------------------------------------------------------------------------------- reading
def read_annotations(path: Path, report: Report) -> list[Row]:
    """Rows of the CSV or JSON file. A file that cannot be read as a whole (missing, not UTF-8, not valid JSON, a
    CSV without the header, a JSON of the wrong shape) raises :class:`AnnotationError` naming it; a bad row is a
    problem in ``report`` (named by file and line / video and index)."""
    if path.suffix.lower() == ".json":
        return _read_json(path, report)
    return _read_csv(path, report)


def _read_csv(path: Path, report: Report) -> list[Row]:
    rows: list[Row] = []
    reader = csv.DictReader(io.StringIO(read_text_file(path, "annotation file")))  # UTF-8; a byte-order mark is fine
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    need = {"video", "start", "end", "label"}
    if not need <= set(header):
        raise AnnotationError(f"{path}: the CSV header must contain video,start,end,label (optional subset); got {header}")
    reader.fieldnames = header
    try:
        for line, rec in enumerate(reader, start=2):
            where = f"{path.name} line {line}"
            try:
                start, end = float(rec["start"]), float(rec["end"])
            except (TypeError, ValueError):
                report.problem(where, f"start/end are not numbers ({rec['start']!r}, {rec['end']!r})", line)
                continue
            subset = (rec.get("subset") or "").strip().lower() or None
            if subset is not None and subset not in SUBSETS:
                report.problem(where, f"subset {subset!r} is not train/val/test", line)
                continue
            rows.append(Row(line, (rec["video"] or "").strip(), start, end, rec["label"] or "", subset))
    except csv.Error as e:
        raise AnnotationError(f"{path}: line {reader.line_num}: {e}") from e
    return rows


def _read_json(path: Path, report: Report) -> list[Row]:
    data = read_json(path, "annotation file", unique_keys=True)
    db = data.get("database", data) if isinstance(data, dict) else data
    if not isinstance(db, dict):
        raise AnnotationError(
            f'{path}: expected {{"database": {{video: {{"annotations": [...]}}}}}} or {{video: ...}}, got a {type(db).__name__}'
        )
    rows: list[Row] = []
    for video, info in db.items():
        annos = info.get("annotations", []) if isinstance(info, dict) else None
        if not isinstance(annos, list):
            raise AnnotationError(f'{path}: video {video!r} must be {{"annotations": [{{"segment": [start, end], "label": name}}, ...]}}')
        subset = info.get("subset")
        for i, ann in enumerate(annos):
            where = f"{video}[{i}]"
            if not isinstance(ann, dict):
                raise AnnotationError(f'{path}: {where} must be {{"segment": [start, end], "label": name}}, got {ann!r}')
            seg = ann.get("segment")
            try:
                if not isinstance(seg, (list, tuple)) or len(seg) != 2 or any(isinstance(x, (bool, str)) for x in seg):
                    raise TypeError
                start, end = float(seg[0]), float(seg[1])
            except (TypeError, ValueError):
                report.problem(f"{path.name} {where}", f"segment must be [start, end] (numbers), got {seg!r}", where)
                continue
            sub = SUBSETS.get(str(subset).lower()) if subset else None
            rows.append(Row(where, video, start, end, str(ann.get("label", "")), sub))
    return rows


# ------------------------------------------------------------------------------------------------ checks
def _label_key(label: str) -> str:
    return " ".join(label.strip().lower().replace("_", " ").replace("-", " ").split())


def check_labels(rows: list[Row], report: Report, where_of) -> None:
    """Labels that differ only by case/spacing/punctuation, or that are near-identical, are typos-in-waiting."""
    by_label = defaultdict(list)
    for r in rows:
        by_label[r.label].append(r)
    labels = sorted(by_label)
    groups = defaultdict(list)
    for lab in labels:
        groups[_label_key(lab)].append(lab)
    reported = set()
    for variants in groups.values():
        if len(variants) > 1:
            _report_variants(variants, by_label, report, where_of)
            reported.update(variants)
    keys = sorted(groups)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            if difflib.SequenceMatcher(None, a, b).ratio() >= 0.92 and not (set(groups[a]) & reported):
                _report_variants(groups[a] + groups[b], by_label, report, where_of)
    for lab in labels:
        if not lab.strip():
            for r in by_label[lab]:
                report.problem(where_of(r), "empty label", r.line)


def _report_variants(variants, by_label, report: Report, where_of) -> None:
    counts = {v: len(by_label[v]) for v in variants}
    keep = max(variants, key=lambda v: (counts[v], v))
    desc = ", ".join(f"{v!r} ({counts[v]}x)" for v in variants)
    for v in variants:
        if v == keep:
            continue
        for r in by_label[v]:
            report.problem(where_of(r), f"label {v!r} looks like a typo of {keep!r} (labels seen: {desc})", r.line)


def find_video(videos_dir: Path, name: str) -> Path | None:
    p = videos_dir / name
    if p.suffix.lower() in VIDEO_EXTS and p.is_file():
        return p
    for ext in VIDEO_EXTS:
        q = videos_dir / f"{name}{ext}"
        if q.is_file():
            return q
    return None


# --------------------------------------------------------------------------------------------- the plan
def choose_window(video_snippets: list[int], action_snippets: list[float]) -> tuple[int, str]:
    """Window length in snippets, from the data: cover whole videos when they are short (one window per video,
    as in training by padding), otherwise the seed's 768; always at least 1.25x the longest action."""
    longest = max(action_snippets) if action_snippets else 0
    median_video = sorted(video_snippets)[len(video_snippets) // 2] if video_snippets else MAX_WINDOW
    need = max(1.25 * longest, min(median_video, MAX_WINDOW))
    window = next((w for w in WINDOW_CHOICES if w >= need), MAX_WINDOW)
    why = (
        f"median video {median_video} snippets, longest action {longest:.0f} snippets (x1.25 = {1.25 * longest:.0f}): "
        f"the smallest of {list(WINDOW_CHOICES)} covering both (capped at {MAX_WINDOW}) is {window}"
    )
    return window, why


def prepare_custom(
    videos_dir: Path,
    annotations: Path,
    out_dir: Path,
    val_fraction: float = 0.2,
    seed: int = 0,
    skip_bad: bool = False,
    snippet_stride: int = 4,
    init_from: Path | None = None,
) -> dict:
    """``init_from``: a detector checkpoint the generated config fine-tunes from (``load_from``)."""
    report = Report()
    rows = read_annotations(annotations, report)
    csv_input = annotations.suffix.lower() != ".json"
    where_of = (lambda r: f"{annotations.name} line {r.line}") if csv_input else (lambda r: f"{annotations.name} {r.line}")

    for r in rows:
        if not r.video:
            report.problem(where_of(r), "empty video name", r.line)
        elif not (math.isfinite(r.start) and math.isfinite(r.end)):
            report.problem(where_of(r), f"start/end must be finite (got {r.start}, {r.end})", r.line)
        elif r.start < 0:
            report.problem(where_of(r), f"start {r.start} is negative", r.line)
        elif r.end <= r.start:
            report.problem(where_of(r), f"end ({r.end}) <= start ({r.start}) for video {r.video!r}", r.line)
    check_labels(rows, report, where_of)

    from adatad.data.video import VideoError, probe_video

    probes: dict[str, dict] = {}
    missing, unreadable = [], {}
    for video in sorted({r.video for r in rows if r.video}):
        path = find_video(videos_dir, video)
        if path is None:
            missing.append(video)
            continue
        try:
            probes[video] = probe_video(path)
        except VideoError as exc:
            unreadable[video] = str(exc)
    for r in rows:
        if r.video in missing:
            report.problem(where_of(r), f"video {r.video!r} is listed but not found in {videos_dir}", r.line)
        elif r.video in unreadable:
            report.problem(where_of(r), f"video {r.video!r} cannot be read: {unreadable[r.video]}", r.line)
        elif r.video in probes and r.end > probes[r.video]["duration"] + 0.5:
            report.problem(where_of(r), f"end {r.end:.2f} s is past the end of {r.video!r} ({probes[r.video]['duration']:.2f} s)", r.line)

    if report.problems and not skip_bad:
        return {"ok": False, "report": report}
    dropped = [r for r in rows if r.line in report.bad_rows]
    rows = [r for r in rows if r.line not in report.bad_rows and r.video in probes]

    exts = Counter(Path(probes[v]["path"]).suffix.lower().lstrip(".") for v in probes)
    if len(exts) > 1:
        raise ValueError(
            f"videos have mixed file types {dict(exts)}; adatad reads data_path/<video>.<ext> with one "
            "extension: re-encode them to one type (e.g. mp4)"
        )
    video_ext = next(iter(exts)) if exts else "mp4"

    # split videos (not instances)
    videos = sorted({r.video for r in rows})
    given = {r.video: r.subset for r in rows if r.subset}
    subset_of = {v: SUBSETS[given[v]] for v in videos if v in given}
    unassigned = [v for v in videos if v not in subset_of]
    if unassigned:
        rng = random.Random(seed)
        shuffled = sorted(unassigned)
        rng.shuffle(shuffled)
        n_val = max(1, round(len(shuffled) * val_fraction)) if len(shuffled) > 1 and val_fraction > 0 else 0
        for i, v in enumerate(shuffled):
            subset_of[v] = "validation" if i < n_val else "training"

    classes = sorted({r.label for r in rows})
    fps_values = [probes[v]["fps"] for v in videos]
    ref_fps = sorted(fps_values)[len(fps_values) // 2] if fps_values else 30.0
    if fps_values and max(fps_values) / max(min(fps_values), 1e-6) > 1.1:
        report.warnings.append(
            f"frame rates differ ({min(fps_values):.2f}-{max(fps_values):.2f} fps): training reads every "
            f"{snippet_stride}th frame of each video, so its temporal rate differs per video; "
            "re-encoding to one rate gives the model one time scale"
        )
    snippets_per_s = ref_fps / snippet_stride
    video_snippets = [math.ceil(probes[v]["num_frames"] / snippet_stride) for v in videos]
    action_snippets = [(r.end - r.start) * snippets_per_s for r in rows]
    window, why = choose_window(video_snippets, action_snippets)

    # warnings that would otherwise cost a long run
    per_class = Counter(r.label for r in rows)
    for c in classes:
        if per_class[c] < 5:
            report.warnings.append(f"class {c!r} has only {per_class[c]} instance(s): too few to learn or evaluate reliably")
    for r in rows:
        if (r.end - r.start) * snippets_per_s > window:
            report.warnings.append(
                f"{where_of(r)}: action of {r.end - r.start:.1f} s is longer than the window "
                f"({window / snippets_per_s:.1f} s) and can never be detected whole"
            )
    by_video_class = defaultdict(list)
    for r in rows:
        by_video_class[(r.video, r.label)].append(r)
    for (video, label), rs in by_video_class.items():
        rs = sorted(rs, key=lambda r: r.start)
        for a, b in zip(rs, rs[1:]):
            if b.start < a.end:
                report.warnings.append(f"{where_of(a)} and {where_of(b)}: overlapping {label!r} instances in {video!r}")
    split_classes = {s: Counter(r.label for r in rows if subset_of[r.video] == s) for s in ("training", "validation")}
    for c in classes:
        if split_classes["validation"] and not split_classes["validation"][c]:
            report.warnings.append(f"class {c!r} has no instance in the validation split (its AP is not measured)")

    out_dir.mkdir(parents=True, exist_ok=True)
    database = {}
    for v in videos:
        p = probes[v]
        database[v] = {
            "subset": subset_of[v],
            "duration": p["duration"],
            "frame": p["num_frames"],
            "fps": p["fps"],
            "resolution": [p["width"], p["height"]],
            "annotations": [
                {"segment": [r.start, min(r.end, p["duration"])], "label": r.label}
                for r in sorted(rows, key=lambda r: r.start)
                if r.video == v
            ],
        }
    ann_path = out_dir / "annotations.json"
    ann_path.write_text(json.dumps({"database": database}, indent=1))
    cls_path = out_dir / "category_idx.txt"
    cls_path.write_text("\n".join(classes) + "\n")
    has_test = any(s == "test" for s in subset_of.values())
    cfg_path = out_dir / "config.py"
    cfg_path.write_text(
        _config_text(
            out_dir,
            videos_dir,
            ann_path,
            cls_path,
            video_ext,
            classes,
            window,
            why,
            ref_fps,
            snippet_stride,
            has_test,
            annotations,
            init_from,
        )
    )
    counts = Counter(subset_of.values())
    summary = {
        "ok": True,
        "report": report,
        "config": str(cfg_path),
        "annotations": str(ann_path),
        "class_map": str(cls_path),
        "videos": {"found": len(probes), "missing": missing, "unreadable": unreadable, "per_subset": dict(counts)},
        "instances_per_class": dict(per_class),
        "window_size": window,
        "window_reason": why,
        "reference_fps": ref_fps,
        "dropped_rows": [str(r.line) for r in dropped],
    }
    (out_dir / "report.json").write_text(
        json.dumps(
            {k: v for k, v in summary.items() if k != "report"} | {"problems": report.problems, "warnings": report.warnings}, indent=1
        )
    )
    return summary


def _config_text(out_dir, videos_dir, ann, cls, ext, classes, window, why, fps, stride, has_test, source, init_from=None) -> str:
    from adatad.config import packaged_config

    seed = packaged_config(SEED_CONFIG)
    try:
        base = os.path.relpath(seed, out_dir.resolve())
    except ValueError:  # another drive on Windows
        base = str(seed)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    test_subset = "test" if has_test else "validation"
    if init_from is not None:
        init = (
            "# Fine-tune from a trained detector (--init-from): its backbone, adapters, projection, neck and head start\n"
            f"# the training; the classifier is re-initialised for these {len(classes)} classes (train.log lists what was\n"
            "# loaded and skipped). Not a resume: fresh optimizer and schedule. The checkpoint must come from this model\n"
            "# (the seed's VideoMAE-S adapter recipe); otherwise inherit the config it was trained with instead.\n"
            f'load_from = "{Path(init_from).resolve()}"'
        )
    else:
        init = '# To fine-tune from a trained detector instead: load_from = "<checkpoint.pth>" (or adatad train --load-from)'
    return f'''# Generated by `adatad prepare custom` on {date} from {source}.
# Inherits the seed's AdaTAD VideoMAE-S adapter recipe; only the data settings below differ.
_base_ = ["{base}"]

# {why}
window_size = {window}

dataset = dict(
    name="{out_dir.resolve().name}",
    annotation_path="{ann.resolve()}",
    class_map="{cls.resolve()}",
    data_path="{videos_dir.resolve()}",
    video_ext="{ext}",
    feature_stride={stride},  # one snippet every {stride} frames ({fps / stride:.2f} snippets/s at {fps:.2f} fps)
    sample_stride=1,
    window_size=window_size,
    train=dict(subset_name="training"),
    val=dict(subset_name="validation"),
    test=dict(subset_name="{test_subset}"),
)
evaluation = dict(ground_truth_filename="{ann.resolve()}")  # mAP on each split's own subset_name

# {len(classes)} classes: {", ".join(classes)}
model = dict(head=dict(num_classes={len(classes)}))

# `adatad infer` samples new videos by time at the training videos' (median) frame rate
inference = dict(reference_fps={fps:.4f})

{init}
'''


def print_report(summary: dict, out=sys.stdout) -> None:
    report: Report = summary["report"]
    if not summary["ok"]:
        print(
            f"adatad prepare custom: {len(report.problems)} problem(s) — nothing written "
            "(fix them, or pass --skip-bad to drop the reported rows explicitly):",
            file=out,
        )
        for p in report.problems:
            print(f"  ERROR {p}", file=out)
        return
    v = summary["videos"]
    print(f"videos: {v['found']} found, {len(v['missing'])} missing, {len(v['unreadable'])} unreadable; split {v['per_subset']}", file=out)
    print("instances per class: " + ", ".join(f"{k}={n}" for k, n in sorted(summary["instances_per_class"].items())), file=out)
    print(f"window: {summary['window_size']} snippets ({summary['window_reason']})", file=out)
    for p in report.problems:
        print(f"  DROPPED {p}", file=out)
    for w in report.warnings:
        print(f"  WARNING {w}", file=out)
    print(f"wrote {summary['annotations']}\n      {summary['class_map']}\n      {summary['config']}", file=out)
    print(f"next: adatad train {summary['config']}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adatad prepare custom", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--videos", required=True, type=Path, help="folder with the videos")
    parser.add_argument(
        "--annotations",
        required=True,
        type=Path,
        help="CSV with header video,start,end,label[,subset] (seconds) or ActivityNet/OpenTAD JSON",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder for annotations, class map and config")
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, help="videos held out for validation when no subset column is given (default 0.2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split (default 0)")
    parser.add_argument("--skip-bad", action="store_true", help="drop the reported bad rows instead of stopping")
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="CKPT",
        help="fine-tune from this trained detector (adatad or OpenTAD checkpoint of the seed's model): the config gets "
        "load_from; the classifier is re-initialised for your classes",
    )
    args = parser.parse_args(argv)
    if not args.videos.is_dir():
        print(f"adatad prepare custom: videos folder not found: {args.videos}", file=sys.stderr)
        return 2
    if args.init_from is not None and not args.init_from.is_file():
        print(f"adatad prepare custom: --init-from checkpoint not found: {args.init_from}", file=sys.stderr)
        return 2
    summary = prepare_custom(args.videos, args.annotations, args.out, args.val_fraction, args.seed, args.skip_bad, init_from=args.init_from)
    print_report(summary, sys.stdout if summary["ok"] else sys.stderr)
    return 0 if summary["ok"] else 1
