"""The numbers behind the experiments' figures (p3d.viz.effects): where each effect, bar and mark is drawn and in
which colour, checked against the documented layout rather than against the code's own expressions."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex, to_rgb

from p3d.errors import InputError
from p3d.viz.effects import figure_pixels, plot_effects, plot_levelwise_slcc, stack_panels


def _effects():
    return pd.DataFrame({"comparison": ["A", "B", "C"], "metric": ["LVE"] * 3, "change": [-1.0, 2.0, 0.5],
                         "change CI low": [-1.5, 1.0, -0.5], "change CI high": [-0.5, 3.0, 1.5],
                         "verdict": ["better", "worse", "no clear change"]})


def test_effect_dots_are_coloured_by_verdict_on_their_own_rows():
    """Green when the CI shows an improvement, red a deterioration, grey otherwise; the first comparison on top;
    a vertical line at no change (x = 0)."""
    ax = plot_effects(_effects()).axes[0]
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    drawn = {float(d.get_ydata()[0]): (float(d.get_xdata()[0]), to_hex(d.get_color())) for d in dots}
    assert drawn == {0.0: (-1.0, to_hex("tab:green")), 1.0: (2.0, to_hex("tab:red")), 2.0: (0.5, to_hex("tab:gray"))}
    # each CI bar in its verdict's colour, spanning its CI on its comparison's row
    bars = {float(seg[0][1]): (float(seg[0][0]), float(seg[1][0]), to_hex(c.get_colors()[0]))
            for c in ax.collections for seg in c.get_segments()}
    assert bars == {0.0: (-1.5, -0.5, to_hex("tab:green")), 1.0: (1.0, 3.0, to_hex("tab:red")),
                    2.0: (-0.5, 1.5, to_hex("tab:gray"))}
    zero = [line for line in ax.lines if len(line.get_xdata()) == 2 and line.get_marker() in ("None", "")]
    assert len(zero) == 1 and list(zero[0].get_xdata()) == [0, 0]
    # "the first comparison on top": row A is drawn above row C on the canvas
    top, bottom = ax.transData.transform([[0, 0], [0, 2]])[:, 1]
    assert top > bottom
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B", "C"]


def test_levelwise_bars_hold_the_values_at_their_level():
    """Each setting's bar in each level's group has the setting's SLCC at that level; the group is centred on the
    level's tick (named Lv1, Lv2, Avg in order), and the data's own SLCC is a mark at that tick."""
    run = {"x": {"summary": {"slcc": {"1": {"value": 0.1}, "2": {"value": 0.2}, "all": {"value": 0.3}}}},
           "y": {"summary": {"slcc": {"1": {"value": -0.4}, "2": {"value": 0.5}, "all": {"value": 0.6}}}}}
    data = {"1": {"value": 0.7}, "2": {"value": 0.8}, "all": {"value": 0.9}}
    ax = plot_levelwise_slcc({"M": run}, data, levels=("1", "2", "all")).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Lv1", "Lv2", "Avg"]
    assert list(ax.get_xticks()) == [0, 1, 2]
    x_bars, y_bars = ax.containers
    for container, want in ((x_bars, [0.1, 0.2, 0.3]), (y_bars, [-0.4, 0.5, 0.6])):
        assert [p.get_height() for p in container.patches] == pytest.approx(want)
    for k in range(3):
        centres = [bars.patches[k].get_x() + bars.patches[k].get_width() / 2 for bars in (x_bars, y_bars)]
        assert np.mean(centres) == pytest.approx(k) and centres[0] < k < centres[1]  # x left of y, about the tick
    (mark,) = [c for c in ax.collections if len(c.get_offsets()) == 3]
    assert np.allclose(mark.get_offsets(), [[0, 0.7], [1, 0.8], [2, 0.9]])


def test_figure_pixels_are_rgb():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1), facecolor=(1.0, 0.0, 0.0))
    image = figure_pixels(fig, dpi=20)
    assert image.shape == (20, 20, 3) and image.dtype == np.uint8
    assert tuple(image[10, 10]) == tuple(int(255 * c) for c in to_rgb("red"))


def test_empty_inputs_are_one_line_errors():
    with pytest.raises(InputError, match="no panels"):
        stack_panels([])
    with pytest.raises(InputError, match="no models"):
        plot_levelwise_slcc({}, {})
