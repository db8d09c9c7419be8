"""Results of trainings that differ in rank or method: variant columns, analysis, report.

The planner of a study makes one training per source and seed with one recipe; here two
studies (LoRA r = 4 and full fine-tuning) share one output folder, and their plans are
joined into the plan a study varying its training would make.
"""

from __future__ import annotations

import dataclasses
import gzip
import json

import pandas as pd
import yaml

from cli_runner import run_cli
from study_tiny import write_study
from transferlab.analysis import run_analysis, table_from_frame
from transferlab.analysis.bootstrap import items_from_frame
from transferlab.config import load_study
from transferlab.exports import PER_SEED_COLUMNS, item_frames, per_seed_table
from transferlab.jobs.evaluate import run_evaluation
from transferlab.plan import evaluation_jobs, plan_study
from transferlab.report.build import render_report
from transferlab.runner import run_study
from transferlab.store import Store


def _joined_plan(*plans):
    first = plans[0]
    units = {u.key: u for plan in plans for u in plan.units}
    trainings = [j for plan in plans for j in plan.train_jobs]
    work = {**first.work, "train": trainings, "evaluate": list(units.values())}
    return dataclasses.replace(first, work=work)


def test_lora_and_full_rows_carry_their_variant_and_are_compared(
    tmp_path, tiny_model_dir, monkeypatch, capsys
):
    lora_path = write_study(tmp_path, tiny_model_dir, languages=("en", "de"), tasks=("alpha",))
    raw = yaml.safe_load(lora_path.read_text())
    raw["training"] = {k: v for k, v in raw["training"].items() if not k.startswith("lora_")}
    raw["training"]["method"] = "full"
    full_path = tmp_path / "full.yaml"
    full_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    for path in (lora_path, full_path):
        assert run_study(path, progress=False).failed == 0
    out = tmp_path / "out"
    plain = pd.read_csv(out / "results_per_seed.csv")
    assert list(plain.columns) == PER_SEED_COLUMNS  # one recipe: the layout is unchanged

    plan = _joined_plan(plan_study(load_study(lora_path)), plan_study(load_study(full_path)))
    store = Store(out)
    try:
        scores = store.scores()
        frame = per_seed_table(plan, scores)
        items = pd.concat(list(item_frames(plan, store)), ignore_index=True)
        adapters = {k: v[:2] for k, v in store.adapters().items()}
    finally:
        store.close()

    # One evaluation job holding both recipes of each source (what a study varying its
    # training plans) scores each state as the separate studies did.
    (job,) = [j for j in evaluation_jobs(plan, done_units=()) if j.seed is not None]
    assert {u.state for u in job.units} == set(adapters)
    assert len(set(job.state_names.values())) == 2  # readable names alike: one per source
    together = run_evaluation(job, adapters, progress=False)
    for unit in together.scores:
        assert unit.metrics == scores[unit.unit_key].metrics
    assert list(frame.columns) == [*PER_SEED_COLUMNS, "method", "lora_r"]
    assert len(frame) == 2 * 2 * 2  # two sources × two targets, per method
    by_method = frame.groupby("method")["lora_r"].agg(lambda s: set(s.dropna()))
    assert by_method.to_dict() == {"full": set(), "lora": {4}}
    base_items = items["fine_tuned_dataset"] == ""
    assert items.loc[base_items, "method"].isna().all()
    assert len(items) == len({u.key for u in plan.units}) * 6

    # Through the files, as `transferlab analyze` reads them.
    frame.to_csv(tmp_path / "per_seed.csv", index=False)
    with gzip.open(tmp_path / "items.csv.gz", "wt", encoding="utf-8") as handle:
        items.to_csv(handle, index=False)
    reread = pd.read_csv(tmp_path / "per_seed.csv", dtype=str, keep_default_na=False)
    with gzip.open(tmp_path / "items.csv.gz", "rt", encoding="utf-8") as handle:
        item_rows = items_from_frame(pd.read_csv(handle, dtype=str, keep_default_na=False), "x")
    table = table_from_frame(reread, "per_seed.csv", item_rows)
    assert len(table.cells) == 8 and table.holes == 0
    result = run_analysis(table, n_boot=50)
    assert result.reference_rank == 4  # no r = 32 here: the smallest rank is the reference
    assert "ablation_method" in result.tables and "ablation_rank" not in result.tables
    compared = result.tables["ablation_method"].iloc[0]
    assert compared["lora_r"] == 4 and compared["n_paired"] == 2  # the transfer cells
    lora = table.cells[table.cells["method"] == "lora"]
    transfer = lora[lora["regime"] != "MT-ML"]
    assert compared["mean_lora"] == transfer["delta_score_norm_mean"].mean()
    # the main tables read the LoRA rows only: the regime table counts each cell once
    assert result.tables["regimes"].set_index("regime").loc["MT-ML", "n"] == 2
    assert len(result.tables["cell_ci"]) == 4
    code, _, err = run_cli(
        monkeypatch, capsys, "analyze", tmp_path / "per_seed.csv", "--out", tmp_path / "a"
    )
    assert code == 0, err
    written = pd.read_csv(tmp_path / "a" / "ablation_method.csv")
    assert (
        written["n_paired"].tolist() == [2] and not (tmp_path / "a" / "ablation_rank.csv").exists()
    )
    assert json.loads((tmp_path / "a" / "analysis_info.json").read_text())["reference_rank"] == 4
    html = render_report(table, result, None, "ablation")
    assert "Training ablations" in html and 'id="table-ablation-method"' in html
    plain_html = render_report(
        table_from_frame(plain, "plain"), run_analysis(table_from_frame(plain, "p")), None, "p"
    )
    assert "Training ablations" not in plain_html
