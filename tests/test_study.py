"""Tests for p3d.study: variants, designs and counterbalancing, rendering a tiny study, and the analysis
on FIXTURE responses (made up in this file, labelled as fixtures: they are not data from people),
checked against hand-computed statistics."""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from p3d import stats
from p3d.cli import main
from p3d.errors import InputError
from p3d.study import analyze as A
from p3d.study import design as D
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


def test_a_lip_lag_must_be_whole_frames():
    """100 ms at 25 fps is 2.5 frames: it was rounded half to even to 2 frames (80 ms) without a word. A lag
    that is not whole frames is refused, naming the option and the nearest exact lags; whole frames pass."""
    assert V.lag_frames(120, 25) == 3 and V.lag_frames(100, 10) == 1 and V.lag_frames(1000 / 30, 30) == 1
    assert V.lag_frames(-80, 25) == -2 and V.lag_frames(0, 25) == 0
    with pytest.raises(InputError, match=r"^--conditions late: lag_ms=100 is 2\.5 frames at 25 fps.*80 and 120 ms$"):
        V.lag_frames(100, 25, what="--conditions late")
    with pytest.raises(InputError, match="480 and 520 ms"):
        V.delay_lips(np.zeros((30, 2, 3)), 500, fps=25)
    assert V.whole_frame_lag_ms(500, 25) == 520 and V.whole_frame_lag_ms(500, 30) == 500
    assert V.whole_frame_lag_ms(-500, 25) == -520 and V.whole_frame_lag_ms(0, 25) == 0
    # a condition's lag (the manipulation under study) is refused at planning; the checks' lag is made whole
    with pytest.raises(InputError, match="--conditions late: lag_ms=100 is 2.5 frames at 25 fps"):
        D.plan_study("ab", [D.parse_condition("ok=gt"), D.parse_condition("late=gt:lag_ms=100")], ["c"], fps=25)
    assert D.plan_study("ab", [D.parse_condition("ok=gt"), D.parse_condition("late=gt:lag_ms=120")], ["c"], fps=25)
    for fps, lag in ((25, 520), (30, 500)):
        plan = D.plan_study("rank", [], ["c0", "c1"], attention_checks=2, fps=fps)
        lags = {s.transform.lag_ms for s in plan.stimuli.values() if s.role == "check" and s.transform.lag_ms}
        assert lags == {lag} and f"lip_lag_{lag}ms" in {k for t in plan.trials for k in (t.check_kinds or [])}


def test_make_refuses_a_condition_lag_and_records_the_checks_lag(data, tmp_path, caplog):
    """At 10 fps (100 ms frames): a condition lagged 150 ms is refused before anything is written; checks asked
    to shift by 250 ms delay the lips by 300 ms (3 frames), which the manifest records, with a warning."""
    out = tmp_path / "s"
    cfg = MakeConfig(design="ab", gt=data, out=out, fps=FPS, size=32, participants=2, clips=1, attention_checks=0,
                     conditions=[D.parse_condition("a=gt"), D.parse_condition("late=gt:lag_ms=150")])
    with pytest.raises(InputError, match="--conditions late: lag_ms=150 is 1.5 frames at 10 fps.*100 and 200 ms"):
        make_study(cfg, progress=False)
    assert not out.exists()
    with caplog.at_level("WARNING", logger="p3d.study.design"):
        manifest = make_rank_study(data, out, check_shift_ms=250, attention_checks=2, size=32)
    assert "delay the lips by 300 ms" in caplog.text
    assert manifest["attention"]["lip_lag_ms"] == [300.0]
    lagged = [s for s in manifest["stimuli"].values() if s["role"] == "check" and s["transform"]["lag_ms"]]
    assert lagged and all(s["lag_frames"] == 3 and s["check_kind"] == "lip_lag_300ms" for s in lagged)


def test_stand_in_lags_are_whole_frames(tmp_path, caplog):
    """At 25 fps the default 'late' stand-in (100 ms) delays the lips by 120 ms (3 frames), with a warning and
    recorded in stand_ins.json; a variant given with a lag that is not whole frames is refused."""
    from tiny_corpus import write_tiny_corpus

    from p3d.study.make import write_stand_ins

    root = write_tiny_corpus(tmp_path / "c", identities={"train": 1, "test": 1}, clips_per_identity=1,
                             lip_video=False, fps=25, seconds=1.0)
    with pytest.raises(InputError, match="stand-in 'late': lag_ms=100 is 2.5 frames at 25 fps"):
        write_stand_ins(root, tmp_path / "x", variants={"late": V.Transform(lag_ms=100)})
    with caplog.at_level("WARNING", logger="p3d.study.make"):
        folders = write_stand_ins(root, tmp_path / "s")
    assert "using 120 ms" in caplog.text
    record = json.loads((tmp_path / "s" / "stand_ins.json").read_text())
    late = record["variants"]["late"]
    assert record["fps"] == 25 and late["lag_ms"] == 120 and late["lag_frames"] == 3
    ref, lagged = (np.load(next(folders[n].iterdir())) for n in ("gt_model_rate", "late"))
    assert np.array_equal(lagged[3:], ref[:-3]) and np.array_equal(lagged[0], ref[0])


def test_study_sources_and_condition_metrics(tmp_path):
    """Notebook 09's conditions and their p3d eval: the stand-ins (or the named folders) with the GT at the model
    rate; each folder scored as p3d eval scores it, the report written per condition, no PLRS without an evaluator."""
    from tiny_corpus import write_tiny_corpus

    from p3d.evaluate import EvalConfig, evaluate, summary_values
    from p3d.study.make import condition_metrics, study_sources

    root = write_tiny_corpus(tmp_path / "c", identities={"train": 1, "test": 1}, clips_per_identity=2,
                             lip_video=False, fps=30, seconds=1.0)
    sources, reference = study_sources(root, tmp_path / "stand_in")
    assert list(sources) == ["damped", "late"] and reference == tmp_path / "stand_in" / "gt_model_rate"
    named, ref2 = study_sources(root, tmp_path / "named", {"m/base": str(sources["damped"])})
    assert named == {"m/base": sources["damped"]} and ref2 == tmp_path / "named" / "gt_model_rate"
    assert sorted(p.name for p in (tmp_path / "named").iterdir()) == ["gt_model_rate", "stand_ins.json"]
    dirs, summary = condition_metrics(root, {"gt": reference, "m/base": sources["damped"]}, tmp_path / "eval",
                                      evaluator=tmp_path / "missing.pt", seed=3)
    assert dirs == {"gt": tmp_path / "eval" / "gt", "m/base": tmp_path / "eval" / "m__base"}
    assert (dirs["m/base"] / "per_clip.csv").is_file()
    assert list(summary["condition"]) == ["gt", "m/base"] and "plrs" not in summary
    assert summary["LVE (m²)"].iloc[0] == 0 and summary["LVE (m²)"].iloc[1] > 0
    direct = evaluate(EvalConfig(pred=sources["damped"], gt=root, audio=root, fps=30, gt_fps=30, seed=3,
                                 topology=str(root / "topology.npz"), bootstrap_resamples=500, metrics=("lve", "mtm")),
                      progress=False)
    assert summary.iloc[1].drop("condition").to_dict() == pytest.approx(
        {("LVE (m²)" if k == "lve" else k): v for k, v in summary_values(direct.summary).items()}, nan_ok=True)


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
    # levels out of order would pair loud speech with small lips as "matched" in the analysis: refused
    for scales, gains in (((1.5, 1, 0.5), (-9, 0, 9)), ((0.5, 1, 1.5), (9, 0, -9)), ((0.5, 0.5, 1.5), (-9, 0, 9))):
        with pytest.raises(InputError, match="ascending order"):
            D.plan_study("rank", [], ["c0"], lip_scales=scales, speech_gains_db=gains)
    for scales, gains in (((0.5, float("nan")), (-9, 0)), ((0.5, 1), (-9, float("inf"))), ((0.5, True), (0,))):
        with pytest.raises(InputError, match="expected finite numbers"):
            D.plan_study("rank", [], ["c0"], lip_scales=scales, speech_gains_db=gains)


def _slot_counts(plan: D.Plan, group: int) -> tuple[dict, dict]:
    """In ``group``'s layouts of the main trials: how often the video matched to the speech level (lip level =
    speech level) and each (speech level, lip level) cell is in each position."""
    k = plan.n_groups
    matched, cells = [0] * k, {}
    for t in plan.trials:
        if t.attention_check:
            continue
        for slot, idx in enumerate(t.layouts[group]):
            s = plan.stimuli[t.stimuli[idx]]
            matched[slot] += s.lip_level == s.speech_level
            cells.setdefault((s.speech_level, s.lip_level), [0] * k)[slot] += 1
    return matched, cells


@pytest.mark.parametrize("n_clips", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("scales, gains", [((0.5, 1.5), (-6, 6)), ((0.5, 1, 1.5), (-9, 0, 9)),
                                           ((0.5, 0.8, 1.2, 1.5), (-9, -3, 3, 9)), ((0.5, 1, 1.5), (-6, 6)),
                                           ((0.5, 1, 1.5), (-9, -3, 3, 9)), ((0.5, 1, 1.5, 2), (-9, 0, 9, 12, 15, 18))])
def test_rank_intensity_positions_are_balanced_for_each_participant(n_clips, scales, gains):
    """Table 1 left: for every participant (group), the video whose lip level matches the speech level takes
    every screen position equally often (+-1), as does each lip level and each (speech, lip) cell, so a
    participant who always prefers one position cannot look like one who prefers the matched intensity
    (the rotation was the trial index: with as many speech as lip levels, the matched video of a group was
    always in the same position)."""
    plan = D.plan_study("rank", [], [f"c{i}" for i in range(n_clips)], lip_scales=scales, speech_gains_db=gains,
                        attention_checks=2, participants=len(scales))
    by_group = D.layout_counts(plan)["by_group"]
    for group in range(plan.n_groups):
        matched, cells = _slot_counts(plan, group)
        if len(scales) == len(gains):
            assert max(matched) - min(matched) <= 1, (group, matched)
        for cell, per_slot in cells.items():
            assert max(per_slot) - min(per_slot) <= 1, (group, cell, per_slot)
        for level, per_slot in by_group[group].items():  # layout_counts: each lip level in each position
            mean = sum(per_slot) / len(per_slot)
            assert all(abs(c - mean) <= 1 for c in per_slot), (group, level, per_slot)
    for t in plan.trials:  # still a Latin square over the groups
        for pos in range(len(scales)):
            assert sorted(layout[pos] for layout in t.layouts) == list(range(len(scales)))


def test_study_conditions_of_model_predictions_and_of_stand_ins():
    """Notebook 09's studies: model predictions are compared within each model (A/B) and the base models are ranked
    with the GT, at most five; GT stand-ins are each compared with the GT and all ranked with it."""
    models = ["faceformer", "codetalker", "selftalk", "m4", "m5", "m6"]
    sources = {f"{m}/{v}": Path(f"/p/{m}_{v}") for m in models for v in ("base", "ours")}
    ab, pairs, ranking = D.study_conditions(sources, stand_ins=False)
    assert [c.name for c in ab] == list(sources) and pairs is None
    assert [(c.name, c.source) for c in ranking] == [("gt", None)] + [(f"{m}/base", Path(f"/p/{m}_base"))
                                                                     for m in models[:D.MAX_RANKED_CONDITIONS]]
    assert D.default_pairs(ab)[:2] == [("faceformer/base", "faceformer/ours"), ("codetalker/base", "codetalker/ours")]
    ab, pairs, ranking = D.study_conditions({"damped": Path("/s/damped"), "late": Path("/s/late")}, stand_ins=True)
    assert [(c.name, c.source) for c in ab] == [("damped", Path("/s/damped")), ("late", Path("/s/late")), ("gt", None)]
    assert pairs == [("damped", "gt"), ("late", "gt")]
    assert [c.name for c in ranking] == ["gt", "damped", "late"]
    with pytest.raises(InputError, match="no prediction folders"):
        D.study_conditions({}, stand_ins=True)


def test_study_size_per_preset():
    """Notebook 09's clips per study and video size: full builds the cpu studies."""
    from p3d.study.make import study_size

    assert study_size("smoke") == (2, {"size": 128, "max_seconds": 1.5})
    assert study_size("cpu") == study_size("full") == (6, {"size": 320, "max_seconds": 4.0})
    assert study_size("paper") == (12, {"size": 400, "max_seconds": None})
    with pytest.raises(InputError):
        study_size("huge")


def test_paper_study_tables_quote_the_paper_labelled():
    from p3d import paper

    prefs, s3 = A.paper_study_tables()
    assert prefs.iloc[0].to_dict() == {"table": f"Table 1 right ({paper.TABLE1_RIGHT.participants} participants)",
                                       "comparison": "temporally vs expressively synchronized", "model": "-",
                                       "A %": 17.4, "B %": 82.6, "source": "paper (not measured here)"}
    n = 1 + len(paper.TABLE_S4.rows) + len(paper.TABLE_S5.rows) + sum(len(p.rows) for p in paper.TABLE_S6.values())
    assert len(prefs) == n and set(prefs["source"]) == {"paper (not measured here)"}
    ff = prefs[(prefs["model"] == "FaceFormer") & prefs["table"].str.startswith("Table S4")].iloc[0]
    assert (ff["A %"], ff["B %"]) == paper.TABLE_S4.rows["FaceFormer"] and "lip sync" in ff["table"]
    assert s3[["metric", "Spearman rho"]].values.tolist() == [["LVE", 0.166], ["PLRS", 0.437]]
    assert s3["source"].iloc[0] == f"paper Table S3, {paper.TABLE_S3.participants} participants (not measured here)"


def test_paper_typos_finds_the_rows_that_do_not_sum_to_100():
    """Notebook 09's note on the paper's misprint: the one A/B row of the paper that does not sum to 100 %, and any
    row beyond the rounding of one decimal in a table given."""
    prefs, _ = A.paper_study_tables()
    assert A.paper_typos(prefs) == ["CodeTalker (c) in Table S6 reads 19.0% / 91.0% in the paper (sums to 110%: "
                                    "a typo there)."]
    rows = pd.DataFrame([{"table": "Table S4 (lip sync, 18 participants)", "comparison": "w/o vs w/ perceptual loss",
                          "model": m, "A %": a, "B %": b} for m, a, b in (("FaceFormer", 13.75, 86.35),
                                                                          ("SelfTalk", 40.0, 50.0))])
    assert A.paper_typos(rows) == ["SelfTalk in Table S4 reads 40.0% / 50.0% in the paper (sums to 90%: a typo there)."]


def test_display_frames_shows_every_variant_at_the_last_ones_darkest_frame():
    """Notebook 09's lip-level figure: the frame where the loudest lip variant is darkest (its mouth widest open),
    the same moment in every variant, clipped to a shorter video's end."""
    bright = np.full((4, 2, 2, 3), 200, np.uint8)
    last = bright.copy()
    last[2] = 10  # the widest-open mouth
    assert V.display_frames([bright, bright, last]) == [2, 2, 2]
    assert V.display_frames([bright[:2], last]) == [1, 2]
    assert V.display_frames([bright]) == [0]  # all equal: the first frame
    with pytest.raises(InputError, match="at least one frame"):
        V.display_frames([bright, bright[:0]])


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
    with pytest.raises(InputError, match="two different conditions of a, b"):  # was a KeyError
        D.plan_study("ab", _conds("a", "b"), ["c"], pairs=[("a", "zz")])
    # a pair given twice, either way round, showed the same two videos twice per clip as separate answers
    for again in (("a", "b"), ("b", "a")):
        with pytest.raises(InputError, match="the pair a,b is given already"):
            D.plan_study("ab", _conds("a", "b"), ["c"], pairs=[("a", "b"), again])
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
    assert len(manifest["stimuli"]) == 8 + 2  # and the practice screen's two
    practice = manifest["practice"]
    assert [manifest["stimuli"][s]["role"] for s in practice["stimuli"]] == ["practice", "practice"]
    assert all(manifest["stimuli"][s]["condition"] == "gt" for s in practice["stimuli"])
    for s in manifest["stimuli"].values():
        path = ab_study / s["file"]
        assert path.exists() and file_sha256(path) == s["sha256"]
        info = probe_mp4(path)
        assert info["audio_codec"] == "aac" and info["n_frames"] == s["n_frames"] == 8
    for info in manifest["clips"].values():
        assert info["neutral"].startswith("template of id")
        assert {v["conditioning_identity"] for v in info["sources"].values()} <= {"idX"}
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
    assert manifest["rank_over"] == "intensity" and len(manifest["trials"]) == 4 and len(manifest["stimuli"]) == 12 + 3
    # the practice clip lies outside the study when the data has another one
    assert manifest["practice"]["clip"] not in {t["clip"] for t in manifest["trials"]}
    assert manifest["clips"][manifest["practice"]["clip"]]["practice_only"]
    main_stim = [s for s in manifest["stimuli"].values() if s["role"] == "main"]
    ref = manifest["clips"][main_stim[0]["clip"]]["speech_reference_gain_db"]
    for s in main_stim:
        assert s["gain_db"] == pytest.approx(ref + (-9, 0, 9)[s["speech_level"] - 1], abs=1e-3)
        assert s["lip_scale"] == (0.5, 1.0, 1.5)[s["lip_level"] - 1]
    assert "lip level" in manifest["variants"]["definition"]


def test_study_overview_and_lip_level_figure(ab_study, rank_study):
    """Notebook 09: one row per study made, and the intensity study's lip variants of its first real trial side
    by side at the loudest lips' darkest frame."""
    import imageio.v3 as iio

    from p3d.study.make import study_overview
    from p3d.viz.study import lip_level_figure

    manifests = {"ab": load_manifest(ab_study)[0], "intensity": load_manifest(rank_study)[0]}
    table = study_overview(manifests, {"ab": ab_study, "intensity": rank_study})
    assert table.to_dict("records")[0] == {"study": "ab", "videos": 10, "trials": 4, "attention checks": 2,
                                           "participant codes": 6, "survey page": str(ab_study / "survey.html")}
    assert table["study"].tolist() == ["ab", "intensity"] and table["videos"].iloc[1] == 15
    m = manifests["intensity"]
    fig = lip_level_figure(m, rank_study)
    trial = next(t for t in m["trials"] if not t["attention_check"])
    stimuli = [m["stimuli"][s] for s in trial["stimuli"]]
    assert [ax.get_title() for ax in fig.axes] == [f"lip level {s['lip_level']} (x{s['lip_scale']:g})"
                                                   for s in stimuli]
    videos = [np.stack(list(iio.imiter(rank_study / s["file"]))) for s in stimuli]
    shown = [ax.get_images()[0].get_array() for ax in fig.axes]
    for img, video, t in zip(shown, videos, V.display_frames(videos)):
        np.testing.assert_array_equal(np.asarray(img), video[t])
    assert tuple(fig.get_size_inches()) == (3 * len(stimuli), 3.2)
    with pytest.raises(InputError, match="not a lip-intensity study"):
        lip_level_figure(manifests["ab"], ab_study)


def test_make_refuses_to_overwrite(ab_study, data, tmp_path):
    with pytest.raises(InputError, match="--overwrite"):
        make_ab_study(data, ab_study)
    copy = tmp_path / "copy"
    shutil.copytree(ab_study, copy)
    (copy / "responses" / "x.json").write_text("{}")
    with pytest.raises(InputError, match="move them away"):
        make_ab_study(data, copy, overwrite=True)
    # the answers moved away, their analysis (study analyze's default --out) would be carried into the new study
    (copy / "responses" / "x.json").unlink()
    (copy / "analysis").mkdir()
    (copy / "analysis" / "ab_shares.csv").write_text("condition,share\n")
    with pytest.raises(InputError, match="analysis holds 1 file"):
        make_ab_study(data, copy, overwrite=True)


def test_make_cli_bad_input(tmp_path, capsys):
    assert main(["study", "make", "--design", "ab", "--gt", str(tmp_path / "nope"), "--out", str(tmp_path / "s"),
                 "--conditions", "a=gt", "b=gt:lip=0.5"]) == 2
    assert "folder not found" in capsys.readouterr().err


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
            "finished_at": "2025-01-01T10:05:00.000Z", "complete": True, "user_agent": "FIXTURE",
            "consent_given": True, "answers": answers}


def _as_csv(obj: dict) -> str:
    rows = []
    for a in obj["answers"]:
        ranks = ";".join(f"{k}:{v}" for k, v in a["ranks"].items()) if a["ranks"] else ""
        rows.append({**{k: obj[k] for k in ("study_id", "manifest_sha256", "participant_id", "group")}, **a,
                     "ranks": ranks, "consent_given": "true"})
    from p3d.study.survey import CSV_COLUMNS, CSV_OPTIONAL_COLUMNS

    return pd.DataFrame(rows)[[*CSV_COLUMNS, *CSV_OPTIONAL_COLUMNS]].to_csv(index=False)


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
    assert row.p_binomial_pooled == pytest.approx(352 / 1024)  # descriptive: the answers pooled
    # the CI resamples participants (P01-P05, sorted; 'ours' answers 2, 2, 2, 1, 0 of 2 each), by hand
    counts = stats.resample_counts(5, 200, 0)
    boot = (counts @ np.array([2, 2, 2, 1, 0])) / (counts @ np.full(5, 2))
    assert (row.b_ci95_low_pct, row.b_ci95_high_pct) == pytest.approx(tuple(100 * np.quantile(boot, [0.025, 0.975])))
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
    # the study folder itself stands for its responses/; a path that does not exist is named
    assert main(["study", "analyze", str(ab_study), "--bootstrap", "100"]) == 0
    assert "5 of 6 participants included" in capsys.readouterr().out
    shutil.rmtree(ab_study / "analysis")
    assert main(["study", "analyze", str(ab_responses / "P99.json"), "--bootstrap", "100"]) == 2
    assert capsys.readouterr().err.strip() == f"p3d study: error: {ab_responses / 'P99.json'}: answer file not found"


def test_analyze_cli_refuses_an_out_under_a_file_before_analysing(ab_study, ab_responses, tmp_path, capsys,
                                                                   monkeypatch):
    """--out under a file was a FileExistsError traceback after the whole analysis; now one line, exit 2, first."""
    (tmp_path / "afile").write_text("x")
    monkeypatch.setattr(A, "analyze", lambda *a, **k: pytest.fail("analysed before checking --out"))
    assert main(["study", "analyze", str(ab_responses), "--out", str(tmp_path / "afile" / "analysis")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file, so the output folder cannot be created" in err[0]


def test_an_analysis_written_again_keeps_no_table_of_the_earlier_one(tmp_path):
    """Analysing a study again without a table the earlier analysis had (Table S3's metric_correlation without
    --metrics) left the old table beside the new summary.json; it is deleted, other files are kept."""
    people = pd.DataFrame({"participant": ["P01"], "included": [True]})
    corr = pd.DataFrame({"metric": ["lve"], "spearman_rho": [0.25]})
    manifest = {"study_id": "fixture"}

    def analysis(tables):
        return A.Analysis(manifest, None, people, tables, {"included": 1, "participants": 1})

    out = tmp_path / "analysis"
    A.write_analysis(analysis({"participants": people, "metric_correlation": corr}), out)
    assert (out / "metric_correlation.csv").is_file() and (out / "metric_correlation.md").is_file()
    (out / "notes.txt").write_text("mine")
    A.write_analysis(analysis({"participants": people, "metric_correlation": corr.iloc[:0]}), out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "participants.csv", "participants.md",
                                                      "summary.json"]


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


def test_a_participant_with_two_different_answer_files_is_refused(ab_study, tmp_path):
    """Two answer files of one participant that differ, as long as each other: the one analysed depended on
    the order of the arguments. Now refused naming both files, in either order; identical copies (the JSON
    and CSV export of one session) are still accepted and give the same answers in either order."""
    manifest, sha = load_manifest(ab_study)
    person = manifest["participants"][0]
    trials = {t["id"]: t for t in manifest["trials"]}
    x = fixture_response(manifest, sha, person["id"], {tid: trials[tid]["stimuli"][1] for tid in person["order"]})
    y = fixture_response(manifest, sha, person["id"], {tid: trials[tid]["stimuli"][0] for tid in person["order"]})
    (tmp_path / "x.json").write_text(json.dumps(x))
    (tmp_path / "y.json").write_text(json.dumps(y))
    (tmp_path / "x.csv").write_text(_as_csv(x))
    for order in (["x.json", "y.json"], ["y.json", "x.json"]):
        with pytest.raises(InputError) as err:
            A.load_responses([tmp_path / name for name in order], manifest, sha)
        assert str(err.value) == (f"participant {person['id']}: {tmp_path / 'x.json'} and {tmp_path / 'y.json'} "
                                  "hold different answers; keep the one answer file to analyse")
    same = [A.load_responses([tmp_path / a, tmp_path / b], manifest, sha) for a, b in
            (("x.json", "x.csv"), ("x.csv", "x.json"))]
    assert len(same[0]) == len(person["order"])
    pd.testing.assert_frame_equal(same[0], same[1])


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
    assert (matched.trials, matched.participants, matched.top_choice_matches_speech) == (6, 2, 5)
    assert matched.p_binomial_pooled == pytest.approx(13 / 729)  # descriptive: the answers pooled
    # over participants: match rates 1 and 2/3 vs 1/3: t = (5/6 - 1/3) / (sd / sqrt 2) = 3, df 1
    assert matched.p_participants_vs_chance == pytest.approx(1 - 2 * np.arctan(3) / np.pi)
    # bootstrap over the 2 participants: a resample's share is 2/3, 5/6 or 1
    assert (matched.ci95_low_pct, matched.ci95_high_pct) == pytest.approx((200 / 3, 100.0))
    # Kendall's W per trial: s1 R = (4, 4, 4) -> 0; s2 R = (3, 6, 3), S = 6 -> 12*6/(4*24) = 0.75; s3 -> 1
    w = res.tables["agreement"].iloc[0]
    assert w.value == pytest.approx((0 + 0.75 + 1) / 3) and (w["min"], w["max"]) == (0.0, 1.0)
    ci = res.tables["rank_intensity"][["ci95_low", "mean_score", "ci95_high"]].to_numpy()
    assert np.all(ci[:, 0] <= ci[:, 1] + 1e-12) and np.all(ci[:, 1] <= ci[:, 2] + 1e-12)


def test_participant_level_intervals_and_tests_hold_their_level_when_answers_cluster():
    """FIXTURE null studies (simulated, fixed seed): 20 participants x 12 answers, each participant with their own
    preference (A/B: share of B ~ Beta(1, 1), mean 1/2; intensity: match rate ~ Beta(0.5, 1), mean 1/3). The
    answers of a participant are not independent, so tests and intervals on the pooled answers are far too
    confident (the pooled binomial tests reject in 33% and 43% of these null studies); the participant-level
    tests must keep about their 5% level (3% and 3% here) and the intervals (a bootstrap over participants)
    cover the truth about 95% of the time (93% and 93%; a Wilson interval of the pooled answers, as before,
    about half the time)."""
    rng = np.random.default_rng(7)
    n_sim, n_people, n_answers = 300, 20, 12
    people = np.repeat([f"P{i:02d}" for i in range(n_people)], n_answers)
    frame = pd.DataFrame({"participant": people, "confidence": np.nan})
    ab_rej = ab_cover = ab_pooled = rk_rej = rk_cover = rk_pooled = 0
    for _ in range(n_sim):
        second = (rng.random((n_people, n_answers)) < rng.beta(1, 1, n_people)[:, None]).ravel()
        row = A._ab_row(frame, "base vs ours", "m", "base", "ours", second, n_resamples=300)
        ab_rej += row["p_participants"] < 0.05
        ab_pooled += row["p_binomial_pooled"] < 0.05
        ab_cover += row["b_ci95_low_pct"] <= 50 <= row["b_ci95_high_pct"]
        hits = (rng.random((n_people, n_answers)) < rng.beta(0.5, 1, n_people)[:, None]).ravel()
        m = A.matched_row(hits, people, 3, n_resamples=300)
        rk_rej += m["p_participants_vs_chance"] < 0.05
        rk_pooled += m["p_binomial_pooled"] < 0.05
        rk_cover += m["ci95_low_pct"] <= 100 / 3 <= m["ci95_high_pct"]
    assert ab_pooled / n_sim > 0.25 and rk_pooled / n_sim > 0.25  # the data would fool the pooled tests
    assert ab_rej / n_sim < 0.09 and rk_rej / n_sim < 0.09
    assert ab_cover / n_sim > 0.88 and rk_cover / n_sim > 0.88


def test_table_titles_name_the_score_range():
    """The grid's title said "1-3" whatever K; it names the study's K (K = 2 here)."""
    manifest = {"variants": {"lip_scales": [0.5, 1.5], "speech_gains_db": [-6, 6]}}
    title = A.table_title("rank_intensity_grid", manifest)
    assert "(1-2, 2 = most preferred)" in title and "1-3" not in title
    assert "chance 1/2" in A.table_title("rank_intensity_matched", manifest)
    assert "(1-K, K = most preferred)" in A.table_title("rank_intensity_grid", {"study_id": "fixture"})


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


# ------------------------------------------------------------------------------------------------
# Malformed answer files, gaming, exclusions (FIXTURE files, invented here)
# ------------------------------------------------------------------------------------------------
def _good_file(ab_study) -> dict:
    manifest, sha = load_manifest(ab_study)
    picks = {t["id"]: (t["correct"] or t["stimuli"][0]) for t in manifest["trials"]}
    return fixture_response(manifest, sha, "P01", picks)


def _with_answer(obj: dict, **fields) -> dict:
    return {**obj, "answers": [{**obj["answers"][0], **fields}, *obj["answers"][1:]]}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


MALFORMED_JSON = [  # (name, file text from the good FIXTURE file, expected in the one-line message)
    ("non-numeric group", lambda g: json.dumps({**g, "group": "one"}), "group: expected an integer"),
    ("boolean group", lambda g: json.dumps({**g, "group": True}), "group: expected an integer"),
    ("answers not a list", lambda g: json.dumps({**g, "answers": "all"}), "answers: expected a list"),
    ("answer not an object", lambda g: json.dumps({**g, "answers": [1, 2]}), "answers[0]: expected an object"),
    ("list as trial id", lambda g: json.dumps(_with_answer(g, trial_id=["q01"])), "answers[0].trial_id"),
    ("deeply nested JSON", lambda g: _nested(200000), "nested too deeply"),
    ("infinite rt", lambda g: json.dumps(_with_answer(g, rt_ms="@")).replace('"@"', "Infinity"),
     "Infinity is not allowed"),
    ("NaN rt", lambda g: json.dumps(_with_answer(g, rt_ms="@")).replace('"@"', "NaN"),
     "NaN is not allowed"),
    ("negative rt", lambda g: json.dumps(_with_answer(g, rt_ms=-5)), "answers[0].rt_ms"),
    ("huge rt", lambda g: json.dumps(_with_answer(g, rt_ms=1e300)), "answers[0].rt_ms"),
    ("confidence out of range", lambda g: json.dumps(_with_answer(g, confidence=9)), "answers[0].confidence"),
    ("confidence not a number", lambda g: json.dumps(_with_answer(g, confidence="high")), "answers[0].confidence"),
    ("participant id a number", lambda g: json.dumps({**g, "participant_id": 1}), "participant_id: expected text"),
    ("ranks of text", lambda g: json.dumps(_with_answer(g, ranks={"v0001": "3"})), "answers[0].ranks"),
    ("consent not a boolean", lambda g: json.dumps({**g, "consent_given": "yes"}), "consent_given"),
    ("practice flag on a real trial", lambda g: json.dumps(_with_answer(g, practice=True)), "answers[0].practice"),
    ("not JSON", lambda g: "{oops", "not readable JSON"),
    ("too large", lambda g: json.dumps({**g, "user_agent": "x" * (A.MAX_ANSWER_FILE_BYTES + 1)}), "limit 5 MB"),
]


@pytest.mark.parametrize("name,text,expected", MALFORMED_JSON, ids=[c[0] for c in MALFORMED_JSON])
def test_malformed_answer_file_is_one_line_and_exit_2(ab_study, tmp_path, capsys, name, text, expected):
    path = tmp_path / "P01.json"
    path.write_text(text(_good_file(ab_study)))
    out = tmp_path / "analysis"
    assert main(["study", "analyze", str(path), "--study", str(ab_study), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert str(path) in err and expected in err, err
    assert not out.exists()


MALFORMED_CSV = [  # (name, column, value, expected)
    ("non-numeric group", "group", "abc", "group: expected an integer"),
    ("infinite rt", "rt_ms", "inf", "rt_ms"),
    ("NaN rt", "rt_ms", "nan", "rt_ms"),
    ("negative rt", "rt_ms", "-1", "rt_ms"),
    ("confidence 0", "confidence", "0", "confidence"),
    ("position text", "position", "first", "position"),
    ("unreadable ranks", "ranks", "v0001=3", "ranks"),
]


@pytest.mark.parametrize("name,column,value,expected", MALFORMED_CSV, ids=[c[0] for c in MALFORMED_CSV])
def test_malformed_csv_answer_file(ab_study, tmp_path, name, column, value, expected):
    manifest, sha = load_manifest(ab_study)
    df = pd.read_csv(__import__("io").StringIO(_as_csv(_good_file(ab_study))), dtype=str, keep_default_na=False)
    df[column] = value
    path = tmp_path / "P01.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match=expected) as info:
        A.load_responses([path], manifest, sha)
    assert str(path) in str(info.value)


def test_omitted_attention_check_counts_as_failed(ab_study, tmp_path):
    manifest, sha = load_manifest(ab_study)
    good = _good_file(ab_study)
    checks = {t["id"] for t in manifest["trials"] if t["attention_check"]}
    (tmp_path / "P01.json").write_text(json.dumps(
        {**good, "answers": [a for a in good["answers"] if a["trial_id"] not in checks]}))
    honest = fixture_response(manifest, sha, "P02", {t["id"]: (t["correct"] or t["stimuli"][1])
                                                     for t in manifest["trials"]})
    (tmp_path / "P02.json").write_text(json.dumps(honest))
    res = A.analyze(ab_study, [tmp_path], n_resamples=50)
    people = res.participants.set_index("participant")
    assert people.loc["P01", "checks_missing"] == 2 and people.loc["P01", "checks_failed"] == 2
    assert not people.loc["P01", "included"] and "2 missing" in people.loc["P01", "reason"]
    assert people.loc["P02", "included"] and res.summary["included"] == 1
    # allowing two failed checks lets the file in again: the missing checks were counted, not ignored
    assert A.analyze(ab_study, [tmp_path], n_resamples=50, max_failed_checks=2).summary["included"] == 2


def test_no_consent_excludes(ab_study, tmp_path):
    good = _good_file(ab_study)
    (tmp_path / "P01.json").write_text(json.dumps({k: v for k, v in good.items() if k != "consent_given"}))
    with pytest.raises(InputError, match="1 without recorded consent"):
        A.analyze(ab_study, [tmp_path], n_resamples=50)


def test_practice_answers_are_ignored(ab_study, tmp_path):
    manifest, sha = load_manifest(ab_study)
    good = _good_file(ab_study)
    practice = {"trial_id": "practice", "position": 0, "answer": "B", "chosen": "v9999", "ranks": None,
                "confidence": None, "rt_ms": 100, "practice": True}
    (tmp_path / "P01.json").write_text(json.dumps({**good, "answers": [practice, *good["answers"]]}))
    answers = A.load_responses([tmp_path], manifest, sha)
    assert "practice" not in set(answers["trial_id"]) and len(answers) == len(manifest["trials"])


def test_zero_included_is_exit_2_and_writes_nothing(ab_study, tmp_path, capsys):
    manifest, sha = load_manifest(ab_study)
    checks = [t for t in manifest["trials"] if t["attention_check"]]
    for pid in ("P01", "P02"):
        picks = {t["id"]: next(s for s in t["stimuli"] if s != t["correct"]) for t in checks}
        (tmp_path / f"{pid}.json").write_text(json.dumps(fixture_response(manifest, sha, pid, picks)))
    out = tmp_path / "analysis"
    assert main(["study", "analyze", str(tmp_path), "--study", str(ab_study), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "all 2 excluded" in err and "2 failed or skipped attention checks" in err
    assert not out.exists()


# ------------------------------------------------------------------------------------------------
# make: atomic, single file, consent, practice and error message on the page
# ------------------------------------------------------------------------------------------------
def _tiny_cfg(data: Path, out: Path, **kw) -> MakeConfig:
    options = dict(fps=FPS, size=32, participants=2, clips=1, attention_checks=0) | kw
    return MakeConfig(design="ab", gt=data, out=out,
                      conditions=[D.parse_condition("a=gt:lip=0.5"), D.parse_condition("b=gt")], **options)


def test_choose_clips_warns_when_the_conditions_share_no_identity(data, tmp_path, caplog):
    from p3d.study.make import StudyData, choose_clips

    other = tmp_path / "data"
    shutil.copytree(data, other)
    for f in (other / "pred_base").glob("*_condition_idX.npy"):
        f.rename(f.with_name(f.name.replace("_condition_idX", "_condition_idY")))
    cfg = MakeConfig(design="ab", gt=other, out=tmp_path / "s", fps=FPS, clips=2,
                     conditions=[D.parse_condition(f"m/base={other / 'pred_base'}"),
                                 D.parse_condition(f"m/ours={other / 'pred_ours'}")])
    with caplog.at_level(logging.WARNING, logger="p3d.study.make"):
        clips, chosen = choose_clips(StudyData(cfg), cfg)
    assert {c["m/base"]["conditioning_identity"] for c in chosen.values()} == {"idY"}
    assert "2 of 2 clips" in caplog.text and "share no conditioning identity" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="p3d.study.make"):  # a shared identity: no warning
        same = dataclasses.replace(cfg, gt=data, conditions=[D.parse_condition(f"m/base={data / 'pred_base'}"),
                                                              D.parse_condition(f"m/ours={data / 'pred_ours'}")])
        choose_clips(StudyData(same), same)
    assert "share no conditioning identity" not in caplog.text


def test_make_leaves_nothing_behind_on_error(data, tmp_path):
    broken = tmp_path / "data"
    shutil.copytree(data, broken)
    stem = sorted(p.stem for p in (broken / "vertices_npy").glob("*.npy"))[0]
    one = np.load(broken / "vertices_npy" / f"{stem}.npy")[:1]
    np.save(broken / "pred_base" / f"{stem}_condition_idX.npy", one.reshape(1, -1, 3))
    out = tmp_path / "new" / "deeper" / "study"
    cfg = MakeConfig(design="ab", gt=broken, out=out, fps=FPS, size=32, participants=2, clip_names=[stem],
                     attention_checks=0, conditions=[D.parse_condition(f"m/base={broken / 'pred_base'}"),
                                                     D.parse_condition(f"m/ours={broken / 'pred_ours'}")])
    with pytest.raises(InputError, match="at least 2 frames"):  # found before rendering
        make_study(cfg, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no study, no temp folder, no parents
    # a failed --overwrite rebuild keeps the old study intact, and other files in the folder survive
    from p3d.study.make import verify_study

    good = tmp_path / "good"
    make_study(_tiny_cfg(data, good), progress=False)
    (good / "notes.txt").write_text("mine")
    before = (good / "manifest.json").read_bytes()
    with pytest.raises(InputError, match="at least 2 frames"):
        make_study(dataclasses.replace(cfg, out=good, overwrite=True), progress=False)
    assert (good / "manifest.json").read_bytes() == before and verify_study(good) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "good"]
    make_study(dataclasses.replace(_tiny_cfg(data, good), seed=5, overwrite=True), progress=False)
    assert (good / "notes.txt").read_text() == "mine" and verify_study(good) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "good"]


@pytest.mark.parametrize("case, expected", [
    ("wrong_vertices", "vertices per frame"),
    ("loud_gain", "lower the gain"),
    ("lag_longer_than_clip", "not shorter than the clip"),
    ("check_lag_longer_than_clip", "not shorter than the clip"),
])
def test_make_refuses_bad_stimulus_inputs_before_rendering_any_video(data, tmp_path, monkeypatch, case, expected):
    """Inputs found bad only while making a video's frames were refused after the videos before it had been
    rendered (minutes in a paper-sized study); now before the first. The bad input is in the last clip, which
    is rendered after the first clip's videos."""
    import p3d.viz.render

    def no_render(*args, **kwargs):
        raise AssertionError("a video was rendered before the bad input was refused")

    monkeypatch.setattr(p3d.viz.render, "write_mp4", no_render)
    broken = tmp_path / "data"
    shutil.copytree(data, broken)
    last = sorted(p.stem for p in (broken / "vertices_npy").glob("*.npy"))[-1]
    out = tmp_path / "study"
    cfg = _tiny_cfg(broken, out, clips=2)
    if case == "wrong_vertices":
        pred = broken / "pred_ours" / f"{last}_condition_idX.npy"
        np.save(pred, np.load(pred)[:, :100])
        cfg.conditions = [D.parse_condition(f"m/base={broken / 'pred_base'}"),
                          D.parse_condition(f"m/ours={broken / 'pred_ours'}")]
    elif case == "loud_gain":  # +6 dB keeps the other clip's peak (0.2) below 0.95, not this one's (0.9)
        wav = broken / "wav" / f"{last}.wav"
        samples, sr = sf.read(wav)
        sf.write(wav, 0.9 * samples / np.abs(samples).max(), sr)
        cfg.conditions = [D.parse_condition("a=gt:gain_db=6"), D.parse_condition("b=gt")]
    else:  # the last clip 4 frames long: shorter than a 500 ms (5 frame) lip lag
        gt = broken / "vertices_npy" / f"{last}.npy"
        np.save(gt, np.load(gt)[:4])
        if case == "lag_longer_than_clip":
            cfg.conditions = [D.parse_condition("a=gt:lag_ms=500"), D.parse_condition("b=gt")]
        else:  # 6 checks on 2 clips: one lip-lag check (500 ms) per clip
            cfg = dataclasses.replace(cfg, attention_checks=6)
    with pytest.raises(InputError, match=expected):
        make_study(cfg, progress=False)
    assert not out.exists()


def test_make_refuses_a_folder_of_other_study_files(data, tmp_path):
    (tmp_path / "s" / "stimuli").mkdir(parents=True)
    with pytest.raises(InputError, match="no manifest.json"):
        make_study(_tiny_cfg(data, tmp_path / "s"), progress=False)


def test_single_file_page_embeds_the_videos(data, tmp_path):
    out = tmp_path / "s"
    manifest = make_study(_tiny_cfg(data, out, single_file=True), progress=False)
    page = (out / "survey.html").read_text()
    assert page.count("data:video/mp4;base64,") == len(manifest["stimuli"])
    assert "stimuli/" not in page
    # the same study (presentation options aside) as the linked page: answers stay valid either way
    linked = make_study(_tiny_cfg(data, tmp_path / "l"), progress=False)
    assert linked["study_id"] == manifest["study_id"]
    assert "stimuli/" in (tmp_path / "l" / "survey.html").read_text()


def test_page_has_consent_practice_error_message_and_no_native_controls(ab_study):
    manifest, _ = load_manifest(ab_study)
    page = (ab_study / "survey.html").read_text()
    for needle in ('id="consent"', 'id="consent-agree"', 'id="consent-continue"', 'id="practice-banner"',
                   'id="video-error"', 'addEventListener("error"', "consent_given"):
        assert needle in page, needle
    data = json.loads(page.split('id="study-data">')[1].split("</script>")[0])
    assert data["consent_text"] == manifest["consent_text"] and len(data["consent_text"]) > 50
    assert [v["id"] for v in data["practice"]["videos"]] == manifest["practice"]["stimuli"]
    assert "stimuli/" in data["video_error"] and "{slot}" in data["video_error"]
    assert "controls: true" not in page and "controls: false" in page


def test_a_ranking_whose_letters_and_ranks_disagree_is_refused():
    """An answer holding both the shown letters' scores and the videos' ranks must say the same (A/B answers are
    already checked so); ranks won silently."""
    from p3d.study.analyze import _resolve

    trial = {"id": "q01", "kind": "rank", "stimuli": ["v1", "v2", "v3"], "layouts": [[2, 0, 1]],
             "attention_check": False}
    same = _resolve(Path("f.json"), {"answer": "A=3;B=2;C=1", "ranks": {"v3": 3, "v1": 2, "v2": 1}}, trial, 0)
    assert same["ranks"] == {"v3": 3, "v1": 2, "v2": 1}
    with pytest.raises(InputError, match="answer 'A=3;B=2;C=1' and ranks .* disagree"):
        _resolve(Path("f.json"), {"answer": "A=3;B=2;C=1", "ranks": {"v1": 3, "v2": 2, "v3": 1}}, trial, 0)


@pytest.mark.parametrize("option, value", [("fps", 0.0), ("gt_fps", 0.0), ("fps", float("nan")),
                                           ("gt_fps", float("inf"))])
def test_make_refuses_a_bad_frame_rate_before_anything_is_written(data, tmp_path, option, value):
    """--fps 0 and --gt-fps 0 were replaced by the corpus' rate (0 is falsy) and the study was built; --fps nan
    was a ValueError traceback."""
    out = tmp_path / "s"
    cfg = MakeConfig(design="rank", gt=data, out=out, size=32, participants=2, clips=1, attention_checks=0,
                     **{"fps": FPS, option: value})
    with pytest.raises(InputError, match=f"--{option.replace('_', '-')} "):
        make_study(cfg, progress=False)
    assert not out.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1"])
def test_make_cli_refuses_a_bad_max_seconds_before_anything_is_written(data, tmp_path, capsys, value):
    """--max-seconds nan / inf passed the `<= 0` check and ended the build, videos already rendering, in a
    ValueError / OverflowError traceback (int(nan * fps))."""
    out = tmp_path / "s"
    code = main(["study", "make", "--design", "rank", "--gt", str(data), "--fps", str(FPS), "--size", "32",
                 "--participants", "2", "--clips", "1", "--attention-checks", "0", "--max-seconds", value,
                 "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("p3d study: error: --max-seconds"), err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["0", "100000000"])
def test_make_cli_refuses_a_participant_count_out_of_range_before_rendering(data, tmp_path, capsys, value):
    """--participants 1e8 planned a trial order per code for minutes (and a manifest of gigabytes) before rendering:
    refused in one line, like 0, before anything is written."""
    out = tmp_path / "s"
    code = main(["study", "make", "--design", "rank", "--gt", str(data), "--fps", str(FPS), "--size", "32",
                 "--participants", value, "--clips", "1", "--attention-checks", "0", "--out", str(out),
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("p3d study: error: --participants must be in 1.."), err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_make_cli_study_folder_follows_the_umask(data, tmp_path, capsys):
    """The study is built in a mkdtemp folder (mode 0700) renamed into place, so the folder given to participants
    or served to them was readable by its owner only, whatever the umask."""
    import os

    out = tmp_path / "s"
    old = os.umask(0o022)
    try:
        code = main(["study", "make", "--design", "rank", "--gt", str(data), "--fps", str(FPS), "--size", "32",
                     "--participants", "2", "--clips", "1", "--attention-checks", "0", "--out", str(out),
                     "--no-progress"])
    finally:
        os.umask(old)
    assert code == 0, capsys.readouterr().err
    assert oct(out.stat().st_mode & 0o777) == oct(0o755)
    assert oct((out / "stimuli").stat().st_mode & 0o777) == oct(0o755)


def test_make_removes_the_staging_folder_a_killed_make_left(data, tmp_path, capsys):
    """A make killed while rendering left its hidden staging folder (videos: as large as a study), which no later
    run removed (its name was random). Named by the process now: the next make removes a dead process's and keeps a
    live one's."""
    import os
    import subprocess
    import sys

    out = tmp_path / "s"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".s.p3d-make-{int(dead.stdout)}"
    (stale / "stimuli").mkdir(parents=True)
    (stale / "stimuli" / "v.mp4").write_bytes(b"x" * 1000)
    live = tmp_path / f".s.p3d-make-{os.getppid()}"  # a process that exists (pytest's parent)
    live.mkdir()
    code = main(["study", "make", "--design", "rank", "--gt", str(data), "--fps", str(FPS), "--size", "32",
                 "--participants", "2", "--clips", "1", "--attention-checks", "0", "--out", str(out),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert not stale.exists() and live.is_dir()
    assert (out / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".s.p3d-make-" + live.name.rsplit("-", 1)[1], "s"])


def test_make_cli_refuses_a_negative_seed_before_anything_is_written(data, tmp_path, capsys):
    """--seed -1 reached numpy's generator, whose ValueError ended `study make` in a traceback."""
    out = tmp_path / "s"
    code = main(["study", "make", "--design", "rank", "--gt", str(data), "--fps", str(FPS), "--size", "32",
                 "--participants", "2", "--clips", "1", "--attention-checks", "0", "--seed", "-1",
                 "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("p3d study: error: --seed -1"), err
    assert not out.exists()


def test_analyze_cli_refuses_a_negative_seed_before_writing(ab_study, ab_responses, tmp_path, capsys):
    """--seed -1 reached numpy's generator in the bootstrap, whose ValueError ended `study analyze` in a traceback."""
    out = tmp_path / "analysis"
    code = main(["study", "analyze", str(ab_responses), "--bootstrap", "10", "--seed", "-1", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("p3d study: error: --seed -1"), err
    assert not out.exists()


def test_analyze_cli_refuses_metrics_for_a_study_without_condition_rankings(ab_study, ab_responses, tmp_path,
                                                                             capsys):
    """--metrics (Table S3) needs rankings of conditions; on an A/B or intensity study it was ignored without a word
    (exit 0, no metric table), even naming a folder that does not exist."""
    out = tmp_path / "analysis"
    code = main(["study", "analyze", str(ab_responses), "--bootstrap", "10", "--metrics",
                 f"m/base={tmp_path / 'no_such_eval'}", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("p3d study: error: --metrics:"), err
    assert "an A/B study" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("content", ["", "pred,lve\n\"a,1\n"], ids=["empty", "unterminated quote"])
def test_analyze_cli_an_unreadable_metrics_csv_is_one_line_exit_2(data, tmp_path, capsys, content):
    """A per_clip.csv pandas cannot parse (EmptyDataError, ParserError) ended `study analyze --metrics` in a
    traceback, after the answers were analysed."""
    study = tmp_path / "study"
    make_study(MakeConfig(design="rank", rank_over="conditions", gt=data, out=study, fps=FPS, size=32,
                          participants=2, clips=1, attention_checks=0, practice=False,
                          conditions=[D.parse_condition(f"base={data / 'pred_base'}"),
                                      D.parse_condition(f"ours={data / 'pred_ours'}")]), progress=False)
    manifest, sha = load_manifest(study)
    for pid in ("P01", "P02"):
        picks = {t["id"]: {s: k + 1 for k, s in enumerate(t["stimuli"])} for t in manifest["trials"]}
        (study / "responses" / f"{pid}.json").write_text(json.dumps(fixture_response(manifest, sha, pid, picks)))
    (tmp_path / "eval_base").mkdir()
    (tmp_path / "eval_base" / "per_clip.csv").write_text(content)
    out = tmp_path / "analysis"
    code = main(["study", "analyze", str(study / "responses"), "--bootstrap", "10", "--out", str(out),
                 "--metrics", f"base={tmp_path / 'eval_base'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("p3d study: error: --metrics base="), err
    assert "not a readable CSV" in err[0]
    assert not out.exists()


def test_participants_not_a_multiple_of_the_groups_is_reported(caplog):
    # 3 rank groups and 4 participants: group 0 had 2 people and groups 1-2 one each, so positions were not
    # balanced over participants, without a word
    with caplog.at_level("WARNING", logger="p3d.study.design"):
        plan = D.plan_study("rank", [], ["c0"], attention_checks=0, participants=4)
    assert [p["group"] for p in plan.participants] == [0, 1, 2, 0]
    assert "4 participants in 3 counterbalancing groups gives groups of 2/1/1" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="p3d.study.design"):
        D.plan_study("rank", [], ["c0"], attention_checks=0, participants=6)
    assert "counterbalancing" not in caplog.text


@pytest.mark.parametrize("option, value", [("--speech-gains-db", "-9,,9"), ("--lip-scales", "0.5,1,"),
                                           ("--lip-scales", ",1.5")])
def test_an_empty_item_in_a_level_list_is_refused_not_dropped(tmp_path, capsys, option, value):
    """``--speech-gains-db -9,,9`` (a typo for three levels) built a two-level speech design without a word, and
    rendered it: an empty item is exit 2 now, before any work."""
    argv = ["study", "make", "--design", "rank", "--gt", str(tmp_path / "gt"), "--out", str(tmp_path / "s"),
            option, value]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "an empty item" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_check_degradations_double_after_one_round():
    """check_transforms cycles audio shift, freeze, lip lag; after one round of the three the shift doubles,
    so a study's later checks are not copies of its first ones."""
    labels = [[label for label, _ in D.check_transforms(1, i, 500.0)] for i in range(6)]
    assert labels == [["audio_shift_500ms"], ["freeze"], ["lip_lag_500ms"],
                      ["audio_shift_1000ms"], ["freeze"], ["lip_lag_1000ms"]]
    assert D.check_transforms(1, 3, 500.0)[0][1].audio_shift_ms == 1000.0
    assert D.check_transforms(1, 5, 500.0)[0][1].lag_ms == 1000.0
    # a rank check (K = 4: three degraded videos) starting at index 1 runs into the second round
    assert [label for label, _ in D.check_transforms(3, 1, 500.0)] == ["freeze", "lip_lag_500ms", "audio_shift_1000ms"]


def test_rank_attention_check_passes_only_when_the_ground_truth_is_scored_highest():
    """Paper convention (K = most preferred): a rank check is passed when the ground-truth video gets the top
    score, failed otherwise; an A/B check when the ground truth is chosen."""
    trial = {"kind": "rank", "correct": "gt"}
    assert A.check_passed({"ranks": {"gt": 3, "lag": 1, "freeze": 2}}, trial)
    assert not A.check_passed({"ranks": {"gt": 2, "lag": 3, "freeze": 1}}, trial)
    assert not A.check_passed({"ranks": {"gt": 1, "lag": 3, "freeze": 2}}, trial)
    ab = {"kind": "ab", "correct": "gt"}
    assert A.check_passed({"chosen": "gt"}, ab) and not A.check_passed({"chosen": "lag"}, ab)


def _ab_fixture(counts: dict[str, tuple[int, int]], n_people: int):
    """A hand-made A/B manifest and answers: per model ``(answers, of which prefer B)``, spread over ``n_people``
    participants in turn (FIXTURE answers, not data from people)."""
    trials, rows = [], []
    for model, (n, k) in counts.items():
        for j in range(n):
            tid = f"{model}-t{j}"
            trials.append({"id": tid, "kind": "ab", "attention_check": False, "stimuli": [f"{tid}a", f"{tid}b"],
                           "conditions": [f"{model}/base", f"{model}/ours"], "model": model,
                           "comparison": "base vs ours"})
            rows.append({"participant": f"P{j % n_people:02d}", "trial_id": tid, "kind": "ab",
                         "attention_check": False, "chosen": f"{tid}b" if j < k else f"{tid}a", "confidence": None})
    return pd.DataFrame(rows), {"trials": trials}


def test_ab_overall_row_pools_the_models_as_table_s4():
    """Table S4's rows by hand: 102 answers per model preferring 'ours' 88, 69 and 66 times give the printed
    86.3 / 67.6 / 64.7 %, and the Overall row pools them: 223 / 306 = 72.9 %. With two models the Overall row
    is there too (item 2 of the analyze docstring: an Overall row whenever a comparison has several models)."""
    answers, manifest = _ab_fixture({"faceformer": (102, 88), "codetalker": (102, 69), "selftalk": (102, 66)}, 17)
    table = A.ab_preferences(answers, manifest, n_resamples=50).set_index("model")
    assert list(table.index) == ["faceformer", "codetalker", "selftalk", "Overall"]
    assert [round(v, 1) for v in table["prefer_b_pct"]] == [86.3, 67.6, 64.7, 72.9]
    assert table.loc["Overall", "responses"] == 306 and table.loc["Overall", "prefer_b_pct"] == pytest.approx(
        100 * 223 / 306)
    assert (table.loc["Overall", "condition_a"], table.loc["Overall", "condition_b"]) == ("base", "ours")
    answers, manifest = _ab_fixture({"m1": (6, 4), "m2": (6, 1)}, 3)
    table = A.ab_preferences(answers, manifest, n_resamples=50).set_index("model")
    assert list(table.index) == ["m1", "m2", "Overall"]
    assert table.loc["Overall", "prefer_b_pct"] == pytest.approx(100 * 5 / 12)


def test_intensity_cell_means_are_over_participants():
    """Item 3 of the analyze docstring: a cell's score is the mean over participants of each participant's
    mean, so a participant who answered more trials does not weigh more. Hand-made K = 2 study, 2 clips:
    P1 answers both clips, P2 only the first (FIXTURE answers)."""
    stimuli, trials = {}, []
    for clip in ("c1", "c2"):
        for s in (1, 2):
            tid = f"{clip}s{s}"
            ids = [f"{tid}l1", f"{tid}l2"]
            for lip, sid in enumerate(ids, start=1):
                stimuli[sid] = {"condition": "gt", "lip_level": lip, "speech_level": s}
            trials.append({"id": tid, "clip": clip, "kind": "rank", "attention_check": False, "stimuli": ids})
    manifest = {"stimuli": stimuli, "trials": trials, "variants": {"lip_scales": [0.5, 1.5], "speech_gains_db": [-6, 6]}}
    rows = []
    for pid, clips, top in (("P1", ("c1", "c2"), 1), ("P2", ("c1",), 2)):  # P1 scores lip 1 highest, P2 lip 2
        for clip in clips:
            for s in (1, 2):
                tid = f"{clip}s{s}"
                ranks = {f"{tid}l1": 2 if top == 1 else 1, f"{tid}l2": 2 if top == 2 else 1}
                rows.append({"participant": pid, "trial_id": tid, "kind": "rank", "attention_check": False,
                             "ranks": ranks})
    out = A.intensity_tables(pd.DataFrame(rows), manifest, n_resamples=50)
    cells = out["rank_intensity"].set_index(["speech_level", "lip_level"])
    for s in (1, 2):  # P1's mean 2 and P2's mean 1 for lip 1 (and the reverse for lip 2): 1.5 each, not 5/3
        assert cells.loc[(s, 1), "mean_score"] == pytest.approx(1.5)
        assert cells.loc[(s, 2), "mean_score"] == pytest.approx(1.5)
        assert cells.loc[(s, 1), "participants"] == 2 and cells.loc[(s, 1), "responses"] == 3
    # each cell is labelled with its own level's gain and lip scale (level i = the i-th value given)
    assert [cells.loc[(s, 1), "speech_gain_db"] for s in (1, 2)] == [-6, 6]
    assert [cells.loc[(1, lip), "lip_scale"] for lip in (1, 2)] == [0.5, 1.5]


def test_condition_ranking_friedman_test_by_hand():
    """Friedman's test over participants (item 4): 6 participants rank K = 3 conditions once each (no ties);
    chi2 = 12 / (n K (K + 1)) sum R_j^2 - 3 n (K + 1) with R_j the rank sums, p from chi2 with K - 1 df."""
    from scipy.stats import chi2

    scores = {"P1": (1, 2, 3), "P2": (1, 3, 2), "P3": (2, 1, 3), "P4": (1, 2, 3), "P5": (1, 2, 3), "P6": (2, 1, 3)}
    conditions = ["a", "b", "c"]
    stimuli = {f"t{c}": {"condition": c, "lip_level": None, "speech_level": None} for c in conditions}
    manifest = {"stimuli": stimuli, "conditions": [{"name": c} for c in conditions],
                "trials": [{"id": "t", "clip": "c1", "kind": "rank", "attention_check": False,
                            "stimuli": list(stimuli)}]}
    answers = pd.DataFrame([{"participant": pid, "trial_id": "t", "kind": "rank", "attention_check": False,
                             "ranks": dict(zip(stimuli, s))} for pid, s in scores.items()])
    table = A.condition_ranks(answers, manifest, n_resamples=50).set_index("condition")
    r = np.array(list(scores.values())).sum(axis=0)  # rank sums 8, 11, 17
    n, k = len(scores), 3
    stat = 12 / (n * k * (k + 1)) * np.sum(r ** 2) - 3 * n * (k + 1)
    assert table["p_friedman"].iloc[0] == pytest.approx(chi2.sf(stat, k - 1))
    np.testing.assert_allclose(table["mean_score"], r / n)


def test_participant_rate_test_is_undefined_without_spread():
    """Item 3: NaN with fewer than two participants or when every participant has the same rate (a t-test
    without spread would report p = 0 for 'every participant matched every time')."""
    assert np.isnan(A.participant_rate_test(np.array([1.0, 1.0, 1.0]), 1 / 3))
    assert np.isnan(A.participant_rate_test(np.array([0.5]), 1 / 3))
    # rates 1 and 2/3 vs 1/3: t = 3 with 1 df, p = 1 - 2 arctan(3) / pi
    assert A.participant_rate_test(np.array([1.0, 2 / 3]), 1 / 3) == pytest.approx(1 - 2 * np.arctan(3) / np.pi)


def test_page_data_keeps_each_participants_group_and_order(ab_study):
    """The page picks the display layout by the participant's group, and the analysis reads the letters with the
    manifest's group: the blinded data must carry every participant's manifest group and trial order."""
    from p3d.study import survey

    manifest, sha = load_manifest(ab_study)
    data = survey.public_data(manifest, sha)
    assert [(p["id"], p["group"], p["order"]) for p in data["participants"]] == \
        [(p["id"], p["group"], p["order"]) for p in manifest["participants"]]
    assert {p["group"] for p in data["participants"]} == {0, 1}
    assert all(data["trials"][t["id"]]["layouts"] == t["layouts"] for t in manifest["trials"])


def test_embedded_json_cannot_close_the_script_tag():
    """Study text (title, question, consent) is embedded in <script type="application/json">: no '<', '>' or
    '&' may appear raw, so '</script>' or '<!--' in the text cannot end the script; the JSON reads back the same."""
    from p3d.study import survey

    obj = {"consent_text": "ok </script><script>alert(1)</script> <!-- & -->", "n": [1, 2]}
    text = survey._embed_json(obj)
    assert not any(c in text for c in "<>&")
    assert json.loads(text) == obj


def test_share_interval_needs_two_participants():
    """participant_share_ci: (NaN, NaN) with one participant (no spread between participants to resample)."""
    lo, hi = A.participant_share_ci(np.array([True, False, True, True]), ["P1"] * 4, n_resamples=50)
    assert np.isnan(lo) and np.isnan(hi)


def test_trial_ids_do_not_reveal_the_attention_checks():
    """Trial ids are assigned in a seeded random order (design docstring), so the checks, planned last, are not
    simply the highest ids: over ten seeds they are the top two ids far from always (1 in 28 per seed by chance)."""
    conditions = [D.Condition("m/base", Path("a")), D.Condition("m/ours", Path("b"))]
    top = 0
    for seed in range(10):
        plan = D.plan_study("ab", conditions, [f"c{i}" for i in range(6)], attention_checks=2, participants=2,
                            seed=seed)
        ids = sorted(t.id for t in plan.trials)
        top += sorted(t.id for t in plan.trials if t.attention_check) == ids[-2:]
    assert top < 5


# ------------------------------------------------------------------------------------------------
# Documented properties of the analysis, each stated once (FIXTURE manifests and answers made up here)
# ------------------------------------------------------------------------------------------------
def _ab_manifest() -> tuple[dict, str]:
    """A hand-made FIXTURE A/B manifest: one trial of videos v1 (m/base) and v2 (m/ours), shown in the order
    (v1, v2) to group 0 (P01) and (v2, v1) to group 1 (P02)."""
    manifest = {"study_id": "fixture", "design": "ab", "rank_over": None,
                "trials": [{"id": "q01", "kind": "ab", "stimuli": ["v1", "v2"], "layouts": [[0, 1], [1, 0]],
                            "attention_check": False, "correct": None, "conditions": ["m/base", "m/ours"],
                            "model": "m", "comparison": "base vs ours"}],
                "participants": [{"id": "P01", "group": 0, "order": ["q01"]},
                                 {"id": "P02", "group": 1, "order": ["q01"]}]}
    return manifest, "f" * 64


def test_answer_fields_outside_their_documented_range_are_refused(tmp_path):
    """validate_answer_file: ``group`` and ``position`` integers >= 0, ``confidence`` an integer 1-5 (2.5 would be
    truncated to 2), ``plays`` an object of integers, ``answer`` text (a number would be a TypeError later);
    load_responses: the file's study id is the manifest's."""
    manifest, sha = _ab_manifest()
    good = fixture_response(manifest, sha, "P01", {"q01": "v2"})
    with pytest.raises(InputError, match="group: expected an integer >= 0"):
        A.validate_answer_file({**good, "group": -1}, Path("P01.json"))
    for fields, field in (({"position": -1}, "position"), ({"confidence": 2.5}, "confidence"),
                          ({"plays": {"v1": "twice"}}, "plays"), ({"answer": 5}, "answer")):
        with pytest.raises(InputError, match=rf"answers\[0\]\.{field}: expected"):
            A.validate_answer_file(_with_answer(good, **fields), Path("P01.json"))
    path = tmp_path / "P01.json"
    path.write_text(json.dumps({**good, "study_id": "another"}))
    with pytest.raises(InputError, match="answers of study 'another', not 'fixture'"):
        A.load_responses([path], manifest, sha)


def test_answers_are_read_in_the_participants_own_layout():
    """An A/B answer given only as the letter shown (no ``chosen``) names the video at that letter in the
    participant's group's layout, and a letter and ``chosen`` that name different videos are refused; a ranking
    must score exactly the trial's videos (one scoring another video with the scores 1..K is refused, not a
    KeyError later)."""
    manifest, _ = _ab_manifest()
    trial = manifest["trials"][0]
    assert A._resolve(Path("f.json"), {"answer": "A"}, trial, 0)["chosen"] == "v1"
    assert A._resolve(Path("f.json"), {"answer": "A"}, trial, 1)["chosen"] == "v2"
    with pytest.raises(InputError, match="answer A and chosen video v2 disagree"):
        A._resolve(Path("f.json"), {"answer": "A", "chosen": "v2"}, trial, 0)
    rank = {"id": "q02", "kind": "rank", "stimuli": ["v1", "v2", "v3"], "layouts": [[0, 1, 2]],
            "attention_check": False}
    with pytest.raises(InputError, match="must score exactly the trial's videos"):
        A._resolve(Path("f.json"), {"ranks": {"v1": 1, "v2": 2, "v9": 3}}, rank, 0)


def test_csv_answer_files_one_participant_and_recorded_consent(tmp_path):
    """A CSV export holds one participant (a file mixing two is refused), an empty cell is an absent value (a
    ranking's empty confidence is no confidence, not 0) and its consent column is read: ``false`` excludes the
    participant as a JSON file without consent does."""
    import io

    manifest, sha = _condition_manifest()
    obj = fixture_response(manifest, sha, "P01", {t["id"]: dict(zip(t["stimuli"], (3, 2, 1)))
                                                  for t in manifest["trials"]})
    df = pd.read_csv(io.StringIO(_as_csv(obj)), dtype=str, keep_default_na=False)
    mixed = df.copy()
    mixed.loc[1, "participant_id"] = "P02"
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    with pytest.raises(InputError, match="column participant_id must hold one value"):
        A.load_responses([tmp_path / "mixed.csv"], manifest, sha)
    df.assign(consent_given="false").to_csv(tmp_path / "P01.csv", index=False)
    people = A.participant_table(A.load_responses([tmp_path / "P01.csv"], manifest, sha), manifest)
    assert not people["included"].iloc[0] and people["reason"].iloc[0] == "no consent recorded"


def test_two_answer_files_differing_in_confidence_are_refused(tmp_path):
    """_answers_key: the confidence is part of what the analysis reads (mean_confidence), so two files of one
    participant that differ only there are two different answer files, refused like any other pair."""
    manifest, sha = _ab_manifest()
    x = fixture_response(manifest, sha, "P01", {"q01": "v2"})
    (tmp_path / "x.json").write_text(json.dumps(x))
    (tmp_path / "y.json").write_text(json.dumps(_with_answer(x, confidence=2)))
    with pytest.raises(InputError, match="hold different answers"):
        A.load_responses([tmp_path / "x.json", tmp_path / "y.json"], manifest, sha)


def test_an_answer_file_without_study_answers_is_skipped(tmp_path, caplog):
    """load_responses: a file holding only the practice answer is skipped with a warning, also beside the same
    participant's complete file (it is not a second, different version of their answers)."""
    manifest, sha = _ab_manifest()
    full = fixture_response(manifest, sha, "P01", {"q01": "v2"})
    practice = {"trial_id": "practice", "answer": "A", "practice": True}
    (tmp_path / "a_practice.json").write_text(json.dumps({**full, "answers": [practice]}))
    (tmp_path / "b_full.json").write_text(json.dumps(full))
    with caplog.at_level("WARNING", logger="p3d.study.analyze"):
        answers = A.load_responses([tmp_path], manifest, sha)
    assert answers["chosen"].tolist() == ["v2"] and "no answer to a trial of the study; skipped" in caplog.text


def test_participant_table_records_group_and_completeness(tmp_path):
    """participant_table: each participant's manifest group, their number of answers and whether they answered
    every trial of the study (P01 answers one of the two trials)."""
    manifest, sha = _condition_manifest()
    scores = {t["id"]: dict(zip(t["stimuli"], (3, 2, 1))) for t in manifest["trials"]}
    (tmp_path / "P01.json").write_text(json.dumps(fixture_response(manifest, sha, "P01", {"q01": scores["q01"]})))
    (tmp_path / "P02.json").write_text(json.dumps(fixture_response(manifest, sha, "P02", scores)))
    people = A.participant_table(A.load_responses([tmp_path], manifest, sha), manifest).set_index("participant")
    assert people["group"].tolist() == [0, 1] and people["answers"].tolist() == [1, 2]
    assert people["complete"].tolist() == [False, True]


def test_ab_mean_confidence_is_the_mean():
    """The A/B table's mean_confidence is the mean of the answers' confidence (1, 2 and 5: 8/3, the median 2)."""
    answers, manifest = _ab_fixture({"m": (3, 2)}, 3)
    answers["confidence"] = [1, 2, 5]
    row = A.ab_preferences(answers, manifest, n_resamples=50).iloc[0]
    assert row.mean_confidence == pytest.approx(8 / 3)


def test_no_matched_level_table_when_lip_and_speech_levels_differ_in_number():
    """Item 3: "the top-scored lip level matches the speech level" needs one lip level per speech level; with
    2 lip levels and 3 speech levels there is no such table (the cell means still are)."""
    stimuli, trials, rows = {}, [], []
    for s in (1, 2, 3):
        ids = [f"s{s}l1", f"s{s}l2"]
        for lip, sid in enumerate(ids, start=1):
            stimuli[sid] = {"condition": "gt", "lip_level": lip, "speech_level": s}
        trials.append({"id": f"s{s}", "clip": "c1", "kind": "rank", "attention_check": False, "stimuli": ids})
        for pid in ("P1", "P2"):
            rows.append({"participant": pid, "trial_id": f"s{s}", "kind": "rank", "attention_check": False,
                         "ranks": {ids[0]: 1, ids[1]: 2}})
    manifest = {"stimuli": stimuli, "trials": trials,
                "variants": {"lip_scales": [0.5, 1.5], "speech_gains_db": [-6, 0, 6]}}
    out = A.intensity_tables(pd.DataFrame(rows), manifest, n_resamples=50)
    assert "rank_intensity_matched" not in out and len(out["rank_intensity"]) == 6


def test_friedman_test_needs_three_conditions_and_two_participants():
    """Item 4: Friedman's test over participants for K >= 3; with two conditions, or one participant, p_friedman
    is NaN and the mean scores are still given."""
    def table(conditions, people):
        stimuli = {f"t{c}": {"condition": c, "lip_level": None, "speech_level": None} for c in conditions}
        manifest = {"stimuli": stimuli, "conditions": [{"name": c} for c in conditions],
                    "trials": [{"id": "t", "clip": "c1", "kind": "rank", "attention_check": False,
                                "stimuli": list(stimuli)}]}
        answers = pd.DataFrame([{"participant": p, "trial_id": "t", "kind": "rank", "attention_check": False,
                                 "ranks": {s: k + 1 for k, s in enumerate(stimuli)}} for p in people])
        return A.condition_ranks(answers, manifest, n_resamples=50)

    two = table(["a", "b"], ["P1", "P2", "P3"])
    assert two["p_friedman"].isna().all() and two["mean_score"].tolist() == [1.0, 2.0]
    one = table(["a", "b", "c"], ["P1"])
    assert one["p_friedman"].isna().all() and one["mean_score"].tolist() == [1.0, 2.0, 3.0]


def test_table_s3_means_per_participant_directions_and_missing_metrics(tmp_path):
    """Item 5, by hand (FIXTURE): P01 ranks c1 (3, 2, 1) and c2 (3, 1, 2), P02 only c1 (2, 3, 1). LVE (0, 1, 2):
    rho 1, 0.5 | 0.5 -> per participant 0.75 and 0.5, mean 0.625 (pooling the answers would give 2/3). MTM is
    lower-is-better too, but missing for one c2 video: that answer is left out (rho 1 | 0.5 -> 0.75, one answer
    without metric). PLRS ties every c2 video: its rho is undefined and left out (1 | 0.5 -> 0.75)."""
    manifest, sha = _condition_manifest()
    scores = {"P01": {"c1": (3, 2, 1), "c2": (3, 1, 2)}, "P02": {"c1": (2, 3, 1)}}
    for pid, by_clip in scores.items():
        picks = {t["id"]: dict(zip(t["stimuli"], by_clip[t["clip"]])) for t in manifest["trials"]
                 if t["clip"] in by_clip}
        (tmp_path / f"{pid}.json").write_text(json.dumps(fixture_response(manifest, sha, pid, picks)))
    answers = A.load_responses([tmp_path], manifest, sha)
    lve = {"gt": 0.0, "ff": 1.0, "ct": 2.0}
    metrics = {}
    for cond in lve:
        rows = [{"pred": Path(s["source_file"]).name, "lve": lve[cond],
                 "mtm_ms": math.nan if (cond, s["clip"]) == ("ct", "c2") else 10 * lve[cond],
                 "plrs": 0.4 if s["clip"] == "c2" else 0.5 - lve[cond] / 10}
                for s in manifest["stimuli"].values() if s["condition"] == cond]
        pd.DataFrame(rows).to_csv(tmp_path / f"{cond}.csv", index=False)
        metrics[cond] = tmp_path / f"{cond}.csv"
    s3 = A.metric_correlation(answers, manifest, metrics, n_resamples=50).set_index("metric")
    assert s3.loc["lve", "spearman_rho"] == pytest.approx(0.625) and s3.loc["lve", "answers"] == 3
    assert s3.loc["mtm_ms", "spearman_rho"] == pytest.approx(0.75) and s3.loc["mtm_ms", "better"] == "lower"
    assert (s3.loc["mtm_ms", "answers"], s3.loc["mtm_ms", "answers_without_metric"]) == (2, 1)
    assert s3.loc["plrs", "spearman_rho"] == pytest.approx(0.75) and s3.loc["plrs", "answers"] == 2
    pd.DataFrame({"file": ["x.npy"], "lve": [1.0]}).to_csv(tmp_path / "nopred.csv", index=False)
    with pytest.raises(InputError, match="no 'pred' column"):
        A.read_metrics({"gt": tmp_path / "nopred.csv"})


def test_fleiss_kappa_items_are_the_trials_everyone_answered():
    """Item 6: Fleiss' kappa is over the A/B main trials answered by every included participant: t1, which P3
    did not answer, is left out. t0: B, B, A -> P_i = 1/3, P_e = 5/9, kappa = (1/3 - 5/9) / (4/9) = -0.5."""
    trials = [{"id": t, "kind": "ab", "attention_check": False, "stimuli": [f"{t}a", f"{t}b"]} for t in ("t0", "t1")]
    rows = [("P1", "t0", "t0b"), ("P2", "t0", "t0b"), ("P3", "t0", "t0a"), ("P1", "t1", "t1a"), ("P2", "t1", "t1b")]
    answers = pd.DataFrame([{"participant": p, "trial_id": t, "kind": "ab", "attention_check": False, "chosen": c}
                            for p, t, c in rows])
    kappa = A.agreement(answers, {"trials": trials}).iloc[0]
    assert kappa["items"] == 1 and kappa.raters == 3 and kappa.value == pytest.approx(-0.5)


def test_analyze_refuses_bad_options_first(tmp_path):
    """analyze: --max-failed-checks below 0 and --bootstrap below 1 are InputErrors, before the study is read."""
    with pytest.raises(InputError, match="--max-failed-checks must be >= 0"):
        A.analyze(tmp_path / "no_study", max_failed_checks=-1)
    with pytest.raises(InputError, match="--bootstrap must be >= 1"):
        A.analyze(tmp_path / "no_study", n_resamples=0)


def test_answer_locations_and_one_participant_report(tmp_path, caplog):
    """A file that is not .json or .csv is skipped with a warning; an unexpanded pattern that matches nothing says
    so; the study folder is found only from files in its responses/ folder; the report of a single participant's
    A/B table says there is no interval."""
    (tmp_path / "notes.txt").write_text("not answers")
    with caplog.at_level("WARNING", logger="p3d.study.analyze"):
        assert A.find_response_files([tmp_path / "notes.txt"]) == []
    assert "not a .json or .csv answer file" in caplog.text
    with pytest.raises(InputError, match="no answer files match"):
        A.find_response_files([tmp_path / "responses" / "*.json"])
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "P01.json").write_text("{}")
    with pytest.raises(InputError, match="pass --study"):
        A.study_folder_of([tmp_path / "downloads" / "P01.json"])
    (tmp_path / "responses").mkdir()
    assert A.study_folder_of([tmp_path / "responses"]) == tmp_path.resolve()
    frame = pd.DataFrame({"participant": ["P1"] * 3, "confidence": [np.nan] * 3})
    row = A._ab_row(frame, "base vs ours", "m", "m/base", "m/ours", np.array([True, True, False]), n_resamples=50)
    summary = {"study_id": "fixture", "design": "ab", "rank_over": None, "participants": 1, "included": 1,
               "answers_analysed": 3, "excluded": []}
    text = A.format_analysis(A.Analysis({}, None, None, {"ab_preferences": pd.DataFrame([row])}, summary))
    assert "(no CI with one participant)" in text and "66.7% of 3 answers" in text


def test_analyze_passes_its_seed_to_the_intervals_and_counts_the_answers(ab_study, ab_responses):
    """analyze(seed=5) draws the participant bootstrap with seed 5 (the A/B interval by hand, as in
    test_ab_analysis_reproduces_hand_statistics: 40-100 %, seed 0 gives 30-100 %); the summary counts all
    answers (6 participants x 4 trials) and those analysed (P06 excluded: 5 x 4), and holds no NaN (summary.json
    is strict JSON)."""
    res = A.analyze(ab_study, n_resamples=200, seed=5)
    row = res.tables["ab_preferences"].iloc[0]
    counts = stats.resample_counts(5, 200, 5)
    boot = (counts @ np.array([2, 2, 2, 1, 0])) / (counts @ np.full(5, 2))
    assert (row.b_ci95_low_pct, row.b_ci95_high_pct) == pytest.approx(tuple(100 * np.quantile(boot, [0.025, 0.975])))
    assert (row.b_ci95_low_pct, row.b_ci95_high_pct) == pytest.approx((40.0, 100.0))
    assert (res.summary["seed"], res.summary["answers"], res.summary["answers_analysed"]) == (5, 24, 20)
    assert res.summary["tables"]["agreement"][0]["min"] is None  # kappa has no min: NaN is null, strict JSON


def test_a_metrics_csv_with_text_for_a_number_is_refused(tmp_path):
    """A per_clip.csv whose lve column holds text ("bad") ended `study analyze --metrics` in a ValueError
    traceback from float() while correlating Table S3; it is refused naming the file, column and row."""
    manifest, sha = _condition_manifest()
    for pid in ("P01", "P02"):
        picks = {t["id"]: dict(zip(t["stimuli"], (3, 2, 1))) for t in manifest["trials"]}
        (tmp_path / f"{pid}.json").write_text(json.dumps(fixture_response(manifest, sha, pid, picks)))
    answers = A.load_responses([tmp_path], manifest, sha)
    metrics = {}
    for i, cond in enumerate(("gt", "ff", "ct")):
        rows = [{"pred": Path(s["source_file"]).name, "lve": "bad" if (cond, s["clip"]) == ("ct", "c2") else i}
                for s in manifest["stimuli"].values() if s["condition"] == cond]
        pd.DataFrame(rows).to_csv(tmp_path / f"{cond}.csv", index=False)
        metrics[cond] = tmp_path / f"{cond}.csv"
    with pytest.raises(InputError, match=r"ct\.csv: column lve, row 3: expected a number, got 'bad'"):
        A.metric_correlation(answers, manifest, metrics, n_resamples=20)
