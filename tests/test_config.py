"""Study configs: shipped configs validate, overrides coerce, every malformed config is one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from cli_runner import run_cli as _cli
from transferlab.config import Study, load_study
from transferlab.errors import UserError

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))

VALID = {
    "name": "check",
    "models": ["gemma-3-270m"],
    "tasks": ["country_continent", "country_currency"],
    "languages": ["en", "de", "zh"],
    "seeds": [42],
}


def _write(folder: Path, **changes) -> Path:
    study = {**VALID, "out_dir": str(folder / "out"), **changes}
    study = {k: v for k, v in study.items() if v is not None}
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads_and_validates(path):
    study = load_study(path)
    assert study.cells and study.source_list and study.seeds
    if not study.mixtures:  # demo and paper ship with every cell a source
        assert len(study.source_list) == len(study.cells)


def test_the_mixtures_config_is_a_sweep_of_four_k_with_seen_and_unseen_languages():
    study = load_study(Path(__file__).parent.parent / "configs" / "mixtures.yaml")
    points = study.sweep_points
    assert [p.per_language for p in points] == [0, 8, 24, 64]
    assert [p.source.label for p in points][:2] == [
        "mix(number_arithmetic:en=32)",
        "mix(number_arithmetic:de=8,number_arithmetic:en=32,number_arithmetic:zh=8)",
    ]
    assert study.source_list == [p.source for p in points]  # the sweep only
    seen = {*points[0].fixed_languages, *points[0].added_languages}
    assert seen == {"en", "de", "zh"} and set(study.languages) - seen == {"fr", "ar"}


def test_the_paper_config_is_the_full_reference_grid():
    study = load_study(Path(__file__).parent.parent / "configs" / "paper.yaml")
    assert len(study.models) == 9
    assert sorted(study.task_specs) == ["arc_challenge", "global_mmlu", "hellaswag", "truthfulqa"]
    assert sorted(study.languages) == sorted("ar bn de en es fr hi id it pt zh".split())
    assert study.seeds == [17, 42, 101]
    assert len(study.cells) == 44
    assert study.executor.kind == "ray" and study.executor.num_gpus >= 1
    settings = study.training
    assert (settings.lora_r, settings.lora_alpha, settings.epochs, settings.batch_size) == (
        32,
        64,
        3,
        8,
    )
    assert settings.learning_rate == 5e-5


def test_the_demo_config_has_a_non_latin_language_one_seed_and_100_items_per_cell():
    study = load_study(Path(__file__).parent.parent / "configs" / "demo.yaml")
    assert [m.ref for m in study.models] == ["gemma-3-270m"]
    assert len(study.task_specs) >= 2 and len(study.languages) >= 2
    assert {"zh", "ar", "hi", "bn"} & set(study.languages)
    assert len(study.seeds) == 1
    assert study.evaluation.items_per_target >= 100  # one item is at most 1 pp
    # trained in the format it is scored in (docs/diagnosis.md)
    assert {spec.train_format for spec in study.task_specs.values()} == {"continuation"}


def test_config_show_prints_a_resolved_config_that_loads_back_the_same(
    tmp_path, monkeypatch, capsys
):
    path = _write(tmp_path)
    code, out, _ = _cli(monkeypatch, capsys, "config", "show", str(path), "--set", "seeds=[1,2]")
    assert code == 0
    shown = yaml.safe_load(out)
    assert shown["seeds"] == [1, 2]
    assert shown["training"]["lora_r"] == 32  # defaults filled in
    assert shown["evaluation"]["batch_size"] == 16
    assert shown["sources"] == "all"
    again = tmp_path / "again.yaml"
    again.write_text(out, encoding="utf-8")
    assert load_study(again).model_dump() == load_study(path, ["seeds=[1,2]"]).model_dump()
    assert not (tmp_path / "out").exists()


def test_overrides_reach_nested_keys_with_their_types(tmp_path):
    study = load_study(
        _write(tmp_path),
        [
            "seeds=[1,2]",
            "training.learning_rate=5e-5",
            "training.target_modules=[q_proj,v_proj]",
            "evaluation.items_per_target=7",
            "evaluation.dtype=bfloat16",
            "executor.kind=ray",
            "executor.num_cpus=2",
            "train_data.items_per_source=50",
            "sources=[country_continent:en]",
        ],
    )
    assert study.seeds == [1, 2]
    assert study.training.learning_rate == 5e-5
    assert study.training.target_modules == ("q_proj", "v_proj")
    assert study.evaluation.items_per_target == 7 and study.evaluation.dtype == "bfloat16"
    assert study.executor.kind == "ray" and study.executor.num_cpus == 2.0
    assert study.train_data.items_per_source == 50
    assert [str(s) for s in study.source_list] == ["country_continent:en"]


def test_models_may_be_given_by_reference_or_with_a_name(tmp_path):
    study = load_study(
        _write(tmp_path, models=["gemma-3-270m", {"ref": "org/Some-7B", "name": "x"}])
    )
    assert [m.display_name for m in study.models] == ["gemma-3-270m", "x"]


def test_task_groups_name_tasks_of_the_study(tmp_path):
    study = load_study(_write(tmp_path, task_groups={"curated": ["country_currency"]}))
    assert study.task_groups == {"curated": ["country_currency"]}
    assert load_study(_write(tmp_path)).task_groups == {}
    overridden = load_study(_write(tmp_path), ["task_groups.facts=[country_continent]"])
    assert overridden.task_groups == {"facts": ["country_continent"]}


MALFORMED = [
    ({"seed": [1]}, "unknown key 'seed' (did you mean 'seeds'?)"),
    ({"evaluation": {"batch_sise": 4}}, "unknown key 'evaluation.batch_sise' (did you mean"),
    ({"training": {"epoch": 2}}, "unknown key 'training.epoch' (did you mean 'epochs'?)"),
    ({"seeds": ["one"]}, "seeds.0"),
    ({"evaluation": {"batch_size": -1}}, "evaluation.batch_size"),
    ({"executor": {"kind": "slurm"}}, "executor.kind"),
    ({"tasks": ["country_continant"]}, "did you mean 'country_continent'"),
    ({"languages": ["en", "dee"]}, "no language 'dee' (did you mean 'de'?)"),
    ({"models": ["gemma-3-270"]}, "did you mean 'gemma-3-270m'"),
    ({"languages": []}, "languages"),
    ({"tasks": []}, "tasks"),
    ({"models": None}, "missing required key 'models'"),
    ({"sources": ["country_continent:fr"]}, "not a cell of the grid"),
    ({"sources": ["country_continent"]}, "sources:"),
    ({"sources": []}, "sources: the list is empty"),
    ({"sources": [{"country_continent:en": 0.5, "country_currency:en": 0.5}]}, "mixture"),
    ({"languages": ["en", "en"]}, "listed twice"),
    ({"sources": [{"parts": {"country_continent:fr": 10}}]}, "part 'country_continent:fr' is not"),
    ({"sources": [{"parts": {"country_continent:en": 5000}}]}, "its training pool holds"),
    (
        {"sources": [{"parts": {"country_continent:en": 0}, "total": 9}]},
        "sum to something positive",
    ),
    ({"sources": [{"parts": {}}]}, "the mixture has no parts"),
    ({"sources": [{"parts": {"country_continent:en": 0}}]}, "the mixture is empty"),
    ({"sources": [{"parts": {"country_continent:en": 2.5}}]}, "whole number"),
    (
        {
            "mixtures": [
                {
                    "name": "k",
                    "fixed": {"country_continent:en": 8},
                    "add": {"languages": ["de"], "per_language": [0, -4]},
                }
            ]
        },
        "per_language has a negative value -4",
    ),
    (
        {
            "mixtures": [
                {
                    "name": "k",
                    "fixed": {"country_continent:en": 8},
                    "add": {"languages": ["de"], "per_language": [5000]},
                }
            ]
        },
        "asks for 5000 items but its training pool holds",
    ),  # fmt: skip
    ({"training": {"lora_r": [8, -1]}}, "training (lora_r=-1)"),
    ({"training": {"learning_rate": [1e-4, 3e-4]}}, "only method and lora_r can take a list"),
    ({"train_data": {"items_per_source": 3}}, "below training.min_train_items"),
    ({"evaluation": {"device": "cuda:0"}, "executor": {"kind": "local"}}, "cuda"),
    (
        {"task_groups": {"g": ["country_continant"]}},
        "task_groups: task group 'g': no task 'country_continant' (did you mean",
    ),
    ({"task_groups": {"g": "country_continent"}}, "task_groups.g"),
    ({"task_groups": {"all": ["country_continent"]}}, "'all' cannot name a task group"),
]


@pytest.mark.parametrize(("changes", "message"), MALFORMED, ids=[m for _, m in MALFORMED])
def test_a_malformed_config_is_one_line_exit_2_and_nothing_written(
    tmp_path, monkeypatch, capsys, changes, message
):
    path = _write(tmp_path, **changes)
    code, out, err = _cli(monkeypatch, capsys, "run", str(path))
    assert code == 2
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {path}") and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_a_bad_override_names_the_override(tmp_path, monkeypatch, capsys):
    path = _write(tmp_path)
    code, _, err = _cli(monkeypatch, capsys, "run", str(path), "--set", "evaluation.batchsize=3")
    assert code == 2 and err.count("\n") == 1
    assert "--set evaluation.batchsize" in err and "did you mean 'batch_size'" in err
    code, _, err = _cli(monkeypatch, capsys, "run", str(path), "--set", "seeds")
    assert code == 2 and "key.path=value" in err
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_directory_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, capsys
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = _write(tmp_path, out_dir=str(blocker / "out"))
    code, _, err = _cli(monkeypatch, capsys, "run", str(path))
    assert code == 2 and err.count("\n") == 1 and "output directory" in err
    code, _, err = _cli(monkeypatch, capsys, "run", str(path), "--out", str(blocker))
    assert code == 2 and "not a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "study.yaml"]


def test_broken_yaml_and_missing_files_are_user_errors(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nmodels: [a\n")
    with pytest.raises(UserError, match="not valid YAML at line"):
        load_study(broken)
    with pytest.raises(UserError, match="no such study file"):
        load_study(tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="mapping"):
        load_study(listing)


def test_a_task_file_is_found_relative_to_the_study(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from study_tiny import write_task

    write_task(tmp_path / "tasks", "alpha", ["en", "de"], 0)
    elsewhere = tmp_path / "studies"
    elsewhere.mkdir()
    path = _write(elsewhere, tasks=["../tasks/alpha.yaml"], languages=["en", "de"])
    study = load_study(path)
    assert list(study.task_refs) == ["alpha"]
    assert Path(study.task_refs["alpha"]).is_absolute()
    assert isinstance(study, Study)


def test_a_generative_task_reads_in_a_study(tmp_path):
    data = tmp_path / "gen.jsonl"
    data.write_text('{"q": "2+3?", "a": "5"}\n', encoding="utf-8")
    task = {
        "task": "gen_de", "dataset_path": "json", "output_type": "generate_until",
        "dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test",
        "doc_to_text": "{{q}}", "doc_to_target": "a", "generation_kwargs": {"until": ["\n"]},
    }  # fmt: skip
    (tmp_path / "gen_de.yaml").write_text(yaml.safe_dump(task), encoding="utf-8")
    path = _write(tmp_path, tasks=[str(tmp_path / "gen_de.yaml")], languages=["de"])
    spec = load_study(path).task_specs["gen"]
    assert (spec.output_type, spec.metric, spec.primary_metric) == ("generate",) + (
        "exact_match",
    ) * 2


def test_task_code_in_a_study_needs_trust_task_code(tmp_path, monkeypatch, capsys):
    from test_tasks_fewshot import _with_code

    task = _with_code(tmp_path / "coded")
    path = _write(tmp_path, tasks=[str(task)], languages=["und"])
    code, _, stderr = _cli(monkeypatch, capsys, "config", "show", str(path))
    assert code == 2 and stderr.count("\n") == 1
    assert stderr.startswith(f"error: {path}: tasks:") and "trust_task_code: true" in stderr
    study = load_study(path, ["trust_task_code=true"])
    assert (
        study.trust_task_code
        and "Was ist 5 + 5?" in study.task_specs["coded"].items("und")[0].context
    )
    _write(tmp_path, tasks=[str(task)], languages=["und"], trust_task_code=True)
    assert load_study(path).trust_task_code
