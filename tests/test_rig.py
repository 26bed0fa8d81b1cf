"""The procedural articulation rig: each blendshape does what it says, lips never cross, smooth fields."""
from __future__ import annotations

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.synth import face
from p3d.synth.rig import (BLINK, BLINK_CLOSURE, BROW, CLOSURE, JAW, K, PARAMS, RAISE, ROUND, SPREAD, TUCK, UPPER_PARAMS,
                           Rig, rest_params)


@pytest.fixture(scope="module")
def rig() -> Rig:
    return Rig.from_topology("base")


def _unit(k: int, value: float = 1.0) -> np.ndarray:
    p = np.zeros(K)
    p[k] = value
    return p


def _width(x: np.ndarray) -> float:
    return float(np.linalg.norm(x[61] - x[291]))


def test_rest_is_the_template(rig):
    np.testing.assert_allclose(rig.pose(rest_params(3)), np.broadcast_to(rig.template, (3, 468, 3)), atol=1e-15)
    assert PARAMS == ("jaw", "closure", "round", "spread", "tuck", "raise")


def test_jaw_opens_and_closure_closes(rig):
    jaw = np.zeros((5, K))
    jaw[:, JAW] = np.linspace(0, 1, 5)
    x = rig.pose(jaw)
    gap = face.lip_gap(x)
    mtm = np.linalg.norm(x[:, 0] - x[:, 17], axis=1)
    assert np.all(np.diff(gap) > 0.003) and np.all(np.diff(mtm) > 0.003)
    assert 0.02 < gap[-1] < 0.04  # at most a few cm
    assert x[-1, face.CHIN, 1] < x[0, face.CHIN, 1] - 0.015  # chin drops
    closed = rig.pose(_unit(CLOSURE))
    assert 0 <= face.lip_gap(closed) < 0.0005
    assert np.linalg.norm(closed[0] - closed[17]) < mtm[0]
    # Lips pressed together while the jaw is slightly open (bilabials in context).
    pressed = rig.pose(np.array([0.3, 1, 0, 0, 0, 0.5]))
    assert 0 <= face.lip_gap(pressed) < 0.0005
    assert pressed[face.CHIN, 1] < x[0, face.CHIN, 1] - 0.004


def test_lips_never_cross(rig):
    p = np.random.default_rng(0).random((2000, K))
    corners = np.array(np.meshgrid(*[[0.0, 1.0]] * K)).reshape(K, -1).T
    gap = face.lip_gap(rig.pose(np.concatenate([p, corners])))
    assert gap.min() >= 0.0002


def test_shape_blendshapes(rig):
    x0 = rig.template
    assert _width(rig.pose(_unit(ROUND))) < _width(x0) - 0.01
    assert rig.pose(_unit(ROUND))[0, 2] > x0[0, 2] + 0.004  # protrusion
    assert _width(rig.pose(_unit(SPREAD))) > _width(x0) + 0.006
    tuck = rig.pose(_unit(TUCK))
    assert tuck[14, 2] < x0[14, 2] - 0.004 and tuck[14, 1] > x0[14, 1] + 0.003  # back and up
    assert np.allclose(tuck[13], x0[13])  # the upper lip stays
    raised = rig.pose(_unit(RAISE))
    assert raised[13, 1] > x0[13, 1] + 0.003 and raised[0, 1] > x0[0, 1] + 0.001
    assert np.allclose(raised[14], x0[14])
    # Symmetric without asymmetry: mirror of the left corner is the right corner.
    for k in range(K):
        x = rig.pose(_unit(k))
        np.testing.assert_allclose(x[61] * [-1, 1, 1], x[291], atol=1e-9)


def test_upper_face_never_moves(rig):
    upper = face.face_topology("base").upper_face
    x = rig.pose(np.random.default_rng(1).random((50, K)))
    assert np.abs(x[:, upper] - rig.template[upper]).max() == 0


def _upper_unit(k: int, value: float = 1.0) -> np.ndarray:
    u = np.zeros((1, len(UPPER_PARAMS)))
    u[0, k] = value
    return u


def _pose_any(r: Rig, k: int) -> np.ndarray:
    """Unit activation of lip parameter k (k < K) or upper-face parameter k - K."""
    if k < K:
        return r.pose(_unit(k))
    return r.pose(rest_params(1), _upper_unit(k - K))[0]


def test_fields_have_no_seams():
    """Refining the mesh shrinks the largest displacement jump across an edge (continuous fields)."""
    jumps = {}
    names = PARAMS + UPPER_PARAMS
    for variant in ("base", "dense"):
        r = Rig.from_topology(variant)
        edges, _ = face.edges_of(r.faces)
        for k in range(len(names)):
            d = _pose_any(r, k) - r.template
            jumps[variant, k] = np.linalg.norm(d[edges[:, 0]] - d[edges[:, 1]], axis=1).max()
    for k in range(len(names)):
        assert jumps["dense", k] < 0.75 * jumps["base", k], names[k]


@pytest.mark.parametrize("variant", ["base", "dense"])
def test_brow_raise_and_blink_move_only_the_upper_face(variant):
    r = Rig.from_topology(variant)
    upper = face.face_topology(variant).upper_face
    rest = r.template
    brow = r.pose(rest_params(1), _upper_unit(BROW))[0]
    assert brow[105, 1] - rest[105, 1] > 0.005 and brow[334, 1] - rest[334, 1] > 0.005  # both brows up ~6 mm
    assert abs(brow[159, 1] - rest[159, 1]) < 1e-4  # the upper-lid margin stays
    blink = r.pose(rest_params(1), _upper_unit(BLINK))[0]
    for top, bottom in ((159, 145), (386, 374)):  # upper / lower lid centres, right and left eye
        gap0, gap = rest[top, 1] - rest[bottom, 1], blink[top, 1] - blink[bottom, 1]
        assert 0 < gap < 1.5 * (1 - BLINK_CLOSURE) * gap0  # nearly closed, never crossed
        assert blink[bottom, 1] == rest[bottom, 1]  # the lower lid stays
    both = r.pose(np.random.default_rng(0).random((20, K)), np.random.default_rng(1).random((20, 2)))
    lips_only = r.pose(np.random.default_rng(0).random((20, K)))
    moved = np.flatnonzero(np.abs(both - lips_only).max(axis=(0, 2)) > 0)
    assert len(moved) > 20 and np.isin(moved, upper).all()  # upper-face parameters never move the lips


def test_pose_with_upper_face_matches_a_numpy_oracle(rig):
    p = np.random.default_rng(3).random((4, K))
    u = np.random.default_rng(4).random((4, len(UPPER_PARAMS)))
    lips = rig.pose(p)
    x = lips + np.einsum("tk,kvd->tvd", u, rig.basis[-len(UPPER_PARAMS):])
    np.testing.assert_allclose(rig.pose(p, u), x, atol=1e-15)
    np.testing.assert_array_equal(rig.pose(p[0], u[0]), rig.pose(p[:1], u[:1])[0])
    with pytest.raises(InputError, match="upper"):
        rig.pose(p, u[:2])
    with pytest.raises(InputError, match="upper"):
        rig.pose(p, np.full((4, 2), np.nan))


def test_pose_matches_a_numpy_oracle(rig):
    """The compiled kernel computes exactly the documented formula."""
    p = np.random.default_rng(3).random((4, K))
    x = rig.template + np.einsum("tk,kvd->tvd", rig.activations(p), rig.basis)
    angle = rig.max_angle * p[:, [JAW]] * (rig.jaw_weight - p[:, [CLOSURE]] * rig.jaw_weight * rig.lip_release)
    dy, dz = x[..., 1] - rig.pivot[1], x[..., 2] - rig.pivot[2]
    x[..., 1] = rig.pivot[1] + np.cos(angle) * dy - np.sin(angle) * dz
    x[..., 2] = rig.pivot[2] + np.sin(angle) * dy + np.cos(angle) * dz + rig.forward * angle
    np.testing.assert_allclose(rig.pose(p), x, atol=1e-15)


def test_vectorised_pose_matches_frame_by_frame(rig):
    p = np.random.default_rng(2).random((7, K))
    batch = rig.pose(p)
    for t in range(7):
        np.testing.assert_allclose(batch[t], rig.pose(p[t]), atol=1e-15)
    assert rig.pose(p, dtype=np.float32).dtype == np.float32
    np.testing.assert_allclose(rig.pose(p, dtype=np.float32), batch, atol=1e-6)
    np.testing.assert_array_equal(rig.pose(p * 3 - 1), rig.pose(np.clip(p * 3 - 1, 0, 1)))


def test_dense_rig_closes_and_opens():
    dense = Rig.from_topology("synth-face-dense")
    assert dense.n_vertices == 7152
    x = dense.pose(np.array([[0, 0, 0, 0, 0, 0], [0.6, 0, 0, 0, 0, 0], [0.3, 1, 0, 0, 0, 0]]))
    gap = face.lip_gap(x)
    assert gap[1] > gap[0] + 0.01 and 0 <= gap[2] < 0.0005


def test_asymmetry_and_identity_template():
    sym = Rig.from_topology("base")
    left = Rig.from_topology("base", asymmetry=0.3)
    d_sym = sym.pose(_unit(SPREAD)) - sym.template
    d_left = left.pose(_unit(SPREAD)) - left.template
    assert abs(d_left[291, 0]) > abs(d_sym[291, 0]) > abs(d_left[61, 0])  # 291: subject's left corner
    bigger = Rig.from_topology("base", template=sym.template * 1.05)
    assert face.lip_gap(bigger.pose(_unit(CLOSURE))) < 0.0005


def test_bad_input(rig):
    with pytest.raises(InputError, match="expected"):
        rig.pose(np.zeros((3, 4)))
    with pytest.raises(InputError, match="NaN"):
        rig.pose(np.full(K, np.nan))
    with pytest.raises(InputError, match="template"):
        Rig.from_topology("base", template=np.zeros((10, 3)))
    with pytest.raises(InputError, match="asymmetry"):
        Rig.from_topology("base", asymmetry=2)
    with pytest.raises(InputError, match="unknown synthetic-face"):
        Rig.from_topology("flame")


def test_jaw_rotates_about_the_documented_pivot(rig):
    """The jaw is a rotation about an x axis through MediaPipe 93's height and 234's depth, plus a forward glide
    of JAW_FORWARD m per rad (module docstring). Recover the axis from the chin's motion alone (a vertex the jaw
    carries fully): p' - glide = c + R (p - c), so c = (I - R)^-1 (p' - glide - R p) in the (y, z) plane."""
    from p3d.synth.rig import JAW_FORWARD, JAW_MAX_ANGLE

    assert rig.jaw_weight[face.CHIN] == pytest.approx(1.0)
    x0 = rig.template
    for jaw in (0.4, 1.0):
        theta = jaw * JAW_MAX_ANGLE
        p, q = x0[face.CHIN, 1:], rig.pose(_unit(JAW, jaw))[face.CHIN, 1:]
        r = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        centre = np.linalg.solve(np.eye(2) - r, q - np.array([0.0, JAW_FORWARD * theta]) - r @ p)
        np.testing.assert_allclose(centre, [x0[93, 1], x0[234, 2]], atol=1e-9)


@pytest.mark.parametrize("variant", ["base", "dense"])
def test_closure_meets_in_depth_as_well_as_height(variant):
    """At closure = 1 the inner lip centres 13/14 are CONTACT_GAP apart in 3-D (module docstring: the lips move
    toward each other in height AND depth; at rest the lower lip's contact line lies ~2 mm in front)."""
    from p3d.synth.rig import CONTACT_GAP

    r = Rig.from_topology(variant)
    assert abs(r.template[13, 2] - r.template[14, 2]) > 0.001  # the depth offset is there to close
    closed = r.pose(_unit(CLOSURE))
    assert np.linalg.norm(closed[13] - closed[14]) == pytest.approx(CONTACT_GAP, abs=2e-5)
