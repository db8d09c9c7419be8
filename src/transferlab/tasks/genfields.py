"""A transferlab task file of ``output_type: generate``: fields, prompt and generation section.

Layout (prompts and fields may be given per language, as for multiple choice)::

    output_type: generate
    fields: {id: id, question: question, answer: answer, references: references}
    generate: {until: ["\\n"], max_new_tokens: 32, filter_list: [...], metric_list: [...],
               headline: exact_match}
    eval: {target_delimiter: " "}
    train: {loss_on: target}
    prompt: {generate: "Question: {{question}}\\nAnswer:"}

``answer`` is the text a training example teaches; ``references`` (a column holding a list, or
one value) are what the metrics compare with, by default ``[answer]`` (an instruction item's
references are its constraints). ``filter_list`` and ``metric_list`` are lm-eval's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transferlab.errors import UserError
from transferlab.tasks.generative import GenerationSettings, parse_generation
from transferlab.tasks.prompts import field_value, per_language
from transferlab.tasks.types import GenItem, TrainExample

FIELD_KEYS = ("id", "question", "answer", "references")
GENERATE_KEYS = ("until", "max_new_tokens", "filter_list", "metric_list", "headline")
DEFAULT_PROMPT = "Question: {{question}}\nAnswer:"


def parse_generate_section(section: dict[str, Any], where: str) -> tuple[GenerationSettings, str]:
    """Return the task's generation settings and its headline metric (one of its values)."""
    kwargs = {k: section[k] for k in ("until", "max_new_tokens") if k in section}
    doc = {
        "generate": kwargs,
        **{k: section[k] for k in ("filter_list", "metric_list") if k in section},
    }
    settings = parse_generation(doc, where, "generate", "generate.")
    keys = settings.metric_keys()
    headline = str(section.get("headline", keys[0]))
    if headline not in keys:
        raise UserError(where, f"generate.headline: {headline!r} is not one of the task's values",
                        f"name one of: {', '.join(keys)}")  # fmt: skip
    return settings, headline


@dataclass(frozen=True)
class GenFieldRenderer:
    """Renders rows of a transferlab generative task: the prompt, the references, the answer.

    A training example is the prompt followed by ``target_delimiter + answer`` and the task's
    first stop string, so the adapter learns to end its answer where generation stops.
    """

    where: str
    fields: dict[str, Any]
    prompt: Any  # a template, or a mapping language → template
    settings: GenerationSettings
    target_delimiter: str = " "
    loss_on: str = "target"
    constraints: bool = False  # references are constraints (checked when items are rendered)

    def doc_id(self, row: dict[str, Any], index: int) -> str | None:
        """Return the row's item ID, or None to number items by position."""
        if "id" not in self.fields:
            return None
        return str(field_value(self.fields["id"], row, self.where, "fields.id"))

    def _value(self, key: str, row: dict[str, Any], language: str) -> Any:
        spec = per_language(self.fields[key], language, self.where, f"fields.{key}")
        return field_value(spec, row, self.where, f"fields.{key}")

    def context(self, row: dict[str, Any], language: str) -> str:
        """Return the prompt the model continues."""
        from transferlab.tasks.templates import render

        template = per_language(self.prompt, language, self.where, "prompt.generate")
        values = {**row, "question": self._value("question", row, language)}
        return render(template, values, self.where, "prompt.generate")

    def references(self, row: dict[str, Any], language: str, doc_id: str) -> tuple:
        """Return what the metrics compare the answer with (a constraint item: its constraints)."""
        key = "references" if "references" in self.fields else "answer"
        value = self._value(key, row, language)
        values = list(value) if isinstance(value, list | tuple) else [value]
        if not values or any(v is None or v == "" for v in values):
            raise UserError(self.where, f"fields.{key}: item {doc_id!r} has no reference",
                            "give every item a non-empty reference")  # fmt: skip
        if self.constraints:
            from transferlab.metrics.constraints import check_constraint

            for v in values:
                if not isinstance(v, dict):
                    raise UserError(self.where, f"fields.{key}: item {doc_id!r} has a constraint "
                                    "that is not a mapping", "write {type: ..., value: ...}")  # fmt: skip
                check_constraint(v, f"{self.where}: fields.{key} (item {doc_id!r})")
            return tuple(values)
        return tuple(str(v) for v in values)

    def eval_item(self, row: dict[str, Any], language: str, doc_id: str) -> GenItem:
        """Return the generative item: prompt and references."""
        return GenItem(doc_id, self.context(row, language),
                       self.references(row, language, doc_id), self.target_delimiter)  # fmt: skip

    def train_example(self, row: dict[str, Any], language: str, doc_id: str) -> TrainExample:
        """Return the prompt and the answer with the first stop string (loss on the answer)."""
        answer = self._value("answer", row, language)
        if answer is None or str(answer) == "":
            raise UserError(self.where, f"fields.answer: item {doc_id!r} has no answer",
                            "give every training item the text to learn")  # fmt: skip
        stop = self.settings.until[0] if self.settings.until else ""
        target = self.target_delimiter + str(answer) + stop
        return TrainExample(doc_id, self.context(row, language), target, self.loss_on, {})
