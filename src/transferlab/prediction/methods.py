"""Predictors of unmeasured transfer: fit on the observed (model, source) rows, predict the rest.

The baseline is a table of means; the others are penalised additive models (ridge: each
effect is shrunk towards zero by a pseudo-count, so a group never observed predicts 0), the
strongest with low-rank completion of what the effects leave:

- `regime_target`: Δ = mean of the model's observed rows in the same regime and target cell
  (falling back to the model's regime mean where the cell has none, e.g. MT-ML). The baseline.
- `additive`: Δ = (model, regime) + (model, target cell) + source cell + (model, source cell):
  the variance decomposition's source and target effects with a regime intercept.
- `completion`: the additive effects plus side information — (model, source task, target task)
  and (model, same task, source language, target language), the same two and the source ×
  target cell pair shared across models (what one model's measured rows tell about another's
  hidden ones), and slopes on the URIEL distance of the two languages per (model, regime) and on
  the model's base score of the source cell.
- `lowrank`: `completion`, then soft-impute (nuclear-norm shrinkage) of what it leaves,
  unfolded as source cell × (model, target cell).
- `stacked`: the additive model with source task and source language effects (a hidden
  source borrows from the measured sources of its task and of its language), moved towards
  `lowrank` by a weight chosen by cross-validation over the observed rows only. With one
  model, a hidden row has no entry for soft-impute or the shared effects to use, and the side
  information fits noise; with many models it carries most of the signal: the weight decides
  from the observed rows which case a table is.

Penalties (pseudo-counts) are 2 entries per effect, 20 for the (model, source) row effect: a
hidden row never has its own, so the shared source effect should carry what rows have in common.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as splinalg
from threadpoolctl import threadpool_limits

from transferlab.prediction.data import ROW_KEYS, Design

Component = tuple[str, ...]
M_TARGET: Component = ("model", "target_task", "target_language")
SOURCE: Component = ("source_task", "source_language")
ADDITIVE: list[Component] = [("model", "regime"), M_TARGET, SOURCE, ROW_KEYS]
SIDE: list[Component] = [
    ("model", "source_task", "target_task"),
    ("model", "same_task", "source_language", "target_language"),
    ("source_task", "target_task"),
    ("same_task", "source_language", "target_language"),
    (*SOURCE, "target_task", "target_language"),
]
SHRINK = 2.0
ROW_SHRINK = 20.0
HIERARCHICAL: list[Component] = [
    *ADDITIVE,
    ("model", "source_task"),
    ("model", "source_language"),
]
WEIGHTS = np.linspace(0.0, 1.0, 11)
INNER_FOLDS = 5  # a model with more observed rows than 6 deals them into 5 folds, else one per row
# the smallest number of observed sources per model each method can fit
MIN_OBSERVED: dict[str, int] = {
    "regime_target": 1,
    "additive": 2,
    "completion": 3,
    "lowrank": 3,
    "stacked": 3,
}


def _ridge(
    y: np.ndarray,
    observed: np.ndarray,
    groups: list[np.ndarray],
    slopes: list[tuple[np.ndarray, np.ndarray]],
    shrinks: list[float],
) -> np.ndarray:
    """Return the fitted values of every entry (observed or not) of a penalised additive model.

    The model is intercept + Σ group effects + Σ group slopes × covariate, minimising squared
    error on the observed entries plus `shrinks[k]` × the squared effects of part k (ridge, the
    intercept unpenalised); an effect whose group has no observed entry is 0.
    """
    n = len(y)
    blocks, penalty = [sparse.csr_matrix(np.ones((n, 1)))], [0.0]
    for (codes, x), shrink in zip([(c, None) for c in groups] + slopes, shrinks, strict=True):
        size = int(codes.max()) + 1
        values = np.ones(n) if x is None else x
        blocks.append(sparse.csr_matrix((values, (np.arange(n), codes)), shape=(n, size)))
        penalty += [shrink] * size
    design = sparse.hstack(blocks, format="csr")
    fit = design[observed]
    normal = (fit.T @ fit + sparse.diags(np.array(penalty))).tocsr()
    # groups never observed have all-zero columns: pin their effect to 0
    empty = np.asarray(normal.diagonal() == 0)
    normal = normal + sparse.diags(empty.astype(float))
    # conjugate gradients with a diagonal preconditioner: a direct solve fills in badly here
    inverse = sparse.diags(1 / normal.diagonal())
    rhs = fit.T @ y[observed]
    beta, info = splinalg.cg(normal, rhs, rtol=1e-10, atol=0.0, maxiter=20 * len(rhs), M=inverse)
    if info:
        beta = splinalg.spsolve(normal.tocsc(), rhs)
    return design @ beta


def _mean(sums: np.ndarray, counts: np.ndarray, empty: float = 0.0) -> np.ndarray:
    return np.divide(sums, counts, out=np.full_like(sums, empty), where=counts > 0)


def soft_impute(
    matrix: np.ndarray, shrink_frac: float = 0.1, iterations: int = 60, tol: float = 1e-4
) -> np.ndarray:
    """Return `matrix` with its NaNs filled by soft-impute (Mazumder, Hastie & Tibshirani 2010).

    The singular values are shrunk by `shrink_frac` × the largest singular value of the
    zero-filled matrix; observed entries are kept as they are.
    """
    missing = np.isnan(matrix)
    filled = np.where(missing, 0.0, matrix)
    if not missing.any() or missing.all():
        return filled
    # small SVDs: one BLAS thread is fastest, and several on a busy machine are far slower
    with threadpool_limits(limits=1, user_api="blas"):
        shrink = shrink_frac * np.linalg.norm(filled, 2)
        low = np.zeros_like(filled)
        for _ in range(iterations):
            u, s, vt = np.linalg.svd(np.where(missing, low, filled), full_matrices=False)
            new = (u * np.maximum(s - shrink, 0.0)) @ vt
            delta = np.linalg.norm(new - low) / max(np.linalg.norm(low), 1e-12)
            low = new
            if delta < tol:
                break
    return np.where(missing, low, filled)


def _centred(values: np.ndarray, codes: np.ndarray, observed: np.ndarray) -> np.ndarray:
    # centre a covariate within its group on the observed entries; unknown values become 0
    known = observed & np.isfinite(values)
    size = int(codes.max()) + 1
    mean = _mean(
        np.bincount(codes[known], values[known], minlength=size),
        np.bincount(codes[known], minlength=size).astype(float),
    )
    return np.nan_to_num(values - mean[codes], nan=0.0)


def predict_regime_target(design: Design, observed: np.ndarray) -> np.ndarray:
    """Return the regime × target-cell mean prediction of every entry.

    The mean of the model's observed entries in the same regime and target cell; where there
    are none (MT-ML of a hidden source), the model's mean in that regime, then the model's mean.
    """
    y = _values(design)
    out = np.full(len(y), np.nan)
    for columns in (("model", "regime", *M_TARGET[1:]), ("model", "regime"), ("model",)):
        codes = design.codes(columns)
        size = int(codes.max()) + 1
        mean = _mean(
            np.bincount(codes[observed], y[observed], minlength=size),
            np.bincount(codes[observed], minlength=size).astype(float),
            empty=np.nan,
        )[codes]
        out = np.where(np.isnan(out), mean, out)
    return out


def _shrinks(n: int) -> list[float]:
    shrinks = [SHRINK] * n
    shrinks[ADDITIVE.index(ROW_KEYS)] = ROW_SHRINK
    return shrinks


def predict_additive(design: Design, observed: np.ndarray) -> np.ndarray:
    """Return the additive (regime, source and target effects) prediction of every entry."""
    groups = [design.codes(c) for c in ADDITIVE]
    return _ridge(_values(design), observed, groups, [], _shrinks(len(groups)))


def predict_completion(design: Design, observed: np.ndarray) -> np.ndarray:
    """Return the additive + side-information prediction of every entry."""
    frame = design.frame
    groups = [design.codes(c) for c in (*ADDITIVE, *SIDE)]
    per_regime = design.codes(("model", "regime"))
    per_model = design.codes(("model",))
    slopes = [
        (per_regime, _centred(frame["distance"].to_numpy(float), per_regime, observed)),
        (per_model, _centred(frame["source_base"].to_numpy(float), per_model, observed)),
    ]
    shrinks = _shrinks(len(groups) + len(slopes))
    return _ridge(_values(design), observed, groups, slopes, shrinks)


def predict_lowrank(design: Design, observed: np.ndarray, shrink_frac: float = 0.1) -> np.ndarray:
    """Return the `completion` prediction plus soft-impute of its residuals, for every entry."""
    effects = predict_completion(design, observed)
    source, column = design.codes(SOURCE), design.codes(M_TARGET)
    residual = np.full((int(source.max()) + 1, int(column.max()) + 1), np.nan)
    residual[source[observed], column[observed]] = (_values(design) - effects)[observed]
    return effects + soft_impute(residual, shrink_frac=shrink_frac)[source, column]


def predict_hierarchical(design: Design, observed: np.ndarray) -> np.ndarray:
    """Return the additive prediction with (model, source task) and (model, source language)
    effects, for every entry."""
    groups = [design.codes(c) for c in HIERARCHICAL]
    shrinks = [ROW_SHRINK if c == ROW_KEYS else SHRINK for c in HIERARCHICAL]
    return _ridge(_values(design), observed, groups, [], shrinks)


def inner_folds(design: Design, observed: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Return folds of the observed (model, source) rows: per model one row per fold when it
    has at most 6, else `INNER_FOLDS` folds dealt at random."""
    rows = np.unique(design.row[observed])
    row_model = np.zeros(design.n_rows, dtype=int)
    row_model[design.row] = design.codes(("model",))
    rng = np.random.default_rng(seed)
    folds: dict[int, list[int]] = {}
    for model in np.unique(row_model[rows]):
        mine = rng.permutation(rows[row_model[rows] == model])
        k = len(mine) if len(mine) <= 6 else INNER_FOLDS
        for i, row in enumerate(mine):
            folds.setdefault(i % k, []).append(int(row))
    return [np.array(f) for f in folds.values()]


def predict_stacked(design: Design, observed: np.ndarray) -> np.ndarray:
    """Return hierarchical + w × (lowrank − hierarchical), w chosen on the observed rows.

    Each fold of observed rows is predicted by both methods fitted on the other observed rows;
    w (0, 0.1, …, 1) is the one with the smallest mean absolute error over those held-out
    entries. Nothing outside `observed` is looked at.
    """
    y = _values(design)
    near, far = np.full(len(y), np.nan), np.full(len(y), np.nan)
    for fold in inner_folds(design, observed):
        held = np.isin(design.row, fold) & observed
        train = observed & ~held
        near[held] = predict_hierarchical(design, train)[held]
        far[held] = predict_lowrank(design, train)[held]
    known = np.isfinite(near)
    errors = [np.abs(near + w * (far - near) - y)[known].mean() for w in WEIGHTS]
    weight = WEIGHTS[int(np.argmin(errors))]
    hierarchical = predict_hierarchical(design, observed)
    return hierarchical + weight * (predict_lowrank(design, observed) - hierarchical)


def _values(design: Design) -> np.ndarray:
    return design.frame["delta"].to_numpy(float)


METHODS: dict[str, Callable[[Design, np.ndarray], np.ndarray]] = {
    "regime_target": predict_regime_target,
    "additive": predict_additive,
    "completion": predict_completion,
    "lowrank": predict_lowrank,
    "stacked": predict_stacked,
}
