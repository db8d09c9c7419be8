"""Run the console entry point in process, as a user's shell would, and capture what it says."""

from __future__ import annotations

import sys

from transferlab.cli import main


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Return (exit code, stdout, stderr) of `transferlab ARGS`."""
    monkeypatch.setattr(sys, "argv", ["transferlab", *map(str, args)])
    capsys.readouterr()  # drop what building the fixtures printed
    try:
        main()
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
