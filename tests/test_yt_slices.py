"""Tests for p3d.viz.yt_slices (projection, y-t slices of rendered sequences, Fig. S8 figure), at tiny sizes."""
from __future__ import annotations

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.viz import yt_slices as Y
from p3d.viz.render import BACKGROUND, Camera


def test_project_points_pinhole():
    cam = Camera(position=(0.0, 0.0, 1.0), focal_point=(0.0, 0.0, 0.0), view_angle=90.0)
    px = Y.project_points([[0, 0, 0], [0, 0.5, 0], [0.5, 0, 0], [0, -1, 0]], cam, (40, 20))
    # tan(45 deg) = 1: half the image height (10 px) per unit at depth 1
    np.testing.assert_allclose(px, [[19.5, 9.5], [19.5, 4.5], [24.5, 9.5], [19.5, 19.5]])
    with pytest.raises(InputError, match="behind"):
        Y.project_points([[0, 0, 2]], cam, (40, 20))


def test_project_points_matches_renderer():
    from p3d.viz.render import render_frames

    # one small square at (0.3, 0.2) on a large backdrop square facing the camera
    verts = np.array([[-1, -1, -0.01], [1, -1, -0.01], [1, 1, -0.01], [-1, 1, -0.01],
                      [0.25, 0.15, 0], [0.35, 0.15, 0], [0.35, 0.25, 0], [0.25, 0.25, 0]], dtype=np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    colors = np.array([[1.0, 1.0, 1.0]] * 4 + [[0.0, 0.0, 1.0]] * 4)
    cam = Camera(position=(0.0, 0.0, 3.0), focal_point=(0.0, 0.0, 0.0), view_angle=40.0)
    frame = render_frames(verts[None], faces, size=(80, 60), camera=cam, colors=colors, check=False)[0]
    col, row = np.round(Y.project_points([[0.3, 0.2, 0]], cam, (80, 60))[0]).astype(int)
    r, g, b = frame[row, col].astype(int)
    assert b > r + 40 and b > g + 40  # the small blue square is where the projection says
    assert col > 40 and row < 30  # right of and above the centre


@pytest.fixture(scope="module")
def face_sequences():
    from p3d.synth import face

    topo = face.face_topology("base")
    tpl = face.template("base")
    jaw = face.jaw_weights("base")[:, None] * np.array([0.0, -1.0, 0.0])
    amount = np.array([0.0, 0.004, 0.012, 0.004])
    gt = tpl[None] + amount[:, None, None] * jaw[None]
    return topo, {"GT": gt, "still": np.repeat(tpl[None], 3, axis=0)}


def test_render_yt_slices_open_mouth_is_dark(face_sequences):
    topo, seqs = face_sequences
    ys = Y.render_yt_slices(seqs, topo, height=48, width=16)
    assert set(ys.images) == {"GT", "still"} and ys.size == (16, 48)
    gt, still = ys.images["GT"], ys.images["still"]
    assert gt.shape == (48, 4, 3) and gt.dtype == np.uint8 and still.shape == (48, 3, 3)
    assert 0 <= ys.column < 16
    dark = (gt.astype(int).sum(axis=-1) < 150).sum(axis=0)  # dark (mouth cavity) pixels per frame
    assert dark[2] > dark[0] and dark[2] > dark[1] >= dark[0]
    assert dark[1] == dark[3]  # same pose, same column: deterministic
    np.testing.assert_array_equal(still[:, 0], gt[:, 0])  # frame 0 of GT is the template: same camera
    assert not np.all(gt == np.array(BACKGROUND, np.uint8))
    band = Y.render_yt_slices({"GT": seqs["GT"][:2]}, topo, height=32, width=16, band=3)
    assert band.images["GT"].shape == (32, 2, 3)


def test_the_band_is_centred_on_the_lip_centre(face_sequences, monkeypatch):
    """``band`` columns centred on the lip centre: an even band's columns were col - band // 2 ..., centred on
    col - 1/2, a whole pixel left of the lip centre where round() rounded it down (width 18: 8.5 -> 8). Frames
    here are a ramp (pixel value 10 x column), so the y-t value is 10 x the band's mean column."""
    import p3d.viz.render as R
    from p3d.viz.lip_shapes import mouth_regions

    topo, seqs = face_sequences
    gt = seqs["GT"][:1]

    def ramp(vertices, faces, *, size, **kwargs):
        w, h = size
        frame = np.repeat((10 * np.arange(w))[None, :, None], 3, axis=2) + 40 * (np.arange(h) < h // 2)[:, None, None]
        for _ in range(len(vertices)):
            yield frame.astype(np.uint8)

    monkeypatch.setattr(R, "iter_frames", ramp)
    centre = gt[0, list(mouth_regions(topo)["lip_pair"])].astype(np.float64).mean(axis=0)
    for width in (16, 17, 18, 20, 21):
        for band in (1, 2, 3, 4):
            if band % 2 == 0 and width % 2 == 1:
                with pytest.raises(InputError, match="cannot be centred"):
                    Y.render_yt_slices({"GT": gt}, topo, height=32, width=width, band=band)
                continue
            ys = Y.render_yt_slices({"GT": gt}, topo, height=32, width=width, band=band)
            x = Y.project_points(centre, ys.camera, ys.size)[0, 0]
            assert x == pytest.approx((width - 1) / 2)
            mid = ys.images["GT"][-1, 0, 0] / 10  # the band's mean column
            # exact where the parities allow it; an odd band in an even width: the column nearest, half a pixel off
            assert abs(mid - x) == pytest.approx(0.0 if (width - band) % 2 == 0 else 0.5), (width, band)
            assert ys.column == round(x)


def test_render_yt_slices_errors(face_sequences):
    topo, seqs = face_sequences
    with pytest.raises(InputError, match="sequences"):
        Y.render_yt_slices({}, topo)
    with pytest.raises(InputError, match="vertices"):
        Y.render_yt_slices({"a": seqs["GT"], "b": seqs["GT"][:, :10]}, topo, height=32, width=16)
    bad = seqs["GT"].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="finite"):
        Y.render_yt_slices({"a": bad}, topo, height=32, width=16)
    with pytest.raises(InputError, match="band"):
        Y.render_yt_slices(seqs, topo, height=32, width=16, band=0)
    with pytest.raises(InputError, match="height"):
        Y.render_yt_slices(seqs, topo, height=4)


def test_phoneme_segments():
    seg = Y.phoneme_segments(np.array([0, 0, 2, 2, 2, 1]), ["_", "p", "a"], fps=10)
    assert seg == [(0.0, 0.2, "_"), (0.2, 0.5, "a"), (0.5, 0.6, "p")]
    with pytest.raises(InputError, match="ids"):
        Y.phoneme_segments(np.array([0, 3]), ["_", "p"], fps=10)
    with pytest.raises(InputError, match="fps"):
        Y.phoneme_segments(np.array([0, 1]), ["_", "p"], fps=0)
    with pytest.raises(InputError, match="integer"):
        Y.phoneme_segments(np.array([0.0, 1.0]), ["_", "p"], fps=10)


def test_plot_yt_slices_layout():
    rng = np.random.default_rng(0)
    images = {"GT": rng.integers(0, 255, (20, 10, 3), dtype=np.uint8),
              "model": rng.integers(0, 255, (20, 10, 3), dtype=np.uint8)}
    sr = 16000
    audio = 0.1 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr).astype(np.float32)
    segs = Y.phoneme_segments(np.array([0] * 3 + [1] * 4 + [2] * 3), ["_", "p", "a"], fps=10)
    fig = Y.plot_yt_slices(images, 10, audio, sr, segs, title="t")
    assert len(fig.axes) == 5  # two y-t images, waveform, mel, phonemes
    texts = [t.get_text() for t in fig.axes[-1].texts]
    assert texts == ["p", "a"]  # silence is a boundary without text
    assert fig.axes[-1].get_xlim() == pytest.approx((0.0, 1.0))
    assert len(Y.plot_yt_slices(images, 10, audio, sr).axes) == 4  # no transcription
    with pytest.raises(InputError, match="audio"):
        Y.plot_yt_slices(images, 10, np.zeros((2, 3)), sr)
    with pytest.raises(InputError, match="images"):
        Y.plot_yt_slices({"x": np.zeros((4, 4))}, 10, audio, sr)


def test_render_yt_slices_blank_image_raises(face_sequences):
    from p3d.viz.render import BlankFrameError

    topo, seqs = face_sequences
    away = seqs["GT"] + np.array([5.0, 0.0, 0.0])  # out of the camera's view: background only
    with pytest.raises(BlankFrameError, match="away"):
        Y.render_yt_slices({"GT": seqs["GT"], "away": away}, topo, height=32, width=16)


@pytest.mark.parametrize("fps", [0, -10, float("nan"), "25"])
def test_plot_yt_slices_refuses_a_bad_frame_rate(fps):
    """fps = 0 raised ZeroDivisionError; a negative one drew the y-t images at negative times, off the time axis."""
    images = {"GT": np.zeros((8, 10, 3), dtype=np.uint8)}
    with pytest.raises(InputError, match="fps: expected a positive frame rate"):
        Y.plot_yt_slices(images, fps, np.zeros(1600, dtype=np.float32), 16000)


@pytest.mark.parametrize("t_click", [0.5, 0.2537])
def test_plot_yt_slices_draws_a_click_in_the_mel_at_its_time(t_click):
    """librosa's mel frames are centred (center=True: column i around sample i * hop); the image spanned
    i * hop .. (i + 1) * hop, so a click at 0.5 s was drawn at 0.505 s (half a 10 ms hop late)."""
    sr = 16000
    audio = np.zeros(sr, dtype=np.float32)
    audio[int(round(t_click * sr))] = 1.0
    fig = Y.plot_yt_slices({"GT": np.zeros((8, 30, 3), dtype=np.uint8)}, 30, audio, sr)
    mel = fig.axes[2].images[0]
    x0, x1 = mel.get_extent()[:2]
    energy = (10 ** (np.asarray(mel.get_array()) / 10)).sum(axis=0)
    centres = x0 + (np.arange(energy.size) + 0.5) * (x1 - x0) / energy.size
    assert np.sum(centres * energy) / energy.sum() == pytest.approx(t_click, abs=5e-4)
    assert (x0, x1) == pytest.approx((-0.005, (energy.size - 0.5) * 0.01))
    assert fig.axes[0].images[0].get_extent()[:2] == pytest.approx([0.0, 1.0])  # mesh frame k at (k + 1/2) / fps


def test_slice_camera_frames_the_lips_with_pad_above_and_below():
    """The image height spans the lips' vertical range plus ``pad`` times it above and below: with pad 0.5 the
    lips fill the middle half of the image (rows H/4 .. 3H/4, pixel edges at -0.5), centred on ``centre``."""
    lips = np.array([[-0.02, 0.10, 0.0], [0.02, 0.10, 0.0], [0.0, 0.14, 0.0], [0.0, 0.12, 0.0]])
    for pad, (w, h) in ((0.5, (16, 48)), (0.25, (20, 60))):
        cam = Y.slice_camera(lips, lips[3], (w, h), pad=pad)
        px = Y.project_points(lips, cam, (w, h))
        top = h * pad / (1 + 2 * pad) - 0.5
        assert px[:, 1].min() == pytest.approx(top) and px[:, 1].max() == pytest.approx(h - 1 - top)
        assert px[3, 0] == pytest.approx((w - 1) / 2)


def test_the_slice_camera_spans_the_lips_of_every_reference_frame(face_sequences, monkeypatch):
    """The camera's vertical field spans the reference's lips over all its frames (the open mouth of frame 2 too),
    not only frame 0's: with the default pad 0.5 all of them lie in the middle half of the image."""
    import p3d.viz.render as R
    from p3d.viz.lip_shapes import mouth_regions

    def ramp(vertices, faces, *, size, **kwargs):
        w, h = size
        for _ in range(len(vertices)):
            frame = np.repeat((10 * np.arange(w))[None, :, None], 3, axis=2) + 40 * (np.arange(h) < h // 2)[:, None, None]
            yield frame.astype(np.uint8)

    monkeypatch.setattr(R, "iter_frames", ramp)
    topo, seqs = face_sequences
    ys = Y.render_yt_slices({"GT": seqs["GT"]}, topo, height=48, width=16)
    rows = Y.project_points(seqs["GT"][:, mouth_regions(topo)["mouth"]].reshape(-1, 3), ys.camera, ys.size)[:, 1]
    assert rows.min() == pytest.approx(48 / 4 - 0.5, abs=0.5)
    assert rows.max() == pytest.approx(3 * 48 / 4 - 0.5, abs=0.5)


def test_too_few_vertices_for_the_lips_is_one_line_error(face_sequences):
    from p3d.viz.lip_shapes import mouth_regions

    topo, seqs = face_sequences
    n = int(np.max(mouth_regions(topo)["mouth"]))  # the largest lip index: one vertex short
    with pytest.raises(InputError, match="lips index vertex"):
        Y.render_yt_slices({"GT": seqs["GT"][:, :n]}, topo, height=32, width=16)


def test_phoneme_segments_refuse_an_id_past_the_inventory():
    with pytest.raises(InputError, match="ids"):
        Y.phoneme_segments(np.array([0, 2]), ["_", "p"], fps=10)


def test_plot_yt_slices_time_axis_in_seconds():
    """Every panel on one axis in seconds: the waveform's sample i at i / sr at any sample rate, the y-t image
    over its T / fps seconds even when it outlasts the audio (the axis ends at the longer), each phoneme's name
    at the middle of its segment."""
    sr = 8000
    audio = np.linspace(-0.5, 0.5, sr // 2).astype(np.float32)  # 0.5 s
    images = {"GT": np.zeros((8, 30, 3), dtype=np.uint8)}  # 30 frames at 30 fps: 1 s
    segs = [(0.0, 0.2, "_"), (0.2, 0.6, "a"), (0.6, 1.0, "m")]
    fig = Y.plot_yt_slices(images, 30, audio, sr, segs)
    (wave,) = fig.axes[1].lines
    np.testing.assert_allclose(wave.get_xdata(), np.arange(audio.size) / sr)
    np.testing.assert_array_equal(wave.get_ydata(), audio)
    assert fig.axes[-1].get_xlim() == pytest.approx((0.0, 1.0))
    assert [(t.get_position()[0], t.get_text()) for t in fig.axes[-1].texts] == [(pytest.approx(0.4), "a"),
                                                                                 (pytest.approx(0.8), "m")]
