"""The ``p3d eval`` command: its options (:func:`register`) and what it runs (:func:`run`). Its description
is the docstring of :mod:`p3d.evaluate`, which passes it to :func:`register`."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from p3d.errors import InputError
from p3d.evaluate.config import EvalConfig
from p3d.evaluate.report import write_report
from p3d.evaluate.scoring import evaluate
from p3d.evaluate.summary import format_summary
from p3d.stats import MIN_RESAMPLES


def _metric_list(text: str) -> tuple[str, ...]:
    from p3d.cli import comma_items

    try:
        items = tuple(s.lower() for s in comma_items(text, "--metrics"))
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not items:
        raise argparse.ArgumentTypeError("empty metric list")
    return items


def register(subparsers: Any, description: str | None = None) -> None:
    """Add ``p3d eval`` to ``subparsers``; ``description`` is its ``--help`` text (:mod:`p3d.evaluate` passes
    its docstring)."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate predicted vertex sequences (LVE, FDD, MTM, SLCC, PLRS, PLRS-c, PLRS-e)",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pred", type=Path, required=True,
                   help="folder of predicted .npy sequences (a processed-VOCASET vertices_npy/ folder, or a root "
                        "holding one, is ground truth scored as predictions: read at 60 fps and subsampled [::2] "
                        "like the official evaluate_PLRS.py, unless --fps gives its rate)")
    p.add_argument("--gt", type=Path, default=None,
                   help="folder of GT .npy sequences (or a processed-VOCASET root holding vertices_npy/); "
                        "without it only PLRS and PLRS-c are computed (--plrs-checkpoint and --audio), as the official "
                        "script computes PLRS")
    p.add_argument("--audio", type=Path, help="folder of .wav files named like the GT clips (or a root holding wav/)")
    p.add_argument("--templates", type=Path,
                   help="templates.pkl (subject -> neutral mesh), needed by FDD, PLRS-e and lip_amplitude_ratio")
    p.add_argument("--dataset", choices=["auto", "vocaset", "mead", "biwi", "generic"], default="auto",
                   help="file-name convention (default: auto-detect per file); biwi: F2_e37[_condition_M3], "
                        "and 25 fps predictions and GT unless --fps / --gt-fps say otherwise")
    p.add_argument("--fps", "--pred-fps", dest="fps", type=float, default=None,
                   help="frame rate of the prediction files (default 30; 25 with --dataset biwi; 60 then [::2] "
                        "for a VOCASET vertices_npy folder given as --pred)")
    p.add_argument("--gt-fps", type=float, default=None,
                   help="frame rate of the GT files (default: 60 for processed VOCASET, i.e. --dataset vocaset or a "
                        "vertices_npy/ root with VOCASET names; else --fps). Lengths that disagree with the rates "
                        "are refused unless both --fps and --gt-fps are given")
    p.add_argument("--metrics", type=_metric_list, default=None,
                   help="comma-separated subset of lve,fdd,mtm,slcc,plrs,plrs_calibrated, in any case (default: all "
                        "whose inputs are given; plrs_calibrated is PLRS-c, PLRS minus the mean cosine to the other "
                        "evaluated clips' speech, chance 0, computed with at least 3 GT clips)")
    p.add_argument("--topology", default="flame",
                   help="flame (default), FLAME_masks.pkl, a topology .npz, a BIWI regions folder, or a built-in name")
    p.add_argument("--plrs-checkpoint", type=Path, help="speech-mesh evaluator checkpoint for PLRS and PLRS-c")
    p.add_argument("--lve-variant", choices=["max_sq", "max_l2", "meshtalk"], default="max_sq",
                   help="LVE definition (default max_sq: CodeTalker / torchmetrics)")
    p.add_argument("--lip-aggregate", choices=["rms", "mean"], default="rms",
                   help="lip-intensity aggregation over frames: rms (official code, default) or mean (paper Eq. c)")
    p.add_argument("--out", type=Path, default=Path("results/eval"), help="output folder (default results/eval)")
    p.add_argument("--plots", action="store_true",
                   help="write the DDTW matching plot of every prediction (Fig. S4)")
    p.add_argument("--bootstrap", type=int, default=EvalConfig.bootstrap_resamples,
                   help=f"bootstrap resamples for the 95%% CIs (over GT clips; SLCC's paired bootstrap too): at least "
                        f"{MIN_RESAMPLES} (default {EvalConfig.bootstrap_resamples})")
    p.add_argument("--seed", type=int, default=EvalConfig.seed,
                   help=f"seed of those bootstrap resamples (default {EvalConfig.seed}): the same seed, the same CIs")
    p.add_argument("--no-diagnostics", action="store_true",
                   help="leave out the motion diagnostics columns of per_clip.csv (lip_jerk, lip_hf_energy, "
                        "upper_face_motion, lip_amplitude_ratio, lip_amplitude, each also for the GT)")
    p.add_argument("--intensity-weight", type=float, default=None, metavar="MU",
                   help="also PLRS-e (plrs_enrolled, beyond the paper): PLRS-c - MU |lip amplitude / the speaker's "
                        "usual one - 1|, the usual one from the speaker's other GT clips; needs PLRS-c, --gt and "
                        "--templates. MU, in [0, 1], is the evaluator's (p3d.experiments.plrs_intensity_weight)")
    p.add_argument("--speech-cache", type=Path, default=None, metavar="DIR",
                   help="keep PLRS-c's background speech embeddings (every 5th PLRS speech window of each GT clip) "
                        "in DIR, keyed by the evaluator checkpoint, the wav, the frame rate and the speech front-end, "
                        "so later evaluations of other predictions of the same audio reuse them; used only when "
                        "PLRS-c is computed")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = EvalConfig(
        pred=args.pred, gt=args.gt, audio=args.audio, templates=args.templates, dataset=args.dataset,
        fps=args.fps, gt_fps=args.gt_fps, metrics=args.metrics, topology=args.topology, out=args.out,
        plots=args.plots, lve_variant=args.lve_variant, lip_aggregate=args.lip_aggregate,
        plrs_checkpoint=args.plrs_checkpoint, bootstrap_resamples=args.bootstrap, seed=args.seed,
        diagnostics=not args.no_diagnostics, intensity_weight=args.intensity_weight, speech_cache=args.speech_cache,
    )
    report = evaluate(cfg, progress=not args.no_progress)  # checks --out first, before any work
    write_report(report, args.out, plots=args.plots, fps=report.summary["config"]["fps"])
    print(format_summary(report.summary))
    print(f"wrote {args.out / 'per_clip.csv'} and {args.out / 'summary.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - convenience
    from p3d.cli import main as cli_main

    return cli_main(["eval", *(argv or [])])
