"""The bundled generative tasks (called by build_suite.py, which writes the whole suite).

- ``math_word_problems``: MGSM-style problems of 1–2 steps on a quantity of goods (CLDR unit
  phrases with their plural forms, per-language names and goods, the locale's digits), integer
  answers exact by construction, scored by exact match on the first number of the output.
- ``country_summary``: a three-sentence passage of CLDR facts about a country (continent,
  legal tender, official languages) condensed into the one-line reference
  ``country: continent, currency, languages``; ROUGE-L (headline) and chrF.
- ``constrained_writing``: write about a country under 4 verifiable constraints (response
  language, mention the country, and two of sentence count, word limit, no digits, ending with
  "!"); ``constraints_met``. The training answer is built from the same facts and checked to
  meet every constraint of its item in every language (an item that misses one anywhere is
  left out everywhere, so IDs stay parallel).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from babel.languages import get_official_languages
from babel.lists import format_list
from babel.units import format_unit
from build_suite import LOCALES, ZERO_DIGIT, _BlockDumper, rng_for, split_ids
from suite_gen_phrases import FACTS, GOODS, MATH, NAMES, RULES, SUMMARY, SUMMARY_SEPARATORS
from suite_phrases import LANGUAGES, SCAFFOLD

from transferlab.metrics.constraints import constraints_met
from transferlab.metrics.text import tokens


def _digits(text: str, language: str) -> str:
    """Return ``text`` with ASCII digits in the locale's default digits (babel formats Latin)."""
    zero = ord(ZERO_DIGIT[LOCALES[language].default_numbering_system])
    return "".join(chr(zero + int(c)) if "0" <= c <= "9" else c for c in text)


# --- math word problems ---------------------------------------------------------------------


def math_problems(n: int = 400, key: str = "problems") -> list[dict]:
    """Return problems as language-free steps; every amount along the way stays positive.

    One step in two problems of three, two in the rest; small amounts (start 2–12, one-digit
    steps, results below 40). Gemma 3 270M solves about one in five of these, and almost none
    of MGSM's 2–4 step problems (measured: 0–7 % in every language), so this is the length at
    which the task sits neither at the floor nor at the ceiling.
    """
    rng = rng_for("math", key)
    items = []
    for index in range(n):
        start = value = rng.randint(2, 12)
        ops: list[list[Any]] = []
        n_steps = rng.choice((1, 1, 2))
        for step in range(n_steps):
            op = rng.choice(
                ["buy", "use", "give", "bags"] + (["split"] if step == n_steps - 1 else [])
            )
            divisors = [k for k in (2, 3) if value % k == 0]
            if (op in ("use", "give") and value < 3) or (op == "split" and not divisors):
                op = "buy"
            if op == "buy":
                ops.append([op, rng.randint(1, 6)])
                value += ops[-1][1]
            elif op in ("use", "give"):
                ops.append([op, rng.randint(1, min(6, value - 1))])
                value -= ops[-1][1]
            elif op == "bags":
                ops.append([op, rng.randint(2, 3), rng.randint(2, 4)])
                value += ops[-1][1] * ops[-1][2]
            else:
                ops.append([op, rng.choice(divisors)])
                value //= ops[-1][1]
        items.append({"id": f"m{index:03d}", "start": start, "steps": ops, "answer": value,
                      "person": rng.randrange(6), "goods": rng.randrange(4)})  # fmt: skip
    return items


def math_row(item: dict, language: str) -> dict:
    """Return a problem's row in one language: the question, the answer, its references."""
    frames, name = MATH[language], NAMES[language][item["person"]]
    thing = GOODS[language][item["goods"]]

    def kilograms(n: int) -> str:
        return _digits(format_unit(n, "mass-kilogram", locale=language), language)

    sentences = [frames["start"].format(name=name, q=kilograms(item["start"]), thing=thing)]
    for op, *values in item["steps"]:
        k = _digits(str(values[0]), language)
        if op == "bags":
            sentences.append(frames["bags"].format(name=name, k=k, q=kilograms(values[1])))
        elif op == "split":
            sentences.append(frames["split"].format(name=name, k=k, thing=thing))
        else:
            sentences.append(frames[op].format(name=name, q=kilograms(values[0])))
    split = item["steps"][-1][0] == "split"
    sentences.append(frames["ask_split" if split else "ask"].format(name=name, thing=thing))
    joiner = "" if language == "zh" else " "
    answer = str(item["answer"])
    return {"question": joiner.join(sentences), "answer": _digits(solution(item), language),
            "references": sorted({answer, _digits(answer, language)})}  # fmt: skip


def solution(item: dict) -> str:
    """Return the worked answer: one equation per step (language-free), the result last."""
    value, equations = item["start"], []
    for op, *values in item["steps"]:
        if op == "buy":
            equations.append(f"{value} + {values[0]} = {value + values[0]}")
            value += values[0]
        elif op in ("use", "give"):
            equations.append(f"{value} - {values[0]} = {value - values[0]}")
            value -= values[0]
        elif op == "bags":
            added = values[0] * values[1]
            equations.append(f"{value} + {values[0]} × {values[1]} = {value + added}")
            value += added
        else:
            equations.append(f"{value} / {values[0]} = {value // values[0]}")
            value //= values[0]
    assert value == item["answer"], item
    return "; ".join(equations)


# --- country facts: summaries and constrained writing ---------------------------------------


def country_facts(facts: dict[str, dict]) -> list[dict]:
    """Return countries with one legal tender and official languages CLDR names everywhere."""
    out = []
    for code, fact in sorted(facts.items()):
        if len(fact["tender"]) != 1 or not all(
            fact["tender"][0] in LOCALES[lang].currencies for lang in LANGUAGES
        ):
            continue
        spoken = [x for x in get_official_languages(code)
                  if all(x in LOCALES[lang].languages for lang in LANGUAGES)][:2]  # fmt: skip
        if spoken:
            out.append({"id": code, "continent": fact["continent"],
                        "currency": fact["tender"][0], "languages": spoken})  # fmt: skip
    return out


def _names(item: dict, language: str) -> dict[str, str]:
    locale = LOCALES[language]
    spoken = [locale.languages[x] for x in item["languages"]]
    if language == "id":
        spoken = [f"bahasa {x}" for x in spoken]
    return {
        "country": locale.territories[item["id"]],
        "continent": locale.territories[item["continent"]],
        "currency": locale.currencies[item["currency"]],
        "languages": format_list(spoken, locale=language),
    }


def _sentences(item: dict, language: str) -> list[str]:
    names = _names(item, language)
    continent, currency, one, several = FACTS[language]
    spoken = one if len(item["languages"]) == 1 else several
    return [s.format(**names) for s in (continent, currency, spoken)]


def summary_row(item: dict, language: str) -> dict:
    """Return the passage and its one-line summary in one language."""
    names = _names(item, language)
    after, between = SUMMARY_SEPARATORS.get(language, (": ", ", "))
    summary = (
        names["country"]
        + after
        + between.join([names["continent"], names["currency"], names["languages"]])
    )
    joiner = "" if language == "zh" else " "
    return {"question": joiner.join(_sentences(item, language)), "answer": summary,
            "references": [summary]}  # fmt: skip


OPTIONAL = ("sentences", "max_words", "no_digits", "ends_with")


LIMITS = (15, 20, 25, 30, 35, 40)


def writing_rules(item: dict) -> dict:
    """Return an item's language-free constraint draw: two optional rules, a sentence count and
    a word limit (the drawn one, raised to the first that the answer meets in every language)."""
    rng = rng_for("writing", item["id"])
    draw = {"optional": sorted(rng.sample(OPTIONAL, 2)), "n_sentences": rng.choice([1, 2]),
            "max_words": rng.choice(LIMITS[:3])}  # fmt: skip
    # Han characters are counted one by one, so a Chinese answer gets twice the limit
    needed = max(len(tokens(writing_row(item, draw, lang)["answer"])) / (2 if lang == "zh" else 1)
                 for lang in LANGUAGES)  # fmt: skip
    draw["max_words"] = next(n for n in LIMITS if n >= max(draw["max_words"], needed))
    return draw


def writing_row(item: dict, draw: dict, language: str) -> dict:
    """Return the instruction, its constraints and an answer built to meet them."""
    rules, names = RULES[language], _names(item, language)
    n_sentences = draw["n_sentences"] if "sentences" in draw["optional"] else 2
    answer = ("" if language == "zh" else " ").join(_sentences(item, language)[:n_sentences])
    limit = draw["max_words"] * (2 if language == "zh" else 1)
    constraints: list[dict] = [{"type": "language", "value": language},
                               {"type": "contains", "value": names["country"]}]  # fmt: skip
    lines = [rules["language"].format(language=LOCALES[language].languages[language]),
             rules["mention"].format(country=names["country"])]  # fmt: skip
    for rule in draw["optional"]:
        if rule == "sentences":
            constraints.append({"type": "sentences", "value": n_sentences})
            lines.append(rules["one" if n_sentences == 1 else "two"])
        elif rule == "max_words":
            constraints.append({"type": "max_words", "value": limit})
            lines.append(rules["max_words"].format(n=_digits(str(limit), language)))
        elif rule == "no_digits":
            constraints.append({"type": "no_digits"})
            lines.append(rules["no_digits"])
        else:
            mark = "！" if language == "zh" else "!"
            answer = answer[:-1] + mark
            constraints.append({"type": "ends_with", "value": mark})
            lines.append(rules["ends_with"])
    question = "\n".join([rules["task"].format(country=names["country"]), rules["rules"],
                          *(f"- {line}" for line in lines)])  # fmt: skip
    return {"question": question, "answer": answer, "references": constraints}


# --- writing the tasks ----------------------------------------------------------------------

SETTINGS = {
    "math_word_problems": {
        "until": ["\n"], "max_new_tokens": 32,
        "filter_list": [{"name": "last-number", "filter": [
            {"function": "regex", "regex_pattern": "(-?\\d+)", "group_select": -1},
            {"function": "take_first"}]}],
        "metric_list": [{"metric": "exact_match"}], "headline": "exact_match",
    },
    "country_summary": {
        "until": ["\n\n"], "max_new_tokens": 40,
        "filter_list": [{"name": "first-line", "filter": [
            {"function": "regex", "regex_pattern": "(\\S[^\\n]*)", "group_select": 0,
             "fallback": ""}]}],
        "metric_list": [{"metric": "rouge_l"}, {"metric": "chrf"}], "headline": "rouge_l",
    },
    "constrained_writing": {
        "until": ["\n\n"], "max_new_tokens": 48,
        "filter_list": [{"name": "strip", "filter": [{"function": "remove_whitespace"}]}],
        "metric_list": [{"metric": "constraints_met"}], "headline": "constraints_met",
    },
}  # fmt: skip
DESCRIPTIONS = {
    "math_word_problems": "1–2 step word problems on CLDR quantities; the integer answer.",
    "country_summary": "A passage of CLDR facts about a country condensed into one line.",
    "constrained_writing": "Write about a country under verifiable constraints.",
}


# The solved problems every math prompt opens with, one per operation, so the model sees the
# answer format (one equation per step, the result last, as MGSM's few-shot answers) without a
# fixed order of operations to copy.
EXAMPLES = [
    {"id": "x0", "start": 6, "steps": [["buy", 3]], "answer": 9, "person": 0, "goods": 0},
    {"id": "x1", "start": 9, "steps": [["give", 4]], "answer": 5, "person": 1, "goods": 1},
    {"id": "x2", "start": 5, "steps": [["bags", 2, 3], ["use", 2]], "answer": 9, "person": 2,
     "goods": 2},
    {"id": "x3", "start": 4, "steps": [["buy", 2], ["split", 2]], "answer": 3, "person": 3,
     "goods": 3},
]  # fmt: skip


def _prompt(task: str, language: str) -> str:
    label, cue = SCAFFOLD[language]
    if task == "math_word_problems":
        shots = "".join(
            f"{label}{row['question']}\n{cue} {row['answer']}\n\n"
            for row in (math_row(example, language) for example in EXAMPLES)
        )
        return f"{shots}{label}{{{{question}}}}\n{cue}"
    if task == "country_summary":
        text, instruction, summary = SUMMARY[language]
        return f"{text}{{{{question}}}}\n{instruction}\n{summary}"
    return f"{{{{question}}}}\n{RULES[language]['cue']}"


def write_generative(out: Path, task: str, rows: dict[str, list[dict]], ids: list[str],
                     n_test: int, header: str) -> dict[str, int]:  # fmt: skip
    """Write a generative task's YAML and one JSONL per language; return its split sizes."""
    splits = split_ids(ids, n_test, task)
    (out / "data").mkdir(parents=True, exist_ok=True)
    for language in LANGUAGES:
        lines = [json.dumps({"id": doc_id, "split": splits[doc_id], **row}, ensure_ascii=False)
                 for doc_id, row in zip(ids, rows[language], strict=True)]  # fmt: skip
        (out / "data" / f"{task}.{language}.jsonl").write_text("\n".join(lines) + "\n",
                                                               encoding="utf-8")  # fmt: skip
    spec = {
        "name": task,
        "description": DESCRIPTIONS[task],
        "output_type": "generate",
        "languages": list(LANGUAGES),
        "data": {"files": f"data/{task}.{{language}}.jsonl", "split_column": "split"},
        "splits": {"test": {"pool": "test"}, "train": {"pool": "train"}, "align": "strict"},
        "fields": {
            "id": "id",
            "question": "question",
            "answer": "answer",
            "references": "references",
        },  # fmt: skip
        "generate": SETTINGS[task],
        "eval": {"target_delimiter": " "},
        "train": {"loss_on": "target"},
        "prompt": {"generate": {lang: _prompt(task, lang) for lang in LANGUAGES}},
    }
    body = yaml.dump(spec, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False, width=1000)
    (out / f"{task}.yaml").write_text(header + body, encoding="utf-8")
    sizes = {s: sum(1 for v in splits.values() if v == s) for s in ("train", "test")}
    return {**sizes, "languages": len(LANGUAGES)}


def build_generative(out: Path, facts: dict[str, dict], header: str) -> dict[str, dict]:
    """Write the three generative tasks into ``out``; return their split sizes."""
    problems = math_problems()
    countries = country_facts(facts)
    draws = {item["id"]: writing_rules(item) for item in countries}
    writing = {lang: {c["id"]: writing_row(c, draws[c["id"]], lang) for c in countries}
               for lang in LANGUAGES}  # fmt: skip
    met = [c for c in countries if all(
        constraints_met(writing[lang][c["id"]]["answer"], writing[lang][c["id"]]["references"]) == 1
        for lang in LANGUAGES)]  # fmt: skip
    return {
        "math_word_problems": write_generative(
            out, "math_word_problems", {lang: [math_row(i, lang) for i in problems] for lang in LANGUAGES},
            [i["id"] for i in problems], 100, header),
        "country_summary": write_generative(
            out, "country_summary", {lang: [summary_row(c, lang) for c in countries] for lang in LANGUAGES},
            [c["id"] for c in countries], 60, header),
        "constrained_writing": write_generative(
            out, "constrained_writing", {lang: [writing[lang][c["id"]] for c in met] for lang in LANGUAGES},
            [c["id"] for c in met], 60, header),
    }  # fmt: skip
