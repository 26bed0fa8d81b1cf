"""FDD, the upper-Face Dynamics Deviation (paper Table S7; defined by CodeTalker, CVPR 2023).

For one clip, with motion m_t(v) = v_t - template(v) for every upper-face vertex v:

    dyn(x) = mean_{v in upper face} std_t ||m_t(v)||^2          (numpy std, ddof=0, as CodeTalker)
    FDD    = dyn(GT) - dyn(prediction)                          (signed, CodeTalker)

``absolute=True`` returns |FDD| (FaceDiffuser's "ABS FDD" per clip). The dataset value in CodeTalker's
``cal_metric.py`` is the plain mean of the signed per-clip values over clips: averaging is the
caller's job. Sequences are truncated to the shorter one (CodeTalker truncates the prediction to the
GT length; it would fail the other way round; the paper's ``perceptual_loss/test.py`` truncates the GT to the
prediction, so there a prediction longer than its GT keeps its extra frames); fewer than 2 common frames is an
InputError (numpy's std over one frame is 0 whatever the faces do, a still face, not a measurement). Units:
squared input units (VOCASET: m^2; Table S7 prints x 1e-7).

The upper-face list is used as given: a vertex listed twice weighs twice in the mean over vertices. FLAME's
region is the *union* of ``eye_region``, ``forehead`` and ``nose`` (the official ``test.py`` takes
``set(...)`` of the three masks; :attr:`p3d.topology.Topology.upper_face` is that union): pass
``np.unique(np.concatenate(...))``, not the concatenation.
"""
from __future__ import annotations

import numpy as np

from p3d.errors import InputError
from p3d.metrics._checks import (IndexLike, as_indices, as_template, as_vertices, check_finite, same_vertex_count,
                                squared_norm, take_vertices)


def upper_face_dynamics(upper_face: np.ndarray, template: np.ndarray) -> float:
    """mean over vertices of std over time of ||v_t - template||^2; (T, U, 3) and (U, 3) arrays."""
    per_vertex = np.ascontiguousarray(squared_norm(upper_face - template[None]).T)  # (U, T)
    # The std runs along contiguous memory, as in CodeTalker's array layout: same rounding.
    return float(np.mean(np.std(per_vertex, axis=1)))


def fdd(pred: np.ndarray, gt: np.ndarray, template: np.ndarray, upper_face_vertices: IndexLike, *,
        absolute: bool = False) -> float:
    """Signed upper-face dynamics deviation of one clip, GT minus prediction (see module doc).

    ``pred``, ``gt``: (T, V, 3) or (T, V*3), at least 2 common frames; ``template``: the neutral face of the
    GT subject, (V, 3) or (V*3,); ``upper_face_vertices``: 1-D vertex indices (e.g. the union of FLAME's
    eye_region, forehead and nose; duplicates weigh twice).
    """
    if not isinstance(absolute, (bool, np.bool_)):  # "no" or "False" would be truthy: |FDD| silently
        raise InputError(f"absolute: expected True or False, got {absolute!r}")
    p = as_vertices(pred, "pred")
    g = as_vertices(gt, "gt")
    same_vertex_count(p, g, "pred", "gt")
    tmpl = as_template(template, p.shape[1])
    upper = as_indices(upper_face_vertices, p.shape[1], "upper_face_vertices")
    t = min(p.shape[0], g.shape[0])
    if t < 2:  # the std over one frame is 0 whatever either face does: not a measurement
        raise InputError(f"FDD needs at least 2 common frames (a std over time), got {t} "
                         f"(pred {p.shape[0]}, gt {g.shape[0]})")
    p_upper, g_upper = take_vertices(p[:t], upper), take_vertices(g[:t], upper)
    check_finite(p_upper, "pred (upper-face vertices)")
    check_finite(g_upper, "gt (upper-face vertices)")
    value = upper_face_dynamics(g_upper, tmpl[upper]) - upper_face_dynamics(p_upper, tmpl[upper])
    return abs(value) if absolute else value
