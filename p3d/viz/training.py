"""Training curves from a run's ``metrics.csv`` (:mod:`p3d.train.trainer`) and validation curves from its
``val.csv`` (:mod:`p3d.train.convergence`)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    try:
        df = pd.read_csv(metrics_csv)
    except pd.errors.EmptyDataError:  # created, nothing written yet
        raise InputError(f"{metrics_csv}: no logged steps yet (an empty file)") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{metrics_csv}: not a metrics CSV ({str(exc).splitlines()[0]})") from None
    cols = [c for c in columns if c in df.columns]
    if not cols or "step" not in df.columns:
        raise InputError(f"{metrics_csv}: none of the columns {list(columns)} (has {list(df.columns)})")
    if df.empty:
        raise InputError(f"{metrics_csv}: no logged steps yet (a header only)")
    for c in ("step", *cols):
        bad = df[c][pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()]
        if len(bad):
            raise InputError(f"{metrics_csv}: column {c!r} holds a non-numeric value ({bad.iloc[0]!r})")
    fig = Figure(figsize=(3.6 * len(cols), 3), layout="constrained")
    for ax, c in zip(fig.subplots(1, len(cols), squeeze=False)[0], cols):
        vals = np.asarray(df[c], dtype=float)
        ax.plot(df["step"], vals, lw=1)
        ax.set_xlabel("step")
        ax.set_title(c)
    if title:
        fig.suptitle(title)
    return fig


def _unfinished(run: Any) -> bool:
    """Whether a run (:class:`p3d.train.convergence.RunConvergence`) was interrupted before it ended: no ``final.pt``,
    its last logged step short of its cap, and (``stop="plateau"``) its rule not fired there. A run that reached
    its cap or its rule's stop without ``final.pt`` yet (killed while writing it) has its whole curve: it ended."""
    return not run.finished and run.steps < run.max_steps and not (run.stop == "plateau" and run.converged)


def plot_validation_curves(run_dirs: Sequence[str | os.PathLike[str]], *, labels: Sequence[str] | None = None,
                           log_y: bool = False, title: str = "") -> Figure:
    """The validation curves of runs (``RUN_DIR/val.csv``, :mod:`p3d.train.convergence`): one panel per
    validation metric (runs of different metrics do not share an axis), per run the raw values (thin) and
    the moving median the stopping rule uses (thick), a dot at the best step and a vertical line at the
    step where training ended (solid: the plateau rule stopped it; dashed: it hit the cap or was a fixed
    step count; dash-dot, and "(unfinished)" after its name: it was interrupted before either, no ``final.pt``),
    and for a run continued from another's stop (the equal-length runs) a dotted line at that stop.
    ``log_y``: every panel's y axis logarithmic; a non-positive value (a validation loss of 0) has no place on it:
    its point is clipped below the axis (matplotlib's ``nonpositive="clip"``) and the axis limits follow the
    positive values. Runs without validation are an error."""
    from p3d.train.convergence import read_stop, read_val, run_convergence, smoothed

    runs = [run_convergence(d) for d in run_dirs]
    if not runs:
        raise InputError("plot_validation_curves: no run folders given")
    names = list(labels) if labels is not None else [os.path.basename(os.path.normpath(r.run)) for r in runs]
    if len(names) != len(runs):
        raise InputError(f"labels: {len(names)} labels for {len(runs)} runs")
    missing = [r.run for r in runs if r.best_step is None]
    if missing:
        raise InputError(f"{missing[0]}: no validation curve (val.csv); train with --eval-every or --stop plateau")
    metrics = list(dict.fromkeys(r.metric or "val" for r in runs))
    fig = Figure(figsize=(4.2 * len(metrics), 3.2), layout="constrained")
    axes = dict(zip(metrics, fig.subplots(1, len(metrics), squeeze=False)[0]))
    for i, (run, name) in enumerate(zip(runs, names)):
        ax = axes[run.metric or "val"]
        color = f"C{i % 10}"
        val = read_val(run.run)
        steps = np.asarray(val["step"], dtype=float)
        raw = np.asarray(val["val"], dtype=float)
        smooth = smoothed(raw, read_stop(run.run)["smooth"])
        ax.plot(steps, raw, lw=0.6, alpha=0.5, color=color)
        cut = _unfinished(run)
        ax.plot(steps, smooth, lw=1.6, color=color, label=f"{name} (unfinished)" if cut else name)
        if run.best_step is not None:
            at = int(np.flatnonzero(steps == run.best_step)[0])
            ax.plot([run.best_step], [smooth[at]], "o", ms=4, color=color)
        ax.axvline(run.steps, color=color, lw=0.8,
                   ls="-." if cut else "-" if run.converged and run.stop == "plateau" else "--")
        if run.continued_from is not None:  # an equal-length continuation: where its own rule had stopped it
            ax.axvline(run.continued_from, color=color, lw=0.8, ls=":")
    for metric, ax in axes.items():
        ax.set_xlabel("step")
        ax.set_title(metric)
        if log_y:
            ax.set_yscale("log")
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_validation_overview(run_dirs: Sequence[str | os.PathLike[str]], *, panels: Sequence[str],
                             labels: Sequence[str], title: str = "", ncols: int = 3) -> Figure:
    """Many runs' validation curves in one readable figure: one panel per distinct ``panels[i]`` (e.g. one
    model's talkers, or the critics), in each the smoothed curve of every run (the stopping rule's moving median,
    :mod:`p3d.train.convergence`), coloured by ``labels[i]``: runs sharing a label (one arm's seeds) share a colour
    and one legend entry, in every panel that draws the label. Marks: a filled dot where the plateau rule stopped a run, an open square where a run hit
    its cap or ran a fixed length, an open triangle (and a legend entry "unfinished (interrupted)" in its panel)
    where a run was interrupted before either (no ``final.pt``), a cross where an equal-length continuation's own
    rule had stopped it. A run that
    another run of ``run_dirs`` continues (:data:`p3d.train.run_folder.CONTINUED_FROM`) is drawn once, as the
    continuation, whose curve holds its own. :func:`plot_validation_curves` shows a few runs in full (raw values,
    best steps)."""
    import json
    import math

    from p3d.train.convergence import read_stop, read_val, run_convergence, smoothed
    from p3d.train.run_folder import CONTINUED_FROM

    dirs = [os.fspath(d) for d in run_dirs]
    if not dirs:
        raise InputError("plot_validation_overview: no run folders given")
    if not len(panels) == len(labels) == len(dirs):
        raise InputError(f"panels, labels: {len(panels)} panels and {len(labels)} labels for {len(dirs)} runs")
    # the continued runs, by folder name (the marker records the source's absolute path, which a copied or
    # cloned runs/ folder no longer has)
    sources = {os.path.basename(os.path.normpath(json.loads((Path(d) / CONTINUED_FROM).read_text())["run"]))
               for d in dirs if (Path(d) / CONTINUED_FROM).is_file()}
    shown = [(d, p, lab) for d, p, lab in zip(dirs, panels, labels)
             if os.path.basename(os.path.normpath(d)) not in sources]
    runs = [run_convergence(d) for d, _, _ in shown]
    missing = [r.run for r in runs if r.best_step is None]
    if missing:
        raise InputError(f"{missing[0]}: no validation curve (val.csv); train with --eval-every or --stop plateau")
    order = list(dict.fromkeys(p for _, p, _ in shown))
    cols = min(ncols, len(order))
    rows = math.ceil(len(order) / cols)
    fig = Figure(figsize=(4.4 * cols, 3.3 * rows), layout="constrained")
    axes = dict(zip(order, fig.subplots(rows, cols, squeeze=False).ravel()))
    for ax in list(fig.axes)[len(order):]:
        ax.set_visible(False)
    # a label drawn in several panels (an arm in every model's panel) has one colour in all of them, in first-seen
    # order; a label of one panel only takes the first colour its panel does not use yet
    panels_of: dict[str, set[str]] = {}
    for _, p, lab in shown:
        panels_of.setdefault(lab, set()).add(p)
    shared = [lab for lab in panels_of if len(panels_of[lab]) > 1]
    colours: dict[str, dict[str, str]] = {p: {lab: f"C{k % 10}" for k, lab in enumerate(shared) if p in panels_of[lab]}
                                          for p in order}
    legend: dict[str, set[str]] = {p: set() for p in order}
    cut_panels: set[str] = set()  # panels with an interrupted run
    for run, (d, panel, label) in zip(runs, shown):
        ax, seen = axes[panel], colours[panel]
        first = label not in legend[panel]
        legend[panel].add(label)
        if label not in seen:
            used = set(seen.values())
            seen[label] = next((f"C{k}" for k in range(10) if f"C{k}" not in used), f"C{len(seen) % 10}")
        colour = seen[label]
        val = read_val(d)
        steps = np.asarray(val["step"], dtype=float)
        smooth = smoothed(np.asarray(val["val"], dtype=float), read_stop(d)["smooth"])
        ax.plot(steps, smooth, lw=1.0, alpha=0.8, color=colour, label=label if first else "_nolegend_")
        ruled = run.converged and run.stop == "plateau"
        if _unfinished(run):
            ax.plot([steps[-1]], [smooth[-1]], ">", ms=4, color=colour, mfc="none")
            cut_panels.add(panel)
        else:
            ax.plot([steps[-1]], [smooth[-1]], "o" if ruled else "s", ms=4, color=colour,
                    mfc=colour if ruled else "none")
        if run.continued_from is not None and (at := np.flatnonzero(steps == run.continued_from)).size:
            ax.plot([run.continued_from], [smooth[int(at[0])]], "x", ms=5, color=colour)
        ax.set_ylabel(run.metric or "val")
    for panel, ax in axes.items():
        ax.set_xlabel("step")
        ax.set_title(panel)
        if panel in cut_panels:  # the mark explained where it is drawn (the label entries stay as they are)
            from matplotlib.lines import Line2D

            handles, names = ax.get_legend_handles_labels()
            mark = Line2D([], [], marker=">", ms=4, color="0.3", mfc="none", ls="")
            ax.legend([*handles, mark], [*names, "unfinished (interrupted)"], fontsize="x-small")
        else:
            ax.legend(fontsize="x-small")
    if title:
        fig.suptitle(title)
    return fig
