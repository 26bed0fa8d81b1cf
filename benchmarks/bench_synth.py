"""Benchmark: generating the synthetic corpora (synth-voca, synth-mead, synth-lrs3) and rendering mouth crops.

Usage: .venv/bin/python benchmarks/bench_synth.py [--preset cpu] [--workers 2]
Builds all three corpora from scratch in a temporary folder and reports wall time per corpus and in
total, clips per second, and the mouth-crop renderer's ms per frame.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import json

    import numpy as np

    from p3d.corpus import Corpus
    from p3d.synth import corpus as sc
    from p3d.synth import face
    from p3d.synth.mouth_crop import render_mouth_crops

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()}")
    total = 0.0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in sc.CORPORA:
            t0 = time.perf_counter()
            root = sc.build(name, args.preset, tmp, workers=args.workers, progress=False)
            dt = time.perf_counter() - t0
            total += dt
            meta = json.loads((root / "meta.json").read_text())
            rows.append((name, meta["n_clips"], meta["hours"], dt))
        c = Corpus.open(root)  # synth-lrs3
        clip = c.clips[0]
        verts = c.vertices(clip)
        variant = c.meta["spec"]["variant"]
        size = c.meta["lip_video"]["size"]
        render_mouth_crops(verts[:2], face.faces(variant), lip_vertices=c.topology.lips, size=size)  # JIT
        t0 = time.perf_counter()
        reps = 5
        for _ in range(reps):
            render_mouth_crops(verts, face.faces(variant), lip_vertices=c.topology.lips, size=size)
        crop_ms = (time.perf_counter() - t0) / (reps * len(verts)) * 1000
    print(f"| corpus | clips | hours | wall (s) | clips/s |\n|---|---|---|---|---|")
    for name, n, h, dt in rows:
        print(f"| {name} | {n} | {h:.3f} | {dt:.1f} | {n / dt:.1f} |")
    print(f"| **all three** | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows):.3f} | **{total:.1f}** | "
          f"{sum(r[1] for r in rows) / total:.1f} |")
    print(f"mouth crops ({size}x{size}, {variant} mesh): {crop_ms:.2f} ms/frame; load after: {os.getloadavg()}")
    del np


if __name__ == "__main__":
    main()
