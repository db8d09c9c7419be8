"""A tiny study for the runner tests: two local tasks × two languages on a tiny random model."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

WORDS = {
    "en": ["Europe", "Asia", "Africa", "Oceania", "seven", "twelve", "France", "river"],
    "de": ["Europa", "Asien", "Afrika", "Ozeanien", "sieben", "zwölf", "Frankreich", "Fluss"],
    "zh": ["欧洲", "亚洲", "非洲", "大洋洲", "七", "十二", "法国", "河流"],
}
QUESTION = {"en": "Question {i}: which one?", "de": "Frage {i}: welches?", "zh": "问题{i}：哪个？"}


def write_task(folder: Path, name: str, languages: list[str], shift: int) -> Path:
    """Write a task YAML with parallel JSONL data (12 train-pool items, 6 test items)."""
    folder.mkdir(parents=True, exist_ok=True)
    for language in languages:
        words = WORDS[language]
        rows = []
        for i in range(18):
            choices = [words[(i + shift + k) % len(words)] for k in range(4)]
            rows.append(
                {
                    "id": f"{name}-{i}",
                    "split": "test" if i < 6 else "train",
                    "question": QUESTION[language].format(i=i),
                    "choices": choices,
                    "gold": (i + shift) % 4,
                }
            )
        lines = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
        (folder / f"{name}.{language}.jsonl").write_text(lines + "\n", encoding="utf-8")
    task = {
        "name": name,
        "languages": languages,
        "data": {"files": f"{name}.{{language}}.jsonl", "split_column": "split"},
        "splits": {"test": "test", "train": "train"},
        "fields": {"id": "id", "question": "question", "choices": "choices", "gold": "gold"},
        "eval": {"format": "cloze" if shift % 2 == 0 else "letters"},
        "train": {"format": "letters"},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(task, allow_unicode=True), encoding="utf-8")
    return path


def write_study(
    folder: Path,
    model_dir: Path,
    languages: tuple[str, ...] = ("en", "de"),
    tasks: tuple[str, ...] = ("alpha", "beta"),
    seeds: tuple[int, ...] = (1,),
    **extra,
) -> Path:
    """Write the tiny study YAML (tasks beside it) and return its path."""
    all_languages = ["en", "de", "zh"]
    for shift, name in enumerate(("alpha", "beta", "gamma")):
        write_task(folder / "tasks", name, all_languages, shift)
    study = {
        "name": "tiny",
        "models": [{"ref": str(model_dir), "name": "tiny"}],
        "tasks": [f"tasks/{name}.yaml" for name in tasks],
        "languages": list(languages),
        "seeds": list(seeds),
        "training": {
            "lora_r": 4,
            "lora_alpha": 8,
            "epochs": 1,
            "batch_size": 4,
            "learning_rate": 1e-3,
            "dtype": "float32",
            "min_train_items": 4,
            "max_length": 128,
        },
        # fp32 pinned: tests compare stored numbers with scoring in fp32 (auto is bf16 on some CPUs)
        "evaluation": {"batch_size": 8, "dtype": "float32"},
        # One thread: tiny matrices gain nothing from more, and a loaded machine makes
        # several spinning threads per job crawl.
        "executor": {"threads": 1},
        "out_dir": str(folder / "out"),
        **extra,
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
