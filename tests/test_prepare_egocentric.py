"""`adatad prepare epic` and `adatad prepare ego4d` on small hand-written files in the official layouts
(``tests/data/epic100``, ``tests/data/ego4d_mq``). Oracle: what OpenTAD's own converters
(``tools/prepare_data/{epic,ego4d}/convert_*.py``) wrote for the same files
(``tests/fixtures/opentad/egocentric/prepare_*.json``, ``make_prepare_fixture.py``), and hand-computed values.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from videos import write_test_video  # noqa: E402

from adatad.data.egocentric import convert_ego4d, trim_script  # noqa: E402
from adatad.data.prepare import main  # noqa: E402

DATA = Path(__file__).parent / "data"
FX = Path(__file__).parent / "fixtures/opentad/egocentric"


def test_prepare_epic_writes_opentads_files(tmp_path, capsys):
    assert main(["epic", "--csv-dir", str(DATA / "epic100"), "--out", str(tmp_path)]) == 0
    for kind in ("verb", "noun"):
        got = json.loads((tmp_path / f"epic_kitchens_{kind}.json").read_text())
        assert got == json.loads((FX / f"prepare_epic_kitchens_{kind}.json").read_text())
    db = json.loads((tmp_path / "epic_kitchens_verb.json").read_text())["database"]
    # by hand: 00:01:05.376 -> 65.38 s; "put pan, on hob" is a quoted field; verb_class 1 -> id_001
    assert db["P01_01"]["annotations"][2] == {"segment": [65.38, 67.11], "label": "id_001", "label_name": "put"}
    assert db["P02_09"]["annotations"][1]["segment"] == [3601.25, 3602.51] and db["P02_09"]["subset"] == "val"
    assert db["P03_04"] == {"subset": "test", "duration": 60.02}
    assert (tmp_path / "category_idx_verb.txt").read_text().split() == ["id_000", "id_001", "id_002", "id_003", "id_006"]
    assert (tmp_path / "category_idx_noun.txt").read_text().split() == ["id_004", "id_005", "id_008", "id_011", "id_113"]
    assert "5 verb classes" in capsys.readouterr().out


def test_prepare_epic_names_a_missing_column(tmp_path):
    csv_dir = tmp_path / "csv"
    shutil.copytree(DATA / "epic100", csv_dir)
    p = csv_dir / "EPIC_100_train.csv"
    p.write_text(p.read_text().replace("noun_class", "noun_id", 1))
    assert main(["epic", "--csv-dir", str(csv_dir), "--out", str(tmp_path / "out")]) == 2


def test_prepare_ego4d_writes_opentads_file(tmp_path, capsys):
    assert main(["ego4d", "--anno-dir", str(DATA / "ego4d_mq"), "--out", str(tmp_path)]) == 0
    got = json.loads((tmp_path / "ego4d_v2_220429.json").read_text())
    assert got == json.loads((FX / "prepare_ego4d_v2_220429.json").read_text())
    db = got["database"]
    # by hand: clip-a1 starts at -0.0333 s / frame -1 -> 0; its non-primary label is dropped, both annotators kept
    assert db["clip-a1"] == {"duration": 480.0, "frame": 14400, "subset": "train", "annotations": [
        {"segment": [10.0, 20.5], "label": "use_phone"}, {"segment": [10.2, 20.0], "label": "use_phone"}]}  # fmt: skip
    assert db["clip-a2"]["annotations"][0]["segment"] == [1.0, 3.5]  # relative to the clip start 600.12345
    assert "clip-a3" not in db and "clip-b2" not in db  # no primary label; 200 fps
    assert db["clip-c1"] == {"duration": 480.0, "frame": 14400, "subset": "test"}
    assert (tmp_path / "category_idx.txt").read_text().split() == ["cut_vegetables", "use_phone", "wash_dishes"]
    out = capsys.readouterr().out
    assert "clip-a3: no primary label" in out and "clip-b2: frame rate 200.00" in out


def test_prepare_ego4d_trim_script_lists_every_clip(tmp_path):
    assert main(["ego4d", "--anno-dir", str(DATA / "ego4d_mq"), "--out", str(tmp_path), "--videos", "/v", "--clips", "/c"]) == 0
    lines = [ln for ln in (tmp_path / "trim_clips.sh").read_text().splitlines() if ln.startswith("trim ")]
    # OpenTAD trims every clip of every moments file (also those its annotation converter leaves out)
    assert lines[0] == "trim /v/vid-aaaa.mp4 /c/clip-a1.mp4 0.0 480.0" and len(lines) == 6
    assert lines[1] == "trim /v/vid-aaaa.mp4 /c/clip-a2.mp4 600.12345 1080.12345"
    assert main(["ego4d", "--anno-dir", str(DATA / "ego4d_mq"), "--out", str(tmp_path), "--videos", "/v"]) == 2


@pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="needs ffmpeg")
def test_trim_script_cuts_a_clip_with_ffmpeg(tmp_path):
    """The generated script run for real: a 4 s landscape video, clip 1.0-3.0 s, short side 32."""
    import av

    write_test_video(tmp_path / "vid.mp4", num_frames=120, fps=30, width=96, height=64)
    script = tmp_path / "trim.sh"
    script.write_text(trim_script([("vid", "clip", 1.0, 3.0)], str(tmp_path), str(tmp_path / "clips"), short_side=32))
    subprocess.run(["bash", str(script)], check=True, capture_output=True, timeout=60)
    with av.open(str(tmp_path / "clips" / "clip.mp4")) as c:
        s = c.streams.video[0]
        frames = sum(1 for _ in c.decode(s))
        assert (s.codec_context.width, s.codec_context.height) == (48, 32) and c.streams.audio == ()
    assert 58 <= frames <= 62  # 2 s at 30 fps


def test_convert_ego4d_reports_a_malformed_file(tmp_path):
    from adatad.annotation_io import AnnotationError

    d = tmp_path / "anno"
    shutil.copytree(DATA / "ego4d_mq", d)
    doc = json.loads((d / "moments_val.json").read_text())
    del doc["videos"][0]["clips"][0]["video_end_sec"]
    (d / "moments_val.json").write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=r"moments_val.json: video 'vid-bbbb'.*video_end_sec"):
        convert_ego4d(d)


def test_prepare_check_reads_epic_annotations_with_fps(tmp_path, capsys):
    """EPIC files have no 'frame': `prepare check` needs --fps 30 (or a config's dataset.fps) to read them."""
    assert main(["epic", "--csv-dir", str(DATA / "epic100"), "--out", str(tmp_path)]) == 0
    ann = str(tmp_path / "epic_kitchens_verb.json")
    videos = tmp_path / "videos"
    videos.mkdir()
    assert main(["check", "--ann", ann, "--videos", str(videos), "--subset", "val"]) == 2
    assert "'frame' must be a positive frame count" in capsys.readouterr().err
    assert main(["check", "--ann", ann, "--videos", str(videos), "--subset", "val", "--fps", "30"]) == 1
    out = capsys.readouterr().out
    assert "checking 1 videos of ['val']" in out and "P02_09.mp4" in out and "missing" in out
