"""The synthetic face: vendored asset, mouth opening, size/orientation, variants, regions, topology."""
from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.synth import face
from p3d.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("extract_mediapipe_mesh",
                                                  ROOT / "scripts" / "extract_mediapipe_mesh.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def test_wire_format_decoder_on_a_hand_built_mesh():
    script = _load_script()
    floats = [0.0, 1.0, 2.0, 0.25, 0.5, -1.0, 3.5, 300.0, 0.75, 1.0, 4.0, 5.0, 6.0, 0.0, 0.0]
    mesh = (_varint(1 << 3 | 0) + _varint(0)  # vertex_type VERTEX_PT
            + _field(3, struct.pack("<15f", *floats))
            + _field(4, b"".join(_varint(i) for i in (0, 1, 2, 2, 1, 300 % 3))))
    vertices, uv, faces = script.decode_mesh3d(_field(1, mesh) + _field(2, b"\x08\x01"))
    np.testing.assert_array_equal(vertices, np.reshape(floats, (3, 5))[:, :3])
    np.testing.assert_array_equal(uv, np.reshape(floats, (3, 5))[:, 3:])
    np.testing.assert_array_equal(faces, [[0, 1, 2], [2, 1, 0]])
    assert script.read_varint(_varint(300), 0) == (300, 2)
    with pytest.raises(ValueError, match="truncated"):
        script.read_varint(b"\x80", 0)
    with pytest.raises(ValueError, match="runs past"):
        script.parse_fields(_varint(1 << 3 | 2) + _varint(10) + b"abc")
    with pytest.raises(ValueError, match="VERTEX_PT"):
        script.decode_mesh3d(_field(1, _varint(1 << 3 | 0) + _varint(1)))


def test_vendored_asset_is_the_pinned_file():
    import hashlib

    readme = (ROOT / "p3d" / "assets" / "README.md").read_text()
    digest = hashlib.sha256(face.ASSET.read_bytes()).hexdigest()
    assert digest in readme
    assert (ROOT / "p3d" / "assets" / "NOTICE").exists()
    assert "Apache License" in (ROOT / "p3d" / "assets" / "LICENSE-mediapipe.txt").read_text()


def test_asset_and_mouth_opening():
    vertices, uv, faces = face.load_asset()
    assert vertices.shape == (468, 3) and uv.shape == (468, 2) and faces.shape == (898, 3)
    bridge = face.bridge_triangles(faces)
    assert bridge.sum() == 18
    loops = set(face.INNER_UPPER_LIP) | set(face.INNER_LOWER_LIP)
    assert set(faces[bridge].ravel()) <= loops
    mesh = face.face_mesh("base")
    assert mesh.n_vertices == 468 and mesh.faces.shape == (880, 3)
    # No remaining triangle touches both an upper-only and a lower-only inner-lip vertex.
    up = set(face.INNER_UPPER_LIP) - set(face.INNER_MOUTH_CORNERS)
    lo = set(face.INNER_LOWER_LIP) - set(face.INNER_MOUTH_CORNERS)
    assert not any(set(t) & up and set(t) & lo for t in mesh.faces.tolist())
    # The mouth is now a hole bounded by the two inner contours.
    edges, counts = face.edges_of(mesh.faces)
    boundary = set(edges[counts == 1].ravel().tolist())
    assert loops <= boundary
    assert face.lip_gap(mesh.vertices) > 0.004  # parted lips at rest (5.5 mm)


def test_size_in_metres_and_orientation():
    v = face.template("base")
    eye = face._eye_centre_distance(v)
    assert eye == pytest.approx(face.EYE_CENTRE_DISTANCE_M, rel=1e-9)
    mouth = np.linalg.norm(v[61] - v[291])
    assert 0.045 < mouth < 0.055  # adult mouth width ~5 cm
    assert 0.11 < np.linalg.norm(v[168] - v[152]) < 0.14  # nasion-chin
    assert v[10, 1] > v[face.NOSE_TIP, 1] > v[0, 1] > v[17, 1] > v[face.CHIN, 1]  # y up
    assert v[face.NOSE_TIP, 2] > v[234, 2]  # z toward the viewer
    assert v[263, 0] > 0 > v[33, 0]  # x toward the subject's left


def test_template_is_a_fresh_copy():
    a = face.template("base")
    a[:] = 0
    assert np.abs(face.template("base")).max() > 0.05
    with pytest.raises(ValueError):
        face.face_mesh("base").vertices[0, 0] = 1.0


def test_dense_variant_by_construction():
    base, dense = face.face_mesh("base"), face.face_mesh("dense")
    assert dense.n_vertices == 7152 and dense.faces.shape == (14080, 3)
    # Butterfly is interpolating: the 468 MediaPipe vertices keep index and position.
    np.testing.assert_allclose(dense.vertices[:468], base.vertices, atol=0)
    n_prev = 468 + 1348  # vertices after one level
    p = dense.parents[n_prev:]
    for name, mask in dense.sets.items():
        np.testing.assert_array_equal(mask[:468], base.sets[name])
        np.testing.assert_array_equal(mask[n_prev:], mask[p[:, 0]] & mask[p[:, 1]], err_msg=name)
    assert np.isfinite(dense.vertices).all() and np.isfinite(dense.uv).all()
    # New vertices stay close to their parents' midpoint (no subdivision spikes).
    mid = 0.5 * (dense.vertices[p[:, 0]] + dense.vertices[p[:, 1]])
    half = 0.5 * np.linalg.norm(dense.vertices[p[:, 0]] - dense.vertices[p[:, 1]], axis=1)
    dev = np.linalg.norm(dense.vertices[n_prev:] - mid, axis=1)
    assert dev.max() < 0.0025 and np.percentile(dev / half, 99) < 0.6


@pytest.mark.parametrize("variant", ["base", "dense"])
def test_topology_regions(variant):
    topo = face.face_topology(variant)
    v = face.template(variant)
    n = topo.n_vertices
    assert topo.faces is not None and topo.faces.max() < n
    lips = set(topo.lips.tolist())
    assert {0, 17, 13, 14, 61, 291} <= lips
    assert topo.mtm_vertices() == (0, 17) and topo.eye_pair == (33, 263)
    assert not lips & set(topo.upper_face.tolist())
    assert v[topo.upper_face, 1].min() >= v[face.NOSE_TIP, 1]
    assert {10, 33, 263, face.NOSE_TIP} <= set(topo.upper_face.tolist())
    jaw = set(topo.region("jaw").tolist())
    assert {17, 14, face.CHIN} <= jaw and not {0, 13, face.NOSE_TIP} & jaw
    left, right = topo.region("left_eye_region"), topo.region("right_eye_region")
    assert (v[left, 0] > 0).all() and (v[right, 0] < 0).all()
    assert 263 in left and 33 in right
    for idx in topo.regions.values():
        assert idx.min() >= 0 and idx.max() < n
    assert topo.eye_distance(v) == pytest.approx(np.linalg.norm(v[33] - v[263]))


def test_registered_topologies():
    assert load_topology("synth-face").n_vertices == face.face_mesh(face.DEFAULT_VARIANT).n_vertices
    assert load_topology("synth-face-base").name == "synth-face-base"
    assert load_topology("synth-face-dense").n_vertices == 7152


def test_masks_are_smooth_and_in_range():
    for name in ("jaw_weights", "mouth_weights"):
        jumps = []
        for variant in ("base", "dense"):
            w = getattr(face, name)(variant)
            assert w.min() >= 0 and w.max() <= 1
            edges, _ = face.edges_of(face.face_mesh(variant).faces)
            jumps.append(np.abs(w[edges[:, 0]] - w[edges[:, 1]]).max())
        # Continuous fields: the largest jump across an edge shrinks as the mesh is refined.
        assert jumps[1] < 0.6 * jumps[0], name
    w = face.jaw_weights("base")
    assert w[17] == 1 and w[14] == 1 and w[0] == 0 and w[13] == 0 and w[10] == 0
    m = face.mouth_weights("base")
    assert m[13] == 1 and m[14] == 1 and m[10] == 0 and 0.2 < m[0] < 0.8


def test_inner_lip_contours():
    up, lo = face.inner_lip_contours("base")
    assert up.tolist() == list(face.INNER_UPPER_LIP) and lo.tolist() == list(face.INNER_LOWER_LIP)
    up, lo = face.inner_lip_contours("dense")
    assert len(up) == len(lo) == 41


def test_bad_variant():
    with pytest.raises(InputError, match="unknown face variant"):
        face.face_mesh("huge")
    with pytest.raises(InputError, match="not a synthetic-face variant"):
        face.variant_of(5023)


def test_documented_size_eye_regions_and_masks():
    # Size: the eye-contour centroids are as far apart as FLAME's eyeball centres (x = +-0.031451 m)
    v = face.template("base")
    assert v.dtype == np.float64
    assert face._eye_centre_distance(v) == pytest.approx(2 * 0.031451, abs=2e-5)
    topo = face.face_topology("base")
    np.testing.assert_array_equal(topo.region("inner_lip_centres"), [13, 14])
    # Eye regions: every vertex within 16 mm of the eye-contour centroid, and no other.
    for name, loop in (("right_eye_region", face.RIGHT_EYE), ("left_eye_region", face.LEFT_EYE)):
        d = np.linalg.norm(v - v[list(loop)].mean(axis=0), axis=1)
        assert set(topo.region(name).tolist()) == set(np.flatnonzero(d <= 0.016).tolist()), name
    # Jaw weights: 1 more than 12 mm below the lower lip and on the middle half of the lower lip,
    # 0 more than 12 mm above the mouth corners and on the upper lip; the jaw region is weight >= 0.5.
    w = face.jaw_weights("base")
    corners = v[list(face.MOUTH_CORNERS)]
    assert (w[v[:, 1] < v[17, 1] - 0.012] == 1).all()
    assert (w[v[:, 1] > corners[:, 1].mean() + 0.012] == 0).all()
    mesh = face.face_mesh("base")
    lower_only = mesh.sets["lower_lip"] & ~mesh.sets["upper_lip"]
    upper_only = mesh.sets["upper_lip"] & ~mesh.sets["lower_lip"]
    middle_half = np.abs(v[:, 0] - corners[:, 0].mean()) < 0.25 * abs(corners[1, 0] - corners[0, 0])
    assert (w[lower_only & middle_half] == 1).all() and (w[upper_only] == 0).all()
    between = (v[:, 1] >= v[17, 1] - 0.012) & (v[:, 1] <= corners[:, 1].mean() + 0.012)
    assert ((w > 0) & (w < 1) & ~between).sum() == 0  # the harmonic band lies between the two limits
    assert set(topo.region("jaw").tolist()) == set(np.flatnonzero(w >= 0.5).tolist())
    # Mouth falloff: 0 exactly outside the ellipse of half-axes 48 mm x 26 mm about the mouth-corner
    # midpoint, positive (harmonic) inside it.
    m = face.mouth_weights("base")
    c = corners.mean(axis=0)
    inside = ((v[:, 0] - c[0]) / 0.048) ** 2 + ((v[:, 1] - c[1]) / 0.026) ** 2 <= 1.0
    np.testing.assert_array_equal(m > 0, inside)


def test_dense_uv_and_butterfly_positions():
    dense = face.face_mesh("dense")
    n_prev = 468 + 1348
    p = dense.parents[n_prev:]
    # UVs of new vertices are linearly interpolated: the midpoint of the parents' UVs
    np.testing.assert_allclose(dense.uv[n_prev:], 0.5 * (dense.uv[p[:, 0]] + dense.uv[p[:, 1]]), atol=1e-12)
    # butterfly, not linear subdivision: new vertices leave the flat edge midpoints on the curved face
    mid = 0.5 * (dense.vertices[p[:, 0]] + dense.vertices[p[:, 1]])
    assert np.median(np.linalg.norm(dense.vertices[n_prev:] - mid, axis=1)) > 1e-5


def test_faces_is_a_fresh_copy():
    f = face.faces("base")
    assert f.shape == (880, 3) and f.dtype == np.int64
    f[:] = 0
    assert face.faces("base").max() > 0
