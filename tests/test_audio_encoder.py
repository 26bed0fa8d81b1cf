"""Audio encoders: shapes at the motion rate, the mel front-end's gain invariance, local wav2vec2 loading (tiny
random config), long input, errors."""
import math

import pytest
import torch

from p3d.errors import InputError
from p3d.models.audio_encoder import (LOG_MEL_FLOOR, AudioEncoderConfig, Wav2Vec2Encoder, _project,
                                      build_audio_encoder, encode_clips, linear_interpolation, time_mask_indices)


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


def _speech_like(n: int, seed: int = 0) -> torch.Tensor:
    """(n,) a harmonic tone with a decaying envelope between digital silences: many mel cells far below the
    peak (the cells an absolute log floor would clip)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    voiced = sum(torch.sin(2 * torch.pi * 140 * k * t) / k ** 2 for k in range(1, 12))
    x = 0.05 * voiced * torch.exp(-3 * t) + 1e-4 * torch.randn(n, generator=g)
    x[: n // 5] = 0  # leading and trailing silence
    x[-n // 5:] = 0
    return x


@pytest.mark.parametrize("gain", [0.25, 4.0, 3.0])
def test_mel_front_end_is_gain_invariant(gain):
    """The log floor is relative to the clip's peak mel energy: log_mel(g x) - log_mel(x) is 2 log g in every
    cell, so the per-utterance normalised features do not depend on the gain (an absolute floor broke this)."""
    enc = build_audio_encoder(AudioEncoderConfig.from_preset("smoke"))
    x = torch.stack([_speech_like(8000, 0), 0.01 * _speech_like(8000, 1)])  # two clips of different levels

    def mel_power(a):
        return enc.mel_basis @ torch.stft(a, 400, 160, window=enc.window, return_complex=True).abs().pow(2)

    def raw(a):  # the log-mel before the per-utterance normalisation
        return torch.log(mel_power(a) + LOG_MEL_FLOOR * mel_power(a).amax(dim=(1, 2), keepdim=True))

    def normalised_absolute_floor(a):  # the previous front-end, log(mel + 1e-6)
        m = torch.log(mel_power(a) + 1e-6)
        return (m - m.mean(2, keepdim=True)) / (m.std(2, keepdim=True) + 1e-3)

    shift = raw(gain * x) - raw(x)
    # a power-of-two gain scales every float32 product exactly; 3 rounds the FFT's sums differently (cells
    # near the floor, whose power comes from cancellation, move by up to ~2e-4 in log)
    tol = 1e-4 if math.log2(gain).is_integer() else 1e-3
    torch.testing.assert_close(shift, torch.full_like(shift, 2 * math.log(gain)), atol=tol, rtol=0)
    torch.testing.assert_close(enc.log_mel(gain * x), enc.log_mel(x), atol=tol, rtol=0)
    # the previous absolute floor log(mel + 1e-6) is not: a gain changes its normalised features
    assert (normalised_absolute_floor(gain * x) - normalised_absolute_floor(x)).abs().max() > 0.1
    # each clip's floor is its own: a clip's features do not depend on the other rows of the batch
    torch.testing.assert_close(enc.log_mel(x)[1], enc.log_mel(x[1:])[0], atol=1e-5, rtol=0)


def test_mel_front_end_of_silence_is_finite():
    enc = build_audio_encoder(AudioEncoderConfig.from_preset("smoke"))
    out = enc.log_mel(torch.zeros(1, 4000))
    assert torch.isfinite(out).all() and out.abs().max() == 0


def test_mel_encode_clips_batched_equals_per_clip_and_is_gain_invariant():
    """Clips of different lengths in one padded batch: each clip's rows equal the clip alone, also when the
    clips come at different gains (the floor is per clip, over its own frames, never over padding)."""
    torch.manual_seed(0)
    enc = build_audio_encoder(AudioEncoderConfig.from_preset("cpu")).eval()
    audios = [_speech_like(12000, 0), 0.01 * _speech_like(6000, 1), 30 * _speech_like(9000, 2)]
    frames = [22, 11, 17]
    with torch.no_grad():
        batched = encode_clips(enc, audios, frames)
        louder = encode_clips(enc, [4 * a for a in audios], frames)
        for b, (a, t) in enumerate(zip(audios, frames)):
            torch.testing.assert_close(batched[b, :t], enc(a[None], t)[0], atol=1e-5, rtol=1e-4)
            assert batched[b, t:].abs().max() == 0 if t < batched.shape[1] else True
        torch.testing.assert_close(louder, batched, atol=1e-4, rtol=1e-4)


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


def test_mel_front_end_runs_on_the_encoder_device():
    """A dataset holds its audio on the CPU and caches the front-end of an encoder that may sit on a GPU
    (``TalkerClips.cache_audio_features``): the audio goes to the encoder's device (it used to fail there: "stft
    input and window must be on the same device", found on a GPU). ``meta`` stands in for CUDA."""
    enc = build_audio_encoder(AudioEncoderConfig.from_preset("smoke"))
    audio = _speech_like(8000, 0)
    on_cpu = enc.front_end(audio)
    assert on_cpu.device.type == "cpu" and torch.isfinite(on_cpu).all()
    out = enc.to("meta").front_end(audio)
    assert out.device.type == "meta" and out.shape == on_cpu.shape


@pytest.mark.parametrize("trim", [True, False])
def test_wav2vec2_pairs_short_audio_repeats_the_last_complete_pair(tiny_wav2vec2, trim):
    """Two features per frame (BIWI) on audio of exactly T frames at 25 fps: 2T - 1 features, one short. The missing
    last frame repeats the last complete pair (2T - 4, 2T - 3) in order; SelfTalk's untrimmed odd last feature
    2T - 2 is dropped, not paired with 2T - 3 (the former result, a time-reversed pair)."""
    torch.manual_seed(0)
    config = AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tiny_wav2vec2), features_per_frame=2,
                                trim_before_encoder=trim)
    enc = build_audio_encoder(config).eval()
    n_frames = 10
    audio = 0.1 * torch.randn(1, n_frames * 640)
    assert enc.n_features(audio.shape[1]) == 2 * n_frames - 1
    with torch.no_grad():
        out = enc(audio, n_frames)
        longer = enc(audio, n_frames + 3)
    assert out.shape == (1, n_frames, 64)
    torch.testing.assert_close(out[0, -1], out[0, -2], rtol=0, atol=0)
    torch.testing.assert_close(longer[0, n_frames - 1:], out[0, -1:].expand(4, -1), rtol=0, atol=0)


@pytest.mark.parametrize("fields", [dict(kind="mel", dim=0), dict(kind="mel", dim=-4), dict(kind="mel", dim=8.0),
                                    dict(kind="wav2vec2", features_per_frame=3),
                                    dict(kind="wav2vec2", features_per_frame=0),
                                    dict(kind="mel", dim=8, features_per_frame=2)])
def test_config_refuses_what_no_encoder_supports(fields):
    """A positive integer dim for mel; 1 feature per frame, or 2 with wav2vec2 only (AudioEncoderConfig)."""
    with pytest.raises(InputError, match="audio encoder"):
        AudioEncoderConfig(**fields)


def test_audio_too_short_for_the_encoder_is_one_input_error(tiny_wav2vec2):
    """The mel front-end's centred STFT reflects n_fft / 2 = 200 samples at each end, which needs more than 200
    samples; wav2vec2's CNN gives its first feature at 400 samples (its receptive field, 25 ms). Shorter audio is
    a one-line InputError, not torch's error from inside the encoder; the shortest allowed works."""
    mel = build_audio_encoder(AudioEncoderConfig.from_preset("smoke"))
    with pytest.raises(InputError, match="too short"):
        mel(0.1 * torch.randn(1, 200), 3)
    assert mel(0.1 * torch.randn(1, 201), 3).shape == (1, 3, 16)
    w2v = build_audio_encoder(AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tiny_wav2vec2))).eval()
    assert w2v.n_features(399) == 0 and w2v.n_features(400) == 1
    with pytest.raises(InputError, match="too short"):
        w2v(0.1 * torch.randn(1, 399), 3)
    with torch.no_grad():
        assert w2v(0.1 * torch.randn(1, 400), 3).shape == (1, 3, 32)


@pytest.mark.parametrize("dim", [6, 5])
def test_sinusoid_is_the_transformer_table(dim):
    """PE(p, 2i) = sin(p / 10000^(2i / dim)), PE(p, 2i + 1) = cos(p / 10000^(2i / dim)) (Vaswani et al., 2017),
    computed here in float64 entry by entry."""
    from p3d.models.audio_encoder import sinusoid

    table = sinusoid(40, dim)
    expected = torch.zeros(40, dim, dtype=torch.float64)
    for p in range(40):
        for c in range(dim):
            angle = p / 10000 ** ((c - c % 2) / dim)
            expected[p, c] = math.sin(angle) if c % 2 == 0 else math.cos(angle)
    torch.testing.assert_close(table.double(), expected, atol=2e-5, rtol=0)


@pytest.mark.parametrize("scale", [0.3, 1e-4])
def test_wav2vec2_input_is_normalised_as_the_processor_does(tiny_wav2vec2, scale):
    """The CNN sees the waveform as transformers' Wav2Vec2FeatureExtractor(do_normalize=True) leaves it (zero mean,
    population variance, eps 1e-7): a short clip (the sample and population variances differ by 1 / S) and a
    quiet one (where the eps matters)."""
    import numpy as np
    from transformers import Wav2Vec2FeatureExtractor

    enc = build_audio_encoder(AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tiny_wav2vec2))).eval()
    g = torch.Generator().manual_seed(1)
    audio = scale * (torch.randn(1, 480, generator=g) + 0.5)
    seen = []
    enc.model.feature_extractor.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    with torch.no_grad():
        enc(audio, 2)
    processor = Wav2Vec2FeatureExtractor(do_normalize=True, sampling_rate=16000, return_attention_mask=False)
    expected = processor(audio[0].double().numpy(), sampling_rate=16000, return_tensors="np").input_values
    torch.testing.assert_close(seen[0].double(), torch.as_tensor(np.asarray(expected, dtype=np.float64)),
                               atol=1e-5, rtol=1e-5)


def test_wav2vec2_trim_before_encoder_matters_only_for_an_odd_feature_count(tiny_wav2vec2):
    """trim_before_encoder: with an odd number of 50 Hz features, the transformer sees the odd last one or not (the
    outputs differ); with an even number there is nothing to trim (the same output). Two features per frame make
    the width 2 * hidden_size."""
    torch.manual_seed(0)
    encoders = {trim: build_audio_encoder(AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tiny_wav2vec2),
                                                             features_per_frame=2, trim_before_encoder=trim)).eval()
                for trim in (True, False)}
    encoders[False].load_state_dict(encoders[True].state_dict())
    assert encoders[True].dim == 64 and encoders[False].dim == 64
    odd, even = 0.1 * torch.randn(1, 6400), 0.1 * torch.randn(1, 6720)
    assert encoders[True].n_features(odd.shape[1]) % 2 == 1 and encoders[True].n_features(even.shape[1]) % 2 == 0
    with torch.no_grad():
        assert (encoders[True](odd, 9) - encoders[False](odd, 9)).abs().max() > 1e-4
        torch.testing.assert_close(encoders[True](even, 10), encoders[False](even, 10), rtol=0, atol=0)


def test_wav2vec2_encode_clips_pads_each_clip_alone(tiny_wav2vec2):
    """encode_clips with wav2vec2 (clip by clip): (B, max n_frames, dim), clip b's first n_frames[b] rows its own
    encoding and zeros after; the longest clip need not come first."""
    torch.manual_seed(0)
    enc = build_audio_encoder(AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tiny_wav2vec2))).eval()
    audios = [0.1 * torch.randn(4000), 0.1 * torch.randn(9600), 0.1 * torch.randn(6400)]
    frames = [7, 18, 12]
    with torch.no_grad():
        out = encode_clips(enc, audios, frames)
        assert out.shape == (3, 18, 32)
        for b, (a, t) in enumerate(zip(audios, frames)):
            torch.testing.assert_close(out[b, :t], enc(a[None], t)[0], rtol=0, atol=0)
            assert out[b, t:].abs().max() == 0 if t < 18 else True


def test_mel_front_end_is_the_documented_log_mel():
    """MelEncoder.log_mel recomputed with librosa's STFT (float64): 80 mel bins of the centred 25 ms Hann STFT power
    at a 10 ms hop (1 + S // 160 frames), log with a floor 80 dB below the clip's peak mel energy, each bin
    normalised over time. The tolerance leaves the normalisation's small eps free; another floor moves the
    silent cells by whole units."""
    import librosa
    import numpy as np

    enc = build_audio_encoder(AudioEncoderConfig.from_preset("smoke"))
    x = _speech_like(8000, 0)
    out = enc.log_mel(x[None])[0].double().numpy()
    assert out.shape == (80, 1 + 8000 // 160)
    power = np.abs(librosa.stft(x.double().numpy(), n_fft=400, hop_length=160, window="hann", center=True,
                                pad_mode="reflect")) ** 2
    mel = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80).astype(np.float64) @ power
    log_mel = np.log(mel + 10 ** (-80 / 10) * mel.max())
    expected = (log_mel - log_mel.mean(axis=1, keepdims=True)) / log_mel.std(axis=1, ddof=1, keepdims=True)
    np.testing.assert_allclose(out, expected, atol=1e-2, rtol=0)
    # per mel bin over time: zero mean, unit standard deviation
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=1, ddof=1), 1.0, atol=1e-2)


def test_time_mask_is_whole_spans_and_never_more_than_fit():
    """SpecAugment time mask (wav2vec2's _compute_mask_indices): every masked run is at least one span long, and
    no more spans than length // span are drawn (a 3-frame sequence with span 2 gets one span, 2 frames)."""
    torch.manual_seed(0)
    mask = time_mask_indices(20, 100, 0.05, 10)
    for row in mask.tolist():
        runs, n = [], 0
        for m in row + [False]:
            if m:
                n += 1
            elif n:
                runs.append(n)
                n = 0
        assert runs and min(runs) >= 10
    short = time_mask_indices(50, 3, 0.05, 2)
    assert (short.sum(1) == 2).all()


def test_wav2vec2_spec_augment_masks_projected_frames_only_in_training(tiny_wav2vec2):
    """In training the transformer's input has whole spans (mask_time_length 2, at least 2 spans) replaced by the
    checkpoint's masked_spec_embed and every other frame as in evaluation; in evaluation, or with
    spec_augment=False, no frame is replaced."""
    def encoder_inputs(spec_augment, train):
        torch.manual_seed(3)
        enc = build_audio_encoder(AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tiny_wav2vec2),
                                                     spec_augment=spec_augment)).train(train)
        seen = []
        enc.model.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
        enc(audio, 40)
        return seen[0][0], enc.model.masked_spec_embed.detach()

    audio = 0.1 * torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    clean, embed = encoder_inputs(True, False)
    masked, _ = encoder_inputs(True, True)
    replaced = (masked == embed).all(dim=1)
    # 40 frames: max(2, int(0.05 * 40 / 2 + u)) = 2 spans of 2 frames, overlapping or not
    assert 2 <= replaced.sum() <= 4 and not (clean == embed).all(dim=1).any()
    torch.testing.assert_close(masked[~replaced], clean[~replaced], rtol=0, atol=1e-6)
    unmasked, _ = encoder_inputs(False, True)
    torch.testing.assert_close(unmasked, clean, rtol=0, atol=1e-6)


def test_wav2vec2_pairs_from_a_single_feature(tiny_wav2vec2):
    """400 samples give one 50 Hz feature and no complete pair: with two features per frame every frame is that
    feature twice (no shape error)."""
    enc = build_audio_encoder(AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tiny_wav2vec2),
                                                 features_per_frame=2)).eval()
    assert enc.n_features(400) == 1
    with torch.no_grad():
        out = enc(0.1 * torch.randn(1, 400), 3)
    assert out.shape == (1, 3, 64)
    torch.testing.assert_close(out[0, :, :32], out[0, :, 32:], rtol=0, atol=0)
    torch.testing.assert_close(out[0], out[0, :1].expand(3, -1), rtol=0, atol=0)


def test_wav2vec2_folder_without_weights_is_one_input_error(tiny_wav2vec2, tmp_path):
    """A folder with config.json but no weights (transformers raises OSError) is refused in one line."""
    (tmp_path / "config.json").write_text((tiny_wav2vec2 / "config.json").read_text())
    with pytest.raises(InputError, match="cannot load a wav2vec2 model"):
        build_audio_encoder(AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tmp_path)))


def test_wav2vec2_interpolates_the_cnn_features_with_aligned_end_points(tiny_wav2vec2):
    """features_per_frame=1: the transformer runs on the CNN's L features at 50 Hz linearly interpolated to exactly
    n_frames with aligned end points: for n_frames = 2L - 1, row 2k is feature k and row 2k + 1 the mean of
    features k and k + 1."""
    enc = build_audio_encoder(AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tiny_wav2vec2))).eval()
    cnn, projected = [], []
    enc.model.feature_extractor.register_forward_hook(lambda module, args, out: cnn.append(out.transpose(1, 2)))
    enc.model.feature_projection.register_forward_pre_hook(lambda module, args: projected.append(args[0]))
    audio = 0.1 * torch.randn(1, 8000)
    n = enc.n_features(8000)
    with torch.no_grad():
        enc(audio, 2 * n - 1)
    feats, rows = cnn[0][0], projected[0][0]
    assert rows.shape == (2 * n - 1, feats.shape[1])
    torch.testing.assert_close(rows[0::2], feats, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rows[1::2], (feats[:-1] + feats[1:]) / 2, atol=1e-5, rtol=1e-5)
