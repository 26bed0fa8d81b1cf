"""Verdicts on the three properties: computed from the evidence with fixed thresholds."""
import math

import numpy as np
import pandas as pd
import pytest

from p3d.analysis.properties import (
    clustering_verdict, intensity_verdict, temporal_evidence, temporal_verdict, verdicts,
)
from p3d.errors import InputError


def _curve(peak_at=0, ci=0.01):
    off = np.arange(-10, 11)
    mean = 0.9 - 0.04 * np.abs(off - peak_at)
    return pd.DataFrame({"offset": off, "mean": mean, "ci_low": mean - ci, "ci_high": mean + ci})


def test_clustering_needs_margin_and_significance():
    assert clustering_verdict(0.60, 0.30, 400)[0]
    assert not clustering_verdict(0.33, 0.30, 400)[0]       # below the margin
    assert not clustering_verdict(0.40, 0.30, 10)[0]        # not significant with 10 rows
    # with the accuracy's CI over clips: its lower bound must clear chance, whatever the number of windows
    assert not clustering_verdict(0.392, 0.33, 3000, ci_low=0.309)[0]  # 3000 windows of 20 clips (was p=5e-13)
    assert clustering_verdict(0.45, 0.33, 3000, ci_low=0.38) == (True, pytest.approx(math.nan, nan_ok=True))
    assert not clustering_verdict(0.45, 0.33, 3000, ci_low=math.nan)[0]  # no interval: not shown


def test_temporal_peak_and_ci():
    assert temporal_verdict(_curve())[0]
    assert not temporal_verdict(_curve(peak_at=4))[0]
    assert not temporal_verdict(_curve(ci=0.5))[0]          # CI at 0 overlaps the far offsets
    assert not temporal_verdict(_curve().assign(ci_low=np.nan))[0]  # no CI (one clip): not shown (was: the mean)
    with pytest.raises(InputError):
        temporal_verdict(pd.DataFrame({"offset": [1], "mean": [0.1]}))
    holds, numbers = temporal_verdict(_curve())
    assert numbers["far_fixed"] and "(far mean taken as fixed)" in temporal_evidence(numbers)
    with_contrast = _curve().assign(vs_far=0.2, vs_far_ci_low=-0.01, vs_far_ci_high=0.4)
    assert not temporal_verdict(with_contrast)[0]  # the per-clip contrast's CI reaches 0: not shown
    assert not temporal_verdict(with_contrast.assign(vs_far_ci_low=np.nan))[0]
    assert "0 minus far +0.200 [-0.010, +0.400]" in temporal_evidence(temporal_verdict(with_contrast)[1])


def test_offset_contrast_interval_carries_the_far_means_clip_variance():
    """Clips whose similarity at 0 and far away rise and fall together: the per-clip contrast is sure (0.24 in
    every clip), while the CI at 0 alone, compared with the far mean as a constant, overlaps it."""
    offsets = np.arange(-6, 7)
    level = np.array([0.1, 0.5, 0.9, 0.3])  # each clip's overall similarity
    per_clip = level[:, None] + np.where(np.abs(offsets) >= 5, 0.0, 0.2 + 0.01 * (4 - np.abs(offsets)))[None, :]
    sims = pd.DataFrame({"offset": offsets, "mean": per_clip.mean(0)})
    half = 3.18 * per_clip.std(0, ddof=1) / 2
    curve = sims.assign(ci_low=sims["mean"] - half, ci_high=sims["mean"] + half)
    assert not temporal_verdict(curve)[0]  # the far mean taken as fixed: the clip spread hides the peak
    d = per_clip - per_clip[:, np.abs(offsets) >= 5].mean(1, keepdims=True)
    with_contrast = curve.assign(vs_far=d.mean(0), vs_far_ci_low=d.mean(0) - 1e-3, vs_far_ci_high=d.mean(0) + 1e-3)
    holds, numbers = temporal_verdict(with_contrast)
    assert holds and numbers["vs_far"] == pytest.approx(0.24) and not numbers["far_fixed"]


def test_intensity_binomial():
    holds, p = intensity_verdict({"n_identities": 8, "loio_ordered_fraction": 1.0, "loio_chance": 1 / 6})
    assert holds and p == pytest.approx((1 / 6) ** 8)
    assert not intensity_verdict({"n_identities": 8, "loio_ordered_fraction": 0.25, "loio_chance": 1 / 6})[0]
    holds, p = intensity_verdict({"n_identities": 1, "loio_ordered_fraction": math.nan, "loio_chance": 0.5})
    assert not holds and math.isnan(p)


def test_verdicts_table():
    sep = pd.DataFrame([{"critic": "ours", "features": "mesh", "accuracy": 0.7, "chance": 0.3, "n": 500},
                        {"critic": "ours", "features": "speech", "accuracy": 0.31, "chance": 0.3, "n": 500}])
    table = verdicts(sep, {"ours": _curve()}, {"ours": {"n_identities": 8, "loio_ordered_fraction": 1.0,
                                                        "loio_chance": 1 / 6, "direction_cosine_mean": 0.9}})
    got = dict(zip(table["property"], table["shows"]))
    assert got == {"phoneme clustering": False, "temporal sensitivity": True, "intensity direction": True}
    assert "speech: 31.0%" in table.loc[table["property"] == "phoneme clustering", "evidence"].iloc[0]


def test_verdicts_judge_clustering_on_the_ci_over_clips():
    """phoneme_separability's CI over clips decides property 1 and is shown (the binomial over windows, p=5e-13 here,
    counted the windows of a clip as independent trials)."""
    sep = pd.DataFrame([{"critic": "ours", "features": f, "accuracy": 0.392, "chance": 0.33, "n": 3000,
                         "ci_low": low, "ci_high": 0.48, "n_clusters": 20} for f, low in (("mesh", 0.309),
                                                                                        ("speech", 0.35))])
    table = verdicts(sep, {}, {})
    assert not table["shows"].iloc[0]
    assert "mesh: 39.2% [30.9%, 48.0%] over 20 clips vs chance 33.0%" in table["evidence"].iloc[0]
    assert verdicts(sep.iloc[1:], {}, {})["shows"].iloc[0]


def test_clustering_thresholds_are_the_documented_ones():
    """The fixed thresholds of property 1 (module docstring): a margin of 0.05 over chance in both forms, and
    p < 0.01 for the binomial form. Binomial tail probabilities from scipy.stats.binom, independently."""
    from scipy.stats import binom

    # 5000 independent rows at 34 % against 30 %: p = 6e-10, but 4 points are under the 0.05 margin
    assert binom.sf(0.34 * 5000 - 1, 5000, 0.3) < 1e-8
    assert not clustering_verdict(0.34, 0.30, 5000)[0]
    # the CI over clips above chance is not enough either: 3 points over chance is under the margin
    assert not clustering_verdict(0.36, 0.33, 3000, ci_low=0.34)[0]
    assert clustering_verdict(0.39, 0.33, 3000, ci_low=0.34)[0]
    # 39 of 100 rows against 30 %: P(X >= 39) = 0.034, significant at 0.05 but not at the fixed 0.01
    p = binom.sf(38, 100, 0.3)
    assert 0.01 < p < 0.05
    holds, got = clustering_verdict(0.39, 0.30, 100)
    assert not holds and got == pytest.approx(p)


def test_temporal_peak_within_one_frame_and_far_offsets_from_five():
    """Property 2: the peak within one frame of 0 (a peak 2 frames off is not), and the far mean over
    |offset| >= 5, offsets 5 and -5 included."""
    assert temporal_verdict(_curve(peak_at=1))[0]
    assert not temporal_verdict(_curve(peak_at=2))[0]
    contrast = {"vs_far": 0.2, "vs_far_ci_low": 0.1, "vs_far_ci_high": 0.3}  # the per-clip contrast, sure
    assert temporal_verdict(_curve(peak_at=1).assign(**contrast))[0]
    assert not temporal_verdict(_curve(peak_at=2).assign(**contrast))[0]
    curve = _curve()
    off, mean = curve["offset"].to_numpy(), curve["mean"].to_numpy()
    holds, numbers = temporal_verdict(curve)
    assert numbers["far"] == pytest.approx(mean[np.abs(off) >= 5].mean())  # 0.9 - 0.04 * 7.5 = 0.6
    assert numbers["far"] == pytest.approx(0.6) and numbers["at0"] == pytest.approx(0.9)
    # the far-fixed form: the CI at 0 must clear the far mean itself (0.6), not come near it
    assert not temporal_verdict(_curve(ci=0.31))[0]  # ci_low 0.59
    assert temporal_verdict(_curve(ci=0.29))[0]      # ci_low 0.61


def test_intensity_verdict_is_one_sided_at_five_percent_with_two_identities():
    """Property 3: a one-sided binomial test at alpha 0.05 (module docstring), over at least two identities."""
    from scipy.stats import binom

    # 4 of 8 identities ordered against chance 1/6: P(X >= 4) = 0.031, shown at 0.05
    holds, p = intensity_verdict({"n_identities": 8, "loio_ordered_fraction": 0.5, "loio_chance": 1 / 6})
    assert holds and p == pytest.approx(binom.sf(3, 8, 1 / 6)) and 0.01 < p < 0.05
    # no identity ordered: far *below* chance is no evidence for the property (one-sided, p = 1)
    holds, p = intensity_verdict({"n_identities": 8, "loio_ordered_fraction": 0.0, "loio_chance": 0.5})
    assert not holds and p == pytest.approx(1.0)
    # one identity is no leave-one-identity-out test, however small its chance
    holds, p = intensity_verdict({"n_identities": 1, "loio_ordered_fraction": 1.0, "loio_chance": 0.01})
    assert not holds and math.isnan(p)
