"""TrainDataset / SlidingWindowDataset / collate on tiny real videos whose frames carry their index."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from videos import decode_index, write_test_video  # noqa: E402

from adatad.data.datasets import MissingVideosError, SlidingWindowDataset, TrainDataset, collate  # noqa: E402
from adatad.data.transforms import EvalTransform, TrainTransform  # noqa: E402
from adatad.engine.sampler import sample_seed  # noqa: E402

torch.set_num_threads(1)
W = 16  # window size (snippets) for the tiny videos


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    write_test_video(d / "a.mp4", 150, fps=30)  # 38 snippets
    write_test_video(d / "b.mp4", 50, fps=25)  # 13 snippets (< W: cut to 90-100 %)
    db = {
        "a": {"subset": "training", "duration": 5.0, "frame": 150, "annotations": [
            {"segment": [1.0, 2.0], "label": "X"}, {"segment": [3.0, 4.5], "label": "Y"}]},
        "b": {"subset": "training", "duration": 2.0, "frame": 50, "annotations": [
            {"segment": [0.4, 1.2], "label": "Y"}]},
        "c": {"subset": "validation", "duration": 5.0, "frame": 150, "annotations": []},
        "nogt": {"subset": "training", "duration": 5.0, "frame": 150, "annotations": []},
    }  # fmt: skip
    (d / "ann.json").write_text(json.dumps({"database": db}))
    (d / "cls.txt").write_text("X\nY\n")
    (d / "c.mp4").symlink_to(d / "a.mp4")
    (d / "nogt.mp4").symlink_to(d / "a.mp4")
    return d


def _frame_ids(inputs: torch.Tensor) -> list[int]:
    return [decode_index(inputs[:, t].permute(1, 2, 0).numpy()) for t in range(inputs.shape[1])]


def _train(d, **kw):
    return TrainDataset(d / "ann.json", d / "cls.txt", d, window_size=W, **kw)


def test_train_item(data):
    ds = _train(data)
    assert [v.name for v in ds.videos] == ["a", "b"]  # the video without ground truth is left out
    orig = {"a": np.array([[30, 60], [90, 135]]) / 4, "b": np.array([[10, 30]]) / 4}  # frames / stride 4
    for epoch in range(4):
        for i in range(len(ds)):
            it = ds[(i, sample_seed(3, epoch, i))]
            m = it["metas"]
            start, valid = m["window_start_snippet"], m["valid_len"]
            assert it["inputs"].shape == (3, W, 180, 320) and it["inputs"].dtype == torch.uint8
            assert it["masks"].dtype == torch.bool and it["masks"].sum() == valid
            n = -(-m["num_frames"] // 4)
            expected = [min(4 * (start + min(t, valid - 1)), m["num_frames"] - 1) for t in range(W)]
            assert _frame_ids(it["inputs"]) == expected  # padding repeats the last frame
            assert start + valid <= n
            assert m["window_start_frame"] == 4 * start and m["snippet_stride"] == 4
            # kept gt = original clipped to the window, shifted
            if m["video_name"] == "a":  # 38 snippets > W: a full window with >= 1 instance >= 75 % inside
                assert valid == W and len(it["gt_labels"]) >= 1
                for (s, e), lab in zip(it["gt_segments"].tolist(), it["gt_labels"].tolist()):
                    os_, oe = orig["a"][lab]
                    assert s == pytest.approx(max(os_, start) - start) and e == pytest.approx(min(oe, start + W) - start)
                    assert (e - s) >= 0.75 * (oe - os_) - 1e-5
        assert ds[1]["metas"]["fps"] == 25.0 and 12 <= ds[1]["metas"]["valid_len"] <= 13


def test_train_reproducible(data):
    """An item is a function of (index, seed) alone: the same pair gives the same window and pixels, whatever
    was drawn before (the global RNGs are not used); other seeds (epochs) draw other windows."""
    ds = _train(data, transform=TrainTransform(short_side=182, size=160, seed=0))
    a = [ds[(i, sample_seed(7, 0, i))] for i in range(2)]
    torch.manual_seed(123)
    np.random.seed(123)
    b = [ds[(i, sample_seed(7, 0, i))] for i in range(2)][::-1][::-1]
    for x, y in zip(a, b):
        assert torch.equal(x["inputs"], y["inputs"]) and x["metas"] == y["metas"]
    starts = {ds[(0, sample_seed(7, e, 0))]["metas"]["window_start_snippet"] for e in range(12)}
    assert len(starts) > 1  # epochs draw different windows


def test_sliding_windows_items(data):
    ds = SlidingWindowDataset(data / "ann.json", data / "cls.txt", data, subset_name="validation", window_size=W)
    # 38 snippets, stride 8: i < 38 // 8 = 4 -> (0,16) (8,24) (16,32) (24,40 -> 22,38)
    assert [(w[1], w[2]) for w in ds.windows] == [(0, 16), (8, 24), (16, 32), (22, 38)]
    it = ds[3]
    assert _frame_ids(it["inputs"]) == [4 * s for s in range(22, 38)]
    assert it["masks"].all() and it["gt_segments"].shape == (0, 2) and it["metas"]["window_start_frame"] == 88
    b = collate([ds[0], it])
    assert b["inputs"].shape == (2, 3, W, 180, 320) and b["inputs"].dtype == torch.uint8
    assert b["masks"].shape == (2, W) and b["masks"].dtype == torch.bool
    assert [m["video_name"] for m in b["metas"]] == ["c", "c"]
    assert b["gt_segments"][0].dtype == torch.float32 and b["gt_labels"][0].dtype == torch.int64


def test_sliding_short_video_padding_and_gt(data):
    ds = SlidingWindowDataset(
        data / "ann.json", data / "cls.txt", data, subset_name="training", window_size=W, test_mode=False,
        transform=EvalTransform(),
    )  # fmt: skip
    names = [(ds.videos[w[0]].name, w[1], w[2]) for w in ds.windows]
    assert ("b", 0, 13) in names and all(n != "nogt" for n, _, _ in names)
    it = ds[[n for n, _, _ in names].index("b")]
    assert it["inputs"].shape == (3, W, 160, 160)
    assert it["masks"].tolist() == [True] * 13 + [False] * 3
    # b's instance: frames [10, 30] -> snippets [2.5, 7.5], window starts at frame 0
    np.testing.assert_allclose(it["gt_segments"].numpy(), [[2.5, 7.5]])
    assert it["gt_labels"].tolist() == [1]


def test_missing_videos(data, tmp_path):
    db = json.loads((data / "ann.json").read_text())
    db["database"]["ghost"] = {"subset": "training", "duration": 1.0, "frame": 30,
                               "annotations": [{"segment": [0.1, 0.5], "label": "X"}]}  # fmt: skip
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(db))
    with pytest.raises(MissingVideosError, match="ghost.mp4.*skip_missing"):
        TrainDataset(ann, data / "cls.txt", data, window_size=W)
    ds = TrainDataset(ann, data / "cls.txt", data, window_size=W, skip_missing=True)
    assert [v.name for v in ds.videos] == ["a", "b"]


def test_dataloader(data):
    ds = _train(data, transform=EvalTransform())
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate)
    (batch,) = list(loader)
    assert batch["inputs"].shape == (2, 3, W, 160, 160) and batch["masks"].shape == (2, W)
    assert len(batch["gt_segments"]) == 2


# ------------------------------------------------------------------------------------------- scale_factor
def _opentad_sliding_frames(total: int, start: int, end: int, window: int, snippet_stride: int, s: int) -> tuple[list, int]:
    """Frames and valid snippets of one sliding window by OpenTAD's LoadFrames(method="sliding_window", scale_factor=s)
    rule: frames every snippet_stride / s on [0, total), window snippets [start, end) -> frames [start s, end s),
    valid = frames // s, edge padding to window x s."""
    grid = list(range(0, total, snippet_stride // s))
    frames = grid[min(start * s, len(grid)) : min(end * s, len(grid))]
    valid = len(frames) // s
    return frames + [frames[-1]] * (window * s - len(frames)), valid


def test_sliding_scale_factor_2(data):
    ds = SlidingWindowDataset(data / "ann.json", data / "cls.txt", data, subset_name="validation", window_size=W, scale_factor=2)
    assert [(w[1], w[2]) for w in ds.windows] == [(0, 16), (8, 24), (16, 32), (22, 38)]  # windows stay in snippets
    for i, (_, start, end, _, _) in enumerate(ds.windows):
        it = ds[i]
        frames, valid = _opentad_sliding_frames(150, start, end, W, 4, 2)
        assert it["inputs"].shape == (3, 2 * W, 180, 320)
        assert _frame_ids(it["inputs"]) == frames
        assert it["masks"].shape == (W,) and it["masks"].tolist() == [True] * valid + [False] * (W - valid)
        assert it["metas"]["window_start_frame"] == 4 * start and it["metas"]["snippet_stride"] == 4
    # the last window: frames 88, 90, ..., 148 (31 frames) -> 15 valid snippets, as OpenTAD counts them
    assert ds[3]["masks"].sum() == 15


def test_train_scale_factor_2(data):
    ds = _train(data, scale_factor=2)
    orig = {"a": np.array([[30, 60], [90, 135]]) / 4, "b": np.array([[10, 30]]) / 4}  # snippets
    for epoch in range(4):
        for i in range(len(ds)):
            it = ds[(i, sample_seed(5, epoch, i))]
            m = it["metas"]
            assert it["inputs"].shape == (3, 2 * W, 180, 320) and it["masks"].shape == (W,)
            ids = _frame_ids(it["inputs"])
            first = m["window_start_frame"]
            assert first % 2 == 0 and ids[0] == first
            n_frames = sum(1 for a, b in zip(ids, ids[1:]) if b == a + 2) + 1  # frames every 2, then edge padding
            assert ids[:n_frames] == list(range(first, first + 2 * n_frames, 2)) and set(ids[n_frames:]) <= {ids[n_frames - 1]}
            assert m["valid_len"] == n_frames // 2 and it["masks"].sum() == n_frames // 2
            st = first / 2  # window start on the 2-frame grid
            if m["video_name"] == "a":  # 75 grid frames > 2 W: a full window of 32 frames
                assert n_frames == 2 * W
                for (s, e), lab in zip(it["gt_segments"].tolist(), it["gt_labels"].tolist()):
                    os_, oe = orig["a"][lab] * 2  # ground truth on the 2-frame grid, clipped, back to snippets
                    assert s == pytest.approx((max(os_, st) - st) / 2) and e == pytest.approx((min(oe, st + 2 * W) - st) / 2)


def test_scale_factor_must_divide_the_snippet_stride(data):
    with pytest.raises(ValueError, match="scale_factor=3 must be a positive divisor of the snippet stride 4"):
        _train(data, scale_factor=3)
