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
