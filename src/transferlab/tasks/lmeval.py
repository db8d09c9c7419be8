"""Read an lm-evaluation-harness task YAML (``output_type: multiple_choice``) as it is.

Items render exactly as lm-eval builds its requests: the context is ``description`` followed by
``doc_to_text``, and choice *i* is scored as ``target_delimiter + doc_to_choice[i]``. Keys that
would change what lm-eval computes and that transferlab does not implement are rejected by name.
"""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from transferlab.errors import UserError
from transferlab.tasks.datasets import HubDataset
from transferlab.tasks.fewshot import FewShotContexts, with_fewshot
from transferlab.tasks.files import read_rows
from transferlab.tasks.generative import parse_generation
from transferlab.tasks.spec import TaskSpec
from transferlab.tasks.splits import SplitPlan
from transferlab.tasks.taskcode import ProcessedData, resolve_task_code
from transferlab.tasks.templates import render, resolve_choices, resolve_target, resolve_text
from transferlab.tasks.types import GenItem, MCItem, TrainExample
from transferlab.tasks.yamlfile import read_yaml

SUPPORTED = {
    "task", "output_type", "dataset_path", "dataset_name", "dataset_kwargs", "test_split",
    "validation_split", "training_split", "doc_to_text", "doc_to_choice", "doc_to_target",
    "target_delimiter", "description", "metric_list", "metadata", "include",
    "generation_kwargs", "filter_list", "num_fewshot", "fewshot_split", "fewshot_config",
    "fewshot_delimiter", "process_docs",
}  # fmt: skip
OUTPUT_TYPES = ("multiple_choice", "generate_until")
GENERATIVE = {"generation_kwargs", "filter_list"}  # keys only a generate_until task has
# Keys that do not change zero-shot log-likelihood scoring.
IGNORED = {
    "tag", "group", "task_alias", "should_decontaminate",
    "doc_to_decontamination_query", "aggregate_metric_list", "dataset_url",
}  # fmt: skip
LOCAL_FORMATS = {"json": "json", "csv": "csv", "parquet": "parquet"}
_SUFFIX_LANGUAGE = re.compile(r"^(?P<name>.+)_(?P<lang>[a-z]{2,3})$")


def _merge_includes(doc: dict[str, Any], path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if "include" not in doc:
        return doc
    included = (path.parent / str(doc["include"])).resolve()
    if included in seen or not included.is_file():
        raise UserError(
            str(path), f"include: cannot read {doc['include']!r}", "include a YAML next to this one"
        )
    base = _merge_includes(read_yaml(included), included, (*seen, path))
    merged = {k: v for k, v in base.items() if k != "include"}
    merged.update({k: v for k, v in doc.items() if k != "include"})
    return merged


def _check_supported(doc: dict[str, Any], where: str) -> None:
    supported = SUPPORTED if doc.get("output_type") == "generate_until" else SUPPORTED - GENERATIVE
    unsupported = sorted(k for k in doc if k not in supported | IGNORED)
    if unsupported:
        raise UserError(
            where,
            f"{', '.join(unsupported)}: not supported by transferlab's lm-eval reader",
            "remove these keys (zero-shot multiple choice reads doc_to_text/choice/target)",
        )
    if doc.get("output_type") not in OUTPUT_TYPES:
        raise UserError(
            where,
            f"output_type: {doc.get('output_type')!r} is not supported",
            "transferlab reads lm-eval tasks with `output_type: multiple_choice` or "
            "`generate_until`",
        )
    needed = ("doc_to_text", "doc_to_target")
    if doc["output_type"] == "multiple_choice":
        needed += ("doc_to_choice",)
    for key in needed:
        if doc.get(key) is None:
            raise UserError(where, f"{key}: missing", f"add {key} (a column name or a template)")
    kwargs = doc.get("dataset_kwargs") or {}
    extra = sorted(set(kwargs) - {"data_files"}) if isinstance(kwargs, dict) else ["?"]
    if extra:
        raise UserError(
            where, f"dataset_kwargs: {', '.join(extra)} not supported", "keep only data_files"
        )


def _data_path(text: str, yaml_path: Path) -> Path:
    # lm-eval hands data_files to `datasets`, which resolves them from the working directory;
    # a path that is not there is tried next to the YAML.
    path = Path(text).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return yaml_path.parent / path


@dataclass
class LmEvalFiles:
    """Rows of local data_files; pools are the data_files' split names (``train`` for a plain
    string or list, as `datasets` names it)."""

    files: dict[str, list[Path]]
    fmt: str
    where: str
    _cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def load(self, language: str, pool: str) -> list[dict[str, Any]]:
        """Return the rows of one split (the task has one language)."""
        if pool not in self.files:
            raise UserError(
                self.where,
                f"dataset_kwargs.data_files: no files for split {pool!r}",
                f"add `{pool}:` under data_files (it has {', '.join(self.files)})",
            )
        if pool not in self._cache:
            rows: list[dict[str, Any]] = []
            for path in self.files[pool]:
                rows.extend(read_rows(path, self.where, "dataset_kwargs.data_files", self.fmt))
            self._cache[pool] = rows
        return self._cache[pool]

    def describe(self) -> str:
        """Return a short description of where the rows come from."""
        return f"lm-eval data_files ({self.fmt})"


def _local_files(doc: dict[str, Any], path: Path, where: str) -> LmEvalFiles:
    data_files = (doc.get("dataset_kwargs") or {}).get("data_files")
    if not data_files:
        raise UserError(
            where,
            "dataset_kwargs.data_files: missing",
            "point data_files at the local data (a path, or a mapping split → path)",
        )
    if not isinstance(data_files, dict):
        data_files = {"train": data_files}
    files = {
        str(split): [_data_path(str(p), path) for p in (v if isinstance(v, list) else [v])]
        for split, v in data_files.items()
    }
    return LmEvalFiles(files, LOCAL_FORMATS[doc["dataset_path"]], where)


class _LmEvalRows:
    """What both lm-eval renderers share: documents numbered by position, and the text before a
    document's own (the description, then its few-shot examples)."""

    where: str
    description: str | None
    fewshot: FewShotContexts | None

    def doc_id(self, row: dict[str, Any], index: int) -> str | None:
        """lm-eval numbers documents by position; the task spec does the same."""
        return None

    def prefix(self, row: dict[str, Any], language: str, doc_id: str) -> str:
        """Return the description and the few-shot examples that precede the document."""
        text = ""
        if self.description:
            text = (
                row[self.description]
                if self.description in row
                else render(self.description, row, self.where, "description")
            )
        if self.fewshot is not None:
            text += self.fewshot.prefix(language, doc_id)
        return text


@dataclass(frozen=True)
class LmEvalRenderer(_LmEvalRows):
    """Renders rows with lm-eval's doc_to_text / doc_to_choice / doc_to_target semantics."""

    where: str
    doc_to_text: Any
    doc_to_choice: Any
    doc_to_target: Any
    target_delimiter: str = " "
    description: str | None = None
    fewshot: FewShotContexts | None = None

    def example(self, row: dict[str, Any]) -> tuple[str, str]:
        """Return a row as a few-shot example: its text and its gold choice."""
        item = replace(self, description=None, fewshot=None).eval_item(row, "und", "example")
        return item.context, item.choices[item.gold]

    def eval_item(self, row: dict[str, Any], language: str, doc_id: str) -> MCItem:
        """Return the item as lm-eval's requests for this document."""
        where = self.where
        text = resolve_text(self.doc_to_text, row, where, "doc_to_text")
        if not isinstance(text, str):
            raise UserError(
                where,
                "doc_to_text: renders a number (lm-eval's multiple-input form) — not supported",
                "render the question text; put the options in doc_to_choice",
            )
        choices = resolve_choices(self.doc_to_choice, row, where, "doc_to_choice")
        if not isinstance(choices, list | tuple) or not choices:
            raise UserError(where, f"doc_to_choice: item {doc_id} has no list of choices", "")
        choices = [str(c) for c in choices]
        gold = resolve_target(self.doc_to_target, row, where, "doc_to_target")
        if isinstance(gold, list):
            raise UserError(where, "doc_to_target: several gold answers are not supported", "")
        if isinstance(gold, str):
            if gold not in choices:
                raise UserError(
                    where,
                    f"doc_to_target: item {doc_id} has target {gold!r}, not one of its choices",
                    "render a 0-based index or the exact text of the correct choice",
                )
            gold = choices.index(gold)
        if not isinstance(gold, int) or not 0 <= gold < len(choices):
            raise UserError(
                where,
                f"doc_to_target: item {doc_id} has gold {gold!r}, out of range for "
                f"{len(choices)} choices",
                "doc_to_target is a 0-based index into doc_to_choice",
            )
        context = self.prefix(row, language, doc_id) + text
        return MCItem(doc_id, context, tuple(choices), gold, self.target_delimiter)

    def train_example(self, row: dict[str, Any], language: str, doc_id: str) -> TrainExample:
        """Return the context followed by the gold continuation (loss on the continuation)."""
        item = self.eval_item(row, language, doc_id)
        target = item.target_delimiter + item.choices[item.gold]
        return TrainExample(doc_id, item.context, target, "target", {"gold": item.gold})


@dataclass(frozen=True)
class LmEvalGenRenderer(_LmEvalRows):
    """Renders rows of a ``generate_until`` task: the context and the reference answer(s)."""

    where: str
    doc_to_text: Any
    doc_to_target: Any
    target_delimiter: str = " "
    description: str | None = None
    fewshot: FewShotContexts | None = None

    def example(self, row: dict[str, Any]) -> tuple[str, str]:
        """Return a row as a few-shot example: its text and its first reference."""
        text = resolve_text(self.doc_to_text, row, self.where, "doc_to_text")
        return str(text), _references(self.doc_to_target, row, self.where)[0]

    def eval_item(self, row: dict[str, Any], language: str, doc_id: str) -> GenItem:
        """Return the context lm-eval generates from and the references it compares with."""
        text = resolve_text(self.doc_to_text, row, self.where, "doc_to_text")
        prefix = self.prefix(row, language, doc_id)
        return GenItem(doc_id, prefix + str(text), _references(self.doc_to_target, row, self.where),
                       self.target_delimiter)  # fmt: skip

    def train_example(self, row: dict[str, Any], language: str, doc_id: str) -> TrainExample:
        """Return the context followed by the first reference (loss on the reference)."""
        item = self.eval_item(row, language, doc_id)
        target = item.target_delimiter + item.references[0]
        return TrainExample(doc_id, item.context, target, "target", {})


def _references(spec: Any, row: dict[str, Any], where: str) -> tuple[str, ...]:
    # lm-eval's doc_to_target for a task without choices: a column, or a template whose text is
    # the answer (a "[...]" text is several answers); digits stay text, unlike multiple choice
    if callable(spec):  # a trusted `!function`
        value: Any = spec(row)
    elif isinstance(spec, list):
        value = spec
    elif isinstance(spec, str) and spec in row:
        value = row[spec]
    elif isinstance(spec, int):
        value = spec
    else:
        value = render(str(spec), row, where, "doc_to_target")
        if len(value) >= 2 and value[0] == "[" and value[-1] == "]":
            try:
                value = ast.literal_eval(value)
            except (SyntaxError, ValueError):
                pass
    values = value if isinstance(value, list | tuple) else [value]
    if not values:
        raise UserError(where, "doc_to_target: an item has no reference answer", "render one")
    return tuple(str(v) for v in values)


def _name_and_language(doc: dict[str, Any]) -> tuple[str, str]:
    metadata = doc.get("metadata") or {}
    task = str(doc["task"])
    if isinstance(metadata, dict) and metadata.get("language"):
        return str(metadata.get("task_name", task)), str(metadata["language"])
    match = _SUFFIX_LANGUAGE.match(task)
    if match and _is_language(match["lang"]):
        return match["name"], match["lang"]
    return task, "und"


def _is_language(code: str) -> bool:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(code)
        return True
    except (UnknownLocaleError, ValueError):
        return False


def spec_from_lm_eval(doc: dict[str, Any], path: Path, trust_task_code: bool = False) -> TaskSpec:
    """Return the TaskSpec of an lm-eval task YAML (one language; multiple choice or generate).

    The language is ``metadata.language`` or a trailing ``_xx`` language code in the task name
    (``arc_de`` → task ``arc``, language ``de``); otherwise ``und``. ``!function`` fields are
    imported from the task's folder only with ``trust_task_code``.
    """
    where = str(path)
    doc = resolve_task_code(_merge_includes(doc, path), where, trust_task_code)
    _check_supported(doc, where)
    dataset_path = doc.get("dataset_path")
    if not dataset_path:
        raise UserError(where, "dataset_path: missing", "use json, csv or parquet with data_files")
    if dataset_path in LOCAL_FORMATS:
        data = _local_files(doc, path, where)
    else:
        data = HubDataset(str(dataset_path), where, config=doc.get("dataset_name"))
    if callable(doc.get("process_docs")):
        data = ProcessedData(data, doc["process_docs"])
    test_pool = doc.get("test_split") or doc.get("validation_split")
    if not test_pool:
        raise UserError(where, "test_split: missing", "name the split to evaluate on")
    train_pool = doc.get("training_split")
    if train_pool == test_pool:
        train_pool = None
    plan = SplitPlan(test_pool=str(test_pool), train_pool=train_pool)
    if doc["output_type"] == "generate_until":
        return _generative_spec(doc, where, data, plan)
    metrics = [m.get("metric") for m in doc.get("metric_list") or [] if isinstance(m, dict)]
    choices = doc["doc_to_choice"]
    letters = isinstance(choices, list) and all(
        isinstance(c, str) and len(c) == 1 and c in string.ascii_uppercase for c in choices
    )
    name, language = _name_and_language(doc)
    renderer = LmEvalRenderer(
        where,
        doc["doc_to_text"],
        choices,
        doc["doc_to_target"],
        str(doc.get("target_delimiter", " ")),
        doc.get("description"),
    )
    renderer = with_fewshot(renderer, doc, where, data, str(test_pool))
    spec = TaskSpec(
        name=name,
        languages=(language,),
        answer_format="letters" if letters else "cloze",
        metric="acc_norm" if "acc_norm" in metrics else "acc",
        data=data,
        renderer=renderer,
        plan=plan,
        description=f"lm-eval task {doc['task']}",
        train_format="continuation",
        origin=where,
    )
    return spec


def _generative_spec(doc: dict[str, Any], where: str, data: Any, plan: SplitPlan) -> TaskSpec:
    settings = parse_generation(doc, where)
    name, language = _name_and_language(doc)
    renderer = LmEvalGenRenderer(where, doc["doc_to_text"], doc["doc_to_target"],
                                 str(doc.get("target_delimiter", " ")), doc.get("description"))  # fmt: skip
    renderer = with_fewshot(renderer, doc, where, data, plan.test_pool)
    return TaskSpec(
        name=name,
        languages=(language,),
        answer_format="generate",
        metric=settings.metric_keys()[0],
        data=data,
        renderer=renderer,
        plan=plan,
        description=f"lm-eval task {doc['task']}",
        output_type="generate",
        train_format="continuation",
        origin=where,
        generation=settings,
    )
