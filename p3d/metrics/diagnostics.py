"""Diagnostics that explain a metric's value: what kind of motion a prediction has, not how good it is.

A worse LVE, MTM or FDD says *that* a prediction moved differently from the ground truth; these say
*how*: jittery lips (:func:`lip_jerk`, :func:`lip_high_frequency_energy`), damped or exaggerated lips
(:func:`lip_amplitude`, :func:`lip_amplitude_ratio`; :func:`enrolled_lip_amplitude`, a speaker's usual
amplitude from their other clips), a still or restless upper face
(:func:`upper_face_motion`, and :func:`fdd_dynamics`, the exact per-clip term FDD differences).
Compute each on the prediction and on its ground truth and compare. None is a metric of the paper.

All take vertex sequences (T, V, 3) or (T, V*3) (a 2-D array is always the flattened layout) and
1-D vertex index lists (duplicates allowed: they weight means exactly as indexing with the list
does, as in :mod:`p3d.metrics.lve`), and raise :class:`p3d.errors.InputError` on bad input. Units
follow the input: for vertices in metres (VOCASET, FLAME) lengths are metres, ``fps`` is in frames
per second and time derivatives are per second.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from p3d.errors import InputError
from p3d.metrics._checks import (IndexLike, as_indices, as_template, as_vertices, check_finite, same_vertex_count,
                                squared_norm, take_vertices)
from p3d.metrics.fdd import upper_face_dynamics

#: Fewest frames :func:`lip_high_frequency_energy` accepts (a shorter Welch segment resolves nothing).
MIN_SPECTRUM_FRAMES = 8


def _fps(fps: object) -> float:
    if isinstance(fps, (bool, np.bool_)) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise InputError(f"fps: expected a frame rate in frames per second, got {fps!r}")
    value = float(fps)
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"fps: expected a finite frame rate > 0, got {value}")
    return value


def _two_frames(t: int, what: str) -> None:
    """A std over time needs 2 frames: numpy's std of one frame is 0, a still face whatever the frame shows."""
    if t < 2:
        raise InputError(f"pred: {what} needs at least 2 frames (a std over time), got {t}")


def _region(vertices: object, indices: IndexLike, name: str, region: str) -> np.ndarray:
    """The checked (T, L, 3) region of a vertex sequence, as float64."""
    v = as_vertices(vertices, name)
    idx = as_indices(indices, v.shape[1], f"{region}_vertices")
    out = take_vertices(v, idx).astype(np.float64, copy=False)
    check_finite(out, f"{name} ({region} vertices)")
    return out


def lip_jerk(pred: np.ndarray, lip_vertices: IndexLike, fps: float) -> float:
    """Mean magnitude of the third time derivative (jerk) of the lip vertex positions.

    ``jerk = mean over t and lip vertices v of ||D3 x_t(v)|| * fps^3``, with ``D3`` the third backward
    difference over frames (``np.diff(x, n=3, axis=0)``: ``x_t - 3 x_{t-1} + 3 x_{t-2} - x_{t-3}``), so
    T frames give T - 3 values. Units: input length units per s^3 (m/s^3 for metres). Exact for a
    cubic in time: ``x(t) = a t^3`` gives ``6 |a|`` at every frame. A static sequence gives 0.

    Jerk amplifies high-frequency motion (by (2 pi f)^3 at frequency f), so frame-to-frame jitter
    dominates it: it explains a rough prediction whose LVE or MTM is worse than its smooth GT's.
    Compare prediction and GT at the same ``fps`` (frame-level noise scales with fps^3).

    ``pred``: (T, V, 3) or (T, V*3) with T >= 4; ``lip_vertices``: 1-D indices; ``fps``: frame rate.
    """
    rate = _fps(fps)
    lips = _region(pred, lip_vertices, "pred", "lip")
    if lips.shape[0] < 4:
        raise InputError(f"pred: lip jerk needs at least 4 frames (a third difference), got {lips.shape[0]}")
    third = np.diff(lips, n=3, axis=0)
    return float(np.mean(np.sqrt(squared_norm(third)))) * rate ** 3


def lip_high_frequency_energy(pred: np.ndarray, lip_vertices: IndexLike, fps: float, cutoff_hz: float = 8.0, *,
                              nperseg: int | None = None) -> float:
    """Fraction in [0, 1] of the lip motion's energy at frequencies above ``cutoff_hz``.

    Every lip vertex coordinate is a signal over time; its power spectral density is estimated with
    Welch's method (:func:`scipy.signal.welch`: Hann window, ``nperseg`` frames per segment, default
    ``min(T, round(2 s * fps))``, half overlap, each segment's mean removed, one-sided density). The
    template, a constant, is removed with the mean, so none is needed. The fraction is the energy
    of the bins with frequency > ``cutoff_hz`` over the energy of all bins, summed over all lip
    coordinates: energy-weighted, so the lip vertices that move most dominate (a mean of per-signal
    fractions would let barely moving vertices' jitter count as much as the mouth's opening).

    Speech articulation lies mostly below about 8 Hz (syllable rates of 3-8 per second), so energy
    above the default cutoff is jitter or noise. A sinusoid of frequency f gives about 1 for
    f well above the cutoff and about 0 well below it (Hann leakage blurs bins near it). A sequence
    whose lips do not move gives 0.0 (no energy above the cutoff).

    ``cutoff_hz`` must lie in (0, fps / 2) (the Nyquist frequency); T >= :data:`MIN_SPECTRUM_FRAMES`.
    """
    from scipy.signal import welch

    rate = _fps(fps)
    if isinstance(cutoff_hz, (bool, np.bool_)) or not isinstance(cutoff_hz, (int, float, np.integer, np.floating)):
        raise InputError(f"cutoff_hz: expected a frequency in Hz, got {cutoff_hz!r}")
    cutoff = float(cutoff_hz)
    if not (math.isfinite(cutoff) and 0 < cutoff < rate / 2):
        raise InputError(f"cutoff_hz: expected a frequency in (0, {rate / 2:g}) Hz (below the Nyquist frequency "
                         f"of {rate:g} fps), got {cutoff}")
    lips = _region(pred, lip_vertices, "pred", "lip")
    t = lips.shape[0]
    if t < MIN_SPECTRUM_FRAMES:
        raise InputError(f"pred: a lip spectrum needs at least {MIN_SPECTRUM_FRAMES} frames, got {t}")
    if nperseg is None:
        seg = min(t, max(MIN_SPECTRUM_FRAMES, int(round(2.0 * rate))))
    else:
        if isinstance(nperseg, (bool, np.bool_)) or not isinstance(nperseg, (int, np.integer)) \
                or not MIN_SPECTRUM_FRAMES <= int(nperseg) <= t:
            raise InputError(f"nperseg: expected an integer segment length in [{MIN_SPECTRUM_FRAMES}, {t}] frames "
                             f"(the clip's length), got {nperseg!r}")
        seg = int(nperseg)
    signals = lips.reshape(t, -1)
    signals = signals - signals[0]  # exactly 0 where a coordinate never moves (a mean would leave rounding)
    if not signals.any():
        return 0.0
    freqs, psd = welch(signals, fs=rate, nperseg=seg, axis=0)  # psd: (F, L*3)
    total = float(psd.sum())
    if total <= 0.0:
        return 0.0
    return float(psd[freqs > cutoff].sum()) / total


def lip_amplitude(pred: np.ndarray, lip_vertices: IndexLike, template: np.ndarray) -> float:
    """Mean lip displacement from the neutral face: mean over t and lip vertices of ||x_t(v) - template(v)||.

    Units: input length units (metres for VOCASET). It explains damped (smaller than the GT's; the
    "mean face" of MSE-trained models) or exaggerated lips. It differs from SLCC's lip intensity
    (:func:`p3d.metrics.lip_intensity`), which measures frame-to-frame *speed*, not distance from rest.

    ``template``: the subject's neutral face, (V, 3) or (V*3,).
    """
    p = as_vertices(pred, "pred")
    tmpl = as_template(template, p.shape[1])
    idx = as_indices(lip_vertices, p.shape[1], "lip_vertices")
    lips = take_vertices(p, idx).astype(np.float64, copy=False)
    check_finite(lips, "pred (lip vertices)")
    return float(np.mean(np.sqrt(squared_norm(lips - tmpl[idx][None]))))


def lip_amplitude_ratio(pred: np.ndarray, gt: np.ndarray, lip_vertices: IndexLike, template: np.ndarray) -> float:
    """``lip_amplitude(pred) / lip_amplitude(gt)`` over their common frames (unitless).

    Below 1: the prediction's lips stay closer to the neutral face than the GT's (damped); above 1:
    exaggerated. Sequences are truncated to the shorter one, as LVE. NaN when the GT's lips never
    leave the template (the ratio is undefined; a speech clip has none such).
    """
    p = as_vertices(pred, "pred")
    g = as_vertices(gt, "gt")
    same_vertex_count(p, g, "pred", "gt")
    t = min(p.shape[0], g.shape[0])
    reference = lip_amplitude(g[:t], lip_vertices, template)
    amplitude = lip_amplitude(p[:t], lip_vertices, template)
    return amplitude / reference if reference > 0 else float("nan")


def enrolled_lip_amplitude(amplitudes: Any, identities: Any) -> np.ndarray:
    """Each clip's speaker-enrolled lip amplitude: the mean :func:`lip_amplitude` of the *other* clips of the
    same speaker (leave one clip out), from the ground-truth amplitudes of a set of clips.

    ``amplitudes``: (N,) GT lip amplitudes (:func:`lip_amplitude`, length units); ``identities``: (N,) speaker
    labels. Returns (N,) float64 in the same units; NaN for a speaker with a single clip (nothing to enrol
    from) or whose other clips' amplitudes are not finite. The reference of PLRS-e
    (:func:`p3d.metrics.plrs.plrs_enrolled`): how wide this speaker opens the mouth, learned without the clip.
    """
    try:
        raw = np.asarray(amplitudes)
        if raw.dtype.kind == "b":  # True would be an amplitude of 1
            raise TypeError
        a = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise InputError("amplitudes: expected numbers (lip amplitudes, length units)") from None
    ids = np.asarray(identities, dtype=object)
    if a.ndim != 1 or ids.shape != a.shape:
        raise InputError(f"amplitudes and identities: expected two 1-D arrays of one length, got shapes {a.shape} "
                         f"and {ids.shape}")
    if np.any(a[np.isfinite(a)] < 0):  # as plrs_enrolled, which reads these as the speaker's reference
        raise InputError("amplitudes: lip amplitudes are distances, expected >= 0")
    # speakers by label, in order of first appearance (np.unique sorted them: labels that do not sort, e.g. None
    # or a mix of numbers and text, were a TypeError traceback)
    rows: dict[Any, list[int]] = {}
    try:
        for i, label in enumerate(ids.tolist()):
            rows.setdefault(label, []).append(i)
    except TypeError:
        raise InputError("identities: speaker labels must be hashable") from None
    out = np.full(a.shape, np.nan)
    for idx_list in rows.values():
        idx = np.asarray(idx_list)
        ok = np.isfinite(a[idx])
        total, count = a[idx][ok].sum(), int(ok.sum())
        others = count - ok.astype(int)  # this clip's own amplitude left out when it counted
        with np.errstate(invalid="ignore", divide="ignore"):
            out[idx] = np.where(others > 0, (total - np.where(ok, a[idx], 0.0)) / np.maximum(others, 1), np.nan)
    return out


def upper_face_motion(pred: np.ndarray, upper_face_vertices: IndexLike) -> float:
    """How much the upper face moves: the RMS over upper-face vertices of their temporal std.

    ``sqrt(mean over v of mean over t of ||x_t(v) - mean_t x_t(v)||^2)`` (population std, ddof = 0,
    of each vertex's 3-D position, pooled over x, y, z). Units: input length units (metres for
    VOCASET). No template is needed: the std does not depend on where the vertex rests.

    This is the readable counterpart of :func:`fdd_dynamics` (FDD's per-clip term, in squared units,
    which also depends on the template): both are 0 for a still upper face and grow with its motion,
    so a positive FDD (GT minus prediction) goes with a prediction whose ``upper_face_motion`` is
    below the GT's.
    """
    upper = _region(pred, upper_face_vertices, "pred", "upper_face")
    _two_frames(upper.shape[0], "upper-face motion")
    upper = upper - upper[0]  # the std is shift-invariant; exactly 0 for a still vertex (no rounding of a mean)
    return float(np.sqrt(np.mean(squared_norm(upper - upper.mean(axis=0)))))


def fdd_dynamics(pred: np.ndarray, upper_face_vertices: IndexLike, template: np.ndarray) -> float:
    """The per-clip quantity FDD differences: mean over upper-face vertices of std_t ||x_t(v) - template(v)||^2.

    Units: squared input units (m^2 for VOCASET; FDD is printed x 1e-7 m^2). The same computation as
    :func:`p3d.metrics.fdd`, so for sequences of equal length
    ``fdd(pred, gt, template, upper) == fdd_dynamics(gt, upper, template) - fdd_dynamics(pred, upper, template)``
    exactly (FDD truncates to the shorter sequence first).
    """
    p = as_vertices(pred, "pred")
    _two_frames(p.shape[0], "FDD's upper-face dynamics")
    tmpl = as_template(template, p.shape[1])
    idx = as_indices(upper_face_vertices, p.shape[1], "upper_face_vertices")
    upper = take_vertices(p, idx)
    check_finite(upper, "pred (upper-face vertices)")
    return upper_face_dynamics(upper, tmpl[idx])
