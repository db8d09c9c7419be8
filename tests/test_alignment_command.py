"""`transferlab align` end to end on a tiny model; representations; the bundled dictionary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_runner import run_cli
from test_scoring import make_lora
from transferlab.alignment import Pooling, bundled_concepts, entry_representations
from transferlab.alignment.command import COLUMNS
from transferlab.models import load_model
from transferlab.scoring.adapters import ModelState

REPO = Path(__file__).resolve().parents[1]
WORDS = ["Deutschland", "Frankreich", "中国", "भारत", "مصر", "Januar", "a", "Mittwoch"]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def adapter(tiny_model_dir, tmp_path_factory) -> Path:
    return make_lora(tiny_model_dir, tmp_path_factory.mktemp("lora") / "de-lora", seed=3)


def test_bundled_dictionary_shares_concepts_and_splits_across_every_pair():
    table = bundled_concepts()
    assert table.languages == tuple("ar bn de en es fr hi id it pt zh".split())
    assert len(table.concepts) == 883 and table.split.count("test") == 353
    en_zh, hi_ar = table.pair("en", "zh"), table.pair("hi", "ar")
    assert en_zh.train == hi_ar.train and en_zh.test == hi_ar.test
    assert len(en_zh.train) == 530 and not set(en_zh.train) & set(en_zh.test)
    for language in table.languages:  # every gold answer is unique in its language
        names = [e.casefold() for e in table.entries[language]]
        assert len(set(names)) == len(names), language
    row = table.concepts.index("month:01")
    assert (table.entries["de"][row], table.entries["zh"][row]) == ("Januar", "一月")


def test_build_script_reproduces_the_shipped_dictionary(tmp_path):
    script = REPO / "scripts" / "build_dictionaries.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    shipped = REPO / "src/transferlab/alignment/data/concepts.tsv"
    assert (tmp_path / "concepts.tsv").read_bytes() == shipped.read_bytes()


@pytest.mark.parametrize("pooling", [Pooling("mean"), Pooling("last", 'Das Wort "{entry}"')])
def test_an_entry_has_the_same_vectors_alone_and_in_a_padded_batch(
    pooling, tiny_model_dir, adapter
):
    loaded = load_model(str(tiny_model_dir))
    states = [ModelState("base"), ModelState("lora", adapter)]
    batched = entry_representations(loaded, states, {"x": WORDS}, pooling, 8, progress=False)
    for state in states:
        vectors = batched[state.name, "x"]
        assert vectors.shape[0] == loaded.model.config.num_hidden_layers + 1
        for k, word in enumerate(WORDS):
            alone = entry_representations(
                loaded, [state], {"y": [word]}, pooling, 1, progress=False
            )[state.name, "y"]
            np.testing.assert_allclose(vectors[:, k], alone[:, 0], atol=1e-5, rtol=1e-5)
    assert not np.allclose(batched["base", "x"][1:], batched["lora", "x"][1:])


def test_representations_are_cached_by_model_adapter_entries_and_pooling(tiny_model_dir, tmp_path):
    loaded = load_model(str(tiny_model_dir))
    first = entry_representations(loaded, [ModelState("base")], {"x": WORDS}, progress=False)
    cached = list((tmp_path / "home" / "representations").glob("*.npy"))
    assert len(cached) == 1
    again = entry_representations(loaded, [ModelState("base")], {"x": WORDS}, progress=False)
    np.testing.assert_array_equal(first["base", "x"], again["base", "x"])
    entry_representations(loaded, [ModelState("base")], {"x": WORDS}, Pooling("last"),
                          progress=False)  # fmt: skip
    assert len(list((tmp_path / "home" / "representations").glob("*.npy"))) == 2


def test_align_writes_every_pair_layer_method_and_retrieval(
    tiny_model_dir, adapter, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "align"
    args = ["align", "--model", tiny_model_dir, "--adapter", adapter, "--languages", "en,de,zh"]
    args += ["--out", out, "--layer", "0", "--layer", "2"]
    code, stdout, stderr = run_cli(monkeypatch, capsys, *args)
    assert code == 0, stderr
    table = pd.read_csv(out / "alignment.csv")
    assert list(table.columns) == COLUMNS
    # 2 states × 6 ordered pairs × 2 layers × 3 methods × 2 retrievals
    assert len(table) == 2 * 6 * 2 * 3 * 2 and set(table["layer"]) == {0, 2}
    assert set(table["n_test"]) == {353}
    assert (table["p1"] <= table["p5"]).all() and (table["p5"] <= table["p10"]).all()
    assert f"Wrote {len(table)} rows" in stdout
    curves = pd.read_csv(out / "alignment_by_layer.csv")
    expected = table.groupby(["model_state", "method", "retrieval", "layer"])["mrr"].mean()
    found = curves.set_index(["model_state", "method", "retrieval", "layer"])["mean"]
    pd.testing.assert_series_equal(found, expected, check_names=False)
    change = pd.read_csv(out / "alignment_change.csv")
    assert set(change["model_state"]) == {"de-lora"} and len(change) == len(table) // 2
    one = change.iloc[0]
    assert one["delta_mrr"] == pytest.approx(100 * (one["mrr"] - one["mrr_base"]))
    distance = pd.read_csv(out / "alignment_distance.csv")
    assert set(distance["feature_set"]) == {"syntax", "phonology", "inventory"}
    assert set(distance["n"]) == {6}  # 6 ordered pairs of en, de, zh, all known to URIEL
    assert (out / "alignment_layers.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "alignment_pairs.png").stat().st_size > 1000


def test_align_relates_alignment_to_the_transfer_of_a_results_table(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    deltas = {("en", "de"): 2.0, ("de", "en"): 1.0, ("en", "zh"): -1.0, ("zh", "en"): 0.5,
              ("de", "zh"): -2.0, ("zh", "de"): 0.0}  # fmt: skip
    rows = [
        {"model_name": "m", "model_size": 1.0, "fine_tuned_dataset": "t",
         "fine_tuned_language": s, "eval_dataset": "t", "eval_language": t,
         "delta_score_norm_mean": deltas.get((s, t), 3.0)}
        for s in ("en", "de", "zh") for t in ("en", "de", "zh")
    ]  # fmt: skip
    results = tmp_path / "transfer_results.csv"
    pd.DataFrame(rows).to_csv(results, index=False)
    out = tmp_path / "align"
    args = ["align", "--model", tiny_model_dir, "--languages", "en,de,zh", "--out", out,
            "--layer", "1", "--method", "proc", "--retrieval", "cosine", "--results", results]  # fmt: skip
    code, _, stderr = run_cli(monkeypatch, capsys, *args)
    assert code == 0, stderr
    table = pd.read_csv(out / "alignment.csv").set_index(["source_language", "target_language"])
    related = pd.read_csv(out / "alignment_transfer.csv").iloc[0]
    pairs = list(deltas)
    x = [table.loc[pair, "mrr"] for pair in pairs]
    assert related["n"] == 6
    assert related["pearson_r"] == pytest.approx(np.corrcoef(x, list(deltas.values()))[0, 1])


def test_identical_entries_align_perfectly_without_a_map(tiny_model_dir, tmp_path, monkeypatch,
                                                        capsys):  # fmt: skip
    words = ["Berlin", "Paris", "Rom", "Madrid", "Lissabon", "Kairo", "Delhi", "Peking", "Jakarta"]
    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    train.write_text("".join(f"{w}\t{w}\n" for w in words[:5]))
    test.write_text("".join(f"{w}\t{w}\n" for w in words[5:]))
    out = tmp_path / "same"
    args = ["align", "--model", tiny_model_dir, "--languages", "de,de2", "--out", out]
    args += ["--train-dict", train, "--test-dict", test, "--method", "none", "--method", "proc"]
    code, _, stderr = run_cli(monkeypatch, capsys, *args)
    assert code == 0, stderr
    table = pd.read_csv(out / "alignment.csv")
    none = table[table["method"] == "none"]
    # The same words in both "languages": every entry's nearest target is itself.
    assert (none["p1"] == 1.0).all() and (none["mrr"] == 1.0).all() and set(none["n_test"]) == {4}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--languages", "en,xx"], "no entries for 'xx'"),
        (["--languages", "en,de", "--layer", "99"], "layer 99 is out of range"),
        (["--languages", "en,de", "--method", "procb"], "unknown method 'procb'"),
        (["--languages", "en"], "two or more distinct languages"),
        (["--languages", "en,de", "--normalize", "unit,whiten"], "unknown step 'whiten'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    extra, message, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "never"
    code, _, stderr = run_cli(monkeypatch, capsys, "align", "--model", tiny_model_dir, "--out",
                              out, *extra)  # fmt: skip
    assert code == 2 and stderr.count("\n") == 1 and message in stderr, stderr
    assert not out.exists()


def test_a_one_column_or_empty_dictionary_file_is_refused(tiny_model_dir, tmp_path, monkeypatch,
                                                          capsys):  # fmt: skip
    one, empty = tmp_path / "one.tsv", tmp_path / "empty.tsv"
    one.write_text("Berlin\tBerlin\nParis\n")
    empty.write_text("\n")
    out = tmp_path / "never"
    base = ["align", "--model", tiny_model_dir, "--languages", "de,fr", "--out", out]
    code, _, stderr = run_cli(monkeypatch, capsys, *base, "--train-dict", one, "--test-dict", one)
    assert code == 2 and f"{one}: line 2: expected 'source<TAB>target'" in stderr
    code, _, stderr = run_cli(monkeypatch, capsys, *base, "--train-dict", one.with_name("x"),
                              "--test-dict", empty)  # fmt: skip
    assert code == 2 and "no such dictionary file" in stderr
    good = tmp_path / "good.tsv"
    good.write_text("Berlin\tBerlin\n")
    code, _, stderr = run_cli(
        monkeypatch, capsys, *base, "--train-dict", good, "--test-dict", empty
    )
    assert code == 2 and f"{empty}: holds no word pairs" in stderr
    assert not out.exists()
