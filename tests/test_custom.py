"""`adatad prepare custom`: bad input reported by CSV line, reproducible video-level split, generated config."""

import json
from fractions import Fraction

import pytest

from adatad.config import load_config
from adatad.data.custom import main as custom_main
from adatad.data.synthetic import random_video_spec, render_video, write_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("custom_videos")
    plan = {"clip_a": 30.0, "clip_b": Fraction(30000, 1001), "clip_c": 25.0, "clip_d": 30.0, "clip_e": 25.0}
    for i, (name, fps) in enumerate(plan.items()):
        spec = random_video_spec(name, 6.0, fps=fps, size=(32, 32), seed=i, actions=[("Grow", 1.0, 3.0)])
        write_video(root / f"{name}.mp4", render_video(spec), fps)
    return root


def write_csv(path, rows, header="video,start,end,label"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


GOOD = ["clip_a,1.0,3.0,Jump", "clip_b,0.5,2.0,Run", "clip_c,1.0,2.5,Jump", "clip_d,2.0,4.0,Run", "clip_e,1.0,5.0,Jump"]


def run(videos, csv_path, out, *extra, capsys=None):
    rc = custom_main(["--videos", str(videos), "--annotations", str(csv_path), "--out", str(out), *extra])
    captured = capsys.readouterr() if capsys else None
    return rc, (captured.out + captured.err) if captured else ""


def test_good_csv_writes_annotations_classes_and_config(videos, tmp_path, capsys):
    csv_path = write_csv(tmp_path / "labels.csv", GOOD)
    rc, out = run(videos, csv_path, tmp_path / "ds", capsys=capsys)
    assert rc == 0, out
    ann = json.loads((tmp_path / "ds" / "annotations.json").read_text())["database"]
    assert set(ann) == {"clip_a", "clip_b", "clip_c", "clip_d", "clip_e"}
    assert abs(ann["clip_b"]["fps"] - 29.97) < 0.01 and ann["clip_c"]["frame"] == 150
    subsets = {v["subset"] for v in ann.values()}
    assert subsets == {"training", "validation"}
    assert (tmp_path / "ds" / "category_idx.txt").read_text().split() == ["Jump", "Run"]
    cfg = load_config(tmp_path / "ds" / "config.py")  # the generated config round-trips through the loader
    assert cfg["model"]["head"]["num_classes"] == 2
    assert cfg["dataset"]["class_map"].endswith("category_idx.txt")
    assert cfg["dataset"]["data_path"] == str(videos.resolve())
    assert cfg["dataset"]["window_size"] in (128, 192, 256, 384, 512, 640, 768)
    assert cfg["model"]["backbone"]["embed_dims"] == 384  # inherited from the seed recipe
    assert "window" in out and "instances per class" in out
    # reproducible split: same seed, same assignment
    rc, _ = run(videos, csv_path, tmp_path / "ds2", capsys=capsys)
    ann2 = json.loads((tmp_path / "ds2" / "annotations.json").read_text())["database"]
    assert {k: v["subset"] for k, v in ann.items()} == {k: v["subset"] for k, v in ann2.items()}


@pytest.mark.parametrize(
    "bad_row,needle",
    [
        ("clip_a,3.0,2.0,Jump", "line 7: end (2.0) <= start (3.0)"),
        ("clip_a,2.0,2.0,Jump", "line 7: end (2.0) <= start (2.0)"),
        ("clip_a,1.0,2.0,jump ", "line 7: label 'jump ' looks like a typo of 'Jump'"),
        ("clip_zzz,1.0,2.0,Jump", "line 7: video 'clip_zzz' is listed but not found"),
        ("clip_a,1.0,9.5,Jump", "line 7: end 9.50 s is past the end of 'clip_a'"),
    ],
)
def test_bad_rows_are_named_by_line(videos, tmp_path, capsys, bad_row, needle):
    csv_path = write_csv(tmp_path / "labels.csv", GOOD + [bad_row])
    rc, out = run(videos, csv_path, tmp_path / "ds", capsys=capsys)
    assert rc == 1
    assert needle in out, out
    assert not (tmp_path / "ds" / "annotations.json").exists()  # nothing silently written
    rc, out = run(videos, csv_path, tmp_path / "ds", "--skip-bad", capsys=capsys)
    assert rc == 0 and "DROPPED" in out
    ann = json.loads((tmp_path / "ds" / "annotations.json").read_text())["database"]
    assert sum(len(v["annotations"]) for v in ann.values()) == len(GOOD)


def test_subset_column_and_json_input(videos, tmp_path, capsys):
    rows = [r + ("," + s) for r, s in zip(GOOD, ["train", "train", "val", "train", "test"])]
    csv_path = write_csv(tmp_path / "labels.csv", rows, header="video,start,end,label,subset")
    rc, out = run(videos, csv_path, tmp_path / "ds", capsys=capsys)
    assert rc == 0, out
    ann = json.loads((tmp_path / "ds" / "annotations.json").read_text())
    assert ann["database"]["clip_c"]["subset"] == "validation" and ann["database"]["clip_e"]["subset"] == "test"
    cfg = load_config(tmp_path / "ds" / "config.py")
    assert cfg["dataset"]["test"]["subset_name"] == "test"
    # the written OpenTAD-style JSON is itself accepted as input
    rc, out = run(videos, tmp_path / "ds" / "annotations.json", tmp_path / "ds_json", capsys=capsys)
    assert rc == 0, out
    again = json.loads((tmp_path / "ds_json" / "annotations.json").read_text())["database"]
    assert {k: v["subset"] for k, v in again.items()} == {k: v["subset"] for k, v in ann["database"].items()}


def test_warnings_for_rare_classes(videos, tmp_path, capsys):
    csv_path = write_csv(tmp_path / "labels.csv", GOOD)
    rc, out = run(videos, csv_path, tmp_path / "ds", capsys=capsys)
    assert rc == 0 and "has only 2 instance(s)" in out


def test_init_from_writes_load_from_into_the_config(videos, tmp_path, capsys):
    """--init-from CKPT: the generated config fine-tunes from it (load_from, an absolute path); a missing file stops."""
    csv_path = write_csv(tmp_path / "labels.csv", GOOD)
    ckpt = tmp_path / "trained" / "best.pth"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"not read by prepare custom")
    rc, out = run(
        videos, csv_path, tmp_path / "ds", "--init-from", str(tmp_path / "trained" / ".." / "trained" / "best.pth"), capsys=capsys
    )
    assert rc == 0, out
    assert load_config(tmp_path / "ds" / "config.py")["load_from"] == str(ckpt.resolve())
    rc, _ = run(videos, csv_path, tmp_path / "plain", capsys=capsys)
    assert rc == 0 and load_config(tmp_path / "plain" / "config.py")["load_from"] is None
    rc, out = run(videos, csv_path, tmp_path / "none", "--init-from", str(tmp_path / "nope.pth"), capsys=capsys)
    assert rc == 2 and "nope.pth" in out and not (tmp_path / "none").exists()
