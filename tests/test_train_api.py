"""p3d.train.api and p3d train: a run folder reuses/resumes/extends its own run and refuses other settings; byte-identical
outputs of identical runs; critics by name."""
import json

import pytest

from p3d.errors import InputError
from p3d.models.speech_mesh import load_critic
from p3d.train import api
from tiny_corpus import write_tiny_corpus


@pytest.fixture(scope="module")
def lrs3(tmp_path_factory):
    return write_tiny_corpus(tmp_path_factory.mktemp("lrs3"), identities={"train": 4, "test": 2},
                             clips_per_identity=2, seconds=1.5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test


def test_fit_reuses_finished_run_without_training(lrs3, tmp_path, monkeypatch):
    out = tmp_path / "syncnet3d"
    final = api.fit("syncnet3d", "smoke", lrs3, out, steps=3)
    assert final == out / "final.pt" and final.exists()
    assert json.loads((out / "request.json").read_text())["options"] == {"steps": 3}
    stamp = final.stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("a finished run must not be rebuilt")

    monkeypatch.setattr("p3d.train.critics.build", boom)
    assert api.fit("syncnet3d", "smoke", lrs3, out, steps=3) == final
    assert final.stat().st_mtime_ns == stamp


def test_fit_refuses_another_request_and_force_retrains(lrs3, tmp_path):
    out = tmp_path / "run"
    api.fit("syncnet3d", "smoke", lrs3, out, steps=2)
    with pytest.raises(InputError, match=r"seed: 0 \(default\) -> 1"):
        api.fit("syncnet3d", "smoke", lrs3, out, steps=2, seed=1)
    with pytest.raises(InputError, match="kind: syncnet3d -> no2d"):
        api.fit("no2d", "smoke", lrs3, out, steps=2)
    api.fit("syncnet3d", "smoke", lrs3, out, steps=3, seed=1, force=True)
    assert json.loads((out / "request.json").read_text())["options"] == {"seed": 1, "steps": 3}
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert rows[-1].startswith("3,")
    assert "extensions" not in json.loads((out / "config.json").read_text())


def test_evaluator_pipeline_shares_no_identity_seed_or_weights_with_any_critic(lrs3, tmp_path):
    """The PLRS evaluator trains its own stage 1 and stage 2 on the other identity half, with its own seed."""
    import torch

    critics = {c: api.train_critic(c, "smoke", lrs3, tmp_path, steps=2) for c in ("ours", "syncnet3d", "no2d")}
    evaluator = api.train_evaluator("smoke", lrs3, tmp_path, steps=2)
    cfg = {name: json.loads((tmp_path / name / "config.json").read_text())
           for name in ("stage1", "ours", "syncnet3d", "no2d", "stage1_evaluator", "evaluator")}
    critic_runs, evaluator_runs = ("stage1", "ours", "syncnet3d", "no2d"), ("stage1_evaluator", "evaluator")
    evaluator_ids = set(cfg["evaluator"]["identity_list"])
    assert evaluator_ids and set(cfg["stage1_evaluator"]["identity_list"]) == evaluator_ids
    for c in critic_runs:  # stage 1 included: the evaluator's half is never seen by a critic
        assert cfg[c]["identities"] == api.CRITIC_IDENTITIES and cfg[c]["identity_list"], c
        assert evaluator_ids.isdisjoint(cfg[c]["identity_list"]), c
        for e in evaluator_runs:
            assert cfg[c]["train"]["seed"] != cfg[e]["train"]["seed"], (c, e)
    # the full preset's other critic pipelines (seed 1000 k) never take the evaluator's seed either
    from p3d.experiments import spec_for
    from p3d.experiments.runs import _seed_option

    pipelines = spec_for("full").critic_pipelines
    assert api.EVALUATOR_SEED not in {_seed_option(k) for k in range(1, max(pipelines, 4))}
    assert {cfg[e]["train"]["seed"] for e in evaluator_runs} == {api.EVALUATOR_SEED}
    # no weight file shared: its own stage-1 checkpoint, another speech encoder than the critic's
    assert cfg["evaluator"]["stage1"] == str(tmp_path / "stage1_evaluator" / "final.pt")
    assert cfg["ours"]["stage1"] == str(tmp_path / "stage1" / "final.pt")
    ours_speech = load_critic(critics["ours"]).speech_encoder.state_dict()
    eval_speech = load_critic(evaluator).speech_encoder.state_dict()
    assert ours_speech.keys() == eval_speech.keys()
    assert not any(torch.equal(ours_speech[k], eval_speech[k]) for k in ours_speech if ours_speech[k].numel() > 1)
    # config.json records what it shares with the critics: nothing
    for e in evaluator_runs:
        shared = cfg[e]["shared_with_critics"]
        assert shared["shared_identities"] == shared["shared_seeds"] == shared["shared_weights"] == []
        assert shared["evaluator_identity_list"] == cfg["evaluator"]["identity_list"]
        assert shared["critic_identity_list"] == cfg["ours"]["identity_list"]
    assert load_critic(critics["ours"]).n_vertices == load_critic(evaluator).n_vertices
    # a finished pipeline is reused as it is
    stamp = evaluator.stat().st_mtime_ns
    assert api.train_evaluator("smoke", lrs3, tmp_path, steps=2) == evaluator and evaluator.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("option", ["seed", "identities", "stage1"])
def test_evaluator_refuses_a_seed_identities_or_stage1_of_its_own_choosing(lrs3, tmp_path, option):
    with pytest.raises(InputError, match=f"{option} cannot be set"):
        api.train_evaluator("smoke", lrs3, tmp_path, **{option: "half1" if option == "identities" else 0})
    assert not tmp_path.joinpath("stage1_evaluator").exists()


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
def test_evaluator_recipe_seed_is_no_critic_pipelines(preset):
    from p3d.train.critics import recipe

    assert recipe("evaluator", preset).seed == api.EVALUATOR_SEED  # stage 2 keeps the recipe's seed
    assert recipe("evaluator", preset).identities == api.EVALUATOR_IDENTITIES
    assert not api._is_critic_seed(api.EVALUATOR_SEED, preset)
    assert api._is_critic_seed(0, preset) and api._is_critic_seed(2000, preset)


def test_train_critic_rejects_unknown_name(lrs3, tmp_path):
    with pytest.raises(InputError, match="unknown critic"):
        api.train_critic("clip", "smoke", lrs3, tmp_path)


def _cli(lrs3, out, *extra):
    from p3d.cli import main

    return main(["train", "syncnet3d", "--preset", "smoke", "--data", str(lrs3), "--out", str(out), "--no-progress",
                 *extra])


def test_cli_refuses_other_settings_and_keeps_config(lrs3, tmp_path, capsys):
    out = tmp_path / "run"
    assert _cli(lrs3, out, "--steps", "2", "--seed", "3", "--lr", "0.001") == 0
    before = (out / "config.json").read_bytes(), (out / "request.json").read_bytes()
    capsys.readouterr()
    assert _cli(lrs3, out, "--steps", "2", "--seed", "4", "--lr", "0.002") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "seed: 3 -> 4" in err and "lr: 0.001 -> 0.002" in err
    assert ((out / "config.json").read_bytes(), (out / "request.json").read_bytes()) == before
    # the same refusal from Python, and for another kind
    with pytest.raises(InputError, match="seed: 3 -> 4"):
        api.fit("syncnet3d", "smoke", lrs3, out, steps=2, seed=4, lr=0.001)
    assert _cli(lrs3, out, "--steps", "2", "--seed", "3", "--lr", "0.001", "--batch-size", "8") == 2
    assert "batch_size: 32 (default) -> 8" in capsys.readouterr().err
    # the same settings: nothing to do (neutral options may differ)
    stamp = (out / "final.pt").stat().st_mtime_ns
    assert _cli(lrs3, out, "--steps", "2", "--seed", "3", "--lr", "0.001", "--workers", "2") == 0
    assert (out / "final.pt").stat().st_mtime_ns == stamp


def test_trainer_refuses_settings_the_request_did_not_show(lrs3, tmp_path, capsys):
    """A run folder without request.json (or a resolved setting that differs) is guarded by config.json."""
    out = tmp_path / "run"
    assert _cli(lrs3, out, "--steps", "2") == 0
    (out / "request.json").unlink()
    before = (out / "config.json").read_bytes()
    capsys.readouterr()
    assert _cli(lrs3, out, "--steps", "2", "--seed", "5") == 2
    assert "seed: 0 -> 5" in capsys.readouterr().err
    assert (out / "config.json").read_bytes() == before
    assert _cli(lrs3, out, "--steps", "1") == 2  # never shortened
    assert "steps: 2 -> 1" in capsys.readouterr().err


def test_longer_steps_extend_and_equal_a_run_of_that_length(lrs3, tmp_path):
    ext, direct = tmp_path / "extended", tmp_path / "direct"
    assert _cli(lrs3, ext, "--steps", "2", "--checkpoint-every", "1") == 0
    first = json.loads((ext / "config.json").read_text())
    assert _cli(lrs3, ext, "--steps", "4", "--checkpoint-every", "1") == 0
    cfg = json.loads((ext / "config.json").read_text())
    assert cfg["train"]["steps"] == 4 and [(e["steps_from"], e["steps_to"]) for e in cfg["extensions"]] == [(2, 4)]
    assert cfg["epochs"] == 2 * first["epochs"]
    assert {k: v for k, v in cfg.items() if k not in ("train", "epochs", "extensions")} == \
        {k: v for k, v in first.items() if k not in ("train", "epochs")}
    assert json.loads((ext / "request.json").read_text())["options"]["steps"] == 4
    # byte-identical outputs: two identical runs, and the extended run against a 4-step run from scratch
    assert _cli(lrs3, direct, "--steps", "4", "--checkpoint-every", "1") == 0
    for name in ("final.pt", "checkpoints/last.pt", "checkpoints/step_0000004.pt"):
        assert (ext / name).read_bytes() == (direct / name).read_bytes(), name
    # the extended run also logged its former last step (2)
    assert set((direct / "metrics.csv").read_text().splitlines()) <= set((ext / "metrics.csv").read_text().splitlines())


def test_a_claim_whose_data_load_fails_is_taken_back(lrs3, tmp_path, capsys, monkeypatch):
    """A refused --data must not leave a request.json behind that refuses the corrected command into the same
    folder ("holds a run with other settings"); a folder in which training has begun is kept for resuming."""
    out = tmp_path / "run"
    assert _cli(tmp_path / "missing", out, "--steps", "2") == 2
    assert "corpus folder not found" in capsys.readouterr().err and not out.exists()
    assert _cli(lrs3, out, "--steps", "2") == 0 and (out / "final.pt").exists()
    # from Python, into a folder that existed (empty): the folder stays, empty
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="corpus folder not found"):
        api.fit("syncnet3d", "smoke", tmp_path / "missing", empty, steps=2)
    assert empty.is_dir() and not any(empty.iterdir())
    # an existing request is not this call's claim: a failing call with the same request leaves it
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "request.json").write_text(json.dumps(api._request("syncnet3d", "smoke", lrs3, {"steps": 2})))

    def fails(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("p3d.train.trainer.train", fails)
    with pytest.raises(KeyboardInterrupt):
        api.fit("syncnet3d", "smoke", lrs3, kept, steps=2)
    assert sorted(p.name for p in kept.iterdir()) == ["data.json", "request.json"]  # the data recorded, kept

    # training that has begun (the trainer wrote into the folder) keeps the folder and its claim, to resume
    def begins_then_fails(model, data, step_fn, cfg, run_dir, **kwargs):
        (run_dir / "config.json").write_text("{}")
        raise KeyboardInterrupt

    begun = tmp_path / "begun"
    monkeypatch.setattr("p3d.train.trainer.train", begins_then_fails)
    with pytest.raises(KeyboardInterrupt):
        api.fit("syncnet3d", "smoke", lrs3, begun, steps=2)
    assert sorted(p.name for p in begun.iterdir()) == ["config.json", "data.json", "request.json"]


def test_a_forced_claim_whose_data_load_fails_is_taken_back(lrs3, tmp_path):
    """force=True empties the folder and claims it anew (claimed_run_dir): when the data load then fails, that claim
    is this call's and is taken back with the folder (remove_folder: not existed or force), though a request.json was
    there before, so the corrected command into the same folder is not refused as "a run with other settings"."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "request.json").write_text(json.dumps(api._request("syncnet3d", "smoke", lrs3, {"steps": 2})))
    (out / "metrics.csv").write_text("step,loss\n")  # a former run's output, emptied by force
    with pytest.raises(InputError, match="corpus folder not found"):
        api.fit("syncnet3d", "smoke", tmp_path / "missing", out, steps=2, seed=1, force=True)
    assert not out.exists()
    assert api.fit("syncnet3d", "smoke", lrs3, out, steps=2, seed=1).is_file()  # the corrected command
    assert json.loads((out / "request.json").read_text())["options"] == {"seed": 1, "steps": 2}


@pytest.mark.parametrize("kind", ["syncnet3d", "stage1"])
def test_options_given_at_the_full_preset_override_its_default_stopping_rule_and_cap(lrs3, tmp_path, monkeypatch,
                                                                                      kind):
    """``full`` trains the ``cpu`` models with its stopping rule and cap as *default* options (fit's docstring,
    p3d.registry.training_defaults): options given explicitly are what the job is built with; the ones left out
    take the preset's rule and cap."""
    from p3d import registry

    full = registry.preset("full")
    built = {}

    class Built(Exception):
        pass

    def build(kind, preset, data, progress=False, **options):
        built.update(options, preset=preset)
        raise Built

    monkeypatch.setattr("p3d.train.critics.build", build)
    with pytest.raises(Built):
        api.fit(kind, "full", lrs3, tmp_path / "given", steps=2, stop="steps")
    assert built["preset"] == full.models and (built["steps"], built["stop"]) == (2, "steps")
    built.clear()
    with pytest.raises(Built):
        api.fit(kind, "full", lrs3, tmp_path / "left_out", seed=3)
    cap = full.stage1_cap if kind == "stage1" and full.stage1_cap is not None else full.critic_cap
    assert (built["steps"], built["stop"], built["seed"]) == (cap, full.stop, 3)


def test_a_run_trained_before_requests_were_recorded_gets_one_and_none_is_overwritten(lrs3, tmp_path):
    """record_request: a folder whose run had no request.json (trained before requests were recorded) gets the
    request of the call that finishes it, as fit spells it (_request); an existing request.json is never
    overwritten."""
    out = tmp_path / "run"
    api.fit("syncnet3d", "smoke", lrs3, out, steps=2, checkpoint_every=1)
    (out / "request.json").unlink()
    (out / "final.pt").unlink()  # interrupted after its last checkpoint, before requests were recorded
    assert api.fit("syncnet3d", "smoke", lrs3, out, steps=2, checkpoint_every=1).is_file()
    expected = api._request("syncnet3d", "smoke", lrs3, {"steps": 2, "checkpoint_every": 1})
    assert json.loads((out / "request.json").read_text()) == expected
    before = (out / "request.json").read_bytes()
    api.record_request(out, api._request("syncnet3d", "smoke", lrs3, {"steps": 5, "seed": 1}))
    assert (out / "request.json").read_bytes() == before


def test_a_finished_run_without_a_request_gets_one_when_reused(lrs3, tmp_path, monkeypatch):
    """A finished folder trained before requests were recorded: the trainer accepted the request (its config.json,
    nothing to train) and fit returned early, before record_request, so it never got its request.json and every
    later call loaded the data again. Another request is still refused, and leaves no request.json behind."""
    out, cli_out = tmp_path / "run", tmp_path / "cli_run"
    api.fit("syncnet3d", "smoke", lrs3, out, steps=2)
    assert _cli(lrs3, cli_out, "--steps", "2") == 0
    for folder in (out, cli_out):
        (folder / "request.json").unlink()
    with pytest.raises(InputError, match="seed: 0 -> 5"):
        api.fit("syncnet3d", "smoke", lrs3, out, steps=2, seed=5)
    assert _cli(lrs3, cli_out, "--steps", "2", "--seed", "5") == 2
    assert not (out / "request.json").exists() and not (cli_out / "request.json").exists()
    stamp = (out / "final.pt").stat().st_mtime_ns
    assert api.fit("syncnet3d", "smoke", lrs3, out, steps=2) == out / "final.pt"
    assert _cli(lrs3, cli_out, "--steps", "2") == 0
    assert (out / "final.pt").stat().st_mtime_ns == stamp
    expected = api._request("syncnet3d", "smoke", lrs3, {"steps": 2})
    assert json.loads((out / "request.json").read_text()) == expected
    assert json.loads((cli_out / "request.json").read_text())["options"] == expected["options"]

    def boom(*a, **k):
        raise AssertionError("a finished run with its request.json must not be rebuilt")

    monkeypatch.setattr("p3d.train.critics.build", boom)
    assert api.fit("syncnet3d", "smoke", lrs3, out, steps=2) == out / "final.pt"


def test_an_out_folder_under_a_file_is_one_line(lrs3, tmp_path, capsys):
    """Was a NotADirectoryError traceback."""
    (tmp_path / "afile").write_text("x")
    assert _cli(lrs3, tmp_path / "afile" / "run", "--steps", "1") == 2
    assert capsys.readouterr().err.strip() == (f"p3d train: error: --out {tmp_path / 'afile' / 'run'}: "
                                               f"{tmp_path / 'afile'} is a file, so the output folder cannot be created")


def test_a_cache_dir_that_is_a_file_is_one_line_before_training(lrs3, tmp_path, capsys):
    """``--cache-dir FILE`` was a FileExistsError traceback (exit 1) from the speech-feature cache's first write."""
    (tmp_path / "afile").write_text("x")
    assert _cli(lrs3, tmp_path / "run", "--steps", "1", "--cache-dir", str(tmp_path / "afile")) == 2
    assert capsys.readouterr().err.strip() == (f"p3d train: error: --cache-dir {tmp_path / 'afile'}: exists and is "
                                               f"not a folder; give a folder path")


def test_a_run_whose_corpus_was_regenerated_at_the_same_path_is_refused(tmp_path, capsys):
    """The run would have been reused, resumed or extended on other data without a word (data.json records a
    fingerprint of each data folder: its meta.json, else its files' names and sizes); the same data written again
    is accepted, and a run folder from before the record gets one."""
    data = write_tiny_corpus(tmp_path / "lrs3", identities={"train": 4, "test": 2}, clips_per_identity=2, seconds=1.5)
    out = tmp_path / "run"
    assert _cli(data, out, "--steps", "1") == 0
    key = str(data.resolve())
    assert json.loads((out / "data.json").read_text())[key] == api.data_fingerprint({"data": key})[key]
    write_tiny_corpus(data, identities={"train": 4, "test": 2}, clips_per_identity=2, seconds=1.5)  # the same again
    assert _cli(data, out, "--steps", "2") == 0
    capsys.readouterr()
    write_tiny_corpus(data, identities={"train": 4, "test": 2}, clips_per_identity=2, seconds=2.0)  # other clips
    for steps in ("2", "3"):  # the finished run reused, or extended: both refused
        assert _cli(data, out, "--steps", steps) == 2
        assert "trained on other data at the same path" in capsys.readouterr().err
    (out / "data.json").unlink()  # a run from before the record: accepted, and recorded
    assert _cli(data, out, "--steps", "2") == 0 and (out / "data.json").is_file()


@pytest.mark.parametrize("batch_size", [None, 4, 16])
def test_an_epoch_recipe_trains_its_epochs_at_any_batch_size(lrs3, monkeypatch, batch_size):
    """The paper preset's critic recipes are epochs; steps came from the recipe's batch even with --batch-size set,
    so a batch half the recipe's trained half its epochs (recorded honestly as such)."""
    import dataclasses

    from p3d.train import critics

    epoch_recipe = dataclasses.replace(critics.recipe("syncnet3d", "smoke"), steps=None, epochs=2.0, batch_size=8)
    monkeypatch.setitem(critics.RECIPES["smoke"], "syncnet3d", epoch_recipe)
    job = critics.build("syncnet3d", "smoke", lrs3, batch_size=batch_size)
    n = len(job.data)
    assert job.cfg.batch_size == (batch_size or 8)
    assert job.cfg.steps == max(1, -(-2 * n // job.cfg.batch_size))
    assert job.extra_config["epochs"] == pytest.approx(2.0, rel=job.cfg.batch_size / n)


def test_a_run_built_on_a_checkpoint_retrained_at_the_same_path_is_refused(lrs3, tmp_path, capsys):
    """Stage 2 on a stage 1 that was extended since, at the same path: the finished stage 2 was reused, built on
    weights that no longer exist (data.json records each upstream checkpoint's SHA-256); a record without them (a
    run from before) adopts them."""
    from p3d.cli import main
    from p3d.provenance import file_sha256

    stage1, stage2 = tmp_path / "stage1", tmp_path / "ours"
    api.fit("stage1", "smoke", lrs3, stage1, steps=2)
    ours = ["train", "stage2", "--preset", "smoke", "--data", str(lrs3), "--stage1", str(stage1 / "final.pt"),
            "--out", str(stage2), "--steps", "2", "--no-progress"]
    assert main(ours) == 0
    record = json.loads((stage2 / "data.json").read_text())
    assert record["checkpoint:stage1"] == file_sha256(stage1 / "final.pt")
    assert main(ours) == 0  # the same stage 1: reused
    del record["checkpoint:stage1"]
    (stage2 / "data.json").write_text(json.dumps(record))
    assert main(ours) == 0 and "checkpoint:stage1" in json.loads((stage2 / "data.json").read_text())  # adopted
    api.fit("stage1", "smoke", lrs3, stage1, steps=3)  # extended in place: other weights at the same path
    capsys.readouterr()
    assert main(ours) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "built on another checkpoint at the same path (stage1: retrained" in err[0]


def test_a_critic_run_of_another_process_count_is_another_run(lrs3, tmp_path, monkeypatch, capsys):
    """A critic's request had no world_size (the talkers' had): a two-process p3d train into the folder of a
    one-process run reused its weights ("nothing to do"); now the process count is part of the request. And only
    the main process writes final.pt."""
    from p3d.train.request import run_request

    assert "world_size" not in run_request("syncnet3d", "smoke", lrs3, {"steps": 2})["options"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert run_request("syncnet3d", "smoke", lrs3, {"steps": 2})["options"]["world_size"] == 2
    monkeypatch.delenv("WORLD_SIZE")
    out = tmp_path / "run"
    assert _cli(lrs3, out, "--steps", "1") == 0
    monkeypatch.setenv("WORLD_SIZE", "2")
    capsys.readouterr()
    with pytest.raises(InputError, match=r"world_size: \(default\) -> 2"):
        api.claim_run_dir(out, api._request("syncnet3d", "smoke", lrs3, {"steps": 1}))
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("RANK", "1")  # a rank other than the main one (its trainer runs as one process here)
    path = api.fit("syncnet3d", "smoke", lrs3, tmp_path / "other", steps=1)
    assert path == tmp_path / "other" / "final.pt" and not path.exists()


def test_a_run_trained_with_the_codes_earlier_recipe_is_refused(lrs3, tmp_path, monkeypatch, capsys):
    """A finished run was reused after the code's recipe of its kind and preset changed (steps, learning rate, ...:
    the request holds only the options given), so the tables described the old recipe under the new commit;
    data.json now records a fingerprint of the recipe, and a record without one adopts it."""
    import dataclasses

    from p3d.train import critics

    out = tmp_path / "run"
    assert _cli(lrs3, out) == 0
    record = json.loads((out / "data.json").read_text())
    assert record["recipe"] == api.recipe_fingerprint(api._request("syncnet3d", "smoke", lrs3, {}))
    assert _cli(lrs3, out) == 0  # the same recipe: reused
    del record["recipe"], record["settings"]
    (out / "data.json").write_text(json.dumps(record))
    assert _cli(lrs3, out) == 0
    assert {"recipe", "settings"} <= set(json.loads((out / "data.json").read_text()))  # adopted
    before = critics.recipe("syncnet3d", "smoke")
    monkeypatch.setitem(critics.RECIPES["smoke"], "syncnet3d", dataclasses.replace(before, lr=before.lr * 2))
    capsys.readouterr()
    assert _cli(lrs3, out) == 2
    assert "trained with other settings of the code (recipe.main.lr: 0.001 -> 0.002" in capsys.readouterr().err
    record = json.loads((out / "data.json").read_text())
    del record["settings"]  # a record from before the settings were recorded: its fingerprint refuses it
    (out / "data.json").write_text(json.dumps(record))
    assert _cli(lrs3, out) == 2
    assert "trained with other defaults of this kind and preset" in capsys.readouterr().err
    # a talker's recipe: every stage of its model at the model preset (the grid's full runs train cpu models)
    from p3d.train import talker

    full = {"kind": "talker", "preset": "full", "model_preset": "cpu", "model": "codetalker"}
    assert api.recipe_fingerprint(full) == api.recipe_fingerprint({"kind": "talker", "preset": "cpu",
                                                                    "options": {"model": "codetalker"}})
    fingerprint = api.recipe_fingerprint(full)
    vqvae = talker.RECIPES["cpu"]["codetalker"]["vqvae"]
    monkeypatch.setitem(talker.RECIPES["cpu"]["codetalker"], "vqvae", talker.TalkerRecipe(**{
        f.name: getattr(vqvae, f.name) for f in dataclasses.fields(vqvae) if f.name != "weight_decay"}))
    assert api.recipe_fingerprint(full) == fingerprint  # a field at its default (as a new field is): no change
    monkeypatch.setitem(talker.RECIPES["cpu"]["codetalker"], "vqvae", dataclasses.replace(vqvae, steps=999))
    assert api.recipe_fingerprint(full) != fingerprint
    assert api.recipe_fingerprint({"kind": "talker", "preset": "nope", "model": "selftalk"}) is None


def test_a_run_trained_with_another_architecture_of_its_preset_is_refused(lrs3, tmp_path, monkeypatch, capsys):
    """A finished run keeps the architecture in its checkpoint, so a run trained before a preset's width or depth
    changed was reused as the preset's model of today; data.json now records a fingerprint of the preset's config,
    and a record without one adopts it."""
    import dataclasses

    from p3d.models.syncnet3d import SyncNet3DConfig

    out = tmp_path / "run"
    assert _cli(lrs3, out) == 0
    record = json.loads((out / "data.json").read_text())
    assert record["architecture"] == api.architecture_fingerprint(api._request("syncnet3d", "smoke", lrs3, {}))
    del record["architecture"], record["settings"]
    (out / "data.json").write_text(json.dumps(record))
    assert _cli(lrs3, out) == 0
    assert {"architecture", "settings"} <= set(json.loads((out / "data.json").read_text()))  # adopted
    presets = SyncNet3DConfig.presets()
    wider = {**presets, "smoke": dataclasses.replace(presets["smoke"], embed_dim=2 * presets["smoke"].embed_dim)}
    monkeypatch.setattr(SyncNet3DConfig, "presets", staticmethod(lambda: wider))
    capsys.readouterr()
    assert _cli(lrs3, out) == 2
    assert "trained with other settings of the code (architecture.embed_dim: 32 -> 64" in capsys.readouterr().err
    record = json.loads((out / "data.json").read_text())
    del record["settings"]  # a record from before the settings were recorded: its fingerprint refuses it
    (out / "data.json").write_text(json.dumps(record))
    assert _cli(lrs3, out) == 2
    assert "trained with another architecture of this model preset" in capsys.readouterr().err
    # a talker's: its model's preset config, at the model preset (the grid's full runs train cpu models)
    full = {"kind": "talker", "preset": "full", "model_preset": "cpu", "model": "faceformer"}
    assert api.architecture_fingerprint(full) == api.architecture_fingerprint(
        {"kind": "talker", "preset": "cpu", "options": {"model": "faceformer"}})
    assert api.architecture_fingerprint(full) != api.architecture_fingerprint({**full, "model_preset": "smoke"})
    assert api.architecture_fingerprint({"kind": "finetune", "preset": "smoke"}) is None  # its init's


def test_a_run_trained_before_a_config_default_changed_is_refused_naming_it(lrs3, tmp_path, monkeypatch,
                                                                           change_default):
    """The recipe and architecture fingerprints leave out fields at their dataclass defaults (so that a new field
    changes nothing), so a changed default of a config class went unseen: a finished run was reused under today's
    defaults (3D SyncNet's dilations, its InfoNCE temperature, the Adam betas a critic's trainer takes from
    TrainConfig), and an unfinished one was refused only after its data were loaded, as "config.dilations". data.json
    now records each setting by name, defaults included: the claim refuses the run naming the setting; a setting the
    record lacks (a field added since, at its default) is adopted, and so are all of them by a record from before."""
    from p3d.models.syncnet3d import SyncNet3DConfig
    from p3d.train.trainer import TrainConfig

    done = api.fit("syncnet3d", "smoke", lrs3, tmp_path / "done", steps=2)
    unfinished = tmp_path / "unfinished"
    api.fit("syncnet3d", "smoke", lrs3, unfinished, steps=2)
    (unfinished / "final.pt").unlink()  # a run to resume (from its last checkpoint)

    def refused(*args, **kwargs):
        raise AssertionError("refused before its data are loaded")

    monkeypatch.setattr("p3d.train.critics.build", refused)
    for cls, name, new, shown in ((SyncNet3DConfig, "dilations", (1, 2, 3), "[1, 2, 4] -> [1, 2, 3]"),
                                  (SyncNet3DConfig, "temperature", 0.1, "0.07 -> 0.1"),
                                  (TrainConfig, "betas", (0.9, 0.999), "[0.9, 0.95] -> [0.9, 0.999]")):
        old = cls.__dataclass_fields__[name].default
        change_default(cls, name, new)
        prefix = "train" if cls is TrainConfig else "architecture"
        for out in (done.parent, unfinished):
            with pytest.raises(InputError, match=rf"trained with other settings of the code \({prefix}\.{name}: "
                                                 rf"{shown.replace('[', '.').replace(']', '.')}: a preset or a config "
                                                 rf"default changed since\)"):
                api.fit("syncnet3d", "smoke", lrs3, out, steps=2)
        change_default(cls, name, old)
        assert api.fit("syncnet3d", "smoke", lrs3, done.parent, steps=2) == done  # today's defaults again: reused
    record = json.loads((done.parent / "data.json").read_text())
    assert record["settings"]["architecture.dilations"] == [1, 2, 4] and record["settings"]["train.grad_clip"] == 1.0
    del record["settings"]["architecture.n_mels"]  # a field added since the run was claimed
    (done.parent / "data.json").write_text(json.dumps(record))
    assert api.fit("syncnet3d", "smoke", lrs3, done.parent, steps=2) == done
    assert json.loads((done.parent / "data.json").read_text())["settings"]["architecture.n_mels"] == 128
    del record["settings"]  # a record from before the settings were recorded
    (done.parent / "data.json").write_text(json.dumps(record))
    assert api.fit("syncnet3d", "smoke", lrs3, done.parent, steps=2) == done
    assert json.loads((done.parent / "data.json").read_text())["settings"] == api.code_settings(
        api._request("syncnet3d", "smoke", lrs3, {"steps": 2}))


def test_a_changed_preset_kind_or_data_is_named_as_such(lrs3, tmp_path):
    """The data/recipe record was compared before the request, so another --preset or kind was refused as "trained
    with other defaults (the code's recipe ... changed since)" and another --data as "regenerated or replaced
    since"; and a run whose only option was --steps, re-run without it, as "options: (default) -> {}". The request
    is compared first now, and an omitted --steps goes to the trainer's check as with any other options."""
    other = write_tiny_corpus(tmp_path / "other", identities={"train": 2, "test": 1}, clips_per_identity=1,
                              seconds=1.0)
    out = tmp_path / "run"
    assert api.claim_run_dir(out, api._request("stage1", "smoke", lrs3, {"steps": 3})) is False
    with pytest.raises(InputError, match="preset: smoke -> cpu"):
        api.claim_run_dir(out, api._request("stage1", "cpu", lrs3, {"steps": 3}))
    with pytest.raises(InputError, match="kind: stage1 -> no2d"):
        api.claim_run_dir(out, api._request("no2d", "smoke", lrs3, {"steps": 3}))
    with pytest.raises(InputError, match=r"data: .*lrs3.* -> .*other"):
        api.claim_run_dir(out, api._request("stage1", "smoke", other, {"steps": 3}))
    assert api.claim_run_dir(out, api._request("stage1", "smoke", lrs3, {})) is False


def test_a_run_another_process_finished_meanwhile_is_not_written_again(lrs3, tmp_path, monkeypatch):
    """Two processes asked for one run: the second claims the folder before the first has finished, waits for its
    lock, resumes with nothing left to train, and wrote final.pt again (a new file stamp: every cache keyed by it
    computed again). It now leaves the first process' final.pt as it is."""
    out = tmp_path / "run"
    path = api.fit("syncnet3d", "smoke", lrs3, out, steps=2)
    before = path.stat()
    monkeypatch.setattr(api, "claim_run_dir", lambda *a, **k: False)  # what the second saw before the first ended
    assert api.fit("syncnet3d", "smoke", lrs3, out, steps=2) == path
    assert _cli(lrs3, out, "--steps", "2") == 0  # p3d train likewise
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    path.unlink()  # a run interrupted after its last checkpoint, before final.pt: written
    assert api.fit("syncnet3d", "smoke", lrs3, out, steps=2) == path and path.is_file()


#: Every option of a smoke syncnet3d run given at its recipe's (or the stopping rule's) default value.
SYNCNET3D_SMOKE_DEFAULTS = ("--lr", "0.001", "--seed", "0", "--batch-size", "32", "--identities", "all",
                            "--stop", "steps", "--eval-every", "0", "--patience", "5")


def test_an_option_given_at_its_default_resumes_and_a_real_change_is_refused_before_the_data(lrs3, tmp_path, capsys,
                                                                                          monkeypatch):
    """A run started without --lr and resumed with --lr 0.001, the recipe's value, was refused as "lr: (default) ->
    0.001" (likewise --seed 0, --batch-size 32, --identities all, --stop steps, ...): the request's options were
    compared as given, not resolved. An option at its default now resumes (the same weights as the run without
    it), or reuses the finished run; another value is still refused with one line, before any data is loaded."""
    import shutil

    out = tmp_path / "run"
    assert _cli(lrs3, out, "--steps", "2", "--checkpoint-every", "1") == 0
    whole = (out / "final.pt").read_bytes()
    (out / "final.pt").unlink()  # interrupted after step 1
    shutil.copyfile(out / "checkpoints" / "step_0000001.pt", out / "checkpoints" / "last.pt")
    assert _cli(lrs3, out, "--steps", "2", "--checkpoint-every", "1", *SYNCNET3D_SMOKE_DEFAULTS) == 0
    assert (out / "final.pt").read_bytes() == whole
    assert json.loads((out / "request.json").read_text())["options"] == {"steps": 2, "checkpoint_every": 1}  # as first given

    def boom(*a, **k):
        raise AssertionError("the data must not be loaded")

    monkeypatch.setattr("p3d.windows.open_corpus", boom)  # what build() opens the corpus with
    stamp = (out / "final.pt").stat().st_mtime_ns
    assert _cli(lrs3, out, "--steps", "2", *SYNCNET3D_SMOKE_DEFAULTS) == 0  # finished: nothing to do
    assert api.fit("syncnet3d", "smoke", lrs3, out, steps=2, lr=1e-3, seed=0, batch_size=32) == out / "final.pt"
    assert (out / "final.pt").stat().st_mtime_ns == stamp
    capsys.readouterr()
    for option, value, shown in (("--lr", "0.002", "lr: 0.001 (default) -> 0.002"), ("--seed", "1", "seed: 0 (default) -> 1"),
                                 ("--identities", "half1", "identities: all (default) -> half1"),
                                 ("--stop", "plateau", "stop: (default) -> plateau")):
        assert _cli(lrs3, out, "--steps", "2", option, value) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and shown in err, err
    # and the other way round: a run whose request gave the defaults, asked for without them
    request = json.loads((out / "request.json").read_text())
    request["options"].update(lr=0.001, seed=0, batch_size=32, identities="all", stop="steps")
    (out / "request.json").write_text(json.dumps(request))
    assert _cli(lrs3, out, "--steps", "2") == 0
    assert _cli(lrs3, out, "--steps", "2", "--lr", "0.002") == 2
    assert "lr: 0.001 -> 0.002" in capsys.readouterr().err
    assert (out / "final.pt").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
@pytest.mark.parametrize("kind", ["stage1", "stage2", "syncnet3d", "no2d", "finetune", "evaluator"])
def test_every_kind_claims_its_run_with_its_recipes_values_given(lrs3, tmp_path, kind, preset):
    """The recipe's seed, batch size, learning rate and identities, and the stopping rule's defaults, given
    explicitly are the request without them (they were refused as "name: (default) -> value")."""
    from p3d.train.critics import recipe

    rec = recipe(kind, preset)
    out = tmp_path / "run"
    assert api.claim_run_dir(out, api._request(kind, preset, lrs3, {"steps": 2})) is False
    given = {"steps": 2, "seed": rec.seed, "batch_size": rec.batch_size, "lr": rec.lr, "identities": rec.identities,
             "stop": "steps", "eval_every": 0, "patience": 5, "min_rel_improvement": 0.01, "smooth": 3}
    assert api.claim_run_dir(out, api._request(kind, preset, lrs3, given)) is False
    with pytest.raises(InputError, match=r"lr: [0-9.e-]+ \(default\) -> 0\.5$|lr: [0-9.e-]+ \(default\) -> 0\.5 "):
        api.claim_run_dir(out, api._request(kind, preset, lrs3, {"steps": 2, "lr": 0.5}))
    plateau = {"steps": 2, "stop": "plateau"}
    with pytest.raises(InputError, match=r"stop: (steps )?\(default\) -> plateau"):
        api.claim_run_dir(out, api._request(kind, preset, lrs3, plateau))


def test_a_final_pt_write_cut_off_by_a_kill_leaves_nothing_once_the_run_is_resumed(lrs3, tmp_path):
    """`p3d train` killed while writing final.pt (written after the run folder's lock was released) left its
    temporary file, as large as the checkpoint, and the next `p3d train` into the folder wrote final.pt beside it and
    never removed it. final.pt is written holding the lock now, so the next holder removes what a kill left."""
    out = tmp_path / "run"
    assert _cli(lrs3, out, "--steps", "2") == 0
    whole = (out / "final.pt").read_bytes()
    (out / "final.pt").rename(out / ".final.pt.tmp-k1ll3d.pt")  # killed before the rename of its atomic write
    assert _cli(lrs3, out, "--steps", "2") == 0
    assert (out / "final.pt").read_bytes() == whole
    assert not list(out.glob(".*.tmp-*"))


def test_a_left_out_steps_against_an_extended_run_is_checked_before_the_data_load(lrs3, tmp_path, capsys, monkeypatch):
    """A command without --steps into a folder whose request gave them was left to the trainer's check: the data
    were loaded and the model built before "steps: 64 -> 60 (a run is extended, never shortened)" refused the run
    the command itself had trained before it was extended. The recipe's fixed step count (smoke: 60) is now the
    request's steps in the folder's check, before any data are loaded; an extension by the left-out steps records
    the request that made it."""
    out = tmp_path / "run"
    assert _cli(lrs3, out, "--steps", "2") == 0
    assert _cli(lrs3, out) == 0  # the recipe's 60 steps extend the 2
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["steps"] == 60 and [(e["steps_from"], e["steps_to"]) for e in cfg["extensions"]] == [(2, 60)]
    assert json.loads((out / "request.json").read_text())["options"] == {}
    assert _cli(lrs3, out, "--steps", "64") == 0
    capsys.readouterr()

    def no_data_load(*args, **kwargs):
        raise AssertionError("the data were loaded")

    monkeypatch.setattr("p3d.train.critics.build_from_args", no_data_load)
    assert _cli(lrs3, out) == 2
    assert capsys.readouterr().err.strip() == (
        f"p3d train: error: --out {out}: holds a run with other settings: steps: 64 -> 60 (a run is extended, never "
        f"shortened) (repeat its settings, extend it with a longer --steps, or use another --out / force=True)")
    assert _cli(lrs3, out, "--steps", "64") == 0  # the finished run: nothing to do
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 64


def test_a_run_whose_templates_or_split_changed_is_refused(tmp_path):
    """data.json held the data folder's clips fingerprint only: a run was reused or extended after a clip moved to
    another split or a template was corrected. Now refused; a record without the file entry adopts it."""
    from test_corpus import _move_a_clip_and_correct_a_template

    data = write_tiny_corpus(tmp_path / "a", identities={"train": 1, "test": 1}, clips_per_identity=2, seconds=0.5,
                             lip_video=False, labels=False)
    out = tmp_path / "run"
    out.mkdir()
    request = {"data": str(data)}
    record = api.data_fingerprint(request)
    files = api.FILES_PREFIX + str(data)
    (out / api.DATA_RECORD).write_text(json.dumps({k: v for k, v in record.items() if k != files}))
    api._check_data(out, record)  # a record from before the file entry: adopted
    assert json.loads((out / api.DATA_RECORD).read_text())[files] == record[files]
    _move_a_clip_and_correct_a_template(data)
    with pytest.raises(InputError, match="trained on other data at the same path .*templates.pkl or clips.csv"):
        api._check_data(out, api.data_fingerprint(request))


@pytest.mark.parametrize("preset, batch", [("paper", 256), ("cpu", None), ("smoke", None)])
def test_evaluator_stage1_trains_at_the_papers_batch_of_256(preset, batch, lrs3, tmp_path, monkeypatch):
    """Paper E.1: the PLRS evaluator uses batch size 256 for both stage 1 and stage 2 (stage 1 of the critics: 40);
    the smaller presets keep stage 1's recipe batch."""
    asked = {}

    def fake_fit(kind, preset, corpus, out, **options):
        asked.update(options, kind=kind)
        return out / "final.pt"

    monkeypatch.setattr(api, "fit", fake_fit)
    api.train_evaluator_stage1(preset, lrs3, tmp_path)
    assert asked["kind"] == "stage1" and asked.get("batch_size") == batch


def test_the_trainers_implied_values_are_the_adopted_defaults():
    """Two rules meet a setting an older run record lacks: the trainer's config.json check implies the older code's
    value (IMPLIED_BY_OLDER_RECORDS), data.json adopts today's default (ADOPTED_KEYS / code_settings). Where both
    hold the setting (audio.trim_before_encoder of a talker), the default must be the implied value, or a finished
    run would be reused that a resume of the same run refuses."""
    from p3d.models.talker import MODELS
    from p3d.registry import PRESETS
    from p3d.train.trainer import IMPLIED_BY_OLDER_RECORDS

    both = []
    for kind in ("talker", "stage1", "stage2", "evaluator", "no2d", "syncnet3d"):
        for preset in PRESETS:
            for model in MODELS if kind == "talker" else (None,):
                settings = api.code_settings({"kind": kind, "preset": preset, "data": "x",
                                              "options": {"model": model} if model else {}})
                for name, implied in IMPLIED_BY_OLDER_RECORDS.items():
                    key = "architecture." + name.removeprefix("model_config.")
                    if key in settings:
                        both.append((kind, preset, model, settings[key] == implied))
    assert both and all(same for *_, same in both), [b for b in both if not b[-1]]


def test_the_evaluator_without_stage1_names_the_command_of_its_own_stage1(lrs3, tmp_path, capsys):
    """``p3d train evaluator`` without --stage1 said only "RUN_DIR/final.pt of `p3d train stage1`", not that the
    evaluator's stage 1 is its own (identity half2, seed 1: api.train_evaluator's pipeline). The one line now gives
    that command (at paper with the batch of paper E.1), still exit 2 and no folder left."""
    from p3d.cli import main

    out = tmp_path / "evaluator"
    assert main(["train", "evaluator", "--preset", "smoke", "--data", str(lrs3), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.endswith(
        f"needs its own stage-1 checkpoint: RUN_DIR/final.pt of `p3d train stage1 --preset smoke --data {lrs3} "
        "--identities half2 --seed 1 --out RUN_DIR`")
    assert not out.exists()
    with pytest.raises(InputError, match=r"--identities half2 --seed 1 --batch-size 256 --out RUN_DIR`$"):
        from p3d.train.critics import build

        build("evaluator", "paper", lrs3)
    with pytest.raises(InputError, match=r"of `p3d train stage1`\)$"):  # stage 2: the critics' stage 1, as before
        build("stage2", "smoke", lrs3)


@pytest.mark.parametrize("kind, module, cls", [
    ("stage1", "p3d.models.stage1", "Stage1Config"), ("stage2", "p3d.models.mesh_encoder", "MeshEncoderConfig"),
    ("evaluator", "p3d.models.mesh_encoder", "MeshEncoderConfig"),
    ("no2d", "p3d.models.speech_mesh", "SpeechMeshConfig"),
    ("syncnet3d", "p3d.models.syncnet3d", "SyncNet3DConfig")])
def test_every_critic_kinds_architecture_is_fingerprinted(kind, module, cls, monkeypatch):
    """:func:`api.architecture_fingerprint` covers stage 1, the mesh encoder of stage 2 and of the evaluator, the dual
    encoder of ``no2d`` and 3D SyncNet (its docstring): a width changed in that kind's preset config changes the
    fingerprint and the recorded settings, so a run trained before is not reused as today's."""
    import dataclasses
    import importlib

    config_class = getattr(importlib.import_module(module), cls)
    request = {"kind": kind, "preset": "smoke", "options": {}}
    before, settings = api.architecture_fingerprint(request), api.code_settings(request)
    assert before is not None
    presets = config_class.presets()
    smoke = presets["smoke"]
    name = next(f.name for f in dataclasses.fields(smoke)  # a width, depth or temperature
                if type(getattr(smoke, f.name)) in (int, float) and getattr(smoke, f.name) > 0)
    changed = dataclasses.replace(smoke, **{name: getattr(smoke, name) * 2})
    monkeypatch.setattr(config_class, "presets", staticmethod(lambda: {**presets, "smoke": changed}))
    assert api.architecture_fingerprint(request) != before
    assert settings[f"architecture.{name}"] == getattr(smoke, name)
    assert api.code_settings(request)[f"architecture.{name}"] == getattr(smoke, name) * 2


def test_an_upstream_checkpoint_is_fingerprinted_by_its_content(tmp_path):
    """``checkpoint:<option>`` of :data:`api.DATA_RECORD`: the SHA-256 of each option naming a checkpoint file, a p3d
    ``.pt`` or a released ``.pth``, keyed by the option's name; a path that names no file is not."""
    import hashlib

    pt, pth = tmp_path / "final.pt", tmp_path / "model_eval.pth"
    pt.write_bytes(b"stage one weights")
    pth.write_bytes(b"released weights")
    request = {"kind": "talker", "preset": "smoke",
               "options": {"stage1": str(pt), "critic_checkpoint": str(pth), "init": str(tmp_path / "no.pt")}}
    record = api.data_fingerprint(request)
    assert record["checkpoint:stage1"] == hashlib.sha256(b"stage one weights").hexdigest()
    assert record["checkpoint:critic_checkpoint"] == hashlib.sha256(b"released weights").hexdigest()
    assert "checkpoint:init" not in record


def test_a_talkers_left_out_steps_are_its_last_stages():
    """:func:`api.default_steps` of a talker is its last training stage's recipe steps (CodeTalker at ``cpu``: the
    speech stage after the VQ-VAE, whose step counts differ), and None where the recipe is in epochs (``paper``)."""
    from p3d.train import critics, talker

    stages = talker.RECIPES["cpu"]["codetalker"]
    assert list(stages) == ["vqvae", "speech"] and stages["vqvae"].steps != stages["speech"].steps
    request = {"kind": "talker", "preset": "cpu", "options": {"model": "codetalker"}}
    assert api.default_steps(request) == stages["speech"].steps
    assert api.default_steps({**request, "preset": "paper"}) is None
    assert api.default_steps({"kind": "syncnet3d", "preset": "smoke", "options": {}}) == \
        critics.RECIPES["smoke"]["syncnet3d"].steps


def test_a_left_out_steps_that_follow_from_the_data_are_left_to_the_trainer(lrs3, tmp_path):
    """:func:`api.claim_run_dir`: a request without ``steps`` against a run whose request gave them, where the
    recipe is in epochs (``paper``: the steps follow from the data), is not taken for the finished run; the trainer
    compares the steps once the data are loaded (it returns False, never True, for a folder holding final.pt)."""
    from p3d.train.critics import recipe

    assert recipe("syncnet3d", "paper").steps is None  # in epochs
    out = tmp_path / "run"
    assert api.claim_run_dir(out, api._request("syncnet3d", "paper", lrs3, {"steps": 2})) is False
    (out / "final.pt").write_bytes(b"a finished run")
    assert api.claim_run_dir(out, api._request("syncnet3d", "paper", lrs3, {"steps": 2})) is True  # the same request
    assert api.claim_run_dir(out, api._request("syncnet3d", "paper", lrs3, {})) is False


def test_critic_pipeline_k_trains_with_seed_1000_k():
    """Pipeline 0 keeps the recipes' seed (None: its runs keep their recorded requests); pipeline k >= 1 seeds every
    stage with 1000 k, which the evaluator's seed never is."""
    assert api.critic_pipeline_seed(0) is None
    assert [api.critic_pipeline_seed(k) for k in (1, 2, 7)] == [1000, 2000, 7000]
