"""Benchmark of the CPU metrics (LVE, FDD, MTM, SLCC; paper Sec. 5, E.1): clips/s per metric, MTM DDTW speed-up.

1. A VOCASET-sized synthetic test set, generated in memory from a seed: ``--clips`` predictions of
   ``--frames`` frames x ``--vertices`` vertices (default 320 x 120 x 5023, float32), made of
   ``--clips / 8`` ground-truth clips of 2 speakers (at least 4), each predicted under up to 8
   conditioning identities (the official protocol). Motion is low-rank and temporally smooth, so
   the MTM lip distance has realistic extrema. LVE, FDD, MTM, lip intensity and speech intensity are timed per clip, SLCC
   (and its paired bootstrap CI) over all rows; reported as clips (rows) per second.
2. DDTW on ``--ddtw-frames`` (300) frame clips: the numba kernel of :func:`p3d.metrics.ddtw` against
   the plain-Python double loop of the official script (``tests/official_reference.py``), timed on
   ``--oracle-clips`` clips only (it is slow). Paths are checked to be identical; the speed-up is the
   ratio of mean times per clip.

    .venv/bin/python benchmarks/bench_metrics.py            # full run (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_metrics.py --quick    # a tiny smoke run

Prints a Markdown report; numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3d import metrics  # noqa: E402
from p3d.topology import FLAME_LIPS, FLAME_MTM_LOWER, FLAME_MTM_UPPER  # noqa: E402
from tests.official_reference import ddtw_loop  # noqa: E402

log = logging.getLogger("bench_metrics")

N_CONDITIONS = 8
N_SPEAKERS = 2
N_BASIS = 12
SAMPLE_RATE = 16000


class SyntheticSet:
    """Seeded low-rank face motion: vertices(t) = template + coefficients(t) @ basis."""

    def __init__(self, n_vertices: int, frames: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.v, self.t = n_vertices, frames
        rng = self.rng
        self.templates = [rng.normal(scale=0.05, size=(n_vertices, 3)).astype(np.float32)
                          for _ in range(N_SPEAKERS)]
        self.basis = rng.normal(scale=1e-3, size=(N_BASIS, n_vertices * 3)).astype(np.float32)
        if n_vertices > max(FLAME_LIPS):
            self.lips = np.asarray(FLAME_LIPS)
            self.upper, self.lower = FLAME_MTM_UPPER, FLAME_MTM_LOWER
        else:
            self.lips = rng.choice(n_vertices, size=min(254, n_vertices))
            self.upper, self.lower = 1, 0
        self.upper_face = np.sort(rng.choice(n_vertices, size=min(1263, n_vertices), replace=False))

    def coefficients(self, frames: int) -> np.ndarray:
        return gaussian_filter1d(self.rng.normal(size=(frames + 20, N_BASIS)), sigma=3.0, axis=0)[10:-10]

    def vertices(self, speaker: int, coeff: np.ndarray) -> np.ndarray:
        """(T, V*3) float32, the flattened layout of ``vertices_npy`` files."""
        return (self.templates[speaker].reshape(1, -1) + coeff.astype(np.float32) @ self.basis)

    def prediction_coefficients(self, gt_coeff: np.ndarray) -> np.ndarray:
        """A plausible prediction: delayed by 0-3 frames, rescaled, plus smooth noise."""
        lag = int(self.rng.integers(0, 4))
        shifted = np.concatenate([np.repeat(gt_coeff[:1], lag, axis=0), gt_coeff[:len(gt_coeff) - lag]])
        return self.rng.uniform(0.5, 1.2) * shifted + 0.3 * self.coefficients(len(gt_coeff))

    def audio(self, seconds: float) -> np.ndarray:
        n = int(seconds * SAMPLE_RATE)
        return (self.rng.uniform(0.05, 0.5) * self.rng.normal(size=n)).astype(np.float32)


def bench_metrics(args: argparse.Namespace) -> dict[str, float]:
    data = SyntheticSet(args.vertices, args.frames, args.seed)
    n_gt = max(2 * N_SPEAKERS, -(-args.clips // N_CONDITIONS))  # >= 2 clips per speaker for SLCC
    log.info("generating %d GT clips of %d x %d", n_gt, args.frames, args.vertices)
    gt_coeffs = [data.coefficients(args.frames) for _ in range(n_gt)]
    gts = [data.vertices(k % N_SPEAKERS, c) for k, c in enumerate(gt_coeffs)]
    audios = [data.audio(args.frames / 30.0) for _ in range(n_gt)]

    # Warm up (imports, numba cache load or compile) outside the timed loop, and report it.
    t0 = time.perf_counter()
    metrics.mtm(pred=gts[0], gt=gts[0], upper=data.upper, lower=data.lower)
    warmup = time.perf_counter() - t0

    names = ("lve", "fdd", "mtm", "lip_intensity", "speech_intensity")
    spent = dict.fromkeys(names, 0.0)
    speech, lip, identity, mtm_frames = [], [], [], []
    for k in tqdm(range(args.clips), desc="metrics", unit="clip", disable=args.quiet):
        g = k % n_gt
        speaker = g % N_SPEAKERS
        gt = gts[g]
        pred = data.vertices(speaker, data.prediction_coefficients(gt_coeffs[g]))  # untimed
        t = time.perf_counter()
        metrics.lve(pred, gt, data.lips)
        spent["lve"] += time.perf_counter() - t
        t = time.perf_counter()
        metrics.fdd(pred, gt, data.templates[speaker], data.upper_face)
        spent["fdd"] += time.perf_counter() - t
        t = time.perf_counter()
        res = metrics.mtm(pred=pred, gt=gt, upper=data.upper, lower=data.lower)
        spent["mtm"] += time.perf_counter() - t
        t = time.perf_counter()
        lip.append(metrics.lip_intensity(pred, data.lips))
        spent["lip_intensity"] += time.perf_counter() - t
        t = time.perf_counter()
        speech.append(metrics.speech_intensity(audios[g]))  # per row, as the official extraction
        spent["speech_intensity"] += time.perf_counter() - t
        identity.append(f"speaker{speaker}")
        if res.mean_frames is not None:
            mtm_frames.append(res.mean_frames)

    rate = {f"{n} (clips/s)": args.clips / spent[n] for n in names}
    r = metrics.slcc(speech, lip, identity)  # warm-up: imports scipy.stats
    t = time.perf_counter()
    for _ in range(10):
        metrics.slcc(speech, lip, identity)
    rate["slcc over all rows, mean of 10 calls (rows/s)"] = 10 * args.clips / (time.perf_counter() - t)
    t = time.perf_counter()
    metrics.slcc_bootstrap_ci(speech, lip, identity, n_resamples=args.bootstrap)
    rate[f"slcc paired bootstrap CI, {args.bootstrap} resamples (s)"] = time.perf_counter() - t
    t = time.perf_counter()
    metrics.bootstrap_ci(mtm_frames, n_resamples=9999)
    rate["bootstrap_ci of per-clip MTM, 9999 resamples, BCa (s)"] = time.perf_counter() - t
    rate["all per-clip metrics together (clips/s)"] = args.clips / sum(spent.values())
    rate["first mtm() call in the process: scipy imports + numba cache load or compile (s)"] = warmup
    log.info("SLCC of the synthetic set: %.3f; clips with MTM matches: %d/%d", r, len(mtm_frames), args.clips)
    return rate


def bench_ddtw(args: argparse.Namespace) -> dict[str, float]:
    data = SyntheticSet(args.vertices, args.ddtw_frames, args.seed + 1)
    pairs = []
    for _ in range(args.ddtw_clips):
        c = data.coefficients(args.ddtw_frames)
        gt = data.vertices(0, c).reshape(args.ddtw_frames, -1, 3)
        pred = data.vertices(0, data.prediction_coefficients(c)).reshape(args.ddtw_frames, -1, 3)
        pairs.append(tuple(gaussian_filter1d(np.linalg.norm(v[:, data.upper] - v[:, data.lower], axis=1), 2.0)
                           for v in (gt, pred)))
    metrics.ddtw(*pairs[0])  # warm-up
    t = time.perf_counter()
    fast = [metrics.ddtw(x, y) for x, y in pairs]
    numba_s = (time.perf_counter() - t) / len(pairs)
    oracle = []
    t = time.perf_counter()
    for x, y in tqdm(pairs[:args.oracle_clips], desc="plain-Python DDTW", unit="clip", disable=args.quiet):
        oracle.append(ddtw_loop(x, y))
    oracle_s = (time.perf_counter() - t) / len(oracle)
    for (cost, path), (cost_ref, path_ref) in zip(fast, oracle):
        if cost != cost_ref or not np.array_equal(path, path_ref):
            raise SystemExit("numba DDTW differs from the plain-Python loop: benchmark invalid")
    return {
        f"numba DDTW, {args.ddtw_frames} frames (ms/clip, mean of {len(pairs)})": 1e3 * numba_s,
        f"plain-Python DDTW loop, {args.ddtw_frames} frames (ms/clip, mean of {len(oracle)})": 1e3 * oracle_s,
        "speed-up (x)": oracle_s / numba_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=320, help="predictions in the synthetic test set")
    parser.add_argument("--frames", type=int, default=120, help="frames per clip")
    parser.add_argument("--vertices", type=int, default=5023, help="vertices per frame")
    parser.add_argument("--ddtw-frames", type=int, default=300, help="frames of the DDTW speed-up clips")
    parser.add_argument("--ddtw-clips", type=int, default=50, help="clips timed with numba DDTW")
    parser.add_argument("--oracle-clips", type=int, default=3, help="clips timed with the plain-Python loop")
    parser.add_argument("--bootstrap", type=int, default=2000, help="resamples of the SLCC bootstrap CI")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny run (16 clips of 40 frames; 100-frame DDTW)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.quick:
        args.clips, args.frames, args.ddtw_frames, args.ddtw_clips, args.oracle_clips, args.bootstrap = \
            16, 40, 100, 5, 1, 200
    for name in ("clips", "frames", "vertices", "ddtw_frames", "ddtw_clips", "oracle_clips", "bootstrap"):
        if getattr(args, name) < (2 if name == "frames" else 1):
            parser.error(f"--{name.replace('_', '-')} is too small")
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    rows = {**bench_metrics(args), **bench_ddtw(args)}
    command = "python benchmarks/bench_metrics.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"\nCommand: `{command.strip()}`  ")
    print(f"Date: {datetime.date.today().isoformat()}; {platform.python_implementation()} "
          f"{platform.python_version()}, numpy {np.__version__}; {os.cpu_count()} CPU cores visible  ")
    print(f"Synthetic set: {args.clips} predictions x {args.frames} frames x {args.vertices} vertices (float32), "
          f"seed {args.seed}\n")
    print("| Measurement | Value |\n|---|---|")
    for key, value in rows.items():
        print(f"| {key} | {value:,.4g} |" if value < 1000 else f"| {key} | {value:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
