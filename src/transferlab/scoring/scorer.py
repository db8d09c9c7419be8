"""Score many model states on many target cells in one process: ``score`` and ``ItemResult``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from transferlab.grid import Cell
from transferlab.metrics import item_metrics
from transferlab.models import LoadedModel
from transferlab.scoring.adapters import AdapterSwitch, ModelState, check_adapter
from transferlab.scoring.engine import RowScorer
from transferlab.scoring.packing import forward_batches
from transferlab.scoring.requests import encode_items
from transferlab.tasks.types import MCItem
from transferlab.tokenization import Encoder, pad_token_id, resolve_max_length

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemResult:
    """One model state's answer to one item: per-choice log-likelihoods and its metrics."""

    model_state: str
    task: str
    language: str
    doc_id: str
    loglikelihoods: list[float]
    gold: int
    metrics: dict[str, float]  # e.g. {"acc": 1, "acc_norm": 0}

    def to_dict(self) -> dict:
        """Return the result as the JSON object written to items.jsonl (metrics as keys)."""
        row = asdict(self)
        metrics = row.pop("metrics")
        return {**row, **metrics}


def score(
    loaded: LoadedModel,
    states: Sequence[ModelState],
    targets: Mapping[Cell, Sequence[MCItem]],
    batch_size: int = 16,
    progress: bool = True,
) -> list[ItemResult]:
    """Return one ItemResult per (state, target item), states in the given order.

    The base model stays loaded; each adapter state is applied with PEFT (no merging) and
    removed afterwards. Items are tokenised once and reused for every state. ``batch_size``
    is about how many items one forward pass scores (whole packed rows, see ``packing``).
    """
    from tqdm import tqdm

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    names = [s.name for s in states]
    if len(set(names)) != len(names):
        raise ValueError(f"model state names must be unique, got {names}")
    for state in states:
        if state.adapter_dir is not None:
            check_adapter(loaded, state.adapter_dir)

    cells = [cell for cell, items in targets.items() for _ in items]
    items = [item for items in targets.values() for item in items]
    encoder = Encoder(loaded.tokenizer, resolve_max_length(loaded.model.config, loaded.tokenizer))
    units = encode_items(encoder, items, [str(c) for c in cells])
    if not units:
        return []
    batches = forward_batches(units, batch_size)

    results: list[ItemResult] = []
    bar = tqdm(
        total=len(states) * len(units),
        desc="scoring",
        unit="item",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    with AdapterSwitch(loaded) as switch, bar:
        scorer = RowScorer(loaded.model, pad_token_id(loaded.tokenizer), loaded.device)
        scorer.verify(units[0].context)
        for state in states:
            bar.set_postfix_str(state.name)
            lls: list[list[float]] = [[0.0] * len(item.choices) for item in items]
            with switch.active(state):
                for batch_units, batch_sums in scorer.score(batches):
                    for unit, sums in zip(batch_units, batch_sums, strict=True):
                        for choice, value in zip(unit.choices, sums, strict=True):
                            lls[unit.item][choice] = value
                    bar.update(len(batch_units))
            results.extend(_results(state.name, cells, items, lls))
    return results


def _results(
    state: str, cells: Sequence[Cell], items: Sequence[MCItem], lls: Sequence[list[float]]
) -> list[ItemResult]:
    out = []
    for cell, item, values in zip(cells, items, lls, strict=True):
        out.append(
            ItemResult(
                model_state=state,
                task=cell.task,
                language=cell.language,
                doc_id=str(item.doc_id),
                loglikelihoods=list(values),
                gold=item.gold,
                metrics=item_metrics("multiple_choice", values, item.choices, item.gold),
            )
        )
    return out
