"""Training curves from a run's ``metrics.csv`` (:mod:`p3d.train.trainer`)."""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from p3d.errors import InputError


def plot_training_curves(metrics_csv: str | os.PathLike[str], columns: Sequence[str] = ("loss",), *,
                         title: str = "") -> Figure:
    """One panel per column of ``metrics_csv`` (logged value against step); columns that the file lacks
    are skipped, and a file with none of them is an error."""
    import pandas as pd

    if not os.path.isfile(metrics_csv):
        raise InputError(f"{metrics_csv}: no metrics file (has the run started?)")
    df = pd.read_csv(metrics_csv)
    cols = [c for c in columns if c in df.columns]
    if not cols or df.empty or "step" not in df.columns:
        raise InputError(f"{metrics_csv}: none of the columns {list(columns)} (has {list(df.columns)})")
    fig = Figure(figsize=(3.6 * len(cols), 3), layout="constrained")
    for ax, c in zip(fig.subplots(1, len(cols), squeeze=False)[0], cols):
        vals = np.asarray(df[c], dtype=float)
        ax.plot(df["step"], vals, lw=1)
        ax.set_xlabel("step")
        ax.set_title(c)
    if title:
        fig.suptitle(title)
    return fig
