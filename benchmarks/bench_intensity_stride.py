"""Notebook 04's Fig. 5b at two window strides: seconds and the intensity statistics per critic.

Embeds every synth-mead window (a window every ``stride`` frames) with each trained critic of a checkout's
``runs/<preset>`` and the raw-input control, exactly as notebook 04's Fig. 5b cell does
(:func:`p3d.windows.windows_for_model`, :func:`p3d.analysis.representation.embed_windows`,
:func:`p3d.analysis.representation.intensity_direction`), one torch thread, and prints a Markdown table: windows,
seconds, the level means' projections, the leave-one-identity-out ordered fraction and the mean direction cosine,
per critic and stride::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_intensity_stride.py --root CHECKOUT --preset full --strides 5,15

``--root``: a checkout where ``make figures PRESET=<preset>`` has trained the critics (``runs/<preset>``) and made
the corpora (``data/<preset>``); the fbank cache there is used (warm after notebook 04 ran).
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
    parser.add_argument("--strides", default="5,15", help="comma-separated window strides (frames)")
    args = parser.parse_args(argv)
    try:
        strides = [int(s) for s in args.strides.split(",")]
    except ValueError:
        parser.error(f"--strides {args.strides}: expected comma-separated integers")
    if any(s < 1 for s in strides):
        parser.error(f"--strides {args.strides}: expected positive integers")
    if not (args.root / "runs" / args.preset).is_dir():
        parser.error(f"--root {args.root}: no runs/{args.preset} (run make figures PRESET={args.preset} there)")
    os.environ["P3D_ROOT"] = str(args.root.resolve())
    import torch

    torch.set_num_threads(1)
    from p3d.analysis.representation import embed_windows, intensity_direction, raw_features
    from p3d.corpus import Corpus
    from p3d.experiments import layout
    from p3d.models.speech_mesh import load_critic
    from p3d.paths import output_dirs
    from p3d.train import api
    from p3d.windows import windows_for_model

    dirs = output_dirs(args.preset)
    runs, data = dirs.runs / args.preset, dirs.data / args.preset
    lrs3, mead = Corpus.open(data / "synth-lrs3"), Corpus.open(data / "synth-mead")
    cache = layout(dirs, args.preset).fbank_cache
    models = {name: load_critic(api.train_critic(name, args.preset, data / "synth-lrs3", runs, progress=False))
              for name in api.CRITICS}
    vertex_mean, _ = windows_for_model(models["ours"], lrs3, "train", stride=5, cache_dir=cache).vertex_statistics()
    models["raw inputs (control)"] = raw_features(lrs3.topology.n_vertices, vertex_mean)
    print("| critic | stride | windows | s | level means (low .. high) | LOIO ordered fraction | direction cosine |")
    print("|---|---|---|---|---|---|---|")
    for name, model in models.items():
        for stride in strides:
            start = time.perf_counter()
            e = embed_windows(model, windows_for_model(model, mead, None, stride=stride, cache_dir=cache))
            r = intensity_direction(e["speech"], e["level"], e["identity"])
            seconds = time.perf_counter() - start
            means = " / ".join(f"{v:+.4f}" for v in r["level_projection"].values())
            print(f"| {name} | {stride} | {len(e['speech'])} | {seconds:.1f} | {means} | "
                  f"{r['loio_ordered_fraction']:.3g} | {r['direction_cosine_mean']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
