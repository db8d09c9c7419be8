"""Task YAML files as mappings: lm-eval's ``!function`` tags kept as markers (run only when the
user trusts the task's code, see ``taskcode``), each knowing the folder of its YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from transferlab.errors import UserError


def read_yaml(path: Path) -> dict[str, Any]:
    """Return a YAML file's top-level mapping; unreadable or non-mapping files are a UserError."""
    if not path.is_file():
        raise UserError(str(path), "task file does not exist", "give the path to a task YAML")
    try:
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_LmEvalLoader)
    except yaml.YAMLError as error:
        raise UserError(str(path), f"not valid YAML: {error}".replace("\n", " "), "") from None
    if not isinstance(loaded, dict):
        raise UserError(str(path), "a task YAML must be a mapping of keys", "")
    return attach_folder(loaded, path.parent)  # a `!function` module lives next to its YAML


class _LmEvalLoader(yaml.SafeLoader):
    """SafeLoader that keeps lm-eval's ``!function`` tags as a marker instead of failing."""


_LmEvalLoader.add_constructor(
    "!function", lambda loader, node: FunctionTag(loader.construct_scalar(node))
)


class FunctionTag(str):
    """The value of a ``!function module.name`` tag: Python code, run only when trusted."""

    folder: Path | None = None  # the folder of the YAML that holds the tag


def attach_folder(value: Any, folder: Path) -> Any:
    """Return ``value`` with every ``!function`` tag inside it knowing the folder it came from."""
    if isinstance(value, FunctionTag):
        tagged = FunctionTag(value)
        tagged.folder = folder
        return tagged
    if isinstance(value, dict):
        return {k: attach_folder(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [attach_folder(v, folder) for v in value]
    return value
