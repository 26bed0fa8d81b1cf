"""Bootstrap confidence intervals for per-clip metrics and for SLCC (``scipy.stats.bootstrap``).

Rules for degenerate input (documented, never a crash):

- no values, or NaN/inf among them: :class:`InputError`;
- one value, or all values equal: the interval is (s, s) with s = statistic(values), since every
  resample gives the same statistic;
- if the BCa interval is not finite (BCa is undefined when the bootstrap distribution is
  degenerate), the percentile interval of the same resamples is returned instead.

:func:`slcc_bootstrap_ci` is the paired variant for SLCC: rows of (speech intensity, lip intensity,
identity) are resampled jointly and :func:`p3d.metrics.slcc.slcc` is recomputed on each resample
(z-normalisation included). A resample on which r is undefined (fewer than 3 valid rows) counts as
NaN, and then the interval is (NaN, NaN): with so little data no interval is meaningful.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Hashable, Sequence

import numpy as np

from p3d.errors import InputError
from p3d.metrics._checks import as_1d_finite
from p3d.metrics.slcc import MIN_ROWS, _codes, _pearson, _prepare, zscore_by_group

log = logging.getLogger(__name__)

METHODS = ("BCa", "percentile", "basic")


def _check(confidence: float, n_resamples: int, method: str) -> None:
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence: expected a level in (0, 1), got {confidence!r}")
    if int(n_resamples) < 1:
        raise InputError(f"n_resamples: expected a positive count, got {n_resamples!r}")
    if method not in METHODS:
        raise InputError(f"method: expected one of {', '.join(METHODS)}; got {method!r}")


def bootstrap_ci(values: Sequence[float] | np.ndarray,
                 statistic: Callable[..., float] = np.mean, *,
                 confidence: float = 0.95, n_resamples: int = 9999, seed: int = 0,
                 method: str = "BCa") -> tuple[float, float]:
    """Two-sided bootstrap CI (low, high) of ``statistic`` over 1-D ``values`` (e.g. per-clip MTM).

    ``statistic`` is called as ``statistic(sample, axis=-1)`` when it accepts ``axis`` (vectorised,
    as ``np.mean``), else once per resample. Deterministic for a given ``seed``.
    """
    from scipy.stats import bootstrap

    _check(confidence, n_resamples, method)
    x = as_1d_finite(values, "values")
    if x.size == 1 or np.all(x == x[0]):
        s = float(statistic(x))
        return s, s
    kwargs = dict(confidence_level=confidence, n_resamples=int(n_resamples))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = bootstrap((x,), statistic, method=method, rng=np.random.default_rng(seed), **kwargs)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if method == "BCa" and not (np.isfinite(low) and np.isfinite(high)):
        # BCa undefined (its warnings are expected and dropped): percentile of the same resamples.
        log.debug("BCa interval undefined (%s); using the percentile interval",
                  caught[-1].message if caught else "non-finite bounds")
        res = bootstrap((x,), statistic, method="percentile", rng=np.random.default_rng(seed), **kwargs)
        return float(res.confidence_interval.low), float(res.confidence_interval.high)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return low, high


def _pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r in plain numpy (NaN when undefined): the bootstrap's fast stand-in for
    ``scipy.stats.pearsonr``, equal to it up to rounding."""
    if x.size < MIN_ROWS:
        return float("nan")
    xm, ym = x - x.mean(), y - y.mean()
    den = np.sqrt(np.dot(xm, xm) * np.dot(ym, ym))
    return float(np.clip(np.dot(xm, ym) / den, -1.0, 1.0)) if den > 0 else float("nan")


def slcc_bootstrap_ci(speech_intensity: np.ndarray, lip_intensity: np.ndarray,
                      identity: Sequence[Hashable] | np.ndarray, *,
                      confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
                      method: str = "percentile") -> tuple[float, float]:
    """Paired bootstrap CI (low, high) of SLCC: rows resampled jointly, SLCC recomputed each time.

    Inputs as :func:`p3d.metrics.slcc.slcc`. The full SLCC must be defined (else :class:`InputError`).
    """
    from scipy.stats import bootstrap

    _check(confidence, n_resamples, method)
    s = as_1d_finite(speech_intensity, "speech_intensity").astype(np.float64)
    li = as_1d_finite(lip_intensity, "lip_intensity").astype(np.float64)
    zs, zl = _prepare(s, li, identity)
    ok = np.isfinite(zs) & np.isfinite(zl)
    _pearson(zs[ok], zl[ok], "slcc")  # the point estimate must exist
    codes = _codes(identity, s.size).astype(np.float64)

    def statistic(s_: np.ndarray, l_: np.ndarray, c_: np.ndarray) -> float:
        c = c_.astype(np.int64)
        z1, z2 = zscore_by_group(s_, c), zscore_by_group(l_, c)
        keep = np.isfinite(z1) & np.isfinite(z2)
        return _pearson_r(z1[keep], z2[keep])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = bootstrap((s, li, codes), statistic, paired=True, vectorized=False, method=method,
                        confidence_level=confidence, n_resamples=int(n_resamples),
                        rng=np.random.default_rng(seed))
    n_undefined = int(np.isnan(res.bootstrap_distribution).sum())
    if n_undefined:
        log.warning("SLCC bootstrap: r undefined on %d of %d resamples (too few rows per identity); "
                    "the interval is (nan, nan)", n_undefined, int(n_resamples))
        return float("nan"), float("nan")
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
