"""Writing output files whole (temporary file, then rename) and hashing file contents."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
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


@contextlib.contextmanager
def replaced(file: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``file`` that replaces it when the block ends without error.

    The name is unique, so two runs writing the same output at once never share a temporary
    file: each rename is whole, and the last one wins.
    """
    handle, name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; outputs are shared files
        os.replace(tmp, file)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(data: dict[str, Any], file: Path) -> None:
    """Write ``data`` as indented UTF-8 JSON via a temporary file and a rename."""
    with replaced(file) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")


def write_csv(frame: pd.DataFrame, file: Path) -> None:
    """Write ``frame`` to ``file`` via a temporary file and a rename."""
    with replaced(file) as tmp:
        frame.to_csv(tmp, index=False)
