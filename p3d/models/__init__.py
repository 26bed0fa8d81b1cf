"""The paper's models: stage-1 audio-visual MAE, stage-2 speech-mesh dual encoder, 3D SyncNet.

- :mod:`p3d.models.transformer`: shared blocks (MHSA/MHCA/FFN, sinusoidal positions, masking).
- :mod:`p3d.models.speech_encoder`: ``SpeechEncoder`` (E_s).
- :mod:`p3d.models.mesh_encoder`: ``MeshEncoder`` (E_m).
- :mod:`p3d.models.stage1`: ``Stage1Model`` (Table S1, Eqs. 1-4).
- :mod:`p3d.models.speech_mesh`: ``SpeechMeshModel`` (stage 2, Eq. 5; "ours" and "no2d").
- :mod:`p3d.models.syncnet3d`: ``SyncNet3D`` (Table 3's CNN critic).

Checkpoints are ``torch.save`` files holding only plain data: ``{"format": "p3d-model", "kind":
..., "config": {...}, "state_dict": {...}}``; they are read with ``torch.load(weights_only=True)``
(:func:`read_checkpoint`) and rebuilt by :func:`load_model`. Submodules are imported lazily.
"""
from __future__ import annotations

import os
from typing import Any

CHECKPOINT_FORMAT = "p3d-model"


def save_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Atomically ``torch.save`` a checkpoint dict (plain data and tensors only).

    The same content always gives the same bytes: torch names the records of its zip archive after the
    file it writes to, so it is given a file object (archive name ``archive``) rather than the temporary
    path of the atomic write; and pickle shares repeated objects by identity, so every string is interned
    and every container rebuilt (:func:`_canonical`), whether the content was just computed or loaded back.
    """
    import torch

    from p3d.atomic import atomic_open

    with atomic_open(path, "wb") as fh:
        torch.save(_canonical(ckpt), fh)


def _canonical(obj: Any) -> Any:
    """``obj`` with interned strings and fresh containers (pickle's memo then depends on values only)."""
    import sys

    if isinstance(obj, str):
        return sys.intern(str(obj))
    if isinstance(obj, dict):
        return type(obj)((_canonical(k), _canonical(v)) for k, v in obj.items()) if type(obj) is dict else \
            _canonical_mapping(obj)
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        return type(obj)(_canonical(v) for v in obj)
    return obj


def _canonical_mapping(obj: Any) -> Any:
    """A dict subclass (an ``OrderedDict`` state dict, keeping its ``_metadata``)."""
    out = type(obj)((_canonical(k), _canonical(v)) for k, v in obj.items())
    if hasattr(obj, "_metadata"):
        out._metadata = _canonical(obj._metadata)
    return out


def read_checkpoint(path: str | os.PathLike[str], kind: str | None = None,
                    map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` and check it is a p3d model checkpoint (of ``kind``)."""
    import pickle

    import torch

    from p3d.errors import InputError

    if not os.path.isfile(path):
        raise InputError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable weights-only checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not a p3d model checkpoint (no format={CHECKPOINT_FORMAT!r} entry)")
    if kind is not None and ckpt.get("kind") != kind:
        raise InputError(f"{path}: holds a {ckpt.get('kind')!r} model, expected {kind!r}")
    return ckpt


class PresetConfig:
    """Mixin for a frozen config dataclass with ``presets() -> {name: config}`` (smoke / cpu / paper)."""

    @classmethod
    def from_preset(cls, name: str, **overrides: object) -> Any:
        """A preset with fields replaced, e.g. ``MeshEncoderConfig.from_preset("cpu", n_vertices=468)``."""
        import dataclasses

        from p3d.errors import InputError

        presets = cls.presets()  # type: ignore[attr-defined]
        if name not in presets:
            raise InputError(f"preset: unknown preset {name!r} (choose from {', '.join(presets)})")
        return dataclasses.replace(presets[name], **overrides)

    @classmethod
    def from_dict(cls, d: Any) -> Any:
        """The config from the plain dict of its fields (a checkpoint's ``config``):
        :func:`p3d.models.base.config_from_dict` (nested configs, tuples from lists, missing keys at their
        defaults, unknown keys refused)."""
        from p3d.models.base import config_from_dict

        return config_from_dict(cls, d)


class Checkpointable:
    """Mixin: ``checkpoint``/``save``/``from_checkpoint``/``load`` for a model with a config dataclass.

    A class sets ``kind`` (the checkpoint's model kind) and ``config_class`` (a dataclass with
    ``from_dict``); ``_from_config`` builds the model from a config (default: ``cls(config)``).
    """

    kind: str
    config_class: Any
    config: Any

    @classmethod
    def _from_config(cls, config: Any) -> Any:
        return cls(config)

    def checkpoint(self) -> dict[str, Any]:
        """``{format, kind, config, state_dict}``: plain data and tensors only."""
        import dataclasses

        return {"format": CHECKPOINT_FORMAT, "kind": self.kind, "config": dataclasses.asdict(self.config),
                "state_dict": self.state_dict()}  # type: ignore[attr-defined]

    def save(self, path: str | os.PathLike[str]) -> None:
        """``torch.save`` of :meth:`checkpoint` (atomic); read back with :meth:`load`."""
        save_checkpoint(self.checkpoint(), path)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> Any:
        model = cls._from_config(cls.config_class.from_dict(ckpt["config"]))
        model.load_state_dict(ckpt["state_dict"])
        return model

    @classmethod
    def load(cls, path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
        """Read a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``)."""
        return cls.from_checkpoint(read_checkpoint(path, cls.kind, map_location))


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
        return talker_class(ckpt["kind"]).from_checkpoint(ckpt).eval()
    classes = {c.kind: c for c in (Stage1Model, SpeechMeshModel, SyncNet3D)}
    if ckpt.get("kind") not in classes:
        raise InputError(f"{path}: unknown model kind {ckpt.get('kind')!r}")
    return classes[ckpt["kind"]].from_checkpoint(ckpt).eval()


__all__ = ["CHECKPOINT_FORMAT", "Checkpointable", "PresetConfig", "load_model", "read_checkpoint", "save_checkpoint"]
