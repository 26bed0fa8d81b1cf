"""``make figures``: run every notebook in ``notebooks/`` in order with papermill.

Each notebook runs with ``preset`` (default ``cpu``) injected into its ``parameters`` cell; the executed
copy goes to ``results/notebooks/``. A provenance record (git commit, parameters, versions, wall time
per notebook) is written to ``results/provenance.json``. Run ``python -m p3d.figures --help``.
"""
from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from p3d.paths import PRESETS, project_root

log = logging.getLogger(__name__)

#: Notebooks that ``make figures`` runs more than once, with these parameters on top of ``preset``
#: (each run's executed copy is ``results/notebooks/<stem>-<key>=<value>.ipynb``).
PARAMETER_SETS: dict[str, list[dict[str, object]]] = {
    "03_stage2": [{"critic": "ours"}, {"critic": "syncnet3d"}, {"critic": "no2d"}],
}


def executions(nb: Path, preset: str) -> list[tuple[dict[str, object], str]]:
    """(parameters, executed-copy file name) of every run of ``nb`` at ``preset``."""
    sets = PARAMETER_SETS.get(nb.stem, [{}])
    out = []
    for extra in sets:
        suffix = "".join(f"-{k}={v}" for k, v in extra.items())
        out.append(({"preset": preset, **extra}, f"{nb.stem}{suffix}.ipynb"))
    return out


def notebooks(root: Path | None = None) -> list[Path]:
    """The notebooks of the compendium, in run order (their file names start with a number)."""
    root = root or project_root()
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def run_all(preset: str = "cpu", only: Sequence[str] = (), kernel: str = "python3") -> dict:
    import papermill as pm

    from p3d.atomic import write_json
    from p3d.provenance import git_commit, record

    root = project_root()
    out_dir = root / "results" / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    commit = git_commit()
    for nb in notebooks(root):
        if only and not any(nb.name.startswith(o) or nb.stem == o for o in only):
            continue
        for params, out_name in executions(nb, preset):
            log.info("running %s with %s", nb.name, params)
            start = time.perf_counter()
            pm.execute_notebook(str(nb), str(out_dir / out_name), parameters=params, kernel_name=kernel,
                                cwd=str(nb.parent), progress_bar=False, log_output=False)
            wall = time.perf_counter() - start
            log.info("%s done in %.1f s", out_name, wall)
            runs.append({"notebook": nb.name, "executed": out_name, "parameters": params, "wall_s": round(wall, 2),
                         "git_commit": commit})
    prov_path = root / "results" / "provenance.json"
    if only and prov_path.exists():  # a partial run keeps the other notebooks' records of the same preset
        import json

        try:
            old = json.loads(prov_path.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("preset") == preset:
            done = {r["executed"] for r in runs}
            kept = [r for r in old.get("notebooks", []) if r.get("executed", r.get("notebook")) not in done]
            runs = sorted(kept + runs, key=lambda r: r.get("executed", r["notebook"]))
    prov = record(preset=preset, notebooks=runs)
    write_json(root / "results" / "provenance.json", prov)
    return prov


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m p3d.figures", description=__doc__)
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--only", nargs="*", default=(), help="notebook name prefixes to run (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    prov = run_all(args.preset, args.only)
    for r in prov["notebooks"]:
        print(f"{r['executed']}: {r['wall_s']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
