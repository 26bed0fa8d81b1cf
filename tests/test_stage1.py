"""Stage 1 (audio-visual MAE + contrastive): shapes, masking, losses, checkpoints, paper sizes."""
from __future__ import annotations

import logging

import pytest
import torch

from p3d.errors import InputError
from p3d.models.stage1 import (
    Stage1Config, Stage1Model, count_parameters, parameter_table, speech_patches, video_patches,
)
from p3d.models.transformer import n_masked

log = logging.getLogger(__name__)


def _batch(c: Stage1Config, b: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, c.speech_frames, c.n_mels, generator=g),
            torch.rand(b, c.video_channels, c.video_frames, c.video_size, c.video_size, generator=g))


def test_smoke_forward_backward_shapes():
    torch.manual_seed(0)
    c = Stage1Config.from_preset("smoke")
    model = Stage1Model(c)
    fbank, video = _batch(c)
    out = model(fbank, video, generator=torch.Generator().manual_seed(0))
    n_s, n_v = n_masked(c.speech_tokens, 0.3), n_masked(c.video_tokens, 0.3)
    assert c.speech_tokens == 20 * 8 and n_s == 48
    assert out.speech_pred.shape == (3, n_s, 16) and out.speech_mask.shape == (3, n_s)
    assert out.video_pred.shape == (3, n_v, c.video_channels * 256) and out.video_mask.shape == (3, n_v)
    torch.testing.assert_close(out.loss, out.loss_mae + c.lambda_infonce * out.loss_infonce)
    torch.testing.assert_close(out.loss_mae, out.loss_mae_speech + out.loss_mae_video)
    out.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


def test_masking_ratio_in_the_model():
    c = Stage1Config.from_preset("smoke", mask_ratio=0.5)
    out = Stage1Model(c)(*_batch(c), generator=torch.Generator().manual_seed(1))
    assert out.speech_mask.shape[1] == c.speech_tokens // 2
    assert out.video_mask.shape[1] == round(0.5 * c.video_tokens)


def test_same_generator_same_loss():
    torch.manual_seed(0)
    c = Stage1Config.from_preset("smoke")
    model = Stage1Model(c)
    batch = _batch(c)
    a = model(*batch, generator=torch.Generator().manual_seed(3)).loss
    b = model(*batch, generator=torch.Generator().manual_seed(3)).loss
    assert a.item() == b.item()


def test_infonce_uses_the_configured_layers():
    torch.manual_seed(0)
    c = Stage1Config.from_preset("smoke")
    model = Stage1Model(c)
    batch = _batch(c, b=4)
    one = Stage1Model(Stage1Config.from_preset("smoke", infonce_layers=(1,)))
    one.load_state_dict(model.state_dict())
    two = model(*batch, generator=torch.Generator().manual_seed(0)).loss_infonce
    last = one(*batch, generator=torch.Generator().manual_seed(0)).loss_infonce
    assert two.item() > last.item() > 0  # a sum over two layers vs the last layer alone
    with pytest.raises(InputError):
        Stage1Config.from_preset("smoke", infonce_layers=(5,))


def test_patch_order_matches_the_tokenizers():
    video = torch.zeros(1, 1, 2, 32, 32)
    for t in range(2):
        for h in range(2):
            for w in range(2):
                video[0, 0, t, 16 * h:16 * h + 16, 16 * w:16 * w + 16] = 100 * t + 10 * h + w
    patches = video_patches(video)
    assert patches.shape == (1, 8, 256)
    assert patches[0, :, 0].tolist() == [0, 1, 10, 11, 100, 101, 110, 111]  # order t, h, w as Conv3d.flatten
    assert (patches == patches[..., :1]).all()
    fbank = torch.arange(2 * 128.0).view(1, 2, 128)
    tokens = speech_patches(fbank)
    assert tokens.shape == (1, 16, 16) and tokens[0, 9, 0].item() == 128 + 16  # token 8 t + f


def test_bad_inputs():
    c = Stage1Config.from_preset("smoke")
    model = Stage1Model(c)
    fbank, video = _batch(c)
    with pytest.raises(InputError, match="fbank"):
        model(fbank[:, :10], video)
    with pytest.raises(InputError, match="video"):
        model(fbank, video[:, :, :3])


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Stage1Model(Stage1Config.from_preset("smoke")).eval()
    model.save(tmp_path / "stage1.pt")
    loaded = Stage1Model.load(tmp_path / "stage1.pt").eval()
    assert loaded.config == model.config
    fbank, video = _batch(model.config)
    for x, y in zip(model.embed(fbank, video), loaded.embed(fbank, video)):
        torch.testing.assert_close(x, y)


def test_paper_preset_sizes():
    c = Stage1Config.from_preset("paper")
    assert (c.speech_tokens, c.video_tokens) == (512, 500)  # 64 x 8 and 5 x 10 x 10 (Sec. C.2)
    model = Stage1Model(c)
    table = parameter_table(model)
    log.info("stage-1 paper preset parameters: %s, total %.1f M", table, count_parameters(model) / 1e6)
    print({k: f"{v / 1e6:.1f}M" for k, v in table.items()}, f"total {count_parameters(model) / 1e6:.1f}M")
    # [MHSA(512, 8) -> FFN(2048)] x 10: ~3.15 M per layer, ~31.5 M per encoder
    assert 30e6 < table["speech_encoder"] < 33e6
    assert 30e6 < table["video_encoder"] < 33e6
    assert model.speech_encoder.config.dim == 512 and len(model.speech_encoder.encoder.blocks) == 10


def test_attention_under_bf16_autocast_attends_in_float32():
    """Under CPU bf16 autocast the projections run in bf16 but softmax(q k^T / sqrt(d)) v in float32; float32
    inputs take torch's kernel unchanged."""
    import torch.nn.functional as F

    from p3d.models.transformer import Attention

    torch.manual_seed(0)
    attn = Attention(32, 4)
    x = torch.randn(3, 7, 32)
    captured = []
    original = F.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        captured.append(q.dtype)
        return original(q, k, v, **kw)

    try:
        F.scaled_dot_product_attention = spy
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out16 = attn(x)
        out32 = attn(x)
    finally:
        F.scaled_dot_product_attention = original
    assert captured == [torch.float32, torch.float32] and out16.dtype == torch.bfloat16
    # the float32 path: torch's attention of the same projections, bit for bit
    q = attn.q(x).view(3, 7, 4, 8).transpose(1, 2)
    k, v = attn.kv(x).view(3, 7, 2, 4, 8).permute(2, 0, 3, 1, 4)
    expected = attn.proj(original(q, k, v).transpose(1, 2).reshape(3, 7, 32))
    assert torch.equal(out32, expected)
    torch.testing.assert_close(out16.float(), out32, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("ratio", [0.0, 0.02, 1.0, float("nan"), -0.3, True])
def test_a_mask_ratio_that_masks_no_token_of_a_modality_is_refused(ratio):
    """Eq. 3 averages over the masked tokens; at 0.02 the smoke video's 20 tokens had none masked and the loss was
    NaN (0.0: both modalities)."""
    with pytest.raises(InputError, match="mask_ratio"):
        Stage1Config.from_preset("smoke", mask_ratio=ratio)


def test_the_smallest_mask_ratio_that_masks_a_video_token_trains():
    c = Stage1Config.from_preset("smoke", mask_ratio=0.03)  # round(0.6) = 1 of 20 video tokens
    out = Stage1Model(c)(*_batch(c, b=2), generator=torch.Generator().manual_seed(0))
    assert out.video_mask.shape[1] == 1 and torch.isfinite(out.loss)


def test_infonce_layer_indices_and_patch_sizes_are_checked():
    """``infonce_layers``: non-empty indices of the ``depth`` encoder layers (negative ones count from the end);
    the video size and mel count must be multiples of their patch sizes."""
    assert Stage1Config.from_preset("smoke", infonce_layers=(-2, -1)).infonce_layers == (-2, -1)  # depth 2
    for bad in ((), (2,), (-3,)):
        with pytest.raises(InputError, match="infonce_layers"):
            Stage1Config.from_preset("smoke", infonce_layers=bad)
    with pytest.raises(InputError, match="multiples"):
        Stage1Config.from_preset("smoke", video_size=40)
    with pytest.raises(InputError, match="multiples"):
        Stage1Config.from_preset("smoke", n_mels=120)


def test_a_batch_mismatch_between_speech_and_video_is_refused():
    c = Stage1Config.from_preset("smoke")
    fbank, video = _batch(c)
    with pytest.raises(InputError, match="batch"):
        Stage1Model(c)(fbank, video[:2])


def test_video_tokens_carry_sinusoidal_positions_and_embeddings_are_unit_vectors():
    """E_v's tokens: the Conv3D patch embedding plus the sine-cosine table over the M tokens (order t, h, w); the
    retrieval embedding is mean-pooled and L2-normalised."""
    from p3d.models.transformer import sinusoid_table

    torch.manual_seed(0)
    c = Stage1Config.from_preset("smoke")
    model = Stage1Model(c)
    enc = model.video_encoder
    video = torch.zeros(1, c.video_channels, c.video_frames, c.video_size, c.video_size)
    expected = enc.patch_embed.bias[None, None] + sinusoid_table(c.video_tokens, c.dim)[None]
    torch.testing.assert_close(enc.tokenize(video), expected)
    speech, vid = model.embed(*_batch(c))
    torch.testing.assert_close(vid.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(speech.norm(dim=-1), torch.ones(3))


def test_video_patch_values_are_channel_row_column_blocks():
    """A video token's target (C p p) is its C x p x p pixel block flattened channel, row, column."""
    video = torch.randn(1, 2, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    patches = video_patches(video)
    for t, h, w in ((0, 0, 1), (1, 1, 0)):
        block = video[0, :, t, 16 * h:16 * h + 16, 16 * w:16 * w + 16]
        assert torch.equal(patches[0, 4 * t + 2 * h + w], block.reshape(-1))


def test_mae_loss_is_the_mean_squared_error_over_the_masked_patches_only():
    """Eq. 3 per modality, the squared error averaged over the masked tokens' elements: with the decoders' output
    layer zeroed the prediction is 0, so each term is the mean square of the masked patches, computed here from
    the inputs and the returned mask indices."""
    torch.manual_seed(0)
    c = Stage1Config.from_preset("smoke")
    model = Stage1Model(c)
    with torch.no_grad():
        for head in (model.speech_decoder.head, model.video_decoder.head):
            head.weight.zero_()
            head.bias.zero_()
    fbank, video = _batch(c)
    out = model(fbank, video, generator=torch.Generator().manual_seed(2))
    per_frame, side = c.n_mels // c.speech_patch, c.video_size // c.video_patch
    speech_sq, video_sq = [], []
    for b in range(fbank.shape[0]):
        for j in out.speech_mask[b].tolist():
            t, f = divmod(j, per_frame)
            speech_sq.append(fbank[b, t, c.speech_patch * f:c.speech_patch * (f + 1)] ** 2)
        for j in out.video_mask[b].tolist():
            t, rest = divmod(j, side * side)
            h, w = divmod(rest, side)
            p = c.video_patch
            video_sq.append(video[b, :, t, p * h:p * (h + 1), p * w:p * (w + 1)].reshape(-1) ** 2)
    assert out.loss_mae_speech.item() == pytest.approx(torch.cat(speech_sq).mean().item(), rel=1e-5)
    assert out.loss_mae_video.item() == pytest.approx(torch.cat(video_sq).mean().item(), rel=1e-5)
    assert out.loss_mae.item() == pytest.approx(out.loss_mae_speech.item() + out.loss_mae_video.item(), rel=1e-6)


def test_fusion_and_decoders_read_what_the_paper_says():
    """Sec. 4 / Table S1: both fusion branches read the previous layer's outputs; each decoder embeds the visible
    fused tokens plus their positions, puts the mask token plus positions at the masked ones, cross-attends to
    its modality's encoder output Z, and returns the predictions of the masked tokens (Slice[N_unmask:])."""
    from p3d.models.transformer import sinusoid_table

    torch.manual_seed(0)
    c = Stage1Config.from_preset("smoke", fusion_depth=2)
    model = Stage1Model(c)
    seen = {}

    def keep(name):
        return lambda module, args, output: seen.__setitem__(name, (args, output))

    model.speech_encoder.register_forward_hook(keep("speech_encoder"))
    model.video_encoder.register_forward_hook(keep("video_encoder"))
    model.fusion.register_forward_hook(keep("fusion"))
    for name in ("speech", "video"):
        decoder = getattr(model, f"{name}_decoder")
        decoder.register_forward_hook(keep(f"{name}_decoder"))
        decoder.self_block.register_forward_hook(keep(f"{name}_self_block"))
        decoder.head.register_forward_hook(keep(f"{name}_head"))
    model(*_batch(c), generator=torch.Generator().manual_seed(0))

    zs, zv = seen["speech_encoder"][1][0], seen["video_encoder"][1][0]
    f = model.fusion
    s1, v1 = f.speech[0](zs, zv), f.video[0](zv, zs)
    fs, fv = f.speech[1](s1, v1), f.video[1](v1, s1)
    torch.testing.assert_close(seen["fusion"][1][0], fs)
    torch.testing.assert_close(seen["fusion"][1][1], fv)
    for name, fused, z, n_tokens in (("speech", fs, zs, c.speech_tokens), ("video", fv, zv, c.video_tokens)):
        decoder = getattr(model, f"{name}_decoder")
        (given, keep_idx, mask_idx, context), pred = seen[f"{name}_decoder"]
        torch.testing.assert_close(given, fused)
        assert context is z  # the modality's encoder output, not the fused tokens
        pos = sinusoid_table(n_tokens, c.decoder_dim)
        x = seen[f"{name}_self_block"][0][0]
        n_keep = keep_idx.shape[1]
        torch.testing.assert_close(x[:, :n_keep], decoder.embed(fused) + pos[keep_idx])
        torch.testing.assert_close(x[:, n_keep:], decoder.mask_token.expand(len(x), -1, -1) + pos[mask_idx])
        torch.testing.assert_close(pred, seen[f"{name}_head"][1][:, n_keep:])
        assert pred.shape[1] == mask_idx.shape[1]
