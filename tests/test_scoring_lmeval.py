"""The scorer gives lm-evaluation-harness's numbers: same choices for acc and acc_norm, same
log-likelihoods (1e-3, fp32), with and without a PEFT adapter, letters and cloze formats,
non-Latin multi-token choices, a tokenizer that adds BOS and one that does not."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from test_scoring import make_lora
from transferlab.grid import Cell
from transferlab.models import load_model
from transferlab.scoring import ModelState, evaluate_command, score
from transferlab.tasks.types import MCItem

lm_eval = pytest.importorskip("lm_eval")

QUESTIONS = [
    {"question": "फ्रांस किस महाद्वीप में है?", "choices": ["यूरोप", "एशिया", "अफ्रीका", "ओशिनिया"]},
    {"question": "法国位于哪个大洲？", "choices": ["欧洲", "亚洲", "非洲", "大洋洲"]},
    {"question": "في أي قارة تقع فرنسا؟", "choices": ["أوروبا", "آسيا", "أفريقيا", "أوقيانوسيا"]},
    # Scripts with 1 to 3 UTF-8 bytes per character: normalising by characters and by bytes
    # pick different choices here, so a byte-length acc_norm would fail the comparison.
    {"question": "ফ্রান্স কোন মহাদেশে অবস্থিত?", "choices": ["欧洲", "यूरोप", "ইউরোপ", "أوروبا"]},
    {"question": "Auf welchem Kontinent liegt Frankreich?", "choices": ["欧洲", "यूरोप", "ইউরোপ", "Afrika"]},
    {"question": "Где находится Франция?", "choices": ["欧洲", "ইউরোপ", "آسيا", "अफ्रीका"]},
    {"question": "¿En qué continente está Francia?", "choices": ["欧洲", "أوروبا", "एशिया", "अफ्रीका"]},
]  # fmt: skip
# Every question once per gold answer: lm-eval's per-item acc and acc_norm over the four copies
# then reveal which choice it picked, so equal metrics mean equal choices.
ROWS = [{**q, "answer": gold} for q in QUESTIONS for gold in range(4)]

# task name -> (lm-eval YAML fields, how transferlab renders the same item)
TASKS = {
    "tl_letters": (
        {
            "doc_to_text": "प्रश्न: {{question}}\nA) {{choices[0]}}\nB) {{choices[1]}}\n"
            "C) {{choices[2]}}\nD) {{choices[3]}}\nउत्तर:",
            "doc_to_choice": ["A", "B", "C", "D"],
        },
        lambda r: MCItem(
            "",
            f"प्रश्न: {r['question']}\nA) {r['choices'][0]}\nB) {r['choices'][1]}\n"
            f"C) {r['choices'][2]}\nD) {r['choices'][3]}\nउत्तर:",
            ("A", "B", "C", "D"),
            r["answer"],
        ),
    ),
    "tl_cloze": (
        {"doc_to_text": "प्रश्न: {{question}}\nउत्तर:", "doc_to_choice": "{{choices}}"},
        lambda r: MCItem("", f"प्रश्न: {r['question']}\nउत्तर:", tuple(r["choices"]), r["answer"]),
    ),
    # Trailing space in the context and no delimiter: lm-eval moves the space to the choice.
    "tl_cloze_space": (
        {
            "doc_to_text": "问题：{{question}}\n答案： ",
            "doc_to_choice": "{{choices}}",
            "target_delimiter": "",
        },
        lambda r: MCItem(
            "", f"问题：{r['question']}\n答案： ", tuple(r["choices"]), r["answer"], ""
        ),
    ),
}


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    import yaml

    folder = tmp_path_factory.mktemp("lm-eval-tasks")
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), "utf-8")
    for name, (fields, _render) in TASKS.items():
        spec = {
            "task": name,
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(data)}},
            "test_split": "test",
            "output_type": "multiple_choice",
            "doc_to_target": "answer",
            "metric_list": [
                {"metric": m, "aggregation": "mean", "higher_is_better": True}
                for m in ("acc", "acc_norm")
            ],
            **fields,
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    return folder


@pytest.fixture(scope="module")
def task_manager(task_dir):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(task_dir))


@pytest.fixture(scope="module")
def bos_gemma_dir(tiny_gemma_dir, tmp_path_factory) -> Path:
    """The tiny Gemma-3 model with a tokenizer that prepends BOS, as Gemma's own does."""
    from tokenizers import Tokenizer, processors
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-gemma-bos")
    for file in tiny_gemma_dir.iterdir():
        shutil.copy(file, folder / file.name)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    bos = tokenizer.token_to_id("<bos>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", bos)]
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    assert AutoTokenizer.from_pretrained(folder).encode("यूरोप")[0] == bos
    return folder


def run_lm_eval(task_manager, model_dir: Path, adapter: Path | None) -> tuple[dict, dict]:
    args = f"pretrained={model_dir},dtype=float32" + (f",peft={adapter}" if adapter else "")
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=args,
        tasks=list(TASKS),
        task_manager=task_manager,
        log_samples=True,
        batch_size=4,
        device="cpu",
    )
    samples = {name: sorted(out["samples"][name], key=lambda s: s["doc_id"]) for name in TASKS}
    return samples, out["results"]


@pytest.mark.parametrize("model", ["tiny_model_dir", "bos_gemma_dir"])
def test_same_numbers_as_lm_eval_with_and_without_adapter(request, model, task_manager, tmp_path):
    model_dir = request.getfixturevalue(model)
    adapter = make_lora(model_dir, tmp_path / "lora", seed=5)
    targets = {
        Cell(name, "xx"): [replace(render(r), doc_id=str(i)) for i, r in enumerate(ROWS)]
        for name, (_f, render) in TASKS.items()
    }
    loaded = load_model(str(model_dir))
    ours = score(
        loaded, [ModelState("base"), ModelState("lora", adapter)], targets, 4, progress=False
    )
    for state, adapter_dir in (("base", None), ("lora", adapter)):
        theirs, _aggregates = run_lm_eval(task_manager, model_dir, adapter_dir)
        for name in TASKS:
            mine = [r for r in ours if r.model_state == state and r.task == name]
            assert len(mine) == len(theirs[name]) == len(ROWS)
            for result, sample in zip(mine, theirs[name], strict=True):
                expected = [float(ll) for ll, _greedy in sample["filtered_resps"]]
                assert result.loglikelihoods == pytest.approx(expected, abs=1e-3), (name, state)
                assert (result.metrics["acc"], result.metrics["acc_norm"]) == (
                    sample["acc"],
                    sample["acc_norm"],
                )
    assert _byte_and_char_norm_disagree(theirs["tl_cloze"])
    base = [ll for r in ours if r.model_state == "base" for ll in r.loglikelihoods]
    tuned = [ll for r in ours if r.model_state == "lora" for ll in r.loglikelihoods]
    assert base != pytest.approx(tuned, abs=1e-2)  # the adapter case is not the base case again


def test_evaluate_on_lm_eval_yamls_gives_lm_eval_numbers(
    tiny_model_dir, task_dir, task_manager, tmp_path
):
    """`transferlab evaluate --task their.yaml` reads lm-eval's own task files: same numbers."""
    refs = [str(task_dir / f"{name}.yaml") for name in TASKS]
    scores = evaluate_command(
        str(tiny_model_dir), [], refs, tmp_path / "out", dtype="float32", progress=False
    )
    rows = [json.loads(line) for line in (tmp_path / "out" / "items.jsonl").open(encoding="utf-8")]
    theirs, aggregates = run_lm_eval(task_manager, tiny_model_dir, None)
    for name in TASKS:
        mine = sorted((r for r in rows if r["task"] == name), key=lambda r: int(r["doc_id"]))
        assert len(mine) == len(theirs[name]) == len(ROWS)
        for row, sample in zip(mine, theirs[name], strict=True):
            expected = [float(ll) for ll, _greedy in sample["filtered_resps"]]
            assert row["loglikelihoods"] == pytest.approx(expected, abs=1e-3)
            assert (row["acc"], row["acc_norm"]) == (sample["acc"], sample["acc_norm"])
        score = scores[scores["task"] == name].iloc[0]
        assert score["acc"] == pytest.approx(aggregates[name]["acc,none"])
        assert score["acc_norm"] == pytest.approx(aggregates[name]["acc_norm,none"])


def _byte_and_char_norm_disagree(samples: list[dict]) -> bool:
    """Return whether some item's pick differs between per-character and per-byte normalisation."""
    import numpy as np

    for sample in samples:
        lls = np.array([ll for ll, _greedy in sample["filtered_resps"]])
        choices = sample["doc"]["choices"]
        per_char = np.argmax(lls / [len(c) for c in choices])
        per_byte = np.argmax(lls / [len(c.encode()) for c in choices])
        if per_char != per_byte:
            return True
    return False
