"""Sliding windows and random truncation (OpenTAD rules), on hand cases and the real THUMOS-14 annotations."""

from __future__ import annotations

import random

import numpy as np
import pytest

from adatad.data.annotations import thumos14_csv_dir
from adatad.data.windows import gt_completeness, num_snippets, random_truncation, sliding_windows

THUMOS = thumos14_csv_dir()


def test_num_snippets():
    assert num_snippets(0) == 0
    assert num_snippets(1) == 1
    assert num_snippets(4) == 1
    assert num_snippets(5) == 2
    assert num_snippets(1012) == len(range(0, 1012, 4)) == 253


def test_sliding_windows_hand_cases():
    # stride 384: i < max(1, 1000 // 384 = 2); window 1 would pass the end -> moved back to end at 1000
    assert sliding_windows(1000) == [(0, 768), (232, 1000)]
    assert sliding_windows(100) == [(0, 100)]  # one window, shorter than 768
    assert sliding_windows(2000) == [(0, 768), (384, 1152), (768, 1536), (1152, 1920), (1232, 2000)]
    # OpenTAD quirk kept: a video of exactly 768 snippets gets its single window twice (i < 768 // 384 = 2)
    assert sliding_windows(768) == [(0, 768), (0, 768)]
    assert sliding_windows(10, window_size=4, overlap_ratio=0.25) == [(0, 4), (3, 7), (6, 10)]


def _count_oracle(n: int, w: int = 768, s: int = 384) -> int:
    """Closed form of the rule: k = max(1, n // s) windows, cut after the first one passing the end."""
    k = max(1, n // s)
    first_past = (n - w) // s + 1 if n >= w else 0  # smallest i with i * s + w > n
    return min(k, first_past + 1)


@pytest.mark.parametrize("n", [1, 383, 384, 767, 768, 769, 1151, 1152, 1153, 5000, 12345])
def test_window_count_closed_form(n):
    wins = sliding_windows(n)
    assert len(wins) == _count_oracle(n)
    assert all(0 <= a < b <= n and b - a == min(768, n) for a, b in wins)
    assert wins[-1][1] == n or n >= 768 and wins[-1][1] <= n


def test_real_window_counts():
    import csv

    counts = {}
    for split in ("val", "test"):
        with open(THUMOS / f"{split}_video_info.csv") as f:
            frames = {r["video"]: int(float(r["count"])) for r in csv.DictReader(f)}
        frames.pop("video_test_0000270", None)
        frames.pop("video_test_0001292", None)
        counts[split] = sum(len(sliding_windows(num_snippets(fr, 4))) for fr in frames.values())
        assert counts[split] == sum(_count_oracle(-(-fr // 4)) for fr in frames.values())
    # README: "about 794" test windows and "about 720" train windows; exact values from the rule:
    assert counts == {"val": 720, "test": 792}


def test_random_truncation_invariants():
    rng = np.random.default_rng(0)
    seg = np.array([[10, 30], [500, 520], [1500, 1600], [2900, 2999]], dtype=np.float32)
    for _ in range(300):
        w = random_truncation(3000, seg, 768, 0.75, (0.9, 1.0), rng=rng)
        assert w.length == 768 and w.mask.all() and 0 <= w.start <= 3000 - 768
        np.testing.assert_array_equal(w.snippets, np.arange(w.start, w.start + 768))
        assert len(w.keep) >= 1
        for (s, e), k in zip(w.segments, w.keep):
            os_, oe = seg[k]
            # clipped to the window, window-relative
            assert s == pytest.approx(max(os_, w.start) - w.start) and e == pytest.approx(min(oe, w.start + 768) - w.start)
            assert (e - s) >= 0.75 * (oe - os_) - 1e-4
        # instances not kept have < 75% inside
        for k in set(range(4)) - set(w.keep.tolist()):
            inter = max(0.0, min(seg[k, 1], w.start + 768) - max(seg[k, 0], w.start))
            assert inter < 0.75 * (seg[k, 1] - seg[k, 0])


def test_random_truncation_hand_case():
    # only [1000, 1010] exists: the window must hold >= 7.5 of its 10 snippets
    seg = np.array([[1000, 1010]], np.float32)
    for seed in range(50):
        w = random_truncation(2000, seg, 768, 0.75, rng=random.Random(seed))
        assert 1000 + 7.5 - 768 <= w.start <= 1010 - 7.5
        assert w.segments.shape == (1, 2)


def test_random_truncation_short_video():
    seg = np.array([[5, 50], [60, 90]], np.float32)
    lengths = set()
    for seed in range(200):
        w = random_truncation(100, seg, 768, 0.75, (0.9, 1.0), rng=np.random.default_rng(seed))
        lengths.add(w.length)
        assert 90 <= w.length <= 100
        assert w.mask.sum() == w.length and not w.mask[w.length :].any()
        # padding repeats the last valid snippet
        assert (w.snippets[w.length :] == w.snippets[w.length - 1]).all()
        assert w.snippets[w.length - 1] == w.start + w.length - 1
        if w.length == 100:  # kept whole, every instance as is
            np.testing.assert_array_equal(w.segments, seg)
    assert lengths == set(range(90, 101))
    w = random_truncation(100, seg, 768, 0.75, None)
    assert w.length == 100 and w.start == 0


def test_random_truncation_gives_up_after_trials():
    # a zero-length instance can never be >= 75% inside: the last trial is used, with no instance
    w = random_truncation(2000, np.array([[100, 100]], np.float32), 768, rng=np.random.default_rng(1))
    assert w.segments.shape == (0, 2) and w.length == 768


def test_gt_completeness():
    comp, clipped = gt_completeness([[0, 10], [5, 15], [20, 30], [12, 18]], (10, 20))
    np.testing.assert_allclose(comp, [0.0, 0.5, 0.0, 1.0])
    np.testing.assert_allclose(clipped, [[10, 10], [10, 15], [20, 20], [12, 18]])
