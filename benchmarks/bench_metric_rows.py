"""Notebook 08's scoring (:func:`p3d.analysis.metric_validation.metric_rows`): each clip's speech encoded once for
all its sequences (new) against once per sequence (old: ``_clip_speech`` returning None, which is what the code
did before), on a checkout's synth-voca test clips, the referee validity battery's sequences, the PLRS evaluator.

One process, one torch thread, the two paths alternated (old, new, new, old) so that they share the machine's
state; prints seconds per path, the ratio, and the largest difference of each PLRS column between the paths::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_metric_rows.py --root CHECKOUT --preset full --clips 8

``--root``: a checkout where ``make figures PRESET=<preset>`` trained the PLRS evaluator (``runs/<preset>/evaluator``)
and made the corpora (``data/<preset>``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="checkout with data/<preset> and runs/<preset>")
    parser.add_argument("--preset", default="full")
    parser.add_argument("--clips", type=int, default=8, help="synth-voca test clips to score (default 8)")
    args = parser.parse_args(argv)
    if args.clips < 2:
        parser.error(f"--clips {args.clips}: the calibrated scores need at least 2")
    if not (args.root / "runs" / args.preset / "evaluator" / "final.pt").is_file():
        parser.error(f"--root {args.root}: no runs/{args.preset}/evaluator/final.pt (make figures PRESET={args.preset})")
    os.environ["P3D_ROOT"] = str(args.root.resolve())
    import torch

    torch.set_num_threads(1)
    from p3d.analysis import metric_validation as mv
    from p3d.analysis import referee_validity as rv
    from p3d.corpus import Corpus
    from p3d.models.speech_mesh import load_critic
    from p3d.paths import output_dirs

    dirs = output_dirs(args.preset)
    voca = Corpus.open(dirs.data / args.preset / "synth-voca")
    clips = voca.select("test")[:args.clips]
    evaluator = load_critic(dirs.runs / args.preset / "evaluator" / "final.pt")
    new_path = mv._clip_speech

    def score(path: str) -> tuple[float, object]:
        mv._clip_speech = new_path if path == "new" else (lambda *a: None)
        try:
            start = time.perf_counter()
            rows = mv.metric_rows(clips, rv.battery_sequences(voca, clips, 0), corpus=voca, oracle=None,
                                  plrs_model=evaluator, calibrated=True)
            return time.perf_counter() - start, rows
        finally:
            mv._clip_speech = new_path

    seconds = {"old": [], "new": []}
    rows = {}
    for path in ("old", "new", "new", "old"):
        s, rows[path] = score(path)
        seconds[path].append(s)
    n_seq = len(rows["new"])
    print(f"{len(clips)} clips, {n_seq} sequences (the validity battery), calibrated scores, 1 thread\n")
    print("| path | s (two runs) | sequences/s |\n|---|---|---|")
    for path in ("old", "new"):
        best = min(seconds[path])
        print(f"| {path} | {' / '.join(f'{s:.1f}' for s in seconds[path])} | {n_seq / best:.1f} |")
    print(f"\nratio old / new (best of two): {min(seconds['old']) / min(seconds['new']):.2f}x")
    for col in ("plrs", "plrs_calibrated", "plrs_mrr"):
        diff = (rows["new"][col] - rows["old"][col]).abs().max()
        print(f"largest |new - old| of {col}: {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
