"""Audio encoders: shapes at the motion rate, local wav2vec2 loading (tiny random config), long input, errors."""
import pytest
import torch

from p3d.errors import InputError
from p3d.models.audio_encoder import (AudioEncoderConfig, Wav2Vec2Encoder, _project, build_audio_encoder,
                                      linear_interpolation, time_mask_indices)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    """A randomly initialised tiny wav2vec2 saved with save_pretrained (no download)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48,
                         conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                         mask_time_prob=0.05, mask_time_length=2)
    path = tmp_path_factory.mktemp("w2v") / "tiny"
    Wav2Vec2Model(cfg).save_pretrained(path)
    return path


@pytest.mark.parametrize("preset", ["smoke", "cpu"])
def test_mel_encoder_shapes_and_gradient(preset):
    torch.manual_seed(0)
    enc = build_audio_encoder(AudioEncoderConfig.from_preset(preset))
    audio = 0.1 * torch.randn(2, 16000, requires_grad=False)
    out = enc(audio, 30)
    assert out.shape == (2, 30, enc.dim) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None for p in enc.parameters())


def test_mel_encoder_is_per_item_and_long_input_works():
    torch.manual_seed(0)
    enc = build_audio_encoder(AudioEncoderConfig.from_preset("cpu")).eval()
    audio = 0.1 * torch.randn(2, 8000)
    both = enc(audio, 15)
    assert torch.allclose(both[1], enc(audio[1:], 15)[0], atol=1e-5)
    long = enc(0.1 * torch.randn(1, 16000 * 25), 750)  # 25 s, past the baselines' 600-frame tables
    assert long.shape == (1, 750, 64) and torch.isfinite(long).all()


def test_linear_interpolation_keeps_end_points():
    x = torch.arange(50, dtype=torch.float32).reshape(1, 50, 1)
    y = linear_interpolation(x, 30)
    assert y.shape == (1, 30, 1) and y[0, 0, 0] == 0 and y[0, -1, 0] == 49
    assert torch.allclose(y[0, :, 0], torch.linspace(0, 49, 30), atol=1e-4)
    with pytest.raises(InputError):
        linear_interpolation(x, 0)


def test_wav2vec2_loads_locally_and_interpolates(tiny_wav2vec2):
    torch.manual_seed(0)
    config = AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tiny_wav2vec2))
    enc = build_audio_encoder(config)
    assert isinstance(enc, Wav2Vec2Encoder) and enc.dim == 32
    assert not any(p.requires_grad for p in enc.model.feature_extractor.parameters())
    enc.eval()
    out = enc(0.1 * torch.randn(1, 16000), 30)  # 1 s: 49 CNN frames at 50 Hz -> 30 frames
    assert out.shape == (1, 30, 32) and torch.isfinite(out).all()
    enc.train()
    out = enc(0.1 * torch.randn(1, 16000), 30)
    out.mean().backward()
    assert enc.model.encoder.layers[0].attention.q_proj.weight.grad is not None
    # rebuilding without weights then loading the state dict gives the same module
    rebuilt = build_audio_encoder(config, pretrained=False)
    rebuilt.load_state_dict(enc.state_dict())
    audio = 0.1 * torch.randn(1, 8000)
    assert torch.allclose(rebuilt.eval()(audio, 12), enc.eval()(audio, 12), atol=1e-6)


def test_wav2vec2_dim_mismatch_and_missing_folder(tiny_wav2vec2, tmp_path):
    with pytest.raises(InputError, match="hidden size"):
        build_audio_encoder(AudioEncoderConfig(kind="wav2vec2", dim=768, wav2vec2_path=str(tiny_wav2vec2)))
    with pytest.raises(InputError, match="local wav2vec2 folder"):
        build_audio_encoder(AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tmp_path / "nope")))
    with pytest.raises(InputError, match="wav2vec2_path"):
        build_audio_encoder(AudioEncoderConfig(kind="wav2vec2"))


def test_feature_projection_tuple_or_tensor():
    x = torch.randn(1, 4, 3)
    assert _project(lambda t: (2 * t, t), x).equal(2 * x)
    assert _project(lambda t: 2 * t, x).equal(2 * x)


def test_time_mask_spans():
    torch.manual_seed(0)
    mask = time_mask_indices(3, 100, 0.05, 10)
    assert mask.shape == (3, 100) and (mask.sum(1) >= 10).all()
    assert not time_mask_indices(1, 100, 0.0, 10).any()


def test_bad_input():
    enc = build_audio_encoder(AudioEncoderConfig.from_preset("smoke"))
    with pytest.raises(InputError):
        enc(torch.zeros(16000), 10)
    with pytest.raises(InputError, match="NaN"):
        enc(torch.full((1, 16000), float("nan")), 10)
    with pytest.raises(InputError):
        AudioEncoderConfig(kind="mfcc", dim=8)
    with pytest.raises(InputError):
        AudioEncoderConfig(kind="mel")
