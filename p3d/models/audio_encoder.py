"""Audio encoders of the talking-head baselines: waveform -> features at the motion frame rate.

Both follow :class:`p3d.models.talker.AudioEncoder`: ``encoder(audio, n_frames)`` maps a batch of
16 kHz waveforms (B, S) float32 in [-1, 1] to (B, n_frames, dim) features, one per mesh frame.

- ``wav2vec2`` (the ``paper`` preset; FaceFormer, CodeTalker and SelfTalk all use
  ``facebook/wav2vec2-base-960h``): a ``transformers.Wav2Vec2Model`` read from a **local folder**
  (``wav2vec2_path``; nothing is downloaded). As FaceFormer's own ``wav2vec.py`` does for VOCASET,
  the CNN feature extractor's 50 Hz output is linearly interpolated (``align_corners=True``) to
  exactly ``n_frames`` *before* the feature projection and the transformer, so the transformer runs
  at the motion rate; the waveform is first normalised per utterance as ``Wav2Vec2Processor`` with
  ``do_normalize`` (zero mean, ``/ sqrt(var + 1e-7)`` with the population variance).
  **Two features per frame** (``features_per_frame=2``, the official BIWI setting of FaceFormer,
  CodeTalker and SelfTalk at 25 fps): no interpolation; the transformer runs on the 50 Hz features
  (an odd last one dropped, as FaceFormer's and CodeTalker's ``wav2vec.py`` do before the transformer;
  ``trim_before_encoder=False``: after it, as SelfTalk, whose ``wav2vec.py`` has no BIWI branch and whose
  ``predict`` pairs the transformer's output) and frame t gets features 2t and 2t+1 concatenated,
  so the output is (B, n_frames, 2 * hidden_size). When the audio gives fewer than ``2 * n_frames``
  features the last complete pair is repeated (an odd last feature dropped first; the official code shortens
  the sequence instead); extra
  features are cut after the transformer (the official ``predict``; its training pass cuts them
  before the transformer).
  **Architecture without a folder** (``wav2vec2_config``): a ``transformers.Wav2Vec2Config`` as a
  dict, used when the weights come from a checkpoint (``pretrained=False``), e.g. an official
  baseline checkpoint whose state dict holds the wav2vec2 weights
  (:mod:`p3d.models.official_baselines` infers it from the tensor shapes), or a p3d talker's checkpoint
  (:meth:`p3d.models.talker.Talker.checkpoint` records the folder's ``Wav2Vec2Config``, so it loads without
  it). The CNN feature extractor is frozen (``freeze_feature_extractor``, FaceFormer's ``_freeze_parameters``);
  the transformer is fine-tuned.
  In training, SpecAugment-style time masking with the checkpoint's ``mask_time_prob`` /
  ``mask_time_length`` (0.05 / 10 for base-960h) is applied as the official subclass does, but drawn
  from torch's RNG (HF draws from NumPy's, which p3d's trainer does not seed per step).
  **``feature_projection`` change:** transformers >= 4.x returns ``(projected, normed)`` from
  ``Wav2Vec2FeatureProjection`` where FaceFormer's subclass (written for 4.6) expected one tensor,
  the known ``TypeError`` of its users; :func:`_project` accepts both.
- ``mel`` (``cpu`` / ``smoke`` presets, trained from scratch): an 80-bin log-mel spectrogram at a
  10 ms hop (``torch.stft``, 25 ms Hann window, a fixed ``librosa.filters.mel`` filterbank buffer),
  floored 80 dB below the clip's peak mel energy (:data:`LOG_MEL_FLOOR`; gain-invariant, as
  wav2vec2's waveform normalisation), normalised per utterance and mel bin, then dilated 1-D convolutions (receptive field
  ``1 + 4 * sum(dilations)`` frames: 29 frames = 290 ms for the default 1, 2, 4), optionally a small
  transformer encoder, and the same linear interpolation to ``n_frames``.

**Length.** Neither encoder has a positional limit: wav2vec2's positions are a convolution, the mel
encoder's transformer (if any) builds its sinusoidal table for the length it is given. (The limit
the baselines hit past 20 s is the decoders' 600-frame tables; see :mod:`p3d.models.faceformer`.)
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from p3d.errors import InputError
from p3d.models.base import PresetConfig

SAMPLE_RATE = 16000
#: wav2vec2's CNN feature rate (stride 320 at 16 kHz).
WAV2VEC2_RATE = 50
#: The mel encoder's log floor relative to the clip's peak mel energy: 1e-8, i.e. 80 dB below the peak (the
#: dynamic range ``librosa.power_to_db(ref=np.max, top_db=80)`` keeps). A relative floor makes the log-mel
#: shift by a constant under a gain; the former absolute ``log(mel + 1e-6)`` floored 10-25 % of the cells
#: of synthetic speech, so a gain moved the speech cells against the floored ones and the per-utterance
#: normalisation kept the input's loudness.
LOG_MEL_FLOOR = 1e-8


@dataclasses.dataclass(frozen=True)
class AudioEncoderConfig(PresetConfig):
    """Audio encoder hyper-parameters.

    Attributes:
        kind: ``"mel"`` (small, from scratch) or ``"wav2vec2"`` (pretrained, local folder).
        dim: output feature width. ``wav2vec2``: None means the checkpoint's ``hidden_size`` (768
            for base); a different value is refused. ``mel``: the conv/transformer width.
        wav2vec2_path: local folder with ``config.json`` and weights (``save_pretrained`` layout).
        wav2vec2_config: ``Wav2Vec2Config`` fields (a dict) to build the architecture without a
            folder when the weights come from a checkpoint (``pretrained=False``).
        features_per_frame: 1: wav2vec2's 50 Hz features interpolated to the frame count (official
            VOCASET); 2: two consecutive 50 Hz features per frame, concatenated (official BIWI).
        trim_before_encoder: with 2 features per frame, an odd last 50 Hz feature is dropped before the
            transformer (True: FaceFormer, CodeTalker) or the transformer runs on every feature and the pairs
            are taken from its output (False: SelfTalk's ``predict``; the transformer's attention and
            positional convolution see the extra feature, so the outputs differ).
        freeze_feature_extractor: wav2vec2's CNN is not trained (FaceFormer).
        spec_augment: time masking of the projected features in training (wav2vec2 only).
        n_mels, n_fft, hop: mel front end (80 bins, 400 samples = 25 ms window, 160 = 10 ms hop).
        dilations: dilation of each kernel-5 conv of the mel encoder.
        transformer_layers, heads: optional transformer encoder over the conv features (mel).
    """

    kind: str = "wav2vec2"
    dim: int | None = None
    wav2vec2_path: str | None = None
    wav2vec2_config: dict[str, Any] | None = None
    features_per_frame: int = 1
    trim_before_encoder: bool = True
    freeze_feature_extractor: bool = True
    spec_augment: bool = True
    n_mels: int = 80
    n_fft: int = 400
    hop: int = 160
    dilations: tuple[int, ...] = (1, 2, 4)
    transformer_layers: int = 0
    heads: int = 4

    def __post_init__(self) -> None:
        if self.kind not in ("mel", "wav2vec2"):
            raise InputError(f"audio encoder: unknown kind {self.kind!r} (choose mel or wav2vec2)")
        if self.kind == "mel" and not (isinstance(self.dim, int) and self.dim > 0):
            raise InputError(f"audio encoder: the mel encoder needs a positive dim, got {self.dim!r}")
        if self.features_per_frame not in (1, 2) or (self.kind == "mel" and self.features_per_frame != 1):
            raise InputError(f"audio encoder: features_per_frame {self.features_per_frame!r} is not supported "
                             f"(1, or 2 with wav2vec2)")

    @staticmethod
    def presets() -> dict[str, AudioEncoderConfig]:
        return {
            "paper": AudioEncoderConfig(kind="wav2vec2"),
            "cpu": AudioEncoderConfig(kind="mel", dim=64, dilations=(1, 2, 4), transformer_layers=1, heads=4),
            "smoke": AudioEncoderConfig(kind="mel", dim=16, dilations=(1, 2), transformer_layers=0, heads=2),
        }


def linear_interpolation(features: torch.Tensor, n_frames: int) -> torch.Tensor:
    """(B, L, C) -> (B, n_frames, C) by linear interpolation with aligned end points (FaceFormer's
    ``linear_interpolation``: ``F.interpolate(mode='linear', align_corners=True)``)."""
    if n_frames < 1:
        raise InputError(f"n_frames: expected a positive frame count, got {n_frames}")
    if features.shape[1] == n_frames:
        return features
    if features.shape[1] == 1:
        return features.expand(-1, n_frames, -1)
    out = F.interpolate(features.transpose(1, 2), size=n_frames, mode="linear", align_corners=True)
    return out.transpose(1, 2)


def _check_audio(audio: torch.Tensor, min_samples: int) -> torch.Tensor:
    if not isinstance(audio, torch.Tensor) or audio.ndim != 2:
        raise InputError(f"audio: expected a (B, S) float tensor at 16 kHz, got "
                         f"{tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__}")
    if audio.shape[1] < min_samples:
        raise InputError(f"audio: {audio.shape[1]} samples is too short for this encoder (needs >= {min_samples})")
    if not torch.isfinite(audio).all():
        raise InputError("audio: holds NaN or inf samples")
    return audio.float()


def sinusoid(n_positions: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """(n_positions, dim) sine-cosine table, built for any length (no positional limit)."""
    position = torch.arange(n_positions, dtype=torch.float32, device=device)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    table = torch.zeros(n_positions, dim, device=device)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)[:, : dim // 2]
    return table


class MelEncoder(nn.Module):
    """Log-mel (80 bins, 10 ms) -> dilated convs [-> transformer] -> linear interpolation to n_frames."""

    def __init__(self, config: AudioEncoderConfig) -> None:
        super().__init__()
        import librosa

        self.config = config
        self.dim = int(config.dim)
        mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=config.n_fft, n_mels=config.n_mels)  # (n_mels, n_fft//2+1)
        self.register_buffer("mel_basis", torch.as_tensor(mel, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        layers: list[nn.Module] = []
        c_in = config.n_mels
        for d in config.dilations:
            layers += [nn.Conv1d(c_in, self.dim, 5, padding=2 * d, dilation=d), nn.GELU()]
            c_in = self.dim
        self.convs = nn.Sequential(*layers)
        self.transformer = None
        if config.transformer_layers:
            layer = nn.TransformerEncoderLayer(self.dim, config.heads, 2 * self.dim, dropout=0.0, batch_first=True,
                                               norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, config.transformer_layers, enable_nested_tensor=False)

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, n_mels, 1 + S // hop) log-mel, normalised per utterance and bin.

        Each row of ``audio`` is one whole clip (no padding: :func:`encode_clips` takes the log-mel clip by
        clip). The log's floor is relative to the clip, :data:`LOG_MEL_FLOOR` times its peak mel energy,
        so the log-mel of ``g * audio`` is the log-mel of ``audio`` plus ``2 log g`` in every cell and the
        normalised features do not depend on the input gain (as wav2vec2's waveform normalisation).
        """
        spec = torch.stft(audio, self.config.n_fft, self.config.hop, window=self.window, center=True,
                          return_complex=True).abs().pow(2)
        mel = self.mel_basis @ spec  # (B, n_mels, L) power
        # the floor follows the clip's level; a digitally silent clip (peak 0) gets float32's smallest normal
        floor = (LOG_MEL_FLOOR * mel.amax(dim=(1, 2), keepdim=True)).clamp_min(torch.finfo(mel.dtype).tiny)
        mel = torch.log(mel + floor)
        return (mel - mel.mean(dim=2, keepdim=True)) / (mel.std(dim=2, keepdim=True) + 1e-3)

    def forward(self, audio: torch.Tensor, n_frames: int) -> torch.Tensor:
        """(B, S) 16 kHz -> (B, n_frames, dim)."""
        audio = _check_audio(audio, self.config.n_fft // 2 + 1)
        return self.from_front_end(self.log_mel(audio), n_frames)

    @torch.no_grad()
    def front_end(self, audio: torch.Tensor) -> torch.Tensor:
        """(S,) 16 kHz -> (n_mels, L) normalised log-mel of one clip: the fixed front-end (no parameters), the
        same for every training step, so a dataset computes it once (``TalkerBatch.audio_features``). The audio
        may be on any device (a dataset holds it on the CPU); the result is on the encoder's."""
        audio = _check_audio(audio[None], self.config.n_fft // 2 + 1).to(self.window.device)
        return self.log_mel(audio)[0]

    def from_front_end(self, mel: torch.Tensor, n_frames: int) -> torch.Tensor:
        """(B, n_mels, L) log-mel (:meth:`front_end`) -> (B, n_frames, dim): :meth:`forward` after the front-end."""
        x = self.convs(mel).transpose(1, 2)  # (B, L, dim) at 100 Hz
        if self.transformer is not None:
            x = self.transformer(x + sinusoid(x.shape[1], self.dim, x.device))
        return linear_interpolation(x, n_frames)

    def from_front_ends(self, mels: list[torch.Tensor], n_frames: list[int]) -> torch.Tensor:
        """B clips' (n_mels, L_b) log-mels -> (B, max n_frames, dim), clip b's first ``n_frames[b]`` rows equal
        to ``from_front_end(mels[b][None], n_frames[b])`` (rows past them are zero).

        One batched pass: the log-mels are zero-padded to the longest, and after every conv layer the
        positions past a clip's end are zeroed again, so each conv sees exactly the zero padding it sees on
        the clip alone; the transformer masks the padded keys.
        """
        lengths = torch.tensor([m.shape[1] for m in mels], device=mels[0].device)
        longest = int(lengths.max())
        x = torch.stack([F.pad(m, (0, longest - m.shape[1])) for m in mels])  # (B, n_mels, L_max)
        valid = torch.arange(longest, device=x.device)[None] < lengths[:, None]  # (B, L_max)
        keep = valid[:, None].to(x.dtype)
        for k in range(0, len(self.convs), 2):
            x = self.convs[k + 1](self.convs[k](x)) * keep
        x = x.transpose(1, 2)
        if self.transformer is not None:
            x = self.transformer(x + sinusoid(longest, self.dim, x.device), src_key_padding_mask=~valid)
        out = x.new_zeros(len(mels), max(n_frames), self.dim)
        for b, (length, t) in enumerate(zip(lengths.tolist(), n_frames)):
            out[b, :t] = linear_interpolation(x[b:b + 1, :length], t)[0]
        return out


def _project(projection: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """wav2vec2's feature projection; newer transformers return ``(projected, normed)``."""
    out = projection(features)
    return out[0] if isinstance(out, tuple) else out


def time_mask_indices(batch: int, length: int, prob: float, span: int, min_masks: int = 2,
                      device: torch.device | None = None) -> torch.Tensor:
    """(batch, length) bool SpecAugment time mask: ``max(min_masks, int(prob * length / span + u))``
    spans of ``span`` frames (u ~ U[0, 1)), starts drawn without replacement (torch's RNG)."""
    mask = torch.zeros(batch, length, dtype=torch.bool, device=device)
    if prob <= 0 or length < 1:
        return mask
    span = min(span, length)
    for b in range(batch):
        n = max(min_masks, int(prob * length / span + float(torch.rand(()))))
        n = min(n, length // span, length - span + 1)
        starts = torch.randperm(length - span + 1)[:n]
        for s in starts.tolist():
            mask[b, s:s + span] = True
    return mask


class Wav2Vec2Encoder(nn.Module):
    """A local pretrained wav2vec2, FaceFormer style (see the module docstring)."""

    def __init__(self, config: AudioEncoderConfig, pretrained: bool = True) -> None:
        super().__init__()
        self.config = config
        if config.wav2vec2_config is not None and not pretrained:
            from transformers import Wav2Vec2Config, Wav2Vec2Model

            self.model = Wav2Vec2Model(Wav2Vec2Config(**config.wav2vec2_config))
        else:
            self.model = load_wav2vec2(config.wav2vec2_path, pretrained=pretrained)
        hidden = int(self.model.config.hidden_size)
        if config.dim is not None and config.dim != hidden:
            raise InputError(f"audio encoder: dim {config.dim} != the wav2vec2 hidden size {hidden} of "
                             f"{config.wav2vec2_path} (leave dim unset)")
        self.hidden_size = hidden
        self.dim = hidden * config.features_per_frame
        if config.freeze_feature_extractor:
            self.model.feature_extractor.requires_grad_(False)

    def n_features(self, n_samples: int) -> int:
        """wav2vec2's CNN feature count (50 Hz) for ``n_samples`` samples."""
        return int(self.model._get_feat_extract_output_lengths(torch.tensor(int(n_samples))))

    def forward(self, audio: torch.Tensor, n_frames: int) -> torch.Tensor:
        """(B, S) 16 kHz -> (B, n_frames, dim) (``dim = features_per_frame * hidden_size``)."""
        audio = _check_audio(audio, 400)
        # Wav2Vec2Processor's zero_mean_unit_var_norm: population variance, eps 1e-7
        audio = (audio - audio.mean(dim=1, keepdim=True)) / torch.sqrt(
            audio.var(dim=1, keepdim=True, unbiased=False) + 1e-7)
        if self.config.freeze_feature_extractor:
            with torch.no_grad():
                feats = self.model.feature_extractor(audio)
        else:
            feats = self.model.feature_extractor(audio)
        feats = feats.transpose(1, 2)
        per_frame = self.config.features_per_frame
        if per_frame == 1:
            feats = linear_interpolation(feats, n_frames)  # 50 Hz -> motion rate
        elif feats.shape[1] >= per_frame and self.config.trim_before_encoder:
            feats = feats[:, : feats.shape[1] - feats.shape[1] % per_frame]  # the official odd-frame cut
        hidden = _project(self.model.feature_projection, feats)
        cfg = self.model.config
        if self.training and self.config.spec_augment and getattr(cfg, "apply_spec_augment", False) \
                and cfg.mask_time_prob > 0:
            mask = time_mask_indices(hidden.shape[0], hidden.shape[1], cfg.mask_time_prob, cfg.mask_time_length,
                                     device=hidden.device)
            hidden = torch.where(mask[..., None], self.model.masked_spec_embed.to(hidden.dtype), hidden)
        out = self.model.encoder(hidden).last_hidden_state
        if per_frame == 1:
            return out
        need = per_frame * n_frames
        if out.shape[1] < need:  # repeat the last pair (the official code would shorten the clip)
            if out.shape[1] >= per_frame:
                # an incomplete last pair (an odd last feature, kept by trim_before_encoder=False) is dropped first,
                # as SelfTalk's predict drops it; else the repeats would pair it with the feature before it
                out = out[:, : out.shape[1] - out.shape[1] % per_frame]
                last = out[:, -per_frame:]
            else:
                last = out[:, -1:].expand(-1, per_frame, -1)
            reps = -(-(need - out.shape[1]) // per_frame)
            out = torch.cat([out, last.repeat(1, reps, 1)], dim=1)
        return out[:, :need].reshape(out.shape[0], n_frames, per_frame * out.shape[2])


def load_wav2vec2(path: str | os.PathLike[str] | None, pretrained: bool = True) -> nn.Module:
    """``Wav2Vec2Model.from_pretrained(path, local_files_only=True)`` (or, with ``pretrained=False``,
    the architecture of ``path/config.json`` with random weights, for rebuilding from a checkpoint)."""
    if path is None:
        raise InputError("wav2vec2_path: the wav2vec2 audio encoder needs a local folder holding a pretrained "
                         "model (e.g. facebook/wav2vec2-base-960h saved with save_pretrained); nothing is downloaded")
    folder = os.fspath(path)
    if not os.path.isdir(folder) or not os.path.isfile(os.path.join(folder, "config.json")):
        raise InputError(f"wav2vec2_path {folder}: not a local wav2vec2 folder (needs config.json and weights, "
                         f"the layout of save_pretrained); nothing is downloaded")
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    try:
        if pretrained:
            return Wav2Vec2Model.from_pretrained(folder, local_files_only=True)
        return Wav2Vec2Model(Wav2Vec2Config.from_pretrained(folder, local_files_only=True))
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"wav2vec2_path {folder}: cannot load a wav2vec2 model "
                         f"({type(exc).__name__}: {exc})") from None


def encode_clips(encoder: nn.Module, audios: list[torch.Tensor], n_frames: list[int],
                 features: list[torch.Tensor | None] | None = None) -> torch.Tensor:
    """B clips' (S_b,) waveforms -> (B, max n_frames, dim) features, clip b's first ``n_frames[b]`` rows equal to
    ``encoder(audios[b][None], n_frames[b])`` (the rest zero). ``features``: cached front-ends
    (``encoder.front_end``) where available. The mel encoder runs batched (:meth:`MelEncoder.from_front_ends`);
    another encoder (wav2vec2: its per-utterance normalisations see the whole waveform) runs clip by clip."""
    features = features or [None] * len(audios)
    if isinstance(encoder, MelEncoder):
        mels = [f if f is not None else encoder.log_mel(_check_audio(a[None], encoder.config.n_fft // 2 + 1))[0]
                for a, f in zip(audios, features)]
        return encoder.from_front_ends(mels, n_frames)
    outs = [encoder(a[None], t)[0] for a, t in zip(audios, n_frames)]
    padded = outs[0].new_zeros(len(outs), max(n_frames), outs[0].shape[-1])
    for b, o in enumerate(outs):
        padded[b, : o.shape[0]] = o
    return padded


def encode_clip(encoder: nn.Module, audio: torch.Tensor, n_frames: int,
                features: torch.Tensor | None = None) -> torch.Tensor:
    """One clip: ``encoder(audio[None], n_frames)`` (1, n_frames, dim), from its cached front-end if given."""
    if features is not None and isinstance(encoder, MelEncoder):
        return encoder.from_front_end(features[None], n_frames)
    return encoder(audio[None], n_frames)


def build_audio_encoder(config: AudioEncoderConfig, pretrained: bool = True) -> nn.Module:
    """The encoder of ``config.kind``; it has a ``dim`` attribute and follows ``talker.AudioEncoder``.

    ``pretrained=False`` builds wav2vec2 with random weights from the folder's ``config.json`` (when a
    saved talker's state dict will overwrite them anyway).
    """
    if config.kind == "mel":
        return MelEncoder(config)
    return Wav2Vec2Encoder(config, pretrained=pretrained)
