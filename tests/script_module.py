"""A script of ``scripts/`` imported as a module, so that tests call its functions and ``main``."""
from __future__ import annotations

import importlib.util
from types import ModuleType

from p3d.paths import project_root


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (a fresh one on every call)."""
    path = project_root() / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
