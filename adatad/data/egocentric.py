"""``adatad prepare epic|ego4d``: EPIC-Kitchens-100 and Ego4D Moment Queries annotations in OpenTAD's layout.

    adatad prepare epic --csv-dir DIR --out DIR
    adatad prepare ego4d --anno-dir DIR --out DIR [--videos FULL_SCALE_DIR --clips DIR [--short-side 320]]

EPIC-Kitchens-100 (the official ``epic-kitchens-100-annotations`` repository), in ``--csv-dir``:

- ``EPIC_100_train.csv``, ``EPIC_100_validation.csv``: one row per action segment; read columns ``video_id``,
  ``start_timestamp`` / ``stop_timestamp`` (``HH:MM:SS.ff``), ``verb``, ``verb_class``, ``noun``, ``noun_class``
  (the others -- ``narration_id``, ``participant_id``, ``narration``, ``start_frame``, ... -- are not used);
- ``EPIC_100_video_info.csv``: ``video_id``, ``duration`` (seconds), ...;
- ``EPIC_100_test_timestamps.csv`` (optional): ``video_id``, ...: its videos enter subset ``test`` without
  annotations.

Output (``configs/_base_/datasets/epic_kitchens-100/``): ``epic_kitchens_verb.json`` and ``epic_kitchens_noun.json``
(``{"version", "database": {video_id: {"subset": "train"|"val"|"test", "duration", "annotations": [{"segment":
[s, e] (seconds, 2 decimals), "label": "id_%03d" of the class id, "label_name": verb / noun}]}}}``), the same as
OpenTAD's ``tools/prepare_data/epic/convert_epic_kitchens_anno.py``, plus ``category_idx_verb.txt`` /
``category_idx_noun.txt``: the labels present in the file, sorted (OpenTAD's ``get_class_index``; 97 verbs, 293
nouns: 7 noun classes have no instance). There is no ``frame`` field: the EPIC configs fix ``dataset.fps=30``
(videos re-encoded at 30 fps, OpenTAD's README).

Ego4D Moment Queries (Ego4D v2 ``annotations/``), in ``--anno-dir``: ``moments_train.json``, ``moments_val.json``
and, optional, ``moments_test_unannotated.json``: ``{"version", "date", "videos": [{"video_uid", "split",
"clips": [{"clip_uid", "video_start_sec", "video_end_sec", "video_start_frame", "video_end_frame", "annotations":
[{"labels": [{"video_start_time", "video_end_time", "label", "primary"}]}]}]}]}``.

Output (``configs/_base_/datasets/ego4d_mq/``): ``ego4d_v2_220429.json``: one entry per *clip* (OpenTAD's
``convert_ego4d_anno.py``): ``duration = round(end_sec - max(start_sec, 0), 4)``, ``frame = end_frame -
max(start_frame, 0)``, segments relative to the clip start (4 decimals), primary labels of every annotator; clips
whose frame rate ``frame / duration`` is outside [10, 100] and annotated clips without a primary label are left out;
``category_idx.txt``: the labels, sorted. With ``--videos`` (Ego4D ``v1/full_scale``) and ``--clips``, it also
writes ``trim_clips.sh``: OpenTAD's ``accurate_trim_MQ.py`` ffmpeg commands (libx264, no audio, ``-ss``/``-to`` after
``-i``, short side ``--short-side``; portrait videos scaled by width, 1440x2880 stereo videos halved) that cut each
clip ``<clip_uid>.mp4`` out of ``<video_uid>.mp4``; run it where ffmpeg is installed (``bash trim_clips.sh``), then
``adatad prepare check``.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from adatad.annotation_io import AnnotationError, read_json

from .annotations import _csv_rows

__all__ = ["convert_epic", "convert_ego4d", "add_parsers", "cmd_epic", "cmd_ego4d"]

EPIC_FILES = {"train": "EPIC_100_train.csv", "val": "EPIC_100_validation.csv"}
EPIC_TEST = "EPIC_100_test_timestamps.csv"
EPIC_INFO = "EPIC_100_video_info.csv"
EGO4D_FILES = {"train": "moments_train.json", "val": "moments_val.json"}
EGO4D_TEST = "moments_test_unannotated.json"
EGO4D_ANNOTATION = "ego4d_v2_220429.json"


def _seconds(stamp: str, where: str) -> float:
    """``HH:MM:SS.ff`` -> seconds (OpenTAD: ``h * 3600 + m * 60 + s``)."""
    parts = stamp.split(":")
    try:
        h, m, s = (float(p) for p in parts)
    except ValueError:
        raise AnnotationError(f"{where}: timestamp {stamp!r} is not HH:MM:SS.ff") from None
    return h * 3600 + m * 60 + s


def _class_map(database: dict) -> list[str]:
    return sorted({a["label"] for v in database.values() for a in v.get("annotations", [])})


def convert_epic(csv_dir: str | Path) -> dict[str, tuple[dict, list[str]]]:
    """EPIC-Kitchens-100 CSVs -> ``{"verb": (annotation file, class map), "noun": (...)}`` in OpenTAD's layout."""
    d = Path(csv_dir)
    info = {r["video_id"]: r for r in _csv_rows(d / EPIC_INFO, ("video_id", "duration"))}
    need = ("video_id", "start_timestamp", "stop_timestamp", "verb", "verb_class", "noun", "noun_class")
    out: dict[str, dict] = {"verb": {}, "noun": {}}
    subsets = [(s, d / f) for s, f in EPIC_FILES.items()] + ([("test", d / EPIC_TEST)] if (d / EPIC_TEST).is_file() else [])
    for subset, path in subsets:
        rows = _csv_rows(path, need if subset != "test" else ("video_id",))
        for i, row in enumerate(rows):
            vid, where = row["video_id"], f"{path}: row {i + 2}"
            if vid not in info:
                raise AnnotationError(f"{where}: video {vid!r} is not in {d / EPIC_INFO}")
            duration = float(info[vid]["duration"])
            for kind, db in out.items():
                entry = db.setdefault(vid, {"subset": subset, "duration": duration})
                if subset == "test":
                    continue
                start = _seconds(row["start_timestamp"], where)
                end = _seconds(row["stop_timestamp"], where)
                try:
                    cls = int(row[f"{kind}_class"])
                except ValueError:
                    raise AnnotationError(f"{where}: {kind}_class {row[f'{kind}_class']!r} is not an integer") from None
                entry.setdefault("annotations", []).append(
                    {"segment": [round(start, 2), round(end, 2)], "label": f"id_{cls:03d}", "label_name": row[kind]}
                )
    return {k: ({"version": f"epic-kitchens-100-{k}", "database": db}, _class_map(db)) for k, db in out.items()}


def convert_ego4d(anno_dir: str | Path) -> tuple[dict, list[str], list[tuple[str, str, float, float]], list[str]]:
    """Ego4D MQ ``moments_*.json`` -> (annotation file, class map, clips ``(video_uid, clip_uid, start_s, end_s)``,
    notes on clips left out)."""
    d = Path(anno_dir)
    files = [d / f for f in EGO4D_FILES.values()] + ([d / EGO4D_TEST] if (d / EGO4D_TEST).is_file() else [])
    docs = [read_json(f, "Ego4D moments file", hint="expected the Ego4D v2 moments_*.json") for f in files]
    database: dict[str, dict] = {}
    clips: list[tuple[str, str, float, float]] = []
    notes: list[str] = []
    for f, doc in zip(files, docs):
        if not isinstance(doc, dict) or not isinstance(doc.get("videos"), list):
            raise AnnotationError(f"{f}: expected an object with a 'videos' list (Ego4D v2 moments file)")
        for video in doc["videos"]:
            try:
                subset, vuid = video["split"], video["video_uid"]
                for clip in video["clips"]:
                    cid = clip["clip_uid"]
                    start_s = max(float(clip["video_start_sec"]), 0.0)
                    end_s = float(clip["video_end_sec"])
                    clips.append((vuid, cid, start_s, end_s))
                    duration = round(end_s - start_s, 4)
                    frames = int(clip["video_end_frame"]) - max(int(clip["video_start_frame"]), 0)
                    fps = frames / duration if duration > 0 else 0.0
                    if fps < 10 or fps > 100:
                        notes.append(f"clip {cid}: frame rate {fps:.2f} outside [10, 100]: left out (as OpenTAD)")
                        continue
                    if subset == "test":
                        database[cid] = {"duration": duration, "frame": frames, "subset": subset}
                        continue
                    annos = [
                        {
                            "segment": [round(lab["video_start_time"] - start_s, 4), round(lab["video_end_time"] - start_s, 4)],
                            "label": lab["label"],
                        }  # fmt: skip
                        for annotator in clip["annotations"]
                        for lab in annotator["labels"]
                        if lab["primary"]
                    ]
                    if not annos:
                        notes.append(f"clip {cid}: no primary label: left out (as OpenTAD)")
                        continue
                    database[cid] = {"duration": duration, "frame": frames, "subset": subset, "annotations": annos}
            except (KeyError, TypeError, ValueError) as e:
                raise AnnotationError(f"{f}: video {video.get('video_uid', '?')!r}: malformed entry ({type(e).__name__}: {e})") from e
    first = docs[0]
    data = {"version": first.get("version"), "date": first.get("date"), "database": database}
    return data, _class_map(database), clips, notes


def trim_script(clips: list[tuple[str, str, float, float]], videos: str, out_dir: str, short_side: int = 320) -> str:
    """A bash script with OpenTAD's ``accurate_trim_MQ.py`` ffmpeg commands, one call per clip (skips clips done)."""
    q = shlex.quote
    lines = [
        "#!/usr/bin/env bash",
        "# written by `adatad prepare ego4d`: OpenTAD's accurate_trim_MQ.py as ffmpeg commands (needs ffmpeg + ffprobe)",
        "set -u",
        f"mkdir -p {q(out_dir)}",
        "trim() {  # src dst start end",
        '  [ -e "$2" ] && { echo "$2 exists, skip"; return; }',
        "  IFS=, read -r w h _ < <(ffprobe -hide_banner -loglevel error -select_streams v:0 "
        '-show_entries stream=width,height,duration -of csv=p=0 "$1")',
        '  if [ "$h" -gt "$w" ]; then',
        '    if [ "$h" -eq 2880 ] && [ "$w" -eq 1440 ]; then  # stereo: left half',
        '      ffmpeg -hide_banner -loglevel error -i "$1" -c:v libx264 -vf scale=1136:320,crop=iw/2:ih:0:0 -aspect 4:3 '
        '-ss "$3" -to "$4" -an "$2" -y',
        "    else",
        f'      ffmpeg -hide_banner -loglevel error -i "$1" -c:v libx264 -ss "$3" -to "$4" -vf scale={short_side}:-2 -an "$2" -y',
        "    fi",
        "  else",
        f'    ffmpeg -hide_banner -loglevel error -i "$1" -c:v libx264 -ss "$3" -to "$4" -vf scale=-2:{short_side} -an "$2" -y',
        "  fi",
        "}",
    ]
    for vuid, cid, start, end in clips:
        src, dst = q(f"{videos.rstrip('/')}/{vuid}.mp4"), q(f"{out_dir.rstrip('/')}/{cid}.mp4")
        lines.append(f"trim {src} {dst} {start!r} {end!r}")
    return "\n".join(lines) + "\n"


def _write(out: Path, name: str, data: dict, classes: list[str], cmap: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(data))
    (out / cmap).write_text("".join(c + "\n" for c in classes))
    return out / name, out / cmap


def cmd_epic(args) -> int:
    out = Path(args.out)
    for kind, (data, classes) in convert_epic(args.csv_dir).items():
        ann, cmap = _write(out, f"epic_kitchens_{kind}.json", data, classes, f"category_idx_{kind}.txt")
        counts: dict[str, list[int]] = {}
        for v in data["database"].values():
            c = counts.setdefault(v["subset"], [0, 0])
            c[0] += 1
            c[1] += len(v.get("annotations", []))
        summary = ", ".join(f"{s}: {n} videos, {k} instances" for s, (n, k) in counts.items())
        print(f"wrote {ann} and {cmap} ({len(classes)} {kind} classes; {summary})")
    return 0


def cmd_ego4d(args) -> int:
    if (args.videos is None) != (args.clips is None):
        print("adatad: error: give both --videos (Ego4D full_scale folder) and --clips (output folder) or neither")
        return 2
    data, classes, clips, notes = convert_ego4d(args.anno_dir)
    ann, cmap = _write(Path(args.out), EGO4D_ANNOTATION, data, classes, "category_idx.txt")
    for n in notes[:20]:
        print(n)
    if len(notes) > 20:
        print(f"... and {len(notes) - 20} more clips left out")
    subsets: dict[str, int] = {}
    for v in data["database"].values():
        subsets[v["subset"]] = subsets.get(v["subset"], 0) + 1
    print(f"wrote {ann} and {cmap} ({len(classes)} classes; clips per subset: {subsets})")
    if args.videos is not None:
        script = Path(args.out) / "trim_clips.sh"
        script.write_text(trim_script(clips, args.videos, args.clips, args.short_side))
        print(f"wrote {script}: {len(clips)} clips; run `bash {script}` where ffmpeg is installed, then "
              f"`adatad prepare check --ann {ann} --videos {args.clips}`")  # fmt: skip
    return 0


def _doc_part(start: str, end: str | None) -> str:
    """The module docstring from ``start`` to ``end`` (the ``--help`` text of one command)."""
    doc = __doc__ or ""
    part = doc[doc.index(start) :]
    return part[: part.index(end)] if end else part


def add_parsers(sub) -> None:
    """Register ``epic`` and ``ego4d`` on the ``adatad prepare`` subparsers."""
    e = sub.add_parser(
        "epic",
        help="write OpenTAD-layout EPIC-Kitchens-100 annotations (epic_kitchens_{verb,noun}.json, category_idx_{verb,noun}.txt)",
        description=_doc_part("EPIC-Kitchens-100 (the official", "Ego4D Moment Queries (Ego4D v2"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument(
        "--csv-dir",
        required=True,
        help=f"folder with {EPIC_FILES['train']}, {EPIC_FILES['val']} (columns video_id, start_timestamp, stop_timestamp, "
        f"verb, verb_class, noun, noun_class), {EPIC_INFO} (video_id, duration) and, optional, {EPIC_TEST}",
    )
    e.add_argument("--out", required=True, help="output folder (OpenTAD: data/epic_kitchens-100/annotations)")
    g = sub.add_parser(
        "ego4d",
        help=f"write OpenTAD-layout Ego4D-MQ annotations ({EGO4D_ANNOTATION}, category_idx.txt) and a clip-trimming script",
        description=_doc_part("Ego4D Moment Queries (Ego4D v2", None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument(
        "--anno-dir",
        required=True,
        help=f"Ego4D v2 annotations folder with {EGO4D_FILES['train']}, {EGO4D_FILES['val']} and, optional, {EGO4D_TEST}",
    )
    g.add_argument("--out", required=True, help="output folder (OpenTAD: data/ego4d/annotations)")
    g.add_argument("--videos", help="Ego4D v1/full_scale folder with <video_uid>.mp4 (for trim_clips.sh)")
    g.add_argument("--clips", help="where trim_clips.sh writes <clip_uid>.mp4 (OpenTAD: data/ego4d/raw_data/MQ_data/mq_videos_short320)")
    g.add_argument("--short-side", type=int, default=320, help="short side of the trimmed clips (default 320, OpenTAD's)")
