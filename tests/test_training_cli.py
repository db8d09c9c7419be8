"""`transferlab train` end to end on a bundled task: the summary, the files, the exit codes."""

from __future__ import annotations

import json

import pytest

from cli_runner import run_cli
from training_toy import one_thread
from transferlab.tasks import get_task


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


def _cli(args, monkeypatch, capsys):
    return run_cli(monkeypatch, capsys, *args)


def test_train_writes_an_adapter_for_a_bundled_task(tiny_gemma_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cc-de"
    args = ["train", "--model", str(tiny_gemma_dir), "--task", "country_continent"]
    args += ["--language", "de", "--out", str(out), "--seed", "101", "--set", "epochs=1"]
    code, stdout, _ = _cli(args, monkeypatch, capsys)
    assert code == 0
    meta = json.loads((out / "transferlab.json").read_text())
    assert f"Wrote adapter {out}" in stdout and meta["adapter_hash"] in stdout
    task = get_task("country_continent")
    assert meta["provenance"]["source"] == "country_continent:de"
    assert meta["provenance"]["task_hash"] == task.content_hash("de")
    assert meta["seed"] == 101 and meta["settings"]["epochs"] == 1
    assert meta["data"]["n_train"] == len(task.train_examples("de", "train"))
    assert (out / "adapter_model.safetensors").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "learnig_rate=1e-4"], "did you mean 'learning_rate'"),
        (["--set", "batch_size=0"], "batch_size"),
        (["--language", "xx"], "xx"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    extra, message, tiny_gemma_dir, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "never"
    args = ["train", "--model", str(tiny_gemma_dir), "--task", "country_continent"]
    args += ["--out", str(out)] + (["--language", "de"] if "--language" not in extra else [])
    code, _, stderr = _cli(args + extra, monkeypatch, capsys)
    assert code == 2
    assert stderr.count("\n") == 1 and message in stderr
    assert not out.exists() and not out.with_name("never.partial").exists()
