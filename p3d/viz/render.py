"""Off-screen rendering of vertex sequences (pyvista/VTK) to frames, PNG files and mp4 with audio.

- :func:`render_frames`: (T, V, 3) vertices + (F, 3) faces -> (T, H, W, 3) uint8 frames, with one
  camera (:class:`Camera`, frontal: looking along -z with y up, the FLAME/VOCASET and
  :mod:`p3d.synth.face` convention) and one lighting rig for every frame. By default the camera is
  fitted to the first frame; pass ``camera=frontal_camera(template)`` (or the template itself) to
  frame every sequence of a topology identically.
- :func:`write_png_frames`, :func:`write_mp4`: atomic writers. The mp4 is H.264 yuv420p through the
  ffmpeg binary that ``imageio-ffmpeg`` ships, with the audio muxed in as AAC when given; a file
  ffmpeg failed to complete raises :class:`VideoWriteError` and is not kept.
- Blank frames: the renderers of the baselines are known to write black videos when OpenGL fails
  (e.g. pyrender under OSMesa/EGL). Every frame is checked (:func:`check_frames`): a frame that is
  (nearly) uniform, (nearly) black, or in which the mesh covers less than ``min_coverage`` of the
  pixels raises :class:`BlankFrameError`, and nothing is written.
- :func:`probe_mp4`: frame count, duration and streams of an mp4 (parses ``ffmpeg -i``; ffprobe is
  not shipped by imageio-ffmpeg).

Measured on the project's 2-core CPU machine (EGL + Mesa llvmpipe), 512x512, after the plotter's
set-up (0.1-1 s): ~31 ms CPU (~42 ms wall) per frame of the 468-vertex synthetic face, ~50 ms CPU per
frame of the 7152-vertex one.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError

log = logging.getLogger(__name__)

BACKGROUND = (255, 255, 255)
"""Background colour (RGB uint8) of :func:`render_frames`."""
SKIN = (0.87, 0.76, 0.68)
"""Default mesh colour (RGB in [0, 1])."""
MOUTH_CAVITY = (0.10, 0.04, 0.04)
"""Colour of the backdrop behind the lips (``mouth_vertices``), so an open mouth looks dark."""


class BlankFrameError(RuntimeError):
    """A rendered frame is black, uniform or nearly empty: rendering failed; nothing was written."""


class VideoWriteError(RuntimeError):
    """ffmpeg could not encode or mux the video (its own messages are on stderr): nothing was written."""


@dataclasses.dataclass(frozen=True)
class Camera:
    """A pinhole camera: ``position``, ``focal_point`` and ``view_up`` in mesh units, vertical
    ``view_angle`` in degrees."""

    position: tuple[float, float, float]
    focal_point: tuple[float, float, float]
    view_up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    view_angle: float = 20.0


def frontal_camera(reference: np.ndarray, size: tuple[int, int] = (512, 512), margin: float = 1.15,
                   view_angle: float = 20.0) -> Camera:
    """Frontal camera (looking along -z, y up) that fits ``reference`` (V, 3) into a ``size`` = (W, H)
    image with ``margin`` (1 = touching the borders)."""
    ref = _as_points(reference, "reference")
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    centre = (lo + hi) / 2
    half_w, half_h = (hi - lo)[:2] / 2
    aspect = size[0] / size[1]
    half_view = max(half_h, half_w / aspect, 1e-9) * margin
    distance = half_view / math.tan(math.radians(view_angle) / 2) + (hi[2] - centre[2])
    position = (float(centre[0]), float(centre[1]), float(centre[2] + distance))
    return Camera(position, tuple(float(c) for c in centre), (0.0, 1.0, 0.0), float(view_angle))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, (V, 3) float64, for (V, 3) vertices and (F, 3) faces."""
    v = np.asarray(vertices, dtype=np.float64)
    tri = v[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = np.zeros_like(v)
    for k in range(3):
        for axis in range(3):
            n[:, axis] += np.bincount(faces[:, k], weights=fn[:, axis], minlength=len(v))
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return n / np.where(norm > 0, norm, 1.0)


def check_frames(frames: np.ndarray, background: Sequence[int] = BACKGROUND, min_coverage: float = 0.01,
                 first_index: int = 0) -> None:
    """Raise :class:`BlankFrameError` if any (H, W, 3) frame of ``frames`` (T, H, W, 3) is blank.

    Blank: nearly uniform (value range < 8), nearly black (mean < 8), or fewer than
    ``min_coverage`` of the pixels differ from ``background`` (by more than 8 in some channel).
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    bg = np.asarray(background, dtype=np.int16)
    for t, f in enumerate(frames, start=first_index):
        what = "frame"
        f16 = f.astype(np.int16)
        if int(f16.max()) - int(f16.min()) < 8:
            raise BlankFrameError(f"{what} {t} is uniform (value {int(f16.min())}): rendering failed")
        if f16.mean() < 8:
            raise BlankFrameError(f"{what} {t} is black (mean {f16.mean():.1f}): rendering failed")
        coverage = float(np.mean(np.abs(f16 - bg).max(axis=-1) > 8))
        if coverage < min_coverage:
            raise BlankFrameError(f"{what} {t}: the mesh covers {coverage:.2%} of the image "
                                  f"(< {min_coverage:.0%}): empty frame, check the camera")


def iter_frames(vertices: np.ndarray, faces: np.ndarray, *, size: tuple[int, int] = (512, 512),
                camera: Camera | np.ndarray | None = None, colors: Any = None,
                scalars: np.ndarray | None = None, cmap: str | None = None,
                clim: tuple[float, float] | None = None, check: bool = True, min_coverage: float = 0.01,
                mouth_vertices: Sequence[int] | np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Render frame by frame (see :func:`render_frames`); yields (H, W, 3) uint8 arrays."""
    verts = _as_sequence(vertices)
    tris = _as_faces(faces, verts.shape[1])
    size = _as_size(size)
    if camera is None:
        camera = frontal_camera(verts[0], size)
    elif not isinstance(camera, Camera):
        camera = frontal_camera(np.asarray(camera), size)
    scal = None if scalars is None else np.asarray(scalars, dtype=np.float64)
    if scal is not None:
        if scal.shape == (verts.shape[1],):
            scal = np.broadcast_to(scal, verts.shape[:2])
        if scal.shape != verts.shape[:2] or not np.all(np.isfinite(scal)):
            raise InputError(f"scalars must be finite with shape (V,) or (T, V) = {verts.shape[:2]}, "
                             f"got {scal.shape}")
        if clim is None:
            lo, hi = float(scal.min()), float(scal.max())
            clim = (lo, hi if hi > lo else lo + 1.0)

    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    cells = np.hstack([np.full((len(tris), 1), 3, dtype=np.int64), tris]).ravel()
    mesh = pv.PolyData(verts[0].astype(np.float64), cells)
    mesh.point_data["Normals"] = vertex_normals(verts[0], tris)
    mesh.point_data.active_normals_name = "Normals"
    plotter = pv.Plotter(off_screen=True, window_size=list(size), lighting="none")
    try:
        plotter.set_background([c / 255 for c in BACKGROUND])
        kwargs: dict[str, Any] = dict(smooth_shading=False, specular=0.15, specular_power=20.0,
                                      ambient=0.15, diffuse=0.85, show_scalar_bar=False)
        if scal is not None:
            mesh.point_data["scalars"] = scal[0]
            kwargs.update(scalars="scalars", cmap=cmap or "viridis", clim=clim)
        elif colors is not None and np.ndim(colors) == 2:
            rgb = np.asarray(colors, dtype=np.float64)
            if rgb.shape != (verts.shape[1], 3):
                raise InputError(f"colors must be one colour or (V, 3) = ({verts.shape[1]}, 3), "
                                 f"got {rgb.shape}")
            mesh.point_data["rgb"] = (rgb if rgb.max() > 1.0 else rgb * 255).clip(0, 255).astype(np.uint8)
            kwargs.update(scalars="rgb", rgb=True)
        else:
            kwargs.update(color=SKIN if colors is None else colors)
        actor = plotter.add_mesh(mesh, **kwargs)
        actor.prop.interpolation = "Phong"  # uses our per-frame vertex normals
        backdrop = None
        if mouth_vertices is not None:
            mouth_idx = np.asarray(mouth_vertices, dtype=np.int64).ravel()
            if mouth_idx.size < 2 or mouth_idx.min() < 0 or mouth_idx.max() >= verts.shape[1]:
                raise InputError(f"mouth_vertices must be >= 2 indices in [0, {verts.shape[1]})")
            backdrop = pv.PolyData(_backdrop(verts[0], mouth_idx), np.array([4, 0, 1, 2, 3]))
            plotter.add_mesh(backdrop, color=MOUTH_CAVITY, lighting=False)
        plotter.camera.position = camera.position
        plotter.camera.focal_point = camera.focal_point
        plotter.camera.up = camera.view_up
        plotter.camera.view_angle = camera.view_angle
        # Lights fixed in the world relative to the camera: a key light above-left, a fill light
        # right, and a weak headlight; the same for every frame and every sequence.
        pos, foc = np.array(camera.position), np.array(camera.focal_point)
        dist = float(np.linalg.norm(pos - foc))
        for offset, intensity in (((-0.6, 0.6, 1.0), 0.65), ((0.8, 0.1, 0.8), 0.3)):
            light = pv.Light(position=tuple(foc + dist * np.array(offset)), focal_point=tuple(foc),
                             intensity=intensity, light_type="scene light")
            plotter.add_light(light)
        plotter.add_light(pv.Light(light_type="headlight", intensity=0.25))
        plotter.reset_camera_clipping_range()
        for t in range(len(verts)):
            if t > 0:
                mesh.points[:] = verts[t]
                mesh.point_data["Normals"][:] = vertex_normals(verts[t], tris)
                if scal is not None:
                    mesh.point_data["scalars"][:] = scal[t]
                mesh.Modified()
                if backdrop is not None:
                    backdrop.points[:] = _backdrop(verts[t], mouth_idx)
                    backdrop.Modified()
            plotter.render()
            frame = np.ascontiguousarray(plotter.screenshot(return_img=True)[..., :3], dtype=np.uint8)
            if check:
                check_frames(frame[None], min_coverage=min_coverage, first_index=t)
            yield frame
    finally:
        plotter.close()


def render_frames(vertices: np.ndarray, faces: np.ndarray, *, size: tuple[int, int] = (512, 512),
                  camera: Camera | np.ndarray | None = None, colors: Any = None,
                  scalars: np.ndarray | None = None, cmap: str | None = None,
                  clim: tuple[float, float] | None = None, check: bool = True,
                  min_coverage: float = 0.01,
                  mouth_vertices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Render (T, V, 3) vertices with (F, 3) faces off-screen: (T, H, W, 3) uint8, ``size`` = (W, H).

    ``camera``: a :class:`Camera`, a (V, 3) reference mesh to fit a frontal camera to, or None (fit
    to the first frame). ``colors``: one colour (name or RGB) or per-vertex (V, 3) RGB (0-1 or
    0-255). ``scalars``: (V,) or (T, V) values coloured with ``cmap`` over ``clim`` (default: their
    global range, fixed across frames). ``check``: raise :class:`BlankFrameError` on a blank frame.
    ``mouth_vertices``: lip vertex indices; a dark quad (:data:`MOUTH_CAVITY`) is placed behind them
    in every frame, so the open mouth looks dark instead of showing the background.
    """
    return np.stack(list(iter_frames(vertices, faces, size=size, camera=camera, colors=colors,
                                     scalars=scalars, cmap=cmap, clim=clim, check=check,
                                     min_coverage=min_coverage, mouth_vertices=mouth_vertices)))


def write_png_frames(frames_or_vertices: np.ndarray, out_dir: str | os.PathLike[str], *,
                     faces: np.ndarray | None = None, prefix: str = "frame",
                     **render_kwargs: Any) -> list[Path]:
    """Write ``{prefix}_{t:05d}.png`` for each frame into ``out_dir``, each atomically.

    ``frames_or_vertices``: (T, H, W, 3) uint8 frames (checked for blank frames first) or (T, V, 3)
    vertices rendered with ``faces`` and ``render_kwargs`` (see :func:`render_frames`).
    """
    import imageio.v3 as iio

    from p3d.atomic import atomic_path

    frames = _frames_from(frames_or_vertices, faces, render_kwargs)
    out = Path(out_dir)
    paths = []
    for t, frame in enumerate(frames):
        path = out / f"{prefix}_{t:05d}.png"
        with atomic_path(path) as tmp:
            iio.imwrite(tmp, frame, extension=".png")
        paths.append(path)
    return paths


def write_mp4(frames_or_vertices: np.ndarray, path: str | os.PathLike[str], fps: float,
              audio_path: str | os.PathLike[str] | None = None, *, faces: np.ndarray | None = None,
              quality: float = 8.0, warn_audio_length: bool = True, **render_kwargs: Any) -> Path:
    """Write an H.264 (yuv420p) mp4 at ``fps``, with ``audio_path`` muxed in as AAC, atomically.

    ``frames_or_vertices``: (T, H, W, 3) uint8 frames or (T, V, 3) vertices rendered with ``faces``
    and ``render_kwargs`` (streamed: frames are not all held in memory). Every frame is checked for
    blankness first; on any error nothing is left at ``path``. Odd frame sizes are padded by one
    pixel (yuv420p needs even sizes). ``quality``: imageio-ffmpeg's 0-10 scale. ``warn_audio_length``: log a
    warning when the audio's duration differs from the video's by more than a frame (False: the caller checked).

    The written file is checked before it takes ``path``: it must hold every frame sent (and an audio stream
    when ``audio_path`` is given), else :class:`VideoWriteError`. imageio-ffmpeg does not look at ffmpeg's exit
    status, so a muxing failure (e.g. at a frame rate the mp4 muxer cannot represent) left a file without a video
    stream under ``path``, and an ffmpeg that quit at start (e.g. on an audio track AAC cannot encode) a
    broken-pipe ``OSError``.
    """
    import imageio_ffmpeg

    from p3d.atomic import atomic_path

    ffmpeg_exe()
    if isinstance(fps, (bool, np.bool_)) or not isinstance(fps, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(fps) and 0 < fps <= 240):
        raise InputError(f"fps must be a frame rate in (0, 240], got {fps!r}")
    fps = float(fps)
    if audio_path is not None:
        audio_path = Path(audio_path)
        if not audio_path.is_file():
            raise InputError(f"audio file {audio_path} does not exist")
        import soundfile as sf

        try:
            audio_samples = sf.info(str(audio_path)).frames
        except Exception:  # a format soundfile does not read: ffmpeg may, and the written file is checked
            audio_samples = None
        if audio_samples == 0:  # ffmpeg writes no audio stream for it
            raise InputError(f"audio file {audio_path} holds no samples")
    frames = _frames_from(frames_or_vertices, faces, render_kwargs)
    path = Path(path)
    first = next(frames, None)
    if first is None:
        raise InputError("write_mp4: no frames")
    height, width = first.shape[:2]
    pad = (height % 2, width % 2)
    n = 0
    with atomic_path(path, suffix=".mp4") as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (width + pad[1], height + pad[0]), fps=float(fps), codec="libx264",
            pix_fmt_in="rgb24", pix_fmt_out="yuv420p", quality=quality, macro_block_size=1,
            ffmpeg_log_level="error", output_params=["-movflags", "+faststart"],
            audio_path=str(audio_path) if audio_path is not None else None,
            audio_codec="aac" if audio_path is not None else None)
        writer.send(None)  # start ffmpeg
        try:
            for frame in _chain(first, frames):
                if frame.shape[:2] != (height, width):
                    raise InputError(f"write_mp4: frame {n} has size {frame.shape[:2]}, "
                                     f"expected {(height, width)}")
                if any(pad):
                    frame = np.pad(frame, ((0, pad[0]), (0, pad[1]), (0, 0)), mode="edge")
                try:
                    writer.send(np.ascontiguousarray(frame))
                except OSError:  # ffmpeg has exited: imageio-ffmpeg's broken pipe, its message the command line
                    raise VideoWriteError(f"ffmpeg quit after {n} frame(s) of {path} (its messages, if any, above); "
                                          "nothing written") from None
                n += 1
        finally:
            writer.close()
        _check_written(tmp, path, n, audio_path is not None)
    if audio_path is not None and warn_audio_length:
        import soundfile as sf

        audio_s = sf.info(str(audio_path)).duration
        if abs(audio_s - n / fps) > 1.0 / fps:
            log.warning("write_mp4 %s: audio lasts %.3f s but the %d frames last %.3f s", path,
                        audio_s, n, n / fps)
    return path


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary that writes the mp4s (imageio-ffmpeg's, or ``IMAGEIO_FFMPEG_EXE``).

    Raises :class:`InputError` (one line: what is missing and how to get it) when there is none or
    it cannot be executed, so callers can check before rendering.
    """
    import imageio_ffmpeg

    fix = ("reinstall imageio-ffmpeg (`.venv/bin/pip install --force-reinstall -c constraints.txt "
           "imageio-ffmpeg`) or set IMAGEIO_FFMPEG_EXE to an ffmpeg binary")
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        raise InputError(f"no ffmpeg binary found to write the video: {fix}") from None
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        raise InputError(f"ffmpeg {exe} is missing or not executable: {fix}")
    return exe


def probe_mp4(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Frame count, duration and codecs of a video file.

    Returns ``{"n_frames", "duration_s", "video_codec", "audio_codec" (None if no audio stream),
    "width", "height"}`` from ``ffmpeg -i`` (stream list) and imageio-ffmpeg's frame count.
    """
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise InputError(f"video file {path} does not exist")
    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True, check=False)
    text = proc.stderr
    video = re.search(r"Stream #\S+.*?: Video: (\w+).*?, (\d+)x(\d+)", text)
    audio = re.search(r"Stream #\S+.*?: Audio: (\w+)", text)
    if video is None:
        raise InputError(f"{path} has no video stream (ffmpeg: {text.strip().splitlines()[-1:]})")
    n_frames, secs = imageio_ffmpeg.count_frames_and_secs(str(path))
    return {"n_frames": int(n_frames), "duration_s": float(secs), "video_codec": video.group(1),
            "audio_codec": audio.group(1) if audio else None, "width": int(video.group(2)),
            "height": int(video.group(3))}


# --------------------------------------------------------------------------------------------------

def _check_written(tmp: Path, path: Path, n_frames: int, audio: bool) -> None:
    """Raise :class:`VideoWriteError` unless ``tmp`` (the mp4 about to become ``path``) holds ``n_frames`` video
    frames and, if ``audio``, an audio stream."""
    try:
        info = probe_mp4(tmp)
    except (InputError, RuntimeError):  # no video stream / no frame count: the file is not a playable video
        info = None
    if info is None or info["n_frames"] != n_frames or (audio and info["audio_codec"] is None):
        found = "no readable video" if info is None else \
            f"{info['n_frames']} frames{'' if not audio or info['audio_codec'] else ' and no audio stream'}"
        raise VideoWriteError(f"ffmpeg failed to write {path} (its messages, if any, above): {found} where "
                              f"{n_frames} frames{' with audio' if audio else ''} were sent; nothing written")


def _backdrop(v: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(4, 3) corners of a quad behind the mouth: the x-y bounding box of ``v[idx]`` (10% margin),
    5% of the mouth width (the x extent of ``v[idx]``, in mesh units) behind the rearmost of those vertices."""
    pts = v[idx]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.1 * (hi - lo)[:2]
    z = lo[2] - max(0.05 * float(hi[0] - lo[0]), 1e-9)
    (x0, y0), (x1, y1) = lo[:2] - pad, hi[:2] + pad
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=np.float64)


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _frames_from(data: np.ndarray, faces: np.ndarray | None,
                 render_kwargs: dict[str, Any]) -> Iterator[np.ndarray]:
    arr = np.asarray(data)
    if arr.ndim == 4 and arr.shape[-1] == 3 and arr.dtype == np.uint8:
        if faces is not None or render_kwargs:
            raise InputError("frames given: faces and render options apply to vertices only")
        if len(arr) == 0:
            raise InputError("no frames")
        check_frames(arr)
        return iter(arr)
    if faces is None:
        raise InputError(f"expected (T, H, W, 3) uint8 frames, or (T, V, 3) vertices with faces; got an "
                         f"array of shape {arr.shape} and dtype {arr.dtype} without faces")
    return iter_frames(arr, faces, **render_kwargs)


def _as_points(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or len(arr) == 0:
        raise InputError(f"{name} must have shape (V, 3), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or infinite values")
    return arr


def _as_sequence(vertices: np.ndarray) -> np.ndarray:
    v = np.asarray(vertices)
    if v.ndim == 2:
        v = v[None]
    if v.ndim != 3 or v.shape[-1] != 3 or v.shape[0] == 0 or v.shape[1] == 0:
        raise InputError(f"vertices must have shape (T, V, 3), got {v.shape}")
    if not np.issubdtype(v.dtype, np.floating) or not np.all(np.isfinite(v)):
        raise InputError("vertices must be finite floating-point values (NaN or inf found, or wrong dtype)")
    return v


def _as_faces(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    f = np.asarray(faces)
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0 or not np.issubdtype(f.dtype, np.integer):
        raise InputError(f"faces must be a non-empty (F, 3) integer array, "
                         f"got shape {f.shape}, dtype {f.dtype}")
    if f.min() < 0 or f.max() >= n_vertices:
        raise InputError(f"faces index vertices outside [0, {n_vertices}): min {f.min()}, max {f.max()}")
    return f.astype(np.int64)


def _as_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2 or any(int(s) != s or not 16 <= s <= 8192 for s in size):
        raise InputError(f"size must be (width, height) in pixels, 16-8192, got {size!r}")
    return int(size[0]), int(size[1])
