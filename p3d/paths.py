"""Where things live: the project root and the output folders of a preset.

Notebooks write figures and tables through :func:`output_dirs`. At the ``smoke`` preset (nbval in
``make test``) everything goes under ``results/smoke/`` (git-ignored), so a test run never overwrites
the committed figures that ``make figures`` (preset ``cpu``) produced.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from p3d.registry import PRESETS  # noqa: F401  (one definition)


def project_root() -> Path:
    """The p3d checkout (the folder holding ``pyproject.toml``), or the working directory if not found."""
    env = os.environ.get("P3D_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


@dataclass(frozen=True)
class OutputDirs:
    figures: Path
    tables: Path
    results: Path
    data: Path
    runs: Path

    def make(self) -> OutputDirs:
        for p in (self.figures, self.tables, self.results):
            p.mkdir(parents=True, exist_ok=True)
        return self


def output_dirs(preset: str) -> OutputDirs:
    """Output folders for ``preset`` (created). ``data/`` and ``runs/`` are git-ignored caches."""
    if preset not in PRESETS:
        from p3d.errors import InputError

        raise InputError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    root = project_root()
    base = root / "results" / "smoke" if preset == "smoke" else root
    results = base if preset == "smoke" else root / "results"
    return OutputDirs(
        figures=base / "figures",
        tables=results / "tables",
        results=results,
        data=root / "data",
        runs=root / "runs",
    ).make()
