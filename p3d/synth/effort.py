"""Vocal effort: how louder speech differs from softer speech beyond its gain.

A speaker who talks louder does not just turn up a volume knob. The vocal-effort and Lombard-speech
literature (e.g. Junqua, JASA 93:510, 1993; Traunmüller & Eriksson, JASA 107:3438, 2000; Lu & Cooke,
JASA 124:3261, 2008) reports, with rising effort: a flatter spectral tilt (the glottal source gets
richer in harmonics, so high frequencies rise faster than the overall level: more energy in the
upper formants), a higher fundamental frequency (a fraction of a semitone per dB), and longer,
slower speech. So a clip's effort stays audible after its loudness is normalised away (as the
talkers' audio front-ends do: per-utterance normalisation of the log-mel features, wav2vec2's
waveform normalisation).

The synthetic corpora express a clip's vocal effort as ``effort_db``: its intended level in dB
relative to the speaker's normal level (the identity-wise loudness offset the corpus draws per clip,
MEAD levels included). :func:`effort_voice` maps it to espeak-ng settings and :func:`apply_tilt` to
a spectral filter, each scaled by the identity's ``sensitivity`` (how strongly this speaker's voice
changes with effort, 0.75-1.25 in :mod:`p3d.synth.identity`):

==========================  ==========================  ==================================================
cue                         per dB of effort            soft (-3 dB) vs loud (+3 dB) MEAD levels
==========================  ==========================  ==================================================
espeak gain (``volume``)    the dB itself (the corpus)  about 6-7 dB RMS
spectral tilt (pivot 1 kHz) +0.4 dB / octave            about 2.4 dB / octave flatter
upper formants (2-4 kHz)    +0.5 dB (a raised cosine    about +3 dB at 3 kHz, on top of the tilt
                            bump centred on 3 kHz)
F0 (espeak ``pitch``)       +0.35 semitone              about +2.1 semitones (espeak pitch: 10 units ~
                                                        10 % F0, measured on en-us and en-us+f2)
speaking rate (``rate``)    -1 %                        about 6 % slower
==========================  ==========================  ==================================================

The filter (:func:`tilt_filter`) is a linear-phase FIR (:func:`scipy.signal.firwin2`, 129 taps at
16 kHz, applied with the exact group-delay compensation of ``np.convolve(mode="same")``), so phoneme
timings do not move; its output is rescaled to the input's RMS, so the level is the espeak gain's
alone and the filter changes timbre only. Effort 0 leaves the audio untouched.
"""
from __future__ import annotations

import functools

import numpy as np

from p3d.errors import InputError

#: Spectral-tilt change per dB of effort (dB per octave, pivot :data:`TILT_PIVOT_HZ`).
TILT_DB_PER_OCTAVE_PER_DB = 0.4
#: Gain at the upper-formant bump per dB of effort (dB).
FORMANT_DB_PER_DB = 0.5
#: Pivot of the tilt: unchanged gain at this frequency (Hz).
TILT_PIVOT_HZ = 1000.0
#: Centre and half-width of the upper-formant bump (Hz).
FORMANT_CENTRE_HZ, FORMANT_HALF_WIDTH_HZ = 3000.0, 1200.0
#: F0 change per dB of effort (semitones).
F0_SEMITONES_PER_DB = 0.35
#: espeak-ng pitch units per semitone (10 units ~ 10 % of F0 ~ 1.65 semitone, measured).
ESPEAK_PITCH_UNITS_PER_SEMITONE = 10.0 / 1.65
#: Relative speaking-rate change per dB of effort.
RATE_PER_DB = -0.01
#: Tilt filter length (taps, odd: linear phase with an integer delay).
FILTER_TAPS = 129
#: Effort range accepted (dB re the speaker's normal level).
MAX_EFFORT_DB = 30.0


def _check_effort(effort_db: float, sensitivity: float) -> None:
    if not (np.isfinite(effort_db) and abs(effort_db) <= MAX_EFFORT_DB):
        raise InputError(f"effort_db must be finite and within ±{MAX_EFFORT_DB:g} dB, got {effort_db}")
    if not (np.isfinite(sensitivity) and 0.0 <= sensitivity <= 3.0):
        raise InputError(f"effort sensitivity must lie in [0, 3], got {sensitivity}")


def effort_voice(effort_db: float, pitch: int, rate: int, sensitivity: float = 1.0) -> tuple[int, int]:
    """espeak-ng ``(pitch, rate)`` of a clip spoken with ``effort_db`` by a speaker whose normal
    settings are ``pitch`` (0-100) and ``rate`` (words per minute); clipped to espeak's ranges."""
    _check_effort(effort_db, sensitivity)
    e = float(effort_db) * float(sensitivity)
    p = pitch + e * F0_SEMITONES_PER_DB * ESPEAK_PITCH_UNITS_PER_SEMITONE
    r = rate * (1.0 + RATE_PER_DB * e)
    return int(np.clip(round(p), 0, 100)), int(np.clip(round(r), 80, 450))


def tilt_response_db(freq_hz: np.ndarray, effort_db: float, sensitivity: float = 1.0) -> np.ndarray:
    """Gain (dB) of the effort filter at ``freq_hz``: ``s log2(f / pivot) + g bump(f)``, where
    ``s = 0.4 e`` dB/octave, ``g = 0.5 e`` dB and ``e = effort_db * sensitivity`` (module table);
    frequencies below 100 Hz get the 100 Hz gain (no boost or cut of DC)."""
    _check_effort(effort_db, sensitivity)
    e = float(effort_db) * float(sensitivity)
    f = np.maximum(np.asarray(freq_hz, dtype=np.float64), 100.0)
    u = np.clip((f - FORMANT_CENTRE_HZ) / FORMANT_HALF_WIDTH_HZ, -1.0, 1.0)
    bump = 0.5 * (1.0 + np.cos(np.pi * u))
    return e * (TILT_DB_PER_OCTAVE_PER_DB * np.log2(f / TILT_PIVOT_HZ) + FORMANT_DB_PER_DB * bump)


@functools.lru_cache(maxsize=512)
def _filter(effort_key: float, sample_rate: int) -> np.ndarray:
    from scipy.signal import firwin2

    nyq = sample_rate / 2.0
    freq = np.linspace(0.0, nyq, 257)
    gain = 10.0 ** (tilt_response_db(freq, effort_key) / 20.0)
    return firwin2(FILTER_TAPS, freq, gain, fs=sample_rate)


def tilt_filter(effort_db: float, sample_rate: int, sensitivity: float = 1.0) -> np.ndarray:
    """(129,) float64 linear-phase FIR taps with the response :func:`tilt_response_db`."""
    _check_effort(effort_db, sensitivity)
    if int(sample_rate) != sample_rate or sample_rate < 8000:
        raise InputError(f"sample_rate must be an integer >= 8000 Hz, got {sample_rate}")
    # The key is rounded to 1e-3 dB so the cache hits for repeated efforts (a 1e-3 dB difference is inaudible).
    return _filter(round(float(effort_db) * float(sensitivity), 3), int(sample_rate))


def apply_tilt(audio: np.ndarray, sample_rate: int, effort_db: float, sensitivity: float = 1.0) -> np.ndarray:
    """``audio`` (n,) filtered by :func:`tilt_filter` and rescaled to its own RMS; float32, clipped to
    [-1, 1]. Zero effort (or ``sensitivity`` 0) returns an unchanged float32 copy."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise InputError(f"audio: expected a mono 1-D signal, got shape {x.shape}")
    _check_effort(effort_db, sensitivity)
    if effort_db * sensitivity == 0.0 or x.size == 0:
        return x.astype(np.float32)
    y = np.convolve(x, tilt_filter(effort_db, sample_rate, sensitivity), mode="same")
    rms_in, rms_out = np.sqrt(np.mean(x ** 2)), np.sqrt(np.mean(y ** 2))
    if rms_out > 0:
        y *= rms_in / rms_out
    return np.clip(y, -1.0, 1.0).astype(np.float32)
