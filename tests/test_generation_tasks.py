"""lm-eval generate_until task files read as they are: an MGSM-shaped pair (a common YAML and a
per-language file), filters, exact match, and `transferlab evaluate` giving lm-eval's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import lm_eval
import pandas as pd
import pytest
import yaml

from test_scoring import make_lora
from transferlab.errors import UserError
from transferlab.scoring import evaluate_command
from transferlab.tasks import get_task, render_task

COMMON = {
    "dataset_path": "json",
    "dataset_kwargs": {"data_files": {"test": "mgsm_de.jsonl"}},
    "test_split": "test",
    "output_type": "generate_until",
    "doc_to_target": "{{answer_number|string}}",
    "target_delimiter": "",
    "generation_kwargs": {
        "until": ["Question:", "</s>", "<|im_end|>"],
        "do_sample": False,
        "temperature": 0.0,
        "max_gen_toks": 10,
    },  # fmt: skip
    "filter_list": [
        {
            "name": "remove_whitespace",
            "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}],
        },
        {
            "name": "flexible-extract",
            "filter": [
                {
                    "function": "regex",
                    "group_select": -1,
                    "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)",
                },
                {"function": "take_first"},
            ],
        },
    ],  # fmt: skip
    "metric_list": [
        {
            "metric": "exact_match",
            "aggregation": "mean",
            "higher_is_better": True,
            "ignore_case": True,
            "ignore_punctuation": True,
        }
    ],  # fmt: skip
}
GERMAN = {
    "include": "mgsm_common_yaml",
    "task": "mgsm_direct_de",
    "doc_to_text": '{% if answer is not none %}{{question+"\\nSchritt-für-Schritt-Antwort:"}}'
    '{% else %}{{"Frage: "+question+"\\nAntwort:"}}{% endif %}',
    # replaces the included generation_kwargs whole, as lm-eval's include does
    "generation_kwargs": {
        "until": ["Frage:", "</s>", "<|im_end|>"],
        "do_sample": False,
        "temperature": 0.0,
        "max_gen_toks": 10,
    },  # fmt: skip
}
ROWS = [
    ("Roger hat 5 Tennisbälle. Er kauft 2 Dosen mit je 3 Bällen. Wie viele hat er jetzt?", 11),
    ("Eine Bäckerei backt 24 Brote und verkauft 17. Wie viele bleiben übrig?", 7),
    ("Lena liest 12 Seiten am Tag. Wie viele Seiten liest sie in 5 Tagen?", 60),
    ("Ein Zug fährt 3 Stunden mit 80 km/h. Wie weit fährt er?", 240),
    ("Tom hat 1.000 Euro und gibt 250 aus. Wie viel hat er noch?", 750),
]


@pytest.fixture
def mgsm_de(tmp_path) -> Path:
    rows = [{"question": q, "answer": None, "answer_number": n} for q, n in ROWS]
    (tmp_path / "mgsm_de.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    # absolute: lm-eval hands data_files to `datasets`, which resolves them from the cwd
    common = COMMON | {"dataset_kwargs": {"data_files": {"test": str(tmp_path / "mgsm_de.jsonl")}}}
    (tmp_path / "mgsm_common_yaml").write_text(yaml.safe_dump(common, allow_unicode=True))
    path = tmp_path / "mgsm_direct_de.yaml"
    path.write_text(yaml.safe_dump(GERMAN, allow_unicode=True), encoding="utf-8")
    return path


def test_the_mgsm_pair_reads_with_the_language_files_stops_and_both_pipelines(mgsm_de):
    spec = get_task(str(mgsm_de))
    assert (spec.name, spec.languages, spec.output_type) == ("mgsm_direct", ("de",), "generate")
    assert spec.generation.until == ("Frage:", "</s>", "<|im_end|>")
    assert [p.name for p in spec.generation.pipelines] == ["remove_whitespace", "flexible-extract"]
    assert spec.metric == "exact_match@remove_whitespace"
    item = spec.items("de")[1]
    assert item.context == f"Frage: {ROWS[1][0]}\nAntwort:" and item.references == ("7",)
    flexible = spec.generation.pipelines[1]
    assert flexible.apply(" Also 1.000 und dann 42 ") == "42"  # the last match (group_select -1)
    assert flexible.apply("keine Zahl") == "[invalid]"
    assert flexible.apply("x 7 y") == "7"  # a single digit matches the second group
    shown = render_task(str(mgsm_de), n_items=1)
    assert "until=['Frage:', '</s>', '<|im_end|>']" in shown and "references ['11']" in shown


def _lm_eval(folder: Path, model_dir: Path, adapter: Path | None) -> dict[str, list[dict]]:
    from lm_eval.tasks import TaskManager

    args = f"pretrained={model_dir},dtype=float32" + (f",peft={adapter}" if adapter else "")
    out = lm_eval.simple_evaluate(model="hf", model_args=args, tasks=["mgsm_direct_de"],
                                  task_manager=TaskManager(include_path=str(folder)),
                                  log_samples=True, batch_size=1, device="cpu")  # fmt: skip
    by_filter: dict[str, list[dict]] = {}
    for sample in out["samples"]["mgsm_direct_de"]:
        by_filter.setdefault(sample["filter"], []).append(sample)
    return {name: sorted(s, key=lambda x: x["doc_id"]) for name, s in by_filter.items()}


def test_evaluate_gives_lm_evals_generations_extractions_and_exact_match(
    mgsm_de, tiny_gemma_dir, tmp_path
):
    adapter = make_lora(tiny_gemma_dir, tmp_path / "lora", seed=11)
    out = tmp_path / "out"
    scores = evaluate_command(str(tiny_gemma_dir), [adapter], [str(mgsm_de)], out,
                              dtype="float32", batch_size=3, progress=False)  # fmt: skip
    lines = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    for state, adapter_dir in (("base", None), ("lora", adapter)):
        theirs = _lm_eval(mgsm_de.parent, tiny_gemma_dir, adapter_dir)
        ours = sorted(
            (x for x in lines if x["model_state"] == state), key=lambda x: int(x["doc_id"])
        )
        assert len(ours) == len(ROWS)
        for pipeline, samples in theirs.items():
            for line, sample in zip(ours, samples, strict=True):
                assert line["generation"] == sample["resps"][0][0]
                assert line["extracted"][pipeline] == sample["filtered_resps"][0]
                assert line[f"exact_match@{pipeline}"] == sample["exact_match"]
    table = pd.read_csv(out / "scores.csv")
    assert list(table.columns[:4]) == ["model_state", "task", "language", "n"]
    assert set(table.columns) >= {"exact_match@remove_whitespace", "exact_match@flexible-extract"}
    assert list(scores["n"]) == [len(ROWS)] * 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"filter_list": [{"name": "x", "filter": [{"function": "regexx"}]}]}, "unknown filter 'regexx'"),
        ({"filter_list": [{"name": "x", "filter": [{"function": "regex", "regex_pattern": "(["}]}]},
         "regex_pattern does not compile"),
        ({"generation_kwargs": {"until": ["Frage:", ""]}}, "an empty or non-text stop string"),
        ({"generation_kwargs": {"until": ["a"], "max_gen_toks": 0}}, "max_gen_toks: 0 must be positive"),
        ({"generation_kwargs": {"until": ["a"], "do_sample": True}}, "sampling is not supported"),
        ({"metric_list": [{"metric": "exact_mach"}]}, "unknown metric 'exact_mach'"),
        ({"metric_list": [{"metric": "exact_match", "ignore_cas": True}]}, "no option 'ignore_cas'"),
    ],
)  # fmt: skip
def test_bad_generative_task_files_are_one_clear_error(mgsm_de, change, message):
    doc = yaml.safe_load(mgsm_de.read_text()) | change
    mgsm_de.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(UserError) as caught:
        get_task(str(mgsm_de))
    assert message in str(caught.value) and str(mgsm_de) in str(caught.value)
