"""The validation-plateau stopping rule: where it stops, exact resume, refused setting changes, the table."""
import csv
import math

import pytest
import torch

from p3d.errors import InputError
from p3d.train.convergence import (best_index, convergence_table, plateau_reached, relative_improvement, smoothed,
                                   stop_settings)
from p3d.train.trainer import TrainConfig, train
from test_trainer import Toy, make_model, step_fn

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test


class Curve:
    """A scripted validation curve: the value at ``step`` is ``fn(step)`` (ignores the model)."""

    metric = "val_curve"

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, model, step):
        return {self.metric: float(self.fn(step)), "extra": 2.0 * step}


class HeldOutMSE:
    """A real validation metric of the toy regression: MSE on 32 held-out items (eval mode: no dropout)."""

    metric = "val_mse"

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        torch.randn(64, 8, generator=g)  # Toy's training inputs, then its weights
        w = torch.randn(8, 1, generator=g)
        self.x = torch.randn(32, 8, generator=torch.Generator().manual_seed(99))
        self.y = self.x @ w

    def __call__(self, model, step):
        model.eval()
        with torch.no_grad():
            return {self.metric: float(torch.nn.functional.mse_loss(model(self.x), self.y))}


def _plateau_cfg(**kw):
    base = dict(steps=200, batch_size=8, lr=1e-2, checkpoint_every=50, log_every=10, seed=3, stop="plateau",
                eval_every=10, patience=3, min_rel_improvement=0.01, smooth=3)
    return TrainConfig(**{**base, **kw})


def pd_isna(value):
    import pandas as pd

    return bool(pd.isna(value))


def _val_rows(run):
    with open(run / "val.csv") as fh:
        return list(csv.DictReader(fh))


def _ramp(step):
    """Falls linearly by 0.1 per 10 steps until step 100, then flat at 1.0."""
    return 1.0 + max(0, 100 - step) / 100


# -- the rule as a pure function -------------------------------------------------------------------
def test_rule_on_a_step_curve():
    values = [10, 9, 8, 7, 6, 5, 5, 5, 5, 5, 5, 5]
    fired = [n for n in range(1, len(values) + 1)
             if plateau_reached(values[:n], window=1, patience=3, min_rel_improvement=0.01)]
    # the first flat value is evaluation 6; three evaluations later nothing has improved
    assert fired[0] == 9
    assert relative_improvement(values[:8], 1, 3) == pytest.approx((6 - 5) / 6)
    assert math.isnan(relative_improvement(values[:3], 1, 3))  # too few evaluations to judge
    assert smoothed([3, 1, 2, 10], 3).tolist() == [3, 2, 2, 2]  # moving median: one outlier is ignored
    assert best_index([3, 1, 2, 10], 3) == 2  # the first whole window (the partial ones are not medians of 3)
    assert best_index([3, 1], 3) == 1  # fewer values than a window: the partial ones


def test_rule_boundaries_and_defaults():
    # stop iff the relative improvement is strictly below the threshold: exactly 25 % does not stop at 0.25
    values = [4.0, 3.0, 3.0]  # window 1, patience 1: ref 4, cur 3 -> (4 - 3) / 4 = 0.25 exactly
    assert relative_improvement(values[:2], 1, 1) == 0.25
    assert not plateau_reached(values[:2], window=1, patience=1, min_rel_improvement=0.25)
    assert plateau_reached(values[:2], window=1, patience=1, min_rel_improvement=0.2500001)
    # a reference of exactly 0: no change is no improvement; a fall below 0 is an unbounded one
    assert relative_improvement([0.0, 0.0], 1, 1) == 0.0
    assert relative_improvement([0.0, -0.5], 1, 1) == math.inf
    assert not plateau_reached([0.0, -0.5], window=1, patience=1, min_rel_improvement=0.01)
    # the defaults of --stop plateau (its --help): 1 % over 5 evaluations, a moving median of 3
    rule = stop_settings("plateau")
    assert (rule["min_rel_improvement"], rule["patience"], rule["smooth"]) == (0.01, 5, 3)


def test_a_low_first_evaluation_does_not_stop_an_improving_run():
    """The first smoothed values were the raw first value and the mean of two: one low first evaluation became the
    reference no later value beat, and an improving curve stopped at the earliest evaluation allowed."""
    improving = [10 * 0.97 ** i for i in range(30)]
    kw = dict(window=3, patience=5, min_rel_improvement=0.01)
    assert not any(plateau_reached(improving[:n], **kw) for n in range(1, 31))
    outlier = [1.0, *improving[1:]]
    assert not any(plateau_reached(outlier[:n], **kw) for n in range(1, 31))
    assert best_index(outlier, 3) == 29


def test_a_validation_value_that_is_not_finite_is_refused():
    """NaN was taken as a value: the median and minimum over it are NaN, so the rule never fired once a NaN entered
    its reference (a flat curve went on to the cap), and best_index (numpy's argmin) picked the NaN evaluation. The
    trainer records only finite values; a history with another is refused, a finite one decides as before."""
    flat = [2.0, 1.5, 1.2, *[1.0] * 27]
    kw = dict(window=3, patience=3, min_rel_improvement=0.01)
    assert plateau_reached(flat, **kw) and best_index(flat, 3) == 4
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(InputError, match=rf"values\[1\] is {bad}; the plateau rule"):
            plateau_reached([2.0, bad, *flat[2:]], **kw)
        with pytest.raises(InputError, match=rf"values\[3\] is {bad};"):
            best_index([3.0, 2.0, 1.0, bad, 0.5], 1)


def test_a_val_csv_with_a_value_that_is_not_finite_is_one_line(tmp_path):
    """A hand-edited val.csv with a NaN: a resumed run never stopped on its plateau (here: to its cap, 200, instead
    of 140), and the convergence table gave the run's best value as NaN. Both now refuse the file in one line naming
    it and the step."""
    run = tmp_path / "r"
    train(make_model(), Toy(), step_fn, _plateau_cfg(checkpoint_every=10), run, progress=False, validate=Curve(_ramp),
          stop_after=40)
    (run / "val.csv").write_text((run / "val.csv").read_text().replace("\n20,1.8,", "\n20,nan,"))
    message = f"{run / 'val.csv'}: step 20: validation value nan is not a finite number"
    with pytest.raises(InputError, match=message):
        train(make_model(), Toy(), step_fn, _plateau_cfg(checkpoint_every=10), run, progress=False,
              validate=Curve(_ramp))
    with pytest.raises(InputError, match=message):
        convergence_table([run])
    (run / "val.csv").write_text((run / "val.csv").read_text().replace("\n20,nan,", "\n20,,"))
    with pytest.raises(InputError, match="step 20: validation value nan is not"):  # an empty cell: pandas' NaN
        convergence_table([run])
    (run / "val.csv").write_text((run / "val.csv").read_text().replace("\n20,,", "\n20,1.8,"))
    assert train(make_model(), Toy(), step_fn, _plateau_cfg(checkpoint_every=10), run, progress=False,
                 validate=Curve(_ramp))["step"] == 140  # the file as the trainer wrote it: the run's own stop


def test_a_zero_threshold_is_refused():
    """At 0 the relative improvement (>= 0) was never below it: the rule never fired, even on a rising curve."""
    with pytest.raises(InputError, match="> 0"):
        stop_settings("plateau", min_rel_improvement=0.0)
    with pytest.raises(InputError, match="> 0"):
        plateau_reached([1, 2, 3, 4, 5, 6, 7, 8, 9], window=3, patience=5, min_rel_improvement=0.0)


def test_rule_settings_are_checked():
    assert stop_settings()["stop"] == "steps" and stop_settings()["eval_every"] == 0
    assert stop_settings("plateau", default_eval_every=25)["eval_every"] == 25
    with pytest.raises(InputError, match="--stop"):
        stop_settings("early")
    with pytest.raises(InputError, match="--eval-every"):
        stop_settings("plateau", eval_every=0)
    with pytest.raises(InputError, match="--patience"):
        stop_settings("plateau", patience=0)
    with pytest.raises(InputError, match="--min-rel-improvement"):
        stop_settings("plateau", min_rel_improvement=float("nan"))
    # NaN and infinity raised int()'s ValueError / OverflowError, text a TypeError, instead of naming the option
    for name, value in (("patience", float("nan")), ("eval_every", float("inf")), ("smooth", "3"),
                        ("patience", True)):
        with pytest.raises(InputError, match=f"--{name.replace('_', '-')}: expected an integer"):
            stop_settings("plateau", **{name: value})
    assert stop_settings("plateau", patience=4.0)["patience"] == 4  # an integral float is a count


def test_plain_runs_record_no_rule_settings():
    """A fixed-step run without validation records the settings it did before the rule existed."""
    assert "stop" not in TrainConfig().to_dict()
    assert TrainConfig(stop="plateau", eval_every=5).to_dict()["patience"] == 5


# -- the rule in the trainer -----------------------------------------------------------------------
def test_stops_on_a_plateau_at_the_right_step(tmp_path):
    # median-of-3 smoothing lags one evaluation: the smoothed curve reaches 1.0 at evaluation 11 (step 110);
    # three evaluations later (step 140) the best of the last three has not improved on it
    out = train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "r", progress=False, validate=Curve(_ramp))
    assert out == {"step": 140, "loss": out["loss"], "finished": True, "converged": True, "steps_here": 140,
                   "final": None}
    rows = _val_rows(tmp_path / "r")
    assert [int(r["step"]) for r in rows] == list(range(10, 150, 10))
    assert float(rows[-1]["val"]) == 1.0 and float(rows[-1]["extra"]) == 280.0
    assert torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)["step"] == 140
    table = convergence_table([tmp_path / "r"])
    row = table.iloc[0]
    assert (row["steps"], row["max_steps"], row["best_step"], row["converged"]) == (140, 200, 110, True)
    assert row["val_metric"] == 1.0 and math.isnan(row["val_final"])  # no final.pt yet: no weights kept


def test_metrics_rows_are_the_first_step_every_log_interval_and_the_last_or_stop_step(tmp_path):
    """metrics.csv has a row at step 1, at every ``log_every`` steps and at the run's last step: the fixed length
    (25, not a multiple of 10) or the plateau stop (140, not a multiple of 30), so a curve's end is always logged."""
    from test_trainer import _losses

    cfg = TrainConfig(steps=25, batch_size=8, lr=1e-2, checkpoint_every=25, log_every=10)
    train(make_model(), Toy(), step_fn, cfg, tmp_path / "fixed", progress=False)
    assert [step for step, _ in _losses(tmp_path / "fixed")] == [1, 10, 20, 25]
    out = train(make_model(), Toy(), step_fn, _plateau_cfg(log_every=30), tmp_path / "stop", progress=False,
                validate=Curve(_ramp))
    assert out["step"] == 140
    assert [step for step, _ in _losses(tmp_path / "stop")] == [1, 30, 60, 90, 120, 140]


def test_the_table_gives_the_kept_weights_value_beside_the_best(tmp_path):
    """A curve that rises after its best: the rule stops patience evaluations later, and the weights kept (final.pt,
    the stop step's) are worse than the best value; the table said they differed by at most min_rel_improvement."""
    out = train(make_model(), Toy(), step_fn, _plateau_cfg(smooth=1), tmp_path / "r", progress=False,
                validate=Curve(lambda s: 1.0 + abs(s - 50) / 50))
    assert out["step"] == 80 and out["converged"]
    (tmp_path / "r" / "final.pt").write_bytes(b"")  # what a finished job writes
    row = convergence_table([tmp_path / "r"]).iloc[0]
    assert (row["steps"], row["best_step"], row["val_metric"], row["converged"]) == (80, 50, 1.0, True)
    assert row["val_final"] == pytest.approx(1.6)


def test_the_tables_best_value_is_the_smoothed_one_not_the_raw_evaluation(tmp_path):
    """val_metric / best_step / val_last are read off the moving median over whole windows (module docstring), not
    the raw evaluations: a noisy curve whose lowest raw value is not its lowest median tells them apart."""
    import statistics

    noise = {30: -0.5, 40: 0.4, 60: 0.3}  # one deep single dip (step 30) that a median of 3 ignores
    train(make_model(), Toy(), step_fn, _plateau_cfg(steps=80), tmp_path / "r", progress=False,
          validate=Curve(lambda s: _ramp(s) + noise.get(s, 0.0)))
    rows = _val_rows(tmp_path / "r")
    steps, vals = [int(r["step"]) for r in rows], [float(r["val"]) for r in rows]
    medians = {steps[i]: statistics.median(vals[i - 2:i + 1]) for i in range(2, len(vals))}  # whole windows of 3
    best = min(medians, key=lambda k: (medians[k], k))
    assert vals[steps.index(best)] != medians[best] and min(vals) < medians[best]  # the test can tell them apart
    row = convergence_table([tmp_path / "r"]).iloc[0]
    assert row["best_step"] == best and row["val_metric"] == pytest.approx(medians[best])
    assert row["val_last"] == pytest.approx(medians[steps[-1]])


def test_a_run_the_rule_stopped_stays_converged_whatever_the_rule_says_now(tmp_path):
    """converged is what the run did (it ended before its cap), not the rule applied again to its history."""
    import json

    train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "r", progress=False, validate=Curve(_ramp))
    (tmp_path / "r" / "final.pt").write_bytes(b"")
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    config["train"]["patience"] = 50  # as if a later rule would not have fired at step 140
    (tmp_path / "r" / "config.json").write_text(json.dumps(config))
    row = convergence_table([tmp_path / "r"]).iloc[0]
    assert (row["steps"], row["max_steps"], row["converged"]) == (140, 200, True)


def test_validation_curve_figure_marks_the_stop(tmp_path):
    from p3d.viz.training import plot_validation_curves

    train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "ramp", progress=False, validate=Curve(_ramp))
    train(make_model(), Toy(), step_fn, _plateau_cfg(steps=60), tmp_path / "capped", progress=False,
          validate=Curve(lambda s: math.exp(-s / 50)))
    fig = plot_validation_curves([tmp_path / "ramp", tmp_path / "capped"])
    (ax,) = fig.axes  # one metric, one panel
    stops = [line for line in ax.lines if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]]
    assert sorted((float(v.get_xdata()[0]), v.get_linestyle()) for v in stops) == [(60.0, "--"), (140.0, "-")]
    train(make_model(), Toy(), step_fn, TrainConfig(steps=2, batch_size=8), tmp_path / "plain", progress=False)
    with pytest.raises(InputError, match="no validation curve"):
        plot_validation_curves([tmp_path / "plain"])


def test_still_improving_run_hits_the_cap(tmp_path):
    out = train(make_model(), Toy(), step_fn, _plateau_cfg(steps=100), tmp_path / "r", progress=False,
                validate=Curve(lambda s: math.exp(-s / 50)))
    assert out["step"] == 100 and out["finished"] and out["converged"] is False
    (tmp_path / "r" / "final.pt").write_bytes(b"")  # what a finished job writes
    row = convergence_table([tmp_path / "r"]).iloc[0]
    assert (row["steps"], row["best_step"], row["converged"]) == (100, 100, False)
    assert row["run"] == str(tmp_path / "r") and convergence_table([tmp_path / "r"], root=tmp_path).iloc[0]["run"] == "r"


def test_extending_the_cap_continues_to_the_same_stop(tmp_path):
    first = train(make_model(), Toy(), step_fn, _plateau_cfg(steps=100), tmp_path / "r", progress=False,
                  validate=Curve(_ramp))
    assert first["converged"] is False
    model = make_model()
    out = train(model, Toy(), step_fn, _plateau_cfg(steps=300), tmp_path / "r", progress=False,
                validate=Curve(_ramp))
    assert out["step"] == 140 and out["converged"]
    direct = make_model()
    train(direct, Toy(), step_fn, _plateau_cfg(steps=300), tmp_path / "direct", progress=False, validate=Curve(_ramp))
    assert (tmp_path / "r" / "val.csv").read_bytes() == (tmp_path / "direct" / "val.csv").read_bytes()
    for a, b in zip(model.state_dict().values(), direct.state_dict().values()):
        assert torch.equal(a, b)


def test_a_longer_cap_leaves_a_run_the_rule_stopped_and_its_final_pt_as_they_are(tmp_path):
    """Asking a run the rule stopped for a longer cap trains nothing (it stays stopped); its final.pt was deleted as a
    shorter run's and written again with the same weights, a new file stamp: every evaluation cached under the
    stamp (p3d.experiments.runs) was computed again."""
    def finalize(run_dir):
        (run_dir / "final.pt").write_bytes(b"weights")
        return run_dir / "final.pt"

    first = train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "r", progress=False, validate=Curve(_ramp),
                  finalize=finalize)
    assert first["step"] == 140 and first["converged"] and first["final"] is not None
    before = (tmp_path / "r" / "final.pt").stat()
    out = train(make_model(), Toy(), step_fn, _plateau_cfg(steps=400), tmp_path / "r", progress=False,
                validate=Curve(_ramp), finalize=finalize)
    assert out["step"] == 140 and out["converged"] and out["steps_here"] == 0 and out["final"] is None
    after = (tmp_path / "r" / "final.pt").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    row = convergence_table([tmp_path / "r"]).iloc[0]
    assert (row["steps"], row["max_steps"], row["converged"], row["finished"]) == (140, 400, True, True)


def test_resume_reproduces_the_stop_step_and_bytes(tmp_path):
    cfg = _plateau_cfg(steps=400, eval_every=5, checkpoint_every=15, log_every=5, patience=3, smooth=3,
                       min_rel_improvement=0.02)
    full = train(make_model(), Toy(), step_fn, cfg, tmp_path / "full", progress=False, validate=HeldOutMSE())
    assert full["converged"] and full["step"] < 400  # the real curve plateaus before the cap
    stop = full["step"]
    interrupted = stop - 7  # between two checkpoints, after some evaluations past the last one
    part = train(make_model(), Toy(), step_fn, cfg, tmp_path / "part", progress=False, validate=HeldOutMSE(),
                 stop_after=interrupted)
    assert part == {"step": interrupted, "loss": part["loss"], "finished": False, "converged": False,
                    "steps_here": interrupted, "final": None}
    resumed = train(make_model(), Toy(), step_fn, cfg, tmp_path / "part", progress=False, validate=HeldOutMSE())
    assert resumed["step"] == stop and resumed["converged"]
    for name in ("val.csv", "metrics.csv", "checkpoints/last.pt"):
        assert (tmp_path / "full" / name).read_bytes() == (tmp_path / "part" / name).read_bytes(), name
    # a stopped run asked again does nothing
    again = train(make_model(), Toy(), step_fn, cfg, tmp_path / "part", progress=False, validate=HeldOutMSE())
    assert again["step"] == stop and again["finished"] and again["converged"] and again["steps_here"] == 0
    assert (tmp_path / "full" / "val.csv").read_bytes() == (tmp_path / "part" / "val.csv").read_bytes()


@pytest.mark.parametrize("change, message", [
    (dict(patience=4), "patience: 3 -> 4"),
    (dict(min_rel_improvement=0.05), "min_rel_improvement: 0.01 -> 0.05"),
    (dict(eval_every=20), "eval_every: 10 -> 20"),
    (dict(stop="steps"), "stop: plateau -> steps"),
])
def test_changing_the_rule_on_resume_is_refused(tmp_path, change, message):
    train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "r", progress=False, validate=Curve(_ramp),
          stop_after=20)
    with pytest.raises(InputError, match=message):
        train(make_model(), Toy(), step_fn, _plateau_cfg(**change), tmp_path / "r", progress=False,
              validate=Curve(_ramp))


def test_plain_run_refuses_the_rule_on_resume(tmp_path):
    train(make_model(), Toy(), step_fn, TrainConfig(steps=4, batch_size=8), tmp_path / "r", progress=False)
    with pytest.raises(InputError, match=r"stop: \(none\) -> plateau"):
        train(make_model(), Toy(), step_fn, _plateau_cfg(steps=8), tmp_path / "r", progress=False,
              validate=Curve(_ramp))


@pytest.mark.parametrize("change, message", [
    (dict(patience=0), "patience: the plateau rule needs at least 1 evaluation, got 0"),
    (dict(smooth=0), "smooth: the validation curve's moving median needs at least 1 evaluation, got 0"),
    (dict(stop="steps", smooth=0), "smooth: .* got 0"),
])
def test_rule_settings_that_never_fire_are_refused(tmp_path, change, message):
    """A TrainConfig given straight to train() (not through stop_settings): patience 0 compared no evaluations and
    smooth 0 smoothed over none (NaN), so the rule never fired and the run silently went on to its cap."""
    with pytest.raises(InputError, match=message):
        train(make_model(), Toy(), step_fn, _plateau_cfg(**change), tmp_path / "r", progress=False,
              validate=Curve(lambda s: 2.0))
    assert not (tmp_path / "r").exists()


def test_validation_is_required(tmp_path):
    with pytest.raises(InputError, match="no validation metric"):
        train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "r", progress=False)


def test_table_of_plain_and_unfinished_runs(tmp_path):
    train(make_model(), Toy(), step_fn, TrainConfig(steps=6, batch_size=8, log_every=2), tmp_path / "plain",
          progress=False, extra_config={"kind": "toy", "epochs": 6 * 8 / 64})
    train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "half", progress=False, validate=Curve(_ramp),
          extra_config={"kind": "toy", "model": "mlp", "epochs": 200 * 8 / 64}, stop_after=60)
    table = convergence_table([tmp_path / "plain", tmp_path / "half"])
    assert list(table.columns[:9]) == ["run", "kind", "model", "seed", "stop", "steps", "max_steps", "epochs",
                                       "best_step"]
    plain, half = table.iloc[0], table.iloc[1]
    assert plain["kind"] == "toy" and plain["steps"] == 6 and plain["converged"] is None
    assert plain["epochs"] == pytest.approx(0.75) and math.isnan(plain["val_metric"])
    # interrupted before the rule or the cap ended it: not decided (was False, read as "hit the cap")
    assert half["model"] == "mlp" and half["steps"] == 60 and half["converged"] is None and not half["finished"]
    assert half["epochs"] == pytest.approx(60 * 8 / 64) and half["best_step"] == 60
    with pytest.raises(InputError, match="not a p3d run folder"):
        convergence_table([tmp_path / "none"])


@pytest.mark.parametrize("name", ["val.csv", "metrics.csv"])
def test_table_of_a_run_whose_log_is_empty(tmp_path, name):
    """A run killed between creating a log file and its first flush leaves it empty; the table (which lists started
    runs too) failed on it with pandas' EmptyDataError. An empty log reads as one without rows."""
    train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "r", progress=False, validate=Curve(_ramp),
          stop_after=25)
    (tmp_path / "r" / name).write_text("")
    row = convergence_table([tmp_path / "r"]).iloc[0]
    assert row["converged"] is None and not row["finished"]
    assert row["steps"] == (0 if name == "metrics.csv" else 20)  # the last logged step
    assert pd_isna(row["best_step"]) == (name == "val.csv")


# -- real tiny runs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus_with_val(tmp_path_factory):
    from tiny_corpus import write_tiny_corpus

    return write_tiny_corpus(tmp_path_factory.mktemp("voca"), kind="vocaset", fps=60, model_fps=30,
                             identities={"train": 2, "val": 1}, clips_per_identity=2, seconds=1.0, lip_video=False)


def test_critic_and_talker_runs_with_the_rule(corpus_with_val, tmp_path, capsys):
    import json

    from p3d.cli import main
    from p3d.train.talker import build as build_talker
    from p3d.train.talker import train_talker

    critic = tmp_path / "syncnet3d"
    args = ["train", "syncnet3d", "--preset", "smoke", "--data", str(corpus_with_val), "--out", str(critic),
            "--batch-size", "8", "--no-progress", "--stop", "plateau", "--max-steps", "6", "--eval-every", "2",
            "--patience", "1", "--smooth", "1", "--min-rel-improvement", "0.5"]
    assert main(args) == 0
    config = json.loads((critic / "config.json").read_text())
    assert config["train"]["stop"] == "plateau" and config["train"]["steps"] == 6
    assert config["validation"]["metric"] == "val_infonce" and config["validation"]["split"] == "val"
    rows = _val_rows(critic)
    assert [int(r["step"]) for r in rows][:1] == [2] and {"val_infonce", "val_top1"} <= set(rows[0])
    assert (critic / "final.pt").exists()

    talker = tmp_path / "faceformer"
    job = build_talker("faceformer", "smoke", corpus_with_val, steps=4, stop="plateau", eval_every=2, patience=1,
                       smooth=1)
    assert job.validate.metric == "val_vertex_mse" and job.extra_config["validation"]["clips"] == 2
    result = train_talker(job, talker, progress=False)
    assert result["finished"] and (talker / "final.pt").exists()

    table = convergence_table([critic, talker])
    assert table["kind"].tolist() == ["syncnet3d", "talker"]
    assert table["model"].tolist()[1] == "faceformer"
    assert table["metric"].tolist() == ["val_infonce", "val_vertex_mse"]
    assert table["steps"].between(2, 6).all() and table["converged"].isin([True, False]).all()
    assert (table["val_metric"] > 0).all() and table["best_step"].notna().all()
    assert main(args) == 0  # the finished run is reused

    with pytest.raises(InputError, match="no 'val' split"):
        build_talker("faceformer", "smoke", _no_val(tmp_path), steps=2,
                     stop="plateau")


def _no_val(tmp_path):
    from tiny_corpus import write_tiny_corpus

    return write_tiny_corpus(tmp_path / "noval", kind="vocaset", fps=60, model_fps=30, identities={"train": 1},
                             clips_per_identity=1, seconds=0.6, lip_video=False)


def test_talker_validates_on_the_training_corpora_that_have_a_val_split(corpus_with_val, tmp_path):
    """Config 2 at full: synth-voca has val speakers, synth-mead only train and test ones."""
    from p3d.train.talker import build as build_talker

    from tiny_corpus import write_tiny_corpus

    mead_like = write_tiny_corpus(tmp_path / "mead", kind="vocaset", fps=60, model_fps=30, identities={"train": 1},
                                  clips_per_identity=1, seconds=0.6, lip_video=False, prefix="m")
    job = build_talker("faceformer", "smoke", [corpus_with_val, mead_like], steps=2, stop="plateau", eval_every=1)
    assert job.extra_config["validation"]["clips"] == 2  # corpus_with_val's val clips; the other has none


def test_critic_without_a_val_split_is_refused(tmp_path):
    from p3d.train.critics import build

    with pytest.raises(InputError, match="no 'val' split"):
        build("syncnet3d", "smoke", _no_val(tmp_path), stop="plateau")


def test_critic_trained_on_the_val_split_is_refused_a_validation_metric(corpus_with_val):
    """--split val with the plateau rule validated on the very windows it trained on (the rule stopped on the
    training loss)."""
    from p3d.train.critics import build

    with pytest.raises(InputError, match="--split val: the validation metric"):
        build("syncnet3d", "smoke", corpus_with_val, split="val", stop="plateau")
    assert build("syncnet3d", "smoke", corpus_with_val, split="val", steps=1).extra_config["split"] == "val"


def test_stage1_validation_is_fixed(tmp_path):
    """Stage 1's validation loss uses fixed masks and batches: the same model gives the same value."""
    from tiny_corpus import write_tiny_corpus

    from p3d.train.critics import build

    data = write_tiny_corpus(tmp_path / "lrs3", identities={"train": 2, "val": 1}, clips_per_identity=2, seconds=1.0)
    job = build("stage1", "smoke", data, steps=2, stop="plateau", eval_every=1)
    first = job.validate(job.model, 1)
    assert set(first) == {"val_loss"} and math.isfinite(first["val_loss"]) and first["val_loss"] > 0
    assert job.validate(job.model, 2) == first
    assert job.model.training  # the evaluation restores the training mode
    assert job.extra_config["validation"]["split"] == "val"


def test_a_stopped_run_continued_without_the_rule_equals_a_run_of_that_length(tmp_path, monkeypatch):
    """continue_without_stop_rule: a run the plateau rule stopped at s, recast as a stop="steps" run of s steps and
    extended to n, ends with the bytes of a stop="steps" run of n steps from the start (checkpoint, logs,
    validation curve); its config.json is that run's plus the extension's record."""
    import json

    from p3d.train.trainer import CONTINUED_FROM, continue_without_stop_rule

    cfg = _plateau_cfg(steps=400, eval_every=5, checkpoint_every=15, log_every=5, patience=3, smooth=3,
                       min_rel_improvement=0.02)
    stopped = train(make_model(), Toy(), step_fn, cfg, tmp_path / "plateau", progress=False, validate=HeldOutMSE())
    s = stopped["step"]
    assert stopped["converged"] and s < 400
    (tmp_path / "plateau" / "final.pt").write_bytes(b"")  # what a finished job writes
    assert continue_without_stop_rule(tmp_path / "plateau", tmp_path / "twin") == s
    recast = json.loads((tmp_path / "twin" / "config.json").read_text())
    assert (recast["train"]["stop"], recast["train"]["steps"]) == ("steps", s)
    assert continue_without_stop_rule(tmp_path / "plateau", tmp_path / "twin") == s   # left as it is
    n = s + 37
    fixed = TrainConfig(**{**cfg.to_dict(), "stop": "steps", "steps": n})
    twin = train(make_model(), Toy(), step_fn, fixed, tmp_path / "twin", progress=False, validate=HeldOutMSE())
    assert twin["step"] == n and twin["steps_here"] == 37 and twin["converged"] is None
    direct = train(make_model(), Toy(), step_fn, fixed, tmp_path / "direct", progress=False, validate=HeldOutMSE())
    assert direct["steps_here"] == n
    for name in ("val.csv", "metrics.csv", "checkpoints/last.pt"):
        assert (tmp_path / "twin" / name).read_bytes() == (tmp_path / "direct" / name).read_bytes(), name
    extended = json.loads((tmp_path / "twin" / "config.json").read_text())
    assert [(e["steps_from"], e["steps_to"]) for e in extended.pop("extensions")] == [(s, n)]
    assert extended == json.loads((tmp_path / "direct" / "config.json").read_text())
    assert json.loads((tmp_path / "twin" / CONTINUED_FROM).read_text())["step"] == s
    rows = convergence_table([tmp_path / "plateau", tmp_path / "twin"]).set_index("run")
    twin_row, own_row = rows.loc[str(tmp_path / "twin")], rows.loc[str(tmp_path / "plateau")]
    assert twin_row["continued_from"] == s and pd_isna(own_row["continued_from"])
    assert twin_row["val_at_continued_from"] == float(_val_rows(tmp_path / "plateau")[-1]["val_smoothed"])
    assert (twin_row["stop"], twin_row["steps"]) == ("steps", n)
    assert twin_row["val_last"] == float(_val_rows(tmp_path / "twin")[-1]["val_smoothed"])
    from p3d.viz.training import plot_validation_curves
    (ax,) = plot_validation_curves([tmp_path / "twin"]).axes
    marks = sorted((float(v.get_xdata()[0]), v.get_linestyle()) for v in ax.lines
                   if len(v.get_xdata()) == 2 and v.get_xdata()[0] == v.get_xdata()[1])
    assert marks == sorted([(float(s), ":"), (float(n), "--")])  # where its own rule stopped it; where it ended
    # the overview of many runs: the continued run drawn once (as its continuation), a cross at its own stop, an open
    # square at its fixed-length end; a run stopped by its rule ends in a filled dot; one legend entry per label
    from p3d.viz.training import plot_validation_overview
    capped = train(make_model(), Toy(), step_fn, _plateau_cfg(steps=60), tmp_path / "capped", progress=False,
                   validate=Curve(lambda x: math.exp(-x / 50)))
    assert capped["converged"] is False
    fig = plot_validation_overview([tmp_path / "plateau", tmp_path / "twin", tmp_path / "capped", tmp_path / "direct"],
                                   panels=["A", "A", "A", "B"], labels=["arm", "arm", "other", "direct"])
    a, b = fig.axes[:2]
    assert [ax.get_title() for ax in (a, b)] == ["A", "B"]
    curves = [v for v in a.lines if v.get_marker() in ("None", "")]
    assert len(curves) == 2                                                  # twin (holding plateau's) and capped
    assert [t.get_text() for t in a.get_legend().get_texts()] == ["arm", "other"]
    marks = {(v.get_marker(), v.get_markerfacecolor() == "none", float(v.get_xdata()[0])) for v in a.lines
             if v.get_marker() not in ("None", "")}
    last = float(_val_rows(tmp_path / "twin")[-1]["step"])                 # the curve's end (its last evaluation)
    assert marks == {("x", False, float(s)), ("s", True, last), ("s", True, 60.0)}
    with pytest.raises(InputError, match="2 panels and 1 labels for 2 runs"):
        plot_validation_overview([tmp_path / "twin", tmp_path / "capped"], panels=["A", "A"], labels=["x"])
    # the entries derived from the step count follow it (a job's epochs and its stage's stage_steps)
    extra = {"epochs": 50.0, "stages": ["prior", "main"], "stage": "main", "stage_steps": {"prior": 30, "main": 400}}
    train(make_model(), Toy(), step_fn, cfg, tmp_path / "staged", progress=False, validate=HeldOutMSE(),
          extra_config=extra)
    (tmp_path / "staged" / "final.pt").write_bytes(b"")
    continue_without_stop_rule(tmp_path / "staged", tmp_path / "staged_twin")
    recast = json.loads((tmp_path / "staged_twin" / "config.json").read_text())
    assert recast["epochs"] == pytest.approx(50.0 * s / 400) and recast["stage_steps"] == {"prior": 30, "main": s}
    # refused: an unfinished source, a folder holding anything else
    train(make_model(), Toy(), step_fn, cfg, tmp_path / "unfinished", progress=False, validate=HeldOutMSE(),
          stop_after=20)
    with pytest.raises(InputError, match="no finished training run"):
        continue_without_stop_rule(tmp_path / "unfinished", tmp_path / "u2")
    with pytest.raises(InputError, match="not a continuation"):
        continue_without_stop_rule(tmp_path / "plateau", tmp_path / "direct")
    assert not (tmp_path / "u2").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    # a runs/ folder copied elsewhere keeps its continuations (the marker's absolute path names the old place)
    import shutil
    for name in ("plateau", "twin"):
        shutil.copytree(tmp_path / name, tmp_path / "copy" / name)
    assert continue_without_stop_rule(tmp_path / "copy" / "plateau", tmp_path / "copy" / "twin") == s
    # a process that does not take the staging lock made the same folder between the check and the rename: kept
    shutil.copytree(tmp_path / "staged_twin", tmp_path / "made_meanwhile")
    real_copyfile = shutil.copyfile

    def the_other_process_finishes_first(*args, **kw):
        if (tmp_path / "made_meanwhile").exists():
            shutil.move(tmp_path / "made_meanwhile", tmp_path / "raced")
        return real_copyfile(*args, **kw)

    monkeypatch.setattr(shutil, "copyfile", the_other_process_finishes_first)
    assert continue_without_stop_rule(tmp_path / "staged", tmp_path / "raced") == s
    assert json.loads((tmp_path / "raced" / "config.json").read_text()) == recast
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_killed_continuation_leaves_nothing_that_outlives_the_next_call(tmp_path):
    """continue_without_stop_rule built the folder in a randomly named hidden sibling (``.OUT.XXXXXXXX``); a process
    killed (SIGKILL) before the rename left it behind, as large as a checkpoint, and no later call removed it (each
    killed call added one); with config.json written, RunLayout.training_runs() listed it as a run. The staging
    folder now has one name per folder, claimed under its lock: the next call removes what a killed one left."""
    import json
    import signal
    import subprocess
    import sys

    from p3d.train.trainer import continue_without_stop_rule

    train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "plateau", progress=False, validate=Curve(_ramp))
    (tmp_path / "plateau" / "final.pt").write_bytes(b"")
    killed_at = """
import os, signal, sys
from pathlib import Path
from p3d.train.trainer import continue_without_stop_rule
def die(*args, **kw):
    os.kill(os.getpid(), signal.SIGKILL)
Path.rename = die  # killed with the folder staged whole, just before its rename
continue_without_stop_rule(sys.argv[1], sys.argv[2])
"""
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", killed_at, str(tmp_path / "plateau"), str(tmp_path / "twin")],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == -signal.SIGKILL, done.stderr
    assert not (tmp_path / "twin").exists()
    assert continue_without_stop_rule(tmp_path / "plateau", tmp_path / "twin") == 140
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plateau", "twin"]
    recast = json.loads((tmp_path / "twin" / "config.json").read_text())
    assert (recast["train"]["stop"], recast["train"]["steps"]) == ("steps", 140)
    assert (tmp_path / "twin" / "checkpoints" / "last.pt").read_bytes() == \
        (tmp_path / "plateau" / "checkpoints" / "last.pt").read_bytes()


def test_a_concurrent_continuation_waits_for_the_live_one(tmp_path, held_first_copy):
    """Two calls continuing into one folder at once: the second waits for the first (it does not take the first's
    staging folder for a killed call's), then finds the continuation made and leaves it as it is."""
    from p3d.train.trainer import continue_without_stop_rule, staging_dir

    train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "plateau", progress=False, validate=Curve(_ramp))
    (tmp_path / "plateau" / "final.pt").write_bytes(b"")
    results = {}

    def call(name):
        results[name] = continue_without_stop_rule(tmp_path / "plateau", tmp_path / "twin")

    def while_held():
        assert staging_dir(tmp_path / "twin").is_dir()  # the live staging kept

    held_first_copy.race(call, while_held)
    assert results == {"first": 140, "second": 140}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plateau", "twin"]
    assert (tmp_path / "twin" / "checkpoints" / "last.pt").read_bytes() == \
        (tmp_path / "plateau" / "checkpoints" / "last.pt").read_bytes()


def test_a_continuation_copies_the_step_it_records_when_the_source_is_extended_meanwhile(tmp_path, monkeypatch):
    """continue_without_stop_rule read the source's step from its last checkpoint, then copied that checkpoint, both
    without the source's lock: a process extending the source in between (its training holds that lock and replaces
    last.pt) made a continuation that records step 140 but holds the weights of a later step. The source is now read
    and copied under its lock; the extension is waited for, and step and checkpoint agree."""
    import json
    import threading

    import p3d.train.trainer as trainer
    from p3d.train.run_folder import load_checkpoint, run_lock

    train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "plateau", progress=False, validate=Curve(_ramp))
    (tmp_path / "plateau" / "final.pt").write_bytes(b"")
    last = tmp_path / "plateau" / "checkpoints" / "last.pt"

    def extend():  # as a training of the source to more steps: under its lock, last.pt replaced
        with run_lock(tmp_path / "plateau"):
            ckpt = load_checkpoint(last)
            torch.save({**ckpt, "step": ckpt["step"] + 10}, last)

    real_load, extensions = trainer.load_checkpoint, []

    def extended_after_the_first_read(path, *args, **kw):
        ckpt = real_load(path, *args, **kw)
        if not extensions:
            extensions.append(threading.Thread(target=extend))
            extensions[0].start()
            extensions[0].join(timeout=2.0)  # done at once unless this process holds the source's lock
        return ckpt

    monkeypatch.setattr(trainer, "load_checkpoint", extended_after_the_first_read)
    start = trainer.continue_without_stop_rule(tmp_path / "plateau", tmp_path / "twin")
    extensions[0].join(timeout=60)
    recorded = json.loads((tmp_path / "twin" / "continued_from.json").read_text())["step"]
    copied = real_load(tmp_path / "twin" / "checkpoints" / "last.pt")["step"]
    config = json.loads((tmp_path / "twin" / "config.json").read_text())["train"]["steps"]
    assert start == recorded == copied == config


def test_an_existing_continuation_answers_the_step_it_was_made_from(tmp_path):
    """continue_without_stop_rule, for a folder that already holds the continuation, returned the source's current
    step rather than the one the continuation was made from (continued_from.json): 150 for a continuation of step
    140 once the source was extended to 150."""
    import json

    from p3d.train.run_folder import load_checkpoint, run_lock
    from p3d.train.trainer import CONTINUED_FROM, continue_without_stop_rule

    train(make_model(), Toy(), step_fn, _plateau_cfg(), tmp_path / "plateau", progress=False, validate=Curve(_ramp))
    (tmp_path / "plateau" / "final.pt").write_bytes(b"")
    assert continue_without_stop_rule(tmp_path / "plateau", tmp_path / "twin") == 140
    last = tmp_path / "plateau" / "checkpoints" / "last.pt"
    with run_lock(tmp_path / "plateau"):  # the source extended since, as its training does
        ckpt = load_checkpoint(last)
        torch.save({**ckpt, "step": ckpt["step"] + 10}, last)
    assert continue_without_stop_rule(tmp_path / "plateau", tmp_path / "twin") == 140
    assert json.loads((tmp_path / "twin" / CONTINUED_FROM).read_text())["step"] == 140


@pytest.mark.parametrize("kind, option", [("talker", "--patience"), ("talker", "--smooth"),
                                          ("syncnet3d", "--min-rel-improvement")])
def test_rule_options_without_validation_are_refused(kind, option, voca_short, tmp_path, capsys):
    """--patience / --min-rel-improvement / --smooth shape only the validation curve and the plateau rule: given
    without --stop plateau or --eval-every they were accepted, recorded in request.json and changed nothing
    (no val.csv); now one line, exit 2, before the data are read or the run folder is claimed. With --eval-every
    (--stop steps) they still set the recorded curve's smoothing and ``converged``; at its default value an option
    is the same setting as the option left out (test_train_api), so it stays accepted."""
    from p3d.cli import main
    from p3d.train.convergence import stop_options

    model = ["--model", "faceformer"] if kind == "talker" else []
    value = "0.05" if option == "--min-rel-improvement" else "2"
    out = tmp_path / "x"
    assert main(["train", kind, *model, "--data", str(voca_short), "--preset", "smoke", "--steps", "1", option, value,
                 "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert option in err and "--stop plateau" in err and not out.exists()

    class Args:
        stop, eval_every, patience, min_rel_improvement, smooth = "steps", 10, 2, None, 1
    assert stop_options(Args)["patience"] == 2  # --stop steps --eval-every 10: the curve is recorded
    Args.stop, Args.eval_every = "plateau", None
    assert stop_options(Args)["smooth"] == 1
    Args.stop, Args.patience, Args.smooth = "steps", 5, None  # the default value: the same as left out
    assert stop_options(Args)["patience"] == 5


def test_an_interrupted_run_is_drawn_unfinished_not_as_a_run_that_reached_its_cap(tmp_path):
    """A run interrupted before its cap (no final.pt, last logged step 6 of 10) was drawn with a capped run's marks:
    the overview's open square, the curves' dashed end line. It now ends in an open triangle with an "unfinished
    (interrupted)" legend entry in its panel, and a dash-dot end line with "(unfinished)" after its name; a run
    that reached its cap is drawn as before."""
    import json

    from p3d.viz.training import plot_validation_curves, plot_validation_overview

    def run(name, last, final):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"kind": "talker", "train": {"steps": 10, "stop": "steps",
                                                                               "eval_every": 2}}))
        (d / "val.csv").write_text("step,val\n" + "".join(f"{s},{1 / s}\n" for s in range(2, last + 1, 2)))
        (d / "metrics.csv").write_text(f"step,loss\n{last},0.1\n")
        if final:
            (d / "final.pt").write_bytes(b"")
        return d

    dirs = [run("capped", 10, True), run("cut", 6, False)]
    ax = plot_validation_overview(dirs, panels=["A", "A"], labels=["capped", "cut"]).axes[0]
    marks = [(v.get_marker(), v.get_markerfacecolor() == "none", float(v.get_xdata()[0])) for v in ax.lines
             if v.get_marker() not in ("None", "")]
    assert marks == [("s", True, 10.0), (">", True, 6.0)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["capped", "cut", "unfinished (interrupted)"]
    (ax,) = plot_validation_curves(dirs).axes
    ends = [(float(v.get_xdata()[0]), v.get_linestyle()) for v in ax.lines
            if len(v.get_xdata()) == 2 and v.get_xdata()[0] == v.get_xdata()[1]]
    assert ends == [(10.0, "--"), (6.0, "-.")]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["capped", "cut (unfinished)"]


def test_the_rule_defaults_have_one_source(tmp_path):
    """The plateau rule's defaults (patience 5, min_rel_improvement 0.01, smooth 3) were written out four times:
    TrainConfig's field defaults (literals), stop_settings, stop_options' own table and the run-folder readers. They
    now all read RULE_DEFAULTS; the values, and what each function returns, are those of before."""
    import argparse
    import dataclasses
    import json

    from p3d.train.convergence import RULE_DEFAULTS, RULE_OPTIONS, add_stop_arguments, read_stop, stop_options

    assert dict(RULE_DEFAULTS) == {"patience": 5, "min_rel_improvement": 0.01, "smooth": 3}
    assert RULE_OPTIONS == ("patience", "min_rel_improvement", "smooth")
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert {name: fields[name] for name in RULE_OPTIONS} == RULE_DEFAULTS
    settings = stop_settings("plateau")
    assert list(settings) == ["stop", "eval_every", *RULE_OPTIONS]
    assert {name: settings[name] for name in RULE_OPTIONS} == RULE_DEFAULTS
    given = stop_settings("plateau", patience=4.0, min_rel_improvement=1, smooth=2)
    assert [type(given[name]) for name in RULE_OPTIONS] == [int, float, int]
    parser = argparse.ArgumentParser()
    add_stop_arguments(parser)
    defaults = parser.parse_args([f"--{name.replace('_', '-')}={value}" for name, value in RULE_DEFAULTS.items()])
    assert stop_options(defaults) == {"stop": None, "eval_every": None, **RULE_DEFAULTS}  # defaults: not refused
    (tmp_path / "config.json").write_text(json.dumps({"train": {"steps": 10}}))
    assert read_stop(tmp_path) == {"stop": "steps", "eval_every": 0, **RULE_DEFAULTS, "steps": 10}


#: FaceFormer's validation vertex MSE x 1e7 (corpus units squared) every 50 steps of a fixed 3000-step run at
#: the ``full`` preset's settings (synth-voca ``full``, batches of 16 clips, seed 0, float32 on an Intel Xeon;
#: benchmarks/RESULTS.md, "The talkers' plateau rule against whole curves").
MEASURED_FACEFORMER_CURVE = [
    12.5006, 10.0488, 8.3884, 8.8583, 7.8546, 6.2069, 7.2542, 6.4459, 5.9548, 6.8418, 6.4111, 5.7226, 7.1158, 6.5570,
    7.0504, 5.7896, 6.1406, 5.6464, 5.4572, 6.1387, 5.6701, 6.2506, 5.7883, 6.5180, 5.9164, 5.9550, 5.4393, 6.1220,
    5.9744, 5.7347, 5.6051, 5.4534, 5.4304, 5.5236, 6.2806, 5.4335, 5.4604, 5.5974, 5.5489, 5.2792, 5.2676, 5.4259,
    5.3428, 5.3713, 5.5228, 5.1851, 5.6492, 5.2615, 5.3866, 5.1027, 5.0985, 5.1899, 5.0003, 4.9669, 5.3434, 5.2550,
    5.2143, 4.9774, 5.5443, 5.1909]


def _first_stop(values, window, patience):
    return next((50 * (i + 1) for i in range(len(values))
                 if plateau_reached(values[:i + 1], window=window, patience=patience, min_rel_improvement=0.01)), None)


def test_the_full_talkers_rule_sees_through_the_temporary_plateaus_of_a_measured_curve():
    """On a measured talker curve (noise of 5-10 % between evaluations, a fall of a few percent per 250 steps) the
    default rule stops at step 650 on a temporary plateau, 18 % above where the curve is at 3000 steps; the ``full``
    preset's talker rule (median of 10, patience 10: :attr:`p3d.registry.Preset.talker_smooth`) does not stop before
    it has flattened. (The values are a fixture: the rule is a pure function of the curve.)"""
    from p3d import registry

    full = registry.preset("full")
    curve = MEASURED_FACEFORMER_CURVE
    assert _first_stop(curve, 3, 5) == 650
    assert min(smoothed(curve[:13], 3)[2:]) > 1.15 * sum(curve[-5:]) / 5
    assert (full.talker_smooth, full.talker_patience) == (10, 10)
    assert _first_stop(curve, full.talker_smooth, full.talker_patience) is None


def _run_folder(path, config, val=None, logged=None, final=False):
    """A run folder written by hand: config.json, val.csv rows (step, val), metrics.csv steps, final.pt."""
    import json

    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    if val is not None:
        (path / "val.csv").write_text("step,val,val_smoothed\n" + "".join(f"{s},{v},{v}\n" for s, v in val))
    if logged is not None:
        (path / "metrics.csv").write_text("step,loss\n" + "".join(f"{s},1.0\n" for s in logged))
    if final:
        (path / "final.pt").write_bytes(b"")
    return path


def test_the_table_reads_each_recorded_setting_of_a_run(tmp_path):
    """convergence_table's row comes from the run's own records: its seed, its model under any of the names jobs
    record it by, its rule settings (smooth, patience) rather than the defaults, the cap as the step count of a
    finished run without a log, no val_final when the last evaluation is not at the final step, no rule verdict
    for a threshold of 0 that old records hold (rather than the rule's refusal), and nullable integer steps."""
    from p3d.train.convergence import read_stop

    unlogged = _run_folder(tmp_path / "unlogged", {"train": {"steps": 40, "seed": 5}, "kind": "toy", "variant": "v1",
                                                    "epochs": 4.0}, final=True)
    rule = {"steps": 30, "stop": "steps", "eval_every": 10, "patience": 1, "min_rel_improvement": 0.01, "smooth": 1,
            "seed": 2}
    flat = _run_folder(tmp_path / "flat", {"train": rule, "kind": "toy", "model_kind": "mk"},
                       val=[(10, 2.0), (20, 1.999)], logged=[1, 10, 20, 30], final=True)
    zero = _run_folder(tmp_path / "zero", {"train": {**rule, "min_rel_improvement": 0.0}, "kind": "toy"},
                       val=[(10, 2.0), (20, 1.999)], logged=[1, 10, 20])
    table = convergence_table([unlogged, flat, zero], root=tmp_path)
    a, b, c = (table.iloc[i] for i in range(3))
    assert (a["run"], a["model"], a["seed"], a["steps"], a["max_steps"], a["epochs"]) == ("unlogged", "v1", 5, 40, 40,
                                                                                         4.0)
    assert a["finished"] and a["converged"] is None and pd_isna(a["best_step"]) and math.isnan(a["val_last"])
    assert (b["model"], b["seed"], b["steps"], b["best_step"]) == ("mk", 2, 30, 20)
    assert b["val_metric"] == 1.999 and b["val_last"] == 1.999  # smooth=1: the raw values, not a median of 3
    assert b["converged"] is True  # patience=1: 2.0 -> 1.999 is below 1 %; the default patience 5 has no verdict yet
    assert math.isnan(b["val_final"])  # final.pt holds step 30's weights; the last evaluation is step 20's
    assert c["converged"] is None and not c["finished"]
    assert str(table["best_step"].dtype) == "Int64" and table["converged"].dtype == object
    assert read_stop(flat) == {**{k: rule[k] for k in ("stop", "eval_every", "patience", "min_rel_improvement",
                                                       "smooth", "steps")}}


def test_a_run_killed_between_its_stop_evaluation_and_its_log_row_is_undecided(tmp_path):
    """converged=True for stop="plateau" means the rule fired at the run's last logged step. A process killed after
    writing the stop evaluation to val.csv but before its metrics.csv row (and checkpoint) has not stopped: the resume
    redoes the steps from its checkpoint, so the table leaves it undecided (None), not converged."""
    rule = {"steps": 200, "stop": "plateau", "eval_every": 10, "patience": 1, "min_rel_improvement": 0.01,
            "smooth": 1}
    run = _run_folder(tmp_path / "killed", {"train": rule, "kind": "toy"}, val=[(10, 2.0), (20, 1.0), (30, 0.999)],
                      logged=[1, 10, 20])
    row = convergence_table([run]).iloc[0]
    assert row["steps"] == 20 and row["converged"] is None and not row["finished"]
    (run / "metrics.csv").write_text("step,loss\n1,1.0\n10,1.0\n20,1.0\n30,1.0\n")  # the stop step's row written
    assert convergence_table([run]).iloc[0]["converged"] is True
