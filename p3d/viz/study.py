"""Figures of a perceptual study made by ``p3d study make`` (notebook 09): the lip-intensity variants of one
trial side by side.

Backend-free: figures are :class:`matplotlib.figure.Figure` objects, never pyplot state.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from p3d.errors import InputError


def lip_level_figure(manifest: Mapping[str, Any], study: str | os.PathLike[str]) -> Figure:
    """The stimuli of the first trial of an intensity study (``manifest``, :func:`p3d.study.make.load_manifest`
    of the study folder ``study``) that is not an attention check, one panel each in the trial's canonical order
    (ascending lip level), each decoded from its ``.mp4`` and shown at the frame of
    :func:`p3d.study.variants.display_frames` (the loudest lips' darkest frame), titled with its lip level and lip
    scale; 3 x 3.2 inches per panel."""
    import imageio.v3 as iio
    import numpy as np

    from p3d.study.variants import display_frames

    if (manifest.get("design"), manifest.get("rank_over")) != ("rank", "intensity"):
        raise InputError(f"{study}: not a lip-intensity study (design {manifest.get('design')!r}, rank_over "
                         f"{manifest.get('rank_over')!r}; expected 'rank' over 'intensity')")
    trial = next((t for t in manifest["trials"] if not t["attention_check"]), None)
    if trial is None:
        raise InputError(f"{study}: the study has no trial that is not an attention check")
    stimuli = [manifest["stimuli"][s] for s in trial["stimuli"]]
    frames = [np.stack(list(iio.imiter(Path(study) / s["file"]))) for s in stimuli]
    fig = Figure(figsize=(3 * len(stimuli), 3.2))
    axes = fig.subplots(1, len(stimuli), squeeze=False)[0]
    for ax, s, f, t in zip(axes, stimuli, frames, display_frames(frames)):
        ax.imshow(f[t])
        ax.set_title(f"lip level {s['lip_level']} (x{s['lip_scale']:g})")
        ax.axis("off")
    fig.tight_layout()
    return fig
