"""Benchmark (paper Table S8): the perceptual loss' training overhead per talker at a preset.

Usage: .venv/bin/python benchmarks/bench_talkers.py [--preset cpu] [--data data/cpu/synth-voca]
       [--critic runs/cpu/ours/final.pt] [--models faceformer,codetalker,selftalk] [--threads 1,2]
       [--steps 20] [--warmup 3] [--rounds 1] [--max-load 1.5] [--wait 1800] [--device cpu] [--wav2vec2 DIR]
       [--recogniser DIR] [--out DIR]

1. Waits until the 1-minute load average is below ``--max-load`` (polling every 30 s, at most ``--wait``
   s; exits with status 3 otherwise, unless ``--force``): the machine is shared.
2. Per thread count and model: :func:`p3d.analysis.training_cost.iteration_cost` (each setting in a
   fresh process: the trainer's iteration without the loss, with the loss and cached speech embeddings,
   with the loss embedding the speech every step), ``--rounds`` times (the per-setting mean over rounds
   is reported); the ratio with / without the loss; peak memory; the load average before and after.
3. The loss alone (where the time goes): forward + backward of ``PerceptualLoss.unweighted`` on real
   training clips' vertices with the cached speech embeddings, with the stage-2 frame-token sharing and
   with the generic per-window path (same value), and the speech-side embedding the no-cache setting
   adds (``speech_embeddings`` of the clip's fbank windows), in ms per clip.

Prints markdown tables; with ``--out`` also writes ``talker_cost.csv`` and ``loss_profile.csv`` there.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path


def wait_for_load(max_load: float, wait_s: float) -> float:
    """Block until the 1-minute load average is below ``max_load``; return it (or the last seen)."""
    deadline = time.time() + wait_s
    load = os.getloadavg()[0]
    while load >= max_load and time.time() < deadline:
        print(f"load {load:.2f} >= {max_load}: waiting", file=sys.stderr, flush=True)
        time.sleep(30)
        load = os.getloadavg()[0]
    return load


def loss_profile(data_dir: str, critic_ckpt: str, threads: int, clips: int = 12, repeats: int = 5) -> list[dict]:
    """ms per clip of the perceptual loss' forward+backward (shared / generic path) and of the speech side."""
    import numpy as np
    import torch

    from p3d.audio import speech_windows
    from p3d.corpus import Corpus
    from p3d.losses.perceptual_loss import PerceptualLoss
    from p3d.models.speech_mesh import load_critic
    from p3d.talker_data import AUDIO_RATE

    torch.set_num_threads(threads)
    corpus = Corpus.open(data_dir)
    critic = load_critic(critic_ckpt)
    fast = PerceptualLoss(critic, weight=1.0)
    slow = PerceptualLoss(critic, weight=1.0, share_frame_tokens=False)
    items = []
    for clip in corpus.select("train")[:clips]:
        verts = torch.from_numpy(corpus.vertices(clip).astype(np.float32))
        audio, _ = corpus.audio(clip)
        if int(corpus.meta.get("sample_rate", AUDIO_RATE)) != AUDIO_RATE:
            raise SystemExit("loss profile: expects 16 kHz audio")
        windows = speech_windows(audio, AUDIO_RATE, corpus.model_fps, n_frames=verts.shape[0])
        items.append((verts, torch.from_numpy(windows), fast.speech_embeddings(windows)))

    def mesh_side(loss_fn) -> float:
        start = time.perf_counter()
        for verts, _, speech in items:
            v = verts.clone().requires_grad_(True)
            loss_fn.unweighted(v, speech).backward()
        return (time.perf_counter() - start) / len(items) * 1e3

    def speech_side() -> float:
        start = time.perf_counter()
        for _, windows, _ in items:
            fast.speech_embeddings(windows)
        return (time.perf_counter() - start) / len(items) * 1e3

    for verts, _, speech in items[:2]:  # warm-up, and the two paths agree
        a, b = fast.unweighted(verts, speech), slow.unweighted(verts, speech)
        if not torch.allclose(a, b, rtol=1e-5, atol=1e-6):
            raise SystemExit(f"loss profile: the shared-token path gives {a.item()} != {b.item()}")
    times: dict[str, list[float]] = {"shared": [], "generic": [], "speech": []}
    for _ in range(repeats):  # interleaved, so that load changes hit all three alike
        times["shared"].append(mesh_side(fast))
        times["generic"].append(mesh_side(slow))
        times["speech"].append(speech_side())
    frames = float(np.mean([v.shape[0] for v, _, _ in items]))
    rows = []
    for name, label in (("shared", "loss fwd+bwd, frame tokens shared (default)"),
                        ("generic", "loss fwd+bwd, generic per-window path"),
                        ("speech", "speech embeddings of the clip (added by no cache)")):
        rows.append({"threads": threads, "part": label, "ms_per_clip": float(np.median(times[name])),
                     "clips": len(items), "mean_frames": frames})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--data", default="data/cpu/synth-voca")
    parser.add_argument("--critic", default="runs/cpu/ours/final.pt")
    parser.add_argument("--models", default="faceformer,codetalker,selftalk")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-load", type=float, default=1.5)
    parser.add_argument("--wait", type=float, default=1800)
    parser.add_argument("--force", action="store_true", help="run even if the load stays high")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--wav2vec2", default=None, help="local wav2vec2 folder (the paper preset's audio encoder)")
    parser.add_argument("--recogniser", default=None, help="SelfTalk's local Wav2Vec2ForCTC folder (paper preset)")
    parser.add_argument("--no-profile", action="store_true", help="skip the loss-alone profile")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import pandas as pd
    import torch

    from p3d.analysis.training_cost import iteration_cost, table_s8
    from p3d.atomic import atomic_open
    from p3d.tables import to_markdown

    load = wait_for_load(args.max_load, args.wait)
    if load >= args.max_load and not args.force:
        print(f"load average {load:.2f} stayed >= {args.max_load}; not timing (use --force)", file=sys.stderr)
        return 3
    started = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"# bench_talkers {started}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, preset {args.preset}, data {args.data}, critic {args.critic}, "
          f"steps {args.steps} (+{args.warmup} warm-up), rounds {args.rounds}, load at start {load:.2f}")
    frames = []
    for threads in [int(t) for t in args.threads.split(",")]:
        for model in args.models.split(","):
            for r in range(args.rounds):
                before = os.getloadavg()[0]
                res = pd.DataFrame(iteration_cost(model, args.preset, args.data, args.critic, steps=args.steps,
                                                  warmup=args.warmup, seed=0, threads=threads, device=args.device,
                                                  wav2vec2=args.wav2vec2, recogniser=args.recogniser))
                res["round"], res["load_before"], res["load_after"] = r, before, os.getloadavg()[0]
                frames.append(res)
                print(f"  {model}, {threads} thread(s), round {r}: "
                      + ", ".join(f"{s} {t:.3f} s" for s, t in zip(res["setting"], res["time_s"]))
                      + f" (load {before:.2f} -> {res['load_after'].iloc[0]:.2f})", file=sys.stderr, flush=True)
    raw = pd.concat(frames, ignore_index=True)
    mean = (raw.groupby(["threads", "model", "setting"], sort=False)
               .agg(time_s=("time_s", "mean"), time_s_std=("time_s_std", "mean"), peak_mb=("peak_mb", "mean"),
                    step_mb=("step_mb", "mean"), setup_s=("setup_s", "mean"), mean_frames=("mean_frames", "mean"),
                    load_before=("load_before", "min"), load_after=("load_after", "max"),
                    device=("device", "first"), mem_method=("mem_method", "first"))
               .reset_index())
    rows = []
    for (threads, model), sub in mean.groupby(["threads", "model"], sort=False):
        t = dict(zip(sub["setting"], sub["time_s"]))
        mem = dict(zip(sub["setting"], sub["peak_mb"]))
        step = dict(zip(sub["setting"], sub["step_mb"]))
        setup = dict(zip(sub["setting"], sub["setup_s"]))
        rows.append({
            "model": model, "threads": threads,
            "s/iter without": t.get("none"), "s/iter cache": t.get("cache"), "s/iter no cache": t.get("nocache"),
            "ratio cache": t.get("cache", float("nan")) / t["none"],
            "ratio no cache": t.get("nocache", float("nan")) / t["none"],
            "peak MiB without / cache / no cache": f"{mem.get('none', 0):.0f} / {mem.get('cache', 0):.0f} / "
                                                  f"{mem.get('nocache', 0):.0f}",
            "iter MiB without / cache / no cache": f"{step.get('none', 0):.0f} / {step.get('cache', 0):.0f} / "
                                                  f"{step.get('nocache', 0):.0f}",
            "set-up s without / cache / no cache": f"{setup.get('none', 0):.0f} / {setup.get('cache', 0):.0f} / "
                                                   f"{setup.get('nocache', 0):.0f}",
            "frames/clip": float(sub["mean_frames"].mean()),
            "load": f"{sub['load_before'].min():.2f}-{sub['load_after'].max():.2f}",
        })
    summary = pd.DataFrame(rows)
    print("\n## Per-iteration cost\n")
    print(to_markdown(summary, digits=3))
    print(f"\nmemory: {mean['mem_method'].iloc[0]}; device: {mean['device'].iloc[0]}")
    profile = None
    if not args.no_profile:
        prof_rows = []
        for threads in [int(t) for t in args.threads.split(",")]:
            prof_rows += loss_profile(args.data, args.critic, threads)
        profile = pd.DataFrame(prof_rows)
        print("\n## The loss alone (ms per training clip)\n")
        print(to_markdown(profile, digits=3))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        tables = {"talker_cost_raw.csv": raw, "talker_cost.csv": summary,
                  "table_s8.csv": table_s8(mean[mean["threads"] == mean["threads"].iloc[0]].assign(
                      threads=mean["threads"].iloc[0]))}
        if profile is not None:
            tables["loss_profile.csv"] = profile
        for name, table in tables.items():
            with atomic_open(args.out / name, "w", newline="") as fh:  # an interrupted run never leaves a half CSV
                table.to_csv(fh, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
