"""Benchmark: the HTML report of a THUMOS-14-sized run, 211 videos x 2,000 predictions, built and opened in a browser.

Run:  python benchmarks/report.py        (needs playwright and chromium on PATH: scripts/ci/install_browser.sh)
Writes benchmarks/results/report.json and .md.

Inputs: the real THUMOS-14 test ground truth (``adatad/data/thumos14/`` CSVs through
``adatad.data.annotations.convert_thumos``, subset "validation": 211 videos, 3,329 instances) and seeded synthetic
predictions, 2,000 per video (jittered copies of the ground truth plus random boxes, as ``benchmarks/eval_map.py``
makes them). No video files: the page is the same with them (a relative path per video), minus the player.

Measured:
- building the report (``adatad.report.write_report``: load, evaluate, error analysis, HTML) in this process;
- the file size;
- in headless Chromium (Debian's, driven by Playwright), ``--runs`` times, each in a fresh browser context from the
  file on disk: the page built (navigation start to the end of its script: header, mAP and per-class tables,
  error-analysis charts, the 211-row video list; the page's ``adatadReport.readyMs``), *first render* = first
  contentful paint (the built page painted), and the same seen from outside (``page.goto`` + waiting for the page to
  be built); then opening the video with the most
  predictions (its JSON parsed and its timeline drawn at the default threshold 0.3), and moving the score slider to
  0 (all 2,000 segments drawn), each timed inside the page.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from adatad.data.annotations import convert_thumos, thumos14_csv_dir
from adatad.report import write_report

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_map import cpu_name, synthetic_predictions  # noqa: E402  (a sibling script, not a package)

REPO = Path(__file__).resolve().parents[1]
PER_VIDEO = 2_000


def measure_browser(html: Path, runs: int) -> dict:
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    if exe is None:
        raise SystemExit("no chromium on PATH: run scripts/ci/install_browser.sh")
    out: dict = {"runs": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe)
        out["browser"] = f"Chromium {browser.version} (headless, Playwright)"
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(120_000)
            t0 = time.perf_counter()
            page.goto(html.as_uri())
            page.wait_for_function("document.documentElement.dataset.ready === '1'")
            outside = time.perf_counter() - t0
            page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0")
            inside = page.evaluate(
                "() => ({ready: adatadReport.readyMs, "
                "fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null, "
                "heap: performance.memory ? performance.memory.usedJSHeapSize : null})"
            )
            video = page.evaluate("() => adatadReport.data.videos.reduce((a, b) => (b.n_pred > a.n_pred ? b : a)).name")
            page.evaluate("(name) => adatadReport.openVideo(name)", video)
            open_ms = page.evaluate("() => adatadReport.lastOpenMs()")
            shown_default = page.locator("#timeline rect.pred").count()
            slider_ms = page.evaluate(
                "() => { const s = document.getElementById('threshold'); s.value = 0; const t = performance.now();"
                " s.dispatchEvent(new Event('input')); document.getElementById('timeline').getBBox();"
                " return performance.now() - t; }"
            )
            shown_all = page.locator("#timeline rect.pred").count()
            out["runs"].append(
                {
                    "page_built_ms": inside["ready"],
                    "first_contentful_paint_ms": inside["fcp"],
                    "goto_until_built_s": outside,
                    "open_video_ms": open_ms,
                    "slider_to_0_ms": slider_ms,
                    "video": video,
                    "segments_shown_at_0.3": shown_default,
                    "segments_shown_at_0": shown_all,
                    "js_heap_mb": inside["heap"] / 1e6 if inside["heap"] else None,
                }
            )
            context.close()
        browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--thumos-dir", type=Path, default=thumos14_csv_dir())
    ap.add_argument("--per-video", type=int, default=PER_VIDEO, help="predictions per video (default 2000)")
    ap.add_argument("--runs", type=int, default=5, help="browser runs (median reported)")
    ap.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--keep", type=Path, help="keep the generated inputs and report.html in this folder")
    args = ap.parse_args(argv)

    load_avg = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    ann, _, _ = convert_thumos(csv_dir=args.thumos_dir)
    test = {"database": {v: info for v, info in ann["database"].items() if info["subset"] == "validation"}}
    n_videos = len(test["database"])
    preds = synthetic_predictions(test, n_videos * args.per_video)
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="report_bench_"))
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "annotations.json").write_text(json.dumps(ann))
    (tmp / "predictions.json").write_text(json.dumps(preds))
    html = tmp / "report.html"

    build = []
    for _ in range(3):
        t0 = time.perf_counter()
        write_report(html, tmp / "predictions.json", tmp / "annotations.json", subset="validation")
        build.append(time.perf_counter() - t0)
    size = html.stat().st_size
    browser = measure_browser(html, args.runs)
    runs = browser["runs"]

    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    from importlib.metadata import version

    record = {
        "command": "python benchmarks/report.py" + (f" --runs {args.runs}" if args.runs != 5 else ""),
        "date": datetime.date.today().isoformat(),
        "machine": f"{cpu_name()}, {platform.platform()}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} logical CPUs (shared with other jobs; 1-min load average {load_avg} at start)",
        "browser": browser["browser"],
        "playwright": version("playwright"),
        "workload": {
            "videos": n_videos,
            "predictions": sum(len(v) for v in preds["results"].values()),
            "ground_truth_instances": sum(len(v["annotations"]) for v in test["database"].values()),
            "classes": 20,
        },
        "file_bytes": size,
        "build_report_s": {"median": statistics.median(build), "all_runs": build},
        "browser_median": {
            "page_built_ms": med("page_built_ms"),
            "first_contentful_paint_ms": med("first_contentful_paint_ms"),
            "goto_until_built_s": med("goto_until_built_s"),
            "open_video_ms": med("open_video_ms"),
            "slider_to_0_ms": med("slider_to_0_ms"),
            "js_heap_mb": med("js_heap_mb") if all(r["js_heap_mb"] for r in runs) else None,
        },
        "browser_runs": runs,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "report.json").write_text(json.dumps(record, indent=2) + "\n")
    b = record["browser_median"]
    r0 = runs[0]
    md = [
        "# HTML report: size and time to first render",
        "",
        f"Command: `{record['command']}`  ",
        f"Date: {record['date']}  ",
        f"Machine: {record['machine']}  ",
        f"Browser: {record['browser']}, Playwright {record['playwright']}  ",
        f"Workload: {record['workload']['videos']} THUMOS-14 test videos (real ground truth, "
        f"{record['workload']['ground_truth_instances']:,} instances, 20 classes), "
        f"{record['workload']['predictions']:,} synthetic predictions ({args.per_video:,} per video), 5 tIoU thresholds",
        "",
        "| measure | value |",
        "| :--- | ---: |",
        f"| report.html size | {size / 1e6:.1f} MB |",
        f"| building it (`write_report`: load, mAP, error analysis, HTML), median of 3 | {record['build_report_s']['median']:.2f} s |",
        f"| page built: navigation start to the end of the page's script (tables, charts, 211-row list), median of {len(runs)} | "
        f"{b['page_built_ms']:.0f} ms |",
        f"| **first render**: navigation start to first contentful paint (the built page painted) | "
        f"**{b['first_contentful_paint_ms']:.0f} ms** |",
        f"| `page.goto` + waiting for the page to be built, seen from Python | {b['goto_until_built_s']:.2f} s |",
        f"| opening the video with the most predictions ({r0['video']}: JSON parsed, timeline drawn, "
        f"{r0['segments_shown_at_0.3']} segments at score >= 0.3) | {b['open_video_ms']:.0f} ms |",
        f"| score slider to 0 ({r0['segments_shown_at_0']:,} segments redrawn and laid out) | {b['slider_to_0_ms']:.0f} ms |",
    ]
    if b["js_heap_mb"]:
        md.append(f"| JavaScript heap after opening the page (Chromium's coarse `performance.memory`) | {b['js_heap_mb']:.0f} MB |")
    md += [
        "",
        "Per-run values are in `report.json` (`page_built_ms`: the page's own `performance.now()` at the end of its "
        "script; `first_contentful_paint_ms`: the browser's paint timing). "
        "Timelines are not part of the first render: a video's JSON element is parsed and its timeline drawn when it "
        "is opened.",
        "",
    ]
    (args.out_dir / "report.md").write_text("\n".join(md))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
