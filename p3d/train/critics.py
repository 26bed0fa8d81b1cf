"""Training jobs for the speech-mesh representation and its ablations (paper Sec. 4, C.2, Sec. F).

:func:`build` turns ``(kind, preset, data folder, ...)`` into a :class:`Job`: the model, the parameters
to optimise, the window dataset (:mod:`p3d.windows`), the step function and the
:class:`p3d.train.trainer.TrainConfig` of the preset. ``p3d train KIND`` (:mod:`p3d.train.cli`) runs
it with :func:`p3d.train.trainer.train`, which then writes ``RUN_DIR/final.pt`` (:meth:`Job.finalize`).

Kinds (all trained on the corpus' ``train`` split unless ``split`` says otherwise):

- ``stage1``: the audio-visual MAE + InfoNCE model (:class:`p3d.models.stage1.Stage1Model`, Eqs. 1-4)
  on speech and 2D lip-video windows (:class:`p3d.windows.AVWindows`; a corpus with ``lipvideo/``,
  e.g. synth-lrs3). ``final.pt`` is a stage-1 checkpoint, the ``--stage1`` input of stage 2.
- ``stage2``: the paper's representation ("ours"): the stage-1 speech encoder, copied and **frozen**,
  plus a new mesh encoder trained with symmetric InfoNCE (Eq. 5) on speech-mesh windows
  (:class:`p3d.windows.SpeechMeshWindows`). Needs ``stage1`` (a stage-1 ``final.pt``).
- ``syncnet3d``: Table 3's CNN critic (:class:`p3d.models.syncnet3d.SyncNet3D`), from scratch.
- ``no2d``: Table 3's "w/o 2D prior": the stage-2 architecture, both encoders from scratch.
- ``finetune``: continue training a critic checkpoint (``init``: a stage2 / syncnet3d / no2d
  ``final.pt``) on another corpus, the paper's representation-as-loss recipe (VOCASET train, 5
  epochs, lr 1e-4). What was frozen stays frozen (the paper: "other hyper-parameters as in Stage 2").
- ``evaluator``: the independent PLRS evaluator. The same two-stage recipe as ``stage2`` but, as the
  maintainers describe the released ``model_eval.pth`` ("different dataset splits, initializations,
  and batch sizes"): another seed (default 1, the other kinds' is 0: another mesh-encoder initialisation),
  another batch size (paper preset: 256, the official evaluator's; smaller presets: 3/4 of stage 2's),
  and by default the other half of the training identities (``identities="half2"``; pair it with a
  loss critic trained on ``half1`` for fully disjoint data). :func:`p3d.train.api.train_evaluator` gives it
  its own stage 1 (``p3d train stage1 --identities half2 --seed 1``, at the ``paper`` preset with
  ``--batch-size 256``: E.1's batch for both of the evaluator's stages), so it shares no data, seed or weights
  with a loss critic (the critics' stage 1 trains on ``half1``).

Presets (``TrainConfig`` defaults; every value can be overridden):

- ``paper``: AdamW beta = (0.9, 0.95), eps = 1e-8, lr 3e-4, batch 40 (stage 1) / 80 (stage 2 kinds),
  100 epochs (3D SyncNet: 20; fine-tuning: 5 epochs at lr 1e-4), steps = ceil(epochs * windows /
  batch). Weight decay, schedule, warm-up and gradient clipping are NOT FOUND in the paper: no decay,
  constant lr, and (every preset) the global gradient norm clipped at 1.0 (``TrainConfig.grad_clip``).
- ``cpu``: the same recipes at the ``cpu`` model presets with step counts sized for 2 shared CPU
  cores (stage 1: 400 steps of 40, about 0.7 s each; each critic: 300 steps of 64, about 0.3 s
  each), a short linear warm-up, and lr 1e-3 for the critics (3e-4 learns too little in 300 steps).
- ``smoke``: a few dozen steps of the ``smoke`` models (seconds; tests and nbval).

Every preset trains its fixed step count by default (``stop="steps"``). ``stop="plateau"`` (``p3d train
--stop plateau --max-steps N``) trains until the validation InfoNCE of the corpus' ``val`` windows
plateaus (stage 1: its loss on ``val`` lip-video windows), with ``steps`` as the cap; the rule, its
settings and the weights kept are described in :mod:`p3d.train.convergence`.

**The frozen speech side is computed once.** When the critic's speech encoder is frozen (``stage2``,
``evaluator``, and ``finetune`` of such a critic; ``model.freeze_speech``: ``requires_grad=False``, always in
eval mode), its embedding of a window never changes during training. :func:`build` then embeds every training
window once, before the first step (:func:`speech_embeddings`: eval mode, no gradient, in fixed chunks of
:data:`SPEECH_CACHE_CHUNK` windows in index order), keeps the (windows, H) float32 matrix on the CPU and gives
the trainer :class:`EmbeddedSpeechWindows`, whose batches carry ``speech_embedding`` rows instead of fbank
windows; :func:`critic_step` feeds them to ``model(..., speech_embedded=True)``, so a step runs only the mesh
encoder. The loss and the mesh encoder's gradients are the uncached step's to float32 rounding (the speech
encoder's matrix products see chunks of 256 instead of the step's batch, which changes the last bits). The
cache is a pure function of the frozen weights, the windows and the chunk size, so the trainer's guarantees
hold: randomness stays a function of (seed, step), a resumed or extended run rebuilds the same cache (the
frozen weights of a checkpoint are the ones it was built from) and takes the same steps; ``config.json`` and the
checkpoints are unchanged. Its cost is one speech-encoder pass per window (about one epoch of the speech side;
every further epoch is saved) and 4 H bytes per window (2 KiB at the paper's H = 512). Each DDP rank builds
the whole cache. The validation metric caches its fixed batches' speech embeddings the same way
(:class:`p3d.train.convergence.WindowValidation`). ``no2d`` and ``syncnet3d`` train their speech side: no cache.

**bf16** (``p3d train stage1 --bf16``, ``build(..., bf16=True)``; stage 1 only; off by default, on at the
``full`` preset where the CPU multiplies bf16 natively, :func:`p3d.registry.training_defaults`): the stage-1
forward pass under ``torch.autocast(dtype=bfloat16)`` (CPU: AVX-512/AMX bf16 matrix products), the backward
following it; the attention itself stays in float32 (:func:`p3d.models.transformer._float32_attention`: torch's
bf16 CPU attention kernel is slower than its float32 one), as do the weights, the optimiser and the validation
metric. A step is 1.4-1.5x faster at the ``cpu`` preset on a busy machine and 2.4x on a quiet Zen 5 with
AVX512-BF16 (one thread; the split of a step's time and the ratios: ``benchmarks/RESULTS.md``, critics section);
on an H200 GPU 3.2x at the ``paper`` preset's sizes but 0.8x at the ``cpu`` preset's, which are bound by kernel
launches there (same file, "GPU"; so ``full`` keeps float32 on a GPU);
on the ``full`` corpora a bf16 stage 1 follows the float32 validation curve to within its evaluation noise and
reaches its plateau (same file, "Stage 1 under bf16 to its plateau"). The loss of the same batch and masks, and
each of its terms, is within 1e-2 relative of float32 (``tests/test_train_representation.py``; measured: the loss
2e-5 to 1.2e-3, the speech MAE up to 3.5e-3, bf16 keeping 8 significant bits); the trajectory of a long run
differs from the float32 run's. ``config.json`` records ``"bf16": true`` only when on (earlier runs resume
unchanged; an fp32 run is not resumed in bf16 or the other way round).

Multi-process (``torchrun``): each rank computes InfoNCE over its own share of the global batch
(``batch / world_size`` windows; no all-gather of negatives), as CLIP without gathering; the
gradients are averaged by DDP.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from p3d.device import resolve_device, warn_unless_native_bf16
from p3d.errors import InputError
from p3d.registry import MODEL_PRESETS as PRESETS  # the presets with their own recipes
from p3d.train.request import run_request
from p3d.train.trainer import TrainConfig

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("stage1", "stage2", "syncnet3d", "no2d", "finetune", "evaluator")
#: The corpus split the validation metric (the plateau stopping rule) is computed on.
VAL_SPLIT = "val"
#: Kinds whose model is a speech-mesh critic (``final.pt`` loadable by ``load_critic``).
CRITIC_KINDS: tuple[str, ...] = ("stage2", "syncnet3d", "no2d", "finetune", "evaluator")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Optimisation defaults of one (preset, kind): steps, or epochs over the windows."""

    batch_size: int
    lr: float = 3e-4
    epochs: float | None = None
    steps: int | None = None
    warmup_steps: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    identities: str = "all"

    def n_steps(self, n_windows: int, batch_size: int | None = None) -> int:
        """The recipe's steps, or ``ceil(epochs * n_windows / batch)`` with the batch trained (``batch_size``, else
        the recipe's), so an overridden batch still trains the recipe's epochs."""
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None
        return max(1, math.ceil(self.epochs * n_windows / (batch_size or self.batch_size)))


def _recipes() -> dict[str, dict[str, Recipe]]:
    paper = {
        "stage1": Recipe(batch_size=40, epochs=100, checkpoint_every=2000, log_every=50),
        "stage2": Recipe(batch_size=80, epochs=100, checkpoint_every=2000, log_every=50),
        "no2d": Recipe(batch_size=80, epochs=100, checkpoint_every=2000, log_every=50),
        "syncnet3d": Recipe(batch_size=80, epochs=20, checkpoint_every=2000, log_every=50),
        "finetune": Recipe(batch_size=80, lr=1e-4, epochs=5, checkpoint_every=1000, log_every=20),
        "evaluator": Recipe(batch_size=256, epochs=100, checkpoint_every=1000, log_every=50, seed=1,
                            identities="half2"),
    }
    cpu = {
        "stage1": Recipe(batch_size=40, steps=400, warmup_steps=20, checkpoint_every=100, log_every=10),
        "stage2": Recipe(batch_size=64, lr=1e-3, steps=300, warmup_steps=15, checkpoint_every=100, log_every=10),
        "no2d": Recipe(batch_size=64, lr=1e-3, steps=300, warmup_steps=15, checkpoint_every=100, log_every=10),
        "syncnet3d": Recipe(batch_size=64, lr=1e-3, steps=300, warmup_steps=15, checkpoint_every=100, log_every=10),
        "finetune": Recipe(batch_size=64, lr=1e-4, steps=100, checkpoint_every=50, log_every=10),
        "evaluator": Recipe(batch_size=48, lr=1e-3, steps=300, warmup_steps=15, checkpoint_every=100, log_every=10,
                            seed=1, identities="half2"),
    }
    smoke = {
        "stage1": Recipe(batch_size=16, lr=1e-3, steps=30, checkpoint_every=15, log_every=5),
        "stage2": Recipe(batch_size=32, lr=1e-3, steps=60, checkpoint_every=30, log_every=5),
        "no2d": Recipe(batch_size=32, lr=1e-3, steps=60, checkpoint_every=30, log_every=5),
        "syncnet3d": Recipe(batch_size=32, lr=1e-3, steps=60, checkpoint_every=30, log_every=5),
        "finetune": Recipe(batch_size=32, lr=1e-4, steps=10, checkpoint_every=10, log_every=5),
        "evaluator": Recipe(batch_size=24, lr=1e-3, steps=60, checkpoint_every=30, log_every=5, seed=1,
                            identities="half2"),
    }
    return {"paper": paper, "cpu": cpu, "smoke": smoke}


RECIPES: dict[str, dict[str, Recipe]] = _recipes()
#: The fields of :class:`p3d.train.trainer.TrainConfig` that :func:`build` leaves at their dataclass defaults (a
#: :class:`Recipe` has none of them): part of a run's code settings (:func:`p3d.train.api.code_settings`).
TRAINER_DEFAULTS: tuple[str, ...] = ("betas", "eps", "weight_decay", "grad_clip")


def recipe(kind: str, preset: str) -> Recipe:
    """The default :class:`Recipe` of ``kind`` at ``preset``."""
    if preset not in RECIPES:
        raise InputError(f"preset: unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    if kind not in RECIPES[preset]:
        raise InputError(f"kind: unknown training kind {kind!r} (choose from {', '.join(KINDS)})")
    return RECIPES[preset][kind]


def evaluator_stage1_options(preset: str) -> dict[str, Any]:
    """The options of the PLRS evaluator's own stage 1 at ``preset``: the evaluator recipe's identity half and seed,
    and at the ``paper`` preset its batch size too (paper E.1: batch size 256 "for both Stage 1 and Stage 2"; the
    smaller presets keep stage 1's batch)."""
    from p3d.registry import model_preset

    rec = recipe("evaluator", model_preset(preset))
    options: dict[str, Any] = {"identities": rec.identities, "seed": rec.seed}
    if model_preset(preset) == "paper":
        options["batch_size"] = rec.batch_size
    return options


def request_defaults(kind: str, preset: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The values :func:`build` gives the options of ``kind`` at ``preset`` that ``options`` (a run request's,
    :func:`p3d.train.request.run_request`) leaves out, where they follow from the recipe alone (no data): ``seed``,
    ``batch_size``, ``lr``, ``identities`` and the stopping rule's (:func:`p3d.train.convergence.stop_settings` of
    the given ones). ``steps`` is left out (an ``epochs`` recipe's depends on the windows). Raises
    :class:`InputError` for an unknown kind or preset, or stopping options :func:`build` would refuse."""
    from p3d.train.convergence import stop_settings

    rec = recipe(kind, preset)
    stopping = stop_settings(**{k: options.get(k) for k in TrainConfig.STOP_FIELDS},
                             default_eval_every=5 * rec.log_every)
    return {"seed": rec.seed, "batch_size": rec.batch_size, "lr": rec.lr, "identities": rec.identities, **stopping}


# -- step functions (``(model, batch, generator) -> (loss, logs)``) --------------------------------
def _to(batch: Mapping[str, Any], device: torch.device, keys: tuple[str, ...]) -> list[torch.Tensor]:
    return [batch[k].to(device, non_blocking=True) for k in keys]


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def stage1_step(model: torch.nn.Module, batch: Mapping[str, Any], generator: torch.Generator, *, bf16: bool = False
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """One stage-1 step: L = L_MAE + lambda L_InfoNCE (Eq. 4); masks drawn from ``generator``.

    ``bf16``: the forward pass under ``torch.autocast(device type, torch.bfloat16)`` (the module docstring's
    "bf16"); the loss is returned in float32. Default off: the float32 step, unchanged.
    """
    speech, video = _to(batch, _device_of(model), ("speech", "video"))
    with torch.autocast(speech.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(speech, video, generator=generator)
    return out.loss.float(), {"mae": float(out.loss_mae.detach()), "mae_speech": float(out.loss_mae_speech.detach()),
                      "mae_video": float(out.loss_mae_video.detach()), "infonce": float(out.loss_infonce.detach())}


def critic_step(model: torch.nn.Module, batch: Mapping[str, Any], generator: torch.Generator
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """One speech-mesh step: symmetric InfoNCE (Eq. 5) of the batch's windows.

    Calls ``model(speech, mesh)`` (the logits) so a DDP-wrapped model synchronises gradients; a batch of
    :class:`EmbeddedSpeechWindows` (a frozen speech side, cached) calls ``model(speech_embedding, mesh,
    speech_embedded=True)`` instead. Logs the in-batch speech->mesh top-1 accuracy (chance: 1 / batch).
    """
    from p3d.losses.infonce import info_nce_from_logits

    device = _device_of(model)
    mesh = batch["mesh"].to(device, non_blocking=True)
    if "speech_embedding" in batch:
        logits, _ = model(batch["speech_embedding"].to(device, non_blocking=True), mesh, speech_embedded=True)
    else:
        logits, _ = model(batch["speech"].to(device, non_blocking=True), mesh)
    loss = info_nce_from_logits(logits)
    with torch.no_grad():
        acc = (logits.argmax(dim=1) == torch.arange(logits.shape[0], device=logits.device)).float().mean()
    return loss, {"infonce": float(loss.detach()), "batch_acc": float(acc)}


# -- the frozen speech side, computed once --------------------------------------------------------
#: Windows per speech-encoder call when the frozen speech side is cached. A constant: an embedding's last bits
#: depend on the batch it was computed in, so the cache is a pure function of the weights, data and this number.
SPEECH_CACHE_CHUNK = 256


def speech_is_frozen(model: torch.nn.Module) -> bool:
    """Whether ``model``'s speech encoder is frozen (``SpeechMeshModel.freeze_speech``; 3D SyncNet: never)."""
    return bool(getattr(model, "freeze_speech", False))


def speech_embeddings(model: torch.nn.Module, windows: Any, chunk: int = SPEECH_CACHE_CHUNK) -> torch.Tensor:
    """``model.encode_speech`` of every window of ``windows`` (a :class:`p3d.windows.ClipWindows`): (N, H) float32
    on the CPU, row i = item i. No gradient; computed in chunks of ``chunk`` windows in index order, on the
    model's device. Only for a frozen speech encoder (:func:`speech_is_frozen`: it is in eval mode)."""
    if not speech_is_frozen(model):
        raise ValueError("speech_embeddings: the model's speech encoder is trained; its embeddings cannot be cached")
    device = _device_of(model)
    pairs = [(int(c), int(s)) for c, s in windows.index]
    parts = []
    with torch.no_grad():
        for a in range(0, len(pairs), chunk):
            speech = windows.speech_batch(pairs[a:a + chunk]).to(device, non_blocking=True)
            parts.append(model.encode_speech(speech).float().cpu())
    return torch.cat(parts)


class EmbeddedSpeechWindows:
    """A window dataset with its frozen speech side precomputed: ``collate`` gives the wrapped dataset's batch
    with ``speech_embedding`` (B, H) (rows of ``embeddings``, :func:`speech_embeddings`) in place of ``speech``.
    Every other attribute is the wrapped dataset's (``windows``)."""

    def __init__(self, windows: Any, embeddings: torch.Tensor) -> None:
        if embeddings.ndim != 2 or embeddings.shape[0] != len(windows):
            raise ValueError(f"embeddings: expected ({len(windows)}, H), got {tuple(embeddings.shape)}")
        self.windows = windows
        self.embeddings = embeddings

    def __len__(self) -> int:
        return len(self.windows)

    def __getattr__(self, name: str) -> Any:
        if name in ("windows", "embeddings"):  # not set yet (e.g. during copying): no recursion
            raise AttributeError(name)
        return getattr(self.windows, name)

    def collate(self, indices: Any) -> dict[str, Any]:
        batch = self.windows.collate(indices)
        del batch["speech"]
        batch["speech_embedding"] = self.embeddings[torch.as_tensor(list(indices), dtype=torch.long)]
        return batch

    def __repr__(self) -> str:
        return f"EmbeddedSpeechWindows({self.windows!r}, embeddings {tuple(self.embeddings.shape)})"


# -- jobs ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Job:
    """Everything :func:`p3d.train.trainer.train` needs, plus how to write ``final.pt``."""

    kind: str
    model: torch.nn.Module
    params: list[torch.nn.Parameter]
    data: Any
    step_fn: Any
    cfg: TrainConfig
    extra_config: dict[str, Any]
    #: The validation metric (``TrainConfig.eval_every > 0``), passed to :func:`p3d.train.trainer.train`.
    validate: Any = None

    def finalize(self, run_dir: str | os.PathLike[str]) -> Path:
        """Write ``RUN_DIR/final.pt``: the model checkpoint (``Stage1Model.load`` / ``load_critic``)."""
        path = Path(run_dir) / "final.pt"
        self.model.save(path)
        return path


def build(
    kind: str,
    preset: str,
    data: str | os.PathLike[str],
    *,
    stage1: str | os.PathLike[str] | None = None,
    init: str | os.PathLike[str] | None = None,
    split: str = "train",
    identities: str | None = None,
    seed: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    checkpoint_every: int | None = None,
    window_stride: int = 1,
    max_per_clip: int | None = None,
    workers: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    progress: bool = False,
    stop: str | None = None,
    eval_every: int | None = None,
    patience: int | None = None,
    min_rel_improvement: float | None = None,
    smooth: int | None = None,
    bf16: bool = False,
) -> Job:
    """Build the training job of ``kind`` at ``preset`` on the corpus at ``data`` (see the module docstring).

    Args:
        stage1: stage-1 checkpoint (``final.pt`` of ``p3d train stage1``); required by ``stage2`` and
            ``evaluator``, refused by the others.
        init: critic checkpoint to fine-tune; required by ``finetune``, refused by the others.
        identities: ``all`` | ``half1`` | ``half2`` of the split's identities (default: the recipe's).
        seed, steps, batch_size, lr, checkpoint_every: override the recipe.
        window_stride, max_per_clip: window sampling (:class:`p3d.windows.ClipWindows`).
        workers: threads computing speech features and loading clips.
        cache_dir: on-disk speech-feature cache (:class:`p3d.audio.FeatureCache`).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
        stop, eval_every, patience, min_rel_improvement, smooth: the stopping rule
            (:mod:`p3d.train.convergence`; default: ``steps`` steps, no validation). With ``stop="plateau"``
            ``steps`` is the cap and ``eval_every`` defaults to 5 x the recipe's logging interval; any
            ``eval_every > 0`` evaluates on the corpus' ``val`` split (``val.csv``).
        bf16: stage 1 only: its forward pass under bfloat16 autocast (module docstring, "bf16").
    """
    from p3d.windows import AVWindows, SpeechMeshWindows, identity_subset, open_corpus

    rec = recipe(kind, preset)
    if kind in ("stage2", "evaluator"):
        if stage1 is None and kind == "evaluator":
            own = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in evaluator_stage1_options(preset).items())
            raise InputError(f"--stage1: `p3d train evaluator` needs its own stage-1 checkpoint: RUN_DIR/final.pt of "
                             f"`p3d train stage1 --preset {preset} --data {data} {own} --out RUN_DIR`")
        if stage1 is None:
            raise InputError(f"--stage1: `p3d train {kind}` needs a stage-1 checkpoint "
                             f"(RUN_DIR/final.pt of `p3d train stage1`)")
    elif stage1 is not None:
        raise InputError(f"--stage1: only stage2 and evaluator use a stage-1 checkpoint, not {kind}")
    if kind == "finetune":
        if init is None:
            raise InputError("--init: `p3d train finetune` needs the critic checkpoint to fine-tune "
                             "(RUN_DIR/final.pt of stage2, syncnet3d, no2d or evaluator)")
    elif init is not None:
        raise InputError(f"--init: only finetune starts from a checkpoint, not {kind}")
    if bf16 and kind != "stage1":
        raise InputError(f"--bf16: only stage1 trains under bfloat16 autocast, not {kind}")
    for name, value in (("steps", steps), ("batch_size", batch_size), ("checkpoint_every", checkpoint_every)):
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')}: expected a positive integer, got {value}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise InputError(f"--lr: expected a positive learning rate, got {lr}")
    if cache_dir is not None:  # the feature cache's first write would end in a FileExistsError traceback
        from p3d.atomic import check_out_dir

        check_out_dir(cache_dir, f"--cache-dir {cache_dir}")

    from p3d.train.convergence import has_split

    given = {"seed": seed, "batch_size": batch_size, "lr": lr, "identities": identities, "stop": stop,
             "eval_every": eval_every, "patience": patience, "min_rel_improvement": min_rel_improvement,
             "smooth": smooth}
    defaults = request_defaults(kind, preset, given)  # one source for what an omitted option trains with
    stopping = {name: defaults[name] for name in TrainConfig.STOP_FIELDS}
    seed, batch_size, lr, subset = (defaults[k] if given[k] is None else given[k]
                                    for k in ("seed", "batch_size", "lr", "identities"))
    processes = max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))  # torchrun: each process takes its share
    if batch_size // processes < 2:  # InfoNCE over one window: logits (1, 1), loss 0, no gradient
        raise InputError(f"--batch-size: {batch_size} window(s) per batch"
                         + (f" over {processes} processes" if processes > 1 else "")
                         + "; the InfoNCE of Eqs. 1-2 and 5 contrasts a window with the others of its batch and needs "
                           "at least 2 per process (with 1 its loss is 0 and nothing is learnt from it)")
    corpus = open_corpus(data)
    if stopping["eval_every"] and not has_split(corpus, VAL_SPLIT):
        raise InputError(f"--stop/--eval-every: {corpus.root} has no {VAL_SPLIT!r} split to validate on "
                         f"(use --stop steps without --eval-every)")
    if stopping["eval_every"] and split == VAL_SPLIT:  # the metric would be the training windows' own loss
        raise InputError(f"--split {split}: the validation metric (--stop plateau / --eval-every) is computed on the "
                         f"{VAL_SPLIT!r} split; training on it leaves nothing held out (use --stop steps)")
    ids = identity_subset(corpus, split, subset)
    dev = resolve_device(device)
    if bf16:
        warn_unless_native_bf16(dev, "--bf16")
    windows_kw = dict(identities=ids, stride=window_stride, max_per_clip=max_per_clip, cache_dir=cache_dir,
                      workers=workers, progress=progress)

    torch.manual_seed(seed)  # model initialisation
    if kind == "stage1":
        from p3d.models.stage1 import Stage1Config, Stage1Model

        config = Stage1Config.from_preset(preset)
        ds: Any = AVWindows.for_config(config, corpus, split, **windows_kw)
        model: Any = Stage1Model(config)
        step_fn: Any = functools.partial(stage1_step, bf16=True) if bf16 else stage1_step
        model_info: dict[str, Any] = {"config": dataclasses.asdict(config)}
    else:
        ds = SpeechMeshWindows(corpus, split, **windows_kw)
        model = _critic(kind, preset, ds.n_vertices, stage1=stage1, init=init)
        if kind in ("stage2", "evaluator", "no2d"):  # the mesh encoder's input standardisation
            mean, scale = ds.vertex_statistics()
            model.mesh_encoder.set_input_normalization(torch.from_numpy(mean), scale)
        step_fn = critic_step
        model_info = {"config": dataclasses.asdict(model.config), "model_kind": model.kind,
                      "variant": getattr(model, "variant", None)}
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    cfg = TrainConfig(steps=steps or rec.n_steps(len(ds), batch_size), batch_size=batch_size, lr=lr,
                      warmup_steps=rec.warmup_steps, checkpoint_every=checkpoint_every or rec.checkpoint_every,
                      log_every=rec.log_every, seed=seed, **stopping)
    if kind != "stage1" and speech_is_frozen(model):  # embed every window once (see the module docstring)
        import time

        began = time.perf_counter()
        ds = EmbeddedSpeechWindows(ds, speech_embeddings(model, ds))
        log.info("%s: frozen speech encoder: %d windows embedded once in %.1f s", kind, len(ds),
                 time.perf_counter() - began)
    validate = None
    if cfg.eval_every:
        validate = _validation(kind, model, corpus, cache_dir=cache_dir, workers=workers, progress=progress)
    extra = {
        "kind": kind, "preset": preset, "data": str(Path(data).resolve()), "corpus": corpus.name, "split": split,
        "identities": subset, "identity_list": ids, "stage1": None if stage1 is None else str(stage1),
        "init": None if init is None else str(init), "windows": len(ds), "clips": ds.n_clips,
        "window_stride": window_stride, "max_per_clip": max_per_clip, "epochs": cfg.steps * cfg.batch_size / len(ds),
        "trainable_parameters": sum(p.numel() for p in params), "device": str(dev), **model_info,
    }
    if validate is not None:
        extra["validation"] = validate.describe()
    if bf16:  # recorded only when on, so runs from before the option resume unchanged
        extra["bf16"] = True
    log.info("%s/%s: %d windows of %d clips, %d steps of batch %d (%.2f epochs), %d trainable parameters", kind,
             preset, len(ds), ds.n_clips, cfg.steps, cfg.batch_size, extra["epochs"], extra["trainable_parameters"])
    return Job(kind=kind, model=model, params=params, data=ds, step_fn=step_fn, cfg=cfg, extra_config=extra,
               validate=validate)


def _validation(kind: str, model: Any, corpus: Any, *, cache_dir: Any, workers: int, progress: bool | None) -> Any:
    """The validation metric of ``kind`` on the corpus' ``val`` split (:class:`p3d.train.convergence.WindowValidation`):
    every identity of the split, every window start (at most ``VAL_WINDOWS`` used)."""
    from p3d.train.convergence import WindowValidation
    from p3d.windows import AVWindows, SpeechMeshWindows

    kw = dict(cache_dir=cache_dir, workers=workers, progress=progress)
    if kind == "stage1":
        windows: Any = AVWindows.for_config(model.config, corpus, VAL_SPLIT, **kw)
    else:
        windows = SpeechMeshWindows(corpus, VAL_SPLIT, **kw)
    return WindowValidation(windows, kind)


def _critic(kind: str, preset: str, n_vertices: int, *, stage1: Any = None, init: Any = None) -> Any:
    from p3d.models.mesh_encoder import MeshEncoderConfig
    from p3d.models.speech_mesh import SpeechMeshConfig, SpeechMeshModel, load_critic
    from p3d.models.syncnet3d import SyncNet3D, SyncNet3DConfig

    if kind in ("stage2", "evaluator"):
        return SpeechMeshModel.ours(stage1, MeshEncoderConfig.from_preset(preset, n_vertices=n_vertices))
    if kind == "no2d":
        return SpeechMeshModel.no2d(SpeechMeshConfig.from_preset(preset, n_vertices=n_vertices))
    if kind == "syncnet3d":
        return SyncNet3D(SyncNet3DConfig.from_preset(preset, n_vertices=n_vertices))
    assert kind == "finetune"
    model = load_critic(init)
    if model.n_vertices != n_vertices:
        raise InputError(f"--init {init}: the critic expects {model.n_vertices} vertices per frame, the corpus "
                         f"has {n_vertices}")
    return model.train()


def options_from_args(args: Any) -> dict[str, Any]:
    """:func:`build`'s keyword arguments from ``p3d train`` arguments (:mod:`p3d.train.cli`)."""
    from p3d.train.convergence import stop_options

    return dict(stage1=args.stage1, init=args.init, split=args.split, identities=args.identities, seed=args.seed,
                steps=args.steps, batch_size=args.batch_size, lr=args.lr, checkpoint_every=args.checkpoint_every,
                window_stride=args.window_stride, max_per_clip=args.max_windows_per_clip, workers=args.workers,
                cache_dir=args.cache_dir, device=args.device, bf16=bool(getattr(args, "bf16", False)),
                **stop_options(args))


def build_from_args(args: Any) -> Job:
    """:func:`build` from ``p3d train`` arguments (:mod:`p3d.train.cli`)."""
    return build(args.train_kind, args.preset, args.data, progress=not args.no_progress, **options_from_args(args))


def request_from_args(args: Any) -> dict[str, Any]:
    """The run's request (:func:`p3d.train.request.run_request`, the same as :func:`p3d.train.api.fit` writes)."""
    return run_request(args.train_kind, args.preset, args.data, options_from_args(args), build)


def add_arguments(parser: Any) -> None:
    """The representation kinds' own ``p3d train`` options."""
    from p3d.windows import IDENTITY_SUBSETS

    parser.add_argument("--stage1", type=Path, help="stage-1 checkpoint (RUN_DIR/final.pt of `p3d train stage1`); "
                                                    "stage2 and evaluator")
    parser.add_argument("--init", type=Path, help="critic checkpoint to fine-tune (finetune)")
    parser.add_argument("--split", default="train", help="corpus split to train on (default train)")
    parser.add_argument("--identities", choices=IDENTITY_SUBSETS, default=None,
                        help="identities of the split: all, or one interleaved half (default: all; evaluator: half2)")
    parser.add_argument("--window-stride", type=int, default=1, help="use every N-th window start (default 1)")
    parser.add_argument("--max-windows-per-clip", type=int, default=None,
                        help="at most N evenly spaced windows per clip")
    parser.add_argument("--cache-dir", type=Path, default=None, help="on-disk speech-feature cache folder")
    parser.add_argument("--bf16", action="store_true",
                        help="stage1: the forward pass under bfloat16 autocast (a CPU with AVX512-BF16 or AMX: "
                             "1.4-2.4x faster per step, measured; a GPU at the paper preset: 3.2x on an H200; "
                             "default off: float32)")
