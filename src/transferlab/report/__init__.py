"""The single-file HTML report of a transfer study."""

from transferlab.report.browser import require_chromium, screenshot_report
from transferlab.report.build import build_report, write_report

__all__ = ["build_report", "require_chromium", "screenshot_report", "write_report"]
