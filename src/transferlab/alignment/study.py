"""A study's alignment table (alignment.csv of a run) against its measured transfer (pure).

The run's alignment table holds, beside `transferlab align`'s columns, ``model_name``, ``seed``,
``fine_tuned_dataset`` and ``fine_tuned_language`` of each model state; the results are the
analysis's ``cells`` (one row per model × source cell × target cell, seeds averaged).

- ``view``: the configuration the report leads with (PROC + cosine if run; the layer where the
  base model aligns best on average);
- ``change_table``: each adapter's alignment against its base model's;
- ``change_vs_transfer``: does an adapter's change in alignment from its trained language to
  another language go with how much it transfers there (its MT-CL Δ on the same task)?
- ``base_vs_transfer``: does the base model's alignment of a pair go with the mean MT-CL Δ of the
  pair over the study's adapters (xling-eval's question)?
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from transferlab.alignment.relate import alignment_vs_transfer, correlate
from transferlab.grid import BASE

PAIR = ["source_language", "target_language"]
CONFIG = ["layer", "method", "retrieval"]


@dataclass(frozen=True)
class View:
    """One (method, retrieval, layer) of an alignment table."""

    method: str
    retrieval: str
    layer: int


def view(alignment: pd.DataFrame, metric: str = "mrr") -> View:
    """Return PROC + cosine (else the first method / retrieval run) at the base's best layer."""
    methods, retrievals = list(alignment["method"]), list(alignment["retrieval"])
    method = "proc" if "proc" in methods else methods[0]
    retrieval = "cosine" if "cosine" in retrievals else retrievals[0]
    base = alignment[(alignment["model_state"] == BASE) & (alignment["method"] == method)
                     & (alignment["retrieval"] == retrieval)]  # fmt: skip
    layer = int(base.groupby("layer")[metric].mean().idxmax())
    return View(method, retrieval, layer)


def _tuned_against_base(alignment: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return adapter rows with ``base`` (the base model's value) and ``change`` (× 100)."""
    keys = ["model_name", *PAIR, *CONFIG]
    base = alignment[alignment["model_state"] == BASE].set_index(keys)[metric].rename("base")
    tuned = alignment[alignment["model_state"] != BASE].join(base, on=keys)
    return tuned.assign(change=100 * (tuned[metric] - tuned["base"]))


def change_table(alignment: pd.DataFrame, chosen: View, metric: str = "mrr") -> pd.DataFrame:
    """Return per adapter state at ``chosen``: mean base and tuned ``metric`` and their change.

    ``from_*`` average the pairs from the adapter's trained language, ``all_change`` every pair.
    """
    rows = _tuned_against_base(alignment, metric)
    rows = rows[(rows["method"] == chosen.method) & (rows["retrieval"] == chosen.retrieval)
                & (rows["layer"] == chosen.layer)]  # fmt: skip
    out = []
    for (model, state), group in rows.groupby(["model_name", "model_state"], sort=False):
        mine = group[group["source_language"] == group["fine_tuned_language"]]
        out.append({"model_name": model, "model_state": state,
                    "from_base": mine["base"].mean(), "from_tuned": mine[metric].mean(),
                    "from_change": mine["change"].mean(), "all_change": group["change"].mean(),
                    "n_pairs": len(group)})  # fmt: skip
    return pd.DataFrame(out)


def mtcl_transfer(cells: pd.DataFrame, delta: str) -> pd.DataFrame:
    """Return the MT-CL rows of ``cells`` as (model_name, task, source and target language, Δ)."""
    rows = cells[cells["regime"] == "MT-CL"]
    return pd.DataFrame({
        "model_name": rows["model"], "fine_tuned_dataset": rows["source_task"],
        "fine_tuned_language": rows["source_language"],
        "target_language": rows["target_language"], "transfer": rows[delta],
    })  # fmt: skip


def change_vs_transfer(
    alignment: pd.DataFrame,
    cells: pd.DataFrame,
    delta: str,
    metric: str = "mrr",
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Return per (layer, method, retrieval) the correlation of alignment change with transfer.

    One point per (model, adapter's source cell, target language): the change (× 100, averaged
    over seeds) of the adapter's ``metric`` from its trained language to the target language,
    and the adapter's measured MT-CL Δ (``delta`` of ``cells``) on its task in that language.
    """
    rows = _tuned_against_base(alignment, metric)
    rows = rows[rows["source_language"] == rows["fine_tuned_language"]]
    group = ["model_name", "fine_tuned_dataset", "fine_tuned_language", "target_language", *CONFIG]
    change = rows.groupby(group)["change"].mean().reset_index()
    transfer = mtcl_transfer(cells, delta)
    joined = change.merge(transfer, on=["model_name", "fine_tuned_dataset", "fine_tuned_language",
                                        "target_language"])  # fmt: skip
    out = []
    for (layer, method, retrieval), points in joined.groupby(CONFIG):
        found = correlate(points["change"], points["transfer"], n_boot, seed)
        out.append({"layer": layer, "method": method, "retrieval": retrieval} | found)
    return pd.DataFrame(out)


def base_vs_transfer(
    alignment: pd.DataFrame,
    cells: pd.DataFrame,
    delta: str,
    metric: str = "mrr",
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Return per (model, layer, method, retrieval) the correlation of the base model's
    alignment of each ordered pair with the pair's mean MT-CL Δ over the model's adapters."""
    transfer = mtcl_transfer(cells, delta).rename(
        columns={"fine_tuned_language": "source_language", "transfer": "delta"}
    )
    out = []
    for model, rows in alignment[alignment["model_state"] == BASE].groupby("model_name"):
        pairs = transfer[transfer["model_name"] == model]
        table = alignment_vs_transfer(rows, pairs, metric, "delta", n_boot, seed)
        out.append(table.assign(model_name=model))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()
