"""The talkers' audio front-ends and the intensity levels: a linear probe on pooled front-end features,
held-out identities, on a small synth-mead corpus (soft vs loud differ in vocal effort, not only gain)."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from p3d.analysis.level_probe import (corpus_level_probe, front_end_level_probe, held_out_level_probe,
                                      level_probe_table, pool_frames, talker_audio_encoder, talker_front_end_features)
from p3d.analysis import level_probe as lp
from p3d.errors import InputError
from p3d.models.audio_encoder import AudioEncoderConfig

#: a tiny random wav2vec2 (the paper front-end's architecture and waveform normalisation, no download)
TINY_WAV2VEC2 = AudioEncoderConfig(kind="wav2vec2", wav2vec2_config=dict(
    hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, conv_dim=(16,) * 7,
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2))


@pytest.fixture(scope="module")
def mead(tmp_path_factory):
    """synth-mead at smoke size with six test identities, four clips per level (~30 s to build)."""
    from p3d.corpus import Corpus
    from p3d.synth import corpus as sc

    custom = dataclasses.replace(sc.spec("synth-mead", "smoke"), splits={"train": 1, "test": 6},
                                 clips_per_identity=4)
    root = sc.build("synth-mead", "smoke", tmp_path_factory.mktemp("mead"), custom=custom, workers=2,
                    progress=False)
    return Corpus.open(root)


def test_fixed_logmel_front_end_tells_soft_from_loud_on_held_out_identities(mead, one_torch_thread):
    """FaceFormer's cpu front-end before any learned layer (the log-mel normalised per utterance and bin)
    separates soft from loud speech of identities the probe never saw; also when every clip is first
    brought to one RMS, so that gain carries no information (vocal effort: tilt, pitch, rate)."""
    as_is = front_end_level_probe(mead, "faceformer", "cpu", "test", stage="fixed", pooling="correlation",
                                  levels=(1, 3))
    equal = front_end_level_probe(mead, "faceformer", "cpu", "test", stage="fixed", pooling="correlation",
                                  levels=(1, 3), input_gain="equal-rms")
    for out in (as_is, equal):
        assert out["chance"] == 0.5 and out["n_clips"] == 48 and out["n_identities"] == 6
        assert len(out["per_fold"]) == 6 and not out["trained"]
    print(f"soft vs loud, fixed log-mel: as-is {as_is['accuracy']:.3f}, equal RMS {equal['accuracy']:.3f}")
    assert as_is["accuracy"] >= 0.7, as_is
    assert equal["accuracy"] >= 0.65, equal


def test_gain_only_control_is_at_chance_for_a_gain_invariant_front_end(mead, one_torch_thread):
    """Levels made of the same normal clips at the levels' gains: wav2vec2's waveform normalisation (the
    paper front-end) sees the same input at every level, so the probe is at chance (a front-end that kept
    gain would score far above it)."""
    x = mead.audio(mead.select("test")[0])[0]
    a = talker_front_end_features(TINY_WAV2VEC2, x, 16000, stage="fixed")
    b = talker_front_end_features(TINY_WAV2VEC2, 3.0 * x, 16000, stage="fixed")
    assert a.shape[1] == 16 and abs(a.shape[0] - x.size / 320) <= 1  # 50 Hz CNN features
    np.testing.assert_allclose(b, a, atol=1e-4 * np.abs(a).max())
    control = front_end_level_probe(mead, "faceformer", split="test", model=TINY_WAV2VEC2, stage="fixed",
                                    levels=(1, 3), input_gain="gain-only")
    assert control["n_clips"] == 48 and control["chance"] == 0.5
    assert control["accuracy"] <= 0.55, control
    # so is the talkers' mel front-end: its log floor is relative to the clip's peak mel energy, so a gain
    # shifts every log-mel cell by the same amount and the per-utterance normalisation removes it (an absolute
    # floor, log(mel + 1e-6), kept the gain: a gain-only probe on it scored 0.6-0.7 for soft vs loud)
    enc = talker_audio_encoder(("faceformer", "cpu"))
    mel = [talker_front_end_features(enc, g * x, 16000, stage="fixed") for g in (1.0, 3.0)]
    np.testing.assert_allclose(mel[1], mel[0], atol=1e-3)
    control = front_end_level_probe(mead, "faceformer", "cpu", "test", stage="fixed", pooling="correlation",
                                    levels=(1, 3), input_gain="gain-only")
    print(f"gain-only control, fixed log-mel: {control['accuracy']:.3f}")
    assert control["n_clips"] == 48 and control["chance"] == 0.5
    assert control["accuracy"] <= 0.6, control


def test_trained_run_front_end(mead, tmp_path, one_torch_thread):
    """A run folder's final.pt is probed through its own (trained) encoder."""
    import torch

    from p3d.models.faceformer import FaceFormer, FaceFormerConfig

    torch.manual_seed(1)
    model = FaceFormer(FaceFormerConfig.from_preset("smoke", n_vertices=mead.topology.n_vertices, n_styles=1))
    model.save(tmp_path / "final.pt")
    (tmp_path / "config.json").write_text(json.dumps({"kind": "talker", "model": "faceformer", "preset": "smoke",
                                                      "styles": ["S000"], "fps": 30}))
    out = front_end_level_probe(mead, "faceformer", "cpu", "test", run=tmp_path, levels=(1, 3))
    assert out["trained"] and out["preset"] == "smoke" and out["n_clips"] == 48
    x = mead.audio(mead.select("test")[0])[0]
    np.testing.assert_allclose(talker_front_end_features(model, x, 16000, n_frames=40),
                               talker_front_end_features(talker_audio_encoder(model), x, 16000, n_frames=40))
    with pytest.raises(InputError, match="not 'selftalk'"):
        front_end_level_probe(mead, "selftalk", run=tmp_path)
    # the notebook's table takes trained runs too: one row per input, the whole trained encoder
    table = level_probe_table(mead, ["faceformer"], "smoke", levels=(1, 3), inputs=("equal-rms",),
                              trained={"FaceFormer, trained": ("faceformer", tmp_path)})
    trained = table[table["front_end"] == "FaceFormer, trained"]
    assert list(trained["input"]) == [lp.INPUT_LABELS["as-is"], lp.INPUT_LABELS["gain-only"]]
    assert trained["features"].str.startswith(lp.TRAINED_FEATURES).all()
    direct = front_end_level_probe(mead, "faceformer", "smoke", "test", train_split="train", run=tmp_path,
                                   levels=(1, 3))
    assert trained["accuracy"].iloc[0] == pytest.approx(direct["accuracy"])


def test_front_end_features_and_bad_input(mead):
    x = mead.audio(mead.select("test")[0])[0]
    enc = talker_audio_encoder(("selftalk", "smoke"), seed=3)
    f = talker_front_end_features(enc, x, 16000, stage="fixed")
    assert f.shape == (1 + x.size // 160, 80)
    np.testing.assert_allclose(f.mean(axis=0), 0, atol=1e-4)  # normalised per utterance and bin
    assert talker_front_end_features(enc, x, 16000, n_frames=25).shape == (25, 16)
    x8 = x[::2].copy()  # 8 kHz: resampled to 16 kHz as the clip datasets do
    assert talker_front_end_features(enc, x8, 8000, stage="fixed").shape[0] == pytest.approx(f.shape[0], abs=2)
    assert pool_frames(f, "moments+correlation").shape == (160 + 80 * 79 // 2,)
    with pytest.raises(InputError, match="stage"):
        talker_front_end_features(enc, x, 16000, stage="logits")
    with pytest.raises(InputError, match="mono"):
        talker_front_end_features(enc, np.zeros((2, 100)), 16000)
    with pytest.raises(InputError, match="pooling"):
        pool_frames(f, "max")
    with pytest.raises(InputError, match="2 identities"):
        front_end_level_probe(mead, "faceformer", "smoke", "train", stage="fixed")
    with pytest.raises(InputError, match="levels"):
        front_end_level_probe(mead, "faceformer", "smoke", "test", levels=(1, 4))
    with pytest.raises(InputError, match="input_gain"):
        front_end_level_probe(mead, "faceformer", "smoke", "test", input_gain="loud")
    with pytest.raises(InputError, match="unknown talking-head model"):
        front_end_level_probe(mead, "wav2lip", "smoke", "test")


def test_held_out_level_probe_contract():
    """One fit on some identities, scored on others: a level signal is found, noise is not, identities kept apart."""
    rng = np.random.default_rng(0)
    levels = np.tile([1, 2, 3], 80)
    ids = np.repeat([f"S{i:02d}" for i in range(12)], 20)
    signal = rng.normal(size=(240, 5))
    signal[:, 0] += 3.0 * levels + 5.0 * np.repeat(np.arange(12), 20)  # identity offsets: removed by centring
    train, test = ids < "S06", ids >= "S06"
    out = held_out_level_probe((signal[train], levels[train], ids[train]), (signal[test], levels[test], ids[test]))
    assert out["n"] == 120 and out["n_train"] == 120 and out["chance"] == pytest.approx(40 / 120)
    assert out["accuracy"] > 0.8 and out["ci_low"] < out["accuracy"] < out["ci_high"] <= 1
    assert sorted(out["per_identity"]) == [f"S{i:02d}" for i in range(6, 12)]
    noise = rng.normal(size=(240, 5))
    out = held_out_level_probe((noise[train], levels[train], ids[train]), (noise[test], levels[test], ids[test]))
    assert out["accuracy"] < 0.6 and out["ci_low"] < 1 / 3 < out["ci_high"]
    with pytest.raises(InputError, match="in both train and test") as err:
        held_out_level_probe((signal, levels, ids), (signal[test], levels[test], ids[test]))
    assert "['S06', 'S07'," in str(err.value) and "np.str_" not in str(err.value)  # was [np.str_('S06'), ...]
    with pytest.raises(InputError, match="features per clip"):
        held_out_level_probe((signal[train], levels[train], ids[train]), (signal[test, :3], levels[test], ids[test]))
    with pytest.raises(InputError, match="single level"):
        held_out_level_probe((signal[train], np.ones(120), ids[train]), (signal[test], levels[test], ids[test]))


def test_level_probe_table_fits_on_train_identities_and_scores_the_test_split(mead, one_torch_thread):
    """The notebook's table: the corpus' own loudness-normalised audio, then the talkers' shared fixed front-end
    (at smoke the three talkers have one audio-encoder config: one row per input) with its gain-only control."""
    table = level_probe_table(mead, ["faceformer", "codetalker", "selftalk"], "smoke")
    assert list(table.columns) == ["front_end", "features", "input", "accuracy", "chance", "ci_low", "ci_high",
                                   "n_clips", "n_train_clips", "n_identities"]
    assert len(table) == 3 and table["front_end"][1].startswith("FaceFormer / CodeTalker / SelfTalk")
    assert (table["n_clips"] == 72).all() and (table["n_train_clips"] == 12).all() and (table["n_identities"] == 6).all()
    assert table["chance"].tolist() == pytest.approx([1 / 3] * 3)
    assert ((table["ci_low"] <= table["accuracy"]) & (table["accuracy"] <= table["ci_high"])).all()
    print(table[["front_end", "input", "accuracy"]].to_string())
    # gain-only: the mel front-end sees one input at every level, so the probe cannot beat chance
    assert table["accuracy"][2] <= 0.45, table
    corpus = corpus_level_probe(mead, "test", train_split="train", levels=(1, 3))
    assert corpus["n_clips"] == 48 and corpus["n_train_clips"] == 8 and corpus["chance"] == 0.5
    with pytest.raises(InputError, match="in both train and test"):
        corpus_level_probe(mead, "test", train_split="test")
    # the full preset trains the cpu models: its front-end is the cpu one
    assert talker_audio_encoder(("faceformer", "full")).config == talker_audio_encoder(("faceformer", "cpu")).config


def test_level_probe_reading_follows_the_intervals():
    import pandas as pd

    from p3d.analysis.level_probe import INPUT_LABELS, level_probe_reading

    def table(front_ci, control_ci):
        rows = [("corpus audio (no talker)", "equal-rms", 0.6, (0.55, 0.65)), ("FaceFormer: fixed part", "equal-rms",
                 0.45, front_ci), ("FaceFormer: fixed part", "gain-only", 0.34, control_ci)]
        return pd.DataFrame([{"front_end": f, "input": INPUT_LABELS[i], "accuracy": a, "chance": 1 / 3, "ci_low": lo,
                              "ci_high": hi, "n_clips": 504} for f, i, a, (lo, hi) in rows])

    heard = level_probe_reading(table((0.40, 0.49), (0.29, 0.38)))
    assert "0.45 [0.40, 0.49] vs chance 0.33 (504 test clips): above chance" in heard
    assert "at chance, as it should be" in heard and "as vocal effort rather than gain" in heard
    assert "keeps gain" in level_probe_reading(table((0.40, 0.49), (0.36, 0.45)))
    assert "never receives it" in level_probe_reading(table((0.30, 0.49), (0.29, 0.38)))
    # trained encoders get their own reading line, and do not change the fixed front-end's
    t = table((0.30, 0.49), (0.29, 0.38)).assign(features="log-mel")
    trained = pd.DataFrame([{"front_end": "FaceFormer, trained", "features": lp.TRAINED_FEATURES + "; mean + std",
                             "input": INPUT_LABELS[i], "accuracy": a, "chance": 1 / 3, "ci_low": lo, "ci_high": hi,
                             "n_clips": 504} for i, a, lo, hi in (("as-is", 0.45, 0.40, 0.49),
                                                                   ("gain-only", 1 / 3, 0.30, 0.36))])
    reading = level_probe_reading(pd.concat([t, trained], ignore_index=True))
    assert "never receives it" in reading and "taught them to hear vocal effort" in reading


def test_level_probe_caption_names_the_front_ends_the_table_holds():
    """Notebook 07 writes the level-probe table twice (fixed front-ends, then with the trained encoders added):
    one title, and a note that names the trained encoders only the second time."""
    title, note = lp.level_probe_caption("cpu")
    assert title == ("Can the talkers hear the intensity level? Linear probe, synth-mead train -> test identities "
                     "(preset `cpu`)")
    assert note.startswith("Logistic regression on standardised, identity-centred per-clip features")
    assert note.endswith("the fixed part (no trainable weights) of each talker's audio encoder at this preset.")
    title2, note2 = lp.level_probe_caption("cpu", trained=True)
    assert title2 == title and note2 == note[:-1] + (", and the trained audio encoders of the runs without the loss "
                                                      "(Table 2; Table 4).")


def test_accuracy_ci_resamples_identities_not_clips():
    # four speakers of 50 clips: two always right, two always wrong. A binomial interval over the 200 clips
    # would be about +/-0.07; resampling the four speakers must give a far wider one.
    hits = np.repeat([1.0, 1.0, 0.0, 0.0], 50)
    ids = np.repeat(["a", "b", "c", "d"], 50)
    low, high = lp.accuracy_ci(hits, ids)
    assert low <= 0.25 and high >= 0.75
    # every speaker at the same accuracy: nothing varies between them, the interval is the point
    even = np.tile([1.0, 0.0], 100)
    assert lp.accuracy_ci(even, np.repeat(["a", "b", "c", "d"], 50)) == (0.5, 0.5)
    one = lp.accuracy_ci(np.array([1.0, 0.0, 1.0]), ["a", "a", "a"])  # one identity: no interval (was the point)
    assert all(math.isnan(x) for x in one)
    with pytest.raises(InputError, match="no scored clip"):
        lp.accuracy_ci(np.array([]), [])


def test_a_reading_of_one_test_identity_has_no_verdict():
    """One held-out identity: no interval over identities, so the reading says so instead of 'above chance'."""
    import pandas as pd

    from p3d.analysis.level_probe import level_probe_reading

    rng = np.random.default_rng(0)

    def make(ids, n=30):
        y = np.tile([1, 2, 3], n)
        x = rng.normal(size=(len(y), 8))
        x[:, 0] += 0.4 * y
        return x, y, np.repeat(ids, len(y) // len(ids))

    out = held_out_level_probe(make(["a", "b", "c"]), make(["z"]))
    assert math.isnan(out["ci_low"]) and math.isnan(out["ci_high"])
    row = pd.DataFrame([{"front_end": "X: fixed part", "features": "f", "input": "loudness-normalised (one RMS)",
                         "n_clips": out["n"], **{k: out[k] for k in ("accuracy", "chance", "ci_low", "ci_high")}}])
    first = level_probe_reading(row).splitlines()[0]
    assert first.endswith("no interval (fewer than two test identities), no reading.") and "above chance" not in first


def test_logmel_statistics_normalise_the_gain_and_leave_out_frames_40_db_down():
    """The clip is scaled to unit RMS first (any gain gives the same statistics) and frames more than 40 dB below
    the loudest are silence, left out: white noise followed by the same noise 60 dB down has the spread of the
    noise alone (a 60 dB step is 6.9 nepers of log power: a per-bin std near 3.5 if the quiet half were kept, as
    it is at -30 dB)."""
    rng = np.random.default_rng(0)
    loud = rng.normal(size=8000)  # 0.5 s at 16 kHz
    quiet = rng.normal(size=8000)
    down60 = lp.logmel_statistics(np.concatenate([loud, 10 ** (-60 / 20) * quiet]), 16000)
    down30 = lp.logmel_statistics(np.concatenate([loud, 10 ** (-30 / 20) * quiet]), 16000)
    assert down60.shape == (80,)
    assert np.allclose(lp.logmel_statistics(3.0 * np.concatenate([loud, 1e-3 * quiet]), 16000), down60, atol=1e-9)
    assert down60[40:].max() < 1.5 < 3.0 < down30[40:].min()


def test_pool_frames_correlation_is_the_upper_triangle_of_the_correlation_matrix():
    """"correlation": the D (D - 1) / 2 values above the diagonal of the Pearson correlation matrix between
    dimensions (numpy's corrcoef), a constant dimension counting as uncorrelated."""
    rng = np.random.default_rng(1)
    f = rng.normal(size=(40, 4))
    f[:, 1] += 2 * f[:, 0]
    expected = np.corrcoef(f, rowvar=False)[np.triu_indices(4, 1)]
    assert np.allclose(lp.pool_frames(f, "correlation"), expected)
    f[:, 3] = 7.0
    got = lp.pool_frames(f, "moments+correlation")
    assert np.allclose(got[:8], np.concatenate([f.mean(0), f.std(0)]))
    assert np.allclose(got[8:], np.r_[expected[:2], 0.0, expected[3], 0.0, 0.0])


def test_level_probe_centres_identities_and_folds_as_documented():
    """Identity offsets along the level's own direction: centring each identity's features (the default) finds the
    level on held-out identities; leave-one-identity-out up to 10 identities, 5 identity folds above; chance the
    majority level's share."""
    from p3d.analysis.level_probe import level_probe

    rng = np.random.default_rng(0)
    levels = np.tile([1, 2, 3], 40)
    ids = np.repeat(np.arange(6), 20)
    x = rng.normal(size=(120, 5))
    x[:, 0] += 3.0 * levels + 5.0 * ids
    out = level_probe(x, levels, ids)
    assert out["n_folds"] == 6 and out["accuracy"] > 0.8 and out["chance"] == pytest.approx(1 / 3)
    assert level_probe(x, levels, ids, center_by_identity=False)["accuracy"] < 0.6  # the offsets hide the level
    twelve = np.repeat(np.arange(12), 10)
    assert level_probe(x, levels, twelve)["n_folds"] == 5
    uneven = np.where(np.arange(120) % 4 == 0, 3, 1)  # a quarter at level 3
    assert level_probe(x, uneven, ids)["chance"] == pytest.approx(0.75)


def test_held_out_chance_and_per_identity_are_the_test_sets():
    """chance: the *test* clips' majority-level share (3 of 4 test clips are level 1, while the training clips are
    balanced); per_identity: each test identity's own share of correct clips (y's clips sit on their level, z's all
    sit at level 2's place, so none of z's levels 1 and 3 is read right)."""
    rng = np.random.default_rng(0)
    train_levels = np.tile([1, 2, 3], 20)
    train = (0.05 * rng.normal(size=(60, 3)) + train_levels[:, None], train_levels, np.repeat(["a", "b", "c"], 20))
    test_levels = np.where(np.arange(40) % 4 == 0, 3, 1)
    place = np.where(np.arange(40) < 20, test_levels, 2)
    test = (0.05 * rng.normal(size=(40, 3)) + place[:, None], test_levels, np.repeat(["y", "z"], 20))
    out = held_out_level_probe(train, test, center_by_identity=False)
    assert out["chance"] == pytest.approx(0.75)
    assert out["per_identity"] == {"y": 1.0, "z": 0.0} and out["accuracy"] == 0.5


def test_level_probe_reading_concludes_from_every_talker_row_and_its_control():
    """The conclusion needs *every* talker row above chance and every gain-only control at chance: a control off
    chance says part of it may be loudness; one front-end of two at chance says the probe does not show it."""
    import pandas as pd

    from p3d.analysis.level_probe import INPUT_LABELS, level_probe_reading

    def row(front, gain, lo, hi):
        return {"front_end": front, "input": INPUT_LABELS[gain], "accuracy": (lo + hi) / 2, "chance": 1 / 3,
                "ci_low": lo, "ci_high": hi, "n_clips": 504}

    off = level_probe_reading(pd.DataFrame([row("A: fixed part", "equal-rms", 0.40, 0.49),
                                            row("A: fixed part", "gain-only", 0.36, 0.45)]))
    assert "part of what it hears may be loudness" in off and "vocal effort rather than gain" not in off
    one_of_two = level_probe_reading(pd.DataFrame([row("A: fixed part", "equal-rms", 0.40, 0.49),
                                                   row("B: fixed part", "equal-rms", 0.30, 0.49)]))
    assert "does not show that the talkers' front-end hears the level" in one_of_two


def test_gain_only_control_scales_the_normal_clips_by_the_level_volumes(mead):
    """gain-only: every level of an identity is its level-2 clips times that level's espeak volume over level 2's
    (meta.json spec.level_volume, one per level in level order)."""
    volume = dict(zip(sorted({c.level for c in mead.clips}), mead.meta["spec"]["level_volume"]))
    normal = [c for c in mead.select("test") if c.level == 2][:2]
    items = lp._level_items(mead, normal, [1, 3], "gain-only")
    assert [(clip.stem, level) for clip, level, _, _ in items] == [(c.stem, lv) for c in normal for lv in (1, 3)]
    for clip, level, audio, _ in items:
        original, _ = mead.audio(clip)
        assert np.allclose(audio, np.asarray(original) * volume[level] / volume[2], rtol=1e-5, atol=1e-7)
