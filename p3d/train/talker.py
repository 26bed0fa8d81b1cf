"""``p3d train talker``: a talking-head baseline with (or without) the perceptual loss (paper Sec. 5).

    p3d train talker --model faceformer|codetalker|selftalk --train DIR[,DIR] --preset smoke|cpu|paper \\
        --out RUN_DIR [--critic none|ours|syncnet3d|no2d --critic-checkpoint CKPT] [--loss-weight W] \\
        [--no-cache] [--seed N] [--steps N] [--stage-steps N,N] [--lr X] [--wav2vec2 DIR] [--recogniser DIR] \\
        [--teacher-forcing] [--threads N] [--batch-size N] [--bf16]

**Step** (one clip per process, batch size 1 as the official code, unless ``--batch-size``):
``loss = model loss + W * L_percp``,
where the model loss is the baseline's own objective (FaceFormer: MSE of the vertices, autoregressive
rollout) and ``L_percp`` is the InfoNCE of Eq. 6 (:class:`p3d.losses.PerceptualLoss`: stride-1 5-frame
windows, contrastive batches of 80, tau = 0.07) of the frozen critic on the predicted vertices against
the clip's speech. The critic's speech embeddings are computed once per clip when the data are loaded
(:class:`p3d.talker_data.TalkerClips`); ``--no-cache`` keeps the fbank windows instead and the critic
embeds them at every step (same value; Table S8's cost comparison). ``metrics.csv`` logs ``loss`` (the
total), ``model_loss``, the model's own terms and, with a critic, ``percp`` (unweighted InfoNCE) and
``percp_weighted``.

**Weight.** The official 1e-7 (``perceptual_loss/main.py``) is tied to VOCASET's units (metres, MSE of
order 1e-6 to 1e-5); ``--loss-weight`` sets it for another corpus (choose it on the validation split).

**Stages.** A model class may declare ``training_stages`` (default ``("main",)``) and ``set_stage(name)``
(CodeTalker: ``("vqvae", "speech")``). Every stage but the last is trained first, in
``RUN_DIR/<stage>/`` (its own ``config.json``, ``metrics.csv``, ``checkpoints/``, exact resume; no
perceptual loss there, since its outputs are not predictions from speech); the last stage is the run in
``RUN_DIR`` itself, with the perceptual loss. ``--stage-steps`` gives every stage's step count.

**Data.** ``--train`` (``--data`` is a synonym) takes one corpus folder or several, comma-separated
(config 2: ``synth-voca,synth-mead``), all of one mesh topology and frame rate; the styles are their
sorted ``train`` identities (saved as ``styles`` in ``config.json``, read back by ``p3d predict``).

**Recipes** (:data:`RECIPES`; every value can be overridden):

- ``paper``: the official schedules. FaceFormer and SelfTalk: Adam lr 1e-4, 101 epochs of one clip per
  step (the paper's "100 epochs"; their official loops run ``range(epoch + 1)``); CodeTalker: VQ-VAE 200 epochs
  (AdamW, torch's default weight decay 0.01) then speech stage 100 epochs, lr 1e-4 (its StepLR decay of stage 1
  is not reproduced: constant lr). Adam betas (0.9, 0.999), no gradient clipping, no warm-up.
- ``cpu``: the ``cpu`` model presets on the synthetic corpora, sized so one model trains in one to three
  minutes per CPU core (see :data:`RECIPES` for the step counts and the measured seconds per step in
  the comments): 400 steps (CodeTalker: 1000 VQ-VAE + 400 speech), lr 1e-3 with a 20-step warm-up and
  gradient clipping at 1.0; FaceFormer with Adam eps 1e-16 (why: :data:`RECIPES`).
- ``smoke``: a dozen steps (tests, notebooks at smoke size).

**Batches of clips** (``--batch-size B``, :attr:`TalkerRecipe.batch_size`). ``B`` is the **global** batch,
as for every ``p3d train`` command (:class:`p3d.train.trainer.TrainConfig`): each of the P processes takes
``B / P`` clips per step (B must be a multiple of P; default: the recipe's clips per process times P).
With several clips per process the model runs them in one padded, masked pass
(:class:`p3d.models.talker.ClipBatch`) and every clip's loss -- its own terms and its perceptual loss --
is computed exactly as for that clip alone, then averaged over the clips (:class:`TalkerStep`). All
recipes keep one clip per process (``paper``: the official batch of 1; ``cpu`` / ``smoke``: their
measured numbers); the step counts do not change with B (a step then sees B clips).
**bf16** (``--bf16``): the perceptual loss' critic pass (the frozen mesh encoder on every 5-frame window, the
compute-bound part of a batched step) under ``torch.autocast(dtype=bfloat16)`` (CPU: AVX-512/AMX bf16 matrix
products); the talker stays in float32 (its many small ops ran slower under autocast). Measured: 1.4x faster
critic pass, InfoNCE within 3e-4 relative of float32 (``benchmarks/RESULTS.md``). Off by default.

Multi-process (``torchrun``): each process takes ``B / P`` clips per step, DDP averages the gradients.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p3d.errors import InputError
from p3d.registry import MODEL_PRESETS, MODELS, TALKER_CRITICS

if TYPE_CHECKING:
    import torch

    from p3d.train.trainer import TrainConfig

log = logging.getLogger(__name__)

#: A talker's critic choices (``none``: the baseline without the perceptual loss) and the presets with recipes.
CRITICS: tuple[str, ...] = TALKER_CRITICS
PRESETS: tuple[str, ...] = MODEL_PRESETS
#: The ``--model`` choices (the keys of :data:`p3d.models.talker.MODELS`): :data:`p3d.registry.MODELS`, which
#: imports no torch.
MODEL_NAMES: tuple[str, ...] = MODELS
#: The baselines' official BIWI hyper-parameters where they differ from VOCASET's (their ``paper`` presets):
#: FaceFormer ``feature_dim`` 128; CodeTalker ``face_quan_num`` 8 codes of ``zquant_dim`` 128 and a 12-layer
#: speech decoder; SelfTalk ``feature_dim`` 1024. Applied by :func:`model_config` at the ``paper`` preset on a
#: BIWI corpus (``meta["kind"] == "biwi"``). The PPE / ALiBi period follows the frame rate (25). Not
#: reproduced: the official BIWI audio alignment (FaceFormer / CodeTalker attend to the two 50 Hz wav2vec2
#: frames 2t, 2t + 1 of mesh frame t; SelfTalk concatenates them); p3d's audio encoders interpolate the
#: 50 Hz features to the 25 fps frames, the VOCASET alignment.
PAPER_BIWI_SETTINGS: dict[str, dict[str, Any]] = {
    "faceformer": {"d_model": 128},
    "codetalker": {"n_face": 8, "code_dim": 128, "layers": 12},
    "selftalk": {"dim": 1024},
}


@dataclasses.dataclass(frozen=True)
class TalkerRecipe:
    """Optimisation defaults of one (preset, model, stage): ``steps`` or ``epochs`` over the clips."""

    lr: float = 1e-4
    epochs: float | None = None
    steps: int | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float | None = None
    warmup_steps: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    #: clips per process per step (the global batch is this times the number of processes)
    batch_size: int = 1
    #: AdamW's decoupled weight decay (0: Adam)
    weight_decay: float = 0.0

    def n_steps(self, n_clips: int, batch_size: int = 1) -> int:
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None
        return max(1, math.ceil(self.epochs * n_clips / batch_size))


def _recipes() -> dict[str, dict[str, dict[str, TalkerRecipe]]]:
    paper = TalkerRecipe(lr=1e-4, epochs=100, checkpoint_every=2000, log_every=50)
    # cpu: measured on data/cpu/synth-voca (192 training clips, 75 frames on average, 468 vertices), one
    # thread per process; seconds per step alone on the 2-core machine / with two processes side by side.
    cpu = TalkerRecipe(lr=1e-3, steps=400, grad_clip=1.0, warmup_steps=20, checkpoint_every=100, log_every=10)
    smoke = TalkerRecipe(lr=1e-3, steps=12, grad_clip=1.0, checkpoint_every=6, log_every=2)
    return {
        # FaceFormer's and SelfTalk's official main.py loop `for e in range(epoch + 1)` with epoch = 100: 101 epochs
        "paper": {"faceformer": {"main": dataclasses.replace(paper, epochs=101)},
                  "selftalk": {"main": dataclasses.replace(paper, epochs=101)},
                  # CodeTalker's VQ-VAE: the official train_vq.py builds AdamW(params, lr) without a weight decay,
                  # so torch's default 0.01 applies (its config's weight_decay is read by the SGD branch only)
                  "codetalker": {"vqvae": dataclasses.replace(paper, epochs=200, weight_decay=0.01),
                                 "speech": paper}},
        "cpu": {
            # FaceFormer, autoregressive: 0.16 / 0.36 s per step. Adam eps 1e-16: the MSE gradients in metres
            # (1e-11 .. 1e-8) are below the default eps 1e-8, which turns Adam into SGD with step lr / eps
            # (measured, val split after 600 steps: lip-opening correlation with GT 0.04 at eps 1e-8, lr 3e-3;
            # 0.49 at eps 1e-16, lr 1e-3; 0.53 after 300 steps at eps 1e-16, lr 1e-3).
            "faceformer": {"main": dataclasses.replace(cpu, eps=1e-16)},
            # SelfTalk: 0.13 s per step; its 1000-weighted terms keep gradients above eps (300 steps: lip
            # correlation 0.50 at lr 1e-3).
            "selftalk": {"main": cpu},
            # CodeTalker: VQ-VAE 0.05 s per step, speech stage 0.05 s per step (teacher forcing); 300 VQ-VAE
            # steps leave a 2.8 mm L1 reconstruction error (val MSE 8e-6, worse than the template's 2.6e-6),
            # 1000 give val MSE 1.1e-6 and lip correlation 0.50 after 400 speech steps.
            "codetalker": {"vqvae": dataclasses.replace(cpu, steps=1000), "speech": cpu},
        },
        "smoke": {"faceformer": {"main": dataclasses.replace(smoke, eps=1e-16)}, "selftalk": {"main": smoke},
                  "codetalker": {"vqvae": smoke, "speech": smoke}},
    }


#: preset -> model -> stage -> :class:`TalkerRecipe`.
RECIPES: dict[str, dict[str, dict[str, TalkerRecipe]]] = _recipes()


def recipe(model: str, preset: str, stage: str) -> TalkerRecipe:
    """The default recipe of ``model``'s ``stage`` at ``preset`` (unknown stages get the model's last one)."""
    if preset not in RECIPES:
        raise InputError(f"preset: unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    per_model = RECIPES[preset].get(model)
    if per_model is None:
        per_model = {"main": RECIPES[preset]["faceformer"]["main"]}
    return per_model.get(stage, list(per_model.values())[-1])


def training_stages(cls: type) -> tuple[str, ...]:
    """A talker class' ``training_stages`` (default ``("main",)``)."""
    stages = tuple(getattr(cls, "training_stages", ("main",)))
    if not stages:
        raise InputError(f"{cls.__name__}.training_stages: empty")
    return stages


# -- the step --------------------------------------------------------------------------------------
def perceptual_per_clip(perceptual: Any, vertices: Sequence[Any], speech: Sequence[Any]) -> torch.Tensor:
    """(B,) unweighted perceptual losses of B clips, each exactly ``perceptual.unweighted(vertices[b], speech[b])``
    (its own 5-frame windows, its own contrastive groups), with one mesh-encoder call for all clips.

    The clips' frames are concatenated and :meth:`p3d.losses.PerceptualLoss.mesh_embeddings` embeds every
    stride-1 window of the concatenation (a window's embedding depends on its 5 frames only); clip b keeps
    its own windows (the 4 windows straddling each boundary are computed and dropped). Speech given as
    fbank windows (no cache) is embedded in one call as well.
    """
    import torch

    from p3d.losses.infonce import info_nce
    from p3d.losses.perceptual_loss import contrastive_groups, flat_vertices, speech_tensor

    n_vertices = getattr(perceptual.model, "n_vertices", None)
    dtype = next(perceptual.model.parameters()).dtype
    flats = [flat_vertices(v, n_vertices) for v in vertices]
    speech = [speech_tensor(s) for s in speech]  # the checks of PerceptualLoss.unweighted
    fbank = [b for b, s in enumerate(speech) if s.ndim == 3]
    if fbank:
        embedded = perceptual.speech_embeddings(torch.cat([speech[b] for b in fbank]))
        starts = [0]
        for b in fbank:
            starts.append(starts[-1] + speech[b].shape[0])
        for k, b in enumerate(fbank):
            speech[b] = embedded[starts[k]:starts[k + 1]]
    perceptual.model.eval()
    offsets, counts = [], []
    total = 0
    for b, (v, s) in enumerate(zip(flats, speech)):
        n = min(s.shape[0], v.shape[0] - 4)
        if not contrastive_groups(max(n, 0), perceptual.batch_size):
            raise InputError(f"pred_vertices / speech: {v.shape[0]} frames and {s.shape[0]} speech windows give "
                             f"{max(n, 0)} 5-frame windows; the contrastive loss needs at least 2")
        offsets.append(total)
        counts.append(n)
        total += v.shape[0]
    frames = torch.cat(flats)
    mesh = perceptual.mesh_embeddings(frames, frames.shape[0] - 4)
    losses = []
    for off, n, s in zip(offsets, counts, speech):
        s = s.to(device=mesh.device, dtype=dtype)  # float64 embeddings: the critic's dtype, as unweighted()
        emb = mesh[off:off + n]
        if s.shape[1] != emb.shape[1]:
            raise InputError(f"speech: {s.shape[1]}-dimensional embeddings, the critic's are {emb.shape[1]}")
        groups = [info_nce(s[a:b], emb[a:b], perceptual.temperature)
                  for a, b in contrastive_groups(n, perceptual.batch_size)]
        losses.append(torch.stack(groups).mean())
    return torch.stack(losses)


class TalkerStep:
    """``(model, batch, generator) -> (loss, logs)``: the model's loss plus ``weight * L_percp``.

    With ``perceptual=None`` (or a batch without speech) only the model's loss. The generator is not
    needed: dropout draws from torch's global RNG, which the trainer re-seeds at every step.

    A :class:`~p3d.models.talker.ClipBatch`: each clip's ``model loss + weight * L_percp`` as for the clip
    alone, averaged over the clips (:func:`perceptual_per_clip` embeds all clips' windows in one call).
    ``bf16``: the perceptual loss (critic pass) under ``torch.autocast(device type, torch.bfloat16)``, its value
    returned in float32; the model's own pass stays in float32. Autocast reaches the mesh encoder only: the speech
    embeddings (``--no-cache``) and the InfoNCE logits are computed in float32 (:func:`p3d.losses.infonce.info_nce`).
    """

    def __init__(self, perceptual: Any = None, bf16: bool = False) -> None:
        self.perceptual = perceptual
        self.bf16 = bool(bf16)

    def __call__(self, model: torch.nn.Module, batch: Any, generator: torch.Generator
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        import contextlib

        import torch

        from p3d.models.talker import ClipBatch

        device = next(model.parameters()).device
        batch = batch.to(device)
        out = model(batch)
        loss = out.loss
        logs = {"model_loss": float(out.loss.detach()), **{k: float(v) for k, v in out.logs.items()}}
        if self.perceptual is not None:
            speech = batch.speech
            if speech is None or (isinstance(batch, ClipBatch) and any(s is None for s in speech)):
                raise InputError(f"{batch.stem}: no speech windows/embeddings for the perceptual loss")
            autocast = torch.autocast(device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
            predicted = list(out.vertices) if isinstance(batch, ClipBatch) else [out.vertices]
            if not all(bool(torch.isfinite(v.detach()).all()) for v in predicted):
                # a diverged model, not bad input: a non-finite loss, which the trainer reports with its step
                percp = torch.full((), float("nan"), device=device)
            else:
                with autocast:
                    percp = (perceptual_per_clip(self.perceptual, predicted, speech).mean()
                             if isinstance(batch, ClipBatch) else self.perceptual.unweighted(out.vertices, speech))
            percp = percp.float()
            loss = loss + self.perceptual.weighted(percp)
            logs["percp"] = float(percp.detach())
            logs["percp_weighted"] = self.perceptual.weighted(logs["percp"])
        return loss, logs


# -- jobs ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class StageRun:
    """An earlier training stage: trained in ``RUN_DIR/<name>`` before the job's own (last) stage."""

    name: str
    cfg: TrainConfig


@dataclasses.dataclass
class TalkerJob:
    """What :func:`p3d.train.trainer.train` needs (as :class:`p3d.train.critics.Job`), plus the
    earlier stages (:func:`run_earlier_stages`)."""

    kind: str
    model: Any
    params: list[Any]
    data: Any
    step_fn: Any
    cfg: TrainConfig
    extra_config: dict[str, Any]
    stages_before: list[StageRun] = dataclasses.field(default_factory=list)
    last_stage: str = "main"
    validate: Any = None

    def finalize(self, run_dir: str | os.PathLike[str]) -> Path:
        """Write ``RUN_DIR/final.pt``: the talker checkpoint (``p3d.models.load_model``, ``p3d predict``)."""
        path = Path(run_dir) / "final.pt"
        self.model.save(path)
        return path


class SpeechEmbeddingCache:
    """A frozen critic's speech embeddings of a clip's windows, kept on disk across runs.

    :class:`p3d.talker_data.TalkerClips` embeds every training clip's speech windows once per run; runs
    with the same critic (Tables 2-4 train a dozen) would recompute identical embeddings. This stands in
    for the :class:`p3d.losses.PerceptualLoss` there: ``speech_embeddings(windows)`` is looked up under
    ``root/<sha256 of the critic checkpoint>/<sha1 of the windows>.npy`` (written atomically), else computed by
    the loss' critic and saved. The key covers the exact input (the windows: the speech front-end's output, so a
    change of the front-end is a change of key), so a hit is the same value. An
    entry that cannot be read safely (truncated, not a ``.npy``, pickled) or is not a finite (N, D) float32 matrix
    of the windows' N rows is recomputed and rewritten, with a warning.
    """

    def __init__(self, perceptual: Any, critic_checkpoint: str | os.PathLike[str] | None,
                 root: str | os.PathLike[str]) -> None:
        import hashlib

        if critic_checkpoint is None:
            raise InputError("speech_cache_dir: needs the critic checkpoint (its hash keys the cache)")
        digest = hashlib.sha256(Path(critic_checkpoint).read_bytes()).hexdigest()[:20]
        self.perceptual = perceptual
        self.root = Path(root) / digest

    def speech_embeddings(self, fbank_windows: Any) -> Any:
        """(N, D) float32 embeddings of (N, 20, 128) windows, as ``PerceptualLoss.speech_embeddings``."""
        import hashlib

        import numpy as np
        import torch

        from p3d.atomic import save_npy

        windows = np.ascontiguousarray(fbank_windows, dtype=np.float32)
        key = hashlib.sha1(repr(windows.shape).encode() + windows.tobytes()).hexdigest()
        path = self.root / f"{key}.npy"
        if path.exists():
            try:
                emb = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError) as err:  # truncated, garbage, or pickled (refused unread)
                log.warning("%s: unreadable speech-embedding cache entry (%s); recomputed", path, err)
            else:
                if (emb.ndim == 2 and emb.shape[0] == windows.shape[0] and emb.dtype == np.float32
                        and np.isfinite(emb).all()):
                    return torch.from_numpy(emb)
                log.warning("%s: speech-embedding cache entry of shape %s, dtype %s (not %d finite float32 rows); "
                            "recomputed", path, emb.shape, emb.dtype, windows.shape[0])
        emb = self.perceptual.speech_embeddings(windows).detach().cpu()
        path.parent.mkdir(parents=True, exist_ok=True)
        save_npy(path, emb.numpy())
        return emb


def load_critic_for(critic: str, checkpoint: str | os.PathLike[str] | None, n_vertices: int,
                    device: Any) -> Any:
    """Load ``checkpoint`` and check it is the ``critic`` named (ours / no2d: stage-2 variants; syncnet3d)."""
    from p3d.models.speech_mesh import load_critic

    if critic not in CRITICS:
        raise InputError(f"--critic: unknown critic {critic!r} (choose from {', '.join(CRITICS)})")
    if critic == "none":
        if checkpoint is not None:
            raise InputError("--critic-checkpoint: given with --critic none; name the critic (ours, syncnet3d, no2d)")
        return None
    if checkpoint is None:
        raise InputError(f"--critic-checkpoint: --critic {critic} needs the critic's final.pt "
                         f"(`p3d train stage2|syncnet3d|no2d|finetune`)")
    model = load_critic(checkpoint, map_location=device)
    actual = "syncnet3d" if model.kind == "syncnet3d" else getattr(model, "variant", None)
    if actual != critic:
        raise InputError(f"--critic-checkpoint {checkpoint}: holds a {actual!r} critic, not {critic!r}")
    if model.n_vertices != n_vertices:
        raise InputError(f"--critic-checkpoint {checkpoint}: the critic expects {model.n_vertices} vertices per frame, "
                         f"the training corpus has {n_vertices}")
    return model


def model_config(name: str, preset: str, data: Any, *, wav2vec2: str | os.PathLike[str] | None = None,
                 teacher_forcing: bool | None = None) -> Any:
    """The preset config of talker ``name`` sized for ``data`` (a :class:`TalkerClips`): vertex count, styles,
    frame rate; ``wav2vec2`` sets the local wav2vec2 folder of a wav2vec2 audio encoder.

    At the ``paper`` preset on BIWI, the official BIWI sizes (:data:`PAPER_BIWI_SETTINGS`).
    A config class may define ``for_corpus(config, corpus) -> config`` for its own data-dependent fields; for
    SelfTalk without it, the CTC vocabulary and lip region are set here from the corpus (phoneme inventory
    ``meta["phonemes"]``, topology region ``lips``; with the recogniser's targets, the ``paper`` preset, the
    region as the official code reads it: :func:`_selftalk_official_lips`).
    """
    from p3d.models.talker import talker_class

    cls = talker_class(name)
    fps = data.fps
    config = cls.config_class.from_preset(preset, n_vertices=data.n_vertices, n_styles=len(data.styles),
                                          fps=int(fps) if float(fps).is_integer() else fps)
    audio = getattr(config, "audio", None)
    if wav2vec2 is not None:
        if audio is None or audio.kind != "wav2vec2":
            raise InputError(f"--wav2vec2: the {preset} preset of {name} does not use a wav2vec2 audio encoder")
        config = dataclasses.replace(config, audio=dataclasses.replace(audio, wav2vec2_path=str(wav2vec2)))
    elif audio is not None and audio.kind == "wav2vec2" and not audio.wav2vec2_path:
        raise InputError(f"--wav2vec2: the {preset} preset of {name} needs a local wav2vec2 folder (e.g. "
                         f"facebook/wav2vec2-base-960h saved with save_pretrained); nothing is downloaded")
    if teacher_forcing is not None:
        if not hasattr(config, "teacher_forcing"):
            raise InputError(f"--teacher-forcing: {name} has no teacher-forcing option")
        config = dataclasses.replace(config, teacher_forcing=teacher_forcing)
    corpus = data.corpora[0]
    if preset == "paper" and corpus.meta.get("kind") == "biwi":
        settings = {k: v for k, v in PAPER_BIWI_SETTINGS.get(name, {}).items() if hasattr(config, k)}
        log.info("%s on BIWI: the official BIWI settings %s (audio features interpolated to 25 fps, not the "
                 "official two 50 Hz frames per mesh frame)", name, settings)
        config = dataclasses.replace(config, **settings)
    hook = getattr(cls.config_class, "for_corpus", None)
    if hook is not None:
        return hook(config, corpus)
    if name == "selftalk" and getattr(config, "targets", None) == "labels":
        config = _selftalk_for_corpus(config, corpus)
    elif name == "selftalk" and not config.lip_indices:
        config = _selftalk_official_lips(config, corpus)
    return config


def _selftalk_official_lips(config: Any, corpus: Any) -> Any:
    """The official SelfTalk's lip reader reads the ``lips`` region in its file order (``FLAME_masks.pkl["lips"]``,
    254 entries with repeats: ``lip_map = Linear(254 * 3, ...)``), not the whole mesh; the corpus' region as it is
    (the whole mesh only for a topology without one)."""
    lips = corpus.topology.regions.get("lips") if hasattr(corpus.topology, "regions") else None
    if lips is None or not len(lips):
        log.warning("selftalk: %s has no lips region; the lip reader reads the whole mesh", corpus.root)
        return config
    return dataclasses.replace(config, lip_indices=tuple(int(i) for i in lips))


def _selftalk_for_corpus(config: Any, corpus: Any) -> Any:
    from p3d.models import selftalk

    phonemes = corpus.meta.get("phonemes")
    changes: dict[str, Any] = {}
    if phonemes:
        try:
            unit = getattr(config, "unit", "viseme")
            changes["label_to_token"] = selftalk.token_map(phonemes, unit)
            changes["vocab_size"] = selftalk.vocabulary_size(phonemes, unit)
        except (KeyError, ValueError, InputError) as exc:  # an inventory the viseme table does not know
            log.warning("selftalk: phoneme inventory of %s not mappable to visemes (%s); using raw labels",
                        corpus.root, exc)
            changes["label_to_token"] = tuple(range(len(phonemes)))
            changes["vocab_size"] = max(2, len(phonemes))
    lips = corpus.topology.regions.get("lips") if hasattr(corpus.topology, "regions") else None
    if lips is not None and len(lips):
        changes["lip_indices"] = tuple(sorted({int(i) for i in lips}))
    return dataclasses.replace(config, **changes)


def _train_config(rec: TalkerRecipe, n_clips: int, batch_size: int, seed: int, *, steps: int | None = None,
                  lr: float | None = None, checkpoint_every: int | None = None) -> TrainConfig:
    from p3d.train.trainer import TrainConfig

    return TrainConfig(steps=steps or rec.n_steps(n_clips, batch_size), batch_size=batch_size, lr=lr or rec.lr,
                       betas=rec.betas, eps=rec.eps, weight_decay=rec.weight_decay, grad_clip=rec.grad_clip,
                       warmup_steps=rec.warmup_steps,
                       checkpoint_every=checkpoint_every or rec.checkpoint_every, log_every=rec.log_every, seed=seed)


def request_defaults(preset: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The values :func:`build` gives the options that ``options`` (a talker run's request,
    :func:`p3d.train.request.run_request`, with ``model``) leaves out, where they follow from the recipes and the
    model's preset config alone (no data): ``seed``, ``batch_size`` (the recipe's clips per process times
    ``world_size``), ``lr`` (when every stage's recipe has the same one: ``lr`` sets all stages'), ``loss_weight``
    (with a critic), ``teacher_forcing`` (models with that option), the earlier stages' ``stage_steps`` (recipes of
    a fixed step count) and the stopping rule's (:func:`p3d.train.convergence.stop_settings` of the given ones).
    The last stage's ``steps`` is left out. Raises :class:`InputError` for an unknown model or preset, or
    stopping options :func:`build` would refuse."""
    from p3d.losses.perceptual_loss import DEFAULT_WEIGHT
    from p3d.models.talker import talker_class
    from p3d.train.convergence import stop_settings
    from p3d.train.trainer import TrainConfig

    model = options.get("model")
    cls = talker_class(model)
    stages = training_stages(cls)
    recipes = [recipe(model, preset, stage) for stage in stages]
    last = recipes[-1]
    out: dict[str, Any] = {"seed": 0, "batch_size": last.batch_size * int(options.get("world_size", 1))}
    if len({rec.lr for rec in recipes}) == 1:
        out["lr"] = last.lr
    if options.get("critic", "none") != "none":
        out["loss_weight"] = DEFAULT_WEIGHT
    config = cls.config_class.from_preset(preset)
    if hasattr(config, "teacher_forcing"):
        out["teacher_forcing"] = config.teacher_forcing
    if len(stages) > 1 and all(rec.steps is not None for rec in recipes[:-1]):
        out["stage_steps"] = [rec.steps for rec in recipes[:-1]]
    stopping = stop_settings(**{k: options.get(k) for k in TrainConfig.STOP_FIELDS},
                             default_eval_every=5 * last.log_every)
    return {**out, **stopping}


def build(
    model: str,
    preset: str,
    train: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    critic: str = "none",
    critic_checkpoint: str | os.PathLike[str] | None = None,
    loss_weight: float | None = None,
    cache: bool = True,
    seed: int | None = None,
    steps: int | None = None,
    stage_steps: Sequence[int] | None = None,
    lr: float | None = None,
    checkpoint_every: int | None = None,
    wav2vec2: str | os.PathLike[str] | None = None,
    recogniser: str | os.PathLike[str] | None = None,
    teacher_forcing: bool | None = None,
    speech_cache_dir: str | os.PathLike[str] | None = None,
    workers: int = 1,
    device: str = "auto",
    progress: bool = False,
    world_size: int = 1,
    stop: str | None = None,
    eval_every: int | None = None,
    patience: int | None = None,
    min_rel_improvement: float | None = None,
    smooth: int | None = None,
    batch_size: int | None = None,
    bf16: bool = False,
) -> TalkerJob:
    """Build the training job of talker ``model`` at ``preset`` on the ``train`` split of ``train`` corpora.

    Args:
        critic, critic_checkpoint: the perceptual loss' critic (``none``: no loss).
        loss_weight: W (default: the official 1e-7).
        cache: embed each clip's speech once (True) or at every step (False).
        steps: the last stage's steps; ``stage_steps``: every stage's, in ``training_stages`` order.
        wav2vec2: local wav2vec2 folder (``paper`` preset).
        recogniser: local ``Wav2Vec2ForCTC`` folder, SelfTalk's frozen speech recogniser (``targets="asr"``,
            its ``paper`` preset); kept out of the checkpoint.
        teacher_forcing: override the model's training input (models with that option).
        speech_cache_dir: keep the critic's speech embeddings on disk there (:class:`SpeechEmbeddingCache`),
            shared by runs with the same critic checkpoint (same values; saves the speech-encoder passes).
        world_size: processes.
        batch_size: the global batch, clips per step over all processes (a multiple of ``world_size``;
            default: the recipe's clips per process times ``world_size``).
        bf16: the critic pass under bfloat16 autocast (:class:`TalkerStep`).
        stop, eval_every, patience, min_rel_improvement, smooth: the last stage's stopping rule
            (:mod:`p3d.train.convergence`: validation vertex MSE on the ``val`` clips; ``steps`` the cap).
    """
    import torch

    from p3d.losses.perceptual_loss import DEFAULT_WEIGHT, PerceptualLoss, check_weight
    from p3d.models.talker import MODELS, talker_class
    from p3d.talker_data import TalkerClips
    from p3d.device import resolve_device, warn_unless_native_bf16

    if model not in MODELS:
        raise InputError(f"--model: unknown talking-head model {model!r} (choose from {', '.join(MODELS)})")
    if preset not in PRESETS:
        raise InputError(f"--preset: unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    for name, value in (("steps", steps), ("checkpoint_every", checkpoint_every)):
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')}: expected a positive integer, got {value}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise InputError(f"--lr: expected a positive learning rate, got {lr}")
    weight = DEFAULT_WEIGHT if loss_weight is None else check_weight(loss_weight, "--loss-weight")
    if bf16 and critic == "none":  # TalkerStep casts the critic pass only: recorded, yet nothing would change
        raise InputError("--bf16: given with --critic none (it casts the perceptual loss' critic pass only)")
    cls = talker_class(model)
    stages = training_stages(cls)
    if stage_steps is not None:
        stage_steps = list(stage_steps)
        if len(stage_steps) != len(stages) or any(s < 1 for s in stage_steps):
            raise InputError(f"--stage-steps: expected {len(stages)} positive step counts for the stages "
                             f"{', '.join(stages)}, got {stage_steps}")
        if steps is not None and steps != stage_steps[-1]:
            raise InputError("--steps and --stage-steps disagree on the last stage's steps")
        steps = stage_steps[-1]

    last = stages[-1]
    defaults = request_defaults(preset, {  # one source for what an omitted option trains with
        "model": model, "world_size": world_size, "critic": critic, "stop": stop, "eval_every": eval_every,
        "patience": patience, "min_rel_improvement": min_rel_improvement, "smooth": smooth})
    batch_size = defaults["batch_size"] if batch_size is None else int(batch_size)
    if batch_size < 1 or batch_size % world_size:
        raise InputError(f"--batch-size: the global batch of clips must be a positive multiple of the {world_size} "
                         f"process(es), got {batch_size}")

    dev = resolve_device(device)
    if bf16:
        warn_unless_native_bf16(dev, "--bf16")
    corpora = [train] if isinstance(train, (str, os.PathLike)) else list(train)
    # the critic must know the vertex count before the data compute its embeddings
    from p3d.talker_data import open_corpora, style_identities
    from p3d.train.convergence import talker_validation
    from p3d.train.trainer import TrainConfig

    opened = open_corpora(corpora)
    stopping = {name: defaults[name] for name in TrainConfig.STOP_FIELDS}
    validate = talker_validation(opened, style_identities(opened), workers=workers) if stopping["eval_every"] else None
    critic_model = load_critic_for(critic, critic_checkpoint, opened[0].topology.n_vertices, dev)
    perceptual = PerceptualLoss(critic_model, weight=weight) if critic_model is not None else None
    embedder = perceptual
    if perceptual is not None and cache and speech_cache_dir is not None:
        embedder = SpeechEmbeddingCache(perceptual, critic_checkpoint, speech_cache_dir)
    data = TalkerClips(opened, "train", perceptual=embedder, cache_speech=cache, workers=workers,
                       progress=progress)

    seed = defaults["seed"] if seed is None else seed
    torch.manual_seed(seed)  # model initialisation
    config = model_config(model, preset, data, wav2vec2=wav2vec2, teacher_forcing=teacher_forcing)
    net = cls(config).to(dev)
    if recogniser is not None:
        if not hasattr(net, "set_recogniser"):
            raise InputError(f"--recogniser: {model} has no speech recogniser (SelfTalk only)")
        from p3d.models.selftalk import CTCRecogniser

        net.set_recogniser(CTCRecogniser(recogniser).to(dev))
    elif getattr(config, "targets", None) == "asr":
        raise InputError(f"--recogniser: {model} at the {preset} preset reads lips against a frozen CTC speech "
                         f"recogniser; give its local Wav2Vec2ForCTC folder")
    front_end = net.audio_front_end()
    if front_end is not None:  # the audio encoder's fixed part, once per clip (same value as every step)
        data.cache_audio_features(front_end)
    before = []
    for i, stage in enumerate(stages[:-1]):
        rec = recipe(model, preset, stage)
        before.append(StageRun(stage, _train_config(rec, len(data), batch_size, seed,
                                                    steps=stage_steps[i] if stage_steps else None, lr=lr)))
    if len(stages) > 1:
        net.set_stage(last)
    cfg = _train_config(recipe(model, preset, last), len(data), batch_size, seed, steps=steps, lr=lr,
                        checkpoint_every=checkpoint_every)
    cfg = dataclasses.replace(cfg, **stopping)
    params = [p for p in net.parameters() if p.requires_grad]
    extra = {
        "kind": "talker", "model": model, "preset": preset, "critic": critic,
        "critic_checkpoint": None if critic_checkpoint is None else str(Path(critic_checkpoint).resolve()),
        "loss_weight": weight if perceptual is not None else 0.0, "speech_cache": bool(cache),
        "train_data": [str(c.root.resolve()) for c in data.corpora], "corpora": [c.name for c in data.corpora],
        "styles": data.styles, "fps": data.fps, "n_vertices": data.n_vertices, "clips": len(data),
        "stages": list(stages), "stage": last,
        "stage_steps": {s.name: s.cfg.steps for s in before} | {last: cfg.steps},
        "epochs": cfg.steps * batch_size / len(data), "trainable_parameters": sum(p.numel() for p in params),
        "device": str(dev), "model_config": dataclasses.asdict(config),
    }
    if validate is not None:
        extra["validation"] = validate.describe()
    if bf16:  # recorded only when on, so runs from before the option resume unchanged
        extra["bf16"] = True
    log.info("talker %s/%s (critic %s, weight %g): %d clips of %s, %d styles, stages %s, %d trainable parameters",
             model, preset, critic, extra["loss_weight"], len(data), "+".join(extra["corpora"]), len(data.styles),
             extra["stage_steps"], extra["trainable_parameters"])
    return TalkerJob(kind="talker", model=net, params=params, data=data, step_fn=TalkerStep(perceptual, bf16=bf16),
                     cfg=cfg, extra_config=extra, stages_before=before, last_stage=last, validate=validate)


def run_earlier_stages(job: TalkerJob, run_dir: str | os.PathLike[str], progress: bool | None = None) -> None:
    """Train every stage before the job's last one, each in ``RUN_DIR/<stage>`` (resumed exactly if there),
    without the perceptual loss; then switch the model to the last stage."""
    from p3d.train.trainer import train

    from p3d.train.run_folder import read_run_config
    from p3d.train.trainer import init_distributed, resume_plan, run_config

    if not job.stages_before:
        return
    # the whole run's settings first, as train() records them (world_size: the processes, not the batch):
    # a run folder of other settings is refused before any stage trains
    resume_plan(read_run_config(run_dir), run_config(job.cfg, job.extra_config, init_distributed().world_size),
                f"--out {run_dir}")
    model = job.model
    for stage in job.stages_before:
        model.set_stage(stage.name)
        params = [p for p in model.parameters() if p.requires_grad]
        # no perceptual loss in this stage: its config says so (and matches the baseline's, whose stage
        # p3d.experiments.share_earlier_stages copies)
        extra = {**job.extra_config, "stage": stage.name, "loss_weight": 0.0, "critic": "none",
                 "critic_checkpoint": None}
        train(model, job.data, TalkerStep(None), stage.cfg, Path(run_dir) / stage.name, extra_config=extra,
              params=params, progress=progress)
    model.set_stage(job.last_stage)
    job.params = [p for p in model.parameters() if p.requires_grad]


def train_talker(job: TalkerJob, run_dir: str | os.PathLike[str], progress: bool | None = None,
                 stop_after: int | None = None) -> dict[str, Any]:
    """Every stage, then ``RUN_DIR/final.pt`` (single process; the CLI does the same under DDP)."""
    from p3d.train.trainer import train

    run_earlier_stages(job, run_dir, progress)
    return train(job.model, job.data, job.step_fn, job.cfg, run_dir, extra_config=job.extra_config,
                 params=job.params, progress=progress, stop_after=stop_after, validate=job.validate,
                 finalize=job.finalize)  # final.pt written while the run folder's lock is held


def _split_paths(value: Any) -> list[Path]:
    """``--train`` (or its synonym ``--data``, so messages name both): one corpus folder or several, comma-separated;
    an empty item is refused (:func:`p3d.cli.comma_items`)."""
    from p3d.cli import comma_items

    parts = comma_items(str(value), "--train/--data")
    if not parts:
        raise InputError("--train/--data: no corpus folder given")
    return [Path(p) for p in parts]


def _int_list(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise InputError(f"--stage-steps: expected comma-separated integers, got {value!r}") from None


def options_from_args(args: Any, world_size: int = 1) -> dict[str, Any]:
    """:func:`build`'s keyword arguments from ``p3d train talker`` arguments."""
    from p3d.train.convergence import stop_options

    if args.data is None:
        raise InputError("--train: give the training corpus folder(s), e.g. --train data/cpu/synth-voca")
    if args.critic == "none" and args.loss_weight is not None:  # it would be recorded, yet weigh nothing
        raise InputError("--loss-weight: given with --critic none (no perceptual loss to weigh); name the critic "
                         "(ours, syncnet3d, no2d) and its --critic-checkpoint")
    if args.critic == "none" and getattr(args, "bf16", False):  # recorded in config.json, yet nothing runs under it
        raise InputError("--bf16: given with --critic none (it casts the perceptual loss' critic pass only); name "
                         "the critic (ours, syncnet3d, no2d) or leave --bf16 out")
    return dict(critic=args.critic, critic_checkpoint=args.critic_checkpoint, loss_weight=args.loss_weight,
                cache=not args.no_cache, seed=args.seed, steps=args.steps, stage_steps=_int_list(args.stage_steps),
                lr=args.lr, checkpoint_every=args.checkpoint_every, wav2vec2=args.wav2vec2, recogniser=args.recogniser,
                teacher_forcing=True if args.teacher_forcing else None, workers=args.workers, device=args.device,
                world_size=world_size, batch_size=args.batch_size, bf16=bool(getattr(args, "bf16", False)),
                **stop_options(args))


def request_from_args(args: Any) -> dict[str, Any]:
    """The run's request (:func:`p3d.train.request.run_request`); ``world_size`` from the environment (torchrun)."""
    from p3d.train.request import run_request

    options = options_from_args(args, int(os.environ.get("WORLD_SIZE", "1")))
    return run_request("talker", args.preset, _split_paths(args.data), {**options, "model": args.model}, build)


def build_from_args(args: Any) -> TalkerJob:
    """:func:`build` from ``p3d train talker`` arguments; runs the earlier stages (they need ``--out``)."""
    from p3d.train.trainer import init_distributed

    options = options_from_args(args)
    dist = init_distributed()
    if args.threads is not None:
        from p3d.device import set_threads

        set_threads(args.threads)
    job = build(args.model, args.preset, _split_paths(args.data), progress=not args.no_progress,
                **{**options, "world_size": dist.world_size})
    run_earlier_stages(job, args.out, progress=not args.no_progress)
    return job


def add_arguments(parser: Any) -> None:
    """``p3d train talker`` options (``--train`` doubles the common ``--data``; the two exclude each other, as the
    last one given would silently win)."""
    either = parser.add_mutually_exclusive_group()
    for action in parser._actions:  # the common --data becomes optional: --train is the talkers' name for it
        if action.dest == "data":
            action.required = False
            action.help = "same as --train"
            either._group_actions.append(action)
    either.add_argument("--train", dest="data", type=Path, default=None,
                        help="training corpus folder(s), comma-separated (their train split; e.g. "
                             "data/cpu/synth-voca,data/cpu/synth-mead)")
    parser.add_argument("--model", choices=MODEL_NAMES, required=True, help="the baseline")
    parser.add_argument("--critic", choices=CRITICS, default="none",
                        help="perceptual-loss critic (none: the baseline alone)")
    parser.add_argument("--critic-checkpoint", type=Path, default=None,
                        help="the critic's final.pt (p3d train stage2 / finetune / syncnet3d / no2d)")
    parser.add_argument("--loss-weight", type=float, default=None,
                        help="weight of the perceptual loss (default: the official 1e-7, for metres)")
    parser.add_argument("--no-cache", action="store_true",
                        help="embed the speech windows at every step instead of once per clip (Table S8)")
    parser.add_argument("--stage-steps", default=None,
                        help="steps of every training stage, comma-separated (CodeTalker: VQVAE,SPEECH)")
    parser.add_argument("--wav2vec2", type=Path, default=None,
                        help="local wav2vec2 folder for the paper preset (e.g. wav2vec2-base-960h, save_pretrained)")
    parser.add_argument("--recogniser", type=Path, default=None,
                        help="SelfTalk at the paper preset: local Wav2Vec2ForCTC folder (its frozen speech "
                             "recogniser)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: the talkers' small sequential ops run fastest on one "
                             "thread per process; run several processes for several cores)")
    parser.add_argument("--bf16", action="store_true",
                        help="the perceptual loss' critic pass under bfloat16 autocast (CPU with AVX-512/AMX bf16; "
                             "default off: float32)")
    parser.add_argument("--teacher-forcing", action="store_true",
                        help="train on shifted ground truth instead of the model's default "
                             "(FaceFormer: autoregressive)")


def stage_metrics(run_dir: str | os.PathLike[str]) -> Mapping[str, Path]:
    """``{stage: metrics.csv}`` of a run (earlier stages in sub-folders, the last in ``RUN_DIR``)."""
    import json

    run_dir = Path(run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    stages = cfg.get("stages", ["main"])
    return {s: (run_dir / s / "metrics.csv" if s != stages[-1] else run_dir / "metrics.csv") for s in stages}
