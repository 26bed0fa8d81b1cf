"""`p3d data vocaset`: the raw VOCASET release -> vertices_npy/ + wav/ + templates.pkl + splits.json.

The fixture is a tiny raw release in the real formats: ``data_verts.npy`` a .npy memmap (frames, 5023, 3)
float32; ``raw_audio_fixed.pkl``, ``subj_seq_to_idx.pkl`` and ``templates.pkl`` written as Python 2 would
(protocol 2, ``str`` as 8-bit BINSTRING, numpy globals under ``numpy.core``), so that Python 3 must load
them with ``encoding='latin1'``. The audio is 1-D int16 at 22000 Hz, as a third-party description of
``raw_audio_fixed.pkl`` states (``{"sample_rate": 22000, "audio": 1-D ndarray dtype=int16}``).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import struct
import zlib

import numpy as np
import pytest

from p3d.datasets.vocaset import add_vocaset_parser, convert_raw_vocaset, sentence_number, vocaset_split
from p3d.errors import InputError

V = 5023
RATE = 22000
TRAIN, VAL, TEST = "FaceTalk_170725_00137_TA", "FaceTalk_170811_03275_TA", "FaceTalk_170731_00024_TA"
N_FRAMES = 24
#: subject -> sequence -> frame -> global index: non-contiguous indices, dicts stored out of frame order.
INDEX = {
    TRAIN: {"sentence01": {2: 11, 0: 5, 3: 7, 1: 2}, "sentence22": {0: 20, 1: 21, 2: 0}},
    VAL: {"sentence21": {0: 3, 1: 4, 2: 13, 3: 14, 4: 23}, "sentence05": {0: 1, 1: 9}},
    TEST: {"sentence21": {1: 16, 0: 15}},
}


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's pickle would: ``str``/``bytes`` as 8-bit strings, ``numpy.core`` globals."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    def save_global(self, obj, name=None):
        module, name = obj.__module__, name or obj.__qualname__
        if module.startswith("numpy._core"):
            module = "numpy.core" + module[len("numpy._core"):]
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str
    dispatch[type] = save_global


def dump_py2(path, obj):
    with open(path, "wb") as fh:
        Py2Pickler(fh, protocol=2).dump(obj)


def frame_values(i):
    """Frame ``i`` of data_verts: every coordinate tells the frame it came from."""
    return (i + np.linspace(0.0, 0.5, V * 3, dtype=np.float32)).reshape(V, 3)


def audio_of(subject, seq, n=None):
    rng = np.random.default_rng(zlib.crc32(f"{subject}_{seq}".encode()))
    return rng.integers(-32768, 32767, size=n or int(rng.integers(400, 900)), dtype=np.int16)


@pytest.fixture()
def raw(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    verts = np.lib.format.open_memmap(root / "data_verts.npy", mode="w+", dtype=np.float32, shape=(N_FRAMES, V, 3))
    for i in range(N_FRAMES):
        verts[i] = frame_values(i)
    verts.flush()
    del verts
    audio = {s: {q: {"audio": audio_of(s, q), "sample_rate": RATE} for q in seqs} for s, seqs in INDEX.items()}
    audio[TEST]["sentence40"] = {"audio": audio_of(TEST, "sentence40"), "sample_rate": RATE}  # audio, no meshes
    dump_py2(root / "raw_audio_fixed.pkl", audio)
    dump_py2(root / "subj_seq_to_idx.pkl", INDEX)
    templates = {s: np.full((V, 3), k, dtype=np.float64) + np.arange(V)[:, None] * 1e-4 for k, s in enumerate(INDEX)}
    dump_py2(root / "templates.pkl", templates)
    return root, audio, templates


def run_cli(monkeypatch, argv):
    """``p3d.cli.main`` with ``vocaset`` added to the real ``p3d data`` command (if not hooked there yet)."""
    import p3d.cli

    real_build_parser = p3d.cli.build_parser

    def build_parser():
        parser = real_build_parser()
        data = _subcommands(parser)["data"]
        if "vocaset" not in _subcommands(data):
            add_vocaset_parser(next(a for a in data._actions if isinstance(a, argparse._SubParsersAction)))
        return parser

    monkeypatch.setattr(p3d.cli, "build_parser", build_parser)
    return p3d.cli.main(argv)


def _subcommands(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_fixture_pickles_are_python2_style(raw):
    root, audio, _ = raw
    with pytest.raises(UnicodeDecodeError):  # 8-bit strings of int16 data: ASCII decoding fails
        pickle.loads((root / "raw_audio_fixed.pkl").read_bytes())
    loaded = pickle.loads((root / "raw_audio_fixed.pkl").read_bytes(), encoding="latin1")
    np.testing.assert_array_equal(loaded[TRAIN]["sentence01"]["audio"], audio[TRAIN]["sentence01"]["audio"])


def test_convert_writes_the_official_layout(raw, tmp_path, caplog):
    import soundfile as sf

    root, audio, templates = raw
    out = tmp_path / "out"
    summary = convert_raw_vocaset(root, out, progress=False)

    stems = sorted(f"{s}_{q}" for s, seqs in INDEX.items() for q in seqs)
    assert sorted(p.stem for p in (out / "vertices_npy").glob("*.npy")) == stems
    for subject, seqs in INDEX.items():
        for seq, frames in seqs.items():
            arr = np.load(out / "vertices_npy" / f"{subject}_{seq}.npy", allow_pickle=False)
            order = [frames[k] for k in sorted(frames)]  # time order, whatever the dict order
            assert arr.shape == (len(frames), V * 3) and arr.dtype == np.float32
            np.testing.assert_array_equal(arr, np.stack([frame_values(i) for i in order]).reshape(len(frames), -1))

    wavs = sorted(p.stem for p in (out / "wav").glob("*.wav"))
    assert wavs == sorted([*stems, f"{TEST}_sentence40"])
    for subject, seqs in audio.items():
        for seq, entry in seqs.items():
            path = out / "wav" / f"{subject}_{seq}.wav"
            assert sf.info(str(path)).subtype == "PCM_16"
            samples, rate = sf.read(path, dtype="int16")
            assert rate == RATE
            np.testing.assert_array_equal(samples, entry["audio"])

    with open(out / "templates.pkl", "rb") as fh:
        saved = pickle.load(fh)
    assert sorted(saved) == sorted(templates)
    for s, t in templates.items():
        assert saved[s].dtype == t.dtype
        np.testing.assert_array_equal(saved[s], t)

    manifest = json.loads((out / "splits.json").read_text())
    assert manifest == summary.manifest
    assert manifest["fps"] == 60
    assert manifest["splits"]["train"]["sentences"] == [1, 40]
    assert manifest["splits"]["val"]["sentences"] == manifest["splits"]["test"]["sentences"] == [21, 40]
    assert len(manifest["splits"]["train"]["subjects"]) == 8
    assert manifest["splits"]["val"]["subjects"] == ["FaceTalk_170811_03275_TA", "FaceTalk_170908_03277_TA"]
    assert manifest["splits"]["test"]["subjects"] == ["FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA"]
    assert manifest["splits"]["train"]["clips"] == [f"{TRAIN}_sentence01", f"{TRAIN}_sentence22"]
    assert manifest["splits"]["val"]["clips"] == [f"{VAL}_sentence21"]
    assert manifest["splits"]["test"]["clips"] == [f"{TEST}_sentence21"]  # sentence40 has no meshes
    assert sorted(manifest["unassigned"]) == [f"{VAL}_sentence05"]  # validation uses sentences 21-40 only
    by_stem = {c["stem"]: c for c in manifest["clips"]}
    assert by_stem[f"{TRAIN}_sentence01"]["frames"] == 4
    assert by_stem[f"{TEST}_sentence40"]["frames"] is None
    assert by_stem[f"{TEST}_sentence40"]["sample_rate"] == RATE
    assert any("audio but no meshes" in r.message for r in caplog.records)
    assert not [p for p in out.rglob(".*tmp-*")]  # no temporary files left


def test_p3d_loaders_read_the_output(raw, tmp_path):
    from p3d import io
    from p3d.corpus import Corpus

    root, audio, templates = raw
    out = tmp_path / "out"
    convert_raw_vocaset(root, out, progress=False)
    vdir = io.vertices_dir(out)
    assert vdir == out / "vertices_npy"
    arr = io.load_vertices(vdir / f"{TRAIN}_sentence01.npy", n_vertices=V)
    assert arr.shape == (4, V, 3)
    np.testing.assert_array_equal(arr[1], frame_values(2))
    samples, rate = io.load_audio(io.audio_dir(out) / f"{TRAIN}_sentence01.wav")
    assert rate == RATE
    np.testing.assert_allclose(samples, audio[TRAIN]["sentence01"]["audio"] / 32768.0, rtol=0, atol=1e-7)
    loaded = io.load_templates(out / "templates.pkl", n_vertices=V)
    np.testing.assert_array_equal(loaded[TEST], templates[TEST])
    corpus = Corpus.open(out)
    assert {(c.stem, c.split) for c in corpus.clips} == {
        (f"{TRAIN}_sentence01", "train"), (f"{TRAIN}_sentence22", "train"),
        (f"{VAL}_sentence21", "val"), (f"{TEST}_sentence21", "test")}


def test_cli_converts_and_a_rerun_keeps_complete_files(raw, tmp_path, monkeypatch, capsys):
    root, _, _ = raw
    out = tmp_path / "out"
    assert run_cli(monkeypatch, ["data", "vocaset", "--raw", str(root), "--out", str(out), "--no-progress"]) == 0
    assert "11 file(s) written, 0 kept" in capsys.readouterr().out  # 5 vertex files + 6 wavs
    victim = out / "vertices_npy" / f"{TEST}_sentence21.npy"
    good = victim.read_bytes()
    victim.write_bytes(b"\x93NUMPY garbage")  # not what an atomic write leaves, but a rerun must repair it
    (out / "wav" / f"{TRAIN}_sentence01.wav").unlink()
    summary = convert_raw_vocaset(root, out, progress=False)
    assert sorted(p.name for p in summary.written) == sorted([victim.name, f"{TRAIN}_sentence01.wav"])
    assert len(summary.kept) == 9
    assert victim.read_bytes() == good
    assert len(convert_raw_vocaset(root, out, progress=False, overwrite=True).written) == 11


def test_subject_selection(raw, tmp_path, monkeypatch, capsys):
    root, _, _ = raw
    out = tmp_path / "out"
    summary = convert_raw_vocaset(root, out, subjects=[TEST], progress=False)
    assert sorted(p.name for p in summary.written) == sorted(
        [f"{TEST}_sentence21.npy", f"{TEST}_sentence21.wav", f"{TEST}_sentence40.wav"])
    with open(out / "templates.pkl", "rb") as fh:
        assert list(pickle.load(fh)) == [TEST]
    # another subject into the same folder keeps the first one's template (its files are still there); was
    # rewritten with the second's only, so that training on the folder refused the first subject's clips
    summary = convert_raw_vocaset(root, out, subjects=[TRAIN], progress=False)
    with open(out / "templates.pkl", "rb") as fh:
        assert sorted(pickle.load(fh)) == sorted([TEST, TRAIN])
    # and splits.json lists both subjects' clips, as a conversion of both at once (was the second's only)
    both = convert_raw_vocaset(root, tmp_path / "both", subjects=[TRAIN, TEST], progress=False).manifest
    assert summary.manifest == both == json.loads((out / "splits.json").read_text())
    assert summary.manifest["splits"]["test"]["clips"] == [f"{TEST}_sentence21"]
    (out / "wav" / f"{TEST}_sentence21.wav").unlink()  # an earlier subject's clip gone: not listed
    convert_raw_vocaset(root, out, subjects=[TRAIN], progress=False)
    assert json.loads((out / "splits.json").read_text())["splits"]["test"]["clips"] == []
    code = run_cli(monkeypatch, ["data", "vocaset", "--raw", str(root), "--out", str(tmp_path / "o2"),
                                 "--subjects", "FaceTalk_nobody"])
    assert code == 2 and "FaceTalk_nobody" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_converting_into_the_raw_folder_keeps_its_templates(raw):
    """The baselines keep vertices_npy/ and wav/ beside the raw files (``--out`` = ``--raw``): the release's own
    templates.pkl was rewritten, with --subjects holding only those subjects (the other subjects' templates were
    lost from the raw release), and a rerun was refused as "another raw release" (its SHA-256 had changed)."""
    root, _, templates = raw
    original = (root / "templates.pkl").read_bytes()
    convert_raw_vocaset(root, root, subjects=[TRAIN], progress=False)
    assert (root / "templates.pkl").read_bytes() == original
    summary = convert_raw_vocaset(root, root, subjects=[VAL], progress=False)  # was: no template for VAL
    assert summary.written and (root / "templates.pkl").read_bytes() == original
    summary = convert_raw_vocaset(root, root, progress=False)  # was refused: "from another raw VOCASET release"
    assert len(summary.kept) == 8 and len(summary.written) == 3  # TEST's 1 vertex file + 2 wavs are new
    assert (root / "templates.pkl").read_bytes() == original
    assert sorted(json.loads((root / "splits.json").read_text())["splits"]["val"]["clips"]) == [f"{VAL}_sentence21"]


def test_a_folder_of_another_raw_release_is_refused(raw, tmp_path, monkeypatch, capsys):
    """raw_release.json records the release a folder was converted from: converting another release into it (a
    rerun kept every file whose shape matched, so the folder mixed two releases' clips silently), or into a folder
    of files without the record, is refused; --overwrite rewrites them, unless other subjects' files would stay."""
    root, _, templates = raw
    out = tmp_path / "out"
    convert_raw_vocaset(root, out, progress=False)
    record = json.loads((out / "raw_release.json").read_text())["raw"]
    assert set(record["sizes"]) == {"data_verts.npy", "raw_audio_fixed.pkl", "subj_seq_to_idx.pkl", "templates.pkl"}
    assert len(convert_raw_vocaset(root, out, subjects=[TEST], progress=False).kept) == 3  # the same release

    verts = np.load(root / "data_verts.npy", mmap_mode="r+")  # another release: other meshes of the same shapes
    verts += 1.0
    verts.flush()
    del verts
    dump_py2(root / "templates.pkl", {s: t + 1.0 for s, t in templates.items()})
    before = {p: p.read_bytes() for p in (out / "vertices_npy").iterdir()}
    code = run_cli(monkeypatch, ["data", "vocaset", "--raw", str(root), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "converted from another raw VOCASET release" in err[0]
    assert {p: p.read_bytes() for p in (out / "vertices_npy").iterdir()} == before
    with pytest.raises(InputError, match="would not rewrite"):
        convert_raw_vocaset(root, out, subjects=[TEST], progress=False, overwrite=True)
    assert len(convert_raw_vocaset(root, out, progress=False, overwrite=True).written) == 11
    assert all(p.read_bytes() != before[p] for p in before)
    assert json.loads((out / "raw_release.json").read_text())["raw"] != record

    (out / "raw_release.json").unlink()  # files of an older p3d, which recorded no release
    with pytest.raises(InputError, match="without a record of the raw release"):
        convert_raw_vocaset(root, out, progress=False)
    convert_raw_vocaset(root, out, progress=False, overwrite=True)
    assert (out / "raw_release.json").is_file()


class _SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _break(kind, root, tmp_path):
    """Damage the raw release in one way; returns the text the error line must contain."""
    if kind.startswith("missing "):
        name = kind.split()[1]
        (root / name).unlink()
        return name
    if kind == "corrupt verts":
        (root / "data_verts.npy").write_bytes(b"not a numpy file at all")
        return "data_verts.npy"
    if kind == "truncated verts":
        data = (root / "data_verts.npy").read_bytes()
        (root / "data_verts.npy").write_bytes(data[: len(data) // 2])
        return "data_verts.npy"
    if kind == "truncated audio pickle":
        data = (root / "raw_audio_fixed.pkl").read_bytes()
        (root / "raw_audio_fixed.pkl").write_bytes(data[: len(data) // 2])
        return "raw_audio_fixed.pkl"
    if kind == "subject without audio":
        audio = pickle.loads((root / "raw_audio_fixed.pkl").read_bytes(), encoding="latin1")
        del audio[VAL]
        dump_py2(root / "raw_audio_fixed.pkl", audio)
        return VAL
    if kind == "index out of range":
        index = {s: {q: dict(f) for q, f in seqs.items()} for s, seqs in INDEX.items()}
        index[TEST]["sentence21"][2] = N_FRAMES
        dump_py2(root / "subj_seq_to_idx.pkl", index)
        return "outside"
    if kind == "template of wrong size":
        dump_py2(root / "templates.pkl", {s: np.zeros((100, 3)) for s in INDEX})
        return "templates.pkl"
    if kind == "malicious pickle":
        with open(root / "raw_audio_fixed.pkl", "wb") as fh:
            pickle.dump({TRAIN: _SystemCall(tmp_path / "PWNED")}, fh, protocol=2)
        return "not a safe data pickle"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "missing data_verts.npy", "missing raw_audio_fixed.pkl", "missing subj_seq_to_idx.pkl", "missing templates.pkl",
    "corrupt verts", "truncated verts", "truncated audio pickle", "subject without audio", "index out of range",
    "template of wrong size", "malicious pickle",
])
def test_bad_raw_release_is_one_line_exit_2_and_writes_nothing(kind, raw, tmp_path, monkeypatch, capsys):
    root, _, _ = raw
    expected = _break(kind, root, tmp_path)
    out = tmp_path / "out"
    code = run_cli(monkeypatch, ["data", "vocaset", "--raw", str(root), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p3d data: error:") and expected in lines[0], err
    assert "Traceback" not in err
    assert not out.exists()
    assert not (tmp_path / "PWNED").exists()


def test_library_call_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="raw VOCASET folder not found"):
        convert_raw_vocaset(tmp_path / "nowhere", tmp_path / "out", progress=False)


def test_split_rules():
    assert sentence_number("sentence07") == 7 and sentence_number("take1") is None
    assert vocaset_split(TRAIN, "sentence01") == "train"
    assert vocaset_split(VAL, "sentence20") is None and vocaset_split(VAL, "sentence21") == "val"
    assert vocaset_split(TEST, "sentence40") == "test"
    assert vocaset_split("FaceTalk_unknown", "sentence30") is None


def test_an_unconverted_raw_release_given_as_data_says_to_convert_it(raw, tmp_path, capsys):
    """The raw release given where converted clips are expected (p3d eval --gt, p3d train --data): eval said only
    that each prediction's GT was "not found in RAW", the corpus "not a corpus (no vertices_npy/ folder)"."""
    import p3d.cli
    from p3d.corpus import Corpus

    root, _, _ = raw
    pred = tmp_path / "pred"
    pred.mkdir()
    np.save(pred / f"{TEST}_sentence21_condition_{TRAIN}.npy", np.zeros((2, V * 3), np.float32))
    assert p3d.cli.main(["eval", "--pred", str(pred), "--gt", str(root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"p3d data vocaset --raw {root} --out DIR" in err, err
    with pytest.raises(InputError, match="raw VOCASET release.*p3d data vocaset"):
        Corpus.open(root)
    convert_raw_vocaset(root, root, progress=False)  # converted in place: a corpus, no hint
    assert len(Corpus.open(root).clips) == 4


def test_a_killed_runs_temporaries_do_not_block_an_overwrite(raw, tmp_path):
    """Hidden atomic temporaries (.<name>.tmp-XXXX.npy) of a killed conversion counted as clip files: converting
    another release with overwrite=True was refused naming them as files it would not rewrite."""
    root, _, templates = raw
    out = tmp_path / "out"
    convert_raw_vocaset(root, out, progress=False)
    (out / "vertices_npy" / f".{TEST}_sentence21.npy.tmp-k1ll3d.npy").write_bytes(b"\x93NUMPY partial")
    (out / "wav" / f".{TEST}_sentence21.wav.tmp-k1ll3d.wav").write_bytes(b"RIFF")
    assert len(convert_raw_vocaset(root, out, progress=False).kept) == 11
    verts = np.load(root / "data_verts.npy", mmap_mode="r+")  # another release
    verts += 1.0
    verts.flush()
    del verts
    dump_py2(root / "templates.pkl", {s: t + 1.0 for s, t in templates.items()})
    with pytest.raises(InputError, match="another raw VOCASET release"):
        convert_raw_vocaset(root, out, progress=False)
    assert len(convert_raw_vocaset(root, out, progress=False, overwrite=True).written) == 11


def test_unsigned_8_bit_audio_is_written_as_8_bit_wav(raw, tmp_path):
    """uint8 samples (what scipy writes for 8-bit WAV) were refused; they are written as PCM_U8, byte for byte, and
    read back as (x - 128) / 128 like any 8-bit WAV."""
    import soundfile as sf
    from scipy.io import wavfile

    from p3d.io import load_audio

    root, audio, _ = raw
    a8 = {s: {q: {"audio": ((e["audio"].astype(np.int32) >> 8) + 128).astype(np.uint8),
                  "sample_rate": e["sample_rate"]} for q, e in seqs.items()} for s, seqs in audio.items()}
    stereo = np.stack([a8[TEST]["sentence21"]["audio"], 255 - a8[TEST]["sentence21"]["audio"]], axis=1)
    a8[TEST]["sentence21"]["audio"] = stereo
    dump_py2(root / "raw_audio_fixed.pkl", a8)
    out = tmp_path / "out"
    assert len(convert_raw_vocaset(root, out, progress=False).written) == 11
    for subject, seqs in a8.items():
        for seq, entry in seqs.items():
            wav = out / "wav" / f"{subject}_{seq}.wav"
            assert sf.info(str(wav)).subtype == "PCM_U8"
            rate, samples = wavfile.read(wav)
            assert rate == RATE and samples.dtype == np.uint8 and np.array_equal(samples, entry["audio"])
    x, _ = load_audio(out / "wav" / f"{TRAIN}_sentence01.wav")
    np.testing.assert_allclose(x.ravel(), (a8[TRAIN]["sentence01"]["audio"] - 128.0) / 128.0)
    assert len(convert_raw_vocaset(root, out, progress=False).kept) == 11  # a rerun keeps them


@pytest.mark.parametrize("n_samples", [800, 3000])
def test_audio_stored_as_channels_by_samples_is_refused(n_samples, raw, tmp_path, monkeypatch, capsys):
    """A (channels, samples) array (librosa's layout) was taken as (samples, channels): with fewer than 1025 samples
    it was written silently as a wav of n_samples channels holding 2 samples each; with more, libsndfile failed with
    a traceback after the vertex files and raw_release.json were written. Refused with one line, nothing written."""
    root, audio, _ = raw
    mono = audio_of(TRAIN, "sentence01", n_samples)
    audio[TRAIN]["sentence01"] = {"audio": np.stack([mono, mono]), "sample_rate": RATE}
    dump_py2(root / "raw_audio_fixed.pkl", audio)
    out = tmp_path / "out"
    code = run_cli(monkeypatch, ["data", "vocaset", "--raw", str(root), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "(channels, samples)" in lines[0] and "sentence01" in lines[0], err
    assert not out.exists()
    (root / "raw_audio_fixed.pkl").unlink()
    audio[TRAIN]["sentence01"] = {"audio": np.stack([mono, mono], axis=1), "sample_rate": RATE}  # (samples, 2): fine
    dump_py2(root / "raw_audio_fixed.pkl", audio)
    convert_raw_vocaset(root, out, progress=False)
    import soundfile as sf

    info = sf.info(str(out / "wav" / f"{TRAIN}_sentence01.wav"))
    assert (info.channels, info.frames) == (2, n_samples)


def test_integer_pcm_stored_as_float_is_refused(raw, tmp_path, monkeypatch, capsys):
    """Float audio at int16 scale (``audio.astype(np.float32)`` without / 32768) was written as a FLOAT wav peaking at
    ~32767, which PLRS refuses only at evaluation and the talkers read unscaled. Refused with one line naming the
    clip, nothing written; float audio in [-1, 1] is still written sample-exactly."""
    import soundfile as sf

    root, audio, _ = raw
    pcm = audio_of(TRAIN, "sentence01")
    audio[TRAIN]["sentence01"] = {"audio": pcm.astype(np.float32), "sample_rate": RATE}
    dump_py2(root / "raw_audio_fixed.pkl", audio)
    out = tmp_path / "out"
    code = run_cli(monkeypatch, ["data", "vocaset", "--raw", str(root), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "integer PCM stored as float" in lines[0] and "sentence01" in lines[0], err
    assert not out.exists()
    scaled = pcm.astype(np.float32) / 32768
    audio[TRAIN]["sentence01"] = {"audio": scaled, "sample_rate": RATE}
    dump_py2(root / "raw_audio_fixed.pkl", audio)
    convert_raw_vocaset(root, out, progress=False)
    written, rate = sf.read(out / "wav" / f"{TRAIN}_sentence01.wav", dtype="float32")
    assert rate == RATE and np.array_equal(written, scaled)


def test_audio_and_meshes_of_different_durations_are_named(raw, tmp_path, caplog):
    """A sequence whose audio is twice its meshes' duration (another sentence's audio, or a wrong index) was converted
    without a word, to be refused later by p3d eval or training; it is still converted, and named in a warning.
    Sequences whose durations agree (within p3d eval's rule) are not named."""
    import logging

    root, audio, _ = raw
    for subject, seqs in INDEX.items():
        for seq, frames in seqs.items():
            n = round(len(frames) / 60 * RATE)  # the meshes' duration at 60 fps
            audio[subject][seq] = {"audio": audio_of(subject, seq, 2 * n if seq == "sentence22" else n),
                                   "sample_rate": RATE}
    dump_py2(root / "raw_audio_fixed.pkl", audio)
    with caplog.at_level(logging.WARNING, logger="p3d.datasets.vocaset"):
        summary = convert_raw_vocaset(root, tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "wav" / f"{TRAIN}_sentence22.wav") in summary.written
    named = [r.getMessage() for r in caplog.records if "different durations" in r.getMessage()]
    assert len(named) == 1 and f"{TRAIN}_sentence22 (3 frames at 60 fps" in named[0], named
    assert "factor of about 2" in named[0]
    assert all(f"{s}_{q} " not in named[0] for s, seqs in INDEX.items() for q in seqs if q != "sentence22"), named


def test_a_raw_file_edited_without_changing_its_size_is_not_kept_stale(raw, tmp_path, monkeypatch, capsys):
    """raw_release.json recorded only the sizes of raw_audio_fixed.pkl and data_verts.npy: after the audio of a
    sequence was corrected in the pickle (same length, so the same size), a rerun kept all 11 files, the stale wav
    among them. Their modification times are now recorded too: the rerun is refused with one line, nothing
    changed, and --overwrite writes the corrected audio. A folder recorded by an older p3d (sizes only) is refused
    likewise, with the way out."""
    import soundfile as sf

    root, audio, _ = raw
    out = tmp_path / "out"
    convert_raw_vocaset(root, out, progress=False)
    pkl = root / "raw_audio_fixed.pkl"
    size, mtime = pkl.stat().st_size, pkl.stat().st_mtime_ns
    fixed = audio[TRAIN]["sentence01"]["audio"] // 2
    audio[TRAIN]["sentence01"]["audio"] = fixed
    dump_py2(pkl, audio)
    os.utime(pkl, ns=(mtime + 10**9, mtime + 10**9))  # an edit made later (a coarse clock could give the same time)
    assert pkl.stat().st_size == size
    wav = out / "wav" / f"{TRAIN}_sentence01.wav"
    before = wav.read_bytes()
    code = run_cli(monkeypatch, ["data", "vocaset", "--raw", str(root), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "raw_audio_fixed.pkl: same sizes, other modification times" in err[0], err
    assert "--overwrite" in err[0] and wav.read_bytes() == before
    convert_raw_vocaset(root, out, progress=False, overwrite=True)
    assert np.array_equal(sf.read(wav, dtype="int16")[0], fixed)
    assert len(convert_raw_vocaset(root, out, progress=False).kept) == 11  # then resumable as before

    record = json.loads((out / "raw_release.json").read_text())
    del record["raw"]["mtime_ns"]  # a folder converted by an older p3d
    (out / "raw_release.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match=r"older p3d.*--overwrite rewrites them") as info:
        convert_raw_vocaset(root, out, progress=False)
    assert "\n" not in str(info.value)


def test_one_subject_name_is_that_subject(raw, tmp_path):
    """subjects="FaceTalk_..." (one name, not a list) was iterated as its characters and refused as
    "--subjects: F, a, c, e, T, ... not in subj_seq_to_idx.pkl"; one name is now that subject alone."""
    from p3d.datasets.vocaset import read_raw_vocaset

    root, _, _ = raw
    one = read_raw_vocaset(root, subjects=TEST)
    assert {s.subject for s in one.sequences} == {TEST} and list(one.templates) == [TEST]
    assert [s.stem for s in one.sequences] == [s.stem for s in read_raw_vocaset(root, subjects=[TEST]).sequences]
    summary = convert_raw_vocaset(root, tmp_path / "out", subjects=TEST, progress=False)
    assert summary.manifest == convert_raw_vocaset(root, tmp_path / "list", subjects=[TEST], progress=False).manifest


def test_multichannel_audio_duration_is_its_sample_count_not_its_size(raw, tmp_path, caplog):
    """A sequence's audio duration is samples / rate, whatever its channel count (audio is (samples,) or
    (samples, channels)): stereo audio as long as its meshes (at 60 fps) is not named as of different duration."""
    import logging

    root, audio, _ = raw
    for subject, seqs in INDEX.items():
        for seq, frames in seqs.items():
            n = round(len(frames) / 60 * RATE)  # the meshes' duration at 60 fps
            mono = audio_of(subject, seq, n)
            audio[subject][seq] = {"audio": np.stack([mono, mono // 2], axis=1), "sample_rate": RATE}
    dump_py2(root / "raw_audio_fixed.pkl", audio)
    with caplog.at_level(logging.WARNING, logger="p3d.datasets.vocaset"):
        convert_raw_vocaset(root, tmp_path / "out", progress=False)
    named = [r.getMessage() for r in caplog.records if "different durations" in r.getMessage()]
    assert named == []


def test_audio_of_as_many_channels_as_libsndfile_writes_is_converted(raw, tmp_path):
    """(samples, channels) audio with MAX_WAV_CHANNELS (1024) channels, libsndfile's most, and more samples than
    channels is written as such (only more channels than that, or than samples, are refused)."""
    import soundfile as sf

    from p3d.datasets.vocaset import MAX_WAV_CHANNELS

    root, audio, _ = raw
    n = MAX_WAV_CHANNELS + 76
    audio[TRAIN]["sentence01"]["audio"] = np.tile(audio_of(TRAIN, "sentence01", n)[:, None], (1, MAX_WAV_CHANNELS))
    dump_py2(root / "raw_audio_fixed.pkl", audio)
    convert_raw_vocaset(root, tmp_path / "out", progress=False)
    info = sf.info(str(tmp_path / "out" / "wav" / f"{TRAIN}_sentence01.wav"))
    assert (info.channels, info.frames) == (MAX_WAV_CHANNELS, n)
