"""Machinery shared by the models: evaluation mode as a context, and configs rebuilt from plain data.

- :func:`eval_mode` (defined in :mod:`p3d.device`, below the metrics that use it too): ``with
  eval_mode(model): ...`` runs a block in eval mode (dropout off, batch-norm running statistics) and restores
  the module's previous mode afterwards, also when the block raises.
- :func:`config_from_dict`: a config dataclass from the plain dict a checkpoint (or a JSON file) holds
  (``dataclasses.asdict`` of the config), the inverse of ``asdict``: nested config dataclasses rebuilt,
  tuples restored from JSON lists, keys an older checkpoint lacks left at the field's default, and keys the
  class does not know refused (:class:`p3d.errors.InputError` naming them).
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any

from p3d.device import eval_mode
from p3d.errors import InputError


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


__all__ = ["config_from_dict", "eval_mode"]
