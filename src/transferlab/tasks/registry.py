"""The task registry: bundled and reference task YAMLs by name, task files by path, and the
text `transferlab tasks list` and `tasks show` print."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from transferlab.errors import UserError, did_you_mean
from transferlab.tasks.spec import TaskSpec
from transferlab.tasks.taskfile import load_task_file
from transferlab.tasks.types import GenItem, MCItem

PACKAGE_DIR = Path(__file__).parent
# Bundled suite first (runs offline), then the reference study's benchmarks (need the hub).
TASK_DIRS = (PACKAGE_DIR / "suite", PACKAGE_DIR / "reference")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def parse_task_ref(ref: str) -> tuple[str, str | None]:
    """Return (task name or path, language or None) from ``name``, ``name:lang`` or ``path:lang``."""
    head, sep, tail = ref.rpartition(":")
    if sep and head and _LANGUAGE.match(tail):
        return head, tail
    return ref, None


@lru_cache(maxsize=1)
def _registered() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for folder in TASK_DIRS:
        for path in sorted(folder.glob("*.yaml")):
            files[path.stem] = path
    return files


def list_tasks() -> list[str]:
    """Return the registered task names (bundled suite first, then reference benchmarks)."""
    return list(_registered())


def _is_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or "/" in ref or "\\" in ref or Path(ref).is_file()


@lru_cache(maxsize=64)
def _load_registered(name: str) -> TaskSpec:
    return load_task_file(_registered()[name])


@lru_cache(maxsize=64)
def _load_path(path: str, mtime_ns: int, trust_task_code: bool) -> TaskSpec:
    return load_task_file(Path(path), trust_task_code)


def get_task(ref: str, trust_task_code: bool = False) -> TaskSpec:
    """Return the TaskSpec of a registered name or a task YAML path (``:lang`` is checked, then
    dropped). Task files are validated now: their data is read and every test item rendered.
    ``trust_task_code`` imports an lm-eval file's ``!function`` fields from its folder."""
    name, language = parse_task_ref(str(ref))
    if _is_path(name):
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise UserError(name, "task file does not exist", "give the path to a task YAML")
        spec = _load_path(str(path), path.stat().st_mtime_ns, trust_task_code)
        spec.validate()
    elif name in _registered():
        spec = _load_registered(name)
    else:
        raise UserError(
            "task",
            f"unknown task {name!r}" + did_you_mean(name, list_tasks()),
            "run `transferlab tasks list`, or give the path to a task YAML",
        )
    if language is not None:
        spec.check_language(language)
    return spec


def describe_tasks() -> str:
    """Return the table `transferlab tasks list` prints: every registered task and its sizes."""
    rows = [("task", "languages", "eval", "train", "valid", "test", "data")]
    for name in list_tasks():
        spec = _load_registered(name)
        if spec.needs:
            plan = spec.plan
            sizes = [
                _declared(plan.n_train, 0.9),
                _declared(plan.n_train, 0.1),
                str(plan.n_test or "all"),
            ]
        else:
            counts = spec.split_sizes()
            sizes = [str(counts["train"]), str(counts["validation"]), str(counts["test"])]
        rows.append(
            (
                name,
                " ".join(spec.languages),
                f"{spec.answer_format}/{spec.metric}",
                *sizes,
                spec.data.describe(),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
             for row in rows]  # fmt: skip
    return "\n".join(line.rstrip() for line in lines)


def _declared(n: int | None, share: float) -> str:
    if n is None:
        return "all"
    validation = -(-n // 10)  # ceil(0.1 n), as the 90/10 cut takes it
    return str(n - validation if share > 0.5 else validation)


def render_task(
    ref: str, n_items: int = 3, split: str = "test", trust_task_code: bool = False
) -> str:
    """Return ``n_items`` rendered items of a task (every language, or the one in ``name:lang``)
    with their scored continuations, gold answer and training target."""
    name, language = parse_task_ref(ref)
    spec = get_task(ref, trust_task_code)
    languages = [language] if language else list(spec.languages)
    out: list[str] = []
    for lang in languages:
        items = spec.items(lang, split)
        examples = spec.train_examples(lang, split)
        out.append(
            f"== {spec.name}:{lang}  split={split}  items={len(items)}  "
            f"eval={spec.answer_format}/{spec.metric}  train={spec.train_format}  "
            f"hash={spec.content_hash(lang)}"
        )
        if spec.generation is not None:
            gen = spec.generation
            out.append(f"   generate: until={list(gen.until)!r} max_new_tokens={gen.max_new_tokens} "
                       f"pipelines={[p.name for p in gen.pipelines]} "
                       f"metrics={gen.metric_keys()}")  # fmt: skip
        for item, example in list(zip(items, examples, strict=True))[: max(n_items, 0)]:
            out.extend(_render_item(item))
            out.append(f"  train target {example.target!r} (loss on {example.loss_on})")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _render_item(item: MCItem | GenItem) -> list[str]:
    if isinstance(item, GenItem):
        return [f"-- item {item.doc_id}", item.context, f"  references {list(item.references)!r}"]
    lines = [f"-- item {item.doc_id}  gold={item.gold}", item.context]
    for i, choice in enumerate(item.choices):
        mark = "*" if i == item.gold else " "
        lines.append(f"  {mark} [{i}] {item.target_delimiter + choice!r}")
    return lines
