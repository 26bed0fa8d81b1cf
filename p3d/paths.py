"""Where things live: the project root and the output folders of a preset.

Notebooks write figures and tables through :func:`output_dirs`. The committed ``figures/`` and
``results/`` are the ``full`` preset's (``make figures PRESET=full``: trained to a validation plateau), as is
``paper``'s on real data; the quick look (``make figures``, preset ``cpu``) writes under ``results/cpu/`` and
the nbval check (``smoke``, in ``make test``) under ``results/smoke/`` (git-ignored), so neither overwrites
the committed outputs. The presets are :data:`p3d.registry.PRESETS`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from p3d.registry import PRESETS

#: Presets whose figures and tables go to ``results/<preset>/`` rather than the committed ``figures/`` and
#: ``results/tables/`` (the ``full`` preset's): the nbval check (``smoke``) and the quick look (``cpu``).
SEPARATE_OUTPUTS: frozenset[str] = frozenset({"smoke", "cpu"})


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


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        from p3d.errors import InputError

        raise InputError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")


def results_dir(preset: str, root: Path | None = None) -> Path:
    """The folder of ``preset``'s results (tables, claims, provenance, executed notebooks), not created:
    ``results/`` (the committed outputs), or ``results/<preset>/`` for :data:`SEPARATE_OUTPUTS`.
    ``root``: the project root (default :func:`project_root`)."""
    _check_preset(preset)
    root = project_root() if root is None else Path(root)
    return root / "results" / preset if preset in SEPARATE_OUTPUTS else root / "results"


def output_dirs(preset: str) -> OutputDirs:
    """Output folders for ``preset`` (created). ``data/`` and ``runs/`` are git-ignored caches."""
    root = project_root()
    results = results_dir(preset, root)
    base = results if preset in SEPARATE_OUTPUTS else root
    return OutputDirs(
        figures=base / "figures",
        tables=results / "tables",
        results=results,
        data=root / "data",
        runs=root / "runs",
    ).make()
