"""Decode-once windows (adatad.data.stream) against the window-by-window path: same frames, same items, every
window exactly once over ranks and workers, bounded memory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from videos import decode_index, write_test_video  # noqa: E402

from adatad.data.datasets import SlidingWindowDataset, collate, sample_seed  # noqa: E402
from adatad.data.stream import VideoStreamDataset, balance, stream_windows  # noqa: E402
from adatad.data.transforms import EvalTransform  # noqa: E402
from adatad.data.video import VideoReader  # noqa: E402
from adatad.data.windows import padded_window, sliding_windows  # noqa: E402

torch.set_num_threads(1)

# (frames, stride, window, overlap): several lengths, strides and overlaps; 50 frames is shorter than one window
CASES = [(150, 4, 16, 0.5), (50, 4, 16, 0.5), (97, 3, 8, 0.75), (301, 1, 40, 0.25), (120, 2, 24, 0.5)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("stream")
    return {n: write_test_video(d / f"v{n}.mp4", n, width=64, height=48, gop=12) for n in sorted({c[0] for c in CASES})}


def _per_window(path, grid, windows, window_size):
    """The oracle: each window decoded on its own with a fresh reader, as SlidingWindowDataset.__getitem__ does."""
    out = []
    for start, end in windows:
        with VideoReader(path) as r:
            idx, mask = padded_window(grid, start, end, window_size, r.num_frames)
            out.append((r.get_frames(idx), mask, idx))
    return out


@pytest.mark.parametrize("frames,stride,window,overlap", CASES)
def test_stream_windows_equal_per_window_decoding(videos, frames, stride, window, overlap):
    grid = np.arange(0, frames, stride)
    wins = sliding_windows(len(grid), window, overlap)
    expected = _per_window(videos[frames], grid, wins, window)
    stats: dict = {}
    with VideoReader(videos[frames]) as r:
        got = list(stream_windows(r, grid, wins, window, stats=stats))
    assert [k for k, _, _ in got] == list(range(len(wins)))  # sliding windows come out in order
    for (k, f, m), (ef, em, idx) in zip(got, expected):
        assert f.dtype == np.uint8 and f.shape == ef.shape == (window, 48, 64, 3)
        assert torch.equal(torch.from_numpy(f), torch.from_numpy(ef)), k
        assert np.array_equal(m, em)
        assert [decode_index(x) for x in f] == np.clip(idx, 0, frames - 1).tolist()  # the right frames, padding too
    needed = np.unique(np.concatenate([e[2] for e in expected]))
    assert stats["decoded_frames"] == len(needed)  # each frame once, however many windows hold it
    assert stats["fallback_windows"] == 0
    assert 0 < stats["peak_frames"] <= window  # at most the open windows' frames, never the whole video


def test_stream_memory_is_bounded_on_a_long_video(videos):
    grid = np.arange(301)  # every frame: 301 frames, windows of 20 -> the buffer never holds more than 20
    wins = sliding_windows(len(grid), 20, 0.5)
    stats: dict = {}
    with VideoReader(videos[301]) as r:
        n = sum(1 for _ in stream_windows(r, grid, wins, 20, stats=stats))
    assert n == len(wins) == 30 and stats["decoded_frames"] == 301 and stats["peak_frames"] <= 20


def test_stream_windows_time_based_grid_with_repeats(videos):
    """adatad infer's time-based plan can repeat a frame (a slower video than the reference rate)."""
    grid = np.minimum(np.round(np.arange(0, 60) * 4 / 30 * 12).astype(int), 119)  # 12 fps read as 30 fps snippets
    wins = sliding_windows(len(grid), 16, 0.5)
    expected = _per_window(videos[120], grid, wins, 16)
    with VideoReader(videos[120]) as r:
        got = list(stream_windows(r, grid, wins, 16))
    assert len(got) == len(expected)
    for (_, f, m), (ef, em, _) in zip(got, expected):
        assert np.array_equal(f, ef) and np.array_equal(m, em)


class _GetFramesOnly:
    """A reader with only the VideoReader's get_frames interface (as a snippet cache would be)."""

    def __init__(self, reader):
        self.reader, self.num_frames, self.calls = reader, reader.num_frames, 0

    def get_frames(self, idx):
        self.calls += 1
        return self.reader.get_frames(idx)


def test_stream_windows_with_a_get_frames_reader(videos):
    grid = np.arange(0, 150, 4)
    wins = sliding_windows(len(grid), 16, 0.5)
    expected = _per_window(videos[150], grid, wins, 16)
    with VideoReader(videos[150]) as r:
        plain = _GetFramesOnly(r)
        got = list(stream_windows(plain, grid, wins, 16))
    assert plain.calls == 1  # 38 distinct frames, read in one run
    assert all(np.array_equal(f, e[0]) for (_, f, _), e in zip(got, expected))


def test_balance_is_greedy_and_deterministic():
    assert balance([5, 1, 4, 2, 3], 2) == [[0, 3, 1], [2, 4]]  # 5+2+1 = 8 vs 4+3 = 7
    assert balance([1, 1], 3) == [[0], [1], []]
    assert sorted(i for g in balance(list(range(17)), 4) for i in g) == list(range(17))


# ------------------------------------------------------------------------------------- the dataset path
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("streamds")
    sizes = {"a": (150, 30), "b": (50, 25), "c": (230, 30), "d": (97, 30), "e": (180, 30)}
    db = {}
    for name, (n, fps) in sizes.items():
        write_test_video(d / f"{name}.mp4", n, fps=fps, width=64, height=48, gop=12)
        db[name] = {"subset": "validation", "duration": n / fps, "frame": n, "annotations": []}
    (d / "ann.json").write_text(json.dumps({"database": db}))
    (d / "cls.txt").write_text("X\n")
    return d


def _dataset(data, **kw):
    return SlidingWindowDataset(data / "ann.json", data / "cls.txt", data, subset_name="validation", window_size=16, **kw)


def _same_item(a: dict, b: dict) -> None:
    assert torch.equal(a["inputs"], b["inputs"]) and torch.equal(a["masks"], b["masks"])
    assert torch.equal(a["gt_segments"], b["gt_segments"]) and torch.equal(a["gt_labels"], b["gt_labels"])
    assert a["metas"] == b["metas"]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("scale_factor", [1, 2])
def test_loader_items_identical_and_each_window_once(data, workers, scale_factor):
    ds = _dataset(data, scale_factor=scale_factor, transform=EvalTransform(short_side=40, size=32))
    oracle = {i: ds[(i, sample_seed(3, 0, i))] for i in range(len(ds))}
    seen: list[int] = []
    for rank in range(2):  # two simulated ranks
        stream = VideoStreamDataset(ds, 3, collate, rank=rank, world_size=2, num_workers=workers, seed=3)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers, collate_fn=lambda b: b)
        batches = list(loader)
        assert len(batches) == len(stream)  # len() is exact
        for b in batches:
            assert b["inputs"].shape[0] == len(b["metas"]) <= 3
            for j, m in enumerate(b["metas"]):
                one = {"inputs": b["inputs"][j], "masks": b["masks"][j], "gt_segments": b["gt_segments"][j],
                       "gt_labels": b["gt_labels"][j], "metas": m}  # fmt: skip
                _same_item(one, oracle[m["index"]])
                seen.append(m["index"])
    assert sorted(seen) == list(range(len(ds)))  # every window exactly once over both ranks


def test_iter_video_without_seed_equals_getitem(data):
    ds = _dataset(data)
    vi = [v.name for v in ds.videos].index("c")
    items = list(ds.iter_video(vi))
    assert [it["metas"]["index"] for it in items] == [i for i, w in enumerate(ds.windows) if w[0] == vi]
    for it in items:
        _same_item(it, ds[it["metas"]["index"]])


def test_build_loader_streams_and_logs_its_choices(data, tmp_path, caplog):
    from tinyrun import write_tiny_config

    from adatad.config import load_config
    from adatad.engine.builders import build_loader
    from adatad.engine.dist import DistInfo

    paths = {"anno_file": str(data / "ann.json"), "class_file": str(data / "cls.txt"), "video_dir": str(data)}
    cfg = load_config(write_tiny_config(tmp_path / "t.py", paths), {"solver.test.num_workers": 1})
    with caplog.at_level("INFO", logger="adatad"):
        loader = build_loader(cfg, "test", DistInfo(device=torch.device("cpu")), 0)
    assert isinstance(loader.dataset, VideoStreamDataset) and loader.prefetch_factor == 4
    assert "decode once" in caplog.text and "prefetch 4 batches/worker" in caplog.text
    n = sum(len(b["metas"]) for b in loader)
    assert n == len(loader.dataset.dataset)
    cfg = load_config(write_tiny_config(tmp_path / "t.py", paths), {"dataset.test.decode_once": False, "solver.test.num_workers": 1})
    assert isinstance(build_loader(cfg, "test", DistInfo(device=torch.device("cpu")), 0).dataset, SlidingWindowDataset)


def test_prefetch_plan_fits_the_budget():
    from adatad.engine.builders import prefetch_plan

    window = 3 * 768 * 160 * 160  # 59 MB: the seed's test window
    assert prefetch_plan(window, 1, 2, pinned=False, budget_gb=4.0) == 4  # capped
    assert prefetch_plan(window, 2, 2, pinned=True, budget_gb=1.0) == 2  # 1 GiB // (2 workers x 2 x 2 x 59 MB)
    assert prefetch_plan(window, 2, 2, pinned=True, budget_gb=0.25) == 1  # even one is over the budget: the minimum
    raw = 3 * 768 * 1080 * 1920  # a raw 1080p window for on-device augmentation
    assert prefetch_plan(raw, 1, 2, pinned=False, budget_gb=64.0) == 4
    assert prefetch_plan(raw, 1, 2, pinned=False, budget_gb=20.0) == 2


def test_each_frame_of_the_video_is_decoded_once(videos, decoded_frames):
    """Counted at the decoder: the windows overlap by half, yet no frame is decoded twice (window by window, the
    overlapping halves are decoded twice)."""
    decoded = decoded_frames
    grid = np.arange(0, 301, 2)
    wins = sliding_windows(len(grid), 20, 0.5)
    with VideoReader(videos[301]) as r:
        assert sum(1 for _ in stream_windows(r, grid, wins, 20)) == len(wins) == 15
    # each frame at most once; every grid frame; odd frames only where other frames refer to them (the
    # B-frames nothing refers to are skipped: VideoReader's skip_frame)
    assert len(decoded) == len(set(decoded)) and set(grid.tolist()) <= set(decoded) <= set(range(301))
    decoded.clear()
    _per_window(videos[301], grid, wins, 20)
    assert len(decoded) > 1.8 * 301  # the window-by-window path: about twice


def test_stream_with_the_torchcodec_reader(videos):
    from adatad.data.video import available_backends

    if "torchcodec" not in available_backends():
        pytest.skip("torchcodec is not installed (tests/test_video.py fails in CI without it)")
    grid = np.arange(0, 150, 4)
    wins = sliding_windows(len(grid), 16, 0.5)
    expected = _per_window(videos[150], grid, wins, 16)
    with VideoReader(videos[150], backend="torchcodec") as r:
        got = list(stream_windows(r, grid, wins, 16))
    assert all(np.array_equal(f, e[0]) for (_, f, _), e in zip(got, expected))


def test_a_training_window_decodes_only_its_span(videos, tmp_path, decoded_frames):
    """Training reads one window: the decoder starts at the keyframe before the span and stops at its end."""
    from adatad.data.datasets import TrainDataset

    (tmp_path / "long.mp4").symlink_to(videos[301])
    db = {"long": {"subset": "training", "duration": 301 / 30, "frame": 301, "annotations": [{"segment": [4.0, 5.0], "label": "X"}]}}
    (tmp_path / "ann.json").write_text(json.dumps({"database": db}))
    (tmp_path / "cls.txt").write_text("X\n")
    ds = TrainDataset(tmp_path / "ann.json", tmp_path / "cls.txt", tmp_path, window_size=8, feature_stride=2, trunc_thresh=0.3)
    decoded = decoded_frames
    for seed in range(5):
        decoded.clear()
        item = ds[(0, seed)]
        first = item["metas"]["window_start_frame"]
        assert min(decoded) >= first - 12 and max(decoded) == first + 2 * 7  # GOP 12; 8 snippets every 2 frames
        assert len(decoded) <= 12 + 15


def test_persistent_train_workers_follow_the_sampler_epochs(cfg_file):
    """With persistent workers (2) every epoch, and a resumed epoch's remainder, gives the batches of a loader
    without workers: epoch seeds travel with the indices, not with worker state."""
    from adatad.config import load_config
    from adatad.engine.builders import build_loader
    from adatad.engine.dist import DistInfo

    info = DistInfo(device=torch.device("cpu"))
    loaders = [build_loader(load_config(cfg_file, {"solver.train.num_workers": w}), "train", info, 5) for w in (0, 2)]
    assert loaders[1].persistent_workers and not loaders[0].persistent_workers
    for epoch, skip in ((0, 0), (1, 0), (2, 1), (3, 0)):
        got = []
        for loader in loaders:
            loader.sampler.set_epoch(epoch, skip)  # type: ignore[attr-defined]
            got.append([(b["inputs"], [m["window_start_frame"] for m in b["metas"]]) for b in loader])
        assert len(got[0]) == len(got[1]) == 2 - skip
        for (x, mx), (y, my) in zip(*got):
            assert torch.equal(x, y) and mx == my


@pytest.mark.parametrize("frames,stride,window,overlap", CASES)
def test_stream_windows_with_a_frame_transform(videos, frames, stride, window, overlap):
    """frame_fn (the test transform, once per decoded frame) gives each window exactly what the transform gives on
    the window's frames decoded on their own; padded tail windows too; the buffer never holds more frames."""
    from adatad.data.transforms import EvalTransform

    t = EvalTransform(short_side=24, size=24)
    grid = np.arange(0, frames, stride)
    wins = sliding_windows(len(grid), window, overlap)
    expected = _per_window(videos[frames], grid, wins, window)
    stats: dict = {}
    with VideoReader(videos[frames]) as r:
        got = list(stream_windows(r, grid, wins, window, stats=stats, frame_fn=t.per_frame, chunk=5))
    assert [k for k, _, _ in got] == list(range(len(wins)))
    for (k, clip, m), (ef, em, _) in zip(got, expected):
        assert isinstance(clip, torch.Tensor) and clip.shape == (3, window, 24, 24)
        assert torch.equal(clip, t(ef)), k
        assert np.array_equal(m, em)
    assert stats["peak_frames"] <= window + 5  # the open windows' frames + one pending chunk
