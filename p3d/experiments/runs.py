"""Training and evaluating one experiment: the critic pipelines, the loss weight, the talker run, its
predictions and evaluation (each reused when finished). Every path comes from :mod:`p3d.experiments.layout`;
nothing here trains a dependency the planner (:mod:`p3d.experiments.plan`) has not ordered before, except when
called directly (a notebook running one experiment), where the missing dependencies are trained in order."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p3d import paper
from p3d.errors import InputError
from p3d.experiments.layout import layout
from p3d.experiments.records import RunResult
from p3d.experiments.spec import (CRITIC_CORPUS, LOSS_CRITIC_CORPUS, LVE_TOLERANCE, MODEL_LABELS, STOP_FIELDS,
                                  TALKER_CORPORA, TalkerExperiment)
from p3d.experiments.summary import summarise
from p3d.stats import STATISTICS_VERSION

log = logging.getLogger(__name__)


def prepare_corpora(preset: str, dirs: Any, names: Sequence[str] = (CRITIC_CORPUS, *TALKER_CORPORA), *,
                    seed: int = 0, workers: int = 1, progress: bool = False) -> dict[str, Path]:
    """Build (or find complete) the synthetic corpora under ``data/<preset>``; name -> folder."""
    from p3d.synth import corpus as synth

    root = layout(dirs, preset).data
    return {name: Path(synth.build(name, preset, root, seed=seed, workers=workers, progress=progress))
            for name in names}


# -- critics ------------------------------------------------------------------------------------------
def _seed_option(critic_seed: int) -> int | None:
    """The ``seed`` option of critic pipeline ``critic_seed``: None (the recipe's) for pipeline 0, so its runs
    keep their recorded requests; pipeline c >= 1 trains every stage with seed 1000 c
    (:func:`p3d.train.api.critic_pipeline_seed`; the evaluator's pipeline uses none of them)."""
    from p3d.train.api import critic_pipeline_seed

    return critic_pipeline_seed(critic_seed)


def base_critic(critic: str, preset: str, data: str | os.PathLike[str], runs: str | os.PathLike[str],
                progress: bool = False, *, critic_seed: int = 0, **options: Any) -> Path:
    """The speech-mesh loss critic (paper Sec. 4) on ``synth-lrs3`` (identity half 1): ``runs/<critic>/final.pt`` (reused when finished).
    ``runs`` is the pipeline's folder (:meth:`RunLayout.critic_runs`); ``options``: :func:`p3d.train.api.fit`'s
    (stopping rule, ``steps``), at the model preset of ``preset``."""
    from p3d.train import api

    return api.train_critic(critic, preset, Path(data) / CRITIC_CORPUS, runs,
                            seed=_seed_option(critic_seed), progress=progress, **options)


def loss_critic(critic: str, preset: str, data: str | os.PathLike[str], runs: str | os.PathLike[str], *,
                progress: bool = False, critic_seed: int = 0, **options: Any) -> Path:
    """The critic used as a loss: :func:`base_critic` fine-tuned on the ``synth-voca`` train split (the paper
    fine-tunes on VOCASET train; ``finetune`` recipe of the preset) into ``runs/loss_critics/<critic>``.

    Args:
        critic: ``ours`` | ``syncnet3d`` | ``no2d``.
        data: the folder holding the corpora (``data/<preset>``).
        runs: the critic pipeline's run folder (``runs/<preset>`` for pipeline 0).
    """
    from p3d.train import api

    if critic not in api.CRITICS:
        raise InputError(f"critic: expected one of {', '.join(api.CRITICS)} for a loss critic, got {critic!r}")
    base = base_critic(critic, preset, data, runs, progress=progress, critic_seed=critic_seed, **options)
    # the stopping rule only: the cap is the recipe's steps, or at a preset that names one (full) its critic_cap
    # (p3d.registry.training_defaults, applied by api.fit; stage 1 has its own stage1_cap)
    finetune = {k: v for k, v in options.items() if k in api.STOP_OPTIONS}
    return api.fit("finetune", preset, Path(data) / LOSS_CRITIC_CORPUS,
                   Path(runs) / "loss_critics" / critic, init=base, seed=_seed_option(critic_seed),
                   progress=progress, **finetune)


def evaluator(preset: str, data: str | os.PathLike[str], runs: str | os.PathLike[str], progress: bool = False,
              **options: Any) -> Path:
    """The independent PLRS evaluator (``runs/evaluator/final.pt``) and its own stage 1
    (``runs/stage1_evaluator``): synth-lrs3 identity half 2, seed 1, nothing shared with the critic pipelines
    (:func:`p3d.train.api.train_evaluator`)."""
    from p3d.train import api

    return api.train_evaluator(preset, Path(data) / CRITIC_CORPUS, runs, progress=progress,
                               **options)


def critic_options(exp: TalkerExperiment) -> dict[str, Any]:
    """The critic trainings' options of ``exp``'s pipeline: its stopping rule and ``critic_steps`` (not its talker
    step cap, nor the preset's talker window and patience). Empty at the ``smoke``/``cpu`` presets (the recipes'
    fixed steps)."""
    opts = dict(exp.given_stop_options)
    if exp.critic_steps is not None:
        opts["steps"] = exp.critic_steps
    return opts


# -- the loss weight ----------------------------------------------------------------------------------
def _metrics(run: Path) -> Any:
    import pandas as pd

    path = Path(run) / "metrics.csv"
    if not path.exists():
        raise InputError(f"{path}: no training log (train the run first)")
    df = pd.read_csv(path)
    if df.empty:
        raise InputError(f"{path}: empty training log")
    return df


def loss_scale(run: str | os.PathLike[str]) -> float:
    """``L_model``: the median ``model_loss`` over the second half of a talker run's logged steps (its last
    stage, ``RUN_DIR/metrics.csv``), the scale a relative weight kappa multiplies."""
    df = _metrics(Path(run))
    col = "model_loss" if "model_loss" in df else "loss"
    late = df[df["step"] > df["step"].max() / 2][col].to_numpy(dtype=np.float64)
    late = late[np.isfinite(late)]
    if late.size == 0 or not np.median(late) > 0:
        raise InputError(f"{run}/metrics.csv: no positive {col} in the second half of training")
    return float(np.median(late))


def loss_ratio(run: str | os.PathLike[str]) -> float | None:
    """Median of ``W * L_percp / L_model`` over the second half of a critic run (None without a critic)."""
    df = _metrics(Path(run))
    if "percp_weighted" not in df:
        return None
    late = df[df["step"] > df["step"].max() / 2]
    ratio = (late["percp_weighted"] / late["model_loss"]).to_numpy(dtype=np.float64)
    ratio = ratio[np.isfinite(ratio)]
    return float(np.median(ratio)) if ratio.size else None


def resolve_weight(exp: TalkerExperiment, dirs: Any) -> float | None:
    """The absolute perceptual-loss weight W of ``exp`` (None without a critic). A relative weight needs the
    baseline run finished (:func:`train_experiment` of ``exp.baseline``)."""
    if exp.critic == "none":
        return None
    if exp.relative_weight is None:
        return exp.weight_or_default
    base = layout(dirs, exp.preset).run(exp.baseline)
    if not (base / "final.pt").exists():
        raise InputError(f"{exp.name}: relative weight {exp.relative_weight:g} needs the finished baseline run "
                         f"{base} (run {exp.baseline.name} first)")
    return float(exp.relative_weight) * loss_scale(base)


def grid_weight(spec: Any, dirs: Any, *, per_model: bool = False) -> float | dict[str, float] | None:
    """The loss weight of ``spec``'s grid, as :meth:`ExperimentSpec.experiment` takes it: the absolute W fixed in
    advance (``weight_rule="fixed"``: :meth:`ExperimentSpec.fixed_weight` of the synth-voca corpus), or the
    kappa notebook 06 chose on the val split (``"kappa"``: :func:`p3d.experiments.tables.chosen_kappa`; None
    while none is chosen, i.e. the paper's 1e-7)."""
    if spec.weight_rule == "fixed":
        from p3d.corpus import Corpus

        return spec.fixed_weight(Corpus.open(layout(dirs, spec.preset).corpus(LOSS_CRITIC_CORPUS)))
    from p3d.experiments.tables import chosen_kappa

    return chosen_kappa(dirs.tables, per_model=per_model)


def kappa_selection(results: Sequence[Mapping[str, Any]], models: Sequence[str], candidates: Sequence[float], *,
                    lve_tolerance: float = LVE_TOLERANCE) -> tuple[dict[str, float], Any, str]:
    """Choose the relative loss weight kappa of each of ``models`` from the **val** runs among ``results``
    (:meth:`ExperimentSpec.selection`'s: the baseline and critic ``ours`` at each of ``candidates``) with
    :func:`p3d.experiments.tables.select_kappa`.

    Returns ``({model: kappa}, the evidence tables of the models one below the other, their note)``: the note gives
    W = kappa x L_model with each baseline's L_model (:func:`loss_scale`), the paper's weight as a kappa for
    FaceFormer, the rule, the choice and the number of val clips. A missing run is an :class:`InputError`."""
    import pandas as pd

    from p3d.experiments.tables import find, select_kappa

    val = [r for r in results if r["experiment"].get("split", "test") == "val"]
    kappas: dict[str, float] = {}
    parts, scales = [], {}
    for m in models:
        base = find(val, model=m, critic="none")
        found = [find(val, model=m, critic="ours", relative_weight=float(k)) for k in candidates]
        missing = ([] if base is not None else ["the baseline"]) + [f"kappa {k:g}" for k, r in zip(candidates, found)
                                                                    if r is None]
        if missing:
            raise InputError(f"kappa_selection: no val run of {m} for {', '.join(missing)} (run the selection grid)")
        kappas[m], table = select_kappa(base, found, lve_tolerance=lve_tolerance)
        scales[m] = loss_scale(base["run_dir"])
        parts.append(table)
    ff = scales.get("faceformer")
    n_val = find(val, model=models[0], critic="none")["summary"]["n_clips"]
    note = ("W = kappa x L_model, L_model = the median model loss over the second half of the baseline run ("
            + ", ".join(f"{MODEL_LABELS[m]} {v:.3g}" for m, v in scales.items()) + ")."
            + (f" The paper's {paper.HYPER.loss_weight:g} would be kappa = {paper.HYPER.loss_weight / ff:.3g} for "
               "FaceFormer here." if ff else "")
            + f" Rule: highest val PLRS with val LVE at most {lve_tolerance:.0%} above the baseline's; chosen: "
            + ", ".join(f"{MODEL_LABELS[m]} kappa = {k:g}" for m, k in kappas.items())
            + ". `W*L_percp / L_model`: median ratio of the weighted perceptual loss to the model loss over the second "
            f"half of training. Val: {n_val} clips of unseen speakers.")
    return kappas, pd.concat(parts, ignore_index=True), note


# -- training -----------------------------------------------------------------------------------------
def _request(exp: TalkerExperiment, dirs: Any, critic_ckpt: Path | None, weight: float | None) -> dict[str, Any]:
    lay = layout(dirs, exp.preset)
    request = {"kind": "talker", "model": exp.model, "critic": exp.critic, "preset": exp.preset, "seed": exp.seed,
               "steps": exp.steps, "train": [str(lay.corpus(c).resolve()) for c in exp.train],
               "critic_checkpoint": None if critic_ckpt is None else str(Path(critic_ckpt).resolve()),
               "loss_weight": weight, "relative_weight": exp.relative_weight}
    if exp.model_preset != exp.preset:
        request["model_preset"] = exp.model_preset
    if exp.batch_size is not None:
        request["batch_size"] = exp.batch_size
    request.update(exp.stop_options)  # absent at a fixed step count: the requests of earlier runs are unchanged
    return request


def check_conditions(exp: TalkerExperiment, dirs: Any) -> None:
    """Refuse, before any training, an ``exp.conditions`` larger than the identities it rotates over (the training
    identities of its first training corpus, :func:`p3d.predict.predict_split`)."""
    if exp.conditions is None:
        return
    from p3d.corpus import Corpus

    root = layout(dirs, exp.preset).corpus(exp.train[0])
    if not root.is_dir():
        return  # no corpus yet: training refuses it, predict_split checks again
    n = len(Corpus.open(root).identities("train"))
    if exp.conditions > n:
        raise InputError(f"{exp.name}: conditions {exp.conditions} > the {n} training identities of {root}")


def train_experiment(exp: TalkerExperiment, dirs: Any, *, progress: bool = False, force: bool = False,
                     group: Sequence[TalkerExperiment] | None = None) -> dict[str, Any]:
    """Train ``exp``'s talker into its run folder (reuse a finished run of the same request, resume an
    unfinished one, refuse a folder holding another request unless ``force``); returns
    ``{"run_dir", "loss_weight", "train_s", "reused"}`` (``train_s``: the seconds recorded when it trained).
    Its loss critic and, for a relative weight, its baseline run are trained first when missing.

    An ``exp`` of ``length="equal"`` (:attr:`TalkerExperiment.length`) is :func:`train_at_equal_length` with its
    comparison ``group`` (None: the preset spec's grid, :func:`equal_length_group`)."""
    from p3d.atomic import write_json
    from p3d.train.api import claimed_run_dir
    from p3d.train.run_folder import run_lock
    from p3d.train.talker import build, train_talker

    if exp.length == "equal":
        return train_at_equal_length(exp, dirs, group, progress=progress, force=force)
    check_conditions(exp, dirs)
    lay = layout(dirs, exp.preset)
    out = lay.run(exp)
    if exp.critic != "none" and exp.relative_weight is not None and not (lay.run(exp.baseline) / "final.pt").exists():
        train_experiment(exp.baseline, dirs, progress=progress)
    critic_ckpt = loss_critic(exp.critic, exp.preset, lay.data, lay.critic_runs(exp.critic_seed), progress=progress,
                              critic_seed=exp.critic_seed, **critic_options(exp)) if exp.critic != "none" else None
    weight = resolve_weight(exp, dirs)
    request = _request(exp, dirs, critic_ckpt, weight)
    final, timing_path = out / "final.pt", out / "timing.json"
    with claimed_run_dir(out, request, force=force) as finished:  # a failed data load takes its fresh claim back
        if finished:
            recorded = json.loads(timing_path.read_text()) if timing_path.exists() else {}
            log.info("%s: reusing the finished run", exp.name)
            return {"run_dir": out, "loss_weight": weight, "train_s": recorded.get("train_s"), "reused": True}
        shared = share_earlier_stages(exp, dirs)
        start = time.perf_counter()
        job = build(exp.model, exp.model_preset, [lay.corpus(c) for c in exp.train], critic=exp.critic,
                    critic_checkpoint=critic_ckpt, loss_weight=weight, seed=exp.seed, steps=exp.steps,
                    batch_size=exp.batch_size, speech_cache_dir=lay.speech_cache, progress=progress,
                    **exp.stop_options)
        result = train_talker(job, out, progress=progress)
    seconds = time.perf_counter() - start
    if not final.exists():
        raise InputError(f"{out}: training stopped at step {result['step']} of {job.cfg.steps} without final.pt")
    if result.get("steps_here") == 0 and timing_path.exists():
        # another process trained the folder while this one waited on its lock (p3d.train.run_folder.run_lock):
        # its seconds are the training's, this process' are a wait
        recorded = json.loads(timing_path.read_text())
        log.info("%s: finished by another process while this one waited", exp.name)
        return {"run_dir": out, "loss_weight": weight, "train_s": recorded.get("train_s"), "reused": True}
    with run_lock(out):  # as final.pt: the folder's next holder removes the temporary of a write a kill cut off
        write_json(timing_path, {"train_s": round(seconds, 2), "steps": int(result["step"]),
                                 "max_steps": job.cfg.steps, "pid": os.getpid(), "stages_from_baseline": shared})
    log.info("%s: trained in %.0f s", exp.name, seconds)
    return {"run_dir": out, "loss_weight": weight, "train_s": round(seconds, 2), "reused": False}


def equal_length_group(exp: TalkerExperiment, dirs: Any) -> tuple[TalkerExperiment, ...]:
    """The comparison group of an equal-length ``exp`` in its preset's grid
    (:meth:`~p3d.experiments.spec.ExperimentSpec.length_groups` of :func:`p3d.experiments.spec_for` at
    :func:`grid_weight`); its own-length run alone when the grid does not hold it."""
    from p3d.experiments.spec import spec_for

    spec = spec_for(exp.preset, equal_length=True)
    group = spec.length_groups(grid_weight(spec, dirs)).get((exp.preset, exp.model, exp.seed))
    own = exp.own_length.with_(test=None, split="test", conditions=None)
    return group if group is not None and own.name in {m.name for m in group} else (own,)


def _steps_taken(run_dir: Path) -> int:
    """The step a finished talker run ended at (``timing.json``, else its last checkpoint)."""
    from p3d.train.run_folder import latest_checkpoint, load_checkpoint

    timing = run_dir / "timing.json"
    if timing.is_file() and "steps" in (recorded := json.loads(timing.read_text())):
        return int(recorded["steps"])
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise InputError(f"{run_dir}: no finished training run")
    return int(load_checkpoint(ckpt)["step"])


def check_length_group(exp: TalkerExperiment, members: Sequence[TalkerExperiment]) -> None:
    """Refuse, with one line, a comparison group that ``exp`` (``length="equal"``) cannot be continued in: one
    without ``exp``'s own-length run, or with runs of another preset, model or seed or of equal length."""
    own = exp.own_length
    if own.name not in {m.name for m in members}:
        raise InputError(f"{exp.name}: its own-length run {own.name} is not in its comparison group")
    bad = [m.name for m in members if (m.preset, m.model, m.seed, m.length) != (exp.preset, exp.model, exp.seed, "own")]
    if bad:
        raise InputError(f"{exp.name}: a comparison group holds own-length runs of one preset, model and seed; "
                         f"not {', '.join(bad)}")


def check_continuation(exp: TalkerExperiment, dirs: Any, requested: Mapping[str, Any], *,
                       progress: bool = False) -> None:
    """Refuse, with one line, the finished equal-length run of ``exp`` (its ``request.json``: ``requested``) when it
    was continued from a request other than ``exp``'s own-length one (:func:`_request`). The run's name leaves out
    the stopping rule's options, ``critic_steps`` and the loss weight past its printed digits, so a run of other
    such settings has the same folder: the own-length run is then refused (:func:`p3d.train.api.claim_run_dir`), and
    its continuation must be too, not reused as ``exp``'s. Compared with the own-length run's ``request.json`` where
    it is kept, else with the continuation's (which records the source's rule settings, ``stop="steps"`` and its
    own ``steps``: the rule options ``exp`` gives are compared with those); the loss critic is looked up as
    :func:`train_experiment` looks it up (a critic pipeline of other settings is refused there)."""
    lay = layout(dirs, exp.preset)
    own = exp.own_length
    critic_ckpt = loss_critic(exp.critic, exp.preset, lay.data, lay.critic_runs(exp.critic_seed), progress=progress,
                              critic_seed=exp.critic_seed, **critic_options(exp)) if exp.critic != "none" else None
    expected = _request(own, dirs, critic_ckpt, resolve_weight(own, dirs))
    own_request = lay.run(own) / "request.json"
    if own_request.is_file():
        recorded = json.loads(own_request.read_text())
        keys = [k for k in dict.fromkeys([*expected, *recorded]) if k != "steps"]
    else:  # the continuation's record: the rule options given compared with the source's, which it records
        recorded = dict(requested)
        keys = [k for k in expected if k not in ("steps", "stop")]
    changes = [f"{k}: {recorded.get(k, '(not set)')} -> {expected.get(k, '(not set)')}" for k in keys
               if recorded.get(k) != expected.get(k)]
    if changes:
        raise InputError(f"{exp.name}: {lay.run(exp)} was continued from a run of other settings: "
                         f"{'; '.join(changes)} (give that run's settings, or another seed or name)")


def train_at_equal_length(exp: TalkerExperiment, dirs: Any, group: Sequence[TalkerExperiment] | None = None, *,
                          progress: bool = False, force: bool = False) -> dict[str, Any]:
    """Train the equal-length run of ``exp`` (``length="equal"``): every own-length run of ``group`` (its
    comparison group, :func:`p3d.experiments.spec.equal_length_groups`; None: :func:`equal_length_group`, or the
    finished continuation as it is) trained or reused, then ``exp``'s own-length run continued, without its
    stopping rule, to the longest of their stops ``n`` (:func:`p3d.train.trainer.continue_without_stop_rule`: the
    weights of a ``stop="steps"`` run of ``n`` steps with the same settings, validation curve included; earlier
    stages copied, :func:`copy_stage`). A group that later stops longer (more arms) extends the run. Returns
    :func:`train_experiment`'s dict; ``train_s`` is the seconds of all the run's steps (its own-length run's, as recorded, plus the continuation's; ``timing.json`` keeps both:
    ``own_train_s``, ``continued_s``). ``force``: the run folder is removed first, under its lock (a process
    training it is waited for)."""
    from p3d.atomic import write_json
    from p3d.train.api import claim_run_dir
    from p3d.train.run_folder import remove_run_dir, run_lock
    from p3d.train.talker import build, train_talker
    from p3d.train.trainer import continue_without_stop_rule

    if exp.length != "equal":
        raise InputError(f"{exp.name}: not an equal-length run (length={exp.length!r})")
    lay = layout(dirs, exp.preset)
    out = lay.run(exp)
    if group is None and not force and (out / "final.pt").is_file() and (out / "request.json").is_file():
        # a finished continuation, asked for without its group (an evaluation): the grid chose its length; refused
        # if trained with other code settings than today's (a preset or config default changed since)
        from p3d.train.api import check_code

        requested = json.loads((out / "request.json").read_text())
        check_code(out, requested)
        check_continuation(exp, dirs, requested, progress=progress)
        recorded = json.loads((out / "timing.json").read_text()) if (out / "timing.json").exists() else {}
        return {"run_dir": out, "loss_weight": requested.get("loss_weight"), "train_s": recorded.get("train_s"),
                "reused": True}
    own = exp.own_length
    members = list(group) if group is not None else list(equal_length_group(exp, dirs))
    check_length_group(exp, members)
    trained = {m.name: train_experiment(m, dirs, progress=progress) for m in members}  # own's among them
    lengths = {name: _steps_taken(Path(r["run_dir"])) for name, r in trained.items()}
    n = max(lengths.values())
    base = trained[own.name]
    source = Path(base["run_dir"])
    source_train = json.loads((source / "config.json").read_text())["train"]
    # the source's rule settings (none for arms of a fixed step count), so that the run records them as the source does
    rule = {k: source_train[k] for k in ("eval_every", "patience", "min_rel_improvement", "smooth") if k in source_train}
    critic_ckpt = loss_critic(exp.critic, exp.preset, lay.data, lay.critic_runs(exp.critic_seed), progress=progress,
                              critic_seed=exp.critic_seed, **critic_options(exp)) if exp.critic != "none" else None
    weight = base["loss_weight"]
    request = {**_request(own, dirs, critic_ckpt, weight), **rule, "stop": "steps", "steps": n,
               "length": "equal", "continued_from": own.name}
    final, timing_path = out / "final.pt", out / "timing.json"
    if force and out.exists():
        remove_run_dir(out)  # under its lock: a process training it finishes its write first
    if not out.exists():
        start_step = continue_without_stop_rule(source, out)
        log.info("%s: continuing %s from its stop at step %d to %d", exp.name, own.name, start_step, n)
    stages = json.loads((source / "config.json").read_text()).get("stages", ["main"])
    for stage in stages[:-1]:  # finished earlier stages (CodeTalker's motion prior): the same for every length
        if (source / stage).is_dir() and not (out / stage).exists():
            copy_stage(source / stage, out, stage)
    if not (out / "request.json").exists():
        write_json(out / "request.json", request)
    if claim_run_dir(out, request):
        recorded = json.loads(timing_path.read_text()) if timing_path.exists() else {}
        return {"run_dir": out, "loss_weight": weight, "train_s": recorded.get("train_s"), "reused": True}
    start = time.perf_counter()
    job = build(exp.model, exp.model_preset, [lay.corpus(c) for c in exp.train], critic=exp.critic,
                critic_checkpoint=critic_ckpt, loss_weight=weight, seed=exp.seed, steps=n,
                batch_size=exp.batch_size, speech_cache_dir=lay.speech_cache, progress=progress, stop="steps", **rule)
    result = train_talker(job, out, progress=progress)
    seconds = time.perf_counter() - start
    if not final.exists():
        raise InputError(f"{out}: training stopped at step {result['step']} of {n} without final.pt")
    if result.get("steps_here") == 0 and timing_path.exists():
        # another process continued the folder while this one waited on its lock: its seconds are the training's
        recorded = json.loads(timing_path.read_text())
        log.info("%s: finished by another process while this one waited", exp.name)
        return {"run_dir": out, "loss_weight": weight, "train_s": recorded.get("train_s"), "reused": True}
    own_s = base["train_s"]
    total = None if own_s is None else round(float(own_s) + seconds, 2)
    with run_lock(out):  # as final.pt: the folder's next holder removes the temporary of a write a kill cut off
        write_json(timing_path, {"train_s": total, "continued_s": round(seconds, 2), "own_train_s": own_s,
                                 "steps": int(result["step"]), "max_steps": n, "pid": os.getpid(),
                                 "continued_from": own.name, "group_steps": lengths})
    log.info("%s: continued to %d steps in %.0f s", exp.name, n, seconds)
    return {"run_dir": out, "loss_weight": weight, "train_s": total, "reused": False}


def share_earlier_stages(exp: TalkerExperiment, dirs: Any) -> list[str]:
    """Copy the finished earlier training stages (CodeTalker's VQ-VAE motion prior) of ``exp``'s baseline run into
    ``exp``'s run folder, so that only the last stage trains with the perceptual loss; returns the stages copied.

    Those stages never see the loss (:func:`p3d.train.talker.run_earlier_stages`) and start from the same seed,
    data and recipe, so the copy is what the run would compute itself (CodeTalker's protocol: one motion prior,
    then the speech stage). The trainer resumes the copied stage at its last step, i.e. does nothing there.
    Each stage is copied whole (:func:`copy_stage`: staged under the run folder's lock, then renamed), so a copy
    interrupted part-way leaves no stage folder with a truncated checkpoint behind: the next call copies it again."""
    if exp.critic == "none":
        return []
    lay = layout(dirs, exp.preset)
    base, out = lay.run(exp.baseline), lay.run(exp)
    if not (base / "final.pt").exists() or not (base / "config.json").exists():
        return []
    stages = json.loads((base / "config.json").read_text()).get("stages", ["main"])
    shared = []
    for stage in stages[:-1]:
        src, dst = base / stage, out / stage
        if dst.exists() or not (src / "config.json").exists() or not any((src / "checkpoints").glob("*")):
            continue
        if not copy_stage(src, out, stage):  # another process copied the stage meanwhile
            continue
        shared.append(stage)
        log.info("%s: stage %s copied from the baseline run %s", exp.name, stage, base.name)
    return shared


def stage_copy_dir(run_dir: str | os.PathLike[str], stage: str) -> Path:
    """The hidden folder (``RUN_DIR/.STAGE.copying``) in which :func:`copy_stage` builds ``RUN_DIR/STAGE``: one name
    per stage, so the next holder of the run folder's lock finds (and removes) what a killed copy left."""
    return Path(run_dir) / f".{stage}.copying"


def copy_stage(src: str | os.PathLike[str], run_dir: str | os.PathLike[str], stage: str) -> bool:
    """Copy the finished training stage folder ``src`` (CodeTalker's VQ-VAE motion prior) to ``RUN_DIR/STAGE``
    whole; returns whether it copied (False: the stage was there already).

    The copy is staged in :func:`stage_copy_dir` and renamed into place while this process holds the run folder's
    lock (:func:`p3d.train.run_folder.run_lock`): a concurrent caller waits and then finds the stage copied (it
    never removes a live copy), and what a holder finds in the staging folder is a killed copy's (as large as a
    checkpoint), removed first, with the leftovers of earlier code (``.STAGE.tmp-*``, ``.STAGE.partial``)."""
    from p3d.train.run_folder import run_lock

    run_dir = Path(run_dir)
    dst, tmp = run_dir / stage, stage_copy_dir(run_dir, stage)
    with run_lock(run_dir):
        for stale in [tmp, run_dir / f".{stage}.partial", *run_dir.glob(f".{stage}.tmp-*")]:
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            elif stale.exists() or stale.is_symlink():
                stale.unlink()
        if dst.exists():
            return False
        try:
            shutil.copytree(src, tmp)
            tmp.rename(dst)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if dst.exists():  # made meanwhile by a process that does not take this lock (the stage trained there)
                return False
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return True


# -- evaluation ---------------------------------------------------------------------------------------
def _stamp(path: Path) -> list[Any]:
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def _corpus_key(root: Path) -> dict[str, Any]:
    """A corpus in a cache key: its path and what it holds (:func:`p3d.corpus.corpus_fingerprint`: ``fingerprint``
    and the hashes of its templates.pkl and clips.csv), so a corpus regenerated at the same path (another seed or
    generator), a corrected template or a clip moved to another split is evaluated again, not served from the
    cache. Compared by :func:`_same_key`."""
    from p3d.corpus import FINGERPRINT_FILES, corpus_fingerprint

    fp = corpus_fingerprint(root)
    return {"corpus": str(Path(root).resolve()), "fingerprint": fp["fingerprint"],
            **{field: fp[field] for field in FINGERPRINT_FILES}}


def _same_key(cached: Any, key: dict[str, Any]) -> bool:
    """Whether a cache's recorded ``cached`` key is ``key``, but for the corpus file fields
    (:data:`p3d.corpus.FINGERPRINT_FILES`, in :func:`_corpus_key`, also in a nested key) that ``cached`` lacks: a
    cache written before they were keyed matches on the rest, as :func:`p3d.corpus.fingerprint_changes` compares
    records, instead of every cache being computed again."""
    from p3d.corpus import FINGERPRINT_FILES

    if not isinstance(cached, dict):
        return False
    fields = [k for k in key if k in cached or not ("fingerprint" in key and k in FINGERPRINT_FILES)]
    return set(cached) == set(fields) and all(
        _same_key(cached[k], key[k]) if isinstance(key[k], dict) else cached[k] == key[k] for k in fields)


def _versions() -> dict[str, int]:
    """The code versions a cached evaluation depends on: the statistics, the speech front-end and the metrics."""
    from p3d.audio import FEATURE_VERSION
    from p3d.metrics import METRICS_VERSION

    return {"statistics": STATISTICS_VERSION, "features": FEATURE_VERSION, "metrics_version": METRICS_VERSION}


def _eval_config(corpus: Path, pred: Path, plrs: Path, out: Path, n_resamples: int,
                 speech_cache: Path | None = None) -> Any:
    """``p3d eval``'s request for predictions (or the GT) of ``corpus``: every input given and the default metrics,
    i.e. all it can compute: the paper's MTM, LVE, FDD, SLCC and PLRS (the official Eq. (a)), and PLRS-c
    (``plrs_calibrated``, :func:`p3d.metrics.plrs_calibrated`; beyond the paper) beside PLRS. PLRS-c is reported
    as not computed, with the reason, when the split leaves too few other GT clips for its background
    (:func:`p3d.evaluate.config.plan_background`); an explicit request would refuse such a split instead.
    ``speech_cache``: the folder where PLRS' speech embeddings of the GT audio are kept across the runs evaluated
    on the same split (:attr:`RunLayout.plrs_speech_cache`)."""
    from p3d.corpus import Corpus
    from p3d.evaluate import EvalConfig

    c = Corpus.open(corpus)
    return EvalConfig(pred=pred, gt=corpus, audio=corpus, templates=corpus / "templates.pkl", fps=c.model_fps,
                      gt_fps=c.fps, metrics=None, topology=str(corpus / "topology.npz"), out=out,
                      plrs_checkpoint=plrs, bootstrap_resamples=n_resamples, speech_cache=speech_cache)


def _requested_metrics(cfg: Any) -> list[str]:
    """The metrics ``cfg`` requests (part of the evaluation caches' keys: a cache without PLRS-c is redone)."""
    from p3d.evaluate.config import resolve_metrics

    return list(resolve_metrics(cfg))


def _levels(corpus: Path, split: str) -> dict[str, Any]:
    from p3d.corpus import Corpus

    return {c.stem: c.level for c in Corpus.open(corpus).select(split)}


def data_reference(corpus: str, split: str, preset: str, dirs: Any, *, n_resamples: int = 1000,
                   progress: bool = False) -> dict[str, Any]:
    """The data's own PLRS (and PLRS-c) and SLCC (Table 2/4's first row): the ground truth of
    ``corpus``/``split`` at the model frame rate, evaluated as if it were a prediction. Cached in
    ``talkers/_data/<corpus>_<split>/``, keyed by the corpus (:func:`_corpus_key`), evaluator, metrics, resamples
    and code versions (:func:`_versions`); the GT copies are written again with every new key.

    Returns ``{"summary": {metric: {...}}, "per_clip": DataFrame, "eval_dir": Path}``.
    """
    import pandas as pd

    from p3d.atomic import save_npy, write_json
    from p3d.corpus import Corpus
    from p3d.evaluate import evaluate, write_report

    lay = layout(dirs, preset)
    root = lay.corpus(corpus)
    plrs = evaluator(preset, lay.data, lay.runs)
    out = lay.data_reference(corpus, split)
    gt = out / "gt"
    cfg = _eval_config(root, gt, plrs, out / "eval", n_resamples, lay.plrs_speech_cache)
    key = {**_corpus_key(root), "split": split, "evaluator": _stamp(plrs), "n_resamples": n_resamples,
           "metrics": _requested_metrics(cfg), **_versions()}
    done = out / "table_summary.json"
    if done.exists() and _same_key(json.loads(done.read_text()).get("key"), key):
        return {"summary": json.loads(done.read_text())["summary"], "per_clip": pd.read_csv(out / "eval" / "per_clip.csv"),
                "eval_dir": out / "eval"}
    c = Corpus.open(root)
    if gt.exists():  # copies of the corpus of another key (it may have been regenerated since): written again
        shutil.rmtree(gt)
    gt.mkdir(parents=True)
    for clip in c.select(split):
        save_npy(gt / f"{clip.stem}.npy", c.vertices(clip).astype(np.float32))
    report = evaluate(cfg, progress=progress)
    write_report(report, out / "eval")
    per_clip = report.per_clip
    summary = summarise(per_clip, None, _levels(root, split), n_resamples=n_resamples)
    write_json(done, {"key": key, "summary": summary})
    return {"summary": summary, "per_clip": per_clip, "eval_dir": out / "eval"}


def validation_battery(preset: str, dirs: Any, *, corpus: str = "synth-voca", split: str = "val", seed: int = 0,
                       progress: bool = False) -> Any:
    """The referee validity battery (:func:`p3d.analysis.referee_validity.battery_sequences`) of ``corpus``/``split``
    (the validation speakers: never the test clips that the weights chosen on it then judge), scored by this
    preset's evaluator with its calibrated companions and the lip amplitude
    (:func:`p3d.analysis.metric_validation.metric_rows`, no oracle). Cached beside the evaluator
    (``validation_battery.csv`` and ``.json``, keyed by :func:`battery_key`): the weights of PLRS-p and PLRS-e are
    chosen from the same rows."""
    import pandas as pd

    from p3d.analysis import metric_validation as mv
    from p3d.analysis import referee_validity as rv
    from p3d.atomic import atomic_open, write_json
    from p3d.corpus import Corpus
    from p3d.models.speech_mesh import load_critic

    lay = layout(dirs, preset)
    root = lay.corpus(corpus)
    plrs = evaluator(preset, lay.data, lay.runs, progress=progress)
    key = battery_key(plrs, root, split, seed)
    table, stamp = Path(plrs).parent / "validation_battery.csv", Path(plrs).parent / "validation_battery.json"
    if table.exists() and stamp.exists() and _same_key(json.loads(stamp.read_text()).get("key"), key):
        return pd.read_csv(table)
    c = Corpus.open(root)
    clips = c.select(split)
    if len(clips) < 2:
        raise InputError(f"{root} has {len(clips)} {split} clips; the validation battery needs at least two")
    rows = mv.metric_rows(clips, rv.battery_sequences(c, clips, seed), corpus=c, oracle=None,
                          plrs_model=load_critic(plrs), calibrated=True, progress=progress)
    with atomic_open(table, "w", newline="") as fh:
        rows.to_csv(fh, index=False)
    write_json(stamp, {"key": key, "n_clips": len(clips)})  # written last: the key vouches for the table
    return pd.read_csv(table)


def battery_key(plrs: Path, root: Path, split: str, seed: int) -> dict[str, Any]:
    """The cache key of :func:`validation_battery`: the evaluator checkpoint, the corpus (path and fingerprint), split,
    seed, its columns and the code versions (:func:`_versions`)."""
    return {"evaluator": _stamp(plrs), **_corpus_key(root), "split": split, "seed": seed,
            "columns": "calibrated+lip_amplitude", **_versions()}


def _battery_weight(preset: str, dirs: Any, name: str, select: Any, candidates: Sequence[float], corpus: str,
                    split: str, seed: int, n_resamples: int, progress: bool | None) -> tuple[float, Any]:
    """A referee weight chosen by ``select`` on :func:`validation_battery`, cached in ``<name>.json`` beside the
    evaluator (keyed by the battery's :func:`battery_key`, resamples and candidates)."""
    import pandas as pd

    from p3d.atomic import write_json

    lay = layout(dirs, preset)
    plrs = evaluator(preset, lay.data, lay.runs, progress=progress)
    key = {"battery": battery_key(plrs, lay.corpus(corpus), split, seed), "n_resamples": n_resamples,
           "weights": list(candidates)}  # the rows it is chosen on: a battery computed again chooses again
    cache = Path(plrs).parent / f"{name}.json"
    if cache.exists():
        done = json.loads(cache.read_text())
        if _same_key(done.get("key"), key):
            return float(done["weight"]), pd.DataFrame(done["table"])
    rows = validation_battery(preset, dirs, corpus=corpus, split=split, seed=seed, progress=progress)
    weight, table = select(rows, weights=candidates, n_resamples=n_resamples, seed=seed)
    write_json(cache, {"key": key, "weight": weight, "n_clips": int(rows["clip"].nunique()),
                       "table": table.to_dict("records")})
    return weight, table


def plrs_hubness_weight(preset: str, dirs: Any, *, corpus: str = "synth-voca", split: str = "val", seed: int = 0,
                        n_resamples: int = 1000, progress: bool = False) -> tuple[float, Any]:
    """PLRS-p's hubness weight for this preset's evaluator (:func:`p3d.metrics.plrs.plrs_partial`), chosen on
    the validation battery (:func:`validation_battery`) by
    :func:`p3d.analysis.referee_validity.select_hubness_weight`; cached (``hubness_weight.json``).

    Returns ``(weight, table)``: the table of every candidate weight (``select_hubness_weight``'s).
    """
    from p3d.analysis import referee_validity as rv

    return _battery_weight(preset, dirs, "hubness_weight", rv.select_hubness_weight, rv.HUBNESS_WEIGHTS, corpus,
                           split, seed, n_resamples, progress)


def plrs_intensity_weight(preset: str, dirs: Any, *, corpus: str = "synth-voca", split: str = "val", seed: int = 0,
                          n_resamples: int = 1000, progress: bool = False) -> tuple[float, Any]:
    """PLRS-e's intensity weight for this preset's evaluator (:func:`p3d.metrics.plrs.plrs_enrolled`), chosen on
    the validation battery (:func:`validation_battery`) by
    :func:`p3d.analysis.referee_validity.select_intensity_weight`; cached (``intensity_weight.json``).

    Returns ``(weight, table)``: the table of every candidate weight (``select_intensity_weight``'s).
    """
    from p3d.analysis import referee_validity as rv

    return _battery_weight(preset, dirs, "intensity_weight", rv.select_intensity_weight, rv.INTENSITY_WEIGHTS,
                           corpus, split, seed, n_resamples, progress)


def gt_lip_amplitudes(preset: str, dirs: Any, corpus: str, split: str) -> dict[str, float]:
    """``{GT file name: lip amplitude}`` (:func:`p3d.metrics.lip_amplitude`, corpus length units) of every clip of
    ``corpus``/``split``: with the per-clip ``lip_amplitude_ratio`` of an evaluation, the input of PLRS-e
    (:func:`p3d.experiments.tables.with_plrs_enrolled`)."""
    from p3d.corpus import Corpus
    from p3d.metrics import lip_amplitude

    c = Corpus.open(layout(dirs, preset).corpus(corpus))
    lips = np.asarray(c.topology.regions["lips"])
    return {f"{clip.stem}.npy": lip_amplitude(c.vertices(clip), lips, c.templates[clip.identity])
            for clip in c.select(split)}


def metric_validation_talkers(preset: str, dirs: Any, clips: Sequence[str], *, extra: Sequence[str] = (),
                              corpus: str = "synth-voca", split: str = "test") -> dict[str, dict[str, Path]]:
    """The trained talkers whose predictions the metric validation (notebook 08) scores beside the GT's
    degradations: ``{run name: {clip stem: prediction file}}``, in run-name order.

    The preset's planned runs (:meth:`~p3d.experiments.spec.ExperimentSpec.planned_runs` of
    :func:`~p3d.experiments.spec.spec_for` at the grid's loss weight, :func:`grid_weight`) that are evaluated on
    ``corpus`` / ``split`` (``synth-voca`` / ``test``: Config 1, the runs of the paper's Tables 2 and 3) and have
    predicted every one of ``clips`` (stems), each read from its own prediction folder
    (:meth:`~p3d.experiments.layout.RunLayout.predictions`: the spec's evaluation protocol), plus the run folders of
    ``runs/<preset>/talkers`` named in ``extra``
    (:func:`p3d.analysis.metric_validation.find_talker_predictions`). Nothing else the folder holds counts (runs at
    another weight, ``make figures EXTRA=1``'s per-model-kappa runs, a run trained by hand, a run or prediction
    folder of an older spec), so the metric-validation tables follow from the plan. A planned run that has not
    predicted every clip yet is left out (logged as a warning); an ``extra`` run without a prediction of every
    clip is an :class:`InputError`. Before notebook 06 has chosen kappa (``weight_rule="kappa"``), the runs with the
    loss are the paper's weight 1e-7's (:func:`grid_weight` None)."""
    from p3d.analysis import metric_validation as mv
    from p3d.experiments.spec import spec_for

    lay = layout(dirs, preset)
    spec = spec_for(preset)
    planned = {e.name: lay.predictions(e) for e in spec.planned_runs(grid_weight(spec, dirs))
               if e.test_corpus == corpus and e.split == split}
    found = mv.talker_predictions(planned, clips)
    if len(found) < len(planned):
        missing = sorted(set(planned) - set(found))
        log.warning("metric validation: %d of %d planned talkers have not predicted every %s %s clip: %s",
                    len(missing), len(planned), corpus, split, ", ".join(missing))
    if isinstance(extra, str):
        raise InputError(f"extra_talkers: expected a list of run names, got the string {extra!r}")
    extra = [str(name) for name in extra]
    named = mv.find_talker_predictions(lay.talkers, clips, corpus=corpus, split=split, runs=extra)
    absent = [name for name in extra if name not in named and name not in found]
    if absent:
        raise InputError(f"extra_talkers: {', '.join(absent)}: no run in {lay.talkers} with a prediction of every "
                         f"{corpus} {split} clip")
    out = {**named, **found}  # a planned run named again: its planned prediction folder
    return {name: out[name] for name in sorted(out)}


def _predicted_with(record: Path, corpus: str) -> tuple[dict[str, Any], int]:
    """The fingerprint of ``corpus`` as the predictions' record (:data:`p3d.io.PREDICTIONS_RECORD`) has it (empty
    without one), and the :data:`p3d.predict.PREDICTION_VERSION` it was written at (1 without one)."""
    saved = json.loads(record.read_text())
    fingerprint = (saved.get("corpora") or {}).get(corpus) or {}
    return fingerprint, int((saved.get("source") or {}).get("prediction_version", 1))


def predict_and_evaluate(exp: TalkerExperiment, dirs: Any, *, n_resamples: int = 1000, progress: bool = False
                         ) -> dict[str, Any]:
    """Predict ``exp``'s evaluation split with its finished run (:func:`train_experiment`) and evaluate the
    predictions (the metrics of :func:`_eval_config`: the paper's, and PLRS-c beside PLRS), cached by the
    checkpoint, test corpus (:func:`_corpus_key`), evaluator, metrics, resamples and code versions
    (:func:`_versions`). Returns ``{"summary", "per_clip", "eval_dir", "predict_s",
    "evaluate_s", "data", "levels"}``."""
    import pandas as pd

    from p3d.atomic import write_json
    from p3d.corpus import fingerprint_changes
    from p3d.evaluate import evaluate, write_report
    from p3d.io import PREDICTIONS_RECORD
    from p3d.predict import PREDICTION_VERSION, predict_split

    lay = layout(dirs, exp.preset)
    out = lay.run(exp)
    final = out / "final.pt"
    if not final.exists():
        raise InputError(f"{out}: no final.pt (train {exp.name} first)")
    root = lay.corpus(exp.test_corpus)
    plrs = evaluator(exp.preset, lay.data, lay.runs)
    data = data_reference(exp.test_corpus, exp.split, exp.preset, dirs, n_resamples=n_resamples)
    pred, ev = lay.predictions(exp), lay.evaluation(exp)
    levels = {k: (None if v is None else str(v)) for k, v in _levels(root, exp.split).items()}
    cfg = _eval_config(root, pred, plrs, ev, n_resamples, lay.plrs_speech_cache)
    key = {"final": _stamp(final), **_corpus_key(root), "split": exp.split, "evaluator": _stamp(plrs),
           "n_resamples": n_resamples, "metrics": _requested_metrics(cfg), **_versions(),
           # left out at version 1, so the summaries cached before the version was recorded stay valid
           **({"prediction_version": PREDICTION_VERSION} if PREDICTION_VERSION > 1 else {})}
    done = ev / "table_summary.json"
    if done.exists():
        cached = json.loads(done.read_text())
        if _same_key(cached.get("key"), key):
            return {"summary": cached["summary"], "per_clip": pd.read_csv(ev / "per_clip.csv"), "eval_dir": ev,
                    "predict_s": cached.get("predict_s"), "evaluate_s": cached.get("evaluate_s"), "data": data,
                    "levels": levels}
    if pred.exists():  # predictions of an older checkpoint, or of the corpus before it was regenerated: not kept
        stamp, record = pred / "checkpoint.json", pred / PREDICTIONS_RECORD
        if (not stamp.exists() or json.loads(stamp.read_text()) != key["final"]
                or not record.exists()  # a folder from before p3d predict's record
                or (recorded := _predicted_with(record, key["corpus"]))[1] != PREDICTION_VERSION
                or not recorded[0] or fingerprint_changes(recorded[0], key)):
            shutil.rmtree(pred)
    start = time.perf_counter()
    predict_split(out, pred, split=exp.split, data=[root], progress=progress, conditions_per_clip=exp.conditions)
    write_json(pred / "checkpoint.json", key["final"])
    predict_s = time.perf_counter() - start
    start = time.perf_counter()
    report = evaluate(cfg, progress=progress)
    write_report(report, ev)
    summary = summarise(report.per_clip, data["per_clip"], levels, n_resamples=n_resamples)
    evaluate_s = time.perf_counter() - start
    write_json(done, {"key": key, "summary": summary, "predict_s": round(predict_s, 2),
                      "evaluate_s": round(evaluate_s, 2)})
    return {"summary": summary, "per_clip": report.per_clip, "eval_dir": ev, "predict_s": round(predict_s, 2),
            "evaluate_s": round(evaluate_s, 2), "data": data, "levels": levels}


def run_experiment(exp: TalkerExperiment, dirs: Any, *, n_resamples: int = 1000, progress: bool = False
                   ) -> RunResult:
    """All of one experiment: :func:`train_experiment` (or reuse its finished run), then
    :func:`predict_and_evaluate`. Returns a :class:`RunResult` (a read-only mapping): ``experiment``, ``name``,
    ``seed``, ``run_dir``, ``eval_dir``, ``pred_dir``, ``loss_weight``, ``loss_ratio`` (median weighted
    perceptual / model loss in the second half of training),
    ``summary`` (metric -> value and 95% CI over clips; see :func:`summarise`), ``per_clip`` (DataFrame, one
    row per prediction), ``data`` (the data's own :func:`data_reference`), ``levels`` and ``timing``
    (seconds: ``train_s`` as recorded when it trained, of it ``continued_s`` past an equal-length run's own stop,
    ``predict_s``, ``evaluate_s``, ``reused``)."""
    trained = train_experiment(exp, dirs, progress=progress)
    recorded = Path(trained["run_dir"]) / "timing.json"
    continued_s = json.loads(recorded.read_text()).get("continued_s") if recorded.is_file() else None
    ev = predict_and_evaluate(exp, dirs, n_resamples=n_resamples, progress=progress)
    return RunResult(
        experiment=dataclasses.asdict(exp), name=exp.name, seed=exp.seed, run_dir=str(trained["run_dir"]),
        eval_dir=str(ev["eval_dir"]), pred_dir=str(layout(dirs, exp.preset).predictions(exp)),
        loss_weight=trained["loss_weight"],
        loss_ratio=loss_ratio(trained["run_dir"]) if exp.critic != "none" else None,
        summary=ev["summary"], per_clip=ev["per_clip"], data=ev["data"], levels=ev["levels"],
        timing={"train_s": trained["train_s"], "continued_s": continued_s, "reused": trained["reused"],
                "predict_s": ev["predict_s"], "evaluate_s": ev["evaluate_s"]})


def clip_mtm(result: Any, dirs: Any, index: int = 0) -> tuple[str, Any]:
    """(prediction file name, :class:`p3d.metrics.MTMResult`) of the ``index``-th evaluated prediction of a
    result, for the Fig. S4-style matching plot."""
    from p3d import metrics
    from p3d.corpus import Corpus

    exp = TalkerExperiment.from_dict(result["experiment"])
    lay = layout(dirs, exp.preset)
    row = result["per_clip"].iloc[index]
    corpus = Corpus.open(lay.corpus(exp.test_corpus))
    gt = corpus.vertices(str(row["gt"]).removesuffix(".npy"))
    pred = np.load(lay.predictions(exp) / row["pred"], allow_pickle=False)
    upper, lower = corpus.topology.mtm_vertices()
    return str(row["pred"]), metrics.mtm(pred=pred, gt=gt, upper=upper, lower=lower)
