"""The interface of every speech-mesh critic: :class:`DualEncoder`.

Stage 2's :class:`~p3d.models.speech_mesh.SpeechMeshModel` and Table 3's
:class:`~p3d.models.syncnet3d.SyncNet3D` both embed a speech window and the paired mesh window into one
unit sphere and are trained with InfoNCE (paper Eq. 5); the perceptual loss and PLRS take any of them.
The base class sits below both critics' modules, so neither imports the other's.
"""
from __future__ import annotations

import abc

import torch
from torch import nn

from p3d.losses.infonce import TEMPERATURE, info_nce


class DualEncoder(nn.Module, abc.ABC):
    """A speech encoder and a mesh encoder into one embedding space, trained with InfoNCE.

    Subclasses implement ``encode_speech(fbank (B, T_a, 128)) -> (B, D)`` and
    ``encode_mesh(vertices (B, 5, V*3) or (B, 5, V, 3)) -> (B, D)``, both L2-normalised, and set
    ``temperature``.
    """

    kind = "dual"
    temperature: float = TEMPERATURE

    @abc.abstractmethod
    def encode_speech(self, fbank: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def encode_mesh(self, vertices: torch.Tensor) -> torch.Tensor: ...

    @property
    @abc.abstractmethod
    def n_vertices(self) -> int:
        """Vertices per frame the mesh encoder expects."""

    def forward(self, fbank: torch.Tensor, vertices: torch.Tensor, *, speech_embedded: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits_per_speech (B, B), logits_per_mesh (B, B)) = cosine similarities / tau.

        With ``speech_embedded`` ``fbank`` is already ``encode_speech``'s output (B, D): a frozen speech
        side computed once and cached (:mod:`p3d.train.critics`); no gradient reaches the speech encoder.
        """
        s = fbank if speech_embedded else self.encode_speech(fbank)
        m = self.encode_mesh(vertices)
        logits_per_speech = s @ m.T / self.temperature
        return logits_per_speech, logits_per_speech.T

    def loss(self, fbank: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE of the B paired windows (Eq. 5 with the final layer)."""
        return info_nce(self.encode_speech(fbank), self.encode_mesh(vertices), self.temperature)


__all__ = ["DualEncoder"]
