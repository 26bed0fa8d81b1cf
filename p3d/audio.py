"""Speech features: the Kaldi log-mel filterbank of the paper's speech encoder, and its windows.

The speech input of every representation in the paper (stage 1, stage 2, PLRS, the perceptual
loss) is a 128-bin log-mel filterbank "image" of shape (T_audio, 128). The official code
(``evaluation/evaluate_PLRS.py`` and ``perceptual_loss/data_loader.py``, ``load_audio_mel``) builds
it as follows, and :func:`speech_windows` reproduces it:

1. Resample the waveform to ``640 * fps`` Hz (the official code hard-codes 19 200 Hz, VOCASET's
   30 fps). Samples are floats in [-1, 1].
2. Cut windows of 3200 samples with a hop of 640 samples: window ``i`` covers samples
   ``[640 i, 640 i + 3200)``; only complete windows are kept.
3. Per window: subtract its mean, then ``torchaudio.compliance.kaldi.fbank(htk_compat=True,
   sample_frequency=16000, frame_length=8, frame_shift=10, use_energy=False, window_type='hanning',
   num_mel_bins=128, dither=0.0)`` -> (20, 128).
4. Normalise with the AudioSet statistics of AudioMAE: ``(fbank + 4.2677393) / (4.5689974 * 2)``.

**Why 640 * fps (the 30 fps trick).** The fbank is always *told* 16 kHz, so a 3200-sample window is
read as 0.2 s (20 frames of 10 ms) and a 640-sample hop as 40 ms, whatever the true rate. At
``640 * fps`` Hz those 640 samples are exactly one mesh frame (1 / fps s) and the 3200-sample window
is exactly 5 mesh frames. At 25 fps (LRS3, the stage-1/2 training data) the rate is 16 kHz and
nothing is rescaled: 5 frames = 0.2 s. At 30 fps (VOCASET) the rate is 19.2 kHz: 5 frames =
166.7 ms of real audio, which the fbank, told 16 kHz, treats as 0.2 s. The audio is thus
time-stretched by 30/25 = 1.2 (and its spectrum compressed by the same factor: a real 6 kHz
component lands in the 5 kHz filter) so that a 30 fps window looks like the 25 fps windows the
representation was trained on. The rule for a frame rate F is ``rate = 640 * F = 16000 * F / 25``
(25 fps -> 16 kHz, 30 fps -> 19.2 kHz); it is applied between those two rates only
(:data:`WINDOW_FPS_RANGE`): at 60 fps (38.4 kHz) the speech would be stretched 2.4x, which neither the
training nor the official evaluation ever does (VOCASET's 60 fps GT is subsampled ``[::2]``). Note: the
formula ``16000 * 25 / F`` would give 13.33 kHz at 30 fps and is wrong.

**Pairing.** Speech window ``i`` starts at mesh frame ``i`` and pairs with mesh frames
``[i, i + 5)``. A clip of T mesh frames and A audio windows gives ``min(A, T - 4)`` pairs (the
official ``clip_num``); no padding is needed, windows past the end of either stream are dropped.

**Implementation and its differences from the official code.** torchaudio has no build for this
project's torch, and Kaldi itself (and its maintained port ``kaldi-native-fbank``) refuses these
options: a 8 ms frame is 128 samples, a 128-point FFT has only 64 bins 125 Hz apart, and 128 mel
filters over 20-8000 Hz leave the narrow low-frequency filters with no FFT bin at all ("You may have
set num_mel_bins too large"). torchaudio silently keeps them: their energy is 0, floored at
``float32 eps`` before the log, so those filters are the constant ``log(eps) = -15.942``
(normalised: -1.2776) in every frame. :func:`kaldi_fbank` is a NumPy transcription of
``torchaudio.compliance.kaldi.fbank`` with the same behaviour (:func:`empty_mel_bins` lists the
constant filters: 38 of the 128 at the paper's setting, all centred below 2.2 kHz). It is checked
against kaldi-native-fbank on settings Kaldi accepts (``tests/test_audio.py``). Remaining
differences, all small:

- arithmetic is float64 (torchaudio: float32), rounded to float32 at the end (differences ~1e-5);
- the fbank is computed once over the whole clip and windows are slices of it (window ``i`` = fbank
  frames ``[4 i, 4 i + 20)``). This equals the per-window computation: each 10 ms frame starts at
  ``160 j`` in both, and the per-window mean subtraction is a no-op because Kaldi removes each
  frame's own mean (DC offset) before anything else. ``tests/test_audio.py`` checks the equality.

**Resampling and channels: exactly the official front-end.** The official script reads audio with
torchaudio, keeps **channel 0** of a multi-channel file (:func:`load_speech_audio`,
:func:`first_channel`) and resamples with ``torchaudio.functional.resample``'s defaults.
:func:`resample` is that algorithm (band-limited sinc interpolation, Hann window, 6 zero
crossings, roll-off 0.99, gcd-reduced rates, polyphase ``conv1d``), computed in float32 as
torchaudio computes a float32 waveform; ``tests/test_audio.py`` checks it against a direct
per-sample evaluation of the windowed-sinc formula. (p3d 0.1.0 averaged channels and resampled
with soxr, which differs near the old Nyquist frequency, i.e. in the top told-16 kHz mel bins.)
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import numbers
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from p3d.errors import InputError
from p3d.io import FLOAT_PEAK_LIMIT, check_float_peak, pcm_to_float  # noqa: F401  (FLOAT_PEAK_LIMIT: re-exported)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Sample rate the fbank is told (the official ``sample_frequency=16000``).
NOMINAL_SAMPLE_RATE = 16000
#: Samples per speech window at the feature rate (0.2 s at the nominal rate).
WINDOW_SAMPLES = 3200
#: Samples per hop (one mesh frame at the feature rate; 40 ms at the nominal rate).
HOP_SAMPLES = 640
#: Mesh frames per speech window.
FRAMES_PER_WINDOW = 5
#: Fbank frames per speech window (8 ms frames every 10 ms over 3200 samples at 16 kHz).
FBANK_FRAMES_PER_WINDOW = 20
#: Fbank frames per hop (640 / 160).
FBANK_FRAMES_PER_HOP = 4
#: Mel bins.
N_MELS = 128
#: AudioSet fbank statistics used by AudioMAE and the official code: x -> (x - MEAN) / (2 * STD).
FBANK_MEAN = -4.2677393
FBANK_STD = 4.5689974
#: float32 machine epsilon, Kaldi's floor before the log.
LOG_FLOOR = float(np.finfo(np.float32).eps)
#: Bump when the feature computation changes: it invalidates :class:`FeatureCache` entries
#: (2: torchaudio's sinc resampler and channel 0 instead of soxr and the channel average).
FEATURE_VERSION = 2
#: torchaudio's Kaiser-window default ``beta`` (``sinc_interp_kaiser``).
KAISER_BETA = 14.769656459379492


@dataclasses.dataclass(frozen=True)
class FbankOptions:
    """Kaldi ``compute-fbank-feats`` options (only those the official code sets or relies on).

    Defaults are the official code's: 8 ms Hanning frames every 10 ms, 128 mel bins over
    20 Hz..Nyquist, pre-emphasis 0.97, DC removal, FFT size rounded up to a power of two, no dither,
    no energy column, log of the power spectrum, sample frequency 16 kHz.
    """

    sample_frequency: float = float(NOMINAL_SAMPLE_RATE)
    frame_length_ms: float = 8.0
    frame_shift_ms: float = 10.0
    num_mel_bins: int = N_MELS
    window_type: str = "hanning"
    preemphasis: float = 0.97
    low_freq: float = 20.0
    high_freq: float = 0.0
    remove_dc_offset: bool = True
    round_to_power_of_two: bool = True

    @property
    def window_size(self) -> int:
        """Samples per frame (Kaldi truncates: ``int(fs * ms / 1000)``)."""
        return int(self.sample_frequency * self.frame_length_ms * 0.001)

    @property
    def window_shift(self) -> int:
        """Samples between frame starts."""
        return int(self.sample_frequency * self.frame_shift_ms * 0.001)

    @property
    def padded_window_size(self) -> int:
        """FFT size."""
        n = self.window_size
        return 1 << (n - 1).bit_length() if self.round_to_power_of_two else n


#: The frame rates (fps) at which the paper pairs 5 mesh frames with a speech window: 25, where the representation is
#: trained (LRS3, 640 x 25 = 16 kHz: the speech in real time), to 30, where PLRS and the loss apply it (VOCASET,
#: 19.2 kHz: stretched 1.2x; Sec. 4, E.1). Beyond them the speech a window shows is stretched or squeezed further than
#: anything the representation saw (60 fps: 2.4x, 83 ms windows), a number no official script gives.
WINDOW_FPS_RANGE: tuple[float, float] = (25.0, 30.0)


def check_window_fps(fps: float, what: str = "fps") -> float:
    """``fps`` as a float when it is a frame rate within :data:`WINDOW_FPS_RANGE`; else :class:`InputError` naming
    ``what``, saying how to get there (VOCASET's 60 fps GT: every second frame, as the official scripts do)."""
    if isinstance(fps, (bool, np.bool_)) or not isinstance(fps, numbers.Real) or not (math.isfinite(fps) and fps > 0):
        raise InputError(f"{what}: expected a positive frame rate, got {fps!r}")
    low, high = WINDOW_FPS_RANGE
    if not low <= float(fps) <= high:
        raise InputError(f"{what}: {float(fps):g} fps is outside the {low:g}-{high:g} fps at which the speech-mesh "
                         f"representation pairs 5 frames with a speech window (PLRS, the perceptual loss, the critics; "
                         f"paper Sec. 4: at {float(fps):g} fps a window spans {5000 / float(fps):.0f} ms, its speech "
                         f"time-scaled {float(fps) / low:.2g}x); give frames at {low:g}-{high:g} fps (VOCASET's 60 fps "
                         f"GT: every second frame, [::2])")
    return float(fps)


def feature_sample_rate(fps: float) -> int:
    """Sample rate at which 640 samples are one mesh frame: ``640 * fps`` (25 -> 16000, 30 -> 19200); ``fps`` within
    :data:`WINDOW_FPS_RANGE` (:func:`check_window_fps`)."""
    check_window_fps(fps)
    rate = HOP_SAMPLES * float(fps)
    if abs(rate - round(rate)) > 1e-6:
        raise InputError(f"fps: {fps} gives a non-integer feature sample rate 640 * fps = {rate}")
    return int(round(rate))


def mel_scale(freq: np.ndarray | float) -> np.ndarray:
    """Kaldi's mel scale: ``1127 ln(1 + f / 700)``."""
    return 1127.0 * np.log1p(np.asarray(freq, dtype=np.float64) / 700.0)


def kaldi_mel_banks(opts: FbankOptions = FbankOptions()) -> np.ndarray:
    """Triangular mel filters as Kaldi / torchaudio: (num_mel_bins, padded_window_size // 2 + 1).

    Filter ``m`` rises linearly *in mel* from ``left = mel_low + m * d`` to ``centre = left + d`` and
    falls to ``right = left + 2 d``, with ``d = (mel_high - mel_low) / (num_bins + 1)``; it is
    evaluated at FFT bins ``0 .. N/2 - 1`` (the Nyquist bin gets weight 0). No normalisation.
    Filters narrower than the FFT bin spacing can be all-zero (see the module docstring).
    """
    n_fft = opts.padded_window_size
    nyquist = 0.5 * opts.sample_frequency
    high = opts.high_freq if opts.high_freq > 0 else opts.high_freq + nyquist
    if not (0.0 <= opts.low_freq < nyquist and 0.0 < high <= nyquist and opts.low_freq < high):
        raise InputError(f"fbank options: bad low_freq {opts.low_freq} / high_freq {high} for Nyquist {nyquist}")
    if opts.num_mel_bins <= 3:
        raise InputError(f"fbank options: num_mel_bins must be > 3, got {opts.num_mel_bins}")
    mel_low, mel_high = mel_scale(opts.low_freq), mel_scale(high)
    delta = (mel_high - mel_low) / (opts.num_mel_bins + 1)
    m = np.arange(opts.num_mel_bins, dtype=np.float64)[:, None]
    left, centre, right = mel_low + m * delta, mel_low + (m + 1) * delta, mel_low + (m + 2) * delta
    mel = mel_scale(opts.sample_frequency / n_fft * np.arange(n_fft // 2))[None, :]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1)))  # Nyquist bin


def empty_mel_bins(opts: FbankOptions = FbankOptions()) -> np.ndarray:
    """Indices of the mel filters that cover no FFT bin (constant ``log(eps)`` outputs)."""
    return np.flatnonzero(kaldi_mel_banks(opts).sum(axis=1) == 0)


def _window_function(kind: str, n: int) -> np.ndarray:
    i = np.arange(n, dtype=np.float64)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * i / (n - 1))  # symmetric (periodic=False)
    if kind == "hanning":
        return hann
    if kind == "povey":
        return hann**0.85
    if kind == "hamming":
        return 0.54 - 0.46 * np.cos(2 * np.pi * i / (n - 1))
    if kind == "rectangular":
        return np.ones(n)
    raise InputError(f"fbank options: unknown window_type {kind!r} (hanning, povey, hamming, rectangular)")


def kaldi_fbank(waveform: np.ndarray, opts: FbankOptions = FbankOptions()) -> np.ndarray:
    """Kaldi log-mel filterbank of a mono waveform (torchaudio ``kaldi.fbank`` semantics).

    Args:
        waveform: (n_samples,) float samples (any scale; the official code uses [-1, 1]).
        opts: :class:`FbankOptions` (defaults: the official code's).

    Returns:
        (n_frames, num_mel_bins) float32 natural-log mel energies, ``n_frames = 1 + (n - L) // S``
        (``snip_edges=True``: only frames that fit; 0 frames if ``n < L``), L / S the frame
        length / shift in samples. Steps per frame: remove its mean (DC), pre-emphasis
        ``x[j] - 0.97 x[j-1]`` (``x[-1] := x[0]``), window, zero-pad to the FFT size, power
        spectrum, mel filters, ``log(max(e, float32 eps))``.
    """
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim != 1:
        raise InputError(f"waveform: expected a mono 1-D signal, got shape {x.shape}")
    size, shift, n_fft = opts.window_size, opts.window_shift, opts.padded_window_size
    if size < 2 or shift < 1:
        raise InputError(f"fbank options: frame of {size} samples / shift of {shift} samples is too short")
    if x.size < size:
        return np.zeros((0, opts.num_mel_bins), dtype=np.float32)
    n_frames = 1 + (x.size - size) // shift
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[::shift][:n_frames]
    if opts.remove_dc_offset:
        frames = frames - frames.mean(axis=1, keepdims=True)
    if opts.preemphasis:
        previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
        frames = frames - opts.preemphasis * previous
    frames = frames * _window_function(opts.window_type, size)
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2
    energies = power @ kaldi_mel_banks(opts).T
    return np.log(np.maximum(energies, LOG_FLOOR)).astype(np.float32)


def normalise_fbank(fbank: np.ndarray) -> np.ndarray:
    """AudioSet normalisation of the official code: ``(fbank - FBANK_MEAN) / (2 * FBANK_STD)``."""
    return ((np.asarray(fbank, dtype=np.float32) - FBANK_MEAN) / (2 * FBANK_STD)).astype(np.float32)


def sinc_resample_kernel(
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
    method: str = "sinc_interp_hann",
    beta: float | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, int]:
    """Polyphase kernel of torchaudio's band-limited sinc resampling, and its half-width.

    With ``O, N`` the gcd-reduced rates and ``f_c = rolloff * min(O, N)`` (the cut-off, in units of
    the reduced rates), output phase ``j`` (0..N-1) weighs input tap ``k`` (0..2w+O-1) by
    ``h[j, k] = (f_c / O) sinc(pi t) w(t)`` with ``t = f_c ((k - w) / O - j / N)`` clamped to
    ``[-L, L]`` (``L = lowpass_filter_width`` zero crossings), ``w = ceil(L O / f_c)``, and the window
    ``w(t) = cos^2(pi t / (2 L))`` (``sinc_interp_hann``) or ``I0(beta sqrt(1 - (t / L)^2)) / I0(beta)``
    (``sinc_interp_kaiser``, default ``beta`` :data:`KAISER_BETA`). The grid is computed in
    ``dtype`` (float32 for a float32 waveform, as torchaudio).

    Returns:
        (kernel (N, 1, 2 w + O) in ``dtype``, w).
    """
    import torch

    if method not in ("sinc_interp_hann", "sinc_interp_kaiser"):
        raise InputError(f"resampling method: {method!r} (choose sinc_interp_hann or sinc_interp_kaiser)")
    if lowpass_filter_width <= 0 or not 0 < rolloff <= 1:
        raise InputError(f"resampling: lowpass_filter_width must be > 0 and rolloff in (0, 1], "
                         f"got {lowpass_filter_width}, {rolloff}")
    dtype = dtype or torch.float64
    gcd = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // gcd, int(new_freq) // gcd
    cutoff = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / cutoff)
    taps = torch.arange(-width, width + orig, dtype=dtype)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=dtype)[:, None, None] / new + taps
    t = (t * cutoff).clamp(-lowpass_filter_width, lowpass_filter_width)
    if method == "sinc_interp_hann":
        window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    else:
        b = torch.tensor(float(KAISER_BETA if beta is None else beta))
        window = torch.i0(b * torch.sqrt(1 - (t / lowpass_filter_width) ** 2)) / torch.i0(b)
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones((), dtype=dtype), torch.sin(t) / t)
    return sinc * window * (cutoff / orig), width


def resample(
    waveform: np.ndarray,
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
    method: str = "sinc_interp_hann",
    beta: float | None = None,
) -> np.ndarray:
    """``torchaudio.functional.resample`` (same defaults, same arithmetic) of a (..., n) waveform.

    The signal is zero-padded by ``w`` samples on the left and ``w + O`` on the right, filtered
    with :func:`sinc_resample_kernel` by a stride-``O`` ``conv1d`` (each of the ``N`` output phases
    its own filter), interleaved, and cut to ``ceil(N n / O)`` samples. Returns float32 (float64
    for a float64 input), the input itself when the rates are equal.
    """
    import torch

    x = np.asarray(waveform)
    if x.dtype != np.float64:
        x = x.astype(np.float32, copy=False)
    for name, rate in (("orig_freq", orig_freq), ("new_freq", new_freq)):
        if not (isinstance(rate, (int, np.integer)) and rate > 0):
            raise InputError(f"resample: {name} must be a positive integer sample rate, got {rate!r}")
    if orig_freq == new_freq:
        return x
    if x.shape[-1:] == (0,):  # no samples: none out (conv1d cannot reshape an empty batch)
        return np.zeros(x.shape, dtype=x.dtype)
    gcd = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // gcd, int(new_freq) // gcd
    signal = torch.from_numpy(np.ascontiguousarray(x))
    kernel, width = sinc_resample_kernel(orig_freq, new_freq, lowpass_filter_width, rolloff, method, beta,
                                         signal.dtype)
    shape, length = signal.shape, signal.shape[-1]
    flat = torch.nn.functional.pad(signal.reshape(-1, length), (width, width + orig))
    with torch.no_grad():
        out = torch.nn.functional.conv1d(flat[:, None], kernel, stride=orig)  # (B, N, frames)
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)[:, : math.ceil(new * length / orig)]
    return out.reshape(*shape[:-1], -1).numpy()


def first_channel(samples: np.ndarray) -> np.ndarray:
    """Channel 0 of (n, channels) samples (as the official script, ``waveform[0]``); (n,) unchanged."""
    x = np.asarray(samples)
    if x.ndim == 2:
        if x.shape[1] > x.shape[0]:  # (channels, n), torchaudio.load's layout: x[:, 0] would be one sample each
            raise InputError(f"audio: expected (n_samples, n_channels), got shape {x.shape} "
                             f"(transpose a (channels, samples) array)")
        return x[:, 0]
    if x.ndim != 1:
        raise InputError(f"audio: expected (n,) or (n, channels) samples, got shape {x.shape}")
    return x


def load_speech_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read an audio file for the speech features: (channel 0 as float32 (n,), sample rate).

    The official front-end keeps the first channel of a multi-channel file (p3d's
    :func:`p3d.io.load_audio` averages them); samples in [-1, 1].
    """
    from p3d.io import load_audio

    samples, sr = load_audio(path, mono=False)
    return np.ascontiguousarray(samples[:, 0], dtype=np.float32), sr  # load_audio's layout: (n, channels)


def resample_for_fps(audio: np.ndarray, sr: int, fps: float) -> np.ndarray:
    """Resample mono ``audio`` at ``sr`` Hz to :func:`feature_sample_rate` (``640 * fps``) Hz.

    :func:`resample` (torchaudio's default sinc resampler, as the official code); output length
    ``ceil(n * new / old)``.
    """
    target = feature_sample_rate(fps)
    x = _check_audio(audio, sr)
    if sr == target:
        return x
    return resample(x, int(sr), target)


def n_speech_windows(n_samples: int) -> int:
    """Complete 3200-sample windows at hop 640 in ``n_samples`` samples at the feature rate."""
    return 0 if n_samples < WINDOW_SAMPLES else 1 + (n_samples - WINDOW_SAMPLES) // HOP_SAMPLES


def clip_fbank(audio: np.ndarray, sr: int, fps: float, opts: FbankOptions = FbankOptions()) -> np.ndarray:
    """Normalised fbank of a whole clip, trimmed to its complete speech windows.

    Returns (F, 128) float32 with ``F = 4 (A - 1) + 20`` for ``A >= 1`` complete windows (F = 0 if
    none): window ``i`` is rows ``[4 i, 4 i + 20)`` (:func:`windows_from_fbank`). This compact form
    is what :class:`FeatureCache` stores (5x smaller than the overlapping windows).
    """
    x = resample_for_fps(audio, sr, fps)
    n_windows = n_speech_windows(x.size)
    if n_windows == 0:
        return np.zeros((0, opts.num_mel_bins), dtype=np.float32)
    used = HOP_SAMPLES * (n_windows - 1) + WINDOW_SAMPLES
    fbank = kaldi_fbank(x[:used], opts)
    n_rows = FBANK_FRAMES_PER_HOP * (n_windows - 1) + FBANK_FRAMES_PER_WINDOW
    assert fbank.shape[0] == n_rows, (fbank.shape, n_rows)
    return normalise_fbank(fbank)


def windows_from_fbank(fbank: np.ndarray, n_frames: int | None = None) -> np.ndarray:
    """Overlapping speech windows from a :func:`clip_fbank` array.

    Args:
        fbank: (F, 128) with ``F = 4 (A - 1) + 20``.
        n_frames: mesh frames T of the paired sequence; if given, only ``min(A, T - 4)`` windows
            are returned (window ``i`` pairs with mesh frames ``[i, i + 5)``).

    Returns:
        (N, 20, 128) float32, a fresh contiguous array.
    """
    fbank = np.asarray(fbank, dtype=np.float32)
    if fbank.ndim != 2 or (fbank.shape[0] and (fbank.shape[0] - FBANK_FRAMES_PER_WINDOW) % FBANK_FRAMES_PER_HOP):
        raise InputError(f"fbank: expected (4 (A-1) + 20, n_mels) rows, got shape {fbank.shape}")
    n_windows = 0 if fbank.shape[0] == 0 else 1 + (fbank.shape[0] - FBANK_FRAMES_PER_WINDOW) // FBANK_FRAMES_PER_HOP
    if n_frames is not None:
        n_windows = max(0, min(n_windows, int(n_frames) - (FRAMES_PER_WINDOW - 1)))
    if n_windows == 0:
        return np.zeros((0, FBANK_FRAMES_PER_WINDOW, fbank.shape[1]), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(fbank, FBANK_FRAMES_PER_WINDOW, axis=0)
    view = view[::FBANK_FRAMES_PER_HOP][:n_windows]  # (N, n_mels, 20)
    return np.ascontiguousarray(view.transpose(0, 2, 1))


def speech_windows(
    audio: np.ndarray,
    sr: int,
    fps: float,
    n_frames: int | None = None,
    opts: FbankOptions = FbankOptions(),
) -> np.ndarray:
    """The paper's speech input for each 5-frame mesh window of a clip.

    Args:
        audio: (n_samples,) mono float samples in [-1, 1] (integer PCM is scaled to it, as ``torchaudio.load``
            gives the official script its samples).
        sr: their sample rate in Hz.
        fps: mesh frame rate of the paired vertex sequence (25 for LRS3, 30 for VOCASET).
        n_frames: number of mesh frames T; if given, ``min(A, T - 4)`` windows are returned.

    Returns:
        (N, 20, 128) float32 normalised log-mel windows; window ``i`` pairs with mesh frames
        ``[i, i + 5)``. N may be 0 (audio shorter than 5 frames); callers that need windows raise.
    """
    return windows_from_fbank(clip_fbank(audio, sr, fps, opts), n_frames)


def pad_frames(windows: np.ndarray, n_frames: int) -> np.ndarray:
    """Pad the time axis of (N, T_a, 128) windows to ``n_frames`` rows.

    The padding value is a zero log-mel energy after normalisation (``-FBANK_MEAN / (2 STD)``),
    which is what the AudioMAE / CAV-MAE loaders do (zero-pad the fbank to ``target_length``, then
    normalise). The paper's stage 1 uses 64-frame spectrograms while stage 2, PLRS and the loss
    feed 20 frames; how stage 1 padded is NOT FOUND in the paper, so this follows AudioMAE.
    """
    w = np.asarray(windows, dtype=np.float32)
    if w.ndim != 3 or w.shape[1] > n_frames:
        raise InputError(f"windows: expected (N, T_a <= {n_frames}, n_mels), got shape {w.shape}")
    fill = np.float32(-FBANK_MEAN / (2 * FBANK_STD))
    out = np.full((w.shape[0], n_frames, w.shape[2]), fill, dtype=np.float32)
    out[:, : w.shape[1]] = w
    return out


def _check_audio(audio: np.ndarray, sr: int) -> np.ndarray:
    x = np.asarray(audio)
    if x.dtype.kind not in "fiu":
        raise InputError(f"audio: expected numeric samples, got dtype {x.dtype}")
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise InputError(f"audio: expected mono samples of shape (n,), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("audio: holds NaN or inf samples")
    if isinstance(sr, (bool, np.bool_)) or not (isinstance(sr, (int, np.integer)) and sr > 0):
        raise InputError(f"sr: expected a positive integer sample rate, got {sr!r}")
    if x.dtype.kind in "iu":  # integer PCM (e.g. scipy.io.wavfile): to [-1, 1] as torchaudio.load gives it
        return pcm_to_float(x, "audio")
    check_float_peak(x, "audio", "divide int16 values by 32768, or pass the int16 array")
    return x.astype(np.float32, copy=False)


class FeatureCache:
    """Per-clip speech features computed once and cached on disk.

    Each entry is the compact :func:`clip_fbank` array of one audio file at one frame rate, saved
    with ``np.save`` (atomic write, read back with ``allow_pickle=False``) under
    ``root / "<sha256>.npy"``. The key hashes the file's bytes, the frame rate, the fbank options
    and :data:`FEATURE_VERSION`, so an edited file or a change of parameters never reuses a stale
    entry. A corrupt entry is recomputed and overwritten.
    """

    def __init__(self, root: str | os.PathLike[str], opts: FbankOptions = FbankOptions()) -> None:
        self.root = Path(root)
        self.opts = opts

    def key(self, audio_path: str | os.PathLike[str], fps: float) -> str:
        """Hex sha256 of the file bytes + parameters. The file must be a regular file (:func:`p3d.io.open_regular`:
        a named pipe in a corpus' ``wav/`` folder is refused at once; plain ``open()`` blocked on it forever)."""
        from p3d.io import open_regular

        h = hashlib.sha256()
        with open_regular(audio_path, "audio file") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        params = {"fps": float(fps), "opts": dataclasses.asdict(self.opts), "version": FEATURE_VERSION,
                  "resampler": "sinc_interp_hann/6/0.99", "channel": 0}
        h.update(json.dumps(params, sort_keys=True).encode())
        return h.hexdigest()

    def fbank(self, audio_path: str | os.PathLike[str], fps: float) -> np.ndarray:
        """The clip's (F, 128) normalised fbank (:func:`clip_fbank`), from the cache if present."""
        from p3d.atomic import save_npy

        path = self.root / f"{self.key(audio_path, fps)}.npy"
        if path.exists():
            try:
                return np.load(path, allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                log.warning("feature cache entry %s unreadable (%s); recomputing", path, exc)
        samples, sr = load_speech_audio(audio_path)
        fbank = clip_fbank(samples, sr, fps, self.opts)
        save_npy(path, fbank)
        return fbank

    def windows(self, audio_path: str | os.PathLike[str], fps: float, n_frames: int | None = None) -> np.ndarray:
        """(N, 20, 128) speech windows of a clip (:func:`speech_windows`), cached."""
        return windows_from_fbank(self.fbank(audio_path, fps), n_frames)
