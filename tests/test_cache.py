"""The snippet cache (adatad prepare cache): same frames as the video, stale/foreign refused, resumable, fallback."""

import logging
import os

import numpy as np
import pytest
import torch
from tinyrun import copy_dataset

from adatad.data.annotations import load_annotations
from adatad.data.cache import CacheError, CacheReader, CacheSpec, build_cache, cache_frame_indices, read_meta, scan_cache
from adatad.data.datasets import SlidingWindowDataset, TrainDataset, sample_seed
from adatad.data.transforms import EvalTransform, TrainTransform
from adatad.data.video import VideoError, VideoReader


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame PSNR (dB) of uint8 frames ``[T, ...]``."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-12))


@pytest.fixture
def data(tmp_path, tiny_dataset):
    """A private copy of the tiny dataset (the tests touch and rewrite its videos) and its videos."""
    d = copy_dataset(tiny_dataset, tmp_path / "data")
    classes = [c for c in open(d["class_file"]).read().split("\n") if c]
    d["classes"] = classes
    d["videos"] = load_annotations(d["anno_file"], classes, ["training", "validation"], None, d["video_dir"], "mp4")
    return d


def test_cache_frame_indices_hand_computed():
    assert cache_frame_indices(10, 4).tolist() == [0, 4, 8, 9]  # the last frame: the datasets clip to it
    assert cache_frame_indices(9, 4).tolist() == [0, 4, 8]
    assert cache_frame_indices(5, 1).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("fmt", ["raw", "jpeg"])
def test_cached_frames_equal_video_frames(tmp_path, data, fmt):
    v = data["videos"][0]
    st = build_cache([v], tmp_path / "c", CacheSpec(format=fmt), progress=False)
    assert st["built"] == 1 and st["bytes"] > 0
    with VideoReader(v.path) as r, CacheReader(tmp_path / "c", v.name) as c:
        assert (c.num_frames, c.fps, c.width, c.height, c.duration) == (r.num_frames, r.fps, r.width, r.height, r.duration)
        idx = np.concatenate([cache_frame_indices(r.num_frames, 4), [r.num_frames + 5, -3, 8, 0]])  # clipped, repeated
        want, got = r.get_frames(idx), c.get_frames(idx)
        with pytest.raises(VideoError, match="not in the cache"):
            c.get_frames([1])
    data = tmp_path / "c" / v.name / "frames.bin"
    data.write_bytes(data.read_bytes()[:-100])  # damaged after the build
    with pytest.raises(VideoError, match="truncated"), CacheReader(tmp_path / "c", v.name) as c:
        c.get_frames([0])
    assert got.shape == want.shape and got.dtype == np.uint8
    if fmt == "raw":
        assert np.array_equal(got, want)
    else:
        assert psnr(got, want).min() >= 40.0


def test_stale_cache_refused_naming_the_video(tmp_path, data):
    v = data["videos"][1]
    build_cache([v], tmp_path / "c", CacheSpec(format="raw"), progress=False)
    scan_cache(tmp_path / "c", [v], CacheSpec())  # current: accepted
    st = os.stat(v.path)
    os.utime(v.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched
    with pytest.raises(CacheError, match=f"video {v.name} .*stale.*mtime"):
        scan_cache(tmp_path / "c", [v], CacheSpec())
    with open(v.path, "ab") as f:  # rewritten (grown), mtime put back
        f.write(b"\0" * 10)
    os.utime(v.path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(CacheError, match=f"video {v.name} .*stale.*size"):
        scan_cache(tmp_path / "c", [v], CacheSpec())


def test_foreign_cache_refused(tmp_path, data):
    v = data["videos"][0]
    build_cache([v], tmp_path / "c", CacheSpec(format="raw"), progress=False)
    with pytest.raises(CacheError, match=f"video {v.name} .*foreign.*feature_stride=4 \\(config: 2\\)"):
        scan_cache(tmp_path / "c", [v], CacheSpec(feature_stride=2))
    with pytest.raises(CacheError, match="foreign.*scale_factor"):
        scan_cache(tmp_path / "c", [v], CacheSpec(scale_factor=2))
    with pytest.raises(CacheError, match="foreign.*backend='pyav' \\(config: 'decord'\\)"):
        scan_cache(tmp_path / "c", [v], CacheSpec(backend="decord"))


def test_interrupted_build_resumes(tmp_path, data):
    vids = data["videos"]
    done: list[str] = []

    def fail_after_two(res):
        done.append(res["name"])
        if len(done) == 2:
            raise KeyboardInterrupt  # the run is killed after 2 videos

    with pytest.raises(KeyboardInterrupt):
        build_cache(vids, tmp_path / "c", CacheSpec(), progress=False, on_done=fail_after_two)
    stamps = {n: os.stat(tmp_path / "c" / n / "meta.json").st_mtime_ns for n in done}
    assert sum(read_meta(tmp_path / "c", v.name) is not None for v in vids) == 2
    (tmp_path / "c" / ".tmp-half-built-0").mkdir()  # a partial video of a killed worker
    (tmp_path / "c" / vids[-1].name).mkdir()  # a folder without its completion marker
    again: list[str] = []
    st = build_cache(vids, tmp_path / "c", CacheSpec(), progress=False, on_done=lambda r: again.append(r["name"]))
    assert (st["built"], st["skipped"]) == (len(vids) - 2, 2)
    assert sorted(again) == sorted(v.name for v in vids if v.name not in done)  # the 2 done were not rebuilt
    assert {n: os.stat(tmp_path / "c" / n / "meta.json").st_mtime_ns for n in done} == stamps
    assert not list((tmp_path / "c").glob(".tmp-*"))
    scan_cache(tmp_path / "c", vids, CacheSpec())  # all complete and current


def _common(data) -> dict:
    return dict(ann_file=data["anno_file"], class_map=data["classes"], data_path=data["video_dir"], window_size=64)


def _datasets(data, cache_dir, transform_train=None, transform_test=None):
    return (
        TrainDataset(**_common(data), transform=transform_train, cache_dir=cache_dir),
        SlidingWindowDataset(**_common(data), transform=transform_test, cache_dir=cache_dir),
    )


def test_missing_video_falls_back_with_one_warning(tmp_path, data, caplog):
    test_videos = [v for v in data["videos"] if v.subset == "validation"]
    build_cache(test_videos[:1], tmp_path / "c", CacheSpec(format="raw"), progress=False)
    with caplog.at_level(logging.WARNING):
        ds = SlidingWindowDataset(**_common(data), cache_dir=tmp_path / "c")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "not in the cache" in r.getMessage()]
    assert len(warnings) == 1 and f"1 of {len(test_videos)} videos" in warnings[0].getMessage()
    assert test_videos[1].name in warnings[0].getMessage()
    kinds = {ds.videos[w[0]].name: type(ds._open(ds.videos[w[0]])).__name__ for w in ds.windows}
    assert kinds == {test_videos[0].name: "CacheReader", test_videos[1].name: "VideoReader"}
    plain = SlidingWindowDataset(**_common(data))
    for i in range(len(ds)):
        assert torch.equal(ds[i]["inputs"], plain[i]["inputs"])


def test_dataset_items_from_cache_equal_items_from_video(tmp_path, data):
    build_cache(data["videos"], tmp_path / "raw", CacheSpec(format="raw"), progress=False)
    build_cache(data["videos"], tmp_path / "jpg", CacheSpec(format="jpeg"), progress=False)
    tt, te = TrainTransform(short_side=36, size=32, randaug=True, seed=0), EvalTransform(short_side=32, size=32)
    video = _datasets(data, None, tt, te)
    raw = _datasets(data, tmp_path / "raw", tt, te)
    plain, jpg = _datasets(data, None), _datasets(data, tmp_path / "jpg")
    for k in range(2):  # train (random windows, seeded) and test (sliding windows)
        for i in range(len(video[k])):
            item = (i, 123 + i)
            a, b = video[k][item], raw[k][item]
            assert torch.equal(a["inputs"], b["inputs"]) and torch.equal(a["masks"], b["masks"])
            assert torch.equal(a["gt_segments"], b["gt_segments"]) and a["metas"] == b["metas"]
            p, j = plain[k][item]["inputs"], jpg[k][item]["inputs"]  # raw frames [3, T, H, W]
            assert psnr(j.transpose(0, 1).numpy(), p.transpose(0, 1).numpy()).min() >= 40.0


def test_transform_resolution_gives_the_same_items(tmp_path, data, caplog):
    """--resolution transform: training videos stored at the train transform's first resize (short side 36),
    test videos at the test transform's (32): every item equals the one from the video, bit for bit (the
    transforms' resize is then the identity); a split with another first resize reads such a video from its file."""
    from adatad.data.cache import short_side_resolution
    from adatad.engine.builders import RawClip

    train_v = [v for v in data["videos"] if v.subset == "training"]
    test_v = [v for v in data["videos"] if v.subset == "validation"]
    c = tmp_path / "c"
    build_cache(train_v, c, CacheSpec(resolution=short_side_resolution(36)), progress=False)
    build_cache(test_v, c, CacheSpec(resolution=short_side_resolution(32)), progress=False)
    with VideoReader(train_v[0].path) as r, CacheReader(c, train_v[0].name) as cr:
        assert (cr.width, cr.height) == (r.width, r.height)  # the source's header facts (the items' metas)
        assert min(cr.frame_size) == 36 and cr.get_frames([0]).shape[1:3] == cr.frame_size
    tt, te = TrainTransform(short_side=36, size=32, randaug=True, seed=0), EvalTransform(short_side=32, size=32)
    video, cached = _datasets(data, None, tt, te), _datasets(data, c, tt, te)
    assert all(isinstance(ds._open(v), CacheReader) for ds in cached for v in ds.videos)
    for k in range(2):
        for i in range(len(video[k])):
            a, b = video[k][(i, 7 + i)], cached[k][(i, 7 + i)]
            assert torch.equal(a["inputs"], b["inputs"]) and a["metas"] == b["metas"], (k, i)
    vi = cached[1].windows[0][0]
    pairs = list(zip(cached[1].iter_video(vi), video[1].iter_video(vi)))  # decode-once from the cache too
    assert pairs and all(torch.equal(x["inputs"], y["inputs"]) for x, y in pairs)
    # a window that cannot be read is black at the stored size (a batch of raw clips must stack)
    with CacheReader(c, train_v[0].name) as cr:
        black, _ = SlidingWindowDataset._black_window(train_v[0], cr, 5, VideoError("x"))
        assert black.shape == (5, *cr.frame_size, 3) and cr.frame_size != (cr.height, cr.width)
    # the device-augmentation path (RawClip) with the same first resize is served too
    assert isinstance(TrainDataset(**_common(data), transform=RawClip(short_side=36), cache_dir=c)._open(train_v[0]), CacheReader)
    with caplog.at_level(logging.WARNING):  # another first resize (or none): read from the video files, one warning
        other = TrainDataset(**_common(data), transform=TrainTransform(short_side=40, size=32), cache_dir=c)
    assert all(isinstance(other._open(v), VideoReader) for v in other.videos)
    msg = [r.getMessage() for r in caplog.records if "another size" in r.getMessage()]
    assert len(msg) == 1 and "short36" in msg[0] and "(short40)" in msg[0]
    # rebuilding at another resolution replaces the video (a resumed run keeps the ones already right)
    st = build_cache(train_v, c, CacheSpec(resolution="source"), progress=False)
    assert st["built"] == st["rebuilt"] == len(train_v)
    assert build_cache(train_v, c, CacheSpec(resolution="source"), progress=False)["skipped"] == len(train_v)
    with pytest.raises(CacheError, match="unknown cache resolution"):
        build_cache(train_v[:1], tmp_path / "bad", CacheSpec(resolution="half"), progress=False)


@pytest.mark.parametrize("frame_wise", [True, False])
def test_decode_once_from_the_cache(tmp_path, data, monkeypatch, frame_wise):
    """iter_video on a cached video: every window of the video, in order, each item equal to the video path's
    item of that window (the oracle: window-by-window decoding of the video). With a frame-by-frame transform
    (EvalTransform's per_frame) each cached frame is read and transformed once; without one, window by window."""
    build_cache(data["videos"], tmp_path / "raw", CacheSpec(format="raw"), progress=False)
    te = EvalTransform(short_side=32, size=32)
    if not frame_wise:
        monkeypatch.setattr(EvalTransform, "per_frame", None)  # a transform without the per-frame path
    cached, video = _datasets(data, tmp_path / "raw", transform_test=te)[1], _datasets(data, None, transform_test=te)[1]
    calls: list[list[int]] = []
    get = CacheReader.get_frames
    monkeypatch.setattr(CacheReader, "get_frames", lambda self, idx: calls.append(list(idx)) or get(self, idx))
    for vi in sorted({w[0] for w in cached.windows}):
        want = [i for i, w in enumerate(cached.windows) if w[0] == vi]
        calls.clear()
        items = list(cached.iter_video(vi, seed=7))
        assert [it["metas"]["index"] for it in items] == want
        read = [i for c in calls for i in c]
        if frame_wise:  # each frame read once, in order
            assert read == sorted(set(read)) and (len(want) == 1 or len(read) < 64 * len(want))
        else:
            assert [len(c) for c in calls] == [64] * len(want)  # one read per window
        for it in items:
            ref = video[(it["metas"]["index"], sample_seed(7, 0, it["metas"]["index"]))]
            assert torch.equal(it["inputs"], ref["inputs"]) and torch.equal(it["masks"], ref["masks"])
            assert it["metas"] == ref["metas"]


def test_prepare_cache_command(tmp_path, cfg_file, capsys):
    from adatad.config import load_config
    from adatad.data.prepare import main
    from adatad.engine.builders import build_dataset

    argv = ["cache", "--config", str(cfg_file), "--cache-dir", str(tmp_path / "c"), "--workers", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "built 6 videos" in out and "GB per hour of video" in out
    assert main(argv) == 0  # a second run has nothing to do
    out = capsys.readouterr().out
    assert "built 0 videos" in out and "6 already cached" in out
    cfg = load_config(cfg_file, {"dataset.cache_dir": str(tmp_path / "c")})
    ds = build_dataset(cfg, "test")
    assert isinstance(ds._open(ds.videos[0]), CacheReader)


def test_prepare_cache_command_transform_resolution(tmp_path, cfg_file, capsys):
    """`prepare cache --resolution transform`: train-subset videos at the train transform's first resize, the
    val/test ones at the test transform's; both splits of the config read every video from the cache."""
    from adatad.config import load_config
    from adatad.data.prepare import main
    from adatad.engine.builders import build_dataset

    c = tmp_path / "c"
    cfg = load_config(cfg_file, {"dataset.cache_dir": str(c)})
    t = cfg["dataset"]["transform"]
    assert t["train"]["resize_short"] != t["test"]["resize_short"]  # otherwise this test shows nothing
    argv = ["cache", "--config", str(cfg_file), "--cache-dir", str(c), "--workers", "1", "--resolution", "transform"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"at short{t['train']['resize_short']}" in out and f"at short{t['test']['resize_short']}" in out
    for split in ("train", "test"):
        ds = build_dataset(cfg, split)
        want = f"short{t['train' if split == 'train' else 'test']['resize_short']}"
        assert ds.videos and all(read_meta(c, v.name)["config"]["resolution"] == want for v in ds.videos)
        assert all(isinstance(ds._open(v), CacheReader) for v in ds.videos)
    assert main(argv) == 0 and "built 0 videos" in capsys.readouterr().out  # resumable, nothing to redo
