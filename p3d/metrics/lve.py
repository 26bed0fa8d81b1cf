"""LVE, the Lip Vertex Error (paper Sec. 6 and Tables 2-4, "LVE"; defined by MeshTalk / FaceFormer).

Three definitions are in use; ``variant`` picks one:

- ``"max_sq"`` (default): CodeTalker's ``cal_metric.py``, the paper's official ``test.py`` and
  ``torchmetrics.functional.multimodal.lip_vertex_error``. For each frame t,
  ``e_t = max_{v in lips} ||pred[t, v] - gt[t, v]||^2`` (squared L2, no square root);
  LVE = mean_t e_t. On VOCASET this is the number usually printed as "x 1e-5" (metres squared).
- ``"max_l2"``: the same with the square root, ``max_v ||pred[t, v] - gt[t, v]||`` (FaceFormer prose).
- ``"meshtalk"``: MeshTalk's own code (facebookresearch/meshtalk issue #32): in every frame the lip
  vertices of GT and of the prediction are each mean-centred (mean over the lip list), then the max L2
  error (with square root) over lip vertices, averaged over frames.

Sequences of different length are truncated to the shorter one (torchmetrics; CodeTalker truncates
the prediction to the GT length and would fail the other way round). Duplicated lip indices (the
FLAME list has four) change nothing for the max; for ``"meshtalk"`` they weight the centring mean
exactly as indexing with the list does.

Dataset-level LVE in CodeTalker is a mean over all frames of all clips pooled (frame-weighted), not
a mean of per-clip means: use :func:`lve_per_frame` and concatenate to reproduce that.
"""
from __future__ import annotations

import numpy as np

from p3d.errors import InputError
from p3d.metrics._checks import (IndexLike, as_indices, as_vertices, check_finite, flame_lips_or,
                                same_vertex_count, squared_norm, take_vertices)

LVE_VARIANTS = ("max_sq", "max_l2", "meshtalk")


def lve_per_frame(pred: np.ndarray, gt: np.ndarray, lip_vertices: IndexLike | None = None, *,
                  variant: str = "max_sq") -> np.ndarray:
    """Per-frame lip error, shape (min(T_pred, T_gt),), in the input units (squared for ``"max_sq"``).

    ``pred``, ``gt``: (T, V, 3) or (T, V*3) vertex sequences of one mesh family at the same frame rate.
    ``lip_vertices``: 1-D vertex indices (duplicates allowed); None (default) is FLAME's official
    254-entry list (:data:`p3d.topology.FLAME_LIPS`), accepted on 5023-vertex FLAME meshes only.
    """
    if variant not in LVE_VARIANTS:
        raise InputError(f"variant: expected one of {', '.join(LVE_VARIANTS)}; got {variant!r}")
    p = as_vertices(pred, "pred")
    g = as_vertices(gt, "gt")
    same_vertex_count(p, g, "pred", "gt")
    lips = as_indices(flame_lips_or(lip_vertices, p.shape[1]), p.shape[1], "lip_vertices")
    t = min(p.shape[0], g.shape[0])
    p_lips = take_vertices(p[:t], lips)
    g_lips = take_vertices(g[:t], lips)
    check_finite(p_lips, "pred (lip vertices)")
    check_finite(g_lips, "gt (lip vertices)")
    if variant == "meshtalk":
        p_lips = p_lips - p_lips.mean(axis=1, keepdims=True)
        g_lips = g_lips - g_lips.mean(axis=1, keepdims=True)
    sq = squared_norm(g_lips - p_lips)  # (T, L)
    worst = sq.max(axis=1)
    return worst if variant == "max_sq" else np.sqrt(worst)


def lve(pred: np.ndarray, gt: np.ndarray, lip_vertices: IndexLike | None = None, *,
        variant: str = "max_sq") -> float:
    """Lip Vertex Error of one clip: the mean over frames of :func:`lve_per_frame` (see module doc).

    ``lip_vertices`` None (default): FLAME's official lips, on FLAME meshes only.
    """
    return float(np.mean(lve_per_frame(pred, gt, lip_vertices, variant=variant)))
