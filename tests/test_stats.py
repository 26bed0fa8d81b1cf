"""p3d.stats, p3d's one statistics module: bootstrap intervals (independent values, clip clusters, paired
differences), Spearman's rho and SLCC intervals, binomial test, Wilson interval, Fleiss' kappa, Kendall's W."""
from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pytest

from p3d import stats
from p3d.errors import InputError
from p3d.metrics import slcc


# -- percentile_interval ------------------------------------------------------------------------------------
def test_percentile_interval_is_the_2_5_and_97_5_percentiles():
    v = np.random.default_rng(0).normal(size=1001)
    lo, hi = stats.percentile_interval(v)
    assert (lo, hi) == tuple(np.percentile(v, [2.5, 97.5]))  # exactly: the tail is 0.025, not 0.025000000000000022
    assert stats.percentile_interval(v, 0.9) == tuple(np.percentile(v, [5.0, 95.0]))


def test_percentile_interval_undefined_when_too_many_resamples_are():
    v = np.arange(100.0)
    v[:11] = np.nan  # 89 % defined < 90 %
    assert stats.percentile_interval(v) == (None, None)
    assert stats.percentile_interval(v, min_defined=0.5) == tuple(np.percentile(v[11:], [2.5, 97.5]))
    assert stats.percentile_interval(np.arange(9.0)) == (None, None)  # fewer than 10 resamples
    assert stats.percentile_interval(np.arange(9.0), min_count=1) != (None, None)
    assert stats.percentile_interval(np.full(5, np.nan), min_defined=0, min_count=0) == (None, None)
    with pytest.raises(InputError, match="confidence"):
        stats.percentile_interval(v, 1.0)


# -- bootstrap_ci (independent values, scipy.stats.bootstrap) -----------------------------------------------
def test_mean_ci_brackets_the_mean_and_is_deterministic():
    x = np.random.default_rng(0).normal(loc=3.0, size=200)
    low, high = stats.bootstrap_ci(x, n_resamples=2000)
    assert low < x.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * x.std(ddof=1) / np.sqrt(x.size), rel=0.15)
    assert stats.bootstrap_ci(x, n_resamples=2000) == (low, high)
    assert stats.bootstrap_ci(x, n_resamples=2000, seed=1) != (low, high)
    p_low, p_high = stats.bootstrap_ci(x, n_resamples=2000, method="percentile")
    assert p_low < x.mean() < p_high


def test_bootstrap_ci_is_reexported_by_p3d_metrics():
    from p3d import metrics

    assert metrics.bootstrap_ci is stats.bootstrap_ci and metrics.slcc_bootstrap_ci is stats.slcc_bootstrap_ci


def test_wider_confidence_gives_wider_interval():
    x = np.random.default_rng(1).exponential(size=50)
    l90, h90 = stats.bootstrap_ci(x, confidence=0.9, n_resamples=2000)
    l99, h99 = stats.bootstrap_ci(x, confidence=0.99, n_resamples=2000)
    assert l99 < l90 and h99 > h90


def test_custom_statistic_without_axis():
    x = np.arange(20.0)
    low, high = stats.bootstrap_ci(x, lambda s: float(np.median(s)), n_resamples=500, method="percentile")
    assert low <= np.median(x) <= high


def test_degenerate_inputs_give_a_point_interval():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stats.bootstrap_ci([2.5]) == (2.5, 2.5)
        assert stats.bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)


def test_bca_falls_back_to_percentile_when_undefined():
    # The median of mostly-equal values: every jackknife value is equal, so BCa's acceleration is 0/0.
    x = np.array([5.0] + [1.0] * 22)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = stats.bootstrap_ci(x, np.median, n_resamples=500)
    assert (low, high) == stats.bootstrap_ci(x, np.median, n_resamples=500, method="percentile")
    assert np.isfinite(low) and np.isfinite(high) and low <= 1.0 <= high


def test_bca_fallback_is_the_percentile_interval_not_another_method():
    # The median of 9 zeros, 5 ones, 9 fives: every jackknife median is 1 (BCa's acceleration 0/0), yet the
    # bootstrap medians spread over 0, 1 and 5, so the percentile interval (0, 5) differs from the basic one
    # (2 * 1 - 5, 2 * 1 - 0) = (-3, 2). The fallback must be scipy's percentile interval of the same draws.
    from scipy.stats import bootstrap

    x = np.array([0.0] * 9 + [1.0] * 5 + [5.0] * 9)
    low, high = stats.bootstrap_ci(x, np.median, n_resamples=500, seed=0)
    ref = bootstrap((x,), np.median, method="percentile", n_resamples=500, rng=np.random.default_rng(0))
    assert (low, high) == (ref.confidence_interval.low, ref.confidence_interval.high) == (0.0, 5.0)


@pytest.mark.parametrize("values, kw, match", [
    ([], {}, "at least 1"),
    ([1.0, np.nan], {}, "NaN"),
    (np.zeros((2, 2)), {}, "1-D"),
    ([1.0, 2.0], {"confidence": 1.0}, "confidence"),
    ([1.0, 2.0], {"n_resamples": 0}, "n_resamples"),
    ([1.0, 2.0, 3.0, 4.0], {"n_resamples": 1}, "n_resamples: expected an integer >= 10"),  # was (3.0, 3.0)
    ([1.0, 2.0, 3.0, 4.0], {"n_resamples": 2.5}, "n_resamples: expected an integer"),  # ran 2
    ([1.0, 2.0, 3.0, 4.0], {"n_resamples": "many"}, "n_resamples: expected an integer"),  # a ValueError
    ([1.0, 2.0], {"method": "normal"}, "method"),
])
def test_bootstrap_ci_bad_inputs(values, kw, match):
    with pytest.raises(InputError, match=match):
        stats.bootstrap_ci(values, **kw)


# -- clip-cluster bootstrap ---------------------------------------------------------------------------------
def test_cluster_codes_and_resample_counts():
    codes, k = stats.cluster_codes(["b", "a", "b", "c"])
    assert codes.tolist() == [1, 0, 1, 2] and k == 3  # sorted labels: the row order does not move the draws
    assert stats.cluster_codes([2, "x", 1])[0].tolist() == [1, 2, 0]  # mixed types: by type name, then text
    rng = np.random.default_rng(0)
    values, clips = rng.normal(size=40), np.repeat([f"c{i}" for i in range(10)], 4)
    order = rng.permutation(40)
    assert stats.cluster_bootstrap_ci(values, clips, n_resamples=300) == pytest.approx(  # the same draws; the
        stats.cluster_bootstrap_ci(values[order], clips[order], n_resamples=300), rel=1e-12)  # sums' order aside
    counts = stats.resample_counts(5, 300, seed=3)
    assert counts.shape == (300, 5) and (counts.sum(axis=1) == 5).all()
    assert np.array_equal(counts, stats.resample_counts(5, 300, seed=3))
    assert not np.array_equal(counts, stats.resample_counts(5, 300, seed=4))
    assert stats.resample_counts(0, 4, seed=0).shape == (4, 0)
    with pytest.raises(InputError, match="resample"):
        stats.resample_counts(3, 0, seed=0)


def test_cluster_mean_resamples_pools_rows_and_drops_nan():
    values = np.array([1.0, 3.0, np.nan, 10.0])
    codes = np.array([0, 0, 1, 2])
    counts = np.array([[1, 1, 1], [2, 0, 0], [0, 3, 0]])
    point, boot = stats.cluster_mean_resamples(values, codes, counts)
    assert point == pytest.approx(14.0 / 3)  # the pooled row mean, not the mean of cluster means
    assert boot[0] == pytest.approx(point) and boot[1] == pytest.approx(2.0) and np.isnan(boot[2])


def test_resample_counts_draw_every_cluster_uniformly_with_replacement():
    # the documented draws: one default_rng(seed).integers(0, K, (R, K)) call, row r counting its K draws
    k, r = 7, 4000
    counts = stats.resample_counts(k, r, seed=5)
    idx = np.random.default_rng(5).integers(0, k, size=(r, k))
    assert np.array_equal(counts, np.stack([np.bincount(row, minlength=k) for row in idx]))
    # with replacement, uniformly: each cluster is drawn once per resample on average (Binomial(K, 1/K) counts)
    assert counts.mean(axis=0) == pytest.approx(np.ones(k), abs=0.06)
    assert counts.var(axis=0) == pytest.approx(np.full(k, (k - 1) / k), abs=0.1)


def test_weighted_cluster_resamples_are_the_weighted_mean_of_the_drawn_rows():
    values = np.array([1.0, 3.0, np.nan, 10.0, 4.0])
    weights = np.array([30.0, 90.0, 50.0, 10.0, 20.0])
    codes = np.array([0, 0, 1, 2, 2])
    counts = np.array([[1, 1, 1], [2, 0, 0], [0, 3, 0], [0, 1, 2]])
    point, boot = stats.cluster_mean_resamples(values, codes, counts, weights)
    ok = np.isfinite(values)
    assert point == pytest.approx(np.average(values[ok], weights=weights[ok]))  # every scored frame once
    for b, draw in zip(boot, counts):
        rows = np.repeat(np.arange(values.size), draw[codes])  # each drawn cluster's rows, as often as drawn
        rows = rows[ok[rows]]
        if rows.size:
            assert b == pytest.approx(np.average(values[rows], weights=weights[rows]))
        else:
            assert np.isnan(b)
    unweighted = stats.cluster_bootstrap_ci(values, codes, n_resamples=300)
    assert stats.cluster_bootstrap_ci(values, codes, n_resamples=300, weights=np.ones(5)) == pytest.approx(unweighted)
    assert stats.cluster_bootstrap_ci(values, codes, n_resamples=300, weights=weights) != pytest.approx(unweighted)


def test_identical_conditions_give_exactly_the_ci_of_one():
    rng = np.random.default_rng(0)
    per_clip = rng.normal(size=15)
    clips = [f"clip{i:02d}" for i in range(15)]
    one = stats.cluster_bootstrap_ci(per_clip, clips, n_resamples=500, seed=1)
    eight = stats.cluster_bootstrap_ci(np.repeat(per_clip, 8), np.repeat(clips, 8), n_resamples=500, seed=1)
    # the same resampled clips and the same pooled means: equal up to the rounding of summing 8 equal rows
    assert eight == pytest.approx(one, rel=1e-13, abs=1e-15) and one[0] < per_clip.mean() < one[1]
    assert stats.cluster_bootstrap_ci(np.repeat(per_clip, 8), np.repeat(clips, 8), n_resamples=500, seed=2) != eight


def test_cluster_ci_is_wider_than_the_row_bootstrap_of_duplicated_rows():
    rng = np.random.default_rng(1)
    per_clip = rng.normal(size=12)
    values, clips = np.repeat(per_clip, 8), np.repeat(np.arange(12), 8)
    lo_c, hi_c = stats.cluster_bootstrap_ci(values, clips, n_resamples=2000, seed=0)
    lo_r, hi_r = stats.cluster_bootstrap_ci(values, np.arange(values.size), n_resamples=2000, seed=0)  # naive
    assert (hi_c - lo_c) > 2 * (hi_r - lo_r)  # sqrt(8) in expectation: the rows of a clip are not independent


def test_resample_and_cluster_counts_are_whole_numbers():
    """A fractional count was truncated (2.7 resamples ran 2), 2.5 clusters raised numpy's TypeError and -1 cluster
    was read as none; one SLCC resample gave a zero-width interval. An integral float (2000.0) is a count."""
    x = np.arange(8.0)
    with pytest.raises(InputError, match="n_resamples: expected an integer"):
        stats.cluster_bootstrap_ci(x, np.arange(8), n_resamples=20.7)
    for k in (2.5, -1):
        with pytest.raises(InputError, match="n_clusters: expected an integer >= 0"):
            stats.cluster_bootstrap(lambda idx: float(len(idx)), k)
    with pytest.raises(InputError, match="n_resamples: expected an integer >= 10"):
        stats.slcc_bootstrap(x, x ** 2, ["a"] * 4 + ["b"] * 4, n_resamples=1)
    assert stats.cluster_bootstrap_ci(x, np.arange(8), n_resamples=200.0) == stats.cluster_bootstrap_ci(
        x, np.arange(8), n_resamples=200)


def test_cluster_bootstrap_ci_degenerate_and_bad_input():
    assert stats.cluster_bootstrap_ci([np.nan, np.nan], ["a", "b"]) == (None, None)
    assert stats.cluster_bootstrap_ci([1.0, 2.0, 3.0], ["a", "b", "c"], n_resamples=5) == (None, None)  # < 10
    with pytest.raises(InputError, match="length"):
        stats.cluster_bootstrap_ci([1.0, 2.0], ["a"])
    with pytest.raises(InputError, match="confidence"):
        stats.cluster_bootstrap_ci([1.0, 2.0], ["a", "b"], confidence=95)


def test_paired_cluster_difference():
    rng = np.random.default_rng(2)
    clip_effect = rng.normal(scale=5.0, size=20)
    clips = np.repeat([f"c{i}" for i in range(20)], 3)
    a = np.repeat(clip_effect, 3) + rng.normal(scale=0.1, size=60)
    d = stats.paired_cluster_difference(a, clips, a + 0.25, clips, n_resamples=500)
    assert d.diff == pytest.approx(0.25) and (d.low, d.high) == pytest.approx((0.25, 0.25)) and d.n_clusters == 20
    # shared clip effects cancel: the paired interval is far narrower than either arm's own interval
    b = a + 0.25 + rng.normal(scale=0.1, size=60)
    d = stats.paired_cluster_difference(a, clips, b, clips, n_resamples=500)
    lo_a, hi_a = stats.cluster_bootstrap_ci(a, clips, n_resamples=500)
    assert d.low < d.diff < d.high and (d.high - d.low) < 0.1 * (hi_a - lo_a)
    # rows of a clip scored in one arm only are dropped; the draws are those of resample_counts over sorted clips
    d2 = stats.paired_cluster_difference(np.append(a, 100.0), np.append(clips, "only_a"), b, clips, n_resamples=500)
    assert (d2.a, d2.diff, d2.low, d2.high) == (d.a, d.diff, d.low, d.high)
    counts = stats.resample_counts(20, 500, 0)
    codes = np.searchsorted(sorted(set(clips)), clips)
    boot = stats.cluster_mean_resamples(b, codes, counts)[1] - stats.cluster_mean_resamples(a, codes, counts)[1]
    assert (d.low, d.high) == stats.percentile_interval(boot)
    with pytest.raises(InputError, match="share no"):
        stats.paired_cluster_difference([1.0], ["x"], [1.0], ["y"])
    with pytest.raises(InputError, match="length"):
        stats.paired_cluster_difference([1.0, 2.0], ["x"], [1.0], ["x"])
    undefined = stats.paired_cluster_difference([np.nan], ["x"], [1.0], ["x"], n_resamples=20)
    assert undefined.a is None and undefined.diff is None and undefined.low is None
    # a clip undefined in one arm leaves both: the arms' means are over the same clips (was each over its own)
    holes = np.where(np.isin(clips, ["c0", "c1"]), np.nan, a)
    d3 = stats.paired_cluster_difference(holes, clips, a, clips, n_resamples=200)
    assert d3.diff == pytest.approx(0.0) and (d3.low, d3.high) == pytest.approx((0.0, 0.0)) and d3.n_clusters == 18


def test_cluster_bootstrap_of_a_statistic():
    y = np.arange(6.0)
    point, lo, hi = stats.cluster_bootstrap(lambda idx: float(y[idx].mean()), 6, n_resamples=400, seed=5)
    assert point == pytest.approx(2.5) and lo < point < hi
    rng = np.random.default_rng(5)
    boot = [y[rng.integers(0, 6, 6)].mean() for _ in range(400)]  # one integers call per resample
    assert (lo, hi) == stats.percentile_interval(boot)
    # the same seed draws the same clusters for two statistics: a paired comparison
    seen: list[list[int]] = [[], []]
    for j in (0, 1):
        stats.cluster_bootstrap(lambda idx, j=j: seen[j].append(idx.tolist()) or 0.0, 4, n_resamples=20, seed=7)
    assert seen[0] == seen[1]
    none = stats.cluster_bootstrap(lambda idx: 1.0, 0)  # no cluster
    assert math.isnan(none[0]) and none[1:] == (None, None)
    half_nan = stats.cluster_bootstrap(lambda idx: np.nan if idx[0] % 2 else 1.0, 4, n_resamples=100, seed=0)
    assert half_nan[1:] == (None, None)
    assert stats.cluster_bootstrap(lambda idx: np.nan if idx[0] % 2 else 1.0, 4, n_resamples=100, seed=0,
                                   min_defined=0.0, min_count=1)[1:] == (1.0, 1.0)


# -- Spearman ---------------------------------------------------------------------------------------------------
def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    for n in (3, 7, 40):
        x = rng.integers(0, 4, n).astype(float)
        y = x + rng.normal(size=n)
        assert stats.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)


def test_spearman_by_hand_and_undefined():
    # rho = 1 - 6 sum d^2 / (n (n^2 - 1)): d = (0, -1, 1) -> 1 - 12/24
    assert stats.spearman(np.array([3, 1, 2]), np.array([3, 2, 1])) == pytest.approx(0.5)
    assert math.isnan(stats.spearman(np.array([1, 1, 1]), np.array([1, 2, 3])))
    assert stats.spearman([1.0, 2.0], [2.0, 5.0]) == pytest.approx(1.0)
    assert math.isnan(stats.spearman([1.0, 2.0], [2.0, 5.0], min_pairs=3))
    assert math.isnan(stats.spearman([1.0], [2.0]))
    with pytest.raises(InputError, match="equal length"):
        stats.spearman([1.0, 2.0, 3.0], [1.0, 2.0])


def test_fast_pearson_equals_scipy():
    from scipy.stats import pearsonr

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert stats._pearson_r(x, y) == pytest.approx(pearsonr(x, y).statistic, rel=1e-12)
    assert stats._pearson_r(x, x) == pytest.approx(1.0) and stats._pearson_r(x, -x) == pytest.approx(-1.0)
    assert np.isnan(stats._pearson_r(x[:2], y[:2])) and np.isnan(stats._pearson_r(np.ones(5), y[:5]))


def test_spearman_cluster_ci_scopes():
    rng = np.random.default_rng(5)
    clips = np.repeat([f"c{i}" for i in range(8)], 5)
    base = np.repeat(rng.uniform(0, 3, 8), 5)
    quality = np.tile(np.linspace(0, 1, 5), 8)
    x, y = quality + base, quality + base + 0.05 * rng.normal(size=40)
    x[3] = np.nan  # dropped
    pooled = stats.spearman_cluster_ci(x, y, clips, n_resamples=300)
    ok = np.isfinite(x)
    assert pooled.value == pytest.approx(stats.spearman(x[ok], y[ok])) and pooled.n_clusters == 8
    assert pooled.low <= pooled.value <= pooled.high
    within = stats.spearman_cluster_ci(quality, quality + base, clips, scope="within", n_resamples=300)
    assert (within.value, within.low, within.high, within.n_clusters) == (1.0, 1.0, 1.0, 8)
    # same seed: both scopes see the same clip draws (the result is deterministic)
    assert stats.spearman_cluster_ci(x, y, clips, n_resamples=300) == pooled
    with pytest.raises(InputError, match="scope"):
        stats.spearman_cluster_ci(x, y, clips, scope="both")
    with pytest.raises(InputError, match="one length"):
        stats.spearman_cluster_ci(x, y[:-1], clips)
    empty = stats.spearman_cluster_ci([np.nan], [1.0], ["a"])
    assert math.isnan(empty.value) and empty.low is None and empty.n_clusters == 0


# -- SLCC bootstrap -----------------------------------------------------------------------------------------------
def test_slcc_paired_bootstrap():
    rng = np.random.default_rng(2)
    identity = np.repeat(["a", "b", "c", "d"], 25)
    speech = rng.normal(size=100)
    lip = 0.6 * speech + rng.normal(scale=0.8, size=100)
    r = slcc(speech, lip, identity)
    low, high = stats.slcc_bootstrap_ci(speech, lip, identity, n_resamples=300)
    assert -1 <= low < r < high <= 1
    assert stats.slcc_bootstrap_ci(speech, lip, identity, n_resamples=300) == (low, high)
    assert stats.slcc_bootstrap(speech, lip, identity, n_resamples=300) == stats.Interval(low, high, None)
    with pytest.raises(InputError, match="at least 3 rows"):
        stats.slcc_bootstrap_ci([1.0, 2.0], [1.0, 3.0], ["a", "a"])


def test_slcc_bootstrap_with_undefined_resamples_has_no_interval_and_no_warning(caplog):
    rng = np.random.default_rng(3)
    speech, lip = rng.normal(size=6), rng.normal(size=6)
    identity = ["a"] * 3 + ["b"] * 3
    assert np.isfinite(slcc(speech, lip, identity))
    with warnings.catch_warnings(), caplog.at_level(logging.DEBUG, logger="p3d.stats"):
        warnings.simplefilter("error")
        assert stats.slcc_bootstrap_ci(speech, lip, identity, n_resamples=200) == (None, None)
        iv = stats.slcc_bootstrap(speech, lip, identity, n_resamples=200)
    assert (iv.low, iv.high) == (None, None) and "undefined on" in iv.reason and "of 200" in iv.reason
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # the user sees no red stderr
    assert any(r.levelno == logging.DEBUG and "undefined on" in r.getMessage() for r in caplog.records)


# -- proportions ----------------------------------------------------------------------------------------------------
def test_binomial_and_wilson_by_hand():
    # 7 of 10: P(X >= 7) = (120 + 45 + 10 + 1) / 1024 = 176/1024; symmetric -> two-sided p = 352/1024
    assert stats.binomial_test(7, 10) == pytest.approx(352 / 1024)
    # Wilson, z = 1.959964: centre (0.7 + z^2/20) / (1 + z^2/10), half-width z sqrt(0.021 + z^2/400) / (1 + z^2/10)
    z2 = 1.959963984540054 ** 2
    centre = (0.7 + z2 / 20) / (1 + z2 / 10)
    half = math.sqrt(z2) * math.sqrt(0.7 * 0.3 / 10 + z2 / 400) / (1 + z2 / 10)
    lo, hi = stats.wilson_ci(7, 10)
    assert (lo, hi) == pytest.approx((centre - half, centre + half))
    assert (lo, hi) == pytest.approx((0.3968, 0.8922), abs=1e-4)
    # 5 of 6 against 1/3: pmf (x 729) = 64, 192, 240, 160, 60, 12, 1; outcomes no likelier than 12 -> 13/729
    assert stats.binomial_test(5, 6, 1 / 3) == pytest.approx(13 / 729)
    assert stats.wilson_ci(0, 5)[0] == 0.0
    with pytest.raises(InputError):
        stats.binomial_test(3, 2)
    with pytest.raises(InputError, match="confidence"):
        stats.wilson_ci(3, 5, confidence=1.5)


@pytest.mark.parametrize("k, n, p, confidence", [(0, 1, 0.5, 0.95), (3, 17, 0.25, 0.9), (40, 50, 0.5, 0.99),
                                                 (12, 12, 0.7, 0.95)])
def test_binomial_and_wilson_match_scipy_and_the_formula(k, n, p, confidence):
    from scipy.stats import binomtest, norm

    res = binomtest(k, n, p)
    assert stats.binomial_test(k, n, p) == pytest.approx(res.pvalue, rel=1e-12)
    ci = res.proportion_ci(confidence_level=confidence, method="wilson")
    assert stats.wilson_ci(k, n, confidence) == pytest.approx((ci.low, ci.high), rel=1e-12, abs=1e-15)
    z, ph = norm.ppf(0.5 + confidence / 2), k / n
    centre = (ph + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert stats.wilson_ci(k, n, confidence) == pytest.approx((centre - half, centre + half), abs=1e-12)


# -- agreement ------------------------------------------------------------------------------------------------------
def test_fleiss_kappa_by_hand():
    # 2 items, 5 raters: [1, 4] and [2, 3]. P_i = (1+16-5)/20 = 0.6, (4+9-5)/20 = 0.4 -> P = 0.5;
    # p = (3/10, 7/10) -> P_e = 0.58; kappa = (0.5 - 0.58) / 0.42
    assert stats.fleiss_kappa(np.array([[1, 4], [2, 3]])) == pytest.approx(-0.08 / 0.42)
    assert stats.fleiss_kappa(np.array([[3, 0], [0, 3]])) == pytest.approx(1.0)
    assert math.isnan(stats.fleiss_kappa(np.array([[3, 0], [3, 0]])))
    # the worked example of Fleiss' kappa (10 items, 14 raters, 5 categories): P = 0.378, P_e = 0.213, kappa 0.210
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert stats.fleiss_kappa(table) == pytest.approx(0.210, abs=1e-3)
    with pytest.raises(InputError, match="same number"):
        stats.fleiss_kappa(np.array([[1, 2], [1, 1]]))
    with pytest.raises(InputError, match="integers"):
        stats.fleiss_kappa(np.array([[1.5, 1.5], [1, 2]]))


def test_fleiss_kappa_matches_statsmodels():
    from statsmodels.stats import inter_rater  # pinned (test extra): a missing copy fails, not skips
    rng = np.random.default_rng(1)
    table = np.array([rng.multinomial(7, [0.5, 0.3, 0.2]) for _ in range(12)])
    assert stats.fleiss_kappa(table) == pytest.approx(inter_rater.fleiss_kappa(table, method="fleiss"))


def test_kendall_w_by_hand_and_against_friedman():
    from scipy.stats import friedmanchisquare

    # R = (4, 6, 8), mean 6, S = 8; W = 12 * 8 / (3^2 (3^3 - 3)) = 96 / 216
    assert stats.kendall_w(np.array([[1, 2, 3], [1, 3, 2], [2, 1, 3]])) == pytest.approx(96 / 216)
    assert stats.kendall_w(np.array([[3, 2, 1], [1, 2, 3]])) == pytest.approx(0.0)
    assert stats.kendall_w(np.array([[1, 2, 3], [10, 20, 30]])) == pytest.approx(1.0)
    assert math.isnan(stats.kendall_w(np.array([[1.0, 2.0]])))  # one rater
    # tie-corrected W = Friedman's tie-corrected chi^2 / (m (n - 1))
    scores = np.random.default_rng(6).integers(0, 4, size=(5, 6)).astype(float)
    chi2 = friedmanchisquare(*scores.T).statistic
    assert stats.kendall_w(scores) == pytest.approx(chi2 / (5 * (6 - 1)), rel=1e-12)
    with pytest.raises(InputError, match="finite"):
        stats.kendall_w(np.array([[1.0, np.nan], [1.0, 2.0]]))


# -- minimum_detectable_effect -------------------------------------------------------------------------------
def test_minimum_detectable_effect_is_1_43_half_widths_at_80_percent_power():
    # (1.95996 + 0.84162) / 1.95996 = 1.42941
    assert stats.minimum_detectable_effect(-1.0, 1.0) == pytest.approx(1.42941, abs=1e-4)
    assert stats.minimum_detectable_effect(0.1, 0.5) == pytest.approx(0.2 * 1.42941, abs=1e-4)
    # more power or a stricter level needs a larger effect; 50 % power is the half-width itself
    assert stats.minimum_detectable_effect(-1, 1, power=0.9) > stats.minimum_detectable_effect(-1, 1)
    assert stats.minimum_detectable_effect(-1, 1, power=0.5) == pytest.approx(1.0)


def test_minimum_detectable_effect_matches_a_simulated_power():
    """An effect of one MDE, with the SE the interval implies, is detected about 80 % of the time."""
    rng = np.random.default_rng(0)
    se = 0.5
    mde = stats.minimum_detectable_effect(-1.959964 * se, 1.959964 * se)
    estimates = rng.normal(mde, se, size=20000)
    detected = np.mean(estimates - 1.959964 * se > 0)
    assert detected == pytest.approx(0.8, abs=0.01)


def test_minimum_detectable_effect_degenerate_and_bad_input():
    assert math.isnan(stats.minimum_detectable_effect(float("nan"), 1.0))
    assert math.isnan(stats.minimum_detectable_effect(None, 1.0))
    with pytest.raises(InputError):
        stats.minimum_detectable_effect(1.0, 0.0)
    with pytest.raises(InputError):
        stats.minimum_detectable_effect(0.0, 1.0, power=1.0)
    with pytest.raises(InputError):
        stats.minimum_detectable_effect(0.0, 1.0, alpha=0.0)


# -- seeds x clips -------------------------------------------------------------------------------------------
def _seed_clip_rows(rng, n_seeds, n_clips, spread, n_cond=2):
    """Rows (value, seed, clip): a clip effect shared by every seed, a seed offset of sd ``spread``, noise."""
    clip_effect = rng.normal(size=n_clips)
    seed_offset = spread * rng.normal(size=n_seeds)
    seeds = np.repeat(np.arange(n_seeds), n_clips * n_cond)
    clips = np.tile(np.repeat(np.arange(n_clips), n_cond), n_seeds)
    values = clip_effect[clips] + seed_offset[seeds] + 0.1 * rng.normal(size=seeds.size)
    return values, seeds, clips


def test_hierarchical_interval_with_one_seed_is_the_cluster_bootstrap():
    values, seeds, clips = _seed_clip_rows(np.random.default_rng(0), 1, 15, 0.0)
    values[3] = np.nan
    point, low, high = stats.hierarchical_mean_interval(values, seeds, clips, 15, n_resamples=300, seed=4)
    ref_point, ref_boot = stats.cluster_mean_resamples(values, clips, stats.resample_counts(15, 300, 4))
    assert point == ref_point and (low, high) == stats.percentile_interval(ref_boot)
    # the generic form (any statistic of a seed's clip draw) gives the same interval
    def mean_of(s, w):
        w = np.ones(15) if w is None else w
        ok = np.isfinite(values)
        return np.sum(w[clips[ok]] * values[ok]) / np.sum(w[clips[ok]])

    p2, l2, h2 = stats.hierarchical_interval(mean_of, 1, 15, n_resamples=300, seed=4)
    assert (p2, l2, h2) == pytest.approx((point, low, high))
    # paired: equals the one-seed paired cluster difference
    other = values + 0.2 + 0.05 * np.random.default_rng(1).normal(size=values.size)
    h = stats.hierarchical_paired_difference(values, other, seeds, clips, n_resamples=300, seed=4)
    c = stats.paired_cluster_difference(values, clips, other, clips, n_resamples=300, seed=4)
    assert (h.a, h.b, h.low, h.high) == pytest.approx((c.a, c.b, c.low, c.high))


def test_hierarchical_interval_widens_with_between_seed_spread():
    widths = []
    for spread in (0.0, 0.5, 2.0):
        values, seeds, clips = _seed_clip_rows(np.random.default_rng(7), 5, 20, spread)
        point, low, high = stats.hierarchical_mean_interval(values, seeds, clips, 20, n_resamples=1000, seed=0)
        assert point == pytest.approx(np.mean(values))  # balanced design: the mean of seed means is the row mean
        widths.append(high - low)
    assert widths[0] < widths[1] < widths[2]
    with pytest.raises(InputError, match="at least one seed"):
        stats.hierarchical_interval(lambda s, w: 0.0, 0, 3)


def test_seed_clip_interval_is_student_t_over_seeds_plus_the_clips_variance():
    """Without clip noise (every resample a seed's own value) the interval is the t-interval of the seed values
    (S-1 degrees of freedom); clip noise shared by the seeds adds its variance (not divided by S), the degrees of
    freedom by Welch-Satterthwaite."""
    from scipy.stats import t as student_t

    points = np.array([0.2, 0.5, 0.35])
    low, high = stats.seed_clip_interval(points, np.repeat(points[:, None], 50, axis=1), 20)
    half = student_t.ppf(0.975, 2) * points.std(ddof=1) / np.sqrt(3)
    assert (low, high) == pytest.approx((points.mean() - half, points.mean() + half))
    shared = np.random.default_rng(0).normal(scale=0.1, size=400)  # the clips' part, the same for every seed
    low2, high2 = stats.seed_clip_interval(points, points[:, None] + shared, 20)
    a, b = points.var(ddof=1) / 3, shared.var(ddof=1)
    half = student_t.ppf(0.975, (a + b) ** 2 / (a ** 2 / 2 + b ** 2 / 19)) * np.sqrt(a + b)  # Welch-Satterthwaite
    assert (low2, high2) == pytest.approx((points.mean() - half, points.mean() + half))
    assert stats.seed_clip_interval(np.array([0.1, np.nan]), np.zeros((2, 50)), 5) == (None, None)
    assert stats.seed_clip_interval(np.array([0.3, 0.3]), np.full((2, 50), 0.3), 5) == pytest.approx((0.3, 0.3))


def test_seed_clip_interval_with_one_clip():
    """One clip and seeds that agree: the interval collapses onto the mean, as with one seed (np.var of the equal
    resamples is 1.9e-34, not 0, and its degrees-of-freedom term divided 0 by 0: ZeroDivisionError). Resamples that
    vary although every draw is the one clip, and a clip count below 1, are refused."""
    v, seeds, codes = np.full(6, 0.1), np.array([0, 0, 0, 1, 1, 1]), np.zeros(6, dtype=int)
    assert stats.hierarchical_mean_interval(v, seeds, codes, 1, n_resamples=2000) == pytest.approx((0.1, 0.1, 0.1))
    a = np.array([0.3, 0.7, 0.3, 0.7])
    d = stats.hierarchical_paired_difference(a, a + 0.1, np.array([0, 0, 1, 1]), ["c"] * 4, n_resamples=200)
    assert (d.diff, d.low, d.high) == pytest.approx((0.1, 0.1, 0.1))
    varying = np.tile([1.0, 2.0], (2, 10))
    with pytest.raises(InputError, match="n_clusters=1"):
        stats.seed_clip_interval(np.array([1.0, 1.0]), varying, 1)
    for k in (0, -3, 2.5, True):
        with pytest.raises(InputError, match="n_clusters: expected"):
            stats.seed_clip_interval(np.array([1.0, 2.0]), varying, k)
    assert stats.seed_clip_interval(np.array([1.0, 2.0]), varying, 20.0) == stats.seed_clip_interval(
        np.array([1.0, 2.0]), varying, 20)


def test_a_null_effect_over_three_seeds_is_excluded_at_about_the_nominal_rate():
    """Three seeds whose spread (sd 1) exceeds the clip noise, no effect: a resample of the seeds (p3d's first
    method) excluded 0 in about a quarter of the draws; the interval over seeds and clips in about 5 % (at most 11 %
    of 300 draws here; binomial sd 1.3 %)."""
    rng = np.random.default_rng(11)
    excluded = 0
    for _ in range(300):
        a, seeds, clips = _seed_clip_rows(rng, 3, 20, 0.0)
        b = a + np.repeat(rng.normal(scale=1.0, size=3), a.size // 3) + 0.3 * rng.normal(size=a.size)
        d = stats.hierarchical_paired_difference(a, b, seeds, clips, n_resamples=200, seed=int(rng.integers(1 << 30)))
        excluded += bool(d.low > 0 or d.high < 0)
    assert excluded / 300 <= 0.11


def test_hierarchical_paired_difference_is_arm_b_minus_arm_a():
    # three seeds, arm b = arm a + 0.3 on every row: diff = mean over seeds of (b - a) = +0.3, and so is every
    # resample's (the interval collapses onto it)
    a, seeds, clips = _seed_clip_rows(np.random.default_rng(11), 3, 12, 0.5)
    b = a + 0.3
    d = stats.hierarchical_paired_difference(a, b, seeds, clips, n_resamples=200, seed=0)
    assert d.a == pytest.approx(np.mean(a)) and d.b == pytest.approx(np.mean(b))
    assert d.diff == pytest.approx(0.3) and (d.low, d.high) == pytest.approx((0.3, 0.3))
    assert d.n_clusters == 12


def test_seeds_x_clips_refuse_weights_that_are_not_one_per_row():
    values, seeds, clips = _seed_clip_rows(np.random.default_rng(0), 2, 5, 0.3)
    for w in ([1.0], np.ones(values.size - 1)):  # an IndexError of the per-seed selection before
        with pytest.raises(InputError, match="weights: expected one weight per row"):
            stats.hierarchical_mean_interval(values, seeds, clips, 5, n_resamples=50, weights=w)
        with pytest.raises(InputError, match="weights: expected one weight per row"):
            stats.hierarchical_paired_difference(values, values + 1, seeds, clips, n_resamples=50, weights=w)


def test_seed_agreement_counts_seeds_sharing_the_pooled_sign():
    assert stats.seed_agreement(0.5, [0.1, -0.2, 0.3]) == (2, 3)
    assert stats.seed_agreement(-0.5, [0.1, 0.0, -0.3]) == (1, 3)  # a zero change shares no sign
    assert stats.seed_agreement(0.5, [0.1]) is None  # one seed: nothing to agree
    assert stats.seed_agreement(0.0, [0.1, 0.2]) is None
    assert stats.seed_agreement(float("nan"), [0.1, 0.2]) is None
    # a seed whose change is undefined is not a seed that disagrees (it read "1 of 3")
    assert stats.seed_agreement(0.5, [0.1, float("nan"), 0.3]) == (2, 2)
    assert stats.seed_agreement(0.5, [0.1, float("nan")]) is None  # one defined seed: nothing to agree


@pytest.mark.parametrize("n_clusters, match", [(5, "clips: expected codes 0..4"),  # codes up to 14: a matmul error
                                               (20, "clips: expected codes 0..19")])  # 5 clips without rows
def test_hierarchical_mean_interval_refuses_codes_that_are_not_the_k_clips(n_clusters, match):
    values, seeds, clips = _seed_clip_rows(np.random.default_rng(0), 2, 15, 0.3)
    with pytest.raises(InputError, match=match):
        stats.hierarchical_mean_interval(values, seeds, clips, n_clusters, n_resamples=100)
    gap = np.where(seeds == 1, 2, seeds)  # seeds 0 and 2: seed 1 has no row (the mean over seeds was NaN)
    with pytest.raises(InputError, match="seeds: expected indices 0..S-1"):
        stats.hierarchical_mean_interval(values, gap, clips, 15, n_resamples=100)


def test_paired_cluster_difference_refuses_weights_that_are_not_one_per_row():
    x = np.arange(4.0)
    for w in ([1.0], np.ones(5), np.ones((4, 1))):  # an IndexError of the row selection before
        with pytest.raises(InputError, match="weights_b: expected one weight per row"):
            stats.paired_cluster_difference(x, list("abcd"), x + 1, list("abcd"), weights_b=w)
    with pytest.raises(InputError, match=r"values_a: expected one value per label .*got shape \(4, 1\)"):
        stats.paired_cluster_difference(x[:, None], list("abcd"), x, list("abcd"))  # read "differ in length (4 vs 4)"


def test_clusters_that_are_not_one_label_per_row_are_refused():
    """A one-column table of clip names (shape (N, 1)) gave rows that are arrays: Python's "unhashable type"."""
    x, column = np.arange(4.0), np.array([["c0"], ["c1"], ["c2"], ["c3"]])
    for call in (lambda: stats.cluster_bootstrap_ci(x, column),
                 lambda: stats.paired_cluster_difference(x, column, x, column),
                 lambda: stats.hierarchical_paired_difference(x, x, np.zeros(4, dtype=int), column),
                 lambda: stats.slcc_bootstrap(x, x ** 2, list("aabb"), clusters=column)):
        with pytest.raises(InputError, match="clusters(_a)?: expected one hashable label per row"):
            call()


def test_cluster_bootstrap_ci_refuses_values_that_are_not_one_row_each():
    with pytest.raises(InputError, match="values: expected a 1-D array"):
        stats.cluster_bootstrap_ci(np.ones((6, 1)), [0, 0, 1, 1, 2, 2])  # an IndexError before


def test_paired_differences_take_labels_of_mixed_types_in_cluster_codes_order():
    """Clip labels of mixed types (1 and "a") raised Python's "'<' not supported" in the paired differences;
    they are ordered as cluster_codes orders them, so the one-arm and paired bootstraps draw the same clips."""
    rng = np.random.default_rng(0)
    labels = [1, 1, "a", "a", 2.5, 2.5, "b", "b"]
    a = rng.normal(size=8)
    b = a + 0.3 + 0.1 * rng.normal(size=8)
    d = stats.paired_cluster_difference(a, labels, b, labels, n_resamples=200, seed=1)
    codes, _ = stats.cluster_codes(labels)
    ref = stats.paired_cluster_difference(a, codes, b, codes, n_resamples=200, seed=1)
    assert (d.diff, d.low, d.high, d.n_clusters) == (ref.diff, ref.low, ref.high, ref.n_clusters)
    h = stats.hierarchical_paired_difference(a, b, np.zeros(8, dtype=int), labels, n_resamples=200, seed=1)
    assert (h.low, h.high) == pytest.approx((ref.low, ref.high))
    rho = stats.spearman_cluster_ci(a, b, labels, n_resamples=50)
    assert rho == stats.spearman_cluster_ci(a, b, codes, n_resamples=50)


@pytest.mark.parametrize("k, n, p", [(float("nan"), 10, 0.5), (3, float("inf"), 0.5), ("3", 10, 0.5),
                                     (3, 10, 1.5), (3, 10, float("nan"))])
def test_binomial_test_refuses_counts_and_probabilities_by_name(k, n, p):
    with pytest.raises(InputError, match="binomial counts|p: expected a success probability"):
        stats.binomial_test(k, n, p)  # int()'s or scipy's ValueError before


def test_a_bootstrap_too_large_for_memory_is_refused_in_one_line():
    """resample_counts holds resamples x clusters draws at once: 1e11 x 4 was a MemoryError traceback."""
    from p3d.stats import MAX_DRAWS, check_draws, resample_counts

    with pytest.raises(InputError, match=r"--bootstrap: 100000000000 resamples of 4 clusters .* at most \d+ resamples"):
        check_draws(10**11, 4, "--bootstrap")
    with pytest.raises(InputError, match="n_resamples"):
        resample_counts(4, 10**11, 0)
    check_draws(MAX_DRAWS // 4, 4)  # at the limit: accepted
    assert resample_counts(3, 5, 0).sum(axis=1).tolist() == [3] * 5


# -- the random seed --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [None, -1, True, 1.5, "0"])
def test_every_bootstrap_refuses_a_seed_that_is_not_a_whole_number_from_zero(bad):
    """None drew fresh system entropy (another interval on every call), True seeded 1, and a negative or fractional
    seed was numpy's ValueError / TypeError."""
    v, c = [1.0, 2.0, 4.0, 3.0, 5.0, 7.0], ["a", "a", "b", "b", "c", "c"]
    calls = [lambda: stats.bootstrap_ci(v, n_resamples=50, seed=bad),
             lambda: stats.cluster_bootstrap_ci(v, c, n_resamples=50, seed=bad),
             lambda: stats.paired_cluster_difference(v, c, v[::-1], c, n_resamples=50, seed=bad),
             lambda: stats.cluster_bootstrap(lambda idx: float(len(set(idx))), 3, n_resamples=50, seed=bad),
             lambda: stats.hierarchical_mean_interval(np.array(v), np.array([0, 0, 0, 1, 1, 1]),
                                                      np.array([0, 1, 2, 0, 1, 2]), 3, n_resamples=50, seed=bad),
             lambda: stats.slcc_bootstrap_ci(v, [1.0, 3.0, 2.0, 5.0, 4.0, 6.0], ["x"] * 6, n_resamples=50, seed=bad)]
    for call in calls:
        with pytest.raises(InputError, match="seed: expected an integer >= 0"):
            call()


def test_a_seed_sequence_and_a_whole_float_seed_are_seeds():
    v, c = [1.0, 2.0, 4.0, 3.0, 5.0, 7.0], ["a", "a", "b", "b", "c", "c"]
    assert stats.cluster_bootstrap_ci(v, c, n_resamples=50, seed=3.0) == stats.cluster_bootstrap_ci(
        v, c, n_resamples=50, seed=3)
    point, low, high = stats.cluster_bootstrap(lambda idx: float(np.mean(idx)), 3, n_resamples=50,
                                               seed=np.random.SeedSequence(1))
    assert point == 1.0 and low is not None


# -- values that are not numbers ----------------------------------------------------------------------------------
def test_text_booleans_and_fractional_indices_are_refused_in_one_line():
    """Text was numpy's ValueError (numeric strings were parsed), booleans were counted as 0 / 1 (bootstrap_ci
    already refused both), a seed or clip index of 0.5 was truncated to 0, and confidence='0.9' a TypeError."""
    v, c = [1.0, 2.0, 4.0, 3.0, 5.0, 7.0], ["a", "a", "b", "b", "c", "c"]
    text, flags = ["1", "2", "4", "3", "5", "x"], [True, False, True, True, False, True]
    seeds, codes = np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 2, 0, 1, 2])
    cases = [
        (lambda: stats.cluster_bootstrap_ci(text, c, n_resamples=50), "values: expected real numbers"),
        (lambda: stats.cluster_bootstrap_ci(flags, c, n_resamples=50), "values: expected real numbers"),
        (lambda: stats.cluster_bootstrap_ci(v, c, n_resamples=50, weights=["1"] * 6), "weights: expected real"),
        (lambda: stats.cluster_bootstrap_ci(v, c, n_resamples=50, confidence="0.9"), "confidence"),
        (lambda: stats.paired_cluster_difference(v, c, flags, c, n_resamples=50), "values_b: expected real"),
        (lambda: stats.paired_cluster_difference(text, c, v, c, n_resamples=50), "values_a: expected real"),
        (lambda: stats.seed_clip_interval(["1", "2"], [[1.0] * 20, [2.0] * 20], 3), "points: expected real"),
        (lambda: stats.hierarchical_mean_interval(np.array(v), np.array([0, 0, 0.5, 1, 1, 1]), codes, 3,
                                                  n_resamples=50), "seeds: expected whole-number indices"),
        (lambda: stats.hierarchical_mean_interval(np.array(v), seeds, np.array([0, 1, 2, 0, 1.5, 2]), 3,
                                                  n_resamples=50), "clips: expected whole-number indices"),
        (lambda: stats.hierarchical_interval(lambda s, w: 1.0, "2", 3, n_resamples=50), "n_seeds: expected"),
        (lambda: stats.spearman(text, v), "x: expected real numbers"),
        (lambda: stats.spearman_cluster_ci(v, flags, c, n_resamples=50), "y: expected real numbers"),
        (lambda: stats.percentile_interval(text), "resamples: expected real numbers"),
    ]
    for call, match in cases:
        with pytest.raises(InputError, match=match):
            call()
    # missing values in an object column (None) are NaN, as before
    assert stats.cluster_bootstrap_ci(np.array(v[:5] + [None], dtype=object), c, n_resamples=50) == \
        stats.cluster_bootstrap_ci(v[:5] + [float("nan")], c, n_resamples=50)


def test_a_row_without_a_cluster_label_is_refused_not_dropped_or_a_cluster_of_its_own():
    """NaN is unequal to itself: spearman_cluster_ci dropped the NaN-labelled rows (rho 0.886 of 6 rows instead of
    0.929 of 8) while counting them as a cluster, and each NaN of a float array was a cluster of its own."""
    x, y = np.arange(8.0), np.array([0.0, 2, 1, 3, 5, 4, 7, 6])
    labels = np.array(["a", "a", "b", "b", np.nan, np.nan, "c", "c"], dtype=object)
    with pytest.raises(InputError, match="row 4 has no label"):
        stats.spearman_cluster_ci(x, y, labels, n_resamples=50)
    with pytest.raises(InputError, match="clusters: row 2 has no label"):
        stats.cluster_codes(np.array([1.0, 1.0, np.nan, np.nan]))
    with pytest.raises(InputError, match="no label"):
        stats.cluster_bootstrap_ci(x, labels, n_resamples=50)
    # a float32 NaN is not a Python float, and None is a missing entry of an object column: each was a cluster of
    # its own (cluster_codes gave [0, 0, 1, 1, 2, 3], K = 4, and None sorted first as a clip of its own)
    with pytest.raises(InputError, match="clusters: row 2 has no label"):
        stats.cluster_codes(np.array([1.0, 1.0, np.nan, np.nan], dtype=np.float32))
    with pytest.raises(InputError, match="clusters: row 2 has no label"):
        stats.cluster_codes([1.0, 1.0, None, None])
    with pytest.raises(InputError, match="clusters_b: row 1 has no label"):
        stats.paired_cluster_difference(x[:2], ["a", "b"], x[:2], ["a", None])
    # any hashable label is a cluster, tuples too (they became a 2-D array: "must be vectors of one length")
    pairs = [("s1", 0), ("s1", 0), ("s1", 1), ("s1", 1), ("s2", 0), ("s2", 0), ("s2", 1), ("s2", 1)]
    assert stats.spearman_cluster_ci(x, y, pairs, n_resamples=50) == stats.spearman_cluster_ci(
        x, y, [f"{s}-{i}" for s, i in pairs], n_resamples=50)


def test_summary_tests_refuse_text_and_booleans_with_one_line_errors():
    """Text was a TypeError from the first comparison (or, in tables, parsed or numpy's ValueError), True read
    as 1; numpy scalars stay accepted and give the Python numbers' values."""
    bad_calls = [
        ("p", lambda: stats.binomial_test(3, 10, "0.5")), ("p", lambda: stats.binomial_test(3, 10, True)),
        ("p", lambda: stats.binomial_test(3, 10, None)),
        ("confidence", lambda: stats.wilson_ci(3, 10, "0.9")),
        ("ci_low", lambda: stats.minimum_detectable_effect("1", 2)),
        ("ci_low", lambda: stats.minimum_detectable_effect(True, 2)),
        ("ci_high", lambda: stats.minimum_detectable_effect(1, [2, 3])),
        ("alpha", lambda: stats.minimum_detectable_effect(1, 2, "0.05")),
        ("fleiss_kappa", lambda: stats.fleiss_kappa([["a", "b"], ["c", "d"]])),
        ("fleiss_kappa", lambda: stats.fleiss_kappa([["1", "2"], ["2", "1"]])),
        ("fleiss_kappa", lambda: stats.fleiss_kappa([[True, True], [True, True]])),
        ("fleiss_kappa", lambda: stats.fleiss_kappa([[1, 2], [3]])),
        ("kendall_w", lambda: stats.kendall_w([["a", "b"], ["c", "d"]])),
        ("kendall_w", lambda: stats.kendall_w([[True, False], [False, True]])),
        ("change", lambda: stats.seed_agreement("0.1", [0.1, 0.2])),
        ("change", lambda: stats.seed_agreement(True, [0.1, 0.2])),
        ("per_seed", lambda: stats.seed_agreement(0.1, ["0.1", 0.2])),
        ("per_seed", lambda: stats.seed_agreement(0.1, "12")),
    ]
    for name, call in bad_calls:
        with pytest.raises(InputError, match=name):
            call()
    assert stats.binomial_test(3, 10, np.float32(0.5)) == stats.binomial_test(3, 10, 0.5)
    assert stats.minimum_detectable_effect(np.int64(-1), np.float64(1.0), np.float64(0.05)) \
        == stats.minimum_detectable_effect(-1, 1)
    assert stats.seed_agreement(np.float64(0.1), np.array([0.1, -0.2, 0.3])) == (2, 3)
    assert stats.seed_agreement(0.1, [None, 0.2, 0.3]) == (2, 2)  # None: an undefined change, as NaN
    assert stats.fleiss_kappa(np.array([[2, 1], [1, 2], [3, 0], [0, 3]])) == pytest.approx(1 / 3)


# -- properties pinned by mutation testing ------------------------------------------------------------------------
def test_percentile_interval_is_given_at_exactly_the_minimum_defined_share_and_count():
    """The interval is refused only with *fewer* than ``min_defined`` of the resamples (or ``min_count``) finite:
    exactly 90 % finite, or exactly 10 resamples, still give the percentile interval."""
    v = np.arange(100.0)
    v[:10] = np.nan  # exactly 90 % defined
    assert stats.percentile_interval(v) == tuple(np.quantile(v[10:], [0.025, 0.975]))
    assert stats.percentile_interval(np.arange(10.0)) == tuple(np.quantile(np.arange(10.0), [0.025, 0.975]))


def test_mixed_type_cluster_labels_sort_by_type_name_before_text():
    """Labels that do not sort together are ordered by type name, then text: float 2.5 < int 10 < str 'a' (by text
    alone '10' < '2.5')."""
    codes, k = stats.cluster_codes([10, "a", 2.5])
    assert codes.tolist() == [1, 2, 0] and k == 3


def test_row_weights_must_be_finite_and_non_negative_and_may_be_zero():
    """A weight is a row's share of the pooled mean (e.g. its frame count): a negative or NaN weight is refused in one
    line; a zero weight is allowed and leaves the row out of the mean."""
    values, codes, counts = np.array([1.0, 3.0, 10.0]), np.array([0, 0, 1]), np.array([[1, 1], [2, 0]])
    for bad in ([1.0, -1.0, 1.0], [1.0, np.nan, 1.0], [1.0, np.inf, 1.0]):
        with pytest.raises(InputError, match="weights: expected 3 finite non-negative"):
            stats.cluster_mean_resamples(values, codes, counts, np.array(bad))
    point, boot = stats.cluster_mean_resamples(values, codes, counts, np.array([0.0, 1.0, 1.0]))
    assert point == pytest.approx(6.5) and boot.tolist() == pytest.approx([6.5, 3.0])


def test_cluster_bootstrap_ci_takes_the_percentiles_at_the_given_confidence():
    """The interval at ``confidence`` is :func:`percentile_interval` at that level of the documented clip draws."""
    rng = np.random.default_rng(8)
    values, clips = rng.normal(size=30), np.repeat(np.arange(10), 3)
    boot = stats.cluster_mean_resamples(values, clips, stats.resample_counts(10, 400, 2))[1]
    for confidence in (0.5, 0.8):
        assert stats.cluster_bootstrap_ci(values, clips, confidence=confidence, n_resamples=400, seed=2) == \
            stats.percentile_interval(boot, confidence)


def test_paired_cluster_difference_takes_the_percentiles_at_the_given_confidence():
    """The paired interval at ``confidence`` is :func:`percentile_interval` at that level of the b - a resamples."""
    rng = np.random.default_rng(9)
    clips = np.repeat(np.arange(10), 3)
    a = rng.normal(size=30)
    b = a + 0.2 + 0.3 * rng.normal(size=30)
    counts = stats.resample_counts(10, 400, 3)
    boot = stats.cluster_mean_resamples(b, clips, counts)[1] - stats.cluster_mean_resamples(a, clips, counts)[1]
    d = stats.paired_cluster_difference(a, clips, b, clips, confidence=0.8, n_resamples=400, seed=3)
    assert (d.low, d.high) == stats.percentile_interval(boot, 0.8)


def test_seed_clip_interval_clips_part_is_the_variance_of_the_seed_averaged_resamples():
    """The clips' part is the variance of the resamples averaged over the seeds, not of one seed's: seeds whose
    resamples move 1x, 2x and 3x the shared clip noise give a clips' variance of 2^2 var(noise). The centre is the mean of the seeds' values (not their median)."""
    from scipy.stats import t as student_t

    points = np.array([0.2, 0.6, 0.35])
    shared = np.random.default_rng(0).normal(scale=0.1, size=400)
    low, high = stats.seed_clip_interval(points, points[:, None] + np.array([[1.0], [2.0], [3.0]]) * shared, 20)
    a, b = points.var(ddof=1) / 3, (2 * shared).var(ddof=1)
    half = student_t.ppf(0.975, (a + b) ** 2 / (a ** 2 / 2 + b ** 2 / 19)) * np.sqrt(a + b)
    assert (low, high) == pytest.approx((points.mean() - half, points.mean() + half))


@pytest.mark.parametrize("n_seeds", [1, 2])
def test_seed_clip_interval_refuses_too_few_defined_resamples(n_seeds):
    """(None, None) when fewer than ``min_defined`` of the seed-averaged resamples (or ``min_count``) are defined,
    with one seed as with several; a lower ``min_defined`` gives the interval again."""
    points = np.array([0.2, 0.4][:n_seeds])
    resamples = points[:, None] + np.random.default_rng(1).normal(scale=0.1, size=(1, 100))
    resamples[:, :20] = np.nan  # 80 % defined < 90 %
    assert stats.seed_clip_interval(points, resamples, 20) == (None, None)
    low, high = stats.seed_clip_interval(points, resamples, 20, min_defined=0.5)
    assert low < points.mean() < high
    assert stats.seed_clip_interval(points, resamples[:, 20:29], 20, min_defined=0.0) == (None, None)  # 9 < 10
    assert stats.seed_clip_interval(points, resamples[:, 20:29], 20, min_defined=0.0, min_count=9) != (None, None)


def test_hierarchical_resamples_give_every_seed_the_same_clip_draws():
    """The design is crossed: every seed's statistic is evaluated on the same clip draws, those of
    :func:`resample_counts` with ``seed``; no clip (K = 0) is refused like no seed."""
    points, resamples = stats.hierarchical_resamples(lambda s, w: 10.0 * s + (1.0 if w is None else float(w[0])),
                                                     2, 4, n_resamples=50, seed=3)
    first_clip = stats.resample_counts(4, 50, 3)[:, 0]
    assert points.tolist() == [1.0, 11.0]
    assert np.array_equal(resamples, np.stack([first_clip, first_clip + 10.0]))
    with pytest.raises(InputError, match="at least one seed and one cluster"):
        stats.hierarchical_interval(lambda s, w: 0.0, 2, 0)


def test_hierarchical_intervals_are_seed_clip_intervals_of_the_shared_weighted_draws_at_the_given_confidence():
    """hierarchical_mean_interval: each seed's weighted pooled mean on the same clip draws (resample_counts with
    ``seed``), combined by seed_clip_interval at ``confidence``; hierarchical_interval and
    hierarchical_paired_difference pass ``confidence`` on the same way."""
    rng = np.random.default_rng(12)
    values, seeds, clips = _seed_clip_rows(rng, 3, 10, 0.5)
    weights = rng.uniform(1.0, 5.0, size=values.size)
    counts = stats.resample_counts(10, 300, 6)
    pairs = [stats.cluster_mean_resamples(values[seeds == s], clips[seeds == s], counts, weights[seeds == s])
             for s in range(3)]
    points, resamples = np.array([p for p, _ in pairs]), np.array([b for _, b in pairs])
    ref = stats.seed_clip_interval(points, resamples, 10, 0.8)
    point, low, high = stats.hierarchical_mean_interval(values, seeds, clips, 10, confidence=0.8, n_resamples=300,
                                                        seed=6, weights=weights)
    assert point == pytest.approx(points.mean()) and (low, high) == pytest.approx(ref)

    def mean_of(s, w):
        rows = seeds == s
        drawn = np.ones(10) if w is None else w
        return np.sum(drawn[clips[rows]] * weights[rows] * values[rows]) / np.sum(drawn[clips[rows]] * weights[rows])

    assert stats.hierarchical_interval(mean_of, 3, 10, confidence=0.8, n_resamples=300, seed=6) == \
        pytest.approx((points.mean(), *ref))
    other = values + 0.2 + 0.3 * rng.normal(size=values.size)
    pairs_b = [stats.cluster_mean_resamples(other[seeds == s], clips[seeds == s], counts, weights[seeds == s])
               for s in range(3)]
    ref_d = stats.seed_clip_interval(np.array([p for p, _ in pairs_b]) - points,
                                     np.array([b for _, b in pairs_b]) - resamples, 10, 0.8)
    d = stats.hierarchical_paired_difference(values, other, seeds, clips, confidence=0.8, n_resamples=300, seed=6,
                                             weights=weights)
    assert (d.low, d.high) == pytest.approx(ref_d) and d.n_clusters == 10


def test_hierarchical_mean_interval_refuses_negative_clip_codes_and_unaligned_rows():
    """A clip code below 0 (K distinct codes from -1) and clips of another length than the values are refused in one
    line (a bincount ValueError / an IndexError before)."""
    values, seeds, clips = _seed_clip_rows(np.random.default_rng(0), 2, 5, 0.3)
    with pytest.raises(InputError, match="clips: expected codes 0..4"):
        stats.hierarchical_mean_interval(values, seeds, clips - 1, 5, n_resamples=50)
    with pytest.raises(InputError, match="differ in length"):
        stats.hierarchical_mean_interval(values, seeds, clips[:-1], 5, n_resamples=50)


def test_fast_pearson_is_defined_from_exactly_min_pairs_pairs():
    """NaN only for *fewer* than ``min_pairs`` pairs: three pairs give r at the default of 3."""
    assert stats._pearson_r(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == pytest.approx(0.5)
    assert np.isnan(stats._pearson_r(np.array([1.0, 2.0]), np.array([1.0, 3.0])))
    # an exactly linear pair whose float r rounds to 1.0000000000000002: clipped to [-1, 1]
    x = np.array([-0.46, 0.22, -1.01, -0.21, -0.16, 0.54, 0.21])
    y = np.array([-0.038, 0.166, -0.203, 0.037, 0.052, 0.262, 0.163])
    assert stats._pearson_r(x, y) == 1.0 and stats._pearson_r(x, -y) == -1.0


def test_spearman_of_no_pairs_is_nan_without_a_warning():
    """Fewer than two pairs is NaN whatever ``min_pairs`` says (not numpy's mean-of-empty-slice warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(stats.spearman([], [], min_pairs=0))


def test_spearman_cluster_ci_within_averages_the_defined_clusters_and_uses_every_defined_resample():
    """scope="within": clusters with fewer than ``min_pairs`` rows (or a constant one) have no rho and are left out
    of the average and of ``n_clusters``; the interval uses the defined resamples however few (min_count=1)."""
    x = np.array([1.0, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2])
    y = np.array([1.0, 2, 3, 3, 2, 1, 1, 3, 2, 2, 1])  # rho 1, -1, 0.5; the last clip has 2 rows
    clips = np.repeat(["a", "b", "c", "d"], [3, 3, 3, 2])
    est = stats.spearman_cluster_ci(x, y, clips, scope="within", n_resamples=200)
    assert est.value == pytest.approx(0.5 / 3) and est.n_clusters == 3
    assert -1.0 <= est.low < est.value < est.high <= 1.0
    few = stats.spearman_cluster_ci(x, y, clips, scope="within", n_resamples=5)
    assert few.low is not None and few.high is not None
    # pooled: min_pairs rows at least in all, in the estimate and in every resample
    pooled = stats.spearman_cluster_ci(x, y, clips, min_pairs=13, n_resamples=50)  # 4 clips of <= 3 rows
    assert math.isnan(pooled.value) and pooled.low is None


def test_slcc_bootstrap_over_clips_is_the_percentile_interval_of_slcc_on_the_drawn_clips():
    """With ``clusters`` each resample takes every row of a drawn clip as often as the clip is drawn
    (:func:`resample_counts` over the sorted clips) and the interval is :func:`percentile_interval` of SLCC on
    those rows at ``confidence``."""
    rng = np.random.default_rng(4)
    clips = np.repeat(np.arange(12), 2)
    speech = np.repeat(rng.normal(size=12), 2)
    lip = 0.5 * speech + rng.normal(scale=0.7, size=24)
    ident = np.tile(["a", "b"], 12)
    boot = [slcc(speech[rows], lip[rows], ident[rows])
            for rows in (np.repeat(np.arange(24), w[clips]) for w in stats.resample_counts(12, 200, 1))]
    iv = stats.slcc_bootstrap(speech, lip, ident, n_resamples=200, seed=1, clusters=clips, confidence=0.8)
    assert (iv.low, iv.high) == pytest.approx(stats.percentile_interval(boot, 0.8), rel=1e-9)


def test_slcc_bootstrap_over_clips_with_undefined_resamples_gives_the_reason():
    """A clip resample on which SLCC is undefined makes the interval undefined, with the reason naming the clips
    (not only when more than the 10 % that percentile_interval tolerates are)."""
    rng = np.random.default_rng(0)
    speech, lip = rng.normal(size=6), rng.normal(size=6)
    ident = ["a"] * 3 + ["b"] * 3
    iv = stats.slcc_bootstrap(speech, lip, ident, n_resamples=200, clusters=np.arange(6))  # 6 of 200 undefined
    assert (iv.low, iv.high) == (None, None) and "undefined on 6 of 200" in iv.reason and "of the 6 clips" in iv.reason


def test_binomial_test_and_wilson_ci_at_the_ends_of_their_ranges():
    """p = 0 and p = 1 are success probabilities (in [0, 1]); a Wilson confidence of exactly 0 or 1 is not a level
    (in (0, 1)) and is refused in one line."""
    assert stats.binomial_test(0, 5, 0.0) == 1.0 and stats.binomial_test(3, 5, 1.0) == 0.0
    for confidence in (0.0, 1.0):
        with pytest.raises(InputError, match="confidence"):
            stats.wilson_ci(3, 5, confidence)


def test_fleiss_kappa_refuses_negative_counts_and_single_ratings_and_is_quietly_nan_when_undefined():
    """Counts below 0, a table of one category and items with one rating each (P_i divides by n (n - 1)) are refused in one line; every
    rating in one category (P_e = 1) is NaN without a division warning."""
    with pytest.raises(InputError, match="non-negative integers"):
        stats.fleiss_kappa(np.array([[-1, 4], [1, 2]]))
    with pytest.raises(InputError, match="same number"):
        stats.fleiss_kappa(np.array([[1, 0], [0, 1]]))
    with pytest.raises(InputError, match="categories >= 2"):
        stats.fleiss_kappa(np.array([[3], [3]]))  # one category: nothing to agree on
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(stats.fleiss_kappa(np.array([[3, 0], [3, 0]])))


def test_minimum_detectable_effect_of_an_unbounded_interval_is_nan():
    """A bound that is not finite (either one) gives NaN, not an infinite effect."""
    assert math.isnan(stats.minimum_detectable_effect(0.0, float("inf")))
    assert math.isnan(stats.minimum_detectable_effect(float("-inf"), 0.0))


def test_seed_agreement_refuses_a_table_of_changes():
    """``per_seed`` is one change per seed; a 2-D table was a TypeError from math.isfinite of a row."""
    with pytest.raises(InputError, match="per_seed: expected one change per seed"):
        stats.seed_agreement(0.5, [[0.1, 0.2], [0.3, -0.1]])


def test_a_seed_sequence_seeds_the_draws():
    """A ``SeedSequence`` seed gives the draws of ``default_rng`` of that sequence (two sequences, two draws)."""
    seen = []
    stats.cluster_bootstrap(lambda idx: seen.append(idx.tolist()) or 0.0, 5, n_resamples=10,
                            seed=np.random.SeedSequence(1))
    rng = np.random.default_rng(np.random.SeedSequence(1))
    assert seen[1:] == [rng.integers(0, 5, 5).tolist() for _ in range(10)]
    one = stats.spearman_cluster_ci(np.arange(8.0), np.arange(8.0) % 3, np.arange(8) // 2, n_resamples=50,
                                    seed=np.random.SeedSequence(1))
    two = stats.spearman_cluster_ci(np.arange(8.0), np.arange(8.0) % 3, np.arange(8) // 2, n_resamples=50,
                                    seed=np.random.SeedSequence(2))
    assert (one.low, one.high) != (two.low, two.high)


def test_object_columns_with_booleans_or_text_and_missing_numbers_are_refused_by_name():
    """An object column (e.g. from a table) holding a boolean or text is refused, not read as 1 or parsed; a
    missing real number (None) is named as such."""
    clips = ["a", "a", "b", "b"]
    for column in ([1.0, True, 2.0, 3.0], [1.0, "2", 2.0, 3.0]):
        with pytest.raises(InputError, match="values: expected real numbers, got object values"):
            stats.cluster_bootstrap_ci(np.array(column, dtype=object), clips, n_resamples=50)
    with pytest.raises(InputError, match="p: expected a real number, got None"):
        stats.binomial_test(3, 10, None)
    with pytest.raises(InputError, match="confidence: expected a real number, got None"):
        stats.wilson_ci(3, 10, None)


def test_cluster_means_drop_infinite_rows_like_nan_ones():
    """Non-finite rows (inf as NaN) are dropped from the pooled mean and its resamples."""
    values, codes, counts = np.array([1.0, np.inf, 3.0, -np.inf]), np.array([0, 0, 1, 1]), np.array([[1, 1], [2, 0]])
    point, boot = stats.cluster_mean_resamples(values, codes, counts)
    assert point == 2.0 and boot.tolist() == [2.0, 1.0]


def test_paired_cluster_difference_of_an_arm_with_zero_total_weight_is_undefined():
    """An arm whose common rows all weigh 0 has no mean: None (not NaN), and so has the difference."""
    x, clips = np.arange(4.0), ["a", "a", "b", "b"]
    d = stats.paired_cluster_difference(x, clips, x + 1, clips, n_resamples=20, weights_a=np.zeros(4))
    assert d.a is None and d.diff is None and d.b == pytest.approx(2.5)


def test_slcc_row_bootstrap_takes_the_given_confidence():
    """The paired row bootstrap of SLCC gives nested intervals: 80 % inside 95 %."""
    rng = np.random.default_rng(2)
    identity = np.repeat(["a", "b", "c", "d"], 25)
    speech = rng.normal(size=100)
    lip = 0.6 * speech + rng.normal(scale=0.8, size=100)
    lo95, hi95 = stats.slcc_bootstrap_ci(speech, lip, identity, n_resamples=300)
    lo80, hi80 = stats.slcc_bootstrap_ci(speech, lip, identity, n_resamples=300, confidence=0.8)
    assert lo95 < lo80 < hi80 < hi95


def test_shape_checks_of_the_correlation_and_seed_functions():
    """Inputs of the wrong shape are refused in one line (a 1-D table for kendall_w was an unpacking ValueError;
    2-D vectors for spearman, clusters of another length than x and y, and resamples for other seeds than the
    points gave errors or numbers from misaligned rows)."""
    with pytest.raises(InputError, match=r"kendall_w: expected \(raters, items\)"):
        stats.kendall_w([1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="spearman: expected two vectors"):
        stats.spearman(np.arange(6.0).reshape(3, 2), np.arange(6.0).reshape(3, 2))
    with pytest.raises(InputError, match="one length"):
        stats.spearman_cluster_ci(np.arange(6.0), np.arange(6.0), [0, 0, 1, 1, 2])
    with pytest.raises(InputError, match="expected S seed values and"):
        stats.seed_clip_interval(np.array([0.1, 0.2]), np.zeros((3, 50)), 5)


def test_minimum_detectable_effect_with_a_missing_upper_bound_is_nan():
    """Either bound missing (None) gives NaN, as documented."""
    assert math.isnan(stats.minimum_detectable_effect(1.0, None))


def test_cluster_bootstrap_ci_refuses_a_bad_resample_count_without_finite_values_too():
    """``n_resamples`` 0 was refused only when some value was finite: all-NaN values returned (None, None) first, so
    the same bad setting passed or failed with the data."""
    for values in ([1.0, 2.0, 3.0], [np.nan, np.nan, np.nan]):
        with pytest.raises(InputError, match="n_resamples: expected an integer >= 1, got 0"):
            stats.cluster_bootstrap_ci(values, ["a", "b", "c"], n_resamples=0)
    assert stats.cluster_bootstrap_ci([np.nan] * 3, ["a", "b", "c"], n_resamples=10) == (None, None)
