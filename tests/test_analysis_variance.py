"""The variance decomposition maximises exactly statsmodels' MixedLM REML likelihood."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from transferlab.analysis.variance import fit_variance, identifiable, reml_loglike


def crossed_table(n_models: int, n_cells: int, seed: int, keep: float = 1.0) -> pd.DataFrame:
    """Δ = model + source-within-model + target-within-model + noise, some rows dropped."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_models):
        a, b, c = rng.normal(0, 2), rng.normal(0, 1.5, n_cells), rng.normal(0, 1, n_cells)
        for s, t in itertools.product(range(n_cells), range(n_cells)):
            if rng.random() < keep:
                rows.append((f"m{m}", f"s{s}", f"t{t}", a + b[s] + c[t] + rng.normal(0, 1)))
    return pd.DataFrame(rows, columns=["model", "source", "target", "delta"])


def statsmodels_fit(frame: pd.DataFrame):
    model = smf.mixedlm(
        "delta ~ 1",
        frame,
        groups="model",
        re_formula="1",
        vc_formula={"source": "0 + C(source)", "target": "0 + C(target)"},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(reml=True)


@pytest.mark.parametrize(
    ("n_models", "n_cells", "seed", "keep"),
    [(3, 6, 0, 1.0), (4, 5, 1, 1.0), (3, 7, 2, 0.7)],  # the last one unbalanced
)
def test_same_likelihood_and_estimates_as_statsmodels_mixedlm(n_models, n_cells, seed, keep):
    frame = crossed_table(n_models, n_cells, seed, keep)
    reference = statsmodels_fit(frame)
    assert reference.converged
    ref_variances = {
        "model": float(reference.cov_re.iloc[0, 0]),
        "source": float(reference.vcomp[0]),
        "target": float(reference.vcomp[1]),
        "residual": float(reference.scale),
    }
    # the same objective: our likelihood at statsmodels' estimates is statsmodels' llf
    assert reml_loglike(frame, ref_variances) == pytest.approx(reference.llf, rel=1e-10)
    fit = fit_variance(frame)
    assert fit.converged
    assert fit.llf >= reference.llf - 1e-7  # at least as high an optimum
    for name, value in ref_variances.items():
        assert fit.variances[name] == pytest.approx(value, rel=2e-3, abs=1e-4)
    total = sum(ref_variances.values())
    for name, share in fit.shares_pct.items():
        assert share == pytest.approx(100 * ref_variances[name] / total, abs=0.05)


def test_a_variance_on_the_boundary_is_zero_not_negative():
    frame = crossed_table(3, 6, 0)
    frame["delta"] -= frame.groupby("model")["delta"].transform("mean")  # no model effect
    fit = fit_variance(frame)
    assert fit.variances["model"] == pytest.approx(0.0, abs=1e-8)
    assert fit.llf >= statsmodels_fit(frame).llf - 1e-7


def test_components_the_rows_cannot_separate_are_nan():
    # MT-ML: each source meets only its own cell, so source, target and residual coincide
    frame = crossed_table(3, 6, 0)
    diagonal = frame[frame["source"].str[1:] == frame["target"].str[1:]]
    assert identifiable(diagonal) == ["model"]
    shares = fit_variance(diagonal).shares_pct
    assert np.isnan(shares["source"]) and np.isnan(shares["target"])
    assert shares["model"] + shares["residual"] == pytest.approx(100.0)
    single_model = frame[frame["model"] == "m0"]
    assert identifiable(single_model) == ["source", "target"]
