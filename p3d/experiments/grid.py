"""Running a plan: :func:`run_grid` executes :func:`p3d.experiments.plan.plan`'s tasks (callables) in worker
processes, each once its dependencies are done, and collects the evaluations as :class:`RunResult` records;
:func:`simulate_grid` and :func:`critical_path_s` project recorded task times onto other worker counts."""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from p3d.errors import InputError
from p3d.experiments.plan import Task, eval_key, plan
from p3d.experiments.spec import TalkerExperiment
from p3d.progress import show_progress

log = logging.getLogger(__name__)


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)


def _execute(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, float, int]:
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start, os.getpid()


@dataclasses.dataclass
class GridResult:
    """What :func:`run_grid` did: ``results`` (one :func:`run_experiment` dict per experiment, in order),
    ``tasks`` (DataFrame: key, seconds, start/end offsets in s, process, status) and ``wall_s``."""

    results: list[dict[str, Any]]
    tasks: Any
    wall_s: float


def run_grid(experiments: Sequence[TalkerExperiment], dirs: Any, *, workers: int = 2, n_resamples: int = 1000,
             progress: bool | None = None, on_task: Callable[[dict[str, Any]], None] | None = None,
             groups: Mapping[tuple[str, str, int], tuple[TalkerExperiment, ...]] | None = None) -> GridResult:
    """Run ``experiments`` (and everything they need, :func:`plan`; ``groups``: the equal-length comparison
    groups, as there) in ``workers`` processes of one torch thread each, each task once its dependencies are done.
    Finished runs are reused, so a grid can be re-run or extended cheaply. A failed task stops its dependants;
    the others finish, then the first error is raised. ``on_task`` is called with each task's row of
    :attr:`GridResult.tasks` as it ends."""
    import concurrent.futures as cf
    import multiprocessing

    import pandas as pd
    from tqdm.auto import tqdm

    if workers < 1:
        raise InputError(f"workers: expected a positive process count, got {workers}")
    tasks = plan(experiments, dirs, n_resamples, groups=groups)
    log.info("grid: %d tasks (finished ones are reused) in %d worker process(es)", len(tasks), workers)
    by_key = {t.key: t for t in tasks}
    values: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    errors: dict[str, BaseException] = {}
    t0 = time.perf_counter()
    bar = tqdm(total=len(tasks), desc="grid", unit="task", disable=not show_progress(progress))

    def record(key: str, value: Any, seconds: float, pid: int, status: str) -> None:
        values[key] = value
        end = time.perf_counter() - t0
        rows.append({"task": key, "seconds": round(seconds, 2), "start_s": round(end - seconds, 1),
                     "end_s": round(end, 1), "process": pid, "status": status})
        bar.update(1)
        log.info("[%d/%d] %s %s in %.1f s", len(rows), len(tasks), key, status, seconds)
        if on_task is not None:
            on_task(rows[-1])

    def blocked(t: Task) -> bool:
        return any(d in errors for d in t.deps)

    if workers == 1:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for t in tasks:
                if blocked(t):
                    errors[t.key] = InputError(f"{t.key}: a dependency failed")
                    record(t.key, None, 0.0, os.getpid(), "skipped")
                    continue
                try:
                    record(t.key, *_execute(t.fn, t.args), "done")
                except Exception as exc:  # keep going with the independent tasks
                    errors[t.key] = exc
                    record(t.key, None, 0.0, os.getpid(), f"failed: {exc}")
        finally:
            torch.set_num_threads(threads)
    else:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        ctx = multiprocessing.get_context("spawn")
        pending = list(tasks)
        running: dict[cf.Future[Any], str] = {}
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
            while pending or running:
                for t in list(pending):
                    if blocked(t):
                        pending.remove(t)
                        errors[t.key] = InputError(f"{t.key}: a dependency failed")
                        record(t.key, None, 0.0, 0, "skipped")
                    elif set(t.deps) <= values.keys() and len(running) < workers:
                        pending.remove(t)
                        running[pool.submit(_execute, t.fn, t.args)] = t.key
                if not running:
                    if pending:
                        raise InputError(f"run_grid: tasks waiting on nothing runnable: {[t.key for t in pending]}")
                    break
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    key = running.pop(fut)
                    try:
                        record(key, *fut.result(), "done")
                    except Exception as exc:
                        errors[key] = exc
                        record(key, None, 0.0, 0, f"failed: {exc}")
    bar.close()
    wall = time.perf_counter() - t0
    table = pd.DataFrame(rows)
    first = next((errors[t.key] for t in tasks if t.key in errors and not str(errors[t.key]).endswith(
        "a dependency failed")), None)
    if first is not None:
        failed = ", ".join(k for k in by_key if k in errors)
        log.error("run_grid: failed or skipped tasks: %s", failed)
        raise first
    results = [values[eval_key(e)] for e in experiments]
    return GridResult(results=results, tasks=table, wall_s=round(wall, 1))


def _task_seconds(tasks: Sequence[Task], seconds: Mapping[str, float]) -> dict[str, float]:
    missing = [t.key for t in tasks if t.key not in seconds]
    if missing:
        raise InputError(f"no seconds for {len(missing)} of the {len(tasks)} tasks, e.g. {missing[0]}")
    bad = [t.key for t in tasks if not float(seconds[t.key]) >= 0]
    if bad:
        raise InputError(f"task seconds must be >= 0: {bad[0]} has {seconds[bad[0]]}")
    return {t.key: float(seconds[t.key]) for t in tasks}


def simulate_grid(tasks: Sequence[Task], seconds: Mapping[str, float], workers: int = 2,
                  priority: Callable[[Task], Any] | None = None) -> float:
    """Wall time (s) of :func:`run_grid`'s schedule of ``tasks`` (in :func:`plan`'s order) if each task took
    ``seconds[task.key]``: up to ``workers`` at a time, each started when a worker is free and its dependencies are
    done, the ready tasks taken in plan order, or by smallest ``priority(task)`` (ties in plan order).

    A projection, not a measurement: it assumes a task's time does not depend on what runs beside it (each task
    has one torch thread; a machine whose memory bandwidth the workers share is slower than this). Used to ask
    what a finished grid's recorded task times (:class:`p3d.notebook_runner.GridSittings`) would take with more
    workers or in another order; the dependency chain bounds it from below (:func:`critical_path_s`)."""
    import heapq

    if workers < 1:
        raise InputError(f"workers: expected a positive process count, got {workers}")
    cost = _task_seconds(tasks, seconds)
    index = {t.key: i for i, t in enumerate(tasks)}
    rank = (lambda t: index[t.key]) if priority is None else (lambda t: (priority(t), index[t.key]))
    pending = sorted(tasks, key=rank)
    done: set[str] = set()
    running: list[tuple[float, int, str]] = []
    now = 0.0
    while pending or running:
        ready = [t for t in pending if set(t.deps) <= done][: workers - len(running)]
        for t in ready:
            pending.remove(t)
            heapq.heappush(running, (now + cost[t.key], index[t.key], t.key))
        if not running:
            raise InputError(f"simulate_grid: tasks waiting on nothing runnable: {[t.key for t in pending][:3]}")
        now = running[0][0]
        while running and running[0][0] == now:  # every task ending at this moment, as run_grid's wait returns them
            done.add(heapq.heappop(running)[2])
    return now


def critical_path_s(tasks: Sequence[Task], seconds: Mapping[str, float]) -> float:
    """The longest chain of dependent tasks (s) at ``seconds[task.key]`` each: the wall time of ``tasks`` with
    unlimited workers, a lower bound of :func:`simulate_grid` beside ``sum(seconds) / workers``."""
    cost = _task_seconds(tasks, seconds)
    by_key = {t.key: t for t in tasks}
    finish: dict[str, float] = {}

    def end(key: str) -> float:
        if key not in finish:
            finish[key] = cost[key] + max((end(d) for d in by_key[key].deps if d in by_key), default=0.0)
        return finish[key]

    return max((end(t.key) for t in tasks), default=0.0)


@dataclasses.dataclass(frozen=True)
class WeightChoice:
    """The perceptual-loss weight of a preset's grid and its evidence (:func:`choose_weight`; notebook 06 writes
    ``table``, ``title`` and ``note`` as ``loss_weight_selection``).

    ``weight``: as :meth:`ExperimentSpec.experiment` takes it: kappa (``weight_rule="kappa"``; ``{model: kappa}``
    when chosen per model) or the absolute W (``"fixed"``). ``grid``: the selection's :class:`GridResult` (None
    with a fixed weight); ``runs``: its **val** results (empty with a fixed weight)."""

    weight: float | dict[str, float]
    table: Any
    title: str
    note: str
    grid: GridResult | None
    runs: list[dict[str, Any]]


def choose_weight(spec: Any, dirs: Any, *, models: Sequence[str] = ("faceformer",), per_model: bool = False,
                  candidates: Sequence[float] | None = None, lve_tolerance: float | None = None, seed: int = 0,
                  baselines: Sequence[str] = (), workers: int = 2, n_resamples: int | None = None,
                  progress: bool | None = None) -> WeightChoice:
    """The loss weight of ``spec``'s grid (paper Sec. 5, Eq. 6's W), with its evidence table.

    ``weight_rule="fixed"`` (``cpu``, ``full``): :func:`p3d.experiments.runs.grid_weight` (the paper's 1e-7
    carried to synth-voca's units, or as it is when ``vocaset_motion_rms`` is None), nothing trained; the table is
    one row (rule, ``vocaset_motion_rms (m)``, W), the note :func:`p3d.losses.weight.fixed_weight_note`.

    ``"kappa"`` (``smoke``, and the per-model sensitivity analysis): trains :meth:`ExperimentSpec.selection` of each of
    ``models`` (seed ``seed``; finished runs are reused) in one :func:`run_grid`, beside the Config 1 test baseline
    of each of ``baselines`` (trained early, side by side; the Config 1 grid reuses them), and chooses kappa on the
    val split with :func:`p3d.experiments.runs.kappa_selection` (``candidates`` and ``lve_tolerance``; None: the
    defaults :data:`KAPPA_CANDIDATES`, :data:`LVE_TOLERANCE`). The weight: ``{model: kappa}`` with ``per_model``,
    else the kappa of the single model of ``models``. ``n_resamples``: None takes the spec's."""
    import pandas as pd

    from p3d.experiments.runs import grid_weight, kappa_selection
    from p3d.experiments.spec import CONFIG1, KAPPA_CANDIDATES, LVE_TOLERANCE, MODEL_LABELS

    models = list(models)
    if not models or (not per_model and len(models) != 1):
        raise InputError(f"choose_weight: expected one model (or several with per_model=True), got {models!r}")
    if spec.weight_rule != "kappa":
        from p3d.losses.weight import fixed_weight_note

        weight = grid_weight(spec, dirs)
        table = pd.DataFrame([{"rule": "carried_loss_weight" if spec.vocaset_motion_rms else "paper's weight",
                               "vocaset_motion_rms (m)": spec.vocaset_motion_rms, "W": weight}])
        return WeightChoice(weight, table, f"The perceptual-loss weight at preset `{spec.preset}`, fixed in advance",
                            fixed_weight_note(spec.vocaset_motion_rms), None, [])
    candidates = KAPPA_CANDIDATES if candidates is None else candidates
    lve_tolerance = LVE_TOLERANCE if lve_tolerance is None else lve_tolerance
    selection = [e for m in models for e in spec.selection(m, candidates, seed=seed)]
    also = [spec.experiment(m, "none", CONFIG1, seed) for m in baselines]
    grid = run_grid(selection + also, dirs, workers=workers,
                    n_resamples=spec.n_resamples if n_resamples is None else n_resamples, progress=progress)
    runs = [r for r in grid.results if r["experiment"]["split"] == "val"]
    kappas, table, note = kappa_selection(runs, models, candidates, lve_tolerance=lve_tolerance)
    title = (f"Choosing the perceptual-loss weight on synth-voca val ({', '.join(MODEL_LABELS[m] for m in models)}, "
             f"critic ours, preset `{spec.preset}`)")
    return WeightChoice(kappas if per_model else kappas[models[0]], table, title, note, grid, runs)


def record_weight_choice(choice: WeightChoice, tables: str | os.PathLike[str], *,
                         per_model: bool = False) -> list[Path]:
    """Write ``choice``'s evidence (``table``, ``title``, ``note``) to ``tables/loss_weight_selection.csv`` and
    ``.md`` (with ``per_model`` ``loss_weight_selection_per_model_kappa``;
    :func:`p3d.experiments.tables.weight_table_name`), each file atomically: the table
    :func:`p3d.experiments.runs.grid_weight` reads the chosen kappa from (notebooks 05, 07 and 09). Returns the paths
    written.

    A kappa that replaces another recorded one (notebook 06 re-run with other candidates, or after notebook 07 chose
    its own) is logged as a warning: what was trained at the old kappa (notebook 07's Config 2 tables) is stale
    until it runs again."""
    from p3d.experiments.tables import chosen_kappa, weight_table_name, write_tables

    before = chosen_kappa(tables, per_model=per_model)
    if before is not None and before != choice.weight:
        log.warning("loss weight: kappa %s replaces %s recorded in %s; what trained at the old kappa (notebook 07's "
                    "Config 2 tables) is stale until it runs again", choice.weight, before,
                    Path(tables) / f"{weight_table_name(per_model)}.csv")
    return write_tables({weight_table_name(per_model): (choice.table, choice.title, choice.note)}, tables)


def config_weight(spec: Any, dirs: Any, *, kappa: float | None = None, per_model: bool = False,
                  **selection: Any) -> float | dict[str, float]:
    """The loss weight a grid after notebook 06 uses (notebook 07's Config 2): the fixed W (``weight_rule="fixed"``;
    ``kappa`` is then ignored); else ``kappa`` when given; else the kappa notebook 06 chose
    (:func:`p3d.experiments.runs.grid_weight`, its ``loss_weight_selection`` table); else, when notebook 06 has not
    run at this preset, the same choice made here (:func:`choose_weight` with ``selection``: models, candidates,
    lve_tolerance, seed, workers, n_resamples, progress; its finished runs are reused), recorded in that table
    (:func:`record_weight_choice`) as notebook 06 records it, so that every later reader of the preset's weight
    (:func:`~p3d.experiments.runs.grid_weight`: notebook 05 with a critic, notebook 09 with ``models``) gets the
    weight the Config 2 grid trained with, not the paper's 1e-7 or none. A given ``kappa`` is not recorded (an
    override of this call, not the preset's choice). A per-model kappa is never re-derived: without notebook 06's
    per-model table it is an :class:`InputError`."""
    from p3d.experiments.runs import grid_weight

    if spec.weight_rule == "fixed":
        return grid_weight(spec, dirs)
    weight = kappa if kappa is not None else grid_weight(spec, dirs, per_model=per_model)
    if weight is None and per_model:
        raise InputError("per_model_kappa: run notebook 06 with per_model_kappa=True first")
    if weight is None:
        choice = choose_weight(spec, dirs, **selection)
        record_weight_choice(choice, dirs.tables)
        weight = choice.weight
    return weight


def preset_grid(preset: str, dirs: Any, *, workers: int = 2, progress: bool | None = None,
                on_task: Callable[[dict[str, Any]], None] | None = None) -> GridResult | None:
    """Train and evaluate the preset's whole grid (:meth:`ExperimentSpec.config1` and
    :meth:`~ExperimentSpec.config2` of :func:`spec_for`, and every critic, evaluator and reference they need)
    in ``workers`` processes, when its loss weight is fixed in advance (``weight_rule="fixed"``: ``cpu``, ``full``):
    notebooks 02-07 then reuse every finished run, and the trainings that do not depend on each other
    (the loss critics' stage 1 and the PLRS evaluator's, ~30 min each at ``full``; the critics; the talkers) run side
    by side instead of one after the other inside the notebooks. None, doing nothing, where notebook 06 chooses the
    weight on val first (``smoke``)."""
    from p3d.experiments.runs import grid_weight, prepare_corpora
    from p3d.experiments.spec import spec_for

    spec = spec_for(preset)
    if spec.weight_rule != "fixed":
        return None
    prepare_corpora(preset, dirs, progress=progress)
    weight = grid_weight(spec, dirs)
    return run_grid([*spec.config1(weight), *spec.config2(weight)], dirs, workers=workers,
                    n_resamples=spec.n_resamples, progress=progress, on_task=on_task, groups=spec.length_groups(weight))
