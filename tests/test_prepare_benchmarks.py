"""`adatad prepare multithumos` and `adatad prepare charades` on small hand-written files in the official formats,
then `adatad prepare check` and the loader (multi-label ground truth, duplicate (segment, label) pairs removed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from videos import write_test_video  # noqa: E402

from adatad.config import config_root  # noqa: E402
from adatad.data.annotations import load_annotations  # noqa: E402
from adatad.data.prepare import main  # noqa: E402


def _multithumos(tmp_path: Path) -> Path:
    d = tmp_path / "annotations"
    d.mkdir()
    # THUMOS-14 videos (frame counts in adatad's shipped video_info CSVs: val 51 = 5091 frames @30, test 4 = 1012 @30)
    (d / "BaseballPitch.txt").write_text("video_validation_0000051 1.0 2.5\nvideo_test_0000004 3.0 4.0\n")
    # the same segment twice with one label (an exact duplicate) and once more with another label (multi-label)
    (d / "Jump.txt").write_text("video_validation_0000051 1.0 2.5\nvideo_validation_0000051 1.0 2.5\n\n")
    (d / "Run.txt").write_text("video_validation_0000051 0.5 3.0\n")
    (d / "class_list.txt").write_text("1 Run\n2 BaseballPitch\n3 Jump\n")
    return d


def test_prepare_multithumos_layout_multilabel_and_check(tmp_path, capsys):
    anno = _multithumos(tmp_path)
    out = tmp_path / "out"
    assert main(["multithumos", "--annotations", str(anno), "--class-list", str(anno / "class_list.txt"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "training: 1 videos, 4 instances" in text and "validation: 1 videos, 1 instances" in text
    db = json.loads((out / "multithumos_anno.json").read_text())["database"]
    assert (out / "category_idx.txt").read_text() == "Run\nBaseballPitch\nJump\n"  # class_list.txt order
    v = db["video_validation_0000051"]
    assert (v["subset"], v["frame"], v["duration"]) == ("training", 5091, 5091 / 30.0)
    assert sorted((a["label"], a["segment"]) for a in v["annotations"]) == [
        ("BaseballPitch", [1.0, 2.5]),
        ("Jump", [1.0, 2.5]),
        ("Jump", [1.0, 2.5]),
        ("Run", [0.5, 3.0]),
    ]
    assert (db["video_test_0000004"]["subset"], db["video_test_0000004"]["frame"]) == ("validation", 1012)
    # loading: the exact duplicate goes (OpenTAD's filter_same_annotation), the second label on the segment stays
    (vid,) = load_annotations(out / "multithumos_anno.json", out / "category_idx.txt", "training")
    pairs = sorted(zip(vid.segments.tolist(), vid.labels.tolist()))
    assert pairs == [([15.0, 90.0], 0), ([30.0, 75.0], 1), ([30.0, 75.0], 2)]  # int(t / duration * frames) at 30 fps

    # default class order: the file names sorted; a file not in the class list is refused in one line
    assert main(["multithumos", "--annotations", str(anno), "--out", str(tmp_path / "o2")]) == 0
    assert (tmp_path / "o2" / "category_idx.txt").read_text() == "BaseballPitch\nJump\nRun\n"
    (anno / "Walk.txt").write_text("video_validation_0000051 1 x\n")
    assert main(["multithumos", "--annotations", str(anno), "--class-list", str(anno / "class_list.txt"), "--out", str(out)]) == 2
    assert "Walk.txt are not in the class list" in capsys.readouterr().err
    (anno / "class_list.txt").write_text("1 Run\n2 BaseballPitch\n3 Jump\n4 Walk\n")
    assert main(["multithumos", "--annotations", str(anno), "--class-list", str(anno / "class_list.txt"), "--out", str(out)]) == 2
    assert "Walk.txt: line 1" in capsys.readouterr().err


def _charades(tmp_path: Path) -> tuple[Path, Path, Path]:
    header = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
    train = tmp_path / "Charades_v1_train.csv"
    train.write_text(header + 'AB12C,s1,Kitchen,6,7,Yes,"a script, comma",cup,d,c001 0.50 2.00;c002 0.50 2.00;c001 0.50 2.00,3.0\n')
    test = tmp_path / "Charades_v1_test.csv"
    test.write_text(header + "ZZ99Q,s2,Bedroom,5,7,Yes,s,,d,c000 1.10 1.90,2.0\nEMPTY,s3,Hall,5,7,Yes,s,,d,,1.5\n")
    classes = tmp_path / "Charades_v1_classes.txt"
    classes.write_text("c000 Holding some clothes\nc001 Putting clothes somewhere\nc002 Taking some clothes from somewhere\n")
    return train, test, classes


def test_prepare_charades_layout_frames_and_check(tmp_path, capsys):
    train, test, classes = _charades(tmp_path)
    vdir = tmp_path / "videos"
    vdir.mkdir()
    write_test_video(vdir / "AB12C.mp4", 88, fps=30, width=64, height=48)  # probed: 88 frames, not int(3.0 * 30)
    out = tmp_path / "out"
    args = ["charades", "--train", str(train), "--test", str(test), "--classes", str(classes), "--out", str(out)]
    assert main([*args, "--videos", str(vdir)]) == 0
    text = capsys.readouterr().out
    assert "training: 1 videos, 3 instances" in text and "testing: 2 videos, 1 instances" in text and "1 videos without" in text
    db = json.loads((out / "charades.json").read_text())["database"]
    assert (out / "category_idx.txt").read_text().splitlines()[1] == "Putting clothes somewhere"
    assert {k: (v["subset"], v["frame"]) for k, v in db.items()} == {
        "AB12C": ("training", 88),
        "ZZ99Q": ("testing", 60),  # int(2.0 s * 30 fps): not probed
        "EMPTY": ("testing", 45),
    }
    assert db["AB12C"]["duration"] == 88 / 30 and db["ZZ99Q"]["duration"] == 2.0
    assert db["ZZ99Q"]["annotations"] == [{"segment": [1.1, 1.9], "label": "Holding some clothes"}]
    (vid,) = load_annotations(out / "charades.json", out / "category_idx.txt", "training")
    assert np.array_equal(vid.labels, [1, 2])  # the duplicate c001 removed; c002 on the same segment kept
    # OpenTAD's Charades recipe (EpicKitchens datasets, fps=30): int(t * 30) frames, the video int(duration * 30) long
    test_videos = load_annotations(out / "charades.json", out / "category_idx.txt", "testing", fps=30)
    assert [(v.name, v.frames, v.fps, v.segments.tolist()) for v in test_videos] == [
        ("ZZ99Q", 60, 30.0, [[33.0, 57.0]]),
        ("EMPTY", 45, 30.0, []),
    ]
    (v,) = load_annotations(out / "charades.json", out / "category_idx.txt", "training", fps=25)
    assert (v.frames, v.fps, v.segments.tolist()) == (73, 25.0, [[12.0, 50.0], [12.0, 50.0]])  # int(88 / 30 * 25) = 73

    # prepare check: the probed video is fine; the two others are missing
    check = ["check", "--ann", str(out / "charades.json"), "--videos", str(vdir)]
    assert main([*check, "--subset", "training"]) == 0
    capsys.readouterr()
    assert main([*check, "--subset", "testing"]) == 1
    text = capsys.readouterr().out
    assert "ZZ99Q" in text and "EMPTY" in text and "video file not found" in text

    # prepare check --config with the shipped Charades recipe: the video has int(duration * dataset.fps) frames
    # (int(88 / 30 * 30) = 88 at the recipe's 30 fps: fine; int(88 / 30 * 25) = 73 at 25 fps: flagged)
    recipe = config_root() / "adatad" / "charades" / "e2e_charades_videomae_s_512x1_160_adapter.py"
    cfg = tmp_path / "cfg.py"
    cfg.write_text(
        f'_base_ = ["{recipe}"]\n'
        f'dataset = dict(annotation_path="{out / "charades.json"}", class_map="{out / "category_idx.txt"}", data_path="{vdir}")\n'
    )
    capsys.readouterr()
    assert main(["check", "--config", str(cfg), "--subset", "training"]) == 0
    with open(cfg, "a") as f:
        f.write("dataset.update(fps=25.0)\n")
    assert main(["check", "--config", str(cfg), "--subset", "training"]) == 1
    assert "88 frames in the file, 73 in the annotation" in capsys.readouterr().out

    # bad input: one line naming the file, row and value
    train.write_text(train.read_text().replace("c002 0.50 2.00", "c999 0.50 2.00"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("adatad: error:") and "row 2 ('AB12C'): class c999 is not in" in err
    train.write_text(train.read_text().replace("c999 0.50 2.00", "c002 0.50"))
    assert main(args) == 2
    assert "action 'c002 0.50' should be" in capsys.readouterr().err
