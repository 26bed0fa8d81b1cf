"""Errors raised for bad user input.

Every problem with a file or an argument a user supplied is raised as :class:`InputError`, whose
message names the file and what is wrong. The CLI turns it into a one-line message and exit code 2,
never a traceback.
"""
from __future__ import annotations

#: Lines of torch's weights-only refusal that say nothing about the file (and advise unpickling it anyway).
_TORCH_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation of torch.load")


class InputError(ValueError):
    """Bad user input (a file, a folder or an argument); the message says which and why."""


EXIT_BAD_INPUT = 2


def _lines(text: str) -> list[str]:
    return [line.strip() for line in str(text).splitlines() if line.strip()]


def joined_lines(text: str) -> str:
    """``text`` on one line: its non-blank lines, stripped, joined with ``; `` (what the command line prints)."""
    return "; ".join(_lines(text))


def one_line(exc: BaseException) -> str:
    """``exc`` as ``Type: message`` on one line, for the parenthesis of an :class:`InputError` (the CLI prints one
    line): the lines of a multi-line message are joined with ``; ``, and torch's weights-only refusal keeps only its
    cause (e.g. ``Unsupported operand 103``, ``Trying to load unsupported GLOBAL posix.system ...``)."""
    lines = _lines(str(exc))
    kept = [line for line in lines if not line.startswith(_TORCH_BOILERPLATE)] or lines[:1]
    return f"{type(exc).__name__}: {'; '.join(kept)}"
