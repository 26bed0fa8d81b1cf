"""p3d.models.decoding: the periodic positional encoding against its formula, and the fused attentions of
FaceFormer's rollout against nn.MultiheadAttention (evaluation) and their dropout (training)."""
import math

import pytest
import torch
from torch import nn

from p3d.models.decoding import aligned_cross_attention, alignment_mask, cached_self_attention, periodic_encoding

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test


def test_periodic_encoding_is_the_sinusoid_of_the_position_in_its_period():
    """PPE (FaceFormer, Eq. 4): PE(t, 2i) = sin((t mod p) / 10000^(2i / d)), PE(t, 2i + 1) = cos(same)."""
    length, d, period = 50, 6, 7
    pe = periodic_encoding(length, d, period)
    for t in range(length):
        for c in range(d):
            angle = (t % period) / 10000 ** ((c - c % 2) / d)
            assert pe[t, c].item() == pytest.approx(math.sin(angle) if c % 2 == 0 else math.cos(angle), abs=2e-6)


def _attention(dropout: float) -> nn.MultiheadAttention:
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(8, 2, dropout=dropout, batch_first=True)
    with torch.no_grad():
        attn.in_proj_bias.normal_()  # nn.MultiheadAttention starts it at zero
    return attn


def test_aligned_cross_attention_is_the_masked_attention_in_evaluation():
    """Frame t attending to audio feature t alone: nn.MultiheadAttention with the one-feature-per-frame alignment
    mask gives the same output, whatever the query."""
    attn = _attention(0.3).eval()
    memory, query = torch.randn(2, 9, 8), torch.randn(2, 9, 8)
    expected = attn(query, memory, memory, attn_mask=alignment_mask(9, 9), need_weights=False)[0]
    torch.testing.assert_close(aligned_cross_attention(attn, memory, training=False), expected, atol=1e-5, rtol=1e-5)


def test_aligned_cross_attention_dropout_is_per_clip_frame_and_head():
    """In training each (clip, frame, head) keeps its single attention weight with probability 1 - p, scaled by
    1 / (1 - p), or drops it: with out_proj the identity, each head's slice is 0 or v / (1 - p), and the choice
    varies along frames."""
    attn = _attention(0.5)
    with torch.no_grad():
        attn.out_proj.weight.copy_(torch.eye(8))
        attn.out_proj.bias.zero_()
    memory = torch.randn(3, 200, 8)
    v = aligned_cross_attention(attn, memory, training=False).view(3, 200, 2, 4)
    torch.manual_seed(1)
    out = aligned_cross_attention(attn, memory, training=True).view(3, 200, 2, 4)
    dropped = (out == 0).all(dim=-1)
    kept = ~dropped
    torch.testing.assert_close(out[kept], 2 * v[kept], atol=1e-6, rtol=1e-6)
    assert 0.35 < dropped.float().mean() < 0.65
    assert dropped.any(dim=1).all() and kept.any(dim=1).all()  # within each clip and head: both, over frames


def test_cached_self_attention_is_the_last_query_of_the_biased_attention():
    """Evaluation: the newest token's output equals nn.MultiheadAttention's last row on the whole prefix with the
    same additive bias row (keys/values cached across calls). Training: attention dropout applies (two draws
    differ)."""
    attn = _attention(0.5).eval()
    x = torch.randn(1, 5, 8)
    bias = torch.randn(2, 5, 5).tril()
    full = attn(x, x, x, attn_mask=bias, need_weights=False)[0]
    keys, values = [], []
    with torch.no_grad():
        for t in range(5):
            out = cached_self_attention(attn, x[:, t:t + 1], keys, values, bias[:, t:t + 1, :t + 1], training=False)
            expected = attn(x[:, t:t + 1], x[:, :t + 1], x[:, :t + 1], attn_mask=bias[:, t:t + 1, :t + 1],
                            need_weights=False)[0]
            torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, full[:, -1:], atol=1e-5, rtol=1e-5)
    draws = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        draws.append(cached_self_attention(attn, x[:, -1:], keys[:-1], values[:-1], bias[:, -1:], training=True))
    assert not torch.allclose(draws[0], draws[1])


def test_alignment_mask_two_features_per_frame_by_hand():
    """BIWI (official enc_dec_mask with 2 features per frame): frame t sees features 2t and 2t + 1 only; fewer than
    2 features per frame is refused."""
    from p3d.errors import InputError

    m = alignment_mask(3, 7, per_frame=2)
    assert (~m).nonzero().tolist() == [[0, 0], [0, 1], [1, 2], [1, 3], [2, 4], [2, 5]]
    with pytest.raises(InputError):
        alignment_mask(3, 5, per_frame=2)


def test_post_norm_layer_step_is_the_last_row_of_the_layer():
    """The newest token through one post-norm decoder layer, against the earlier tokens' inputs, equals the last row
    of the layer's forward on the whole sequence with the same masks (norm weights made distinct)."""
    torch.manual_seed(0)
    layer = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True).eval()
    with torch.no_grad():
        for norm in (layer.norm1, layer.norm2, layer.norm3):
            norm.weight.normal_()
            norm.bias.normal_()
    tgt, memory = torch.randn(1, 6, 8), torch.randn(1, 6, 8)
    bias = torch.randn(2, 6, 6).tril().masked_fill(torch.ones(6, 6, dtype=torch.bool).triu(1), float("-inf"))
    align = alignment_mask(6, 6)
    full = layer(tgt, memory, tgt_mask=bias, memory_mask=align)
    from p3d.models.decoding import post_norm_layer_step

    with torch.no_grad():
        step = post_norm_layer_step(layer, tgt[:, -1:], tgt, memory, bias[:, -1:], align[-1:])
    torch.testing.assert_close(step, full[:, -1:], atol=1e-5, rtol=1e-5)
