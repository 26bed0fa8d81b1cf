"""Lip intensity, speech intensity and SLCC (p3d.metrics.slcc) against the official semantics."""
from __future__ import annotations

import numpy as np
import pytest

import official_reference as ref
from p3d.errors import InputError
from p3d.metrics import lip_intensity, slcc, slcc_by_level, slcc_delta, speech_intensity
from p3d.topology import FLAME_LIPS


def test_lip_intensity_hand_case_both_aggregates():
    v = np.zeros((3, 4, 3))
    v[1, 0] = [3, 4, 0]  # frame step 0->1: lip magnitudes 5, 0 -> mean 2.5
    v[2, 0] = [3, 4, 0]
    v[2, 1] = [0, 0, 1]  # step 1->2: magnitudes 0, 1 -> mean 0.5
    v[:, 3] = np.arange(3)[:, None] * 10  # not a lip vertex
    assert lip_intensity(v, [0, 1]) == pytest.approx(np.sqrt((2.5 ** 2 + 0.5 ** 2) / 2))
    assert lip_intensity(v, [0, 1], aggregate="mean") == pytest.approx(1.5)
    # duplicated indices weight the mean over lips, as the official list does
    assert lip_intensity(v, [0, 0, 1], aggregate="mean") == pytest.approx((10 / 3 + 1 / 3) / 2)


def test_lip_intensity_matches_official_with_flame_lips():
    v = np.random.default_rng(0).normal(size=(30, 5023, 3)).astype(np.float32)
    assert lip_intensity(v.reshape(30, -1), FLAME_LIPS) == float(ref.lip_intensity_clip(v, FLAME_LIPS))


def test_speech_intensity_mono_stereo_int16():
    assert speech_intensity(np.array([3.0, -4.0])) == pytest.approx(np.sqrt(12.5))
    stereo = np.array([[1.0, 3.0], [-2.0, -4.0]])  # channel mean 2, -3
    assert speech_intensity(stereo) == pytest.approx(np.sqrt((4 + 9) / 2))
    pcm = np.array([30000, -30000, 20000], dtype=np.int16)  # squaring in int16 would overflow
    assert speech_intensity(pcm) == pytest.approx(float(ref.audio_rms(pcm)))
    assert speech_intensity(pcm) == pytest.approx(np.sqrt((2 * 30000 ** 2 + 20000 ** 2) / 3))


@pytest.mark.parametrize("audio, match", [
    (np.array([]), "no samples"),
    (np.zeros((0, 2)), "no samples"),
    (np.array([0.1, np.nan]), "NaN"),
    (np.zeros((2, 100)), "transpose"),
    (np.zeros((4, 2, 2)), "n_samples"),
])
def test_speech_intensity_bad_input(audio, match):
    with pytest.raises(InputError, match=match):
        speech_intensity(audio)


def test_lip_intensity_bad_input():
    with pytest.raises(InputError, match="at least 2 frames"):
        lip_intensity(np.zeros((1, 4, 3)), [0])
    with pytest.raises(InputError, match="aggregate"):
        lip_intensity(np.zeros((3, 4, 3)), [0], aggregate="max")
    with pytest.raises(InputError, match="NaN"):
        lip_intensity(np.full((3, 4, 3), np.nan), [0])
    with pytest.raises(InputError, match="lip_vertices"):
        lip_intensity(np.zeros((3, 4, 3)), [9])


def _table(seed: int = 0, n_ids: int = 5, per_id: int = 12):
    rng = np.random.default_rng(seed)
    identity = np.repeat([f"M{k:03d}" for k in range(n_ids)], per_id)
    level = np.tile(["level_1", "level_2", "level_3"], n_ids * per_id // 3)
    speech = rng.gamma(2.0, 1000.0, size=identity.size)
    lip = 0.5 * speech / 1000 + rng.normal(size=identity.size)
    return speech, lip, identity, level


def test_slcc_matches_pandas_official():
    speech, lip, identity, level = _table()
    expected = ref.slcc_table(speech, lip, identity, level)
    assert slcc(speech, lip, identity) == pytest.approx(expected["all"], rel=1e-12)
    got = slcc_by_level(speech, lip, identity, level)
    assert list(got) == ["level_1", "level_2", "level_3", "all"]
    for key, r in expected.items():
        assert got[key] == pytest.approx(r, rel=1e-12)


def test_slcc_matches_pandas_official_with_unequal_identity_sizes():
    # pandas' std is the sample std (ddof=1): with identities of different sizes the ddof changes each
    # identity's z-scale by a different factor sqrt(n / (n - 1)), and so the pooled Pearson r.
    speech, lip, identity, level = _table(seed=4, n_ids=4, per_id=12)
    keep = np.concatenate([np.arange(0, 3), np.arange(12, 16), np.arange(24, 36), np.arange(36, 48)])
    speech, lip, identity, level = speech[keep], lip[keep], identity[keep], level[keep]
    expected = ref.slcc_table(speech, lip, identity, level)
    assert slcc(speech, lip, identity) == pytest.approx(expected["all"], rel=1e-12)
    got = slcc_by_level(speech, lip, identity, level)
    for key, r in expected.items():
        assert got[key] == pytest.approx(r, rel=1e-12)


def test_slcc_by_level_normalises_over_all_levels_first():
    # Hand computation: per level r of the globally z-scored values differs from z-scoring per level.
    speech, lip, identity, level = _table(seed=1, n_ids=2, per_id=6)
    z = {}
    for name, x in (("s", speech), ("l", lip)):
        out = np.empty_like(x)
        for ident in np.unique(identity):
            sel = identity == ident
            out[sel] = (x[sel] - x[sel].mean()) / x[sel].std(ddof=1)
        z[name] = out
    for lv in ("level_1", "level_2", "level_3"):
        sel = level == lv
        assert slcc_by_level(speech, lip, identity, level)[lv] == pytest.approx(
            np.corrcoef(z["s"][sel], z["l"][sel])[0, 1], rel=1e-10)


def test_slcc_invariant_to_per_identity_affine_maps():
    speech, lip, identity, _ = _table(seed=2)
    base = slcc(speech, lip, identity)
    rng = np.random.default_rng(5)
    scale = {i: rng.uniform(0.1, 10) for i in np.unique(identity)}
    shift = {i: rng.normal(scale=100) for i in np.unique(identity)}
    a = np.array([scale[i] for i in identity])
    b = np.array([shift[i] for i in identity])
    assert slcc(speech * a, lip, identity) == pytest.approx(base, rel=1e-10)
    assert slcc(speech, lip * a + b, identity) == pytest.approx(base, rel=1e-10)
    assert slcc(speech / 32768.0, lip, identity) == pytest.approx(base, rel=1e-10)  # int16 vs float audio


def test_slcc_drops_single_row_and_constant_identities():
    speech, lip, identity, _ = _table(seed=3, n_ids=3, per_id=8)
    base = slcc(speech, lip, identity)
    # a one-row identity and an identity whose lip intensity is constant (0.1 three times: pandas would
    # give spurious finite z-scores through rounding; here they are undefined and dropped)
    speech2 = np.concatenate([speech, [5.0, 1.0, 2.0, 3.0]])
    lip2 = np.concatenate([lip, [9.0, 0.1, 0.1, 0.1]])
    identity2 = np.concatenate([identity, ["solo", "flat", "flat", "flat"]])
    assert slcc(speech2, lip2, identity2) == pytest.approx(base, rel=1e-12)


def test_slcc_drops_identities_constant_up_to_rounding():
    """An identity whose speech intensities differ only by rounding (0.1 + 0.2 beside 0.3) got z-scores of the
    rounding noise at unit variance, which moved r (0.98 -> 0.59 here); it is constant, as exactly equal values."""
    speech = np.array([0.1 + 0.2, 0.3, 0.3, 0.30000000000000004, 1.0, 2.0, 3.0, 4.0])
    lip = np.array([0.5, 0.9, 0.1, 0.7, 1.0, 2.5, 2.9, 4.1])
    ident = ["a"] * 4 + ["b"] * 4
    constant = np.where(np.arange(8) < 4, 0.3, speech)
    expected = np.corrcoef(speech[4:], lip[4:])[0, 1]
    assert slcc(speech, lip, ident) == slcc(constant, lip, ident) == pytest.approx(expected)
    # float32 rounding of one motion (lip intensities of float32 vertices): constant too
    lip32 = np.concatenate([np.float32(0.7) * (1 + np.array([0.0, 1.0, -1.0, 2.0]) * 1.2e-7), lip[4:]])
    speech2 = np.array([1.0, 3.0, 2.0, 4.0, 1.0, 2.0, 3.0, 4.0])
    assert slcc(speech2, lip32, ident) == pytest.approx(np.corrcoef(speech2[4:], lip[4:])[0, 1])
    # a real spread, however far from zero, is kept
    assert slcc(speech2, lip + 1e3, ident) == pytest.approx(slcc(speech2, lip, ident), rel=1e-9)


def test_a_level_whose_rows_share_one_z_score_is_undefined():
    """Four speakers at different gains, clips 2 and 3 of each equally loud and equally moving: within each level all
    rows have one z-score (1/sqrt(3) in level 2), equal up to rounding, and Pearson r of that rounding was returned
    (-0.98 for levels 2 and 3, -0.88 for level 1); r over a single z-score is undefined: NaN, as for equal values."""
    gain, motion = np.array([0.9, 1.7, 3.1, 5.3]), np.array([0.011, 0.023, 0.037, 0.0051])
    speech = np.concatenate([g * np.array([1.0, 2.0, 2.0]) for g in gain]) + 0.1
    lip = np.concatenate([m * np.array([1.0, 3.0, 3.0]) for m in motion]) + 0.3
    out = slcc_by_level(speech, lip, np.repeat(["a", "b", "c", "d"], 3), np.tile([1, 2, 3], 4))
    assert all(np.isnan(out[lv]) for lv in (1, 2, 3)) and out["all"] == pytest.approx(1.0)


def test_slcc_delta():
    assert slcc_delta(0.26, 0.34) == pytest.approx(0.08)
    assert slcc_delta(0.34, 0.26) == pytest.approx(0.08)
    with pytest.raises(InputError, match="model_r"):
        slcc_delta(float("nan"), 0.3)
    with pytest.raises(InputError, match="data_r"):
        slcc_delta(0.2, 1.5)


def test_slcc_bad_input():
    s, li, ident = np.arange(6.0), np.arange(6.0) ** 2, np.repeat(["a", "b"], 3)
    assert -1 <= slcc(s, li, ident) <= 1
    with pytest.raises(InputError, match="rows"):
        slcc(s, li[:5], ident)
    with pytest.raises(InputError, match="labels"):
        slcc(s, li, ident[:5])
    with pytest.raises(InputError, match="NaN"):
        slcc(np.array([1, 2, np.nan, 4, 5, 6.0]), li, ident)
    with pytest.raises(InputError, match="at least 3 rows"):
        slcc(s[:4], li[:4], ["a", "a", "b", "c"])  # only identity a's two rows are defined
    with pytest.raises(InputError, match="1-D"):
        slcc(s.reshape(2, 3), li, ident)
    with pytest.raises(InputError, match="reserved"):
        slcc_by_level(s, li, ident, ["all"] * 6)
    with pytest.raises(InputError, match="level"):
        slcc_by_level(s, li, ident, ["x"] * 5)
    # a row without a speaker: each NaN was a speaker of its own (its z-score undefined: the row dropped silently),
    # every None row one speaker
    for missing in (float("nan"), None):
        with pytest.raises(InputError, match=r"identity: 2 row\(s\) without a speaker label \(e.g. row 4"):
            slcc(s, li, ["a", "a", "a", "b", missing, missing])


def test_slcc_by_level_drops_undefined_rows_within_each_level():
    """evaluate_SLCC.py drops the rows with an undefined z-score (dropna) before the level-wise r: a one-row identity
    and a constant identity inside level_1 leave its r (and the others') as over the defined rows only."""
    speech, lip, identity, level = _table(seed=6)
    speech = np.concatenate([speech, [5.0, 1.0, 2.0, 3.0]])
    lip = np.concatenate([lip, [9.0, 0.5, 0.5, 0.5]])
    identity = np.concatenate([identity, ["solo", "flat", "flat", "flat"]])
    level = np.concatenate([level, ["level_1"] * 4])
    expected = ref.slcc_table(speech, lip, identity, level)
    got = slcc_by_level(speech, lip, identity, level)
    assert set(got) == set(expected)
    for key, r in expected.items():
        assert np.isfinite(got[key]) and got[key] == pytest.approx(r, rel=1e-12)


def test_constant_identity_means_a_spread_at_most_the_rounding_tolerance():
    """zscore_by_group's documented bound is inclusive: a spread of exactly CONSTANT_RTOL times the largest
    magnitude is constant (no z-score); one ulp more is a spread."""
    from p3d.metrics.slcc import CONSTANT_RTOL, zscore_by_group

    codes = np.zeros(2, dtype=np.int64)
    lo = 1.0 - CONSTANT_RTOL  # exact in float64: CONSTANT_RTOL is a power of two, 2**-19
    assert 1.0 - lo == CONSTANT_RTOL * 1.0
    assert np.isnan(zscore_by_group(np.array([1.0, lo]), codes)).all()
    z = zscore_by_group(np.array([1.0, np.nextafter(lo, 0.0)]), codes)
    assert z == pytest.approx([1 / np.sqrt(2), -1 / np.sqrt(2)])


def test_slcc_by_level_undefined_level_is_nan():
    speech, lip, identity, level = _table(seed=4)
    level = level.copy()
    level[:2] = "level_9"  # two rows only: r undefined for that level
    out = slcc_by_level(speech, lip, identity, level)
    assert np.isnan(out["level_9"]) and np.isfinite(out["all"]) and np.isfinite(out["level_1"])


def test_slcc_bootstrap_over_clips_keeps_a_clips_predictions_together():
    """Eight predictions per GT clip share its speech intensity: resampling rows treats them as independent and
    gives an interval far too narrow; resampling the clips (``clusters``) gives about the interval of one row per
    clip, every resample drawing whole clips."""
    from p3d.stats import slcc_bootstrap

    rng = np.random.default_rng(3)
    n_clips, n_cond = 40, 8
    speech = np.repeat(rng.normal(size=n_clips), n_cond)
    lip = 0.4 * speech + np.repeat(rng.normal(size=n_clips), n_cond) + 0.1 * rng.normal(size=n_clips * n_cond)
    ident = np.repeat(np.arange(n_clips) % 2, n_cond)
    clips = np.repeat(np.arange(n_clips), n_cond)
    rows = slcc_bootstrap(speech, lip, ident, n_resamples=500)
    by_clip = slcc_bootstrap(speech, lip, ident, n_resamples=500, clusters=clips)
    one = slcc_bootstrap(speech[::n_cond], lip[::n_cond], ident[::n_cond], n_resamples=500)
    width = {k: iv.high - iv.low for k, iv in (("rows", rows), ("clips", by_clip), ("one", one))}
    assert width["clips"] > 2 * width["rows"] and 0.7 < width["clips"] / width["one"] < 1.4
    with pytest.raises(InputError, match="percentile"):
        slcc_bootstrap(speech, lip, ident, n_resamples=50, clusters=clips, method="BCa")
    with pytest.raises(InputError, match="rows"):
        slcc_bootstrap(speech, lip, ident, n_resamples=50, clusters=clips[:-1])


@pytest.mark.parametrize("r", [None, "high", np.array([0.3, 0.2]), object()])
def test_slcc_delta_refuses_what_is_not_one_correlation(r):
    with pytest.raises(InputError, match="model_r: expected a correlation in"):
        slcc_delta(r, 0.3)  # a TypeError / ValueError from numpy before


@pytest.mark.parametrize("r", [True, False, np.True_, "0.3"])
def test_slcc_delta_refuses_bools_and_text(r):
    """slcc_delta(True, 0.3) was 0.7 (True read as r = 1) and slcc_delta("0.3", 0.3) was 0."""
    with pytest.raises(InputError, match="model_r: expected a correlation in"):
        slcc_delta(r, 0.3)
    with pytest.raises(InputError, match="data_r: expected a correlation in"):
        slcc_delta(0.3, r)
    assert slcc_delta(np.float32(0.5), np.float64(0.25)) == 0.25


def test_unsigned_pcm_is_centred_before_its_rms():
    """8-bit WAV samples are centred at 128: their RMS was ~128 for any speech (the offset, not the signal),
    which changed SLCC silently (0.909 instead of 0.937 on a 24-clip example)."""
    centred = np.array([-100, 0, 50, 127, -128, 3], dtype=np.int16)
    as_u8 = (centred + 128).astype(np.uint8)
    assert speech_intensity(as_u8) == speech_intensity(centred)
    assert speech_intensity(np.stack([as_u8, as_u8], axis=1)) == speech_intensity(centred)
    assert speech_intensity((centred.astype(np.int32) + 32768).astype(np.uint16)) == speech_intensity(centred)


def test_slcc_scatter_draws_a_series_per_level_in_mm():
    """Notebook 00's figure: each level's clips as one series, lip intensity in mm / frame, the SLCC in the title."""
    import pandas as pd

    from p3d.viz.slcc_plot import plot_slcc_scatter

    per_clip = pd.DataFrame({"level": [3, 1, 3, 1], "speech_intensity": [0.3, 0.1, 0.4, 0.2],
                             "lip_intensity": [0.003, 0.001, 0.004, 0.002]})
    fig = plot_slcc_scatter(per_clip, 0.8765, title="demo")
    ax = fig.axes[0]
    assert ax.get_title() == "demo: SLCC = 0.88" and ax.get_ylabel() == "lip intensity (mm / frame)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["level 1", "level 3"]
    assert np.allclose(ax.collections[0].get_offsets(), [[0.1, 1.0], [0.2, 2.0]])
    assert np.allclose(ax.collections[1].get_offsets(), [[0.3, 3.0], [0.4, 4.0]])
    assert plot_slcc_scatter(per_clip, title="no value").axes[0].get_title() == "no value"
    assert plot_slcc_scatter(per_clip, 0.5).axes[0].get_title() == "SLCC = 0.50"  # not ": SLCC = 0.50"
    with pytest.raises(InputError, match="no level column"):
        plot_slcc_scatter(per_clip.drop(columns="level"))


def test_slcc_scatter_draws_the_rows_without_a_level():
    """Rows with a NaN level (counted in the pooled SLCC of the title) were dropped by groupby without a word, and
    the NaN made the other levels float ("level 1.0")."""
    import pandas as pd

    from p3d.viz.slcc_plot import plot_slcc_scatter

    per_clip = pd.DataFrame({"level": [1, None, 2, None, 1, 2], "speech_intensity": [0.1, 0.5, 0.3, 0.6, 0.2, 0.4],
                             "lip_intensity": [0.001, 0.005, 0.003, 0.006, 0.002, 0.004]})
    ax = plot_slcc_scatter(per_clip, 0.5).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["level 1", "level 2", "no level (2)"]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 6
    assert np.allclose(ax.collections[-1].get_offsets(), [[0.5, 5.0], [0.6, 6.0]])


def test_slcc_by_level_keeps_boolean_and_missing_labels_apart():
    """True == 1 merged levels True and 1 under one key; each NaN label (unequal to itself) became a key of its own."""
    rng = np.random.default_rng(0)
    speech = rng.normal(size=24)
    lip = speech + rng.normal(size=24)
    identity = np.repeat(["a", "b"], 12)
    for mixed in ([True] * 6 + [1] * 6 + [False] * 6 + [2] * 6, [np.True_, 1, 2] * 8):
        with pytest.raises(InputError, match="booleans and numbers"):
            slcc_by_level(speech, lip, identity, np.array(mixed, dtype=object))
    level = np.tile([1.0, 2.0, np.nan], 8)
    out = slcc_by_level(speech, lip, identity, level)
    assert list(out) == [1.0, 2.0, "all"]  # NaN rows count in "all" only
    assert out["all"] == slcc(speech, lip, identity)
    given = ~np.isnan(level)
    for lv in (1.0, 2.0):  # the same r as with the NaN rows given a level of their own
        assert out[lv] == slcc_by_level(speech, lip, identity, np.where(given, level, 3.0))[lv]
    assert set(slcc_by_level(speech, lip, identity, np.tile([True, False], 12))) == {True, False, "all"}


def test_slcc_by_level_counts_none_and_pandas_na_labels_as_missing_levels():
    """A level column with gaps (pandas keeps None in an object column, NA in a string column): None became a
    level of its own (reported as "None"), pandas' NA raised TypeError; now both are missing as NaN is."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    speech = rng.normal(size=24)
    lip = speech + rng.normal(size=24)
    identity = np.tile(["a", "b"], 12)
    level = np.tile(np.array(["low", "high", "mid"], dtype=object), 8)
    gaps = np.zeros(24, dtype=bool)
    gaps[[0, 5, 10]] = True
    expected = slcc_by_level(speech, lip, identity, np.where(gaps, np.nan, level))
    for missing in (None, pd.NA, np.float32("nan")):
        given = np.where(gaps, missing, level)
        out = slcc_by_level(speech, lip, identity, given)
        assert out == expected and list(out) == ["high", "low", "mid", "all"]
    given = np.where(gaps, pd.NA, level)
    slcc_by_level(speech, lip, identity, given)
    assert given[0] is pd.NA  # the caller's array is not modified
    out = slcc_by_level(speech, lip, identity, pd.Series(level, dtype="string").mask(gaps).to_numpy())
    assert out == expected
    # the rest of slcc.py refuses a missing speaker label of the same kinds (pandas' NA was one speaker)
    for missing in (pd.NA, np.float32("nan")):
        with pytest.raises(InputError, match=r"identity: 3 row\(s\) without a speaker label"):
            slcc(speech, lip, np.where(gaps, missing, identity.astype(object)))


def test_slcc_rows_used_marks_the_rows_r_is_taken_over_and_the_summary_counts_them():
    """The evaluator's summary counted SLCC's rows by recomputing the z-scores through the module's private helper;
    ``slcc_rows_used`` says which rows r rests on. Speaker "b" was evaluated on one GT clip (one speech intensity
    under three conditions) and "c" on one row: their z-scores are undefined and their rows left out."""
    pd = pytest.importorskip("pandas")
    from p3d.evaluate.summary import _slcc_counts
    from p3d.metrics.slcc import slcc_rows_used

    rng = np.random.default_rng(3)
    identity = np.array(["a"] * 6 + ["b"] * 3 + ["c"])
    gt = np.array(["a1", "a1", "a2", "a2", "a3", "a3", "b1", "b1", "b1", "c1"])
    speech = np.array([0.3, 0.3, 0.5, 0.5, 0.2, 0.2, 0.4, 0.4, 0.4, 0.6])
    lip = rng.uniform(1.0, 2.0, size=10)
    used = slcc_rows_used(speech, lip, identity)
    assert used.tolist() == [True] * 6 + [False] * 4
    assert slcc(speech, lip, identity) == slcc(speech[used], lip[used], identity[used])
    notes: list[str] = []
    df = pd.DataFrame({"identity": identity, "gt": gt, "speech_intensity": speech, "lip_intensity": lip})
    assert _slcc_counts(df, notes) == {"n_clips": 3, "n_predictions": 6}
    assert notes == ["4 of 10 prediction(s) left out: their speaker's z-score is undefined (one GT clip, one row or "
                     "constant intensities)"]
    with pytest.raises(InputError, match="speech_intensity has 10 rows but lip_intensity has 9"):
        slcc_rows_used(speech, lip[:9], identity)


def test_slcc_scatter_refuses_a_table_without_rows():
    import pandas as pd

    from p3d.viz.slcc_plot import plot_slcc_scatter

    empty = pd.DataFrame({"level": [], "speech_intensity": [], "lip_intensity": []})
    with pytest.raises(InputError, match="no rows"):
        plot_slcc_scatter(empty)
