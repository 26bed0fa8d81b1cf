"""Train from Python (notebooks): :func:`fit` is ``p3d train KIND`` as a function that reuses finished runs.

    from p3d.train.api import fit
    stage1 = fit("stage1", "cpu", "data/cpu/synth-lrs3", "runs/cpu/stage1")
    critic = fit("stage2", "cpu", "data/cpu/synth-lrs3", "runs/cpu/stage2", stage1=stage1)

A run folder whose ``final.pt`` was written for the same request (``request.json``: kind, preset,
data, options) is reused without loading any data; an unfinished one resumes from its last
checkpoint (:func:`p3d.train.trainer.train`); a longer ``steps`` extends a finished one; a folder
holding other settings is refused rather than silently mixed (:func:`claim_run_dir`, the same check
as ``p3d train``). ``force=True`` trains again from scratch in the same folder.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from p3d.errors import InputError
from p3d.registry import CRITICS
from p3d.train.request import run_request

log = logging.getLogger(__name__)


#: Request options that do not change the trained weights (or that the trainer compares in their resolved
#: form, as ``device``): a request that differs only in these is the same request.
NEUTRAL_OPTIONS: frozenset[str] = frozenset({"workers", "threads", "device", "progress", "cache_dir",
                                             "speech_cache_dir", "checkpoint_every"})


def _request(kind: str, preset: str, data: str | os.PathLike[str], options: dict[str, Any]) -> dict[str, Any]:
    from p3d.train.critics import build

    return run_request(kind, preset, data, options, build)


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def claim_run_dir(out: Path, request: dict[str, Any], *, force: bool = False, before_write: Any = None) -> bool:
    """Guard the run folder ``out`` for ``request`` before any data are loaded; True if it holds the finished run
    (``final.pt``) of the same request.

    The request is compared with ``request.json`` option by option (:data:`NEUTRAL_OPTIONS` aside): a folder
    holding other settings is refused (:class:`InputError`, ``name: old -> new`` for each); the only change
    accepted is a longer ``steps`` than the run recorded (``config.json``), an extension (the trainer records
    it). False after making the folder ready to (re)start: ``request.json`` is written for a new folder or an
    extension; an unfinished run of the same request is left to resume. A ``steps`` that only the trainer can
    resolve (a preset default against an explicit value) is left to its check
    (:func:`p3d.train.trainer.resume_plan`, which compares every resolved setting). ``force`` empties the
    folder first. ``before_write`` is called before ``request.json`` is written (extra checks)."""
    from p3d.atomic import write_json
    from p3d.train.trainer import read_run_config

    out = Path(out)
    req_path = out / "request.json"
    if force and out.exists():
        shutil.rmtree(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    recorded = read_run_config(out) if out.exists() else None
    previous = None
    if req_path.exists():
        try:
            previous = json.loads(req_path.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{req_path}: corrupt; delete {out} or pass force=True") from None
    if previous is None:
        if recorded is None:  # a new folder
            if before_write is not None:
                before_write()
            if _is_main():
                out.mkdir(parents=True, exist_ok=True)
                write_json(req_path, request)
        return False  # a run recorded without request.json: the trainer's check decides
    old, new = _flat(previous), _flat(request)
    steps_keys = {k for k in (*old, *new) if k.rsplit(".", 1)[-1] == "steps"}
    changes = [f"{k.rsplit('.', 1)[-1]}: {old.get(k, '(default)')} -> {new.get(k, '(default)')}"
               for k in dict.fromkeys([*old, *new])
               if k not in steps_keys and k.rsplit(".", 1)[-1] not in NEUTRAL_OPTIONS and old.get(k) != new.get(k)]
    new_steps = next((new[k] for k in steps_keys if k in new), None)
    old_steps = recorded["train"]["steps"] if recorded is not None else next(
        (old[k] for k in steps_keys if k in old), None)
    if new_steps is not None and old_steps is not None and new_steps < old_steps:
        changes.append(f"steps: {old_steps} -> {new_steps} (a run is extended, never shortened)")
    if changes:
        raise InputError(f"--out {out}: holds a run with other settings: {'; '.join(changes)} (repeat its settings, "
                         f"extend it with a longer --steps, or use another --out / force=True)")
    if new_steps is not None and old_steps is not None and new_steps > old_steps:
        if before_write is not None:
            before_write()
        if _is_main():
            write_json(req_path, request)
        return False
    if new_steps is None and next((old[k] for k in steps_keys if k in old), None) is not None:
        return False  # the preset's default steps against the recorded ones: the trainer compares them
    return (out / "final.pt").exists()


def record_request(out: Path, request: dict[str, Any]) -> None:
    """Write ``request.json`` after a run that had none (a folder trained before requests were recorded)."""
    from p3d.atomic import write_json

    path = Path(out) / "request.json"
    if _is_main() and not path.exists():
        write_json(path, request)


def fit(kind: str, preset: str, data: str | os.PathLike[str], out: str | os.PathLike[str], *,
        force: bool = False, progress: bool = False, **options: Any) -> Path:
    """Train ``kind`` (``stage1``, ``stage2``, ``syncnet3d``, ``no2d``, ``finetune``, ``evaluator``) at
    ``preset`` on the corpus ``data`` into the run folder ``out``; return ``out/final.pt``.

    ``options`` are :func:`p3d.train.critics.build`'s keyword arguments (``stage1``, ``init``,
    ``steps``, ``seed``, ``identities``, the stopping rule ``stop="plateau"`` with ``steps`` as the cap,
    ``eval_every``, ``patience``, ...: :mod:`p3d.train.convergence`). Reuses a finished run of the same
    request, resumes an unfinished one, extends a finished one to a longer ``steps``, and refuses a folder
    holding other settings (:func:`claim_run_dir`, then the trainer's check of the resolved settings).
    """
    from p3d.train.critics import build
    from p3d.train.trainer import train

    out = Path(out)
    final = out / "final.pt"
    request = _request(kind, preset, data, options)
    if claim_run_dir(out, request, force=force):
        log.info("%s: reusing the finished run %s", kind, final)
        return final
    job = build(kind, preset, data, progress=progress, **options)
    result = train(job.model, job.data, job.step_fn, job.cfg, out, extra_config=job.extra_config,
                   params=job.params, progress=progress, validate=getattr(job, "validate", None))
    path = job.finalize(out)
    record_request(out, request)
    log.info("%s: %d steps, last loss %.4f; wrote %s", kind, result["step"], result["loss"], path)
    return path


#: The critics of Table 3 (:data:`CRITICS`, from :mod:`p3d.registry`): "ours" (stage 2 on the frozen stage-1
#: speech encoder), "syncnet3d" (3D SyncNet), "no2d" (w/o 2D prior).
#: The options of the stopping rule (:mod:`p3d.train.convergence`), passed to every stage of a pipeline.
STOP_OPTIONS: tuple[str, ...] = ("stop", "eval_every", "patience", "min_rel_improvement", "smooth")
#: The loss critics train on one interleaved half of the training identities and the PLRS evaluator on
#: the other, so the metric never grades a model with data its training signal saw.
CRITIC_IDENTITIES = "half1"
EVALUATOR_IDENTITIES = "half2"


def train_stage1(preset: str, corpus: str | os.PathLike[str], runs: str | os.PathLike[str], *,
                 progress: bool = False, **options: Any) -> Path:
    """Stage 1 on ``corpus`` (a corpus with lip video, e.g. synth-lrs3) into ``runs/stage1``."""
    return fit("stage1", preset, corpus, Path(runs) / "stage1", progress=progress, **options)


def train_critic(critic: str, preset: str, corpus: str | os.PathLike[str], runs: str | os.PathLike[str], *,
                 identities: str = CRITIC_IDENTITIES, seed: int | None = None, progress: bool = False,
                 **options: Any) -> Path:
    """Train one of :data:`CRITICS` on ``corpus`` into ``runs/<critic>``; "ours" first trains (or
    reuses) stage 1 in ``runs/stage1``. Returns the critic's ``final.pt``.

    ``seed`` (None: the recipe's) seeds every stage of the pipeline (stage 1 and stage 2 for "ours"): one
    independent critic pipeline per seed, each in its own ``runs`` folder. The stopping-rule options
    (:data:`STOP_OPTIONS`) apply to stage 1 as well; the other ``options`` to the critic's own stage."""
    if critic not in CRITICS:
        raise InputError(f"critic: unknown critic {critic!r} (choose from {', '.join(CRITICS)})")
    runs = Path(runs)
    if critic == "ours":
        stop = {k: v for k, v in options.items() if k in STOP_OPTIONS}
        stage1 = train_stage1(preset, corpus, runs, seed=seed, progress=progress, **stop)
        return fit("stage2", preset, corpus, runs / "ours", stage1=stage1, identities=identities, seed=seed,
                   progress=progress, **options)
    return fit(critic, preset, corpus, runs / critic, identities=identities, seed=seed, progress=progress, **options)


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
        stop = {k: v for k, v in options.items() if k in STOP_OPTIONS}
        stage1 = train_stage1(preset, corpus, runs, progress=progress, **stop)
    return fit("evaluator", preset, corpus, runs / "evaluator", stage1=stage1, identities=EVALUATOR_IDENTITIES,
               progress=progress, **options)
