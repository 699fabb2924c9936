"""The HTML report in a real headless browser: Debian's ``chromium`` driven by Playwright for Python.

The report is built by ``adatad report`` from the tiny synthetic dataset (real H.264 MP4 files) and realistic
predictions (perturbed ground truth, some wrong labels, random boxes; every class, scores over [0, 1]). The test
opens the file from disk, checks that it fetches nothing from the network and logs no error, that the timeline
draws exactly the predictions above the score threshold, that the slider changes that count, that a click on a
segment seeks the player to the segment's start and the playhead follows ``currentTime``, and saves screenshots.

Needs ``playwright`` (the ``test`` extra) and ``chromium`` on PATH (``scripts/ci/install_browser.sh``). When the
environment variable ``CI`` is set, a missing one is a failure; elsewhere the tests are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from reportdata import fake_predictions

from adatad.cli import main
from adatad.evaluation.detection_map import evaluate_detections, load_ground_truth, load_predictions


def _unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]' installs it)"
    if shutil.which("chromium") is None:
        return "no chromium on PATH (scripts/ci/install_browser.sh installs Debian's chromium)"
    return None


@pytest.fixture(scope="module")
def browser():
    why = _unavailable()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the browser test cannot run: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def report(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("report_browser")
    pred = root / "predictions.json"
    pred.write_text(json.dumps(fake_predictions(tiny_dataset["anno_file"], seed=2, copies=4, random_boxes=12)))
    out = root / "site" / "report.html"
    argv = ["report", "--gt", tiny_dataset["anno_file"], "--pred", str(pred), "--videos", tiny_dataset["video_dir"]]
    assert main([*argv, "--out", str(out), "--score-threshold", "0.3"]) == 0
    return {"html": out, "pred": json.loads(pred.read_text())["results"], "pred_file": pred, "anno": tiny_dataset["anno_file"]}


@pytest.fixture
def page(browser, report):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    log = {"requests": [], "errors": []}
    pg.on("request", lambda r: log["requests"].append(r.url))
    pg.on("console", lambda m: log["errors"].append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: log["errors"].append(str(e)))
    pg.goto(report["html"].as_uri())
    pg.wait_for_function("document.documentElement.dataset.ready === '1'")
    pg.log = log
    yield pg
    context.close()


def shown(page) -> int:
    return page.locator("#timeline rect.pred").count()


def test_timeline_slider_and_player(page, report, tmp_path):
    preds = report["pred"]
    video = max(preds, key=lambda v: len(preds[v]))
    scores = [p["score"] for p in preds[video]]
    assert len({p["label"] for p in preds[video]}) >= 3 and min(scores) < 0.2 and max(scores) > 0.8

    page.locator(f'#video-list tr[data-video="{video}"]').click()
    page.wait_for_selector("#timeline rect.pred")
    # exactly the predictions above the threshold are drawn, and the ground truth
    assert shown(page) == sum(s >= 0.3 for s in scores)
    assert page.locator("#timeline rect.gt").count() == report_gt_count(report, video)
    assert page.locator("#shown-count").inner_text() == f"{shown(page)} of {len(scores)} predictions shown"
    # the slider: a higher threshold draws fewer segments, exactly those above it
    for thr in (0.7, 0.0, 0.45):
        page.locator("#threshold").fill(str(thr))
        assert page.locator("#threshold-value").inner_text() == f"{thr:.2f}"
        assert shown(page) == sum(s >= thr for s in scores), thr
    assert sum(s >= 0.7 for s in scores) < sum(s >= 0.45 for s in scores) < len(scores)
    for _ in range(15):  # the keyboard moves it too: 0.45 -> 0.30 in steps of 0.01
        page.locator("#threshold").press("ArrowLeft")
    assert page.locator("#threshold-value").inner_text() == "0.30" and shown(page) == sum(s >= 0.3 for s in scores)

    # the player: the file plays in this browser (H.264), a click on a segment seeks to its start
    page.wait_for_function("document.getElementById('player').readyState >= 2", timeout=20_000)
    assert page.evaluate("document.getElementById('player').error") is None
    duration = page.evaluate("document.getElementById('player').duration")
    assert duration > 5
    i, start = clickable_segment(page, video)
    seg = page.locator(f'#timeline rect.pred[data-i="{i}"]')
    seg.hover()
    tip = page.locator("#tooltip").inner_text()
    assert f"start {start:.2f} s" in tip and "score" in tip
    seg.click()
    page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {start}) < 0.01")
    assert_playhead_at(page, start)
    # a ground-truth segment seeks too
    gt_start = first_gt_start(page, video)
    page.locator("#timeline rect.gt").first.click()
    page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {gt_start}) < 0.01")
    # playing moves the playhead with currentTime
    page.evaluate("document.getElementById('player').play()")
    page.wait_for_function(f"document.getElementById('player').currentTime > {gt_start} + 0.3")
    page.evaluate("document.getElementById('player').pause()")
    page.wait_for_timeout(100)
    assert_playhead_at(page, page.evaluate("document.getElementById('player').currentTime"))

    page.screenshot(path=str(tmp_path / "report_video.png"), full_page=True)
    assert (tmp_path / "report_video.png").stat().st_size > 10_000
    assert not page.log["errors"], page.log["errors"]
    assert all(u.startswith("file://") for u in page.log["requests"]), [u for u in page.log["requests"] if not u.startswith("file://")]


def test_summary_tables_show_the_evaluators_numbers(page, report, tmp_path):
    gt = load_ground_truth(report["anno"], "validation")
    ref = evaluate_detections(gt, load_predictions(report["pred_file"]))
    cells = page.locator("#map-table tbody td").all_inner_texts()
    assert cells == ["mAP (%)", *[f"{100 * v:.2f}" for v in ref["mAP"]], f"{100 * ref['average_mAP']:.2f}"]
    # per-class table: sorted by average AP, then by name on a click on "Class"
    first_col = lambda: page.locator("#class-table tbody tr td:first-child").all_inner_texts()  # noqa: E731
    by_avg = sorted(ref["classes"], key=lambda c: -sum(ref["per_class_ap"][c]))
    assert first_col()[0] == by_avg[0]
    page.locator("#class-table th", has_text="Class").click()
    assert first_col() == sorted(ref["classes"])
    # the error analysis redraws for another threshold and shows the removal table
    page.locator("#error-tiou").select_option("avg")
    assert page.locator("#removal-table tbody tr").count() == 7
    page.screenshot(path=str(tmp_path / "report_overview.png"), full_page=True)
    assert not page.log["errors"], page.log["errors"]


def report_gt_count(report, video) -> int:
    db = json.loads(Path(report["anno"]).read_text())["database"]
    return len(db[video]["annotations"])


def video_data(page, video) -> dict:
    return page.evaluate(
        "(name) => { const v = adatadReport.data.videos.find(x => x.name === name); "
        "return JSON.parse(document.getElementById(v.el).textContent); }",
        video,
    )


def first_gt_start(page, video) -> float:
    i = int(page.locator("#timeline rect.gt").first.get_attribute("data-i"))
    return video_data(page, video)["gs"][i]


def clickable_segment(page, video) -> tuple[int, float]:
    """A shown prediction starting after 1 s that no higher-scored (drawn later) prediction of its row covers at
    its centre, so a click on it reaches it."""
    d = video_data(page, video)
    thr = float(page.locator("#threshold").input_value())
    n = sum(s >= thr for s in d["pp"])
    for i in range(n):
        if d["ps"][i] < 1.0:
            continue
        centre = (d["ps"][i] + d["pe"][i]) / 2
        covered = any(d["pc"][j] == d["pc"][i] and d["ps"][j] <= centre <= d["pe"][j] for j in range(i))
        if not covered:
            return i, d["ps"][i]
    raise AssertionError("no clickable prediction")


def assert_playhead_at(page, t: float) -> None:
    line = page.locator("#timeline line.playhead")
    width = float(page.locator("#timeline").get_attribute("width"))
    duration = float(page.locator("#timeline").get_attribute("data-duration"))
    assert float(line.get_attribute("x1")) == pytest.approx(t / duration * width, abs=1.0)
