"""The notebook runner behind ``make figures``: run every notebook in ``notebooks/`` in order with papermill,
incrementally.

Each notebook runs with ``preset`` (default ``cpu``) injected into its ``parameters`` cell (some run
several times, :data:`PARAMETER_SETS`); the executed copy goes to ``notebooks/`` in the preset's results folder
(:func:`p3d.paths.results_dir`: ``results/`` at ``full`` and ``paper``, ``results/cpu/`` at ``cpu``).

**Incremental.** An execution is skipped when its *fingerprint* equals the one recorded at its last
successful run and its executed copy exists. The fingerprint (:func:`fingerprint`) hashes the
notebook file, its parameters, and the source of every ``p3d`` module it uses: the modules its code
cells import, closed transitively over the imports of those modules (including imports inside
functions and ``"p3d.x:Attr"`` / ``"p3d.x"`` strings resolved with ``importlib``), plus the
``pyproject.toml`` / ``constraints.txt`` pins. The notebooks' inputs are the synthetic corpora and the
training runs they make themselves, which are deterministic functions of that code (their ``meta.json``
and ``clips.csv`` hashes are recorded in the provenance as well). A notebook that reads result files written
by earlier notebooks (the claims report; Config 2's loss weight: :data:`INPUT_FILES`) also hashes those files,
recorded as its execution left them (a file it writes itself among them is no change); the metric validation
(notebook 08) hashes which talkers in ``runs/<preset>/`` have test predictions (:data:`INPUT_RUNS`). ``--force``
re-runs everything; ``--extra`` adds the analyses beyond the paper (:data:`EXTRA_PARAMETER_SETS`).

A provenance record (git commit, parameters, fingerprint, data hashes, versions, wall time and machine per
execution, which were skipped, which failed: ``failed``, without a fingerprint, so that the next run re-runs it)
is written to ``provenance.json`` in the same folder (``results/provenance.json`` at ``full``), so a ``cpu`` quick
look never replaces the committed record. At ``cpu`` and ``full`` it also records the preset's grid: this
invocation's wall time and, for a grid finished over several sittings, the sum of all of them (:class:`GridSittings`).
``python -m p3d.notebook_runner --help``.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from p3d.errors import InputError, joined_lines
from p3d.paths import SEPARATE_OUTPUTS, project_root, results_dir
from p3d.registry import PRESETS
from p3d.tables import markdown_cell

log = logging.getLogger(__name__)

#: Notebooks that ``make figures`` runs more than once, with these parameters on top of ``preset``
#: (each run's executed copy is ``<results>/notebooks/<stem>-<key>=<value>.ipynb``).
PARAMETER_SETS: dict[str, list[dict[str, object]]] = {
    "03_stage2": [{"critic": "ours"}, {"critic": "syncnet3d"}, {"critic": "no2d"}],
}
#: Extra executions beyond the paper, run only with ``--extra`` (``make figures EXTRA=1``); outside the
#: time budget. Notebook 06 with the loss weight chosen on val for every model (a sensitivity analysis).
EXTRA_PARAMETER_SETS: dict[str, list[dict[str, object]]] = {
    "06_lipsync_tables": [{"per_model_kappa": True}],
}
#: Notebooks whose inputs include result files written by earlier notebooks: glob patterns relative to the
#: preset's output folder (:func:`p3d.paths.output_dirs`); the files' bytes enter the fingerprint, so the
#: claims report re-runs whenever a table it reads changed, and Config 2 (notebook 07) whenever notebook 06
#: chose another loss weight kappa on val (where the preset chooses it: ``loss_weight_selection.csv``, read by
#: :func:`p3d.experiments.grid.config_weight`), so that Table 4 is not left trained at the old weight, and the
#: metric validation (notebook 08) whenever the planned runs it scores are another kappa's
#: (:func:`p3d.experiments.metric_validation_talkers`); the user
#: study (notebook 09) whenever participants' answers arrive in a study's ``responses/`` (:mod:`p3d.study.analyze`).
INPUT_FILES: dict[str, tuple[str, ...]] = {
    "07_expressiveness": ("tables/loss_weight_selection.csv",),
    "08_metric_validation": ("tables/loss_weight_selection.csv",),
    "09_user_study": ("user_study/*/responses/*",),
    "10_claims": ("tables/*.csv",),
}
#: Notebooks that read whatever the preset's training runs hold (glob patterns under ``runs/<preset>/``): the
#: matching paths' *names* enter the fingerprint. Their contents are functions of the code the fingerprint
#: already hashes; which runs exist is not (``make figures EXTRA=1``'s per-model-kappa talkers, other parameters
#: of notebooks 06/07, a run trained by hand). Notebook 08 scores the preset's planned Config-1 talkers that have
#: predicted every synth-voca test clip (:func:`p3d.experiments.metric_validation_talkers`; a grid finished over
#: several sittings finishes more of them) and the runs its ``extra_talkers`` names: the pattern is wider than
#: the plan, so a run outside it re-runs the notebook to the same tables (cheaper to hash than the plan).
INPUT_RUNS: dict[str, tuple[str, ...]] = {
    "08_metric_validation": ("talkers/*/pred_synth-voca_test*/*.npy",),
}
_MODULE_STRING = re.compile(r"^(p3d(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?::[A-Za-z_][A-Za-z0-9_]*)?$")


def executions(nb: Path, preset: str, extra: bool = False) -> list[tuple[dict[str, object], str]]:
    """(parameters, executed-copy file name) of every run of ``nb`` at ``preset`` (``extra``: also the
    :data:`EXTRA_PARAMETER_SETS`)."""
    sets = list(PARAMETER_SETS.get(nb.stem, [{}]))
    if extra:
        sets += EXTRA_PARAMETER_SETS.get(nb.stem, [])
    out = []
    for extra in sets:
        suffix = "".join(f"-{k}={v}" for k, v in extra.items())
        out.append(({"preset": preset, **extra}, f"{nb.stem}{suffix}.ipynb"))
    return out


def notebooks(root: Path | None = None) -> list[Path]:
    """The notebooks of the compendium, in run order (their file names start with a number)."""
    root = root or project_root()
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# -- which p3d code a notebook uses -------------------------------------------------------------------
def _imported_names(source: str) -> set[str]:
    """Dotted ``p3d`` names a piece of Python source imports or names in an importable string."""
    source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        tree = ast.parse(source)
    except SyntaxError:  # notebook magics etc.: fall back to a line scan
        names = set(re.findall(r"(?:from|import)\s+(p3d(?:\.\w+)*)", source))
        return names | {f"{m}.{a.strip()}" for m, rest in re.findall(r"from\s+(p3d(?:\.\w+)*)\s+import\s+([\w, ]+)",
                                                                      source) for a in rest.split(",")}
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] == "p3d")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "p3d" and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = _MODULE_STRING.match(node.value)
            if m and "." in m.group(1):
                names.add(m.group(1))
    return names


def _module_file(name: str, root: Path) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


#: Modules whose own file counts but whose imports are not followed: ``p3d.cli`` names every command module as a
#: string (``COMMAND_MODULES``) to register them, and the command modules import it for ``help_text``; a notebook
#: that reaches it that way runs none of the commands, and following it would put almost all of p3d in every
#: notebook's fingerprint (a change to the claims report would re-run the representation analyses).
CLOSURE_LEAVES = frozenset({"p3d.cli"})


def module_closure(sources: Iterable[str], root: Path | None = None) -> list[Path]:
    """The ``p3d`` source files that code in ``sources`` uses, transitively (sorted). Every parent
    package's ``__init__.py`` is included (it runs on import); the imports of :data:`CLOSURE_LEAVES` are not
    followed (their own files are included)."""
    root = root or project_root()
    pending = set().union(*(_imported_names(s) for s in sources)) if sources else set()
    pending.add("p3d")
    seen: set[Path] = set()
    done: set[str] = set()
    while pending:
        name = pending.pop()
        if name in done:
            continue
        done.add(name)
        parts = name.split(".")
        for i in range(1, len(parts)):  # parent packages
            pending.add(".".join(parts[:i]))
        path = _module_file(name, root)
        if path is None or path in seen:
            continue
        seen.add(path)
        if name not in CLOSURE_LEAVES:
            pending |= _imported_names(path.read_text())
    return sorted(seen)


def _code_cells(nb_path: Path) -> list[str]:
    nb = json.loads(nb_path.read_text())
    return ["".join(c.get("source", "")) for c in nb.get("cells", []) if c.get("cell_type") == "code"]


def fingerprint(nb_path: Path, params: dict[str, object], root: Path | None = None) -> str:
    """sha256 over the notebook file, its parameters, the p3d modules it uses, the dependency pins and the result
    files it reads (:func:`input_files`)."""
    root = root or project_root()
    return _with_inputs(_code_hash(nb_path, params, root), nb_path.stem, params, root)


def _code_hash(nb_path: Path, params: dict[str, object], root: Path) -> Any:
    """The sha256 state of :func:`fingerprint` before the result files: the notebook, its parameters, its p3d
    modules and the pins."""
    h = hashlib.sha256()
    h.update(nb_path.read_bytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    for path in module_closure(_code_cells(nb_path), root):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    for pin in ("pyproject.toml", "constraints.txt"):
        if (root / pin).is_file():
            h.update((root / pin).read_bytes())
    return h


def _with_inputs(h: Any, stem: str, params: dict[str, object], root: Path) -> str:
    """:func:`fingerprint` from its :func:`_code_hash` state ``h`` (updated in place) and the result files and run
    files (names only: :data:`INPUT_RUNS`) now."""
    preset = str(params.get("preset", "cpu"))
    for path in input_files(stem, preset, root):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    runs = root / "runs" / preset  # p3d.paths.output_dirs(preset).runs / preset
    names = sorted(str(p.relative_to(runs)) for pattern in INPUT_RUNS.get(stem, ()) for p in runs.glob(pattern))
    if names:  # none: the fingerprint of a notebook without such inputs, as before they were hashed
        h.update("\n".join(names).encode())
    return h.hexdigest()


def input_files(stem: str, preset: str, root: Path | None = None) -> list[Path]:
    """The result files (:data:`INPUT_FILES`) that notebook ``stem`` reads at ``preset``, sorted."""
    base = results_dir(preset, root or project_root())
    return sorted(p for pattern in INPUT_FILES.get(stem, ()) for p in base.glob(pattern) if p.is_file())


def data_hashes(preset: str, root: Path | None = None) -> dict[str, str]:
    """sha256 of each corpus' ``meta.json`` + ``clips.csv`` under ``data/<preset>/``."""
    from p3d.provenance import file_sha256

    root = root or project_root()
    out = {}
    for meta in sorted((root / "data" / preset).glob("*/meta.json")):
        h = hashlib.sha256(file_sha256(meta).encode())
        clips = meta.parent / "clips.csv"
        if clips.exists():
            h.update(file_sha256(clips).encode())
        out[meta.parent.name] = h.hexdigest()
    return out


# -- running -------------------------------------------------------------------------------------------
def read_provenance(prov_path: str | os.PathLike[str], preset: str) -> dict[str, Any]:
    """The provenance record at ``prov_path`` when it is of ``preset``; else empty (no file, not JSON, or another
    preset's record)."""
    prov_path = Path(prov_path)
    if not prov_path.exists():
        return {}
    try:
        old = json.loads(prov_path.read_text())
    except json.JSONDecodeError:
        return {}
    return old if old.get("preset") == preset else {}



#: Seconds between two updates of a running grid sitting's time (:meth:`GridSittings.heartbeat`).
HEARTBEAT_S: float = 60.0

#: Beside the runs a preset's grid trains (``runs/<preset>/``): each invocation's time in the grid (:class:`GridSittings`).
SITTINGS_FILE = "grid_sittings.json"


class GridSittings:
    """Each invocation's wall time in a preset's grid, kept beside the runs it trains, so that a grid finished over
    several sittings (runs resume exactly) reports the sum of their times, not only the last one's.

    A sitting's entry (``started`` UTC, ``seconds``, ``git_commit``, ``tasks``) is written (atomically) each time
    a task ends (:meth:`tick`, ``run_grid``'s ``on_task``) and, while the grid runs under :meth:`heartbeat`, every
    :data:`HEARTBEAT_S` seconds, so a sitting that is killed counts up to its last minute, not only to its last
    finished task (a full grid's first tasks, the stage-1 trainings, run for an hour or more: a sitting killed
    before they end would count nothing of the work its checkpoints carry over). What the kill threw away after a
    running task's last checkpoint (at most one checkpoint interval each) is counted although a clean run would not
    spend it. Each finished task's seconds are kept (a task resumed from a checkpoint shows only that sitting's
    part). The file lives under ``runs/`` (git-ignored), so a fresh clone starts a new count."""

    def __init__(self, path: Path, commit: str) -> None:
        import datetime

        self.path = Path(path)
        self.entries: list[dict[str, Any]] = []
        if self.path.is_file():
            try:
                self.entries = list(json.loads(self.path.read_text()).get("sittings", []))
            except (json.JSONDecodeError, AttributeError):
                log.warning("%s: unreadable, the grid's time is counted afresh", self.path)
        self._start = time.perf_counter()
        self._lock = threading.Lock()
        self.entries.append({"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                             "seconds": 0.0, "git_commit": commit})

    def tick(self, row: Any = None) -> None:
        """Update this sitting's seconds; ``row`` (``run_grid``'s row of the task that ended) is added to the
        sitting's ``tasks`` (task, seconds, status): what each training and evaluation cost in that sitting."""
        with self._lock:
            self.entries[-1]["seconds"] = round(time.perf_counter() - self._start, 1)
            if row is not None:
                self.entries[-1].setdefault("tasks", []).append(
                    {"task": row.get("task"), "seconds": row.get("seconds"), "status": row.get("status")})
            self._write()

    @contextlib.contextmanager
    def heartbeat(self, interval_s: float = HEARTBEAT_S) -> Iterator[None]:
        """:meth:`tick` every ``interval_s`` seconds (a daemon thread) while the block runs."""
        stop = threading.Event()
        with self._lock:
            self.entries[-1]["heartbeat_s"] = interval_s  # how a stopped sitting was counted (timing_markdown)

        def beat() -> None:
            while not stop.wait(interval_s):
                self.tick()

        thread = threading.Thread(target=beat, name="grid-sittings-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    @property
    def total_s(self) -> float:
        return float(sum(e.get("seconds", 0.0) for e in self.entries))

    @staticmethod
    def task_seconds(path: Path) -> dict[str, float]:
        """Each finished task's seconds in the grid of sittings file ``path``, summed over the sittings (a task
        found finished counts 0 s; one resumed from a checkpoint counts the resuming sitting's part only, so the sum
        is a lower bound for a task that a killed sitting had begun). Input for
        :func:`p3d.experiments.grid.simulate_grid`."""
        try:
            entries = json.loads(Path(path).read_text())["sittings"]
        except FileNotFoundError:
            raise InputError(f"{path}: no such sittings file (a preset's grid writes "
                             f"runs/<preset>/{SITTINGS_FILE})") from None
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"{path}: not a grid sittings file (JSON with a 'sittings' list)") from None
        out: dict[str, float] = {}
        for entry in entries:
            for row in entry.get("tasks", []):
                if row.get("status") == "done":
                    out[row["task"]] = out.get(row["task"], 0.0) + float(row["seconds"])
        return out

    def _write(self) -> None:
        from p3d.atomic import write_json

        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"sittings": self.entries})


def run_all(preset: str = "cpu", only: Sequence[str] = (), kernel: str = "python3", force: bool = False,
            extra: bool = False, workers: int = 2) -> dict:
    """Run (or skip, when unchanged) every execution; returns the provenance record written.

    At a preset whose loss weight is fixed in advance (``full``), a whole run (no ``only``) first trains the
    preset's grid in ``workers`` processes (:func:`p3d.experiments.preset_grid`), so that independent trainings
    run side by side; the notebooks then reuse the finished runs. Its wall time is recorded as ``grid``."""
    import papermill as pm

    from p3d.atomic import write_json
    from p3d.provenance import git_commit, machine, record

    root = project_root()
    results = results_dir(preset, root)
    out_dir = results / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    prov_path = results / "provenance.json"
    previous_record = read_provenance(prov_path, preset)
    previous = {r.get("executed", r.get("notebook")): r for r in previous_record.get("notebooks", [])}
    commit = git_commit()
    # Executions not run by this invocation keep their record, marked skipped (they did not run now); those of a
    # notebook or parameter set no longer in the compendium (removed, renamed) are dropped: they are not its outputs.
    current = {name for nb in notebooks(root) for _, name in executions(nb, preset, extra=True)}
    runs: dict[str, dict[str, Any]] = {k: {**v, "skipped": True} for k, v in previous.items() if k in current}
    # The grid's record stays with the outputs it trained until a whole run trains the grid again.
    previous_grid = previous_record.get("grid")
    # A corpus absent now (a fresh machine, a partial run) keeps the hash recorded with the outputs it made.
    previous_data = previous_record.get("data", {})
    grid: dict[str, Any] = {"grid": {**previous_grid, "skipped": True}} if previous_grid else {}
    if not only:
        from p3d.experiments import preset_grid
        from p3d.paths import output_dirs

        dirs = output_dirs(preset)
        sittings = GridSittings(dirs.runs / preset / SITTINGS_FILE, commit)
        start = time.perf_counter()
        with sittings.heartbeat():
            done = preset_grid(preset, dirs, workers=workers, progress=sys.stderr.isatty(), on_task=sittings.tick)
        if done is not None:
            sittings.tick()
            grid = {"grid": {"wall_s": round(time.perf_counter() - start, 2), "workers": workers,
                             "tasks": len(done.tasks), "git_commit": commit, "machine": machine(),
                             "sittings": len(sittings.entries),
                             "sittings_total_s": round(sittings.total_s, 1),
                             "sittings_heartbeat": all("heartbeat_s" in e for e in sittings.entries),
                             "sittings_commits": list(dict.fromkeys(e["git_commit"] for e in sittings.entries))}}
            log.info("grid of preset %s: %d tasks in %.1f s (%d sitting(s), %.1f s in all)", preset, len(done.tasks),
                     grid["grid"]["wall_s"], len(sittings.entries), sittings.total_s)
    for nb in notebooks(root):
        if only and not any(nb.name.startswith(o) or nb.stem == o for o in only):
            continue
        for params, out_name in executions(nb, preset, extra):
            code = _code_hash(nb, params, root)
            fp = _with_inputs(code.copy(), nb.stem, params, root)
            old = previous.get(out_name)
            if not force and old and old.get("fingerprint") == fp and (out_dir / out_name).exists():
                log.info("%s: unchanged, skipped", out_name)
                runs[out_name] = {**old, "skipped": True}
                continue
            log.info("running %s with %s", nb.name, params)
            # The checkout as this execution starts (its kernel imports p3d now): a commit or an edit made while
            # an earlier notebook ran is this one's code, not the invocation's first commit.
            run_commit = git_commit()
            start = time.perf_counter()
            try:
                _execute(pm, nb, out_dir, out_name, params, kernel)
            except BaseException as exc:
                # Its cells before the failure may have rewritten tables and figures: recorded as failed, without a
                # fingerprint, so that no later run skips it as unchanged (after a reverted change, a --force).
                runs[out_name] = {"notebook": nb.name, "executed": out_name, "parameters": params,
                                  "wall_s": round(time.perf_counter() - start, 2), "git_commit": run_commit,
                                  "machine": machine(), "fingerprint": None, "skipped": False,
                                  "failed": _failure(exc)}
                write_json(prov_path, record(preset=preset, **grid, notebooks=sorted(runs.values(),
                                                                                     key=lambda r: r["executed"]),
                                             data={**previous_data, **data_hashes(preset, root)}))
                raise
            wall = time.perf_counter() - start
            log.info("%s done in %.1f s", out_name, wall)
            # The code as it ran, the result files as the execution left them: one the notebook writes among those
            # it reads (10_claims writes tables/training_length_sensitivity.csv) is then no change at the next run.
            fp = _with_inputs(code, nb.stem, params, root)
            runs[out_name] = {"notebook": nb.name, "executed": out_name, "parameters": params,
                              "wall_s": round(wall, 2), "git_commit": run_commit, "machine": machine(),
                              "fingerprint": fp, "skipped": False}
            # Record after every execution, so an interrupted make figures keeps what finished.
            write_json(prov_path, record(preset=preset, **grid, notebooks=sorted(runs.values(), key=lambda r: r["executed"]),
                                         data={**previous_data, **data_hashes(preset, root)}))
    prov = record(preset=preset, **grid, notebooks=sorted(runs.values(), key=lambda r: r.get("executed", r["notebook"])),
                  data={**previous_data, **data_hashes(preset, root)})
    write_json(prov_path, prov)
    if preset not in SEPARATE_OUTPUTS:  # the committed outputs: README's timing table follows their record
        refresh_readme_timing(prov, prov_path, root)
    return prov


def _failure(exc: BaseException) -> str:
    """One line naming why an execution failed: the notebook's own exception (papermill's ``ename: evalue``) or
    the runner's (an interrupt)."""
    name, value = getattr(exc, "ename", None) or type(exc).__name__, getattr(exc, "evalue", None) or str(exc)
    text = f"{name}: {joined_lines(str(value))}" if str(value).strip() else name
    return text if len(text) <= 300 else text[:299] + "…"


def _execute(pm: Any, nb: Path, out_dir: Path, out_name: str, params: dict[str, object], kernel: str) -> None:
    """Execute ``nb`` into ``out_dir / out_name``, which only a finished execution replaces. papermill writes the
    executed copy cell by cell and leaves it behind when a cell raises or the run is interrupted: it goes to
    ``<name>.running.ipynb`` and, on failure, is kept as ``<name>.failed.ipynb`` (to read the error), so the copy
    under the real name stays the last successful execution (a partial copy there was skipped as unchanged by the
    next run; the provenance records the failure: :func:`run_all`). A success removes an earlier ``.failed`` copy."""
    stem = Path(out_name).stem
    running, failed = out_dir / f"{stem}.running.ipynb", out_dir / f"{stem}.failed.ipynb"
    try:
        pm.execute_notebook(str(nb), str(running), parameters=params, kernel_name=kernel,
                            cwd=str(nb.parent), progress_bar=False, log_output=False)
    except BaseException:
        if running.exists():
            os.replace(running, failed)
            log.error("%s failed; its partial copy is %s (the last successful copy, if any, is kept)", out_name,
                      failed)
        raise
    os.replace(running, out_dir / out_name)
    failed.unlink(missing_ok=True)


def timing_block(prov: dict[str, Any], source: str | Path) -> str:
    """README's timing block: a line naming the preset, the invocation's commit and torch, then
    :func:`timing_markdown` of the provenance record ``prov`` (read from ``source``, a path shown as given)."""
    return (f"`make figures` at preset `{prov.get('preset', '?')}`, last invoked at commit "
            f"`{(prov.get('git_commit') or '?')[:12]}` (each execution's own commit in the table), "
            f"torch {prov.get('versions', {}).get('torch', '?')}; from `{source}`:\n\n" + timing_markdown(prov))


def refresh_readme_timing(prov: dict[str, Any], prov_path: Path, root: Path | None = None) -> bool:
    """Write :func:`timing_block` of the record just written into README.md's ``timing`` block. Done by the
    runner after the last execution, not by a notebook: an executing notebook sees the record without its own
    execution (and, when it is the only one run, with the previous invocation's commit). False, changing nothing,
    without a README or its markers."""
    from p3d.claims.report import update_readme

    root = root or project_root()
    readme = root / "README.md"
    if not readme.is_file():
        return False
    source = prov_path.relative_to(root) if prov_path.is_relative_to(root) else prov_path
    return update_readme(readme, timing_block(prov, source), "timing")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m p3d.notebook_runner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--only", nargs="*", default=(), help="notebook name prefixes to run (default: all)")
    parser.add_argument("--force", action="store_true", help="re-run notebooks even when unchanged")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes for the preset's grid trained before the notebooks (full; default 2)")
    parser.add_argument("--extra", action="store_true",
                        help="also run the analyses beyond the paper (EXTRA_PARAMETER_SETS; outside the time budget)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers: expected a positive process count, got {args.workers}")
    names = [nb.name for nb in notebooks()]
    unknown = [o for o in args.only if not any(n.startswith(o) or Path(n).stem == o for n in names)]
    if unknown:  # it would run nothing and report success
        parser.error(f"--only {' '.join(unknown)}: no notebook in notebooks/ starts with that "
                     f"(have {', '.join(names)})")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    try:
        prov = run_all(args.preset, args.only, force=args.force, extra=args.extra, workers=args.workers)
    except InputError as exc:  # e.g. a run folder of the grid refused (other settings, data, recipe): one line
        print(f"{parser.prog}: error: {joined_lines(str(exc))}", file=sys.stderr)
        return 2
    print(timing_markdown(prov, time.perf_counter() - start))
    return 0


def _short_commit(commit: str | None) -> str:
    """A provenance commit as ``abc1234`` (``abc1234-dirty`` with uncommitted changes); ``?`` when unknown."""
    if not commit:
        return "?"
    return commit[:7] + ("-dirty" if commit.endswith("-dirty") else "")


def timing_markdown(prov: dict[str, Any], total_s: float | None = None) -> str:
    """Per-execution wall times of a provenance record as a markdown table (skipped ones marked), each with the
    commit it ran at (a grid resumed over sittings: the commits of its sittings, in order)."""
    lines = ["| notebook | wall time | status | commit |", "|---|---|---|---|"]
    ran = 0.0
    if prov.get("grid"):
        g = prov["grid"]
        wall = float(g["wall_s"])
        skipped = bool(g.get("skipped"))
        ran += 0.0 if skipped else wall
        n_sittings = int(g.get("sittings", 1))
        lines.append(f"| the preset's grid, {g['workers']} processes (before the notebooks)"
                     f"{', its last sitting' if n_sittings > 1 else ''} | {wall / 60:.1f} min ({wall:.0f} s) | "
                     f"{'not run now (time of its last run)' if skipped else 'ran'} | "
                     f"{_short_commit(g.get('git_commit'))} |")
        if n_sittings > 1:
            total = float(g["sittings_total_s"])
            commits = ", ".join(_short_commit(c) for c in g.get("sittings_commits", [])) or "?"
            counted = "its last minute" if g.get("sittings_heartbeat") else "its last finished task"
            lines.append(f"| the grid over all its {n_sittings} sittings (resumed; a sitting that was stopped counted "
                         f"to {counted}) | {total / 60:.1f} min ({total:.0f} s) | sum | {commits} |")
    for r in prov["notebooks"]:
        wall = float(r.get("wall_s", 0.0))
        state = "unchanged (skipped; time of its last run)" if r.get("skipped") else "ran"
        if r.get("failed"):  # its outputs may be partial; the next run re-runs it
            state = "failed (an earlier invocation; not run now)" if r.get("skipped") else "failed"
        ran += 0.0 if r.get("skipped") else wall
        name = markdown_cell(r.get("executed") or r.get("notebook"))  # a parameter value may hold a "|"
        lines.append(f"| {name} | {wall / 60:.1f} min ({wall:.0f} s) | {state} | {_short_commit(r.get('git_commit'))} |")
    lines.append(f"| executions that ran | {ran / 60:.1f} min | | |")
    if total_s is not None:
        lines.append(f"| this invocation, wall clock | {total_s / 60:.1f} min | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
