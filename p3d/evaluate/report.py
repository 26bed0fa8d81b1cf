"""The outputs of ``p3d eval``: the output folder is checked before any work (:func:`check_report_dir`) and
``per_clip.csv``, ``summary.json`` and the plots are written as one unit (:func:`write_report`)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from p3d.atomic import check_out_dir, remove_dead_stages, stage_dir
from p3d.errors import InputError
from p3d.evaluate.config import EvalReport

__all__ = ["check_out_dir", "check_report_dir", "write_report"]


def check_report_dir(out: Path, *, plots: bool = False, plot_names: tuple[str, ...] = ()) -> None:
    """Refuse (:class:`InputError`) an output folder :func:`write_report` cannot fill, before any work and again
    before it replaces anything: ``out`` must be a writable folder or creatable (:func:`check_out_dir`), and the
    names it writes must not be taken by the wrong kind of entry: a folder named ``per_clip.csv`` or
    ``summary.json``, a folder named like a plot (``plots/mtm_*.png``: every run replaces or removes those, whether
    or not it writes plots; ``plot_names``: the plots about to be written), or, with ``plots`` (plots will be
    written: ``--plots`` with MTM among the metrics), a file named ``plots``. Each such collision was a traceback
    after the earlier run's ``summary.json`` had been withdrawn."""
    check_out_dir(out)
    out = Path(os.path.abspath(out))
    if not out.is_dir():
        return  # created by write_report: nothing in it yet
    fix = "move or rename it, or choose another --out"
    for name in ("per_clip.csv", "summary.json"):
        if (out / name).is_dir():
            raise InputError(f"--out {out}: {out / name} is a folder where p3d eval writes its {name}; {fix}")
    folder = out / "plots"
    if plots and (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        raise InputError(f"--out {out}: {folder} is a file where --plots writes the MTM plots folder; {fix}")
    if folder.is_dir():
        taken = sorted(p.name for p in folder.glob("mtm_*.png") if p.is_dir())
        taken += sorted(n for n in plot_names if (folder / n).is_dir() and n not in taken)
        if taken:
            raise InputError(f"--out {out}: {folder / taken[0]} is a folder where p3d eval writes (or removes) an "
                             f"MTM plot; {fix}")


def write_report(report: EvalReport, out: Path, *, plots: bool = False, fps: float | None = None) -> None:
    """Write ``per_clip.csv``, ``summary.json`` and (``plots``) ``plots/mtm_<pred>.png`` as one unit.

    Everything is written into a hidden sibling folder ``.OUT.tmp-<pid>`` first, then moved into ``out``
    with :func:`os.replace`: the old ``summary.json`` is removed first, ``per_clip.csv`` and the plots
    are moved in (stale ``plots/mtm_*.png`` of an earlier run are deleted), and ``summary.json`` comes
    last. So whenever ``OUT/summary.json`` exists, ``per_clip.csv`` and ``plots/`` are from the same run
    (``summary.json``'s ``outputs.per_clip_sha256`` lets a reader check it); a killed run leaves at most
    the hidden staging folder, which the next run removes. Other files in ``out`` are left alone. An output name
    taken by the wrong kind of entry (:func:`check_report_dir`) is refused before anything in ``out`` is replaced.
    """
    import hashlib

    from p3d.atomic import write_json

    out = Path(os.path.abspath(out))
    check_report_dir(out, plots=plots and bool(report.mtm_results))  # the plots drawn: MTM's, where computed
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_stages(out)
    stage = stage_dir(out)
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        report.per_clip.to_csv(stage / "per_clip.csv", index=False)
        new_plots: list[str] = []
        if plots and report.mtm_results:
            from p3d.viz.mtm_plot import save_mtm_plot

            fps = fps if fps is not None else report.summary.get("config", {}).get("fps")
            for stem, res in report.mtm_results.items():
                save_mtm_plot(res, stage / "plots" / f"mtm_{stem}.png", title=stem, fps=fps)
                new_plots.append(f"mtm_{stem}.png")
        summary = dict(report.summary)
        summary["outputs"] = {
            "per_clip": "per_clip.csv",
            "per_clip_sha256": hashlib.sha256((stage / "per_clip.csv").read_bytes()).hexdigest(),
            "plots": len(new_plots),
        }
        write_json(stage / "summary.json", summary)

        # again just before the commit: the folder may have changed during the run
        check_report_dir(out, plots=bool(new_plots), plot_names=tuple(new_plots))
        out.mkdir(exist_ok=True)
        (out / "summary.json").unlink(missing_ok=True)  # withdraw the old run's commit marker first
        os.replace(stage / "per_clip.csv", out / "per_clip.csv")
        keep = set(new_plots)
        if (out / "plots").is_dir():
            for stale in (out / "plots").glob("mtm_*.png"):
                if stale.name not in keep:
                    stale.unlink(missing_ok=True)
        if new_plots:
            (out / "plots").mkdir(exist_ok=True)
            for name in new_plots:
                os.replace(stage / "plots" / name, out / "plots" / name)
        os.replace(stage / "summary.json", out / "summary.json")  # commit
    finally:
        shutil.rmtree(stage, ignore_errors=True)
