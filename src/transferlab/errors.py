"""Errors a user can fix, reported as one clear line (the CLI exits 2 on them)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: names where (file), what (field or row) and how to fix it.

    The CLI prints ``str(error)`` as a single line on stderr and exits with code 2.
    """

    def __init__(self, where: str, what: str, fix: str = "") -> None:
        self.where, self.what, self.fix = str(where), what, fix
        message = f"{self.where}: {what}"
        if fix:
            message += f" — {fix}"
        super().__init__(message)


class RunError(Exception):
    """A failure of the run itself (exit code 1), e.g. NaN loss or out of memory."""


def did_you_mean(name: str, known: list[str] | tuple[str, ...]) -> str:
    """Return ' (did you mean X?)' for the closest known name, or '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
