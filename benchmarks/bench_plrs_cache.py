"""Benchmark of PLRS' speech side in an experiment's evaluation: encoded twice per GT clip (the code before
commit aeec596: once for PLRS-c's background bank, once for the PLRS windows), once (the background bank's first
G rows), and read from ``EvalConfig.speech_cache`` (every run evaluated on the same audio after the first).

Each setting evaluates the same finished run's predictions with its experiment's ``p3d eval`` request
(:func:`p3d.experiments.runs._eval_config`: MTM, LVE, FDD, SLCC, PLRS, PLRS-c, diagnostics; no report written)
in a fresh child process with one torch thread, in one invocation, so the ratios share the machine's state:

    .venv/bin/python benchmarks/bench_plrs_cache.py --root CHECKOUT_WITH_RUNS --preset cpu \\
        --run selftalk_none_voca+mead_seed0 --old-commit 92d541c

``--root``: a checkout whose ``data/<preset>`` and ``runs/<preset>`` hold the finished run, its corpus and the
PLRS evaluator (``make figures`` there). ``--old-commit``: the old code, extracted with ``git archive`` from this
repository. ``--warm-only``: just the old code against this checkout, both reading a warm cache (the setting of
every grid evaluation after the first). Prints a Markdown table: seconds per setting, ratio to the first row, and
the largest difference of PLRS and PLRS-c per prediction from the first row's.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
from p3d import experiments as ex
from p3d.evaluate import evaluate
from p3d.experiments import runs
from p3d.experiments.layout import layout
from p3d.paths import output_dirs
preset, run_name, cache, out = sys.argv[1:5]
dirs = output_dirs(preset)
lay = layout(dirs, preset)
spec = ex.spec_for(preset)
weight = ex.grid_weight(spec, dirs)
grid = [*spec.config1(weight), *spec.config2(weight)]
own = [getattr(e, "own_length", e) for e in grid]  # an equal-length grid's runs: the one named, as it stopped
exp = next(e for e in [*grid, *own] if e.name == run_name)  # its first evaluation
root = lay.corpus(exp.test_corpus)
plrs = runs.evaluator(preset, lay.data, lay.runs)
args = (root, lay.predictions(exp), plrs, None, 1000)
cfg = runs._eval_config(*args, Path(cache)) if cache != "-" else runs._eval_config(*args)
start = time.perf_counter()
report = evaluate(cfg, progress=False)
seconds = time.perf_counter() - start
report.per_clip[["pred", "plrs", "plrs_calibrated"]].to_csv(out, index=False)
print(json.dumps({"seconds": seconds, "n_predictions": len(report.per_clip)}))
"""


def child(code: Path, root: Path, preset: str, run: str, cache: str, out: Path) -> dict:
    import json

    env = {**os.environ, "PYTHONPATH": str(code), "P3D_ROOT": str(root), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    script = "from pathlib import Path\n" + CHILD
    done = subprocess.run([sys.executable, "-c", script, preset, run, cache, str(out)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    import numpy as np
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--run", default="selftalk_none_voca+mead_seed0")
    parser.add_argument("--old-commit", default=None)
    parser.add_argument("--warm-only", action="store_true",
                        help="only the warm speech cache (what every grid evaluation after the first reads): "
                             "--old-commit's code against this checkout's, the cache warmed by an untimed run first")
    args = parser.parse_args()
    if args.warm_only and not args.old_commit:
        parser.error("--warm-only compares with --old-commit; give it")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        settings = []
        if args.old_commit:
            old = tmp / "old"
            old.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.old_commit], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            settings.append((f"old path ({args.old_commit}): speech encoded twice per clip", old, "-"))
        cache = tmp / "cache"
        if args.warm_only:
            child(ROOT, args.root, args.preset, args.run, str(cache), tmp / "warming.csv")  # untimed: fills the cache
            settings = [(f"old code ({args.old_commit}), speech_cache warm", settings[0][1], str(cache)),
                        ("this checkout, speech_cache warm", ROOT, str(cache))]
        else:
            settings += [("encoded once per clip, no cache", ROOT, "-"),
                         ("speech_cache, cold (first run on this audio)", ROOT, str(cache)),
                         ("speech_cache, warm (every later run)", ROOT, str(cache))]
        rows, frames = [], []
        for i, (label, code, c) in enumerate(settings):
            out = tmp / f"{i}.csv"
            got = child(code, args.root, args.preset, args.run, c, out)
            rows.append({"setting": label, "s": got["seconds"], "predictions": got["n_predictions"]})
            frames.append(pd.read_csv(out).set_index("pred").sort_index())
    base = rows[0]["s"]
    now = datetime.datetime.now(datetime.timezone.utc)
    print(f"Date {now:%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; run {args.run} ({args.preset})\n")
    print(f"| setting | s | predictions | x first row | max abs diff PLRS / PLRS-c vs first row |")
    print("|---|---|---|---|---|")
    for row, frame in zip(rows, frames):
        d = [float(np.nanmax(np.abs(frame[c].to_numpy() - frames[0][c].to_numpy())))
             for c in ("plrs", "plrs_calibrated")]
        print(f"| {row['setting']} | {row['s']:.1f} | {row['predictions']} | {base / row['s']:.2f}x | "
              f"{d[0]:.1e} / {d[1]:.1e} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
