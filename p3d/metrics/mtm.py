"""MTM, the Mean Temporal Misalignment (paper Sec. 5, Sec. E.1, Algorithm 1; Fig. S4, S5).

Reproduces the official ``evaluation/evaluate_MTM.py`` clip by clip and offset by offset:

1. lip distance d(t) = ||v_upper(t) - v_lower(t)|| (``np.linalg.norm`` over xyz, in the input dtype);
   FLAME upper 3531, lower 3504 (paper Fig. S3);
2. smoothing with ``scipy.ndimage.gaussian_filter1d(d, sigma)`` (default mode and truncation), sigma 2;
3. DDTW (:func:`ddtw`) on the first differences ``np.diff(s, prepend=s[0])`` with cost |dx_i - dy_j|;
4. extrema: ``scipy.signal.find_peaks`` (default arguments) on the *smoothed distances* (maxima) and
   on their negatives (minima), as Algorithm 1 and the code do (the E.1 prose says the derivatives);
5. for every warping-path pair (i, j), in path order, where i is a GT extremum and j a predicted
   extremum of the same type, and j lies in [previous GT extremum, next GT extremum] of i (0 and
   len(GT) - 1 at the ends, inclusive), record |i - j|;
6. the clip value is the mean of the recorded offsets, in frames (None when nothing matched).

The dataset MTM is the mean of the per-clip values over clips with a value (the caller's job), and
``MTMResult.ms(fps)`` converts frames to milliseconds. Both sequences must be at the same frame rate:
the official script subsamples 60 fps VOCASET GT with ``[::2]``; here that is the caller's job
(``mtm(pred=pred, gt=gt[::2])``).

Argument order: every p3d metric takes ``(pred, gt)`` (torchmetrics' ``(preds, target)``), but
:func:`mtm` took ``(gt, pred)`` in p3d 0.1. A swap of two same-shape arrays cannot be detected, so
the transition goes through keywords:

- p3d 0.1 (this release): ``mtm(pred=..., gt=...)`` is the API. Two positional arrays keep their
  0.1 meaning ``(gt, pred)`` and emit a :class:`DeprecationWarning`; so does ``mtm(gt, pred=...)``.
  ``mtm(pred, gt=...)`` is already the new order and gives no warning.
- next release: the positional order becomes ``(pred, gt)``; keyword calls are unchanged.

The DDTW forward pass and backtracking run in numba (compiled lazily on first use, cached on disk);
they give bit-identical paths to the official plain-Python double loop.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from p3d.errors import InputError
from p3d.metrics._checks import (_asarray, as_positive_number, as_vertex_index, as_vertices, check_finite,
                                same_vertex_count)

_KERNEL: Any = None


def _ddtw_kernel(dx: np.ndarray, dy: np.ndarray) -> tuple[float, np.ndarray]:
    """DTW on 1-D derivative sequences: cost |dx_i - dy_j|; backtrack with ties diagonal, up, left.

    Written for numba (see :func:`_kernel`); it is also valid (slow) plain Python.
    """
    n = dx.shape[0]
    m = dy.shape[0]
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost = abs(dx[i - 1] - dy[j - 1])  # in the inputs' dtype, as the official code
            acc[i, j] = cost + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    path = np.empty((n + m, 2), dtype=np.int64)
    k = 0
    i, j = n, m
    while i > 0 and j > 0:
        path[k, 0] = i - 1
        path[k, 1] = j - 1
        k += 1
        # np.argmin over [diagonal, up, left]: the first minimum wins.
        best = acc[i - 1, j - 1]
        step = 0
        if acc[i - 1, j] < best:
            best = acc[i - 1, j]
            step = 1
        if acc[i, j - 1] < best:
            step = 2
        if step == 0:
            i -= 1
            j -= 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
    return acc[n, m], path[:k][::-1].copy()


def _kernel() -> Any:
    """The numba-compiled :func:`_ddtw_kernel` (numba is imported on first use only)."""
    global _KERNEL
    if _KERNEL is None:
        import numba

        _KERNEL = numba.njit(cache=True)(_ddtw_kernel)
    return _KERNEL


def _as_signal(x: object, name: str) -> np.ndarray:
    arr = _asarray(x, name, "a real-valued 1-D signal")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{name}: expected a real-valued 1-D signal, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"{name}: expected a non-empty 1-D signal, got shape {arr.shape}")
    check_finite(arr, name)
    if arr.dtype.kind in "iu":  # np.diff of unsigned or narrow integers wraps around: [0, 1, 0] as uint8 has a step 255
        return arr.astype(np.float64)
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:  # long double: numba (and SciPy's filters) have no kernel
        return arr.astype(np.float64)
    return arr.astype(np.float32) if arr.dtype.kind == "f" and arr.dtype.itemsize < 4 else arr


def ddtw(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Derivative DTW of two 1-D signals (the official ``ddtw``; Keogh & Pazzani 2001 [19]).

    Derivatives are ``np.diff(s, prepend=s[0])`` (the first is 0), of integer signals converted to float64
    first. Returns the cumulative cost D[n, m] and the warping path, an int64 array (k, 2) of (index in x,
    index in y) pairs from (0, 0) to (n - 1, m - 1).
    """
    xs = _as_signal(x, "x")
    ys = _as_signal(y, "y")
    dx = np.ascontiguousarray(np.diff(xs, prepend=xs[0]))
    dy = np.ascontiguousarray(np.diff(ys, prepend=ys[0]))
    distance, path = _kernel()(dx, dy)
    return float(distance), path


@dataclasses.dataclass(frozen=True, eq=False)
class MTMResult:
    """MTM of one clip, with everything :func:`p3d.viz.mtm_plot.plot_mtm` draws.

    Frame indices are at the common frame rate of the two inputs.
    """

    mean_frames: float | None
    """Mean |i - j| over matched extrema, in frames; None when no extrema matched."""
    deltas: list[int]
    """The recorded offsets |i - j|, in warping-path order."""
    matches: list[tuple[int, int]]
    """The matched (GT frame, predicted frame) pairs, in warping-path order (one per delta)."""
    gt_smooth: np.ndarray
    """(T_gt,) smoothed GT lip distance."""
    pred_smooth: np.ndarray
    """(T_pred,) smoothed predicted lip distance."""
    gt_maxima: np.ndarray
    gt_minima: np.ndarray
    pred_maxima: np.ndarray
    pred_minima: np.ndarray
    path: np.ndarray
    """(k, 2) DDTW warping path, (GT frame, predicted frame)."""
    distance: float
    """DDTW cumulative cost."""

    @property
    def n_matches(self) -> int:
        return len(self.deltas)

    def ms(self, fps: float) -> float | None:
        """``mean_frames`` in milliseconds at ``fps`` frames per second (None when no match)."""
        rate = as_positive_number(fps, "fps", "a positive frame rate (frames per second)")
        return None if self.mean_frames is None else self.mean_frames * 1000.0 / rate


def lip_distance(vertices: np.ndarray, upper: int, lower: int) -> np.ndarray:
    """(T,) distance between the upper and lower lip vertices of a validated (T, V, 3) sequence, in its dtype
    (float64 for long double, which SciPy's Gaussian filter does not take)."""
    d = np.linalg.norm(vertices[:, upper, :] - vertices[:, lower, :], axis=1)
    return d.astype(np.float64) if d.dtype.itemsize > 8 else d


#: The message of the :class:`DeprecationWarning` for the p3d 0.1 positional order of :func:`mtm`.
MTM_ORDER_WARNING = ("mtm's positional arguments are (gt, pred) in p3d 0.1 and become (pred, gt) in the next "
                     "release; pass pred= and gt= by keyword")


def _mtm_inputs(args: tuple[Any, ...], pred: Any, gt: Any) -> tuple[Any, Any]:
    """(pred, gt) from :func:`mtm`'s arguments, following the transition plan of the module doc."""
    if len(args) > 2:
        raise InputError(f"mtm: expected at most 2 positional arguments (pass pred= and gt= by keyword), "
                         f"got {len(args)}")
    if len(args) == 2:
        if pred is not None or gt is not None:
            raise InputError("mtm: got two positional sequences and pred=/gt= as well; pass pred= and gt= by "
                             "keyword only")
        # p3d 0.1 order (gt, pred), kept for one release
        warnings.warn(MTM_ORDER_WARNING, DeprecationWarning, stacklevel=3)
        return args[1], args[0]
    if len(args) == 1:
        if (pred is None) == (gt is None):
            raise InputError("mtm: got one positional sequence; pass pred= and gt= by keyword")
        if gt is None:  # mtm(gt, pred=...): valid in 0.1, an error once the positional order is (pred, gt)
            warnings.warn(MTM_ORDER_WARNING, DeprecationWarning, stacklevel=3)
            return pred, args[0]
        return args[0], gt  # mtm(pred, gt=...): the new order already
    missing = [name for name, value in (("pred", pred), ("gt", gt)) if value is None]
    if missing:
        raise InputError(f"mtm: missing {' and '.join(missing)}; call mtm(pred=..., gt=...)")
    return pred, gt


def mtm(*args: np.ndarray, pred: np.ndarray | None = None, gt: np.ndarray | None = None,
        upper: int = 3531, lower: int = 3504, sigma: float = 2.0) -> MTMResult:
    """Mean Temporal Misalignment of one clip (see module doc): ``mtm(pred=..., gt=...)``.

    ``pred``, ``gt``: (T, V, 3) or (T, V*3) vertex sequences at the same frame rate (subsample 60 fps
    GT with ``gt[::2]`` first); lengths may differ. ``upper``/``lower``: the lip-centre vertices
    (FLAME defaults, :data:`p3d.topology.FLAME_MTM_UPPER` / ``FLAME_MTM_LOWER``). ``sigma``: Gaussian
    smoothing in frames. Two positional arrays are read in the p3d 0.1 order ``(gt, pred)`` with a
    :class:`DeprecationWarning` (see "Argument order" in the module doc).
    """
    pred, gt = _mtm_inputs(args, pred, gt)
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    g = as_vertices(gt, "gt")
    p = as_vertices(pred, "pred")
    same_vertex_count(g, p, "gt", "pred")
    upper = as_vertex_index(upper, g.shape[1], "upper")
    lower = as_vertex_index(lower, g.shape[1], "lower")
    if upper == lower:  # the lip distance would be 0 in every frame: no extrema, "no match" for any prediction
        raise InputError(f"upper, lower: the same vertex {upper}; MTM needs two lip vertices")
    sigma = as_positive_number(sigma, "sigma", "a positive number of frames")
    for arr, name in ((g, "gt"), (p, "pred")):
        check_finite(arr[:, [upper, lower]], f"{name} (MTM lip vertices {upper}, {lower})")

    gt_s = gaussian_filter1d(lip_distance(g, upper, lower), sigma=sigma)
    pred_s = gaussian_filter1d(lip_distance(p, upper, lower), sigma=sigma)
    distance, path = ddtw(gt_s, pred_s)

    gt_max, gt_min = find_peaks(gt_s)[0], find_peaks(-gt_s)[0]
    pred_max, pred_min = find_peaks(pred_s)[0], find_peaks(-pred_s)[0]
    # Extremum type per frame: +1 maximum, -1 minimum, 0 neither (a frame cannot be both).
    gt_type = np.zeros(len(gt_s), dtype=np.int8)
    gt_type[gt_max], gt_type[gt_min] = 1, -1
    pred_type = np.zeros(len(pred_s), dtype=np.int8)
    pred_type[pred_max], pred_type[pred_min] = 1, -1

    i, j = path[:, 0], path[:, 1]
    same = (gt_type[i] != 0) & (gt_type[i] == pred_type[j])
    i, j = i[same], j[same]
    extrema = np.sort(np.concatenate([gt_max, gt_min]))
    pos = np.searchsorted(extrema, i)  # i is in extrema, so extrema[pos] == i
    left = np.where(pos > 0, extrema[np.maximum(pos - 1, 0)], 0)
    right = np.where(pos < len(extrema) - 1, extrema[np.minimum(pos + 1, len(extrema) - 1)], len(gt_s) - 1)
    keep = (left <= j) & (j <= right)
    i, j = i[keep], j[keep]
    deltas = [int(d) for d in np.abs(i - j)]
    return MTMResult(
        mean_frames=float(np.mean(deltas)) if deltas else None,
        deltas=deltas,
        matches=[(int(a), int(b)) for a, b in zip(i, j)],
        gt_smooth=gt_s,
        pred_smooth=pred_s,
        gt_maxima=gt_max,
        gt_minima=gt_min,
        pred_maxima=pred_max,
        pred_minima=pred_min,
        path=path,
        distance=distance,
    )
