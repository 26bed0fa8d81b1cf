"""``p3d data``: write datasets: the small demo fixtures (``demo``) and the synthetic corpora (``synth``)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("data", help="write the demo fixtures or the synthetic corpora",
                              description=__doc__)
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    d = sub.add_parser("demo", help="write the small demo datasets (VOCASET and MEAD layouts, FLAME-sized)",
                       description="Write p3d's demo fixtures (synthetic geometry in the real VOCASET and MEAD "
                                   "layouts, with predictions) for trying `p3d eval`.")
    d.add_argument("--out", type=Path, default=Path("data/demo"), help="output folder (default data/demo)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=run_demo)

    try:
        from p3d.synth import corpus  # noqa: F401  (the corpus builder registers `data synth`)
    except ImportError:
        return
    corpus.register_cli(sub)


def run_demo(args: argparse.Namespace) -> int:
    from p3d.demo import write_demo_dataset

    paths = write_demo_dataset(args.out, seed=args.seed)
    v = paths.vocaset
    print(f"wrote {paths.root}\ntry:\n  p3d eval --pred {v}/pred --gt {v} --audio {v}/wav --templates {v}/templates.pkl "
          f"--topology {v}/FLAME_masks.pkl --gt-fps 60 --out results/eval_demo --plots")
    return 0
