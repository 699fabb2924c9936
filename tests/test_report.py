"""The HTML report (adatad.report, `adatad report`, the hooks in `adatad test` and `adatad infer --html`), checked
as a file: self-contained, numbers equal to the evaluator's, per-video data complete, video paths relative.
The page in a real browser is tests/test_report_browser.py."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from reportdata import fake_predictions
from tinyrun import ROOT, write_tiny_config

from adatad.cli import main
from adatad.evaluation.detection_map import evaluate_detections, load_ground_truth, load_predictions
from adatad.evaluation.error_analysis import OUTCOMES
from adatad.report import build_report_data, render_html, write_report


def embedded(html: str) -> tuple[dict, dict[str, dict]]:
    """The page's data: the report JSON and the per-video JSON elements."""
    scripts = dict(re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', html, flags=re.S))
    head = json.loads(scripts.pop("report-data"))
    return head, {k: json.loads(v) for k, v in scripts.items()}


@pytest.fixture(scope="module")
def preds_file(tiny_dataset, tmp_path_factory):
    path = tmp_path_factory.mktemp("report_preds") / "predictions.json"
    path.write_text(json.dumps(fake_predictions(tiny_dataset["anno_file"], seed=1)))
    return path


def test_report_command_writes_one_self_contained_file(tiny_dataset, preds_file, tmp_path, capsys):
    out = tmp_path / "site" / "report.html"
    argv = ["report", "--gt", tiny_dataset["anno_file"], "--pred", str(preds_file), "--videos", tiny_dataset["video_dir"]]
    assert main([*argv, "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    html = out.read_text()
    # nothing to fetch: no external script, style, link or image; the only URLs are the relative video paths
    assert not re.search(r"<(link|img|iframe)\b", html)
    assert not re.search(r"<script[^>]*\bsrc=", html)
    no_ns = html.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace name is not fetched
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", no_ns, flags=re.I), "no absolute URL"
    head, per_video = embedded(html)

    # the numbers are the evaluator's
    gt = load_ground_truth(tiny_dataset["anno_file"], "validation")
    ref = evaluate_detections(gt, load_predictions(preds_file))
    assert head["summary"]["mAP"] == ref["mAP"] and head["summary"]["average_mAP"] == ref["average_mAP"]
    assert head["summary"]["per_class_ap"] == [ref["per_class_ap"][c] for c in ref["classes"]]
    assert head["classes"][: len(ref["classes"])] == ref["classes"]
    assert head["errors"]["outcomes"] == list(OUTCOMES) and head["outcome_tiou"] == 0.5

    # every prediction and GT instance is in its video's data, predictions by decreasing score; videos are relative
    preds = json.loads(preds_file.read_text())["results"]
    db = json.loads(Path(tiny_dataset["anno_file"]).read_text())["database"]
    assert [v["name"] for v in head["videos"]] == [v for v, info in db.items() if info["subset"] == "validation"]
    for v in head["videos"]:
        d = per_video[v["el"]]
        assert len(d["ps"]) == len(preds[v["name"]]) == v["n_pred"] and len(d["po"]) == v["n_pred"]
        assert sorted(d["pp"], reverse=True) == d["pp"] == sorted((p["score"] for p in preds[v["name"]]), reverse=True)
        assert len(d["gs"]) == len(db[v["name"]]["annotations"]) == v["n_gt"]
        assert v["n_above"] == sum(p["score"] >= 0.3 for p in preds[v["name"]])
        assert (out.parent / unquote(v["src"])).resolve() == (Path(tiny_dataset["video_dir"]) / f"{v['name']}.mp4").resolve()
        assert not os.path.isabs(unquote(v["src"]))
        assert v["duration_known"] and v["duration"] == pytest.approx(db[v["name"]]["duration"], abs=1e-3)


def test_predictions_only_report_and_missing_videos(tiny_dataset, preds_file, tmp_path):
    out = write_report(tmp_path / "r.html", preds_file)
    head, per_video = embedded(out.read_text())
    assert head["summary"] is None and head["errors"] is None and not head["has_gt"]
    assert {v["name"] for v in head["videos"]} == set(json.loads(preds_file.read_text())["results"])
    for v in head["videos"]:
        assert v["src"] is None and v["missing_reason"] == "no --videos folder given"
        assert per_video[v["el"]]["po"] == "" and not v["duration_known"]  # estimated from the last segment end


def test_names_cannot_break_out_of_the_json_elements(tmp_path):
    name = 'v</script><script>alert("x")</script>'
    pred = {"results": {name: [{"segment": [1.0, 2.0], "label": "A</b>", "score": 0.9}]}}
    html = render_html(build_report_data(pred, out=tmp_path / "r.html", title="<t>"))
    assert "</script><script>alert" not in html and "<title>&lt;t&gt;</title>" in html
    head, per_video = embedded(html)
    assert head["videos"][0]["name"] == name and head["classes"] == ["A</b>"]
    assert per_video[head["videos"][0]["el"]]["pp"] == [0.9]


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", "--pred", str(tmp_path / "missing.json"), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "adatad: error:" in err and "missing.json" in err and "Traceback" not in err


def test_test_run_report_failure_is_a_warning(tmp_path, caplog):
    from adatad.engine.evaluate import write_test_report

    cfg = {
        "evaluation": {"ground_truth_filename": str(tmp_path / "missing.json"), "tiou_thresholds": [0.5]},
        "dataset": {"annotation_path": None, "test": {"subset_name": "validation"}, "block_list": None, "data_path": None},
    }
    with caplog.at_level(logging.WARNING, logger="adatad"):
        assert write_test_report(tmp_path / "report.html", {"results": {}}, cfg, "test", ["A"]) is None
    assert "could not write the HTML report" in caplog.text and "missing.json" in caplog.text
    assert not (tmp_path / "report.html").exists()


def test_infer_html_writes_a_report_of_the_videos_it_ran_on(tiny_dataset, tmp_path):
    """An untrained tiny model (random weights) is enough: the report must list the videos run, with their files,
    and with --gt their ground truth and an mAP over those videos only."""
    import torch

    from adatad.config import load_config
    from adatad.models.detector import build_detector

    cfg_path = write_tiny_config(tmp_path / "tiny.py", tiny_dataset)
    torch.manual_seed(0)
    torch.save({"state_dict": build_detector(load_config(cfg_path), load_pretrained=False).state_dict()}, tmp_path / "w.pth")
    video = Path(tiny_dataset["video_dir"]) / "synth_test_0000.mp4"
    out = tmp_path / "out"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "adatad.cli",
            "infer",
            str(video),
            "--config",
            str(cfg_path),
            "--checkpoint",
            str(tmp_path / "w.pth"),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--score-threshold",
            "0",
            "--gt",
            tiny_dataset["anno_file"],
            "--html",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"),
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    head, per_video = embedded((out / "report.html").read_text())
    record = json.loads((out / "synth_test_0000.json").read_text())
    assert [v["name"] for v in head["videos"]] == ["synth_test_0000"]
    v = head["videos"][0]
    assert (out / unquote(v["src"])).resolve() == video.resolve()
    assert v["n_pred"] == len(record["detections"]) and v["duration"] == pytest.approx(record["duration"], abs=1e-3)
    db = json.loads(Path(tiny_dataset["anno_file"]).read_text())["database"]
    assert v["n_gt"] == len(db["synth_test_0000"]["annotations"]) and head["summary"] is not None
    assert head["facts"]["num_ground_truth"] == v["n_gt"]  # the evaluation covers this one video
