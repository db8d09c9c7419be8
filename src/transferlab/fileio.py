"""Writing output files whole (temporary file, then rename) and hashing file contents."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def sha256_file(file: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    sha = hashlib.sha256()
    with file.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            sha.update(block)
    return sha.hexdigest()


def write_json(data: dict[str, Any], file: Path) -> None:
    """Write ``data`` as indented UTF-8 JSON via a temporary file and a rename."""
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")
    os.replace(tmp, file)


def write_csv(frame: pd.DataFrame, file: Path) -> None:
    """Write ``frame`` to ``file`` via a temporary file and a rename."""
    tmp = file.with_name(file.name + ".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, file)
