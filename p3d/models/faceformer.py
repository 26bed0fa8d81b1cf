"""FaceFormer (Fan et al., CVPR 2022), as released in ``EvelynFan/FaceFormer`` and used by the paper.

One clip in, one vertex sequence out (batch size 1, as the official code; a
:class:`~p3d.models.talker.ClipBatch` of several clips is decoded together, :meth:`FaceFormer.forward_clips`):

1. **Audio**: an audio encoder (:mod:`p3d.models.audio_encoder`; wav2vec2 at the ``paper`` preset,
   a log-mel CNN at ``cpu``/``smoke``) gives one feature per mesh frame (linear interpolation to
   the frame count), mapped to ``d_model`` by a linear layer (``audio_feature_map``).
2. **Motion encoder**: ``Linear(V*3 -> d_model)`` of (vertices - template), plus the **style
   embedding** ``Linear(n_styles -> d_model, bias=False)`` of a one-hot over the training identities.
3. **Periodic positional encoding** (PPE): the sinusoid of positions ``0 .. p-1`` repeated with
   period ``p`` (30 at 30 fps, as the official VOCASET setting; 25 for BIWI).
4. **Biased causal self-attention** (the official ``init_biased_mask``): for head h with ALiBi slope
   ``m_h`` (1/4, 1/16, 1/64, 1/256 for 4 heads) the logit of query frame i on key frame j <= i gets
   ``-m_h * floor((i - j) / p)``; keys j > i are masked (-inf).
5. **Alignment mask** (official ``enc_dec_mask``): frame t attends to audio feature t only (VOCASET:
   the audio was interpolated to the frame count), or to the 50 Hz features 2t and 2t+1 (BIWI at
   25 fps, ``audio.features_per_frame = 2``).
6. One ``nn.TransformerDecoderLayer`` (4 heads, feed-forward 2 x d_model, post-norm, dropout 0.1),
   then ``Linear(d_model -> V*3)`` **initialised to zero** (so the first prediction is the template),
   plus the template.

**Autoregressive rollout** (``teacher_forcing=False``, what the official trainer and the paper's
perceptual-loss script run): the decoder input starts as the style embedding alone; each output frame is
re-encoded by the motion encoder (+ style) and appended as the next input; the gradient flows through the
fed-back predictions. The official loop re-decodes the whole prefix at every step (O(T^2)) and keeps the
outputs of its last pass; with the causal mask that equals decoding each new token once against cached
earlier layer inputs (:meth:`FaceFormer.rollout`, O(T); identical in eval mode, see its docstring for
dropout). With ``teacher_forcing=True`` the input is the
ground truth shifted by one frame (template first), one pass.

**Loss**: the official ``nn.MSELoss`` of the absolute vertices (mean over frames, vertices, xyz).

**Units** (``motion_scale``, not in the official code): the official model maps (vertices - template) in
metres straight to ``d_model`` and back, and its zero-initialised head learns displacements of a few
millimetres with lr 1e-4 over ~30k steps (100 epochs of VOCASET). At the ``cpu`` budget (a few hundred
steps) that parametrisation learns almost nothing on the synthetic corpus (metres): lr 1e-4 barely moves
the head, lr 1e-3 overshoots by an order of magnitude. With ``motion_scale = 1e-3`` the network works in
millimetres (the head's output is multiplied by 1e-3, the fed-back motion divided by it); the loss is
unchanged (MSE in the corpus' units). ``paper``: 1 (official); ``cpu``/``smoke``: 1e-3.

**Length**: the official code builds its PPE and bias tables for ``max_seq_len = 600`` frames (20 s at
30 fps) and fails beyond. Here both are built for the length needed (``periodic_encoding`` and
``biased_mask`` take the length), so any clip length works; within 600 frames the values equal the
official tables.
"""
from __future__ import annotations

import dataclasses
import torch
import torch.nn.functional as F
from torch import nn

from p3d.errors import InputError
from p3d.models.base import PresetConfig
from p3d.models.base import eval_mode
from p3d.models.audio_encoder import AudioEncoderConfig, build_audio_encoder, encode_clip, encode_clips
from p3d.models.decoding import (aligned_cross_attention, alibi_slopes, alignment_mask, biased_mask,
                                 cached_self_attention, periodic_encoding, post_norm_layer_step)
from p3d.models.talker import (ClipBatch, Talker, TalkerBatch, TalkerOutput, mean_over_clips, pad_sequences,
                               shared_audio)


@dataclasses.dataclass(frozen=True)
class FaceFormerConfig(PresetConfig):
    """FaceFormer hyper-parameters (official VOCASET values at ``paper``).

    Attributes:
        n_vertices, n_styles, fps: set from the training data (``from_preset(..., n_vertices=...)``).
        audio: the audio encoder (:class:`AudioEncoderConfig`).
        d_model: ``feature_dim`` (64 for VOCASET, 128 for BIWI).
        heads, layers, ff_mult, dropout: the decoder (4 heads, 1 layer, 2 x d_model, 0.1).
        period: PPE / temporal-bias period in frames; None: ``round(fps)`` (30 for VOCASET).
        teacher_forcing: train on shifted ground truth instead of the autoregressive rollout.
        motion_scale: units of the model's motion space in the corpus' units: the head's output is
            multiplied by it and the motion encoder's input divided by it (1: the official model; 1e-3:
            the network works in millimetres on a corpus in metres, see the module docstring).
    """

    n_vertices: int = 5023
    n_styles: int = 8
    fps: float = 30.0
    audio: AudioEncoderConfig = AudioEncoderConfig()
    d_model: int = 64
    heads: int = 4
    layers: int = 1
    ff_mult: int = 2
    dropout: float = 0.1
    period: int | None = None
    teacher_forcing: bool = False
    motion_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise InputError(f"FaceFormer: d_model {self.d_model} is not divisible by {self.heads} heads")
        if self.n_vertices < 1 or self.n_styles < 1:
            raise InputError(f"FaceFormer: needs n_vertices >= 1 and n_styles >= 1, got {self.n_vertices}, "
                             f"{self.n_styles}")

    @property
    def period_frames(self) -> int:
        return int(self.period) if self.period is not None else max(1, int(round(self.fps)))

    @staticmethod
    def presets() -> dict[str, FaceFormerConfig]:
        return {
            "paper": FaceFormerConfig(audio=AudioEncoderConfig.from_preset("paper")),
            "cpu": FaceFormerConfig(audio=AudioEncoderConfig.from_preset("cpu"), d_model=64, motion_scale=1e-3),
            "smoke": FaceFormerConfig(audio=AudioEncoderConfig.from_preset("smoke"), d_model=16, motion_scale=1e-3),
        }


class FaceFormer(Talker):
    """FaceFormer: ``forward(batch) -> TalkerOutput`` (training), ``predict(...)`` (autoregressive)."""

    kind = "faceformer"
    config_class = FaceFormerConfig

    def __init__(self, config: FaceFormerConfig, pretrained_audio: bool = True) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.audio_encoder = build_audio_encoder(config.audio, pretrained=pretrained_audio)
        self.per_frame = config.audio.features_per_frame
        self.audio_feature_map = nn.Linear(self.audio_encoder.dim // self.per_frame, d)
        self.vertice_map = nn.Linear(3 * config.n_vertices, d)
        self.obj_vector = nn.Linear(config.n_styles, d, bias=False)
        layer = nn.TransformerDecoderLayer(d, config.heads, config.ff_mult * d, dropout=config.dropout,
                                           batch_first=True)
        self.transformer_decoder = nn.TransformerDecoder(layer, config.layers)
        self.ppe_dropout = nn.Dropout(config.dropout)
        self.vertice_map_r = nn.Linear(d, 3 * config.n_vertices)
        nn.init.zeros_(self.vertice_map_r.weight)
        nn.init.zeros_(self.vertice_map_r.bias)

    @classmethod
    def _from_config(cls, config: FaceFormerConfig) -> FaceFormer:
        return cls(config, pretrained_audio=False)  # the checkpoint's state dict holds the weights

    # -- pieces ------------------------------------------------------------------------------------
    def style_embedding(self, style: int, device: torch.device) -> torch.Tensor:
        """(1, 1, d_model) embedding of the one-hot style ``style``."""
        self.check_style(style)
        one_hot = F.one_hot(torch.tensor([int(style)], device=device), self.n_styles).float()
        return self.obj_vector(one_hot)[:, None]

    def encode_audio(self, audio: torch.Tensor, n_frames: int, features: torch.Tensor | None = None) -> torch.Tensor:
        """(S,) 16 kHz -> (1, features_per_frame * n_frames, d_model) audio memory (``features``: the clip's
        cached audio front-end, :attr:`TalkerBatch.audio_features`)."""
        feats = encode_clip(self.audio_encoder, audio, n_frames, features)
        return self.audio_feature_map(feats.reshape(feats.shape[0], self.per_frame * n_frames, -1))

    def style_embeddings(self, styles: list[int], device: torch.device) -> torch.Tensor:
        """(B, 1, d_model) embeddings of B one-hot styles."""
        for style in styles:
            self.check_style(style)
        one_hot = F.one_hot(torch.tensor([int(s) for s in styles], device=device), self.n_styles).float()
        return self.obj_vector(one_hot)[:, None]

    def decode(self, inputs: torch.Tensor, memory: torch.Tensor,
               masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(1, L, d) motion tokens (before PPE), (1, T, d) audio -> (1, L, d) decoder output.

        ``masks``: (self-attention mask, alignment mask) built for at least L frames (:meth:`masks`);
        sliced to L here.
        """
        length = inputs.shape[1]
        tgt_full, memory_full = masks if masks is not None else self.masks(length, memory.shape[1], inputs.device)
        x = self.ppe_dropout(inputs + periodic_encoding(length, self.config.d_model,
                                                        self.config.period_frames).to(inputs.device))
        tgt_mask = tgt_full[:, :length, :length].repeat(inputs.shape[0], 1, 1)  # (B * heads, L, L)
        return self.transformer_decoder(x, memory, tgt_mask=tgt_mask, memory_mask=memory_full[:length])

    def masks(self, n_frames: int, n_audio: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The biased causal mask (heads, T, T) and the alignment mask (T, S) for ``n_frames`` frames."""
        return (biased_mask(self.config.heads, n_frames, self.config.period_frames).to(device),
                alignment_mask(n_frames, n_audio, self.per_frame).to(device))

    def rollout(self, memory: torch.Tensor, style: torch.Tensor, n_frames: int, fused: bool = False) -> torch.Tensor:
        """Autoregressive decoding: (B, n_frames, V*3) displacements (graph kept in training) of B clips'
        audio memories (B, S, d) and styles (B, 1, d).

        Batched: all clips advance one frame per decoder step. A clip shorter than ``n_frames`` (its memory
        zero-padded) keeps being decoded past its end; frame t depends only on frames <= t (causal mask)
        and on audio feature t (alignment mask), so its first frames are exactly those of the clip alone
        and the caller drops the rest.

        Incremental: each new frame's token runs through the decoder layers once, attending to the
        cached layer inputs of the earlier frames (their keys/values); earlier frames are not
        recomputed. With the causal mask this equals the official loop, which re-decodes the whole
        prefix at every step and keeps the last pass (exactly in eval mode, test
        ``test_rollout_feeds_back_its_own_predictions``; in training the official loop draws fresh
        dropout masks for the earlier frames at every step, here each frame's are drawn once). Cost
        O(T) decoder-layer calls of one query instead of O(T^2) token passes.

        ``fused``: the fed-back token ``vertice_map(vertice_map_r(x))`` is computed with the composed
        (d_model x d_model) map ``W_m W_r`` and bias ``W_m b_r + b_m`` (the same function, float32 rounding
        aside), and ``vertice_map_r`` runs once on all frames at the end: the per-frame work no longer
        touches the (V*3)-wide layers, which dominate the step at one query per frame (used by
        :meth:`forward_clips`; the single-clip path keeps the official order of operations).
        """
        tgt_full, memory_full = self.masks(n_frames, memory.shape[1], memory.device)
        ppe = periodic_encoding(n_frames, self.config.d_model, self.config.period_frames).to(memory.device)
        layers = self.transformer_decoder.layers
        cache: list[list[torch.Tensor]] = [[] for _ in layers]
        token, outputs = style, []
        if fused:
            w_r, b_r = self.vertice_map_r.weight, self.vertice_map_r.bias
            w_m, b_m = self.vertice_map.weight, self.vertice_map.bias
            feedback_w, feedback_b = w_m @ w_r, w_m @ b_r + b_m  # (d, d), (d,)
            if self.per_frame == 1 and not any(layer.norm_first for layer in layers):  # post-norm (official)
                return self._rollout_projected(memory, style, n_frames, ppe, tgt_full, feedback_w, feedback_b)
        for t in range(n_frames):
            x = self.ppe_dropout(token + ppe[t])
            row = tgt_full[:, t:t + 1, :t + 1]
            row = row.repeat(x.shape[0], 1, 1) if x.shape[0] > 1 else row  # (B * heads, 1, t + 1)
            for layer, past in zip(layers, cache):
                past.append(x)
                x = post_norm_layer_step(layer, x, torch.cat(past, dim=1), memory, row, memory_full[t:t + 1])
            if self.transformer_decoder.norm is not None:
                x = self.transformer_decoder.norm(x)
            if fused:
                outputs.append(x)
                token = F.linear(x, feedback_w, feedback_b) + style
                continue
            out = self.vertice_map_r(x)  # (1, 1, V*3) in model units
            outputs.append(out)
            token = self.vertice_map(out) + style
        if fused:
            return self.config.motion_scale * self.vertice_map_r(torch.cat(outputs, dim=1))
        return self.config.motion_scale * torch.cat(outputs, dim=1)

    def _rollout_projected(self, memory: torch.Tensor, style: torch.Tensor, n_frames: int, ppe: torch.Tensor,
                           tgt_full: torch.Tensor, feedback_w: torch.Tensor, feedback_b: torch.Tensor) -> torch.Tensor:
        """:meth:`rollout` with ``fused`` and one audio feature per frame: the same layers, computed with each
        token's keys/values projected once (:func:`~p3d.models.decoding.cached_self_attention`) and every frame's
        cross-attention output computed up front (:func:`p3d.models.decoding.aligned_cross_attention`), so a decoder
        step costs O(d^2 + t d) instead of re-projecting the prefix and the whole audio memory at every frame."""
        layers = self.transformer_decoder.layers
        training = self.training
        cross = [aligned_cross_attention(layer.multihead_attn, memory, training) for layer in layers]
        keys: list[list[torch.Tensor]] = [[] for _ in layers]
        values: list[list[torch.Tensor]] = [[] for _ in layers]
        token, outputs = style, []
        for t in range(n_frames):
            x = self.ppe_dropout(token + ppe[t])
            row = tgt_full[:, t:t + 1, :t + 1]
            for k, layer in enumerate(layers):
                h = cached_self_attention(layer.self_attn, x, keys[k], values[k], row, training)
                x = layer.norm1(x + layer.dropout1(h))
                x = layer.norm2(x + layer.dropout2(cross[k][:, t:t + 1]))
                h = layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))
                x = layer.norm3(x + layer.dropout3(h))
            if self.transformer_decoder.norm is not None:
                x = self.transformer_decoder.norm(x)
            outputs.append(x)
            token = F.linear(x, feedback_w, feedback_b) + style
        return self.config.motion_scale * self.vertice_map_r(torch.cat(outputs, dim=1))

    # -- Talker ------------------------------------------------------------------------------------
    def forward(self, batch: TalkerBatch | ClipBatch) -> TalkerOutput:
        """Training pass on one clip: MSE of the absolute vertices (official loss); a :class:`ClipBatch`:
        :meth:`forward_clips`."""
        if isinstance(batch, ClipBatch):
            return self.forward_clips(batch)
        self.check_clip(batch)
        n_frames = batch.n_frames
        template = batch.template.reshape(1, 1, -1)
        target = batch.vertices.reshape(1, n_frames, -1)
        memory = self.encode_audio(batch.audio, n_frames, batch.audio_features)
        style = self.style_embedding(batch.style, memory.device)
        if self.config.teacher_forcing:
            shifted = (torch.cat([template, target[:, :-1]], dim=1) - template) / self.config.motion_scale
            offsets = self.config.motion_scale * self.vertice_map_r(self.decode(self.vertice_map(shifted) + style,
                                                                                 memory))
        else:
            offsets = self.rollout(memory, style, n_frames)
        vertices = offsets + template
        loss = F.mse_loss(vertices, target)
        return TalkerOutput(loss=loss, logs={"mse": float(loss.detach())},
                            vertices=vertices.reshape(n_frames, self.n_vertices, 3))

    def forward_clips(self, batch: ClipBatch) -> TalkerOutput:
        """B clips in one pass (audio encoder, decoder and rollout batched, padded to the longest clip); each
        clip's MSE on its own frames, as :meth:`forward` on it alone; the loss is their mean over clips."""
        clips = batch.clips
        for clip in clips:
            self.check_clip(clip)
        lengths = [c.n_frames for c in clips]
        longest = max(lengths)
        feats = encode_clips(self.audio_encoder, [c.audio for c in clips], lengths,
                             [c.audio_features for c in clips])  # (B, per_frame * T_max, dim), zero-padded
        memory = self.audio_feature_map(feats.reshape(len(clips), self.per_frame * longest, -1))
        style = self.style_embeddings([c.style for c in clips], memory.device)
        templates = torch.stack([c.template.reshape(1, -1) for c in clips])  # (B, 1, V*3)
        if self.config.teacher_forcing:
            target, _ = pad_sequences([c.vertices.reshape(c.n_frames, -1) for c in clips])
            shifted = (torch.cat([templates, target[:, :-1]], dim=1) - templates) / self.config.motion_scale
            offsets = self.config.motion_scale * self.vertice_map_r(self.decode(self.vertice_map(shifted) + style,
                                                                                 memory))
        else:
            offsets = self.rollout(memory, style, longest, fused=True)
        losses, logs, vertices = [], [], []
        for b, clip in enumerate(clips):
            t = lengths[b]
            pred = (offsets[b, :t] + templates[b]).reshape(t, self.n_vertices, 3)
            loss = F.mse_loss(pred, clip.vertices)
            losses.append(loss)
            logs.append({"mse": float(loss.detach())})
            vertices.append(pred)
        return mean_over_clips(losses, logs, vertices)

    @torch.no_grad()
    def predict(self, audio: torch.Tensor, template: torch.Tensor, style: int, n_frames: int) -> torch.Tensor:
        """(S,) audio, (V, 3) template, style index -> (n_frames, V, 3), autoregressive, eval mode."""
        self.check_inputs(audio, template, style)
        n_frames = self.check_n_frames(n_frames)
        with eval_mode(self):
            memory = self.encode_audio(audio, n_frames)
            offsets = self.rollout(memory, self.style_embedding(style, memory.device), n_frames)
        return (offsets + template.reshape(1, 1, -1))[0].reshape(n_frames, self.n_vertices, 3)

    @torch.no_grad()
    def predict_batch(self, audios: list[torch.Tensor], templates: list[torch.Tensor], styles: list[int],
                      n_frames: list[int]) -> list[torch.Tensor]:
        """B predictions in one autoregressive rollout (eval mode): item b's (n_frames[b], V, 3), as :meth:`predict`.

        The audio encoder runs once per distinct audio tensor (one clip under several styles) and batched
        (:func:`~p3d.models.audio_encoder.encode_clips`); the rollout advances every item one frame per step
        (:meth:`rollout` with ``fused``, as training: the fed-back token through the composed map, so float32
        rounding differs from :meth:`predict`'s official order of operations, not the function). A shorter item
        is decoded past its end on zero-padded audio and cut; the causal and alignment masks keep its frames
        from seeing the padding or its batch mates.
        """
        n_frames = self.check_prediction_batch(audios, templates, styles, n_frames)
        longest = max(n_frames)
        with eval_mode(self):
            unique, inverse = shared_audio(audios, n_frames)
            feats = encode_clips(self.audio_encoder, [audios[u] for u in unique], [n_frames[u] for u in unique])
            memory = self.audio_feature_map(feats.reshape(len(unique), self.per_frame * longest, -1))
            memory = memory[inverse.to(memory.device)]
            offsets = self.rollout(memory, self.style_embeddings(list(styles), memory.device), longest, fused=True)
        return [(offsets[b, :t] + tpl.reshape(1, -1)).reshape(t, self.n_vertices, 3)
                for b, (tpl, t) in enumerate(zip(templates, n_frames))]


# alibi_slopes, alignment_mask, biased_mask and periodic_encoding live in p3d.models.decoding (shared with
# CodeTalker) and stay importable from here.
__all__ = ["FaceFormer", "FaceFormerConfig", "alibi_slopes", "alignment_mask", "biased_mask", "periodic_encoding"]
