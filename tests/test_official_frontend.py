"""p3d's PLRS front-end equals the official ``evaluate_PLRS.py`` one, end to end.

The official steps, re-stated here from their description: read the file, keep channel 0, resample
to 19.2 kHz with band-limited sinc interpolation (evaluated per output sample in float64, not with
p3d's polyphase kernel), cut 3200-sample windows at hop 640, subtract each window's mean, Kaldi fbank
told 16 kHz, normalise; then PLRS with an official-layout evaluator (its features from the
independent forward of ``tests/official_model.py``): ``min(#windows, T - 4)`` clips, chunk ``i`` =
frames ``[5 i, 5 i + 5)`` with window ``5 i``, mean diagonal cosine.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from official_model import N_VERTICES, official_features, official_state_dict
from p3d import audio as A
from p3d.metrics import plrs_from_features
from p3d.models.speech_mesh import load_critic
from reference_resample import windowed_sinc_direct


def _official_windows(path) -> np.ndarray:
    import soundfile as sf
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    x = windowed_sinc_direct(data[:, 0].astype(np.float64), sr, 19200)
    out, i = [], 0
    while i * 640 + 3200 <= x.size:
        w = x[i * 640: i * 640 + 3200]
        out.append(A.normalise_fbank(A.kaldi_fbank(w - w.mean())))
        i += 1
    return np.stack(out)


@pytest.fixture(scope="module")
def stereo_wav(tmp_path_factory):
    """0.4 s of a voiced-like stereo signal at 44.1 kHz, int16 PCM, the channels differing."""
    import soundfile as sf
    sr = 44100
    t = np.arange(int(0.4 * sr)) / sr
    rng = np.random.default_rng(0)
    left = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t)) + 0.05 * rng.standard_normal(t.size)
    left += 0.1 * np.sin(2 * np.pi * 9400 * t)  # near the told-16 kHz Nyquist after the 19.2 kHz trick
    right = 0.2 * rng.standard_normal(t.size)
    path = tmp_path_factory.mktemp("audio") / "FaceTalk_x_sentence01.wav"
    sf.write(path, np.stack([left, right], axis=1).clip(-1, 1), sr, subtype="PCM_16")
    return path


def test_speech_windows_equal_the_official_front_end(stereo_wav, tmp_path):
    ref = _official_windows(stereo_wav)
    samples, sr = A.load_speech_audio(stereo_wav)
    ours = A.speech_windows(samples, sr, 30)
    cached = A.FeatureCache(tmp_path / "cache").windows(stereo_wav, 30)
    assert ours.shape == ref.shape == cached.shape and ref.shape[1:] == (20, 128)
    np.testing.assert_allclose(ours, ref, atol=2e-4)  # measured 7e-5; soxr: 0.76, channel mean: 1.1
    np.testing.assert_array_equal(cached, ours)


def test_plrs_equals_the_official_script(stereo_wav, tmp_path, one_torch_thread):
    sd = official_state_dict(seed=2)
    torch.save({"model": sd, "epoch": 0}, tmp_path / "model_eval.pth")
    evaluator = load_critic(tmp_path / "model_eval.pth")
    windows = _official_windows(stereo_wav)
    n_frames = 12  # 30 fps prediction of 0.4 s
    vertices = 0.1 * torch.randn(n_frames, N_VERTICES, 3, generator=torch.Generator().manual_seed(4))

    clip_num = min(windows.shape[0], n_frames - 4)
    starts = list(range(0, clip_num - 4, 5))  # chunks [5 i, 5 i + 5) that fit the clip_num frames
    speech, mesh = official_features(sd, torch.from_numpy(windows[starts]),
                                     torch.stack([vertices[s:s + 5] for s in starts]))
    official = float((speech * mesh).sum(dim=-1).mean())

    samples, sr = A.load_speech_audio(stereo_wav)
    ours = plrs_from_features(A.speech_windows(samples, sr, 30), vertices.numpy(), evaluator)
    assert len(starts) == clip_num // 5
    assert abs(ours - official) < 1e-5


@pytest.mark.parametrize("n_windows, n_frames", [(20, 14), (20, 13), (20, 19), (10, 30), (9, 30), (5, 9)])
def test_plrs_chunk_count_at_the_clip_num_boundaries(n_windows, n_frames, tmp_path, one_torch_thread):
    """The official loop: ``clip_num = min(#windows, T - 4)``, chunks ``range(0, clip_num - 4, 5)``; here at
    the lengths where one frame or window more or less changes the number of chunks (T - 4 = 10: two chunks)."""
    sd = official_state_dict(seed=7)
    torch.save({"model": sd}, tmp_path / "model_eval.pth")
    evaluator = load_critic(tmp_path / "model_eval.pth")
    g = torch.Generator().manual_seed(n_windows * 100 + n_frames)
    windows = torch.randn(n_windows, 20, 128, generator=g)
    vertices = 0.1 * torch.randn(n_frames, N_VERTICES, 3, generator=g)

    clip_num = min(n_windows, n_frames - 4)
    starts = list(range(0, clip_num - 4, 5))
    speech, mesh = official_features(sd, windows[starts], torch.stack([vertices[s:s + 5] for s in starts]))
    per_chunk = (speech * mesh).sum(dim=-1)
    ours = plrs_from_features(windows.numpy(), vertices.numpy(), evaluator)
    assert abs(ours - float(per_chunk.mean())) < 1e-5
    if len(starts) > 1:  # the last chunk counts: the score without it differs
        assert abs(ours - float(per_chunk[:-1].mean())) > 1e-4
