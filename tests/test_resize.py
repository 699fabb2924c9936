"""Whole-video resize dataset (ActivityNet) against OpenTAD: frame indices, ground truth on the grid, and the
backbone's feature interpolation for scale_factor > 1.

The references were recorded by running OpenTAD's ``AnetResizeDataset``, ``LoadFrames(method="resize")`` and the
ActivityNet config's backbone post-processing pipeline (``tests/fixtures/opentad/anet_resize/make_fixture.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from adatad.annotation_io import AnnotationError
from adatad.data.datasets import collate
from adatad.data.resize import ResizeDataset, load_resize_annotations, resize_frame_indices
from adatad.models.videomae import pool_tokens

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "opentad" / "anet_resize"


@pytest.fixture(scope="module")
def fx():
    return json.loads((FIXTURE / "fixture.json").read_text())


def test_frame_indices_equal_opentad(fx):
    checked = 0
    for grid, per in fx["frame_indices"].items():
        length, scale = map(int, grid.split("x"))
        for total, expect in per.items():
            got = resize_frame_indices(int(total), length, scale)
            assert got.shape == (length * scale,) and got.dtype == np.int64
            if expect == "error":  # OpenTAD's own length assertion fails here; adatad keeps the first n centres
                stride = int(total) / (length * scale)
                centre = (np.arange(length * scale) + 0.5) * stride - 0.5
                assert np.abs(got - centre).max() <= 0.5 + 1e-6
                continue
            np.testing.assert_array_equal(got, np.asarray(expect), err_msg=f"{grid}, {total} frames")
            checked += 1
    assert checked >= 30
    short = resize_frame_indices(100, 192, 4)  # a video shorter than 768 frames repeats frames, in order
    assert set(short.tolist()) == set(range(100)) and np.all(np.diff(short) >= 0)


def _write_annotations(fx, tmp_path: Path) -> tuple[Path, Path]:
    ann = tmp_path / "anno.json"
    ann.write_text(json.dumps(fx["annotations"]))
    cmap = tmp_path / "classes.txt"
    cmap.write_text("\n".join(fx["class_map"]) + "\n")
    return ann, cmap


@pytest.mark.parametrize("setting", ["train", "train_cls", "nofilter", "test"])
def test_ground_truth_equals_opentad(fx, tmp_path, setting):
    ann, cmap = _write_annotations(fx, tmp_path)
    ref = fx["datasets"][setting]
    s = dict(ref["settings"])
    videos = load_resize_annotations(
        ann, cmap, s["subset_name"], s["resize_length"], block_list=fx["block_list"],
        filter_gt=s["filter_gt"], class_agnostic=s["class_agnostic"], test_mode=s["test_mode"],
    )  # fmt: skip
    assert [v.name for v in videos] == [r["video_name"] for r in ref["videos"]]
    for v, r in zip(videos, ref["videos"]):
        assert v.duration == r["duration"] and r["fps"] == -1 and r["resize_length"] == s["resize_length"]
        if s["test_mode"]:
            assert "gt_segments" not in r and v.segments.shape == (0, 2)
            continue
        assert r["gt_segments_dtype"] == "float32"
        np.testing.assert_array_equal(v.segments, np.asarray(r["gt_segments"], dtype=np.float32).reshape(-1, 2))
        np.testing.assert_array_equal(v.labels, np.asarray(r["gt_labels"]))


def test_annotation_errors_name_the_video(fx, tmp_path):
    ann, cmap = _write_annotations(fx, tmp_path)
    db = json.loads(ann.read_text())
    db["database"]["vidA"]["annotations"][0]["label"] = "Unknown class"
    db["database"]["vidB"]["duration"] = 0
    ann.write_text(json.dumps(db))
    with pytest.raises(AnnotationError, match=r"2 problem.*vidA.*Unknown class.*vidB.*duration"):
        load_resize_annotations(ann, cmap, "training", 192)


def test_items_sample_the_whole_video(fx, tmp_path):
    """Real videos: the frames an item holds are the OpenTAD frame indices, ground truth on the grid, the
    batch format of the other datasets, and ``fps == -1`` metas for the seconds conversion."""
    from videos import decode_index, write_test_video

    ann, cmap = _write_annotations(fx, tmp_path)
    totals = {"vidA": 40, "vidB": 13, "vidC": 25, "vidF": 30}  # all shorter than the 4 x 8 = 32 frames some read
    for name, n in totals.items():
        write_test_video(tmp_path / f"v_{name}.mp4", num_frames=n, width=80, height=48, gop=5)
    common: dict[str, Any] = dict(ann_file=ann, class_map=cmap, data_path=tmp_path, subset_name="training", resize_length=8,
                  scale_factor=4, block_list=fx["block_list"], video_prefix="v_")  # fmt: skip
    train = ResizeDataset(**common, filter_gt=True, class_agnostic=True)
    test = ResizeDataset(**common, test_mode=True)
    assert [v.name for v in train.videos] == ["vidA", "vidB", "vidF"] and len(test) == 4
    item = train[(0, 7)]
    assert item["inputs"].shape == (3, 32, 48, 80) and item["inputs"].dtype == torch.uint8
    got = [decode_index(f) for f in item["inputs"].permute(1, 2, 3, 0).numpy()]
    assert got == resize_frame_indices(40, 8, 4).tolist()
    assert item["masks"].shape == (8,) and bool(item["masks"].all())
    ref = fx["datasets"]["train"]["videos"][0]  # resize_length 192 there: the grid scales linearly
    np.testing.assert_allclose(item["gt_segments"].numpy() * 24, np.asarray(ref["gt_segments"]), rtol=1e-6)
    assert item["gt_labels"].tolist() == [0] * len(ref["gt_labels"])
    meta = item["metas"]
    assert (meta["fps"], meta["resize_length"], meta["duration"], meta["num_frames"]) == (-1, 8, 120.5, 40)
    batch = collate([test[i] for i in range(len(test))])
    assert batch["inputs"].shape == (4, 3, 32, 48, 80) and batch["masks"].shape == (4, 8)
    assert [m["video_name"] for m in batch["metas"]] == ["vidA", "vidB", "vidC", "vidF"]
    assert all(g.shape == (0, 2) for g in batch["gt_segments"])

    # `adatad prepare check --config` finds the videos through dataset.video_prefix
    from adatad.data.prepare import main as prepare_main

    db = json.loads(ann.read_text())
    for name, n in totals.items():
        db["database"][name]["frame"] = n
    ann.write_text(json.dumps(db))
    cfg = tmp_path / "check.py"
    paths = f'annotation_path="{ann}", class_map="{cmap}", data_path="{tmp_path}", block_list=["vidD"]'
    cfg.write_text(f'dataset = dict({paths}, sampling="resize", video_prefix="v_")\n')
    assert prepare_main(["check", "--config", str(cfg), "--subset", "training"]) == 0
    cfg.write_text(f'dataset = dict({paths}, sampling="resize")\n')  # no prefix: vidA.mp4 ... are missing
    assert prepare_main(["check", "--config", str(cfg), "--subset", "training"]) == 1


def _as_tokens(x: torch.Tensor) -> torch.Tensor:
    """OpenTAD's ViT feature map ``[N, 1, C, t, h, w]`` -> adatad's tokens ``[N, t*h*w, C]`` (ordered t, y, x)."""
    n, _, c, t, h, w = x.shape
    return x[:, 0].permute(0, 2, 3, 4, 1).reshape(n, t * h * w, c)


@pytest.mark.parametrize("case", ["", "_s3"])
def test_feature_interpolation_equals_opentad(case):
    """scale_factor 4 (192 x 4 = 768 frames, 48 chunks -> 384 tubelets -> 192) and 3 (96 x 3 = 288 frames)."""
    ref = torch.load(FIXTURE / "interpolate.pt", weights_only=True)
    x, y = ref[f"inputs{case}"], ref[f"outputs{case}"]
    chunks = x.shape[0] // y.shape[0]
    assert chunks == ref[f"steps{case}"][1]["t1"]
    got = pool_tokens(_as_tokens(x), batch=y.shape[0], t=x.shape[3], out_len=y.shape[-1])
    assert got.shape == y.shape
    torch.testing.assert_close(got, y, atol=1e-6, rtol=1e-6)


# --------------------------------------------------------------------------------- engine: train + test, fused
def _anet_like_config(tmp_path: Path, tiny_dataset, classifier: Path) -> Path:
    from tinyrun import write_tiny_config

    base = write_tiny_config(tmp_path / "tiny.py", tiny_dataset)
    cfg = tmp_path / "anet_tiny.py"
    cfg.write_text(
        f'_base_ = ["{base}"]\n'
        'dataset = dict(sampling="resize", window_size=64, scale_factor=2, class_agnostic=True, train=dict(filter_gt=True))\n'
        "model = dict(head=dict(num_classes=1, label_smoothing=0.1, loss_weight=2.0))\n"
        "post_processing = dict(nms=dict(multiclass=False, sigma=0.7, min_score=0.001, voting_thresh=0.9),\n"
        f'                       external_cls=dict(type="CUHKANETClassifier", path="{classifier}", topk=2))\n'
        "workflow = dict(end_epoch=1)\n"
    )
    return cfg


def _write_classifier(path: Path, tiny_dataset, drop: str | None = None) -> list[str]:
    """Video-level scores from the ground truth: the video's own classes highest."""
    db = json.loads(Path(tiny_dataset["anno_file"]).read_text())["database"]
    classes = Path(tiny_dataset["class_file"]).read_text().split("\n")[:-1]
    results = {}
    for name, info in db.items():
        s = [0.01] * len(classes)
        for a in info["annotations"]:
            s[classes.index(a["label"])] += 1.0
        results[name] = [x / sum(s) for x in s]
    if drop:
        results.pop(drop)
    path.write_text(json.dumps({"results": results, "class": classes}))
    return classes


def test_resize_training_and_classifier_fusion_end_to_end(tmp_path, tiny_dataset):
    """A 1-class model trains on whole videos (64 x 2 frames each) and tests through the non-sliding path with
    the external classifier; a classifier file lacking a test video stops the test before inference."""
    import subprocess
    import sys

    from tinyrun import ROOT

    clf = tmp_path / "cls.json"
    classes = _write_classifier(clf, tiny_dataset)
    cfg = _anet_like_config(tmp_path, tiny_dataset, clf)
    work = tmp_path / "run"
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    train = [sys.executable, str(ROOT / "tools/train.py"), str(cfg), "--work-dir", str(work), "--device", "cpu"]
    res = subprocess.run(train, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "external classifier: " in res.stdout + res.stderr
    preds = json.loads((work / "predictions_epoch_0.json").read_text())["results"]
    db = json.loads(Path(tiny_dataset["anno_file"]).read_text())["database"]
    tests = sorted(n for n, v in db.items() if v["subset"] == "validation")
    assert sorted(preds) == tests
    for name, dets in preds.items():
        assert dets and len(dets) % 2 == 0 and len(dets) <= 2 * 126  # top-2 classes x the 126 points of 6 levels
        top2 = {classes[i] for i in np.argsort(-np.asarray(json.loads(clf.read_text())["results"][name]))[:2]}
        assert {d["label"] for d in dets} <= top2
        assert all(0 <= d["segment"][0] <= d["segment"][1] <= db[name]["duration"] for d in dets)

    _write_classifier(clf, tiny_dataset, drop=tests[-1])
    test = [sys.executable, str(ROOT / "tools/test.py"), str(cfg), "--checkpoint", str(work / "checkpoint" / "latest.pth")]
    res = subprocess.run(
        test + ["--work-dir", str(work), "--device", "cpu"], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path
    )
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()[-1]
    assert err.startswith("adatad: error: ") and str(clf) in err and repr(tests[-1]) in err and "Traceback" not in res.stderr
    res = subprocess.run(
        train[:-4] + ["--work-dir", str(tmp_path / "run2"), "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert res.returncode != 0 and repr(tests[-1]) in res.stderr.strip().splitlines()[-1]
    assert "[train]" not in res.stdout + res.stderr  # refused before the first training step, not at the first validation


def test_classifier_and_resize_keys_need_resize_sampling(cfg_file, tmp_path):
    from adatad.config import ConfigError, load_config
    from adatad.engine.builders import build_dataset
    from adatad.engine.evaluate import external_classifier
    from adatad.errors import UserError

    cfg = load_config(cfg_file, ['post_processing.external_cls={"type": "CUHKANETClassifier", "path": "x.json"}'])
    with pytest.raises(UserError, match=r'external_cls .*dataset.sampling="resize"'):
        external_classifier(cfg, "val")
    cfg = load_config(cfg_file, ["dataset.video_prefix=v_"])
    with pytest.raises(ConfigError, match=r"video_prefix.*sampling=\"resize\" only"):
        build_dataset(cfg, "train")


def test_dry_run_counts_the_videos_opentad_keeps(fx, tmp_path, cfg_file):
    from adatad.config import load_config
    from adatad.engine.runner import count_training_items

    ann, cmap = _write_annotations(fx, tmp_path)
    opts = [f"dataset.annotation_path={ann}", f"dataset.class_map={cmap}", 'dataset.sampling="resize"', "dataset.block_list=['vidD']"]
    assert count_training_items(load_config(cfg_file, [*opts, "dataset.train.filter_gt=True"])) == len(fx["datasets"]["train"]["videos"])
    assert count_training_items(load_config(cfg_file, opts)) == len(fx["datasets"]["nofilter"]["videos"])


def test_resize_sampling_refuses_the_snippet_cache(cfg_file, tmp_path):
    """The snippet cache holds every snippet_stride-th frame only: a whole-video resize reads other frames, so a config
    with both stops with one line naming the key (never a silent read of the videos, nor wrong frames)."""
    from adatad.config import ConfigError, load_config
    from adatad.engine.builders import build_dataset

    cfg = load_config(cfg_file, ['dataset.sampling="resize"', f"dataset.cache_dir={tmp_path / 'cache'}"])
    for split in ("train", "test"):
        with pytest.raises(ConfigError, match=r"dataset.cache_dir=.*cannot serve dataset.sampling=\"resize\""):
            build_dataset(cfg, split)


@pytest.mark.parametrize("topk", ["2000", "40"])
def test_multiclass_whole_video_path_equals_opentad(fx, topk):
    """The 200-class ``_cls`` recipe (no external classifier): candidates of all classes above the threshold, top-k,
    multiclass soft-NMS in grid units, seconds over the whole video, class names from the class map."""
    from adatad.models.classifier import whole_video_results
    from adatad.models.postprocess import window_candidates

    c = fx["cls_post"]
    logits = torch.tensor(c["logits"], dtype=torch.float32)  # [T, K]
    offsets = torch.tensor(c["offsets"], dtype=torch.float32)  # [T, 2]
    masks = torch.ones(1, logits.shape[0], dtype=torch.bool)
    cand = window_candidates([logits.T[None]], [offsets.T[None]], [masks], [1], c["pre_nms_thresh"], int(topk))[0]
    got = whole_video_results(cand["segments"], cand["scores"], cand["labels"], c["meta"], c["nms"], None, c["classes"])
    key = lambda r: (r["label"], r["segment"][0], r["segment"][1], r["score"])  # noqa: E731
    assert sorted(got, key=key) == sorted(c["results"][topk], key=key)
