"""Frozen result records: one run's result (:class:`RunResult`) and one arm of a table pooled over its seeds
(:class:`ArmResult`). Both read like the dicts of earlier versions (``r["summary"]``, ``r.get("data")``), so
table builders and notebooks can take either."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


class _Record(Mapping[str, Any]):
    """Read-only mapping over a frozen dataclass' fields."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def _keys(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True, eq=False)
class RunResult(_Record):
    """One trained, predicted and evaluated run (:func:`p3d.experiments.run_experiment`).

    ``experiment``: the :class:`~p3d.experiments.spec.TalkerExperiment` as a dict; ``summary``: metric ->
    value and 95% CI over test clips (:func:`~p3d.experiments.summary.summarise`); ``per_clip``: one row per
    prediction; ``data``: the data's own reference on the same clips; ``levels``: clip -> intensity level;
    ``timing``: seconds of training (as recorded), prediction and evaluation."""

    experiment: Mapping[str, Any]
    name: str
    seed: int
    run_dir: str
    eval_dir: str
    pred_dir: str
    loss_weight: float | None
    loss_ratio: float | None
    summary: Mapping[str, Any]
    per_clip: Any
    data: Mapping[str, Any]
    levels: Mapping[str, Any]
    timing: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, eq=False)
class ArmResult(_Record):
    """One arm of a table (every field of the experiment but the seeds) pooled over its runs.

    ``experiment``: the first run's experiment (``seed`` as in that run); ``runs``: the runs, by seed;
    ``seeds``: their talker seeds; ``summary``: the pooled values with 95% CIs from the crossed seeds x clips
    bootstrap (:func:`~p3d.experiments.summary.summarise_runs`; with one run, that run's own summary);
    ``data`` / ``levels``: the data's reference and levels (shared by the runs)."""

    experiment: Mapping[str, Any]
    name: str
    runs: tuple[RunResult, ...]
    seeds: tuple[int, ...]
    summary: Mapping[str, Any]
    data: Mapping[str, Any]
    levels: Mapping[str, Any]
    loss_weight: float | None
    loss_ratio: float | None


def runs_of(result: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The runs behind a result: an arm's runs, or the result itself."""
    return tuple(result["runs"]) if "runs" in result else (result,)


def arm_key(result: Mapping[str, Any]) -> tuple[Any, ...]:
    """The arm of a run result: its experiment without ``seed`` and ``critic_seed``."""
    from p3d.experiments.spec import TalkerExperiment

    return TalkerExperiment.from_dict(result["experiment"]).arm


def group_arms(results: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Run results grouped by arm (first-appearance order), each group sorted by seed; duplicates (the same
    run evaluated twice on the same split) are kept once. Two different runs of one arm at one talker seed (the arm
    leaves out ``critic_seed`` and ``critic_steps``: e.g. the results of grids with other critic pipelines) are an
    :class:`InputError`: an arm pools one run per seed, and keeping the first would drop the other unsaid."""
    from p3d.errors import InputError
    from p3d.experiments.spec import TalkerExperiment

    groups: dict[tuple[Any, ...], dict[int, Mapping[str, Any]]] = {}
    for r in results:
        exp = TalkerExperiment.from_dict(r["experiment"])
        seed = int(r["experiment"]["seed"])
        kept = groups.setdefault(exp.arm, {}).setdefault(seed, r)
        if kept is not r and TalkerExperiment.from_dict(kept["experiment"]) != exp:
            raise InputError(f"arms: two runs of one arm at talker seed {seed} ({kept.get('name', exp.arm_name)} and "
                             f"{r.get('name', exp.arm_name)}: another critic pipeline or critic_steps); pool one run "
                             "per seed")
    return [[g[s] for s in sorted(g)] for g in groups.values()]
