"""The SLCC scatter: each evaluated clip's speech intensity against its lip intensity, one colour per intensity
level (the MEAD layout's levels), the view behind SLCC (paper Sec. 4, the speech-lip intensity correlation).

Backend-free: figures are :class:`matplotlib.figure.Figure` objects, never pyplot state.
"""
from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from p3d.errors import InputError

COLUMNS = ("level", "speech_intensity", "lip_intensity")


def plot_slcc_scatter(per_clip: Any, slcc: float | None = None, *, title: str = "") -> Figure:
    """One point per row of ``per_clip`` (``p3d eval``'s per-clip table of a corpus with intensity levels:
    ``level``, ``speech_intensity`` (RMS of the waveform), ``lip_intensity`` (m / frame, drawn in mm / frame)),
    a scatter series and legend entry per level in ascending order; a 5 x 4 inch figure. Rows without a level
    (NaN, e.g. a clip whose name carries none) are drawn last as grey crosses, ``no level (n)``: the pooled SLCC
    counts them (:func:`p3d.metrics.slcc_by_level`, ``"all"``), so the figure shows every clip behind it. The
    title is ``title``, followed by ``: SLCC = <slcc, 2 decimals>`` when ``slcc`` is given (the summary's pooled
    value; without a ``title``, ``SLCC = <slcc>`` alone)."""
    missing = [c for c in COLUMNS if c not in per_clip]
    if missing:
        raise InputError(f"plot_slcc_scatter: the per-clip table has no {', '.join(missing)} column "
                         "(evaluate a corpus with intensity levels)")
    if not len(per_clip):
        raise InputError("plot_slcc_scatter: the per-clip table has no rows")
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    for level, g in per_clip.groupby("level"):  # groupby leaves out the NaN levels: drawn below
        if isinstance(level, float) and level.is_integer():  # a level column with NaN rows is float: 1.0 -> 1
            level = int(level)
        ax.scatter(g["speech_intensity"], g["lip_intensity"] * 1000, label=f"level {level}")
    unlevelled = per_clip[per_clip["level"].isna()]
    if len(unlevelled):
        ax.scatter(unlevelled["speech_intensity"], unlevelled["lip_intensity"] * 1000, color="0.5", marker="x",
                   label=f"no level ({len(unlevelled)})")
    ax.set_xlabel("speech intensity (RMS)")
    ax.set_ylabel("lip intensity (mm / frame)")
    ax.set_title(title if slcc is None else f"{title}: SLCC = {slcc:.2f}" if title else f"SLCC = {slcc:.2f}")
    ax.legend()
    return fig
