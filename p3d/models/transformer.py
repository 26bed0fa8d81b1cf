"""Transformer building blocks shared by every model of the paper (Table S1's notation).

- :class:`Attention`: multi-head attention; self-attention (MHSA) when ``context`` is None,
  cross-attention (MHCA) to a context sequence of possibly another width otherwise.
- :class:`FeedForward`: FFN, Linear -> GELU -> Linear with a 4x hidden width.
- :class:`Block`: pre-norm ``[MHSA -> FFN]`` with residuals (the encoders' layer).
- :class:`CrossBlock`: pre-norm ``[MHSA -> MHCA(context) -> FFN]`` (fusion encoder, decoders).
- :class:`Encoder`: ``[Block] x depth -> LN``, optionally returning every layer's output passed
  through the same final LN (the per-layer features of the multi-layer InfoNCE, Eq. 2; the official
  code does the same for its ``intermediate_features``).
- :func:`sinusoid_table`: the fixed sine-cosine position table of "Attention is all you need".
- :func:`real_input`: an encoder's input tensor in its weights' dtype (float of another precision and
  integer tensors cast; bool, complex and non-tensors an :class:`~p3d.errors.InputError`).

Choices follow the official ``src/model/modeling.py`` (timm ViT style): LayerNorm eps 1e-6,
biases on the query/key/value projections, Xavier-uniform linear weights with zero biases
(:func:`init_weights`). One harmless difference: the official attention has no key bias (a key
bias adds the same value to every logit of a query, so softmax ignores it); here the key/value
projection is a single biased Linear.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from p3d.errors import InputError

LN_EPS = 1e-6


def real_input(x: object, dtype: torch.dtype, name: str) -> torch.Tensor:
    """``x`` in the weights' ``dtype``: a float tensor of another precision (float64, float16, ...) or an integer
    tensor is cast to it, a tensor already in it is returned as it is (float32 results unchanged); a bool or
    complex tensor, or anything but a tensor, is an :class:`InputError` naming ``name``."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name}: expected a torch tensor, got {type(x).__name__}")
    if x.dtype == torch.bool or x.is_complex():
        raise InputError(f"{name}: expected real numbers, got a {x.dtype} tensor")
    return x if x.dtype == dtype else x.to(dtype)


def sinusoid_table(n_positions: int, dim: int) -> torch.Tensor:
    """Fixed sinusoidal position table, (n_positions, dim) float32.

    ``table[p, 2i] = sin(p / 10000^(2i/dim))``, ``table[p, 2i+1] = cos(p / 10000^(2i/dim))``.
    """
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(dim) // 2).to(torch.float64) / dim
    angle = position / torch.pow(10000.0, exponent)[None, :]
    table = torch.empty(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()


def init_weights(module: nn.Module) -> None:
    """Xavier-uniform Linear weights, zero biases, unit LayerNorms (apply with ``model.apply``)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def gather_tokens(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``tokens[b, index[b]]``: (B, N, D), (B, K) long -> (B, K, D)."""
    return tokens.gather(1, index[..., None].expand(-1, -1, tokens.shape[-1]))


class Attention(nn.Module):
    """Multi-head (self or cross) attention: (B, N, dim) [+ context (B, M, context_dim)] -> (B, N, dim)."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, qkv_bias: bool = True) -> None:
        super().__init__()
        if not isinstance(heads, int) or isinstance(heads, bool) or heads < 1:
            raise ValueError(f"attention heads must be a positive integer, got {heads!r}")
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(context_dim or dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``attn_mask``: None, or bool broadcastable to (B, heads, N, M), True where a query may attend (e.g. a
        (B, 1, 1, M) key-padding mask)."""
        context = x if context is None else context
        (b, n, d), m = x.shape, context.shape[1]
        q = self.q(x).view(b, n, self.heads, d // self.heads).transpose(1, 2)
        k, v = self.kv(context).view(b, m, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if q.dtype == torch.bfloat16 and q.device.type == "cpu":  # bf16 autocast on a CPU: attention in float32
            out = _float32_attention(q, k, v, attn_mask)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # softmax(q k^T / sqrt(d_head)) v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


def _float32_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None
                       ) -> torch.Tensor:
    """``scaled_dot_product_attention`` of bfloat16 ``q, k, v`` computed in float32, returned as bfloat16.

    Under ``torch.autocast("cpu", torch.bfloat16)`` the projections' matrix products gain from bf16, but torch's
    CPU flash-attention kernel in bf16 is 2-3x slower than in float32 (forward + backward, 4 heads of 16-32
    channels over 5-160 tokens; benchmarks/RESULTS.md, stage 1 under bf16), so the attention itself stays in
    float32 (also the more accurate softmax). Float32 inputs never come here: the default path is unchanged.
    """
    with torch.autocast("cpu", enabled=False):
        out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=attn_mask)
    return out.to(q.dtype)


class FeedForward(nn.Sequential):
    """FFN: Linear(dim, hidden) -> GELU -> Linear(hidden, dim)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class Block(nn.Module):
    """Pre-norm transformer layer: ``x + MHSA(LN x)``, then ``x + FFN(LN x)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``attn_mask``: see :meth:`Attention.forward` (None: every token attends to every token)."""
        x = x + self.attn(self.norm1(x), attn_mask=attn_mask)
        return x + self.mlp(self.norm2(x))


class CrossBlock(nn.Module):
    """Pre-norm ``[MHSA -> MHCA(context) -> FFN]`` layer (Table S1's fusion and decoder blocks).

    ``context`` (B, M, context_dim) is layer-normalised before it is attended to.
    """

    def __init__(self, dim: int, heads: int, context_dim: int, cross_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads)
        self.norm_cross = nn.LayerNorm(dim, eps=LN_EPS)
        self.norm_context = nn.LayerNorm(context_dim, eps=LN_EPS)
        self.cross_attn = Attention(dim, cross_heads, context_dim=context_dim)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        x = x + self.cross_attn(self.norm_cross(x), self.norm_context(context))
        return x + self.mlp(self.norm2(x))


class Encoder(nn.Module):
    """``[Block] x depth -> LN`` over (B, N, dim) tokens."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor, return_layers: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns LN(final tokens); with ``return_layers`` also ``[LN(tokens after layer l)]``, l = 0..depth-1.

        The last entry of the list equals the first output.
        """
        layers = []
        for block in self.blocks:
            x = block(x)
            if return_layers:
                layers.append(self.norm(x))
        out = self.norm(x)
        return (out, layers) if return_layers else out


def pooled(tokens: torch.Tensor) -> torch.Tensor:
    """Mean over tokens, L2-normalised: (B, N, D) -> (B, D) unit vectors (the paper's ``c``)."""
    return F.normalize(tokens.mean(dim=1), dim=-1)


def n_masked(n_tokens: int, ratio: float) -> int:
    """Tokens masked out of ``n_tokens`` at ``ratio``: ``round(ratio * n)`` (halves round up)."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    return min(n_tokens - 1, int(math.floor(ratio * n_tokens + 0.5)))


def random_masking(
    batch: int, n_tokens: int, ratio: float, device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample random split of token indices into kept and masked ones.

    Returns ``(keep, mask)``: (B, n_tokens - k) and (B, k) long tensors, each row sorted, with
    ``k = n_masked(n_tokens, ratio)`` exactly. ``generator`` (on any device) makes it reproducible.
    """
    k = n_masked(n_tokens, ratio)
    noise = torch.rand(batch, n_tokens, generator=generator, device=generator.device if generator else "cpu")
    order = noise.argsort(dim=1)
    keep = order[:, : n_tokens - k].sort(dim=1).values
    mask = order[:, n_tokens - k:].sort(dim=1).values
    return keep.to(device), mask.to(device)
