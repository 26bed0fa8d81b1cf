"""Tests for p3d.synth.mouth_crop (the numba mouth-region rasteriser of the 2D lip video)."""
from __future__ import annotations

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.synth import mouth_crop as M


def _mouth_sheet(n: int = 21, width: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A square sheet in the x-y plane (normal +z, bulging toward the viewer) with a slit-shaped
    hole in the middle (the mouth). Returns vertices (V, 3), faces (F, 3), lip vertex indices."""
    xs = np.linspace(-width / 2, width / 2, n)
    gx, gy = np.meshgrid(xs, xs)
    verts = np.stack([gx.ravel(), gy.ravel(), 0.02 - 2.0 * (gx.ravel() ** 2 + gy.ravel() ** 2)], axis=1)
    mid = n // 2
    faces, lips = [], set()
    for r in range(n - 1):
        for c in range(n - 1):
            a, b, d, e = r * n + c, r * n + c + 1, (r + 1) * n + c, (r + 1) * n + c + 1
            if r == mid - 1 and n // 4 <= c < n - n // 4 - 1:  # the cells of the slit: no triangles
                lips.update([a, b, d, e])
                continue
            faces += [[a, b, e], [a, e, d]]  # counter-clockwise seen from +z
    return verts, np.array(faces), np.array(sorted(lips))


def _open(verts: np.ndarray, amount: float) -> np.ndarray:
    """Move everything below the slit down by ``amount`` (a jaw drop)."""
    out = verts.copy()
    ys = np.unique(verts[:, 1])
    lower = verts[:, 1] <= ys[len(ys) // 2 - 1] + 1e-12
    out[lower, 1] -= amount
    return out


@pytest.fixture(scope="module")
def sheet():
    return _mouth_sheet()


def test_shape_dtype_and_size(sheet):
    v, f, lips = sheet
    seq = np.stack([v, _open(v, 0.01)])
    gray = M.render_mouth_crops(seq, f, lip_vertices=lips)
    assert gray.shape == (2, 96, 96) and gray.dtype == np.uint8
    rgb = M.render_mouth_crops(seq, f, lip_vertices=lips, size=40, rgb=True, supersample=1)
    assert rgb.shape == (2, 40, 40, 3) and rgb.dtype == np.uint8
    assert gray.std() > 5


def test_opening_the_mouth_shows_a_dark_cavity(sheet):
    v, f, lips = sheet
    window = M.CropWindow.from_lips(v, lips)
    seq = np.stack([_open(v, a) for a in (0.0, 0.005, 0.01, 0.02)])
    crops = M.render_mouth_crops(seq, f, window, lip_vertices=lips)
    dark = (crops < 40).mean(axis=(1, 2))
    assert np.all(np.diff(dark) > 0), dark
    assert dark[-1] > 0.05 and crops[0].mean() > crops[-1].mean()
    skin = crops[-1][crops[-1] >= 40]
    assert skin.mean() > 100  # the face itself is lit, not dark


def test_deterministic_and_winding_independent(sheet):
    v, f, lips = sheet
    seq = np.stack([v, _open(v, 0.01)])
    a = M.render_mouth_crops(seq, f, lip_vertices=lips, rgb=True)
    assert a.tobytes() == M.render_mouth_crops(seq, f, lip_vertices=lips, rgb=True).tobytes()
    flipped = M.render_mouth_crops(seq, f[:, ::-1], lip_vertices=lips, rgb=True)
    assert np.abs(a.astype(int) - flipped.astype(int)).max() <= 1


def test_back_faces_are_dark(sheet):
    v, f, lips = sheet
    # a small triangle in front of the sheet at the mouth, wound counter-clockwise (facing the
    # viewer, like the sheet) or clockwise (seen from behind, like the inside of a lip)
    extra = np.array([[-0.01, 0.01, 0.05], [0.0, -0.01, 0.05], [0.01, 0.01, 0.05]])
    verts = np.vstack([v, extra])
    n = len(v)
    front = M.render_mouth_crops(verts, np.vstack([f, [[n, n + 1, n + 2]]]), lip_vertices=lips)[0]
    back = M.render_mouth_crops(verts, np.vstack([f, [[n, n + 2, n + 1]]]), lip_vertices=lips)[0]
    assert front[48, 48] > 100 and back[48, 48] < 40


def test_window_and_bad_inputs(sheet):
    v, f, lips = sheet
    w = M.CropWindow.from_lips(v, lips, scale=2.0)
    assert w.cx == pytest.approx(0.0, abs=1e-12) and w.half_size > 0
    with pytest.raises(InputError):
        M.CropWindow.from_lips(v, [0])
    with pytest.raises(InputError):
        M.CropWindow.from_lips(v, [0, len(v)])
    with pytest.raises(InputError):
        M.render_mouth_crops(v, f)  # neither window nor lips
    with pytest.raises(InputError):
        M.render_mouth_crops(v, f + len(v), lip_vertices=lips)
    with pytest.raises(InputError):
        M.render_mouth_crops(v, f, lip_vertices=lips, size=4)
    bad = v.copy()
    bad[3, 2] = np.inf
    with pytest.raises(InputError):
        M.render_mouth_crops(bad, f, lip_vertices=lips)


def test_lip_vertices_checked_with_a_window_and_light_direction(sheet):
    # with a window given, lip_vertices only colour the lips and were not checked: an index past the mesh was
    # an IndexError, a negative one coloured a vertex at the other end; a zero light_dir gave NaN shading
    v, f, lips = sheet
    w = M.CropWindow.from_lips(v, lips)
    for bad in ([len(v)], [-1, 3], [1.5]):
        with pytest.raises(InputError, match="lip_vertices"):
            M.render_mouth_crops(v, f, w, lip_vertices=bad)
    with pytest.raises(InputError, match="light_dir"):
        M.render_mouth_crops(v, f, w, lip_vertices=lips, light_dir=(0, 0, 0))
    np.testing.assert_array_equal(M.render_mouth_crops(v, f, w, lip_vertices=lips),
                                  M.render_mouth_crops(v, f, lip_vertices=lips))
