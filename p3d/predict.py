"""``p3d predict``: a talker's predictions for a split, in the official file layout, ready for ``p3d eval``.

    p3d predict --run RUN_DIR --split test --out DIR [--data DIR[,DIR]] [--device auto|cpu|cuda]
    p3d predict --checkpoint vocaset.pth --model faceformer --data VOCASET_DIR --out DIR

``--checkpoint``: an **official released checkpoint** of FaceFormer (``vocaset.pth``, ``biwi.pth``),
CodeTalker (``vocaset_stage2.pth.tar``, ``biwi_stage2.pth.tar``; ``--stage1`` optionally replaces its
VQ-VAE) or SelfTalk (``vocaset.pth``, ``BIWI.pth``), read weights-only and loaded into p3d's model by the
key map of :mod:`p3d.models.official_baselines`. The style conditions are the official training
subjects (the 8 VOCASET ``FaceTalk_*`` identities, or BIWI's F2 F3 F4 M3 M4 M5) unless ``--styles``
names them; ``--data`` is required. The frame count follows the official ``predict`` (from the audio:
``--frames audio``, the default with ``--checkpoint``) or the ground truth (``--frames gt``).

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
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from p3d.device import resolve_device
from p3d.errors import InputError
from p3d.io import load_json

log = logging.getLogger(__name__)


def read_run(run: str | os.PathLike[str]) -> dict[str, Any]:
    """``RUN_DIR/config.json`` of a talker run (checked)."""
    cfg_path = Path(run) / "config.json"
    if not cfg_path.exists():
        raise InputError(f"--run {run}: no config.json (not a `p3d train talker` run folder)")
    cfg = load_json(cfg_path)
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


def _jobs(corpora: list[Any], split: str, model: Any, fps: float, explicit: bool, source: str) -> list[Any]:
    """(corpus, clip) pairs of ``split``, checked against the model (vertex count, frame rate)."""
    jobs = []
    for c in corpora:
        if split not in {clip.split for clip in c.clips}:
            if explicit:
                raise InputError(f"{c.root}: no clips in split {split!r}")
            log.info("%s has no %r split; skipped", c.root, split)
            continue
        if c.topology.n_vertices != model.n_vertices:
            raise InputError(f"{c.root}: {c.topology.n_vertices} vertices per frame, the model predicts "
                             f"{model.n_vertices}")
        if abs(c.model_fps - fps) > 1e-9:
            raise InputError(f"{c.root}: model frame rate {c.model_fps:g} fps, {source} runs at {fps:g} fps")
        jobs.extend((c, clip) for clip in c.select(split))
    return jobs


def _write_predictions(model: Any, styles: list[str], jobs: list[Any], out: Path, dev: Any, overwrite: bool,
                       progress: bool, frames: str = "gt") -> list[Path]:
    """Predict every (clip, style) pair into ``out/<clip>_condition_<style>.npy``; existing files are kept."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from p3d.atomic import save_npy
    from p3d.io import load_audio
    from p3d.talker_data import AUDIO_RATE

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
                if frames == "audio":
                    from p3d.models.official_baselines import official_n_frames

                    n_frames = official_n_frames(model, samples.size)
                else:
                    n_frames = n_frames_of(corpus, clip, samples.size, AUDIO_RATE)
                audio = torch.from_numpy(samples).to(dev)
            pred = model.predict(audio, template, style, n_frames)
            save_npy(path, pred.detach().cpu().numpy().astype(np.float32))
    bar.close()
    return written


def predict_official(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str]],
    *,
    model: str | None = None,
    split: str = "test",
    dataset: str | None = None,
    styles: Sequence[str] | None = None,
    stage1: str | os.PathLike[str] | None = None,
    frames: str = "audio",
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Predictions of an official released checkpoint (module docstring) for every (clip, style)."""
    from p3d.corpus import Corpus
    from p3d.models.official_baselines import default_styles, load_official

    if frames not in ("audio", "gt"):
        raise InputError(f"--frames: choose audio or gt, got {frames!r}")
    if not data:
        raise InputError("--data: an official checkpoint needs the corpus folder(s) to predict")
    corpora = [Corpus.open(r) for r in data]  # checked before the (large) checkpoint is read
    dev = resolve_device(device)
    talker = load_official(checkpoint, model, dataset=dataset, stage1=stage1).to(dev).eval()
    names = list(styles) if styles else default_styles(talker)
    if names is None or len(names) != talker.n_styles:
        raise InputError(f"--styles: {checkpoint} has {talker.n_styles} style conditions; name them in order "
                         f"(comma-separated training subjects){f', got {len(names)}' if names else ''}")
    jobs = _jobs(corpora, split, talker, float(talker.config.fps), True, str(checkpoint))
    if not jobs:
        raise InputError(f"split {split!r}: no clips in {', '.join(str(r) for r in data)}")
    return _write_predictions(talker, list(names), jobs, Path(out), dev, overwrite, progress, frames)


def predict_split(
    run: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str = "test",
    data: Sequence[str | os.PathLike[str]] | None = None,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
    frames: str = "gt",
) -> list[Path]:
    """Write the predictions of every (clip of ``split``, training identity); return their paths."""
    from p3d.corpus import Corpus
    from p3d.models import load_model

    if frames not in ("audio", "gt"):
        raise InputError(f"--frames: choose audio or gt, got {frames!r}")

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
    jobs = _jobs(corpora, split, model, float(cfg.get("fps", corpora[0].model_fps)), bool(data), "the run")
    if not jobs:
        raise InputError(f"split {split!r}: no clips in {', '.join(str(r) for r in roots)}")
    return _write_predictions(model, styles, jobs, Path(out), dev, overwrite, progress, frames)


def register(subparsers: Any) -> None:
    from p3d.cli import help_text

    p = subparsers.add_parser("predict", help="predict a split with a trained talker (official file names)",
                              description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="run folder of `p3d train talker` (final.pt, config.json)")
    src.add_argument("--checkpoint", type=Path,
                     help="an official FaceFormer / CodeTalker (stage 2) / SelfTalk checkpoint, as released")
    p.add_argument("--model", choices=("faceformer", "codetalker", "selftalk"), default=None,
                   help="with --checkpoint: the model it holds (checked; default: recognised from its keys)")
    p.add_argument("--dataset", choices=("vocaset", "BIWI"), default=None,
                   help="with --checkpoint: the official variant (default: BIWI for 23370 vertices, else vocaset)")
    p.add_argument("--styles", default=None,
                   help="with --checkpoint: the style conditions' names in order, comma-separated "
                        "(default: the official training subjects)")
    p.add_argument("--stage1", type=Path, default=None,
                   help="with --checkpoint and CodeTalker: a stage-1 file whose VQ-VAE replaces the stage-2 file's")
    p.add_argument("--frames", choices=("audio", "gt"), default=None,
                   help="frame count: from the audio as the official predict (default with --checkpoint) or the "
                        "ground truth (default with --run)")
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
    if args.checkpoint is not None:
        styles = [s.strip() for s in args.styles.split(",") if s.strip()] if args.styles else None
        files = predict_official(args.checkpoint, args.out, data or [], model=args.model, split=args.split,
                                 dataset=args.dataset, styles=styles, stage1=args.stage1,
                                 frames=args.frames or "audio", device=args.device, overwrite=args.overwrite,
                                 progress=not args.no_progress)
    else:
        if args.model or args.dataset or args.styles or args.stage1:
            raise InputError("--model/--dataset/--styles/--stage1 go with --checkpoint (an official checkpoint), "
                             "not --run")
        files = predict_split(args.run, args.out, split=args.split, data=data, device=args.device,
                              overwrite=args.overwrite, progress=not args.no_progress, frames=args.frames or "gt")
    log.info("wrote %d predictions to %s", len(files), args.out)
    return 0
