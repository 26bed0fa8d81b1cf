"""``p3d train``: stage-2 resume, frozen speech encoder, 2-process DDP, the CLI end to end, bad input, learning."""
import csv
import json
import os
import socket

import pytest
import torch

from p3d.cli import main
from p3d.models.mesh_encoder import MeshEncoderConfig
from p3d.models.speech_mesh import SpeechMeshModel, load_critic
from p3d.models.stage1 import Stage1Config, Stage1Model
from p3d.train.critics import build
from p3d.train.trainer import train
from tiny_corpus import write_tiny_corpus


@pytest.fixture(scope="module")
def lrs3(tmp_path_factory):
    return write_tiny_corpus(tmp_path_factory.mktemp("lrs3"), identities={"train": 4, "test": 2},
                             clips_per_identity=3, seconds=2.0)


@pytest.fixture(scope="module")
def stage1_ckpt(tmp_path_factory):
    """An (untrained) smoke stage-1 checkpoint: enough for stage-2 mechanics."""
    path = tmp_path_factory.mktemp("s1") / "final.pt"
    torch.manual_seed(0)
    Stage1Model(Stage1Config.from_preset("smoke")).save(path)
    return path


@pytest.fixture(scope="module")
def critic_ckpt(stage1_ckpt):
    """A smoke stage-2 critic checkpoint for 30-vertex meshes."""
    path = stage1_ckpt.parent / "critic.pt"
    torch.manual_seed(0)
    mesh = MeshEncoderConfig.from_preset("smoke", n_vertices=30)
    SpeechMeshModel.ours(Stage1Model.load(stage1_ckpt), mesh).save(path)
    return path


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test


def _rows(run):
    with open(run / "metrics.csv") as fh:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(fh)]


def _stage2(lrs3, stage1_ckpt, **kw):
    kw = {"steps": 4, "batch_size": 8, "checkpoint_every": 2, **kw}
    job = build("stage2", "smoke", lrs3, stage1=stage1_ckpt, **kw)
    job.cfg.log_every = 1
    return job


def test_stage2_resume_is_exact_and_speech_encoder_frozen(lrs3, stage1_ckpt, tmp_path):
    full = _stage2(lrs3, stage1_ckpt)
    train(full.model, full.data, full.step_fn, full.cfg, tmp_path / "full", params=full.params, progress=False)
    part = _stage2(lrs3, stage1_ckpt)
    out = train(part.model, part.data, part.step_fn, part.cfg, tmp_path / "part", params=part.params, progress=False,
                stop_after=3)  # interrupted after step 3; the last checkpoint is at step 2
    assert out["step"] == 3
    resumed = _stage2(lrs3, stage1_ckpt)  # a new process rebuilds everything
    train(resumed.model, resumed.data, resumed.step_fn, resumed.cfg, tmp_path / "part", params=resumed.params,
          progress=False)
    assert _rows(tmp_path / "full") == _rows(tmp_path / "part") and len(_rows(tmp_path / "full")) == 4
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    # stage 2 trained only the mesh encoder: the speech encoder is bit-identical to stage 1's
    stage1 = Stage1Model.load(stage1_ckpt)
    for (k, a), b in zip(full.model.speech_encoder.state_dict().items(), stage1.speech_encoder.state_dict().values()):
        assert torch.equal(a, b), k
    fresh = _stage2(lrs3, stage1_ckpt)
    assert any(not torch.equal(a, b) for a, b in zip(full.model.mesh_encoder.state_dict().values(),
                                                     fresh.model.mesh_encoder.state_dict().values()))
    assert {id(p) for p in full.params} == {id(p) for p in full.model.mesh_encoder.parameters()}


def _loss_and_mesh_grads(model, batch):
    from p3d.train.critics import critic_step

    model.train()
    model.zero_grad(set_to_none=True)
    loss, _ = critic_step(model, batch, torch.Generator())
    loss.backward()
    return loss.detach(), {k: p.grad.clone() for k, p in model.mesh_encoder.named_parameters()}


def test_frozen_speech_side_is_cached_and_the_step_is_unchanged(lrs3, stage1_ckpt, monkeypatch):
    """stage 2 embeds every window once; a cached batch gives the uncached InfoNCE and mesh-encoder gradients."""
    from p3d.train.critics import EmbeddedSpeechWindows
    from p3d.train.trainer import batch_indices

    job = _stage2(lrs3, stage1_ckpt)
    assert isinstance(job.data, EmbeddedSpeechWindows) and job.data.embeddings.shape == (len(job.data), 32)
    idx = batch_indices(len(job.data), 16, 0, 5)
    cached, plain = job.data.collate(idx), job.data.windows.collate(idx)
    assert "speech" not in cached and torch.equal(cached["mesh"], plain["mesh"])
    with torch.no_grad():
        direct = job.model.encode_speech(plain["speech"])
    torch.testing.assert_close(cached["speech_embedding"], direct, rtol=0, atol=1e-6)
    loss_plain, grads_plain = _loss_and_mesh_grads(job.model, plain)

    def no_speech_encoder(*a, **k):
        raise AssertionError("a cached step must not run the speech encoder")

    monkeypatch.setattr(job.model.speech_encoder, "forward", no_speech_encoder)
    loss_cached, grads_cached = _loss_and_mesh_grads(job.model, cached)
    assert abs(float(loss_cached) - float(loss_plain)) <= 1e-6 * abs(float(loss_plain))
    for k, g in grads_plain.items():
        torch.testing.assert_close(grads_cached[k], g, rtol=1e-5, atol=1e-6 * float(g.abs().max()) + 1e-12, msg=k)
    # a wrong cache is caught: another batch's embeddings change the loss
    other = job.data.collate(batch_indices(len(job.data), 16, 0, 6))
    cached["speech_embedding"] = other["speech_embedding"]
    assert abs(float(_loss_and_mesh_grads(job.model, cached)[0]) - float(loss_plain)) > 1e-3


def _stage1_loss_and_grads(job, batch, seed=3):
    job.model.zero_grad(set_to_none=True)
    loss, logs = job.step_fn(job.model, batch, torch.Generator().manual_seed(seed))
    loss.backward()
    return loss.detach(), torch.cat([p.grad.flatten() for p in job.params]), logs


def test_stage1_bf16_is_opt_in_and_its_loss_is_within_tolerance_of_float32(lrs3):
    """``build(stage1, bf16=True)``: the forward under bf16 autocast; the default step is the plain float32 one.

    Same batch, masks and weights: the bf16 loss and each of its terms are within 1e-2 relative of float32 (bf16
    keeps 8 significant bits, 3.9e-3; measured on tiny corpora at the smoke and cpu presets: the loss 2e-5 to
    1.2e-3, the speech MAE up to 3.5e-3), the gradient points the same way (cosine > 0.99) but is not bit-identical
    (autocast is on)."""
    from p3d.train.critics import stage1_step
    from p3d.train.trainer import batch_indices

    fp32 = build("stage1", "smoke", lrs3, steps=1)
    bf16 = build("stage1", "smoke", lrs3, steps=1, bf16=True)
    assert "bf16" not in fp32.extra_config and bf16.extra_config["bf16"] is True
    assert fp32.step_fn is stage1_step
    bf16.model.load_state_dict(fp32.model.state_dict())
    batch = fp32.data.collate(batch_indices(len(fp32.data), 16, 0, 0))
    loss32, grad32, logs32 = _stage1_loss_and_grads(fp32, batch)
    # the default step is the model's own float32 forward, bit for bit
    direct = fp32.model(batch["speech"], batch["video"], generator=torch.Generator().manual_seed(3)).loss
    assert torch.equal(loss32, direct.detach()) and loss32.dtype == torch.float32
    loss16, grad16, logs16 = _stage1_loss_and_grads(bf16, batch)
    assert loss16.dtype == torch.float32
    assert abs(float(loss16) - float(loss32)) <= 1e-2 * abs(float(loss32))
    for k, v in logs32.items():
        assert abs(logs16[k] - v) <= 1e-2 * abs(v), k
    assert not torch.equal(grad16, grad32)  # bf16 was used
    assert float(torch.nn.functional.cosine_similarity(grad16, grad32, dim=0)) > 0.99


def test_stage1_bf16_resume_is_exact(lrs3, tmp_path):
    def job():
        j = build("stage1", "smoke", lrs3, steps=4, batch_size=8, checkpoint_every=2, bf16=True)
        j.cfg.log_every = 1
        return j

    full = job()
    train(full.model, full.data, full.step_fn, full.cfg, tmp_path / "full", params=full.params, progress=False)
    part = job()
    train(part.model, part.data, part.step_fn, part.cfg, tmp_path / "part", params=part.params, progress=False,
          stop_after=3)
    resumed = job()
    train(resumed.model, resumed.data, resumed.step_fn, resumed.cfg, tmp_path / "part", params=resumed.params,
          progress=False)
    assert _rows(tmp_path / "full") == _rows(tmp_path / "part") and len(_rows(tmp_path / "full")) == 4
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_bf16_is_refused_for_the_critic_kinds(lrs3):
    from p3d.errors import InputError

    with pytest.raises(InputError, match="--bf16: only stage1"):
        build("syncnet3d", "smoke", lrs3, steps=1, bf16=True)


def test_stage1_bf16_on_a_cpu_without_native_bf16_is_warned(lrs3, monkeypatch, caplog):
    monkeypatch.setattr("p3d.device.native_bf16", lambda device="cpu": False)
    with caplog.at_level("WARNING", logger="p3d.device"):
        job = build("stage1", "smoke", lrs3, steps=1, bf16=True)
    assert job.extra_config["bf16"] is True  # what was asked for runs, and is recorded
    assert [r.getMessage() for r in caplog.records if r.name == "p3d.device"][0].startswith("--bf16: cpu does not")
    caplog.clear()
    monkeypatch.setattr("p3d.device.native_bf16", lambda device="cpu": True)
    with caplog.at_level("WARNING", logger="p3d.device"):
        build("stage1", "smoke", lrs3, steps=1, bf16=True)
    assert not [r for r in caplog.records if r.name == "p3d.device"]


def test_only_a_frozen_speech_side_is_cached(lrs3, critic_ckpt):
    from p3d.train.critics import EmbeddedSpeechWindows

    for kind in ("no2d", "syncnet3d"):
        assert not isinstance(build(kind, "smoke", lrs3, steps=1).data, EmbeddedSpeechWindows), kind
    finetune = build("finetune", "smoke", lrs3, init=critic_ckpt, steps=1)
    assert isinstance(finetune.data, EmbeddedSpeechWindows)


def test_validation_reuses_the_frozen_speech_embeddings(lrs3, stage1_ckpt, monkeypatch):
    """The validation metric of a frozen-speech critic embeds its batches once; the values are the uncached ones."""
    from p3d.losses.infonce import info_nce_from_logits
    from p3d.train.convergence import WindowValidation
    from p3d.windows import SpeechMeshWindows

    model = _stage2(lrs3, stage1_ckpt).model
    val = WindowValidation(SpeechMeshWindows(lrs3, "test"), "stage2", batch=8)
    first = val(model, 1)
    with torch.no_grad():
        model.eval()
        batches = [val.windows.collate(b) for b in val.batches]
        losses = [float(info_nce_from_logits(model(b["speech"], b["mesh"])[0])) * len(b["clip"]) for b in batches]
    assert first["val_infonce"] == sum(losses) / sum(len(b["clip"]) for b in batches)

    def no_speech_encoder(*a, **k):
        raise AssertionError("the second evaluation must reuse the speech embeddings")

    monkeypatch.setattr(model.speech_encoder, "forward", no_speech_encoder)
    assert val(model, 2) == first


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, data, stage1, run_dir, result_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    job = build("stage2", "smoke", data, stage1=stage1, steps=2, batch_size=8, checkpoint_every=2)
    train(job.model, job.data, job.step_fn, job.cfg, run_dir, params=job.params, progress=False)
    torch.save(job.model.state_dict(), os.path.join(result_dir, f"rank{rank}.pt"))
    import torch.distributed as dist

    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_processes_identical_stage2_parameters(lrs3, stage1_ckpt, tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(lrs3), str(stage1_ckpt), str(tmp_path / "run"), str(tmp_path)),
             nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    init = _stage2(lrs3, stage1_ckpt).model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert any(not torch.equal(a[k], init[k]) for k in a if k.startswith("mesh_encoder"))
    assert all(torch.equal(a[k], init[k]) for k in a if k.startswith("speech_encoder"))
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def _p3d(*args):
    return main(["train", *map(str, args), "--preset", "smoke", "--no-progress"])


def test_cli_end_to_end(lrs3, voca, tmp_path):
    from p3d.metrics.plrs import plrs

    assert _p3d("stage1", "--data", lrs3, "--out", tmp_path / "s1", "--steps", 2, "--batch-size", 4) == 0
    s1 = tmp_path / "s1" / "final.pt"
    assert Stage1Model.load(s1).config == Stage1Config.from_preset("smoke")
    assert _p3d("stage2", "--data", lrs3, "--out", tmp_path / "s2", "--stage1", s1, "--steps", 2, "--lr", "1e-3",
                "--seed", 3, "--workers", 2) == 0
    cfg = json.loads((tmp_path / "s2" / "config.json").read_text())
    assert cfg["kind"] == "stage2" and cfg["train"]["seed"] == 3 and cfg["train"]["lr"] == 1e-3
    assert [r[0] for r in _rows(tmp_path / "s2")] == [1, 2]
    critic = load_critic(tmp_path / "s2" / "final.pt")
    assert isinstance(critic, SpeechMeshModel) and critic.variant == "ours" and critic.n_vertices == 30
    assert _p3d("finetune", "--data", voca, "--out", tmp_path / "ft", "--init", tmp_path / "s2" / "final.pt",
                "--steps", 2, "--batch-size", 4) == 0
    ft = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert ft["train"]["lr"] == 1e-4 and ft["corpus"] == "tiny-vocaset"
    assert load_critic(tmp_path / "ft" / "final.pt").freeze_speech
    assert _p3d("evaluator", "--data", lrs3, "--out", tmp_path / "ev", "--stage1", s1, "--steps", 2) == 0
    ev = json.loads((tmp_path / "ev" / "config.json").read_text())
    assert ev["identities"] == "half2" and ev["identity_list"] == ["train01", "train03"] and ev["train"]["seed"] == 1
    assert ev["train"]["batch_size"] != cfg["train"]["batch_size"]
    evaluator = load_critic(tmp_path / "ev" / "final.pt")
    from p3d.corpus import Corpus

    corpus = Corpus.open(lrs3)
    clip = corpus.select("test")[0]
    samples, sr = corpus.audio(clip)
    assert -1.0 <= plrs(samples, corpus.vertices(clip), evaluator, fps=25, sr=sr) <= 1.0
    for kind in ("syncnet3d", "no2d"):
        assert _p3d(kind, "--data", lrs3, "--out", tmp_path / kind, "--steps", 1, "--batch-size", 4) == 0
        assert load_critic(tmp_path / kind / "final.pt").kind in ("syncnet3d", "speech_mesh")
    # a finished run re-run resumes at its end and only rewrites final.pt
    assert _p3d("no2d", "--data", lrs3, "--out", tmp_path / "no2d", "--steps", 1, "--batch-size", 4) == 0
    assert len(_rows(tmp_path / "no2d")) == 1


@pytest.mark.parametrize("args, message", [
    (["stage1", "--data", "{missing}", "--out", "{out}"], "corpus folder not found"),
    (["stage1", "--data", "{voca}", "--out", "{out}"], "lip video"),
    (["stage2", "--data", "{lrs3}", "--out", "{out}"], "--stage1"),
    (["stage2", "--data", "{lrs3}", "--out", "{out}", "--stage1", "{critic}"], "expected 'stage1'"),
    (["syncnet3d", "--data", "{lrs3}", "--out", "{out}", "--stage1", "{stage1}"], "only stage2 and evaluator"),
    (["finetune", "--data", "{lrs3}", "--out", "{out}"], "--init"),
    (["no2d", "--data", "{lrs3}", "--out", "{out}", "--init", "{critic}"], "only finetune starts from a checkpoint"),
    (["finetune", "--data", "{lrs3}", "--out", "{out}", "--init", "{stage1}"], "not a speech-mesh critic"),
    (["finetune", "--data", "{wide}", "--out", "{out}", "--init", "{critic}"], "expects 30 vertices"),
    (["no2d", "--data", "{lrs3}", "--out", "{stage1_run}"], "kind: stage1 -> no2d"),
    (["no2d", "--data", "{lrs3}", "--out", "{out}", "--split", "val"], "no clips in split"),
    (["no2d", "--data", "{lrs3}", "--out", "{out}", "--steps", "0"], "--steps"),
    (["no2d", "--data", "{lrs3}", "--out", "{out}", "--steps", "1", "--lr", "0"], "--lr: expected a positive"),
    (["no2d", "--data", "{lrs3}", "--out", "{out}", "--steps", "1", "--batch-size", "1"], "needs at least 2"),
    (["syncnet3d", "--data", "{lrs3}", "--out", "{out}", "--steps", "1", "--batch-size", "1"], "needs at least 2"),
    (["stage1", "--data", "{lrs3}", "--out", "{out}", "--steps", "1", "--batch-size", "1"], "needs at least 2"),
])
def test_bad_input(args, message, lrs3, voca, stage1_ckpt, critic_ckpt, tmp_path, capsys):
    stage1_run = tmp_path / "s1run"
    stage1_run.mkdir()
    (stage1_run / "config.json").write_text(json.dumps({"train": {"steps": 30}, "kind": "stage1"}))
    names = {"missing": tmp_path / "nope", "out": tmp_path / "out", "voca": voca, "lrs3": lrs3, "critic": critic_ckpt,
             "stage1": stage1_ckpt, "stage1_run": stage1_run}
    if "{wide}" in args:
        names["wide"] = write_tiny_corpus(tmp_path / "wide", identities={"train": 1}, clips_per_identity=1,
                                          n_vertices=40, lip_video=False)
    assert _p3d(*[a.format(**names) for a in args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_learning_beats_chance_on_held_out_windows(lrs3, tmp_path):
    """Short smoke trainings of a critic on the tiny corpus (speech loudness and spectrum drive lip opening and
    spreading), three seeds: speech->mesh retrieval on held-out identities' windows beats chance, and the same
    model before training does not.

    Measured (138 windows, chance R@5 = 5 hits; seeds 0-9, 150 steps, 1 and 2 torch threads, which change the
    trajectory as another CPU would): R@5 16-51 hits, never below 3.2x chance. So each seed must reach 1.6x
    chance (2x margin below the worst run seen); a model at chance passes one seed with p ~ 0.07, all three with
    p ~ 3e-4. R@1 (2-29 hits vs 1) and mesh->speech (3-34 hits vs 5) vary too much on a corpus this small to
    assert on."""
    from p3d.analysis.representation import embed_windows, retrieval_at_k
    from p3d.windows import SpeechMeshWindows

    held_out = SpeechMeshWindows(lrs3, "test", stride=2)

    def speech_to_mesh(model):
        emb = embed_windows(model, held_out)
        return retrieval_at_k(emb["speech"], emb["mesh"])

    for seed in (0, 1, 2):
        job = build("syncnet3d", "smoke", lrs3, steps=150, batch_size=32, seed=seed)
        before = speech_to_mesh(job.model)
        train(job.model, job.data, job.step_fn, job.cfg, tmp_path / f"run{seed}", params=job.params, progress=False)
        after = speech_to_mesh(job.model)
        assert after["n"] == len(held_out) > 100
        threshold = 1.6 * after["chance"][5]
        assert before["speech_to_mesh"][5] < threshold, f"seed {seed}: the untrained critic already passes"
        assert after["speech_to_mesh"][5] > threshold, f"seed {seed}: R@5 {after['speech_to_mesh'][5]:.3f}"


def test_old_module_name_is_the_critics_module():
    """``p3d.train.representation`` (the former name) is the same module object, so patches reach it."""
    import p3d.train.critics as critics
    import p3d.train.representation as old

    assert old is critics and old.build is build


def test_device_names():
    from p3d.device import resolve_device
    from p3d.errors import InputError

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="--device"):
        resolve_device("no-such-device")


def test_paper_recipes_follow_the_paper():
    """The ``paper`` preset's recipes are the paper's numbers: stage 1 batch 40, 100 epochs, lr 3e-4 (Sec. E.1);
    stage 2 (and its from-scratch ablation) batch 80, "other hyper-parameters as Stage 1"; 3D SyncNet batch 80, 20
    epochs (Sec. F); fine-tuning 5 epochs at lr 1e-4 (Sec. 4); the evaluator batch 256 (E.1), another seed and the
    other identity half."""
    from p3d.train.critics import recipe

    expected = {"stage1": (40, 100, 3e-4), "stage2": (80, 100, 3e-4), "no2d": (80, 100, 3e-4),
                "syncnet3d": (80, 20, 3e-4), "finetune": (80, 5, 1e-4), "evaluator": (256, 100, 3e-4)}
    for kind, (batch, epochs, lr) in expected.items():
        rec = recipe(kind, "paper")
        assert (rec.batch_size, rec.epochs, rec.lr, rec.steps) == (batch, epochs, lr, None), kind
        # steps = ceil(epochs * windows / batch)
        assert rec.n_steps(1001) == -(-epochs * 1001 // batch), kind
    assert recipe("evaluator", "paper").seed != recipe("stage2", "paper").seed
    assert (recipe("evaluator", "paper").identities, recipe("stage2", "paper").identities) == ("half2", "all")


def test_plateau_stopping_evaluates_every_five_logging_intervals_by_default():
    """``build``: with ``stop="plateau"`` ``eval_every`` defaults to 5 x the recipe's logging interval; with the
    default ``stop="steps"`` nothing is validated."""
    from p3d.train.critics import recipe, request_defaults

    for kind, preset in (("stage2", "paper"), ("syncnet3d", "cpu"), ("evaluator", "smoke")):
        assert request_defaults(kind, preset, {"stop": "plateau"})["eval_every"] == 5 * recipe(kind, preset).log_every
        assert request_defaults(kind, preset, {})["eval_every"] == 0


def test_cached_speech_rows_are_each_windows_own_embedding_whatever_the_chunk(lrs3, stage1_ckpt):
    """``speech_embeddings``: row i is ``encode_speech`` of window i, also when the windows span several chunks."""
    from p3d.train.critics import speech_embeddings

    job = _stage2(lrs3, stage1_ckpt)
    windows = job.data.windows
    idx = list(range(len(windows)))[:10]
    with torch.no_grad():
        direct = job.model.encode_speech(windows.collate(idx)["speech"])
    chunked = speech_embeddings(job.model, windows, chunk=3)
    assert chunked.shape == (len(windows), direct.shape[1])
    torch.testing.assert_close(chunked[:10], direct, rtol=0, atol=1e-6)
    torch.testing.assert_close(job.data.embeddings, chunked, rtol=0, atol=1e-6)


def test_finetuning_a_no2d_critic_keeps_training_its_speech_encoder(lrs3, tmp_path):
    """"What was frozen stays frozen" (finetune): a no2d critic's speech encoder was trained, so fine-tuning it
    trains both encoders and caches no speech embeddings."""
    from p3d.train.critics import EmbeddedSpeechWindows

    no2d = build("no2d", "smoke", lrs3, steps=1)
    no2d.model.save(tmp_path / "no2d.pt")
    job = build("finetune", "smoke", lrs3, init=tmp_path / "no2d.pt", steps=1)
    assert not isinstance(job.data, EmbeddedSpeechWindows)
    assert {id(p) for p in job.params} == {id(p) for p in job.model.parameters()}
    assert job.model.speech_encoder.training and job.model.mesh_encoder.training


def test_the_mesh_encoders_input_standardisation_is_the_training_frames_mean_and_rms(lrs3, stage1_ckpt):
    """stage2, evaluator and no2d standardise the mesh encoder's input with the training split's average frame and
    the RMS of the centred coordinates (computed here from the corpus' clips directly)."""
    import numpy as np

    from p3d.corpus import Corpus

    corpus = Corpus.open(lrs3)
    frames = np.concatenate([corpus.vertices(c).reshape(-1, 90).astype(np.float64) for c in corpus.select("train")])
    mean = frames.mean(0)
    rms = float(np.sqrt(((frames - mean) ** 2).mean()))
    for kind, kw in (("stage2", {"stage1": stage1_ckpt}), ("no2d", {}), ("evaluator", {"stage1": stage1_ckpt})):
        enc = build(kind, "smoke", lrs3, steps=1, identities="all", **kw).model.mesh_encoder
        np.testing.assert_allclose(enc.input_mean.numpy(), mean, rtol=1e-5, atol=1e-6, err_msg=kind)
        assert abs(float(enc.input_scale) - rms) <= 1e-5 * rms, kind


def test_critic_step_logs_the_speech_to_mesh_top1_accuracy(lrs3, stage1_ckpt):
    """``batch_acc``: the share of speech windows whose most similar mesh window in the batch is their own (row i of
    logits_per_speech), for a cached and an uncached batch."""
    import torch.nn.functional as F

    from p3d.train.critics import critic_step
    from p3d.train.trainer import batch_indices

    job = _stage2(lrs3, stage1_ckpt)
    for step in range(40):  # a batch whose two retrieval directions differ, so the test tells them apart
        idx = batch_indices(len(job.data), 16, 0, step)
        cached, plain = job.data.collate(idx), job.data.windows.collate(idx)
        with torch.no_grad():
            s, m = job.model.encode_speech(plain["speech"]), job.model.encode_mesh(plain["mesh"])
            cos = F.cosine_similarity(s[:, None], m[None], dim=-1)
        # every top-1 clear of its runner-up by far more than float32 rounding: the same argmax on any CPU
        clear = all(float(top[:, 0].sub(top[:, 1]).min()) > 1e-4 for top in (cos.topk(2, 1).values,
                                                                           cos.t().topk(2, 1).values))
        hits = sum(int(cos[i].argmax()) == i for i in range(16)) / 16
        if clear and hits != sum(int(cos[:, j].argmax()) == j for j in range(16)) / 16:
            break
    else:
        raise AssertionError("no batch with clear top-1s and different speech->mesh and mesh->speech accuracies")
    for batch in (cached, plain):
        with torch.no_grad():
            _, logs = critic_step(job.model, batch, torch.Generator())
        assert logs["batch_acc"] == pytest.approx(hits)


def test_only_a_frozen_speech_encoder_is_embedded_once(lrs3):
    from p3d.train.critics import EmbeddedSpeechWindows, speech_embeddings

    job = build("no2d", "smoke", lrs3, steps=1)
    with pytest.raises(ValueError, match="trained"):
        speech_embeddings(job.model, job.data)
    with pytest.raises(ValueError, match="embeddings"):
        EmbeddedSpeechWindows(job.data, torch.zeros(len(job.data) - 1, 32))


def test_the_seed_sets_the_mesh_encoders_initialisation(lrs3, stage1_ckpt):
    """The seed is the model initialisation's (the evaluator's seed 1: "another mesh-encoder initialisation"): the
    same seed builds the same weights, another seed other weights."""
    def mesh(seed, kind="stage2"):
        return build(kind, "smoke", lrs3, stage1=stage1_ckpt, steps=1, seed=seed,
                     max_per_clip=1).model.mesh_encoder.state_dict()["patch_embed.weight"]

    first = mesh(1)
    assert torch.equal(first, mesh(None, "evaluator"))  # the evaluator's default seed is 1
    assert not torch.equal(first, mesh(None))  # stage 2's default seed, 0
    assert torch.equal(mesh(0), mesh(None))


def test_the_run_records_its_stage1_identities_and_epochs(lrs3, stage1_ckpt):
    """``config.json`` (``Job.extra_config``): the stage-1 checkpoint used, the identity half asked for and the
    epochs trained, steps x batch / windows."""
    job = build("stage2", "smoke", lrs3, stage1=stage1_ckpt, steps=3, batch_size=4, identities="half1",
                max_per_clip=2)
    extra = job.extra_config
    assert extra["stage1"] == str(stage1_ckpt) and extra["identities"] == "half1" and extra["init"] is None
    assert extra["windows"] == len(job.data) and extra["epochs"] == pytest.approx(3 * 4 / len(job.data))
