"""Procedural articulatory rig for the synthetic face: six parameters -> a vertex sequence.

Parameters (:data:`PARAMS`, each in [0, 1], 0 = rest; values outside are clipped: [0, 1] is the
physical range), applied to the neutral template ``X0`` (V, 3) in metres:

- ``jaw``: jaw opening, a rotation of the lower face about a transverse (x) axis through a pivot
  behind the mouth at the level of the lower ear (MediaPipe 234's depth, 93's height), by up to
  :data:`JAW_MAX_ANGLE` rad, weighted per vertex by the smooth jaw mask :func:`p3d.synth.face.jaw_weights`
  (1 on the middle of the lower lip and on the chin, 0 above the mouth), plus a small forward glide
  of the condyle (:data:`JAW_FORWARD` m per rad). The lower lip follows the jaw.
- ``closure``: upper and lower lip move toward each other (in height and depth) until their contact
  lines meet (the inner lip centres 13/14 are :data:`CONTACT_GAP` apart at closure = 1, vertically
  slightly less, never crossed), and the lips stop following the jaw in proportion
  (the jaw mask is multiplied by ``1 - closure * mouth_mask`` on the lips), so the lips can be pressed
  together while the jaw is slightly open (/p b m/).
- ``round``: rounding/protrusion: the lips forward (7 mm at the centre) and the mouth narrower (corners
  moving 45% of their distance to the midline, times the mouth mask: the outer corners
  ~6 mm each, the inner corners more, so the opening puckers).
- ``spread``: corners outward (16% of their distance to the midline: ~4 mm each) and back (3 mm).
- ``tuck``: lower-lip tuck for labiodentals (/f v/): lower lip back 5 mm, and up toward the upper lip
  by ``0.8 * tuck * (1 - closure)`` of the rest gap, so it never crosses the upper lip.
- ``raise``: upper-lip raise (4 mm at the centre, 2 mm at the corners), slightly forward, scaled
  by ``1 - closure`` (pressed lips cannot part).

Upper face (:data:`UPPER_PARAMS`, the optional ``upper`` argument of :meth:`Rig.pose`, each in [0, 1];
driven by :mod:`p3d.synth.upper_face`), so the FDD region (``upper_face``) moves as a real face does:

- ``brow``: brow raise (AU1+2): the brows up by :data:`BROW_UP` (6 mm) at activation 1, the forehead
  above them by up to half of it toward the hairline, the skin between the upper eyelid margin and
  the brow in proportion (0 at the lid margin), fading out beyond the brows' outer ends and to 30 %
  between the brows (glabella);
- ``blink``: the upper eyelid down onto the lower one (:data:`BLINK_CLOSURE` of the opening at the
  same x, so the lids never cross), the lid skin up to :data:`BLINK_SKIN` above the margin following
  with a smoothstep fall-off; the lower lid stays.

Every displacement field is a product of smooth masks (:func:`p3d.synth.face.mouth_weights`, the
jaw mask and smooth functions of x), so there are no seams. Lip closure never makes the lips cross:
at the inner lip contour the signed gap is ``g0 (1 - closure) (1 - 0.8 tuck) + residual + (1 - closure)
(jaw and raise terms >= 0)``, so it is never negative and tends to the residual as closure -> 1 whatever
the other parameters.

:meth:`Rig.pose` runs one fused numba loop over frames and the vertices any parameter can move (a
third of the face; the rest is copied from the template): a 300-frame clip takes ~20 ms on the dense
mesh (7152 vertices) and ~1 ms on the base mesh on one core (2-core CI machine, under load).
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from p3d.errors import InputError
from p3d.synth import face
from p3d.topology import Topology

PARAMS: tuple[str, ...] = ("jaw", "closure", "round", "spread", "tuck", "raise")
K = len(PARAMS)
JAW, CLOSURE, ROUND, SPREAD, TUCK, RAISE = range(K)
#: Jaw rotation at jaw = 1 (rad, ~17 degrees: the lower lip drops ~2 cm).
JAW_MAX_ANGLE = 0.30
#: Forward glide of the jaw per radian of rotation (m/rad): the condyle translates as the jaw opens.
JAW_FORWARD = 0.015
#: Residual distance between the inner lip centres (13, 14) at full closure (m).
CONTACT_GAP = 0.0003
#: Field amplitudes at unit activation (m, or fractions of x).
ROUND_NARROW, ROUND_FORWARD = 0.45, 0.007
SPREAD_WIDEN, SPREAD_BACK = 0.16, 0.003
TUCK_BACK, TUCK_UP = 0.005, 0.8
RAISE_UP, RAISE_FORWARD = 0.004, 0.001
#: Upper-face parameters (the ``upper`` argument of :meth:`Rig.pose`).
UPPER_PARAMS: tuple[str, ...] = ("brow", "blink")
BROW, BLINK = range(len(UPPER_PARAMS))
#: Brow raise at brow = 1 (m), its slight forward component (m), and the forehead height over which the
#: raise falls to half (m).
BROW_UP, BROW_FORWARD, BROW_FOREHEAD = 0.006, 0.001, 0.035
#: Fraction of the eye opening the upper lid travels at blink = 1, and the height above the lid margin
#: over which the lid skin's share falls to 0 (m).
BLINK_CLOSURE, BLINK_SKIN = 0.95, 0.007
#: MediaPipe eyebrow vertices (``FACEMESH_RIGHT_EYEBROW`` / ``LEFT``): lower and upper row, outer to inner.
RIGHT_BROW = ((46, 53, 52, 65, 55), (70, 63, 105, 66, 107))
LEFT_BROW = ((276, 283, 282, 295, 285), (300, 293, 334, 296, 336))
# Landmarks defining the jaw pivot (MediaPipe indices; valid in every variant).
_PIVOT_DEPTH_VERTEX = 234  # face outline in front of the ear: pivot depth (z)
_PIVOT_HEIGHT_VERTEX = 93  # face outline below the ear: pivot height (y)
# Activation columns of the linear basis.
_BASIS = ("closure", "round", "spread", "tuck_back", "tuck_up", "raise", "brow", "blink")


@dataclasses.dataclass(frozen=True, eq=False)
class Rig:
    """A posable face: template, linear displacement fields and the jaw.

    Attributes:
        template: (V, 3) float64 neutral vertices (m).
        basis: (8, V, 3) float64 displacement fields at unit activation, in :data:`_BASIS` order
            (closure, round, spread, tuck_back, tuck_up, raise, brow, blink); the activations are
            (c, round, spread, tuck, tuck (1 - c), raise (1 - c), brow, blink) for closure c.
        jaw_weight: (V,) jaw mask in [0, 1].
        lip_release: (V,) mouth mask in [0, 1]; closure removes ``closure * lip_release`` of the jaw
            weight, so closed lips stay together while the jaw opens.
        pivot: (3,) a point on the jaw's rotation axis (the axis is parallel to x).
        max_angle: jaw rotation (rad) at jaw = 1.
        forward: forward translation (m) per radian of jaw rotation.
        faces: (F, 3) triangles (for rendering).
    """

    template: np.ndarray
    basis: np.ndarray
    jaw_weight: np.ndarray
    lip_release: np.ndarray
    pivot: np.ndarray
    max_angle: float = JAW_MAX_ANGLE
    forward: float = JAW_FORWARD
    faces: np.ndarray | None = None

    @property
    def n_vertices(self) -> int:
        return int(self.template.shape[0])

    @functools.cached_property
    def moving(self) -> np.ndarray:
        """Indices of the vertices any parameter can move (nonzero field or jaw weight)."""
        return np.flatnonzero(np.any(self.basis != 0, axis=(0, 2)) | (self.jaw_weight > 0))

    @functools.cached_property
    def _packed(self) -> dict[str, np.ndarray]:
        """The moving vertices' data, axis-major ((3, n) per field) so each coordinate is contiguous."""
        idx = self.moving
        return {
            "basis": np.ascontiguousarray(self.basis[:, idx].transpose(0, 2, 1)),
            "template": np.ascontiguousarray(self.template[idx].T),
            "w": np.ascontiguousarray(self.jaw_weight[idx]),
            "wm": np.ascontiguousarray((self.jaw_weight * self.lip_release)[idx]),
        }

    @classmethod
    def from_topology(
        cls,
        topology: Topology | str = "synth-face",
        template: np.ndarray | None = None,
        asymmetry: float = 0.0,
    ) -> Rig:
        """Build the rig for a synthetic-face variant.

        Args:
            topology: a synthetic-face :class:`~p3d.topology.Topology`, a name (``"synth-face"``,
                ``"synth-face-base"``, ``"synth-face-dense"``) or a variant (``"base"``, ``"dense"``).
            template: (V, 3) neutral vertices in metres (e.g. an identity's template,
                :func:`p3d.synth.identity.identity_template`); default: the canonical template. The
                fields are measured on it (rest lip gap, lip positions, pivot).
            asymmetry: left/right imbalance in [-0.5, 0.5] of the lip fields (round, spread, tuck back,
                raise): gain ``1 + asymmetry * tanh(x / half mouth width)``; positive = stronger on the
                subject's left. Closure, tuck-up and the jaw stay symmetric.
        """
        variant = _variant(topology)
        mesh = face.face_mesh(variant)
        x0 = face.template(variant) if template is None else np.array(template, dtype=np.float64)
        if x0.shape != (mesh.n_vertices, 3):
            raise InputError(f"template: expected ({mesh.n_vertices}, 3) for the {variant!r} face, "
                             f"got {x0.shape}")
        if not np.all(np.isfinite(x0)):
            raise InputError("template: contains NaN or infinite values")
        if not -0.5 <= asymmetry <= 0.5:
            raise InputError(f"asymmetry must lie in [-0.5, 0.5], got {asymmetry}")
        w = np.asarray(face.jaw_weights(variant), dtype=np.float64)
        m = np.asarray(face.mouth_weights(variant), dtype=np.float64)
        basis = _fields(x0, variant, w, m, asymmetry)
        pivot = np.array([0.0, x0[_PIVOT_HEIGHT_VERTEX, 1], x0[_PIVOT_DEPTH_VERTEX, 2]])
        return cls(template=x0, basis=basis, jaw_weight=w, lip_release=m, pivot=pivot,
                   faces=np.array(mesh.faces))

    def activations(self, params: np.ndarray, upper: np.ndarray | None = None) -> np.ndarray:
        """(T, 8) activations of the linear basis from (T, K) clipped parameters and (T, 2) clipped
        upper-face parameters (zeros if None): closure c, round, spread, tuck, tuck * (1 - c),
        raise * (1 - c), brow, blink."""
        c = params[:, CLOSURE]
        t = params[:, TUCK]
        open_ = 1.0 - c
        u = np.zeros((len(params), len(UPPER_PARAMS))) if upper is None else upper
        return np.stack([c, params[:, ROUND], params[:, SPREAD], t, t * open_, params[:, RAISE] * open_,
                         u[:, BROW], u[:, BLINK]], axis=1)

    def pose(self, params: np.ndarray, upper: np.ndarray | None = None, dtype: type = np.float64) -> np.ndarray:
        """Vertices for rig parameters.

        Args:
            params: (T, K) or (K,) in :data:`PARAMS` order; clipped to [0, 1].
            upper: optional (T, 2) or (2,) upper-face parameters in :data:`UPPER_PARAMS` order (brow,
                blink); clipped to [0, 1]; None = a still upper face.
            dtype: output dtype (computed in float64, stored as ``dtype``).
        Returns:
            (T, V, 3) vertices in metres ((V, 3) for a single (K,) vector).
        """
        p = np.asarray(params, dtype=np.float64)
        single = p.ndim == 1
        if single:
            p = p[None]
        if p.ndim != 2 or p.shape[1] != K:
            raise InputError(f"params: expected (T, {K}) in the order {PARAMS}, got {np.shape(params)}")
        if not np.all(np.isfinite(p)):
            raise InputError("params: contains NaN or infinite values")
        p = np.clip(p, 0.0, 1.0)
        u = None
        if upper is not None:
            u = np.asarray(upper, dtype=np.float64)
            u = u[None] if u.ndim == 1 else u
            if u.shape != (len(p), len(UPPER_PARAMS)):
                raise InputError(f"upper: expected ({len(p)}, {len(UPPER_PARAMS)}) in the order {UPPER_PARAMS}, "
                                 f"got {np.shape(upper)}")
            if not np.all(np.isfinite(u)):
                raise InputError("upper: contains NaN or infinite values")
            u = np.clip(u, 0.0, 1.0)
        pk = self._packed
        out = np.empty((len(p), self.n_vertices, 3), dtype=dtype)
        _kernel()(np.ascontiguousarray(self.activations(p, u)), np.ascontiguousarray(self.max_angle * p[:, JAW]),
                  np.ascontiguousarray(p[:, CLOSURE]), pk["basis"], pk["template"], pk["w"], pk["wm"],
                  self.moving, self.template, float(self.pivot[1]), float(self.pivot[2]), float(self.forward),
                  out)
        return out[0] if single else out


def _pose_frames(acts, jaw_angle, closure, basis, moving_template, w, wm, moving, template,
                 pivot_y, pivot_z, forward, out):  # pragma: no cover - compiled by numba
    """Fill ``out`` (T, V, 3): the template everywhere, then for each moving vertex j and frame t
    ``x = X0_j + sum_k acts[t, k] basis[k, :, j]``, rotated about the pivot (axis x) by
    ``jaw_angle[t] * (w_j - closure[t] * wm_j)`` with a forward glide ``forward * angle``."""
    n_frames, n_acts = acts.shape
    for t in range(n_frames):
        out[t] = template
        theta = jaw_angle[t]
        for j in range(moving.shape[0]):
            x = moving_template[0, j]
            y = moving_template[1, j]
            z = moving_template[2, j]
            for k in range(n_acts):
                a = acts[t, k]
                if a != 0.0:
                    x += a * basis[k, 0, j]
                    y += a * basis[k, 1, j]
                    z += a * basis[k, 2, j]
            angle = theta * w[j] - theta * closure[t] * wm[j]
            if angle != 0.0:
                cos = np.cos(angle)
                sin = np.sin(angle)
                dy = y - pivot_y
                dz = z - pivot_z
                y = pivot_y + cos * dy - sin * dz
                z = pivot_z + sin * dy + cos * dz + forward * angle
            v = moving[j]
            out[t, v, 0] = x
            out[t, v, 1] = y
            out[t, v, 2] = z


@functools.cache
def _kernel():
    """:func:`_pose_frames` compiled by numba (imported lazily; compiled once, cached on disk)."""
    import numba

    return numba.njit(cache=True, nogil=True)(_pose_frames)


def rest_params(n_frames: int = 1) -> np.ndarray:
    """(T, K) zeros: the neutral template."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
        raise InputError(f"n_frames must be an integer >= 0, got {n_frames!r}")
    return np.zeros((n_frames, K))


def _variant(topology: Topology | str) -> str:
    if isinstance(topology, Topology):
        return face.variant_of(topology.n_vertices)
    name = str(topology)
    if name in face.VARIANTS:
        return name
    if name in face.TOPOLOGIES:
        return face.variant_of(face.TOPOLOGIES[name]().n_vertices)
    raise InputError(f"unknown synthetic-face topology {name!r}; use one of "
                     f"{', '.join(list(face.TOPOLOGIES) + list(face.VARIANTS))}")


def _fields(x0: np.ndarray, variant: str, w: np.ndarray, m: np.ndarray, asymmetry: float) -> np.ndarray:
    """(8, V, 3) displacement fields at unit activation (see module docstring)."""
    up, lo = face.inner_lip_contours(variant)
    x = x0[:, 0]
    x_mid = 0.5 * (x0[face.MOUTH_CORNERS[0], 0] + x0[face.MOUTH_CORNERS[1], 0])
    half_width = 0.5 * abs(x0[face.MOUTH_CORNERS[1], 0] - x0[face.MOUTH_CORNERS[0], 0])
    xr = x - x_mid
    # Rest offset between the inner contours as a function of x (0 beyond the inner corners): the
    # vertical gap g0 and the depth offset d0 (the lower lip's contact line lies ~2 mm in front).
    inside = (x > x0[up, 0].min()) & (x < x0[up, 0].max())
    g0 = np.where(inside, np.maximum(np.interp(x, x0[up, 0], x0[up, 1]) - np.interp(x, x0[lo, 0], x0[lo, 1]),
                                     0.0), 0.0)
    d0 = np.where(inside, np.interp(x, x0[up, 0], x0[up, 2]) - np.interp(x, x0[lo, 0], x0[lo, 2]), 0.0)
    centre = x0[face.INNER_UPPER_LIP_CENTRE] - x0[face.INNER_LOWER_LIP_CENTRE]
    if centre[1] <= CONTACT_GAP:
        raise InputError(f"template: rest lip gap {centre[1] * 1e3:.2f} mm is too small for the rig")
    phi = 1.0 - CONTACT_GAP / float(np.hypot(centre[1], centre[2]))
    side = 1.0 - 2.0 * w  # +1 upper lip, -1 lower lip, 0 halfway (beyond the corners)
    lateral = np.exp(-((xr / half_width) ** 2))  # 1 at the centre, 0.37 at the corners
    t = np.clip((m - 0.05) / 0.35, 0.0, 1.0)
    lips = t * t * (3.0 - 2.0 * t)  # smoothstep: ~1 over the whole lips, fading around them
    gain = 1.0 + asymmetry * np.tanh(xr / half_width)
    basis = np.zeros((len(_BASIS), len(x0), 3))
    basis[0, :, 1] = -side * m * phi * g0 / 2.0  # closure: both contours to their midpoint (y and z)
    basis[0, :, 2] = -side * m * phi * d0 / 2.0
    basis[1, :, 0] = -ROUND_NARROW * xr * m * gain  # round
    basis[1, :, 2] = ROUND_FORWARD * lips * (0.4 + 0.6 * lateral) * gain
    basis[2, :, 0] = SPREAD_WIDEN * xr * lips * gain  # spread
    basis[2, :, 2] = -SPREAD_BACK * lips * np.minimum((xr / half_width) ** 2, 1.5) * gain
    basis[3, :, 2] = -TUCK_BACK * w * m * gain  # tuck back
    basis[4, :, 1] = TUCK_UP * w * m * g0  # tuck up (activation tuck * (1 - closure))
    basis[5, :, 1] = RAISE_UP * (1.0 - w) * m * (0.5 + 0.5 * lateral) * gain  # raise
    basis[5, :, 2] = RAISE_FORWARD * (1.0 - w) * m * gain
    basis[6] = _brow_field(x0)
    basis[7] = _blink_field(x0)
    return basis


def _smoothstep(x: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _eye_contours(x0: np.ndarray, eye: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(upper lid, lower lid) contour vertices of a MediaPipe eye loop, each sorted by x. The loops
    of :mod:`p3d.synth.face` list the lower lid first (corner to corner, 9 vertices), then the upper."""
    loop = list(eye)
    lower, upper = loop[:9], loop[8:] + loop[:1]
    return (np.asarray(sorted(upper, key=lambda v: x0[v, 0])), np.asarray(sorted(lower, key=lambda v: x0[v, 0])))


def _blink_field(x0: np.ndarray) -> np.ndarray:
    """(V, 3) upper-lid displacement at blink = 1 (module docstring)."""
    out = np.zeros_like(x0)
    x, y = x0[:, 0], x0[:, 1]
    for eye in (face.RIGHT_EYE, face.LEFT_EYE):
        up, lo = _eye_contours(x0, eye)
        inside = (x > x0[up, 0].min()) & (x < x0[up, 0].max())
        yu = np.interp(x, x0[up, 0], x0[up, 1])
        yl = np.interp(x, x0[lo, 0], x0[lo, 1])
        opening = np.maximum(yu - yl, 0.0)
        between = np.clip(y - yl, 0.0, None)  # 0 on and below the lower lid
        share = np.where(y <= yu, np.minimum(between, opening), opening * (1.0 - _smoothstep(y - yu, 0.0, BLINK_SKIN)))
        out[:, 1] += np.where(inside, -BLINK_CLOSURE * share, 0.0)
    return out


def _brow_field(x0: np.ndarray) -> np.ndarray:
    """(V, 3) brow-raise displacement at brow = 1 (module docstring)."""
    out = np.zeros_like(x0)
    x, y = x0[:, 0], x0[:, 1]
    for eye, (lower, upper) in ((face.RIGHT_EYE, RIGHT_BROW), (face.LEFT_EYE, LEFT_BROW)):
        side = np.sign(x0[list(eye), 0].mean())
        brow = 0.5 * (x0[list(lower)] + x0[list(upper)])  # the brow's mid-line, outer to inner
        order = np.argsort(brow[:, 0])
        bx, by = brow[order, 0], brow[order, 1]
        up, _ = _eye_contours(x0, eye)
        y_brow = np.interp(x, bx, by)
        y_lid = np.interp(x, x0[up, 0], x0[up, 1])
        outer = np.abs(bx).max()
        inner = np.abs(bx).min()
        ax = np.abs(x)
        w_x = (1.0 - _smoothstep(ax, outer, outer + 0.015)) * (0.3 + 0.7 * _smoothstep(ax, 0.0, inner))
        below = _smoothstep(y, y_lid + 0.001, y_brow)
        above = 1.0 - 0.5 * _smoothstep(y, y_brow, y_brow + BROW_FOREHEAD)
        w_y = np.where(y <= y_brow, below, above)
        w = np.where(side * x >= 0, w_x * w_y, 0.0)
        out[:, 1] += BROW_UP * w
        out[:, 2] += BROW_FORWARD * w
    return out
