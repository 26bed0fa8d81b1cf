"""Benchmark: talking-head training throughput (clips/s), the old path (one clip per step) against batches of clips.

Usage: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_training.py [--models faceformer,codetalker,selftalk]
       [--batches 4,8] [--threads 1,2] [--clips 24] [--steps 4] [--out CSV]

Everything is measured in ONE process so that the ratios share the machine's state (it is shared: the load
average is printed before and after):

1. **Matmul peak**: a 2048 x 2048 fp32 and bf16 matrix product at each thread count (GFLOP/s, best of 3).
2. **Per talker** (``cpu`` preset, an untrained ``cpu``-preset "ours" critic, perceptual loss on, weight 1e-7):
   a synthetic corpus written with ``tests/tiny_corpus.py`` (468 vertices, 30 fps, ``--clips`` training clips
   cut to 55-75 frames). An iteration is the trainer's: collate, :class:`p3d.train.talker.TalkerStep` (model
   loss + perceptual loss), ``zero_grad``, backward, clipping at 1.0, AdamW step. Settings:

   - ``old``: one clip per step, the audio front-end computed at every step (the critic's speech embeddings
     cached, as before), one thread; and the same without the perceptual loss (its overhead);
   - ``new``: B clips per step (:class:`p3d.models.talker.ClipBatch`), the mel front-end cached, for each B
     and thread count; with and without the perceptual loss; and ``--bf16`` (the critic pass under bf16 autocast)
     at the best setting, with the relative difference of the unweighted perceptual loss from fp32 on the same batch.

   CodeTalker is timed in its speech stage (where the perceptual loss applies); ``codetalker-vqvae`` times its
   first stage (the motion VQ-VAE, trained without the perceptual loss: its "percp" columns repeat the plain ones
   and bf16 is not run).
3. **FLOPs** of one batched iteration (``torch.utils.flop_counter.FlopCounterMode``: matrix products and
   convolutions, forward and backward), per clip, and the achieved fraction of the fp32 matmul peak.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def matmul_gflops(dtype, threads: int, n: int = 2048, repeats: int = 3) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def make_data(root: Path, n_clips: int, critic):
    import numpy as np

    from p3d.losses.perceptual_loss import PerceptualLoss
    from p3d.talker_data import TalkerClips
    from tiny_corpus import write_tiny_corpus

    write_tiny_corpus(root, kind="vocaset", fps=30, identities={"train": 4, "test": 1},
                      clips_per_identity=max(1, n_clips // 4), seconds=2.5, n_vertices=468, lip_video=False)
    data = TalkerClips(root, "train", perceptual=PerceptualLoss(critic))
    rng = np.random.default_rng(0)
    for it in data.items:  # lengths 55-75 frames, as a corpus of sentences of different lengths
        t = int(rng.integers(55, 76))
        it.vertices = it.vertices[:t]
        it.audio = it.audio[: int(t / data.fps * 16000)]
        it.phonemes = None if it.phonemes is None else it.phonemes[:t]
        it.speech = it.speech[: t - 4]
    return data


def build_model(kind: str, data):
    import torch

    from p3d.train.talker import model_config
    from p3d.models.talker import talker_class

    torch.manual_seed(0)
    name = "codetalker" if kind == "codetalker-vqvae" else kind
    model = talker_class(name)(model_config(name, "cpu", data))
    if kind == "codetalker":
        model.set_stage("speech")  # "codetalker-vqvae": the first stage, where a new model starts
    return model


def time_iterations(model, data, step, batch: int, threads: int, steps: int, warmup: int = 1) -> float:
    """Seconds per clip over ``steps`` timed iterations of ``batch`` clips."""
    import torch

    torch.set_num_threads(threads)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    n = len(data)

    def iteration(i: int) -> None:
        idx = [(i * batch + k) % n for k in range(batch)]
        loss, _ = step(model, data.collate(idx), torch.Generator())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    model.train()
    for i in range(warmup):
        iteration(i)
    start = time.perf_counter()
    for i in range(steps):
        iteration(warmup + i)
    return (time.perf_counter() - start) / (steps * batch)


def step_flops(model, data, step, batch: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss, _ = step(model, data.collate(list(range(batch))), torch.Generator())
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


def bf16_loss_difference(model, data, perceptual, batch: int) -> float:
    import torch

    from p3d.train.talker import TalkerStep

    model.eval()  # no dropout: the same computation in both precisions (grad on: the training code path)
    b = data.collate(list(range(batch)))
    fp32 = TalkerStep(perceptual)(model, b, torch.Generator())[1]["percp"]
    bf16 = TalkerStep(perceptual, bf16=True)(model, b, torch.Generator())[1]["percp"]
    model.train()
    return abs(bf16 - fp32) / abs(fp32)  # the unweighted InfoNCE (weighted, it is 1e-7 of the total)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="faceformer,codetalker,selftalk",
                        help="comma-separated: faceformer, codetalker (speech stage), codetalker-vqvae, selftalk")
    parser.add_argument("--batches", default="4,8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--steps", type=int, default=4, help="timed iterations per batched setting (old: 2x)")
    parser.add_argument("--old-steps", type=int, default=None, help="timed iterations of the old path (default 2x)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as CSV")
    args = parser.parse_args()
    import pandas as pd
    import torch

    from p3d.losses.perceptual_loss import PerceptualLoss
    from p3d.models.mesh_encoder import MeshEncoderConfig
    from p3d.models.speech_mesh import SpeechMeshModel
    from p3d.models.stage1 import Stage1Config, Stage1Model
    from p3d.train.talker import TalkerStep

    batches = [int(b) for b in args.batches.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    load0 = os.getloadavg()
    began = time.time()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), "?")
    print(f"# machine: {model_name}, {os.cpu_count()} CPUs, torch {torch.__version__}, python "
          f"{platform.python_version()}; load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    peaks = {}
    for t in threads:
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            peaks[name, t] = matmul_gflops(dtype, t)
    print("\n| matmul 2048^2 | " + " | ".join(f"{t} thread(s)" for t in threads) + " |")
    print("|---|" + "---|" * len(threads))
    for name in ("fp32", "bf16"):
        print(f"| {name} GFLOP/s | " + " | ".join(f"{peaks[name, t]:.0f}" for t in threads) + " |")

    torch.manual_seed(0)
    critic = SpeechMeshModel.ours(Stage1Model(Stage1Config.from_preset("cpu")),
                                  MeshEncoderConfig.from_preset("cpu", n_vertices=468))
    perceptual = PerceptualLoss(critic)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp) / "corpus", args.clips, critic)
        for kind in args.models.split(","):
            model = build_model(kind, data)
            front_end = model.audio_front_end()
            row = {"model": kind, "clips": len(data)}
            percp = None if kind == "codetalker-vqvae" else perceptual  # stage 1 trains without it
            data.cache_audio_features(None)
            old_steps = args.old_steps or 2 * args.steps
            row["old_s_per_clip"] = time_iterations(model, data, TalkerStep(percp), 1, 1, old_steps)
            row["old_nopercp_s_per_clip"] = time_iterations(model, data, TalkerStep(None), 1, 1, old_steps)
            data.cache_audio_features(front_end)
            best = None
            for t in threads:
                for b in batches:
                    s = time_iterations(model, data, TalkerStep(percp), b, t, args.steps)
                    row[f"B{b}_t{t}_s_per_clip"] = s
                    if best is None or s < best[0]:
                        best = (s, b, t)
            s, b, t = best
            row.update(best_batch=b, best_threads=t, new_s_per_clip=s)
            row["new_nopercp_s_per_clip"] = time_iterations(model, data, TalkerStep(None), b, t, args.steps)
            if percp is None:
                row["new_bf16_s_per_clip"] = row["bf16_rel_loss_diff"] = float("nan")
            else:
                row["new_bf16_s_per_clip"] = time_iterations(model, data, TalkerStep(percp, bf16=True), b, t,
                                                             args.steps)
                row["bf16_rel_loss_diff"] = bf16_loss_difference(model, data, percp, b)
            torch.set_num_threads(t)
            row["flops_per_clip"] = step_flops(model, data, TalkerStep(percp), b)
            rows.append(row)
            print(f"# {kind} done ({time.time() - began:.0f} s)", file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    df = pd.DataFrame(rows)
    print("\n| model | old: clips/s (B=1, 1 thread) | new: clips/s (B, threads) | **ratio** | percp overhead old / new "
          "| --bf16 (critic) clips/s (percp rel. diff) | GFLOP per clip | achieved fp32 fraction old / new |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        old, new = 1 / r["old_s_per_clip"], 1 / r["new_s_per_clip"]
        gflop = r["flops_per_clip"] / 1e9
        print(f"| {r['model']} | {old:.1f} | {new:.1f} (B={r['best_batch']}, {r['best_threads']}) "
              f"| **{new / old:.1f}x** | "
              f"{r['old_s_per_clip'] / r['old_nopercp_s_per_clip']:.2f}x / "
              f"{r['new_s_per_clip'] / r['new_nopercp_s_per_clip']:.2f}x | {1 / r['new_bf16_s_per_clip']:.1f} "
              f"({r['bf16_rel_loss_diff']:.1e}) | {gflop:.3f} | "
              f"{gflop * old / peaks['fp32', 1]:.1%} / {gflop * new / peaks['fp32', r['best_threads']]:.1%} |")
    print("\n| model | " + " | ".join(f"B={b}, {t} thr" for t in threads for b in batches) + " |")
    print("|---|" + "---|" * (len(threads) * len(batches)))
    for r in rows:
        print(f"| {r['model']} (clips/s) | " + " | ".join(f"{1 / r[f'B{b}_t{t}_s_per_clip']:.1f}"
                                                        for t in threads for b in batches) + " |")
    print(f"\n# {time.time() - began:.0f} s; load average at the end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if args.out is not None:
        df.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
