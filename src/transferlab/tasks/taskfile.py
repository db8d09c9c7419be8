"""Read a transferlab task YAML into a TaskSpec, rejecting bad input with file, field and fix.

Layout (every string under ``fields`` and ``prompt`` may also be a mapping language → string)::

    name: country_continent
    languages: [en, de]
    data: {files: data/x.{language}.jsonl, split_column: split}   # or {hub: owner/name, config: ...}
    splits: {test: {pool: test, n: 400}, train: {pool: train, n: 300}, align: strict}
    fields: {id: id, question: question, choices: choices, gold: gold}
    eval: {format: cloze, metric: acc_norm, target_delimiter: " "}
    train: {format: letters, loss_on: target}
    prompt: {cloze: "...{{question}}...", letters: "...{{options}}...", train: "...", option: "..."}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferlab.errors import UserError, did_you_mean
from transferlab.tasks.datasets import HubDataset, LocalFiles
from transferlab.tasks.lmeval import spec_from_lm_eval
from transferlab.tasks.prompts import PROMPT_KEYS, FieldRenderer
from transferlab.tasks.spec import ANSWER_FORMATS, METRICS, OUTPUT_TYPES, TRAIN_FORMATS, TaskSpec
from transferlab.tasks.splits import SplitPlan
from transferlab.tasks.yamlfile import read_yaml

TOP_KEYS = (
    "name", "description", "output_type", "languages", "data", "splits", "fields", "eval",
    "train", "prompt", "max_choices", "needs", "generate",
)  # fmt: skip
SECTION_KEYS = {
    "data": ("files", "split_column", "language_column", "hub", "config", "revision"),
    "splits": ("test", "train", "align", "seed"),
    "fields": ("id", "question", "choices", "gold"),
    "eval": ("format", "metric", "target_delimiter"),
    "train": ("format", "loss_on"),
    "prompt": PROMPT_KEYS,
}
DEFAULT_METRIC = {"cloze": "acc_norm", "letters": "acc"}


def check_keys(section: dict[str, Any], allowed: tuple[str, ...], where: str, prefix: str) -> None:
    """Raise a UserError naming the first key that is not in ``allowed``."""
    for key in section:
        if key not in allowed:
            raise UserError(
                where,
                f"{prefix}{key}: unknown key" + did_you_mean(str(key), allowed),
                f"allowed keys: {', '.join(allowed)}",
            )


def _require(section: dict[str, Any], key: str, where: str, prefix: str, fix: str) -> Any:
    if section.get(key) in (None, "", [], {}):
        raise UserError(where, f"{prefix}{key}: missing", fix)
    return section[key]


def _choice(value: Any, allowed: tuple[str, ...], where: str, name: str) -> str:
    if value not in allowed:
        raise UserError(
            where,
            f"{name}: {value!r} is not supported" + did_you_mean(str(value), allowed),
            f"use one of: {', '.join(allowed)}",
        )
    return value


def _section(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    section = doc.get(key) or {}
    if not isinstance(section, dict):
        raise UserError(where, f"{key}: must be a mapping", "see the layout of a task YAML")
    check_keys(section, SECTION_KEYS[key], where, f"{key}.")
    return section


def _split(value: Any, where: str, name: str) -> tuple[str, int | None]:
    if isinstance(value, str):
        return value, None
    if not isinstance(value, dict) or "pool" not in value:
        raise UserError(
            where, f"splits.{name}.pool: missing", f"write splits.{name}: {{pool: {name}}}"
        )
    check_keys(value, ("pool", "n"), where, f"splits.{name}.")
    n = value.get("n")
    if n is not None and (not isinstance(n, int) or n < 1):
        raise UserError(where, f"splits.{name}.n: must be a positive integer", "")
    return str(value["pool"]), n


def spec_from_mapping(doc: dict[str, Any], where: str, base: Path) -> TaskSpec:
    """Return the TaskSpec a transferlab task mapping describes (relative files from ``base``)."""
    check_keys(doc, TOP_KEYS, where, "")
    name = str(_require(doc, "name", where, "", "give the task a name"))
    languages = _require(doc, "languages", where, "", "list the task's languages, e.g. [en, de]")
    if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
        raise UserError(where, "languages: must be a list of language codes", "e.g. [en, de]")
    if len(set(languages)) != len(languages):
        raise UserError(where, "languages: a language is listed twice", "list each once")
    output_type = _choice(
        doc.get("output_type", "multiple_choice"), OUTPUT_TYPES, where, "output_type"
    )

    data = _section(doc, "data", where)
    if ("files" in data) == ("hub" in data):
        raise UserError(where, "data: needs exactly one of `files` or `hub`", "see the task layout")
    if "files" in data:
        data = LocalFiles(
            base,
            data["files"],
            where,
            split_column=data.get("split_column"),
            language_column=data.get("language_column"),
        )
    else:
        data = HubDataset(
            data["hub"],
            where,
            config=data.get("config", "{language}"),
            revision=data.get("revision"),
        )

    splits = _section(doc, "splits", where)
    test_pool, n_test = _split(splits.get("test", "test"), where, "test")
    train_pool, n_train = (None, None)
    if splits.get("train", "train") is not None:
        train_pool, n_train = _split(splits.get("train", "train"), where, "train")
    if isinstance(data, LocalFiles) and data.pools() is not None:
        if "train" not in splits and "train" not in data.pools():
            train_pool = None
    plan = SplitPlan(
        test_pool=test_pool,
        train_pool=train_pool,
        n_test=n_test,
        n_train=n_train,
        align=_choice(
            splits.get("align", "strict"), ("strict", "intersect"), where, "splits.align"
        ),
        seed=int(splits.get("seed", 42)),
    )

    if output_type == "generate":
        return _generative_spec(doc, where, name, tuple(languages), data, plan)
    if "generate" in doc:
        raise UserError(where, "generate: only a task of output_type generate has this section",
                        "set output_type: generate, or remove the section")  # fmt: skip
    fields = _section(doc, "fields", where)
    for key in ("question", "choices", "gold"):
        _require(fields, key, where, "fields.", f"name the column (or template) for the {key}")
    evaluation = _section(doc, "eval", where)
    answer_format = _choice(
        _require(evaluation, "format", where, "eval.", "choose cloze or letters"),
        ANSWER_FORMATS,
        where,
        "eval.format",
    )
    metric = _choice(
        evaluation.get("metric", DEFAULT_METRIC[answer_format]), METRICS, where, "eval.metric"
    )
    train = _section(doc, "train", where)
    train_format = _choice(train.get("format", "letters"), TRAIN_FORMATS, where, "train.format")
    loss_on = train.get("loss_on")
    if loss_on is not None:
        _choice(loss_on, ("target", "all"), where, "train.loss_on")
    max_choices = doc.get("max_choices")
    if max_choices is not None and (not isinstance(max_choices, int) or max_choices < 2):
        raise UserError(where, "max_choices: must be an integer ≥ 2", "")
    renderer = FieldRenderer(
        where=where,
        fields=fields,
        answer_format=answer_format,
        train_format=train_format,
        loss_on=loss_on,
        target_delimiter=str(evaluation.get("target_delimiter", " ")),
        prompts=_section(doc, "prompt", where),
        max_choices=max_choices,
    )
    return TaskSpec(
        name=name,
        languages=tuple(languages),
        answer_format=answer_format,
        metric=metric,
        data=data,
        renderer=renderer,
        plan=plan,
        description=str(doc.get("description", "")).strip(),
        output_type=output_type,
        train_format=train_format,
        origin=where,
        needs=str(doc.get("needs", "")),
    )


def _generative_spec(doc: dict[str, Any], where: str, name: str, languages: tuple[str, ...],
                     data: Any, plan: SplitPlan) -> TaskSpec:  # fmt: skip
    """Return the TaskSpec of a transferlab task file of ``output_type: generate``."""
    from transferlab.tasks.genfields import (
        DEFAULT_PROMPT,
        FIELD_KEYS,
        GENERATE_KEYS,
        GenFieldRenderer,
        parse_generate_section,
    )

    for key in ("max_choices",):
        if key in doc:
            raise UserError(where, f"{key}: a generative task has no choices", "remove the key")
    fields = doc.get("fields") or {}
    if not isinstance(fields, dict):
        raise UserError(where, "fields: must be a mapping", "see the layout of a task YAML")
    check_keys(fields, FIELD_KEYS, where, "fields.")
    _require(fields, "question", where, "fields.", "name the column (or template) for the prompt")
    if "answer" not in fields and "references" not in fields:
        raise UserError(where, "fields.answer: missing", "name the column of the reference answer")
    generate = doc.get("generate") or {}
    if not isinstance(generate, dict):
        raise UserError(where, "generate: must be a mapping", 'e.g. generate: {until: ["\\n"]}')
    check_keys(generate, GENERATE_KEYS, where, "generate.")
    settings, headline = parse_generate_section(generate, where)
    evaluation = doc.get("eval") or {}
    if not isinstance(evaluation, dict):
        raise UserError(where, "eval: must be a mapping", "e.g. eval: {target_delimiter: ' '}")
    if "format" in evaluation:
        raise UserError(where, f"eval.format: a generative task has no answer format "
                        f"({evaluation['format']!r})", "remove eval.format (it generates)")  # fmt: skip
    if "metric" in evaluation:
        raise UserError(where, "eval.metric: a generative task names its headline elsewhere",
                        "write generate.headline (one of its metric_list)")  # fmt: skip
    check_keys(evaluation, ("target_delimiter",), where, "eval.")
    train = doc.get("train") or {}
    if not isinstance(train, dict):
        raise UserError(where, "train: must be a mapping", "e.g. train: {loss_on: target}")
    check_keys(train, ("loss_on",), where, "train.")
    loss_on = _choice(train.get("loss_on", "target"), ("target", "all"), where, "train.loss_on")
    prompt = doc.get("prompt") or {}
    if not isinstance(prompt, dict):
        raise UserError(where, "prompt: must be a mapping", "e.g. prompt: {generate: '...'}")
    check_keys(prompt, ("generate",), where, "prompt.")
    renderer = GenFieldRenderer(
        where=where,
        fields=fields,
        prompt=prompt.get("generate", DEFAULT_PROMPT),
        settings=settings,
        target_delimiter=str(evaluation.get("target_delimiter", " ")),
        loss_on=loss_on,
        constraints=any(m.name == "constraints_met" for m in settings.metrics),
    )
    return TaskSpec(
        name=name,
        languages=languages,
        answer_format="generate",
        metric=headline,
        data=data,
        renderer=renderer,
        plan=plan,
        description=str(doc.get("description", "")).strip(),
        output_type="generate",
        train_format="continuation",
        origin=where,
        needs=str(doc.get("needs", "")),
        generation=settings,
    )


def load_task_file(path: Path, trust_task_code: bool = False) -> TaskSpec:
    """Return the TaskSpec of a transferlab task YAML or an lm-evaluation-harness task YAML
    (``trust_task_code``: import its ``!function`` fields)."""
    doc = read_yaml(path)
    if "task" in doc and "name" not in doc:
        return spec_from_lm_eval(doc, path, trust_task_code)
    return spec_from_mapping(doc, str(path), path.parent)
