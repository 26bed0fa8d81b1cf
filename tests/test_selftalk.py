"""SelfTalk: shapes, CTC targets, training signal, the ASR hook, checkpoints, bad input (smoke size)."""
from __future__ import annotations

import dataclasses
import logging
import math

import pytest
import torch
from torch import nn

from p3d.errors import InputError
from p3d.models import load_model
from p3d.models.selftalk import (CTCRecogniser, SelfTalk, SelfTalkConfig, _ctc, _ctc_clips, ctc_targets,
                                 interpolate_clips, interpolate_frames, token_map, vocabulary_size)
from p3d.models.talker import ClipBatch, TalkerBatch, pad_sequences, talker_class

V, STYLES, FPS, SR = 20, 3, 30.0, 16000


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is faster than two on the shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def config(**overrides) -> SelfTalkConfig:
    overrides.setdefault("interp_input_scale", 1.0)  # the toy clips move by O(1) units, not millimetres
    return SelfTalkConfig.from_preset("smoke", n_vertices=V, n_styles=STYLES, fps=FPS, **overrides)


def clip(n_frames: int = 12, seed: int = 0, phonemes: bool = True) -> TalkerBatch:
    """A learnable toy clip: vertices move with a phoneme-dependent pattern, audio is a tone per phoneme."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 0, 1, 1, 1, 4, 4, 0, 5, 5, 2, 0] * (n_frames // 12 + 1))[:n_frames]
    template = torch.randn(V, 3, generator=g)
    shapes = 0.3 * torch.randn(8, V, 3, generator=g)
    vertices = template + shapes[labels]
    t = torch.arange(int(n_frames / FPS * SR)) / SR
    frame = (t * FPS).long().clamp(max=n_frames - 1)
    audio = 0.5 * torch.sin(2 * math.pi * (200 + 100 * labels[frame].float()) * t)
    return TalkerBatch(audio=audio.float(), template=template, style=1, vertices=vertices,
                       phonemes=labels if phonemes else None, stem="toy_clip")


def test_forward_shapes_and_gradients():
    torch.manual_seed(0)
    model = SelfTalk(config())
    batch = clip()
    out = model(batch)
    assert out.vertices.shape == (12, V, 3)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert {"loss", "rec", "vel", "feat", "ctc", "ctc_gt", "lipread"} <= set(out.logs)
    assert out.logs["lipread"] == 1.0 and math.isnan(out.logs["feat"])  # no ASR: no feature term
    c = model.config
    expected = c.w_rec * out.logs["rec"] + c.w_vel * out.logs["vel"] + c.w_ctc * out.logs["ctc"] \
        + c.w_ctc_gt * out.logs["ctc_gt"]
    assert out.logs["loss"] == pytest.approx(expected, rel=1e-5)
    # zero-initialised head: the first prediction is the template
    assert torch.allclose(out.vertices, batch.template.expand(12, V, 3))
    out.loss.backward()
    assert model.animator.head.weight.grad.abs().sum() > 0
    assert model.interpreter.lm_head.weight.grad.abs().sum() > 0
    # the predicted vertices carry the graph (for a perceptual loss added by the trainer)
    assert out.vertices.requires_grad
    read = model.read_lips(batch.vertices, batch.template)
    assert read.ndim == 1 and read.dtype == torch.long and (read != 0).all()


def test_ctc_targets_by_hand():
    assert ctc_targets(torch.tensor([0, 0, 3, 3, 0, 3, 5, 5, 0])).tolist() == [3, 3, 5]
    assert ctc_targets(torch.tensor([0, 0, 0])).tolist() == []
    assert ctc_targets(torch.tensor([2, 2, 7])).tolist() == [2, 7]
    inventory = ["_", "p", "b", "A:", "s", "_:"]
    # visemes: _ -> sil 0, p b -> PP 1, A: -> aa 10, s -> SS 7, _: -> sil 0
    assert token_map(inventory) == (0, 1, 1, 10, 7, 0)
    assert token_map(inventory, unit="phoneme") == (0, 1, 2, 3, 4, 0)
    assert vocabulary_size(inventory) == 15 and vocabulary_size(inventory, "phoneme") == 6
    model = SelfTalk(config(label_to_token=token_map(inventory)))
    frames = torch.tensor([0, 1, 2, 2, 3, 0, 5, 4, 4])
    # tokens 0 1 1 1 10 0 0 7 7: /p b/ merge into one PP; both pauses are blank
    assert model.label_targets(frames).tolist() == [1, 10, 7]
    phon = SelfTalk(config(label_to_token=token_map(inventory, "phoneme"), vocab_size=6))
    assert phon.label_targets(frames).tolist() == [1, 2, 3, 4]


def test_loss_decreases_on_one_clip():
    torch.manual_seed(0)
    model = SelfTalk(config())
    batch = clip()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first or dict(out.logs)
    last = model(batch).logs
    assert last["loss"] < 0.5 * first["loss"]
    assert last["rec"] < 0.5 * first["rec"]
    assert last["ctc_gt"] < first["ctc_gt"] and last["ctc"] < first["ctc"]


def test_missing_phonemes_trains_reconstruction_only(caplog):
    torch.manual_seed(0)
    model = SelfTalk(config())
    with caplog.at_level(logging.WARNING, logger="p3d.models.selftalk"):
        out = model(clip(phonemes=False))
    assert out.logs["lipread"] == 0.0
    assert all(math.isnan(out.logs[k]) for k in ("ctc", "ctc_gt", "feat"))
    c = model.config
    assert out.loss.item() == pytest.approx(c.w_rec * out.logs["rec"] + c.w_vel * out.logs["vel"], rel=1e-6)
    assert "lip-reading terms skipped" in caplog.text
    out.loss.backward()
    assert all(p.grad is None for p in model.interpreter.parameters())


class FakeRecogniser(nn.Module):
    """A frozen 'ASR' at 50 Hz: frames of 320 samples -> hidden (1, N, H) and logits (1, N, C)."""

    def __init__(self, hidden: int, vocab: int) -> None:
        super().__init__()
        torch.manual_seed(123)
        self.frame = nn.Linear(320, hidden)
        self.lm_head = nn.Linear(hidden, vocab)
        self.calls = 0

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        n = audio.shape[1] // 320
        h = torch.tanh(self.frame(100 * audio[:, : n * 320].reshape(1, n, 320)))
        return h, self.lm_head(h)


def test_asr_targets_with_a_fake_recogniser():
    torch.manual_seed(0)
    cfg = config(targets="asr", vocab_size=7)
    asr = FakeRecogniser(cfg.interp_dim, 7)
    model = SelfTalk(cfg, recogniser=asr)
    batch = clip(phonemes=False)  # ASR targets need no labels
    out = model(batch)
    assert asr.calls == 1
    assert out.logs["lipread"] == 1.0 and all(math.isfinite(out.logs[k]) for k in ("ctc", "feat", "ctc_gt"))
    _, logits = asr(batch.audio[None])
    assert out.logs["target_len"] == len(ctc_targets(logits[0].argmax(-1)))
    out.loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in asr.parameters())  # frozen
    assert all(k.split(".")[0] in ("animator", "interpreter") for k in model.state_dict())  # ASR not saved
    # mismatches are reported, not broadcast
    with pytest.raises(InputError, match="hidden size"):
        SelfTalk(cfg, recogniser=FakeRecogniser(cfg.interp_dim + 1, 7))(batch)
    with pytest.raises(InputError, match="logits"):
        SelfTalk(cfg, recogniser=FakeRecogniser(cfg.interp_dim, 9))(batch)
    with pytest.raises(InputError, match="recogniser"):
        SelfTalk(cfg)(batch)


def test_local_wav2vec2_ctc_recogniser(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    torch.manual_seed(0)
    cfg = config(targets="asr", vocab_size=7)
    w2v = Wav2Vec2Config(hidden_size=cfg.interp_dim, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                         vocab_size=7, pad_token_id=0)
    Wav2Vec2ForCTC(w2v).save_pretrained(tmp_path / "asr")
    asr = CTCRecogniser(tmp_path / "asr")
    model = SelfTalk(cfg, recogniser=asr)
    model.train()
    assert not asr.training and not any(p.requires_grad for p in asr.parameters())
    batch = clip(phonemes=False)
    hidden, logits = asr(batch.audio[None])
    assert hidden.shape == (1, 19, cfg.interp_dim) and logits.shape == (1, 19, 7)  # 0.4 s at 50 Hz
    out = model(batch)
    assert math.isfinite(out.logs["ctc"]) and math.isfinite(out.logs["feat"])
    with pytest.raises(InputError, match="not a local"):
        CTCRecogniser(tmp_path / "missing")


def test_recogniser_targets_follow_the_official_decode_and_tokenize_round_trip(tmp_path):
    """The official targets are processor.batch_decode(argmax) tokenized again: word delimiters become spaces and
    the text is stripped, so a delimiter at either end is dropped (collapsing the path kept it). The waveform is
    normalised with the population variance (Wav2Vec2FeatureExtractor), not the unbiased one."""
    import json

    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    torch.manual_seed(0)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5, "B": 6}
    w2v = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                         vocab_size=7, pad_token_id=0)
    folder = tmp_path / "asr"
    Wav2Vec2ForCTC(w2v).save_pretrained(folder)
    no_tokenizer = CTCRecogniser(folder)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    asr = CTCRecogniser(folder)
    greedy = torch.tensor([4, 4, 5, 0, 5, 6, 4])  # "|A A B|": "AAB" once decoded and stripped
    assert asr.targets(greedy).tolist() == [5, 5, 6]
    assert no_tokenizer.targets(greedy).tolist() == ctc_targets(greedy).tolist() == [4, 5, 5, 6, 4]
    assert asr.targets(torch.tensor([0, 5, 4, 4, 0, 6, 0])).tolist() == [5, 4, 6]  # "A B": the inner one kept
    audio = torch.randn(1, 1600)
    norm = (audio - audio.mean()) / torch.sqrt(audio.var(unbiased=False) + 1e-7)
    hidden, _ = asr(audio)
    with torch.no_grad():
        want = asr.model.wav2vec2(norm).last_hidden_state
    assert torch.equal(hidden, want)


def test_predict_long_sequence_and_determinism():
    torch.manual_seed(0)
    model = SelfTalk(config(dropout=0.1, interp_dropout=0.1))
    nn.init.normal_(model.animator.head.weight, std=0.05)  # a non-trivial output
    batch = clip(n_frames=650)
    model.train()
    a = model.predict(batch.audio, batch.template, 0, 650)
    b = model.predict(batch.audio, batch.template, 0, 650)
    assert a.shape == (650, V, 3) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not a.requires_grad  # eval mode inside, no graph
    assert model.training  # mode restored
    # one-hot style embedding: another training identity gives another output
    assert not torch.allclose(a, model.predict(batch.audio, batch.template, 2, 650))


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = config(lip_indices=(1, 3, 5, 7), label_to_token=token_map(["_", "p", "A:", "s", "m", "u:", "f", "t"]))
    model = SelfTalk(cfg)
    nn.init.normal_(model.animator.head.weight, std=0.05)
    path = tmp_path / "selftalk.pt"
    model.save(path)
    loaded = talker_class("selftalk").load(path)
    assert isinstance(loaded, SelfTalk) and loaded.config == cfg
    assert loaded.config.lip_indices == (1, 3, 5, 7)
    batch = clip()
    assert torch.equal(model.predict(batch.audio, batch.template, 1, 12),
                       loaded.predict(batch.audio, batch.template, 1, 12))
    assert SelfTalkConfig.from_dict(dataclasses.asdict(cfg)) == cfg
    rebuilt = load_model(path)
    assert isinstance(rebuilt, SelfTalk) and not rebuilt.training


def test_lip_region_only_is_read():
    torch.manual_seed(0)
    model = SelfTalk(config(lip_indices=(0, 1, 2, 3)))
    batch = clip()
    base = model(batch).logs["ctc_gt"]
    moved = dataclasses.replace(batch, vertices=batch.vertices.clone())
    moved.vertices[:, 10:] += 1.0  # outside the lip region
    assert model(moved).logs["ctc_gt"] == pytest.approx(base, rel=1e-6)
    moved.vertices[:, 2] += 1.0  # inside it
    assert model(moved).logs["ctc_gt"] != pytest.approx(base, rel=1e-6)


def test_bad_input_raises_input_error():
    model = SelfTalk(config())
    batch = clip()
    bad = [
        dataclasses.replace(batch, vertices=batch.vertices[:, :-1]),  # 19 vertices
        dataclasses.replace(batch, template=batch.template[:-1]),
        dataclasses.replace(batch, phonemes=batch.phonemes[:-1]),  # 11 labels for 12 frames
        dataclasses.replace(batch, phonemes=batch.phonemes.float()),
        dataclasses.replace(batch, phonemes=batch.phonemes + 20),  # beyond the 15-token vocabulary
        dataclasses.replace(batch, vertices=batch.vertices.clone().index_fill_(0, torch.tensor([3]), float("nan"))),
        dataclasses.replace(batch, style=STYLES),
        dataclasses.replace(batch, audio=batch.audio[None]),
        dataclasses.replace(batch, vertices=None),
    ]
    for b in bad:
        with pytest.raises(InputError):
            model(b)
    with pytest.raises(InputError, match="template"):
        model.predict(batch.audio, torch.zeros(V + 1, 3), 0, 12)
    with pytest.raises(InputError, match="read_lips"):
        model.read_lips(batch.vertices[:, :-1], batch.template)
    with pytest.raises(InputError, match="n_frames"):
        model.predict(batch.audio, batch.template, 0, 0)
    with pytest.raises(InputError, match="lip_indices"):
        config(lip_indices=(0, V))
    with pytest.raises(InputError, match="divisible"):
        config(dim=15)
    with pytest.raises(InputError, match="targets"):
        config(targets="text")
    with pytest.raises(InputError, match="label_to_token"):
        config(label_to_token=(0, 15))


def test_presets():
    for name in ("smoke", "cpu", "paper"):
        c = SelfTalkConfig.from_preset(name)
        assert c.n_vertices == 5023 and c.fps == 30.0
    paper = SelfTalkConfig.from_preset("paper")
    # official main.py weights, feature_dim 512 (VOCASET), interpreter nn.Transformer(1024) + lm_head 33
    assert (paper.w_rec, paper.w_vel, paper.w_feat, paper.w_ctc, paper.w_ctc_gt) == (1000, 1000, 1e-3, 1e-4, 0)
    assert (paper.dim, paper.interp_dim, paper.vocab_size, paper.targets) == (512, 1024, 33, "asr")
    assert not paper.style_embedding and paper.interp_input_scale == 1.0
    assert SelfTalkConfig.from_preset("cpu").targets == "labels"


def test_interpolate_clips_equals_each_clip_alone():
    torch.manual_seed(0)
    seqs = [torch.randn(t, 5) for t in (7, 3, 1, 4)]
    n_out = [12, 3, 2, 1]  # up-sampled, unchanged, a one-frame clip, a single output row
    padded, lengths = pad_sequences(seqs, value=9.0)
    out = interpolate_clips(padded, lengths, torch.tensor(n_out))
    assert out.shape == (4, 12, 5)
    for b, (x, n) in enumerate(zip(seqs, n_out)):
        torch.testing.assert_close(out[b, :n], interpolate_frames(x[None], n)[0], rtol=1e-6, atol=1e-6)
        assert not out[b, n:].any()


def test_batched_ctc_equals_each_clip_alone():
    torch.manual_seed(0)
    logits = torch.randn(3, 9, 6)
    targets = [torch.tensor([1, 3, 2]), torch.tensor([], dtype=torch.long), torch.tensor([4, 4, 5, 1])]
    n = [9, 5, 7]
    batched = _ctc_clips(logits, targets, n)
    expected = torch.stack([_ctc(logits[k:k + 1, :n[k]], targets[k]) for k in range(3)])
    torch.testing.assert_close(batched, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("targets", ["labels", "asr"])
def test_clip_batch_equals_each_clip_alone(targets):
    """Mixed clips (one without labels, one of a single frame): each clip's loss terms and logs as alone; the
    loss their mean (rec/vel masked means, one batched CTC call, the ASR feature term per clip)."""
    torch.manual_seed(0)
    cfg = config(targets=targets, vocab_size=7, w_ctc_gt=1e-4) if targets == "asr" else config(w_ctc_gt=1e-4)
    model = SelfTalk(cfg, recogniser=FakeRecogniser(cfg.interp_dim, 7) if targets == "asr" else None).eval()
    clips = [clip(12, seed=0), clip(1, seed=1), clip(9, seed=2, phonemes=targets == "asr"), clip(7, seed=3)]
    out = model(ClipBatch(clips))
    singles = [model(c) for c in clips]
    torch.testing.assert_close(out.clip_losses, torch.stack([o.loss for o in singles]), rtol=2e-5, atol=1e-7)
    torch.testing.assert_close(out.loss, torch.stack([o.loss for o in singles]).mean(), rtol=2e-5, atol=1e-7)
    for key in singles[0].logs:
        values = [o.logs[key] for o in singles if not math.isnan(o.logs[key])]
        expected = sum(values) / len(values) if values else float("nan")
        assert out.logs[key] == pytest.approx(expected, rel=2e-5, nan_ok=True), key
    for verts, o in zip(out.vertices, singles):
        torch.testing.assert_close(verts, o.vertices, rtol=1e-5, atol=1e-6)


def test_paper_preset_lip_reader_reads_the_official_lip_region():
    """The paper preset (the recogniser's CTC targets) read the whole mesh (lip_map 15069 inputs) where the official
    SelfTalk reads FLAME_masks.pkl["lips"] as it is: 254 entries, repeats kept (lip_map 762 inputs)."""
    from types import SimpleNamespace

    import numpy as np

    from p3d.topology import FLAME_LIPS, FLAME_N_VERTICES
    from p3d.train.talker import model_config

    corpus = SimpleNamespace(meta={"kind": "vocaset"}, root="vocaset",
                             topology=SimpleNamespace(regions={"lips": np.asarray(FLAME_LIPS)}))
    data = SimpleNamespace(fps=30, n_vertices=FLAME_N_VERTICES, styles=["a", "b"], corpora=[corpus])
    config = model_config("selftalk", "paper", data, wav2vec2="w2v")
    assert config.targets == "asr" and config.lip_indices == tuple(FLAME_LIPS) and len(config.lip_indices) == 254
    no_region = SimpleNamespace(meta={}, root="x", topology=SimpleNamespace(regions={}))
    whole = model_config("selftalk", "paper", SimpleNamespace(**{**vars(data), "corpora": [no_region]}),
                         wav2vec2="w2v")
    assert whole.lip_indices == ()


@pytest.mark.parametrize("targets", ["labels", "asr"])
def test_loss_is_each_term_times_its_own_weight(targets):
    """loss = w_rec rec + w_vel vel + w_feat feat + w_ctc ctc + w_ctc_gt ctc_gt (module docstring, official
    ``main.py``), each term with its own weight: distinct weights here (the presets tie w_rec = w_vel and
    w_ctc = w_ctc_gt), for one clip and for each clip of a ClipBatch; rec and vel recomputed from the output."""
    torch.manual_seed(0)
    weights = dict(w_rec=2.0, w_vel=3.0, w_feat=0.5, w_ctc=0.07, w_ctc_gt=0.011)
    cfg = config(targets=targets, vocab_size=7, **weights) if targets == "asr" else config(**weights)
    model = SelfTalk(cfg, recogniser=FakeRecogniser(cfg.interp_dim, 7) if targets == "asr" else None).eval()
    clips = [clip(12, seed=0), clip(9, seed=2)]

    def expected(out, c):
        pred, gt = out.vertices, c.vertices
        rec = torch.mean((pred - gt) ** 2)
        vel = torch.mean(((pred[1:] - pred[:-1]) - (gt[1:] - gt[:-1])) ** 2)
        assert out.logs["rec"] == pytest.approx(float(rec), rel=1e-5)
        assert out.logs["vel"] == pytest.approx(float(vel), rel=1e-5)
        feat = out.logs["feat"] if targets == "asr" else 0.0
        return (2.0 * float(rec) + 3.0 * float(vel) + 0.5 * feat + 0.07 * out.logs["ctc"]
                + 0.011 * out.logs["ctc_gt"])

    singles = [model(c) for c in clips]
    for out, c in zip(singles, clips):
        assert all(math.isfinite(out.logs[k]) for k in ("ctc", "ctc_gt"))
        assert float(out.loss) == pytest.approx(expected(out, c), rel=1e-5)
    batched = model(ClipBatch(clips))
    for b, (out, c) in enumerate(zip(singles, clips)):
        assert float(batched.clip_losses[b]) == pytest.approx(expected(out, c), rel=2e-5)


def test_label_targets_are_read_at_the_ctc_rate():
    """With label targets the interpreter reads ``round(T * ctc_rate / fps)`` frames (50 Hz, the rate of the
    official recogniser's logits): 20 for 12 frames at 30 fps, 15 for 9; one clip and a ClipBatch alike."""
    torch.manual_seed(0)
    model = SelfTalk(config()).eval()
    assert model.config.ctc_rate == 50.0
    seen = []
    single, batched = model.interpreter.forward, model.interpreter.forward_clips
    model.interpreter.forward = lambda motion, n_out: seen.append(n_out) or single(motion, n_out)
    model.interpreter.forward_clips = lambda motions, n_out: seen.append(list(n_out)) or batched(motions, n_out)
    model(clip(12, seed=0))
    model(ClipBatch([clip(12, seed=0), clip(9, seed=2)]))
    assert seen[0] == 20 and seen[1] == 20 and seen[-2:] == [[20, 15], [20, 15]]


def test_clip_batch_gives_each_clip_its_own_lip_reading_terms():
    """A ClipBatch with a clip without labels between two with labels, lip region set, every weight 1 (the presets'
    1e-4 CTC weights hide a misplaced CTC term within float32 tolerance of a loss dominated by w_rec = 1000): each
    clip's loss is its own rec + vel (+ ctc + ctc_gt where it has labels), read from the lip region only, as alone."""
    torch.manual_seed(0)
    weights = dict(w_rec=1.0, w_vel=1.0, w_ctc=1.0, w_ctc_gt=1.0)
    model = SelfTalk(config(lip_indices=(1, 4, 7, 12), **weights)).eval()
    clips = [clip(12, seed=0), clip(9, seed=2, phonemes=False), clip(7, seed=3)]
    out = model(ClipBatch(clips))
    singles = [model(c) for c in clips]
    torch.testing.assert_close(out.clip_losses, torch.stack([o.loss for o in singles]), rtol=1e-5, atol=1e-6)
    for b, (o, c) in enumerate(zip(singles, clips)):
        pred, gt = o.vertices, c.vertices
        rec = torch.mean((pred - gt) ** 2)
        vel = torch.mean(((pred[1:] - pred[:-1]) - (gt[1:] - gt[:-1])) ** 2)
        lipread = float((rec + vel).detach()) + (o.logs["ctc"] + o.logs["ctc_gt"] if c.phonemes is not None else 0.0)
        assert float(out.clip_losses[b]) == pytest.approx(lipread, rel=1e-5), b
    assert singles[0].logs["ctc"] > 0.1 and singles[2].logs["ctc"] > 0.1  # visible next to rec + vel
    assert out.logs["lipread"] == pytest.approx(2 / 3)


def test_the_interpreter_reads_vertices_minus_the_template():
    """The lip-reading interpreter reads lip motion = vertices - template (module docstring): the prediction's
    ctc, the ground truth's ctc_gt (one clip and a ClipBatch) and read_lips are unchanged when the vertices and
    the template move together, and change when only the vertices move."""
    torch.manual_seed(0)
    model = SelfTalk(config(w_ctc=1.0, w_ctc_gt=1.0)).eval()
    nn.init.normal_(model.animator.head.weight, std=0.05)  # a prediction that moves: ctc reads the animator's motion
    base = clip(12, seed=0)
    shift = 3.0 * torch.ones(3)
    moved = dataclasses.replace(base, vertices=base.vertices + shift, template=base.template + shift)
    stray = dataclasses.replace(base, vertices=base.vertices + shift)
    a, b, c = model(base).logs, model(moved).logs, model(stray).logs
    assert b["ctc"] == pytest.approx(a["ctc"], rel=1e-5) and b["ctc_gt"] == pytest.approx(a["ctc_gt"], rel=1e-5)
    assert c["ctc_gt"] != pytest.approx(a["ctc_gt"], rel=1e-3)
    other = clip(9, seed=2)
    a = model(ClipBatch([base, other])).clip_losses
    b = model(ClipBatch([moved, other])).clip_losses
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    seen = []
    forward = model.interpreter.forward
    model.interpreter.forward = lambda motion, n_out: seen.append(motion) or forward(motion, n_out)
    model.read_lips(moved.vertices, moved.template)
    torch.testing.assert_close(seen[0][0], base.vertices - base.template)
