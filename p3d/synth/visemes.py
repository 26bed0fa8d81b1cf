"""Visemes (inventory and phoneme map in :mod:`p3d.phonemes`) and coarticulation (Cohen-Massaro dominance).

The viseme set, the espeak-ng phoneme -> viseme map and its fallbacks are documented in
:mod:`p3d.phonemes` (re-exported here).

Coarticulation (:func:`articulate`): Cohen & Massaro (1993) dominance blending. Each phoneme i has a
target pose ``T_i`` (its viseme's :data:`VISEME_TARGETS`, a :mod:`p3d.synth.rig` parameter vector) and
per-parameter exponential dominance ``D_ik(t) = a_ik exp(-rho(d_i(t)) / tau_ik)``, where ``d_i(t)``
is the distance from t to the phoneme's interval ``[start - anticipation, end]`` (0 inside it: a
plateau), ``rho(d) = sqrt(d^2 + e^2) - e`` softens the plateau edge (e = 5 ms, so the result is C1)
and tau is the anticipatory (before) or carry-over (after) time constant. The trajectory is the dominance-
weighted mean ``p_k(t) = sum_i D_ik T_ik / sum_i D_ik``: smooth (C1), deterministic, and a phoneme with
a high dominance on a parameter imposes it: bilabials have closure dominance 1000, so /p b m/ close
the lips at every frame inside them; labiodentals impose the lower-lip tuck; lingual consonants have
low lip dominance and take their neighbours' rounding (as /t/ in "two"). Diphthongs move from an onset
to an offset target (:data:`DIPHTHONGS`). The style's ``anticipation_s`` (0-60 ms) extends every
plateau earlier (by at most half the preceding segment; not the bilabial closure nor the labiodental
tuck, whose onset is the acoustic onset), so the lips reach each target before its sound; its
``amplitude`` scales every parameter except closure (which must still close) after
blending, followed by a smooth saturation toward 1 (:func:`saturate`: identity up to 0.7), so the
trajectories stay C1 and in [0, 1] for any amplitude.

Frame labels (:func:`frame_labels`): frame k gets the last phoneme whose start <= (k + 0.5) / fps
(frames before the first phoneme or after the last one's end: ``"_"``).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from p3d.errors import InputError
from p3d.phonemes import (_STRESS, PAUSE, PHONEME_TO_VISEME, VISEME_INDEX, VISEMES,  # noqa: F401 (re-exported)
                          canonical_phoneme, viseme_ids, viseme_of)
from p3d.synth.rig import CLOSURE, K, PARAMS

log = logging.getLogger(__name__)

#: Diphthongs and r-coloured vowels: (onset viseme, offset viseme); the onset holds for the first
#: 55% of the phoneme (its frame label stays the onset viseme).
DIPHTHONGS: dict[str, tuple[str, str]] = {
    "aI": ("aa", "ih"), "aU": ("aa", "ou"), "OI": ("oh", "ih"), "eI": ("E", "ih"), "oU": ("oh", "ou"),
    "aI@": ("aa", "E"), "aI3": ("aa", "RR"), "aU@": ("aa", "E"), "A@": ("aa", "RR"), "O@": ("oh", "RR"),
    "o@": ("oh", "RR"), "e@": ("E", "RR"), "i@3": ("ih", "RR"), "i@": ("ih", "E"), "U@": ("ou", "RR"),
}
_DIPHTHONG_ONSET = 0.55

#: Target pose per viseme, in :data:`p3d.synth.rig.PARAMS` order (jaw, closure, round, spread, tuck,
#: raise), each in [0, 1].
VISEME_TARGETS: dict[str, np.ndarray] = {
    v: np.asarray(t, dtype=np.float64)
    for v, t in {
        #      jaw   clos  round spread tuck raise
        "sil": (0.00, 0.85, 0.00, 0.00, 0.00, 0.00),
        "PP": (0.06, 1.00, 0.00, 0.00, 0.00, 0.00),
        "FF": (0.08, 0.35, 0.00, 0.15, 1.00, 0.40),
        "TH": (0.20, 0.00, 0.00, 0.20, 0.00, 0.25),
        "DD": (0.18, 0.00, 0.00, 0.15, 0.00, 0.10),
        "kk": (0.26, 0.00, 0.00, 0.10, 0.00, 0.05),
        "CH": (0.14, 0.00, 0.75, 0.00, 0.00, 0.45),
        "SS": (0.07, 0.15, 0.00, 0.50, 0.00, 0.20),
        "nn": (0.17, 0.00, 0.00, 0.10, 0.00, 0.05),
        "RR": (0.16, 0.00, 0.55, 0.00, 0.00, 0.15),
        "aa": (0.62, 0.00, 0.00, 0.10, 0.00, 0.20),
        "E": (0.38, 0.00, 0.00, 0.40, 0.00, 0.15),
        "ih": (0.22, 0.00, 0.00, 0.60, 0.00, 0.10),
        "oh": (0.45, 0.00, 0.65, 0.00, 0.00, 0.05),
        "ou": (0.16, 0.00, 1.00, 0.00, 0.00, 0.00),
    }.items()
}


@dataclasses.dataclass(frozen=True)
class Dominance:
    """Dominance of a viseme: per-parameter strength ``a`` (K,) and time constants (s, (K,)) before
    (anticipatory) and after (carry-over) the phoneme's interval."""

    strength: np.ndarray
    tau_before: np.ndarray
    tau_after: np.ndarray
    anticipates: np.ndarray


def _dom(strength: dict[str, float] | None = None, tau: float = 0.035,
         taus: dict[str, tuple[float, float]] | None = None, base: float = 1.0,
         no_anticipation: tuple[str, ...] = ()) -> Dominance:
    """A :class:`Dominance`: ``base`` strength and ``tau`` everywhere, except the parameters named in
    ``strength`` and ``taus`` (name -> (tau_before, tau_after)); the parameters in ``no_anticipation``
    keep their plateau at the acoustic onset (a stop's closure IS its acoustic onset)."""
    a = np.full(K, base)
    for name, value in (strength or {}).items():
        a[PARAMS.index(name)] = value
    tb, ta = np.full(K, tau), np.full(K, tau)
    for name, (before, after) in (taus or {}).items():
        tb[PARAMS.index(name)], ta[PARAMS.index(name)] = before, after
    ant = np.ones(K)
    for name in no_anticipation:
        ant[PARAMS.index(name)] = 0.0
    return Dominance(a, tb, ta, ant)


# Exponential dominance: strength a against one competitor of strength 1 is half-way at a distance
# rho = tau ln(a) outside its interval, and goes from 10% to 90% over tau ln(81) = 4.4 tau. Bilabial
# closure (a = 200, tau = 7 ms) is >= 99% from 9 ms before the stop, half-way 42 ms before it, and
# ramps over ~30 ms (lips closing at ~0.3 m/s); the labiodental tuck is similar; lip rounding is
# anticipated over ~100 ms, as known for rounded vowels.
_LINGUAL = {"closure": 0.5, "round": 0.15, "spread": 0.3, "tuck": 0.5, "raise": 0.3}
_CONSONANT_TAU = 0.025
_VOWEL_TAU = 0.035
#: Dominance per viseme.
VISEME_DOMINANCE: dict[str, Dominance] = {
    "sil": _dom(base=0.6, tau=0.04),
    "PP": _dom({"closure": 200.0, "jaw": 2.0, "tuck": 5.0}, tau=_CONSONANT_TAU,
               taus={"closure": (0.007, 0.007)}, no_anticipation=("closure",)),
    "FF": _dom({"tuck": 30.0, "closure": 2.0, "raise": 2.0, "jaw": 2.0}, tau=_CONSONANT_TAU,
               taus={"tuck": (0.009, 0.009)}, no_anticipation=("tuck",)),
    "TH": _dom({**_LINGUAL, "jaw": 1.5}, tau=_CONSONANT_TAU),
    "DD": _dom(_LINGUAL, tau=_CONSONANT_TAU),
    "kk": _dom(_LINGUAL, tau=_CONSONANT_TAU),
    "CH": _dom({"round": 4.0, "raise": 2.0, "jaw": 2.0}, tau=_CONSONANT_TAU, taus={"round": (0.05, 0.03)}),
    "SS": _dom({"jaw": 3.0, "spread": 1.5, "round": 0.4}, tau=_CONSONANT_TAU),
    "nn": _dom(_LINGUAL, tau=_CONSONANT_TAU),
    "RR": _dom({"round": 3.0}, tau=_CONSONANT_TAU, taus={"round": (0.05, 0.03)}),
    "aa": _dom({"jaw": 2.0}, tau=_VOWEL_TAU),
    "E": _dom({"jaw": 1.5, "spread": 1.5}, tau=_VOWEL_TAU),
    "ih": _dom({"jaw": 1.5, "spread": 2.0}, tau=_VOWEL_TAU),
    "oh": _dom({"jaw": 2.0, "round": 4.0}, tau=_VOWEL_TAU, taus={"round": (0.06, 0.035)}),
    "ou": _dom({"round": 5.0}, tau=_VOWEL_TAU, taus={"round": (0.06, 0.035)}),
}
#: Knee of :func:`saturate`: amplitude-scaled parameters pass through unchanged below it.
SATURATION_KNEE = 0.7
#: Softening of the plateau edge (s): distances enter as sqrt(d^2 + e^2) - e, so every dominance
#: function, and the blended trajectory, is continuously differentiable.
EDGE_SOFTENING_S = 0.005

#: Phonemes weaker than their viseme (multiplies every strength): /h/ and the glottal stop have no
#: lip shape of their own; reduced vowels and glides are brief and coarticulate strongly.
PHONEME_DOMINANCE_SCALE: dict[str, float] = {
    "h": 0.1, "?": 0.3, "@": 0.5, "@2": 0.5, "@-": 0.5, "@5": 0.5, "a#": 0.6, "I2": 0.7, "I#": 0.7,
    ";": 0.5, "j": 0.7, "t#": 0.6,
}

#: The phoneme groups of the paper's Fig. 4 (IPA as in the paper) -> espeak-ng en-us mnemonics.
PAPER_PHONEME_GROUPS: dict[str, tuple[str, ...]] = {
    "aj": ("aI",),
    "æ": ("a", "aa"),
    "ɑ": ("A:", "0", "A@"),
    "ej": ("eI",),
    "i": ("i:", "i"),
    "s,z": ("s", "z"),
    "tʃ": ("tS",),
    "f,v": ("f", "v"),
    "m": ("m",),
    "p": ("p",),
}

_REST_DOMINANCE = 1e-4  # a faint pull to silence so frames far from every phoneme are defined


@dataclasses.dataclass(frozen=True)
class ArticulationStyle:
    """How one speaker articulates one clip.

    Attributes:
        amplitude: multiplies every parameter except closure after blending (1 = the targets as they
            are, up to the smooth saturation above 0.7: :func:`saturate`); see
            :meth:`p3d.synth.identity.Identity.clip_amplitude`.
        anticipation_s: how much earlier (s, 0-0.06) each phoneme's plateau starts.
    """

    amplitude: float = 1.0
    anticipation_s: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.amplitude) and self.amplitude >= 0):
            raise InputError(f"style amplitude must be a finite number >= 0, got {self.amplitude}")
        if not (np.isfinite(self.anticipation_s) and 0 <= self.anticipation_s <= 0.2):
            raise InputError(f"style anticipation_s must lie in [0, 0.2] s, got {self.anticipation_s}")


def _check(phonemes: Sequence[tuple[str, float, float]], fps: float, n_frames: int) -> np.ndarray:
    if not (np.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a positive number, got {fps}")
    if int(n_frames) != n_frames or n_frames < 0:
        raise InputError(f"n_frames must be a non-negative integer, got {n_frames}")
    try:
        times = np.asarray([(float(s), float(e)) for _, s, e in phonemes], dtype=np.float64).reshape(-1, 2)
        symbols = [p[0] for p in phonemes]
    except (TypeError, ValueError) as exc:
        raise InputError(f"phonemes: expected a list of (symbol, start_s, end_s), got {exc}") from None
    if not all(isinstance(s, str) for s in symbols):
        raise InputError("phonemes: every symbol must be a string")
    if not np.all(np.isfinite(times)):
        raise InputError("phonemes: start/end times contain NaN or infinite values")
    if np.any(times[:, 1] < times[:, 0]):
        i = int(np.flatnonzero(times[:, 1] < times[:, 0])[0])
        raise InputError(f"phonemes: entry {i} ({symbols[i]!r}) ends before it starts")
    if np.any(np.diff(times[:, 0]) < 0):
        raise InputError("phonemes: start times must be non-decreasing")
    return times


def frame_labels(phonemes: Sequence[tuple[str, float, float]], fps: float,
                 n_frames: int) -> tuple[list[str], np.ndarray]:
    """Per-frame phoneme and viseme labels.

    Frame k gets the last phoneme whose start <= (k + 0.5) / fps; frames before the first phoneme or
    whose centre is at or past the last phoneme's end get ``"_"``.

    Returns:
        (phoneme symbol per frame (list of n_frames str), viseme index per frame (n_frames,) int64).
    """
    times = _check(phonemes, fps, n_frames)
    centres = (np.arange(int(n_frames)) + 0.5) / fps
    idx = np.searchsorted(times[:, 0], centres, side="right") - 1
    end = times[-1, 1] if len(times) else 0.0
    labels = [phonemes[i][0] if i >= 0 and c < end else PAUSE for i, c in zip(idx.tolist(), centres)]
    return labels, viseme_ids(labels)


def _segments(phonemes: Sequence[tuple[str, float, float]], times: np.ndarray):
    """(targets, strengths, tau_before, tau_after, anticipates) each (N, K), start (N,), end (N,)."""
    rows = []
    for (sym, _, _), (s, e) in zip(phonemes, times):
        scale = PHONEME_DOMINANCE_SCALE.get(sym.lstrip(_STRESS), 1.0)
        parts = DIPHTHONGS.get(sym.lstrip(_STRESS))
        if parts is not None and e > s:
            mid = s + _DIPHTHONG_ONSET * (e - s)
            pieces = [(parts[0], s, mid), (parts[1], mid, e)]
        else:
            pieces = [(viseme_of(sym), s, e)]
        for vis, a, b in pieces:
            dom = VISEME_DOMINANCE[vis]
            rows.append((VISEME_TARGETS[vis], dom.strength * scale, dom.tau_before, dom.tau_after,
                         dom.anticipates, a, b))
    if not rows:
        return (np.zeros((0, K)),) * 5 + (np.zeros(0),) * 2
    targets, strength, tau_b, tau_a, ant, start, end = zip(*rows)
    return (np.stack(targets), np.stack(strength), np.stack(tau_b), np.stack(tau_a), np.stack(ant),
            np.asarray(start), np.asarray(end))


def articulate(
    phonemes: Sequence[tuple[str, float, float]],
    fps: float,
    n_frames: int,
    style: ArticulationStyle | None = None,
) -> np.ndarray:
    """Rig parameters over time from timed phonemes (Cohen-Massaro coarticulation, module docstring).

    Args:
        phonemes: ``(espeak mnemonic, start_s, end_s)`` in time order (as from
            :mod:`p3d.synth.speech`); pauses are ``"_"``.
        fps: frame rate; frame k is evaluated at its centre, (k + 0.5) / fps.
        n_frames: number of frames T.
        style: amplitude and anticipation (default: 1 and 0 s).
    Returns:
        (T, K) float64 parameters in :data:`p3d.synth.rig.PARAMS` order, each in [0, 1].
    """
    style = style or ArticulationStyle()
    times = _check(phonemes, fps, n_frames)
    t = (np.arange(int(n_frames)) + 0.5) / fps
    targets, strength, tau_b, tau_a, ant, start, end = _segments(phonemes, times)
    # Anticipation: each plateau starts earlier, by at most half of the preceding segment (so a short
    # vowel between two bilabials still opens); not for a stop's closure or the /f v/ tuck. (N, K)
    prev = np.concatenate([[np.inf], end[:-1] - start[:-1]]) if len(start) else start
    start_k = start[:, None] - ant * np.minimum(style.anticipation_s, 0.5 * prev)[:, None]
    # Distance of every frame to every interval, 0 inside the plateau: (N, T, K).
    before = np.maximum(start_k[:, None, :] - t[None, :, None], 0.0)
    after = np.maximum(t[None, :] - end[:, None], 0.0)[:, :, None]
    eps = EDGE_SOFTENING_S
    rho_before = np.sqrt(before**2 + eps**2) - eps
    rho_after = np.sqrt(after**2 + eps**2) - eps
    z = rho_before / tau_b[:, None, :] + rho_after / tau_a[:, None, :]
    dom = strength[:, None, :] * np.exp(-z)  # (N, T, K)
    rest = VISEME_TARGETS["sil"]
    num = np.einsum("ntk,nk->tk", dom, targets) + _REST_DOMINANCE * rest
    den = dom.sum(axis=0) + _REST_DOMINANCE
    params = num / den
    scaled = saturate(params * style.amplitude)
    scaled[:, CLOSURE] = params[:, CLOSURE]
    return np.clip(scaled, 0.0, 1.0)


def saturate(v: np.ndarray) -> np.ndarray:
    """Smooth saturation toward 1: identity up to :data:`SATURATION_KNEE`, then ``knee + (1 - knee)
    tanh((v - knee) / (1 - knee))``; monotone, C2, < 1 for every finite v (no kinks, unlike a clip)."""
    v = np.asarray(v, dtype=np.float64)
    knee = SATURATION_KNEE
    return np.where(v <= knee, v, knee + (1.0 - knee) * np.tanh((np.maximum(v, knee) - knee) / (1.0 - knee)))


def viseme_pose(viseme: str) -> np.ndarray:
    """(K,) target parameters of ``viseme`` (a copy)."""
    if viseme not in VISEME_TARGETS:
        raise InputError(f"unknown viseme {viseme!r}; use one of {', '.join(VISEMES)}")
    return VISEME_TARGETS[viseme].copy()
