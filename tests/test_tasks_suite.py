"""The bundled offline suite: parallel items, sound options, disjoint splits, native prompts;
the registry and the `tasks list` / `tasks show` commands."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from cli_runner import run_cli as _cli
from transferlab.errors import UserError
from transferlab.tasks import describe_tasks, get_task, list_tasks, parse_task_ref, render_task

SUITE = ["country_continent", "country_currency", "month_arithmetic", "number_arithmetic",
         "number_words"]  # fmt: skip
GENERATIVE = ["math_word_problems", "country_summary", "constrained_writing"]  # their own tests
REFERENCE = ["arc_challenge", "global_mmlu", "hellaswag", "truthfulqa"]
REPO = Path(__file__).resolve().parents[1]
# Unicode script (first word of the character name) each language's prompts are written in.
SCRIPT = {"ar": "ARABIC", "bn": "BENGALI", "hi": "DEVANAGARI", "zh": "CJK"}


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    return "LATIN" if name.startswith("LATIN") else name.split(" ")[0]


@pytest.mark.parametrize("task", SUITE)
def test_items_are_parallel_across_languages(task):
    spec = get_task(task)
    assert len(spec.languages) >= 8
    assert {"ar", "bn"} <= set(spec.languages)
    assert "zh" in spec.languages or task == "number_words"  # num2words has no Chinese
    raw = {
        lang: {row["id"]: row for pool in ("train", "test") for row in spec.data.load(lang, pool)}
        for lang in spec.languages
    }
    for split in ("train", "validation", "test"):
        reference = [(i.doc_id, i.gold) for i in spec.items("en", split)]
        for lang in spec.languages:
            items = spec.items(lang, split)
            assert [(i.doc_id, i.gold) for i in items] == reference, (lang, split)
            # Same correct answer and same options in the same order, only the wording differs.
            codes = [raw[lang][i.doc_id]["answer_codes"] for i in items]
            assert codes == [raw["en"][i.doc_id]["answer_codes"] for i in items]


@pytest.mark.parametrize("task", SUITE)
def test_every_item_has_four_distinct_options_and_a_gold_in_range(task):
    spec = get_task(task)
    for lang in spec.languages:
        for split in ("train", "validation", "test"):
            for item in spec.items(lang, split):
                assert len(item.choices) == 4
                assert len({c.casefold() for c in item.choices}) == 4, (lang, item)
                assert all(c.strip() == c and c for c in item.choices)
                assert 0 <= item.gold < 4
            # Training is in the scored format: the cloze prompt, the gold option's text.
            examples = spec.train_examples(lang, split)
            for item, example in zip(spec.items(lang, split), examples, strict=True):
                assert example.prompt == item.context and example.loss_on == "target"
                assert example.target == " " + item.choices[item.gold]


@pytest.mark.parametrize("task", SUITE)
def test_train_validation_and_test_share_no_item(task):
    spec = get_task(task)
    ids = {split: set(spec.split_ids(split)) for split in ("train", "validation", "test")}
    assert not ids["test"] & (ids["train"] | ids["validation"])
    assert not ids["train"] & ids["validation"]
    for lang in spec.languages:
        test_contexts = {i.context for i in spec.items(lang, "test")}
        train_contexts = {i.context for i in spec.items(lang, "train")}
        assert not test_contexts & train_contexts, lang


@pytest.mark.parametrize("task", SUITE)
def test_sizes_meet_the_suite_targets(task):
    sizes = get_task(task).split_sizes()
    pool = sizes["train"] + sizes["validation"]
    assert sizes["validation"] == -(-pool // 10)  # the 90/10 cut, validation rounded up
    assert sizes["test"] >= 100  # one item is at most 1 pp of a cell's score
    if task.startswith(("month", "number")):
        assert pool >= 300 and sizes["test"] >= 200
    else:  # 193 UN member states: the facts bound these two
        assert pool >= 75


@pytest.mark.parametrize("task", ["number_arithmetic", "number_words"])
def test_the_gold_is_not_in_the_middle_of_the_numbers_more_often_than_its_share(task):
    # Near misses drawn evenly around the answer put it between the distractors five times in
    # six; a model leaning to smaller numbers then scores below guessing. Each rank of the gold
    # among the four values is drawn uniformly instead.
    rows = get_task(task).data.load("en", "test") + get_task(task).data.load("en", "train")
    ranks = [sorted(map(int, r["answer_codes"])).index(int(r["answer_codes"][r["gold"]]))
             for r in rows]  # fmt: skip
    shares = [ranks.count(k) / len(ranks) for k in range(4)]
    assert all(0.2 < share < 0.3 for share in shares), shares


def test_month_arithmetic_never_offers_the_month_the_question_names_as_a_distractor():
    rows = get_task("month_arithmetic").data.load("en", "test")
    for row in rows:
        start = int(row["id"].split("-")[1]) - 1
        steps = int(row["id"].split("-")[2])
        assert steps != 12 and str(start) not in row["answer_codes"], row["id"]


@pytest.mark.parametrize("task", SUITE)
def test_each_language_prompt_is_written_in_its_script(task):
    spec = get_task(task)
    for lang in spec.languages:
        expected = SCRIPT.get(lang, "LATIN")
        for item in spec.items(lang, "test")[:20]:
            letters = [c for c in item.context if c.isalpha()]
            share = sum(_script(c) == expected for c in letters) / len(letters)
            assert share > 0.9, (lang, item.context)
            assert all(_script(c) == expected for c in "".join(item.choices) if c.isalpha()) or (
                task == "country_currency"  # some currency names carry a Latin code, e.g. CFA
            )


def test_prompts_differ_per_language_and_hashes_are_stable():
    spec = get_task("month_arithmetic")
    contexts = {lang: spec.items(lang, "test")[0].context for lang in spec.languages}
    assert len(set(contexts.values())) == len(spec.languages)
    hashes = {lang: spec.content_hash(lang) for lang in spec.languages}
    assert len(set(hashes.values())) == len(spec.languages)
    assert get_task("month_arithmetic").content_hash("de") == hashes["de"]


def test_registry_lists_suite_and_reference_tasks_and_suggests_names():
    assert list_tasks() == sorted(SUITE + GENERATIVE) + REFERENCE
    assert parse_task_ref("global_mmlu:zh") == ("global_mmlu", "zh")
    assert parse_task_ref("tasks/my.yaml:pt-BR") == ("tasks/my.yaml", "pt-BR")
    assert parse_task_ref("country_continent") == ("country_continent", None)
    with pytest.raises(UserError, match="did you mean 'country_currency'"):
        get_task("country_curency")
    with pytest.raises(UserError, match="no language 'xx'"):
        get_task("month_arithmetic:xx")
    with pytest.raises(UserError, match="unknown split"):
        get_task("month_arithmetic").items("en", "dev")


def test_tasks_list_shows_every_task_with_sizes(monkeypatch, capsys):
    code, out, _ = _cli(monkeypatch, capsys, "tasks", "list")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert list(lines) == sorted(SUITE + GENERATIVE) + REFERENCE
    assert "295" in lines["month_arithmetic"] and "bundled" in lines["month_arithmetic"]
    assert "needs the hub or TRANSFERLAB_DATASETS" in lines["arc_challenge"]
    assert out == describe_tasks() + "\n"


def test_tasks_show_renders_prompts_choices_and_gold(monkeypatch, capsys):
    code, out, _ = _cli(monkeypatch, capsys, "tasks", "show", "country_continent:de", "--n", "2")
    assert code == 0
    item = get_task("country_continent").items("de")[0]
    assert item.context in out
    assert f"  * [{item.gold}] {' ' + item.choices[item.gold]!r}" in out
    assert out.count("-- item") == 2
    assert render_task("number_words:fr", n_items=1).count("-- item") == 1


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("country_contnent", "did you mean 'country_continent'"),
        ("month_arithmetic:xx", "no language 'xx'"),
        ("arc_challenge:de", "has no local copy and the hub cannot be reached"),
    ],
)
def test_tasks_show_bad_input_is_one_line_and_exit_2(monkeypatch, capsys, ref, message):
    code, out, err = _cli(monkeypatch, capsys, "tasks", "show", ref)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def _pins() -> dict[str, str]:
    lines = (REPO / "pins.txt").read_text().splitlines()
    pairs = (line.split("==") for line in lines if "==" in line and not line.startswith("#"))
    return {name.strip(): pinned.strip() for name, pinned in pairs}


def test_the_suite_is_built_with_the_pinned_generator_inputs():
    pins = _pins()
    assert {"babel", "pycountry", "country_converter", "num2words"} <= set(pins)
    header = (REPO / "src/transferlab/tasks/suite/country_continent.yaml").read_text()
    header = header.splitlines()[0]
    for name in ("babel", "pycountry", "country_converter", "num2words"):
        assert f"{name} {pins[name]}" in header, (name, header)
    constraints = (REPO / "constraints.txt").read_text().splitlines()
    for name, pinned in pins.items():
        assert f"{name}=={pinned}" in constraints, (
            f"constraints.txt disagrees with pins.txt: {name}"
        )


@pytest.mark.skipif(
    importlib.util.find_spec("country_converter") is None,
    reason="the suite generator needs the `suite` extra (country_converter)",
)
def test_build_script_reproduces_the_checked_in_suite(tmp_path):
    from importlib.metadata import version

    for name, pinned in _pins().items():  # other releases rename countries and currencies
        assert version(name) == pinned, f"{name} {version(name)} installed, the suite pins {pinned}"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_suite.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    shipped = REPO / "src" / "transferlab" / "tasks" / "suite"
    built = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert built == sorted(p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file())
    for rel in built:
        assert (tmp_path / rel).read_bytes() == (shipped / rel).read_bytes(), rel
