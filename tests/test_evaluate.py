"""p3d eval end to end on the demo datasets (VOCASET and MEAD layouts), and its bad-input paths."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from p3d.cli import main
from p3d.errors import InputError
from p3d.evaluate import EvalConfig, evaluate, resolve_metrics, write_report


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
                                        "truncated": 0, "skipped": 1}
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


def test_gt_against_itself_gives_zero(demo, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    for f in sorted((demo.vocaset / "vertices_npy").glob("*.npy")):
        np.save(pred / f"{f.stem}_condition_X.npy", np.load(f)[::2])
    report = evaluate(_voca_cfg(demo, pred=pred, metrics=("lve", "mtm", "fdd")), progress=False)
    assert report.per_clip["lve"].abs().max() == 0
    assert report.per_clip["fdd"].abs().max() == 0
    assert report.per_clip["mtm_frames"].max() == 0


def test_mead_levels(demo):
    cfg = EvalConfig(pred=demo.mead / "pred", gt=demo.mead, audio=demo.mead, fps=30, bootstrap_resamples=200,
                     metrics=("lve", "mtm", "slcc"))
    report = evaluate(cfg, progress=False)
    df = report.per_clip
    assert sorted(df["level"].unique()) == [1, 2, 3]
    assert set(df["identity"]) == {"M003", "W009"}
    by_level = report.summary["metrics"]["slcc"]["by_level"]
    assert {"1", "2", "3"} <= set(by_level)


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
