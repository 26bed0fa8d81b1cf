"""One planner for every dependency of a set of experiments, in order: the critics' stage 1 and the PLRS
evaluator's own stage 1 -> the critics and the PLRS evaluator -> the loss critics -> the data references -> the talker trainings (baselines before the runs whose
relative weight needs them) -> one prediction + evaluation per experiment. Each task is one call of a function
of this module; a task's own dependencies are finished before it starts, so no training hides inside another
task (the calls find their dependencies finished and reuse them). An equal-length training
(``TalkerExperiment.length == "equal"``) waits for the own-length trainings of its whole comparison group
(:func:`equal_length_groups`)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from p3d.errors import InputError
from p3d.experiments.layout import layout
from p3d.experiments.spec import CRITIC_CORPUS, TalkerExperiment, equal_length_groups


@dataclasses.dataclass(frozen=True)
class Task:
    """One unit of the grid: ``fn(*args)`` (a module-level function, picklable for worker processes) after
    the tasks ``deps``. ``key``: ``<kind>:<preset>:...``."""

    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    deps: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.key.split(":")[0]


def task_stage1(preset: str, dirs: Any, critic_seed: int = 0, options: dict[str, Any] | None = None) -> Path:
    from p3d.experiments.runs import _seed_option
    from p3d.train import api

    lay = layout(dirs, preset)
    stop = {k: v for k, v in (options or {}).items() if k in api.STOP_OPTIONS}
    return api.train_stage1(preset, lay.data / CRITIC_CORPUS, lay.critic_runs(critic_seed),
                            seed=_seed_option(critic_seed), **stop)


def task_critic(critic: str, preset: str, dirs: Any, critic_seed: int = 0,
                options: dict[str, Any] | None = None) -> Path:
    from p3d.experiments.runs import base_critic

    lay = layout(dirs, preset)
    return base_critic(critic, preset, lay.data, lay.critic_runs(critic_seed), critic_seed=critic_seed,
                       **(options or {}))


def task_loss_critic(critic: str, preset: str, dirs: Any, critic_seed: int = 0,
                     options: dict[str, Any] | None = None) -> Path:
    from p3d.experiments.runs import loss_critic

    lay = layout(dirs, preset)
    return loss_critic(critic, preset, lay.data, lay.critic_runs(critic_seed), critic_seed=critic_seed,
                       **(options or {}))


def task_evaluator_stage1(preset: str, dirs: Any) -> Path:
    from p3d.train import api

    lay = layout(dirs, preset)
    return api.train_evaluator_stage1(preset, lay.data / CRITIC_CORPUS, lay.runs)


def task_evaluator(preset: str, dirs: Any) -> Path:
    from p3d.experiments.runs import evaluator

    lay = layout(dirs, preset)
    return evaluator(preset, lay.data, lay.runs)


def task_data(corpus: str, split: str, preset: str, dirs: Any, n_resamples: int) -> dict[str, Any]:
    from p3d.experiments.runs import data_reference

    return data_reference(corpus, split, preset, dirs, n_resamples=n_resamples)["summary"]


def task_train(exp: TalkerExperiment, dirs: Any) -> dict[str, Any]:
    """The talker training of ``exp`` (:func:`p3d.experiments.runs.train_experiment`)."""
    from p3d.experiments.runs import train_experiment

    return train_experiment(exp, dirs)


def task_train_equal(exp: TalkerExperiment, group: tuple[TalkerExperiment, ...], dirs: Any) -> dict[str, Any]:
    """The equal-length training of ``exp`` (``length="equal"``): its own-length run continued to the longest stop
    of ``group`` (:func:`p3d.experiments.runs.train_experiment`)."""
    from p3d.experiments.runs import train_experiment

    return train_experiment(exp, dirs, group=group)


def task_eval(exp: TalkerExperiment, dirs: Any, n_resamples: int) -> Any:
    """``exp``'s result: its finished training (reused), predicted and evaluated
    (:func:`p3d.experiments.runs.run_experiment`)."""
    from p3d.experiments.runs import run_experiment

    return run_experiment(exp, dirs, n_resamples=n_resamples)


#: Task kinds in the order the planner ranks them.
ORDER = {"stage1": 0, "evaluator_stage1": 0, "critic": 1, "evaluator": 1, "loss_critic": 2, "data": 3, "train": 4, "eval": 5}


def _pipeline(seed: int) -> str:
    return "" if seed == 0 else f":c{seed}"


def plan(experiments: Sequence[TalkerExperiment], dirs: Any, n_resamples: int = 1000, *,
         groups: Mapping[tuple[str, str, int], tuple[TalkerExperiment, ...]] | None = None) -> list[Task]:
    """The tasks behind ``experiments``, in dependency order (see the module doc). Critic pipeline ``c`` of an
    experiment (its ``critic_seed``) has its own stage 1 / critic / loss-critic tasks, trained with the
    experiment's stopping rule. The PLRS evaluator waits only for its own stage 1 (no critic's). An equal-length
    experiment's comparison group is ``groups[(preset, model, seed)]`` (:meth:`ExperimentSpec.length_groups`: the
    whole grid's, so that a notebook planning part of the grid continues its runs as the grid does), else
    :func:`equal_length_groups` of ``experiments``."""
    from p3d.experiments.runs import check_length_group, critic_options

    tasks: dict[str, Task] = {}
    groups = {**equal_length_groups(experiments), **(groups or {})}
    pipelines: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}  # (preset, critic_seed) -> (experiment, options)

    def add(task: Task) -> str:
        tasks.setdefault(task.key, task)
        return task.key

    def add_training(exp: TalkerExperiment) -> str:
        """The own-length training of ``exp`` and what it needs (its loss critic, its baseline for kappa)."""
        p = exp.preset
        train_deps: list[str] = []
        if exp.critic != "none":
            c, opts = exp.critic_seed, critic_options(exp)
            first, first_opts = pipelines.setdefault((p, c), (exp.name, opts))
            if opts != first_opts:  # one pipeline's runs (one folder each) cannot be trained two ways
                raise InputError(f"plan: experiments {first} and {exp.name} train critic pipeline {c} at {p} with "
                                 f"different options ({first_opts} vs {opts}); give them the same critic options "
                                 f"or different critic_seed")
            crit_deps = ()
            if exp.critic == "ours":
                crit_deps = (add(Task(f"stage1:{p}{_pipeline(c)}", task_stage1, (p, dirs, c, opts))),)
            crit = add(Task(f"critic:{p}:{exp.critic}{_pipeline(c)}", task_critic, (exp.critic, p, dirs, c, opts),
                            crit_deps))
            train_deps.append(add(Task(f"loss_critic:{p}:{exp.critic}{_pipeline(c)}", task_loss_critic,
                                       (exp.critic, p, dirs, c, opts), (crit,))))
            if exp.relative_weight is not None:
                base = exp.baseline.with_(test=None, split="test")
                train_deps.append(add(Task(f"train:{p}:{base.name}", task_train, (base, dirs))))
        return add(Task(f"train:{p}:{exp.name}", task_train, (exp, dirs), tuple(train_deps)))

    for exp in experiments:
        p = exp.preset
        ev_s1 = add(Task(f"evaluator_stage1:{p}", task_evaluator_stage1, (p, dirs)))
        ev = add(Task(f"evaluator:{p}", task_evaluator, (p, dirs), (ev_s1,)))
        data = add(Task(f"data:{p}:{exp.test_corpus}_{exp.split}", task_data, (exp.test_corpus, exp.split, p, dirs, n_resamples),
                        (ev,)))
        if exp.length == "equal":
            group = groups[(p, exp.model, exp.seed)]
            check_length_group(exp, group)  # before any task trains
            own = tuple(add_training(m) for m in group)
            train = add(Task(f"train:{p}:{exp.name}", task_train_equal, (exp, group, dirs), own))
        else:
            train = add_training(exp)
        add(Task(f"eval:{p}:{exp.name}:{exp.eval_name}", task_eval, (exp, dirs, n_resamples), (train, data)))
    ranked = sorted(tasks.values(), key=lambda t: ORDER[t.kind])
    done: set[str] = set()
    ordered: list[Task] = []
    pending = list(ranked)
    while pending:
        ready = [t for t in pending if set(t.deps) <= done]
        if not ready:
            raise InputError(f"plan: circular dependencies among {[t.key for t in pending]}")
        ordered.append(ready[0])
        done.add(ready[0].key)
        pending.remove(ready[0])
    return ordered


def eval_key(exp: TalkerExperiment) -> str:
    """The key of ``exp``'s evaluation task (its result)."""
    return f"eval:{exp.preset}:{exp.name}:{exp.eval_name}"
