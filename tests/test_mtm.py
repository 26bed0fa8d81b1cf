"""MTM (p3d.metrics.mtm) against the official algorithm (tests/official_reference.py) and by hand."""
from __future__ import annotations

import numpy as np
import pytest

import official_reference as ref
from p3d.errors import InputError
from p3d.metrics import MTMResult, ddtw, mtm

UPPER, LOWER, V = 4, 1, 6


def lip_vertices(distance: np.ndarray, v: int = V, upper: int = UPPER, lower: int = LOWER,
                 seed: int = 0) -> np.ndarray:
    """(T, v, 3) sequence whose upper/lower lip vertices are ``distance`` apart (other vertices random)."""
    rng = np.random.default_rng(seed)
    out = rng.normal(size=(len(distance), v, 3))
    out[:, lower] = [0.1, -0.2, 0.3]
    out[:, upper] = out[:, lower] + np.outer(distance, [0.6, 0.0, 0.8])
    return out


def smooth_signal(length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    f1, f2 = rng.uniform(5, 20), rng.uniform(3, 9)
    return (1 + 0.3 * np.sin(2 * np.pi * t / f1 + rng.uniform(0, 6))
            + 0.2 * np.sin(2 * np.pi * t / f2 + rng.uniform(0, 6)) + 0.05 * rng.normal(size=length))


def test_mtm_equals_official_on_random_clips():
    rng = np.random.default_rng(42)
    dtypes = [(np.float32, np.float32), (np.float64, np.float64), (np.float32, np.float64)]
    n_with_matches = 0
    for k in range(30):
        gt_dtype, pred_dtype = dtypes[k % 3]
        n, m = int(rng.integers(12, 160)), int(rng.integers(12, 160))
        shift = int(rng.integers(0, 6))
        base = smooth_signal(max(n, m) + shift, seed=k)
        gt = lip_vertices(base[:n], seed=k).astype(gt_dtype)
        pred = lip_vertices(base[shift:shift + m] + 0.05 * rng.normal(size=m), seed=k).astype(pred_dtype)
        mean_ref, deltas_ref = ref.mtm_clip(gt, pred, upper=UPPER, lower=LOWER)
        res = mtm(pred=pred, gt=gt, upper=UPPER, lower=LOWER)
        assert res.deltas == deltas_ref, f"clip {k}"
        assert res.mean_frames == mean_ref, f"clip {k}"
        n_with_matches += bool(deltas_ref)
    assert n_with_matches >= 20


def test_mtm_flattened_flame_sized_input_equals_official():
    rng = np.random.default_rng(3)
    gt = rng.normal(scale=1e-3, size=(60, 5023, 3)).astype(np.float32)
    pred = rng.normal(scale=1e-3, size=(55, 5023, 3)).astype(np.float32)
    gt[:, 3531, 1] += 0.01 * smooth_signal(60, 1).astype(np.float32)
    pred[:, 3531, 1] += 0.01 * smooth_signal(55, 2).astype(np.float32)
    mean_ref, deltas_ref = ref.mtm_clip(gt, pred)
    res = mtm(pred=pred.reshape(55, -1), gt=gt.reshape(60, -1))  # defaults: FLAME 3531 / 3504
    assert res.deltas == deltas_ref and res.mean_frames == mean_ref
    assert res.gt_smooth.dtype == np.float32  # no upcast before the official code would


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ddtw_path_and_cost_equal_official(dtype):
    rng = np.random.default_rng(7)
    for n, m in [(1, 1), (1, 4), (4, 1), (2, 2), (37, 50), (120, 97)]:
        x = np.cumsum(rng.normal(size=n)).astype(dtype)
        y = np.cumsum(rng.normal(size=m)).astype(dtype)
        cost, path = ddtw(x, y)
        cost_ref, path_ref = ref.ddtw_loop(x, y)
        assert cost == cost_ref
        assert np.array_equal(path, path_ref.reshape(-1, 2))
        assert path.dtype == np.int64 and tuple(path[0]) == (0, 0) and tuple(path[-1]) == (n - 1, m - 1)


def test_ddtw_ties_prefer_diagonal():
    # Constant signals: every cost is 0, so every step ties and the path is the diagonal then an edge.
    cost, path = ddtw(np.zeros(4), np.zeros(6))
    assert cost == 0.0
    assert path.tolist() == [[0, 0], [0, 1], [0, 2], [1, 3], [2, 4], [3, 5]]
    assert ref.ddtw_loop(np.zeros(4), np.zeros(6))[1].tolist() == path.tolist()


def test_mtm_of_a_clip_against_itself_is_zero_with_matches():
    v = lip_vertices(smooth_signal(120, 5))
    res = mtm(pred=v, gt=v, upper=UPPER, lower=LOWER)
    assert res.mean_frames == 0.0 and res.n_matches > 3 and set(res.deltas) == {0}
    assert all(i == j for i, j in res.matches)


def test_mtm_grows_with_a_time_shift():
    t = np.arange(200)
    base = 1 + 0.3 * np.sin(2 * np.pi * t / 17) + 0.2 * np.sin(2 * np.pi * t / 7.3 + 1)
    gt = lip_vertices(base[10:130])
    values = [mtm(pred=lip_vertices(base[10 - k:130 - k]), gt=gt, upper=UPPER, lower=LOWER).mean_frames
              for k in range(5)]
    assert values == sorted(values) and values[0] == 0.0 and values[4] > values[1] > 0
    assert values == pytest.approx([0, 1, 2, 3, 4])  # a pure delay is recovered in frames


def test_mtm_hand_case():
    # d_gt has one maximum at 5; d_pred the same bump 2 frames later. sigma tiny: no smoothing effect.
    d_gt = np.array([0, 0, 0, 1, 2, 3, 2, 1, 0, 0, 0, 0], float)
    d_pred = np.roll(d_gt, 2)
    res = mtm(pred=lip_vertices(d_pred), gt=lip_vertices(d_gt), upper=UPPER, lower=LOWER, sigma=1e-3)
    assert res.gt_maxima.tolist() == [5] and res.pred_maxima.tolist() == [7]
    assert res.deltas == [2] and res.matches == [(5, 7)] and res.mean_frames == 2.0
    assert res.ms(30) == pytest.approx(2000 / 30)


def test_match_window_of_the_last_gt_extremum_ends_at_the_last_gt_frame():
    # Algorithm 1 / official code: after the last GT extremum the window ends at len(GT) - 1, a GT index,
    # even when the prediction is longer. Here the DDTW path pairs the GT maximum (frame 8) with the
    # predicted maximum at frame 12 = len(GT): outside the window, so nothing is matched.
    d_gt = np.array([0, 0, 0, 0, 0, 0, 1, 2, 3, 2, 1, 0], float)
    d_pred = np.concatenate([np.zeros(4), d_gt])
    gt, pred = lip_vertices(d_gt), lip_vertices(d_pred)
    res = mtm(pred=pred, gt=gt, upper=UPPER, lower=LOWER, sigma=1e-3)
    assert res.gt_maxima.tolist() == [8] and res.pred_maxima.tolist() == [12]
    assert [8, 12] in res.path.tolist()
    assert ref.mtm_clip(gt, pred, upper=UPPER, lower=LOWER, sigma=1e-3) == (None, [])
    assert res.deltas == [] and res.mean_frames is None


def test_match_window_of_the_second_gt_extremum_starts_at_the_first():
    # Algorithm 1 / official code: the window of a GT extremum starts at the previous GT extremum; only the
    # first GT extremum's window starts at frame 0. Here the GT minimum (frame 4) precedes the GT maximum
    # (frame 8) and the prediction leads by 6 frames: the DDTW path pairs the GT maximum with the predicted
    # maximum at frame 2, before the GT minimum, so outside the window: nothing is matched.
    d_gt = np.array([2, 2, 2, 2, 1, 2, 2, 2, 3, 2, 2, 2, 2, 2], float)
    d_pred = np.concatenate([d_gt[6:], np.full(6, 2.0)])
    gt, pred = lip_vertices(d_gt), lip_vertices(d_pred)
    res = mtm(pred=pred, gt=gt, upper=UPPER, lower=LOWER, sigma=1e-3)
    assert res.gt_minima.tolist() == [4] and res.gt_maxima.tolist() == [8] and res.pred_maxima.tolist() == [2]
    assert [8, 2] in res.path.tolist()
    assert ref.mtm_clip(gt, pred, upper=UPPER, lower=LOWER, sigma=1e-3) == (None, [])
    assert res.deltas == [] and res.mean_frames is None


def test_no_matches_gives_none():
    flat = lip_vertices(np.ones(20))
    res = mtm(pred=flat, gt=flat, upper=UPPER, lower=LOWER)
    assert res.mean_frames is None and res.deltas == [] and res.ms(30) is None
    assert isinstance(res, MTMResult) and len(res.path) == 20


@pytest.mark.parametrize("make, match", [
    (lambda v: (v[:, :, :2], v), "3-D vertex sequence"),
    (lambda v: (v.reshape(len(v), -1)[:, :-1], v), "multiple of 3"),
    (lambda v: (v[0, 0], v), "vertex sequence"),
    (lambda v: (v[:0], v), "no frames"),
    (lambda v: (v, v[:, :-1]), "vertices per frame"),
    (lambda v: (np.where(np.arange(V)[None, :, None] == UPPER, np.nan, v), v), "NaN"),
    (lambda v: (v, np.where(np.arange(V)[None, :, None] == LOWER, np.inf, v)), "NaN or infinite"),
    (lambda v: (v.astype(complex), v), "real-valued"),
])
def test_bad_inputs(make, match):
    v = lip_vertices(smooth_signal(30, 0))
    gt, pred = make(v)
    with pytest.raises(InputError, match=match):
        mtm(pred=pred, gt=gt, upper=UPPER, lower=LOWER)


def test_bad_arguments():
    v = lip_vertices(smooth_signal(30, 0))
    with pytest.raises(InputError, match="out of range"):
        mtm(pred=v, gt=v)  # FLAME defaults on a 6-vertex mesh
    with pytest.raises(InputError, match="integer vertex index"):
        mtm(pred=v, gt=v, upper=1.5, lower=LOWER)
    with pytest.raises(InputError, match="sigma"):
        mtm(pred=v, gt=v, upper=UPPER, lower=LOWER, sigma=0)
    with pytest.raises(InputError, match="fps"):
        mtm(pred=v, gt=v, upper=UPPER, lower=LOWER).ms(0)
    with pytest.raises(InputError, match="1-D"):
        ddtw(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(InputError, match="NaN"):
        ddtw(np.array([0.0, np.nan]), np.zeros(3))


@pytest.mark.parametrize("bad", [True, np.True_, "30", None, np.array([30.0, 60.0]), float("inf"), -30])
def test_bad_frame_rate_and_sigma_are_input_errors(bad):
    """A bool is not a number of frames or a frame rate (sigma=True smoothed with sigma 1 and ms(True) read
    1000 ms per frame); text, None and arrays were TypeError/ValueError tracebacks from ms()."""
    v = lip_vertices(smooth_signal(30, 0))
    res = mtm(pred=v, gt=v, upper=UPPER, lower=LOWER)
    with pytest.raises(InputError, match="fps"):
        res.ms(bad)
    with pytest.raises(InputError, match="sigma"):
        mtm(pred=v, gt=v, upper=UPPER, lower=LOWER, sigma=bad)
    assert res.ms(np.float32(30)) == res.ms(30)


def test_plot_mtm_and_save(tmp_path):
    from matplotlib.figure import Figure

    from p3d.viz.mtm_plot import plot_mtm, save_mtm_plot

    res = mtm(pred=lip_vertices(smooth_signal(60, 2)), gt=lip_vertices(smooth_signal(60, 1)), upper=UPPER, lower=LOWER)
    fig = plot_mtm(res, fps=30)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert "MTM" in ax.get_title() and ax.get_xlabel() == "Frame"
    assert ax.get_ylabel() == "Lip distance (mesh units)"  # a length, in the vertices' unit
    assert plot_mtm(res, unit="m").axes[0].get_ylabel() == "Lip distance (m)"
    n_green = sum(1 for line in ax.get_lines() if line.get_color() == "tab:green")
    assert n_green == res.n_matches
    out = save_mtm_plot(res, tmp_path / "sub" / "clip.png", title="clip")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["clip.png"]  # no temporary left behind
    with pytest.raises(InputError, match="fps"):
        plot_mtm(res, fps=-1)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int8, np.int16, np.int64])
def test_ddtw_of_integer_signals_equals_float(dtype):
    """Integer signals are differenced as numbers: np.diff of unsigned (or narrow signed) integers wrapped around,
    so [0, 1, 0] against zeros cost 256 as uint8 (a step of 255) instead of 2, and [-128, 127] as int8 cost 1."""
    info = np.iinfo(dtype)
    x = np.array([0, 1, 0, info.max, info.min, 3])
    y = np.array([0, 0, 2, info.min, info.max, 1])
    cost, path = ddtw(x.astype(dtype), y.astype(dtype))
    cost_ref, path_ref = ddtw(x.astype(np.float64), y.astype(np.float64))
    assert cost == cost_ref
    assert np.array_equal(path, path_ref)


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is float64 on this platform")
def test_long_double_inputs_compute_as_float64():
    """Long double vertices or signals were a SciPy RuntimeError (gaussian_filter1d) or a numba TypingError
    traceback; every other metric computes on them."""
    v = lip_vertices(smooth_signal(60, 3))
    w = lip_vertices(smooth_signal(55, 4))
    res = mtm(pred=w.astype(np.longdouble), gt=v.astype(np.longdouble), upper=UPPER, lower=LOWER)
    ref64 = mtm(pred=w.astype(np.float64), gt=v.astype(np.float64), upper=UPPER, lower=LOWER)
    assert res.deltas == ref64.deltas and res.mean_frames == ref64.mean_frames
    x, y = smooth_signal(30, 1), smooth_signal(25, 2)
    cost, path = ddtw(x.astype(np.longdouble), y.astype(np.longdouble))
    cost_ref, path_ref = ddtw(x.astype(np.float64), y.astype(np.float64))
    assert cost == cost_ref and np.array_equal(path, path_ref)


def test_plot_mtm_draws_each_extremum_and_match_on_its_own_curve():
    """Triangles (maxima) and circles (minima) sit on their own curve; each green line joins a GT extremum to the
    prediction's extremum MTM matched it with; the top axis is in ms (frame f at f x 1000 / fps) and the title
    states the mean offset in frames and ms."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from p3d.viz.mtm_plot import plot_mtm

    res = mtm(pred=lip_vertices(smooth_signal(60, 2)), gt=lip_vertices(smooth_signal(60, 1)), upper=UPPER, lower=LOWER)
    assert res.n_matches > 0
    fig = plot_mtm(res, fps=25)
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    gt, pred = lines["Ground truth"].get_ydata(), lines["Prediction"].get_ydata()
    for label, idx, curve in (("GT maxima", res.gt_maxima, gt), ("GT minima", res.gt_minima, gt),
                              ("Pred maxima", res.pred_maxima, pred), ("Pred minima", res.pred_minima, pred)):
        if len(idx):
            np.testing.assert_array_equal(lines[label].get_xdata(), idx)
            np.testing.assert_array_equal(lines[label].get_ydata(), curve[idx])
    joins = [(tuple(line.get_xdata()), tuple(line.get_ydata())) for line in ax.lines if line.get_color() == "tab:green"]
    assert joins == [((i, j), (gt[i], pred[j])) for i, j in res.matches]
    (top,) = [child for child in ax.child_axes if child.get_xlabel() == "Time (ms)"]
    assert top.get_xlim() == pytest.approx(tuple(x * 40.0 for x in ax.get_xlim()))  # 40 ms per frame at 25 fps
    assert ax.get_title() == (f"MTM: {res.mean_frames:.2f} frames ({res.mean_frames * 40.0:.1f} ms) over "
                              f"{res.n_matches} matched extrema")
    with pytest.raises(InputError, match="fps"):
        plot_mtm(res, fps=float("inf"))
