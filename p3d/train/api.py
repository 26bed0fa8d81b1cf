"""Train from Python (notebooks): :func:`fit` is ``p3d train KIND`` as a function that reuses finished runs.

    from p3d.train.api import fit
    stage1 = fit("stage1", "cpu", "data/cpu/synth-lrs3", "runs/cpu/stage1")
    critic = fit("stage2", "cpu", "data/cpu/synth-lrs3", "runs/cpu/stage2", stage1=stage1)

A run folder whose ``final.pt`` was written for the same request (``request.json``: kind, preset,
data, options) is reused without loading any data; an unfinished one resumes from its last
checkpoint (:func:`p3d.train.trainer.train`); a folder holding another request is refused rather
than silently mixed. ``force=True`` trains again from scratch in the same folder.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from p3d.errors import InputError

log = logging.getLogger(__name__)


def _request(kind: str, preset: str, data: str | os.PathLike[str], options: dict[str, Any]) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        return str(Path(v).resolve()) if isinstance(v, os.PathLike) or (isinstance(v, str) and os.sep in v) else v

    return {"kind": kind, "preset": preset, "data": str(Path(data).resolve()),
            "options": {k: plain(v) for k, v in sorted(options.items()) if v is not None}}


def claim_run_dir(out: Path, request: dict[str, Any], *, force: bool = False, before_write: Any = None) -> bool:
    """Guard a run folder for ``request``: True if it holds the finished run (``final.pt``) of the same
    request; False after making it ready to (re)start (``request.json`` written; an unfinished run of
    the same request is left to resume). A folder of another request is refused; ``force`` empties it
    first. ``before_write`` is called before ``request.json`` is written (extra checks)."""
    from p3d.atomic import write_json

    req_path = out / "request.json"
    if force and out.exists():
        shutil.rmtree(out)
    if req_path.exists():
        try:
            previous = json.loads(req_path.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{req_path}: corrupt; delete {out} or pass force=True") from None
        if previous != request:
            raise InputError(f"{out}: holds a run of another request ({previous}); use another folder or force=True")
        if (out / "final.pt").exists():
            return True
    if before_write is not None:
        before_write()
    out.mkdir(parents=True, exist_ok=True)
    write_json(req_path, request)
    return False


def fit(kind: str, preset: str, data: str | os.PathLike[str], out: str | os.PathLike[str], *,
        force: bool = False, progress: bool = False, **options: Any) -> Path:
    """Train ``kind`` (``stage1``, ``stage2``, ``syncnet3d``, ``no2d``, ``finetune``, ``evaluator``) at
    ``preset`` on the corpus ``data`` into the run folder ``out``; return ``out/final.pt``.

    ``options`` are :func:`p3d.train.representation.build`'s keyword arguments (``stage1``, ``init``,
    ``steps``, ``seed``, ``identities``, ...). Reuses a finished run of the same request, resumes an
    unfinished one.
    """
    from p3d.train.cli import _check_run_dir
    from p3d.train.representation import build
    from p3d.train.trainer import train

    out = Path(out)
    final = out / "final.pt"
    if claim_run_dir(out, _request(kind, preset, data, options), force=force, before_write=lambda: _check_run_dir(out, kind)):
        log.info("%s: reusing the finished run %s", kind, final)
        return final
    job = build(kind, preset, data, progress=progress, **options)
    result = train(job.model, job.data, job.step_fn, job.cfg, out, extra_config=job.extra_config,
                   params=job.params, progress=progress)
    path = job.finalize(out)
    log.info("%s: %d steps, last loss %.4f; wrote %s", kind, result["step"], result["loss"], path)
    return path


#: The critics of Table 3 by the paper's names: "ours" (stage 2 on the frozen stage-1 speech encoder),
#: "syncnet3d" (3D SyncNet), "no2d" (w/o 2D prior).
CRITICS: tuple[str, ...] = ("ours", "syncnet3d", "no2d")
#: The loss critics train on one interleaved half of the training identities and the PLRS evaluator on
#: the other, so the metric never grades a model with data its training signal saw.
CRITIC_IDENTITIES = "half1"
EVALUATOR_IDENTITIES = "half2"


def train_stage1(preset: str, corpus: str | os.PathLike[str], runs: str | os.PathLike[str], *,
                 progress: bool = False, **options: Any) -> Path:
    """Stage 1 on ``corpus`` (a corpus with lip video, e.g. synth-lrs3) into ``runs/stage1``."""
    return fit("stage1", preset, corpus, Path(runs) / "stage1", progress=progress, **options)


def train_critic(critic: str, preset: str, corpus: str | os.PathLike[str], runs: str | os.PathLike[str], *,
                 identities: str = CRITIC_IDENTITIES, progress: bool = False, **options: Any) -> Path:
    """Train one of :data:`CRITICS` on ``corpus`` into ``runs/<critic>``; "ours" first trains (or
    reuses) stage 1 in ``runs/stage1``. Returns the critic's ``final.pt``."""
    if critic not in CRITICS:
        raise InputError(f"critic: unknown critic {critic!r} (choose from {', '.join(CRITICS)})")
    runs = Path(runs)
    if critic == "ours":
        stage1 = train_stage1(preset, corpus, runs, progress=progress)
        return fit("stage2", preset, corpus, runs / "ours", stage1=stage1, identities=identities,
                   progress=progress, **options)
    return fit(critic, preset, corpus, runs / critic, identities=identities, progress=progress, **options)


def train_evaluator(preset: str, corpus: str | os.PathLike[str], runs: str | os.PathLike[str], *,
                    separate_stage1: bool = False, progress: bool = False, **options: Any) -> Path:
    """The independent PLRS evaluator (``p3d train evaluator``: other seed, batch size and identity
    half than the loss critics) into ``runs/evaluator``. Its frozen speech encoder comes from the
    shared stage-1 run, or with ``separate_stage1`` from a stage 1 trained on the evaluator's own
    identity half with another seed (``runs/stage1_evaluator``)."""
    runs = Path(runs)
    if separate_stage1:
        stage1 = fit("stage1", preset, corpus, runs / "stage1_evaluator", identities=EVALUATOR_IDENTITIES, seed=1,
                     progress=progress)
    else:
        stage1 = train_stage1(preset, corpus, runs, progress=progress)
    return fit("evaluator", preset, corpus, runs / "evaluator", stage1=stage1, identities=EVALUATOR_IDENTITIES,
               progress=progress, **options)
