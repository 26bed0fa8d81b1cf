"""Where every file of the experiments lives: one typed layout over the output folders of a preset.

``data/<preset>/<corpus>/`` the synthetic corpora; ``runs/<preset>/`` the preset's runs:

- ``stage1/``, ``ours/``, ``syncnet3d/``, ``no2d/``: critic pipeline 0 (the critics on synth-lrs3
  identity half 1); ``loss_critics/<critic>/``: those critics fine-tuned on synth-voca train (the loss);
- ``critic_seed<c>/`` (c >= 1): the same tree for the independent critic pipeline ``c``;
- ``evaluator/``: the PLRS evaluator (one for every run: the measuring instrument) and ``stage1_evaluator/``
  its own stage 1: synth-lrs3 identity half 2, its own seed, no weights of a critic pipeline;
- ``talkers/<run>/``: a talker training run (``final.pt``, ``metrics.csv``, ``val.csv``, ``request.json``,
  ``timing.json``), its predictions ``pred_<corpus>_<split>/`` and evaluation ``eval_<corpus>_<split>/``
  (``per_clip.csv``, ``summary.json``, ``table_summary.json``);
- ``talkers/_data/<corpus>_<split>/``: the data's own PLRS and SLCC (ground truth evaluated as a prediction);
- ``speech_cache/``: the critics' speech embeddings shared by runs; ``speech_cache/plrs/`` PLRS' of the GT audio;
- ``fbank_cache/``: the corpora's speech fbanks at the critics' frame rate (:class:`p3d.audio.FeatureCache`), shared
  by the analyses that window a corpus once per critic (notebook 04).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from p3d import registry
from p3d.errors import InputError
from p3d.experiments.spec import TalkerExperiment


@dataclasses.dataclass(frozen=True)
class RunLayout:
    """The folders of one preset (``dirs``: :class:`p3d.paths.OutputDirs`, or anything with ``data`` and
    ``runs`` attributes)."""

    data_dir: Path
    runs_dir: Path
    preset: str

    @classmethod
    def of(cls, dirs: Any, preset: str) -> RunLayout:
        registry.preset(preset)
        return cls(Path(dirs.data), Path(dirs.runs), preset)

    # -- data ------------------------------------------------------------------------------------------
    @property
    def data(self) -> Path:
        """The folder holding the preset's corpora (``data/<preset>``)."""
        return self.data_dir / self.preset

    def corpus(self, name: str, *, check: bool = True) -> Path:
        """``data/<preset>/<name>``; with ``check`` an :class:`InputError` when it has not been built."""
        path = self.data / name
        if check and not (path / "meta.json").exists() and not (path / "vertices_npy").is_dir():
            raise InputError(f"{path}: corpus {name!r} not found; build it first "
                             f"(p3d.experiments.prepare_corpora or `p3d data synth --preset {self.preset}`)")
        return path

    # -- runs ------------------------------------------------------------------------------------------
    @property
    def runs(self) -> Path:
        """``runs/<preset>``."""
        return self.runs_dir / self.preset

    def critic_runs(self, critic_seed: int = 0) -> Path:
        """The run folder of critic pipeline ``critic_seed`` (0: ``runs/<preset>``, else ``critic_seed<c>/``)."""
        return self.runs if critic_seed == 0 else self.runs / f"critic_seed{critic_seed}"

    def critic(self, critic: str, critic_seed: int = 0) -> Path:
        """A base critic's run folder (``ours`` is stage 2; its stage 1 is :meth:`stage1`)."""
        return self.critic_runs(critic_seed) / registry.check_critic(critic)

    def stage1(self, critic_seed: int = 0) -> Path:
        return self.critic_runs(critic_seed) / "stage1"

    def loss_critic(self, critic: str, critic_seed: int = 0) -> Path:
        return self.critic_runs(critic_seed) / "loss_critics" / registry.check_critic(critic)

    @property
    def evaluator(self) -> Path:
        from p3d.train.api import EVALUATOR_DIR

        return self.runs / EVALUATOR_DIR

    @property
    def evaluator_stage1(self) -> Path:
        """The PLRS evaluator's own stage 1 (never a critic pipeline's :meth:`stage1`)."""
        from p3d.train.api import EVALUATOR_STAGE1_DIR

        return self.runs / EVALUATOR_STAGE1_DIR

    @property
    def speech_cache(self) -> Path:
        return self.runs / "speech_cache"

    @property
    def plrs_speech_cache(self) -> Path:
        """PLRS' speech embeddings of the GT audio, shared by every evaluation (:class:`p3d.evaluate.EvalConfig`)."""
        return self.speech_cache / "plrs"

    @property
    def fbank_cache(self) -> Path:
        """Speech fbanks of the corpora (``windows_for_model(..., cache_dir=)``): keyed by wav bytes, frame rate and
        fbank options, so every critic windowing the same audio reads them instead of recomputing them."""
        return self.runs / "fbank_cache"

    @property
    def talkers(self) -> Path:
        return self.runs / "talkers"

    def run(self, exp: TalkerExperiment) -> Path:
        """The training run folder of ``exp``."""
        self._check(exp)
        return self.talkers / exp.name

    def predictions(self, exp: TalkerExperiment) -> Path:
        """``exp``'s predictions of its evaluation split (``p3d predict`` layout, ``<clip>_condition_<id>.npy``)."""
        return self.run(exp) / f"pred_{exp.eval_name}"

    def evaluation(self, exp: TalkerExperiment) -> Path:
        return self.run(exp) / f"eval_{exp.eval_name}"

    def data_reference(self, corpus: str, split: str) -> Path:
        return self.talkers / "_data" / f"{corpus}_{split}"

    def training_runs(self, experiments: Sequence[TalkerExperiment] | None = None,
                      critic_pipelines: int | None = None) -> list[Path]:
        """Every finished or started training run of the preset that records a configuration: the critic
        pipelines (stage 1, critics, loss critics), the evaluator (its stage 1, then itself) and the talkers (the rows of the
        convergence table). ``experiments`` / ``critic_pipelines``: only the talker runs of those experiments and
        the critic pipelines ``0 .. critic_pipelines - 1`` (a spec's runs; other runs that share ``runs/<preset>``,
        such as another grid's, are left out); None: every run folder found (not hidden ones: a folder being staged,
        :func:`p3d.train.trainer.staging_dir`)."""
        if critic_pipelines is not None:
            pipelines = [self.critic_runs(c) for c in range(critic_pipelines)]
        else:
            pipelines = [self.runs, *sorted(self.runs.glob("critic_seed*"))] if self.runs.is_dir() else []
        found = []
        for root in pipelines:
            found += [root / n for n in ("stage1", *registry.CRITICS)]
            found += sorted(p for p in (root / "loss_critics").glob("*") if not p.name.startswith("."))
        found += [self.evaluator_stage1, self.evaluator]
        if experiments is not None:  # an equal-length run's own-length run too: where its own rule stopped it
            found += sorted({self.run(e) for e in experiments} | {self.run(e.own_length) for e in experiments})
        elif self.talkers.is_dir():
            found += sorted(p for p in self.talkers.glob("*") if not p.name.startswith(("_", ".")))
        return [p for p in found if (p / "config.json").is_file()]

    def validation_curves(self, convergence: Any, experiments: Sequence[TalkerExperiment]
                          ) -> list[tuple[Path, str, str]]:
        """The runs of ``convergence`` (:func:`p3d.train.convergence.convergence_table` over :meth:`training_runs`,
        ``run`` relative to :attr:`runs`) that recorded a validation curve (``val.csv``), in its order, as
        ``(run folder, panel, label)`` for :func:`p3d.viz.training.plot_validation_overview`: a talker of
        ``experiments`` (or its own-length run) in its model's panel, labelled by its arm (``critic, corpora``, so
        that its seeds share a colour); the critic pipelines' ``stage1`` in ``stage 1``, the fine-tuned loss critics
        (``finetune``) in ``loss critics``, any other run in ``critics``, each labelled by its folder."""
        arm = {self.run(x): (registry.MODEL_LABELS[e.model], f"{e.critic}, {'+'.join(e.train)}")
               for e in experiments for x in (e, e.own_length)}
        pipeline_panel = {"stage1": "stage 1", "finetune": "loss critics"}
        out = []
        for r in convergence.itertuples(index=False):
            run = self.runs / r.run
            if (run / "val.csv").is_file():
                out.append((run, *arm[run]) if run in arm else (run, pipeline_panel.get(r.kind, "critics"), r.run))
        return out

    def _check(self, exp: TalkerExperiment) -> None:
        if exp.preset != self.preset:
            raise InputError(f"{exp.name}: preset {exp.preset!r} is not this layout's {self.preset!r}")


def layout(dirs: Any, preset: str) -> RunLayout:
    """:meth:`RunLayout.of`."""
    return RunLayout.of(dirs, preset)


def prediction_dirs(dirs: Any, results: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Path]:
    """``{label: predictions folder}`` of labelled results (each a run result with an ``experiment``)."""
    out = {}
    for label, r in results.items():
        if r is None:
            raise InputError(f"{label}: no result (the run is not in the grid)")
        exp = TalkerExperiment.from_dict(r["experiment"])
        out[label] = layout(dirs, exp.preset).predictions(exp)
    return out


def loss_comparison_dirs(dirs: Any, spec: Any, weight: float | Mapping[str, float] | None, models: Sequence[str],
                         seed: int = 0) -> dict[str, Path]:
    """``{"<model>/base": folder, "<model>/ours": folder}``: the predictions of each of ``models`` on the
    ``synth-voca`` test split (Config 1) without and with the perceptual loss (critic ``ours`` at ``weight``, the
    kappa or W of ``spec``'s weight rule), i.e. the runs of notebook 06 at ``spec``'s preset and talker ``seed``:
    the conditions of the loss user study (paper Tables S4/S5). ``spec``: an
    :class:`~p3d.experiments.spec.ExperimentSpec`. InputError naming the run when its predictions are missing."""
    from p3d.experiments.spec import CONFIG1
    from p3d.io import is_ignored_name

    lay = layout(dirs, spec.preset)
    out = {}
    for model in models:
        for variant, critic in (("base", "none"), ("ours", "ours")):
            exp = spec.experiment(model, critic, CONFIG1, seed, weight=weight)
            folder = lay.predictions(exp)
            if not any(not is_ignored_name(p.name) for p in folder.glob("*.npy")):  # a killed write's temporary
                raise InputError(f"{folder}: no predictions of run {exp.name} (run notebook 06 at preset "
                                 f"{spec.preset!r}, or p3d.experiments.run_experiment, first)")
            out[f"{model}/{variant}"] = folder
    return out


def baseline_encoder_runs(dirs: Any, spec: Any, models: Sequence[str], seed: int = 0
                          ) -> dict[str, tuple[str, Path]]:
    """The trained audio encoders that :func:`p3d.analysis.level_probe.level_probe_table` reads (its ``trained``):
    ``{label: (model, run folder)}``, for each of ``models``, its run without the loss at talker ``seed`` trained on
    ``synth-voca`` (Table 2) and, for the models in ``spec``'s Table 4, on ``synth-voca + synth-mead`` (Table 4).
    ``spec``: an :class:`~p3d.experiments.spec.ExperimentSpec`. InputError naming the first run not trained yet
    (notebooks 06 and 07 train them)."""
    from p3d.experiments.spec import CONFIG1, CONFIG2

    lay = layout(dirs, spec.preset)
    out = {}
    for model in models:
        for train, what, table in ((CONFIG1, "synth-voca", 2), (CONFIG2, "synth-voca + synth-mead", 4)):
            if table == 4 and model not in spec.models_of(4):
                continue
            run = lay.run(spec.experiment(model, "none", train, seed))
            if not (run / "final.pt").is_file():
                raise InputError(f"{run}: run {run.name} is not trained (run notebook "
                                 f"{'06' if table == 2 else '07'} at preset {spec.preset!r} first)")
            out[f"{registry.MODEL_LABELS.get(model, model)}: trained on {what} (Table {table}, seed {seed})"] = (model, run)
    return out


# -- the functions of before the layout ---------------------------------------------------------------------
def data_root(dirs: Any, preset: str) -> Path:
    """The folder holding the preset's corpora (``data/<preset>``)."""
    return layout(dirs, preset).data


def runs_root(dirs: Any, preset: str) -> Path:
    """The preset's run folder (``runs/<preset>``)."""
    return layout(dirs, preset).runs


def run_dir(exp: TalkerExperiment, dirs: Any) -> Path:
    return layout(dirs, exp.preset).run(exp)


def corpus_dir(name: str, preset: str, dirs: Any) -> Path:
    return layout(dirs, preset).corpus(name)
