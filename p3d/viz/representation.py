"""Figures of a learned representation space (paper Figs. 4, 5, S1, S6, S7).

Inputs are the outputs of :mod:`p3d.analysis.representation`; every function returns a
:class:`matplotlib.figure.Figure` (no pyplot state, any backend).

- :func:`plot_offset_similarity`: cosine similarity against temporal offset, one curve per model,
  with the confidence band (Figs. 5a, S1a).
- :func:`plot_tsne_groups`: t-SNE points coloured by the paper's phoneme groups; squares = mesh (or
  video), circles = speech (Figs. 4, S1b); one panel per model.
- :func:`plot_intensity_direction`: speech features of the three intensity levels on the fitted
  low->high direction and the first orthogonal principal axis (Fig. 5b).
- :func:`plot_pair_boxes`: box plots of per-window loss / GT-pair cosine, train vs test, per model
  (Figs. S6, S7).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from p3d.errors import InputError

#: Colours of the paper's Fig. 4 groups (vowels warm, consonants cool); others grey.
GROUP_COLORS: dict[str, str] = {
    "aj": "tab:red", "æ": "tab:orange", "ɑ": "gold", "ej": "tab:pink", "i": "tab:brown",
    "s,z": "tab:blue", "tʃ": "tab:cyan", "f,v": "tab:green", "m": "tab:purple", "p": "navy",
}


def plot_offset_similarity(curves: Mapping[str, Any], *, title: str = "", unit: str = "frames") -> Figure:
    """One line per model of ``curves`` ({name: DataFrame of
    :func:`p3d.analysis.representation.offset_similarity`}) with its CI band; offset > 0 means the
    visual window comes after the speech window."""
    if not curves:
        raise InputError("curves: nothing to plot")
    fig = Figure(figsize=(6.4, 4), layout="constrained")
    ax = fig.add_subplot()
    x_key = "offset_ms" if unit == "ms" else "offset"
    for name, df in curves.items():
        ax.plot(df[x_key], df["mean"], marker="o", ms=3, label=name)
        if "ci_low" in df and np.isfinite(df["ci_low"]).any():
            ax.fill_between(df[x_key], df["ci_low"], df["ci_high"], alpha=0.2)
    ax.axvline(0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("offset (ms)" if unit == "ms" else "offset (frames)")
    ax.set_ylabel("cosine similarity (speech, visual window)")
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig


def plot_tsne_groups(panels: Mapping[str, Mapping[str, Any]], *, other: str = "mesh", max_points: int = 4000,
                     seed: int = 0) -> Figure:
    """Fig. 4 / S1b: for each panel ``{name: {"points": (N, 2), "group": (N,) str, "modality": (N,) str}}``
    draw speech rows as circles and ``other`` rows as squares, coloured by group; rows with an empty
    group are drawn small and grey."""
    if not panels:
        raise InputError("panels: nothing to plot")
    n = len(panels)
    fig = Figure(figsize=(4.6 * n, 4.4), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    rng = np.random.default_rng(seed)
    for ax, (name, p) in zip(axes, panels.items()):
        pts, grp, mod = np.asarray(p["points"]), np.asarray(p["group"], dtype=object), np.asarray(p["modality"])
        if not (len(pts) == len(grp) == len(mod)):
            raise InputError(f"panel {name}: points, group and modality lengths differ")
        keep = rng.permutation(len(pts))[:max_points]
        pts, grp, mod = pts[keep], grp[keep], mod[keep]
        bg = grp == ""
        ax.scatter(pts[bg, 0], pts[bg, 1], s=2, c="0.85", lw=0)
        for g, color in GROUP_COLORS.items():
            for m, marker in (("speech", "o"), (other, "s")):
                sel = (grp == g) & (mod == m)
                if sel.any():
                    ax.scatter(pts[sel, 0], pts[sel, 1], s=12, c=color, marker=marker, lw=0, alpha=0.8,
                               label=f"/{g}/" if m == "speech" else None)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0].get_legend_handles_labels()
    present = set().union(*(set(np.asarray(p["modality"]).tolist()) for p in panels.values()))
    title = "\n".join(t for m, t in (("speech", "circles: speech"), (other, f"squares: {other}")) if m in present)
    if handles:
        fig.legend(handles, labels, loc="outside right center", frameon=False, title=title)
    return fig


def plot_intensity_direction(result: Mapping[str, Any], levels: Any, *, title: str = "",
                             names: Mapping[int, str] | None = None) -> Figure:
    """Fig. 5b: speech features on (low->high direction, orthogonal principal axis), coloured by level,
    with each level's mean; ``result`` from :func:`p3d.analysis.representation.intensity_direction`."""
    levels = np.asarray(levels)
    plane = np.asarray(result["plane"])
    if len(plane) != len(levels):
        raise InputError(f"levels: {len(levels)} rows, the result has {len(plane)}")
    names = names or {1: "low", 2: "medium", 3: "high"}
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    colors = ["tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:green"]
    for i, lv in enumerate(result["levels"]):
        sel = levels == lv
        ax.scatter(plane[sel, 0], plane[sel, 1], s=4, alpha=0.35, color=colors[i % len(colors)], lw=0)
        ax.scatter(np.nanmean(plane[sel, 0]), np.nanmean(plane[sel, 1]), s=160, marker="*",
                   color=colors[i % len(colors)], edgecolor="k", label=f"level {lv} ({names.get(int(lv), lv)})")
    ax.set_xlabel("projection on the low -> high direction")
    ax.set_ylabel("first orthogonal principal axis")
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig


def plot_pair_boxes(frames: Mapping[str, Any], value: str, *, ylabel: str = "", title: str = "",
                    order: Sequence[str] = ("train", "test")) -> Figure:
    """Figs. S6 / S7: box plots of ``value`` (``loss`` or ``cosine``) per model and split.

    ``frames``: {model name: DataFrame with ``split`` and ``value`` columns} (e.g.
    :func:`p3d.analysis.representation.gt_pair_stats` of train and test, concatenated)."""
    if not frames:
        raise InputError("frames: nothing to plot")
    fig = Figure(figsize=(1.9 * len(frames) + 1.5, 4), layout="constrained")
    ax = fig.add_subplot()
    data, positions, colors = [], [], []
    palette = {"train": "tab:blue", "test": "tab:orange"}
    for i, (name, df) in enumerate(frames.items()):
        for j, split in enumerate(order):
            vals = np.asarray(df.loc[df["split"] == split, value], dtype=float)
            data.append(vals[np.isfinite(vals)])
            positions.append(i * (len(order) + 1) + j)
            colors.append(palette.get(split, "0.5"))
    bp = ax.boxplot(data, positions=positions, widths=0.8, patch_artist=True, showfliers=False)
    for patch, color in zip(bp["boxes"], colors):
        patch.set_facecolor(color)
        patch.set_alpha(0.6)
    ax.set_xticks([i * (len(order) + 1) + (len(order) - 1) / 2 for i in range(len(frames))], list(frames))
    ax.set_ylabel(ylabel or value)
    for split in order:
        ax.plot([], [], color=palette.get(split, "0.5"), lw=8, alpha=0.6, label=split)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig
