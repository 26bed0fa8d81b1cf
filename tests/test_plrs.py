"""PLRS (Eq. (a)): non-overlapping 5-frame windows, pairing, cosine similarity, validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from p3d.errors import InputError
from p3d.metrics.plrs import plrs, plrs_from_features
from p3d.models.dual_encoder import DualEncoder
from p3d.models.speech_mesh import SpeechMeshConfig, SpeechMeshModel

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


def test_window_count_is_min_of_speech_windows_and_t_minus_4():
    # official evaluate_PLRS.py: n_windows = min(#speech windows, T - 4), G = n_windows // 5. At T = 24
    # the last window is frames [15, 20) (T - 4 = 20 -> G = 4); T - 5 would give G = 3.
    model = IndexModel()
    fbank, verts = _toy(t=24, n=30)
    assert plrs_from_features(fbank, verts, model) == pytest.approx(1.0)
    assert model.seen == [[0.0, 5.0, 10.0, 15.0]]
    model = IndexModel()
    fbank, verts = _toy(t=40, n=20)  # speech-limited: min(20, 36) = 20 -> G = 4
    plrs_from_features(fbank, verts, model)
    assert model.seen == [[0.0, 5.0, 10.0, 15.0]]


def test_misalignment_lowers_the_score_and_opposite_is_minus_one():
    fbank, verts = _toy(t=40, n=40, shift=1.0)
    assert plrs_from_features(fbank, verts, IndexModel()) == pytest.approx(math.cos(1.0), abs=1e-6)
    fbank, verts = _toy(t=40, n=40)
    assert plrs_from_features(fbank, verts, IndexModel(sign=-1.0)) == pytest.approx(-1.0)
    assert plrs_from_features(fbank, verts.reshape(40, V * 3), IndexModel()) == pytest.approx(1.0)


class ScaledIndexModel(IndexModel):
    """IndexModel whose embeddings are not unit vectors (speech x 0.5, mesh x 3): a critic need not normalise."""

    def encode_speech(self, fbank: torch.Tensor) -> torch.Tensor:
        return 0.5 * super().encode_speech(fbank)

    def encode_mesh(self, vertices: torch.Tensor) -> torch.Tensor:
        return 3.0 * super().encode_mesh(vertices)


def test_plrs_is_a_cosine_whatever_the_embeddings_norm():
    # Eq. (a) averages cos(c_s, c_m): embeddings are L2-normalised before the dot product, so scaling either
    # encoder's output changes nothing (a dot product of raw embeddings would give 1.5 and 1.5 cos 1).
    fbank, verts = _toy(t=40, n=40)
    assert plrs_from_features(fbank, verts, ScaledIndexModel()) == pytest.approx(1.0)
    fbank, verts = _toy(t=40, n=40, shift=1.0)
    assert plrs_from_features(fbank, verts, ScaledIndexModel()) == pytest.approx(math.cos(1.0), abs=1e-6)


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


# -- PLRS-c and the retrieval score (hubness-corrected companions of the official PLRS) --------------------------
from p3d.metrics.plrs import (PLRSScores, background_excluding, background_windows, plrs_calibrated,  # noqa: E402
                              plrs_scores, speech_bank, speech_banks)


class CentroidModel(DualEncoder):
    """A critic that has learnt nothing about lips: every mesh window embeds to one fixed centroid ``c``, and
    speech window j embeds to ``c`` plus an orthogonal component of fixed length in a direction set by j (read
    from fbank[0, 0]). Every speech embedding is equally close to ``c``, so the official PLRS is high
    (cos = 1 / sqrt(1 + r^2)) while the mesh cannot tell its own speech from any other."""

    def __init__(self, r: float = 0.5) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.r = r

    @property
    def n_vertices(self) -> int:
        return V

    def encode_speech(self, fbank: torch.Tensor) -> torch.Tensor:
        k = fbank[:, 0, 0]
        zero = torch.zeros_like(k)
        return torch.stack([torch.ones_like(k), self.r * torch.cos(k), self.r * torch.sin(k), zero], dim=1)

    def encode_mesh(self, vertices: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[1.0, 0.0, 0.0, 0.0]]).expand(vertices.shape[0], 4)


def _bank(n: int, offset: float = 1000.0) -> np.ndarray:
    """Speech windows of 'other clips': indices that no mesh frame of _toy carries."""
    fb = np.zeros((n, 20, 128), np.float32)
    fb[:, 0, 0] = offset + 0.37 * np.arange(n)
    return fb


def test_centroid_model_is_high_on_official_but_at_chance_on_calibrated():
    model = CentroidModel(r=0.5)
    fbank, verts = _toy(t=60, n=60)
    out = plrs_scores(fbank, verts, model, _bank(30))
    assert out.official == pytest.approx(1 / math.sqrt(1.25), abs=1e-6)  # 0.894: "excellent" lip readability
    assert out.official == pytest.approx(plrs_from_features(fbank, verts, model), abs=0)
    assert out.calibrated == pytest.approx(0.0, abs=1e-6)  # chance
    g, n = 11, 11 + 30  # G = min(60, 56) // 5 = 11 windows; 11 own + 30 background candidates
    assert (out.n_windows, out.n_candidates) == (g, n)
    assert out.mrr == pytest.approx(out.mrr_chance, abs=1e-9)  # all tied: the expected rank under random ties
    assert out.mrr_chance == pytest.approx(sum(1 / r for r in range(1, n + 1)) / n)
    assert out.recall_at_1 == pytest.approx(1 / n) and out.recall_at_1_chance == pytest.approx(1 / n)
    assert plrs_calibrated(fbank, verts, model, _bank(30)) == pytest.approx(0.0, abs=1e-6)


def test_a_perfect_critic_retrieves_every_window_and_beats_chance():
    model = IndexModel()
    fbank, verts = _toy(t=60, n=60)
    out = plrs_scores(fbank, verts, model, _bank(30))
    assert out.official == pytest.approx(1.0) and out.mrr == pytest.approx(1.0) and out.recall_at_1 == 1.0
    assert out.calibrated > 0.5
    # a shifted sequence loses on all three (the true window is no longer the nearest)
    bad = plrs_scores(fbank, _toy(t=60, n=60, shift=2.5)[1], model, _bank(30))
    assert bad.official < out.official and bad.calibrated < out.calibrated and bad.recall_at_1 < 1.0


def test_background_as_windows_or_embeddings_agree():
    model = IndexModel()
    fbank, verts = _toy(t=40, n=40)
    bank_windows = background_windows(_bank(50))
    assert bank_windows.shape == (10, 20, 128)
    emb = speech_bank(bank_windows, model)
    assert emb.shape == (10, 2) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    a = plrs_scores(fbank, verts, model, bank_windows)
    b = plrs_scores(fbank, verts, model, emb * 3.0)  # embeddings are re-normalised
    assert isinstance(a, PLRSScores)
    assert (a.official, a.calibrated, a.mrr) == pytest.approx((b.official, b.calibrated, b.mrr), abs=1e-6)


def test_the_clips_own_speech_bank_gives_the_same_scores():
    """``speech_bank``: the clip's own embeddings of every 5th window (computed once for the background) stand in
    for encoding the PLRS windows' speech again; a bank of the wrong length is refused."""
    model = IndexModel()
    fbank, verts = _toy(t=60, n=57)
    own = speech_bank(background_windows(fbank), model)
    assert own.shape[0] == 12  # ceil(57 / 5); G = min(57, 56) // 5 = 11 of them are PLRS windows
    a = plrs_scores(fbank, verts, model, _bank(30))
    b = plrs_scores(fbank, verts, model, _bank(30), speech_bank=own)
    assert (a.official, a.calibrated, a.mrr) == pytest.approx((b.official, b.calibrated, b.mrr), abs=1e-6)
    assert plrs_from_features(fbank, verts, model, speech_bank=own) == pytest.approx(a.official, abs=1e-6)
    with pytest.raises(InputError, match="speech_bank"):
        plrs_from_features(fbank, verts, model, speech_bank=own[:-1])
    with pytest.raises(InputError, match="speech_bank"):
        plrs_scores(fbank, verts, model, _bank(30), speech_bank=np.full_like(own, np.nan))


def test_calibrated_bad_inputs():
    model = IndexModel()
    fbank, verts = _toy(t=40, n=40)
    with pytest.raises(InputError, match="background"):
        plrs_calibrated(fbank, verts, model, np.zeros((0, 2), np.float32))
    with pytest.raises(InputError, match="size 3"):
        plrs_calibrated(fbank, verts, model, np.ones((4, 3), np.float32))
    with pytest.raises(InputError, match="NaN"):
        plrs_calibrated(fbank, verts, model, np.full((4, 2), np.nan, np.float32))
    with pytest.raises(InputError, match="zero"):
        plrs_calibrated(fbank, verts, model, np.zeros((4, 2), np.float32))
    with pytest.raises(InputError, match="background"):
        plrs_calibrated(fbank, verts, model, np.zeros((4,), np.float32))
    with pytest.raises(InputError, match="no complete"):
        plrs_calibrated(fbank, verts[:8], model, _bank(4))


def test_speech_banks_exclude_the_clip_itself():
    model = IndexModel()
    banks = speech_banks({"a": _bank(10, 100.0), "b": _bank(7, 200.0), "c": _bank(3, 300.0)}, model)
    assert {k: len(v) for k, v in banks.items()} == {"a": 2, "b": 2, "c": 1}
    bg = background_excluding(banks, "a")
    np.testing.assert_array_equal(bg, np.concatenate([banks["b"], banks["c"]]))
    with pytest.raises(InputError, match="other"):
        background_excluding({"a": banks["a"]}, "a")
    with pytest.raises(InputError, match="windows_by_clip"):
        speech_banks({}, model)


def test_a_prepared_background_gives_every_clips_scores_bit_for_bit():
    """SpeechBackground: the banks stacked and normalised once; each clip's scores against ``excluding(clip)`` equal
    those against ``background_excluding(banks, clip)`` exactly (every field), with a real evaluator-sized bank."""
    from p3d.metrics.plrs import SpeechBackground

    rng = np.random.default_rng(0)
    banks = {f"clip{i}": rng.standard_normal((int(rng.integers(3, 12)), 2)).astype(np.float32) * 3 for i in range(40)}
    prepared = SpeechBackground(banks)
    model = IndexModel()
    fbank, verts = _toy(t=60, n=60)
    for clip in ("clip0", "clip17", "clip39", "not_a_clip"):
        if clip == "not_a_clip":  # a clip without a bank (a silent one): every bank is its background
            expected = plrs_scores(fbank, verts, model, np.concatenate(list(banks.values())))
        else:
            expected = plrs_scores(fbank, verts, model, background_excluding(banks, clip))
        assert plrs_scores(fbank, verts, model, prepared.excluding(clip)) == expected, clip
    with pytest.raises(InputError, match="other"):
        SpeechBackground({"a": banks["clip0"]}).excluding("a")
    with pytest.raises(InputError, match="zero"):
        SpeechBackground({"a": np.zeros((2, 2), np.float32), "b": banks["clip1"]})
    with pytest.raises(InputError, match="size"):
        plrs_scores(fbank, verts, model, SpeechBackground({"a": np.ones((2, 3), np.float32), "b": np.ones((1, 3))})
                    .excluding("a"))
    with pytest.raises(InputError, match="one size"):
        SpeechBackground({"a": np.ones((2, 3), np.float32), "b": np.ones((1, 2))})


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_speech_windows_are_refused_not_scored_nan(bad):
    fbank, verts = _toy(t=40, n=40)
    fbank = np.array(fbank, dtype=np.float32)
    fbank[0, 3, 7] = bad
    with pytest.raises(InputError, match="fbank_windows: speech windows contain NaN or inf"):
        plrs_from_features(fbank, verts, IndexModel())
    with pytest.raises(InputError, match="fbank_windows: speech windows contain NaN or inf"):
        plrs_scores(fbank, verts, CentroidModel(), _bank(4))


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_a_batch_size_that_is_not_a_positive_count_is_refused(batch_size):
    fbank, verts = _toy(t=40, n=40)
    with pytest.raises(InputError, match="batch_size: expected a positive number of windows"):
        plrs_from_features(fbank, verts, IndexModel(), batch_size=batch_size)  # range()'s ValueError for 0
    with pytest.raises(InputError, match="batch_size: expected a positive number of windows"):
        speech_bank(_bank(4), CentroidModel(), batch_size=batch_size)
