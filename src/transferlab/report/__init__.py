"""The single-file HTML report of a transfer study."""

from transferlab.report.browser import require_chromium, screenshot_report
from transferlab.report.build import build_report, render_report, write_html, write_report

__all__ = [
    "build_report",
    "render_report",
    "require_chromium",
    "screenshot_report",
    "write_html",
    "write_report",
]
