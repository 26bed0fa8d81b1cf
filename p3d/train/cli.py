"""``p3d train KIND``: train a model with the shared loop (:mod:`p3d.train.trainer`).

    p3d train stage1|stage2|syncnet3d|no2d|finetune|evaluator|talker --preset smoke|cpu|paper \\
        --data DIR --out RUN_DIR [--stage1 CKPT] [--init CKPT] [--steps N] [--batch-size N] [--lr X] \\
        [--seed N] [--workers N] [--no-progress] \\
        [--stop steps|plateau --max-steps N --eval-every N --patience N --min-rel-improvement X --smooth N]

``--stop plateau`` trains until the validation metric (held-out ``val`` split, ``RUN_DIR/val.csv``)
plateaus, with ``--max-steps`` (a synonym of ``--steps``) as the cap (:mod:`p3d.train.convergence`).

The same command runs on several processes with ``torchrun --nproc_per_node=N -m p3d train ...``
(DDP; gloo on CPU, nccl on CUDA). ``RUN_DIR`` gets ``request.json`` (the command's settings), ``data.json`` (a
fingerprint of the data folders, upstream checkpoints, the code's recipe and the preset's architecture, and those two
setting by setting, defaults included: a corpus regenerated at the same path, a retrained upstream run or a changed
recipe, architecture or config default is refused, not reused),
``config.json`` (the resolved settings), ``metrics.csv``, ``checkpoints/`` and, at the end, ``final.pt``
(the model checkpoint: stage 1 for ``stage1``, a critic for the others, readable by
``p3d.models.speech_mesh.load_critic``; a talker for ``talker``).

**Re-running into RUN_DIR** (:func:`p3d.train.api.claim_run_dir` before any data are loaded, then
:func:`p3d.train.trainer.resume_plan` on the resolved settings; the same checks as
:func:`p3d.train.api.fit`): the same settings resume an interrupted run exactly or, when ``final.pt``
exists, do nothing (an option given at its default value, ``--lr 0.001`` where that is the preset's, is the
same setting as the option left out); a longer ``--steps`` extends the run (recorded in ``config.json``'s
``extensions``);
any other setting that changes the result is refused with exit code 2 and one line ``name: old -> new``
per differing setting. Progress bars, ``--workers``, ``--threads``, ``--checkpoint-every`` may differ. A command
that fails before training begins (a wrong ``--data``) leaves no ``request.json`` behind
(:func:`p3d.train.api.claimed_run_dir`), so the corrected command may use the same ``RUN_DIR``.

**Adding a kind**: add one :class:`TrainKind` to :data:`KINDS`, naming

- ``builder``: ``"module:function"``, called with the parsed arguments; it returns a job with
  ``model``, ``params``, ``data`` (``__len__`` + ``collate``), ``step_fn``, ``cfg`` (a
  :class:`p3d.train.trainer.TrainConfig`), ``extra_config`` (a JSON-able dict of every setting that
  changes the result, saved in ``config.json`` and in every checkpoint and compared on resume) and
  ``finalize(run_dir) -> Path`` (see :class:`p3d.train.critics.Job`);
- ``request``: ``"module:function"`` turning the parsed arguments into the run's request
  (:func:`p3d.train.request.run_request`), checked before the builder runs;
- ``add_arguments`` (optional): ``"module:function"`` adding the kind's own options to its
  subparser. That module is imported when the parser is built, so it must keep torch imports inside
  functions.

Every kind gets the common options of :func:`add_common_arguments`.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
from pathlib import Path
from typing import Any

from p3d.errors import InputError
from p3d.registry import MODEL_PRESETS as PRESETS  # --preset: the presets with their own model sizes and recipes

log = logging.getLogger(__name__)



@dataclasses.dataclass(frozen=True)
class TrainKind:
    """One ``p3d train`` kind: its help line, its job builder and its extra options (``module:function``)."""

    name: str
    help: str
    builder: str
    add_arguments: str | None = None
    request: str | None = None


_REP = "p3d.train.critics"
#: kind -> :class:`TrainKind`, in the order ``p3d train --help`` lists them.
KINDS: dict[str, TrainKind] = {
    k.name: k for k in (
        TrainKind("stage1", "stage 1: audio-visual MAE + InfoNCE on speech and 2D lip video (needs lipvideo/)",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments", f"{_REP}:request_from_args"),
        TrainKind("stage2", "stage 2 ('ours'): mesh encoder aligned to the frozen stage-1 speech encoder (--stage1)",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments", f"{_REP}:request_from_args"),
        TrainKind("syncnet3d", "Table 3 ablation: the CNN critic 3D SyncNet, from scratch",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments", f"{_REP}:request_from_args"),
        TrainKind("no2d", "Table 3 ablation: 'w/o 2D prior', both stage-2 encoders from scratch",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments", f"{_REP}:request_from_args"),
        TrainKind("finetune", "fine-tune a critic (--init) on another corpus (paper: VOCASET train, 5 epochs, lr 1e-4)",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments", f"{_REP}:request_from_args"),
        TrainKind("evaluator", "the independent PLRS evaluator: stage 2 with another seed, batch size and "
                               "identity half (--stage1: its own, from stage1 --identities half2 --seed 1)",
                  f"{_REP}:build_from_args", f"{_REP}:add_arguments", f"{_REP}:request_from_args"),
        TrainKind("talker", "a talking-head baseline (faceformer, codetalker, selftalk), with or without the "
                            "perceptual loss of a critic (--critic, --critic-checkpoint)",
                  "p3d.train.talker:build_from_args", "p3d.train.talker:add_arguments",
                  "p3d.train.talker:request_from_args"),
    )
}


def _resolve(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every kind has."""
    parser.add_argument("--preset", choices=PRESETS, default="cpu", help="model size and schedule (default cpu)")
    parser.add_argument("--data", type=Path, required=True, help="corpus folder (p3d.corpus layout)")
    parser.add_argument("--out", type=Path, required=True, help="run folder; the same command again resumes or reuses it, a larger --steps "
                                                                   "extends it, other settings are refused")
    parser.add_argument("--steps", "--max-steps", dest="steps", type=int, default=None,
                        help="optimisation steps (default: the preset's; with --stop plateau: the cap); larger than a "
                             "finished run's: extend it")
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the preset's)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the preset's)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of initialisation, batches and masks (default: the recipe's, 0; evaluator: 1)")
    parser.add_argument("--checkpoint-every", type=int, default=None,
                        help="steps between checkpoints (default: the preset's)")
    parser.add_argument("--workers", type=int, default=1, help="threads preparing the data (default 1)")
    parser.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK if available), cpu, cuda, cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    from p3d.train.convergence import add_stop_arguments

    add_stop_arguments(parser)


#: ``p3d train --help``: what the command does for its user.
DESCRIPTION = """\
Train a model into a run folder (--out): the speech-mesh representation (stage1, then stage2), the
Table 3 critics (syncnet3d, no2d), a fine-tuned critic (finetune), the PLRS evaluator, or a
talking-head baseline (talker). Run `p3d train KIND --help` for the options of one kind.

The run folder gets config.json (the settings used), metrics.csv, checkpoints/ and, when training
ends, final.pt. Running the same command again resumes an interrupted run exactly, or does nothing if
the run is finished; a larger --steps extends a finished run (recorded in config.json). A run folder
refuses other settings (seed, learning rate, data, model, ...): use another --out.

Several processes: torchrun --nproc_per_node=N -m p3d train KIND ..."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train the representation, its ablations, the PLRS evaluator, talkers",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="train_kind", metavar="KIND", required=True)
    for kind in KINDS.values():
        kp = sub.add_parser(kind.name, help=kind.help, description=f"p3d train {kind.name}: {kind.help}.")
        add_common_arguments(kp)
        if kind.add_arguments:
            _resolve(kind.add_arguments)(kp)
        kp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from p3d.train.api import claimed_run_dir

    kind = KINDS[args.train_kind]
    if args.workers < 1:
        raise InputError(f"--workers: expected a positive thread count, got {args.workers}")
    if args.seed is not None and not -2 ** 63 <= args.seed < 2 ** 63:  # torch.manual_seed overflowed: a traceback
        raise InputError(f"--seed: expected a 64-bit signed integer, got {args.seed}")
    request = _resolve(kind.request)(args) if kind.request else None
    if request is None:
        return _train(kind, args, None)
    with claimed_run_dir(args.out, request) as finished:  # a failed data load takes its fresh claim back
        if finished:
            log.info("%s: %s holds the finished run of these settings; nothing to do", kind.name,
                     args.out / "final.pt")
            return 0
        return _train(kind, args, request)


def _train(kind: TrainKind, args: argparse.Namespace, request: dict[str, Any] | None) -> int:
    """Build ``kind``'s job from ``args`` and train it into ``args.out`` (every process of a DDP run); record
    ``request`` beside the finished run."""
    from p3d.train.api import record_request
    from p3d.train.trainer import init_distributed, train

    dist = init_distributed()
    job = _resolve(kind.builder)(args)
    try:
        result = train(job.model, job.data, job.step_fn, job.cfg, args.out, extra_config=job.extra_config,
                       params=job.params, progress=not args.no_progress, validate=getattr(job, "validate", None),
                       finalize=job.finalize)  # final.pt written while the run folder's lock is held
        if dist.is_main and result["finished"] and request is not None:  # also a finished folder without one
            record_request(args.out, request)
        if dist.is_main and result["finished"] and result["final"] is None:
            log.info("%s: another process finished %s meanwhile; nothing to do", kind.name, args.out / "final.pt")
        elif dist.is_main and result["finished"]:
            log.info("%s: %d steps, last loss %.4f; wrote %s", kind.name, result["step"], result["loss"],
                     result["final"])
    finally:
        if dist.world_size > 1:
            import torch.distributed as tdist

            if tdist.is_initialized():
                tdist.destroy_process_group()
    return 0
