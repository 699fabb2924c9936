"""DETAD-style error analysis (adatad.evaluation.error_analysis).

Oracles: hand-built cases with one false positive of each type and hand-computed APs; a literal
loop-per-prediction re-statement of DETAD's classification rule on random cases; the evaluator's own AP
(nothing removed must give exactly its numbers).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from adatad.evaluation import error_analysis as ea
from adatad.evaluation.detection_map import evaluate_detections, load_ground_truth, load_predictions


def gt_dict(videos, durations=None):
    return {
        "database": {
            v: {
                "subset": "validation",
                "duration": (durations or {}).get(v, 100.0),
                "annotations": [{"segment": [s, e], "label": lab} for s, e, lab in anns],
            }
            for v, anns in videos.items()
        }
    }


def pred_dict(preds):
    res: dict[str, list] = {}
    for v, s, e, lab, sc in preds:
        res.setdefault(v, []).append({"segment": [s, e], "label": lab, "score": sc})
    return {"results": res}


def by_score(analysis, preds, t=0):
    """{score: outcome name} at threshold index t (scores are distinct in the hand-built cases)."""
    codes = analysis.outcome_by_prediction(t, len(preds))
    return {float(s): ea.OUTCOMES[c] for s, c in zip(preds.scores, codes)}


# one GT "A" and one "B" in v1, one "A" in v2; one false positive of each type at tIoU 0.5
ONE_OF_EACH_GT = {"v1": [(10, 20, "A"), (30, 40, "B")], "v2": [(0, 10, "A")]}
ONE_OF_EACH_PRED = [
    ("v1", 30, 40, "B", 0.95),  # TP (B)
    ("v1", 10, 20, "A", 0.9),  # TP (A in v1)
    ("v1", 10, 19.5, "A", 0.8),  # tIoU 0.95 with the A already taken -> double detection
    ("v1", 30, 40, "A", 0.7),  # tIoU 1 with B -> wrong label
    ("v2", 0, 4, "A", 0.6),  # tIoU 0.4 with A -> localization
    ("v1", 33, 37, "A", 0.5),  # tIoU 0.4 with B, 0 with A -> confusion
    ("v1", 50, 60, "A", 0.4),  # no overlap -> background
    ("v2", 0, 10, "A", 0.1),  # TP (A in v2), ranked last
]


def one_of_each(thr=(0.5,)):
    gt = load_ground_truth(gt_dict(ONE_OF_EACH_GT), "validation")
    preds = load_predictions(pred_dict(ONE_OF_EACH_PRED))
    return gt, preds, ea.analyze_errors(gt, preds, thr)


def test_one_false_positive_of_each_type():
    gt, preds, res = one_of_each()
    assert by_score(res, preds) == {
        0.95: "true_positive",
        0.9: "true_positive",
        0.8: "double_detection",
        0.7: "wrong_label",
        0.6: "localization",
        0.5: "confusion",
        0.4: "background",
        0.1: "true_positive",
    }
    s = res.summary
    assert s["counts"][0] == {
        "true_positive": 3,
        "double_detection": 1,
        "wrong_label": 1,
        "localization": 1,
        "confusion": 1,
        "background": 1,
    }


def test_types_depend_on_the_threshold():
    # at 0.3 the 0.6 prediction (tIoU 0.4) takes the A of v2: the 0.1 one becomes a double detection, and the
    # 0.5 one (tIoU 0.4 with B) becomes a wrong label
    gt, preds, res = one_of_each((0.3, 0.5))
    at03 = by_score(res, preds, 0)
    assert at03[0.6] == "true_positive" and at03[0.1] == "double_detection" and at03[0.5] == "wrong_label"
    assert by_score(res, preds, 1)[0.6] == "localization"


def test_hand_computed_ap_with_each_type_removed():
    gt, preds, res = one_of_each()
    s = res.summary
    # class A ranked: TP, DD, WL, LOC, CON, BG, TP (2 GT): AP = .5 * 1 + .5 * 2/7; class B: one TP -> 1
    ap_a = 0.5 + 0.5 * 2 / 7
    assert s["ap"][0] == pytest.approx([ap_a, 1.0])
    assert s["mAP"][0] == pytest.approx((ap_a + 1) / 2)
    # dropping one type: the last TP comes at precision 2/6 -> AP .5 + .5/3
    for e in ea.ERROR_TYPES:
        assert s["ap_without"][e][0] == pytest.approx([0.5 + 0.5 / 3, 1.0]), e
    assert s["ap_without"]["all"][0] == pytest.approx([1.0, 1.0])
    assert s["average_mAP_without"]["all"] == pytest.approx(1.0)


def test_nothing_removed_equals_the_evaluator_and_removing_all_gives_recall():
    gt, preds = random_case(seed=3)
    thr = (0.3, 0.5, 0.7)
    ref = evaluate_detections(gt, preds, thr)
    s = ea.analyze_errors(gt, preds, thr).summary
    assert s["mAP"] == ref["mAP"]  # the same code path: exactly equal
    assert s["ap"] == [[ref["per_class_ap"][c][t] for c in ref["classes"]] for t in range(len(thr))]
    # removing every error type leaves only TPs: AP = recall reached, 1 where every GT is detected
    recall_ap = np.array(s["ap_without"]["all"])
    assert np.all(recall_ap <= 1.0 + 1e-12)


def test_removing_every_error_type_gives_ap_1_when_every_gt_is_detected():
    gt, preds = random_case(seed=5, exact_copies=True)
    s = ea.analyze_errors(gt, preds, (0.5, 0.9)).summary
    assert s["mAP"][0] < 1.0  # there are false positives to remove
    assert s["ap_without"]["all"] == [[1.0] * len(gt.classes)] * 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_categories_partition_the_false_positives_and_follow_the_detad_rule(seed, monkeypatch):
    monkeypatch.setattr(ea, "_PAIR_CHUNK", 7)  # many chunks
    gt, preds = random_case(seed)
    thr = (0.1, 0.3, 0.5, 0.7)
    res = ea.analyze_errors(gt, preds, thr)
    m = res.matching
    for t, a in enumerate(thr):
        fp = m.matched_gt[t] < 0
        codes = res.outcome[t]
        assert np.all((codes == 0) == ~fp) and np.all((codes >= 1) & (codes <= 5) | ~fp)
        counts = res.summary["counts"][t]
        assert sum(counts[e] for e in ea.ERROR_TYPES) == int(fp.sum())
        assert sum(counts.values()) == m.order.size
        # DETAD's rule, one prediction at a time
        for q in np.flatnonzero(fp):
            p = m.order[q]
            s, e = preds.segments[p]
            label = m.cls[q]
            in_video = np.flatnonzero(gt.video_idx == m.video[q]) if m.video[q] >= 0 else np.zeros(0, dtype=int)
            best, best_label = 0.0, -1
            for g in in_video:  # file order: the first of equal tIoUs wins
                gs, ge = gt.segments[g]
                inter = max(0.0, min(e, ge) - max(s, gs))
                tiou = inter / max((ge - gs) + (e - s) - inter, 1e-8)
                if tiou > best:
                    best, best_label = tiou, gt.labels[g]
            if best >= a:
                want = "double_detection" if best_label == label else "wrong_label"
            elif best >= ea.MIN_TIOU:
                want = "localization" if best_label == label else "confusion"
            else:
                want = "background"
            assert ea.OUTCOMES[codes[q]] == want, (t, q)
    # profile: band 1 holds the top G predictions of each class
    s = res.summary
    npos = dict(zip(s["classes"], s["num_ground_truth_per_class"]))
    per_class = np.bincount(m.cls, minlength=len(gt.classes))
    assert s["profile_band_sizes"][0] == sum(min(per_class[i], npos[c]) for i, c in enumerate(s["classes"]))
    for t in range(len(thr)):
        assert sum(s["profile"][t][0].values()) == s["profile_band_sizes"][0]
        assert s["top_false_positives"][t] == {e: s["profile"][t][0][e] for e in ea.ERROR_TYPES}


def test_predictions_on_videos_without_gt_are_background():
    gt = load_ground_truth(gt_dict({"v1": [(0, 10, "A")]}), "validation")
    preds = load_predictions(pred_dict([("v1", 0, 10, "A", 0.9), ("elsewhere", 0, 10, "A", 0.8), ("v1", 0, 10, "Z", 0.7)]))
    res = ea.analyze_errors(gt, preds, (0.5,))
    # the label "Z" is not evaluated (as in the evaluator): -1
    codes = dict(zip(preds.scores.tolist(), res.outcome_by_prediction(0, len(preds)).tolist()))
    assert codes == {0.9: 0, 0.8: 5, 0.7: -1}
    assert res.gt_detected(0, len(gt)).tolist() == [True]


def test_sensitivity_bins_hand_computed():
    # v1 (100 s): A [0, 2] (length 2: XS; coverage 0.02: XS, closed on the right) detected, A [10, 20] (length 10:
    # M; coverage 0.1: XL) missed; 2 instances in the video: num_instances S. Ranked: BG (0.95), TP (0.9), BG (0.8).
    gt = load_ground_truth(gt_dict({"v1": [(0, 2, "A"), (10, 20, "A")]}), "validation")
    preds = load_predictions(pred_dict([("v1", 60, 62, "A", 0.95), ("v1", 0, 2, "A", 0.9), ("v1", 50, 52, "A", 0.8)]))
    s = ea.analyze_errors(gt, preds, (0.5,), durations={"v1": 100.0}).summary
    length = {b["label"]: b for b in s["sensitivity"]["length"]["bins"]}
    assert [b["num_ground_truth"] for b in s["sensitivity"]["length"]["bins"]] == [1, 0, 1, 0, 0]
    assert length["XS"]["interval"] == "[0, 3] s" and length["M"]["interval"] == "(6, 12] s"
    assert length["XL"]["interval"] == "(18, inf) s"
    # XS: FP, TP, FP with 1 GT -> precision 1/2 at recall 1: AP .5; AP_N (N = 2 GT per class): 2 / (2 + 1)
    assert length["XS"]["mAP"] == [pytest.approx(0.5)] and length["XS"]["mAP_N"] == [pytest.approx(2 / 3)]
    # M: the TP matched a GT of another bin is dropped, the FPs stay: AP 0; bins without GT: None
    assert length["M"]["mAP"] == [0.0] and length["S"]["mAP"] == [None]
    cov = [b["num_ground_truth"] for b in s["sensitivity"]["coverage"]["bins"]]
    assert cov == [1, 0, 0, 0, 1]
    num = {b["label"]: b for b in s["sensitivity"]["num_instances"]["bins"]}
    assert num["S"]["num_ground_truth"] == 2 and num["XS"]["num_ground_truth"] == 0
    assert [b["interval"] for b in num.values()] == ["1", "2-40", "41-80", "> 80"]
    # both GT: FP, TP, FP with 2 GT: AP = .5 * 1/2; AP_N: .5 * (1 / (1 + 1))
    assert num["S"]["mAP"] == [pytest.approx(0.25)] and num["S"]["mAP_N"] == [pytest.approx(0.25)]


def test_bin_edges_and_unknown_durations():
    idx = ea._bin_index(np.array([0.0, 3.0, 3.0001, 18.0, 1e9, np.nan, -1.0]), (0, 3, 6, 12, 18, math.inf))
    assert idx.tolist() == [0, 0, 1, 3, 4, -1, -1]
    assert ea._bin_index(np.array([1.0, 2.0, 40.0, 41.0]), (-1, 1, 40, 80, math.inf)).tolist() == [0, 1, 1, 2]
    gt = load_ground_truth(gt_dict({"v1": [(0, 2, "A")]}), "validation")
    chars = ea.gt_characteristics(gt, durations=None)
    assert math.isnan(chars["coverage"][0]) and chars["length"].tolist() == [2.0] and chars["num_instances"].tolist() == [1.0]
    s = ea.analyze_errors(gt, load_predictions(pred_dict([])), (0.5,)).summary
    assert s["sensitivity"]["coverage"]["num_unbinned"] == 1
    assert s["mAP"] == [0.0] and s["counts"][0]["true_positive"] == 0


def test_normalized_ap_equals_plain_ap_when_n_equals_npos():
    tp = np.array([1, 0, 1, 1, 0, 0, 1], dtype=bool)
    assert ea.average_precision(tp, 5, normalize_to=5) == pytest.approx(ea.average_precision(tp, 5))


def test_bad_arguments():
    gt, preds, _ = one_of_each()
    with pytest.raises(ValueError, match="bins"):
        ea.analyze_errors(gt, preds, bins="kinetics")
    with pytest.raises(ValueError, match="top_k"):
        ea.analyze_errors(gt, preds, top_k=0)


def random_case(seed: int, exact_copies: bool = False):
    """Random GT (3 classes, 6 videos) and predictions: jittered / exact copies, wrong labels, random boxes."""
    rng = np.random.default_rng(seed)
    classes = ["A", "B", "C"]
    videos = {}
    for v in range(6):
        anns = []
        for _ in range(int(rng.integers(1, 6))):
            s = float(rng.uniform(0, 90))
            anns.append((round(s, 1), round(s + float(rng.uniform(1, 10)), 1), classes[int(rng.integers(0, 3))]))
        videos[f"v{v}"] = anns
    preds = []
    for v, anns in videos.items():
        for s, e, lab in anns:
            if exact_copies:
                preds.append((v, s, e, lab, float(rng.uniform(0, 1))))
            for _ in range(3):
                d = (e - s) * float(rng.uniform(-0.5, 0.5))
                lab2 = lab if rng.random() < 0.7 else classes[int(rng.integers(0, 3))]
                preds.append((v, round(s + d, 1), round(e + d * float(rng.uniform(0, 2)), 1) + 0.1, lab2, float(rng.uniform(0, 1))))
        for _ in range(4):
            s = float(rng.uniform(0, 95))
            lab = classes[int(rng.integers(0, 3))]
            preds.append((v, round(s, 1), round(s + float(rng.uniform(0.5, 8)), 1), lab, float(rng.uniform(0, 1))))
    preds.append(("unknown_video", 1.0, 5.0, "A", 0.5))
    preds = [(v, s, max(e, s), lab, round(sc, 2)) for v, s, e, lab, sc in preds]  # ties in scores
    return load_ground_truth(gt_dict(videos), "validation"), load_predictions(pred_dict(preds))


def test_matched_gt_ids_equal_a_serial_greedy_matching():
    """The GT each prediction takes (new output of the evaluator's matching), against one-at-a-time greedy matching
    in the evaluator's visiting order (continuous random segments: no ties of tIoU)."""
    from adatad.evaluation.detection_map import match_detections

    rng = np.random.default_rng(11)
    videos = {f"v{i}": [(s, s + float(rng.uniform(1, 9)), "AB"[int(rng.integers(2))]) for s in rng.uniform(0, 80, 6)] for i in range(4)}
    preds = []
    for v, anns in videos.items():
        for s, e, lab in anns:
            for _ in range(3):
                d = float(rng.normal(0, 1.5))
                preds.append((v, s + d, e + d + float(rng.normal(0, 1)), lab, float(rng.uniform())))
    preds = [(v, s, max(e, s + 0.1), lab, sc) for v, s, e, lab, sc in preds]
    gt = load_ground_truth(gt_dict(videos), "validation")
    p = load_predictions(pred_dict(preds))
    thr = (0.3, 0.5, 0.7)
    m = match_detections(gt, p, thr)
    for t, a in enumerate(thr):
        taken: set[int] = set()
        for q, idx in enumerate(m.order):
            s, e = p.segments[idx]
            best, best_g = -1.0, -1
            for g in range(len(gt)):
                if g in taken or gt.labels[g] != m.cls[q] or gt.video_idx[g] != m.video[q]:
                    continue
                gs, ge = gt.segments[g]
                inter = max(0.0, min(e, ge) - max(s, gs))
                tiou = inter / ((ge - gs) + (e - s) - inter)
                if tiou >= a and tiou > best:
                    best, best_g = tiou, g
            if best_g >= 0:
                taken.add(best_g)
            assert m.matched_gt[t, q] == best_g, (a, q)
