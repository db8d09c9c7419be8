"""Linguistic distance: does MT-CL transfer fall with the typological distance of the languages?

Distances are cosine distances between URIEL feature vectors (k-NN imputed syntax, phonology
and phoneme inventory), read from the data files the `lang2vec` package ships; its own loader
needs `pkg_resources`, which current setuptools no longer provides, so the arrays are read here.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from transferlab.grid import Regime

logger = logging.getLogger(__name__)

FEATURE_SETS = {"syntax": "S_", "phonology": "P_", "inventory": "INV_"}
# ISO 639-1 codes the reference study maps to a language rather than URIEL's macrolanguage:
# URIEL's `zho` has other imputed features than Mandarin's `cmn`, the code the study used
ISO_639_3 = {"zh": "cmn"}
CORRELATION_COLUMNS = [
    "feature_set",
    "n_pairs",
    "pearson_r",
    "pearson_p",
    "spearman_rho",
    "spearman_p",
]


@functools.cache
def _uriel() -> tuple[dict[str, str], np.ndarray, np.ndarray, np.ndarray]:
    # located through the distribution, not imported: lang2vec also installs a `lang2vec.py`
    # script into bin/, which shadows the package for console scripts
    data = Path(distribution("lang2vec").locate_file("lang2vec/data"))
    letter_codes = json.loads((data / "letter_codes.json").read_text())
    with np.load(data / "feature_predictions.npz") as archive:
        return letter_codes, archive["langs"], archive["feats"], archive["data"][:, :, 0]


def typological_distances(languages: list[str]) -> pd.DataFrame:
    """Return `language_a, language_b, syntax, phonology, inventory` cosine distances.

    Languages are ISO 639-1 or 639-3 codes; ones URIEL does not know are left out (logged).
    Empty when the `lang2vec` package is not installed.
    """
    columns = ["language_a", "language_b", *FEATURE_SETS]
    try:
        letter_codes, langs, feats, values = _uriel()
    except PackageNotFoundError:
        logger.info("lang2vec is not installed; skipping linguistic distances")
        return pd.DataFrame(columns=columns)
    index = {code: i for i, code in enumerate(langs)}
    known = {}
    for language in languages:
        code = ISO_639_3.get(language) or letter_codes.get(language, language)
        if code in index:
            known[language] = index[code]
        else:
            logger.warning("no URIEL features for language %r; left out of the distances", language)
    names = feats.astype(str)
    selected = {name: np.char.startswith(names, prefix) for name, prefix in FEATURE_SETS.items()}
    rows = []
    for a, b in itertools.combinations(sorted(known), 2):
        row = {"language_a": a, "language_b": b}
        for name, mask in selected.items():
            u, v = values[known[a], mask], values[known[b], mask]
            row[name] = 1.0 - float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def distance_pairs(cells: pd.DataFrame, metric: str, distances: pd.DataFrame) -> pd.DataFrame:
    """Return per ordered (source, target) language pair the mean MT-CL Δ and the distances."""
    rows = cells[cells["regime"] == Regime.MT_CL.value]
    pairs = rows.groupby(["source_language", "target_language"])[metric].mean().rename("mean_delta")
    pairs = pairs.reset_index()
    symmetric = pd.concat(
        [
            distances,
            distances.rename(columns={"language_a": "language_b", "language_b": "language_a"}),
        ]
    ).rename(columns={"language_a": "source_language", "language_b": "target_language"})
    return pairs.merge(symmetric, on=["source_language", "target_language"], how="inner")


def distance_correlation(pairs: pd.DataFrame) -> pd.DataFrame:
    """Return Pearson and Spearman correlations of mean MT-CL Δ with each distance."""
    out = []
    for name in FEATURE_SETS:
        if len(pairs) < 3 or pairs[name].nunique() < 2 or pairs["mean_delta"].nunique() < 2:
            out.append({"feature_set": name, "n_pairs": len(pairs)})
            continue
        pearson = stats.pearsonr(pairs[name], pairs["mean_delta"])
        spearman = stats.spearmanr(pairs[name], pairs["mean_delta"])
        out.append(
            {
                "feature_set": name,
                "n_pairs": len(pairs),
                "pearson_r": float(pearson.statistic),
                "pearson_p": float(pearson.pvalue),
                "spearman_rho": float(spearman.statistic),
                "spearman_p": float(spearman.pvalue),
            }
        )
    return pd.DataFrame(out, columns=CORRELATION_COLUMNS)
