"""3D SyncNet: the CNN critic of the paper's Table 3 ablation ("inspired by SyncNet", Sec. F).

The paper states only: a mesh encoder of **3 dilated convolution layers**, a speech encoder of
**6 convolution layers + 2 linear layers**, trained with InfoNCE (batch 80, LRS3-3D, 20 epochs).
Everything else here is a documented choice:

- mesh encoder: the 5-frame window as a 1-D sequence of 5 steps with V*3 channels;
  ``Conv1d(k=3, dilation d) -> BatchNorm -> ReLU`` for d = 1, 2, 4 ("same" padding, so the
  receptive field covers the whole window), mean-pool over time, ``Linear(C, D)``;
- speech encoder: the (1, 20, 128) fbank image through 6 ``Conv2d(3x3) -> BatchNorm -> ReLU``
  layers (SyncNet's audio-stream widths 64-128-256-256-512-512 at the paper preset; strides halve
  time twice and frequency five times), global average pool, ``Linear -> ReLU -> Linear(D)``;
- both outputs L2-normalised; tau = 0.07 as the other critics.

Same interface as :class:`p3d.models.speech_mesh.SpeechMeshModel` (``encode_speech``,
``encode_mesh``, ``forward -> logits``, ``loss``), so the perceptual loss and PLRS accept it.
"""
from __future__ import annotations

import dataclasses
import os

import torch
import torch.nn.functional as F
from torch import nn

from p3d.errors import InputError
from p3d.models.base import Checkpointable, PresetConfig
from p3d.losses.infonce import TEMPERATURE
from p3d.models.dual_encoder import DualEncoder
from p3d.models.transformer import real_input

#: Strides (time, frequency) of the 6 speech convolutions.
SPEECH_STRIDES: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (2, 2), (1, 2), (2, 2), (1, 2))


@dataclasses.dataclass(frozen=True)
class SyncNet3DConfig(PresetConfig):
    """3D SyncNet hyper-parameters."""

    n_vertices: int = 5023
    n_frames: int = 5
    embed_dim: int = 512
    mesh_channels: int = 512
    dilations: tuple[int, ...] = (1, 2, 4)
    speech_channels: tuple[int, ...] = (64, 128, 256, 256, 512, 512)
    hidden: int = 512
    n_mels: int = 128
    temperature: float = TEMPERATURE

    def __post_init__(self) -> None:
        if len(self.dilations) != 3 or len(self.speech_channels) != 6:
            raise InputError("SyncNet3D: the paper's critic has 3 dilated mesh convs and 6 speech convs")

    @staticmethod
    def presets() -> dict[str, SyncNet3DConfig]:
        return {
            "paper": SyncNet3DConfig(),
            "cpu": SyncNet3DConfig(embed_dim=128, mesh_channels=128, speech_channels=(16, 32, 64, 64, 128, 128),
                                   hidden=128),
            "smoke": SyncNet3DConfig(embed_dim=32, mesh_channels=32, speech_channels=(8, 8, 16, 16, 32, 32),
                                     hidden=32),
        }


def _conv1d(c_in: int, c_out: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, 3, padding=dilation, dilation=dilation),
                         nn.BatchNorm1d(c_out), nn.ReLU(inplace=True))


def _conv2d(c_in: int, c_out: int, stride: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SyncNet3D(Checkpointable, DualEncoder):
    """CNN dual encoder: fbank (B, T_a, 128) and vertices (B, 5, V*3) -> unit vectors (B, D)."""

    kind = "syncnet3d"
    config_class = SyncNet3DConfig

    def __init__(self, config: SyncNet3DConfig = SyncNet3DConfig()) -> None:
        super().__init__()
        c = config
        self.config = config
        self.temperature = c.temperature
        widths = [3 * c.n_vertices, c.mesh_channels, c.mesh_channels, c.mesh_channels]
        self.mesh_convs = nn.Sequential(*(_conv1d(widths[i], widths[i + 1], d) for i, d in enumerate(c.dilations)))
        self.mesh_head = nn.Linear(c.mesh_channels, c.embed_dim)
        chans = (1, *c.speech_channels)
        self.speech_convs = nn.Sequential(*(_conv2d(chans[i], chans[i + 1], s) for i, s in enumerate(SPEECH_STRIDES)))
        self.speech_head = nn.Sequential(nn.Linear(c.speech_channels[-1], c.hidden), nn.ReLU(inplace=True),
                                         nn.Linear(c.hidden, c.embed_dim))

    @property
    def n_vertices(self) -> int:
        return self.config.n_vertices

    def encode_speech(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, T_a, n_mels) normalised fbank -> (B, D) unit vectors. Another float precision or an integer dtype
        is cast to the weights' dtype (:func:`~p3d.models.transformer.real_input`); T_a = 0 is an InputError."""
        fbank = real_input(fbank, self.speech_convs[0][0].weight.dtype, "fbank")
        if fbank.ndim == 4 and fbank.shape[1] == 1:
            fbank = fbank[:, 0]
        if fbank.ndim != 3 or fbank.shape[-1] != self.config.n_mels:
            raise InputError(f"fbank: expected shape (B, T_a, {self.config.n_mels}), got {tuple(fbank.shape)}")
        if fbank.shape[1] == 0:
            raise InputError(f"fbank: no frames (shape {tuple(fbank.shape)}); a speech window needs at least one")
        x = self.speech_convs(fbank[:, None]).mean(dim=(2, 3))
        return F.normalize(self.speech_head(x), dim=-1)

    def encode_mesh(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, 5, V*3) or (B, 5, V, 3) absolute vertex positions -> (B, D) unit vectors (another float precision
        or an integer dtype cast to the weights' dtype, :func:`~p3d.models.transformer.real_input`)."""
        vertices = real_input(vertices, self.mesh_convs[0][0].weight.dtype, "vertices")
        c = self.config
        if vertices.ndim == 4 and vertices.shape[-1] == 3:
            vertices = vertices.flatten(2)
        if vertices.ndim != 3 or vertices.shape[1:] != (c.n_frames, 3 * c.n_vertices):
            raise InputError(f"vertices: expected (B, {c.n_frames}, {3 * c.n_vertices}) for this {c.n_vertices}-vertex "
                             f"critic, got {tuple(vertices.shape)}")
        x = self.mesh_convs(vertices.transpose(1, 2)).mean(dim=2)  # (B, C, 5) -> (B, C)
        return F.normalize(self.mesh_head(x), dim=-1)
