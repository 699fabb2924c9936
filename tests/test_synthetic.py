"""Synthetic dataset generator: format, determinism, decodability, planted motion, caching."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from adatad.data import synthetic as syn

SMALL = dict(num_train=3, num_test=2, duration_range=(6.0, 9.0), size=(32, 48), progress=False)


def decode_all(path: str | Path) -> tuple[np.ndarray, av.video.stream.VideoStream]:
    """All frames of a video as ``[T, H, W, 3]`` uint8 RGB, plus stream facts (read with PyAV only)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        info = dict(rate=s.average_rate, codec=s.codec_context.name, w=s.codec_context.width, h=s.codec_context.height)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    return frames, info


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    paths = syn.generate_dataset(root / "a", seed=3, **SMALL)
    return paths


def test_format_and_annotations(dataset):
    anno = json.loads(Path(dataset["anno_file"]).read_text())
    classes = Path(dataset["class_file"]).read_text().splitlines()
    assert classes == syn.CLASSES
    db = anno["database"]
    assert sorted(db) == [f"synth_test_{i:04d}" for i in range(2)] + [f"synth_train_{i:04d}" for i in range(3)]
    n_actions = 0
    for name, v in db.items():
        assert set(v) >= {"subset", "duration", "frame", "fps", "annotations"}
        assert v["subset"] == ("training" if "train" in name else "validation")  # OpenTAD's THUMOS naming
        assert 6.0 - 0.1 <= v["duration"] <= 9.0 + 0.1
        assert v["frame"] == round(v["fps"] * v["duration"])
        assert (Path(dataset["video_dir"]) / f"{name}.mp4").is_file()
        segs = v["annotations"]
        assert len(segs) >= 1, f"{name} has no action"
        for a in segs:
            s, e = a["segment"]
            assert a["label"] in classes
            assert 0 <= s < e <= v["duration"]
            assert 0.3 <= e - s <= 8.5  # "about 1-8 s"
        # overlapping actions are always of different classes
        for i, a in enumerate(segs):
            for b in segs[i + 1 :]:
                if a["segment"][0] < b["segment"][1] and b["segment"][0] < a["segment"][1]:
                    assert a["label"] != b["label"]
        n_actions += len(segs)
    assert n_actions >= 5


def test_videos_decode_to_stated_facts(dataset):
    db = json.loads(Path(dataset["anno_file"]).read_text())["database"]
    for name, v in db.items():
        frames, info = decode_all(Path(dataset["video_dir"]) / f"{name}.mp4")
        assert info["codec"] == "h264"
        assert frames.shape == (v["frame"], 32, 48, 3)
        assert float(info["rate"]) == pytest.approx(v["fps"])
        # not a blank video: the textured background varies in space and time
        assert frames[0].std() > 5 and np.abs(frames[0].astype(int) - frames[-1]).mean() > 3


def test_deterministic_and_seed_dependent(dataset, tmp_path):
    again = syn.generate_dataset(tmp_path / "b", seed=3, **SMALL)
    other = syn.generate_dataset(tmp_path / "c", seed=4, **SMALL)
    a1 = Path(dataset["anno_file"]).read_text()
    assert Path(again["anno_file"]).read_text() == a1
    assert Path(other["anno_file"]).read_text() != a1
    # every planted action and rendering parameter is the same (the manifest records the specs; rendering a spec
    # is pure numpy), so the encoder gets the same frames ...
    m1, m2 = (json.loads(Path(p["manifest"]).read_text()) for p in (dataset, again))
    assert m1["specs"] == m2["specs"]
    spec = syn.random_video_spec("x", 6.0, 30.0, (32, 48), seed=[3, 0, 1, 1])
    assert all(np.array_equal(a, b) for a, b in zip(syn.render_video(spec), syn.render_video(spec)))
    # ... but x264's output is not always bit-identical from one encode to the next in the same process (observed on
    # a loaded machine after other tests decoded video: some encodes differ from frame ~7 on), so the decoded videos
    # are compared by PSNR: the same content, possibly other encoder decisions
    f1, _ = decode_all(Path(dataset["video_dir"]) / "synth_train_0001.mp4")
    f2, _ = decode_all(Path(again["video_dir"]) / "synth_train_0001.mp4")
    assert f1.shape == f2.shape
    mse = float(np.mean((f1.astype(np.float64) - f2) ** 2))
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 30, f"PSNR {10 * np.log10(255**2 / mse):.1f} dB"


def test_cache_returns_without_rewriting(tmp_path):
    params = dict(SMALL, num_train=1, num_test=1, duration_range=(3.0, 3.0))
    first = syn.generate_dataset(tmp_path, **params)
    assert first["cached"] is False
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 5  # 2 videos, anno.json, category_idx.txt, manifest
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    second = syn.generate_dataset(tmp_path, **params)
    assert second["cached"] is True
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    # a different parameter regenerates; the test video does not depend on num_train
    test_before = json.loads(Path(first["anno_file"]).read_text())["database"]["synth_test_0000"]
    third = syn.generate_dataset(tmp_path, **dict(params, num_train=2))
    assert third["cached"] is False
    db = json.loads(Path(third["anno_file"]).read_text())["database"]
    assert sorted(db) == ["synth_test_0000", "synth_train_0000", "synth_train_0001"]
    assert db["synth_test_0000"] == test_before
    # fewer videos: files the generator wrote before and no longer lists are removed
    syn.generate_dataset(tmp_path, **params)
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["synth_test_0000.mp4", "synth_train_0000.mp4"]


@pytest.mark.parametrize("fps, expected", [(29.97, Fraction(30000, 1001)), (25, Fraction(25))])
def test_single_video_frame_rate(tmp_path, fps, expected):
    spec = syn.random_video_spec("v", 2.0, fps=fps, size=(32, 32), seed=1, actions=[("Grow", 0.5, 1.5)])
    assert spec.num_frames == round(2.0 * float(expected))
    path = tmp_path / "v.mp4"
    n = syn.write_video(path, syn.render_video(spec), spec.fps)
    assert n == spec.num_frames
    frames, info = decode_all(path)
    assert info["rate"] == expected
    assert frames.shape == (spec.num_frames, 32, 32, 3)
    assert not list(tmp_path.glob("*.tmp*"))


def red_mask(frames: np.ndarray) -> np.ndarray:
    """Foreground estimate ``[T, H, W]``: clearly red pixels (the grey background never is)."""
    f = frames.astype(np.int32)
    return (f[..., 0] > 140) & (f[..., 0] - f[..., 1] > 70) & (f[..., 0] - f[..., 2] > 70)


def test_planted_motion_is_visible_and_central(tmp_path):
    """Each class's motion is measured on decoded frames with a colour threshold (independent of the renderer)."""
    fps, h, w = 25, 48, 80
    planted = [("MoveRight", 0.4, 2.4), ("MoveLeft", 3.0, 5.0), ("Grow", 5.6, 7.6), ("Shrink", 8.2, 10.2)]
    planted += [("Blink", 10.8, 13.0)]
    spec = syn.random_video_spec("m", 13.6, fps=fps, size=(h, w), seed=7, actions=planted)
    for a in spec.actions:
        a.color = (235, 20, 20)
    path = tmp_path / "m.mp4"
    syn.write_video(path, syn.render_video(spec), fps)
    frames, _ = decode_all(path)
    mask = red_mask(frames)
    area = mask.sum(axis=(1, 2))
    t = np.arange(len(frames)) / fps

    def frames_in(s, e, margin=0.08):
        return np.nonzero((t >= s + margin) & (t < e - margin))[0]

    inside = np.zeros(len(frames), bool)
    for _, s, e in planted:
        inside[frames_in(s, e, margin=-0.05)] = True
    assert area[~inside].max() == 0, "object visible outside every planted action"
    # everything stays in the central square (the test transform's center crop keeps it)
    cols = np.nonzero(mask.any(axis=(0, 1)))[0]
    assert cols.min() >= (w - h) // 2 and cols.max() < (w + h) // 2

    xs = np.arange(w)
    cx = np.array([(mask[i].sum(0) * xs).sum() / max(mask[i].sum(), 1) for i in range(len(frames))])
    for label, s, e in planted:
        idx = frames_in(s, e)
        if label == "Blink":
            on = area[idx] > 0
            assert 0.3 < on.mean() < 0.7
            assert np.count_nonzero(np.diff(on.astype(int))) >= 4  # switches on and off repeatedly
            continue
        assert (area[idx] > 0).all(), f"{label} not visible on every frame"
        slope_x = np.polyfit(t[idx], cx[idx], 1)[0]  # pixels per second
        slope_a = np.polyfit(t[idx], area[idx].astype(float), 1)[0]  # pixels^2 per second
        if label == "MoveRight":
            assert cx[idx[-1]] - cx[idx[0]] > 0.3 * h and slope_x > 0
        elif label == "MoveLeft":
            assert cx[idx[0]] - cx[idx[-1]] > 0.3 * h and slope_x < 0
        elif label == "Grow":
            assert area[idx[-1]] > 4 * area[idx[0]] and slope_a > 0 and abs(slope_x) < 1.5
        elif label == "Shrink":
            assert area[idx[0]] > 4 * area[idx[-1]] and slope_a < 0 and abs(slope_x) < 1.5


def test_single_frames_do_not_reveal_the_class():
    """Appearance (colour, shape, size) is drawn from the same distributions for every class."""
    spec = syn.random_video_spec("x", 400.0, seed=0)
    by = {}
    for a in spec.actions:
        by.setdefault(a.label, []).append(a)
    assert set(by) == set(syn.CLASSES)
    for acts in by.values():
        assert {a.shape for a in acts} == {"disk", "square"} or len(acts) < 4
        assert len({a.color for a in acts}) == len(acts)  # colour random per instance


def test_user_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="Jump"):
        syn.generate_dataset(tmp_path, classes=["Jump"], progress=False)
    with pytest.raises(ValueError, match="even"):
        syn.generate_dataset(tmp_path, size=(33, 32), progress=False)
    with pytest.raises(ValueError, match="not inside"):
        syn.random_video_spec("v", 2.0, actions=[("Grow", 1.0, 5.0)])


def test_fps_choices(tmp_path):
    paths = syn.generate_dataset(tmp_path, **dict(SMALL, num_train=4, num_test=0, duration_range=(2.0, 2.0)), fps_choices=[25, 29.97])
    db = json.loads(Path(paths["anno_file"]).read_text())["database"]
    rates = set()
    for name, v in db.items():
        _, info = decode_all(Path(paths["video_dir"]) / f"{name}.mp4")
        assert info["rate"] in (Fraction(25), Fraction(30000, 1001))
        assert float(info["rate"]) == pytest.approx(v["fps"])
        rates.add(info["rate"])
    assert len(rates) == 2


def test_steady_distractors_are_unannotated_and_outside_actions(tmp_path):
    spec = syn.random_video_spec("d", 20.0, fps=25, size=(32, 32), seed=2, distractor_prob=1.0)
    assert spec.distractors and all(d.label not in syn.CLASSES for d in spec.distractors)
    for d in spec.distractors:
        assert all(d.end <= a.start or a.end <= d.start for a in spec.actions)
    for o in spec.actions + spec.distractors:
        o.color = (235, 20, 20)
    path = tmp_path / "d.mp4"
    syn.write_video(path, syn.render_video(spec), spec.fps)
    frames, _ = decode_all(path)
    mask = red_mask(frames)
    t = np.arange(len(frames)) / 25
    d = spec.distractors[0]
    idx = np.nonzero((t >= d.start + 0.1) & (t < d.end - 0.1))[0]
    assert (mask[idx].sum(axis=(1, 2)) > 0).all()  # drawn, and steady: the centroid barely moves
    xs = np.array([np.nonzero(mask[i])[1].mean() for i in idx])
    assert xs.max() - xs.min() < 5  # camera jitter only (±1.5 px); a Move travels > 0.35 * 32 px


def test_anet_layout(tmp_path):
    """layout="anet": OpenTAD's ActivityNet layout (ids without v_, files v_<id>.mp4), one class per video with 1-2
    instances covering 20-60 % of it, and a CUHK-layout classifier file that the fusion reads, ranking the true
    class first for most test videos."""
    from adatad.data.synthetic import anet_like_actions, generate_dataset
    from adatad.data.video import VideoReader
    from adatad.models.classifier import ExternalClassifier

    for seed in range(200):  # the planner's promises, on many draws
        acts = anet_like_actions(17.0, seed=seed)
        assert 1 <= len(acts) <= 2 and len({a[0] for a in acts}) == 1
        assert all(0 <= s < e <= 17.0 for _, s, e in acts) and all(a[2] <= b[1] for a, b in zip(acts, acts[1:]))
        assert 0.2 - 1e-3 <= sum(e - s for _, s, e in acts) / 17.0 <= 0.6 + 1e-3
    data = generate_dataset(tmp_path, 2, 12, (6.0, 9.0), 15.0, (32, 32), seed=3, layout="anet", progress=False)
    assert data["anno_file"].endswith("annotations/activity_net.v1-3.min.json")
    db = json.loads(Path(data["anno_file"]).read_text())["database"]
    for vid, info in db.items():
        with VideoReader(Path(data["video_dir"]) / f"v_{vid}.mp4") as r:
            assert r.num_frames == info["frame"] and abs(info["duration"] - r.num_frames / 15.0) < 1e-9
    cls = ExternalClassifier(data["classifier_file"], topk=1)
    tests = sorted(v for v, info in db.items() if info["subset"] == "validation")
    assert sorted(cls.videos) == tests and cls.classes == Path(data["class_file"]).read_text().split()
    right = sum(cls.classes[int(cls.ranked(v)[0][0])] == db[v]["annotations"][0]["label"] for v in tests)
    assert right >= 9  # accuracy 0.9 by default
    again = generate_dataset(tmp_path, 2, 12, (6.0, 9.0), 15.0, (32, 32), seed=3, layout="anet", progress=False)
    assert again["cached"]
