"""The shipped reference matrices (examples/gemma-270m-suite, examples/smollm2-135m-suite): each
is a complete study, the Gemma one loads and analyses, and the regime table README.md prints is
what its per-seed file gives."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_runner import run_cli
from transferlab.analysis import read_results, run_analysis
from transferlab.config import load_study

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "gemma-270m-suite"
EXAMPLES = [EXAMPLE, REPO / "examples" / "smollm2-135m-suite"]
REGIMES = ["MT-ML", "MT-CL", "CT-ML", "CT-CL"]
# | MT-ML | 9 | +9.44 | [+6.11, +12.67] | +10.00 | 100.0 | 0.0 |
ROW = re.compile(
    r"^\| (?P<regime>MT-ML|MT-CL|CT-ML|CT-CL|transfer) \| (?P<n>\d+) \| (?P<mean>[+−-]?\d+\.\d\d) "
    r"\| \[(?P<low>[+−-]?\d+\.\d\d), (?P<high>[+−-]?\d+\.\d\d)\] \| (?P<median>[+−-]?\d+\.\d\d) "
    r"\| (?P<pos>\d+\.\d) \| (?P<harm>\d+\.\d) \|$"
)


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def readme_regimes() -> dict[str, dict[str, float]]:
    """Return the example's regime table as README.md prints it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## What transfer looks like in a 270M multilingual model") :]
    rows = {}
    for line in section.splitlines():
        if match := ROW.match(line):
            rows[match["regime"]] = {
                k: _number(v) if k != "regime" else v for k, v in match.groupdict().items()
            }
        if rows and line.startswith("## "):
            break
    return rows


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_the_example_is_a_complete_study(example):
    study = load_study(example / "study.yaml")
    cells = len(study.tasks) * len(study.languages)
    per_seed = pd.read_csv(example / "results_per_seed.csv")
    assert len(per_seed) == cells * cells * len(study.seeds)
    assert set(per_seed["n_items"]) == {study.evaluation.items_per_target} and cells >= 9
    assert set(per_seed["model_name"]) == {study.models[0].ref}
    with gzip.open(example / "items.csv.gz", "rt", encoding="utf-8") as handle:
        items = pd.read_csv(handle)
    assert len(items) == (1 + cells * len(study.seeds)) * cells * study.evaluation.items_per_target
    info = json.loads((example / "run_info.json").read_text(encoding="utf-8"))
    assert info["jobs"]["failed"] == [] and info["jobs"]["pending"] == 0
    assert "<html" in (example / "report.html").read_text(encoding="utf-8")[:500].lower()


def test_analyze_reads_the_example_and_prints_its_regimes(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "analyze", EXAMPLE, "--out", tmp_path / "a")
    assert code == 0, err
    written = pd.read_csv(tmp_path / "a" / "regimes.csv")
    assert list(written["regime"]) == [*REGIMES, "transfer"]
    cell_ci = pd.read_csv(tmp_path / "a" / "cell_ci.csv")  # items.csv.gz was read
    per_seed = pd.read_csv(EXAMPLE / "results_per_seed.csv")
    assert len(cell_ci) == len(per_seed) / per_seed["seed"].nunique()  # one row per cell
    assert (cell_ci["ci_low"] <= cell_ci["delta"]).all()
    assert (cell_ci["delta"] <= cell_ci["ci_high"]).all()
    for regime in REGIMES:
        assert re.search(rf"^\s*{regime}\s+\d+\s", out, re.M), out


def test_readme_regime_table_is_reproduced_from_the_per_seed_file():
    printed = readme_regimes()
    assert list(printed) == [*REGIMES, "transfer"]
    per_seed = pd.read_csv(EXAMPLE / "results_per_seed.csv")
    keys = ["fine_tuned_dataset", "fine_tuned_language", "eval_dataset", "eval_language"]
    cells = per_seed.groupby([*keys, "regime"], as_index=False)["delta_score_norm"].mean()
    regimes = run_analysis(read_results(EXAMPLE)).tables["regimes"].set_index("regime")
    for regime, row in printed.items():
        delta = cells["delta_score_norm"]
        if regime != "transfer":
            delta = delta[cells["regime"] == regime]
        else:
            delta = delta[cells["regime"] != "MT-ML"]
        # the plain summary, recomputed here from the per-seed rows
        assert row["n"] == len(delta)
        assert row["mean"] == round(delta.mean(), 2)
        assert row["median"] == round(delta.median(), 2)
        assert row["pos"] == round(100 * (delta > 0).mean(), 1)
        assert row["harm"] == round(100 * (delta <= -1.0).mean(), 1)
        # the CI: the analysis' fixed-seed bootstrap over adapters
        assert (row["low"], row["high"]) == (
            round(regimes.loc[regime, "ci_low"], 2),
            round(regimes.loc[regime, "ci_high"], 2),
        )
    assert printed["MT-ML"]["low"] > 0, "the trained cells improve: the CI of MT-ML excludes 0"
    assert np.isfinite([r["mean"] for r in printed.values()]).all()
