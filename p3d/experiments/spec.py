"""What an experiment is: one talking-head training request (:class:`TalkerExperiment`) and, per preset, the
settings of the whole grid (:class:`ExperimentSpec`: models, arms, seeds per table, critic pipelines,
stopping rule, loss-weight rule), and the experiment lists of the paper's tables built from them."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from p3d import paper, registry
from p3d.errors import InputError

CONFIG1: tuple[str, ...] = ("synth-voca",)
CONFIG2: tuple[str, ...] = ("synth-voca", "synth-mead")
#: Where the critics and the PLRS evaluator train (the LRS3 stand-in, as the paper's stage 2).
CRITIC_CORPUS = "synth-lrs3"
#: Where the loss critics are fine-tuned (paper C.2: VOCASET train).
LOSS_CRITIC_CORPUS = "synth-voca"
TALKER_CORPORA: tuple[str, ...] = ("synth-voca", "synth-mead")
MODELS: tuple[str, ...] = registry.MODELS
CRITICS: tuple[str, ...] = registry.TALKER_CRITICS
#: Table 3's ablation critics, each compared with critic ``ours`` as the perceptual loss (paper Table 3).
ABLATION_CRITICS: tuple[str, ...] = paper.TABLE3_ABLATIONS
PRESETS: tuple[str, ...] = registry.PRESETS
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: VOCASET's motion scale (m) that the ``full`` spec carries the paper's weight from: the square root of
#: FaceFormer's start-of-training MSE on VOCASET (:data:`p3d.losses.weight.VOCASET_MOTION_RMS`, where it is
#: derived; the same value, kept here so that this module does not import torch).
VOCASET_MOTION_RMS = math.sqrt(paper.FACEFORMER_VOCASET_TRAIN_MSE_START)
MODEL_LABELS = registry.MODEL_LABELS
CRITIC_LABELS = registry.TALKER_CRITIC_LABELS
#: Candidate relative weights kappa for :func:`p3d.experiments.tables.select_kappa` (W = kappa * L_model; about
#: 3 kappa is the ratio of the weighted perceptual loss to the model loss, the InfoNCE of batches of 80 being ~3 nats).
KAPPA_CANDIDATES: tuple[float, ...] = (0.01, 0.1, 1.0)
#: Largest relative increase of val LVE over the baseline's that ``select_kappa`` accepts.
LVE_TOLERANCE = 0.05
#: :attr:`TalkerExperiment.length`: each run's own stop, or its comparison group's longest (see there).
LENGTHS: tuple[str, ...] = ("own", "equal")
#: The stopping-rule fields of a :class:`TalkerExperiment` (:mod:`p3d.train.convergence`).
STOP_FIELDS: tuple[str, ...] = ("stop", "eval_every", "patience", "min_rel_improvement", "smooth")


@dataclasses.dataclass(frozen=True)
class TalkerExperiment:
    """One talking-head training request and the split it is evaluated on.

    Args:
        model: ``faceformer`` | ``codetalker`` | ``selftalk`` (:data:`p3d.registry.MODELS`).
        critic: the perceptual loss' critic: ``none`` (baseline) | ``ours`` | ``syncnet3d`` | ``no2d``.
        train: training corpora (Config 1: ``("synth-voca",)``; Config 2: ``("synth-voca", "synth-mead")``).
        preset: :data:`p3d.registry.PRESETS`.
        seed: the talker's training seed.
        loss_weight: absolute weight W of the perceptual loss.
        relative_weight: kappa: W = kappa * ``loss_scale`` of the baseline run. With neither weight,
            a critic run uses the paper's 1e-7.
        steps: the last training stage's steps (default: the preset's recipe); the cap with ``stop="plateau"``.
        test: the corpus evaluated (default ``synth-mead`` when trained on it, else ``synth-voca``).
        split: its split (``test``; ``val`` for choosing the weight).
        critic_seed: which independent critic pipeline (stage 1 + critic + fine-tuning) the loss uses; 0 is
            the preset's default pipeline.
        stop, eval_every, patience, min_rel_improvement, smooth: the stopping rule of every training of this
            run (the talker and, for critic pipelines, the critics): None takes the preset's rule
            (:attr:`p3d.registry.Preset.stop`) and :mod:`p3d.train.convergence`'s defaults.
        critic_steps: the step count (the cap with ``stop="plateau"``) of the critic pipeline's own critic
            training (None: the recipe's); not part of the run's name (the pipeline's folder records it).
        batch_size: clips per optimisation step of every training stage (None: the recipe's, one clip per
            step as the official code); a batch of B clips averages B single-clip losses
            (:class:`p3d.models.talker.ClipBatch`). Part of the run's name (``b<B>``) when set.
        conditions: how many training identities each evaluated clip is predicted under (None: every one, the
            official VOCASET protocol); k: k identities of the first training corpus (synth-voca, in every
            run), rotating clip by clip (:func:`p3d.predict.rotating_conditions`). Part of :attr:`eval_name`.
        length: ``own`` (the run ends where its stopping rule ends it) or ``equal``: the run of :attr:`own_length`
            continued, without the rule, to the longest stop among the own-length runs of its comparison group
            (the grid's runs of the same model and seed, :func:`equal_length_groups`), so
            that the arms the paper's tables compare have trained equally long (the official scripts train every
            arm a fixed 100 epochs); :func:`p3d.experiments.runs.train_experiment`. Part of the name (``eq``).
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
    critic_seed: int = 0
    stop: str | None = None
    eval_every: int | None = None
    patience: int | None = None
    min_rel_improvement: float | None = None
    smooth: int | None = None
    critic_steps: int | None = None
    batch_size: int | None = None
    conditions: int | None = None
    length: str = "own"

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
        from p3d.losses.perceptual_loss import check_weight

        for name in ("loss_weight", "relative_weight"):
            if getattr(self, name) is not None:
                check_weight(getattr(self, name), name)
        if self.loss_weight is not None and self.relative_weight is not None:
            raise InputError("loss_weight and relative_weight: give one, not both")
        if self.critic == "none" and (self.loss_weight is not None or self.relative_weight is not None):
            raise InputError("loss_weight / relative_weight: a run without critic has no perceptual loss")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"steps: expected a positive step count, got {self.steps}")
        for name in ("seed", "critic_seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(f"{name}: expected a non-negative integer, got {value!r}")
        if self.critic_steps is not None and self.critic_steps < 1:
            raise InputError(f"critic_steps: expected a positive step count, got {self.critic_steps}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool)
                                            or self.batch_size < 1):
            raise InputError(f"batch_size: expected a positive number of clips, got {self.batch_size!r}")
        if self.conditions is not None and (not isinstance(self.conditions, int) or isinstance(self.conditions, bool)
                                            or self.conditions < 1):
            raise InputError(f"conditions: expected a positive number of training identities, got {self.conditions!r}")
        if self.length not in LENGTHS:
            raise InputError(f"length: expected one of {', '.join(LENGTHS)}, got {self.length!r}")
        if self.critic == "none" and self.critic_seed != 0:
            raise InputError("critic_seed: a run without critic uses no critic pipeline")
        from p3d.train.convergence import stop_settings

        stop_settings(self.stop_rule, self.eval_every, self.patience, self.min_rel_improvement, self.smooth)

    @property
    def stop_rule(self) -> str:
        """``steps`` or ``plateau``: the given ``stop``, else the preset's rule."""
        return self.stop or registry.preset(self.preset).stop

    @property
    def stop_options(self) -> dict[str, Any]:
        """The stopping-rule options of the talker's training (None where not set; ``stop`` resolved): the ones
        given, and under the plateau rule the preset's talker window and patience where not given
        (:attr:`p3d.registry.Preset.talker_smooth` / ``talker_patience``). Empty for a fixed step count without
        options, so runs of the ``smoke``/``cpu`` presets keep their requests."""
        opts = self.given_stop_options
        if opts.get("stop") == "plateau":
            preset = registry.preset(self.preset)
            for key, value in (("smooth", preset.talker_smooth), ("patience", preset.talker_patience)):
                if value is not None:
                    opts.setdefault(key, value)
        return opts

    @property
    def given_stop_options(self) -> dict[str, Any]:
        """The stopping-rule options given to this experiment (``stop`` resolved), without the preset's talker
        defaults: what its critic pipeline's trainings take (:func:`p3d.experiments.runs.critic_options`)."""
        opts = {k: getattr(self, k) for k in STOP_FIELDS[1:] if getattr(self, k) is not None}
        if self.stop_rule != "steps":
            opts["stop"] = self.stop_rule
        return opts

    @property
    def model_preset(self) -> str:
        """The model/recipe preset the trainings use (:func:`p3d.registry.model_preset`)."""
        return registry.model_preset(self.preset)

    @property
    def test_corpus(self) -> str:
        if self.test is not None:
            return self.test
        return "synth-mead" if "synth-mead" in self.train else "synth-voca"

    @property
    def name(self) -> str:
        """The training run's folder name (stable: the same request gives the same name; not the test split)."""
        return self._name(seeds=True)

    @property
    def arm_name(self) -> str:
        """The name of the run's arm: :attr:`name` without the seeds (``c<critic_seed>``, ``seed<seed>``), the same
        for every run of the arm (:attr:`arm`); :func:`arm_name` reads it off a run's folder name."""
        return self._name(seeds=False)

    def _name(self, *, seeds: bool) -> str:
        parts = [self.model, self.critic, "+".join(c.removeprefix("synth-") for c in self.train)]
        if self.critic != "none":
            parts.append(f"k{self.relative_weight:g}" if self.relative_weight is not None
                         else f"w{self.weight_or_default:g}")
            if self.critic_seed and seeds:
                parts.append(f"c{self.critic_seed}")
        if self.steps is not None:
            parts.append(f"steps{self.steps}")
        if self.batch_size is not None:
            parts.append(f"b{self.batch_size}")
        if self.stop_rule != "steps":
            parts.append(self.stop_rule + self._rule_suffix)
        if self.length == "equal":
            parts.append("eq")
        if seeds:
            parts.append(f"seed{self.seed}")
        return "_".join(parts)

    @property
    def _rule_suffix(self) -> str:
        """The stopping rule's options that were set, in the name (``-e50s10p10r0.02``: ``eval_every``, ``smooth``,
        ``patience``, ``min_rel_improvement``; :attr:`stop_options`), so that runs under another rule never share a
        folder; empty when none is set (the rule's defaults)."""
        opts = self.stop_options
        tags = (("e", "eval_every"), ("s", "smooth"), ("p", "patience"), ("r", "min_rel_improvement"))
        text = "".join(f"{tag}{opts[key]:g}" for tag, key in tags if key in opts)
        return f"-{text}" if text else ""

    @property
    def eval_name(self) -> str:
        """``<test corpus>_<split>``, plus ``_c<k>`` when each clip is predicted under k training identities."""
        suffix = "" if self.conditions is None else f"_c{self.conditions}"
        return f"{self.test_corpus}_{self.split}{suffix}"

    @property
    def arm(self) -> tuple[Any, ...]:
        """Everything but the seeds: the runs of one arm of a table differ only in ``seed`` / ``critic_seed``."""
        d = dataclasses.asdict(self)
        for k in ("seed", "critic_seed", "critic_steps"):
            d.pop(k)
        return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in d.items()))

    @property
    def own_length(self) -> TalkerExperiment:
        """The same request ending where its own stopping rule ends it (``length="own"``): the run an
        ``equal``-length run continues."""
        return dataclasses.replace(self, length="own")

    @property
    def weight_or_default(self) -> float:
        from p3d.losses.perceptual_loss import DEFAULT_WEIGHT

        return DEFAULT_WEIGHT if self.loss_weight is None else float(self.loss_weight)

    @property
    def baseline(self) -> TalkerExperiment:
        """The same training without the perceptual loss (its loss scale sets a relative weight)."""
        return dataclasses.replace(self, critic="none", loss_weight=None, relative_weight=None, critic_seed=0,
                                   critic_steps=None)

    def with_(self, **changes: Any) -> TalkerExperiment:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TalkerExperiment:
        """Rebuild from ``dataclasses.asdict`` (a result's ``experiment``; ``train`` may be a list)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if k == "train" else v) for k, v in d.items() if k in fields})


def arm_name(run_name: str) -> str:
    """The arm of a training run, from its folder name (:attr:`TalkerExperiment.name`): the name without the
    seeds, ``c<critic_seed>`` after the loss weight and the final ``seed<seed>`` (:attr:`TalkerExperiment.arm_name`).
    E.g. ``codetalker_ours_voca_k1_c1_seed2`` -> ``codetalker_ours_voca_k1``. A name that does not end in
    ``_seed<N>`` (not a run of :mod:`p3d.experiments`) is returned as it is."""
    import re

    stem, n = re.subn(r"_seed\d+$", "", run_name)
    return re.sub(r"(_[kw][^_]+)_c\d+(?=_|$)", r"\1", stem) if n else run_name


# -- the grid of a preset ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ExperimentSpec:
    """The settings of a preset's whole grid (notebooks 06 and 07).

    Seeds: Table 2's arms (each model without / with critic ``ours``) run ``table2_seeds`` talker seeds
    0..n-1; Table 3's ablation critics and Table 4's arms ``table3_seeds`` / ``table4_seeds``. Table 3 compares
    each ablation critic with Table 2's critic-``ours`` run of the same model and seed, so its models are among
    :attr:`models` and ``table3_seeds <= table2_seeds`` (else :class:`InputError`). Talker seed
    ``s`` with a critic uses critic pipeline ``s % critic_pipelines`` (stage 1 + critic + fine-tuning with
    their own seed; pipeline 0 is the default one), so the seed-level variation includes the critic's.

    The loss weight: ``weight_rule="kappa"`` chooses the relative weight kappa on the val split
    (``select_kappa``); ``"fixed"`` sets one absolute weight for every run in advance (:meth:`fixed_weight`):
    ``carried_loss_weight`` of the training corpus' motion scale when ``vocaset_motion_rms`` (VOCASET's
    per-coordinate motion RMS in metres, :mod:`p3d.losses.weight`) is given, else the paper's 1e-7 as it
    is. The ``full`` spec gives :data:`VOCASET_MOTION_RMS` (the sourced estimate).

    ``table4_models``: the models of Table 4 (None: :attr:`models`).

    ``talker_steps`` / ``critic_steps``: the step counts (None: the recipes'); with ``stop="plateau"`` the
    caps. ``talker_batch``: clips per talker step (None: the recipe's one). ``eval_conditions``: training
    identities per evaluated clip (None: all, the official protocol; :attr:`TalkerExperiment.conditions`).
    ``stop``: None takes the preset's rule. ``equal_length``: every run of the tables at ``length="equal"``
    (:attr:`TalkerExperiment.length`): each trains to its own stop first, then the arms of one model and seed
    continue to the longest of their stops, so a paired effect does not carry a difference in training length.
    """

    preset: str
    models: tuple[str, ...] = MODELS
    ablation_models: tuple[str, ...] | None = None
    table4_models: tuple[str, ...] | None = None
    table2_seeds: int = 1
    table3_seeds: int = 1
    table4_seeds: int = 1
    critic_pipelines: int = 1
    weight_rule: str = "kappa"
    vocaset_motion_rms: float | None = None
    talker_steps: int | None = None
    critic_steps: int | None = None
    talker_batch: int | None = None
    eval_conditions: int | None = None
    stop: str | None = None
    eval_every: int | None = None
    patience: int | None = None
    min_rel_improvement: float | None = None
    smooth: int | None = None
    equal_length: bool = False
    n_resamples: int = 1000

    def __post_init__(self) -> None:
        registry.preset(self.preset)
        for name in ("table2_seeds", "table3_seeds", "table4_seeds", "critic_pipelines", "n_resamples"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name}: expected a positive count, got {getattr(self, name)!r}")
        if self.weight_rule not in ("kappa", "fixed"):
            raise InputError(f"weight_rule: expected 'kappa' or 'fixed', got {self.weight_rule!r}")
        if self.vocaset_motion_rms is not None and not (math.isfinite(self.vocaset_motion_rms)
                                                          and self.vocaset_motion_rms > 0):
            raise InputError(f"vocaset_motion_rms: expected a positive length in metres, got {self.vocaset_motion_rms!r}")
        for m in (*self.models, *(self.ablation_models or ()), *(self.table4_models or ())):
            registry.check_model(m)
        # Table 3 compares each ablation critic with the model's critic-ours runs of Table 2 (config1): an ablation
        # model or seed without them would train arms that nothing is compared with
        outside = [m for m in self.models_of(3) if m not in self.models]
        if outside:
            raise InputError(f"ablation_models: {', '.join(outside)} not among models ({', '.join(self.models)}): "
                             "Table 3 compares each ablation critic with the model's Table-2 run with critic ours; "
                             "give ablation_models among models, or () for no Table 3")
        if self.models_of(3) and int(self.table3_seeds) > int(self.table2_seeds):
            raise InputError(f"table3_seeds: {self.table3_seeds} above table2_seeds {self.table2_seeds}: Table 3 "
                             "compares each ablation critic with Table 2's critic-ours runs of the same seed, which "
                             "exist for table2_seeds seeds")

    @property
    def stop_options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in STOP_FIELDS if getattr(self, k) is not None}

    def experiment(self, model: str, critic: str = "none", train: Sequence[str] = CONFIG1, seed: int = 0, *,
                   weight: float | Mapping[str, float] | None = None, **kw: Any) -> TalkerExperiment:
        """One run of the grid: the spec's steps and stopping rule; ``weight`` is kappa (``weight_rule
        "kappa"``) or the absolute W (``"fixed"``), one for all models or ``{model: value}``."""
        extra: dict[str, Any] = {}
        if critic != "none":
            value = None if weight is None else _value_of(weight, model)
            extra["relative_weight" if self.weight_rule == "kappa" else "loss_weight"] = value
            extra["critic_seed"] = seed % self.critic_pipelines
            extra["critic_steps"] = self.critic_steps
        if self.equal_length:
            kw.setdefault("length", "equal")
        return TalkerExperiment(model, critic, tuple(train), self.preset, seed, steps=self.talker_steps,
                                batch_size=self.talker_batch, conditions=self.eval_conditions, **self.stop_options,
                                **extra, **kw)

    def fixed_weight(self, corpus: Any | None = None) -> float:
        """The absolute weight of ``weight_rule="fixed"``: ``carried_loss_weight`` of ``corpus``' train-split
        motion scale (a :class:`p3d.corpus.Corpus`) with :attr:`vocaset_motion_rms`, or the paper's 1e-7
        unconverted when that is None (set it to None with ``dataclasses.replace``; ``spec_for`` ignores None)."""
        from p3d.losses.weight import PAPER_WEIGHT, carried_loss_weight, split_motion_rms

        if self.vocaset_motion_rms is None:
            return PAPER_WEIGHT
        if corpus is None:
            raise InputError("fixed_weight: vocaset_motion_rms is set; give the training corpus to measure its scale")
        return carried_loss_weight(split_motion_rms(corpus, "train"), vocaset_motion_rms=self.vocaset_motion_rms)

    def models_of(self, table: int) -> tuple[str, ...]:
        """The models of the paper's Table ``table``: 3 (critic ablation) :attr:`ablation_models`, 4 (Config 2)
        :attr:`table4_models`, either :attr:`models` when None (an empty tuple: none); 2: :attr:`models`."""
        chosen = {2: None, 3: self.ablation_models, 4: self.table4_models}
        if table not in chosen:
            raise InputError(f"table: expected 2, 3 or 4, got {table!r}")
        return tuple(self.models if chosen[table] is None else chosen[table])

    def config1(self, weight: float | Mapping[str, float] | None) -> list[TalkerExperiment]:
        """Tables 2, 3 and S7 (train and test ``synth-voca``): every model without and with critic ``ours``
        (``table2_seeds`` seeds), and for the ablation models critics ``syncnet3d`` and ``no2d``
        (``table3_seeds`` seeds)."""
        ablation = self.models_of(3)
        out = [self.experiment(m, c, CONFIG1, s, weight=weight) for m in self.models
               for s in range(self.table2_seeds) for c in ("none", "ours")]
        out += [self.experiment(m, c, CONFIG1, s, weight=weight) for m in ablation
                for s in range(self.table3_seeds) for c in ABLATION_CRITICS]
        return out

    def config2(self, weight: float | Mapping[str, float] | None) -> list[TalkerExperiment]:
        """Table 4 (test ``synth-mead``): per model (:attr:`table4_models`, else :attr:`models`) and seed,
        synth-voca only (Table 2's run evaluated on synth-mead), synth-voca + synth-mead, and the latter with
        critic ``ours``."""
        out = []
        for m in self.models_of(4):
            for s in range(self.table4_seeds):
                out += [self.experiment(m, "none", CONFIG1, s, test="synth-mead"),
                        self.experiment(m, "none", CONFIG2, s),
                        self.experiment(m, "ours", CONFIG2, s, weight=weight)]
        return out

    def planned_runs(self, weight: float | Mapping[str, float] | None, selection: Sequence[Any] = ()
                     ) -> list[TalkerExperiment]:
        """Every talker run behind the preset's tables, in order: the weight selection's (``selection``: their
        results, e.g. ``WeightChoice.runs``, or experiments; none with a fixed weight), then :meth:`config1` and
        :meth:`config2` at ``weight``; the talkers of notebook 06's ``convergence.csv``
        (:meth:`p3d.experiments.RunLayout.training_runs`), not every folder in ``runs/<preset>``."""
        chosen = [s if isinstance(s, TalkerExperiment) else TalkerExperiment.from_dict(s["experiment"]) for s in selection]
        return [*chosen, *self.config1(weight), *self.config2(weight)]

    def length_groups(self, weight: float | Mapping[str, float] | None
                      ) -> dict[tuple[str, str, int], tuple[TalkerExperiment, ...]]:
        """The equal-length comparison groups of the whole grid (Config 1 and 2 at ``weight``,
        :func:`equal_length_groups`); empty unless :attr:`equal_length`."""
        return equal_length_groups([*self.config1(weight), *self.config2(weight)]) if self.equal_length else {}

    def selection(self, model: str = "faceformer", candidates: Sequence[float] = KAPPA_CANDIDATES, seed: int = 0
                  ) -> list[TalkerExperiment]:
        """The runs behind ``select_kappa`` on ``synth-voca`` **val**: the baseline, then critic ``ours`` at
        each kappa (only with ``weight_rule="kappa"``)."""
        if self.weight_rule != "kappa":
            raise InputError(f"selection: preset {self.preset!r} fixes the weight in advance (weight_rule 'fixed')")
        base = self.experiment(model, "none", CONFIG1, seed, split="val", length="own")
        return [base, *(self.experiment(model, "ours", CONFIG1, seed, weight=float(k), split="val", length="own")
                        for k in candidates)]


def equal_length_groups(experiments: Sequence[TalkerExperiment]
                        ) -> dict[tuple[str, str, int], tuple[TalkerExperiment, ...]]:
    """The comparison groups of the ``length="equal"`` experiments among ``experiments``: ``(preset, model, seed) ->
    the own-length trainings of those experiments`` (:attr:`TalkerExperiment.own_length`, one per training run, in
    name order; the evaluation fields reset: a training does not depend on them). Every pair that the paper's
    Tables 2-4 compare (without / with the loss, an ablation critic / ours, synth-voca / + synth-mead) shares a
    model and a seed, so within a group every arm trains to the group's longest stop."""
    groups: dict[tuple[str, str, int], dict[str, TalkerExperiment]] = {}
    for exp in experiments:
        if exp.length == "equal":
            own = exp.own_length.with_(test=None, split="test", conditions=None)
            groups.setdefault((exp.preset, exp.model, exp.seed), {})[own.name] = own
    return {k: tuple(v[n] for n in sorted(v)) for k, v in groups.items()}


def _value_of(value: float | Mapping[str, float], model: str) -> float:
    if isinstance(value, Mapping):
        if model not in value:
            raise InputError(f"weight: no value for {model!r} (have {', '.join(value)})")
        return float(value[model])
    return float(value)


#: The grid of every preset. ``full``: every training to the validation plateau (caps:
#: :attr:`p3d.registry.Preset.talker_cap` / ``critic_cap``; the talkers' rule over 500 steps, ``talker_smooth``),
#: talkers on batches of 16 clips, each test clip predicted under one synth-voca training identity (rotating; the
#: official protocol's all eight would multiply the autoregressive inference 8x for little information: the CIs cover
#: clips and seeds), the weight fixed in advance: the paper's 1e-7 carried to the training corpus' motion scale from
#: VOCASET's (:data:`VOCASET_MOTION_RMS`; W = 1.91e-7 on the ``full`` synth-voca, README "The loss weight at full").
#: Seeds: five talker seeds per Table-2 arm and three per arm of Tables 3 and 4, all three models, as the paper's
#: tables (the CIs over seeds and clips, crossed: :func:`p3d.stats.seed_clip_interval`), one critic pipeline (three
#: independent pipelines would retrain stage 1 and every critic twice more and the loss arms of seeds 1, 2 and 4:
#: ``spec_for("full", critic_pipelines=3)``). At the measured cost on 2 cores (benchmarks/RESULTS.md: ~72-120
#: worker-minutes per seed of the six Table-2 arms, the two stage-1 trainings 23-38 min in parallel) this is a run of
#: roughly 10-11 hours there before the talkers' 500-step rule, which trains them 1.9-4.3x longer
#: (benchmarks/RESULTS.md, "The talkers' plateau rule against whole curves"), not the 150 minutes once aimed at
#: (README, "The ``full`` preset"). The tables compare arms of equal length (``equal_length``): each training stops on
#: its own plateau, then the arms of one model and seed continue to the longest of their stops (the extra training:
#: the gap between each arm's stop and its group's longest), because with each arm at its own stop the paired effects
#: followed which arm trained longer (``results/tables/training_length_sensitivity.md``).
#: ``cpu`` (the quick look, one seed, the recipes' fixed step counts, one clip per step): the same weight rule as
#: ``full`` (fixed in advance, so no metric that judges the loss chooses its weight, and ``make figures`` trains the
#: whole grid first in parallel workers, :func:`p3d.experiments.preset_grid`) and one rotating training identity per
#: test clip, which cut its evaluations 8x (Config 1) to 14x (Config 2, 504 synth-mead test clips).
#: ``smoke`` keeps the choice of kappa on val, the path of ``make figures EXTRA=1``'s sensitivity analysis.
SPECS: dict[str, ExperimentSpec] = {
    "smoke": ExperimentSpec("smoke", n_resamples=200),
    "cpu": ExperimentSpec("cpu", ablation_models=("faceformer",), weight_rule="fixed",
                          vocaset_motion_rms=VOCASET_MOTION_RMS, eval_conditions=1),
    "full": ExperimentSpec("full", table2_seeds=5, table3_seeds=3, table4_seeds=3, critic_pipelines=1,
                           weight_rule="fixed", equal_length=True,
                           vocaset_motion_rms=VOCASET_MOTION_RMS, talker_batch=16, eval_conditions=1,
                           talker_steps=registry.preset("full").talker_cap,
                           critic_steps=registry.preset("full").critic_cap),
    "paper": ExperimentSpec("paper"),
}


def spec_for(preset: str, **changes: Any) -> ExperimentSpec:
    """The preset's :class:`ExperimentSpec` (:data:`SPECS`), with ``changes`` (any field; None values ignored).
    ``models`` given without ``ablation_models`` keeps the preset's ablation models that are among them (``cpu``'s
    FaceFormer-only Table 3 asked for CodeTalker alone: no Table 3)."""
    base = SPECS[registry.preset(preset).name]
    changes = {k: (tuple(v) if isinstance(v, list) else v) for k, v in changes.items() if v is not None}
    if "models" in changes and "ablation_models" not in changes and base.ablation_models is not None:
        changes["ablation_models"] = tuple(m for m in base.ablation_models if m in changes["models"])
    return dataclasses.replace(base, **changes)


# -- the public functions of before the spec (same experiments at one seed) -----------------------------------
def _kappa_of(kappa: float | Mapping[str, float], model: str) -> float:
    return _value_of(kappa, model)


def selection_experiments(preset: str, *, model: str = "faceformer", candidates: Sequence[float] = KAPPA_CANDIDATES,
                          seed: int = 0, steps: int | None = None) -> list[TalkerExperiment]:
    """The runs behind ``select_kappa``, evaluated on ``synth-voca`` **val**: the baseline, then critic
    ``ours`` at each relative weight kappa (Config 1 training; the runs are the same as the test runs')."""
    base = TalkerExperiment(model, "none", CONFIG1, preset, seed, steps=steps, split="val")
    return [base, *(TalkerExperiment(model, "ours", CONFIG1, preset, seed, relative_weight=float(k), steps=steps,
                                     split="val") for k in candidates)]


def config1_experiments(preset: str, kappa: float | Mapping[str, float], *, models: Sequence[str] = MODELS,
                        ablation_models: Sequence[str] | None = None, seed: int = 0, steps: int | None = None
                        ) -> list[TalkerExperiment]:
    """Tables 2, 3 and S7 at one seed and relative weight kappa (see :meth:`ExperimentSpec.config1`)."""
    ablation = models if ablation_models is None else ablation_models
    out = []
    for m in models:
        out.append(TalkerExperiment(m, "none", CONFIG1, preset, seed, steps=steps))
        out.append(TalkerExperiment(m, "ours", CONFIG1, preset, seed, relative_weight=_kappa_of(kappa, m), steps=steps))
    for m in ablation:
        for critic in ABLATION_CRITICS:
            out.append(TalkerExperiment(m, critic, CONFIG1, preset, seed, relative_weight=_kappa_of(kappa, m),
                                        steps=steps))
    return out


def config2_experiments(preset: str, kappa: float | Mapping[str, float], *, models: Sequence[str] = MODELS,
                        seed: int = 0, steps: int | None = None) -> list[TalkerExperiment]:
    """Table 4 at one seed and relative weight kappa (see :meth:`ExperimentSpec.config2`)."""
    out = []
    for m in models:
        out.append(TalkerExperiment(m, "none", CONFIG1, preset, seed, steps=steps, test="synth-mead"))
        out.append(TalkerExperiment(m, "none", CONFIG2, preset, seed, steps=steps))
        out.append(TalkerExperiment(m, "ours", CONFIG2, preset, seed, relative_weight=_kappa_of(kappa, m), steps=steps))
    return out
