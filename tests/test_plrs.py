"""PLRS (Eq. (a)): non-overlapping 5-frame windows, pairing, cosine similarity, validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from p3d.errors import InputError
from p3d.metrics.plrs import plrs, plrs_from_features
from p3d.models.speech_mesh import DualEncoder, SpeechMeshConfig, SpeechMeshModel

V = 4


class IndexModel(DualEncoder):
    """Toy critic: speech window j carries j in fbank[0, 0]; mesh frame t carries t in vertex 0's x.
    Both embed an index k as the unit vector (cos k, sin k), so a correct pairing gives cosine 1."""

    def __init__(self, sign: float = 1.0) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.sign = sign
        self.seen: list[list[float]] = []

    @property
    def n_vertices(self) -> int:
        return V

    @staticmethod
    def _unit(k: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.cos(k), torch.sin(k)], dim=1)

    def encode_speech(self, fbank: torch.Tensor) -> torch.Tensor:
        self.seen.append(fbank[:, 0, 0].tolist())
        return self.sign * self._unit(fbank[:, 0, 0])

    def encode_mesh(self, vertices: torch.Tensor) -> torch.Tensor:
        return self._unit(vertices.flatten(2)[:, 0, 0])  # first frame of the window


def _toy(t: int, n: int, shift: float = 0.0):
    fbank = np.zeros((n, 20, 128), np.float32)
    fbank[:, 0, 0] = np.arange(n)
    verts = np.zeros((t, V, 3), np.float32)
    verts[:, 0, 0] = np.arange(t) + shift
    return fbank, verts


def test_correct_pairing_scores_one_and_uses_non_overlapping_windows():
    model = IndexModel()
    fbank, verts = _toy(t=23, n=30)
    assert plrs_from_features(fbank, verts, model) == pytest.approx(1.0)
    # n_windows = min(30, 23 - 4) = 19 -> G = 3 windows: speech windows 0, 5, 10 with frames [0,5), [5,10), [10,15)
    assert model.seen == [[0.0, 5.0, 10.0]]


def test_misalignment_lowers_the_score_and_opposite_is_minus_one():
    fbank, verts = _toy(t=40, n=40, shift=1.0)
    assert plrs_from_features(fbank, verts, IndexModel()) == pytest.approx(math.cos(1.0), abs=1e-6)
    fbank, verts = _toy(t=40, n=40)
    assert plrs_from_features(fbank, verts, IndexModel(sign=-1.0)) == pytest.approx(-1.0)
    assert plrs_from_features(fbank, verts.reshape(40, V * 3), IndexModel()) == pytest.approx(1.0)


def test_from_audio_counts_windows_at_30_fps():
    model = IndexModel()
    audio = (np.random.default_rng(0).standard_normal(32000) * 0.1).astype(np.float32)  # 2 s at 16 kHz
    verts = np.zeros((40, V, 3), np.float32)
    score = plrs(audio, verts, model, fps=30, sr=16000)
    # 19.2 kHz: 56 audio windows; min(56, 40 - 4) = 36 -> G = 7
    assert len(model.seen[0]) == 7 and -1.0 <= score <= 1.0


def test_with_a_real_model_and_modes_restored():
    torch.manual_seed(0)
    model = SpeechMeshModel.no2d(SpeechMeshConfig.from_preset("smoke", n_vertices=V)).train()
    fbank = np.random.default_rng(1).standard_normal((30, 20, 128)).astype(np.float32)
    verts = np.random.default_rng(2).standard_normal((30, V, 3)).astype(np.float32)
    a = plrs_from_features(fbank, verts, model)
    b = plrs_from_features(fbank, verts, model, batch_size=2)
    assert a == pytest.approx(b, abs=1e-6) and -1.0 <= a <= 1.0
    assert model.training


def test_bad_inputs():
    model = IndexModel()
    fbank, verts = _toy(t=8, n=30)
    with pytest.raises(InputError, match="no complete"):
        plrs_from_features(fbank, verts, model)  # 8 frames -> 4 windows -> G = 0
    fbank, verts = _toy(t=40, n=40)
    verts[3, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        plrs_from_features(fbank, verts, model)
    with pytest.raises(InputError, match="vertices per frame"):
        plrs_from_features(fbank, np.zeros((40, V + 1, 3)), model)
    with pytest.raises(InputError, match="fbank_windows"):
        plrs_from_features(np.zeros((40, 128)), np.zeros((40, V, 3)), model)
