"""Where stopping rules would stop recorded validation curves, and how much improvement each stop leaves.

Usage: .venv/bin/python benchmarks/bench_plateau_rules.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a talker run trained without the rule (``p3d train talker ... --stop steps --eval-every 50``),
whose ``val.csv`` holds the whole curve. The rules are replayed on each prefix of the curve with
:func:`p3d.train.convergence.plateau_reached` (the trainer's decision: a stop depends only on the curve up to it).
Prints, as markdown, the curve in 500-step blocks (mean of the block's evaluations and their relative spread) and,
per rule, the stop step and "still to come": how far the mean of the curve's last five evaluations lies below the
best moving median of 3 evaluations up to the stop (benchmarks/RESULTS.md, "The talkers' plateau rule against whole
curves").
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from p3d.train.convergence import plateau_reached, smoothed

BLOCK = 500
#: (label, moving-median window, patience) of the plateau rule, min_rel_improvement 1 %; None: block means.
RULES = (("median 3, patience 5 (the default)", 3, 5), ("median 3, patience 10", 3, 10),
         ("means of consecutive 250-step blocks", None, 5), ("median 10, patience 10 (`full` talkers)", 10, 10))


def _fires(values: np.ndarray, window: int | None, patience: int) -> bool:
    if window is None:  # the means of the last two blocks of `patience` evaluations
        if len(values) < 2 * patience:
            return False
        before, last = values[-2 * patience:-patience].mean(), values[-patience:].mean()
        return (before - last) / before < 0.01
    return plateau_reached(values, window=window, patience=patience, min_rel_improvement=0.01)


def report(run_dirs: list[Path]) -> str:
    curves, stops = [], []
    for run in run_dirs:
        df = pd.read_csv(run / "val.csv")
        config = run / "config.json"
        model = str(json.loads(config.read_text()).get("model", run.name)) if config.exists() else run.name
        values, steps = df["val"].to_numpy(), df["step"].to_numpy()
        blocks = df.groupby((df["step"] - 1) // BLOCK)["val"].agg(["mean", "std", "count"])
        cells = [f"{r['mean'] * 1e7:.2f} ± {r['std'] / r['mean'] * 100:.0f} %" for _, r in blocks.iterrows()
                 if r["count"] == BLOCK // int(steps[0])]
        curves.append((f"{model} (to {steps[-1]})", cells))
        tail = values[-5:].mean()
        for label, window, patience in RULES:
            n = next((i for i in range(len(values)) if _fires(values[:i + 1], window, patience)), None)
            if n is None:
                stops.append(f"| {model} | {label} | none by {steps[-1]} | |")
                continue
            best = smoothed(values[:n + 1], 3)[min(3, n + 1) - 1:].min()  # one yardstick for every rule
            gain = 1 - tail / best  # below 0: the curve's end lies above the best at the stop
            stops.append(f"| {model} | {label} | {steps[n]} | {gain:.0%} |" if gain >= 0.005
                         else f"| {model} | {label} | {steps[n]} | none (end {-gain:.1%} above) |")
    width = max(len(c) for _, c in curves)
    head = "| steps | " + " | ".join(str(BLOCK * (i + 1)) for i in range(width)) + " |\n|---|" + "---|" * width
    rows = [f"| {name} | " + " | ".join(c + [""] * (width - len(c))) + " |" for name, c in curves]
    return "\n".join([head, *rows, "", "| talker | rule | stops at | still to come |", "|---|---|---|---|", *stops])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="talker run folders with a whole-curve val.csv")
    print(report(parser.parse_args(argv).runs))


if __name__ == "__main__":
    main()
