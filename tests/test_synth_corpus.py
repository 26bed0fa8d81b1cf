"""The synthetic corpora: layout, labels, lip closure, loudness-amplitude coupling, SLCC, determinism, resume."""
import dataclasses
import hashlib

import numpy as np
import pytest

from p3d.corpus import Corpus
from p3d.errors import InputError
from p3d.synth import corpus as sc


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    for name in sc.CORPORA:
        sc.build(name, "smoke", out, seed=0, workers=2, progress=False)
    return out


def _digest(root):
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".npy", ".wav", ".npz"}):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_layouts_read_by_loaders(smoke):
    voca = Corpus.open(smoke / "synth-voca")
    assert voca.fps == 60 and voca.model_fps == 30
    assert {s: len(v) for s, v in voca.meta["splits"].items()} == {"train": 2, "val": 1, "test": 1}
    mead = Corpus.open(smoke / "synth-mead")
    assert sorted({c.level for c in mead.clips}) == [1, 2, 3]
    lrs3 = Corpus.open(smoke / "synth-lrs3")
    clip = lrs3.clips[0]
    video = lrs3.lip_video(clip)
    assert video.dtype == np.uint8 and video.shape[1:] == (32, 32)
    assert len(video) == len(lrs3.vertices(clip)) == len(lrs3.labels(clip)["phoneme"])
    for c in (voca, mead, lrs3):
        assert c.topology.n_vertices == c.vertices(c.clips[0]).shape[1]
        assert set(c.templates) == {x.identity for x in c.clips}
        assert (c.root / "README.md").read_text().startswith(f"# {c.name}")


def test_eval_gt_against_itself_is_zero(smoke, tmp_path):
    from p3d.evaluate import EvalConfig, evaluate

    root = smoke / "synth-voca"
    pred = tmp_path / "pred"
    pred.mkdir()
    for f in sorted((root / "vertices_npy").glob("*.npy")):
        np.save(pred / f"{f.stem}_condition_X.npy", np.load(f)[::2])
    report = evaluate(EvalConfig(pred=pred, gt=root, fps=30, gt_fps=60, topology=str(root / "topology.npz"),
                                 metrics=("lve", "mtm"), bootstrap_resamples=100), progress=False)
    assert report.per_clip["lve"].max() == 0
    assert report.per_clip["mtm_frames"].max() == 0
    assert report.per_clip["mtm_matches"].min() > 0


def _inner_gap(corpus, clip):
    from p3d.synth.face import lip_gap

    return lip_gap(corpus.vertices(clip, model_rate=False))


def test_bilabials_close_and_open_vowels_open(smoke):
    from p3d.synth.visemes import VISEME_INDEX

    c = Corpus.open(smoke / "synth-voca")
    closed, opened = [], []
    for clip in c.clips:
        gap = _inner_gap(c, clip)
        vis = c.labels(clip, model_rate=False)["viseme"]
        for value, bucket in ((VISEME_INDEX["PP"], closed), (VISEME_INDEX["aa"], opened)):
            idx = np.flatnonzero(vis == value)
            if len(idx) == 0:
                continue
            segments = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
            bucket.extend(gap[s].min() if bucket is closed else gap[s].max() for s in segments)
    assert len(closed) > 5 and len(opened) > 5
    assert np.median(closed) < 0.001  # bilabial segments reach lip contact (< 1 mm)
    assert np.median(opened) > 0.006  # open vowels open the lips (> 6 mm)


def test_silence_between_words_is_quiet(smoke):
    import soundfile as sf

    c = Corpus.open(smoke / "synth-voca")
    quiet, loud = [], []
    for clip in c.clips:
        audio, sr = sf.read(c.wav_path(clip))
        labels = c.labels(clip, model_rate=False)["phoneme"]
        pause = c.meta["phonemes"].index("_")
        for k, lab in enumerate(labels[1:-1], start=1):  # interior frames only
            seg = audio[int(k / c.fps * sr):int((k + 1) / c.fps * sr)]
            (quiet if lab == pause and labels[k - 1] == pause and labels[k + 1] == pause else loud).append(
                np.sqrt(np.mean(seg ** 2)))
    assert quiet, "no interior pauses in the smoke corpus"
    assert np.median(quiet) < 0.02 * np.median(loud)


def test_loud_clips_move_lips_more_per_identity(tmp_path):
    from p3d.metrics import lip_intensity

    # 8 clips per level: with 2 (the smoke preset) sentence-to-sentence variation (about ±25 %) decides
    custom = dataclasses.replace(sc.spec("synth-mead", "smoke"), splits={"train": 3}, clips_per_identity=8)
    c = Corpus.open(sc.build("synth-mead", "smoke", tmp_path, custom=custom, workers=2, progress=False))
    lips = c.topology.lips
    for ident in c.identities():
        clips = c.select(None, [ident])
        by_level = {lv: np.mean([lip_intensity(c.vertices(x), lips) for x in clips if x.level == lv]) for lv in (1, 3)}
        rms = {lv: np.mean([x.speech_rms for x in clips if x.level == lv]) for lv in (1, 3)}
        assert rms[3] > rms[1]
        assert by_level[3] > by_level[1], ident


def test_corpus_slcc_positive_but_imperfect(tmp_path):
    from p3d.metrics import lip_intensity, slcc

    custom = dataclasses.replace(sc.spec("synth-voca", "smoke"), splits={"train": 6}, clips_per_identity=16)
    root = sc.build("synth-voca", "smoke", tmp_path, custom=custom, workers=2, progress=False)
    c = Corpus.open(root)
    lips = c.topology.lips
    r = slcc(np.array([x.speech_rms for x in c.clips]),
             np.array([lip_intensity(c.vertices(x), lips) for x in c.clips]),
             np.array([x.identity for x in c.clips]))
    assert 0.2 < r < 0.8


def test_smoke_corpus_slcc_is_positive_per_level(smoke):
    """The data's own level-wise SLCC (Table 4 "MEAD-3D (data)" row) at smoke size: positive per level."""
    table = sc.corpus_slcc(Corpus.open(smoke / "synth-mead")).set_index("level")
    assert list(table.index) == [1, 2, 3, "all"] and list(table["n"]) == [6, 6, 6, 18]
    assert (table["r"] > 0).all(), table
    assert (table["ci_low"] < table["r"]).all() and (table["r"] < table["ci_high"]).all()
    voca = sc.corpus_slcc(Corpus.open(smoke / "synth-voca"), split="train")
    assert list(voca["level"]) == ["all"] and voca["n"].iloc[0] == 8
    with pytest.raises(InputError, match="no clips in split"):
        sc.corpus_slcc(Corpus.open(smoke / "synth-voca"), split="nope")


def test_ground_truth_upper_face_moves(smoke):
    """Brows and eyelids move (FDD's region is not still): most clips have clearly nonzero dynamics."""
    for name in sc.CORPORA:
        stats = sc.upper_face_motion_stats(Corpus.open(smoke / name))
        assert (stats["upper_dyn"] > 1e-8).mean() >= 0.75, name  # m^2; Table S7's FDD values are ~3e-7
        assert stats["upper_dyn"].mean() > 1e-7, name
        assert 0.002 < stats["upper_max_disp"].max() < 0.008, name  # brows up to 6 mm, lids ~6 mm


def test_levels_differ_in_vocal_effort_not_only_gain(smoke):
    import pandas as pd

    df = pd.read_csv(smoke / "synth-mead" / "clips.csv")
    for _, g in df.groupby("identity"):
        by = g.groupby("level")[["pitch", "rate", "effort_db", "amplitude"]].mean()
        assert by.loc[3, "pitch"] > by.loc[1, "pitch"] and by.loc[3, "rate"] < by.loc[1, "rate"]
        assert by.loc[3, "effort_db"] - by.loc[1, "effort_db"] > 3


def test_record_reproduces_the_wav(smoke):
    """A clip's record re-makes its audio (espeak-ng plus the vocal-effort filter): lip-shape captions rely on it."""
    c = Corpus.open(smoke / "synth-mead")
    clip = [x for x in c.clips if x.level == 3][0]
    with np.load(c.root / "labels" / f"{clip.stem}.npz", allow_pickle=False) as d:
        import json

        rec = json.loads(str(d["record"]))
    assert rec["effort_db"] > 0 and rec["effort_sensitivity"] != 1.0
    audio, _ = c.audio(clip)
    utt = sc.resynthesize(rec)
    assert len(utt.audio) == len(audio) and np.abs(utt.audio - audio).max() < 1e-4
    with pytest.raises(InputError, match="lacks"):
        sc.resynthesize({"sentence": "hello"})


def test_presets_and_full_sizes():
    assert sc.PRESETS == ("smoke", "cpu", "full", "paper")
    voca, mead = sc.spec("synth-voca", "full"), sc.spec("synth-mead", "full")
    assert voca.splits["test"] >= 4 and voca.clips_per_identity >= 40
    assert mead.splits["test"] * mead.clips_per_identity * len(mead.levels) >= 1500  # ~500 clips per level
    assert sum(sc.spec("synth-mead", "smoke").splits.values()) * 2 * 3 == 18  # smoke stays tiny
    cpu = sc.plan(sc.spec("synth-mead", "cpu"), seed=0)
    assert sum(j.split == "test" for j in cpu) >= 500 and sum(j.split == "train" for j in cpu) == 6 * 3 * 8
    assert len({j.text for j in cpu}) == len(cpu)  # every clip its own sentence
    assert len({j.stem for j in cpu}) == len(cpu)


def _build_interrupted(monkeypatch, out, seed: int, at_clip: int) -> None:
    """``sc.build("synth-mead", "smoke", out, seed=seed)`` interrupted (KeyboardInterrupt) as it writes clip
    number ``at_clip``: the clips before it are finished. Restores ``_write_clip`` afterwards."""
    real = sc._write_clip
    calls = {"n": 0}

    def interrupted(*args, **kw):
        calls["n"] += 1
        if calls["n"] == at_clip:
            raise KeyboardInterrupt("simulated interrupt")
        return real(*args, **kw)

    monkeypatch.setattr(sc, "_write_clip", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sc.build("synth-mead", "smoke", out, seed=seed, progress=False)
    monkeypatch.setattr(sc, "_write_clip", real)


def test_deterministic_and_resumable(tmp_path, monkeypatch):
    a = sc.build("synth-mead", "smoke", tmp_path / "a", seed=3, progress=False)
    _build_interrupted(monkeypatch, tmp_path / "b", seed=3, at_clip=5)
    b_root = tmp_path / "b" / "synth-mead"
    assert not (b_root / "meta.json").exists()
    assert len(list((b_root / "labels").glob("*.npz"))) == 4
    assert not list(b_root.rglob("*.tmp*"))  # nothing half-written under a final name or left behind
    made = []
    monkeypatch.setattr(sc, "make_clip", lambda job, *a, **k: made.append(job.stem) or real_make(job, *a, **k))
    sc.build("synth-mead", "smoke", tmp_path / "b", seed=3, progress=False)
    assert len(made) == 18 - 4  # finished clips were not redone
    assert _digest(a) == _digest(b_root)  # same seed, same bytes, interrupted or not
    assert not (b_root / sc.PARTIAL_RECORD).exists()  # the unfinished corpus' record goes with meta.json
    made.clear()
    sc.build("synth-mead", "smoke", tmp_path / "b", seed=3, progress=False)
    assert made == []  # a finished corpus is left alone
    with pytest.raises(InputError, match="another preset"):
        sc.build("synth-mead", "smoke", tmp_path / "b", seed=4, progress=False)


real_make = sc.make_clip


def test_an_unfinished_corpus_refuses_other_settings(tmp_path, monkeypatch):
    """An interrupted corpus completed with another seed (or preset) kept the first settings' clips and made
    the rest with the second, under a meta.json naming the second only; now refused before any clip is made,
    and a folder of clips that records no settings (an older p3d's) too."""
    _build_interrupted(monkeypatch, tmp_path, seed=3, at_clip=3)
    root = tmp_path / "synth-mead"
    before = sorted(p.name for p in (root / "labels").iterdir())
    assert len(before) == 2
    monkeypatch.setattr(sc, "make_clip", lambda *a, **k: pytest.fail("made a clip"))
    with pytest.raises(InputError, match="unfinished corpus of another preset/seed/version"):
        sc.build("synth-mead", "smoke", tmp_path, seed=4, progress=False)
    (root / sc.PARTIAL_RECORD).unlink()
    with pytest.raises(InputError, match="does not record"):
        sc.build("synth-mead", "smoke", tmp_path, seed=3, progress=False)
    assert sorted(p.name for p in (root / "labels").iterdir()) == before


def test_spec_errors():
    with pytest.raises(InputError, match="unknown corpus"):
        sc.spec("synth-biwi", "cpu")
    with pytest.raises(InputError, match="unknown preset"):
        sc.spec("synth-voca", "huge")


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_cli_refuses_a_worker_count_below_one(tmp_path, capsys, workers):
    """Was silently taken as one process."""
    from p3d.cli import main

    argv = ["data", "synth", "--corpus", "synth-voca", "--preset", "smoke", "--out", str(tmp_path / "d"), "--workers"]
    assert main([*argv, workers]) == 2
    assert capsys.readouterr().err.strip() == ("p3d data: error: --workers: expected a positive number of speech "
                                               f"synthesis processes, got {workers}")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("blocker", ["corpus file", "labels file", "partial record folder", "meta folder",
                                     "meta list"])
def test_build_refuses_a_folder_that_cannot_take_the_corpus(tmp_path, monkeypatch, blocker):
    """A file in place of the corpus folder or of its labels/ folder, or a meta.json / .partial.json that is a
    folder, was a FileExistsError / IsADirectoryError traceback; a meta.json holding a JSON list an
    AttributeError. Now one InputError before any clip is made."""
    root = tmp_path / "synth-mead"
    if blocker == "corpus file":
        root.write_text("")
    elif blocker == "labels file":
        root.mkdir()
        (root / "labels").write_text("")
    elif blocker == "meta list":
        root.mkdir()
        (root / "meta.json").write_text("[1]")
    else:
        (root / (sc.PARTIAL_RECORD if blocker == "partial record folder" else "meta.json")).mkdir(parents=True)
    monkeypatch.setattr(sc, "make_clip", lambda *a, **k: pytest.fail("made a clip"))
    with pytest.raises(InputError, match="is not a folder|another preset"):
        sc.build("synth-mead", "smoke", tmp_path, seed=0, progress=False)


def test_cli_checks_every_corpus_folder_before_building_any(tmp_path, capsys):
    """`--corpus all` built synth-voca (minutes at the cpu preset) before refusing the synth-mead folder of
    another seed; now it refuses first and writes nothing."""
    from p3d.cli import main

    (tmp_path / "synth-mead").mkdir()
    (tmp_path / "synth-mead" / "meta.json").write_text('{"spec_hash": "0000000000000000"}')
    assert main(["data", "synth", "--corpus", "all", "--preset", "smoke", "--out", str(tmp_path),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "synth-mead holds a corpus made with another preset/seed/version" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth-mead"]


@pytest.mark.parametrize("change", [
    {"clips_per_identity": 0},  # was a KeyError ('duration_s') after planning no clip
    {"splits": {"train": 2, "test": -1}},  # was silently a corpus with an empty test split
    {"level_amplitude": (1.0,)},  # was an IndexError
    {"clip_db_sd": -1.0},  # was numpy's "scale < 0"
    {"test_clips_per_identity": -3},  # was an IndexError
    {"fps": 0},  # was "utterance too short" for the first clip, after its synthesis
    {"fps": 50, "model_fps": 30},  # models take every k-th frame
    {"lip_video_size": 4},  # was refused by the renderer only after the first clip's synthesis
    {"rate_range": (185, 145)},
])
def test_custom_spec_refuses_settings_the_generator_cannot_make(change):
    with pytest.raises(InputError, match="^corpus spec"):
        dataclasses.replace(sc.spec("synth-mead", "smoke"), **change)


def test_every_preset_spec_is_valid():
    for name in sc.CORPORA:
        for preset in ("smoke", "cpu", "full", "paper"):
            assert sc.spec(name, preset).n_identities > 0
