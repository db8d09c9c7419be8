"""The HTML report: contents, numbers from the analysis, escaping, self-containment, bad input."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from test_report_study import EVIL_TASK, write_synthetic_run
from transferlab.analysis import export_results, read_results, run_analysis
from transferlab.errors import UserError
from transferlab.report import build_report, write_report

SECTIONS = [
    "summary",
    "regimes",
    "heatmaps",
    "matrices",
    "roles",
    "onoff",
    "variance",
    "consistency",
    "harm",
    "problems",
]


class Page(HTMLParser):
    """The parts of a report the tests look at: sections, images, tables, cells, scripts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[dict[str, str]] = []
        self.tables: dict[str, list[list[dict[str, str]]]] = {}
        self.captions: list[str] = []
        self.scripts = 0
        self.links: list[str] = []
        self.meta: dict[str, str] = {}
        self._table: str | None = None
        self._in_body = False
        self._cell: dict[str, str] | None = None
        self._caption: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "div" and "table-wrap" in attrs.get("class", ""):
            self._table = attrs["id"]
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.tables[self._table].append([])
        elif tag == "td" and self._in_body:
            self._cell = {"text": "", "sort": attrs.get("data-sort"), "class": attrs.get("class")}
        elif tag == "figcaption":
            self._caption = []
        elif tag == "script":
            self.scripts += 1
        elif tag == "meta" and "http-equiv" in attrs:
            self.meta[attrs["http-equiv"]] = attrs["content"]
        for name in ("href", "src"):
            if name in attrs:
                self.links.append(attrs[name])

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.tables[self._table][-1].append(self._cell)
            self._cell = None
        elif tag == "figcaption":
            self.captions.append("".join(self._caption))
            self._caption = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._caption is not None:
            self._caption.append(data)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A two-model study with one adapter missing and one failed job."""
    return write_synthetic_run(
        tmp_path_factory.mktemp("study") / "run",
        drop_source=("tiny-b", "arc", "zh"),
        failed_jobs=1,
    )


@pytest.fixture(scope="module")
def report(run_dir) -> tuple[Path, str, Page]:
    path = write_report(run_dir)
    html = path.read_text(encoding="utf-8")
    return path, html, Page(html)


def test_report_has_every_section_with_captioned_figures_and_filled_tables(run_dir, report):
    path, _, page = report
    assert path == run_dir / "report.html"
    assert page.sections == SECTIONS
    # 2 heatmaps, one matrix per model, 2 role scatters, on/off-task, variance
    assert len(page.images) == 8
    assert len(page.captions) == 8
    assert all(len(caption) > 100 for caption in page.captions)
    assert all(len(rows) > 0 and all(rows) for rows in page.tables.values())
    assert {"table-models", "table-cells", "table-regimes", "table-roles-language",
            "table-roles-task", "table-onoff", "table-variance", "table-consistency",
            "table-harm"} <= set(page.tables)  # fmt: skip


def test_regime_table_shows_the_analysis_numbers(run_dir, report):
    _, _, page = report
    expected = run_analysis(read_results(run_dir)).tables["regimes"].set_index("regime")
    rows = {row[0]["text"]: row for row in page.tables["table-regimes"]}
    assert list(rows) == ["MT-ML", "MT-CL", "CT-ML", "CT-CL", "transfer"]
    for regime, row in rows.items():
        n, mean, ci, median = (cell["sort"] for cell in row[2:6])
        assert int(float(n)) == expected.loc[regime, "n"]
        assert float(mean) == pytest.approx(expected.loc[regime, "mean"])
        assert float(median) == pytest.approx(expected.loc[regime, "median"])
        assert float(ci) == pytest.approx(expected.loc[regime, "ci_low"])
        low, high = expected.loc[regime, ["ci_low", "ci_high"]]
        assert row[4]["text"] == f"[{low:+.2f}, {high:+.2f}]".replace("-", "\u2212")
    means = {regime: float(row[3]["sort"]) for regime, row in rows.items()}
    # the synthetic study's effects: own cell ≫ other language > other task > 0 > both other
    assert means["MT-ML"] > means["MT-CL"] > means["CT-ML"] > 0 > means["CT-CL"]
    assert "harm" in rows["CT-CL"][3]["class"] and "gain" in rows["MT-ML"][3]["class"]


def test_breakdown_tables_show_the_analysis_numbers(run_dir, report):
    _, html, page = report
    expected = run_analysis(read_results(run_dir)).tables
    family = {row[0]["text"]: row for row in page.tables["table-roles-family"]}
    assert list(family) == ["Chinese", "Germanic", "Indic"]  # en, de, hi, zh
    assert family["Germanic"][1]["text"] == "de, en"
    roles = expected["roles_language_by_family"].set_index("family")
    for name, row in family.items():
        assert float(row[2]["sort"]) == pytest.approx(roles.loc[name, "donor"])
        assert float(row[3]["sort"]) == pytest.approx(roles.loc[name, "recipient"])
    summary = expected["onoff_task_summary"].set_index("source_task")
    for row in page.tables["table-onoff-task"]:
        task = row[0]["text"]
        assert [float(cell["sort"]) for cell in row[1:]] == pytest.approx(
            summary.loc[task].tolist()
        )
    # 4 languages give 3 on-task cells per adapter but only 4 off-task ones: below the rule
    assert "table-onoff-family" not in page.tables
    assert "table-mtcl-task-group" not in page.tables  # no task groups without being asked


def test_task_groups_from_the_caller_or_the_study(run_dir, tmp_path):
    grouped = Page(html := build_report(run_dir, task_groups={"g": ["arc"]}))
    expected = run_analysis(read_results(run_dir), task_groups={"g": ["arc"]}).tables
    mtcl = {row[0]["text"]: row for row in grouped.tables["table-mtcl-task-group"]}
    assert list(mtcl) == ["all", "g", "rest"]
    for subset, want in expected["mtcl_by_task_group"].set_index("subset").iterrows():
        assert [float(cell["sort"]) for cell in mtcl[subset][1:]] == pytest.approx(want.tolist())
    assert "Task groups: g = arc" in html
    assert "For each task group also the transfer rows whose source or target task" in html
    roles = grouped.tables["table-roles-task-group"]
    assert [(row[0]["text"], row[1]["text"]) for row in roles][:2] == [("g", "de"), ("g", "en")]
    correlation = grouped.tables["table-donor-correlation"][0]
    assert [cell["text"] for cell in correlation[:2]] == ["g", "not g"]
    want = expected["donor_correlation_by_task_group"].iloc[0]
    assert float(correlation[2]["sort"]) == pytest.approx(want["spearman_rho"])
    # a run directory's study config carries its task groups into a rewritten report
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("results_per_seed.csv", "items.csv.gz"):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    info = json.loads((run_dir / "run_info.json").read_text())
    info["config"]["task_groups"] = {"g": ["arc"]}
    (copy / "run_info.json").write_text(json.dumps(info))
    assert "table-mtcl-task-group" in Page(build_report(copy)).tables
    with pytest.raises(UserError, match="task group 'g': no task 'arx'"):
        build_report(run_dir, task_groups={"g": ["arx"]})


def test_user_strings_are_escaped(report):
    _, html, page = report
    assert EVIL_TASK not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert page.scripts == 1  # the sorting script only
    assert "&lt;i&gt;study&lt;/i&gt;" in html and "<i>study</i>" not in html
    assert "NaN loss &lt;b&gt;0&lt;/b&gt;" in html
    # figures are base64 data, so text inside them can never reach the HTML parser
    assert all(img["src"].startswith("data:image/svg+xml;base64,") for img in page.images)


def test_report_is_self_contained_and_its_policy_admits_only_its_own_code(report):
    _, html, page = report
    assert all(link.startswith(("#", "data:")) for link in page.links)
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:|//)", html)
    assert "@import" not in html and "url(" not in html
    policy = page.meta["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "img-src data:" in policy
    for tag in ("style", "script"):
        body = re.search(rf"<{tag}>(.*?)</{tag}>", html, re.S).group(1)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy
    for img in page.images:
        svg = base64.b64decode(img["src"].split(",", 1)[1])
        assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
        assert not re.search(rb"(?:xlink:)?href=\"(?!#|data:)", svg)


def test_failed_jobs_and_missing_adapters_are_listed(report):
    _, html, _ = report
    problems = html[html.index('id="problems"') :]
    assert "tiny-b: no results for an adapter trained on arc:zh" in problems
    assert "failed train job" in problems
    assert "2 problem(s)" in problems


def test_cells_whose_bootstrap_interval_contains_zero_are_counted(run_dir, report):
    _, html, _ = report
    cell_ci = run_analysis(read_results(run_dir)).tables["cell_ci"]
    n_zero = int(cell_ci["contains_zero"].sum())
    assert 0 < n_zero < len(cell_ci)
    assert f"{n_zero} of {len(cell_ci)} cells have an item-bootstrap CI containing 0" in html


def test_summary_reads_the_run_info(report):
    _, html, page = report
    summary = html[html.index('id="summary"') : html.index('id="regimes"')]
    facts = (
        "12 min 30 s",
        "17, 42",
        "torch 2.13.0",
        "r = 32, alpha = 64",
        "1 failed",
        "train 8 min 20 s",
        "evaluate 1 h 05 min, train 1 h 30 min",  # job time over all runs, not the last run's
    )
    for fact in facts:
        assert fact in summary
    models = {row[0]["text"]: row for row in page.tables["table-models"]}
    assert models["tiny-b"][5]["text"] == "7"  # adapters with results
    assert models["tiny-a"][4]["text"] == hashlib.sha256(b"tiny-a").hexdigest()[:16]


def test_paper_schema_table_without_items_or_run_info(run_dir, tmp_path):
    table = tmp_path / "paper" / "transfer_results.csv"
    table.parent.mkdir()
    export_results(run_dir, table)
    path = write_report(table)
    assert path == table.parent / "report.html"
    page = Page(html := path.read_text(encoding="utf-8"))
    assert page.sections == SECTIONS
    assert "no cell carries an item-bootstrap interval" in html
    assert "aggregated in the table" in html  # seeds are not in the paper schema


def test_metric_choice_changes_the_numbers(run_dir, report):
    _, headline, _ = report
    accuracy = build_report(run_dir, metric="delta_score")
    assert "Δ acc_norm (delta_score_norm_mean)" in headline
    assert "Δ acc (delta_score_mean)" in accuracy
    # same inputs, same figures: the SVGs are byte-identical across builds
    figures = re.findall(r'src="(data:[^"]+)"', headline)
    assert len(figures) == 8
    again = re.findall(r'src="(data:[^"]+)"', build_report(run_dir))
    assert again == figures
    with pytest.raises(UserError, match="no column 'delta_scor'"):
        build_report(run_dir, metric="delta_scor")


@pytest.mark.parametrize("problem", ["no_source", "out_is_dir", "bad_run_info"])
def test_bad_input_is_one_user_error_and_writes_nothing(run_dir, tmp_path, problem):
    source, out = run_dir, tmp_path / "out" / "report.html"
    if problem == "no_source":
        source = tmp_path / "missing"
    elif problem == "out_is_dir":
        out = tmp_path
    else:
        source = tmp_path / "copy"
        source.mkdir()
        for name in ("results_per_seed.csv", "items.csv.gz"):
            (source / name).write_bytes((run_dir / name).read_bytes())
        (source / "run_info.json").write_text("{not json")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(UserError) as error:
        write_report(source, out)
    assert str(source if problem != "out_is_dir" else out) in str(error.value)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """One model, one task, two languages, one seed: most cross-cell analyses are undefined."""
    return write_synthetic_run(
        tmp_path_factory.mktemp("small") / "run",
        models=(("solo", "gemma", 0.27),),
        tasks=("arc",),
        languages=("en", "hi"),
        seeds=(42,),
        n_items=12,
    )


def test_small_study_says_what_it_cannot_show(small_run):
    page = Page(html := build_report(small_run))
    assert page.sections == SECTIONS
    assert "Not available for this study: the study has a single task." in html
    assert len(page.images) >= 3  # language heatmap, the matrix, the language roles
    assert "Every planned cell has results; no job failed." in html


def test_cli_writes_the_report_and_reports_bad_input_in_one_line(small_run, tmp_path):
    command = [str(Path(sys.executable).parent / "transferlab"), "report"]
    out = tmp_path / "r.html"
    done = subprocess.run(
        [*command, str(small_run), "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Report: {out}"
    assert "<!DOCTYPE html>" in out.read_text(encoding="utf-8")
    failed = subprocess.run([*command, str(tmp_path / "nope")], capture_output=True, text=True)
    assert failed.returncode == 2
    assert len(failed.stderr.strip().splitlines()) == 1
    assert "nope" in failed.stderr


def test_screenshot_without_chromium_fails_before_writing(small_run, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from transferlab.cli import app

    monkeypatch.setenv("TRANSFERLAB_CHROMIUM", str(tmp_path / "no-such-chromium"))
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(
        app, ["report", str(small_run), "--out", str(out), "--screenshot", str(tmp_path / "s.png")]
    )
    assert isinstance(result.exception, UserError)
    assert "chromium" in str(result.exception)
    assert not (tmp_path / "out").exists()
