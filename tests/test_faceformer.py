"""FaceFormer: masks by hand, PPE, zero-initialised head, shapes, causality, learning, long clips, checkpoints."""
import dataclasses

import numpy as np
import pytest
import torch

from p3d.errors import InputError
from p3d.models.faceformer import (FaceFormer, FaceFormerConfig, alibi_slopes, alignment_mask, biased_mask,
                                   periodic_encoding)
from p3d.models.talker import ClipBatch, TalkerBatch, talker_class

V = 12


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test


def _model(**kw) -> FaceFormer:
    torch.manual_seed(0)
    return FaceFormer(FaceFormerConfig.from_preset("smoke", n_vertices=V, n_styles=3, fps=30, **kw))


def _batch(n_frames=15, seed=0, style=1, scale=0.01) -> TalkerBatch:
    g = torch.Generator().manual_seed(seed)
    template = torch.randn(V, 3, generator=g)
    motion = scale * torch.sin(torch.arange(n_frames)[:, None, None] / 3.0 + torch.randn(1, V, 3, generator=g))
    return TalkerBatch(audio=0.1 * torch.randn(n_frames * 16000 // 30, generator=g), template=template,
                       style=style, vertices=template + motion, stem="clip")


def test_registry():
    assert talker_class("faceformer") is FaceFormer


def test_alibi_slopes_and_biased_mask_by_hand():
    assert alibi_slopes(4) == [1 / 4, 1 / 16, 1 / 64, 1 / 256]
    assert len(alibi_slopes(6)) == 6
    m = biased_mask(4, 5, period=2)
    assert m.shape == (4, 5, 5)
    inf = float("-inf")
    # head 0 (slope 1/4): distance floor((i - j) / 2) below the diagonal, -inf above
    expected = torch.tensor([[0, inf, inf, inf, inf],
                             [0, 0, inf, inf, inf],
                             [-0.25, 0, 0, inf, inf],
                             [-0.25, -0.25, 0, 0, inf],
                             [-0.5, -0.25, -0.25, 0, 0]])
    assert torch.equal(m[0], expected)
    assert torch.equal(m[3], torch.where(torch.isinf(expected), expected, expected * (1 / 64)))


def test_biased_mask_matches_official_construction():
    """The official init_biased_mask (tiled per-period bias, flipped), transcribed, for 60 frames."""
    n_head, max_len, period = 4, 60, 30
    bias = (torch.arange(0, max_len, period)[:, None].repeat(1, period).view(-1) // period)
    bias = -torch.flip(bias, dims=[0])
    alibi = torch.zeros(max_len, max_len)
    for i in range(max_len):
        alibi[i, :i + 1] = bias[-(i + 1):]
    alibi = torch.tensor(alibi_slopes(n_head))[:, None, None] * alibi[None]
    causal = (torch.triu(torch.ones(max_len, max_len)) == 1).transpose(0, 1)
    official = causal.float().masked_fill(~causal, float("-inf")).masked_fill(causal, 0.0)[None] + alibi
    assert torch.equal(biased_mask(n_head, max_len, period), official)


def test_alignment_mask_by_hand():
    m = alignment_mask(3, 4)
    assert m.tolist() == [[False, True, True, True], [True, False, True, True], [True, True, False, True]]
    with pytest.raises(InputError):
        alignment_mask(4, 3)


def test_periodic_encoding_repeats():
    pe = periodic_encoding(70, 16, 30)
    assert pe.shape == (70, 16)
    assert torch.equal(pe[0], pe[30]) and torch.equal(pe[5], pe[65]) and not torch.equal(pe[0], pe[1])
    assert torch.allclose(pe[0, 1::2], torch.ones(8))  # cos(0)


@pytest.mark.parametrize("teacher_forcing", [False, True])
def test_forward_shapes_zero_init_and_backward(teacher_forcing):
    model = _model(teacher_forcing=teacher_forcing)
    batch = _batch()
    out = model(batch)
    assert out.vertices.shape == (15, V, 3)
    assert torch.allclose(out.vertices, batch.template.expand(15, V, 3))  # zero-initialised head
    assert torch.allclose(out.loss, ((batch.template - batch.vertices) ** 2).mean())
    assert set(out.logs) == {"mse"}
    out.loss.backward()
    assert model.vertice_map_r.weight.grad is not None and model.vertice_map_r.weight.grad.abs().sum() > 0
    pred = model.predict(batch.audio, batch.template, 0, 15)
    assert pred.shape == (15, V, 3) and torch.allclose(pred, batch.template.expand(15, V, 3))


def test_decoder_is_causal():
    model = _model(dropout=0.0)
    torch.nn.init.normal_(model.vertice_map_r.weight, std=0.1)
    memory = model.encode_audio(_batch().audio, 10)
    tokens = torch.randn(1, 10, 16)
    changed = tokens.clone()
    changed[:, 6:] += 1.0
    a, b = model.decode(tokens, memory), model.decode(changed, memory)
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6) and not torch.allclose(a[:, 6:], b[:, 6:])


def test_batched_decoder_gives_each_clip_its_own_heads_biases():
    """The (B * heads) self-attention masks of a batch: clip b's head h takes head h's ALiBi bias, so a batch of
    clips longer than the period (where the heads' biases differ) decodes each clip as alone."""
    model = _model(dropout=0.0).eval()
    n = 2 * model.config.period_frames + 5
    memory = torch.cat([model.encode_audio(_batch(n, seed=s).audio, n) for s in (0, 1)])
    tokens = torch.randn(2, n, 16, generator=torch.Generator().manual_seed(3))
    both = model.decode(tokens, memory)
    for b in range(2):
        torch.testing.assert_close(both[b:b + 1], model.decode(tokens[b:b + 1], memory[b:b + 1]),
                                   rtol=1e-5, atol=1e-6)


def test_rollout_feeds_back_its_own_predictions():
    """The autoregressive output at frame t equals a teacher-forced pass on the model's own earlier frames.

    (The two differ in the first input token only: style alone in the rollout, motion encoder of a zero
    displacement + style with teacher forcing, as the official code; a zero motion-encoder bias equates them.)
    """
    model = _model(dropout=0.0).eval()
    torch.nn.init.normal_(model.vertice_map_r.weight, std=0.1)
    torch.nn.init.zeros_(model.vertice_map.bias)
    batch = _batch(n_frames=8)
    pred = model.predict(batch.audio, batch.template, batch.style, 8)
    fed = dataclasses.replace(batch, vertices=pred)
    tf = dataclasses.replace(model.config, teacher_forcing=True)
    twin = FaceFormer(tf)
    twin.load_state_dict(model.state_dict())
    assert torch.allclose(twin.eval()(fed).vertices, pred, atol=1e-5)


def test_style_changes_prediction_and_bad_style():
    model = _model()
    torch.nn.init.normal_(model.vertice_map_r.weight, std=0.1)
    b = _batch(n_frames=6)
    assert not torch.allclose(model.predict(b.audio, b.template, 0, 6), model.predict(b.audio, b.template, 2, 6))
    with pytest.raises(InputError, match="style"):
        model.predict(b.audio, b.template, 3, 6)
    # a fractional style was identity int(style) (2.7 -> 2), silently
    for bad in (2.7, "1", None, True):
        with pytest.raises(InputError, match="whole number"):
            model.predict(b.audio, b.template, bad, 6)
    for whole in (np.int64(2), torch.tensor(2), 2.0):
        torch.testing.assert_close(model.predict(b.audio, b.template, whole, 6),
                                   model.predict(b.audio, b.template, 2, 6))
    with pytest.raises(InputError, match="template"):
        model.predict(b.audio, b.template[:5], 0, 6)


def test_loss_decreases_on_one_clip():
    model = _model(motion_scale=1.0)  # this clip's motion is ~0.1 units
    batch = _batch(n_frames=12, scale=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0]


def test_motion_scale_is_a_reparametrisation():
    """motion_scale s: head weights W*s... equal outputs when the head is scaled by 1/s and the encoder by s."""
    a, b = _model(motion_scale=1.0, dropout=0.0), _model(motion_scale=1e-3, dropout=0.0)
    b.load_state_dict(a.state_dict())
    torch.nn.init.normal_(a.vertice_map_r.weight, std=0.1)
    with torch.no_grad():
        b.vertice_map_r.weight.copy_(a.vertice_map_r.weight / 1e-3)
        b.vertice_map.weight.copy_(a.vertice_map.weight * 1e-3)
    batch = _batch(n_frames=6)
    pa = a.predict(batch.audio, batch.template, 0, 6)
    pb = b.predict(batch.audio, batch.template, 0, 6)
    assert torch.allclose(pa, pb, atol=1e-4)
    a.config = dataclasses.replace(a.config, teacher_forcing=True)
    b.config = dataclasses.replace(b.config, teacher_forcing=True)
    assert torch.allclose(a.eval()(batch).vertices, b.eval()(batch).vertices, atol=1e-4)


def test_long_sequence_past_600_frames():
    model = _model(teacher_forcing=True)
    batch = _batch(n_frames=650)
    out = model(batch)
    assert out.vertices.shape == (650, V, 3) and torch.isfinite(out.loss)
    pred = model.predict(batch.audio[:16000], batch.template, 0, 620)
    assert pred.shape == (620, V, 3)


def test_checkpoint_roundtrip(tmp_path):
    from p3d.models import load_model

    model = _model()
    torch.nn.init.normal_(model.vertice_map_r.weight, std=0.1)
    model.save(tmp_path / "ff.pt")
    again = FaceFormer.load(tmp_path / "ff.pt")
    b = _batch(n_frames=5)
    assert torch.equal(again.predict(b.audio, b.template, 1, 5), model.predict(b.audio, b.template, 1, 5))
    assert isinstance(load_model(tmp_path / "ff.pt"), FaceFormer)


@pytest.mark.parametrize("fps, period", [(30, 30), (25, 25)])
def test_default_period_is_one_second_of_frames(fps, period):
    """PPE and the temporal bias step once per period: 30 frames for VOCASET (30 fps), 25 for BIWI (25 fps)
    (the official settings), when no period is given."""
    torch.manual_seed(0)
    model = FaceFormer(FaceFormerConfig.from_preset("smoke", n_vertices=V, n_styles=3, fps=fps))
    assert model.config.period_frames == period
    self_mask, _ = model.masks(2 * period + 3, 2 * period + 3, torch.device("cpu"))
    # head 0 (slope 1/4): no bias within one period, -1/4 from exactly one period back
    assert self_mask[0, period - 1, 0] == 0 and self_mask[0, period, 0] == -0.25
    assert self_mask[0, 2 * period, 0] == -0.5 and self_mask[0, 2 * period, 1] == -0.25


def test_rollout_applies_the_temporal_bias_past_one_period():
    """As :func:`test_rollout_feeds_back_its_own_predictions`, over more than one period (3 frames here), where
    the biased mask's ALiBi term is non-zero: the incremental rollout must take each row of the same mask."""
    model = _model(dropout=0.0, period=3, motion_scale=1.0).eval()  # offsets O(0.1), not O(1e-4)
    torch.nn.init.normal_(model.vertice_map_r.weight, std=0.1)
    torch.nn.init.zeros_(model.vertice_map.bias)
    batch = _batch(n_frames=10)
    pred = model.predict(batch.audio, batch.template, batch.style, 10)
    fed = dataclasses.replace(batch, vertices=pred)
    twin = FaceFormer(dataclasses.replace(model.config, teacher_forcing=True))
    twin.load_state_dict(model.state_dict())
    torch.testing.assert_close(twin.eval()(fed).vertices - batch.template, pred - batch.template,
                               rtol=1e-4, atol=1e-6)
    # the batched training rollout (fused feedback, cached projections) over the same frames
    with torch.no_grad():
        fused = model(ClipBatch([batch])).vertices[0]
    torch.testing.assert_close(fused - batch.template, pred - batch.template, rtol=1e-4, atol=1e-6)


def test_alibi_slopes_of_a_head_count_not_a_power_of_two_by_hand():
    """ALiBi (Press et al.) and the official get_slopes for 6 heads: the 4-head slopes 2^-2, 2^-4, 2^-6, 2^-8, then
    every other 8-head slope (2^-1, 2^-3, ...) up to 6 in all."""
    assert alibi_slopes(6) == [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3]
    assert alibi_slopes(3) == [2 ** -4, 2 ** -8, 2 ** -2]
