"""Still face figures: the highlight colours and the pose gallery refuse input they cannot draw faithfully."""
import numpy as np
import pytest

from p3d.errors import InputError
from p3d.viz.face_figures import highlight_colors, pose_gallery


def test_highlight_colors_one_colour_per_group():
    colors = highlight_colors(5, {"a": [0], "b": [3, 4]})
    assert colors.shape == (5, 3)
    assert np.allclose(colors[0], (0.85, 0.1, 0.1)) and np.allclose(colors[3:], (0.1, 0.3, 0.9))
    assert np.allclose(colors[1:3], (0.87, 0.76, 0.68))


def test_highlight_colors_refuses_more_groups_than_colours():
    """A fifth group was silently left uncoloured (zip stopped at the palette) while highlight_figure's title still
    listed it; a vertex index out of range raised IndexError."""
    with pytest.raises(InputError, match="5 vertex groups .* the palette has 4 colours"):
        highlight_colors(6, {str(i): [i] for i in range(5)})
    with pytest.raises(InputError, match=r"groups\['a'\]: vertex indices must lie in \[0, 6\)"):
        highlight_colors(6, {"a": [6]})


def test_pose_gallery_without_poses_is_one_line():
    with pytest.raises(InputError, match="poses: expected at least one"):
        pose_gallery({}, np.zeros((1, 3), dtype=np.int64))
