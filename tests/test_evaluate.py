"""p3d eval end to end on the demo datasets (VOCASET and MEAD layouts), and its bad-input paths."""
import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from p3d.cli import main
from p3d.errors import InputError
from p3d.evaluate import MIN_BACKGROUND_CLIPS, EvalConfig, evaluate, parse_name, resolve_metrics, write_report


def _voca_cfg(demo, **kw):
    base = dict(pred=demo.vocaset / "pred", gt=demo.vocaset, audio=demo.vocaset,
                templates=demo.vocaset / "templates.pkl", topology=str(demo.vocaset / "FLAME_masks.pkl"),
                fps=30, gt_fps=60, bootstrap_resamples=200)
    base.update(kw)
    return EvalConfig(**base)


def test_vocaset_layout_end_to_end(demo, tmp_path):
    report = evaluate(_voca_cfg(demo, plots=True), progress=False)
    df = report.per_clip
    # 4 GT clips x 2 conditions + 1 SelfTalk-style file; the orphan prediction is skipped
    assert len(df) == 9
    assert report.summary["counts"] == {"evaluated": 9, "n_predictions": 9, "n_clips": 4, "ground_truth_clips": 4,
                                        "truncated": 0, "length_mismatch_accepted": 0, "skipped": 1}
    assert "sentence40" in report.summary["skipped"][0]["pred"]
    selftalk = df[df["condition"].isna()]
    assert len(selftalk) == 1 and selftalk["gt"].iloc[0] == selftalk["pred"].iloc[0]
    # the demo predictions lag by 1 frame (first train subject) or 2 frames (second): MTM recovers the order
    lag1 = df[df["condition"] == "FaceTalk_170728_03272_TA"]["mtm_frames"].mean()
    lag2 = df[df["condition"] == "FaceTalk_170725_00137_TA"]["mtm_frames"].mean()
    assert 0 < lag1 < lag2
    assert np.allclose(df["mtm_ms"], df["mtm_frames"] * 1000 / 30, equal_nan=True)
    for _, row in df.iterrows():
        deltas = [int(x) for x in str(row["mtm_deltas"]).split(";") if x != "nan" and x]
        assert len(deltas) == row["mtm_matches"]
    m = report.summary["metrics"]
    assert m["lve"]["ci95"][0] <= m["lve"]["value"] <= m["lve"]["ci95"][1]
    assert set(m) == {"lve", "fdd", "mtm", "slcc"}
    assert m["slcc"]["delta"] == pytest.approx(abs(m["slcc"]["value"] - m["slcc"]["data_value"]))
    assert report.summary["provenance"]["p3d_version"]

    write_report(report, tmp_path / "out", plots=True, fps=30)
    back = pd.read_csv(tmp_path / "out" / "per_clip.csv")
    assert list(back.columns[:5]) == ["pred", "gt", "identity", "condition", "level"]
    assert {"lve", "fdd", "mtm_frames", "mtm_ms", "mtm_matches", "mtm_deltas"} <= set(back.columns)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["config"]["gt_stride"] == 2
    assert len(list((tmp_path / "out" / "plots").glob("mtm_*.png"))) == 9


def test_summary_values_are_the_summarys_not_per_clip_means():
    """The values a table of several evaluations shows (notebook 09): the summary's pooled ones, LVE weighted
    by frames as p3d eval and the official scripts pool it, not the plain mean of per_clip.csv."""
    from p3d.evaluate import summary_values

    per_clip = pd.DataFrame({"lve": [1.0, 4.0], "frames": [30, 90], "mtm_ms": [10.0, np.nan]})
    summary = {"metrics": {
        "lve": {"value": float(np.average(per_clip["lve"], weights=per_clip["frames"])), "ci95": [None, None]},
        "mtm": {"frames": 0.3, "ms": 10.0, "ci95_ms": [None, None]},
        "plrs_calibrated": {"computed": False, "value": None, "reason": "too few clips"},
        "slcc": {"value": 0.25, "data_value": 0.5, "delta": 0.25}}}
    got = summary_values(summary)
    assert got == {"lve": 3.25, "mtm_ms": 10.0, "plrs_calibrated": None, "slcc": 0.25}
    assert got["lve"] != per_clip["lve"].mean()


def test_gt_against_itself_gives_zero(demo, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    for f in sorted((demo.vocaset / "vertices_npy").glob("*.npy")):
        np.save(pred / f"{f.stem}_condition_X.npy", np.load(f)[::2])
    report = evaluate(_voca_cfg(demo, pred=pred, metrics=("lve", "mtm", "fdd")), progress=False)
    assert report.per_clip["lve"].abs().max() == 0
    assert report.per_clip["fdd"].abs().max() == 0
    assert report.per_clip["mtm_frames"].max() == 0
    # the Python API keeps every clip's MTM result (what plot_mtm draws), with or without --plots
    assert not report.summary["config"]["plots"]
    assert sorted(report.mtm_results) == sorted(report.per_clip["pred"].str.removesuffix(".npy"))


def test_vocaset_gt_scored_as_predictions_is_subsampled_from_its_first_frame(demo):
    """A vertices_npy folder given as --pred (60 fps, no --fps) is read as the official scripts read GT, [::2] from
    frame 0, the same frames as the GT side: against itself every frame-wise metric is exactly 0 (frames 1, 3, ...
    would put half a frame of motion between the two)."""
    gt_files = sorted((demo.vocaset / "vertices_npy").glob("*.npy"))
    cfg = EvalConfig(pred=demo.vocaset / "vertices_npy", gt=demo.vocaset, templates=demo.vocaset / "templates.pkl",
                     topology=str(demo.vocaset / "FLAME_masks.pkl"), metrics=("lve", "fdd", "mtm"),
                     bootstrap_resamples=50, diagnostics=False)
    report = evaluate(cfg, progress=False)
    df = report.per_clip
    assert len(df) == len(gt_files)
    assert sorted(df["pred_frames"]) == sorted(len(np.load(f)[::2]) for f in gt_files)
    assert (df["pred_frames"] == df["gt_frames"]).all()
    assert df["lve"].abs().max() == 0 and df["fdd"].abs().max() == 0 and df["mtm_frames"].max() == 0


def test_mead_levels(demo):
    cfg = EvalConfig(pred=demo.mead / "pred", gt=demo.mead, audio=demo.mead, fps=30, bootstrap_resamples=200,
                     metrics=("lve", "mtm", "slcc"))
    report = evaluate(cfg, progress=False)
    df = report.per_clip
    assert sorted(df["level"].unique()) == [1, 2, 3]
    assert set(df["identity"]) == {"M003", "W009"}
    by_level = report.summary["metrics"]["slcc"]["by_level"]
    assert {"1", "2", "3"} <= set(by_level)


def test_numpy_integer_seed_and_resamples_are_the_integers_they_are(demo):
    """seed=np.int64(1) and bootstrap_resamples=np.int64(100) were refused as non-integers; booleans stay refused."""
    def run(**kw):
        return evaluate(EvalConfig(pred=demo.mead / "pred", gt=demo.mead, audio=demo.mead, fps=30,
                                   metrics=("lve", "slcc"), **kw), progress=False).summary

    plain = run(seed=1, bootstrap_resamples=100)
    wide = run(seed=np.int64(1), bootstrap_resamples=np.int64(100))
    assert wide["metrics"]["slcc"]["ci95"] == plain["metrics"]["slcc"]["ci95"]
    assert wide["config"]["seed"] == 1 and type(wide["config"]["seed"]) is int  # summary.json is plain JSON
    assert json.loads(json.dumps(wide))["config"]["bootstrap_resamples"] == 100
    for kw, match in (({"seed": True}, "--seed"), ({"bootstrap_resamples": np.bool_(True)}, "--bootstrap"),
                      ({"bootstrap_resamples": np.float64(100.0)}, "--bootstrap")):
        with pytest.raises(InputError, match=match):
            run(**kw)


def test_default_metrics_follow_inputs(demo):
    assert resolve_metrics(EvalConfig(pred=demo.vocaset, gt=demo.vocaset)) == ("lve", "mtm")
    with pytest.raises(InputError, match="templates"):
        resolve_metrics(EvalConfig(pred=demo.vocaset, gt=demo.vocaset, metrics=("fdd",)))
    with pytest.raises(InputError, match="audio"):
        resolve_metrics(EvalConfig(pred=demo.vocaset, gt=demo.vocaset, metrics=("slcc",)))
    with pytest.raises(InputError, match="unknown metric"):
        resolve_metrics(EvalConfig(pred=demo.vocaset, gt=demo.vocaset, metrics=("bleu",)))


def test_bad_fps_ratio(demo):
    with pytest.raises(InputError, match="integer multiple"):
        evaluate(_voca_cfg(demo, gt_fps=45), progress=False)


def _copy_preds(demo, tmp_path, n=2):
    pred = tmp_path / "pred"
    pred.mkdir()
    for f in sorted((demo.vocaset / "pred").glob("*condition*"))[:n]:
        shutil.copy(f, pred / f.name)
    return pred


def test_cli_end_to_end(demo, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["eval", "--pred", str(demo.vocaset / "pred"), "--gt", str(demo.vocaset), "--audio",
                 str(demo.vocaset / "wav"), "--templates", str(demo.vocaset / "templates.pkl"), "--topology",
                 str(demo.vocaset / "FLAME_masks.pkl"), "--gt-fps", "60", "--out", str(out), "--bootstrap", "100",
                 "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0
    assert "MTM" in text and "LVE" in text and "SLCC" in text and "skipped" in text
    assert (out / "per_clip.csv").exists() and (out / "summary.json").exists()



def test_eval_cli_defaults_are_the_ones_its_help_states():
    """``p3d eval``'s help states its defaults (--dataset auto, --topology flame, --lve-variant max_sq, --lip-aggregate
    rms, diagnostics on, no plots, --out results/eval); but for --out they are :class:`EvalConfig`'s (the Python API's)."""
    from p3d.cli import build_parser

    args = build_parser().parse_args(["eval", "--pred", "x"])
    defaults = EvalConfig(pred=Path("x"))
    assert (args.dataset, args.topology, args.lve_variant, args.lip_aggregate) == ("auto", "flame", "max_sq", "rms")
    assert (args.dataset, args.topology, args.lve_variant, args.lip_aggregate) == (
        defaults.dataset, defaults.topology, defaults.lve_variant, defaults.lip_aggregate)
    assert not args.no_diagnostics and defaults.diagnostics and not args.plots and not defaults.plots
    assert args.out == Path("results/eval")
    assert (args.fps, args.gt_fps, args.metrics, args.intensity_weight, args.speech_cache) == (None,) * 5


def test_eval_cli_passes_each_option_on_and_names_what_it_wrote(demo, tmp_path, capsys):
    """Every option given reaches the evaluation (summary.json's config echoes it), --no-diagnostics leaves the
    diagnostics columns out of per_clip.csv, --plots writes the MTM matching plots, and the last line names the two
    files written."""
    out = tmp_path / "o"
    code = main(["eval", "--pred", str(_copy_preds(demo, tmp_path)), "--gt", str(demo.vocaset), "--templates",
                 str(demo.vocaset / "templates.pkl"), "--topology", str(demo.vocaset / "FLAME_masks.pkl"),
                 "--dataset", "vocaset", "--fps", "30", "--gt-fps", "60", "--metrics", "lve,mtm", "--lve-variant",
                 "meshtalk", "--lip-aggregate", "mean", "--seed", "7", "--bootstrap", "150", "--no-diagnostics",
                 "--plots", "--speech-cache", str(tmp_path / "cache"), "--out", str(out), "--no-progress"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"wrote {out / 'per_clip.csv'} and {out / 'summary.json'}"
    config = json.loads((out / "summary.json").read_text())["config"]
    assert {k: config[k] for k in ("dataset", "fps", "gt_fps", "metrics", "lve_variant", "lip_aggregate", "seed",
                                   "bootstrap_resamples", "templates", "speech_cache")} == {
        "dataset": "vocaset", "fps": 30, "gt_fps": 60, "metrics": ["lve", "mtm"], "lve_variant": "meshtalk",
        "lip_aggregate": "mean", "seed": 7, "bootstrap_resamples": 150,
        "templates": str(demo.vocaset / "templates.pkl"), "speech_cache": str(tmp_path / "cache")}
    assert "lip_jerk" not in pd.read_csv(out / "per_clip.csv").columns
    assert len(list((out / "plots").glob("mtm_*.png"))) == 2        # --plots: one MTM matching plot per prediction


@pytest.mark.parametrize("damage, match", [
    ("wrong_vertices", "vertices per frame"),
    ("nan", "NaN"),
    ("corrupt", "readable"),
])
def test_cli_bad_prediction_exit_2(demo, tmp_path, capsys, damage, match):
    pred = _copy_preds(demo, tmp_path)
    victim = sorted(pred.glob("*.npy"))[0]
    if damage == "wrong_vertices":
        np.save(victim, np.zeros((10, 300), np.float32))
    elif damage == "nan":
        a = np.load(victim)
        a[3, 5] = np.nan
        np.save(victim, a)
    else:
        victim.write_bytes(b"not an npy file")
    code = main(["eval", "--pred", str(pred), "--gt", str(demo.vocaset), "--gt-fps", "60", "--out",
                 str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert victim.name in err and match in err
    assert "Traceback" not in err


def test_cli_missing_audio_and_empty_folder(demo, tmp_path, capsys):
    pred = _copy_preds(demo, tmp_path)
    empty_audio = tmp_path / "wav"
    empty_audio.mkdir()
    code = main(["eval", "--pred", str(pred), "--gt", str(demo.vocaset), "--gt-fps", "60", "--audio",
                 str(empty_audio), "--metrics", "slcc", "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2 and "audio for clip" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["eval", "--pred", str(empty), "--gt", str(demo.vocaset), "--out", str(tmp_path / "o")])
    assert code == 2 and "no .npy" in capsys.readouterr().err


def test_cli_nothing_evaluable_exit_2(demo, tmp_path, capsys):
    pred = tmp_path / "pred"
    pred.mkdir()
    np.save(pred / "Nobody_sentence01_condition_X.npy", np.zeros((5, 15069), np.float32))
    code = main(["eval", "--pred", str(pred), "--gt", str(demo.vocaset), "--out", str(tmp_path / "o")])
    assert code == 2 and "nothing could be evaluated" in capsys.readouterr().err


# -- frame rates and lengths ------------------------------------------------------------------------
def _eval_cli(args, capsys):
    code = main(["eval", "--no-progress", "--bootstrap", "100", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_vocaset_root_defaults_to_60_fps_gt(demo, tmp_path):
    """The README demo without --gt-fps gives the same numbers as with --gt-fps 60 (it gave 4x MTM)."""
    implicit = evaluate(EvalConfig(pred=demo.vocaset / "pred", gt=demo.vocaset, metrics=("lve", "mtm"),
                                   bootstrap_resamples=100), progress=False)
    explicit = evaluate(EvalConfig(pred=demo.vocaset / "pred", gt=demo.vocaset, metrics=("lve", "mtm"), fps=30,
                                   gt_fps=60, bootstrap_resamples=100), progress=False)
    assert implicit.summary["config"]["gt_fps"] == 60 and implicit.summary["config"]["gt_stride"] == 2
    assert implicit.summary["config"]["gt_fps_source"].startswith("VOCASET")
    pd.testing.assert_series_equal(implicit.per_clip["mtm_frames"], explicit.per_clip["mtm_frames"])
    assert implicit.summary["metrics"]["mtm"]["ms"] < 60  # 45 ms, not the 183 ms of 60 fps GT read as 30 fps
    # a plain folder of the same files is not known to be VOCASET, unless --dataset vocaset says so
    plain = evaluate(EvalConfig(pred=demo.vocaset / "pred", gt=demo.vocaset / "vertices_npy", dataset="vocaset",
                                metrics=("lve",), bootstrap_resamples=100), progress=False)
    assert plain.summary["config"]["gt_stride"] == 2


def test_wrong_gt_rate_is_refused_before_any_metric(demo, tmp_path, capsys, monkeypatch):
    import p3d.metrics

    def no_work(*a, **k):
        raise AssertionError("a metric ran before the length check")

    monkeypatch.setattr(p3d.metrics, "lve", no_work)
    monkeypatch.setattr(p3d.metrics, "mtm", no_work)
    plain = tmp_path / "gt"  # a folder not named vertices_npy: the GT rate defaults to --fps
    shutil.copytree(demo.vocaset / "vertices_npy", plain)
    for args in (["--gt", demo.vocaset, "--gt-fps", "30"],  # 60 fps GT declared 30 fps
                 ["--gt", plain]):
        code, out, err = _eval_cli(["--pred", demo.vocaset / "pred", *args, "--out", tmp_path / "o"], capsys)
        assert code == 2, err
        assert "60 frames" in err and "120 frames" in err and "--gt-fps" in err and "_condition_" in err
        assert "factor of about 2" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("bad", ["x", True, np.True_, None, [0.5]])
def test_intensity_weight_must_be_a_number(bad, tmp_path):
    """EvalConfig(intensity_weight="x") was a ValueError traceback from float(), and True a weight of 1 (the CLI
    parses a float; the Python API takes whatever it is given)."""
    from p3d.evaluate.config import check_enrolled

    cfg = EvalConfig(pred=tmp_path, gt=tmp_path, templates=tmp_path / "t.pkl", intensity_weight=bad)
    if bad is None:
        check_enrolled(cfg, ("plrs_calibrated",))  # None: PLRS-e not asked for
        return
    with pytest.raises(InputError, match=r"--intensity-weight: expected a number in \[0, 1\]"):
        check_enrolled(cfg, ("plrs_calibrated",))
    check_enrolled(dataclasses.replace(cfg, intensity_weight=np.float32(0.5)), ("plrs_calibrated",))


@pytest.mark.parametrize("bad", ["1e308", "inf", "nan", "1.5", "-0.1"])
def test_intensity_weight_out_of_range_is_refused_before_any_work(bad, tmp_path, capsys):
    """``p3d eval --intensity-weight 1e308`` overflowed PLRS-c - mu |a / a_s - 1| to -inf: PLRS-e came out null in
    summary.json with only a numpy RuntimeWarning, after the whole evaluation. The weight must lie in [0, 1]
    (:data:`p3d.metrics.plrs.MAX_INTENSITY_WEIGHT`): one line, exit 2, nothing written; also from the Python API."""
    from p3d.evaluate.config import check_enrolled

    code, _, err = _eval_cli(["--pred", tmp_path, "--gt", tmp_path, "--templates", tmp_path / "t.pkl",
                              f"--intensity-weight={bad}", "--out", tmp_path / "o"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--intensity-weight: expected a number in [0, 1]" in err and not (tmp_path / "o").exists()
    cfg = EvalConfig(pred=tmp_path, gt=tmp_path, templates=tmp_path / "t.pkl", intensity_weight=float(bad))
    with pytest.raises(InputError, match=r"--intensity-weight: expected a number in \[0, 1\]"):
        check_enrolled(cfg, ("plrs_calibrated",))
    check_enrolled(dataclasses.replace(cfg, intensity_weight=1.0), ("plrs_calibrated",))  # the bound is valid


def test_length_mismatch_rule():
    from p3d.evaluate import length_mismatch

    assert length_mismatch(120, 120) is None
    assert length_mismatch(100, 97) is None  # within 10 %: truncated
    assert length_mismatch(10, 12) is None  # within 2 frames
    assert "factor of about 2" in length_mismatch(60, 120)
    assert "factor of about 2" in length_mismatch(121, 60)
    assert "factor of about 3" in length_mismatch(30, 91)
    assert "factor of about 2" in length_mismatch(2, 4)  # within 2 frames, but a rate error
    assert "differ by 15 frames" in length_mismatch(100, 85)


def _pred_subset(demo, tmp_path, n=2):
    pred = tmp_path / "pred"
    pred.mkdir()
    files = sorted((demo.vocaset / "pred").glob("*_condition_*"))[:n]
    for f in files:
        shutil.copy(f, pred / f.name)
    return pred, [pred / f.name for f in files]


def test_small_length_difference_truncated_and_counted(demo, tmp_path):
    pred, files = _pred_subset(demo, tmp_path)
    np.save(files[0], np.load(files[0])[:-3])  # 57 of 60 frames: within max(2 frames, 10 %)
    report = evaluate(_voca_cfg(demo, pred=pred, metrics=("lve", "mtm")), progress=False)
    assert report.summary["counts"]["truncated"] == 1
    row = report.per_clip.set_index("pred").loc[files[0].name]
    assert (row["pred_frames"], row["gt_frames"], row["frames"], bool(row["truncated"])) == (57, 60, 57, True)
    assert not report.per_clip.set_index("pred").loc[files[1].name, "truncated"]


def test_large_length_difference_refused_unless_both_rates_given(demo, tmp_path, capsys):
    pred, files = _pred_subset(demo, tmp_path)
    np.save(files[1], np.load(files[1])[:45])  # 45 of 60 frames
    base = ["--pred", pred, "--gt", demo.vocaset, "--metrics", "lve,mtm"]
    code, _, err = _eval_cli([*base, "--gt-fps", "60", "--out", tmp_path / "o"], capsys)
    assert code == 2 and files[1].name in err and "45 frames" in err and "60 after" in err and "--gt-fps" in err
    code, _, err = _eval_cli([*base, "--out", tmp_path / "o"], capsys)  # implicit 60 fps: same refusal
    assert code == 2 and "differ by 15 frames" in err
    code, out, err = _eval_cli([*base, "--fps", "30", "--gt-fps", "60", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["counts"]["truncated"] == 1 and summary["config"]["rates_explicit"]
    assert summary["counts"]["length_mismatch_accepted"] == 1 and "both --fps and --gt-fps" in out
    per_clip = pd.read_csv(tmp_path / "o" / "per_clip.csv").set_index("pred")
    assert per_clip.loc[files[1].name, "frames"] == 45 and "truncated" in per_clip.loc[files[1].name, "note"]


def _wav_copy(demo, tmp_path):
    wav = tmp_path / "wav"
    shutil.copytree(demo.vocaset / "wav", wav)
    return wav


def test_audio_duration_mismatch_refused(demo, tmp_path, capsys):
    import soundfile as sf

    pred, files = _pred_subset(demo, tmp_path)
    wav = _wav_copy(demo, tmp_path)
    stem = files[0].name.split("_condition_")[0]
    samples, sr = sf.read(wav / f"{stem}.wav")
    sf.write(wav / f"{stem}.wav", np.concatenate([samples, samples]), sr)  # 4 s of audio for 2 s of GT
    code, _, err = _eval_cli(["--pred", pred, "--gt", demo.vocaset, "--audio", wav, "--metrics", "slcc",
                              "--out", tmp_path / "o"], capsys)
    assert code == 2 and f"{stem}.wav" in err and "120 frames" in err and "--gt-fps" in err


def _silence(wav_dir, k=1):
    """Zero the first ``k`` wavs of ``wav_dir``; their stems."""
    import soundfile as sf

    stems = []
    for silent in sorted(wav_dir.glob("*.wav"))[:k]:
        samples, sr = sf.read(silent)
        sf.write(silent, np.zeros_like(samples), sr)
        stems.append(silent.stem)
    return stems


def test_silent_audio_is_left_out_of_the_audio_metrics_only(demo, tmp_path):
    """A silent wav leaves its clip's predictions out of SLCC (undefined for them: NaN, with the reason in the
    summary), not out of LVE, FDD, MTM and the diagnostics: those were measured over 3 clips instead of 4 when SLCC
    was asked for (LVE 2.62e-6 instead of 2.26e-6 on the demo), so a number depended on the other metrics asked."""
    wav = _wav_copy(demo, tmp_path)
    (stem,) = _silence(wav)
    gt_only = evaluate(_voca_cfg(demo, audio=wav, metrics=("lve", "fdd", "mtm")), progress=False)
    report = evaluate(_voca_cfg(demo, audio=wav, metrics=("lve", "fdd", "mtm", "slcc")), progress=False)
    m, m0 = report.summary["metrics"], gt_only.summary["metrics"]
    for key in ("lve", "fdd", "mtm"):
        assert (m[key]["n_clips"], m[key]["n_predictions"]) == (4, 9), key
        assert m[key]["ci95"] == m0[key]["ci95"] and m[key].get("value") == m0[key].get("value"), key
    assert report.summary["diagnostics"] == gt_only.summary["diagnostics"]
    assert report.summary["counts"]["n_clips"] == 4
    assert not [s for s in report.summary["skipped"] if s["pred"].startswith(stem)]
    assert [(c["wav"], c["n_predictions"]) for c in report.summary["silent_audio"]] == [(f"{stem}.wav", 2)]
    assert "silent" in m["slcc"]["notes"][0] and f"{stem}.wav" in m["slcc"]["notes"][0]
    # SLCC over the other clips only, as before; NaN (not 0) in per_clip.csv for the silent clip's rows
    pc = report.per_clip
    kept = pc[pc["gt"] != f"{stem}.npy"]
    assert m["slcc"]["n_rows"] == len(kept) == 7
    write_report(report, tmp_path / "out")
    back = pd.read_csv(tmp_path / "out" / "per_clip.csv")
    silent_rows = back["gt"] == f"{stem}.npy"
    assert silent_rows.sum() == 2 and back.loc[silent_rows, "speech_intensity"].isna().all()
    assert back.loc[~silent_rows, "speech_intensity"].gt(0).all() and back["lve"].notna().all()
    # nothing of what was asked can be scored: refused, as before
    _silence(wav, k=len(list(wav.glob("*.wav"))))
    with pytest.raises(InputError, match="silent"):
        evaluate(_voca_cfg(demo, audio=wav, metrics=("slcc",)), progress=False)


# -- confidence intervals over GT clips --------------------------------------------------------------
def test_ci_resamples_gt_clips_not_predictions(demo, tmp_path):
    """Eight identical conditions of every clip give exactly the CI of one condition."""
    one, eight = tmp_path / "one", tmp_path / "eight"
    one.mkdir()
    eight.mkdir()
    for f in sorted((demo.vocaset / "pred").glob("*_condition_FaceTalk_170728_03272_TA.npy")):
        if "sentence40" in f.name:
            continue
        stem = f.name.split("_condition_")[0]
        shutil.copy(f, one / f.name)
        for k in range(8):
            os.link(one / f.name, eight / f"{stem}_condition_C{k}.npy")
    reports = [evaluate(_voca_cfg(demo, pred=p, metrics=("lve", "mtm")), progress=False) for p in (one, eight)]
    m1, m8 = (r.summary["metrics"] for r in reports)
    for key in ("lve", "mtm"):
        assert m1[key]["ci95"] == m8[key]["ci95"] and m1[key]["ci95"][0] is not None
        assert (m1[key]["n_clips"], m8[key]["n_clips"]) == (4, 4)
        assert (m1[key]["n_predictions"], m8[key]["n_predictions"]) == (4, 32)
    assert m8["mtm"]["ci95"] == m8["mtm"]["ci95_ms"]
    assert m8["mtm"]["ci95_ms"][0] == pytest.approx(m8["mtm"]["ci95_frames"][0] * 1000 / 30)
    assert reports[1].summary["counts"]["n_predictions"] == 32 and reports[1].summary["counts"]["n_clips"] == 4


def test_n_clips_and_n_predictions_reported(demo, capsys):
    from p3d.evaluate import format_summary

    report = evaluate(_voca_cfg(demo), progress=False)
    m = report.summary["metrics"]
    for key in ("lve", "fdd", "mtm", "slcc"):
        assert (m[key]["n_clips"], m[key]["n_predictions"]) == (4, 9), key
    text = format_summary(report.summary)
    assert "n_clips=4" in text and "n_predictions=9" in text


def test_slcc_without_ci_prints_na_without_warning(demo, caplog):
    from p3d.evaluate import format_summary

    summary = evaluate(_voca_cfg(demo, metrics=("slcc",)), progress=False).summary
    summary["metrics"]["slcc"]["ci95"] = [None, None]
    assert "CI n/a (too few clips)" in format_summary(summary)
    with caplog.at_level("WARNING", logger="p3d.evaluate"):
        evaluate(_voca_cfg(demo, metrics=("slcc",)), progress=False)
    assert not [r for r in caplog.records if r.name == "p3d.evaluate"]


# -- memory: one GT clip at a time ------------------------------------------------------------------
def test_each_gt_clip_loaded_once_and_released(demo, monkeypatch):
    import weakref

    from p3d import io

    loads, alive = [], []
    real = io.load_vertices

    def tracking(path, *a, **k):
        arr = real(path, *a, **k)
        if "vertices_npy" in str(path):
            loads.append(Path(path).name)
            gt_alive = sum(ref() is not None for ref in alive)
            assert gt_alive == 0, "the previous GT clip is still in memory"
            base = arr.base if arr.base is not None else arr
            while getattr(base, "base", None) is not None:
                base = base.base
            alive.append(weakref.ref(base))
        return arr

    monkeypatch.setattr(io, "load_vertices", tracking)
    evaluate(_voca_cfg(demo, metrics=("lve", "mtm", "slcc")), progress=False)
    assert sorted(loads) == sorted(set(loads)) and len(loads) == 4


# -- output folder ---------------------------------------------------------------------------------
def test_out_validated_before_any_work(demo, tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    missing_pred = tmp_path / "no_such_pred"  # would be the error if --out were checked later
    for out, match in ((a_file, "not a folder"), (a_file / "sub", "is a file")):
        code, _, err = _eval_cli(["--pred", missing_pred, "--gt", demo.vocaset, "--out", out], capsys)
        assert code == 2 and "--out" in err and match in err, err
    import p3d.evaluate.report  # check_out_dir

    monkeypatch.setattr(p3d.evaluate.report.os, "access", lambda path, mode: False)
    code, _, err = _eval_cli(["--pred", missing_pred, "--gt", demo.vocaset, "--out", tmp_path / "new"], capsys)
    assert code == 2 and "not writable" in err
    monkeypatch.undo()
    # a missing parent is created
    pred, _ = _pred_subset(demo, tmp_path)
    code, _, err = _eval_cli(["--pred", pred, "--gt", demo.vocaset, "--metrics", "lve", "--out",
                              tmp_path / "x" / "y" / "out"], capsys)
    assert code == 0 and (tmp_path / "x" / "y" / "out" / "summary.json").exists()


def test_outputs_written_as_one_unit(demo, tmp_path, monkeypatch):
    import hashlib

    import p3d.viz.mtm_plot

    out = tmp_path / "out"
    full = evaluate(_voca_cfg(demo, plots=True, metrics=("lve", "mtm")), progress=False)
    write_report(full, out, plots=True)
    (out / "my_notes.txt").write_text("keep me")
    assert len(list((out / "plots").glob("mtm_*.png"))) == 9
    # a dead run's staging folder is removed by the next run
    dead = tmp_path / ".out.tmp-999999999"
    dead.mkdir()
    (dead / "per_clip.csv").write_text("stale")

    pred, _ = _pred_subset(demo, tmp_path)
    small = evaluate(_voca_cfg(demo, pred=pred, plots=True, metrics=("lve", "mtm")), progress=False)
    write_report(small, out, plots=True)
    plots = sorted(p.name for p in (out / "plots").glob("mtm_*.png"))
    assert plots == sorted(f"mtm_{p.stem}.png" for p in pred.glob("*.npy"))  # stale plots removed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outputs"]["per_clip_sha256"] == hashlib.sha256((out / "per_clip.csv").read_bytes()).hexdigest()
    assert len(pd.read_csv(out / "per_clip.csv")) == summary["counts"]["n_predictions"] == 2
    assert summary["outputs"]["plots"] == len(plots) == 2
    assert (out / "my_notes.txt").read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]

    # a run that fails while writing leaves the previous outputs untouched and no staging folder
    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(p3d.viz.mtm_plot, "save_mtm_plot", boom)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(RuntimeError):
        write_report(full, out, plots=True)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]


@pytest.mark.parametrize("taken, make", [
    ("plots", "file"), ("per_clip.csv", "folder"), ("summary.json", "folder"), ("plots/mtm_PLOT.png", "folder")])
def test_an_output_name_taken_by_the_wrong_kind_is_refused_before_anything_is_replaced(demo, tmp_path, capsys,
                                                                                       taken, make):
    """A file named plots (with --plots), or a folder named per_clip.csv, summary.json or like a plot, was a
    traceback after the earlier run's summary.json had been withdrawn (and per_clip.csv replaced): refused with one
    line and exit 2 before any work, and by write_report before it replaces anything."""
    out = tmp_path / "out"
    pred, _ = _pred_subset(demo, tmp_path)
    report = evaluate(_voca_cfg(demo, pred=pred, plots=True, metrics=("lve", "mtm")), progress=False)
    write_report(report, out, plots=True)
    taken = taken.replace("PLOT", sorted(report.mtm_results)[0])
    path = out / taken
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    path.write_text("x") if make == "file" else path.mkdir()
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # before any work: a missing --pred would be the error otherwise
    code, _, err = _eval_cli(["--pred", tmp_path / "no_such_pred", "--gt", demo.vocaset, "--plots", "--out", out], capsys)
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1, err
    # the folder changed during the run: write_report refuses before replacing anything
    with pytest.raises(InputError, match="move or rename it"):
        write_report(report, out, plots=True)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]


def test_a_file_named_plots_is_refused_only_where_plots_will_be_written(demo, tmp_path, capsys):
    """--plots draws MTM's matching plots; with MTM not among --metrics nothing is drawn, yet a file named plots in
    the output folder was refused (exit 2). Refused only with MTM computed; the file is left alone otherwise."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "plots").write_text("mine")
    pred, _ = _pred_subset(demo, tmp_path)
    base = ["--pred", pred, "--gt", demo.vocaset, "--plots", "--out", out]
    code, _, err = _eval_cli([*base, "--metrics", "lve"], capsys)
    assert code == 0, err
    assert (out / "plots").read_text() == "mine" and (out / "summary.json").is_file()
    assert json.loads((out / "summary.json").read_text())["outputs"]["plots"] == 0
    code, _, err = _eval_cli([*base, "--metrics", "lve,mtm"], capsys)
    assert code == 2 and "plots is a file where --plots writes the MTM plots folder" in err, err


# -- MEAD demo without FLAME masks; PLRS errors --------------------------------------------------------
def test_fdd_summary_is_the_mean_signed_value_and_the_mean_absolute_value(demo):
    # CodeTalker's dataset FDD: the plain mean of the signed per-clip values; FaceDiffuser's ABS FDD: the mean of
    # the per-clip |FDD| (not |mean|). The demo's predictions have FDDs of both signs, so the two differ.
    report = evaluate(_voca_cfg(demo, metrics=("fdd",)), progress=False)
    per_clip = report.per_clip["fdd"].to_numpy(dtype=np.float64)
    assert (per_clip > 0).any() and (per_clip < 0).any()
    fdd = report.summary["metrics"]["fdd"]
    assert fdd["value"] == pytest.approx(per_clip.mean(), rel=1e-9)
    assert fdd["absolute"] == pytest.approx(np.abs(per_clip).mean(), rel=1e-9)
    assert fdd["absolute"] != pytest.approx(abs(per_clip.mean()), rel=1e-3)


def test_mead_demo_without_masks_reports_fdd_not_computed(demo, tmp_path, capsys):
    base = ["--pred", demo.mead / "pred", "--gt", demo.mead, "--audio", demo.mead / "wav", "--templates",
            demo.mead / "templates.pkl", "--out", tmp_path / "o"]
    code, out, err = _eval_cli(base, capsys)
    assert code == 0, err
    fdd = json.loads((tmp_path / "o" / "summary.json").read_text())["metrics"]["fdd"]
    assert fdd["computed"] is False and "upper-face" in fdd["reason"]
    assert "FDD   not computed" in out
    code, _, err = _eval_cli([*base, "--metrics", "fdd"], capsys)
    assert code == 2 and "FDD cannot be computed" in err and "FLAME_masks.pkl" in err


def test_plrs_errors_name_the_prediction(tmp_path):
    import torch

    from p3d.evaluate import _plrs

    class Broken(torch.nn.Module):
        n_vertices = 5023

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def encode_speech(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

        def encode_mesh(self, x):
            return x

    verts = np.zeros((20, 5023, 3), np.float32)
    path = tmp_path / "clip_condition_X.npy"
    with pytest.raises(InputError, match="clip_condition_X.npy: PLRS failed .*RuntimeError"):
        _plrs(np.zeros((16, 20, 128), np.float32), verts, Broken(), path)
    with pytest.raises(InputError, match="clip_condition_X.npy: PLRS failed"):
        _plrs(np.zeros((16, 128), np.float32), verts, Broken(), path)


def test_plrs_end_to_end_with_a_small_critic(demo, tmp_path, one_torch_thread):
    import torch

    from p3d.models.syncnet3d import SyncNet3D, SyncNet3DConfig

    torch.manual_seed(0)
    SyncNet3D(SyncNet3DConfig.from_preset("smoke", n_vertices=5023)).save(tmp_path / "critic.pt")
    cfg = EvalConfig(pred=demo.mead / "pred", gt=demo.mead, audio=demo.mead, metrics=("plrs",),
                     plrs_checkpoint=tmp_path / "critic.pt", bootstrap_resamples=100)
    report = evaluate(cfg, progress=False)
    plrs = report.summary["metrics"]["plrs"]
    assert report.per_clip["plrs"].between(-1, 1).all() and -1 <= plrs["value"] <= 1
    assert (plrs["n_clips"], plrs["n_predictions"]) == (18, 18) and plrs["ci95"][0] is not None


def test_silent_audio_leaves_its_clips_out_of_plrs_only(demo, tmp_path, one_torch_thread):
    """PLRS, PLRS-c and PLRS-e of a clip with a silent wav are NaN (the reason in each metric's notes), the clip is
    not in PLRS-c's background nor PLRS-e's enrolment, and LVE is the same as without the PLRS metrics."""
    import torch

    from p3d.models.syncnet3d import SyncNet3D, SyncNet3DConfig

    torch.manual_seed(0)
    SyncNet3D(SyncNet3DConfig.from_preset("smoke", n_vertices=5023)).save(tmp_path / "critic.pt")
    wav = tmp_path / "wav"
    shutil.copytree(demo.mead / "wav", wav)
    (stem,) = _silence(wav)
    base = dict(pred=demo.mead / "pred", gt=demo.mead, audio=wav, templates=demo.mead / "templates.pkl",
                bootstrap_resamples=100)
    lve_only = evaluate(EvalConfig(**base, metrics=("lve",)), progress=False).summary["metrics"]["lve"]
    report = evaluate(EvalConfig(**base, metrics=("lve", "plrs", "plrs_calibrated"), intensity_weight=0.5,
                                 plrs_checkpoint=tmp_path / "critic.pt"), progress=False)
    m = report.summary["metrics"]
    assert m["lve"] == lve_only and m["lve"]["n_clips"] == 18
    silent_rows = report.per_clip["gt"] == f"{stem}.npy"
    assert silent_rows.sum() == 1
    for key in ("plrs", "plrs_calibrated", "plrs_enrolled"):
        assert report.per_clip.loc[silent_rows, key].isna().all(), key
        assert report.per_clip.loc[~silent_rows, key].notna().all(), key
        assert m[key]["n_clips"] == 17 and "silent" in m[key]["notes"][0], key
    assert m["plrs_calibrated"]["background_clips"] == 17


def test_speech_cache_encodes_each_clips_speech_once_across_evaluations(demo, tmp_path, one_torch_thread,
                                                                        monkeypatch):
    """PLRS and PLRS-c read each GT clip's speech embeddings from one encoding (the background bank's), and with
    ``speech_cache`` a second evaluation of the same audio encodes no speech at all, with the same scores."""
    import torch

    from p3d.models.syncnet3d import SyncNet3D, SyncNet3DConfig

    torch.manual_seed(0)
    SyncNet3D(SyncNet3DConfig.from_preset("smoke", n_vertices=5023)).save(tmp_path / "critic.pt")
    calls = []
    real = SyncNet3D.encode_speech
    monkeypatch.setattr(SyncNet3D, "encode_speech", lambda self, x: calls.append(len(x)) or real(self, x))
    cfg = EvalConfig(pred=demo.mead / "pred", gt=demo.mead, audio=demo.mead, metrics=("plrs", "plrs_calibrated"),
                     plrs_checkpoint=tmp_path / "critic.pt", bootstrap_resamples=50, diagnostics=False)
    plain = evaluate(cfg, progress=False).per_clip.set_index("pred")
    n_clips = plain["gt"].nunique()
    assert len(calls) == n_clips  # one encoding per GT clip (it was two: background, then PLRS)
    cache = tmp_path / "speech_cache"
    cached_cfg = dataclasses.replace(cfg, speech_cache=cache)
    calls.clear()
    first = evaluate(cached_cfg, progress=False).per_clip.set_index("pred")
    assert len(calls) == n_clips and len(list(cache.glob("*.npy"))) == n_clips
    calls.clear()
    second = evaluate(cached_cfg, progress=False).per_clip.set_index("pred")
    assert calls == []  # every bank read from the cache
    for got in (first, second):
        for col in ("plrs", "plrs_calibrated"):
            np.testing.assert_allclose(got.loc[plain.index, col], plain[col], rtol=0, atol=1e-6)
    # a damaged file is recomputed and replaced, not trusted
    victim = sorted(cache.glob("*.npy"))[0]
    victim.write_bytes(b"not an array")
    third = evaluate(cached_cfg, progress=False).per_clip.set_index("pred")
    assert len(calls) == 1 and np.load(victim, allow_pickle=False).ndim == 2
    np.testing.assert_allclose(third.loc[plain.index, "plrs"], plain["plrs"], rtol=0, atol=1e-6)
    # another evaluator never reads these files
    torch.manual_seed(1)
    SyncNet3D(SyncNet3DConfig.from_preset("smoke", n_vertices=5023)).save(tmp_path / "other.pt")
    calls.clear()
    evaluate(dataclasses.replace(cached_cfg, plrs_checkpoint=tmp_path / "other.pt"), progress=False)
    assert len(calls) == n_clips and len(list(cache.glob("*.npy"))) == 2 * n_clips
    # nor another version of the speech front-end (its windows differ)
    monkeypatch.setattr("p3d.audio.FEATURE_VERSION", 999)
    calls.clear()
    evaluate(cached_cfg, progress=False)
    assert len(calls) == n_clips and len(list(cache.glob("*.npy"))) == 3 * n_clips
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="speech-cache .* not a folder"):
        evaluate(dataclasses.replace(cfg, speech_cache=tmp_path / "file"), progress=False)


def test_a_speech_cache_under_a_file_is_refused_before_any_work(demo, tmp_path, monkeypatch):
    """``--speech-cache FILE/x`` passed the check (it does not exist) and ended in a NotADirectoryError traceback
    (exit 1) at the first cache write, after the scoring pass had started."""
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr("p3d.topology.load_topology", lambda *a: pytest.fail("work began before the check"))
    cfg = EvalConfig(pred=demo.mead / "pred", gt=demo.mead, audio=demo.mead, out=tmp_path / "out",
                     speech_cache=tmp_path / "file" / "cache")
    with pytest.raises(InputError, match=r"--speech-cache .*file.* is a file, so the output folder cannot be created"):
        evaluate(cfg, progress=False)


# -- BIWI naming, 25 fps default, diagnostics -------------------------------------------------------

def _biwi_layout(tmp_path, frames=50, pred_frames=50):
    import pickle

    from p3d.topology import Topology

    rng = np.random.default_rng(1)
    n = 40
    Topology(name="tiny_biwi", n_vertices=n,
             regions={"lips": np.arange(10), "upper_face": np.arange(20, 40)}).save_npz(tmp_path / "topo.npz")
    for sub in ("gt", "pred"):
        (tmp_path / sub).mkdir()
    templates = {}
    for subj in ("F2", "M5"):
        templates[subj] = rng.standard_normal((n, 3)).astype(np.float32)
        t = np.arange(frames) / 25.0
        motion = 0.01 * np.sin(2 * np.pi * 3 * t)[:, None, None] * rng.standard_normal((1, n, 3))
        gt = templates[subj][None] + motion
        np.save(tmp_path / "gt" / f"{subj}_e37.npy", gt.reshape(frames, -1).astype(np.float32))
        for cond, damp in (("M3", 0.5), ("F3", 1.0)):
            pred = templates[subj][None] + damp * motion[:pred_frames]
            np.save(tmp_path / "pred" / f"{subj}_e37_condition_{cond}.npy", pred.astype(np.float32))
    with open(tmp_path / "templates.pkl", "wb") as fh:
        pickle.dump(templates, fh)
    return EvalConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", templates=tmp_path / "templates.pkl",
                      dataset="biwi", topology=str(tmp_path / "topo.npz"), bootstrap_resamples=100)


def test_biwi_names_25_fps_and_diagnostics(tmp_path):
    report = evaluate(_biwi_layout(tmp_path), progress=False)
    df, s = report.per_clip, report.summary
    assert s["config"]["fps"] == 25 and s["config"]["gt_stride"] == 1
    assert set(df["identity"]) == {"F2", "M5"} and set(df["condition"]) == {"M3", "F3"}
    assert set(df["gt"]) == {"F2_e37.npy", "M5_e37.npy"}
    assert s["metrics"]["mtm"]["computed"] is False and "mtm_frames" not in df  # no MTM vertices in the topology
    assert {"lve", "fdd"} <= set(s["metrics"])
    # damped predictions (half the GT's motion) show it in the diagnostics; undamped ones equal the GT
    damped, same = df[df["condition"] == "M3"], df[df["condition"] == "F3"]
    assert np.allclose(damped["upper_face_motion"] / damped["upper_face_motion_gt"], 0.5, rtol=1e-4)
    assert np.allclose(damped["lip_jerk"] / damped["lip_jerk_gt"], 0.5, rtol=1e-4)
    assert np.allclose(damped["lip_amplitude_ratio"], 0.5, rtol=1e-4)
    assert np.allclose(same["lip_amplitude_ratio"], 1.0, rtol=1e-5)
    assert np.allclose(same["lip_hf_energy"], same["lip_hf_energy_gt"], atol=1e-6)
    d = s["diagnostics"]
    assert set(d) == {"lip_jerk", "lip_jerk_gt", "lip_hf_energy", "lip_hf_energy_gt", "upper_face_motion",
                      "upper_face_motion_gt", "lip_amplitude_ratio", "lip_amplitude", "lip_amplitude_gt"}
    assert np.allclose(damped["lip_amplitude"] / damped["lip_amplitude_gt"], 0.5, rtol=1e-4)
    assert d["lip_amplitude_ratio"]["mean"] == pytest.approx(0.75, rel=1e-4)
    assert d["lip_jerk"]["n_clips"] == 2 and d["lip_jerk"]["n_predictions"] == 4

    (tmp_path / "b").mkdir()
    off = evaluate(dataclasses.replace(_biwi_layout(tmp_path / "b"), diagnostics=False), progress=False)
    assert "lip_jerk" not in off.per_clip and "diagnostics" not in off.summary


def test_generic_names_take_the_speaker_the_templates_name(tmp_path):
    """A generic name's identity was the text before its first ``_``: ``spk_01_take_e37`` was speaker ``spk``, so
    FDD was refused (no template ``spk``) though the templates name ``spk_01``; the longest leading run of words
    naming a template is the identity now."""
    import pickle

    cfg = _biwi_layout(tmp_path)
    speakers = {"F2": "spk_01", "M5": "spk_02"}
    for sub in ("gt", "pred"):
        for f in (tmp_path / sub).iterdir():
            subj = f.name.split("_")[0]
            f.rename(f.with_name(f.name.replace(subj, f"{speakers[subj]}_take", 1)))
    with open(tmp_path / "templates.pkl", "rb") as fh:
        templates = pickle.load(fh)
    with open(tmp_path / "templates.pkl", "wb") as fh:
        pickle.dump({speakers[k]: v for k, v in templates.items()}, fh)
    report = evaluate(dataclasses.replace(cfg, dataset="generic", fps=25, gt_fps=25, metrics=("lve", "fdd")),
                      progress=False)
    df = report.per_clip
    assert set(df["identity"]) == {"spk_01", "spk_02"} and df["fdd"].notna().all()
    assert np.allclose(df["lip_amplitude_ratio"].sort_values(), [0.5, 0.5, 1.0, 1.0], rtol=1e-4)


def test_diagnostics_nan_for_short_clips(tmp_path):
    # 6 frames: lip jerk defined (>= 4), the lip spectrum not (>= 8)
    report = evaluate(_biwi_layout(tmp_path, frames=6, pred_frames=6), progress=False)
    df = report.per_clip
    assert df["lip_jerk"].notna().all() and df["lip_hf_energy"].isna().all() and df["lip_hf_energy_gt"].isna().all()
    assert report.summary["diagnostics"]["lip_hf_energy"]["mean"] is None


def test_biwi_names_refused_when_not_biwi(tmp_path, capsys):
    _biwi_layout(tmp_path)
    np.save(tmp_path / "pred" / "FaceTalk_1_sentence01.npy", np.zeros((50, 120), np.float32))
    code, _, err = _eval_cli(["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--dataset", "biwi",
                              "--topology", str(tmp_path / "topo.npz"), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "not a BIWI-style name" in err and len(err.strip().splitlines()) == 1


def test_mtm_explicit_on_topology_without_mtm_vertices_exit_2(tmp_path, capsys):
    _biwi_layout(tmp_path)
    code, _, err = _eval_cli(["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--dataset", "biwi",
                              "--metrics", "lve,mtm", "--topology", str(tmp_path / "topo.npz"),
                              "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "MTM cannot be computed" in err


def test_a_file_named_plots_is_not_refused_where_the_topology_has_no_mtm_vertices(tmp_path, capsys):
    """Default metrics on a topology without MTM lip vertices (BIWI): MTM is not computed, so --plots draws nothing,
    yet a file named plots in --out was refused (exit 2) because the topology was read after that check. Now the
    run goes through and leaves the file alone; asking for MTM on it is still refused."""
    _biwi_layout(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "plots").write_text("mine")
    base = ["--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--dataset", "biwi", "--templates",
            tmp_path / "templates.pkl", "--topology", tmp_path / "topo.npz", "--plots", "--out", out]
    code, _, err = _eval_cli(base, capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "plots").read_text() == "mine" and summary["outputs"]["plots"] == 0
    code, _, err = _eval_cli([*base, "--metrics", "lve,mtm"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_the_topology_is_read_once_per_evaluation(tmp_path, capsys, monkeypatch):
    """With --plots and the default metrics, whether any plot is drawn depends on the topology (MTM's lip
    vertices): p3d eval read it for that in the command, again in evaluate(), and a third time for the plan. Now
    evaluate() reads it once; a refused topology is still refused after --bootstrap, before any clip is read."""
    import p3d.topology

    cfg = _biwi_layout(tmp_path)
    reads = []
    real = p3d.topology.load_topology
    monkeypatch.setattr(p3d.topology, "load_topology", lambda spec: reads.append(spec) or real(spec))
    out = tmp_path / "out"
    code, _, err = _eval_cli(["--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--dataset", "biwi",
                              "--templates", tmp_path / "templates.pkl", "--topology", tmp_path / "topo.npz",
                              "--plots", "--out", out], capsys)
    assert code == 0, err
    assert reads == [str(tmp_path / "topo.npz")]
    reads.clear()
    evaluate(dataclasses.replace(cfg, plots=True, out=tmp_path / "out2"), progress=False)
    assert len(reads) == 1
    with pytest.raises(InputError, match="--bootstrap"):
        evaluate(dataclasses.replace(cfg, topology="no-such-mesh", bootstrap_resamples=1, out=out), progress=False)
    with pytest.raises(InputError, match="unknown topology 'no-such-mesh'"):
        evaluate(dataclasses.replace(cfg, topology="no-such-mesh", plots=True, out=out), progress=False)


def test_plrs_calibrated_metric_selection(demo, tmp_path):
    from p3d.evaluate import plan_background

    ckpt = tmp_path / "critic.pt"  # resolve_metrics only checks that it is given
    with_gt = EvalConfig(pred=demo.mead, gt=demo.mead, audio=demo.mead, plrs_checkpoint=ckpt)
    assert resolve_metrics(with_gt)[-2:] == ("plrs", "plrs_calibrated")
    assert resolve_metrics(EvalConfig(pred=demo.mead, audio=demo.mead, plrs_checkpoint=ckpt)) == (
        "plrs", "plrs_calibrated")
    assert "plrs_calibrated" not in resolve_metrics(EvalConfig(pred=demo.mead, gt=demo.mead, audio=demo.mead))
    for cfg in (EvalConfig(pred=demo.mead, gt=demo.mead, audio=demo.mead, metrics=("plrs_calibrated",)),
                EvalConfig(pred=demo.mead, gt=demo.mead, plrs_checkpoint=ckpt, metrics=("plrs_calibrated",))):
        with pytest.raises(InputError, match="PLRS-c .*--plrs-checkpoint CKPT and --audio DIR"):
            resolve_metrics(cfg)
    wanted = ("lve", "plrs", "plrs_calibrated")
    assert plan_background(with_gt, wanted, 3) == wanted  # each clip has 2 others
    assert plan_background(with_gt, wanted, 2) == ("lve", "plrs")  # by default: dropped (reason in the summary)
    with pytest.raises(InputError, match="plrs_calibrated.*leave 1"):
        plan_background(dataclasses.replace(with_gt, metrics=wanted), wanted, 2)


def test_computable_metrics_leaves_out_what_the_inputs_cannot_give(demo, tmp_path):
    """A fixed metric set over prediction folders of any size: PLRS-c only where the predictions cover enough GT clips
    for its background (counted by GT clip, not by prediction file: k conditions of one clip are one clip), PLRS and
    PLRS-c only with a checkpoint and audio."""
    from p3d.evaluate import computable_metrics

    ckpt = tmp_path / "critic.pt"
    wanted = ("lve", "mtm", "plrs", "plrs_calibrated")
    files = sorted((Path(demo.mead) / "vertices_npy").glob("*.npy"))  # the GT scored as predictions
    n_gt = len({parse_name(f.stem).gt_stem for f in files})
    assert n_gt - 1 >= MIN_BACKGROUND_CLIPS
    full = EvalConfig(pred=demo.mead, gt=demo.mead, audio=demo.mead, plrs_checkpoint=ckpt)
    assert computable_metrics(full, wanted) == wanted
    assert computable_metrics(dataclasses.replace(full, plrs_checkpoint=None), wanted) == ("lve", "mtm")
    assert computable_metrics(dataclasses.replace(full, audio=None), wanted) == ("lve", "mtm")
    few = tmp_path / "few"  # two GT clips, each predicted under two conditions: 4 files, 2 clips
    few.mkdir()
    clip_stems = list(dict.fromkeys(parse_name(f.stem).gt_stem for f in files))[:2]
    for stem in clip_stems:
        for k in range(2):
            shutil.copy(Path(demo.mead) / "vertices_npy" / f"{stem}.npy", few / f"{stem}_condition_spk{k}.npy")
    assert computable_metrics(dataclasses.replace(full, pred=few), wanted) == ("lve", "mtm", "plrs")
    assert computable_metrics(dataclasses.replace(full, pred=few, metrics=wanted), wanted) == ("lve", "mtm", "plrs")


def test_check_corpus_source_against_the_predictions_record(tmp_path, caplog):
    """--gt (and --audio) is checked against the corpora p3d predict recorded (predictions.json): the corpus itself (its root or
    its vertices_npy/) or a copy is accepted, another synthetic corpus (another seed) is refused, a bare GT folder
    elsewhere and predictions without a record are matched by name only, and said so."""
    from tiny_corpus import write_tiny_corpus

    from p3d.corpus import corpus_fingerprint
    from p3d.evaluate.plan import check_corpus_source

    def corpus(path, seed):
        return write_tiny_corpus(path, kind="vocaset", fps=60, model_fps=30, identities={"train": 1, "test": 1},
                                 clips_per_identity=1, seconds=0.5, lip_video=False, labels=False, seed=seed)

    a = corpus(tmp_path / "a", 0)
    pred = tmp_path / "pred"
    pred.mkdir()
    assert check_corpus_source(pred, a).startswith("not checked: --pred has no predictions.json")
    (pred / "predictions.json").write_text(json.dumps({"source": {}, "corpora": {str(a.resolve()):
                                                                                corpus_fingerprint(a)}}))
    assert check_corpus_source(pred, None) == "no --gt"
    assert check_corpus_source(pred, a / "wav", "--audio").startswith("the corpus the predictions were made from")
    for gt in (a, a / "vertices_npy"):
        assert check_corpus_source(pred, gt).startswith("the corpus the predictions were made from")
    assert check_corpus_source(pred, shutil.copytree(a, tmp_path / "copy")).startswith("a copy of the corpus")
    b = corpus(tmp_path / "b", 1)
    with pytest.raises(InputError, match="^--gt .*another corpus than the predictions .* meta.json differs"):
        check_corpus_source(pred, b)
    with pytest.raises(InputError, match="^--audio .*another corpus than the predictions"):
        check_corpus_source(pred, b / "wav", "--audio")
    bare = shutil.copytree(a / "vertices_npy", tmp_path / "bare")
    with caplog.at_level("WARNING", logger="p3d.evaluate"):
        assert check_corpus_source(pred, bare).startswith("not checked: --gt is not the corpus")
    assert "matched by name only" in caplog.text
    (a / "meta.json").write_text((a / "meta.json").read_text().replace('"seed": 0', '"seed": 2'))
    with pytest.raises(InputError, match="regenerated or replaced since"):
        check_corpus_source(pred, a)


def test_check_corpus_source_sees_a_moved_clip_or_a_corrected_template(tmp_path):
    """A clip moved to another split or a corrected template at the predicted corpus' path was accepted as "the
    corpus the predictions were made from"; now refused. A record written before the file fields (fingerprint and
    meta only: today's predictions.json files) is still accepted on those."""
    from test_corpus import _move_a_clip_and_correct_a_template
    from tiny_corpus import write_tiny_corpus

    from p3d.corpus import corpus_fingerprint
    from p3d.evaluate.plan import check_corpus_source

    a = write_tiny_corpus(tmp_path / "a", kind="vocaset", fps=60, model_fps=30, identities={"train": 1, "test": 1},
                          clips_per_identity=2, seconds=0.5, lip_video=False, labels=False)
    fp = corpus_fingerprint(a)
    new, old = tmp_path / "new", tmp_path / "old"
    for pred, record in ((new, fp), (old, {"fingerprint": fp["fingerprint"], "meta": fp["meta"]})):
        pred.mkdir()
        (pred / "predictions.json").write_text(json.dumps({"source": {}, "corpora": {str(a.resolve()): record}}))
    copy = shutil.copytree(a, tmp_path / "copy")
    _move_a_clip_and_correct_a_template(a)
    for option in ("--gt", "--templates"):
        with pytest.raises(InputError, match=f"^{option} .*regenerated or replaced since.*templates.pkl, clips.csv"):
            check_corpus_source(new, a, option)
        assert check_corpus_source(old, a, option).startswith("the corpus the predictions were made from")
    assert check_corpus_source(new, copy).startswith("a copy of the corpus")
    _move_a_clip_and_correct_a_template(copy)  # no longer a copy of it: matched on its meta.json only
    assert check_corpus_source(new, copy).startswith("a corpus of the same settings")


def test_lve_pools_every_scored_frame_as_the_official_scripts(tmp_path):
    """The official LVE (CodeTalker's cal_metric.py, the release's test.py) averages the per-frame lip error over
    all frames of all clips, so a long clip weighs more; p3d eval averaged per prediction (2.1e-6 here, not 1.2e-6).
    The CI resamples clips of the same frame-weighted mean."""
    from p3d.metrics import lve_per_frame
    from p3d.topology import FLAME_LIPS

    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    rng = np.random.default_rng(0)
    per_frame = []
    for k, (frames, err) in enumerate(((12, 2e-3), (36, 0.5e-3), (20, 1e-3))):
        gt = (rng.standard_normal((frames, 5023, 3)) * 1e-3).astype(np.float32)
        pred = gt.copy()
        pred[:, FLAME_LIPS, 1] += np.float32(err)
        stem = f"FaceTalk_170809_00138_TA_sentence{k + 1:02d}"
        np.save(tmp_path / "gt" / f"{stem}.npy", gt.reshape(frames, -1))
        np.save(tmp_path / "pred" / f"{stem}_condition_FaceTalk_170725_00137_TA.npy", pred.reshape(frames, -1))
        per_frame.append(lve_per_frame(pred, gt))
    report = evaluate(EvalConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", fps=30, gt_fps=30, metrics=("lve",),
                                 diagnostics=False, bootstrap_resamples=200), progress=False)
    lve = report.summary["metrics"]["lve"]
    assert lve["value"] == pytest.approx(float(np.mean(np.concatenate(per_frame))), rel=1e-5)
    assert lve["value"] != pytest.approx(float(report.per_clip["lve"].mean()), rel=1e-2)
    assert lve["ci95"][0] <= lve["value"] <= lve["ci95"][1]


def _generic_speakers_layout(tmp_path, clips=3, frames=30):
    """Generic names ``spk_0K_clipN[_condition_C]`` of two speakers the templates name ``spk_01`` and ``spk_02``
    (the text before the first ``_`` is ``spk`` for both), with audio: SLCC's identity-wise z-scores."""
    import pickle

    import soundfile as sf

    from p3d.topology import Topology

    rng = np.random.default_rng(3)
    n = 40
    Topology(name="tiny_generic", n_vertices=n,
             regions={"lips": np.arange(10), "upper_face": np.arange(20, 40)}).save_npz(tmp_path / "topo.npz")
    for sub in ("gt", "pred", "wav"):
        (tmp_path / sub).mkdir()
    templates = {}
    for spk in ("spk_01", "spk_02"):
        templates[spk] = rng.standard_normal((n, 3)).astype(np.float32)
        for c in range(clips):
            t = np.arange(frames) / 25.0
            motion = (0.01 * rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * rng.uniform(2, 5) * t)[:, None, None]
                      * rng.standard_normal((1, n, 3)))
            stem = f"{spk}_clip{c}"
            np.save(tmp_path / "gt" / f"{stem}.npy", (templates[spk][None] + motion).astype(np.float32))
            sf.write(tmp_path / "wav" / f"{stem}.wav",
                     (rng.uniform(0.05, 0.5) * rng.standard_normal(16000 * frames // 25)).astype(np.float32), 16000)
            for cond in ("A", "B"):
                pred = templates[spk][None] + rng.uniform(0.5, 1.5) * motion
                np.save(tmp_path / "pred" / f"{stem}_condition_{cond}.npy", pred.astype(np.float32))
    with open(tmp_path / "templates.pkl", "wb") as fh:
        pickle.dump(templates, fh)
    return EvalConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", audio=tmp_path / "wav",
                      templates=tmp_path / "templates.pkl", dataset="generic", fps=25, gt_fps=25,
                      topology=str(tmp_path / "topo.npz"), bootstrap_resamples=100)


def test_generic_speakers_and_slcc_do_not_depend_on_the_other_metrics(tmp_path):
    """The speakers of generic names were taken from the templates only when FDD or the diagnostics read them:
    ``--metrics slcc --no-diagnostics`` z-normalised spk_01 and spk_02 together as one speaker ``spk``, so SLCC and
    the data's SLCC changed with --no-diagnostics (e.g. -0.352 / -0.479 instead of -0.334 / -0.580)."""
    cfg = _generic_speakers_layout(tmp_path)
    runs = [evaluate(dataclasses.replace(cfg, **kw), progress=False)
            for kw in (dict(metrics=("slcc",)), dict(metrics=("slcc",), diagnostics=False),
                       dict(metrics=("slcc", "fdd"), diagnostics=False))]
    for r in runs:
        assert set(r.per_clip["identity"]) == {"spk_01", "spk_02"}
    slcc = [r.summary["metrics"]["slcc"] for r in runs]
    for s in slcc[1:]:
        assert (s["value"], s["data_value"], s["ci95"]) == (slcc[0]["value"], slcc[0]["data_value"], slcc[0]["ci95"])


def test_slcc_counts_the_rows_its_r_is_taken_over(demo, tmp_path):
    """A speaker evaluated on one GT clip has one speech intensity, so its z-scores are undefined and SLCC drops its
    predictions; the summary still said n_clips=3, n_predictions=7 for an r over 2 clips and 4 predictions."""
    pred = tmp_path / "pred"
    pred.mkdir()
    for f in (demo.vocaset / "pred").glob("*.npy"):
        if "sentence40" not in f.name and not f.name.startswith("FaceTalk_170809_00138_TA_sentence22"):
            shutil.copy(f, pred / f.name)
    report = evaluate(_voca_cfg(demo, pred=pred, metrics=("slcc", "lve"), diagnostics=False), progress=False)
    df, m = report.per_clip, report.summary["metrics"]
    assert (m["lve"]["n_clips"], m["lve"]["n_predictions"]) == (3, 7)
    alone = df["identity"] == "FaceTalk_170809_00138_TA"
    assert alone.sum() == 3 and df.loc[alone, "gt"].nunique() == 1
    assert (m["slcc"]["n_clips"], m["slcc"]["n_predictions"], m["slcc"]["n_rows"]) == (2, 4, 7)
    assert any("3 of 7 prediction(s) left out" in note for note in m["slcc"]["notes"])


def test_a_prediction_too_short_for_plrs_is_refused_before_any_work(tmp_path, monkeypatch):
    """PLRS needs 9 frames (one non-overlapping 5-frame window); a 7-frame clip passed the first pass and was refused
    by the scoring pass, after every clip before it had been scored (13 PLRS scores here)."""
    import soundfile as sf

    cfg = _generic_speakers_layout(tmp_path)
    rng = np.random.default_rng(0)
    short = (rng.standard_normal((7, 40, 3)) * 0.01).astype(np.float32)  # sorts after every other clip
    np.save(tmp_path / "gt" / "zz_clip0.npy", short)
    np.save(tmp_path / "pred" / "zz_clip0_condition_A.npy", short)
    sf.write(tmp_path / "wav" / "zz_clip0.wav", (0.1 * rng.standard_normal(16000 * 7 // 25)).astype(np.float32), 16000)
    monkeypatch.setattr("p3d.evaluate.scoring._load_plrs_model", lambda *a: pytest.fail("work began before the check"))
    with pytest.raises(InputError, match=r"zz_clip0_condition_A.npy: 7 frames at 25 fps; PLRS and PLRS-c need at "
                                         r"least 9"):
        evaluate(dataclasses.replace(cfg, plrs_checkpoint=tmp_path / "critic.pt", metrics=("lve", "plrs"),
                                     templates=None), progress=False)
    monkeypatch.undo()
    report = evaluate(dataclasses.replace(cfg, metrics=("lve",), templates=None), progress=False)  # no PLRS: scored
    assert "zz_clip0_condition_A.npy" in set(report.per_clip["pred"])


def test_predictions_beside_a_vertices_npy_folder_are_refused_not_left_out(demo, tmp_path, capsys):
    """--pred X with prediction files and a vertices_npy/ folder scored vertices_npy/ (one GT clip against itself:
    LVE 0, exit 0) and left the 10 predictions out without a word."""
    pred = shutil.copytree(demo.vocaset / "pred", tmp_path / "pred")
    (pred / "vertices_npy").mkdir()
    stem = "FaceTalk_170731_00024_TA_sentence21"
    shutil.copy(demo.vocaset / "vertices_npy" / f"{stem}.npy", pred / "vertices_npy" / f"{stem}.npy")
    code, _, err = _eval_cli(["--pred", pred, "--gt", demo.vocaset, "--metrics", "lve",
                              "--topology", demo.vocaset / "FLAME_masks.pkl", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "10 .npy file(s)" in err and "beside a vertices_npy/" in err
    assert not (tmp_path / "o").exists()
    code, _, err = _eval_cli(["--pred", pred / "vertices_npy", "--gt", demo.vocaset, "--metrics", "lve",
                              "--topology", demo.vocaset / "FLAME_masks.pkl", "--out", tmp_path / "o"], capsys)
    assert code == 0, err


def test_plrs_without_audio_is_reported_not_computed(demo, tmp_path, capsys):
    """--plrs-checkpoint without --audio left PLRS and PLRS-c out of the default metrics without a word: no line
    printed, no entry in summary.json, though an evaluator was given for them."""
    from p3d.evaluate import format_summary

    cfg = EvalConfig(pred=demo.mead / "pred", gt=demo.mead, plrs_checkpoint=tmp_path / "critic.pt",
                     bootstrap_resamples=50, diagnostics=False)
    summary = evaluate(cfg, progress=False).summary
    for key in ("plrs", "plrs_calibrated"):
        assert summary["metrics"][key]["computed"] is False and "--audio" in summary["metrics"][key]["reason"]
    text = format_summary(summary)
    assert "PLRS  not computed: needs the speech audio" in text and "PLRS-c not computed" in text


def test_gt_length_after_subsampling_counts_the_last_partial_stride():
    """The GT is compared after ``[::stride]``: 21 frames at 60 fps give ``len(gt[::2]) == 11`` frames at 30 fps (not
    21 // 2 == 10), so a 13-frame prediction is within the 2-frame tolerance and accepted, a 14-frame one is not."""
    from p3d.evaluate.config import FrameRates
    from p3d.evaluate.plan import _Pair, check_lengths
    from p3d.io import parse_clip_name

    gt_full = 21
    subsampled = len(np.zeros(gt_full)[::2])
    rates = FrameRates(fps=30.0, gt_fps=60.0, stride=2, gt_fps_source="--gt-fps", explicit=False)

    def pair(pred_frames):
        name = parse_clip_name("s1_sentence01_condition_s2")
        return _Pair(Path("s1_sentence01_condition_s2.npy"), name, Path("s1_sentence01.npy"), pred_frames, gt_full)

    assert check_lengths([pair(subsampled + 2)], rates, {}) == {}
    with pytest.raises(InputError, match="differ by 3 frames"):
        check_lengths([pair(subsampled + 3)], rates, {})


def test_vocaset_gt_scored_as_predictions_at_a_given_fps_is_not_subsampled(demo):
    """A vertices_npy folder given as --pred is taken as 60 fps and subsampled [::2] only without --fps; with --fps
    its files are read at that rate, every frame (the documented rule of resolve_rates), even where the
    rate given is 30 fps."""
    from p3d.evaluate.plan import _Pair, resolve_rates

    folder = demo.vocaset / "vertices_npy"
    pairs = [_Pair(f, parse_name(f.stem), None) for f in sorted(folder.glob("*.npy"))]
    common = dict(pred=folder, gt=demo.vocaset, templates=demo.vocaset / "templates.pkl",
                  topology=str(demo.vocaset / "FLAME_masks.pkl"))
    assert resolve_rates(EvalConfig(**common), pairs, demo.vocaset).pred_stride == 2  # the official [::2]
    given = resolve_rates(EvalConfig(**common, fps=30, gt_fps=60), pairs, demo.vocaset)
    assert (given.pred_stride, given.fps, given.stride) == (1, 30.0, 2)  # read at --fps 30, every frame


def test_plrs_e_enrols_each_speakers_other_scored_gt_clips_once():
    """plrs_enrolled_column: a prediction's enrolled amplitude is the mean GT lip amplitude of its speaker's *other*
    GT clips, each clip once however many predictions it has, and only clips whose audio was scored (finite PLRS-c;
    a silent clip is not enrolled). PLRS-e = PLRS-c - mu |a / a_s - 1| (p3d.metrics.plrs_enrolled), by hand here."""
    from p3d.evaluate.scoring import plrs_enrolled_column

    per_clip = pd.DataFrame({
        "gt": ["a1", "a1", "a2", "a2", "a3", "b1"], "identity": ["A"] * 5 + ["B"], "level": [None] * 6,
        "plrs_calibrated": [0.5, 0.4, 0.6, 0.2, np.nan, 0.7],
        "lip_amplitude": [1.5, 3.0, 1.0, 2.0, 5.0, 1.0],
        "lip_amplitude_gt": [1.0, 1.0, 3.0, 3.0, 10.0, 2.0]})
    got = plrs_enrolled_column(per_clip, 0.5)
    want = [0.5 - 0.5 * abs(1.5 / 3.0 - 1), 0.4 - 0.5 * abs(3.0 / 3.0 - 1),     # a1: enrolled on a2 (3.0)
            0.6 - 0.5 * abs(1.0 / 1.0 - 1), 0.2 - 0.5 * abs(2.0 / 1.0 - 1),     # a2: enrolled on a1 (1.0)
            np.nan, np.nan]                                                     # silent a3; B has one clip
    np.testing.assert_allclose(got, want, equal_nan=True)
    # with levels (MEAD): enrolled on the speaker's other clips of the same level
    levels = pd.DataFrame({"gt": ["x1", "x2", "y1", "y2"], "identity": ["A"] * 4, "level": ["1", "1", "2", "2"],
                           "plrs_calibrated": [0.5] * 4, "lip_amplitude": [2.0] * 4,
                           "lip_amplitude_gt": [1.0, 3.0, 10.0, 20.0]})
    np.testing.assert_allclose(plrs_enrolled_column(levels, 0.5),
                               [0.5 - 0.5 * abs(2 / 3 - 1), 0.5 - 0.5 * abs(2 / 1 - 1), 0.5 - 0.5 * abs(2 / 20 - 1),
                                0.5 - 0.5 * abs(2 / 10 - 1)])


@pytest.mark.parametrize("kw, match", [
    # without --gt only PLRS and PLRS-c, and by default only with both the evaluator and the audio
    (dict(audio="a"), "without --gt only PLRS and PLRS-c"),
    (dict(plrs_checkpoint="c.pt"), "without --gt only PLRS and PLRS-c"),
    (dict(audio="a", plrs_checkpoint="c.pt", metrics=("plrs", "lve", "mtm")),
     r"--metrics lve,mtm: compared with the ground truth"),
    (dict(audio="a", plrs_checkpoint="c.pt", metrics=("slcc",)), "--metrics slcc: compared with the ground truth"),
    (dict(gt="g", metrics=("lve", "bleu")), "unknown metric"),
    (dict(gt="g", audio="a", metrics=("fdd",)), "FDD needs the neutral templates"),
    (dict(gt="g", templates="t.pkl", metrics=("slcc",)), "SLCC needs the speech audio"),
    (dict(gt="g", audio="a", metrics=("plrs",)), "PLRS needs --plrs-checkpoint CKPT and --audio DIR"),
    (dict(gt="g", plrs_checkpoint="c.pt", metrics=("plrs",)), "PLRS needs --plrs-checkpoint CKPT and --audio DIR"),
])
def test_each_documented_metric_refusal(tmp_path, kw, match):
    """resolve_metrics refuses every selection whose inputs are missing (one line each), before any file is read."""
    cfg = EvalConfig(pred=tmp_path, **{k: (tmp_path / v if isinstance(v, str) else v) for k, v in kw.items()})
    with pytest.raises(InputError, match=match):
        resolve_metrics(cfg)


def test_explicit_metrics_are_computed_once_each(tmp_path):
    assert resolve_metrics(EvalConfig(pred=tmp_path, gt=tmp_path, metrics=("mtm", "lve", "mtm"))) == ("mtm", "lve")


class _Topology:
    """The parts of a p3d.topology.Topology that plan_metrics reads."""

    def __init__(self, upper_face=True, mtm=True):
        self.name = "tiny"
        self.regions = {"upper_face": np.arange(3)} if upper_face else {}
        self.mtm_upper = self.mtm_lower = np.arange(2) if mtm else None


def test_plan_metrics_refuses_an_explicit_fdd_or_mtm_the_topology_cannot_give(tmp_path):
    from p3d.evaluate import plan_metrics

    base = EvalConfig(pred=tmp_path, gt=tmp_path, templates=tmp_path / "t.pkl")
    assert plan_metrics(base, _Topology()) == (("lve", "fdd", "mtm"), {})
    wanted, reasons = plan_metrics(base, _Topology(upper_face=False))  # picked by default: not computed, with a reason
    assert wanted == ("lve", "mtm") and "no upper-face region" in reasons["fdd"]
    with pytest.raises(InputError, match="FDD cannot be computed"):
        plan_metrics(dataclasses.replace(base, metrics=("lve", "fdd")), _Topology(upper_face=False))
    half = _Topology()
    half.mtm_lower = None  # one of the two lip-vertex lists missing is no MTM
    wanted, reasons = plan_metrics(base, half)
    assert wanted == ("lve", "fdd") and "no MTM lip vertices" in reasons["mtm"]
    with pytest.raises(InputError, match="MTM cannot be computed"):
        plan_metrics(dataclasses.replace(base, metrics=("mtm",)), half)


@pytest.mark.parametrize("drop, named", [
    ("plrs_calibrated", "PLRS-c"), ("gt", "--gt DIR"), ("templates", "--templates"), ("diagnostics", "diagnostics")])
def test_plrs_e_names_each_missing_input(tmp_path, drop, named):
    """--intensity-weight (PLRS-e) needs PLRS-c among the metrics, the GT, the templates and the diagnostics."""
    from p3d.evaluate.config import check_enrolled

    cfg = EvalConfig(pred=tmp_path, gt=tmp_path, templates=tmp_path / "t.pkl", intensity_weight=0.5)
    wanted = ("lve", "plrs", "plrs_calibrated")
    check_enrolled(cfg, wanted)  # everything given: accepted
    if drop == "plrs_calibrated":
        wanted = ("lve", "plrs")
    else:
        cfg = dataclasses.replace(cfg, **{drop: False if drop == "diagnostics" else None})
    with pytest.raises(InputError, match=r"--intensity-weight \(PLRS-e\) needs") as err:
        check_enrolled(cfg, wanted)
    assert named in str(err.value) and str(err.value).count(";") == 0  # only the one missing input


def test_length_rule_tolerance_is_ten_percent_of_the_longer_and_an_empty_clip_is_refused():
    from p3d.evaluate import length_mismatch

    assert length_mismatch(100, 90) is None  # 10 frames = 10 % of the longer (100), not of the shorter (90)
    assert "differ by 11 frames" in length_mismatch(100, 89)
    assert "differ" in length_mismatch(0, 5) and "differ" in length_mismatch(3, 0)


def test_gt_rate_must_be_a_whole_multiple_of_the_prediction_rate(tmp_path):
    cfg = EvalConfig(pred=tmp_path, fps=30)
    assert cfg.gt_stride() == 1 and cfg.gt_stride(60) == 2 and dataclasses.replace(cfg, gt_fps=90).gt_stride() == 3
    for gt_fps in (15, 45, 59.9):
        with pytest.raises(InputError, match="integer multiple"):
            cfg.gt_stride(gt_fps)
    assert EvalConfig(pred=tmp_path, dataset="biwi").pred_fps() == 25.0
    assert EvalConfig(pred=tmp_path).pred_fps() == 30.0


def _tiny_pairing_layout(tmp_path, gt_frames=51):
    """One GT clip at 50 fps of a 40-vertex face (lips 0-9, MTM lip vertices 0 and 5, upper face 20-39) and the
    template, for predictions at 25 fps written by the caller (``pred/spk_01_clip0_condition_<c>.npy``)."""
    import pickle

    from p3d.topology import Topology

    n = 40
    Topology(name="tiny_pairing", n_vertices=n, regions={"lips": np.arange(10), "upper_face": np.arange(20, 40)},
             mtm_upper=0, mtm_lower=5).save_npz(tmp_path / "topo.npz")
    for sub in ("gt", "pred"):
        (tmp_path / sub).mkdir()
    template = np.zeros((n, 3), dtype=np.float32)
    template[:, 0] = np.arange(n) * 0.01
    t = np.arange(gt_frames) / 50.0
    gt = np.broadcast_to(template, (gt_frames, n, 3)).copy()
    gt[:, 0, 1] += (0.004 * np.sin(2 * np.pi * 2.5 * t)).astype(np.float32)     # the mouth opens 2.5 times a second
    gt[:, 20:, 2] += (0.001 * np.sin(2 * np.pi * 1.0 * t))[:, None].astype(np.float32)  # the brows move
    np.save(tmp_path / "gt" / "spk_01_clip0.npy", gt.reshape(gt_frames, -1))
    with open(tmp_path / "templates.pkl", "wb") as fh:
        pickle.dump({"spk_01": template}, fh)
    cfg = EvalConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", templates=tmp_path / "templates.pkl",
                     dataset="generic", fps=25, gt_fps=50, topology=str(tmp_path / "topo.npz"),
                     metrics=("lve", "fdd", "mtm"), bootstrap_resamples=100)
    return cfg, gt, template


def test_per_clip_numbers_pair_each_prediction_frame_with_every_second_gt_frame(tmp_path):
    """A 25 fps prediction against 50 fps GT: frame t is compared with GT frame 2t (GT[::2], 26 frames for 51), the
    longer truncated to the shorter for LVE and FDD (its first frames kept), MTM in frames at 25 fps (40 ms each).
    Expected values by hand: the lips displaced by a_t = (t + 1) mm along x give a per-frame maximal squared lip error
    a_t^2 (LVE, m^2); a prediction 2 frames late has MTM 2 frames = 80 ms; a still upper face against moving brows
    has FDD > 0 (GT minus prediction)."""
    cfg, gt, template = _tiny_pairing_layout(tmp_path)
    paired = gt[::2]
    assert len(paired) == 26
    a = 1e-3 * (np.arange(25) + 1.0)
    shifted = paired[:25].copy()
    shifted[:, :10, 0] += a[:, None]
    late = np.concatenate([paired[:1].repeat(2, axis=0), paired[:23]])  # frame t shows GT frame t - 2
    still = paired[:25].copy()
    still[:, 20:] = template[20:]
    for cond, pred in (("shifted", shifted), ("late", late), ("still", still)):
        np.save(tmp_path / "pred" / f"spk_01_clip0_condition_{cond}.npy", pred.reshape(25, -1))
    report = evaluate(cfg, progress=False)
    per = report.per_clip.set_index("condition")
    assert (per["pred_frames"] == 25).all() and (per["gt_frames"] == 26).all() and (per["frames"] == 25).all()
    assert per["truncated"].all()
    assert per.loc["shifted", "lve"] == pytest.approx(float(np.mean(a ** 2)), rel=1e-4)
    assert per.loc["still", "lve"] == pytest.approx(0.0, abs=1e-12)
    assert per.loc["late", "mtm_frames"] == pytest.approx(2.0)
    assert per.loc["late", "mtm_ms"] == pytest.approx(80.0)
    assert per.loc["shifted", "mtm_frames"] == 0.0 and per.loc["shifted", "mtm_ms"] == 0.0  # the lips moved together
    assert per.loc["still", "fdd"] > 0 and per.loc["shifted", "fdd"] == pytest.approx(0.0, abs=1e-12)
    # MTMResult.matches are (GT frame, predicted frame): the late prediction shows each GT extremum 2 frames later
    matches = report.mtm_results["spk_01_clip0_condition_late"].matches
    assert matches and all(j - i == 2 for i, j in matches)
    # --lve-variant max_l2: the per-frame maximal lip distance a_t itself (m), not its square
    l2 = evaluate(dataclasses.replace(cfg, metrics=("lve",), lve_variant="max_l2"), progress=False).per_clip
    assert l2.set_index("condition").loc["shifted", "lve"] == pytest.approx(float(np.mean(a)), rel=1e-4)


def test_slcc_columns_read_the_channel_mean_and_the_chosen_lip_aggregate(tmp_path):
    """SLCC's speech intensity is the RMS of the channel mean (p3d.io.load_audio), the lip intensity the chosen
    aggregate (--lip-aggregate) over frames of the mean lip speed (Eq. (c)). By hand: a stereo wav whose channels are
    x and x / 2 has speech intensity 0.75 rms(x); lips at c t^2 along x move c (2t + 1) per frame."""
    import soundfile as sf

    cfg, gt, template = _tiny_pairing_layout(tmp_path)
    (tmp_path / "wav").mkdir()
    x = 0.2 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)
    sf.write(tmp_path / "wav" / "spk_01_clip0.wav", np.stack([x, x / 2], axis=1), 16000, subtype="FLOAT")
    c = 1e-4
    t = np.arange(25.0)
    pred = np.broadcast_to(template, (25, 40, 3)).copy()
    pred[:, :10, 0] += (c * t ** 2)[:, None]
    np.save(tmp_path / "pred" / "spk_01_clip0_condition_ramp.npy", pred.reshape(25, -1))
    steps = c * (2 * t[:-1] + 1)
    for aggregate, want in (("mean", np.mean(steps)), ("rms", np.sqrt(np.mean(steps ** 2)))):
        row = evaluate(dataclasses.replace(cfg, audio=tmp_path / "wav", metrics=("slcc",), lip_aggregate=aggregate,
                                           diagnostics=False), progress=False).per_clip.iloc[0]
        assert row["lip_intensity"] == pytest.approx(want, rel=1e-5)
        assert row["speech_intensity"] == pytest.approx(0.75 * np.sqrt(np.mean(x ** 2)), rel=1e-5)


def test_the_plrs_column_is_the_official_plrs_whether_or_not_plrs_c_is_computed(demo, tmp_path, one_torch_thread):
    """PLRS and PLRS-c come from one forward pass, but per_clip.csv's ``plrs`` is the official PLRS (Eq. (a)): the
    same numbers as an evaluation of PLRS alone, and not PLRS-c's."""
    import torch

    from p3d.models.syncnet3d import SyncNet3D, SyncNet3DConfig

    torch.manual_seed(0)
    SyncNet3D(SyncNet3DConfig.from_preset("smoke", n_vertices=5023)).save(tmp_path / "critic.pt")
    pred = tmp_path / "pred"
    pred.mkdir()
    files = sorted((demo.mead / "pred").glob("*.npy"))
    chosen = {parse_name(f.stem).gt_stem: f for f in files}  # one prediction per GT clip
    for f in list(chosen.values())[:4]:
        shutil.copy(f, pred / f.name)
    cfg = EvalConfig(pred=pred, gt=demo.mead, audio=demo.mead, plrs_checkpoint=tmp_path / "critic.pt",
                     metrics=("plrs",), diagnostics=False, bootstrap_resamples=100)
    alone = evaluate(cfg, progress=False).per_clip.set_index("pred")
    both = evaluate(dataclasses.replace(cfg, metrics=("plrs", "plrs_calibrated")), progress=False).per_clip
    both = both.set_index("pred").loc[alone.index]
    np.testing.assert_allclose(both["plrs"], alone["plrs"], rtol=1e-6)
    assert not np.allclose(both["plrs_calibrated"], both["plrs"], rtol=1e-3)


def test_plrs_c_background_is_every_other_clips_speech_never_the_clips_own(demo, tmp_path, one_torch_thread):
    """PLRS-c of a prediction: its positive-pair cosine minus the mean cosine to the speech of the *other* evaluated
    GT clips (p3d.metrics.plrs_calibrated with p3d.metrics.background_excluding), recomputed here from channel 0 of
    the wavs."""
    import soundfile as sf
    import torch

    from p3d import io, metrics
    from p3d.audio import speech_windows
    from p3d.models.speech_mesh import load_critic
    from p3d.models.syncnet3d import SyncNet3D, SyncNet3DConfig

    torch.manual_seed(0)
    SyncNet3D(SyncNet3DConfig.from_preset("smoke", n_vertices=5023)).save(tmp_path / "critic.pt")
    pred = tmp_path / "pred"
    pred.mkdir()
    chosen = {parse_name(f.stem).gt_stem: f for f in sorted((demo.mead / "pred").glob("*.npy"))}
    stems = list(chosen)[:3]
    wav = tmp_path / "wav"
    wav.mkdir()
    for s in stems:
        shutil.copy(chosen[s], pred / chosen[s].name)
        # stereo, the second channel another signal: PLRS reads channel 0, as the official evaluate_PLRS.py
        x, rate = sf.read(io.audio_dir(demo.mead) / f"{s}.wav", dtype="float32")
        sf.write(wav / f"{s}.wav", np.stack([x, x[::-1]], axis=1), rate, subtype="FLOAT")
    per = evaluate(EvalConfig(pred=pred, gt=demo.mead, audio=wav, plrs_checkpoint=tmp_path / "critic.pt",
                              metrics=("plrs_calibrated",), diagnostics=False, bootstrap_resamples=100),
                   progress=False).per_clip.set_index("pred")
    model = load_critic(tmp_path / "critic.pt")
    windows = {}
    for s in stems:
        samples, rate = io.load_audio(wav / f"{s}.wav", mono=False)
        windows[s] = speech_windows(np.ascontiguousarray(samples[:, 0]), rate, 30.0)
    banks = metrics.speech_banks(windows, model)
    for s in stems:
        vertices = np.load(chosen[s])
        want = metrics.plrs_calibrated(windows[s], vertices, model, metrics.background_excluding(banks, s))
        assert per.loc[chosen[s].name, "plrs_calibrated"] == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_a_wav_silent_on_the_channel_plrs_reads_is_silent(tmp_path):
    """PLRS reads channel 0 and SLCC the channel mean: a clip is silent (left out of the audio metrics) when either
    signal is, so PLRS is never scored on a silent channel 0 beside a loud channel 1."""
    import soundfile as sf

    from p3d.evaluate.config import SILENT_RMS
    from p3d.evaluate.scoring import _clip_audio

    loud = 0.3 * np.sin(2 * np.pi * 200 * np.arange(8000) / 16000)
    sf.write(tmp_path / "a.wav", np.stack([np.zeros_like(loud), loud], axis=1), 16000, subtype="FLOAT")
    _, _, rms = _clip_audio(tmp_path / "a.wav", ("slcc", "plrs"))
    assert rms < SILENT_RMS
    _, _, rms = _clip_audio(tmp_path / "a.wav", ("slcc",))  # SLCC alone: the channel mean is not silent
    assert rms == pytest.approx(np.sqrt(np.mean((loud / 2) ** 2)), rel=1e-5)


def test_a_wav_below_minus_80_dbfs_is_silent_for_slcc_but_lve_is_scored(tmp_path):
    """SILENT_RMS is -80 dBFS: a wav at -100 dBFS (RMS 1e-5) has no speech intensity (NaN in per_clip.csv), while
    the GT metrics still score its prediction; at -60 dBFS (1e-3) it is speech."""
    import soundfile as sf

    cfg, gt, _ = _tiny_pairing_layout(tmp_path)
    np.save(tmp_path / "pred" / "spk_01_clip0_condition_A.npy", gt[::2][:25].reshape(25, -1))
    (tmp_path / "wav").mkdir()
    tone = np.sqrt(2) * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)  # RMS 1
    for rms, silent in ((1e-5, True), (1e-3, False)):
        sf.write(tmp_path / "wav" / "spk_01_clip0.wav", rms * tone, 16000, subtype="FLOAT")
        row = evaluate(dataclasses.replace(cfg, audio=tmp_path / "wav", metrics=("lve", "slcc"), diagnostics=False),
                       progress=False).per_clip.iloc[0]
        assert np.isnan(row["speech_intensity"]) == silent and row["lve"] == pytest.approx(0.0, abs=1e-12)


def test_a_silent_clip_is_left_out_of_slccs_data_reference_too(tmp_path):
    """SLCC compares the predictions' speech-lip correlation with the data's own (Eq. (7)); a GT clip with a silent
    wav is in neither: the data's SLCC is the same as with that clip removed from the evaluation altogether."""
    import soundfile as sf

    cfg = dataclasses.replace(_generic_speakers_layout(tmp_path), metrics=("lve", "slcc"), diagnostics=False)
    sf.write(tmp_path / "wav" / "spk_01_clip0.wav", np.zeros(16000 * 30 // 25, dtype=np.float32), 16000)
    with_silent = evaluate(cfg, progress=False).summary["metrics"]["slcc"]
    for f in [*(tmp_path / "pred").glob("spk_01_clip0_*.npy"), tmp_path / "gt" / "spk_01_clip0.npy"]:
        f.unlink()
    without = evaluate(cfg, progress=False).summary["metrics"]["slcc"]
    assert with_silent["data_value"] is not None
    assert with_silent["data_value"] == pytest.approx(without["data_value"], rel=1e-9)


def test_a_prediction_longer_than_its_gt_is_truncated_and_flagged_too(tmp_path):
    """A prediction one frame longer than its subsampled GT (27 frames against GT[::2]'s 26) is truncated to the GT's
    length for LVE and flagged ``truncated`` in per_clip.csv, as a shorter one is (not only pred < GT)."""
    cfg, gt, template = _tiny_pairing_layout(tmp_path)
    paired = gt[::2]
    pred = np.concatenate([paired, paired[-1:]])
    np.save(tmp_path / "pred" / "spk_01_clip0_condition_long.npy", pred.reshape(27, -1))
    row = evaluate(dataclasses.replace(cfg, metrics=("lve",)), progress=False).per_clip.iloc[0]
    assert (row["pred_frames"], row["gt_frames"], row["frames"]) == (27, 26, 26)
    assert bool(row["truncated"])
    assert row["lve"] == pytest.approx(0.0, abs=1e-12)


def test_the_bootstrap_size_check_counts_gt_clips_not_prediction_files(demo, monkeypatch):
    """--bootstrap's memory check multiplies the resamples by the GT clips the CIs resample (4 in the VOCASET demo),
    not by the prediction files (9): 200 x 4 draws fit a limit of 800 and are evaluated; 201 x 4 are refused."""
    monkeypatch.setattr("p3d.stats.MAX_DRAWS", 800)
    report = evaluate(_voca_cfg(demo, metrics=("lve",), bootstrap_resamples=200), progress=False)
    assert report.summary["counts"]["n_clips"] == 4 and report.summary["counts"]["n_predictions"] == 9
    with pytest.raises(InputError, match="201 resamples of 4 clusters"):
        evaluate(_voca_cfg(demo, metrics=("lve",), bootstrap_resamples=201), progress=False)


def test_without_gt_a_subsampled_prediction_is_timed_against_its_audio_at_the_evaluated_rate():
    """Without --gt, a processed-VOCASET prediction read at 60 fps and subsampled [::2] is 30 fps: its 60 frames
    after [::2] match 2.0 s of audio at 30 fps (not 120 frames at the file's 60 fps); 4.0 s of audio is refused
    with one InputError naming the subsampling."""
    from p3d.evaluate.config import FrameRates
    from p3d.evaluate.plan import _Pair, check_lengths

    rates = FrameRates(fps=30.0, gt_fps=30.0, stride=1, gt_fps_source="no --gt", explicit=False, pred_stride=2,
                       pred_fps_source="VOCASET vertices_npy (60 fps, [::2])")
    stem = "FaceTalk_170725_00137_TA_sentence01"
    p = _Pair(Path(f"{stem}.npy"), parse_name(stem), None, pred_frames=60)
    assert check_lengths([p], rates, {p.name.gt_stem: 2.0}) == {}
    with pytest.raises(InputError, match=r"60 frames after \[::2\] at 30 fps.* 120 frames"):
        check_lengths([p], rates, {p.name.gt_stem: 4.0})


def test_without_gt_an_explicit_fps_accepts_an_audio_duration_mismatch(tmp_path):
    """Without --gt, --fps alone is the explicit rate (FrameRates.explicit): a prediction whose duration differs from
    its audio's is then scored with a note, not refused; without --fps the same pair is refused."""
    from p3d.evaluate.plan import _Pair, check_lengths, resolve_rates

    stem = "spk_01_clip0"
    p = _Pair(tmp_path / f"{stem}_condition_a.npy", parse_name(f"{stem}_condition_a", "generic"), None, pred_frames=30)
    given = resolve_rates(EvalConfig(pred=tmp_path, dataset="generic", fps=30), [p], None)
    assert given.explicit and given.gt_fps_source == "no --gt"
    assert "durations" in check_lengths([p], given, {stem: 2.0})[p.pred_path.name]
    default = resolve_rates(EvalConfig(pred=tmp_path, dataset="generic"), [p], None)
    assert not default.explicit
    with pytest.raises(InputError, match="pass their true rate with --fps"):
        check_lengths([p], default, {stem: 2.0})


def test_gt_diagnostics_are_taken_at_the_evaluated_rate_as_the_predictions(tmp_path):
    """The GT's motion diagnostics (the ``*_gt`` columns) are computed on GT[::2] at the predictions' 25 fps, not
    at the GT file's 50 fps: a prediction that is GT[::2] has exactly the GT's lip jerk (m/s^3, which scales with
    fps^3) and high-frequency energy."""
    cfg, gt, template = _tiny_pairing_layout(tmp_path)
    np.save(tmp_path / "pred" / "spk_01_clip0_condition_same.npy", gt[::2].reshape(26, -1))
    row = evaluate(dataclasses.replace(cfg, metrics=("lve",), diagnostics=True), progress=False).per_clip.iloc[0]
    for key in ("lip_jerk", "lip_hf_energy", "upper_face_motion"):
        assert np.isfinite(row[key]) and row[key] == pytest.approx(row[f"{key}_gt"], rel=1e-6), key


def test_a_gt_under_two_frames_after_subsampling_is_refused(tmp_path):
    """A 2-frame GT at 50 fps is one frame after [::2] at the predictions' 25 fps: refused from its header with one
    InputError naming it, even with both rates given, never scored on a single frame."""
    cfg, gt, template = _tiny_pairing_layout(tmp_path, gt_frames=2)
    np.save(tmp_path / "pred" / "spk_01_clip0_condition_a.npy", gt[:1].repeat(2, axis=0).reshape(2, -1))
    with pytest.raises(InputError, match=r"spk_01_clip0\.npy: needs at least 2 frames"):
        evaluate(dataclasses.replace(cfg, metrics=("lve",)), progress=False)


def test_speech_cache_keys_differ_by_frame_rate_and_wav_and_a_non_finite_bank_is_not_trusted(tmp_path):
    """PLRS-c's speech-bank cache keys a bank by the frame rate and the wav's bytes as well as the evaluator: banks of
    the same wav at 25 and 30 fps (other windows) or of another wav never share a file; a stored bank holding a NaN
    (or of another dtype or rank) is read as missing and recomputed, never used."""
    from p3d.evaluate.scoring import _SpeechBankCache

    (tmp_path / "critic.pt").write_bytes(b"weights")
    (tmp_path / "a.wav").write_bytes(b"wav a")
    (tmp_path / "b.wav").write_bytes(b"wav b")
    cache = _SpeechBankCache(tmp_path / "cache", tmp_path / "critic.pt")
    key = cache.path(tmp_path / "a.wav", 30.0)
    assert key == cache.path(tmp_path / "a.wav", 30.0)
    assert len({key, cache.path(tmp_path / "a.wav", 25.0), cache.path(tmp_path / "b.wav", 30.0)}) == 3
    good = np.ones((3, 4), dtype=np.float32)
    cache.save(key, good)
    np.testing.assert_array_equal(cache.load(key), good)
    for bad in (np.where(np.eye(3, 4) > 0, np.nan, 1.0).astype(np.float32), good.astype(np.float64), good[0]):
        np.save(key, bad)
        assert cache.load(key) is None


def test_check_corpus_source_refuses_another_meta_only_when_every_recorded_corpus_has_one(tmp_path, caplog):
    """Another synthetic corpus is refused only when every corpus the predictions were made from has a meta.json to
    differ from: predictions made from a synthetic corpus and from a bare GT folder (no meta.json, e.g. real data's
    vertices_npy/) match a third corpus by name with a warning, not refused."""
    from tiny_corpus import write_tiny_corpus

    from p3d.corpus import corpus_fingerprint
    from p3d.evaluate.plan import check_corpus_source

    def corpus(path, seed):
        return write_tiny_corpus(path, kind="vocaset", fps=60, model_fps=30, identities={"train": 1, "test": 1},
                                 clips_per_identity=1, seconds=0.5, lip_video=False, labels=False, seed=seed)

    a, b = corpus(tmp_path / "a", 0), corpus(tmp_path / "b", 1)
    bare = shutil.copytree(a / "vertices_npy", tmp_path / "bare")
    np.save(bare / "extra.npy", np.zeros((2, 15), dtype=np.float32))  # not a copy of a
    pred = tmp_path / "pred"
    pred.mkdir()
    record = {str(a.resolve()): corpus_fingerprint(a), str(bare.resolve()): corpus_fingerprint(bare)}
    assert record[str(bare.resolve())].get("meta") is None
    (pred / "predictions.json").write_text(json.dumps({"source": {}, "corpora": record}))
    with caplog.at_level("WARNING", logger="p3d.evaluate"):
        assert check_corpus_source(pred, b).startswith("not checked: --gt is not the corpus")
    assert "matched by name only" in caplog.text


def test_computable_metrics_names_each_metric_once(tmp_path):
    """computable_metrics returns each metric once, in the order first asked for, as the set a caller then passes
    as ``metrics`` (a repeated name is not a second column)."""
    from p3d.evaluate import computable_metrics

    cfg = EvalConfig(pred=tmp_path, gt=tmp_path)
    assert computable_metrics(cfg, ("lve", "mtm", "lve", "plrs")) == ("lve", "mtm")
    cfg = EvalConfig(pred=tmp_path, gt=tmp_path, audio=tmp_path, plrs_checkpoint=tmp_path / "critic.pt")
    assert computable_metrics(cfg, ("plrs", "lve", "plrs")) == ("plrs", "lve")


@pytest.mark.parametrize("aggregate", ["mean", "rms"])
def test_the_gt_scored_as_predictions_has_the_datas_slcc_for_either_lip_aggregate(demo, aggregate):
    """SLCC's data value (Eq. (7) over the GT clips) takes the lip intensity with the same --lip-aggregate as the
    predictions' (Eq. (c)): the GT scored as its own predictions has SLCC equal to the data's, delta 0."""
    cfg = EvalConfig(pred=demo.mead, gt=demo.mead, audio=demo.mead, metrics=("slcc",), lip_aggregate=aggregate,
                     diagnostics=False, bootstrap_resamples=50)
    slcc = evaluate(cfg, progress=False).summary["metrics"]["slcc"]
    assert slcc["value"] is not None
    assert slcc["value"] == pytest.approx(slcc["data_value"], abs=1e-6)
    for level in slcc.get("by_level", {}).values():
        if level["value"] is not None:
            assert level["value"] == pytest.approx(level["data_value"], abs=1e-6)


def test_silent_wavs_that_leave_too_small_a_background_leave_plrs_c_out(demo, tmp_path, one_torch_thread):
    """Three GT clips are enough for PLRS-c's background before the audio is read, but a silent wav leaves two
    clips with speech, each with one other clip as its background (fewer than MIN_BACKGROUND_CLIPS): PLRS-c is not
    computed (the reason in the summary) under the default metrics, and refused when asked for; PLRS still is."""
    import torch

    from p3d.models.syncnet3d import SyncNet3D, SyncNet3DConfig

    assert MIN_BACKGROUND_CLIPS == 2
    torch.manual_seed(0)
    SyncNet3D(SyncNet3DConfig.from_preset("smoke", n_vertices=5023)).save(tmp_path / "critic.pt")
    pred = tmp_path / "pred"
    pred.mkdir()
    chosen = {parse_name(f.stem).gt_stem: f for f in sorted((demo.mead / "pred").glob("*.npy"))}
    wav = tmp_path / "wav"
    wav.mkdir()
    for stem, f in list(chosen.items())[:3]:
        shutil.copy(f, pred / f.name)
        shutil.copy(demo.mead / "wav" / f"{stem}.wav", wav / f"{stem}.wav")
    _silence(wav)
    cfg = EvalConfig(pred=pred, gt=demo.mead, audio=wav, plrs_checkpoint=tmp_path / "critic.pt",
                     diagnostics=False, bootstrap_resamples=50)
    report = evaluate(dataclasses.replace(cfg, metrics=None), progress=False)
    m = report.summary["metrics"]
    assert m["plrs_calibrated"]["computed"] is False and "2 GT clip(s) with audio leave 1" in m["plrs_calibrated"][
        "reason"]
    assert "plrs_calibrated" not in report.per_clip and report.per_clip["plrs"].notna().sum() == 2
    with pytest.raises(InputError, match="plrs_calibrated.*leave 1"):
        evaluate(dataclasses.replace(cfg, metrics=("plrs", "plrs_calibrated")), progress=False)


def test_a_prediction_folder_is_processed_vocaset_gt_only_when_every_name_is_vocaset(tmp_path):
    """Predictions read from a folder named vertices_npy are taken as processed-VOCASET GT (60 fps, subsampled
    [::2]) only when every file has a VOCASET name (or --dataset vocaset): one generic name among them, or no files,
    or another folder name, or --dataset biwi, and they are read at --fps unsubsampled."""
    from p3d.evaluate.plan import _Pair, is_vocaset_gt_folder

    folder = tmp_path / "vertices_npy"
    folder.mkdir()

    def pairs(*stems):
        return [_Pair(Path(f"{s}.npy"), parse_name(s), None) for s in stems]

    voca = "FaceTalk_170725_00137_TA_sentence01"
    assert is_vocaset_gt_folder(folder, pairs(voca, "FaceTalk_170725_00137_TA_sentence02"), "auto")
    assert not is_vocaset_gt_folder(folder, pairs(voca, "spk_01_clip0"), "auto")
    assert not is_vocaset_gt_folder(folder, [], "auto")
    assert is_vocaset_gt_folder(folder, pairs("spk_01_clip0"), "vocaset")
    assert not is_vocaset_gt_folder(folder, pairs(voca), "biwi")
    (tmp_path / "preds").mkdir()
    assert not is_vocaset_gt_folder(tmp_path / "preds", pairs(voca), "auto")


def test_a_gt_vertices_npy_folder_is_read_at_60_fps_only_for_vocaset_names(tmp_path):
    """Without --gt-fps, a GT vertices_npy folder is processed VOCASET (60 fps, subsampled [::2] to 30 fps) only
    when every prediction has a VOCASET name (or --dataset vocaset); generic names there are read at --fps,
    unsubsampled, and --gt-fps is a float whatever number type it was given as."""
    from p3d.evaluate.plan import _Pair, resolve_rates

    gt = tmp_path / "gt" / "vertices_npy"
    gt.mkdir(parents=True)

    def rates(stem, **kw):
        return resolve_rates(EvalConfig(pred=tmp_path / "pred", gt=gt, **kw),
                             [_Pair(Path(f"{stem}.npy"), parse_name(stem), gt / f"{stem}.npy")], gt)

    r = rates("FaceTalk_170725_00137_TA_sentence01")
    assert (r.gt_fps, r.stride, r.gt_fps_source) == (60.0, 2, "VOCASET (60 fps)")
    r = rates("spk_01_clip0")
    assert (r.gt_fps, r.stride, r.gt_fps_source) == (30.0, 1, "--fps")
    r = rates("spk_01_clip0", fps=np.int64(25), gt_fps=np.int64(50))
    assert (r.gt_fps, r.stride) == (50.0, 2) and type(r.gt_fps) is float and type(r.fps) is float


def test_with_both_rates_given_a_pair_keeps_its_length_note_beside_an_audio_note():
    """With --fps and --gt-fps given, mismatches are accepted and noted in per_clip.csv: a prediction whose length
    and whose GT's audio both mismatch keeps the note that it was truncated (prediction/GT lengths), not the later
    audio/GT one; a prediction of the same clip with a matching length gets the audio note."""
    from p3d.evaluate.config import FrameRates
    from p3d.evaluate.plan import _Pair, check_lengths

    rates = FrameRates(fps=30.0, gt_fps=30.0, stride=1, gt_fps_source="--gt-fps", explicit=True, pred_stride=1,
                       pred_fps_source="--fps")
    stem = "spk_01_clip0"
    long = _Pair(Path(f"{stem}_condition_a.npy"), parse_name(f"{stem}_condition_a"), Path(f"{stem}.npy"),
                 pred_frames=120, gt_frames_full=60)
    fine = _Pair(Path(f"{stem}_condition_b.npy"), parse_name(f"{stem}_condition_b"), Path(f"{stem}.npy"),
                 pred_frames=60, gt_frames_full=60)
    notes = check_lengths([long, fine], rates, {stem: 4.0})  # 120 frames of audio against 60 of GT
    assert notes[long.pred_path.name].startswith("prediction/GT lengths") and "truncated" in notes[long.pred_path.name]
    assert notes[fine.pred_path.name].startswith("audio/GT durations")


def test_a_refused_length_mismatch_counts_the_others_and_hints_biwi_only_for_biwi_names():
    """A refused length mismatch names the first pair and how many more there are ("1 more like it"); the
    --dataset biwi hint comes only when every prediction has a BIWI name, not for one among others."""
    from p3d.evaluate.config import FrameRates
    from p3d.evaluate.plan import _Pair, check_lengths

    rates = FrameRates(fps=30.0, gt_fps=30.0, stride=1, gt_fps_source="--fps", explicit=False, pred_stride=1,
                       pred_fps_source="--fps")

    def pair(stem):
        return _Pair(Path(f"{stem}.npy"), parse_name(stem), Path(f"{stem}.npy"), pred_frames=120, gt_frames_full=60)

    with pytest.raises(InputError, match=r"F2_e01\.npy: .*\(1 more like it\): .*--dataset biwi") as biwi:
        check_lengths([pair("F2_e01"), pair("F2_e02")], rates, {})
    with pytest.raises(InputError, match=r"F2_e01\.npy: ") as mixed:
        check_lengths([pair("F2_e01"), pair("spk_01_clip0")], rates, {})
    assert "1 more like it" in str(mixed.value) and "--dataset biwi" not in str(mixed.value)
    with pytest.raises(InputError) as one:
        check_lengths([pair("F2_e01")], rates, {})
    assert "more like it" not in str(one.value) and "--dataset biwi" in str(biwi.value)
