"""`transferlab analyze` on a paper-shaped table (9 models × 44 × 44 = 17,424 rows) against an
independent computation of every table the reference study's released analysis reports.

The expected values are written here from the definitions (PROTOCOL.md §1b) with plain pandas
and scipy on the raw CSV, not with transferlab's functions.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from analysis_tables import paper_grid
from test_analysis_variance import statsmodels_fit
from transferlab.cli import app

CURATED = ["global_mmlu"]
FAMILIES = {
    "fr": "Romance", "es": "Romance", "pt": "Romance", "it": "Romance",
    "de": "Germanic", "en": "Germanic", "hi": "Indic", "bn": "Indic",
    "zh": "Chinese", "ar": "Arabic", "id": "Indonesian",
}  # fmt: skip
DELTA = "delta_score_norm_mean"


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    """The raw table (with independently derived columns) and the directory analyze wrote."""
    folder = tmp_path_factory.mktemp("paper")
    frame = paper_grid(shared=1.5)
    frame.to_csv(folder / "transfer_results.csv", index=False)
    start = time.perf_counter()
    done = CliRunner().invoke(
        app,
        [
            "analyze", str(folder / "transfer_results.csv"), "--out", str(folder / "out"),
            "--task-group", "curated=global_mmlu",
        ],
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    assert done.exit_code == 0, done.output
    same_task = frame["fine_tuned_dataset"] == frame["eval_dataset"]
    same_language = frame["fine_tuned_language"] == frame["eval_language"]
    size = frame["model_size"].str.removesuffix("B").astype(float)
    lower = frame["model_name"].str.lower()
    frame = frame.assign(
        regime=np.where(
            same_task,
            np.where(same_language, "MT-ML", "MT-CL"),
            np.where(same_language, "CT-ML", "CT-CL"),
        ),
        size=size,
        bucket=np.where(size <= 1.5, "S", np.where(size < 7, "M", "L")),
        family=np.select(
            [lower.str.contains(name) for name in ("llama", "qwen", "gemma")],
            ["llama", "qwen", "gemma"],
            "other",
        ),
    )
    return frame, folder / "out", elapsed


def read(out, name: str, **kwargs) -> pd.DataFrame:
    return pd.read_csv(out / f"{name}.csv", **kwargs)


def summary(delta: pd.Series, harm: bool = True) -> list[float]:
    values = [len(delta), delta.mean(), delta.median(), 100 * (delta > 0).mean()]
    return values + [100 * (delta <= -1.0).mean()] if harm else values


def test_row_counts_and_time(paper):
    frame, out, elapsed = paper
    assert len(frame) == 17_424
    regimes = read(out, "regimes").set_index("regime")["n"]
    assert regimes.to_dict() == {
        "MT-ML": 396, "MT-CL": 3960, "CT-ML": 1188, "CT-CL": 11880, "transfer": 17028
    }  # fmt: skip
    print(f"\nanalyze --task-group of the 17,424-row paper-shaped table: {elapsed:.1f} s")
    assert elapsed < 120


def test_global_uplift_and_regime_summary(paper):
    frame, out, _ = paper
    transfer = frame[frame["regime"] != "MT-ML"][DELTA]
    n, mean, median, positive = summary(transfer, harm=False)
    assert read(out, "uplift").iloc[0].tolist() == pytest.approx([mean, median, positive, n])
    regimes = read(out, "regimes").set_index("regime")
    for regime, rows in frame.groupby("regime"):
        assert regimes.loc[regime].tolist() == pytest.approx(summary(rows[DELTA]), rel=1e-12)
    assert regimes.loc["transfer"].tolist() == pytest.approx(summary(transfer), rel=1e-12)


def test_mtcl_harm_breakdown(paper):
    frame, out, _ = paper
    mtcl = frame[frame["regime"] == "MT-CL"]
    harm = read(out, "harm", keep_default_na=False).set_index(["grouping", "group"])
    by = {
        "target_language": "eval_language",
        "target_task": "eval_dataset",
        "size": "bucket",
        "family": "family",
    }
    expected = 0
    for grouping, column in by.items():
        for group, rows in mtcl.groupby(column):
            assert harm.loc[(grouping, group)].tolist() == pytest.approx(summary(rows[DELTA]))
            expected += 1
    assert len(harm) == expected == 11 + 4 + 3 + 3


def test_mtcl_by_construction_type(paper):
    frame, out, _ = paper
    mtcl = frame[frame["regime"] == "MT-CL"]
    curated = mtcl["eval_dataset"].isin(CURATED)
    table = read(out, "mtcl_by_task_group").set_index("subset")
    assert list(table.index) == ["all", "curated", "rest"]
    for subset, rows in (("all", mtcl), ("curated", mtcl[curated]), ("rest", mtcl[~curated])):
        assert table.loc[subset].tolist() == pytest.approx(summary(rows[DELTA]), rel=1e-12)


def roles(rows: pd.DataFrame, key: str) -> pd.Series:
    """Per model the mean Δ by `key`, then the mean across models."""
    return rows.groupby(["model_name", key])[DELTA].mean().groupby(key).mean()


def test_language_roles_overall_by_family_and_by_task_group(paper):
    frame, out, _ = paper
    mtcl = frame[frame["regime"] == "MT-CL"]
    donor, recipient = roles(mtcl, "fine_tuned_language"), roles(mtcl, "eval_language")
    table = read(out, "roles_language").set_index("language")
    assert table["donor"].to_dict() == pytest.approx(donor.to_dict(), rel=1e-12)
    assert table["recipient"].to_dict() == pytest.approx(recipient.to_dict(), rel=1e-12)
    family = read(out, "roles_language_by_family").set_index("family")
    by_family = pd.DataFrame({"donor": donor, "recipient": recipient}).groupby(FAMILIES).mean()
    assert sorted(family.index) == sorted(set(FAMILIES.values()))
    for column in ("donor", "recipient"):
        assert family[column].to_dict() == pytest.approx(by_family[column].to_dict(), rel=1e-12)
    # restricted to the curated task's targets and to the translated tasks' targets
    curated = mtcl["eval_dataset"].isin(CURATED)
    grouped = read(out, "roles_language_by_task_group").set_index(["task_group", "language"])
    donors = {}
    for name, rows in (("curated", mtcl[curated]), ("not curated", mtcl[~curated])):
        donors[name] = roles(rows, "fine_tuned_language")
        assert grouped.loc[name, "donor"].to_dict() == pytest.approx(donors[name].to_dict())
        want = roles(rows, "eval_language").to_dict()
        assert grouped.loc[name, "recipient"].to_dict() == pytest.approx(want)
    # Spearman ρ = Pearson r of the ranks; p from t with n − 2 degrees of freedom
    shared = donors["curated"].index.intersection(donors["not curated"].index)
    ranks = [donors[name][shared].rank() for name in ("curated", "not curated")]
    rho = np.corrcoef(*ranks)[0, 1]
    n = len(shared)
    p = 2 * stats.t.sf(abs(rho) * np.sqrt((n - 2) / (1 - rho**2)), n - 2)
    row = read(out, "donor_correlation_by_task_group").iloc[0]
    assert (row["task_group"], row["versus"], row["n_languages"]) == ("curated", "not curated", 11)
    assert [row["spearman_rho"], row["spearman_p"]] == pytest.approx([rho, p], rel=1e-9)


def test_task_roles(paper):
    frame, out, _ = paper
    ctml = frame[frame["regime"] == "CT-ML"]
    table = read(out, "roles_task").set_index("task")
    assert table["donor"].to_dict() == pytest.approx(roles(ctml, "fine_tuned_dataset").to_dict())
    assert table["recipient"].to_dict() == pytest.approx(roles(ctml, "eval_dataset").to_dict())


def test_pareto_profiles_family_summary_and_task_on_off_summary(paper):
    frame, out, _ = paper
    keys = ["model_name", "fine_tuned_dataset", "fine_tuned_language"]
    on_rows = frame[frame["regime"] == "MT-CL"]
    off_rows = frame[frame["regime"].isin(["CT-ML", "CT-CL"])]
    on = on_rows.groupby(keys)[DELTA].agg(["mean", "count"])
    off = off_rows.groupby(keys)[DELTA].agg(["mean", "count"])
    off_harm = off_rows.assign(harm=off_rows[DELTA] <= -1).groupby(keys)["harm"].mean() * 100
    profiles = read(out, "onoff_task").set_index(["model", "source_task", "source_language"])
    assert list(profiles.columns) == ["on_task", "off_task", "off_task_harm_pct"]
    assert profiles["on_task"].to_numpy() == pytest.approx(on["mean"].to_numpy(), rel=1e-12)
    assert profiles["off_task"].to_numpy() == pytest.approx(off["mean"].to_numpy(), rel=1e-12)
    assert profiles["off_task_harm_pct"].to_numpy() == pytest.approx(off_harm.to_numpy())
    kept = (on["count"] >= 3) & (off["count"] >= 5)
    assert kept.all() and (on["count"] == 10).all() and (off["count"] == 33).all()
    family = read(out, "onoff_family").set_index(["model", "source_task"])
    for side, means in (("on_task", on["mean"]), ("off_task", off["mean"])):
        want = means[kept].groupby(level=[0, 1]).mean()
        assert family[side].to_numpy() == pytest.approx(want.to_numpy(), rel=1e-12)
    assert (family["n_languages"] == 11).all()
    summary_table = read(out, "onoff_task_summary").set_index("source_task")
    for task in frame["fine_tuned_dataset"].unique():
        for side, rows in (("on", on_rows), ("off", off_rows)):
            n, mean, _, positive, harm = summary(
                rows.loc[rows["fine_tuned_dataset"] == task, DELTA]
            )
            columns = [f"{side}_{k}" for k in ("n", "mean", "pct_positive", "pct_harm")]
            assert summary_table.loc[task, columns].tolist() == pytest.approx(
                [n, mean, positive, harm]
            )


RECIPIENTS = {
    "MT-CL": ["eval_language"],
    "CT-ML": ["eval_dataset"],
    "CT-CL": ["eval_dataset", "eval_language"],
}
UNITS = {"model": "model_name", "family": "family", "size": "size", "size_bucket": "bucket"}


def consistency_per_source(frame: pd.DataFrame, regime: str, unit: str) -> pd.Series:
    """Mean Kendall τ-b over unit pairs with ≥ 3 shared recipients, per source cell."""
    rows = frame[frame["regime"] == regime]
    index = {}
    for source, block in rows.groupby(["fine_tuned_dataset", "fine_tuned_language"]):
        wide = block.groupby([*RECIPIENTS[regime], unit])[DELTA].mean().unstack(unit)
        values = wide.to_numpy(float).T  # units × recipients
        taus = []
        for u, v in itertools.combinations(values, 2):
            shared = ~np.isnan(u) & ~np.isnan(v)
            if shared.sum() >= 3:
                tau = stats.kendalltau(u[shared], v[shared]).statistic
                if np.isfinite(tau):
                    taus.append(tau)
        if taus:
            index[source] = float(np.mean(taus))
    return pd.Series(index)


def test_consistency_by_model_family_exact_size_and_bucket(paper):
    frame, out, _ = paper
    table = read(out, "consistency").set_index(["regime", "grouping"])
    sources = read(out, "consistency_sources")
    medians = {}
    for regime, (grouping, unit) in itertools.product(RECIPIENTS, UNITS.items()):
        index = consistency_per_source(frame, regime, unit)
        mine = sources[(sources["regime"] == regime) & (sources["grouping"] == grouping)]
        got = mine.set_index(["source_task", "source_language"])["ci"]
        assert got.index.tolist() == index.index.tolist()
        assert np.abs(got.to_numpy() - index.to_numpy()).max() < 1e-9, (regime, grouping)
        want = [index.median(), index.quantile(0.25), index.quantile(0.75), len(index)]
        assert np.abs(table.loc[(regime, grouping)].to_numpy() - want).max() < 1e-9
        medians[regime, grouping] = want[0]
    # exact sizes (0.5, 1, 1.5, 3, 4, 7, 8) are not the S/M/L buckets
    exact, bucket = medians["MT-CL", "size"], medians["MT-CL", "size_bucket"]
    assert abs(exact - bucket) > 0.05
    print(f"\nMT-CL consistency median: exact sizes {exact:.3f}, size buckets {bucket:.3f}")


def test_heatmaps(paper):
    frame, out, _ = paper
    for name, regime, source, target in (
        ("matrix_language", "MT-CL", "fine_tuned_language", "eval_language"),
        ("matrix_task", "CT-ML", "fine_tuned_dataset", "eval_dataset"),
    ):
        rows = frame[frame["regime"] == regime]
        want = rows.groupby([source, target])[DELTA].mean().unstack(target)
        got = read(out, name, index_col=0)
        assert got.index.tolist() == want.index.tolist() == got.columns.tolist()
        assert np.isnan(np.diag(got.to_numpy())).all()
        assert np.allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, equal_nan=True)


def test_linguistic_distance(paper):
    frame, out, _ = paper
    mtcl = frame[frame["regime"] == "MT-CL"]
    pooled = mtcl.groupby(["fine_tuned_language", "eval_language"])[DELTA].mean()
    pairs = read(out, "distance_pairs").set_index(["source_language", "target_language"])
    assert len(pairs) == 110
    assert pairs["mean_delta"].to_dict() == pytest.approx(pooled.to_dict(), rel=1e-12)
    correlation = read(out, "distance_correlation").set_index("feature_set")
    for feature in ("syntax", "phonology", "inventory"):
        x, y = pairs[feature], pairs["mean_delta"]
        assert correlation.loc[feature, "pearson_r"] == pytest.approx(np.corrcoef(x, y)[0, 1])
        rho = np.corrcoef(x.rank(), y.rank())[0, 1]
        assert correlation.loc[feature, "spearman_rho"] == pytest.approx(rho)


def test_variance_subsets(paper):
    frame, out, _ = paper
    variance = read(out, "variance")
    regimes = ["MT-CL", "CT-ML", "CT-CL"]
    assert list(dict.fromkeys(variance["subset"])) == [
        "all", "MT-ML", *regimes, "transfer",
        "curated", *(f"curated {r}" for r in regimes),
        "not curated", *(f"not curated {r}" for r in regimes),
    ]  # fmt: skip
    # one of them (990 rows) refitted with statsmodels' MixedLM, the released analysis's model
    rows = frame[(frame["regime"] == "MT-CL") & frame["eval_dataset"].isin(CURATED)]
    fit = statsmodels_fit(
        pd.DataFrame(
            {
                "delta": rows[DELTA].to_numpy(),
                "model": rows["model_name"].to_numpy(),
                "source": (rows["fine_tuned_dataset"] + rows["fine_tuned_language"]).to_numpy(),
                "target": (rows["eval_dataset"] + rows["eval_language"]).to_numpy(),
            }
        )
    )
    parts = [fit.cov_re.iloc[0, 0], fit.vcomp[0], fit.vcomp[1], fit.scale]
    shares = variance[variance["subset"] == "curated MT-CL"]["share_pct"].to_numpy()
    assert shares == pytest.approx(100 * np.array(parts) / sum(parts), abs=0.05)
