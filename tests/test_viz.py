"""Timeline and training-curve plots: files, sizes, and where the segments land in the image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from adatad import viz


def load(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB")).astype(np.int32)


def longest_run(flags: np.ndarray) -> tuple[int, int]:
    """``(start, end)`` (end exclusive) of the longest run of True in a 1-D bool array; (0, 0) if none."""
    best, start = (0, 0), None
    for i, f in enumerate(list(flags) + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def is_black(img):
    return (img < 40).all(axis=-1)


def is_yellow(img):  # viridis at score 1.0 is (253, 231, 37); also its antialiased blends with white
    return (img[..., 0] - img[..., 2] > 60) & (img[..., 1] - img[..., 2] > 50)


def is_coloured(img):  # anything saturated: every viridis colour, not the white/grey/black of the axes
    return img.max(axis=-1) - img.min(axis=-1) > 40


def axes_span(img) -> tuple[int, int]:
    """Pixel columns of a ground-truth bar covering the whole video: the image row with the longest black run."""
    runs = [longest_run(is_black(img[r])) for r in range(img.shape[0])]
    r = int(np.argmax([e - s for s, e in runs]))
    return runs[r]


def test_timeline_segments_land_at_their_times(tmp_path):
    dur = 100.0
    gt = [{"segment": [0.0, dur], "label": "A"}]
    dets = [
        {"segment": [25.0, 50.0], "label": "A", "score": 1.0},
        {"segment": [70.0, 90.0], "label": "A", "score": 0.2},  # below the threshold: not drawn
    ]
    out = viz.plot_timeline(tmp_path / "t.png", dur, ["A"], dets, gt, title="x", score_threshold=0.5, width_px=1200)
    img = load(out)
    assert img.shape[1] == 1200
    g0, g1 = axes_span(img)
    assert g1 - g0 > 0.6 * 1200  # the full-length GT bar spans the axes
    scale = (g1 - g0) / dur
    inside = img[:, g0:g1]
    yrows = np.nonzero(is_yellow(inside).any(axis=1))[0]
    assert len(yrows) > 5
    row = inside[yrows[len(yrows) // 2]]
    y0, y1 = longest_run(is_yellow(row))
    assert abs(y0 - 25 * scale) <= 2 and abs(y1 - 50 * scale) <= 2
    # nothing coloured where the below-threshold detection would be
    assert not is_coloured(inside[:, int(70 * scale) + 2 : int(90 * scale) - 2]).any()
    # the ground truth is drawn above the detections
    b0, b1 = longest_run(is_black(inside[:, int(30 * scale)]))
    assert b1 - b0 > 5 and b1 <= yrows.min()


def test_timeline_tiny_segment_still_visible_on_long_video(tmp_path):
    dur = 30 * 60.0
    gt = [{"segment": [0.0, dur], "label": "A"}]
    dets = [{"segment": [900.0, 900.02], "label": "A", "score": 1.0}]
    img = load(viz.plot_timeline(tmp_path / "t.png", dur, ["A"], dets, gt, width_px=1000))
    g0, g1 = axes_span(img)
    cols = np.nonzero(is_yellow(img[:, g0:g1]).any(axis=0))[0]
    assert len(cols) >= 1
    assert abs(cols.mean() - 0.5 * (g1 - g0)) <= 3


def test_timeline_max_per_class_keeps_best(tmp_path):
    dur = 100.0
    gt = [{"segment": [0.0, dur], "label": "A"}]
    dets = [
        {"segment": [10.0, 20.0], "label": "A", "score": 0.3},
        {"segment": [60.0, 80.0], "label": "A", "score": 1.0},
    ]
    img = load(viz.plot_timeline(tmp_path / "t.png", dur, ["A"], dets, gt, max_per_class=1, width_px=1000))
    g0, g1 = axes_span(img)
    scale = (g1 - g0) / dur
    inside = img[:, g0:g1]
    assert not is_coloured(inside[:, int(10 * scale) + 2 : int(20 * scale) - 2]).any()
    assert is_yellow(inside[:, int(60 * scale) + 2 : int(80 * scale) - 2]).any()


def test_timeline_rows_follow_present_classes(tmp_path):
    names = [f"C{i}" for i in range(12)]  # many classes: only those present get a row

    def height(labels):
        dets = [{"segment": [1.0, 2.0], "label": c, "score": 0.5} for c in labels]
        return load(viz.plot_timeline(tmp_path / "h.png", 10.0, names, dets)).shape[0]

    h2, h6 = height(names[:2]), height(names[:6])
    assert h2 < h6 < height(names)
    assert height([names[0], names[0], names[1]]) == h2
    # empty inputs still give a valid image
    assert load(viz.plot_timeline(tmp_path / "e.png", 10.0, names, [])).shape[1] == 1600


def test_timeline_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="duration"):
        viz.plot_timeline(tmp_path / "x.png", 0, ["A"], [])
    with pytest.raises(ValueError, match="segment"):
        viz.plot_timeline(tmp_path / "x.png", 10, ["A"], [{"label": "A", "score": 1.0}])


def test_format_mmss():
    assert [viz.format_mmss(s) for s in (0, 59, 60, 75, 1799, 3725)] == ["0:00", "0:59", "1:00", "1:15", "29:59", "1:02:05"]
    assert viz.format_mmss(1.5) == "0:01.5"


def test_training_curves(tmp_path):
    tab_red = np.array([214, 39, 40])
    hist = [{"epoch": e, "loss": 2.0 / (e + 1)} for e in range(10)]
    for h in hist[::3]:
        h["mAP"] = 10.0 * h["epoch"]

    def has_red(img):
        return (np.abs(img - tab_red).sum(-1) < 40).sum() > 20

    with_map = load(viz.plot_training_curves(tmp_path / "a" / "c.png", hist))
    assert with_map.shape == (450, 800, 3)
    assert has_red(with_map)
    no_map = load(viz.plot_training_curves(tmp_path / "b.png", [{k: h[k] for k in ("epoch", "loss")} for h in hist]))
    assert no_map.shape == (450, 800, 3)
    assert not has_red(no_map)
    assert is_coloured(no_map).sum() > 100  # the loss curve is drawn
