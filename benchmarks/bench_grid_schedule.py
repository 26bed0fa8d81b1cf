"""Benchmark (a projection from measured task times): what a preset's grid would take with other worker counts or
another dispatch order.

`make figures PRESET=full` records each grid task's seconds, per sitting, in ``runs/<preset>/grid_sittings.json``
(:class:`p3d.notebook_runner.GridSittings`). This script rebuilds the preset's plan (:func:`p3d.experiments.plan`;
the corpora must exist, since the fixed loss weight names the runs), takes those seconds and simulates
:func:`p3d.experiments.run_grid`'s dispatch (:func:`p3d.experiments.simulate_grid`) at 1, 2, 4, ... workers, in
plan order (what ``run_grid`` does) and longest task first, beside the two lower bounds: the summed task seconds /
workers, and the longest chain of dependent tasks (:func:`p3d.experiments.critical_path_s`). Each task's time is
taken as recorded, whatever runs beside it (one torch thread each), so more workers sharing a machine's memory
bandwidth make this optimistic. A task that a killed sitting had begun counts only the part its resuming sitting
ran (a lower bound).

    P3D_ROOT=/path/to/the/run/tree .venv/bin/python benchmarks/bench_grid_schedule.py --preset full
    ... --fill     # a grid still going: estimate its unrecorded tasks by the median of their kind and model

Prints a Markdown report: the machine, the grid's recorded task time by kind and model, and the table.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3d.errors import InputError  # noqa: E402
from p3d.experiments import critical_path_s, grid_weight, plan, simulate_grid, spec_for  # noqa: E402
from p3d.notebook_runner import SITTINGS_FILE, GridSittings  # noqa: E402
from p3d.paths import output_dirs  # noqa: E402
from p3d.tables import markdown_cell  # noqa: E402


def group(key: str) -> str:
    """``train:full:selftalk_ours_...`` -> ``train selftalk``; an equal-length continuation (``..._eq_seed0``) ->
    ``continue selftalk``; ``critic:full:ours`` -> ``critic``."""
    kind, *rest = key.split(":")
    if kind == "train" and len(rest) > 1 and "_eq_" in rest[1]:
        kind = "continue"
    return f"{kind} {rest[1].split('_')[0]}" if kind in ("train", "continue", "eval") and len(rest) > 1 else kind


def kind_rows(seconds: dict[str, float], missing: list[str]) -> list[str]:
    """The rows of the table of task time by kind and model (:func:`group`), longest first: tasks, count, of them
    estimated (``missing``), hours, share of the summed ``seconds``; each name a markdown cell
    (:func:`p3d.tables.markdown_cell`)."""
    total = sum(seconds.values())
    by: dict[str, list[float]] = {}
    for key, s in seconds.items():
        by.setdefault(group(key), []).append(s)
    rows = []
    for name, values in sorted(by.items(), key=lambda kv: -sum(kv[1])):
        guessed = sum(group(k) == name for k in missing)
        rows.append(f"| {markdown_cell(name)} | {len(values)} | {guessed} | {sum(values) / 3600:.2f} | "
                    f"{sum(values) / total:.0%} |")
    return rows


def refuse(message: str) -> None:
    print(f"bench_grid_schedule: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="full")
    parser.add_argument("--workers", default="1,2,4,8,16", help="comma-separated worker counts")
    parser.add_argument("--sittings", type=Path, default=None,
                        help=f"the grid's sittings file (default: runs/<preset>/{SITTINGS_FILE} of the project root)")
    parser.add_argument("--fill", action="store_true",
                        help="estimate tasks without a recorded time by the median of their kind and model")
    args = parser.parse_args(argv)
    try:
        workers = [int(w) for w in args.workers.split(",")]
        if min(workers) < 1:
            raise ValueError
    except ValueError:
        refuse(f"--workers: comma-separated positive process counts, got {args.workers!r}")
    try:
        spec = spec_for(args.preset)
        dirs = output_dirs(args.preset)
        weight = grid_weight(spec, dirs)
        tasks = plan([*spec.config1(weight), *spec.config2(weight)], dirs, spec.n_resamples,
                     groups=spec.length_groups(weight))  # as make figures plans it (p3d.experiments.preset_grid)
        sittings_path = args.sittings or dirs.runs / args.preset / SITTINGS_FILE
        recorded = GridSittings.task_seconds(sittings_path)
    except InputError as exc:
        refuse(str(exc))
    seconds = {t.key: recorded[t.key] for t in tasks if t.key in recorded}
    missing = [t.key for t in tasks if t.key not in seconds]
    if missing and not args.fill:
        refuse(f"{len(missing)} of {len(tasks)} tasks have no recorded time (e.g. {missing[0]}); the grid is not "
               "finished: --fill estimates them")
    measured = dict(seconds)
    for key in missing:
        peers = [s for k, s in measured.items() if group(k) == group(key)]
        seconds[key] = statistics.median(peers or measured.values())
    total = sum(seconds.values())
    chain = critical_path_s(tasks, seconds)
    sittings = json.loads(Path(sittings_path).read_text())["sittings"]
    print(f"Task times recorded by `{sittings_path}` ({len(sittings)} sittings from {sittings[0]['started']}, "
          f"commits {', '.join(dict.fromkeys(e['git_commit'][:7] for e in sittings))} in the order run; on the machine "
          "that ran them); "
          f"preset {args.preset}: {len(tasks)} tasks, {len(tasks) - len(missing)} with a recorded time"
          + (f", {len(missing)} estimated (the median of their kind and model's, else of all)" if missing else "")
          + ".\n")
    print(f"Task time: {total / 3600:.2f} h summed" + (" (recorded and estimated)" if missing else "")
          + f"; the longest chain of dependent tasks {chain / 60:.0f} min.\n")
    print("| tasks | count | of them estimated | hours | share |\n|---|---|---|---|---|")
    print("\n".join(kind_rows(seconds, missing)))
    print("\n| workers | plan order (run_grid) | longest task first | lower bound max(sum / workers, chain) |")
    print("|---|---|---|---|")
    for n in workers:
        in_order = simulate_grid(tasks, seconds, n)
        longest = simulate_grid(tasks, seconds, n, priority=lambda t: -seconds[t.key])
        bound = max(total / n, chain)
        print(f"| {n} | {in_order / 60:.0f} min | {longest / 60:.0f} min | {bound / 60:.0f} min |")


if __name__ == "__main__":
    main()
