"""The shared training loop: exact resume, checkpoints, DDP with gloo on CPU."""
import os
import socket

import pytest
import torch

from p3d.errors import InputError
from p3d.train.run_folder import load_checkpoint
from p3d.train.trainer import TrainConfig, batch_indices, train


class Toy:
    """y = x @ w + noise; 64 items."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 8, generator=g)
        self.y = self.x @ torch.randn(8, 1, generator=g) + 0.1 * torch.randn(64, 1, generator=g)

    def __len__(self):
        return 64

    def collate(self, idx):
        return self.x[idx], self.y[idx]


def make_model():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.2), torch.nn.ReLU(), torch.nn.Linear(16, 1))


def step_fn(model, batch, gen):
    x, y = batch
    noise = 0.01 * torch.randn(x.shape, generator=gen)  # exercises the per-step generator
    loss = torch.nn.functional.mse_loss(model(x + noise), y)
    return loss, {"mse": loss.item()}


def _losses(run):
    import csv

    with open(run / "metrics.csv") as fh:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(fh)]


def test_batch_indices_deterministic_and_epoch_complete():
    a = batch_indices(10, 4, seed=3, step=0) + batch_indices(10, 4, seed=3, step=1) + batch_indices(10, 4, seed=3, step=2)
    assert sorted(a[:10]) == list(range(10))  # the first 10 draws are one permutation
    assert batch_indices(10, 4, 3, 5) == batch_indices(10, 4, 3, 5)
    assert batch_indices(10, 4, 3, 5) != batch_indices(10, 4, 4, 5)


def test_exact_resume(tmp_path):
    cfg = TrainConfig(steps=8, batch_size=8, lr=1e-2, checkpoint_every=4, log_every=1, seed=7)
    full = make_model()
    train(full, Toy(), step_fn, cfg, tmp_path / "full", progress=False)

    part = make_model()
    out = train(part, Toy(), step_fn, cfg, tmp_path / "part", progress=False, stop_after=6)  # "interrupted"
    assert out["step"] == 6
    resumed = make_model()  # a fresh process would rebuild the model from scratch
    out = train(resumed, Toy(), step_fn, cfg, tmp_path / "part", progress=False)
    assert out["step"] == 8 and out["steps_here"] == 4  # this call's steps: from the step-4 checkpoint on
    assert train(make_model(), Toy(), step_fn, cfg, tmp_path / "part", progress=False)["steps_here"] == 0
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert _losses(tmp_path / "full") == _losses(tmp_path / "part")


def test_resume_removes_what_a_killed_write_left(tmp_path):
    """A process killed while writing a checkpoint (or a log) leaves the temporary file of its atomic write, as large
    as a whole checkpoint; the next process that takes the folder's lock deletes it."""
    cfg = TrainConfig(steps=8, batch_size=8, lr=1e-2, checkpoint_every=4, log_every=1, seed=7)
    run = tmp_path / "run"
    train(make_model(), Toy(), step_fn, cfg, run, progress=False, stop_after=6)
    left = [run / "checkpoints" / ".step_0000008.pt.tmp-k1ll3d.pt", run / "checkpoints" / ".last.pt.tmp-k1ll3d.pt",
            run / ".metrics.csv.tmp-k1ll3d.csv"]
    for path in left:
        path.write_bytes(b"PK half a checkpoint")
    assert train(make_model(), Toy(), step_fn, cfg, run, progress=False)["step"] == 8
    assert not [p for p in left if p.exists()]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt", "step_0000004.pt",
                                                                      "step_0000008.pt"]


def test_final_pt_is_written_holding_the_lock_and_a_killed_write_of_it_is_removed(tmp_path):
    """final.pt was written after train() had released the folder's lock, so the temporary file of a final.pt write
    that a kill cut off (as large as a checkpoint) was never removed: the next holder of the lock could not tell it
    from the live temporary of a process writing final.pt. train(finalize=...) now writes it holding the lock (a
    process waiting for the folder waits for the write too), and the next holder removes a leftover; timing.json's
    likewise. request.json and data.json are written without the lock: theirs are left alone."""
    import threading

    from p3d.train.run_folder import run_lock

    cfg = TrainConfig(steps=4, batch_size=8, lr=1e-2, checkpoint_every=2, log_every=1, seed=7)
    run = tmp_path / "run"
    written, second = [], {}

    def finalize(run_dir):
        with pytest.raises(InputError, match="being trained"):  # the lock is held while final.pt is written
            with run_lock(run_dir, wait=False):
                pass
        live = run_dir / ".final.pt.tmp-l1v3.pt"
        live.write_bytes(b"PK being written")
        if not written:  # another process asks for the folder meanwhile: it waits, and leaves the write alone
            waiting = threading.Thread(target=lambda: second.update(train(make_model(), Toy(), step_fn, cfg, run_dir,
                                                                          progress=False, finalize=finalize)))
            waiting.start()
            waiting.join(timeout=1.0)
            assert waiting.is_alive() and live.exists()
            second["thread"] = waiting
        os.replace(live, run_dir / "final.pt")
        written.append(run_dir)
        return run_dir / "final.pt"

    result = train(make_model(), Toy(), step_fn, cfg, run, progress=False, finalize=finalize, stop_after=2)
    assert result["final"] is None and not written  # not finished: not called
    (run / ".final.pt.tmp-k1ll3d.pt").write_bytes(b"PK half a checkpoint")  # what a killed write left
    (run / ".timing.json.tmp-k1ll3d.json").write_text('{"train_s"')
    (run / ".request.json.tmp-cl41m.json").write_text('{"kind"')
    result = train(make_model(), Toy(), step_fn, cfg, run, progress=False, finalize=finalize)
    assert result["final"] == run / "final.pt" and written == [run]
    second["thread"].join(timeout=60)
    assert second["step"] == 4 and second["steps_here"] == 0 and second["final"] is None  # finished by the first
    assert written == [run] and (run / "final.pt").read_bytes() == b"PK being written"
    assert sorted(p.name for p in run.glob(".*.tmp-*")) == [".request.json.tmp-cl41m.json"]


def test_checkpoint_safe_load(tmp_path):
    cfg = TrainConfig(steps=2, batch_size=4, checkpoint_every=1, log_every=1)
    train(make_model(), Toy(), step_fn, cfg, tmp_path / "r", progress=False)
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2 and "train" in ckpt["config"]
    assert len(list((tmp_path / "r" / "checkpoints").glob("step_*.pt"))) == 2
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="readable"):
        load_checkpoint(bad)
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")



def test_run_lock_refuses_a_second_holder_without_waiting(tmp_path):
    from p3d.train.run_folder import run_lock

    with run_lock(tmp_path / "r"):
        assert (tmp_path / "r" / ".lock").read_text().strip() == f"pid {os.getpid()}"
        with pytest.raises(InputError, match=f"being trained by pid {os.getpid()}"):
            with run_lock(tmp_path / "r", wait=False):
                pass
    with run_lock(tmp_path / "r", wait=False):  # released at the end of the block
        pass


def test_run_lock_of_a_folder_moved_while_waiting_is_that_of_the_folder_now_there(tmp_path):
    """A process waiting for a folder's lock while its holder renamed the folder away (a staging folder moved into
    place) got the lock of the moved file, and a third process then took the lock of the folder now at that path:
    two holders. The waiter now claims the folder now at the path."""
    import threading

    from p3d.train.run_folder import run_lock

    folder, moved = tmp_path / "staging", tmp_path / "run"
    holding, release, done = threading.Event(), threading.Event(), threading.Event()

    def waiter():
        with run_lock(folder):
            holding.set()
            assert release.wait(timeout=60)
        done.set()

    with run_lock(folder):
        thread = threading.Thread(target=waiter)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive() and not holding.is_set()
        folder.rename(moved)
    assert holding.wait(timeout=60)
    with pytest.raises(InputError, match="being trained"):  # the waiter holds the folder now at the path
        with run_lock(folder, wait=False):
            pass
    release.set()
    thread.join(timeout=60)
    assert done.is_set()


def test_train_waits_while_another_process_trains_the_folder(tmp_path, caplog):
    """Two trainings of one folder never interleave: the second waits for the lock, then resumes from what
    the first left (here: a finished run, so nothing to do and the same weights)."""
    import logging
    import threading

    from p3d.train.run_folder import run_lock

    cfg = TrainConfig(steps=4, batch_size=8, lr=1e-2, checkpoint_every=2, log_every=1, seed=3)
    run = tmp_path / "run"
    first = make_model()
    out = {}
    with caplog.at_level(logging.INFO, logger="p3d.train.run_folder"):
        with run_lock(run):  # "another process" holds the folder
            waiting = threading.Thread(target=lambda: out.update(train(make_model(), Toy(), step_fn, cfg, run,
                                                                       progress=False)))
            waiting.start()
            waiting.join(timeout=1.0)
            assert waiting.is_alive() and not (run / "config.json").exists()  # blocked before reading the folder
            train(first, Toy(), step_fn, cfg, tmp_path / "reference", progress=False)
        waiting.join(timeout=60)
    assert not waiting.is_alive() and out["step"] == 4 and out["finished"]
    assert "waiting for it" in caplog.text
    assert _losses(run) == _losses(tmp_path / "reference")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, run_dir, result_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    model = make_model()
    cfg = TrainConfig(steps=3, batch_size=8, lr=1e-2, checkpoint_every=3, log_every=1)
    train(model, Toy(), step_fn, cfg, run_dir, progress=False)
    torch.save(model.state_dict(), os.path.join(result_dir, f"rank{rank}.pt"))
    import torch.distributed as dist

    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_processes_identical_parameters(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    init = make_model().state_dict()
    for k in a:
        assert torch.equal(a[k], b[k])
    assert any(not torch.equal(a[k], init[k]) for k in a)  # training did move them
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def _ddp_logging_worker(rank, world, port, run_dir, result_dir, batch_norm):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    model = make_model()
    if batch_norm:
        model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    seen = []

    def recording_step(m, batch, gen):
        loss, logs = step_fn(m, batch, gen)
        seen.append(float(loss))
        return loss, logs

    cfg = TrainConfig(steps=2, batch_size=8, lr=1e-2, checkpoint_every=2, log_every=1)
    try:
        train(model, Toy(), recording_step, cfg, run_dir, progress=False)
        torch.save(torch.tensor(seen), os.path.join(result_dir, f"losses{rank}.pt"))
    except InputError as exc:
        with open(os.path.join(result_dir, f"error{rank}.txt"), "w") as fh:
            fh.write(str(exc))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_logs_the_global_batch_and_refuses_batch_norm_on_the_cpu(tmp_path):
    """metrics.csv logged rank 0's share of the batch (its loss alone); it logs the mean over the ranks, the global
    batch's loss. A model with BatchNorm in two CPU processes normalised each share apart (SyncBatchNorm needs CUDA):
    refused before the folder is written."""
    import csv

    import torch.multiprocessing as mp

    mp.spawn(_ddp_logging_worker, args=(2, _free_port(), str(tmp_path / "run"), str(tmp_path), False), nprocs=2,
             join=True)
    per_rank = [torch.load(tmp_path / f"losses{r}.pt", weights_only=True) for r in (0, 1)]
    with open(tmp_path / "run" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    for step in (0, 1):
        want = (per_rank[0][step] + per_rank[1][step]).item() / 2
        assert float(rows[step]["loss"]) == pytest.approx(want, rel=1e-6)
        assert float(rows[step]["mse"]) == pytest.approx(want, rel=1e-6)
        assert abs(per_rank[0][step] - per_rank[1][step]) > 1e-6  # the shares differ: rank 0's alone was logged
    mp.spawn(_ddp_logging_worker, args=(2, _free_port(), str(tmp_path / "bn"), str(tmp_path), True), nprocs=2,
             join=True)
    for r in (0, 1):
        assert "BatchNorm" in (tmp_path / f"error{r}.txt").read_text()
    assert not (tmp_path / "bn" / "config.json").exists()


def test_a_forced_claim_removes_the_run_folder_only_once_its_trainer_lets_go(tmp_path):
    """``claim_run_dir(force=True)`` (``p3d train --force``, ``fit(force=True)``) removed the folder with
    ``shutil.rmtree`` without its lock: a process training it lost its files mid-write. Now
    :func:`p3d.train.run_folder.remove_run_dir`: it waits for the holder, then removes the folder (moved aside
    first) and the claim makes it anew; nothing is left beside it."""
    import threading

    from p3d.train import api
    from p3d.train.run_folder import remove_run_dir, run_lock

    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.pt").write_bytes(b"old run")
    request = {"kind": "syncnet3d", "preset": "smoke", "options": {}}
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("fresh", api.claim_run_dir(out, request, force=True)))
    with run_lock(out):  # a process training the folder
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waits for it
        assert (out / "checkpoints" / "last.pt").read_bytes() == b"old run"
    thread.join(timeout=60)
    assert done == {"fresh": False}
    assert not (out / "checkpoints").exists() and (out / "request.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    remove_run_dir(out)
    remove_run_dir(out)  # nothing there: nothing to do
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["metrics.csv", "val.csv"])
def test_resume_after_an_empty_log_file_writes_its_header(tmp_path, name):
    """A process killed (or a disk that filled) between creating a log file and its first flush leaves it empty; the
    resumed run appended its rows without a header, and the next resume failed reading ``step`` (KeyError)."""
    import csv

    class Val:
        metric = "val"

        def __call__(self, model, step):
            return {"val": 1.0 / step}

    cfg = TrainConfig(steps=12, batch_size=8, lr=1e-2, checkpoint_every=4, log_every=2, seed=7, eval_every=2)
    train(make_model(), Toy(), step_fn, cfg, tmp_path / "full", progress=False, validate=Val())
    run = tmp_path / "run"
    train(make_model(), Toy(), step_fn, cfg, run, progress=False, validate=Val(), stop_after=4)
    (run / name).write_text("")
    train(make_model(), Toy(), step_fn, cfg, run, progress=False, validate=Val(), stop_after=4)
    train(make_model(), Toy(), step_fn, cfg, run, progress=False, validate=Val())  # read the log back
    column = "loss" if name == "metrics.csv" else "val"  # (val_smoothed: the emptied file's history is lost)
    with open(run / name, newline="") as fh:
        rows = [(r["step"], r[column]) for r in csv.DictReader(fh)]
    with open(tmp_path / "full" / name, newline="") as fh:
        full = [(r["step"], r[column]) for r in csv.DictReader(fh)]
    assert rows == [r for r in full if int(r[0]) > 4]  # the rows before the emptied file's loss are gone


def test_last_checkpoint_and_trimmed_logs_are_synced_before_they_replace_the_old(tmp_path, monkeypatch):
    """last.pt (the only checkpoint a resume reads) was a copy renamed into place without an fsync, as were the logs
    trimmed on resume: after a crash of the machine the new name could hold an empty file. Each is synced first."""
    import p3d.atomic

    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(p3d.atomic.os, "fsync", fsync)
    cfg = TrainConfig(steps=8, batch_size=8, lr=1e-2, checkpoint_every=4, log_every=1, seed=7)
    run = tmp_path / "run"
    train(make_model(), Toy(), step_fn, cfg, run, progress=False, stop_after=6)
    assert sum(name.startswith(".last.pt.tmp-") for name in synced) == 1  # the step-4 checkpoint's copy
    synced.clear()
    train(make_model(), Toy(), step_fn, cfg, run, progress=False)
    assert any(name.startswith(".metrics.csv.tmp-") for name in synced)  # rows 5 and 6 trimmed
    assert sum(name.startswith(".last.pt.tmp-") for name in synced) == 1  # step 8


def test_a_refused_long_setting_shows_where_it_differs(tmp_path):
    """Each value of the refusal was cut to its first 57 characters: two paths differing past them read as the same
    path twice ('data: /home/.../x... -> /home/.../x...')."""
    cfg = TrainConfig(steps=2, batch_size=8, checkpoint_every=1)
    root = "/home/someone/experiments/perceptual-3d-talking-heads/data/full"
    train(make_model(), Toy(), step_fn, cfg, tmp_path / "r", progress=False, extra_config={"data": f"{root}/synth-voca"})
    with pytest.raises(InputError) as err:
        train(make_model(), Toy(), step_fn, cfg, tmp_path / "r", progress=False,
              extra_config={"data": f"{root}/synth-mead"})
    assert "synth-voca -> " in str(err.value) and str(err.value).count("synth-mead") == 1
    assert len(str(err.value).splitlines()) == 1


def test_a_run_recorded_before_a_setting_existed_resumes_with_the_value_it_implies():
    """AudioEncoderConfig.trim_before_encoder joined config.json after runs were recorded: resuming an unfinished
    talker run from before it (a `make figures PRESET=full` across the change) was refused as
    'model_config.audio.trim_before_encoder: (none) -> true', although the code had trimmed (True) all along."""
    from p3d.train.trainer import resume_plan

    audio = {"kind": "mel", "dim": 64}
    old = {"train": {"steps": 10}, "model": "codetalker", "model_config": {"audio": audio}}
    new = {**old, "model_config": {"audio": {**audio, "trim_before_encoder": True}}, "world_size": 1}
    record, extension = resume_plan(old, new)
    assert extension is None and record["model_config"]["audio"]["trim_before_encoder"] is True
    assert record["world_size"] == 1
    assert resume_plan(old, {**new, "train": {"steps": 20}})[1]["steps_to"] == 20  # extended too
    with pytest.raises(InputError, match=r"trim_before_encoder: true -> false"):  # another value: a change
        resume_plan(old, {**new, "model_config": {"audio": {**audio, "trim_before_encoder": False}}})
    with pytest.raises(InputError, match=r"world_size: 1 -> 2"):
        resume_plan(old, {**new, "world_size": 2})


def test_batch_indices_are_the_documented_stream_of_per_epoch_permutations():
    """batch_indices' rule (its docstring): step s takes positions [s*B, (s+1)*B) of the concatenation of per-epoch
    permutations, epoch e's seeded by (seed, e). Rebuilt here from that rule, with batches that cross epochs and a
    batch larger than the data: every batch has B items and the stream is the same one a recorded run resumes on."""
    from p3d.train.trainer import _mix

    for n, size, seed in [(10, 4, 3), (7, 3, 0), (5, 12, 9)]:
        stream = []
        for epoch in range(12 * 8 // n + 2):
            stream += torch.randperm(n, generator=torch.Generator().manual_seed(_mix(seed, epoch))).tolist()
        for step in range(8):
            got = batch_indices(n, size, seed, step)
            assert len(got) == size
            assert got == stream[step * size:(step + 1) * size], (n, size, seed, step)


def test_resume_plan_keeps_the_first_bookkeeping_and_appends_each_extension():
    """The module docstring: bookkeeping settings may differ on resume and config.json keeps the first values; a
    longer steps appends {steps_from, steps_to} to the extensions list (the original request stays extensions[0])."""
    from p3d.train.trainer import resume_plan

    old = {"train": {"steps": 10, "log_every": 5}, "model": "m", "world_size": 1}
    record, extension = resume_plan(old, {**old, "train": {"steps": 10, "log_every": 2}})
    assert extension is None and record["train"]["log_every"] == 5
    once, first = resume_plan(old, {**old, "train": {"steps": 20, "log_every": 2}})
    assert (first["steps_from"], first["steps_to"]) == (10, 20) and once["train"] == {"steps": 20, "log_every": 5}
    twice, second = resume_plan(once, {**old, "train": {"steps": 30, "log_every": 1}})
    assert (second["steps_from"], second["steps_to"]) == (20, 30) and twice["train"]["steps"] == 30
    assert [(e["steps_from"], e["steps_to"]) for e in twice["extensions"]] == [(10, 20), (20, 30)]
    assert twice["train"]["log_every"] == 5


def _optimizer_steps(monkeypatch):
    """Record, at each optimiser step, the learning rate and the total gradient norm the optimiser is given."""
    seen = []
    real = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        seen.append((self.param_groups[0]["lr"], float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(g) for g in grads])))))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    return seen


def test_warmup_ramps_the_learning_rate_linearly_then_holds_it(tmp_path, monkeypatch):
    """TrainConfig.warmup_steps: step s < warmup trains (and logs) at lr * (s + 1) / warmup, the later steps at lr; the
    optimiser is given that value, not only metrics.csv."""
    import csv

    seen = _optimizer_steps(monkeypatch)
    cfg = TrainConfig(steps=5, batch_size=8, lr=4e-2, warmup_steps=4, log_every=1, checkpoint_every=5, grad_clip=None)
    train(make_model(), Toy(), step_fn, cfg, tmp_path / "r", progress=False)
    expected = [1e-2, 2e-2, 3e-2, 4e-2, 4e-2]
    assert [lr for lr, _ in seen] == pytest.approx(expected, rel=1e-12)
    with open(tmp_path / "r" / "metrics.csv", newline="") as fh:
        assert [float(r["lr"]) for r in csv.DictReader(fh)] == pytest.approx(expected, rel=1e-12)


def test_checkpoints_past_step_9999999_are_pruned_by_step_not_by_name(tmp_path):
    """Pruning keeps the newest checkpoints by step number: ``step_10000000.pt`` sorts before ``step_9999999.pt`` as
    text, so the name order deleted the checkpoint just written and kept the older one."""
    from p3d.train.trainer import _save_and_prune

    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in (9_999_998, 9_999_999, 10_000_000):
        _save_and_prune(tmp_path, model, optimizer, step, {"train": {}}, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt"))
    assert names == ["step_10000000.pt", "step_9999999.pt"]


def test_grad_clip_bounds_the_gradient_norm_the_optimiser_sees(tmp_path, monkeypatch):
    """TrainConfig.grad_clip: the total gradient norm is clipped to grad_clip before each optimiser step (None: not
    clipped); the toy's gradients are far larger than the bound used here."""
    seen = _optimizer_steps(monkeypatch)
    cfg = TrainConfig(steps=3, batch_size=8, lr=1e-2, grad_clip=1e-3, log_every=1, checkpoint_every=3)
    train(make_model(), Toy(), step_fn, cfg, tmp_path / "clipped", progress=False)
    assert [norm for _, norm in seen] == pytest.approx([1e-3] * 3, rel=1e-4)
    seen.clear()
    train(make_model(), Toy(), step_fn, TrainConfig(**{**cfg.__dict__, "grad_clip": None}), tmp_path / "free",
          progress=False)
    assert min(norm for _, norm in seen) > 1e-2


@pytest.mark.parametrize("keep, left", [(2, [5, 6]), (1, [6]), (0, [1, 2, 3, 4, 5, 6])])
def test_checkpoints_are_pruned_to_keep_checkpoints(tmp_path, keep, left):
    """TrainConfig.keep_checkpoints: the newest ``keep`` step checkpoints stay (0: all of them), beside last.pt, which
    is the newest one's copy."""
    cfg = TrainConfig(steps=6, batch_size=8, lr=1e-2, checkpoint_every=1, log_every=1, keep_checkpoints=keep)
    train(make_model(), Toy(), step_fn, cfg, tmp_path / "r", progress=False)
    names = sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir())
    assert names == sorted(["last.pt", *(f"step_{s:07d}.pt" for s in left)])
    last = tmp_path / "r" / "checkpoints" / "last.pt"
    assert last.read_bytes() == (tmp_path / "r" / "checkpoints" / "step_0000006.pt").read_bytes()


def test_every_bookkeeping_setting_may_differ_on_resume_and_the_first_is_kept():
    """NEUTRAL_SETTINGS (module docstring): log_every, checkpoint_every and keep_checkpoints do not change the weights,
    so a resume may give other values (each alone and all together) and config.json keeps the first ones; a setting
    that does change them (lr) is still refused."""
    from p3d.train.trainer import resume_plan

    first = {"log_every": 10, "checkpoint_every": 50, "keep_checkpoints": 2}
    old = {"train": {"steps": 10, "lr": 1e-3, **first}, "model": "m", "world_size": 1}
    for other in [{"log_every": 1}, {"checkpoint_every": 5}, {"keep_checkpoints": 0},
                  {"log_every": 3, "checkpoint_every": 7, "keep_checkpoints": 9}]:
        record, extension = resume_plan(old, {**old, "train": {**old["train"], **other}})
        assert extension is None and {k: record["train"][k] for k in first} == first, other
    with pytest.raises(InputError, match=r"lr: 0.001 -> 0.002"):
        resume_plan(old, {**old, "train": {**old["train"], "lr": 2e-3, "keep_checkpoints": 9}})


def test_resume_plan_device_index_later_stages_and_extension_entries():
    """resume_plan (module docstring): the GPU index is bookkeeping but the device type is a setting; a later stage's
    stage_steps does not change an earlier stage; an extension records the new steps' epochs and the stage's own
    stage_steps; a shorter steps is refused; a record and a request that both lack world_size (a record from before
    it, compared as such) agree."""
    from p3d.train.trainer import resume_plan

    old = {"train": {"steps": 10}, "device": "cuda:0", "stages": ["prior", "main"], "stage": "prior",
           "stage_steps": {"prior": 10, "main": 40}, "epochs": 1.0}
    record, extension = resume_plan(old, {**old, "device": "cuda:1", "stage_steps": {"prior": 10, "main": 50}})
    assert extension is None and record == old  # the first values kept
    with pytest.raises(InputError, match=r"device: cuda -> cpu"):
        resume_plan(old, {**old, "device": "cpu"})
    record, extension = resume_plan(old, {**old, "train": {"steps": 20}, "epochs": 2.0,
                                          "stage_steps": {"prior": 20, "main": 40}})
    assert (extension["steps_from"], extension["steps_to"]) == (10, 20)
    assert record["train"]["steps"] == 20 and record["epochs"] == 2.0 and record["stage_steps"] == {"prior": 20,
                                                                                                    "main": 40}
    with pytest.raises(InputError, match=r"steps: 10 -> 5 \(a run is extended, never shortened\)"):
        resume_plan(old, {**old, "train": {"steps": 5}, "epochs": 0.5, "stage_steps": {"prior": 5, "main": 40}})


def test_a_plain_run_is_continued_and_extended_as_it_was_recorded(tmp_path):
    """continue_without_stop_rule on a run recorded without the rule (stop="steps", no validation: config.json holds
    no stopping fields) records no "stop" either, so the continuation is extended by the same plain settings rather
    than refused as "stop: steps -> (none)"."""
    import json

    from p3d.train.trainer import continue_without_stop_rule

    cfg = TrainConfig(steps=4, batch_size=8, lr=1e-2, checkpoint_every=2, log_every=1, seed=7)
    train(make_model(), Toy(), step_fn, cfg, tmp_path / "src", progress=False)
    (tmp_path / "src" / "final.pt").write_bytes(b"")  # what a finished job writes
    assert continue_without_stop_rule(tmp_path / "src", tmp_path / "out") == 4
    assert "stop" not in json.loads((tmp_path / "out" / "config.json").read_text())["train"]
    longer = TrainConfig(**{**cfg.__dict__, "steps": 6})
    out = train(make_model(), Toy(), step_fn, longer, tmp_path / "out", progress=False)
    assert out["step"] == 6 and out["steps_here"] == 2


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_loss_stops_training_before_the_weights_change(tmp_path, bad):
    """A NaN or infinite loss at step 2 raises FloatingPointError naming the step, before its backward pass and
    update: the last checkpoint holds the finite weights of step 2, not NaN weights that every later step would
    train on silently."""
    def diverging(model, batch, gen):
        loss, logs = step_fn(model, batch, gen)
        step = diverging.calls
        diverging.calls += 1
        return (loss * bad if step == 2 else loss), logs

    diverging.calls = 0
    cfg = TrainConfig(steps=6, batch_size=8, lr=1e-2, checkpoint_every=1, log_every=1, seed=7)
    with pytest.raises(FloatingPointError, match="at step 2"):
        train(make_model(), Toy(), diverging, cfg, tmp_path / "run", progress=False)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2 and all(torch.isfinite(v).all() for v in ckpt["model"].values())


@pytest.mark.parametrize("field, value, message", [
    ("log_every", 0, "log_every: expected an integer >= 1, got 0"),
    ("checkpoint_every", 0, "checkpoint_every: expected an integer >= 1, got 0"),
    ("batch_size", 0, "batch_size: expected an integer >= 1, got 0"),
    ("steps", -1, "steps: expected an integer >= 0, got -1"),
    ("keep_checkpoints", -1, "keep_checkpoints: expected an integer >= 0, got -1"),
    ("eval_every", 2.5, "eval_every: expected an integer >= 0, got 2.5"),
    ("min_rel_improvement", float("inf"), "min_rel_improvement: expected a finite fraction, got inf"),
])
def test_train_refuses_bookkeeping_settings_that_would_fail_mid_run(tmp_path, field, value, message):
    """``train`` called directly (not through ``p3d train``, whose options check these): a logging or checkpoint
    interval of 0 raised ZeroDivisionError at the first step, after the run folder was written; now refused before,
    with one line and nothing written."""
    settings = {"steps": 4, "batch_size": 8, "lr": 1e-2, "checkpoint_every": 2, "log_every": 1, field: value}
    if field == "min_rel_improvement":
        settings.update(stop="plateau", eval_every=1)
    with pytest.raises(InputError, match=message):
        train(make_model(), Toy(), step_fn, TrainConfig(**settings), tmp_path / "run", progress=False,
              validate=(lambda model, step: {"val": 1.0}) if settings.get("eval_every") else None)
    assert not (tmp_path / "run").exists()


def test_train_takes_numpy_integer_settings(tmp_path):
    """A count computed with numpy (``np.int64``) is an integer setting like a Python int (``p3d.errors.whole_number``,
    as the other integer options): it trained to an OverflowError in the step's seed mixing before."""
    import numpy as np

    cfg = TrainConfig(steps=np.int64(2), batch_size=np.int64(8), lr=1e-2, checkpoint_every=np.int64(2), log_every=1,
                      seed=np.int64(7))
    out = train(make_model(), Toy(), step_fn, cfg, tmp_path / "run", progress=False)
    plain = train(make_model(), Toy(), step_fn, TrainConfig(steps=2, batch_size=8, lr=1e-2, checkpoint_every=2,
                                                            log_every=1, seed=7), tmp_path / "plain", progress=False)
    assert out["step"] == 2 and out["loss"] == plain["loss"]
