"""The versions that determine results: libraries, and a hash of transferlab's own number code."""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Sequence
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# The libraries whose versions shape trained adapters and scores.
RESULT_LIBRARIES = ("torch", "transformers", "peft", "transferlab")
# transferlab's own sources that make the numbers of each job kind: a change to any of them
# re-keys the jobs they shape (the package version stays put while this code changes).
CODE_PARTS: dict[str, tuple[str, ...]] = {
    "training": ("training", "tokenization.py", "adapter_files.py"),
    "scoring": (
        "scoring",
        "tokenization.py",
        "adapter_files.py",
        "metrics/registry.py",
        "metrics/choice.py",
    ),
    # generative targets: their units also carry "scoring" (adapter swapping lives there)
    "generation": (
        "generation",
        "metrics/text.py",
        "metrics/constraints.py",
        "tasks/generative.py",
    ),
}


def library_versions(names: Sequence[str] = RESULT_LIBRARIES) -> dict[str, str]:
    """Return Python's version and each named distribution's ("not installed" when absent)."""
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _sources(part: tuple[str, ...]) -> list[Path]:
    package = Path(__file__).parent
    files: list[Path] = []
    for entry in part:
        path = package / entry
        files += sorted(path.glob("*.py")) if path.is_dir() else [path]
    return files


@cache
def source_hash(entries: tuple[str, ...]) -> str:
    """Return a 12-hex-digit hash of transferlab's source files or folders ``entries``."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for file in _sources(entries):
        name = str(file.relative_to(package))
        digest.update(name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:12]


@cache
def code_versions() -> dict[str, str]:
    """Return the library versions plus a hash of transferlab's sources per part (CODE_PARTS)."""
    found = library_versions()
    for part, entries in CODE_PARTS.items():
        found[f"transferlab.{part}"] = source_hash(entries)
    return found
