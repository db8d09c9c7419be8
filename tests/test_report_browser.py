"""The report in a real browser: headless Chromium over the DevTools protocol."""

from __future__ import annotations

import re

import pytest
from PIL import Image, ImageStat

from test_report_study import EVIL_TASK, write_synthetic_run
from transferlab.report import write_report
from transferlab.report.browser import check_page, find_chromium

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        find_chromium() is None,
        reason="no Chromium found (PATH or TRANSFERLAB_CHROMIUM); Debian: apt-get install "
        "chromium, which `make test` does when apt is usable",
    ),
]
pytest.importorskip("websocket", reason="websocket-client is not installed (test extra)")

# Clicks a column header of the regime table and reads the column back, twice.
SORT_JS = """(() => {
  const table = document.querySelector("#table-regimes table");
  const header = Array.from(table.tHead.rows[0].cells).findIndex(h => h.textContent.includes("mean"));
  const column = () => Array.from(table.tBodies[0].rows).map(r => parseFloat(r.cells[header].dataset.sort));
  const before = column();
  table.tHead.rows[0].cells[header].querySelector("button").click();
  const up = column();
  table.tHead.rows[0].cells[header].querySelector("button").click();
  return {before, up, down: column(), state: table.tHead.rows[0].cells[header].getAttribute("aria-sort")};
})()"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    run = write_synthetic_run(folder / "run", failed_jobs=1)
    report = write_report(run)
    check = check_page(
        report,
        screenshot=folder / "report.png",
        pdf=folder / "report.pdf",
        evaluate={"sort": SORT_JS},
    )
    return check, folder, report


def test_report_loads_without_errors_requests_or_dialogs(rendered):
    check = rendered[0]
    assert check.console_errors == []
    assert check.console_warnings == []
    assert check.requests == []
    assert check.dialogs == []


def test_figures_decode_and_tables_are_filled(rendered):
    facts = rendered[0].facts
    assert facts["sections"][0] == "summary" and facts["sections"][-1] == "problems"
    assert facts["figures"] == facts["figures_decoded"] == facts["figures_with_caption"] == 8
    # the tables of this study's report, among them the on/off summary per source task and the
    # language roles by family
    assert facts["tables"] == 11 and min(facts["table_rows"]) >= 2
    assert facts["toc_links"] >= len(facts["sections"])
    # laid out for a laptop screen: nothing wider than the 1280 px viewport
    assert facts["width"] <= 1280
    assert facts["overflowing"] == []


def test_user_strings_show_as_text(rendered):
    facts = rendered[0].facts
    assert EVIL_TASK in facts["text"]
    assert "synthetic & <i>study</i>" in facts["text"]
    assert facts["scripts"] == 1


def test_tables_sort_by_their_numbers(rendered):
    result = rendered[0].values["sort"]
    assert result["up"] == sorted(result["before"])
    assert result["down"] == sorted(result["before"], reverse=True)
    assert result["state"] == "descending"


def test_screenshot_and_print_are_not_blank(rendered):
    _, folder, _ = rendered
    image = Image.open(folder / "report.png").convert("L")
    assert image.width == 1280 and image.height > 3000
    assert max(ImageStat.Stat(image).stddev) > 20  # text and figures, not a blank page
    pdf = (folder / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 3  # printed over several pages


def test_print_layout_fits_an_a4_page(rendered):
    _, _, report = rendered
    printed = check_page(report, media="print", viewport=(794, 1123))  # A4 at 96 dpi
    assert printed.problems == []
    assert printed.facts["width"] <= 794
    assert printed.facts["overflowing"] == []
    assert printed.facts["figures_decoded"] == 8


def test_the_check_catches_what_a_broken_page_does(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><title>x</title><img src='http://192.0.2.1/x.png'>"
        "<script>console.error('boom'); alert('hi'); missing();</script>"
    )
    check = check_page(page)
    assert "http://192.0.2.1/x.png" in check.requests
    assert "boom" in check.console_errors
    assert any("missing is not defined" in e for e in check.console_errors)
    assert check.dialogs == ["alert: hi"]
