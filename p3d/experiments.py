"""The experiments of issue 5: talking heads with and without the perceptual loss (paper Tables 2, 3, 4, S7).

One :class:`TalkerExperiment` is one talking-head training request (model, critic, training corpora,
preset, seed, weight) plus the split it is evaluated on. :func:`run_experiment` trains it (reusing a
finished run of the same request, resuming an unfinished one), predicts the evaluation split with the
official protocol (:func:`p3d.predict.predict_split`: every clip under every training identity) and
evaluates it (:func:`p3d.evaluate.evaluate`: MTM, LVE, FDD, SLCC, and PLRS with the independent
evaluator). :func:`run_grid` runs many in parallel processes in dependency order (stage 1, the
critics and the PLRS evaluator, the loss critics, the baselines, then the rest). The table builders
turn the results into Tables 2, 3, 4 and S7 with 95% bootstrap CIs over test clips and the paper's
own numbers in separate, labelled columns.

**Configurations** (paper Sec. 6.1): Config 1 trains and tests on ``synth-voca`` (VOCASET's stand-in);
Config 2 trains on ``synth-voca`` + ``synth-mead`` and tests on ``synth-mead`` (MEAD-3D's stand-in).

**Loss critics** (paper C.2): issue 4's critic trained on ``synth-lrs3`` (identity half 1,
:func:`p3d.train.api.train_critic`), fine-tuned on the ``synth-voca`` train split
(``p3d train finetune``; the paper fine-tunes on VOCASET train). The PLRS evaluator is trained on
the other identity half of ``synth-lrs3`` (:func:`p3d.train.api.train_evaluator`) and never on the
talking-head corpora.

**Loss weight.** The paper's 1e-7 (official FaceFormer code) multiplies an InfoNCE of a few nats
against FaceFormer's vertex MSE in metres (about 1e-6 on VOCASET); CodeTalker's and SelfTalk's own
losses are on other scales (at ``cpu``: about 2e-2 and 1e-1), and their weights are NOT FOUND in the
paper. Adam is invariant to the scale of the total loss, so what matters is the perceptual term
relative to the model's own loss. p3d therefore sets ``W = kappa * L_model``, where ``L_model``
(:func:`loss_scale`) is the median model loss over the second half of the same model's baseline run
(critic ``none``, same data, seed and steps), and ``kappa`` (unit 1/nat) is chosen once, on the
**validation** split, with FaceFormer and critic ``ours`` (:func:`select_kappa`: the highest val PLRS
among the candidates whose val LVE is at most ``lve_tolerance`` above the baseline's). The choice
and its evidence go into ``results/tables/loss_weight_selection``. An absolute ``loss_weight`` can
be given instead (e.g. the paper's 1e-7).

**Confidence intervals.** Every metric's 95% CI is a percentile bootstrap over *test clips* (each
clip's predictions under every condition move together: a cluster bootstrap), so it reflects how many
independent sentences were tested. SLCC and its Delta are recomputed on every resample, Delta paired
with the data's own SLCC of the same clips.

Output layout (``runs/<preset>/talkers/``): ``<name>/`` the training run (``final.pt``,
``metrics.csv``, ``request.json``, ``timing.json``), ``<name>/pred_<corpus>_<split>/`` the
predictions, ``<name>/eval_<corpus>_<split>/`` ``per_clip.csv``, ``summary.json`` (``p3d eval``) and
``table_summary.json`` (the CIs over clips); ``_data/<corpus>_<split>/`` the data's own PLRS and
SLCC (its ground truth evaluated as if predicted); the loss critics in ``runs/<preset>/loss_critics/``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p3d import paper as paper_numbers
from p3d import stats
from p3d.errors import InputError

log = logging.getLogger(__name__)

CONFIG1: tuple[str, ...] = ("synth-voca",)
CONFIG2: tuple[str, ...] = ("synth-voca", "synth-mead")
#: Where the critics and the PLRS evaluator train (issue 4).
CRITIC_CORPUS = "synth-lrs3"
#: Where the loss critics are fine-tuned (paper C.2: VOCASET train).
LOSS_CRITIC_CORPUS = "synth-voca"
TALKER_CORPORA: tuple[str, ...] = ("synth-voca", "synth-mead")
MODELS: tuple[str, ...] = ("faceformer", "codetalker", "selftalk")
CRITICS: tuple[str, ...] = ("none", "ours", "syncnet3d", "no2d")
PRESETS: tuple[str, ...] = ("smoke", "cpu", "paper")
SPLITS: tuple[str, ...] = ("train", "val", "test")
MODEL_LABELS = {"faceformer": "FaceFormer", "codetalker": "CodeTalker", "selftalk": "SelfTalk"}
CRITIC_LABELS = {"none": "✗", "syncnet3d": "3D SyncNet", "no2d": "Ours w/o 2D prior", "ours": "Ours w/ 2D prior"}
#: Candidate relative weights kappa for :func:`select_kappa` (W = kappa * L_model; about 3 kappa is the
#: ratio of the weighted perceptual loss to the model loss, since the InfoNCE of batches of 80 is ~3 nats).
KAPPA_CANDIDATES: tuple[float, ...] = (0.01, 0.1, 1.0)
#: Largest relative increase of val LVE over the baseline's that :func:`select_kappa` accepts.
LVE_TOLERANCE = 0.05
#: Display units: LVE in 1e-5 m^2 and FDD in 1e-7 m^2 (the paper's scales for VOCASET, metres).
LVE_SCALE, FDD_SCALE = 1e5, 1e7


# -- the experiment -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TalkerExperiment:
    """One talking-head training request and the split it is evaluated on.

    Args:
        model: ``faceformer`` | ``codetalker`` | ``selftalk``.
        critic: the perceptual loss' critic: ``none`` (baseline) | ``ours`` | ``syncnet3d`` | ``no2d``.
        train: training corpora (Config 1: ``("synth-voca",)``; Config 2: ``("synth-voca", "synth-mead")``).
        preset: ``smoke`` | ``cpu`` | ``paper``.
        seed: training seed.
        loss_weight: absolute weight W of the perceptual loss.
        relative_weight: kappa: W = kappa * :func:`loss_scale` of the baseline run. With neither weight,
            a critic run uses the paper's 1e-7.
        steps: the last training stage's steps (default: the preset's recipe).
        test: the corpus evaluated (default ``synth-mead`` when trained on it, else ``synth-voca``).
        split: its split (``test``; ``val`` for choosing the weight).
    """

    model: str
    critic: str = "none"
    train: tuple[str, ...] = CONFIG1
    preset: str = "smoke"
    seed: int = 0
    loss_weight: float | None = None
    relative_weight: float | None = None
    steps: int | None = None
    test: str | None = None
    split: str = "test"

    def __post_init__(self) -> None:
        if isinstance(self.train, str):
            object.__setattr__(self, "train", (self.train,))
        object.__setattr__(self, "train", tuple(self.train))
        if self.model not in MODELS:
            raise InputError(f"model: unknown talking-head model {self.model!r} (choose from {', '.join(MODELS)})")
        if self.critic not in CRITICS:
            raise InputError(f"critic: unknown critic {self.critic!r} (choose from {', '.join(CRITICS)})")
        if self.preset not in PRESETS:
            raise InputError(f"preset: unknown preset {self.preset!r} (choose from {', '.join(PRESETS)})")
        if not self.train or len(set(self.train)) != len(self.train):
            raise InputError(f"train: expected distinct corpus names, got {self.train!r}")
        bad = [c for c in self.train if c not in TALKER_CORPORA]
        if bad:
            raise InputError(f"train: unknown talking-head corpus {bad[0]!r} (choose from {', '.join(TALKER_CORPORA)})")
        if self.test is not None and self.test not in TALKER_CORPORA:
            raise InputError(f"test: unknown corpus {self.test!r} (choose from {', '.join(TALKER_CORPORA)})")
        if self.split not in SPLITS:
            raise InputError(f"split: unknown split {self.split!r} (choose from {', '.join(SPLITS)})")
        for name in ("loss_weight", "relative_weight"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InputError(f"{name}: expected a finite weight >= 0, got {value!r}")
        if self.loss_weight is not None and self.relative_weight is not None:
            raise InputError("loss_weight and relative_weight: give one, not both")
        if self.critic == "none" and (self.loss_weight is not None or self.relative_weight is not None):
            raise InputError("loss_weight / relative_weight: a run without critic has no perceptual loss")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"steps: expected a positive step count, got {self.steps}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed: expected a non-negative integer, got {self.seed!r}")

    @property
    def test_corpus(self) -> str:
        if self.test is not None:
            return self.test
        return "synth-mead" if "synth-mead" in self.train else "synth-voca"

    @property
    def name(self) -> str:
        """The training run's folder name (stable: the same request gives the same name; not the test split)."""
        parts = [self.model, self.critic, "+".join(c.removeprefix("synth-") for c in self.train)]
        if self.critic != "none":
            parts.append(f"k{self.relative_weight:g}" if self.relative_weight is not None
                         else f"w{self.weight_or_default:g}")
        if self.steps is not None:
            parts.append(f"steps{self.steps}")
        parts.append(f"seed{self.seed}")
        return "_".join(parts)

    @property
    def eval_name(self) -> str:
        return f"{self.test_corpus}_{self.split}"

    @property
    def weight_or_default(self) -> float:
        from p3d.losses.perceptual_loss import DEFAULT_WEIGHT

        return DEFAULT_WEIGHT if self.loss_weight is None else float(self.loss_weight)

    @property
    def baseline(self) -> TalkerExperiment:
        """The same training without the perceptual loss (its loss scale sets a relative weight)."""
        return TalkerExperiment(self.model, "none", self.train, self.preset, self.seed, steps=self.steps,
                                test=self.test, split=self.split)

    def with_(self, **changes: Any) -> TalkerExperiment:
        return dataclasses.replace(self, **changes)


# -- where things are ---------------------------------------------------------------------------------
def data_root(dirs: Any, preset: str) -> Path:
    """The folder holding the preset's corpora (``data/<preset>``)."""
    return Path(dirs.data) / preset


def runs_root(dirs: Any, preset: str) -> Path:
    """The preset's run folder (``runs/<preset>``): critics, evaluator, ``talkers/``, ``loss_critics/``."""
    return Path(dirs.runs) / preset


def run_dir(exp: TalkerExperiment, dirs: Any) -> Path:
    return runs_root(dirs, exp.preset) / "talkers" / exp.name


def corpus_dir(name: str, preset: str, dirs: Any) -> Path:
    path = data_root(dirs, preset) / name
    if not (path / "meta.json").exists() and not (path / "vertices_npy").is_dir():
        raise InputError(f"{path}: corpus {name!r} not found; build it first "
                         f"(p3d.experiments.prepare_corpora or `p3d data synth --preset {preset}`)")
    return path


def prepare_corpora(preset: str, dirs: Any, names: Sequence[str] = (CRITIC_CORPUS, *TALKER_CORPORA), *,
                    seed: int = 0, workers: int = 1, progress: bool = False) -> dict[str, Path]:
    """Build (or find complete) the synthetic corpora under ``data/<preset>``; name -> folder."""
    from p3d.synth import corpus as synth

    return {name: Path(synth.build(name, preset, data_root(dirs, preset), seed=seed, workers=workers,
                                   progress=progress)) for name in names}


# -- critics ------------------------------------------------------------------------------------------
def base_critic(critic: str, preset: str, data: str | os.PathLike[str], runs: str | os.PathLike[str],
                progress: bool = False) -> Path:
    """Issue 4's critic on ``synth-lrs3`` (identity half 1): ``runs/<critic>/final.pt`` (reused when finished)."""
    from p3d.train import api

    return api.train_critic(critic, preset, Path(data) / CRITIC_CORPUS, runs, progress=progress)


def loss_critic(critic: str, preset: str, data: str | os.PathLike[str], runs: str | os.PathLike[str], *,
                progress: bool = False) -> Path:
    """The critic used as a loss: :func:`base_critic` fine-tuned on the ``synth-voca`` train split (the paper
    fine-tunes on VOCASET train; ``finetune`` recipe of the preset) into ``runs/loss_critics/<critic>``.

    Args:
        critic: ``ours`` | ``syncnet3d`` | ``no2d``.
        data: the folder holding the corpora (``data/<preset>``).
        runs: the preset's run folder (``runs/<preset>``).
    """
    from p3d.train import api

    if critic not in api.CRITICS:
        raise InputError(f"critic: expected one of {', '.join(api.CRITICS)} for a loss critic, got {critic!r}")
    base = base_critic(critic, preset, data, runs, progress=progress)
    return api.fit("finetune", preset, Path(data) / LOSS_CRITIC_CORPUS, Path(runs) / "loss_critics" / critic,
                   init=base, progress=progress)


def evaluator(preset: str, data: str | os.PathLike[str], runs: str | os.PathLike[str], progress: bool = False) -> Path:
    """The independent PLRS evaluator (``runs/evaluator/final.pt``; synth-lrs3 identity half 2)."""
    from p3d.train import api

    return api.train_evaluator(preset, Path(data) / CRITIC_CORPUS, runs, progress=progress)


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
    baseline run finished (:func:`train_run` of ``exp.baseline``)."""
    if exp.critic == "none":
        return None
    if exp.relative_weight is None:
        return exp.weight_or_default
    base = run_dir(exp.baseline, dirs)
    if not (base / "final.pt").exists():
        raise InputError(f"{exp.name}: relative weight {exp.relative_weight:g} needs the finished baseline run "
                         f"{base} (run {exp.baseline.name} first)")
    return float(exp.relative_weight) * loss_scale(base)


# -- training -----------------------------------------------------------------------------------------
def _request(exp: TalkerExperiment, dirs: Any, critic_ckpt: Path | None, weight: float | None) -> dict[str, Any]:
    return {"kind": "talker", "model": exp.model, "critic": exp.critic, "preset": exp.preset, "seed": exp.seed,
            "steps": exp.steps, "train": [str(corpus_dir(c, exp.preset, dirs).resolve()) for c in exp.train],
            "critic_checkpoint": None if critic_ckpt is None else str(Path(critic_ckpt).resolve()),
            "loss_weight": weight, "relative_weight": exp.relative_weight}


def train_run(exp: TalkerExperiment, dirs: Any, *, progress: bool = False, force: bool = False) -> dict[str, Any]:
    """Train ``exp`` into ``runs/<preset>/talkers/<name>`` (reuse a finished run of the same request, resume an
    unfinished one, refuse a folder holding another request unless ``force``); returns
    ``{"run_dir", "loss_weight", "train_s", "reused"}`` (``train_s``: the seconds recorded when it trained)."""
    from p3d.atomic import write_json
    from p3d.train.api import claim_run_dir
    from p3d.train.talker import build, train_talker

    out = run_dir(exp, dirs)
    data, runs = data_root(dirs, exp.preset), runs_root(dirs, exp.preset)
    if exp.critic != "none" and exp.relative_weight is not None and not (run_dir(exp.baseline, dirs) / "final.pt").exists():
        train_run(exp.baseline, dirs, progress=progress)
    critic_ckpt = loss_critic(exp.critic, exp.preset, data, runs, progress=progress) if exp.critic != "none" else None
    weight = resolve_weight(exp, dirs)
    request = _request(exp, dirs, critic_ckpt, weight)
    final, timing_path = out / "final.pt", out / "timing.json"
    if claim_run_dir(out, request, force=force):
        recorded = json.loads(timing_path.read_text()) if timing_path.exists() else {}
        log.info("%s: reusing the finished run", exp.name)
        return {"run_dir": out, "loss_weight": weight, "train_s": recorded.get("train_s"), "reused": True}
    shared = share_earlier_stages(exp, dirs)
    start = time.perf_counter()
    job = build(exp.model, exp.preset, [corpus_dir(c, exp.preset, dirs) for c in exp.train], critic=exp.critic,
                critic_checkpoint=critic_ckpt, loss_weight=weight, seed=exp.seed, steps=exp.steps,
                speech_cache_dir=runs / "speech_cache", progress=progress)
    result = train_talker(job, out, progress=progress)
    seconds = time.perf_counter() - start
    if not final.exists():
        raise InputError(f"{out}: training stopped at step {result['step']} of {job.cfg.steps} without final.pt")
    write_json(timing_path, {"train_s": round(seconds, 2), "steps": job.cfg.steps, "pid": os.getpid(),
                             "stages_from_baseline": shared})
    log.info("%s: trained in %.0f s", exp.name, seconds)
    return {"run_dir": out, "loss_weight": weight, "train_s": round(seconds, 2), "reused": False}


def share_earlier_stages(exp: TalkerExperiment, dirs: Any) -> list[str]:
    """Copy the finished earlier training stages (CodeTalker's VQ-VAE motion prior) of ``exp``'s baseline run into
    ``exp``'s run folder, so that only the last stage trains with the perceptual loss; returns the stages copied.

    Those stages never see the loss (:func:`p3d.train.talker.run_earlier_stages`) and start from the same seed,
    data and recipe, so the copy is what the run would compute itself (CodeTalker's protocol: one motion prior,
    then the speech stage). The trainer resumes the copied stage at its last step, i.e. does nothing there."""
    if exp.critic == "none":
        return []
    base, out = run_dir(exp.baseline, dirs), run_dir(exp, dirs)
    if not (base / "final.pt").exists() or not (base / "config.json").exists():
        return []
    stages = json.loads((base / "config.json").read_text()).get("stages", ["main"])
    shared = []
    for stage in stages[:-1]:
        src, dst = base / stage, out / stage
        if dst.exists() or not (src / "config.json").exists() or not any((src / "checkpoints").glob("*")):
            continue
        shutil.copytree(src, dst)
        shared.append(stage)
        log.info("%s: stage %s copied from the baseline run %s", exp.name, stage, base.name)
    return shared


# -- evaluation ---------------------------------------------------------------------------------------
def _stamp(path: Path) -> list[Any]:
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def _eval_config(corpus: Path, pred: Path, plrs: Path, out: Path, n_resamples: int) -> Any:
    from p3d.corpus import Corpus
    from p3d.evaluate import EvalConfig

    c = Corpus.open(corpus)
    return EvalConfig(pred=pred, gt=corpus, audio=corpus, templates=corpus / "templates.pkl", fps=c.model_fps,
                      gt_fps=c.fps, metrics=("lve", "fdd", "mtm", "slcc", "plrs"), topology=str(corpus / "topology.npz"),
                      out=out, plrs_checkpoint=plrs, bootstrap_resamples=n_resamples)


def _levels(corpus: Path, split: str) -> dict[str, Any]:
    from p3d.corpus import Corpus

    return {c.stem: c.level for c in Corpus.open(corpus).select(split)}


def data_reference(corpus: str, split: str, preset: str, dirs: Any, *, n_resamples: int = 1000,
                   progress: bool = False) -> dict[str, Any]:
    """The data's own PLRS and SLCC (Table 2/4's first row): the ground truth of ``corpus``/``split`` at the
    model frame rate, evaluated as if it were a prediction. Cached in ``talkers/_data/<corpus>_<split>/``.

    Returns ``{"summary": {metric: {...}}, "per_clip": DataFrame, "eval_dir": Path}``.
    """
    import pandas as pd

    from p3d.atomic import save_npy, write_json
    from p3d.corpus import Corpus
    from p3d.evaluate import evaluate, write_report

    root = corpus_dir(corpus, preset, dirs)
    plrs = evaluator(preset, data_root(dirs, preset), runs_root(dirs, preset))
    out = runs_root(dirs, preset) / "talkers" / "_data" / f"{corpus}_{split}"
    key = {"corpus": str(root.resolve()), "split": split, "evaluator": _stamp(plrs), "n_resamples": n_resamples}
    done = out / "table_summary.json"
    if done.exists() and json.loads(done.read_text()).get("key") == key:
        return {"summary": json.loads(done.read_text())["summary"], "per_clip": pd.read_csv(out / "eval" / "per_clip.csv"),
                "eval_dir": out / "eval"}
    c = Corpus.open(root)
    gt = out / "gt"
    gt.mkdir(parents=True, exist_ok=True)
    for clip in c.select(split):
        path = gt / f"{clip.stem}.npy"
        if not path.exists():
            save_npy(path, c.vertices(clip).astype(np.float32))
    report = evaluate(_eval_config(root, gt, plrs, out / "eval", n_resamples), progress=progress)
    write_report(report, out / "eval")
    per_clip = report.per_clip
    summary = summarise(per_clip, None, _levels(root, split), n_resamples=n_resamples)
    write_json(done, {"key": key, "summary": summary})
    return {"summary": summary, "per_clip": per_clip, "eval_dir": out / "eval"}


def evaluate_run(exp: TalkerExperiment, dirs: Any, *, n_resamples: int = 1000, progress: bool = False
                 ) -> dict[str, Any]:
    """Predict ``exp``'s evaluation split with its finished run and evaluate it (cached by the checkpoint,
    evaluator and resamples). Returns ``{"summary", "per_clip", "eval_dir", "predict_s", "evaluate_s"}``."""
    import pandas as pd

    from p3d.atomic import write_json
    from p3d.evaluate import evaluate, write_report
    from p3d.predict import predict_split

    out = run_dir(exp, dirs)
    final = out / "final.pt"
    if not final.exists():
        raise InputError(f"{out}: no final.pt (train {exp.name} first)")
    root = corpus_dir(exp.test_corpus, exp.preset, dirs)
    plrs = evaluator(exp.preset, data_root(dirs, exp.preset), runs_root(dirs, exp.preset))
    data = data_reference(exp.test_corpus, exp.split, exp.preset, dirs, n_resamples=n_resamples)
    pred, ev = out / f"pred_{exp.eval_name}", out / f"eval_{exp.eval_name}"
    levels = {k: (None if v is None else str(v)) for k, v in _levels(root, exp.split).items()}
    key = {"final": _stamp(final), "corpus": str(root.resolve()), "split": exp.split, "evaluator": _stamp(plrs),
           "n_resamples": n_resamples}
    done = ev / "table_summary.json"
    if done.exists():
        cached = json.loads(done.read_text())
        if cached.get("key") == key:
            return {"summary": cached["summary"], "per_clip": pd.read_csv(ev / "per_clip.csv"), "eval_dir": ev,
                    "predict_s": cached.get("predict_s"), "evaluate_s": cached.get("evaluate_s"), "data": data,
                    "levels": levels}
    if pred.exists():  # predictions of an older checkpoint must not be mixed in
        stamp = pred / "checkpoint.json"
        if not stamp.exists() or json.loads(stamp.read_text()) != key["final"]:
            shutil.rmtree(pred)
    start = time.perf_counter()
    predict_split(out, pred, split=exp.split, data=[root], progress=progress)
    write_json(pred / "checkpoint.json", key["final"])
    predict_s = time.perf_counter() - start
    start = time.perf_counter()
    report = evaluate(_eval_config(root, pred, plrs, ev, n_resamples), progress=progress)
    write_report(report, ev)
    summary = summarise(report.per_clip, data["per_clip"], levels, n_resamples=n_resamples)
    evaluate_s = time.perf_counter() - start
    write_json(done, {"key": key, "summary": summary, "predict_s": round(predict_s, 2),
                      "evaluate_s": round(evaluate_s, 2)})
    return {"summary": summary, "per_clip": report.per_clip, "eval_dir": ev, "predict_s": round(predict_s, 2),
            "evaluate_s": round(evaluate_s, 2), "data": data, "levels": levels}


def run_experiment(exp: TalkerExperiment, dirs: Any, *, n_resamples: int = 1000, progress: bool = False
                   ) -> dict[str, Any]:
    """Train (or reuse) ``exp``, predict its evaluation split, evaluate. Returns a dict: ``experiment``,
    ``name``, ``run_dir``, ``eval_dir``, ``loss_weight``, ``loss_ratio`` (median weighted perceptual / model
    loss in the second half of training), ``summary`` (metric -> value and 95% CI over clips; see
    :func:`summarise`), ``per_clip`` (DataFrame, one row per prediction), ``data`` (the data's own
    :func:`data_reference`) and ``timing`` (seconds: ``train_s`` as recorded when it trained,
    ``predict_s``, ``evaluate_s``, ``reused``)."""
    trained = train_run(exp, dirs, progress=progress)
    ev = evaluate_run(exp, dirs, n_resamples=n_resamples, progress=progress)
    return {
        "experiment": dataclasses.asdict(exp), "name": exp.name, "run_dir": str(trained["run_dir"]),
        "eval_dir": str(ev["eval_dir"]), "loss_weight": trained["loss_weight"],
        "loss_ratio": loss_ratio(trained["run_dir"]) if exp.critic != "none" else None,
        "summary": ev["summary"], "per_clip": ev["per_clip"], "data": ev["data"], "levels": ev["levels"],
        "timing": {"train_s": trained["train_s"], "reused": trained["reused"], "predict_s": ev["predict_s"],
                   "evaluate_s": ev["evaluate_s"]},
    }


# -- statistics over test clips (p3d.stats: clip-cluster bootstrap) ---------------------------------------
def _ci(resamples: np.ndarray) -> list[float | None]:
    """95% percentile interval of bootstrap resamples as a JSON list (None, None when undefined)."""
    return list(stats.percentile_interval(resamples, 0.95))


def _num(x: Any) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _slcc_levels(speech: np.ndarray, lip: np.ndarray, ident: np.ndarray, level: np.ndarray | None
                 ) -> dict[str, float]:
    """SLCC over all rows (``"all"``) and, with levels, per level (:func:`p3d.metrics.slcc_by_level`)."""
    from p3d import metrics

    try:
        if level is None:
            return {"all": metrics.slcc(speech, lip, ident)}
        return {str(k): v for k, v in metrics.slcc_by_level(speech, lip, ident, level).items()}
    except InputError:
        return {}


def summarise(per_clip: Any, data_per_clip: Any | None, levels: Mapping[str, Any] | None = None, *,
              n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Table values with 95% CIs from a cluster bootstrap over GT clips.

    Args:
        per_clip: ``p3d eval``'s per-prediction rows (``gt``, ``identity``, ``mtm_ms``, ``lve``, ``fdd``,
            ``plrs``, ``speech_intensity``, ``lip_intensity``).
        data_per_clip: the data's own rows (:func:`data_reference`), for SLCC's Delta (paired by clip);
            None for the data itself.
        levels: GT stem -> intensity level (None: no level); level-wise SLCC when any level is set.

    Returns:
        ``{"n_clips", "n_predictions", "mtm_ms", "lve", "fdd", "plrs": {"value", "ci"},
        "slcc": {level or "all": {"value", "ci", "data", "delta", "delta_ci"}}}``; LVE and FDD in m^2 (the
        corpus' squared units), MTM in ms at the model frame rate.
    """
    stems = sorted(per_clip["gt"].str.removesuffix(".npy").unique())
    code_of = {s: i for i, s in enumerate(stems)}
    codes = per_clip["gt"].str.removesuffix(".npy").map(code_of).to_numpy()
    counts = stats.resample_counts(len(stems), n_resamples, seed)
    out: dict[str, Any] = {"n_clips": len(stems), "n_predictions": int(len(per_clip)), "n_resamples": n_resamples}
    for key, col in (("mtm_ms", "mtm_ms"), ("lve", "lve"), ("fdd", "fdd"), ("plrs", "plrs")):
        if col not in per_clip:
            continue
        point, boot = stats.cluster_mean_resamples(per_clip[col].to_numpy(dtype=np.float64), codes, counts)
        out[key] = {"value": _num(point), "ci": _ci(boot)}
    if "speech_intensity" not in per_clip:
        return out
    level_of = dict(levels or {})
    has_levels = any(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in level_of.values())

    def arrays(df: Any) -> tuple[np.ndarray, ...]:
        stem = df["gt"].str.removesuffix(".npy")
        lv = stem.map(lambda s: str(level_of.get(s))).to_numpy() if has_levels else None
        return (df["speech_intensity"].to_numpy(np.float64), df["lip_intensity"].to_numpy(np.float64),
                df["identity"].astype(str).to_numpy(), lv, stem.map(code_of).to_numpy())

    model = arrays(per_clip)
    data = None
    if data_per_clip is not None:
        d = data_per_clip[data_per_clip["gt"].str.removesuffix(".npy").isin(list(code_of))]
        data = arrays(d.drop_duplicates("gt"))
    point = _slcc_levels(*model[:4])
    point_data = _slcc_levels(*data[:4]) if data is not None else {}
    boot: dict[str, list[float]] = {k: [] for k in point}
    boot_delta: dict[str, list[float]] = {k: [] for k in point}
    for w in counts:
        rows = np.repeat(np.arange(len(model[4])), w[model[4]])
        r = _slcc_levels(*(a[rows] if a is not None else None for a in model[:4]))
        if data is not None:
            drows = np.repeat(np.arange(len(data[4])), w[data[4]])
            rd = _slcc_levels(*(a[drows] if a is not None else None for a in data[:4]))
        for k in point:
            boot[k].append(r.get(k, np.nan))
            if data is not None:
                boot_delta[k].append(abs(r.get(k, np.nan) - rd.get(k, np.nan)))
    out["slcc"] = {}
    for k, v in point.items():
        entry = {"value": _num(v), "ci": _ci(np.array(boot[k]))}
        if data is not None:
            dv = point_data.get(k)
            entry.update({"data": _num(dv), "delta": _num(abs(v - dv)) if dv is not None else None,
                          "delta_ci": _ci(np.array(boot_delta[k]))})
        out["slcc"][k] = entry
    return out


def paired_difference(a: Mapping[str, Any], b: Mapping[str, Any], metric: str, *, level: str = "all",
                      n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """``metric(b) - metric(a)`` for two results evaluated on the same clips, with a paired cluster-bootstrap
    95% CI (the same resampled clips for both). ``metric``: ``mtm_ms``, ``lve``, ``fdd``, ``plrs`` or
    ``slcc_delta`` (Delta of SLCC at ``level``)."""
    pa, pb = a["per_clip"], b["per_clip"]
    stems = sorted(set(pa["gt"].str.removesuffix(".npy")) & set(pb["gt"].str.removesuffix(".npy")))
    if not stems:
        raise InputError("paired_difference: the two results share no evaluated clip")
    if metric != "slcc_delta":
        d = stats.paired_cluster_difference(pa[metric].to_numpy(np.float64), pa["gt"].str.removesuffix(".npy"),
                                            pb[metric].to_numpy(np.float64), pb["gt"].str.removesuffix(".npy"),
                                            confidence=0.95, n_resamples=n_resamples, seed=seed)
        return {"a": d.a, "b": d.b, "diff": d.diff, "ci": [d.low, d.high]}
    # Delta of SLCC: SLCC is recomputed on every resample of the common clips (the same draw for both runs)
    code_of = {s: i for i, s in enumerate(stems)}
    counts = stats.resample_counts(len(stems), n_resamples, seed)

    def sel(df: Any) -> Any:
        return df[df["gt"].str.removesuffix(".npy").isin(list(code_of))]

    levels = a.get("levels")
    data = sel(a["data"]["per_clip"]).drop_duplicates("gt")

    def delta(df: Any, w: np.ndarray | None) -> float:
        codes = df["gt"].str.removesuffix(".npy").map(code_of).to_numpy()
        dcodes = data["gt"].str.removesuffix(".npy").map(code_of).to_numpy()
        rows = np.arange(len(df)) if w is None else np.repeat(np.arange(len(df)), w[codes])
        drows = np.arange(len(data)) if w is None else np.repeat(np.arange(len(data)), w[dcodes])
        lv = None if level == "all" or levels is None else df["gt"].str.removesuffix(".npy").map(
            lambda s: str(levels.get(s))).to_numpy()[rows]
        dlv = None if lv is None else data["gt"].str.removesuffix(".npy").map(
            lambda s: str(levels.get(s))).to_numpy()[drows]
        m = _slcc_levels(df["speech_intensity"].to_numpy(np.float64)[rows], df["lip_intensity"].to_numpy(np.float64)[rows],
                         df["identity"].astype(str).to_numpy()[rows], lv)
        d = _slcc_levels(data["speech_intensity"].to_numpy(np.float64)[drows],
                         data["lip_intensity"].to_numpy(np.float64)[drows], data["identity"].astype(str).to_numpy()[drows],
                         dlv)
        return abs(m.get(level, np.nan) - d.get(level, np.nan))

    sa, sb = sel(pa), sel(pb)
    va, vb = delta(sa, None), delta(sb, None)
    boot = np.array([delta(sb, w) - delta(sa, w) for w in counts])
    return {"a": _num(va), "b": _num(vb), "diff": _num(vb - va), "ci": _ci(boot)}


# -- the grid -----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Task:
    """One unit of the grid: ``fn(*args)`` (a function of this module) after the tasks ``deps``."""

    key: str
    fn: str
    args: tuple[Any, ...]
    deps: tuple[str, ...] = ()


def _task_stage1(preset: str, dirs: Any) -> Path:
    from p3d.train import api

    return api.train_stage1(preset, data_root(dirs, preset) / CRITIC_CORPUS, runs_root(dirs, preset))


def _task_critic(critic: str, preset: str, dirs: Any) -> Path:
    return base_critic(critic, preset, data_root(dirs, preset), runs_root(dirs, preset))


def _task_loss_critic(critic: str, preset: str, dirs: Any) -> Path:
    return loss_critic(critic, preset, data_root(dirs, preset), runs_root(dirs, preset))


def _task_evaluator(preset: str, dirs: Any) -> Path:
    return evaluator(preset, data_root(dirs, preset), runs_root(dirs, preset))


def _task_data(corpus: str, split: str, preset: str, dirs: Any, n_resamples: int) -> dict[str, Any]:
    return data_reference(corpus, split, preset, dirs, n_resamples=n_resamples)["summary"]


def _task_train(exp: TalkerExperiment, dirs: Any) -> dict[str, Any]:
    return train_run(exp, dirs)


def _task_eval(exp: TalkerExperiment, dirs: Any, n_resamples: int) -> dict[str, Any]:
    return run_experiment(exp, dirs, n_resamples=n_resamples)


def plan(experiments: Sequence[TalkerExperiment], dirs: Any, n_resamples: int = 1000) -> list[Task]:
    """The tasks behind ``experiments``, in dependency order: stage 1, the critics and the PLRS evaluator, the
    loss critics, the data references, every distinct training run (baselines before relative-weight runs),
    then one evaluation per experiment."""
    tasks: dict[str, Task] = {}

    def add(task: Task) -> str:
        tasks.setdefault(task.key, task)
        return task.key

    for exp in experiments:
        p = exp.preset
        s1 = add(Task(f"stage1:{p}", "_task_stage1", (p, dirs)))
        ev = add(Task(f"evaluator:{p}", "_task_evaluator", (p, dirs), (s1,)))
        data = add(Task(f"data:{p}:{exp.eval_name}", "_task_data", (exp.test_corpus, exp.split, p, dirs, n_resamples),
                        (ev,)))
        train_deps: list[str] = []
        if exp.critic != "none":
            crit = add(Task(f"critic:{p}:{exp.critic}", "_task_critic", (exp.critic, p, dirs),
                            (s1,) if exp.critic == "ours" else ()))
            train_deps.append(add(Task(f"loss_critic:{p}:{exp.critic}", "_task_loss_critic", (exp.critic, p, dirs),
                                       (crit,))))
            if exp.relative_weight is not None:
                base = exp.baseline.with_(test=None, split="test")
                train_deps.append(add(Task(f"train:{p}:{base.name}", "_task_train", (base, dirs))))
        train = add(Task(f"train:{p}:{exp.name}", "_task_train", (exp, dirs), tuple(train_deps)))
        add(Task(f"eval:{p}:{exp.name}:{exp.eval_name}", "_task_eval", (exp, dirs, n_resamples), (train, data)))
    order = {"stage1": 0, "critic": 1, "evaluator": 1, "loss_critic": 2, "data": 3, "train": 4, "eval": 5}
    ranked = sorted(tasks.values(), key=lambda t: order[t.key.split(":")[0]])
    # a relative-weight run's baseline must come before it
    done: set[str] = set()
    ordered: list[Task] = []
    pending = list(ranked)
    while pending:
        ready = [t for t in pending if set(t.deps) <= done]
        if not ready:
            raise InputError(f"plan: circular dependencies among {[t.key for t in pending]}")
        ordered.append(ready[0])
        done.add(ready[0].key)
        pending.remove(ready[0])
    return ordered


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)


def _execute(fn: str, args: tuple[Any, ...]) -> tuple[Any, float, int]:
    start = time.perf_counter()
    value = globals()[fn](*args)
    return value, time.perf_counter() - start, os.getpid()


@dataclasses.dataclass
class GridResult:
    """What :func:`run_grid` did: ``results`` (one :func:`run_experiment` dict per experiment, in order),
    ``tasks`` (DataFrame: key, seconds, start/end offsets in s, process, status) and ``wall_s``."""

    results: list[dict[str, Any]]
    tasks: Any
    wall_s: float


def run_grid(experiments: Sequence[TalkerExperiment], dirs: Any, *, workers: int = 2, n_resamples: int = 1000,
             progress: bool = True) -> GridResult:
    """Run ``experiments`` (and everything they need, :func:`plan`) in ``workers`` processes of one torch
    thread each, each task once its dependencies are done. Finished runs are reused, so a grid can be
    re-run or extended cheaply. A failed task stops its dependants; the others finish, then the first
    error is raised."""
    import concurrent.futures as cf
    import multiprocessing

    import pandas as pd
    from tqdm.auto import tqdm

    if workers < 1:
        raise InputError(f"workers: expected a positive process count, got {workers}")
    tasks = plan(experiments, dirs, n_resamples)
    by_key = {t.key: t for t in tasks}
    values: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    errors: dict[str, BaseException] = {}
    t0 = time.perf_counter()
    bar = tqdm(total=len(tasks), desc="grid", unit="task", disable=not progress)

    def record(key: str, value: Any, seconds: float, pid: int, status: str) -> None:
        values[key] = value
        end = time.perf_counter() - t0
        rows.append({"task": key, "seconds": round(seconds, 2), "start_s": round(end - seconds, 1),
                     "end_s": round(end, 1), "process": pid, "status": status})
        bar.update(1)
        log.info("[%d/%d] %s %s in %.1f s", len(rows), len(tasks), key, status, seconds)

    def blocked(t: Task) -> bool:
        return any(d in errors for d in t.deps)

    if workers == 1:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for t in tasks:
                if blocked(t):
                    errors[t.key] = InputError(f"{t.key}: a dependency failed")
                    record(t.key, None, 0.0, os.getpid(), "skipped")
                    continue
                try:
                    record(t.key, *_execute(t.fn, t.args), "done")
                except Exception as exc:  # keep going with the independent tasks
                    errors[t.key] = exc
                    record(t.key, None, 0.0, os.getpid(), f"failed: {exc}")
        finally:
            torch.set_num_threads(threads)
    else:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        ctx = multiprocessing.get_context("spawn")
        pending = list(tasks)
        running: dict[cf.Future[Any], str] = {}
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
            while pending or running:
                for t in list(pending):
                    if blocked(t):
                        pending.remove(t)
                        errors[t.key] = InputError(f"{t.key}: a dependency failed")
                        record(t.key, None, 0.0, 0, "skipped")
                    elif set(t.deps) <= values.keys() and len(running) < workers:
                        pending.remove(t)
                        running[pool.submit(_execute, t.fn, t.args)] = t.key
                if not running:
                    if pending:
                        raise InputError(f"run_grid: tasks waiting on nothing runnable: {[t.key for t in pending]}")
                    break
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    key = running.pop(fut)
                    try:
                        record(key, *fut.result(), "done")
                    except Exception as exc:
                        errors[key] = exc
                        record(key, None, 0.0, 0, f"failed: {exc}")
    bar.close()
    wall = time.perf_counter() - t0
    table = pd.DataFrame(rows)
    first = next((errors[t.key] for t in tasks if t.key in errors and not str(errors[t.key]).endswith(
        "a dependency failed")), None)
    if first is not None:
        failed = ", ".join(k for k in by_key if k in errors)
        log.error("run_grid: failed or skipped tasks: %s", failed)
        raise first
    results = [values[f"eval:{e.preset}:{e.name}:{e.eval_name}"] for e in experiments]
    return GridResult(results=results, tasks=table, wall_s=round(wall, 1))


# -- choosing the weight on the validation split ------------------------------------------------------
def select_kappa(baseline: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]], *,
                 lve_tolerance: float = LVE_TOLERANCE) -> tuple[float, Any]:
    """Choose kappa from validation results: the candidate with the highest val PLRS among those whose val
    LVE is at most ``lve_tolerance`` (relative) above the baseline's; if none is, the smallest kappa.

    Args:
        baseline: :func:`run_experiment` result of the run without critic on the val split.
        candidates: results of the same model with critic ``ours`` and ``relative_weight`` = each kappa.

    Returns:
        (kappa, DataFrame of the evidence: one row per run with kappa, W, the ratio of the weighted
        perceptual loss to the model loss, val MTM / LVE / PLRS / SLCC Delta, the LVE change, chosen).
    """
    import pandas as pd

    if not candidates:
        raise InputError("select_kappa: no candidate results")
    base_lve = baseline["summary"]["lve"]["value"]
    rows = []
    for r in [baseline, *candidates]:
        s, exp = r["summary"], r["experiment"]
        lve = s["lve"]["value"]
        rows.append({
            "model": MODEL_LABELS[exp["model"]], "critic": exp["critic"], "kappa": exp["relative_weight"],
            "W": r["loss_weight"], "W*L_percp / L_model": r["loss_ratio"],
            "val MTM (ms)": s["mtm_ms"]["value"], "val LVE (1e-5 m²)": lve * LVE_SCALE,
            "val PLRS": s["plrs"]["value"], "val PLRS CI low": s["plrs"]["ci"][0],
            "val PLRS CI high": s["plrs"]["ci"][1], "val SLCC Δ": s["slcc"]["all"].get("delta"),
            "LVE change vs baseline": lve / base_lve - 1.0,
        })
    df = pd.DataFrame(rows)
    cand = df.iloc[1:]
    ok = cand[cand["LVE change vs baseline"] <= lve_tolerance]
    pick = ok.loc[ok["val PLRS"].idxmax()] if len(ok) else cand.loc[cand["kappa"].idxmin()]
    kappa = float(pick["kappa"])
    df["chosen"] = [False] + [bool(k == kappa) for k in cand["kappa"]]
    return kappa, df


def selection_experiments(preset: str, *, model: str = "faceformer", candidates: Sequence[float] = KAPPA_CANDIDATES,
                          seed: int = 0, steps: int | None = None) -> list[TalkerExperiment]:
    """The runs behind :func:`select_kappa`, evaluated on ``synth-voca`` **val**: the baseline, then critic
    ``ours`` at each relative weight kappa (Config 1 training; the runs are the same as the test runs')."""
    base = TalkerExperiment(model, "none", CONFIG1, preset, seed, steps=steps, split="val")
    return [base, *(TalkerExperiment(model, "ours", CONFIG1, preset, seed, relative_weight=float(k), steps=steps,
                                     split="val") for k in candidates)]


def chosen_kappa(tables: str | os.PathLike[str], per_model: bool = False) -> float | dict[str, float] | None:
    """The kappa marked ``chosen`` in ``tables/loss_weight_selection.csv`` (notebook 06), or None; with
    ``per_model``, ``{model: kappa}`` from ``loss_weight_selection_per_model_kappa.csv``."""
    import pandas as pd

    path = Path(tables) / ("loss_weight_selection_per_model_kappa.csv" if per_model else "loss_weight_selection.csv")
    if not path.exists():
        return None
    df = pd.read_csv(path)
    rows = df[df["chosen"].astype(str) == "True"]
    if not len(rows):
        return None
    if per_model:
        labels = {v: k for k, v in MODEL_LABELS.items()}
        return {labels[r["model"]]: float(r["kappa"]) for _, r in rows.iterrows()}
    return float(rows["kappa"].iloc[0])


def _kappa_of(kappa: float | Mapping[str, float], model: str) -> float:
    if isinstance(kappa, Mapping):
        if model not in kappa:
            raise InputError(f"kappa: no relative weight for {model!r} (have {', '.join(kappa)})")
        return float(kappa[model])
    return float(kappa)


def config1_experiments(preset: str, kappa: float | Mapping[str, float], *, models: Sequence[str] = MODELS,
                        ablation_models: Sequence[str] | None = None, seed: int = 0, steps: int | None = None
                        ) -> list[TalkerExperiment]:
    """Tables 2, 3 and S7 (train and test ``synth-voca``): every model without and with critic ``ours``, and
    for ``ablation_models`` (default: all) critics ``syncnet3d`` and ``no2d``, all at relative weight kappa
    (one for all models, or ``{model: kappa}``)."""
    ablation = models if ablation_models is None else ablation_models
    out = []
    for m in models:
        out.append(TalkerExperiment(m, "none", CONFIG1, preset, seed, steps=steps))
        out.append(TalkerExperiment(m, "ours", CONFIG1, preset, seed, relative_weight=_kappa_of(kappa, m), steps=steps))
    for m in ablation:
        for critic in ("syncnet3d", "no2d"):
            out.append(TalkerExperiment(m, critic, CONFIG1, preset, seed, relative_weight=_kappa_of(kappa, m),
                                        steps=steps))
    return out


def config2_experiments(preset: str, kappa: float | Mapping[str, float], *, models: Sequence[str] = MODELS,
                        seed: int = 0, steps: int | None = None) -> list[TalkerExperiment]:
    """Table 4 (test ``synth-mead``): per model, trained on synth-voca only (Table 2's run, evaluated on
    synth-mead), on synth-voca + synth-mead, and the latter with critic ``ours`` at relative weight kappa
    (one for all models, or ``{model: kappa}``)."""
    out = []
    for m in models:
        out.append(TalkerExperiment(m, "none", CONFIG1, preset, seed, steps=steps, test="synth-mead"))
        out.append(TalkerExperiment(m, "none", CONFIG2, preset, seed, steps=steps))
        out.append(TalkerExperiment(m, "ours", CONFIG2, preset, seed, relative_weight=_kappa_of(kappa, m), steps=steps))
    return out


def summary_frame(result: Mapping[str, Any]) -> Any:
    """One result's summary as a small table: metric, value, 95% CI (LVE in 1e-5 m², FDD in 1e-7 m²)."""
    import pandas as pd

    s = result["summary"]
    rows = []
    for key, label, scale in (("mtm_ms", "MTM (ms)", 1.0), ("lve", "LVE (1e-5 m²)", LVE_SCALE),
                              ("fdd", "FDD (1e-7 m²)", FDD_SCALE), ("plrs", "PLRS", 1.0)):
        e = s.get(key)
        if e:
            lo, hi = e["ci"]
            rows.append({"metric": label, "value": None if e["value"] is None else e["value"] * scale,
                         "CI low": None if lo is None else lo * scale, "CI high": None if hi is None else hi * scale,
                         "data": (result["data"]["summary"].get(key) or {}).get("value") if key == "plrs" else None})
    for lv, e in s.get("slcc", {}).items():
        name = "SLCC" if lv == "all" else f"SLCC level {lv}"
        rows.append({"metric": name, "value": e["value"], "CI low": e["ci"][0], "CI high": e["ci"][1],
                     "data": e.get("data")})
        rows.append({"metric": f"{name} Δ", "value": e.get("delta"), "CI low": e.get("delta_ci", [None])[0],
                     "CI high": e.get("delta_ci", [None, None])[1], "data": None})
    return pd.DataFrame(rows)


def clip_mtm(result: Mapping[str, Any], dirs: Any, index: int = 0) -> tuple[str, Any]:
    """(prediction file name, :class:`p3d.metrics.MTMResult`) of the ``index``-th evaluated prediction of a
    result, for the Fig. S4-style matching plot."""
    from p3d import metrics
    from p3d.corpus import Corpus

    exp = TalkerExperiment(**{**result["experiment"], "train": tuple(result["experiment"]["train"])})
    row = result["per_clip"].iloc[index]
    corpus = Corpus.open(corpus_dir(exp.test_corpus, exp.preset, dirs))
    gt = corpus.vertices(str(row["gt"]).removesuffix(".npy"))
    pred = np.load(Path(result["run_dir"]) / f"pred_{exp.eval_name}" / row["pred"], allow_pickle=False)
    upper, lower = corpus.topology.mtm_vertices()
    return str(row["pred"]), metrics.mtm(gt, pred, upper=upper, lower=lower)


# -- tables -------------------------------------------------------------------------------------------
def _fmt(entry: Mapping[str, Any] | None, scale: float = 1.0, digits: int = 3, key: str = "value",
         ci_key: str = "ci") -> str:
    if not entry or entry.get(key) is None:
        return "–"
    v = entry[key] * scale
    ci = entry.get(ci_key) or [None, None]
    if ci[0] is None:
        return f"{v:.{digits}f}"
    return f"{v:.{digits}f} [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"


def find(results: Sequence[Mapping[str, Any]], **match: Any) -> Mapping[str, Any] | None:
    """The first result whose experiment has every field in ``match`` (``train`` as a tuple or list)."""
    for r in results:
        exp = r["experiment"]
        if all((tuple(exp[k]) == tuple(v)) if k == "train" else exp.get(k) == v for k, v in match.items()):
            return r
    return None


#: The paper's own numbers (arXiv 2503.20308, from :mod:`p3d.paper`), for the labelled reference columns only;
#: never results of p3d. Table 2/3 rows: (MTM ms, LVE, PLRS, SLCC, Delta) on VOCASET; Table 4 rows: (MTM, LVE,
#: PLRS, (SLCC, Delta) at levels 1, 2, 3 and Avg) on MEAD-3D; Table S7: FDD (x 1e-7).
PAPER_TABLE3: dict[tuple[str, str], tuple[float, ...]] = {
    k: (r.mtm_ms, r.lve, r.plrs, r.slcc, r.slcc_delta) for k, r in paper_numbers.TABLE3.items()}
PAPER_DATA_VOCASET = {"plrs": paper_numbers.VOCASET_DATA.plrs, "slcc": paper_numbers.VOCASET_DATA.slcc}
PAPER_DATA_MEAD = {"plrs": paper_numbers.MEAD_DATA.plrs, "slcc": paper_numbers.MEAD_DATA.slcc}
PAPER_TABLE4: dict[tuple[str, str], tuple[Any, ...]] = {
    k: (r.mtm_ms, r.lve, r.plrs, *r.levels) for k, r in paper_numbers.TABLE4.items()}
PAPER_TABLE_S7 = dict(paper_numbers.TABLE_S7)
PAPER_NOTE = ("Columns headed 'paper:' are the paper's own numbers on the real datasets (VOCASET / MEAD-3D), "
              "copied from arXiv 2503.20308 for reference; they are not p3d results and not in the same data or "
              "units (the paper's LVE scale is not stated; FDD x 1e-7).")


def ours_note(preset: str, corpus: str, results: Sequence[Mapping[str, Any]]) -> str:
    s = results[0]["summary"]
    conditions = sorted({r["summary"]["n_predictions"] // max(1, r["summary"]["n_clips"]) for r in results})
    return (f"p3d at preset `{preset}`, synthetic corpus `{corpus}` (test split: {s['n_clips']} clips, each predicted "
            f"under every training identity of the run: {' or '.join(map(str, conditions))} conditions). "
            f"Cells: value [95% CI], "
            f"percentile cluster bootstrap over test clips ({s['n_resamples']} resamples). MTM in ms at the model "
            f"frame rate; LVE in 1e-5 m² (max over lip vertices of the squared error, mean over frames); PLRS from "
            f"the independent evaluator (synth-lrs3 half 2); SLCC Δ = |SLCC(model) - SLCC(data)| on the same clips.")


def _row(label: str, r: Mapping[str, Any] | None, level: str = "all") -> dict[str, str]:
    if r is None:
        return {"Method": label, "MTM (ms) ↓": "not run", "LVE ↓": "", "PLRS ↑": "", "SLCC": "", "Δ ↓": ""}
    s = r["summary"]
    sl = s["slcc"].get(level, {})
    return {"Method": label, "MTM (ms) ↓": _fmt(s["mtm_ms"], digits=1), "LVE ↓": _fmt(s["lve"], LVE_SCALE),
            "PLRS ↑": _fmt(s["plrs"]), "SLCC": _fmt(sl, digits=2), "Δ ↓": _fmt(sl, digits=2, key="delta", ci_key="delta_ci")}


def _data_row(label: str, data: Mapping[str, Any] | None, level: str = "all") -> dict[str, str]:
    if data is None:
        return {"Method": label}
    s = data["summary"]
    return {"Method": label, "MTM (ms) ↓": "–", "LVE ↓": "–", "PLRS ↑": _fmt(s["plrs"]),
            "SLCC": _fmt(s["slcc"].get(level), digits=2), "Δ ↓": "–"}


def _paper_cols(values: tuple[float, ...] | None, data: dict[str, Any] | None = None) -> dict[str, str]:
    if data is not None:
        return {"paper: MTM": "–", "paper: LVE": "–", "paper: PLRS": f"{data['plrs']:.3f}",
                "paper: SLCC / Δ": f"{data['slcc']:.2f} / –"}
    if values is None:
        return {"paper: MTM": "", "paper: LVE": "", "paper: PLRS": "", "paper: SLCC / Δ": ""}
    mtm, lve, plrs, slcc, delta = values
    return {"paper: MTM": f"{mtm:.1f}", "paper: LVE": f"{lve:.3f}", "paper: PLRS": f"{plrs:.3f}",
            "paper: SLCC / Δ": f"{slcc:.2f} / {delta:.2f}"}


def _train_match(r: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(r["experiment"]["train"])


def table2(results: Sequence[Mapping[str, Any]], models: Sequence[str] = MODELS, *, train: Sequence[str] = CONFIG1
           ) -> Any:
    """Table 2 (Config 1): the data's own PLRS and SLCC, then each model without and with the loss (critic
    ``ours``); results on the ``test`` split of ``synth-voca``."""
    import pandas as pd

    rows = []
    test = [r for r in results if r["experiment"]["split"] == "test" and _train_match(r) == tuple(train)
            and r["experiment"].get("test") in (None, "synth-voca")]
    data = test[0]["data"] if test else None
    rows.append({**_data_row("synth-voca (GT data)", data), **_paper_cols(None, PAPER_DATA_VOCASET)})
    for m in models:
        for critic, label in (("none", MODEL_LABELS[m]), ("ours", "  + ours (perceptual loss)")):
            r = find(test, model=m, critic=critic)
            rows.append({**_row(label, r), **_paper_cols(PAPER_TABLE3[(m, critic)])})
    return pd.DataFrame(rows)


def table3(results: Sequence[Mapping[str, Any]], models: Sequence[str] = MODELS, *, train: Sequence[str] = CONFIG1
           ) -> Any:
    """Table 3 (Config 1): per model, the critic ablation none / 3D SyncNet / w/o 2D prior / ours."""
    import pandas as pd

    test = [r for r in results if r["experiment"]["split"] == "test" and _train_match(r) == tuple(train)
            and r["experiment"].get("test") in (None, "synth-voca")]
    data = test[0]["data"] if test else None
    rows = [{"Model": "synth-voca (data)", "Perceptual loss": "–", **{k: v for k, v in _data_row("", data).items()
                                                                      if k != "Method"},
             **_paper_cols(None, PAPER_DATA_VOCASET)}]
    for m in models:
        for critic in ("none", "syncnet3d", "no2d", "ours"):
            r = find(test, model=m, critic=critic)
            row = _row("", r)
            row.pop("Method")
            rows.append({"Model": MODEL_LABELS[m], "Perceptual loss": CRITIC_LABELS[critic], **row,
                         **_paper_cols(PAPER_TABLE3[(m, critic)])})
    return pd.DataFrame(rows)


def table4(results: Sequence[Mapping[str, Any]], models: Sequence[str] = MODELS) -> Any:
    """Table 4 (Config 2, test ``synth-mead``): per model trained on synth-voca only / + synth-mead /
    + synth-mead + ours, MTM, LVE, PLRS and SLCC / Δ per intensity level and over all levels (Avg)."""
    import pandas as pd

    test = [r for r in results if r["experiment"]["split"] == "test" and
            TalkerExperiment(**{**r["experiment"], "train": tuple(r["experiment"]["train"])}).test_corpus == "synth-mead"]
    levels = ["1", "2", "3", "all"]
    data = test[0]["data"] if test else None

    def level_cells(s: Mapping[str, Any] | None, with_delta: bool = True) -> dict[str, str]:
        out = {}
        for lv in levels:
            e = (s or {}).get("slcc", {}).get(lv)
            name = "Avg" if lv == "all" else f"Lv{lv}"
            out[f"SLCC {name}"] = _fmt(e, digits=2)
            if with_delta:
                out[f"Δ {name} ↓"] = _fmt(e, digits=2, key="delta", ci_key="delta_ci")
        return out

    def paper(v: tuple[Any, ...] | None) -> dict[str, str]:
        if v is None:
            return {"paper: MTM / LVE / PLRS": "", "paper: SLCC/Δ Lv1, Lv2, Lv3, Avg": ""}
        return {"paper: MTM / LVE / PLRS": f"{v[0]:.1f} / {v[1]:.3f} / {v[2]:.3f}",
                "paper: SLCC/Δ Lv1, Lv2, Lv3, Avg": ", ".join(f"{a:.2f}/{b:.2f}" for a, b in v[3:])}

    rows = []
    ds = data["summary"] if data else None
    data_cells = {k: ("–" if k.startswith("Δ") else v) for k, v in level_cells(ds).items()}
    rows.append({"Method": "synth-mead (GT data)", "MTM (ms) ↓": "–", "LVE ↓": "–",
                 "PLRS ↑": _fmt(ds["plrs"]) if ds else "–", **data_cells,
                 "paper: MTM / LVE / PLRS": f"– / – / {PAPER_DATA_MEAD['plrs']:.3f}",
                 "paper: SLCC/Δ Lv1, Lv2, Lv3, Avg": ", ".join(f"{a:.2f}/–" for a in PAPER_DATA_MEAD["slcc"])})
    for m in models:
        for key, train, critic, label in (("voca", CONFIG1, "none", f"{MODEL_LABELS[m]} (synth-voca only)"),
                                          ("mead", CONFIG2, "none", "  + synth-mead"),
                                          ("mead+ours", CONFIG2, "ours", "    + ours (perceptual loss)")):
            r = find(test, model=m, critic=critic, train=train)
            s = r["summary"] if r else None
            rows.append({"Method": label, "MTM (ms) ↓": _fmt(s["mtm_ms"], digits=1) if s else "not run",
                         "LVE ↓": _fmt(s["lve"], LVE_SCALE) if s else "", "PLRS ↑": _fmt(s["plrs"]) if s else "",
                         **level_cells(s), **paper(PAPER_TABLE4[(m, key)])})
    return pd.DataFrame(rows)


def table_s7(results: Sequence[Mapping[str, Any]], models: Sequence[str] = MODELS, *,
             train: Sequence[str] = CONFIG1) -> Any:
    """Table S7 (Config 1): FDD (GT minus prediction upper-face dynamics, signed; 1e-7 m²) without / with ours."""
    import pandas as pd

    test = [r for r in results if r["experiment"]["split"] == "test" and _train_match(r) == tuple(train)
            and r["experiment"].get("test") in (None, "synth-voca")]
    rows = []
    for m in models:
        for critic, label in (("none", MODEL_LABELS[m]), ("ours", "  + ours (perceptual loss)")):
            r = find(test, model=m, critic=critic)
            rows.append({"Model": label, "FDD (1e-7 m²)": _fmt(r["summary"]["fdd"], FDD_SCALE) if r else "not run",
                         "paper: FDD (x 1e-7)": f"{PAPER_TABLE_S7[(m, critic)]:.3f}"})
    return pd.DataFrame(rows)


#: Direction of improvement per metric (+1: higher is better).
BETTER = {"mtm_ms": -1, "lve": -1, "plrs": +1, "slcc_delta": -1, "fdd_abs": -1}
METRIC_LABELS = {"mtm_ms": "MTM (ms)", "lve": "LVE (1e-5 m²)", "plrs": "PLRS", "slcc_delta": "SLCC Δ"}


def loss_effects(pairs: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]], *,
                 metrics: Sequence[str] = ("mtm_ms", "lve", "plrs", "slcc_delta"), level: str = "all",
                 n_resamples: int = 1000) -> Any:
    """The paper's claim, tested: for each (label, without, with) pair of results on the same clips, the change
    of each metric with a paired 95% CI, and a verdict: ``better`` / ``worse`` when the CI excludes 0 in that
    direction, else ``no clear change``."""
    import pandas as pd

    rows = []
    for label, a, b in pairs:
        for metric in metrics:
            d = paired_difference(a, b, metric, level=level, n_resamples=n_resamples)
            scale = LVE_SCALE if metric == "lve" else 1.0
            lo, hi = d["ci"]
            if lo is None or d["diff"] is None:
                verdict = "undefined"
            elif lo > 0 or hi < 0:
                verdict = "better" if (d["diff"] > 0) == (BETTER[metric] > 0) else "worse"
            else:
                verdict = "no clear change"
            rows.append({"comparison": label, "metric": METRIC_LABELS[metric],
                         "without": None if d["a"] is None else d["a"] * scale,
                         "with": None if d["b"] is None else d["b"] * scale,
                         "change": None if d["diff"] is None else d["diff"] * scale,
                         "change CI low": None if lo is None else lo * scale,
                         "change CI high": None if hi is None else hi * scale, "verdict": verdict})
    return pd.DataFrame(rows)


def timing_table(grid: GridResult) -> Any:
    """Per-task seconds of a grid (training runs and their evaluations) with the wall time."""
    df = grid.tasks.copy()
    df["kind"] = df["task"].str.split(":").str[0]
    return df


def run_timing(results: Sequence[Mapping[str, Any]]) -> Any:
    """Seconds per run: training (as recorded when it trained, in its own process), prediction and evaluation
    of each evaluated split (as recorded when they ran); ``reused``: the training was found finished."""
    import pandas as pd

    rows = []
    for r in results:
        t = r["timing"]
        rows.append({"run": r["name"], "evaluated": Path(r["eval_dir"]).name.removeprefix("eval_"),
                     "train_s": t["train_s"], "predict_s": t["predict_s"], "evaluate_s": t["evaluate_s"],
                     "reused": t["reused"]})
    return pd.DataFrame(rows)


def long_form(results: Sequence[Mapping[str, Any]]) -> Any:
    """Every result's numbers, machine-readable: one row per (run, evaluated split, metric[, level])."""
    import pandas as pd

    rows = []
    for r in results:
        exp = r["experiment"]
        base = {"run": r["name"], "model": exp["model"], "critic": exp["critic"], "train": "+".join(exp["train"]),
                "test": TalkerExperiment(**{**exp, "train": tuple(exp["train"])}).test_corpus, "split": exp["split"],
                "loss_weight": r["loss_weight"], "n_clips": r["summary"]["n_clips"]}
        for key in ("mtm_ms", "lve", "fdd", "plrs"):
            e = r["summary"].get(key)
            if e:
                rows.append({**base, "metric": key, "level": None, "value": e["value"], "ci_low": e["ci"][0],
                             "ci_high": e["ci"][1]})
        for lv, e in r["summary"].get("slcc", {}).items():
            rows.append({**base, "metric": "slcc", "level": lv, "value": e["value"], "ci_low": e["ci"][0],
                         "ci_high": e["ci"][1]})
            if "delta" in e:
                rows.append({**base, "metric": "slcc_delta", "level": lv, "value": e["delta"],
                             "ci_low": e["delta_ci"][0], "ci_high": e["delta_ci"][1]})
    return pd.DataFrame(rows)


def write_tables(tables: Mapping[str, tuple[Any, str, str | None]], out: str | os.PathLike[str]) -> list[Path]:
    """``{name: (DataFrame, title, note)}`` -> ``out/<name>.csv`` and ``.md`` (:func:`p3d.tables.write_table`)."""
    from p3d.tables import write_table

    paths = []
    for name, (df, title, note) in tables.items():
        paths.extend(write_table(df, Path(out) / name, title=title, note=note))
    return paths


__all__ = [
    "CONFIG1", "CONFIG2", "KAPPA_CANDIDATES", "TalkerExperiment", "GridResult", "Task", "base_critic", "loss_critic",
    "evaluator", "loss_scale", "loss_ratio", "resolve_weight", "train_run", "share_earlier_stages", "data_reference", "evaluate_run",
    "run_experiment", "summarise", "paired_difference", "plan", "run_grid", "select_kappa", "table2", "table3",
    "table4", "table_s7", "loss_effects", "long_form", "timing_table", "write_tables", "prepare_corpora", "ours_note",
    "selection_experiments", "chosen_kappa", "run_timing", "config1_experiments", "config2_experiments", "summary_frame", "clip_mtm",
]
