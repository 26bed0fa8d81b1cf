import argparse
import subprocess
import sys

from p3d import __version__
from pathlib import Path

import pytest

from p3d.cli import build_parser, main


def test_help_lists_commands(capsys):
    assert main([]) == 2
    assert "eval" in capsys.readouterr().out


def test_version():
    out = subprocess.run([sys.executable, "-m", "p3d", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout


def test_parser_builds():
    assert build_parser().prog == "p3d"


def test_verbosity_before_and_after_the_subcommand():
    parser = build_parser()
    for argv in (["-v", "data", "demo"], ["data", "-v", "demo"], ["data", "demo", "-v"]):
        args = parser.parse_args(argv)
        assert args.verbose and not args.quiet, argv
    args = parser.parse_args(["eval", "--quiet", "--pred", "p", "--gt", "g"])
    assert args.quiet and not args.verbose
    assert not parser.parse_args(["data", "demo"]).verbose


def test_verbose_and_quiet_together_is_an_error(capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        main(["data", "demo", "-v", "--quiet"])
    assert exc.value.code == 2 and "at most one" in capsys.readouterr().err


def test_quiet_prints_nothing_and_hides_info_logs(tmp_path, capsys):
    code = main(["data", "demo", "--out", str(tmp_path / "demo"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0 and captured.out == "" and captured.err == ""
    assert (tmp_path / "demo" / "vocaset" / "FLAME_sample.ply").is_file()


def test_progress_only_on_a_terminal():
    from p3d.cli import progress_enabled

    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    assert progress_enabled(stream=Stream(True))
    assert not progress_enabled(stream=Stream(False))
    assert not progress_enabled(quiet=True, stream=Stream(True))
    assert not progress_enabled(no_progress=True, stream=Stream(True))


def test_cli_turns_progress_off_when_stderr_is_not_a_tty(monkeypatch):
    """main() sets args.no_progress for every command that has the option (stderr is captured here)."""
    import p3d.cli as cli

    seen = {}
    parser = cli.build_parser()
    real_parse = parser.parse_args

    def parse(argv):
        args = real_parse(argv)
        args.func = lambda a: seen.setdefault("no_progress", a.no_progress) and 0
        return args

    monkeypatch.setattr(parser, "parse_args", parse)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main(["eval", "--pred", "p", "--gt", "g"]) == 0
    assert seen["no_progress"] is True


def test_invocation_spells_the_program_as_started(tmp_path, monkeypatch):
    from p3d.cli import invocation

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    script = tmp_path / ".venv" / "bin" / "p3d"
    assert invocation(str(script), "/usr/bin/python3") == ".venv/bin/p3d"
    assert invocation(".venv/bin/p3d", "/usr/bin/python3") == ".venv/bin/p3d"
    assert invocation("/opt/p3d/bin/p3d", "/usr/bin/python3") == "/opt/p3d/bin/p3d"
    main_py = "/src/p3d/__main__.py"
    assert invocation(main_py, str(tmp_path / ".venv" / "bin" / "python")) == ".venv/bin/python -m p3d"
    assert invocation("", "/usr/bin/python3") == ".venv/bin/p3d"  # from Python or a notebook: the README's


def test_help_texts_name_no_work_items():
    """--help of every command is for users: no developer notes (issue numbers, TODOs) and no Sphinx markup."""
    import re

    parser = build_parser()
    from p3d.cli import _subparsers

    stack = [parser]
    while stack:
        p = stack.pop()
        text = p.format_help()
        assert not re.search(r"\bissue \d|\bTODO\b|\bFIXME\b|\bXXX\b", text, re.IGNORECASE), p.prog
        assert not re.search(r":(mod|func|class|meth|data|attr):`|``", text), p.prog
        stack.extend(_subparsers(p))


def test_a_list_of_numbers_starting_with_a_negative_one_is_an_options_value():
    """``p3d study make --speech-gains-db -6,0,6`` ended in argparse's "expected one argument" (a token starting
    with ``-`` that is not one negative number is taken for an option): it is the option's value now."""
    from p3d.cli import build_parser, joined_negative_lists

    argv = ["study", "make", "--design", "rank", "--gt", "g", "--out", "o", "--speech-gains-db", "-6,0,6",
            "--lip-scales", "0.5,1"]
    args = build_parser().parse_args(joined_negative_lists(argv))
    assert args.speech_gains_db == (-6.0, 0.0, 6.0) and args.lip_scales == (0.5, 1.0)
    assert joined_negative_lists(["--a", "-.5,1e3", "--b", "-1e-3,2", "--c=-1,2"]) == [
        "--a=-.5,1e3", "--b=-1e-3,2", "--c=-1,2"]
    # single negative numbers, short options and other tokens are left to argparse
    assert joined_negative_lists(["--only", "-1", "-v", "-6,0"]) == ["--only", "-1", "-v", "-6,0"]


def test_an_empty_path_is_refused_not_read_as_the_working_folder(tmp_path, monkeypatch, capsys):
    """``Path("")`` is ``.``: ``p3d export --out ""`` (an unset shell variable) wrote its frames into the working
    folder with exit code 0, ``p3d eval --out ""`` its report. Every path option now refuses the empty string."""
    import argparse

    import numpy as np
    import pytest

    seq = tmp_path / "seq.npy"
    np.save(seq, np.zeros((2, 5023 * 3), np.float32))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(SystemExit) as exc:
        main(["export", "--format", "obj", "--in", str(seq), "--out", ""])
    assert exc.value.code == 2 and "--out: an empty path" in capsys.readouterr().err
    assert list(work.iterdir()) == []
    for argv in (["eval", "--pred", ""], ["render", "--seq", str(seq), "", "--out", "x.mp4"],
                 ["convert", "--from", "p3d", "--to", "official", "a.pt", ""]):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(argv)
        assert exc.value.code == 2, argv
    parser = build_parser()  # no path action is left with the bare Path type
    stack = [parser]
    while stack:
        p = stack.pop()
        assert not [a.dest for a in p._actions if a.type is Path], p.prog
        stack.extend(s for a in p._actions if isinstance(a, argparse._SubParsersAction) for s in a.choices.values())


@pytest.mark.parametrize("argv, example", [
    (["convert", "--from", "p3d", "--to", "official", "in.pt", "{out}"], "out.pt"),
    (["render", "--seq", "a.npy", "--out", "{out}"], "out.mp4"),
    (["claims", "tables", "--out", "{out}"], "report.md"),
])
@pytest.mark.parametrize("out", ["newdir/", "newdir/."])
def test_an_output_file_option_refuses_a_folder_like_name(argv, example, out, tmp_path, monkeypatch, capsys):
    """``Path("newdir/") == Path("newdir")``: ``p3d convert IN newdir/`` (OUTPUT meant as a folder) wrote a file
    named ``newdir``, ``p3d claims --out rep/`` a file ``rep``. An output-FILE option now refuses a name ending in
    a separator (or ``/.``) with one line and exit 2, before anything is read or written."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([a.replace("{out}", out) for a in argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert f"ends with '{out[6:]}': expected a file name, e.g. {example}" in err
    assert list(tmp_path.iterdir()) == []
    assert build_parser().parse_args([a.replace("{out}", "d/x" + example[3:]) for a in argv])  # a file name passes



@pytest.mark.parametrize("argv", [
    ["eval", "--metrics", "lve,,fdd"], ["eval", "--metrics", "lve,"],
    ["predict", "--run", "{d}", "--split", "test", "--data", "{d},,{d}"],
    ["predict", "--checkpoint", "{d}/v.pth", "--model", "faceformer", "--data", "{d}", "--styles", "a,,b"],
    ["train", "talker", "--model", "faceformer", "--train", "{d},"],
], ids=["eval-metrics", "eval-metrics-trailing", "predict-data", "predict-styles", "train-talker-train"])
def test_an_empty_item_of_a_comma_separated_list_is_refused(argv, tmp_path, capsys):
    """``p3d eval --metrics lve,,fdd`` computed ``lve,fdd`` and ``--data A,,B``, ``--styles a,,b``, ``--train A,``
    dropped the empty item silently (a stray comma, an unset variable in ``"$A,$B"``), while ``--fps``,
    ``--lip-scales`` and ``--speech-gains-db`` refused one. Every comma-separated option now refuses it, on one
    error line with exit code 2, before any work (:func:`p3d.cli.comma_items`)."""
    out = tmp_path / "out"
    argv = [a.format(d=tmp_path) for a in argv] + ["--out", str(out)]
    if argv[0] == "eval":
        argv += ["--pred", str(tmp_path)]
    try:
        rc = main(argv)
    except SystemExit as exc:  # an argparse type error: one error line
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "an empty item" in err[-1], err
    assert not out.exists()


@pytest.mark.parametrize("option", ["--train", "--data"])
@pytest.mark.parametrize("value, expected", [("{d},", "an empty item"), (",", "no corpus folder given")])
def test_train_talker_corpus_errors_name_the_data_option_too(option, value, expected, tmp_path, capsys):
    """``--data`` is a synonym of ``p3d train talker --train``, but ``--data A,`` was answered
    "--train 'A,': an empty item": an option the user had not typed. The messages name both."""
    argv = ["train", "talker", "--model", "faceformer", option, value.format(d=tmp_path), "--out", str(tmp_path / "o")]
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].count("--train/--data") == 1 and expected in err[0], err


def test_comma_items():
    from p3d.cli import comma_items

    assert comma_items(" lve , fdd ", "--metrics") == ["lve", "fdd"] and comma_items(" , ", "--x") == []
    with pytest.raises(ValueError, match="--x 'a,,b': an empty item"):
        comma_items("a,,b", "--x")


@pytest.mark.parametrize("argv, expected", [
    (["eval"], "the following arguments are required: --pred"),
    (["train", "talker", "--model", "nope"], "invalid choice: 'nope'"),
    (["data"], "required: SUBCOMMAND"),
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["eval", "--pred", "x", "--metrics", "lve,,fdd"], "an empty item"),
    (["eval", "--pred", "x", "--metrics", ","], "empty metric list"),
], ids=["missing-option", "bad-choice", "missing-subcommand", "unknown-command", "type-error", "no-metrics"])
def test_usage_errors_are_one_line_and_exit_2(argv, expected, capsys):
    """argparse's usage errors printed the whole usage synopsis (13 lines for ``p3d eval``) before the error line;
    like every other bad input they are one line, exit code 2, pointing to ``-h``."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and expected in err[0] and err[0].endswith("-h')"), err


def _options(parser):
    """(prog, action) of every option of every command and subcommand of ``parser``."""
    from p3d.cli import _subparsers

    stack = [parser]
    while stack:
        p = stack.pop()
        yield from ((p.prog, a) for a in p._actions if a.option_strings)
        stack.extend(_subparsers(p))


def test_a_number_stated_as_an_options_default_is_its_default():
    """Where an option's help states a numeric default ("(default 2000)"), it is the value the option gets; and
    `p3d eval --bootstrap` / `--seed` state theirs ("bootstrap seed" said nothing of 0, the resample count nothing
    of 2000), which are also :class:`EvalConfig`'s (the Python API's)."""
    import re

    from p3d.evaluate.config import EvalConfig

    checked = 0
    for prog, action in _options(build_parser()):
        stated = re.findall(r"\bdefault:? (-?\d+(?:\.\d+)?(?:e-?\d+)?)\b(?![,.]\d)", action.help or "")
        try:
            default = None if isinstance(action.default, bool) else float(action.default)
        except (TypeError, ValueError):       # None (worked out later), a path, a name, a list
            default = None
        if stated and default is not None:
            assert float(stated[0]) == default, (prog, action.option_strings, stated, action.default)
            checked += 1
    assert checked >= 15
    ev = {a.dest: a for prog, a in _options(build_parser()) if prog == "p3d eval"}
    for dest, value in (("bootstrap", EvalConfig.bootstrap_resamples), ("seed", EvalConfig.seed)):
        assert ev[dest].default == value and f"(default {value})" in ev[dest].help
    assert "PLRS-c" in ev["speech_cache"].help     # it caches PLRS-c's background, nothing else


def test_the_readmes_eval_table_lists_every_option_of_p3d_eval():
    """README's `p3d eval` table left out --out, --bootstrap, --seed and --speech-cache. Every option is in it
    now but for those a user needs no row for (help, output verbosity, the progress bar)."""
    import re

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text.split("## Evaluating your own predictions: `p3d eval`", 1)[1].split("\n\n**", 1)[0]
    rows = [line.split(" | ")[0] for line in section.splitlines() if line.startswith("| `--")]
    listed = set(re.findall(r"`(--[a-z0-9-]+)", " ".join(rows)))
    options = {o for prog, a in _options(build_parser()) if prog == "p3d eval" for o in a.option_strings
               if o.startswith("--")}
    left_out = {"--help", "--verbose", "--quiet", "--no-progress"}
    assert options - left_out - listed == set()
    assert listed <= options


def test_every_option_of_every_command_has_a_help_text():
    """`p3d data synth --help` listed --corpus, --preset, --seed and --no-progress with no text, `p3d study make`
    and `p3d study analyze` their --seed (what it seeds, and its default) and `study make` its --no-progress."""
    bare = [(prog, a.option_strings) for prog, a in _options(build_parser())
            if a.help != argparse.SUPPRESS and not (a.help or "").strip()]
    assert bare == []
    # p3d train --seed's help states the recipes' seeds (it stated none): 0, the evaluator's 1, at every preset
    from p3d.registry import MODEL_PRESETS
    from p3d.train import critics

    seed = next(a for prog, a in _options(build_parser()) if prog == "p3d train stage1" and a.dest == "seed")
    assert "(default: the recipe's, 0; evaluator: 1)" in seed.help
    assert {(k, critics.recipe(k, p).seed) for k in critics.KINDS for p in MODEL_PRESETS} == {
        (k, 1 if k == "evaluator" else 0) for k in critics.KINDS}


def test_the_tables_of_help_texts_keep_their_columns():
    """`p3d data synth --help` printed its corpus table with the first column 2 characters short ("``synth-voca``"
    became "`synth-voca`" and the rest of the row moved left of its "====" rule). In every table of every
    --help text, each row leaves blank the gaps between the rule's columns."""
    import re

    from p3d.cli import _subparsers

    checked, stack = 0, [build_parser()]
    while stack:
        p = stack.pop()
        stack.extend(_subparsers(p))
        lines = (p.description or "").splitlines()
        rules = [i for i, line in enumerate(lines) if re.fullmatch(r"=+( +=+)+", line)]
        for top, bottom in zip(rules[::3], rules[2::3]):   # a table: top rule, header, rule, rows, bottom rule
            gaps = [m.start() for m in re.finditer(r"(?<==) ", lines[top])]
            for line in lines[top + 1:bottom]:
                assert all(len(line) <= g or line[g] == " " for g in gaps), (p.prog, line)
            checked += 1
    assert checked >= 2


def test_eval_metric_names_are_read_in_any_case_as_the_help_says(capsys):
    """``--metrics LVE,Fdd`` is ``lve,fdd`` (the names of the paper's tables are upper case), as ``--help`` states."""
    from p3d.evaluate.cli import _metric_list

    assert _metric_list("LVE,Fdd, plrs_CALIBRATED") == ("lve", "fdd", "plrs_calibrated")
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "in any case" in " ".join(capsys.readouterr().out.split())
