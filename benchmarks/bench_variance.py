"""Variance decomposition: statsmodels MixedLM against transferlab's REML fit, same table.

Both fit Δ ~ 1 with a random intercept per model and variance components for source and target
cell within model (REML) on a table of the paper's shape (9 models × 44 sources × 44 targets =
17,424 rows) and on each regime's rows. Prints seconds, the speed ratio, both REML
log-likelihoods and both variance shares, and the load average.

    .venv/bin/python benchmarks/bench_variance.py [--models 9] [--cells 44] [--regimes]
        [--one-blas-thread]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from threadpoolctl import threadpool_limits

from transferlab.analysis.variance import fit_variance
from transferlab.hardware import describe_cpu_line


def paper_shaped(n_models: int, n_cells: int, seed: int = 0) -> pd.DataFrame:
    """Δ = model + source-within-model + target-within-model + noise; 4 tasks × n_cells/4 langs."""
    rng = np.random.default_rng(seed)
    cells = [(f"task{i % 4}", f"lang{i // 4}") for i in range(n_cells)]
    rows = []
    for m in range(n_models):
        a, b, c = rng.normal(0, 2), rng.normal(0, 1.5, n_cells), rng.normal(0, 1, n_cells)
        for (s, source), (t, target) in itertools.product(enumerate(cells), enumerate(cells)):
            same_task, same_lang = source[0] == target[0], source[1] == target[1]
            regime = ("MT" if same_task else "CT") + ("-ML" if same_lang else "-CL")
            delta = a + b[s] + c[t] + rng.normal(0, 1)
            rows.append((f"m{m}", ":".join(source), ":".join(target), regime, delta))
    return pd.DataFrame(rows, columns=["model", "source", "target", "regime", "delta"])


def statsmodels_fit(frame: pd.DataFrame) -> tuple[dict[str, float], float]:
    model = smf.mixedlm(
        "delta ~ 1",
        frame,
        groups="model",
        re_formula="1",
        vc_formula={"source": "0 + C(source)", "target": "0 + C(target)"},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(reml=True)
    variances = {
        "model": float(result.cov_re.iloc[0, 0]),
        "source": float(result.vcomp[0]),
        "target": float(result.vcomp[1]),
        "residual": float(result.scale),
    }
    return variances, float(result.llf)


def shares(variances: dict[str, float]) -> str:
    total = sum(v for v in variances.values() if np.isfinite(v))
    return " ".join(f"{k} {100 * v / total:5.2f}%" for k, v in variances.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=9)
    parser.add_argument("--cells", type=int, default=44)
    parser.add_argument("--regimes", action="store_true", help="also fit MT-CL, CT-ML, CT-CL")
    parser.add_argument(
        "--one-blas-thread",
        action="store_true",
        help="run statsmodels with one BLAS thread too (transferlab always does)",
    )
    args = parser.parse_args()
    table = paper_shaped(args.models, args.cells)
    subsets = {"all": table}
    if args.regimes:
        subsets |= {r: table[table["regime"] == r] for r in ("MT-CL", "CT-ML", "CT-CL")}
    print(describe_cpu_line())
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    totals = [0.0, 0.0]
    for name, frame in subsets.items():
        start = time.perf_counter()
        with threadpool_limits(limits=1 if args.one_blas_thread else None, user_api="blas"):
            reference, reference_llf = statsmodels_fit(frame)
        middle = time.perf_counter()
        ours = fit_variance(frame)
        end = time.perf_counter()
        totals[0] += middle - start
        totals[1] += end - middle
        print(f"{name}: {len(frame)} rows")
        print(
            f"  statsmodels MixedLM  {middle - start:7.2f} s  llf {reference_llf:.4f}  {shares(reference)}"
        )
        print(
            f"  transferlab          {end - middle:7.2f} s  llf {ours.llf:.4f}  {shares(ours.variances)}"
        )
        print(f"  speed-up x{(middle - start) / (end - middle):.1f}")
    print(
        f"total: statsmodels {totals[0]:.2f} s, transferlab {totals[1]:.2f} s, x{totals[0] / totals[1]:.1f}"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
