"""Benchmark of ``p3d eval`` on many clips: peak memory (RSS) and clips/s against the number of clips.

A VOCASET-layout test set is generated on disk from a seed: ``N`` distinct ground-truth clips of
``--seconds`` (3) s at 60 fps x 5023 vertices (float32, (T, V*3), ~11 MB each) in ``vertices_npy/``,
a 16 kHz wav per clip, ``templates.pkl`` and a FLAME-masks fixture, and one 30 fps prediction per GT
clip (``<clip>_condition_C<k>.npy``). The predictions are hard links to ``--distinct-preds`` (8)
distinct files to save disk: each is loaded, used and dropped per pair, so sharing bytes on disk does
not change the memory argument, which is about the GT clips (all distinct). ``p3d eval`` (LVE, FDD,
MTM, SLCC) runs in a child process for each N; its peak RSS comes from ``os.wait4`` (the child's own
``getrusage``), clips/s from the wall time of the whole command (imports and numba load included).

    .venv/bin/python benchmarks/bench_eval.py --clips 150 2000      # needs ~22 GB free under --workdir
    .venv/bin/python benchmarks/bench_eval.py --quick                # 20 and 40 clips of 1 s
    .venv/bin/python benchmarks/bench_eval.py --clips 150 --code /path/to/other/checkout  # another version

The test set is generated once for the largest N (a run with fewer clips uses the first N) and deleted
at the end unless ``--keep``. Prints a Markdown report; numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import datetime
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3d.demo import fixture_masks  # noqa: E402
from p3d.topology import FLAME_N_VERTICES  # noqa: E402

GT_FPS, FPS, SAMPLE_RATE, N_BASIS, N_SPEAKERS = 60, 30, 16000, 12, 2


def generate(root: Path, n_clips: int, seconds: float, distinct_preds: int, seed: int) -> None:
    """Write the test set under ``root`` (``vertices_npy/``, ``wav/``, ``pred/``, pickles)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    n_vertices = FLAME_N_VERTICES
    frames = int(round(seconds * GT_FPS))
    templates = {f"FaceTalk_S{s}_TA": rng.normal(0, 0.05, (n_vertices, 3)).astype(np.float32)
                 for s in range(N_SPEAKERS)}
    basis = rng.normal(0, 1e-3, (N_BASIS, n_vertices * 3)).astype(np.float32)
    for sub in ("vertices_npy", "wav", "pred", "pred_store"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    with open(root / "templates.pkl", "wb") as fh:
        pickle.dump(templates, fh, protocol=2)
    with open(root / "FLAME_masks.pkl", "wb") as fh:
        pickle.dump(fixture_masks(seed), fh, protocol=2)
    speakers = sorted(templates)
    store = []
    for k in range(n_clips):
        speaker = speakers[k % N_SPEAKERS]
        stem = f"{speaker}_sentence{k:05d}"
        coeff = gaussian_filter1d(rng.normal(size=(frames + 20, N_BASIS)), sigma=3.0, axis=0)[10:-10]
        gt = templates[speaker].reshape(1, -1) + coeff.astype(np.float32) @ basis
        np.save(root / "vertices_npy" / f"{stem}.npy", gt)
        audio = (rng.uniform(0.05, 0.5) * rng.normal(size=int(seconds * SAMPLE_RATE))).clip(-1, 1)
        sf.write(root / "wav" / f"{stem}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
        if len(store) < distinct_preds:
            lag = int(rng.integers(0, 3))
            pred = np.concatenate([gt[:lag * 2], gt[:len(gt) - lag * 2]])[::2]  # lags the GT by 0-2 frames
            path = root / "pred_store" / f"pred{len(store)}.npy"
            np.save(path, pred.astype(np.float32))
            store.append(path)
        os.link(store[k % len(store)], root / "pred" / f"{stem}_condition_C{k % 8}.npy")


def run_eval(root: Path, n: int, code: Path, bootstrap: int) -> dict[str, float]:
    """``p3d eval`` on the first ``n`` predictions, in a child process: wall time and the child's peak RSS."""
    pred = root / f"pred_{n}"
    shutil.rmtree(pred, ignore_errors=True)
    pred.mkdir()
    for f in sorted((root / "pred").glob("*.npy"))[:n]:
        os.link(f, pred / f.name)
    out = root / f"eval_{n}"
    cmd = [sys.executable, "-m", "p3d", "eval", "--pred", str(pred), "--gt", str(root), "--audio", str(root / "wav"),
           "--templates", str(root / "templates.pkl"), "--topology", str(root / "FLAME_masks.pkl"),
           "--fps", str(FPS), "--gt-fps", str(GT_FPS), "--bootstrap", str(bootstrap), "--out", str(out),
           "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    t = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, cwd=code, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t
    text = child.stdout.read().decode() if child.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"p3d eval failed on {n} clips:\n{text}")
    return {"clips": n, "wall_s": wall, "clips_per_s": n / wall, "peak_rss_mib": usage.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, nargs="+", default=[150, 2000], help="numbers of GT clips to evaluate")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per clip")
    parser.add_argument("--distinct-preds", type=int, default=8, help="distinct prediction files (hard-linked)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples of the CIs")
    parser.add_argument("--workdir", type=Path, default=None, help="where the test set goes (default: a temp dir)")
    parser.add_argument("--code", type=Path, default=ROOT, help="the p3d checkout to run (default: this one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated test set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny run (20 and 40 clips of 1 s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.clips, args.seconds, args.bootstrap = [20, 40], 1.0, 200
    if min(args.clips) < 4 or args.seconds < 0.5:
        parser.error("--clips must be >= 4 and --seconds >= 0.5")
    n_max = max(args.clips)
    need_gb = n_max * (args.seconds * GT_FPS * FLAME_N_VERTICES * 3 * 4 + args.seconds * SAMPLE_RATE * 2) / 1e9
    work = Path(tempfile.mkdtemp(prefix="bench_eval-", dir=args.workdir))
    free_gb = shutil.disk_usage(work).free / 1e9
    if need_gb > 0.9 * free_gb:
        shutil.rmtree(work)
        raise SystemExit(f"{n_max} clips need ~{need_gb:.1f} GB but {work.parent} has {free_gb:.1f} GB free")
    rows = []
    try:
        t = time.perf_counter()
        generate(work, n_max, args.seconds, args.distinct_preds, args.seed)
        gen_s = time.perf_counter() - t
        print(f"generated {n_max} clips ({need_gb:.1f} GB) in {gen_s:.0f} s under {work}", file=sys.stderr)
        for n in sorted(args.clips):
            rows.append(run_eval(work, n, args.code.resolve(), args.bootstrap))
            print(f"{n} clips: {rows[-1]}", file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    command = "python benchmarks/bench_eval.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"\nCommand: `{command.strip()}`  ")
    print(f"Date: {datetime.date.today().isoformat()}; {platform.python_implementation()} "
          f"{platform.python_version()}, numpy {np.__version__}; {os.cpu_count()} CPU cores visible; "
          f"code: {args.code.resolve()}  ")
    print(f"Test set: N distinct GT clips of {args.seconds:g} s at {GT_FPS} fps x {FLAME_N_VERTICES} vertices "
          f"(float32) + wav, one {FPS} fps prediction each; metrics LVE, FDD, MTM, SLCC; {args.bootstrap} resamples\n")
    print("| GT clips (= predictions) | peak RSS (MiB) | wall (s) | clips/s | clips/s since the previous N |\n"
          "|---|---|---|---|---|")
    prev = None
    for r in rows:  # the marginal rate leaves out the fixed start-up (imports, numba cache load)
        marginal = "" if prev is None else f"{(r['clips'] - prev['clips']) / max(r['wall_s'] - prev['wall_s'], 1e-9):.1f}"
        print(f"| {r['clips']} | {r['peak_rss_mib']:,.0f} | {r['wall_s']:,.1f} | {r['clips_per_s']:.1f} | {marginal} |")
        prev = r
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
