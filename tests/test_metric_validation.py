"""Tests for p3d.analysis.metric_validation (shifts and Fig. S5, viseme oracle, rank validation) and the graded
degradations of p3d.analysis.degradations."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from p3d.analysis import degradations as dg
from p3d.analysis import metric_validation as mv
from p3d.analysis import referee_validity as rv
from p3d.errors import InputError
from tiny_corpus import write_tiny_corpus


def _bumps(n_frames: int = 120, period: int = 20, n_vertices: int = 4) -> np.ndarray:
    """(T, V, 3): vertex 0 fixed, vertex 1 moves down and up with well-separated bumps (lip distance)."""
    t = np.arange(n_frames)
    d = 0.01 + 0.01 * (1 - np.cos(2 * np.pi * t / period)) / 2 * (1 + 0.3 * np.sin(t / 7.0))
    v = np.zeros((n_frames, n_vertices, 3))
    v[:, 1, 1] = -d
    v[:, 2:, 0] = 0.05
    return v


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from p3d.corpus import Corpus

    root = write_tiny_corpus(tmp_path_factory.mktemp("mv") / "c", kind="vocaset", identities={"train": 3, "test": 2},
                             clips_per_identity=3, seconds=2.0, lip_video=False)
    return Corpus.open(root)


@pytest.fixture(scope="module")
def oracle(tiny):
    return mv.train_viseme_oracle(tiny, "train", n_components=8)


# -- shifts and MTM -------------------------------------------------------------------------------------------
def test_shift_sequence_lags_and_repeats_first_frame():
    v = np.arange(6, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
    s = mv.shift_sequence(v, 2)
    assert s.shape == v.shape and s.dtype == v.dtype
    assert s[:, 0, 0].tolist() == [0, 0, 0, 1, 2, 3]
    assert mv.shift_sequence(v, -2)[:, 0, 0].tolist() == [2, 3, 4, 5, 5, 5]
    np.testing.assert_array_equal(mv.shift_sequence(v, 0), v)
    assert mv.shift_sequence(v.reshape(6, 6), 1).shape == (6, 2, 3)  # flattened input
    with pytest.raises(InputError, match="offset"):
        mv.shift_sequence(v, 1.5)


def test_mtm_offset_curve_recovers_small_offsets():
    gts = [_bumps(), _bumps(100, 24)]
    per = mv.mtm_offsets(gts, range(4), topology=(0, 1), names=["a", "b"])
    assert list(per.columns) == ["clip", "offset", "mtm_frames", "n_matches"] and len(per) == 8
    np.testing.assert_allclose(per.groupby("offset")["mtm_frames"].mean().to_numpy(), [0, 1, 2, 3])
    curve = mv.mtm_offset_curve(gts, range(4), fps=25, topology=(0, 1), n_resamples=200)
    np.testing.assert_allclose(curve["mtm_ms"], [0, 40, 80, 120])
    np.testing.assert_allclose(curve["offset_ms"], [0, 40, 80, 120])
    assert (curve["ci_low"] <= curve["mtm_ms"]).all() and (curve["mtm_ms"] <= curve["ci_high"]).all()
    assert curve["n_clips"].tolist() == [2] * 4
    slope = mv.offset_slope(per, 25, n_resamples=100)
    assert slope["slope"] == pytest.approx(1.0) and slope["intercept_ms"] == pytest.approx(0.0, abs=1e-9)
    assert slope["ci_low"] <= 1.0 + 1e-9 and slope["ci_high"] >= 1.0 - 1e-9


def test_mtm_offset_curve_takes_topology_and_checks_input():
    from p3d.topology import Topology

    topo = Topology(name="t", n_vertices=4, regions={}, mtm_upper=0, mtm_lower=1, eye_pair=(2, 3))
    per = mv.mtm_offsets([_bumps()], [0, 2], topology=topo)
    assert per["mtm_frames"].tolist() == [0.0, 2.0]
    with pytest.raises(InputError, match="gts"):
        mv.mtm_offsets([], topology=topo)
    with pytest.raises(InputError, match="offsets"):
        mv.mtm_offsets([_bumps()], [], topology=topo)
    with pytest.raises(InputError, match="topology"):
        mv.mtm_offsets([_bumps()], [0], topology="flame?")
    with pytest.raises(InputError, match="fps"):
        mv.summarise_offsets(per, 0)
    with pytest.raises(InputError, match="names"):
        mv.mtm_offsets([_bumps()], [0], topology=topo, names=["a", "b"])


def test_summarise_offsets_nan_when_nothing_matched():
    per = pd.DataFrame({"clip": ["a", "b", "a", "b"], "offset": [0, 0, 1, 1],
                        "mtm_frames": [0.0, 0.0, np.nan, np.nan], "n_matches": [3, 3, 0, 0]})
    cur = mv.summarise_offsets(per, 30)
    assert cur["n_clips"].tolist() == [2, 0] and np.isnan(cur["mtm_ms"].iloc[1])


# -- degradations ---------------------------------------------------------------------------------------------
def test_degradations_family():
    rng = np.random.default_rng(0)
    tpl = np.zeros((4, 3))
    tpl[3] = 1.0
    gt = _bumps(40)
    gt[:, 3] = 1.0  # vertex 3 never moves
    other = _bumps(30, 8) * 2.0
    out = dg.degradations(gt, tpl, rng, other_motion=other)
    assert list(out) == list(dg.DEGRADATIONS)
    assert all(s.shape == gt.shape for s in out.values())
    np.testing.assert_array_equal(out["gt"], gt)
    np.testing.assert_array_equal(out["shift_5"], mv.shift_sequence(gt, 5))
    np.testing.assert_allclose(out["amp_0.5"], 0.5 * (gt - tpl) + tpl)
    np.testing.assert_allclose(out["static_mean"], np.broadcast_to(gt.mean(0), gt.shape))
    np.testing.assert_array_equal(out["reversed"], gt[::-1])
    np.testing.assert_allclose(out["other_clip"][:30], tpl + other)
    np.testing.assert_allclose(out["other_clip"][30:], np.broadcast_to(tpl + other[-1], (10, 4, 3)))
    # jitter scales with each vertex's motion: still vertices stay still, moving ones get noise
    np.testing.assert_array_equal(out["jitter_1.0"][:, 3], gt[:, 3])
    off = dg.degradations(gt, np.zeros((4, 3)), np.random.default_rng(0), names=["jitter_1.0"])  # vertex 3 rests
    np.testing.assert_array_equal(off["jitter_1.0"][:, 3], gt[:, 3])  # off the template: still, so no noise
    assert np.abs(out["jitter_1.0"][:, 1] - gt[:, 1]).max() > 0
    noise = {k: np.std(out[k][:, 1, 1] - gt[:, 1, 1]) for k in ("jitter_0.5", "jitter_1.0")}
    assert noise["jitter_0.5"] < noise["jitter_1.0"]
    # smoothing lowers the lip-distance range
    assert np.ptp(out["smooth_3"][:, 1, 1]) < np.ptp(gt[:, 1, 1])
    again = dg.degradations(gt, tpl, np.random.default_rng(0), other_motion=other)
    np.testing.assert_array_equal(again["jitter_0.5"], out["jitter_0.5"])


def test_degradation_strengths_are_the_numbers_in_their_names():
    """The strength of each graded degradation, against the rules of :func:`dg.degradations`' docstring computed
    here: ``jitter_k`` adds noise of sd k x the vertex's RMS motion about its clip mean (over frames and axes),
    ``smooth_s`` is a Gaussian of sigma s frames (truncated at 4 sigma, as scipy's) and ``movavg_N`` a centred N-frame
    mean, both with the edge frames repeated, and a zero-strength jitter is the GT itself."""
    n, a, rest = 6000, 0.004, np.array([0.02, -0.01, 0.03])
    tpl = np.zeros((3, 3))
    gt = np.zeros((n, 3, 3))
    gt[:, 1] = rest  # vertex 1 rests off the template and moves +-a along y: RMS about its mean a / sqrt(3)
    gt[:, 1, 1] += a * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    gt[n // 2, 2, 2] = 1.0  # vertex 2: one impulse of motion, the smoothing's impulse response
    out = dg.degradations(gt, tpl, np.random.default_rng(0),
                          names=["jitter_0.5", "jitter_1.0", "jitter_0", "smooth_3", "movavg_5"])
    s_v = a / np.sqrt(3.0)
    for k in (0.5, 1.0):
        noise = out[f"jitter_{k}"][:, 1] - gt[:, 1]
        assert np.std(noise) == pytest.approx(k * s_v, rel=0.03)
    np.testing.assert_array_equal(out["jitter_0"], gt)
    j = np.arange(-12, 13)
    kernel = np.exp(-j ** 2 / (2 * 3.0 ** 2))
    np.testing.assert_allclose(out["smooth_3"][n // 2 - 12:n // 2 + 13, 2, 2], kernel / kernel.sum(), atol=1e-12)
    y = gt[:, 1, 1]  # at the first frame the Gaussian reads the first frame repeated before the clip
    edge = sum(w * y[max(int(k), 0)] for k, w in zip(j, kernel / kernel.sum()))
    np.testing.assert_allclose(out["smooth_3"][0, 1, 1], edge, rtol=1e-12)
    motion = gt[:, 1, 1]  # template 0: the motion is the position
    np.testing.assert_allclose(out["movavg_5"][0, 1, 1], (3 * motion[0] + motion[1] + motion[2]) / 5)
    np.testing.assert_allclose(out["movavg_5"][-1, 1, 1], (3 * motion[-1] + motion[-2] + motion[-3]) / 5)
    np.testing.assert_allclose(out["movavg_5"][100, 1, 1], motion[98:103].mean())


def test_the_graded_family_does_what_its_descriptions_say():
    """A graded degradation's strength is the number in its name; its description (the legend of notebook 08's
    figures) states the same number."""
    import re

    for name, text in dg.DEGRADATIONS.items():
        kind, _, arg = name.partition("_")
        if kind in dg.PARAMETRIC_KINDS:
            assert float(arg) in {float(x) for x in re.findall(r"\d+(?:\.\d+)?", text)}, (name, text)


def test_a_zero_sigma_smoothing_is_the_gt_not_a_crash():
    """``smooth_0`` passes the name check (a sigma >= 0, as ``jitter_0``), but scipy's Gaussian filter divides by
    sigma: it raised ZeroDivisionError. A smoothing of sigma 0 leaves the motion as it is (sigma 0.5 still
    smooths)."""
    gt, tpl = _bumps(20), np.zeros((4, 3))
    out = dg.degradations(gt, tpl, np.random.default_rng(0), names=["smooth_0", "smooth_0.0", "smooth_0.5"])
    np.testing.assert_array_equal(out["smooth_0"], gt)
    np.testing.assert_array_equal(out["smooth_0.0"], gt)
    assert np.ptp(out["smooth_0.5"][:, 1, 1]) < np.ptp(gt[:, 1, 1])


def test_degradations_subset_and_errors():
    gt, tpl = _bumps(20), np.zeros((4, 3))
    rng = np.random.default_rng(1)
    assert "other_clip" not in dg.degradations(gt, tpl, rng)
    assert list(dg.degradations(gt, tpl, rng, names=["amp_0.25", "gt"])) == ["amp_0.25", "gt"]
    with pytest.raises(InputError, match="unknown"):
        dg.degradations(gt, tpl, rng, names=["blur"])
    with pytest.raises(InputError, match="other_motion"):
        dg.degradations(gt, tpl, rng, names=["other_clip"])
    with pytest.raises(InputError, match="template"):
        dg.degradations(gt, np.zeros((5, 3)), rng)
    with pytest.raises(InputError, match="rng"):
        dg.degradations(gt, tpl, 0)
    bad = gt.copy()
    bad[3, 1, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        dg.degradations(bad, tpl, rng)


def test_degradations_takes_a_single_name_as_one_name():
    """``names="amp_0.5"`` was iterated character by character and refused as "unknown degradation 'a'"; a string
    is now one name, built exactly as in a list."""
    gt, tpl = _bumps(20), np.zeros((4, 3))
    one = dg.degradations(gt, tpl, np.random.default_rng(1), names="amp_0.5")
    assert list(one) == ["amp_0.5"]
    listed = dg.degradations(gt, tpl, np.random.default_rng(1), names=["amp_0.5"])
    assert np.array_equal(one["amp_0.5"], listed["amp_0.5"])
    with pytest.raises(InputError, match="unknown degradation 'blur'"):
        dg.degradations(gt, tpl, np.random.default_rng(1), names="blur")


# -- oracle -------------------------------------------------------------------------------------------------------
def test_sequence_groups_name_each_talker_arm():
    """The scatter's legend: each degradation its own group; a trained talker's runs grouped by arm, so CodeTalker
    with and without the perceptual loss, or trained on other data, are separate groups and its seeds are one."""
    seqs = ["gt", "shift_5", "codetalker_none_voca_seed0", "codetalker_none_voca_seed1",
            "codetalker_ours_voca_k1_seed0", "codetalker_ours_voca_k1_c1_seed1", "codetalker_none_voca+mead_seed0", "faceformer_none_voca_seed0"]
    assert [dg.sequence_group(s) for s in seqs] == [
        "gt", "shift_5", "talker: codetalker_none_voca", "talker: codetalker_none_voca",
        "talker: codetalker_ours_voca_k1", "talker: codetalker_ours_voca_k1", "talker: codetalker_none_voca+mead",
        "talker: faceformer_none_voca"]


def test_metric_scatter_legend_fits_and_tells_every_group_apart():
    """Notebook 08's scatter with every degradation and a dozen talker arms (25 groups): each group a distinct colour
    and marker, and the whole legend inside the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    groups = [*dg.DEGRADATIONS] + [f"talker: {m}_{c}_voca" for m in ("faceformer", "codetalker", "selftalk")
                                    for c in ("none", "ours_k1", "no2d_k1", "syncnet3d_k1")]
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"group": np.repeat(groups, 2), "oracle_accuracy": rng.random(2 * len(groups)),
                         "plrs": rng.random(2 * len(groups))})
    fig = mv.plot_metric_scatter(rows, hue="group")
    FigureCanvasAgg(fig).draw()
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == groups
    styles = {(tuple(np.round(c.get_facecolor()[0], 3)), c.get_paths()[0].vertices.shape)
              for c in fig.axes[0].collections}
    assert len(styles) == len(groups)
    box, page = legend.get_window_extent(), fig.bbox
    assert box.y0 >= page.y0 and box.y1 <= page.y1 and box.x1 <= page.x1


def test_lip_features_context_order():
    v = np.zeros((4, 3, 3))
    v[:, 0, 1] = np.arange(4) / 1000.0  # 1 mm per frame on vertex 0, y
    f = mv.lip_features(v, np.zeros((3, 3)), np.array([0]), context=1)
    assert f.shape == (4, 9) and f.dtype == np.float32
    np.testing.assert_allclose(f[:, 1::3], [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]], atol=1e-6)
    with pytest.raises(InputError, match="lips"):
        mv.lip_features(v, np.zeros((3, 3)), np.array([5]))
    with pytest.raises(InputError, match="context"):
        mv.lip_features(v, np.zeros((3, 3)), np.array([0]), context=-1)


def test_oracle_reads_gt_better_than_degraded(tiny, oracle):
    assert oracle.visemes == ("sil", "mid", "open") and oracle.n_train_frames > 0
    gt_acc, flat_acc = [], []
    for clip in tiny.select("test"):
        v, lab, tpl = tiny.vertices(clip), tiny.labels(clip), tiny.templates[clip.identity]
        gt_acc.append(mv.viseme_accuracy(oracle, v, lab, tpl))
        flat_acc.append(mv.viseme_accuracy(oracle, np.repeat(tpl[None], len(v), 0), lab["viseme"], tpl))
    assert np.mean(gt_acc) > 0.6
    assert np.mean(flat_acc) < np.mean(gt_acc) - 0.3
    chance = mv.majority_rate(oracle, [tiny.labels(c)["viseme"] for c in tiny.select("test")])
    assert 0.5 <= chance <= 1.0


def test_viseme_accuracy_checks(tiny, oracle):
    clip = tiny.select("test")[0]
    v, lab, tpl = tiny.vertices(clip), tiny.labels(clip)["viseme"], tiny.templates[clip.identity]
    with pytest.raises(InputError, match="frame labels"):
        mv.viseme_accuracy(oracle, v[:-1], lab, tpl)
    with pytest.raises(InputError, match="not visemes"):
        mv.viseme_accuracy(oracle, v, lab, tpl, exclude=("xx",))
    with pytest.raises(InputError, match="vertices"):
        oracle.predict(v[:, :5], tpl[:5])
    assert np.isnan(mv.viseme_accuracy(oracle, v, np.zeros(len(v), np.int16), tpl))  # only silence
    every = mv.viseme_accuracy(oracle, v, lab, tpl, exclude=())
    assert 0.0 <= every <= 1.0


def test_oracle_needs_labels(tmp_path):
    from p3d.corpus import Corpus

    root = write_tiny_corpus(tmp_path / "nolab", identities={"train": 1, "test": 1}, clips_per_identity=1,
                             labels=False, lip_video=False)
    with pytest.raises(InputError, match="labels"):
        mv.train_viseme_oracle(Corpus.open(root))


# -- rank agreement --------------------------------------------------------------------------------------------------
def _rows(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(8):
        base = rng.uniform(0, 0.3)
        for k, q in enumerate(np.linspace(0.1, 0.9, 5)):
            rows.append({"clip": f"c{c}", "sequence": f"s{k}", "oracle_accuracy": q + base,
                         "plrs": q + base + 0.01 * rng.standard_normal(),  # agrees
                         "lve": 1.0 - q,  # agrees once flipped
                         "mtm": rng.uniform()})  # unrelated
    return pd.DataFrame(rows)


def test_validate_plrs_signs_scopes_and_cis():
    stats = mv.validate_plrs(_rows(), n_resamples=300)
    assert list(stats.columns) == ["metric", "scope", "rho", "ci_low", "ci_high", "n_sequences", "n_clips"]
    s = stats.set_index(["metric", "scope"])
    assert s.loc[("plrs", "within clip"), "rho"] == pytest.approx(1.0)
    assert s.loc[("lve", "within clip"), "rho"] == pytest.approx(1.0)  # sign flipped: lower LVE is better
    assert s.loc[("plrs", "pooled"), "rho"] > 0.9 and s.loc[("lve", "pooled"), "rho"] > 0.5
    assert abs(s.loc[("mtm", "within clip"), "rho"]) < 0.5
    assert (stats["ci_low"] <= stats["rho"] + 1e-12).all() and (stats["rho"] <= stats["ci_high"] + 1e-12).all()
    assert (stats["n_sequences"] == 40).all() and (stats["n_clips"] == 8).all()
    again = mv.validate_plrs(_rows(), n_resamples=300)
    pd.testing.assert_frame_equal(stats, again)


def test_validate_plrs_drops_nan_and_checks_columns():
    rows = _rows()
    rows.loc[rows["sequence"] == "s0", "mtm"] = np.nan  # e.g. a motionless mouth: MTM undefined
    stats = mv.validate_plrs(rows, metrics={"mtm": -1, "plrs": 1}, n_resamples=50)
    assert stats.set_index(["metric", "scope"]).loc[("mtm", "pooled"), "n_sequences"] == 32
    with pytest.raises(InputError, match="oracle_accuracy"):
        mv.validate_plrs(rows.drop(columns="oracle_accuracy"))
    with pytest.raises(InputError, match="sign"):
        mv.validate_plrs(rows, metrics={"plrs": 2})
    with pytest.raises(InputError, match="metric"):
        mv.validate_plrs(rows[["clip", "oracle_accuracy"]])


# -- scoring and figures ---------------------------------------------------------------------------------------------
class _Critic:
    """A stand-in speech-mesh model (torch module) for PLRS: speech -> mean fbank, mesh -> mean lip height."""

    def __new__(cls):
        import torch

        class Critic(torch.nn.Module):
            n_vertices = 30

            def __init__(self):
                super().__init__()
                self.w = torch.nn.Parameter(torch.ones(2))

            def encode_speech(self, x):
                m = x.mean(dim=(1, 2))
                return torch.stack([m, torch.ones_like(m)], -1) * self.w

            def encode_mesh(self, x):
                m = x.reshape(x.shape[0], x.shape[1], -1).mean(dim=(1, 2))
                return torch.stack([m, torch.ones_like(m)], -1) * self.w

        return Critic()


def test_metric_rows_and_figures(tiny, oracle):
    clips = tiny.select("test")[:2]
    rng = np.random.default_rng(0)

    def seqs(clip):
        return dg.degradations(tiny.vertices(clip), tiny.templates[clip.identity], rng,
                               names=["gt", "shift_5", "amp_0.25", "static_mean"])

    rows = mv.metric_rows(clips, seqs, corpus=tiny, oracle=oracle, plrs_model=_Critic())
    assert len(rows) == 8 and set(rows["sequence"]) == {"gt", "shift_5", "amp_0.25", "static_mean"}
    gt = rows[rows["sequence"] == "gt"]
    assert (gt["lve"] == 0).all() and (gt["mtm"] == 0).all()
    assert rows["plrs"].between(-1, 1).all()
    assert np.isnan(rows.loc[rows["sequence"] == "static_mean", "mtm"]).all()
    by = rows.groupby("sequence")["oracle_accuracy"].mean()
    assert by["gt"] > by["static_mean"]
    no_plrs = mv.metric_rows(clips[:1], lambda c: {"gt": tiny.vertices(c)}, corpus=tiny, oracle=oracle)
    assert "plrs" not in no_plrs
    no_oracle = mv.metric_rows(clips[:1], lambda c: {"gt": tiny.vertices(c)}, corpus=tiny, oracle=None)
    assert "oracle_accuracy" not in no_oracle and no_oracle["lve"].iloc[0] == pytest.approx(no_plrs["lve"].iloc[0])
    with pytest.raises(InputError, match="frames"):
        mv.metric_rows(clips[:1], lambda c: {"short": tiny.vertices(c)[:-3]}, corpus=tiny, oracle=oracle)

    stats = mv.validate_plrs(rows, n_resamples=50)
    fig = mv.plot_metric_scatter(rows, stats=stats)
    assert len(fig.axes) == 3 and "Spearman" in fig.axes[0].get_title()
    per = mv.mtm_offsets([_bumps()], range(3), topology=(0, 1))
    curve = mv.summarise_offsets(per, 30, n_resamples=50)
    fig = mv.plot_offset_curve(curve, slope=mv.offset_slope(per, 30, n_resamples=20))
    assert "slope" in fig.axes[0].get_title()
    assert len(fig.axes[0].lines) == 2  # the curve and the identity line


def test_find_talker_predictions(tmp_path):
    clips = ["A_sentence01", "A_sentence02"]
    for run, conds, stems in (("ff_none", ["X", "W"], clips), ("partial", ["X"], clips[:1]), ("_data", ["X"], clips)):
        pred = tmp_path / run / "pred_synth-voca_test"
        pred.mkdir(parents=True)
        for c in stems:
            for k in conds:
                np.save(pred / f"{c}_condition_{k}.npy", np.zeros((3, 2, 3), np.float32))
    (tmp_path / "no_pred").mkdir()
    found = mv.find_talker_predictions(tmp_path, clips)
    assert list(found) == ["ff_none"]  # partial runs and the _data folder are skipped
    assert found["ff_none"]["A_sentence02"].name == "A_sentence02_condition_W.npy"  # first sorted condition
    assert mv.find_talker_predictions(tmp_path, clips, condition="X")["ff_none"]["A_sentence01"].name \
        == "A_sentence01_condition_X.npy"
    assert mv.find_talker_predictions(tmp_path / "missing", clips) == {}
    # one rotating condition per clip (the full grid's ``_c1`` folders): each clip's own condition
    rot = tmp_path / "rot"
    (rot / "ff_c1" / "pred_synth-voca_test_c1").mkdir(parents=True)
    for c, k in zip(clips, ["X", "W"]):
        np.save(rot / "ff_c1" / "pred_synth-voca_test_c1" / f"{c}_condition_{k}.npy", np.zeros((3, 2, 3), np.float32))
    found = mv.find_talker_predictions(rot, clips)
    assert [p.name for p in found["ff_c1"].values()] == ["A_sentence01_condition_X.npy", "A_sentence02_condition_W.npy"]
    with pytest.raises(InputError, match="clips"):
        mv.find_talker_predictions(tmp_path, [])
    # only the runs named
    assert list(mv.find_talker_predictions(tmp_path, clips, runs=["partial", "no_pred", "other"])) == []
    assert list(mv.find_talker_predictions(tmp_path, clips, runs=["ff_none"])) == ["ff_none"]


def test_talker_predictions_read_each_run_from_its_own_folder(tmp_path):
    """The planned runs' predictions (p3d.experiments.metric_validation_talkers): complete folders only, name order."""
    clips = ["A_sentence01", "A_sentence02"]
    for folder, stems in (("z/pred_c1", clips), ("a/pred", clips), ("p/pred", clips[:1])):
        (tmp_path / folder).mkdir(parents=True)
        for c in stems:
            np.save(tmp_path / folder / f"{c}_condition_X.npy", np.zeros((3, 2, 3), np.float32))
    found = mv.talker_predictions({"z": tmp_path / "z/pred_c1", "a": tmp_path / "a/pred", "p": tmp_path / "p/pred",
                                   "m": tmp_path / "missing"}, clips)
    assert list(found) == ["a", "z"]
    assert found["z"]["A_sentence02"] == tmp_path / "z/pred_c1" / "A_sentence02_condition_X.npy"
    with pytest.raises(InputError, match="clips"):
        mv.talker_predictions({"a": tmp_path / "a/pred"}, [])


def test_figure_talkers_draw_one_run_per_arm_baselines_first():
    """Figs. S4 and S8 of notebook 08 draw FaceFormer's baseline first, then CodeTalker's, then the other arms in
    name order, one run per arm: its lowest seed (by number, not name: seed2 before seed10); a name that only
    begins like an arm (``faceformer_nonesuch``) is not of it."""
    names = ["selftalk_none_voca_seed0", "codetalker_ours_voca_k1_seed0", "codetalker_none_voca_seed1",
             "faceformer_ours_voca_k1_c1_seed1", "faceformer_ours_voca_k1_seed0", "codetalker_no2d_voca_k1_seed0",
             "codetalker_none_voca_seed0", "faceformer_none_voca_seed10", "faceformer_none_voca_seed2",
             "faceformer_nonesuch"]
    assert mv.figure_talkers(names) == [
        "faceformer_none_voca_seed2", "codetalker_none_voca_seed0", "codetalker_no2d_voca_k1_seed0",
        "codetalker_ours_voca_k1_seed0", "faceformer_nonesuch", "faceformer_ours_voca_k1_seed0",
        "selftalk_none_voca_seed0"]
    assert mv.figure_talkers(names, [("codetalker", "none")])[:2] == [
        "codetalker_none_voca_seed0", "codetalker_no2d_voca_k1_seed0"]
    assert mv.figure_talkers({}) == []


def test_figs_s4_and_s8_draw_the_same_talker_and_one_seed_per_arm(tmp_path):
    """At a preset with several seeds per arm Fig. S8 shows FaceFormer's and CodeTalker's baselines (not two
    FaceFormer seeds), and without FaceFormer's baseline Figs. S4 and S8 both draw CodeTalker's (not
    ``codetalker_no2d``, first in name order)."""
    gt = _bumps(40)
    template = np.zeros_like(gt[0])
    runs = ["faceformer_none_voca_steps3000_b16_plateau_seed1", "faceformer_none_voca_steps3000_b16_plateau_seed0",
            "codetalker_none_voca_steps3000_b16_plateau_seed0", "codetalker_no2d_voca_k1_steps3000_b16_plateau_seed0"]
    talkers = {}
    for k, run in enumerate(runs):
        np.save(tmp_path / f"{run}.npy", gt + k)
        talkers[run] = {"clip": tmp_path / f"{run}.npy"}
    pair, _ = dg.figure_pair(talkers, "clip", gt, template)
    assert list(pair) == [runs[1], runs[2]]
    assert dg.figure_prediction(talkers, "clip", gt, template)[1].endswith(runs[1])
    no_ff = {r: talkers[r] for r in runs[2:]}
    pair, _ = dg.figure_pair(no_ff, "clip", gt, template)
    pred, what = dg.figure_prediction(no_ff, "clip", gt, template)
    assert list(pair)[0] == runs[2] and what.endswith(runs[2])
    np.testing.assert_array_equal(pred, pair[runs[2]])


def test_figure_sequences_load_the_figure_talkers_or_make_stand_ins(tmp_path):
    """Fig. S4's prediction and Fig. S8's pair: the preferred trained talkers' files, or, without (enough of) them,
    the stand-ins made from the GT that notebook 08 describes."""
    gt = _bumps(40)
    template = np.zeros_like(gt[0])
    talkers = {}
    for k, run in enumerate(["selftalk_none_voca_seed0", "faceformer_ours_voca_k1_seed0", "faceformer_none_voca_seed0"]):
        np.save(tmp_path / f"{run}.npy", gt + k)
        talkers[run] = {"clip": tmp_path / f"{run}.npy"}
    pred, what = dg.figure_prediction(talkers, "clip", gt, template)
    np.testing.assert_array_equal(pred, gt + 2)
    assert what == "prediction of the trained talker faceformer_none_voca_seed0"
    pair, what = dg.figure_pair(talkers, "clip", gt, template)
    assert list(pair) == ["faceformer_none_voca_seed0", "faceformer_ours_voca_k1_seed0"] and what == "two trained talkers"
    np.testing.assert_array_equal(pair["faceformer_ours_voca_k1_seed0"], gt + 1)
    pred, what = dg.figure_prediction({}, "clip", gt, template, seed=3)
    smooth = dg.degradations(gt, template, np.random.default_rng(3), names=["smooth_3"])["smooth_3"]
    np.testing.assert_allclose(pred, mv.shift_sequence(smooth, 3))
    assert what.startswith("a stand-in prediction")
    one = {"selftalk_none_voca_seed0": talkers["selftalk_none_voca_seed0"]}
    assert dg.figure_prediction(one, "clip", gt, template)[1].endswith("selftalk_none_voca_seed0")
    pair, what = dg.figure_pair(one, "clip", gt, template)
    assert list(pair) == ["lips lag 5 frames (shift_5)", "motion x0.5 (amp_0.5)"] and what.startswith("two degradations")
    np.testing.assert_allclose(pair["lips lag 5 frames (shift_5)"], mv.shift_sequence(gt, 5))
    np.testing.assert_allclose(pair["motion x0.5 (amp_0.5)"], 0.5 * gt)


def test_clip_sequences_are_the_degradations_then_the_talkers(tiny, tmp_path):
    """Notebook 08's sequences of a test clip: every degradation of its GT (clip k's draws from [seed, k], the next
    clip's motion as other_clip, the last clip the first's), then each talker's prediction under its run name."""
    clips = tiny.select("test")
    last = clips[-1]
    np.save(tmp_path / "p.npy", np.ones((4, 2, 3)))
    talkers = {"faceformer_none_voca_seed0": {c.stem: tmp_path / "p.npy" for c in clips}}
    out = dg.clip_sequences(tiny, clips, talkers, seed=7)(last)
    want = dg.degradations(tiny.vertices(last), tiny.templates[last.identity],
                           np.random.default_rng([7, len(clips) - 1]),
                           other_motion=tiny.vertices(clips[0]) - tiny.templates[clips[0].identity])
    assert list(out) == [*want, "faceformer_none_voca_seed0"] and "other_clip" in want and "jitter_0.5" in want
    for name, seq in want.items():
        np.testing.assert_array_equal(out[name], seq)
    np.testing.assert_array_equal(out["faceformer_none_voca_seed0"], np.ones((4, 2, 3)))
    assert list(dg.clip_sequences(tiny, clips)(clips[0])) == list(want)


def test_compare_metrics_paired_difference():
    rows = _rows()
    d = mv.compare_metrics(rows, "plrs", "mtm", n_resamples=300)
    assert d["rho_a"] == pytest.approx(1.0) and d["difference"] > 0.5
    assert d["ci_low"] > 0 and d["ci_low"] <= d["difference"] <= d["ci_high"]
    same = mv.compare_metrics(rows, "plrs", "lve", n_resamples=100)  # both rank every clip perfectly
    assert same["difference"] == pytest.approx(0.0) and same["ci_low"] == pytest.approx(0.0)
    pooled = mv.compare_metrics(rows, "plrs", "lve", scope="pooled", n_resamples=100)
    assert pooled["rho_a"] == pytest.approx(mv.validate_plrs(rows, n_resamples=10).set_index(["metric", "scope"])
                                            .loc[("plrs", "pooled"), "rho"])
    with pytest.raises(InputError, match="scope"):
        mv.compare_metrics(rows, scope="both")
    with pytest.raises(InputError, match="clip"):
        mv.compare_metrics(rows[rows["clip"] == "c0"])


def test_validation_findings_words_and_csv_round_trip(tmp_path):
    rows = _rows()
    stats = mv.validate_plrs(rows, n_resamples=100)
    curve = pd.DataFrame({"offset": [0, 10], "offset_ms": [0.0, 400.0], "mtm_ms": [0.0, 390.4]})
    slope = {"slope": 0.975, "ci_low": 0.95, "ci_high": 0.99}
    oracle = pd.DataFrame([{"test GT accuracy (mean over clips)": 0.6, "CI low": 0.55, "CI high": 0.65,
                            "chance (majority viseme)": 0.14}])
    validity = pd.DataFrame({"variant": ["official", "official", "enrolled"], "degradation": ["amp_0.5", "amp_1.5", "amp_0.5"],
                             "mean_minus_gt": [-0.02, 0.01, -0.1], "ci_low": [-0.03, 0.0, -0.12],
                             "ci_high": [-0.01, 0.02, -0.08], "n_clips": [8, 8, 8]})
    verdicts = pd.DataFrame({"variant": ["official", "enrolled", "calibrated"], "valid": [False, True, True],
                             "failing": [["amp_1.5", "jitter_0.25"], [], []], "n_degradations": [2, 1, 0]})
    lines = mv.validation_findings(curve=curve, slope=slope, oracle=oracle, stats=stats, rows=rows, validity=validity,
                                   verdicts=verdicts, n_resamples=100)["finding"].tolist()
    assert lines[0].startswith("MTM vs injected offset: slope 0.97 [0.95, 0.99] ms per ms over 0-10 frames; MTM at 10 "
                               "frames 390 ms (offset 400 ms)")
    assert lines[1] == "Oracle on held-out GT: 0.60 [0.55, 0.65] vs chance 0.14."
    assert lines[2].startswith("PLRS vs oracle: pooled rho") and lines[2].endswith("within clip 1.00 [1.00, 1.00] (agrees).")
    mtm_pooled = stats.set_index(["metric", "scope"]).loc[("mtm", "pooled")]
    word = "agrees" if mtm_pooled["ci_low"] > 0 else "disagrees" if mtm_pooled["ci_high"] < 0 else "inconclusive"
    assert f"({word}), within clip" in lines[4]
    assert "PLRS minus LVE" in lines[5] and "within clip" in lines[5] and "pooled" in lines[6]
    assert "0.437 for PLRS vs 0.166 for LVE" in lines[7]
    assert lines[8:] == ["Battery, official: damped to 50 % minus GT -0.020 [-0.030, -0.010] (< 0: GT better); "
                         "not valid, fails amp_1.5, jitter_0.25.",
                         "Battery, enrolled: damped to 50 % minus GT -0.100 [-0.120, -0.080] (< 0: GT better); "
                         "valid (GT above every degradation)."]  # variants absent from the battery are left out
    # read back from the CSVs the analysis writes (failing joined into one string): the same lines
    tables = {"curve": curve, "oracle": oracle, "stats": stats, "rows": rows, "validity": validity,
              "verdicts": verdicts.assign(failing=[", ".join(f) or "-" for f in verdicts["failing"]])}
    for name, df in tables.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    back = {name: pd.read_csv(tmp_path / f"{name}.csv") for name in tables}
    again = mv.validation_findings(slope=slope, n_resamples=100, **back)["finding"].tolist()
    assert again == lines
    # the MTM line names the largest offset the curve has (it said "at 10 frames" whatever the offsets were)
    short = pd.DataFrame({"offset": [0, 3, 5], "offset_ms": [0.0, 120.0, 200.0], "mtm_ms": [0.0, 110.0, 190.0]})
    first = mv.validation_findings(curve=short, slope=slope, oracle=oracle, stats=stats, rows=rows, validity=validity,
                                   verdicts=verdicts, n_resamples=100)["finding"].iloc[0]
    assert "over 0-5 frames; MTM at 5 frames 190 ms (offset 200 ms)." in first


def test_metric_rows_plrs_takes_the_official_speech_front_end(tiny, tmp_path):
    """PLRS' speech windows from channel 0 resampled once (Corpus.speech_audio, as p3d eval and the official
    front-end), not from the talkers' input (the channel mean at 16 kHz, resampled a second time): a 44.1 kHz
    stereo wav scored differently here than in p3d eval."""
    import shutil

    import soundfile as sf

    from p3d.audio import speech_windows
    from p3d.corpus import Corpus
    from p3d.metrics import plrs_from_features

    root = tmp_path / "c"
    shutil.copytree(tiny.root, root)
    corpus = Corpus.open(root)
    clip = corpus.select("test")[0]
    x, sr = sf.read(corpus.wav_path(clip), dtype="float32")
    t = np.arange(int(len(x) * 44100 / sr)) / 44100
    left = np.interp(t, np.arange(len(x)) / sr, x)
    right = 0.3 * left + 0.05 * np.sin(2 * np.pi * 6000 * t)
    sf.write(corpus.wav_path(clip), np.stack([left, right], 1), 44100, subtype="PCM_16")
    critic = _Critic()
    rows = mv.metric_rows([clip], lambda c: {"gt": corpus.vertices(c)}, corpus=corpus, oracle=None,
                          plrs_model=critic)
    gt = corpus.vertices(clip).astype(np.float64)
    official = plrs_from_features(speech_windows(*corpus.speech_audio(clip), corpus.model_fps), gt, critic)
    talker_input = plrs_from_features(speech_windows(*corpus.audio(clip), corpus.model_fps), gt, critic)
    assert abs(official - talker_input) > 1e-3  # the two front-ends differ on this file
    assert rows["plrs"].iloc[0] == pytest.approx(official, abs=1e-6)


# -- the referee validity battery on a corpus ---------------------------------------------------------------------
def test_metric_rows_calibrated_and_battery(tiny, oracle):
    from p3d.audio import speech_windows
    from p3d.metrics import plrs_from_features

    clips = tiny.select("test")[:3]
    critic = _Critic()

    def seqs(clip):
        return dg.degradations(tiny.vertices(clip), tiny.templates[clip.identity], np.random.default_rng(0),
                               names=["gt", "amp_0.5", "amp_1.5", "static_template"])

    rows = mv.metric_rows(clips, seqs, corpus=tiny, oracle=oracle, plrs_model=critic, calibrated=True)
    assert {"plrs_calibrated", "plrs_mrr", "plrs_r1", "plrs_mrr_chance"} <= set(rows.columns)
    assert rows["plrs_mrr"].between(0, 1).all() and rows["plrs_calibrated"].between(-2, 2).all()
    # the official column is the official PLRS, unchanged by the calibration
    clip = clips[0]
    audio, sr = tiny.audio(clip)
    official = plrs_from_features(speech_windows(audio, sr, tiny.model_fps), tiny.vertices(clip), critic)
    assert rows.loc[(rows["clip"] == clip.stem) & (rows["sequence"] == "gt"), "plrs"].item() == pytest.approx(official)
    plain = mv.metric_rows(clips[:1], seqs, corpus=tiny, oracle=oracle, plrs_model=critic)
    assert "plrs_calibrated" not in plain
    # each clip's speech is encoded once for all its sequences, with the same official PLRS as encoding it per sequence
    for r in plain.itertuples():
        alone = plrs_from_features(speech_windows(audio, sr, tiny.model_fps), seqs(clip)[r.sequence], critic)
        assert r.plrs == pytest.approx(alone, abs=1e-6)
    calls = []
    encode = critic.encode_speech
    critic.encode_speech = lambda x: calls.append(len(x)) or encode(x)
    mv.metric_rows(clips[:1], seqs, corpus=tiny, oracle=None, plrs_model=critic)
    assert len(calls) == 1                                   # one clip, four sequences: one speech pass
    with pytest.raises(InputError, match="two clips"):
        mv.metric_rows(clips[:1], seqs, corpus=tiny, oracle=oracle, plrs_model=critic, calibrated=True)
    tab = rv.referee_differences(rows, n_resamples=50)
    assert set(tab["variant"]) == {"official", "calibrated", "retrieval_mrr", "retrieval_r1", "oracle", "lve", "mtm"}
    assert set(tab["degradation"]) == {"amp_0.5", "amp_1.5", "static_template"} and (tab["n_clips"] <= 3).all()
    assert len(rv.referee_validity(tab)) == 7


def test_oracle_summary_is_the_test_row_of_the_split_table(tiny, oracle):
    """Notebook 08's oracle table (read by validation_findings): the held-out split's row of
    oracle_accuracy_by_split beside the oracle's fit."""
    table = mv.oracle_summary(oracle, tiny, "test", n_resamples=50, seed=3)
    row = mv.oracle_accuracy_by_split(oracle, tiny, ("test",), n_resamples=50, seed=3).iloc[0]
    assert len(table) == 1
    o = table.iloc[0]
    assert o["train frames"] == oracle.n_train_frames and o["train accuracy (all frames)"] == oracle.train_accuracy
    assert (o["test GT accuracy (mean over clips)"], o["CI low"], o["CI high"], o["chance (majority viseme)"],
            o["test clips"]) == (row["accuracy"], row["ci_low"], row["ci_high"], row["chance"], row["n_clips"])
    clips = tiny.select("test")
    acc = [mv.viseme_accuracy(oracle, tiny.vertices(c), tiny.labels(c), tiny.templates[c.identity]) for c in clips]
    assert o["test GT accuracy (mean over clips)"] == pytest.approx(np.mean(acc))


def test_oracle_accuracy_by_split(tiny, oracle):
    acc = mv.oracle_accuracy_by_split(oracle, tiny, ("train", "test"), n_resamples=50)
    assert list(acc["split"]) == ["train", "test"]
    assert (acc["n_clips"] > 0).all() and acc["accuracy"].between(0, 1).all()
    assert (acc["ci_low"] <= acc["accuracy"]).all() and (acc["accuracy"] <= acc["ci_high"]).all()
    assert acc["chance"].between(0, 1).all()
    with pytest.raises(InputError, match="no clips"):
        mv.oracle_accuracy_by_split(oracle, tiny, ("nope",))


def test_metric_means_keeps_the_rows_order_on_tied_oracle_accuracy():
    """metric_means promised ties in the rows' order, but pandas' default sort (quicksort) is not stable: with 20
    sequences in 4 tied accuracy levels the tied sequences came back shuffled."""
    rng = np.random.default_rng(1)
    names = [f"s{i:02d}" for i in range(20)]
    acc = rng.integers(0, 4, len(names)) / 4
    rows = pd.DataFrame({"clip": "c", "sequence": names, "oracle_accuracy": acc, "plrs": 0.0, "lve": 0.0, "mtm": 0.0})
    want = [names[i] for i in np.argsort(-acc, kind="stable")]
    assert list(mv.metric_means(rows)["sequence"]) == want


def test_mtm_offset_tables_refuse_repeated_clips_and_missing_columns():
    """Two GT clips under one name were accepted by mtm_offsets and then crashed offset_slope's pivot (a pandas
    ValueError traceback, 'Index contains duplicate entries'); rows without the offset column were a KeyError.
    Both are one-line InputErrors now, as is an offset given twice."""
    gts = [_bumps(), _bumps()]
    with pytest.raises(InputError, match="names"):
        mv.mtm_offsets(gts, [0, 1], topology=(0, 1), names=["a", "a"])
    with pytest.raises(InputError, match="offsets"):
        mv.mtm_offsets(gts, [0, 1, 1], topology=(0, 1))
    per = mv.mtm_offsets(gts, [0, 1], topology=(0, 1), names=["a", "b"])
    twice = per.assign(clip="a")
    for f in (mv.offset_slope, mv.summarise_offsets):
        with pytest.raises(InputError, match="per_clip"):
            f(twice, 25)
        with pytest.raises(InputError, match="per_clip"):
            f(per.drop(columns="offset"), 25)


def test_validate_plrs_counts_a_lower_mtm_as_better():
    """MTM is a lag in ms, lower is better (METRIC_SIGNS -1, as LVE): sequences whose MTM rises as the oracle's
    accuracy falls agree with the oracle (rho +1 within each clip)."""
    oracle = np.tile([0.9, 0.7, 0.5, 0.3], 3)
    rows = pd.DataFrame({"clip": np.repeat(["a", "b", "c"], 4), "oracle_accuracy": oracle,
                         "mtm": 100.0 * (1 - oracle) + np.repeat([0.0, 5.0, 10.0], 4)})
    s = mv.validate_plrs(rows, n_resamples=50).set_index(["metric", "scope"])
    assert s.loc[("mtm", "within clip"), "rho"] == pytest.approx(1.0)
    assert s.loc[("mtm", "pooled"), "rho"] > 0.9


def test_majority_rate_is_the_chance_of_the_scored_frames():
    """The chance level of viseme_accuracy: the most frequent viseme among the *scored* frames (silence left out by
    default, as viseme_accuracy leaves it out)."""
    oracle = mv.VisemeOracle(model=None, lips=np.arange(2), context=0, visemes=("sil", "aa", "mm"), n_vertices=2,
                             train_accuracy=1.0, n_train_frames=0)
    labels = [np.array([0, 0, 0, 0, 1, 2]), np.array([0, 0, 2, 2])]  # 6 silent frames; aa 1, mm 3
    assert mv.majority_rate(oracle, labels) == pytest.approx(3 / 4)
    assert mv.majority_rate(oracle, labels, exclude=()) == pytest.approx(6 / 10)


def test_compare_metrics_flips_either_metric_and_pairs_clips_with_both_rhos():
    """compare_metrics(a, b) flips *each* metric by its sign (LVE as ``a`` agrees with the oracle once flipped), and
    within clip it averages the clips where both rhos are defined (a clip where LVE is constant has no rho for it and
    drops out of both means, so the two stay paired)."""
    from scipy.stats import spearmanr

    rows = _rows()
    d = mv.compare_metrics(rows, "lve", "mtm", n_resamples=50)
    assert d["rho_a"] == pytest.approx(1.0) and d["difference"] > 0.5
    rows.loc[rows["clip"] == "c0", "lve"] = 0.5  # no rank order within c0
    d = mv.compare_metrics(rows, "plrs", "lve", n_resamples=50)
    expected = np.mean([spearmanr(g["plrs"], g["oracle_accuracy"]).statistic
                        for c, g in rows.groupby("clip") if c != "c0"])
    assert d["rho_b"] == pytest.approx(1.0) and d["rho_a"] == pytest.approx(expected)


def test_a_verdict_word_is_the_interval_not_the_point():
    """A rho above 0 whose CI reaches below 0 is inconclusive, not "agrees"."""
    assert mv._verdict_word({"rho": 0.3, "ci_low": -0.1, "ci_high": 0.6}) == "inconclusive"
    assert mv._verdict_word({"rho": 0.3, "ci_low": 0.05, "ci_high": 0.6}) == "agrees"
    assert mv._verdict_word({"rho": -0.3, "ci_low": -0.6, "ci_high": -0.05}) == "disagrees"


def test_oracle_accuracy_by_split_counts_speakers_not_clips(tiny, oracle):
    """``speakers``: the split's identities (the fixture writes 3 train and 2 test identities of 3 clips each)."""
    acc = mv.oracle_accuracy_by_split(oracle, tiny, ("train", "test"), n_resamples=20)
    assert acc["speakers"].tolist() == [3, 2] and acc["n_clips"].tolist() == [9, 6]


def test_metric_rows_units_are_mm2_and_ms(tiny):
    """metric_rows' LVE is in mm^2 (vertices in metres) and its MTM in ms: lips moved 1 mm along x in every frame give
    LVE 1 mm^2; the GT delayed by 2 frames gives an MTM near 2 frame durations (1000 / fps ms each)."""
    clip = tiny.select("test")[0]
    gt = tiny.vertices(clip).astype(np.float64)
    lips = tiny.topology.regions["lips"]
    moved = gt.copy()
    moved[:, lips, 0] += 0.001
    rows = mv.metric_rows([clip], lambda c: {"moved": moved, "late": mv.shift_sequence(gt, 2)}, corpus=tiny,
                          oracle=None).set_index("sequence")
    assert rows.loc["moved", "lve"] == pytest.approx(1.0)
    frame_ms = 1000.0 / tiny.model_fps
    assert abs(rows.loc["late", "mtm"] - 2 * frame_ms) < 0.5 * frame_ms


def test_spearman_needs_three_pairs():
    """_spearman: NaN for fewer than 3 pairs (two points are always perfectly ranked, +-1)."""
    assert np.isnan(mv._spearman(np.array([1.0, 2.0]), np.array([3.0, 5.0])))
    assert mv._spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 5.0, 4.0])) == pytest.approx(0.5)


# -- properties stated in the docstrings (mutation testing) -------------------------------------------------------
def test_frame_counts_refuse_booleans():
    """An offset or a context is an integer number of frames: True is not 1 frame (shift_sequence, lip_features)."""
    v = np.zeros((4, 3, 3))
    with pytest.raises(InputError, match="offset"):
        mv.shift_sequence(v, True)
    with pytest.raises(InputError, match="context"):
        mv.lip_features(v, np.zeros((3, 3)), np.array([0]), context=True)


def test_mtm_offsets_nan_when_no_extremum_matched():
    """mtm_offsets: ``mtm_frames`` is NaN (not 0, a perfect score) when no extremum matched, as on a motionless GT."""
    still = np.zeros((60, 2, 3))
    still[:, 1, 1] = -0.01
    per = mv.mtm_offsets([still], [0, 2], topology=(0, 1))
    assert per["mtm_frames"].isna().all() and per["n_matches"].tolist() == [0, 0]


def test_offset_slope_needs_two_offsets_with_a_match_and_reports_r_and_clips():
    """offset_slope: one offset is an InputError; an offset where no clip matched is left out, so a single defined
    offset gives a NaN slope, not a line through one point; ``r`` is the mean curve's Pearson r and ``n_clips`` counts
    clips (not offsets)."""
    import warnings

    per = mv.mtm_offsets([_bumps(), _bumps(100, 24)], range(4), topology=(0, 1), names=["a", "b"])
    s = mv.offset_slope(per, 25, n_resamples=20)
    assert s["r"] == pytest.approx(1.0) and s["n_clips"] == 2
    with pytest.raises(InputError, match="two offsets"):
        mv.offset_slope(per[per["offset"] == 1], 25)
    one = per[per["offset"] <= 1].assign(mtm_frames=lambda d: np.where(d["offset"] == 1, np.nan, d["mtm_frames"]))
    s = mv.offset_slope(one, 25, n_resamples=20)
    assert np.isnan(s["slope"]) and np.isnan(s["ci_low"]) and np.isnan(s["ci_high"])
    flat = per.assign(mtm_frames=1.0)  # MTM blind to the lag: slope 0, and r undefined (NaN) without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = mv.offset_slope(flat, 25, n_resamples=20)
    assert s["slope"] == pytest.approx(0.0, abs=1e-9) and np.isnan(s["r"])


def test_lip_features_and_labels_refuse_out_of_range_ids():
    """lip_features: a lip index equal to the vertex count is refused (one line, not an IndexError); viseme labels
    must be integer ids in [0, n_visemes)."""
    v = np.zeros((4, 3, 3))
    with pytest.raises(InputError, match="lips"):
        mv.lip_features(v, np.zeros((3, 3)), np.array([3]))
    oracle = mv.VisemeOracle(model=None, lips=np.arange(2), context=0, visemes=("sil", "aa", "mm"), n_vertices=3,
                             train_accuracy=1.0, n_train_frames=0)
    with pytest.raises(InputError, match=r"\[0, 3\)"):
        mv.viseme_accuracy(oracle, v, np.array([0, 1, 2, 3]), np.zeros((3, 3)))
    with pytest.raises(InputError, match="integer"):
        mv.viseme_accuracy(oracle, v, np.array([0.0, 1.0, 2.0, 1.0]), np.zeros((3, 3)))


def test_viseme_accuracy_refuses_labels_shorter_than_the_sequence():
    """viseme_accuracy: labels and vertices must be aligned either way round (labels one frame short: one line, not an
    IndexError of the frame mask)."""
    oracle = mv.VisemeOracle(model=None, lips=np.arange(2), context=0, visemes=("sil", "aa"), n_vertices=3,
                             train_accuracy=1.0, n_train_frames=0)
    with pytest.raises(InputError, match="frame labels"):
        mv.viseme_accuracy(oracle, np.zeros((4, 3, 3)), np.array([0, 1, 1]), np.zeros((3, 3)))


def test_rank_agreement_uses_only_rows_where_every_value_is_finite():
    """validate_plrs counts only sequences whose oracle accuracy *and* metric are finite; compare_metrics only rows
    where the oracle, ``a`` and ``b`` all are, and ``signs`` overrides METRIC_SIGNS (LVE taken as higher = better
    disagrees with the oracle)."""
    rows = _rows()
    rows.loc[rows["sequence"] == "s0", "oracle_accuracy"] = np.nan
    s = mv.validate_plrs(rows, metrics={"plrs": 1}, n_resamples=20)
    assert (s["n_sequences"] == 32).all()
    rows = _rows()
    rows.loc[rows["sequence"] == "s1", "lve"] = np.nan
    d = mv.compare_metrics(rows, "plrs", "lve", n_resamples=20)
    assert d["n_sequences"] == 32 and d["rho_b"] == pytest.approx(1.0)
    d = mv.compare_metrics(_rows(), "plrs", "lve", signs={"lve": 1}, n_resamples=20)
    assert d["rho_b"] == pytest.approx(-1.0) and d["difference"] == pytest.approx(2.0)


def test_metric_rows_background_is_the_other_clips_and_needs_a_model(tiny):
    """metric_rows(calibrated=True): a clip's background bank is the speech of the *other* clips only (PLRS-c of its
    GT as plrs_scores with background_excluding); without a PLRS model ``calibrated`` scores nothing more, and a
    sequence longer than its GT is refused like a shorter one."""
    from p3d.audio import speech_windows
    from p3d.metrics.plrs import background_excluding, plrs_scores, speech_banks

    clips = tiny.select("test")[:2]
    critic = _Critic()
    rows = mv.metric_rows(clips, lambda c: {"gt": tiny.vertices(c)}, corpus=tiny, oracle=None, plrs_model=critic,
                          calibrated=True).set_index("clip")
    windows = {c.stem: speech_windows(*tiny.speech_audio(c), tiny.model_fps) for c in clips}
    banks = speech_banks(windows, critic)
    for c in clips:
        want = plrs_scores(windows[c.stem], tiny.vertices(c).astype(np.float64), critic,
                           background_excluding(banks, c.stem))
        assert rows.loc[c.stem, "plrs_calibrated"] == pytest.approx(want.calibrated, abs=1e-5)
        assert rows.loc[c.stem, "plrs_mrr"] == pytest.approx(want.mrr, abs=1e-6)
    plain = mv.metric_rows(clips, lambda c: {"gt": tiny.vertices(c)}, corpus=tiny, oracle=None, calibrated=True)
    assert not {"plrs", "plrs_calibrated"} & set(plain.columns)
    for n in (-2, 2):  # two frames short, two frames too many
        with pytest.raises(InputError, match="the GT has"):
            mv.metric_rows(clips[:1], lambda c: {"off": np.resize(tiny.vertices(c), (len(tiny.vertices(c)) + n,
                                                                                     *tiny.vertices(c).shape[1:]))},
                           corpus=tiny, oracle=None)


def test_oracle_accuracy_by_split_counts_only_clips_with_a_scored_frame(tiny, oracle):
    """oracle_accuracy_by_split: a clip without a scored frame (every viseme excluded) has no accuracy and is not
    counted; with none left the accuracy and its CI are NaN."""
    acc = mv.oracle_accuracy_by_split(oracle, tiny, ("test",), exclude=oracle.visemes, n_resamples=20).iloc[0]
    assert acc["n_clips"] == 0 and np.isnan(acc["accuracy"]) and np.isnan(acc["ci_low"]) and np.isnan(acc["ci_high"])


def test_find_talker_predictions_prefers_the_every_identity_folder(tmp_path):
    """find_talker_predictions: a run with both ``pred_<corpus>_<split>/`` (every identity) and a complete
    ``pred_<corpus>_<split>_c<k>/`` reads the every-identity folder."""
    for folder in ("pred_synth-voca_test", "pred_synth-voca_test_c2"):
        (tmp_path / "run" / folder).mkdir(parents=True)
        np.save(tmp_path / "run" / folder / "A_s01_condition_X.npy", np.zeros((3, 2, 3), np.float32))
    found = mv.find_talker_predictions(tmp_path, ["A_s01"])
    assert found["run"]["A_s01"].parent.name == "pred_synth-voca_test"


def test_figure_talkers_count_a_run_without_seed_as_seed_0():
    """figure_talkers: a run name without ``_seed<N>`` counts as seed 0, so it is drawn before its arm's seed 1."""
    assert mv.figure_talkers(["faceformer_none_voca_seed1", "faceformer_none_voca"]) == ["faceformer_none_voca"]


def test_a_verdict_word_needs_the_interval_clear_of_zero():
    """An interval that touches 0 (ci_low == 0) does not exclude 0: inconclusive, not "agrees"."""
    assert mv._verdict_word({"rho": 0.3, "ci_low": 0.0, "ci_high": 0.6}) == "inconclusive"


def test_viseme_oracle_pipeline_subsampling_and_label_checks(tiny, oracle, monkeypatch):
    """train_viseme_oracle: PCA *before* standardising (its docstring says why), at most ``max_frames`` frames, and
    one-line errors for frame labels of the wrong length or a single viseme among the labels."""
    assert [type(s).__name__ for _, s in oracle.model.steps] == ["PCA", "StandardScaler", "LogisticRegression"]
    assert mv.train_viseme_oracle(tiny, "train", n_components=4, max_frames=50).n_train_frames == 50
    labels = tiny.labels
    monkeypatch.setattr(tiny, "labels", lambda c: {"viseme": labels(c)["viseme"][:-1]})
    with pytest.raises(InputError, match="frame labels"):
        mv.train_viseme_oracle(tiny, "train")
    monkeypatch.setattr(tiny, "labels", lambda c: {"viseme": np.zeros_like(labels(c)["viseme"])})
    with pytest.raises(InputError, match="two visemes"):
        mv.train_viseme_oracle(tiny, "train")


def test_offset_curve_plot_scale_when_the_lips_lead():
    """plot_offset_curve took ms per frame from the last offset only: a curve of leading lips (offsets -2..0, last 0)
    drew the identity line and the ms axis at 1 ms per frame instead of 1000 / fps; any non-zero offset gives it."""
    curve = pd.DataFrame({"offset": [-2, -1, 0], "offset_ms": [-80.0, -40.0, 0.0], "mtm_ms": [70.0, 35.0, 0.0],
                          "ci_low": [60.0, 30.0, 0.0], "ci_high": [80.0, 40.0, 0.0]})
    ax = mv.plot_offset_curve(curve).axes[0]
    identity = ax.lines[1]
    np.testing.assert_allclose(identity.get_ydata(), [-80.0, -40.0, 0.0])


def test_a_boolean_is_not_a_frame_rate():
    """summarise_offsets / offset_slope took fps=True as 1 frame per second (bool is an int), a silently wrong ms
    scale; it is an InputError like any other non-rate, as a boolean offset already was."""
    per = mv.mtm_offsets([_bumps()], [0, 1], topology=(0, 1))
    for f in (mv.summarise_offsets, mv.offset_slope):
        with pytest.raises(InputError, match="fps"):
            f(per, True)


def test_a_metric_sign_is_plus_or_minus_one_not_a_boolean_or_scale():
    """validate_plrs, compare_metrics and referee_differences orient each metric by a sign of +1 or -1: ``True``
    compared equal to 1 and passed in the first and last; compare_metrics checked nothing, so a sign of 0 made its
    metric constant (rho undefined) and text ended in a numpy traceback. Each refuses them in one line; -1.0 is -1."""
    from p3d.analysis import referee_validity as rv

    rows = _rows()
    for bad in (True, 0, 0.5, "1"):
        with pytest.raises(InputError, match=r"sign must be \+1 or -1"):
            mv.validate_plrs(rows, metrics={"plrs": bad}, n_resamples=50)
        with pytest.raises(InputError, match=r"signs\['plrs'\]: sign must be \+1 or -1"):
            mv.compare_metrics(rows, signs={"plrs": bad}, n_resamples=50)
        with pytest.raises(InputError, match=r"referees\['x'\]: sign must be \+1 or -1"):
            rv.referee_differences(rows.assign(sequence="gt"), referees={"x": ("plrs", bad)})
    flipped = mv.validate_plrs(rows, metrics={"plrs": -1.0}, n_resamples=50)
    plain = mv.validate_plrs(rows, metrics={"plrs": 1}, n_resamples=50)
    assert flipped["rho"].to_numpy() == pytest.approx(-plain["rho"].to_numpy())
