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


def whole_number(value: object, low: int | None = None) -> int | None:
    """``value`` as an int when it is a whole number (a Python or numpy integer, or a float without a fraction:
    2.0 is 2) and at least ``low`` (None: any); else None. Booleans and text are not numbers here (True counted as
    1, "3" compared as text); NaN, inf and fractions are not whole. The callers say what they expected in their
    own :class:`InputError`."""
    if type(value).__name__ in ("bool", "bool_") or isinstance(value, (str, bytes)):  # numpy's bool_ too
        return None
    try:
        whole = int(value) == value  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):  # text-like objects, NaN, inf
        return None
    if not whole or (low is not None and value < low):  # type: ignore[operator]
        return None
    return int(value)  # type: ignore[call-overload]


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
