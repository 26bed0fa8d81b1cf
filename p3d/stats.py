"""Statistics shared by ``p3d eval``, the experiments, the metric validation and the user study.

One home for every interval and test p3d reports, so that one evaluation never has two CIs.

**Clip-cluster bootstrap.** The official protocol scores one ground-truth clip under many
conditions (VOCASET: 8 conditioning identities per test clip). Those predictions are not
independent draws: the unit of replication is the GT clip. :func:`cluster_bootstrap_ci` resamples
whole clusters (all predictions of a clip together) and recomputes the pooled mean of the rows, so
eight identical conditions of a clip give exactly the CI of one.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from p3d.errors import InputError


def cluster_codes(clusters: Sequence[Hashable] | np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes 0..K-1 for cluster labels (in order of first appearance) and K."""
    labels = list(clusters)
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(c, len(index)) for c in labels), dtype=np.int64, count=len(labels))
    return codes, len(index)


def resample_counts(n_clusters: int, n_resamples: int, seed: int) -> np.ndarray:
    """(R, K): how often each of K clusters is drawn in each of R bootstrap resamples (with replacement)."""
    if n_clusters < 1 or n_resamples < 1:
        raise InputError(f"bootstrap needs at least one cluster and one resample (got {n_clusters}, {n_resamples})")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_clusters, size=(n_resamples, n_clusters))
    flat = (idx + np.arange(n_resamples)[:, None] * n_clusters).ravel()
    return np.bincount(flat, minlength=n_resamples * n_clusters).reshape(n_resamples, n_clusters)


def cluster_mean_resamples(values: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> tuple[float, np.ndarray]:
    """Pooled row mean of ``values`` (non-finite rows dropped) and its value on every cluster resample.

    ``codes`` are the rows' cluster codes (0..K-1) and ``counts`` the (R, K) draw counts of
    :func:`resample_counts`. A resample that drew only clusters without finite rows is NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    k = counts.shape[1]
    sums = np.bincount(codes[ok], weights=values[ok], minlength=k)
    n = np.bincount(codes[ok], minlength=k).astype(np.float64)
    point = float(sums.sum() / n.sum()) if n.sum() else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (counts @ sums) / (counts @ n)
    return point, boot


def percentile_interval(resamples: np.ndarray, confidence: float = 0.95, *,
                        min_defined: float = 0.9) -> tuple[float, float] | tuple[None, None]:
    """Percentile interval of bootstrap ``resamples``; (None, None) when fewer than ``min_defined`` of
    them (or fewer than 10) are finite: with that many undefined resamples no interval is honest."""
    v = np.asarray(resamples, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size < max(10, min_defined * v.size):
        return None, None
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def cluster_bootstrap_ci(values: Sequence[float] | np.ndarray, clusters: Sequence[Hashable] | np.ndarray, *,
                         confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
                         ) -> tuple[float, float] | tuple[None, None]:
    """Percentile CI (low, high) of the pooled mean of ``values`` under a bootstrap of ``clusters``.

    ``clusters`` gives each value's unit of replication (e.g. its GT clip). Non-finite values are
    dropped; (None, None) when no interval can be given (see :func:`percentile_interval`).
    """
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence: expected a level in (0, 1), got {confidence!r}")
    values = np.asarray(values, dtype=np.float64)
    codes, k = cluster_codes(clusters)
    if codes.size != values.size:
        raise InputError(f"values and clusters differ in length ({values.size} vs {codes.size})")
    if not np.isfinite(values).any():
        return None, None
    _, boot = cluster_mean_resamples(values, codes, resample_counts(k, int(n_resamples), seed))
    return percentile_interval(boot, confidence)
