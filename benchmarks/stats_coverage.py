"""Coverage of the effect tables' 95 % interval over training seeds and test clips (``p3d.stats.seed_clip_interval``,
through ``p3d.stats.hierarchical_interval``), by simulation: how often it holds the true value (0).

Each simulated design has S seeds scored on the same K clips: value[s, k] = seed effect s (spread ``seed_sd``) +
clip effect k (spread ``clip_sd``) + noise (spread ``--noise``); the statistic is each seed's mean over the
(resampled) clips. The truth is 0 (the mean over seeds and clips of the population). The interval's clips'
part uses ``--resamples`` bootstrap draws; every design's randomness is a function of ``--seed`` and its index.

    .venv/bin/python benchmarks/stats_coverage.py                 # the README's settings (~40 s on 2 cores)
    .venv/bin/python benchmarks/stats_coverage.py --designs 200   # quicker, coarser

Prints a markdown table: S, seed_sd, clip_sd, coverage and its Monte-Carlo standard error.
"""
from __future__ import annotations

import argparse

import numpy as np

#: (seeds, seed spread, clip-effect spread): 2 seeds; 3 seeds (Tables 3 and 4 at ``full``) with the seeds'
#: spread above, near and below the clips'; 5 seeds (Table 2).
SETTINGS: tuple[tuple[int, float, float], ...] = ((2, 1.0, 1.0), (3, 1.0, 1.0), (3, 0.5, 0.3), (3, 0.3, 1.0),
                                                  (5, 0.5, 1.0))


def coverage(n_seeds: int, seed_sd: float, clip_sd: float, *, n_clips: int = 40, noise: float = 0.5,
             designs: int = 1000, resamples: int = 400, seed: int = 0) -> float:
    """The fraction of ``designs`` simulated designs whose 95 % interval holds 0."""
    from p3d.stats import hierarchical_interval

    hits = 0
    for i in range(designs):
        rng = np.random.default_rng([seed, n_seeds, int(round(seed_sd * 100)), int(round(clip_sd * 100)), i])
        values = (rng.normal(0, seed_sd, n_seeds)[:, None] + rng.normal(0, clip_sd, n_clips)[None, :]
                  + rng.normal(0, noise, (n_seeds, n_clips)))

        def statistic(s: int, counts: np.ndarray | None) -> float:
            return float(values[s].mean()) if counts is None else float((values[s] * counts).sum() / counts.sum())

        _, low, high = hierarchical_interval(statistic, n_seeds, n_clips, n_resamples=resamples, seed=i)
        hits += low <= 0.0 <= high
    return hits / designs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--designs", type=int, default=1000, help="simulated designs per setting (default 1000)")
    p.add_argument("--clips", type=int, default=40, help="test clips per design (default 40)")
    p.add_argument("--noise", type=float, default=0.5, help="seed-by-clip noise spread (default 0.5)")
    p.add_argument("--resamples", type=int, default=400, help="clip-bootstrap draws per interval (default 400)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    print("| seeds | seed spread | clip spread | coverage of the 95 % interval | MC s.e. |")
    print("|---|---|---|---|---|")
    for n_seeds, seed_sd, clip_sd in SETTINGS:
        c = coverage(n_seeds, seed_sd, clip_sd, n_clips=args.clips, noise=args.noise, designs=args.designs,
                     resamples=args.resamples, seed=args.seed)
        print(f"| {n_seeds} | {seed_sd} | {clip_sd} | {100 * c:.1f} % | {100 * np.sqrt(c * (1 - c) / args.designs):.1f} % |",
              flush=True)


if __name__ == "__main__":
    main()
