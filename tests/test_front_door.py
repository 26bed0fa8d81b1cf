"""The front door: what a new user runs first works verbatim.

The commands that ``p3d data demo`` prints run as printed in a fresh shell whose PATH does not hold
the virtual environment; ``p3d.viz.show`` puts a PNG into a notebook.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def fresh_env() -> dict[str, str]:
    """A shell environment without the virtual environment on PATH (nothing activated)."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and Path(p).resolve() != Path(bin_dir).resolve())
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = path or "/usr/bin:/bin"
    env["PYTHONPATH"] = str(ROOT)  # the checkout under test, also when p3d is installed from elsewhere
    env["OMP_NUM_THREADS"] = "1"
    return env


def printed_commands(stdout: str) -> dict[str, list[str]]:
    """{"eval": argv, "render": argv} from the indented command lines ``p3d data demo`` prints."""
    lines = [line.strip() for line in stdout.splitlines() if line.startswith("  ")]
    out = {}
    for line in lines:
        argv = shlex.split(line)
        sub = argv[argv.index("-m") + 2] if "-m" in argv else argv[1]
        out[sub] = argv
    return out


def test_demo_prints_commands_that_run_verbatim(tmp_path):
    env = fresh_env()
    demo = subprocess.run([sys.executable, "-m", "p3d", "data", "demo", "--out", str(tmp_path / "demo")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert demo.returncode == 0, demo.stderr
    commands = printed_commands(demo.stdout)
    assert set(commands) == {"eval", "render"}, demo.stdout
    for argv in commands.values():
        assert argv[0] == sys.executable and argv[1:3] == ["-m", "p3d"], argv  # how it was started
    ev = commands["eval"] + ["--bootstrap", "50", "--metrics", "lve,mtm"]
    ev = [a for a in ev if a != "--plots"]  # keep the test fast; the command itself is unchanged
    proc = subprocess.run(ev, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "results" / "eval_demo" / "summary.json").is_file()
    assert "it/s" not in proc.stderr and "%|" not in proc.stderr  # no progress bar when not a terminal


def test_console_script_is_printed_as_invoked(tmp_path):
    """Run from the README's ``.venv/bin/p3d``, the demo prints ``.venv/bin/p3d ...`` commands."""
    from p3d.cli import invocation

    venv_p3d = tmp_path / ".venv" / "bin" / "p3d"
    venv_p3d.parent.mkdir(parents=True)
    venv_p3d.write_text("#!/bin/sh\n")
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert invocation(str(venv_p3d), sys.executable) in (".venv/bin/p3d", "p3d")
    finally:
        os.chdir(cwd)


def test_render_on_demo_data(demo, tmp_path):
    """The demo's surface has faces (FLAME_sample.ply): GT (60 fps) beside a prediction (30 fps)."""
    from p3d.cli import main
    from p3d.demo import demo_commands
    from p3d.viz.render import probe_mp4

    argv = shlex.split(demo_commands(demo, "p3d", out=str(tmp_path))["render"])[1:]
    seq = argv.index("--seq")
    short = []
    for k, rate in ((1, 60), (2, 30)):  # the first 0.2 s of each, to keep the test fast
        path = tmp_path / f"s{k}.npy"
        np.save(path, np.load(argv[seq + k])[: rate // 5])
        short.append(str(path))
    argv[seq + 1:seq + 3] = short
    argv[argv.index("--audio"):argv.index("--audio") + 2] = []  # the clip's wav lasts 2 s
    assert main([*argv, "--size", "48", "--no-progress"]) == 0
    info = probe_mp4(tmp_path / "demo_render.mp4")
    assert info["n_frames"] == 6 and info["width"] == 96


class FakeShell:
    kernel = object()


def test_show_displays_a_png_in_a_kernel(monkeypatch):
    import IPython
    import IPython.display
    from matplotlib.figure import Figure

    from p3d.viz import show

    shown = []
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert show(fig) is None and shown == []  # a script: nothing displayed
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeShell())
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    assert show(fig) is None
    assert len(shown) == 1
    image = shown[0]
    assert isinstance(image, IPython.display.Image) and image.format == "png"
    assert image.data[:8] == b"\x89PNG\r\n\x1a\n"  # what the notebook stores as image/png


def test_show_closes_a_pyplot_figure(monkeypatch):
    import IPython
    import IPython.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from p3d.viz import show

    fig, _ = plt.subplots()  # before faking the kernel: pyplot hooks into a real IPython shell
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeShell())
    monkeypatch.setattr(IPython.display, "display", lambda obj: None)
    show(fig)
    assert not plt.fignum_exists(fig.number)  # the inline backend will not draw it a second time


@pytest.mark.parametrize("broken", ["missing", "not_executable"])
def test_render_without_ffmpeg_is_one_line_exit_2(demo, tmp_path, monkeypatch, capsys, broken):
    import imageio_ffmpeg

    from p3d.cli import main

    def missing():
        raise RuntimeError("No ffmpeg exe could be found.")

    stub = tmp_path / "ffmpeg"
    stub.write_text("")
    stub.chmod(0o644)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing if broken == "missing" else lambda: str(stub))
    gt = sorted((demo.vocaset / "vertices_npy").glob("*.npy"))[0]
    code = main(["render", "--seq", str(gt), "--faces", str(demo.vocaset / "FLAME_sample.ply"),
                 "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "ffmpeg" in err
    assert not (tmp_path / "x.mp4").exists()


def test_readme_commands_run_without_an_activated_venv():
    """Every command line in the README's code blocks starts with `.venv/bin/...` or `make`."""
    text = (ROOT / "README.md").read_text()
    blocks = text.split("```")[1::2]
    bare = [line for block in blocks for line in block.splitlines()[1:]
            if line.strip() and not line.startswith(" ") and line.split()[0] in ("p3d", "torchrun", "python", "pytest")]
    assert bare == []


def test_the_printed_render_command_gives_each_sequence_its_frame_rate(demo):
    """``p3d data demo``'s render command puts the demo's ground truth (``vertices_npy/``) beside a prediction
    (``pred/``), each with its own ``--fps``: checked against the frame count of each file over the duration of the
    clip's wav, so the video neither runs at half speed nor drifts from the sound. Its eval command likewise."""
    import soundfile as sf

    from p3d.demo import demo_commands

    argv = shlex.split(demo_commands(demo, "p3d")["render"])[1:]
    seqs = argv[argv.index("--seq") + 1:argv.index("--labels")]
    rates = [float(x) for x in argv[argv.index("--fps") + 1].split(",")]
    assert [Path(p).parent.name for p in seqs] == ["vertices_npy", "pred"] and len(rates) == len(seqs)
    seconds = sf.info(argv[argv.index("--audio") + 1]).duration
    for path, rate in zip(seqs, rates):
        assert len(np.load(path)) == round(seconds * rate), (path, rate)
    # and the eval command: the ground truth's rate, and the MTM plots its printed line promises
    ev = shlex.split(demo_commands(demo, "p3d")["eval"])[1:]
    assert float(ev[ev.index("--gt-fps") + 1]) * seconds == len(np.load(seqs[0])) and "--plots" in ev


def test_the_demo_written_again_with_the_same_settings_is_kept(tmp_path):
    """``write_demo_dataset`` is idempotent (skips a complete demo of the same seed and duration): no file is written
    again; another seed rewrites it."""
    from p3d.demo import write_demo_dataset

    paths = write_demo_dataset(tmp_path / "demo", seconds=0.1)
    files = sorted(p for p in paths.root.rglob("*") if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    assert write_demo_dataset(tmp_path / "demo", seconds=0.1) == paths
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    write_demo_dataset(tmp_path / "demo", seed=1, seconds=0.1)
    gt = next(p for p in files if p.parent.name == "vertices_npy")
    assert gt.stat().st_mtime_ns != stamps[gt]
