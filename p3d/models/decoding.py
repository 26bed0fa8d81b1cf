"""Decoding machinery of the autoregressive talkers FaceFormer (:mod:`p3d.models.faceformer`) and CodeTalker
(:mod:`p3d.models.codetalker`), whose speech decoders follow FaceFormer's official code (Fan et al., CVPR 2022):

- :func:`alibi_slopes`, :func:`biased_mask`: the ALiBi-style biased causal self-attention mask (official
  ``init_biased_mask``): ``-slope_h * floor((i - j) / period)`` for key j <= query i, ``-inf`` after;
- :func:`alignment_mask`: the cross-attention alignment of frame t to its own audio feature(s) (official
  ``enc_dec_mask``);
- :func:`periodic_encoding`: the periodic positional encoding (PPE, official ``PeriodicPositionalEncoding``);
- :func:`post_norm_layer_step`: one post-norm ``nn.TransformerDecoderLayer`` evaluated for the newest token
  only, against the cached inputs of the earlier tokens (incremental autoregressive decoding, O(T) instead of
  re-decoding the prefix at every step; the causal mask makes the earlier rows final);
- :func:`cached_self_attention`, :func:`aligned_cross_attention`: the same layer's two attentions with each
  token's keys/values projected once and the one-feature-per-frame cross-attention computed up front
  (FaceFormer's fused batched rollout).

All tables are built for the length asked (the official code stops at ``max_seq_len = 600`` frames); within
600 frames they equal the official tables.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from p3d.errors import InputError


def alibi_slopes(n_heads: int) -> list[float]:
    """ALiBi head slopes (Press et al.): a geometric sequence from ``2^(-8/n)``; for a non power of
    two, the closest power's slopes plus every other slope of twice that (official ``get_slopes``)."""
    def power_of_2(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return power_of_2(n_heads)
    closest = 2 ** math.floor(math.log2(n_heads))
    return power_of_2(closest) + alibi_slopes(2 * closest)[0::2][: n_heads - closest]


def biased_mask(n_heads: int, length: int, period: int) -> torch.Tensor:
    """(n_heads, length, length) additive self-attention mask: ``-slope_h * floor((i - j) / period)``
    for j <= i, ``-inf`` for j > i (the official ``init_biased_mask``, for any length)."""
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    distance = torch.div(i - j, period, rounding_mode="floor").clamp(min=0).float()
    slopes = torch.tensor(alibi_slopes(n_heads))[:, None, None]
    mask = -slopes * distance
    return mask.masked_fill((j > i)[None], float("-inf"))


def alignment_mask(n_frames: int, n_audio: int, per_frame: int = 1) -> torch.Tensor:
    """(n_frames, n_audio) bool cross-attention mask, True = blocked: frame t sees audio features
    ``per_frame * t .. per_frame * t + per_frame - 1`` only (official ``enc_dec_mask``: 1 for VOCASET,
    2 for BIWI)."""
    if n_audio < per_frame * n_frames:
        raise InputError(f"alignment mask: {n_audio} audio features for {n_frames} frames")
    frame = torch.arange(n_frames)[:, None]
    feature = torch.arange(n_audio)[None, :]
    return torch.div(feature, per_frame, rounding_mode="floor") != frame


def periodic_encoding(length: int, d_model: int, period: int) -> torch.Tensor:
    """(length, d_model) PPE: the sinusoid of position ``t mod period`` (official
    ``PeriodicPositionalEncoding``, tiled for any length)."""
    position = torch.arange(period, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pe = torch.zeros(period, d_model)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)[:, : d_model // 2]
    return pe[torch.arange(length) % period]


def post_norm_layer_step(layer: nn.TransformerDecoderLayer, x: torch.Tensor, past: torch.Tensor,
                         memory: torch.Tensor, self_mask: torch.Tensor,
                         memory_mask: torch.Tensor | None = None) -> torch.Tensor:
    """One post-norm ``nn.TransformerDecoderLayer`` for the newest token only (incremental decoding).

    ``x`` (B, 1, d) the new token (the layer's input at frame t), ``past`` (B, t+1, d) the layer's inputs at
    frames 0..t (keys/values of the causal self-attention), ``self_mask`` (B * heads or heads, 1, t+1) its bias
    row, ``memory`` (B, S, d) the cross-attention keys/values and ``memory_mask`` (1, S) its alignment row, or
    None when ``memory`` holds only the features the new token may see. The same computation as the layer's
    ``forward`` on the whole sequence, restricted to the last query (post-norm: ``norm_first=False``, the
    official FaceFormer / CodeTalker layer).
    """
    h = layer.self_attn(x, past, past, attn_mask=self_mask, need_weights=False)[0]
    x = layer.norm1(x + layer.dropout1(h))
    h = layer.multihead_attn(x, memory, memory, attn_mask=memory_mask, need_weights=False)[0]
    x = layer.norm2(x + layer.dropout2(h))
    h = layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))
    return layer.norm3(x + layer.dropout3(h))


def aligned_cross_attention(attn: nn.MultiheadAttention, memory: torch.Tensor, training: bool) -> torch.Tensor:
    """(B, T, d) audio memory -> (B, T, d) the cross-attention output of every frame when frame t attends to audio
    feature t alone (the alignment mask with one feature per frame): its softmax over one key is 1, so the output
    is ``out_proj(W_v m_t + b_v)`` whatever the query. In training the attention dropout zeroes that weight of
    a head with probability p (else scales it by 1 / (1 - p)), drawn here per clip, frame and head."""
    d = memory.shape[-1]
    heads = attn.num_heads
    v = F.linear(memory, attn.in_proj_weight[2 * d:], None if attn.in_proj_bias is None else attn.in_proj_bias[2 * d:])
    if training and attn.dropout > 0:
        keep = F.dropout(v.new_ones(*v.shape[:2], heads, 1), attn.dropout, training=True)
        v = (v.view(*v.shape[:2], heads, d // heads) * keep).reshape(v.shape)
    return attn.out_proj(v)


def cached_self_attention(attn: nn.MultiheadAttention, x: torch.Tensor, keys: list[torch.Tensor],
                          values: list[torch.Tensor], bias_row: torch.Tensor, training: bool) -> torch.Tensor:
    """Self-attention of the newest token ``x`` (B, 1, d) over the earlier tokens' projected keys/values (appended
    to ``keys`` / ``values`` here, so each token is projected once), with the (heads, 1, t+1) additive bias row:
    ``nn.MultiheadAttention``'s computation for the last query."""
    b, _, d = x.shape
    heads = attn.num_heads
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    keys.append(k)
    values.append(v)

    def split(z: torch.Tensor) -> torch.Tensor:
        return z.view(b, z.shape[1], heads, d // heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(torch.cat(keys, dim=1)), split(torch.cat(values, dim=1)),
                                         attn_mask=bias_row[None].to(q.dtype),
                                         dropout_p=attn.dropout if training else 0.0)
    return attn.out_proj(out.transpose(1, 2).reshape(b, 1, d))


__all__ = ["aligned_cross_attention", "alibi_slopes", "alignment_mask", "biased_mask", "cached_self_attention",
           "periodic_encoding", "post_norm_layer_step"]
