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


@pytest.mark.parametrize("bad", ["amp_x", "shift_1.5", "movavg_0", "smooth_-1", "jitter_-0.1", "blur_2", "static"])
def test_bad_degradation_names(bad):
    gt, tpl = _motion()
    with pytest.raises(InputError, match="unknown degradation"):
        dg.degradations(gt, tpl, np.random.default_rng(0), names=[bad])


def _rows() -> pd.DataFrame:
    """Six clips; 'good' is a referee that ranks GT first, 'lower' a lower-is-better one that does too,
    'hub' rewards damping (damped scores above GT), and 'blind' cannot score the static sequence."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(6):
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
    assert (tab.loc[tab["variant"] == "oracle", "n_clips"] == 6).all()


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
