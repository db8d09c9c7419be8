"""The column names of the results tables, shared by the schema check and the aggregation."""

from __future__ import annotations

from collections.abc import Iterable

# internal name -> column name in both file schemas
PAPER_KEYS: dict[str, str] = {
    "model": "model_name",
    "source_task": "fine_tuned_dataset",
    "source_language": "fine_tuned_language",
    "target_task": "eval_dataset",
    "target_language": "eval_language",
}
CELL_KEYS: tuple[str, ...] = tuple(PAPER_KEYS)
# How the source was trained, where a study varies it (method lora | full, the LoRA rank): a
# table has these columns only then, and they join the cell keys in a row's identity.
VARIANT_KEYS: tuple[str, ...] = ("method", "lora_r")


def row_keys(columns) -> list[str]:
    """Return the columns that identify a row of a table with ``columns``: cell and variant keys."""
    return [*CELL_KEYS, *(c for c in VARIANT_KEYS if c in columns)]


SCORES: tuple[str, ...] = (
    "score",
    "score_base",
    "score_norm",
    "score_norm_base",
    "delta_score",
    "delta_score_norm",
)
PAPER_COLUMNS: tuple[str, ...] = (
    "model_name",
    "model_size",
    "fine_tuned_dataset",
    "fine_tuned_language",
    "eval_dataset",
    "eval_language",
    "regime",
    *(f"{score}_{stat}" for score in SCORES for stat in ("mean", "std")),
    "n_seeds",
    *(f"{score}_se" for score in SCORES),
)
PER_SEED_COLUMNS: tuple[str, ...] = (
    "model_name",
    "model_size",
    "model_family",
    "fine_tuned_dataset",
    "fine_tuned_language",
    "eval_dataset",
    "eval_language",
    "regime",
    "seed",
    *SCORES,
    "n_items",
    "headline_metric",
    "model_hash",
    "adapter_hash",
    "task_hash",
    "dtype",
    "batch_size",
    "versions",
    # appended after the provenance, so files of earlier versions keep their column positions
    "source",  # the training source's label: task:lang, or mix(task:lang=w,...)
    "source_parts",  # its parts as task:lang=weight;...
)


def metric_columns(metric: str) -> tuple[str, str, str]:
    """Return the per-seed columns of a metric beyond the two score columns.

    A metric ``m`` that is neither a task's acc-like nor its headline metric is written as
    ``m`` (fine-tuned), ``m_base`` and ``delta_m`` (pp), as ``score`` / ``score_base`` /
    ``delta_score`` are.
    """
    return metric, f"{metric}_base", f"delta_{metric}"


def further_metrics(columns: Iterable[str]) -> list[str]:
    """Return the metrics whose three per-seed columns (`metric_columns`) are all present."""
    columns = list(columns)
    present = set(columns)
    found = []
    for column in columns:
        if column.startswith("delta_") and column not in SCORES:
            metric = column.removeprefix("delta_")
            if set(metric_columns(metric)) <= present:
                found.append(metric)
    return found
