"""`transferlab align`: BLI between every ordered language pair, per layer, for base + adapters."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transferlab.alignment.dictionaries import (
    BilingualDictionary,
    bundled_concepts,
    read_dictionary,
)
from transferlab.alignment.evaluate import (
    METHODS,
    Space,
    check_choices,
    induce_spaces,
    prepare_space,
)
from transferlab.alignment.mapping import NORMALIZATIONS
from transferlab.alignment.representations import Pooling, entry_representations
from transferlab.alignment.retrieval import RETRIEVALS
from transferlab.alignment.summary import layer_figure, mtcl_pair_transfer, pair_figure, summarize
from transferlab.alignment.table import ALIGNMENT_FILE, COLUMNS
from transferlab.analysis.distance import typological_distances
from transferlab.errors import UserError
from transferlab.versions import library_versions

PROVENANCE_FILE = "alignment.json"


def parse_languages(text: str) -> list[str]:
    """Return the languages of ``--languages en,de,zh`` (at least two, each once)."""
    languages = [part.strip() for part in text.split(",") if part.strip()]
    if len(languages) < 2 or len(set(languages)) != len(languages):
        raise UserError("--languages", f"{text!r} must name two or more distinct languages",
                        "write e.g. --languages en,de,zh")  # fmt: skip
    return languages


def _dictionaries(
    languages: list[str], train_dict: Path | None, test_dict: Path | None, one_way: bool
) -> list[BilingualDictionary]:
    if (train_dict is None) != (test_dict is None):
        raise UserError("--train-dict/--test-dict", "only one of the two was given", "give both")
    if train_dict is not None:
        if len(languages) != 2:
            raise UserError("--languages", "a dictionary file pair is one language pair",
                            "give exactly two languages: source,target")  # fmt: skip
        return [read_dictionary(train_dict, test_dict, languages[0], languages[1])]
    table = bundled_concepts()
    pairs = itertools.combinations if one_way else itertools.permutations
    return [table.pair(s, t) for s, t in pairs(languages, 2)]


def _layers(requested: Sequence[int] | None, n_layers: int) -> list[int]:
    if requested is None:
        return list(range(n_layers))
    for layer in requested:
        if not 0 <= layer < n_layers:
            raise UserError("--layer", f"layer {layer} is out of range",
                            f"use 0 (embeddings) to {n_layers - 1}")  # fmt: skip
    return sorted(set(requested))


def align_command(
    model_ref: str,
    adapters: Sequence[Path],
    languages: Sequence[str],
    out_dir: Path,
    layers: Sequence[int] | None = None,
    methods: Sequence[str] = METHODS,
    retrievals: Sequence[str] = RETRIEVALS,
    pooling: Pooling | None = None,
    normalization: Sequence[str] = ("unit", "center", "unit"),
    train_dict: Path | None = None,
    test_dict: Path | None = None,
    dtype: str = "auto",
    device: str = "cpu",
    batch_size: int = 32,
    one_way: bool = False,
    results: Path | None = None,
    progress: bool = True,
    cache: bool = True,
) -> Any:
    """Return the alignment table (also written to ``out_dir`` once everything is computed).

    Every ordered pair of ``languages`` is evaluated (``one_way``: each pair once, in the given
    order); with ``train_dict``/``test_dict`` the one pair those files hold. ``results`` (a
    results table or run directory) adds the correlation of alignment with its MT-CL transfer.
    Beside ``alignment.csv`` go the tables and figures of ``alignment.summary``.
    """
    import pandas as pd

    from transferlab.models import check_dtype_device, load_model
    from transferlab.scoring.command import model_states

    out_dir, pooling = Path(out_dir), pooling or Pooling()
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(out_dir, "exists and is not a folder", "choose another --out")
    check_choices(methods, retrievals)
    for step in normalization:
        if step not in NORMALIZATIONS:
            raise UserError("--normalize", f"unknown step {step!r}",
                            f"use a comma list of {', '.join(NORMALIZATIONS)}")  # fmt: skip
    dictionaries = _dictionaries(list(languages), train_dict, test_dict, one_way)
    pair_transfer = _pair_transfer(results) if results is not None else None
    for dictionary in dictionaries:
        if not dictionary.test:
            raise UserError(dictionary.origin, "the test split is empty", "add test pairs")
    check_dtype_device(dtype, device)
    states = model_states([Path(a) for a in adapters])

    started = time.time()
    loaded = load_model(model_ref, dtype=dtype, device=device)
    layer_list = _layers(layers, loaded.model.config.get_text_config().num_hidden_layers + 1)
    entries: dict[str, tuple[str, ...]] = {}
    for d in dictionaries:  # bundled: one entry list per language, shared by all its pairs
        entries.setdefault(d.source_language, d.source_entries)
        entries.setdefault(d.target_language, d.target_entries)
    vectors = entry_representations(loaded, states, entries, pooling, batch_size, progress, cache)
    extracted = time.time()

    rows, dropped = induction_rows(
        vectors, [s.name for s in states], dictionaries, layer_list, methods, retrievals,
        normalization,
    )  # fmt: skip
    table = pd.DataFrame(rows, columns=COLUMNS)
    tables = summarize(table, typological_distances(list(languages)), pair_transfer)
    figures = {"alignment_layers": layer_figure(tables["alignment_by_layer"]),
               "alignment_pairs": pair_figure(table)}  # fmt: skip
    provenance = _provenance(loaded, states, dictionaries, pooling, normalization, layer_list)
    provenance |= {
        "dropped_test_pairs": dropped,
        "extraction_s": round(extracted - started, 2),
        "induction_s": round(time.time() - extracted, 2),
    }
    if results is not None:
        provenance["results"] = str(results)
    _write(out_dir, table, provenance, tables, figures)
    return table


def induction_rows(
    vectors: dict[tuple[str, str], Any],
    states: Sequence[str],
    dictionaries: Sequence[BilingualDictionary],
    layers: Sequence[int],
    methods: Sequence[str],
    retrievals: Sequence[str],
    normalization: Sequence[str],
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Return alignment.csv's rows (state, pair, layer order) and the test pairs dropped per pair.

    ``vectors`` maps (state, language) to [layers, entries, hidden]. Each language's normalised
    space at a layer is prepared once and shared by every pair it is part of.
    """
    found, dropped = {}, {}
    for state, layer in itertools.product(states, layers):
        spaces: dict[str, Space] = {}
        for k, d in enumerate(dictionaries):
            for language in (d.source_language, d.target_language):
                if language not in spaces:
                    spaces[language] = prepare_space(vectors[state, language][layer], normalization)
            pair = spaces[d.source_language], spaces[d.target_language]
            found[state, k, layer] = induce_spaces(d, *pair, methods, retrievals)
    rows = []
    for state, (k, d), layer in itertools.product(states, enumerate(dictionaries), layers):
        for result in found[state, k, layer]:
            dropped[f"{d.source_language}-{d.target_language}"] = result.pop("n_dropped")
            rows.append({"model_state": state, "source_language": d.source_language,
                         "target_language": d.target_language, "layer": layer} | result)  # fmt: skip
    return rows, dropped


def _pair_transfer(results: Path) -> Any:
    from transferlab.analysis import read_results

    table = read_results(results)
    return mtcl_pair_transfer(table.cells, table.metric_column(None))


def _provenance(loaded, states, dictionaries, pooling, normalization, layers) -> dict[str, Any]:
    from transferlab.adapter_files import adapter_hash

    first = dictionaries[0]
    return {
        "model": {"ref": loaded.ref, "path": str(loaded.path), "model_hash": loaded.model_hash},
        "model_states": [
            {
                "name": s.name,
                "adapter_dir": str(s.adapter_dir) if s.adapter_dir else None,
                "adapter_hash": adapter_hash(s.adapter_dir) if s.adapter_dir else None,
            }
            for s in states
        ],  # fmt: skip
        "dictionary": {
            "origin": first.origin,
            "hashes": {
                f"{d.source_language}-{d.target_language}": d.content_hash() for d in dictionaries
            },  # fmt: skip
            "train_pairs": len(first.train),
            "test_pairs": len(first.test),
        },
        "pooling": pooling.mode,
        "template": pooling.template,
        "normalization": list(normalization),
        "layers": layers,
        "dtype": loaded.dtype,
        "device": loaded.device,
        "proc_b": "growth 1.5, limit 10000, stop below 1 % growth; candidates ranked by mean cosine",
        "versions": library_versions(),
    }


def _write(out_dir: Path, table: Any, provenance: dict[str, Any], tables, figures) -> None:
    from transferlab.analysis.figures import png_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".align-", dir=out_dir))
    try:
        table.to_csv(staging / ALIGNMENT_FILE, index=False)
        (staging / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        for name, frame in tables.items():
            frame.to_csv(staging / f"{name}.csv", index=False)
        for name, figure in figures.items():
            (staging / f"{name}.png").write_bytes(png_bytes(figure))
        for file in sorted(staging.iterdir()):
            os.replace(file, out_dir / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
