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


def test_window_geometry_luma_and_orientation(sheet):
    v, f, lips = sheet
    seq = np.stack([v, _open(v, 0.004), _open(v, 0.012)])
    # from_lips: centred on the lips' bounding box, side = scale x the lips' x extent
    lo, hi = v[lips].min(axis=0), v[lips].max(axis=0)
    w = M.CropWindow.from_lips(v, lips, scale=2.0)
    assert (w.cx, w.cy) == pytest.approx(((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2), abs=1e-12)
    assert 2 * w.half_size == pytest.approx(2.0 * (hi[0] - lo[0]))
    with pytest.raises(InputError, match="half size"):
        M.CropWindow(0.0, 0.0, 0.0)
    # the default window is taken from the first frame; the default supersampling is 2x2
    default = M.render_mouth_crops(seq, f, lip_vertices=lips, size=24)
    assert default.shape == (3, 24, 24)
    np.testing.assert_array_equal(default, M.render_mouth_crops(seq, f, M.CropWindow.from_lips(seq[0], lips),
                                                                lip_vertices=lips, size=24, supersample=2))
    # gray output is the Rec. 601 luma of the RGB rendering (up to rounding)
    rgb = M.render_mouth_crops(seq, f, lip_vertices=lips, size=24, rgb=True).astype(float)
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    assert np.abs(luma - default).max() <= 1.0
    # orthographic frontal view, x to the right and y up: colour the sheet's quadrants and find them
    colors = np.zeros((len(v), 3))
    colors[:, 0] = v[:, 0] > 0  # red on the right (x > 0)
    colors[:, 2] = v[:, 1] > 0  # blue on top (y > 0)
    img = M.render_mouth_crops(v, f, M.CropWindow(0.0, 0.0, 0.04), vertex_colors=colors, size=16,
                               rgb=True, ambient=1.0)[0].astype(int)
    top, bottom, left, right = slice(0, 4), slice(12, 16), slice(0, 4), slice(12, 16)
    for rows, cols, red, blue in ((top, left, False, True), (top, right, True, True),
                                  (bottom, left, False, False), (bottom, right, True, False)):
        corner = img[rows, cols]
        for channel, on in ((0, red), (2, blue)):
            assert (corner[..., channel].min() > 200) if on else (corner[..., channel].max() < 60)


def test_cavity_lip_colour_and_light_direction(sheet):
    v, f, lips = sheet
    # pixels the face does not cover take the cavity colour
    big = M.CropWindow(0.0, 0.0, 0.08)
    img = M.render_mouth_crops(v, f, big, size=16, rgb=True, cavity=(0.2, 0.4, 0.6))[0]
    np.testing.assert_array_equal(img[0, 0], [51, 102, 153])
    # lip vertices are coloured darker and redder than skin
    w = M.CropWindow.from_lips(v, lips)
    plain = M.render_mouth_crops(v, f, w, rgb=True).astype(float)
    lipped = M.render_mouth_crops(v, f, w, lip_vertices=lips, rgb=True).astype(float)
    changed = np.any(plain != lipped, axis=-1)
    assert changed.mean() > 0.05
    assert (lipped[changed].sum(-1) < plain[changed].sum(-1)).all()
    ratio = lambda x: x[..., 0] / np.maximum(x[..., 1], 1)  # noqa: E731
    assert (ratio(lipped[changed]) > ratio(plain[changed])).mean() > 0.95
    # light_dir is a direction: its length does not matter
    np.testing.assert_array_equal(M.render_mouth_crops(v, f, w, lip_vertices=lips, light_dir=(0.0, 0.35, 1.0)),
                                  M.render_mouth_crops(v, f, w, lip_vertices=lips, light_dir=(0.0, 3.5, 10.0)))
    with pytest.raises(InputError, match="vertex_colors"):
        M.render_mouth_crops(v, f, w, vertex_colors=np.full((len(v), 3), 1.5))
    with pytest.raises(InputError, match="supersample"):
        M.render_mouth_crops(v, f, w, supersample=5)
