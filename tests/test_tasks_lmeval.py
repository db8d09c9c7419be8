"""lm-evaluation-harness task YAMLs render exactly as lm-eval renders them, and the reference
benchmarks' hub loader works on local copies laid out as the hub datasets are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from transferlab.errors import UserError
from transferlab.tasks import get_task
from transferlab.tasks.registry import PACKAGE_DIR

ROWS = [
    {"q": "Which is a fruit?", "opts": ["apple", "car", "stone", "cloud"], "label": 0,
     "letter": "A", "a": "Äpfel  [x]", "b": "Birne", "n": 3, "title": "Fruit [title] quiz"},
    {"q": "2+2?", "opts": ["3", "four", "5", "22"], "label": 1, "letter": "B", "a": "vier",
     "b": "fünf", "n": 4, "title": "Maths"},
    {"q": "حيوان؟", "opts": ["قطة", "حجر", "ماء", "نار"], "label": 0, "letter": "A",
     "a": "猫", "b": "石", "n": 7, "title": "动物"},
]  # fmt: skip

VARIANTS = {
    "columns": {"doc_to_text": "q", "doc_to_choice": "opts", "doc_to_target": "label"},
    "templates": {
        "doc_to_text": "{{title | regex_replace('\\[.*?\\]', '')}}: {{q.strip()}}\nAnswer:",
        "doc_to_choice": "{{[a, b]}}",
        "doc_to_target": "{{label % 2}}",
        "target_delimiter": "",
        "description": "Choose well.\n\n",
    },
    "letters": {
        "doc_to_text": "{{q}}\nA. {{opts[0]}}\nB. {{opts[1]}}\nC. {{opts[2]}}\nD. {{opts[3]}}\nAnswer:",
        "doc_to_choice": ["A", "B", "C", "D"],
        "doc_to_target": "letter",
        "metric_list": [{"metric": "acc"}],
    },
    "text_target": {
        "doc_to_text": "Q: {{q}} ({{n}})\nA:",
        "doc_to_choice": "{{opts}}",
        "doc_to_target": "{{opts[label]}}",
        "target_delimiter": "\n",
        "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}],
    },
}


def _write_lm_eval_task(folder: Path, variant: str, fmt: str = "jsonl") -> Path:
    data = folder / f"data.{fmt}"
    if fmt == "jsonl":
        data.write_text(
            "\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS), encoding="utf-8"
        )
    else:
        import pandas as pd

        pd.DataFrame(ROWS).to_parquet(data)
    doc = {
        "task": f"toy_{variant}_de",
        "output_type": "multiple_choice",
        "dataset_path": "json" if fmt == "jsonl" else fmt,
        "dataset_kwargs": {"data_files": {"test": str(data), "train": str(data)}},
        "test_split": "test",
        "training_split": "train",
        **VARIANTS[variant],
    }
    path = folder / f"{variant}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lm_eval_tasks(tmp_path_factory):
    """lm-eval's own Task objects, built offline from the same YAMLs."""
    import datasets
    from lm_eval.tasks import TaskManager

    folder = tmp_path_factory.mktemp("lm-eval-tasks")
    cache = tmp_path_factory.mktemp("hf-cache")
    old_cache = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = cache
    paths = {v: _write_lm_eval_task(folder, v) for v in VARIANTS}
    # Outside lm-eval's include path: it is the "columns" task again, read from Parquet.
    paths["parquet"] = _write_lm_eval_task(tmp_path_factory.mktemp("parquet"), "columns", "parquet")
    manager = TaskManager(include_path=str(folder), include_defaults=False)
    loaded = manager.load([f"toy_{v}_de" for v in VARIANTS])
    tasks = loaded["tasks"] if isinstance(loaded, dict) and "tasks" in loaded else loaded
    yield paths, {name: task for name, task in _flatten(tasks)}
    datasets.config.HF_DATASETS_CACHE = old_cache


def _flatten(tasks):
    for key, value in tasks.items():
        if isinstance(value, dict):
            yield from _flatten(value)
        else:
            yield getattr(key, "task_name", None) or getattr(value, "task_name", key), value


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_items_match_lm_eval_requests_byte_for_byte(lm_eval_tasks, variant):
    paths, tasks = lm_eval_tasks
    task = tasks[f"toy_{variant}_de"]
    spec = get_task(str(paths[variant]))
    assert (spec.name, spec.languages) == (f"toy_{variant}", ("de",))
    items = spec.items("de", "test")
    docs = list(task.test_docs())
    assert len(items) == len(docs) == len(ROWS)
    for index, (item, doc) in enumerate(zip(items, docs, strict=True)):
        context = task.fewshot_context(doc, 0)
        requests = task.construct_requests(doc, context)
        expected = [r.arguments for r in requests]
        ours = [(item.context, item.target_delimiter + c) for c in item.choices]
        assert ours == expected
        gold = task.doc_to_target(doc)
        choices = task.doc_to_choice(doc)
        assert item.gold == (choices.index(gold) if isinstance(gold, str) else gold)
        assert item.doc_id == str(index)
    example = spec.train_examples("de", "train")[0]
    same = items[int(example.doc_id.removeprefix("train:"))]  # the train file holds the same rows
    assert (example.prompt, example.loss_on) == (same.context, "target")
    assert example.target == same.target_delimiter + same.choices[same.gold]


def test_parquet_data_files_and_headline_metric(lm_eval_tasks):
    paths, _ = lm_eval_tasks
    spec = get_task(str(paths["parquet"]))
    assert [i.choices for i in spec.items("de")] == [tuple(r["opts"]) for r in ROWS]
    assert get_task(str(paths["letters"])).answer_format == "letters"
    assert get_task(str(paths["text_target"])).metric == "acc_norm"
    assert get_task(str(paths["columns"])).metric == "acc"


def _bad(tmp_path, **changes) -> str:
    path = _write_lm_eval_task(tmp_path, "columns")
    doc = yaml.safe_load(path.read_text())
    doc.update(changes)
    text = yaml.safe_dump({k: v for k, v in doc.items() if v is not None}, allow_unicode=True)
    path.write_text(text.replace("FUNCTION", "!function utils.process_docs"), encoding="utf-8")
    with pytest.raises(UserError) as caught:
        get_task(str(path))
    assert str(caught.value).startswith(str(path))
    return str(caught.value)


def test_unsupported_lm_eval_keys_are_named(tmp_path):
    assert "process_results: not supported" in _bad(tmp_path, num_fewshot=5, process_results="x")
    assert "num_fewshot: -1 is not a count" in _bad(tmp_path, num_fewshot=-1)
    assert "process_docs: `!function` (Python code) is not supported" in _bad(
        tmp_path, process_docs="FUNCTION"
    )
    assert "output_type: 'loglikelihood_rolling' is not supported" in _bad(
        tmp_path, output_type="loglikelihood_rolling"
    )
    assert "generation_kwargs: not supported" in _bad(tmp_path, generation_kwargs={"until": ["x"]})
    assert "doc_to_choice: missing" in _bad(tmp_path, doc_to_choice=None)
    assert "item 1 has gold 4, out of range" in _bad(tmp_path, doc_to_target="{{n}}")
    assert "template references an unknown column" in _bad(tmp_path, doc_to_text="{{qq}}")


# --- the reference benchmarks on local copies in the hub's layout ---------------------------


def _hub_copy(root: Path, hub_id: str, configs: dict[str, dict[str, list[dict]]]) -> None:
    folder = root / hub_id
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split, rows in splits.items():
            (folder / config).mkdir(parents=True, exist_ok=True)
            file = folder / config / f"{split}.jsonl"
            file.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
            lines += [f"  - split: {split}", f"    path: {config}/{split}.jsonl"]
    (folder / "README.md").write_text("\n".join([*lines, "---", ""]), encoding="utf-8")


def _arc(lang, split, n):
    return [
        {"id": f"{split}-{i}", "instruction": f" {lang} question {i} [title] Science [x] ",
         "option_a": "a", "option_b": "b", "option_c": "c", "option_d": f"d{i}",
         "option_e": "e" if i % 3 == 0 else None, "answer": "ABCD"[i % 4]}
        for i in range(n)
    ]  # fmt: skip


def _hellaswag(lang, n):
    return [
        {"ind": 1000 + i, "activity_label": f"{lang} act", "ctx_a": f"ctx [title] a{i}",
         "ctx_b": "then  the", "endings": [f"e{j} [step]" for j in range(4)], "label": str(i % 4)}
        for i in range(n)
    ]  # fmt: skip


def _truthfulqa(lang, n):
    return [
        {"question": f"{lang} q{i}?", "mc1_targets_choices": [f"true{i}", "w1", "w2", "w3", "w4"],
         "mc2_targets_choices": ["x"], "mc2_targets_labels": [1]}
        for i in range(n)
    ]  # fmt: skip


def _reference_with(tmp_path: Path, name: str, languages: list[str], **splits) -> Path:
    doc = yaml.safe_load((PACKAGE_DIR / "reference" / f"{name}.yaml").read_text(encoding="utf-8"))
    doc["languages"] = languages
    for key, value in splits.items():
        doc["splits"][key]["n"] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _assert_as_okapi(items, docs_by_id) -> None:
    """Each item's context, choices and gold are the ones lm-eval's Okapi process_docs makes."""
    for item in items:
        doc = docs_by_id[item.doc_id]
        assert (item.context, list(item.choices), item.gold) == (
            doc["query"],
            doc["choices"],
            doc["gold"],
        )


def test_reference_benchmarks_load_from_a_local_hub_copy(tmp_path, monkeypatch):
    import datasets
    from lm_eval.tasks.okapi.arc_multilingual.utils import process_docs as okapi_arc
    from lm_eval.tasks.okapi.hellaswag_multilingual.utils import process_docs as okapi_hellaswag

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    root = tmp_path / "hub"
    monkeypatch.setenv("TRANSFERLAB_DATASETS", str(root))
    languages = ["de", "zh"]
    _hub_copy(
        root,
        "alexandrainst/m_arc",
        {x: {"train": _arc(x, "train", 12), "test": _arc(x, "test", 9)} for x in languages},
    )
    _hub_copy(root, "alexandrainst/m_hellaswag", {"de": {"validation": _hellaswag("de", 10)}})
    _hub_copy(root, "richmondsin/m_hellaswag", {"zh": {"validation": _hellaswag("zh", 11)}})
    _hub_copy(
        root, "alexandrainst/m_truthfulqa", {x: {"val": _truthfulqa(x, 10)} for x in languages}
    )

    arc = get_task(str(_reference_with(tmp_path, "arc_challenge", languages, test=6, train=10)))
    assert arc.split_sizes() == {"train": 9, "validation": 1, "test": 6}
    expected = {d["id"]: d for d in okapi_arc(datasets.Dataset.from_list(_arc("zh", "test", 9)))}
    _assert_as_okapi(arc.items("zh", "test"), expected)
    assert [i.doc_id for i in arc.items("de")] == [i.doc_id for i in arc.items("zh")]
    assert arc.train_examples("de")[0].prompt.count("\n") in (5, 6)  # 4 or 5 lettered options

    hellaswag = get_task(str(_reference_with(tmp_path, "hellaswag", languages, test=4, train=5)))
    # One shared pool drawn into disjoint splits; the row only zh holds is left out.
    ids = [i for split in ("test", "train", "validation") for i in hellaswag.split_ids(split)]
    assert len(set(ids)) == len(ids) == 9
    processed = okapi_hellaswag(datasets.Dataset.from_list(_hellaswag("zh", 11)))
    _assert_as_okapi(
        hellaswag.items("zh", "test"), {str(1000 + i): d for i, d in enumerate(processed)}
    )

    truthfulqa = get_task(str(_reference_with(tmp_path, "truthfulqa", languages, test=4, train=6)))
    item = truthfulqa.items("de")[0]
    assert item.context.endswith(f"\n\nQ: de q{item.doc_id}?\nA:") and item.gold == 0
    assert item.choices == (f"true{item.doc_id}", "w1", "w2", "w3")
    example = truthfulqa.train_examples("de")[0]
    assert example.loss_on == "all" and example.prompt.startswith("Question: de q")
    assert example.target == f" true{example.doc_id.split(':')[-1]}"


def test_global_mmlu_lists_options_as_lm_eval_does(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    monkeypatch.setenv("TRANSFERLAB_DATASETS", str(tmp_path / "hub"))
    rows = [
        {"sample_id": f"astronomy/test/{i}", "question": f" Q{i} ", "option_a": "a", "option_b": "b",
         "option_c": "c", "option_d": "d", "answer": "ABCD"[i % 4], "subject": "astronomy"}
        for i in range(6)
    ]  # fmt: skip
    dev = [dict(r, sample_id=r["sample_id"].replace("test", "dev")) for r in rows]
    _hub_copy(tmp_path / "hub", "CohereLabs/Global-MMLU-Lite", {"en": {"test": rows, "dev": dev}})
    spec = get_task(str(_reference_with(tmp_path, "global_mmlu", ["en"], test=6, train=6)))
    item = next(i for i in spec.items("en") if i.doc_id == "astronomy/test/2")
    assert item.context == "Q2\nA. a\nB. b\nC. c\nD. d\nAnswer:"  # lm-eval's global_mmlu_en
    assert (item.choices, item.gold, spec.metric) == (("A", "B", "C", "D"), 2, "acc")
    example = spec.train_examples("en")[0]
    assert "\nA) a\nB) b\nC) c\nD) d\nAnswer:" in example.prompt and example.prompt.startswith(
        "Question: "
    )


def test_include_and_the_language_from_the_task_name_or_metadata(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS), encoding="utf-8")
    base = {
        "output_type": "multiple_choice",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"validation": "data.jsonl"}},  # next to the YAML
        "validation_split": "validation",
        **VARIANTS["columns"],
    }
    (tmp_path / "_base_yaml").write_text(yaml.safe_dump(base), encoding="utf-8")
    (tmp_path / "quiz_fr.yaml").write_text("include: _base_yaml\ntask: quiz_fr\n", encoding="utf-8")
    spec = get_task(str(tmp_path / "quiz_fr.yaml") + ":fr")
    assert (spec.name, spec.languages, len(spec.items("fr"))) == ("quiz", ("fr",), 3)
    with pytest.raises(UserError, match="no training split"):
        spec.train_examples("fr")
    (tmp_path / "other.yaml").write_text(
        "include: _base_yaml\ntask: quiz_v2\nmetadata: {language: hi, task_name: quiz}\n",
        encoding="utf-8",
    )
    assert get_task(str(tmp_path / "other.yaml")).languages == ("hi",)
    (tmp_path / "plain.yaml").write_text("include: _base_yaml\ntask: quizzes\n", encoding="utf-8")
    assert get_task(str(tmp_path / "plain.yaml")).languages == ("und",)
