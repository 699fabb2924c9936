"""Annotation loading, validation and THUMOS-14 conversion (real THUMOS-14 annotation files shipped in adatad/data/thumos14)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from adatad.data.annotations import AnnotationError, convert_thumos, load_annotations, load_class_map, thumos14_csv_dir, write_annotations

THUMOS = thumos14_csv_dir()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    data, classes, report = convert_thumos(csv_dir=THUMOS)
    out = tmp_path_factory.mktemp("anno")
    ann, cmap = write_annotations(data, classes, out)
    return data, classes, report, ann, cmap


def test_thumos_counts(converted):
    data, classes, report, ann, cmap = converted
    db = data["database"]
    train = {k: v for k, v in db.items() if v["subset"] == "training"}
    test = {k: v for k, v in db.items() if v["subset"] == "validation"}
    assert len(train) == 200 and sum(len(v["annotations"]) for v in train.values()) == 3003
    assert len(test) == 211 and sum(len(v["annotations"]) for v in test.values()) == 3325
    assert all(k.startswith("video_validation_") for k in train) and all(k.startswith("video_test_") for k in test)
    assert "video_test_0000270" not in db and "video_test_0001292" not in db
    # the class map: the 20 detection classes of class_index_detection.txt, sorted
    ref = [ln.split()[1] for ln in (THUMOS / "class_index_detection.txt").read_text().splitlines() if ln.strip()]
    assert classes == sorted(ref) and load_class_map(cmap) == classes
    # no instance ends after its video's last frame; metadata from the info CSV
    with open(THUMOS / "val_video_info.csv") as f:
        info = {r["video"]: (float(r["fps"]), int(float(r["count"]))) for r in csv.DictReader(f)}
    v = db["video_validation_0000051"]
    assert v["frame"] == info["video_validation_0000051"][1] == 5091
    assert v["duration"] == pytest.approx(5091 / 30.0)
    assert all(a["segment"][1] <= d["duration"] for d in db.values() for a in d["annotations"])


def test_load_and_round_trip(converted):
    _, classes, _, ann, cmap = converted
    train = load_annotations(ann, cmap, "training")
    test = load_annotations(ann, cmap, "validation")
    assert len(train) == 200 and len(test) == 211
    assert sum(len(v.segments) for v in train) == 3003 and sum(len(v.segments) for v in test) == 3325
    raw = json.loads(Path(ann).read_text())["database"]
    fps_seen = set()
    for v in train + test:
        fps_seen.add(round(v.fps, 2))
        secs = raw[v.name]["annotations"]
        assert len(secs) == len(v.segments)
        for a, (s, e), lab in zip(secs, v.segments, v.labels):
            assert classes[lab] == a["label"]
            # frames = int(t / duration * frame); back to seconds through the snippet grid (stride 4)
            for t, f in ((a["segment"][0], s), (a["segment"][1], e)):
                assert f == int(t / v.duration * v.frames)
                snippet = f / 4
                back = (float(snippet) * 4 + 0) / v.fps
                # int() truncates (and float error can make 3993.0 -> 3992): within one frame
                assert -1e-9 <= t - back <= 1 / v.fps + 1e-6
    assert {30.0, 29.97, 25.0, 24.0} <= fps_seen


def _write(tmp_path, db, classes=("A", "B")):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"database": db}))
    cmap = tmp_path / "cls.txt"
    cmap.write_text("\n".join(classes) + "\n")
    return ann, cmap


def test_duplicates_and_ambiguous(tmp_path):
    db = {
        "v1": {
            "subset": "training",
            "duration": 10.0,
            "frame": 100,
            "annotations": [
                {"segment": [1.0, 2.0], "label": "A"},
                {"segment": [1.0, 2.05], "label": "A"},  # same frames after int(): kept once
                {"segment": [1.0, 2.0], "label": "B"},  # same segment, other class: kept
                {"segment": [3.0, 4.0], "label": "Ambiguous"},  # skipped
                {"segment": [5.0, 5.0], "label": "B"},  # zero length: kept (filter_gt=False)
            ],
        },
        "v2": {"subset": "validation", "duration": 5.0, "frame": 150, "annotations": []},
    }
    ann, cmap = _write(tmp_path, db)
    (v1,) = load_annotations(ann, cmap, "training", data_path=tmp_path)
    np.testing.assert_array_equal(v1.segments, [[10, 20], [10, 20], [50, 50]])
    np.testing.assert_array_equal(v1.labels, [0, 1, 1])
    assert v1.fps == 10.0 and v1.path == tmp_path / "v1.mp4"
    (v2,) = load_annotations(ann, cmap, "validation")
    assert v2.fps == 30.0 and v2.segments.shape == (0, 2)
    assert load_annotations(ann, cmap, ["training", "validation"], block_list=["v1"])[0].name == "v2"


def test_errors_name_video_and_field(tmp_path):
    db = {
        "bad_order": {"subset": "training", "duration": 10.0, "frame": 100,
                      "annotations": [{"segment": [5.0, 4.0], "label": "A"}]},
        "bad_label": {"subset": "training", "duration": 10.0, "frame": 100,
                      "annotations": [{"segment": [1.0, 4.0], "label": "Zebra"}]},
        "no_duration": {"subset": "training", "frame": 100, "annotations": []},
        "no_frame": {"subset": "training", "duration": 3.0, "annotations": []},
    }  # fmt: skip
    ann, cmap = _write(tmp_path, db)
    with pytest.raises(AnnotationError) as e:
        load_annotations(ann, cmap, "training")
    msg = str(e.value)
    assert "4 problem" in msg
    assert "'bad_order'" in msg and "end 4.0 < start 5.0" in msg
    assert "'bad_label'" in msg and "unknown label 'Zebra'" in msg
    assert "'no_duration'" in msg and "'duration'" in msg
    assert "'no_frame'" in msg and "'frame'" in msg
    with pytest.raises(AnnotationError, match="no video in subset 'testing'.*training"):
        load_annotations(ann, cmap, "testing")
    with pytest.raises(AnnotationError, match="not found"):
        load_annotations(tmp_path / "missing.json", cmap, "training")
    with pytest.raises(AnnotationError, match="class map not found"):
        load_class_map(tmp_path / "nope.txt")


def test_convert_official_txt_form(tmp_path):
    (tmp_path / "BaseballPitch_val.txt").write_text("video_validation_1 1.0 2.0\nvideo_validation_2 0.5 9.5\n")
    (tmp_path / "Ambiguous_val.txt").write_text("video_validation_1 3.0 4.0\n")
    (tmp_path / "Diving_test.txt").write_text("video_test_1 1.0 2.0\nvideo_test_0000270 1.0 2.0\n")
    (tmp_path / "val_video_info.csv").write_text(
        "video,fps,sample_fps,count,sample_count\nvideo_validation_1,30.0,10,300,100\nvideo_validation_2,25.0,10,200,80\n"
    )
    (tmp_path / "test_video_info.csv").write_text(
        "video,fps,sample_fps,count,sample_count\nvideo_test_1,30.0,10,90,30\nvideo_test_0000270,30,10,900,300\n"
    )
    data, classes, report = convert_thumos(anno_dir=tmp_path)
    db = data["database"]
    assert classes == ["BaseballPitch", "Diving"]
    assert db["video_validation_1"]["annotations"] == [{"segment": [1.0, 2.0], "label": "BaseballPitch"}]
    assert db["video_validation_1"]["duration"] == 10.0 and db["video_validation_1"]["frame"] == 300
    assert db["video_validation_2"]["annotations"] == []  # 9.5 s > 200 / 25 = 8 s: ends after the last frame
    assert "video_test_0000270" not in db and db["video_test_1"]["subset"] == "validation"
    assert report.instances == {"training": 1, "validation": 1}
    assert any("Ambiguous" in n for n in report.notes)
    # metadata probed from videos when present
    data2, _, _ = convert_thumos(
        anno_dir=tmp_path,
        videos_dir=tmp_path,
        probe=lambda p: {"num_frames": 600, "fps": 60.0, "duration": 10.0},
    )
    assert data2["database"]["video_validation_1"]["frame"] == 300  # no video file there: CSV metadata
    (tmp_path / "video_validation_1.mp4").write_bytes(b"x")
    data3, _, _ = convert_thumos(anno_dir=tmp_path, videos_dir=tmp_path, probe=lambda p: {"num_frames": 600, "fps": 60.0, "duration": 10.0})
    assert data3["database"]["video_validation_1"]["frame"] == 600
