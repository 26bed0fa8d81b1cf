"""Tests for ``p3d render`` (p3d.render): side-by-side mp4 with audio, frame-count policy, exit codes."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from p3d.cli import main
from p3d.errors import EXIT_BAD_INPUT
from p3d.render import EXIT_RENDER_FAILED
from p3d.synth import face
from p3d.viz.render import probe_mp4
from tiny_corpus import talking_face

FPS = 30
SIZE = 64


def talking(n_frames: int, shift: int = 0) -> np.ndarray:
    """:func:`tiny_corpus.talking_face` in float32, as a model's output files are."""
    return talking_face(n_frames, shift).astype(np.float32)


@pytest.fixture()
def files(tmp_path):
    a, b = tmp_path / "gt.npy", tmp_path / "pred.npy"
    np.save(a, talking(10))
    np.save(b, talking(10, shift=2).reshape(10, -1))  # (T, V*3) is accepted too
    wav = tmp_path / "clip.wav"
    sr = 16000
    sf.write(wav, (0.2 * np.sin(np.arange(sr * 10 // FPS) * 0.07)).astype(np.float32), sr)
    return a, b, wav


def render(*args: object) -> int:
    return main(["render", "--fps", str(FPS), "--size", str(SIZE), "--no-progress", *map(str, args)])


def test_two_sequences_with_audio(files, tmp_path, capsys):
    a, b, wav = files
    out = tmp_path / "cmp.mp4"
    rc = render("--seq", a, b, "--audio", wav, "--labels", "GT,FaceFormer", "--topology", "synth-face",
                "--out", out, "--error-against", "GT")
    assert rc == 0, capsys.readouterr().err
    info = probe_mp4(out)
    assert info["n_frames"] == 10 and info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert info["width"] == 2 * SIZE and info["height"] > SIZE  # two panels, a caption strip above
    assert "wrote" in capsys.readouterr().out


def test_faces_file_without_topology(files, tmp_path):
    a, _, _ = files
    faces = tmp_path / "faces.npy"
    np.save(faces, face.faces())
    out = tmp_path / "one.mp4"
    assert render("--seq", a, "--faces", faces, "--out", out, "--highlight", "none") == 0
    info = probe_mp4(out)
    assert info["n_frames"] == 10 and info["audio_codec"] is None


def test_faces_mesh_of_another_vertex_count_is_refused(files, tmp_path, capsys):
    """A .ply of another topology whose indices happen to be in range rendered a tangle of triangles, exit 0."""
    from p3d.export import write_ply

    a, _, _ = files
    small = tmp_path / "small.ply"
    write_ply(small, face.template()[:400], face.faces()[np.all(face.faces() < 400, axis=1)])
    out = tmp_path / "wrong.mp4"
    assert render("--seq", a, "--faces", small, "--highlight", "none", "--out", out) == EXIT_BAD_INPUT
    assert "400 vertices, the sequences 468" in capsys.readouterr().err and not out.exists()
    right = tmp_path / "right.ply"
    write_ply(right, face.template(), face.faces())
    assert render("--seq", a, "--faces", right, "--highlight", "none", "--out", out) == 0


def test_frame_counts_truncate_or_strict(files, tmp_path, caplog):
    a, _, wav = files
    short = tmp_path / "short.npy"
    np.save(short, talking(7))
    out = tmp_path / "cut.mp4"
    assert render("--seq", a, short, "--topology", "synth-face", "--out", out) == 0
    assert probe_mp4(out)["n_frames"] == 7 and "cut to the shortest" in caplog.text
    strict = tmp_path / "strict.mp4"
    assert render("--seq", a, short, "--topology", "synth-face", "--out", strict, "--strict") == EXIT_BAD_INPUT
    assert render("--seq", short, "--audio", wav, "--topology", "synth-face", "--out", strict,
                  "--strict") == EXIT_BAD_INPUT  # 0.33 s of audio for 0.23 s of video
    assert not strict.exists()


def test_an_audio_track_of_another_duration_is_warned_about_once(files, tmp_path, caplog):
    """p3d render warned before rendering and write_mp4 again after it: two warnings for one mismatch."""
    a, _, wav = files
    short = tmp_path / "short.npy"
    np.save(short, talking(7))  # 0.23 s of video, 0.33 s of audio
    with caplog.at_level("WARNING"):
        assert render("--seq", short, "--audio", wav, "--topology", "synth-face", "--out", tmp_path / "w.mp4") == 0
    said = [r.getMessage() for r in caplog.records if "audio lasts" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("--audio lasts 0.333 s but the 7 frames at 30 fps"), said
    caplog.clear()  # the library alone still warns (once), after writing
    from p3d.viz.compare import render_comparison

    with caplog.at_level("WARNING"):
        render_comparison({"GT": talking(7)}, tmp_path / "lib.mp4", fps=FPS, audio=wav, topology="synth-face",
                          size=SIZE, progress=False)
    assert [r.getMessage() for r in caplog.records if "audio lasts" in r.getMessage()] == [
        f"write_mp4 {tmp_path / 'lib.mp4'}: audio lasts 0.333 s but the 7 frames last 0.233 s"]


def test_ffmpeg_failure_exits_1_and_writes_nothing(files, tmp_path, capsys):
    """At 1e-5 fps the mp4 muxer fails: the file without a video stream was kept and the command said "wrote"."""
    a, _, _ = files
    out = tmp_path / "slow.mp4"
    assert main(["render", "--fps", "1e-5", "--size", str(SIZE), "--no-progress", "--seq", str(a),
                 "--topology", "synth-face", "--out", str(out)]) == EXIT_RENDER_FAILED
    assert "nothing written" in capsys.readouterr().err and not out.exists()
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    assert render("--seq", a, "--audio", empty, "--topology", "synth-face", "--out", out) == EXIT_BAD_INPUT
    assert "no samples" in capsys.readouterr().err and not out.exists()


def test_blank_frames_fail_and_write_nothing(tmp_path, capsys):
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((3, 468, 3), np.float32))  # every vertex at one point: nothing to see
    out = tmp_path / "blank.mp4"
    assert render("--seq", flat, "--topology", "synth-face", "--out", out) == EXIT_RENDER_FAILED == 1  # the docstring's
    err = capsys.readouterr().err
    assert "p3d render: error: panel 'flat'" in err and "nothing written" in err
    assert not out.exists() and not list(tmp_path.glob("*.mp4"))


@pytest.mark.parametrize("extra, message", [
    (["--seq", "missing.npy", "--topology", "synth-face"], "file not found"),
    (["--seq", "gt.npy"], "--topology"),
    (["--seq", "gt.npy", "pred.npy", "--labels", "one", "--topology", "synth-face"], "2 --seq"),
    (["--seq", "gt.npy", "--topology", "flame"], "5023 vertices"),
    (["--seq", "gt.npy", "--topology", "synth-face", "--audio", "none.wav"], "none.wav"),
    (["--seq", "gt.npy", "--faces", "nofaces.npy"], "not found"),
    (["--seq", "gt.npy", "pred.npy", "--topology", "synth-face", "--error-against", "X"], "not one of"),
])
def test_bad_input_exit_2(files, tmp_path, capsys, extra, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "bad.mp4"
    assert render(*extra, "--out", out) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("p3d render: error:") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_nan_and_mismatched_vertices(files, tmp_path, capsys):
    a, _, _ = files
    bad = talking(10)
    bad[3, 7] = np.nan
    nan = tmp_path / "nan.npy"
    np.save(nan, bad)
    small = tmp_path / "small.npy"
    np.save(small, talking(10)[:, :400])
    assert render("--seq", a, nan, "--topology", "synth-face", "--out", tmp_path / "o.mp4") == EXIT_BAD_INPUT
    assert "NaN" in capsys.readouterr().err
    assert render("--seq", a, small, "--faces", tmp_path / "x.npy", "--out", tmp_path / "o.mp4") == EXIT_BAD_INPUT
    assert "different vertex counts" in capsys.readouterr().err


def test_per_sequence_frame_rates(files, tmp_path, caplog):
    """VOCASET-style 60 fps GT beside 30 fps predictions: every second GT frame, no truncation."""
    _, b, wav = files
    gt60 = tmp_path / "gt60.npy"
    np.save(gt60, talking(20))
    out = tmp_path / "rates.mp4"
    assert render("--seq", gt60, b, "--audio", wav, "--fps", "60,30", "--topology", "synth-face", "--out", out) == 0
    assert probe_mp4(out)["n_frames"] == 10 and "cut to the shortest" not in caplog.text
    # one rate for both: the factor-of-two mismatch is named in the warning
    caplog.clear()
    assert render("--seq", gt60, b, "--topology", "synth-face", "--out", tmp_path / "same.mp4") == 0
    assert "--fps 60,30" in caplog.text
    for bad in ("60,29", "60,30,30", "abc", "0"):
        assert render("--seq", gt60, b, "--fps", bad, "--topology", "synth-face",
                      "--out", tmp_path / "bad.mp4") == EXIT_BAD_INPUT, bad
    assert not (tmp_path / "bad.mp4").exists()


def test_a_repeated_label_is_refused_not_a_lost_panel(files, tmp_path, capsys):
    """``--labels GT,GT``: the panels were keyed by label, so the second sequence replaced the first and a
    one-panel video was written while the command reported 2 panels. Refused before rendering."""
    a, b, _ = files
    out = tmp_path / "dup.mp4"
    assert render("--seq", a, b, "--labels", "GT,GT", "--topology", "synth-face", "--out", out) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("p3d render: error: --labels:") and "GT" in err[0]
    assert not out.exists()


def test_an_unknown_highlight_region_is_refused_before_rendering(files, tmp_path, capsys):
    """``--highlight lisp`` (a typo) rendered the video with nothing highlighted and exit 0, only a warning:
    explicit names the topology lacks are exit 2 now, before any frame is drawn."""
    a, _, _ = files
    out = tmp_path / "typo.mp4"
    assert render("--seq", a, "--topology", "synth-face", "--out", out, "--highlight", "lips,lisp") == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'lisp'" in err and "lips" in err and not out.exists()


@pytest.mark.parametrize("fps", ["30,", "30,,30", ",30"])
def test_an_empty_item_in_the_frame_rates_is_refused(files, tmp_path, capsys, fps):
    """``--fps 30,`` for two sequences was read as one rate for both, ``30,,30`` as ``30,30``: exit 2 now."""
    a, b, _ = files
    out = tmp_path / "x.mp4"
    rc = main(["render", "--seq", str(a), str(b), "--fps", fps, "--topology", "synth-face", "--size", str(SIZE),
               "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == EXIT_BAD_INPUT and len(err.splitlines()) == 1 and "an empty item" in err and not out.exists()


@pytest.mark.parametrize("case", ["empty label", "same file names", "faces of another format"])
def test_labels_and_faces_that_cannot_make_panels_are_refused(files, tmp_path, capsys, case):
    """The panels are keyed by label: an empty ``--labels`` item, or (without ``--labels``) two ``--seq`` files of
    the same name (their default labels), is refused; so is a ``--faces`` file that is neither ``.ply`` nor
    ``.npy``. One line, exit 2, nothing written."""
    a, b, _ = files
    out = tmp_path / "bad.mp4"
    if case == "empty label":
        args, message = ["--seq", a, b, "--labels", "GT,", "--topology", "synth-face"], "--labels"
    elif case == "same file names":
        (tmp_path / "other").mkdir()
        same = tmp_path / "other" / a.name
        same.write_bytes(a.read_bytes())
        args, message = ["--seq", a, same, "--topology", "synth-face"], "give --labels"
    else:
        faces = tmp_path / "faces.obj"
        faces.write_text("f 1 2 3\n")
        args, message = ["--seq", a, "--faces", faces, "--highlight", "none"], "expected a .ply or .npy file"
    assert render(*args, "--out", out) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("p3d render: error:") and message in err[0], err
    assert not out.exists()


def test_mtm_named_explicitly_is_highlighted_not_refused(files, tmp_path, capsys):
    """``--highlight`` names ``mtm`` (the MTM lip vertices) besides the topology's regions: given explicitly it is
    rendered as with the default, though no region of the topology is called mtm."""
    a, _, _ = files
    out = tmp_path / "mtm.mp4"
    assert render("--seq", a, "--topology", "synth-face", "--out", out, "--highlight", "mtm") == 0, \
        capsys.readouterr().err
    assert probe_mp4(out)["n_frames"] == 10


def test_the_line_it_prints_states_the_video_written(files, tmp_path, capsys):
    """``wrote OUT (N frames at F fps, P panels, with audio|no audio)``: N is the video's frame count (cut to the
    shortest sequence), read back from the mp4."""
    a, _, wav = files
    short = tmp_path / "short.npy"
    np.save(short, talking(7))
    for seqs, audio, said in (((a, short), ("--audio", wav), "2 panels, with audio"), ((a,), (), "1 panels, no audio")):
        out = tmp_path / f"{len(seqs)}.mp4"
        capsys.readouterr()
        assert render("--seq", *seqs, *audio, "--topology", "synth-face", "--out", out) == 0
        n = probe_mp4(out)["n_frames"]
        assert n == min(len(np.load(s)) for s in seqs)
        assert capsys.readouterr().out.strip() == f"wrote {out} ({n} frames at {FPS} fps, {said})"


@pytest.mark.parametrize("fps", ["-30", "0", "60,-30"])
def test_a_frame_rate_that_is_not_positive_is_refused(fps):
    """``--fps``: frame rates per second, each in (0, 240] (:func:`p3d.viz.compare.check_fps`); a negative one is
    refused, not read as its magnitude."""
    from p3d.errors import InputError
    from p3d.render import parse_fps

    assert parse_fps("60,30", 2) == [60.0, 30.0] and parse_fps("25", 3) == [25.0] * 3
    with pytest.raises(InputError, match="--fps"):
        parse_fps(fps, len(fps.split(",")))
