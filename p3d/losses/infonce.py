"""Symmetric InfoNCE (paper Eqs. 1-2, 5, 6), as CLIP and the official ``compute_percp_loss``.

For a batch of B paired embeddings ``a_i``, ``b_i`` (rows of unit length), the logits are the
scaled cosine similarities ``a @ b.T / tau``; the true pairs sit on the diagonal and every other
row/column entry is a negative. With cross-entropy CE(logits, targets):

    L_{A->B} = CE(a @ b.T / tau, arange(B))        (Eq. 1: speech-centric, A = speech)
    L_{B->A} = CE(b @ a.T / tau, arange(B))        (the video/mesh-centric counterpart)
    info_nce(a, b) = (L_{A->B} + L_{B->A}) / 2     (the official code's 0.5 * (CE + CE))

The paper's Eq. 2 / 5 / 6 writes the plain sum ``L_{A->B} + L_{B->A}`` over a set L of encoder
layers; that is ``2 * sum_l info_nce(a_l, b_l)``. The factor 2 only rescales the loss weight
(lambda in Eq. 4, the perceptual-loss weight), and p3d follows the code's 0.5 convention
throughout. tau = 0.07 in the official code (the paper gives no value).

The logits are computed in at least float32, also under ``torch.autocast`` (``p3d train talker --bf16`` runs the
critic's mesh pass under bfloat16 autocast): a bfloat16 product rounded the cosine similarities to 8 bits before the
division by tau = 0.07, which put ~7 % relative error on the loss' gradient for an (B, B) product that costs nothing.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from p3d.errors import InputError
from p3d.paper import HYPER

TEMPERATURE = HYPER.temperature


def check_temperature(temperature: float) -> float:
    """tau as a float: finite and > 0 (tau = 0 makes every logit infinite and the loss NaN; a negative tau
    rewards the wrong pairs; a boolean is refused: True was read as tau = 1)."""
    try:
        if isinstance(temperature, (bool, np.bool_)):
            raise TypeError
        value = float(temperature)
    except (TypeError, ValueError):
        raise InputError(f"temperature: expected a finite number > 0, got {temperature!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"temperature: expected a finite number > 0, got {temperature!r}")
    return value


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Symmetric InfoNCE of paired rows: scalar ``0.5 * (CE(a b^T / t, I) + CE(b a^T / t, I))``.

    Args:
        a: (B, D) embeddings, assumed L2-normalised (so ``a @ b.T`` are cosine similarities; the
            function does not normalise, as the models' ``encode_*`` already return unit rows).
        b: (B, D) embeddings paired row by row with ``a``, also L2-normalised.
        temperature: tau.
    """
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"info_nce: expected two (B, D) tensors of equal shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    temperature = check_temperature(temperature)
    with without_autocast(a.device.type):
        return info_nce_from_logits(at_least_float32(a) @ at_least_float32(b).T / temperature)


def without_autocast(device_type: str) -> contextlib.AbstractContextManager[Any]:
    """A context with ``torch.autocast`` off on ``device_type`` (a no-op where it is not on)."""
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is in a narrower float type (float16, bfloat16), else as it is (float64 stays)."""
    return x.float() if x.is_floating_point() and torch.finfo(x.dtype).bits < 32 else x


def info_nce_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE from a (B, B) logits matrix whose diagonal holds the true pairs:
    ``0.5 * (CE(logits, I) + CE(logits.T, I))`` (e.g. a dual encoder's ``forward`` output, which is
    what a ``DistributedDataParallel``-wrapped model returns)."""
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"info_nce_from_logits: expected a square (B, B) matrix, got {tuple(logits.shape)}")
    if logits.shape[0] == 0:  # cross-entropy's mean over no pairs is NaN
        raise InputError("info_nce: an empty batch (B = 0) has no pairs to contrast")
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def multilayer_info_nce(
    a_layers: Sequence[torch.Tensor], b_layers: Sequence[torch.Tensor], temperature: float = TEMPERATURE,
) -> torch.Tensor:
    """Eq. 2: ``sum_l info_nce(a_l, b_l)`` over paired per-layer embeddings (each (B, D), unit rows)."""
    if len(a_layers) != len(b_layers) or not a_layers:
        raise ValueError(f"multilayer_info_nce: need equally many (>= 1) layers, "
                         f"got {len(a_layers)} and {len(b_layers)}")
    return torch.stack([info_nce(a, b, temperature) for a, b in zip(a_layers, b_layers)]).sum()
