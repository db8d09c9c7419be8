"""Few-shot contexts identical to the ones lm-evaluation-harness renders (default and first_n
samplers, a training pool or the test split itself, a description, MC and generate_until)."""

from __future__ import annotations

import json
from pathlib import Path

import lm_eval
import pytest
import yaml

from transferlab.tasks import get_task

TRAIN = [{"q": f"Wie viel ist {a} plus {b}?", "choices": [str(a + b), str(a * b), "0", "1"],
          "gold": 0, "answer": str(a + b)} for a, b in [(2, 3), (4, 4), (1, 7), (6, 2), (3, 9)]]  # fmt: skip
TEST = [{"q": f"Was ist {a} plus {b}?", "choices": ["5", str(a + b), "2", "3"], "gold": 1,
         "answer": str(a + b)} for a, b in [(5, 5), (2, 8), (7, 7), (1, 1), (9, 3), (4, 6)]]  # fmt: skip


def _write(folder: Path, name: str, **keys) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", TRAIN), ("test", TEST)):
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
    doc = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {
            "data_files": {"train": str(folder / "train.jsonl"), "test": str(folder / "test.jsonl")}
        },  # fmt: skip
        "training_split": "train",
        "test_split": "test",
        "doc_to_text": "Frage: {{q}}\nAntwort:",
    } | keys
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


MC = {"output_type": "multiple_choice", "doc_to_choice": "{{choices}}", "doc_to_target": "gold",
      "metric_list": [{"metric": "acc"}]}  # fmt: skip
GEN = {"output_type": "generate_until", "doc_to_target": "answer", "target_delimiter": " ",
       "generation_kwargs": {"until": ["\n"], "max_gen_toks": 3, "do_sample": False}}  # fmt: skip
CASES = {
    "mc_default": MC | {"num_fewshot": 2},
    "mc_test_pool": MC
    | {
        "num_fewshot": 3,
        "fewshot_split": "test",
        "description": "Rechnen.\n\n",
        "fewshot_delimiter": "\n###\n",
    },  # fmt: skip
    "mc_first_n": MC | {"num_fewshot": 2, "fewshot_config": {"sampler": "first_n"}},
    "gen_default": GEN | {"num_fewshot": 3},
    "gen_first_n": GEN | {"num_fewshot": 1, "fewshot_config": {"sampler": "first_n"}},
}


def _lm_eval_contexts(folder: Path, name: str, model_dir: Path) -> list[str]:
    from lm_eval.tasks import TaskManager

    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32",
                                  tasks=[name], task_manager=TaskManager(include_path=str(folder)),
                                  log_samples=True, batch_size=8, device="cpu", limit=4)  # fmt: skip
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    seen = {}
    for sample in samples:  # one entry per document (and filter); the context is its first arg
        seen.setdefault(sample["doc_id"], sample["arguments"][0][0])
    return [seen[k] for k in sorted(seen)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_fewshot_contexts_are_lm_evals(case, tmp_path, tiny_model_dir):
    path = _write(tmp_path / case, case, **CASES[case])
    ours = [item.context for item in get_task(str(path)).items("und", "test")[:4]]
    assert ours == _lm_eval_contexts(tmp_path / case, case, tiny_model_dir)
    assert ours[0].count("Frage:") == CASES[case]["num_fewshot"] + 1


def test_the_test_document_itself_is_never_its_own_example(tmp_path):
    path = _write(tmp_path, "t", **CASES["mc_test_pool"])
    for item, row in zip(get_task(str(path)).items("und", "test"), TEST, strict=True):
        examples = item.context.split("\n###\n")[:-1]
        assert f"Frage: {row['q']}\nAntwort:" not in "".join(examples)


UTILS = """
def process_docs(dataset):
    return dataset.map(lambda doc: {"q": doc["q"].replace("plus", "+"), "n": len(doc["q"])})


def doc_to_text(doc):
    return "Aufgabe (" + str(doc["n"]) + "): " + doc["q"] + "\\nAntwort:"
"""


def _with_code(folder: Path) -> Path:
    path = _write(folder, "coded", **MC, num_fewshot=1)
    (folder / "utils.py").write_text(UTILS, encoding="utf-8")
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) | {
        "doc_to_text": "TEXT",
        "process_docs": "DOCS",
    }
    text = yaml.safe_dump(doc, allow_unicode=True)
    text = text.replace("TEXT", "!function utils.doc_to_text").replace(
        "DOCS", "!function utils.process_docs"
    )
    path.write_text(text, encoding="utf-8")
    return path


def test_trusted_task_code_is_imported_from_the_tasks_folder_as_lm_eval_does(
    tmp_path, tiny_model_dir, monkeypatch, capsys
):
    from cli_runner import run_cli

    path = _with_code(tmp_path / "coded")
    code, _, stderr = run_cli(monkeypatch, capsys, "tasks", "show", path)
    assert code == 2 and stderr.count("\n") == 1
    assert "doc_to_text, process_docs: `!function` (Python code) is not supported" in stderr
    assert "--trust-task-code" in stderr
    code, stdout, _ = run_cli(monkeypatch, capsys, "tasks", "show", path, "--trust-task-code")
    assert code == 0 and "Aufgabe (" in stdout and "Was ist 5 + 5?" in stdout
    ours = [i.context for i in get_task(str(path), trust_task_code=True).items("und", "test")[:4]]
    assert ours == _lm_eval_contexts(tmp_path / "coded", "coded", tiny_model_dir)
