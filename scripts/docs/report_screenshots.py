"""Screenshots of an HTML report for the README (docs/report_overview.png, docs/report_video.png).

    python scripts/docs/report_screenshots.py exps/demo/report.html --video VIDEO --out docs/

Needs playwright and chromium on PATH (scripts/ci/install_browser.sh). The overview is the page from the top to the end
of the error analysis; the video shot opens VIDEO, seeks the player to its best-scored true positive (a click on the
segment, as a user does) and hovers that segment so that the tooltip shows.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", type=Path)
    ap.add_argument("--video", required=True, help="the video to open for the second screenshot")
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--width", type=int, default=1400)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page(viewport={"width": args.width, "height": 900}, device_scale_factor=1)
        page.goto(args.report.resolve().as_uri())
        page.wait_for_function("document.documentElement.dataset.ready === '1'")
        bottom = page.evaluate(
            "() => { const e = document.getElementById('errors') || document.getElementById('summary'); "
            "return e.getBoundingClientRect().bottom + window.scrollY + 8; }"
        )
        page.set_viewport_size({"width": args.width, "height": int(bottom)})
        page.screenshot(path=str(args.out / "report_overview.png"), clip={"x": 0, "y": 0, "width": args.width, "height": bottom})
        page.set_viewport_size({"width": args.width, "height": 900})
        page.locator(f'#video-list tr[data-video="{args.video}"]').click()
        page.wait_for_selector("#timeline rect.pred")
        has_player = page.locator("#player").count() > 0
        if has_player:
            page.wait_for_function("document.getElementById('player').readyState >= 2")
        # the best-scored true positive (predictions are drawn best last, so it is on top)
        seg = page.locator('#timeline rect.pred[fill="#33a02c"]').last
        if seg.count() == 0:
            seg = page.locator("#timeline rect.pred").last
        seg.click()
        if has_player:
            page.wait_for_function("document.getElementById('player').readyState >= 3 && !document.getElementById('player').seeking")
            page.wait_for_timeout(1000)
        page.wait_for_timeout(300)
        page.set_viewport_size({"width": args.width, "height": 1200})
        page.evaluate("() => { document.getElementById('viewer').scrollIntoView(); window.scrollBy(0, -10); }")
        seg.hover()
        page.wait_for_timeout(200)
        box = page.locator("#viewer").bounding_box()
        tip = page.locator("#tooltip").bounding_box()
        bottom = max(box["y"] + box["height"], (tip["y"] + tip["height"]) if tip else 0) + 6
        page.screenshot(
            path=str(args.out / "report_video.png"),
            clip={"x": box["x"] - 6, "y": box["y"] - 6, "width": box["width"] + 12, "height": bottom - box["y"] + 6},
        )
        browser.close()
    print(f"wrote {args.out / 'report_overview.png'} and {args.out / 'report_video.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
