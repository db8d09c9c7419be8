"""``transferlab evaluate``: the files of DESIGN.md §3, provenance, and bad input (exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cli_runner import run_cli
from cpu_facts import expected_auto_dtype
from test_scoring import make_lora
from transferlab.training.outputs import adapter_hash

ITEM_FIELDS = [
    "model_state", "task", "language", "doc_id", "loglikelihoods", "gold", "acc", "acc_norm",
]  # fmt: skip


@pytest.fixture(scope="module")
def adapters(tiny_model_dir, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("command-adapters")
    return [make_lora(tiny_model_dir, root / name, seed) for seed, name in enumerate(["de", "hi"])]


def test_evaluate_writes_items_scores_and_provenance(
    tiny_model_dir, adapters, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "eval"
    args = ["evaluate", "--model", tiny_model_dir, "--out", out, "--limit", 6, "--batch-size", 4]
    args += ["--task", "number_words:de", "--task", "country_continent:hi"]
    for adapter in adapters:
        args += ["--adapter", adapter]
    code, stdout, stderr = run_cli(monkeypatch, capsys, *args)
    assert code == 0, stderr
    assert "items.jsonl" in stdout

    rows = [json.loads(line) for line in (out / "items.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 3 * 2 * 6
    assert all(list(row) == ITEM_FIELDS for row in rows)
    assert {row["model_state"] for row in rows} == {"base", "de", "hi"}
    assert {(row["task"], row["language"]) for row in rows} == {
        ("number_words", "de"),
        ("country_continent", "hi"),
    }
    for row in rows:
        assert len(row["loglikelihoods"]) == 4 and all(v < 0 for v in row["loglikelihoods"])
        best = max(range(4), key=lambda i: (row["loglikelihoods"][i], -i))
        assert row["acc"] == int(best == row["gold"])
    # Adapters change the numbers; the base row is the same item scored without one.
    by_state = {
        s: [r["loglikelihoods"] for r in rows if r["model_state"] == s]
        for s in "base de hi".split()
    }
    assert by_state["base"] != by_state["de"] != by_state["hi"]

    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns) == ["model_state", "task", "language", "n", "acc", "acc_norm"]
    assert len(scores) == 6 and set(scores["n"]) == {6}
    items = pd.DataFrame(rows)
    means = items.groupby(["model_state", "task", "language"])[["acc", "acc_norm"]].mean()
    for score in scores.itertuples():
        expected = means.loc[(score.model_state, score.task, score.language)]
        assert (score.acc, score.acc_norm) == pytest.approx((expected.acc, expected.acc_norm))

    record = json.loads((out / "evaluation.json").read_text())
    states = {s["name"]: s for s in record["model_states"]}
    assert states["base"]["adapter_hash"] is None
    assert states["de"]["adapter_hash"] == adapter_hash(adapters[0])
    assert record["model"]["model_hash"] and record["dtype"] == expected_auto_dtype()
    assert {t["target"] for t in record["targets"]} == {"number_words:de", "country_continent:hi"}
    assert all(t["task_hash"] for t in record["targets"])
    assert record["versions"]["torch"] and record["batch_size"] == 4
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left behind


def _different_base_adapter(tiny_model_dir: Path, root: Path) -> Path:
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig.from_pretrained(tiny_model_dir)
    config.hidden_size, config.intermediate_size = 32, 48
    AutoModelForCausalLM.from_config(config).save_pretrained(root / "small-base")
    return make_lora(root / "small-base", root / "small-lora", seed=0)


def _missing_weights_adapter(adapters: list[Path], root: Path) -> Path:
    broken = root / "broken"
    shutil.copytree(adapters[0], broken)
    (broken / "adapter_model.safetensors").unlink()
    return broken


def _empty_task(root: Path) -> Path:
    (root / "empty.jsonl").write_text("")
    task = {
        "task": "empty_task",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(root / "empty.jsonl")}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{question}}",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "answer",
    }
    (root / "empty.yaml").write_text(json.dumps(task))
    return root / "empty.yaml"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("different-base", "different base model"),
        ("missing-weights", "weights are missing"),
        ("same-name", "already taken"),
        ("not-an-adapter", "not a PEFT adapter"),
        ("empty-task", "empty"),
        ("unknown-task", "unknown task"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(
    case, message, tiny_model_dir, adapters, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    task, extra = "number_words:de", []
    if case == "different-base":
        extra = ["--adapter", _different_base_adapter(tiny_model_dir, tmp_path)]
    elif case == "missing-weights":
        extra = ["--adapter", _missing_weights_adapter(adapters, tmp_path)]
    elif case == "same-name":
        shutil.copytree(adapters[0], tmp_path / "copy" / adapters[0].name)
        extra = ["--adapter", adapters[0], "--adapter", tmp_path / "copy" / adapters[0].name]
    elif case == "not-an-adapter":
        extra = ["--adapter", tiny_model_dir]
    elif case == "empty-task":
        task = _empty_task(tmp_path)
    elif case == "unknown-task":
        task = "number_wrods"
    code, stdout, stderr = run_cli(
        monkeypatch, capsys, "evaluate", "--model", tiny_model_dir, "--task", task,
        "--out", out, "--limit", 2, *extra,
    )  # fmt: skip
    assert code == 2, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("error:") and message in stderr, stderr
    assert not out.exists()
