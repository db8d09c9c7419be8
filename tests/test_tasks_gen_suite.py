"""The bundled generative tasks: parallel items, answers right by construction, native prompts."""

from __future__ import annotations

import re

import pytest

from transferlab.metrics.constraints import constraints_met
from transferlab.tasks import get_task

GENERATIVE = ["math_word_problems", "country_summary", "constrained_writing"]
LANGUAGES = ("ar", "bn", "de", "en", "es", "fr", "hi", "id", "it", "pt", "zh")
SPLITS = ("train", "validation", "test")


@pytest.mark.parametrize("task", GENERATIVE)
def test_items_are_parallel_and_every_split_is_disjoint(task):
    spec = get_task(task)
    assert spec.languages == LANGUAGES and spec.output_type == "generate"
    ids = {split: spec.split_ids(split) for split in SPLITS}
    assert len(ids["test"]) >= 60 and not set(ids["test"]) & set(ids["train"] + ids["validation"])
    for language in LANGUAGES:
        for split in SPLITS:
            assert [i.doc_id for i in spec.items(language, split)] == ids[split]


def _english_answer(question: str) -> int:
    """Replay an English problem from its text."""
    value = int(re.match(r"\w+ has (\d+) kilograms?", question)[1])
    for sentence in question.split(". ")[1:]:
        numbers = [int(n) for n in re.findall(r"\d+", sentence)]
        if "bags" in sentence:
            value += numbers[0] * numbers[1]
        elif "more" in sentence:
            value += numbers[0]
        elif "uses" in sentence or "gives" in sentence:
            value -= numbers[0]
        elif "shares" in sentence:
            assert value % numbers[0] == 0
            value //= numbers[0]
    return value


def test_math_answers_follow_from_the_problems_and_agree_in_every_language():
    spec = get_task("math_word_problems")
    steps = set()
    for split in SPLITS:
        english = spec.items("en", split)
        for item in english:
            # the prompt opens with four solved problems, then the item's own
            question = item.context.rsplit("Question: ", 1)[1].removesuffix("\nAnswer:")
            assert item.references == (str(_english_answer(question)),), item.doc_id
            steps.add(question.count(". ") - 1)  # sentences between the start and the question
        for language in LANGUAGES:
            for item, en in zip(spec.items(language, split), english, strict=True):
                assert en.references[0] in item.references  # the Latin digits always count
    assert steps == {1, 2}  # 1–2 steps (the start and the question are not steps)
    bengali = spec.items("bn", "test")[0]
    assert bengali.references[1] == "".join(chr(0x09E6 + int(d)) for d in bengali.references[0])
    example = spec.train_examples("bn", "test")[0]
    assert example.target.endswith(" = " + bengali.references[1] + "\n")  # the locale's digits
    for example in spec.train_examples("en", "train"):  # one true equation per step
        for equation in example.target.strip().split("; "):
            left, right = equation.replace("×", "*").replace("/", "//").split(" = ")
            assert eval(left) == int(right), example  # noqa: S307 (digits and + - * // only)


def test_a_summary_keeps_the_passage_facts_on_one_line():
    spec = get_task("country_summary")
    for language in LANGUAGES:
        for item in spec.items(language, "test"):
            (reference,) = item.references
            assert "\n" not in reference
            parts = re.split(
                r"[:：،，,] ?| و| and | und | et | e | y | dan | এবং | और |和", reference
            )
            for part in filter(None, (p.strip(" .") for p in parts)):
                assert part in item.context, (language, part, item.context)


def test_every_writing_answer_meets_all_its_constraints_and_the_rules_are_parallel():
    spec = get_task("constrained_writing")
    for split in SPLITS:
        kinds = [[c["type"] for c in i.references] for i in spec.items("en", split)]
        for language in LANGUAGES:
            items = spec.items(language, split)
            assert [[c["type"] for c in i.references] for i in items] == kinds
            for item, example in zip(items, spec.train_examples(language, split), strict=True):
                assert {"type": "language", "value": language} in item.references
                assert len(item.references) == 4
                assert constraints_met(example.target.strip(), item.references) == 1.0, item


SCRIPT = {"ar": "ARABIC", "bn": "BENGALI", "hi": "DEVANAGARI", "zh": "CJK"}


@pytest.mark.parametrize("task", GENERATIVE)
def test_prompts_are_written_in_each_languages_script(task):
    import unicodedata

    spec = get_task(task)
    for language in LANGUAGES:
        expected = SCRIPT.get(language, "LATIN")
        for item in spec.items(language, "test")[:20]:
            letters = [c for c in item.context if c.isalpha()]
            share = sum(unicodedata.name(c, "").startswith(expected) for c in letters)
            assert share / len(letters) > 0.85, (language, item.context)
