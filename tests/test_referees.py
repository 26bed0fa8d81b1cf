"""The referee validity battery (p3d.analysis.referee_validity): parametrised degradations
(p3d.analysis.degradations), paired differences from the GT with the sign convention, validity verdicts
and the forest plot."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from p3d.analysis import degradations as dg
from p3d.analysis import metric_validation as mv
from p3d.analysis import referee_validity as rv
from p3d.errors import InputError


def _motion(n_frames: int = 40, n_vertices: int = 4) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n_frames)
    tpl = np.zeros((n_vertices, 3))
    tpl[:, 0] = np.arange(n_vertices)
    gt = np.repeat(tpl[None], n_frames, axis=0)
    gt[:, 1, 1] += 0.01 * np.sin(2 * np.pi * t / 9)
    return gt, tpl


def test_battery_degradations_are_built_as_named():
    gt, tpl = _motion()
    other = np.zeros_like(gt)
    out = dg.degradations(gt, tpl, np.random.default_rng(0), other_motion=other,
                          names=["gt", *rv.BATTERY_DEGRADATIONS])
    assert list(out) == ["gt", *rv.BATTERY_DEGRADATIONS]
    motion = gt - tpl
    np.testing.assert_allclose(out["amp_1.5"], tpl + 1.5 * motion)
    np.testing.assert_allclose(out["amp_0.25"], tpl + 0.25 * motion)
    np.testing.assert_array_equal(out["shift_-2"], mv.shift_sequence(gt, -2))
    np.testing.assert_array_equal(out["shift_-2"][:-2], gt[2:])  # lips lead: pred[t] = gt[t + 2]
    np.testing.assert_array_equal(out["static_template"], np.broadcast_to(tpl, gt.shape))
    # a centred 5-frame moving average of the motion (interior frames)
    np.testing.assert_allclose(out["movavg_5"][10, 1, 1], motion[8:13, 1, 1].mean() + tpl[1, 1])
    assert np.ptp(out["movavg_5"][:, 1, 1]) < np.ptp(gt[:, 1, 1])


@pytest.mark.parametrize("bad", ["amp_x", "shift_1.5", "movavg_0", "smooth_-1", "jitter_-0.1", "blur_2", "static",
                                 "amp_nan", "jitter_inf", "smooth_inf"])
def test_bad_degradation_names(bad):
    gt, tpl = _motion()
    with pytest.raises(InputError, match="unknown degradation"):
        dg.degradations(gt, tpl, np.random.default_rng(0), names=[bad])


def _rows(n: int = 12) -> pd.DataFrame:
    """``n`` clips; 'good' is a referee that ranks GT first, 'lower' a lower-is-better one that does too,
    'hub' rewards damping (damped scores above GT), and 'blind' cannot score the static sequence."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n):
        base = rng.normal(0.3, 0.05)
        for seq, good, lower, hub, blind in (("gt", 0.0, 0.0, 0.0, 0.0), ("amp_0.5", -0.1, 2.0, 0.05, -0.1),
                                             ("shift_5", -0.2, 5.0, -0.1, -0.2), ("static", -0.3, 9.0, 0.02, np.nan)):
            noise = rng.normal(0, 0.005)
            rows.append({"clip": f"c{k}", "sequence": seq, "plrs": base + hub + noise,
                         "oracle_accuracy": base + good + noise, "lve": lower + abs(noise),
                         "mtm": base - blind if np.isfinite(blind) else np.nan})
    return pd.DataFrame(rows)


def test_referee_differences_sign_convention_and_pairing():
    rows = _rows()
    tab = rv.referee_differences(rows, n_resamples=300)
    assert list(tab.columns) == ["variant", "degradation", "mean_minus_gt", "ci_low", "ci_high", "n_clips"]
    # the referees whose columns are present, in REFEREES order
    assert list(dict.fromkeys(tab["variant"])) == ["official", "oracle", "lve", "mtm"]
    t = tab.set_index(["variant", "degradation"])
    # paired over clips: the clip-level base cancels, so the intervals are tight around the known shifts
    assert t.loc[("oracle", "amp_0.5"), "mean_minus_gt"] == pytest.approx(-0.1, abs=0.01)
    assert t.loc[("official", "amp_0.5"), "mean_minus_gt"] == pytest.approx(0.05, abs=0.01)
    assert t.loc[("official", "amp_0.5"), "ci_low"] > 0
    # lower-is-better LVE is flipped: a larger error of the degradation is a negative difference
    assert t.loc[("lve", "static"), "mean_minus_gt"] < -8 and t.loc[("lve", "static"), "ci_high"] < 0
    lve_static = t.loc[("lve", "static")]
    assert lve_static["ci_low"] <= lve_static["mean_minus_gt"] <= lve_static["ci_high"]
    # undefined scores: no clip pairs, NaN difference
    assert t.loc[("mtm", "static"), "n_clips"] == 0 and np.isnan(t.loc[("mtm", "static"), "mean_minus_gt"])
    assert (tab.loc[tab["variant"] == "oracle", "n_clips"] == 12).all()


def test_notebook_08_summary_views():
    """Notebook 08's tables beside the scores: the mean per sequence sorted by the oracle (NaN MTM left out), the
    battery's chance view, and the amplitude degradations per (variant, speaker)."""
    rows = pd.DataFrame({"clip": ["a", "a", "a", "b", "b", "b"],
                         "sequence": ["gt", "amp_0.5", "static", "gt", "amp_0.5", "static"],
                         "oracle_accuracy": [0.9, 0.5, 0.1, 0.7, 0.5, 0.3], "plrs": [0.4, 0.3, 0.0, 0.2, 0.1, 0.0],
                         "lve": [0.0, 1.0, 2.0, 0.0, 3.0, 4.0], "mtm": [0.0, 10.0, np.nan, 2.0, 20.0, np.nan],
                         "plrs_calibrated": [0.3, 0.2, 0.0, 0.1, 0.0, -0.1], "plrs_mrr": [1.0, 0.5, 0.2, 1.0, 0.3, 0.2],
                         "plrs_mrr_chance": [0.2] * 6})
    means = mv.metric_means(rows)
    assert list(means.columns) == ["sequence", "oracle_accuracy", "plrs", "lve", "mtm"]
    assert list(means["sequence"]) == ["gt", "amp_0.5", "static"]
    assert means["oracle_accuracy"].tolist() == pytest.approx([0.8, 0.5, 0.2]) and np.isnan(means["mtm"].iloc[2])
    assert means["mtm"].iloc[1] == pytest.approx(15.0)
    chance = rv.battery_means(rows)
    assert list(chance.index) == ["gt", "amp_0.5", "static"] and chance.loc["amp_0.5", "plrs_mrr"] == pytest.approx(0.4)
    assert list(chance.columns) == ["plrs", "plrs_calibrated", "plrs_mrr", "plrs_mrr_chance", "oracle_accuracy"]
    by_speaker = pd.DataFrame({"identity": ["S1", "S1", "S1", "S2", "S2", "S2"],
                               "variant": ["official", "official", "official", "official", "official", "official"],
                               "degradation": ["amp_0.5", "amp_1.5", "shift_2", "amp_0.5", "amp_1.5", "shift_2"],
                               "mean_minus_gt": [-0.1, 0.2, -0.3, -0.4, 0.5, -0.6]})
    view = rv.amplitude_view(by_speaker)
    assert list(view.columns) == ["amp_0.5", "amp_1.5"] and list(view.index) == [("official", "S1"), ("official", "S2")]
    assert view.loc[("official", "S2"), "amp_1.5"] == pytest.approx(0.5)


def test_referee_validity_verdicts():
    tab = rv.referee_differences(_rows(), n_resamples=300)
    v = rv.referee_validity(tab).set_index("variant")
    assert bool(v.loc["oracle", "valid"]) and v.loc["oracle", "failing"] == []
    assert bool(v.loc["lve", "valid"])
    assert not v.loc["official", "valid"] and v.loc["official", "failing"] == ["amp_0.5", "static"]
    assert not v.loc["mtm", "valid"] and v.loc["mtm", "failing"] == ["static"]  # undefined counts as failing
    assert (v["n_degradations"] == 3).all()
    fig = rv.plot_referee_forest(tab, validity=v.reset_index())
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 4 and "NOT valid" in titles[0] and titles[1].endswith("\nvalid")
    # fewer clips than MIN_VALIDITY_CLIPS: no referee passes (one clip's bootstrap is a zero-width interval)
    few = rv.referee_validity(rv.referee_differences(_rows(rv.MIN_VALIDITY_CLIPS - 1), n_resamples=300))
    assert not few["valid"].any()


def test_referee_differences_bad_input():
    rows = _rows()
    with pytest.raises(InputError, match="'gt'"):
        rv.referee_differences(rows[rows["sequence"] != "gt"])
    with pytest.raises(InputError, match="no 'nope' sequence"):
        rv.referee_differences(rows, degradations_order=["nope"])
    with pytest.raises(InputError, match="sign"):
        rv.referee_differences(rows, referees={"x": ("plrs", 2)})
    with pytest.raises(InputError, match="referee"):
        rv.referee_differences(rows[["clip", "sequence"]])
    with pytest.raises(InputError, match="ci_high"):
        rv.referee_validity(pd.DataFrame({"variant": ["a"], "degradation": ["b"]}))


def _hub_rows() -> pd.DataFrame:
    """Twelve clips where the official score rewards damping (amp_0.75 above the GT) and the full margin rewards
    exaggeration (amp_1.25 above the GT): only a partial correction ranks the GT first."""
    rng = np.random.default_rng(1)
    rows = []
    for k in range(12):
        base = rng.normal(0.4, 0.05)
        # (official - GT, calibrated - GT) per degradation
        for seq, off, cal in (("gt", 0.0, 0.0), ("amp_0.75", 0.02, -0.04), ("amp_1.25", -0.04, 0.02),
                              ("shift_5", -0.2, -0.2)):
            rows.append({"clip": f"c{k}", "sequence": seq, "plrs": base + off + rng.normal(0, 0.002),
                         "plrs_calibrated": base - 0.2 + cal + rng.normal(0, 0.002)})
    return pd.DataFrame(rows)


def test_plrs_partial_interpolates_official_and_calibrated():
    from p3d.metrics.plrs import plrs_partial

    assert plrs_partial(0.4, 0.1, 0.0) == pytest.approx(0.4)
    assert plrs_partial(0.4, 0.1, 1.0) == pytest.approx(0.1)
    np.testing.assert_allclose(plrs_partial(np.array([0.4, 0.2]), np.array([0.0, 0.2]), 0.25), [0.3, 0.2])
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(InputError, match="hubness_weight"):
            plrs_partial(0.4, 0.1, bad)
    with pytest.raises(InputError, match="shapes"):
        plrs_partial(np.zeros(2), np.zeros(3), 0.5)


@pytest.mark.parametrize("bad", [True, np.True_, "0.5", None, np.array([0.5, 0.2])])
def test_plrs_weights_refuse_bools_text_and_arrays(bad):
    """plrs_partial(..., True) and plrs_enrolled(..., True) used a weight of 1; text, None and arrays were
    ValueError/TypeError tracebacks from float()."""
    from p3d.metrics.plrs import plrs_enrolled, plrs_partial

    with pytest.raises(InputError, match="hubness_weight"):
        plrs_partial(0.4, 0.1, bad)
    with pytest.raises(InputError, match="intensity_weight"):
        plrs_enrolled(0.3, 5.0, 5.0, bad)
    assert plrs_partial(0.4, 0.1, np.float32(0.5)) == pytest.approx(0.25)


@pytest.mark.parametrize("bad", ["x", [True, False], [[0.1, 0.2], [0.3]]])
def test_plrs_scores_refuse_text_bools_and_ragged_lists(bad):
    from p3d.metrics.plrs import plrs_enrolled, plrs_partial

    with pytest.raises(InputError, match="official"):
        plrs_partial(bad, 0.1, 0.5)
    with pytest.raises(InputError, match="amplitude"):
        plrs_enrolled(0.3, bad, 5.0, 0.5)


def test_select_hubness_weight_finds_the_valid_middle():
    rows = _hub_rows()
    # at the ends the battery fails (official: amp_0.75 above GT; PLRS-c: amp_1.25 above GT)
    for w, failing in ((0.0, "amp_0.75"), (1.0, "amp_1.25")):
        tab = rv.referee_differences(rv.with_plrs_partial(rows, w), referees={"partial": ("plrs_partial", 1)},
                                     n_resamples=300)
        assert rv.referee_validity(tab)["failing"].iloc[0] == [failing]
    w, table = rv.select_hubness_weight(rows, n_resamples=300)
    assert w == pytest.approx(0.5)  # symmetric construction: worst-case margin largest half-way
    assert table["chosen"].sum() == 1 and table.loc[table["chosen"], "hubness_weight"].iloc[0] == w
    assert table.loc[table["chosen"], "valid"].iloc[0]
    assert not table.loc[table["hubness_weight"] == 0.0, "valid"].iloc[0]
    out = rv.with_plrs_partial(rows, w)
    np.testing.assert_allclose(out["plrs_partial"], 0.5 * (rows["plrs"] + rows["plrs_calibrated"]))
    assert "plrs_partial" not in rows  # a copy
    assert "partial" in rv.referee_differences(out, n_resamples=100)["variant"].unique()
    with pytest.raises(InputError, match="plrs_calibrated"):
        rv.with_plrs_partial(rows.drop(columns="plrs_calibrated"), 0.5)
    with pytest.raises(InputError, match="no candidate"):
        rv.select_hubness_weight(rows, weights=[])


def test_battery_sequences_draw_per_clip_and_take_the_next_clips_motion():
    from types import SimpleNamespace

    gt, tpl = _motion()
    clips = [SimpleNamespace(stem=f"c{k}", identity="spk") for k in range(3)]
    motions = {c.stem: gt + 0.001 * k for k, c in enumerate(clips)}
    corpus = SimpleNamespace(vertices=lambda c: motions[c.stem], templates={"spk": tpl})
    seqs = rv.battery_sequences(corpus, clips, seed=4)
    out = seqs(clips[2])
    assert list(out) == ["gt", *rv.BATTERY_DEGRADATIONS]
    np.testing.assert_array_equal(out["gt"], motions["c2"])
    np.testing.assert_allclose(out["other_clip"], tpl + (motions["c0"] - tpl))  # the last clip takes the first's
    again = dg.degradations(motions["c2"], tpl, np.random.default_rng([4, 2]), other_motion=motions["c0"] - tpl,
                            names=["jitter_0.25"])
    np.testing.assert_array_equal(out["jitter_0.25"], again["jitter_0.25"])
    with pytest.raises(InputError, match="two clips"):
        rv.battery_sequences(corpus, clips[:1])


def test_referee_differences_by_speaker_splits_a_preference_that_the_pool_hides():
    rows = _hub_rows()
    # speakers a and b: the official score prefers damping for a, exaggeration for b
    rows["identity"] = np.where(rows["clip"].str[1:].astype(int) < 6, "a", "b")
    flip = (rows["identity"] == "b") & rows["sequence"].isin(["amp_0.75", "amp_1.25"])
    rows.loc[flip & (rows["sequence"] == "amp_0.75"), "plrs"] -= 0.06
    rows.loc[flip & (rows["sequence"] == "amp_1.25"), "plrs"] += 0.06
    tab = rv.referee_differences_by_speaker(rows, referees={"official": ("plrs", 1)}, n_resamples=200)
    assert list(tab.columns[:2]) == ["identity", "variant"] and set(tab["identity"]) == {"a", "b"}
    t = tab.set_index(["identity", "degradation"])["mean_minus_gt"]
    assert t[("a", "amp_0.75")] > 0 > t[("b", "amp_0.75")]
    assert t[("b", "amp_1.25")] > 0 > t[("a", "amp_1.25")]
    assert (tab["n_clips"] == 6).all()
    with pytest.raises(InputError, match="identity"):
        rv.referee_differences_by_speaker(rows.drop(columns="identity"))


def test_plrs_enrolled_penalises_relative_amplitude_mismatch():
    from p3d.metrics.plrs import plrs_enrolled

    assert plrs_enrolled(0.3, 5.0, 5.0, 0.2) == pytest.approx(0.3)          # the speaker's usual amplitude: PLRS-c
    assert plrs_enrolled(0.3, 6.0, 5.0, 0.2) == pytest.approx(0.3 - 0.2 * 0.2)
    assert plrs_enrolled(0.3, 4.0, 5.0, 0.2) == pytest.approx(0.3 - 0.2 * 0.2)  # damped and exaggerated alike
    assert plrs_enrolled(0.3, 0.0, 5.0, 0.5) == pytest.approx(0.3 - 0.5)        # a still mouth: the full weight
    np.testing.assert_allclose(plrs_enrolled(np.array([0.1, 0.2]), np.array([2.0, 3.0]), np.array([2.0, 0.0]), 1.0),
                               [0.1, np.nan])                                  # nothing enrolled: undefined
    assert plrs_enrolled(0.3, 9.0, 5.0, 0.0) == pytest.approx(0.3)
    for bad in (-0.1, float("nan")):
        with pytest.raises(InputError, match="intensity_weight"):
            plrs_enrolled(0.3, 5.0, 5.0, bad)
    assert plrs_enrolled(0.3, 10.0, 5.0, 1.0) == pytest.approx(0.3 - 1.0)  # the largest weight, MAX_INTENSITY_WEIGHT
    for bad in (1.5, 1e308, float("inf")):  # 1e308 * |15 / 5 - 1| was -inf with only a RuntimeWarning
        with pytest.raises(InputError, match=r"intensity_weight: expected a number in \[0, 1\]"):
            plrs_enrolled(0.3, 15.0, 5.0, bad)
    with pytest.raises(InputError, match="broadcast"):
        plrs_enrolled(np.zeros(2), np.ones(3), 1.0, 0.5)
    with pytest.raises(InputError, match=">= 0"):
        plrs_enrolled(0.3, -1.0, 5.0, 0.5)


def test_enrolled_lip_amplitude_leaves_the_clip_out():
    from p3d.metrics import enrolled_lip_amplitude

    out = enrolled_lip_amplitude([1.0, 2.0, 6.0, 4.0, 8.0], ["a", "a", "a", "b", "c"])
    np.testing.assert_allclose(out[:3], [4.0, 3.5, 1.5])  # the mean of the speaker's other clips
    assert np.isnan(out[3]) and np.isnan(out[4])            # a single clip: nothing to enrol from
    out = enrolled_lip_amplitude([1.0, np.nan, 3.0], ["a", "a", "a"])
    np.testing.assert_allclose(out, [3.0, 2.0, 1.0])        # a non-finite amplitude is never enrolled
    with pytest.raises(InputError, match="1-D"):
        enrolled_lip_amplitude([1.0, 2.0], ["a"])


def _intensity_rows(n_clips: int = 12, seed: int = 0) -> pd.DataFrame:
    """A battery where PLRS-c prefers exaggerated lips a little (+0.01 at 125 %) and every speaker has its own
    amplitude: only an enrolled intensity term ranks the GT first."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_clips):
        speaker = "ab"[k % 2]
        amp = (4.0 if speaker == "a" else 7.0) * (1 + rng.normal(0, 0.05))
        base = rng.uniform(0.1, 0.3)
        for seq, scale, cal in (("gt", 1.0, 0.0), ("amp_0.75", 0.75, -0.03), ("amp_1.25", 1.25, 0.01),
                                ("shift_5", 1.0, -0.2)):
            rows.append({"clip": f"c{k}", "identity": speaker, "sequence": seq, "lip_amplitude": amp * scale,
                         "plrs_calibrated": base + cal + rng.normal(0, 0.002)})
    return pd.DataFrame(rows)


def test_select_intensity_weight_takes_the_smallest_weight_that_passes():
    rows = _intensity_rows()
    tab = rv.referee_differences(rows, referees={"calibrated": ("plrs_calibrated", 1)}, n_resamples=300)
    assert rv.referee_validity(tab)["failing"].iloc[0] == ["amp_1.25"]
    w, table = rv.select_intensity_weight(rows, n_resamples=300)
    # the 125 % arm loses 0.25 w (minus the clip's own deviation from its speaker) against PLRS-c's +0.01
    assert 0.05 <= w <= 0.2
    assert table.loc[table["chosen"], "valid"].iloc[0] and table["chosen"].sum() == 1
    assert not table.loc[table["intensity_weight"] < w, "valid"].any()
    out = rv.with_plrs_enrolled(rows, w)
    assert "plrs_enrolled" not in rows  # a copy
    ok = rv.referee_validity(rv.referee_differences(out, n_resamples=300))
    assert ok.set_index("variant").loc["enrolled", "valid"]
    # each degradation is judged against its clip's speaker enrolled from the *other* GT clips
    gt = rows[rows["sequence"] == "gt"]
    c0 = gt[gt["identity"] == "a"]
    enrolled = c0["lip_amplitude"].iloc[1:].mean()
    r = out[(out["clip"] == c0["clip"].iloc[0]) & (out["sequence"] == "amp_1.25")].iloc[0]
    assert r["plrs_enrolled"] == pytest.approx(r["plrs_calibrated"] - w * abs(r["lip_amplitude"] / enrolled - 1))
    with pytest.raises(InputError, match="lip_amplitude"):
        rv.with_plrs_enrolled(rows.drop(columns="lip_amplitude"), 0.1)
    with pytest.raises(InputError, match="'gt'"):
        rv.with_plrs_enrolled(rows[rows["sequence"] != "gt"], 0.1)
    with pytest.raises(InputError, match="no candidate"):
        rv.select_intensity_weight(rows, weights=[])


def test_weight_scans_judge_validity_as_referee_validity_does():
    """The weight scans called a candidate valid when every ci_high < 0, but referee_validity also fails a degradation
    compared on fewer than MIN_VALIDITY_CLIPS clips: on a 5-clip battery both scans marked every weight valid (and
    select_intensity_weight took the smallest "passing" one) while referee_validity rejected the chosen weight."""
    rows = _intensity_rows(n_clips=5)
    for select, add, variant in ((rv.select_hubness_weight, None, "partial"),
                                 (rv.select_intensity_weight, rv.with_plrs_enrolled, "enrolled")):
        if add is None:
            rows = rows.assign(plrs=rows["plrs_calibrated"])
            add = rv.with_plrs_partial
        w, table = select(rows, weights=[0.0, 0.5, 1.0], n_resamples=200)
        for weight, valid in zip(table.iloc[:, 0], table["valid"]):
            diffs = rv.referee_differences(add(rows, weight), referees={variant: rv.REFEREES[variant]},
                                           n_resamples=200)
            assert bool(valid) == bool(rv.referee_validity(diffs)["valid"].iloc[0])
        assert not table["valid"].any()


def test_referee_validity_boundaries_follow_the_documented_rule():
    """The rule at its edges, on a hand-made table: ``ci_high >= 0`` fails (an interval touching 0 does not show the
    GT better), and a degradation needs at least MIN_VALIDITY_CLIPS clips (exactly that many passes)."""
    m = rv.MIN_VALIDITY_CLIPS
    tab = pd.DataFrame({"variant": ["touch", "touch", "enough", "enough", "short"],
                        "degradation": ["a", "b", "a", "b", "a"],
                        "mean_minus_gt": [-1.0, -1.0, -1.0, -1.0, -1.0],
                        "ci_low": [-2.0, -2.0, -2.0, -2.0, -2.0],
                        "ci_high": [0.0, -1e-12, -0.5, -0.5, -0.5],
                        "n_clips": [m + 5, m + 5, m, m + 1, m - 1]})
    v = rv.referee_validity(tab).set_index("variant")
    assert not v.loc["touch", "valid"] and v.loc["touch", "failing"] == ["a"]
    assert bool(v.loc["enough", "valid"]) and v.loc["enough", "failing"] == []
    assert not v.loc["short", "valid"] and v.loc["short", "failing"] == ["a"]


def test_battery_names_build_what_their_descriptions_say():
    """Each battery degradation's parameter (the name's grammar, p3d.analysis.degradations) is the one its
    description documents: amp_k is k x 100 %, shift_n lags (n > 0) or leads (n < 0) by |n| frames,
    movavg_n is an n-frame average."""
    import re

    for name, text in rv.BATTERY_DEGRADATIONS.items():
        kind, _, arg = name.partition("_")
        if kind == "amp":
            assert re.search(r"\b(\d+) %", text).group(1) == f"{round(float(arg) * 100)}", name
        elif kind == "shift":
            n = int(arg)
            assert f"{'lag' if n > 0 else 'lead'} the speech by {abs(n)} frames" in text, name
        elif kind == "movavg":
            assert f"{int(arg)}-frame" in text, name


def test_referee_differences_pairs_only_clips_defined_in_both_arms_with_the_given_bootstrap():
    """Documented: degradations default to every other sequence in order of appearance; the difference is over the
    clips where both arms are defined (a NaN GT drops its clip from ``n_clips``); ``confidence`` and ``seed`` go to
    paired_cluster_difference; ``n_clips`` counts clips, not rows; a flipped zero difference is +0.0; an explicit
    referee on a missing column is an InputError."""
    from p3d.stats import paired_cluster_difference

    rows = _rows()
    rows = pd.concat([rows[rows["sequence"] == "static"], rows[rows["sequence"] != "static"]], ignore_index=True)
    rows.loc[(rows["clip"] == "c0") & (rows["sequence"] == "gt"), "oracle_accuracy"] = np.nan
    rows["zero"] = 1.0
    tab = rv.referee_differences(rows, referees={"oracle": ("oracle_accuracy", 1), "zero": ("zero", -1)},
                                 confidence=0.8, n_resamples=200, seed=3)
    assert list(tab["degradation"][:3]) == ["static", "amp_0.5", "shift_5"]
    t = tab.set_index(["variant", "degradation"])
    assert t.loc[("oracle", "amp_0.5"), "n_clips"] == 11
    a = rows[(rows["sequence"] == "gt") & (rows["clip"] != "c0")]
    b = rows[(rows["sequence"] == "amp_0.5") & (rows["clip"] != "c0")]
    d = paired_cluster_difference(a["oracle_accuracy"].to_numpy(), a["clip"].tolist(), b["oracle_accuracy"].to_numpy(),
                                  b["clip"].tolist(), confidence=0.8, n_resamples=200, seed=3)
    assert t.loc[("oracle", "amp_0.5"), ["mean_minus_gt", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [d.diff, d.low, d.high])
    assert not np.signbit(t.loc[("zero", "amp_0.5"), "mean_minus_gt"])
    with pytest.raises(InputError, match="'nope' column"):
        rv.referee_differences(rows, referees={"x": ("nope", 1)})
    twice = pd.concat([rows, rows[(rows["clip"] == "c1") & (rows["sequence"] == "gt")]], ignore_index=True)
    assert (rv.referee_differences(twice, referees={"zero": ("zero", -1)}, n_resamples=50)["n_clips"] == 12).all()


def test_battery_other_clip_is_the_next_clips_motion_on_this_template():
    """``other_clip`` puts clip k + 1's *motion* (its vertices minus its own speaker's template) on clip k's
    template, so two speakers with different templates do not leak a template offset."""
    from types import SimpleNamespace

    gt, tpl = _motion()
    tpls = {"a": tpl, "b": tpl + 5.0}
    clips = [SimpleNamespace(stem="c0", identity="a"), SimpleNamespace(stem="c1", identity="b")]
    verts = {"c0": gt, "c1": tpls["b"] + 2 * (gt - tpl)}
    corpus = SimpleNamespace(vertices=lambda c: verts[c.stem], templates=tpls)
    out = rv.battery_sequences(corpus, clips)(clips[0])
    np.testing.assert_allclose(out["other_clip"], tpl + 2 * (gt - tpl), atol=1e-9)


def test_battery_constants_are_as_documented():
    """The documented battery (damped 25/50/75 %, exaggerated 125/150 %, shifted +-2 and +-5 frames, a 5-frame moving
    average, jitter, another clip, the static template), the weight grids (0 to 1 in steps of 0.05), the 10-clip
    rule and the two comparison metrics."""
    assert set(rv.BATTERY_DEGRADATIONS) == {"amp_0.25", "amp_0.5", "amp_0.75", "amp_1.25", "amp_1.5", "shift_-5",
                                            "shift_-2", "shift_2", "shift_5", "movavg_5", "jitter_0.25", "other_clip",
                                            "static_template"}
    for grid in (rv.HUBNESS_WEIGHTS, rv.INTENSITY_WEIGHTS):
        np.testing.assert_allclose(grid, np.linspace(0.0, 1.0, 21), atol=1e-12)
    assert rv.MIN_VALIDITY_CLIPS == 10
    assert rv.COMPARISON_METRICS == {"lve", "mtm"}


def test_weight_scans_report_the_battery_as_scored_and_break_ties_as_documented():
    """select_hubness_weight: the table is in the candidates' order, ``worst_ci_high`` is the largest ``ci_high`` of
    referee_differences with the same confidence and seed, and the first weight wins a tie. select_intensity_weight
    sorts the candidates (the smallest passing one) and falls back to the minimax weight when none passes. A
    degradation that cannot be scored fails the weight but does not stop the scan."""
    rows = _hub_rows()
    tied = rows.assign(plrs=rows["plrs_calibrated"])  # every weight gives the same column: a tie
    w, table = rv.select_hubness_weight(tied, weights=[0.5, 0.0, 1.0], confidence=0.8, n_resamples=150, seed=3)
    assert list(table["hubness_weight"]) == [0.5, 0.0, 1.0] and w == 0.5 and table["chosen"].tolist()[0]
    diffs = rv.referee_differences(rv.with_plrs_partial(tied, 0.5), referees={"partial": rv.REFEREES["partial"]},
                                   confidence=0.8, n_resamples=150, seed=3)
    assert table["worst_ci_high"].iloc[0] == pytest.approx(diffs["ci_high"].max())
    assert table["worst_degradation"].iloc[0] == diffs.loc[diffs["ci_high"].idxmax(), "degradation"]
    w, table = rv.select_intensity_weight(_intensity_rows(), weights=[1.0, 0.5, 0.0], n_resamples=150)
    assert list(table["intensity_weight"]) == [0.0, 0.5, 1.0] and w == 0.5
    w, table = rv.select_intensity_weight(_intensity_rows(n_clips=5), weights=[0.0, 0.5, 1.0], n_resamples=150)
    assert not table["valid"].any() and w == table["intensity_weight"].iloc[int(table["worst_ci_high"].argmin())]
    part = rows.copy()
    part.loc[part["sequence"] == "shift_5", "plrs_calibrated"] = np.nan
    _, table = rv.select_hubness_weight(part, weights=[0.5, 1.0], n_resamples=100)
    assert not table["valid"].any() and np.isfinite(table["worst_ci_high"]).all()
    part.loc[part["sequence"] != "gt", "plrs_calibrated"] = np.nan
    with pytest.raises(InputError, match="no degradation could be compared"):
        rv.select_hubness_weight(part, weights=[0.5], n_resamples=100)


def test_with_plrs_enrolled_ignores_a_duplicated_gt_row():
    """The enrolled amplitude is the mean over the speaker's *other clips*: a clip's GT row listed twice counts once
    (it is neither its own reference nor double-weighted for the others)."""
    rows = _intensity_rows()
    dup = pd.concat([rows, rows[(rows["clip"] == "c0") & (rows["sequence"] == "gt")]], ignore_index=True)
    np.testing.assert_allclose(rv.with_plrs_enrolled(dup, 0.5)["plrs_enrolled"][:len(rows)],
                               rv.with_plrs_enrolled(rows, 0.5)["plrs_enrolled"])


def test_views_and_verdicts_keep_the_tables_order_and_refuse_bad_tables():
    """referee_validity: one row per variant in table order; NaN ``ci_high`` fails even without ``n_clips``; a table
    without ``degradation`` is an InputError. amplitude_view keeps the table's degradation order.
    referee_differences_by_speaker of no rows is an InputError."""
    tab = pd.DataFrame({"variant": ["z", "z", "a"], "degradation": ["x", "y", "x"], "ci_high": [-1.0, np.nan, -1.0]})
    v = rv.referee_validity(tab)
    assert list(v["variant"]) == ["z", "a"] and v["failing"].tolist() == [["y"], []]
    with pytest.raises(InputError, match="degradation"):
        rv.referee_validity(tab.drop(columns="degradation"))
    by = pd.DataFrame({"identity": ["S1", "S1"], "variant": ["official"] * 2, "degradation": ["amp_1.5", "amp_0.5"],
                       "mean_minus_gt": [0.2, -0.1]})
    assert list(rv.amplitude_view(by).columns) == ["amp_1.5", "amp_0.5"]
    with pytest.raises(InputError, match="speaker"):
        rv.referee_differences_by_speaker(_rows().assign(identity="a").iloc[:0])


def test_forest_plot_follows_the_given_verdicts_labels_and_marks():
    """The panel titles use the ``validity`` given (else computed) and ``labels``; an undefined difference is marked
    "n/a"; unused panels are hidden; ``title`` is the suptitle; an empty table is an InputError."""
    tab = rv.referee_differences(_rows(), n_resamples=100)
    forced = pd.DataFrame({"variant": ["official", "oracle", "lve", "mtm"], "valid": [True, False, False, False]})
    fig = rv.plot_referee_forest(tab, validity=forced, labels={"official": "OFF"}, title="T")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4 and axes[0].get_title() == "OFF\nvalid" and axes[1].get_title().endswith("NOT valid")
    assert "n/a" in [t.get_text() for t in axes[3].texts] and fig.get_suptitle() == "T"
    five = pd.concat([tab, tab[tab["variant"] == "oracle"].assign(variant="extra")], ignore_index=True)
    assert sum(ax.get_visible() for ax in rv.plot_referee_forest(five).axes) == 5
    with pytest.raises(InputError, match="no referee"):
        rv.plot_referee_forest(tab.iloc[:0], validity=forced)


def test_battery_sequences_refuse_repeated_stems():
    """Clips [c0, c0] passed the two-clip check and other_clip became the clip's own motion (the GT scored as
    "mismatched content", a silently wrong battery); repeated stems are now an InputError."""
    from types import SimpleNamespace

    gt, tpl = _motion()
    c0 = SimpleNamespace(stem="c0", identity="spk")
    corpus = SimpleNamespace(vertices=lambda c: gt, templates={"spk": tpl})
    with pytest.raises(InputError, match="repeated"):
        rv.battery_sequences(corpus, [c0, c0])


def test_battery_sequences_refuse_a_clip_outside_the_battery():
    """A clip that is not among ``clips`` was a bare ValueError traceback from list.index; now one InputError line."""
    from types import SimpleNamespace

    gt, tpl = _motion()
    clips = [SimpleNamespace(stem=f"c{k}", identity="spk") for k in range(2)]
    corpus = SimpleNamespace(vertices=lambda c: gt, templates={"spk": tpl})
    with pytest.raises(InputError, match="'zz'"):
        rv.battery_sequences(corpus, clips)(SimpleNamespace(stem="zz", identity="spk"))
