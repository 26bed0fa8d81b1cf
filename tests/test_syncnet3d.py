"""3D SyncNet critic: layer counts, shapes, the shared dual-encoder interface, checkpoints."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from p3d.errors import InputError
from p3d.losses.infonce import info_nce
from p3d.models import load_model
from p3d.models.stage1 import count_parameters
from p3d.models.syncnet3d import SyncNet3D, SyncNet3DConfig
from critic_checks import assert_encoders_cast_input

V = 10


def _model() -> SyncNet3D:
    torch.manual_seed(0)
    return SyncNet3D(SyncNet3DConfig.from_preset("smoke", n_vertices=V))


def test_architecture_matches_the_paper_description():
    model = _model()
    mesh_convs = [m for m in model.mesh_convs.modules() if isinstance(m, nn.Conv1d)]
    assert [c.dilation[0] for c in mesh_convs] == [1, 2, 4]  # 3 dilated convolutions
    assert sum(isinstance(m, nn.Conv2d) for m in model.speech_convs.modules()) == 6
    assert sum(isinstance(m, nn.Linear) for m in model.speech_head.modules()) == 2
    print(f"3D SyncNet paper preset: {count_parameters(SyncNet3D()) / 1e6:.1f}M parameters")


def test_shapes_and_interface():
    model = _model().eval()
    g = torch.Generator().manual_seed(0)
    fbank, verts = torch.randn(4, 20, 128, generator=g), torch.randn(4, 5, V, 3, generator=g)
    s, m = model.encode_speech(fbank), model.encode_mesh(verts)
    assert s.shape == m.shape == (4, 32)
    torch.testing.assert_close(s.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(m.norm(dim=1), torch.ones(4))
    logits_s, logits_m = model(fbank, verts)
    torch.testing.assert_close(logits_s, s @ m.T / 0.07)
    torch.testing.assert_close(logits_m, logits_s.T)
    torch.testing.assert_close(model.loss(fbank, verts), info_nce(s, m))
    assert model.encode_speech(torch.randn(2, 64, 128)).shape == (2, 32)  # any fbank length


def test_training_step_and_checkpoint(tmp_path):
    model = _model().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    loss = model.loss(torch.randn(8, 20, 128, generator=g), torch.randn(8, 5, V * 3, generator=g))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.step()
    model.eval().save(tmp_path / "sync.pt")
    loaded = load_model(tmp_path / "sync.pt")
    assert isinstance(loaded, SyncNet3D) and loaded.config == model.config
    x = torch.randn(3, 20, 128, generator=g)
    torch.testing.assert_close(loaded.encode_speech(x), model.encode_speech(x))


def test_bad_inputs():
    model = _model()
    with pytest.raises(InputError, match="10-vertex"):
        model.encode_mesh(torch.zeros(2, 5, 33))
    with pytest.raises(InputError, match="fbank"):
        model.encode_speech(torch.zeros(2, 20))
    with pytest.raises(InputError):
        SyncNet3DConfig(dilations=(1, 2))


def test_encoders_cast_other_real_dtypes_and_refuse_empty_or_non_real_input():
    """float64 / float16 / int64 windows were a torch RuntimeError ("Input type (double) and bias type (float)
    should be the same"), a zero-frame fbank a conv RuntimeError: now cast to the weights' dtype (float32 input
    gives the same bits) and no frames / bool / complex are one-line InputErrors."""
    model = _model().eval()
    g = torch.Generator().manual_seed(3)
    fbank, vertices = torch.randn(3, 20, 128, generator=g), torch.randn(3, 5, 3 * V, generator=g)
    assert_encoders_cast_input(model, fbank, vertices, (torch.float64, torch.float16, torch.int64))
    with pytest.raises(InputError, match=r"fbank: no frames \(shape \(2, 0, 128\)\)"):
        model.encode_speech(torch.zeros(2, 0, 128))
    with pytest.raises(InputError, match="fbank: expected real numbers, got a torch.complex64"):
        model.encode_speech(torch.zeros(2, 20, 128, dtype=torch.complex64))
    with pytest.raises(InputError, match="vertices: expected real numbers, got a torch.bool"):
        model.encode_mesh(torch.zeros(2, 5, 3 * V, dtype=torch.bool))


def test_speech_convolutions_halve_time_twice_and_frequency_five_times():
    """The module docstring's strides: a (1, 20, 128) fbank image leaves the 6 convolutions as 20 / 4 = 5 time
    steps by 128 / 32 = 4 frequency bins (a 64-frame window: 16 by 4)."""
    model = _model().eval()
    with torch.no_grad():
        assert model.speech_convs(torch.zeros(1, 1, 20, 128)).shape[2:] == (5, 4)
        assert model.speech_convs(torch.zeros(1, 1, 64, 128)).shape[2:] == (16, 4)
