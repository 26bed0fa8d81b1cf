"""The perceptual loss (Eq. 6): windowing, grouping, cached speech embeddings, gradients."""
from __future__ import annotations

import pytest
import torch

from p3d.errors import InputError
from p3d.losses.infonce import info_nce
from p3d.losses.perceptual_loss import PerceptualLoss, _frame_token_encoder, contrastive_groups
from p3d.models.speech_mesh import SpeechMeshConfig, SpeechMeshModel
from p3d.models.syncnet3d import SyncNet3D, SyncNet3DConfig

V = 8


def _critic() -> SpeechMeshModel:
    torch.manual_seed(0)
    return SpeechMeshModel.no2d(SpeechMeshConfig.from_preset("smoke", n_vertices=V))


def _clip(t: int = 100, n: int = 120, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t, V, 3, generator=g).requires_grad_(), torch.randn(n, 20, 128, generator=g)


def test_contrastive_groups():
    assert contrastive_groups(96, 80) == [(0, 80), (80, 96)]
    assert contrastive_groups(160, 80) == [(0, 80), (80, 160)]
    assert contrastive_groups(81, 80) == [(0, 80)]        # a single leftover window is dropped
    assert contrastive_groups(82, 80) == [(0, 80), (80, 82)]
    assert contrastive_groups(5, 80) == [(0, 5)]
    assert contrastive_groups(1, 80) == [] and contrastive_groups(0, 80) == []


def test_matches_the_official_loop():
    loss_fn = PerceptualLoss(_critic(), weight=1.0, batch_size=80)
    verts, fbank = _clip(t=100, n=120)
    critic = loss_fn.model
    # official: clip_num = min(n_audio, T - 4) = 96; batch [0, 80) and remainder [80, 96)
    losses = []
    for start, stop in ((0, 80), (80, 96)):
        motion = torch.stack([verts.reshape(100, -1)[i:i + 5] for i in range(start, stop)])
        losses.append(info_nce(critic.encode_speech(fbank[start:stop]), critic.encode_mesh(motion)))
    expected = (losses[0] + losses[1]) / 2
    torch.testing.assert_close(loss_fn(verts, fbank), expected, rtol=1e-5, atol=1e-6)


def test_a_custom_temperature_reaches_every_group():
    loss_fn = PerceptualLoss(_critic(), weight=1.0, batch_size=80, temperature=0.5)
    verts, fbank = _clip(t=100, n=120)
    critic = loss_fn.model
    losses = []
    for start, stop in ((0, 80), (80, 96)):
        motion = torch.stack([verts.reshape(100, -1)[i:i + 5] for i in range(start, stop)])
        losses.append(info_nce(critic.encode_speech(fbank[start:stop]), critic.encode_mesh(motion), 0.5))
    torch.testing.assert_close(loss_fn(verts, fbank), (losses[0] + losses[1]) / 2, rtol=1e-5, atol=1e-6)


def test_cached_speech_embeddings_give_exactly_the_same_loss():
    loss_fn = PerceptualLoss(_critic(), weight=1e-7)
    verts, fbank = _clip()
    cached = loss_fn.speech_embeddings(fbank)
    assert cached.shape == (120, 32) and not cached.requires_grad
    a = loss_fn(verts, cached)
    b = loss_fn(verts, fbank)
    c = loss_fn(verts, fbank.numpy())
    assert a.item() == b.item() == c.item()
    torch.testing.assert_close(a, 1e-7 * loss_fn.unweighted(verts, cached))


def test_gradient_reaches_the_vertices_only():
    critic = _critic()
    loss_fn = PerceptualLoss(critic, weight=1.0)
    assert loss_fn.model is critic and not critic.training
    assert not any(p.requires_grad for p in critic.parameters())
    verts, fbank = _clip()
    loss_fn(verts, loss_fn.speech_embeddings(fbank)).backward()
    assert verts.grad is not None and verts.grad.abs().sum() > 0
    assert verts.grad[96 + 4:].abs().sum() == 0  # frames beyond the last window get nothing
    assert all(p.grad is None for p in critic.parameters())


def test_flat_input_and_any_critic():
    loss_fn = PerceptualLoss(SyncNet3D(SyncNet3DConfig.from_preset("smoke", n_vertices=V)).train(), weight=1.0)
    assert not loss_fn.model.training  # BatchNorm critics are scored in eval mode
    verts, fbank = _clip(t=30, n=40)
    flat = verts.detach().reshape(30, V * 3)
    torch.testing.assert_close(loss_fn(verts, fbank), loss_fn(flat, fbank))


def test_bad_inputs():
    loss_fn = PerceptualLoss(_critic())
    verts, fbank = _clip(t=5, n=10)
    with pytest.raises(InputError, match="at least 2"):
        loss_fn(verts, fbank)  # 5 frames: one window only
    verts, fbank = _clip()
    with pytest.raises(InputError, match="vertices per frame"):
        loss_fn(torch.zeros(20, V + 1, 3), fbank)
    with pytest.raises(InputError, match="NaN"):
        loss_fn(torch.full((20, V, 3), float("nan")), fbank)
    with pytest.raises(InputError, match="speech"):
        loss_fn(verts, torch.zeros(5))
    with pytest.raises(InputError, match="batch_size"):
        PerceptualLoss(_critic(), batch_size=1)


def test_shared_frame_tokens_give_the_same_loss_and_gradient():
    critic = _critic()
    g = torch.Generator().manual_seed(3)
    critic.mesh_encoder.set_input_normalization(torch.randn(V * 3, generator=g), 0.7)  # not the identity
    fast, slow = PerceptualLoss(critic, weight=1.0), PerceptualLoss(critic, weight=1.0, share_frame_tokens=False)
    verts, fbank = _clip(t=200, n=230)  # 196 windows: groups [0, 80), [80, 160), [160, 196)
    speech = fast.speech_embeddings(fbank)
    shapes = []
    hook = critic.mesh_encoder.patch_embed.register_forward_hook(lambda m, i, o: shapes.append(tuple(i[0].shape)))
    a = fast(verts, speech)
    (ga,) = torch.autograd.grad(a, verts)
    b = slow(verts, speech)
    (gb,) = torch.autograd.grad(b, verts)
    hook.remove()
    assert shapes == [(200, V * 3), (196, 5, V * 3)]  # one token per frame, vs one per window frame
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-7)
    # and both equal the per-group loop of the official code
    flat = verts.detach().reshape(200, -1)
    motion = torch.stack([flat[i:i + 5] for i in range(196)])
    expected = torch.stack([info_nce(speech[s:e], critic.encode_mesh(motion[s:e]))
                            for s, e in ((0, 80), (80, 160), (160, 196))]).mean()
    torch.testing.assert_close(a, expected, rtol=1e-5, atol=1e-6)


def test_critics_with_their_own_encode_mesh_take_the_generic_path():
    class Shifted(SpeechMeshModel):
        def encode_mesh(self, vertices):
            return super().encode_mesh(vertices + 1.0)

    torch.manual_seed(0)
    critic = Shifted.no2d(SpeechMeshConfig.from_preset("smoke", n_vertices=V))
    assert _frame_token_encoder(critic) is None and _frame_token_encoder(_critic()) is not None
    verts, fbank = _clip(t=30, n=40)
    a = PerceptualLoss(critic, weight=1.0)(verts, fbank)
    b = PerceptualLoss(critic, weight=1.0, share_frame_tokens=False)(verts, fbank)
    assert a.item() == b.item()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_speech_is_refused_not_a_nan_loss(bad):
    loss_fn = PerceptualLoss(_critic())
    verts, fbank = _clip(t=30, n=40)
    windows = fbank.clone()
    windows[0, 3, 7] = bad
    with pytest.raises(InputError, match="speech: holds NaN or inf"):
        loss_fn(verts, windows)
    embeddings = loss_fn.speech_embeddings(fbank)
    embeddings[2, 0] = bad
    with pytest.raises(InputError, match="speech: holds NaN or inf"):
        loss_fn(verts, embeddings)


def test_a_reversed_numpy_sequence_is_scored_as_its_copy():
    """A negative-stride float32 array (e.g. ``vertices[::-1]``, a time-reversed control) raised torch's
    'negative strides are not supported' in the loss and in PLRS, which share the vertex check."""
    import numpy as np

    from p3d.metrics.plrs import plrs_from_features

    critic = _critic()
    loss_fn = PerceptualLoss(critic)
    verts, fbank = _clip(t=30, n=40)
    backwards = verts.detach().numpy()[::-1]
    assert backwards.strides[0] < 0
    torch.testing.assert_close(loss_fn(backwards, fbank), loss_fn(backwards.copy(), fbank), rtol=0, atol=0)
    assert plrs_from_features(fbank.numpy(), backwards, critic) == plrs_from_features(fbank.numpy(), backwards.copy(),
                                                                                      critic)


def test_float64_predictions_are_scored_in_the_critics_dtype_with_gradients():
    """A float64 prediction raised torch's 'mat1 and mat2 must have the same dtype' inside the critic."""
    loss_fn = PerceptualLoss(_critic())
    verts, fbank = _clip(t=30, n=40)
    as64 = verts.detach().double().requires_grad_()
    loss = loss_fn(as64, fbank)
    torch.testing.assert_close(loss, loss_fn(verts, fbank), rtol=0, atol=0)
    loss.backward()
    assert as64.grad is not None and as64.grad.dtype == torch.float64 and as64.grad.abs().sum() > 0


def test_float64_speech_tensors_are_scored_in_the_critics_dtype():
    """Speech embeddings or fbank windows given as a float64 tensor (e.g. ``torch.from_numpy`` of a float64 cache)
    raised torch's 'expected m1 and m2 to have the same dtype' RuntimeError (a numpy float64 array was cast);
    an embedding of another width was info_nce's ValueError, not a one-line InputError."""
    loss_fn = PerceptualLoss(_critic())
    verts, fbank = _clip(t=30, n=40)
    cached = loss_fn.speech_embeddings(fbank)
    expected = loss_fn(verts, cached)
    torch.testing.assert_close(loss_fn(verts, cached.double()), expected, rtol=0, atol=0)
    torch.testing.assert_close(loss_fn(verts, cached.double().numpy()), expected, rtol=0, atol=0)
    torch.testing.assert_close(loss_fn(verts, fbank.double()), loss_fn(verts, fbank), rtol=0, atol=0)
    with pytest.raises(InputError, match="speech: 16-dimensional embeddings, the critic's are 32"):
        loss_fn(verts, cached[:, :16])


def test_bad_settings_and_windows_are_one_line_input_errors():
    import numpy as np

    critic = _critic()
    for bad in (2.5, "80", float("nan"), True, np.bool_(True), None):  # 2.5 ran batches of 2; NaN / text raised
        with pytest.raises(InputError, match="batch_size"):
            PerceptualLoss(critic, batch_size=bad)
    assert PerceptualLoss(critic, batch_size=np.int64(40)).batch_size == 40
    assert PerceptualLoss(critic, batch_size=np.float64(40.0)).batch_size == 40
    for name in ("weight", "temperature"):  # True was read as 1.0
        for bad in (True, np.bool_(True)):
            with pytest.raises(InputError, match=name):
                PerceptualLoss(critic, **{name: bad})
    assert PerceptualLoss(critic, weight=np.float64(0.5), temperature=np.float32(0.5)).weight == 0.5
    loss_fn = PerceptualLoss(critic, weight=1.0)
    verts, fbank = _clip(t=30, n=40)
    ref = loss_fn.speech_embeddings(fbank)
    assert torch.equal(loss_fn.speech_embeddings(fbank, chunk=np.int64(7)), ref)
    for bad in (0, -1, 2.5, True):  # 0 was range()'s ValueError, True a chunk of 1
        with pytest.raises(InputError, match="chunk"):
            loss_fn.speech_embeddings(fbank, chunk=bad)
    bad_windows = (fbank[:, :19], torch.full_like(fbank, float("nan")), fbank.to(torch.complex64),
                   fbank > 0, [[[0.0] * 128] * 20, [[0.0] * 128] * 19], np.full((2, 20, 128), "a"))
    for bad in bad_windows:  # another window length and NaN were embedded; the others torch / numpy errors
        with pytest.raises(InputError, match="fbank_windows"):
            loss_fn.speech_embeddings(bad)
    for bad in bad_windows[:4]:
        with pytest.raises(InputError, match="speech"):
            loss_fn(verts, bad)
    assert torch.equal(loss_fn(verts, fbank), loss_fn(verts, fbank.numpy()))


def test_bf16_autocast_leaves_the_speech_embeddings_as_cached():
    """Under ``--bf16`` autocast the fbank windows (``--no-cache``) were embedded in bfloat16, so the loss differed
    from the cached embeddings' (computed once, in float32); the speech encoder now runs outside autocast."""
    loss_fn = PerceptualLoss(_critic(), weight=1.0)
    verts, fbank = _clip(t=100, n=120)
    cached = loss_fn.speech_embeddings(fbank)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(loss_fn.speech_embeddings(fbank), cached)
        from_windows = loss_fn.unweighted(verts, fbank)
        from_cache = loss_fn.unweighted(verts, cached)
    assert torch.equal(from_windows, from_cache)
