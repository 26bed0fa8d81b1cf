"""The common interface of the speech-driven 3D talking-head baselines (paper Sec. 5).

FaceFormer (:mod:`p3d.models.faceformer`), CodeTalker (:mod:`p3d.models.codetalker`) and SelfTalk
(:mod:`p3d.models.selftalk`) all map a clip's speech waveform, a neutral template mesh and a
speaking-style index (one-hot over the *training* identities) to a vertex sequence. The three official
repositories train one clip per step (batch size 1); here a step may also take a :class:`ClipBatch` of
several clips. They share:

- :class:`TalkerBatch`: one training/prediction clip (tensors, model frame rate);
- :class:`ClipBatch`: B clips of any lengths for one training step. ``forward(ClipBatch)`` computes every
  clip's loss **exactly as for that clip alone** (padding and masks never leak into a clip's numbers) and
  returns their mean over clips (not a frame-weighted pool: a long clip counts as much as a short one,
  as when B single-clip steps' losses are averaged). A model without its own batched pass falls back to
  one forward per clip (:meth:`Talker.forward_clips`), the same value;
- :class:`TalkerOutput`: what a training forward pass returns: the model's own loss, scalar logs
  for ``metrics.csv``, and the predicted **absolute** vertices (template added), with their
  autograd graph, so a perceptual loss (:class:`p3d.losses.PerceptualLoss`, Eq. 6) can be added;
- :class:`Talker`: ``forward(batch) -> TalkerOutput`` (training), ``predict(audio, template,
  style, n_frames) -> (T, V, 3)`` (inference, no graph) and ``predict_batch`` (B such predictions in one
  padded pass, each as ``predict`` on it alone), plus checkpointing
  (:class:`p3d.models.base.Checkpointable`).

Audio encoders (:mod:`p3d.models.audio_encoder`) follow :class:`AudioEncoder`:
``encoder(audio (B, S) float32 at 16 kHz, n_frames) -> (B, n_frames, dim)``, i.e. they resample
their own feature rate to the motion frame rate (FaceFormer's linear interpolation of wav2vec2's
50 Hz features).

Units: vertices in the corpus' units (metres for VOCASET / FLAME and the synthetic corpora).
"""
from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn

from p3d.errors import InputError
from p3d.models.base import Checkpointable

#: model name -> ``"module:Class"`` (imported lazily by :func:`talker_class`).
MODELS: dict[str, str] = {
    "faceformer": "p3d.models.faceformer:FaceFormer",
    "codetalker": "p3d.models.codetalker:CodeTalker",
    "selftalk": "p3d.models.selftalk:SelfTalk",
}


@dataclasses.dataclass
class TalkerBatch:
    """One clip at the model frame rate.

    Attributes:
        audio: (S,) float32 waveform at 16 kHz, mono, in [-1, 1].
        template: (V, 3) float32 neutral mesh of the speaker.
        style: index of the speaking style (a training identity) in ``[0, n_styles)``.
        vertices: (T, V, 3) float32 ground-truth absolute vertices, or None at prediction time.
        phonemes: (T,) int64 frame phoneme labels (synthetic corpora; SelfTalk's lip-reading
            targets), or None.
        speech: (N, D) cached speech embeddings of the frozen critic for this clip, or (N, 20, 128)
            fbank windows, or None (no perceptual loss).
        stem: the clip's name (logging).
        audio_features: the audio encoder's fixed front-end of ``audio`` computed once (the log-mel
            (n_mels, L) of the ``mel`` encoder, :meth:`p3d.models.audio_encoder.MelEncoder.front_end`), or
            None (computed from ``audio`` at every step; same value).
    """

    audio: torch.Tensor
    template: torch.Tensor
    style: int
    vertices: torch.Tensor | None = None
    phonemes: torch.Tensor | None = None
    speech: torch.Tensor | None = None
    stem: str = ""
    audio_features: torch.Tensor | None = None

    @property
    def n_frames(self) -> int:
        if self.vertices is None:
            raise ValueError("n_frames: this batch has no vertices")
        return int(self.vertices.shape[0])

    def to(self, device: torch.device | str) -> TalkerBatch:
        """The same batch with every tensor on ``device``."""
        moved = {f.name: (v.to(device) if isinstance(v := getattr(self, f.name), torch.Tensor) else v)
                 for f in dataclasses.fields(self)}
        return TalkerBatch(**moved)


@dataclasses.dataclass
class ClipBatch:
    """B training clips for one step (:meth:`p3d.talker_data.TalkerClips.collate` of several indices).

    The clips keep their own lengths; a model's batched pass pads them (:func:`pad_sequences`) and masks
    the padding. Order is the collate's order.
    """

    clips: list[TalkerBatch]

    def __post_init__(self) -> None:
        if not self.clips:
            raise ValueError("ClipBatch: no clips")

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def n_frames(self) -> list[int]:
        return [c.n_frames for c in self.clips]

    @property
    def stem(self) -> str:
        return ",".join(c.stem for c in self.clips)

    @property
    def speech(self) -> list[torch.Tensor | None]:
        return [c.speech for c in self.clips]

    def to(self, device: torch.device | str) -> ClipBatch:
        return ClipBatch([c.to(device) for c in self.clips])


def pad_sequences(seqs: list[torch.Tensor], value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_b, ...) tensors -> ((B, L_max, ...) padded with ``value``, (B,) int64 lengths)."""
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
    out = seqs[0].new_full((len(seqs), int(lengths.max()), *seqs[0].shape[1:]), value)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lengths


def shared_audio(audios: Sequence[torch.Tensor], n_frames: Sequence[int]) -> tuple[list[int], torch.Tensor]:
    """Items that share one audio tensor (the same object) and frame count share its encoding: (the first item of
    each distinct (audio, n_frames), (B,) int64 index of each item's distinct entry in that list)."""
    first: dict[tuple[int, int], int] = {}
    unique: list[int] = []
    inverse = []
    for b, (audio, t) in enumerate(zip(audios, n_frames)):
        key = (id(audio), int(t))
        if key not in first:
            first[key] = len(unique)
            unique.append(b)
        inverse.append(first[key])
    return unique, torch.tensor(inverse, dtype=torch.long)


def length_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """(B,) lengths -> (B, length) bool, True at valid positions ``t < lengths[b]``."""
    return torch.arange(length, device=lengths.device)[None] < lengths[:, None]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-clip mean of padded ``x`` (B, T, ...) over the frames where ``mask`` (B, T) is True and all trailing
    axes: (B,), clip b's value ``x[b, :T_b].mean()`` (a batched pass's per-clip loss terms; the padding frames
    must be finite). A clip with no valid frame gives 0."""
    per_frame = x.flatten(2).sum(2)  # (B, T)
    count = mask.sum(1).clamp(min=1) * x[0, 0].numel()
    return (per_frame * mask).sum(1) / count


@dataclasses.dataclass
class TalkerOutput:
    """A training forward pass: ``loss`` (scalar, the model's own objective), ``logs`` (floats for
    ``metrics.csv``) and ``vertices`` (T, V, 3) absolute predictions with their graph.

    For a :class:`ClipBatch`: ``loss`` is the mean over clips of each clip's loss, ``clip_losses`` the
    (B,) per-clip losses, ``logs`` the mean over clips of each clip's logs (NaN entries ignored),
    ``vertices`` a tuple of the B clips' (T_b, V, 3) predictions.
    """

    loss: torch.Tensor
    logs: dict[str, float]
    vertices: torch.Tensor | tuple[torch.Tensor, ...]
    clip_losses: torch.Tensor | None = None


def mean_over_clips(losses: list[torch.Tensor], logs: list[dict[str, float]],
                    vertices: list[torch.Tensor]) -> TalkerOutput:
    """The :class:`TalkerOutput` of a :class:`ClipBatch` from its clips' losses, logs and vertices."""
    import math

    clip_losses = torch.stack(losses)
    mean_logs: dict[str, float] = {}
    for key in logs[0]:
        values = [float(lg[key]) for lg in logs if not math.isnan(float(lg[key]))]
        mean_logs[key] = sum(values) / len(values) if values else float("nan")
    return TalkerOutput(loss=clip_losses.mean(), logs=mean_logs, vertices=tuple(vertices), clip_losses=clip_losses)


class AudioEncoder(Protocol):
    """``(audio (B, S) at 16 kHz, n_frames) -> (B, n_frames, dim)`` features at the motion rate."""

    dim: int

    def __call__(self, audio: torch.Tensor, n_frames: int) -> torch.Tensor: ...


class Talker(nn.Module, Checkpointable, abc.ABC):
    """Base class of the baselines. Subclasses set ``kind``, ``config_class`` and ``config``
    (a frozen dataclass with ``n_vertices``, ``n_styles`` and ``fps``)."""

    config: Any
    #: the fewest frames a training clip may have (CodeTalker's teacher forcing needs 2).
    min_training_frames: int = 1

    @property
    def n_vertices(self) -> int:
        return int(self.config.n_vertices)

    def checkpoint(self) -> dict[str, Any]:
        """:meth:`p3d.models.base.Checkpointable.checkpoint`, with the architecture of a wav2vec2 audio encoder read
        from a local folder (``audio.wav2vec2_path``) recorded as ``audio.wav2vec2_config`` (its
        ``Wav2Vec2Config`` fields), so the checkpoint, whose state dict holds the weights, loads on a machine
        without that folder (:class:`p3d.models.audio_encoder.Wav2Vec2Encoder` builds from the fields)."""
        from p3d.models.audio_encoder import Wav2Vec2Encoder

        ckpt = super().checkpoint()
        audio = ckpt["config"].get("audio")
        encoders = [m for m in self.modules() if isinstance(m, Wav2Vec2Encoder)]
        if isinstance(audio, dict) and audio.get("wav2vec2_config") is None and len(encoders) == 1:
            audio["wav2vec2_config"] = encoders[0].model.config.to_dict()
        return ckpt

    @property
    def n_styles(self) -> int:
        return int(self.config.n_styles)

    # -- input checks (one set for every talker) ---------------------------------------------------
    def check_style(self, style: int) -> None:
        """``style`` must index a training identity: a whole number in ``[0, n_styles)`` (``int()`` would map
        2.7 to identity 2)."""
        try:
            whole = not isinstance(style, bool) and int(style) == style
        except (TypeError, ValueError, RuntimeError):  # None, a string, a tensor of several values
            whole = False
        if not whole:
            raise InputError(f"style: expected the index of a training identity (a whole number), got {style!r}")
        if not 0 <= int(style) < self.n_styles:
            raise InputError(f"style: index {style} outside [0, {self.n_styles}) (the training identities)")

    def check_inputs(self, audio: torch.Tensor, template: torch.Tensor, style: int) -> None:
        """A clip's inputs: a non-empty finite (S,) waveform, a finite (V, 3) template of this model's
        vertex count, a training-identity index."""
        if not isinstance(audio, torch.Tensor) or audio.ndim != 1 or audio.numel() == 0:
            got = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
            raise InputError(f"audio: expected a non-empty (S,) waveform at 16 kHz, got {got}")
        if not torch.isfinite(audio).all():
            raise InputError("audio: contains NaN or infinite samples")
        v = self.n_vertices
        if not isinstance(template, torch.Tensor) or tuple(template.shape) != (v, 3):
            got = tuple(template.shape) if isinstance(template, torch.Tensor) else type(template).__name__
            raise InputError(f"template: expected ({v}, 3) for this {v}-vertex {type(self).__name__}, got {got}")
        if not torch.isfinite(template).all():
            raise InputError("template: contains NaN or infinite values")
        self.check_style(style)

    @staticmethod
    def check_n_frames(n_frames: int) -> int:
        """A prediction's frame count as an int (a positive integer)."""
        if int(n_frames) != n_frames or n_frames < 1:
            raise InputError(f"n_frames: expected a positive integer frame count, got {n_frames}")
        return int(n_frames)

    def check_clip(self, batch: TalkerBatch) -> torch.Tensor:
        """A training clip (:meth:`check_inputs` and its ground truth); returns its (T, V, 3) vertices
        (finite, at least :attr:`min_training_frames` frames)."""
        self.check_inputs(batch.audio, batch.template, batch.style)
        name, v = batch.stem or "batch", self.n_vertices
        vertices = batch.vertices
        if vertices is None:
            raise InputError(f"{name}: {type(self).__name__} training needs ground-truth vertices")
        if vertices.ndim != 3 or tuple(vertices.shape[1:]) != (v, 3):
            raise InputError(f"{name}: vertices {tuple(vertices.shape)}, expected (T, {v}, 3) for this "
                             f"{v}-vertex {type(self).__name__}")
        if vertices.shape[0] < self.min_training_frames:
            raise InputError(f"{name}: {vertices.shape[0]} frame(s); {type(self).__name__} training needs >= "
                             f"{self.min_training_frames}")
        if not torch.isfinite(vertices).all():
            raise InputError(f"{name}: vertices contain NaN or infinite values")
        return vertices

    @abc.abstractmethod
    def forward(self, batch: TalkerBatch | ClipBatch) -> TalkerOutput:
        """Training pass on one clip (or a :class:`ClipBatch`, :meth:`forward_clips`): the model's loss and its
        predicted absolute vertices."""

    def forward_clips(self, batch: ClipBatch) -> TalkerOutput:
        """A :class:`ClipBatch`: each clip's own forward pass, then the mean over clips (subclasses batch it)."""
        outs = [self.forward(clip) for clip in batch.clips]
        return mean_over_clips([o.loss for o in outs], [o.logs for o in outs], [o.vertices for o in outs])

    def audio_front_end(self) -> Any:
        """A function ``(S,) audio -> features`` of the audio encoder's fixed (parameter-free) front-end, to be
        computed once per clip (:attr:`TalkerBatch.audio_features`), or None when there is none to cache."""
        encoder = getattr(self, "audio_encoder", None)
        return getattr(encoder, "front_end", None)

    @abc.abstractmethod
    def predict(self, audio: torch.Tensor, template: torch.Tensor, style: int, n_frames: int) -> torch.Tensor:
        """Inference: (S,) audio, (V, 3) template, a style index -> (n_frames, V, 3) vertices."""

    def check_prediction_batch(self, audios: Sequence[torch.Tensor], templates: Sequence[torch.Tensor],
                               styles: Sequence[int], n_frames: Sequence[int]) -> list[int]:
        """The inputs of :meth:`predict_batch`: four lists of one length >= 1, every item as :meth:`predict`'s
        (:meth:`check_inputs`, :meth:`check_n_frames`); returns the frame counts as ints."""
        sizes = {len(audios), len(templates), len(styles), len(n_frames)}
        if len(sizes) != 1 or not audios:
            raise InputError(f"predict_batch: audios, templates, styles and n_frames must be non-empty lists of one "
                             f"length, got {len(audios)}, {len(templates)}, {len(styles)}, {len(n_frames)}")
        for audio, template, style in zip(audios, templates, styles):
            self.check_inputs(audio, template, style)
        return [self.check_n_frames(t) for t in n_frames]

    def predict_batch(self, audios: Sequence[torch.Tensor], templates: Sequence[torch.Tensor],
                      styles: Sequence[int], n_frames: Sequence[int]) -> list[torch.Tensor]:
        """Inference on B items at once: item b's (n_frames[b], V, 3) vertices, as
        ``predict(audios[b], templates[b], styles[b], n_frames[b])`` (float32 rounding aside).

        This default predicts item by item (any talker); FaceFormer, CodeTalker and SelfTalk run their batched
        passes (padded to the longest item, a clip's frames never seeing its batch mates). Items that share one
        audio tensor (the same object: one clip under several styles) may share its audio encoding.
        """
        n_frames = self.check_prediction_batch(audios, templates, styles, n_frames)
        return [self.predict(a, tpl, s, t) for a, tpl, s, t in zip(audios, templates, styles, n_frames)]


def talker_class(name: str) -> type[Talker]:
    """The :class:`Talker` subclass registered as ``name`` in :data:`MODELS`."""
    import importlib

    if name not in MODELS:
        raise InputError(f"model: unknown talking-head model {name!r} (choose from {', '.join(MODELS)})")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)
