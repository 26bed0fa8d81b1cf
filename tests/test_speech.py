"""Tests for p3d.synth.speech (espeak-ng synthesis with exact phoneme timings)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import soundfile as sf

from p3d.errors import InputError
from p3d.synth import speech as S

TEXT = "Maybe five blue boats, then home."


@pytest.fixture(scope="module")
def batch() -> dict[str, S.Utterance]:
    """One batch of short utterances, shared by the tests (one server start)."""
    reqs = {
        "base": dict(text=TEXT),
        "again": dict(text=TEXT),
        "fast": dict(text=TEXT, rate=280),
        "quiet": dict(text=TEXT, volume=40),
        "gap": dict(text="one two three", word_gap=25),
        "variant": dict(text=TEXT, voice="en-gb+m3"),
        "apostrophe": dict(text="Don't stop (now)!"),
    }
    return dict(zip(reqs, S.synthesize_many(list(reqs.values()), workers=2)))


def test_audio_and_monotonic_phonemes(batch):
    u = batch["base"]
    assert u.sample_rate == 16000 and u.audio.dtype == np.float32 and u.audio.ndim == 1
    assert 0.5 < u.duration < 5 and np.abs(u.audio).max() <= 1.0 and np.sqrt(np.mean(u.audio ** 2)) > 0.01
    starts = [p[1] for p in u.phonemes]
    assert starts[0] == 0.0 and all(b > a for a, b in zip(starts, starts[1:]))
    assert all(p[2] == q[1] for p, q in zip(u.phonemes, u.phonemes[1:]))  # contiguous tiling
    assert u.phonemes[-1][2] == pytest.approx(u.duration, abs=1 / 16000)
    symbols = [p[0] for p in u.phonemes]
    for expected in ("m", "f", "b", "u:", "oU"):
        assert expected in symbols, (expected, symbols)
    assert len(u.stress) == len(u.phonemes) and max(u.stress) == 2


def test_words_in_order_and_inside_audio(batch):
    u = batch["base"]
    assert [w[0] for w in u.words] == ["Maybe", "five", "blue", "boats", "then", "home"]
    for (_, s, e), (_, s2, _) in zip(u.words, u.words[1:]):
        assert s < e <= s2
    assert u.words[-1][2] <= u.duration
    assert [w[0] for w in batch["apostrophe"].words] == ["Don't", "stop", "now"]


def test_pauses_are_silent(batch):
    u = batch["gap"]
    pauses = [(s, e) for sym, s, e in u.phonemes if sym == S.PAUSE and e - s > 0.1]
    assert len(pauses) >= 2, u.phonemes
    speech_rms = np.sqrt(np.mean(u.audio ** 2))
    for s, e in pauses:
        seg = u.audio[int((s + 0.02) * u.sample_rate):int(e * u.sample_rate)]
        assert np.sqrt(np.mean(seg ** 2)) < 0.01 * speech_rms


def test_same_request_same_bytes(batch, tmp_path):
    assert batch["base"].audio.tobytes() == batch["again"].audio.tobytes()
    assert batch["base"].phonemes == batch["again"].phonemes
    # a separate call (new server processes) gives the same bytes, wav files included
    again = S.synthesize(TEXT)
    assert again.audio.tobytes() == batch["base"].audio.tobytes()
    batch["base"].write_wav(tmp_path / "a.wav")
    again.write_wav(tmp_path / "b.wav")
    digest = [hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.wav", "b.wav")]
    assert digest[0] == digest[1]
    audio, sr = sf.read(tmp_path / "a.wav", dtype="float32")
    assert sr == 16000 and len(audio) == len(batch["base"].audio)


def test_rate_and_volume_change_duration_and_rms(batch):
    base, fast, quiet = batch["base"], batch["fast"], batch["quiet"]
    assert fast.duration < 0.8 * base.duration
    rms = lambda u: float(np.sqrt(np.mean(u.audio ** 2)))  # noqa: E731
    assert rms(quiet) < 0.6 * rms(base)
    spoken = lambda u: [p[0] for p in u.phonemes if p[0] != S.PAUSE]  # noqa: E731
    assert spoken(fast) == spoken(base)


def test_voice_variant_changes_audio(batch):
    assert batch["variant"].request.voice == "en+m3"  # en-gb is an alias of espeak-ng's "en"
    assert batch["variant"].audio.tobytes() != batch["base"].audio.tobytes()


def test_times_are_native_sample_exact(batch):
    # every boundary is an integer number of 22050 Hz samples
    for _, s, e in batch["base"].phonemes:
        assert abs(s * 22050 - round(s * 22050)) < 1e-6 and abs(e * 22050 - round(e * 22050)) < 1e-6


def test_frame_labels():
    ph = [("_", 0.0, 0.1), ("m", 0.1, 0.2), ("a", 0.2, 0.5)]
    assert S.frame_labels(ph, fps=10, n_frames=7) == ["_", "m", "a", "a", "a", "_", "_"]
    with pytest.raises(InputError):
        S.frame_labels(ph, fps=0, n_frames=3)
    assert S.frame_labels(ph, fps=np.float32(10), n_frames=np.int64(3)) == S.frame_labels(ph, 10, 3.0)


def test_frame_labels_bad_input():
    # NaN fps labelled every frame a pause, unsorted start times gave silently wrong labels (searchsorted),
    # a fractional n_frames was rounded up by np.arange (2.5 -> 3 frames)
    ph = [("_", 0.0, 0.1), ("m", 0.1, 0.2), ("a", 0.2, 0.5)]
    for fps, n in ((float("nan"), 3), (10, 2.5), (10, -1), (True, 3)):
        with pytest.raises(InputError, match="frame_labels"):
            S.frame_labels(ph, fps=fps, n_frames=n)
    with pytest.raises(InputError, match="non-decreasing"):
        S.frame_labels([("a", 0.2, 0.3), ("b", 0.0, 0.1)], fps=25, n_frames=8)


def test_list_voices_and_validation():
    voices = S.list_voices()
    assert voices[0] == "en-us" and "en-us+f3" in voices and "en+m3" in voices
    assert len(voices) >= 50 and len(set(voices)) == len(voices)
    assert all(S.resolve_voice(v) == v for v in voices)
    for bad in ("xx-yy", "en-us+nonexistent", ""):
        with pytest.raises(InputError):
            S.SpeechRequest("hello", voice=bad)
    for kwargs in (dict(rate=10), dict(volume=-1), dict(pitch=101), dict(rate=1.5)):
        with pytest.raises(InputError):
            S.SpeechRequest("hello", **kwargs)
    with pytest.raises(InputError):
        S.SpeechRequest("   ")


def test_transcribe():
    expected = [["tS", "3:", "tS"], ["f", "aI", "v"], ["m", "u:", "n"]]
    assert S.transcribe(["church", "five", "moon"]) == expected


def test_timings_from_events():
    # WORD at 0, pause, two phonemes, END, trailing pauses at the end of the audio
    events = [(1, 0, 1, 2, 1), (7, 10, 1, 0, "_"), (7, 100, 1, 0, "'m"), (7, 300, 1, 0, "i:"),
              (7, 500, 3, 0, "_:"), (7, 600, 3, 0, "_"), (5, 600, 3, 0, 1)]
    ph, stress, words = S._timings(events, "me", n_native=600, sr=100)
    assert ph == [("_", 0.0, 1.0), ("m", 1.0, 3.0), ("i:", 3.0, 5.0), ("_", 5.0, 6.0)]
    assert stress == [0, 2, 0, 0]
    assert words == [("me", 1.0, 5.0)]


def test_missing_library_raises(monkeypatch):
    import ctypes

    import espeakng_loader

    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak-ng.so")
    monkeypatch.setattr(S, "_DEBIAN_LIBS", ("/nonexistent/libespeak-ng.so.1",))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(S.EspeakNotFoundError, match="espeakng-loader"):
        S.find_espeak()


def test_frame_labels_use_frame_centres_and_half_open_phonemes():
    """Boundaries that are not on frame edges (the test above has them all on edges, where the frame start
    and the frame centre give the same labels). fps 4: centres 0.125, 0.375, 0.625, 0.875 s (exact in binary).
    A phoneme [start, end) contains a centre equal to its start, not one equal to its end."""
    ph = [("_", 0.0, 0.2), ("m", 0.2, 0.375), ("a", 0.375, 0.625)]
    assert S.frame_labels(ph, fps=4, n_frames=4) == ["_", "a", "_", "_"]
    ph = [("_", 0.0, 0.1), ("m", 0.1, 0.3), ("a", 0.3, 0.7)]
    assert S.frame_labels(ph, fps=4, n_frames=4) == ["m", "a", "a", "_"]
    # the same rule as the viseme labels (p3d.synth.visemes.frame_labels: "start <= centre", "at or past the end")
    from p3d.synth.visemes import frame_labels as viseme_frame_labels

    for ph in ([("_", 0.0, 0.2), ("m", 0.2, 0.375), ("a", 0.375, 0.625)], [("p", 0.0, 0.125), ("a", 0.125, 0.9)]):
        assert S.frame_labels(ph, 4, 4) == viseme_frame_labels(ph, 4, 4)[0]


def test_timings_drop_zero_length_phonemes_and_never_go_backwards():
    """Raw events by hand (sr 100, so sample 100 = 1 s): two phonemes at the same sample (the first has zero
    length and is dropped); an event earlier than the one before it starts where that one starts."""
    events = [(1, 0, 1, 1, 1), (7, 100, 1, 0, "m"), (7, 300, 1, 0, "a"), (7, 300, 1, 0, "t"),
              (7, 400, 1, 0, "i:"), (5, 500, 1, 0, 1)]
    ph, stress, _ = S._timings(events, "x", n_native=500, sr=100)
    assert ph == [("_", 0.0, 1.0), ("m", 1.0, 3.0), ("t", 3.0, 4.0), ("i:", 4.0, 5.0)]
    assert len(stress) == len(ph)
    events = [(7, 100, 1, 0, "m"), (7, 300, 1, 0, "a"), (7, 250, 1, 0, "t"), (7, 400, 1, 0, "i:")]
    ph, _, _ = S._timings(events, "x", n_native=500, sr=100)
    assert ph == [("_", 0.0, 1.0), ("m", 1.0, 3.0), ("t", 3.0, 4.0), ("i:", 4.0, 5.0)]


def test_word_text_positions_are_one_based():
    """espeak-ng's WORD events give 1-based character positions: "b a" has words at 1 and 3; the last,
    one-letter word must still be found."""
    events = [(1, 0, 1, 1, 1), (7, 0, 1, 0, "b"), (1, 100, 3, 1, 2), (7, 100, 3, 0, "a"), (5, 200, 3, 0, 1)]
    _, _, words = S._timings(events, "b a", n_native=200, sr=100)
    assert words == [("b", 0.0, 1.0), ("a", 1.0, 2.0)]


def test_timings_clamp_events_to_the_audio():
    """An event past the end of the audio (or before its start) is clamped to it, so the phonemes still tile
    [0, duration]: here /a/ at sample 700 of 500 has zero length and is dropped."""
    events = [(7, -5, 1, 0, "m"), (7, 100, 1, 0, "i:"), (7, 700, 1, 0, "a")]
    ph, _, _ = S._timings(events, "x", n_native=500, sr=100)
    assert ph == [("m", 0.0, 1.0), ("i:", 1.0, 5.0)]
