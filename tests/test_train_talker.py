"""``p3d train talker``: CLI end to end (no critic, a tiny critic), exact resume, cache vs no cache, stages, errors."""
import csv
import json

import pytest
import torch

from p3d.cli import main
from p3d.errors import InputError
from p3d.models import load_model
from p3d.models.talker import MODELS
from p3d.train.talker import MODEL_NAMES, TalkerStep, build, train_talker


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_model_names_match_registry():
    assert set(MODEL_NAMES) == set(MODELS)


def test_cli_without_critic(voca_short, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "talker", "--model", "faceformer", "--train", str(voca_short), "--preset", "smoke",
                 "--steps", "4", "--out", str(out), "--no-progress"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["kind"] == "talker" and cfg["styles"] == ["train00", "train01"] and cfg["critic"] == "none"
    assert cfg["train"]["batch_size"] == 1 and cfg["train"]["steps"] == 4  # the trainer's settings
    assert cfg["train_data"] == [str(voca_short.resolve())]
    rows = _rows(out / "metrics.csv")
    assert rows[-1]["step"] == "4" and "percp" not in rows[0] and "mse" in rows[0]
    model = load_model(out / "final.pt")
    assert model.kind == "faceformer" and model.n_styles == 2 and model.n_vertices == 30


def test_cli_with_critic_and_resume(voca_short, smoke_critic_ckpt, tmp_path):
    args = ["train", "talker", "--model", "faceformer", "--train", str(voca_short), "--preset", "smoke", "--steps", "4",
            "--checkpoint-every", "2", "--critic", "ours", "--critic-checkpoint", str(smoke_critic_ckpt),
            "--loss-weight", "0.01", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "full")]) == 0
    rows = _rows(tmp_path / "full" / "metrics.csv")
    assert {"percp", "percp_weighted", "model_loss"} <= set(rows[0])
    for r in rows:
        total = float(r["model_loss"]) + 0.01 * float(r["percp"])
        assert float(r["loss"]) == pytest.approx(total, rel=1e-5)
    # interrupted run: resume from the step-2 checkpoint gives the same later steps
    job = build("faceformer", "smoke", voca_short, critic="ours", critic_checkpoint=smoke_critic_ckpt, loss_weight=0.01,
                steps=4, checkpoint_every=2)
    job.cfg.log_every = 2
    train_talker(job, tmp_path / "part", progress=False, stop_after=3)
    assert not (tmp_path / "part" / "final.pt").exists()
    assert main([*args, "--out", str(tmp_path / "part")]) == 0
    assert _rows(tmp_path / "part" / "metrics.csv") == rows
    assert (tmp_path / "part" / "final.pt").exists()


def test_train_talker_leaves_a_final_pt_another_process_wrote(voca_short, tmp_path):
    """A second process resuming a run the first finished meanwhile trains nothing and leaves final.pt as it is."""
    run = tmp_path / "run"
    train_talker(build("faceformer", "smoke", voca_short, steps=2), run, progress=False)
    before = (run / "final.pt").stat()
    result = train_talker(build("faceformer", "smoke", voca_short, steps=2), run, progress=False)
    after = (run / "final.pt").stat()
    assert result["steps_here"] == 0 and (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_cache_and_no_cache_give_the_same_loss(voca_short, smoke_critic_ckpt):
    losses = []
    for cache in (True, False):
        job = build("faceformer", "smoke", voca_short, critic="ours", critic_checkpoint=smoke_critic_ckpt,
                    loss_weight=0.5, cache=cache, seed=3)
        batch = job.data.collate([1])
        assert batch.speech.ndim == (2 if cache else 3)
        torch.manual_seed(0)
        loss, logs = job.step_fn(job.model, batch, torch.Generator())
        losses.append((float(loss.detach()), logs["percp"]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_perceptual_gradient_reaches_the_model(voca_short, smoke_critic_ckpt):
    job = build("faceformer", "smoke", voca_short, critic="ours", critic_checkpoint=smoke_critic_ckpt, loss_weight=1.0,
                teacher_forcing=True)
    torch.nn.init.normal_(job.model.vertice_map_r.weight, std=0.01)
    batch = job.data.collate([0])
    out = job.model(batch)
    percp = job.step_fn.perceptual.unweighted(out.vertices, batch.speech)
    percp.backward()
    assert job.model.vertice_map_r.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in job.step_fn.perceptual.model.parameters())


def test_training_reduces_the_loss(voca_short):
    job = build("faceformer", "smoke", voca_short, steps=40, lr=3e-3)  # autoregressive, as the official trainer
    step = TalkerStep(None)
    batch = job.data.collate([0])
    opt = torch.optim.Adam(job.params, lr=3e-3)
    first = None
    for _ in range(40):
        loss, _ = step(job.model, batch, torch.Generator())
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss.detach())
    assert float(loss.detach()) < 0.85 * first  # smoothly decreasing: 1.9e-6 -> 1.4e-6 m^2 in 40 steps


def test_two_stage_model_trains_each_stage(voca_short, tmp_path):
    out = tmp_path / "ct"
    assert main(["train", "talker", "--model", "codetalker", "--train", str(voca_short), "--preset", "smoke",
                 "--stage-steps", "3,2", "--out", str(out), "--no-progress"]) == 0
    assert _rows(out / "vqvae" / "metrics.csv")[-1]["step"] == "3"
    assert _rows(out / "metrics.csv")[-1]["step"] == "2"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["stage_steps"] == {"vqvae": 3, "speech": 2}
    model = load_model(out / "final.pt")
    assert model.stage == "speech"


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_is_warned(voca_short, smoke_critic_ckpt, monkeypatch, caplog, native):
    monkeypatch.setattr("p3d.device.native_bf16", lambda device="cpu": native)
    with caplog.at_level("WARNING", logger="p3d.device"):
        job = build("faceformer", "smoke", voca_short, critic="ours", critic_checkpoint=smoke_critic_ckpt, steps=1,
                    bf16=True)
    assert job.extra_config["bf16"] is True and job.step_fn.bf16
    warnings = [r.getMessage() for r in caplog.records if r.name == "p3d.device"]
    assert len(warnings) == (0 if native else 1)


def test_bad_input(voca_short, smoke_critic_ckpt, tmp_path, capsys):
    with pytest.raises(InputError, match="critic-checkpoint"):
        build("faceformer", "smoke", voca_short, critic="ours")
    with pytest.raises(InputError, match="not 'no2d'"):
        build("faceformer", "smoke", voca_short, critic="no2d", critic_checkpoint=smoke_critic_ckpt)
    with pytest.raises(InputError, match="critic none"):
        build("faceformer", "smoke", voca_short, critic_checkpoint=smoke_critic_ckpt)
    with pytest.raises(InputError, match="stage-steps"):
        build("faceformer", "smoke", voca_short, stage_steps=[1, 2])
    with pytest.raises(InputError, match="wav2vec2"):
        build("faceformer", "smoke", voca_short, wav2vec2=tmp_path)
    with pytest.raises(SystemExit):
        main(["train", "talker", "--model", "nope", "--train", str(voca_short), "--out", str(tmp_path / "x")])
    assert main(["train", "talker", "--model", "faceformer", "--out", str(tmp_path / "x")]) != 0
    assert "--train" in capsys.readouterr().err
    assert main(["train", "talker", "--model", "faceformer", "--train", str(voca_short), "--batch-size", "0",
                 "--out", str(tmp_path / "x")]) != 0
    assert "--batch-size" in capsys.readouterr().err


def test_bf16_without_a_critic_is_refused(voca_short, tmp_path, capsys):
    """--bf16 casts only the perceptual loss' critic pass: with --critic none it was accepted, recorded in
    config.json ("bf16": true) and changed nothing; now one line, exit 2, before the run folder is claimed."""
    out = tmp_path / "x"
    assert main(["train", "talker", "--model", "faceformer", "--train", str(voca_short), "--preset", "smoke",
                 "--steps", "1", "--bf16", "--out", str(out), "--no-progress"]) == 2
    assert "--bf16" in capsys.readouterr().err and not out.exists()
    with pytest.raises(InputError, match="--bf16"):
        build("faceformer", "smoke", voca_short, bf16=True)


def test_train_and_data_together_are_refused(voca_short, tmp_path, capsys):
    """--train and --data are one option (the corpus folders): given both, the last one silently won (here a
    folder that does not exist, or the other corpus). Now argparse's one line, exit 2, nothing written."""
    out = tmp_path / "x"
    for first, second in (("--train", "--data"), ("--data", "--train")):
        with pytest.raises(SystemExit) as exc:
            main(["train", "talker", "--model", "faceformer", first, str(voca_short), second, str(tmp_path / "nope"),
                  "--preset", "smoke", "--steps", "1", "--out", str(out), "--no-progress"])
        assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err and not out.exists()
    assert main(["train", "talker", "--model", "faceformer", "--data", str(voca_short), "--preset", "smoke",
                 "--steps", "1", "--out", str(out), "--no-progress"]) == 0  # --data alone: as --train


def test_seed_outside_64_bits_is_one_line_exit_2(voca_short, tmp_path, capsys):
    """--seed 2**64 raised torch's ValueError (a traceback) after the data were loaded: one line, exit 2, no run folder."""
    out = tmp_path / "x"
    assert main(["train", "talker", "--model", "faceformer", "--train", str(voca_short), "--preset", "smoke",
                 "--steps", "1", "--seed", str(2 ** 64), "--out", str(out), "--no-progress"]) == 2
    assert "--seed" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("model", ["codetalker", "selftalk"])
def test_other_talkers_train_with_the_critic(model, voca_short, smoke_critic_ckpt, tmp_path):
    out = tmp_path / model
    steps = ["--stage-steps", "2,2"] if model == "codetalker" else ["--steps", "2"]
    assert main(["train", "talker", "--model", model, "--train", str(voca_short), "--preset", "smoke", *steps,
                 "--critic", "ours", "--critic-checkpoint", str(smoke_critic_ckpt), "--out", str(out),
                 "--no-progress"]) == 0
    rows = _rows(out / "metrics.csv")
    assert rows[-1]["step"] == "2" and float(rows[-1]["percp"]) > 0
    if model == "codetalker":  # no perceptual loss in the VQ-VAE stage
        assert "percp" not in _rows(out / "vqvae" / "metrics.csv")[0]
    assert load_model(out / "final.pt").kind == model


def test_paper_preset_with_a_local_wav2vec2(voca_short, tmp_path):
    """The paper FaceFormer (wav2vec2 audio encoder) from a tiny random wav2vec2 saved locally; one step."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    w2v = tmp_path / "w2v"
    Wav2Vec2Model(Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48,
                                 conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                                 num_conv_pos_embedding_groups=4)).save_pretrained(w2v)
    with pytest.raises(InputError, match="--wav2vec2"):
        build("faceformer", "paper", voca_short)
    out = tmp_path / "paper"
    assert main(["train", "talker", "--model", "faceformer", "--train", str(voca_short), "--preset", "paper",
                 "--steps", "1", "--wav2vec2", str(w2v), "--out", str(out), "--no-progress"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["lr"] == 1e-4 and cfg["train"]["betas"] == [0.9, 0.999] and cfg["train"]["grad_clip"] is None
    model = load_model(out / "final.pt")
    assert model.config.audio.kind == "wav2vec2" and model.config.d_model == 64
    # final.pt loads without the wav2vec2 folder (another machine): its architecture is in the checkpoint; it was
    # refused ("not a local wav2vec2 folder") though the state dict holds every weight
    audio, template = torch.randn(16000) * 0.1, torch.zeros(model.n_vertices, 3)
    with torch.no_grad():
        before = model.eval().predict(audio, template, 0, 30)
    w2v.rename(tmp_path / "elsewhere")
    moved = load_model(out / "final.pt")
    assert moved.config.audio.wav2vec2_config["hidden_size"] == 32
    with torch.no_grad():
        torch.testing.assert_close(moved.eval().predict(audio, template, 0, 30), before, rtol=0, atol=0)


@pytest.mark.parametrize("model", ["faceformer", "selftalk"])
def test_cli_batch_of_clips(voca_short, smoke_critic_ckpt, tmp_path, model):
    """--batch-size 2: two clips per step (one process), the perceptual loss per clip; recorded as the global batch."""
    out = tmp_path / "run"
    assert main(["train", "talker", "--model", model, "--train", str(voca_short), "--preset", "smoke",
                 "--steps", "2", "--batch-size", "2", "--critic", "ours", "--critic-checkpoint", str(smoke_critic_ckpt),
                 "--out", str(out), "--no-progress"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["batch_size"] == 2 and cfg["epochs"] == pytest.approx(2 * 2 / cfg["clips"])
    rows = _rows(out / "metrics.csv")
    assert rows[-1]["step"] == "2" and float(rows[-1]["percp"]) > 0


def test_staged_model_resumes_in_its_last_stage_with_a_batch(voca_short, tmp_path):
    """A CodeTalker run stopped inside its last stage resumes with the same settings (a batch of 2 clips is the
    batch, not the number of processes) and ends with the same rows as a run never stopped."""
    args = ["train", "talker", "--model", "codetalker", "--train", str(voca_short), "--preset", "smoke",
            "--stage-steps", "2,4", "--batch-size", "2", "--checkpoint-every", "2", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    job = build("codetalker", "smoke", voca_short, stage_steps=[2, 4], batch_size=2, checkpoint_every=2)
    train_talker(job, tmp_path / "part", progress=False, stop_after=3)
    assert (tmp_path / "part" / "config.json").exists() and not (tmp_path / "part" / "final.pt").exists()
    assert main([*args, "--out", str(tmp_path / "part")]) == 0
    assert _rows(tmp_path / "part" / "metrics.csv") == _rows(tmp_path / "whole" / "metrics.csv")


def test_codetalker_paper_motion_prior_trains_with_the_official_weight_decay():
    """The official train_vq.py builds AdamW(params, lr): torch's default weight decay 0.01 (p3d trained it with 0);
    its speech stage uses Adam (no decay), as every other recipe."""
    from p3d.train.talker import RECIPES, _train_config

    vqvae = RECIPES["paper"]["codetalker"]["vqvae"]
    assert _train_config(vqvae, 100, 1, 0).weight_decay == 0.01
    others = [r for preset in RECIPES.values() for model in preset.values() for r in model.values() if r is not vqvae]
    assert {_train_config(r, 100, 1, 0).weight_decay for r in others} == {0.0}


def test_paper_recipes_train_the_official_loops_epochs():
    """FaceFormer's and SelfTalk's official main.py run `range(epoch + 1)` epochs with epoch = 100 (p3d ran 100);
    CodeTalker's configs give its epochs (200 for the VQ-VAE, 100 for the speech stage)."""
    from p3d.train.talker import RECIPES

    paper = RECIPES["paper"]
    assert paper["faceformer"]["main"].epochs == paper["selftalk"]["main"].epochs == 101
    assert (paper["codetalker"]["vqvae"].epochs, paper["codetalker"]["speech"].epochs) == (200, 100)


def test_cli_resumes_with_options_given_at_their_defaults_and_refuses_a_change_before_the_data(voca_short, tmp_path,
                                                                                              capsys, monkeypatch):
    """A talker run started without --lr, --seed, --batch-size and resumed with --lr 0.001 --seed 0 --batch-size 1 (the
    smoke recipe's values) was refused as "lr: (default) -> 0.001; ...": the request's options were compared as
    given, not resolved. It now resumes to the rows of the run never stopped; --lr 0.002 is still refused, with one
    line and exit 2, before any data is loaded."""
    args = ["train", "talker", "--model", "faceformer", "--train", str(voca_short), "--preset", "smoke", "--steps", "4",
            "--checkpoint-every", "2", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    train_talker(build("faceformer", "smoke", voca_short, steps=4, checkpoint_every=2), tmp_path / "part",
                 progress=False, stop_after=3)
    assert not (tmp_path / "part" / "final.pt").exists()
    (tmp_path / "part" / "request.json").write_text((tmp_path / "whole" / "request.json").read_text())
    given = ["--lr", "0.001", "--seed", "0", "--batch-size", "1", "--stop", "steps"]
    assert main([*args, *given, "--out", str(tmp_path / "part")]) == 0
    assert (tmp_path / "part" / "final.pt").read_bytes() == (tmp_path / "whole" / "final.pt").read_bytes()
    assert _rows(tmp_path / "part" / "metrics.csv") == _rows(tmp_path / "whole" / "metrics.csv")

    def boom(*a, **k):
        raise AssertionError("the data must not be loaded")

    monkeypatch.setattr("p3d.talker_data.open_corpora", boom)
    capsys.readouterr()
    assert main([*args, *given, "--out", str(tmp_path / "part")]) == 0  # finished: nothing to do
    assert main([*args, "--lr", "0.002", "--out", str(tmp_path / "part")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lr: 0.001 (default) -> 0.002" in err, err


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_talker_claims_its_run_with_its_recipes_values_given(voca_short, smoke_critic_ckpt, tmp_path, model,
                                                                   preset):
    """A talker request with the seed, batch, learning rate, loss weight, teacher forcing, earlier stages' steps and
    stopping rule its defaults give, spelled out, is the request without them."""
    from p3d.models.talker import talker_class
    from p3d.train.api import claim_run_dir
    from p3d.train.request import run_request
    from p3d.train.talker import recipe, training_stages

    def request(**options):
        return run_request("talker", preset, [voca_short], {"model": model, "critic": "ours",
                                                           "critic_checkpoint": smoke_critic_ckpt, "steps": 2,
                                                           **options}, build)

    stages = training_stages(talker_class(model))
    recipes = [recipe(model, preset, s) for s in stages]
    given = {"seed": 0, "batch_size": recipes[-1].batch_size, "lr": recipes[-1].lr, "loss_weight": 1e-7,
             "stop": "steps", "eval_every": 0}
    config = talker_class(model).config_class.from_preset(preset)
    if hasattr(config, "teacher_forcing"):
        given["teacher_forcing"] = config.teacher_forcing
    if len(stages) > 1 and recipes[0].steps is not None:
        given["stage_steps"] = [recipes[0].steps, 2]
    out = tmp_path / "run"
    assert claim_run_dir(out, request()) is False
    assert claim_run_dir(out, request(**given)) is False
    with pytest.raises(InputError, match=r"loss_weight: 1e-07 \(default\) -> 0\.5"):
        claim_run_dir(out, request(loss_weight=0.5))


def test_speech_embedding_cache_recomputes_a_corrupt_entry(tmp_path, caplog):
    """A truncated or garbage cache file crashed training with numpy's ValueError, and one of other rows was
    returned as the clip's embeddings; now each is recomputed and rewritten, with a warning."""
    import numpy as np
    import torch

    from p3d.train.talker import SpeechEmbeddingCache

    calls = []

    class Critic:
        def speech_embeddings(self, windows):
            calls.append(len(windows))
            return torch.from_numpy(np.asarray(windows)[:, 0, :8].copy())

    ckpt = tmp_path / "critic.pt"
    ckpt.write_bytes(b"weights")
    cache = SpeechEmbeddingCache(Critic(), ckpt, tmp_path / "cache")
    windows = np.random.default_rng(0).standard_normal((5, 20, 128)).astype(np.float32)
    want = cache.speech_embeddings(windows)
    (entry,) = (tmp_path / "cache").rglob("*.npy")
    assert torch.equal(cache.speech_embeddings(windows), want) and len(calls) == 1  # a hit
    for bad in (entry.read_bytes()[:100], b"garbage, not a .npy file", None):
        if bad is None:
            np.save(entry, np.zeros((2, 8), np.float32))  # another clip's rows
        else:
            entry.write_bytes(bad)
        caplog.clear()
        with caplog.at_level("WARNING", logger="p3d.train.talker"):
            assert torch.equal(cache.speech_embeddings(windows), want)
        assert "speech-embedding cache entry" in caplog.text and "recomputed" in caplog.text
        np.testing.assert_array_equal(np.load(entry, allow_pickle=False), want.numpy())  # rewritten
    assert len(calls) == 4
