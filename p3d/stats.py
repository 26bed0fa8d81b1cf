"""Statistics of p3d: one home for every interval and test that ``p3d eval``, the experiments, the metric
validation and the user study report, so that one evaluation never has two CIs.

**Intervals from resamples.** :func:`percentile_interval`: the percentile interval of bootstrap
resamples, or (None, None) when too many resamples are undefined for an honest interval.

**Independent values.** :func:`bootstrap_ci`: percentile / basic / BCa interval of a statistic of
1-D values (``scipy.stats.bootstrap``), e.g. the mean per-clip MTM.

**Clip-cluster bootstrap.** The official protocol scores one ground-truth clip under many
conditions (VOCASET: 8 conditioning identities per test clip). Those predictions are not
independent draws: the unit of replication is the GT clip. :func:`cluster_bootstrap_ci` resamples
whole clusters (all predictions of a clip together) and recomputes the pooled mean of the rows, so
eight identical conditions of a clip give the CI of one (up to the rounding of summing equal rows). :func:`paired_cluster_difference`
is the paired version for two arms scored on the same clips (the same resampled clips for both).
:func:`cluster_bootstrap` does the same for any statistic of a set of drawn clusters.

**Seeds x clips.** :func:`seed_clip_interval`: the CI of a mean over a few training seeds scored on the same
clips (the clips' bootstrap variance plus the seeds' sample variance, under Student's t).

**Correlation.** :func:`spearman` (Spearman's rho), :func:`spearman_cluster_ci` (rho pooled over
rows or averaged within clips, with a clip-bootstrap interval), :func:`slcc_bootstrap_ci` (SLCC,
paper Eq. (7), with a paired bootstrap of rows or, given clusters, of GT clips).

**Proportions and agreement** (user studies; the paper reports percentages without tests or
intervals, Sec. D, G.1): :func:`binomial_test`, :func:`wilson_ci`, :func:`fleiss_kappa`,
:func:`kendall_w`.

Degenerate input is never a crash and never a silent number: an interval that cannot be given is
(None, None) (or NaN where a function documents it), and the reason goes to debug logging.

Importing this module imports numpy only; scipy and the SLCC helpers of :mod:`p3d.metrics` are
imported by the functions that need them (:mod:`p3d.metrics` re-exports :func:`bootstrap_ci` and
:func:`slcc_bootstrap_ci` from here, so this module must not import it at module level).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from collections.abc import Callable, Hashable, Sequence

import numpy as np

from p3d.errors import InputError, whole_number

log = logging.getLogger(__name__)

METHODS = ("BCa", "percentile", "basic")
#: The version of p3d's estimators (and of the referee battery's sequences): recorded with every summary computed
#: from them (``p3d eval``'s summary.json, the experiments' cached run summaries and validation battery), so that a
#: result of an older version is recomputed, not reused beside new ones. 2: LVE pooled over frames, SLCC's CI over GT
#: clips, paired effects over predictions defined in both arms, seeds under Student's t (:func:`seed_clip_interval`),
#: clusters in sorted order, the battery's jitter scaled by each vertex's own motion.
STATISTICS_VERSION = 2


#: Fewest resamples an interval is taken from (:func:`percentile_interval`'s ``min_count``; :func:`bootstrap_ci` and
#: :func:`slcc_bootstrap` refuse fewer: one resample gave a zero-width "95 %" interval).
MIN_RESAMPLES = 10


#: Most bootstrap draws (resamples x clusters) :func:`resample_counts` holds at once: its draws, their flat index
#: and the counts are three int64 arrays of that size (~3 GiB here); more was a MemoryError traceback after the work.
MAX_DRAWS = 2**27


def _count(value: object, name: str, low: int) -> int:
    """``value`` as an int >= ``low`` (an integral float such as 2000.0 too); InputError for anything else (a
    fraction was truncated: 2.5 resamples ran 2; NaN, text and booleans raised or counted as 1)."""
    count = whole_number(value, low)
    if count is None:
        raise InputError(f"{name}: expected an integer >= {low}, got {value!r}")
    return count


def _rng(seed: object) -> np.random.Generator:
    """``np.random.default_rng(seed)`` for a seed that is an integer >= 0 (or a ``SeedSequence``); InputError for
    anything else: None drew fresh entropy from the system (a different interval on every call, not a function of
    the seed), True seeded 1, and a negative, fractional or text seed was numpy's ValueError / TypeError (a whole
    float such as 2.0 is the integer 2)."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    return np.random.default_rng(_count(seed, "seed", 0))


def _floats(values: object, name: str) -> np.ndarray:
    """``values`` as a float64 array (NaN where missing, as every function here reads it); InputError for booleans,
    which were counted as 0 and 1, and for text, which was numpy's ValueError (or, for numeric strings, parsed)."""
    try:
        arr = np.asarray(values)
    except ValueError:  # a ragged nested sequence
        raise InputError(f"{name}: expected real numbers, got a ragged nested sequence") from None
    if arr.dtype.kind in "fiu":
        return arr.astype(np.float64, copy=False)
    if arr.dtype.kind == "O" and not any(isinstance(v, (bool, np.bool_, str, bytes)) for v in arr.ravel()):
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError):
            pass
    raise InputError(f"{name}: expected real numbers, got {arr.dtype.name} values")


def _indices(values: object, name: str) -> np.ndarray:
    """Whole-number indices (integers, or floats without a fraction) as int64; InputError otherwise (a fraction was
    truncated, 0.5 read as 0, and NaN became a huge negative index)."""
    arr = _floats(values, name)
    if not (np.isfinite(arr) & (arr == np.round(arr))).all():
        raise InputError(f"{name}: expected whole-number indices, got a fraction or NaN")
    return arr.astype(np.int64)


def _real(value: object, name: str) -> float:
    """One real number (a Python or numpy int / float, NaN included) as a float; InputError for anything else
    (text was a TypeError from the first comparison, True was read as 1, an array of several a numpy error)."""
    if value is None:  # _floats reads it as NaN (a missing entry of an array)
        raise InputError(f"{name}: expected a real number, got None")
    arr = _floats(value, name)
    if arr.ndim != 0:
        raise InputError(f"{name}: expected one real number, got an array of shape {arr.shape}")
    return float(arr)


def _check_confidence(confidence: float) -> None:
    if isinstance(confidence, (bool, np.bool_, str, bytes)) or not 0.0 < confidence < 1.0:  # text: a TypeError
        raise InputError(f"confidence: expected a level in (0, 1), got {confidence!r}")


def _tail(confidence: float) -> float:
    """The lower tail probability (1 - confidence) / 2, rounded to 12 decimals so that 0.95 gives exactly
    0.025 (the float expression gives 0.025000000000000022 and moves the percentiles in the last bits)."""
    return round((1.0 - confidence) / 2.0, 12)


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# -- intervals from resamples -------------------------------------------------------------------------------
def percentile_interval(resamples: np.ndarray, confidence: float = 0.95, *, min_defined: float = 0.9,
                        min_count: int = MIN_RESAMPLES) -> tuple[float, float] | tuple[None, None]:
    """Percentile interval (low, high) of bootstrap ``resamples``, non-finite resamples ignored.

    (None, None) when fewer than ``min_defined`` (a fraction) of the resamples, or fewer than
    ``min_count`` of them, are finite: with that many undefined resamples no interval is honest.
    """
    _check_confidence(confidence)
    v = _floats(resamples, "resamples")
    finite = v[np.isfinite(v)]
    if finite.size == 0 or finite.size < max(min_count, min_defined * v.size):
        return None, None
    alpha = _tail(confidence)
    lo, hi = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


@dataclasses.dataclass(frozen=True)
class Interval:
    """A confidence interval, or (None, None) with the reason why none can be given."""

    low: float | None
    high: float | None
    reason: str | None = None


# -- independent values -------------------------------------------------------------------------------------
def _check_bootstrap(confidence: float, n_resamples: int, method: str) -> int:
    """Checks the bootstrap's settings; returns ``n_resamples`` as an int (at least :data:`MIN_RESAMPLES`)."""
    _check_confidence(confidence)
    n = _count(n_resamples, "n_resamples", MIN_RESAMPLES)
    if method not in METHODS:
        raise InputError(f"method: expected one of {', '.join(METHODS)}; got {method!r}")
    return n


def bootstrap_ci(values: Sequence[float] | np.ndarray,
                 statistic: Callable[..., float] = np.mean, *,
                 confidence: float = 0.95, n_resamples: int = 9999, seed: int = 0,
                 method: str = "BCa") -> tuple[float, float]:
    """Two-sided bootstrap CI (low, high) of ``statistic`` over independent 1-D ``values`` (e.g. per-clip MTM).

    ``scipy.stats.bootstrap`` with ``method`` ``"BCa"`` (default), ``"percentile"`` or ``"basic"``.
    ``statistic`` is called as ``statistic(sample, axis=-1)`` when it accepts ``axis`` (vectorised,
    as ``np.mean``), else once per resample. Deterministic for a given ``seed``. Degenerate input:

    - no values, or NaN/inf among them, or fewer than :data:`MIN_RESAMPLES` resamples: :class:`InputError`;
    - one value, or all values equal: (s, s) with s = statistic(values) (every resample gives s);
    - a BCa interval that is not finite (BCa is undefined when the bootstrap distribution is
      degenerate): the percentile interval of the same resamples instead.
    """
    from scipy.stats import bootstrap

    from p3d.metrics._checks import as_1d_finite

    n_resamples = _check_bootstrap(confidence, n_resamples, method)
    x = as_1d_finite(values, "values")
    if x.size == 1 or np.all(x == x[0]):
        s = float(statistic(x))
        return s, s
    kwargs = dict(confidence_level=confidence, n_resamples=int(n_resamples))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = bootstrap((x,), statistic, method=method, rng=_rng(seed), **kwargs)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if method == "BCa" and not (np.isfinite(low) and np.isfinite(high)):
        # BCa undefined (its warnings are expected and dropped): percentile of the same resamples.
        log.debug("BCa interval undefined (%s); using the percentile interval",
                  caught[-1].message if caught else "non-finite bounds")
        res = bootstrap((x,), statistic, method="percentile", rng=_rng(seed), **kwargs)
        return float(res.confidence_interval.low), float(res.confidence_interval.high)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return low, high


# -- clip-cluster bootstrap ---------------------------------------------------------------------------------
def sorted_labels(labels: set[Hashable]) -> list[Hashable]:
    """Cluster labels in sorted order; labels of mixed types (which do not sort) by type name, then text."""
    try:
        return sorted(labels)
    except TypeError:
        return sorted(labels, key=lambda c: (type(c).__name__, str(c)))


def _cluster_labels(clusters: Sequence[Hashable] | np.ndarray, name: str = "clusters") -> list[Hashable]:
    """``clusters`` as a list of hashable labels, one per row; InputError for anything else (a 2-D array, such as a
    one-column table of clip names, gave rows that are arrays: Python's "unhashable type" TypeError)."""
    labels = list(clusters)
    try:
        set(labels)
    except TypeError:
        kind = next(type(c).__name__ for c in labels if _unhashable(c))
        raise InputError(f"{name}: expected one hashable label per row (e.g. its GT clip), got a row of type "
                         f"{kind}") from None
    # NaN (a missing label) is unequal to itself: each NaN of a float array was a cluster of its own, and
    # spearman_cluster_ci dropped the rows (no row's label equals NaN) while counting the cluster. A float32 NaN
    # (not a Python float) and None (a missing entry of an object column) were clusters of their own too.
    missing = next((i for i, c in enumerate(labels) if _missing_label(c)), None)
    if missing is not None:
        raise InputError(f"{name}: row {missing} has no label ({labels[missing]!r}); every row needs its cluster "
                         f"(e.g. its GT clip)")
    return labels


def _missing_label(c: object) -> bool:
    """Whether a cluster label is missing: None, or a NaN of any float type (Python's or numpy's)."""
    return c is None or (isinstance(c, (float, np.floating)) and bool(np.isnan(c)))


def _unhashable(c: object) -> bool:
    try:
        hash(c)
    except TypeError:
        return True
    return False


def cluster_codes(clusters: Sequence[Hashable] | np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes 0..K-1 for cluster labels, in sorted label order (labels of mixed types: by type name, then
    text), and K. Sorted, not in order of appearance, so that a bootstrap's draws, hence its interval, do not
    depend on the order of the rows (and match :func:`paired_cluster_difference`'s)."""
    labels = _cluster_labels(clusters)
    index = {c: i for i, c in enumerate(sorted_labels(set(labels)))}
    return np.fromiter((index[c] for c in labels), dtype=np.int64, count=len(labels)), len(index)


def check_draws(n_resamples: int, n_clusters: int, name: str = "n_resamples") -> None:
    """Refuse a cluster bootstrap of more than :data:`MAX_DRAWS` draws (``n_resamples`` x ``n_clusters``) with one
    line naming ``name`` (the option that set the resamples), before the work that precedes the bootstrap."""
    if n_resamples * n_clusters > MAX_DRAWS:
        raise InputError(f"{name}: {n_resamples} resamples of {n_clusters} clusters are {n_resamples * n_clusters:.3g} "
                         f"draws, over the {MAX_DRAWS:.3g} held in memory at once (~{MAX_DRAWS * 24 / 2**30:.0f} GiB): "
                         f"at most {MAX_DRAWS // max(n_clusters, 1)} resamples here")


def resample_counts(n_clusters: int, n_resamples: int, seed: int) -> np.ndarray:
    """(R, K): how often each of K clusters is drawn in each of R bootstrap resamples (with replacement).

    One ``integers`` call of shape (R, K) from ``np.random.default_rng(seed)``; K = 0 gives an (R, 0) array.
    """
    n_clusters = _count(n_clusters, "n_clusters", 0)
    n_resamples = _count(n_resamples, "n_resamples", 1)
    check_draws(n_resamples, n_clusters)
    rng = _rng(seed)
    idx = rng.integers(0, n_clusters, size=(n_resamples, n_clusters))
    flat = (idx + np.arange(n_resamples)[:, None] * n_clusters).ravel()
    return np.bincount(flat, minlength=n_resamples * n_clusters).reshape(n_resamples, n_clusters)


def cluster_mean_resamples(values: np.ndarray, codes: np.ndarray, counts: np.ndarray,
                           weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Pooled row mean of ``values`` (non-finite rows dropped) and its value on every cluster resample.

    ``codes`` are the rows' cluster codes (0..K-1) and ``counts`` the (R, K) draw counts of
    :func:`resample_counts`. ``weights``: a weight per row (e.g. its frame count: the mean over all frames of
    per-row frame means, as the official LVE pools frames); None: every row once. A resample that drew only
    clusters without finite rows is NaN.
    """
    values = _floats(values, "values")
    codes = np.asarray(codes, dtype=np.int64)
    ok = np.isfinite(values)
    k = counts.shape[1]
    if weights is None:
        sums = np.bincount(codes[ok], weights=values[ok], minlength=k)
        n = np.bincount(codes[ok], minlength=k).astype(np.float64)
    else:
        w = _floats(weights, "weights")
        if w.shape != values.shape or not (np.isfinite(w) & (w >= 0)).all():
            raise InputError(f"weights: expected {values.size} finite non-negative row weights, got shape {w.shape}")
        sums = np.bincount(codes[ok], weights=values[ok] * w[ok], minlength=k)
        n = np.bincount(codes[ok], weights=w[ok], minlength=k)
    point = float(sums.sum() / n.sum()) if n.sum() else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (counts @ sums) / (counts @ n)
    return point, boot


def cluster_bootstrap_ci(values: Sequence[float] | np.ndarray, clusters: Sequence[Hashable] | np.ndarray, *,
                         confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
                         weights: Sequence[float] | np.ndarray | None = None
                         ) -> tuple[float, float] | tuple[None, None]:
    """Percentile CI (low, high) of the pooled mean of ``values`` under a bootstrap of ``clusters``.

    ``clusters`` gives each value's unit of replication (e.g. its GT clip); ``weights`` each value's weight in
    the mean (:func:`cluster_mean_resamples`). Non-finite values are dropped; (None, None) when no interval can
    be given (see :func:`percentile_interval`).
    """
    _check_confidence(confidence)
    n_resamples = _count(n_resamples, "n_resamples", 1)  # refused with or without finite values
    values = _floats(values, "values")
    if values.ndim != 1:
        raise InputError(f"values: expected a 1-D array of per-row values, got shape {values.shape}")
    codes, k = cluster_codes(clusters)
    if codes.size != values.size:
        raise InputError(f"values and clusters differ in length ({values.size} vs {codes.size})")
    if not np.isfinite(values).any():
        return None, None
    _, boot = cluster_mean_resamples(values, codes, resample_counts(k, n_resamples, seed), weights)
    return percentile_interval(boot, confidence)


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """``diff = b - a`` of two arms' pooled means over their common clusters, with a paired bootstrap CI."""

    a: float | None
    b: float | None
    diff: float | None
    low: float | None
    high: float | None
    n_clusters: int


def paired_cluster_difference(values_a: Sequence[float] | np.ndarray, clusters_a: Sequence[Hashable] | np.ndarray,
                              values_b: Sequence[float] | np.ndarray, clusters_b: Sequence[Hashable] | np.ndarray,
                              *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
                              weights_a: Sequence[float] | np.ndarray | None = None,
                              weights_b: Sequence[float] | np.ndarray | None = None) -> PairedDifference:
    """Difference of the pooled means of two arms scored on the same clips (arm b minus arm a).

    Rows of clusters not scored in both arms (no finite value in one of them) are dropped; pair the rows
    themselves first where they correspond (e.g. by prediction file), so that both arms' means are over the same
    predictions. The common clusters, in sorted order (:func:`sorted_labels`), are resampled once per bootstrap
    resample (:func:`resample_counts`) and both arms' means are recomputed on that same draw
    (:func:`cluster_mean_resamples`), so clip-to-clip variation shared by the arms cancels. The
    interval is :func:`percentile_interval` of the resampled differences. Point values that are
    undefined (no finite row) are None.
    """
    _check_confidence(confidence)
    labels_a, labels_b = _cluster_labels(clusters_a, "clusters_a"), _cluster_labels(clusters_b, "clusters_b")

    def scored(values: Sequence[float] | np.ndarray, labels: list[Hashable], name: str) -> set[Hashable]:
        finite = np.isfinite(_floats(values, f"values_{name}"))
        return {c for c, ok in zip(labels, finite) if ok} if finite.shape == (len(labels),) else set(labels)

    if not set(labels_a) & set(labels_b):
        raise InputError("paired difference: the two arms share no cluster (clip)")
    common = sorted_labels(scored(values_a, labels_a, "a") & scored(values_b, labels_b, "b"))
    if not common:
        return PairedDifference(a=None, b=None, diff=None, low=None, high=None, n_clusters=0)
    code_of = {c: i for i, c in enumerate(common)}
    counts = resample_counts(len(common), n_resamples, seed)

    def arm(values: Sequence[float] | np.ndarray, labels: list[Hashable], name: str,
            weights: Sequence[float] | np.ndarray | None) -> tuple[float, np.ndarray]:
        v = _floats(values, f"values_{name}")
        if v.shape != (len(labels),):
            raise InputError(f"values_{name}: expected one value per label of clusters_{name} (length {len(labels)}), "
                             f"got shape {v.shape}")
        w = None if weights is None else _floats(weights, f"weights_{name}")
        if w is not None and w.shape != v.shape:  # an IndexError of the row selection below
            raise InputError(f"weights_{name}: expected one weight per row ({v.size}), got shape {w.shape}")
        keep = np.fromiter((c in code_of for c in labels), dtype=bool, count=len(labels))
        codes = np.fromiter((code_of[c] for c in labels if c in code_of), dtype=np.int64, count=int(keep.sum()))
        return cluster_mean_resamples(v[keep], codes, counts, None if w is None else w[keep])

    point_a, boot_a = arm(values_a, labels_a, "a", weights_a)
    point_b, boot_b = arm(values_b, labels_b, "b", weights_b)
    a, b = _finite_or_none(point_a), _finite_or_none(point_b)
    low, high = percentile_interval(boot_b - boot_a, confidence)
    return PairedDifference(a=a, b=b, diff=None if a is None or b is None else b - a, low=low, high=high,
                            n_clusters=len(common))


def cluster_bootstrap(statistic: Callable[[np.ndarray], float], n_clusters: int, *, confidence: float = 0.95,
                      n_resamples: int = 2000, seed: int | np.random.SeedSequence = 0, min_defined: float = 0.9,
                      min_count: int = 10) -> tuple[float, float | None, float | None]:
    """(point, low, high) of any statistic of a set of clusters, under a bootstrap of the clusters.

    ``statistic(idx)`` gets the indices (0..K-1, repeats allowed) of the drawn clusters and returns a
    number (NaN when undefined). ``point = statistic(arange(K))``; each of ``n_resamples`` resamples
    draws K clusters with replacement (one ``rng.integers(0, K, K)`` call per resample from
    ``np.random.default_rng(seed)``, so the same ``seed`` gives the same draws to two statistics:
    paired comparisons). The interval is :func:`percentile_interval` with ``min_defined`` and
    ``min_count``. K = 0: (NaN, None, None).
    """
    _check_confidence(confidence)
    n_resamples = _count(n_resamples, "n_resamples", 1)
    n_clusters = _count(n_clusters, "n_clusters", 0)
    if n_clusters < 1:
        return float("nan"), None, None
    rng = _rng(seed)
    point = float(statistic(np.arange(n_clusters)))
    boot = np.array([statistic(rng.integers(0, n_clusters, n_clusters)) for _ in range(n_resamples)],
                    dtype=np.float64)
    low, high = percentile_interval(boot, confidence, min_defined=min_defined, min_count=min_count)
    return point, low, high


# -- seeds x clips: the crossed design --------------------------------------------------------------------------
def seed_clip_interval(points: np.ndarray, resamples: np.ndarray, n_clusters: int, confidence: float = 0.95, *,
                       min_defined: float = 0.9, min_count: int = 10) -> tuple[float, float] | tuple[None, None]:
    """CI of the mean over S training seeds of a statistic measured on the same K test clips by every seed.

    ``points`` (S,): each seed's value; ``resamples`` (S, R): each seed's value on R clip-bootstrap draws shared
    by the seeds (:func:`hierarchical_resamples`). One seed: :func:`percentile_interval` of its resamples.

    Several seeds: the two sources of variation are estimated apart and combined. Resampling the seeds too (a
    crossed percentile bootstrap, p3d's first method) is far too narrow for the few seeds a 2-core machine
    trains: its seed variance is the plug-in one ((S-1)/S of the unbiased) and its quantiles are normal, not
    Student's t with S-1 degrees of freedom; simulated with 3 seeds whose spread exceeds the clip noise and no
    effect, its 95 % interval excluded 0 in a quarter to a third of the draws. Here the seeds' part is the sample
    variance of ``points`` (ddof 1) over S, the clips' part the variance of the seed-averaged resamples (the
    clips are the same sentences for every seed, so their part is shared, not divided by S); the interval is
    ``mean ± t_nu sqrt(both)``, ``nu`` by Welch-Satterthwaite from S-1 and K-1 degrees of freedom. A part whose
    values are all equal has variance 0 (not the rounding of ``np.var``); with one clip (K = 1) every draw is that
    clip, so the resamples must not vary (else :class:`InputError`). (None, None) when a seed's value is undefined
    or too few seed-averaged resamples are (``min_defined``, ``min_count``).

    Coverage, simulated (``benchmarks/stats_coverage.py``: 1000 designs of 40 clips, no effect): 87 % with 2 seeds,
    93-95 % with 3, 95 % with 5: somewhat narrow for 2-3 seeds whose spread matters, because ``nu`` grows when the
    seeds' sample variance comes out small by chance."""
    _check_confidence(confidence)
    points = _floats(points, "points")
    resamples = _floats(resamples, "resamples")
    if points.ndim != 1 or resamples.ndim != 2 or resamples.shape[0] != points.size or points.size < 1:
        raise InputError(f"seed_clip_interval: expected S seed values and (S, R) resamples, got shapes "
                         f"{points.shape} and {resamples.shape}")
    n_clusters = _count(n_clusters, "n_clusters", 1)
    if points.size == 1:
        return percentile_interval(resamples[0], confidence, min_defined=min_defined, min_count=min_count)
    if not np.isfinite(points).all():
        return None, None
    averaged = resamples.mean(axis=0)
    finite = averaged[np.isfinite(averaged)]
    if finite.size == 0 or finite.size < max(min_count, min_defined * averaged.size):
        return None, None
    from scipy.stats import t as student_t

    def sample_var(x: np.ndarray) -> float:
        # all-equal values: exactly 0 (np.var of 2000 copies of 0.1 is 1.9e-34, and with one clip and equal seeds
        # that rounding met a zero degrees-of-freedom term below: ZeroDivisionError)
        return 0.0 if np.all(x == x[0]) else float(np.var(x, ddof=1))

    s = points.size
    seeds_var = sample_var(points) / s
    clips_var = sample_var(finite)
    if n_clusters == 1 and clips_var > 0.0:
        raise InputError("seed_clip_interval: the resamples vary, but with n_clusters=1 every draw is the one clip")
    point = float(points.mean())
    if seeds_var + clips_var == 0.0:
        return point, point
    dof = (seeds_var + clips_var) ** 2 / (seeds_var ** 2 / (s - 1)
                                          + (clips_var ** 2 / (n_clusters - 1) if n_clusters > 1 else 0.0))
    half = float(student_t.ppf(1.0 - _tail(confidence), dof)) * float(np.sqrt(seeds_var + clips_var))
    return point - half, point + half


def hierarchical_resamples(statistic: Callable[[int, np.ndarray | None], float], n_seeds: int, n_clusters: int, *,
                           n_resamples: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each seed's value and its values on shared clip-bootstrap draws, for :func:`seed_clip_interval`.

    The design is crossed: every seed's run is scored on the same K test clips. ``statistic(s, counts)`` is the
    value of seed ``s`` (0..S-1) on the clips drawn with multiplicities ``counts`` (shape (K,); None: every clip
    once). Returns ``points`` (S,) and ``resamples`` (S, R), the draws those of :func:`resample_counts` with
    ``seed`` (one seed: the cluster bootstrap over clips)."""
    n_seeds, n_clusters = _count(n_seeds, "n_seeds", 0), _count(n_clusters, "n_clusters", 0)
    if n_seeds < 1 or n_clusters < 1:
        raise InputError(f"seeds x clips needs at least one seed and one cluster (got {n_seeds}, {n_clusters})")
    clip_counts = resample_counts(n_clusters, n_resamples, seed)
    points = np.array([statistic(s, None) for s in range(n_seeds)], dtype=np.float64)
    resamples = np.array([[statistic(s, w) for w in clip_counts] for s in range(n_seeds)], dtype=np.float64)
    return points, resamples


def hierarchical_interval(statistic: Callable[[int, np.ndarray | None], float], n_seeds: int, n_clusters: int, *,
                          confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
                          ) -> tuple[float, float | None, float | None]:
    """(mean over seeds, low, high) of ``statistic`` (:func:`hierarchical_resamples`, :func:`seed_clip_interval`)."""
    points, resamples = hierarchical_resamples(statistic, n_seeds, n_clusters, n_resamples=n_resamples, seed=seed)
    low, high = seed_clip_interval(points, resamples, n_clusters, confidence)
    return float(points.mean()), low, high


def _mean_per_seed(values: np.ndarray, seeds: np.ndarray, codes: np.ndarray, n_clusters: int, n_resamples: int,
                   seed: int, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each seed's pooled (``weights``: weighted) row mean and its clip resamples (:func:`cluster_mean_resamples`,
    shared draws)."""
    values = _floats(values, "values")
    seeds = _indices(seeds, "seeds")
    codes = _indices(codes, "clips")
    if not (values.shape == seeds.shape == codes.shape):
        raise InputError(f"values, seeds and clips differ in length ({values.size}, {seeds.size}, {codes.size})")
    n_seeds = int(seeds.max()) + 1 if seeds.size else 0
    if n_seeds < 1 or n_clusters < 1:
        raise InputError(f"seeds x clips needs at least one seed and one cluster (got {n_seeds}, {n_clusters})")
    # A code outside 0..K-1 broke the resampling's matrix product; a clip without rows was drawn like the others,
    # widening the interval as if the K clips were fewer.
    if codes.min() < 0 or np.unique(codes).size != n_clusters or codes.max() >= n_clusters:
        raise InputError(f"clips: expected codes 0..{n_clusters - 1}, each clip with at least one row; got "
                         f"{np.unique(codes).size} distinct codes in [{int(codes.min())}, {int(codes.max())}]")
    if seeds.min() < 0 or np.unique(seeds).size != n_seeds:
        raise InputError(f"seeds: expected indices 0..S-1, each seed with at least one row; got "
                         f"{np.unique(seeds).size} distinct indices in [{int(seeds.min())}, {int(seeds.max())}]")
    clip_counts = resample_counts(n_clusters, n_resamples, seed)
    w = None if weights is None else _floats(weights, "weights")
    if w is not None and w.shape != values.shape:  # an IndexError of the per-seed selection below
        raise InputError(f"weights: expected one weight per row ({values.size}), got shape {w.shape}")
    pairs = [cluster_mean_resamples(values[seeds == s], codes[seeds == s], clip_counts,
                                    None if w is None else w[seeds == s]) for s in range(n_seeds)]
    return np.array([p for p, _ in pairs]), np.array([b for _, b in pairs])


def hierarchical_mean_interval(values: np.ndarray, seeds: np.ndarray, codes: np.ndarray, n_clusters: int, *,
                               confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
                               weights: np.ndarray | None = None) -> tuple[float, float | None, float | None]:
    """(mean over seeds of each seed's pooled row mean, low, high): :func:`hierarchical_interval` of the mean,
    vectorised. ``seeds``: each row's seed index 0..S-1; ``codes``: its clip code 0..K-1; non-finite rows dropped.
    With one seed the interval is :func:`cluster_bootstrap_ci`'s over the same draws. ``weights``: per row, as
    :func:`cluster_mean_resamples`."""
    points, resamples = _mean_per_seed(values, seeds, codes, n_clusters, n_resamples, seed, weights)
    low, high = seed_clip_interval(points, resamples, n_clusters, confidence)
    return float(points.mean()), low, high


def hierarchical_paired_difference(values_a: np.ndarray, values_b: np.ndarray, seeds: np.ndarray, clusters: np.ndarray,
                                   *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
                                   weights: np.ndarray | None = None) -> PairedDifference:
    """Arm b minus arm a over seeds and clips: rows of both arms aligned (the same seed index and clip label on a
    row; seed s of arm a is paired with seed s of arm b, e.g. the same training seed; pair the rows where both
    are defined first). Each seed's difference and its clip resamples (the same draws for both arms) go to
    :func:`seed_clip_interval`. With one seed the interval equals :func:`paired_cluster_difference`'s.
    ``weights``: per aligned row, the same for both arms (:func:`cluster_mean_resamples`)."""
    _check_confidence(confidence)
    labels = _cluster_labels(clusters)
    code_of = {c: i for i, c in enumerate(sorted_labels(set(labels)))}
    codes = np.array([code_of[c] for c in labels], dtype=np.int64)
    pa, ra = _mean_per_seed(values_a, seeds, codes, len(code_of), n_resamples, seed, weights)
    pb, rb = _mean_per_seed(values_b, seeds, codes, len(code_of), n_resamples, seed, weights)
    a, b = _finite_or_none(float(pa.mean())), _finite_or_none(float(pb.mean()))
    low, high = seed_clip_interval(pb - pa, rb - ra, len(code_of), confidence)
    return PairedDifference(a=a, b=b, diff=None if a is None or b is None else b - a, low=low, high=high,
                            n_clusters=len(code_of))


# -- correlation ------------------------------------------------------------------------------------------
def _pearson_r(x: np.ndarray, y: np.ndarray, min_pairs: int = 3) -> float:
    """Pearson r in plain numpy, NaN for fewer than ``min_pairs`` pairs or a constant input: the bootstraps'
    fast stand-in for ``scipy.stats.pearsonr``, equal to it up to rounding (clipped to [-1, 1])."""
    if x.size < min_pairs:
        return float("nan")
    xm, ym = x - x.mean(), y - y.mean()
    den = np.sqrt(np.dot(xm, xm) * np.dot(ym, ym))
    return float(np.clip(np.dot(xm, ym) / den, -1.0, 1.0)) if den > 0 else float("nan")


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *, min_pairs: int = 2) -> float:
    """Spearman's rho of two equal-length vectors: Pearson r of their ranks (average ranks for ties).

    Equal to ``scipy.stats.spearmanr`` up to rounding, and fast enough for bootstraps. NaN when there
    are fewer than ``min_pairs`` pairs, when either vector is constant or holds NaN.
    """
    from scipy.stats import rankdata

    a, b = _floats(x, "x"), _floats(y, "y")
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(f"spearman: expected two vectors of equal length, got shapes {a.shape} and {b.shape}")
    if a.size < max(min_pairs, 2):
        return float("nan")
    return _pearson_r(rankdata(a), rankdata(b), min_pairs=0)


@dataclasses.dataclass(frozen=True)
class ClusterEstimate:
    """A statistic with a clip-bootstrap interval (None when none can be given) and the clusters behind it."""

    value: float
    low: float | None
    high: float | None
    n_clusters: int


def spearman_cluster_ci(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray,
                        clusters: Sequence[Hashable] | np.ndarray, *, scope: str = "pooled",
                        confidence: float = 0.95, n_resamples: int = 2000,
                        seed: int | np.random.SeedSequence = 0, min_pairs: int = 3,
                        min_defined: float = 0.0, min_count: int = 1) -> ClusterEstimate:
    """Spearman's rho of ``x`` and ``y`` with a percentile clip-bootstrap interval (:func:`cluster_bootstrap`).

    Rows with a non-finite ``x`` or ``y`` are dropped; the clusters are taken in sorted label order.

    - ``scope="pooled"``: rho over all rows; a resample takes all rows of the drawn clusters.
      ``n_clusters``: clusters with a row.
    - ``scope="within"``: rho over the rows of each cluster (``min_pairs`` rows at least), averaged
      over the clusters where it is defined; a resample averages the drawn clusters' rhos.
      ``n_clusters``: clusters with a defined rho.

    The interval is taken from the defined resamples, however few (``min_defined=0``,
    ``min_count=1``; the metric validation's rule); ``value`` is NaN when undefined.
    """
    if scope not in ("pooled", "within"):
        raise InputError(f"scope: expected 'pooled' or 'within', got {scope!r}")
    a, b = _floats(x, "x"), _floats(y, "y")
    labels = _cluster_labels(clusters)
    if not a.shape == b.shape == (len(labels),):
        raise InputError(f"spearman_cluster_ci: x, y and clusters must be vectors of one length, got "
                         f"{a.shape}, {b.shape}, ({len(labels)},)")
    ok = np.isfinite(a) & np.isfinite(b)
    codes, k = cluster_codes([c for c, keep in zip(labels, ok) if keep])  # clusters with a finite row, sorted
    a, b = a[ok], b[ok]
    groups = [(a[codes == i], b[codes == i]) for i in range(k)]
    if scope == "pooled":
        def statistic(idx: np.ndarray) -> float:
            return spearman(np.concatenate([groups[i][0] for i in idx]), np.concatenate([groups[i][1] for i in idx]),
                            min_pairs=min_pairs)
        n_used = len(groups)
    else:
        per_cluster = np.array([spearman(ga, gb, min_pairs=min_pairs) for ga, gb in groups])

        def statistic(idx: np.ndarray) -> float:
            vals = per_cluster[idx]
            vals = vals[np.isfinite(vals)]
            return float(vals.mean()) if vals.size else float("nan")
        n_used = int(np.isfinite(per_cluster).sum())
    value, low, high = cluster_bootstrap(statistic, len(groups), confidence=confidence, n_resamples=n_resamples,
                                         seed=seed, min_defined=min_defined, min_count=min_count)
    return ClusterEstimate(value=value, low=low, high=high, n_clusters=n_used)


def slcc_bootstrap(speech_intensity: Sequence[float] | np.ndarray, lip_intensity: Sequence[float] | np.ndarray,
                   identity: Sequence[Hashable] | np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000,
                   seed: int = 0, method: str = "percentile",
                   clusters: Sequence[Hashable] | np.ndarray | None = None) -> Interval:
    """Paired bootstrap interval of SLCC (paper Eq. (7)), with the reason when there is none.

    Inputs as :func:`p3d.metrics.slcc.slcc`; the full SLCC must be defined (else :class:`InputError`).
    Rows of (speech intensity, lip intensity, identity) are resampled jointly and SLCC is recomputed on
    each resample, z-normalisation per identity included (``scipy.stats.bootstrap``, ``paired=True``).
    With ``clusters`` (each row's GT clip) whole clusters are resampled instead, every row of a drawn clip
    as often as the clip is drawn (:func:`resample_counts`; percentile interval only): the predictions of
    one clip under several conditions share its speech intensity and are not independent rows, so
    resampling rows made the interval far too narrow.
    A resample on which r is undefined (fewer than 3 rows with a defined z-score) makes the whole
    interval undefined: ``Interval(None, None, reason)``, the reason logged at debug level (with so
    little data no interval is meaningful; small demo data hits this routinely).
    """
    from scipy.stats import bootstrap

    from p3d.metrics._checks import as_1d_finite
    from p3d.metrics.slcc import MIN_ROWS, _codes, _pearson, _prepare, zscore_by_group

    n_resamples = _check_bootstrap(confidence, n_resamples, method)
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
        return _pearson_r(z1[keep], z2[keep], MIN_ROWS)

    if clusters is not None:
        if method != "percentile":
            raise InputError(f"slcc_bootstrap: a bootstrap over clusters gives a percentile interval, not {method!r}")
        _check_confidence(confidence)
        clip_codes, k = cluster_codes(clusters)
        if clip_codes.size != s.size:
            raise InputError(f"clusters has {clip_codes.size} rows but speech_intensity has {s.size}")
        boot = np.array([statistic(s[rows], li[rows], codes[rows])
                         for rows in (np.repeat(np.arange(s.size), w[clip_codes])
                                      for w in resample_counts(k, n_resamples, seed))], dtype=np.float64)
        n_undefined = int(np.isnan(boot).sum())
        if n_undefined:
            reason = (f"SLCC undefined on {n_undefined} of {n_resamples} bootstrap resamples of the {k} clips "
                      f"(too few clips per identity): no interval")
            log.debug("SLCC bootstrap: %s", reason)
            return Interval(None, None, reason)
        low, high = percentile_interval(boot, confidence)
        return Interval(low, high)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = bootstrap((s, li, codes), statistic, paired=True, vectorized=False, method=method,
                        confidence_level=confidence, n_resamples=n_resamples,
                        rng=_rng(seed))
    n_undefined = int(np.isnan(res.bootstrap_distribution).sum())
    if n_undefined:
        reason = (f"SLCC undefined on {n_undefined} of {n_resamples} bootstrap resamples "
                  f"(too few rows per identity, {s.size} rows in all): no interval")
        log.debug("SLCC bootstrap: %s", reason)
        return Interval(None, None, reason)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return Interval(float(res.confidence_interval.low), float(res.confidence_interval.high))


def slcc_bootstrap_ci(speech_intensity: Sequence[float] | np.ndarray, lip_intensity: Sequence[float] | np.ndarray,
                      identity: Sequence[Hashable] | np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000,
                      seed: int = 0, method: str = "percentile",
                      clusters: Sequence[Hashable] | np.ndarray | None = None) -> tuple[float, float] | tuple[None, None]:
    """Paired bootstrap CI (low, high) of SLCC, or (None, None) when undefined: :func:`slcc_bootstrap`
    without the reason (``clusters``: resample each row's GT clip whole)."""
    iv = slcc_bootstrap(speech_intensity, lip_intensity, identity, confidence=confidence, n_resamples=n_resamples,
                        seed=seed, method=method, clusters=clusters)
    return iv.low, iv.high


# -- proportions and agreement (user studies) -------------------------------------------------------------------
def _counts(k: int, n: int) -> tuple[int, int]:
    try:
        whole = int(k) == k and int(n) == n  # NaN, infinities and text raise here
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or n < 1 or not 0 <= k <= n:
        raise InputError(f"binomial counts must satisfy 0 <= k <= n, n >= 1 (got k={k}, n={n})")
    return int(k), int(n)


def binomial_test(k: int, n: int, p: float = 0.5) -> float:
    """Two-sided exact binomial p-value of ``k`` successes in ``n`` trials under success probability ``p``.

    ``scipy.stats.binomtest``: two-sided = the sum of the probabilities of all outcomes no more likely
    than the observed one.
    """
    from scipy.stats import binomtest

    k, n = _counts(k, n)
    p = _real(p, "p")
    if not 0.0 <= p <= 1.0:  # also NaN
        raise InputError(f"p: expected a success probability in [0, 1], got {p!r}")
    return float(binomtest(k, n, p, alternative="two-sided").pvalue)


def wilson_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (low, high) of the proportion ``k / n``, no continuity correction.

    ``(p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with p = k / n
    (``BinomTestResult.proportion_ci(method="wilson")``).
    """
    from scipy.stats import binomtest

    k, n = _counts(k, n)
    confidence = _real(confidence, "confidence")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' kappa of an (N items, C categories) table of rating counts, every row summing to n >= 2.

    ``P_i = (sum_j n_ij^2 - n) / (n (n - 1))``, ``P = mean_i P_i``, ``p_j = sum_i n_ij / (N n)``,
    ``P_e = sum_j p_j^2``, ``kappa = (P - P_e) / (1 - P_e)``; NaN when ``P_e = 1`` (every rating in one
    category: agreement is undefined). Hand-written (statsmodels, which has one, is not a dependency);
    the tests check it against a hand computation and against statsmodels when it is installed.
    """
    t = _floats(table, "fleiss_kappa")  # booleans were counts of 0 and 1, text parsed or numpy's ValueError
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

    x = _floats(scores, "kendall_w")  # booleans were scores 0 and 1, text parsed or numpy's ValueError
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


# -- power ----------------------------------------------------------------------------------------------------
def minimum_detectable_effect(ci_low: float, ci_high: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true effect that a two-sided test at level ``alpha`` would detect with probability
    ``power``, given the ``1 - alpha`` confidence interval (``ci_low``, ``ci_high``) of the effect at this
    sample size (same units as the interval).

    Normal approximation: the interval's half-width ``h = (ci_high - ci_low) / 2`` gives the standard error
    ``se = h / z(1 - alpha/2)``; an effect ``d`` is detected (its interval excludes 0) with probability
    ``power`` when ``d = (z(1 - alpha/2) + z(power)) * se`` (the far tail, below ``-z``, neglected). At
    alpha = 0.05 and 80 % power: MDE = (1.960 + 0.842) / 1.960 * h = 1.43 h. For a bootstrap percentile
    interval this is approximate: it treats the interval as symmetric and the resampling distribution as
    normal. NaN when a bound is missing or not finite.
    """
    from scipy.stats import norm

    alpha, power = _real(alpha, "alpha"), _real(power, "power")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha: expected a level in (0, 1), got {alpha!r}")
    if not 0.0 < power < 1.0:
        raise InputError(f"power: expected a probability in (0, 1), got {power!r}")
    if ci_low is None or ci_high is None:
        return float("nan")
    ci_low, ci_high = _real(ci_low, "ci_low"), _real(ci_high, "ci_high")
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return float("nan")
    if ci_high < ci_low:
        raise InputError(f"minimum_detectable_effect: ci_low {ci_low!r} above ci_high {ci_high!r}")
    z_alpha = float(norm.ppf(1.0 - alpha / 2.0))
    z_power = float(norm.ppf(power))
    half_width = (float(ci_high) - float(ci_low)) / 2.0
    return (z_alpha + z_power) / z_alpha * half_width


def seed_agreement(change: float, per_seed: Sequence[float] | None) -> tuple[int, int] | None:
    """``(k, n)``: how many of the ``n`` seeds' own changes share the sign of the pooled ``change`` (a seed's change
    of exactly 0 shares no sign; a seed whose change is undefined, NaN, is not counted: it was counted as
    disagreeing); None with fewer than two defined seeds or a zero / non-finite pooled change."""
    if per_seed is None:
        return None
    change = _real(change, "change")
    seeds = _floats(per_seed, "per_seed")  # None entries read as NaN (undefined)
    if seeds.ndim != 1:
        raise InputError(f"per_seed: expected one change per seed, got shape {seeds.shape}")
    if not math.isfinite(change) or change == 0:
        return None
    defined = [float(c) for c in seeds if math.isfinite(c)]
    if len(defined) < 2:
        return None
    return sum(1 for c in defined if c * change > 0), len(defined)
