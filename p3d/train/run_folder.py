"""What a training run folder holds, read back: its recorded settings and its checkpoints.

A run folder (:func:`p3d.train.trainer.train`) holds ``config.json`` (the run's settings: ``train`` and the
job's ``extra_config``), ``checkpoints/step_XXXXXXX.pt`` and ``checkpoints/last.pt`` (model and optimiser
state dicts, step, config; read with ``torch.load(weights_only=True)``), ``metrics.csv`` and, for runs that
stop on a plateau, ``val.csv``. The readers here sit below both the training loop and the convergence
table (:mod:`p3d.train.convergence`), which reads finished runs; torch is imported only to read a checkpoint.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p3d.errors import InputError

if TYPE_CHECKING:
    import torch


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
        raise InputError(f"{path}: not a readable p3d checkpoint ({type(exc).__name__}: {exc})") from None
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
