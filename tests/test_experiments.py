"""p3d.experiments: experiment names and checks, the grid plan, the weight rule, cluster-bootstrap statistics,
the table builders, and one small end-to-end grid (critic fine-tuning, baseline, relative weight, Config 2)
on tiny corpora at the smoke preset."""
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from p3d import experiments as ex
from p3d.errors import InputError
from p3d.paths import OutputDirs
from tiny_corpus import prefix_identities, write_tiny_corpus


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("exp")
    data = base / "data" / "smoke"
    write_tiny_corpus(data / "synth-lrs3", identities={"train": 4, "test": 1}, clips_per_identity=2, seconds=1.2)
    write_tiny_corpus(data / "synth-voca", kind="vocaset", fps=60, model_fps=30,
                      identities={"train": 2, "val": 1, "test": 2}, clips_per_identity=3, seconds=1.2,
                      lip_video=False, seed=1)
    mead = write_tiny_corpus(data / "synth-mead", kind="mead", fps=30, identities={"train": 2, "test": 2},
                             clips_per_identity=3, seconds=1.2, levels=True, lip_video=False, seed=2)
    prefix_identities(mead, "m", clips=True)
    return OutputDirs(figures=base / "figures", tables=base / "tables", results=base / "results", data=base / "data",
                      runs=base / "runs").make()


# -- the experiment ---------------------------------------------------------------------------------------
def test_names_are_stable_and_distinguish_requests():
    a = ex.TalkerExperiment("faceformer")
    assert a.name == "faceformer_none_voca_seed0" and a.test_corpus == "synth-voca"
    assert ex.TalkerExperiment("faceformer", "ours").name == "faceformer_ours_voca_w1e-07_seed0"
    b = ex.TalkerExperiment("selftalk", "ours", ex.CONFIG2, relative_weight=0.1, seed=2, steps=5)
    assert b.name == "selftalk_ours_voca+mead_k0.1_steps5_seed2" and b.test_corpus == "synth-mead"
    assert b.baseline.name == "selftalk_none_voca+mead_steps5_seed2"
    # the evaluated split is not part of the training run's name
    assert a.with_(split="val").name == a.name and a.with_(split="val").eval_name == "synth-voca_val"
    assert ex.TalkerExperiment("codetalker", train="synth-voca").train == ("synth-voca",)
    # a batch of clips per step is another training request: another run folder
    batched = ex.TalkerExperiment("faceformer", batch_size=8)
    assert batched.name == "faceformer_none_voca_b8_seed0" and batched.arm != a.arm
    # predicting each clip under fewer training identities changes the evaluation, not the training run
    one = ex.TalkerExperiment("faceformer", conditions=1)
    assert one.name == a.name and one.eval_name == "synth-voca_test_c1"


def test_arm_names_drop_the_seeds_and_only_the_seeds():
    """A run's arm name (attribute, and read off the folder name) is the same for every seed of the arm and differs
    between arms: model, critic, training data, weight, steps, batch, stop rule, length."""
    arms = [ex.TalkerExperiment("codetalker"), ex.TalkerExperiment("codetalker", "ours", relative_weight=1.0),
            ex.TalkerExperiment("codetalker", "ours", ex.CONFIG2, relative_weight=1.0),
            ex.TalkerExperiment("codetalker", "no2d", relative_weight=0.1, steps=5, batch_size=4),
            ex.TalkerExperiment("codetalker", "ours", stop="plateau", length="equal"),
            ex.TalkerExperiment("faceformer", "ours", relative_weight=1.0)]
    names = set()
    for arm in arms:
        runs = [arm.with_(seed=s) for s in (0, 3)]
        if arm.critic != "none":  # another critic pipeline, or its critics trained longer: the same arm
            runs += [arm.with_(seed=2, critic_seed=1), arm.with_(seed=4, critic_steps=700)]
        assert {r.arm_name for r in runs} == {ex.arm_name(r.name) for r in runs} == {arm.arm_name}
        assert {r.arm for r in runs} == {arm.arm}
        names.add(arm.arm_name)
    assert len(names) == len(arms)
    assert ex.arm_name("codetalker_ours_voca+mead_k1_c1_seed2") == "codetalker_ours_voca+mead_k1"
    assert ex.arm_name("codetalker_ours_voca_w1e-07_steps10_seed0") == "codetalker_ours_voca_w1e-07_steps10"
    assert ex.arm_name("my_model") == "my_model"  # not a p3d run: as it is


@pytest.mark.parametrize("kwargs, match", [
    ({"model": "wav2lip"}, "unknown talking-head model"),
    ({"model": "faceformer", "critic": "clip"}, "unknown critic"),
    ({"model": "faceformer", "train": ("synth-lrs3",)}, "unknown talking-head corpus"),
    ({"model": "faceformer", "train": ()}, "distinct corpus"),
    ({"model": "faceformer", "critic": "none", "loss_weight": 1e-7}, "no perceptual loss"),
    ({"model": "faceformer", "critic": "ours", "loss_weight": 1e-7, "relative_weight": 0.1}, "not both"),
    ({"model": "faceformer", "critic": "ours", "loss_weight": float("nan")}, "finite weight"),
    ({"model": "faceformer", "split": "dev"}, "unknown split"),
    ({"model": "faceformer", "steps": 0}, "positive step"),
    ({"model": "faceformer", "batch_size": 0}, "positive number of clips"),
    ({"model": "faceformer", "conditions": 0}, "positive number of training identities"),
])
def test_bad_experiments_are_refused(kwargs, match):
    with pytest.raises(InputError, match=match):
        ex.TalkerExperiment(**kwargs)


def test_plan_orders_dependencies(tmp_path):
    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    exps = [ex.TalkerExperiment("faceformer", "ours", relative_weight=0.1, split="val"),
            ex.TalkerExperiment("faceformer"), ex.TalkerExperiment("faceformer", test="synth-mead"),
            ex.TalkerExperiment("selftalk", "syncnet3d", ex.CONFIG2)]
    tasks = ex.plan(exps, d)
    keys = [t.key for t in tasks]
    assert len(keys) == len(set(keys))
    pos = {k: i for i, k in enumerate(keys)}
    for t in tasks:
        assert all(pos[dep] < pos[t.key] for dep in t.deps), t.key
    # one training run for the two evaluations of the baseline, which the relative-weight run waits for
    assert sum(k.startswith("train:smoke:faceformer_none_voca") for k in keys) == 1
    rel = next(t for t in tasks if t.key.startswith("train:smoke:faceformer_ours"))
    assert "train:smoke:faceformer_none_voca_seed0" in rel.deps and "loss_critic:smoke:ours" in rel.deps
    assert "critic:smoke:syncnet3d" in keys and "data:smoke:synth-mead_test" in keys
    assert next(t for t in tasks if t.key == "critic:smoke:syncnet3d").deps == ()
    # the PLRS evaluator waits for its own stage 1 only, never a critic pipeline's
    assert next(t for t in tasks if t.key == "evaluator:smoke").deps == ("evaluator_stage1:smoke",)
    assert next(t for t in tasks if t.key == "critic:smoke:ours").deps == ("stage1:smoke",)
    assert next(t for t in tasks if t.key == "evaluator_stage1:smoke").deps == ()
    # a loss critic waits for its base critic (else a parallel grid's worker would train the critic inside it), and
    # the tasks come in the module doc's order of kinds wherever the dependencies allow it
    assert next(t for t in tasks if t.key == "loss_critic:smoke:ours").deps == ("critic:smoke:ours",)
    assert next(t for t in tasks if t.key == "loss_critic:smoke:syncnet3d").deps == ("critic:smoke:syncnet3d",)
    assert (next(t for t in tasks if t.key == "eval:smoke:faceformer_none_voca_seed0:synth-mead_test").deps
            == ("train:smoke:faceformer_none_voca_seed0", "data:smoke:synth-mead_test"))  # and for its data reference
    kinds = ["stage1", "critic", "loss_critic", "data", "train", "eval"]  # the module doc's order
    ranks = [kinds.index(t.kind.removeprefix("evaluator_").replace("evaluator", "critic")) for t in tasks]
    assert ranks == sorted(ranks)


def test_plan_trains_an_equal_length_group_before_its_continuations(tmp_path):
    """length="equal": each continuation waits for the own-length trainings of its whole comparison group (one
    model and seed), and evaluates the continuation; an own-length experiment is planned as before."""
    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    spec = ex.spec_for("smoke", equal_length=True, weight_rule="fixed")
    exps = [*spec.config1(1e-7), *spec.config2(1e-7)]
    assert all(e.length == "equal" and e.name.endswith(f"_eq_seed{e.seed}") for e in exps)
    groups = ex.equal_length_groups(exps)
    ff = groups[("smoke", "faceformer", 0)]
    assert [m.name for m in ff] == sorted({e.own_length.name for e in exps if e.model == "faceformer"})
    assert len(ff) == 6 and all(m.length == "own" and m.test is None for m in ff)  # none, ours, 2 ablations, 2 mead
    eq0 = next(e for e in exps if e.model == "faceformer" and e.seed == 0)
    for stranger in (ff[1].with_(seed=1), ff[1].with_(model="selftalk")):  # another seed's or model's run: refused
        with pytest.raises(InputError, match="holds own-length runs of one preset, model and seed"):
            ex.plan([eq0], d, groups={("smoke", "faceformer", 0): (*ff, stranger)})
    tasks = ex.plan(exps, d)
    pos = {t.key: i for i, t in enumerate(tasks)}
    for t in tasks:
        assert all(pos[dep] < pos[t.key] for dep in t.deps), t.key
    eq = next(t for t in tasks if t.key == "train:smoke:faceformer_none_voca_eq_seed0")
    assert eq.deps == tuple(f"train:smoke:{m.name}" for m in ff) and eq.args[1] == ff
    assert next(t for t in tasks if t.key.startswith("eval:smoke:faceformer_none_voca_eq_seed0:")).deps[0] == eq.key
    assert not any(t.kind == "eval" and "_eq_" not in t.key for t in tasks)  # only the continuations are evaluated
    # a notebook that plans part of the grid (Config 1) continues to the whole grid's stops
    part = ex.plan(spec.config1(1e-7), d, groups=spec.length_groups(1e-7))
    assert next(t for t in part if t.key == eq.key).deps == eq.deps        # Table 4's arms included
    alone = ex.plan(spec.config1(1e-7), d)
    assert len(next(t for t in alone if t.key == eq.key).deps) == 4        # without: Config 1's arms only
    assert ex.spec_for("smoke").length_groups(1e-7) == {}
    own = ex.plan([exps[0].own_length], d)
    assert not any("_eq_" in t.key for t in own)
    # the layout's training runs: each continuation and the own-length run it continues
    lay = ex.layout(d, "smoke")
    for e in (exps[0], exps[0].own_length):
        (lay.run(e)).mkdir(parents=True)
        (lay.run(e) / "config.json").write_text("{}")
    assert set(lay.training_runs([exps[0]], critic_pipelines=1)) >= {lay.run(exps[0]), lay.run(exps[0].own_length)}
    with pytest.raises(InputError, match="length"):
        ex.TalkerExperiment("faceformer", length="longest")


def test_registry_is_the_one_list_of_presets_models_and_critics():
    from p3d import paper, paths, registry
    from p3d.train import api, cli, representation

    assert registry.PRESETS == ("smoke", "cpu", "full", "paper") and paths.PRESETS == registry.PRESETS
    assert all(registry.PRESET_INFO[p].description for p in registry.PRESETS)
    assert registry.model_preset("full") == "cpu" and "full" not in representation.PRESETS == cli.PRESETS
    assert ex.MODELS == paper.MODELS == registry.MODELS and ex.MODEL_LABELS["selftalk"] == "SelfTalk"
    assert api.CRITICS == registry.CRITICS and ex.CRITICS == ("none", *api.CRITICS)
    with pytest.raises(InputError, match="unknown preset"):
        registry.preset("huge")


def test_full_spec_seeds_critic_pipelines_and_plateau():
    committed = ex.spec_for("full")
    assert (committed.table2_seeds, committed.table3_seeds, committed.table4_seeds) == (5, 3, 3)
    assert committed.models_of(2) == committed.models_of(3) == committed.models_of(4) == ex.MODELS
    assert ex.spec_for("full", ablation_models=()).models_of(3) == ()           # empty: no Table 3
    assert ex.spec_for("cpu").models_of(3) == ("faceformer",) and ex.spec_for("cpu").models_of(4) == ex.MODELS
    with pytest.raises(InputError, match="expected 2, 3 or 4"):
        committed.models_of(1)
    assert len(committed.config1(1e-7)) == 3 * 2 * 5 + 3 * 2 * 3 and len(committed.config2(1e-7)) == 3 * 3 * 3
    # the decisive sizes, one spec_for away
    spec = ex.spec_for("full", ablation_models=ex.MODELS, table4_models=ex.MODELS, table2_seeds=5, table3_seeds=3,
                       table4_seeds=3, critic_pipelines=3)
    c1 = spec.config1(1e-7)
    t2 = [e for e in c1 if e.critic in ("none", "ours")]
    assert len(t2) == 3 * 2 * 5 and len(c1) - len(t2) == 3 * 2 * 3
    assert all(e.stop_rule == "plateau" and e.length == "equal" and e.name.endswith(f"plateau-s10p10_eq_seed{e.seed}")
               for e in c1)  # each arm to its plateau, then to its model and seed's longest stop
    assert all(e.stop_options == {"stop": "plateau", "smooth": 10, "patience": 10} for e in c1)  # the talkers' rule
    assert all(e.batch_size == 16 and e.conditions == 1 for e in c1)
    ours = [e for e in t2 if e.critic == "ours" and e.model == "faceformer"]
    assert [e.critic_seed for e in ours] == [0, 1, 2, 0, 1] and ours[0].loss_weight == pytest.approx(1e-7)
    assert len({e.arm for e in ours}) == 1 and ours[1].name != ours[0].name
    assert len(spec.config2(1e-7)) == 3 * 3 * 3
    with pytest.raises(InputError, match="fixes the weight"):
        spec.selection()
    # smoke / cpu keep the names and requests of before (no stop options, kappa selection)
    smoke = ex.spec_for("smoke")
    assert [e.name for e in smoke.config1(0.1)] == [e.name for e in ex.config1_experiments("smoke", 0.1)]
    assert ex.TalkerExperiment("faceformer").stop_options == {}
    with pytest.raises(InputError, match="--stop"):
        ex.TalkerExperiment("faceformer", stop="never")
    with pytest.raises(InputError, match="critic pipeline"):
        ex.TalkerExperiment("faceformer", critic_seed=1)


def test_a_spec_with_table3_arms_that_table2_has_no_partner_for_is_refused(tmp_path):
    """Table 3 compares each ablation critic with Table 2's critic-ours run of the same model and seed. A spec with
    more Table-3 seeds than Table-2 seeds, or an ablation model outside its models (cpu's FaceFormer when notebook 06
    asked for CodeTalker only), trained ablation arms that nothing was compared with (hours at full) and the effect
    table then dropped their seeds silently, or crashed on the missing arm; it is refused before anything trains, and
    the preset's ablation models are kept only where they are among the models asked for.
    Seeds added later plan the earlier runs under the same keys (reused as finished), every dependency first."""
    with pytest.raises(InputError, match="table3_seeds: 4 above table2_seeds 2"):
        ex.spec_for("full", table2_seeds=2, table3_seeds=4)
    with pytest.raises(InputError, match=r"ablation_models: faceformer not among models \(codetalker\)"):
        ex.spec_for("cpu", models=("codetalker",), ablation_models=("faceformer",))
    with pytest.raises(InputError, match="ablation_models: selftalk not among models"):
        ex.spec_for("full", models=("faceformer",), ablation_models=("selftalk",))
    assert ex.spec_for("cpu", models=("codetalker",)).models_of(3) == ()             # the preset's: among models
    assert ex.spec_for("cpu", models=("faceformer", "selftalk")).models_of(3) == ("faceformer",)
    assert ex.spec_for("full", table2_seeds=2, table3_seeds=4, ablation_models=()).table3_seeds == 4  # no Table 3
    assert ex.spec_for("full", table2_seeds=3, table4_seeds=5).table4_seeds == 5   # Table 4 has its own arms
    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))

    def planned(spec):
        exps = [*spec.config1(1e-7), *spec.config2(1e-7)]
        tasks = ex.plan(exps, d, groups=spec.length_groups(1e-7))
        pos = {t.key: i for i, t in enumerate(tasks)}
        assert all(pos[dep] < pos[t.key] for t in tasks for dep in t.deps)
        return set(pos), {ex.eval_key(e) for e in exps}

    (before, evals_before), (after, evals_after) = (planned(ex.spec_for("full", table2_seeds=2, table3_seeds=1)),
                                                    planned(ex.spec_for("full")))
    assert before < after and {k for k in after - before if k.startswith("eval:")} == evals_after - evals_before


def test_config2_arms_are_all_tested_on_synth_mead():
    """Table 4's three arms per model and seed: Table 2's synth-voca run evaluated on synth-mead, synth-voca +
    synth-mead, and that with critic ``ours``; every one tested on the synth-mead test split."""
    spec = ex.spec_for("smoke", table4_seeds=2)
    exps = spec.config2(0.1)
    assert {e.test_corpus for e in exps} == {"synth-mead"} and {e.split for e in exps} == {"test"}
    rows = {(e.model, e.seed, e.critic, e.train) for e in exps}
    for m in spec.models_of(4):
        for s in (0, 1):
            assert {(m, s, "none", ex.CONFIG1), (m, s, "none", ex.CONFIG2), (m, s, "ours", ex.CONFIG2)} <= rows
    assert len(exps) == 3 * 2 * len(spec.models_of(4))
    voca_only = [e for e in exps if e.train == ex.CONFIG1]
    assert all(e.name == e.with_(test=None).name for e in voca_only)  # Table 2's training run, not a new one


def test_fixed_weight_carried_from_the_vocaset_scale(dirs):
    from p3d.corpus import Corpus
    from p3d.losses.weight import carried_loss_weight, split_motion_rms

    voca = Corpus.open(dirs.data / "smoke" / "synth-voca")
    spec = ex.spec_for("full", vocaset_motion_rms=2e-3)
    assert spec.fixed_weight(voca) == pytest.approx(carried_loss_weight(split_motion_rms(voca), vocaset_motion_rms=2e-3))
    with pytest.raises(InputError, match="give the training corpus"):
        spec.fixed_weight()
    # None: the paper's number unconverted (an explicit opt-out)
    assert dataclasses.replace(spec, vocaset_motion_rms=None).fixed_weight(voca) == 1e-7


def test_full_spec_carries_the_papers_weight_from_faceformers_vocaset_mse(dirs):
    """``full``'s weight: 1e-7 * s_corpus^2 / 1.4e-6 m^2 (FaceFormer's starting MSE on VOCASET), s_corpus the
    train-split RMS of vertices minus template, computed here by hand from the files."""
    from p3d.corpus import Corpus
    from p3d.losses import weight

    voca = Corpus.open(dirs.data / "smoke" / "synth-voca")
    full = ex.spec_for("full")
    assert full.weight_rule == "fixed" and full.vocaset_motion_rms == weight.VOCASET_MOTION_RMS
    squares = [np.mean(np.square(voca.vertices(c).reshape(len(voca.vertices(c)), -1, 3)
                                 - np.asarray(voca.templates[c.identity]).reshape(-1, 3)))
               for c in voca.select("train")]
    by_hand = 1e-7 * float(np.mean(squares)) / 1.4e-6
    assert full.fixed_weight(voca) == pytest.approx(by_hand, rel=1e-6)
    assert full.fixed_weight(voca) != pytest.approx(1e-7, rel=1e-2)  # this corpus moves unlike VOCASET
    # cpu, the quick look, fixes the same weight in advance; smoke chooses kappa on val (the sensitivity path)
    cpu = ex.spec_for("cpu")
    assert cpu.weight_rule == "fixed" and cpu.fixed_weight(voca) == full.fixed_weight(voca)
    assert ex.spec_for("smoke").weight_rule == "kappa" and ex.spec_for("smoke").vocaset_motion_rms is None


def test_layout_places_every_file(tmp_path):
    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    lay = ex.layout(d, "full")
    exp = ex.TalkerExperiment("faceformer", "ours", preset="full", seed=4, critic_seed=1, loss_weight=1e-7)
    assert lay.run(exp) == tmp_path / "runs" / "full" / "talkers" / exp.name
    assert lay.predictions(exp.with_(split="val")).name == "pred_synth-voca_val"
    assert lay.loss_critic("ours", 1) == tmp_path / "runs" / "full" / "critic_seed1" / "loss_critics" / "ours"
    assert lay.stage1(0) == tmp_path / "runs" / "full" / "stage1" and lay.evaluator.parent == lay.runs
    assert lay.evaluator_stage1 == tmp_path / "runs" / "full" / "stage1_evaluator"
    assert lay.evaluator_stage1 not in {lay.stage1(c) for c in range(4)}
    assert lay.fbank_cache == tmp_path / "runs" / "full" / "fbank_cache" != lay.speech_cache
    with pytest.raises(InputError, match="not this layout"):
        lay.run(ex.TalkerExperiment("faceformer"))
    for run in (lay.stage1(2), lay.evaluator_stage1, lay.run(exp)):
        run.mkdir(parents=True)
        (run / "config.json").write_text("{}")
    staged = lay.run(exp).parent / f".{exp.name}.continuing"  # a continuation being staged (or a killed one's)
    staged.mkdir()
    (staged / "config.json").write_text("{}")
    assert lay.training_runs() == [lay.stage1(2), lay.evaluator_stage1, lay.run(exp)]
    # A spec's runs only: another grid's talker and critic pipeline in the same runs/<preset> stay out.
    other = exp.with_(seed=5)
    (lay.run(other)).mkdir(parents=True)
    (lay.run(other) / "config.json").write_text("{}")
    assert lay.run(other) in lay.training_runs()
    assert lay.training_runs(experiments=[exp, exp.with_(split="val")], critic_pipelines=3) == [
        lay.stage1(2), lay.evaluator_stage1, lay.run(exp)]
    assert lay.training_runs(experiments=[exp], critic_pipelines=1) == [lay.evaluator_stage1, lay.run(exp)]
    for run in (lay.stage1(0), lay.loss_critic("ours", 0)):  # pipeline 0 lives in runs/<preset> itself
        run.mkdir(parents=True)
        (run / "config.json").write_text("{}")
    assert lay.training_runs(experiments=[exp], critic_pipelines=1) == [
        lay.stage1(0), lay.loss_critic("ours", 0), lay.evaluator_stage1, lay.run(exp)]


def test_loss_comparison_dirs_are_the_config1_runs_predictions(tmp_path):
    """The user study's conditions come from the layout: each model's Config 1 run without and with the loss."""
    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    spec = ex.spec_for("cpu", models=("faceformer",), weight_rule="kappa")  # a relative weight, as at smoke
    lay = ex.layout(d, "cpu")
    base, ours = (spec.experiment("faceformer", c, ex.CONFIG1, 1, weight=0.1) for c in ("none", "ours"))
    with pytest.raises(InputError, match=base.name):
        ex.loss_comparison_dirs(d, spec, 0.1, ["faceformer"], seed=1)
    # a killed prediction's temporary alone is no prediction (it counted as one)
    lay.predictions(base).mkdir(parents=True)
    (lay.predictions(base) / ".a_condition_b.npy.tmp-x1y2z3.npy").write_bytes(b"")
    with pytest.raises(InputError, match=base.name):
        ex.loss_comparison_dirs(d, spec, 0.1, ["faceformer"], seed=1)
    for exp in (base, ours):
        lay.predictions(exp).mkdir(parents=True, exist_ok=True)
        (lay.predictions(exp) / "a_condition_b.npy").write_bytes(b"")
    found = ex.loss_comparison_dirs(d, spec, 0.1, ["faceformer"], seed=1)
    assert found == {"faceformer/base": lay.predictions(base), "faceformer/ours": lay.predictions(ours)}
    assert "k0.1" in found["faceformer/ours"].parent.name and found["faceformer/base"] != found["faceformer/ours"]


def test_baseline_encoder_runs_are_the_runs_without_the_loss(tmp_path):
    """The level probe's trained encoders: every model's Table-2 baseline, and Table 4's models' Config 2 one."""
    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    spec = ex.spec_for("full", models=("faceformer", "selftalk"), table4_models=("faceformer",))
    lay = ex.layout(d, "full")
    wanted = [spec.experiment("faceformer", "none", ex.CONFIG1, 0), spec.experiment("faceformer", "none", ex.CONFIG2, 0),
              spec.experiment("selftalk", "none", ex.CONFIG1, 0)]
    with pytest.raises(InputError, match=wanted[0].name):
        ex.baseline_encoder_runs(d, spec, ["faceformer", "selftalk"])
    for exp in wanted:
        lay.run(exp).mkdir(parents=True)
        (lay.run(exp) / "final.pt").write_bytes(b"")
    found = ex.baseline_encoder_runs(d, spec, ["faceformer", "selftalk"])
    assert list(found.values()) == [("faceformer", lay.run(wanted[0])), ("faceformer", lay.run(wanted[1])),
                                    ("selftalk", lay.run(wanted[2]))]
    assert list(found) == ["FaceFormer: trained on synth-voca (Table 2, seed 0)",
                           "FaceFormer: trained on synth-voca + synth-mead (Table 4, seed 0)",
                           "SelfTalk: trained on synth-voca (Table 2, seed 0)"]


def test_metric_validation_talkers_are_the_plans_finished_config1_runs(tmp_path, caplog):
    """Notebook 08 scored every talker in runs/<preset>/talkers with synth-voca test predictions: a run at another
    kappa (make figures EXTRA=1's per-model kappa), a run trained by hand, or a planned run's predictions under
    another evaluation protocol entered its tables. Now the plan's Config-1 runs that predicted every test clip,
    each from its planned folder, and the extra runs named."""
    import logging

    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs"))).make()
    pd.DataFrame({"kappa": [0.1, 1.0], "chosen": [False, True]}).to_csv(d.tables / "loss_weight_selection.csv",
                                                                        index=False)  # notebook 06's choice at smoke
    spec, lay, clips = ex.spec_for("smoke"), ex.layout(d, "smoke"), ["a", "b"]

    def predict(folder, stems=clips):
        folder.mkdir(parents=True)
        for c in stems:
            np.save(folder / f"{c}_condition_X.npy", np.zeros((2, 1, 3), np.float32))

    base, ours = spec.experiment("faceformer", "none"), spec.experiment("faceformer", "ours", weight=1.0)
    unfinished = spec.experiment("codetalker", "none")
    for exp in (base, ours):
        predict(lay.predictions(exp))
    predict(lay.predictions(unfinished), ["a"])
    predict(lay.predictions(spec.experiment("selftalk", "ours", weight=0.1)))  # another kappa's run
    predict(lay.talkers / "by_hand" / "pred_synth-voca_test")
    # a planned run predicted under one rotating identity per clip, not the smoke spec's every identity
    predict(lay.predictions(spec.experiment("faceformer", "syncnet3d", weight=1.0).with_(conditions=1)))
    predict(lay.predictions(spec.experiment("faceformer", "none", ex.CONFIG2)))  # Table 4: synth-mead
    with caplog.at_level(logging.WARNING, logger="p3d.experiments.runs"):
        found = ex.metric_validation_talkers("smoke", d, clips)
    assert list(found) == sorted([base.name, ours.name])
    assert found[ours.name] == {c: lay.predictions(ours) / f"{c}_condition_X.npy" for c in clips}
    assert unfinished.name in caplog.text and "10 of 12 planned talkers" in caplog.text
    found = ex.metric_validation_talkers("smoke", d, clips, extra=["by_hand", base.name])
    assert list(found) == sorted([base.name, "by_hand", ours.name])
    with pytest.raises(InputError, match="extra_talkers: nope"):
        ex.metric_validation_talkers("smoke", d, clips, extra=["nope"])
    with pytest.raises(InputError, match="list of run names"):
        ex.metric_validation_talkers("smoke", d, clips, extra="by_hand")


def test_preset_grid_only_where_the_weight_is_fixed_in_advance(tmp_path, monkeypatch):
    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    assert ex.preset_grid("smoke", d) is None and not (tmp_path / "d").exists()
    seen = {}
    monkeypatch.setattr("p3d.experiments.runs.prepare_corpora", lambda preset, dirs, **kw: seen.setdefault("data", preset))
    monkeypatch.setattr("p3d.experiments.runs.grid_weight", lambda spec, dirs: 2e-7)
    monkeypatch.setattr("p3d.experiments.grid.run_grid", lambda exps, dirs, **kw: seen.update(exps=exps, **kw) or "done")
    for preset in ("full", "cpu"):
        assert ex.preset_grid(preset, d, workers=3) == "done"
        spec = ex.spec_for(preset)
        assert seen["data"] == preset and seen["workers"] == 3 and seen["n_resamples"] == spec.n_resamples
        assert seen["exps"] == [*spec.config1(2e-7), *spec.config2(2e-7)] and seen["on_task"] is None
        assert {e.conditions for e in seen["exps"]} == {1}  # one rotating training identity per test clip
        seen.clear()


def test_plan_trains_each_critic_pipeline_before_its_talkers(tmp_path):
    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    spec = ex.spec_for("full", models=("faceformer",), ablation_models=(), table2_seeds=3, critic_pipelines=3)
    tasks = ex.plan(spec.config1(1e-7), d)
    keys = [t.key for t in tasks]
    pos = {k: i for i, k in enumerate(keys)}
    assert all(pos[dep] < pos[t.key] for t in tasks for dep in t.deps)
    assert {"stage1:full", "stage1:full:c1", "stage1:full:c2", "loss_critic:full:ours:c2"} <= set(keys)
    train = next(t for t in tasks if t.key.startswith("train:full:faceformer_ours") and "_c2_" in t.key)
    assert train.deps == ("loss_critic:full:ours:c2",)
    crit = next(t for t in tasks if t.key == "critic:full:ours:c1")
    assert crit.args[-1] == {"stop": "plateau", "steps": 1500} and crit.deps == ("stage1:full:c1",)
    assert all(callable(t.fn) for t in tasks)
    # two experiments asking one critic pipeline (one run folder per training) for other critic options: the first
    # one's options trained the pipeline and the second used it, silently; refused now
    first = spec.experiment("faceformer", "ours", seed=0)
    other = dataclasses.replace(first, seed=1, critic_steps=700)
    with pytest.raises(InputError, match="train critic pipeline 0 at full with different options"):
        ex.plan([first, other], d)
    assert ex.plan([first, dataclasses.replace(other, critic_seed=1)], d)  # its own pipeline: fine



def test_simulated_grid_dispatches_like_run_grid_and_is_bounded_below():
    task = lambda key, *deps: ex.Task(key, print, (), deps)  # noqa: E731
    a, b, c, d = task("a"), task("b"), task("c", "a"), task("d")
    secs = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 1.0}
    # a, b start; b ends at 1 and d (c waits for a) takes its worker; a ends at 3, c runs 3-5
    assert ex.simulate_grid([a, b, c, d], secs, workers=2) == 5.0
    assert ex.simulate_grid([a, b, c, d], secs, workers=1) == 7.0
    assert ex.critical_path_s([a, b, c, d], secs) == 5.0
    # plan order leaves the long task for last; longest-first does not
    x, y, z = task("x"), task("y"), task("z")
    secs = {"x": 1.0, "y": 1.0, "z": 4.0}
    assert ex.simulate_grid([x, y, z], secs, workers=2) == 5.0
    assert ex.simulate_grid([x, y, z], secs, workers=2, priority=lambda t: -secs[t.key]) == 4.0
    assert ex.simulate_grid([x, y, z], secs, workers=8) == ex.critical_path_s([x, y, z], secs) == 4.0
    with pytest.raises(InputError, match="no seconds for 1 of the 3 tasks"):
        ex.simulate_grid([x, y, z], {"x": 1.0, "y": 1.0})
    with pytest.raises(InputError, match="positive process count"):
        ex.simulate_grid([x], {"x": 1.0}, workers=0)
    with pytest.raises(InputError, match=">= 0"):
        ex.critical_path_s([x], {"x": float("nan")})



def test_simulated_schedule_fills_only_the_free_workers_and_the_critical_path_takes_the_longest_dependency():
    """simulate_grid runs at most ``workers`` tasks at a time; critical_path_s is the longest chain (a task starts
    after the last of its dependencies ends, not after their sum)."""
    task = lambda key, *deps: ex.Task(key, print, (), deps)  # noqa: E731
    a, b, c, d = task("a"), task("b"), task("c"), task("d")
    secs = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 2.0}
    # a, b start at 0; b ends at 1 and c takes its worker (1-3); a and c end at 3, then d runs 3-5
    assert ex.simulate_grid([a, b, c, d], secs, workers=2) == 5.0
    e = task("e", "a", "b")
    assert ex.critical_path_s([a, b, e], {"a": 3.0, "b": 1.0, "e": 2.0}) == 5.0  # max(3, 1) + 2


def test_group_arms_sorts_each_arm_by_seed():
    """Each group is sorted by seed, whatever the order of the results."""
    runs = [{"experiment": {"model": "faceformer", "critic": "none", "train": ["synth-voca"], "preset": "smoke",
                            "seed": s, "split": "test"}, "name": f"run{s}"} for s in (2, 0, 1)]
    assert [r["name"] for r in ex.group_arms(runs)[0]] == ["run0", "run1", "run2"]

# -- statistics -------------------------------------------------------------------------------------------
def _fake_rows(rng, n_clips=12, n_cond=3, slope=0.8, levels=False):
    rows, data = [], []
    for k in range(n_clips):
        ident = f"id{k % 2}"
        speech = rng.normal()
        lip_gt = slope * speech + 0.3 * rng.normal()
        data.append({"gt": f"c{k}.npy", "identity": ident, "speech_intensity": speech, "lip_intensity": lip_gt,
                     "plrs": 0.5})
        for c in range(n_cond):
            rows.append({"pred": f"c{k}_condition_id{c}.npy", "gt": f"c{k}.npy", "identity": ident,
                         "mtm_ms": 40 + k + c if k != 3 else np.nan,
                         "lve": 1e-5 * (1 + k), "fdd": 0.0, "plrs": 0.1 * (k % 3), "speech_intensity": speech,
                         "lip_intensity": 0.5 * lip_gt + 0.5 * rng.normal()})
    lv = {f"c{k}": (k % 3 + 1 if levels else None) for k in range(n_clips)}
    return pd.DataFrame(rows), pd.DataFrame(data), lv


def test_summarise_values_and_cluster_intervals():
    per_clip, data, levels = _fake_rows(np.random.default_rng(0))
    s = ex.summarise(per_clip, data, levels, n_resamples=300)
    assert s["n_clips"] == 12 and s["n_predictions"] == 36
    assert s["mtm_ms"]["value"] == pytest.approx(np.nanmean(per_clip["mtm_ms"]))  # evaluate's row mean, NaN skipped
    assert s["lve"]["value"] == pytest.approx(per_clip["lve"].mean())
    lo, hi = s["plrs"]["ci"]
    assert lo < s["plrs"]["value"] < hi
    from p3d import metrics

    model_r = metrics.slcc(per_clip["speech_intensity"], per_clip["lip_intensity"], per_clip["identity"])
    data_r = metrics.slcc(data["speech_intensity"], data["lip_intensity"], data["identity"])
    e = s["slcc"]["all"]
    assert e["value"] == pytest.approx(model_r) and e["data"] == pytest.approx(data_r)
    assert e["delta"] == pytest.approx(abs(model_r - data_r))
    assert e["ci"][0] <= e["value"] <= e["ci"][1] and e["delta_ci"][0] >= 0
    # identical predictions in every condition: the CI is over 12 clips, so it is as wide as a 12-value one
    const = per_clip.assign(plrs=per_clip.groupby("gt")["plrs"].transform("first"))
    one = const.drop_duplicates("gt")
    w_rows = np.diff(ex.summarise(const, None, n_resamples=300)["plrs"]["ci"])[0]
    w_clips = np.diff(ex.summarise(one, None, n_resamples=300)["plrs"]["ci"])[0]
    assert w_rows == pytest.approx(w_clips)


def test_summarise_level_wise():
    per_clip, data, levels = _fake_rows(np.random.default_rng(1), n_clips=18, levels=True)
    s = ex.summarise(per_clip, data, levels, n_resamples=100)
    assert set(s["slcc"]) == {"1", "2", "3", "all"}
    from p3d import metrics

    lv = per_clip["gt"].str.removesuffix(".npy").map(lambda x: str(levels[x]))
    expected = metrics.slcc_by_level(per_clip["speech_intensity"], per_clip["lip_intensity"], per_clip["identity"], lv)
    for k in ("1", "2", "3", "all"):
        assert s["slcc"][k]["value"] == pytest.approx(expected[k])


def test_paired_difference_sign_and_interval():
    per_clip, data, levels = _fake_rows(np.random.default_rng(2))
    a = {"per_clip": per_clip, "data": {"per_clip": data}, "levels": levels}
    b = {"per_clip": per_clip.assign(plrs=per_clip["plrs"] + 0.05), "data": {"per_clip": data}, "levels": levels}
    d = ex.paired_difference(a, b, "plrs", n_resamples=200)
    assert d["diff"] == pytest.approx(0.05) and d["ci"] == pytest.approx([0.05, 0.05])
    same = ex.paired_difference(a, a, "slcc_delta", n_resamples=50)
    assert same["diff"] == 0 and same["ci"] == [0.0, 0.0]
    table = ex.loss_effects([("x", a, b)], metrics=("plrs", "lve"), n_resamples=100)
    assert list(table["verdict"]) == ["better", "no clear change"]


def test_loss_effects_report_plrs_c_only_where_both_sides_computed_it():
    per_clip, data, levels = _fake_rows(np.random.default_rng(3))
    with_c = per_clip.assign(plrs_calibrated=per_clip["plrs"] - 0.2)
    a = {"per_clip": with_c, "data": {"per_clip": data}, "levels": levels}
    b = {"per_clip": with_c.assign(plrs_calibrated=with_c["plrs_calibrated"] - 0.03), "data": {"per_clip": data},
         "levels": levels}
    table = ex.loss_effects([("x", a, b)], metrics=("plrs", "plrs_calibrated"), n_resamples=100)
    assert list(table["metric"]) == ["PLRS", "PLRS-c"]
    assert table.set_index("metric").loc["PLRS-c", "change"] == pytest.approx(-0.03)
    assert table.set_index("metric").loc["PLRS-c", "verdict"] == "worse"
    without_c = {"per_clip": per_clip, "data": {"per_clip": data}, "levels": levels}
    table = ex.loss_effects([("x", without_c, b)], metrics=("plrs", "plrs_calibrated"), n_resamples=100)
    assert list(table["metric"]) == ["PLRS"]                          # no row from a side that lacks PLRS-c


def test_loss_effects_plrs_p_is_the_weighted_change_of_plrs_and_plrs_c():
    per_clip, data, levels = _fake_rows(np.random.default_rng(4))
    with_c = per_clip.assign(plrs_calibrated=per_clip["plrs"] - 0.2)
    a = {"per_clip": with_c, "data": {"per_clip": data}, "levels": levels}
    # PLRS up 0.04, PLRS-c down 0.02: PLRS-p at weight 0.25 changes by 0.75 * 0.04 - 0.25 * 0.02 = 0.025
    b = {"per_clip": with_c.assign(plrs=with_c["plrs"] + 0.04, plrs_calibrated=with_c["plrs_calibrated"] - 0.02),
         "data": {"per_clip": data}, "levels": levels}
    table = ex.loss_effects([("x", a, b)], metrics=("plrs", "plrs_calibrated", "plrs_partial"), n_resamples=100,
                            hubness_weight=0.25).set_index("metric")
    assert list(table.index) == ["PLRS", "PLRS-c", "PLRS-p"]
    assert table.loc["PLRS-p", "change"] == pytest.approx(0.025)
    assert table.loc["PLRS-p", "verdict"] == "better"
    assert "plrs_partial" not in a["per_clip"]  # inputs untouched
    # no weight, or a side without PLRS-c: no PLRS-p row
    assert "PLRS-p" not in set(ex.loss_effects([("x", a, b)], n_resamples=50)["metric"])
    without_c = {"per_clip": per_clip, "data": {"per_clip": data}, "levels": levels}
    assert "PLRS-p" not in set(ex.loss_effects([("x", without_c, b)], n_resamples=50, hubness_weight=0.5)["metric"])


def test_diagnostics_effects_direction_gt_and_missing_columns():
    per_clip, data, levels = _fake_rows(np.random.default_rng(5))
    rng = np.random.default_rng(6)
    jerk_gt = {g: 100.0 + 10 * k for k, g in enumerate(sorted(set(per_clip["gt"])))}
    diag = per_clip.assign(lip_jerk=100 + rng.normal(0, 1, len(per_clip)), lip_jerk_gt=per_clip["gt"].map(jerk_gt),
                           upper_face_motion=1e-4, upper_face_motion_gt=2e-4, lip_amplitude_ratio=0.9)
    a = {"per_clip": diag, "data": {"per_clip": data}, "levels": levels}
    # with the loss: jerkier lips (+20 m/s^3), a still upper face, the same amplitude
    b = {"per_clip": diag.assign(lip_jerk=diag["lip_jerk"] + 20, upper_face_motion=0.0), "data": {"per_clip": data},
         "levels": levels}
    t = ex.diagnostics_effects([("x", a, b)], n_resamples=100).set_index("diagnostic")
    assert list(t.index) == ["lip jerk (m/s³)", "upper-face motion (mm RMS)", "lip amplitude / GT's"]  # no HF column
    jerk = t.loc["lip jerk (m/s³)"]
    assert jerk["change"] == pytest.approx(20) and jerk["direction"] == "higher"
    assert jerk["GT"] == pytest.approx(np.mean(list(jerk_gt.values())))      # once per GT clip, not per prediction
    assert jerk["GT gap with"] == pytest.approx(abs(jerk["with"] - jerk["GT"]))
    upper = t.loc["upper-face motion (mm RMS)"]                              # shown in mm
    assert upper["without"] == pytest.approx(0.1) and upper["GT"] == pytest.approx(0.2)
    assert upper["change"] == pytest.approx(-0.1) and upper["direction"] == "lower"
    amp = t.loc["lip amplitude / GT's"]
    assert amp["GT"] == 1.0 and amp["change"] == pytest.approx(0.0) and amp["direction"] == "no clear change"
    assert amp["GT gap without"] == pytest.approx(0.1)
    with pytest.raises(InputError, match="unknown"):
        ex.diagnostics_effects([("x", a, b)], diagnostics=("jerk",))
    bare = {"per_clip": per_clip, "data": {"per_clip": data}, "levels": levels}   # p3d eval --no-diagnostics
    assert ex.diagnostics_effects([("x", bare, b)], n_resamples=50).empty


def test_loss_effects_plrs_e_from_plrs_c_and_the_enrolled_amplitude():
    per_clip, data, levels = _fake_rows(np.random.default_rng(7))
    gt_amp = {f"c{k}.npy": 4.0 + (k % 2) for k in range(12)}  # speaker id0 at 4, id1 at 5
    with_c = per_clip.assign(plrs_calibrated=per_clip["plrs"] - 0.2, lip_amplitude_ratio=1.0)
    a = {"per_clip": with_c, "data": {"per_clip": data}, "levels": levels}
    # the same PLRS-c, lips damped to 80 %: PLRS-e drops by 0.5 * |0.8 - 1| = 0.1
    b = {"per_clip": with_c.assign(lip_amplitude_ratio=0.8), "data": {"per_clip": data}, "levels": levels}
    table = ex.loss_effects([("x", a, b)], metrics=("plrs_calibrated", "plrs_enrolled"), n_resamples=100,
                            intensity_weight=0.5, gt_amplitude=gt_amp).set_index("metric")
    assert list(table.index) == ["PLRS-c", "PLRS-e"]
    assert table.loc["PLRS-c", "change"] == pytest.approx(0.0)
    assert table.loc["PLRS-e", "change"] == pytest.approx(-0.1) and table.loc["PLRS-e", "verdict"] == "worse"
    out = ex.with_plrs_enrolled(a, 0.5, gt_amp)["per_clip"]
    np.testing.assert_allclose(out["plrs_enrolled"], with_c["plrs_calibrated"])  # each speaker's usual amplitude
    assert "plrs_enrolled" not in with_c
    # no weight, or a side without the diagnostics: no PLRS-e row; a weight without amplitudes is refused
    assert "PLRS-e" not in set(ex.loss_effects([("x", a, b)], n_resamples=50)["metric"])
    bare = {"per_clip": with_c.drop(columns="lip_amplitude_ratio"), "data": {"per_clip": data}, "levels": levels}
    assert "PLRS-e" not in set(ex.loss_effects([("x", bare, b)], n_resamples=50, intensity_weight=0.5,
                                               gt_amplitude=gt_amp)["metric"])
    # with levels, a clip is judged against the speaker's clips of its own level
    clip_k = with_c["gt"].str[1:-4].astype(int)
    lv = with_c.assign(level=1 + (clip_k // 2) % 2)                           # clips c0, c1: level 1; c2, c3: 2 ...
    amp_lv = {f"c{k}.npy": 4.0 * (1 + (k // 2) % 2) for k in range(12)}     # level 2 at twice level 1's amplitude
    out = ex.with_plrs_enrolled({"per_clip": lv}, 0.5, amp_lv)["per_clip"]
    np.testing.assert_allclose(out["plrs_enrolled"], lv["plrs_calibrated"])
    pooled = ex.with_plrs_enrolled({"per_clip": lv.drop(columns="level")}, 0.5, amp_lv)["per_clip"]
    assert (pooled["plrs_enrolled"] < lv["plrs_calibrated"] - 0.1).all()      # levels pooled: every clip is off
    with pytest.raises(InputError, match="needs both"):
        ex.loss_effects([("x", a, b)], n_resamples=50, intensity_weight=0.5)
    with pytest.raises(InputError, match="no lip amplitude"):
        ex.with_plrs_enrolled(a, 0.5, {"c0.npy": 4.0})


def _run(per_clip, data, levels, seed, **exp):
    e = {"model": "faceformer", "critic": "none", "train": ["synth-voca"], "preset": "smoke", "seed": seed,
         "split": "test", **exp}
    return {"experiment": e, "name": f"run{seed}", "per_clip": per_clip, "data": {"per_clip": data}, "levels": levels,
            "summary": ex.summarise(per_clip, data, levels, n_resamples=100), "loss_weight": None, "loss_ratio": None}


def test_arms_pool_seeds_and_one_seed_is_the_run_itself():
    rng = np.random.default_rng(5)
    per_clip, data, levels = _fake_rows(rng)
    runs = [_run(per_clip.assign(plrs=per_clip["plrs"] + 0.1 * s), data, levels, s) for s in range(3)]
    one = ex.arms(runs[:1], n_resamples=100)[0]
    assert one["summary"]["plrs"] == runs[0]["summary"]["plrs"] and one["summary"]["n_seeds"] == 1
    pooled = ex.arms(runs, n_resamples=100)
    assert len(pooled) == 1 and pooled[0].seeds == (0, 1, 2)
    shuffled = ex.arms([runs[2], runs[0], runs[1]], n_resamples=100)[0]  # an arm's runs in seed order, as documented
    assert shuffled.seeds == (0, 1, 2) and [r["name"] for r in shuffled.runs] == ["run0", "run1", "run2"]
    s = pooled[0]["summary"]
    assert s["plrs"]["value"] == pytest.approx(np.mean([r["summary"]["plrs"]["value"] for r in runs]))
    # the seeds disagree by 0.1 each: the pooled interval is wider than one run's
    assert np.diff(s["plrs"]["ci"])[0] > np.diff(runs[0]["summary"]["plrs"]["ci"])[0]
    assert s["slcc"]["all"]["value"] == pytest.approx(runs[0]["summary"]["slcc"]["all"]["value"])
    long = ex.long_form(pooled + runs)
    assert set(long["seed"].astype(str)) == {"all", "0", "1", "2"}
    assert set(long.loc[long["seed"].astype(str) == "all", "n_seeds"]) == {3}
    assert set(long.loc[long["seed"].astype(str) != "all", "n_seeds"]) == {1}
    # effects between arms pair the runs by seed; b - a = 0.05 on every seed
    b_runs = [_run(r["per_clip"].assign(plrs=r["per_clip"]["plrs"] + 0.05), data, levels, r["experiment"]["seed"],
                   critic="ours") for r in runs]
    a_arm, b_arm = ex.arms(runs + b_runs, n_resamples=50)
    d = ex.paired_difference(a_arm, b_arm, "plrs", n_resamples=100)
    assert d["diff"] == pytest.approx(0.05) and d["ci"] == pytest.approx([0.05, 0.05]) and d["n_seeds"] == 3
    dd = ex.paired_difference(a_arm, a_arm, "slcc_delta", n_resamples=20)
    assert dd["diff"] == 0 and dd["n_seeds"] == 3


def test_arms_refuse_two_runs_of_one_seed_instead_of_dropping_one():
    """The arm of a run leaves out its critic pipeline: two runs of one arm and seed (critic pipelines 0 and 1) were
    pooled as one run, the second dropped unsaid. The same run evaluated twice is still kept once."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(5))
    a = _run(per_clip, data, levels, 0, critic="ours", loss_weight=1e-7)
    assert [len(arm.runs) for arm in ex.arms([a, dict(a)], n_resamples=20)] == [1]
    b = {**_run(per_clip.assign(plrs=per_clip["plrs"] + 0.2), data, levels, 0, critic="ours", loss_weight=1e-7,
                critic_seed=1), "name": "run0_c1"}
    with pytest.raises(InputError, match=r"two runs of one arm at talker seed 0 \(run0 and run0_c1"):
        ex.arms([a, b], n_resamples=20)


def test_write_long_form_stacks_the_arms_then_the_runs(tmp_path):
    """config1_results.csv / config2_results.csv (notebooks 06 and 07, read by p3d.claims): the pooled arms' long
    form, then the runs', in one CSV written atomically."""
    rng = np.random.default_rng(5)
    per_clip, data, levels = _fake_rows(rng)
    runs = [_run(per_clip.assign(plrs=per_clip["plrs"] + 0.1 * s), data, levels, s) for s in range(2)]
    pooled = ex.arms(runs, n_resamples=50)
    path = ex.write_long_form(tmp_path / "config1_results.csv", pooled, runs)
    assert path == tmp_path / "config1_results.csv" and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    want = pd.concat([ex.long_form(pooled), ex.long_form(runs)], ignore_index=True)
    assert path.read_text() == want.to_csv(index=False)
    assert pd.read_csv(path)["seed"].astype(str).tolist()[:1] == ["all"]


def test_per_seed_effects_are_each_seeds_own_paired_changes():
    """One row per (seed, pair, metric) with the pooled table's labels; a pair that a seed lacks has no row for it;
    with one seed, no rows but the columns (a per-seed count over one seed says nothing)."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(7))
    deltas = {0: 0.05, 1: -0.02, 2: 0.03}
    runs = [_run(per_clip, data, levels, s) for s in (0, 1, 2, 3)]                       # seed 3: no "ours" arm
    runs += [_run(per_clip.assign(plrs=per_clip["plrs"] + d), data, levels, s, critic="ours")
             for s, d in deltas.items()]

    def pairs_of(arms):
        return ex.loss_pairs(arms, ["faceformer", "selftalk"])   # no SelfTalk runs: its pair has no arm

    assert [(label, b) for label, _, b in pairs_of(ex.arms(runs[:4], n_resamples=50))] == [
        ("FaceFormer", None), ("SelfTalk", None)]
    table = ex.per_seed_effects(runs, pairs_of, n_resamples=50)
    assert list(table.columns[:3]) == ["comparison", "seed", "metric"]
    plrs = table[table["metric"] == "PLRS"]
    assert plrs["seed"].tolist() == [0, 1, 2] and set(plrs["comparison"]) == {"FaceFormer"}
    np.testing.assert_allclose(plrs["change"], [0.05, -0.02, 0.03], atol=1e-12)
    assert plrs["verdict"].tolist() == ["better", "worse", "better"] and (plrs["n_seeds"] == 1).all()
    pooled = ex.loss_effects(ex.loss_pairs(ex.arms(runs, n_resamples=50), ["faceformer"]), n_resamples=50)
    assert set(table["metric"]) == set(pooled["metric"])
    one = ex.per_seed_effects(runs[:1] + runs[4:5], pairs_of, n_resamples=50)
    assert one.empty and list(one.columns) == list(table.columns)


def test_effect_tables_give_the_test_clips_each_change_rests_on():
    """An arm whose seeds were scored on different test clips is compared on the clips every paired seed shares;
    the effect tables said how many seeds (n_seeds) but not how many clips, so two tables' rows on different clips
    looked alike. n_clips: the paired clips (MTM: those with a prediction defined in both arms; clip c3 has none)."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(13))
    fewer = per_clip[~per_clip["gt"].isin(["c10.npy", "c11.npy"])]               # seed 1 scored 10 of the 12 clips
    runs = [_run(per_clip, data, levels, 0), _run(fewer, data, levels, 1)]
    runs += [_run(r["per_clip"].assign(plrs=r["per_clip"]["plrs"] + 0.05), data, levels, s, critic="ours")
             for s, r in enumerate(runs[:2])]
    pooled = ex.loss_effects(ex.loss_pairs(ex.arms(runs, n_resamples=30), ["faceformer"]), n_resamples=30,
                             metrics=("mtm_ms", "plrs", "slcc_delta")).set_index("metric")
    assert list(pooled.columns[:3]) == ["comparison", "n_seeds", "n_clips"]
    assert pooled["n_seeds"].tolist() == [2, 2, 2]
    assert pooled["n_clips"].to_dict() == {"MTM (ms)": 9, "PLRS": 10, "SLCC Δ": 10}
    seeds = ex.per_seed_effects(runs, lambda a: ex.loss_pairs(a, ["faceformer"]), n_resamples=30)
    plrs = seeds[seeds["metric"] == "PLRS"].set_index("seed")
    assert plrs["n_clips"].to_dict() == {0: 12, 1: 10}
    t = ex.diagnostics_effects([(f"seed {s}", _amp(runs[s]), _amp(runs[s + 2])) for s in (0, 1)], n_resamples=30)
    assert t["n_clips"].tolist() == [12, 10]


def _amp(run):
    return {**run, "per_clip": run["per_clip"].assign(lip_amplitude_ratio=1.0)}


def test_effects_of_a_pair_with_a_missing_arm_are_refused_with_one_line():
    """Mid-way through a grid, loss_pairs gives None for an arm whose runs have not finished: loss_effects raised
    TypeError ('argument of type NoneType is not iterable'); it and diagnostics_effects now name the pair."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(11))
    pairs = ex.loss_pairs(ex.arms([_run(per_clip, data, levels, 0)], n_resamples=20), ["faceformer"])
    assert pairs[0][2] is None
    with pytest.raises(InputError, match=r"loss_effects: FaceFormer: no result with \(the second arm\)"):
        ex.loss_effects(pairs, n_resamples=20)
    with pytest.raises(InputError, match="loss_effects: FaceFormer: no result with"):
        ex.loss_effects(pairs, n_resamples=20, hubness_weight=0.5)
    with pytest.raises(InputError, match=r"diagnostics_effects: FaceFormer: no result without \(the first arm\)"):
        ex.diagnostics_effects([("FaceFormer", None, pairs[0][1])], n_resamples=20)


def test_with_plrs_partial_on_an_arm_of_seeds():
    per_clip, data, levels = _fake_rows(np.random.default_rng(6))
    per_clip = per_clip.assign(plrs_calibrated=per_clip["plrs"] - 0.2)
    runs = [_run(per_clip.assign(plrs=per_clip["plrs"] + 0.1 * s), data, levels, s) for s in range(2)]
    arm = ex.arms(runs, n_resamples=50)[0]
    out = ex.with_plrs_partial(arm, 0.5)
    assert isinstance(out, type(arm)) and out.seeds == arm.seeds
    for r_in, r_out in zip(arm.runs, out.runs):
        np.testing.assert_allclose(r_out["per_clip"]["plrs_partial"],
                                   0.5 * (r_in["per_clip"]["plrs"] + r_in["per_clip"]["plrs_calibrated"]))
        assert "plrs_partial" not in r_in["per_clip"]


# -- the weight rule --------------------------------------------------------------------------------------
def _result(critic, kappa, plrs, lve, weight=None):
    return {"experiment": {"model": "faceformer", "critic": critic, "relative_weight": kappa},
            "loss_weight": weight, "loss_ratio": None if kappa is None else 3 * kappa,
            "summary": {"mtm_ms": {"value": 40.0}, "lve": {"value": lve}, "plrs": {"value": plrs, "ci": [0, 1]},
                        "slcc": {"all": {"delta": 0.1}}}}


def test_select_kappa_best_plrs_within_lve_tolerance():
    base = _result("none", None, 0.10, 1.00e-5)
    cands = [_result("ours", 0.01, 0.11, 1.01e-5), _result("ours", 0.1, 0.15, 1.04e-5),
             _result("ours", 1.0, 0.30, 1.50e-5)]
    kappa, table = ex.select_kappa(base, cands)
    assert kappa == 0.1 and list(table["chosen"]) == [False, False, True, False]
    assert table["LVE change vs baseline"].iloc[3] == pytest.approx(0.5)
    # nothing within the tolerance: the smallest weight
    kappa, _ = ex.select_kappa(base, [_result("ours", 1.0, 0.3, 2e-5), _result("ours", 0.1, 0.2, 2e-5)])
    assert kappa == 0.1
    # "at most" the tolerance above the baseline: a candidate exactly at it is accepted (1.5 / 1.0 - 1 = 0.5 exactly)
    kappa, _ = ex.select_kappa(base, [_result("ours", 0.1, 0.2, 1.0e-5), _result("ours", 1.0, 0.3, 1.5e-5)],
                               lve_tolerance=0.5)
    assert kappa == 1.0


def test_kappa_selection_per_model_from_the_val_runs(tmp_path):
    """Notebooks 06 and 07 choose kappa with one function: per model, from the val runs only (a test run of the same
    arm beside them is not a second match), with the note's L_model from each baseline's training log."""
    def run(model, critic, kappa, plrs, lve, split="val"):
        r = _result(critic, kappa, plrs, lve)
        r["experiment"].update(model=model, split=split)
        r["summary"]["n_clips"] = 4
        r["run_dir"] = tmp_path / f"{model}_{critic}_{kappa}_{split}"
        r["run_dir"].mkdir()
        pd.DataFrame({"step": [1, 2, 3, 4], "model_loss": [9.0, 9.0, 2.0, 2.0]}).to_csv(r["run_dir"] / "metrics.csv")
        return r

    results = [run("faceformer", "none", None, 0.10, 1.0e-5), run("faceformer", "ours", 0.1, 0.15, 1.04e-5),
               run("faceformer", "ours", 1.0, 0.30, 1.5e-5), run("faceformer", "none", None, 0.1, 1e-5, split="test"),
               run("selftalk", "none", None, 0.10, 1.0e-5), run("selftalk", "ours", 0.1, 0.12, 1.01e-5),
               run("selftalk", "ours", 1.0, 0.14, 1.02e-5)]
    kappas, table, note = ex.kappa_selection(results, ["faceformer", "selftalk"], [0.1, 1.0])
    assert kappas == {"faceformer": 0.1, "selftalk": 1.0}
    assert list(table["model"]) == ["FaceFormer"] * 3 + ["SelfTalk"] * 3
    assert list(table["chosen"]) == [False, True, False, False, False, True]
    assert "FaceFormer 2, SelfTalk 2" in note and "kappa = 5e-08 for FaceFormer" in note
    assert "FaceFormer kappa = 0.1, SelfTalk kappa = 1" in note and "Val: 4 clips" in note
    assert ex.kappa_selection(results, ["faceformer"], [0.1])[0] == {"faceformer": 0.1}
    with pytest.raises(InputError, match="no val run of selftalk for kappa 0.01"):
        ex.kappa_selection(results, ["selftalk"], [0.01, 0.1])


def test_choose_weight_trains_the_selection_beside_the_baselines_and_picks_kappa(tmp_path, monkeypatch):
    """Notebook 06's weight (and notebook 07's when 06 has not run): the selection of each model and the Config 1
    baselines in one grid, kappa chosen from the val runs only; a fixed weight trains nothing."""
    from p3d.experiments.grid import GridResult

    def run(model, critic, kappa, plrs, lve, split="val"):
        r = _result(critic, kappa, plrs, lve)
        r["experiment"].update(model=model, split=split)
        r["summary"]["n_clips"] = 4
        r["run_dir"] = tmp_path / f"{model}_{critic}_{kappa}_{split}"
        r["run_dir"].mkdir(exist_ok=True)
        pd.DataFrame({"step": [1, 2], "model_loss": [2.0, 2.0]}).to_csv(r["run_dir"] / "metrics.csv")
        return r

    results = {m: [run(m, "none", None, 0.10, 1.0e-5), run(m, "ours", 0.1, 0.15, 1.04e-5),
                   run(m, "ours", 1.0, 0.30 if m == "selftalk" else 0.12, 1.05e-5)] for m in ("faceformer", "selftalk")}
    seen = {}

    def fake_grid(exps, dirs, **kw):
        seen.update(exps=exps, **kw)
        out = [r for e in exps if e.split == "val" for r in results[e.model]
               if r["experiment"]["critic"] == e.critic and r["experiment"]["relative_weight"] == e.relative_weight]
        return GridResult(out + [run(e.model, "none", None, 0.1, 1e-5, split="test") for e in exps if e.split == "test"],
                          None, 1.0)

    monkeypatch.setattr("p3d.experiments.grid.run_grid", fake_grid)
    spec = ex.spec_for("smoke")
    choice = ex.choose_weight(spec, "dirs", models=["faceformer"], candidates=[0.1, 1.0], baselines=["faceformer",
                              "selftalk"], workers=3)
    assert seen["exps"] == [*spec.selection("faceformer", [0.1, 1.0]),
                            spec.experiment("faceformer", "none", ex.CONFIG1, 0), spec.experiment("selftalk", "none", ex.CONFIG1, 0)]
    assert seen["workers"] == 3 and seen["n_resamples"] == spec.n_resamples
    assert choice.weight == 0.1 and list(choice.table["chosen"]) == [False, True, False]
    assert [r["experiment"]["split"] for r in choice.runs] == ["val"] * 3 and choice.grid.wall_s == 1.0
    assert choice.title == "Choosing the perceptual-loss weight on synth-voca val (FaceFormer, critic ours, preset `smoke`)"
    assert choice.note == ex.kappa_selection(choice.runs, ["faceformer"], [0.1, 1.0])[2]
    per_model = ex.choose_weight(spec, "dirs", models=["faceformer", "selftalk"], per_model=True, candidates=[0.1, 1.0])
    assert per_model.weight == {"faceformer": 0.1, "selftalk": 1.0}
    with pytest.raises(InputError, match="expected one model"):
        ex.choose_weight(spec, "dirs", models=["faceformer", "selftalk"])
    # fixed in advance: no grid; the weight of grid_weight, its rule in the table
    monkeypatch.setattr("p3d.experiments.runs.grid_weight", lambda spec, dirs, per_model=False: 2e-7)
    seen.clear()
    fixed = ex.choose_weight(ex.spec_for("full"), "dirs", baselines=["faceformer"])
    assert not seen and fixed.grid is None and fixed.runs == [] and fixed.weight == 2e-7
    assert fixed.table.to_dict("records") == [{"rule": "carried_loss_weight",
                                               "vocaset_motion_rms (m)": ex.spec_for("full").vocaset_motion_rms, "W": 2e-7}]
    assert fixed.title == "The perceptual-loss weight at preset `full`, fixed in advance"
    # notebook 07: the fixed weight, a given kappa, notebook 06's, else the same selection re-derived
    assert ex.config_weight(ex.spec_for("full"), "dirs", kappa=0.5) == 2e-7
    assert ex.config_weight(spec, "dirs", kappa=0.5) == 0.5
    assert ex.config_weight(spec, "dirs") == 2e-7  # grid_weight: the kappa notebook 06 chose
    monkeypatch.setattr("p3d.experiments.runs.grid_weight", lambda spec, dirs, per_model=False: None)
    tables_only = OutputDirs(*(tmp_path / "out" / n for n in ("f", "t", "r", "d", "runs")))
    assert ex.config_weight(spec, tables_only, models=["faceformer"], candidates=[0.1, 1.0]) == 0.1
    with pytest.raises(InputError, match="per_model_kappa"):
        ex.config_weight(spec, "dirs", per_model=True)


def test_config_weight_records_the_weight_it_chose_where_the_later_notebooks_read_it(tmp_path, monkeypatch):
    """Notebook 07 run before notebook 06 chooses kappa itself; the choice goes into the same table notebook 06
    writes (loss_weight_selection), so grid_weight (notebook 05 with a critic, notebook 09 with models) reads the
    kappa the Config 2 grid trained with, not None (the paper's 1e-7 in 05, a refusal in 09). A kappa given to the
    call, or one already chosen, is not (re)written."""
    from p3d.experiments.grid import WeightChoice

    table = pd.DataFrame({"model": ["FaceFormer"] * 3, "kappa": [None, 0.1, 1.0], "chosen": [False, False, True]})
    calls = []

    def fake_choice(spec, dirs, **kw):
        calls.append(kw)
        return WeightChoice(1.0, table, "Choosing the weight", "W = kappa x L_model.", None, [])

    monkeypatch.setattr("p3d.experiments.grid.choose_weight", fake_choice)
    spec = ex.spec_for("smoke")
    dirs = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    assert ex.grid_weight(spec, dirs) is None  # neither notebook has chosen
    assert ex.config_weight(spec, dirs, kappa=0.5) == 0.5 and not calls
    assert not (dirs.tables / "loss_weight_selection.csv").exists()
    assert ex.config_weight(spec, dirs, models=["faceformer"], candidates=[0.1, 1.0]) == 1.0
    assert calls == [{"models": ["faceformer"], "candidates": [0.1, 1.0]}]
    assert ex.grid_weight(spec, dirs) == 1.0  # what notebooks 05 and 09 read now
    assert "W = kappa x L_model." in (dirs.tables / "loss_weight_selection.md").read_text()
    assert ex.config_weight(spec, dirs) == 1.0 and len(calls) == 1  # chosen once
    # notebook 06's own record: the same table, per model under its own name
    ex.record_weight_choice(WeightChoice({"faceformer": 0.1}, table.assign(kappa=[None, 0.1, 1.0],
                                                                            chosen=[False, True, False]),
                                         "t", "n", None, []), dirs.tables, per_model=True)
    assert ex.grid_weight(spec, dirs, per_model=True) == {"faceformer": 0.1} and ex.grid_weight(spec, dirs) == 1.0


def test_record_weight_choice_warns_when_it_replaces_another_kappa(tmp_path, caplog):
    """Notebook 06 re-choosing kappa (other candidates) after notebook 07 trained Config 2 at the recorded one
    overwrites the record: the new kappa is what later notebooks read, and Config 2's tables are stale until 07
    runs again. The same choice again, a first choice, and a fixed weight's table say nothing."""
    import logging

    from p3d.experiments.grid import WeightChoice

    def choice(kappa):
        table = pd.DataFrame({"model": ["FaceFormer"] * 3, "kappa": [None, 0.1, 1.0],
                              "chosen": [False, kappa == 0.1, kappa == 1.0]})
        return WeightChoice(kappa, table, "t", "n", None, [])

    with caplog.at_level(logging.WARNING, logger="p3d.experiments.grid"):
        ex.record_weight_choice(choice(1.0), tmp_path)  # notebook 07 first
        ex.record_weight_choice(choice(1.0), tmp_path)
        assert not caplog.records
        ex.record_weight_choice(choice(0.1), tmp_path)  # notebook 06, other candidates
    assert ex.chosen_kappa(tmp_path) == 0.1
    assert len(caplog.records) == 1 and "kappa 0.1 replaces 1.0" in caplog.text and "stale" in caplog.text
    fixed = WeightChoice(2e-7, pd.DataFrame([{"rule": "carried_loss_weight", "W": 2e-7}]), "t", "n", None, [])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="p3d.experiments.grid"):
        ex.record_weight_choice(fixed, tmp_path / "fixed")
        ex.record_weight_choice(fixed, tmp_path / "fixed")
    assert not caplog.records and ex.chosen_kappa(tmp_path / "fixed") is None


def test_planned_runs_and_their_validation_curves(tmp_path):
    """Notebook 06's convergence table and validation-curve figure: the selection's runs, then Configs 1 and 2; each
    run with a val.csv in its model's panel labelled by its arm (an equal-length run's own-length run too), the
    critic pipelines' runs by kind."""
    spec = ex.spec_for("smoke", models=("faceformer", "selftalk"))
    selection = spec.selection("faceformer", [0.1])
    results = [{"experiment": dataclasses.asdict(e)} for e in selection]
    # the weight's val runs stop alike, each at its own stop, also in a grid of equal-length runs (a baseline continued
    # to its group's longest stop would set its LVE against candidates that were not)
    assert {e.length for e in ex.spec_for("smoke", equal_length=True).selection("faceformer", [0.1])} == {"own"}
    planned = spec.planned_runs(0.1, results)
    assert planned == [*selection, *spec.config1(0.1), *spec.config2(0.1)]
    assert spec.planned_runs(0.1, selection) == planned and spec.planned_runs(0.1) == planned[len(selection):]
    lay = ex.layout(OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs"))), "smoke")
    ours = spec.experiment("selftalk", "ours", ex.CONFIG2, 0, weight=0.1)
    equal = spec.experiment("faceformer", "none", ex.CONFIG1, 1).with_(length="equal")
    rows = [(lay.run(ours), "talker"), (lay.run(equal.own_length), "talker"), (lay.runs / "stage1", "stage1"),
            (lay.loss_critic("ours"), "finetune"), (lay.runs / "ours", "stage2"), (lay.runs / "no_curve", "stage2"),
            (lay.talkers / "elsewhere_seed0", "talker")]
    for run, _ in rows:
        run.mkdir(parents=True)
        if run.name != "no_curve":
            (run / "val.csv").write_text("step,val\n")
    convergence = pd.DataFrame({"run": [str(r.relative_to(lay.runs)) for r, _ in rows], "kind": [k for _, k in rows]})
    curves = lay.validation_curves(convergence, [*planned, equal])
    assert curves == [(lay.run(ours), "SelfTalk", "ours, synth-voca+synth-mead"),
                      (lay.run(equal.own_length), "FaceFormer", "none, synth-voca"),
                      (lay.runs / "stage1", "stage 1", "stage1"),
                      (lay.loss_critic("ours"), "loss critics", "loss_critics/ours"),
                      (lay.runs / "ours", "critics", "ours"),
                      (lay.talkers / "elsewhere_seed0", "critics", "talkers/elsewhere_seed0")]


def test_the_tables_take_the_test_split_of_their_corpus_only():
    """Tables 2/3/S7 show synth-voca's test split and Table 4 synth-mead's: a run evaluated on val (the weight's
    selection) or on the other corpus is no row of theirs."""
    from p3d.experiments.tables import config1_tests, config2_tests

    def result(**kw):
        return {"experiment": dataclasses.asdict(ex.TalkerExperiment("faceformer", **kw))}

    voca, voca_val, voca_on_mead = result(), result(split="val"), result(test="synth-mead")
    mead, mead_val = result(train=ex.CONFIG2), result(train=ex.CONFIG2, split="val")
    everything = [voca, voca_val, voca_on_mead, mead, mead_val]
    assert config1_tests(everything) == [voca]
    assert config2_tests(everything) == [voca_on_mead, mead]


def test_config2_settings_and_the_levelwise_slcc_bars():
    """Notebook 07's Fig. 6 and level-wise SLCC bars: each model's run per Table 4 setting, by label, and the data's
    own SLCC from the synth-voca + synth-mead baseline's data reference."""
    def result(model, train, critic, seed=0):
        return {"experiment": {"model": model, "train": list(train), "critic": critic, "seed": seed},
                "data": {"summary": {"slcc": {"all": {"value": 0.5}, "model": model}}}}

    results = [result(m, t, c, s) for m in ("faceformer", "selftalk") for t, c in ex.CONFIG2_SETTINGS.values()
               for s in (0, 1)]
    found = ex.config2_settings(results, "selftalk", seed=1)
    assert list(found) == ["synth-voca only", "+ synth-mead", "+ synth-mead + ours"]
    assert [(r["experiment"]["model"], tuple(r["experiment"]["train"]), r["experiment"]["critic"], r["experiment"]["seed"])
            for r in found.values()] == [("selftalk", ex.CONFIG1, "none", 1), ("selftalk", ex.CONFIG2, "none", 1),
                                         ("selftalk", ex.CONFIG2, "ours", 1)]
    pooled = [r for r in results if r["experiment"]["seed"] == 0]
    bars, data = ex.levelwise_slcc_bars(pooled, ["selftalk", "faceformer"])
    assert list(bars) == ["SelfTalk", "FaceFormer"] and bars["FaceFormer"] == ex.config2_settings(pooled, "faceformer")
    assert data == {"all": {"value": 0.5}, "model": "selftalk"}
    assert ex.config2_settings(pooled[:1], "faceformer")["+ synth-mead"] is None
    with pytest.raises(InputError, match="no synth-voca \\+ synth-mead baseline"):
        ex.levelwise_slcc_bars(pooled[:1], ["faceformer"])


def test_loss_scale_and_ratio_from_metrics(tmp_path):
    pd.DataFrame({"step": [10, 20, 30, 40], "model_loss": [9.0, 5.0, 2.0, 4.0],
                  "percp": [4.0] * 4, "percp_weighted": [0.4, 0.4, 0.4, 0.8]}).to_csv(tmp_path / "metrics.csv")
    assert ex.loss_scale(tmp_path) == pytest.approx(3.0)  # median of steps 30, 40
    assert ex.loss_ratio(tmp_path) == pytest.approx(0.2)
    with pytest.raises(InputError, match="no training log"):
        ex.loss_scale(tmp_path / "missing")
    # the ratio's median over the second half (steps 50-80 of 80): (0.2 + 0.3) / 2, the first half's 1.0s left out
    pd.DataFrame({"step": [10, 20, 30, 40, 50, 60, 70, 80], "model_loss": [1.0] * 8,
                  "percp_weighted": [1.0, 1.0, 1.0, 1.0, 0.1, 0.2, 0.3, 0.4]}).to_csv(tmp_path / "metrics.csv")
    assert ex.loss_ratio(tmp_path) == pytest.approx(0.25)



def test_loss_scale_refuses_a_non_positive_scale_and_a_run_without_a_critic_has_no_ratio(tmp_path):
    """``L_model`` must be positive ("no positive model_loss"); a run without ``percp_weighted`` (no critic) has
    no loss ratio (None)."""
    pd.DataFrame({"step": [10, 20, 30, 40], "model_loss": [1.0, 1.0, 0.0, 0.0]}).to_csv(tmp_path / "metrics.csv")
    with pytest.raises(InputError, match="no positive model_loss"):
        ex.loss_scale(tmp_path)
    assert ex.loss_ratio(tmp_path) is None

# -- end to end on tiny corpora ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grid(dirs):
    exps = [ex.TalkerExperiment("selftalk", preset="smoke", steps=4),
            ex.TalkerExperiment("selftalk", "ours", preset="smoke", steps=4, relative_weight=0.5),
            ex.TalkerExperiment("selftalk", "ours", preset="smoke", steps=4, relative_weight=0.5, split="val"),
            ex.TalkerExperiment("selftalk", preset="smoke", steps=4, test="synth-mead"),
            ex.TalkerExperiment("selftalk", "none", ex.CONFIG2, preset="smoke", steps=4)]
    return exps, ex.run_grid(exps, dirs, workers=1, n_resamples=50, progress=False)


def test_grid_trains_predicts_and_evaluates(dirs, grid):
    exps, g = grid
    assert len(g.results) == len(exps) and set(g.tasks["status"]) == {"done"}
    base, ours, ours_val, mead, c2 = g.results
    runs = dirs.runs / "smoke"
    # the loss critic is the stage-2 critic ("ours") fine-tuned on synth-voca train (paper C.2)
    req = json.loads((runs / "loss_critics" / "ours" / "request.json").read_text())
    assert req["kind"] == "finetune" and req["data"].endswith("synth-voca")
    assert req["options"]["init"] == str((runs / "ours" / "final.pt").resolve())
    # the PLRS evaluator: its own stage 1, identity half and seed, nothing shared with the critic pipeline
    ev = json.loads((runs / "evaluator" / "config.json").read_text())
    assert ev["stage1"].endswith("stage1_evaluator/final.pt") and (runs / "stage1_evaluator" / "final.pt").exists()
    for critic_run in ("stage1", "ours"):
        crit = json.loads((runs / critic_run / "config.json").read_text())
        assert set(crit["identity_list"]).isdisjoint(ev["identity_list"])
        assert crit["train"]["seed"] != ev["train"]["seed"]
    assert ev["shared_with_critics"]["shared_identities"] == ev["shared_with_critics"]["shared_seeds"] == []
    # relative weight: kappa times the baseline's late model loss
    assert ours["loss_weight"] == pytest.approx(0.5 * ex.loss_scale(runs / "talkers" / base["name"]))
    cfg = json.loads((runs / "talkers" / ours["name"] / "config.json").read_text())
    assert cfg["loss_weight"] == pytest.approx(ours["loss_weight"]) and cfg["critic"] == "ours"
    # predictions follow the official protocol: every test clip under every training identity
    assert base["summary"]["n_clips"] == 6 and base["summary"]["n_predictions"] == 12
    assert ours_val["summary"]["n_clips"] == 3 and ours_val["name"] == ours["name"]
    assert mead["name"] == base["name"] and set(mead["summary"]["slcc"]) == {"1", "2", "3", "all"}
    assert c2["summary"]["n_predictions"] == 6 * 4  # synth-mead test clips x (2 voca + 2 mead) styles
    for r in g.results:
        s = r["summary"]
        assert set(s) >= {"mtm_ms", "lve", "fdd", "plrs", "plrs_calibrated", "slcc"}
        assert np.isfinite(s["lve"]["value"])
        assert r["timing"]["predict_s"] is not None and (r["run_dir"] + "/eval_") in r["eval_dir"] + "/eval_"
        # PLRS-c beside the official PLRS: p3d eval's own summary agrees with the result's mean over clips
        evaluated = json.loads((Path(r["eval_dir"]) / "summary.json").read_text())["metrics"]
        assert s["plrs_calibrated"]["value"] == pytest.approx(evaluated["plrs_calibrated"]["value"], abs=1e-9)
        assert -2 <= s["plrs_calibrated"]["value"] <= 2 and s["plrs_calibrated"]["value"] != s["plrs"]["value"]
    # the data row: GT evaluated as a prediction
    d = base["data"]["summary"]
    assert d["lve"]["value"] == 0 and d["n_clips"] == 6 and -1 <= d["plrs"]["value"] <= 1
    assert "plrs_calibrated" in d
    frame = ex.summary_frame(base).set_index("metric")
    assert frame.loc["PLRS-c", "data"] == pytest.approx(d["plrs_calibrated"]["value"])


def test_grid_reuses_finished_runs(dirs, grid, monkeypatch, caplog):
    """A finished grid run again trains nothing; it first logs how many tasks it planned (a long grid's first
    task may take an hour)."""
    import logging

    exps, g = grid

    def boom(*a, **k):
        raise AssertionError("a finished run must not be trained again")

    monkeypatch.setattr("p3d.train.talker.build", boom)
    monkeypatch.setattr("p3d.predict.predict_split", boom)
    ended = []
    with caplog.at_level(logging.INFO, logger="p3d.experiments.grid"):
        again = ex.run_grid(exps[:2], dirs, workers=1, n_resamples=50, progress=False, on_task=ended.append)
    assert f"grid: {len(again.tasks)} tasks (finished ones are reused) in 1 worker process(es)" in caplog.text
    assert again.results[0]["summary"] == g.results[0]["summary"]
    assert ended == again.tasks.to_dict("records")  # on_task sees each task's row as it ends
    assert again.results[1]["timing"]["reused"] is True


def test_grid_refuses_a_finished_run_trained_before_a_config_default_changed(dirs, grid, monkeypatch, change_default):
    """The grid reused a finished talker run trained before a config default of its model changed (SelfTalk's number
    of layers, its velocity loss weight: fields the smoke preset leaves at their defaults, which the architecture
    fingerprint leaves out) as today's model; its claim now refuses it, naming the setting, before any training."""
    from p3d.models.selftalk import SelfTalkConfig

    def boom(*a, **k):
        raise AssertionError("refused before training")

    monkeypatch.setattr("p3d.train.talker.build", boom)
    exps, _ = grid
    for name, new, shown in (("layers", 2, "1 -> 2"), ("w_vel", 10.0, "1000.0 -> 10.0")):
        old = SelfTalkConfig.__dataclass_fields__[name].default
        change_default(SelfTalkConfig, name, new)
        with pytest.raises(InputError, match=rf"trained with other settings of the code \(architecture\.{name}: "
                                             rf"{shown}: a preset or a config default changed since\)"):
            ex.train_experiment(exps[0], dirs)
        change_default(SelfTalkConfig, name, old)
    assert ex.train_experiment(exps[0], dirs)["reused"] is True


def test_evaluation_plrs_matches_the_metric(dirs, grid):
    """p3d eval's PLRS (speech windows and embeddings shared by a clip's predictions) equals metrics.plrs."""
    from p3d import metrics
    from p3d.corpus import Corpus
    from p3d.io import load_audio
    from p3d.models.speech_mesh import load_critic

    _, g = grid
    r = g.results[0]
    row = r["per_clip"].iloc[-1]
    voca = Corpus.open(dirs.data / "smoke" / "synth-voca")
    audio, sr = load_audio(voca.wav_path(row["gt"].removesuffix(".npy")))
    pred = np.load(f"{r['run_dir']}/pred_synth-voca_test/{row['pred']}")
    model = load_critic(dirs.runs / "smoke" / "evaluator" / "final.pt")
    assert row["plrs"] == pytest.approx(metrics.plrs(audio, pred, model, fps=30, sr=sr), abs=1e-6)


def test_tables_from_results(grid):
    _, g = grid
    t2 = ex.table2(g.results)
    assert t2["Method"].iloc[0] == "synth-voca (GT data)" and len(t2) == 7
    assert t2.loc[t2["Method"] == "SelfTalk", "MTM (ms) ↓"].iloc[0] != "not run"
    assert (t2.loc[t2["Method"] == "FaceFormer", "MTM (ms) ↓"] == "not run").all()
    assert t2["paper: PLRS"].iloc[0] == "0.409"  # the paper's own number, in its labelled column
    t3 = ex.table3(g.results, models=["selftalk"])
    assert list(t3["Perceptual loss"])[1:] == ["✗", "3D SyncNet", "Ours w/o 2D prior", "Ours w/ 2D prior"]
    t4 = ex.table4(g.results, models=["selftalk"])
    assert {"SLCC Lv1", "Δ Avg ↓"} <= set(t4.columns) and t4["MTM (ms) ↓"].iloc[1] != "not run"
    assert t4["MTM (ms) ↓"].iloc[3] == "not run"  # + mead + ours was not in the grid
    s7 = ex.table_s7(g.results, models=["selftalk"])
    assert len(s7) == 2
    long = ex.long_form(g.results)
    assert {"mtm_ms", "plrs", "plrs_calibrated", "slcc", "slcc_delta"} <= set(long["metric"])
    assert not any("PLRS-c" in c for t in (t2, t3, t4, s7) for c in t.columns)  # the paper's columns only


def _cell_result(code, critic="none", train=("synth-voca",), test=None, seed=0, levels=("all",)):
    """A result whose every number encodes ``code`` (1, 2, ...): MTM code ms, LVE code*1e-5, FDD code*1e-7, PLRS
    code/10, SLCC and its Delta code/10 and code/100 (CIs around each), at each of ``levels``."""
    def e(v, key="value", ci="ci"):
        return {key: v, ci: [v * 0.5, v * 1.5]}

    slcc = {lv: {**e(code / 10), **e(code / 100, "delta", "delta_ci"), "data": 0.9} for lv in levels}
    return {"experiment": {"model": "faceformer", "critic": critic, "train": list(train), "preset": "smoke",
                           "seed": seed, "split": "test", "test": test},
            "name": f"r{code}", "loss_weight": None,
            "summary": {"n_clips": 4, "mtm_ms": e(float(code)), "lve": e(code * 1e-5), "fdd": e(code * 1e-7),
                        "plrs": e(code / 10), "slcc": slcc},
            "data": {"summary": {"plrs": e(0.5), "slcc": {lv: e(0.9) for lv in levels}}}}


def test_table_cells_show_their_arms_numbers_at_the_display_scales():
    """Each table cell shows the number of its own arm (model, critic, training corpora), LVE in 1e-5 m² and FDD in
    1e-7 m²; the long form keeps each run's seed and each Delta's own interval."""
    ff = "FaceFormer"
    config1 = [_cell_result(1, "none"), _cell_result(2, "ours"), _cell_result(3, "syncnet3d"), _cell_result(4, "no2d")]
    config2 = [_cell_result(5, "none", test="synth-mead", levels=("1", "2", "3", "all")),
               _cell_result(6, "none", ex.CONFIG2, levels=("1", "2", "3", "all")),
               _cell_result(7, "ours", ex.CONFIG2, levels=("1", "2", "3", "all"))]
    results = config1 + config2
    t2 = ex.table2(results, models=["faceformer"])
    assert list(t2["Method"]) == ["synth-voca (GT data)", ff, "  + ours (perceptual loss)"]
    assert list(t2["MTM (ms) ↓"])[1:] == ["1.0 [0.5, 1.5]", "2.0 [1.0, 3.0]"]
    assert list(t2["LVE ↓"])[1:] == ["1.000 [0.500, 1.500]", "2.000 [1.000, 3.000]"]
    assert list(t2["PLRS ↑"])[1:] == ["0.100 [0.050, 0.150]", "0.200 [0.100, 0.300]"]
    assert [c.split(" [")[0] for c in t2["Δ ↓"]][1:] == ["0.01", "0.02"]
    t3 = ex.table3(results, models=["faceformer"])
    assert list(t3["MTM (ms) ↓"])[1:] == ["1.0 [0.5, 1.5]", "3.0 [1.5, 4.5]", "4.0 [2.0, 6.0]", "2.0 [1.0, 3.0]"]
    t4 = ex.table4(results, models=["faceformer"])
    assert list(t4["MTM (ms) ↓"])[1:] == ["5.0 [2.5, 7.5]", "6.0 [3.0, 9.0]", "7.0 [3.5, 10.5]"]
    assert list(t4["LVE ↓"])[1:] == ["5.000 [2.500, 7.500]", "6.000 [3.000, 9.000]", "7.000 [3.500, 10.500]"]
    assert list(t4["SLCC Lv2"])[1:] == ["0.50 [0.25, 0.75]", "0.60 [0.30, 0.90]", "0.70 [0.35, 1.05]"]
    s7 = ex.table_s7(results, models=["faceformer"])
    assert list(s7["FDD (1e-7 m²)"]) == ["1.000 [0.500, 1.500]", "2.000 [1.000, 3.000]"]
    long = ex.long_form([_cell_result(2, "ours", seed=3)])
    assert set(long["seed"]) == {3}
    delta = long[long["metric"] == "slcc_delta"].iloc[0]
    assert (delta["value"], delta["ci_low"], delta["ci_high"]) == pytest.approx((0.02, 0.01, 0.03))


def _cached_without_metrics(cached):
    assert "plrs_calibrated" in cached["key"]["metrics"]
    del cached["key"]["metrics"]
    cached["summary"].pop("plrs_calibrated")
    return "plrs_calibrated"


def _cached_by_an_older(version: str, metric: str):
    """A cached evaluation keyed by an older ``version`` (:func:`p3d.experiments.runs._versions`), its ``metric``
    changed to show whether the cache is served."""
    def stale(cached):
        from p3d.experiments.runs import _versions

        assert cached["key"][version] == _versions()[version]
        cached["key"][version] -= 1
        cached["summary"][metric]["value"] = -1.0
        return metric
    return stale


@pytest.mark.parametrize("stale", [_cached_without_metrics, _cached_by_an_older("statistics", "lve"),
                                   _cached_by_an_older("features", "plrs"),
                                   _cached_by_an_older("metrics_version", "mtm_ms")],
                         ids=["before PLRS-c was requested", "older p3d.stats.STATISTICS_VERSION",
                              "older p3d.audio.FEATURE_VERSION", "older p3d.metrics.METRICS_VERSION"])
def test_a_stale_cached_evaluation_is_redone(dirs, grid, monkeypatch, stale):
    """An evaluation cached before the experiments requested PLRS-c (its key has no metrics), or summarised by older
    estimators (e.g. LVE averaged per prediction), is evaluated and summarised again instead of being reused beside
    new ones; the training (and the predictions) are reused."""
    import p3d.evaluate

    exps, g = grid
    done = Path(g.results[0]["eval_dir"]) / "table_summary.json"
    cached = json.loads(done.read_text())
    metric = stale(cached)
    done.write_text(json.dumps(cached))
    calls = []
    evaluate = p3d.evaluate.evaluate
    monkeypatch.setattr(p3d.evaluate, "evaluate", lambda *a, **k: calls.append(1) or evaluate(*a, **k))
    again = ex.run_experiment(exps[0], dirs, n_resamples=50)
    assert calls and again["timing"]["reused"] is True
    assert again["summary"][metric]["value"] == pytest.approx(g.results[0]["summary"][metric]["value"])


def _count_predict_and_evaluate(monkeypatch):
    """Count the calls of p3d.evaluate.evaluate and p3d.predict.predict_split (they still run): ``{name: calls}``."""
    import p3d.evaluate
    import p3d.predict

    calls = {"evaluate": 0, "predict": 0}

    def counted(name, fn):
        def call(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return call

    monkeypatch.setattr(p3d.evaluate, "evaluate", counted("evaluate", p3d.evaluate.evaluate))
    monkeypatch.setattr(p3d.predict, "predict_split", counted("predict", p3d.predict.predict_split))
    return calls


def test_a_test_corpus_regenerated_at_its_path_is_predicted_and_evaluated_again(dirs, grid, monkeypatch):
    """A run trained on synth-voca and tested on synth-mead, after synth-mead changed at its path (here: its
    meta.json, as a regeneration with another seed changes it): its cached evaluation and the data's own reference
    were keyed by the path and came back with the old corpus' numbers; both are computed again, the predictions
    redone and the GT copies written again."""
    exps, g = grid
    exp = exps[3]
    assert exp.test_corpus == "synth-mead" and "synth-mead" not in exp.train
    meta = ex.layout(dirs, "smoke").corpus("synth-mead") / "meta.json"
    original = meta.read_bytes()
    calls = _count_predict_and_evaluate(monkeypatch)
    ex.predict_and_evaluate(exp, dirs, n_resamples=50)
    assert calls == {"evaluate": 0, "predict": 0}  # cached
    gt_copies = ex.layout(dirs, "smoke").data_reference("synth-mead", exp.split) / "gt"
    stray = gt_copies / "not_a_clip_of_this_corpus.npy"
    np.save(stray, np.zeros((2, 3, 3), np.float32))
    try:
        meta.write_bytes(original.replace(b"{", b'{"regenerated": true, ', 1))
        ex.predict_and_evaluate(exp, dirs, n_resamples=50)
        assert calls == {"evaluate": 2, "predict": 1}  # the data's reference and the run; predictions redone
        assert not stray.exists()
    finally:
        meta.write_bytes(original)
    ex.predict_and_evaluate(exp, dirs, n_resamples=50)  # back to the corpus the other tests share


def test_predictions_are_redone_when_the_prediction_version_is_raised(dirs, grid, monkeypatch):
    """A change to what a checkpoint predicts (p3d.predict.PREDICTION_VERSION raised) left the grid's predictions
    and their cached evaluation in place; both are redone."""
    import p3d.predict

    exps, g = grid
    exp = exps[0]
    calls = _count_predict_and_evaluate(monkeypatch)
    ex.predict_and_evaluate(exp, dirs, n_resamples=50)
    assert calls == {"evaluate": 0, "predict": 0}  # cached
    version = p3d.predict.PREDICTION_VERSION
    monkeypatch.setattr(p3d.predict, "PREDICTION_VERSION", version + 1)
    ex.predict_and_evaluate(exp, dirs, n_resamples=50)
    assert calls == {"evaluate": 1, "predict": 1}
    record = json.loads((ex.layout(dirs, "smoke").predictions(exp) / "predictions.json").read_text())
    assert record["source"]["prediction_version"] == version + 1
    monkeypatch.setattr(p3d.predict, "PREDICTION_VERSION", version)
    ex.predict_and_evaluate(exp, dirs, n_resamples=50)  # back to the predictions the other tests share


def test_plrs_hubness_weight_chosen_on_val_and_cached(dirs, grid, monkeypatch):
    from p3d.analysis import metric_validation as mv
    from p3d.analysis import referee_validity as rv

    w, table = ex.plrs_hubness_weight("smoke", dirs, n_resamples=50)
    assert 0.0 <= w <= 1.0 and table["chosen"].sum() == 1
    assert table.loc[table["chosen"], "hubness_weight"].iloc[0] == w
    assert tuple(table["hubness_weight"]) == rv.HUBNESS_WEIGHTS
    monkeypatch.setattr(mv, "metric_rows", lambda *a, **k: pytest.fail("the cached weight was recomputed"))
    again, table2 = ex.plrs_hubness_weight("smoke", dirs, n_resamples=50)
    assert again == w and table2.equals(table)
    # a battery of another corpus or code version is scored again, and the weight chosen again on its rows
    monkeypatch.undo()
    monkeypatch.setattr("p3d.audio.FEATURE_VERSION", 999)
    scored = []
    metric_rows = mv.metric_rows
    monkeypatch.setattr(mv, "metric_rows", lambda *a, **k: scored.append(1) or metric_rows(*a, **k))
    third, _ = ex.plrs_hubness_weight("smoke", dirs, n_resamples=50)
    assert scored == [1] and third == w


def test_plrs_intensity_weight_shares_the_cached_validation_battery(dirs, grid, monkeypatch):
    from p3d.analysis import metric_validation as mv
    from p3d.analysis import referee_validity as rv

    ex.plrs_hubness_weight("smoke", dirs, n_resamples=50)  # computes and caches the battery
    monkeypatch.setattr(mv, "metric_rows", lambda *a, **k: pytest.fail("the validation battery was rescored"))
    w, table = ex.plrs_intensity_weight("smoke", dirs, n_resamples=50)
    assert w in rv.INTENSITY_WEIGHTS and table["chosen"].sum() == 1
    assert table.loc[table["chosen"], "intensity_weight"].iloc[0] == w
    rows = ex.validation_battery("smoke", dirs)
    assert {"plrs_calibrated", "lip_amplitude", "identity"} <= set(rows.columns)
    assert set(rows["sequence"]) == {"gt", *rv.BATTERY_DEGRADATIONS}
    amps = ex.gt_lip_amplitudes("smoke", dirs, "synth-voca", "val")
    gt = rows[rows["sequence"] == "gt"]
    np.testing.assert_allclose([amps[f"{c}.npy"] for c in gt["clip"]], gt["lip_amplitude"], rtol=1e-6)


def test_speech_embedding_cache_gives_the_same_values(dirs, grid, tmp_path):
    from p3d.losses.perceptual_loss import PerceptualLoss
    from p3d.models.speech_mesh import load_critic
    from p3d.train.talker import SpeechEmbeddingCache

    ckpt = dirs.runs / "smoke" / "loss_critics" / "ours" / "final.pt"
    loss = PerceptualLoss(load_critic(ckpt))
    cache = SpeechEmbeddingCache(loss, ckpt, tmp_path)
    windows = np.random.default_rng(0).standard_normal((7, 20, 128)).astype(np.float32)
    first = cache.speech_embeddings(windows)
    assert len(list(tmp_path.rglob("*.npy"))) == 1
    second = cache.speech_embeddings(windows)
    assert torch.equal(first, second)
    assert torch.allclose(first, loss.speech_embeddings(windows), atol=1e-6)


def test_too_many_conditions_refused_before_training(dirs):
    exp = ex.TalkerExperiment("selftalk", preset="smoke", steps=2, conditions=3)  # the corpus has 2 train identities
    with pytest.raises(InputError, match="conditions 3 > the 2 training identities"):
        ex.train_experiment(exp, dirs)
    assert not ex.layout(dirs, "smoke").run(exp).exists()


def test_a_talker_whose_data_load_fails_leaves_no_claim(dirs, monkeypatch):
    """The grid's training takes its fresh claim back when the data load fails, as ``p3d train`` does: a corrected
    run into the same folder is not refused as "a run with other settings"."""
    exp = ex.TalkerExperiment("faceformer", preset="smoke", steps=2, seed=7)

    def refused(*args, **kwargs):
        raise InputError("the data load failed")

    monkeypatch.setattr("p3d.train.talker.build", refused)
    with pytest.raises(InputError, match="the data load failed"):
        ex.train_experiment(exp, dirs)
    assert not ex.layout(dirs, "smoke").run(exp).exists()


def test_missing_corpus_is_a_clear_error(tmp_path):
    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    with pytest.raises(InputError, match="corpus 'synth-voca' not found"):
        ex.train_experiment(ex.TalkerExperiment("faceformer"), d)


def test_codetalker_shares_the_baselines_motion_prior(dirs, tmp_path):
    """The VQ-VAE stage (no perceptual loss) is copied from the baseline run, and equals what the critic run
    would have trained itself."""
    from p3d.train.talker import build, train_talker
    from p3d.train.run_folder import latest_checkpoint, load_checkpoint

    base = ex.TalkerExperiment("codetalker", preset="smoke", steps=3)
    exp = ex.TalkerExperiment("codetalker", "ours", preset="smoke", steps=3, relative_weight=0.5)
    ex.train_experiment(base, dirs)
    out = ex.train_experiment(exp, dirs)
    timing = json.loads((out["run_dir"] / "timing.json").read_text())
    assert timing["stages_from_baseline"] == ["vqvae"]
    copied = load_checkpoint(latest_checkpoint(out["run_dir"] / "vqvae"))["model"]
    critic = dirs.runs / "smoke" / "loss_critics" / "ours" / "final.pt"
    job = build("codetalker", "smoke", [dirs.data / "smoke" / "synth-voca"], critic="ours", critic_checkpoint=critic,
                loss_weight=out["loss_weight"], seed=0, steps=3)
    train_talker(job, tmp_path / "own", progress=False)
    own = load_checkpoint(latest_checkpoint(tmp_path / "own" / "vqvae"))["model"]
    assert copied.keys() == own.keys()
    assert all(torch.equal(copied[k], own[k]) for k in own)


def test_equal_length_runs_continue_each_arm_to_its_groups_longest_stop(dirs, change_default):
    """Two arms of one model and seed (synth-voca / + synth-mead) that stop at different steps: each equal-length
    run is its own-length run continued to the longer stop, with the weights, curve and logs of a stop="steps" run of
    that length from the start (CodeTalker: its motion prior copied); a second call reuses it."""
    rule = dict(preset="smoke", seed=3, stop="plateau", eval_every=1, patience=1, smooth=1)
    short = ex.TalkerExperiment("codetalker", "none", ex.CONFIG1, steps=8, min_rel_improvement=10.0, **rule)
    long = ex.TalkerExperiment("codetalker", "none", ex.CONFIG2, steps=5, min_rel_improvement=0.01,
                               **{**rule, "patience": 10})  # too few evaluations for the rule: hits its cap
    group = (short, long)
    first = ex.train_experiment(short.with_(length="equal"), dirs, group=group)
    lay = ex.layout(dirs, "smoke")
    steps = {e.name: json.loads((lay.run(e) / "timing.json").read_text())["steps"] for e in group}
    assert steps == {short.name: 2, long.name: 5}   # the rule stops one at its first chance; the other hits its cap
    out = first["run_dir"]
    assert out == lay.run(short.with_(length="equal")) and not first["reused"]
    timing = json.loads((out / "timing.json").read_text())
    assert (timing["steps"], timing["continued_from"], timing["group_steps"]) == (5, short.name, steps)
    own_s = json.loads((lay.run(short) / "timing.json").read_text())["train_s"]
    assert timing["train_s"] == pytest.approx(own_s + timing["continued_s"], abs=0.011) == first["train_s"]
    assert json.loads((out / "request.json").read_text())["stop"] == "steps"
    direct = short.with_(stop="steps", steps=5)
    ex.train_experiment(direct, dirs)
    for name in ("checkpoints/last.pt", "val.csv", "metrics.csv"):
        assert (out / name).read_bytes() == (lay.run(direct) / name).read_bytes(), name
    from p3d.train.run_folder import load_checkpoint
    prior, own_prior = (load_checkpoint(r / "vqvae" / "checkpoints" / "last.pt")["model"] for r in (out, lay.run(direct)))
    assert all(torch.equal(prior[k], own_prior[k]) for k in own_prior)  # its config records the source's later cap
    again = ex.train_experiment(short.with_(length="equal"), dirs, group=group)
    assert again["reused"] and again["run_dir"] == out
    evaluated = ex.train_experiment(short.with_(length="equal"), dirs)  # as an evaluation asks: no group
    assert evaluated["reused"] and evaluated["run_dir"] == out
    from p3d.models.codetalker import CodeTalkerConfig

    change_default(CodeTalkerConfig, "beta", 0.5)  # a config default changed since: refused, not reused
    with pytest.raises(InputError, match=r"other settings of the code \(architecture\.beta: 0\.25 -> 0\.5: "):
        ex.train_experiment(short.with_(length="equal"), dirs)
    change_default(CodeTalkerConfig, "beta", 0.25)
    result = ex.run_experiment(short.with_(length="equal"), dirs)       # its seconds past the stop, for run_timing
    assert result["timing"]["continued_s"] == timing["continued_s"] and result["timing"]["reused"]
    # the arm that stopped last is continued by no step
    at_its_stop = ex.train_experiment(long.with_(length="equal"), dirs, group=group)
    assert json.loads((at_its_stop["run_dir"] / "timing.json").read_text())["steps"] == 5
    with pytest.raises(InputError, match="comparison group"):
        ex.train_experiment(short.with_(length="equal", seed=4), dirs, group=group)


def test_runs_of_other_stopping_rules_have_other_names():
    """The rule's options are in a run's name (``plateau-e1s1p10``), so runs under two rules never share a folder."""
    rule = dict(preset="smoke", seed=11, stop="plateau", eval_every=1, patience=10, smooth=1)
    a = ex.TalkerExperiment("selftalk", "none", ex.CONFIG1, steps=2, **rule)
    assert a.name == "selftalk_none_voca_steps2_plateau-e1s1p10_seed11"
    assert a.with_(patience=1).name != a.name and a.with_(min_rel_improvement=0.02).name.endswith("p10r0.02_seed11")
    assert ex.TalkerExperiment("selftalk", "none", ex.CONFIG1, preset="smoke", stop="plateau").name.endswith(
        "_plateau_seed0")  # the defaults: no options in the name


def test_an_equal_length_run_of_other_settings_is_refused_not_reused(dirs, monkeypatch):
    """A folder of a name without the rule's options (as written before they were in the name): an equal-length run
    asked for without its group (as an evaluation asks) with another rule was reused as it was, though its
    own-length run of that rule is refused. Compared with the own-length run's request, or without it with the
    continuation's record of the source's rule."""
    monkeypatch.setattr(ex.TalkerExperiment, "_rule_suffix", property(lambda self: ""))
    rule = dict(preset="smoke", seed=11, stop="plateau", eval_every=1, patience=10, smooth=1)  # both hit their caps
    a = ex.TalkerExperiment("selftalk", "none", ex.CONFIG1, steps=2, **rule)
    ex.train_experiment(a.with_(length="equal"), dirs, group=(a, a.with_(steps=3)))
    assert ex.train_experiment(a.with_(length="equal"), dirs)["reused"]
    other = a.with_(patience=1, min_rel_improvement=10.0, length="equal")
    assert other.name == a.with_(length="equal").name
    with pytest.raises(InputError, match="other settings: patience: 10 -> 1; min_rel_improvement"):
        ex.train_experiment(other.own_length, dirs)
    with pytest.raises(InputError, match=r"continued from a run of other settings: patience: 10 -> 1; "
                                         r"min_rel_improvement: \(not set\) -> 10.0 "):
        ex.train_experiment(other, dirs)
    (ex.layout(dirs, "smoke").run(a) / "request.json").unlink()
    with pytest.raises(InputError, match="continued from a run of other settings: patience: 10 -> 1"):
        ex.run_experiment(other, dirs, n_resamples=20)
    assert ex.train_experiment(a.with_(length="equal"), dirs)["reused"]


def test_a_run_finished_by_another_process_keeps_its_timing(dirs, monkeypatch):
    """A process that waited on the run folder's lock while another trained it (and so took no step itself) reuses
    that training's timing.json instead of writing its wait over it."""
    from p3d.train import talker

    exp = ex.TalkerExperiment("selftalk", preset="smoke", steps=2, seed=7)
    out = ex.layout(dirs, "smoke").run(exp)

    def the_other_process_trains(job, run_dir, progress=None):
        (out / "final.pt").write_bytes(b"")
        (out / "timing.json").write_text(json.dumps({"train_s": 1234.5, "steps": 2}))
        return {"step": 2, "finished": True, "steps_here": 0}

    monkeypatch.setattr(talker, "train_talker", the_other_process_trains)
    result = ex.train_experiment(exp, dirs)
    assert result["reused"] and result["train_s"] == 1234.5
    assert json.loads((out / "timing.json").read_text()) == {"train_s": 1234.5, "steps": 2}


def test_equal_length_runs_of_fixed_step_arms_train_to_the_longest(dirs):
    """Arms trained for a fixed step count (no stopping rule recorded; ``spec_for(preset, equal_length=True)`` at
    smoke or cpu) continue to the group's longest count like rule-stopped ones: the weights and logs of a run of
    that count (it used to fail on the missing rule settings)."""
    a = ex.TalkerExperiment("selftalk", preset="smoke", steps=2, seed=9)
    b = a.with_(steps=3, train=ex.CONFIG2)
    result = ex.train_experiment(a.with_(length="equal"), dirs, group=(a, b))
    out = result["run_dir"]
    timing = json.loads((out / "timing.json").read_text())
    assert (timing["steps"], timing["group_steps"]) == (3, {a.name: 2, b.name: 3})
    direct = ex.train_experiment(a.with_(steps=3), dirs)["run_dir"]
    for name in ("checkpoints/last.pt", "metrics.csv"):
        assert (out / name).read_bytes() == (direct / name).read_bytes(), name
    assert ex.train_experiment(a.with_(length="equal"), dirs, group=(a, b))["reused"]


def test_an_equal_length_run_continued_by_another_process_keeps_its_timing(dirs, monkeypatch):
    """As for an own-length run: a process that waited on the continuation's lock while another one continued it
    reuses that process' timing.json instead of writing its wait over it."""
    from p3d.train import talker

    rule = dict(preset="smoke", seed=8, stop="plateau", eval_every=1, patience=10, smooth=1)  # both hit their caps
    a = ex.TalkerExperiment("selftalk", "none", ex.CONFIG1, steps=2, **rule)
    b = ex.TalkerExperiment("selftalk", "none", ex.CONFIG2, steps=3, **rule)     # capped at 3: the longer stop
    for own in (a, b):
        ex.train_experiment(own, dirs)
    out = ex.layout(dirs, "smoke").run(a.with_(length="equal"))
    recorded = {"train_s": 99.0, "continued_s": 42.0, "steps": 3}

    def the_other_process_continues(job, run_dir, progress=None):
        (out / "final.pt").write_bytes(b"")
        (out / "timing.json").write_text(json.dumps(recorded))
        return {"step": 3, "finished": True, "steps_here": 0}

    monkeypatch.setattr(talker, "train_talker", the_other_process_continues)
    result = ex.train_experiment(a.with_(length="equal"), dirs, group=(a, b))
    assert result["reused"] and result["train_s"] == 99.0 and result["run_dir"] == out
    assert json.loads((out / "timing.json").read_text()) == recorded


def test_batched_run_trains_on_batches_of_clips(dirs):
    exp = ex.TalkerExperiment("selftalk", preset="smoke", steps=2, batch_size=2)
    out = ex.train_experiment(exp, dirs)
    config = json.loads((out["run_dir"] / "config.json").read_text())
    assert config["train"]["batch_size"] == 2
    assert json.loads((out["run_dir"] / "request.json").read_text())["batch_size"] == 2


def test_effect_and_level_figures(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from p3d.viz.effects import plot_effects, plot_levelwise_slcc, save_stacked, stack_panels

    open_before = plt.get_fignums()
    effects = pd.DataFrame({"comparison": ["A", "A", "B", "B"], "metric": ["PLRS", "MTM (ms)"] * 2,
                            "change": [0.1, -2.0, 0.0, 1.0], "change CI low": [0.05, -3.0, -0.1, np.nan],
                            "change CI high": [0.15, -1.0, 0.1, np.nan],
                            "verdict": ["better", "better", "no clear change", "undefined"]})
    fig = plot_effects(effects, "t")
    assert len(fig.axes) == 2 and [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["A", "B"]
    # each panel says which way is better (the colours alone carried it; LVE/MTM lower, PLRS higher)
    labelled = plot_effects(effects, "t", better=ex.BETTER_BY_LABEL)
    assert [ax.get_xlabel() for ax in labelled.axes] == ["change (better →)", "change (← better)"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["change", "change"]
    run = {"summary": {"slcc": {"1": {"value": 0.2}, "all": {"value": 0.4}}}}
    fig2 = plot_levelwise_slcc({"FaceFormer": {"x": run, "y": None}}, {"1": {"value": 0.5}, "all": {"value": 0.6}})
    assert len(fig2.axes) == 1
    image = stack_panels([np.zeros((2, 3, 3), np.uint8), np.zeros((4, 5, 3), np.uint8)])
    assert image.shape == (6, 5, 3) and image[0, 4, 0] == 255
    path = save_stacked([fig, fig2], tmp_path / "f.png", dpi=40)
    assert path.stat().st_size > 0
    with pytest.raises(InputError, match="no effects"):
        plot_effects(effects.iloc[:0])
    # a metric missing for the first comparison: its panel keeps B's point on B's row (was drawn on A's)
    fig3 = plot_effects(effects.drop(index=1))
    mtm_points = [line.get_ydata()[0] for line in fig3.axes[1].lines if len(line.get_ydata()) == 1]
    assert set(mtm_points) == {1}
    # a percentile bootstrap CI that excludes its point estimate: the bar spans the CI, the dot sits at the change
    # (was a ValueError: the error bar about the point had a negative length)
    outside = pd.DataFrame({"comparison": ["A"], "metric": ["LVE"], "change": [0.5], "change CI low": [0.6],
                            "change CI high": [0.9], "verdict": ["better"]})
    ax4 = plot_effects(outside).axes[0]
    assert [seg.tolist() for c in ax4.collections for seg in c.get_segments()] == [[[0.6, 0.0], [0.9, 0.0]]]
    assert [line.get_xdata()[0] for line in ax4.lines if line.get_marker() == "o"] == [0.5]
    # Figure objects, not pyplot state: pyplot kept every one open (a notebook drawing many: matplotlib's "More than
    # 20 figures" warning)
    assert plt.get_fignums() == open_before


@pytest.mark.parametrize("native", [False, True])
def test_full_preset_critic_trainings_make_one_request_from_every_caller(tmp_path, monkeypatch, native):
    """Notebooks name the preset (``api.train_stage1("full", ...)``) while the grid passes its spec's options: both
    resolve to the cpu models with the full preset's stopping rule and cap, so the grid reuses the notebooks' runs.
    Stage 1 has its own cap and runs under bf16 autocast exactly where the machine multiplies bf16 natively."""
    import p3d.device
    from p3d import registry
    from p3d.experiments.runs import critic_options
    from p3d.train import api

    monkeypatch.setattr(p3d.device, "native_bf16", lambda device="cpu": native)
    full = registry.preset("full")
    model_preset, defaults = registry.training_defaults("full")
    assert model_preset == "cpu" and defaults == {"stop": "plateau", "steps": full.critic_cap}
    for kind in ("stage2", "finetune", "evaluator", "no2d", "syncnet3d"):
        assert registry.training_defaults("full", kind) == (model_preset, defaults)
    stage1 = registry.training_defaults("full", "stage1")[1]
    assert stage1 == {"stop": "plateau", "steps": full.stage1_cap, **({"bf16": True} if native else {})}
    assert full.stage1_cap > full.critic_cap and full.stage1_bf16
    for preset in ("smoke", "cpu"):
        assert registry.training_defaults(preset) == registry.training_defaults(preset, "stage1") == (preset, {})
    # on a GPU the cpu-size stage 1 stays float32 (bf16 autocast measured slower there), whatever it supports
    assert "bf16" not in registry.training_defaults("full", "stage1", device="meta")[1]
    exp = ex.spec_for("full").experiment("faceformer", "ours", seed=1, weight=1e-7)
    assert {**defaults, **critic_options(exp)} == defaults
    # the full preset trains (the cpu recipe resolved); a second caller with the same options reuses the run
    opts = {"steps": 1, "eval_every": 1, "patience": 1, "smooth": 1}
    lrs3 = write_tiny_corpus(tmp_path / "synth-lrs3", identities={"train": 2, "val": 1}, clips_per_identity=2,
                             seconds=1.2)
    first = api.fit("stage1", "full", lrs3, tmp_path / "stage1", **opts)
    request = json.loads((first.parent / "request.json").read_text())
    assert request["preset"] == "cpu" and request["options"]["stop"] == "plateau"
    assert request["options"].get("bf16", False) is native
    assert json.loads((first.parent / "config.json").read_text()).get("bf16", False) is native
    mtime = first.stat().st_mtime_ns
    same = {"bf16": True} if native else {}
    assert api.fit("stage1", "cpu", lrs3, tmp_path / "stage1", stop="plateau", **opts, **same) == first
    assert first.stat().st_mtime_ns == mtime
    if native:  # a float32 request for the bf16 run is refused, not resumed in another precision
        with pytest.raises(InputError, match="bf16"):
            api.fit("stage1", "cpu", lrs3, tmp_path / "stage1", stop="plateau", **opts)


def test_grid_weight_follows_the_weight_rule(dirs, tmp_path):
    from p3d.corpus import Corpus

    full = ex.spec_for("full")
    voca = Corpus.open(ex.layout(dirs, "smoke").corpus("synth-voca"))
    smoke_dirs = dataclasses.replace(dirs, tables=tmp_path / "tables")
    # the full rule on the smoke corpus: the same fixed weight as ExperimentSpec.fixed_weight
    as_smoke = dataclasses.replace(full, preset="smoke")
    assert ex.grid_weight(as_smoke, smoke_dirs) == pytest.approx(full.fixed_weight(voca))
    assert ex.grid_weight(ex.spec_for("smoke"), smoke_dirs) is None  # kappa not chosen yet


def test_ours_note_says_how_many_identities_condition_each_test_clip():
    from p3d.experiments.tables import ours_note

    def result(n_predictions):
        return {"summary": {"n_clips": 10, "n_predictions": n_predictions, "n_resamples": 100}}

    assert "one training identity, rotating" in ours_note("full", "synth-voca", [result(10)])
    eight = ours_note("cpu", "synth-voca", [result(80)])
    assert "under 8 training identities" in eight and "rotating" not in eight


def test_critic_pairs_compare_ours_with_each_ablation_critic():
    """Table 3's pairs: (label, ablation critic's result, ours' result) per model and ablation critic."""
    results = [{"experiment": {"model": m, "critic": c}, "id": f"{m}-{c}"}
               for m in ("faceformer", "selftalk") for c in ("ours", "syncnet3d", "no2d")]
    pairs = ex.critic_pairs(results, ["faceformer", "selftalk"])
    assert [(label, a["id"], b["id"]) for label, a, b in pairs] == [
        ("FaceFormer: ours vs 3D SyncNet", "faceformer-syncnet3d", "faceformer-ours"),
        ("FaceFormer: ours vs Ours w/o 2D prior", "faceformer-no2d", "faceformer-ours"),
        ("SelfTalk: ours vs 3D SyncNet", "selftalk-syncnet3d", "selftalk-ours"),
        ("SelfTalk: ours vs Ours w/o 2D prior", "selftalk-no2d", "selftalk-ours")]
    assert [label for label, _, _ in ex.critic_pairs(results, ["selftalk"], prefix="seed 0: ")] == [
        "seed 0: ours vs 3D SyncNet", "seed 0: ours vs Ours w/o 2D prior"]
    assert ex.critic_pairs(results[:1], ["faceformer"])[0][1] is None


def test_config2_pairs_are_table4s_two_steps():
    """Table 4's pairs: synth-voca only -> + synth-mead (no critic), then + synth-mead -> + ours."""
    results = [{"experiment": {"model": "codetalker", "critic": c, "train": list(t), "test": "synth-mead"}, "id": i}
               for c, t, i in (("none", ex.CONFIG1, "voca"), ("none", ex.CONFIG2, "mead"), ("ours", ex.CONFIG2, "ours"))]
    pairs = ex.config2_pairs(results, ["codetalker"])
    assert [(label, a["id"], b["id"]) for label, a, b in pairs] == [
        ("CodeTalker: + synth-mead", "voca", "mead"), ("CodeTalker: + ours", "mead", "ours")]
    assert [label for label, _, _ in ex.config2_pairs(results, ["codetalker"], prefix="seed 1: ")] == [
        "seed 1: + synth-mead", "seed 1: + ours"]
    assert ex.config2_pairs(results[1:], ["codetalker"])[0][1] is None


def test_paper_changes_are_the_papers_with_minus_without():
    """Table 3: ours minus each ablation critic; Table 4: each step's after minus before (Avg Δ)."""
    t3 = ex.paper_changes(3, "codetalker")
    assert t3[("ours vs 3D SyncNet", "LVE (1e-5 m²)")] == pytest.approx(3.579 - 4.319)
    assert t3[("ours vs Ours w/o 2D prior", "PLRS")] == pytest.approx(0.388 - 0.374)
    t4 = ex.paper_changes(4, "faceformer")
    assert t4[("+ synth-mead", "SLCC Δ")] == pytest.approx(0.07 - 0.36)
    assert t4[("+ ours", "MTM (ms)")] == pytest.approx(55.8 - 59.5)
    assert {m for _, m in t4} == {"MTM (ms)", "LVE (1e-5 m²)", "PLRS", "SLCC Δ"}
    with pytest.raises(InputError):
        ex.paper_changes(2, "faceformer")


def test_seed_consistency_sets_each_pooled_effect_beside_its_seeds():
    """Rows matched on (comparison without its prefix, metric); 'k of n' seeds sharing the pooled sign."""
    def table(prefix, changes):
        return pd.DataFrame([{"comparison": f"{prefix}: ours vs 3D SyncNet", "metric": m, "change": c,
                              "change CI low": c - 1, "change CI high": c + 1, "verdict": v}
                             for m, (c, v) in changes.items()])

    pooled = table("FaceFormer, seeds 0-2", {"PLRS": (0.05, "better"), "LVE (1e-5 m²)": (0.2, "worse")})
    seeds = {0: table("seed 0", {"PLRS": (0.04, "better"), "LVE (1e-5 m²)": (-0.1, "better")}),
             1: table("seed 1", {"PLRS": (0.06, "better"), "LVE (1e-5 m²)": (0.3, "worse")}),
             2: table("seed 2", {"PLRS": (-0.01, "no clear change")})}  # LVE missing on seed 2
    out = ex.seed_consistency(pooled, seeds, {("ours vs 3D SyncNet", "PLRS"): 0.028})
    plrs, lve = out.iloc[0], out.iloc[1]
    assert (plrs["comparison"], plrs["metric"], plrs["seeds sharing its sign"]) == ("ours vs 3D SyncNet", "PLRS",
                                                                                     "2 of 3")
    assert (plrs["seed 2"], plrs["seed 2 verdict"], plrs["paper's change"]) == (-0.01, "no clear change", 0.028)
    assert plrs["MDE"] == pytest.approx((1.959964 + 0.841621) / 1.959964)  # CI half-width 1; alpha 0.05, power 0.8
    assert lve["seeds sharing its sign"] == "1 of 2" and math.isnan(lve["seed 2"]) and math.isnan(lve["paper's change"])
    one = ex.seed_consistency(pooled, {0: seeds[0]})
    assert (one["seeds sharing its sign"] == "–").all()  # fewer than two seeds: undefined
    # two models' rows would share a key once their prefixes are dropped: refused (was one merged row)
    both = pd.concat([table("FaceFormer", {"PLRS": (0.05, "better")}), table("SelfTalk", {"PLRS": (-0.04, "worse")})])
    with pytest.raises(InputError, match="two rows compare 'ours vs 3D SyncNet' on PLRS"):
        ex.seed_consistency(both, {0: both})


def test_runs_table_lists_each_runs_weight_and_where_it_was_tested():
    """Notebook 06's weights (runs with a critic) and notebook 07's run table (every run, its test corpus, its
    seconds): a Config 2 run without ``test`` is tested on synth-mead, a synth-voca-only one on what it names."""
    timing = {"train_s": 12.5, "predict_s": 1.0, "evaluate_s": 2.0, "reused": False}

    def result(name, critic, train, test, weight, ratio):
        return {"name": name, "seed": 0, "experiment": {"critic": critic, "train": train, "test": test},
                "loss_weight": weight, "loss_ratio": ratio, "timing": timing}

    results = [result("ff_none", "none", ["synth-voca"], "synth-mead", None, None),
               result("ff_ours_vm", "ours", ["synth-voca", "synth-mead"], None, 2e-7, 0.02),
               result("ff_ours_v", "ours", ["synth-voca"], None, 1e-7, 0.01)]
    weights = ex.runs_table(results, loss_only=True)
    assert weights.to_dict("records") == [{"run": "ff_ours_vm", "seed": 0, "W": 2e-7, "W*L_percp / L_model": 0.02},
                                          {"run": "ff_ours_v", "seed": 0, "W": 1e-7, "W*L_percp / L_model": 0.01}]
    full = ex.runs_table(results, tested_on=True, timing=True)
    assert list(full.columns) == ["run", "seed", "tested on", "W", "W*L_percp / L_model", "train_s", "predict_s",
                                  "evaluate_s", "reused"]
    assert full["tested on"].tolist() == ["synth-mead", "synth-mead", "synth-voca"]
    assert full["train_s"].tolist() == [12.5] * 3 and full["run"].tolist() == ["ff_none", "ff_ours_vm", "ff_ours_v"]


def test_per_clip_frame_shows_the_metric_columns_a_result_has():
    """Notebook 05's per-clip view: the metric columns in a fixed order (PLRS left out when not evaluated), the
    first rows only."""
    per_clip = pd.DataFrame({"gt": ["a.npy"] * 12, "lve": np.arange(12.0), "pred": [f"p{i}.npy" for i in range(12)],
                             "mtm_ms": 1.0, "fdd": 2.0, "lip_intensity": 3.0, "identity": "x"})
    view = ex.per_clip_frame({"per_clip": per_clip})
    assert list(view.columns) == ["pred", "mtm_ms", "lve", "fdd", "lip_intensity"] and len(view) == 10
    assert view["lve"].tolist() == list(range(10))
    assert list(ex.per_clip_frame({"per_clip": per_clip.assign(plrs=0.5)}, rows=3).columns) == list(ex.PER_CLIP_COLUMNS)


def test_grids_timing_stacks_the_grids_and_notes_their_wall_times():
    """Notebook 06's timing table: each grid's tasks under its name, in the given order; the note's wall times."""
    from p3d.experiments.grid import GridResult

    def grid(keys, wall):
        return GridResult([], pd.DataFrame({"task": [f"{k}:x" for k in keys], "seconds": [1.0] * len(keys)}), wall)

    table, note = ex.grids_timing({"Config 1": grid(["train", "eval"], 12.4), "selection + baselines":
                                   grid(["train"], 30.6)})
    assert table["grid"].tolist() == ["Config 1", "Config 1", "selection + baselines"]
    assert table["kind"].tolist() == ["train", "eval", "train"] and table.index.tolist() == [0, 1, 2]
    assert note == ("Wall time: Config 1 12 s, selection + baselines 31 s. Reused runs show the seconds of loading "
                    "them, not of training.")
    alone, note1 = ex.grids_timing({"Config 1": grid(["train"], 5.0), "selection + baselines": None})  # fixed weight
    assert alone["grid"].tolist() == ["Config 1"] and note1.startswith("Wall time: Config 1 5 s. Reused")
    with pytest.raises(InputError, match="at least one grid"):
        ex.grids_timing({"selection + baselines": None})


def test_run_timing_has_each_runs_seconds_and_loss_ratio():
    timing = {"train_s": 12.5, "predict_s": 1.0, "evaluate_s": 2.0, "reused": True}
    results = [{"name": "ff_ours", "eval_dir": "/x/eval_synth-voca_test_c1", "timing": timing, "loss_ratio": 0.02},
               {"name": "ff_none_eq", "eval_dir": "/x/eval_synth-voca_test_c1",
                "timing": {**timing, "continued_s": 4.5}, "loss_ratio": None}]
    df = ex.run_timing(results)
    assert list(df.columns) == ["run", "evaluated", "train_s", "continued_s", "predict_s", "evaluate_s", "reused",
                                "loss_ratio"]
    assert df["evaluated"].tolist() == ["synth-voca_test_c1"] * 2 and df["train_s"].tolist() == [12.5, 12.5]
    assert pd.isna(df["continued_s"].iloc[0]) and df["continued_s"].iloc[1] == 4.5   # own length: none
    assert df["loss_ratio"].iloc[0] == 0.02 and pd.isna(df["loss_ratio"].iloc[1])


def test_paired_difference_pairs_predictions_defined_in_both_arms():
    """Arm a's MTM undefined on one prediction of each of the five highest clips, values otherwise identical: the
    change is 0 (was +/- the mean of the rows only one arm kept); no prediction defined in both: no change, and the
    effect table says undefined instead of a number of zero pairs."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(5))
    holes = per_clip["gt"].isin([f"c{k}.npy" for k in range(7, 12)]) & per_clip["pred"].str.endswith("id0.npy")
    a = {"per_clip": per_clip.assign(mtm_ms=per_clip["mtm_ms"].mask(holes)), "data": {"per_clip": data},
         "levels": levels}
    b = {"per_clip": per_clip, "data": {"per_clip": data}, "levels": levels}
    d = ex.paired_difference(a, b, "mtm_ms", n_resamples=200)
    assert d["diff"] == pytest.approx(0.0) and d["ci"] == pytest.approx([0.0, 0.0])
    assert d["n_paired"] == 36 - 3 - 5 and d["n_unpaired"] == 2 * 3 + 5 * 2  # clip c3 undefined in both
    multi_a = {"runs": [{**a, "experiment": {"seed": s}} for s in (0, 1)]}
    multi_b = {"runs": [{**b, "experiment": {"seed": s}} for s in (0, 1)]}
    d2 = ex.paired_difference(multi_a, multi_b, "mtm_ms", n_resamples=200)
    assert d2["n_seeds"] == 2 and d2["diff"] == pytest.approx(0.0) and d2["ci"] == pytest.approx([0.0, 0.0])
    empty = {**a, "per_clip": per_clip.assign(mtm_ms=np.nan)}
    d3 = ex.paired_difference(empty, b, "mtm_ms", n_resamples=50)
    assert d3["diff"] is None and d3["ci"] == [None, None] and d3["n_paired"] == 0
    row = ex.loss_effects([("x", empty, b)], metrics=("mtm_ms",), n_resamples=50).iloc[0]
    assert row["verdict"] == "undefined" and row["change"] is None


def test_paired_difference_refuses_single_runs_of_other_seeds():
    per_clip, data, levels = _fake_rows(np.random.default_rng(6))
    a = {"per_clip": per_clip, "data": {"per_clip": data}, "levels": levels, "experiment": {"seed": 0}}
    b = {**a, "experiment": {"seed": 1}}
    with pytest.raises(InputError, match=r"share no training seed \(seeds \[0\] and \[1\]\)"):
        ex.paired_difference(a, b, "lve", n_resamples=50)
    assert ex.paired_difference(a, {**a, "experiment": {"seed": 0}}, "lve", n_resamples=50)["diff"] == 0


def test_pairs_take_the_tables_results_and_refuse_two_arms_for_one_cell():
    """loss_pairs / critic_pairs / config2_pairs read the results their table shows (the test split of the table's
    corpus; was the first match: a validation run or a Config 2 arm listed first was compared instead), and two
    arms for one cell (e.g. two loss weights) are refused instead of the first one silently winning."""
    def result(i, **exp):
        return {"experiment": {"model": "faceformer", **exp}, "id": i}

    results = [result("val", critic="none", split="val"), result("c2", critic="none", train=list(ex.CONFIG2)),
               result("none", critic="none"), result("ours", critic="ours", relative_weight=0.1),
               result("sync", critic="syncnet3d")]
    [(_, a, b)] = ex.loss_pairs(results, ["faceformer"])
    assert (a["id"], b["id"]) == ("none", "ours")
    assert ex.critic_pairs(results, ["faceformer"])[0][1]["id"] == "sync"
    assert ex.config2_pairs(results, ["faceformer"])[0][1:] == (None, result("c2", critic="none",
                                                                             train=list(ex.CONFIG2)))
    two = results + [result("ours2", critic="ours", relative_weight=1.0)]
    with pytest.raises(InputError, match="2 results match"):
        ex.loss_pairs(two, ["faceformer"])
    with pytest.raises(InputError, match="one arm per table cell"):
        ex.find(two, model="faceformer", critic="ours")
    assert ex.find(two, model="faceformer", critic="ours", relative_weight=1.0)["id"] == "ours2"
    assert ex.find(two, model="selftalk") is None


def test_lve_is_pooled_over_frames_in_summaries_and_paired_effects():
    """Rows carrying their frames (p3d eval's per_clip.csv): an arm's LVE and a paired LVE change are frame-weighted
    means, as p3d eval's summary and the official scripts pool LVE; the other metrics stay means over predictions."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(8))
    frames = 10 + 5 * (np.arange(len(per_clip)) // 3 % 4)
    rows = per_clip.assign(frames=frames)
    s = ex.summarise(rows, data, levels, n_resamples=100)
    assert s["lve"]["value"] == pytest.approx(np.average(rows["lve"], weights=frames))
    assert s["plrs"]["value"] == pytest.approx(rows["plrs"].mean())
    a = {"per_clip": rows, "data": {"per_clip": data}, "levels": levels}
    b = {**a, "per_clip": rows.assign(lve=rows["lve"] * 2)}
    d = ex.paired_difference(a, b, "lve", n_resamples=100)
    assert d["diff"] == pytest.approx(np.average(rows["lve"], weights=frames))


def test_arms_pair_their_runs_by_seed_not_by_position():
    """Two arms' runs are paired by training seed whatever their order, and an arm trained at fewer seeds is
    compared on the seeds both have: b - a = 0.05 on every seed, while the seeds differ by 0.1 each."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(9))
    a_runs = [_run(per_clip.assign(plrs=per_clip["plrs"] + 0.1 * s), data, levels, s) for s in (0, 1, 2)]
    b_runs = [_run(r["per_clip"].assign(plrs=r["per_clip"]["plrs"] + 0.05), data, levels, r["experiment"]["seed"],
                   critic="ours") for r in a_runs]
    for b_order in ([2, 1, 0], [1, 2]):
        a_arm, b_arm = ex.arms(a_runs + [b_runs[s] for s in b_order], n_resamples=20)
        d = ex.paired_difference(a_arm, b_arm, "plrs", n_resamples=50)
        assert d["n_seeds"] == len(b_order)
        assert d["diff"] == pytest.approx(0.05) and d["ci"] == pytest.approx([0.05, 0.05])


def test_lve_is_pooled_over_frames_in_arms_of_several_seeds():
    """An arm of seeds and a paired change between arms of seeds pool LVE over frames within each seed's run, as
    one run does (the seeds' frame-weighted values, then their mean over seeds)."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(10))
    frames = 10 + 5 * (np.arange(len(per_clip)) // 3 % 4)
    rows = per_clip.assign(frames=frames)
    a_runs = [_run(rows.assign(lve=rows["lve"] * (1 + s)), data, levels, s) for s in (0, 1)]
    b_runs = [_run(r["per_clip"].assign(lve=r["per_clip"]["lve"] * 2), data, levels, r["experiment"]["seed"],
                   critic="ours") for r in a_runs]
    a_arm, b_arm = ex.arms(a_runs + b_runs, n_resamples=50)
    weighted = np.average(rows["lve"], weights=frames)
    assert weighted != pytest.approx(rows["lve"].mean())
    assert a_arm["summary"]["lve"]["value"] == pytest.approx(weighted * 1.5)  # mean of 1x and 2x over the seeds
    d = ex.paired_difference(a_arm, b_arm, "lve", n_resamples=50)
    assert d["n_seeds"] == 2 and d["diff"] == pytest.approx(weighted * 1.5)


def test_slcc_delta_change_is_with_minus_without_and_an_arms_data_column_is_the_datas():
    """The change of SLCC Delta is Delta(b) - Delta(a) (one run each and arms of seeds), and an arm's ``data``
    SLCC is the ground truth's own, not the model's."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(11))
    far = per_clip.assign(lip_intensity=-per_clip["lip_intensity"])  # anti-correlated lips: a larger Delta
    a, b = _run(per_clip, data, levels, 0), _run(far, data, levels, 0, critic="ours")
    da, db = (r["summary"]["slcc"]["all"]["delta"] for r in (a, b))
    assert db > da + 0.1
    d = ex.paired_difference(a, b, "slcc_delta", n_resamples=20)
    assert (d["a"], d["b"], d["diff"]) == pytest.approx((da, db, db - da))
    a_arm, b_arm = ex.arms([a, b, _run(per_clip, data, levels, 1), _run(far, data, levels, 1, critic="ours")],
                           n_resamples=20)
    assert ex.paired_difference(a_arm, b_arm, "slcc_delta", n_resamples=20)["diff"] == pytest.approx(db - da)
    for arm, run in ((a_arm, a), (b_arm, b)):
        entry = arm["summary"]["slcc"]["all"]
        assert entry["data"] == pytest.approx(run["summary"]["slcc"]["all"]["data"])
        assert entry["value"] == pytest.approx(run["summary"]["slcc"]["all"]["value"])


def test_loss_effects_show_lve_in_1e5_m2_and_the_others_as_they_are():
    """An effect table's LVE columns are in the tables' 1e-5 m² (as Table 2), the other metrics unscaled."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(12))
    a = {"per_clip": per_clip, "data": {"per_clip": data}, "levels": levels}
    b = {**a, "per_clip": per_clip.assign(lve=per_clip["lve"] + 2e-5, mtm_ms=per_clip["mtm_ms"] - 3.0)}
    table = ex.loss_effects([("x", a, b)], metrics=("lve", "mtm_ms"), n_resamples=50).set_index("metric")
    lve, mtm = table.loc["LVE (1e-5 m²)"], table.loc["MTM (ms)"]
    assert lve["without"] == pytest.approx(per_clip["lve"].mean() * 1e5)
    assert lve["with"] == pytest.approx(per_clip["lve"].mean() * 1e5 + 2.0)
    assert (lve["change"], lve["change CI low"], lve["change CI high"]) == pytest.approx((2.0, 2.0, 2.0))
    assert (mtm["change"], mtm["change CI low"], mtm["change CI high"]) == pytest.approx((-3.0, -3.0, -3.0))
    assert mtm["without"] == pytest.approx(np.nanmean(per_clip["mtm_ms"]))
    # LVE and MTM are lower-is-better (the paper's Table 2 arrows): a higher LVE is worse, a lower MTM better
    assert (lve["verdict"], mtm["verdict"]) == ("worse", "better")
    from p3d.experiments.tables import BETTER

    assert {m: BETTER[m] for m in ("mtm_ms", "lve", "plrs", "slcc_delta")} == {  # MTM ↓, LVE ↓, PLRS ↑, Δ ↓
        "mtm_ms": -1, "lve": -1, "plrs": +1, "slcc_delta": -1}


def test_an_interrupted_stage_copy_leaves_no_truncated_stage(tmp_path, monkeypatch):
    """A copy of the baseline's VQ-VAE stage cut off part-way (Ctrl-C, a kill) leaves no stage folder in the run, so
    the next call copies the whole stage instead of keeping a truncated checkpoint the trainer cannot resume."""
    import shutil

    from p3d.models import save_checkpoint
    from p3d.train.run_folder import latest_checkpoint, load_checkpoint

    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    exp = ex.TalkerExperiment("codetalker", "ours", preset="smoke", loss_weight=1e-5)
    lay = ex.layout(d, "smoke")
    base, out = lay.run(exp.baseline), lay.run(exp)
    (base / "vqvae" / "checkpoints").mkdir(parents=True)
    (base / "config.json").write_text(json.dumps({"train": {"steps": 4}, "stages": ["vqvae", "speech"]}))
    (base / "final.pt").write_bytes(b"")
    (base / "vqvae" / "config.json").write_text(json.dumps({"train": {"steps": 4}, "stage": "vqvae"}))
    save_checkpoint({"model": {"w": torch.arange(1000.0)}, "optimizer": None, "step": 4, "config": {}},
                    base / "vqvae" / "checkpoints" / "last.pt")
    out.mkdir(parents=True)
    copyfile = shutil.copyfile

    def cut_off(src, dst, *args, **kwargs):
        if Path(src).name == "last.pt":
            Path(dst).write_bytes(Path(src).read_bytes()[:100])
            raise KeyboardInterrupt
        return copyfile(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", cut_off)
    with pytest.raises(KeyboardInterrupt):
        ex.share_earlier_stages(exp, d)
    monkeypatch.setattr(shutil, "copyfile", copyfile)
    assert [p.name for p in out.iterdir() if p.name != ".lock"] == []  # the lock the copy held: no stage, no staging
    assert ex.share_earlier_stages(exp, d) == ["vqvae"]
    assert torch.equal(load_checkpoint(latest_checkpoint(out / "vqvae"))["model"]["w"], torch.arange(1000.0))


def _codetalker_baseline(tmp_path):
    """A CodeTalker experiment whose baseline run finished its VQ-VAE stage (a 1000-value checkpoint) and the run."""
    from p3d.models import save_checkpoint

    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    exp = ex.TalkerExperiment("codetalker", "ours", preset="smoke", loss_weight=1e-5)
    base = ex.layout(d, "smoke").run(exp.baseline)
    (base / "vqvae" / "checkpoints").mkdir(parents=True)
    (base / "config.json").write_text(json.dumps({"train": {"steps": 4}, "stages": ["vqvae", "speech"]}))
    (base / "final.pt").write_bytes(b"")
    (base / "vqvae" / "config.json").write_text(json.dumps({"train": {"steps": 4}, "stage": "vqvae"}))
    save_checkpoint({"model": {"w": torch.arange(1000.0)}, "optimizer": None, "step": 4, "config": {}},
                    base / "vqvae" / "checkpoints" / "last.pt")
    return d, exp


def test_a_killed_stage_copy_leaves_nothing_that_outlives_the_next_copy(tmp_path):
    """share_earlier_stages staged the copy of the baseline's VQ-VAE stage in a randomly named ``.vqvae.tmp-XXXX``
    folder of the run; a process SIGKILLed before the rename left it there (as large as the checkpoint) and no later
    call removed it (each killed call added one). The copy is now staged under the run folder's lock in one folder
    per stage, which the next holder removes."""
    import signal
    import subprocess
    import sys

    from p3d.train.run_folder import latest_checkpoint, load_checkpoint

    d, exp = _codetalker_baseline(tmp_path)
    out = ex.layout(d, "smoke").run(exp)
    out.mkdir(parents=True)
    killed_at = """
import os, signal, sys
from pathlib import Path
from p3d import experiments as ex
from p3d.paths import OutputDirs
def die(*args, **kw):
    os.kill(os.getpid(), signal.SIGKILL)
Path.rename = die  # killed with the stage copied whole, just before its rename
root = Path(sys.argv[1])
d = OutputDirs(*(root / n for n in ("f", "t", "r", "d", "runs")))
ex.share_earlier_stages(ex.TalkerExperiment("codetalker", "ours", preset="smoke", loss_weight=1e-5), d)
"""
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", killed_at, str(tmp_path)], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == -signal.SIGKILL, done.stderr
    assert not (out / "vqvae").exists()
    assert ex.share_earlier_stages(exp, d) == ["vqvae"]
    assert sorted(p.name for p in out.iterdir() if p.name != ".lock") == ["vqvae"]
    assert torch.equal(load_checkpoint(latest_checkpoint(out / "vqvae"))["model"]["w"], torch.arange(1000.0))


def test_a_concurrent_stage_copy_waits_for_the_live_one(tmp_path, held_first_copy):
    """Two calls copying the baseline's stage into one run at once: the second waits for the first (it does not take
    the first's staging folder for a killed copy's), then finds the stage copied and copies nothing."""
    from p3d.train.run_folder import latest_checkpoint, load_checkpoint

    d, exp = _codetalker_baseline(tmp_path)
    out = ex.layout(d, "smoke").run(exp)
    out.mkdir(parents=True)
    results = {}

    def call(name):
        results[name] = ex.share_earlier_stages(exp, d)

    def while_held():
        assert ex.runs.stage_copy_dir(out, "vqvae").is_dir()  # the live copy kept

    held_first_copy.race(call, while_held)
    assert results == {"first": ["vqvae"], "second": []}
    assert sorted(p.name for p in out.iterdir() if p.name != ".lock") == ["vqvae"]
    assert torch.equal(load_checkpoint(latest_checkpoint(out / "vqvae"))["model"]["w"], torch.arange(1000.0))


def test_concurrent_equal_length_runs_never_remove_each_others_stage_copy(tmp_path, monkeypatch, held_first_copy):
    """train_at_equal_length copied the own-length run's VQ-VAE stage into ``.vqvae.partial`` without a lock, first
    removing what it found there: a second grid continuing the same run at once removed the first's copy in
    progress (the first then failed, or renamed a partial copy). The second now waits for the run folder's lock and
    then finds the stage copied."""
    import p3d.train.api
    import p3d.train.trainer
    from p3d.models import save_checkpoint
    from p3d.train.run_folder import latest_checkpoint, load_checkpoint

    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    exp = ex.TalkerExperiment("codetalker", "none", preset="smoke", stop="plateau", length="equal")
    lay = ex.layout(d, "smoke")
    source, out = lay.run(exp.own_length), lay.run(exp)
    (source / "vqvae" / "checkpoints").mkdir(parents=True)
    (source / "config.json").write_text(json.dumps({"train": {"steps": 4, "stop": "plateau"},
                                                    "stages": ["vqvae", "speech"]}))
    (source / "timing.json").write_text(json.dumps({"steps": 4}))
    save_checkpoint({"model": {"w": torch.arange(1000.0)}, "optimizer": None, "step": 4, "config": {}},
                    source / "vqvae" / "checkpoints" / "last.pt")
    # the trainings around the copy stubbed: the own-length run trained, its continuation made, the run finished
    monkeypatch.setattr(ex.runs, "train_experiment",
                        lambda m, dirs, progress=False: {"run_dir": source, "loss_weight": None, "train_s": 1.0})
    monkeypatch.setattr(p3d.train.trainer, "continue_without_stop_rule",
                        lambda s, o: Path(o).mkdir(parents=True, exist_ok=True) or 4)
    monkeypatch.setattr(ex.runs, "_request", lambda *args: {"kind": "talker"})
    monkeypatch.setattr(p3d.train.api, "claim_run_dir", lambda o, request: True)
    results = {}

    def call(name):
        results[name] = ex.train_at_equal_length(exp, d, (exp.own_length,))["reused"]

    def while_held():
        assert ex.runs.stage_copy_dir(out, "vqvae").is_dir() and not (out / "vqvae").exists()

    held_first_copy.race(call, while_held)
    assert results == {"first": True, "second": True}
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["vqvae"]
    assert torch.equal(load_checkpoint(latest_checkpoint(out / "vqvae"))["model"]["w"], torch.arange(1000.0))


def test_a_stage_copy_interrupted_in_a_fresh_claim_takes_the_claim_back(tmp_path, monkeypatch):
    """A talker run's earlier stage copied from its baseline (copy_stage, inside claimed_run_dir) takes the run
    folder's lock, which creates ``.lock``: an interrupt during that copy left request.json, data.json and .lock
    behind (the clean-up only took back a folder holding nothing but the claim), so a corrected run into the folder
    was refused as "a run with other settings". The lock file now counts as part of a fresh claim; a folder whose
    lock another live process holds is left as it is."""
    import shutil
    import threading

    from p3d.models import save_checkpoint
    from p3d.train.run_folder import run_lock

    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    exp = ex.TalkerExperiment("codetalker", "ours", preset="smoke", steps=3, relative_weight=0.5)
    base = ex.layout(d, "smoke").run(exp.baseline)
    (base / "vqvae" / "checkpoints").mkdir(parents=True)
    (base / "final.pt").write_bytes(b"")
    (base / "config.json").write_text(json.dumps({"train": {"steps": 3}, "stages": ["vqvae", "speech"]}))
    (base / "vqvae" / "config.json").write_text(json.dumps({"train": {"steps": 3}}))
    save_checkpoint({"model": {"w": torch.zeros(3)}, "optimizer": None, "step": 3, "config": {}},
                    base / "vqvae" / "checkpoints" / "last.pt")
    monkeypatch.setattr(ex.runs, "loss_critic", lambda *args, **kw: None)
    monkeypatch.setattr(ex.runs, "resolve_weight", lambda *args: 0.5)
    monkeypatch.setattr(ex.runs, "_request", lambda *args: {"kind": "talker", "model": "codetalker", "steps": 3})

    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfile", interrupted)
    out = ex.layout(d, "smoke").run(exp)
    with pytest.raises(KeyboardInterrupt):
        ex.train_experiment(exp, d)
    assert not out.exists()
    # the same interrupt while another live process holds the folder's lock: its folder, left as it is
    held, go = threading.Event(), threading.Event()

    def holder():
        with run_lock(out):
            held.set()
            assert go.wait(timeout=60)

    other = threading.Thread(target=holder)

    def copy_while_held(*args, **kw):
        other.start()
        assert held.wait(timeout=60)
        raise KeyboardInterrupt

    monkeypatch.setattr(ex.runs, "copy_stage", copy_while_held)
    try:
        with pytest.raises(KeyboardInterrupt):
            ex.train_experiment(exp, d)
        assert sorted(p.name for p in out.iterdir()) == [".lock", "data.json", "request.json"]
    finally:
        go.set()
        other.join(timeout=60)


def test_a_forced_equal_length_run_waits_for_the_folders_trainer_before_removing_it(tmp_path, monkeypatch):
    """train_at_equal_length(force=True) removed the run folder with shutil.rmtree without its lock: a process
    training the folder at that moment (holding run_lock) lost its files mid-write. The folder is now removed under
    its lock (moved aside, then removed): the forced call waits for the holder, which keeps its files."""
    import threading

    import p3d.train.api
    import p3d.train.trainer
    from p3d.train.run_folder import run_lock

    d = OutputDirs(*(tmp_path / n for n in ("f", "t", "r", "d", "runs")))
    exp = ex.TalkerExperiment("faceformer", "none", preset="smoke", stop="plateau", length="equal")
    lay = ex.layout(d, "smoke")
    source, out = lay.run(exp.own_length), lay.run(exp)
    source.mkdir(parents=True)
    (source / "config.json").write_text(json.dumps({"train": {"steps": 4, "stop": "plateau"}}))
    (source / "timing.json").write_text(json.dumps({"steps": 4}))
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.pt").write_bytes(b"old run")
    # the trainings stubbed: the own-length run trained, its continuation made, the run finished
    monkeypatch.setattr(ex.runs, "train_experiment",
                        lambda m, dirs, progress=False: {"run_dir": source, "loss_weight": None, "train_s": 1.0})
    monkeypatch.setattr(p3d.train.trainer, "continue_without_stop_rule",
                        lambda s, o: Path(o).mkdir(parents=True, exist_ok=True) or 4)
    monkeypatch.setattr(ex.runs, "_request", lambda *args: {"kind": "talker"})
    monkeypatch.setattr(p3d.train.api, "claim_run_dir", lambda o, request: True)
    results = {}

    def forced():
        results["forced"] = ex.train_at_equal_length(exp, d, (exp.own_length,), force=True)["reused"]

    thread = threading.Thread(target=forced)
    with run_lock(out):  # a process training the folder
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waits for it
        (out / "metrics.csv").write_text("step,loss\n")  # its files, written while it holds the lock, kept
        assert (out / "checkpoints" / "last.pt").read_bytes() == b"old run"
    thread.join(timeout=60)
    assert results == {"forced": True}
    assert sorted(p.name for p in out.iterdir() if p.name != ".lock") == ["request.json"]  # removed, then made anew
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([exp.own_length.name, exp.name])  # nothing aside


def test_model_and_critic_lists_elsewhere_are_the_registrys():
    """``p3d predict --model`` and ``p3d train talker --model`` restated the three baselines instead of reading
    :data:`p3d.registry.MODELS` (a model added there would be refused by both)."""
    import argparse

    from p3d import predict, registry
    from p3d.train import talker

    assert talker.MODEL_NAMES is registry.MODELS
    sub = argparse.ArgumentParser().add_subparsers()
    predict.register(sub)
    parser = sub.choices["predict"]
    (model,) = [a for a in parser._actions if "--model" in a.option_strings]
    assert model.choices is registry.MODELS


def test_levelwise_slcc_colours_follow_the_setting_not_its_position():
    """Panels with different settings: a setting's bars were coloured by their position in their own panel (so "y",
    alone in the second panel, took "x"'s colour) and the legend, taken from the last panel, named only its
    settings; now one colour per setting label and every setting in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    from p3d.viz.effects import plot_levelwise_slcc

    run = {"summary": {"slcc": {"1": {"value": 0.2}, "all": {"value": 0.4}}}}
    fig = plot_levelwise_slcc({"A": {"x": run, "y": run}, "B": {"y": run}}, {"all": {"value": 0.6}})
    colour = {ax.get_title(): [matplotlib.colors.to_hex(c.patches[0].get_facecolor()) for c in ax.containers]
              for ax in fig.axes}
    assert colour["A"][1] == colour["B"][0] != colour["A"][0]
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["x", "y", "data (GT)"]


def test_experiment_caches_see_a_moved_clip_or_a_corrected_template(tmp_path):
    """The cache keys of the data reference, the validation battery (and the weights chosen on it) and the
    predictions' evaluation held the corpus' clips fingerprint only, so a clip moved to another split or a
    corrected template was served from the cache; the keys now hold templates.pkl's and clips.csv's hashes, and a
    key cached before they were keyed still matches on the rest."""
    from test_corpus import _move_a_clip_and_correct_a_template

    from p3d.corpus import FINGERPRINT_FILES
    from p3d.experiments.runs import _same_key, battery_key

    a = write_tiny_corpus(tmp_path / "a", identities={"train": 1, "test": 1}, clips_per_identity=2, seconds=0.5,
                          lip_video=False, labels=False)
    plrs = tmp_path / "plrs.pt"
    plrs.write_bytes(b"x")
    before = {"battery": battery_key(plrs, a, "val", 0), "n_resamples": 10}
    old = {**before, "battery": {k: v for k, v in before["battery"].items() if k not in FINGERPRINT_FILES}}
    assert _same_key(before, before) and _same_key(old, before)
    _move_a_clip_and_correct_a_template(a)
    after = {"battery": battery_key(plrs, a, "val", 0), "n_resamples": 10}
    assert not _same_key(before, after) and _same_key(old, after)
    assert not _same_key({**old, "n_resamples": 11}, after) and not _same_key(None, after)
    assert not _same_key({**after, "battery": {**after["battery"], "seed": 1}}, after)


def test_a_test_corpus_whose_templates_changed_is_evaluated_again_and_older_caches_are_kept(dirs, grid,
                                                                                            monkeypatch):
    """End to end: a corrected template of the test corpus (templates.pkl: predictions and FDD start from it) came
    back with the cached numbers; now predicted (the old predictions removed) and evaluated again. Caches and a
    predictions.json written before the file hashes were keyed (their keys lack them) are still reused."""
    from p3d.corpus import FINGERPRINT_FILES
    from p3d.io import PREDICTIONS_RECORD

    exps, g = grid
    exp = exps[3]
    lay = ex.layout(dirs, "smoke")
    calls = _count_predict_and_evaluate(monkeypatch)
    ex.predict_and_evaluate(exp, dirs, n_resamples=50)
    assert calls == {"evaluate": 0, "predict": 0}  # cached
    templates = lay.corpus(exp.test_corpus) / "templates.pkl"
    original = templates.read_bytes()
    try:
        templates.write_bytes(original + b"\n")  # the same pickle, other bytes: a changed file
        ex.predict_and_evaluate(exp, dirs, n_resamples=50)
        assert calls == {"evaluate": 2, "predict": 1}  # the data's reference and the run; predictions redone
    finally:
        templates.write_bytes(original)
    ex.predict_and_evaluate(exp, dirs, n_resamples=50)  # back to the corpus the other tests share
    assert calls == {"evaluate": 4, "predict": 2}
    for path in (lay.evaluation(exp) / "table_summary.json",
                 lay.data_reference(exp.test_corpus, exp.split) / "table_summary.json"):
        cached = json.loads(path.read_text())  # as the code before the file hashes wrote it
        cached["key"] = {k: v for k, v in cached["key"].items() if k not in FINGERPRINT_FILES}
        path.write_text(json.dumps(cached))
    record = lay.predictions(exp) / PREDICTIONS_RECORD
    saved = json.loads(record.read_text())
    saved["corpora"] = {p: {k: fp[k] for k in ("fingerprint", "meta")} for p, fp in saved["corpora"].items()}
    record.write_text(json.dumps(saved))
    ex.predict_and_evaluate(exp, dirs, n_resamples=50)
    assert calls == {"evaluate": 4, "predict": 2}  # reused


# -- mutation-testing gaps of p3d.experiments.summary (arms and paired changes) -----------------------------------
def test_paired_difference_drops_predictions_undefined_in_the_second_arm_too():
    """A prediction is paired only where the metric is defined in both arms: MTM undefined in arm b (the arm with
    the loss) on some predictions leaves the change 0 on identical values, as holes in arm a do."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(21))
    holes = per_clip["gt"].isin([f"c{k}.npy" for k in range(7, 12)]) & per_clip["pred"].str.endswith("id0.npy")
    a = {"per_clip": per_clip, "data": {"per_clip": data}, "levels": levels}
    b = {**a, "per_clip": per_clip.assign(mtm_ms=per_clip["mtm_ms"].mask(holes))}
    d = ex.paired_difference(a, b, "mtm_ms", n_resamples=100)
    assert d["diff"] == pytest.approx(0.0) and d["ci"] == pytest.approx([0.0, 0.0])
    assert d["n_paired"] == 36 - 3 - 5 and d["n_unpaired"] == 2 * 3 + 5 * 2  # clip c3 undefined in both


def test_a_seed_with_no_defined_pair_leaves_the_arms_change_undefined():
    """Arms of two seeds whose seed 1 has MTM undefined on every prediction of one arm: no change and no CI (the
    pooled change would otherwise rest on seed 0 alone while saying n_seeds 2); the effect table says undefined."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(22))
    a_runs = [_run(per_clip, data, levels, s) for s in (0, 1)]
    b_runs = [_run(per_clip.assign(mtm_ms=per_clip["mtm_ms"] - 1.0 if s == 0 else np.nan), data, levels, s,
                   critic="ours") for s in (0, 1)]
    a_arm, b_arm = ex.arms(a_runs + b_runs, n_resamples=20)
    d = ex.paired_difference(a_arm, b_arm, "mtm_ms", n_resamples=50)
    assert d["diff"] is None and d["ci"] == [None, None] and d["n_seeds"] == 2
    row = ex.loss_effects([("x", a_arm, b_arm)], metrics=("mtm_ms",), n_resamples=50).iloc[0]
    assert row["verdict"] == "undefined" and row["change"] is None


def test_slcc_delta_change_interval_is_on_the_side_of_the_change():
    """Anti-correlated lips with the loss raise SLCC Delta clearly: the paired CI of Delta(b) - Delta(a) lies above
    0 and brackets the change, so the verdict is worse (Delta is lower-better)."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(11))
    far = per_clip.assign(lip_intensity=-per_clip["lip_intensity"])
    a, b = _run(per_clip, data, levels, 0), _run(far, data, levels, 0, critic="ours")
    d = ex.paired_difference(a, b, "slcc_delta", n_resamples=40)
    assert 0 < d["ci"][0] <= d["diff"] <= d["ci"][1]
    row = ex.loss_effects([("x", a, b)], metrics=("slcc_delta",), n_resamples=40).iloc[0]
    assert row["verdict"] == "worse"


def test_an_arm_of_seeds_scored_on_different_clips_summarises_the_shared_clips():
    """An arm's summary pools its seeds on the clips every seed was scored on (n_clips), each value the mean over
    seeds of the seed's mean on those clips; n_predictions is one seed's (so the note's identities per clip are
    right), not the seeds' total."""
    from p3d.experiments.tables import ours_note

    per_clip, data, levels = _fake_rows(np.random.default_rng(23))                 # LVE 1e-5 * (1 + k) on clip c<k>
    fewer = per_clip[~per_clip["gt"].isin(["c10.npy", "c11.npy"])]
    arm = ex.arms([_run(per_clip, data, levels, 0), _run(fewer, data, levels, 1)], n_resamples=30)[0]
    s = arm["summary"]
    assert (s["n_clips"], s["n_predictions"], s["n_seeds"]) == (10, 30, 2)
    assert s["lve"]["value"] == pytest.approx(5.5e-5)                            # clips c0..c9 at both seeds
    note = ours_note("smoke", "synth-voca", [arm])
    assert "under 3 training identities" in note and "the mean over 2 training seeds" in note
    assert "cluster bootstrap over test clips" in ours_note("smoke", "synth-voca", [arm.runs[0]])


def test_an_arm_of_seeds_keeps_the_level_wise_slcc():
    """Table 4's cells of an arm of seeds: SLCC and its Delta at each intensity level are the mean over the seeds of
    each seed's own (identical seeds: the run's values), not undefined."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(24), n_clips=18, levels=True)
    runs = [_run(per_clip, data, levels, s) for s in (0, 1)]
    arm = ex.arms(runs, n_resamples=20)[0]["summary"]["slcc"]
    assert set(arm) == {"1", "2", "3", "all"}
    for lv in ("1", "2", "3", "all"):
        one = runs[0]["summary"]["slcc"][lv]
        assert arm[lv]["value"] == pytest.approx(one["value"]) and arm[lv]["delta"] == pytest.approx(one["delta"])
        assert arm[lv]["data"] == pytest.approx(one["data"])


def test_an_arms_weight_is_its_seeds_common_weight_and_its_ratio_their_median():
    """W is shown for an arm only when all its seeds trained at the same W (a relative weight gives each seed its
    own); the loss ratio of an arm is the median over its seeds."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(25))

    def run(seed, weight, ratio):
        return {**_run(per_clip, data, levels, seed, critic="ours", relative_weight=0.1), "loss_weight": weight,
                "loss_ratio": ratio}

    same = ex.arms([run(0, 2e-7, 0.01), run(1, 2e-7, 0.02), run(2, 2e-7, 0.09)], n_resamples=20)[0]
    assert same.loss_weight == 2e-7 and same.loss_ratio == pytest.approx(0.02)
    other = ex.arms([run(0, 2e-7, 0.01), run(1, 3e-7, None)], n_resamples=20)[0]
    assert other.loss_weight is None and other.loss_ratio == pytest.approx(0.01)


def test_table_cells_show_the_delta_interval_the_data_row_and_each_rows_paper_numbers():
    """Tables 2, 4 and S7: a Delta cell shows Delta's own interval (not SLCC's); the data's row its own PLRS and SLCC
    and no Delta; each row's 'paper:' columns the paper's numbers of that row's model and critic (Table 4: SLCC/Delta
    per level in that order)."""
    from p3d import paper

    config1 = [_cell_result(1, "none"), _cell_result(2, "ours")]
    levels = ("1", "2", "3", "all")
    config2 = [_cell_result(5, "none", test="synth-mead", levels=levels),
               _cell_result(6, "none", ex.CONFIG2, levels=levels), _cell_result(7, "ours", ex.CONFIG2, levels=levels)]
    t2 = ex.table2(config1 + config2, models=["faceformer"])
    assert list(t2["Δ ↓"])[1:] == ["0.01 [0.01, 0.01]", "0.02 [0.01, 0.03]"]
    assert (t2["PLRS ↑"].iloc[0], t2["SLCC"].iloc[0], t2["Δ ↓"].iloc[0]) == ("0.500 [0.250, 0.750]",
                                                                           "0.90 [0.45, 1.35]", "–")
    for i, critic in ((1, "none"), (2, "ours")):
        row = paper.TABLE3[("faceformer", critic)]
        assert (t2["paper: MTM"].iloc[i], t2["paper: LVE"].iloc[i], t2["paper: PLRS"].iloc[i]) == (
            f"{row.mtm_ms:.1f}", f"{row.lve:.3f}", f"{row.plrs:.3f}")
        assert t2["paper: SLCC / Δ"].iloc[i] == f"{row.slcc:.2f} / {row.slcc_delta:.2f}"
    t4 = ex.table4(config1 + config2, models=["faceformer"])
    deltas = [c / 100 for c in (5, 6, 7)]                                    # _cell_result's Delta and its CI
    assert list(t4["Δ Lv2 ↓"]) == ["–", *(f"{d:.2f} [{d * 0.5:.2f}, {d * 1.5:.2f}]" for d in deltas)]
    assert t4["SLCC Lv2"].iloc[0] == "0.90 [0.45, 1.35]"
    for i, key in ((1, "voca"), (2, "mead"), (3, "mead+ours")):
        row = paper.TABLE4[("faceformer", key)]
        assert t4["paper: SLCC/Δ Lv1, Lv2, Lv3, Avg"].iloc[i] == ", ".join(f"{s:.2f}/{d:.2f}" for s, d in row.levels)
        assert t4["paper: MTM / LVE / PLRS"].iloc[i] == f"{row.mtm_ms:.1f} / {row.lve:.3f} / {row.plrs:.3f}"
    s7 = ex.table_s7(config1, models=["faceformer"])
    assert list(s7["paper: FDD (x 1e-7)"]) == [f"{paper.TABLE_S7[('faceformer', c)]:.3f}" for c in ("none", "ours")]


def test_summary_frame_scales_lve_and_fdd_and_gives_each_delta_its_own_interval():
    """Notebook 05's summary: LVE in 1e-5 m², FDD in 1e-7 m² (values and CIs), MTM and PLRS as they are, the data's
    PLRS beside the model's, and each SLCC Delta row with Delta's own interval."""
    r = _cell_result(2, levels=("1", "all"))
    frame = ex.summary_frame(r).set_index("metric")
    assert list(frame.index) == ["MTM (ms)", "LVE (1e-5 m²)", "FDD (1e-7 m²)", "PLRS", "SLCC level 1",
                                 "SLCC level 1 Δ", "SLCC", "SLCC Δ"]
    for metric in ("MTM (ms)", "LVE (1e-5 m²)", "FDD (1e-7 m²)"):
        assert tuple(frame.loc[metric, ["value", "CI low", "CI high"]]) == pytest.approx((2.0, 1.0, 3.0))
    assert frame.loc["PLRS", "data"] == 0.5 and frame.loc["SLCC", "data"] == 0.9
    assert tuple(frame.loc["SLCC Δ", ["value", "CI low", "CI high"]]) == pytest.approx((0.02, 0.01, 0.03))


def test_per_clip_frame_shows_the_rows_asked_for():
    """per_clip_frame's ``rows``: that many first rows, in order."""
    per_clip = pd.DataFrame({"pred": [f"p{i}.npy" for i in range(12)], "lve": np.arange(12.0)})
    assert ex.per_clip_frame({"per_clip": per_clip}, rows=3)["lve"].tolist() == [0.0, 1.0, 2.0]


def test_select_kappa_evidence_shows_val_lve_in_1e5_m2():
    """The weight-selection table shows val LVE in the tables' 1e-5 m² (as Table 2) and val MTM in ms."""
    base = _result("none", None, 0.10, 1.00e-5)
    _, table = ex.select_kappa(base, [_result("ours", 0.1, 0.15, 1.04e-5)])
    assert table["val LVE (1e-5 m²)"].tolist() == pytest.approx([1.0, 1.04])
    assert table["val MTM (ms)"].tolist() == [40.0, 40.0]


def test_write_long_form_failing_midway_keeps_the_previous_file(tmp_path, monkeypatch):
    """config1_results.csv is replaced whole or not at all: a write that fails midway leaves the previous table (and
    no temporary file) behind, never a truncated one that p3d.claims would read."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(5))
    runs = [_run(per_clip, data, levels, 0)]
    path = ex.write_long_form(tmp_path / "config1_results.csv", runs)
    before = path.read_text()

    def half_then_fail(self, fh, **kw):
        fh.write("run,seed\n")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        ex.write_long_form(path, runs, runs)
    assert path.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_write_tables_writes_each_tables_csv_and_markdown(tmp_path):
    """write_tables: each named table as <name>.csv (the frame as it is) and <name>.md (title, table, note)."""
    df = pd.DataFrame({"Method": ["FaceFormer"], "PLRS ↑": ["0.100 [0.050, 0.150]"]})
    paths = ex.write_tables({"table2": (df, "Table 2", "a note"), "table_s7": (df, "Table S7", None)}, tmp_path)
    assert [p.name for p in paths] == ["table2.csv", "table2.md", "table_s7.csv", "table_s7.md"]
    assert pd.read_csv(tmp_path / "table2.csv").equals(df)
    md = (tmp_path / "table2.md").read_text()
    assert "Table 2" in md and "0.100 [0.050, 0.150]" in md and "a note" in md


def test_loss_effects_at_a_level_compare_that_levels_slcc_delta():
    """Table 4's level-wise effects: loss_effects at ``level`` gives the paired change of SLCC Delta at that
    intensity level, as paired_difference does there, not the pooled one."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(26), n_clips=18, levels=True)
    far = per_clip.assign(lip_intensity=np.where(per_clip["gt"].str[1:-4].astype(int) % 3 == 0,
                                                 -per_clip["lip_intensity"], per_clip["lip_intensity"]))
    a, b = _run(per_clip, data, levels, 0), _run(far, data, levels, 0, critic="ours")
    row = ex.loss_effects([("x", a, b)], metrics=("slcc_delta",), level="1", n_resamples=20).iloc[0]
    want = ex.paired_difference(a, b, "slcc_delta", level="1", n_resamples=20)
    assert row["change"] == pytest.approx(want["diff"])
    assert want["diff"] != pytest.approx(ex.paired_difference(a, b, "slcc_delta", n_resamples=20)["diff"])


def test_diagnostics_gt_is_the_mean_over_gt_clips_however_many_predictions_each_has():
    """A diagnostic's GT value is the mean over the GT clips, each once, also when the clips have different numbers
    of predictions (conditions)."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(27))
    jerk_gt = {g: 100.0 + 10 * k for k, g in enumerate(sorted(set(per_clip["gt"])))}
    keep = ~(per_clip["gt"].isin(["c10.npy", "c11.npy"]) & ~per_clip["pred"].str.endswith("id0.npy"))
    rows = per_clip[keep].assign(lip_jerk=100.0, lip_jerk_gt=lambda d: d["gt"].map(jerk_gt))
    a = {"per_clip": rows, "data": {"per_clip": data}, "levels": levels}
    b = {**a, "per_clip": rows.assign(lip_jerk=120.0)}
    t = ex.diagnostics_effects([("x", a, b)], diagnostics=("lip_jerk",), n_resamples=20).iloc[0]
    assert t["GT"] == pytest.approx(np.mean(list(jerk_gt.values())))
    assert (t["GT gap without"], t["GT gap with"]) == pytest.approx((abs(100 - t["GT"]), abs(120 - t["GT"])))


def test_loss_effects_columns_are_the_paired_difference_and_its_interval():
    """An effect row's without / with / change / CI columns are paired_difference's a, b, diff and CI, low then
    high, for a change with a non-degenerate interval."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(28))
    a = {"per_clip": per_clip, "data": {"per_clip": data}, "levels": levels}
    noise = np.random.default_rng(29).normal(0.05, 0.02, len(per_clip))
    b = {**a, "per_clip": per_clip.assign(plrs=per_clip["plrs"] + noise)}
    row = ex.loss_effects([("x", a, b)], metrics=("plrs",), n_resamples=100).iloc[0]
    d = ex.paired_difference(a, b, "plrs", n_resamples=100)
    assert d["ci"][0] < d["ci"][1]
    assert (row["without"], row["with"], row["change"], row["change CI low"], row["change CI high"]) == \
        pytest.approx((d["a"], d["b"], d["diff"], *d["ci"]))


def test_loss_effects_leave_out_a_metric_one_seed_of_an_arm_lacks():
    """PLRS-c computed for seed 0 only of an arm of two seeds: no PLRS-c row (was a change over the seeds that had
    it, or a KeyError), PLRS as usual."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(30))
    with_c = per_clip.assign(plrs_calibrated=per_clip["plrs"] - 0.2)
    runs = [_run(with_c, data, levels, 0), _run(per_clip, data, levels, 1)]
    runs += [_run(r["per_clip"].assign(plrs=r["per_clip"]["plrs"] + 0.05), data, levels, s, critic="ours")
             for s, r in enumerate(runs[:2])]
    a_arm, b_arm = ex.arms(runs, n_resamples=20)
    table = ex.loss_effects([("x", a_arm, b_arm)], metrics=("plrs", "plrs_calibrated"), n_resamples=20)
    assert list(table["metric"]) == ["PLRS"]


def test_long_form_keeps_each_metrics_value_and_interval():
    """The long form p3d.claims reads: each metric's value and CI as the summary has them (unscaled: LVE in m²),
    SLCC and its Delta at each level."""
    long = ex.long_form([_cell_result(2, "ours", seed=3, levels=("1", "all"))]).set_index(["metric", "level"],
                                                                                          drop=False)
    for metric, value in (("mtm_ms", 2.0), ("lve", 2e-5), ("fdd", 2e-7), ("plrs", 0.2)):
        row = long[long["metric"] == metric].iloc[0]
        assert (row["value"], row["ci_low"], row["ci_high"]) == pytest.approx((value, value / 2, value * 1.5))
    slcc = long[(long["metric"] == "slcc") & (long["level"] == "1")].iloc[0]
    assert (slcc["value"], slcc["ci_low"], slcc["ci_high"]) == pytest.approx((0.2, 0.1, 0.3))
    assert len(long) == 4 + 2 * 2 and set(long["seed"]) == {3}


def test_seed_consistency_keeps_the_pooled_interval():
    """The pooled change's CI, low then high, as the pooled effect table has it."""
    pooled = pd.DataFrame([{"comparison": "FaceFormer, seeds 0-1: + ours", "metric": "PLRS", "change": 0.05,
                            "change CI low": 0.01, "change CI high": 0.09, "verdict": "better"}])
    seed = pooled.assign(comparison="seed 0: + ours")
    row = ex.seed_consistency(pooled, {0: seed, 1: seed}).iloc[0]
    assert (row["change"], row["change CI low"], row["change CI high"]) == (0.05, 0.01, 0.09)


def test_an_undefined_summary_value_is_none_and_shown_as_a_dash():
    """MTM undefined on every prediction (no extrema matched): the summary's value is None (JSON null), not NaN, and
    its table cell a dash, not 'nan'."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(31))
    s = ex.summarise(per_clip.assign(mtm_ms=np.nan), data, levels, n_resamples=20)
    assert s["mtm_ms"]["value"] is None
    r = {**_cell_result(1), "summary": {**_cell_result(1)["summary"], "mtm_ms": s["mtm_ms"]}}
    assert ex.table2([r], models=["faceformer"])["MTM (ms) ↓"].iloc[1] == "–"


def test_table4_columns_follow_the_papers_level_order():
    """Table 4's SLCC / Delta columns in the paper's order: Lv1, Lv2, Lv3, then Avg."""
    t4 = ex.table4([_cell_result(6, "none", ex.CONFIG2, levels=("1", "2", "3", "all"))], models=["faceformer"])
    slcc = [c for c in t4.columns if c.startswith(("SLCC ", "Δ "))]
    assert slcc == ["SLCC Lv1", "Δ Lv1 ↓", "SLCC Lv2", "Δ Lv2 ↓", "SLCC Lv3", "Δ Lv3 ↓",
                    "SLCC Avg", "Δ Avg ↓"]


def test_an_arm_has_slcc_only_when_every_seed_run_has_it():
    """Seed 0 of an arm of two seeds with the speech / lip intensities, seed 1 without (an older evaluation): no
    SLCC for the arm (was a KeyError on seed 1's missing column: it decided from seed 0 alone), the means as usual."""
    per_clip, data, levels = _fake_rows(np.random.default_rng(31))
    runs = [_run(per_clip, data, levels, 0),
            _run(per_clip.drop(columns=["speech_intensity", "lip_intensity"]), data, levels, 1)]
    assert "slcc" in runs[0]["summary"] and "slcc" not in runs[1]["summary"]
    for order in (runs, runs[::-1]):
        s = ex.arms(order, n_resamples=20)[0]["summary"]
        assert "slcc" not in s and s["n_seeds"] == 2 and "plrs" in s
