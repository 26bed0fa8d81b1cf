"""The ``p3d`` command line.

Each command lives in its own module, which exposes ``register(subparsers)``: it adds its parser
and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
Modules keep their heavy imports (torch, pyvista, ...) inside their functions, so ``p3d --help``
stays fast. :class:`p3d.errors.InputError` becomes a one-line message and exit code 2.

Options every command accepts, before or after its name (``p3d -v eval ...`` = ``p3d eval -v ...``):
``-v/--verbose`` (debug log lines) and ``-q/--quiet`` (only warnings and errors: no log lines below
WARNING, no progress bars, no summaries on stdout). Progress bars are also off when stderr is not a
terminal (a log file, a pipe, CI): :func:`main` sets ``args.no_progress`` for every command that
has that option.

Commands that p3d prints for the user to run next are spelled with :func:`invocation`, the way this
process was started (``.venv/bin/p3d``, ``p3d`` when that is on ``PATH``, or ``python -m p3d``), so
they run verbatim in a fresh shell where the virtual environment is not activated.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from typing import NoReturn
from pathlib import Path

from p3d import __version__
from p3d.errors import EXIT_BAD_INPUT, InputError, joined_lines
from p3d.progress import show_progress

log = logging.getLogger("p3d")

#: Modules that register a top-level command, in the order ``p3d --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "p3d.evaluate",
    "p3d.predict",
    "p3d.render",
    "p3d.synth.cli",
    "p3d.train.cli",
    "p3d.study.cli",
    "p3d.convert",
    "p3d.export",
    "p3d.claims.cli",
)

VERBOSITY_HELP = {
    "verbose": "debug log lines",
    "quiet": "only warnings and errors: no progress bars, no summaries",
}


def help_text(doc: str | None) -> str:
    """A module docstring as ``--help`` text: Sphinx roles and double backticks become plain
    `code` (:mod:`p3d.x` -> `p3d.x`, ``--fps`` -> `--fps`). A ``code`` cell of a docstring table (followed by
    two or more spaces) keeps its width, so the columns after it stay under their ``====`` rules."""
    import re

    text = re.sub(r":(?:mod|func|class|meth|data|attr|obj):`~?([^`]+)`", r"`\1`", doc or "")
    text = re.sub(r"``([^`]+)``(?=  )", r"`\1`  ", text)
    return text.replace("``", "`").strip()


class OneLineErrorParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line and exit code 2, like every other bad input
    (:class:`p3d.errors.InputError`): ``p3d eval: error: the following arguments are required: --pred (see 'p3d
    eval -h')``. argparse's own ``error`` printed the whole usage synopsis (up to a dozen lines for ``p3d eval``)
    before the error line. Subcommand parsers inherit the class (``add_subparsers`` uses ``type(parent)``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {joined_lines(message)} (see '{self.prog} -h')\n")


def _add_verbosity(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``-v/--verbose`` and ``-q/--quiet`` on ``parser``. Below the top level their default is
    SUPPRESS, so a subcommand that does not see them keeps the value given before its name."""
    default: object = False if top else argparse.SUPPRESS
    group = parser.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="store_true", default=default, help=VERBOSITY_HELP["verbose"])
    group.add_argument("-q", "--quiet", action="store_true", default=default, help=VERBOSITY_HELP["quiet"])


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = []
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            out.extend(dict.fromkeys(action.choices.values()))  # aliases map to the same parser
    return out


def _add_verbosity_everywhere(parser: argparse.ArgumentParser) -> None:
    for sub in _subparsers(parser):
        _add_verbosity(sub, top=False)
        _add_verbosity_everywhere(sub)


def path_argument(text: str) -> Path:
    """The argparse ``type`` of every path option and argument: ``Path(text)``, refusing the empty string
    (``--out "$UNSET"``), which ``Path`` reads as ``.``: ``p3d eval --out ""`` wrote its report into the working
    folder and ``p3d export --out ""`` its frames there, with exit code 0."""
    if text == "":
        raise argparse.ArgumentTypeError("an empty path (an unset shell variable?); give a file or folder name")
    return Path(text)


def file_path_argument(example: str):
    """The argparse ``type`` of an option naming an output FILE (``example`` shows one, e.g. ``out.pt``):
    :func:`path_argument`, also refusing a value that ends in a path separator or ``/.``, which ``Path`` drops
    (``Path("newdir/") == Path("newdir")``): ``p3d convert IN newdir/`` wrote a file named ``newdir``."""

    def file_path(text: str) -> Path:
        path = path_argument(text)
        base = os.path.basename(text)  # "" after a trailing separator
        tail = text[-1] if base == "" else text[-len(base) - 1:] if base in (".", "..") else ""
        if tail:
            raise argparse.ArgumentTypeError(f"ends with {tail!r}: expected a file name, e.g. {example}")
        return path

    return file_path


def _refuse_empty_paths(parser: argparse.ArgumentParser) -> None:
    """Every ``type=Path`` action of ``parser`` and its subcommands reads its value with :func:`path_argument`."""
    for action in parser._actions:
        if action.type is Path:
            action.type = path_argument
    for sub in _subparsers(parser):
        _refuse_empty_paths(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="p3d",
        description="Perceptually accurate 3D talking heads: data, training and lip-sync metrics.",
    )
    parser.add_argument("--version", action="version", version=f"p3d {__version__}")
    _add_verbosity(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command whose module is not part of this build
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue
            raise
        module.register(subparsers)
    _add_verbosity_everywhere(parser)
    _refuse_empty_paths(parser)
    return parser


def invocation(argv0: str | None = None, executable: str | None = None) -> str:
    """How to start p3d again from a fresh shell in the current folder, as this process was started.

    - the console script (``argv0`` = ``sys.argv[0]``, e.g. ``/repo/.venv/bin/p3d``): ``p3d`` if
      that name on ``PATH`` is this very script, else its path, relative to the working folder when
      it lies below it (``.venv/bin/p3d``), absolute otherwise;
    - ``python -m p3d`` (``argv0`` ends in ``__main__.py``): ``<interpreter> -m p3d``, the
      interpreter spelled the same way;
    - anything else (e.g. called from Python, a notebook): ``.venv/bin/p3d`` (the README's set-up).
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    if argv0 and Path(argv0).name == "__main__.py":
        return f"{_spell_program(executable)} -m p3d"
    if argv0 and Path(argv0).name == "p3d":
        return _spell_program(argv0)
    return ".venv/bin/p3d"


def _spell_program(path: str) -> str:
    """``path`` as the shortest spelling that runs it from the working folder of a fresh shell."""
    full = Path(path).absolute()
    on_path = shutil.which(full.name)
    if on_path and Path(on_path).absolute() == full:
        return full.name
    try:
        return shlex.quote(str(full.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(full))


def progress_enabled(no_progress: bool = False, quiet: bool = False, stream: object | None = None) -> bool:
    """Whether a command shows progress bars: not asked off, not ``--quiet``, and ``stream``
    (default stderr, where tqdm draws) is a terminal."""
    return not no_progress and not quiet and show_progress(None, stream)


def comma_items(text: str, option: str) -> list[str]:
    """The stripped items of a comma-separated option value (``--metrics lve,fdd`` -> ``["lve", "fdd"]``); ``[]``
    when there is none (``""``, ``","``: the caller says what an empty list means). :class:`InputError` for an empty
    item among others (``lve,,fdd``, ``a,``), which was dropped silently: a stray comma or an unset shell variable
    (``--data "$A,$B"``) meant fewer items than written, as ``--fps``, ``--lip-scales`` and ``--speech-gains-db``
    already refuse."""
    items = [x.strip() for x in str(text).split(",")]
    if not any(items):
        return []
    if not all(items):
        raise InputError(f"{option} {text!r}: an empty item (a stray comma or an unset variable?); "
                         "give the items comma-separated, e.g. a,b")
    return items


#: A comma-separated list of numbers that starts with a negative one (``-6,0,6``): argparse takes any token that
#: starts with ``-`` and is not a single negative number for an option, so ``--speech-gains-db -6,0,6`` failed
#: with "expected one argument".
_NEGATIVE_LIST = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?(,[^,\s]*)+")


def joined_negative_lists(argv: Sequence[str]) -> list[str]:
    """``argv`` with each long option followed by a list of numbers starting with a negative one written as one
    token (``--speech-gains-db -6,0,6`` -> ``--speech-gains-db=-6,0,6``), so argparse reads it as the option's value."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE_LIST.fullmatch(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(joined_negative_lists(sys.argv[1:] if argv is None else argv))
    if args.verbose and args.quiet:
        parser.error("give at most one of -v/--verbose and -q/--quiet")
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # also when a host (pytest, a notebook) configured logging first
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    if hasattr(args, "no_progress"):
        args.no_progress = not progress_enabled(args.no_progress, args.quiet)
    try:
        with contextlib.ExitStack() as stack:
            if args.quiet:
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
            return int(args.func(args) or 0)
    except InputError as exc:
        print(f"p3d {args.command}: error: {joined_lines(str(exc))}", file=sys.stderr)  # one line, always
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("p3d: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
