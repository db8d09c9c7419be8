"""The study summary and the problems list: what was run, with what, when, and what is missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from transferlab.errors import UserError
from transferlab.grid import is_mixture_label
from transferlab.report.document import (
    Column,
    Facts,
    Notice,
    Table,
    TableCell,
    number_cell,
    text_cell,
)
from transferlab.report.figures import cell_label

RUN_INFO = "run_info.json"
# Config keys shown elsewhere in the summary (or not about how numbers were made).
_NOT_SETTINGS = {"name", "out_dir"}


def read_run_info(folder: Path | None) -> dict[str, Any] | None:
    """Return the run's `run_info.json` as a dict, or None when the folder has none."""
    if folder is None or not (folder / RUN_INFO).is_file():
        return None
    path = folder / RUN_INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(
            path, f"cannot read the run summary ({error})", "fix or delete the file"
        ) from error
    if not isinstance(info, dict):
        raise UserError(path, "expected a JSON object", "fix or delete the file")
    return info


def duration(seconds: Any) -> str:
    """Return a wall time as '1 h 02 min', '12 min 30 s' or '8.4 s'."""
    try:
        total = float(seconds)
    except (TypeError, ValueError):
        return "—"
    if total < 60:
        return f"{total:.1f} s"
    minutes, secs = divmod(round(total), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _join(values: Any) -> str:
    items = [str(v) for v in (values or [])]
    return ", ".join(items) if items else "—"


def _settings(config: Any, prefix: str = "") -> list[str]:
    """Return `key = value` lines of the scalar settings in a nested config."""
    if not isinstance(config, dict):
        return []
    lines = []
    for key, value in config.items():
        if isinstance(value, dict):
            lines.extend(_settings(value, f"{prefix}{key}."))
        elif not isinstance(value, list) and f"{prefix}{key}" not in _NOT_SETTINGS:
            lines.append(f"{prefix}{key} = {value}")
    return lines


def _unique(cells: pd.DataFrame, column: str) -> list[str]:
    if column not in cells.columns:
        return []
    values = cells[column].dropna().astype(str)
    return sorted({part for value in values for part in value.split(";") if part})


def summary_facts(
    cells: pd.DataFrame,
    seeds: list[int],
    run_info: dict[str, Any] | None,
    source: Path,
    metric_text: str,
) -> Facts:
    """Return the study's key facts, from run_info.json where present, else from the table."""
    info = run_info or {}
    single = cells[~cells["source_task"].map(is_mixture_label)]  # a mixture's label is no task
    tasks = sorted(set(single["source_task"]) | set(cells["target_task"]))
    languages = sorted(set(single["source_language"]) | set(cells["target_language"]))
    facts = [
        ("Study", str(info.get("study") or source.name)),
        ("Results", str(source)),
        ("Models", _join(sorted(cells["model"].unique()))),
        ("Tasks", _join(tasks)),
        ("Languages", _join(info.get("languages") or languages)),
        ("Seeds", _join(info.get("seeds") or seeds or ["aggregated in the table"])),
        ("Metric", metric_text),
        (
            "Grid",
            f"{cells.groupby(['model', 'source_task', 'source_language']).ngroups} adapters "
            f"(model × source), {len(cells)} (model, source, target) cells",
        ),
    ]
    for key, label in (("dtype", "Evaluation dtype"), ("batch_size", "Evaluation batch size")):
        if _unique(cells, key):
            facts.append((label, _join(_unique(cells, key))))
    versions = info.get("versions")
    if isinstance(versions, dict) and versions:
        facts.append(("Versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    elif _unique(cells, "versions"):
        facts.append(("Versions", _join(_unique(cells, "versions"))))
    job_time = info.get("job_time_s")
    if isinstance(job_time, dict) and job_time:
        spent = ", ".join(f"{kind} {duration(v)}" for kind, v in job_time.items())
        facts.append(("Job time, all runs", spent))
    if info.get("started_at") or info.get("finished_at"):
        last = f"{info.get('started_at', '?')} → {info.get('finished_at', '?')}"
        if "wall_time_s" in info:
            last += f" ({duration(info['wall_time_s'])})"
        facts.append(("Last run", last))
    timings = info.get("timings")
    if isinstance(timings, dict) and timings:
        facts.append(
            (
                "Last run's time",
                ", ".join(f"{k.removesuffix('_s')} {duration(v)}" for k, v in timings.items()),
            )
        )
    if info.get("executor"):
        facts.append(("Executor", str(info["executor"])))
    jobs = info.get("jobs")
    if isinstance(jobs, dict):
        failed = jobs.get("failed") or []
        facts.append(
            ("Jobs", f"{jobs.get('done', '?')} done, {jobs.get('pending', '?')} pending, "
             f"{len(failed)} failed")
        )  # fmt: skip
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    top = [line for key, value in config.items() if not isinstance(value, dict)
           for line in _settings({key: value})]  # fmt: skip
    if top:
        facts.append(("Settings", ", ".join(top)))
    for group, values in config.items():
        if isinstance(values, dict) and _settings(values):
            facts.append((f"Settings: {group}", ", ".join(_settings(values))))
    return Facts(id="facts", items=facts)


def models_table(cells: pd.DataFrame, run_info: dict[str, Any] | None) -> Table:
    """Return one row per model: family, size, reference and content hash."""
    listed = {m.get("name"): m for m in (run_info or {}).get("models", []) if isinstance(m, dict)}
    rows = []
    for model, block in cells.groupby("model", sort=True):
        entry = listed.get(model, {})
        hashes = _unique(block, "model_hash") or [entry.get("model_hash")]
        rows.append(
            [
                text_cell(model),
                text_cell(block["model_family"].iloc[0]),
                number_cell(block["size_b"].iloc[0], digits=3),
                text_cell(entry.get("ref")),
                TableCell(text=_join(h for h in hashes if h)),
                number_cell(block.groupby(["source_task", "source_language"]).ngroups, digits=0),
            ]
        )
    columns = [
        Column("model"),
        Column("family"),
        Column("size (B params)", numeric=True),
        Column("reference"),
        Column("model hash"),
        Column("adapters", numeric=True, help="source cells with results"),
    ]
    return Table(
        id="table-models",
        caption="Models of the study with the content hash of the weights every number comes from.",
        columns=columns,
        rows=rows,
    )


def cells_table(cells: pd.DataFrame, run_info: dict[str, Any] | None) -> Table | None:
    """Return one row per evaluated (task, language) cell with its item count and content hash.

    None when the table and the run say neither (the paper's released schema)."""
    listed = {
        (t.get("name"), t.get("language")): t.get("task_hash")
        for t in (run_info or {}).get("tasks", [])
        if isinstance(t, dict)
    }
    if not listed and not {"n_items", "task_hash"} & set(cells.columns):
        return None
    rows = []
    for (task, language), block in cells.groupby(["target_task", "target_language"], sort=True):
        hashes = _unique(block, "task_hash") or [listed.get((task, language))]
        items = block["n_items"].max() if "n_items" in block.columns else None
        rows.append(
            [
                text_cell(task),
                text_cell(language),
                number_cell(items, digits=0),
                TableCell(text=_join(h for h in hashes if h)),
            ]
        )
    return Table(
        id="table-cells",
        caption="Evaluated (task, language) cells: test items scored per cell and the content hash "
        "of the items and prompts.",
        columns=[Column("task"), Column("language"), Column("items", True), Column("task hash")],
        rows=rows,
    )


def problems_notice(cells: pd.DataFrame, run_info: dict[str, Any] | None) -> Notice:
    """Return the failed jobs and the (model, source) and (model, target) cells with no results."""
    info = run_info or {}
    planned = {
        (t.get("name"), t.get("language"))
        for t in info.get("tasks", [])
        if isinstance(t, dict) and t.get("name") and t.get("language")
    }
    # A study may train on only some cells, so expected sources are those any model has.
    sources = set(zip(cells["source_task"], cells["source_language"], strict=True))
    targets = set(zip(cells["target_task"], cells["target_language"], strict=True)) | planned
    models = sorted(
        set(cells["model"])
        | {m.get("name") for m in info.get("models", []) if isinstance(m, dict) and m.get("name")}
    )
    items: list[str] = []
    for model in models:
        mine = cells[cells["model"] == model]
        have_sources = set(zip(mine["source_task"], mine["source_language"], strict=True))
        have_targets = set(zip(mine["target_task"], mine["target_language"], strict=True))
        for cell in sorted(sources - have_sources):
            items.append(f"{model}: no results for an adapter trained on {cell_label(*cell)}")
        for cell in sorted(targets - have_targets):
            items.append(f"{model}: target {cell_label(*cell)} was not evaluated")
    jobs = info.get("jobs") if isinstance(info.get("jobs"), dict) else {}
    failed = [job for job in jobs.get("failed") or [] if isinstance(job, dict)]
    for job in failed:
        items.append(
            f"failed {job.get('kind', 'job')} job {job.get('key', '?')}: {job.get('error', '')}"
        )
    pending = jobs.get("pending") or 0
    if pending:
        items.append(f"{pending} job(s) still pending: run the study again to finish them")
    if not items:
        return Notice(
            id="problems",
            text="Every planned cell has results; no job failed.",
            ok=True,
        )
    return Notice(
        id="problems",
        text=f"{len(items)} problem(s): the analyses above use only the cells present.",
        items=items,
    )
