"""Still figures of a face mesh: highlighted vertices (Fig. S3) and a gallery of poses (visemes)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from p3d.errors import InputError


def highlight_colors(n_vertices: int, groups: Mapping[str, Sequence[int]],
                     palette: Sequence[tuple[float, float, float]] = ((0.85, 0.1, 0.1), (0.1, 0.3, 0.9),
                                                                     (0.1, 0.6, 0.2), (0.9, 0.6, 0.0)),
                     base: tuple[float, float, float] = (0.87, 0.76, 0.68)) -> np.ndarray:
    """(V, 3) RGB colours in [0, 1]: ``base`` everywhere, one palette colour per vertex group. More groups than
    palette colours, or a vertex index outside [0, V), is an :class:`~p3d.errors.InputError`."""
    if len(groups) > len(palette):
        raise InputError(f"groups: {len(groups)} vertex groups ({', '.join(map(str, groups))}), "
                         f"the palette has {len(palette)} colours")
    colors = np.tile(np.asarray(base, dtype=np.float64), (n_vertices, 1))
    for (name, idx), col in zip(groups.items(), palette):
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= n_vertices):
            raise InputError(f"groups[{name!r}]: vertex indices must lie in [0, {n_vertices}), "
                             f"found [{idx.min()}, {idx.max()}]")
        colors[idx] = col
    return colors


def highlight_figure(template: np.ndarray, faces: np.ndarray, groups: Mapping[str, Sequence[int]], *,
                     title: str = "", size: int = 512, zoom: Sequence[int] | None = None,
                     mouth_vertices: Sequence[int] | None = None) -> Any:
    """Render ``template`` with vertex ``groups`` coloured (and marked), e.g. the MTM lip vertices (Fig. S3).

    ``zoom``: vertex indices to frame a second, close-up panel on (e.g. the lips). ``mouth_vertices``:
    vertices framing the mouth opening, behind which a dark cavity is drawn (see ``p3d.viz.render``).
    """
    from matplotlib.figure import Figure

    from p3d.viz.render import frontal_camera, render_frames

    verts = np.asarray(template, dtype=np.float64)[None]
    colors = highlight_colors(verts.shape[1], groups)
    panels = [("face", render_frames(verts, faces, size=(size, size), colors=colors,
                                     mouth_vertices=mouth_vertices)[0])]
    if zoom is not None:
        sub = verts[0][np.asarray(zoom)]
        pad = np.ptp(sub, axis=0).max() * 0.6
        box = np.concatenate([sub.min(axis=0) - pad, sub.max(axis=0) + pad]).reshape(2, 3)
        cam = frontal_camera(box, (size, size))
        panels.append(("close-up", render_frames(verts, faces, size=(size, size), colors=colors, camera=cam,
                                                 min_coverage=0.0, mouth_vertices=mouth_vertices)[0]))
    fig = Figure(figsize=(4 * len(panels), 4.3), constrained_layout=True)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (name, img) in zip(axes, panels):
        ax.imshow(img)
        ax.set_axis_off()
        ax.set_title(name, fontsize=9)
    handles = [f"{k}: {', '.join(str(int(i)) for i in v)}" for k, v in groups.items()]
    fig.suptitle((title + "\n" if title else "") + "; ".join(handles), fontsize=9)
    return fig


def pose_gallery(poses: Mapping[str, np.ndarray], faces: np.ndarray, *, size: int = 256,
                 camera: Any = None, mouth_vertices: Sequence[int] | None = None, ncols: int = 5) -> Any:
    """A grid of rendered poses ({label: (V, 3) vertices}), one fixed camera for all (e.g. the visemes)."""
    from matplotlib.figure import Figure

    from p3d.viz.render import render_frames

    labels = list(poses)
    if not labels:
        raise InputError("poses: expected at least one {label: (V, 3) vertices} pose")
    verts = np.stack([np.asarray(poses[k], dtype=np.float64) for k in labels])
    frames = render_frames(verts, faces, size=(size, size), camera=camera if camera is not None else verts[0],
                           mouth_vertices=mouth_vertices)
    nrows = int(np.ceil(len(labels) / ncols))
    fig = Figure(figsize=(2.2 * ncols, 2.4 * nrows), constrained_layout=True)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, label, img in zip(axes, labels, frames):
        ax.imshow(img)
        ax.set_title(label, fontsize=9)
    return fig
