"""Stage 1: the audio-visual masked autoencoder with contrastive learning (paper Sec. 4, Table S1).

Speech (a normalised fbank, (B, T_a, 128)) and 2D lip video ((B, C, 5, H_v, W_v)) are patchified,
30 % of each modality's tokens are masked at random (exactly ``round(0.3 N)`` per sample), and:

1. the unmasked tokens go through the speech encoder E_s and the video encoder E_v
   (``[MHSA -> FFN] x N_e -> LN``), giving Z_s, Z_v and every layer's tokens;
2. InfoNCE between the mean-pooled, L2-normalised speech and video features of the selected
   layers L (Eqs. 1-2, symmetric, tau = 0.07);
3. a 2-layer fusion encoder E_sv: each branch ``[MHSA -> MHCA(other modality) -> FFN]``, both
   branches reading the previous layer's outputs -> F_s, F_v;
4. per modality, a decoder: ``Linear(H, D_dec)`` + positions of the visible tokens, a trainable
   mask token + positions at the masked ones, ``[MHSA -> FFN]``, then N_d x
   ``[MHSA -> MHCA(Z) -> FFN]`` attending to that modality's encoder output Z, LN, a Linear to the
   patch values; only the masked tokens' predictions are kept (Slice[N_unmask:]);
5. L = L_MAE + lambda L_InfoNCE (Eqs. 3-4), L_MAE the mean squared error over the masked patches of
   each modality, summed over the two modalities.

Choices where the paper is silent (NOT FOUND in the digest) are config fields, documented:
``lambda_infonce`` (default 0.01, CAV-MAE's contrastive weight; CAV-MAE is the paper's ref. [15]),
``infonce_layers`` (default: the middle and the last layer), raw (unnormalised) patch targets, and
a 384-wide video decoder (Table S1 prints H for it, inconsistent with its own Linear(H, 384)).
Eq. 3 divides by |S_mask|; here the squared error is averaged over masked *elements*, which only
rescales each modality's term by its patch size. The paper's MHSA -> MHCA order is kept (the
official stage-2 code's cross-attention block puts MHCA first).

``speech_encoder`` is a :class:`p3d.models.speech_encoder.SpeechEncoder`, which stage 2 takes over
frozen (:meth:`p3d.models.speech_mesh.SpeechMeshModel.ours`).
"""
from __future__ import annotations

import dataclasses
import os

import torch
import torch.nn.functional as F
from torch import nn

from p3d.errors import InputError
from p3d.losses.infonce import TEMPERATURE, multilayer_info_nce
from p3d.models.speech_encoder import SpeechEncoder, SpeechEncoderConfig
from p3d.models.base import Checkpointable, PresetConfig
from p3d.models.transformer import (
    LN_EPS, Block, CrossBlock, Encoder, gather_tokens, init_weights, n_masked, pooled, random_masking, sinusoid_table,
)


@dataclasses.dataclass(frozen=True)
class Stage1Config(PresetConfig):
    """Stage-1 hyper-parameters (one width H for both encoders and the fusion encoder)."""

    dim: int = 512
    depth: int = 10                  # N_e, both encoders
    heads: int = 8
    mlp_ratio: float = 4.0
    n_mels: int = 128
    speech_patch: int = 16
    speech_frames: int = 64          # T_a of the training spectrograms (H_s in the paper)
    video_channels: int = 3          # C_v (3 = RGB, 1 = grayscale)
    video_frames: int = 5            # T
    video_size: int = 160            # H_v = W_v
    video_patch: int = 16
    fusion_depth: int = 2
    fusion_heads: int = 8
    decoder_dim: int = 384
    decoder_depth: int = 3           # N_d cross-attention blocks (after one self-attention block)
    decoder_heads: int = 8
    decoder_cross_heads: int = 6
    mask_ratio: float = 0.3
    lambda_infonce: float = 0.01
    infonce_layers: tuple[int, ...] = (4, 9)
    temperature: float = TEMPERATURE

    def __post_init__(self) -> None:
        bad = [i for i in self.infonce_layers if not -self.depth <= i < self.depth]
        if bad or not self.infonce_layers:
            raise InputError(f"infonce_layers: {self.infonce_layers} must be non-empty layer indices "
                             f"< depth {self.depth}")
        if self.video_size % self.video_patch or self.n_mels % self.speech_patch:
            raise InputError("video_size / n_mels must be multiples of their patch sizes")
        # Eq. 3 averages over the masked tokens of each modality: with none masked it is 0/0 (a NaN loss)
        ratio = self.mask_ratio
        if not (isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and 0.0 < ratio < 1.0) \
                or min(n_masked(self.speech_tokens, ratio), n_masked(self.video_tokens, ratio)) < 1:
            raise InputError(f"mask_ratio: {ratio!r} must be in (0, 1) and mask at least one of the "
                             f"{self.speech_tokens} speech and one of the {self.video_tokens} video tokens")

    @property
    def speech_tokens(self) -> int:
        return self.speech_frames * (self.n_mels // self.speech_patch)

    @property
    def video_tokens(self) -> int:
        return self.video_frames * (self.video_size // self.video_patch) ** 2

    def speech_config(self) -> SpeechEncoderConfig:
        return SpeechEncoderConfig(dim=self.dim, depth=self.depth, heads=self.heads, mlp_ratio=self.mlp_ratio,
                                   n_mels=self.n_mels, patch_width=self.speech_patch,
                                   max_frames=max(64, self.speech_frames))

    @staticmethod
    def presets() -> dict[str, Stage1Config]:
        return {
            # Table S1 / C.2: H = 512, 10 layers, 64 x 128 spectrogram, 5 x 160 x 160 RGB video.
            "paper": Stage1Config(),
            # Same structure, small: 20-frame (0.2 s) fbank windows, 5 x 48 x 48 grayscale video.
            "cpu": Stage1Config(dim=128, depth=4, heads=4, speech_frames=20, video_channels=1, video_size=48,
                                fusion_heads=4, decoder_dim=64, decoder_depth=2, decoder_heads=4,
                                decoder_cross_heads=4, lambda_infonce=0.1, infonce_layers=(1, 3)),
            "smoke": Stage1Config(dim=32, depth=2, heads=2, speech_frames=20, video_channels=1, video_size=32,
                                  fusion_depth=1, fusion_heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2,
                                  decoder_cross_heads=2, lambda_infonce=0.1, infonce_layers=(0, 1)),
        }


class VideoEncoder(nn.Module):
    """E_v: video (B, C, T, H_v, W_v) -> tokens. Conv3D (1, 16, 16) tokenizer, sinusoidal positions
    over the M = T (H_v/16) (W_v/16) tokens (order t, h, w), ``[MHSA -> FFN] x N_e -> LN``."""

    def __init__(self, config: Stage1Config) -> None:
        super().__init__()
        c = config
        self.config = config
        self.patch_embed = nn.Conv3d(c.video_channels, c.dim, kernel_size=(1, c.video_patch, c.video_patch),
                                     stride=(1, c.video_patch, c.video_patch))
        self.register_buffer("pos_embed", sinusoid_table(c.video_tokens, c.dim), persistent=False)
        self.encoder = Encoder(c.dim, c.depth, c.heads, c.mlp_ratio)
        self.apply(init_weights)

    def tokenize(self, video: torch.Tensor) -> torch.Tensor:
        c = self.config
        expected = (c.video_channels, c.video_frames, c.video_size, c.video_size)
        if video.ndim != 5 or tuple(video.shape[1:]) != expected:
            raise InputError(f"video: expected shape (B, {', '.join(map(str, expected))}), got {tuple(video.shape)}")
        return self.patch_embed(video).flatten(2).transpose(1, 2) + self.pos_embed

    def forward(self, video: torch.Tensor, keep: torch.Tensor | None = None, return_layers: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.tokenize(video)
        if keep is not None:
            x = gather_tokens(x, keep)
        return self.encoder(x, return_layers=return_layers)

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """Mean-pooled, L2-normalised final-layer embedding (B, H)."""
        return pooled(self(video))


class FusionEncoder(nn.Module):
    """E_sv: ``depth`` layers; speech branch ``[MHSA -> MHCA(Z_v) -> FFN]``, video branch
    ``[MHSA -> MHCA(Z_s) -> FFN]``, both reading the previous layer's outputs."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.speech = nn.ModuleList(CrossBlock(dim, heads, dim, heads, mlp_ratio) for _ in range(depth))
        self.video = nn.ModuleList(CrossBlock(dim, heads, dim, heads, mlp_ratio) for _ in range(depth))

    def forward(self, zs: torch.Tensor, zv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for speech_block, video_block in zip(self.speech, self.video):
            zs, zv = speech_block(zs, zv), video_block(zv, zs)
        return zs, zv


class MAEDecoder(nn.Module):
    """D_s / D_v: (visible fused tokens, their indices, masked indices, encoder tokens Z) -> predicted
    patches of the masked tokens (B, N_mask, patch_dim)."""

    def __init__(self, enc_dim: int, dim: int, n_tokens: int, patch_dim: int, depth: int, heads: int,
                 cross_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sinusoid_table(n_tokens, dim), persistent=False)
        self.self_block = Block(dim, heads, mlp_ratio)
        self.blocks = nn.ModuleList(CrossBlock(dim, heads, enc_dim, cross_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.head = nn.Linear(dim, patch_dim)
        self.apply(init_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, fused: torch.Tensor, keep: torch.Tensor, mask: torch.Tensor,
                context: torch.Tensor) -> torch.Tensor:
        visible = self.embed(fused) + self.pos_embed[keep]
        masked = self.mask_token + self.pos_embed[mask]
        x = self.self_block(torch.cat([visible, masked], dim=1))
        for block in self.blocks:
            x = block(x, context)
        return self.head(self.norm(x))[:, keep.shape[1]:]


def speech_patches(fbank: torch.Tensor, patch: int = 16) -> torch.Tensor:
    """(B, T_a, n_mels) -> (B, T_a * n_mels / patch, patch): the speech tokens' target values."""
    b, t, f = fbank.shape
    return fbank.reshape(b, t * (f // patch), patch)


def video_patches(video: torch.Tensor, patch: int = 16) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, T (H/p) (W/p), C p p): the video tokens' target values (order t, h, w)."""
    b, c, t, h, w = video.shape
    x = video.reshape(b, c, t, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 3, 5, 1, 4, 6).reshape(b, t * (h // patch) * (w // patch), c * patch * patch)


@dataclasses.dataclass
class Stage1Output:
    """Losses (scalars) and predictions of one stage-1 forward pass."""

    loss: torch.Tensor            # L = L_MAE + lambda L_InfoNCE (Eq. 4)
    loss_mae: torch.Tensor        # speech + video reconstruction (Eq. 3)
    loss_mae_speech: torch.Tensor
    loss_mae_video: torch.Tensor
    loss_infonce: torch.Tensor    # sum over the selected layers (Eq. 2, 0.5 convention)
    speech_pred: torch.Tensor     # (B, N_mask, 16)
    video_pred: torch.Tensor      # (B, M_mask, C 16 16)
    speech_mask: torch.Tensor     # (B, N_mask) indices of the masked speech tokens
    video_mask: torch.Tensor      # (B, M_mask)


class Stage1Model(Checkpointable, nn.Module):
    """The audio-visual MAE + contrastive model; ``forward(fbank, video) -> Stage1Output``."""

    kind = "stage1"
    config_class = Stage1Config

    def __init__(self, config: Stage1Config = Stage1Config()) -> None:
        super().__init__()
        c = config
        self.config = config
        self.speech_encoder = SpeechEncoder(c.speech_config())
        self.video_encoder = VideoEncoder(c)
        self.fusion = FusionEncoder(c.dim, c.fusion_depth, c.fusion_heads, c.mlp_ratio)
        self.speech_decoder = MAEDecoder(c.dim, c.decoder_dim, c.speech_tokens, c.speech_patch, c.decoder_depth,
                                         c.decoder_heads, c.decoder_cross_heads, c.mlp_ratio)
        self.video_decoder = MAEDecoder(c.dim, c.decoder_dim, c.video_tokens, c.video_channels * c.video_patch ** 2,
                                        c.decoder_depth, c.decoder_heads, c.decoder_cross_heads, c.mlp_ratio)
        self.fusion.apply(init_weights)

    def forward(self, fbank: torch.Tensor, video: torch.Tensor,
                generator: torch.Generator | None = None) -> Stage1Output:
        """One training step's forward pass.

        Args:
            fbank: (B, speech_frames, n_mels) normalised fbank (:mod:`p3d.audio`).
            video: (B, C, 5, H_v, W_v) lip video, pixel values as the caller normalised them.
            generator: CPU generator for the random masks (reproducibility).
        """
        c = self.config
        if fbank.ndim != 3 or fbank.shape[1:] != (c.speech_frames, c.n_mels):
            raise InputError(f"fbank: expected (B, {c.speech_frames}, {c.n_mels}), got {tuple(fbank.shape)}")
        if video.shape[0] != fbank.shape[0]:
            raise InputError(f"video batch {video.shape[0]} != fbank batch {fbank.shape[0]}")
        b, dev = fbank.shape[0], fbank.device
        s_keep, s_mask = random_masking(b, c.speech_tokens, c.mask_ratio, dev, generator)
        v_keep, v_mask = random_masking(b, c.video_tokens, c.mask_ratio, dev, generator)

        zs, s_layers = self.speech_encoder(fbank, keep=s_keep, return_layers=True)
        zv, v_layers = self.video_encoder(video, keep=v_keep, return_layers=True)
        loss_infonce = multilayer_info_nce([pooled(s_layers[i]) for i in c.infonce_layers],
                                           [pooled(v_layers[i]) for i in c.infonce_layers], c.temperature)

        fs, fv = self.fusion(zs, zv)
        speech_pred = self.speech_decoder(fs, s_keep, s_mask, zs)
        video_pred = self.video_decoder(fv, v_keep, v_mask, zv)
        loss_s = F.mse_loss(speech_pred, gather_tokens(speech_patches(fbank, c.speech_patch), s_mask))
        loss_v = F.mse_loss(video_pred, gather_tokens(video_patches(video, c.video_patch), v_mask))
        loss_mae = loss_s + loss_v
        return Stage1Output(loss=loss_mae + c.lambda_infonce * loss_infonce, loss_mae=loss_mae,
                            loss_mae_speech=loss_s, loss_mae_video=loss_v, loss_infonce=loss_infonce,
                            speech_pred=speech_pred, video_pred=video_pred, speech_mask=s_mask, video_mask=v_mask)

    @torch.no_grad()
    def embed(self, fbank: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unmasked final-layer embeddings (speech (B, H), video (B, H)), L2-normalised, for retrieval."""
        return self.speech_encoder.embed(fbank), self.video_encoder.embed(video)

def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def parameter_table(model: Stage1Model) -> dict[str, int]:
    """Parameter counts of the stage-1 modules (for Table S1 introspection)."""
    return {name: count_parameters(m) for name, m in model.named_children()}
