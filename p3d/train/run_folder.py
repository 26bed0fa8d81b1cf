"""What a training run folder holds, read back: its recorded settings and its checkpoints.

A run folder (:func:`p3d.train.trainer.train`) holds ``config.json`` (the run's settings: ``train`` and the
job's ``extra_config``), ``checkpoints/step_XXXXXXX.pt`` and ``checkpoints/last.pt`` (model and optimiser
state dicts, step, config; read with ``torch.load(weights_only=True)``), ``metrics.csv`` and, for runs that
stop on a plateau, ``val.csv``, and ``.lock``, the lock a training process holds while it trains the folder
(:func:`run_lock`). The readers here sit below both the training loop and the convergence
table (:mod:`p3d.train.convergence`), which reads finished runs; torch is imported only to read a checkpoint.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p3d.errors import InputError, one_line

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: The lock file inside a run folder (:func:`run_lock`).
LOCK_FILE = ".lock"
#: In a run folder that continues another run (:func:`p3d.train.trainer.continue_without_stop_rule`): that run
#: and the step it continues from.
CONTINUED_FROM = "continued_from.json"


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike[str], wait: bool = True) -> Iterator[None]:
    """Hold the run folder's exclusive lock (``RUN_DIR/.lock``, created with the folder) for the block.

    Two processes that train one folder at once (two scripts whose grids share a run, two notebooks) would
    interleave checkpoints and ``metrics.csv`` rows; with the lock the second waits (``wait``, logged once)
    and then resumes from what the first left (usually: a finished run, nothing to do), or with
    ``wait=False`` refuses with :class:`p3d.errors.InputError`. An advisory POSIX ``flock`` on an open file:
    released by the kernel when the holder exits or dies, so a crashed run leaves no stale lock. Where
    ``fcntl`` is missing (Windows) the block runs unlocked.

    A folder that its holder removed or renamed while this process waited (the staging folder of
    :func:`p3d.train.trainer.continue_without_stop_rule`, moved into place or removed) is claimed anew: the lock
    taken is that of the folder now at ``run_dir`` (created if need be), never that of a lock file that has gone,
    which a third process could not see held."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    run_dir = Path(run_dir)
    while True:
        run_dir.mkdir(parents=True, exist_ok=True)
        fh = open(run_dir / LOCK_FILE, "a+")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                if not wait:
                    raise InputError(f"{run_dir}: being trained by {holder}; wait for it or use another "
                                     f"--out") from None
                log.info("%s: being trained by %s; waiting for it", run_dir, holder)
                fcntl.flock(fh, fcntl.LOCK_EX)
            if _same_file(fh, run_dir / LOCK_FILE):
                break
        except BaseException:
            fh.close()
            raise
        fh.close()  # the lock of a file its holder removed or renamed meanwhile: released, claimed anew
    with fh:
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _same_file(fh: Any, path: Path) -> bool:
    """Whether the open file ``fh`` is the file now at ``path``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fh.fileno())
    return (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino)


def remove_run_dir(run_dir: str | os.PathLike[str]) -> None:
    """Delete the run folder ``run_dir`` (``force``: retrain from scratch) under its lock (:func:`run_lock`), so a
    process training it finishes its write first. The lock file lives in the folder: the folder is moved aside with
    it to ``.NAME.removing`` (a killed removal's leftover removed first), then deleted, so a process arriving meanwhile
    makes a new folder rather than a lock file in the one being removed, and a waiter re-claims the folder at
    ``run_dir`` (:func:`run_lock`). Nothing to do when it does not exist."""
    import shutil

    run_dir = Path(run_dir)
    if not run_dir.exists():
        return
    removing = run_dir.parent / f".{run_dir.name}.removing"
    with run_lock(run_dir):
        if removing.exists():
            shutil.rmtree(removing)
        run_dir.rename(removing)
        shutil.rmtree(removing)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint (model and optimiser state dicts, step, config) safely
    (``weights_only=True``); clear error for missing or corrupt files."""
    import torch

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError on truncated zip files
        raise InputError(f"{path}: not a readable p3d checkpoint ({one_line(exc)})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise InputError(f"{path}: not a p3d checkpoint (no 'model' entry)")
    return ckpt


def latest_checkpoint(run_dir: Path) -> Path | None:
    """``RUN_DIR/checkpoints/last.pt`` if the run wrote one, else None."""
    last = run_dir / "checkpoints" / "last.pt"
    return last if last.exists() else None


def read_run_config(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The recorded settings of the run in ``run_dir``: ``config.json``, else its last checkpoint's; None if
    it holds no run."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if path.exists():
        try:
            cfg = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{path}: corrupt run config; use another --out") from None
        if not isinstance(cfg, dict) or not isinstance(cfg.get("train"), dict):
            raise InputError(f"{path}: not a p3d run config; use another --out")
        return cfg
    last = latest_checkpoint(run_dir)
    return dict(load_checkpoint(last)["config"]) if last is not None else None


__all__ = ["latest_checkpoint", "load_checkpoint", "read_run_config"]
