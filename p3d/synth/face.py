"""The synthetic face: the MediaPipe canonical face mesh in metres at a FLAME-like size, with regions.

Source: ``p3d/assets/mediapipe_face.npz``, extracted from the npm package
``@mediapipe/face_mesh@0.4.1657299874`` (Apache-2.0) by ``scripts/extract_mediapipe_mesh.py`` (see
``p3d/assets/README.md``): 468 vertices in cm, 898 triangles, UVs.

Coordinates (unchanged from MediaPipe's canonical model, right-handed): **y up, z toward the viewer
(out of the face), x toward the subject's LEFT** (the viewer's right when facing the subject), as in
FLAME. So MediaPipe vertex 263 (the subject's left outer eye corner) has x > 0 and vertex 33 (right
outer eye corner) has x < 0. The origin is MediaPipe's (behind the nose, roughly mid-face); only
distances matter.

Size. Vertices are converted to metres and scaled so that the centroids of the two eye contours are
:data:`EYE_CENTRE_DISTANCE_M` = 62.9 mm apart: the distance between the two eyeball centres of the
FLAME template (``head_template.obj`` of FLAME 2020 as shipped with DECA: eyeballs at x = ±0.031451 m),
which is also the adult mean interpupillary distance (~63 mm). The MediaPipe model is already
human-sized (6.32 cm between eye-contour centroids), so the factor is 0.00995 m/cm: mouth width
(vertices 61-291) 48.9 mm, outer eye corners (33-263) 88.5 mm, nasion-chin (168-152) 126.5 mm. Hence
LVE, lip distances and loss weights on the synthetic corpora come out in VOCASET's units (metres).

Mouth. The canonical mesh closes the mouth with 18 triangles spanning the inner upper and inner lower
lip contours; they are removed (found from the MediaPipe inner-lip loops, :data:`INNER_UPPER_LIP` /
:data:`INNER_LOWER_LIP`, and asserted to be exactly 18), so the base mesh has 468 vertices and 880
triangles, and the lips can part. At rest the inner lip centres (13/14) are 5.5 mm apart vertically.

Variants (:func:`face_mesh`):

- ``"base"``: 468 vertices, 880 triangles.
- ``"dense"``: two levels of butterfly subdivision (VTK via pyvista): 7152 vertices, 14080 triangles.
  Butterfly is interpolating, so the 468 original vertices keep their index AND position (every
  MediaPipe landmark index below is valid in both variants). Every new vertex is the midpoint-child of
  an edge (its two *parents*, recovered from pyvista's ``linear`` subdivision, which has the same
  connectivity); a new vertex belongs to a region iff both parents do, so lips, upper face and eye
  regions are carried over by construction.

Default variant: :data:`DEFAULT_VARIANT` = ``"base"``, for the CPU budgets. Measured on the project's
2-core CPU machine (one thread, other jobs running; a 300-frame clip, a ``Linear(64, 3V)`` output
layer as in FaceFormer-style decoders):

::

                                   base (468)     dense (7152)    FLAME size (5023)
    values per frame (3V)          1404           21456           15069
    float32 per frame              5.6 kB         86 kB           60 kB
    one hour at 60 fps             1.2 GB         18.5 GB         13 GB
    output layer fwd+bwd           2-5 ms         43-68 ms        41-49 ms
    Rig.pose, 300 frames           ~1 ms          ~20 ms          -
    pyvista render, 88x88 px       3.7 ms/frame   15.5 ms/frame   -

The dense variant costs what FLAME costs (output layer, storage) and is the one to use when model
sizes and costs should resemble the real ones (the corpus ``paper`` preset); the base mesh keeps the
``smoke``/``cpu`` presets (10-minute generation budget, training on a CPU) 15x cheaper in storage and
output-layer cost. The rig, visemes,
regions and metrics behave the same on both; the 468 MediaPipe landmark indices are valid in both.

Regions (:func:`face_topology`), all as vertex index arrays:

- ``lips``: the upper and lower lip between the outer (vermilion border) and inner (contact) contours,
  both contours included; also ``upper_lip`` and ``lower_lip``;
- ``upper_face``: every vertex at or above the nose tip (MediaPipe 1), eyes and forehead included:
  the FDD region;
- ``jaw``: vertices whose jaw weight (:func:`jaw_weights`, the rig's jaw-opening mask) is >= 0.5;
- ``left_eye_region`` / ``right_eye_region``: within 16 mm of the subject's left / right eye-contour
  centroid;
- ``inner_lip_centres``: [13, 14], the inner upper and lower lip centres (lip contact; use these to
  check that the lips close);
- MTM vertices (``mtm_upper``/``mtm_lower``): 0 and 17, the upper and lower lip centres on the OUTER
  lip midline (vermilion border), as FLAME's 3531/3504 are used by the official MTM script;
- ``eye_pair``: (33, 263), the outer eye corners (lip-intensity normalisation, Fig. S2).
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from p3d.errors import InputError
from p3d.topology import Topology

ASSET = Path(__file__).resolve().parent.parent / "assets" / "mediapipe_face.npz"

#: FLAME-like reference size: the distance between the two eye(-contour) centres, in metres.
EYE_CENTRE_DISTANCE_M = 0.0629

# MediaPipe landmark indices (valid in both variants: subdivision keeps the original 468 first).
UPPER_LIP_CENTRE = 0  # outer upper lip centre (MTM upper)
LOWER_LIP_CENTRE = 17  # outer lower lip centre (MTM lower)
INNER_UPPER_LIP_CENTRE = 13
INNER_LOWER_LIP_CENTRE = 14
MOUTH_CORNERS = (61, 291)  # outer lip corners (subject's right, left)
INNER_MOUTH_CORNERS = (78, 308)
#: Vertices joining the inner to the outer lip corner (subject's right, left); they belong to both lips.
CORNER_PATHS = ((78, 62, 76, 61), (308, 292, 306, 291))
NOSE_TIP = 1
CHIN = 152
EYE_OUTER_CORNERS = (33, 263)  # subject's right, left
#: MediaPipe lip loops (``FACEMESH_LIPS``), from the subject's right corner to the left one.
OUTER_UPPER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LOWER_LIP = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
INNER_UPPER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
#: MediaPipe eye contours (``FACEMESH_RIGHT_EYE`` / ``FACEMESH_LEFT_EYE``; subject's right / left).
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)

N_BASE_VERTICES = 468
N_BRIDGE_TRIANGLES = 18
VARIANTS = ("base", "dense")
DEFAULT_VARIANT = "base"
_DENSE_LEVELS = 2
EYE_REGION_RADIUS_M = 0.016


@dataclasses.dataclass(frozen=True, eq=False)
class FaceMesh:
    """One variant of the synthetic face (arrays are read-only; copy before editing).

    Attributes:
        variant: ``"base"`` or ``"dense"``.
        vertices: (V, 3) float64 neutral template in metres (axes: see module docstring).
        faces: (F, 3) int64 triangles (mouth open: no triangle spans the lips).
        uv: (V, 2) float64 MediaPipe texture coordinates (linearly interpolated for new vertices).
        parents: (V, 2) int64 the two parent vertices of each vertex (a vertex of the base mesh is its
            own parent twice); indices refer to the previous subdivision level.
        sets: named boolean (V,) vertex masks carried over by the parent rule.
    """

    variant: str
    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    parents: np.ndarray
    sets: dict[str, np.ndarray]

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])


# -- asset ----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def load_asset() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vendored MediaPipe mesh as extracted: (vertices (468, 3) cm, uv (468, 2), faces (898, 3))."""
    if not ASSET.exists():
        raise InputError(f"{ASSET}: face asset missing; run `python scripts/extract_mediapipe_mesh.py`")
    with np.load(ASSET, allow_pickle=False) as data:
        vertices = np.asarray(data["vertices"], dtype=np.float64)
        uv = np.asarray(data["uv"], dtype=np.float64)
        faces = np.asarray(data["faces"], dtype=np.int64)
    if vertices.shape != (N_BASE_VERTICES, 3) or faces.shape != (898, 3):
        raise InputError(f"{ASSET}: expected 468 vertices and 898 triangles, found "
                         f"{vertices.shape} and {faces.shape}")
    for arr in (vertices, uv, faces):
        arr.setflags(write=False)
    return vertices, uv, faces


def bridge_triangles(faces: np.ndarray) -> np.ndarray:
    """Boolean (F,) mask of the triangles that span the inner upper and inner lower lip.

    A bridge triangle has all three vertices on the inner lip loops, at least one on the upper loop
    only and one on the lower loop only (the corners 78/308 belong to both).
    """
    upper_only = set(INNER_UPPER_LIP) - set(INNER_LOWER_LIP)
    lower_only = set(INNER_LOWER_LIP) - set(INNER_UPPER_LIP)
    loops = upper_only | lower_only | set(INNER_MOUTH_CORNERS)
    out = np.zeros(len(faces), dtype=bool)
    for i, tri in enumerate(faces.tolist()):
        s = set(tri)
        out[i] = s <= loops and bool(s & upper_only) and bool(s & lower_only)
    return out


def edges_of(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges (E, 2) (sorted pairs) and how many triangles use each (E,)."""
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    edges, counts = np.unique(e, axis=0, return_counts=True)
    return edges, counts


def _flood(n: int, edges: np.ndarray, seeds: list[int], barrier: set[int]) -> np.ndarray:
    """Vertices reachable from ``seeds`` without expanding from ``barrier`` vertices (which are kept)."""
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges.tolist():
        nbrs[a].append(b)
        nbrs[b].append(a)
    seen = set(seeds)
    stack = [s for s in seeds if s not in barrier]
    while stack:
        v = stack.pop()
        for u in nbrs[v]:
            if u not in seen:
                seen.add(u)
                if u not in barrier:
                    stack.append(u)
    mask = np.zeros(n, dtype=bool)
    mask[list(seen)] = True
    return mask


def _base_sets(vertices: np.ndarray, faces: np.ndarray) -> dict[str, np.ndarray]:
    """Named vertex masks of the base mesh (468 vertices, mouth open)."""
    n = len(vertices)
    edges, _ = edges_of(faces)
    edge_set = {tuple(e) for e in edges.tolist()}
    for loop in (OUTER_UPPER_LIP, OUTER_LOWER_LIP, INNER_UPPER_LIP, INNER_LOWER_LIP):
        for a, b in zip(loop[:-1], loop[1:]):
            if (min(a, b), max(a, b)) not in edge_set:  # pragma: no cover - asset is pinned
                raise AssertionError(f"lip loop edge {a}-{b} missing from the mesh")
    # Lips: flood the area between the inner and outer contours, starting next to the inner lip
    # centres (12 above 13, 15 below 14), without crossing the lip loops or the corner paths.
    corners = [i for path in CORNER_PATHS for i in path]
    barrier = set(OUTER_UPPER_LIP) | set(OUTER_LOWER_LIP) | set(INNER_UPPER_LIP) | set(INNER_LOWER_LIP)
    barrier |= set(corners)
    upper = _flood(n, edges, [12], barrier)
    lower = _flood(n, edges, [15], barrier)
    upper[list(OUTER_UPPER_LIP) + list(INNER_UPPER_LIP) + corners] = True
    lower[list(OUTER_LOWER_LIP) + list(INNER_LOWER_LIP) + corners] = True
    if (upper & lower).sum() != len(corners) or upper.sum() > 60 or lower.sum() > 60:  # pragma: no cover
        raise AssertionError("lip flood fill leaked: check the lip loops")
    y = vertices[:, 1]
    sets = {
        "upper_lip": upper,
        "lower_lip": lower,
        "upper_face": y >= y[NOSE_TIP],
    }
    for name, loop in (("right_eye_region", RIGHT_EYE), ("left_eye_region", LEFT_EYE)):
        centre = vertices[list(loop)].mean(axis=0)
        sets[name] = np.linalg.norm(vertices - centre, axis=1) <= EYE_REGION_RADIUS_M
    return sets


def _eye_centre_distance(vertices: np.ndarray) -> float:
    return float(np.linalg.norm(vertices[list(LEFT_EYE)].mean(0) - vertices[list(RIGHT_EYE)].mean(0)))


@functools.lru_cache(maxsize=None)
def face_mesh(variant: str = DEFAULT_VARIANT) -> FaceMesh:
    """The synthetic face mesh for ``variant`` (``"base"`` or ``"dense"``); cached."""
    if variant not in VARIANTS:
        raise InputError(f"unknown face variant {variant!r}; use one of {', '.join(VARIANTS)}")
    if variant == "dense":
        return _subdivide(face_mesh("base"), _DENSE_LEVELS, "dense")
    raw_v, raw_uv, raw_f = load_asset()
    bridge = bridge_triangles(raw_f)
    if int(bridge.sum()) != N_BRIDGE_TRIANGLES:  # pragma: no cover - asset is pinned
        raise AssertionError(f"expected {N_BRIDGE_TRIANGLES} lip-bridging triangles, found {bridge.sum()}")
    faces = raw_f[~bridge]
    scale = EYE_CENTRE_DISTANCE_M / _eye_centre_distance(raw_v)
    vertices = raw_v * scale
    parents = np.repeat(np.arange(len(vertices))[:, None], 2, axis=1)
    return _frozen(FaceMesh("base", vertices, faces, raw_uv.copy(), parents, _base_sets(vertices, faces)))


def _frozen(mesh: FaceMesh) -> FaceMesh:
    for arr in (mesh.vertices, mesh.faces, mesh.uv, mesh.parents, *mesh.sets.values()):
        arr.setflags(write=False)
    return mesh


def _subdivide(mesh: FaceMesh, levels: int, name: str) -> FaceMesh:
    """``levels`` rounds of butterfly subdivision; region sets follow the both-parents rule."""
    import pyvista as pv  # heavy import, only for the dense variant
    from scipy.spatial import cKDTree

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces)
    uv = np.asarray(mesh.uv)
    sets = {k: np.asarray(v) for k, v in mesh.sets.items()}
    parents = np.asarray(mesh.parents)
    for _ in range(levels):
        n = len(vertices)
        cells = np.hstack([np.full((len(faces), 1), 3), faces]).astype(np.int64).ravel()
        poly = pv.PolyData(vertices, cells)
        linear = poly.subdivide(1, "linear")
        smooth = poly.subdivide(1, "butterfly")
        if not np.array_equal(linear.faces, smooth.faces):  # pragma: no cover - VTK contract
            raise AssertionError("linear and butterfly subdivision disagree on connectivity")
        edges, _ = edges_of(faces)
        mid = 0.5 * (vertices[edges[:, 0]] + vertices[edges[:, 1]])
        new_linear = np.asarray(linear.points, dtype=np.float64)[n:]
        dist, idx = cKDTree(mid).query(new_linear)
        if len(idx) != len(edges) or len(np.unique(idx)) != len(edges) or dist.max() > 1e-6:
            raise AssertionError("could not match subdivision points to edge midpoints")  # pragma: no cover
        new_parents = edges[idx]
        smooth_pts = np.asarray(smooth.points, dtype=np.float64)
        # VTK works in float32: keep the original vertices exact, take only new points from VTK.
        vertices = np.concatenate([vertices, smooth_pts[n:]])
        uv = np.concatenate([uv, 0.5 * (uv[new_parents[:, 0]] + uv[new_parents[:, 1]])])
        sets = {k: np.concatenate([m, m[new_parents[:, 0]] & m[new_parents[:, 1]]]) for k, m in sets.items()}
        parents = np.concatenate([np.repeat(np.arange(n)[:, None], 2, axis=1), new_parents])
        faces = np.asarray(smooth.faces).reshape(-1, 4)[:, 1:].astype(np.int64)
    return _frozen(FaceMesh(name, vertices, faces, uv, parents, sets))


# -- smooth masks -----------------------------------------------------------------------------------
def _harmonic(n: int, faces: np.ndarray, fixed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Harmonic interpolation on the mesh graph: (V,) with ``values`` at ``fixed`` (bool (V,)).

    Solves L w = 0 on the free vertices with the uniform graph Laplacian (free boundary = natural
    boundary condition), so the result is smooth, has no seams and respects the mouth opening (the
    upper and lower lip are not neighbours).
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    edges, _ = edges_of(faces)
    i = np.concatenate([edges[:, 0], edges[:, 1]])
    j = np.concatenate([edges[:, 1], edges[:, 0]])
    adj = sp.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    lap = sp.diags(np.asarray(adj.sum(axis=1)).ravel()) - adj
    free = ~fixed
    w = np.zeros(n)
    w[fixed] = values[fixed]
    rhs = -lap[free][:, fixed] @ w[fixed]
    w[free] = spla.spsolve(lap[free][:, free].tocsc(), rhs)
    return np.clip(w, 0.0, 1.0)


def inner_lip_contours(variant: str = DEFAULT_VARIANT) -> tuple[np.ndarray, np.ndarray]:
    """Vertex indices of the inner upper and inner lower lip contour (the mouth-opening boundary),
    each sorted by x (from the subject's right corner to the left one), corners 78/308 in both."""
    mesh = face_mesh(variant)
    edges, counts = edges_of(mesh.faces)
    boundary = np.zeros(mesh.n_vertices, dtype=bool)
    boundary[edges[counts == 1].ravel()] = True
    out = []
    for key in ("upper_lip", "lower_lip"):
        idx = np.flatnonzero(boundary & mesh.sets[key])
        out.append(idx[np.argsort(mesh.vertices[idx, 0], kind="stable")])
    return out[0], out[1]


@functools.lru_cache(maxsize=None)
def jaw_weights(variant: str = DEFAULT_VARIANT) -> np.ndarray:
    """(V,) jaw-opening weight in [0, 1]: 1 on the middle half of the lower lip and on the chin/jaw
    more than 12 mm below the lower lip, 0 on the upper lip and everything 12 mm above the mouth
    corners, harmonic (smooth) in between (cheeks, lateral lower lip: ~0.5 at the corners)."""
    mesh = face_mesh(variant)
    v = mesh.vertices
    s = mesh.sets
    both = s["upper_lip"] & s["lower_lip"]  # the lip corners: left free
    corners = v[list(MOUTH_CORNERS)]
    y_corner = corners[:, 1].mean()
    half_width = 0.5 * abs(corners[1, 0] - corners[0, 0])
    # The lower lip is pinned to the jaw only in its middle half: toward the corners the weight
    # falls off harmonically, so the mouth opens as a lens, not a box.
    central = np.abs(v[:, 0] - corners[:, 0].mean()) < 0.5 * half_width
    ones = (s["lower_lip"] & ~both & central) | (v[:, 1] < v[LOWER_LIP_CENTRE, 1] - 0.012)
    zeros = (s["upper_lip"] & ~both) | (v[:, 1] > y_corner + 0.012)
    values = ones.astype(np.float64)
    w = _harmonic(mesh.n_vertices, np.asarray(mesh.faces), ones | zeros, values)
    w.setflags(write=False)
    return w


@functools.lru_cache(maxsize=None)
def mouth_weights(variant: str = DEFAULT_VARIANT) -> np.ndarray:
    """(V,) mouth falloff in [0, 1]: 1 on the inner lip contours, 0 outside an ellipse around the mouth
    (half-axes 48 mm across, 26 mm up/down), harmonic in between (~0.6 on the outer lip contour)."""
    mesh = face_mesh(variant)
    v = mesh.vertices
    up, lo = inner_lip_contours(variant)
    ones = np.zeros(mesh.n_vertices, dtype=bool)
    ones[up] = ones[lo] = True
    corners = v[list(MOUTH_CORNERS)]
    centre = corners.mean(axis=0)
    outside = ((v[:, 0] - centre[0]) / 0.048) ** 2 + ((v[:, 1] - centre[1]) / 0.026) ** 2 > 1.0
    w = _harmonic(mesh.n_vertices, np.asarray(mesh.faces), ones | outside, ones.astype(np.float64))
    w.setflags(write=False)
    return w


# -- public API ---------------------------------------------------------------------------------------
def template(variant: str = DEFAULT_VARIANT) -> np.ndarray:
    """(V, 3) float64 neutral face in metres for ``variant`` (a fresh, writable copy)."""
    return np.array(face_mesh(variant).vertices, dtype=np.float64)


def faces(variant: str = DEFAULT_VARIANT) -> np.ndarray:
    """(F, 3) int64 triangles of ``variant`` (mouth open), a fresh copy."""
    return np.array(face_mesh(variant).faces)


def variant_of(n_vertices: int) -> str:
    """The variant with ``n_vertices`` vertices (error if none)."""
    for name in VARIANTS:
        if face_mesh(name).n_vertices == n_vertices:
            return name
    sizes = ", ".join(f"{face_mesh(n).n_vertices} ({n})" for n in VARIANTS)
    raise InputError(f"{n_vertices} vertices is not a synthetic-face variant (expected one of {sizes})")


def face_topology(variant: str = DEFAULT_VARIANT) -> Topology:
    """The :class:`~p3d.topology.Topology` of a synthetic-face variant (regions: module docstring)."""
    mesh = face_mesh(variant)
    regions = {k: np.flatnonzero(m) for k, m in mesh.sets.items()}
    regions["lips"] = np.flatnonzero(mesh.sets["upper_lip"] | mesh.sets["lower_lip"])
    regions["jaw"] = np.flatnonzero(jaw_weights(variant) >= 0.5)
    regions["inner_lip_centres"] = np.asarray([INNER_UPPER_LIP_CENTRE, INNER_LOWER_LIP_CENTRE])
    regions["lip_corners"] = np.asarray(MOUTH_CORNERS)
    return Topology(
        name=f"synth-face-{variant}",
        n_vertices=mesh.n_vertices,
        regions=regions,
        mtm_upper=UPPER_LIP_CENTRE,
        mtm_lower=LOWER_LIP_CENTRE,
        eye_pair=EYE_OUTER_CORNERS,
        faces=np.array(mesh.faces),
    )


def lip_gap(vertices: np.ndarray) -> np.ndarray:
    """Signed vertical gap (m) between the inner upper and inner lower lip centres (13, 14).

    ``vertices``: (T, V, 3) or (V, 3) of either variant; returns (T,) (or a 0-d array). Positive =
    mouth open; about 0 when the lips touch; negative would mean the lips cross.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim not in (2, 3) or v.shape[-1] != 3 or not any(v.shape[-2] == face_mesh(n).n_vertices for n in VARIANTS):
        raise InputError(f"vertices: expected (T, V, 3) or (V, 3) of a synthetic-face variant, got shape {v.shape}")
    return v[..., INNER_UPPER_LIP_CENTRE, 1] - v[..., INNER_LOWER_LIP_CENTRE, 1]


#: Named topologies for :func:`p3d.topology.load_topology` (name -> zero-argument callable).
TOPOLOGIES = {
    "synth-face": lambda: face_topology(DEFAULT_VARIANT),
    "synth-face-base": lambda: face_topology("base"),
    "synth-face-dense": lambda: face_topology("dense"),
}
