"""y-t slices of rendered talking heads aligned with the speech (paper Fig. S8).

The paper renders GT, FaceFormer and CodeTalker frontally, takes a *vertical line of pixels through the
lips* in every frame and stacks those columns side by side: time runs left to right, the image's y axis
top to bottom, so the mouth opening draws a dark band whose height follows the lip aperture. Aligned
with the waveform, the mel-spectrogram and the phoneme transcription, it shows at a glance whether
closures (/p b m/) fall where the speech has them.

- :func:`project_points`: world -> pixel coordinates of :class:`p3d.viz.render.Camera` (VTK's pinhole
  model: vertical ``view_angle``, square pixels, row 0 at the top of the screenshot).
- :func:`render_yt_slices`: render every sequence off-screen (:func:`p3d.viz.render.iter_frames`, one
  frontal camera for all, :func:`slice_camera`, whose image height spans the lips' vertical range, and a
  dark backdrop behind the inner lips so the open mouth is dark) and keep the pixel column through the
  lip centre: ``{name: (H, T, 3) uint8}``. Frames are narrow (only one column is kept).
- :func:`phoneme_segments`: frame labels -> ``(start_s, end_s, phoneme)`` runs.
- :func:`plot_yt_slices`: the figure: one y-t image per sequence, the waveform, the mel-spectrogram
  (librosa) and the phoneme transcription on one time axis.

Headless: rendering is pyvista off-screen (EGL/OSMesa) and figures are :class:`matplotlib.figure.Figure`
objects, never pyplot state.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from p3d.errors import InputError


def project_points(points: Any, camera: Any, size: tuple[int, int]) -> np.ndarray:
    """(N, 2) pixel coordinates (column, row) of (N, 3) world ``points`` seen by ``camera`` in a
    ``size`` = (W, H) image; pixel centres are at integer coordinates, row 0 is the top row.

    VTK's perspective camera: the vertical field of view ``camera.view_angle`` spans the image height,
    pixels are square. Points behind the camera raise :class:`InputError`.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    w, h = int(size[0]), int(size[1])
    pos, foc = np.asarray(camera.position, float), np.asarray(camera.focal_point, float)
    fwd = foc - pos
    fwd /= np.linalg.norm(fwd)
    up = np.asarray(camera.view_up, float)
    up = up - np.dot(up, fwd) * fwd
    up /= np.linalg.norm(up)
    right = np.cross(fwd, up)
    d = pts - pos
    z = d @ fwd
    if np.any(z <= 0):
        raise InputError("points: some points lie behind the camera")
    f = (h / 2) / math.tan(math.radians(camera.view_angle) / 2)  # pixels per unit at depth 1
    col = w / 2 + f * (d @ right) / z - 0.5
    row = h / 2 - f * (d @ up) / z - 0.5
    return np.stack([col, row], axis=1)


@dataclasses.dataclass(frozen=True)
class YTSlices:
    """The y-t images of :func:`render_yt_slices` and how they were taken."""

    images: dict[str, np.ndarray]
    """``{name: (H, T, 3) uint8}``: column ``column`` of every rendered frame, time along axis 1."""
    column: int
    """Pixel column nearest the lip centre of the reference sequence's first frame (the slice's centre with an
    odd ``band``; an even band is centred on the lip centre, the boundary between this column and the one beside
    it)."""
    camera: Any
    """The :class:`p3d.viz.render.Camera` shared by all sequences."""
    size: tuple[int, int]
    """Rendered frame size (W, H)."""


def _as_seqs(sequences: Mapping[str, Any]) -> dict[str, np.ndarray]:
    if not isinstance(sequences, Mapping) or not sequences:
        raise InputError("sequences: expected a non-empty {name: (T, V, 3) vertices} mapping")
    out, n_vertices = {}, None
    for name, seq in sequences.items():
        arr = np.asarray(seq)
        if arr.ndim == 2 and arr.shape[1] % 3 == 0:
            arr = arr.reshape(arr.shape[0], -1, 3)
        if arr.ndim != 3 or arr.shape[-1] != 3 or arr.shape[0] == 0:
            raise InputError(f"sequences[{name!r}]: expected (T, V, 3) vertices, got shape {np.shape(seq)}")
        if arr.dtype.kind != "f" or not np.isfinite(arr).all():
            raise InputError(f"sequences[{name!r}]: expected finite floating-point vertices")
        if n_vertices is not None and arr.shape[1] != n_vertices:
            raise InputError(f"sequences[{name!r}]: {arr.shape[1]} vertices, the first sequence has {n_vertices}")
        n_vertices = arr.shape[1]
        out[str(name)] = arr
    return out


def slice_camera(lips: Any, centre: Any, size: tuple[int, int], pad: float = 0.5) -> Any:
    """A frontal camera for a narrow ``size`` = (W, H) image whose height spans the vertical range of the
    ``lips`` points (any shape (..., 3), e.g. all lip vertices of all frames) plus ``pad`` times that range
    above and below, horizontally centred on ``centre`` (3,)."""
    from p3d.viz.render import frontal_camera

    pts = np.asarray(lips, dtype=np.float64).reshape(-1, 3)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    extent = float(hi[1] - lo[1])
    if not np.isfinite(extent) or extent <= 0:
        raise InputError("lips: the lip vertices span no height; check the lips region")
    half_h = extent * (0.5 + pad)
    half_w = half_h * size[0] / size[1]
    c = np.asarray(centre, dtype=np.float64).reshape(3)
    mid_y = (lo[1] + hi[1]) / 2
    box = np.array([[c[0] - half_w, mid_y - half_h, lo[2]], [c[0] + half_w, mid_y + half_h, hi[2]]])
    return frontal_camera(box, size, margin=1.0)


def render_yt_slices(sequences: Mapping[str, Any], topology: Any, *, faces: Any | None = None,
                     height: int = 256, width: int = 32, pad: float = 0.5, band: int = 1) -> YTSlices:
    """Render each sequence frontally and stack the pixel column through the lip centre over time.

    Args:
        sequences: ``{name: (T, V, 3)}`` vertex sequences of ``topology`` (lengths may differ); the first
            is the reference (e.g. GT): the camera's vertical field spans its lips over all its frames
            (:func:`slice_camera`), and the column goes through the centre of its lip pair
            (:func:`p3d.viz.lip_shapes.mouth_regions`) in frame 0. Every sequence is seen by that camera.
        topology: a :class:`p3d.topology.Topology` with a ``lips`` region (and faces unless ``faces`` given).
        height, width: rendered frame size in pixels; only a column is kept, so a narrow frame suffices.
        pad: margin above and below the lips, in units of their vertical range.
        band: average ``band`` adjacent columns centred on the lip centre (1: a single pixel line). The camera
            puts the lip centre in the middle of the frame, on a pixel centre when ``width`` is odd and on the
            boundary between the two middle columns when it is even: an odd band is centred on the column
            nearest it (exactly with an odd ``width``, half a pixel beside it with an even one, e.g. the
            defaults), an even band on that boundary (even ``width``); an even band in an odd ``width`` cannot
            be centred and is refused.

    Returns:
        :class:`YTSlices`; each image is (height, T, 3) uint8.
    """
    from p3d.viz.lip_shapes import mouth_regions
    from p3d.viz.render import BlankFrameError, check_frames, iter_frames

    seqs = _as_seqs(sequences)
    faces = getattr(topology, "faces", None) if faces is None else faces
    if faces is None:
        raise InputError(f"topology {getattr(topology, 'name', topology)!r} has no faces; pass faces=")
    for name, val in (("height", height), ("width", width)):
        if not isinstance(val, (int, np.integer)) or not 16 <= val <= 8192:
            raise InputError(f"{name}: expected a number of pixels in [16, 8192], got {val!r}")
    if not isinstance(band, (int, np.integer)) or band < 1 or band > width:
        raise InputError(f"band: expected a number of columns in [1, width={width}], got {band!r}")
    if band % 2 == 0 and width % 2 == 1:
        raise InputError(f"band: an even band ({band}) cannot be centred on the lip centre in an odd width "
                         f"({width}), which puts it on a pixel centre; use an odd band or an even width")
    regions = mouth_regions(topology)
    ref = next(iter(seqs.values()))
    if int(np.max(regions["mouth"])) >= ref.shape[1]:
        raise InputError(f"topology's lips index vertex {int(np.max(regions['mouth']))}, the sequences have "
                         f"{ref.shape[1]} vertices")
    size = (int(width), int(height))
    centre = ref[0, list(regions["lip_pair"])].astype(np.float64).mean(axis=0)
    camera = slice_camera(ref[:, regions["mouth"]], centre, size, pad=pad)
    x = float(project_points(centre, camera, size)[0, 0])  # (width - 1) / 2: the frame's middle
    col = int(round(x))
    # The band's centre, lo + (band - 1) / 2, is the pixel centre (odd band) or boundary (even band) nearest x.
    # (col - band // 2 put an even band's centre at col - 1/2: a pixel left of x where round() rounds x down.)
    lo = col - band // 2 if band % 2 else math.floor(x) + 1 - band // 2
    lo = min(max(lo, 0), size[0] - band)
    images = {}
    for k, (name, seq) in enumerate(seqs.items()):
        # Every frame of the reference is checked for a failed render; another sequence's narrow frame may
        # legitimately be uniform (e.g. a wide-open predicted mouth fills it), so its y-t image is checked whole.
        cols = [frame[:, lo:lo + band].astype(np.float64).mean(axis=1)
                for frame in iter_frames(seq, faces, size=size, camera=camera, check=k == 0,
                                         mouth_vertices=regions["cavity"], min_coverage=0.05)]
        images[name] = np.stack(cols, axis=1).round().clip(0, 255).astype(np.uint8)
        try:
            check_frames(images[name][None], min_coverage=0.05)
        except BlankFrameError as exc:
            raise BlankFrameError(f"sequences[{name!r}]: its y-t image is blank ({exc})") from None
    return YTSlices(images=images, column=col, camera=camera, size=size)


def phoneme_segments(labels: Any, names: Sequence[str], fps: float) -> list[tuple[float, float, str]]:
    """Runs of equal frame labels as ``(start_s, end_s, name)``; frame t covers [t / fps, (t + 1) / fps).

    ``labels``: (T,) integer ids into ``names`` (e.g. a corpus' ``labels(clip)["phoneme"]`` with
    ``meta["phonemes"]``).
    """
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.size == 0 or lab.dtype.kind not in "iu":
        raise InputError(f"labels: expected a non-empty (T,) integer array, got shape {lab.shape}, dtype {lab.dtype}")
    if lab.min() < 0 or lab.max() >= len(names):
        raise InputError(f"labels: ids must lie in [0, {len(names)}), found [{lab.min()}, {lab.max()}]")
    if not (isinstance(fps, (int, float, np.integer, np.floating)) and np.isfinite(fps) and fps > 0):
        raise InputError(f"fps: expected a positive frame rate, got {fps!r}")
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    stops = np.r_[starts[1:], lab.size]
    return [(a / fps, b / fps, str(names[lab[a]])) for a, b in zip(starts, stops)]


def plot_yt_slices(images: Mapping[str, np.ndarray], fps: float, audio: Any, sr: int,
                   segments: Sequence[tuple[float, float, str]] | None = None, *, title: str | None = None,
                   silence: Sequence[str] = ("_", "sil", "SIL", "pau"), n_mels: int = 64) -> Any:
    """Fig. S8: the y-t image of each sequence, the waveform, the mel-spectrogram and the phonemes on
    one time axis (seconds).

    ``images``: ``{name: (H, T, 3) uint8}`` at ``fps`` (:attr:`YTSlices.images`). ``audio``: (n,) mono
    samples at ``sr``. ``segments``: :func:`phoneme_segments` output; labels in ``silence`` are drawn
    as boundaries without text. Returns a :class:`matplotlib.figure.Figure`.
    """
    import librosa
    from matplotlib.figure import Figure

    if not images:
        raise InputError("images: expected at least one y-t image")
    for name, img in images.items():
        if np.ndim(img) != 3 or np.shape(img)[-1] != 3:
            raise InputError(f"images[{name!r}]: expected (H, T, 3), got shape {np.shape(img)}")
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1 or y.size == 0 or not np.isfinite(y).all():
        raise InputError(f"audio: expected a non-empty finite 1-D signal, got shape {y.shape}")
    if not (isinstance(sr, (int, np.integer)) and sr > 0):
        raise InputError(f"sr: expected a positive integer sample rate, got {sr!r}")
    if not (isinstance(fps, (int, float, np.integer, np.floating)) and np.isfinite(fps) and fps > 0):
        raise InputError(f"fps: expected a positive frame rate, got {fps!r}")
    duration = max(y.size / sr, max(np.shape(img)[1] for img in images.values()) / fps)

    n_img = len(images)
    ratios = [1.4] * n_img + [0.7, 1.1] + ([0.45] if segments is not None else [])
    fig = Figure(figsize=(11, 1.3 * sum(ratios) + 0.6), layout="constrained")
    axes = fig.subplots(len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    for ax, (name, img) in zip(axes, images.items()):
        t = np.shape(img)[1]
        ax.imshow(img, aspect="auto", extent=(0, t / fps, np.shape(img)[0], 0), interpolation="nearest")
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        ax.set_yticks([])
    ax_wave, ax_mel = axes[n_img], axes[n_img + 1]
    ax_wave.plot(np.arange(y.size) / sr, y, color="0.2", linewidth=0.5)
    ax_wave.set_ylabel("waveform", rotation=0, ha="right", va="center")
    ax_wave.set_yticks([])
    hop = max(1, sr // 100)
    n_fft = 1 << min(11, max(4, int(np.log2(sr * 0.032))))  # ~32 ms (512 at 16 kHz)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
    db = librosa.power_to_db(mel, ref=np.max)
    # librosa's frames are centred (center=True): column i is the window around sample i * hop, so it spans
    # (i -+ 1/2) * hop / sr s. (The y-t columns are mesh frames k, sampled at their centres (k + 1/2) / fps, so
    # their image spans 0 .. T / fps.)
    ax_mel.imshow(db, origin="lower", aspect="auto", cmap="magma",
                  extent=(-0.5 * hop / sr, (db.shape[1] - 0.5) * hop / sr, 0, n_mels))
    ax_mel.set_ylabel("mel", rotation=0, ha="right", va="center")
    ax_mel.set_yticks([])
    if segments is not None:
        ax_ph = axes[-1]
        ax_ph.set_ylim(0, 1)
        ax_ph.set_yticks([])
        ax_ph.set_ylabel("phonemes", rotation=0, ha="right", va="center")
        k = 0
        for start, stop, name in segments:
            ax_ph.axvline(start, color="0.7", linewidth=0.5)
            if name in silence:
                continue
            ax_ph.text((start + stop) / 2, 0.7 if k % 2 == 0 else 0.3, name, ha="center", va="center",
                       fontsize=7, clip_on=True)
            k += 1
    axes[-1].set_xlim(0, duration)
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig
