"""Statistics of the user studies: exact binomial tests, Wilson intervals, agreement, rank correlation.

The paper reports preference percentages without tests or intervals (Sec. D, G.1); p3d adds:

- :func:`binomial_test`: exact two-sided binomial test of k successes in n against ``p``
  (``scipy.stats.binomtest``; two-sided = the sum of the probabilities of all outcomes no more likely
  than the observed one);
- :func:`wilson_ci`: the Wilson score interval of k / n (``BinomTestResult.proportion_ci(method="wilson")``,
  no continuity correction): ``(p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``;
- :func:`fleiss_kappa`: Fleiss' kappa (Fleiss 1971) for N items each rated by the same n raters into C
  categories; hand-written (statsmodels, which has one, is not a dependency), checked in the tests
  against a hand computation and against statsmodels when it is installed;
- :func:`kendall_w`: Kendall's coefficient of concordance W of m raters ranking n items (tie-corrected);
- :func:`spearman`: Spearman's rho (``scipy.stats.spearmanr``), NaN when a ranking is constant.
"""
from __future__ import annotations

import math

import numpy as np

from p3d.errors import InputError


def _counts(k: int, n: int) -> tuple[int, int]:
    if int(k) != k or int(n) != n or n < 1 or not 0 <= k <= n:
        raise InputError(f"binomial counts must satisfy 0 <= k <= n, n >= 1 (got k={k}, n={n})")
    return int(k), int(n)


def binomial_test(k: int, n: int, p: float = 0.5) -> float:
    """Two-sided exact binomial p-value of ``k`` successes in ``n`` trials under success probability ``p``."""
    from scipy.stats import binomtest

    k, n = _counts(k, n)
    return float(binomtest(k, n, p, alternative="two-sided").pvalue)


def wilson_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (low, high) of the proportion ``k / n``."""
    from scipy.stats import binomtest

    k, n = _counts(k, n)
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' kappa of an (N items, C categories) table of rating counts, every row summing to n >= 2.

    ``P_i = (sum_j n_ij^2 - n) / (n (n - 1))``, ``P = mean_i P_i``, ``p_j = sum_i n_ij / (N n)``,
    ``P_e = sum_j p_j^2``, ``kappa = (P - P_e) / (1 - P_e)``; NaN when ``P_e = 1`` (every rating in one
    category: agreement is undefined).
    """
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 2:
        raise InputError(f"fleiss_kappa: expected an (items, categories >= 2) table, got shape {t.shape}")
    if np.any(t < 0) or np.any(t != np.round(t)):
        raise InputError("fleiss_kappa: counts must be non-negative integers")
    n = t.sum(axis=1)
    if np.any(n != n[0]) or n[0] < 2:
        raise InputError(f"fleiss_kappa: every item needs the same number (>= 2) of ratings, got {sorted(set(n))}")
    n_raters, n_items = n[0], t.shape[0]
    p_i = (np.sum(t ** 2, axis=1) - n_raters) / (n_raters * (n_raters - 1))
    p_bar = p_i.mean()
    p_j = t.sum(axis=0) / (n_items * n_raters)
    p_e = float(np.sum(p_j ** 2))
    if math.isclose(p_e, 1.0):
        return float("nan")
    return float((p_bar - p_e) / (1.0 - p_e))


def kendall_w(scores: np.ndarray) -> float:
    """Kendall's W of an (m raters, n items) array of scores or ranks (higher or lower: any monotone scale).

    Each rater's scores are ranked (ties: average ranks); with ``R_i`` the rank sums and ``S`` their
    squared deviations from the mean, ``W = 12 S / (m^2 (n^3 - n) - m sum T)``, ``T = sum (t^3 - t)`` over
    tie groups. 1 = full agreement, 0 = none. NaN when undefined (n < 2, m < 2, or all tied).
    """
    from scipy.stats import rankdata

    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 2:
        raise InputError(f"kendall_w: expected (raters, items), got shape {x.shape}")
    m, n = x.shape
    if m < 2 or n < 2:
        return float("nan")
    if not np.all(np.isfinite(x)):
        raise InputError("kendall_w: scores must be finite")
    ranks = rankdata(x, axis=1)
    r = ranks.sum(axis=0)
    s = float(np.sum((r - r.mean()) ** 2))
    ties = 0.0
    for row in x:
        _, counts = np.unique(row, return_counts=True)
        ties += float(np.sum(counts ** 3 - counts))
    den = m ** 2 * (n ** 3 - n) - m * ties
    return float(12.0 * s / den) if den > 0 else float("nan")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of two equal-length vectors (average ranks for ties); NaN if either is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise InputError(f"spearman: expected two vectors of equal length >= 2, got {a.shape} and {b.shape}")
    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(spearmanr(a, b).statistic)
