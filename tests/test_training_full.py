"""Full fine-tuning (``training.method: full``): training, scoring as its own state, studies."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from cli_runner import run_cli
from study_tiny import write_study
from training_toy import one_thread, toy_examples
from transferlab.errors import UserError
from transferlab.grid import Cell
from transferlab.models import load_model
from transferlab.tasks.types import MCItem
from transferlab.training import TrainSettings, make_settings, train_adapter

FULL = TrainSettings(method="full", epochs=2, learning_rate=1e-3, logging_steps=2)
LORA = TrainSettings(lora_r=4, lora_alpha=8, epochs=2, learning_rate=1e-3, logging_steps=2)
TRAIN, VALIDATION = toy_examples(16, seed=1), toy_examples(4, start=100, seed=2)
TARGETS = {
    Cell("toy", "en"): [
        MCItem(e.doc_id, e.prompt, (" A", " B", " C", " D"), "ABCD".index(e.target.strip()), "")
        for e in toy_examples(6, start=200, seed=3)
    ],
    Cell("toy", "de"): [
        MCItem("de-0", "Frage: Wo liegt Frankreich? Antwort:", ("Europa", "Asien"), 0)
    ],
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def loaded(tiny_gemma_dir):
    return load_model(str(tiny_gemma_dir))


@pytest.fixture(scope="module")
def full_run(loaded, tmp_path_factory):
    base = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    out = tmp_path_factory.mktemp("full") / "state"
    outcome = train_adapter(loaded, TRAIN, VALIDATION, out, FULL, seed=17, progress=False)
    return outcome, base


def test_the_default_method_leaves_existing_keys_unchanged():
    # Studies keyed before the method existed dump their settings without it.
    assert "method" not in TrainSettings().model_dump(mode="json")
    assert TrainSettings(method="lora") == TrainSettings()
    dumped = TrainSettings(method="full").model_dump(mode="json")
    assert dumped["method"] == "full"
    assert not {"lora_r", "lora_alpha", "lora_dropout", "target_modules"} & set(dumped)
    assert make_settings(dumped) == TrainSettings(method="full")  # a dump reloads


def test_lora_settings_with_full_are_refused_in_one_line():
    with pytest.raises(UserError) as error:
        make_settings({"method": "full", "lora_r": 8, "lora_alpha": 16})
    text = str(error.value)
    assert "lora_r, lora_alpha" in text and "method lora" in text and "\n" not in text


def test_full_training_writes_whole_weights_and_gives_the_base_back(loaded, full_run):
    outcome, base = full_run
    folder = outcome.adapter_dir
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    assert not (folder / "adapter_config.json").exists()
    meta = json.loads((folder / "transferlab.json").read_text())
    assert meta["method"] == "full" and meta["settings"]["method"] == "full"
    assert meta["adapter_hash"] == outcome.adapter_hash
    assert meta["base_model"]["model_hash"] == loaded.model_hash
    assert meta["target_modules"] == []
    assert meta["peak_rss_mb"] > 0 and meta["s_per_step"] > 0 and meta["wall_time_s"] > 0
    assert meta["optimizer_steps"] == 2 * 2  # 16 examples in batches of 8, two epochs
    # every weight was trained: the embedding and a layer norm moved, not only projections
    from safetensors.torch import load_file

    tuned = load_file(folder / "model.safetensors")
    for name in ("model.embed_tokens.weight", "model.layers.0.input_layernorm.weight"):
        assert not torch.equal(tuned[name], base[name])
    for name, p in loaded.model.named_parameters():  # the loaded model is the base again
        assert torch.equal(p, base[name]), name


def test_a_full_state_scores_as_its_weights_loaded_directly(loaded, full_run, tmp_path):
    from transferlab.scoring import ModelState, score

    outcome, base = full_run
    targets = TARGETS
    lora = train_adapter(loaded, TRAIN, VALIDATION, tmp_path / "lora", LORA, 17, progress=False)
    states = [
        ModelState("base", None),
        ModelState.for_adapter(outcome.adapter_dir),
        ModelState.for_adapter(lora.adapter_dir),
        ModelState("base-again", None),
    ]
    mixed = score(loaded, states, targets, batch_size=4, progress=False)
    direct = score(
        load_model(str(outcome.adapter_dir)), [ModelState("x")], targets, 4, progress=False
    )
    by_state: dict[str, list] = {}
    for r in mixed:
        by_state.setdefault(r.model_state, []).append(r.loglikelihoods)
    assert by_state[outcome.adapter_dir.name] == [r.loglikelihoods for r in direct]
    assert by_state["base"] == by_state["base-again"]  # the base came back exactly
    assert by_state[outcome.adapter_dir.name] != by_state["base"]
    alone = score(loaded, [states[2]], targets, batch_size=4, progress=False)
    assert by_state[lora.adapter_dir.name] == [r.loglikelihoods for r in alone]
    for name, p in loaded.model.named_parameters():
        assert torch.equal(p, base[name]), name


def test_a_full_state_of_another_base_is_refused(full_run, tiny_model_dir):
    from transferlab.scoring import ModelState, score

    other = load_model(str(tiny_model_dir))  # a llama, not the gemma it was tuned from
    with pytest.raises(UserError, match="model_hash"):
        score(other, [ModelState.for_adapter(full_run[0].adapter_dir)], {}, progress=False)


class Crash(Exception):
    """Stands for the process dying in the middle of a step."""


def test_a_killed_full_run_resumes_to_the_uninterrupted_bytes(loaded, full_run, tmp_path):
    from transferlab.training import partial_dir

    outcome, base = full_run
    out = tmp_path / "state"
    calls = {"n": 0}

    def crash_on_fourth_training_forward(module, args, output):
        calls["n"] += module.training
        if calls["n"] >= 4:  # epoch 2 of 2 steps each: after the first epoch's checkpoint
            raise Crash("killed")
        return output

    hook = loaded.model.get_input_embeddings().register_forward_hook(
        crash_on_fourth_training_forward
    )
    try:
        with pytest.raises(Crash):
            train_adapter(loaded, TRAIN, VALIDATION, out, FULL, 17, progress=False)
    finally:
        hook.remove()
    assert not out.exists() and (partial_dir(out) / "checkpoint.pt").exists()
    for name, p in loaded.model.named_parameters():  # a crash gives the base back too
        assert torch.equal(p, base[name]), name
    resumed = train_adapter(loaded, TRAIN, VALIDATION, out, FULL, 17, progress=False)
    assert resumed.metadata["resumed_from_epoch"] == 1
    assert resumed.adapter_hash == outcome.adapter_hash
    assert (out / "model.safetensors").read_bytes() == (
        outcome.adapter_dir / "model.safetensors"
    ).read_bytes()


def test_the_same_full_run_is_not_trained_twice(loaded, full_run):
    outcome, _ = full_run
    again = train_adapter(loaded, TRAIN, VALIDATION, outcome.adapter_dir, FULL, 17, progress=False)
    assert again.adapter_hash == outcome.adapter_hash
    assert again.metadata["finished_at"] == outcome.metadata["finished_at"]


def _full_study(tmp_path, model_dir):
    path = write_study(tmp_path, model_dir, languages=("en",), tasks=("alpha", "beta"))
    study = yaml.safe_load(path.read_text())
    study["training"] = {
        k: v for k, v in study["training"].items() if k not in ("lora_r", "lora_alpha")
    }
    study["training"]["method"] = "full"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_a_full_study_runs_resumes_and_keys_apart_from_lora(tmp_path, tiny_model_dir):
    import pandas as pd

    from transferlab.config import load_study
    from transferlab.plan import plan_study
    from transferlab.runner import run_study
    from transferlab.store import Store

    path = _full_study(tmp_path, tiny_model_dir)
    outcome = run_study(path, progress=False)
    assert outcome.failed == 0
    out = tmp_path / "out"
    per_seed = pd.read_csv(out / "results_per_seed.csv")
    assert len(per_seed) == 2 * 2
    store = Store(out)
    try:
        folders = [folder for folder, _, _ in store.adapters().values()]
    finally:
        store.close()
    assert all((f / "model.safetensors").exists() for f in folders) and len(folders) == 2
    assert (per_seed["delta_score_norm"] != 0).any()  # the tuned weights were what got scored
    again = run_study(path, progress=False)
    assert "0 job(s) finished this run" in again.summary

    full_keys = {j.key for j in plan_study(load_study(path)).train_jobs}
    lora_keys = {j.key for j in plan_study(load_study(path, ["training.method=lora"])).train_jobs}
    assert len(full_keys) == len(lora_keys) == 2 and not full_keys & lora_keys
    explicit = load_study(path, ["training.method=lora"])
    plain = write_study(tmp_path / "plain", tiny_model_dir, languages=("en",))
    assert {j.key for j in plan_study(load_study(plain)).train_jobs} == {
        j.key for j in plan_study(load_study(plain, ["training.method=lora"])).train_jobs
    }
    assert explicit.training.method == "lora"


def test_full_with_lora_keys_in_a_study_exits_2_and_writes_nothing(
    tmp_path, tiny_model_dir, monkeypatch, capsys
):
    path = _full_study(tmp_path, tiny_model_dir)
    code, _, err = run_cli(monkeypatch, capsys, "run", path, "--set", "training.lora_r=8")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "lora_r" in err and "method lora" in err
    assert not (tmp_path / "out").exists()
    code, _, err = run_cli(
        monkeypatch, capsys, "train", "--model", tiny_model_dir, "--task", path.parent / "tasks/alpha.yaml",
        "--language", "en", "--out", tmp_path / "t", "--set", "method=full", "--set", "lora_alpha=4",
    )  # fmt: skip
    assert code == 2 and "lora_alpha" in err and not (tmp_path / "t").exists()


def test_a_full_state_that_does_not_fit_the_base_names_the_weight(
    full_run, tiny_model_dir, tmp_path
):
    import shutil

    from transferlab.scoring import ModelState, score

    folder = tmp_path / "unrecorded"
    shutil.copytree(full_run[0].adapter_dir, folder)
    meta = json.loads((folder / "transferlab.json").read_text())
    del meta["base_model"]  # no record of the base: the tensors themselves must not fit
    (folder / "transferlab.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="no such weight|shape"):
        score(load_model(str(tiny_model_dir)), [ModelState.for_adapter(folder)], {}, progress=False)


def test_transferlab_evaluate_scores_a_full_state(
    full_run, tiny_gemma_dir, tmp_path, monkeypatch, capsys
):
    import pandas as pd

    from study_tiny import write_task

    task = write_task(tmp_path / "tasks", "alpha", ["en"], 0)
    folder = full_run[0].adapter_dir
    code, out, err = run_cli(
        monkeypatch, capsys, "evaluate", "--model", tiny_gemma_dir, "--adapter", folder,
        "--task", task, "--out", tmp_path / "eval", "--dtype", "float32",
    )  # fmt: skip
    assert code == 0, err
    scores = pd.read_csv(tmp_path / "eval" / "scores.csv")
    assert list(scores["model_state"]) == ["base", folder.name]
    info = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert full_run[0].adapter_hash in json.dumps(info)


def test_a_study_varying_the_method_trains_both_and_reports_the_ablation(tmp_path, tiny_model_dir):
    import pandas as pd

    from transferlab.analysis.command import read_results
    from transferlab.analysis.result import run_analysis
    from transferlab.runner import run_study

    # lora_r / lora_alpha set for the study: they shape the LoRA variant, not the full one
    path = write_study(tmp_path, tiny_model_dir, languages=("en",), tasks=("alpha", "beta"))
    study = yaml.safe_load(path.read_text())
    study["training"]["method"] = ["lora", "full"]
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    assert run_study(path, progress=False).failed == 0
    out = tmp_path / "out"
    per_seed = pd.read_csv(out / "results_per_seed.csv", keep_default_na=False)
    assert per_seed.groupby("method").size().to_dict() == {"full": 4, "lora": 4}
    assert set(per_seed.loc[per_seed["method"] == "full", "lora_r"]) == {""}
    assert set(per_seed.loc[per_seed["method"] == "lora", "lora_r"]) == {"4"}
    result = run_analysis(read_results(out), n_boot=50)
    method = result.tables["ablation_method"]
    # full − LoRA on the cells both trained, from the per-seed rows themselves
    wide = per_seed.pivot_table(
        index=["fine_tuned_dataset", "eval_dataset"], columns="method", values="delta_score_norm"
    )
    transfer = wide.index.get_level_values(0) != wide.index.get_level_values(1)
    want = (wide["full"] - wide["lora"])[transfer]
    assert len(method) == 1
    assert abs(float(method["mean_difference"].iloc[0]) - want.mean()) < 1e-9
    assert "Training ablations" in (out / "report.html").read_text(encoding="utf-8")
