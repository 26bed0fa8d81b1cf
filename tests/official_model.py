"""The official ``speech_mesh_rep`` model for tests: official-layout weights and its forward pass.

Written from the official model's description (``official-interop.md``), independently of p3d's
modules: the key names and structure of the released checkpoint at scaled-down sizes (width 128,
2 blocks, a 40-vertex mesh; heads of 64 as the official model), and its features computed in
float64 with plain torch operations.
"""
from __future__ import annotations

import math
import re

import numpy as np
import torch

WIDTH, DEPTH, N_VERTICES = 128, 2, 40


def official_key_shapes(width: int = WIDTH, depth: int = DEPTH, n_vertices: int = N_VERTICES,
                         patch: int = 16) -> list[tuple[str, tuple[int, ...]]]:
    """The official key list and shapes, written out (per encoder: patch embedding, blocks, norm)."""
    out: list[tuple[str, tuple[int, ...]]] = []
    for prefix in ("encoder", "encoder_audio"):
        if prefix == "encoder":
            out += [("encoder.patch_embed.weight", (width, 3 * n_vertices)), ("encoder.patch_embed.bias", (width,))]
        else:
            out += [("encoder_audio.patch_embed.proj.weight", (width, 1, 1, patch)),
                    ("encoder_audio.patch_embed.proj.bias", (width,))]
        for i in range(depth):
            b = f"{prefix}.blocks.{i}"
            out += [(f"{b}.norm1.weight", (width,)), (f"{b}.norm1.bias", (width,)),
                    (f"{b}.attn.q_bias", (width,)), (f"{b}.attn.v_bias", (width,)),
                    (f"{b}.attn.qkv.weight", (3 * width, width)),
                    (f"{b}.attn.proj.weight", (width, width)), (f"{b}.attn.proj.bias", (width,)),
                    (f"{b}.norm2.weight", (width,)), (f"{b}.norm2.bias", (width,)),
                    (f"{b}.mlp.fc1.weight", (4 * width, width)), (f"{b}.mlp.fc1.bias", (4 * width,)),
                    (f"{b}.mlp.fc2.weight", (width, 4 * width)), (f"{b}.mlp.fc2.bias", (width,))]
        out += [(f"{prefix}.norm.weight", (width,)), (f"{prefix}.norm.bias", (width,))]
    return out


def official_state_dict(seed: int = 0, n_vertices: int = N_VERTICES) -> dict[str, torch.Tensor]:
    """Random official-layout weights (LayerNorm weights near 1, everything else small) for ``n_vertices``."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in official_key_shapes(n_vertices=n_vertices):
        if re.search(r"norm\d?\.weight$", key):
            sd[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = shape[-1] if len(shape) > 1 else 16
            sd[key] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
    return sd


# --- an independent statement of the official forward pass -----------------------------------------

def sinusoid(n: int, d: int) -> np.ndarray:
    table = np.array([[p / np.power(10000, 2 * (j // 2) / d) for j in range(d)] for p in range(n)])
    table[:, 0::2], table[:, 1::2] = np.sin(table[:, 0::2]), np.cos(table[:, 1::2])
    return table


def official_encoder(sd, prefix, tokens):
    """Blocks (pre-norm MHSA with a bias-free key, GELU FFN), final LN, mean pool, L2 norm; float64."""
    ln = lambda x, name: torch.nn.functional.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"],
                                                       eps=1e-6)
    x, (b, n, d), h = tokens, tokens.shape, WIDTH // 64
    depth = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith(f"{prefix}.blocks."))
    for i in range(depth):
        p = f"{prefix}.blocks.{i}"
        y = ln(x, f"{p}.norm1")
        bias = torch.cat([sd[f"{p}.attn.q_bias"], torch.zeros(d, dtype=x.dtype), sd[f"{p}.attn.v_bias"]])
        qkv = (y @ sd[f"{p}.attn.qkv.weight"].T + bias).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * (d // h) ** -0.5, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(b, n, d)
        x = x + y @ sd[f"{p}.attn.proj.weight"].T + sd[f"{p}.attn.proj.bias"]
        y = ln(x, f"{p}.norm2") @ sd[f"{p}.mlp.fc1.weight"].T + sd[f"{p}.mlp.fc1.bias"]
        x = x + torch.nn.functional.gelu(y) @ sd[f"{p}.mlp.fc2.weight"].T + sd[f"{p}.mlp.fc2.bias"]
    x = ln(x, f"{prefix}.norm")
    return torch.nn.functional.normalize(x.mean(dim=1), dim=-1)


def official_features(sd, fbank, vertices):
    """(speech (B, D), mesh (B, D)) as the official model computes them, in float64."""
    sd = {k: v.double() for k, v in sd.items()}
    b, t, n_mels = fbank.shape
    w = sd["encoder_audio.patch_embed.proj.weight"]
    patches = fbank.double().reshape(b, t, n_mels // 16, 16).reshape(b, -1, 16)  # time-major tokens
    speech = patches @ w.reshape(w.shape[0], -1).T + sd["encoder_audio.patch_embed.proj.bias"]
    speech = speech + torch.from_numpy(sinusoid(512, WIDTH))[: speech.shape[1]]
    mesh = vertices.double().reshape(b, 5, -1) @ sd["encoder.patch_embed.weight"].T + sd["encoder.patch_embed.bias"]
    mesh = mesh + torch.from_numpy(sinusoid(5, WIDTH))
    return official_encoder(sd, "encoder_audio", speech), official_encoder(sd, "encoder", mesh)
