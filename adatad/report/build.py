"""The HTML report: predictions (and ground truth) -> one self-contained HTML file (no torch, numpy only).

The page needs nothing but itself: CSS and JavaScript are inlined (``report.css``, ``report.js`` beside this
module), the numbers are embedded as JSON. Every number is computed here (mAP by
:mod:`adatad.evaluation.detection_map`, the error analysis by :mod:`adatad.evaluation.error_analysis`); the
page only draws them. Per-video data (segments, scores, outcomes) is one JSON script element per video,
parsed when the video is opened, so a run of 211 videos x 2,000 predictions opens in a browser in well under a
second. Video files are referenced by paths relative to the HTML file, so the page and the videos can be
moved together.

Per-video JSON (columns; predictions sorted by decreasing score, so the ones above a threshold are a prefix):
``gs``/``ge``/``gc`` GT start/end (s)/class index, ``gm`` score of the prediction matched to each GT at the
outcome threshold (-1: none), ``ps``/``pe``/``pc``/``pp`` prediction start/end/class/score, ``po`` outcome
codes as one string (:data:`adatad.evaluation.error_analysis.OUTCOMES` index per character, ``-`` not
evaluated; empty without GT).
"""

from __future__ import annotations

import html
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson

from adatad.annotation_io import read_annotation_json
from adatad.evaluation.detection_map import (
    DEFAULT_TIOU_THRESHOLDS,
    GroundTruth,
    load_ground_truth,
    load_predictions,
)
from adatad.evaluation.error_analysis import analyze_errors

__all__ = ["VIDEO_EXTENSIONS", "build_report_data", "find_video_files", "render_html", "write_report"]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".webm", ".m4v", ".mov", ".ogv", ".mkv", ".avi", ".mpg", ".mpeg", ".flv", ".wmv")
"""Looked up under ``--videos`` as ``<video name><ext>``, in this order (the ones a browser plays first)."""

_HERE = Path(__file__).resolve().parent


def find_video_files(videos_dir: str | os.PathLike, names: Iterable[str]) -> dict[str, Path]:
    """``{name: file}`` for the videos of ``names`` found as ``videos_dir/<name><ext>`` (one listing of the folder)."""
    folder = Path(videos_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"videos folder not found: {folder}")
    by_stem: dict[str, dict[str, Path]] = {}
    for f in folder.iterdir():
        if f.suffix.lower() in VIDEO_EXTENSIONS:
            by_stem.setdefault(f.stem, {})[f.suffix.lower()] = f
    out = {}
    for name in names:
        found = by_stem.get(name)
        if found:
            out[name] = next(found[e] for e in VIDEO_EXTENSIONS if e in found)
    return out


def _relative_url(target: Path, out_dir: Path) -> str:
    """A relative URL from the HTML file's folder to ``target`` (percent-encoded, forward slashes); an absolute
    ``file:`` URL when there is no relative path (another drive)."""
    try:
        rel = os.path.relpath(Path(target).resolve(), out_dir.resolve())
    except ValueError:
        return Path(target).resolve().as_uri()
    return quote(Path(rel).as_posix())


def _outcome_index(thresholds: Sequence[float]) -> int:
    """The threshold the timelines colour outcomes at: 0.5 when evaluated, else the middle one."""
    for i, t in enumerate(thresholds):
        if abs(t - 0.5) < 1e-9:
            return i
    return len(thresholds) // 2


def build_report_data(
    pred: str | os.PathLike | Mapping,
    gt: str | os.PathLike | Mapping | None = None,
    *,
    out: str | os.PathLike,
    subset: str | None = None,
    class_names: Sequence[str] | None = None,
    blocked_videos: Iterable[str] | str | Path | None = None,
    tiou_thresholds: Iterable[float] = DEFAULT_TIOU_THRESHOLDS,
    videos_dir: str | os.PathLike | None = None,
    video_files: Mapping[str, str | os.PathLike] | None = None,
    durations: Mapping[str, float] | None = None,
    score_threshold: float = 0.3,
    bins: str = "thumos",
    title: str | None = None,
    sources: str | None = None,
    note: str | None = None,
    gt_name: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Everything the page shows, JSON-ready (the per-video data under ``videos[i]["data"]``).

    Args:
        pred: predictions file or dict (``{"results": {video: [{"segment", "label", "score"}]}}``).
        gt: annotation file or dict, or None (a predictions-only report: timelines, no mAP).
        out: the HTML file that will be written (video paths are stored relative to its folder).
        subset: the evaluated subset (exact name, as ``adatad eval``); None: every video of ``gt``.
        class_names: class map for integer labels.
        videos_dir: folder searched for ``<video><ext>`` (:data:`VIDEO_EXTENSIONS`).
        video_files: ``{video: file}`` given directly (``adatad infer``); wins over ``videos_dir``.
        durations: ``{video: seconds}``; default: the annotation file's ``duration`` fields, else the latest
            segment end (marked as estimated).
        score_threshold: the timelines' initial score threshold (a slider changes it).
        bins: sensitivity bins, ``"thumos"`` or ``"activitynet"``.
        gt_name: when ``gt`` is a dict, the file it was read from (named in error messages).
    """
    out = Path(out)
    if gt is not None and not isinstance(gt, Mapping):
        gt_name = gt
    ann = None
    if gt is not None:
        ann = gt if isinstance(gt, Mapping) else read_annotation_json(gt)
    preds = load_predictions(pred if isinstance(pred, Mapping) else Path(pred), class_names)
    thresholds = [float(t) for t in tiou_thresholds]
    t_idx = _outcome_index(thresholds)

    ground: GroundTruth | None = None
    summary = errors = None
    analysis = None
    durations = dict(durations or {})
    if ann is not None:
        for v, info in ann["database"].items():
            if isinstance(info, Mapping) and v not in durations and _finite(info.get("duration")):
                durations[v] = float(info["duration"])
        ground = load_ground_truth(ann, subset, blocked_videos, name=gt_name)
        if len(ground):
            # its APs are evaluate_detections's (the same matching and AP code; tests/test_error_analysis.py)
            analysis = analyze_errors(ground, preds, thresholds, durations=durations, bins=bins)
            errors = analysis.summary
            summary = {
                "tiou_thresholds": errors["tiou_thresholds"],
                "mAP": errors["mAP"],
                "average_mAP": errors["average_mAP"],
                "per_class_ap": [list(col) for col in zip(*errors["ap"])],
                "num_gt_per_class": errors["num_ground_truth_per_class"],
                "stats": analysis.matching.stats,
            }
        else:
            note = (note + " " if note else "") + "No ground-truth instance to evaluate: timelines only."

    # classes: the evaluated ones, then other predicted labels
    classes = list(ground.classes) if ground is not None else []
    known = set(classes)
    for name in preds.label_names:
        if name not in known:
            classes.append(name)
            known.add(name)
    class_index = {c: i for i, c in enumerate(classes)}

    # videos: the evaluated subset in file order, then videos that only have predictions
    names: list[str] = []
    if ann is not None and ground is not None:
        blocked = ground.blocked_videos
        names = [v for v, s in ground.database_subsets.items() if (subset is None or s == subset) and v not in blocked]
    seen = set(names)
    for v in list(preds.video_names) + list(video_files or {}):
        if v not in seen:
            names.append(v)
            seen.add(v)

    files: dict[str, Path] = {}
    if videos_dir is not None:
        files.update(find_video_files(videos_dir, names))
    files.update({k: Path(p) for k, p in (video_files or {}).items()})

    # per-video arrays
    pred_label = np.array([class_index[n] for n in preds.label_names] + [-1], dtype=np.int64)[preds.label_idx]
    outcome = analysis.outcome_by_prediction(t_idx, len(preds)) if analysis is not None else None
    p_order = np.lexsort((-preds.scores, preds.video_idx))  # by video, then by decreasing score
    p_bounds = np.searchsorted(preds.video_idx[p_order], np.arange(len(preds.video_names) + 1))
    p_of_video = {v: p_order[p_bounds[i] : p_bounds[i + 1]] for i, v in enumerate(preds.video_names)}
    g_of_video: dict[str, np.ndarray] = {}
    gt_match_score = np.zeros(0)
    if ground is not None and len(ground):
        g_order = np.argsort(ground.video_idx, kind="stable")
        g_bounds = np.searchsorted(ground.video_idx[g_order], np.arange(len(ground.video_names) + 1))
        g_of_video = {v: g_order[g_bounds[i] : g_bounds[i + 1]] for i, v in enumerate(ground.video_names)}
        gt_match_score = np.full(len(ground), -1.0)
        if analysis is not None:
            mg = analysis.matching.matched_gt[t_idx]
            hit = mg >= 0
            gt_match_score[mg[hit]] = preds.scores[analysis.matching.order[hit]]

    has_gt = outcome is not None
    g_seg = ground.segments if ground is not None else np.zeros((0, 2))
    g_cls = (
        np.array([class_index[c] for c in ground.classes], dtype=np.int64)[ground.labels] if ground is not None else np.zeros(0, np.int64)
    )
    missing = "no --videos folder given" if videos_dir is None and not video_files else "video file not found"
    videos = []
    for i, v in enumerate(names):
        pi = p_of_video.get(v, np.zeros(0, dtype=np.int64))
        gi = g_of_video.get(v, np.zeros(0, dtype=np.int64))
        ps, pe = preds.segments[pi, 0], preds.segments[pi, 1]
        pp = np.round(preds.scores[pi], 4)
        o = outcome[pi] if outcome is not None else np.zeros(0, dtype=np.int8)
        data = {
            "gs": _r(g_seg[gi, 0], 3),
            "ge": _r(g_seg[gi, 1], 3),
            "gc": g_cls[gi].tolist(),
            "gm": _r(gt_match_score[gi], 4) if gi.size else [],
            "ps": _r(ps, 2),
            "pe": _r(pe, 2),
            "pc": pred_label[pi].tolist(),
            "pp": pp.tolist(),
            "po": np.where(o < 0, ord("-"), o + ord("0")).astype(np.uint8).tobytes().decode("ascii"),
        }
        above = pp >= score_threshold
        given = durations.get(v)
        known_duration = given is not None and _finite(given) and given > 0
        if given is not None and known_duration:
            duration = float(given)
        else:  # the latest segment end
            duration = max([0.0, *pe.tolist(), *g_seg[gi, 1].tolist()]) or 1.0
        src = _relative_url(files[v], out.parent) if v in files else None
        entry = {
            "name": v,
            "el": f"vd-{i}",
            "duration": round(duration, 3),
            "duration_known": known_duration,
            "src": src,
            "missing_reason": None if src else missing,
            "n_gt": int(gi.size),
            "n_pred": int(pi.size),
            "n_above": int(above.sum()),
            "data": data,
        }
        if has_gt:
            entry["tp"] = int((above & (o == 0)).sum())
            entry["fp"] = int((above & (o > 0)).sum())
            entry["missed"] = int((gt_match_score[gi] < score_threshold).sum())
        videos.append(entry)

    facts = {
        "num_videos": len(videos),
        "num_ground_truth": int(len(ground)) if ground is not None else None,
        "num_predictions": int(len(preds)),
    }
    return {
        "title": title or "adatad detection report",
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "sources": sources,
        "note": note,
        "subset": subset if ground is not None else None,
        "facts": facts,
        "classes": classes,
        "score_threshold": float(score_threshold),
        "outcome_tiou": thresholds[t_idx],
        "has_gt": has_gt,
        "summary": summary,
        "errors": errors,
        "videos": videos,
    }


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _r(a: np.ndarray, digits: int) -> list[float]:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def _json_for_script(obj: Any) -> str:
    """JSON that is safe inside a ``<script type="application/json">`` element (no ``<`` can close it)."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).replace(b"<", b"\\u003c").decode("utf8")


def render_html(data: Mapping[str, Any]) -> str:
    """The page: one HTML string with the CSS, the JavaScript and the data inlined."""
    css = (_HERE / "report.css").read_text(encoding="utf8")
    js = (_HERE / "report.js").read_text(encoding="utf8")
    head = {k: v for k, v in data.items() if k != "videos"}
    head["videos"] = [{k: v for k, v in entry.items() if k != "data"} for entry in data["videos"]]
    parts = [
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{html.escape(str(data.get('title') or 'adatad report'))}</title>\n",
        f'<style>\n{css}</style>\n</head>\n<body>\n<main id="app"></main>\n',
        f'<script type="application/json" id="report-data">{_json_for_script(head)}</script>\n',
    ]
    for entry in data["videos"]:
        parts.append(f'<script type="application/json" id="{entry["el"]}">{_json_for_script(entry["data"])}</script>\n')
    parts.append(f"<script>\n{js}</script>\n</body>\n</html>\n")
    return "".join(parts)


def write_report(
    out: str | os.PathLike, pred: str | os.PathLike | Mapping, gt: str | os.PathLike | Mapping | None = None, **kwargs
) -> Path:
    """Build the report (:func:`build_report_data`, same arguments) and write it to ``out``. Returns ``out``."""
    out = Path(out)
    data = build_report_data(pred, gt, out=out, **kwargs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render_html(data), encoding="utf8")
    tmp.replace(out)
    return out
