"""dtype auto: bf16 only where the device computes it natively; what it resolves to is recorded."""

from __future__ import annotations

import json
import logging
import textwrap

import pytest

from cli_runner import run_cli
from cpu_facts import expected_auto_dtype
from training_toy import one_thread
from transferlab import hardware
from transferlab.config import load_study


@pytest.fixture
def cpu(monkeypatch):
    """Pretend the CPU has the given /proc/cpuinfo flags."""

    def pretend(*flags: str) -> None:
        monkeypatch.setattr(hardware, "_cpuinfo", lambda: ("Test CPU", frozenset(flags)))
        hardware._warn_emulated_bf16.cache_clear()

    yield pretend
    hardware._warn_emulated_bf16.cache_clear()


def test_auto_on_this_machine_follows_its_cpu_flags():
    assert hardware.resolve_dtype("auto", "cpu") == expected_auto_dtype()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("avx2", "fma"), "float32"),  # AVX2 only: bf16 matmuls are emulated
        (("avx2", "avx512f", "avx512bw"), "float32"),  # AVX-512 without its bf16 extension
        (("avx2", "avx512f", "avx512_bf16"), "bfloat16"),
        (("avx2", "amx_tile", "amx_bf16"), "bfloat16"),
        (("fp", "asimd", "bf16"), "bfloat16"),  # aarch64 with BF16
    ],
)
def test_auto_picks_bf16_only_with_bf16_instructions(cpu, flags, expected):
    cpu(*flags)
    assert hardware.resolve_dtype("auto", "cpu") == expected
    assert hardware.resolve_dtype("float32", "cpu") == "float32"


def test_explicit_bf16_on_an_emulating_cpu_is_kept_with_one_warning(cpu, caplog):
    cpu("avx2")
    with caplog.at_level(logging.WARNING, logger="transferlab.hardware"):
        assert hardware.resolve_dtype("bfloat16", "cpu") == "bfloat16"
        assert hardware.resolve_dtype("bfloat16", "cpu") == "bfloat16"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "emulated" in warnings[0] and "float32" in warnings[0]
    cpu("avx512_bf16")
    caplog.clear()
    assert hardware.resolve_dtype("bfloat16", "cpu") == "bfloat16" and not caplog.records


def test_a_study_resolves_auto_once_so_keys_name_the_dtype_that_runs(cpu, tmp_path):
    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        textwrap.dedent(
            """\
            name: s
            models: [some/model]
            tasks: [country_continent]
            languages: [de]
            """
        )
    )
    cpu("avx2")
    study = load_study(study_file)
    assert (study.training.dtype, study.evaluation.dtype) == ("float32", "float32")
    assert "auto" not in study.to_yaml()
    cpu("avx512_bf16")
    study = load_study(study_file)
    assert (study.training.dtype, study.evaluation.dtype) == ("bfloat16", "bfloat16")
    explicit = load_study(study_file, ["evaluation.dtype=float32"])
    assert (explicit.training.dtype, explicit.evaluation.dtype) == ("bfloat16", "float32")


def test_env_names_the_cpu_the_auto_dtype_and_pinned_packages(monkeypatch, capsys):
    code, stdout, _ = run_cli(monkeypatch, capsys, "env")
    assert code == 0
    assert "CPU: " in stdout and "native bf16: " in stdout
    assert f"dtype auto on cpu: {expected_auto_dtype()}" in stdout
    assert "torch==" in stdout and "babel==" in stdout and "transformers==" in stdout


def test_train_records_the_resolved_dtype(tiny_gemma_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "adapter"
    args = ["train", "--model", tiny_gemma_dir, "--task", "country_continent", "--language", "de"]
    args += ["--out", out, "--dtype", "auto", "--set", "max_steps=1", "--set", "epochs=1"]
    with one_thread():
        code, stdout, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0
    meta = json.loads((out / "transferlab.json").read_text())
    assert meta["dtype"] == meta["settings"]["dtype"] == expected_auto_dtype()
    assert f"dtype {expected_auto_dtype()}" in stdout
