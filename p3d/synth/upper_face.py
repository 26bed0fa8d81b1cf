"""Upper-face motion driven by prosody: brow raises and blinks (the FDD region of the synthetic face).

Talking faces move above the mouth too: the brows rise on accented syllables and at the start of a
phrase (Ekman's "batons"; Cavé et al., ICSLP 1996; Granström & House, Speech Communication 2005),
and people blink every few seconds (roughly 15-25 per minute in conversation; Bentivoglio et al.,
Mov. Disord. 1997), preferably at phrase boundaries (Nakano & Kitazawa, Exp. Brain Res. 2010).
Without this the ground-truth upper face is still, its FDD dynamics are 0, and any predicted
upper-face motion only makes FDD worse.
:func:`upper_face_motion` returns the rig's upper-face parameters (:data:`p3d.synth.rig.UPPER_PARAMS`:
brow, blink; (T, 2) in [0, 1]) for one clip:

- **Brow raises.** A *phrase* starts at the first phoneme of the utterance and after every pause of
  at least :data:`PHRASE_PAUSE_S`. The first stressed vowel (espeak stress mark ``'`` or ``,``) of a
  phrase gets a raise with probability :data:`PHRASE_START_RAISE_P`; every other primary-stressed
  vowel with the speaker's ``brow_rate``. A raise starts 100 ms before the vowel, rises over 150 ms
  (raised cosine), holds to the vowel's end and falls over 300 ms; overlapping raises merge (maximum).
  Its height is ``brow_amplitude * effort * (0.6 + 0.4 * energy) * U(0.8, 1.2)``, with ``energy``
  the vowel's RMS over the loudest vowel of the clip, stressed or not (prosodic prominence, audible), and
  ``effort`` the clip's articulation-amplitude factor (louder clips: bigger raises, as the lips).
- **Blinks.** Spontaneous blinks as a renewal process with intervals ``U(2/3, 4/3) * blink_interval_s``
  (2-6 s for the identity means 3-4.5 s), in stationary phase at the clip start; plus, with probability
  :data:`BOUNDARY_BLINK_P`, a blink 50 ms into every pause of at least :data:`PHRASE_PAUSE_S` after
  speech (phrase boundaries, the final one included). Blinks closer than 0.5 s to an earlier one are
  dropped. A blink lasts ``U(150, 250)`` ms: the lid closes over the first 40 % (raised cosine) and
  opens over the rest; peak closure ``U(0.9, 1)``.

Frames are sampled at their centres ``(k + 0.5) / fps``. Everything derives from the given ``rng``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from p3d.errors import InputError
from p3d.synth.rig import BLINK, BROW, UPPER_PARAMS
from p3d.synth.visemes import saturate, viseme_of

PHRASE_PAUSE_S = 0.12
PHRASE_START_RAISE_P = 0.85
BOUNDARY_BLINK_P = 0.5
BROW_LEAD_S, BROW_RISE_S, BROW_FALL_S = 0.10, 0.15, 0.30
BLINK_DURATION_S = (0.15, 0.25)
BLINK_CLOSING_SHARE = 0.4
MIN_BLINK_GAP_S = 0.5
_VOWEL_VISEMES = {"aa", "E", "ih", "oh", "ou", "RR"}


@dataclasses.dataclass(frozen=True)
class UpperFaceStyle:
    """How one speaker moves the upper face in one clip.

    Attributes:
        brow_amplitude: brow activation of a raise on the clip's loudest vowel at effort 1 (0-1).
        brow_rate: probability that a primary-stressed vowel (not phrase-initial) gets a raise.
        blink_interval_s: mean interval between spontaneous blinks (s).
        effort: multiplies the raise heights (the clip's articulation-amplitude factor).
    """

    brow_amplitude: float = 0.5
    brow_rate: float = 0.4
    blink_interval_s: float = 3.5
    effort: float = 1.0

    def __post_init__(self) -> None:
        for name, lo, hi in (("brow_amplitude", 0.0, 1.0), ("brow_rate", 0.0, 1.0),
                             ("blink_interval_s", 0.5, 60.0), ("effort", 0.0, 5.0)):
            value = getattr(self, name)
            if not (np.isfinite(value) and lo <= value <= hi):
                raise InputError(f"upper-face style {name} must lie in [{lo}, {hi}], got {value}")


def _raised_cosine(x: np.ndarray) -> np.ndarray:
    """0 at x <= 0, 1 at x >= 1, smooth (C1) in between."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def brow_events(phonemes: Sequence[tuple[str, float, float]], stress: Sequence[int], energy: np.ndarray,
                style: UpperFaceStyle, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """Brow raises ``(vowel start s, vowel end s, height)`` of one clip (module docstring)."""
    events = []
    phrase_start = True
    for i, (sym, s, e) in enumerate(phonemes):
        if viseme_of(sym) == "sil":
            if e - s >= PHRASE_PAUSE_S:
                phrase_start = True
            continue
        st = stress[i] if i < len(stress) else 0
        if st == 0 or viseme_of(sym) not in _VOWEL_VISEMES:
            continue
        u = float(rng.uniform())  # always drawn: the stream does not depend on the branch
        jitter = float(rng.uniform(0.8, 1.2))
        if phrase_start:
            take, phrase_start = u < PHRASE_START_RAISE_P, False
        else:
            take = st == 2 and u < style.brow_rate
        if take:
            events.append((s, e, style.brow_amplitude * style.effort * (0.6 + 0.4 * float(energy[i])) * jitter))
    return events


def blink_times(phonemes: Sequence[tuple[str, float, float]], duration: float, style: UpperFaceStyle,
                rng: np.random.Generator) -> list[float]:
    """Blink onsets (s) in ``[0, duration)`` of one clip (module docstring), sorted."""
    mean = style.blink_interval_s
    spontaneous = []
    t = float(rng.uniform(0.0, 1.0)) * mean * float(rng.uniform(2 / 3, 4 / 3))  # stationary phase
    while t < duration:
        spontaneous.append(t)
        t += mean * float(rng.uniform(2 / 3, 4 / 3))
    boundary = []
    spoke = False
    for sym, s, e in phonemes:
        if viseme_of(sym) != "sil":
            spoke = True
        elif spoke and e - s >= PHRASE_PAUSE_S:
            if float(rng.uniform()) < BOUNDARY_BLINK_P:
                boundary.append(s + 0.05)
    kept: list[float] = []
    for t in sorted(boundary + spontaneous):
        if t < duration and (not kept or t - kept[-1] >= MIN_BLINK_GAP_S):
            kept.append(t)
    return kept


def vowel_energy(phonemes: Sequence[tuple[str, float, float]], audio: np.ndarray | None,
                 sample_rate: int) -> np.ndarray:
    """(N,) RMS of each phoneme's audio over the largest one among stressed-or-not vowels (1 = the
    loudest vowel); ones without audio."""
    n = len(phonemes)
    if audio is None or n == 0:
        return np.ones(n)
    x = np.asarray(audio, dtype=np.float64)
    rms = np.zeros(n)
    for i, (sym, s, e) in enumerate(phonemes):
        seg = x[int(s * sample_rate):max(int(e * sample_rate), int(s * sample_rate) + 1)]
        rms[i] = np.sqrt(np.mean(seg ** 2)) if seg.size else 0.0
    vowels = [i for i, p in enumerate(phonemes) if viseme_of(p[0]) in _VOWEL_VISEMES]
    top = rms[vowels].max() if vowels else rms.max()
    return np.clip(rms / top, 0.0, 1.0) if top > 0 else np.ones(n)


def upper_face_motion(phonemes: Sequence[tuple[str, float, float]], stress: Sequence[int], fps: float,
                      n_frames: int, style: UpperFaceStyle, rng: np.random.Generator | int,
                      audio: np.ndarray | None = None, sample_rate: int = 16000) -> np.ndarray:
    """(T, 2) float64 upper-face parameters (brow, blink) in [0, 1] for one clip.

    Args:
        phonemes: ``(espeak mnemonic, start_s, end_s)`` tiling the clip (:class:`p3d.synth.speech.Utterance`).
        stress: per phoneme 0 / 1 (secondary) / 2 (primary), as ``Utterance.stress``.
        fps, n_frames: the frame grid (frame k at ``(k + 0.5) / fps``).
        style: :class:`UpperFaceStyle`.
        rng: generator or int seed.
        audio, sample_rate: the clip's speech, for the vowel energies (None: all vowels equal).
    """
    if not (np.isfinite(fps) and fps > 0) or int(n_frames) != n_frames or n_frames < 0:
        raise InputError(f"upper_face_motion: fps must be > 0 and n_frames a non-negative integer, "
                         f"got {fps}, {n_frames}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    t = (np.arange(int(n_frames)) + 0.5) / fps
    out = np.zeros((int(n_frames), len(UPPER_PARAMS)))
    energy = vowel_energy(phonemes, audio, sample_rate)
    for s, e, height in brow_events(phonemes, stress, energy, style, gen):
        onset = s - BROW_LEAD_S
        rise = _raised_cosine((t - onset) / BROW_RISE_S)
        fall = 1.0 - _raised_cosine((t - max(e, onset + BROW_RISE_S)) / BROW_FALL_S)
        out[:, BROW] = np.maximum(out[:, BROW], height * np.minimum(rise, fall))
    duration = n_frames / fps
    for onset in blink_times(phonemes, duration, style, gen):
        length = float(gen.uniform(*BLINK_DURATION_S))
        peak = float(gen.uniform(0.9, 1.0))
        closing = BLINK_CLOSING_SHARE * length
        shape = np.where(t < onset + closing, _raised_cosine((t - onset) / closing),
                         1.0 - _raised_cosine((t - onset - closing) / (length - closing)))
        out[:, BLINK] = np.maximum(out[:, BLINK], peak * shape)
    out[:, BROW] = saturate(out[:, BROW])
    return np.clip(out, 0.0, 1.0)
