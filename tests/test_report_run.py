"""The report that `transferlab run` itself writes, from the tables it hands over in memory."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from study_tiny import write_study
from test_report import SECTIONS, Page
from transferlab.analysis import export_results, read_results, run_analysis
from transferlab.cli import main


@pytest.fixture(scope="module")
def run_out(tmp_path_factory, tiny_model_dir) -> Path:
    folder = tmp_path_factory.mktemp("run")
    study = write_study(folder, tiny_model_dir)
    argv = sys.argv
    sys.argv = ["transferlab", "run", str(study)]
    try:
        main()  # returns on success (it exits only with an error code)
    finally:
        sys.argv = argv
    return folder / "out"


def _figures(html: str) -> list[str]:
    return re.findall(r'src="(data:[^"]+)"', html)


def test_the_report_run_wrote_shows_the_analysis_of_its_own_tables(run_out):
    html = (run_out / "report.html").read_text(encoding="utf-8")
    page = Page(html)
    assert page.sections == SECTIONS
    expected = run_analysis(read_results(run_out)).tables["regimes"]
    rows = page.tables["table-regimes"]
    assert [row[0]["text"] for row in rows] == list(expected["regime"])
    assert [int(float(row[2]["sort"])) for row in rows] == list(expected["n"])
    assert [float(row[3]["sort"]) for row in rows] == pytest.approx(list(expected["mean"]))
    summary = html[html.index('id="summary"') : html.index('id="regimes"')]
    assert "tiny" in summary and "train" in summary  # the run's own facts and timings
    # the report drawn from the in-memory tables equals the one drawn from the files
    from transferlab.report import build_report

    again = build_report(run_out)
    assert _figures(again) == _figures(html)
    assert Page(again).tables["table-regimes"] == rows


def test_results_csv_is_the_paper_export_of_the_per_seed_table(run_out, tmp_path):
    again = tmp_path / "results.csv"
    export_results(run_out / "results_per_seed.csv", again)
    assert again.read_bytes() == (run_out / "results.csv").read_bytes()
