"""The file side of the analysis: read results tables, write `analyze` and `export` outputs.

Everything is read and validated before anything is written, so bad input leaves no files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from transferlab.analysis.aggregate import to_paper_schema
from transferlab.analysis.bootstrap import items_from_frame
from transferlab.analysis.distance import typological_distances
from transferlab.analysis.figures import analysis_figures, png_bytes
from transferlab.analysis.groups import REFERENCE_LANGUAGE_FAMILIES, check_task_groups
from transferlab.analysis.mixture_scaling import sweeps_from_frame
from transferlab.analysis.result import INDEXED_TABLES, run_analysis
from transferlab.analysis.schema import ResultsTable, table_from_frame
from transferlab.errors import UserError, did_you_mean
from transferlab.fileio import sha256_file

logger = logging.getLogger(__name__)

RUN_DIR_TABLES = ("results_per_seed.csv", "results.csv")
ITEMS_FILE = "items.csv.gz"
SWEEPS_FILE = "mixtures.csv"  # the sweeps' points, beside the results of a study with sweeps
# the public file contracts (DESIGN.md §3); other tables are written with all their columns
CONTRACT_COLUMNS: dict[str, list[str]] = {
    "regimes": ["regime", "n", "mean", "median", "pct_positive", "pct_harm"],
    "roles_language": ["language", "donor", "donor_se", "recipient", "recipient_se"],
    "roles_task": ["task", "donor", "donor_se", "recipient", "recipient_se"],
    "variance": ["subset", "component", "share_pct"],
    "consistency": ["regime", "grouping", "median", "q1", "q3", "n_sources"],
    "onoff_task": [
        "model",
        "source_task",
        "source_language",
        "on_task",
        "off_task",
        "off_task_harm_pct",
    ],
}


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise UserError(path, "no such file", "check the path") from None
    except pd.errors.EmptyDataError:
        raise UserError(
            path, "the file is empty", "point at a results table with a header row"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        first_line = (str(error).strip() or type(error).__name__).splitlines()[0]
        raise UserError(path, f"not a readable CSV ({first_line})", "write a UTF-8 CSV") from None


def table_file(path: Path) -> Path:
    """Return the results table a path names: the CSV itself, or the table of a run directory."""
    if not path.exists():
        raise UserError(path, "no such file or directory", "check the path")
    if not path.is_dir():
        return path
    for name in RUN_DIR_TABLES:
        if (path / name).is_file():
            return path / name
    raise UserError(
        path,
        f"the directory holds no results table ({' or '.join(RUN_DIR_TABLES)})",
        "point at a run directory after `transferlab run`, or at a CSV",
    )


def _read_files(path: Path | str) -> tuple[Path, pd.DataFrame, pd.DataFrame | None]:
    """Return the table file in `path`, its raw rows and the raw per-item rows beside it."""
    table_path = table_file(Path(path))
    items_path = table_path.parent / ITEMS_FILE
    items = _read_csv(items_path) if items_path.is_file() else None
    return table_path, _read_csv(table_path), items


def read_results(path: Path | str) -> ResultsTable:
    """Return the validated results table in `path`: a CSV in either schema or a run directory.

    An `items.csv.gz` next to the table adds the per-item results for the item bootstrap, a
    `mixtures.csv` the points of the study's mixture sweeps.
    """
    table_path, frame, items = _read_files(path)
    items_path = table_path.parent / ITEMS_FILE
    sweeps_path = table_path.parent / SWEEPS_FILE
    sweeps = (
        sweeps_from_frame(_read_csv(sweeps_path), str(sweeps_path))
        if sweeps_path.is_file()
        else None
    )
    return table_from_frame(
        frame,
        str(table_path),
        items=None if items is None else items_from_frame(items, str(items_path)),
        sweeps=sweeps,
    )


def read_results_of_models(paths: Sequence[Path | str]) -> ResultsTable:
    """Return one table of several models' results tables (one study per model, say).

    Each is validated as by `read_results`; a model may appear in one table only, all must
    have one schema, and the per-item results are kept when every table has them. Mixture
    sweeps are not combined.
    """
    if len(paths) == 1:
        return read_results(paths[0])
    files = [_read_files(path) for path in paths]
    tables = [table_from_frame(frame, str(table_path)) for table_path, frame, _items in files]
    owner: dict[str, str] = {}
    for table in tables:
        if table.schema != tables[0].schema:
            raise UserError(table.where, f"is a {table.schema} table, {tables[0].where} a {tables[0].schema} one",
                            "combine tables of one schema (each run's results_per_seed.csv)")  # fmt: skip
        for model in table.cells["model"].unique():
            if model in owner:
                raise UserError(table.where, f"model {model} is also in {owner[model]}",
                                "combine the results tables of different models")  # fmt: skip
            owner[model] = table.where
    where = " + ".join(str(table_path) for table_path, _frame, _items in files)
    frame = pd.concat([f for _path, f, _items in files], ignore_index=True).fillna("")
    items = None
    if all(i is not None for _path, _frame, i in files):
        items = items_from_frame(pd.concat([i for *_rest, i in files], ignore_index=True), where)
    return table_from_frame(frame, where, items=items)


def _check_writable_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(out_dir, "exists and is not a directory", "choose another --out")


def _parse_pairs(entries: Iterable[str], option: str, form: str, example: str) -> dict[str, str]:
    """{key: value} from KEY=VALUE entries of a repeatable option; UserError names the option."""
    pairs = {}
    for entry in entries:
        key, sep, value = entry.rpartition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(option, f"{entry!r} is not {form}", f"e.g. {option} {example}")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_families(entries: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    """Return {model: family} from `MODEL=FAMILY` entries (a mapping is taken as it is)."""
    if isinstance(entries, Mapping):
        return dict(entries)
    return _parse_pairs(entries, "--family", "MODEL=FAMILY", "Qwen/Qwen2.5-7B=qwen")


def language_family_map(entries: Iterable[str], languages: Iterable[str]) -> dict[str, str] | None:
    """Return the reference study's {language: family} with `LANG=FAMILY` entries applied
    (None when there are none: the analysis's default); each LANG must be one of `languages`."""
    overrides = _parse_pairs(entries, "--language-family", "LANG=FAMILY", "sw=Bantu")
    known = sorted(set(languages))
    for language in overrides:
        if language not in known:
            raise UserError(
                "--language-family",
                f"no language {language!r} in the results{did_you_mean(language, known)}",
                f"name one of: {', '.join(known)}",
            )
    return {**REFERENCE_LANGUAGE_FAMILIES, **overrides} if overrides else None


def parse_task_groups(
    entries: Iterable[str] | Mapping[str, Iterable[str]],
) -> dict[str, tuple[str, ...]]:
    """Return {group: tasks} from `NAME=TASK[,TASK...]` entries (a mapping is taken as it is)."""
    if isinstance(entries, Mapping):
        return {name: tuple(tasks) for name, tasks in entries.items()}
    groups: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        name, sep, tasks = entry.partition("=")
        listed = tuple(task.strip() for task in tasks.split(","))
        if not sep or not name.strip() or "" in listed:
            raise UserError(
                "--task-group",
                f"{entry!r} is not NAME=TASK[,TASK...]",
                "e.g. --task-group curated=global_mmlu",
            )
        if name.strip() in groups:
            raise UserError(
                "--task-group", f"group {name.strip()!r} is given twice", "give each group once"
            )
        groups[name.strip()] = listed
    return groups


def analyze_results(
    path: Path | str,
    out_dir: Path | str,
    metric: str | None = None,
    families: Iterable[str] | Mapping[str, str] = (),
    task_groups: Iterable[str] | Mapping[str, Iterable[str]] = (),
    language_families: Iterable[str] = (),
) -> pd.DataFrame:
    """Write every analysis table (CSV) and figure (PNG) of a results table; return the regimes.

    `families` overrides the family of named models (`MODEL=FAMILY` entries or a mapping);
    `task_groups` names groups of tasks (`NAME=TASK[,TASK...]` entries or a mapping);
    `language_families` (`LANG=FAMILY`) extends or overrides the reference study's families.
    """
    out_dir = Path(out_dir)
    _check_writable_dir(out_dir)
    overrides = parse_families(families)
    groups = parse_task_groups(task_groups)
    table = read_results(path)
    if overrides:
        table = table.with_families(overrides)
    cells = table.single_cell().cells  # a mixture's label is no task, its languages no language
    targets = table.cells
    groups = check_task_groups(
        groups, set(cells["source_task"]) | set(targets["target_task"]), "--task-group"
    )
    languages = sorted(set(cells["source_language"]) | set(targets["target_language"]))
    families_by_language = language_family_map(language_families, languages)
    result = run_analysis(
        table,
        metric,
        distances=typological_distances(languages),
        task_groups=groups,
        language_families=families_by_language,
    )
    pngs = {name: png_bytes(figure) for name, figure in analysis_figures(result).items()}
    info = {
        "input": table.where,
        "input_sha256": sha256_file(Path(table.where)),
        "schema": table.schema,
        "metric": result.metric,
        "rows": len(table.cells),
        "holes": table.holes,
        "bootstrap": {"replicates": result.n_boot, "seed": result.seed, "level": 0.95},
        "task_groups": {name: list(tasks) for name, tasks in result.task_groups.items()},
        "models": result.tables["models"].to_dict(orient="records"),
        "versions": {"transferlab": version("transferlab"), "pandas": pd.__version__},
    }
    if result.reference_rank is not None:  # the training varies: the other tables read this rank
        info["reference_rank"] = result.reference_rank
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in result.tables.items():
        columns = CONTRACT_COLUMNS.get(name, list(frame.columns))
        frame[columns].to_csv(out_dir / f"{name}.csv", index=name in INDEXED_TABLES)
    for name, png in pngs.items():
        (out_dir / f"{name}.png").write_bytes(png)
    (out_dir / "analysis_info.json").write_text(json.dumps(info, indent=2) + "\n")
    logger.info("wrote %d tables and %d figures to %s", len(result.tables), len(pngs), out_dir)
    return result.tables["regimes"]


def export_results(path: Path | str, out_file: Path | str) -> int:
    """Write the results table in the paper's schema (seeds aggregated); return its row count."""
    out_file = Path(out_file)
    if out_file.is_dir():
        raise UserError(out_file, "is a directory", "give a file name such as results.csv")
    table = read_results(path)
    paper = to_paper_schema(table.cells)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    paper.to_csv(out_file, index=False)
    return len(paper)
