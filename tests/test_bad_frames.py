"""Issue #24: a video whose header is intact but whose middle is corrupt (the middle third of its bytes
overwritten). Training replaces its samples deterministically (logged once per video, counted in the log and the
checkpoint, exact resume still holds) and stops with one line past ``dataset.train.max_bad_fraction``; testing
leaves the undecodable video out of the mAP and says so; ``adatad prepare check --decode`` lists it."""

import json
import shutil

import numpy as np
import pytest
import torch
from test_engine import assert_same_weights, run, weights
from tinyrun import ROOT, copy_dataset, write_tiny_config

BAD_TRAIN, BAD_TEST = "synth_train_0001", "synth_test_0000"


def corrupt_middle(path) -> None:
    """Overwrite the middle third of the file's bytes with random bytes (the header and index stay intact)."""
    data = bytearray(path.read_bytes())
    n = len(data)
    data[n // 3 : 2 * n // 3] = np.random.default_rng(0).integers(0, 256, 2 * n // 3 - n // 3, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def bad_dataset(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_data")
    data = copy_dataset(tiny_dataset, root)
    for name in (BAD_TRAIN, BAD_TEST):
        corrupt_middle(root / "videos" / f"{name}.mp4")
    return data


def train_cmd(cfg, work, *opts):
    return [str(ROOT / "tools/train.py"), str(cfg), "--device", "cpu", "--work-dir", str(work), "--cfg-options", *opts]


def test_corrupt_video_raises_with_frame(bad_dataset):
    from adatad.data.video import VideoError, VideoReader

    with VideoReader(f"{bad_dataset['video_dir']}/{BAD_TRAIN}.mp4") as r:
        assert r.num_frames > 200  # the header is intact
        with pytest.raises(VideoError) as e:
            r.get_frames(np.arange(0, r.num_frames, 4))
    assert e.value.frame is not None and 0 < e.value.frame < r.num_frames and BAD_TRAIN in str(e.value)


def test_train_item_replacement_is_a_function_of_index_and_seed(bad_dataset):
    from adatad.data.datasets import TrainDataset, replacement_seed

    ds = TrainDataset(bad_dataset["anno_file"], bad_dataset["class_file"], bad_dataset["video_dir"], window_size=64)
    bad = [v.name for v in ds.videos].index(BAD_TRAIN)
    a, b = ds[(bad, 123)], ds[(bad, 123)]
    assert torch.equal(a["inputs"], b["inputs"])
    assert a["metas"]["video_name"] == ds.videos[(bad + 1) % len(ds)].name
    (failure,) = a["metas"]["bad_samples"]
    assert failure["video"] == BAD_TRAIN and failure["frame"] is not None and failure["path"].endswith(f"{BAD_TRAIN}.mp4")
    direct = ds._load((bad + 1) % len(ds), replacement_seed(123, 1))
    assert torch.equal(a["inputs"], direct["inputs"])
    good = ds[((bad + 1) % len(ds), 5)]
    assert good["metas"]["bad_samples"] == []


def test_resize_item_replacement_is_the_training_rule(bad_dataset):
    """ResizeDataset (whole videos) replaces a bad training video exactly as TrainDataset does (one shared rule)."""
    from adatad.data.datasets import replacement_seed
    from adatad.data.resize import ResizeDataset

    ds = ResizeDataset(bad_dataset["anno_file"], bad_dataset["class_file"], bad_dataset["video_dir"], resize_length=32)
    bad = [v.name for v in ds.videos].index(BAD_TRAIN)
    a = ds[(bad, 123)]
    assert a["metas"]["video_name"] == ds.videos[(bad + 1) % len(ds)].name
    (failure,) = a["metas"]["bad_samples"]
    assert failure["video"] == BAD_TRAIN and failure["frame"] is not None
    assert torch.equal(a["inputs"], ds._load((bad + 1) % len(ds), replacement_seed(123, 1), True)["inputs"])


def test_train_and_test_with_corrupt_videos(bad_dataset, tmp_path):
    cfg = write_tiny_config(tmp_path / "tiny.py", bad_dataset)
    work = tmp_path / "run"
    # 1 of 4 training videos is corrupt: 25% of the samples; allow up to 30%
    res = run(train_cmd(cfg, work, "dataset.train.max_bad_fraction=0.3"), tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "Traceback" not in out
    lines = [line for line in (work / "train.log").read_text().splitlines() if "bad frames:" in line]
    assert len(lines) == 1 and f"{BAD_TRAIN} cannot be decoded from frame" in lines[0] and f"{BAD_TRAIN}.mp4" in lines[0], lines
    ckpt = torch.load(work / "checkpoint" / "latest.pth", weights_only=True)
    assert ckpt["bad_samples"] == 2 and ckpt["samples_seen"] == 8  # one per epoch, 2 epochs of 4 samples
    assert list(ckpt["bad_videos"]) == [BAD_TRAIN]
    assert "bad_samples=2" in (work / "train.log").read_text()
    # validation during training: the corrupt test video is left out, and the table says so
    assert f"mAP over 1 of 2 videos: 1 could not be decoded ({BAD_TEST} (frame " in out
    res = run(
        [
            str(ROOT / "tools/test.py"),
            str(cfg),
            "--checkpoint",
            str(work / "checkpoint" / "latest.pth"),
            "--work-dir",
            str(work),
            "--device",
            "cpu",
        ],
        tmp_path,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Traceback" not in out, out[-3000:]
    assert f"mAP over 1 of 2 videos: 1 could not be decoded ({BAD_TEST} (frame " in out
    assert f"video {BAD_TEST} cannot be decoded from frame" in out
    result = json.loads((work / "map_test.json").read_text())
    assert list(result["undecodable_videos"]) == [BAD_TEST]
    preds = json.loads((work / "predictions_test.json").read_text())["results"]
    assert list(preds) == ["synth_test_0001"]  # never scored as "no detections"


def test_too_many_bad_samples_stop_with_one_line(bad_dataset, tmp_path):
    cfg = write_tiny_config(tmp_path / "tiny.py", bad_dataset)
    res = run(train_cmd(cfg, tmp_path / "run", "workflow.val_eval_interval=0"), tmp_path)  # default 0.01
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    err = [line for line in res.stderr.splitlines() if line.startswith("adatad: error:")]
    assert len(err) == 1 and "training stopped at epoch 0 iteration" in err[0], res.stderr[-3000:]
    assert "more than dataset.train.max_bad_fraction=0.01" in err[0] and f"{BAD_TRAIN} (frame " in err[0]


def test_every_training_video_bad_in_a_worker_is_one_line(bad_dataset, tmp_path):
    """Every attempt fails: the dataset's error crosses a DataLoader worker and still reads as one line."""
    data = dict(bad_dataset, video_dir=str(tmp_path / "videos"))
    shutil.copytree(bad_dataset["video_dir"], data["video_dir"])
    for i in range(4):
        corrupt_middle(tmp_path / "videos" / f"synth_train_{i:04d}.mp4")
    cfg = write_tiny_config(tmp_path / "tiny.py", data)
    res = run(train_cmd(cfg, tmp_path / "run", "solver.train.num_workers=1", "workflow.val_eval_interval=0"), tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    err = [line for line in res.stderr.splitlines() if line.startswith("adatad: error:")]
    assert len(err) == 1 and err[0].startswith("adatad: error: all 4 training videos failed to decode"), res.stderr[-3000:]


def test_resume_after_epoch_is_exact_with_a_corrupt_video(bad_dataset, tmp_path):
    cfg = write_tiny_config(tmp_path / "tiny.py", bad_dataset)
    full, part = tmp_path / "full", tmp_path / "part"
    opts = ["dataset.train.max_bad_fraction=0.3", "workflow.val_eval_interval=0"]
    assert run(train_cmd(cfg, full, *opts), tmp_path).returncode == 0
    assert run(train_cmd(cfg, part, *opts, "workflow.end_epoch=1"), tmp_path).returncode == 0
    res = run([*train_cmd(cfg, part, *opts), "--resume"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    a, a_ema, a_ck = weights(full / "checkpoint" / "latest.pth")
    b, b_ema, b_ck = weights(part / "checkpoint" / "latest.pth")
    assert a_ck["epoch"] == b_ck["epoch"] == 1 and a_ck["bad_samples"] == b_ck["bad_samples"] == 2
    assert_same_weights(a, b)
    assert_same_weights(a_ema, b_ema)
    # logged once per video over the whole run, resume included
    assert "bad frames:" not in res.stdout + res.stderr


def test_prepare_check_decode_lists_the_corrupt_videos(bad_dataset, capsys):
    from adatad.data.prepare import main

    args = ["check", "--ann", bad_dataset["anno_file"], "--videos", bad_dataset["video_dir"]]
    assert main(args) == 0  # headers are intact: the fast check passes
    capsys.readouterr()
    assert main([*args, "--decode", "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert "2 problem(s) in 6 videos" in out and "decoding frames 0, 4, 8, ..." in out
    bad = [line for line in out.splitlines() if "  decode  " in line]
    assert [line.split()[0] for line in bad] == [BAD_TEST, BAD_TRAIN] or sorted(line.split()[0] for line in bad) == sorted(
        [BAD_TEST, BAD_TRAIN]
    )
    assert all("first bad frame" in line for line in bad)


@pytest.mark.parametrize("frame_wise", [False, True])
def test_decode_once_items_of_a_corrupt_video_equal_window_by_window(bad_dataset, frame_wise):
    """The decode-once test path marks exactly the windows the window-by-window path marks, with the same error;
    with the test transform applied frame by frame as frames are decoded (EvalTransform.per_frame) too."""
    from adatad.data.datasets import SlidingWindowDataset
    from adatad.data.transforms import EvalTransform

    transform = EvalTransform(short_side=32, size=32) if frame_wise else None
    ds = SlidingWindowDataset(
        bad_dataset["anno_file"], bad_dataset["class_file"], bad_dataset["video_dir"], window_size=16, transform=transform
    )
    vi = [v.name for v in ds.videos].index(BAD_TEST)
    stats: dict = {}
    items = list(ds.iter_video(vi, stats=stats))
    assert len(items) == sum(1 for w in ds.windows if w[0] == vi) > 2
    marked = [it["metas"]["index"] for it in items if "decode_error" in it["metas"]]
    assert marked and stats["fallback_windows"] > 0
    for it in items:
        ref = ds[it["metas"]["index"]]
        assert torch.equal(it["inputs"], ref["inputs"]) and torch.equal(it["masks"], ref["masks"])
        assert it["metas"] == ref["metas"]
