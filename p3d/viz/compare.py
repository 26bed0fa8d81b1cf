"""Side-by-side rendering of vertex sequences of one topology (e.g. GT / baseline / + perceptual loss).

One panel per sequence, all with the same frontal camera (fitted to the bounding box of every frame
of every sequence), the same lights and mesh colour as :mod:`p3d.viz.render`, a caption strip above
each panel, optional highlighting of regions (``"lips"``, any topology region) and of the MTM lip
vertices (``"mtm"``, drawn as dots), and optionally the per-vertex error against a reference
sequence as a colour map (``error_against``: ||v_k(t) - v_ref(t)||, in the meshes' units, one
colour scale for all panels and frames).

- :class:`SideBySide`: a persistent off-screen renderer (one pyvista plotter per panel) with random
  access to frames (``frame(t)``), used by :func:`p3d.viz.inspector.inspect` (slider, play) and by
  :func:`render_comparison`;
- :func:`render_comparison`: the mp4 of ``p3d render``, audio muxed in (:func:`p3d.viz.render.write_mp4`);
- helpers shared with the inspector: :func:`as_sequences` (validation), :func:`lip_distances` (the
  MTM lip distance d(t) = ||v_upper(t) - v_lower(t)||, paper Sec. E.1), :func:`key_frames`,
  :func:`vertex_errors`, :func:`mouth_opening`.

Every panel of every frame is checked for blankness (:func:`p3d.viz.render.check_frames`): a black,
uniform or empty panel raises :class:`p3d.viz.render.BlankFrameError` naming the panel.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError, whole_number
from p3d.io import pcm_to_float
from p3d.progress import show_progress
from p3d.topology import Topology, vertex_indices
from p3d.viz.render import (BACKGROUND, MOUTH_CAVITY, SKIN, BlankFrameError, Camera, _backdrop,
                            check_frames, frontal_camera, vertex_normals, write_mp4)

log = logging.getLogger(__name__)

REGION_COLORS: tuple[tuple[float, float, float], ...] = (
    (0.86, 0.36, 0.36), (0.35, 0.55, 0.85), (0.35, 0.70, 0.40), (0.90, 0.65, 0.20))
"""Colours of highlighted regions, in the order given (RGB in [0, 1])."""
MTM_COLOR = (0.10, 0.25, 0.90)
"""Colour of the dots on the MTM upper/lower lip vertices."""
ERROR_CMAP = "YlOrRd"
"""Colour map of the per-vertex error (pale = no error, so the face still looks like a face)."""
DEFAULT_HIGHLIGHT: tuple[str, ...] = ("lips", "mtm")

AudioLike = str | os.PathLike[str] | tuple[np.ndarray, int]
SequencesLike = Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------
def as_sequences(sequences: SequencesLike, labels: Sequence[str] | None = None, *,
                 truncate: bool = False) -> dict[str, np.ndarray]:
    """Validate sequences into ``{label: (T, V, 3) float64}``, same V and T for all.

    ``sequences``: ``{label: array}``, a list of arrays, or one array; arrays are (T, V, 3) or
    (T, V*3) and finite. ``labels`` name list items (default ``"seq 0"``, ``"seq 1"``, ...) or
    replace the keys of a dict. Different frame counts raise :class:`InputError`, unless
    ``truncate``: then every sequence is cut to the shortest, with a warning.
    """
    from p3d.io import as_frames

    if isinstance(sequences, Mapping):
        names = [str(k) for k in sequences]
        arrays = list(sequences.values())
    else:
        if isinstance(sequences, np.ndarray) and sequences.ndim in (2, 3) and sequences.dtype != object:
            arrays = [sequences]
        else:
            arrays = list(sequences)
        names = [f"seq {i}" for i in range(len(arrays))]
    if not arrays:
        raise InputError("sequences: none given")
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) != len(arrays):
            raise InputError(f"labels: {len(labels)} given for {len(arrays)} sequences")
        names = labels
    if any(not n.strip() for n in names) or len(set(names)) != len(names):
        raise InputError(f"labels must be non-empty and unique, got {names}")
    out: dict[str, np.ndarray] = {}
    for name, arr in zip(names, arrays):
        out[name] = np.asarray(as_frames(np.asarray(arr), what=f"sequence {name!r}"), dtype=np.float64)
    n_verts = {k: v.shape[1] for k, v in out.items()}
    if len(set(n_verts.values())) > 1:
        raise InputError(f"sequences have different vertex counts: {n_verts}")
    n_frames = {k: v.shape[0] for k, v in out.items()}
    if len(set(n_frames.values())) > 1:
        if not truncate:
            raise InputError(f"sequences have different frame counts: {n_frames} "
                             "(cut them to a common length first)")
        shortest = min(n_frames.values())
        log.warning("sequences have different frame counts %s: all cut to the shortest, %d frames",
                    n_frames, shortest)
        out = {k: v[:shortest] for k, v in out.items()}
    return out


def resolve_topology(topology: Topology | str | os.PathLike[str] | None, n_vertices: int) -> Topology | None:
    """``topology`` (a :class:`Topology` or a :func:`p3d.topology.load_topology` spec), checked
    against ``n_vertices``; None stays None."""
    if topology is None:
        return None
    from p3d.topology import load_topology

    topo = load_topology(topology)
    if topo.n_vertices != n_vertices:
        raise InputError(f"topology {topo.name!r} has {topo.n_vertices} vertices, the sequences have {n_vertices}")
    return topo


def resolve_faces(faces: np.ndarray | None, topology: Topology | None, n_vertices: int) -> np.ndarray:
    """(F, 3) int64 triangles: ``faces`` if given, else the topology's; indices checked in [0, V)."""
    if faces is None:
        faces = None if topology is None else topology.faces
        if faces is None:
            raise InputError("faces: none given and the topology has none (pass faces=, or a topology with faces)")
    f = vertex_indices(faces, n_vertices, "faces")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise InputError(f"faces must be a non-empty (F, 3) array of vertex indices, got shape {f.shape}")
    return f


def check_fps(fps: float) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.floating, np.integer)) \
            or not np.isfinite(fps) or not 0 < fps <= 240:
        raise InputError(f"fps must be a frame rate in (0, 240], got {fps!r}")
    return float(fps)


def load_audio_like(audio: AudioLike) -> tuple[np.ndarray, int]:
    """(samples (n,) float32 mono, sample_rate) from a file path or a ``(samples, sample_rate)`` pair.

    Samples are (n,) or (n, channels) (the channel mean is taken); a (channels, n) array (more channels than
    samples) is refused, as :func:`p3d.audio.first_channel` refuses it: its mean over axis 1 was n_channels samples.

    Integer samples are PCM scaled to [-1, 1] by :func:`p3d.io.pcm_to_float` (int16 / 32768; unsigned ones, e.g.
    8-bit WAV as ``scipy.io.wavfile`` reads it, centred on the midpoint first), so the pair read from a PCM file
    gives what :func:`p3d.io.load_audio` gives for that file."""
    if isinstance(audio, (str, os.PathLike)):
        from p3d.io import load_audio

        return load_audio(audio)
    if not isinstance(audio, (tuple, list)) or len(audio) != 2:
        raise InputError("audio must be a file path or a (samples, sample_rate) pair")
    samples, sr = np.asarray(audio[0]), audio[1]
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not 1000 <= sr <= 384_000:
        raise InputError(f"audio sample rate must be an integer in [1000, 384000], got {sr!r}")
    if samples.dtype.kind not in "fiu" or samples.size == 0 or samples.ndim not in (1, 2):
        raise InputError(f"audio samples must be a non-empty (n,) or (n, channels) numeric array, got "
                         f"shape {samples.shape}, dtype {samples.dtype}")
    if samples.ndim == 2 and samples.shape[1] > samples.shape[0]:  # (channels, n), torchaudio.load's layout
        raise InputError(f"audio samples: expected (n_samples, n_channels), got shape {samples.shape} "
                         f"(transpose a (channels, samples) array)")
    samples = np.asarray(pcm_to_float(samples, "audio samples"), dtype=np.float32)
    if not np.all(np.isfinite(samples)):
        raise InputError("audio samples hold NaN or inf")
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return samples, int(sr)


def wav_bytes(samples: np.ndarray, sr: int) -> bytes:
    """16-bit PCM WAV file contents of mono float ``samples`` in [-1, 1] (clipped)."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------
# Derived signals
# ------------------------------------------------------------------------------------------------
def lip_distances(sequences: Mapping[str, np.ndarray], topology: Topology | None) -> dict[str, np.ndarray] | None:
    """{label: (T,) upper-lower lip distance} with the topology's MTM vertices (paper Sec. E.1,
    step 1 of MTM), in the meshes' units; None when the topology defines no MTM vertices."""
    if topology is None or topology.mtm_upper is None or topology.mtm_lower is None:
        return None
    from p3d.metrics.mtm import lip_distance

    return {k: lip_distance(v, topology.mtm_upper, topology.mtm_lower) for k, v in sequences.items()}


def vertex_errors(sequences: Mapping[str, np.ndarray], reference: str) -> dict[str, np.ndarray]:
    """{label: (T, V) per-vertex Euclidean error ||v(t) - v_ref(t)||} for every sequence but ``reference``."""
    if reference not in sequences:
        raise InputError(f"error_against={reference!r} is not one of the labels {list(sequences)}")
    ref = sequences[reference]
    return {k: np.linalg.norm(v - ref, axis=-1) for k, v in sequences.items() if k != reference}


def key_frames(distance: np.ndarray | None, n_frames: int, n: int = 4) -> np.ndarray:
    """Up to ``n`` sorted distinct frame indices: the widest and narrowest lip opening of
    ``distance`` (T,) (if given), then frames as far as possible from those already picked (the
    first and last frame first when ``distance`` is None), so the picks spread over the clip."""
    n = min(n, n_frames)
    picks: list[int] = []
    if distance is not None and len(distance):
        picks = list(dict.fromkeys([int(np.argmax(distance)), int(np.argmin(distance))]))[:n]
    frames = np.arange(n_frames)
    while len(picks) < n:
        if not picks:
            picks.append(0)
            continue
        gap = np.min(np.abs(frames[:, None] - np.asarray(picks)[None, :]), axis=1)
        picks.append(int(np.argmax(gap)))
    return np.array(sorted(picks), dtype=np.int64)


def mouth_opening(faces: np.ndarray, topology: Topology | None) -> np.ndarray | None:
    """Vertices on the mouth opening: the lip-region vertices on the mesh boundary (edges of one
    triangle), or None (no ``lips`` region, or fewer than 3 such vertices)."""
    if topology is None or "lips" not in topology.regions:
        return None
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    boundary = np.unique(uniq[counts == 1])
    idx = np.intersect1d(boundary, topology.regions["lips"])
    return idx if idx.size >= 3 else None


def highlight_spec(highlight: Sequence[str] | str | None,
                   topology: Topology | None) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """(regions to colour {name: indices}, MTM vertex indices to mark or None) for ``highlight``
    names (``"mtm"`` or region names). Names the topology lacks are skipped with a warning."""
    if highlight is None:
        return {}, None
    names = [highlight] if isinstance(highlight, str) else list(highlight)
    if topology is None:
        if names and tuple(names) != DEFAULT_HIGHLIGHT:
            log.warning("highlight %s: no topology given, nothing highlighted", names)
        return {}, None
    regions: dict[str, np.ndarray] = {}
    points = None
    for name in names:
        if name == "mtm":
            if topology.mtm_upper is None or topology.mtm_lower is None:
                log.warning("highlight 'mtm': topology %r defines no MTM vertices", topology.name)
            else:
                points = np.array([topology.mtm_upper, topology.mtm_lower], dtype=np.int64)
        elif name in topology.regions:
            regions[name] = topology.regions[name]
        else:
            log.warning("highlight %r: topology %r has no such region (regions: %s)", name, topology.name,
                        ", ".join(sorted(topology.regions)) or "none")
    return regions, points


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------
class _Panel:
    """One persistent off-screen plotter showing one (T, V, 3) sequence; ``render(t)`` -> (H, W, 3).

    The scene (lights, material, camera, mouth backdrop) is the one of :func:`p3d.viz.render.iter_frames`.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, size: int, camera: Camera, *,
                 colors: np.ndarray | None = None, scalars: np.ndarray | None = None,
                 clim: tuple[float, float] | None = None, mouth: np.ndarray | None = None,
                 points: np.ndarray | None = None) -> None:
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
        import pyvista as pv

        self.vertices, self.faces, self.scalars = vertices, faces, scalars
        self.mouth, self.points_idx = mouth, points
        cells = np.hstack([np.full((len(faces), 1), 3, dtype=np.int64), faces]).ravel()
        self.mesh = pv.PolyData(vertices[0].copy(), cells)
        self.mesh.point_data["Normals"] = vertex_normals(vertices[0], faces)
        self.mesh.point_data.active_normals_name = "Normals"
        self.plotter = pv.Plotter(off_screen=True, window_size=[size, size], lighting="none")
        self.plotter.set_background([c / 255 for c in BACKGROUND])
        kwargs: dict[str, Any] = dict(smooth_shading=False, specular=0.15, specular_power=20.0,
                                      ambient=0.15, diffuse=0.85, show_scalar_bar=False)
        if scalars is not None:
            self.mesh.point_data["error"] = scalars[0]
            kwargs.update(scalars="error", cmap=ERROR_CMAP, clim=clim)
        elif colors is not None:
            self.mesh.point_data["rgb"] = (np.asarray(colors) * 255).clip(0, 255).astype(np.uint8)
            kwargs.update(scalars="rgb", rgb=True)
        else:
            kwargs.update(color=SKIN)
        actor = self.plotter.add_mesh(self.mesh, **kwargs)
        actor.prop.interpolation = "Phong"
        self.backdrop = None
        if mouth is not None:
            self.backdrop = pv.PolyData(_backdrop(vertices[0], mouth), np.array([4, 0, 1, 2, 3]))
            self.plotter.add_mesh(self.backdrop, color=MOUTH_CAVITY, lighting=False)
        self.dots = None
        if points is not None:
            self.dots = pv.PolyData(vertices[0][points].copy())
            self.plotter.add_mesh(self.dots, color=MTM_COLOR, render_points_as_spheres=True,
                                  point_size=max(5.0, size / 40), lighting=False)
        cam = self.plotter.camera
        cam.position, cam.focal_point, cam.up = camera.position, camera.focal_point, camera.view_up
        cam.view_angle = camera.view_angle
        pos, foc = np.array(camera.position), np.array(camera.focal_point)
        dist = float(np.linalg.norm(pos - foc))
        for offset, intensity in (((-0.6, 0.6, 1.0), 0.65), ((0.8, 0.1, 0.8), 0.3)):
            self.plotter.add_light(pv.Light(position=tuple(foc + dist * np.array(offset)), focal_point=tuple(foc),
                                            intensity=intensity, light_type="scene light"))
        self.plotter.add_light(pv.Light(light_type="headlight", intensity=0.25))
        self.plotter.reset_camera_clipping_range()
        self._t = 0

    def render(self, t: int) -> np.ndarray:
        if t != self._t:
            v = self.vertices[t]
            self.mesh.points[:] = v
            self.mesh.point_data["Normals"][:] = vertex_normals(v, self.faces)
            if self.scalars is not None:
                self.mesh.point_data["error"][:] = self.scalars[t]
            self.mesh.Modified()
            if self.backdrop is not None:
                self.backdrop.points[:] = _backdrop(v, self.mouth)
                self.backdrop.Modified()
            if self.dots is not None:
                self.dots.points[:] = v[self.points_idx]
                self.dots.Modified()
            self._t = t
        self.plotter.render()
        return np.ascontiguousarray(self.plotter.screenshot(return_img=True)[..., :3], dtype=np.uint8)

    def close(self) -> None:
        self.plotter.close()


def _whole_number(x: object) -> bool:
    """A Python or numpy integer, or a float without a fraction; not a boolean (True was panel / frame 1)."""
    return whole_number(x) is not None


class SideBySide:
    """Aligned sequences rendered side by side with one camera; frames by index.

    Args:
        sequences: ``{label: (T, V, 3)}`` (or a list, see :func:`as_sequences`), same V and T.
        faces: (F, 3) triangles (default: the topology's).
        topology: for highlights, the mouth backdrop and lip distances (optional).
        size: panel width = height in pixels.
        highlight: ``"lips"``, ``"mtm"``, other region names, or None.
        error_against: label of the reference: the other panels show the per-vertex error.
        captions: draw each label in a strip above its panel.
        check: raise :class:`BlankFrameError` on a blank panel.

    Use as a context manager (or call :meth:`close`): each panel holds an off-screen GL context.
    """

    def __init__(self, sequences: SequencesLike, faces: np.ndarray | None = None, *,
                 topology: Topology | str | None = None, labels: Sequence[str] | None = None,
                 size: int = 384, highlight: Sequence[str] | str | None = DEFAULT_HIGHLIGHT,
                 error_against: str | None = None, captions: bool = True, check: bool = True,
                 min_coverage: float = 0.01) -> None:
        self.sequences = as_sequences(sequences, labels)
        first = next(iter(self.sequences.values()))
        self.n_frames, n_vertices = first.shape[:2]
        self.topology = resolve_topology(topology, n_vertices)
        self.faces = resolve_faces(faces, self.topology, n_vertices)
        whole = whole_number(size, 32)  # int("big") was a ValueError traceback, int(None) a TypeError
        if whole is None or whole > 4096:
            raise InputError(f"size must be a panel size in pixels, 32-4096, got {size!r}")
        self.size = whole
        self.labels = list(self.sequences)
        self.error_against = error_against
        self.errors = vertex_errors(self.sequences, error_against) if error_against is not None else {}
        hi = max((float(e.max()) for e in self.errors.values()), default=0.0)
        self.error_clim = (0.0, hi if hi > 0 else 1.0)
        self.check, self.min_coverage = check, min_coverage
        regions, points = highlight_spec(highlight, self.topology)
        colors = None
        if regions:
            from p3d.viz.face_figures import highlight_colors

            colors = highlight_colors(n_vertices, regions, palette=REGION_COLORS, base=SKIN)
        mouth = mouth_opening(self.faces, self.topology)
        every = np.concatenate([s.reshape(-1, 3) for s in self.sequences.values()])
        box = np.stack([every.min(axis=0), every.max(axis=0)])
        self.camera = frontal_camera(box, (self.size, self.size), margin=1.1)
        self.captions = self._caption_texts() if captions else None
        self.caption_height = max(14, self.size // 14) if captions else 0
        self._panels: list[_Panel] = []
        try:
            for label, seq in self.sequences.items():
                err = self.errors.get(label)
                self._panels.append(_Panel(seq, self.faces, self.size, self.camera,
                                           colors=None if err is not None else colors, scalars=err,
                                           clim=self.error_clim, mouth=mouth, points=points))
        except BaseException:
            self.close()
            raise

    def _caption_texts(self) -> list[str]:
        out = []
        for label in self.labels:
            if label in self.errors:
                out.append(f"{label}  (error vs {self.error_against}: 0-{self.error_clim[1]:.3g})")
            else:
                out.append(label)
        return out

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, 3) of :meth:`frame`."""
        return self.size + self.caption_height, self.size * len(self._panels), 3

    def panel(self, index: int, t: int) -> np.ndarray:
        """(size, size, 3) uint8 image of sequence ``index`` (0 .. panels - 1, in ``labels`` order) at frame ``t``
        (checked if ``check``). Both are whole numbers in range: a negative index showed a panel from the end
        (-1 the last), a fractional frame was truncated."""
        if not _whole_number(index) or not 0 <= index < len(self._panels):
            raise InputError(f"panel {index!r} outside [0, {len(self._panels)})")
        if not _whole_number(t) or not 0 <= t < self.n_frames:
            raise InputError(f"frame {t!r} outside [0, {self.n_frames})")
        index, t = int(index), int(t)
        img = self._panels[index].render(t)
        if self.check:
            try:
                check_frames(img[None], min_coverage=self.min_coverage, first_index=t)
            except BlankFrameError as exc:
                raise BlankFrameError(f"panel {self.labels[index]!r}: {exc}") from None
        return img

    def frame(self, t: int) -> np.ndarray:
        """(H, W, 3) uint8: every panel at frame ``t`` side by side, captions above."""
        row = np.concatenate([self.panel(i, t) for i in range(len(self._panels))], axis=1)
        if self.captions is None:
            return row
        strip = caption_strip(self.captions, self.size, self.caption_height)
        return np.concatenate([strip, row], axis=0)

    def frames(self) -> Iterator[np.ndarray]:
        for t in range(self.n_frames):
            yield self.frame(t)

    def close(self) -> None:
        for p in self._panels:
            p.close()
        self._panels = []

    def __enter__(self) -> SideBySide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def caption_strip(captions: Sequence[str], panel_width: int, height: int) -> np.ndarray:
    """(height, len(captions) * panel_width, 3) uint8: white, each caption centred over its panel."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (panel_width * len(captions), height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    font_size = max(8, int(height * 0.62))
    for i, text in enumerate(captions):
        font = ImageFont.load_default(size=font_size)
        while draw.textlength(text, font=font) > panel_width - 6 and font_size > 8:  # shrink to fit
            font_size -= 1
            font = ImageFont.load_default(size=font_size)
        w = draw.textlength(text, font=font)
        draw.text((i * panel_width + (panel_width - w) / 2, height / 2), text, fill=(0, 0, 0), font=font,
                  anchor="lm")
        font_size = max(8, int(height * 0.62))
    return np.asarray(img, dtype=np.uint8)


def render_comparison(sequences: SequencesLike, out: str | os.PathLike[str], *, fps: float,
                      faces: np.ndarray | None = None, audio: AudioLike | None = None,
                      topology: Topology | str | None = None, labels: Sequence[str] | None = None,
                      size: int = 384, highlight: Sequence[str] | str | None = DEFAULT_HIGHLIGHT,
                      error_against: str | None = None, truncate: bool = False,
                      progress: bool | None = None, warn_audio_length: bool = True) -> Path:
    """Render aligned sequences side by side to an H.264 mp4 at ``fps``, with ``audio`` muxed in (AAC).

    ``audio``: a file path or ``(samples, sample_rate)``. ``truncate``: cut sequences of different
    lengths to the shortest (warning) instead of raising. Frames are rendered into a temporary
    memory-mapped array (so long clips do not fill the RAM), then encoded by
    :func:`p3d.viz.render.write_mp4`; a blank panel raises :class:`BlankFrameError` and nothing is
    written. ``warn_audio_length``: warn when the audio's duration differs from the video's by more than a
    frame (False: the caller checked, as ``p3d render`` does before rendering). Returns ``out``.
    """
    from tqdm.auto import tqdm

    fps = check_fps(fps)
    seqs = as_sequences(sequences, labels, truncate=truncate)
    audio_path: Path | None = None
    samples = None
    if audio is not None:
        if isinstance(audio, (str, os.PathLike)):
            audio_path = Path(audio)
            if not audio_path.is_file():
                raise InputError(f"audio file {audio_path} does not exist")
        else:
            samples = load_audio_like(audio)
    with tempfile.TemporaryDirectory(prefix="p3d-render-") as tmp:
        if samples is not None:
            audio_path = Path(tmp) / "audio.wav"
            audio_path.write_bytes(wav_bytes(*samples))
        with SideBySide(seqs, faces, topology=topology, size=size, highlight=highlight,
                        error_against=error_against) as scene:
            frames = np.lib.format.open_memmap(Path(tmp) / "frames.npy", mode="w+", dtype=np.uint8,
                                               shape=(scene.n_frames, *scene.shape))
            for t in tqdm(range(scene.n_frames), desc="render", unit="frame", disable=not show_progress(progress)):
                frames[t] = scene.frame(t)
            frames.flush()
        return write_mp4(frames, out, fps, audio_path, warn_audio_length=warn_audio_length)
