"""Figures of the experiments' results: paired effects with their CIs (Tables 2-4's effect tables), level-wise
SLCC bars per training setting (Table 4), and stacking rendered panels into one image (Fig. 6). Figures are
:class:`matplotlib.figure.Figure` objects, never pyplot state (:mod:`p3d.viz.display`: ``show(fig)`` in a notebook)."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError

#: Colour of an effect's verdict (``p3d.experiments.loss_effects``).
VERDICT_COLORS = {"better": "tab:green", "worse": "tab:red"}


def plot_effects(effects: Any, title: str = "", *, better: Mapping[str, int] | None = None) -> Any:
    """One panel per metric: each comparison's change (dot) with its 95% CI (bar), green when the CI shows an
    improvement, red a deterioration, grey otherwise; a vertical line at no change. Every panel has one row per
    comparison, at the same height (a metric missing for a comparison leaves its row empty).

    ``effects``: :func:`p3d.experiments.loss_effects`' table (``comparison``, ``metric``, ``change``,
    ``change CI low``, ``change CI high``, ``verdict``). ``better``: each metric label's direction of improvement
    (+1 higher, -1 lower: :data:`p3d.experiments.BETTER` by :data:`p3d.experiments.METRIC_LABELS`); a panel whose
    metric has one says which way is better under its axis."""
    from matplotlib.figure import Figure

    if len(effects) == 0:
        raise InputError("plot_effects: no effects to plot")
    metrics = list(dict.fromkeys(effects["metric"]))
    comparisons = list(dict.fromkeys(effects["comparison"]))  # one row per comparison in every panel
    row_of = {c: y for y, c in enumerate(comparisons)}
    fig = Figure(figsize=(3.3 * len(metrics), 0.45 * len(comparisons) + 1.6), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)
    axes = axes[0]
    for ax, metric in zip(axes, metrics):
        for _, row in effects[effects["metric"] == metric].iterrows():
            color = VERDICT_COLORS.get(row["verdict"], "tab:gray")
            lo, hi = row["change CI low"], row["change CI high"]
            y = row_of[row["comparison"]]
            if not (lo is None or hi is None or np.isnan(lo) or np.isnan(hi)):
                # the bar spans the CI itself, drawn about its own centre: a percentile bootstrap CI need not
                # contain the point estimate, and an error bar about the point would then need a negative length
                ax.errorbar((lo + hi) / 2, y, xerr=(hi - lo) / 2, fmt="none", color=color, capsize=3)
            ax.plot([row["change"]], [y], "o", color=color)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(comparisons)), comparisons if ax is axes[0] else [""] * len(comparisons))
        ax.set_ylim(len(comparisons) - 0.5, -0.5)  # the first comparison on top
        ax.set_title(metric)
        direction = (better or {}).get(metric)
        if direction in (1, -1):
            ax.set_xlabel("change (better →)" if direction > 0 else "change (← better)")
        else:
            ax.set_xlabel("change")
    if title:
        fig.suptitle(title)
    return fig


def plot_levelwise_slcc(settings: Mapping[str, Mapping[str, Mapping[str, Any] | None]], data: Mapping[str, Any],
                        *, levels: Sequence[str] = ("1", "2", "3", "all"), title: str = "") -> Any:
    """Level-wise SLCC bars: one panel per model, one bar group per level, one bar per training setting (one
    colour per setting label in every panel; one legend, on the last panel, for all), and the data's own SLCC
    (black mark).

    Args:
        settings: ``{panel title (model): {setting label: result or None}}`` (results with
            ``summary["slcc"][level]["value"]``; a missing result or level leaves no bar).
        data: the data's ``summary["slcc"]`` (level -> ``{"value"}``).
        levels: the levels in order (``all``: labelled Avg, SLCC over all levels pooled).
    """
    from matplotlib.figure import Figure

    if not settings:
        raise InputError("plot_levelwise_slcc: no models to plot")
    fig = Figure(figsize=(4.2 * len(settings), 3.4), layout="constrained")
    axes = fig.subplots(1, len(settings), sharey=True, squeeze=False)
    names = ["Avg" if lv == "all" else f"Lv{lv}" for lv in levels]
    # one colour per setting label across the panels (not per panel position), so the one legend holds for all
    colour = {label: f"C{k % 10}" for k, label in enumerate(dict.fromkeys(lab for s in settings.values() for lab in s))}
    for ax, (panel, by_setting) in zip(axes[0], settings.items()):
        n = max(1, len(by_setting))
        width = 0.8 / (n + 1)
        for i, (label, r) in enumerate(by_setting.items()):
            slcc = (r or {}).get("summary", {}).get("slcc", {}) if r is not None else {}
            vals = [(slcc.get(lv) or {}).get("value") for lv in levels]
            x = [k + width * (i - (n - 1) / 2) for k in range(len(levels))]
            ax.bar(x, [np.nan if v is None else v for v in vals], width=width, label=label, color=colour[label])
        ax.scatter(range(len(levels)), [np.nan if (data.get(lv) or {}).get("value") is None else data[lv]["value"]
                                        for lv in levels], color="k", marker="_", s=400, label="data (GT)", zorder=3)
        ax.set_xticks(range(len(levels)), names)
        ax.set_title(panel)
        ax.axhline(0, color="k", lw=0.6)
    axes[0][0].set_ylabel("SLCC")
    found: dict[str, Any] = {}  # every panel's settings, in first-seen order, then the data mark
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            found.setdefault(label, handle)
    found["data (GT)"] = found.pop("data (GT)")
    axes[0][-1].legend(list(found.values()), list(found), fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def figure_pixels(fig: Any, dpi: float | None = None) -> np.ndarray:
    """A matplotlib figure rendered to an (H, W, 3) uint8 array (Agg, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if dpi is not None:
        fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def stack_panels(panels: Sequence[np.ndarray]) -> np.ndarray:
    """Images (H_i, W_i, 3) stacked top to bottom, each padded with white on the right to the widest."""
    if not panels:
        raise InputError("stack_panels: no panels")
    width = max(p.shape[1] for p in panels)
    padded = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in panels]
    return np.concatenate(padded, axis=0)


def save_stacked(figures: Sequence[Any], path: str | os.PathLike[str], *, dpi: float = 110) -> Path:
    """Render ``figures`` (:func:`figure_pixels`), stack them (:func:`stack_panels`) and write one PNG
    atomically (Fig. 6: one panel per model); returns the path."""
    import imageio.v3 as iio

    from p3d.atomic import atomic_path

    path = Path(path)
    image = stack_panels([figure_pixels(f, dpi) for f in figures])
    with atomic_path(path, suffix=".png") as tmp:
        iio.imwrite(tmp, image)
    return path


__all__ = ["plot_effects", "plot_levelwise_slcc", "figure_pixels", "stack_panels", "save_stacked", "VERDICT_COLORS"]
