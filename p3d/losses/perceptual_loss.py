"""The speech-mesh perceptual loss (paper Eq. 6, Sec. 4 and C.2; official ``perceptual_loss/main.py``).

A frozen speech-mesh critic (:class:`p3d.models.speech_mesh.SpeechMeshModel` or any
:class:`~p3d.models.dual_encoder.DualEncoder`) scores a generated vertex sequence against its audio:

1. the generated sequence (T, V, 3) is cut into 5-frame windows at stride 1: window ``i`` = frames
   ``[i, i + 5)``, paired with speech window ``i`` (:func:`p3d.audio.speech_windows`), for
   ``i < n = min(N_speech, T - 4)`` (the official ``clip_num``);
2. consecutive groups of ``batch_size`` (80) windows form contrastive batches; a remainder group is
   kept if it holds at least 2 windows (the official code computes the remainder with a
   hard-coded ``% 80``; here it follows ``batch_size``, identical at 80);
3. the loss is the symmetric InfoNCE (final-layer features, tau = 0.07, as the official
   ``compute_percp_loss``) averaged over the groups, times ``weight`` (1e-7 in the official
   FaceFormer script), to be added to the base model's loss.

The speech side depends only on the input audio and the frozen critic, so its embeddings can be
computed once per clip and reused every epoch: :meth:`PerceptualLoss.speech_embeddings` returns
them, and the loss accepts either those (N, D) embeddings or the (N, 20, 128) fbank windows (then
it embeds them itself, with the same code path, so both give the same value). Gradients reach the
generated vertices only; the critic's parameters are frozen.

**Cost** (:meth:`PerceptualLoss.mesh_embeddings`). All ``n`` windows of a clip go through the mesh
encoder in one call (the groups only split the embeddings afterwards: the encoder treats windows
independently). With a stage-2 critic (:class:`~p3d.models.mesh_encoder.MeshEncoder`, whose tokenizer
is one ``Linear(V*3 -> H)`` per frame), the standardisation and the tokenizer run once per *frame*
(T tokens) and the (n, 5, H) window tokens are a strided view of them, instead of once per window frame
(5n tokens): the same numbers up to float rounding (tested), ~5x less work in the widest layer
(15 069 inputs per token at FLAME size) and no (n, 5, V*3) copy of the vertices. Other critics (3D
SyncNet, subclasses) take the generic path: ``encode_mesh`` on the (n, 5, V*3) windows.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from p3d.errors import InputError, whole_number
from p3d.losses.infonce import TEMPERATURE, check_temperature, info_nce, without_autocast
from p3d.paper import HYPER

#: The official defaults (``perceptual_loss/main.py``); DEFAULT_WEIGHT is the one default of the loss weight W.
DEFAULT_WEIGHT = HYPER.loss_weight
DEFAULT_BATCH_SIZE = HYPER.loss_batch_windows


def check_weight(weight: Any, name: str = "weight") -> float:
    """A loss weight (``name``: the option or field it came from) as a float: finite and >= 0 (a boolean is
    refused: True was read as weight 1.0; so is text: "1e-7" passed here yet stayed a string in a
    :class:`~p3d.experiments.spec.TalkerExperiment`, another arm than 1e-7, and a relative weight "0.1" broke
    its name). The CLI's ``--loss-weight`` is parsed as a float before it gets here."""
    try:
        if isinstance(weight, (bool, np.bool_, str, bytes)):
            raise TypeError
        value = float(weight)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a finite weight >= 0, got {weight!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"{name}: expected a finite weight >= 0, got {weight!r}")
    return value


def _whole(value: Any, name: str, low: int, what: str) -> int:
    """``value`` as an int >= ``low`` (a Python or numpy integer, or a float without a fraction); InputError for
    anything else: a fraction was truncated (batch_size 2.5 ran batches of 2), NaN and text raised numpy's or
    Python's ValueError / TypeError, True counted as 1."""
    count = whole_number(value, low)
    if count is None:
        raise InputError(f"{name}: expected an integer >= {low} ({what}), got {value!r}")
    return count


def _real_tensor(x: Any, name: str) -> torch.Tensor:
    """``x`` (a tensor or an array-like) as a float32 tensor (a tensor keeps its device); InputError for booleans,
    complex numbers (their imaginary part was dropped), text and ragged sequences (numpy's ValueError)."""
    from p3d.metrics._checks import as_real_array

    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool or x.is_complex():
            raise InputError(f"{name}: expected real numbers, got a {x.dtype} tensor")
        return x.float()
    return torch.as_tensor(np.ascontiguousarray(as_real_array(x, name), dtype=np.float32))


def fbank_windows_tensor(windows: Any, name: str = "fbank_windows") -> torch.Tensor:
    """Validate (N, 20, n_mels) speech windows (:func:`p3d.audio.speech_windows`: 20 fbank rows each) and return
    them as a float32 tensor (:func:`_real_tensor`). InputError for another window length (not a speech window:
    the critic's speech encoder took any length) and for NaN / inf values (they gave NaN embeddings); ``n_mels`` is
    the critic's check."""
    from p3d.audio import FBANK_FRAMES_PER_WINDOW

    fb = _real_tensor(windows, name)
    if fb.ndim != 3 or fb.shape[1] != FBANK_FRAMES_PER_WINDOW:
        raise InputError(f"{name}: expected (N, {FBANK_FRAMES_PER_WINDOW}, n_mels) speech windows, "
                         f"got shape {tuple(fb.shape)}")
    if not torch.isfinite(fb).all():
        raise InputError(f"{name}: holds NaN or inf values")
    return fb


def speech_tensor(speech: Any) -> torch.Tensor:
    """The loss' ``speech`` argument checked: a real, finite (N, D) embedding or (N, 20, n_mels) window tensor (a real
    tensor keeps its dtype; anything else becomes float32)."""
    speech_t = speech
    if not isinstance(speech, torch.Tensor) or speech.dtype == torch.bool or speech.is_complex():
        speech_t = _real_tensor(speech, "speech")
    if not torch.isfinite(speech_t).all():
        raise InputError("speech: holds NaN or inf values")
    if speech_t.ndim not in (2, 3):
        raise InputError(f"speech: expected (N, D) embeddings or (N, 20, n_mels) windows, got {tuple(speech_t.shape)}")
    return speech_t


def mesh_windows(vertices: torch.Tensor, n_windows: int, stride: int = 1, length: int = 5) -> torch.Tensor:
    """(T, V*3) -> (n_windows, length, V*3): window ``i`` = frames ``[stride i, stride i + length)``.

    Differentiable (a strided view of ``vertices``).
    """
    windows = vertices.unfold(0, length, stride)  # (n_all, V*3, length)
    return windows[:n_windows].transpose(1, 2)


def contrastive_groups(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of consecutive groups of ``batch_size``; a last partial group of
    >= 2 windows is kept, a single leftover window dropped (official behaviour)."""
    groups = [(s, s + batch_size) for s in range(0, n - batch_size + 1, batch_size)]
    start = len(groups) * batch_size
    if n - start >= 2:
        groups.append((start, n))
    return groups


def flat_vertices(vertices: Any, n_vertices: int | None, name: str = "pred_vertices") -> torch.Tensor:
    """Validate a (T, V, 3) or (T, V*3) sequence (tensor or array) and return it as (T, V*3)."""
    if not isinstance(vertices, torch.Tensor):
        vertices = torch.as_tensor(np.ascontiguousarray(vertices, dtype=np.float32))  # torch refuses negative strides
    if vertices.ndim == 3 and vertices.shape[-1] == 3:
        vertices = vertices.flatten(1)
    if vertices.ndim != 2 or vertices.shape[1] % 3:
        raise InputError(f"{name}: expected (T, V, 3) or (T, V*3), got shape {tuple(vertices.shape)}")
    if n_vertices is not None and vertices.shape[1] != 3 * n_vertices:
        raise InputError(f"{name}: {vertices.shape[1] // 3} vertices per frame, the critic expects {n_vertices}")
    if not torch.isfinite(vertices.detach()).all():
        raise InputError(f"{name}: holds NaN or inf values")
    return vertices


def _frame_token_encoder(model: torch.nn.Module) -> Any:
    """The critic's :class:`~p3d.models.mesh_encoder.MeshEncoder` when ``encode_mesh`` is exactly the
    stage-2 model's (``mesh_encoder.embed`` = standardise, per-frame ``patch_embed``, positions, encoder,
    pool), else None. Exact classes only: a subclass may change what a window's embedding is."""
    from p3d.models.mesh_encoder import MeshEncoder
    from p3d.models.speech_mesh import SpeechMeshModel

    encoder = getattr(model, "mesh_encoder", None)
    if type(encoder) is not MeshEncoder or type(model).encode_mesh is not SpeechMeshModel.encode_mesh:
        return None
    return encoder


class PerceptualLoss:
    """``L_percp`` of Eq. 6 with a frozen critic; ``loss = PerceptualLoss(critic)(pred, speech)``.

    Args:
        model: a critic with ``encode_speech`` / ``encode_mesh`` (L2-normalised outputs). It is
            frozen **in place** (``requires_grad_(False)``, ``eval()``) and must already be on the
            device of the vertices it will score.
        weight: multiplies the loss (official: 1e-7).
        batch_size: windows per contrastive batch (official: 80).
        temperature: tau (official: 0.07).
        share_frame_tokens: tokenize each frame once for all windows with a stage-2 mesh encoder
            (module docstring; False forces the generic per-window path, same value).
    """

    def __init__(self, model: torch.nn.Module, weight: float = DEFAULT_WEIGHT, batch_size: int = DEFAULT_BATCH_SIZE,
                 temperature: float = TEMPERATURE, share_frame_tokens: bool = True) -> None:
        batch_size = _whole(batch_size, "batch_size", 2, "windows per contrastive batch")
        self.model = model.eval().requires_grad_(False)
        self.weight = check_weight(weight)
        self.batch_size = batch_size
        self.temperature = check_temperature(temperature)
        self.share_frame_tokens = bool(share_frame_tokens)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def speech_embeddings(self, fbank_windows: Any, chunk: int = 256) -> torch.Tensor:
        """Embed a clip's speech windows once: (N, 20, 128) -> (N, D) (no graph). Reuse the result
        for every training step on that clip. ``chunk``: windows per encoder call (memory only; same values)."""
        chunk = _whole(chunk, "chunk", 1, "windows per encoder call")
        fb = fbank_windows_tensor(fbank_windows)
        self.model.eval()
        fb = fb.to(self.device)
        # outside any autocast (``--bf16`` covers the mesh pass only): the same embeddings as computed once and cached
        with without_autocast(fb.device.type):
            parts = [self.model.encode_speech(fb[i:i + chunk]) for i in range(0, fb.shape[0], chunk)]
        return torch.cat(parts) if parts else fb.new_zeros((0, 0))

    def unweighted(self, pred_vertices: Any, speech: Any) -> torch.Tensor:
        """Mean InfoNCE over the contrastive groups (no weight).

        Args:
            pred_vertices: (T, V, 3) or (T, V*3) generated sequence (keeps its autograd graph).
            speech: (N, D) speech embeddings (from :meth:`speech_embeddings`) or (N, 20, 128) fbank
                windows (embedded here); window ``i`` pairs with frames ``[i, i + 5)``.
        """
        speech_t = speech_tensor(speech)
        if speech_t.ndim == 3:
            speech_t = self.speech_embeddings(fbank_windows_tensor(speech_t, "speech"))
        verts = flat_vertices(pred_vertices, getattr(self.model, "n_vertices", None))
        dtype = next(self.model.parameters()).dtype
        if verts.dtype != dtype:  # e.g. a float64 talker scored by a float32 critic (a differentiable cast)
            verts = verts.to(dtype)
        n = min(speech_t.shape[0], verts.shape[0] - 4)
        groups = contrastive_groups(max(n, 0), self.batch_size)
        if not groups:
            raise InputError(f"pred_vertices / speech: {verts.shape[0]} frames and {speech_t.shape[0]} speech windows "
                             f"give {max(n, 0)} 5-frame windows; the contrastive loss needs at least 2")
        self.model.eval()
        speech_t = speech_t.to(device=verts.device, dtype=dtype)  # float64 embeddings: the critic's dtype, as verts
        mesh = self.mesh_embeddings(verts, n)
        if speech_t.shape[1] != mesh.shape[1]:
            raise InputError(f"speech: {speech_t.shape[1]}-dimensional embeddings, the critic's are {mesh.shape[1]}")
        losses = [info_nce(speech_t[a:b], mesh[a:b], self.temperature) for a, b in groups]
        return torch.stack(losses).mean()

    def mesh_embeddings(self, vertices: torch.Tensor, n_windows: int) -> torch.Tensor:
        """(T, V*3) validated vertices -> (n_windows, D) embeddings of the windows ``[i, i + 5)``, in one
        encoder call (frame tokens shared between windows where the critic allows it; module docstring)."""
        encoder = _frame_token_encoder(self.model) if self.share_frame_tokens else None
        if encoder is None:
            return self.model.encode_mesh(mesh_windows(vertices, n_windows))
        return encoder.embed_windows(vertices, n_windows)

    def weighted(self, unweighted: Any) -> Any:
        """``weight * unweighted``: an :meth:`unweighted` value (a tensor or a float) as the term added to the
        base model's loss (Eq. 6)."""
        return self.weight * unweighted

    def __call__(self, pred_vertices: Any, speech: Any) -> torch.Tensor:
        """``weight * unweighted(pred_vertices, speech)``: the term to add to the base model's loss."""
        return self.weighted(self.unweighted(pred_vertices, speech))
