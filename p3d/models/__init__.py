"""The paper's models: stage-1 audio-visual MAE, stage-2 speech-mesh dual encoder, 3D SyncNet.

- :mod:`p3d.models.base`: the checkpoint format, the config and checkpoint mixins, :func:`eval_mode`.
- :mod:`p3d.models.transformer`: shared blocks (MHSA/MHCA/FFN, sinusoidal positions, masking).
- :mod:`p3d.models.speech_encoder`: ``SpeechEncoder`` (E_s).
- :mod:`p3d.models.mesh_encoder`: ``MeshEncoder`` (E_m).
- :mod:`p3d.models.stage1`: ``Stage1Model`` (Table S1, Eqs. 1-4).
- :mod:`p3d.models.dual_encoder`: ``DualEncoder``, the interface of the speech-mesh critics.
- :mod:`p3d.models.speech_mesh`: ``SpeechMeshModel`` (stage 2, Eq. 5; "ours" and "no2d").
- :mod:`p3d.models.syncnet3d`: ``SyncNet3D`` (Table 3's CNN critic).

Checkpoints are ``torch.save`` files holding only plain data: ``{"format": "p3d-model", "kind":
..., "config": {...}, "state_dict": {...}}``; they are read with ``torch.load(weights_only=True)``
(:func:`read_checkpoint`) and rebuilt by :func:`load_model`. The checkpoint format and the config and
checkpoint mixins live in :mod:`p3d.models.base` (re-exported here), which the model modules import; the
model modules themselves are imported lazily, by :func:`load_model`.
"""
from __future__ import annotations

import os
from typing import Any

from p3d.models.base import (CHECKPOINT_FORMAT, Checkpointable, PresetConfig, read_checkpoint,
                             save_checkpoint)


def load_model(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """Rebuild any p3d model (stage1, speech_mesh, syncnet3d, a talker of ``talker.MODELS``) from its
    checkpoint, in eval mode."""
    from p3d.errors import InputError
    from p3d.models.speech_mesh import SpeechMeshModel
    from p3d.models.stage1 import Stage1Model
    from p3d.models.syncnet3d import SyncNet3D
    from p3d.models.talker import MODELS, talker_class

    ckpt = read_checkpoint(path, None, map_location)
    if ckpt.get("kind") in MODELS:
        return talker_class(ckpt["kind"]).from_checkpoint(ckpt, path).eval()
    classes = {c.kind: c for c in (Stage1Model, SpeechMeshModel, SyncNet3D)}
    if ckpt.get("kind") not in classes:
        raise InputError(f"{path}: unknown model kind {ckpt.get('kind')!r}")
    return classes[ckpt["kind"]].from_checkpoint(ckpt, path).eval()


__all__ = ["CHECKPOINT_FORMAT", "Checkpointable", "PresetConfig", "load_model", "read_checkpoint", "save_checkpoint"]
