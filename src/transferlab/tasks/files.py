"""Read local data files (JSON Lines, JSON, CSV, Parquet) into lists of plain-Python rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transferlab.errors import UserError

FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def file_format(path: Path) -> str | None:
    """Return 'json', 'csv' or 'parquet' for a data file's suffix (None when unknown)."""
    suffixes = [s for s in path.suffixes if s != ".gz"]
    return FORMATS.get(suffixes[-1].lower()) if suffixes else None


def read_rows(path: Path, where: str, field: str, fmt: str | None = None) -> list[dict[str, Any]]:
    """Return the rows of a data file; missing or unreadable files are a UserError."""
    if not path.is_file():
        raise UserError(where, f"{field}: data file {path} does not exist", "fix the path")
    fmt = fmt or file_format(path)
    try:
        if fmt == "json":
            rows = _read_json(path)
        elif fmt == "csv":
            rows = _read_csv(path)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        else:
            raise UserError(
                where,
                f"{field}: cannot tell the format of {path.name}",
                "use a .jsonl, .json, .csv or .parquet file",
            )
    except (ValueError, OSError) as error:
        raise UserError(where, f"{field}: cannot read {path}: {error}", "fix the file") from None
    return _fill_missing_columns(rows)


def _open_text(path: Path):
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _read_json(path: Path) -> list[dict[str, Any]]:
    with _open_text(path) as handle:
        text = handle.read()
    stripped = text.lstrip()
    if stripped.startswith("["):
        rows = json.loads(text)
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"line {number}: {error.msg}") from None
    if not all(isinstance(row, dict) for row in rows):
        raise ValueError("every record must be a JSON object")
    return rows


def _read_csv(path: Path) -> list[dict[str, Any]]:
    import pandas as pd

    # pandas, as the `datasets` csv builder lm-eval reads through, so column types match.
    frame = pd.read_csv(path)
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows]


def _fill_missing_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A column missing from some records reads as None, as in an Arrow table.
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    if all(len(row) == len(columns) for row in rows):
        return rows
    return [{name: row.get(name) for name in columns} for row in rows]
