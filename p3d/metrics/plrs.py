"""PLRS, the Perceptual Lip Readability Score (paper Sec. 5, E.1, Eq. (a); higher is better).

    PLRS(S, M) = (1/G) sum_{i=1..G} cos(c_{s,i}, c_{m,i})

for G non-overlapping 5-frame windows of a vertex sequence and their speech windows, with
``c_s`` / ``c_m`` the mean-pooled, L2-normalised embeddings of a speech-mesh representation (the
PLRS *evaluator*, which must be trained independently of any critic used as a training loss).

Semantics of the official ``evaluation/evaluate_PLRS.py``, reproduced exactly:

- speech windows as :func:`p3d.audio.speech_windows` (the official code always resamples to
  19.2 kHz, i.e. assumes 30 fps; here the rate follows ``fps``: 640 * fps);
- ``n_windows = min(#speech windows, T - 4)``; window ``i`` = frames ``[5 i, 5 i + 5)`` paired
  with speech window ``5 i``, for ``i < n_windows // 5`` (so G = n_windows // 5);
- the per-sequence score is the mean of the diagonal cosine similarities; the dataset PLRS is the
  mean over sequences (the caller's job; the official script then rounds to 3 decimals);
- frame rates must match: VOCASET ground truth is 60 fps and the official script takes every
  second frame (``[::2]``) to reach the 30 fps of predictions. Pass 30 fps vertices (do
  ``vertices[::2]`` yourself) with ``fps=30``.

Works with any model exposing ``encode_speech`` / ``encode_mesh`` (the stage-2 model, 3D SyncNet,
"w/o 2D prior"). Inputs are validated; bad ones raise :class:`p3d.errors.InputError`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from p3d.errors import InputError

WINDOW = 5


def plrs_from_features(fbank_windows: Any, vertices: Any, model: Any, batch_size: int = 256) -> float:
    """PLRS of one sequence from precomputed speech windows.

    Args:
        fbank_windows: (N, 20, 128) speech windows (:func:`p3d.audio.speech_windows` or
            :class:`p3d.audio.FeatureCache`); window ``j`` starts at mesh frame ``j``.
        vertices: (T, V, 3) or (T, V*3) absolute vertex positions at the frame rate the windows
            were computed for.
        model: a speech-mesh representation (``encode_speech``, ``encode_mesh``).
        batch_size: windows per forward pass (memory only; does not change the result).

    Returns:
        Mean cosine similarity over the G = min(N, T - 4) // 5 non-overlapping windows.
    """
    import torch

    from p3d.losses.perceptual_loss import flat_vertices

    fb = np.asarray(fbank_windows, dtype=np.float32)
    if fb.ndim != 3:
        raise InputError(f"fbank_windows: expected (N, T_a, n_mels), got shape {fb.shape}")
    verts = flat_vertices(vertices, getattr(model, "n_vertices", None), name="vertices")
    n_windows = min(fb.shape[0], verts.shape[0] - (WINDOW - 1))
    g = max(n_windows, 0) // WINDOW
    if g == 0:
        raise InputError(f"vertices / audio: {verts.shape[0]} frames and {fb.shape[0]} speech windows give no complete "
                         f"non-overlapping 5-frame window (PLRS needs >= 9 frames and 5 speech windows)")
    starts = np.arange(g) * WINDOW
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            speech = torch.from_numpy(np.ascontiguousarray(fb[starts])).to(device)
            mesh = torch.stack([verts[s:s + WINDOW] for s in starts]).float().to(device)
            sims = []
            for a in range(0, g, batch_size):
                s = torch.nn.functional.normalize(model.encode_speech(speech[a:a + batch_size]), dim=-1)
                m = torch.nn.functional.normalize(model.encode_mesh(mesh[a:a + batch_size]), dim=-1)
                sims.append((s * m).sum(dim=-1))
            return float(torch.cat(sims).mean())
    finally:
        model.train(was_training)


def plrs(audio: Any, vertices: Any, model: Any, fps: float, sr: int = 16000) -> float:
    """PLRS of one sequence (Eq. (a)).

    Args:
        audio: (n_samples,) mono float samples in [-1, 1] of the clip's speech.
        vertices: (T, V, 3) or (T, V*3) generated (or GT) vertex positions at ``fps``.
        model: the PLRS evaluator (``encode_speech`` / ``encode_mesh``).
        fps: frame rate of ``vertices`` (30 for VOCASET predictions; GT at 60 fps: pass ``[::2]``).
        sr: sample rate of ``audio``.
    """
    from p3d.audio import speech_windows

    return plrs_from_features(speech_windows(audio, sr, fps), vertices, model)
