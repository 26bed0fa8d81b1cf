r"""``p3d study make|analyze``: perceptual user studies (paper Table 1, S3-S6).

    p3d study make --design ab --conditions base=PRED_A ours=PRED_B --gt CORPUS --out STUDY_DIR
    p3d study make --design ab --question correspondence --conditions temporal=gt:lip=0.5 expressive=gt:lag_ms=100 \
        --gt CORPUS --out STUDY_DIR                                     # Table 1 right, from the GT
    p3d study make --design rank --gt CORPUS --out STUDY_DIR            # Table 1 left (3x3 intensities)
    p3d study make --design rank --rank-over conditions --conditions gt=gt ff=PRED_FF ... --out STUDY_DIR
    p3d study analyze STUDY_DIR/responses/* [--metrics ff=EVAL_DIR ...]

make renders the videos and writes manifest.json and survey.html. Give participants the whole study
folder (survey.html needs stimuli/ next to it) or, with --single-file, survey.html alone (videos
embedded; large). Each participant opens survey.html in a browser (no server), enters their code
(P01, P02, ...), agrees to the consent text, does one practice screen, answers the trials and
downloads an answer file at the end. Put the answer files into STUDY_DIR/responses/ and run analyze:
participants who miss or fail an attention check, or whose file records no consent, are excluded.
Answer files are checked field by field and may be at most 5 MB.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from p3d.errors import InputError


def _floats(text: str) -> tuple[float, ...]:
    """``--lip-scales`` / ``--speech-gains-db``: comma-separated numbers. An empty item (``-9,,9``, ``0.5,1,``) is
    refused, not dropped: the number of values is the number of levels of the design (Table 1 left)."""
    from p3d.cli import comma_items

    try:
        items = comma_items(text, "")
    except InputError:
        raise argparse.ArgumentTypeError(f"an empty item in {text!r}; give one number per level, e.g. -9,0,9") from None
    if not items:
        raise argparse.ArgumentTypeError("empty list")
    try:
        return tuple(float(x) for x in items)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def parse_named_paths(items: list[str], option: str) -> dict[str, Path]:
    """``NAME=PATH`` strings -> {name: path}."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"{option} {item!r}: expected NAME=PATH")
        if name in out:
            raise InputError(f"{option}: {name!r} given twice")
        out[name] = Path(path)
    return out


def register(subparsers: Any) -> None:
    from p3d.cli import help_text

    p = subparsers.add_parser("study", help="build and analyse perceptual user studies (Table 1, S3-S6)",
                              description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="study_command", metavar="SUBCOMMAND", required=True)

    m = sub.add_parser("make", help="render the videos, manifest and survey page of a study",
                       description="Render a study's videos and write its manifest and survey page. Inputs are "
                                   "checked first; on any error nothing is left in --out.")
    m.add_argument("--design", choices=["ab", "rank"], required=True,
                   help="ab: A/B preference (Table 1 right, S4-S6); rank: ranking (Table 1 left, S3)")
    m.add_argument("--conditions", nargs="+", default=[], metavar="NAME=SOURCE",
                   help="NAME=PRED_DIR or NAME=gt, optionally with a transform suffix, e.g. late=gt:lag_ms=100 "
                        "or damped=PRED_DIR:lip=0.5 (keys lip, lag_ms, gain_db, audio_shift_ms, freeze; lag_ms "
                        "must be whole frames at --fps); "
                        "MODEL/VARIANT names group A/B pairs by model")
    m.add_argument("--pairs", nargs="+", metavar="A,B", help="A/B pairs (default: every pair within a model)")
    m.add_argument("--rank-over", choices=["intensity", "conditions"], default="intensity",
                   help="rank design: lip-intensity variants of one source (Table 1 left, default) or the conditions")
    m.add_argument("--gt", type=Path, required=True, help="GT .npy folder or corpus root (vertices_npy/, wav/, meta.json)")
    m.add_argument("--audio", type=Path, help="folder of <gt_stem>.wav (default: GT/wav)")
    m.add_argument("--clips", type=int, default=6, help="clips drawn at random (default 6)")
    m.add_argument("--clip-names", nargs="+", help="use these GT stems instead of drawing clips")
    m.add_argument("--seed", type=int, default=0,
                   help="seed of the clips drawn, the practice and attention-check clips, the participants' trial "
                        "orders and the opaque ids (default 0)")
    m.add_argument("--participants", type=int, default=24, help="participant codes to prepare (default 24)")
    m.add_argument("--attention-checks", type=int, default=2, help="attention-check trials (default 2)")
    m.add_argument("--check-shift-ms", type=float, default=500.0, help="audio/lip shift of the checks (default 500)")
    m.add_argument("--lip-scales", type=_floats, default=(0.5, 1.0, 1.5), help="lip levels (default 0.5,1,1.5)")
    m.add_argument("--speech-gains-db", type=_floats, default=(-9.0, 0.0, 9.0),
                   help="speech levels in dB (default -9,0,9)")
    m.add_argument("--question", help="lipsync | quality | correspondence | rank, or a custom question text "
                                      "(default: lipsync for --design ab, rank for --design rank)")
    m.add_argument("--fps", type=float,
                   help="frame rate of predictions and videos (default: the corpus' model_fps, else its fps, else 30)")
    m.add_argument("--gt-fps", type=float, help="frame rate of the GT files (default: corpus fps or --fps)")
    m.add_argument("--topology", help="topology name or .npz (default: GT/topology.npz or the corpus' topology)")
    m.add_argument("--faces", type=Path, help="a .ply mesh whose triangles to render (e.g. FLAME_sample.ply)")
    m.add_argument("--templates", type=Path, help="templates.pkl (neutral faces; default GT/templates.pkl)")
    m.add_argument("--size", type=int, default=400, help="video width and height in pixels (default 400)")
    m.add_argument("--max-seconds", type=float, help="cut clips to this length")
    m.add_argument("--confidence", choices=["off", "optional", "required"], default="optional",
                   help="ask A/B confidence 1-5 (default optional)")
    m.add_argument("--allow-partial-view", action="store_true",
                   help="allow answering after starting each video (default: each must be watched to the end)")
    m.add_argument("--title", default="Talking-head study", help="title shown to participants")
    m.add_argument("--consent-text", help="consent text participants must agree to before the trials "
                                          "(default: a short generic text; use your ethics-approved wording)")
    m.add_argument("--no-practice", action="store_true",
                   help="no practice screen (default: one unscored practice screen before the trials)")
    m.add_argument("--single-file", action="store_true",
                   help="embed the videos in survey.html so it works without stimuli/ (the page is about 4/3 "
                        "of the videos' total size; a warning is printed above 50 MB)")
    m.add_argument("--out", type=Path, required=True, help="study folder")
    m.add_argument("--overwrite", action="store_true", help="rebuild an existing study (refused if it has responses or analysis files)")
    m.add_argument("--no-progress", action="store_true", help="no progress bar")
    m.set_defaults(func=run_make)

    a = sub.add_parser("analyze", help="tables, tests and agreement from the participants' answer files",
                       description="Analyse a study's answer files: exclusions (attention checks, consent), "
                                   "preference tables with tests and intervals, agreement. Each file is checked "
                                   "(at most 5 MB); practice answers are ignored.")
    a.add_argument("responses", nargs="+", type=Path,
                   help="answer files (.json/.csv) or folders (a study folder: its responses/)")
    a.add_argument("--study", type=Path, help="study folder (default: the parent of responses/)")
    a.add_argument("--metrics", nargs="+", metavar="NAME=EVAL_DIR",
                   help="p3d eval output (per_clip.csv) per condition, for Table S3")
    a.add_argument("--max-failed-checks", type=int, default=0,
                   help="attention checks a participant may fail or skip and still be included (default 0)")
    a.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (default 2000)")
    a.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    a.add_argument("--out", type=Path, help="output folder (default STUDY_DIR/analysis)")
    a.set_defaults(func=_run_analyze)


def run_make(args: argparse.Namespace) -> int:
    from p3d.study import design
    from p3d.study.make import MakeConfig, make_study

    conditions = [design.parse_condition(c) for c in args.conditions]
    pairs = design.parse_pairs(args.pairs, conditions) if args.pairs else None
    cfg = MakeConfig(design=args.design, gt=args.gt, out=args.out, conditions=conditions, audio=args.audio,
                     pairs=pairs, rank_over=args.rank_over, clips=args.clips, clip_names=args.clip_names,
                     seed=args.seed, participants=args.participants, attention_checks=args.attention_checks,
                     check_shift_ms=args.check_shift_ms, lip_scales=args.lip_scales,
                     speech_gains_db=args.speech_gains_db, question=args.question, fps=args.fps,
                     gt_fps=args.gt_fps, topology=args.topology, faces=args.faces, templates=args.templates,
                     size=args.size, max_seconds=args.max_seconds, confidence=args.confidence,
                     require_full_view=not args.allow_partial_view, title=args.title,
                     practice=not args.no_practice, consent_text=args.consent_text, single_file=args.single_file,
                     overwrite=args.overwrite)
    manifest = make_study(cfg, progress=not args.no_progress)
    from p3d.cli import invocation

    print(f"wrote {len(manifest['stimuli'])} videos, {len(manifest['trials'])} trials "
          f"({manifest['attention']['n_checks']} attention checks) and {len(manifest['participants'])} participant "
          f"codes to {args.out}\nopen {args.out / 'survey.html'} in a browser"
          f"{'' if args.single_file else ' (it needs the stimuli/ folder next to it)'}; put the answer files "
          f"into {args.out / 'responses'} and run: {invocation()} study analyze {args.out / 'responses'}")
    return 0


def _run_analyze(args: argparse.Namespace) -> int:
    from p3d.atomic import check_out_dir
    from p3d.study.analyze import analyze, answer_paths, format_analysis, study_folder_of, write_analysis

    paths = answer_paths(args.responses)
    study = args.study or study_folder_of(paths)
    metrics = parse_named_paths(args.metrics or [], "--metrics")
    out = args.out or Path(study) / "analysis"
    check_out_dir(out)  # before the analysis
    result = analyze(study, paths, metrics=metrics, max_failed_checks=args.max_failed_checks,
                     n_resamples=args.bootstrap, seed=args.seed)
    write_analysis(result, out)
    print(format_analysis(result))
    print(f"wrote the tables and summary.json to {out}")
    return 0
