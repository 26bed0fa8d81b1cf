"""``p3d data``: write datasets: the small demo fixtures (``demo``), the synthetic corpora (``synth``) and the
processed VOCASET layout from the raw release (``vocaset``)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from p3d.cli import help_text


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("data", help="write the demo fixtures, the synthetic corpora, or processed VOCASET from the raw release",
                              description=help_text(__doc__))
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    d = sub.add_parser("demo", help="write the small demo datasets (VOCASET and MEAD layouts, FLAME-sized)",
                       description="Write p3d's demo fixtures (synthetic geometry in the real VOCASET and MEAD "
                                   "layouts, with predictions) and print the commands that try `p3d eval` and "
                                   "`p3d render` on them.")
    d.add_argument("--out", type=Path, default=Path("data/demo"), help="output folder (default data/demo)")
    d.add_argument("--seed", type=int, default=0, help="random seed of the demo data (default 0)")
    d.set_defaults(func=run_demo)

    from p3d.datasets.vocaset import add_vocaset_parser

    add_vocaset_parser(sub)

    try:
        from p3d.synth import corpus  # noqa: F401  (the corpus builder registers `data synth`)
    except ImportError:
        return
    corpus.register_cli(sub)


def run_demo(args: argparse.Namespace) -> int:
    from p3d.atomic import check_out_dir
    from p3d.cli import invocation
    from p3d.demo import demo_commands, write_demo_dataset

    check_out_dir(args.out)
    paths = write_demo_dataset(args.out, seed=args.seed)
    commands = demo_commands(paths, invocation())
    print(f"wrote {paths.root}\n"
          f"evaluate the demo predictions (per_clip.csv, summary.json, MTM plots):\n  {commands['eval']}\n"
          f"render ground truth and a prediction side by side (mp4 with sound):\n  {commands['render']}")
    return 0
