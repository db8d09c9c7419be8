"""Jinja rendering with lm-evaluation-harness semantics: the same environment and the same rules
for telling a column name from a template and for turning rendered text into ints and lists."""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from typing import Any

import jinja2

from transferlab.errors import UserError


def _regex_replace(string: str, pattern: str, repl: str, count: int = 0) -> str:
    return re.sub(pattern, repl, string, count=count)


# Same settings as lm_eval.utils.env, so a template renders to the same bytes in both.
_ENV = jinja2.Environment(
    loader=jinja2.BaseLoader(), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
)
_ENV.filters["regex_replace"] = _regex_replace


def okapi_preprocess(text: str | None) -> str:
    """Return text cleaned as lm-eval's Okapi multilingual ARC/HellaSwag/TruthfulQA tasks do."""
    if text is None:
        return " "
    text = text.strip().replace(" [title]", ". ")
    return re.sub("\\[.*?\\]", "", text).replace("  ", " ")


# An addition to lm-eval's environment (templates that do not name it render the same).
_ENV.filters["okapi_preprocess"] = okapi_preprocess


@lru_cache(maxsize=512)
def _compile(template: str, where: str, field: str) -> jinja2.Template:
    try:
        return _ENV.from_string(template)
    except jinja2.TemplateSyntaxError as error:
        raise UserError(
            where, f"{field}: template syntax error: {error.message}", "fix the Jinja template"
        ) from None


def render(template: str, row: dict[str, Any], where: str, field: str) -> str:
    """Return ``template`` rendered over the row's columns; unknown columns are a UserError."""
    try:
        return _compile(template, where, field).render(**row)
    except jinja2.UndefinedError as error:
        columns = ", ".join(sorted(k for k in row if not k.startswith("_"))) or "none"
        raise UserError(
            where,
            f"{field}: template references an unknown column ({error.message})",
            f"use one of the data's columns: {columns}",
        ) from None
    except (TypeError, ValueError, AttributeError) as error:
        raise UserError(where, f"{field}: template failed on a row: {error}", "") from None


def template_columns(template: str) -> set[str]:
    """Return the top-level variable names a template reads (for validation before loading)."""
    from jinja2 import meta

    return meta.find_undeclared_variables(_ENV.parse(template))


def resolve_text(spec: str | int, row: dict[str, Any], where: str, field: str) -> Any:
    """Return lm-eval's ``doc_to_text`` value: a column, or a rendered template (digits → int)."""
    if callable(spec):  # a trusted `!function`
        return spec(row)
    if isinstance(spec, int):
        return spec
    if spec in row:
        return row[spec]
    text = render(spec, row, where, field)
    return ast.literal_eval(text) if text.isdigit() else text


def resolve_target(spec: str | int | list, row: dict[str, Any], where: str, field: str) -> Any:
    """Return lm-eval's ``doc_to_target`` value: int, str, or a list parsed from ``[...]``."""
    if callable(spec):  # a trusted `!function`
        return spec(row)
    if isinstance(spec, int | list):
        return spec
    if spec in row:
        return row[spec]
    text = render(spec, row, where, field)
    if text.isdigit():
        return ast.literal_eval(text)
    if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        try:
            return ast.literal_eval(text)
        except (SyntaxError, ValueError):
            return text
    return text


def resolve_choices(spec: str | list | dict, row: dict[str, Any], where: str, field: str) -> Any:
    """Return lm-eval's ``doc_to_choice`` value: a column, a template evaluated as a Python
    literal, a fixed list (its entries are not rendered, as in lm-eval) or a dict's values."""
    if callable(spec):  # a trusted `!function`
        return spec(row)
    if isinstance(spec, list):
        return spec
    if isinstance(spec, dict):
        return list(spec.values())
    if spec in row:
        return row[spec]
    text = render(spec, row, where, field)
    try:
        return ast.literal_eval(text)
    except (SyntaxError, ValueError):
        raise UserError(
            where,
            f"{field}: template must render a Python list of choices, got {text[:60]!r}",
            'render e.g. "{{[option_a, option_b]}}" or name a column holding a list',
        ) from None
