"""Representation figures and training curves: they draw what they are given and reject empty input."""
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from p3d.errors import InputError
from p3d.viz.representation import plot_intensity_direction, plot_offset_similarity, plot_pair_boxes, plot_tsne_groups
from p3d.viz.training import plot_training_curves


def _curve(peak=0.8):
    off = np.arange(-3, 4)
    mean = peak - 0.05 * np.abs(off)
    return pd.DataFrame({"offset": off, "offset_ms": off * 40.0, "mean": mean, "ci_low": mean - 0.01,
                         "ci_high": mean + 0.01})


def test_offset_plot_draws_one_line_per_model():
    fig = plot_offset_similarity({"a": _curve(), "b": _curve(0.5)}, unit="ms")
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and len(ax.get_lines()) == 3  # two curves + the zero line
    assert ax.get_lines()[0].get_xdata()[0] == -120.0
    with pytest.raises(InputError):
        plot_offset_similarity({})


def test_offset_plot_bands_take_their_lines_colour():
    """A model without a CI (NaN band) before one with: the second band is in the second line's colour (was the
    first's: fill_between draws from its own colour cycle, which the band-less curve had not advanced)."""
    from matplotlib.colors import to_hex

    no_ci = _curve().assign(ci_low=np.nan, ci_high=np.nan)
    ax = plot_offset_similarity({"no CI": no_ci, "with CI": _curve(0.5)}).axes[0]
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "with CI")
    assert [to_hex(c.get_facecolor()[0]) for c in ax.collections] == [to_hex(line.get_color())]


def test_tsne_plot_markers_and_groups():
    pts = np.random.default_rng(0).normal(size=(40, 2))
    grp = np.array(["aj", "m", "", "s,z"] * 10, dtype=object)
    mod = np.repeat(["speech", "mesh"], 20)
    fig = plot_tsne_groups({"ours": {"points": pts, "group": grp, "modality": mod}})
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert labels == {"/aj/", "/m/", "/s,z/"}
    assert fig.legends[0].get_title().get_text() == "circles: speech\nsquares: mesh"
    speech_only = plot_tsne_groups({"s": {"points": pts, "group": grp, "modality": np.full(40, "speech")}})
    assert speech_only.legends[0].get_title().get_text() == "circles: speech"
    with pytest.raises(InputError, match="lengths differ"):
        plot_tsne_groups({"x": {"points": pts, "group": grp[:3], "modality": mod}})


def test_intensity_and_box_plots():
    plane = np.random.default_rng(1).normal(size=(30, 2))
    levels = np.repeat([1, 2, 3], 10)
    fig = plot_intensity_direction({"levels": np.array([1, 2, 3]), "plane": plane}, levels)
    assert len(fig.axes[0].get_legend().get_texts()) == 3
    with pytest.raises(InputError):
        plot_intensity_direction({"levels": np.array([1]), "plane": plane}, levels[:5])
    df = pd.DataFrame({"split": ["train"] * 5 + ["test"] * 5, "loss": np.arange(10.0)})
    fig = plot_pair_boxes({"ours": df, "no2d": df}, "loss")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["ours", "no2d"]



def test_pair_boxes_say_how_many_values_they_leave_out(caplog):
    """A box cannot draw NaN or inf: plot_pair_boxes left such values out without a word (4 of 10 here). They are
    still left out (the boxes are those of the finite values) and a warning counts them per model and split."""
    df = pd.DataFrame({"split": ["train"] * 5 + ["test"] * 5,
                       "cosine": [0.1, 0.2, np.nan, 0.4, 0.5, 0.3, np.nan, np.nan, 0.2, np.inf]})
    with caplog.at_level("WARNING", logger="p3d.viz.representation"):
        fig = plot_pair_boxes({"ours": df}, "cosine")
    assert "ours train: 1 of 5; ours test: 3 of 5" in caplog.text and "NaN or inf" in caplog.text
    assert isinstance(fig, Figure)
    caplog.clear()
    with caplog.at_level("WARNING", logger="p3d.viz.representation"):
        plot_pair_boxes({"ours": df.fillna(0.0).replace(np.inf, 1.0)}, "cosine")
    assert not caplog.records


def test_training_curves(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text("step,loss,lr,infonce\n1,2.0,0.1,1.5\n2,1.0,0.1,1.2\n")
    fig = plot_training_curves(csv, ["loss", "infonce", "missing"])
    assert len(fig.axes) == 2
    with pytest.raises(InputError, match="none of the columns"):
        plot_training_curves(csv, ["nope"])
    with pytest.raises(InputError, match="no metrics file"):
        plot_training_curves(tmp_path / "absent.csv")


@pytest.mark.parametrize("text, match", [("", "no logged steps yet"),  # pandas' EmptyDataError
                                         ("step,loss\n", "no logged steps yet"),  # was 'none of the columns'
                                         ("step,loss\n1,2.0\n2,nan?\n", "non-numeric value")])  # ValueError
def test_training_curves_of_an_unfinished_or_damaged_log(tmp_path, text, match):
    csv = tmp_path / "metrics.csv"
    csv.write_text(text)
    with pytest.raises(InputError, match=match):
        plot_training_curves(csv)
    csv.write_text("step,loss\n1,2.0\n")  # one logged step: one point
    assert len(plot_training_curves(csv).axes) == 1


def test_fig1b_three_panels_arrows_and_validation():
    from p3d.viz.representation import plot_fig1b

    rng = np.random.default_rng(0)
    cloud = {"points": rng.normal(size=(40, 2)), "group": np.array(["aj", "m", "", "s,z"] * 10, dtype=object),
             "modality": np.repeat(["speech", "mesh"], 20)}
    centroids = {"aj": np.array([0.0, 1.0]), "m": np.array([1.0, 0.0]), "s,z": np.array([-1.0, 0.0])}
    levels = {"levels": np.array([1, 2, 3]), "overall": np.array([[0, 0], [0.1, 0.1], [0.2, 0.2]]),
              "per_identity": np.array([[[0, 0], [np.nan, np.nan], [0.3, 0.1]]])}
    offs = np.arange(-2, 3)
    traj = {"offsets": offs, "cosine": np.array([[0.1, 0.3, 0.5, 0.3, 0.1]]),
            "mean": pd.DataFrame({"offset": offs, "mean": [0.1, 0.2, 0.4, 0.2, 0.1]})}
    fig = plot_fig1b(cloud, centroids, levels, traj)
    assert len(fig.axes) == 3
    ax_b = fig.axes[1]
    assert {t.get_text() for t in ax_b.get_legend().get_texts()} >= {"level 1 (low)", "level 3 (high)"}
    arrow = [a for a in ax_b.texts if a.arrow_patch is not None and a.xy[0] == 0.2][0]  # the mean arrow's head
    assert tuple(arrow.xy) == (0.2, 0.2) and tuple(arrow.xyann) == (0.1, 0.1)  # points low -> high
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"/aj/", "/m/", "/s,z/"}
    assert len(fig.axes[2].get_lines()) == 3  # window, mean, zero line
    with pytest.raises(InputError, match="cosine"):
        plot_fig1b(cloud, centroids, levels, {"offsets": offs, "cosine": np.zeros((1, 4))})
    with pytest.raises(InputError, match="levels"):
        plot_fig1b(cloud, centroids, {**levels, "overall": np.zeros((2, 2))}, traj)


def test_tsne_legend_lists_the_groups_of_every_panel():
    """A group drawn only in a later panel is in the figure's legend (it was taken from the first panel alone, so
    a coloured group could go unnamed, and a first panel without groups left the figure without a legend)."""
    pts = np.random.default_rng(0).normal(size=(4, 2))
    speech = np.full(4, "speech")
    first = {"points": pts, "group": np.array(["aj", "aj", "", ""], dtype=object), "modality": speech}
    second = {"points": pts, "group": np.array(["m", "m", "aj", "p"], dtype=object), "modality": speech}
    fig = plot_tsne_groups({"A": first, "B": second})
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["/aj/", "/m/", "/p/"]
    blank = {**first, "group": np.array([""] * 4, dtype=object)}
    fig = plot_tsne_groups({"A": blank, "B": second})
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["/aj/", "/m/", "/p/"]


def test_offset_plot_refuses_an_unknown_unit_or_a_missing_column():
    """unit="s" was drawn from the frame column and labelled "offset (frames)"; a table without the unit's column
    raised KeyError."""
    with pytest.raises(InputError, match="unit: expected 'frames' or 'ms'"):
        plot_offset_similarity({"a": _curve()}, unit="s")
    with pytest.raises(InputError, match=r"curves\['a'\]: no offset_ms column"):
        plot_offset_similarity({"a": _curve().drop(columns="offset_ms")}, unit="ms")
    ax = plot_offset_similarity({"a": _curve().drop(columns="offset_ms")}).axes[0]
    assert ax.get_xlabel() == "offset (frames)"


def test_intensity_figures_label_float_levels_and_refuse_strings():
    """Levels 1.0 / 1.5 (floats, e.g. from a table column with missing levels) were labelled through int():
    1.5 became "low" and 1.0 "level 1.0 (low)"; string levels crashed with a ValueError from int()."""
    from p3d.viz.representation import plot_fig1b

    plane = np.random.default_rng(1).normal(size=(30, 2))
    levels = np.repeat([1.0, 1.5, 3.0], 10)
    fig = plot_intensity_direction({"levels": np.array([1.0, 1.5, 3.0]), "plane": plane}, levels)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["level 1 (low)", "level 1.5",
                                                                          "level 3 (high)"]
    cloud = {"points": plane, "group": np.array(["m"] * 30, dtype=object), "modality": np.full(30, "speech")}
    lv = {"levels": np.array([1.0, 1.5, 3.0]), "overall": plane[:3], "per_identity": plane[None, :3]}
    traj = {"offsets": np.arange(3), "cosine": np.zeros((1, 3))}
    fig = plot_fig1b(cloud, {"m": [0.0, 0.0]}, lv, traj)
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()][:3] == ["level 1 (low)", "level 1.5",
                                                                              "level 3 (high)"]
    with pytest.raises(InputError, match="numeric intensity levels"):
        plot_intensity_direction({"levels": np.array(["high", "low"]), "plane": plane[:2]}, np.array(["low", "high"]))
    with pytest.raises(InputError, match="numeric intensity levels"):
        plot_fig1b(cloud, {"m": [0.0, 0.0]}, {**lv, "levels": np.array(["low", "mid", "high"])}, traj)
    with pytest.raises(InputError, match="ascending"):
        plot_fig1b(cloud, {"m": [0.0, 0.0]}, {**lv, "levels": np.array([3, 2, 1])}, traj)


def test_validation_overview_gives_a_label_one_colour_in_every_panel(tmp_path):
    """An arm missing from one model's panel (no curve yet) shifted the others' colours there: ``ours`` was orange in
    the first panel and blue (the first panel's ``none``) in the second."""
    import json

    from matplotlib.colors import to_hex

    from p3d.viz.training import plot_validation_overview

    def run(name):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"kind": "talker", "train": {"steps": 10, "stop": "steps",
                                                                               "eval_every": 2}}))
        (d / "val.csv").write_text("step,val\n" + "".join(f"{s},{1 / s}\n" for s in range(2, 11, 2)))
        (d / "metrics.csv").write_text("step,loss\n10,0.1\n")
        return d

    dirs = [run("ff_none"), run("ff_ours"), run("ff_sync"), run("ct_ours"), run("ct_sync"), run("critic")]
    fig = plot_validation_overview(dirs, panels=["FaceFormer"] * 3 + ["CodeTalker"] * 2 + ["critics"],
                                   labels=["none", "ours", "syncnet", "ours", "syncnet", "critic"])
    colours = [{t.get_text(): to_hex(h.get_color()) for t, h in zip(ax.get_legend().get_texts(),
                                                                     ax.get_legend().legend_handles)}
               for ax in fig.axes[:3]]
    ff, ct, critics = colours
    assert ct == {k: ff[k] for k in ("ours", "syncnet")} and len(set(ff.values())) == 3
    assert critics == {"critic": to_hex("C0")}  # a panel's own label: its panel's first free colour


def test_tsne_groups_outside_the_paper_groups_are_drawn_and_named():
    """Points of a group without a GROUP_COLORS entry (e.g. ``phoneme_groups(groups=...)``) were left out of the
    figure without a word (3 of 6 points drawn, legend /aj/ only); they are drawn in a fallback colour, named
    in the legend after the paper's groups."""
    from matplotlib.colors import to_hex

    pts = np.random.default_rng(0).normal(size=(6, 2))
    grp = np.array(["aj", "aj", "u", "o", "o", ""], dtype=object)
    fig = plot_tsne_groups({"A": {"points": pts, "group": grp, "modality": np.full(6, "speech")}})
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 6
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["/aj/", "/o/", "/u/"]
    from p3d.viz.representation import FALLBACK_GROUP_COLORS

    by_label = {c.get_label(): to_hex(c.get_facecolor()[0]) for c in ax.collections}
    assert by_label["/o/"] == to_hex(FALLBACK_GROUP_COLORS[0]) and by_label["/u/"] == to_hex(FALLBACK_GROUP_COLORS[1])


def test_tsne_groups_refuse_a_third_modality():
    """Rows whose modality was neither "speech" nor ``other`` (e.g. "video" rows with the default other="mesh")
    were left out of the figure without a word (3 of 6 points drawn, legend title "circles: speech"); they are
    refused with a one-line InputError naming the modality. Fig. 1b's cloud takes the same rule."""
    from p3d.viz.representation import plot_fig1b

    pts = np.random.default_rng(0).normal(size=(6, 2))
    grp = np.array(["aj", "aj", "m", "m", "s,z", ""], dtype=object)
    mod = np.array(["speech", "video"] * 3)
    with pytest.raises(InputError, match=r"^panel A: modality 'video' is neither 'speech' nor other='mesh'"):
        plot_tsne_groups({"A": {"points": pts, "group": grp, "modality": mod}})
    fig = plot_tsne_groups({"A": {"points": pts, "group": grp, "modality": mod}}, other="video")
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 6
    assert fig.legends[0].get_title().get_text() == "circles: speech\nsquares: video"
    levels = {"levels": np.array([1, 2]), "overall": np.zeros((2, 2)), "per_identity": np.zeros((1, 2, 2))}
    traj = {"offsets": np.arange(3), "cosine": np.zeros((1, 3))}
    with pytest.raises(InputError, match=r"^cloud: modality 'video'"):
        plot_fig1b({"points": pts, "group": grp, "modality": mod}, {"aj": np.zeros(2)}, levels, traj)


def test_training_curves_are_drawn_against_the_logged_step(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text("step,loss\n10,2.0\n20,1.5\n40,1.0\n")
    (line,) = plot_training_curves(csv).axes[0].lines
    assert list(line.get_xdata()) == [10, 20, 40] and list(line.get_ydata()) == [2.0, 1.5, 1.0]
    csv.write_text("epoch,loss\n1,2.0\n")
    with pytest.raises(InputError, match="none of the columns"):  # no step column: nothing to draw against
        plot_training_curves(csv)


def test_validation_curves_draw_the_raw_values_thin_and_the_rule_s_median_thick(tmp_path):
    """Per run the raw validation values (thin) and the stopping rule's moving median (thick); the raw curve
    holds val.csv's values as logged."""
    import json

    from p3d.viz.training import plot_validation_curves

    d = tmp_path / "run"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"kind": "talker", "train": {"steps": 10, "stop": "steps",
                                                                           "eval_every": 2}}))
    raw = [5.0, 1.0, 4.0, 0.5, 3.0]  # a jagged curve: its moving median differs from it
    (d / "val.csv").write_text("step,val\n" + "".join(f"{s},{v}\n" for s, v in zip(range(2, 11, 2), raw)))
    (d / "metrics.csv").write_text("step,loss\n10,0.1\n")
    (ax,) = plot_validation_curves([d]).axes
    curves = sorted((line for line in ax.lines if len(line.get_xdata()) == 5), key=lambda line: line.get_linewidth())
    thin, thick = curves
    assert list(thin.get_xdata()) == [2, 4, 6, 8, 10] and list(thin.get_ydata()) == raw
    assert thick.get_linewidth() > thin.get_linewidth() and list(thick.get_ydata()) != raw
    # the overview draws the same moving median (not the raw values) for the run
    from p3d.viz.training import plot_validation_overview

    ov = plot_validation_overview([d], panels=["A"], labels=["x"]).axes[0]
    (curve,) = [line for line in ov.lines if len(line.get_xdata()) == 5]
    assert list(curve.get_ydata()) == list(thick.get_ydata())


def test_validation_curves_log_y_puts_every_panel_on_a_log_axis_limited_by_the_positive_values(tmp_path):
    """log_y: each metric's panel has a logarithmic y axis (linear without it); a validation value of 0, which a log
    axis cannot place, stays in the curve's data and the axis limits span the positive values only."""
    import json

    from p3d.viz.training import plot_validation_curves

    dirs = []
    for name, metric, raw in [("a", "val_loss", [5.0, 0.0, 4.0, 0.5, 3.0]), ("b", "val_infonce", [2.0, 1.0, 0.25])]:
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"kind": "talker", "validation": {"metric": metric},
                                                   "train": {"steps": 2 * len(raw), "stop": "steps",
                                                             "eval_every": 2}}))
        (d / "val.csv").write_text("step,val\n" + "".join(f"{2 * (i + 1)},{v}\n" for i, v in enumerate(raw)))
        (d / "metrics.csv").write_text(f"step,loss\n{2 * len(raw)},0.1\n")
        dirs.append((d, raw))
    assert [ax.get_yscale() for ax in plot_validation_curves([d for d, _ in dirs]).axes] == ["linear", "linear"]
    axes = plot_validation_curves([d for d, _ in dirs], log_y=True).axes
    assert [ax.get_title() for ax in axes] == ["val_loss", "val_infonce"]
    for ax, (_, raw) in zip(axes, dirs):
        assert ax.get_yscale() == "log"
        assert any(list(line.get_ydata()) == raw for line in ax.lines)  # the raw curve, its 0 included
        positive = [v for v in raw if v > 0]
        bottom, top = ax.get_ylim()
        assert 0 < bottom <= min(positive) and top >= max(positive)
    y0 = axes[0].transData.transform([[4.0, 0.0]])[0, 1]  # the 0 of run a: clipped below the axis, not dropped
    assert np.isfinite(y0) and y0 < axes[0].transAxes.transform([[0.0, 0.0]])[0, 1]
