"""Input validation shared by the metrics (shapes, dtypes, index lists, finiteness), and two helpers.

Every check raises :class:`p3d.errors.InputError` with a message naming the argument. Vertex
sequences are accepted as (T, V, 3) or (T, V*3); the rule is fixed: a 2-D array is always the
flattened layout, so V = shape[1] // 3 and shape[1] must be a multiple of 3.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from p3d.errors import InputError
from p3d.topology import vertex_indices

IndexLike = Sequence[int] | np.ndarray


def _asarray(x: object, name: str, what: str) -> np.ndarray:
    """``np.asarray(x)``; a ragged nested list (numpy's ValueError "inhomogeneous shape") is an InputError."""
    try:
        return np.asarray(x)
    except ValueError:
        raise InputError(f"{name}: expected {what}, got a ragged nested sequence (rows of different lengths)") from None


def as_real_array(x: object, name: str) -> np.ndarray:
    """``np.asarray(x)``; float32/float64 arrays keep their dtype, float16 becomes float32 (exact, as
    :func:`p3d.io.vertex_dtype` reads it: squared distances of float16 positions underflow and round away
    FDD's dynamics and part of LVE), integer arrays become float64."""
    arr = _asarray(x, name, "a real-valued numeric array")
    if arr.dtype.kind == "f":
        return arr.astype(np.float32) if arr.dtype.itemsize < 4 else arr
    if arr.dtype.kind in "iu":
        return arr.astype(np.float64)
    raise InputError(f"{name}: expected a real-valued numeric array, got dtype {arr.dtype}")


def as_vertices(x: object, name: str) -> np.ndarray:
    """Return a (T, V, 3) view of a vertex sequence given as (T, V, 3) or (T, V*3)."""
    arr = as_real_array(x, name)
    if arr.ndim == 2:
        if arr.shape[1] == 0 or arr.shape[1] % 3:
            raise InputError(f"{name}: a 2-D vertex sequence must be (T, V*3); got shape {arr.shape}, "
                             f"whose second dimension is not a positive multiple of 3")
        arr = arr.reshape(arr.shape[0], arr.shape[1] // 3, 3)
    elif arr.ndim == 3:
        if arr.shape[2] != 3 or arr.shape[1] == 0:
            raise InputError(f"{name}: a 3-D vertex sequence must be (T, V, 3) with V > 0; got shape {arr.shape}")
    else:
        raise InputError(f"{name}: expected a vertex sequence of shape (T, V, 3) or (T, V*3); "
                         f"got {arr.ndim}-D shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError(f"{name}: the vertex sequence has no frames (shape {arr.shape})")
    return arr


def as_template(x: object, n_vertices: int, name: str = "template") -> np.ndarray:
    """Return a (V, 3) template given as (V, 3), (V*3,) or (1, V*3); any other shape of V*3 values (e.g. (3, V),
    which a reshape would scramble) is refused."""
    arr = as_real_array(x, name)
    if arr.shape not in ((n_vertices, 3), (3 * n_vertices,), (1, 3 * n_vertices)):
        raise InputError(f"{name}: expected {n_vertices} vertices of shape ({n_vertices}, 3), ({3 * n_vertices},) "
                         f"or (1, {3 * n_vertices}), got shape {arr.shape}")
    arr = arr.reshape(n_vertices, 3)
    check_finite(arr, name)
    return arr


def same_vertex_count(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise InputError(f"{name_a} has {a.shape[1]} vertices per frame but {name_b} has {b.shape[1]}")


def as_indices(idx: object, n_vertices: int, name: str) -> np.ndarray:
    """Validate a non-empty 1-D list of integer vertex indices in [0, n_vertices) (an int64 copy); duplicates are
    allowed. Floats are refused, even whole ones (:func:`p3d.topology.vertex_indices` does the check)."""
    return vertex_indices(idx, n_vertices, name, ndim=1, non_empty=True, whole_floats=False)


def as_vertex_index(i: object, n_vertices: int, name: str) -> int:
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
        raise InputError(f"{name}: expected an integer vertex index, got {i!r}")
    if not 0 <= int(i) < n_vertices:
        raise InputError(f"{name}: vertex index {int(i)} is out of range for a {n_vertices}-vertex mesh")
    return int(i)


def as_positive_number(x: object, name: str, what: str) -> float:
    """A finite number > 0 given as a Python or numpy int or float; a bool (``True`` would read as 1) is refused."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(x)) or float(x) <= 0:
        raise InputError(f"{name}: expected {what}, got {x!r}")
    return float(x)


def check_finite(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(f"{name}: contains {bad} NaN or infinite value(s)")


def as_1d_finite(x: object, name: str, *, min_len: int = 1) -> np.ndarray:
    """A 1-D finite float array with at least ``min_len`` entries."""
    arr = as_real_array(x, name)
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.size < min_len:
        raise InputError(f"{name}: expected at least {min_len} value(s), got {arr.size}")
    check_finite(arr, name)
    return arr


def squared_norm(x: np.ndarray) -> np.ndarray:
    """||x||^2 over the last axis of length 3, summed in the order of ``np.sum(x ** 2, axis=-1)``.

    Bit-identical to that expression (for 3 terms numpy adds left to right) and several times faster
    than a reduction over a length-3 axis.
    """
    return x[..., 0] ** 2 + x[..., 1] ** 2 + x[..., 2] ** 2


def take_vertices(vertices: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``vertices[:, idx]`` of a (T, V, 3) array as a C-contiguous (T, L, 3) array.

    Same values as fancy indexing, whose result has a transposed memory layout that makes the
    arithmetic after it several times slower.
    """
    t = vertices.shape[0]
    cols = (3 * idx[:, None] + np.arange(3)).reshape(-1)
    return np.take(vertices.reshape(t, -1), cols, axis=1).reshape(t, len(idx), 3)


def flame_lips_or(lip_vertices: object, n_vertices: int, name: str = "lip_vertices") -> object:
    """``lip_vertices``, or FLAME's official 254-entry lip list when it is None (FLAME meshes only).

    The default is refused on a mesh that is not FLAME's (5023 vertices): the FLAME indices would pick
    arbitrary vertices there and give a silently wrong number.
    """
    if lip_vertices is not None:
        return lip_vertices
    from p3d.topology import FLAME_LIPS, FLAME_N_VERTICES  # data layer: numpy and p3d.errors only

    if n_vertices != FLAME_N_VERTICES:
        raise InputError(f"{name}: not given, and the default (FLAME's official lips) needs {FLAME_N_VERTICES}-vertex "
                         f"FLAME meshes; got {n_vertices} vertices: pass the lip indices of this mesh family "
                         f"(e.g. p3d.topology.load_topology(...).lips)")
    return FLAME_LIPS
