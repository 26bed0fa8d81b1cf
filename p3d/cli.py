"""The ``p3d`` command line.

Each command lives in its own module, which exposes ``register(subparsers)``: it adds its parser
and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
Modules keep their heavy imports (torch, pyvista, ...) inside their functions, so ``p3d --help``
stays fast. :class:`p3d.errors.InputError` becomes a one-line message and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from p3d import __version__
from p3d.errors import EXIT_BAD_INPUT, InputError

log = logging.getLogger("p3d")

#: Modules that register a top-level command, in the order ``p3d --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "p3d.evaluate",
    "p3d.predict",
    "p3d.render_cli",
    "p3d.synth.cli",
    "p3d.train.cli",
    "p3d.study.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p3d",
        description="Perceptually accurate 3D talking heads: data, training and lip-sync metrics.",
    )
    parser.add_argument("--version", action="version", version=f"p3d {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command whose module is not part of this build
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"p3d {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("p3d: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
