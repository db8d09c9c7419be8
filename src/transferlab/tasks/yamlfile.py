"""Task YAML files as mappings: lm-eval's ``!function`` tags kept as markers, not run."""

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
    return loaded


class _LmEvalLoader(yaml.SafeLoader):
    """SafeLoader that keeps lm-eval's ``!function`` tags as a marker instead of failing."""


_LmEvalLoader.add_constructor(
    "!function", lambda loader, node: FunctionTag(loader.construct_scalar(node))
)


class FunctionTag(str):
    """The value of a ``!function module.name`` tag (Python code, which transferlab does not run)."""
