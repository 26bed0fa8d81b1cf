"""Showing p3d's figures in a notebook, and writing them to disk.

p3d builds its figures as :class:`matplotlib.figure.Figure` objects, never through pyplot, so that
the library neither needs nor changes a matplotlib backend. IPython, however, only knows how to draw
such a figure once pyplot has loaded the inline backend (which registers a PNG formatter for
``Figure``); until then a cell that ends in ``fig`` shows ``<Figure size 1200x500 with 1 Axes>``.
:func:`show` displays the PNG itself and does not depend on that state. :func:`save_figure` writes a
figure file atomically, so an interrupted run never leaves a half-written image under its final name.
"""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any


def in_kernel() -> bool:
    """True inside a Jupyter kernel (JupyterLab, papermill, nbval), False in a script or terminal."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def figure_png(fig: Any, dpi: float | None = None) -> bytes:
    """PNG bytes of ``fig`` (a matplotlib Figure), cropped to its content like the inline backend."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def save_figure(fig: Any, path: str | os.PathLike[str], **savefig_kwargs: Any) -> Path:
    """Write ``fig`` (a matplotlib Figure) to ``path`` atomically (:func:`p3d.atomic.atomic_path`: a temporary
    file in the same folder, renamed over ``path``); the folder is created if missing. The format follows
    ``path``'s suffix (``.png``, ``.pdf``, ``.svg``) unless ``format=`` is given; ``savefig_kwargs`` (``dpi``,
    ``bbox_inches``, ...) go to :meth:`matplotlib.figure.Figure.savefig`. Returns ``path``. A path without a
    suffix and no ``format=``, or a format matplotlib cannot write, is an :class:`~p3d.errors.InputError`."""
    from p3d.atomic import atomic_path
    from p3d.errors import InputError

    path = Path(path)
    fmt = savefig_kwargs.get("format") or path.suffix.lstrip(".").lower()
    if not fmt:
        raise InputError(f"{path}: no figure format: give the file a suffix (.png, .pdf, .svg) or format=")
    canvas = getattr(fig, "canvas", None)
    supported = canvas.get_supported_filetypes() if canvas is not None else None
    if supported is not None and str(fmt).lower() not in supported:
        raise InputError(f"{path}: cannot write a {fmt!r} figure (formats: {', '.join(sorted(supported))})")
    savefig_kwargs["format"] = fmt
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **savefig_kwargs)
    return path


def show(fig: Any, dpi: float | None = None) -> None:
    """Display ``fig`` as a PNG in a Jupyter kernel; do nothing elsewhere (scripts save their figures).

    Returns None, so ``show(fig)`` as a cell's last line does not add a text repr. A figure that
    pyplot manages is closed after being shown, so the inline backend does not draw it a second time.
    """
    if not in_kernel():
        return
    from IPython.display import Image, display

    display(Image(data=figure_png(fig, dpi), format="png"))
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and getattr(fig, "number", None) is not None and pyplot.fignum_exists(fig.number):
        pyplot.close(fig)
