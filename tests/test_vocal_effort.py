"""Vocal effort: louder synthetic speech differs from softer speech beyond gain, so loudness-normalised
audio still tells the levels apart (the precondition of the level-wise SLCC claims, Table 4)."""
from __future__ import annotations

import numpy as np
import pytest

from p3d.analysis.level_probe import level_probe, logmel_statistics
from p3d.errors import InputError
from p3d.synth import corpus as sc
from p3d.synth import effort as E

SR = 16000


def test_tilt_filter_response_and_neutrality():
    from scipy.signal import freqz

    taps = E.tilt_filter(6.0, SR)
    assert len(taps) == E.FILTER_TAPS and np.allclose(taps, taps[::-1])  # linear phase: timings kept
    f = np.array([250.0, 500.0, 1000.0, 2000.0, 3000.0, 6000.0])
    _, h = freqz(taps, worN=f, fs=SR)
    np.testing.assert_allclose(20 * np.log10(np.abs(h)), E.tilt_response_db(f, 6.0), atol=0.5)
    # +6 dB of effort: 2.4 dB/octave flatter, +3 dB at 3 kHz on top
    assert E.tilt_response_db(np.array([2000.0]), 6.0)[0] - E.tilt_response_db(np.array([1000.0]), 6.0)[0] > 2.4
    x = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    np.testing.assert_array_equal(E.apply_tilt(x, SR, 0.0), x)  # effort 0: untouched
    y = E.apply_tilt(x, SR, 4.0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.sqrt(np.mean(y.astype(float) ** 2)) == pytest.approx(np.sqrt(np.mean(x.astype(float) ** 2)), rel=1e-4)
    click = np.zeros(2001)
    click[1000] = 0.5
    assert np.argmax(np.abs(E.apply_tilt(click, SR, 5.0))) == 1000  # no delay


def test_effort_voice_and_bad_input():
    assert E.effort_voice(0.0, 50, 160) == (50, 160)
    p_loud, r_loud = E.effort_voice(3.0, 50, 160)
    p_soft, r_soft = E.effort_voice(-3.0, 50, 160)
    assert p_soft < 50 < p_loud and r_loud < 160 < r_soft
    assert 0.04 < (r_soft - r_loud) / 160 < 0.09  # a few % slower when loud
    assert E.effort_voice(3.0, 50, 160, sensitivity=0.0) == (50, 160)
    assert E.effort_voice(25.0, 99, 85)[0] == 100  # clipped to espeak's range
    with pytest.raises(InputError, match="effort_db"):
        E.effort_voice(float("nan"), 50, 160)
    with pytest.raises(InputError, match="sensitivity"):
        E.apply_tilt(np.zeros(100), SR, 1.0, sensitivity=-1)
    with pytest.raises(InputError, match="mono"):
        E.apply_tilt(np.zeros((2, 100)), SR, 1.0)


def _level_pairs(n_identities: int, n_sentences: int):
    """Soft (MEAD level 1) and loud (level 3) renditions of the same sentences by the same speakers, made
    exactly as the corpus makes them: espeak volume, pitch and rate from the plan, then the effort filter."""
    from p3d.synth.identity import sample_identities
    from p3d.synth.speech import SpeechRequest, synthesize_many

    s = sc.spec("synth-mead", "smoke")
    s = sc.CorpusSpec(**{**s.__dict__, "splits": {"train": n_identities}, "clips_per_identity": 1})
    jobs = [j for j in sc.plan(s, seed=0) if j.level == 2]
    people = sample_identities(s.n_identities, sc._identity_seed(s, 0))
    sentences = [j.text for j in jobs][:n_sentences]
    level_db = {1: 20 * np.log10(s.level_volume[0] / s.level_volume[1]),
                3: 20 * np.log10(s.level_volume[2] / s.level_volume[1])}
    meta, requests = [], []
    for job in jobs:
        sens = people[job.identity].effort_sensitivity
        for text in sentences:
            for level, vol in ((1, s.level_volume[0]), (3, s.level_volume[2])):
                pitch, rate = E.effort_voice(level_db[level], job.pitch, job.rate, sens)
                requests.append(SpeechRequest(text, voice=job.voice, rate=rate, pitch=pitch, volume=vol))
                meta.append((job.identity_name, text, level, level_db[level], sens))
    utts = synthesize_many(requests, workers=2)
    audio = [E.apply_tilt(u.audio, u.sample_rate, db, sens) for u, (_, _, _, db, sens) in zip(utts, meta)]
    return meta, audio


@pytest.fixture(scope="module")
def pairs():
    return _level_pairs(n_identities=5, n_sentences=3)


def _normalised(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.sqrt(np.mean(x ** 2))


def _centroid(x):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float(np.sum(f * spec) / np.sum(spec))


def _median_f0(x):
    import librosa

    f0 = librosa.yin(x, fmin=60, fmax=400, sr=SR, frame_length=1024)
    rms = librosa.feature.rms(y=x, frame_length=1024, hop_length=256)[0][:len(f0)]
    return float(np.median(f0[rms > 0.5 * np.median(rms)]))


def test_loudness_normalised_soft_and_loud_renditions_differ(pairs):
    """Paired: the same sentence by the same speaker, RMS-normalised: the loud rendition has a higher
    spectral centroid and a higher F0, every time."""
    meta, audio = pairs
    by_key = {(who, text, level): _normalised(a) for (who, text, level, _, _), a in zip(meta, audio)}
    keys = sorted({(who, text) for who, text, *_ in meta})
    d_centroid = [_centroid(by_key[k + (3,)]) - _centroid(by_key[k + (1,)]) for k in keys]
    d_f0 = [_median_f0(by_key[k + (3,)]) / _median_f0(by_key[k + (1,)]) for k in keys]
    assert len(keys) == 15
    assert min(d_centroid) > 0, d_centroid
    assert np.median(d_centroid) > 100  # Hz
    assert min(d_f0) > 1.0 and np.median(d_f0) > 1.06  # ~2 semitones higher


def test_linear_probe_on_loudness_normalised_logmel_beats_chance(pairs):
    meta, audio = pairs
    feats = np.stack([logmel_statistics(a, SR) for a in audio])
    out = level_probe(feats, [m[2] for m in meta], [m[0] for m in meta])
    assert out["chance"] == 0.5 and out["n_folds"] == 5
    assert out["accuracy"] >= 0.85, out
    # the same features scaled per clip (a pure gain change) cannot fake the level: log-mel statistics of
    # RMS-normalised audio are gain-invariant
    np.testing.assert_allclose(logmel_statistics(3 * audio[0], SR), feats[0], atol=1e-4)


def test_level_probe_contract():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(6), 20)
    levels = np.tile([1, 2, 3, 3], 30)
    signal = rng.normal(size=(120, 5))
    signal[:, 0] += 2.0 * levels
    assert level_probe(signal, levels, ids)["accuracy"] > 0.8
    noise = level_probe(rng.normal(size=(120, 5)), levels, ids)
    assert noise["chance"] == 0.5 and noise["accuracy"] < 0.65
    with pytest.raises(InputError, match="2 levels"):
        level_probe(signal, np.ones(120), ids)
    with pytest.raises(InputError, match="must agree"):
        level_probe(signal, levels[:10], ids)
    with pytest.raises(InputError, match="NaN"):
        level_probe(np.full((120, 5), np.nan), levels, ids)


def test_tilt_response_follows_the_documented_table():
    """The module table, computed by hand: at e = effort_db * sensitivity, 0.4 e dB/octave about 1 kHz plus
    0.5 e dB on a raised-cosine bump centred on 3 kHz (half-width 1.2 kHz); below 100 Hz the 100 Hz gain."""
    e = 6.0
    f = np.array([500.0, 1000.0, 1800.0, 2400.0, 3000.0, 4200.0, 6000.0])
    bump = np.array([0.0, 0.0, 0.0, 0.5 * (1 + np.cos(np.pi * 0.5)), 1.0, 0.0, 0.0])
    tilt = 0.4 * e * np.array([-1.0, 0.0, np.log2(1.8), np.log2(2.4), np.log2(3.0), np.log2(4.2), np.log2(6.0)])
    np.testing.assert_allclose(E.tilt_response_db(f, e), tilt + 0.5 * e * bump, atol=1e-9)
    assert E.tilt_response_db(np.array([3000.0]), e)[0] - 0.4 * e * np.log2(3.0) == pytest.approx(3.0)  # +3 dB
    # no boost or cut of DC: everything below 100 Hz gets the 100 Hz gain, for soft and loud speech
    for effort in (-6.0, 6.0):
        low = E.tilt_response_db(np.array([0.0, 20.0, 50.0, 100.0]), effort)
        np.testing.assert_allclose(low, 0.4 * effort * np.log2(0.1))
    # the speaker's sensitivity scales the effort: 6 dB at sensitivity 0.5 is 3 dB at sensitivity 1
    np.testing.assert_allclose(E.tilt_response_db(f, 6.0, 0.5), E.tilt_response_db(f, 3.0), atol=1e-12)


def _band_db(x, lo, hi):
    spec = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return 10 * np.log10(spec[(f >= lo) & (f < hi)].mean())


def test_apply_tilt_filters_soft_and_loud_and_scales_with_sensitivity():
    """White noise through the effort filter, measured in bands (independent of the taps): soft speech
    (negative effort) gets darker, loud speech brighter, by the table's amounts; sensitivity scales them."""
    x = np.random.default_rng(1).normal(0, 0.05, 4 * SR)
    ref = _band_db(x, 2800, 3200) - _band_db(x, 900, 1100)

    def rise(effort_db, sensitivity=1.0):  # gain at 3 kHz re 1 kHz (dB), measured
        y = E.apply_tilt(x, SR, effort_db, sensitivity)
        return _band_db(y, 2800, 3200) - _band_db(y, 900, 1100) - ref

    expected = 0.4 * np.log2(3.0) + 0.5  # dB per dB of effort at 3 kHz re 1 kHz (module table)
    for effort in (-6.0, 6.0):
        assert rise(effort) == pytest.approx(expected * effort, abs=0.5)
    assert rise(6.0, sensitivity=0.5) == pytest.approx(expected * 3.0, abs=0.5)
    assert rise(-6.0, sensitivity=1.25) == pytest.approx(expected * -7.5, abs=0.5)
