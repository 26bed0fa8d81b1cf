"""The metric API: one argument order (pred, gt), MTM's deprecated (gt, pred) order, FLAME default regions."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.metrics import lip_intensity, lve, lve_per_frame, mtm
from p3d.metrics.mtm import MTM_ORDER_WARNING
from p3d.topology import FLAME_LIPS, FLAME_MTM_LOWER, FLAME_MTM_UPPER, FLAME_N_VERTICES


def _talking(length: int, seed: int) -> np.ndarray:
    """(T, 5023, 3) FLAME-sized sequence whose MTM lip centres open and close (other vertices noise)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(scale=1e-3, size=(length, FLAME_N_VERTICES, 3)).astype(np.float32)
    t = np.arange(length)
    v[:, FLAME_MTM_UPPER, 1] += (0.01 * np.sin(2 * np.pi * t / rng.uniform(8, 14))).astype(np.float32)
    return v


@pytest.fixture(scope="module")
def clips() -> tuple[np.ndarray, np.ndarray]:
    return _talking(70, 1), _talking(64, 2)  # (pred, gt): different lengths, so a swap changes the result


def _same(a, b) -> None:
    assert a.deltas == b.deltas and a.mean_frames == b.mean_frames and a.matches == b.matches
    np.testing.assert_array_equal(a.gt_smooth, b.gt_smooth)
    np.testing.assert_array_equal(a.pred_smooth, b.pred_smooth)


def test_mtm_old_positional_order_equals_keywords_and_warns(clips):
    pred, gt = clips
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the keyword API emits no warning
        new = mtm(pred=pred, gt=gt)
        also_new = mtm(pred, gt=gt)  # already the next release's positional order
    with pytest.warns(DeprecationWarning, match=r"\(gt, pred\) in p3d 0\.1 and become \(pred, gt\)") as record:
        old = mtm(gt, pred)
    assert str(record[0].message) == MTM_ORDER_WARNING
    assert record[0].filename == __file__  # points at the caller, not at p3d
    with pytest.warns(DeprecationWarning):
        old_mixed = mtm(gt, pred=pred)  # valid in 0.1, an error once positionals are (pred, gt)
    for res in (also_new, old, old_mixed):
        _same(res, new)
    assert len(new.gt_smooth) == len(gt) and len(new.pred_smooth) == len(pred)
    swapped = mtm(pred=gt, gt=pred)
    assert len(swapped.gt_smooth) == len(pred)  # the test can tell the orders apart


@pytest.mark.parametrize("call, match", [
    (lambda p, g: mtm(p), "one positional"),
    (lambda p, g: mtm(p, g, gt=g), "keyword only"),
    (lambda p, g: mtm(p, g, g), "at most 2 positional"),
    (lambda p, g: mtm(p, pred=p, gt=g), "one positional"),
    (lambda p, g: mtm(pred=p), "missing gt"),
    (lambda p, g: mtm(), "missing pred and gt"),
])
def test_mtm_ambiguous_calls_are_refused(clips, call, match):
    pred, gt = clips
    with pytest.raises(InputError, match=match):
        call(pred, gt)


def test_mtm_defaults_are_flame(clips):
    pred, gt = clips
    _same(mtm(pred=pred, gt=gt), mtm(pred=pred, gt=gt, upper=FLAME_MTM_UPPER, lower=FLAME_MTM_LOWER))


def test_flame_lip_defaults_equal_explicit_flame_lips(clips):
    pred, gt = clips
    for variant in ("max_sq", "max_l2", "meshtalk"):
        assert lve(pred, gt, variant=variant) == lve(pred, gt, FLAME_LIPS, variant=variant)
    np.testing.assert_array_equal(lve_per_frame(pred, gt), lve_per_frame(pred, gt, FLAME_LIPS))
    for aggregate in ("rms", "mean"):
        assert lip_intensity(pred, aggregate=aggregate) == lip_intensity(pred, FLAME_LIPS, aggregate=aggregate)
    # a different lip list gives a different number: the default is really FLAME_LIPS
    assert lve(pred, gt) != lve(pred, gt, FLAME_LIPS[:10])


def test_flame_lip_default_refused_on_other_meshes():
    v = np.random.default_rng(0).normal(size=(5, 6000, 3))  # enough vertices for every FLAME index
    with pytest.raises(InputError, match="lip_vertices: not given.*5023-vertex"):
        lve(v, v)
    with pytest.raises(InputError, match="lip_vertices: not given"):
        lve_per_frame(v, v)
    with pytest.raises(InputError, match="lip_vertices: not given"):
        lip_intensity(v)
    assert lve(v, v, [0, 1]) == 0.0  # explicit lips still work on any mesh


def test_api_table_lists_every_vertex_metric():
    import p3d.metrics

    doc = p3d.metrics.__doc__
    for name in ("lve,", "fdd ", "mtm ", "lip_intensity ", "speech_intensity ", "slcc,", "slcc_delta ",
                 "plrs,", "bootstrap_ci,"):
        assert f"| {name}" in doc, name


def test_float16_sequences_are_computed_as_float32():
    """float16 positions are read as float32 (exact), as p3d.io reads them: in float16 the squared distances
    of FDD underflow (its dynamics rounded to 0) and MTM's smoothing and DDTW refused the dtype."""
    from p3d.metrics import ddtw, fdd, fdd_dynamics

    rng = np.random.default_rng(0)
    gt = (rng.normal(size=(30, 20, 3)) * 0.01).astype(np.float16)
    pred = (gt + rng.normal(size=gt.shape) * 1e-3).astype(np.float16)
    template, lips, upper = gt[0], [1, 2, 3, 4], [5, 6, 7, 8]
    as32 = [a.astype(np.float32) for a in (pred, gt, template)]
    assert fdd(pred, gt, template, upper) == fdd(*as32, upper)
    assert fdd(pred, gt, template, upper) != 0.0
    assert fdd_dynamics(gt, upper, template) == fdd_dynamics(as32[1], upper, as32[2])
    assert lve(pred, gt, lips) == lve(as32[0], as32[1], lips)
    assert lip_intensity(gt, lips) == lip_intensity(as32[1], lips)
    assert mtm(pred=pred, gt=gt, upper=0, lower=1).mean_frames == mtm(pred=as32[0], gt=as32[1], upper=0,
                                                                      lower=1).mean_frames
    assert ddtw(gt[:, 0, 0], pred[:, 0, 0])[0] == ddtw(as32[1][:, 0, 0], as32[0][:, 0, 0])[0]


def test_mtm_refuses_one_vertex_as_both_lips(clips):
    pred, gt = clips
    with pytest.raises(InputError, match="upper, lower: the same vertex 3531"):
        mtm(pred=pred, gt=gt, upper=FLAME_MTM_UPPER, lower=FLAME_MTM_UPPER)  # was None ("no match"), silently


def test_ragged_nested_lists_are_input_errors():
    """A ragged nested list (rows of different lengths) was numpy's ValueError "inhomogeneous shape" traceback
    from np.asarray in every metric, in its vertex indices and in ddtw."""
    from p3d.errors import InputError
    from p3d.metrics import ddtw, fdd, lip_intensity, lve, speech_intensity

    ragged = [[0.0, 0.0, 0.0], [0.0, 0.0]]
    v = np.zeros((4, 2, 3))
    for call, name in ((lambda: lve(ragged, v, [0]), "pred"), (lambda: lve(v, v, [[0], [0, 1]]), "lip_vertices"),
                       (lambda: fdd(v, v, ragged, [0]), "template"), (lambda: lip_intensity(ragged, [0]), "vertices"),
                       (lambda: speech_intensity(ragged), "audio"), (lambda: ddtw(ragged, [0.0, 1.0]), "x")):
        with pytest.raises(InputError, match=f"^{name}: expected .*ragged"):
            call()
