"""A study mixing a multiple-choice and a generative task: trained, scored, exported, resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from study_tiny import write_study
from transferlab.runner import run_study
from transferlab.scoring import evaluate_command
from transferlab.store import Store

ANSWERS = {
    "en": ["Europe", "Asia", "Africa", "Oceania", "France", "twelve"],
    "de": ["Europa", "Asien", "Afrika", "Ozeanien", "Frankreich", "zwölf"],
}
PROMPT = {"en": "Question: say {{question}}\nAnswer:", "de": "Frage: sag {{question}}\nAntwort:"}


def write_echo_task(folder: Path) -> Path:
    """Write a generative task (repeat a word) with 6 test and 12 training items per language."""
    folder.mkdir(parents=True, exist_ok=True)
    for language, words in ANSWERS.items():
        rows = [
            {"id": f"w{i}", "split": "test" if i < 6 else "train", "word": words[i % 6]}
            for i in range(18)
        ]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (folder / f"echo.{language}.jsonl").write_text(text, encoding="utf-8")
    task = {
        "name": "echo",
        "output_type": "generate",
        "languages": list(ANSWERS),
        "data": {"files": "echo.{language}.jsonl", "split_column": "split"},
        "fields": {"id": "id", "question": "word", "answer": "word"},
        "generate": {
            "until": ["\n"],
            "max_new_tokens": 6,
            "filter_list": [{"name": "strip", "filter": [{"function": "remove_whitespace"}]}],
            "metric_list": [{"metric": "exact_match"}, {"metric": "rouge_l"}, {"metric": "chrf"}],
            "headline": "rouge_l",
        },
        "prompt": {"generate": PROMPT},
    }
    path = folder / "echo.yaml"
    path.write_text(yaml.safe_dump(task, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def mixed_study(tmp_path, tiny_model_dir) -> Path:
    write_echo_task(tmp_path / "tasks")
    # a learning rate high enough that the echo adapter's greedy outputs differ from the base's
    training = {"lora_r": 8, "lora_alpha": 16, "epochs": 3, "batch_size": 4, "learning_rate": 1e-2,
                "dtype": "float32", "min_train_items": 4, "max_length": 128}  # fmt: skip
    return write_study(tmp_path, tiny_model_dir, tasks=("alpha", "echo"),
                       sources=["echo:en", "alpha:de"], training=training)  # fmt: skip


def _starts(out: Path) -> int:
    store = Store(out)
    try:
        return sum(event == "start" for _, event, _, _ in store.events())
    finally:
        store.close()


def test_a_mixed_study_scores_generative_cells_as_evaluate_does_and_resumes(
    mixed_study, tiny_model_dir
):
    out = mixed_study.parent / "out"
    outcome = run_study(mixed_study, progress=False)
    assert outcome.failed == 0 and "MT-ML" in outcome.summary
    assert (out / "report.html").is_file()

    per_seed = pd.read_csv(out / "results_per_seed.csv", keep_default_na=False)
    assert len(per_seed) == 2 * 4  # two sources on every target cell
    echo = per_seed[per_seed["eval_dataset"] == "echo"]
    assert set(echo["headline_metric"]) == {"rouge_l"}
    assert (echo["score"] == echo["score_norm"]).all()  # a generative task's headline is both
    assert set(per_seed.loc[per_seed["eval_dataset"] == "alpha", "headline_metric"]) == {"acc_norm"}

    store = Store(out)
    try:
        scores = store.scores()
        adapters = store.adapters()
    finally:
        store.close()
    generative = [s for s in scores.values() if s.task == "echo"]
    assert generative and all(
        set(s.metrics) == {"exact_match", "rouge_l", "chrf"} for s in generative
    )

    # `transferlab evaluate` with the committed adapter on the same items gives the same numbers
    (folder,) = [p for p, _, meta in adapters.values() if meta["provenance"]["source"] == "echo:en"]
    scored = evaluate_command(str(tiny_model_dir), [folder], [str(mixed_study.parent / "tasks/echo.yaml")],
                              mixed_study.parent / "eval", dtype="float32", batch_size=8,
                              progress=False)  # fmt: skip
    scored = scored.set_index(["model_state", "language"])
    from_echo = echo[echo["fine_tuned_dataset"] == "echo"].set_index("eval_language")
    for language in ("en", "de"):
        assert (
            from_echo.loc[language, "score_norm"] == scored.loc[(folder.name, language), "rouge_l"]
        )
        assert (
            from_echo.loc[language, "score_norm_base"] == scored.loc[("base", language), "rouge_l"]
        )
    stored = {(s.state, s.language): s.metrics for s in generative}
    tuned = next(k for k in adapters if adapters[k][0] == folder)
    for metric in ("exact_match", "chrf"):
        assert stored[(tuned, "de")][metric] == scored.loc[(folder.name, "de"), metric]
    # ... because the generations are the same texts
    lines = [
        json.loads(x) for x in (mixed_study.parent / "eval/items.jsonl").open(encoding="utf-8")
    ]
    texts = {(x["model_state"], x["language"]): [] for x in lines}
    for x in lines:
        texts[(x["model_state"], x["language"])].append(x["generation"])
    unit = {(s.state, s.language): k for k, s in scores.items() if s.task == "echo"}
    store = Store(out)
    try:
        for state, name in ((tuned, folder.name), ("base", "base")):
            ((_, kept),) = store.items([unit[(state, "en")]])
            assert kept["generation"] == texts[(name, "en")]
    finally:
        store.close()
    assert texts[(folder.name, "en")] != texts[("base", "en")]  # the adapter changed the outputs

    items = pd.read_csv(out / "items.csv.gz", keep_default_na=False)
    echo_items = items[items["eval_dataset"] == "echo"]
    assert len(echo_items) == 2 * 6 * 3  # base and both adapters on both echo cells
    assert echo_items["correct_norm"].between(0, 1).all()

    # a second run finds everything done and starts nothing
    started = _starts(out)
    again = run_study(mixed_study, progress=False)
    assert again.failed == 0 and _starts(out) == started


def test_a_generative_training_example_teaches_the_answer_and_the_stop(mixed_study):
    from transferlab.tasks import get_task

    spec = get_task(str(mixed_study.parent / "tasks/echo.yaml"))
    example = spec.train_examples("de", "train")[0]
    item = spec.items("de", "train")[0]
    assert (example.prompt, example.loss_on) == (item.context, "target")
    assert example.target == " " + item.references[0] + "\n"  # delimiter, answer, first stop


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"eval": {"format": "letters"}}, "eval.format: a generative task has no answer format"),
        ({"generate": {"headline": "bleu"}}, "generate.headline: 'bleu' is not one of"),
        ({"generate": {"max_new_tokens": 0}}, "generate.max_new_tokens: 0 must be positive"),
        ({"generate": {"until": [""]}}, "generate.until: an empty or non-text stop string"),
        ({"generate": {"metric_list": [{"metric": "acc"}]}}, "acc is a multiple-choice metric"),
        ({"generate": {"metric_list": [{"metric": "rouge"}]}}, "unknown metric 'rouge'"),
        ({"fields": {"id": "id", "question": "word", "answer": "gone"}}, "column 'gone' is not"),
    ],
)
def test_bad_generative_task_files_are_one_clear_error(tmp_path, change, message):
    from transferlab.errors import UserError
    from transferlab.tasks import get_task

    path = write_echo_task(tmp_path)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in change.items():
        doc[key] = doc.get(key, {}) | value if key == "generate" else value
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(UserError, match=message) as caught:
        get_task(str(path))
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)
