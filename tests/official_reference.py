"""Test oracle: a plain-Python re-statement of the official evaluation scripts' algorithms.

Written from the documented semantics of the paper's ``evaluation/evaluate_MTM.py``,
``extract_lip_intensity.py``, ``extract_rms.py``, ``evaluate_SLCC.py`` and CodeTalker's
``cal_metric.py`` (LVE, FDD), step by step and deliberately naive: Python lists, dicts and a double
loop, numpy scalars as the scripts use them. It is the reference that ``p3d.metrics`` is tested
against, and the "plain-Python DDTW loop" baseline of ``benchmarks/bench_metrics.py``.

Two known defects of the scripts are not reproduced: ``scipy.spatial.distance.euclidean`` on
scalars (fails on current scipy; on old scipy it equalled |a - b|, used here) and the int16 overflow
of squaring mono int16 audio (samples are converted to float64 first).
"""
from __future__ import annotations

import numpy as np


# --- MTM (evaluate_MTM.py) ---------------------------------------------------------------------

def ddtw_loop(x, y):
    """Derivative DTW with an O(n m) Python double loop; returns (cost, path array (k, 2))."""
    dx = np.diff(x, prepend=x[0])
    dy = np.diff(y, prepend=y[0])
    n, m = len(dx), len(dy)
    table = np.full((n + 1, m + 1), np.inf)
    table[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            local = abs(dx[i - 1] - dy[j - 1])
            table[i, j] = local + min(table[i - 1, j], table[i, j - 1], table[i - 1, j - 1])
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        pairs.append((i - 1, j - 1))
        choice = int(np.argmin([table[i - 1, j - 1], table[i - 1, j], table[i, j - 1]]))
        if choice == 0:
            i, j = i - 1, j - 1
        elif choice == 1:
            i = i - 1
        else:
            j = j - 1
    pairs.reverse()
    return float(table[n, m]), np.array(pairs)


def mtm_clip(gt_vertices, pred_vertices, upper=3531, lower=3504, sigma=2.0):
    """(mean offset in frames or None, list of offsets) for one clip, as ``calculate_upper_lower_distance``.

    Inputs are (T, V, 3) arrays already at the same frame rate (no ``[::2]`` here).
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    gt_mag = np.linalg.norm(gt_vertices[:, upper, :] - gt_vertices[:, lower, :], axis=1)
    pred_mag = np.linalg.norm(pred_vertices[:, upper, :] - pred_vertices[:, lower, :], axis=1)
    gt_smooth = gaussian_filter1d(gt_mag, sigma=sigma)
    pred_smooth = gaussian_filter1d(pred_mag, sigma=sigma)
    _, path = ddtw_loop(gt_smooth, pred_smooth)

    kind_gt = {idx: "max" for idx in find_peaks(gt_smooth)[0]}
    kind_gt.update({idx: "min" for idx in find_peaks(-gt_smooth)[0]})
    kind_pred = {idx: "max" for idx in find_peaks(pred_smooth)[0]}
    kind_pred.update({idx: "min" for idx in find_peaks(-pred_smooth)[0]})
    ordered = sorted(kind_gt)

    offsets = []
    for a, b in path:
        if a in kind_gt and b in kind_pred and kind_gt[a] == kind_pred[b]:
            k = ordered.index(a)
            lo = ordered[k - 1] if k > 0 else 0
            hi = ordered[k + 1] if k < len(ordered) - 1 else len(gt_smooth) - 1
            if lo <= b <= hi:
                offsets.append(abs(a - b))
    return (float(np.mean(offsets)) if offsets else None), [int(o) for o in offsets]


# --- SLCC (extract_lip_intensity.py, extract_rms.py, evaluate_SLCC.py) -------------------------

def lip_intensity_clip(vertices, lip_map):
    """RMS over frames of the per-frame mean lip displacement magnitude; vertices (T, V, 3)."""
    lips = vertices[:, lip_map, :]
    moves = lips[1:] - lips[:-1]
    magnitude = np.sqrt(np.sum(moves ** 2, axis=2))
    per_frame = np.mean(magnitude, axis=1)
    return np.sqrt(np.mean(per_frame ** 2))


def audio_rms(samples):
    """RMS of the samples; (n, channels) averaged over channels first."""
    data = np.asarray(samples, dtype=np.float64)
    if data.ndim > 1:
        data = np.mean(data, axis=1)
    return np.sqrt(np.mean(data ** 2))


def slcc_table(speech, lip, identity, level=None):
    """pandas re-statement of evaluate_SLCC.py: {'all': r, level: r, ...} (levels only if given)."""
    import pandas as pd
    from scipy import stats

    df = pd.DataFrame({"S": speech, "L": lip, "Identity": identity})
    if level is not None:
        df["Level"] = level
    df["ZS"] = df.groupby("Identity")["S"].transform(lambda x: (x - x.mean()) / x.std())
    df["ZL"] = df.groupby("Identity")["L"].transform(lambda x: (x - x.mean()) / x.std())
    df = df.dropna(subset=["ZS", "ZL"])
    out = {"all": stats.pearsonr(df["ZS"], df["ZL"])[0]}
    if level is not None:
        for lv in df["Level"].unique():
            part = df[df["Level"] == lv]
            out[lv] = stats.pearsonr(part["ZS"], part["ZL"])[0]
    return out


# --- LVE and FDD (CodeTalker main/cal_metric.py) -----------------------------------------------

def lve_codetalker(pred, gt, lip_map):
    """Mean over frames of the per-frame max over lip vertices of the squared L2 error; (T, V, 3)."""
    pred = pred[: gt.shape[0]]
    per_vertex = np.array([np.square(gt[:, v, :] - pred[:, v, :]) for v in lip_map])  # (L, T, 3)
    per_vertex = np.sum(np.transpose(per_vertex, (1, 0, 2)), axis=2)  # (T, L)
    return np.mean(np.max(per_vertex, axis=1))


def fdd_codetalker(pred, gt, template, upper_map):
    """GT minus prediction of mean_v std_t ||v_t - template||^2 over upper-face vertices; (T, V, 3)."""
    pred = pred[: gt.shape[0]]

    def dynamics(vertices):
        motion = vertices - template.reshape(1, -1, 3)
        per_vertex = np.array([np.square(motion[:, v, :]) for v in upper_map])  # (U, T, 3)
        per_vertex = np.sum(np.transpose(per_vertex, (1, 0, 2)), axis=2)  # (T, U)
        return np.mean(np.std(per_vertex, axis=0))

    return dynamics(gt) - dynamics(pred)
