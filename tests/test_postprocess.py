"""Post-processing: candidates, soft-NMS (hand cases + a line-by-line port of OpenTAD's C++ loop), seconds, JSON."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adatad.models.postprocess import (
    batched_nms,
    soft_nms,
    to_result_json,
    to_seconds,
    video_detections,
    window_candidates,
)

torch.set_num_threads(1)
f32 = np.float32


def cpp_softnms(segs, scores, iou_threshold=0.0, sigma=0.5, min_score=0.0, method=2):
    """Oracle: a plain transliteration of OpenTAD's ``softnms_1d_cpu`` (nms_cpu.cpp) in float32 scalars.
    Returns (dets [(x1, x2, score)], original indices) in selection order."""
    x1 = [f32(a) for a, _ in segs]
    x2 = [f32(b) for _, b in segs]
    sc = [f32(s) for s in scores]
    areas = [f32(b - a) + f32(1e-6) for a, b in zip(x1, x2)]
    inds = list(range(len(segs)))
    nsegs = len(segs)
    dets = []
    i = 0
    while i < nsegs:
        max_score, max_pos = sc[i], i
        for pos in range(i + 1, nsegs):
            if max_score < sc[pos]:
                max_score, max_pos = sc[pos], pos
        ix1, ix2, iscore, iarea, iind = x1[max_pos], x2[max_pos], sc[max_pos], areas[max_pos], inds[max_pos]
        dets.append((float(ix1), float(ix2), float(iscore)))
        x1[max_pos], x2[max_pos], sc[max_pos], areas[max_pos], inds[max_pos] = x1[i], x2[i], sc[i], areas[i], inds[i]
        x1[i], x2[i], sc[i], areas[i], inds[i] = ix1, ix2, iscore, iarea, iind
        pos = i + 1
        while pos < nsegs:
            inter = max(f32(0), f32(min(ix2, x2[pos]) - max(ix1, x1[pos])))
            ovr = f32(inter / f32(f32(iarea + areas[pos]) - inter))
            weight = f32(1.0)
            if method == 0:
                if ovr >= f32(iou_threshold):
                    weight = f32(0.0)
            elif method == 1:
                if ovr >= f32(iou_threshold):
                    weight = f32(1) - ovr
            else:
                weight = f32(math.exp(float(f32(-(ovr * ovr)) / f32(sigma))))
            sc[pos] = f32(sc[pos] * weight)
            if sc[pos] < f32(min_score):
                last = nsegs - 1
                x1[pos], x2[pos], sc[pos], areas[pos], inds[pos] = x1[last], x2[last], sc[last], areas[last], inds[last]
                nsegs -= 1
                pos -= 1
            pos += 1
        i += 1
    return dets[:nsegs], inds[:nsegs]


def oracle_batched(segs, scores, labels, max_seg_num, **kw):
    """OpenTAD's multiclass path around the oracle: per class in ascending label order, cap, concat."""
    out = []
    for c in sorted(set(labels.tolist())):
        idx = [i for i, lab in enumerate(labels.tolist()) if lab == c]
        dets, inds = cpp_softnms([segs[i].tolist() for i in idx], [scores[i].item() for i in idx], **kw)
        out += [(d[0], d[1], d[2], c) for d in dets[:max_seg_num]]
    return out


def as_set(segs, scores, labels):
    return sorted(zip(segs[:, 0].tolist(), segs[:, 1].tolist(), scores.tolist(), labels.tolist()))


# --------------------------------------------------------------------------- soft-NMS by hand


def test_soft_nms_hand_values():
    segs = torch.tensor([[0.0, 10.0], [5.0, 15.0], [20.0, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    s, sc, lab = batched_nms(segs, scores, torch.zeros(3, dtype=torch.long), max_seg_num=10, sigma=0.5)
    # A selected; B: IoU 5/15 -> 0.8 * exp(-(1/9)/0.5); C untouched (no overlap); then C, then B
    assert s.tolist() == [[0.0, 10.0], [20.0, 30.0], [5.0, 15.0]]
    assert sc.tolist() == pytest.approx([0.9, 0.7, 0.8 * math.exp(-2 / 9)], rel=1e-6)
    assert lab.tolist() == [0, 0, 0]


def test_soft_nms_tie_break_follows_cpp_swaps():
    """e0, e1 identical (score 0.5) and e2 (0.9) apart. Step 0 selects e2 and swaps it with e0 -> [e2, e1, e0];
    step 1 sees a tie and takes the first position, e1 (not e0, the lowest original index): e0 decays."""
    segs = torch.tensor([[0.0, 10.0], [0.0, 10.0], [50.0, 60.0]])
    scores = torch.tensor([0.5, 0.5, 0.9])
    labels = torch.tensor([3, 4, 3])
    s, sc, lab = batched_nms(segs, scores, torch.zeros(3, dtype=torch.long), max_seg_num=10, multiclass=False, sigma=0.5)
    ovr = 10.0 / (10.0 + 1e-6 + 10.0 + 1e-6 - 10.0)
    assert sc.tolist() == pytest.approx([0.9, 0.5, 0.5 * math.exp(-(ovr**2) / 0.5)], rel=1e-6)
    dets, inds = cpp_softnms(segs.tolist(), scores.tolist(), sigma=0.5)
    assert inds == [2, 1, 0]
    # multiclass: e0 and e1 are different classes -> nothing decays
    s, sc, lab = batched_nms(segs, scores, labels, max_seg_num=10, sigma=0.5)
    assert sorted(sc.tolist()) == pytest.approx([0.5, 0.5, 0.9])


def test_soft_nms_min_score_pruning():
    segs = torch.tensor([[0.0, 10.0], [0.0, 10.0], [1.0, 10.0], [40.0, 50.0]])
    scores = torch.tensor([0.9, 0.8, 0.2, 0.1])
    # identical segment decays to 0.8 * exp(-1/0.5) = 0.108 < 0.15 -> dropped; [1, 10] (IoU 0.9) -> 0.2*0.198 dropped
    s, sc, lab = batched_nms(segs, scores, torch.zeros(4, dtype=torch.long), min_score=0.15, max_seg_num=10, sigma=0.5)
    assert s.tolist() == [[0.0, 10.0]]
    # the non-overlapping 0.1 goes too: after each selection every remaining score is compared with min_score
    dets, inds = cpp_softnms(segs.tolist(), scores.tolist(), sigma=0.5, min_score=0.15)
    assert inds == [0]
    assert sc.tolist() == pytest.approx([0.9])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("min_score", [0.0, 0.05])
def test_soft_nms_matches_cpp_port_on_random_inputs(seed, min_score):
    g = torch.Generator().manual_seed(seed)
    n = 150
    start = torch.rand(n, generator=g) * 100
    segs = torch.stack((start, start + 1 + torch.rand(n, generator=g) * 20), dim=1)
    scores = torch.round(torch.rand(n, generator=g) * 20) / 20  # many exact ties
    labels = torch.randint(0, 4, (n,), generator=g)
    s, sc, lab = batched_nms(segs, scores, labels, min_score=min_score, max_seg_num=1000, sigma=0.7)
    want = oracle_batched(segs, scores, labels, 1000, sigma=0.7, min_score=min_score)
    got = as_set(s, sc, lab)
    assert got == sorted(want)
    if min_score > 0:
        assert len(got) < n
    # class-agnostic, linear and hard-in-soft methods too
    for method, thr in ((2, 0.0), (1, 0.3), (0, 0.5)):
        s, sc, lab = batched_nms(
            segs, scores, labels, iou_threshold=thr, min_score=min_score, max_seg_num=1000, multiclass=False, sigma=0.7, method=method
        )
        dets, inds = cpp_softnms(segs.tolist(), scores.tolist(), thr, 0.7, min_score, method)
        want = sorted((d[0], d[1], d[2], labels[k].item()) for d, k in zip(dets, inds))
        assert as_set(s, sc, lab) == want


@pytest.mark.parametrize("min_score", [0.0, 0.05])
def test_soft_nms_early_stop_equals_first_selections(min_score):
    g = torch.Generator().manual_seed(5)
    n = 120
    start = torch.rand(n, generator=g) * 60
    segs = torch.stack((start, start + 1 + torch.rand(n, generator=g) * 15), dim=1)
    scores = torch.round(torch.rand(n, generator=g) * 20) / 20
    groups = [torch.arange(0, 70), torch.arange(70, 120)]
    got = soft_nms(segs, scores, groups, sigma=0.7, min_score=min_score, max_num=9)
    for (s, sc, idx), grp in zip(got, groups):
        dets, inds = cpp_softnms(segs[grp].tolist(), scores[grp].tolist(), sigma=0.7, min_score=min_score)
        assert idx.tolist() == grp[inds[:9]].tolist()
        assert sc.tolist() == [d[2] for d in dets[:9]]
        assert s.tolist() == [[d[0], d[1]] for d in dets[:9]]


def test_batched_nms_caps_per_class_then_video():
    segs = torch.tensor([[0.0, 1.0], [10.0, 11.0], [20.0, 21.0], [0.0, 1.0], [10.0, 11.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.95])
    labels = torch.tensor([0, 0, 0, 1, 1])
    s, sc, lab = batched_nms(segs, scores, labels, max_seg_num=2)
    # class 0 keeps 0.9, 0.8; class 1 keeps 0.95, 0.6; the video keeps the best two
    assert sc.tolist() == pytest.approx([0.95, 0.9])
    assert lab.tolist() == [1, 0]
    s, sc, lab = batched_nms(segs, scores, labels, max_seg_num=3)
    assert sc.tolist() == pytest.approx([0.95, 0.9, 0.8])


def test_voting_ignored_when_multiclass_and_applied_class_agnostic():
    segs = torch.tensor([[0.0, 10.0], [1.0, 11.0]])
    scores = torch.tensor([1.0, 0.5])
    labels = torch.tensor([0, 0])
    a = batched_nms(segs, scores, labels, max_seg_num=10, multiclass=True, voting_thresh=0.7)
    b = batched_nms(segs, scores, labels, max_seg_num=10, multiclass=True, voting_thresh=0.0)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert a[0].tolist() == [[0.0, 10.0], [1.0, 11.0]]
    # class-agnostic: IoU 9/11 >= 0.7, so both kept segments become the score-weighted mean of both inputs
    s, sc, lab = batched_nms(segs, scores, labels, max_seg_num=10, multiclass=False, voting_thresh=0.7)
    voted = [(1.0 * 0 + 0.5 * 1) / 1.5, (1.0 * 10 + 0.5 * 11) / 1.5]
    assert s.tolist() == [pytest.approx(voted), pytest.approx(voted)]
    assert sc[0].item() == 1.0


def test_voting_keeps_zero_length_segments_finite():
    """OpenTAD's voting gives NaN for a kept zero-length segment (IoU 0/0 with itself); adatad keeps the segment
    (the same in the evaluation: IoU 0 with every instance), and votes the others as before."""
    segs = torch.tensor([[2.0, 2.0], [0.0, 10.0], [1.0, 11.0]])
    scores = torch.tensor([0.9, 1.0, 0.5])
    s, sc, _ = batched_nms(segs, scores, torch.zeros(3, dtype=torch.long), max_seg_num=10, multiclass=False, voting_thresh=0.7)
    voted = [(1.0 * 0 + 0.5 * 1) / 1.5, (1.0 * 10 + 0.5 * 11) / 1.5]
    assert bool(torch.isfinite(s).all()) and s[1].tolist() == [2.0, 2.0] and sc[1].item() == pytest.approx(0.9)
    assert s[0].tolist() == pytest.approx(voted)


def test_hard_nms():
    segs = torch.tensor([[0.0, 10.0], [1.0, 10.0], [5.0, 15.0], [30.0, 40.0], [0.0, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.3])
    labels = torch.tensor([0, 0, 0, 0, 1])
    s, sc, lab = batched_nms(segs, scores, labels, iou_threshold=0.5, max_seg_num=10, use_soft_nms=False)
    # [1,10] IoU 0.9 with [0,10] -> suppressed; [5,15] IoU 1/3 kept; other class untouched
    assert sc.tolist() == pytest.approx([0.9, 0.7, 0.6, 0.3])
    assert lab.tolist() == [0, 0, 0, 1]
    s, sc, lab = batched_nms(segs, scores, labels, iou_threshold=0.5, min_score=0.35, max_seg_num=10, use_soft_nms=False)
    assert sc.tolist() == pytest.approx([0.9, 0.7, 0.6])


def test_batched_nms_empty():
    s, sc, lab = batched_nms(torch.zeros(0, 2), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert s.shape == (0, 2) and sc.shape == (0,) and lab.shape == (0,)


# --------------------------------------------------------------------------- decoding and seconds


def test_window_candidates_point_major_threshold_topk():
    # levels: 4 points at stride 1, 2 points at stride 2; K = 2; level-0 point 3 padded
    p = 0.6
    logit = math.log(p / (1 - p))
    cls = [torch.full((1, 2, 4), -20.0), torch.full((1, 2, 2), -20.0)]
    cls[0][0, 1, 2] = logit  # point 2 (t=2), class 1
    cls[0][0, 0, 3] = 5.0  # padded point: ignored
    cls[1][0, 0, 1] = 0.0  # level-1 point 1 (t=2, stride 2), class 0, p = 0.5
    cls[1][0, 1, 1] = 0.0  # same point, class 1, p = 0.5
    reg = [torch.zeros(1, 2, 4), torch.zeros(1, 2, 2)]
    reg[0][0, :, 2] = torch.tensor([1.5, 0.5])  # [2 - 1.5, 2 + 0.5]
    reg[1][0, :, 1] = torch.tensor([2.0, 1.0])  # [2 - 4, 2 + 2]: not clamped to the window
    masks = [torch.tensor([[True, True, True, False]]), torch.ones(1, 2, dtype=torch.bool)]
    (c,) = window_candidates(cls, reg, masks, (1, 2), pre_nms_thresh=0.001, pre_nms_topk=2000)
    assert c["scores"].tolist() == pytest.approx([0.6, 0.5, 0.5])
    assert c["labels"].tolist()[0] == 1 and sorted(c["labels"].tolist()[1:]) == [0, 1]
    assert c["segments"].tolist() == [[0.5, 2.5], [-2.0, 4.0], [-2.0, 4.0]]
    (c,) = window_candidates(cls, reg, masks, (1, 2), pre_nms_thresh=0.55, pre_nms_topk=2000)
    assert c["scores"].tolist() == pytest.approx([0.6])
    (c,) = window_candidates(cls, reg, masks, (1, 2), pre_nms_thresh=0.001, pre_nms_topk=1)
    assert c["labels"].tolist() == [1]


def test_to_seconds_clamp_and_round():
    meta = dict(video_name="v", fps=30.0, duration=60.0, snippet_stride=4, window_start_frame=1536, offset_frames=0)
    seg = torch.tensor([[-400.0, 10.0], [440.0, 500.0], [1.0, 2.0]])
    out = to_seconds(seg, meta)
    # (-1600+1536)/30 < 0 -> 0; (40+1536)/30 = 52.5333 -> 52.53; (1760+1536)/30 = 109.9 -> 60; 60
    # (4+1536)/30 = 51.3333 -> 51.33; (8+1536)/30 = 51.4666 -> 51.47
    assert out.tolist() == [[0.0, 52.53], [60.0, 60.0], [51.33, 51.47]]
    assert out.dtype == torch.float64
    raw = to_seconds(seg, meta, decimals=None)
    assert raw[0, 1].item() == pytest.approx(52.5333, abs=1e-4)
    meta2 = dict(meta, offset_frames=3)
    assert to_seconds(torch.tensor([[0.0, 3.0]]), meta2).tolist() == [[51.3, 51.7]]
    with pytest.raises(KeyError, match="snippet_stride"):
        to_seconds(seg, {"video_name": "v", "fps": 30.0, "duration": 1.0})


def test_video_detections_merges_windows_then_nms():
    metas = [
        dict(video_name="v", fps=10.0, duration=100.0, snippet_stride=4, window_start_frame=0, offset_frames=0),
        dict(video_name="v", fps=10.0, duration=100.0, snippet_stride=4, window_start_frame=40, offset_frames=0),
    ]
    # window 0: [10, 20] grid -> [4, 8] s; window 1: [0, 10] grid -> [4, 8] s (same segment), and [50, 60] -> [24, 28]
    w0 = dict(segments=torch.tensor([[10.0, 20.0]]), scores=torch.tensor([0.812345]), labels=torch.tensor([2]))
    w1 = dict(segments=torch.tensor([[0.0, 10.0], [50.0, 60.0]]), scores=torch.tensor([0.7, 0.3]), labels=torch.tensor([2, 2]))
    nms = dict(use_soft_nms=True, sigma=0.7, max_seg_num=2000, multiclass=True, voting_thresh=0.7)
    det = video_detections([w0, w1], metas, nms)
    # scores rounded to 4 first (0.8123); the duplicate decays by exp(-1/0.7) (IoU ~ 1); result rounded to 4
    assert det["segments"].tolist() == [[4.0, 8.0], [24.0, 28.0], [4.0, 8.0]]
    assert det["scores"].tolist() == [0.8123, 0.3, round(0.7 * math.exp(-1 / 0.7), 4)]
    assert det["labels"].tolist() == [2, 2, 2]
    raw = video_detections([w0, w1], metas, None)
    assert raw["scores"].tolist() == [0.8123, 0.7, 0.3]
    with pytest.raises(ValueError, match="several videos"):
        video_detections([w0, w1], [metas[0], dict(metas[1], video_name="u")], nms)


def test_to_result_json():
    det = {
        "v": dict(
            segments=torch.tensor([[1.25, 2.5]], dtype=torch.float64),
            scores=torch.tensor([0.5], dtype=torch.float64),
            labels=torch.tensor([1]),
        )
    }
    assert to_result_json(det, ["a", "b"]) == {"results": {"v": [{"segment": [1.25, 2.5], "label": "b", "score": 0.5}]}}
    with pytest.raises(ValueError, match="label index 5"):
        to_result_json({"v": dict(det["v"], labels=torch.tensor([5]))}, ["a", "b"])
