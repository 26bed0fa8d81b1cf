"""Tests for p3d.viz.render (off-screen pyvista frames, PNG and mp4 with audio, blank-frame checks)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from p3d.errors import InputError
from p3d.viz import render as R


def _sphere() -> tuple[np.ndarray, np.ndarray]:
    """A UV sphere of radius 0.1 (z toward the viewer), as (V, 3) vertices and (F, 3) faces."""
    n_lat, n_lon = 12, 18
    lat = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    ring = np.stack([np.outer(np.sin(lat), np.cos(lon)), np.outer(np.cos(lat), np.ones(n_lon)),
                     np.outer(np.sin(lat), np.sin(lon))], axis=-1).reshape(-1, 3)
    verts = 0.1 * np.vstack([ring, [[0, 1, 0], [0, -1, 0]]])
    top, bottom = len(ring), len(ring) + 1
    faces = []
    for i in range(n_lat - 2):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            c, d = a + n_lon, b + n_lon
            faces += [[a, c, b], [b, c, d]]
    for j in range(n_lon):
        faces.append([top, j, (j + 1) % n_lon])
        k = (n_lat - 2) * n_lon
        faces.append([bottom, k + (j + 1) % n_lon, k + j])
    return verts, np.array(faces)


@pytest.fixture(scope="module")
def sphere_frames():
    v, f = _sphere()
    seq = np.stack([v, v * 1.2, v])
    return seq, f, R.render_frames(seq, f, size=(96, 64), camera=v * 1.3)


def test_sphere_render_not_black(sphere_frames):
    seq, _, frames = sphere_frames
    assert frames.shape == (3, 64, 96, 3) and frames.dtype == np.uint8
    covered = np.abs(frames.astype(int) - np.array(R.BACKGROUND)).max(-1) > 8
    assert 0.1 < covered[0].mean() < 0.9
    assert covered[1].mean() > covered[0].mean()  # the bigger sphere covers more
    assert frames[0].std() > 10


def test_camera_is_fixed_across_frames(sphere_frames):
    _, _, frames = sphere_frames
    assert np.array_equal(frames[0], frames[2])  # same vertices, same camera and lights -> same image


def test_blank_frames_raise(tmp_path):
    black = np.zeros((3, 32, 32, 3), np.uint8)
    with pytest.raises(R.BlankFrameError, match="uniform"):
        R.write_mp4(black, tmp_path / "black.mp4", fps=25)
    with pytest.raises(R.BlankFrameError):
        R.write_png_frames(black, tmp_path / "png")
    assert not list(tmp_path.rglob("*.mp4")) and not list(tmp_path.rglob("*.png"))
    empty = np.full((1, 32, 32, 3), 255, np.uint8)
    empty[0, 0, 0] = 0  # a single dark pixel: the mesh covers < 1 %
    with pytest.raises(R.BlankFrameError, match="covers"):
        R.check_frames(empty)
    v, f = _sphere()
    away = R.Camera(position=(0, 0, 5.0), focal_point=(0, 0, 10.0))  # looking away from the mesh
    with pytest.raises(R.BlankFrameError):
        R.render_frames(v[None], f, size=(32, 32), camera=away)


def test_mp4_with_audio_has_audio_stream_and_frames(tmp_path, sphere_frames):
    _, _, frames = sphere_frames
    frames = np.concatenate([frames] * 4)  # 12 frames, 0.48 s at 25 fps
    wav = tmp_path / "a.wav"
    sf.write(wav, (0.1 * np.sin(np.arange(8000) * 0.2)).astype(np.float32), 16000)
    out = R.write_mp4(frames, tmp_path / "clip.mp4", fps=25, audio_path=wav)
    info = R.probe_mp4(out)
    assert info["n_frames"] == 12 and info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert (info["width"], info["height"]) == (96, 64)
    silent = R.probe_mp4(R.write_mp4(frames, tmp_path / "silent.mp4", fps=25))
    assert silent["audio_codec"] is None and silent["n_frames"] == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "clip.mp4", "silent.mp4"]  # no temp files


def test_mp4_that_ffmpeg_fails_to_write_raises_and_leaves_nothing(tmp_path, sphere_frames):
    """imageio-ffmpeg ignores ffmpeg's exit status: an mp4 the muxer refused (1e-5 fps) was kept under its name
    with no video stream, and an ffmpeg that quit at start (a 16-channel track AAC cannot encode) was a
    broken-pipe OSError."""
    _, _, frames = sphere_frames
    with pytest.raises(R.VideoWriteError, match="nothing written"):
        R.write_mp4(frames, tmp_path / "slow.mp4", fps=1e-5)
    wav = tmp_path / "many.wav"
    sf.write(wav, np.zeros((8000, 16), np.float32), 16000)
    with pytest.raises(R.VideoWriteError, match="nothing written"):
        R.write_mp4(np.concatenate([frames] * 4), tmp_path / "many.mp4", fps=25, audio_path=wav)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(InputError, match="no samples"):  # ffmpeg writes a video without an audio stream
        R.write_mp4(frames, tmp_path / "empty.mp4", fps=25, audio_path=empty)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.wav", "many.wav"]  # no mp4, no temp file


def test_mp4_from_vertices_and_odd_size(tmp_path):
    v, f = _sphere()
    out = R.write_mp4(np.stack([v, v]), tmp_path / "v.mp4", fps=30, faces=f, size=(33, 33))
    info = R.probe_mp4(out)
    assert info["n_frames"] == 2 and (info["width"], info["height"]) == (34, 34)


def test_png_frames(tmp_path, sphere_frames):
    import imageio.v3 as iio

    _, _, frames = sphere_frames
    paths = R.write_png_frames(frames, tmp_path / "png", prefix="f")
    assert [p.name for p in paths] == ["f_00000.png", "f_00001.png", "f_00002.png"]
    assert np.array_equal(iio.imread(paths[1]), frames[1])


def test_frontal_camera_fits_reference():
    v, _ = _sphere()
    cam = R.frontal_camera(v, size=(100, 100))
    assert cam.focal_point == pytest.approx((0, 0, 0), abs=1e-9)
    assert cam.position[2] > 0.1 and cam.position[:2] == pytest.approx((0, 0), abs=1e-9)


def test_bad_inputs(tmp_path):
    v, f = _sphere()
    with pytest.raises(InputError):
        R.render_frames(v[None], f + 10_000)
    bad = v.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        R.render_frames(bad[None], f)
    with pytest.raises(InputError, match="faces"):
        R.write_mp4(v[None], tmp_path / "x.mp4", fps=25)  # vertices without faces
    with pytest.raises(InputError, match="audio"):
        R.write_mp4(np.zeros((1, 8, 8, 3), np.uint8), tmp_path / "x.mp4", fps=25,
                    audio_path=tmp_path / "no.wav")
    with pytest.raises(InputError, match="fps"):
        R.write_mp4(np.zeros((1, 8, 8, 3), np.uint8), tmp_path / "x.mp4", fps=0)


def test_mp4_fps_from_numpy_and_bool(tmp_path, sphere_frames):
    # a numpy frame rate (np.int64(25), np.float32(25), as read from a table or an npz) was refused as
    # "fps must be in (0, 240]"; True passed as 1 fps
    _, _, frames = sphere_frames
    for fps in (np.int64(25), np.float32(25.0)):
        assert R.probe_mp4(R.write_mp4(frames, tmp_path / "n.mp4", fps=fps))["n_frames"] == len(frames)
    for fps in (True, float("nan"), 241):
        with pytest.raises(InputError, match="fps"):
            R.write_mp4(frames, tmp_path / "x.mp4", fps=fps)


@pytest.mark.parametrize("size, margin", [((64, 32), 1.0), ((32, 64), 1.0), ((48, 48), 1.15)])
def test_frontal_camera_fits_the_reference_with_its_margin(size, margin):
    """``margin`` 1 touches the borders: a flat reference's bounding box spans the image's width or height
    (pixel edges at -0.5 and W - 0.5), whichever its aspect ratio fills first, centred; a margin m shrinks it m
    times. (Pinhole projection: :func:`p3d.viz.yt_slices.project_points`, checked against the renderer.)"""
    from p3d.viz.yt_slices import project_points

    ref = np.array([[-2.0, -0.5, 0.0], [2.0, 0.5, 0.0], [2.0, -0.5, 0.0], [-2.0, 0.5, 0.0]]) + [0.3, 1.0, -0.2]
    cam = R.frontal_camera(ref, size, margin=margin)
    px = project_points(ref, cam, size)
    w, h = size
    span_x, span_y = np.ptp(px[:, 0]), np.ptp(px[:, 1])
    # the box fills the image along the axis it fills first: 4 x 1 units in a W x H image
    scale = min(w / 4.0, h / 1.0) / margin  # pixels per unit
    assert (span_x, span_y) == pytest.approx((4.0 * scale, 1.0 * scale))
    assert px.mean(axis=0) == pytest.approx([(w - 1) / 2, (h - 1) / 2])


def test_a_nearly_black_frame_is_blank():
    """Blank: nearly black (mean < 8) even where its values vary and differ from the background everywhere."""
    dark = np.zeros((1, 32, 32, 3), np.uint8)
    dark[0, ::4, ::4] = 40  # value range 40, mean 2.5
    with pytest.raises(R.BlankFrameError, match="black"):
        R.check_frames(dark)


def test_an_mp4_short_of_the_frames_sent_is_refused(tmp_path, monkeypatch):
    """The written file must hold every frame sent: one that ffmpeg wrote short (here reported one frame short)
    is a VideoWriteError and nothing is left at the path."""
    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    probe = R.probe_mp4
    monkeypatch.setattr(R, "probe_mp4", lambda path: {**probe(path), "n_frames": probe(path)["n_frames"] - 1})
    with pytest.raises(R.VideoWriteError, match=f"{len(frames) - 1} frames where {len(frames)} frames"):
        R.write_mp4(frames, tmp_path / "short.mp4", fps=25)
    assert list(tmp_path.iterdir()) == []


def test_vertex_normals_face_the_viewer_and_weigh_by_area():
    """Counter-clockwise triangles (seen from +z, the viewer's side) have normals toward +z; a vertex shared by two
    faces takes the area-weighted mean of their normals, unit length."""
    v = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -2.0]])
    faces = np.array([[0, 1, 2], [0, 3, 2]])  # area 1/2 facing +z; area 1 in the y-z plane facing +x
    n = R.vertex_normals(v, faces)
    np.testing.assert_allclose(n[1], [0, 0, 1])
    np.testing.assert_allclose(n[3], [1, 0, 0])
    np.testing.assert_allclose(n[0], np.array([1.0, 0.0, 0.5]) / np.linalg.norm([1.0, 0.0, 0.5]))


def test_faces_indexing_one_past_the_last_vertex_are_refused():
    v, f = _sphere()
    bad = f.copy()
    bad[0, 0] = len(v)
    with pytest.raises(InputError, match="outside"):
        R.render_frames(v[None], bad, size=(32, 32))


def test_the_mouth_backdrop_lies_behind_the_mouth():
    """The dark quad behind the mouth: the mouth vertices' x-y box with a 10% margin, 5% of the mouth's width
    behind its rearmost vertex (in front of it, it would hide the lips)."""
    v = np.array([[0.0, 0.0, 0.1], [0.04, 0.01, 0.09], [0.02, -0.01, 0.08], [9.0, 9.0, 9.0]])
    quad = R._backdrop(v, np.array([0, 1, 2]))
    np.testing.assert_allclose(quad[:, 2], 0.08 - 0.05 * 0.04)
    np.testing.assert_allclose(quad[:, :2], [[-0.004, -0.012], [0.044, -0.012], [0.044, 0.012], [-0.004, 0.012]])


def test_coverage_counts_a_pixel_that_differs_from_the_background_in_one_channel():
    """Coverage: pixels that differ from the background by more than 8 in some channel (a mesh tinted in one
    channel only is on the image)."""
    frame = np.tile(np.array(R.BACKGROUND, np.uint8), (1, 32, 32, 1))
    frame[0, :16, :, 0] = np.uint8((int(R.BACKGROUND[0]) + 128) % 256)  # half the image, red channel only
    R.check_frames(frame, min_coverage=0.4)
    with pytest.raises(R.BlankFrameError, match="covers 50.00%"):
        R.check_frames(frame, min_coverage=0.6)
