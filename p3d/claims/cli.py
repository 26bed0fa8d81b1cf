"""``p3d claims``: judge the paper's claims from a folder of result tables, or compare two such folders.

``p3d claims results/tables`` prints one line per claim (its verdict and what decided it; the rules:
:mod:`p3d.claims`); ``--only 7 11`` shows those claims only (numbered as in ``results/claims.md``).
``p3d claims A --against B`` judges both folders, e.g. the ``results/tables`` of two machines' ``make figures
PRESET=full``, and prints which claims reach the same verdict on the same cases (models, metrics, PLRS referees,
training seeds and test clips), which reach it on different cases (counted apart: not a reproduction of the
verdict) and which differ; ``--out FILE.md`` also writes that report (atomically). ``--strict`` exits 1 when any
verdict differs, rests on different cases or was measured in neither folder (``--only`` narrows the claims it reads).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from p3d.errors import InputError


def register(subparsers: Any) -> None:
    from p3d.cli import file_path_argument, help_text

    p = subparsers.add_parser("claims", help="judge the paper's claims from result tables, or compare two runs",
                              description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tables", type=Path, metavar="TABLES", help="folder of result tables (e.g. results/tables)")
    p.add_argument("--against", type=Path, metavar="TABLES_B", help="a second folder to compare verdicts with")
    p.add_argument("--names", nargs=2, default=None, metavar=("A", "B"),
                   help="labels of the two folders in the comparison (default: their parent folders' paths)")
    p.add_argument("--out", type=file_path_argument("report.md"), help="also write the report to this markdown file")
    p.add_argument("--strict", action="store_true",
                   help="with --against: exit 1 when any verdict differs, rests on different cases or was measured in "
                        "neither folder")
    p.add_argument("--only", type=int, nargs="+", metavar="N",
                   help="show only these claims (numbers as in results/claims.md); --strict then reads them only")
    p.set_defaults(func=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    from p3d.atomic import check_out_file, write_text
    from p3d.claims.catalogue import assess
    from p3d.claims.report import compare_verdicts, comparison_markdown, reproduces, verdict_table_markdown

    for folder in (args.tables, args.against):
        if folder is not None and not folder.is_dir():
            raise InputError(f"{folder}: not a folder of result tables")
        if folder is not None and not any(folder.glob("*.csv")):
            raise InputError(f"{folder}: holds no result tables (*.csv); give the results/tables of `make figures`")
    if args.names is not None and args.against is None:
        raise InputError("--names: needs --against")
    if args.strict and args.against is None:
        raise InputError("--strict: needs --against")
    if args.out is not None:
        check_out_file(args.out, ".md")
    rows = _claim_rows(args.only)
    if args.against is None:
        report, differs = verdict_table_markdown(assess(args.tables).loc[rows]), False
    else:
        names = tuple(args.names) if args.names else _default_names(args.tables, args.against)
        df = compare_verdicts(args.tables, args.against, names).loc[rows]
        report, differs = comparison_markdown(df, names), not reproduces(df, names)
    print(report)
    if args.out is not None:
        write_text(args.out, report + "\n")
    return 1 if args.strict and differs else 0


def _claim_rows(numbers: list[int] | None) -> list[int]:
    """The report rows (:func:`p3d.claims.assess`'s index) of claims ``numbers`` (1-based); every claim for None."""
    from p3d.claims.catalogue import CLAIMS

    if numbers is None:
        return list(range(len(CLAIMS)))
    bad = [n for n in numbers if not 1 <= n <= len(CLAIMS)]
    if bad:
        raise InputError(f"--only {' '.join(map(str, bad))}: the claims are numbered 1-{len(CLAIMS)}")
    return sorted({n - 1 for n in numbers})


def _default_names(a: Path, b: Path) -> tuple[str, str]:
    """Labels for two folders: their parents' paths (``results/tables`` -> ``results``), else the paths as given,
    else ``A`` and ``B`` (a folder against itself)."""
    for pair in ((str(a.resolve().parent), str(b.resolve().parent)), (str(a), str(b))):
        if pair[0] != pair[1]:
            return pair
    return "A", "B"
