"""Tests for p3d.viz.compare (validation, derived signals, the side-by-side renderer)."""
from __future__ import annotations

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.metrics.mtm import lip_distance
from p3d.synth import face
from p3d.topology import Topology
from p3d.viz import compare as C
from p3d.viz.render import BlankFrameError
from tiny_corpus import talking_face


def test_as_sequences_labels_and_shapes():
    a = talking_face(6)
    out = C.as_sequences([a, a.reshape(6, -1)], labels=["GT", "pred"])
    assert list(out) == ["GT", "pred"] and all(v.shape == (6, 468, 3) for v in out.values())
    assert list(C.as_sequences(a)) == ["seq 0"]
    assert list(C.as_sequences({"x": a}, labels=["y"])) == ["y"]
    with pytest.raises(InputError, match="frame counts"):
        C.as_sequences([a, a[:4]])
    cut = C.as_sequences([a, a[:4]], truncate=True)
    assert all(len(v) == 4 for v in cut.values())
    with pytest.raises(InputError, match="vertex counts"):
        C.as_sequences([a, a[:, :100]])
    with pytest.raises(InputError, match="unique"):
        C.as_sequences([a, a], labels=["GT", "GT"])
    with pytest.raises(InputError, match="2 given for 1"):
        C.as_sequences([a], labels=["a", "b"])
    bad = a.copy()
    bad[2, 5, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        C.as_sequences({"bad": bad})
    with pytest.raises(InputError, match="none given"):
        C.as_sequences([])


def test_faces_topology_and_audio_checks():
    f = face.faces()
    assert C.resolve_faces(None, face.face_topology(), 468).shape == f.shape
    with pytest.raises(InputError, match="outside"):
        C.resolve_faces(f + 1000, None, 468)
    with pytest.raises(InputError, match="none given"):
        C.resolve_faces(None, None, 468)
    with pytest.raises(InputError, match="468 vertices, the sequences have 10"):
        C.resolve_topology("synth-face", 10)
    with pytest.raises(InputError, match="sample rate"):
        C.load_audio_like((np.zeros(100), 0))
    with pytest.raises(InputError, match="not found"):
        C.load_audio_like("/nonexistent/a.wav")
    samples, sr = C.load_audio_like((np.array([0, 16384, -32767], dtype=np.int16), 16000))
    assert sr == 16000 and samples.dtype == np.float32 and samples[1] == pytest.approx(0.5, abs=1e-4)
    assert C.wav_bytes(samples, sr)[:4] == b"RIFF"
    for bad in (0, -1, float("nan"), 1000, True):
        with pytest.raises(InputError, match="fps"):
            C.check_fps(bad)


def test_unsigned_audio_samples_are_centred(tmp_path):
    """8-bit PCM is offset binary (128 = silence): it was divided by 255, a +0.5 DC offset and half the swing in
    the muxed track and the waveform. The samples must match what soundfile reads from the same 8-bit WAV."""
    import soundfile as sf
    from scipy.io import wavfile

    wav = tmp_path / "u8.wav"
    sf.write(wav, (0.5 * np.sin(np.arange(1600) * 0.2)).astype(np.float32), 16000, subtype="PCM_U8")
    sr, raw = wavfile.read(wav)
    assert raw.dtype == np.uint8
    samples, _ = C.load_audio_like((raw, sr))
    assert np.allclose(samples, sf.read(wav, dtype="float32")[0], atol=1e-6)
    assert C.load_audio_like((np.array([32768, 49152, 0], dtype=np.uint16), 16000))[0].tolist() == [0.0, 0.5, -1.0]


def test_integer_audio_samples_scale_as_load_audio_reads_the_file(tmp_path):
    """Signed PCM was divided by the type's maximum (int16 / 32767) where p3d.io.load_audio, p3d.audio and
    soundfile / torchaudio divide by 32768: a render's audio was 1.00003x what load_audio gives for the same file."""
    import soundfile as sf
    from scipy.io import wavfile

    from p3d.io import load_audio

    rng = np.random.default_rng(0)
    for subtype in ("PCM_16", "PCM_32", "PCM_U8"):
        wav = tmp_path / f"{subtype}.wav"
        sf.write(wav, (0.9 * rng.uniform(-1, 1, 1600)).astype(np.float32), 16000, subtype=subtype)
        sr, raw = wavfile.read(wav)
        samples, rate = C.load_audio_like((raw, sr))
        assert rate == 16000 and np.array_equal(samples, load_audio(wav)[0]), subtype
    assert C.load_audio_like((np.array([-32768, 16384], dtype=np.int16), 16000))[0].tolist() == [-1.0, 0.5]
    with pytest.raises(InputError, match="not a PCM format"):  # int64 has no PCM scale (it was divided by 2**63 - 1)
        C.load_audio_like((np.array([0, 16384]), 16000))



def test_channels_first_audio_is_refused():
    """A (channels, n) pair (torchaudio.load's layout) was averaged over axis 1: a 1 s stereo clip became 2 samples
    of audio in the rendered video."""
    stereo = np.zeros((2, 16000), dtype=np.float32)
    with pytest.raises(InputError, match="n_samples, n_channels"):
        C.load_audio_like((stereo, 16000))
    samples, sr = C.load_audio_like((stereo.T, 16000))
    assert samples.shape == (16000,) and sr == 16000


@pytest.mark.parametrize("size", ["big", None, "64", True, 31, 4097, 64.5, float("nan")])
def test_side_by_side_refuses_a_size_that_is_not_a_pixel_count(size):
    """size="big" was int()'s ValueError traceback and None a TypeError (SideBySide and render_comparison)."""
    with pytest.raises(InputError, match="size must be a panel size"):
        C.SideBySide([talking_face(2)], face.faces(), size=size)

def test_lip_distances_key_frames_and_errors():
    seqs = C.as_sequences({"GT": talking_face(12), "late": talking_face(12, shift=2)})
    topo = face.face_topology()
    dist = C.lip_distances(seqs, topo)
    assert np.allclose(dist["GT"], lip_distance(seqs["GT"], topo.mtm_upper, topo.mtm_lower))
    assert C.lip_distances(seqs, Topology("bare", 468)) is None
    frames = C.key_frames(dist["GT"], 12, 4)
    assert len(frames) == 4 and np.all(np.diff(frames) > 0)
    assert int(np.argmax(dist["GT"])) in frames and int(np.argmin(dist["GT"])) in frames
    assert C.key_frames(None, 12, 4).tolist() == [0, 5, 8, 11]
    assert C.key_frames(None, 2, 4).tolist() == [0, 1]
    err = C.vertex_errors(seqs, "GT")
    assert list(err) == ["late"] and err["late"].shape == (12, 468)
    assert np.allclose(err["late"], np.linalg.norm(seqs["late"] - seqs["GT"], axis=-1))
    with pytest.raises(InputError, match="not one of"):
        C.vertex_errors(seqs, "nope")


def test_mouth_opening_is_the_inner_lip_contour():
    upper, lower = face.inner_lip_contours()
    got = C.mouth_opening(face.faces(), face.face_topology())
    assert set(got.tolist()) == set(upper.tolist()) | set(lower.tolist())
    assert C.mouth_opening(face.faces(), Topology("bare", 468)) is None


def test_highlight_spec_skips_what_the_topology_lacks(caplog):
    regions, points = C.highlight_spec(("lips", "mtm", "nose_tip_x"), face.face_topology())
    assert list(regions) == ["lips"] and points.tolist() == [0, 17]
    assert "nose_tip_x" in caplog.text
    assert C.highlight_spec(("lips", "mtm"), None) == ({}, None)
    assert C.highlight_spec(None, face.face_topology()) == ({}, None)


def test_side_by_side_same_camera_captions_and_error_colours():
    a = talking_face(4)
    with C.SideBySide({"GT": a, "copy": a.copy(), "late": talking_face(4, shift=1)}, topology="synth-face",
                      size=64, error_against="GT") as scene:
        frame = scene.frame(1)
        assert frame.shape == scene.shape == (64 + scene.caption_height, 3 * 64, 3)
        gt, copy, late = (scene.panel(i, 1) for i in range(3))
        # the zero-error copy is coloured by the error map (pale), not the highlight colours of GT
        assert not np.array_equal(gt, copy)
        assert not np.array_equal(copy, late)
        strip = frame[:scene.caption_height]
        assert (strip < 128).any()  # caption text drawn
    with C.SideBySide({"a": a, "b": a.copy()}, face.faces(), size=64, highlight=None, captions=False) as scene:
        assert scene.shape == (64, 128, 3)
        assert np.array_equal(scene.panel(0, 2), scene.panel(1, 2))  # one camera, one scene
        with pytest.raises(InputError, match="outside"):
            scene.panel(0, 4)


def test_side_by_side_panel_refuses_an_index_or_frame_out_of_range():
    a = talking_face(4)
    with C.SideBySide({"a": a, "b": a * 1.01}, face.faces(), size=48, highlight=None, captions=False) as scene:
        last = scene.panel(1, 1)
        assert np.array_equal(scene.panel(np.int64(1), np.int64(1)), last)
        for bad in (-1, 2, True, 0.5, "0"):  # -1 showed the last panel, 2 an IndexError, True panel 1
            with pytest.raises(InputError, match=f"panel {bad!r} outside"):
                scene.panel(bad, 1)
        for bad in (1.5, True, "1"):  # 1.5 was truncated to frame 1, "1" a TypeError
            with pytest.raises(InputError, match="frame .* outside"):
                scene.panel(0, bad)


def test_blank_panel_raises_with_its_label():
    with C.SideBySide({"collapsed": np.zeros((2, 468, 3))}, face.faces(), size=48) as scene:
        with pytest.raises(BlankFrameError, match="panel 'collapsed'"):
            scene.frame(0)


def test_caption_strip_shrinks_long_text():
    strip = C.caption_strip(["GT", "a very long caption that does not fit in a small panel at all"], 80, 16)
    assert strip.shape == (16, 160, 3) and strip.dtype == np.uint8
    assert (strip[:, :80] < 128).any() and (strip[:, 80:] < 128).any()


def test_key_frames_start_from_the_widest_and_narrowest_opening():
    """The widest and the narrowest lip opening come first (here in mid-clip, far from the ends the spreading
    picks), then frames far from those."""
    dist = np.array([5, 4, 3, 2, 1, 0.5, 1, 2, 3, 4, 5, 6], dtype=float)
    assert C.key_frames(dist, 12, 2).tolist() == [5, 11]
    assert C.key_frames(dist, 12, 3).tolist() == [0, 5, 11]


def test_vertex_errors_are_euclidean_distances():
    ref = np.zeros((2, 3, 3))
    moved = ref.copy()
    moved[1, 2] = [3.0, 4.0, 0.0]  # 5 away in the x-y plane
    moved[0, 0] = [1.0, 2.0, 2.0]  # 3 away
    err = C.vertex_errors({"GT": ref, "m": moved}, "GT")
    np.testing.assert_allclose(err["m"], [[3.0, 0.0, 0.0], [0.0, 0.0, 5.0]])


class _NoPanel:
    """Stands in for a rendered panel (the scene's numbers without a render window)."""

    def __init__(self, *args, **kwargs):
        pass

    def close(self):
        pass


def test_the_error_colour_scale_spans_the_largest_error_and_its_caption_says_so(monkeypatch):
    """The error panels' colour scale runs from 0 to the largest per-vertex error of any panel and frame, and
    the caption states that range (the panels themselves are not rendered here)."""

    monkeypatch.setattr(C, "_Panel", _NoPanel)
    a = talking_face(3)
    b = a.copy()
    b[1, 7] += [0.003, 0.004, 0.0]  # the largest error: 5 mm at one vertex of frame 1
    with C.SideBySide({"GT": a, "m": b}, face.faces(), size=32, highlight=None, error_against="GT") as scene:
        assert scene.error_clim == pytest.approx((0.0, 0.005))
        assert scene.captions == ["GT", "m  (error vs GT: 0-0.005)"]


def test_truncate_keeps_each_sequence_from_its_first_frame():
    """Cut to the shortest: the frames kept are the first ones, so frame t stays at t / fps, with the audio."""
    a = np.random.default_rng(0).normal(size=(6, 5, 3))
    cut = C.as_sequences({"long": a, "short": a[:4] + 1.0}, truncate=True)
    np.testing.assert_array_equal(cut["long"], a[:4])
    np.testing.assert_array_equal(cut["short"], a[:4] + 1.0)


def test_the_camera_frames_every_frame_of_every_sequence(monkeypatch):
    """One camera fitted to the bounding box of every frame of every sequence: a sequence whose last frame moves
    away from the others' place stays in view (the panels themselves are not rendered here)."""
    from p3d.viz.yt_slices import project_points

    monkeypatch.setattr(C, "_Panel", _NoPanel)
    a = talking_face(3)
    b = a.copy()
    b[2] += [0.08, -0.05, 0.0]
    with C.SideBySide({"GT": a, "m": b}, face.faces(), size=40, highlight=None) as scene:
        px = project_points(np.concatenate([a.reshape(-1, 3), b.reshape(-1, 3)]), scene.camera, (40, 40))
    assert px.min() >= -0.5 and px.max() <= 39.5


def test_each_caption_is_drawn_over_its_own_panel():
    strip = C.caption_strip(["GT", "model"], 60, 16)
    ink = (strip < 128).any(axis=(0, 2))
    assert ink[:60].any() and ink[60:].any()
    assert not ink[:8].any() and not ink[52:68].any() and not ink[112:].any()  # centred, clear of the edges
