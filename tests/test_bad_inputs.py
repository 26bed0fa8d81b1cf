"""Bad input, end to end through the command line: every class of bad file or option is one line on
stderr and exit code 2 (``p3d.errors.InputError``), never a traceback and never a silent wrong number;
inputs that are merely unusual (float16, big-endian, integer vertices, FIFOs, dangling links and
temporary files in a data folder) are read, skipped or ignored as ``p3d.io`` documents.

The data are tiny (12 vertices, 2 clips of 20 frames, a topology .npz), so each case is a fraction of a
second. Each table row: (id, how to damage the data in ``tmp_path``, the metrics to ask for, a substring
the error must hold). The damage function returns the path the message must name (or None).
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from p3d import io
from p3d.cli import main
from p3d.errors import EXIT_BAD_INPUT, InputError
from p3d.topology import Topology

N_VERTICES = 12
N_FRAMES = 20
CLIPS = ("A_sentence01", "B_sentence01")
SR = 16000
WAV_SAMPLES = SR * N_FRAMES // 30  # as long as the 30 fps GT, so only the damage is refused


@pytest.fixture(autouse=True)
def no_hang():
    """Fail (instead of hanging the suite) if a reader blocks, e.g. by opening a named pipe. The alarm is
    also recorded and checked after the test, because code that catches broad exceptions (a header reader
    falling back to the full loader) could swallow the error raised inside the blocked call."""
    fired: list[int] = []

    def blocked(signum, frame):
        fired.append(signum)
        raise AssertionError("blocked for 30 s: a reader opened a named pipe (FIFO)?")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
    assert not fired, "a reader blocked (on a named pipe?) until the 30 s alarm"


@pytest.fixture()
def data(tmp_path: Path) -> types.SimpleNamespace:
    """GT and predictions of two clips, their wavs, templates and a 12-vertex topology."""
    d = types.SimpleNamespace(root=tmp_path, gt=tmp_path / "gt", pred=tmp_path / "pred", wav=tmp_path / "wav",
                              templates=tmp_path / "templates.pkl", topology=tmp_path / "topology.npz",
                              out=tmp_path / "out")
    for folder in (d.gt, d.pred, d.wav):
        folder.mkdir()
    Topology(name="tiny", n_vertices=N_VERTICES, regions={"lips": np.arange(4), "upper_face": np.arange(6, 12)},
             mtm_upper=0, mtm_lower=3).save_npz(d.topology)
    rng = np.random.default_rng(0)
    templates = {}
    for stem in CLIPS:
        gt = (0.01 * rng.standard_normal((N_FRAMES, N_VERTICES, 3))).astype(np.float32)
        np.save(d.gt / f"{stem}.npy", gt.reshape(N_FRAMES, -1))
        np.save(d.pred / f"{stem}_condition_X.npy", gt + np.float32(0.001) * rng.standard_normal(gt.shape, np.float32))
        sf.write(d.wav / f"{stem}.wav", (0.1 * rng.standard_normal(WAV_SAMPLES)).astype(np.float32), SR, subtype="PCM_16")
        templates[stem.split("_")[0]] = gt[0]
    d.templates.write_bytes(pickle.dumps(templates, protocol=2))
    return d


def victim(d) -> Path:
    """The prediction file the damage functions spoil."""
    return d.pred / f"{CLIPS[0]}_condition_X.npy"


def eval_cli(d, *extra: str, metrics: str = "lve") -> int:
    args = ["eval", "--pred", str(d.pred), "--gt", str(d.gt), "--topology", str(d.topology), "--out", str(d.out),
            "--bootstrap", "20", "--no-progress"]
    if "slcc" in metrics:
        args += ["--audio", str(d.wav)]
    if "fdd" in metrics:
        args += ["--templates", str(d.templates)]
    return main([*args, "--metrics", metrics, *extra])


def assert_one_line_error(capsys, command: str, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"p3d {command}: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# ------------------------------------------------------------------------------------------------
# Damage functions: each spoils one file and returns the path the error must name
# ------------------------------------------------------------------------------------------------
def save_pred(array: np.ndarray, **kw):
    def damage(d):
        np.save(victim(d), array, **kw)
        return victim(d)
    return damage


def cast_pred(dtype):
    def damage(d):
        np.save(victim(d), np.load(victim(d)).astype(dtype))
        return victim(d)
    return damage


def write_pred_bytes(content: bytes | None = None, *, keep: float | None = None):
    def damage(d):
        raw = victim(d).read_bytes()
        victim(d).write_bytes(raw[: int(len(raw) * keep)] if keep is not None else content)
        return victim(d)
    return damage


def npz_as_npy(d):
    with open(victim(d), "wb") as fh:
        np.savez(fh, a=np.zeros((N_FRAMES, N_VERTICES * 3), np.float32))
    return victim(d)


def corrupt_npy_header(d):
    raw = victim(d).read_bytes()
    victim(d).write_bytes(raw[:10] + b"{'descr': '<f4', 'shape': (20, 36), garbage" + raw[60:])
    return victim(d)


def gt_fifo(d):
    gt = d.gt / f"{CLIPS[0]}.npy"
    gt.unlink()
    os.mkfifo(gt)
    return gt


def gt_nan(d):
    gt = d.gt / f"{CLIPS[0]}.npy"
    a = np.load(gt)
    a[4, 2] = np.nan
    np.save(gt, a)
    return gt


def pred_folder_missing(d):
    for f in d.pred.iterdir():
        f.unlink()
    d.pred.rmdir()
    return d.pred


def pred_folder_only(*makers):
    """Replace the prediction folder's content by what ``makers`` create (each gets the folder)."""
    def damage(d):
        for f in d.pred.iterdir():
            f.unlink()
        for make in makers:
            make(d.pred)
        return d.pred
    return damage


def wav_bytes(content: bytes):
    def damage(d):
        wav = d.wav / f"{CLIPS[0]}.wav"
        wav.write_bytes(content)
        return wav
    return damage


def wav_samples(samples: np.ndarray, subtype: str):
    def damage(d):
        wav = d.wav / f"{CLIPS[0]}.wav"
        sf.write(wav, samples, SR, subtype=subtype)
        return wav
    return damage


def wav_missing(d):
    wav = d.wav / f"{CLIPS[0]}.wav"
    wav.unlink()
    return wav


def wav_fifo(d):
    wav = d.wav / f"{CLIPS[0]}.wav"
    wav.unlink()
    os.mkfifo(wav)
    return wav


def templates_bytes(content: bytes):
    def damage(d):
        d.templates.write_bytes(content)
        return d.templates
    return damage


def templates_object(obj):
    return templates_bytes(pickle.dumps(obj, protocol=2))


def templates_truncated(d):
    raw = d.templates.read_bytes()
    d.templates.write_bytes(raw[: len(raw) // 2])
    return d.templates


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def wrong_vertices(d):
    np.save(victim(d), np.zeros((N_FRAMES, 300), np.float32))
    return victim(d)


nan_pred = np.full((N_FRAMES, N_VERTICES * 3), 0.01, np.float32)
nan_pred[3, 5] = np.nan
inf_pred = np.full((N_FRAMES, N_VERTICES * 3), 0.01, np.float32)
inf_pred[7, 0] = np.inf
nan_wav = np.zeros(WAV_SAMPLES, np.float32)
nan_wav[100] = np.nan

#: (id, damage, metrics, substring of the one-line error). The README's classes ("a wrong vertex count,
#: NaN, a corrupt file, missing audio, an empty folder") are the first rows of their groups.
EVAL_CASES = [
    # vertex arrays
    ("wrong-vertex-count", wrong_vertices, "lve", "vertices per frame, expected 12"),
    ("nan-vertices", save_pred(nan_pred), "lve", "NaN"),
    ("inf-vertices", save_pred(inf_pred), "lve", "NaN or inf"),
    ("not-multiple-of-3", save_pred(np.zeros((N_FRAMES, 35), np.float32)), "lve", "not a multiple of 3"),
    ("one-dimensional", save_pred(np.zeros(N_VERTICES * 3, np.float32)), "lve", "expected (T, V*3) or (T, V, 3)"),
    ("no-frames", save_pred(np.zeros((0, N_VERTICES * 3), np.float32)), "lve", "no frames"),
    ("complex-dtype", cast_pred(np.complex64), "lve", "complex numbers"),
    ("bool-dtype", cast_pred(bool), "lve", "booleans"),
    ("text-dtype", save_pred(np.array([["0.1"] * 36] * 3)), "lve", "text"),
    ("structured-dtype", save_pred(np.zeros(N_FRAMES, dtype=[("xyz", "<f4", (36,))])), "lve", "structured"),
    ("pickled-objects", save_pred(np.array([{"a": 1}, None], dtype=object), allow_pickle=True), "lve",
     "Python objects"),
    # files that are not (whole) .npy arrays
    ("corrupt-file", write_pred_bytes(b"not an npy file"), "lve", "not a readable .npy array"),
    ("empty-file", write_pred_bytes(b""), "lve", "no NumPy header"),
    ("npz-named-npy", npz_as_npy, "lve", "no NumPy header"),
    ("corrupt-npy-header", corrupt_npy_header, "lve", "corrupt header"),
    ("truncated-npy", write_pred_bytes(keep=0.6), "lve", "truncated .npy file"),
    ("truncated-to-header", write_pred_bytes(keep=128 / 2944), "lve", "truncated .npy file"),
    # ground truth
    ("gt-fifo", gt_fifo, "lve", "named pipe"),
    ("gt-nan", gt_nan, "lve", "NaN"),
    # folders
    ("pred-folder-missing", pred_folder_missing, "lve", "prediction folder not found"),
    ("empty-folder", pred_folder_only(), "lve", "no .npy files"),
    ("only-temporary-files", pred_folder_only(lambda p: (p / ".A_sentence01_condition_X.npy.tmp-x1.npy")
                                              .write_bytes(b"half written"),
                                              lambda p: (p / "A_sentence01_condition_X.npy.tmp").write_bytes(b"")),
     "lve", "no .npy files"),
    ("only-fifo", pred_folder_only(lambda p: os.mkfifo(p / "A_sentence01_condition_X.npy")), "lve",
     "named pipe"),
    ("only-dangling-link", pred_folder_only(lambda p: os.symlink(p / "gone.npy", p / "A_sentence01_condition_X.npy")),
     "lve", "dangling symbolic link"),
    # audio (SLCC)
    ("missing-audio", wav_missing, "slcc", "audio for clip"),
    ("corrupt-wav", wav_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage garbage"), "slcc", "not a readable audio file"),
    ("zero-byte-wav", wav_bytes(b""), "slcc", "empty (0 bytes)"),
    ("wav-without-samples", wav_samples(np.zeros(0, np.float32), "PCM_16"), "slcc", "no samples"),
    ("nan-wav", wav_samples(nan_wav, "FLOAT"), "slcc", "NaN or inf samples"),
    ("wav-fifo", wav_fifo, "slcc", "named pipe"),
    # templates.pkl (FDD)
    ("templates-not-pickle", templates_bytes(b"this is not a pickle"), "fdd", "corrupt or unreadable pickle"),
    ("templates-empty-file", templates_bytes(b""), "fdd", "empty file"),
    ("templates-truncated", templates_truncated, "fdd", "corrupt or unreadable pickle"),
    ("templates-unsafe", templates_object(_RunsCode()), "fdd", "not a safe data pickle"),
    ("templates-not-dict", templates_object([1, 2]), "fdd", "expected a non-empty dict"),
    ("templates-wrong-shape", templates_object({"A": np.zeros((5, 3)), "B": np.zeros((12, 3))}), "fdd",
     "expected 12"),
    ("templates-ragged", templates_object({"A": [[0.0, 0.0, 0.0], [0.0]], "B": np.zeros((12, 3))}), "fdd",
     "not a (V, 3) array"),
    ("templates-nan", templates_object({"A": np.full((12, 3), np.nan), "B": np.zeros((12, 3))}), "fdd", "NaN"),
    ("templates-missing-identity", templates_object({"B": np.zeros((12, 3))}), "fdd", "no template for identity"),
]


@pytest.mark.parametrize("damage, metrics, message", [pytest.param(*c[1:], id=c[0]) for c in EVAL_CASES])
def test_eval_bad_input_is_one_line_exit_2(data, capsys, damage, metrics, message):
    named = damage(data)
    assert eval_cli(data, metrics=metrics) == EXIT_BAD_INPUT
    assert_one_line_error(capsys, "eval", message, *([str(named.name)] if named is not None else []))
    assert not (data.out / "summary.json").exists()


# ------------------------------------------------------------------------------------------------
# Frame-rate options
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, value", [
    ("--fps", "0"),
    ("--fps", "-30"),
    ("--fps", "nan"),
    ("--fps", "inf"),
    ("--gt-fps", "nan"),
])
def test_eval_bad_frame_rate(data, capsys, option, value):
    assert eval_cli(data, option, value) == EXIT_BAD_INPUT
    assert_one_line_error(capsys, "eval", option)


@pytest.mark.parametrize("value", ["0", "-5", "1", "9"])
def test_eval_bad_bootstrap_count_before_any_file_is_read(data, capsys, monkeypatch, value):
    """Was refused only after every metric had been computed, by the bootstrap itself ("got 4, 0"). 1 to 9
    resamples were taken, and after all the work every CI was printed as "n/a (too few clips)": no percentile
    interval is taken from fewer than 10 (p3d.stats.MIN_RESAMPLES)."""
    def read(*args, **kwargs):
        raise AssertionError("a file was planned before the options were checked")

    monkeypatch.setattr("p3d.evaluate.scoring._plan", read)
    assert eval_cli(data, "--bootstrap", value) == EXIT_BAD_INPUT
    assert_one_line_error(capsys, "eval", "--bootstrap")


def test_eval_negative_seed_before_any_file_is_read(data, capsys, monkeypatch):
    """--seed -1 reached numpy's generator in the bootstrap, after every metric: a ValueError traceback."""
    def read(*args, **kwargs):
        raise AssertionError("a file was planned before the options were checked")

    monkeypatch.setattr("p3d.evaluate.scoring._plan", read)
    assert eval_cli(data, "--seed", "-1") == EXIT_BAD_INPUT
    assert_one_line_error(capsys, "eval", "--seed")


def test_eval_bootstrap_too_large_for_memory_before_scoring(data, capsys, monkeypatch):
    """--bootstrap 1e11 drew (1e11, clips) integers after every metric: a MemoryError traceback. Refused once the
    GT clips are counted, before any is scored."""
    def score(*args, **kwargs):
        raise AssertionError("a clip was scored before the bootstrap size was checked")

    monkeypatch.setattr("p3d.io.load_vertices", score)
    assert eval_cli(data, "--bootstrap", str(10**11)) == EXIT_BAD_INPUT
    assert_one_line_error(capsys, "eval", "--bootstrap")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-30", "thirty", "", None, True, float("nan")])
def test_check_frame_rate_refuses(value):
    with pytest.raises(InputError, match="--gt-fps"):
        io.check_frame_rate(value, "--gt-fps")


def test_check_frame_rate_accepts():
    assert io.check_frame_rate("60", "--gt-fps") == 60.0
    assert io.check_frame_rate(29.97) == 29.97
    assert io.check_frame_rate(np.int64(25)) == 25.0


# ------------------------------------------------------------------------------------------------
# Unusual but readable inputs: evaluated, with exactly the numbers of the converted data
# ------------------------------------------------------------------------------------------------
def per_clip_lve(d) -> dict[str, float]:
    import pandas as pd

    df = pd.read_csv(d.out / "per_clip.csv")
    return dict(zip(df["pred"], df["lve"]))


@pytest.mark.parametrize("dtype, as_read", [
    ("<f2", np.float32),  # float16 -> float32 is exact
    (">f4", np.float32),  # big-endian: byte-swapped, same values
    ("<f8", np.float64),
    (">f8", np.float64),
    ("<i4", np.float64),  # integers: accepted (exact) with a warning
    ("uint16", np.float64),
])
def test_eval_reads_other_dtypes_exactly(data, capsys, caplog, dtype, as_read):
    pred = np.load(victim(data))
    # integers: millimetres, shifted to be positive (unsigned types), with the GT in the same frame
    stored = (pred * 1000 + 100).astype(dtype) if np.dtype(dtype).kind in "iu" else pred.astype(dtype)
    np.save(victim(data), stored)
    if np.dtype(dtype).kind in "iu":
        np.save(data.gt / f"{CLIPS[0]}.npy", 1000 * np.load(data.gt / f"{CLIPS[0]}.npy") + 100)
    assert eval_cli(data) == 0
    got = per_clip_lve(data)
    np.save(victim(data), stored.astype(as_read))  # the same values, in the dtype they are read as
    assert eval_cli(data) == 0
    assert per_clip_lve(data) == got
    assert ("stored as integers" in caplog.text) == (np.dtype(dtype).kind in "iu")
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("stored, read_as", [
    ("<f2", "<f4"), (">f2", "<f4"), ("<f4", "<f4"), (">f4", "<f4"), ("<f8", "<f8"), (">f8", "<f8"),
    ("<i2", "<f8"), ("<u4", "<f8"), ("<i8", "<f8"), ("longdouble", "<f8"),
])
def test_load_vertices_dtype_policy(tmp_path, stored, read_as):
    values = np.arange(2 * N_VERTICES * 3).reshape(2, -1) * 0.25  # exact in every dtype above
    np.save(tmp_path / "v.npy", values.astype(stored))
    got = io.load_vertices(tmp_path / "v.npy", n_vertices=N_VERTICES)
    assert got.dtype == np.dtype(read_as) and got.dtype.isnative
    np.testing.assert_array_equal(got.reshape(2, -1), values if np.dtype(stored).kind == "f" else np.floor(values))


def test_eval_skips_fifo_and_dangling_link_with_reason_and_ignores_temporary_files(data, caplog):
    os.mkfifo(data.pred / "B_sentence02_condition_X.npy")
    os.symlink(data.root / "gone.npy", data.pred / "B_sentence03_condition_X.npy")
    for name in (".A_sentence01_condition_X.npy.tmp-k2j3.npy", "._A_sentence01_condition_X.npy",
                 "A_sentence01_condition_Y.npy.tmp", "A_sentence01_condition_Y.npy~", "#B_sentence01.npy#"):
        (data.pred / name).write_bytes(b"not data")
    assert eval_cli(data) == 0  # returns: discovery opened no FIFO
    summary = json.loads((data.out / "summary.json").read_text())
    assert summary["counts"]["evaluated"] == 2
    # the FIFO and the dangling link are reported as skipped with their reason; temporary files are not even listed
    assert {s["pred"]: s["reason"].split(" (")[0] for s in summary["skipped"]} == {
        "B_sentence02_condition_X.npy": "is a named pipe", "B_sentence03_condition_X.npy": "is a dangling symbolic link"}
    assert "B_sentence02_condition_X.npy: is a named pipe" in caplog.text
    assert "B_sentence03_condition_X.npy: is a dangling symbolic link" in caplog.text
    for name in ("tmp-k2j3", "._A", ".npy.tmp", ".npy~", "#B"):
        assert name not in caplog.text


def test_find_npy_reports_skipped_files(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 3)))
    os.mkfifo(tmp_path / "b.npy")
    os.symlink(tmp_path / "gone", tmp_path / "c.npy")
    (tmp_path / "d.npy").mkdir()
    (tmp_path / ".e.npy").write_bytes(b"")
    skipped: list[dict[str, str]] = []
    assert io.find_npy(tmp_path, skipped=skipped) == [tmp_path / "a.npy"]
    assert [s["file"] for s in skipped] == ["b.npy", "c.npy", "d.npy"]
    assert [s["reason"].split(" (")[0].split(",")[0] for s in skipped] == [
        "is a named pipe", "is a dangling symbolic link", "is a directory"]


# ------------------------------------------------------------------------------------------------
# p3d render: the same loaders, the same one-line errors (all raised before any rendering)
# ------------------------------------------------------------------------------------------------
RENDER_CASES = [
    ("truncated-npy", write_pred_bytes(keep=0.5), "truncated .npy file"),
    ("float16-complex", cast_pred(np.complex64), "complex numbers"),
    ("pickled-objects", save_pred(np.array([{"a": 1}], dtype=object), allow_pickle=True), "Python objects"),
    ("fifo", lambda d: (victim(d).unlink(), os.mkfifo(victim(d)), victim(d))[-1], "named pipe"),
    ("nan-vertices", save_pred(nan_pred), "NaN"),
]


@pytest.mark.parametrize("damage, message", [pytest.param(*c[1:], id=c[0]) for c in RENDER_CASES])
def test_render_bad_sequence_is_one_line_exit_2(data, capsys, damage, message):
    named = damage(data)
    out = data.root / "cmp.mp4"
    code = main(["render", "--seq", str(data.gt / f"{CLIPS[0]}.npy"), str(named), "--labels", "gt,pred",
                 "--topology", str(data.topology), "--out", str(out), "--no-progress"])
    assert code == EXIT_BAD_INPUT
    assert_one_line_error(capsys, "render", message, named.name)
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["render", "--seq", "{missing}", "--fps", "30", "--topology", "synth-face", "--out", "{file}/r.mp4"],
    ["export", "--format", "obj", "--in", "{missing}", "--out", "{file}/frames"],
    ["data", "synth", "--corpus", "synth-voca", "--preset", "smoke", "--out", "{file}/data"],
    ["data", "demo", "--out", "{file}"],
    ["study", "make", "--design", "rank", "--gt", "{missing}", "--out", "{file}/study"],
    ["predict", "--run", "{missing}", "--out", "{file}/pred"],
    ["train", "stage1", "--preset", "smoke", "--data", "{missing}", "--out", "{file}/run"],
    ["claims", "{tables}", "--out", "{file}/claims.md"],
    ["convert", "--from", "official", "--to", "p3d", "{missing}", "{file}/critic.pt"],
    ["data", "vocaset", "--raw", "{missing}", "--out", "{file}/vocaset"],
], ids=lambda argv: " ".join(argv[:2]))
def test_an_output_under_a_file_is_refused_before_any_work(tmp_path, capsys, argv):
    """Outputs whose folder cannot be created (a file in the way) were NotADirectoryError / FileExistsError
    tracebacks, some of them after the work (render); now one line, exit 2, before any input is read."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "convergence.csv").write_text("run\n")
    args = [a.format(file=tmp_path / "afile", missing=tmp_path / "missing.npy", tables=tmp_path / "tables")
            for a in argv]
    assert main(args) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("is a file, so the output folder cannot be created" in err[0]
                              or "exists and is not a folder" in err[0]), err


# ------------------------------------------------------------------------------------------------
# p3d train / predict: options refused before any data are read
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["cuda:99", "meta", "mps:0"])
def test_train_device_this_machine_lacks_is_one_line_before_any_data(tmp_path, capsys, device):
    """Was accepted, then a traceback (exit 1: "Torch not compiled with CUDA enabled", "unsupported autocast
    device_type 'meta'") when the model moved there, after the data were loaded."""
    code = main(["train", "talker", "--preset", "smoke", "--model", "faceformer", "--train", str(tmp_path / "nodata"),
                 "--out", str(tmp_path / "run"), "--device", device, "--no-progress"])
    assert code == EXIT_BAD_INPUT
    assert_one_line_error(capsys, "train", f"--device {device}")
    assert not (tmp_path / "run").exists()


def _not_a_checkpoint(path: Path) -> None:
    path.write_bytes(b"garbage\n")  # torch: "Unsupported operand 103"


def _opcodes_that_underflow(path: Path) -> None:
    path.write_bytes(b"this is not a checkpoint\n" * 4)  # torch's unpickler: IndexError (was a traceback, exit 1)


def _unsafe_checkpoint(path: Path) -> None:
    import torch

    torch.save({"model": _RunsCode()}, path)


@pytest.mark.parametrize("make, needle", [(_not_a_checkpoint, "not a readable weights-only checkpoint"),
                                          (_opcodes_that_underflow, "not a readable weights-only checkpoint"),
                                          (_unsafe_checkpoint, "posix.system")], ids=["garbage", "underflow", "unsafe"])
@pytest.mark.parametrize("argv", [
    ["convert", "--from", "official", "--to", "p3d", "{ckpt}", "{run}.pt"],
    ["export", "--format", "obj", "--in", "{seq}", "--out", "{run}", "--faces", "{ckpt}"],
], ids=lambda argv: " ".join(argv[:2]))
def test_unreadable_checkpoint_or_mesh_is_one_line(tmp_path, capsys, make, needle, argv):
    """torch's weights-only refusal is a dozen lines (and advises unpickling the file anyway), pyvista's two:
    the error was several lines on stderr."""
    ckpt = tmp_path / "file.pt"
    make(ckpt)
    np.save(tmp_path / "seq.npy", np.zeros((2, N_VERTICES * 3), np.float32))
    args = [a.format(data=tmp_path / "nodata", run=tmp_path / "run", ckpt=ckpt, seq=tmp_path / "seq.npy")
            for a in argv]
    assert main(args) == EXIT_BAD_INPUT
    err = assert_one_line_error(capsys, argv[0], ckpt.name)
    if argv[0] != "export":  # a mesh reader names no pickle
        assert needle in err and "weights_only` set to `False`" not in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.pt").exists()


def test_train_talker_loss_weight_without_critic_is_refused(tmp_path, capsys):
    """Was accepted and ignored: request.json recorded the weight, config.json a weight of 0 (no critic)."""
    code = main(["train", "talker", "--preset", "smoke", "--model", "faceformer", "--train", str(tmp_path / "nodata"),
                 "--out", str(tmp_path / "run"), "--loss-weight", "1e-7", "--no-progress"])
    assert code == EXIT_BAD_INPUT
    assert_one_line_error(capsys, "train", "--loss-weight", "--critic none")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [["data", "demo"], ["data", "synth", "--corpus", "synth-voca", "--preset", "smoke"]],
                         ids=["demo", "synth"])
def test_data_negative_seed_is_one_line(tmp_path, capsys, argv):
    """`p3d data demo --seed -1` was a numpy ValueError traceback ("expected non-negative integer"); `p3d data synth
    --seed -1` built a corpus (its seeds are hashes of the text "-1:<corpus>"), the one --seed of p3d that took a
    negative number. Both refuse it now, on one line, before any folder is made."""
    assert main([*argv, "--out", str(tmp_path / "out"), "--seed", "-1"]) == EXIT_BAD_INPUT
    assert_one_line_error(capsys, "data", "--seed -1")
    assert not (tmp_path / "out").exists()


def test_data_demo_into_a_folder_holding_a_dataset_is_one_line(tmp_path, capsys):
    """`p3d data demo --out data` wrote its vocaset/ over a real data/vocaset: templates.pkl and the GT of the
    demo's (real) VOCASET test subjects replaced by synthetic ones, without a word."""
    import p3d.demo as demo

    real = tmp_path / "data" / "vocaset"
    (real / "vertices_npy").mkdir(parents=True)
    gt = real / "vertices_npy" / f"{demo.TEST_SUBJECTS[0]}_sentence21.npy"
    np.save(gt, np.ones((4, 15069), np.float32))
    (real / "templates.pkl").write_bytes(b"real templates")
    before = gt.read_bytes()
    assert main(["data", "demo", "--out", str(tmp_path / "data")]) == EXIT_BAD_INPUT
    assert_one_line_error(capsys, "data", "holds files other than an earlier demo's")
    assert gt.read_bytes() == before and (real / "templates.pkl").read_bytes() == b"real templates"
    assert sorted(p.name for p in real.iterdir()) == ["templates.pkl", "vertices_npy"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["vocaset"]


def test_data_demo_interrupted_rewrite_is_not_taken_for_the_complete_demo(tmp_path, monkeypatch, capsys):
    """A rewrite with another seed kept the earlier demo's .complete stamp until it finished: interrupted, the
    earlier seed's command then found the folder "complete" and kept its mix of the two seeds' files."""
    import p3d.demo as demo

    root = tmp_path / "demo"
    assert main(["data", "demo", "--out", str(root), "--seed", "0"]) == 0
    first = root / "vocaset" / "vertices_npy" / f"{demo.TEST_SUBJECTS[0]}_sentence21.npy"
    seed0 = first.read_bytes()
    calls = []
    real_save = demo.save_npy

    def interrupted(path, array):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        real_save(path, array)

    monkeypatch.setattr(demo, "save_npy", interrupted)
    assert main(["data", "demo", "--out", str(root), "--seed", "1"]) == 130
    assert first.read_bytes() != seed0  # rewritten with seed 1 before the interrupt
    monkeypatch.setattr(demo, "save_npy", real_save)
    assert main(["data", "demo", "--out", str(root), "--seed", "0"]) == 0
    assert first.read_bytes() == seed0


@pytest.mark.parametrize("metrics, spoil", [("lve", "offsets"), ("fdd", "offsets"), ("lve", "millimetres"),
                                             ("fdd", "millimetres"), ("fdd", "template in millimetres")])
def test_eval_refuses_a_prediction_or_template_outside_the_gt_frame(data, capsys, metrics, spoil):
    """Predictions saved as offsets from the template (the template not added back), or predictions or templates
    in millimetres against metres, give LVE and FDD numbers of arbitrary size: refused in one line naming the
    file. MTM reads only the lips' motion and still scores them."""
    face = (0.05 * np.random.default_rng(1).standard_normal((N_VERTICES, 3)) + [0.0, 0.0, 0.1]).astype(np.float32)
    for folder in (data.gt, data.pred):
        for path in folder.glob("*.npy"):
            np.save(path, (np.load(path).reshape(-1, N_VERTICES, 3) + face).reshape(-1, N_VERTICES * 3))
    data.templates.write_bytes(pickle.dumps({stem.split("_")[0]: face for stem in CLIPS}, protocol=2))
    assert eval_cli(data, metrics=metrics) == 0  # absolute positions in metres, as the GT: scored
    capsys.readouterr()
    if spoil == "template in millimetres":
        data.templates.write_bytes(pickle.dumps({stem.split("_")[0]: 1000 * face for stem in CLIPS}, protocol=2))
        needles = (f"{data.templates}['A']", "not the coordinate frame of the ground truth", "another unit")
    else:
        pred = np.load(victim(data)).reshape(-1, N_VERTICES, 3)
        np.save(victim(data), pred - face if spoil == "offsets" else 1000 * pred)
        needles = (str(victim(data)), "not the coordinate frame of the ground truth", "add the template")
    assert eval_cli(data, metrics=metrics) == 2
    assert_one_line_error(capsys, "eval", *needles)
    assert eval_cli(data, metrics="mtm") == 0


def test_eval_scores_a_poor_prediction_in_the_gt_frame(data):
    """A barely trained talker's prediction is far from its GT but in its frame (in p3d's smoke grid a CodeTalker
    after 8 steps: 1.1-1.3 times the GT's size, median vertex 0.5-0.7 sizes away): scored, not refused."""
    face = (0.05 * np.random.default_rng(1).standard_normal((N_VERTICES, 3)) + [0.0, 0.0, 0.1]).astype(np.float32)
    for folder in (data.gt, data.pred):
        for path in folder.glob("*.npy"):
            np.save(path, (np.load(path).reshape(-1, N_VERTICES, 3) + face).reshape(-1, N_VERTICES * 3))
    data.templates.write_bytes(pickle.dumps({stem.split("_")[0]: face for stem in CLIPS}, protocol=2))
    pred = np.load(victim(data)).reshape(-1, N_VERTICES, 3)
    noise = 0.05 * np.random.default_rng(2).standard_normal((1, N_VERTICES, 3))
    np.save(victim(data), (pred + noise).astype(np.float32))
    assert eval_cli(data, metrics="lve,fdd") == 0


def test_eval_reads_a_vocaset_vertices_npy_gt_folder_at_60_fps(tmp_path, capsys):
    """``--gt .../vertices_npy`` (the folder itself, not its root) with VOCASET names is the 60 fps capture too:
    it was read at the predictions' 30 fps, so 30 fps predictions were refused and 60 fps ones accepted with
    MTM converted to ms at 30 fps (twice the true delay)."""
    import json

    from release_fixtures import write_processed_vocaset

    root = write_processed_vocaset(tmp_path / "vocaset", [("FaceTalk_170809_00138_TA", 21, 2.0)])
    gt = np.load(root / "vertices_npy" / "FaceTalk_170809_00138_TA_sentence21.npy")
    pred30, pred60 = tmp_path / "pred30", tmp_path / "pred60"
    for folder, seq in ((pred30, gt[::2]), (pred60, gt)):
        folder.mkdir()
        np.save(folder / "FaceTalk_170809_00138_TA_sentence21_condition_FaceTalk_170728_03272_TA.npy", seq)
    args = ["eval", "--gt", str(root / "vertices_npy"), "--metrics", "lve", "--bootstrap", "10", "--no-progress"]
    assert main([*args, "--pred", str(pred30), "--out", str(tmp_path / "out")]) == 0
    config = json.loads((tmp_path / "out" / "summary.json").read_text())["config"]
    assert (config["gt_fps"], config["gt_stride"]) == (60.0, 2)
    capsys.readouterr()
    assert main([*args, "--pred", str(pred60), "--out", str(tmp_path / "out60")]) == 2
    assert_one_line_error(capsys, "eval", "differ by a factor of about 2", "read at 60 fps")


def test_the_feature_cache_refuses_a_named_pipe_instead_of_blocking(tmp_path):
    """FeatureCache.key hashed the wav with plain open(), which blocks on a FIFO (SpeechMeshWindows with a
    cache_dir reaches it for every corpus clip) before load_audio's regular-file check."""
    from p3d.audio import FeatureCache

    cache = FeatureCache(tmp_path / "cache")
    fifo = tmp_path / "clip.wav"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="named pipe"):
        cache.fbank(fifo, 30)
    with pytest.raises(InputError, match="audio file not found"):
        cache.key(tmp_path / "missing.wav", 30)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("seconds", [0, 0.02, -1.0, float("nan"), float("inf"), "2", True])
def test_demo_clip_durations_that_cannot_be_written_are_one_line(tmp_path, seconds):
    """``write_demo_dataset(seconds=...)`` below 3 frames at 30 fps, negative, NaN or not a number gave an
    IndexError, ValueError or TypeError traceback from the signal generator, after creating the folder."""
    from p3d.demo import write_demo_dataset
    from p3d.errors import InputError

    with pytest.raises(InputError, match="expected a clip duration of at least"):
        write_demo_dataset(tmp_path / "demo", seconds=seconds)
    assert not (tmp_path / "demo").exists()
    write_demo_dataset(tmp_path / "short", seconds=0.1)  # the shortest (p3d.demo.MIN_SECONDS)


@pytest.mark.parametrize("under", [False, True])
def test_demo_into_a_file_is_one_line_from_python_too(tmp_path, under):
    """``write_demo_dataset`` (the quickstart notebook calls it directly) into a file, or a folder under one, was a
    FileExistsError / NotADirectoryError traceback; ``p3d data demo`` checked its --out itself."""
    from p3d.demo import write_demo_dataset
    from p3d.errors import InputError

    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(InputError, match="afile"):
        write_demo_dataset(afile / "demo" if under else afile)
    assert afile.read_text() == "x"


def test_whole_number_is_the_one_rule_for_counts_and_strides():
    """p3d.errors.whole_number: integers and integral floats (numpy's too) at least ``low``; booleans, text, NaN,
    inf and fractions are not whole numbers (stats' counts, the loss' and training cost's integers, export's
    stride and the windows' / comparison figures' checks all read it)."""
    import numpy as np

    from p3d.errors import whole_number

    for value, low, expected in [(3, 1, 3), (2.0, 1, 2), (np.int64(5), 0, 5), (np.float32(4.0), None, 4),
                                 (-2, None, -2), (0, 1, None), (2.5, 1, None), (float("nan"), None, None),
                                 (float("inf"), None, None), (True, None, None), (np.bool_(True), None, None),
                                 ("3", None, None), (b"3", None, None), (None, None, None), ([2], None, None)]:
        got = whole_number(value, low)
        assert got == expected and (got is None or type(got) is int), (value, low, got)
