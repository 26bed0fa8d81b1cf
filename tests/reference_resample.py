"""A direct evaluation of band-limited (windowed-sinc) resampling, output sample by output sample: the
independent reference that p3d's torchaudio-compatible resampler (:func:`p3d.audio.resample`) is tested against."""
from __future__ import annotations

import math

import numpy as np

from p3d.audio import KAISER_BETA


def windowed_sinc_direct(x: np.ndarray, orig: int, new: int, kaiser: bool = False, width: int = 6,
                          rolloff: float = 0.99) -> np.ndarray:
    """Band-limited interpolation evaluated output sample by output sample (float64), written from the
    formula rather than the polyphase kernel: ``y[n] = sum_m x[m] (f_c / orig) sinc(t) w(t)`` with
    ``f_c = rolloff min(orig, new)``, ``t = f_c (m / orig - n / new)`` over ``|t| < width``."""
    cutoff = rolloff * min(orig, new)
    m = np.arange(x.size)
    y = np.zeros(math.ceil(new * x.size / orig))
    for n in range(y.size):
        t = cutoff * (m / orig - n / new)
        near = np.abs(t) < width
        t = t[near]
        if kaiser:
            window = np.i0(KAISER_BETA * np.sqrt(1 - (t / width) ** 2)) / np.i0(KAISER_BETA)
        else:
            window = np.cos(np.pi * t / (2 * width)) ** 2
        y[n] = np.sum(x[near] * np.sinc(t) * window) * cutoff / orig
    return y
