"""Generative tasks: generation settings, answer-extraction filters and metrics, as lm-eval has them.

- ``until`` / ``max_new_tokens``: lm-eval's ``generation_kwargs`` (``until``, ``max_gen_toks``,
  default 256); only greedy decoding (``do_sample: false``, ``temperature: 0``) is accepted.
- Filters (lm-eval's ``filter_list``): named pipelines of steps, each step a registered filter
  over the generated text — ``regex`` (``regex_pattern``, ``group_select``, ``fallback``, as
  lm-eval's RegexFilter: ``findall``, the ``group_select``-th match, the first non-empty group
  of a tuple, stripped), ``remove_whitespace`` (strip), ``take_first`` (one greedy response:
  unchanged), ``lowercase``, ``uppercase``. No ``filter_list`` is lm-eval's pipeline ``none``.
- Metrics (``metric_list``): registered in ``transferlab.metrics`` with their options. An item's
  value is named after the metric when the task has one pipeline, else ``metric@pipeline``
  (lm-eval writes ``metric,pipeline``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transferlab.errors import UserError, did_you_mean

GREEDY_KEYS = {"until", "max_gen_toks", "max_new_tokens", "do_sample", "temperature"}


def _regex(text: str, regex_pattern: str, group_select: int = 0, fallback: str = "[invalid]"):
    matches = re.findall(regex_pattern, text)
    if not matches:
        return fallback
    match = matches[group_select]
    if isinstance(match, tuple):
        groups = [m for m in match if m]
        match = groups[0] if groups else fallback
    return match.strip()


FILTERS: dict[str, Callable[..., str]] = {
    "regex": _regex,
    "remove_whitespace": lambda text: text.strip(),
    "take_first": lambda text: text,  # one greedy response per item
    "lowercase": lambda text: text.lower(),
    "uppercase": lambda text: text.upper(),
}
_FILTER_OPTIONS = {"regex": {"regex_pattern", "group_select", "fallback"}}


@dataclass(frozen=True)
class Pipeline:
    """A named sequence of filters turning a generation into the extracted answer."""

    name: str
    steps: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    def apply(self, text: str) -> str:
        """Return the extracted answer of ``text``."""
        for function, options in self.steps:
            text = FILTERS[function](text, **dict(options))
        return text


@dataclass(frozen=True)
class MetricSpec:
    """A metric of a task and the options it is computed with."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class GenerationSettings:
    """How a generative task is generated, extracted and scored."""

    until: tuple[str, ...] = ()
    max_new_tokens: int = 256
    pipelines: tuple[Pipeline, ...] = (Pipeline("none", (("take_first", ()),)),)
    metrics: tuple[MetricSpec, ...] = field(default_factory=tuple)

    def metric_keys(self) -> list[str]:
        """Return the names of the per-item values, in order (see the module docstring)."""
        if len(self.pipelines) == 1:
            return [m.name for m in self.metrics]
        return [f"{m.name}@{p.name}" for p in self.pipelines for m in self.metrics]


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _step(step: Any, where: str, key: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    if not isinstance(step, dict) or "function" not in step:
        raise UserError(where, f"{key}: each filter needs a `function`", "e.g. function: regex")
    function = str(step["function"])
    if function not in FILTERS:
        raise UserError(where, f"{key}: unknown filter {function!r}{did_you_mean(function, list(FILTERS))}",
                        f"use one of {', '.join(FILTERS)}")  # fmt: skip
    options = {k: _frozen(v) for k, v in step.items() if k != "function"}
    unknown = set(options) - _FILTER_OPTIONS.get(function, set())
    if unknown:
        raise UserError(where, f"{key}: filter {function} has no option {sorted(unknown)[0]!r}",
                        f"it takes {sorted(_FILTER_OPTIONS.get(function, set())) or 'none'}")  # fmt: skip
    if function == "regex":
        try:
            re.compile(str(options.get("regex_pattern", "")))
        except re.error as error:
            raise UserError(where, f"{key}: regex_pattern does not compile ({error})",
                            "fix the regular expression") from None  # fmt: skip
        if "regex_pattern" not in options:
            raise UserError(where, f"{key}: regex needs regex_pattern", "add regex_pattern")
    return function, tuple(sorted(options.items()))


def parse_generation(
    doc: dict[str, Any], where: str, kwargs_key: str = "generation_kwargs", prefix: str = ""
) -> GenerationSettings:
    """Return the settings of an lm-eval ``generate_until`` task (UserError on what is not met).

    ``doc`` holds ``kwargs_key`` (until, max_gen_toks, ...), ``filter_list`` and ``metric_list``;
    ``prefix`` is where those two sit in the file, for messages (a transferlab task file keeps
    all three under ``generate.``).
    """
    from transferlab.metrics import check_options, get_metric

    kwargs = doc.get(kwargs_key) or {}
    if not isinstance(kwargs, dict):
        raise UserError(where, f"{kwargs_key}: must be a mapping", 'e.g. until: ["\\n"]')
    unknown = sorted(set(kwargs) - GREEDY_KEYS)
    if unknown:
        raise UserError(where, f"{kwargs_key}: {', '.join(unknown)} not supported",
                        "transferlab generates greedily: until, max_gen_toks, do_sample: false")  # fmt: skip
    if kwargs.get("do_sample") or float(kwargs.get("temperature") or 0) > 0:
        raise UserError(where, f"{kwargs_key}: sampling is not supported",
                        "use do_sample: false (greedy, as for evaluation)")  # fmt: skip
    until = kwargs.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    if any(not isinstance(s, str) or s == "" for s in until):
        raise UserError(where, f"{kwargs_key}.until: an empty or non-text stop string",
                        "give each stop as non-empty text")  # fmt: skip
    budget_key = "max_gen_toks" if "max_gen_toks" in kwargs else "max_new_tokens"
    budget = kwargs.get(budget_key, 256)
    if isinstance(budget, str) and budget.strip().isdigit():
        budget = int(budget)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise UserError(
            where, f"{kwargs_key}.{budget_key}: {budget!r} must be positive", "e.g. 256"
        )
    pipelines = []
    for k, entry in enumerate(doc.get("filter_list") or []):
        key = f"{prefix}filter_list[{k}]"
        if not isinstance(entry, dict) or not entry.get("filter"):
            raise UserError(where, f"{key}: needs `name` and a `filter` list", "see lm-eval's MGSM")
        steps = tuple(_step(s, where, f"{key}.filter") for s in entry["filter"])
        pipelines.append(Pipeline(str(entry.get("name", f"pipeline{k}")), steps))
    metrics = []
    for k, entry in enumerate(doc.get("metric_list") or [{"metric": "exact_match"}]):
        key = f"{where}: {prefix}metric_list[{k}]"
        name = str(entry.get("metric")) if isinstance(entry, dict) else str(entry)
        metric = get_metric(name, key)
        if metric.output_type != "generate":
            raise UserError(key, f"{name} is a multiple-choice metric",
                            "name a generate metric (exact_match, rouge_l, chrf, ...)")  # fmt: skip
        options = {o: _frozen(v) for o, v in (entry.items() if isinstance(entry, dict) else [])
                   if o not in ("metric", "aggregation", "higher_is_better")}  # fmt: skip
        check_options(metric, options, key)
        metrics.append(MetricSpec(name, tuple(sorted(options.items()))))
    settings = GenerationSettings(tuple(until), budget, metrics=tuple(metrics))
    return (
        settings
        if not pipelines
        else GenerationSettings(tuple(until), budget, tuple(pipelines), tuple(metrics))
    )
