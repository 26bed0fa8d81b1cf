"""CodeTalker: VQ quantiser (nearest code, straight-through), both stages' shapes, freezing and learning, the
incremental rollout against the official step-by-step algorithm, long clips, checkpoints, errors. (The masks it
shares with FaceFormer are checked by hand in test_faceformer.py.)"""
import dataclasses

import pytest
import torch

from p3d.errors import InputError
from p3d.models.audio_encoder import AudioEncoderConfig
from p3d.models.codetalker import (CodeTalker, CodeTalkerConfig, MotionVQVAE, VectorQuantizer, clip_perplexities,
                                   perplexity)
from p3d.models.talker import ClipBatch, TalkerBatch, pad_sequences, talker_class

V = 20
SR = 16000
FPS = 30


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test


def tiny_config(**overrides) -> CodeTalkerConfig:
    return CodeTalkerConfig.from_preset("smoke", n_vertices=V, n_styles=3, **overrides)


def make_model(seed: int = 0, **overrides) -> CodeTalker:
    torch.manual_seed(seed)
    return CodeTalker(tiny_config(**overrides))


def make_clip(n_frames: int = 10, seed: int = 1, style: int = 1) -> TalkerBatch:
    """A clip whose motion is a smooth function of time (learnable), random audio, a random template."""
    g = torch.Generator().manual_seed(seed)
    template = torch.randn(V, 3, generator=g)
    t = torch.arange(n_frames, dtype=torch.float32)[:, None, None]
    basis = torch.randn(2, V, 3, generator=g)
    motion = 0.01 * (torch.sin(0.7 * t) * basis[0] + torch.cos(0.3 * t) * basis[1])
    audio = 0.1 * torch.randn(n_frames * SR // FPS, generator=g)
    return TalkerBatch(audio=audio, template=template, style=style, vertices=template + motion, stem="clip")


def train_steps(model: CodeTalker, batch: TalkerBatch, steps: int, lr: float = 1e-3) -> list[float]:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    return losses


# ---------------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
def test_presets_round_trip_through_dict(preset):
    config = CodeTalkerConfig.from_preset(preset)
    assert config.n_codes == 256 and config.beta == 0.25
    assert CodeTalkerConfig.from_dict(dataclasses.asdict(config)) == config


def test_paper_preset_is_the_official_vocaset_config():
    c = CodeTalkerConfig.from_preset("paper")
    assert (c.n_vertices, c.n_styles, c.fps) == (5023, 8, 30)
    assert (c.vq_dim, c.vq_layers, c.vq_heads, int(c.vq_dim * c.vq_mlp_ratio)) == (1024, 6, 8, 1536)
    assert (c.n_face, c.code_dim, c.latent_dim) == (16, 64, 1024)
    assert (c.dim, c.layers, c.heads, c.ffn) == (1024, 6, 4, 2048)
    assert (c.quant_weight, c.motion_weight, c.reg_weight, c.teacher_forcing) == (1.0, 1.0, 1.0, True)
    assert c.audio.kind == "wav2vec2"


def test_registry_and_bad_config():
    assert talker_class("codetalker") is CodeTalker
    with pytest.raises(InputError):
        tiny_config(dim=30, heads=4)
    with pytest.raises(InputError):
        tiny_config(n_face=0)


# ---------------------------------------------------------------------------------------------------- parts


def test_quantizer_picks_the_nearest_code_with_straight_through_gradient():
    vq = VectorQuantizer(n_codes=4, code_dim=2, beta=0.25)
    with torch.no_grad():
        vq.codebook.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    z = torch.tensor([[0.9, 0.2], [0.1, 0.8], [-0.6, -0.4], [0.1, -0.1]], requires_grad=True)
    z_q, loss, idx = vq(z)
    assert idx.tolist() == [1, 2, 3, 0]
    assert torch.equal(z_q.detach(), vq.codebook.weight[idx].detach())
    # Loss: beta * ||z - sg[e]||^2 + ||sg[z] - e||^2 (means); both terms have the same value here.
    mse = ((z.detach() - vq.codebook.weight[idx].detach()) ** 2).mean()
    assert torch.isclose(loss, 1.25 * mse)
    # Straight-through: d(z_q)/dz is the identity; the codebook gets gradient from the loss only.
    w = torch.randn(4, 2)
    (z_q * w).sum().backward()
    assert torch.allclose(z.grad, w)
    assert vq.codebook.weight.grad is None
    loss.backward()
    assert vq.codebook.weight.grad is not None and vq.codebook.weight.grad[idx].abs().sum() > 0


def test_perplexity_counts_code_usage():
    assert perplexity(torch.zeros(10, dtype=torch.long), 256) == pytest.approx(1.0)
    assert perplexity(torch.arange(8), 256) == pytest.approx(8.0, rel=1e-5)


@pytest.mark.parametrize("vq_block", ["p3d", "official"])
def test_padded_vqvae_equals_each_clip_alone(vq_block):
    """MotionVQVAE.forward_clips on padded clips (one of them a single frame): each clip's reconstruction, codes and
    quantisation loss as the VQ-VAE on that clip alone, and the same gradients (re-padded convolution, per-clip
    InstanceNorm, padding keys masked; the padding's values do not matter)."""
    torch.manual_seed(0)
    config = tiny_config(vq_block=vq_block, vq_io_linear=vq_block == "p3d", vq_dim=16 if vq_block == "official"
                         else 32)
    vq = MotionVQVAE(config).eval()
    vq.quantizer.codebook.weight.data.normal_(0, 0.5)
    motions = [torch.randn(t, 3 * V) for t in (9, 1, 6)]
    padded, lengths = pad_sequences(motions, value=7.0)
    recon, losses, indices = vq.forward_clips(padded, lengths)
    assert losses.shape == (3,)
    valid = (torch.arange(recon.shape[1])[None] < lengths[:, None])[..., None]
    ((recon * valid).pow(2).sum() + losses.sum()).backward()
    batched = {n: p.grad.clone() for n, p in vq.named_parameters()}
    vq.zero_grad()
    for b, m in enumerate(motions):
        alone_recon, alone_loss, alone_indices = vq(m[None])
        t = m.shape[0]
        torch.testing.assert_close(recon[b, :t], alone_recon[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(losses[b], alone_loss, rtol=1e-5, atol=1e-7)
        assert torch.equal(indices[b, :t], alone_indices[0])
        (alone_recon.pow(2).sum() + alone_loss).backward()
    largest = max(float(p.grad.abs().max()) for p in vq.parameters())
    for name, p in vq.named_parameters():
        torch.testing.assert_close(batched[name], p.grad, rtol=0, atol=2e-4 * float(p.grad.abs().max()) + 1e-5 *
                                   largest, msg=name)


def test_clip_perplexities_ignore_padding():
    indices = torch.tensor([[0, 1, 2, 3], [5, 5, 9, 9]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    torch.testing.assert_close(clip_perplexities(indices, mask, 16),
                               torch.tensor([perplexity(indices[0], 16), perplexity(indices[1, :2], 16)]))


# ---------------------------------------------------------------------------------------------------- stages


def test_forward_shapes_in_both_stages():
    model = make_model()
    batch = make_clip(9)
    assert model.stage == "vqvae" and model.training_stages == ("vqvae", "speech")
    out = model(batch)
    assert out.vertices.shape == (9, V, 3) and out.vertices.requires_grad and out.loss.ndim == 0
    assert set(out.logs) == {"loss_rec", "loss_quant", "perplexity"}
    assert out.loss.item() == pytest.approx(out.logs["loss_rec"] + out.logs["loss_quant"], rel=1e-5)
    model.set_stage("speech")
    out = model(batch)
    assert out.vertices.shape == (9, V, 3) and out.vertices.requires_grad
    assert set(out.logs) == {"loss_motion", "loss_reg"}
    # the absolute vertices carry the graph to the speech side (what a perceptual loss needs)
    out.vertices.sum().backward()
    assert model.feat_map.weight.grad is not None and model.feat_map.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.vqvae.parameters())


def test_set_stage_freezes_the_right_parts():
    model = make_model()
    speech = [p for n, p in model.named_parameters() if not n.startswith("vqvae.")]
    assert all(p.requires_grad for p in model.vqvae.parameters()) and not any(p.requires_grad for p in speech)
    model.set_stage("speech")
    assert not any(p.requires_grad for p in model.vqvae.parameters()) and all(p.requires_grad for p in speech)
    model.train()
    assert model.training and not model.vqvae.training and model.decoder.training
    model.set_stage("vqvae")
    assert model.vqvae.training
    with pytest.raises(InputError):
        model.set_stage("stage2")


def test_speech_stage_keeps_what_the_audio_encoder_froze(monkeypatch):
    import p3d.models.codetalker as ct

    real = ct.build_audio_encoder

    def frozen_first_conv(config, pretrained=True):
        enc = real(config, pretrained)
        enc.convs[0].requires_grad_(False)  # as wav2vec2's frozen CNN feature extractor
        return enc

    monkeypatch.setattr(ct, "build_audio_encoder", frozen_first_conv)
    model = make_model()
    model.set_stage("speech")
    assert not any(p.requires_grad for p in model.audio_encoder.convs[0].parameters())
    assert all(p.requires_grad for p in model.audio_encoder.convs[2].parameters())


def test_codebook_and_vqvae_unchanged_by_a_speech_step():
    model = make_model()
    model.set_stage("speech")
    before = {k: v.clone() for k, v in model.vqvae.state_dict().items()}
    feat_map = model.feat_map.weight.clone()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)  # all parameters, with decay
    out = model(make_clip())
    opt.zero_grad()
    out.loss.backward()
    opt.step()
    after = model.vqvae.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(feat_map, model.feat_map.weight)


def test_both_stages_learn_one_clip():
    model = make_model()
    batch = make_clip(12)
    losses = train_steps(model, batch, 100, lr=3e-3)
    assert losses[-1] < 0.2 * losses[0]
    # Stage 2 needs a usable prior: with a barely trained VQ-VAE (40 steps at 1e-3) its loss wanders. After 60
    # steps at 3e-3 it still diverged (last/first loss 1.4, 1.8) in 2 of 64 runs whose initial weights differed by
    # one float32 ulp, as another CPU's rounding makes them differ; after 100 steps: stage 1 at most 0.05, stage 2
    # at most 0.36 in those 64 runs.
    model.set_stage("speech")
    losses = train_steps(model, batch, 40)
    assert losses[-1] < 0.5 * losses[0]


def test_training_without_teacher_forcing_runs_the_rollout():
    model = make_model(teacher_forcing=False)
    model.set_stage("speech")
    out = model(make_clip(6))
    assert out.vertices.shape == (6, V, 3)
    out.loss.backward()
    assert model.feat_map.weight.grad is not None


def test_teacher_forcing_feeds_each_frame_the_previous_ground_truth_frame():
    """Speech stage with teacher forcing (official): the decoder's input token t is the style plus the motion encoder
    of ground-truth frame t - 1 (token 0: the style alone), so frame t never sees its own target."""
    model = make_model().eval()
    model.set_stage("speech")
    seen = []
    decode = model.decode_features

    def spy(tokens, audio):
        seen.append(tokens.detach().clone())
        return decode(tokens, audio)

    model.decode_features = spy
    clip = make_clip(8)
    for frame in (None, 7, 0):
        vertices = clip.vertices.clone()
        if frame is not None:
            vertices[frame] += 1.0
        model(dataclasses.replace(clip, vertices=vertices))
    tokens, last_changed, first_changed = seen
    assert tokens.shape[:2] == (1, 8)
    torch.testing.assert_close(tokens[:, :1], model._style_vector(clip.style, tokens.device).expand(1, 1, -1))
    torch.testing.assert_close(last_changed, tokens)  # the last target frame is no decoder input
    torch.testing.assert_close(first_changed[:, 2:], tokens[:, 2:])
    assert not torch.allclose(first_changed[:, 1], tokens[:, 1])  # frame 0 is token 1's input


# ---------------------------------------------------------------------------------------------------- prediction


def official_rollout(model: CodeTalker, audio: torch.Tensor, style: int, n_frames: int) -> torch.Tensor:
    """The official ``predict`` loop, re-running the whole decoder on the prefix at every step: -> z_hat."""
    feats_audio = model._audio_features(audio, n_frames)
    style_vec = model._style_vector(style, audio.device)
    tokens = style_vec
    for i in range(n_frames):
        feats = model.decode_features(tokens, feats_audio)
        if i < n_frames - 1:
            motion = model.vqvae.decode(model.vqvae.quantizer(feats)[0])
            tokens = torch.cat([tokens, model.vertex_map(motion[:, -1:]) + style_vec], dim=1)
    return feats


def test_predict_matches_the_official_step_by_step_algorithm():
    model = make_model(fps=4)  # a short period, so that the ALiBi bias is not zero within 12 frames
    batch = make_clip(12)
    train_steps(model, batch, 5)
    model.set_stage("speech")
    train_steps(model, batch, 5, lr=1e-2)  # feat_map leaves zero, so codes differ per frame
    model.train()
    pred = model.predict(batch.audio, batch.template, 2, 12)
    assert model.training  # mode restored
    assert pred.shape == (12, V, 3) and not pred.requires_grad
    model.eval()
    with torch.no_grad():
        reference = official_rollout(model, batch.audio, 2, 12)
        feats = model._rollout(model._audio_features(batch.audio, 12), model._style_vector(2, "cpu"), 12)
        decoded = model.vqvae.decode(model.vqvae.quantizer(reference)[0]).view(12, V, 3) + batch.template
    assert reference.abs().max() > 1e-3  # not the zero-initialised output
    # The same codes, exactly: an algorithmic difference (a wrong prefix, a missed style vector) changes them.
    assert torch.equal(model.vqvae.quantizer(feats)[2], model.vqvae.quantizer(reference)[2])
    # Then equal up to float32 rounding. The two loops reach the features through differently shaped matmuls
    # (cached prefix vs whole prefix, grad vs no_grad kernels), and the straight-through z + (e - z) carries
    # that rounding into the decoder, whose InstanceNorm over 12 frames amplifies it: about 25 eps (eps =
    # 1.2e-7) of the output's scale was measured here, 35 on another x86-64 machine. So the tolerance is
    # relative to each output's scale (the template added to the motion adds nothing to the error):
    # 2e-5 (~170 eps, 5x the worst seen) of it, plus rtol 1e-5; a perturbation of 1e-3 is 100x beyond it.
    motion, motion_ref = pred - batch.template, decoded - batch.template

    def close(a, b):
        return torch.allclose(a, b, rtol=1e-5, atol=2e-5 * float(b.abs().max()))

    assert close(feats, reference) and close(motion, motion_ref)
    assert not close(feats + 1e-3, reference) and not close(motion + 1e-3, motion_ref)  # the check has teeth
    assert model.predict(batch.audio, batch.template, 0, 1).shape == (1, V, 3)


def test_long_sequences_past_600_frames():
    model = make_model()
    model.set_stage("speech")
    batch = make_clip(700)
    out = model(batch)
    assert out.vertices.shape == (700, V, 3) and torch.isfinite(out.loss)
    model = make_model(vq_dim=8, vq_heads=1, dim=8, heads=2, ffn=16, n_face=1, code_dim=4)
    pred = model.predict(batch.audio[: 610 * SR // FPS], batch.template, 0, 610)
    assert pred.shape == (610, V, 3) and torch.isfinite(pred).all()


# ---------------------------------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_keeps_weights_and_stage(tmp_path):
    model = make_model()
    batch = make_clip(8)
    train_steps(model, batch, 3)
    model.set_stage("speech")
    train_steps(model, batch, 3, lr=1e-2)
    model.save(tmp_path / "ct.pt")
    loaded = CodeTalker.load(tmp_path / "ct.pt")
    assert loaded.config == model.config and loaded.stage == "speech"
    assert not any(p.requires_grad for p in loaded.vqvae.parameters())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert torch.equal(model.predict(batch.audio, batch.template, 1, 8),
                       loaded.predict(batch.audio, batch.template, 1, 8))
    from p3d.models import load_model

    assert load_model(tmp_path / "ct.pt").stage == "speech"
    # the trainer's resume path: load_state_dict into a fresh model (stage "vqvae") restores stage "speech"
    fresh = make_model(seed=5)
    fresh.load_state_dict(model.state_dict())
    assert fresh.stage == "speech" and not fresh.vqvae.training and fresh.feat_map.weight.requires_grad


class OneClip:
    """A one-clip data source for :func:`p3d.train.trainer.train`."""

    def __init__(self, batch: TalkerBatch) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return 1

    def collate(self, indices: list[int]) -> TalkerBatch:
        return self.batch


def test_two_stage_protocol_with_the_trainer(tmp_path):
    """The module docstring's recipe: train(vqvae) -> set_stage("speech") -> train(speech); a rerun resumes."""
    from p3d.train.trainer import TrainConfig, train

    def step_fn(model, batch, generator):
        out = model(batch)
        return out.loss, out.logs

    def run(model):
        cfg = TrainConfig(steps=4, batch_size=1, lr=1e-3, checkpoint_every=2, log_every=1)
        r1 = train(model, OneClip(make_clip(8)), step_fn, cfg, tmp_path / "vqvae", progress=False)
        codebook = model.vqvae.quantizer.codebook.weight.clone()
        model.set_stage("speech")
        r2 = train(model, OneClip(make_clip(8)), step_fn, cfg, tmp_path / "speech", progress=False)
        return r1, r2, codebook

    model = make_model()
    r1, r2, codebook = run(model)
    assert (r1["step"], r2["step"]) == (4, 4) and model.stage == "speech"
    assert torch.equal(codebook, model.vqvae.quantizer.codebook.weight)
    assert "loss_rec" in (tmp_path / "vqvae" / "metrics.csv").read_text()
    assert "loss_motion" in (tmp_path / "speech" / "metrics.csv").read_text()
    again = make_model(seed=3)
    r1, r2, _ = run(again)  # both folders are finished: nothing to train, the final weights are loaded
    assert (r1["step"], r2["step"]) == (4, 4) and again.stage == "speech"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


# ---------------------------------------------------------------------------------------------------- errors


def test_bad_input_raises_input_error():
    model = make_model()
    batch = make_clip(6)
    wrong_v = dataclasses.replace(batch, vertices=torch.zeros(6, V + 1, 3))
    with pytest.raises(InputError, match="vertices"):
        model(wrong_v)
    with pytest.raises(InputError, match="template"):
        model(dataclasses.replace(batch, template=torch.zeros(V + 1, 3)))
    with pytest.raises(InputError, match="style"):
        model(dataclasses.replace(batch, style=3))
    with pytest.raises(InputError, match="frame"):
        model(dataclasses.replace(batch, vertices=batch.vertices[:1]))
    nan = batch.vertices.clone()
    nan[2, 3, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        model(dataclasses.replace(batch, vertices=nan))
    with pytest.raises(InputError, match="ground-truth"):
        model(dataclasses.replace(batch, vertices=None))
    with pytest.raises(InputError, match="template"):
        model.predict(batch.audio, torch.zeros(V - 1, 3), 0, 5)
    with pytest.raises(InputError, match="audio"):
        model.predict(batch.audio[None], batch.template, 0, 5)
    with pytest.raises(InputError, match="n_frames"):
        model.predict(batch.audio, batch.template, 0, 0)


def test_wav2vec2_audio_encoder_keeps_its_frozen_cnn_and_round_trips(tmp_path):
    """With a (tiny, randomly initialised, saved) local wav2vec2: the CNN stays frozen in the speech stage and a
    checkpoint rebuilds the model from the folder's config."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
                         conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    Wav2Vec2Model(cfg).save_pretrained(tmp_path / "w2v")
    model = make_model(audio=AudioEncoderConfig(kind="wav2vec2", wav2vec2_path=str(tmp_path / "w2v")))
    model.set_stage("speech")
    cnn = model.audio_encoder.model.feature_extractor
    assert not any(p.requires_grad for p in cnn.parameters())
    assert all(p.requires_grad for p in model.audio_encoder.model.encoder.parameters())
    batch = make_clip(6)
    out = model(batch)
    assert out.vertices.shape == (6, V, 3)
    model.save(tmp_path / "ct.pt")
    loaded = CodeTalker.load(tmp_path / "ct.pt")
    assert loaded.stage == "speech"
    assert not any(p.requires_grad for p in loaded.audio_encoder.model.feature_extractor.parameters())
    pred = model.predict(batch.audio, batch.template, 0, 6)
    assert torch.equal(pred, loaded.predict(batch.audio, batch.template, 0, 6))


def test_losses_are_each_term_times_its_own_weight():
    """Stage 1: loss = L1 + quant_weight * quant; stage 2: motion_weight * MSE(vertices) + reg_weight * MSE(codes)
    (module docstring, official ``calc_vq_loss`` and stage-2 loss), with distinct weights (the presets use 1, 1, 1;
    a small motion_weight here, so that the code term, ~1e-5 on these clips, counts), for one clip and for each
    clip of a ClipBatch (the batched speech stage: teacher forcing)."""
    model = make_model(quant_weight=0.3, motion_weight=2e-4, reg_weight=2.0, teacher_forcing=True).eval()
    clips = [make_clip(10, seed=1), make_clip(7, seed=2)]
    for stage in ("vqvae", "speech"):
        model.set_stage(stage)
        model.eval()
        singles = [model(c) for c in clips]
        batched = model(ClipBatch(clips))
        for b, (out, c) in enumerate(zip(singles, clips)):
            if stage == "vqvae":
                rec = torch.mean((out.vertices - c.vertices).abs())
                assert out.logs["loss_rec"] == pytest.approx(float(rec), rel=1e-4)
                expected = float(rec) + 0.3 * out.logs["loss_quant"]
            else:
                motion = torch.mean((out.vertices - c.vertices) ** 2)
                assert out.logs["loss_motion"] == pytest.approx(float(motion), rel=1e-4)
                expected = 2e-4 * float(motion) + 2.0 * out.logs["loss_reg"]
            assert float(out.loss) == pytest.approx(expected, rel=1e-5)
            assert float(batched.clip_losses[b]) == pytest.approx(expected, rel=1e-4)


def test_speech_stage_regresses_the_codes_of_the_frozen_prior():
    """Stage 2's code term is MSE(z_hat, e_gt), e_gt the frozen stage-1 codebook entries the VQ-VAE picks for the
    ground-truth motion (vertices - template): with the zero-initialised feat_map (z_hat = 0) it is the mean square
    of those entries, for one clip and in a ClipBatch (the mean over clips)."""
    model = make_model().eval()
    model.vqvae.quantizer.codebook.weight.data.normal_(0, 0.5)
    clips = [make_clip(10, seed=1), make_clip(7, seed=2)]
    expected = []
    for c in clips:
        with torch.no_grad():  # stage 1's codes of the clip's motion
            _, _, indices = model.vqvae((c.vertices - c.template).reshape(1, c.n_frames, -1))
        expected.append(float(model.vqvae.quantizer.codebook.weight[indices].pow(2).mean()))
    model.set_stage("speech")
    model.eval()
    assert not model.feat_map.weight.any() and min(expected) > 0.01
    for c, e in zip(clips, expected):
        assert model(c).logs["loss_reg"] == pytest.approx(e, rel=1e-5)
    assert model(ClipBatch(clips)).logs["loss_reg"] == pytest.approx(sum(expected) / 2, rel=1e-5)
