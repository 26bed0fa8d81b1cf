"""FDD (p3d.metrics.fdd): hand case, CodeTalker parity, sign convention, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import official_reference as ref
from p3d.errors import InputError
from p3d.metrics import fdd


def test_hand_case():
    template = np.zeros((3, 3))
    gt = np.zeros((4, 3, 3))
    gt[:, 0, 0] = [0, 1, 0, 1]  # ||m||^2 = 0,1,0,1 -> std 0.5; vertex 1 static -> std 0; mean 0.25
    pred = np.zeros((4, 3, 3))
    pred[:, 1, 2] = [0, 0, 0, 2]  # ||m||^2 = 0,0,0,4 -> std sqrt(3); vertex 0 static; mean sqrt(3)/2
    pred[:, 2] = 100.0  # vertex 2 is not in the upper face
    expected = 0.25 - np.sqrt(3) / 2
    assert fdd(pred, gt, template, [0, 1]) == pytest.approx(expected)
    assert fdd(pred, gt, template, [0, 1], absolute=True) == pytest.approx(abs(expected))
    assert fdd(gt, gt, template, [0, 1]) == 0.0


def test_matches_codetalker_and_layouts():
    rng = np.random.default_rng(0)
    template = rng.normal(size=(50, 3))
    gt = template + rng.normal(scale=0.1, size=(20, 50, 3))
    pred = template + rng.normal(scale=0.05, size=(25, 50, 3))  # longer: truncated to the GT length
    upper = [3, 4, 4, 10, 49]
    expected = float(ref.fdd_codetalker(pred, gt, template, upper))
    assert fdd(pred, gt, template, upper) == expected  # bit-identical
    assert fdd(pred.reshape(25, -1), gt.reshape(20, -1), template.reshape(-1), upper) == pytest.approx(expected)
    assert expected > 0  # a damped prediction has less upper-face motion than the GT: signed positive


@pytest.mark.parametrize("template, upper, match", [
    (np.zeros((4, 3)), [0], "template"),
    (np.full((5, 3), np.nan), [0], "template"),
    (np.zeros((3, 5)), [0], r"shape \(5, 3\).*got shape \(3, 5\)"),  # (3, V): a reshape would scramble it
    (np.zeros((5, 3)), [5], "upper_face_vertices"),
    (np.zeros((5, 3)), [], "upper_face_vertices"),
])
def test_bad_inputs(template, upper, match):
    v = np.zeros((3, 5, 3))
    with pytest.raises(InputError, match=match):
        fdd(v, v, template, upper)


def test_bad_sequences():
    v, t = np.zeros((3, 5, 3)), np.zeros((5, 3))
    with pytest.raises(InputError, match="vertices per frame"):
        fdd(v, np.zeros((3, 6, 3)), t, [0])
    bad = v.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        fdd(bad, v, t, [2])
    assert fdd(bad, v, t, [0]) == 0.0  # NaN outside the vertices the metric reads does not matter
    with pytest.raises(InputError, match="no frames"):
        fdd(v[:0], v, t, [0])


def test_bit_identical_to_codetalker_on_random_clips():
    for seed in range(12):
        rng = np.random.default_rng(seed)
        dtype = (np.float32, np.float64)[seed % 2]
        template = rng.normal(size=(300, 3))
        if seed % 4 < 2:
            template = template.astype(dtype)
        n = int(rng.integers(5, 150))
        gt = (template + rng.normal(scale=0.1, size=(n, 300, 3))).astype(dtype)
        pred = (template + rng.normal(scale=0.1, size=(n + int(rng.integers(0, 4)), 300, 3))).astype(dtype)
        upper = rng.choice(300, size=120)
        assert fdd(pred, gt, template, upper) == float(ref.fdd_codetalker(pred, gt, template, upper))


def test_fewer_than_two_common_frames_is_refused():
    """A std over time of one frame is 0 whatever the faces do: FDD of one common frame (a 1-frame GT, or a
    prediction truncated to a 1-frame GT) was a silent 0.0; as the lip intensity, it needs 2 frames."""
    rng = np.random.default_rng(0)
    template = rng.normal(size=(10, 3))
    gt = template + rng.normal(scale=0.1, size=(5, 10, 3))
    pred = template + rng.normal(scale=0.1, size=(5, 10, 3))
    for p, g in ((pred, gt[:1]), (pred[:1], gt), (pred[:1], gt[:1])):
        with pytest.raises(InputError, match="at least 2 common frames"):
            fdd(p, g, template, [0, 1, 2])
    assert fdd(pred, gt[:2], template, [0, 1, 2]) == float(ref.fdd_codetalker(pred, gt[:2], template, [0, 1, 2]))


@pytest.mark.parametrize("bad", ["no", "False", 0, 1, None])
def test_absolute_must_be_a_bool(bad):
    """fdd(..., absolute="no") returned |FDD| (a truthy string), silently dropping the sign."""
    gt = np.zeros((4, 3, 3))
    gt[:, 0, 0] = [0, 1, 0, 1]
    with pytest.raises(InputError, match="absolute: expected True or False"):
        fdd(np.zeros((4, 3, 3)) + 1.0, gt, np.zeros((3, 3)), [0, 1], absolute=bad)
    assert fdd(gt, gt, np.zeros((3, 3)), [0, 1], absolute=np.False_) == 0.0
