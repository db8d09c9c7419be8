"""Variance decomposition of Δ by a linear mixed model fitted with REML.

The model is statsmodels' `MixedLM.from_formula("delta ~ 1", groups="model", re_formula="1",
vc_formula={"source": "0 + C(source)", "target": "0 + C(target)"})`: a random intercept per
model and, within each model, variance components for the source cell and the target cell,

    Δ[m, s, t] = μ + a[m] + b[m, s] + c[m, t] + e[m, s, t].

statsmodels takes about 6 s for one fit of the paper's 17,424 rows and builds its design per
group; this module maximises the same restricted likelihood from sufficient statistics. Per
model, Z'Z, Z'y and Z'1 are small (1 + sources + targets square), and with Λ = diag(√φ) the
likelihood needs only M = I + Λ Z'Z Λ (Woodbury), so one evaluation with its exact gradient
costs a few batched 89×89 factorisations. `tests/test_analysis_variance.py` checks the
likelihood against statsmodels' and `benchmarks/bench_variance.py` times both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

COMPONENTS = ("model", "source", "target")
SHARE_COMPONENTS = (*COMPONENTS, "residual")


@dataclass(frozen=True)
class VarianceFit:
    """REML estimates: variances (NaN for a component the data cannot separate) and the llf."""

    variances: dict[str, float]
    llf: float
    converged: bool

    @property
    def shares_pct(self) -> dict[str, float]:
        """Return each component's share of the total variance in percent."""
        total = sum(v for v in self.variances.values() if np.isfinite(v))
        return {k: 100.0 * v / total if total > 0 else np.nan for k, v in self.variances.items()}


class _Design:
    """Per-model sufficient statistics, padded to a common size so numpy can batch them."""

    def __init__(self, y: np.ndarray, groups: np.ndarray, effects: dict[str, np.ndarray]) -> None:
        self.n = len(y)
        self.yy = float(y @ y)
        self.sum_y = float(y.sum())
        self.components = list(effects)
        blocks = []
        for g in np.unique(groups):
            rows = groups == g
            columns, kinds = [], []
            for k, name in enumerate(self.components):
                codes = effects[name][rows]
                levels = np.unique(codes)
                columns.append((codes[:, None] == levels[None, :]).astype(float))
                kinds.append(np.full(len(levels), k))
            z = np.hstack(columns) if columns else np.zeros((rows.sum(), 0))
            blocks.append((z, np.concatenate(kinds) if kinds else np.zeros(0, int), y[rows]))
        q = max(z.shape[1] for z, _, _ in blocks)
        n_groups = len(blocks)
        self.gram = np.zeros((n_groups, q, q))
        self.zy = np.zeros((n_groups, q))
        self.z1 = np.zeros((n_groups, q))
        self.kind = np.full((n_groups, q), -1)
        for i, (z, kind, yg) in enumerate(blocks):
            width = z.shape[1]
            self.gram[i, :width, :width] = z.T @ z
            self.zy[i, :width] = z.T @ yg
            self.z1[i, :width] = z.sum(axis=0)
            self.kind[i, :width] = kind
        self.onehot = np.stack([self.kind == k for k in range(len(self.components))], axis=-1)

    def _solve(self, phi: np.ndarray) -> tuple[np.ndarray, ...]:
        """P = Λ M⁻¹ Λ per model, log|H|, and the quadratic forms y'H⁻¹y, 1'H⁻¹y, 1'H⁻¹1."""
        d = np.where(self.kind >= 0, phi[np.clip(self.kind, 0, None)], 0.0)
        s = np.sqrt(d)
        m = np.eye(self.gram.shape[1]) + s[:, :, None] * self.gram * s[:, None, :]
        chol = np.linalg.cholesky(m)
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()
        p = s[:, :, None] * np.linalg.inv(m) * s[:, None, :]
        p_zy = np.einsum("gij,gj->gi", p, self.zy)
        p_z1 = np.einsum("gij,gj->gi", p, self.z1)
        a_yy = self.yy - np.einsum("gi,gi->", self.zy, p_zy)
        a_1y = self.sum_y - np.einsum("gi,gi->", self.z1, p_zy)
        a_11 = self.n - np.einsum("gi,gi->", self.z1, p_z1)
        return p, p_zy, p_z1, logdet, a_yy, a_1y, a_11

    def objective(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        """Negative REML log-likelihood (scale profiled out) and its gradient in φ = ratios."""
        p, p_zy, p_z1, logdet, a_yy, a_1y, a_11 = self._solve(phi)
        beta = a_1y / a_11
        rss = a_yy - a_1y * beta
        dof = self.n - 1
        value = 0.5 * (dof * np.log(rss) + logdet + np.log(a_11))
        # Z'H⁻¹u = Z'u − G P Z'u and diag(Z'H⁻¹Z) = diag(G − G P G), with G = Z'Z
        w_y = self.zy - np.einsum("gij,gj->gi", self.gram, p_zy)
        w_1 = self.z1 - np.einsum("gij,gj->gi", self.gram, p_z1)
        gpg = ((self.gram @ p) * self.gram).sum(axis=-1)  # G symmetric
        trace = np.diagonal(self.gram, axis1=1, axis2=2) - gpg
        w_r = w_y - beta * w_1
        grad = 0.5 * (
            -dof * np.einsum("gi,gik->k", w_r**2, self.onehot) / rss
            + np.einsum("gi,gik->k", trace, self.onehot)
            - np.einsum("gi,gik->k", w_1**2, self.onehot) / a_11
        )
        return float(value), grad

    def scale(self, phi: np.ndarray) -> float:
        """Residual variance at φ (the REML estimate given the ratios)."""
        _, _, _, _, a_yy, a_1y, a_11 = self._solve(phi)
        return float((a_yy - a_1y**2 / a_11) / (self.n - 1))

    def llf(self, value: float) -> float:
        """statsmodels' REML log-likelihood from the profiled objective."""
        dof = self.n - 1
        return -value - 0.5 * dof * (1.0 + np.log(2 * np.pi) - np.log(dof))


def identifiable(frame: pd.DataFrame) -> list[str]:
    """Return the components the rows can separate from the residual (and from each other)."""
    keep = []
    if frame["model"].nunique() > 1:
        keep.append("model")
    for name in ("source", "target"):
        # a level seen once per model (MT-ML: each source meets only its own cell) is confounded
        if frame.groupby(["model", name]).size().max() > 1:
            keep.append(name)
    return keep


def _design(frame: pd.DataFrame, response: str, components: list[str]) -> _Design:
    codes = {c: pd.factorize(frame[c])[0] for c in ("model", "source", "target")}
    # the model's random intercept is one column of ones within each model's block
    effects = {c: (np.zeros(len(frame), int) if c == "model" else codes[c]) for c in components}
    return _Design(frame[response].to_numpy(float), codes["model"], effects)


def reml_loglike(
    frame: pd.DataFrame, variances: dict[str, float], response: str = "delta"
) -> float:
    """Return the REML log-likelihood (statsmodels' definition) at the given variances.

    As in statsmodels, the residual variance is profiled: only the ratios to it matter.
    """
    components = [c for c in COMPONENTS if np.isfinite(variances.get(c, np.nan))]
    design = _design(frame, response, components)
    phi = np.array([variances[c] / variances["residual"] for c in components])
    return design.llf(design.objective(phi)[0])


def fit_variance(frame: pd.DataFrame, response: str = "delta") -> VarianceFit:
    """Return the REML fit of `response ~ 1 + (1|model) + vc(source) + vc(target)` within model.

    `frame` has columns `model`, `source`, `target` (labels) and the response. A component the
    rows cannot separate (see `identifiable`) is left out of the model and reported as NaN.
    """
    nan = dict.fromkeys(SHARE_COMPONENTS, np.nan)
    y = frame[response].to_numpy(float)
    if len(y) < 3 or np.ptp(y) == 0:
        return VarianceFit(nan, np.nan, False)
    kept = identifiable(frame)
    if not kept:
        return VarianceFit({**nan, "residual": float(np.var(y, ddof=1))}, np.nan, True)
    design = _design(frame, response, kept)
    k = len(kept)
    # several starts guard against a local optimum; they agree to ~1e-5 in φ on real-sized tables
    with threadpool_limits(limits=1, user_api="blas"):  # threads only contend on 89×89 blocks
        results = [
            minimize(
                design.objective,
                np.full(k, start),
                jac=True,
                method="L-BFGS-B",
                bounds=[(0.0, None)] * k,
                options={"ftol": 1e-13, "gtol": 1e-8, "maxiter": 500},
            )
            for start in (1.0, 0.1, 10.0)
        ]
    best = min(results, key=lambda r: r.fun)
    converged = any(r.success for r in results)
    if not converged:
        logger.warning("variance decomposition did not converge: %s", best.message)
    scale = design.scale(best.x)
    variances = dict(nan)
    for name, ratio in zip(kept, best.x, strict=True):
        variances[name] = float(ratio * scale)
    variances["residual"] = float(scale)
    return VarianceFit(variances, design.llf(best.fun), converged)


def variance_table(subsets: dict[str, pd.DataFrame], metric: str) -> pd.DataFrame:
    """Return `subset, component, share_pct` for each subset of cells (NaN: not separable)."""
    rows = []
    for name, cells in subsets.items():
        frame = pd.DataFrame(
            {
                "model": cells["model"].to_numpy(),
                "source": (cells["source_task"] + ":" + cells["source_language"]).to_numpy(),
                "target": (cells["target_task"] + ":" + cells["target_language"]).to_numpy(),
                "delta": cells[metric].to_numpy(float),
            }
        )
        shares = fit_variance(frame).shares_pct
        rows.extend(
            {"subset": name, "component": c, "share_pct": shares[c]} for c in SHARE_COMPONENTS
        )
    return pd.DataFrame(rows)
