"""Look at vertex sequences with their sound: an interactive side-by-side viewer for JupyterLab, and a
static key-frame figure where no widget front-end exists (papermill, nbval, nbconvert, scripts).

``inspect(sequences, faces=..., fps=..., audio=..., topology=...)`` returns

- in a JupyterLab (or Notebook 7) kernel: an :class:`InspectWidget` (displays itself) with one panel
  per sequence, rendered off-screen by :class:`p3d.viz.compare.SideBySide` with one camera, a frame
  slider, a play/pause button at the data's fps (``ipywidgets.Play`` linked to the slider in the
  browser), an audio player, the lip-distance trace of every sequence (the MTM lip vertices, paper
  Sec. E.1) with a cursor at the current frame, and a button that renders an mp4 with the sound
  muxed in (exactly synchronised; the audio player plays independently of the play button);
- otherwise: a :class:`matplotlib.figure.Figure` of key frames (widest and narrowest lip opening of
  the first, or reference, sequence plus evenly spaced frames; one row per sequence) above the
  waveform and the lip-distance traces, with the key frames marked.

Why off-screen images in an ``ipywidgets.Image`` instead of a pyvista Jupyter backend: the
interactive backends need trame and a server (not installed here, and unreachable from papermill);
the ``static`` backend renders one picture per call anyway. Off-screen EGL rendering needs no
display server and no extra package, works the same in every front-end, and the frames are the same
pixels as ``p3d render``'s video. Frames are cached once rendered; the first press of play renders
every frame first (progress shown; ~30 ms per 320 px panel of the 468-vertex face on 2 CPU cores),
so playback then runs at the data's fps instead of queueing renders.

Mode: ``static=None`` (default) picks the widget only when ipywidgets is importable and the code runs
in a Jupyter kernel whose current request came from a JupyterLab front-end (its execute requests
carry a ``cellId``; papermill, nbval and nbconvert send none). The environment variable
``P3D_STATIC=1`` (or ``0``) forces the static (or widget) mode; ``static=True/False`` overrides both.
"""
from __future__ import annotations

import io
import logging
import os
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError
from p3d.topology import Topology
from p3d.viz.compare import (DEFAULT_HIGHLIGHT, ERROR_CMAP, AudioLike, SequencesLike, SideBySide,
                             as_sequences, check_fps, key_frames, lip_distances, load_audio_like,
                             render_comparison, resolve_faces, resolve_topology, wav_bytes)

log = logging.getLogger(__name__)

TRACE_COLORS = ("tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown",
                "tab:pink", "tab:gray")
CACHE_FRAMES = 4096
"""Rendered frames (JPEG bytes) kept by the widget."""


def widget_frontend() -> bool:
    """True when a widget-capable Jupyter front-end sent the code now running (see module docstring)."""
    env = os.environ.get("P3D_STATIC", "").strip().lower()
    if env in ("1", "true", "yes"):
        return False
    forced = env in ("0", "false", "no")
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None:  # plain python or a terminal IPython: no widgets
        return False
    if forced:
        return True
    try:
        parent = kernel.get_parent("shell") or {}
    except Exception:  # an ipykernel without get_parent
        return False
    return "cellId" in (parent.get("metadata") or {})


def inspect(sequences: SequencesLike, *, faces: np.ndarray | None = None, fps: float,
            audio: AudioLike | None = None, topology: Topology | str | None = None,
            highlight: Sequence[str] | str | None = DEFAULT_HIGHLIGHT, error_against: str | None = None,
            labels: Sequence[str] | None = None, static: bool | None = None, size: int = 320,
            n_key_frames: int = 4) -> InspectWidget | Any:
    """Inspect aligned vertex sequences side by side, with their audio and lip-distance traces.

    Args:
        sequences: ``{label: (T, V, 3)}`` or a list of arrays ((T, V*3) accepted), same T and V.
        faces: (F, 3) triangle vertex indices (default: the topology's faces).
        fps: frame rate of the sequences (frames per second).
        audio: a sound file path or ``(samples, sample_rate)``; optional.
        topology: a :class:`~p3d.topology.Topology` or a :func:`~p3d.topology.load_topology` spec
            (e.g. ``"synth-face"``): regions to highlight and the MTM vertices of the lip distance.
        highlight: ``"lips"``, ``"mtm"`` (the MTM lip vertices as dots), other region names, or None.
        error_against: label of the reference: the others are coloured by per-vertex error.
        labels: names of list items (or replacing the dict keys).
        static: True: the key-frame Figure; False: the widget; None: decided by :func:`widget_frontend`.
        size: panel size in pixels (widget; the static figure uses 256).
        n_key_frames: frames per row of the static figure.

    Returns:
        an :class:`InspectWidget` or a :class:`matplotlib.figure.Figure`.

    Raises:
        InputError: different vertex or frame counts, NaN, faces out of range, unknown reference,
        unreadable audio, a topology of another size.
    """
    seqs = as_sequences(sequences, labels)
    n_vertices = next(iter(seqs.values())).shape[1]
    topo = resolve_topology(topology, n_vertices)
    tris = resolve_faces(faces, topo, n_vertices)
    fps = check_fps(fps)
    sound = load_audio_like(audio) if audio is not None else None
    _check_view_options(seqs, error_against, n_key_frames)
    use_widget = widget_frontend() if static is None else not static
    if use_widget:
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            log.warning("inspect: ipywidgets is not installed; showing the static key-frame figure")
            use_widget = False
    if use_widget:
        return InspectWidget(seqs, faces=tris, fps=fps, audio=sound, topology=topo, highlight=highlight,
                             error_against=error_against, size=size)
    fig = key_frame_figure(seqs, faces=tris, fps=fps, audio=sound, topology=topo, highlight=highlight,
                           error_against=error_against, n_key_frames=n_key_frames)
    _ensure_png_formatter()
    return fig


# ------------------------------------------------------------------------------------------------
# Static figure
# ------------------------------------------------------------------------------------------------
def key_frame_figure(sequences: SequencesLike, *, faces: np.ndarray | None = None, fps: float,
                     audio: AudioLike | None = None, topology: Topology | str | None = None,
                     highlight: Sequence[str] | str | None = DEFAULT_HIGHLIGHT,
                     error_against: str | None = None, labels: Sequence[str] | None = None,
                     n_key_frames: int = 4, size: int = 256) -> Any:
    """A Figure: one row of key frames per sequence (same camera), the waveform (if ``audio``), the
    lip-distance traces (if the topology has MTM vertices) with the key frames marked, and a colour
    bar (if ``error_against``). Axes: n_sequences x n_key image panels, then waveform, traces, bar.

    Key frames (:func:`p3d.viz.compare.key_frames`): the widest and narrowest lip opening of the
    reference (``error_against``, else the first sequence) and evenly spaced frames.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    seqs = as_sequences(sequences, labels)
    n_frames, n_vertices = next(iter(seqs.values())).shape[:2]
    topo = resolve_topology(topology, n_vertices)
    tris = resolve_faces(faces, topo, n_vertices)
    fps = check_fps(fps)
    sound = load_audio_like(audio) if audio is not None else None
    _check_view_options(seqs, error_against, n_key_frames)
    dist = lip_distances(seqs, topo)
    ref = error_against if error_against is not None else next(iter(seqs))
    frames = key_frames(None if dist is None else dist[ref], n_frames, n_key_frames)
    names = _key_names(frames, None if dist is None else dist[ref])
    with SideBySide(seqs, tris, topology=topo, size=size, highlight=highlight, error_against=error_against,
                    captions=False) as scene:
        images = [[scene.panel(i, int(t)) for t in frames] for i in range(len(seqs))]
        clim = scene.error_clim
    n_rows, n_cols = len(seqs), len(frames)
    extra = [h for h, on in ((0.5, sound is not None), (1.0, dist is not None)) if on]
    fig = Figure(figsize=(max(2.0 * n_cols, 6.0), 2.05 * n_rows + 1.5 * sum(extra) + 0.5), constrained_layout=True)
    grid = fig.add_gridspec(n_rows + len(extra), n_cols, height_ratios=[1.0] * n_rows + [h for h in extra])
    image_axes = []
    for r, label in enumerate(seqs):
        for c, t in enumerate(frames):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(images[r][c])
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if r == 0:
                ax.set_title(f"frame {t} ({t / fps:.2f} s)\n{names[int(t)]}", fontsize=8)
            if c == 0:
                ax.set_ylabel(label + (f"\nerror vs {error_against}" if label != ref and error_against else ""),
                              fontsize=9)
            image_axes.append(ax)
    row = n_rows
    wave_ax = None
    if sound is not None:
        ax = wave_ax = fig.add_subplot(grid[row, :])
        samples, sr = sound
        ax.plot(np.arange(len(samples)) / sr * fps, samples, color="0.3", lw=0.4)
        ax.set_xlim(0, max(n_frames - 1, len(samples) / sr * fps))
        ax.set_yticks([])
        ax.set_ylabel("audio", fontsize=8)
        for t in frames:
            ax.axvline(t, color="k", ls=":", lw=0.8)
        ax.tick_params(labelsize=7, labelbottom=dist is None)
        row += 1
    if dist is not None:
        ax = fig.add_subplot(grid[row, :])
        _plot_traces(ax, dist, fps)
        if wave_ax is not None:  # the waveform above has no tick labels of its own: it is read on this axis
            ax.set_xlim(wave_ax.get_xlim())
        for t in frames:
            ax.axvline(t, color="k", ls=":", lw=0.8)
    if error_against is not None and len(seqs) > 1:
        sm = ScalarMappable(norm=Normalize(*clim), cmap=ERROR_CMAP)
        err_axes = [ax for ax, (r, _) in zip(image_axes, np.ndindex(n_rows, n_cols))
                    if list(seqs)[r] != error_against]
        bar = fig.colorbar(sm, ax=err_axes, shrink=0.8, pad=0.01)
        bar.set_label(f"per-vertex error vs {error_against} (mesh units)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    fig.suptitle(f"{n_frames} frames at {fps:g} fps" + ("" if sound is None else
                 f"; audio {len(sound[0]) / sound[1]:.2f} s") + "  (static view: no widget front-end)",
                 fontsize=9)
    return fig


def _check_view_options(seqs: Mapping[str, np.ndarray], error_against: str | None, n_key_frames: int) -> None:
    if error_against is not None and error_against not in seqs:
        raise InputError(f"error_against={error_against!r} is not one of the labels {list(seqs)}")
    if isinstance(n_key_frames, bool) or not isinstance(n_key_frames, (int, np.integer)) \
            or not 1 <= n_key_frames <= 12:
        raise InputError(f"n_key_frames must be an integer in [1, 12], got {n_key_frames!r}")


def _key_names(frames: np.ndarray, dist: np.ndarray | None) -> dict[int, str]:
    names = {int(t): "" for t in frames}
    if dist is not None:
        names[int(np.argmax(dist))] = "widest lip opening"
        names[int(np.argmin(dist))] = "narrowest"
    return names


def _plot_traces(ax: Any, dist: Mapping[str, np.ndarray], fps: float) -> None:
    for k, (label, d) in enumerate(dist.items()):
        ax.plot(np.arange(len(d)), d, color=TRACE_COLORS[k % len(TRACE_COLORS)], lw=1.2, label=label)
    n = len(next(iter(dist.values())))
    ax.set_xlim(0, max(n - 1, 1))
    ax.set_xlabel(f"frame ({fps:g} fps)", fontsize=8)
    ax.set_ylabel("lip distance\n(mesh units)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="best", ncol=min(len(dist), 4), framealpha=0.7)
    sec = ax.secondary_xaxis("top", functions=(lambda f: f / fps, lambda s: s * fps))
    sec.tick_params(labelsize=7)
    sec.set_xlabel("time (s)", fontsize=7, labelpad=1)


def _ensure_png_formatter() -> None:
    """Let IPython show a bare :class:`~matplotlib.figure.Figure` as PNG (pyplot's inline backend
    registers this only once pyplot is imported)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib.figure import Figure

    png = shell.display_formatter.formatters.get("image/png")
    if png is None:
        return
    try:
        png.lookup_by_type(Figure)
    except KeyError:
        png.for_type(Figure, lambda fig: _figure_png(fig))


def _figure_png(fig: Any, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------
# Widget
# ------------------------------------------------------------------------------------------------
class _TraceImage:
    """The lip-distance traces drawn once (Agg); ``png(t)`` adds a cursor at frame ``t`` in pixels."""

    def __init__(self, dist: Mapping[str, np.ndarray], fps: float, width_px: int, height_px: int = 170):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        dpi = 100
        fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, constrained_layout=True)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        _plot_traces(ax, dist, fps)
        canvas.draw()
        self.base = np.asarray(canvas.buffer_rgba())[..., :3].copy()
        height = self.base.shape[0]
        n = len(next(iter(dist.values())))
        xy = ax.transData.transform(np.c_[np.arange(n), np.zeros(n)])
        self.x = np.clip(np.round(xy[:, 0]).astype(int), 0, self.base.shape[1] - 1)
        y0, y1 = ax.bbox.y0, ax.bbox.y1  # display coordinates, origin at the bottom
        self.rows = slice(int(height - y1), int(np.ceil(height - y0)))

    def png(self, t: int) -> bytes:
        from PIL import Image

        img = self.base.copy()
        x = self.x[t]
        img[self.rows, max(x - 1, 0):x + 2] = (20, 20, 20)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


class InspectWidget:
    """The interactive viewer (see :func:`inspect`); displays as its ``widget`` (an ipywidgets VBox).

    Attributes: ``slider`` (IntSlider over frames), ``play`` (Play, ``interval`` = 1000 / fps ms,
    linked to the slider in the browser), ``image`` (the panels, JPEG), ``trace`` (lip distances
    with a cursor, PNG; None without MTM vertices), ``audio`` (ipywidgets.Audio; None without
    audio), ``video_button`` / ``video_box`` (render an mp4 with sound and show it), ``scene``
    (:class:`~p3d.viz.compare.SideBySide`). Call :meth:`close` to release the renderers.
    """

    def __init__(self, sequences: Mapping[str, np.ndarray], *, faces: np.ndarray, fps: float,
                 audio: tuple[np.ndarray, int] | None, topology: Topology | None,
                 highlight: Sequence[str] | str | None, error_against: str | None, size: int = 320) -> None:
        import ipywidgets as W

        self.sequences, self.faces, self.fps, self.sound = sequences, faces, fps, audio
        self.topology, self.highlight, self.error_against = topology, highlight, error_against
        self.scene = SideBySide(sequences, faces, topology=topology, size=size, highlight=highlight,
                                error_against=error_against)
        self._finalizer = weakref.finalize(self, self.scene.close)
        self.n_frames = self.scene.n_frames
        self._cache: dict[int, bytes] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        last = self.n_frames - 1
        self.play = W.Play(value=0, min=0, max=last, step=1, interval=max(1, int(round(1000.0 / fps))),
                           description="play", repeat=False)
        self.slider = W.IntSlider(value=0, min=0, max=last, step=1, description="frame",
                                  continuous_update=True, layout=W.Layout(width="55%"))
        W.jslink((self.play, "value"), (self.slider, "value"))
        self.time_label = W.HTML()
        height, width, _ = self.scene.shape
        self.image = W.Image(format="jpeg", layout=W.Layout(width=f"{width}px", height=f"{height}px"))
        dist = lip_distances(sequences, topology)
        self.distances = dist
        self._trace = _TraceImage(dist, fps, max(width, 480)) if dist is not None else None
        self.trace = W.Image(format="png") if self._trace is not None else None
        self.audio = None
        if audio is not None:
            self.audio = W.Audio(value=wav_bytes(*audio), format="wav", autoplay=False, loop=False, controls=True)
        self.status = W.HTML()
        self.video_button = W.Button(description="render mp4 with sound", icon="film",
                                     tooltip="render every frame to an mp4 (audio muxed in) and show it here")
        self.video_button.on_click(lambda _: self.render_video())
        self.video_box = W.Box()
        header = W.HBox([self.play, self.slider, self.time_label])
        rows: list[Any] = [header, self.image]
        if self.trace is not None:
            rows.append(self.trace)
        else:
            rows.append(W.HTML("<i>no lip-distance trace: the topology defines no MTM lip vertices</i>"))
        audio_row = [self.audio] if self.audio is not None else []
        rows.append(W.HBox(audio_row + [self.video_button, self.status]))
        rows.append(self.video_box)
        self.widget = W.VBox(rows)
        self.slider.observe(self._on_frame, names="value")
        self.play.observe(self._on_playing, names="playing")
        self.show(0)

    def _on_frame(self, change: dict[str, Any]) -> None:
        try:
            self.show(int(change["new"]))
        except Exception as exc:  # shown in the widget rather than lost in the log
            self.status.value = f"<span style='color:#b00'>{type(exc).__name__}: {exc}</span>"
            raise

    def _on_playing(self, change: dict[str, Any]) -> None:
        """On the first play, pause, render every frame into the cache, then play: each step is
        then a cache hit, so playback keeps the data's fps instead of queueing renders."""
        if change["new"] and len(self._cache) < self.n_frames <= CACHE_FRAMES:
            self.play.playing = False
            self.prerender()
            self.play.playing = True

    def prerender(self) -> None:
        """Render every frame into the cache (progress in ``status``)."""
        step = max(1, self.n_frames // 20)
        for t in range(self.n_frames):
            if t % step == 0:
                self.status.value = f"preparing smooth playback: frame {t + 1}/{self.n_frames}"
            self.frame_jpeg(t)
        self.status.value = ""

    def frame_jpeg(self, t: int) -> bytes:
        """JPEG bytes of the side-by-side frame ``t`` (cached)."""
        data = self._cache.get(t)
        if data is None:
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(self.scene.frame(t)).save(buf, format="JPEG", quality=90)
            data = buf.getvalue()
            if len(self._cache) >= CACHE_FRAMES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[t] = data
        return data

    def show(self, t: int) -> None:
        """Display frame ``t`` (image, trace cursor, time)."""
        self.image.value = self.frame_jpeg(t)
        if self._trace is not None and self.trace is not None:
            self.trace.value = self._trace.png(t)
        self.time_label.value = f"<code>t = {t / self.fps:6.3f} s &nbsp; ({t + 1}/{self.n_frames})</code>"

    def render_video(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Render all frames with the audio to an mp4 (default: a temporary file kept until
        :meth:`close`) and show it in ``video_box``; returns the path."""
        import ipywidgets as W

        if path is None:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="p3d-inspect-")
            path = Path(self._tmp.name) / "comparison.mp4"
        self.status.value = "rendering..."
        out = render_comparison(self.sequences, path, fps=self.fps, faces=self.faces, audio=self.sound,
                                topology=self.topology, size=self.scene.size, highlight=self.highlight,
                                error_against=self.error_against, progress=False)
        self.video_box.children = (W.Video.from_file(str(out), autoplay=False, loop=False),)
        self.status.value = f"wrote {out}"
        return Path(out)

    def close(self) -> None:
        """Release the off-screen renderers and temporary files, and close the widgets."""
        self._finalizer()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        for w in (self.play, self.slider, self.time_label, self.image, self.trace, self.audio, self.status,
                  self.video_button, self.video_box, *self.widget.children, self.widget):
            if w is not None:
                w.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


__all__ = ["InspectWidget", "inspect", "key_frame_figure", "widget_frontend"]
