"""Tests for p3d.study: variants, designs and counterbalancing, rendering a tiny study, and the analysis
on FIXTURE responses (made up in this file, labelled as fixtures: they are not data from people),
checked against hand-computed statistics."""
from __future__ import annotations

import dataclasses
import json
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from p3d.cli import main
from p3d.errors import InputError
from p3d.study import analyze as A
from p3d.study import design as D
from p3d.study import stats
from p3d.study import variants as V
from p3d.study.make import MakeConfig, load_manifest, make_study

FPS = 10
SR = 8000


# ------------------------------------------------------------------------------------------------
# Tiny data: the synthetic face (468 vertices) opening its jaw, a tone with a syllable envelope
# ------------------------------------------------------------------------------------------------
def write_study_data(root: Path, n_clips: int = 2, n_frames: int = 8) -> Path:
    """A corpus-like folder (vertices_npy/, wav/, topology.npz, templates.pkl) and two prediction
    folders: ``pred_ours`` (the GT) and ``pred_base`` (lip motion halved)."""
    from p3d.synth import face
    from p3d.synth.rig import K, Rig

    rig = Rig.from_topology("synth-face-base")
    for sub in ("vertices_npy", "wav", "pred_ours", "pred_base"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    templates = {}
    for c in range(n_clips):
        ident = f"id{c}"
        stem = f"{ident}_sentence{c + 1:02d}"
        params = np.zeros((n_frames, K))
        params[:, 0] = 0.5 * (1 - np.cos(np.linspace(0, 4 * np.pi, n_frames) + c)) / 2
        verts = rig.pose(params).astype(np.float32)
        templates[ident] = rig.pose(np.zeros(K)).astype(np.float32)
        np.save(root / "vertices_npy" / f"{stem}.npy", verts.reshape(n_frames, -1))
        t = np.arange(int(SR * n_frames / FPS)) / SR
        wave = 0.2 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
        sf.write(root / "wav" / f"{stem}.wav", wave.astype(np.float32), SR)
        np.save(root / "pred_ours" / f"{stem}_condition_idX.npy", verts)
        base = templates[ident][None] + 0.5 * (verts - templates[ident][None])
        np.save(root / "pred_base" / f"{stem}_condition_idX.npy", base.astype(np.float32))
    face.face_topology("base").save_npz(root / "topology.npz")
    with open(root / "templates.pkl", "wb") as fh:
        pickle.dump(templates, fh)
    return root


def make_ab_study(data: Path, out: Path, **kw) -> dict:
    options = dict(fps=FPS, size=48, participants=6) | kw
    cfg = MakeConfig(design="ab", gt=data, out=out,
                     conditions=[D.parse_condition(f"m/base={data / 'pred_base'}"),
                                 D.parse_condition(f"m/ours={data / 'pred_ours'}")], **options)
    return make_study(cfg, progress=False)


def make_rank_study(data: Path, out: Path, **kw) -> dict:
    options = dict(fps=FPS, size=48, participants=3, clips=1, attention_checks=1) | kw
    cfg = MakeConfig(design="rank", gt=data, out=out, **options)
    return make_study(cfg, progress=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_study_data(tmp_path_factory.mktemp("study_data"))


@pytest.fixture(scope="module")
def ab_study(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ab") / "study"
    make_ab_study(data, out)
    return out


@pytest.fixture(scope="module")
def rank_study(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("rank") / "study"
    make_rank_study(data, out)
    return out


# ------------------------------------------------------------------------------------------------
# Variants
# ------------------------------------------------------------------------------------------------
def test_lip_scale_scales_the_lip_intensity_exactly():
    from p3d.metrics import lip_intensity

    rng = np.random.default_rng(0)
    neutral = rng.normal(size=(20, 3))
    seq = neutral[None] + 0.01 * rng.normal(size=(12, 20, 3))
    lips = np.arange(8)
    for s in (0.5, 1.5):
        scaled = V.scale_lips(seq, neutral, s)
        for agg in ("mean", "rms"):
            assert lip_intensity(scaled, lips, aggregate=agg) == pytest.approx(s * lip_intensity(seq, lips, aggregate=agg))


def test_delays_and_shifts():
    v = np.arange(6, dtype=float)[:, None, None] * np.ones((6, 2, 3))
    late = V.delay_lips(v, 200, fps=10)  # 2 frames: speech leads the lips
    assert late[:, 0, 0].tolist() == [0, 0, 0, 1, 2, 3]
    early = V.delay_lips(v, -100, fps=10)
    assert early[:, 0, 0].tolist() == [1, 2, 3, 4, 5, 5]
    a = np.arange(1, 9, dtype=np.float32)
    assert V.shift_audio(a, 1000, 3).tolist() == [0, 0, 0, 1, 2, 3, 4, 5]
    assert V.shift_audio(a, 1000, -2).tolist() == [3, 4, 5, 6, 7, 8, 0, 0]
    with pytest.raises(InputError, match="not shorter"):
        V.delay_lips(v, 600, fps=10)
    assert V.fit_audio(a, 10, 3, fps=5).tolist() == [1, 2, 3, 4, 5, 6]
    assert V.fit_audio(a, 10, 5, fps=5).tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 0, 0]


def test_speech_levels_differ_by_the_gains_and_never_clip():
    t = np.arange(8000) / 8000
    x = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    levels = V.speech_levels(x, (-9, 0, 9))
    db = [V.rms_dbfs(y) for y in levels]
    assert db[1] - db[0] == pytest.approx(9, abs=1e-3) and db[2] - db[1] == pytest.approx(9, abs=1e-3)
    assert max(np.abs(y).max() for y in levels) <= V.PEAK_LIMIT + 1e-6
    quiet = V.speech_levels(0.001 * x, (-6, 0, 6))  # far below the limit: the middle level sits at -23 dBFS
    assert V.rms_dbfs(quiet[1]) == pytest.approx(V.REFERENCE_RMS_DBFS, abs=1e-3)
    with pytest.raises(InputError, match="silent"):
        V.speech_levels(np.zeros(100), (0, 6))


def test_transform_parsing_and_application():
    t = V.parse_transform("lip=0.5:lag_ms=100:freeze")
    assert t == V.Transform(lip_scale=0.5, lag_ms=100.0, freeze=True)
    assert t.label() == "lip=0.5:lag_ms=100:freeze" and V.Transform().label() == "none"
    assert V.parse_transform("") == V.Transform()
    for bad in ("lip", "speed=2", "lip=abc", "lip=-1"):
        with pytest.raises(InputError):
            V.parse_transform(bad)
    v = np.stack([np.zeros((3, 3)), np.ones((3, 3))])
    out, audio = V.apply(V.Transform(freeze=True), v, np.ones(4, np.float32), neutral=v[0], fps=10, sample_rate=4)
    assert np.all(out == 0) and audio.tolist() == [1, 1, 1, 1]


# ------------------------------------------------------------------------------------------------
# Designs and counterbalancing (no rendering)
# ------------------------------------------------------------------------------------------------
def _conds(*names):
    return [D.Condition(n, Path(f"/p/{n}")) for n in names]


def test_ab_plan_counterbalancing_and_orders():
    clips = [f"c{i}" for i in range(4)]
    plan = D.plan_study("ab", _conds("ff/base", "ff/ours", "ct/base", "ct/ours"), clips, attention_checks=2,
                        participants=6, seed=3)
    main_trials = [t for t in plan.trials if not t.attention_check]
    assert plan.pairs == [("ff/base", "ff/ours"), ("ct/base", "ct/ours")]  # pairs within a model only
    assert len(main_trials) == 8 and len(plan.trials) == 10
    assert {t.comparison for t in main_trials} == {"base vs ours"} and {t.model for t in main_trials} == {"ff", "ct"}
    counts = D.layout_counts(plan)
    for g in (0, 1):  # within each group every condition is on the left in exactly half of its trials
        for cond, per_pos in counts["by_group"][g].items():
            assert per_pos == [2, 2], (g, cond)
    for t in plan.trials:  # group 1 sees group 0 mirrored
        assert t.layouts[1] == t.layouts[0][::-1]
    checks = [t for t in plan.trials if t.attention_check]
    assert sorted(t.layouts[0].index(t.stimuli.index(t.correct)) for t in checks) == [0, 1]  # GT left once, right once
    assert all(plan.stimuli[t.correct].transform.is_identity and plan.stimuli[t.correct].condition == "gt"
               for t in checks)
    assert {k for t in checks for k in t.check_kinds} == {"audio_shift_500ms", "freeze"}
    # participants: groups in turn, each order a permutation, orders differ, deterministic with the seed
    ids = sorted(t.id for t in plan.trials)
    assert [p["group"] for p in plan.participants] == [0, 1, 0, 1, 0, 1]
    assert all(sorted(p["order"]) == ids for p in plan.participants)
    assert len({tuple(p["order"]) for p in plan.participants}) == 6
    again = D.plan_study("ab", _conds("ff/base", "ff/ours", "ct/base", "ct/ours"), clips, attention_checks=2,
                         participants=6, seed=3)
    assert [p["order"] for p in again.participants] == [p["order"] for p in plan.participants]
    other = D.plan_study("ab", _conds("ff/base", "ff/ours", "ct/base", "ct/ours"), clips, attention_checks=2,
                         participants=6, seed=4)
    assert [p["order"] for p in other.participants] != [p["order"] for p in plan.participants]
    # opaque ids reveal nothing: stimulus ids are a permutation, trial ids q01..q10
    assert sorted(s.id for s in plan.stimuli.values()) == [f"v{i:04d}" for i in range(1, len(plan.stimuli) + 1)]
    assert ids == [f"q{i:02d}" for i in range(1, 11)]


def test_rank_intensity_plan_is_a_latin_square():
    plan = D.plan_study("rank", [], ["c0", "c1"], lip_scales=(0.5, 1, 1.5), speech_gains_db=(-9, 0, 9),
                        attention_checks=1, participants=3)
    main_trials = [t for t in plan.trials if not t.attention_check]
    assert len(main_trials) == 6 and plan.n_groups == 3
    for t in plan.trials:
        for pos in range(3):  # across the 3 groups each video takes each position once
            assert sorted(layout[pos] for layout in t.layouts) == [0, 1, 2]
    cells = {(plan.stimuli[k].speech_level, plan.stimuli[k].lip_level) for t in main_trials for k in t.stimuli}
    assert cells == {(s, lip) for s in (1, 2, 3) for lip in (1, 2, 3)}
    for t in main_trials:  # one speech level per trial, three lip levels
        assert {plan.stimuli[k].speech_level for k in t.stimuli} == {t.speech_level}
        assert [plan.stimuli[k].transform.lip_scale for k in t.stimuli] == [0.5, 1, 1.5]
    check = next(t for t in plan.trials if t.attention_check)
    assert len(check.stimuli) == 3 and plan.stimuli[check.correct].speech_level == 2
    assert "videos A through C, with 3 being the most" in plan.question


def test_plan_rejects_bad_designs():
    with pytest.raises(InputError, match="at least two"):
        D.plan_study("ab", _conds("a"), ["c"])
    with pytest.raises(InputError, match="no pair"):
        D.plan_study("ab", _conds("x/a", "y/b"), ["c"])
    assert D.plan_study("ab", _conds("x/a", "y/b"), ["c"], pairs=[("x/a", "y/b")]).trials
    with pytest.raises(InputError, match="at most one"):
        D.plan_study("rank", _conds("a", "b"), ["c"])
    with pytest.raises(InputError, match="reserved"):
        D.plan_study("ab", _conds("gt", "b"), ["c"])
    with pytest.raises(InputError, match="unknown condition"):
        D.parse_pairs(["a,zz"], _conds("a", "b"))
    with pytest.raises(InputError, match="NAME=PRED_DIR"):
        D.parse_condition("nodir")
    c = D.parse_condition("late=gt:lag_ms=100")
    assert c.source is None and c.transform.lag_ms == 100


# ------------------------------------------------------------------------------------------------
# Making a study (rendered)
# ------------------------------------------------------------------------------------------------
def test_ab_study_manifest_stimuli_and_page(ab_study):
    from p3d.provenance import file_sha256
    from p3d.viz.render import probe_mp4

    manifest, sha = load_manifest(ab_study)
    assert manifest["design"] == "ab" and len(manifest["trials"]) == 4  # 2 clips x 1 pair + 2 checks
    assert manifest["pairs"] == [["m/base", "m/ours"]]
    assert len(manifest["stimuli"]) == 8
    for s in manifest["stimuli"].values():
        path = ab_study / s["file"]
        assert path.exists() and file_sha256(path) == s["sha256"]
        info = probe_mp4(path)
        assert info["audio_codec"] == "aac" and info["n_frames"] == s["n_frames"] == 8
    for info in manifest["clips"].values():
        assert info["neutral"].startswith("template of id")
        assert {v["conditioning_identity"] for v in info["sources"].values()} == {"idX"}
    assert manifest["counterbalance"]["overall"] == {"m/base": [2, 2], "m/ours": [2, 2]}
    checks = [t for t in manifest["trials"] if t["attention_check"]]
    assert len(checks) == 2 and all(manifest["stimuli"][t["correct"]]["condition"] == "gt" for t in checks)
    assert sorted(p["id"] for p in manifest["participants"]) == [f"P0{i}" for i in range(1, 7)]
    page = (ab_study / "survey.html").read_text()
    assert sha in page and manifest["study_id"] in page
    assert "m/base" not in page and "m/ours" not in page and '"correct"' not in page  # blinded
    assert "<script src" not in page and "http" not in page.split("<script")[1]  # self-contained
    data = json.loads(page.split('id="study-data">')[1].split("</script>")[0])
    assert set(data["trials"]) == {t["id"] for t in manifest["trials"]}
    assert (ab_study / "responses").is_dir()


def test_rank_study_levels(rank_study):
    manifest, _ = load_manifest(rank_study)
    assert manifest["rank_over"] == "intensity" and len(manifest["trials"]) == 4 and len(manifest["stimuli"]) == 12
    main_stim = [s for s in manifest["stimuli"].values() if s["role"] == "main"]
    ref = manifest["clips"][main_stim[0]["clip"]]["speech_reference_gain_db"]
    for s in main_stim:
        assert s["gain_db"] == pytest.approx(ref + (-9, 0, 9)[s["speech_level"] - 1], abs=1e-3)
        assert s["lip_scale"] == (0.5, 1.0, 1.5)[s["lip_level"] - 1]
    assert "lip level" in manifest["variants"]["definition"]


def test_make_refuses_to_overwrite(ab_study, data, tmp_path):
    with pytest.raises(InputError, match="--overwrite"):
        make_ab_study(data, ab_study)
    copy = tmp_path / "copy"
    shutil.copytree(ab_study, copy)
    (copy / "responses" / "x.json").write_text("{}")
    with pytest.raises(InputError, match="move them away"):
        make_ab_study(data, copy, overwrite=True)


def test_make_cli_bad_input(tmp_path, capsys):
    assert main(["study", "make", "--design", "ab", "--gt", str(tmp_path / "nope"), "--out", str(tmp_path / "s"),
                 "--conditions", "a=gt", "b=gt:lip=0.5"]) == 2
    assert "folder not found" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Statistics against hand values
# ------------------------------------------------------------------------------------------------
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


def test_fleiss_kappa_matches_statsmodels():
    from statsmodels.stats import inter_rater  # pinned in the test extra
    rng = np.random.default_rng(1)
    table = np.array([rng.multinomial(7, [0.5, 0.3, 0.2]) for _ in range(12)])
    assert stats.fleiss_kappa(table) == pytest.approx(inter_rater.fleiss_kappa(table, method="fleiss"))


def test_kendall_w_and_spearman_by_hand():
    # R = (4, 6, 8), mean 6, S = 8; W = 12 * 8 / (3^2 (3^3 - 3)) = 96 / 216
    assert stats.kendall_w(np.array([[1, 2, 3], [1, 3, 2], [2, 1, 3]])) == pytest.approx(96 / 216)
    assert stats.kendall_w(np.array([[3, 2, 1], [1, 2, 3]])) == pytest.approx(0.0)
    assert stats.kendall_w(np.array([[1, 2, 3], [10, 20, 30]])) == pytest.approx(1.0)
    # rho = 1 - 6 sum d^2 / (n (n^2 - 1)): d = (0, -1, 1) -> 1 - 12/24
    assert stats.spearman(np.array([3, 1, 2]), np.array([3, 2, 1])) == pytest.approx(0.5)
    assert math.isnan(stats.spearman(np.array([1, 1, 1]), np.array([1, 2, 3])))


# ------------------------------------------------------------------------------------------------
# Analysis of FIXTURE responses (invented for the tests; not collected from people)
# ------------------------------------------------------------------------------------------------
def fixture_response(manifest: dict, sha: str, pid: str, picks: dict[str, object]) -> dict:
    """A FIXTURE answer file: ``picks`` maps trial id -> the chosen stimulus id (A/B) or {stimulus: score}."""
    person = next(p for p in manifest["participants"] if p["id"] == pid)
    trials = {t["id"]: t for t in manifest["trials"]}
    answers = []
    for pos, tid in enumerate(person["order"], start=1):
        if tid not in picks:
            continue
        shown = [trials[tid]["stimuli"][i] for i in trials[tid]["layouts"][person["group"]]]
        pick = picks[tid]
        if isinstance(pick, dict):
            answer = ";".join(f"{'ABC'[j]}={pick[s]}" for j, s in enumerate(shown))
            answers.append({"trial_id": tid, "position": pos, "answer": answer, "chosen": None, "ranks": pick,
                            "confidence": None, "shown_at": "2025-01-01T10:00:00.000Z",
                            "answered_at": "2025-01-01T10:00:09.000Z", "rt_ms": 9000})
        else:
            answers.append({"trial_id": tid, "position": pos, "answer": "AB"[shown.index(pick)], "chosen": pick,
                            "ranks": None, "confidence": 4, "shown_at": "2025-01-01T10:00:00.000Z",
                            "answered_at": "2025-01-01T10:00:05.000Z", "rt_ms": 5000})
    return {"format": "p3d-study-responses/1", "study_id": manifest["study_id"], "manifest_sha256": sha,
            "participant_id": pid, "group": person["group"], "started_at": "2025-01-01T10:00:00.000Z",
            "finished_at": "2025-01-01T10:05:00.000Z", "complete": True, "user_agent": "FIXTURE", "answers": answers}


def _as_csv(obj: dict) -> str:
    rows = []
    for a in obj["answers"]:
        ranks = ";".join(f"{k}:{v}" for k, v in a["ranks"].items()) if a["ranks"] else ""
        rows.append({**{k: obj[k] for k in ("study_id", "manifest_sha256", "participant_id", "group")}, **a,
                     "ranks": ranks})
    from p3d.study.survey import CSV_COLUMNS

    return pd.DataFrame(rows)[list(CSV_COLUMNS)].to_csv(index=False)


@pytest.fixture()
def ab_responses(ab_study, tmp_path):
    """FIXTURE answers for the A/B study: P01-P05 pass both checks; P06 fails one (and picks 'base' always).

    Main trials X (first clip) and Y (second clip); 'ours' chosen by: X: P01-P04 (P05 'base');
    Y: P01-P03 (P04, P05 'base'). So 7 of 10 answers prefer 'ours'.
    """
    manifest, sha = load_manifest(ab_study)
    main_trials = sorted((t for t in manifest["trials"] if not t["attention_check"]), key=lambda t: t["clip"])
    checks = [t for t in manifest["trials"] if t["attention_check"]]
    x, y = main_trials

    def ours(t):
        return t["stimuli"][1]

    def base(t):
        return t["stimuli"][0]

    good_checks = {t["id"]: t["correct"] for t in checks}
    picks = {
        "P01": {x["id"]: ours(x), y["id"]: ours(y)},
        "P02": {x["id"]: ours(x), y["id"]: ours(y)},
        "P03": {x["id"]: ours(x), y["id"]: ours(y)},
        "P04": {x["id"]: ours(x), y["id"]: base(y)},
        "P05": {x["id"]: base(x), y["id"]: base(y)},
    }
    folder = ab_study / "responses"
    for pid, p in picks.items():
        obj = fixture_response(manifest, sha, pid, {**p, **good_checks})
        if pid in {"P02", "P04"}:  # some as CSV, as the page's CSV export
            (folder / f"{pid}.csv").write_text(_as_csv(obj))
        else:
            (folder / f"{pid}.json").write_text(json.dumps(obj))
    bad = {checks[0]["id"]: next(s for s in checks[0]["stimuli"] if s != checks[0]["correct"]),
           checks[1]["id"]: checks[1]["correct"], x["id"]: base(x), y["id"]: base(y)}
    (folder / "P06.json").write_text(json.dumps(fixture_response(manifest, sha, "P06", bad)))
    yield folder
    for f in folder.iterdir():
        f.unlink()


def test_ab_analysis_reproduces_hand_statistics(ab_study, ab_responses):
    res = A.analyze(ab_study, n_resamples=200)
    people = res.participants.set_index("participant")
    assert list(people.index) == ["P01", "P02", "P03", "P04", "P05", "P06"]
    assert not people.loc["P06", "included"] and people.loc["P06", "checks_failed"] == 1
    assert people.loc[["P01", "P02", "P03", "P04", "P05"], "included"].all()
    row = res.tables["ab_preferences"].iloc[0]
    assert (row.condition_a, row.condition_b, row.model, row.comparison) == ("m/base", "m/ours", "m", "base vs ours")
    assert row.responses == 10 and row.participants == 5
    assert row.prefer_b_pct == pytest.approx(70.0) and row.prefer_a_pct == pytest.approx(30.0)
    assert row.p_binomial == pytest.approx(352 / 1024)
    assert (row.b_ci95_low_pct, row.b_ci95_high_pct) == pytest.approx((39.68, 89.22), abs=0.01)
    # participants' majorities: P01-P03 ours, P04 tie (dropped), P05 base -> 3 of 4: p = 2 * 5/16
    assert (row.participants_prefer_b, row.participants_prefer_a) == (3, 1)
    assert row.p_participants == pytest.approx(10 / 16)
    assert row.mean_confidence == pytest.approx(4.0)
    kappa = res.tables["agreement"].iloc[0]
    assert kappa.value == pytest.approx(-0.08 / 0.42) and kappa["items"] == 2 and kappa.raters == 5
    out = ab_study / "analysis_test"
    written = A.write_analysis(res, out)
    assert (out / "ab_preferences.csv").exists() and (out / "ab_preferences.md").exists()
    assert json.loads((out / "summary.json").read_text())["included"] == 5
    assert out / "summary.json" in written
    shutil.rmtree(out)


def test_analyze_cli(ab_study, ab_responses, capsys):
    files = sorted(str(p) for p in ab_responses.iterdir())
    assert main(["study", "analyze", *files, "--bootstrap", "100"]) == 0
    text = capsys.readouterr().out
    assert "5 of 6 participants included" in text and "excluded P06" in text
    table = pd.read_csv(ab_study / "analysis" / "ab_preferences.csv")
    assert table["prefer_b_pct"].iloc[0] == pytest.approx(70.0)
    shutil.rmtree(ab_study / "analysis")


def test_answer_files_are_checked(ab_study, tmp_path):
    manifest, sha = load_manifest(ab_study)
    t = next(t for t in manifest["trials"] if not t["attention_check"])
    good = fixture_response(manifest, sha, "P01", {t["id"]: t["stimuli"][0]})

    def attempt(obj, match):
        path = tmp_path / "r.json"
        path.write_text(json.dumps(obj))
        with pytest.raises(InputError, match=match):
            A.load_responses([path], manifest, sha)

    attempt({**good, "manifest_sha256": "0" * 64}, "different manifest")
    attempt({**good, "participant_id": "P99"}, "unknown participant")
    attempt({**good, "group": 1}, "group")
    attempt({**good, "answers": [{**good["answers"][0], "chosen": "v9999", "answer": ""}]}, "not one of its videos")
    attempt({**good, "answers": good["answers"] * 2}, "answered twice")
    attempt({"format": "other"}, "not a p3d study answer file")
    with pytest.raises(InputError, match="no answer files"):
        A.load_responses([], manifest, sha)
    with pytest.raises(InputError, match="not found"):
        A.load_responses([tmp_path / "missing.json"], manifest, sha)


def test_rank_analysis_reproduces_hand_statistics(rank_study, tmp_path):
    """FIXTURE scores (3 = most preferred) by lip level 1/2/3, per speech level:
    P01: s1 (3, 2, 1), s2 (1, 3, 2), s3 (1, 2, 3);  P02: s1 (1, 2, 3), s2 (2, 3, 1), s3 (1, 2, 3).
    Both pass the check (the GT video scored 3)."""
    manifest, sha = load_manifest(rank_study)
    stim = manifest["stimuli"]
    table = {"P01": {1: (3, 2, 1), 2: (1, 3, 2), 3: (1, 2, 3)}, "P02": {1: (1, 2, 3), 2: (2, 3, 1), 3: (1, 2, 3)}}
    for pid, scores in table.items():
        picks = {}
        for t in manifest["trials"]:
            if t["attention_check"]:
                others = [s for s in t["stimuli"] if s != t["correct"]]
                picks[t["id"]] = {t["correct"]: 3, others[0]: 1, others[1]: 2}
            else:
                picks[t["id"]] = {s: scores[t["speech_level"]][stim[s]["lip_level"] - 1] for s in t["stimuli"]}
        (tmp_path / f"{pid}.json").write_text(json.dumps(fixture_response(manifest, sha, pid, picks)))
    res = A.analyze(rank_study, [tmp_path], n_resamples=200)
    assert res.summary["included"] == 2
    cells = res.tables["rank_intensity"].set_index(["speech_level", "lip_level"])["mean_score"]
    hand = {(1, 1): 2, (1, 2): 2, (1, 3): 2, (2, 1): 1.5, (2, 2): 3, (2, 3): 1.5, (3, 1): 1, (3, 2): 2, (3, 3): 3}
    for cell, value in hand.items():
        assert cells[cell] == pytest.approx(value)
    grid = res.tables["rank_intensity_grid"]
    assert grid.shape == (3, 4) and grid.iloc[1, 2] == pytest.approx(3.0)
    matched = res.tables["rank_intensity_matched"].iloc[0]
    assert (matched.trials, matched.top_choice_matches_speech) == (6, 5)
    assert matched.p_binomial_vs_chance == pytest.approx(13 / 729)
    # Kendall's W per trial: s1 R = (4, 4, 4) -> 0; s2 R = (3, 6, 3), S = 6 -> 12*6/(4*24) = 0.75; s3 -> 1
    w = res.tables["agreement"].iloc[0]
    assert w.value == pytest.approx((0 + 0.75 + 1) / 3) and (w["min"], w["max"]) == (0.0, 1.0)
    ci = res.tables["rank_intensity"][["ci95_low", "mean_score", "ci95_high"]].to_numpy()
    assert np.all(ci[:, 0] <= ci[:, 1] + 1e-12) and np.all(ci[:, 1] <= ci[:, 2] + 1e-12)


def _condition_manifest() -> tuple[dict, str]:
    """A hand-made FIXTURE manifest of a condition-ranking study (3 conditions x 2 clips, no rendering)."""
    conds = ["gt", "ff", "ct"]
    stimuli, trials = {}, []
    n = 0
    for c, clip in enumerate(["c1", "c2"]):
        ids = []
        for cond in conds:
            n += 1
            sid = f"v{n:04d}"
            src = f"/data/{clip}.npy" if cond == "gt" else f"/pred/{cond}/{clip}_condition_x.npy"
            stimuli[sid] = {"condition": cond, "source_file": src, "lip_level": None, "speech_level": None,
                            "clip": clip}
            ids.append(sid)
        trials.append({"id": f"q{c + 1:02d}", "kind": "rank", "clip": clip, "stimuli": ids, "conditions": conds,
                       "layouts": [[0, 1, 2], [1, 2, 0], [2, 0, 1]], "attention_check": False, "correct": None})
    manifest = {"format": "p3d-study/1", "study_id": "fixture", "design": "rank", "rank_over": "conditions",
                "conditions": [{"name": c, "transform": V.Transform().to_dict()} for c in conds],
                "stimuli": stimuli, "trials": trials,
                "participants": [{"id": "P01", "group": 0, "order": ["q01", "q02"]},
                                 {"id": "P02", "group": 1, "order": ["q02", "q01"]}]}
    return manifest, "f" * 64


def test_table_s3_spearman_by_hand(tmp_path):
    """FIXTURE human scores (gt, ff, ct): P01 c1 (3, 2, 1), c2 (3, 1, 2); P02 c1 (2, 3, 1), c2 (1, 2, 3).
    LVE (gt, ff, ct) = (0, 1, 2) on both clips -> metric ranks (3, 2, 1): rho P01 = (1 + 0.5)/2,
    P02 = (0.5 - 1)/2 -> mean 0.25. PLRS c1 (0.5, 0.4, 0.3) -> (3, 2, 1), c2 (0.5, 0.3, 0.4) -> (3, 1, 2):
    rho P01 = (1 + 1)/2, P02 = (0.5 - 0.5)/2 -> mean 0.5."""
    manifest, sha = _condition_manifest()
    human = {"P01": {"c1": (3, 2, 1), "c2": (3, 1, 2)}, "P02": {"c1": (2, 3, 1), "c2": (1, 2, 3)}}
    for pid, by_clip in human.items():
        picks = {t["id"]: dict(zip(t["stimuli"], by_clip[t["clip"]])) for t in manifest["trials"]}
        (tmp_path / f"{pid}.json").write_text(json.dumps(fixture_response(manifest, sha, pid, picks)))
    answers = A.load_responses([tmp_path], manifest, sha)
    plrs = {("gt", "c1"): 0.5, ("ff", "c1"): 0.4, ("ct", "c1"): 0.3, ("gt", "c2"): 0.5, ("ff", "c2"): 0.3,
            ("ct", "c2"): 0.4}
    lve = {"gt": 0.0, "ff": 1.0, "ct": 2.0}
    metrics = {}
    for cond in ("gt", "ff", "ct"):
        folder = tmp_path / f"eval_{cond}"
        folder.mkdir()
        rows = [{"pred": Path(s["source_file"]).name, "lve": lve[cond], "plrs": plrs[(cond, s["clip"])]}
                for s in manifest["stimuli"].values() if s["condition"] == cond]
        pd.DataFrame(rows).to_csv(folder / "per_clip.csv", index=False)
        metrics[cond] = folder
    s3 = A.metric_correlation(answers, manifest, metrics, n_resamples=200).set_index("metric")
    assert s3.loc["lve", "spearman_rho"] == pytest.approx(0.25)
    assert s3.loc["plrs", "spearman_rho"] == pytest.approx(0.5)
    assert s3.loc["lve", "participants"] == 2 and s3.loc["lve", "answers"] == 4
    assert "mtm_ms" not in s3.index  # not in the per-clip files
    ranks = A.condition_ranks(answers, manifest, n_resamples=200).set_index("condition")
    assert ranks.loc["gt", "mean_score"] == pytest.approx((3 + 1.5) / 2)
    assert ranks.loc["ff", "mean_score"] == pytest.approx((1.5 + 2.5) / 2)
    with pytest.raises(InputError, match="not a condition"):
        A.metric_correlation(answers, manifest, {"zz": tmp_path / "eval_gt"})


def test_make_or_reuse_keeps_a_study_with_answers(data, tmp_path):
    from p3d.study.make import make_or_reuse, verify_study

    out = tmp_path / "s"
    cfg = MakeConfig(design="ab", gt=data, out=out, fps=FPS, size=32, participants=2, clips=1, attention_checks=0,
                     conditions=[D.parse_condition("a=gt:lip=0.5"), D.parse_condition("b=gt")])
    first = make_or_reuse(cfg, progress=False)
    assert verify_study(out) == []
    again = make_or_reuse(cfg, progress=False)
    assert again["created"] == first["created"] and again["study_id"] == first["study_id"]  # reused
    (out / "responses" / "P01.json").write_text("{}")
    with pytest.raises(InputError, match="move them away"):  # other options would invalidate the answers
        make_or_reuse(dataclasses.replace(cfg, seed=1), progress=False)
    (out / "responses" / "P01.json").unlink()
    (out / first["stimuli"]["v0001"]["file"]).write_bytes(b"broken")
    assert "differs" in verify_study(out)[0]
    rebuilt = make_or_reuse(cfg, progress=False)
    assert verify_study(out) == [] and rebuilt["stimuli"]["v0001"]["sha256"] == first["stimuli"]["v0001"]["sha256"]


def test_stand_ins_are_gt_manipulations(tmp_path):
    from tiny_corpus import write_tiny_corpus

    from p3d.corpus import Corpus
    from p3d.metrics import lip_intensity
    from p3d.study.make import write_stand_ins

    root = write_tiny_corpus(tmp_path / "c", identities={"train": 1, "test": 1}, clips_per_identity=2,
                             lip_video=False, fps=20, model_fps=10)
    folders = write_stand_ins(root, tmp_path / "stand_in")
    corpus = Corpus.open(root)
    for clip in corpus.select("test"):
        gt = corpus.vertices(clip)
        ref = np.load(folders["gt_model_rate"] / f"{clip.stem}.npy")
        damped = np.load(folders["damped"] / f"{clip.stem}.npy")
        late = np.load(folders["late"] / f"{clip.stem}.npy")
        assert ref.shape == damped.shape == late.shape == gt.shape and np.array_equal(ref, gt)
        lips = corpus.topology.lips
        assert lip_intensity(damped, lips) == pytest.approx(0.5 * lip_intensity(gt, lips), rel=1e-5)
        assert np.array_equal(late[1:], gt[:-1]) and np.array_equal(late[0], gt[0])  # 100 ms = 1 frame at 10 fps
    assert sorted(p.name for p in folders["damped"].iterdir()) == sorted(f"{c.stem}.npy" for c in corpus.select("test"))
    with pytest.raises(InputError, match="audio"):
        write_stand_ins(root, tmp_path / "x", variants={"loud": V.Transform(gain_db=6)})
