"""Table S1 by introspection: the layers of a model with their output shapes and parameter counts.

:func:`layer_table` runs one forward pass with example inputs and records, through forward hooks,
every submodule's class, output shape and own parameter count, down to a chosen depth of the module
tree. Nothing is typed by hand, so the table always describes the code that runs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from p3d.models.base import eval_mode


def _shape(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return "x".join(str(d) for d in x.shape)
    if isinstance(x, (tuple, list)) and x:
        shapes = [_shape(v) for v in x if isinstance(v, (torch.Tensor, tuple, list))]
        return shapes[0] if len(shapes) == 1 else "(" + ", ".join(s for s in shapes if s) + ")"
    return ""


def layer_table(model: nn.Module, run: Callable[[nn.Module], Any], max_depth: int = 2,
                collapse_repeats: bool = True) -> Any:
    """Layers of ``model`` to depth ``max_depth`` with the output shape of one call of ``run(model)``.

    Args:
        model: any module.
        run: called once as ``run(model)`` under ``torch.no_grad()`` (e.g. ``lambda m: m.encode_mesh(x)``).
        max_depth: 1 = the model's children, 2 = their children, ...
        collapse_repeats: merge consecutive sibling layers of the same class and shapes into one row
            with a ``repeat`` count (``Block x 10``).

    Returns:
        DataFrame with ``module`` (dotted name), ``type``, ``output`` (shape, batch first, e.g.
        ``2x5x128``), ``params`` (parameters of the module and its children), ``repeat``; modules
        that did not run in ``run`` have an empty ``output``.
    """
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    hooks = []
    for name, module in model.named_modules():
        depth = 0 if not name else name.count(".") + 1
        if depth == 0 or depth > max_depth:
            continue
        rows[name] = {"module": name, "type": type(module).__name__, "output": "",
                      "params": sum(p.numel() for p in module.parameters()), "repeat": 1, "depth": depth}

        def hook(mod: nn.Module, args: Any, out: Any, name: str = name) -> None:
            if not rows[name]["output"]:
                rows[name]["output"] = _shape(out)

        hooks.append(module.register_forward_hook(hook))
    try:
        with eval_mode(model), torch.no_grad():
            run(model)
    finally:
        for h in hooks:
            h.remove()
    table = list(rows.values())
    if collapse_repeats:
        merged: list[dict[str, Any]] = []
        for row in table:
            prev = merged[-1] if merged else None
            parent = row["module"].rpartition(".")[0]
            if (prev is not None and prev["depth"] == row["depth"] and prev["type"] == row["type"]
                    and prev["output"] == row["output"] and prev["params"] == row["params"]
                    and prev["module"].rpartition(".")[0] == parent and row["module"].rpartition(".")[2].isdigit()):
                prev["repeat"] += 1
                continue
            merged.append(dict(row))
        table = merged
    for row in table:
        if row["repeat"] > 1:
            row["module"] = row["module"].rpartition(".")[0] + f".[{row['module'].rpartition('.')[2]}..]"
    return pd.DataFrame(table, columns=["module", "type", "output", "params", "repeat", "depth"])


def table_s1(stage1: nn.Module, critic: nn.Module, batch: int = 2, max_depth: int = 2) -> Any:
    """Table S1 for a stage-1 model and a stage-2 critic: the layer tables of the speech encoder,
    the video encoder, the fusion encoder and decoders (one stage-1 forward pass) and the mesh
    encoder, with a ``component`` column. Inputs are zeros of the configs' sizes."""
    import pandas as pd

    c = stage1.config
    fbank = torch.zeros(batch, c.speech_frames, c.n_mels)
    video = torch.zeros(batch, c.video_channels, c.video_frames, c.video_size, c.video_size)
    gen = torch.Generator().manual_seed(0)
    stage1_rows = layer_table(stage1, lambda m: m(fbank, video, generator=gen), max_depth=max_depth)
    stage1_rows.insert(0, "component", "stage 1 (speech + video MAE)")
    n_vertices = critic.n_vertices
    mesh = torch.zeros(batch, 5, 3 * n_vertices)
    mesh_encoder = getattr(critic, "mesh_encoder", critic)
    mesh_rows = layer_table(mesh_encoder, lambda m: m(mesh) if m is not critic else critic.encode_mesh(mesh),
                            max_depth=max_depth)
    mesh_rows.insert(0, "component", "stage 2 mesh encoder")
    return pd.concat([stage1_rows, mesh_rows], ignore_index=True)
