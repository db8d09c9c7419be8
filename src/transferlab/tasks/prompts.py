"""Render a row into an evaluation item and a training example from a task's fields and prompts.

A transferlab task names a question, choices, a gold answer and an ID in each row (columns or
Jinja templates), and wraps them in per-format prompt templates that may differ per language.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

from transferlab.errors import UserError
from transferlab.tasks.templates import render, resolve_choices, resolve_target
from transferlab.tasks.types import MCItem, TrainExample

LETTERS = string.ascii_uppercase

# The reference study's scaffolding (PROTOCOL.md §1), used when a task does not say otherwise.
DEFAULT_PROMPTS: dict[str, str] = {
    "cloze": "Question: {{question}}\nAnswer:",
    "letters": "Question: {{question}}\n{{options}}\nAnswer:",
    "option": "{{letter}}) {{choice}}",
    "train_letters": "Question: {{question}}\n{{options}}\nAnswer:",
    "train_answer_text": "Question: {{question}}\nAnswer:",
    "train_option": "{{letter}}) {{choice}}",
}
PROMPT_KEYS = ("cloze", "letters", "option", "train", "train_option")


def per_language(value: Any, language: str, where: str, field_name: str) -> Any:
    """Return a value given once or per language (a mapping language → value, 'default' allowed)."""
    if not isinstance(value, dict):
        return value
    if language in value:
        return value[language]
    if "default" in value:
        return value["default"]
    raise UserError(
        where,
        f"{field_name}: no entry for language {language!r}",
        f"add `{language}:` (or `default:`) under {field_name}",
    )


def field_value(spec: Any, row: dict[str, Any], where: str, field_name: str) -> Any:
    """Return a column's value when ``spec`` names one, else ``spec`` rendered as a template."""
    if isinstance(spec, str) and spec in row:
        return row[spec]
    if isinstance(spec, str):
        if "{{" not in spec and "{%" not in spec:
            columns = ", ".join(k for k in row if not k.startswith("_"))
            raise UserError(
                where,
                f"{field_name}: column {spec!r} is not in the data",
                f"name one of the data's columns ({columns}) or write a {{{{ }}}} template",
            )
        return render(spec, row, where, field_name)
    return spec


def gold_index(raw: Any, choices: list[str], where: str, doc_id: str) -> int:
    """Return the gold index from an int, digits, a letter or the correct choice's text."""
    if isinstance(raw, str):
        text = raw.strip()
        if text.isdigit():
            raw = int(text)
        elif text in choices:
            raw = choices.index(text)
        elif len(text) == 1 and text in LETTERS:
            raw = LETTERS.index(text)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise UserError(
            where,
            f"fields.gold: item {doc_id!r} has gold {raw!r}, which is not an index, a letter "
            "or one of its choices",
            "make gold an index into choices (0-based), a letter A–D or the correct choice text",
        )
    if not 0 <= raw < len(choices):
        raise UserError(
            where,
            f"fields.gold: item {doc_id!r} has gold {raw}, out of range for its "
            f"{len(choices)} choices",
            "gold is a 0-based index into choices",
        )
    return raw


@dataclass(frozen=True)
class FieldRenderer:
    """Renders rows through ``fields`` (id, question, choices, gold) and prompt templates."""

    where: str
    fields: dict[str, Any]
    answer_format: str = "cloze"
    train_format: str = "letters"
    loss_on: str | None = None
    target_delimiter: str = " "
    prompts: dict[str, Any] = field(default_factory=dict)
    max_choices: int | None = None

    def doc_id(self, row: dict[str, Any], index: int) -> str | None:
        """Return the row's item ID, or None to number items by position."""
        if "id" not in self.fields:
            return None
        return str(field_value(self.fields["id"], row, self.where, "fields.id"))

    def parts(self, row: dict[str, Any], language: str, doc_id: str) -> tuple[str, list[str], int]:
        """Return (question, choices, gold index) of a row."""
        where = self.where
        question = field_value(
            per_language(self.fields["question"], language, where, "fields.question"),
            row,
            where,
            "fields.question",
        )
        spec = per_language(self.fields["choices"], language, where, "fields.choices")
        if isinstance(spec, list):
            raw = [field_value(s, row, where, "fields.choices") for s in spec]
            choices = [str(c) for c in raw if c not in (None, "")]
        else:
            choices = resolve_choices(spec, row, where, "fields.choices")
            if not isinstance(choices, list | tuple) or not choices:
                raise UserError(
                    where,
                    f"fields.choices: item {doc_id!r} has no list of choices",
                    "name a column holding a list, or give a list of columns",
                )
            choices = [str(c) for c in choices]
        gold_spec = per_language(self.fields["gold"], language, where, "fields.gold")
        raw_gold = (
            gold_spec
            if isinstance(gold_spec, int)
            else resolve_target(gold_spec, row, where, "fields.gold")
        )
        gold = gold_index(raw_gold, choices, where, doc_id)
        if self.max_choices is not None and len(choices) > self.max_choices:
            if gold >= self.max_choices:
                raise UserError(
                    where,
                    f"max_choices: item {doc_id!r} has its gold answer beyond the first "
                    f"{self.max_choices} choices",
                    "raise max_choices",
                )
            choices = choices[: self.max_choices]
        if len(choices) > len(LETTERS) and "letters" in (self.answer_format, self.train_format):
            raise UserError(
                where,
                f"fields.choices: item {doc_id!r} has {len(choices)} choices, more than letters",
                "use the cloze format, or set max_choices",
            )
        return str(question), choices, gold

    def _template(self, key: str, language: str) -> str:
        if key in self.prompts:
            return per_language(self.prompts[key], language, self.where, f"prompt.{key}")
        return DEFAULT_PROMPTS[f"train_{self.train_format}" if key == "train" else key]

    def _options(self, choices: list[str], template: str, key: str) -> str:
        return "\n".join(
            render(template, {"letter": LETTERS[i], "choice": c}, self.where, f"prompt.{key}")
            for i, c in enumerate(choices)
        )

    def _context(self, row, language, key, question, choices, option_key) -> str:
        values = {**row, "question": question, "choices": choices}
        if option_key:
            option = self._template(option_key, language)
            values["options"] = self._options(choices, option, option_key)
        return render(self._template(key, language), values, self.where, f"prompt.{key}")

    def eval_item(self, row: dict[str, Any], language: str, doc_id: str) -> MCItem:
        """Return the evaluation item in the task's answer format."""
        question, choices, gold = self.parts(row, language, doc_id)
        if self.answer_format == "letters":
            context = self._context(row, language, "letters", question, choices, "option")
            scored = tuple(LETTERS[: len(choices)])
        else:
            context = self._context(row, language, "cloze", question, choices, None)
            scored = tuple(choices)
        return MCItem(doc_id, context, scored, gold, self.target_delimiter)

    def train_example(self, row: dict[str, Any], language: str, doc_id: str) -> TrainExample:
        """Return the training example in the task's training format."""
        question, choices, gold = self.parts(row, language, doc_id)
        if self.train_format == "continuation":
            item = self.eval_item(row, language, doc_id)
            prompt, target, loss_on = item.context, item.choices[gold], "target"
        elif self.train_format == "answer_text":
            prompt = self._context(row, language, "train", question, choices, None)
            target, loss_on = choices[gold], "all"
        else:
            prompt = self._context(row, language, "train", question, choices, "train_option")
            target, loss_on = LETTERS[gold], "target"
        return TrainExample(
            doc_id,
            prompt,
            self.target_delimiter + target,
            self.loss_on or loss_on,
            {"gold": gold, "n_choices": len(choices)},
        )
