"""The common interface of the speech-driven 3D talking-head baselines (issue 5).

FaceFormer (:mod:`p3d.models.faceformer`), CodeTalker (:mod:`p3d.models.codetalker`) and SelfTalk
(:mod:`p3d.models.selftalk`) all map a clip's speech waveform, a neutral template mesh and a
speaking-style index (one-hot over the *training* identities) to a vertex sequence, and all are
trained one clip per step (batch size 1, as the three official repositories). They share:

- :class:`TalkerBatch`: one training/prediction clip (tensors, model frame rate);
- :class:`TalkerOutput`: what a training forward pass returns: the model's own loss, scalar logs
  for ``metrics.csv``, and the predicted **absolute** vertices (template added), with their
  autograd graph, so a perceptual loss (:class:`p3d.losses.PerceptualLoss`, Eq. 6) can be added;
- :class:`Talker`: ``forward(batch) -> TalkerOutput`` (training), ``predict(audio, template,
  style, n_frames) -> (T, V, 3)`` (inference, no graph), plus checkpointing
  (:class:`p3d.models.Checkpointable`).

Audio encoders (:mod:`p3d.models.audio_encoder`) follow :class:`AudioEncoder`:
``encoder(audio (B, S) float32 at 16 kHz, n_frames) -> (B, n_frames, dim)``, i.e. they resample
their own feature rate to the motion frame rate (FaceFormer's linear interpolation of wav2vec2's
50 Hz features).

Units: vertices in the corpus' units (metres for VOCASET / FLAME and the synthetic corpora).
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Protocol

import torch
from torch import nn

from p3d.models import Checkpointable

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
    """

    audio: torch.Tensor
    template: torch.Tensor
    style: int
    vertices: torch.Tensor | None = None
    phonemes: torch.Tensor | None = None
    speech: torch.Tensor | None = None
    stem: str = ""

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
class TalkerOutput:
    """A training forward pass: ``loss`` (scalar, the model's own objective), ``logs`` (floats for
    ``metrics.csv``) and ``vertices`` (T, V, 3) absolute predictions with their graph."""

    loss: torch.Tensor
    logs: dict[str, float]
    vertices: torch.Tensor


class AudioEncoder(Protocol):
    """``(audio (B, S) at 16 kHz, n_frames) -> (B, n_frames, dim)`` features at the motion rate."""

    dim: int

    def __call__(self, audio: torch.Tensor, n_frames: int) -> torch.Tensor: ...


class Talker(nn.Module, Checkpointable, abc.ABC):
    """Base class of the baselines. Subclasses set ``kind``, ``config_class`` and ``config``
    (a frozen dataclass with ``n_vertices``, ``n_styles`` and ``fps``)."""

    config: Any

    @property
    def n_vertices(self) -> int:
        return int(self.config.n_vertices)

    @property
    def n_styles(self) -> int:
        return int(self.config.n_styles)

    @abc.abstractmethod
    def forward(self, batch: TalkerBatch) -> TalkerOutput:
        """Training pass on one clip: the model's loss and its predicted absolute vertices."""

    @abc.abstractmethod
    def predict(self, audio: torch.Tensor, template: torch.Tensor, style: int, n_frames: int) -> torch.Tensor:
        """Inference: (S,) audio, (V, 3) template, a style index -> (n_frames, V, 3) vertices."""


def talker_class(name: str) -> type[Talker]:
    """The :class:`Talker` subclass registered as ``name`` in :data:`MODELS`."""
    import importlib

    from p3d.errors import InputError

    if name not in MODELS:
        raise InputError(f"model: unknown talking-head model {name!r} (choose from {', '.join(MODELS)})")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)
