"""ActivityNet-style temporal detection mAP, numerically identical to OpenTAD's evaluator.

Pure numpy (no torch import). The numbers equal those of OpenTAD's ``opentad/evaluations/mAP.py``
(the ActivityNet ``eval_detection.py`` algorithm) on the same files, including the order in which
equal scores are visited, but the greedy matching is vectorised: 420k predictions take well under
a second instead of minutes.

Rules (all observed by running OpenTAD's ``opentad/evaluations/mAP.py``):

- evaluated ground truth (GT) = videos whose ``subset`` equals the requested one exactly, minus
  blocked videos; instances with ``end - start <= 0`` are dropped; same-label instances whose
  start and end both lie within 1e-3 of an earlier kept instance are dropped;
- classes = labels of the evaluated GT in first-appearance order; mAP = ``np.mean`` of the
  per-class APs (a class without predictions has AP 0);
- predictions whose label is not an evaluated class are ignored; predictions on videos without GT
  of their class (including unknown videos and videos of another subset) are false positives;
  predictions on blocked videos are skipped;
- per class, predictions are visited in the order ``scores.argsort()[::-1]`` (numpy's default sort
  kind, reversed, exactly as the reference); each takes, among the unmatched GT of its video, the
  one with the highest tIoU if that tIoU is ``>=`` the threshold (ties between equal tIoU broken as
  the reference's ``tiou.argsort()[::-1]`` does); otherwise it is a false positive;
- AP is the interpolated (VOC 2011 / ActivityNet) AP.

Public API: :func:`load_ground_truth`, :func:`load_predictions`, :func:`evaluate_detections`,
:func:`format_table`; :func:`match_detections` gives the per-prediction matching behind the numbers
(used by the error analysis, :mod:`adatad.evaluation.error_analysis`).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from adatad.annotation_io import gc_paused, parse_json_bytes, read_json, read_text_file

__all__ = [
    "ANET_TIOU_THRESHOLDS",
    "DEFAULT_TIOU_THRESHOLDS",
    "GroundTruth",
    "Matching",
    "Predictions",
    "load_ground_truth",
    "load_predictions",
    "evaluate_detections",
    "match_detections",
    "format_table",
    "parse_tiou",
    "read_blocked_videos",
]

logger = logging.getLogger(__name__)

DEFAULT_TIOU_THRESHOLDS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)
#: OpenTAD's ActivityNet evaluation (``configs/_base_/datasets/activitynet-1.3/*.py``) writes the list out as
#: literals, so these are the floats nearest to the decimals (``np.linspace(0.5, 0.95, 10)`` gives
#: 0.8999999999999999 for 0.9; ``np.arange`` drifts from 0.6 on). A threshold that is one bit off can flip a match.
ANET_TIOU_THRESHOLDS: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
DUPLICATE_TOLERANCE = 1e-3
VIDEO_PREFIX = "v_"


@dataclass
class GroundTruth:
    """Evaluated ground-truth instances (``M`` of them) of one subset.

    Attributes:
        subset: the subset that was selected (``None``: every video of the file).
        classes: class names in first-appearance order; ``labels`` index into it.
        video_names: evaluated videos that keep at least one instance, first-appearance order.
        video_idx: int64 ``[M]`` index into ``video_names``.
        segments: float64 ``[M, 2]`` (start, end) in seconds, as given in the file.
        labels: int64 ``[M]`` index into ``classes``.
        database_subsets: every video of the annotation file -> its subset (for reporting).
        blocked_videos: videos excluded from GT and predictions alike.
        stats: counts of what loading dropped.
    """

    subset: str | None
    classes: list[str]
    video_names: list[str]
    video_idx: np.ndarray
    segments: np.ndarray
    labels: np.ndarray
    database_subsets: dict[str, str]
    blocked_videos: frozenset[str] = frozenset()
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class Predictions:
    """Detections (``N`` of them) in file order.

    Attributes:
        video_names: distinct videos, first-appearance order; ``video_idx`` indexes into it.
        video_idx: int64 ``[N]``.
        segments: float64 ``[N, 2]`` (start, end) in seconds.
        scores: float64 ``[N]``.
        label_names: distinct label names; ``label_idx`` indexes into it (integer labels in the
            file are resolved through ``class_names``).
        label_idx: int64 ``[N]``.
        stats: ``num_predictions``, ``num_zero_length``.
    """

    video_names: list[str]
    video_idx: np.ndarray
    segments: np.ndarray
    scores: np.ndarray
    label_names: list[str]
    label_idx: np.ndarray
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.scores.shape[0])


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------


def _read_json(source: str | Path | Mapping, what: str, key: str, name: str | os.PathLike | None = None) -> tuple[Mapping, str]:
    """Return ``(data, description)`` for a path (read by :func:`adatad.annotation_io.read_json`) or a loaded dict
    (``name``: the file it was read from, for messages)."""
    if isinstance(source, Mapping):
        desc = f"{what} file {name}" if name is not None else f"{what} dict"
        if key not in source or not isinstance(source[key], Mapping):
            raise ValueError(f'{desc} has no "{key}" mapping at the top level; expected {{"{key}": {{video: ...}}}}')
        return source, desc
    if isinstance(source, (str, Path)):
        # duplicated keys: refused in an annotation file; in a predictions file the last copy wins (json.load's rule)
        return read_json(source, f"{what} file", key, unique_keys=what == "annotation"), f"{what} file {source}"
    raise TypeError(f"{what} must be a path or a dict, got {type(source).__name__}")


def _remove_duplicates(anns: list[tuple[float, float, str]], tol: float) -> tuple[list[tuple[float, float, str]], int]:
    """Drop instances with end - start <= 0 and same-label near duplicates of kept ones (OpenTAD rule)."""
    kept: list[tuple[float, float, str]] = []
    n_empty = 0
    for s, e, lab in anns:
        if e - s <= 0:
            n_empty += 1
            continue
        if any(abs(s - ks) <= tol and abs(e - ke) <= tol and lab == kl for ks, ke, kl in kept):
            continue
        kept.append((s, e, lab))
    return kept, n_empty


def parse_tiou(spec: str) -> list[float]:
    """tIoU thresholds from one command-line token: a number (``0.5``) or ``START:STOP:STEP`` with STOP included.

    Each value is computed in decimal arithmetic and converted once, so ``0.5:0.95:0.05`` gives exactly the
    literals of OpenTAD's ActivityNet config (:data:`ANET_TIOU_THRESHOLDS`) and ``0.3:0.7:0.1`` those of its
    THUMOS config. Raises ValueError naming the token when it is malformed, STOP < START, the step is not
    positive, or STOP - START is not a whole number of steps.
    """
    from decimal import Decimal, InvalidOperation

    hint = "give a number such as 0.5 or a range START:STOP:STEP such as 0.5:0.95:0.05 (STOP included)"
    parts = spec.split(":")
    try:
        nums = [Decimal(x.strip()) for x in parts]
    except InvalidOperation:
        raise ValueError(f"bad tIoU threshold {spec!r}: {hint}") from None
    if not all(n.is_finite() for n in nums):
        raise ValueError(f"bad tIoU threshold {spec!r}: {hint}")
    if len(nums) == 1:
        return [float(nums[0])]
    if len(nums) != 3:
        raise ValueError(f"bad tIoU range {spec!r}: {hint}")
    start, stop, step = nums
    if step <= 0:
        raise ValueError(f"bad tIoU range {spec!r}: STEP must be positive ({hint})")
    if stop < start:
        raise ValueError(f"bad tIoU range {spec!r}: STOP {stop} < START {start}; the form is START:STOP:STEP, e.g. 0.5:0.95:0.05")
    n_steps = (stop - start) / step
    if n_steps != n_steps.to_integral_value():
        raise ValueError(f"bad tIoU range {spec!r}: STOP - START is not a whole number of steps of {step}; the form is START:STOP:STEP")
    return [float(start + k * step) for k in range(int(n_steps) + 1)]


def toggle_prefix(name: str, prefix: str = VIDEO_PREFIX) -> str:
    """``name`` with ``prefix`` removed if it has it, added otherwise (ActivityNet ids vs ``v_<id>`` file stems)."""
    return name[len(prefix) :] if name.startswith(prefix) else prefix + name


def read_blocked_videos(path: str | Path) -> list[str]:
    """Read a blocked-video list: a JSON list of names (OpenTAD's format) or one name per line."""
    path = Path(path)
    text = read_text_file(path, "blocked-video file", "a JSON list of video names or one name per line")
    stripped = text.strip()
    if stripped[:1] in ("[", "{", '"'):  # JSON (a list is OpenTAD's format; anything else is refused below)
        names = parse_json_bytes(stripped.encode(), "blocked-video file", path)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"blocked-video file {path} must be a JSON list of video names (strings), got {stripped[:60]!r}")
        return list(names)
    return [line.strip() for line in text.splitlines() if line.strip()]


def _warn_prefix_mismatch(names: Iterable[str], known: Mapping[str, Any], what: str, effect: str) -> int:
    """Warn when names of ``what`` are absent from the annotation file but present once the ``v_`` prefix is
    added or removed (ActivityNet ids vs ``v_<id>`` file stems). OpenTAD compares names exactly, and so do we;
    this only says why a number may be off. Returns how many names mismatch that way."""
    odd = sorted(n for n in set(names) if n not in known and toggle_prefix(n) in known)
    if odd:
        logger.warning(
            '%d video name(s) of %s differ from the annotation file only by the "%s" prefix (e.g. %r vs %r); '
            "names are compared exactly, as OpenTAD does, so %s. Use the annotation file's names.",
            len(odd),
            what,
            VIDEO_PREFIX,
            odd[0],
            toggle_prefix(odd[0]),
            effect,
        )
    return len(odd)


def load_ground_truth(
    ann: str | Path | Mapping,
    subset: str | None,
    blocked_videos: Iterable[str] | str | Path | None = None,
    name: str | os.PathLike | None = None,
) -> GroundTruth:
    """Load the evaluated GT from an OpenTAD/ActivityNet annotation file or dict.

    Args:
        ann: path to ``{"database": {video: {"subset", "annotations": [{"segment", "label"}]}}}``
            or that dict.
        subset: exact subset name to evaluate (OpenTAD's THUMOS file stores the THUMOS *test* videos as
            ``"validation"``); ``None`` evaluates every video of the file.
        blocked_videos: video names (or a file, see :func:`read_blocked_videos`) left out of GT and
            predictions.
        name: when ``ann`` is a dict, the file it was read from (named in error messages).
    """
    data, desc = _read_json(ann, "annotation", "database", name)
    database = data["database"]
    if isinstance(blocked_videos, (str, Path)):
        blocked = frozenset(read_blocked_videos(blocked_videos))
    else:
        blocked = frozenset(blocked_videos or ())

    database_subsets: dict[str, str] = {}
    for video, v in database.items():
        if not isinstance(v, Mapping) or "subset" not in v:
            raise ValueError(f'{desc}: video "{video}" has no "subset" field')
        if not isinstance(v["subset"], str):
            raise ValueError(f'{desc}: video "{video}" has "subset" {v["subset"]!r}; it must be a string')
        database_subsets[video] = v["subset"]
    _warn_prefix_mismatch(blocked, database_subsets, "the blocked-video list", "it blocks nothing there")
    if subset is not None and subset not in set(database_subsets.values()):
        available = sorted({str(s) for s in database_subsets.values()})
        raise ValueError(f'{desc} has no video in subset "{subset}"; subsets present: {available}')

    class_index: dict[str, int] = {}
    video_index: dict[str, int] = {}
    vids: list[int] = []
    segs: list[tuple[float, float]] = []
    labs: list[int] = []
    n_empty = n_dup = n_blocked = n_videos = 0
    for video, v in database.items():
        if subset is not None and v["subset"] != subset:
            continue
        if video in blocked:
            n_blocked += 1
            continue
        n_videos += 1
        raw = v.get("annotations")
        if not isinstance(raw, list):
            raise ValueError(f'{desc}: video "{video}" has no "annotations" list')
        anns: list[tuple[float, float, str]] = []
        for i, a in enumerate(raw):
            try:
                s, e = (float(x) for x in a["segment"])
                lab = a["label"]
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(
                    f'{desc}: video "{video}" annotation {i} must have "segment": [start, end] (two numbers) and "label"; got {a!r}'
                ) from err
            if not isinstance(lab, str):
                raise ValueError(f'{desc}: video "{video}" annotation {i} has label {lab!r}; labels must be class names (strings)')
            if not (math.isfinite(s) and math.isfinite(e)):
                raise ValueError(f'{desc}: video "{video}" annotation {i} has a non-finite segment {[s, e]}')
            anns.append((s, e, lab))
        kept, empty = _remove_duplicates(anns, DUPLICATE_TOLERANCE)
        n_empty += empty
        n_dup += len(anns) - empty - len(kept)
        for s, e, lab in kept:
            if lab not in class_index:
                class_index[lab] = len(class_index)
            if video not in video_index:
                video_index[video] = len(video_index)
            vids.append(video_index[video])
            segs.append((s, e))
            labs.append(class_index[lab])

    stats = {
        "num_videos": n_videos,
        "num_videos_with_instances": len(video_index),
        "num_instances": len(labs),
        "num_dropped_non_positive_length": n_empty,
        "num_dropped_duplicates": n_dup,
        "num_blocked_videos": n_blocked,
    }
    return GroundTruth(
        subset=subset,
        classes=[str(c) for c in class_index],
        video_names=list(video_index),
        video_idx=np.asarray(vids, dtype=np.int64),
        segments=np.asarray(segs, dtype=np.float64).reshape(-1, 2),
        labels=np.asarray(labs, dtype=np.int64),
        database_subsets=database_subsets,
        blocked_videos=blocked,
        stats=stats,
    )


def _find_bad_entry(desc: str, video: str, entries: Any) -> ValueError:
    """Slow path: name the first malformed prediction of a video."""
    if not isinstance(entries, list):
        return ValueError(f'{desc}: results for video "{video}" must be a list, got {type(entries).__name__}')
    for i, r in enumerate(entries):
        ok = isinstance(r, Mapping) and all(k in r for k in ("segment", "label", "score"))
        if ok:
            seg = r["segment"]
            ok = isinstance(seg, (list, tuple)) and len(seg) == 2
            if ok:
                try:
                    [float(x) for x in seg]
                except (TypeError, ValueError):
                    ok = False
            ok = ok and isinstance(r["score"], numbers.Real) and not isinstance(r["score"], bool)
            ok = ok and (isinstance(r["label"], str) or _is_int(r["label"]))
        if not ok:
            return ValueError(
                f'{desc}: video "{video}" prediction {i} must be {{"segment": [start, end], "label": name or class '
                f'index, "score": number}}; got {r!r}'
            )
    return ValueError(f'{desc}: video "{video}" has a malformed prediction')


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def load_predictions(pred: str | Path | Mapping, class_names: Sequence[str] | None = None) -> Predictions:
    """Load detections ``{"results": {video: [{"segment": [s, e], "label": l, "score": x}]}}``.

    Args:
        pred: path to the JSON file or the dict itself (both give the same arrays).
        class_names: the model's class map; needed only when labels are integer class indices
            (they are resolved to ``class_names[label]``). Labels given as names are kept as they are.

    Raises:
        ValueError: malformed entries, NaN/inf scores or segments, ``end < start``, or an integer label
            without ``class_names`` / out of range; the message names the video and the entry index.

    Zero-length segments are kept (OpenTAD keeps them) and counted in ``stats["num_zero_length"]``.
    """
    # The garbage collector stays paused until the parsed file has been freed: a collection after the
    # parse would traverse its ~3 million objects once more (about as long as the parse) for nothing.
    with gc_paused():
        data, desc = _read_json(pred, "prediction", "results")
        try:
            return _predictions_from(data["results"], desc, class_names)
        finally:
            del data


def _predictions_from(results: Mapping, desc: str, class_names: Sequence[str] | None) -> Predictions:
    """The arrays of :func:`load_predictions`: Python work per video, C loops (map, numpy) per prediction."""
    video_names: list[str] = []
    counts: list[int] = []
    seg_list: list[Any] = []
    score_list: list[Any] = []
    raw_labels: list[Any] = []
    for video, entries in results.items():
        if not isinstance(entries, list):
            raise _find_bad_entry(desc, video, entries)
        try:
            segs = list(map(_get_segment, entries))
            scs = list(map(_get_score, entries))
            lbs = list(map(_get_label, entries))
        except (KeyError, TypeError) as err:
            raise _find_bad_entry(desc, video, entries) from err
        video_names.append(video)
        counts.append(len(segs))
        seg_list += segs
        score_list += scs
        raw_labels += lbs
    n = len(score_list)
    video_idx = np.repeat(np.arange(len(video_names), dtype=np.int64), counts)

    def first_bad(mask: npt.ArrayLike) -> tuple[str, int]:
        k = int(np.flatnonzero(mask)[0])
        v = int(video_idx[k])
        return video_names[v], k - int(sum(counts[:v]))

    def malformed(fallback: str) -> ValueError:
        for video in video_names:
            e = _find_bad_entry(desc, video, results[video])
            if "must be {" in str(e):
                return e
        return ValueError(f"{desc}: {fallback}")

    # scores: numbers only (bool and strings are rejected), finite
    score_types = set(map(type, score_list))
    if not all(issubclass(t, numbers.Real) and not issubclass(t, bool) for t in score_types):
        bad = np.array([not (isinstance(s, numbers.Real) and not isinstance(s, bool)) for s in score_list])
        video, _ = first_bad(bad)
        raise _find_bad_entry(desc, video, results[video])
    scores = np.fromiter(score_list, dtype=np.float64, count=n)
    if not np.isfinite(scores).all():
        video, i = first_bad(~np.isfinite(scores))
        raise ValueError(f'{desc}: video "{video}" prediction {i} has score {results[video][i]["score"]!r}; scores must be finite')

    # segments: [N, 2] finite, end >= start. Fast path for lists / tuples of two items (what a JSON file
    # gives); anything else goes through numpy's general conversion, which rejects what it cannot take.
    try:
        if n and set(map(type, seg_list)) <= {list, tuple} and set(map(len, seg_list)) == {2}:
            segments = np.fromiter(chain.from_iterable(seg_list), dtype=np.float64, count=2 * n).reshape(n, 2)
        else:
            segments = np.asarray(seg_list, dtype=np.float64).reshape(-1, 2) if n else np.zeros((0, 2))
            if segments.shape[0] != n:
                raise ValueError
    except (TypeError, ValueError) as err:
        raise malformed("segments must be [start, end] pairs of numbers") from err
    if not np.isfinite(segments).all():
        video, i = first_bad(~np.isfinite(segments).all(axis=1))
        raise ValueError(f'{desc}: video "{video}" prediction {i} has segment {results[video][i]["segment"]!r}; segments must be finite')
    if (segments[:, 1] < segments[:, 0]).any():
        video, i = first_bad(segments[:, 1] < segments[:, 0])
        raise ValueError(f'{desc}: video "{video}" prediction {i} has segment {results[video][i]["segment"]!r} with end < start')

    # labels: names, or integer indices into class_names; distinct values in first-appearance order
    try:
        vocab = {lab: k for k, lab in enumerate(dict.fromkeys(raw_labels))}
    except TypeError as err:  # unhashable label
        raise malformed("labels must be class names or integer class indices") from err
    raw_idx = np.fromiter(map(vocab.__getitem__, raw_labels), dtype=np.int64, count=n)
    label_names: list[str] = []
    name_index: dict[str, int] = {}
    remap = np.zeros(len(vocab), dtype=np.int64)
    for key, k in vocab.items():
        if isinstance(key, str):
            name = key
        elif _is_int(key):
            if class_names is None:
                video, i = first_bad(raw_idx == k)
                raise ValueError(
                    f'{desc}: video "{video}" prediction {i} has integer label {key}; pass the class map '
                    "(class_names / --class-map) to resolve class indices to names"
                )
            if not 0 <= int(key) < len(class_names):
                video, i = first_bad(raw_idx == k)
                raise ValueError(
                    f'{desc}: video "{video}" prediction {i} has label {key}, outside the class map '
                    f"(0..{len(class_names) - 1}); is it the class map the model was trained with?"
                )
            name = str(class_names[int(key)])
        else:
            video, i = first_bad(raw_idx == k)
            raise _find_bad_entry(desc, video, results[video])
        remap[k] = name_index.setdefault(name, len(name_index))
        if remap[k] == len(label_names):
            label_names.append(name)
    label_idx = remap[raw_idx] if n else np.zeros(0, dtype=np.int64)

    stats = {"num_predictions": n, "num_zero_length": int((segments[:, 1] == segments[:, 0]).sum())}
    if stats["num_zero_length"]:
        logger.warning("%s: %d zero-length predictions (kept, as OpenTAD does)", desc, stats["num_zero_length"])
    return Predictions(
        video_names=video_names,
        video_idx=video_idx,
        segments=segments,
        scores=scores,
        label_names=label_names,
        label_idx=label_idx,
        stats=stats,
    )


_get_segment, _get_score, _get_label = itemgetter("segment"), itemgetter("score"), itemgetter("label")


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------


def _tiou(ps: np.ndarray, pe: np.ndarray, gs: np.ndarray, ge: np.ndarray) -> np.ndarray:
    """Elementwise tIoU, with the reference's exact float operations (so equal inputs give equal bits)."""
    inter = (np.minimum(pe, ge) - np.maximum(ps, gs)).clip(0)
    union = (ge - gs) + (pe - ps) - inter
    return inter / union.clip(1e-8)


def _interpolated_ap(tp_cum: np.ndarray, fp_cum: np.ndarray, npos: float) -> float:
    """Interpolated AP (VOC 2011), bit-identical to the reference for the same inputs.

    Args:
        tp_cum, fp_cum: float64 ``[P]`` cumulative true / false positive counts in score order.
        npos: number of GT instances of the class.
    """
    rec = tp_cum / npos
    prec = tp_cum / (tp_cum + fp_cum)
    mprec = np.hstack([[0.0], prec, [0.0]])
    mrec = np.hstack([[0.0], rec, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def _greedy_match(pair_inst: np.ndarray, pair_gt: np.ndarray, n_inst: int, n_gt: int) -> np.ndarray:
    """Greedy matching in priority order, computed as a parallel Gale-Shapley.

    Each prediction instance (lower id = earlier in score order) takes its most preferred unmatched GT.
    Because every GT ranks predictions by the same order (earlier wins), that serial greedy result is the
    unique stable matching, which proposal rounds compute without a per-prediction Python loop.

    Args:
        pair_inst: int64 ``[K]`` prediction instance of each candidate pair, sorted by (instance, preference).
        pair_gt: int64 ``[K]`` GT instance of each candidate pair.
        n_inst, n_gt: number of prediction / GT instances.

    Returns:
        int64 ``[n_inst]``: the GT instance each prediction instance is matched to, -1 if none (false positive).
    """
    gt_of = np.full(n_inst, -1, dtype=np.int64)
    if pair_inst.size == 0:
        return gt_of
    # compact ids for the instances that have candidates (monotone, so priorities are kept)
    first = np.flatnonzero(np.r_[True, pair_inst[1:] != pair_inst[:-1]])
    inst_ids = pair_inst[first]
    ptr = first.copy()
    end = np.r_[first[1:], pair_inst.size]
    n_act = inst_ids.size
    none = np.int64(n_act)
    holder = np.full(n_gt, none, dtype=np.int64)
    active = np.arange(n_act)
    while active.size:
        target = pair_gt[ptr[active]]
        old = holder[target]
        np.minimum.at(holder, target, active)
        won = holder[target] == active
        # previous holders that lost their GT to an earlier prediction become free again
        displaced = old[won & (old != none)]
        free = np.concatenate([active[~won], displaced])
        ptr[free] += 1
        active = free[ptr[free] < end[free]]
    held = np.flatnonzero(holder != none)
    gt_of[inst_ids[holder[held]]] = held
    return gt_of


def _as_thresholds(tiou_thresholds: Iterable[float]) -> np.ndarray:
    thr = np.asarray(list(tiou_thresholds), dtype=np.float64).reshape(-1)
    if thr.size == 0:
        raise ValueError("tiou_thresholds is empty; give at least one threshold, e.g. 0.5")
    if not (np.isfinite(thr).all() and (thr >= 0).all() and (thr <= 1).all()):
        raise ValueError(f"tiou_thresholds must lie in [0, 1], got {thr.tolist()}")
    return thr


@dataclass
class Matching:
    """Every evaluated prediction (``n`` of them) matched to the GT at every threshold (``T``), as
    :func:`evaluate_detections` matches them.

    Attributes:
        thresholds: float64 ``[T]``.
        order: int64 ``[n]`` index into the :class:`Predictions` of each evaluated prediction, in the visiting
            order: grouped by class, and within a class by decreasing score (the reference's order).
        cls: int64 ``[n]`` class index (into ``GroundTruth.classes``).
        video: int64 ``[n]`` index into ``GroundTruth.video_names``; -1 for a video without evaluated GT.
        cls_bounds: int64 ``[C + 1]``: the predictions of class ``c`` are ``cls_bounds[c]:cls_bounds[c + 1]``.
        matched_gt: int64 ``[T, n]`` the GT instance (index into the GT arrays) each prediction is matched to
            at each threshold, -1 for a false positive.
        npos: float64 ``[C]`` number of GT instances per class.
        stats: prediction counts, as in the result of :func:`evaluate_detections`.
    """

    thresholds: np.ndarray
    order: np.ndarray
    cls: np.ndarray
    video: np.ndarray
    cls_bounds: np.ndarray
    matched_gt: np.ndarray
    npos: np.ndarray
    stats: dict[str, Any]


def match_detections(
    gt: GroundTruth,
    preds: Predictions,
    tiou_thresholds: Iterable[float] = DEFAULT_TIOU_THRESHOLDS,
) -> Matching:
    """Match predictions to the GT at each tIoU threshold: the first half of :func:`evaluate_detections`."""
    thr = _as_thresholds(tiou_thresholds)
    n_thr = thr.size
    n_cls = len(gt.classes)
    if n_cls == 0:
        raise ValueError(f'no ground-truth instance to evaluate in subset "{gt.subset}" (all videos empty, blocked or dropped)')
    n_vid = len(gt.video_names)

    # --- map predictions onto GT videos / classes ---
    class_of = {c: i for i, c in enumerate(gt.classes)}
    label_map = np.array([class_of.get(name, -1) for name in preds.label_names] + [-1], dtype=np.int64)
    video_of = {v: i for i, v in enumerate(gt.video_names)}
    vid_map = np.array([video_of.get(v, -1) for v in preds.video_names] + [-1], dtype=np.int64)
    blocked_map = np.array([v in gt.blocked_videos for v in preds.video_names] + [False], dtype=bool)
    known_map = np.array([v in gt.database_subsets for v in preds.video_names] + [False], dtype=bool)
    in_subset_map = np.array(
        [v in gt.database_subsets and (gt.subset is None or gt.database_subsets[v] == gt.subset) for v in preds.video_names] + [False],
        dtype=bool,
    )

    p_cls = label_map[preds.label_idx]
    p_vid = vid_map[preds.video_idx]
    not_blocked = ~blocked_map[preds.video_idx]
    keep = not_blocked & (p_cls >= 0)
    unknown_vid = ~known_map[preds.video_idx] & not_blocked
    other_subset = known_map[preds.video_idx] & ~in_subset_map[preds.video_idx] & not_blocked
    unknown_label_names = sorted({preds.label_names[i] for i in np.unique(preds.label_idx[not_blocked & (p_cls < 0)])})
    videos_with_preds = set(np.unique(p_vid[not_blocked & (p_vid >= 0)]).tolist())
    stats = {
        "num_predictions": len(preds),
        "num_evaluated": int(keep.sum()),
        "num_ignored_label": int((not_blocked & (p_cls < 0)).sum()),
        "ignored_labels": unknown_label_names,
        "num_blocked_video": int((~not_blocked).sum()),
        "num_unknown_video": int(unknown_vid.sum()),
        "num_unknown_videos": int(np.unique(preds.video_idx[unknown_vid]).size),
        "num_other_subset_video": int(other_subset.sum()),
        "num_zero_length": int((preds.segments[:, 1] == preds.segments[:, 0]).sum()),
        "num_gt_videos_without_predictions": n_vid - len(videos_with_preds),
    }
    if stats["num_ignored_label"]:
        logger.warning(
            "%d predictions have labels that are not evaluated classes (ignored, as OpenTAD does): %s",
            stats["num_ignored_label"],
            unknown_label_names[:10],
        )
    stats["num_prefix_mismatch_videos"] = _warn_prefix_mismatch(
        (v for v, k in zip(preds.video_names, known_map) if not k),
        gt.database_subsets,
        "the predictions",
        "their predictions count as false positives",
    )
    if stats["num_unknown_video"]:
        logger.warning(
            "%d predictions on %d videos absent from the annotation file (kept as false positives, as OpenTAD does)",
            stats["num_unknown_video"],
            stats["num_unknown_videos"],
        )
    if stats["num_other_subset_video"]:
        logger.warning(
            '%d predictions on videos of another subset than "%s" (kept as false positives, as OpenTAD does)',
            stats["num_other_subset_video"],
            gt.subset,
        )
    if stats["num_gt_videos_without_predictions"]:
        logger.warning("%d evaluated videos have no prediction at all", stats["num_gt_videos_without_predictions"])

    sel = np.flatnonzero(keep)
    p_cls, p_vid = p_cls[sel], p_vid[sel]
    p_seg = preds.segments[sel]
    p_score = preds.scores[sel]

    # --- per class: the reference's visiting order (argsort, reversed) ---
    # stable sort by class (radix sort on a small integer type)
    by_cls = np.argsort(p_cls.astype(np.int16 if n_cls < 2**15 else np.int64), kind="stable")
    cls_bounds = np.searchsorted(p_cls[by_cls], np.arange(n_cls + 1))
    parts = []
    for c in range(n_cls):
        idx = by_cls[cls_bounds[c] : cls_bounds[c + 1]]
        parts.append(idx[p_score[idx].argsort()[::-1]])
    order = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    n = order.size
    q_cls, q_vid = p_cls[order], p_vid[order]
    q_s, q_e = p_seg[order, 0], p_seg[order, 1]

    # --- GT grouped by (class, video), file order kept inside a group ---
    gt_key = gt.labels * n_vid + gt.video_idx
    gt_order = np.argsort(gt_key, kind="stable")
    g_key = gt_key[gt_order]
    g_s, g_e = gt.segments[gt_order, 0], gt.segments[gt_order, 1]
    n_gt = g_key.size
    grp_start = np.searchsorted(g_key, np.arange(n_cls * n_vid + 1))
    npos = np.bincount(gt.labels, minlength=n_cls).astype(np.float64)

    # --- candidate pairs: every prediction against every GT of its (class, video) ---
    q_key = np.where(q_vid >= 0, q_cls * n_vid + q_vid, 0)
    cnt = np.where(q_vid >= 0, grp_start[q_key + 1] - grp_start[q_key], 0)
    first = grp_start[q_key]
    total = int(cnt.sum())
    pair_q = np.repeat(np.arange(n, dtype=np.int64), cnt)
    offs = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    pair_g = np.repeat(first, cnt) + offs  # index into the grouped GT arrays
    tiou = _tiou(q_s[pair_q], q_e[pair_q], g_s[pair_g], g_e[pair_g])
    cand = tiou >= thr.min()
    pair_q, pair_g, tiou, offs = pair_q[cand], pair_g[cand], tiou[cand], offs[cand]

    # preference: descending tIoU; exact ties resolved below as the reference's argsort does
    pref = np.lexsort((offs, -tiou, pair_q))
    pair_q, pair_g, tiou, offs = pair_q[pref], pair_g[pref], tiou[pref], offs[pref]
    tie = (pair_q[1:] == pair_q[:-1]) & (tiou[1:] == tiou[:-1])
    if tie.any():
        for q in np.unique(pair_q[1:][tie]):
            lo, hi = np.searchsorted(pair_q, [q, q + 1])
            g0 = first[q]
            full = _tiou(q_s[q], q_e[q], g_s[g0 : g0 + cnt[q]], g_e[g0 : g0 + cnt[q]])
            rank = np.empty(full.size, dtype=np.int64)
            rank[full.argsort()[::-1]] = np.arange(full.size)
            sub = np.argsort(rank[offs[lo:hi]], kind="stable")
            pair_g[lo:hi], tiou[lo:hi], offs[lo:hi] = pair_g[lo:hi][sub], tiou[lo:hi][sub], offs[lo:hi][sub]

    # --- greedy matching for all thresholds at once (instances t * n + q, GT t * n_gt + g) ---
    inst_list, gt_list = [], []
    for t in range(n_thr):
        ok = tiou >= thr[t]
        inst_list.append(pair_q[ok] + t * n)
        gt_list.append(pair_g[ok] + t * n_gt)
    gt_of = _greedy_match(np.concatenate(inst_list), np.concatenate(gt_list), n_thr * n, n_thr * n_gt).reshape(n_thr, n)
    matched_gt = np.where(gt_of >= 0, gt_order[gt_of % n_gt], -1)
    return Matching(thr, sel[order], q_cls, q_vid, cls_bounds, matched_gt, npos, stats)


def evaluate_detections(
    gt: GroundTruth,
    preds: Predictions,
    tiou_thresholds: Iterable[float] = DEFAULT_TIOU_THRESHOLDS,
) -> dict[str, Any]:
    """Compute per-class interpolated AP and mAP at each tIoU threshold (OpenTAD's numbers).

    Returns:
        dict with ``tiou_thresholds`` (list), ``mAP`` (list, one per threshold), ``average_mAP``,
        ``per_class_ap`` ({class: [AP per threshold]}), ``classes``, ``subset``, ``num_ground_truth``,
        ``stats`` (prediction counts: evaluated, ignored labels, unknown / other-subset / blocked videos,
        zero-length, GT videos without any prediction). Values at full float precision.
    """
    m = match_detections(gt, preds, tiou_thresholds)
    thr, cls_bounds, npos, stats = m.thresholds, m.cls_bounds, m.npos, m.stats
    n_thr, n_cls = thr.size, len(gt.classes)
    tp = (m.matched_gt >= 0).astype(np.float64)

    # --- AP per class and threshold ---
    ap = np.zeros((n_thr, n_cls))
    for c in range(n_cls):
        lo, hi = cls_bounds[c], cls_bounds[c + 1]
        tp_c = tp[:, lo:hi]
        tp_cum = np.cumsum(tp_c, axis=1)
        fp_cum = np.cumsum(1.0 - tp_c, axis=1)
        for t in range(n_thr):
            ap[t, c] = _interpolated_ap(tp_cum[t], fp_cum[t], npos[c])
    m_ap = ap.mean(axis=1)
    avg = m_ap.mean()

    return {
        "subset": gt.subset,
        "tiou_thresholds": thr.tolist(),
        "mAP": m_ap.tolist(),
        "average_mAP": float(avg),
        "per_class_ap": {c: ap[:, i].tolist() for i, c in enumerate(gt.classes)},
        "classes": list(gt.classes),
        "num_ground_truth": len(gt),
        "num_ground_truth_per_class": {c: int(npos[i]) for i, c in enumerate(gt.classes)},
        "stats": stats,
    }


def format_table(result: Mapping[str, Any], per_class: bool = False) -> str:
    """Markdown table of mAP (percent, 2 decimals) per threshold and the average.

    ``| tIoU | 0.30 | 0.40 | ... | Avg |`` then ``| mAP | 83.90 | ... | 69.03 |``; with ``per_class``,
    one more row per class (its AP per threshold and the mean over thresholds).
    """
    thr = list(result["tiou_thresholds"])
    head = "| tIoU | " + " | ".join(f"{t:.2f}" for t in thr) + " | Avg |"
    sep = "| :--- | " + " | ".join(":---:" for _ in thr) + " | :---: |"

    def row(name: str, values: Sequence[float], avg: float) -> str:
        return f"| {name} | " + " | ".join(f"{100 * v:.2f}" for v in values) + f" | {100 * avg:.2f} |"

    lines = [head, sep, row("mAP", result["mAP"], result["average_mAP"])]
    if per_class:
        for name in result["classes"]:
            aps = result["per_class_ap"][name]
            lines.append(row(name, aps, float(np.mean(aps))))
    return "\n".join(lines)
