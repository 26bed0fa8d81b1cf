"""Benchmark: the mouth-crop rasteriser of the 2D lip video against pyvista off-screen rendering.

Usage: .venv/bin/python benchmarks/bench_mouth_crop.py [--sizes 96 160] [--variants base dense] [--no-pyvista]
Prints CPU milliseconds per frame (``time.process_time``: all threads of this process, so a shared
machine's load does not count) of :func:`p3d.synth.mouth_crop.render_mouth_crops` (supersample 1 and 2)
and of pyvista off-screen (:func:`p3d.viz.render.iter_frames`, 96 px only) on 50-frame clips of the
synthetic face with a moving jaw, best of ``--repeats``: the table of :mod:`p3d.synth.mouth_crop`.
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

import numpy as np


def measure_speed(vertices: np.ndarray, faces: np.ndarray, lip_vertices: Sequence[int] | np.ndarray,
                  size: int = 96, n_frames: int = 50, repeats: int = 5,
                  pyvista: bool = True) -> dict[str, float]:
    """CPU milliseconds per frame of the rasteriser (supersample 1 and 2) and of pyvista off-screen at
    ``size`` x ``size``, on ``n_frames`` frames of ``vertices`` (V, 3) with a moving jaw (best of ``repeats``)."""
    from p3d.synth.mouth_crop import CropWindow, render_mouth_crops

    base = np.asarray(vertices, dtype=np.float64)
    window = CropWindow.from_lips(base, lip_vertices)
    seq = np.repeat(base[None], n_frames, axis=0)
    below = base[:, 1] < window.cy
    seq[:, below, 1] -= 0.004 * np.sin(np.linspace(0, np.pi, n_frames))[:, None]
    render_mouth_crops(seq[:2], faces, window, size=size)  # compile / load the numba cache
    result = {}
    for ss in (1, 2):
        best = np.inf
        for _ in range(repeats):
            t0 = time.process_time()
            render_mouth_crops(seq, faces, window, lip_vertices=lip_vertices, size=size, supersample=ss)
            best = min(best, time.process_time() - t0)
        result[f"raster_ss{ss}_ms"] = 1000 * best / n_frames
    if pyvista:
        from p3d.viz.render import Camera, iter_frames

        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
        cam = Camera((window.cx, window.cy, float(base[:, 2].max()) + 0.3), (window.cx, window.cy, 0.0),
                     view_angle=float(np.degrees(2 * np.arctan(window.half_size / 0.3))))
        t0 = time.process_time()
        frames = iter_frames(seq, faces, size=(size, size), camera=cam, check=False)
        next(frames)
        t1 = time.process_time()
        for _ in frames:
            pass
        result["pyvista_setup_ms"] = 1000 * (t1 - t0)
        result["pyvista_ms"] = 1000 * (time.process_time() - t1) / (n_frames - 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 160])
    parser.add_argument("--variants", nargs="+", default=["base", "dense"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-pyvista", action="store_true")
    args = parser.parse_args()

    from p3d.synth import face

    print(f"{os.cpu_count()} cores; load {os.getloadavg()}")
    print("| variant | size | raster ss1 (ms) | raster ss2 (ms) | pyvista (ms) | pyvista set-up (ms) |")
    print("|---|---|---|---|---|---|")
    for variant in args.variants:
        for size in args.sizes:
            r = measure_speed(face.template(variant), face.faces(variant), face.face_topology(variant).lips,
                              size=size, repeats=args.repeats, pyvista=not args.no_pyvista and size == 96)
            pv = (f"{r['pyvista_ms']:.2f} | {r['pyvista_setup_ms']:.0f}" if "pyvista_ms" in r else "- | -")
            print(f"| {variant} | {size} | {r['raster_ss1_ms']:.2f} | {r['raster_ss2_ms']:.2f} | {pv} |")


if __name__ == "__main__":
    main()
