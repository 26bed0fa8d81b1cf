"""Benchmark: talking-head training throughput (clips/s), the old path (one clip per step) against batches of clips;
and critic training throughput (windows/s), stage 2 "ours" with its frozen speech side re-run at every step (old)
against computed once (new), and stage 1 in float32 against ``--bf16``.

Usage: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_training.py [--sections talkers,critics]
       [--models faceformer,codetalker,selftalk] [--batches 4,8] [--threads 1,2] [--clips 24] [--steps 4] [--out CSV]
       [--critic-clips 16] [--critic-steps 8] [--critic-rounds 3] [--stage1-steps 3] [--bf16 auto|on|off]

Everything is measured in ONE process so that the ratios share the machine's state (it is shared: the load
average is printed before and after):

1. **Matmul peak**: a 2048 x 2048 fp32 and bf16 matrix product at each thread count (GFLOP/s, best of 3).

Every bf16 measurement (the bf16 matmul, the talkers' ``--bf16`` rows, stage 1's bf16 path) runs with ``--bf16 on``,
or with ``auto`` (the default) where the CPU multiplies bf16 natively (:func:`p3d.device.native_bf16`); elsewhere
(an AVX2-only CPU: bf16 is emulated there, ~18x slower than float32 in a matrix product) they are reported "n/a".
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
4. **Critics** (section ``critics``; ``cpu`` preset recipes: batch 64, one thread): the jobs of
   ``p3d train stage2 | no2d | syncnet3d`` (:func:`p3d.train.critics.build`) on a synthetic corpus
   (``tests/tiny_corpus.py``: 468 vertices, 25 fps, ``--critic-clips`` training clips of 3 s), stage 2 on an
   untrained ``cpu`` stage-1 model (a step's cost does not depend on the weights). An iteration is the trainer's
   (collate, :func:`p3d.train.critics.critic_step`, ``zero_grad``, backward, clipping, AdamW step). "ours" is
   timed on the uncached windows (``job.data.windows``: the speech encoder under no_grad at every step, the code
   before the cache) and on the cached ones (``job.data``), interleaved over ``--critic-rounds`` rounds of
   ``--critic-steps`` steps so that both see the same machine load; the one-off cache build is timed on its own.
   **Stage 1** (``p3d train stage1``, ``cpu`` recipe: batch 40, one thread) on the same corpus' lip video: the
   float32 step (the default, unchanged) and ``--bf16`` (``build(..., bf16=True)``: the forward under bf16
   autocast), interleaved over ``--critic-rounds`` rounds of ``--stage1-steps`` steps, both from the same initial
   weights; and the relative difference of the bf16 loss from float32 on one batch with the same masks.
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


def critic_throughput(root: Path, n_clips: int, steps: int, rounds: int, stage1_steps: int = 3,
                      bf16: bool = True) -> list[dict]:
    """Windows/s of the critic kinds' training iterations (section 4 of the module docstring)."""
    import torch

    from p3d.models.stage1 import Stage1Config, Stage1Model
    from p3d.train.critics import build, speech_embeddings
    from tiny_corpus import write_tiny_corpus

    torch.set_num_threads(1)
    write_tiny_corpus(root / "corpus", identities={"train": 4}, clips_per_identity=max(1, n_clips // 4),
                      seconds=3.0, n_vertices=468, lip_video=True)  # lip video: stage 1
    torch.manual_seed(0)
    Stage1Model(Stage1Config.from_preset("cpu")).save(root / "stage1.pt")
    rows = []
    for kind in ("stage2", "no2d", "syncnet3d"):
        job = build(kind, "cpu", root / "corpus", stage1=root / "stage1.pt" if kind == "stage2" else None)
        batch = job.cfg.batch_size
        settings = {"new": job.data}
        if kind == "stage2":
            settings = {"old": job.data.windows, "new": job.data}
            start = time.perf_counter()
            speech_embeddings(job.model, job.data.windows)
            cache_s = time.perf_counter() - start
        seconds = {k: 0.0 for k in settings}
        for r in range(rounds):
            for name, data in settings.items():  # interleaved: both paths see the same load
                seconds[name] += time_iterations(job.model, data, job.step_fn, batch, 1, steps, warmup=1 if r == 0
                                                 else 0) * steps * batch
        for name in settings:
            row = {"kind": "stage2 (ours)" if kind == "stage2" else kind,
                   "path": name if kind == "stage2" else "as before (speech side trained: no cache)",
                   "windows": len(job.data),
                   "batch": batch, "steps": steps * rounds,
                   "windows_per_s": steps * rounds * batch / seconds[name]}
            if kind == "stage2" and name == "new":
                row["path"] = "new (speech embeddings cached)"
                row["cache_build_s"] = cache_s
            elif kind == "stage2":
                row["path"] = "old (speech encoder every step)"
            rows.append(row)
    rows.extend(stage1_throughput(root / "corpus", stage1_steps, rounds, bf16=bf16))
    return rows


def stage1_throughput(corpus: Path, steps: int, rounds: int, bf16: bool = True) -> list[dict]:
    """Windows/s of stage-1 training iterations, float32 (old: the default) against ``bf16`` (new; skipped when
    ``bf16`` is False)."""
    import torch

    from p3d.train.critics import build
    from p3d.train.trainer import batch_indices

    torch.set_num_threads(1)
    names = ("fp32", "bf16") if bf16 else ("fp32",)
    jobs = {name: build("stage1", "cpu", corpus, bf16=name == "bf16") for name in names}
    if bf16:
        jobs["bf16"].model.load_state_dict(jobs["fp32"].model.state_dict())
    batch = jobs["fp32"].cfg.batch_size
    seconds = {k: 0.0 for k in jobs}
    for r in range(rounds):
        for name, job in jobs.items():  # interleaved: both see the same load
            seconds[name] += time_iterations(job.model, job.data, job.step_fn, batch, 1, steps,
                                             warmup=1 if r == 0 else 0) * steps * batch
    fresh = {k: build("stage1", "cpu", corpus, bf16=k == "bf16") for k in jobs}  # untrained: the same weights
    if bf16:
        fresh["bf16"].model.load_state_dict(fresh["fp32"].model.state_dict())
    one = fresh["fp32"].data.collate(batch_indices(len(fresh["fp32"].data), batch, 0, 0))
    loss = {k: float(j.step_fn(j.model, one, torch.Generator().manual_seed(0))[0].detach())
            for k, j in fresh.items()}
    rows = []
    for name, job in jobs.items():
        rows.append({"kind": "stage1", "path": "old (float32, the default)" if name == "fp32" else
                     "new (--bf16: forward under bf16 autocast)", "windows": len(job.data), "batch": batch,
                     "steps": steps * rounds, "windows_per_s": steps * rounds * batch / seconds[name],
                     "bf16_rel_loss_diff": abs(loss["bf16"] - loss["fp32"]) / abs(loss["fp32"])
                     if name == "bf16" else float("nan")})
    return rows


def print_critics(rows: list[dict]) -> None:
    by = {(r["kind"], r["path"].split()[0]): r for r in rows}
    print("\n| critic kind | path | batch | windows/s (1 thread) | ratio new / old | one-off cache build "
          "(break-even) / bf16 loss rel. diff |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        old = by.get((r["kind"], "old"))
        ratio = f"**{r['windows_per_s'] / old['windows_per_s']:.1f}x**" if old is not None and r is not old else ""
        cache = ""
        if "cache_build_s" in r and old is not None:
            saved = r["batch"] / old["windows_per_s"] - r["batch"] / r["windows_per_s"]  # seconds per step
            cache = (f"{r['cache_build_s']:.1f} s for {r['windows']} windows (after {r['cache_build_s'] / saved:.0f} "
                     f"steps)")
        if r.get("bf16_rel_loss_diff", float("nan")) == r.get("bf16_rel_loss_diff"):  # not NaN
            cache = f"{r['bf16_rel_loss_diff']:.1e}"
        print(f"| {r['kind']} | {r['path']} | {r['batch']} | {r['windows_per_s']:.0f} | {ratio} | {cache} |")


def talkers(args, batches: list[int], threads: list[int], began: float) -> list[dict]:
    """Sections 1-3 of the module docstring: matmul peaks, talkers old vs batched, FLOPs."""
    import torch

    from p3d.losses.perceptual_loss import PerceptualLoss
    from p3d.models.mesh_encoder import MeshEncoderConfig
    from p3d.models.speech_mesh import SpeechMeshModel
    from p3d.models.stage1 import Stage1Config, Stage1Model
    from p3d.train.talker import TalkerStep

    peaks = {}
    for t in threads:
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            peaks[name, t] = matmul_gflops(dtype, t) if name == "fp32" or args.bf16 else float("nan")
    print("\n| matmul 2048^2 | " + " | ".join(f"{t} thread(s)" for t in threads) + " |")
    print("|---|" + "---|" * len(threads))
    for name in ("fp32", "bf16"):
        print(f"| {name} GFLOP/s | " + " | ".join(_fmt(peaks[name, t], ".0f") for t in threads) + " |")

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
            if percp is None or not args.bf16:
                row["new_bf16_s_per_clip"] = row["bf16_rel_loss_diff"] = float("nan")
            else:
                row["new_bf16_s_per_clip"] = time_iterations(model, data, TalkerStep(percp, bf16=True), b, t,
                                                             args.steps)
                row["bf16_rel_loss_diff"] = bf16_loss_difference(model, data, percp, b)
            torch.set_num_threads(t)
            row["flops_per_clip"] = step_flops(model, data, TalkerStep(percp), b)
            rows.append(row)
            print(f"# {kind} done ({time.time() - began:.0f} s)", file=sys.stderr, flush=True)
    print("\n| model | old: clips/s (B=1, 1 thread) | new: clips/s (B, threads) | **ratio** | percp overhead old / new "
          "| --bf16 (critic) clips/s (percp rel. diff) | GFLOP per clip | achieved fp32 fraction old / new |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        old, new = 1 / r["old_s_per_clip"], 1 / r["new_s_per_clip"]
        gflop = r["flops_per_clip"] / 1e9
        print(f"| {r['model']} | {old:.1f} | {new:.1f} (B={r['best_batch']}, {r['best_threads']}) "
              f"| **{new / old:.1f}x** | "
              f"{r['old_s_per_clip'] / r['old_nopercp_s_per_clip']:.2f}x / "
              f"{r['new_s_per_clip'] / r['new_nopercp_s_per_clip']:.2f}x | "
              f"{_fmt(1 / r['new_bf16_s_per_clip'], '.1f')} "
              f"({_fmt(r['bf16_rel_loss_diff'], '.1e')}) | {gflop:.3f} | "
              f"{gflop * old / peaks['fp32', 1]:.1%} / {gflop * new / peaks['fp32', r['best_threads']]:.1%} |")
    print("\n| model | " + " | ".join(f"B={b}, {t} thr" for t in threads for b in batches) + " |")
    print("|---|" + "---|" * (len(threads) * len(batches)))
    for r in rows:
        print(f"| {r['model']} (clips/s) | " + " | ".join(f"{1 / r[f'B{b}_t{t}_s_per_clip']:.1f}"
                                                        for t in threads for b in batches) + " |")
    return rows


def _fmt(value: float, spec: str) -> str:
    """``value`` formatted, or "n/a" for NaN (a measurement not made, e.g. bf16 on a CPU without it)."""
    return "n/a" if value != value else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default="talkers,critics", help="comma-separated: talkers, critics")
    parser.add_argument("--critic-clips", type=int, default=16, help="training clips of the critics' corpus")
    parser.add_argument("--critic-steps", type=int, default=8, help="timed critic iterations per round and path")
    parser.add_argument("--critic-rounds", type=int, default=3, help="interleaved rounds (old, new) of the critics")
    parser.add_argument("--stage1-steps", type=int, default=3,
                        help="timed stage-1 iterations per round and path (float32, bf16)")
    parser.add_argument("--models", default="faceformer,codetalker,selftalk",
                        help="comma-separated: faceformer, codetalker (speech stage), codetalker-vqvae, selftalk")
    parser.add_argument("--batches", default="4,8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--steps", type=int, default=4, help="timed iterations per batched setting (old: 2x)")
    parser.add_argument("--old-steps", type=int, default=None, help="timed iterations of the old path (default 2x)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as CSV")
    parser.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                        help="the bf16 measurements: auto (default) where the CPU multiplies bf16 natively")
    args = parser.parse_args()
    import pandas as pd
    import torch

    from p3d.atomic import atomic_open
    from p3d.device import native_bf16

    native = native_bf16("cpu")
    args.bf16 = args.bf16 == "on" or (args.bf16 == "auto" and native)

    batches = [int(b) for b in args.batches.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    load0 = os.getloadavg()
    began = time.time()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), "?")
    print(f"# machine: {model_name}, {os.cpu_count()} CPUs, torch {torch.__version__}, python "
          f"{platform.python_version()}, native bf16 {'yes' if native else 'no'} (bf16 measured: "
          f"{'yes' if args.bf16 else 'no'}); load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    sections = set(args.sections.split(","))
    if sections - {"talkers", "critics"}:
        parser.error(f"--sections: expected talkers and/or critics, got {args.sections}")
    rows = talkers(args, batches, threads, began) if "talkers" in sections else []
    critic_rows = []
    if "critics" in sections:
        with tempfile.TemporaryDirectory() as tmp:
            critic_rows = critic_throughput(Path(tmp), args.critic_clips, args.critic_steps, args.critic_rounds,
                                            args.stage1_steps, bf16=args.bf16)
        print_critics(critic_rows)
    load1 = os.getloadavg()
    print(f"\n# {time.time() - began:.0f} s; load average at the end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if args.out is not None:
        with atomic_open(args.out, "w", newline="") as fh:  # an interrupted run never leaves a half CSV
            pd.concat([pd.DataFrame(rows), pd.DataFrame(critic_rows)]).to_csv(fh, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
