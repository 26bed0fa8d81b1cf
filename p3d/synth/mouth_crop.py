"""Mouth-region crops: the 2D lip video of the synthetic LRS3 stand-in (stage 1's visual input).

Stage 1 of the paper learns a speech / 2D-lip-video representation on LRS3 crops (5 frames of
160x160 RGB per window, Sec. 3.1; the exact cropping procedure is not given). The synthetic corpus
renders such crops from the articulated face: :func:`render_mouth_crops` takes (T, V, 3) vertices,
(F, 3) faces and a :class:`CropWindow` (mouth centre and half size in mesh units, fixed for the
clip, from the lip vertices of a reference frame) and returns (T, S, S) grayscale or (T, S, S, 3)
RGB uint8 crops, all framed identically, so lip motion is what changes between frames.

Method: a z-buffer triangle rasteriser compiled with numba, orthographic frontal projection
(looking along -z, y up), Gouraud-interpolated Lambert shading (per-vertex normals recomputed every
frame, a light from the front and slightly above), per-vertex albedo (lips darker and redder than
skin when ``lip_vertices`` are given), supersampling (default 2x2) with a box filter. The mouth
cavity is dark: pixels not covered by the face and back-facing triangles (the inner sides of the
lips, seen through the parted lips) take the dark ``cavity`` colour, so an opening mouth shows as a
growing dark region. Only triangles that can reach the window are rasterised. Deterministic (no
fast-math, fixed order).

Speed: CPU milliseconds per frame (``time.process_time``, so the load of the shared machine is
mostly excluded; pyvista's figure includes llvmpipe's render threads), on the project's 2-core CPU
machine, 50-frame clips of the synthetic face, best of 3-5 runs (``benchmarks/bench_mouth_crop.py``):

===========================================  ==========  ==========  ==========  ==========
method                                       base 96     dense 96    base 160    dense 160
===========================================  ==========  ==========  ==========  ==========
this rasteriser, supersample 1               0.14 ms     0.68 ms     0.32 ms     1.1 ms
this rasteriser, supersample 2 (default)     0.39 ms     1.2 ms      0.86 ms     2.0 ms
pyvista off-screen (EGL + llvmpipe)          2.7 ms      11.8 ms     -           -
===========================================  ==========  ==========  ==========  ==========

("base": 468 vertices, 880 triangles; "dense": 7152 vertices, 14080 triangles.) pyvista also needs
0.1-1 s to set up each plotter. The rasteriser meets the ~1 ms per 96x96 frame budget of the ``cpu``
preset on the base face (and nearly on the dense one); pyvista does not. numba compiles the kernel
once per machine (~3 s, cached in ``__pycache__``).
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import numpy as np

from p3d.errors import InputError

SKIN_RGB = (0.87, 0.76, 0.68)
LIP_RGB = (0.72, 0.42, 0.42)
CAVITY_RGB = (0.10, 0.04, 0.04)
LIGHT_DIR = (0.0, 0.35, 1.0)


@dataclasses.dataclass(frozen=True)
class CropWindow:
    """Square crop in mesh units: centre ``(cx, cy)`` (x right, y up) and half side ``half_size``."""

    cx: float
    cy: float
    half_size: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.cx) and np.isfinite(self.cy) and np.isfinite(self.half_size)
                and self.half_size > 0):
            raise InputError(f"crop window needs a finite centre and a positive half size, got {self}")

    @classmethod
    def from_lips(cls, reference: np.ndarray, lip_vertices: Sequence[int] | np.ndarray,
                  scale: float = 1.8) -> CropWindow:
        """Window centred on the lips' bounding box in ``reference`` (V, 3), with side ``scale`` x
        mouth width (the x extent of the lip vertices)."""
        ref = np.asarray(reference, dtype=np.float64)
        idx = np.asarray(lip_vertices, dtype=np.int64).ravel()
        if ref.ndim != 2 or ref.shape[1] != 3:
            raise InputError(f"reference must have shape (V, 3), got {ref.shape}")
        if idx.size < 2 or idx.min() < 0 or idx.max() >= len(ref):
            raise InputError(f"lip_vertices must hold >= 2 indices in [0, {len(ref)}), got {idx.size} "
                             f"in [{idx.min() if idx.size else '-'}, {idx.max() if idx.size else '-'}]")
        lips = ref[idx]
        lo, hi = lips.min(axis=0), lips.max(axis=0)
        width = float(hi[0] - lo[0])
        if not width > 0:
            raise InputError("lip vertices have zero width in x: cannot frame the mouth")
        return cls(float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2), scale * width / 2)


def render_mouth_crops(vertices: np.ndarray, faces: np.ndarray, window: CropWindow | None = None, *,
                       lip_vertices: Sequence[int] | np.ndarray | None = None, size: int = 96,
                       rgb: bool = False, vertex_colors: np.ndarray | None = None,
                       supersample: int = 2, light_dir: Sequence[float] = LIGHT_DIR,
                       ambient: float = 0.3, cavity: Sequence[float] = CAVITY_RGB) -> np.ndarray:
    """Render the mouth region of each frame: (T, S, S) uint8 gray, or (T, S, S, 3) with ``rgb``.

    ``vertices`` (T, V, 3) (or (V, 3)), ``faces`` (F, 3). ``window``: the crop (default: from
    ``lip_vertices`` on the first frame; pass one computed on the identity's template to frame every
    clip of an identity identically). ``lip_vertices`` also colour the lips (:data:`LIP_RGB`)
    unless ``vertex_colors`` ((V, 3) RGB in [0, 1]) are given. ``size``: S pixels (the paper: 160).
    Gray output is the Rec. 601 luma of the RGB rendering.
    """
    verts = np.asarray(vertices)
    if verts.ndim == 2:
        verts = verts[None]
    if verts.ndim != 3 or verts.shape[-1] != 3 or verts.shape[0] == 0 or verts.shape[1] < 3:
        raise InputError(f"vertices must have shape (T, V, 3), got {verts.shape}")
    if not np.issubdtype(verts.dtype, np.floating) or not np.all(np.isfinite(verts)):
        raise InputError("vertices must be finite floating-point values")
    n_v = verts.shape[1]
    tris = np.asarray(faces)
    if tris.ndim != 2 or tris.shape[1] != 3 or len(tris) == 0 or not np.issubdtype(tris.dtype, np.integer):
        raise InputError(f"faces must be a non-empty (F, 3) integer array, got {tris.shape} {tris.dtype}")
    if tris.min() < 0 or tris.max() >= n_v:
        raise InputError(f"faces index vertices outside [0, {n_v})")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 8 <= size <= 1024:
        raise InputError(f"size must be an integer in [8, 1024], got {size!r}")
    if (isinstance(supersample, bool) or not isinstance(supersample, (int, np.integer))
            or not 1 <= supersample <= 4):
        raise InputError(f"supersample must be 1, 2, 3 or 4, got {supersample!r}")
    if lip_vertices is not None:  # checked here too: with a window given, they only colour the lips
        lips = np.asarray(lip_vertices)
        if lips.size == 0 or lips.dtype.kind not in "iu" or lips.min() < 0 or lips.max() >= n_v:
            raise InputError(f"lip_vertices must be vertex indices in [0, {n_v}), got {lips.size} of dtype "
                             f"{lips.dtype}" + (f" in [{lips.min()}, {lips.max()}]" if lips.size else ""))
    if window is None:
        if lip_vertices is None:
            raise InputError("render_mouth_crops needs a window or lip_vertices")
        window = CropWindow.from_lips(verts[0], lip_vertices)

    albedo = np.empty((n_v, 3), dtype=np.float64)
    if vertex_colors is not None:
        col = np.asarray(vertex_colors, dtype=np.float64)
        if col.shape != (n_v, 3) or not np.all((col >= 0) & (col <= 1)):
            raise InputError(f"vertex_colors must be (V, 3) = ({n_v}, 3) in [0, 1], got {col.shape}")
        albedo[:] = col
    else:
        albedo[:] = SKIN_RGB
        if lip_vertices is not None:
            albedo[np.asarray(lip_vertices, dtype=np.int64)] = LIP_RGB
    light = np.asarray(light_dir, dtype=np.float64)
    if light.shape != (3,) or not np.all(np.isfinite(light)) or not np.linalg.norm(light) > 0:
        raise InputError(f"light_dir must be a finite non-zero 3-vector, got {light_dir!r}")
    light = light / np.linalg.norm(light)

    # Keep the triangles whose bounding box (over all frames) meets the window, and their vertices.
    x, y = verts[..., 0], verts[..., 1]
    xmin, xmax, ymin, ymax = x.min(0), x.max(0), y.min(0), y.max(0)
    w = window
    keep = ((xmax[tris].max(1) >= w.cx - w.half_size) & (xmin[tris].min(1) <= w.cx + w.half_size)
            & (ymax[tris].max(1) >= w.cy - w.half_size) & (ymin[tris].min(1) <= w.cy + w.half_size))
    sub = tris[keep]
    used, inverse = np.unique(sub, return_inverse=True)
    sub = inverse.reshape(-1, 3).astype(np.int64)
    # Winding of the mesh, so that front- and back-facing triangles are told apart whatever the
    # convention of the topology.
    orient = _orientation(verts[0], tris)

    img = _kernel()(np.ascontiguousarray(verts[:, used], dtype=np.float64), sub, albedo[used], int(size),
                     int(supersample), w.cx, w.cy, w.half_size, light, float(ambient), orient,
                     np.asarray(cavity, dtype=np.float64), bool(rgb))
    return img if rgb else img[..., 0]


def _orientation(v: np.ndarray, tris: np.ndarray) -> float:
    """+1 if the triangles nearest the viewer (centroid z above the median) wind counter-clockwise
    in the x-y plane (their normals point to +z), else -1."""
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    z = (a[:, 2] + b[:, 2] + c[:, 2]) / 3
    front = z >= np.median(z)
    return 1.0 if area[front].sum() >= 0 else -1.0


@functools.lru_cache(maxsize=1)
def _kernel() -> Callable[..., np.ndarray]:
    """The numba-compiled :func:`_rasterise` (numba is imported on first use, not at import)."""
    import numba

    return numba.njit(cache=True)(_rasterise)


def _rasterise(verts, tris, albedo, size, ss, cx, cy, half, light, ambient, orient, cavity, rgb):
    """(T, size, size, 3 if rgb else 1) uint8; see :func:`render_mouth_crops` (numba kernel)."""
    n_t, n_v = verts.shape[0], verts.shape[1]
    n_f = tris.shape[0]
    res = size * ss
    n_c = 3 if rgb else 1
    out = np.empty((n_t, size, size, n_c), dtype=np.uint8)
    img = np.empty((res, res, 3))
    zbuf = np.empty((res, res))
    px = np.empty(n_v)
    py = np.empty(n_v)
    shade = np.empty((n_v, 3))
    normals = np.empty((n_v, 3))
    k = res / (2.0 * half)
    luma = (0.299, 0.587, 0.114)
    for t in range(n_t):
        v = verts[t]
        # per-vertex normals (area weighted), oriented outwards, then Lambert shading
        normals[:, :] = 0.0
        for f in range(n_f):
            i0, i1, i2 = tris[f, 0], tris[f, 1], tris[f, 2]
            ax, ay, az = v[i1, 0] - v[i0, 0], v[i1, 1] - v[i0, 1], v[i1, 2] - v[i0, 2]
            bx, by, bz = v[i2, 0] - v[i0, 0], v[i2, 1] - v[i0, 1], v[i2, 2] - v[i0, 2]
            nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
            for i in (i0, i1, i2):
                normals[i, 0] += nx
                normals[i, 1] += ny
                normals[i, 2] += nz
        for i in range(n_v):
            nn = np.sqrt(normals[i, 0] ** 2 + normals[i, 1] ** 2 + normals[i, 2] ** 2)
            d = 0.0
            if nn > 0:
                d = orient * (normals[i, 0] * light[0] + normals[i, 1] * light[1]
                              + normals[i, 2] * light[2]) / nn
            lam = ambient + (1.0 - ambient) * max(d, 0.0)
            for c in range(3):
                shade[i, c] = albedo[i, c] * lam
            px[i] = (v[i, 0] - cx) * k + res / 2.0
            py[i] = (cy - v[i, 1]) * k + res / 2.0
        zbuf[:, :] = -np.inf
        for c in range(3):
            img[:, :, c] = cavity[c]
        for f in range(n_f):
            i0, i1, i2 = tris[f, 0], tris[f, 1], tris[f, 2]
            x0, y0, x1, y1, x2, y2 = px[i0], py[i0], px[i1], py[i1], px[i2], py[i2]
            area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
            if area == 0.0:
                continue
            # image y points down, so a front-facing triangle has an area of sign -orient
            back = area * orient > 0
            r0 = max(int(np.floor(min(y0, y1, y2))), 0)
            r1 = min(int(np.ceil(max(y0, y1, y2))), res - 1)
            q0 = max(int(np.floor(min(x0, x1, x2))), 0)
            q1 = min(int(np.ceil(max(x0, x1, x2))), res - 1)
            inv = 1.0 / area
            z0, z1, z2 = v[i0, 2], v[i1, 2], v[i2, 2]
            # barycentric weights are linear in the pixel centre's x along a row: w_i = a_i + b_i * sx
            b0, b1 = (y1 - y2) * inv, (y2 - y0) * inv
            b2 = -(b0 + b1)
            for r in range(r0, r1 + 1):
                sy = r + 0.5
                a0 = (x1 * (y2 - sy) - x2 * (y1 - sy)) * inv
                a1 = (x2 * (y0 - sy) - x0 * (y2 - sy)) * inv
                a2 = 1.0 - a0 - a1
                # the span of sx where all three weights are >= 0
                lo, hi, empty = -np.inf, np.inf, False
                for a, b in ((a0, b0), (a1, b1), (a2, b2)):
                    if b > 0.0:
                        lo = max(lo, -a / b)
                    elif b < 0.0:
                        hi = min(hi, -a / b)
                    elif a < 0.0:
                        empty = True
                if empty or lo > hi:
                    continue
                # a pixel centre on a shared edge belongs to both triangles (the z-test picks one):
                # the tolerance keeps rounding from opening cracks between triangles
                qa = max(q0, int(np.ceil(lo - 0.5 - 1e-7)))
                qb = min(q1, int(np.floor(hi - 0.5 + 1e-7)))
                for q in range(qa, qb + 1):
                    sx = q + 0.5
                    w0 = a0 + b0 * sx
                    w1 = a1 + b1 * sx
                    w2 = 1.0 - w0 - w1
                    z = w0 * z0 + w1 * z1 + w2 * z2
                    if z <= zbuf[r, q]:
                        continue
                    zbuf[r, q] = z
                    for c in range(3):
                        if back:
                            img[r, q, c] = cavity[c]
                        else:
                            img[r, q, c] = w0 * shade[i0, c] + w1 * shade[i1, c] + w2 * shade[i2, c]
        # box-filter the supersamples, convert to gray if asked, quantise
        norm = 255.0 / (ss * ss)
        for r in range(size):
            for q in range(size):
                acc0, acc1, acc2 = 0.0, 0.0, 0.0
                for a in range(r * ss, r * ss + ss):
                    for b in range(q * ss, q * ss + ss):
                        acc0 += img[a, b, 0]
                        acc1 += img[a, b, 1]
                        acc2 += img[a, b, 2]
                if rgb:
                    out[t, r, q, 0] = np.uint8(min(max(np.rint(acc0 * norm), 0.0), 255.0))
                    out[t, r, q, 1] = np.uint8(min(max(np.rint(acc1 * norm), 0.0), 255.0))
                    out[t, r, q, 2] = np.uint8(min(max(np.rint(acc2 * norm), 0.0), 255.0))
                else:
                    g = (luma[0] * acc0 + luma[1] * acc1 + luma[2] * acc2) * norm
                    out[t, r, q, 0] = np.uint8(min(max(np.rint(g), 0.0), 255.0))
    return out
