"""Checks shared by the critics' tests (the speech-mesh critic, 3D SyncNet)."""
from __future__ import annotations

import torch


def assert_encoders_cast_input(model, fbank: torch.Tensor, vertices: torch.Tensor, dtypes) -> None:
    """``model.encode_speech`` / ``encode_mesh`` of float32 windows are unchanged bit for bit; windows of each of
    ``dtypes`` give float32 embeddings equal to those of the windows cast to float32 first, and float64 windows
    those of the float32 ones to float32 accuracy."""
    speech, mesh = model.encode_speech(fbank), model.encode_mesh(vertices)
    assert torch.equal(model.encode_speech(fbank.clone()), speech)
    for dtype in dtypes:
        x, v = fbank.to(dtype), vertices.to(dtype)
        got_s, got_m = model.encode_speech(x), model.encode_mesh(v)
        assert got_s.dtype == got_m.dtype == torch.float32
        assert torch.equal(got_s, model.encode_speech(x.float()))
        assert torch.equal(got_m, model.encode_mesh(v.float()))
    torch.testing.assert_close(model.encode_speech(fbank.double()), speech)
    torch.testing.assert_close(model.encode_mesh(vertices.double()), mesh)
