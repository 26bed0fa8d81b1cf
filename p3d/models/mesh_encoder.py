"""The 3D mesh encoder E_m of stage 2 (paper Sec. 4, Table S1).

Input: a 5-frame window of **absolute** vertex positions, (B, 5, V*3) or (B, 5, V, 3) (no template
subtraction, as the official code: its perceptual loss feeds FaceFormer's output, which already
includes the template). Tokenizer: one token per frame, ``Linear(V*3 -> H)`` over all vertices
(15 069 inputs for FLAME). Fixed sinusoidal positions over the 5 frames. Then
``[MHSA(H, 8) -> FFN(H)] x 10 -> LN``; mean-pool and L2-normalise give the embedding.

**Input standardisation (p3d's addition, not in the paper or the official code).** Before the
tokenizer the vertices are standardised with fixed statistics of the training data,
``x' = (x - mean) / scale`` (``mean``: (V*3,) the average training frame; ``scale``: one scalar, the
RMS of the centred training coordinates), stored as buffers in the checkpoint
(:meth:`MeshEncoder.set_input_normalization`; identity by default). Without it, absolute vertices in
metres move by millimetres: the motion signal enters the first layer about 1e-3 times smaller than
the sinusoidal positions it is added to, and a mesh encoder trained for a few hundred steps
(the ``cpu`` preset) stays near chance. Being an affine map folded in front of a linear layer, it
changes the optimisation, not what the model can represent; the paper preset keeps it (set the
identity statistics to disable it).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from p3d.errors import InputError
from p3d.models.base import PresetConfig
from p3d.models.transformer import Encoder, init_weights, pooled, real_input, sinusoid_table


@dataclasses.dataclass(frozen=True)
class MeshEncoderConfig(PresetConfig):
    """Mesh encoder hyper-parameters. ``paper``: FLAME (5023 vertices), H = 512, 10 layers, 8 heads."""

    n_vertices: int = 5023
    dim: int = 512
    depth: int = 10
    heads: int = 8
    mlp_ratio: float = 4.0
    n_frames: int = 5

    @staticmethod
    def presets() -> dict[str, MeshEncoderConfig]:
        return {
            "paper": MeshEncoderConfig(),
            "cpu": MeshEncoderConfig(dim=128, depth=4, heads=4),
            "smoke": MeshEncoderConfig(dim=32, depth=2, heads=2),
        }


class MeshEncoder(nn.Module):
    """E_m: vertices (B, 5, V*3) or (B, 5, V, 3) -> tokens (B, 5, H)."""

    def __init__(self, config: MeshEncoderConfig = MeshEncoderConfig()) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = nn.Linear(3 * config.n_vertices, config.dim)
        self.register_buffer("pos_embed", sinusoid_table(config.n_frames, config.dim), persistent=False)
        self.register_buffer("input_mean", torch.zeros(3 * config.n_vertices))
        self.register_buffer("input_scale", torch.ones(()))
        self.encoder = Encoder(config.dim, config.depth, config.heads, config.mlp_ratio)
        self.apply(init_weights)

    @property
    def dim(self) -> int:
        return self.config.dim

    def flatten(self, vertices: torch.Tensor) -> torch.Tensor:
        """Validate and flatten to (B, n_frames, V*3), in the weights' dtype (float of another precision and
        integer input cast, :func:`~p3d.models.transformer.real_input`)."""
        vertices = real_input(vertices, self.patch_embed.weight.dtype, "vertices")
        c = self.config
        if vertices.ndim == 4 and vertices.shape[-1] == 3:
            vertices = vertices.flatten(2)
        if vertices.ndim != 3 or vertices.shape[1] != c.n_frames or vertices.shape[2] != 3 * c.n_vertices:
            raise InputError(
                f"vertices: expected (B, {c.n_frames}, {3 * c.n_vertices}) or (B, {c.n_frames}, "
                f"{c.n_vertices}, 3) for this {c.n_vertices}-vertex mesh encoder, got {tuple(vertices.shape)}")
        return vertices

    @torch.no_grad()
    def set_input_normalization(self, mean: torch.Tensor, scale: float | torch.Tensor) -> None:
        """Set the input standardisation ``(x - mean) / scale``: ``mean`` (V*3,) or (V, 3), ``scale`` > 0."""
        mean = torch.as_tensor(mean, dtype=self.input_mean.dtype).reshape(-1)
        scale = torch.as_tensor(scale, dtype=self.input_scale.dtype).reshape(())
        if mean.numel() != self.input_mean.numel():
            raise InputError(f"input mean: expected {self.input_mean.numel()} values (V*3), got {mean.numel()}")
        if not torch.isfinite(mean).all() or not (torch.isfinite(scale) and scale > 0):
            raise InputError(f"input normalisation: mean must be finite and scale > 0, got scale {float(scale)}")
        self.input_mean.copy_(mean)
        self.input_scale.copy_(scale)

    def forward(self, vertices: torch.Tensor, return_layers: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, 5, V*3) -> LN-ed tokens (B, 5, H); ``return_layers`` adds every layer's LN-ed tokens."""
        x = (self.flatten(vertices) - self.input_mean) / self.input_scale
        x = self.patch_embed(x) + self.pos_embed
        return self.encoder(x, return_layers=return_layers)

    def embed_windows(self, frames: torch.Tensor, n_windows: int) -> torch.Tensor:
        """(T, V*3) consecutive frames -> (n_windows, H) :meth:`embed` of the windows ``[i, i + n_frames)``,
        i = 0 .. n_windows - 1, tokenizing each frame once for all the windows that contain it (the
        standardisation and ``patch_embed`` act per frame, so a window's tokens are rows of the frames' tokens;
        the same values as :meth:`embed` of the stacked windows, float32 rounding aside)."""
        c = self.config
        frames = real_input(frames, self.patch_embed.weight.dtype, "frames")
        if frames.ndim != 2 or frames.shape[1] != 3 * c.n_vertices:
            raise InputError(f"frames: expected (T, {3 * c.n_vertices}) for this {c.n_vertices}-vertex mesh encoder, "
                             f"got {tuple(frames.shape)}")
        if not 0 <= n_windows <= frames.shape[0] - c.n_frames + 1:
            raise InputError(f"n_windows: {n_windows} windows of {c.n_frames} frames do not fit in "
                             f"{frames.shape[0]} frames")
        tokens = self.patch_embed((frames - self.input_mean) / self.input_scale)  # (T, H)
        windows = tokens.unfold(0, c.n_frames, 1)[:n_windows].transpose(1, 2) + self.pos_embed  # (n, n_frames, H)
        return pooled(self.encoder(windows))

    def embed(self, vertices: torch.Tensor) -> torch.Tensor:
        """Mean-pooled, L2-normalised embedding (B, H)."""
        return pooled(self(vertices))

    def embed_layers(self, vertices: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """Per-layer pooled, L2-normalised embeddings [(B, H)] for the given layer indices (Eq. 5)."""
        _, per_layer = self(vertices, return_layers=True)
        return [pooled(per_layer[i]) for i in layers]
