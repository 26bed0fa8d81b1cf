"""``p3d predict``: a trained talker's predictions for a split, in the official file layout, ready for ``p3d eval``.

    p3d predict --run RUN_DIR --split test --out DIR [--data DIR[,DIR]] [--device auto|cpu|cuda]

Reads ``RUN_DIR/final.pt`` (``p3d train talker``) and ``RUN_DIR/config.json`` (the style identities, the
training corpora, the frame rate). For every clip of ``--split`` of the corpora (``--data``; default: the
training corpora, those that have the split) and **every training identity** as the speaking-style
condition, it writes ``OUT/<clip>_condition_<train_identity>.npy``: (T, V, 3) float32 absolute vertices at
the model frame rate. This is the official protocol of FaceFormer, CodeTalker and SelfTalk on VOCASET
(test identities are unseen, so each test sentence is predicted once per training-subject condition; 8
files per sentence there). ``T`` is the clip's ground-truth frame count at the model frame rate when its
vertices exist, else ``floor(audio duration * fps)``.

Files are written atomically, one per (clip, condition); an existing file is kept (re-running resumes),
unless ``--overwrite``. Evaluate with ``p3d eval --pred OUT --gt CORPUS --audio CORPUS --fps <model fps>
--gt-fps <corpus fps> --topology CORPUS/topology.npz``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from p3d.errors import InputError

log = logging.getLogger(__name__)


def read_run(run: str | os.PathLike[str]) -> dict[str, Any]:
    """``RUN_DIR/config.json`` of a talker run (checked)."""
    cfg_path = Path(run) / "config.json"
    if not cfg_path.exists():
        raise InputError(f"--run {run}: no config.json (not a `p3d train talker` run folder)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{cfg_path}: corrupt JSON ({exc})") from None
    if cfg.get("kind") != "talker" or not cfg.get("styles"):
        raise InputError(f"{cfg_path}: not a talker run (kind {cfg.get('kind')!r}); predict needs `p3d train talker`")
    if not (Path(run) / "final.pt").exists():
        raise InputError(f"--run {run}: no final.pt (the training has not finished)")
    return cfg


def n_frames_of(corpus: Any, clip: Any, n_samples: int, sample_rate: int) -> int:
    """Ground-truth frame count at the model rate, or ``floor(duration * fps)`` without vertices."""
    if corpus.vertices_path(clip).exists():
        return int(corpus.vertices(clip).shape[0])
    return max(1, int(n_samples * corpus.model_fps // sample_rate))


def predict_split(
    run: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str = "test",
    data: Sequence[str | os.PathLike[str]] | None = None,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Write the predictions of every (clip of ``split``, training identity); return their paths."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from p3d.atomic import save_npy
    from p3d.corpus import Corpus
    from p3d.io import load_audio
    from p3d.models import load_model
    from p3d.talker_data import AUDIO_RATE
    from p3d.train.representation import resolve_device

    cfg = read_run(run)
    styles: list[str] = list(cfg["styles"])
    dev = resolve_device(device)
    model = load_model(Path(run) / "final.pt", map_location=dev).to(dev).eval()
    if model.n_styles != len(styles):
        raise InputError(f"--run {run}: final.pt has {model.n_styles} styles, config.json lists {len(styles)}")
    roots = [Path(p) for p in (data if data else cfg.get("train_data", []))]
    if not roots:
        raise InputError("--data: no corpus given and the run config names none")
    corpora = [Corpus.open(r) for r in roots]
    jobs = []
    for c in corpora:
        if split not in {clip.split for clip in c.clips}:
            if data:
                raise InputError(f"{c.root}: no clips in split {split!r}")
            log.info("%s has no %r split; skipped", c.root, split)
            continue
        if c.topology.n_vertices != model.n_vertices:
            raise InputError(f"{c.root}: {c.topology.n_vertices} vertices per frame, the model predicts "
                             f"{model.n_vertices}")
        if abs(c.model_fps - float(cfg.get("fps", c.model_fps))) > 1e-9:
            raise InputError(f"{c.root}: model frame rate {c.model_fps:g} fps, the run was trained at {cfg['fps']} fps")
        jobs.extend((c, clip) for clip in c.select(split))
    if not jobs:
        raise InputError(f"split {split!r}: no clips in {', '.join(str(r) for r in roots)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    bar = tqdm(total=len(jobs) * len(styles), desc="p3d predict", unit="file", disable=not progress)
    for corpus, clip in jobs:
        if clip.identity not in corpus.templates:
            raise InputError(f"{corpus.root / 'templates.pkl'}: no template for identity {clip.identity!r}")
        wav = corpus.wav_path(clip)
        if not wav.exists():
            raise InputError(f"{wav}: audio file missing for clip {clip.stem}")
        audio = None
        template = torch.from_numpy(np.asarray(corpus.templates[clip.identity], dtype=np.float32)).to(dev)
        for style, condition in enumerate(styles):
            path = out / f"{clip.stem}_condition_{condition}.npy"
            written.append(path)
            bar.update(1)
            if path.exists() and not overwrite:
                continue
            if audio is None:
                samples, _ = load_audio(wav, sr=AUDIO_RATE)
                n_frames = n_frames_of(corpus, clip, samples.size, AUDIO_RATE)
                audio = torch.from_numpy(samples).to(dev)
            pred = model.predict(audio, template, style, n_frames)
            save_npy(path, pred.detach().cpu().numpy().astype(np.float32))
    bar.close()
    return written


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("predict", help="predict a split with a trained talker (official file names)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run folder of `p3d train talker` (final.pt, config.json)")
    p.add_argument("--split", default="test", help="split to predict (default test)")
    p.add_argument("--out", type=Path, required=True, help="output folder of <clip>_condition_<identity>.npy files")
    p.add_argument("--data", default=None,
                   help="corpus folder(s), comma-separated (default: the run's training corpora)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU (default 1)")
    p.add_argument("--overwrite", action="store_true", help="recompute files that exist")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads < 1:
        raise InputError(f"--threads: expected a positive thread count, got {args.threads}")
    torch.set_num_threads(args.threads)
    data = [p.strip() for p in args.data.split(",") if p.strip()] if args.data else None
    files = predict_split(args.run, args.out, split=args.split, data=data, device=args.device,
                          overwrite=args.overwrite, progress=not args.no_progress)
    log.info("wrote %d predictions to %s", len(files), args.out)
    return 0
