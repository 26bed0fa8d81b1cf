"""``p3d eval`` without ``--gt`` gives the PLRS of the official ``evaluate_PLRS.py``, per clip.

The official script, re-stated here from its description (official-interop.md): predictions map to
``<subj>_<sentNN>.wav`` by stripping ``_condition_...``; a path containing ``vertices_npy`` is 60 fps
ground truth, subsampled ``[::2]``; the audio's channel 0 is resampled to 19.2 kHz (torchaudio's sinc
resampler: its stand-in here is :func:`p3d.audio.resample`, checked against a direct sinc evaluation in
``test_official_frontend.py``), cut into 3200-sample windows at hop 640, each mean-subtracted, Kaldi fbank
told 16 kHz, normalised; ``clip_num = min(#windows, T - 4)``; chunks ``[5 i, 5 i + 5)`` with window ``5 i``
for ``5 i < clip_num - 4``; per sequence the mean diagonal cosine; PLRS the mean over sequences. The
evaluator is a tiny official-layout checkpoint whose features come from the independent float64 forward
of ``tests/official_model.py``.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from official_model import N_VERTICES, official_features, official_state_dict
from p3d import audio as A
from p3d.cli import main
from p3d.topology import Topology

SECONDS = 1.0
CASES = [(16000, 1), (22050, 1), (44100, 1), (16000, 2), (22050, 2), (44100, 2)]  # (rate, channels)


def official_plrs_of_sequence(wav, vertices: np.ndarray, sd, channel_mean: bool = False) -> float:
    data, sr = sf.read(wav, dtype="float32", always_2d=True)
    x = (data.mean(axis=1) if channel_mean else data[:, 0]).astype(np.float64)
    x = A.resample(x, sr, 19200) if sr != 19200 else x
    windows, i = [], 0
    while i * 640 + 3200 <= x.size:
        w = x[i * 640: i * 640 + 3200]
        windows.append(A.normalise_fbank(A.kaldi_fbank(w - w.mean())))
        i += 1
    clip_num = min(len(windows), len(vertices) - 4)
    starts = list(range(0, clip_num - 4, 5))
    v = torch.from_numpy(np.asarray(vertices, dtype=np.float64))
    speech, mesh = official_features(sd, torch.from_numpy(np.stack([windows[s] for s in starts])),
                                     torch.stack([v[s:s + 5] for s in starts]))
    return float((speech * mesh).sum(dim=-1).mean())


def _write_wav(path, rate: int, channels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SECONDS * rate)) / rate
    left = 0.3 * np.sin(2 * np.pi * (150 + 20 * seed) * t) * (1 + np.sin(2 * np.pi * 4 * t))
    left += 0.05 * rng.standard_normal(t.size) + 0.1 * np.sin(2 * np.pi * 7000 * t)
    data = left if channels == 1 else np.stack([left, 0.2 * rng.standard_normal(t.size)], axis=1)
    sf.write(path, np.clip(data, -1, 1), rate, subtype="PCM_16")


def _stem(i: int) -> str:
    return f"FaceTalk_17073{i}_0000{i}_TA_sentence0{i + 1}"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A tiny official-layout ``model_eval.pth``, its topology, wavs at 16 / 22.05 / 44.1 kHz mono and
    stereo, 30 fps predictions (two conditions per clip, 30 and 28 frames) and 60 fps GT in vertices_npy."""
    root = tmp_path_factory.mktemp("release")
    sd = official_state_dict(seed=3)
    torch.save({"model": sd, "epoch": 7}, root / "model_eval.pth")
    Topology(name="tiny40", n_vertices=N_VERTICES, regions={"lips": np.arange(12)}).save_npz(root / "tiny40.npz")
    for sub in ("wav", "pred", "vertices_npy"):
        (root / sub).mkdir()
    rng = np.random.default_rng(0)
    for i, (rate, channels) in enumerate(CASES):
        _write_wav(root / "wav" / f"{_stem(i)}.wav", rate, channels, seed=i)
        for cond, frames in (("FaceTalk_A", 30), ("FaceTalk_B", 28)):
            np.save(root / "pred" / f"{_stem(i)}_condition_{cond}.npy",
                    (0.1 * rng.standard_normal((frames, N_VERTICES * 3))).astype(np.float32))
        np.save(root / "vertices_npy" / f"{_stem(i)}.npy",
                (0.1 * rng.standard_normal((60, N_VERTICES * 3))).astype(np.float32))
    return root, sd


def _eval(capsys, root, pred, out, *extra):
    code = main(["eval", "--pred", str(pred), "--audio", str(root / "wav"), "--metrics", "plrs",
                 "--plrs-checkpoint", str(root / "model_eval.pth"), "--topology", str(root / "tiny40.npz"),
                 "--bootstrap", "50", "--no-progress", "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plrs_without_gt_equals_the_official_script(release, tmp_path, capsys, one_torch_thread):
    root, sd = release
    code, out, err = _eval(capsys, root, root / "pred", tmp_path / "out")
    assert code == 0, err
    df = pd.read_csv(tmp_path / "out" / "per_clip.csv")
    assert len(df) == 2 * len(CASES)
    official = {}
    for pred in sorted((root / "pred").glob("*.npy")):
        wav = root / "wav" / f"{pred.stem.split('_condition_')[0]}.wav"
        official[pred.name] = official_plrs_of_sequence(wav, np.load(pred).reshape(-1, N_VERTICES, 3), sd)
    ours = dict(zip(df["pred"], df["plrs"]))
    assert set(ours) == set(official)
    for name, value in official.items():
        assert abs(ours[name] - value) < 1e-5, name
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metrics"]["plrs"]["value"] == pytest.approx(np.mean(list(official.values())), abs=1e-6)
    assert set(summary["metrics"]) == {"plrs"} and summary["config"]["gt"] is None
    # channel 0, not the channel mean: the stereo clips would differ
    for i, (_, channels) in enumerate(CASES):
        if channels == 2:
            pred = root / "pred" / f"{_stem(i)}_condition_FaceTalk_A.npy"
            mean_ch = official_plrs_of_sequence(root / "wav" / f"{_stem(i)}.wav",
                                                np.load(pred).reshape(-1, N_VERTICES, 3), sd, channel_mean=True)
            assert abs(mean_ch - ours[pred.name]) > 1e-4
    # diagnostics of the prediction only: no GT columns without --gt
    assert {"lip_jerk", "lip_hf_energy"} <= set(df.columns)
    assert not {"lip_jerk_gt", "lip_amplitude_ratio", "lve"} & set(df.columns)


@pytest.mark.parametrize("as_root", [False, True])
def test_vocaset_gt_as_predictions_is_subsampled_like_the_official_script(release, tmp_path, capsys, as_root,
                                                                           one_torch_thread):
    root, sd = release
    code, _, err = _eval(capsys, root, root if as_root else root / "vertices_npy", tmp_path / "out")
    assert code == 0, err
    df = pd.read_csv(tmp_path / "out" / "per_clip.csv")
    assert len(df) == len(CASES) and (df["pred_frames"] == 30).all()
    for _, row in df.iterrows():
        gt = np.load(root / "vertices_npy" / row["pred"]).reshape(-1, N_VERTICES, 3)
        official = official_plrs_of_sequence(root / "wav" / row["pred"].replace(".npy", ".wav"), gt[::2], sd)
        assert abs(row["plrs"] - official) < 1e-5
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["config"]["pred_stride"] == 2


def test_60_fps_predictions_outside_vertices_npy_are_refused(release, tmp_path, capsys):
    root, _ = release
    pred = tmp_path / "gt_copy"
    pred.mkdir()
    for f in (root / "vertices_npy").glob("*.npy"):
        (pred / f.name).write_bytes(f.read_bytes())
    code, _, err = _eval(capsys, root, pred, tmp_path / "out")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "60 frames" in err and "factor of about 2" in err and "--fps" in err


def test_60_fps_frames_declared_with_fps_60_are_refused_by_a_30_fps_evaluator(release, tmp_path, capsys):
    """The refusal above advises ``--fps``; with ``--fps 60`` the 60 fps GT copy was scored at 60 fps (speech at
    38.4 kHz, 83 ms windows, stretched 2.4x) by the official evaluator, exit 0: a number the official script never
    gives. PLRS is defined at 25-30 fps (``p3d.audio.WINDOW_FPS_RANGE``): one line, exit 2, before any audio."""
    root, _ = release
    pred = tmp_path / "gt_copy"
    pred.mkdir()
    for f in (root / "vertices_npy").glob("*.npy"):
        (pred / f.name).write_bytes(f.read_bytes())
    code, _, err = _eval(capsys, root, pred, tmp_path / "out", "--fps", "60")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "PLRS at --fps 60: 60 fps is outside the 25-30 fps" in err and "[::2]" in err
    assert not (tmp_path / "out").exists()


def test_gt_metrics_without_gt_exit_2(release, tmp_path, capsys):
    root, _ = release
    code = main(["eval", "--pred", str(root / "pred"), "--audio", str(root / "wav"), "--metrics", "lve,plrs",
                 "--plrs-checkpoint", str(root / "model_eval.pth"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--gt" in err and "lve" in err
    code = main(["eval", "--pred", str(root / "pred"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--plrs-checkpoint" in err


# -- PLRS-c (plrs_calibrated) beside the official PLRS ---------------------------------------------------------
def _eval_default(capsys, root, pred, out, *extra):
    """``p3d eval`` with the default metrics (PLRS and PLRS-c, given --plrs-checkpoint and --audio)."""
    code = main(["eval", "--pred", str(pred), "--audio", str(root / "wav"), "--plrs-checkpoint",
                 str(root / "model_eval.pth"), "--topology", str(root / "tiny40.npz"), "--bootstrap", "50",
                 "--no-progress", "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _direct_plrs_c(root, preds) -> dict[str, float]:
    """PLRS-c of each prediction computed directly with p3d.metrics: channel 0, speech_windows at 30 fps, the
    background of a clip = speech_banks of every other GT clip's wav."""
    from p3d.metrics import background_excluding, plrs_calibrated, speech_banks
    from p3d.models.speech_mesh import load_critic

    model = load_critic(root / "model_eval.pth")
    windows = {}
    for i in range(len(CASES)):
        samples, sr = A.load_speech_audio(root / "wav" / f"{_stem(i)}.wav")
        windows[_stem(i)] = A.speech_windows(samples, sr, 30)
    banks = speech_banks(windows, model)
    out = {}
    for pred in preds:
        stem = pred.stem.split("_condition_")[0]
        out[pred.name] = plrs_calibrated(windows[stem], np.load(pred).reshape(-1, N_VERTICES, 3), model,
                                         background_excluding(banks, stem))
    return out


def test_plrs_calibrated_by_default_without_gt_equals_a_direct_computation(release, tmp_path, capsys,
                                                                          one_torch_thread):
    root, _ = release
    code, out, err = _eval_default(capsys, root, root / "pred", tmp_path / "both")
    assert code == 0, err
    both = pd.read_csv(tmp_path / "both" / "per_clip.csv").set_index("pred")
    direct = _direct_plrs_c(root, sorted((root / "pred").glob("*.npy")))
    assert set(both.index) == set(direct)
    for name, value in direct.items():
        assert both.loc[name, "plrs_calibrated"] == pytest.approx(value, abs=1e-6), name
    # the official PLRS is the same number whether PLRS-c is computed beside it or not
    code, _, err = _eval(capsys, root, root / "pred", tmp_path / "plrs")
    assert code == 0, err
    alone = pd.read_csv(tmp_path / "plrs" / "per_clip.csv").set_index("pred")
    assert "plrs_calibrated" not in alone
    assert (both.loc[alone.index, "plrs"] == alone["plrs"]).all()
    summary = json.loads((tmp_path / "both" / "summary.json").read_text())
    c = summary["metrics"]["plrs_calibrated"]
    assert set(summary["metrics"]) == {"plrs", "plrs_calibrated"}
    assert c["value"] == pytest.approx(np.mean(list(direct.values())), abs=1e-6)
    assert (c["n_clips"], c["n_predictions"], c["chance"], c["background_clips"]) == (6, 12, 0.0, 6)
    assert c["ci95"][0] is not None and c["ci95"][0] <= c["value"] <= c["ci95"][1]
    assert "PLRS-c" in out and "5 other GT clips" in out


def test_plrs_calibrated_with_gt(release, tmp_path, capsys, one_torch_thread):
    root, _ = release
    code, _, err = _eval_default(capsys, root, root / "pred", tmp_path / "out", "--gt", str(root),
                                 "--metrics", "plrs_calibrated")
    assert code == 0, err
    df = pd.read_csv(tmp_path / "out" / "per_clip.csv").set_index("pred")
    assert "plrs" not in df and df["gt_frames"].notna().all()
    direct = _direct_plrs_c(root, sorted((root / "pred").glob("*.npy")))
    for name, value in direct.items():
        assert df.loc[name, "plrs_calibrated"] == pytest.approx(value, abs=1e-6), name


def test_a_centroid_evaluator_scores_chance_on_plrs_calibrated(release, tmp_path, capsys, monkeypatch):
    """An evaluator that maps every mesh window to one point near all speech embeddings: official PLRS high
    (1 / sqrt(1 + r^2) = 0.894 for r = 0.5), PLRS-c 0."""
    import p3d.models.speech_mesh as speech_mesh
    from test_plrs import CentroidModel

    class Centroid(CentroidModel):
        n_vertices = N_VERTICES

    root, _ = release
    monkeypatch.setattr(speech_mesh, "load_critic", lambda path, *a, **k: Centroid(r=0.5).eval())
    code, _, err = _eval_default(capsys, root, root / "pred", tmp_path / "out")
    assert code == 0, err
    df = pd.read_csv(tmp_path / "out" / "per_clip.csv")
    assert np.allclose(df["plrs"], 1 / np.sqrt(1.25), atol=1e-6)
    assert np.allclose(df["plrs_calibrated"], 0.0, atol=1e-6)


def test_one_gt_clip_leaves_plrs_calibrated_not_computed(release, tmp_path, capsys, one_torch_thread):
    root, _ = release
    pred = tmp_path / "pred"
    pred.mkdir()
    for f in (root / "pred").glob(f"{_stem(0)}_condition_*.npy"):
        (pred / f.name).write_bytes(f.read_bytes())
    code, out, err = _eval_default(capsys, root, pred, tmp_path / "out")
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    c = summary["metrics"]["plrs_calibrated"]
    assert c["computed"] is False and "other evaluated GT clips" in c["reason"] and "leave 0" in c["reason"]
    assert summary["metrics"]["plrs"]["n_predictions"] == 2 and summary["config"]["metrics"] == ["plrs"]
    assert "plrs_calibrated" not in pd.read_csv(tmp_path / "out" / "per_clip.csv")
    assert "PLRS-c not computed" in out
    # asked for explicitly: exit 2 with one line, before any audio is read
    code, _, err = _eval_default(capsys, root, pred, tmp_path / "out2", "--metrics", "plrs,plrs_calibrated")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "plrs_calibrated" in err and "at least 2" in err


def test_silent_clips_leave_the_background(release, tmp_path, capsys, one_torch_thread):
    """A silent wav's predictions are left out of PLRS (listed in ``silent_audio``, not skipped: the GT metrics
    would still score them) and its clip is no background: 3 clips, 1 silent -> 2 clips with audio, each with 1
    other: PLRS-c not computed (explicit: exit 2)."""
    root, _ = release
    pred, wav = tmp_path / "pred", tmp_path / "wav"
    pred.mkdir()
    wav.mkdir()
    for i in range(3):
        for f in (root / "pred").glob(f"{_stem(i)}_condition_*.npy"):
            (pred / f.name).write_bytes(f.read_bytes())
        (wav / f"{_stem(i)}.wav").write_bytes((root / "wav" / f"{_stem(i)}.wav").read_bytes())
    data, rate = sf.read(wav / f"{_stem(2)}.wav", always_2d=True)
    sf.write(wav / f"{_stem(2)}.wav", np.zeros_like(data), rate)
    args = ["eval", "--pred", str(pred), "--audio", str(wav), "--plrs-checkpoint", str(root / "model_eval.pth"),
            "--topology", str(root / "tiny40.npz"), "--bootstrap", "20", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metrics"]["plrs_calibrated"]["computed"] is False
    assert "2 GT clip(s)" in summary["metrics"]["plrs_calibrated"]["reason"]
    assert summary["counts"]["skipped"] == 0 and summary["metrics"]["plrs"]["n_clips"] == 2
    assert [(s["wav"], s["n_predictions"]) for s in summary["silent_audio"]] == [(f"{_stem(2)}.wav", 2)]
    capsys.readouterr()
    assert main([*args, "--metrics", "plrs_calibrated", "--out", str(tmp_path / "out2")]) == 2
    assert "plrs_calibrated" in capsys.readouterr().err


def test_plrs_e_enrols_each_speaker_from_its_other_gt_clips(release, tmp_path, capsys, one_torch_thread):
    """``--intensity-weight``: PLRS-e per prediction = PLRS-c - mu |lip amplitude / the mean GT lip amplitude of
    the speaker's other clips - 1|; refused with one line without its inputs."""
    import pickle

    from p3d.metrics import lip_amplitude

    root, _ = release
    data = tmp_path / "data"
    for sub in ("wav", "pred", "vertices_npy"):
        (data / sub).mkdir(parents=True)
    rng = np.random.default_rng(5)
    templates = {}
    for subj in ("FaceTalk_170725_00137_TA", "FaceTalk_170728_03272_TA"):
        templates[subj] = rng.standard_normal((N_VERTICES, 3)).astype(np.float32)
        for k, scale in ((1, 0.01), (2, 0.02), (3, 0.03)):
            stem = f"{subj}_sentence0{k}"
            _write_wav(data / "wav" / f"{stem}.wav", 16000, 1, seed=k)
            gt = templates[subj][None] + scale * rng.standard_normal((60, N_VERTICES, 3))
            np.save(data / "vertices_npy" / f"{stem}.npy", gt.reshape(60, -1).astype(np.float32))
            pred = templates[subj][None] + 0.5 * (gt[::2] - templates[subj][None])
            np.save(data / "pred" / f"{stem}_condition_FaceTalk_A.npy", pred.reshape(30, -1).astype(np.float32))
    with open(data / "templates.pkl", "wb") as fh:
        pickle.dump(templates, fh)
    base = ["--gt", str(data), "--metrics", "lve,plrs_calibrated"]
    code, out, err = _eval_default(capsys, data, data / "pred", tmp_path / "out", *base, "--plrs-checkpoint",
                                   str(root / "model_eval.pth"), "--topology", str(root / "tiny40.npz"),
                                   "--templates", str(data / "templates.pkl"), "--intensity-weight", "0.5")
    assert code == 0, err
    df = pd.read_csv(tmp_path / "out" / "per_clip.csv")
    lips = np.arange(12)
    for _, row in df.iterrows():
        subj = row["identity"]
        gt = np.load(data / "vertices_npy" / row["gt"]).reshape(-1, N_VERTICES, 3)[::2]
        pred = np.load(data / "pred" / row["pred"]).reshape(-1, N_VERTICES, 3)
        assert row["lip_amplitude"] == pytest.approx(lip_amplitude(pred, lips, templates[subj]), rel=1e-6)
        assert row["lip_amplitude_gt"] == pytest.approx(lip_amplitude(gt, lips, templates[subj]), rel=1e-6)
        others = df[(df["identity"] == subj) & (df["gt"] != row["gt"])]["lip_amplitude_gt"].mean()
        want = row["plrs_calibrated"] - 0.5 * abs(row["lip_amplitude"] / others - 1)
        assert row["plrs_enrolled"] == pytest.approx(want, rel=1e-6)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    e = summary["metrics"]["plrs_enrolled"]
    assert e["value"] == pytest.approx(df["plrs_enrolled"].mean()) and e["intensity_weight"] == 0.5
    assert e["n_clips"] == 6 and "PLRS-e" in out
    # without the templates (or PLRS-c, or the GT): one line, exit 2, before any audio is read
    for drop, extra in (("--templates", ["--templates", str(data / "templates.pkl"), "--metrics", "lve"]),
                        ("--gt DIR", ["--templates", str(data / "templates.pkl"), "--metrics", "plrs_calibrated"]),
                        ("--templates", [])):
        args = (["--gt", str(data)] if drop != "--gt DIR" else []) + extra
        code, _, err = _eval_default(capsys, data, data / "pred", tmp_path / "bad", *args, "--plrs-checkpoint",
                                     str(root / "model_eval.pth"), "--topology", str(root / "tiny40.npz"),
                                     "--intensity-weight", "0.5")
        assert code == 2 and len(err.strip().splitlines()) == 1 and "--intensity-weight" in err, err
