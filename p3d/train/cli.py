"""``p3d train KIND``: train a model with the shared loop (:mod:`p3d.train.trainer`).

    p3d train stage1|stage2|syncnet3d|no2d|finetune|evaluator --preset smoke|cpu|paper \\
        --data DIR --out RUN_DIR [--stage1 CKPT] [--init CKPT] [--steps N] [--batch-size N] [--lr X] \\
        [--seed N] [--workers N] [--no-progress]

The same command runs on several processes with ``torchrun --nproc_per_node=N -m p3d train ...``
(DDP; gloo on CPU, nccl on CUDA). ``RUN_DIR`` gets ``config.json``, ``metrics.csv``,
``checkpoints/`` (re-running the command resumes exactly from ``checkpoints/last.pt``) and, at the
end, ``final.pt`` (the model checkpoint: stage 1 for ``stage1``, a critic for the others, readable by
``p3d.models.speech_mesh.load_critic``).

**Adding a kind** (e.g. issue 5's ``talker``): add one :class:`TrainKind` to :data:`KINDS`, naming

- ``builder``: ``"module:function"``, called with the parsed arguments; it returns a job with
  ``model``, ``params``, ``data`` (``__len__`` + ``collate``), ``step_fn``, ``cfg`` (a
  :class:`p3d.train.trainer.TrainConfig`), ``extra_config`` (a JSON-able dict, saved in
  ``config.json`` and in every checkpoint; its ``"kind"`` entry guards against resuming another
  kind's run) and ``finalize(run_dir) -> Path`` (see :class:`p3d.train.representation.Job`);
- ``add_arguments`` (optional): ``"module:function"`` adding the kind's own options to its
  subparser. That module is imported when the parser is built, so it must keep torch imports inside
  functions.

Every kind gets the common options of :func:`add_common_arguments`.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
from pathlib import Path
from typing import Any

from p3d.errors import InputError

log = logging.getLogger(__name__)

PRESETS = ("smoke", "cpu", "paper")


@dataclasses.dataclass(frozen=True)
class TrainKind:
    """One ``p3d train`` kind: its help line, its job builder and its extra options (``module:function``)."""

    name: str
    help: str
    builder: str
    add_arguments: str | None = None


_REP = "p3d.train.representation"
#: kind -> :class:`TrainKind`, in the order ``p3d train --help`` lists them.
KINDS: dict[str, TrainKind] = {
    k.name: k for k in (
        TrainKind("stage1", "stage 1: audio-visual MAE + InfoNCE on speech and 2D lip video (needs lipvideo/)",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments"),
        TrainKind("stage2", "stage 2 ('ours'): mesh encoder aligned to the frozen stage-1 speech encoder (--stage1)",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments"),
        TrainKind("syncnet3d", "Table 3 ablation: the CNN critic 3D SyncNet, from scratch",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments"),
        TrainKind("no2d", "Table 3 ablation: 'w/o 2D prior', both stage-2 encoders from scratch",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments"),
        TrainKind("finetune", "fine-tune a critic (--init) on another corpus (paper: VOCASET train, 5 epochs, lr 1e-4)",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments"),
        TrainKind("evaluator", "the independent PLRS evaluator: stage 2 with another seed, batch size and "
                               "identity half (--stage1)",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments"),
        TrainKind("talker", "a talking-head baseline (faceformer, codetalker, selftalk), with or without the "
                            "perceptual loss of a critic (--critic, --critic-checkpoint)",
                  "p3d.train.talker:build_from_args", "p3d.train.talker:add_arguments"),
    )
}


def _resolve(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every kind has."""
    parser.add_argument("--preset", choices=PRESETS, default="cpu", help="model size and schedule (default cpu)")
    parser.add_argument("--data", type=Path, required=True, help="corpus folder (p3d.corpus layout)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (resumed if it holds checkpoints)")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the preset's)")
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the preset's)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the preset's)")
    parser.add_argument("--seed", type=int, default=None, help="seed of initialisation, batches and masks")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    parser.add_argument("--workers", type=int, default=1, help="threads preparing the data (default 1)")
    parser.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK if available), cpu, cuda, cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train the representation, its ablations, the PLRS evaluator",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="train_kind", metavar="KIND", required=True)
    for kind in KINDS.values():
        kp = sub.add_parser(kind.name, help=kind.help, description=kind.help)
        add_common_arguments(kp)
        if kind.add_arguments:
            _resolve(kind.add_arguments)(kp)
        kp.set_defaults(func=run)


def _check_run_dir(out: Path, kind: str) -> None:
    """Refuse to resume a run folder that holds another kind's run."""
    cfg_path = out / "config.json"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    if cfg_path.exists():
        try:
            previous = json.loads(cfg_path.read_text()).get("kind")
        except (json.JSONDecodeError, AttributeError):
            raise InputError(f"{cfg_path}: corrupt run config; use another --out") from None
        if previous is not None and previous != kind:
            raise InputError(f"--out {out}: holds a {previous!r} run, not {kind!r}; use another --out")


def run(args: argparse.Namespace) -> int:
    from p3d.train.trainer import init_distributed, train

    kind = KINDS[args.train_kind]
    if args.workers < 1:
        raise InputError(f"--workers: expected a positive thread count, got {args.workers}")
    _check_run_dir(args.out, kind.name)
    dist = init_distributed()
    job = _resolve(kind.builder)(args)
    try:
        result = train(job.model, job.data, job.step_fn, job.cfg, args.out, extra_config=job.extra_config,
                       params=job.params, progress=not args.no_progress)
        if dist.is_main:
            final = job.finalize(args.out)
            log.info("%s: %d steps, last loss %.4f; wrote %s", kind.name, result["step"], result["loss"], final)
    finally:
        if dist.world_size > 1:
            import torch.distributed as tdist

            if tdist.is_initialized():
                tdist.destroy_process_group()
    return 0
