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
