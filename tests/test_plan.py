"""The planner: jobs keyed by content, so a grown study plans only the new work."""

from __future__ import annotations

import pytest
import yaml

from study_tiny import write_study
from transferlab.config import load_study
from transferlab.plan import BASE, evaluation_jobs, plan_study


@pytest.fixture
def study_path(tmp_path, tiny_model_dir):
    return write_study(tmp_path, tiny_model_dir)


def _plan(path, *overrides):
    return plan_study(load_study(path, list(overrides)))


def test_the_plan_has_a_baseline_per_model_a_training_per_source_and_seed(study_path):
    plan = _plan(study_path, "seeds=[1,2]")
    assert len(plan.train_jobs) == 4 * 2  # 2 tasks × 2 languages, 2 seeds
    assert len(plan.units) == 4 + 8 * 4  # base on every cell + every adapter on every cell
    jobs = evaluation_jobs(plan, done_units=())
    assert sorted((j.seed is None, len(j.units)) for j in jobs) == [
        (False, 16),
        (False, 16),
        (True, 4),
    ]  # one job per (model, seed) group scores all its adapters; one baseline job
    baseline = next(j for j in jobs if j.seed is None)
    assert {u.state for u in baseline.units} == {BASE}


def test_keys_are_stable_and_follow_only_what_determines_the_output(study_path):
    plan = _plan(study_path)
    assert [j.key for j in _plan(study_path).train_jobs] == [j.key for j in plan.train_jobs]
    keys = {j.key for j in plan.train_jobs}
    base = {u.key for u in plan.units if u.state == BASE}

    relearned = _plan(study_path, "training.learning_rate=0.002")
    assert keys.isdisjoint(j.key for j in relearned.train_jobs)
    assert base == {u.key for u in relearned.units if u.state == BASE}  # base needs no redo

    rescored = _plan(study_path, "evaluation.batch_size=4")
    assert keys == {j.key for j in rescored.train_jobs}  # adapters stay valid
    assert base.isdisjoint(u.key for u in rescored.units)

    renamed = _plan(study_path, "name=other", "out_dir=elsewhere", "executor.retries=3")
    assert {u.key for u in renamed.units} == {u.key for u in plan.units}


def test_a_changed_task_file_changes_only_the_keys_that_read_it(study_path):
    plan = _plan(study_path)
    task = study_path.parent / "tasks" / "alpha.yaml"
    german = {"de": "F: {{question}}\nA:", "default": "Question: {{question}}\nAnswer:"}
    task.write_text(task.read_text() + yaml.safe_dump({"prompt": {"cloze": german}}))
    changed = _plan(study_path)
    moved = {
        (j.source.cell.task, j.source.cell.language)
        for old, j in zip(plan.train_jobs, changed.train_jobs, strict=True)
        if old.key != j.key
    }
    assert moved == {("alpha", "de")}
    retrained = next(j.key for j in plan.train_jobs if str(j.source) == "alpha:de")
    for old, unit in zip(plan.units, changed.units, strict=True):
        reads_it = str(unit.cell) == "alpha:de" or old.state == retrained
        assert (old.key != unit.key) == reads_it, unit


@pytest.mark.parametrize(
    ("grown", "new_trainings"),
    [
        (["languages=[en,de,zh]"], 2),
        (["tasks=[tasks/alpha.yaml,tasks/beta.yaml,tasks/gamma.yaml]"], 2),
        (["seeds=[1,2]"], 4),
    ],
    ids=["language", "task", "seed"],
)
def test_growing_a_finished_study_plans_only_the_new_jobs(study_path, grown, new_trainings):
    before = _plan(study_path)
    after = _plan(study_path, *grown)
    old_trainings = {j.key for j in before.train_jobs}
    old_units = {u.key for u in before.units}
    assert old_trainings < {j.key for j in after.train_jobs}
    assert len(after.train_jobs) - len(before.train_jobs) == new_trainings
    assert old_units < {u.key for u in after.units}
    # With the first study done, only new work is left: the new units, grouped per seed.
    todo = evaluation_jobs(after, done_units=old_units)
    assert {u.key for j in todo for u in j.units} == {u.key for u in after.units} - old_units


def test_evaluation_waits_for_every_training_of_its_group(study_path):
    plan = _plan(study_path)
    keys = [j.key for j in plan.train_jobs]
    waiting = evaluation_jobs(plan, (), ready=keys[:3], settled=keys[:3])
    assert [j.seed for j in waiting] == [None]  # only the baseline may run
    # One training out of retries: the group goes ahead with the adapters that exist.
    ready = evaluation_jobs(plan, (), ready=keys[:3], settled=keys)
    group = next(j for j in ready if j.seed is not None)
    assert {u.state for u in group.units} == set(keys[:3])


def test_a_change_in_scoring_code_rescores_but_does_not_retrain(study_path, monkeypatch):
    import transferlab.plan as plan_module

    plan = _plan(study_path)
    assert {"transferlab.training", "transferlab.scoring", "torch"} <= set(plan.versions)
    edited = {**plan_module.code_versions(), "transferlab.scoring": "edited"}
    monkeypatch.setattr(plan_module, "code_versions", lambda: edited)
    rescored = _plan(study_path)
    assert [j.key for j in rescored.train_jobs] == [j.key for j in plan.train_jobs]
    assert {u.key for u in rescored.units}.isdisjoint(u.key for u in plan.units)
