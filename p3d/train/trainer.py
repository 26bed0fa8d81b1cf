"""One small training loop for every model in p3d: seeds, checkpoints, exact resume, DDP.

Design (nanoGPT-style: no framework, everything visible here):

- **Randomness is a function of (seed, step, rank).** At every step the loop re-seeds torch's global
  RNG and hands the step a fresh ``torch.Generator`` seeded from ``(seed, step, rank)``; the batch
  indices are drawn from a generator seeded from ``(seed, step)``. A resumed run therefore needs no
  saved RNG state and takes exactly the steps an uninterrupted run would (same next-step loss).
- **Checkpoints** (``RUN_DIR/checkpoints/step_XXXXXXX.pt`` and ``last.pt``) hold the model and optimiser
  state dicts, the step and the config; they are written atomically and read with
  ``torch.load(weights_only=True)``. ``metrics.csv`` rows past the checkpoint are dropped on resume, and the
  temporary file of a checkpoint write that a kill cut off is deleted.
- **DDP**: launched by ``torchrun --nproc_per_node=N -m p3d train ...``; the loop reads ``RANK`` /
  ``WORLD_SIZE`` from the environment, uses the gloo backend on CPU (nccl on CUDA), wraps the model in
  ``DistributedDataParallel`` and gives each rank a disjoint slice of the global batch. A loss that is a mean
  over the batch's items (the talkers') then trains as one process would; a loss over the batch as a whole sees
  each rank's share (the critics' InfoNCE: :mod:`p3d.train.critics`). BatchNorm (3D SyncNet) would normalise each
  rank's share too: on CUDA it becomes ``SyncBatchNorm`` (statistics of the global batch); on CPU, where
  ``SyncBatchNorm`` does not run, a model with BatchNorm is refused in more than one process. The loss and the
  step's logs in ``metrics.csv`` are averaged over the ranks (the global batch's, not rank 0's share).

- **Resume only what was started.** ``config.json`` records the settings of the run (``train``: this
  loop's :class:`TrainConfig`; the rest: the job's ``extra_config``: kind, data, model, critic, ...). A
  call into a folder that already holds a run compares its settings with the recorded ones
  (:func:`resume_plan`) and refuses (:class:`p3d.errors.InputError`, one line ``name: old -> new`` per
  differing setting) unless they agree, so a folder never mixes two runs and ``config.json`` never claims
  settings the weights were not trained with. Exceptions:

  * a **longer** ``steps`` extends the run: it continues from its last checkpoint to the new step count
    (the same weights as a run asked for that many steps from the start). ``config.json`` then holds the
    new ``steps`` (and the entries derived from it: ``epochs``, the stage's ``stage_steps``) and appends
    ``{"steps_from", "steps_to", "at"}`` (UTC) to its ``extensions`` list, so the original request is
    ``extensions[0]["steps_from"]``; a ``final.pt`` of the shorter run is removed (it is rewritten at the
    end), except that of a run the plateau rule stopped, which trains no further and keeps it (same weights, same
    file stamp). A shorter ``steps`` is refused.
  * **bookkeeping** that does not change the weights may differ (:data:`NEUTRAL_SETTINGS`: ``log_every``,
    ``checkpoint_every``, ``keep_checkpoints``; the device index, ``cuda:0`` vs ``cuda:1``); ``config.json``
    keeps the first values. Settings outside ``config.json`` are free as well: progress bars, logging,
    output paths, data-loading threads, torch's thread count. (On CPU a different thread count may change
    the last bits of float sums: byte-identical reruns need the same thread count.)

  * a finished run is **continued without its stopping rule** in another folder
    (:func:`continue_without_stop_rule`: recast as a ``stop="steps"`` run of the steps it took, then extended),
    so two runs that stopped on their own plateaus can be compared at equal length; the continuation ends with
    the weights of a run of that length from the start.

  * a setting added to ``config.json`` after a run was recorded compares as the value the code before it implied
    (:data:`IMPLIED_BY_OLDER_RECORDS`), so such a run resumes; any other value is a change.

  The device type (cpu / cuda) counts as a setting: its kernels round differently.
- **Byte-identical outputs.** Checkpoints hold only deterministic content (state dicts, step, the JSON
  form of the config) and are written by :func:`p3d.models.save_checkpoint`, which gives torch's zip
  writer a file object, so no temporary file name ends up inside the archive: two runs with the same
  settings (and thread count) write the same bytes.

- **One process per run folder.** The main process holds the folder's lock (:func:`p3d.train.run_folder.run_lock`)
  while it trains and writes ``final.pt`` (``train(finalize=...)``); a second process asked to train the same folder
  (two scripts whose grids share a run) waits for it, then resumes from what it left, so the two never interleave
  checkpoints or log rows, and a temporary file the next holder finds is one a killed process left.
- **Stopping** (``TrainConfig.stop``): ``steps`` trains ``steps`` steps; ``plateau`` evaluates a validation
  metric every ``eval_every`` steps (``val.csv``, truncated on resume like ``metrics.csv``) and stops when
  it has plateaued (:mod:`p3d.train.convergence`: the rule, its settings, the weights kept), ``steps``
  being the cap. The rule's settings are result-changing settings (compared on resume); the decision is a
  function of the recorded validation history, so a resumed run stops at the same step, and a resumed run
  that the rule had stopped does nothing. A run stopped by the rule checkpoints its stop step.

A model plugs in with a ``step_fn(model, batch, generator) -> (loss, logs)``; a dataset is anything with
``__len__`` and a ``collate(indices) -> batch`` method; a validation metric with a
``validate(model, step) -> {column: value}`` callable that names its monitored column in ``metric``.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from p3d.atomic import atomic_path
from p3d.progress import show_progress
from p3d.train.convergence import (DEFAULT_MIN_REL_IMPROVEMENT, DEFAULT_PATIENCE, DEFAULT_SMOOTH, VAL_CSV,
                                   check_history, plateau_reached, smoothed)
from p3d.train.run_folder import (CONTINUED_FROM, LOCK_FILE, latest_checkpoint, load_checkpoint, read_run_config,
                                  run_lock)

log = logging.getLogger(__name__)


class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def collate(self, indices: list[int]) -> Any: ...


StepFn = Callable[[torch.nn.Module, Any, torch.Generator], "tuple[torch.Tensor, Mapping[str, float]]"]


@dataclasses.dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings shared by every ``p3d train`` command."""

    steps: int = 100
    batch_size: int = 32
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    warmup_steps: int = 0
    checkpoint_every: int = 50
    log_every: int = 10
    seed: int = 0
    keep_checkpoints: int = 2
    #: Stopping rule (:mod:`p3d.train.convergence`): ``steps`` trains ``steps`` steps; ``plateau`` stops when
    #: the validation metric has improved by less than ``min_rel_improvement`` (relative) over the last
    #: ``patience`` evaluations (moving median over ``smooth`` evaluations), ``steps`` being the cap.
    stop: str = "steps"
    #: Steps between validation evaluations (``val.csv``); 0: none (``stop="steps"`` only).
    eval_every: int = 0
    patience: int = DEFAULT_PATIENCE
    min_rel_improvement: float = DEFAULT_MIN_REL_IMPROVEMENT
    smooth: int = DEFAULT_SMOOTH

    #: The stopping fields, left out of :meth:`to_dict` for a plain fixed-step run without validation (so
    #: runs recorded before the rule existed compare equal and their checkpoints keep their bytes).
    STOP_FIELDS = ("stop", "eval_every", "patience", "min_rel_improvement", "smooth")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        if self.stop == "steps" and not self.eval_every:
            for name in self.STOP_FIELDS:
                d.pop(name)
        return d


@dataclasses.dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Initialise torch.distributed when launched by torchrun (``WORLD_SIZE`` > 1); else single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    info = DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
    return info


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (stable across runs and machines)."""
    h = 1469598103934665603
    for v in values:
        h = ((h ^ (v & 0xFFFFFFFFFFFFFFFF)) * 1099511628211) & 0x7FFFFFFFFFFFFFFF
    return h


def batch_indices(n_items: int, batch_size: int, seed: int, step: int) -> list[int]:
    """The global batch of ``step``: ``batch_size`` item indices, a deterministic function of (seed, step).

    Items are drawn without replacement within an epoch-like permutation: step s uses positions
    [s*B, (s+1)*B) of the concatenation of per-epoch permutations (each seeded by (seed, epoch)).
    """
    if n_items <= 0:
        raise ValueError("empty dataset")
    out: list[int] = []
    pos = step * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(pos, n_items)
        g = torch.Generator().manual_seed(_mix(seed, epoch))
        perm = torch.randperm(n_items, generator=g)
        take = min(batch_size - len(out), n_items - offset)
        out.extend(perm[offset:offset + take].tolist())
        pos += take
    return out


def _lr_at(cfg: TrainConfig, step: int) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:07d}.pt"


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, step: int,
                    config: Mapping[str, Any]) -> None:
    """Atomically save a checkpoint readable with ``torch.load(weights_only=True)``."""
    from p3d.models import save_checkpoint as save_torch

    state = {
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step),
        "config": dict(config),
    }
    save_torch(state, path)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


#: Entries of ``config.json`` (dotted names) that do not change the trained weights: a resumed run may
#: give other values; ``config.json`` keeps the first ones.
NEUTRAL_SETTINGS: frozenset[str] = frozenset({"train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
                                              "extensions"})

#: Settings ``config.json`` gained after runs had been recorded, with the value every older record implies (the code
#: before the setting behaved so): a record without one compares as holding that value, so a run started before it
#: existed resumes. ``world_size``: one process; ``model_config.audio.trim_before_encoder``: the odd last 50 Hz
#: wav2vec2 feature dropped before the transformer (:class:`p3d.models.audio_encoder.AudioEncoderConfig`).
#: The other rule for a setting a record lacks is :data:`p3d.train.api.ADOPTED_KEYS`: that layer checks the run
#: folder's ``data.json`` (the code's defaults for the request's kind and preset, before any data are loaded, and
#: the only check a finished run that is reused meets), this one ``config.json`` (the run's resolved settings,
#: compared on resume). There a setting added since is adopted at today's default; a setting both hold must have
#: that default equal to the value implied here, or a finished run would be reused that a resume refuses.
IMPLIED_BY_OLDER_RECORDS: Mapping[str, Any] = {"world_size": 1, "model_config.audio.trim_before_encoder": True}


def json_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as ``config.json`` stores it (tuples as lists, paths as strings): what runs compare."""
    import json

    from p3d.atomic import _json_default

    return json.loads(json.dumps(dict(config), default=_json_default))


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for k in parents:
        d = d.setdefault(k, {})
    d[last] = value


def _show(name: str, old: Any, new: Any) -> str:
    """``name: old -> new``, each value cut to about 60 characters around where the two first differ (two long paths
    that differ only past their first 57 characters read as two different values, not as the same one twice)."""
    import json
    import os.path

    def text(v: Any) -> str:
        return "(none)" if v is _MISSING else v if isinstance(v, str) else json.dumps(v)

    a, b = text(old), text(new)
    start = max(0, len(os.path.commonprefix([a, b])) - 20)

    def one(t: str) -> str:
        if len(t) <= 60:
            return t
        cut = min(start, len(t) - 57)
        return ("..." if cut else "") + t[cut:cut + 57] + ("..." if cut + 57 < len(t) else "")

    return f"{name.removeprefix('train.')}: {one(a)} -> {one(b)}"


_MISSING = object()


def _derived_from_steps(config: Mapping[str, Any]) -> set[str]:
    """Entries that follow from ``train.steps`` (and settings compared on their own): ``epochs`` and the
    stage's own ``stage_steps``; later stages' ``stage_steps`` do not change an earlier stage."""
    names = {"epochs"}
    stage, stages = config.get("stage"), list(config.get("stages") or [])
    if stage is not None:
        names.add(f"stage_steps.{stage}")
        if stage in stages:
            names.update(f"stage_steps.{s}" for s in stages[stages.index(stage) + 1:])
    return names


def run_config(cfg: TrainConfig, extra_config: Mapping[str, Any] | None = None, world_size: int = 1) -> dict[str, Any]:
    """The settings :func:`train` records in ``config.json``: ``train`` (``cfg``), the job's ``extra_config`` and
    ``world_size`` (the number of processes: it splits the global batch, so it changes the result)."""
    return {"train": cfg.to_dict(), **dict(extra_config or {}), "world_size": int(world_size)}


def resume_plan(previous: Mapping[str, Any] | None, config: Mapping[str, Any], where: str = "the run folder"
                ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Whether a run folder recorded with ``previous`` (its ``config.json``; None: a new folder) may go on with
    ``config`` (see the module docstring); returns ``(config to record, extension or None)``.

    Raises :class:`InputError` naming every differing setting as ``name: old -> new``.
    """
    from p3d.errors import InputError

    new = json_config(config)
    if previous is None:
        return new, None
    old = json_config(previous)
    old_flat, new_flat = _flat(old), _flat(new)
    for name, value in IMPLIED_BY_OLDER_RECORDS.items():  # a record from before the setting: the value it implies
        if name not in old_flat and name in new_flat:
            _set(old, name, value)
            old_flat[name] = value
    for flat in (old_flat, new_flat):  # the device's type matters, not which GPU of the machine
        if isinstance(flat.get("device"), str):
            flat["device"] = flat["device"].split(":")[0]
    skip = NEUTRAL_SETTINGS | _derived_from_steps(old) | _derived_from_steps(new) | {"train.steps"}
    changes = [_show(k, old_flat.get(k, _MISSING), new_flat.get(k, _MISSING))
               for k in [*old_flat, *(k for k in new_flat if k not in old_flat)]
               if k not in skip and old_flat.get(k, _MISSING) != new_flat.get(k, _MISSING)]
    old_steps, new_steps = int(old["train"]["steps"]), int(new["train"]["steps"])
    if new_steps < old_steps:
        changes.append(_show("train.steps", old_steps, new_steps) + " (a run is extended, never shortened)")
    if changes:
        raise InputError(f"{where}: holds a run with other settings: {'; '.join(changes)} (repeat its settings, "
                         f"extend it with a longer --steps, or use another --out)")
    if new_steps == old_steps:
        return old, None
    import datetime

    extension = {"steps_from": old_steps, "steps_to": new_steps,
                 "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    record = json_config(old)
    _set(record, "train.steps", new_steps)
    for name in _derived_from_steps(new) & set(new_flat):
        _set(record, name, new_flat[name])
    record["extensions"] = [*old.get("extensions", []), extension]
    return record, extension


def continue_without_stop_rule(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> int:
    """Start ``out`` as the finished run in ``source`` recast as a ``stop="steps"`` run of the ``s`` steps it took
    (the plateau rule or its cap ended it at ``s``), so that :func:`train` with ``stop="steps"`` and a longer
    ``steps`` extends it without the rule; returns ``s``.

    Randomness is a function of (seed, step) and the rule only decides where to stop (the weights kept are the
    last step's, :mod:`p3d.train.convergence`), so the first ``s`` steps of a ``stop="steps"`` run of the same
    settings are ``source``'s: ``out`` receives ``source``'s settings with ``train.stop = "steps"`` and
    ``train.steps = s`` (``config.json``; its ``extensions`` dropped, ``epochs`` and the stage's ``stage_steps``
    rescaled to ``s``), ``source``'s last checkpoint (step ``s``: model and optimiser), ``metrics.csv`` and
    ``val.csv``, and ``continued_from.json`` (:data:`CONTINUED_FROM`: the source folder, ``s``, the time). An
    extension to ``n`` steps then ends with the weights, logs and validation curve of a ``stop="steps"`` run of
    ``n`` steps from the start (its ``config.json`` records the extension). Used to compare runs at equal length
    when each stopped on its own plateau. The folder is written whole (:func:`staging_dir`, renamed), under that
    folder's lock: a concurrent call waits, and the leftover of a killed call is removed by the next; ``source`` is
    read and copied under its own lock (a process extending it meanwhile is waited for, so the step, checkpoint and
    logs are of one moment); a folder that already holds a continuation of ``source`` is left as it is (and the
    ``s`` it records returned, though ``source`` may have been extended since).

    Raises :class:`InputError` when ``source`` holds no finished run (``final.pt`` and a last checkpoint) or
    ``out`` holds anything else."""
    import datetime
    import shutil

    from p3d.atomic import write_json
    from p3d.errors import InputError

    source, out = Path(source), Path(out)

    def finished_run() -> tuple[dict[str, Any], Path, int]:
        recorded = read_run_config(source)
        ckpt_path = latest_checkpoint(source)
        if recorded is None or ckpt_path is None or not (source / "final.pt").is_file():
            raise InputError(f"{source}: holds no finished training run to continue")
        return recorded, ckpt_path, int(load_checkpoint(ckpt_path)["step"])

    recorded, ckpt_path, start = finished_run()

    def existing() -> int:
        # by the source's folder name: a runs/ folder copied or cloned elsewhere keeps its continuations
        marker = out / CONTINUED_FROM
        made = json.loads(marker.read_text()) if marker.is_file() else {}
        if Path(made.get("run", "")).name != source.name:
            raise InputError(f"{out}: exists and is not a continuation of {source}; use another folder")
        # the step it was made from, not the source's now (larger if the source was extended since)
        return int(made.get("step", start))

    tmp = staging_dir(out)
    if out.exists() and not tmp.exists():
        return existing()
    # the staging folder's own lock (moved with it into ``out``, whose lock it then is): a second call waits for a
    # live one; what it finds in the folder then is a killed call's, removed (a checkpoint's size)
    with run_lock(tmp):
        try:
            if out.exists():  # made by the call this one waited for
                shutil.rmtree(tmp)
                return existing()
            tmp.mkdir(parents=True, exist_ok=True)  # made by run_lock, except where it cannot lock (Windows)
            for stale in (p for p in tmp.iterdir() if p.name != LOCK_FILE):
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale)
                else:
                    stale.unlink()
            # the source read and copied under its lock: a process extending it meanwhile (its training holds the
            # lock) is waited for, so the step, checkpoint and logs copied are of one moment. Lock order: the
            # staging folder's, then the source's; no holder of a run folder's lock takes a staging folder's
            with run_lock(source):
                recorded, ckpt_path, start = finished_run()
                config = json_config({k: v for k, v in recorded.items() if k != "extensions"})
                old_steps = int(config["train"]["steps"])
                if "stop" in config["train"]:  # a source without one trained a fixed step count already
                    _set(config, "train.stop", "steps")
                _set(config, "train.steps", start)
                for name in _derived_from_steps(config) & set(_flat(config)):
                    value = _flat(config)[name]
                    _set(config, name, value * start / old_steps if name == "epochs" else start)
                (tmp / "checkpoints").mkdir()
                shutil.copyfile(ckpt_path, tmp / "checkpoints" / "last.pt")
                for name in ("metrics.csv", VAL_CSV):
                    if (source / name).is_file():
                        shutil.copyfile(source / name, tmp / name)
            write_json(tmp / "config.json", config)
            write_json(tmp / CONTINUED_FROM, {"run": str(source), "step": start,
                                              "at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                                                  timespec="seconds")})
            tmp.rename(out)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if out.exists():  # made meanwhile by a process that does not take the staging lock (p3d train --out)
                return existing()
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return start


def staging_dir(out: str | os.PathLike[str]) -> Path:
    """The hidden sibling folder (``.OUT.continuing``) in which :func:`continue_without_stop_rule` builds ``out``
    before renaming it into place: one name per ``out``, so a call finds (and removes) what a killed one left."""
    out = Path(out)
    return out.parent / f".{out.name}.continuing"


def _remove_killed_writes(run_dir: Path) -> None:
    """Delete the temporary files (:func:`p3d.atomic.atomic_path`, ``.NAME.tmp-*``) that a training process killed
    while writing a checkpoint, ``final.pt``, ``metrics.csv``, ``val.csv``, ``config.json`` or ``timing.json`` left (a
    half-written checkpoint is as large as a whole one). Only the holder of the folder's lock writes those files
    (``final.pt``: :func:`train`'s ``finalize``; ``timing.json``: :mod:`p3d.experiments.runs`), so with the lock held
    none is being written. ``request.json`` and ``data.json`` are written without the lock (before training), so
    theirs are left alone."""
    names = [".final.pt.tmp-*", ".metrics.csv.tmp-*", f".{VAL_CSV}.tmp-*", ".config.json.tmp-*", ".timing.json.tmp-*"]
    for path in [*(run_dir / "checkpoints").glob(".*.tmp-*"), *(p for n in names for p in run_dir.glob(n))]:
        path.unlink(missing_ok=True)


def _trim_metrics(csv_path: Path, max_step: int) -> None:
    """Drop metric rows logged after ``max_step`` (they belong to the interrupted run's lost steps)."""
    if not csv_path.exists():
        return
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    keep = [r for r in rows if int(r["step"]) <= max_step]
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as fh:  # synced before it replaces the file
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(keep)


def train(
    model: torch.nn.Module,
    data: BatchSource,
    step_fn: StepFn,
    cfg: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    extra_config: Mapping[str, Any] | None = None,
    params: list[torch.nn.Parameter] | None = None,
    progress: bool | None = None,
    stop_after: int | None = None,
    validate: Validate | None = None,
    finalize: Callable[[Path], Any] | None = None,
) -> dict[str, Any]:
    """Train ``model`` for ``cfg.steps`` steps (or until the plateau rule stops it), resuming from ``run_dir``
    if it holds a checkpoint.

    Args:
        model: the module to train (only ``params``, default all ``requires_grad`` parameters, are optimised).
        data: item source; the global batch of each step is ``batch_indices(len(data), cfg.batch_size, ...)``,
            split across ranks.
        step_fn: ``(model, batch, generator) -> (loss, logs)``.
        run_dir: output folder: ``metrics.csv``, ``checkpoints/``, ``config.json``.
        stop_after: stop (as if interrupted) after this many steps of *this call* (tests of resume).
        validate: ``(model, step) -> {column: value}`` with a ``metric`` attribute naming the monitored column
            (lower is better; :mod:`p3d.train.convergence`), called every ``cfg.eval_every`` steps on the
            unwrapped model by the main process (the value is broadcast to the others); the rows go to
            ``val.csv`` (``step, val, val_smoothed`` and the returned columns). Required when
            ``cfg.eval_every > 0``.
        finalize: ``(run_dir) -> path`` writing the finished run's ``final.pt`` (``Job.finalize``): called by the
            main process while it still holds the folder's lock, once the run is finished, unless another process
            finished it meanwhile (:func:`finished_elsewhere`). So no process writes ``final.pt`` while another
            holds the lock, and the temporary file of a write that a kill cut off is removed by the next holder
            (:func:`_remove_killed_writes`).

    Returns:
        ``{"step": last completed step, "loss": last loss, "finished": the run is complete (cap reached or
        stopped by the rule), "converged": the rule stopped it (None with ``stop="steps"``), "steps_here": the
        optimisation steps this call took (0 when the run was already finished, e.g. by another process that held
        the folder's lock meanwhile), "final": what ``finalize`` returned (None when it was not called)}``.
    """
    from p3d.errors import InputError, whole_number

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"--out {run_dir}: exists and is not a folder")
    if cfg.stop not in ("steps", "plateau"):
        raise InputError(f"stop: expected steps or plateau, got {cfg.stop!r}")
    counts = {}  # as Python ints: a modulus of 0 or a negative count would fail mid-run, after the folder is written
    for name, low in (("steps", 0), ("batch_size", 1), ("log_every", 1), ("checkpoint_every", 1),
                      ("keep_checkpoints", 0), ("eval_every", 0), ("warmup_steps", 0), ("seed", None)):
        counts[name] = whole_number(getattr(cfg, name), low)
        if counts[name] is None:
            raise InputError(f"{name}: expected an integer{'' if low is None else f' >= {low}'}, "
                             f"got {getattr(cfg, name)!r}")
    cfg = dataclasses.replace(cfg, **counts)
    if cfg.stop == "plateau" and not math.isfinite(cfg.min_rel_improvement):
        raise InputError(f"min_rel_improvement: expected a finite fraction, got {cfg.min_rel_improvement}")
    if cfg.stop == "plateau" and cfg.eval_every < 1:
        raise InputError("eval_every: the plateau rule needs a positive evaluation interval")
    if cfg.stop == "plateau" and not cfg.min_rel_improvement > 0:
        raise InputError(f"min_rel_improvement: the plateau rule needs a fraction > 0, got {cfg.min_rel_improvement}")
    if cfg.stop == "plateau" and cfg.patience < 1:  # the rule compares the last ``patience`` evaluations: 0 never fires
        raise InputError(f"patience: the plateau rule needs at least 1 evaluation, got {cfg.patience}")
    if cfg.eval_every and cfg.smooth < 1:  # a median over no evaluations: NaN, and the rule never fires
        raise InputError(f"smooth: the validation curve's moving median needs at least 1 evaluation, got {cfg.smooth}")
    if cfg.eval_every and validate is None:
        raise InputError(f"eval_every: {cfg.eval_every} but this training job has no validation metric")
    dist = init_distributed()
    if cfg.batch_size % dist.world_size:  # before anything is written into the folder
        raise InputError(f"--batch-size: {cfg.batch_size} is not divisible by the {dist.world_size} processes")
    if dist.world_size > 1 and _has_batch_norm(model) and next(model.parameters()).device.type != "cuda":
        raise InputError(f"{type(model).__name__} has BatchNorm layers: in {dist.world_size} processes on the CPU each "
                         "would normalise its share of the batch (SyncBatchNorm needs CUDA); train it in one process")
    with run_lock(run_dir) if dist.is_main else contextlib.nullcontext():
        if dist.world_size > 1:  # the other ranks read the folder once the main one holds its lock
            import torch.distributed as tdist

            tdist.barrier()
        result = _train_locked(model, data, step_fn, cfg, run_dir, dist, extra_config, params, progress, stop_after,
                               validate)
        result["final"] = None
        if finalize is not None and dist.is_main and result["finished"] and not finished_elsewhere(result, run_dir):
            result["final"] = finalize(run_dir)
        return result


def _train_locked(model: torch.nn.Module, data: BatchSource, step_fn: StepFn, cfg: TrainConfig, run_dir: Path,
                  dist: DistInfo, extra_config: Mapping[str, Any] | None, params: list[torch.nn.Parameter] | None,
                  progress: bool | None, stop_after: int | None, validate: Validate | None) -> dict[str, Any]:
    """:func:`train` once the run folder's lock is held."""
    from tqdm.auto import tqdm

    from p3d.atomic import write_json

    recorded, extension = resume_plan(read_run_config(run_dir), run_config(cfg, extra_config, dist.world_size),
                                      f"--out {run_dir}")
    config = {k: v for k, v in recorded.items() if k != "extensions"}  # what checkpoints carry
    torch.manual_seed(cfg.seed)
    params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                  weight_decay=cfg.weight_decay)
    start = 0
    ckpt_path = latest_checkpoint(run_dir)
    if ckpt_path is not None:
        ckpt = load_checkpoint(ckpt_path)
        model.load_state_dict(ckpt["model"])
        if ckpt.get("optimizer") is not None:
            optimizer.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])
        log.info("resuming %s from step %d", run_dir, start)
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _remove_killed_writes(run_dir)
        if extension is not None or not (run_dir / "config.json").exists():
            write_json(run_dir / "config.json", recorded)
        _trim_metrics(run_dir / "metrics.csv", start)
        _trim_metrics(run_dir / VAL_CSV, start)
    history = _read_history(run_dir / VAL_CSV, start) if cfg.eval_every else []
    stopped = cfg.stop == "plateau" and _plateau(cfg, history)  # a run the rule stopped: nothing to do
    if dist.is_main and extension is not None:
        log.info("extending %s from %d to %d steps", run_dir, extension["steps_from"], extension["steps_to"])
        if not stopped:  # the shorter run's; rewritten at the end (a stopped run's is kept: the same weights)
            (run_dir / "final.pt").unlink(missing_ok=True)
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        if _has_batch_norm(model):  # CUDA (train() refused it on the CPU): statistics of the global batch
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same parameters and buffers
        ddp_model: torch.nn.Module = DistributedDataParallel(model)
    else:
        ddp_model = model
    per_rank = cfg.batch_size // dist.world_size

    csv_path = run_dir / "metrics.csv"
    writer = None
    fh = None
    val_log = _CsvLog(run_dir / VAL_CSV)
    last_loss = float("nan")
    bar = tqdm(total=cfg.steps, initial=start, desc=f"train {run_dir.name}", unit="step",
               disable=not (show_progress(progress) and dist.is_main))
    done_here = 0
    step = start
    try:
        for step in range(start, cfg.steps):
            if stopped or (stop_after is not None and done_here >= stop_after):
                break
            torch.manual_seed(_mix(cfg.seed, step, dist.rank))
            gen = torch.Generator().manual_seed(_mix(cfg.seed, step, dist.rank, 1))
            idx = batch_indices(len(data), cfg.batch_size, cfg.seed, step)
            batch = data.collate(idx[dist.rank * per_rank:(dist.rank + 1) * per_rank])
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(cfg, step)
            ddp_model.train()
            loss, logs = step_fn(ddp_model, batch, gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            last_loss, logs = _global_logs(loss.detach(), logs, dist)
            done_here += 1
            completed = step + 1
            bar.update(1)
            if cfg.eval_every and completed % cfg.eval_every == 0:
                assert validate is not None
                logs_val = _evaluate(validate, model, completed, dist)
                history.append(logs_val[_metric(validate)])
                if dist.is_main:
                    val_log.write({"step": completed, "val": history[-1],
                                   "val_smoothed": float(smoothed(history, cfg.smooth)[-1]), **logs_val})
                stopped = cfg.stop == "plateau" and _plateau(cfg, history)
                if stopped:
                    log.info("%s: validation plateau at step %d (%s); stopping", run_dir, completed,
                             _metric(validate))
            if dist.is_main and (completed % cfg.log_every == 0 or completed == cfg.steps or completed == 1
                                 or stopped):
                row = {"step": completed, "loss": last_loss, "lr": _lr_at(cfg, step),
                       **{k: float(v) for k, v in logs.items()}}
                if writer is None:
                    new = _without_header(csv_path)
                    fh = open(csv_path, "a", newline="")
                    writer = csv.DictWriter(fh, fieldnames=list(row.keys()))
                    if new:
                        writer.writeheader()
                writer.writerow(row)
                fh.flush()
                bar.set_postfix(loss=f"{last_loss:.4f}")
            if completed % cfg.checkpoint_every == 0 or completed == cfg.steps or stopped:
                if dist.is_main:
                    _save_and_prune(run_dir, model, optimizer, completed, config, cfg.keep_checkpoints)
    finally:
        bar.close()
        val_log.close()
        if fh is not None:
            fh.close()
    if dist.world_size > 1:
        import torch.distributed as tdist

        tdist.barrier()
    done = start + done_here
    return {"step": done, "loss": last_loss, "finished": stopped or done >= cfg.steps,
            "converged": stopped if cfg.stop == "plateau" else None, "steps_here": done_here}


def finished_elsewhere(result: Mapping[str, Any], run_dir: str | os.PathLike[str]) -> bool:
    """Whether :func:`train` (its ``result``) trained nothing here because another process finished the run while
    this one waited for the folder's lock (see "One process per run folder"): ``final.pt`` is there already. It is
    then left as it is (:func:`train` does not call its ``finalize``): writing it again would give the same weights a
    new file stamp, and every cache keyed by the stamp would be computed again."""
    return int(result["steps_here"]) == 0 and (Path(run_dir) / "final.pt").exists()


class Validate(Protocol):
    """A validation metric for :func:`train` (see :mod:`p3d.train.convergence`)."""

    metric: str

    def __call__(self, model: torch.nn.Module, step: int) -> Mapping[str, float]: ...


def _has_batch_norm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _global_logs(loss: torch.Tensor, logs: Mapping[str, Any], dist: DistInfo) -> tuple[float, dict[str, float]]:
    """The step's loss and logs of the global batch: averaged over the ranks (each holds its share's), as one
    process would log them; unchanged in one process."""
    values = {k: float(v) for k, v in logs.items()}
    if dist.world_size == 1:
        return float(loss), values
    import torch.distributed as tdist

    t = torch.tensor([float(loss), *values.values()], dtype=torch.float64)
    tdist.all_reduce(t)
    t /= dist.world_size
    return float(t[0]), dict(zip(values, t[1:].tolist()))


def _metric(validate: Validate) -> str:
    return str(getattr(validate, "metric", "val"))


def _plateau(cfg: TrainConfig, history: list[float]) -> bool:
    return plateau_reached(history, window=cfg.smooth, patience=cfg.patience,
                           min_rel_improvement=cfg.min_rel_improvement)


def _evaluate(validate: Validate, model: torch.nn.Module, step: int, dist: DistInfo) -> dict[str, float]:
    """The validation row of ``step``: computed by the main process, broadcast to the others (every process
    then takes the same stop decision)."""
    row: dict[str, float] | None = None
    if dist.is_main:
        row = {k: float(v) for k, v in validate(_unwrap(model), step).items()}
        metric = _metric(validate)
        if metric not in row:
            raise KeyError(f"validation returned no {metric!r} column (got {sorted(row)})")
        if not math.isfinite(row[metric]):
            raise FloatingPointError(f"non-finite validation {metric} {row[metric]} at step {step}")
    if dist.world_size > 1:
        import torch.distributed as tdist

        box = [row]
        tdist.broadcast_object_list(box, src=0)
        row = box[0]
    assert row is not None
    return row


def _read_history(path: Path, max_step: int) -> list[float]:
    """The monitored validation values (``val``) of the rows of ``val.csv`` up to ``max_step``, in order."""
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= max_step]
    return check_history([r["step"] for r in rows], [r["val"] for r in rows], path)


def _without_header(path: Path) -> bool:
    """Whether the log file ``path`` needs its header: it does not exist, or is empty (a process killed, or a disk
    that filled, between creating it and its first flush: its rows would follow with no header, the first row then
    read as one, so the next resume failed on a missing ``step`` column)."""
    return not path.exists() or path.stat().st_size == 0


class _CsvLog:
    """Append rows to a CSV file, writing the header when the file is new or empty (main process only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: Any = None
        self.writer: Any = None

    def write(self, row: Mapping[str, Any]) -> None:
        if self.writer is None:
            new = _without_header(self.path)
            self.fh = open(self.path, "a", newline="")
            self.writer = csv.DictWriter(self.fh, fieldnames=list(row.keys()))
            if new:
                self.writer.writeheader()
        self.writer.writerow(row)
        self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


def _checkpoint_step(path: Path) -> int:
    """The step of ``checkpoints/step_XXXXXXX.pt`` (:func:`checkpoint_path`); -1 for a name without one."""
    digits = path.stem.removeprefix("step_")
    return int(digits) if digits.isdigit() else -1


def _save_and_prune(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    config: Mapping[str, Any], keep: int) -> None:
    import shutil

    path = checkpoint_path(run_dir, step)
    save_checkpoint(path, model, optimizer, step, config)
    with atomic_path(run_dir / "checkpoints" / "last.pt") as tmp:  # synced before it replaces last.pt
        shutil.copyfile(path, tmp)
    # by step number, not by name: the 7-digit names stop sorting as numbers past step 9 999 999
    kept = sorted((run_dir / "checkpoints").glob("step_*.pt"), key=_checkpoint_step)
    old = kept[:-keep] if keep > 0 else []
    for p in old:
        p.unlink(missing_ok=True)
