"""Shared transformer blocks: positions, attention, encoder layers, random masking."""
from __future__ import annotations

import math

import pytest
import torch

from p3d.models import transformer as T


def test_sinusoid_table_values():
    table = T.sinusoid_table(7, 8)
    assert table.shape == (7, 8) and table.dtype == torch.float32
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0] * 4))
    p = 3
    for i in range(4):
        angle = p / 10000 ** (2 * i / 8)
        assert table[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
        assert table[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_attention_equals_the_textbook_formula():
    torch.manual_seed(0)
    attn = T.Attention(dim=8, heads=2, context_dim=6)
    x, ctx = torch.randn(2, 3, 8), torch.randn(2, 5, 6)
    out = attn(x, ctx)
    q = attn.q(x).view(2, 3, 2, 4).transpose(1, 2)
    k, v = attn.kv(ctx).view(2, 5, 2, 2, 4).permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(4), dim=-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 3, 8))
    torch.testing.assert_close(out, expected)
    assert T.Attention(dim=8, heads=2)(x).shape == (2, 3, 8)  # self-attention


@pytest.mark.parametrize("bf16", [False, True])
def test_a_key_padding_mask_makes_padded_tokens_equal_each_sequence_alone(bf16):
    """Attention.forward's ``attn_mask`` (True where a query may attend; a (B, 1, 1, M) key-padding mask): the real
    tokens of padded sequences equal each sequence alone, whatever the padding holds, in float32 and on the
    float32-attention path of a CPU bf16 autocast (_float32_attention)."""
    torch.manual_seed(0)
    block = T.Block(dim=16, heads=2).eval()
    seqs = [torch.randn(t, 16) for t in (5, 2, 4)]
    padded = torch.full((3, 5, 16), 7.0)
    for b, s in enumerate(seqs):
        padded[b, :len(s)] = s
    lengths = torch.tensor([len(s) for s in seqs])
    keys = (torch.arange(5)[None] < lengths[:, None])[:, None, None]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = block(padded, attn_mask=keys).float()
        alone = [block(s[None]).float()[0] for s in seqs]
    tol = {"rtol": 2e-2, "atol": 2e-2} if bf16 else {"rtol": 1e-5, "atol": 1e-5}
    for b, s in enumerate(seqs):
        torch.testing.assert_close(out[b, :len(s)], alone[b], **tol)


def test_encoder_layers_and_cross_block_shapes():
    torch.manual_seed(0)
    enc = T.Encoder(dim=16, depth=3, heads=2)
    x = torch.randn(2, 7, 16)
    out, layers = enc(x, return_layers=True)
    assert len(layers) == 3 and all(layer.shape == (2, 7, 16) for layer in layers)
    torch.testing.assert_close(layers[-1], out)
    torch.testing.assert_close(enc(x), out)
    block = T.CrossBlock(dim=16, heads=2, context_dim=24, cross_heads=4)
    assert block(x, torch.randn(2, 4, 24)).shape == (2, 7, 16)


def test_pooled_is_unit_length_mean():
    tokens = torch.tensor([[[3.0, 0.0], [1.0, 0.0]], [[0.0, 2.0], [0.0, 4.0]]])
    torch.testing.assert_close(T.pooled(tokens), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


@pytest.mark.parametrize("n,expected", [(160, 48), (500, 150), (512, 154), (10, 3), (5, 2)])
def test_masking_keeps_exactly_the_requested_ratio(n, expected):
    assert T.n_masked(n, 0.3) == expected
    keep, mask = T.random_masking(6, n, 0.3, generator=torch.Generator().manual_seed(1))
    assert keep.shape == (6, n - expected) and mask.shape == (6, expected)
    for k, m in zip(keep, mask):
        assert sorted(k.tolist() + m.tolist()) == list(range(n))  # a partition of the tokens
        assert k.tolist() == sorted(k.tolist()) and m.tolist() == sorted(m.tolist())


def test_masking_is_random_per_sample_and_reproducible():
    a = T.random_masking(4, 100, 0.3, generator=torch.Generator().manual_seed(7))
    b = T.random_masking(4, 100, 0.3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a[1], b[1])
    assert len({tuple(row.tolist()) for row in a[1]}) == 4
    with pytest.raises(ValueError):
        T.n_masked(10, 1.0)


def test_gather_tokens():
    x = torch.arange(24.0).view(2, 4, 3)
    idx = torch.tensor([[3, 0], [1, 1]])
    torch.testing.assert_close(T.gather_tokens(x, idx), torch.stack([x[0, [3, 0]], x[1, [1, 1]]]))


def test_attention_refuses_a_width_not_divisible_by_the_heads():
    with pytest.raises(ValueError, match="divisible"):
        T.Attention(dim=10, heads=3)


def test_block_and_cross_block_are_pre_norm_residual_layers():
    """Block: ``x + MHSA(LN x)`` then ``+ FFN(LN x)``; CrossBlock: MHSA -> MHCA(LN context) -> FFN, each pre-norm
    with a residual (Table S1), composed here from the layers' own sub-modules."""
    torch.manual_seed(0)
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 3, 24)
    block = T.Block(dim=16, heads=2)
    h = x + block.attn(block.norm1(x))
    torch.testing.assert_close(block(x), h + block.mlp(block.norm2(h)))
    cross = T.CrossBlock(dim=16, heads=2, context_dim=24, cross_heads=4)
    h = x + cross.attn(cross.norm1(x))
    h = h + cross.cross_attn(cross.norm_cross(h), cross.norm_context(ctx))
    torch.testing.assert_close(cross(x, ctx), h + cross.mlp(cross.norm2(h)))


def test_cross_block_layer_normalises_its_context():
    """The context is layer-normalised before it is attended to: a per-token shift and positive scale of the
    context does not change the output (LN removes both, its eps aside)."""
    torch.manual_seed(0)
    cross = T.CrossBlock(dim=16, heads=2, context_dim=24, cross_heads=4)
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 3, 24)
    torch.testing.assert_close(cross(x, 3.0 * ctx + 5.0), cross(x, ctx), rtol=1e-4, atol=1e-4)


def test_masking_always_keeps_a_token():
    """A ratio just under 1 rounds up to every token; one is kept so that the encoder has a token to pool."""
    for n in (2, 5, 10):
        k = T.n_masked(n, 0.99)
        assert k == n - 1
        keep, mask = T.random_masking(3, n, 0.99, generator=torch.Generator().manual_seed(0))
        assert keep.shape == (3, 1) and mask.shape == (3, n - 1)
