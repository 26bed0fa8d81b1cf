"""Batches of clips (:class:`p3d.models.talker.ClipBatch`): a batch of B clips of different lengths gives the mean
of the B single-clip losses and the same gradients (each clip's loss computed exactly as alone), with and
without the perceptual loss; the cached audio front-end gives the same value; collate and ``--batch-size``."""
import dataclasses

import pytest
import torch

from p3d.errors import InputError
from p3d.losses.perceptual_loss import PerceptualLoss
from p3d.models.codetalker import CodeTalker, CodeTalkerConfig
from p3d.models.faceformer import FaceFormer, FaceFormerConfig
from p3d.models.selftalk import SelfTalk, SelfTalkConfig
from p3d.models.talker import ClipBatch, pad_sequences
from p3d.talker_data import TalkerClips
from p3d.train.talker import TalkerStep, build, perceptual_per_clip
from tiny_corpus import write_tiny_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_VERTICES = 30  # the tiny corpus and conftest's smoke_critic (30-vertex meshes)
LENGTHS = (18, 11, 15)  # frames at 30 fps: three clips of different lengths


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_tiny_corpus(tmp_path_factory.mktemp("voca"), kind="vocaset", fps=30,
                             identities={"train": 2, "test": 1},
                             clips_per_identity=2, seconds=0.7, n_vertices=N_VERTICES, lip_video=False)


@pytest.fixture(scope="module")
def data(corpus, smoke_critic):
    return TalkerClips(corpus, "train", perceptual=PerceptualLoss(smoke_critic))


def _clips(data, front_end=None):
    """Three training clips cut to :data:`LENGTHS` frames (audio cut to match), speech embeddings kept."""
    out = []
    for i, t in enumerate(LENGTHS):
        clip = data[i]
        samples = int(t / data.fps * 16000)
        audio = clip.audio[:samples]
        out.append(dataclasses.replace(clip, audio=audio, vertices=clip.vertices[:t],
                                       phonemes=None if clip.phonemes is None else clip.phonemes[:t],
                                       speech=clip.speech[: t - 4],
                                       audio_features=None if front_end is None else front_end(audio)))
    return out


def _model(kind, data):
    torch.manual_seed(0)
    common = dict(n_vertices=N_VERTICES, n_styles=len(data.styles), fps=30)
    if kind == "faceformer":
        return FaceFormer(FaceFormerConfig.from_preset("smoke", **common))
    if kind == "faceformer-tf":
        return FaceFormer(FaceFormerConfig.from_preset("smoke", teacher_forcing=True, **common))
    if kind == "selftalk":
        return SelfTalk(SelfTalkConfig.from_preset("smoke", label_to_token=(0, 1, 2), vocab_size=3, **common))
    if kind == "selftalk-cpu":  # the mel encoder's transformer (key padding mask)
        return SelfTalk(SelfTalkConfig.from_preset("cpu", label_to_token=(0, 1, 2), vocab_size=3, **common))
    rollout = kind == "codetalker-rollout"  # the speech stage trained through the autoregressive rollout
    model = CodeTalker(CodeTalkerConfig.from_preset("smoke", teacher_forcing=not rollout, **common))
    model.vqvae.quantizer.codebook.weight.data.normal_(0, 0.01)  # spread codes: nearest-code ties are fragile
    if kind in ("codetalker-speech", "codetalker-rollout"):
        model.set_stage("speech")
        torch.nn.init.normal_(model.feat_map.weight, std=0.05)  # not the zero init: gradients everywhere
    return model


def _loss_and_grads(model, step, batch):
    model.zero_grad(set_to_none=True)
    loss, logs = step(model, batch, torch.Generator())
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, logs


KINDS = ["faceformer", "faceformer-tf", "selftalk", "selftalk-cpu", "codetalker", "codetalker-speech",
         "codetalker-rollout"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_critic", [False, True])
def test_batch_equals_mean_of_single_clips(kind, with_critic, data, smoke_critic):
    model = _model(kind, data).eval()  # no dropout: the two passes must be comparable
    front_end = model.audio_front_end()
    clips = _clips(data, front_end)
    step = TalkerStep(PerceptualLoss(smoke_critic, weight=0.5) if with_critic else None)
    singles = [_loss_and_grads(model, step, c) for c in clips]
    mean_loss = torch.stack([s[0] for s in singles]).mean()
    mean_grads = {n: torch.stack([s[1][n] for s in singles]).mean(0) for n in singles[0][1]}
    loss, grads, logs = _loss_and_grads(model, step, ClipBatch(clips))
    torch.testing.assert_close(loss, mean_loss, rtol=2e-5, atol=1e-7)
    assert set(grads) == set(mean_grads) and grads
    largest = max(float(g.abs().max()) for g in mean_grads.values())
    for name, g in grads.items():  # float32 rounding relative to the tensor's and to the largest gradient
        # (a bias before an InstanceNorm has a gradient of zero up to rounding)
        tol = 2e-4 * float(mean_grads[name].abs().max()) + 1e-4 * largest
        torch.testing.assert_close(g, mean_grads[name], rtol=0, atol=tol, msg=name)
    if with_critic:
        assert logs["percp"] == pytest.approx(sum(s[2]["percp"] for s in singles) / 3, rel=2e-5)


def test_batch_output_per_clip(data):
    model = _model("faceformer", data).eval()
    clips = _clips(data)
    out = model(ClipBatch(clips))
    assert [v.shape[0] for v in out.vertices] == list(LENGTHS) and out.clip_losses.shape == (3,)
    for clip, verts, loss in zip(clips, out.vertices, out.clip_losses):
        alone = model(clip)
        torch.testing.assert_close(verts, alone.vertices, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(loss, alone.loss, rtol=2e-5, atol=1e-9)


def test_cached_front_end_gives_the_same_loss(data):
    model = _model("faceformer", data).eval()
    plain = _clips(data)[0]
    cached = _clips(data, model.audio_front_end())[0]
    assert cached.audio_features is not None and cached.audio_features.shape[0] == 80  # mel bins
    torch.testing.assert_close(model(cached).loss, model(plain).loss, rtol=1e-6, atol=0)


@pytest.mark.parametrize("options", [{}, {"temperature": 0.5}, {"batch_size": 4}],
                         ids=["defaults", "temperature 0.5", "groups of 4 windows"])
def test_perceptual_per_clip_matches_unweighted(data, smoke_critic, options):
    """All clips' windows in one critic call: each clip's loss as the clip-by-clip one, at the loss's own
    temperature (the default, and another), and with several contrastive groups per clip (groups of 4 windows: 14, 7
    and 11 windows, so a clip's loss is the mean of its groups' InfoNCE)."""
    loss = PerceptualLoss(smoke_critic, **options)
    clips = _clips(data)
    torch.manual_seed(1)
    verts = [c.vertices + 1e-3 * torch.randn_like(c.vertices) for c in clips]
    per_clip = perceptual_per_clip(loss, verts, [c.speech for c in clips])
    expected = torch.stack([loss.unweighted(v, c.speech) for v, c in zip(verts, clips)])
    torch.testing.assert_close(per_clip, expected, rtol=1e-5, atol=1e-6)


def test_collate_and_padding(data):
    assert not isinstance(data.collate([0]), ClipBatch)
    batch = data.collate([2, 0])
    assert isinstance(batch, ClipBatch) and [c.stem for c in batch.clips] == [data[2].stem, data[0].stem]
    padded, lengths = pad_sequences([torch.ones(2, 3), torch.ones(4, 3)])
    assert padded.shape == (2, 4, 3) and lengths.tolist() == [2, 4] and float(padded[0, 2:].abs().sum()) == 0


def test_build_batch_size(corpus):
    job = build("faceformer", "smoke", corpus, batch_size=3, steps=2)
    assert job.cfg.batch_size == 3 and job.extra_config["epochs"] == pytest.approx(2 * 3 / len(job.data))
    assert job.data[0].audio_features is not None  # the mel front-end, once per clip
    assert build("faceformer", "smoke", corpus, steps=2).cfg.batch_size == 1  # the recipe: one clip per step
    with pytest.raises(InputError, match="--batch-size"):
        build("faceformer", "smoke", corpus, batch_size=3, world_size=2)


def test_bf16_critic_pass_stays_close(data, smoke_critic):
    """--bf16: the critic's pass under bfloat16 autocast; the perceptual loss within 1% of float32's."""
    model = _model("faceformer", data).eval()
    batch = ClipBatch(_clips(data))
    fp32 = TalkerStep(PerceptualLoss(smoke_critic))(model, batch, torch.Generator())
    bf16 = TalkerStep(PerceptualLoss(smoke_critic), bf16=True)(model, batch, torch.Generator())
    assert bf16[0].dtype == torch.float32
    assert bf16[1]["percp"] == pytest.approx(fp32[1]["percp"], rel=1e-2)
    assert bf16[1]["model_loss"] == fp32[1]["model_loss"]  # the talker stays in float32


@pytest.mark.parametrize("preset", ["smoke", "cpu"])
def test_mel_encoder_batched_equals_clip_by_clip(preset):
    """MelEncoder.from_front_ends: each clip's rows as the encoder on that clip alone (convs re-masked, padded keys
    masked in the transformer), zeros after them."""
    from p3d.models.audio_encoder import AudioEncoderConfig, MelEncoder

    torch.manual_seed(0)
    encoder = MelEncoder(AudioEncoderConfig.from_preset(preset))
    audios = [0.1 * torch.randn(n) for n in (8000, 5000, 6400)]
    frames = [15, 9, 12]
    batched = encoder.from_front_ends([encoder.front_end(a) for a in audios], frames)
    assert batched.shape == (3, 15, encoder.dim)
    for b, (a, t) in enumerate(zip(audios, frames)):
        torch.testing.assert_close(batched[b, :t], encoder(a[None], t)[0], rtol=1e-5, atol=1e-5)
        assert not batched[b, t:].detach().any()


# -- batched inference (Talker.predict_batch) -------------------------------------------------------------------

#: (clip, style) items of mixed lengths and styles; clip 0 twice and clip 1 twice (one audio tensor each, shared)
PREDICT_ITEMS = [(0, 1), (1, 0), (0, 0), (2, 1), (1, 1)]


def _predict_model(kind, data):
    """A model whose prediction depends on its inputs (the zero-initialised output heads made random)."""
    model = _model(kind, data)
    if kind.startswith("faceformer"):
        torch.nn.init.normal_(model.vertice_map_r.weight, std=0.1)
        torch.nn.init.normal_(model.vertice_map_r.bias, std=0.1)  # fed back through the batched rollout's fused map
    elif kind.startswith("selftalk"):
        torch.nn.init.normal_(model.animator.head.weight, std=0.01)
    return model.train()  # predict_batch switches to eval mode and back


def _predict_inputs(data):
    clips = _clips(data)
    torch.manual_seed(2)
    templates = [clips[c].template + 1e-3 * torch.randn_like(clips[c].template) for c, _ in PREDICT_ITEMS]
    return ([clips[c].audio for c, _ in PREDICT_ITEMS], templates, [s for _, s in PREDICT_ITEMS],
            [LENGTHS[c] for c, _ in PREDICT_ITEMS])


# relative to the largest predicted displacement: float32 rounding that depends on the batch shape (FaceFormer's
# batched rollout also feeds back through the composed map); CodeTalker's frozen VQ decoder normalises every
# channel by its std over time (InstanceNorm), which amplifies its conv's batch-shape-dependent rounding ~10x
PREDICT_TOLERANCE = {"faceformer": 1e-5, "selftalk": 1e-5, "selftalk-cpu": 1e-5, "codetalker-speech": 5e-5}


@pytest.mark.parametrize("kind", list(PREDICT_TOLERANCE))
def test_predict_batch_equals_predict_one_by_one(kind, data):
    model = _predict_model(kind, data)
    audios, templates, styles, frames = _predict_inputs(data)
    singles = [model.predict(a, tpl, s, t) for a, tpl, s, t in zip(audios, templates, styles, frames)]
    batched = model.predict_batch(audios, templates, styles, frames)
    assert model.training
    scale = max(float((p - tpl).abs().max()) for p, tpl in zip(singles, templates))
    assert scale > 1e-4  # the outputs depend on the inputs: the comparison can fail
    # one clip, two styles: the motions differ (the templates differ by their noise alone)
    assert not torch.allclose(singles[0] - templates[0], singles[2] - templates[2], rtol=0, atol=1e-2 * scale)
    for k, (one, many) in enumerate(zip(singles, batched)):
        assert many.shape == one.shape == (frames[k], N_VERTICES, 3)
        # + rtol: a few float32 ulps of the absolute vertices (template added)
        torch.testing.assert_close(many, one, rtol=1e-6, atol=PREDICT_TOLERANCE[kind] * scale)


def test_predict_batch_codetalker_codes_match_exactly(data):
    """The VQ codes of every frame are those of the one-by-one rollout (a near tie could flip one; the codebook is
    spread, as in the trained model)."""
    from p3d.models.base import eval_mode

    model = _predict_model("codetalker-speech", data)
    audios, _, styles, frames = _predict_inputs(data)
    nearest = model.vqvae.quantizer.nearest
    with torch.no_grad(), eval_mode(model):
        batched = nearest(model._rollout_batch(audios, styles, frames))
        for k, (a, s, t) in enumerate(zip(audios, styles, frames)):
            alone = nearest(model._rollout(model._audio_features(a, t), model._style_vector(s, a.device), t))
            assert torch.equal(batched[k, :t], alone[0]), f"item {k}"
    assert len(torch.unique(batched)) > 1


def test_predict_batch_default_and_checks(data):
    """The base class' default predicts item by item; bad batches are one-line input errors."""
    from p3d.models.talker import Talker, shared_audio

    model = _predict_model("faceformer", data)
    audios, templates, styles, frames = _predict_inputs(data)
    looped = Talker.predict_batch(model, audios, templates, styles, frames)
    for k, pred in enumerate(looped):
        assert torch.equal(pred, model.predict(audios[k], templates[k], styles[k], frames[k]))
    unique, inverse = shared_audio(audios, frames)
    assert unique == [0, 1, 3] and inverse.tolist() == [0, 1, 0, 2, 1]
    with pytest.raises(InputError, match="one length"):
        model.predict_batch(audios, templates[:2], styles, frames)
    with pytest.raises(InputError, match="style"):
        model.predict_batch(audios, templates, [0, 1, 2, 0, 9], frames)
    with pytest.raises(InputError, match="n_frames"):
        model.predict_batch(audios[:1], templates[:1], styles[:1], [0])


def test_a_diverged_talker_gives_a_nan_loss_not_a_bad_input_error(data, smoke_critic):
    """NaN predictions (a diverged model) made the perceptual loss raise InputError ('pred_vertices: holds NaN'), which
    the CLI reports as bad input (exit 2); now the step's loss is NaN and the trainer stops naming the step, as
    without a critic."""
    model = _model("faceformer", data).eval()
    with torch.no_grad():
        model.vertice_map_r.bias.fill_(float("nan"))
    step = TalkerStep(PerceptualLoss(smoke_critic))
    for batch in (data[0], ClipBatch(_clips(data))):
        loss, logs = step(model, batch, torch.Generator())
        assert torch.isnan(loss) and logs["percp"] != logs["percp"]


def test_perceptual_per_clip_takes_the_speech_that_unweighted_takes(smoke_critic):
    """perceptual_per_clip is documented as each clip's ``unweighted``; it raised a dtype RuntimeError on float64
    embeddings (unweighted casts them to the critic's dtype) and returned NaN on NaN speech (unweighted refuses it)."""
    loss_fn = PerceptualLoss(smoke_critic, weight=1.0)
    g = torch.Generator().manual_seed(0)
    verts = [torch.randn(t, N_VERTICES, 3, generator=g) for t in (20, 14)]
    speech = [loss_fn.speech_embeddings(torch.randn(t - 4, 20, 128, generator=g)).double() for t in (20, 14)]
    alone = torch.stack([loss_fn.unweighted(v, s) for v, s in zip(verts, speech)])
    torch.testing.assert_close(perceptual_per_clip(loss_fn, verts, speech), alone)
    speech[1][3, 0] = float("nan")
    with pytest.raises(InputError, match="speech: holds NaN"):
        perceptual_per_clip(loss_fn, verts, speech)


def test_one_audio_at_two_frame_counts_is_encoded_at_each(data):
    """Items share an audio encoding only when they share the audio tensor AND the frame count (the features are
    interpolated to the frame count): one clip's audio predicted at 18 and at 11 frames gives each as alone."""
    from p3d.models.talker import shared_audio

    model = _predict_model("faceformer", data)
    clip = _clips(data)[0]
    audios, templates, styles, frames = [clip.audio] * 3, [clip.template] * 3, [0, 1, 0], [18, 11, 18]
    assert shared_audio(audios, frames)[0] == [0, 1]
    assert shared_audio(audios, frames)[1].tolist() == [0, 1, 0]
    batched = model.predict_batch(audios, templates, styles, frames)
    for k, pred in enumerate(batched):
        alone = model.predict(audios[k], templates[k], styles[k], frames[k])
        torch.testing.assert_close(pred, alone, rtol=1e-6, atol=1e-5 * float((alone - templates[k]).abs().max()))
