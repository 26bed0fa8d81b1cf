"""Machinery shared by the models: evaluation mode as a context, configs rebuilt from plain data, and the
checkpoint format. The model modules import it (not the package ``p3d.models``, whose
:func:`~p3d.models.load_model` imports them).

- :func:`eval_mode` (defined in :mod:`p3d.device`, below the metrics that use it too): ``with
  eval_mode(model): ...`` runs a block in eval mode (dropout off, batch-norm running statistics) and restores
  the module's previous mode afterwards, also when the block raises.
- :func:`config_from_dict`: a config dataclass from the plain dict a checkpoint (or a JSON file) holds
  (``dataclasses.asdict`` of the config), the inverse of ``asdict``: nested config dataclasses rebuilt,
  tuples restored from JSON lists, keys an older checkpoint lacks left at the field's default, and keys the
  class does not know refused (:class:`p3d.errors.InputError` naming them).
- :class:`PresetConfig`: the mixin of the config dataclasses (``from_preset``, ``from_dict``).
- Checkpoints are ``torch.save`` files holding only plain data: ``{"format": "p3d-model", "kind": ...,
  "config": {...}, "state_dict": {...}}`` (:data:`CHECKPOINT_FORMAT`), written byte-reproducibly by
  :func:`save_checkpoint`, read with ``torch.load(weights_only=True)`` by :func:`read_checkpoint`;
  :class:`Checkpointable` is the models' mixin (``checkpoint``/``save``/``from_checkpoint``/``load``).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from collections.abc import Mapping
from typing import Any

from p3d.device import eval_mode
from p3d.errors import InputError, one_line


@functools.lru_cache(maxsize=None)
def _field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved annotation of a dataclass (string annotations evaluated in its module)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def _without_none(tp: Any) -> Any:
    """``X | None`` -> ``X`` (other annotations unchanged)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _field_value(tp: Any, value: Any) -> Any:
    """A field's plain-data value converted to its annotated type: a nested config dataclass from its dict,
    a tuple from a list (JSON has no tuples), a fresh dict from a mapping; anything else as it is."""
    tp = _without_none(tp)
    if value is None:
        return None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, Mapping):
            from_dict = getattr(tp, "from_dict", None)
            return from_dict(value) if from_dict is not None else config_from_dict(tp, value)
        return value
    origin = typing.get_origin(tp) or tp
    if origin is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    if origin is dict and isinstance(value, Mapping):
        return dict(value)
    return value


def config_from_dict(cls: type, d: Mapping[str, Any]) -> Any:
    """``cls(**d)`` for a config dataclass ``cls`` and the plain dict ``d`` of its fields
    (``dataclasses.asdict`` of a config, possibly through JSON).

    Nested dataclass fields are rebuilt from their dicts (with their own ``from_dict``), tuple fields from
    lists; a key missing from ``d`` (a field added after an older checkpoint was written) keeps the field's
    default; a key that is not a field raises :class:`InputError` naming it.
    """
    name = cls.__name__
    if not isinstance(d, Mapping):
        raise InputError(f"{name}: expected a dict of config fields, got {type(d).__name__}")
    types_ = _field_types(cls)
    unknown = sorted(str(k) for k in d if k not in types_)
    if unknown:
        raise InputError(f"{name}: unknown config field(s) {', '.join(unknown)} (a checkpoint or config written by "
                         f"another version? known: {', '.join(types_)})")
    return cls(**{k: _field_value(types_[k], v) for k, v in d.items()})


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
    import torch

    if not os.path.isfile(path):
        raise InputError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt bytes raise anything from the unpickler (IndexError, KeyError, ...)
        raise InputError(f"{path}: not a readable weights-only checkpoint ({one_line(exc)})") from None
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
        presets = cls.presets()  # type: ignore[attr-defined]
        if name not in presets:
            from p3d.registry import PRESETS, model_preset

            if name in PRESETS:  # a preset that trains another preset's models (full -> cpu)
                name = model_preset(name)
        if name not in presets:
            raise InputError(f"preset: unknown preset {name!r} (choose from {', '.join(presets)})")
        return dataclasses.replace(presets[name], **overrides)

    @classmethod
    def from_dict(cls, d: Any) -> Any:
        """The config from the plain dict of its fields (a checkpoint's ``config``):
        :func:`config_from_dict` (nested configs, tuples from lists, missing keys at their
        defaults, unknown keys refused)."""
        return config_from_dict(cls, d)


def check_finite_parameters(model: Any, source: str) -> None:
    """Refuse a model whose parameters hold NaN or inf (a diverged or corrupted run: every output would be NaN)
    with one :class:`InputError` naming ``source`` and the first such parameters. Buffers are not checked (attention
    masks hold -inf by design)."""
    import torch

    bad = [name for name, p in model.named_parameters() if not p.is_meta and not bool(torch.isfinite(p).all())]
    if bad:
        raise InputError(f"{source}: NaN or inf weights in {bad[:4]}{' ...' if len(bad) > 4 else ''}")


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
        return {"format": CHECKPOINT_FORMAT, "kind": self.kind, "config": dataclasses.asdict(self.config),
                "state_dict": self.state_dict()}  # type: ignore[attr-defined]

    def save(self, path: str | os.PathLike[str]) -> None:
        """``torch.save`` of :meth:`checkpoint` (atomic); read back with :meth:`load`."""
        save_checkpoint(self.checkpoint(), path)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], source: str | os.PathLike[str] | None = None) -> Any:
        """The model of a checkpoint dict (:meth:`checkpoint`), its weights loaded strictly. A checkpoint
        without ``config`` / ``state_dict``, a config the model cannot be built from, or a state dict with
        missing, unexpected or misshaped entries (another vertex count, another preset) raises
        :class:`InputError` naming them (and ``source``, the file, when given)."""
        import torch

        name = f"{os.fspath(source)}: {cls.kind} checkpoint" if source is not None else f"{cls.kind} checkpoint"
        if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("config"), Mapping) \
                or not isinstance(ckpt.get("state_dict"), Mapping):
            raise InputError(f"{name}: needs a 'config' dict and a 'state_dict' dict")
        config = cls.config_class.from_dict(ckpt["config"])
        try:
            model = cls._from_config(config)
        except InputError:
            raise
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name}: its config does not build a model ({one_line(exc)})") from None
        sd = ckpt["state_dict"]
        own = model.state_dict()
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(str(k) for k in set(sd) - set(own))
        shapes = [f"{k} {tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__} vs "
                  f"{tuple(own[k].shape)}" for k, v in sd.items()
                  if k in own and (not isinstance(v, torch.Tensor) or tuple(v.shape) != tuple(own[k].shape))]
        if missing or unexpected or shapes:
            parts = [f"{label} {keys[:4]}{' ...' if len(keys) > 4 else ''}"
                     for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes))
                     if keys]
            raise InputError(f"{name}: its state dict does not fit its config ({'; '.join(parts)})")
        model.load_state_dict(sd)
        check_finite_parameters(model, name)
        return model

    @classmethod
    def load(cls, path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
        """Read a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``)."""
        return cls.from_checkpoint(read_checkpoint(path, cls.kind, map_location), path)


__all__ = ["CHECKPOINT_FORMAT", "Checkpointable", "PresetConfig", "check_finite_parameters", "config_from_dict",
           "eval_mode", "read_checkpoint", "save_checkpoint"]
