"""Error analysis of temporal action detections after DETAD (numpy only, no torch).

Alwassel, Caba Heilbron, Escorcia, Ghanem, "Diagnosing Error in Temporal Action Detectors", ECCV 2018 (the
DETAD tool). The definitions below are re-stated from the paper and the rules of its code; the matching, the
AP and the loading are those of :mod:`adatad.evaluation.detection_map`, so with nothing removed every AP here
equals :func:`~adatad.evaluation.detection_map.evaluate_detections`'s.

**False positives.** At a tIoU threshold ``a``, every evaluated prediction that the greedy matching leaves
unmatched is a false positive of exactly one type, decided by the ground-truth (GT) instance of *any* class in
the same video with the highest tIoU with it (the first in file order on ties), as DETAD decides:

- ``double_detection``: that tIoU is ``>= a`` and the GT has the predicted label (so the GT was already
  taken by a higher-scored prediction);
- ``wrong_label``: that tIoU is ``>= a`` and the GT has another label;
- ``localization``: ``min_tiou (0.1) <= tIoU < a`` and the same label;
- ``confusion``: ``min_tiou <= tIoU < a`` and another label (wrong label + localization);
- ``background``: tIoU ``< min_tiou`` with every GT of the video (or no GT in the video at all).

**False-positive profile.** Per class, predictions are ranked by score (the evaluator's order) and cut in
bands of ``G`` predictions, ``G`` = the number of GT instances of the class: band 1 = the top-``G`` ("1G"),
band 2 = ranks ``G..2G-1`` ("2G"), ... up to ``top_k`` bands (DETAD: 10). The profile gives, per band, the
count of true positives and of each error type, summed over classes. The "top-ranked false positives" are the
false positives of band 1: the false positives among the top-``G`` predictions of each class.

**Removing an error type.** The AP of a class recomputed with the false positives of one type dropped from
its ranked list (the others keep their place and their matching), as DETAD does. Unlike DETAD's figure (top
``10G`` predictions per class), it uses *all* predictions, so that nothing removed gives the evaluator's AP;
removing every type leaves only true positives: AP = the recall reached (1 when every GT is detected).

**Sensitivity.** Each GT instance gets a characteristic: ``length`` (end - start, seconds), ``coverage``
(length / the video's duration) and ``num_instances`` (GT instances in its video, any class), binned as DETAD
(intervals closed on the right, the first one closed on both sides; THUMOS-14 and ActivityNet bins below).
For a bin, the AP of a class counts only its GT in the bin (``npos``) and drops the true positives matched to
GT of other bins; its false positives stay. Per threshold (DETAD filters once for all thresholds at once). The
mAP of a bin averages the classes that have GT in it. ``AP_N`` is DETAD's normalised AP (precision computed
as if every class had ``N`` = average number of GT per class instances: ``R N / (R N + FP)``), which makes
bins with few GT comparable; DETAD plots it; plain AP is given too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from adatad.evaluation.detection_map import (
    DEFAULT_TIOU_THRESHOLDS,
    GroundTruth,
    Matching,
    Predictions,
    _interpolated_ap,
    _tiou,
    match_detections,
)

__all__ = [
    "BINS",
    "ERROR_TYPES",
    "MIN_TIOU",
    "OUTCOMES",
    "ErrorAnalysis",
    "analyze_errors",
    "average_precision",
    "classify_predictions",
    "gt_characteristics",
]

OUTCOMES: tuple[str, ...] = ("true_positive", "double_detection", "wrong_label", "localization", "confusion", "background")
"""Outcome codes: ``OUTCOMES[k]`` is code ``k``; 0 is a true positive, 1..5 the false-positive types."""
ERROR_TYPES: tuple[str, ...] = OUTCOMES[1:]
MIN_TIOU = 0.1
"""Below this tIoU with every GT of its video a false positive is a background error (DETAD's ``min_tiou_thr``)."""

# name -> (edges, labels, unit); bin k is (edges[k], edges[k+1]], the first bin also includes edges[0]; "count": integers
BINS: dict[str, dict[str, tuple[tuple[float, ...], tuple[str, ...], str]]] = {
    "thumos": {
        "length": ((0, 3, 6, 12, 18, math.inf), ("XS", "S", "M", "L", "XL"), "s"),
        "coverage": ((0, 0.02, 0.04, 0.06, 0.08, 1), ("XS", "S", "M", "L", "XL"), ""),
        "num_instances": ((-1, 1, 40, 80, math.inf), ("XS", "S", "M", "L"), "count"),
    },
    "activitynet": {
        "length": ((0, 30, 60, 120, 180, math.inf), ("XS", "S", "M", "L", "XL"), "s"),
        "coverage": ((0, 0.2, 0.4, 0.6, 0.8, 1), ("XS", "S", "M", "L", "XL"), ""),
        "num_instances": ((-1, 1, 4, 8, math.inf), ("XS", "S", "M", "L"), "count"),
    },
}
"""DETAD's bins: THUMOS-14 (``false_positive_analysis.py --is_thumos14``) and ActivityNet."""

_PAIR_CHUNK = 1 << 20  # prediction x GT pairs per step of the classification (bounds memory)


def average_precision(tp: np.ndarray, npos: float, normalize_to: float | None = None) -> float:
    """Interpolated AP of a ranked list of true (``True``) / false positives, ``npos`` GT instances.

    ``normalize_to=N`` gives DETAD's normalised AP: precision ``R N / (R N + FP)`` with ``R`` the recall.
    Without it, the number is :mod:`~adatad.evaluation.detection_map`'s AP (same function).
    """
    tp = np.asarray(tp, dtype=np.float64)
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(1.0 - tp)
    if normalize_to is None:
        return _interpolated_ap(tp_cum, fp_cum, npos)
    rec = tp_cum / npos
    prec = rec * normalize_to / np.maximum(rec * normalize_to + fp_cum, 1e-12)
    mprec = np.maximum.accumulate(np.hstack([[0.0], prec, [0.0]])[::-1])[::-1]
    mrec = np.hstack([[0.0], rec, [1.0]])
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def classify_predictions(gt: GroundTruth, preds: Predictions, matching: Matching, min_tiou: float = MIN_TIOU) -> np.ndarray:
    """Outcome code (see :data:`OUTCOMES`) of every evaluated prediction at every threshold.

    Returns:
        int8 ``[T, n]`` in the matching's visiting order (``matching.order`` gives the prediction).
    """
    n = matching.order.size
    thr = matching.thresholds
    top_tiou = np.zeros(n)
    same_label = np.zeros(n, dtype=bool)
    # GT grouped by video, file order kept inside a video (ties of the highest tIoU go to the first)
    by_video = np.argsort(gt.video_idx, kind="stable")
    bounds = np.searchsorted(gt.video_idx[by_video], np.arange(len(gt.video_names) + 1))
    g_s, g_e, g_lab = gt.segments[by_video, 0], gt.segments[by_video, 1], gt.labels[by_video]
    vid = matching.video
    cnt = np.where(vid >= 0, bounds[vid + 1] - bounds[np.maximum(vid, 0)], 0)
    first = bounds[np.maximum(vid, 0)]
    seg = preds.segments[matching.order]
    cum = np.cumsum(cnt)
    lo = 0
    while lo < n:  # predictions lo:hi, about _PAIR_CHUNK pairs at a time
        hi = max(int(np.searchsorted(cum, (cum[lo - 1] if lo else 0) + _PAIR_CHUNK, side="right")), lo + 1)
        q = np.arange(lo, hi)
        c = cnt[q]
        has = c > 0
        if has.any():
            qh, ch = q[has], c[has]
            pair_q = np.repeat(qh, ch)
            offs = np.arange(int(ch.sum())) - np.repeat(np.cumsum(ch) - ch, ch)
            pair_g = np.repeat(first[qh], ch) + offs
            tiou = _tiou(seg[pair_q, 0], seg[pair_q, 1], g_s[pair_g], g_e[pair_g])
            starts = np.cumsum(ch) - ch
            best = np.maximum.reduceat(tiou, starts)
            pos = np.arange(tiou.size)
            arg = np.minimum.reduceat(np.where(tiou == np.repeat(best, ch), pos, tiou.size), starts)
            top_tiou[qh] = best
            same_label[qh] = g_lab[pair_g[arg]] == matching.cls[qh]
        lo = hi
    codes = np.empty((thr.size, n), dtype=np.int8)
    for t, a in enumerate(thr):
        above = top_tiou >= a
        near = top_tiou >= min_tiou
        code = np.where(above, np.where(same_label, 1, 2), np.where(near, np.where(same_label, 3, 4), 5))
        codes[t] = np.where(matching.matched_gt[t] >= 0, 0, code)
    return codes


def gt_characteristics(gt: GroundTruth, durations: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """Per GT instance: ``length`` (s), ``coverage`` (length / video duration; NaN when the duration is unknown)
    and ``num_instances`` (GT instances in its video, any class)."""
    length = gt.segments[:, 1] - gt.segments[:, 0]
    dur = np.array([float((durations or {}).get(v) or np.nan) for v in gt.video_names] + [np.nan])
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = length / dur[gt.video_idx] if len(gt) else np.zeros(0)
    per_video = np.bincount(gt.video_idx, minlength=len(gt.video_names))
    return {"length": length, "coverage": coverage, "num_instances": per_video[gt.video_idx].astype(np.float64)}


def _bin_index(values: np.ndarray, edges: Iterable[float]) -> np.ndarray:
    """Bin of each value for intervals ``(e_k, e_k+1]`` (the first closed on the left too); -1 outside or NaN."""
    e = np.asarray(list(edges), dtype=np.float64)
    idx = np.searchsorted(e, values, side="left") - 1
    idx = np.where(values == e[0], 0, idx)
    return np.where(np.isfinite(values) & (idx >= 0) & (idx < e.size - 1), idx, -1)


def _interval_text(lo: float, hi: float, first: bool, unit: str) -> str:
    """``(6, 12] s``; for counts (unit ``"count"``) the integers in the bin: ``1``, ``2-40``, ``> 80``."""
    if unit == "count":
        a = max(int(math.floor(lo)) + 1, 1)  # a GT instance's video has at least one
        return f"> {a - 1}" if math.isinf(hi) else (str(a) if a == int(hi) else f"{a}-{int(hi)}")

    def f(x: float) -> str:
        return "inf" if math.isinf(x) else f"{x:g}"

    return f"{'[' if first else '('}{f(lo)}, {f(hi)}{')' if math.isinf(hi) else ']'}{' ' + unit if unit else ''}"


@dataclass
class ErrorAnalysis:
    """What :func:`analyze_errors` computed.

    Attributes:
        matching: the evaluator's matching (visiting order, matched GT per threshold).
        outcome: int8 ``[T, n]`` outcome code of each evaluated prediction (visiting order).
        summary: every number, JSON-ready (see :func:`analyze_errors`).
    """

    matching: Matching
    outcome: np.ndarray
    summary: dict[str, Any]

    def outcome_by_prediction(self, t: int, num_predictions: int) -> np.ndarray:
        """int8 ``[num_predictions]``: outcome code at threshold index ``t`` in the predictions' own order;
        -1 for a prediction that is not evaluated (label not an evaluated class, blocked video)."""
        out = np.full(num_predictions, -1, dtype=np.int8)
        out[self.matching.order] = self.outcome[t]
        return out

    def gt_detected(self, t: int, num_gt: int) -> np.ndarray:
        """bool ``[num_gt]``: whether each GT instance is matched by a prediction at threshold index ``t``."""
        det = np.zeros(num_gt, dtype=bool)
        m = self.matching.matched_gt[t]
        det[m[m >= 0]] = True
        return det


def analyze_errors(
    gt: GroundTruth,
    preds: Predictions,
    tiou_thresholds: Iterable[float] = DEFAULT_TIOU_THRESHOLDS,
    durations: Mapping[str, float] | None = None,
    bins: str = "thumos",
    top_k: int = 10,
    min_tiou: float = MIN_TIOU,
) -> ErrorAnalysis:
    """False-positive analysis and sensitivity analysis (definitions in the module docstring).

    Args:
        gt, preds: as for :func:`~adatad.evaluation.detection_map.evaluate_detections`.
        durations: video -> duration in seconds (for ``coverage``); videos without one are left out of it.
        bins: ``"thumos"`` or ``"activitynet"`` (:data:`BINS`).
        top_k: bands of the false-positive profile (1G .. top_k G).

    Returns:
        :class:`ErrorAnalysis`; its ``summary`` has, per threshold (lists indexed like ``tiou_thresholds``):
        ``counts`` ({outcome: count} over all evaluated predictions), ``profile`` (per band {outcome: count}),
        ``top_false_positives`` ({error type: count} in band 1), ``mAP`` / ``ap`` (per class, the evaluator's),
        ``mAP_without`` / ``ap_without`` ({error type or ``"all"``: ...}), ``average_mAP_without``, and
        ``sensitivity`` ({characteristic: {bins: [...], ...}}).
    """
    if bins not in BINS:
        raise ValueError(f"bins must be one of {sorted(BINS)}, got {bins!r}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    m = match_detections(gt, preds, tiou_thresholds)
    codes = classify_predictions(gt, preds, m, min_tiou)
    thr = m.thresholds
    n_thr, n_cls = thr.size, len(gt.classes)
    tp = m.matched_gt >= 0
    npos = m.npos

    # rank of each prediction inside its class, and its band (0 = top G)
    n = m.order.size
    rank = np.arange(n) - np.repeat(m.cls_bounds[:-1], np.diff(m.cls_bounds))
    band = rank // np.maximum(npos[m.cls], 1).astype(np.int64)

    counts, profile, top_fp = [], [], []
    for t in range(n_thr):
        counts.append(_count(codes[t]))
        rows = [_count(codes[t][band == k]) for k in range(top_k)]
        profile.append(rows)
        top_fp.append({e: rows[0][e] for e in ERROR_TYPES})
    band_sizes = [int((band == k).sum()) for k in range(top_k)]

    def class_ap(c: int, t: int, keep: np.ndarray | None = None, npos_c: float | None = None, norm: float | None = None) -> float:
        lo, hi = m.cls_bounds[c], m.cls_bounds[c + 1]
        tp_c = tp[t, lo:hi]
        if keep is not None:
            tp_c = tp_c[keep[lo:hi]]
        return average_precision(tp_c, npos[c] if npos_c is None else npos_c, norm)

    ap = np.array([[class_ap(c, t) for c in range(n_cls)] for t in range(n_thr)]).reshape(n_thr, n_cls)
    ap_without: dict[str, list[list[float]]] = {}
    map_without: dict[str, list[float]] = {}
    for e in (*ERROR_TYPES, "all"):
        a = np.zeros((n_thr, n_cls))
        for t in range(n_thr):
            keep = codes[t] == 0 if e == "all" else codes[t] != OUTCOMES.index(e)
            for c in range(n_cls):
                a[t, c] = class_ap(c, t, keep)
        ap_without[e] = a.tolist()
        map_without[e] = a.mean(axis=1).tolist()

    # sensitivity
    chars = gt_characteristics(gt, durations)
    n_norm = len(gt) / n_cls
    ap_n = np.array([[class_ap(c, t, norm=n_norm) for c in range(n_cls)] for t in range(n_thr)]).reshape(n_thr, n_cls)
    sensitivity: dict[str, Any] = {}
    for name, (edges, labels, unit) in BINS[bins].items():
        b_of_gt = _bin_index(chars[name], edges)
        rows = []
        for b, label in enumerate(labels):
            in_bin = b_of_gt == b
            npos_b = np.bincount(gt.labels[in_bin], minlength=n_cls).astype(np.float64)
            m_ap, m_ap_n = [], []
            for t in range(n_thr):
                mg = m.matched_gt[t]
                keep = (mg < 0) | (b_of_gt[np.maximum(mg, 0)] == b)
                has = [c for c in range(n_cls) if npos_b[c] > 0]
                m_ap.append(float(np.mean([class_ap(c, t, keep, npos_b[c]) for c in has])) if has else None)
                m_ap_n.append(float(np.mean([class_ap(c, t, keep, npos_b[c], n_norm) for c in has])) if has else None)
            rows.append(
                {
                    "label": label,
                    "interval": _interval_text(edges[b], edges[b + 1], b == 0, unit),
                    "num_ground_truth": int(in_bin.sum()),
                    "num_classes": int((npos_b > 0).sum()),
                    "mAP": m_ap,
                    "mAP_N": m_ap_n,
                }
            )
        sensitivity[name] = {"bins": rows, "num_unbinned": int((b_of_gt < 0).sum())}

    summary = {
        "tiou_thresholds": thr.tolist(),
        "outcomes": list(OUTCOMES),
        "min_tiou": float(min_tiou),
        "bins": bins,
        "top_k": int(top_k),
        "counts": counts,
        "profile": profile,
        "profile_band_sizes": band_sizes,
        "top_false_positives": top_fp,
        "classes": list(gt.classes),
        "num_ground_truth_per_class": npos.astype(int).tolist(),
        "ap": ap.tolist(),
        "mAP": ap.mean(axis=1).tolist(),
        "average_mAP": float(ap.mean()),
        "ap_without": ap_without,
        "mAP_without": map_without,
        "average_mAP_without": {e: float(np.mean(v)) for e, v in map_without.items()},
        "normalized_to": float(n_norm),
        "mAP_N": ap_n.mean(axis=1).tolist(),
        "sensitivity": sensitivity,
    }
    return ErrorAnalysis(matching=m, outcome=codes, summary=summary)


def _count(codes: np.ndarray) -> dict[str, int]:
    k = np.bincount(codes.astype(np.int64), minlength=len(OUTCOMES))
    return {name: int(k[i]) for i, name in enumerate(OUTCOMES)}
