"""Benchmark of the speech-mesh representation (paper Sec. 4): stage-2 training and PLRS evaluation
throughput, peak memory.

Usage: .venv/bin/python benchmarks/bench_representation.py [--preset cpu] [--data data/cpu/synth-lrs3]
       [--steps 30] [--clips 40] [--device cpu|cuda]

- stage 2 ("ours": frozen speech encoder, trained mesh encoder) at the preset's batch size: windows per
  second over ``--steps`` optimisation steps after 3 warm-up steps (data collation included, as in
  ``p3d train``), from a freshly initialised stage-1 model (weights do not change the cost);
- PLRS (``p3d.metrics.plrs``: fbank, non-overlapping windows, both encoders) over ``--clips`` test clips
  of the corpus: clips/s and seconds of speech per second;
- peak resident memory of the process (``resource.getrusage``; on CUDA also
  ``torch.cuda.max_memory_allocated``).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--data", default="data/cpu/synth-lrs3")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()

    import torch

    from p3d.corpus import Corpus
    from p3d.losses.infonce import info_nce_from_logits
    from p3d.metrics import plrs
    from p3d.models.mesh_encoder import MeshEncoderConfig
    from p3d.models.speech_mesh import SpeechMeshModel
    from p3d.models.stage1 import Stage1Config, Stage1Model
    from p3d.train.critics import recipe
    from p3d.train.trainer import batch_indices
    from p3d.windows import SpeechMeshWindows

    dev = torch.device(args.device)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; load {os.getloadavg()}")
    if dev.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(dev)}")
    corpus = Corpus.open(args.data)
    torch.manual_seed(0)
    ds = SpeechMeshWindows(corpus, "train", workers=2)
    model = SpeechMeshModel.ours(Stage1Model(Stage1Config.from_preset(args.preset)),
                                 MeshEncoderConfig.from_preset(args.preset, n_vertices=ds.n_vertices)).to(dev)
    mean, scale = ds.vertex_statistics()
    model.mesh_encoder.set_input_normalization(torch.from_numpy(mean), scale)
    batch_size = args.batch_size or recipe("stage2", args.preset).batch_size
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def step(i: int) -> None:
        batch = ds.collate(batch_indices(len(ds), batch_size, 0, i))
        logits, _ = model(batch["speech"].to(dev), batch["mesh"].to(dev))
        loss = info_nce_from_logits(logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(3):
        step(i)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(3 + i)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    print(f"| stage 2 ({args.preset}, batch {batch_size}) | {args.steps * batch_size / dt:,.0f} windows/s | "
          f"{dt / args.steps * 1000:.0f} ms/step |")

    model.eval()
    clips = corpus.select("test")[: args.clips]
    data = [(corpus.audio(c), corpus.vertices(c)) for c in clips]
    plrs(data[0][0][0], data[0][1], model, corpus.model_fps, sr=data[0][0][1])  # warm-up
    t0 = time.perf_counter()
    for (audio, sr), verts in data:
        plrs(audio, verts, model, corpus.model_fps, sr=sr)
    dt = time.perf_counter() - t0
    seconds = sum(len(a) / sr for (a, sr), _ in data)
    print(f"| PLRS ({args.preset} critic, {len(data)} clips, {seconds:.0f} s of speech) | {len(data) / dt:.1f} clips/s | "
          f"{seconds / dt:.0f} s of speech per s |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| peak resident memory | {peak:,.0f} MiB |")
    if dev.type == "cuda":
        print(f"| peak CUDA memory | {torch.cuda.max_memory_allocated(dev) / 2**20:,.0f} MiB |")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
