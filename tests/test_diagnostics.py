"""Diagnostics (p3d.metrics.diagnostics): analytic signals, units, consistency with FDD, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.metrics import (enrolled_lip_amplitude, fdd, fdd_dynamics, lip_amplitude, lip_amplitude_ratio,
                         lip_high_frequency_energy, lip_jerk, upper_face_motion)

FPS = 30.0


def sinusoid(freq_hz: float, frames: int = 150, n_vertices: int = 6, amplitude: float = 0.003,
             offset: float = 0.1) -> np.ndarray:
    """(T, V, 3): vertices resting at ``offset`` plus a y-sinusoid of ``freq_hz`` (phase per vertex)."""
    t = np.arange(frames) / FPS
    v = np.full((frames, n_vertices, 3), offset)
    for i in range(n_vertices):
        v[:, i, 1] += amplitude * np.sin(2 * np.pi * freq_hz * t + i)
    return v


# -- lip jerk -----------------------------------------------------------------------------------------
def test_jerk_of_a_cubic_is_six_a_in_per_second_cubed():
    a = 0.02  # m/s^3 coefficient: x(t) = a t^3 + lower-order terms
    t = np.arange(40) / FPS
    v = np.zeros((40, 4, 3))
    v[:, 0, 0] = a * t ** 3 - 0.5 * t ** 2 + 0.1 * t + 0.3  # lower orders vanish in the third difference
    v[:, 1, 2] = -a * t ** 3  # magnitude, not sign
    v[:, 3, 1] = 5.0  # a static lip vertex: jerk 0
    assert lip_jerk(v, [0, 1], FPS) == pytest.approx(6 * a, rel=1e-6)
    assert lip_jerk(v, [0, 1, 3], FPS) == pytest.approx(6 * a * 2 / 3, rel=1e-6)
    # units: the same motion in millimetres is 1000 x; time in frames at half the rate is 1/8 x
    assert lip_jerk(v * 1000, [0, 1], FPS) == pytest.approx(6 * a * 1000, rel=1e-6)
    assert lip_jerk(v, [0, 1], FPS / 2) == pytest.approx(6 * a / 8, rel=1e-6)


def test_static_sequences_give_zero():
    still = np.broadcast_to(np.random.default_rng(0).normal(size=(1, 8, 3)), (40, 8, 3)).copy()
    assert lip_jerk(still, [0, 3], FPS) == 0.0
    assert lip_high_frequency_energy(still, [0, 3], FPS) == 0.0
    assert upper_face_motion(still, [1, 2]) == 0.0
    assert fdd_dynamics(still, [1, 2], still[0]) == 0.0
    assert lip_amplitude(still, [0, 3], still[0]) == 0.0
    # a constant of awkward value (0.1 is not a binary fraction) still counts as still, not as noise
    assert lip_high_frequency_energy(np.full((41, 2, 3), 0.1), [0, 1], FPS) == 0.0


def test_jitter_raises_jerk_far_more_than_smooth_motion():
    smooth = sinusoid(2.0)
    jitter = smooth + np.random.default_rng(1).normal(scale=1e-4, size=smooth.shape)
    assert lip_jerk(jitter, [0, 1, 2], FPS) > 3 * lip_jerk(smooth, [0, 1, 2], FPS)


# -- high-frequency energy ----------------------------------------------------------------------------
@pytest.mark.parametrize("freq, expected", [(2.0, 0.0), (3.5, 0.0), (11.0, 1.0), (13.0, 1.0)])
def test_high_frequency_energy_of_sinusoids(freq, expected):
    value = lip_high_frequency_energy(sinusoid(freq), [0, 1, 2, 3], FPS, cutoff_hz=8.0)
    assert value == pytest.approx(expected, abs=0.01)


def test_high_frequency_energy_of_a_mixture_is_the_energy_fraction():
    # amplitudes 3 (2 Hz) and 1 (12 Hz): energies 9 : 1 -> fraction 0.1 above 8 Hz
    mixture = sinusoid(2.0, amplitude=0.003) + sinusoid(12.0, amplitude=0.001) - 0.1
    assert lip_high_frequency_energy(mixture, [0, 1, 2, 3, 4, 5], FPS) == pytest.approx(0.1, abs=0.01)
    # unitless: scale and the resting position do not matter; the cutoff moves the boundary
    assert lip_high_frequency_energy(mixture * 1000 + 7.0, [0, 1, 2, 3, 4, 5], FPS) == pytest.approx(
        lip_high_frequency_energy(mixture, [0, 1, 2, 3, 4, 5], FPS), rel=1e-9)
    assert lip_high_frequency_energy(mixture, [0, 1], FPS, cutoff_hz=1.0) == pytest.approx(1.0, abs=0.01)
    assert lip_high_frequency_energy(mixture, [0, 1], FPS, cutoff_hz=14.0) == pytest.approx(0.0, abs=0.01)


def test_high_frequency_energy_is_energy_weighted_over_vertices():
    # a loud slow vertex and a faint fast one: the fraction follows the energy, not the vertex count
    v = sinusoid(2.0, amplitude=0.01)
    v[:, 1] = sinusoid(12.0, amplitude=0.001)[:, 1]
    assert lip_high_frequency_energy(v, [0, 1], FPS) == pytest.approx(0.01 / 1.01, abs=0.005)
    # flat layout and float32 give the same number
    assert lip_high_frequency_energy(v.reshape(len(v), -1).astype(np.float32), [0, 1], FPS) == pytest.approx(
        lip_high_frequency_energy(v, [0, 1], FPS), abs=1e-4)


# -- amplitude ----------------------------------------------------------------------------------------
def test_lip_amplitude_and_ratio():
    template = np.zeros((5, 3))
    gt = np.zeros((4, 5, 3))
    gt[:, 0] = [[0, 0.004, 0], [0, 0, 0.002], [0, 0, 0], [0.003, 0.004, 0]]  # norms 4, 2, 0, 5 mm
    gt[:, 4] = 1.0  # not a lip vertex
    assert lip_amplitude(gt, [0, 1], template) == pytest.approx((0.004 + 0.002 + 0.005) / 8)
    assert lip_amplitude(gt, [0, 0, 1], template) == pytest.approx(2 * 0.011 / 12)  # duplicates weight the mean
    damped = 0.5 * gt
    assert lip_amplitude_ratio(damped, gt, [0, 1], template) == pytest.approx(0.5)
    longer = np.concatenate([2 * gt, np.full((3, 5, 3), 9.0)])  # truncated to the GT's 4 frames
    assert lip_amplitude_ratio(longer, gt, [0, 1], template) == pytest.approx(2.0)
    assert np.isnan(lip_amplitude_ratio(gt, np.zeros((4, 5, 3)), [0, 1], template))
    # template given flat; amplitude measured from it, not from the origin
    shifted = gt + 0.1
    assert lip_amplitude(shifted, [0, 1], np.full(15, 0.1)) == pytest.approx(lip_amplitude(gt, [0, 1], template))


# -- upper face ---------------------------------------------------------------------------------------
def test_upper_face_motion_of_a_moving_brow():
    t = np.arange(60) / FPS
    template = np.random.default_rng(2).normal(scale=0.05, size=(6, 3))
    v = np.broadcast_to(template, (60, 6, 3)).copy()
    v[:, 2, 1] += 0.002 * np.sin(2 * np.pi * 1.0 * t)  # the brow (vertex 2) raises and lowers by 2 mm
    v[:, 0, 0] += 0.05 * t  # a moving jaw vertex outside the upper face
    brow_std = 0.002 / np.sqrt(2)  # std of a sinusoid over whole periods
    assert upper_face_motion(v, [2]) == pytest.approx(brow_std, rel=1e-9)
    assert upper_face_motion(v, [2, 3]) == pytest.approx(brow_std / np.sqrt(2), rel=1e-9)  # RMS over vertices
    assert upper_face_motion(v * 1000, [2]) == pytest.approx(brow_std * 1000, rel=1e-9)  # millimetres in, out
    assert fdd_dynamics(v, [2, 3], template) > 0 and fdd_dynamics(v, [3, 4], template) == 0.0


def test_fdd_is_exactly_the_difference_of_fdd_dynamics():
    rng = np.random.default_rng(3)
    template = rng.normal(size=(40, 3))
    gt = template + rng.normal(scale=0.01, size=(20, 40, 3))
    pred = template + rng.normal(scale=0.004, size=(20, 40, 3))
    upper = [1, 5, 5, 30, 39]
    for dtype in (np.float64, np.float32):
        g, p, tm = gt.astype(dtype), pred.astype(dtype), template.astype(dtype)
        assert fdd(p, g, tm, upper) == fdd_dynamics(g, upper, tm) - fdd_dynamics(p, upper, tm)
    # a damped prediction: positive FDD and a smaller upper-face motion
    assert fdd(pred, gt, template, upper) > 0
    assert upper_face_motion(pred, upper) < upper_face_motion(gt, upper)


# -- bad input ----------------------------------------------------------------------------------------
V = np.zeros((10, 4, 3))


@pytest.mark.parametrize("call, match", [
    (lambda: lip_jerk(V, [0], 0), "fps"),
    (lambda: lip_jerk(V, [0], float("nan")), "fps"),
    (lambda: lip_jerk(V, [0], "30"), "fps"),
    (lambda: lip_jerk(V[:3], [0], FPS), "at least 4 frames"),
    (lambda: lip_jerk(V, [4], FPS), "lip_vertices"),
    (lambda: lip_jerk(np.full((10, 4, 3), np.nan), [0], FPS), "NaN"),
    (lambda: lip_jerk(np.zeros((10, 13)), [0], FPS), "multiple of 3"),
    (lambda: lip_high_frequency_energy(V, [0], FPS, cutoff_hz=15.0), "Nyquist"),
    (lambda: lip_high_frequency_energy(V, [0], FPS, cutoff_hz=0), "cutoff_hz"),
    (lambda: lip_high_frequency_energy(V[:7], [0], FPS), "at least 8 frames"),
    (lambda: lip_high_frequency_energy(V, [0], FPS, nperseg=11), "nperseg"),
    (lambda: lip_high_frequency_energy(V, [], FPS), "non-empty"),
    (lambda: lip_amplitude(V, [0], np.zeros((3, 3))), "template"),
    (lambda: lip_amplitude(V, np.ones(4, bool), np.zeros((4, 3))), "boolean mask"),
    (lambda: lip_amplitude_ratio(V, np.zeros((10, 5, 3)), [0], np.zeros((4, 3))), "vertices per frame"),
    (lambda: upper_face_motion(V, [-1]), "upper_face_vertices"),
    (lambda: upper_face_motion(np.zeros((0, 4, 3)), [0]), "no frames"),
    (lambda: fdd_dynamics(V, [0], np.full((4, 3), np.inf)), "template"),
    (lambda: fdd_dynamics(V[:1] + 1.0, [0], np.zeros((4, 3))), "at least 2 frames"),  # a std over time: was 0.0
    (lambda: upper_face_motion(V[:1] + 1.0, [0]), "at least 2 frames"),  # was 0.0
])
def test_bad_inputs(call, match):
    with pytest.raises(InputError, match=match):
        call()


@pytest.mark.parametrize("amplitudes, match", [([-1.0, 2.0, 3.0], "distances, expected >= 0"),  # was enrolled silently
                                               (["x", "y", "z"], "expected numbers"),  # numpy's ValueError
                                               ([True, False, True], "expected numbers")])  # True was 1
def test_enrolled_lip_amplitude_refuses_what_is_not_an_amplitude(amplitudes, match):
    with pytest.raises(InputError, match=match):
        enrolled_lip_amplitude(amplitudes, ["a", "a", "a"])


def test_enrolled_lip_amplitude_groups_any_hashable_labels():
    """Speaker labels that do not sort (None, numbers and text mixed) were a TypeError traceback from np.unique;
    1 and "1" were one speaker (numpy made both the text "1")."""
    np.testing.assert_allclose(enrolled_lip_amplitude([1.0, 3.0, 5.0], [None, None, "a"]), [3.0, 1.0, np.nan])
    np.testing.assert_allclose(enrolled_lip_amplitude([1.0, 3.0, 5.0], [1, "1", 1]), [5.0, np.nan, 1.0])
    with pytest.raises(InputError, match="1-D"):
        enrolled_lip_amplitude([1.0, 2.0], [[0], [1]])
