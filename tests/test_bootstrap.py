"""Bootstrap confidence intervals (p3d.metrics.bootstrap)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.metrics import bootstrap_ci, slcc, slcc_bootstrap_ci


def test_mean_ci_brackets_the_mean_and_is_deterministic():
    x = np.random.default_rng(0).normal(loc=3.0, size=200)
    low, high = bootstrap_ci(x, n_resamples=2000)
    assert low < x.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * x.std(ddof=1) / np.sqrt(x.size), rel=0.15)
    assert bootstrap_ci(x, n_resamples=2000) == (low, high)
    assert bootstrap_ci(x, n_resamples=2000, seed=1) != (low, high)
    p_low, p_high = bootstrap_ci(x, n_resamples=2000, method="percentile")
    assert p_low < x.mean() < p_high


def test_wider_confidence_gives_wider_interval():
    x = np.random.default_rng(1).exponential(size=50)
    l90, h90 = bootstrap_ci(x, confidence=0.9, n_resamples=2000)
    l99, h99 = bootstrap_ci(x, confidence=0.99, n_resamples=2000)
    assert l99 < l90 and h99 > h90


def test_custom_statistic_without_axis():
    x = np.arange(20.0)
    low, high = bootstrap_ci(x, lambda s: float(np.median(s)), n_resamples=500, method="percentile")
    assert low <= np.median(x) <= high


def test_degenerate_inputs_give_a_point_interval():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bootstrap_ci([2.5]) == (2.5, 2.5)
        assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)


def test_bca_falls_back_to_percentile_when_undefined():
    # The median of mostly-equal values: every jackknife value is equal, so BCa's acceleration is 0/0.
    x = np.array([5.0] + [1.0] * 22)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = bootstrap_ci(x, np.median, n_resamples=500)
    assert (low, high) == bootstrap_ci(x, np.median, n_resamples=500, method="percentile")
    assert np.isfinite(low) and np.isfinite(high) and low <= 1.0 <= high


@pytest.mark.parametrize("values, kw, match", [
    ([], {}, "at least 1"),
    ([1.0, np.nan], {}, "NaN"),
    (np.zeros((2, 2)), {}, "1-D"),
    ([1.0, 2.0], {"confidence": 1.0}, "confidence"),
    ([1.0, 2.0], {"n_resamples": 0}, "n_resamples"),
    ([1.0, 2.0], {"method": "normal"}, "method"),
])
def test_bad_inputs(values, kw, match):
    with pytest.raises(InputError, match=match):
        bootstrap_ci(values, **kw)


def test_slcc_paired_bootstrap():
    rng = np.random.default_rng(2)
    identity = np.repeat(["a", "b", "c", "d"], 25)
    speech = rng.normal(size=100)
    lip = 0.6 * speech + rng.normal(scale=0.8, size=100)
    r = slcc(speech, lip, identity)
    low, high = slcc_bootstrap_ci(speech, lip, identity, n_resamples=300)
    assert -1 <= low < r < high <= 1
    assert slcc_bootstrap_ci(speech, lip, identity, n_resamples=300) == (low, high)
    with pytest.raises(InputError, match="at least 3 rows"):
        slcc_bootstrap_ci([1.0, 2.0], [1.0, 3.0], ["a", "a"])


def test_slcc_bootstrap_with_undefined_resamples_is_nan():
    rng = np.random.default_rng(3)
    speech, lip = rng.normal(size=6), rng.normal(size=6)
    identity = ["a"] * 3 + ["b"] * 3
    assert np.isfinite(slcc(speech, lip, identity))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = slcc_bootstrap_ci(speech, lip, identity, n_resamples=200)
    assert np.isnan(low) and np.isnan(high)


def test_fast_pearson_equals_scipy():
    from scipy.stats import pearsonr

    from p3d.metrics.bootstrap import _pearson_r

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert _pearson_r(x, y) == pytest.approx(pearsonr(x, y).statistic, rel=1e-12)
    assert _pearson_r(x, x) == pytest.approx(1.0) and _pearson_r(x, -x) == pytest.approx(-1.0)
    assert np.isnan(_pearson_r(x[:2], y[:2])) and np.isnan(_pearson_r(np.ones(5), y[:5]))
