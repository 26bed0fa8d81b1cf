"""Tests for p3d.viz.inspector: the widget builds without a display, the static fallback renders,
the mode follows the front-end (a real kernel driven like papermill gets the static figure)."""
from __future__ import annotations

import types

import numpy as np
import pytest
from matplotlib.figure import Figure

from p3d.errors import InputError
from p3d.synth import face
from p3d.topology import Topology
from p3d.viz import inspector as I
from tiny_corpus import talking_face

FPS = 30.0
SR = 16000


@pytest.fixture(scope="module")
def pair():
    return {"GT": talking_face(10), "late": talking_face(10, shift=2)}


@pytest.fixture(scope="module")
def audio():
    t = np.arange(int(SR * 10 / FPS)) / SR
    return (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv("P3D_STATIC", raising=False)


def test_widget_builds_without_a_display(pair, audio):
    pytest.importorskip("ipywidgets")  # the notebooks extra
    w = I.inspect(pair, fps=FPS, audio=audio, topology="synth-face", static=False, size=64)
    try:
        assert isinstance(w, I.InspectWidget)
        assert (w.slider.min, w.slider.max, w.play.min, w.play.max) == (0, 9, 0, 9)
        assert w.play.interval == round(1000 / FPS)
        assert w.audio is not None and w.audio.format == "wav" and bytes(w.audio.value[:4]) == b"RIFF"
        assert not w.audio.autoplay
        first_image, first_trace = bytes(w.image.value), bytes(w.trace.value)
        assert first_image[:2] == b"\xff\xd8" and first_trace[:4] == b"\x89PNG"
        w.slider.value = 3  # what the Play button does through the browser-side link
        assert bytes(w.image.value) != first_image and bytes(w.trace.value) != first_trace
        assert "0.100 s" in w.time_label.value
        w.play.playing = True  # the first play caches every frame, then plays
        assert len(w._cache) == 10 and w.play.playing and w.status.value == ""
        bundle = w._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert w.widget.children[0].children[:2] == (w.play, w.slider)
    finally:
        w.close()


def test_widget_degrades_without_audio_or_mtm_vertices(pair):
    import ipywidgets  # noqa: F401
    bare = Topology("bare", 468, faces=face.faces())
    w = I.inspect(list(pair.values()), labels=["a", "b"], fps=25, topology=bare, static=False, size=48)
    try:
        assert w.audio is None and w.trace is None and w.play.interval == 40
        assert "no lip-distance trace" in w.widget.children[2].value
    finally:
        w.close()


def test_widget_renders_a_synced_video(pair, audio, tmp_path):
    import ipywidgets  # noqa: F401
    from p3d.viz.render import probe_mp4

    w = I.inspect(pair, fps=FPS, audio=audio, topology="synth-face", static=False, size=48)
    try:
        out = w.render_video(tmp_path / "v.mp4")
        info = probe_mp4(out)
        assert info["n_frames"] == 10 and info["audio_codec"] == "aac"
        assert len(w.video_box.children) == 1
    finally:
        w.close()


def test_static_fallback_panels(pair, audio):
    fig = I.inspect(pair, fps=FPS, topology="synth-face", static=True)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * 4 + 1  # 2 sequences x 4 key frames + the lip-distance traces
    assert len(fig.axes[-1].get_lines()) >= 2  # one trace per sequence (+ key-frame markers)
    fig = I.inspect(pair, fps=FPS, topology="synth-face", audio=audio, error_against="GT", static=True,
                    n_key_frames=3)
    assert len(fig.axes) == 2 * 3 + 1 + 1 + 1  # + waveform + colour bar
    fig.canvas.draw()  # it renders
    fig = I.inspect(pair["GT"], faces=face.faces(), fps=FPS, static=True)  # no topology: no trace
    assert len(fig.axes) == 4


def test_auto_mode_outside_a_kernel_is_static(pair):
    assert I.widget_frontend() is False
    assert isinstance(I.inspect(pair, fps=FPS, topology="synth-face", n_key_frames=2), Figure)


def _fake_shell(metadata):
    kernel = types.SimpleNamespace(get_parent=lambda channel=None: {"metadata": metadata})
    return types.SimpleNamespace(kernel=kernel)


def test_widget_frontend_follows_the_request(monkeypatch):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: _fake_shell({"cellId": "abc", "deletedCells": []}))
    assert I.widget_frontend() is True  # JupyterLab sends a cellId
    monkeypatch.setenv("P3D_STATIC", "1")
    assert I.widget_frontend() is False
    monkeypatch.setattr(IPython, "get_ipython", lambda: _fake_shell({}))  # papermill / nbval / nbconvert
    monkeypatch.delenv("P3D_STATIC")
    assert I.widget_frontend() is False
    monkeypatch.setenv("P3D_STATIC", "0")
    assert I.widget_frontend() is True


def test_papermill_style_kernel_gets_the_static_figure():
    """A real kernel driven by nbclient (what papermill uses): no error, a PNG figure; the widget
    still builds there when asked for."""
    import ipywidgets  # noqa: F401  (pinned in the notebooks extra: a missing one fails, not skips)
    import nbformat
    from nbclient import NotebookClient

    src = (
        "import numpy as np\n"
        "from p3d.synth import face\n"
        "from p3d.viz.inspector import inspect, widget_frontend\n"
        "seq = np.repeat(face.template()[None], 3, axis=0)\n"
        "print('widgets:', widget_frontend())\n"
        "inspect({'a': seq, 'b': seq + 0.001}, fps=30, topology='synth-face', n_key_frames=2)\n"
    )
    forced = "w = inspect({'a': seq}, fps=30, topology='synth-face', static=False, size=48)\nw"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src), nbformat.v4.new_code_cell(forced)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert any(o.get("text", "").strip() == "widgets: False" for o in outputs)
    result = [o for o in outputs if o.output_type == "execute_result"]
    assert result and "image/png" in result[0].data
    # the widget itself also builds in that display-less kernel
    result = [o for o in nb.cells[1].outputs if o.output_type == "execute_result"]
    assert result and "application/vnd.jupyter.widget-view+json" in result[0].data


def test_bad_input(pair):
    a = pair["GT"]
    with pytest.raises(InputError, match="frame counts"):
        I.inspect({"a": a, "b": a[:5]}, fps=FPS, topology="synth-face", static=True)
    with pytest.raises(InputError, match="vertex counts"):
        I.inspect({"a": a, "b": a[:, :400]}, faces=face.faces(), fps=FPS, static=True)
    nan = a.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        I.inspect({"a": nan}, fps=FPS, topology="synth-face", static=True)
    with pytest.raises(InputError, match="outside"):
        I.inspect({"a": a}, faces=face.faces() + 468, fps=FPS, static=True)
    with pytest.raises(InputError, match="not one of"):
        I.inspect(pair, fps=FPS, topology="synth-face", error_against="pred", static=False)
    with pytest.raises(InputError, match="fps"):
        I.inspect(pair, fps=0, topology="synth-face", static=True)
    with pytest.raises(InputError, match="not found"):
        I.inspect(pair, fps=FPS, topology="synth-face", audio="/nonexistent.wav", static=True)
    with pytest.raises(InputError, match="468 vertices"):
        I.inspect({"a": a[:, :400]}, faces=face.faces()[:10] % 400, fps=FPS, topology="synth-face")
    with pytest.raises(InputError, match="n_key_frames"):
        I.inspect(pair, fps=FPS, topology="synth-face", n_key_frames=0)


def test_key_frame_figure_checks_its_options(pair):
    # called directly (it is public), an unknown reference was a KeyError and n_key_frames=0 a matplotlib ValueError
    with pytest.raises(InputError, match="error_against"):
        I.key_frame_figure(pair, fps=FPS, topology="synth-face", error_against="nope")
    with pytest.raises(InputError, match="n_key_frames"):
        I.key_frame_figure(pair, fps=FPS, topology="synth-face", n_key_frames=0)
    assert isinstance(I.key_frame_figure(pair, fps=FPS, topology="synth-face", n_key_frames=np.int64(2)), Figure)


def test_waveform_and_traces_share_one_frame_axis(pair):
    """The waveform (drawn without tick labels) sits above the lip-distance traces and is read on their frame
    axis: the two spanned different ranges (waveform 0 .. the audio's length in frames, traces 0 .. T - 1), so a
    key frame's line fell at different places in the two panels (frame 2 of 10 with 20 frames of audio: 125 px
    and 188 px across)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    t = np.arange(int(SR * 20 / FPS)) / SR  # audio lasting 20 frames, for a 10-frame clip
    sound = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR
    fig = I.key_frame_figure(pair, fps=FPS, topology="synth-face", audio=sound, n_key_frames=2, size=48)
    FigureCanvasAgg(fig).draw()
    wave, traces = fig.axes[-2:]
    assert wave.get_ylabel() == "audio" and "lip distance" in traces.get_ylabel()

    def px(ax, frame):
        return ax.transData.transform([[frame, 0.0]])[0, 0]

    for frame in (0.0, 2.0, 9.0, 19.0):
        assert px(wave, frame) == pytest.approx(px(traces, frame))
    assert traces.get_xlim() == pytest.approx((0.0, len(t) / SR * FPS))  # all of the audio, all of the frames


def test_key_frame_titles_waveform_and_time_axis_are_in_their_units(pair):
    """Key frame t is titled with t / fps seconds and the widest / narrowest lip opening of the reference named
    over its own frame; the waveform's sample i is at frame i x fps / sr; the traces' top axis is in seconds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from p3d.metrics.mtm import lip_distance

    topo = face.face_topology()
    n = int(SR * 10 / FPS)
    sound = (np.linspace(-0.2, 0.2, n)).astype(np.float32), SR
    fig = I.key_frame_figure(pair, fps=FPS, topology="synth-face", audio=sound, n_key_frames=2, size=48)
    FigureCanvasAgg(fig).draw()
    d = lip_distance(pair["GT"], topo.mtm_upper, topo.mtm_lower)
    titles = [ax.get_title() for ax in fig.axes[:2]]
    widest, narrowest = int(np.argmax(d)), int(np.argmin(d))
    assert sorted(titles) == sorted([f"frame {widest} ({widest / FPS:.2f} s)\nwidest lip opening",
                                     f"frame {narrowest} ({narrowest / FPS:.2f} s)\nnarrowest"])
    wave, traces = fig.axes[-2:]
    (line,) = wave.lines[:1]
    np.testing.assert_allclose(line.get_xdata(), np.arange(n) * FPS / SR)
    (top,) = [child for child in traces.child_axes if child.get_xlabel() == "time (s)"]
    assert top.get_xlim() == pytest.approx(tuple(x / FPS for x in traces.get_xlim()))


def test_the_widget_trace_cursor_moves_left_to_right_with_the_frame():
    """The trace image's cursor at frame t: frame 0 at the left, later frames further right."""
    import io

    from PIL import Image

    dist = {"GT": np.linspace(0.0, 1.0, 10)}
    trace = I._TraceImage(dist, FPS, 480)
    assert np.all(np.diff(trace.x) > 0)
    first, last = (np.asarray(Image.open(io.BytesIO(trace.png(t)))) for t in (0, 9))
    dark = [np.flatnonzero((img[..., :3] == 20).all(axis=-1).any(axis=0)) for img in (first, last)]
    assert dark[0].mean() < dark[1].mean()
