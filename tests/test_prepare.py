"""`adatad prepare thumos` and `adatad prepare check` (all problems listed in one run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from videos import write_test_video  # noqa: E402

import adatad.data  # noqa: E402
from adatad.data.annotations import load_annotations, thumos14_csv_dir  # noqa: E402
from adatad.data.prepare import check_videos, main  # noqa: E402

THUMOS = thumos14_csv_dir()


def test_prepare_thumos(tmp_path, capsys):
    assert main(["thumos", "--csv-dir", str(THUMOS), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "training: 200 videos, 3003 instances" in out and "validation: 211 videos, 3325 instances" in out
    db = json.loads((tmp_path / "thumos_14_anno.json").read_text())["database"]
    assert len(db) == 411
    assert len((tmp_path / "category_idx.txt").read_text().splitlines()) == 20


def test_prepare_thumos_reads_the_shipped_csvs_by_default(tmp_path, capsys):
    """No --csv-dir/--anno-dir: the CSVs shipped in the package (adatad/data/thumos14) give the same files."""
    assert main(["thumos", "--csv-dir", str(THUMOS), "--out", str(tmp_path / "explicit")]) == 0
    assert main(["thumos", "--out", str(tmp_path / "default")]) == 0
    assert "shipped with adatad" in capsys.readouterr().out
    for name in ("thumos_14_anno.json", "category_idx.txt"):
        assert (tmp_path / "default" / name).read_bytes() == (tmp_path / "explicit" / name).read_bytes()
    assert THUMOS == Path(adatad.data.__file__).parent / "thumos14"  # inside the package, not the tests


def test_check_lists_every_problem(tmp_path, capsys):
    write_test_video(tmp_path / "good.mp4", 60, fps=30)
    write_test_video(tmp_path / "short.mp4", 30, fps=30)  # annotation says 60 frames
    (tmp_path / "empty.mp4").write_bytes(b"")
    data = (tmp_path / "good.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    entry = {"subset": "validation", "duration": 2.0, "frame": 60, "annotations": []}
    db = {n: dict(entry) for n in ("good", "short", "empty", "cut", "absent")}
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"database": db}))
    (tmp_path / "category_idx.txt").write_text("A\n")
    rc = main(["check", "--ann", str(ann), "--videos", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "4 problem(s) in 5 videos" in out
    lines = {ln.split()[0]: ln for ln in out.splitlines()[2:] if ln.strip()}
    assert "missing" in lines["absent"]
    assert "unreadable" in lines["empty"] and "empty" in lines["empty"]
    assert "unreadable" in lines["cut"]
    assert "frames" in lines["short"] and "30 frames in the file, 60 in the annotation" in lines["short"]
    assert "good" not in lines
    # the function the engine calls
    vids = load_annotations(ann, ["A"], "validation", data_path=tmp_path)
    kinds = {p.video: p.kind for p in check_videos(vids)}
    assert kinds == {"short": "frames", "empty": "unreadable", "cut": "unreadable", "absent": "missing"}
    # all good -> exit 0; --full decodes
    ann.write_text(json.dumps({"database": {"good": entry}}))
    assert main(["check", "--ann", str(ann), "--videos", str(tmp_path), "--full"]) == 0
    assert "all 1 videos OK" in capsys.readouterr().out


def _official_anet(tmp_path: Path) -> Path:
    """A hand-written file in the official activity_net.v1-3.min.json format (ids without v_)."""

    def entry(subset, duration, anns):
        return {
            "subset": subset,
            "duration": duration,
            "resolution": "320x180",
            "url": "https://www.youtube.com/watch?v=x",
            "annotations": [{"segment": list(s), "label": lab} for s, lab in anns],
        }

    db = {
        "trainVid-01": entry("training", 2.0, [((0.1, 1.2), "Walking the dog"), ((1.3, 1.9), "Archery")]),
        "trainVid-02": entry("training", 1.0, [((0.0, 0.5), "Zumba")]),
        "valVid-0001": entry("validation", 1.0, [((0.2, 0.9), "Archery")]),
        "valVid-0002": entry("validation", 3.0, [((0.5, 2.5), "Zumba")]),
        "testVid-001": entry("testing", 1.5, []),
    }
    ann = tmp_path / "activity_net.v1-3.min.json"
    ann.write_text(json.dumps({"version": "VERSION 1.3", "taxonomy": [{"nodeName": "Root"}], "database": db}))
    return ann


def test_prepare_anet_layout_frames_missing_and_check(tmp_path, capsys):
    ann = _official_anet(tmp_path)
    vdir = tmp_path / "videos"
    vdir.mkdir()
    write_test_video(vdir / "v_trainVid-01.mp4", 30, fps=15, width=64, height=48)
    write_test_video(vdir / "v_valVid-0001.mp4", 15, fps=15, width=64, height=48)
    write_test_video(vdir / "v_testVid-001.mp4", 22, fps=15, width=64, height=48)
    write_test_video(vdir / "valVid-0002.mp4", 45, fps=15, width=64, height=48)  # no v_ prefix: not what OpenTAD reads
    (vdir / "v_trainVid-02.mp4").write_bytes(b"")  # unreadable
    out = tmp_path / "out"
    assert main(["anet", "--annotations", str(ann), "--videos", str(vdir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "training: 2 videos, 3 instances" in text and "validation: 2 videos, 1 instances" not in text
    assert "validation: 2 videos, 2 instances" in text and "testing: 1 videos, 0 instances" in text
    assert "1 videos exist without the" in text and "valVid-0002.mp4" in text
    data = json.loads((out / "activity_net.v1-3.min.json").read_text())
    orig = json.loads(ann.read_text())
    assert data["version"] == "VERSION 1.3" and data["taxonomy"] == orig["taxonomy"]
    db = data["database"]
    assert list(db) == list(orig["database"])  # ids kept, without v_, file order
    assert {k: v.get("frame") for k, v in db.items()} == {
        "trainVid-01": 30,
        "trainVid-02": None,
        "valVid-0001": 15,
        "valVid-0002": None,
        "testVid-001": 22,
    }
    for k, v in db.items():  # everything else as in the official file
        assert {f: x for f, x in v.items() if f != "frame"} == orig["database"][k]
    # OpenTAD's get_class_index: every label of every subset, sorted
    assert (out / "category_idx.txt").read_text() == "Archery\nWalking the dog\nZumba\n"
    assert sorted((out / "missing_files.txt").read_text().split()) == ["trainVid-02", "valVid-0002"]

    # prepare check works on the result: with OpenTAD's v_ names and the missing list, every video is fine ...
    check = ["check", "--ann", str(out / "activity_net.v1-3.min.json"), "--videos", str(vdir), "--video-prefix", "v_"]
    assert main([*check, "--block-list", str(out / "missing_files.txt")]) == 0
    assert "all 3 videos OK" in capsys.readouterr().out
    # ... and without the missing list it names the missing and the unreadable one
    assert main([*check, "--subset", "validation"]) == 2  # valVid-0002 has no frame count: an annotation error
    assert "valVid-0002" in capsys.readouterr().err


def test_prepare_anet_without_videos_and_bad_input(tmp_path, capsys):
    ann = _official_anet(tmp_path)
    assert main(["anet", "--annotations", str(ann), "--out", str(tmp_path / "o")]) == 0
    assert "no --videos" in capsys.readouterr().out
    assert not (tmp_path / "o" / "missing_files.txt").exists()
    assert all("frame" not in v for v in json.loads((tmp_path / "o" / "activity_net.v1-3.min.json").read_text())["database"].values())
    bad = json.loads(ann.read_text())
    bad["database"]["valVid-0001"]["annotations"][0]["segment"] = [0.2]
    bad["database"]["trainVid-02"]["subset"] = "train"
    ann.write_text(json.dumps(bad))
    assert main(["anet", "--annotations", str(ann), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "'valVid-0001', annotation 0" in err and "'trainVid-02': 'subset'" in err
