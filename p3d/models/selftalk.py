"""SelfTalk (Peng et al., ACM MM 2023, arXiv 2306.10799): a non-autoregressive facial animator
trained with a lip-reading interpreter (CTC), one of the three baselines of the paper's Tables 2-4.

Modules (official ``psyai-net/SelfTalk_release@f9b5e0a``, ``SelfTalk.py`` / ``main.py``; see
``anchors.md`` §2.3):

- **facial animator** :class:`Animator`: audio encoder (:mod:`p3d.models.audio_encoder`; officially
  ``wav2vec2-large-xlsr-53-english``, 1024-d, CNN frozen) -> ``Linear(audio dim -> D)`` -> one
  ``nn.TransformerDecoderLayer`` (4 heads, feed-forward 2 D, post-norm, dropout 0.1) with the audio
  features as **both** target and memory, no causal mask, no positional encoding -> zero-initialised
  ``Linear(D -> V*3)`` = vertices - template; + template = absolute vertices. D = 512 (VOCASET).
  Non-autoregressive: one pass for any length, no 600-frame limit.
- **speech recogniser**: a frozen CTC ASR (officially ``Wav2Vec2ForCTC``, same checkpoint); supplied
  by the caller (:meth:`SelfTalk.set_recogniser`; :class:`CTCRecogniser` reads a local folder), never
  part of the checkpoint.
- **lip-reading interpreter** :class:`LipReadingInterpreter`: lip-region motion (vertices - template
  on ``lip_indices``, FLAME's 254-entry ``lips`` list officially; the whole mesh when none is given)
  -> ``Linear(3 L -> 1024)`` -> linear interpolation from ``fps`` to the ASR rate (50 Hz) ->
  ``nn.Transformer(d_model=1024)`` (6 + 6 layers, 8 heads, ff 2048, dropout 0.1) with the same
  sequence as source and target -> ``lm_head Linear(1024 -> 33)`` per-frame token logits.

Loss (official ``main.py``; raw terms are logged unweighted, as the official progress bar)::

    loss = w_rec MSE(V_hat, V) + w_vel MSE(dV_hat, dV)            (reconstruction, velocity)
         + w_feat MSE(F_lip(V_hat), H_asr)                        (lip features vs ASR hidden states)
         + w_ctc CTC(interpreter(V_hat), y)                      (lip reading of the animator's output)
         + w_ctc_gt CTC(interpreter(V), y)                        (lip reading of the ground truth)

with official weights w_rec = w_vel = 1000, w_feat = 0.001, w_ctc = 0.0001 (``torch.mean(1000 *
loss1 + 1000 * loss2 + 0.001 * loss3 + 0.0001 * loss4)``), CTC blank 0, reduction "mean",
``zero_infinity=True``; Adam lr 1e-4, 100 epochs, batch 1 (the trainer's recipe, not this module).
The interpreter is trained **only** through the animator's output in the official code (it computes
``lip_gt`` but never uses it; issue #9 asks whether it should have been the transformer's second
input). ``w_ctc_gt`` (interpreter trained on ground-truth meshes too) is p3d's addition, requested for
the synthetic corpus where the interpreter has no pretrained ASR to distil from: 0 at ``paper``
(official), 1e-4 (= w_ctc, our choice, not tuned) at ``cpu``/``smoke``.

CTC targets ``y`` (``targets``):

- ``"labels"`` (synthetic corpora): the clip's frame labels ``batch.phonemes`` (T,) at the model fps
  -> tokens via ``label_to_token`` (identity when empty) -> runs of equal tokens collapsed -> token 0
  dropped (:func:`ctc_targets`). Token 0 is both silence and the CTC blank. :func:`token_map` builds
  ``label_to_token`` from the corpus inventory ``meta["phonemes"]`` (148 espeak-ng symbols, 0 = ``_``):
  ``unit="viseme"`` (the default at cpu/smoke, vocabulary 15) maps each phoneme to its viseme
  (:data:`p3d.phonemes.VISEMES`, ``sil`` = 0), because phonemes of one viseme (/p b m/) look
  alike on the lips and no lip reader can separate them; ``unit="phoneme"`` keeps phonemes
  (vocabulary = inventory size) with every pause-like symbol mapped to 0. Collapsing after the
  mapping merges neighbours of one viseme (/b m/ -> one PP), which the lips cannot show apart either.
- ``"asr"`` (real data): the recogniser's greedy decoding of its own logits, as the official round trip:
  argmax, ``batch_decode`` to text (collapse, drop blank 0, word delimiters to spaces, the text stripped),
  and the text tokenized again (:meth:`CTCRecogniser.targets`; a leading or trailing word delimiter is
  dropped, which collapsing alone keeps). A recogniser folder without its tokenizer (``vocab.json``) falls
  back to collapse and drop blank 0 (:func:`ctc_targets`), with a warning. Its hidden states feed the feature
  term; the interpreter output is interpolated to the recogniser's frame count (official).

Clips without targets (``targets="labels"`` and ``batch.phonemes is None``) train on the
reconstruction and velocity terms only; the lip-reading terms are logged as NaN and ``lipread`` = 0.

p3d deviations, all in the config (the ``paper`` preset has none of them):

- ``style_embedding``: a FaceFormer-style ``Linear(n_styles -> D, bias=False)`` of the one-hot training
  identity added to every token (the official SelfTalk has no style input); on at cpu/smoke.
- ``w_ctc_gt``: above.
- ``interp_input_scale``: the interpreter reads ``scale * (vertices - template)``; 1 officially, 1000
  (millimetres) at cpu/smoke. In a cpu-preset sanity run on a smoke synth-voca corpus (8 clips, lip
  motion std ~2 mm, Adam 1e-3) the ground-truth CTC was still on the all-blank plateau at step 240
  in metres (2.51) but had begun to fall in millimetres (2.25; 1.65 at step 600).

BIWI (official): ``audio.features_per_frame = 2`` pairs wav2vec2's 50 Hz features into one 2048-d
feature per 25 fps frame (the ``audio_map`` then reads 2 x hidden), as the official ``predict`` and
``inputRepresentationAdjustment``; the official released checkpoints load with
:func:`p3d.models.official_baselines.load_official`. Units: vertices in the corpus' units (metres for
FLAME and the synthetic corpora), as the official weights assume.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from p3d.errors import InputError
from p3d.models.base import PresetConfig
from p3d.models.base import eval_mode
from p3d.models.audio_encoder import AudioEncoderConfig, build_audio_encoder, encode_clip, encode_clips
from p3d.models.talker import (ClipBatch, Talker, TalkerBatch, TalkerOutput, length_mask, masked_mean,
                               mean_over_clips, pad_sequences, shared_audio)

log = logging.getLogger(__name__)

TARGETS = ("labels", "asr")
BLANK = 0

#: Recogniser interface: ``asr(audio (1, S) float32 at 16 kHz) -> (hidden (1, N, H), logits (1, N, C))``.
Recogniser = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclasses.dataclass(frozen=True)
class SelfTalkConfig(PresetConfig):
    """SelfTalk hyper-parameters (defaults = the official VOCASET settings, i.e. the ``paper`` preset).

    Animator: ``dim`` (feature_dim), ``heads``, ``layers``, ``ff_mult`` (feed-forward = ff_mult * dim),
    ``dropout``. Interpreter: ``lip_indices`` (empty = whole mesh), ``interp_dim``, ``interp_heads``,
    ``interp_encoder_layers``, ``interp_decoder_layers``, ``interp_ff``, ``interp_dropout``, ``ctc_rate``
    (Hz of the interpreter's frames with label targets), ``vocab_size`` (tokens incl. blank 0),
    ``targets`` and ``label_to_token`` (module docstring). Loss weights ``w_*`` (module docstring).
    ``audio``: at ``paper`` set ``wav2vec2_path`` to a local copy of the official
    ``wav2vec2-large-xlsr-53-english`` (hidden 1024; the interpreter's 1024 matches the recogniser's).
    With ``targets="labels"``, ``label_to_token`` must cover the corpus' label ids (:func:`token_map`).
    """

    n_vertices: int = 5023
    n_styles: int = 8
    fps: float = 30.0
    audio: AudioEncoderConfig = AudioEncoderConfig()
    dim: int = 512
    heads: int = 4
    layers: int = 1
    ff_mult: int = 2
    dropout: float = 0.1
    style_embedding: bool = False
    lip_indices: tuple[int, ...] = ()
    interp_dim: int = 1024
    interp_heads: int = 8
    interp_encoder_layers: int = 6
    interp_decoder_layers: int = 6
    interp_ff: int = 2048
    interp_dropout: float = 0.1
    interp_input_scale: float = 1.0
    ctc_rate: float = 50.0
    vocab_size: int = 33
    targets: str = "asr"
    label_to_token: tuple[int, ...] = ()
    w_rec: float = 1000.0
    w_vel: float = 1000.0
    w_feat: float = 1e-3
    w_ctc: float = 1e-4
    w_ctc_gt: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lip_indices", tuple(int(i) for i in self.lip_indices))
        object.__setattr__(self, "label_to_token", tuple(int(i) for i in self.label_to_token))
        if self.n_vertices < 1 or self.n_styles < 1 or not self.fps > 0:
            raise InputError(f"SelfTalkConfig: n_vertices, n_styles and fps must be positive, got "
                             f"{self.n_vertices}, {self.n_styles}, {self.fps}")
        if self.dim % self.heads or self.interp_dim % self.interp_heads:
            raise InputError(f"SelfTalkConfig: dim {self.dim} / interp_dim {self.interp_dim} must be divisible by "
                             f"heads {self.heads} / interp_heads {self.interp_heads}")
        if self.targets not in TARGETS:
            raise InputError(f"SelfTalkConfig: targets must be one of {TARGETS}, got {self.targets!r}")
        bad = [i for i in self.lip_indices if not 0 <= i < self.n_vertices]
        if bad:
            raise InputError(f"SelfTalkConfig: lip_indices {bad[:5]} out of range for {self.n_vertices} vertices")
        bad = [t for t in self.label_to_token if not 0 <= t < self.vocab_size]
        if bad:
            raise InputError(f"SelfTalkConfig: label_to_token has tokens {sorted(set(bad))[:5]} outside the "
                             f"vocabulary of {self.vocab_size}")
        if self.vocab_size < 2:
            raise InputError(f"SelfTalkConfig: vocab_size must be >= 2 (blank + a token), got {self.vocab_size}")
        if self.ctc_rate < self.fps:
            raise InputError(f"SelfTalkConfig: ctc_rate {self.ctc_rate} Hz must be >= fps {self.fps}")

    @property
    def n_lip(self) -> int:
        """Vertices the interpreter reads (the lip region, or the whole mesh)."""
        return len(self.lip_indices) or self.n_vertices

    @staticmethod
    def presets() -> dict[str, SelfTalkConfig]:
        """``paper``: the official VOCASET model (ASR targets, no style, no ground-truth CTC term).
        ``cpu`` / ``smoke``: small; label targets over 15 visemes, style one-hot, w_ctc_gt = w_ctc, the
        interpreter reading millimetres. Set n_vertices, n_styles, fps, lip_indices, label_to_token
        from the training corpus."""
        labels = dict(targets="labels", vocab_size=15, style_embedding=True, w_ctc_gt=1e-4, interp_input_scale=1000.0)
        return {
            "paper": SelfTalkConfig(audio=AudioEncoderConfig.from_preset("paper")),
            "cpu": SelfTalkConfig(
                audio=AudioEncoderConfig.from_preset("cpu"), dim=64,
                interp_dim=64, interp_heads=4, interp_encoder_layers=2, interp_decoder_layers=2, interp_ff=128,
                **labels),
            "smoke": SelfTalkConfig(
                audio=AudioEncoderConfig.from_preset("smoke"), dim=16, heads=2, dropout=0.0,
                interp_dim=16, interp_heads=2, interp_encoder_layers=1, interp_decoder_layers=1, interp_ff=32,
                interp_dropout=0.0, **labels),
        }


# -- CTC targets -----------------------------------------------------------------------------------

def ctc_targets(tokens: torch.Tensor, blank: int = BLANK) -> torch.Tensor:
    """CTC target sequence of per-frame tokens: collapse runs of equal tokens, drop ``blank``.

    (T,) integer -> (L,) int64, L <= T. Example: ``[0 0 3 3 0 3 5 5 0] -> [3 3 5]`` (a blank between
    two runs of 3 keeps both). Also the greedy decoding of CTC argmax paths.
    """
    runs = torch.unique_consecutive(tokens.reshape(-1).long())
    return runs[runs != blank]


def token_map(phonemes: Sequence[str], unit: str = "viseme") -> tuple[int, ...]:
    """``label_to_token`` for a corpus phoneme inventory (``corpus.meta["phonemes"]``, 0 = ``_``).

    ``unit="viseme"``: token = viseme index in :data:`p3d.phonemes.VISEMES` (15 tokens,
    ``sil`` = 0 = blank). ``unit="phoneme"``: token = the phoneme's own index, 0 for every pause-like
    symbol (viseme ``sil``); vocabulary = ``len(phonemes)``. Use :func:`vocabulary_size` for the size.
    """
    from p3d.phonemes import VISEME_INDEX, viseme_of

    if unit not in ("viseme", "phoneme"):
        raise InputError(f"token_map: unit must be 'viseme' or 'phoneme', got {unit!r}")
    visemes = [VISEME_INDEX[viseme_of(p)] for p in phonemes]
    if unit == "viseme":
        return tuple(visemes)
    return tuple(0 if v == VISEME_INDEX["sil"] else i for i, v in enumerate(visemes))


def vocabulary_size(phonemes: Sequence[str], unit: str = "viseme") -> int:
    """CTC vocabulary (blank included) of :func:`token_map` with the same arguments."""
    from p3d.phonemes import VISEMES

    return len(VISEMES) if unit == "viseme" else len(phonemes)


def interpolate_frames(x: torch.Tensor, n_out: int) -> torch.Tensor:
    """Linear interpolation along time, (B, T, D) -> (B, n_out, D) (``align_corners=True``, official)."""
    if x.shape[1] == n_out:
        return x
    return F.interpolate(x.transpose(1, 2), size=n_out, mode="linear", align_corners=True).transpose(1, 2)


def interpolate_clips(x: torch.Tensor, lengths: torch.Tensor, n_out: torch.Tensor) -> torch.Tensor:
    """Padded clips (B, T_max, D) of ``lengths`` (B,) -> (B, max n_out, D): clip b's first ``n_out[b]`` rows as
    :func:`interpolate_frames` of its first ``lengths[b]`` frames (the same linear weights, ``align_corners=True``:
    source position ``i (T_b - 1) / (n_b - 1)``), zeros after them."""
    lengths, n_out = lengths.to(x.device), n_out.to(x.device)
    n_max = int(n_out.max())
    rows = torch.arange(n_max, device=x.device)
    scale = ((lengths - 1).to(x.dtype) / (n_out - 1).clamp(min=1).to(x.dtype)).masked_fill(n_out <= 1, 0.0)
    src = scale[:, None] * rows[None].to(x.dtype)  # (B, N)
    last = (lengths - 1)[:, None]
    i0 = torch.minimum(src.long(), last)
    i1 = torch.minimum(i0 + 1, last)
    w1 = (src - i0.to(x.dtype)).clamp(0.0, 1.0)[..., None]
    x0 = x.gather(1, i0[..., None].expand(-1, -1, x.shape[-1]))
    x1 = x.gather(1, i1[..., None].expand(-1, -1, x.shape[-1]))
    out = (1.0 - w1) * x0 + w1 * x1
    return out * (rows[None] < n_out[:, None])[..., None].to(x.dtype)


# -- modules ---------------------------------------------------------------------------------------

class Animator(nn.Module):
    """Audio (B, S) at 16 kHz -> motion (B, T, V, 3) = vertices - template, in one pass."""

    def __init__(self, config: SelfTalkConfig, pretrained_audio: bool = True) -> None:
        super().__init__()
        c = config
        self.config = c
        self.audio_encoder = build_audio_encoder(c.audio, pretrained=pretrained_audio)
        self.audio_map = nn.Linear(self.audio_encoder.dim, c.dim)  # official audio_feature_map
        self.style = nn.Linear(c.n_styles, c.dim, bias=False) if c.style_embedding else None
        layer = nn.TransformerDecoderLayer(c.dim, c.heads, dim_feedforward=c.ff_mult * c.dim, dropout=c.dropout,
                                           batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, num_layers=c.layers)
        self.head = nn.Linear(c.dim, 3 * c.n_vertices)
        nn.init.zeros_(self.head.weight)  # starts at the template (official)
        nn.init.zeros_(self.head.bias)

    def forward(self, audio: torch.Tensor, style: torch.Tensor, n_frames: int,
                features: torch.Tensor | None = None) -> torch.Tensor:
        """audio (B, S), style (B,) long, n_frames -> motion (B, n_frames, V, 3) (``features``: one clip's cached
        audio front-end, B = 1)."""
        feats = self.audio_encoder(audio, n_frames) if features is None else \
            encode_clip(self.audio_encoder, audio[0], n_frames, features)
        return self._decode(feats, style, None)

    def _decode(self, feats: torch.Tensor, style: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        x = self.audio_map(feats)  # (B, T, D)
        if self.style is not None:
            one_hot = F.one_hot(style, self.config.n_styles).to(x.dtype)
            x = x + self.style(one_hot)[:, None]
        if valid is None:
            x = self.decoder(x, x)  # audio features as target and memory, no mask (official)
        else:  # padded clips: a clip's frames attend to its own frames only
            x = self.decoder(x, x, tgt_key_padding_mask=~valid, memory_key_padding_mask=~valid)
        return self.head(x).view(x.shape[0], x.shape[1], self.config.n_vertices, 3)

    def forward_clips(self, audios: list[torch.Tensor], style: torch.Tensor, n_frames: list[int],
                      features: list[torch.Tensor | None]) -> torch.Tensor:
        """B clips: (B, max n_frames, V, 3), clip b's first ``n_frames[b]`` frames as :meth:`forward` on it alone."""
        feats = encode_clips(self.audio_encoder, audios, n_frames, features)
        valid = length_mask(torch.tensor(n_frames, device=feats.device), feats.shape[1])
        return self._decode(feats, style, valid)


class LipReadingInterpreter(nn.Module):
    """Lip motion (B, T, V, 3) -> (features (B, N, D_i), token logits (B, N, vocab)) at N frames."""

    def __init__(self, config: SelfTalkConfig) -> None:
        super().__init__()
        c = config
        self.register_buffer("lip_indices", torch.tensor(c.lip_indices, dtype=torch.long), persistent=False)
        self.input_scale = c.interp_input_scale
        self.lip_map = nn.Linear(3 * c.n_lip, c.interp_dim)
        self.transformer = nn.Transformer(c.interp_dim, c.interp_heads, c.interp_encoder_layers,
                                          c.interp_decoder_layers, c.interp_ff, c.interp_dropout, batch_first=True)
        self.lm_head = nn.Linear(c.interp_dim, c.vocab_size)

    def forward(self, motion: torch.Tensor, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.lip_indices.numel():
            motion = motion[:, :, self.lip_indices]
        x = interpolate_frames(self.lip_map(self.input_scale * motion.flatten(2)), n_out)  # (B, N, D_i)
        features = self.transformer(x, x)  # the same sequence as source and target (official)
        return features, self.lm_head(features)

    def forward_clips(self, motions: list[torch.Tensor], n_out: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """B clips' motions (T_b, V, 3) -> padded (B, max n_out, D_i) features and logits, clip b's first
        ``n_out[b]`` rows as :meth:`forward` on it alone (the padding masked in every attention)."""
        padded, lengths = pad_sequences(motions)  # (B, T_max, V, 3)
        if self.lip_indices.numel():
            padded = padded[:, :, self.lip_indices]
        n = torch.tensor(n_out, device=padded.device)
        x = interpolate_clips(self.lip_map(self.input_scale * padded.flatten(2)), lengths, n)
        pad = ~length_mask(n, x.shape[1])
        features = self.transformer(x, x, src_key_padding_mask=pad, tgt_key_padding_mask=pad,
                                    memory_key_padding_mask=pad)
        return features, self.lm_head(features)


def _ctc_clips(logits: torch.Tensor, targets: list[torch.Tensor], n_frames: list[int]) -> torch.Tensor:
    """CTC of K clips at once: padded logits (K, N_max, C), targets (L_k,), the clips' frame counts N_k -> (K,),
    clip k's value :func:`_ctc` of ``logits[k:k+1, :N_k]`` and its target (the same per-clip mean over target
    length)."""
    log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (N_max, K, C)
    target_lengths = torch.tensor([t.numel() for t in targets])
    losses = F.ctc_loss(log_probs, torch.cat(targets).long(), torch.tensor(n_frames), target_lengths, blank=BLANK,
                        reduction="none", zero_infinity=True)
    return losses / target_lengths.clamp(min=1).to(losses.device, losses.dtype)


def _ctc(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CTC of one clip's logits (1, N, C) against a (L,) target (blank 0, mean over target length)."""
    log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (N, 1, C)
    return F.ctc_loss(log_probs, target[None], torch.tensor([log_probs.shape[0]]), torch.tensor([target.numel()]),
                      blank=BLANK, reduction="mean", zero_infinity=True)


class CTCRecogniser(nn.Module):
    """The frozen speech recogniser of ``targets="asr"``: a local ``transformers.Wav2Vec2ForCTC`` folder
    (officially ``jonatasgrosman/wav2vec2-large-xlsr-53-english``: 1024-d hidden states, 33 tokens,
    blank = ``<pad>`` = 0), read with ``local_files_only`` (nothing is downloaded).

    ``recogniser(audio (1, S) 16 kHz) -> (hidden (1, N, H), logits (1, N, C))`` at 50 Hz: the last
    hidden state of ``wav2vec2`` and ``lm_head`` of it, as the official subclass. The waveform is
    normalised per utterance (``Wav2Vec2Processor``'s ``do_normalize``: the population variance). Always in
    eval mode (the official module follows ``model.train()``, so its targets see dropout and time masking;
    here they are deterministic).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        folder = os.fspath(path)
        if not os.path.isfile(os.path.join(folder, "config.json")):
            raise InputError(f"recogniser {folder}: not a local Wav2Vec2ForCTC folder (needs config.json and "
                             f"weights, the layout of save_pretrained); nothing is downloaded")
        from transformers import Wav2Vec2ForCTC

        try:
            self.model = Wav2Vec2ForCTC.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"recogniser {folder}: cannot load a Wav2Vec2ForCTC model "
                             f"({type(exc).__name__}: {exc})") from None
        if self.model.config.pad_token_id not in (None, BLANK):
            raise InputError(f"recogniser {folder}: its CTC blank (pad_token_id) is "
                             f"{self.model.config.pad_token_id}, SelfTalk's CTC uses blank {BLANK}")
        self.hidden_size = int(self.model.config.hidden_size)
        self.vocab_size = int(self.model.config.vocab_size)
        self.tokenizer = None
        if os.path.isfile(os.path.join(folder, "vocab.json")):
            from transformers import Wav2Vec2CTCTokenizer

            self.tokenizer = Wav2Vec2CTCTokenizer.from_pretrained(folder, local_files_only=True)
        else:
            log.warning("recogniser %s: no tokenizer (vocab.json); CTC targets collapse the greedy path without the "
                        "official decode / tokenize round trip (word delimiters at the ends are kept)", folder)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> CTCRecogniser:
        return super().train(False)

    def targets(self, greedy: torch.Tensor) -> torch.Tensor:
        """The CTC target of a greedy path ``greedy`` (N,) token ids, as the official code makes it:
        ``processor.batch_decode`` to text, then the tokenizer's ids of that text (module docstring)."""
        if self.tokenizer is None:
            return ctc_targets(greedy)
        text = self.tokenizer.decode(greedy.tolist())
        return torch.tensor(self.tokenizer(text).input_ids, dtype=torch.long)

    @torch.no_grad()
    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        audio = audio.float()
        var = audio.var(dim=1, keepdim=True, unbiased=False)
        audio = (audio - audio.mean(dim=1, keepdim=True)) / torch.sqrt(var + 1e-7)
        hidden = self.model.wav2vec2(audio).last_hidden_state
        return hidden, self.model.lm_head(hidden)


class SelfTalk(Talker):
    """SelfTalk: :class:`Animator` + :class:`LipReadingInterpreter` (+ a caller-supplied frozen ASR)."""

    kind = "selftalk"
    config_class = SelfTalkConfig

    def __init__(self, config: SelfTalkConfig, recogniser: Recogniser | None = None,
                 pretrained_audio: bool = True) -> None:
        super().__init__()
        self.config = config
        self.animator = Animator(config, pretrained_audio=pretrained_audio)
        self.interpreter = LipReadingInterpreter(self.config)
        self._recogniser: Recogniser | None = None
        self._warned_skip = False
        if recogniser is not None:
            self.set_recogniser(recogniser)

    @classmethod
    def _from_config(cls, config: SelfTalkConfig) -> SelfTalk:
        return cls(config, pretrained_audio=False)  # the checkpoint's state dict holds the weights

    def set_recogniser(self, recogniser: Recogniser | None) -> None:
        """Attach the frozen CTC speech recogniser for ``targets="asr"`` (kept out of the state dict;
        the caller moves it to the model's device). ``recogniser(audio (1, S) 16 kHz) -> (hidden
        (1, N, H), logits (1, N, vocab_size))``; H must equal ``interp_dim`` for the feature term."""
        if isinstance(recogniser, nn.Module):
            recogniser.requires_grad_(False).eval()
        object.__setattr__(self, "_recogniser", recogniser)  # plain attribute: not a submodule

    # -- input checks ------------------------------------------------------------------------------

    def check_clip(self, batch: TalkerBatch) -> torch.Tensor:
        """:meth:`Talker.check_clip` plus the frame phoneme labels (one integer label per frame, in the range
        of ``label_to_token`` / ``vocab_size``) when the clip has them."""
        v = super().check_clip(batch)
        p = batch.phonemes
        if p is not None:
            if p.ndim != 1 or p.shape[0] != v.shape[0]:
                raise InputError(f"{batch.stem or 'batch'}: phonemes must be ({v.shape[0]},) frame labels, one per "
                                 f"vertex frame, got {tuple(p.shape)}")
            if p.dtype.is_floating_point or p.dtype == torch.bool:
                raise InputError(f"{batch.stem or 'batch'}: phonemes must be integer labels, got {p.dtype}")
            n_labels = len(self.config.label_to_token) or self.config.vocab_size
            if p.numel() and (int(p.min()) < 0 or int(p.max()) >= n_labels):
                raise InputError(f"{batch.stem or 'batch'}: phoneme labels span [{int(p.min())}, {int(p.max())}] but "
                                 f"label_to_token/vocab_size covers [0, {n_labels}); set label_to_token "
                                 f"(selftalk.token_map(corpus.meta['phonemes']))")
        return v

    # -- targets -----------------------------------------------------------------------------------

    def label_targets(self, phonemes: torch.Tensor) -> torch.Tensor:
        """Frame labels (T,) -> CTC target (L,): ``label_to_token`` then :func:`ctc_targets`."""
        tokens = phonemes.long()
        if self.config.label_to_token:
            tokens = torch.tensor(self.config.label_to_token, device=tokens.device)[tokens]
        return ctc_targets(tokens)

    def _targets(self, batch: TalkerBatch, n_frames: int
                 ) -> tuple[torch.Tensor, int, torch.Tensor | None] | None:
        """(CTC target (L,), interpreter frames N, ASR hidden states (1, N, H) or None), or None (skip)."""
        c = self.config
        if c.targets == "asr":
            if self._recogniser is None:
                raise InputError("SelfTalk: targets='asr' needs a speech recogniser (SelfTalk.set_recogniser); "
                                 "use targets='labels' with phoneme labels otherwise")
            with torch.no_grad():
                hidden, logits = self._recogniser(batch.audio[None])
            if logits.ndim != 3 or logits.shape[-1] != c.vocab_size:
                raise InputError(f"recogniser: logits must be (1, N, {c.vocab_size}), got {tuple(logits.shape)}")
            if hidden.shape[:2] != logits.shape[:2]:
                raise InputError(f"recogniser: hidden states {tuple(hidden.shape)} and logits "
                                 f"{tuple(logits.shape)} disagree in length")
            if c.w_feat and hidden.shape[-1] != c.interp_dim:
                raise InputError(f"recogniser: hidden size {hidden.shape[-1]} != interp_dim {c.interp_dim} "
                                 f"(the feature term compares them directly, as the official code)")
            greedy = logits[0].argmax(-1)
            target = self._recogniser.targets(greedy) if hasattr(self._recogniser, "targets") else ctc_targets(greedy)
            return target, int(logits.shape[1]), hidden.detach()
        if batch.phonemes is None:
            if not self._warned_skip:
                log.warning("SelfTalk: %s has no phoneme labels and no recogniser is used; lip-reading terms "
                            "skipped (reconstruction + velocity only)", batch.stem or "clip")
                self._warned_skip = True
            return None
        n_ctc = max(n_frames, int(round(n_frames * c.ctc_rate / c.fps)))
        return self.label_targets(batch.phonemes), n_ctc, None

    # -- training and inference --------------------------------------------------------------------

    def forward(self, batch: TalkerBatch | ClipBatch) -> TalkerOutput:
        """Training pass on one clip (module docstring: loss terms and weights).

        Returns the weighted total, logs ``loss`` (weighted total), ``rec vel feat ctc ctc_gt``
        (unweighted terms; NaN when not computed), ``lipread`` (1 when the lip-reading terms were
        computed, else 0) and ``target_len`` (CTC target tokens), and the predicted absolute vertices
        (T, V, 3) with their graph.
        """
        if isinstance(batch, ClipBatch):
            return self.forward_clips(batch)
        self.check_clip(batch)
        c = self.config
        gt, template = batch.vertices, batch.template
        n_frames = gt.shape[0]
        style = torch.tensor([int(batch.style)], device=gt.device)
        motion = self.animator(batch.audio[None], style, n_frames, batch.audio_features)  # (1, T, V, 3)
        pred = motion[0] + template

        nan = float("nan")
        rec = F.mse_loss(pred, gt)
        vel = F.mse_loss(pred[1:] - pred[:-1], gt[1:] - gt[:-1]) if n_frames > 1 else rec.new_zeros(())
        loss = c.w_rec * rec + c.w_vel * vel
        logs = {"rec": rec.item(), "vel": vel.item(), "feat": nan, "ctc": nan, "ctc_gt": nan, "lipread": 0.0,
                "target_len": nan}

        targets = self._targets(batch, n_frames)
        if targets is not None:
            target, n_ctc, hidden = targets
            features, logits = self.interpreter(motion, n_ctc)
            ctc = _ctc(logits, target)
            loss = loss + c.w_ctc * ctc
            logs.update(ctc=ctc.item(), lipread=1.0, target_len=float(target.numel()))
            if hidden is not None and c.w_feat:
                feat = F.mse_loss(features, hidden.to(features.dtype))
                loss = loss + c.w_feat * feat
                logs["feat"] = feat.item()
            if c.w_ctc_gt > 0:
                _, logits_gt = self.interpreter((gt - template)[None], n_ctc)
                ctc_gt = _ctc(logits_gt, target)
                loss = loss + c.w_ctc_gt * ctc_gt
                logs["ctc_gt"] = ctc_gt.item()
        logs["loss"] = loss.item()
        return TalkerOutput(loss=loss, logs=logs, vertices=pred)

    def audio_front_end(self) -> Any:
        return getattr(self.animator.audio_encoder, "front_end", None)

    def forward_clips(self, batch: ClipBatch) -> TalkerOutput:
        """B clips in one padded pass of the animator and of each interpreter call; every clip's loss terms as
        :meth:`forward` on it alone, the loss their mean over clips (logs: means over clips, NaN ignored)."""
        clips = batch.clips
        for clip in clips:
            self.check_clip(clip)
        c = self.config
        lengths = [clip.vertices.shape[0] for clip in clips]
        device = clips[0].vertices.device
        style = torch.tensor([int(clip.style) for clip in clips], device=device)
        motion = self.animator.forward_clips([clip.audio for clip in clips], style, lengths,
                                             [clip.audio_features for clip in clips])  # (B, T_max, V, 3)
        gt, lens = pad_sequences([clip.vertices for clip in clips])
        templates = torch.stack([clip.template for clip in clips])[:, None]
        pred = motion + templates
        mask = length_mask(lens.to(device), gt.shape[1])
        rec = masked_mean((pred - gt).pow(2), mask)
        vel = masked_mean(((pred[:, 1:] - pred[:, :-1]) - (gt[:, 1:] - gt[:, :-1])).pow(2), mask[:, 1:])
        losses = c.w_rec * rec + c.w_vel * vel  # (B,); a one-frame clip's velocity term is 0, as alone
        nan = float("nan")
        terms = {name: torch.full((len(clips),), nan) for name in ("feat", "ctc", "ctc_gt")}
        lipread, target_len = torch.zeros(len(clips)), torch.full((len(clips),), nan)
        targets = [self._targets(clip, t) for clip, t in zip(clips, lengths)]
        read = [b for b, tg in enumerate(targets) if tg is not None]
        if read:
            n_ctc = [targets[b][1] for b in read]
            tokens = [targets[b][0] for b in read]
            index = torch.tensor(read, device=device)
            extra = torch.zeros_like(losses)
            features, logits = self.interpreter.forward_clips([motion[b, :lengths[b]] for b in read], n_ctc)
            ctc = _ctc_clips(logits, tokens, n_ctc).to(losses.dtype)
            extra = extra.index_add(0, index, c.w_ctc * ctc)
            terms["ctc"][read] = ctc.detach().cpu()
            lipread[read] = 1.0
            target_len[read] = torch.tensor([float(t.numel()) for t in tokens])
            if c.w_feat and any(targets[b][2] is not None for b in read):  # ASR hidden states: one mean per clip
                for k, b in enumerate(read):
                    hidden = targets[b][2]
                    if hidden is not None:
                        feat = F.mse_loss(features[k:k + 1, :n_ctc[k]], hidden.to(features.dtype))
                        extra = extra.index_add(0, index[k:k + 1], c.w_feat * feat[None])
                        terms["feat"][b] = float(feat.detach())
            if c.w_ctc_gt > 0:
                _, logits_gt = self.interpreter.forward_clips([clips[b].vertices - clips[b].template for b in read],
                                                              n_ctc)
                ctc_gt = _ctc_clips(logits_gt, tokens, n_ctc).to(losses.dtype)
                extra = extra.index_add(0, index, c.w_ctc_gt * ctc_gt)
                terms["ctc_gt"][read] = ctc_gt.detach().cpu()
            losses = losses + extra
        columns = {"rec": rec.detach().cpu(), "vel": vel.detach().cpu(), **terms, "lipread": lipread,
                   "target_len": target_len, "loss": losses.detach().cpu()}
        values = {k: v.tolist() for k, v in columns.items()}
        logs = [{k: values[k][b] for k in columns} for b in range(len(clips))]
        return mean_over_clips(list(losses), logs, [pred[b, :t] for b, t in enumerate(lengths)])

    @torch.no_grad()
    def predict(self, audio: torch.Tensor, template: torch.Tensor, style: int, n_frames: int) -> torch.Tensor:
        """(S,) audio at 16 kHz, (V, 3) template, training-identity index -> (n_frames, V, 3), eval mode."""
        self.check_inputs(audio, template, style)
        n_frames = self.check_n_frames(n_frames)
        with eval_mode(self):
            style_t = torch.tensor([int(style)], device=audio.device)
            motion = self.animator(audio[None], style_t, n_frames)
        return motion[0] + template

    @torch.no_grad()
    def predict_batch(self, audios: list[torch.Tensor], templates: list[torch.Tensor], styles: list[int],
                      n_frames: list[int]) -> list[torch.Tensor]:
        """B predictions in one padded pass of the animator (eval mode): item b's (n_frames[b], V, 3), as
        :meth:`predict` (the padded frames masked in every attention; the audio encoder once per distinct audio
        tensor)."""
        n_frames = self.check_prediction_batch(audios, templates, styles, n_frames)
        animator = self.animator
        with eval_mode(self):
            unique, inverse = shared_audio(audios, n_frames)
            feats = encode_clips(animator.audio_encoder, [audios[u] for u in unique], [n_frames[u] for u in unique])
            feats = feats[inverse.to(feats.device)]
            valid = length_mask(torch.tensor(n_frames, device=feats.device), feats.shape[1])
            style = torch.tensor([int(s) for s in styles], device=feats.device)
            motion = animator._decode(feats, style, valid)
        return [motion[b, :t] + tpl for b, (tpl, t) in enumerate(zip(templates, n_frames))]

    @torch.no_grad()
    def read_lips(self, vertices: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
        """Greedy lip reading of (T, V, 3) absolute vertices: the interpreter's (L,) token sequence
        at ``ctc_rate`` frames (diagnostics: how well a sequence can be read)."""
        if vertices.ndim != 3 or vertices.shape[1:] != (self.n_vertices, 3) or template.shape != (self.n_vertices, 3):
            raise InputError(f"read_lips: expected (T, {self.n_vertices}, 3) vertices and a ({self.n_vertices}, 3) "
                             f"template, got {tuple(vertices.shape)} and {tuple(template.shape)}")
        n = vertices.shape[0]
        n_ctc = max(n, int(round(n * self.config.ctc_rate / self.config.fps)))
        with eval_mode(self):
            _, logits = self.interpreter((vertices - template)[None], n_ctc)
        return ctc_targets(logits[0].argmax(-1))


__all__ = ["Animator", "CTCRecogniser", "LipReadingInterpreter", "SelfTalk", "SelfTalkConfig", "ctc_targets",
           "interpolate_frames", "token_map", "vocabulary_size"]
