"""LVE (p3d.metrics.lve): hand cases, variants, torchmetrics and CodeTalker parity, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import official_reference as ref
from p3d.errors import InputError
from p3d.metrics import lve, lve_per_frame
from p3d.topology import FLAME_LIPS


def test_identical_sequences_have_zero_error():
    v = np.random.default_rng(0).normal(size=(7, 10, 3))
    for variant in ("max_sq", "max_l2", "meshtalk"):
        assert lve(v, v, [1, 2, 3], variant=variant) == 0.0


def test_hand_case_all_variants():
    gt = np.zeros((2, 3, 3))
    pred = np.zeros((2, 3, 3))
    pred[0, 0] = [3, 4, 0]  # frame 0: lip errors 5 and 1 -> max_sq 25, max_l2 5
    pred[0, 1] = [1, 0, 0]
    pred[1, 1] = [0, 0, 2]  # frame 1: lip errors 0 and 2 -> max_sq 4, max_l2 2
    pred[1, 2] = [9, 9, 9]  # vertex 2 is not a lip vertex
    assert lve(pred, gt, [0, 1]) == pytest.approx((25 + 4) / 2)
    assert lve(pred, gt, [0, 1], variant="max_l2") == pytest.approx((5 + 2) / 2)
    assert lve_per_frame(pred, gt, [0, 1]).tolist() == [25.0, 4.0]
    # meshtalk: a rigid translation of all lip vertices is removed by the per-frame centring
    shifted = gt + np.array([1.0, -2.0, 0.5])
    assert lve(shifted, gt, [0, 1, 2], variant="meshtalk") == pytest.approx(0.0, abs=1e-12)
    # frame 1 centred over lips [0, 1]: pred (0,0,0),(0,0,2) -> mean (0,0,1); errors 1 and 1
    assert lve_per_frame(pred, gt, [0, 1], variant="meshtalk")[1] == pytest.approx(1.0)


def test_meshtalk_variant_takes_the_square_root_of_the_worst_centred_error():
    # MeshTalk's code: per frame, centre each lip set on its mean, then the max L2 distance (not squared)
    rng = np.random.default_rng(4)
    gt, pred = rng.normal(size=(6, 8, 3)), rng.normal(size=(6, 8, 3))
    lips = [1, 3, 3, 6, 7]
    expected = []
    for t in range(6):
        p_c = pred[t, lips] - pred[t, lips].mean(axis=0)
        g_c = gt[t, lips] - gt[t, lips].mean(axis=0)
        expected.append(max(np.linalg.norm(p_c[k] - g_c[k]) for k in range(len(lips))))
    np.testing.assert_allclose(lve_per_frame(pred, gt, lips, variant="meshtalk"), expected, rtol=1e-12)
    assert lve(pred, gt, lips, variant="meshtalk") == pytest.approx(np.mean(expected), rel=1e-12)
    # hand case: centred pred (0,0,-2), (0,0,2) against a zero GT -> 2 (a squared error would give 4)
    pred2, gt2 = np.zeros((1, 2, 3)), np.zeros((1, 2, 3))
    pred2[0, 1] = [0, 0, 4]
    assert lve(pred2, gt2, [0, 1], variant="meshtalk") == pytest.approx(2.0)


def test_truncates_to_shorter_and_accepts_flat_layout():
    rng = np.random.default_rng(1)
    gt, pred = rng.normal(size=(9, 5, 3)), rng.normal(size=(6, 5, 3))
    expected = lve(pred, gt[:6], [0, 4])
    assert lve(pred.reshape(6, 15), gt, [0, 4]) == pytest.approx(expected)
    assert lve(gt, pred, [0, 4]) == pytest.approx(expected)


def test_default_matches_codetalker_with_flame_duplicated_lips():
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(12, 5023, 3)).astype(np.float32)
    pred = gt + rng.normal(scale=0.01, size=gt.shape).astype(np.float32)
    assert len(FLAME_LIPS) == 254 and len(set(FLAME_LIPS)) == 250
    assert lve(pred, gt, FLAME_LIPS) == float(ref.lve_codetalker(pred, gt, FLAME_LIPS))  # bit-identical
    assert lve(pred, gt, FLAME_LIPS) == lve(pred, gt, sorted(set(FLAME_LIPS)))


def test_default_matches_torchmetrics():
    import torch
    from torchmetrics.functional.multimodal import lip_vertex_error  # pinned in the test extra
    rng = np.random.default_rng(3)
    gt, pred = rng.normal(size=(15, 300, 3)), rng.normal(size=(11, 300, 3))
    lips = [5, 7, 7, 100, 299, 0]
    expected = float(lip_vertex_error(torch.from_numpy(pred), torch.from_numpy(gt), lips))
    assert lve(pred, gt, lips) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("pred, gt, lips, kw, match", [
    (np.zeros((3, 4, 3)), np.zeros((3, 5, 3)), [0], {}, "vertices per frame"),
    (np.zeros((3, 4, 3)), np.zeros((3, 4, 3)), [], {}, "non-empty"),
    (np.zeros((3, 4, 3)), np.zeros((3, 4, 3)), [4], {}, r"\[0, 3\]"),
    (np.zeros((3, 4, 3)), np.zeros((3, 4, 3)), [-1], {}, "range"),
    (np.zeros((3, 4, 3)), np.zeros((3, 4, 3)), [0.5], {}, "integers"),
    (np.zeros((3, 4, 3)), np.zeros((3, 4, 3)), np.ones(4, bool), {}, "boolean mask"),
    (np.zeros((3, 4, 3)), np.zeros((3, 4, 3)), [0], {"variant": "mse"}, "variant"),
    (np.zeros((0, 4, 3)), np.zeros((3, 4, 3)), [0], {}, "no frames"),
    (np.zeros((3, 4, 2)), np.zeros((3, 4, 3)), [0], {}, r"\(T, V, 3\)"),
    (np.zeros((3, 4, 3, 1)), np.zeros((3, 4, 3)), [0], {}, "4-D"),
    (np.zeros((3, 13)), np.zeros((3, 4, 3)), [0], {}, "multiple of 3"),
    (np.full((3, 4, 3), np.nan), np.zeros((3, 4, 3)), [0], {}, "NaN"),
    (np.zeros((3, 4, 3)), np.full((3, 4, 3), np.inf), [0], {}, "infinite"),
    (np.array([["a"] * 3]), np.zeros((1, 1, 3)), [0], {}, "dtype"),
])
def test_bad_inputs(pred, gt, lips, kw, match):
    with pytest.raises(InputError, match=match):
        lve(pred, gt, lips, **kw)


def test_bit_identical_to_codetalker_on_random_clips():
    for seed in range(12):
        rng = np.random.default_rng(seed)
        dtype = (np.float32, np.float64)[seed % 2]
        n = int(rng.integers(1, 150))
        gt = rng.normal(size=(n, 300, 3)).astype(dtype)
        pred = rng.normal(size=(n + int(rng.integers(0, 4)), 300, 3)).astype(dtype)
        lips = rng.choice(300, size=80)
        assert lve(pred, gt, lips) == float(ref.lve_codetalker(pred, gt, lips))
