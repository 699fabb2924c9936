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
