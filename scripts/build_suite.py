"""Build transferlab's bundled offline task suite from facts shipped in PyPI packages.

    .venv/bin/pip install "country_converter>=1.2"    # UN M49 regions (only this script needs it)
    .venv/bin/python scripts/build_suite.py            # writes src/transferlab/tasks/suite/

Facts: country and continent names, currencies, month names and number formats from CLDR
(babel); ISO 3166 country list (pycountry); UN M49 regions (country_converter's table); number
words (num2words). Every language gets the same item IDs with the same correct answer and the
same option order; only the wording differs. The output is deterministic: running the script
twice writes identical bytes.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import random
import sys
from importlib.metadata import version
from pathlib import Path

import babel
import pycountry
import yaml
from babel import Locale
from babel.numbers import format_decimal, get_territory_currencies

sys.path.insert(0, str(Path(__file__).parent))
from suite_phrases import (  # noqa: E402
    CONTINENT_ASK,
    COUNTRY_LABEL,
    CURRENCY_ASK,
    LANGUAGES,
    SCAFFOLD,
    arithmetic_question,
    month_question,
    months_phrase,
    number_words_question,
)

OUT = Path(__file__).resolve().parents[1] / "src" / "transferlab" / "tasks" / "suite"
FACTS_DATE = datetime.date(2025, 1, 1)  # currencies in legal tender on this day
# Countries on two continents: no single correct continent, so left out.
TRANSCONTINENTAL = {"AM", "AZ", "CY", "EG", "GE", "KZ", "RU", "TR"}
CONTINENTS = ("002", "142", "150", "003", "005", "009")  # Africa Asia Europe N.Am S.Am Oceania
LOCALES = {lang: Locale.parse(lang) for lang in LANGUAGES}


def rng_for(*key: object) -> random.Random:
    """Return a random generator seeded by a key (str seeds hash with SHA-512: stable)."""
    return random.Random(":".join(map(str, key)))


# Unicode zero of the CLDR numbering systems our locales default to (babel names the system
# but formats with Latin digits).
ZERO_DIGIT = {"latn": "0", "beng": "\u09e6", "arab": "\u0660", "deva": "\u0966"}


def localized_number(n: int, language: str) -> str:
    """Return n written with the locale's CLDR default digits (Bengali digits for bn)."""
    locale = LOCALES[language]
    zero = ord(ZERO_DIGIT[locale.default_numbering_system])
    text = format_decimal(n, locale=locale)
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


def assemble(item_id: str, gold_code: str, distractors: list[str], order_key: str) -> dict:
    """Return the option codes in a stable shuffled order and the gold index."""
    codes = [gold_code, *distractors]
    assert len(set(codes)) == 4, (item_id, codes)
    rng_for(order_key, item_id).shuffle(codes)
    return {"codes": codes, "gold": codes.index(gold_code)}


def ranked_distractors(gold: int, near: list[int], rng: random.Random) -> list[int]:
    """Return three distractors from ``near`` such that the gold's rank among the four values
    is uniform (0–3, drawn by ``rng`` among the ranks ``near`` allows).

    Near misses drawn symmetrically around the answer leave it in the middle of the options
    five times in six; a model that leans towards smaller (or shorter) numbers, as language
    models do, then picks a distractor more often than guessing would, and a fine-tune could
    learn "pick the middle value" without learning the task.
    """
    below = sorted(m for m in near if m < gold)
    above = sorted(m for m in near if m > gold)
    ranks = [r for r in range(4) if r <= len(below) and 3 - r <= len(above)]
    rank = rng.choice(ranks)
    return rng.sample(below, rank) + rng.sample(above, 3 - rank)


def split_ids(ids: list[str], n_test: int, task: str) -> dict[str, str]:
    """Return id → 'test' | 'train': a seeded draw of n_test test IDs, the rest train."""
    drawn = sorted(ids)
    rng_for(task, "split").shuffle(drawn)
    return {doc_id: ("test" if i < n_test else "train") for i, doc_id in enumerate(drawn)}


# --- facts --------------------------------------------------------------------------------


def un_regions() -> dict[str, tuple[str, str]]:
    """Return ISO2 → (continent, UN M49 region) of UN member states (country_converter's table)."""
    import country_converter

    table = Path(country_converter.__file__).parent / "country_data.tsv"
    with table.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    # UN member states only: "country" is then accurate, and remote dependencies whose
    # continent is arguable (British Indian Ocean Territory, South Georgia, ...) stay out.
    return {r["ISO2"]: (r["continent"], r["UNregion"]) for r in rows if r["ISO2"] and r["UNmember"]}


def continent_of(continent: str, region: str) -> str | None:
    """Return the CLDR code of the six-continent model (the Americas split North/South)."""
    if continent == "America":
        return "005" if region == "South America" else "003"
    return {"Africa": "002", "Asia": "142", "Europe": "150", "Oceania": "009"}.get(continent)


def named_everywhere(code: str, kind: str) -> bool:
    """Return whether every suite language has a CLDR name for a territory or currency."""
    return all(
        code in (LOCALES[lang].territories if kind == "territory" else LOCALES[lang].currencies)
        for lang in LANGUAGES
    )


def countries() -> dict[str, dict]:
    """Return ISO2 → {continent code, region, currency} for the countries the tasks use."""
    regions = un_regions()
    out = {}
    for country in pycountry.countries:
        code = country.alpha_2
        if (
            code in TRANSCONTINENTAL
            or code not in regions
            or not named_everywhere(code, "territory")
        ):
            continue
        continent = continent_of(*regions[code])
        if continent is None:
            continue
        tender = get_territory_currencies(code, FACTS_DATE, tender=True)
        out[code] = {"continent": continent, "region": regions[code][1], "tender": tender}
    return out


# --- tasks --------------------------------------------------------------------------------


def country_continent(facts: dict[str, dict]) -> list[dict]:
    """Items: a country → its continent; distractors are three other continents."""
    items = []
    for code, fact in sorted(facts.items()):
        others = [c for c in CONTINENTS if c != fact["continent"]]
        distractors = rng_for("continent", code).sample(others, 3)
        items.append(
            {
                "id": code,
                "country": code,
                **assemble(code, fact["continent"], distractors, "continent"),
            }
        )
    return items


def country_currency(facts: dict[str, dict]) -> list[dict]:
    """Items: a country → its one legal tender; distractors are other countries' currencies,
    from the same UN region first (plausible), never one that is legal tender there."""
    usable = {
        code: fact for code, fact in facts.items()
        if len(fact["tender"]) == 1 and named_everywhere(fact["tender"][0], "currency")
    }  # fmt: skip
    items = []
    for code, fact in sorted(usable.items()):
        gold = fact["tender"][0]
        rng = rng_for("currency", code)
        near = sorted({f["tender"][0] for c, f in usable.items() if f["region"] == fact["region"]})
        far = sorted({f["tender"][0] for f in usable.values()} - set(near))
        near = [c for c in near if c not in fact["tender"]]
        rng.shuffle(near)
        rng.shuffle(far)
        distractors = (near[:2] + far)[:3]
        if not _distinct_names(gold, distractors):
            continue
        items.append({"id": code, "country": code, **assemble(code, gold, distractors, "currency")})
    return items


def _distinct_names(gold: str, distractors: list[str]) -> bool:
    for lang in LANGUAGES:
        names = [LOCALES[lang].currencies[c] for c in [gold, *distractors]]
        if len({n.casefold() for n in names}) != 4:
            return False
    return True


def month_arithmetic() -> list[dict]:
    """Items: the month n (1–23, not 12) months after or before a month; one distractor is the
    answer in the wrong direction (a natural slip), the others random other months, never the
    month the question names: a model copies that month from the prompt, so as a distractor it
    drew answers away from the gold (and n = 12, whose answer is that month, rewarded copying)."""
    items = []
    for start in range(12):
        for n in (k for k in range(1, 24) if k != 12):
            for after in (True, False):
                doc_id = f"{'after' if after else 'before'}-{start + 1:02d}-{n:02d}"
                gold = (start + n) % 12 if after else (start - n) % 12
                wrong = (start - n) % 12 if after else (start + n) % 12
                rng = rng_for("month", doc_id)
                pool = [m for m in range(12) if m not in (gold, wrong, start)]
                picked = rng.sample(pool, 3 if wrong == gold else 2)
                distractors = ([wrong] if wrong != gold else []) + picked
                item = assemble(doc_id, str(gold), [str(d) for d in distractors], "month")
                items.append({"id": doc_id, "start": start, "n": n, "after": after, **item})
    return items


def number_arithmetic() -> list[dict]:
    """Items: a + b or a − b with two-digit numbers; distractors are the answer off by the
    typical slips (±1, ±2, ±9, ±10, ±11), as many below the answer as its drawn rank says."""
    rng = rng_for("arithmetic", "pairs")
    seen, items = set(), []
    while len(items) < 600:
        a, b, plus = rng.randint(10, 99), rng.randint(10, 99), rng.random() < 0.5
        if not plus and a < b:
            a, b = b, a
        if (a, b, plus) in seen or (not plus and a == b):
            continue
        seen.add((a, b, plus))
        doc_id = f"{a}{'+' if plus else '-'}{b}"
        result = a + b if plus else a - b
        near = [result + o for o in (-11, -10, -9, -2, -1, 1, 2, 9, 10, 11) if result + o >= 0]
        distractors = [
            str(m) for m in ranked_distractors(result, near, rng_for("arithmetic", doc_id))
        ]
        item = assemble(doc_id, str(result), distractors, "arithmetic")
        items.append({"id": doc_id, "a": a, "b": b, "plus": plus, **item})
    return items


# --- rendering per language ---------------------------------------------------------------


def number_words() -> list[dict]:
    """Items: a number (11–999) → its spelling; distractors spell the number with two digits
    swapped, or off by one, ten or a hundred (the numbers a reader confuses it with), as many
    smaller than the number as its drawn rank says."""
    rng = rng_for("words", "numbers")
    numbers = sorted(rng.sample(range(11, 1000), 600))
    items = []
    for n in numbers:
        text = str(n)
        swaps = {int(text[::-1])} if len(set(text)) > 1 and text[-1] != "0" else set()
        near = swaps | {n + 1, n - 1, n + 10, n - 10, n + 100, n - 100}
        near = sorted(m for m in near if 0 < m < 1100 and m != n)
        picked = ranked_distractors(n, near, rng_for("words", n))
        items.append(
            {"id": f"n{n}", "n": n, **assemble(f"n{n}", str(n), [str(m) for m in picked], "words")}
        )
    return items


def localize(task: str, item: dict, language: str) -> dict:
    """Return the item's row in one language: question, choices, gold and the language-free
    answer codes (kept so tests can check that every language has the same answers)."""
    locale = LOCALES[language]
    if task in ("country_continent", "country_currency"):
        names = locale.territories if task == "country_continent" else locale.currencies
        choices = [names[c] for c in item["codes"]]
        question = locale.territories[item["country"]]
    elif task == "month_arithmetic":
        months = locale.months["stand-alone"]["wide"]
        choices = [months[int(c) + 1] for c in item["codes"]]
        n_phrase = months_phrase(language, item["n"], localized_number(item["n"], language))
        question = month_question(language, months[item["start"] + 1], n_phrase, item["after"])
    elif task == "number_words":
        from num2words import num2words

        choices = [num2words(int(c), lang=language) for c in item["codes"]]
        assert len(set(choices)) == 4, (item["id"], language, choices)
        question = number_words_question(language, localized_number(item["n"], language))
    else:
        choices = [localized_number(int(c), language) for c in item["codes"]]
        a, b = (localized_number(item[k], language) for k in ("a", "b"))
        question = arithmetic_question(language, a, b, item["plus"])
    return {
        "id": item["id"],
        "split": item["split"],
        "question": question,
        "choices": choices,
        "gold": item["gold"],
        "answer_codes": item["codes"],
    }


def templates(task: str, languages: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Return the per-language cloze and letters prompt templates of a task (training uses the
    cloze prompt: the ``continuation`` format)."""
    out: dict[str, dict[str, str]] = {"cloze": {}, "letters": {}}
    for lang in languages:
        label, cue = SCAFFOLD[lang]
        if task in ("country_continent", "country_currency"):
            ask = (CONTINENT_ASK if task == "country_continent" else CURRENCY_ASK)[lang]
            head = f"{COUNTRY_LABEL[lang]}{{{{question}}}}\n{label}{ask}"
        else:
            head = f"{label}{{{{question}}}}"
        out["cloze"][lang] = f"{head}\n{cue}"
        out["letters"][lang] = f"{head}\n{{{{options}}}}\n{cue}"
    return out


DESCRIPTIONS = {
    "country_continent": "Which continent a country lies in (UN M49 regions; CLDR names).",
    "country_currency": "A country's legal tender (CLDR territory currencies and names).",
    "month_arithmetic": "The month n months after or before a month (CLDR month names).",
    "number_arithmetic": "Sums and differences of two-digit numbers (CLDR digits).",
    "number_words": "How a number is written in words (num2words; it has no hi or zh).",
}
# num2words spells no Hindi or Chinese, so number_words leaves those two out.
TASK_LANGUAGES = {"number_words": tuple(x for x in LANGUAGES if x not in ("hi", "zh"))}


def write_task(task: str, items: list[dict], n_test: int) -> dict[str, int]:
    """Write the task's YAML and one JSONL per language; return its split sizes."""
    splits = split_ids([i["id"] for i in items], n_test, task)
    for item in items:
        item["split"] = splits[item["id"]]
    (OUT / "data").mkdir(parents=True, exist_ok=True)
    languages = TASK_LANGUAGES.get(task, LANGUAGES)
    for lang in languages:
        lines = [json.dumps(localize(task, i, lang), ensure_ascii=False) for i in items]
        (OUT / "data" / f"{task}.{lang}.jsonl").write_text(
            "\n".join(lines) + "\n", encoding="utf-8"
        )
    spec = {
        "name": task,
        "description": DESCRIPTIONS[task],
        "languages": list(languages),
        "data": {"files": f"data/{task}.{{language}}.jsonl", "split_column": "split"},
        "splits": {"test": {"pool": "test"}, "train": {"pool": "train"}, "align": "strict"},
        "fields": {"id": "id", "question": "question", "choices": "choices", "gold": "gold"},
        "eval": {"format": "cloze", "metric": "acc", "target_delimiter": " "},
        "train": {"format": "continuation", "loss_on": "target"},
        "prompt": templates(task, languages),
    }
    header = (
        f"# Generated by scripts/build_suite.py (babel {babel.__version__}, "
        f"pycountry {version('pycountry')}, country_converter {version('country_converter')}, "
        f"num2words {version('num2words')}); do not edit by hand.\n"
        "# Evaluation is cloze (each option's text scored after the prompt, as lm-eval scores ARC)\n"
        "# with acc as headline: the options are a word or two, and dividing by their byte length\n"
        "# (acc_norm) mostly rewards the longer names (Gemma 3 270M: country_continent:en acc 0.68,\n"
        "# acc_norm 0.34). Training is in the same format (continuation: the cloze prompt, loss on\n"
        "# the gold option's text): a 270M model scores the letters format at chance, and a LoRA\n"
        "# trained on letters lowered the cloze score of its own cell (docs/diagnosis.md).\n"
    )
    body = yaml.dump(spec, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False, width=1000)
    (OUT / f"{task}.yaml").write_text(header + body, encoding="utf-8")
    sizes = {s: sum(1 for v in splits.values() if v == s) for s in ("train", "test")}
    return {**sizes, "languages": len(languages)}


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks, so prompt templates read as they render."""


_BlockDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def main() -> None:
    global OUT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="suite folder to write")
    OUT = parser.parse_args().out
    facts = countries()
    built = {
        "country_continent": write_task("country_continent", country_continent(facts), 100),
        "country_currency": write_task("country_currency", country_currency(facts), 100),
        "month_arithmetic": write_task("month_arithmetic", month_arithmetic(), 200),
        "number_arithmetic": write_task("number_arithmetic", number_arithmetic(), 200),
        "number_words": write_task("number_words", number_words(), 200),
    }
    from build_gen_suite import build_generative

    header = (
        f"# Generated by scripts/build_suite.py (babel {babel.__version__}, "
        f"pycountry {version('pycountry')}, country_converter {version('country_converter')}, "
        f"py3langid {version('py3langid')}); do not edit by hand.\n"
    )
    built |= build_generative(OUT, facts, header)
    for task, sizes in built.items():
        print(
            f"{task}: train {sizes['train']}, test {sizes['test']} × {sizes['languages']} languages"
        )


if __name__ == "__main__":
    main()
