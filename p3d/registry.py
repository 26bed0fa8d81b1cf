"""The one list of presets, talking-head models and critics (with their display labels).

Every module that offers a ``--preset``, ``--model`` or ``--critic`` choice imports it from here, so a new
preset or model is added in one place.

**Presets** (:data:`PRESET_INFO`). A preset names three things: the size of the synthetic corpora
(``p3d data synth --preset``, folder ``data/<preset>``), the model sizes and optimisation recipes
(:attr:`Preset.models`: the recipe tables of :mod:`p3d.train.critics` and
:mod:`p3d.train.talker` exist for :data:`MODEL_PRESETS` only) and the stopping rule of the trainings
(:attr:`Preset.stop`, :mod:`p3d.train.convergence`). ``full`` is the ``cpu`` models trained to a
validation plateau on the larger ``full`` corpora; its seeds per arm and critic pipelines are
:data:`p3d.experiments.spec.SPECS` (one of each on 2 cores; ``spec_for`` for the decisive sizes). Its stage-1
trainings (the critics' and the PLRS evaluator's) run under bf16 autocast where the CPU multiplies bf16 natively,
with a cap of 4000 steps: in float32 they did not reach their plateau within the 1500-step cap of the other
critic trainings; in bf16 on such a CPU they reach it in about the wall time float32 spends on 1500 steps, on a
validation curve that follows float32's (``benchmarks/RESULTS.md``, "Stage 1 under bf16 to its plateau").
"""
from __future__ import annotations

import dataclasses

from p3d.errors import InputError


@dataclasses.dataclass(frozen=True)
class Preset:
    """One preset: its name, a one-line description, the model/recipe preset its trainings use, and the stopping
    rule of its trainings (``steps``: the recipe's step count; ``plateau``: the validation plateau rule with
    ``critic_cap`` / ``talker_cap`` as the caps of the critic pipelines' and the talking heads' trainings, or the
    recipe's steps where None; ``stage1_cap``: the stage-1 trainings' cap, where it differs from ``critic_cap``;
    ``talker_smooth`` / ``talker_patience``: the talkers' moving-median window and patience in evaluations, where
    they differ from the rule's defaults). ``stage1_bf16``: the stage-1 trainings run their forward pass under
    bfloat16 autocast on a CPU that multiplies bf16 natively (:func:`p3d.device.native_bf16`; float32 elsewhere, a
    GPU included: there the ``cpu``-size stage 1 is bound by kernel launches, and autocast's casts made its step
    1.25x slower on an H200, benchmarks/RESULTS.md "GPU")."""

    name: str
    description: str
    models: str
    stop: str = "steps"
    critic_cap: int | None = None
    talker_cap: int | None = None
    stage1_cap: int | None = None
    talker_smooth: int | None = None
    talker_patience: int | None = None
    stage1_bf16: bool = False


PRESET_INFO: dict[str, Preset] = {p.name: p for p in (
    Preset("smoke", "seconds-long check of the whole pipeline on tiny corpora (tests, nbval)", "smoke"),
    Preset("cpu", "CPU-sized models and corpora, fixed step counts, one seed (make figures)", "cpu"),
    # full: caps above every plateau measured (benchmarks/RESULTS.md): the critics stop by 750 steps; stage 1
    # under bf16 at 2350 (both pipelines). The talkers' validation curves fall by a few percent per 250 steps for
    # thousands of steps, with evaluation-to-evaluation noise of 3-6 % and temporary plateaus of 250-500 steps:
    # the default rule (median of 3, patience 5) stopped them there with 16-20 % of improvement still to come,
    # so the talkers' rule looks over 500 steps (median of 10 evaluations, patience 10), and their cap is above
    # where it stopped FaceFormer's measured curve, 3800 (benchmarks/RESULTS.md, "The talkers' plateau rule
    # against whole curves").
    Preset("full", "the cpu models trained to a validation plateau on the larger `full` corpora "
                   "(seeds per arm and critic pipelines: p3d.experiments.SPECS)", "cpu", stop="plateau",
           critic_cap=1500, talker_cap=5000, stage1_cap=4000, talker_smooth=10, talker_patience=10,
           stage1_bf16=True),
    Preset("paper", "the paper's model sizes and schedules (needs a GPU and wav2vec2 weights)", "paper"),
)}
#: Every preset, smallest first.
PRESETS: tuple[str, ...] = tuple(PRESET_INFO)
#: The presets that have their own model sizes and recipes (``p3d train --preset``).
MODEL_PRESETS: tuple[str, ...] = tuple(dict.fromkeys(p.models for p in PRESET_INFO.values()))

#: The talking-head baselines of the paper (Tables 2-4) and their display names.
MODEL_LABELS: dict[str, str] = {"faceformer": "FaceFormer", "codetalker": "CodeTalker", "selftalk": "SelfTalk"}
MODELS: tuple[str, ...] = tuple(MODEL_LABELS)

#: The critics of Table 3 (the perceptual loss' speech-mesh representation) by the paper's names:
#: ``ours`` (stage 2 on the frozen stage-1 speech encoder), ``syncnet3d`` (3D SyncNet), ``no2d`` (w/o 2D prior).
CRITIC_LABELS: dict[str, str] = {"syncnet3d": "3D SyncNet", "no2d": "Ours w/o 2D prior", "ours": "Ours w/ 2D prior"}
CRITICS: tuple[str, ...] = ("ours", "syncnet3d", "no2d")
#: A talker's ``critic`` choices: ``none`` (the baseline, no perceptual loss) or one of :data:`CRITICS`.
TALKER_CRITICS: tuple[str, ...] = ("none", *CRITICS)
TALKER_CRITIC_LABELS: dict[str, str] = {"none": "✗", **CRITIC_LABELS}


def _check(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise InputError(f"{what}: unknown {what} {value!r} (choose from {', '.join(choices)})")
    return value


def preset(name: str) -> Preset:
    """The :class:`Preset` called ``name`` (:class:`InputError` naming the choices otherwise)."""
    return PRESET_INFO[_check(name, PRESETS, "preset")]


def model_preset(name: str) -> str:
    """The model/recipe preset the trainings of preset ``name`` use (``full`` -> ``cpu``)."""
    return preset(name).models


def training_defaults(name: str, kind: str | None = None, device: str = "auto") -> tuple[str, dict[str, object]]:
    """``(model preset, default options)`` of a critic-pipeline training of ``kind`` (``stage1``, ``stage2``, the
    critics, fine-tuning, the PLRS evaluator) asked for at preset ``name``: a preset that trains another preset's
    models (``full`` -> ``cpu``) adds its stopping rule and its cap as ``steps`` (``critic_cap``; for ``stage1``
    ``stage1_cap`` where set) and, for ``stage1`` with :attr:`Preset.stage1_bf16`, ``bf16=True`` when the training
    device (``device``, as ``--device``) is a CPU that multiplies bf16 natively. So every caller that names the preset makes the
    same training request on one machine."""
    p = preset(name)
    if p.models == p.name:
        return p.name, {}
    defaults: dict[str, object] = {"stop": p.stop}
    cap = p.stage1_cap if kind == "stage1" and p.stage1_cap is not None else p.critic_cap
    if cap is not None:
        defaults["steps"] = cap
    if kind == "stage1" and p.stage1_bf16:
        from p3d.device import native_bf16, resolve_device

        dev = resolve_device(device, available=False)  # only its type matters here
        if dev.type == "cpu" and native_bf16(dev):
            defaults["bf16"] = True
    return p.models, defaults


def check_model(name: str) -> str:
    return _check(name, MODELS, "model")


def check_critic(name: str, *, talker: bool = False) -> str:
    """``name`` if it is a critic (``talker``: or ``none``)."""
    return _check(name, TALKER_CRITICS if talker else CRITICS, "critic")


__all__ = ["Preset", "PRESET_INFO", "PRESETS", "MODEL_PRESETS", "MODEL_LABELS", "MODELS", "CRITIC_LABELS", "CRITICS",
           "TALKER_CRITICS", "TALKER_CRITIC_LABELS", "preset", "model_preset", "training_defaults", "check_model",
           "check_critic"]
