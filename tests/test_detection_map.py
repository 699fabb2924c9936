"""Tests of the detection mAP evaluator and `adatad eval`.

Oracles: hand-computed APs on tiny cases, a literal loop-per-prediction re-statement of the reference
algorithm on random tie-heavy cases, and numbers produced by OpenTAD's own evaluator
(``opentad/evaluations/mAP.py``, run once outside this repository) on the real THUMOS-14 test
annotations with seeded noisy predictions (stored in ``tests/data/eval/``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adatad.data.annotations import thumos14_csv_dir
from adatad.evaluation import cli
from adatad.evaluation.detection_map import (
    evaluate_detections,
    format_table,
    load_ground_truth,
    load_predictions,
)

REPO = Path(__file__).resolve().parents[1]
THUMOS_DIR = thumos14_csv_dir()
REFERENCE_FILE = Path(__file__).resolve().parent / "data" / "eval" / "thumos14_noisy_reference.json"
DROPPED_TEST_VIDEOS = ("video_test_0000270", "video_test_0001292")


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def gt_dict(videos: dict[str, list[tuple[float, float, str]]], subset: str = "validation", others=None) -> dict:
    """Annotation dict: {video: [(start, end, label)]} in `subset`, plus `others` {video: (subset, anns)}."""
    db = {}
    for v, anns in videos.items():
        db[v] = {
            "subset": subset,
            "duration": 100.0,
            "annotations": [{"segment": [s, e], "label": lab} for s, e, lab in anns],
        }
    for v, (sub, anns) in (others or {}).items():
        db[v] = {"subset": sub, "annotations": [{"segment": [s, e], "label": lab} for s, e, lab in anns]}
    return {"database": db}


def pred_dict(preds: list[tuple[str, float, float, object, float]]) -> dict:
    """Prediction dict from [(video, start, end, label, score)] (file order kept)."""
    res: dict[str, list] = {}
    for v, s, e, lab, sc in preds:
        res.setdefault(v, []).append({"segment": [s, e], "label": lab, "score": sc})
    return {"results": res}


def run_eval(gt, preds, thr=(0.3, 0.4, 0.5, 0.6, 0.7), subset="validation", blocked=None, class_names=None):
    g = load_ground_truth(gt, subset, blocked)
    p = load_predictions(preds, class_names)
    return evaluate_detections(g, p, thr)


# ----------------------------------------------------------------------------------------------
# hand-computed cases
# ----------------------------------------------------------------------------------------------


def test_two_predictions_on_one_gt_and_threshold_dependence():
    # GT g1 [0,10], g2 [20,30]. p1 = g1 (TP), p2 overlaps g1 (tIoU 0.9) but g1 is taken -> FP,
    # p3 on g2 with tIoU 0.8. thr 0.5: TP FP TP -> rec .5 .5 1, prec 1 .5 2/3 -> AP = .5*1 + .5*2/3.
    # thr 0.85 / 0.95: TP FP FP -> AP = .5*1.
    gt = gt_dict({"v1": [(0, 10, "A"), (20, 30, "A")]})
    preds = pred_dict([("v1", 1, 10, "A", 0.8), ("v1", 0, 10, "A", 0.9), ("v1", 20, 28, "A", 0.7)])
    r = run_eval(gt, preds, thr=(0.5, 0.85, 0.95))
    assert r["per_class_ap"]["A"] == pytest.approx([5 / 6, 0.5, 0.5], abs=1e-12)
    assert r["mAP"] == pytest.approx([5 / 6, 0.5, 0.5], abs=1e-12)
    assert r["average_mAP"] == pytest.approx((5 / 6 + 1.0) / 3, abs=1e-12)


def test_prediction_takes_highest_tiou_unmatched_gt():
    # p1 [4,14]: tIoU with g1 [0,10] = 6/14, with g2 [5,15] = 9/11 -> takes g2.
    # p2 [5,15] (lower score) = g2 exactly, but g2 is taken; g1 tIoU = 5/15 -> TP at 0.3, FP at 0.5.
    # thr 0.3: TP TP -> AP 1. thr 0.5: TP FP -> rec .5 .5, prec 1 .5 -> AP .5.
    gt = gt_dict({"v": [(0, 10, "A"), (5, 15, "A")]})
    preds = pred_dict([("v", 4, 14, "A", 0.9), ("v", 5, 15, "A", 0.8)])
    r = run_eval(gt, preds, thr=(0.3, 0.5))
    assert r["per_class_ap"]["A"] == pytest.approx([1.0, 0.5], abs=1e-12)


def test_tiou_exactly_at_threshold_counts_as_match():
    # [0,5] vs [0,10]: tIoU = 0.5 exactly; [0,3] vs [0,10]: 0.3 exactly (IEEE division is correctly rounded)
    gt = gt_dict({"v": [(0, 10, "A")], "w": [(0, 10, "B")]})
    preds = pred_dict([("v", 0, 5, "A", 0.9), ("w", 0, 3, "B", 0.9)])
    r = run_eval(gt, preds, thr=(0.3, 0.5, 0.6))
    assert r["per_class_ap"]["A"] == [1.0, 1.0, 0.0]
    assert r["per_class_ap"]["B"] == [1.0, 0.0, 0.0]


def test_class_without_predictions_counts_zero():
    gt = gt_dict({"v": [(0, 10, "A"), (20, 30, "B")]})
    preds = pred_dict([("v", 0, 10, "A", 0.9)])
    r = run_eval(gt, preds, thr=(0.5,))
    assert r["classes"] == ["A", "B"]
    assert r["per_class_ap"] == {"A": [1.0], "B": [0.0]}
    assert r["mAP"] == [0.5]


def test_no_predictions_gives_zero_map():
    r = run_eval(gt_dict({"v": [(0, 10, "A")]}), {"results": {}}, thr=(0.5, 0.7))
    assert r["mAP"] == [0.0, 0.0] and r["average_mAP"] == 0.0
    assert r["stats"]["num_gt_videos_without_predictions"] == 1


def test_predictions_on_videos_without_gt_are_false_positives():
    # unknown video (p1), video of another subset (p2), evaluated video without GT of class A (p3):
    # all FP, ranked above the TP -> precision at recall 1 is 1/4.
    gt = gt_dict({"v": [(0, 10, "A")], "w": [(0, 10, "B")]}, others={"t": ("training", [(0, 10, "A")])})
    preds = pred_dict([("ghost", 0, 10, "A", 0.95), ("t", 0, 10, "A", 0.9), ("w", 0, 10, "A", 0.85), ("v", 0, 10, "A", 0.5)])
    r = run_eval(gt, preds, thr=(0.5,))
    assert r["per_class_ap"]["A"] == [0.25]
    assert r["stats"]["num_unknown_video"] == 1
    assert r["stats"]["num_other_subset_video"] == 1
    assert r["stats"]["num_evaluated"] == 4


def test_unknown_labels_are_ignored_and_counted(caplog):
    gt = gt_dict({"v": [(0, 10, "A")]})
    preds = pred_dict([("v", 0, 10, "Nope", 0.99), ("v", 0, 10, "A", 0.5), ("v", 0, 10, "Other", 0.9)])
    with caplog.at_level(logging.WARNING):
        r = run_eval(gt, preds, thr=(0.5,))
    assert r["per_class_ap"]["A"] == [1.0]
    assert r["stats"]["num_ignored_label"] == 2
    assert r["stats"]["ignored_labels"] == ["Nope", "Other"]
    assert "not evaluated classes" in caplog.text


def _argsort_first(scores: list[float]) -> int:
    """Index visited first by the reference's order `scores.argsort()[::-1]` (numpy default sort kind)."""
    return int(np.asarray(scores, dtype=np.float64).argsort()[::-1][0])


@pytest.mark.parametrize("tp_first_in_file", [True, False])
def test_equal_scores_follow_reference_argsort_order(tp_first_in_file):
    # Two predictions with equal score: one exact TP, one far-away FP. Visiting TP first -> AP 1;
    # FP first -> precision at recall 1 is 1/2 -> AP 0.5. Which comes first is the reference's rule.
    tp = ("v", 0, 10, "A", 0.5)
    fp = ("v", 50, 60, "A", 0.5)
    order = [tp, fp] if tp_first_in_file else [fp, tp]
    r = run_eval(gt_dict({"v": [(0, 10, "A")]}), pred_dict(order), thr=(0.5,))
    tp_index = 0 if tp_first_in_file else 1
    expected = 1.0 if _argsort_first([0.5, 0.5]) == tp_index else 0.5
    assert r["per_class_ap"]["A"] == [expected]


def test_gt_duplicates_and_empty_instances_dropped():
    # duplicates within 1e-3 of the same label collapse; another label at the same time stays;
    # zero / negative length GT are dropped; a label only on a dropped instance is no class.
    gt = gt_dict(
        {
            "v": [
                (0, 10, "A"),
                (0.0005, 10.0009, "A"),
                (0, 10, "B"),
                (5, 5, "C"),
                (8, 7, "C"),
                (0.002, 10, "A"),
            ]
        }
    )
    g = load_ground_truth(gt, "validation")
    assert g.classes == ["A", "B"]
    assert len(g) == 3  # (0,10,A), (0.002,10,A), (0,10,B)
    assert g.stats["num_dropped_duplicates"] == 1
    assert g.stats["num_dropped_non_positive_length"] == 2
    preds = pred_dict([("v", 0, 10, "A", 0.9), ("v", 0, 10, "B", 0.9)])
    r = evaluate_detections(g, load_predictions(preds), (0.5,))
    # A: one TP out of 2 GT -> AP 0.5; B: AP 1.
    assert r["per_class_ap"] == {"A": [0.5], "B": [1.0]}


def test_subset_exact_match_class_order_and_blocked_videos():
    gt = gt_dict(
        {"v1": [(0, 10, "Z")], "v2": [(0, 10, "A")], "v3": [(0, 10, "M")]},
        others={"x": ("Validation", [(0, 10, "Q")]), "y": ("training", [(0, 10, "R")])},
    )
    g = load_ground_truth(gt, "validation", blocked_videos=["v3"])
    assert g.classes == ["Z", "A"]  # first appearance, not sorted; "Validation" is another subset
    preds = pred_dict([("v1", 0, 10, "Z", 0.9), ("v3", 0, 10, "Z", 0.95), ("v2", 50, 60, "A", 0.4)])
    r = evaluate_detections(g, load_predictions(preds), (0.5,))
    # the prediction on blocked v3 is skipped entirely (not an FP)
    assert r["per_class_ap"] == {"Z": [1.0], "A": [0.0]}
    assert r["stats"]["num_blocked_video"] == 1
    with pytest.raises(ValueError, match=r'no video in subset "test".*subsets present'):
        load_ground_truth(gt, "test")


def test_blocked_videos_from_file(tmp_path):
    f = tmp_path / "blocked.json"
    f.write_text(json.dumps(["v2"]))
    gt = gt_dict({"v1": [(0, 10, "A")], "v2": [(0, 10, "A")]})
    assert load_ground_truth(gt, "validation", f).video_names == ["v1"]
    f.write_text("v1\n\nv2\n")
    with pytest.raises(ValueError, match="no ground-truth instance"):
        evaluate_detections(load_ground_truth(gt, "validation", f), load_predictions(pred_dict([])))


def test_integer_labels_resolve_through_class_names():
    gt = gt_dict({"v": [(0, 10, "A"), (20, 30, "B")]})
    preds = pred_dict([("v", 0, 10, 1, 0.9), ("v", 20, 30, 0, 0.8)])
    r = run_eval(gt, preds, thr=(0.5,), class_names=["B", "A"])
    assert r["per_class_ap"] == {"A": [1.0], "B": [1.0]}
    with pytest.raises(ValueError, match=r'video "v" prediction 0 .*integer label 1.*class map'):
        load_predictions(preds)
    with pytest.raises(ValueError, match=r'video "v" prediction 0 has label 1, outside the class map'):
        load_predictions(preds, ["A"])


def test_zero_length_predictions_kept_and_counted():
    # a zero-length prediction inside the GT has tIoU 0 -> FP, ranked first: AP = 1/2 at recall 1
    gt = gt_dict({"v": [(0, 10, "A")]})
    preds = pred_dict([("v", 5, 5, "A", 0.9), ("v", 0, 10, "A", 0.8)])
    p = load_predictions(preds)
    assert p.stats["num_zero_length"] == 1
    r = evaluate_detections(load_ground_truth(gt, "validation"), p, (0.5,))
    assert r["per_class_ap"]["A"] == [0.5]
    assert r["stats"]["num_zero_length"] == 1


@pytest.mark.parametrize(
    "entry, match",
    [
        ({"segment": [0, 1], "label": "A", "score": float("nan")}, r'video "v2" prediction 1 has score nan'),
        ({"segment": [0, 1], "label": "A", "score": float("inf")}, r'video "v2" prediction 1 has score inf'),
        ({"segment": [3, 1], "label": "A", "score": 0.5}, r'video "v2" prediction 1 .*end < start'),
        ({"segment": [0, float("nan")], "label": "A", "score": 0.5}, r'video "v2" prediction 1 .*finite'),
        ({"segment": [0, 1], "label": "A"}, r'video "v2" prediction 1 must be'),
        ({"segment": [0, 1, 2], "label": "A", "score": 0.5}, r'video "v2" prediction 1 must be'),
        ({"segment": [0, 1], "label": "A", "score": "0.5"}, r'video "v2" prediction 1 must be'),
        ({"segment": [0, 1], "label": ["A"], "score": 0.5}, r'video "v2" prediction 1 must be'),
    ],
)
def test_bad_predictions_name_video_and_index(entry, match):
    good = {"segment": [0, 1], "label": "A", "score": 0.5}
    data = {"results": {"v1": [good, good], "v2": [good, entry]}}
    with pytest.raises(ValueError, match=match):
        load_predictions(data)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_ground_truth(tmp_path / "missing.json", "validation")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_predictions(bad)
    bad.write_text(json.dumps({"database": {}}))
    with pytest.raises(ValueError, match='no "results" mapping'):
        load_predictions(bad)
    with pytest.raises(ValueError, match='"v" has no "subset"'):
        load_ground_truth({"database": {"v": {"annotations": []}}}, "validation")
    with pytest.raises(ValueError, match=r'"v" annotation 0 must have "segment"'):
        load_ground_truth({"database": {"v": {"subset": "s", "annotations": [{"segment": [1]}]}}}, "s")
    with pytest.raises(ValueError, match=r'"v" annotation 0 has label 3; labels must be class names'):
        load_ground_truth({"database": {"v": {"subset": "s", "annotations": [{"segment": [0, 1], "label": 3}]}}}, "s")
    with pytest.raises(ValueError, match="tiou_thresholds"):
        evaluate_detections(load_ground_truth(gt_dict({"v": [(0, 1, "A")]}), "validation"), load_predictions(pred_dict([])), [1.5])


def test_format_table():
    result = {
        "tiou_thresholds": [0.3, 0.5],
        "mAP": [0.839, 0.72384],
        "average_mAP": 0.78142,
        "classes": ["A"],
        "per_class_ap": {"A": [0.5, 0.25]},
    }
    lines = format_table(result, per_class=True).splitlines()
    assert lines[0] == "| tIoU | 0.30 | 0.50 | Avg |"
    assert lines[2] == "| mAP | 83.90 | 72.38 | 78.14 |"
    assert lines[3] == "| A | 50.00 | 25.00 | 37.50 |"
    assert len(format_table(result).splitlines()) == 3


# ----------------------------------------------------------------------------------------------
# random tie-heavy cases against a literal restatement of the reference algorithm
# ----------------------------------------------------------------------------------------------


def _literal_reference(gt: dict, preds: dict, subset: str, thresholds) -> dict[str, list[float]]:
    """One prediction at a time, as OpenTAD's mAP.py describes it (plain loops, Python floats)."""
    classes: list = []
    gts: list[tuple[str, float, float, object]] = []
    for vid, v in gt["database"].items():
        if v["subset"] != subset:
            continue
        kept = []
        for a in v["annotations"]:
            s, e, lab = a["segment"][0], a["segment"][1], a["label"]
            if e - s <= 0:
                continue
            if any(abs(s - k[0]) <= 1e-3 and abs(e - k[1]) <= 1e-3 and lab == k[2] for k in kept):
                continue
            kept.append((s, e, lab))
        for s, e, lab in kept:
            if lab not in classes:
                classes.append(lab)
            gts.append((vid, float(s), float(e), lab))
    flat = [
        (vid, float(r["segment"][0]), float(r["segment"][1]), r["label"], r["score"]) for vid, rs in preds["results"].items() for r in rs
    ]

    def tiou(a0, a1, b0, b1):
        inter = max(min(a1, b1) - max(a0, b0), 0.0)
        union = (b1 - b0) + (a1 - a0) - inter
        return inter / max(union, 1e-8)

    out = {}
    for c in classes:
        cg = [g for g in gts if g[3] == c]
        cp = [p for p in flat if p[3] == c]
        visit = np.array([p[4] for p in cp], dtype=np.float64).argsort()[::-1]
        aps = []
        for thr in thresholds:
            taken: set[int] = set()
            flags = []
            for i in visit:
                vid, s, e = cp[i][0], cp[i][1], cp[i][2]
                cand = [j for j, g in enumerate(cg) if g[0] == vid]
                hit = False
                if cand:
                    t = np.array([tiou(s, e, cg[j][1], cg[j][2]) for j in cand])
                    for k in t.argsort()[::-1]:
                        if t[k] < thr:
                            break
                        if cand[k] in taken:
                            continue
                        taken.add(cand[k])
                        hit = True
                        break
                flags.append(hit)
            # interpolated AP from its definition
            tp = fp = 0
            prec, rec = [], []
            for f in flags:
                tp += f
                fp += not f
                prec.append(tp / (tp + fp))
                rec.append(tp / len(cg))
            ap = 0.0
            pts = list(zip(rec, prec))
            env = [max([0.0] + [p for _, p in pts[i:]]) for i in range(len(pts))]
            prev_r = 0.0
            for (r_, _), m in zip(pts, env):
                if r_ != prev_r:
                    ap += (r_ - prev_r) * m
                    prev_r = r_
            aps.append(ap)
        out[c] = aps
    return out


def _random_case(seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    videos = {}
    for v in range(3):
        anns = []
        for _ in range(int(rng.integers(1, 25))):
            s = float(rng.integers(0, 40))
            anns.append((s, s + float(rng.integers(0, 8)), "ABC"[int(rng.integers(0, 3))]))
        videos[f"v{v}"] = anns
    gt = gt_dict(videos, others={"t0": ("training", [(0.0, 5.0, "A")])})
    preds = []
    for _ in range(int(rng.integers(1, 120))):
        vid = ["v0", "v1", "v2", "t0", "zz"][int(rng.integers(0, 5))]
        s = float(rng.integers(0, 40))
        preds.append((vid, s, s + float(rng.integers(0, 8)), "ABCD"[int(rng.integers(0, 4))], float(rng.integers(1, 6)) / 10))
    return gt, pred_dict(preds)


def test_random_tie_heavy_cases_match_literal_reference():
    thresholds = (0.1, 0.3, 0.5, 0.7, 1.0)
    for seed in range(150):
        gt, preds = _random_case(seed)
        r = run_eval(gt, preds, thr=thresholds)
        expected = _literal_reference(gt, preds, "validation", thresholds)
        assert list(expected) == r["classes"], seed
        for c, aps in expected.items():
            np.testing.assert_allclose(r["per_class_ap"][c], aps, rtol=0, atol=1e-12, err_msg=f"seed {seed} class {c}")


# ----------------------------------------------------------------------------------------------
# real THUMOS-14 annotations: agreement with OpenTAD's evaluator (numbers stored in tests/data/eval)
# ----------------------------------------------------------------------------------------------


class SplitMix64:
    """Tiny deterministic PRNG (splitmix64), so the stored reference numbers never depend on numpy's RNG."""

    def __init__(self, seed: int):
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def random(self) -> float:
        return (self.next() >> 11) * 2.0**-53

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()

    def randint(self, n: int) -> int:
        return self.next() % n


def thumos_gt_from_csv(thumos_dir: Path, n_train_videos: int = 10) -> dict:
    """OpenTAD-format annotation dict from the THUMOS-14 CSVs.

    Test videos -> subset "validation" (minus the two usual dropped videos, without "Ambiguous"),
    the first `n_train_videos` validation-split videos -> subset "training".
    """
    db = {}
    for split, subset in (("test", "validation"), ("val", "training")):
        with open(thumos_dir / f"{split}_video_info.csv", newline="") as f:
            info = {r["video"]: r for r in csv.DictReader(f)}
        with open(thumos_dir / f"{split}_Annotation_ours.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        names = [v for v in info if v not in DROPPED_TEST_VIDEOS]
        if split == "val":
            names = names[:n_train_videos]
        for v in names:
            fps, count = float(info[v]["fps"]), float(info[v]["count"])
            db[v] = {"subset": subset, "duration": count / fps, "frame": int(count), "annotations": []}
        for r in rows:
            if r["video"] in db and r["type"] != "Ambiguous":
                db[r["video"]]["annotations"].append({"segment": [float(r["start"]), float(r["end"])], "label": r["type"]})
    return {"database": db}


def noisy_predictions(gt: dict, seed: int, score_decimals: int | None) -> dict:
    """Jittered GT copies + random false positives (+ a few on other-subset / unknown videos, unknown labels).

    Segments are rounded to 2 decimals like OpenTAD's output; scores to `score_decimals` (None: full
    precision, so that no two scores tie).
    """
    rng = SplitMix64(seed)
    classes = sorted({a["label"] for v in gt["database"].values() for a in v["annotations"]})
    results: dict[str, list] = {}

    def add(video, s, e, label, score, duration):
        s, e = max(0.0, s), min(duration, e)
        if e < s:
            s, e = e, s
        sc = score if score_decimals is None else round(score, score_decimals)
        results.setdefault(video, []).append({"segment": [round(s, 2), round(e, 2)], "label": label, "score": sc})

    for video, v in gt["database"].items():
        dur = v["duration"]
        if v["subset"] != "validation":
            if rng.random() < 0.5:
                add(video, 1.0, 5.0, classes[rng.randint(len(classes))], rng.uniform(0.2, 0.9), dur)
            continue
        for a in v["annotations"]:
            s, e = a["segment"]
            length = e - s
            for _ in range(rng.randint(3)):
                c = s + length / 2 + rng.uniform(-0.4, 0.4) * length
                half = length * rng.uniform(0.5, 1.5) / 2
                label = a["label"] if rng.random() < 0.9 else classes[rng.randint(len(classes))]
                add(video, c - half, c + half, label, rng.uniform(0.2, 1.0), dur)
        for _ in range(5 + rng.randint(10)):
            s = rng.uniform(0, dur)
            add(video, s, s + rng.uniform(0, 12), classes[rng.randint(len(classes))], rng.uniform(0.0, 0.7), dur)
    results.setdefault("video_test_9999999", []).append({"segment": [1.0, 2.0], "label": classes[0], "score": 0.99})
    first = next(iter(results))
    results[first].append({"segment": [1.0, 2.0], "label": "Ambiguous", "score": 0.97})
    results[first].append({"segment": [3.0, 3.0], "label": classes[1], "score": 0.5})
    return {"results": results}


def score_order_fingerprint(preds: dict) -> str:
    """sha256 of every class's visiting order `scores.argsort()[::-1]` (numpy's default sort kind)."""
    per_class: dict[str, list[float]] = {}
    for rs in preds["results"].values():
        for r in rs:
            per_class.setdefault(r["label"], []).append(r["score"])
    h = hashlib.sha256()
    for label in sorted(per_class):
        h.update(label.encode())
        h.update(np.asarray(per_class[label], dtype=np.float64).argsort()[::-1].astype(np.int64).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def thumos_reference():
    return thumos_gt_from_csv(THUMOS_DIR), json.loads(REFERENCE_FILE.read_text())


@pytest.mark.parametrize("variant", ["unique_scores", "rounded_scores"])
def test_thumos14_agrees_with_opentad(thumos_reference, variant):
    gt, ref = thumos_reference
    spec = ref["variants"][variant]
    preds = noisy_predictions(gt, spec["seed"], spec["score_decimals"])
    n = sum(len(v) for v in preds["results"].values())
    assert n == spec["num_predictions"], "the prediction generator changed; regenerate the reference numbers"
    if variant == "rounded_scores" and score_order_fingerprint(preds) != spec["score_order_sha256"]:
        pytest.skip(
            "numpy's argsort orders tied scores differently on this machine than where the reference ran "
            "(SIMD sort dispatch); OpenTAD's own numbers differ here too"
        )
    r = run_eval(gt, preds, thr=ref["tiou_thresholds"])
    assert r["classes"] == spec["classes"]
    np.testing.assert_allclose(r["mAP"], spec["mAP"], rtol=0, atol=1e-12)
    assert r["average_mAP"] == pytest.approx(spec["average_mAP"], abs=1e-12)
    for c in spec["classes"]:
        np.testing.assert_allclose(r["per_class_ap"][c], spec["per_class_ap"][c], rtol=0, atol=1e-12, err_msg=c)
    assert r["num_ground_truth"] == spec["num_ground_truth"]
    assert r["stats"]["num_unknown_video"] == 1 and r["stats"]["num_ignored_label"] == 1


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------


@pytest.fixture()
def files(tmp_path):
    gt = gt_dict({"v": [(0, 10, "A"), (20, 30, "B")]}, others={"t": ("training", [(0, 10, "A")])})
    preds = pred_dict([("v", 0, 10, "A", 0.9), ("v", 20, 30, 1, 0.8)])
    g, p = tmp_path / "gt.json", tmp_path / "pred.json"
    g.write_text(json.dumps(gt))
    p.write_text(json.dumps(preds))
    cm = tmp_path / "classes.txt"
    cm.write_text("A\nB\n")
    return g, p, cm, tmp_path


def test_cli_writes_results_and_prints_table(files, capsys):
    g, p, cm, tmp = files
    out = tmp / "res" / "results.json"
    rc = cli.main(["--gt", str(g), "--pred", str(p), "--class-map", str(cm), "--tiou", "0.5", "0.7", "--out", str(out), "--per-class"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| tIoU | 0.50 | 0.70 | Avg |" in text and "| mAP | 100.00 | 100.00 | 100.00 |" in text
    assert "| B | 100.00" in text
    res = json.loads(out.read_text())
    assert res["subset"] == "validation" and res["mAP"] == [1.0, 1.0]


def test_cli_subset_test_alias_and_errors(files, capsys):
    g, p, cm, tmp = files
    assert cli.main(["--gt", str(g), "--pred", str(p), "--class-map", str(cm), "--subset", "test"]) == 0
    assert 'no "test" subset' in capsys.readouterr().err
    # unknown subset, missing file, integer labels without class map, bad --tiou: exit code 2 and a message
    assert cli.main(["--gt", str(g), "--pred", str(p), "--class-map", str(cm), "--subset", "nope"]) == 2
    assert "subsets present" in capsys.readouterr().err
    assert cli.main(["--gt", str(tmp / "missing.json"), "--pred", str(p)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["--gt", str(g), "--pred", str(p)]) == 2
    assert "class map" in capsys.readouterr().err
    assert cli.main(["--gt", str(g), "--pred", str(p), "--class-map", str(cm), "--tiou", "2"]) == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["--pred", str(p)])
    assert e.value.code == 2


def test_evaluator_does_not_import_torch():
    code = "import sys; import adatad.evaluation.detection_map, adatad.evaluation.cli; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_thumos_helpers_sanity(thumos_reference):
    # the converted file matches the published facts: 211 test videos, no Ambiguous instances
    gt, _ = thumos_reference
    test_videos = [v for v, d in gt["database"].items() if d["subset"] == "validation"]
    assert len(test_videos) == 211
    assert not any(a["label"] == "Ambiguous" for d in gt["database"].values() for a in d["annotations"])
    assert math.isclose(gt["database"]["video_test_0000004"]["duration"], 1012 / 30)


# ----------------------------------------------------------------------------------------------
# loading from a file (orjson) gives what loading the dict gives
# ----------------------------------------------------------------------------------------------


def _assert_same_predictions(a, b):
    assert a.video_names == b.video_names and a.label_names == b.label_names and a.stats == b.stats
    for name in ("video_idx", "segments", "scores", "label_idx"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name  # bit-identical, not merely close


def test_load_predictions_file_equals_dict(tmp_path):
    rng = np.random.default_rng(7)
    preds = []
    for k in range(3000):
        s = float(rng.uniform(0, 500)) * float(rng.choice([1e-9, 1.0, 1e6]))  # full-precision doubles, odd exponents
        e = s + float(rng.choice([0.0, rng.uniform(0, 30), 1.0 / 3.0]))
        label = ["A", "B", "Ünïcode", 0, 1, 2][int(rng.integers(0, 6))]
        score = [float(rng.random()), 1, 0, 5e-324, 0.1 + 0.2][int(rng.integers(0, 5))]
        preds.append((f"v{k % 17}", s, e, label, score))
    data = pred_dict(preds)
    data["results"]["empty"] = []
    f = tmp_path / "pred.json"
    f.write_text(json.dumps(data))
    names = ["A", "C", "D"]
    from_file = load_predictions(f, names)
    _assert_same_predictions(from_file, load_predictions(data, names))
    _assert_same_predictions(from_file, load_predictions(json.loads(f.read_text()), names))
    # and the numbers are those of the plain per-prediction values
    flat = [r for v in data["results"].values() for r in v]
    assert from_file.scores.tolist() == [float(r["score"]) for r in flat]
    assert from_file.segments.tolist() == [[float(x) for x in r["segment"]] for r in flat]
    # in-memory dicts with tuples (fast path) or numpy arrays (numpy's general conversion) give the same arrays
    for seg_type in (tuple, np.array):
        alt = {"results": {v: [dict(r, segment=seg_type(r["segment"])) for r in rs] for v, rs in data["results"].items()}}
        _assert_same_predictions(from_file, load_predictions(alt, names))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_in_a_file_name_video_and_index(tmp_path, literal):
    # json.dump writes NaN / Infinity for a diverged model; orjson refuses them, the reader falls back
    f = tmp_path / "pred.json"
    good = '{"segment": [0, 1], "label": "A", "score": 0.5}'
    f.write_text(f'{{"results": {{"v1": [{good}], "v2": [{good}, {{"segment": [0, 1], "label": "A", "score": {literal}}}]}}}}')
    with pytest.raises(ValueError, match=r'prediction file .*pred\.json: video "v2" prediction 1 has score .*; scores must be finite'):
        load_predictions(f)
    f.write_text(f'{{"results": {{"v1": [{good}, {{"segment": [0, {literal}], "label": "A", "score": 0.5}}]}}}}')
    with pytest.raises(ValueError, match=r'video "v1" prediction 1 has segment .*; segments must be finite'):
        load_predictions(f)


def test_eval_command_imports_no_heavy_module(files):
    # `adatad eval` through the top-level command line: the whole run, then a look at what was imported
    g, p, cm, tmp = files
    code = (
        "import sys; from adatad.cli import main; "
        f"rc = main(['eval', '--gt', {str(g)!r}, '--pred', {str(p)!r}, '--class-map', {str(cm)!r}]); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'tqdm', 'av', 'PIL', 'pandas', 'scipy'}); "
        "print(heavy); sys.exit(rc or bool(heavy))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    cmd = [sys.executable, "-m", "adatad", "eval", "--gt", str(g), "--pred", str(p), "--class-map", str(cm)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0 and "| mAP | 100.00" in res.stdout, res.stderr


# ----------------------------------------------------------------------------------------------
# ActivityNet: tIoU ranges, blocked list, v_ names (oracle: OpenTAD's evaluator, tests/fixtures/opentad/anet_eval)
# ----------------------------------------------------------------------------------------------

ANET_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "opentad" / "anet_eval"


def test_parse_tiou_ranges_give_opentads_literal_floats():
    from adatad.evaluation.detection_map import ANET_TIOU_THRESHOLDS, parse_tiou

    # the literals of OpenTAD's ActivityNet / THUMOS configs, compared bit for bit
    assert parse_tiou("0.5:0.95:0.05") == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert tuple(parse_tiou("0.5:0.95:0.05")) == ANET_TIOU_THRESHOLDS
    assert parse_tiou("0.3:0.7:0.1") == [0.3, 0.4, 0.5, 0.6, 0.7]
    assert parse_tiou("0.5") == [0.5] and parse_tiou("0.5:0.5:0.1") == [0.5]
    bad_specs = [
        ("0.5:0.05:0.95", "STOP"),  # MATLAB order START:STEP:STOP is refused, not misread
        ("0.5:0.9:0.3", "whole number"),
        ("0.5:0.9:0", "positive"),
        ("a:b:c", "START:STOP:STEP"),
        ("0.1:0.2", "START:STOP:STEP"),
        ("nan", "number"),
    ]
    for bad, msg in bad_specs:
        with pytest.raises(ValueError, match=msg):
            parse_tiou(bad)


def test_anet_eval_equals_opentad_with_blocked_list():
    exp = json.loads((ANET_FIXTURE / "expected.json").read_text())
    blocked = json.loads((ANET_FIXTURE / "blocked.json").read_text())
    g = load_ground_truth(ANET_FIXTURE / "gt.json", exp["subset"], ANET_FIXTURE / "blocked.json")
    p = load_predictions(ANET_FIXTURE / "pred.json")
    r = evaluate_detections(g, p, exp["tiou_thresholds"])
    assert r["tiou_thresholds"] == exp["tiou_thresholds"]
    assert r["classes"] == exp["classes"] and r["num_ground_truth"] == exp["num_ground_truth"]
    np.testing.assert_allclose(r["mAP"], exp["mAP"], rtol=0, atol=1e-12)
    assert r["average_mAP"] == pytest.approx(exp["average_mAP"], rel=0, abs=1e-12)
    for c in exp["classes"]:
        np.testing.assert_allclose(r["per_class_ap"][c], exp["per_class_ap"][c], rtol=0, atol=1e-12)
    # the fixture exercises what it claims: blocked GT and predictions, a v_ name that blocks nothing
    assert g.stats["num_blocked_videos"] == 4 and r["stats"]["num_blocked_video"] > 0
    assert "v_" + blocked[-1][2:] == blocked[-1] and blocked[-1][2:] in g.video_names
    assert r["stats"]["num_predictions"] - r["stats"]["num_blocked_video"] == exp["num_predictions_kept"]


def test_cli_anet_range_and_blocked_equal_opentad(tmp_path, capsys):
    exp = json.loads((ANET_FIXTURE / "expected.json").read_text())
    out = tmp_path / "r.json"
    args = ["--gt", str(ANET_FIXTURE / "gt.json"), "--pred", str(ANET_FIXTURE / "pred.json"), "--subset", "validation"]
    assert cli.main([*args, "--tiou", "0.5:0.95:0.05", "--blocked", str(ANET_FIXTURE / "blocked.json"), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["tiou_thresholds"] == exp["tiou_thresholds"]
    np.testing.assert_allclose(res["mAP"], exp["mAP"], rtol=0, atol=1e-12)
    assert "| tIoU | 0.50 | 0.55 |" in capsys.readouterr().out
    # without the blocked list the numbers differ (the list matters), a malformed range exits 2 with one line
    assert cli.main([*args, "--tiou", "0.5:0.95:0.05", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["mAP"] != exp["mAP"]
    capsys.readouterr()
    assert cli.main([*args, "--tiou", "0.5:0.05:0.95"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "0.5:0.05:0.95" in err


def test_v_prefix_mismatch_is_named_not_silent(caplog):
    gt = gt_dict({"abc": [(0, 10, "A")], "def": [(0, 10, "A")]})
    preds = pred_dict([("v_abc", 0, 10, "A", 0.9), ("def", 0, 10, "A", 0.8)])
    with caplog.at_level(logging.WARNING):
        g = load_ground_truth(gt, "validation", blocked_videos=["v_def"])
        r = evaluate_detections(g, load_predictions(preds), [0.5])
    # numbers as OpenTAD's: names compared exactly -> v_abc is a false positive, v_def blocks nothing
    # FP (v_abc, 0.9) then TP (def, 0.8) of 2 GT: precision 1/2 at recall 1/2 -> interpolated AP 0.25
    assert r["mAP"] == [pytest.approx(0.25)] and r["stats"]["num_prefix_mismatch_videos"] == 1
    text = caplog.text
    assert "'v_abc' vs 'abc'" in text and "'v_def' vs 'def'" in text and "blocks nothing" in text
