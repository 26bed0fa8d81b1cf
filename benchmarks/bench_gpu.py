"""Benchmark on one CUDA GPU: the training step times of the ``paper`` preset (paper Sec. 4 and Table S8) and of the
``full`` preset's models, against the card's measured matrix-product and copy ceilings.

Usage (on a machine with a CUDA GPU; nothing else in p3d needs one):
    python benchmarks/bench_gpu.py [--sections ceilings,critics,talkers-paper,talkers-full,train-smoke]
        [--steps 20] [--rounds 1] [--out DIR] [--quick]

Everything is measured in ONE process, each section on its own (a section that fails prints its error and the
others still run). Times are wall-clock between ``torch.cuda.synchronize`` calls, after warm-up iterations; the
median over the timed iterations is reported.

1. **Ceilings**: an 8192^3 matrix product in bf16, fp32 (TF32 off: torch's default) and TF32; a 1 GiB
   device-to-device copy (bytes read + written). Median of 10 after 3 warm-ups, random data.
2. **Critics** (``p3d.train.critics.build``, the jobs of ``p3d train stage1 | stage2``), at ``paper`` (Table S1:
   H = 512, 10 layers, 5 x 160 x 160 RGB lip video; batch 40 / 80) and at ``full`` (the ``cpu`` models, the
   ``full`` recipes), on a synthetic corpus written with ``tests/tiny_corpus.py`` (16 training clips of 3 s;
   5023 vertices, the FLAME mesh of LRS3-3D / VOCASET, at ``paper``; 468 at ``full``). Stage 1 in float32 and
   under bf16 autocast (``--bf16``); stage 2 "ours" with its frozen speech side cached (the default path),
   from an untrained stage 1 (a step's cost does not depend on the weights).
3. **Talkers at ``paper``** (paper Table S8: official batch of 1, wav2vec2-base audio encoder): per model,
   :func:`p3d.analysis.training_cost.iteration_cost` without the perceptual loss, with it (speech embeddings
   cached) and with it embedding the speech every step, on a VOCASET-like corpus (5023 vertices, 30 fps, clips
   of 4 s) with a randomly initialised ``wav2vec2-base`` architecture (``transformers.Wav2Vec2Config()``
   defaults, saved with ``save_pretrained``; SelfTalk's audio encoder and recogniser a ``Wav2Vec2ForCTC`` of
   ``wav2vec2-large-xlsr-53-english``'s architecture, 33 tokens) and an official-layout loss checkpoint (``model_loss.pth``,
   ``tests/release_fixtures.py``; random weights), i.e. the files a real user passes. ``--rounds R`` repeats
   the three settings R times per model, every other round in reverse order (the committed run: one round, so
   the setting measured first also absorbed the card's warm-up: see RESULTS.md).
4. **Talkers at ``full``**: the ``full`` preset's talkers (``cpu`` models) with the perceptual loss ("ours", an
   untrained ``full``-size stage-2 critic, speech embeddings cached) at the recipe's batch of clips, one clip per
   step and the batch, on a synth-voca-like corpus (468 vertices, 30 fps, clips of 4 s: 120 frames): clips/s.

5. **train-smoke**: ``p3d train stage1 | stage2 | talker`` (each talker with the loss, batches of 2 clips) and
   ``p3d predict`` on the device at the ``smoke`` preset, through the command line: each command's exit status.

``--quick`` shrinks every section to a single iteration at a tiny batch (a check that the script runs, e.g. on
the CPU: ``--device cpu --quick``); its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(fn, dev, steps: int, warmup: int) -> list[float]:
    """Seconds of each of ``steps`` calls of ``fn(i)`` after ``warmup`` untimed ones."""
    for i in range(warmup):
        fn(i)
    sync(dev)
    times = []
    for i in range(warmup, warmup + steps):
        start = time.perf_counter()
        fn(i)
        sync(dev)
        times.append(time.perf_counter() - start)
    return times


def ceilings(dev, tmp: Path, steps: int, quick: bool) -> list[dict]:
    import torch

    n = 1024 if quick else 8192
    rows = []
    for name, dtype, tf32 in (("bf16", torch.bfloat16, False), ("fp32", torch.float32, False),
                              ("tf32", torch.float32, True)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.randn(n, n, device=dev).to(dtype)
        b = torch.randn(n, n, device=dev).to(dtype)
        t = statistics.median(timed(lambda i: a @ b, dev, 3 if quick else 10, 1 if quick else 3))
        rows.append({"measure": f"matmul {n}^3 {name}", "value": 2 * n ** 3 / t / 1e12, "unit": "TFLOP/s"})
    torch.backends.cuda.matmul.allow_tf32 = False
    x = torch.randn((2 ** 18 if quick else 2 ** 28), device=dev)
    y = torch.empty_like(x)
    t = statistics.median(timed(lambda i: y.copy_(x), dev, 3 if quick else 10, 1 if quick else 3))
    rows.append({"measure": f"copy {x.numel() * 4 / 2 ** 30:.3g} GiB (read + write)",
                 "value": 2 * x.numel() * 4 / t / 1e12, "unit": "TB/s"})
    return rows


def critic_corpus(root: Path, n_vertices: int, quick: bool) -> Path:
    from tiny_corpus import write_tiny_corpus

    return write_tiny_corpus(root, identities={"train": 4}, clips_per_identity=1 if quick else 4, seconds=3.0,
                             n_vertices=n_vertices, lip_size=64, lip_video=True, labels=False)


def trainer_iterations(model, data, step_fn, params, batch: int, dev, steps: int, warmup: int) -> list[float]:
    """Seconds of each timed iteration of the trainer's step (collate ``batch`` items, ``step_fn``, zero_grad,
    backward, clipping at 1.0, AdamW) for a critic or a talker job alike."""
    import torch

    from p3d.train.trainer import batch_indices

    opt = torch.optim.AdamW(params, lr=1e-4)
    model.train()

    def iteration(i: int) -> None:
        items = batch_indices(len(data), batch, 0, i)
        loss, _ = step_fn(model, data.collate(items), torch.Generator().manual_seed(i))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return timed(iteration, dev, steps, warmup)


def critics(dev, tmp: Path, steps: int, quick: bool) -> list[dict]:
    import torch

    from p3d.models.stage1 import Stage1Config, Stage1Model
    from p3d.registry import training_defaults
    from p3d.train.critics import build

    rows = []
    for preset, n_vertices in (("paper", 5023), ("full", 468)):
        corpus = critic_corpus(tmp / f"critics_{preset}", n_vertices, quick)
        for kind, bf16 in (("stage1", False), ("stage1", True), ("stage2", False)):
            models, defaults = training_defaults(preset, kind, str(dev))  # full: the cpu models, its caps
            torch.manual_seed(0)
            stage1 = None
            if kind == "stage2":
                stage1 = tmp / f"stage1_{preset}.pt"
                Stage1Model(Stage1Config.from_preset(models)).save(stage1)
            started = time.perf_counter()
            job = build(kind, models, corpus, stage1=stage1, device=str(dev), bf16=bf16,
                        steps=defaults.get("steps"))
            setup = time.perf_counter() - started
            batch = 2 if quick else job.cfg.batch_size
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            params = [p for p in job.model.parameters() if p.requires_grad]
            t = trainer_iterations(job.model, job.data, job.step_fn, params, batch, dev, 1 if quick else steps,
                                   1 if quick else 3)
            step = statistics.median(t)
            rows.append({"preset": preset, "kind": kind, "precision": "bf16 autocast" if bf16 else "fp32",
                         "batch": batch, "windows": len(job.data), "ms_per_step": step * 1e3,
                         "windows_per_s": batch / step, "cap_steps": job.cfg.steps,
                         "cap_minutes": job.cfg.steps * step / 60, "setup_s": setup,
                         "peak_gib": torch.cuda.max_memory_allocated(dev) / 2 ** 30 if dev.type == "cuda"
                         else float("nan")})
            print(f"# critics: {rows[-1]}", file=sys.stderr, flush=True)
            del job
    return rows


def talker_corpus(root: Path, n_vertices: int, quick: bool) -> Path:
    from tiny_corpus import write_tiny_corpus

    return write_tiny_corpus(root, kind="vocaset", fps=30, identities={"train": 4, "test": 1},
                             clips_per_identity=1 if quick else 4, seconds=4.0, n_vertices=n_vertices,
                             lip_video=False)


def talkers_paper(dev, tmp: Path, steps: int, quick: bool, rounds: int = 1) -> list[dict]:
    import pandas as pd
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC, Wav2Vec2Model

    from p3d.analysis.training_cost import SETTINGS, iteration_cost
    from release_fixtures import official_critic_checkpoint

    corpus = talker_corpus(tmp / "voca_paper", 5023, quick)
    torch.manual_seed(0)
    w2v = {"base": tmp / "wav2vec2-base", "large": tmp / "wav2vec2-large-xlsr-53"}
    # FaceFormer / CodeTalker: wav2vec2-base-960h's architecture; SelfTalk: wav2vec2-large-xlsr-53-english's, as
    # its audio encoder and (with its 33-token CTC head) as its frozen recogniser. Random weights: a step's cost
    # depends on the architecture only.
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(w2v["base"])
    large = Wav2Vec2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                           feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, vocab_size=33,
                           pad_token_id=0)
    Wav2Vec2ForCTC(large).save_pretrained(w2v["large"])
    critic, _ = official_critic_checkpoint(tmp / "model_loss.pth", n_vertices=5023)
    frames = []
    for model in ("faceformer", "codetalker", "selftalk"):
        for r in range(rounds):  # odd rounds in the reverse order: a drift of the card's speed hits every setting
            order = SETTINGS[::-1] if r % 2 else SETTINGS
            res = pd.DataFrame(iteration_cost(model, "paper", corpus, critic, steps=1 if quick else steps,
                                              warmup=1 if quick else 3, seed=0, device=str(dev), settings=order,
                                              wav2vec2=w2v["large" if model == "selftalk" else "base"],
                                              recogniser=w2v["large"] if model == "selftalk" else None,
                                              isolate=False))
            res["round"] = r
            frames.append(res)
            print(f"# talkers paper: {model}, round {r}: " + ", ".join(
                f"{s} {t:.4f} s" for s, t in zip(res["setting"], res["time_s_median"])), file=sys.stderr, flush=True)
    raw = pd.concat(frames, ignore_index=True)
    return raw[["model", "preset", "round", "setting", "time_s_median", "time_s_min", "ratio", "peak_mb",
                "mean_frames", "n_vertices", "setup_s", "device"]].to_dict("records")


def talkers_full(dev, tmp: Path, steps: int, quick: bool) -> list[dict]:
    import torch

    from p3d.experiments.spec import SPECS
    from p3d.models.mesh_encoder import MeshEncoderConfig
    from p3d.models.speech_mesh import SpeechMeshModel
    from p3d.models.stage1 import Stage1Config, Stage1Model
    from p3d.registry import model_preset, preset
    from p3d.train.talker import build

    corpus = talker_corpus(tmp / "voca_full", 468, quick)
    critic = tmp / "critic_full.pt"  # an untrained full ("cpu"-size) stage-2 critic: the cost is the same
    torch.manual_seed(0)
    SpeechMeshModel.ours(Stage1Model(Stage1Config.from_preset(model_preset("full"))),
                         MeshEncoderConfig.from_preset(model_preset("full"), n_vertices=468)).eval().save(critic)
    rows = []
    for model in ("faceformer", "codetalker", "selftalk"):
        for loss in ("none", "ours"):
            job = build(model, model_preset("full"), corpus, critic=loss,
                        critic_checkpoint=critic if loss != "none" else None, seed=0, device=str(dev),
                        batch_size=SPECS["full"].talker_batch, steps=preset("full").talker_cap)
            recipe_batch = job.cfg.batch_size
            for batch in sorted({1, 2 if quick else recipe_batch}):
                t = statistics.median(trainer_iterations(job.model, job.data, job.step_fn, job.params, batch, dev,
                                                         1 if quick else steps, 1 if quick else 3))
                rows.append({"preset": "full", "model": model, "loss": loss, "stage": job.last_stage,
                             "batch": batch, "recipe_batch": recipe_batch, "ms_per_step": t * 1e3,
                             "clips_per_s": batch / t, "cap_steps": job.cfg.steps,
                             "cap_minutes_at_recipe_batch": job.cfg.steps * t / 60 if batch == recipe_batch
                             else float("nan")})
                print(f"# talkers full: {rows[-1]}", file=sys.stderr, flush=True)
            del job
    return rows


def train_smoke(dev, tmp: Path, steps: int, quick: bool) -> list[dict]:
    """``p3d train`` (stage 1, stage 2, each talker with the loss, batches of 2 clips) and ``p3d predict`` on the
    device, end to end through the command line at the ``smoke`` preset: every command's exit status."""
    from tiny_corpus import write_tiny_corpus

    lrs3 = write_tiny_corpus(tmp / "smoke_lrs3", identities={"train": 4, "val": 1}, seconds=2.0, n_vertices=40)
    voca = write_tiny_corpus(tmp / "smoke_voca", kind="vocaset", fps=30, identities={"train": 4, "val": 1,
                             "test": 1}, seconds=2.0, n_vertices=40, lip_video=False)
    runs, device = tmp / "smoke_runs", str(dev)
    common = ["--preset", "smoke", "--steps", "4", "--device", device, "--no-progress"]
    commands = [("stage1", ["train", "stage1", "--data", str(lrs3), "--out", str(runs / "stage1"), *common]),
                ("stage2", ["train", "stage2", "--data", str(lrs3), "--stage1", str(runs / "stage1" / "final.pt"),
                            "--out", str(runs / "stage2"), *common])]
    for model in ("faceformer", "codetalker", "selftalk"):
        commands.append((f"train {model} + loss", [
            "train", "talker", "--model", model, "--train", str(voca), "--out", str(runs / model), "--critic", "ours",
            "--critic-checkpoint", str(runs / "stage2" / "final.pt"), "--batch-size", "2", *common]))
        commands.append((f"predict {model}", ["predict", "--run", str(runs / model), "--split", "test", "--out",
                                              str(tmp / "smoke_pred" / model), "--device", device]))
    rows = []
    for name, args in commands:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "p3d", *args], capture_output=True, text=True, check=False,
                              cwd=ROOT)
        tail = (proc.stderr.strip().splitlines() or [""])[-1][:160]
        rows.append({"command": f"p3d {name}", "exit": proc.returncode, "seconds": time.perf_counter() - started,
                     "last stderr line": tail if proc.returncode else ""})
        print(f"# train-smoke: {rows[-1]}", file=sys.stderr, flush=True)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr, flush=True)
    if any(r["exit"] for r in rows):
        print("\n".join(f"FAILED: {r['command']}" for r in rows if r["exit"]), file=sys.stderr)
    return rows


#: The sections in their default order: name -> ``fn(device, tmp folder, timed steps, quick) -> rows``.
SECTIONS = {"ceilings": ceilings, "critics": critics, "talkers-paper": talkers_paper, "talkers-full": talkers_full,
            "train-smoke": train_smoke}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--steps", type=int, default=20, help="timed iterations per setting")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=None, help="also write each section's rows as CSV there")
    parser.add_argument("--rounds", type=int, default=1,
                        help="talkers-paper: rounds of the three settings per model, odd rounds in reverse order")
    parser.add_argument("--quick", action="store_true", help="one tiny iteration per setting (does it run?)")
    args = parser.parse_args()
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        print(f"bench_gpu: unknown section(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.steps < 1 or args.rounds < 1:
        print(f"bench_gpu: --steps and --rounds must be positive, got {args.steps}, {args.rounds}", file=sys.stderr)
        return 2

    import pandas as pd
    import torch

    from p3d.atomic import atomic_open
    from p3d.tables import to_markdown

    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device", file=sys.stderr)
        return 2
    began = time.time()
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor()}
    if dev.type == "cuda":
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, check=False)
        info["nvidia-smi"] = smi.stdout.strip()
    print(f"# bench_gpu {time.strftime('%Y-%m-%d %H:%M:%S')}: {json.dumps(info)}", flush=True)
    results: dict[str, pd.DataFrame] = {}
    with tempfile.TemporaryDirectory(prefix="p3d-gpu-") as tmp_name:
        tmp = Path(tmp_name)
        for name in sections:
            started = time.time()
            try:
                extra = {"rounds": args.rounds} if name == "talkers-paper" else {}
                rows = SECTIONS[name](dev, tmp, args.steps, args.quick, **extra)
            except Exception:  # noqa: BLE001 - one section's failure must not cost the others' numbers
                print(f"\n## {name}: FAILED after {time.time() - started:.0f} s\n", flush=True)
                traceback.print_exc()
                continue
            results[name] = pd.DataFrame(rows)
            print(f"\n## {name} ({time.time() - started:.0f} s)\n", flush=True)
            print(to_markdown(results[name], digits=4), flush=True)
            if args.out is not None:
                args.out.mkdir(parents=True, exist_ok=True)
                with atomic_open(args.out / f"gpu_{name}.csv", "w", newline="") as fh:  # never a half CSV
                    results[name].to_csv(fh, index=False)
    print(f"\n# bench_gpu done in {time.time() - began:.0f} s", flush=True)
    return 0 if len(results) == len(sections) else 1


if __name__ == "__main__":
    sys.exit(main())
