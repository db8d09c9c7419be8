"""``transferlab evaluate``: base model and adapters × target tasks → items.jsonl and scores.csv."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from transferlab.errors import UserError
from transferlab.grid import BASE, Cell
from transferlab.scoring.adapters import ModelState, adapter_hash, check_adapter_files
from transferlab.versions import library_versions

log = logging.getLogger(__name__)

ITEMS_FILE = "items.jsonl"
SCORES_FILE = "scores.csv"
PROVENANCE_FILE = "evaluation.json"
SCORE_KEYS = ["model_state", "task", "language", "n"]  # then one column per metric


def load_targets(
    task_refs: list[str], split: str, limit: int | None, trust_task_code: bool = False
) -> tuple[dict[Cell, list[Any]], dict[str, str], dict[Cell, Any]]:
    """Return the items of every target cell named by ``task_refs``, each cell's task hash and,
    for generative cells, the task's generation settings."""
    from transferlab.tasks import get_task, parse_task_ref

    targets: dict[Cell, list[Any]] = {}
    hashes: dict[str, str] = {}
    generation: dict[Cell, Any] = {}
    for ref in task_refs:
        spec = get_task(ref, trust_task_code)
        _name, language = parse_task_ref(ref)
        for lang in [language] if language else list(spec.languages):
            items = list(spec.items(lang, split))
            if limit is not None:
                items = items[:limit]
            if not items:
                raise UserError(
                    ref,
                    f"task {spec.name} has no {split} items in language {lang!r}",
                    "choose another --split or language, or add items to the task",
                )
            cell = Cell(spec.name, lang)
            if cell in targets:
                raise UserError(ref, f"target {cell} is given twice", "name each target once")
            targets[cell] = items
            hashes[str(cell)] = spec.content_hash(lang)
            if spec.generation is not None:
                generation[cell] = spec.generation
    return targets, hashes, generation


def model_states(adapters: list[Path]) -> list[ModelState]:
    """Return the base state followed by one state per adapter folder (named after the folder)."""
    states = [ModelState(BASE, None)]
    for adapter in adapters:
        check_adapter_files(Path(adapter))
        state = ModelState.for_adapter(adapter)
        clash = next((s for s in states if s.name == state.name), None)
        if clash is not None:
            raise UserError(
                adapter,
                f"model state name {state.name!r} is already taken"
                + (f" by {clash.adapter_dir}" if clash.adapter_dir else " by the base model"),
                "give each adapter folder a distinct name",
            )
        states.append(state)
    return states


def evaluate_command(
    model_ref: str,
    adapters: list[Path],
    task_refs: list[str],
    out_dir: Path,
    dtype: str = "auto",
    device: str = "cpu",
    batch_size: int = 16,
    limit: int | None = None,
    split: str = "test",
    progress: bool = True,
    trust_task_code: bool = False,
) -> Any:
    """Score the base model and every adapter on every target; return the scores table.

    Writes ``items.jsonl``, ``scores.csv`` and ``evaluation.json`` (provenance) into ``out_dir``
    only once everything has been scored, so bad input leaves nothing behind.
    """
    import pandas as pd

    from transferlab.models import check_dtype_device, load_model
    from transferlab.scoring.scorer import score

    out_dir = Path(out_dir)
    if batch_size < 1:
        raise UserError("--batch-size", f"must be at least 1, got {batch_size}", "use e.g. 16")
    if limit is not None and limit < 1:
        raise UserError("--limit", f"must be at least 1, got {limit}", "leave it out for all items")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(out_dir, "exists and is not a folder", "choose another --out")
    if not task_refs:
        raise UserError("--task", "no target task given", "pass --task NAME[:LANG] at least once")
    check_dtype_device(dtype, device)
    states = model_states([Path(a) for a in adapters])
    targets, task_hashes, generation = load_targets(task_refs, split, limit, trust_task_code)
    choice = {cell: items for cell, items in targets.items() if cell not in generation}
    generative = {cell: items for cell, items in targets.items() if cell in generation}

    started = time.time()
    loaded = load_model(model_ref, dtype=dtype, device=device)
    lines: list[dict[str, Any]] = []
    tables = []
    if choice:
        results = score(loaded, states, choice, batch_size=batch_size, progress=progress)
        lines = [r.to_dict() for r in results]
        metrics = list(dict.fromkeys(m for r in results for m in r.metrics))
        tables.append(
            pd.DataFrame(lines)
            .groupby(["model_state", "task", "language"], sort=False)
            .agg(n=(metrics[0], "size"), **{m: (m, "mean") for m in metrics})
            .reset_index()[SCORE_KEYS + metrics]
        )
    if generative:
        from transferlab.generation.results import evaluate_generative

        more, rows = evaluate_generative(loaded, states, generative, generation, batch_size,
                                         progress)  # fmt: skip
        lines += more
        tables.append(pd.DataFrame(rows))
    # multiple-choice metrics first; a generative task's metrics follow (empty for MC rows)
    scores = pd.concat(tables, ignore_index=True)
    scores = scores[SCORE_KEYS + [c for c in scores.columns if c not in SCORE_KEYS]]
    provenance = {
        "model": {"ref": model_ref, "path": str(loaded.path), "model_hash": loaded.model_hash},
        "model_states": [
            {
                "name": s.name,
                "adapter_dir": str(s.adapter_dir) if s.adapter_dir else None,
                "adapter_hash": adapter_hash(s.adapter_dir) if s.adapter_dir else None,
            }
            for s in states
        ],
        "targets": [{"target": cell, "task_hash": h} for cell, h in task_hashes.items()],
        "split": split,
        "limit": limit,
        "dtype": loaded.dtype,  # resolved: "auto" never reaches a record
        "device": device,
        "batch_size": batch_size,
        "acc_norm": "argmax of loglikelihood / len(choice) in characters (lm-eval 0.4.x)",
        "versions": library_versions(),
        "wall_time_s": round(time.time() - started, 2),
    }
    _write_outputs(out_dir, lines, scores, provenance)
    return scores


def _write_outputs(out_dir: Path, lines: list[dict], scores: Any, provenance: dict) -> None:
    """Write the three files via a temporary folder, each moved into place by a rename."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".evaluate-", dir=out_dir))
    try:
        with (staging / ITEMS_FILE).open("w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        scores.to_csv(staging / SCORES_FILE, index=False)
        (staging / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        for name in (ITEMS_FILE, SCORES_FILE, PROVENANCE_FILE):
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
