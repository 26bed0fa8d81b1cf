"""The MTM matching plot (paper Fig. S4, the official ``evaluate_MTM.py`` per-clip PNG).

Smoothed lip distance of the GT (blue) and the prediction (red); triangles mark maxima, circles
minima; green lines join the extrema pairs that MTM matched through the DDTW path. The x axis is in
frames (a secondary axis in milliseconds when ``fps`` is given); the y axis in the vertices' length unit
(:func:`p3d.metrics.mtm.lip_distance` is a Euclidean distance between two vertices: metres for FLAME,
VOCASET and p3d's synthetic corpora).

Backend-free: figures are :class:`matplotlib.figure.Figure` objects, never pyplot state, so this
module neither needs nor changes a matplotlib backend.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from p3d.errors import InputError
from p3d.metrics.mtm import MTMResult
from p3d.viz.display import save_figure

GT_COLOR = "tab:blue"
PRED_COLOR = "tab:red"
MATCH_COLOR = "tab:green"


def plot_mtm(result: MTMResult, *, title: str | None = None, ax: Axes | None = None,
             fps: float | None = None, unit: str = "mesh units") -> Figure:
    """Draw ``result`` on ``ax`` (or on a new 12 x 5 inch figure) and return the figure. ``unit``: the length unit
    of the vertices, for the y axis' label (e.g. ``"m"``; default ``mesh units``, which p3d does not know)."""
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise InputError(f"fps: expected a positive frame rate, got {fps!r}")
    if ax is None:
        fig = Figure(figsize=(12, 5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.get_figure()
    gt, pred = result.gt_smooth, result.pred_smooth
    ax.plot(np.arange(len(gt)), gt, color=GT_COLOR, label="Ground truth")
    ax.plot(np.arange(len(pred)), pred, color=PRED_COLOR, alpha=0.7, label="Prediction")
    for idx, curve, color, marker, label in (
        (result.gt_maxima, gt, GT_COLOR, "^", "GT maxima"),
        (result.gt_minima, gt, GT_COLOR, "o", "GT minima"),
        (result.pred_maxima, pred, PRED_COLOR, "^", "Pred maxima"),
        (result.pred_minima, pred, PRED_COLOR, "o", "Pred minima"),
    ):
        if len(idx):
            ax.plot(idx, curve[idx], linestyle="none", marker=marker, color=color, label=label)
    for n, (i, j) in enumerate(result.matches):
        ax.plot([i, j], [gt[i], pred[j]], color=MATCH_COLOR, linewidth=1.2,
                label="Matched extrema" if n == 0 else None)
    ax.set_xlabel("Frame")
    ax.set_ylabel(f"Lip distance ({unit})")
    if fps is not None:
        scale = 1000.0 / fps
        top = ax.secondary_xaxis("top", functions=(lambda f: f * scale, lambda t: t / scale))
        top.set_xlabel("Time (ms)")
    if title is None:
        if result.mean_frames is None:
            title = "MTM: no matched extrema"
        else:
            title = f"MTM: {result.mean_frames:.2f} frames"
            if fps is not None:
                title += f" ({result.ms(fps):.1f} ms)"
            title += f" over {result.n_matches} matched extrema"
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return fig


def save_mtm_plot(result: MTMResult, path: str | os.PathLike[str], *, dpi: int = 100, **kwargs: object) -> Path:
    """Write :func:`plot_mtm` of ``result`` to ``path`` as a PNG, atomically; returns the path."""
    return save_figure(plot_mtm(result, **kwargs), path, format="png", dpi=dpi)  # type: ignore[arg-type]
