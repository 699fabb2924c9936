"""EPIC-Kitchens-100 and Ego4D-MQ: windows, frame indices, ground truth and post-processing as OpenTAD.

Oracle: ``tests/fixtures/opentad/egocentric/fixture.pt``, recorded from OpenTAD's ``EpicKitchens*Dataset`` /
``Ego4D*Dataset``, ``LoadFrames(method="sliding_window", scale_factor=8 / 4)``, ``SingleStageDetector.post_processing``
and the test engine's ``gather_ddp_results`` with the settings of the shipped EPIC / Ego4D configs
(``make_fixture.py`` beside it; not run by the tests).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from adatad.data.datasets import SlidingWindowDataset, TrainDataset
from adatad.data.windows import padded_window
from adatad.models.postprocess import detection_records, video_detections, window_candidates

torch.set_num_threads(1)
FIXTURE = Path(__file__).parent / "fixtures/opentad/egocentric/fixture.pt"
SCALE = {"epic": 8, "ego4d": 4}


@pytest.fixture(scope="module")
def fx():
    return torch.load(FIXTURE, weights_only=True)


def _files(tmp_path: Path, rec: dict) -> dict:
    ann, cmap = tmp_path / "anno.json", tmp_path / "classes.txt"
    ann.write_text(json.dumps({"database": rec["database"]}))
    cmap.write_text("\n".join(rec["class_map"]) + "\n")
    for name in rec["database"]:
        (tmp_path / f"{name}.mp4").touch()  # the datasets only check that the files exist
    return dict(ann_file=ann, class_map=cmap, data_path=tmp_path)


@pytest.mark.parametrize("bench", ["epic", "ego4d"])
@pytest.mark.parametrize("split", ["test", "val"])
def test_sliding_windows_and_frame_indices_match_opentad(fx, tmp_path, bench, split):
    rec = fx[bench]
    s = rec[split]["settings"]
    ds = SlidingWindowDataset(
        **_files(tmp_path, rec),
        subset_name=s["subset_name"],
        window_size=s["window_size"],
        feature_stride=s["feature_stride"],
        sample_stride=s["sample_stride"],
        window_overlap_ratio=s["window_overlap_ratio"],
        ioa_thresh=s.get("ioa_thresh", 0.75),
        test_mode=s.get("test_mode", False),
        scale_factor=SCALE[bench],
        fps=s.get("fps", -1),
    )
    want = rec[split]["items"]
    assert len(ds.windows) == len(want)
    sf = SCALE[bench]
    for (vi, start, end, seg, labels), w in zip(ds.windows, want):
        v = ds.videos[vi]
        assert (v.name, start, end - 1) == (w["video_name"], w["feature_start_idx"], w["feature_end_idx"])
        total = rec["decoded"][v.name]
        grid = ds._frame_grid(SimpleNamespace(num_frames=total))  # type: ignore[arg-type]
        idx, fmask = padded_window(grid, start * sf, end * sf, ds.window_size * sf, total)
        assert np.array_equal(idx, w["frame_inds"].numpy()), f"{v.name} window {start}: frame indices"
        valid = int(fmask.sum()) // sf
        assert [i < valid for i in range(ds.window_size)] == w["masks"]
        metas = ds._metas(v, SimpleNamespace(num_frames=total), start, valid)  # type: ignore[arg-type]
        assert metas["window_start_frame"] == w["window_start_frame"] and metas["fps"] == pytest.approx(w["fps"], rel=1e-12)
        if "gt_segments" in w:
            np.testing.assert_allclose(seg, np.asarray(w["gt_segments"], np.float32).reshape(-1, 2), rtol=0, atol=1e-5)
            assert labels.tolist() == w["gt_labels"]


@pytest.mark.parametrize("bench", ["epic", "ego4d"])
def test_training_ground_truth_matches_opentad_padding_dataset(fx, tmp_path, bench):
    """EPIC: frames ``int(t * 30)`` (no ``frame`` field), zero-length instances dropped (filter_gt=True), duplicates
    dropped; Ego4D: ``int(t / duration * frame)``, filter_gt=False."""
    rec = fx[bench]
    s = rec["train"]["settings"]
    ds = TrainDataset(
        **_files(tmp_path, rec),
        subset_name=s["subset_name"],
        window_size=768,
        feature_stride=s["feature_stride"],
        sample_stride=s["sample_stride"],
        scale_factor=SCALE[bench],
        fps=s.get("fps", -1),
        filter_gt=s["filter_gt"],
    )
    want = rec["train"]["items"]
    assert [v.name for v in ds.videos] == [w["video_name"] for w in want]
    for v, w in zip(ds.videos, want):
        seg = (v.segments / np.float32(ds.snippet_stride)).astype(np.float32)
        np.testing.assert_array_equal(seg, np.asarray(w["gt_segments"], np.float32).reshape(-1, 2))
        assert v.labels.tolist() == w["gt_labels"] and v.fps == pytest.approx(w["fps"], rel=1e-12)


@pytest.mark.parametrize("bench", ["epic", "ego4d"])
def test_sliding_window_post_processing_matches_opentad(fx, bench):
    """The config's soft-NMS (EPIC: sigma 0.4, voting 0.75; Ego4D: sigma 2.0, voting 0.95), pre_nms_topk 5000,
    max 2000 segments, over the test windows of one video."""
    p = fx[bench]["post"]
    cands, metas = [], []
    for w in p["windows"]:
        logits, offsets = w["logits"], w["offsets"]
        masks = torch.ones(1, logits.shape[0], dtype=torch.bool)
        cands.append(window_candidates([logits.T[None]], [offsets.T[None]], [masks], [1], p["pre_nms_thresh"], p["pre_nms_topk"])[0])
        metas.append(w["meta"])
    det = video_detections(cands, metas, p["nms"])
    got = detection_records(det, fx[bench]["class_map"])
    key = lambda r: (r["label"], r["segment"][0], r["segment"][1], r["score"])  # noqa: E731
    assert len(got) == len(p["results"])
    assert sorted(got, key=key) == sorted(p["results"], key=key)


class _FakeReader:
    """Stands in for a decoder: records the frame indices asked for, returns black frames."""

    def __init__(self, num_frames: int):
        self.num_frames = num_frames
        self.asked: np.ndarray | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def get_frames(self, idx):
        self.asked = np.asarray(idx)
        return np.zeros((len(idx), 2, 2, 3), dtype=np.uint8)


@pytest.mark.parametrize("bench", ["epic", "ego4d"])
def test_random_truncation_with_scale_factor_matches_opentad(fx, tmp_path, bench, monkeypatch):
    """Training windows: ``LoadFrames(random_trunc, scale_factor=8 / 4)`` on the fine frame grid; both draw from Python's
    ``random`` (adatad: an item requested without a seed), so the same seed gives the same window."""
    import random

    rec = fx[bench]
    s, load = rec["train"]["settings"], rec["trunc"]["load"]
    ds = TrainDataset(
        **_files(tmp_path, rec),
        subset_name=s["subset_name"],
        window_size=load["trunc_len"],
        feature_stride=s["feature_stride"],
        sample_stride=s["sample_stride"],
        trunc_thresh=load["trunc_thresh"],
        crop_ratio=tuple(load["crop_ratio"]),
        scale_factor=load["scale_factor"],
        fps=s.get("fps", -1),
        filter_gt=s["filter_gt"],
    )
    for w in rec["trunc"]["items"]:
        reader = _FakeReader(rec["decoded"][ds.videos[w["index"]].name])
        monkeypatch.setattr(ds, "_open", lambda v, r=reader: r)
        random.seed(w["seed"])
        item = ds._load(w["index"], None)
        assert reader.asked is not None and np.array_equal(reader.asked, w["frame_inds"].numpy()), (w["index"], w["seed"])
        assert item["masks"].tolist() == w["masks"]
        np.testing.assert_allclose(item["gt_segments"].numpy(), np.asarray(w["gt_segments"], np.float32).reshape(-1, 2), atol=1e-5)
        assert item["gt_labels"].tolist() == w["gt_labels"]
