"""The active loop of a study: train a spread of sources, refit, pick the next batch, repeat.

Every cell of the grid is a candidate source. Round 0 trains a spread covering tasks and
languages evenly; after each round the predictor is refitted on the measured Δ of the sources
trained so far and picks the next batch (`prediction.active.choose_next`), until each model has
trained `budget` sources. A pick depends only on the measured results of earlier picks, and the
rounds are recorded in `DIR/active.json` before their jobs run: a killed run continues with the
same picks, and a larger budget later only adds rounds.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferlab.config import ActiveSettings
from transferlab.fileio import write_json
from transferlab.grid import BASE
from transferlab.plan import Plan
from transferlab.store import Store

log = logging.getLogger(__name__)

ROUNDS_FILE = "active.json"
Pick = tuple[str, str]  # (model name, source label)


@dataclass
class ActiveRun:
    """What the loop did: the plan of every source it touched and its rounds of picks."""

    plan: Plan  # the picks and the check sources (measured, never picked)
    rounds: list[list[Pick]]
    check: list[Pick]  # candidates measured in the store that no round picked
    settings: ActiveSettings


def restrict(plan: Plan, keep: set[Pick]) -> Plan:
    """Return `plan` with only the trainings (and their evaluation units) of `keep`."""
    jobs = [j for j in plan.train_jobs if (j.model.name, str(j.source)) in keep]
    states = {j.key for j in jobs}
    # Every other kind's work on a model state (evaluation units, ...) follows its training.
    work = {
        kind: [x for x in items if getattr(x, "state", BASE) == BASE or x.state in states]
        for kind, items in plan.work.items()
    }
    return dataclasses.replace(plan, work={**work, "train": jobs})


def candidate_rows(plan: Plan) -> pd.DataFrame:
    """Return one row per (model, source) the plan can train: model, source_task, source_language."""
    seen: dict[Pick, dict[str, str]] = {}
    for job in plan.train_jobs:
        cell = job.source.parts[0][0]
        pick = (job.model.name, str(job.source))
        seen.setdefault(
            pick,
            {
                "model": pick[0],
                "source_task": cell.task,
                "source_language": cell.language,
                "source": pick[1],
            },
        )
    return pd.DataFrame(list(seen.values()))


def measured_picks(plan: Plan, store: Store) -> set[Pick]:
    """Return the (model, source) rows whose every seed is trained and scored on every target."""
    adapters, scores = store.adapters(), store.scores()
    units_of: dict[str, list[str]] = {}
    for unit in plan.units:
        units_of.setdefault(unit.state, []).append(unit.key)
    done: dict[Pick, bool] = {}
    for job in plan.train_jobs:
        pick = (job.model.name, str(job.source))
        ok = job.key in adapters and all(k in scores for k in units_of.get(job.key, []))
        done[pick] = done.get(pick, True) and ok
    return {pick for pick, ok in done.items() if ok}


def prediction_frame_of(plan: Plan, store: Store) -> pd.DataFrame:
    """Return the prediction frame of what the store holds for `plan` (NaN Δ where unmeasured)."""
    from transferlab.analysis import table_from_frame
    from transferlab.analysis.distance import typological_distances
    from transferlab.exports import per_seed_table
    from transferlab.prediction.data import prediction_frame

    per_seed = per_seed_table(plan, store.scores())
    table = table_from_frame(per_seed, "the study's store")
    return prediction_frame(table, distances=typological_distances(plan.languages))


def first_round(plan: Plan, settings: ActiveSettings) -> list[Pick]:
    """Return the initial spread: `settings.first` sources per model covering tasks and languages."""
    from transferlab.prediction.active import spread_start

    rows = candidate_rows(plan)
    chosen = spread_start(rows, np.ones(len(rows), dtype=bool), settings.first, settings.seed)
    return _ordered(rows[chosen])


def next_round(
    plan: Plan, store: Store, picked: set[Pick], settings: ActiveSettings, step: int
) -> list[Pick]:
    """Return the next batch: the predictor refitted on the measured picks chooses it."""
    from transferlab.prediction.active import choose_next
    from transferlab.prediction.data import make_design, source_rows

    left = settings.budget - max(_per_model(picked).values(), default=0)
    if left <= 0:
        return []
    design = make_design(prediction_frame_of(restrict(plan, picked), store))
    rows = source_rows(design)
    keys = list(zip(rows["model"], rows["source_task"], rows["source_language"], strict=True))
    label = {(m, c.task, c.language): s for m, s, c in _pick_cells(plan)}
    is_picked = np.array([(k[0], label[k]) in picked for k in keys])
    trained = is_picked & rows["measured"].to_numpy(bool)
    if not trained.any():
        log.warning("no picked source is measured: the active loop stops")
        return []
    targets = [tuple(t.split(":", 1)) for t in settings.targets]
    chosen = choose_next(
        design,
        trained,
        ~is_picked,
        min(settings.batch, left),
        settings.strategy,
        targets,
        settings.method,
        settings.seed + step,
    )
    return _ordered(
        rows[chosen].assign(source=[label[k] for k, c in zip(keys, chosen, strict=True) if c])
    )


def _pick_cells(plan: Plan) -> list[tuple[str, str, Any]]:
    return [(j.model.name, str(j.source), j.source.parts[0][0]) for j in plan.train_jobs]


def _ordered(rows: pd.DataFrame) -> list[Pick]:
    return sorted(zip(rows["model"], rows["source"], strict=True))


def _per_model(picks: set[Pick]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for model, _ in picks:
        counts[model] = counts.get(model, 0) + 1
    return counts


def _record_key(settings: ActiveSettings) -> dict[str, Any]:
    # the budget is left out: raising it continues the same rounds
    return settings.model_dump(mode="json", exclude={"budget"})


def load_rounds(out: Path, settings: ActiveSettings, plan: Plan) -> list[list[Pick]]:
    """Return the recorded rounds of these settings (empty if none, or recorded for others)."""
    import json

    file = out / ROUNDS_FILE
    if not file.is_file():
        return []
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
        entries = [[(p["model"], p["source"]) for p in e["picks"]] for e in record["rounds"]]
    except (ValueError, KeyError, TypeError):  # edited by hand: the picks are recomputed
        log.warning("%s cannot be read: picking afresh", file)
        return []
    if record.get("settings") != _record_key(settings):
        log.warning("%s was recorded with other active settings: picking afresh", file)
        return []
    known = {(j.model.name, str(j.source)) for j in plan.train_jobs}
    rounds = entries
    if any(pick not in known for r in rounds for pick in r):
        log.warning("%s names sources this grid lacks: picking afresh", file)
        return []
    return rounds


def save_rounds(out: Path, settings: ActiveSettings, rounds: list[list[Pick]]) -> None:
    """Write the rounds (before their jobs run, so a killed run finds them)."""
    record = {
        "settings": _record_key(settings),
        "rounds": [
            {"round": i, "picks": [{"model": m, "source": s} for m, s in picks]}
            for i, picks in enumerate(rounds)
        ],
    }
    write_json(record, out / ROUNDS_FILE)


def _within_budget(rounds: list[list[Pick]], budget: int) -> list[list[Pick]]:
    # a lowered budget keeps the earliest picks of each model
    kept: list[list[Pick]] = []
    counts: dict[str, int] = {}
    for picks in rounds:
        this = []
        for model, source in picks:
            if counts.get(model, 0) < budget:
                counts[model] = counts.get(model, 0) + 1
                this.append((model, source))
        if this:
            kept.append(this)
    return kept


def recorded_plan(plan: Plan, out: Path, settings: ActiveSettings) -> tuple[Plan, str]:
    """Return the plan of the recorded rounds (else the first spread) and a line saying so."""
    rounds = _within_budget(load_rounds(out, settings, plan), settings.budget)
    picks = {p for r in rounds for p in r} or set(first_round(plan, settings))
    per_model = max(_per_model(picks).values(), default=0)
    done = f"{len(rounds)} round(s) picked" if rounds else "the first spread"
    line = f"; active: {done}, {per_model} of a budget of {settings.budget} source(s) per model" + (
        "" if per_model >= settings.budget else ", later rounds picked as results come in"
    )
    return restrict(plan, picks), line


def run_active(
    plan: Plan, store: Store, settings: ActiveSettings, execute: Callable[[Plan], None]
) -> ActiveRun:
    """Run rounds until the budget: `execute(plan)` runs a plan's outstanding jobs to the end."""
    out = store.out_dir
    recorded = _within_budget(load_rounds(out, settings, plan), settings.budget)
    rounds: list[list[Pick]] = []
    while True:
        step = len(rounds)
        picked = {p for r in rounds for p in r}
        if step < len(recorded):
            picks = recorded[step]
        elif step == 0:
            picks = first_round(plan, settings)
        else:
            picks = next_round(plan, store, picked, settings, step)
        picks = [p for p in picks if p not in picked]
        if not picks:
            break
        rounds.append(picks)
        if step >= len(recorded):
            save_rounds(out, settings, rounds)
        log.info("active round %d: %s", step, ", ".join(f"{m} {s}" for m, s in picks))
        execute(restrict(plan, picked | set(picks)))
    picked = {p for r in rounds for p in r}
    check = sorted(measured_picks(plan, store) - picked)
    return ActiveRun(restrict(plan, picked | set(check)), rounds, check, settings)
