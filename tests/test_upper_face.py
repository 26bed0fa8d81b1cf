"""Upper-face motion from prosody: brow raises on stressed vowels and phrase starts, blinks, effort."""
from __future__ import annotations

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.synth import upper_face as U
from p3d.synth.rig import BLINK, BROW

# "the PAINT was DRY. she LEFT." with a long pause between the phrases (times in s)
PHONEMES = [("_", 0.0, 0.2), ("D", 0.2, 0.25), ("@", 0.25, 0.3), ("p", 0.3, 0.38), ("eI", 0.38, 0.55),
            ("n", 0.55, 0.6), ("t", 0.6, 0.65), ("w", 0.65, 0.7), ("0", 0.7, 0.8), ("z", 0.8, 0.85),
            ("d", 0.85, 0.9), ("r", 0.9, 0.95), ("aI", 0.95, 1.2), ("_", 1.2, 1.7), ("S", 1.7, 1.8),
            ("i:", 1.8, 1.9), ("l", 1.9, 1.95), ("E", 1.95, 2.15), ("f", 2.15, 2.2), ("t", 2.2, 2.3),
            ("_", 2.3, 2.8)]
STRESS = [0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0]
FPS, N = 30, 84


def test_brow_raises_at_phrase_starts_and_grow_with_effort():
    style = U.UpperFaceStyle(brow_amplitude=0.5, brow_rate=0.0, blink_interval_s=50.0)
    energy = np.ones(len(PHONEMES))
    starts = []
    for seed in range(40):
        events = U.brow_events(PHONEMES, STRESS, energy, style, np.random.default_rng(seed))
        starts += [s for s, _, _ in events]
    # brow_rate 0: only the first stressed vowel of each phrase ("PAINT", "LEFT") is raised, ~85 % of the time
    assert set(starts) <= {0.38, 1.95}
    assert 0.7 * 80 < len(starts) <= 80
    soft = U.upper_face_motion(PHONEMES, STRESS, FPS, N, style, 5)
    loud = U.upper_face_motion(PHONEMES, STRESS, FPS, N, U.UpperFaceStyle(0.5, 0.0, 50.0, effort=1.5), 5)
    assert soft[:, BROW].max() > 0.2 and loud[:, BROW].max() > soft[:, BROW].max()
    t_peak = (np.argmax(soft[:, BROW]) + 0.5) / FPS
    assert 0.3 < t_peak < 0.7 or 1.9 < t_peak < 2.3  # on the accented vowel, not in a pause


def test_blinks_are_short_and_at_the_right_rate():
    style = U.UpperFaceStyle(brow_amplitude=0.5, blink_interval_s=3.5)
    n_blinks, lengths = 0, []
    long = [("_", 0.0, 60.0)]  # one minute without speech: spontaneous blinks only
    for seed in range(5):
        m = U.upper_face_motion(long, [0], 100, 6000, style, seed)
        closed = m[:, BLINK] > 0.5
        edges = np.flatnonzero(np.diff(closed.astype(int)) == 1)
        n_blinks += len(edges)
        runs = np.split(np.flatnonzero(closed), np.flatnonzero(np.diff(np.flatnonzero(closed)) > 1) + 1)
        lengths += [len(r) / 100 for r in runs if len(r)]
    per_minute = n_blinks / 5
    assert 12 <= per_minute <= 22  # one per 3.5 s on average (2.3-4.7 s intervals)
    assert 0.05 <= np.median(lengths) <= 0.15  # above half closure for about half of a 150-250 ms blink


def test_phrase_boundary_blinks_and_determinism():
    style = U.UpperFaceStyle(brow_amplitude=0.5, blink_interval_s=60.0)  # practically no spontaneous blinks
    at_boundary = 0
    for seed in range(40):
        times = U.blink_times(PHONEMES, 2.8, style, np.random.default_rng(seed))
        at_boundary += any(abs(t - 1.25) < 1e-9 for t in times)
    assert 10 < at_boundary < 30  # probability 0.5 per boundary
    a = U.upper_face_motion(PHONEMES, STRESS, FPS, N, style, 3, audio=np.ones(45000) * 0.1)
    np.testing.assert_array_equal(a, U.upper_face_motion(PHONEMES, STRESS, FPS, N, style, 3,
                                                         audio=np.ones(45000) * 0.1))
    assert a.shape == (N, 2) and a.min() >= 0 and a.max() <= 1


def test_bad_input():
    with pytest.raises(InputError, match="brow_rate"):
        U.UpperFaceStyle(brow_rate=1.5)
    with pytest.raises(InputError, match="fps"):
        U.upper_face_motion(PHONEMES, STRESS, 0, N, U.UpperFaceStyle(), 0)


def _rc(x):
    """Raised cosine 0 -> 1 over x in [0, 1] (the module docstring's ramp), written out independently."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


# two primary-stressed vowels close together (their raises overlap), then a long pause
CLOSE = [("_", 0.0, 0.2), ("eI", 0.2, 0.35), ("t", 0.35, 0.4), ("aI", 0.4, 0.6), ("_", 0.6, 1.6)]
CLOSE_STRESS = [0, 2, 0, 2, 0]


@pytest.mark.parametrize("phonemes,stress", [(PHONEMES, STRESS), (CLOSE, CLOSE_STRESS)])
def test_brow_raise_shape_follows_the_docstring(phonemes, stress):
    # A raise starts 100 ms before the vowel, rises over 150 ms (raised cosine), holds to the vowel's end and
    # falls over 300 ms; overlapping raises merge by their maximum; frames sampled at (k + 0.5) / fps.
    # Heights stay below the saturation knee here, so the brow channel is the raw envelope.
    style = U.UpperFaceStyle(brow_amplitude=0.45, brow_rate=1.0, blink_interval_s=50.0)
    fps, n = 200, int(200 * phonemes[-1][2])
    t = (np.arange(n) + 0.5) / fps
    checked = 0
    for seed in range(6):
        events = U.brow_events(phonemes, stress, np.ones(len(phonemes)), style, np.random.default_rng(seed))
        brow = U.upper_face_motion(phonemes, stress, fps, n, style, seed)[:, BROW]
        expected = np.zeros(n)
        for s, e, h in events:
            env = np.minimum(_rc((t - (s - 0.10)) / 0.15), 1.0 - _rc((t - e) / 0.30))
            expected = np.maximum(expected, h * env)
        np.testing.assert_allclose(brow, expected, atol=1e-12)
        checked += len(events) > 1
    assert checked >= 2


def test_blink_shape_follows_the_docstring():
    # A blink lasts U(150, 250) ms, closes over its first 40 % (raised cosine) and opens over the rest,
    # peak closure U(0.9, 1); the same generator draws the onsets first, then per blink length and peak.
    style = U.UpperFaceStyle(blink_interval_s=3.5)
    fps, n = 250, 2500
    t = (np.arange(n) + 0.5) / fps
    silence = [("_", 0.0, 10.0)]
    for seed in range(4):
        gen = np.random.default_rng(seed)
        onsets = U.blink_times(silence, n / fps, style, gen)
        expected = np.zeros(n)
        for onset in onsets:
            length = gen.uniform(0.15, 0.25)
            peak = gen.uniform(0.9, 1.0)
            close = 0.4 * length
            shape = np.where(t < onset + close, _rc((t - onset) / close),
                             1.0 - _rc((t - onset - close) / (length - close)))
            expected = np.maximum(expected, peak * shape)
        blink = U.upper_face_motion(silence, [0], fps, n, style, seed)[:, BLINK]
        assert len(onsets) >= 1
        np.testing.assert_allclose(blink, expected, atol=1e-12)


def test_raise_heights_energy_jitter_and_stress_rules():
    style = U.UpperFaceStyle(brow_amplitude=0.4, brow_rate=1.0, blink_interval_s=50.0, effort=1.5)
    ratios = []
    for seed in range(60):
        loud = U.brow_events(PHONEMES, STRESS, np.ones(len(PHONEMES)), style, np.random.default_rng(seed))
        soft = U.brow_events(PHONEMES, STRESS, np.zeros(len(PHONEMES)), style, np.random.default_rng(seed))
        # height = brow_amplitude * effort * (0.6 + 0.4 * energy) * U(0.8, 1.2)
        for (_, _, hl), (_, _, hs) in zip(loud, soft):
            assert hs == pytest.approx(0.6 * hl)
            ratios.append(hl / (0.4 * 1.5))
    assert 0.8 <= min(ratios) < 0.84 and 1.16 < max(ratios) <= 1.2
    # only primary stress raises the brows after the phrase start: a secondary-stressed vowel never does
    secondary = list(STRESS)
    secondary[8] = 1  # "0" of "was", inside the first phrase
    starts = set()
    for seed in range(30):
        starts |= {s for s, _, _ in U.brow_events(PHONEMES, secondary, np.ones(len(PHONEMES)), style,
                                                  np.random.default_rng(seed))}
    assert 0.7 not in starts and 0.95 in starts
    # the first stressed vowel of a phrase is raised with probability PHRASE_START_RAISE_P = 0.85
    rare = U.UpperFaceStyle(brow_amplitude=0.4, brow_rate=0.0)
    n = sum(len(U.brow_events(PHONEMES, STRESS, np.ones(len(PHONEMES)), rare, np.random.default_rng(s)))
            for s in range(250))
    assert 0.78 * 500 < n < 0.92 * 500


def test_vowel_energy_is_relative_to_the_loudest_vowel():
    ph = [("_", 0.0, 0.1), ("s", 0.1, 0.2), ("aI", 0.2, 0.3), ("E", 0.3, 0.4)]
    sr = 1000
    audio = np.concatenate([np.zeros(100), np.full(100, 0.9), np.full(100, 0.4), np.full(100, 0.2)])
    energy = U.vowel_energy(ph, audio, sr)
    np.testing.assert_allclose(energy[2:], [1.0, 0.5])  # the louder consonant does not set the scale
    np.testing.assert_array_equal(U.vowel_energy(ph, None, sr), np.ones(4))


def test_blink_timing_rules():
    # blinks at least 0.5 s apart and inside the clip; no boundary blink in the leading silence
    # (only pauses after speech are phrase boundaries); stationary phase: a 1 s clip holds a blink
    # in roughly 1 / 3.5 of the cases, not always.
    fast = U.UpperFaceStyle(blink_interval_s=0.6)
    for seed in range(40):
        times = U.blink_times(PHONEMES, 1.0, fast, np.random.default_rng(seed))
        assert times == sorted(times) and all(0 <= x < 1.0 for x in times)
        assert np.all(np.diff(times) >= 0.5 - 1e-12)
    style = U.UpperFaceStyle(blink_interval_s=60.0)
    boundary = 0
    for seed in range(300):
        times = U.blink_times(PHONEMES, 2.8, style, np.random.default_rng(seed))
        assert not any(abs(x - 0.05) < 1e-9 for x in times)
        boundary += any(abs(x - 1.25) < 1e-9 for x in times)
    assert 0.4 * 300 < boundary < 0.6 * 300  # BOUNDARY_BLINK_P = 0.5
    usual = U.UpperFaceStyle(blink_interval_s=3.5)
    early = np.mean([len(U.blink_times([("_", 0.0, 1.0)], 1.0, usual, np.random.default_rng(s))) > 0
                     for s in range(300)])
    assert 0.15 < early < 0.45
