"""The request of a training run: what ``request.json`` in a run folder records (kind, preset, data, options).

Both ``p3d train`` (each kind's ``request_from_args``) and :func:`p3d.train.api.fit` spell a run's request
with :func:`run_request`, so the two write the same request for the same run; :func:`p3d.train.api.claim_run_dir`
compares it with an existing folder's. This module imports nothing from the training modules.
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any


def run_request(kind: str, preset: str, data: Any, options: dict[str, Any], builder: Any = None) -> dict[str, Any]:
    """The request of a run as ``request.json`` stores it: kind, preset, resolved data folder(s) and the
    options that are given (None and ``builder``'s own defaults are left out, so ``p3d train`` and
    :func:`p3d.train.api.fit` write the same request for the same run), and ``world_size`` under torchrun
    (more than one process: they split the batch, so a run of another process count is another run).
    ``stage_steps`` keeps the earlier stages' steps and ``steps`` the last stage's."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return str(Path(v).resolve()) if isinstance(v, os.PathLike) or (isinstance(v, str) and os.sep in v) else v

    defaults = {} if builder is None else {
        name: p.default for name, p in inspect.signature(builder).parameters.items()
        if p.default is not inspect.Parameter.empty}
    opts = {k: plain(v) for k, v in sorted(options.items())
            if v is not None and not (k in defaults and v == defaults[k])}
    world_size = int(os.environ.get("WORLD_SIZE", "1"))  # torchrun: the processes split the batch
    if world_size != 1:
        opts.setdefault("world_size", world_size)
    if "stage_steps" in opts:
        *earlier, last = opts["stage_steps"]
        opts["stage_steps"], opts["steps"] = earlier, last
    data = [plain(Path(d)) for d in data] if isinstance(data, (list, tuple)) else plain(Path(data))
    return {"kind": kind, "preset": preset, "data": data, "options": opts}
