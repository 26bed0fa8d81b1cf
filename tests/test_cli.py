import subprocess
import sys

from p3d import __version__
from p3d.cli import build_parser, main


def test_help_lists_commands(capsys):
    assert main([]) == 2
    assert "eval" in capsys.readouterr().out


def test_version():
    out = subprocess.run([sys.executable, "-m", "p3d", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout


def test_parser_builds():
    assert build_parser().prog == "p3d"
