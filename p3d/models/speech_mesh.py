"""Stage 2: the speech-mesh synchronized representation, a CLIP-style dual encoder (paper Sec. 4).

``SpeechMeshModel(speech_encoder, mesh_encoder)`` embeds a 0.2 s-equivalent speech window
(fbank (B, 20, 128)) and the paired 5-frame mesh window ((B, 5, V*3)) into one unit sphere:

- ``encode_speech(fbank) -> (B, H)`` and ``encode_mesh(vertices) -> (B, H)``: mean-pooled,
  L2-normalised final-layer features (the official ``forward_features``);
- ``forward(fbank, vertices) -> (logits_per_speech, logits_per_mesh)``: cosine similarities / tau,
  like CLIP's ``model.py``;
- ``loss(fbank, vertices)``: symmetric InfoNCE (Eq. 5), tau = 0.07; with ``layers`` the sum over
  those encoder layers (Eq. 5's set L; the official loss uses the final layer only).

Two variants (Table 3):

- :meth:`SpeechMeshModel.ours`: the speech encoder comes from a stage-1 model and is **frozen**:
  its parameters have ``requires_grad=False`` and it stays in eval mode even when the model is put
  in train mode; only the mesh encoder E_m learns (the paper's method).
- :meth:`SpeechMeshModel.no2d`: "Ours w/o 2D prior": both encoders with the stage-2 architecture,
  trained from scratch.

Every critic (this one, :class:`p3d.models.syncnet3d.SyncNet3D`) subclasses :class:`DualEncoder`,
so the perceptual loss and PLRS work with any of them.
"""
from __future__ import annotations

import abc

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from p3d.errors import InputError
from p3d.models import Checkpointable, PresetConfig
from p3d.losses.infonce import TEMPERATURE, info_nce, multilayer_info_nce
from p3d.models.mesh_encoder import MeshEncoder, MeshEncoderConfig
from p3d.models.speech_encoder import SpeechEncoder, SpeechEncoderConfig


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

    def forward(self, fbank: torch.Tensor, vertices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits_per_speech (B, B), logits_per_mesh (B, B)) = cosine similarities / tau."""
        s, m = self.encode_speech(fbank), self.encode_mesh(vertices)
        logits_per_speech = s @ m.T / self.temperature
        return logits_per_speech, logits_per_speech.T

    def loss(self, fbank: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE of the B paired windows (Eq. 5 with the final layer)."""
        return info_nce(self.encode_speech(fbank), self.encode_mesh(vertices), self.temperature)


@dataclasses.dataclass(frozen=True)
class SpeechMeshConfig(PresetConfig):
    """Both encoders' configs, the temperature, and whether the speech encoder is frozen."""

    speech: SpeechEncoderConfig = SpeechEncoderConfig()
    mesh: MeshEncoderConfig = MeshEncoderConfig()
    temperature: float = TEMPERATURE
    freeze_speech: bool = True
    variant: str = "ours"  # "ours" (stage-1 speech encoder, frozen) or "no2d" (from scratch)

    @staticmethod
    def presets() -> dict[str, SpeechMeshConfig]:
        return {name: SpeechMeshConfig(SpeechEncoderConfig.from_preset(name), MeshEncoderConfig.from_preset(name))
                for name in ("paper", "cpu", "smoke")}

    @classmethod
    def from_preset(cls, name: str, n_vertices: int | None = None, **overrides: object) -> SpeechMeshConfig:
        """A preset (:class:`p3d.models.PresetConfig`), with the mesh encoder sized for ``n_vertices``."""
        config = super().from_preset(name, **overrides)
        if n_vertices is not None:
            config = dataclasses.replace(config, mesh=dataclasses.replace(config.mesh, n_vertices=n_vertices))
        return config

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeechMeshConfig:
        d = dict(d)
        return cls(speech=SpeechEncoderConfig(**d.pop("speech")), mesh=MeshEncoderConfig(**d.pop("mesh")), **d)


class SpeechMeshModel(Checkpointable, DualEncoder):
    """Stage-2 dual encoder: E_s (from stage 1, frozen, or from scratch) and E_m."""

    kind = "speech_mesh"
    config_class = SpeechMeshConfig

    @classmethod
    def _from_config(cls, config: SpeechMeshConfig) -> SpeechMeshModel:
        return cls.from_config(config)

    def __init__(self, speech_encoder: SpeechEncoder, mesh_encoder: MeshEncoder, temperature: float = TEMPERATURE,
                 freeze_speech: bool = True, variant: str = "ours") -> None:
        super().__init__()
        if speech_encoder.dim != mesh_encoder.dim:
            raise InputError(f"speech encoder width {speech_encoder.dim} != mesh encoder width {mesh_encoder.dim}")
        self.speech_encoder = speech_encoder
        self.mesh_encoder = mesh_encoder
        self.temperature = temperature
        self.variant = variant
        self.freeze_speech = freeze_speech
        if freeze_speech:
            self.speech_encoder.requires_grad_(False)
            self.speech_encoder.eval()

    @property
    def config(self) -> SpeechMeshConfig:
        return SpeechMeshConfig(self.speech_encoder.config, self.mesh_encoder.config, self.temperature,
                                self.freeze_speech, self.variant)

    @property
    def n_vertices(self) -> int:
        return self.mesh_encoder.config.n_vertices

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def ours(cls, stage1: Any, mesh_config: MeshEncoderConfig, temperature: float = TEMPERATURE) -> SpeechMeshModel:
        """The paper's model: the speech encoder of a stage-1 model (a ``Stage1Model``, a stage-1
        checkpoint path, or a ``SpeechEncoder``), copied and frozen, plus a new mesh encoder."""
        import copy

        from p3d.models.stage1 import Stage1Model

        if isinstance(stage1, (str, os.PathLike)):
            stage1 = Stage1Model.load(stage1)
        speech = stage1.speech_encoder if isinstance(stage1, Stage1Model) else stage1
        if not isinstance(speech, SpeechEncoder):
            raise InputError(f"stage1: expected a Stage1Model, its checkpoint path or a SpeechEncoder, "
                             f"got {type(stage1).__name__}")
        if mesh_config.dim != speech.dim:
            raise InputError(f"mesh_config.dim {mesh_config.dim} must equal the stage-1 width {speech.dim}")
        return cls(copy.deepcopy(speech), MeshEncoder(mesh_config), temperature, freeze_speech=True, variant="ours")

    @classmethod
    def no2d(cls, config: SpeechMeshConfig) -> SpeechMeshModel:
        """"Ours w/o 2D prior": both encoders from scratch, both trainable."""
        return cls(SpeechEncoder(config.speech), MeshEncoder(config.mesh), config.temperature,
                   freeze_speech=False, variant="no2d")

    @classmethod
    def from_config(cls, config: SpeechMeshConfig) -> SpeechMeshModel:
        return cls(SpeechEncoder(config.speech), MeshEncoder(config.mesh), config.temperature,
                   config.freeze_speech, config.variant)

    # -- modes --------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> SpeechMeshModel:
        """As ``nn.Module.train``, but a frozen speech encoder always stays in eval mode."""
        super().train(mode)
        if self.freeze_speech:
            self.speech_encoder.eval()
        return self

    # -- encoders -----------------------------------------------------------------------------
    def encode_speech(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, T_a, 128) normalised fbank -> (B, H) unit vectors (no graph when frozen)."""
        if self.freeze_speech:
            with torch.no_grad():
                return self.speech_encoder.embed(fbank)
        return self.speech_encoder.embed(fbank)

    def encode_mesh(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, 5, V*3) or (B, 5, V, 3) absolute vertex positions -> (B, H) unit vectors."""
        return self.mesh_encoder.embed(vertices)

    def loss(self, fbank: torch.Tensor, vertices: torch.Tensor, layers: Sequence[int] | None = None) -> torch.Tensor:
        """Eq. 5: symmetric InfoNCE, final layer (default, as the official code) or summed over ``layers``."""
        if layers is None:
            return super().loss(fbank, vertices)
        if self.speech_encoder.config.depth != self.mesh_encoder.config.depth:
            raise InputError("layers: per-layer InfoNCE needs encoders of equal depth")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_speech):
            speech = self.speech_encoder.embed_layers(fbank, layers)
        return multilayer_info_nce(speech, self.mesh_encoder.embed_layers(vertices, layers), self.temperature)

def load_critic(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> DualEncoder:
    """Load any speech-mesh critic checkpoint (stage 2 "ours"/"no2d", or 3D SyncNet), in eval mode.

    This is what PLRS (``--plrs-checkpoint``) and the perceptual loss take. A stage-1 checkpoint is
    refused: it has no mesh encoder.
    """
    from p3d.models import load_model

    model = load_model(path, map_location)
    if not isinstance(model, DualEncoder):
        raise InputError(f"{path}: holds a {getattr(model, 'kind', type(model).__name__)!r} model, "
                         f"not a speech-mesh critic (speech_mesh or syncnet3d)")
    return model
