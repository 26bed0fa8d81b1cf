"""The speech encoder E_s (paper Sec. 4, Table S1): a ViT over the log-mel filterbank "image".

Input: a normalised fbank (B, T_a, 128) (:mod:`p3d.audio`; T_a = 20 for a 5-frame window, 64 in
the paper's stage-1 training). Tokenizer: Conv2D with kernel = stride = (1, 16) over the
(1, T_a, 128) image, so each fbank frame gives 8 tokens of 16 mel bins, N = 8 T_a tokens in
time-major order (token ``8 t + f`` = frame ``t``, bins ``[16 f, 16 f + 16)``). Fixed sinusoidal
positions from a table sized for the paper's 64 x 8 tokens, sliced to N. Then
``[MHSA(H, 8) -> FFN(H)] x 10 -> LN`` (:class:`p3d.models.transformer.Encoder`).

The same module is stage 1's speech branch (fed only the unmasked tokens, ``keep``), stage 2's
frozen speech encoder, and, trained from scratch, the "w/o 2D prior" critic's speech encoder.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from p3d.errors import InputError
from p3d.models.base import PresetConfig
from p3d.models.transformer import Encoder, gather_tokens, init_weights, pooled, real_input, sinusoid_table


@dataclasses.dataclass(frozen=True)
class SpeechEncoderConfig(PresetConfig):
    """Speech encoder hyper-parameters. ``paper``: H = 512, 10 layers, 8 heads (Table S1)."""

    dim: int = 512
    depth: int = 10
    heads: int = 8
    mlp_ratio: float = 4.0
    n_mels: int = 128
    patch_width: int = 16
    max_frames: int = 64  # rows of the position table (the paper's 64-frame spectrogram)

    @property
    def tokens_per_frame(self) -> int:
        return self.n_mels // self.patch_width

    @staticmethod
    def presets() -> dict[str, SpeechEncoderConfig]:
        return {
            "paper": SpeechEncoderConfig(),
            "cpu": SpeechEncoderConfig(dim=128, depth=4, heads=4),
            "smoke": SpeechEncoderConfig(dim=32, depth=2, heads=2),
        }


class SpeechEncoder(nn.Module):
    """E_s: fbank (B, T_a, n_mels) -> tokens (B, N, H), N = T_a * n_mels / 16."""

    def __init__(self, config: SpeechEncoderConfig = SpeechEncoderConfig()) -> None:
        super().__init__()
        if config.n_mels % config.patch_width:
            raise ValueError(f"n_mels {config.n_mels} is not a multiple of patch_width {config.patch_width}")
        self.config = config
        self.patch_embed = nn.Conv2d(1, config.dim, kernel_size=(1, config.patch_width),
                                     stride=(1, config.patch_width))
        table = sinusoid_table(config.max_frames * config.tokens_per_frame, config.dim)
        self.register_buffer("pos_embed", table, persistent=False)
        self.encoder = Encoder(config.dim, config.depth, config.heads, config.mlp_ratio)
        self.apply(init_weights)

    @property
    def dim(self) -> int:
        return self.config.dim

    def n_tokens(self, n_frames: int) -> int:
        return n_frames * self.config.tokens_per_frame

    def tokenize(self, fbank: torch.Tensor) -> torch.Tensor:
        """Patch tokens plus positions: (B, T_a, n_mels) or (B, 1, T_a, n_mels) -> (B, N, H).

        ``fbank`` of another float precision or an integer dtype is cast to the weights' dtype
        (:func:`~p3d.models.transformer.real_input`); T_a = 0 is an :class:`InputError`."""
        fbank = real_input(fbank, self.patch_embed.weight.dtype, "fbank")
        if fbank.ndim == 4 and fbank.shape[1] == 1:
            fbank = fbank[:, 0]
        c = self.config
        if fbank.ndim != 3 or fbank.shape[-1] != c.n_mels:
            raise InputError(f"fbank: expected shape (B, T_a, {c.n_mels}), got {tuple(fbank.shape)}")
        if fbank.shape[1] == 0:
            raise InputError(f"fbank: no frames (shape {tuple(fbank.shape)}); a speech window needs at least one")
        if fbank.shape[1] > c.max_frames:
            raise InputError(f"fbank: {fbank.shape[1]} frames exceed the position table ({c.max_frames})")
        x = self.patch_embed(fbank[:, None]).flatten(2).transpose(1, 2)  # (B, T_a * 8, H), time-major
        return x + self.pos_embed[: x.shape[1]]

    def forward(
        self, fbank: torch.Tensor, keep: torch.Tensor | None = None, return_layers: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Encode (B, T_a, n_mels) -> (B, N', H) tokens, LN-ed.

        ``keep`` (B, N') long: indices of the tokens to encode (stage-1 masking); default all.
        ``return_layers``: also return each layer's LN-ed tokens (list of depth tensors).
        """
        x = self.tokenize(fbank)
        if keep is not None:
            x = gather_tokens(x, keep)
        return self.encoder(x, return_layers=return_layers)

    def embed(self, fbank: torch.Tensor) -> torch.Tensor:
        """Mean-pooled, L2-normalised final-layer embedding (B, H)."""
        return pooled(self(fbank))

    def embed_layers(self, fbank: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """Per-layer pooled, L2-normalised embeddings [(B, H)] for the given layer indices (Eq. 2)."""
        _, per_layer = self(fbank, return_layers=True)
        return [pooled(per_layer[i]) for i in layers]
