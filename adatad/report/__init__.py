"""The HTML report of a detection run (``adatad report``, written by ``adatad test`` and ``adatad infer --html``):
one self-contained file with the mAP, the DETAD error analysis and a timeline + player per video. No torch."""

from adatad.report.build import VIDEO_EXTENSIONS, build_report_data, find_video_files, render_html, write_report

__all__ = ["VIDEO_EXTENSIONS", "build_report_data", "find_video_files", "render_html", "write_report"]
