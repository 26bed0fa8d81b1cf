"""Speech features: Kaldi fbank, the 25/30 fps windowing, and the on-disk feature cache."""
from __future__ import annotations

import math

import numpy as np
import pytest

from p3d import audio as A
from p3d.errors import InputError
from reference_resample import windowed_sinc_direct


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


def test_feature_sample_rate_is_640_per_frame():
    assert A.feature_sample_rate(25) == 16000
    assert A.feature_sample_rate(30) == 19200
    for bad in (0, -25, float("nan")):
        with pytest.raises(InputError):
            A.feature_sample_rate(bad)


@pytest.mark.parametrize("fps", [60, 50, 24, 12.5])
def test_frame_rates_outside_the_representations_are_refused(fps):
    """The rule 640 x fps is the paper's between 25 fps (LRS3, training) and 30 fps (VOCASET, PLRS and the loss);
    at 60 fps it gave 38.4 kHz, 83 ms windows of speech stretched 2.4x, a PLRS no official script gives."""
    with pytest.raises(InputError, match=rf"fps: {fps:g} fps is outside the 25-30 fps .* \[::2\]"):
        A.feature_sample_rate(fps)
    with pytest.raises(InputError, match="outside the 25-30 fps"):
        A.speech_windows(np.zeros(16000, np.float32), 16000, fps)


@pytest.mark.parametrize("frame_ms,bins,window", [(25, 80, "povey"), (25, 80, "hanning"), (8, 23, "hanning"),
                                                  (25, 40, "hamming")])
def test_fbank_matches_kaldi_native_fbank(frame_ms, bins, window):
    import kaldi_native_fbank as knf  # pinned in the test extra
    x = _noise(8000)
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.frame_length_ms = frame_ms
    opts.frame_opts.frame_shift_ms = 10
    opts.frame_opts.window_type = window
    opts.mel_opts.num_bins = bins
    opts.use_energy = False
    online = knf.OnlineFbank(opts)
    online.accept_waveform(16000, x.tolist())
    online.input_finished()
    ref = np.stack([online.get_frame(i) for i in range(online.num_frames_ready)])
    ours = A.kaldi_fbank(x, A.FbankOptions(frame_length_ms=frame_ms, num_mel_bins=bins, window_type=window))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_official_setting_shape_and_empty_filters():
    fb = A.kaldi_fbank(_noise(3200))
    assert fb.shape == (20, 128)  # 1 + (3200 - 128) // 160
    empty = A.empty_mel_bins()
    assert len(empty) == 38 and empty[0] == 0
    # filters that cover no FFT bin are floored at float32 eps before the log, as torchaudio does
    np.testing.assert_allclose(fb[:, empty], math.log(np.finfo(np.float32).eps), rtol=1e-6)
    live = np.setdiff1d(np.arange(128), empty)
    assert (fb[:, live] > math.log(np.finfo(np.float32).eps) + 1e-3).all()


def test_fbank_of_a_tone_peaks_at_its_frequency():
    t = np.arange(16000) / 16000
    fb = A.kaldi_fbank(np.sin(2 * np.pi * 3000 * t), A.FbankOptions(frame_length_ms=25, num_mel_bins=40))
    delta = (A.mel_scale(8000) - A.mel_scale(20)) / 41
    centres = 700 * np.expm1((A.mel_scale(20) + (np.arange(40) + 1) * delta) / 1127)
    assert abs(centres[fb.mean(axis=0).argmax()] - 3000) < 150


def _official_windows(x: np.ndarray, sr: int, fps: float) -> np.ndarray:
    """The official per-window loop: 3200-sample windows, hop 640, mean removed, fbank, normalise."""
    y = A.resample_for_fps(x, sr, fps)
    out, i = [], 0
    while i * 640 + 3200 <= y.size:
        w = y[i * 640: i * 640 + 3200].astype(np.float64)
        out.append(A.normalise_fbank(A.kaldi_fbank(w - w.mean())))
        i += 1
    return np.stack(out)


@pytest.mark.parametrize("fps", [25, 30])
def test_windows_equal_the_official_per_window_computation(fps):
    x = _noise(16000 + 777, seed=1) + 0.05  # a DC offset too
    ours = A.speech_windows(x, 16000, fps)
    ref = _official_windows(x, 16000, fps)
    assert ours.shape == ref.shape and ours.shape[1:] == (20, 128) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=2e-4)


def test_window_count_and_pairing_with_mesh_frames():
    x = _noise(32000)  # 2 s at 16 kHz
    n_audio = A.n_speech_windows(A.resample_for_fps(x, 16000, 30).size)
    assert n_audio == (38400 - 3200) // 640 + 1 == 56
    assert A.speech_windows(x, 16000, 30).shape[0] == 56
    assert A.speech_windows(x, 16000, 30, n_frames=40).shape[0] == 36  # T - 4
    assert A.speech_windows(x, 16000, 30, n_frames=100).shape[0] == 56
    assert A.speech_windows(x[:2000], 16000, 25).shape == (0, 20, 128)
    # window i starts at mesh frame i: at 25 fps, 640 samples = one frame of 16 kHz audio
    full = A.speech_windows(x, 16000, 25)
    shifted = A.speech_windows(x[640:], 16000, 25)
    np.testing.assert_allclose(shifted[0], full[1], atol=1e-5)


def test_resample_rounds_length_up():
    assert A.resample_for_fps(_noise(16001), 16000, 30).size == math.ceil(16001 * 6 / 5)


def test_fbank_normalisation_is_audioset_mean_over_twice_the_std():
    # official code / AudioMAE: (fbank + 4.2677393) / (2 * 4.5689974), written out here independently
    raw = np.array([[-4.2677393, 0.0, 4.5689974, -20.0]], np.float32)
    np.testing.assert_allclose(A.normalise_fbank(raw), (raw + 4.2677393) / (2 * 4.5689974), rtol=1e-6)
    x = _noise(3200, seed=2)
    window = A.speech_windows(x, 16000, 25)[0]
    np.testing.assert_allclose(window, (A.kaldi_fbank(x - x.mean()) + 4.2677393) / (2 * 4.5689974), atol=1e-5)


def test_pad_frames_uses_normalised_zero_energy():
    w = A.speech_windows(_noise(4000), 16000, 25)
    p = A.pad_frames(w, 64)
    assert p.shape == (w.shape[0], 64, 128)
    np.testing.assert_array_equal(p[:, :20], w)
    np.testing.assert_allclose(p[:, 20:], 4.2677393 / (2 * 4.5689974), rtol=1e-6)


def test_bad_audio_is_rejected():
    with pytest.raises(InputError, match="NaN"):
        A.speech_windows(np.array([0.0, np.nan] * 2000), 16000, 25)
    with pytest.raises(InputError, match="mono"):
        A.speech_windows(np.zeros((4000, 2)), 16000, 25)
    with pytest.raises(InputError, match="sample rate"):
        A.speech_windows(np.zeros(4000), 0, 25)


def test_feature_cache(tmp_path, monkeypatch):
    import soundfile as sf
    wav = tmp_path / "clip.wav"
    sf.write(wav, _noise(16000), 16000)
    cache = A.FeatureCache(tmp_path / "cache")
    calls = []
    real = A.clip_fbank
    monkeypatch.setattr(A, "clip_fbank", lambda *a, **k: calls.append(1) or real(*a, **k))

    first = cache.windows(wav, 30, n_frames=20)
    again = cache.windows(wav, 30, n_frames=20)
    assert len(calls) == 1 and first.shape == (16, 20, 128)
    np.testing.assert_array_equal(first, again)
    samples, sr = sf.read(wav, dtype="float32")
    np.testing.assert_allclose(first, A.speech_windows(samples, sr, 30, n_frames=20), atol=1e-6)
    calls.clear()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1

    cache.windows(wav, 25)  # another frame rate: another entry
    sf.write(wav, _noise(16000, seed=5), 16000)  # edited file: another entry
    cache.windows(wav, 30)
    assert len(calls) == 2 and len(list((tmp_path / "cache").glob("*.npy"))) == 3

    entry = tmp_path / "cache" / f"{cache.key(wav, 30)}.npy"
    entry.write_bytes(b"garbage")  # corrupt entry: recomputed and rewritten
    cache.windows(wav, 30)
    assert len(calls) == 3 and np.load(entry, allow_pickle=False).shape[1] == 128

    with pytest.raises(InputError, match="not found"):
        cache.windows(tmp_path / "missing.wav", 30)


def test_feature_cache_entries_of_an_older_feature_version_are_not_reused(tmp_path, monkeypatch):
    """An entry written before the front-end changed (version 1: soxr and the channel mean) must not be read as
    the official front-end's features: the key hashes FEATURE_VERSION (and the fbank options)."""
    import dataclasses

    import soundfile as sf
    wav = tmp_path / "clip.wav"
    sf.write(wav, _noise(16000), 16000)
    cache = A.FeatureCache(tmp_path / "cache")
    current = cache.key(wav, 30)
    monkeypatch.setattr(A, "FEATURE_VERSION", A.FEATURE_VERSION - 1)
    assert cache.key(wav, 30) != current
    monkeypatch.undo()
    assert cache.key(wav, 30) == current
    other = A.FeatureCache(tmp_path / "cache", dataclasses.replace(A.FbankOptions(), num_mel_bins=64))
    assert other.key(wav, 30) != current


# --- the official front-end: torchaudio's sinc resampler, channel 0 ------------------------------

@pytest.mark.parametrize("orig", [16000, 22050, 44100, 48000])
def test_resample_equals_the_windowed_sinc_formula(orig):
    x = _noise(1500, seed=orig).astype(np.float64) * 5
    ref = windowed_sinc_direct(x, orig, 19200)
    # float64 input: the algorithm itself (kernel grid, padding, phases, length) to float64 rounding
    np.testing.assert_allclose(A.resample(x, orig, 19200), ref, atol=1e-11)
    # float32 input is computed in float32 (as torchaudio does for a float32 waveform)
    y32 = A.resample(x.astype(np.float32), orig, 19200)
    assert y32.dtype == np.float32 and y32.shape == ref.shape == (math.ceil(1500 * 19200 / orig),)
    np.testing.assert_allclose(y32, ref, atol=1e-5)
    # the kaiser variant; torchaudio normalises by I0(beta) evaluated in float32
    kaiser = A.resample(x, orig, 19200, method="sinc_interp_kaiser")
    np.testing.assert_allclose(kaiser, windowed_sinc_direct(x, orig, 19200, kaiser=True), atol=1e-7)


def test_resample_is_not_soxr_and_keeps_the_passband():
    sr = 22050
    t = np.arange(sr) / sr
    tone = np.sin(2 * np.pi * 1000 * t)
    y = A.resample_for_fps(tone, sr, 30)  # 19200 Hz
    ty = np.arange(y.size) / 19200
    middle = slice(200, -200)  # away from the zero-padded edges
    np.testing.assert_allclose(y[middle], np.sin(2 * np.pi * 1000 * ty)[middle], atol=2e-3)
    np.testing.assert_array_equal(A.resample(tone, sr, sr), tone)
    with pytest.raises(InputError, match="method"):
        A.resample(tone, sr, 16000, method="soxr_hq")
    with pytest.raises(InputError, match="positive integer"):
        A.resample(tone, 22050.5, 16000)


def test_stereo_speech_keeps_channel_0(tmp_path):
    import soundfile as sf
    left, right = _noise(20000, seed=3) * 0.3, _noise(20000, seed=4) * 0.3
    wav = tmp_path / "stereo.wav"
    sf.write(wav, np.stack([left, right], axis=1), 44100, subtype="FLOAT")
    samples, sr = A.load_speech_audio(wav)
    assert sr == 44100 and samples.shape == (20000,)
    np.testing.assert_array_equal(samples, left.astype(np.float32))
    np.testing.assert_array_equal(A.first_channel(np.stack([left, right], axis=1)), left)
    cached = A.FeatureCache(tmp_path / "cache").windows(wav, 30)
    np.testing.assert_allclose(cached, A.speech_windows(left.astype(np.float32), 44100, 30), atol=1e-6)
    averaged = A.speech_windows(((left + right) / 2).astype(np.float32), 44100, 30)
    assert np.abs(cached - averaged).max() > 0.1  # the channel choice matters


def test_resampling_5_s_at_44k1_is_fast_enough():
    # not a timing assertion: the polyphase conv1d keeps a 5 s clip to a few ms (measured ~6 ms);
    # this only checks the long-input path runs and gives the right length
    assert A.resample(_noise(5 * 44100).astype(np.float32), 44100, 19200).shape == (5 * 19200,)


def test_integer_pcm_is_scaled_to_the_float_range():
    """Integer samples (scipy.io.wavfile) were taken as floats unscaled, shifting every log-mel value (PLRS changed
    with no warning); now int16 / 32768, as torchaudio.load reads the official script's wav."""
    from p3d.audio import resample_for_fps

    rng = np.random.default_rng(0)
    pcm = rng.integers(-20000, 20000, size=16000, dtype=np.int16)
    as_float = resample_for_fps(pcm.astype(np.float32) / 32768, 16000, 30)
    np.testing.assert_allclose(resample_for_fps(pcm, 16000, 30), as_float, atol=1e-6)
    u8 = (pcm // 256 + 128).astype(np.uint8)
    np.testing.assert_allclose(resample_for_fps(u8, 16000, 30),
                               resample_for_fps((u8.astype(np.float32) - 128) / 128, 16000, 30), atol=1e-6)


def test_no_samples_give_no_windows_not_a_resampler_crash():
    assert A.resample(np.zeros(0, np.float32), 16000, 19200).shape == (0,)
    assert A.resample(np.zeros((2, 0)), 44100, 16000).shape == (2, 0)
    assert A.speech_windows(np.zeros(0, np.float32), 16000, 30).shape == (0, 20, 128)  # as audio shorter than 5 frames


@pytest.mark.parametrize("fps", [np.float32(30), np.int64(30), np.float64(30)])
def test_a_numpy_frame_rate_is_a_frame_rate(fps):
    assert A.feature_sample_rate(fps) == 19200


@pytest.mark.parametrize("fps", [True, "30", None, 0, -25, float("nan")])
def test_a_frame_rate_that_is_not_a_positive_number_is_refused(fps):
    with pytest.raises(InputError, match="fps: expected a positive frame rate"):
        A.feature_sample_rate(fps)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_64_bit_integer_samples_are_refused_not_scaled_to_silence(dtype):
    """np.array(list_of_pcm_values) is int64; scaled by the int64 range its samples were ~1e-15 and every
    speech window the constant log floor."""
    pcm = np.random.default_rng(0).integers(0, 20000, size=16000).astype(dtype)
    with pytest.raises(InputError, match="not a PCM format"):
        A.speech_windows(pcm, 16000, 30)


def test_first_channel_refuses_the_channels_first_layout():
    stereo = np.stack([np.linspace(-1, 1, 100), np.zeros(100)], axis=1)
    np.testing.assert_array_equal(A.first_channel(stereo), stereo[:, 0])
    with pytest.raises(InputError, match="transpose a \\(channels, samples\\) array"):
        A.first_channel(stereo.T)  # was (2,): the first sample of each channel


def test_float_samples_at_integer_scale_are_refused_not_shifted():
    """int16 PCM converted to float without scaling (``wavfile.read(...).astype(np.float32)``) shifted every
    normalised fbank value by log(32768) / (2 * 4.57), ~2.3: a silently wrong PLRS. Float audio slightly past
    full scale is still read."""
    pcm = (np.sin(np.linspace(0, 400, 16000)) * 20000).astype(np.int16)
    with pytest.raises(InputError, match="integer PCM stored as float"):
        A.speech_windows(pcm.astype(np.float32), 16000, 30)
    np.testing.assert_allclose(A.speech_windows(pcm.astype(np.float32) / 32768, 16000, 30),
                               A.speech_windows(pcm, 16000, 30), atol=1e-5)
    assert A.speech_windows(pcm.astype(np.float32) / 32768 * 1.5, 16000, 30).shape[0] > 0


def test_a_boolean_sample_rate_is_refused():
    """``True`` is an int in Python: ``speech_windows(audio, True, 30)`` read the audio as 1 Hz and resampled it."""
    with pytest.raises(InputError, match="sample rate"):
        A.speech_windows(np.zeros(16000, np.float32), True, 30)


def test_kaiser_resampling_defaults_to_torchaudios_beta():
    """``sinc_interp_kaiser`` without ``beta`` uses torchaudio's default 14.769656459379492, written out here (the
    reference resampler of these tests imports :data:`p3d.audio.KAISER_BETA`, so it cannot notice a changed one)."""
    x = _noise(800, seed=7).astype(np.float64)
    np.testing.assert_array_equal(A.resample(x, 22050, 19200, method="sinc_interp_kaiser"),
                                  A.resample(x, 22050, 19200, method="sinc_interp_kaiser", beta=14.769656459379492))
    assert np.abs(A.resample(x, 22050, 19200, method="sinc_interp_kaiser", beta=8.6)
                  - A.resample(x, 22050, 19200, method="sinc_interp_kaiser")).max() > 1e-6


def test_fbank_options_outside_kaldis_range_are_refused():
    """Kaldi needs more than 3 mel bins and 0 <= low_freq < high_freq <= Nyquist (a non-positive high_freq counts
    down from Nyquist): other settings are one-line InputErrors, not filters of NaN or negative width."""
    for opts in (A.FbankOptions(num_mel_bins=3), A.FbankOptions(low_freq=8000.0), A.FbankOptions(high_freq=9000.0),
                 A.FbankOptions(high_freq=-8000.0), A.FbankOptions(low_freq=4000.0, high_freq=3000.0)):
        with pytest.raises(InputError, match="fbank options"):
            A.kaldi_mel_banks(opts)
    banks = A.kaldi_mel_banks(A.FbankOptions(num_mel_bins=4, high_freq=-4000.0))  # 20 Hz .. 4 kHz
    freqs = 16000 / 128 * np.arange(65)
    assert banks.shape == (4, 65) and not banks[:, freqs >= 4000].any() and banks[:, freqs < 4000].any()
