"""Task YAMLs with local data: formats, the frozen parallel split, and every kind of bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from transferlab.errors import UserError
from transferlab.tasks import get_task
from transferlab.tasks.splits import train_validation


def _rows(language: str, n: int, start: int = 0) -> list[dict]:
    return [
        {
            "uid": f"q{i}",
            "text": f"{language} question {i}",
            "options": [
                f"{language}-a{i}",
                f"{language}-b{i}",
                f"{language}-c{i}",
                f"{language}-d{i}",
            ],
            "answer": i % 4,
        }
        for i in range(start, start + n)
    ]


def write_task(
    tmp_path: Path, rows: dict[str, dict[str, list[dict]]] | None = None, **changes
) -> Path:
    """Write per-language train/test JSONL files and a task YAML over them; return the YAML."""
    rows = rows or {
        lang: {"train": _rows(lang, 20), "test": _rows(lang, 8, 100)} for lang in ("en", "de")
    }
    for lang, pools in rows.items():
        for pool, pool_rows in pools.items():
            lines = [json.dumps(r, ensure_ascii=False) for r in pool_rows]
            (tmp_path / f"{pool}.{lang}.jsonl").write_text(
                "\n".join(lines) + "\n", encoding="utf-8"
            )
    doc = {
        "name": "toy",
        "languages": list(rows),
        "data": {"files": {"train": "train.{language}.jsonl", "test": "test.{language}.jsonl"}},
        "fields": {"id": "uid", "question": "text", "choices": "options", "gold": "answer"},
        "eval": {"format": "cloze"},
        "prompt": {"cloze": {"en": "Q: {{question}}\nA:", "de": "F: {{question}}\nA:"}},
    }
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            doc.setdefault(section, {})[key] = value
        elif value is None:
            doc.pop(section, None)
        else:
            doc[section] = value
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_a_task_file_renders_cloze_letters_and_training_examples(tmp_path):
    spec = get_task(str(write_task(tmp_path)))
    assert spec.metric == "acc_norm" and spec.answer_format == "cloze"
    item = spec.items("de", "test")[1]
    assert (item.doc_id, item.context, item.gold) == ("q101", "F: de question 101\nA:", 1)
    assert item.choices == ("de-a101", "de-b101", "de-c101", "de-d101")
    example = spec.train_examples("en", "train")[0]
    assert example.prompt.startswith("Question: en question") and "\nD) en-d" in example.prompt
    assert example.prompt.endswith("\nAnswer:") and example.loss_on == "target"
    assert example.target == " " + "ABCD"[example.meta["gold"]]

    letters = get_task(str(write_task(tmp_path, eval__format="letters")))
    item = letters.items("en", "test")[0]
    assert item.choices == ("A", "B", "C", "D") and letters.metric == "acc"
    assert (
        item.context
        == "Question: en question 100\nA) en-a100\nB) en-b100\nC) en-c100\nD) en-d100\nAnswer:"
    )


def test_answer_text_training_puts_the_loss_on_every_token(tmp_path):
    spec = get_task(str(write_task(tmp_path, train={"format": "answer_text"})))
    example = spec.train_examples("en", "validation")[0]
    k = int(example.doc_id.removeprefix("q"))
    assert example.prompt == f"Question: en question {k}\nAnswer:"
    assert (example.target, example.loss_on) == (f" en-{'abcd'[k % 4]}{k}", "all")


def test_train_and_validation_cut_exactly_as_datasets_train_test_split():
    import datasets

    ids = [f"id{i}" for i in range(215)]
    cut = datasets.Dataset.from_dict({"id": ids}).train_test_split(test_size=0.1, seed=42)
    assert train_validation(ids, 0.1, 42) == (cut["train"]["id"], cut["test"]["id"])


def test_a_shared_pool_is_drawn_into_disjoint_parallel_splits(tmp_path):
    rows = {lang: {"pool": _rows(lang, 30)} for lang in ("en", "de", "fr")}
    rows["fr"]["pool"] = rows["fr"]["pool"][::-1]  # row order must not matter
    path = write_task(
        tmp_path,
        rows,
        data={"files": {"pool": "pool.{language}.jsonl"}},
        splits={"test": {"pool": "pool", "n": 10}, "train": {"pool": "pool", "n": 15}},
        prompt={"cloze": "{{question}}"},
    )
    spec = get_task(str(path))
    sizes = spec.split_sizes()
    assert sizes == {"train": 13, "validation": 2, "test": 10}
    test = spec.split_ids("test")
    assert not set(test) & set(spec.split_ids("train") + spec.split_ids("validation"))
    assert (
        [i.doc_id for i in spec.items("fr", "test")] == test == [i.doc_id for i in spec.items("en")]
    )


def test_intersect_keeps_the_ids_every_language_holds(tmp_path):
    rows = {lang: {"train": _rows(lang, 20), "test": _rows(lang, 8, 100)} for lang in ("en", "de")}
    rows["de"]["test"] = rows["de"]["test"][:-1]
    spec = get_task(str(write_task(tmp_path, rows, splits__align="intersect")))
    assert len(spec.items("en")) == len(spec.items("de")) == 7


def test_csv_and_parquet_files_read_like_jsonl(tmp_path):
    import pandas as pd

    for lang in ("en", "de"):
        frame = pd.DataFrame(_rows(lang, 6))
        frame.assign(options=frame.options.map(json.dumps)).to_csv(
            tmp_path / f"{lang}.csv", index=False
        )
        frame.to_parquet(tmp_path / f"{lang}.parquet")
    common = {
        "splits": {"test": {"pool": "test"}, "train": None},
        "prompt": {"cloze": "{{question}}"},
    }
    csv_task = write_task(
        tmp_path, rows={"en": {}, "de": {}}, data={"files": {"test": "{language}.csv"}},
        fields={"id": "uid", "question": "text", "choices": "{{options}}", "gold": "answer"}, **common,
    )  # fmt: skip
    parquet_task = write_task(
        tmp_path,
        rows={"en": {}, "de": {}},
        data={"files": {"test": "{language}.parquet"}},
        **common,
    )
    from_csv = get_task(str(csv_task)).items("de")
    from_parquet = get_task(str(parquet_task)).items("de")
    assert from_csv == from_parquet and len(from_csv) == 6
    with pytest.raises(UserError, match="no training split"):
        get_task(str(parquet_task)).train_examples("de")


def _error(tmp_path, rows=None, **changes) -> str:
    with pytest.raises(UserError) as caught:
        get_task(str(write_task(tmp_path, rows, **changes)))
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "toy.yaml")) and "\n" not in message
    return message


def test_bad_task_files_name_the_file_the_field_and_the_fix(tmp_path):
    assert "fields.question: missing" in _error(
        tmp_path, fields={"id": "uid", "choices": "options", "gold": "answer"}
    )
    assert "eval.format: missing" in _error(tmp_path, eval={})
    assert "evl: unknown key (did you mean 'eval'?)" in _error(tmp_path, evl={})
    assert "did you mean 'cloze'" in _error(tmp_path, eval__format="cloz")
    message = _error(
        tmp_path,
        fields={"id": "uid", "question": "{{txt}}", "choices": "options", "gold": "answer"},
    )
    assert "fields.question: template references an unknown column" in message and "text" in message
    assert "column 'txt' is not in the data" in _error(
        tmp_path, fields={"id": "uid", "question": "txt", "choices": "options", "gold": "answer"}
    )
    assert "data.files.test: data file" in _error(
        tmp_path, data={"files": {"test": "nope.jsonl", "train": "x"}}
    )


def test_bad_rows_name_the_item_and_the_fix(tmp_path):
    def rows(edit):
        data = {
            lang: {"train": _rows(lang, 20), "test": _rows(lang, 8, 100)} for lang in ("en", "de")
        }
        edit(data)
        return data

    def gold_out_of_range(d):
        d["de"]["test"][3]["answer"] = 4

    def duplicate(d):
        d["en"]["train"][5]["uid"] = "q4"

    def other_ids(d):
        d["de"]["test"][2]["uid"] = "zzz"

    def empty(d):
        d["en"]["test"], d["de"]["test"] = [], []

    def leaked(d):
        for lang in d:
            d[lang]["train"][0]["uid"] = "q100"

    assert "fields.gold: item 'q103' has gold 4, out of range for its 4 choices" in _error(
        tmp_path, rows(gold_out_of_range)
    )
    assert "item id 'q4' occurs twice in en/train" in _error(tmp_path, rows(duplicate))
    message = _error(tmp_path, rows(other_ids))
    assert (
        "languages: en and de hold different item ids in test" in message
        and "align: intersect" in message
    )
    assert "splits.test: the test split is empty" in _error(tmp_path, rows(empty))
    assert "item 'q100' is in both the training pool and the test split" in _error(
        tmp_path, rows(leaked)
    )


def test_cli_reports_a_bad_task_file_in_one_line(tmp_path, monkeypatch, capsys):
    from transferlab.cli import main

    data = {lang: {"train": _rows(lang, 20), "test": _rows(lang, 8, 100)} for lang in ("en", "de")}
    data["de"]["test"][0]["answer"] = 9
    monkeypatch.setattr(
        sys, "argv", ["transferlab", "tasks", "show", str(write_task(tmp_path, data))]
    )
    with pytest.raises(SystemExit) as stopped:
        main()
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1
    assert "toy.yaml: fields.gold: item 'q100' has gold 9" in err
