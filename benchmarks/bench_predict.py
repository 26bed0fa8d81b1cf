"""Benchmark: ``p3d predict``'s throughput, one ``predict`` call per (clip, style) vs batched ``predict_batch``.

Usage: .venv/bin/python benchmarks/bench_predict.py [--data data/full/synth-voca] [--split test] [--clips 6]
       [--preset cpu] [--models faceformer,codetalker,selftalk] [--batch-sizes 1,8,16] [--threads 1]

Per model: a randomly initialised talker at ``--preset`` (vertex count, style count = the corpus' training
identities, frame rate from the corpus; the time of a prediction does not depend on the weights, the output heads
are made non-zero so the outputs move) predicts the first ``--clips`` clips of ``--split`` under every training
identity, with :func:`p3d.predict._write_predictions` (the code of ``p3d predict``: audio read, frame counts,
atomic ``.npy`` writes) into a temporary folder, once per ``--batch-sizes`` entry (1 = ``model.predict`` one pair
at a time, the code before batching; N = ``predict_batch`` on N pairs sorted by length). One warm-up prediction
and one batched call per model are not timed. Reports predictions/s, the speed-up over batch size 1 (the ratio
within one run is what counts on a shared machine) and the largest difference of the batched files from the
one-by-one files relative to the largest predicted displacement; the 1-minute load average before and after each
model.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def build_model(kind: str, preset: str, n_vertices: int, n_styles: int, fps: float):
    import torch

    from p3d.models.talker import talker_class

    torch.manual_seed(0)
    cls = talker_class(kind)
    config = cls.config_class.from_preset(preset, n_vertices=n_vertices, n_styles=n_styles,
                                          fps=int(fps) if kind == "codetalker" else fps)
    model = cls._from_config(config)
    if kind == "faceformer":
        torch.nn.init.normal_(model.vertice_map_r.weight, std=0.1)
    elif kind == "selftalk":
        torch.nn.init.normal_(model.animator.head.weight, std=0.01)
    else:
        model.set_stage("speech")
        model.vqvae.quantizer.codebook.weight.data.normal_(0, 0.01)
        torch.nn.init.normal_(model.feat_map.weight, std=0.05)
    return model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/full/synth-voca")
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--models", default="faceformer,codetalker,selftalk")
    parser.add_argument("--batch-sizes", default="1,8,16")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    from p3d.corpus import Corpus
    from p3d.predict import _jobs, _write_predictions

    torch.set_num_threads(args.threads)
    corpus = Corpus.open(args.data)
    styles = list(corpus.meta["splits"]["train"])
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    started = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"# bench_predict {started}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} thread(s); {args.data} {args.split}: {args.clips} clips x "
          f"{len(styles)} styles, preset {args.preset}", flush=True)
    rows = []
    for kind in args.models.split(","):
        model = build_model(kind, args.preset, corpus.topology.n_vertices, len(styles), corpus.model_fps)
        jobs = _jobs([corpus], args.split, model, corpus.model_fps, True, "the model")[: args.clips]
        warm = torch.from_numpy(corpus.audio(jobs[0][1])[0])  # warm-up (one-time kernel set-up), not timed
        model.predict(warm, torch.zeros(model.n_vertices, 3), 0, 20)
        model.predict_batch([warm, warm[:8000]], [torch.zeros(model.n_vertices, 3)] * 2, [0, 1], [20, 15])
        load_before = os.getloadavg()[0]
        outputs, times = {}, {}
        with tempfile.TemporaryDirectory() as tmp:
            for size in sizes:
                out = Path(tmp) / f"b{size}"
                start = time.perf_counter()
                files = _write_predictions(model, styles, jobs, out, "cpu", overwrite=True, progress=False,
                                           batch_size=size)
                times[size] = time.perf_counter() - start
                outputs[size] = [np.load(f) for f in files]
        templates = {c.stem: np.asarray(corpus.templates[c.identity], np.float32) for _, c in jobs}
        frames = [templates[c.stem] for _, c in jobs for _ in styles]
        scale = max(float(np.abs(p - t).max()) for p, t in zip(outputs[sizes[0]], frames))
        n = len(outputs[sizes[0]])
        for size in sizes:
            diff = max(float(np.abs(a - b).max()) for a, b in zip(outputs[size], outputs[sizes[0]]))
            rows.append((kind, size, n, times[size], n / times[size], times[sizes[0]] / times[size], diff / scale,
                         load_before, os.getloadavg()[0]))
        print(f"{kind} done", file=sys.stderr, flush=True)
    print("\n| model | batch size | predictions | s | predictions/s | speed-up | max diff / motion scale "
          "| load before / after |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, size, n, secs, rate, speedup, rel, before, after in rows:
        print(f"| {kind} | {size} | {n} | {secs:.2f} | {rate:.1f} | {speedup:.2f}x | {rel:.1e} | "
              f"{before:.2f} / {after:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
