"""p3d.evaluate.summary on hand-made per_clip tables: each number of summary.json against its documented rule,
computed here independently (means, frame weights, GT-clip resampling, counts, SLCC against the data's)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from p3d.evaluate.config import EvalConfig, FrameRates
from p3d.evaluate.summary import _summarise, format_summary

RATES = FrameRates(fps=25.0, gt_fps=50.0, stride=2, gt_fps_source="--gt-fps", explicit=False)


def _summary(df, wanted, gt_df=None, **kw):
    cfg = EvalConfig(pred=Path("pred"), bootstrap_resamples=400, seed=0)
    base = {"truncated": False, "note": None}
    df = pd.DataFrame({**{k: [v] * len(df["gt"]) for k, v in base.items() if k not in df}, **df})
    return _summarise(cfg, wanted, {}, df, pd.DataFrame() if gt_df is None else gt_df, [], RATES, **kw)


def test_lve_ci_resamples_clips_of_the_frame_weighted_mean():
    """LVE pools every scored frame (the official scripts): its CI is the bootstrap of that frame-weighted mean.
    Ten long clips (1000 frames, LVE 1) and ten short ones (10 frames, LVE 3): a resample holding at least one long
    clip has a weighted mean <= (1000 + 19 * 30) / (1000 + 19 * 10) < 1.32, whereas the unweighted mean of the
    clips is 2 (its CI was reported around it when the weights were not passed to the bootstrap). The weights are the
    scored frames (``frames``, after truncation to the shorter), not the prediction's length."""
    n = 20
    df = {"gt": [f"c{i}.npy" for i in range(n)], "frames": [1000 if i % 2 == 0 else 10 for i in range(n)],
          "lve": [1.0 if i % 2 == 0 else 3.0 for i in range(n)],
          "pred_frames": [10 if i % 2 == 0 else 1000 for i in range(n)]}   # truncated to the GT's: not the weights
    lve = _summary(df, ("lve",))["metrics"]["lve"]
    assert lve["value"] == pytest.approx((10 * 1000 * 1.0 + 10 * 10 * 3.0) / (10 * 1000 + 10 * 10))
    lo, hi = lve["ci95"]
    assert 1.0 <= lo <= lve["value"] <= hi <= (1000 + 19 * 30) / (1000 + 19 * 10)


def test_counts_are_of_the_predictions_with_a_value_and_their_gt_clips():
    """``n_predictions`` counts the predictions with a finite value, ``n_clips`` the GT clips among them: a
    prediction whose metric is NaN (MTM without matched extrema, a diagnostic too short to compute) is not counted."""
    df = {"gt": ["a.npy", "a.npy", "b.npy", "c.npy", "c.npy"], "frames": [30] * 5,
          "lve": [1.0, 2.0, np.nan, 4.0, np.nan], "fdd": [1.0, -2.0, np.nan, np.nan, np.nan],
          "mtm_frames": [1.0, np.nan, np.nan, 3.0, np.nan], "lip_jerk": [np.nan, 2.0, 1.0, 6.0, np.nan]}
    s = _summary(df, ("lve", "fdd", "mtm"))
    m = s["metrics"]
    assert (m["lve"]["n_predictions"], m["lve"]["n_clips"]) == (3, 2)
    assert (m["fdd"]["n_predictions"], m["fdd"]["n_clips"]) == (2, 1)
    assert (m["mtm"]["n_predictions"], m["mtm"]["n_clips"]) == (2, 2)
    assert (m["mtm"]["n_clips_matched"], m["mtm"]["n_clips_without_match"]) == (2, 3)
    assert (s["diagnostics"]["lip_jerk"]["n_predictions"], s["diagnostics"]["lip_jerk"]["n_clips"]) == (3, 3)
    assert s["diagnostics"]["lip_jerk"]["mean"] == pytest.approx(3.0)
    assert (s["counts"]["n_predictions"], s["counts"]["n_clips"]) == (5, 3)
    assert m["lve"]["value"] == pytest.approx(7.0 / 3)


def test_fdd_absolute_is_the_mean_magnitude_over_the_rows_of_its_value():
    """``fdd.absolute`` (mean |FDD|) is taken over the same predictions as ``value``: those with a finite FDD (a NaN
    row made it null while ``value`` skipped it)."""
    df = {"gt": ["a.npy", "a.npy", "b.npy"], "frames": [30] * 3, "fdd": [1.0, -2.0, np.nan]}
    fdd = _summary(df, ("fdd",))["metrics"]["fdd"]
    assert fdd["value"] == pytest.approx(-0.5)
    assert fdd["absolute"] == pytest.approx(1.5)
    assert _summary({"gt": ["a.npy"], "frames": [30], "fdd": [np.nan]}, ("fdd",))["metrics"]["fdd"]["absolute"] is None


def test_mtm_is_the_mean_offset_of_the_matched_predictions_in_frames_and_ms():
    """MTM: the mean over the predictions with matched extrema (NaN: none matched) of their mean offset, in frames
    and in ms at the prediction rate (--fps 25: 40 ms a frame; not the GT's 50 fps); its CI the same in both units."""
    df = {"gt": ["a.npy", "b.npy", "c.npy", "d.npy"], "frames": [30] * 4, "mtm_frames": [1.0, 2.0, 6.0, np.nan]}
    mtm = _summary(df, ("mtm",))["metrics"]["mtm"]
    assert mtm["frames"] == pytest.approx(3.0)
    assert mtm["ms"] == pytest.approx(3.0 * 1000 / 25)
    assert mtm["fps"] == 25.0
    assert mtm["ci95_ms"] == pytest.approx([c * 40.0 for c in mtm["ci95_frames"]])
    assert mtm["ci95"] == mtm["ci95_ms"]
    assert 1.0 <= mtm["ci95_frames"][0] < mtm["ci95_frames"][1] <= 6.0


def _z(x, ident):
    """Identity-wise z-scores (Eq. (7)); every identity here has the same number of rows, so the ddof is moot."""
    x, ident = np.asarray(x, float), np.asarray(ident)
    out = np.empty_like(x)
    for i in set(ident):
        m = ident == i
        out[m] = (x[m] - x[m].mean()) / x[m].std()
    return out


def test_slcc_is_the_predictions_r_beside_the_datas_own_with_its_counts():
    """SLCC: Pearson r of identity-wise z-scored speech and lip intensities (Eq. (7)) over the predictions with a
    speech intensity (a silent clip's NaN is left out), the data's r over the GT clips (gt_df), Δ = |r - r_data|, the
    same level-wise; counts of the rows r rests on (speaker C, one GT clip: its z-score undefined, not counted)."""
    rng = np.random.default_rng(7)
    gts, ids, levels = [f"{s}{k}.npy" for s in "AB" for k in range(4)], [s for s in "AB" for _ in range(4)], \
        ["1", "2"] * 4
    speech = rng.uniform(0.1, 1.0, 8)
    gt_df = pd.DataFrame({"gt": gts + ["C0.npy"], "identity": ids + ["C"], "level": levels + ["1"],
                          "speech_intensity": list(speech) + [0.5], "lip_intensity": rng.uniform(0.1, 1.0, 9)})
    rows = [{"gt": g, "identity": i, "level": lv, "speech_intensity": s, "lip_intensity": rng.uniform(0.1, 1.0)}
            for g, i, lv, s in zip(gts, ids, levels, speech) for _ in range(2)]
    rows += [{"gt": "C0.npy", "identity": "C", "level": "1", "speech_intensity": 0.5, "lip_intensity": lip}
             for lip in (0.2, 0.9)]
    rows += [{"gt": "A9.npy", "identity": "A", "level": "2", "speech_intensity": np.nan, "lip_intensity": 0.7}]
    df = pd.DataFrame(rows).assign(frames=30)
    slcc = _summary({c: df[c].tolist() for c in df}, ("slcc",), gt_df)["metrics"]["slcc"]

    used = df.iloc[:16]  # A and B: the rows with a defined z-score
    zs, zl = _z(used["speech_intensity"], used["identity"]), _z(used["lip_intensity"], used["identity"])
    r = np.corrcoef(zs, zl)[0, 1]
    g = gt_df.iloc[:8]
    r_data = np.corrcoef(_z(g["speech_intensity"], g["identity"]), _z(g["lip_intensity"], g["identity"]))[0, 1]
    assert slcc["value"] == pytest.approx(r)
    assert slcc["data_value"] == pytest.approx(r_data)
    assert slcc["delta"] == pytest.approx(abs(r - r_data))
    assert (slcc["n_predictions"], slcc["n_clips"], slcc["n_rows"]) == (16, 8, 18)
    for lv in ("1", "2"):
        m, gm = (used["level"] == lv).to_numpy(), (g["level"] == lv).to_numpy()
        want = np.corrcoef(zs[m], zl[m])[0, 1]
        want_data = np.corrcoef(_z(g["speech_intensity"], g["identity"])[gm],
                                _z(g["lip_intensity"], g["identity"])[gm])[0, 1]
        got = slcc["by_level"][lv]
        want_all = (want, want_data, abs(want - want_data))
        assert (got["value"], got["data_value"], got["delta"]) == pytest.approx(want_all)


def test_slcc_and_diagnostic_cis_resample_gt_clips_not_predictions():
    """Eight identical predictions of every GT clip are one unit of replication: the CIs of SLCC and of a
    diagnostic are those of one prediction per clip, not the narrower ones of resampling 8x as many predictions."""
    rng = np.random.default_rng(11)
    n = 24
    one = pd.DataFrame({"gt": [f"c{i}.npy" for i in range(n)], "identity": ["A", "B"] * (n // 2), "level": None,
                        "speech_intensity": rng.uniform(0.1, 1.0, n), "frames": 30,
                        "lip_jerk": rng.uniform(0.0, 1.0, n)})
    one["lip_intensity"] = one["speech_intensity"] + rng.normal(0, 0.3, n)
    eight = one.loc[one.index.repeat(8)].reset_index(drop=True)
    got = [_summary({c: d[c].tolist() for c in d}, ("slcc",), one) for d in (one, eight)]
    s1, s8 = (g["metrics"]["slcc"]["ci95"] for g in got)
    assert s1[0] is not None and s8[0] is not None
    assert s8[1] - s8[0] == pytest.approx(s1[1] - s1[0], rel=0.1)
    d1, d8 = (g["diagnostics"]["lip_jerk"]["ci95"] for g in got)
    assert d8 == pytest.approx(d1)


def test_silent_clips_note_counts_their_predictions_in_the_audio_metrics_only():
    """Two silent GT clips with 3 and 2 predictions: the audio metrics (SLCC, PLRS) say 5 predictions of 2 GT
    clips were left out, and the printed summary says so; LVE, scored for them, has no such note."""
    df = {"gt": ["a.npy", "b.npy", "c.npy", "d.npy"], "frames": [30] * 4, "lve": [1.0, 2.0, 3.0, 4.0],
          "plrs": [0.1, 0.2, np.nan, np.nan]}
    silent = [{"gt": "c.npy", "wav": "c.wav", "rms": 0.0, "n_predictions": 3},
              {"gt": "d.npy", "wav": "d.wav", "rms": 0.0, "n_predictions": 2}]
    s = _summary(df, ("lve", "plrs"), silent=silent)
    assert s["metrics"]["plrs"]["notes"][0].startswith("5 prediction(s) of 2 GT clip(s) left out")
    assert "notes" not in s["metrics"]["lve"]
    assert "their 5 prediction(s) are left out of SLCC and PLRS only" in format_summary(s)


def test_printed_summary_shows_both_ci_ends_mtm_in_ms_and_the_background_size():
    """format_summary: each CI with its low and high end, MTM's in ms (the value's unit), and PLRS-c's background
    as the other GT clips (each clip is scored against all but itself: 6 clips, 5 others)."""
    summary = {"counts": {"evaluated": 6, "ground_truth_clips": 6, "skipped": 0},
               "skipped": [],
               "metrics": {
                   "lve": {"value": 2.5, "ci95": [1.25, 3.75], "n_clips": 6, "n_predictions": 6},
                   "mtm": {"frames": 1.5, "ms": 60.0, "fps": 25.0, "ci95_frames": [1.0, 2.0],
                           "ci95_ms": [40.0, 80.0], "ci95": [40.0, 80.0], "n_clips": 6, "n_predictions": 6,
                           "n_clips_without_match": 0},
                   "plrs_calibrated": {"value": 0.25, "ci95": [0.125, 0.375], "background_clips": 6, "n_clips": 6,
                                       "n_predictions": 6}}}
    text = format_summary(summary)
    assert "LVE   2.5  [95% CI 1.25, 3.75]" in text
    assert "MTM   60.0 ms (1.500 frames at 25 fps)  [95% CI 40.0, 80.0]" in text
    assert "PLRS-c 0.250  [95% CI 0.125, 0.375]" in text
    assert "background: the speech of the 5 other GT clips" in text


def test_a_level_too_small_for_an_r_is_null_in_summary_json_not_nan():
    """A level with too few rows has no level-wise SLCC (NaN from p3d.metrics.slcc_by_level): summary.json holds
    null for it and its Δ (strict JSON has no NaN), the other levels their r."""
    import json

    rng = np.random.default_rng(5)
    n = 12
    df = pd.DataFrame({"gt": [f"c{i}.npy" for i in range(n)], "identity": ["A", "B"] * (n // 2),
                       "level": ["1"] * (n - 1) + ["3"], "speech_intensity": rng.uniform(0.1, 1.0, n),
                       "lip_intensity": rng.uniform(0.1, 1.0, n), "frames": 30})
    s = _summary({c: df[c].tolist() for c in df}, ("slcc",), df)
    by_level = s["metrics"]["slcc"]["by_level"]
    assert by_level["3"] == {"value": None, "data_value": None, "delta": None}
    assert by_level["1"]["value"] is not None and by_level["1"]["delta"] == 0.0
    json.dumps(s["metrics"], allow_nan=False)
