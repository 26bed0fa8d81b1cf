"""Whether long work draws a progress bar.

Every function of p3d that can draw one takes ``progress``: True or False decide; None (the default) draws it only
when stderr, where tqdm draws, is a terminal, so a log file, a pipe, CI or a notebook run by papermill gets no bar
(the CLI's ``--no-progress`` / ``--quiet`` turn it off on a terminal too)."""
from __future__ import annotations

import sys


def show_progress(progress: bool | None = None, stream: object | None = None) -> bool:
    """``progress`` when it is True or False; for None, whether ``stream`` (default ``sys.stderr``) is a terminal."""
    if progress is not None:
        return bool(progress)
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
