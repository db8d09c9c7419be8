"""lm-eval's ``!function module.name`` fields: Python code from the task's own folder, run only
when the user opts in (``--trust-task-code``, a study's ``trust_task_code: true``).

As lm-eval does, ``module`` is the file ``module.py`` next to the YAML that holds the tag (an
included YAML's tags resolve next to that file) and ``name`` an attribute of it. Such a function
may stand for ``doc_to_text``, ``doc_to_target`` or ``doc_to_choice`` (called with the row) and
for ``process_docs`` (called with a ``datasets.Dataset`` of a split, returning one).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.errors import UserError
from transferlab.tasks.yamlfile import FunctionTag

CALLABLE_FIELDS = ("doc_to_text", "doc_to_target", "doc_to_choice", "process_docs")
TRUST_FIX = "pass --trust-task-code (or trust_task_code: true in the study) to import it"


def load_function(tag: Any, where: str, key: str) -> Callable[..., Any]:
    """Return the function a ``!function module.name`` tag names (UserError when it cannot)."""
    module_name, _, attribute = str(tag).strip().rpartition(".")
    folder = getattr(tag, "folder", None)
    file = Path(folder or ".") / f"{module_name.replace('.', '/')}.py"
    if not module_name or not file.is_file():
        raise UserError(
            where, f"{key}: !function {tag} — no file {file}", "put the module next to the YAML"
        )
    # a unique module name per file: two task folders may both hold a utils.py
    unique = (
        "transferlab_task_code_" + hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:12]
    )
    spec = importlib.util.spec_from_file_location(unique, file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the task's own code failed to import: say so in one line
        raise UserError(where, f"{key}: importing {file} failed: {type(error).__name__}: {error}",
                        "fix the task's Python module") from None  # fmt: skip
    function = getattr(module, attribute, None)
    if not callable(function):
        raise UserError(where, f"{key}: {file} has no function {attribute!r}", "fix the tag")
    return function


def resolve_task_code(doc: dict[str, Any], where: str, trust: bool) -> dict[str, Any]:
    """Return ``doc`` with its ``!function`` fields imported (only with ``trust``)."""
    tagged = sorted(k for k, v in doc.items() if isinstance(v, FunctionTag))
    if tagged and not trust:
        raise UserError(where, f"{', '.join(tagged)}: `!function` (Python code) is not supported "
                        "unless trusted", TRUST_FIX)  # fmt: skip
    unsupported = [k for k in tagged if k not in CALLABLE_FIELDS]
    if unsupported:
        raise UserError(where, f"{', '.join(unsupported)}: `!function` is not supported there",
                        f"Python code may stand for {', '.join(CALLABLE_FIELDS)}")  # fmt: skip
    return {k: load_function(v, where, k) if k in tagged else v for k, v in doc.items()}


@dataclass
class ProcessedData:
    """A task's rows after its ``process_docs`` function, split by split (as lm-eval applies it)."""

    data: Any
    process_docs: Callable[[Any], Any]

    def load(self, language: str, pool: str) -> list[dict[str, Any]]:
        """Return one split's rows as ``process_docs`` returns them."""
        import datasets

        rows = self.data.load(language, pool)
        processed = self.process_docs(datasets.Dataset.from_list(rows))
        return [dict(row) for row in processed]

    def describe(self) -> str:
        """Return the underlying data's description, noting the processing."""
        return self.data.describe() + " + process_docs"
