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
- :func:`plot_fig1b`: Fig. 1b drawn from a learned space: phoneme clusters, the intensity direction and
  temporal sensitivity in one 2-D projection (three panels).
"""
from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from p3d.errors import InputError

log = logging.getLogger(__name__)

#: Colours of the paper's Fig. 4 groups (vowels warm, consonants cool); others grey.
GROUP_COLORS: dict[str, str] = {
    "aj": "tab:red", "æ": "tab:orange", "ɑ": "gold", "ej": "tab:pink", "i": "tab:brown",
    "s,z": "tab:blue", "tʃ": "tab:cyan", "f,v": "tab:green", "m": "tab:purple", "p": "navy",
}
#: Colours of groups outside :data:`GROUP_COLORS` (e.g. ``phoneme_groups(groups=...)``), by sorted name, cycled.
FALLBACK_GROUP_COLORS: tuple[str, ...] = ("tab:olive", "teal", "black", "lime", "maroon", "slateblue", "darkkhaki",
                                          "magenta")


def _group_colors(*groups: Any) -> dict[Any, str]:
    """:data:`GROUP_COLORS` followed by every other non-empty group name of the arrays/iterables ``groups``, sorted,
    each with a :data:`FALLBACK_GROUP_COLORS` colour (so such points are drawn and named, not left out)."""
    extra = sorted({g for gs in groups for g in np.asarray(list(gs), dtype=object).tolist()
                    if g != "" and g not in GROUP_COLORS}, key=str)
    colors: dict[Any, str] = dict(GROUP_COLORS)
    colors.update({g: FALLBACK_GROUP_COLORS[i % len(FALLBACK_GROUP_COLORS)] for i, g in enumerate(extra)})
    return colors


def plot_offset_similarity(curves: Mapping[str, Any], *, title: str = "", unit: str = "frames") -> Figure:
    """One line per model of ``curves`` ({name: DataFrame of
    :func:`p3d.analysis.representation.offset_similarity`}) with its CI band; offset > 0 means the
    visual window comes after the speech window. ``unit``: the x axis, ``"frames"`` (column ``offset``) or
    ``"ms"`` (column ``offset_ms``)."""
    if not curves:
        raise InputError("curves: nothing to plot")
    if unit not in ("frames", "ms"):
        raise InputError(f"unit: expected 'frames' or 'ms', got {unit!r}")
    x_key = "offset_ms" if unit == "ms" else "offset"
    for name, df in curves.items():
        missing = [c for c in (x_key, "mean") if c not in df]
        if missing:
            raise InputError(f"curves[{name!r}]: no {', '.join(missing)} column (an offset_similarity table)")
    fig = Figure(figsize=(6.4, 4), layout="constrained")
    ax = fig.add_subplot()
    for name, df in curves.items():
        (line,) = ax.plot(df[x_key], df["mean"], marker="o", ms=3, label=name)
        if "ci_low" in df and np.isfinite(df["ci_low"]).any():  # the band in its line's colour
            ax.fill_between(df[x_key], df["ci_low"], df["ci_high"], alpha=0.2, color=line.get_color())
    ax.axvline(0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("offset (ms)" if unit == "ms" else "offset (frames)")
    ax.set_ylabel("cosine similarity (speech, visual window)")
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig


def _scatter_groups(ax: Any, pts: np.ndarray, grp: np.ndarray, mod: np.ndarray, other: str, keep: np.ndarray, *,
                    size: float, bg_size: float, alpha: float, labels: bool, colors: Mapping[str, str],
                    where: str) -> None:
    """Rows ``keep`` of (N, 2) ``pts``: speech as circles, ``other`` as squares, coloured by phoneme group
    (``colors``, :func:`_group_colors`); rows with an empty group small and grey. ``labels``: legend entries
    ``/group/`` on the speech rows. A modality other than ``"speech"`` and ``other`` (of any row, kept or not) is
    refused (InputError naming ``where``): it has no marker, and its rows would be missing from the figure."""
    unexpected = sorted({str(m) for m in np.asarray(mod).tolist()} - {"speech", other})
    if unexpected:
        raise InputError(f"{where}: modality {', '.join(map(repr, unexpected))} is neither 'speech' nor "
                         f"other={other!r} (pass other= the second modality; only two are drawn)")
    pts, grp, mod = pts[keep], grp[keep], mod[keep]
    bg = grp == ""
    ax.scatter(pts[bg, 0], pts[bg, 1], s=bg_size, c="0.85", lw=0)
    for g, color in colors.items():
        for m, marker in (("speech", "o"), (other, "s")):
            sel = (grp == g) & (mod == m)
            if sel.any():
                ax.scatter(pts[sel, 0], pts[sel, 1], s=size, c=color, marker=marker, lw=0, alpha=alpha,
                           label=f"/{g}/" if labels and m == "speech" else None)


def plot_tsne_groups(panels: Mapping[str, Mapping[str, Any]], *, other: str = "mesh", max_points: int = 4000,
                     seed: int = 0) -> Figure:
    """Fig. 4 / S1b: for each panel ``{name: {"points": (N, 2), "group": (N,) str, "modality": (N,) str}}``
    draw speech rows as circles and ``other`` rows as squares, coloured by group; rows with an empty
    group are drawn small and grey. A third modality (e.g. ``"video"`` rows with the default ``other="mesh"``) is
    refused with an InputError naming it, not left out of the figure. Groups outside the paper's Fig. 4 groups
    (:data:`GROUP_COLORS`, e.g. from ``phoneme_groups(groups=...)``) are drawn too, in
    :data:`FALLBACK_GROUP_COLORS`, after the paper's groups in the legend. One legend for the figure: the groups
    found in any panel."""
    if not panels:
        raise InputError("panels: nothing to plot")
    n = len(panels)
    fig = Figure(figsize=(4.6 * n, 4.4), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    rng = np.random.default_rng(seed)
    colors = _group_colors(*(p["group"] for p in panels.values()))
    for ax, (name, p) in zip(axes, panels.items()):
        pts, grp, mod = np.asarray(p["points"]), np.asarray(p["group"], dtype=object), np.asarray(p["modality"])
        if not (len(pts) == len(grp) == len(mod)):
            raise InputError(f"panel {name}: points, group and modality lengths differ")
        _scatter_groups(ax, pts, grp, mod, other, rng.permutation(len(pts))[:max_points], size=12, bg_size=2,
                        alpha=0.8, labels=True, colors=colors, where=f"panel {name}")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    # the legend lists the groups of every panel (a group absent from the first panel is still coloured in another)
    found: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            found.setdefault(label, handle)
    labels = [f"/{g}/" for g in colors if f"/{g}/" in found]
    handles = [found[label] for label in labels]
    present = set().union(*(set(np.asarray(p["modality"]).tolist()) for p in panels.values()))
    title = "\n".join(t for m, t in (("speech", "circles: speech"), (other, f"squares: {other}")) if m in present)
    if handles:
        fig.legend(handles, labels, loc="outside right center", frameon=False, title=title)
    return fig


def _level_labels(levels: Any, names: Mapping[int, str] | None) -> list[str]:
    """Legend labels ``level <n> (<name>)`` of the intensity ``levels`` (``names``: default 1 low, 2 medium, 3 high).

    Levels are numbers, as :func:`p3d.analysis.representation.intensity_direction` and ``level_means`` take them:
    the corpus' integers, or the same as floats (1.0, from a table column with missing levels), labelled as
    integers. A level without a name (e.g. 1.5) is labelled by its value alone. Strings, booleans and NaN are
    refused: they have no intensity order (the figures run from the lowest level to the highest)."""
    names = {1: "low", 2: "medium", 3: "high"} if names is None else names
    out = []
    for lv in np.asarray(levels).tolist():
        if isinstance(lv, bool) or not isinstance(lv, numbers.Real) or not np.isfinite(lv):
            raise InputError(f"levels: expected numeric intensity levels (e.g. 1 = low .. 3 = high), got {lv!r}")
        key = int(lv) if float(lv).is_integer() else float(lv)
        out.append(f"level {key} ({names[key]})" if key in names else f"level {key}")
    return out


def plot_intensity_direction(result: Mapping[str, Any], levels: Any, *, title: str = "",
                             names: Mapping[int, str] | None = None) -> Figure:
    """Fig. 5b: speech features on (low->high direction, orthogonal principal axis), coloured by level,
    with each level's mean; ``result`` from :func:`p3d.analysis.representation.intensity_direction`.
    ``levels``: (N,) the level of each row of ``result["plane"]``; ``result["levels"]`` are numbers
    (:func:`_level_labels`: a non-numeric level raises :class:`InputError`)."""
    levels = np.asarray(levels)
    plane = np.asarray(result["plane"])
    if len(plane) != len(levels):
        raise InputError(f"levels: {len(levels)} rows, the result has {len(plane)}")
    labels = _level_labels(result["levels"], names)
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    colors = ["tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:green"]
    for i, lv in enumerate(result["levels"]):
        sel = levels == lv
        ax.scatter(plane[sel, 0], plane[sel, 1], s=4, alpha=0.35, color=colors[i % len(colors)], lw=0)
        ax.scatter(np.nanmean(plane[sel, 0]), np.nanmean(plane[sel, 1]), s=160, marker="*",
                   color=colors[i % len(colors)], edgecolor="k", label=labels[i])
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
    :func:`p3d.analysis.representation.gt_pair_stats` of train and test, concatenated). NaN and inf values
    cannot be drawn in a box: they are left out, with a warning saying how many, per model and split."""
    if not frames:
        raise InputError("frames: nothing to plot")
    fig = Figure(figsize=(1.9 * len(frames) + 1.5, 4), layout="constrained")
    ax = fig.add_subplot()
    data, positions, colors = [], [], []
    palette = {"train": "tab:blue", "test": "tab:orange"}
    dropped: list[str] = []
    for i, (name, df) in enumerate(frames.items()):
        for j, split in enumerate(order):
            vals = np.asarray(df.loc[df["split"] == split, value], dtype=float)
            finite = np.isfinite(vals)
            if not finite.all():
                dropped.append(f"{name} {split}: {int((~finite).sum())} of {finite.size}")
            data.append(vals[finite])
            positions.append(i * (len(order) + 1) + j)
            colors.append(palette.get(split, "0.5"))
    if dropped:
        log.warning("plot_pair_boxes: %s value(s) NaN or inf, left out of the boxes (%s)", value, "; ".join(dropped))
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


def plot_fig1b(cloud: Mapping[str, Any], centroids: Mapping[str, Any], levels: Mapping[str, Any],
               trajectories: Mapping[str, Any], *, axis_labels: tuple[str, str] = ("PC 1", "PC 2"),
               level_names: Mapping[int, str] | None = None, other: str = "mesh", title: str = "",
               max_points: int = 3000, seed: int = 0) -> Figure:
    """Fig. 1b from real embeddings: three panels in one 2-D projection (arbitrary units, the
    projection's coordinates, e.g. :class:`p3d.analysis.representation.Projection2D`).

    Args:
        cloud: ``{"points": (N, 2), "group": (N,) str ("" = no group), "modality": (N,) "speech" or other}``
            (a third modality is refused).
        centroids: {group: (2,) centroid of the group's points} (:func:`~p3d.analysis.representation.group_centroids`).
        levels: projected level means (:func:`~p3d.analysis.representation.level_means` of (N, 2) points):
            ``levels`` (L,), ``overall`` (L, 2), ``per_identity`` (I, L, 2) (NaN rows allowed).
        trajectories: ``offsets`` (O,) frames; ``cosine`` (W, O) full-space cosine similarity of W speech
            windows with their visual windows shifted by each offset
            (:func:`~p3d.analysis.representation.offset_trajectories`); optional ``mean``: a table with
            ``offset``, ``mean`` (and ``ci_low``/``ci_high``) columns
            (:func:`~p3d.analysis.representation.offset_similarity`).

    Panels: (a) the cloud by phoneme group (circles speech, squares ``other``) with group centroids;
    (b) level means from the lowest to the highest level, one thin arrow per identity and a thick mean
    arrow, over the group centroids (zoomed on the arrows); (c) cosine similarity against offset for each
    window and the mean. Panel (c) is not in the projection: two axes of a D-dimensional space do not
    keep cosine similarity, and a shifted-window trajectory drawn there misleads.
    """
    pts = np.asarray(cloud["points"], dtype=float)
    grp = np.asarray(cloud["group"], dtype=object)
    mod = np.asarray(cloud["modality"])
    if pts.ndim != 2 or pts.shape[1] != 2 or not (len(pts) == len(grp) == len(mod)) or len(pts) == 0:
        raise InputError(f"cloud: expected (N, 2) points with N groups and modalities, got {pts.shape}, "
                         f"{grp.shape}, {mod.shape}")
    overall = np.asarray(levels["overall"], dtype=float)
    per_id = np.asarray(levels["per_identity"], dtype=float)
    lv = np.asarray(levels["levels"])
    if overall.shape != (len(lv), 2) or per_id.ndim != 3 or per_id.shape[1:] != (len(lv), 2) or len(lv) < 2:
        raise InputError(f"levels: expected overall (L, 2) and per_identity (I, L, 2) with L >= 2, got "
                         f"{overall.shape} and {per_id.shape}")
    offs = np.asarray(trajectories["offsets"])
    cos_in = np.asarray(trajectories["cosine"], dtype=float)
    if offs.ndim != 1 or len(offs) == 0 or cos_in.ndim != 2 or cos_in.shape[1] != len(offs):
        raise InputError(f"trajectories: expected offsets (O,) and cosine (W, O), got {offs.shape} and {cos_in.shape}")
    level_labels = _level_labels(lv, level_names)
    if np.any(np.diff(lv.astype(float)) <= 0):  # panel (b)'s arrows run from the first level to the last
        raise InputError(f"levels: expected ascending levels (low -> high), got {lv.tolist()}")

    colors = _group_colors(grp, list(centroids))
    fig = Figure(figsize=(15, 5.2), layout="constrained")
    ax_a, ax_b, ax_c = fig.subplots(1, 3)
    # (a) phoneme groups
    _scatter_groups(ax_a, pts, grp, mod, other, np.random.default_rng(seed).permutation(len(pts))[:max_points],
                    size=10, bg_size=3, alpha=0.55, labels=False, colors=colors, where="cloud")
    _centroid_labels(ax_a, centroids, size=11, alpha=1.0, colors=colors)
    ax_a.set_title("(a) phoneme groups (label = group centroid)\ncircles: speech, squares: " + other, fontsize=10)

    # (b) intensity direction
    _centroid_labels(ax_b, centroids, size=9, alpha=0.45, colors=colors)
    for row in per_id:
        ok = np.isfinite(row).all(axis=1)
        if ok.sum() >= 2:
            r = row[ok]
            ax_b.plot(r[:, 0], r[:, 1], color="0.55", lw=0.8)
            ax_b.annotate("", xy=r[-1], xytext=r[-2], arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 0.8})
    level_colors = ["tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:green"]
    ax_b.plot(overall[:, 0], overall[:, 1], color="k", lw=2.2, zorder=3)
    ax_b.annotate("", xy=overall[-1], xytext=overall[-2], zorder=4,
                  arrowprops={"arrowstyle": "-|>", "color": "k", "lw": 2.2, "mutation_scale": 18})
    for i, label in enumerate(level_labels):
        ax_b.scatter(*overall[i], s=90, color=level_colors[i % len(level_colors)], edgecolor="k", zorder=5,
                     label=label)
    ax_b.plot([], [], color="0.55", lw=0.8, label=f"one identity ({len(per_id)})")
    ax_b.legend(frameon=False, fontsize=8, loc="best")
    _zoom(ax_b, np.concatenate([per_id.reshape(-1, 2), overall]), centroids)
    ax_b.set_title("(b) intensity: level means, low -> high\n(thick: all identities)", fontsize=10)

    # (c) temporal sensitivity, in the full space: a 2-D projection does not keep cosine similarity
    cos = np.asarray(trajectories["cosine"], dtype=float)
    for w in range(len(cos)):
        ax_c.plot(offs, cos[w], lw=1, alpha=0.7, label=f"window {w + 1}")
    mean = trajectories.get("mean")
    if mean is not None:
        ax_c.plot(mean["offset"], mean["mean"], color="k", lw=2.4, label="mean over test clips")
        if "ci_low" in mean and np.isfinite(np.asarray(mean["ci_low"], dtype=float)).any():
            ax_c.fill_between(mean["offset"], mean["ci_low"], mean["ci_high"], color="k", alpha=0.15, lw=0)
    ax_c.axvline(0, color="k", lw=0.8, ls=":")
    ax_c.set_xlabel(f"{other} offset (frames; > 0: {other} later)")
    ax_c.set_ylabel(f"cosine similarity (speech, {other})")
    ax_c.legend(frameon=False, fontsize=8, loc="best")
    ax_c.set_title(f"(c) timing: {other} window shifted against speech\n(full-dimensional cosine)", fontsize=10)
    for ax in (ax_a, ax_b):
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        ax.set_aspect("equal", adjustable="box")
    handles = [Line2D([], [], marker="o", ls="", color=c, label=f"/{n}/") for n, c in colors.items()
               if n in centroids]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def _centroid_labels(ax: Any, centroids: Mapping[str, Any], *, size: float, alpha: float,
                     colors: Mapping[str, str]) -> None:
    from matplotlib import patheffects

    for name, c in centroids.items():
        c = np.asarray(c, dtype=float)
        ax.scatter(*c, s=size * 9, marker="X", color=colors.get(name, "0.4"), edgecolor="k", lw=0.5,
                   alpha=alpha, zorder=3)
        ax.annotate(f"/{name}/", c, xytext=(4, 3), textcoords="offset points", fontsize=size, alpha=alpha,
                    color=colors.get(name, "0.3"), fontweight="bold", zorder=3,
                    path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")])


def _zoom(ax: Any, data: np.ndarray, centroids: Mapping[str, Any]) -> None:
    """Axis limits around ``data`` (finite rows) and the centroids, with a margin."""
    pts = [data[np.isfinite(data).all(axis=1)]] + [np.asarray(c, dtype=float)[None] for c in centroids.values()]
    allp = np.concatenate(pts)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    pad = 0.08 * max(float((hi - lo).max()), 1e-9)
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
