"""The whole system learns, end to end, on a CPU — and it does so through the "own videos" path:

synthetic videos with three planted classes at two frame rates + a CSV without a subset column
→ ``adatad prepare custom`` (video-level train/val split, annotations, class map, config)
→ the generated config shrunk for a CPU (``configs/demo/cpu_small.py``) → training → testing on the held-out
videos, and ``adatad infer`` on new 29.97 and 25 fps videos. One model is trained once for all three tests.
"""

import csv
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from tinyrun import ROOT

from adatad.config import load_config, packaged_config
from adatad.data.custom import main as prepare_custom
from adatad.data.synthetic import generate_dataset, random_video_spec, render_video, write_video
from adatad.engine.runner import run_testing, run_training
from adatad.models.detector import build_detector

CLASSES = ["MoveRight", "Grow", "Blink"]
DATA = dict(num_train=64, num_test=8, duration_range=(10.0, 14.0), fps_choices=[30.0, 25.0], size=(64, 64), seed=1, classes=CLASSES)
EPOCHS = 50


def _iou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("learning")
    gen = generate_dataset(root / "gen", **DATA, progress=False)
    # the user's view: a folder of videos and one CSV, no subset column
    database = json.loads(Path(gen["anno_file"]).read_text())["database"]
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "start", "end", "label"])
        for video, info in database.items():
            for a in info["annotations"]:
                w.writerow([video, f"{a['segment'][0]:.3f}", f"{a['segment'][1]:.3f}", a["label"]])
    assert (
        prepare_custom(
            ["--videos", gen["video_dir"], "--annotations", str(root / "labels.csv"), "--out", str(root / "ds"), "--val-fraction", "0.15"]
        )
        == 0
    )
    # the generated config, shrunk for a CPU (the same code path as `adatad train <config>`)
    cfg_path = root / "cpu.py"
    cfg_path.write_text(
        f'_base_ = ["{root / "ds" / "config.py"}", "{packaged_config("demo/cpu_small.py")}"]\n'
        "window_size = 64\ndataset = dict(window_size=window_size)\n"
        "model = dict(backbone=dict(embed_dims=96, depth=2, num_heads=3, adapter_index=[0, 1]),\n"
        "             projection=dict(in_channels=96, out_channels=96), head=dict(feat_channels=96))\n"
        "solver = dict(train=dict(num_workers=1), val=dict(num_workers=1), test=dict(num_workers=1))\n"
        f"scheduler = dict(max_epoch={EPOCHS})\n"
        f"workflow = dict(checkpoint_interval={EPOCHS}, val_eval_interval=0, end_epoch={EPOCHS})\n"
    )
    cfg = load_config(cfg_path)
    torch.manual_seed(int(cfg["solver"]["seed"]))
    torch.save({"state_dict": build_detector(cfg).state_dict()}, root / "untrained.pth")
    before = run_testing(cfg, root / "untrained.pth", root / "before", device="cpu")
    train = run_training(cfg, root / "run", device="cpu")
    ckpt = root / "run" / "checkpoint" / "latest.pth"
    after = run_testing(cfg, ckpt, root / "after", device="cpu")
    return dict(root=root, gen=gen, cfg=cfg, cfg_path=cfg_path, before=before, after=after, train=train, ckpt=ckpt)


def map_at(result, thr=0.5):
    return result["mAP"][[round(t, 2) for t in result["tiou_thresholds"]].index(thr)]


def test_training_improves_map_widely(trained):
    before, after = map_at(trained["before"]), map_at(trained["after"])
    print(f"held-out mAP@0.5 before {before:.3f} after {after:.3f}; average {trained['after']['average_mAP']:.3f}")
    assert before < 0.2
    assert after > 0.5


def test_custom_dataset_detects_planted_actions_on_held_out_videos(trained):
    ann = json.loads((trained["root"] / "ds" / "annotations.json").read_text())["database"]
    held_out = {v: info for v, info in ann.items() if info["subset"] == "validation"}
    assert len(held_out) >= 8 and {info["fps"] for info in ann.values()} == {30.0, 25.0}
    preds = json.loads(Path(trained["after"]["predictions"]).read_text())["results"]
    assert set(preds) == set(held_out)
    found = total = 0
    for video, info in held_out.items():
        for a in info["annotations"]:
            total += 1
            found += any(d["label"] == a["label"] and d["score"] >= 0.2 and _iou(d["segment"], a["segment"]) > 0.5 for d in preds[video])
    print(f"planted actions found on held-out videos: {found}/{total}")
    # measured over 7 full-suite runs of this recipe (2 CPU threads, not bit-deterministic run to run): 10 to 13 of
    # 15; an untrained model finds 0. The bar sits below that spread so that the test checks learning, not luck.
    assert found >= 0.6 * total


def test_infer_finds_planted_actions_at_other_frame_rates(trained, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    planted = {
        "clip_2997": (Fraction(30000, 1001), [("Grow", 1.5, 5.0), ("MoveRight", 7.0, 11.0)]),
        "clip_25": (25.0, [("Blink", 1.0, 4.5), ("MoveRight", 6.5, 10.5)]),
    }
    for i, (name, (fps, actions)) in enumerate(planted.items()):
        spec = random_video_spec(name, 13.0, fps=fps, size=(64, 64), seed=100 + i, actions=actions, classes=CLASSES)
        write_video(videos / f"{name}.mp4", render_video(spec), fps)
    (videos / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "adatad.cli",
            "infer",
            str(videos),
            "--config",
            str(trained["cfg_path"]),
            "--checkpoint",
            str(trained["ckpt"]),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--score-threshold",
            "0.05",
            "--batch-size",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert any("broken.mp4" in k for k in summary["failed"])  # reported and skipped, the rest processed
    found = total = 0
    for name, (fps, actions) in planted.items():
        record = json.loads((out / f"{name}.json").read_text())
        assert abs(record["fps"] - float(fps)) < 1e-3
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.csv").read_text().startswith("start,end")
        for label, s, e in actions:
            total += 1
            found += any(d["label"] == label and _iou(d["segment"], (s, e)) > 0.5 for d in record["detections"])
    assert found >= total - 1, f"found {found} of {total} planted actions"
