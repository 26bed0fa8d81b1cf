import pickle

import numpy as np
import pytest
import soundfile as sf

from p3d import io
from p3d.errors import InputError
from p3d.topology import flame


def test_load_vertices_shapes(tmp_path):
    a = np.zeros((4, 5023 * 3), np.float32)
    np.save(tmp_path / "a.npy", a)
    v = io.load_vertices(tmp_path / "a.npy", flame())
    assert v.shape == (4, 5023, 3) and v.dtype == np.float32
    np.save(tmp_path / "b.npy", a.reshape(4, 5023, 3))
    assert io.load_vertices(tmp_path / "b.npy", n_vertices=5023).shape == (4, 5023, 3)


def test_flat_vertices_are_read_as_xyz_per_vertex(tmp_path):
    """A (T, V*3) row is x0 y0 z0 x1 y1 z1 ... (the official VOCASET / BIWI files): vertex i of frame t is
    ``row[3i:3i+3]``, for vertex files and flat templates alike."""
    flat = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 12)
    np.save(tmp_path / "v.npy", flat)
    v = io.load_vertices(tmp_path / "v.npy", n_vertices=4)
    np.testing.assert_array_equal(v[1, 2], flat[1, 6:9])
    np.testing.assert_array_equal(v, flat.reshape(2, 4, 3))
    (tmp_path / "t.pkl").write_bytes(pickle.dumps({"A": flat[0].astype(np.float64)}, protocol=2))
    np.testing.assert_array_equal(io.load_templates(tmp_path / "t.pkl", 4)["A"][3], flat[0, 9:12])


def test_wrong_vertex_count_names_file_and_shapes(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((4, 300)))
    with pytest.raises(InputError) as exc:
        io.load_vertices(tmp_path / "bad.npy", flame())
    msg = str(exc.value)
    assert "bad.npy" in msg and "(4, 300)" in msg and "5023" in msg and "15069" in msg


@pytest.mark.parametrize("array, match", [
    (np.zeros((4, 10)), "multiple of 3"),
    (np.zeros((4, 2, 2)), "expected"),
    (np.zeros((0, 9)), "no frames"),
    (np.array([[np.nan] * 9]), "NaN"),
    (np.array([[np.inf] * 9]), "NaN or inf"),
    (np.array([["a"] * 9]), "numeric"),
])
def test_bad_arrays(tmp_path, array, match):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(InputError, match=match):
        io.load_vertices(tmp_path / "x.npy")


def test_refuses_object_arrays_and_corrupt_files(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="Python objects"):
        io.load_vertices(tmp_path / "obj.npy")
    (tmp_path / "c.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="readable"):
        io.load_vertices(tmp_path / "c.npy")
    with pytest.raises(InputError, match="not found"):
        io.load_vertices(tmp_path / "missing.npy")


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_restricted_unpickler(tmp_path):
    good = {"s1": np.ones((5023, 3), np.float32), "meta": [1, 2.0, "x", (3,)]}
    (tmp_path / "good.pkl").write_bytes(pickle.dumps(good, protocol=2))
    back = io.load_pickle(tmp_path / "good.pkl")
    np.testing.assert_array_equal(back["s1"], good["s1"])
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(InputError, match="not a safe data pickle"):
        io.load_pickle(tmp_path / "evil.pkl")
    (tmp_path / "trunc.pkl").write_bytes(pickle.dumps(good)[:50])
    with pytest.raises(InputError, match="corrupt"):
        io.load_pickle(tmp_path / "trunc.pkl")


def test_restricted_unpickler_refuses_memory_bombs(tmp_path):
    """A few dozen bytes asking an admitted constructor for a count of items the file does not hold: refused
    before allocating (the real bombs ask for 10**10; these ask for a few million so the old code survives)."""
    n = pickle.dumps(3_000_000, protocol=2)[2:-1]  # the opcode pushing the count
    bombs = {
        "list_range": b"\x80\x02cbuiltins\nlist\ncbuiltins\nrange\n" + n + b"\x85R\x85R.",
        "bytearray": b"\x80\x02cbuiltins\nbytearray\n" + n + b"\x85R.",
        "bytes": b"\x80\x02cbuiltins\nbytes\n" + n + b"\x85R.",
        "object_array": b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + n
        + b"\x85U\x01O\x87R.",
        "ndarray_call": b"\x80\x02cnumpy\nndarray\n" + n + b"\x85U\x01O\x86R.",
        "ndarray_newobj": b"\x80\x02cnumpy\nndarray\n" + n + b"\x85U\x01O\x86\x81.",
    }
    for name, data in bombs.items():
        (tmp_path / f"{name}.pkl").write_bytes(data)
        with pytest.raises(InputError, match=f"{name}.pkl: (not a safe data pickle|corrupt)"):
            io.load_pickle(tmp_path / f"{name}.pkl")
    # what the allow-list admits still loads, at every protocol from 2
    data = {"a": np.arange(12.0).reshape(4, 3), "f": np.asfortranarray(np.ones((3, 2))), "s": np.float32(2),
            "b": b"xy", "o": np.array(["x"], dtype=object), "big": np.zeros((2000, 3))}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        (tmp_path / "ok.pkl").write_bytes(pickle.dumps(data, protocol=protocol))
        back = io.load_pickle(tmp_path / "ok.pkl")
        assert type(back["a"]) is np.ndarray and back["f"].flags.f_contiguous and back["b"] == b"xy"
        np.testing.assert_array_equal(back["big"], data["big"])
    (tmp_path / "r.pkl").write_bytes(pickle.dumps([range(5), bytearray(b"z")], protocol=4))
    assert io.load_pickle(tmp_path / "r.pkl") == [range(5), bytearray(b"z")]


def test_restricted_unpickler_reads_python3_protocol2_pickles_of_empty_data(tmp_path):
    """Python 3's ``pickle.dump(..., protocol=2)`` spells b"" (an empty array's data) and other builtins by their
    Python 2 names: ``__builtin__.bytes`` was refused ("not a safe data pickle") while ``builtins.bytes`` was
    admitted. Python 2 names now read as their Python 3 ones, with the same allow-list and count bounds."""
    data = {"empty": np.zeros((0, 3), np.float32), "b": b"", "r": range(3), "c": 1 + 2j, "fs": frozenset({1})}
    (tmp_path / "p2.pkl").write_bytes(pickle.dumps(data, protocol=2))
    assert b"__builtin__\nbytes" in (tmp_path / "p2.pkl").read_bytes()
    back = io.load_pickle(tmp_path / "p2.pkl")
    assert back["empty"].shape == (0, 3) and back["empty"].dtype == np.float32
    assert back["b"] == b"" and back["r"] == range(3) and back["c"] == 1 + 2j and back["fs"] == frozenset({1})
    n = pickle.dumps(3_000_000, protocol=2)[2:-1]
    (tmp_path / "bomb.pkl").write_bytes(b"\x80\x02c__builtin__\nbytearray\n" + n + b"\x85R.")
    (tmp_path / "eval.pkl").write_bytes(b"\x80\x02c__builtin__\neval\nX\x03\x00\x00\x001+1\x85R.")
    for name in ("bomb", "eval"):
        with pytest.raises(InputError, match=f"{name}.pkl: not a safe data pickle"):
            io.load_pickle(tmp_path / f"{name}.pkl")


def test_load_json_names_a_corrupt_file(tmp_path):
    (tmp_path / "ok.json").write_text('{"fps": 30}')
    assert io.load_json(tmp_path / "ok.json") == {"fps": 30}
    (tmp_path / "meta.json").write_text('{"fps": 30')  # truncated
    with pytest.raises(InputError, match=r"meta\.json: corrupt JSON"):
        io.load_json(tmp_path / "meta.json")
    (tmp_path / "config.json").write_bytes(b"\xff\xfe{")  # not UTF-8 text
    with pytest.raises(InputError, match=r"config\.json: corrupt JSON"):
        io.load_json(tmp_path / "config.json")
    (tmp_path / "list.json").write_text("[1, 2]")  # valid JSON, but no metadata object
    with pytest.raises(InputError, match=r"list\.json: expected a JSON object"):
        io.load_json(tmp_path / "list.json")


def test_load_json_refuses_adversarial_files_in_one_line(tmp_path):
    import os
    import signal

    cases = {"deep.json": "[" * 100_000 + "]" * 100_000, "bigint.json": '{"a": ' + "1" * 5000 + "}"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match=rf"{name}: corrupt JSON") as info:
            io.load_json(tmp_path / name)
        assert "\n" not in str(info.value) and len(str(info.value)) < 300
    with pytest.raises(InputError, match="missing.json: JSON file not found"):
        io.load_json(tmp_path / "missing.json")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "meta.json").symlink_to(tmp_path / "fifo")
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("blocked on a FIFO")))
    signal.alarm(5)
    try:
        with pytest.raises(InputError, match="meta.json: JSON file is a named pipe"):
            io.load_json(tmp_path / "meta.json")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def test_load_templates(tmp_path):
    (tmp_path / "t.pkl").write_bytes(pickle.dumps({"A": np.zeros((5023, 3))}, protocol=2))
    t = io.load_templates(tmp_path / "t.pkl", 5023)
    assert t["A"].shape == (5023, 3)
    (tmp_path / "w.pkl").write_bytes(pickle.dumps({"A": np.zeros((10, 3))}))
    with pytest.raises(InputError, match="5023"):
        io.load_templates(tmp_path / "w.pkl", 5023)
    (tmp_path / "l.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(InputError, match="dict"):
        io.load_templates(tmp_path / "l.pkl")


def test_load_audio(tmp_path):
    stereo = np.stack([np.full(1600, 0.5), np.full(1600, -0.25)], axis=1)
    sf.write(tmp_path / "a.wav", stereo, 16000, subtype="PCM_16")
    mono, sr = io.load_audio(tmp_path / "a.wav")
    assert sr == 16000 and mono.shape == (1600,)
    assert np.allclose(mono, 0.125, atol=1e-4)
    both, _ = io.load_audio(tmp_path / "a.wav", mono=False)
    assert both.shape == (1600, 2)
    res, sr2 = io.load_audio(tmp_path / "a.wav", sr=8000)
    assert sr2 == 8000 and abs(len(res) - 800) <= 1
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(InputError, match="readable audio"):
        io.load_audio(tmp_path / "bad.wav")
    with pytest.raises(InputError, match="not found"):
        io.load_audio(tmp_path / "none.wav")
    sf.write(tmp_path / "empty.wav", np.zeros((0,)), 16000)
    with pytest.raises(InputError, match="no samples"):
        io.load_audio(tmp_path / "empty.wav")


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_a_truncated_wav_is_refused_not_read_as_a_shorter_recording(tmp_path, subtype):
    """libsndfile reads a WAV whose data chunk ends before its declared size (an interrupted copy) as the shorter
    recording it holds, silently: load_audio returned 20946 of 22050 samples, and p3d eval's duration check read
    the short length from the header. The header's promise is now checked, as for .npy and .ply files."""
    from p3d.audio import load_speech_audio
    from p3d.evaluate.plan import _wav_seconds

    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (22050, 2)).astype(np.float32)
    sf.write(tmp_path / "a.wav", audio, 22050, subtype=subtype)
    whole = (tmp_path / "a.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[: int(len(whole) * 0.95)])
    for read in (io.load_audio, load_speech_audio, _wav_seconds):
        with pytest.raises(InputError, match="truncated WAV file: its header promises 22050 sample frames"):
            read(tmp_path / "cut.wav")
    # not truncated: an odd-sized chunk before the data (padded), and a streaming writer's size placeholder
    riff = bytearray(whole)
    at = riff.find(b"data")
    odd = riff[:at] + b"LIST" + (3).to_bytes(4, "little") + b"abc\x00" + riff[at:]
    odd[4:8] = (len(odd) - 8).to_bytes(4, "little")
    (tmp_path / "odd.wav").write_bytes(bytes(odd))
    assert io.load_audio(tmp_path / "odd.wav")[0].shape == (22050,)
    (tmp_path / "odd_cut.wav").write_bytes(bytes(odd[: int(len(odd) * 0.95)]))  # the data chunk found behind the pad
    with pytest.raises(InputError, match="truncated WAV file: its header promises 22050 sample frames"):
        io.load_audio(tmp_path / "odd_cut.wav")
    riff[at + 4:at + 8] = (0xFFFFFFFF).to_bytes(4, "little")
    (tmp_path / "stream.wav").write_bytes(bytes(riff[: int(len(riff) * 0.95)]))
    assert io.load_audio(tmp_path / "stream.wav")[0].shape[0] < 22050
    riff[at + 4:at + 8] = (0x7FFFF000).to_bytes(4, "little")  # SoX's placeholder
    (tmp_path / "sox.wav").write_bytes(bytes(riff[: int(len(riff) * 0.95)]))
    assert io.load_audio(tmp_path / "sox.wav")[0].shape[0] < 22050


def test_a_wav_cut_by_less_than_one_sample_frame_is_refused_too(tmp_path):
    """A stereo PCM_16 WAV (4-byte sample frames) cut by 1 to 3 bytes reads as 22049 of its 22050 frames: the
    truncation check let it through (it refused only cuts of a whole frame or more). Every frame the header promises
    that is not whole in the file is now refused."""
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (22050, 2)).astype(np.float32)
    sf.write(tmp_path / "a.wav", audio, 22050, subtype="PCM_16")
    whole = (tmp_path / "a.wav").read_bytes()
    for cut in (1, 3, 4):
        (tmp_path / "cut.wav").write_bytes(whole[:-cut])
        assert sf.info(str(tmp_path / "cut.wav")).frames == 22049  # what libsndfile would read silently
        with pytest.raises(InputError, match="promises 22050 sample frames .* the file holds 22049"):
            io.load_audio(tmp_path / "cut.wav")


def test_load_audio_resamples_as_the_baselines_official_librosa_load(tmp_path):
    """``librosa.load(path, sr=16000)`` of the baselines' official code (librosa 0.8-0.9): the channel mean resampled
    with resampy's kaiser_best filter to ceil(n * 16000 / sr) samples. librosa >= 0.10 defaults to soxr, which
    differs above ~7 kHz (the resampler p3d used before)."""
    import math

    import librosa
    import resampy

    rng = np.random.default_rng(0)
    t = np.arange(22050) / 22050
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 7600 * t) + 0.01 * rng.standard_normal(t.size)
    right = 0.5 * left + 0.1 * np.sin(2 * np.pi * 3000 * t)
    sf.write(tmp_path / "a.wav", np.stack([left, right], 1), 22050, subtype="FLOAT")
    got, sr = io.load_audio(tmp_path / "a.wav", sr=16000)
    mono = np.stack([left, right]).astype(np.float32).mean(axis=0)
    want = resampy.resample(mono, 22050, 16000, filter="kaiser_best", axis=-1)
    n = math.ceil(t.size * 16000 / 22050)
    want = np.pad(want, (0, max(n - want.size, 0)))[:n]
    assert sr == 16000 and got.dtype == np.float32 and got.shape == (n,)
    assert np.abs(got - want).max() < 1e-5
    soxr = librosa.resample(mono, orig_sr=22050, target_sr=16000, res_type="soxr_hq")
    assert np.abs(soxr - want).max() > 1e-3  # the resampler matters at this scale
    both, _ = io.load_audio(tmp_path / "a.wav", sr=16000, mono=False)
    assert both.shape == (n, 2) and np.abs(both.mean(axis=1) - got).max() < 1e-5
    assert np.array_equal(io.resample(got, 16000, 16000), got)


def test_load_ply(tmp_path):
    ply = tmp_path / "m.ply"
    ply.write_text("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
                   "element face 2\nproperty list uchar int vertex_indices\nend_header\n"
                   "0 0 0\n1 0 0\n0 1 0\n1 1 0\n3 0 1 2\n3 1 3 2\n")
    v, f = io.load_ply(ply)
    assert v.shape == (4, 3) and f.tolist() == [[0, 1, 2], [1, 3, 2]]
    with pytest.raises(InputError, match="not found"):
        io.load_ply(tmp_path / "none.ply")


@pytest.mark.parametrize("stem, gt, identity, condition, level", [
    ("FaceTalk_170731_00024_TA_sentence21_condition_FaceTalk_170725_00137_TA",
     "FaceTalk_170731_00024_TA_sentence21", "FaceTalk_170731_00024_TA", "FaceTalk_170725_00137_TA", None),
    ("FaceTalk_170731_00024_TA_sentence21", "FaceTalk_170731_00024_TA_sentence21", "FaceTalk_170731_00024_TA", None, None),
    ("M003_angry_level_3_001_condition_FaceTalk_170725_00137_TA", "M003_angry_level_3_001", "M003",
     "FaceTalk_170725_00137_TA", 3),
    ("W009_neutral_level_1_017", "W009_neutral_level_1_017", "W009", None, 1),
    ("spk7_clip3_condition_A", "spk7_clip3", "spk7", "A", None),
])
def test_parse_clip_name(stem, gt, identity, condition, level):
    n = io.parse_clip_name(stem + ".npy")
    assert (n.gt_stem, n.identity, n.condition, n.level) == (gt, identity, condition, level)


def test_parse_clip_name_forced_convention():
    with pytest.raises(InputError, match="VOCASET"):
        io.parse_clip_name("spk7_clip3", "vocaset")
    with pytest.raises(InputError, match="MEAD"):
        io.parse_clip_name("FaceTalk_170731_00024_TA_sentence21", "mead")
    with pytest.raises(InputError, match="unknown dataset"):
        io.parse_clip_name("x", "biwi")


def test_find_npy(tmp_path):
    with pytest.raises(InputError, match="not found"):
        io.find_npy(tmp_path / "nope")
    with pytest.raises(InputError, match="no .npy"):
        io.find_npy(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        io.find_npy(tmp_path / "f")
    # an upper-case extension is reported as skipped, not left out without a word (was silent)
    folder = tmp_path / "preds"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((2, 3)))
    np.save(folder / "b.npy", np.zeros((2, 3)))
    (folder / "b.npy").rename(folder / "B.NPY")
    skipped = []
    assert io.find_npy(folder, skipped=skipped) == [folder / "a.npy"]
    assert skipped == [{"file": "B.NPY", "reason": "extension not lower-case .npy; not read"}]


def test_npy_header_reads_shape_without_data_and_checks_the_file(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((7, 15), np.float16))
    assert io.npy_header(tmp_path / "a.npy") == ((7, 15), np.dtype(np.float16))
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-10])
    with pytest.raises(InputError, match="truncated .npy file"):
        io.npy_header(tmp_path / "cut.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="Python objects"):
        io.npy_header(tmp_path / "obj.npy")


def test_identity_in_templates_takes_the_longest_leading_words_naming_a_template():
    name = io.parse_clip_name("spk_01_clip3_condition_F2", "generic")
    assert name.identity == "spk"
    assert io.identity_in_templates(name, {"spk_01": 0}).identity == "spk_01"
    assert io.identity_in_templates(name, {"spk": 0, "spk_01": 0}).identity == "spk"  # its own identity is known
    assert io.identity_in_templates(name, {"spk_01_clip3": 0}).identity == "spk"  # the whole stem is not a speaker
    assert io.identity_in_templates(name, {"other": 0}) == name
    long = io.parse_clip_name("a_b_c_clip3", "generic")
    assert io.identity_in_templates(long, {"a_b": 0, "a_b_c": 0}).identity == "a_b_c"  # the longest run naming one


@pytest.mark.parametrize("stem", ["", ".npy", "some/dir/.npy"])
def test_an_empty_clip_name_is_refused(stem):
    with pytest.raises(InputError, match="clip name: empty"):
        io.parse_clip_name(stem)  # an AssertionError before


@pytest.mark.parametrize("sr", [0, -16000, 16000.5, True])
def test_load_audio_refuses_a_sample_rate_that_is_not_a_positive_integer(tmp_path, sr):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(1600, np.float32), 16000)
    with pytest.raises(InputError, match="sr: expected a positive integer sample rate"):
        io.load_audio(path, sr=sr)  # librosa's ValueError, or 16000.5 silently read as 16000


def test_load_templates_refuses_two_keys_naming_one_subject(tmp_path):
    """Keys 1 and "1" are both subject "1": the later template silently replaced the earlier one."""
    path = tmp_path / "templates.pkl"
    path.write_bytes(pickle.dumps({1: np.zeros((4, 3)), "1": np.ones((4, 3))}))
    with pytest.raises(InputError, match="two templates for subject '1'"):
        io.load_templates(path)


def test_integer_pcm_stored_as_float_is_refused_by_every_reader_of_audio(tmp_path, voca):
    """A FLOAT wav holding int16-scale values (``sf.write(p, pcm.astype(np.float32), sr, subtype="FLOAT")``) reached
    the talkers (training, ``p3d predict``) and SLCC unscaled, peaking at ~1e4, while PLRS refused it (without naming
    the file). The one rule (:func:`p3d.io.check_float_peak`, +-FLOAT_PEAK_LIMIT) is now applied by load_audio, so
    every reader refuses it with the same one line naming the file; float audio up to the limit reads sample-exactly."""
    import shutil

    from p3d.audio import FLOAT_PEAK_LIMIT, load_speech_audio
    from p3d.evaluate.scoring import _clip_audio
    from p3d.talker_data import TalkerClips

    pcm = np.random.default_rng(0).normal(0, 3000, 16000).astype(np.int16)
    bad = tmp_path / "int_as_float.wav"
    sf.write(bad, pcm.astype(np.float32), 16000, subtype="FLOAT")
    expected = rf"^{bad}: float samples reach 1\.\d+e\+04, beyond \+-8: integer PCM stored as float\?"
    readers = (io.load_audio, lambda p: io.load_audio(p, sr=16000), lambda p: io.load_audio(p, mono=False),
               load_speech_audio, lambda p: _clip_audio(p, ("slcc", "plrs")))
    for read in readers:
        with pytest.raises(InputError, match=expected) as info:
            read(bad)
        assert "\n" not in str(info.value)
    # the talkers' data loading (training, predict): a corpus clip written so
    corpus = tmp_path / "voca"
    shutil.copytree(voca, corpus)
    wav = corpus / "wav" / "train00_sentence01.wav"
    samples, rate = sf.read(wav, dtype="float32")
    sf.write(wav, samples * 32768, rate, subtype="FLOAT")
    with pytest.raises(InputError, match=rf"^{wav}: float samples reach"):
        TalkerClips(corpus)
    # valid float audio, up to the limit: the same samples as before
    ok = np.linspace(-FLOAT_PEAK_LIMIT, FLOAT_PEAK_LIMIT, 1000, dtype=np.float32)
    sf.write(tmp_path / "loud.wav", ok, 16000, subtype="FLOAT")
    assert np.array_equal(io.load_audio(tmp_path / "loud.wav")[0], ok)
    assert np.array_equal(load_speech_audio(tmp_path / "loud.wav")[0], ok)


def test_float_peak_is_the_largest_magnitude_either_sign():
    """check_float_peak's peak is max |x| (the documented rule): unscaled PCM whose excursion beyond the limit is
    negative only (e.g. a clipped negative half-wave, positive samples all within [-1, 1]) is refused too, and
    its message gives that magnitude."""
    x = np.zeros(1000, dtype=np.float32)
    x[10] = -20000.0  # int16-scale, negative
    x[20] = 0.5
    with pytest.raises(InputError, match=r"^clip: float samples reach 2e\+04, beyond \+-8"):
        io.check_float_peak(x, "clip", "fix it")
    io.check_float_peak(-x / 20000 * io.FLOAT_PEAK_LIMIT, "clip", "fix it")  # |x| at the limit: accepted


def test_is_ignored_name_covers_each_documented_temporary_name():
    """Data discovery skips hidden files, ``*.tmp``, ``*~`` backups and Emacs ``#name#`` autosaves (each rule of
    the pattern), and nothing else: a clip's own name is never ignored."""
    for name in (".a.npy", "._a.npy", ".a.npy.tmp-1234", "a.npy.tmp", "a.npy~", "#a.npy#"):
        assert io.is_ignored_name(name), name
    for name in ("a.npy", "a~b.npy", "a.tmp.npy", "#a.npy", "a#.npy"):
        assert not io.is_ignored_name(name), name


def test_restricted_unpickler_rebuilds_only_numpy_arrays(tmp_path):
    """The two admitted rebuilders (numpy's ``_reconstruct`` and ``copyreg._reconstructor``) are refused as unsafe
    for any class but numpy.ndarray, even an admitted one (a protocol-0 pickle of an OrderedDict subclass asks
    ``copyreg._reconstructor(OrderedDict, dict, state)``)."""
    cases = {
        "copyreg": b"ccopy_reg\n_reconstructor\n(ccollections\nOrderedDict\nc__builtin__\ndict\n(dtR.",
        "numpy": b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nccollections\nOrderedDict\nK\x00\x85U\x01b\x87R.",
    }
    for name, data in cases.items():
        (tmp_path / f"{name}.pkl").write_bytes(data)
        with pytest.raises(InputError, match=f"{name}.pkl: not a safe data pickle .*refusing to reconstruct"):
            io.load_pickle(tmp_path / f"{name}.pkl")


def test_npy_header_refuses_a_file_one_byte_short(tmp_path):
    """The truncation check compares the data bytes the header promises with those the file holds: one byte short
    is truncated (npy_header reads no data, so nothing else would notice)."""
    np.save(tmp_path / "a.npy", np.arange(12, dtype=np.float32).reshape(4, 3))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:-1])
    with pytest.raises(InputError, match=r"truncated .npy file: .* \(48 bytes of data\) but the file holds 47"):
        io.npy_header(tmp_path / "cut.npy")
    assert io.npy_header(tmp_path / "a.npy") == ((4, 3), np.dtype(np.float32))


def test_load_templates_refuses_an_empty_dict_and_templates_not_v_by_3(tmp_path):
    """An empty templates.pkl is no neutral face at all, and a template of shape (6, 2) or (2, 3, 3) holds 12 or 18
    numbers that flatten into 4 or 6 plausible vertices: each is refused by name, not read as some other face."""
    (tmp_path / "empty.pkl").write_bytes(pickle.dumps({}))
    with pytest.raises(InputError, match=r"empty.pkl: expected a non-empty dict .* found dict \(empty\)"):
        io.load_templates(tmp_path / "empty.pkl")
    for shape in ((6, 2), (2, 3, 3)):
        (tmp_path / "t.pkl").write_bytes(pickle.dumps({"A": np.zeros(shape)}))
        with pytest.raises(InputError, match=rf"\['A'\]: template of shape \({shape[0]}, "):
            io.load_templates(tmp_path / "t.pkl")
    (tmp_path / "flat.pkl").write_bytes(pickle.dumps({"A": np.arange(6.0)}))  # (V*3,) is accepted
    np.testing.assert_array_equal(io.load_templates(tmp_path / "flat.pkl")["A"], [[0, 1, 2], [3, 4, 5]])


def test_check_ply_refuses_an_ascii_body_one_number_short(tmp_path):
    """An ASCII PLY whose last face lost its last index (an interrupted write) is truncated: VTK would read the
    missing number as 0. A complete body passes."""
    header = ("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
              "element face 2\nproperty list uchar int vertex_indices\nend_header\n")
    body = "0 0 0\n1 0 0\n0 1 0\n1 1 0\n3 0 1 2\n3 1 3 2\n"
    (tmp_path / "ok.ply").write_text(header + body)
    io.check_ply(tmp_path / "ok.ply")
    (tmp_path / "cut.ply").write_text(header + body[:-3])
    with pytest.raises(InputError, match="cut.ply: not a readable PLY mesh: truncated: its header declares 2 face"):
        io.check_ply(tmp_path / "cut.ply")


def _binary_ply(order: str, count_type: str) -> bytes:
    """A 4-vertex, 2-triangle binary PLY (``order`` "<" or ">"; faces as ``list <count_type> int``)."""
    fmt = "binary_little_endian" if order == "<" else "binary_big_endian"
    header = (f"ply\nformat {fmt} 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
              f"element face 2\nproperty list {count_type} int vertex_indices\nend_header\n").encode()
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=order + "f4").tobytes()
    count = np.dtype({"uchar": "u1", "int": "i4"}[count_type]).newbyteorder(order)
    faces = b"".join(np.array([3], count).tobytes() + np.array(f, order + "i4").tobytes()
                     for f in ([0, 1, 2], [1, 3, 2]))
    return header + verts + faces


@pytest.mark.parametrize("order, count_type", [("<", "uchar"), (">", "int"), ("<", "int")])
def test_check_ply_walks_binary_bodies_and_refuses_one_byte_short(tmp_path, order, count_type):
    """A binary body is walked by its bytes: 4-byte float vertices, then per face its list count (read in the file's
    byte order) and that many 4-byte indices. The complete file passes; one byte short is truncated (VTK crashes on
    such a file)."""
    data = _binary_ply(order, count_type)
    (tmp_path / "ok.ply").write_bytes(data)
    io.check_ply(tmp_path / "ok.ply")
    (tmp_path / "cut.ply").write_bytes(data[:-1])
    with pytest.raises(InputError, match="cut.ply: not a readable PLY mesh: truncated: its header declares 2 face"):
        io.check_ply(tmp_path / "cut.ply")
    if order == "<" and count_type == "uchar":
        vertices, faces = io.load_ply(tmp_path / "ok.ply")
        assert vertices.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]]
        assert faces.tolist() == [[0, 1, 2], [1, 3, 2]]


def test_restricted_unpickler_counts_the_elements_of_a_subarray_dtype(tmp_path):
    """A subarray dtype multiplies the requested shape: a 60-byte pickle asking ``_reconstruct(ndarray, (1,),
    ('O', (3000, 1000)))`` (or ``ndarray((1,), ...)``) built an object array of 3 million entries past the count
    bound, which counted only ``(1,)``. Its elements are now counted; arrays with subarray fields still load."""
    dtype = b"U\x01OM\xb8\x0bM\xe8\x03\x86\x86"  # ('O', (3000, 1000))
    bombs = {"reconstruct": b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x01\x85" + dtype
             + b"\x87R.",
             "ndarray_call": b"\x80\x02cnumpy\nndarray\nK\x01\x85" + dtype + b"\x86R."}
    for name, data in bombs.items():
        (tmp_path / f"{name}.pkl").write_bytes(data)
        with pytest.raises(InputError, match=f"{name}.pkl: not a safe data pickle .*3000000 elements"):
            io.load_pickle(tmp_path / f"{name}.pkl")
    fields = np.zeros(4, dtype=[("xyz", "f4", (3,)), ("id", "i4")])
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps({"a": fields}, protocol=2))
    assert io.load_pickle(tmp_path / "ok.pkl")["a"].dtype == fields.dtype


def test_restricted_unpickler_bounds_the_bytes_of_an_array_created_from_a_count(tmp_path):
    """The element bound alone let a few dozen bytes ask ``_reconstruct(ndarray, (2,), 'V536870912')``: two elements,
    1 GiB of memory allocated before BUILD. The bytes are bounded too (8 MiB, the element bound's float64 entries);
    what real pickles ask (a shape of ``(0,)``, then BUILD with the data) still loads."""
    wide = b"cnumpy\ndtype\nX\n\x00\x00\x00V536870912K\x00K\x01\x87R"  # numpy.dtype('V536870912', 0, 1)
    bombs = {"reconstruct": b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x02\x85" + wide
             + b"\x87R.",
             "ndarray_call": b"\x80\x02cnumpy\nndarray\nK\x02\x85" + wide + b"\x86R."}
    for name, data in bombs.items():
        (tmp_path / f"{name}.pkl").write_bytes(data)
        with pytest.raises(InputError, match=f"{name}.pkl: not a safe data pickle .*1073741824 bytes"):
            io.load_pickle(tmp_path / f"{name}.pkl")
    rows = np.zeros(3, dtype="V64")
    big = np.zeros((1000, 3000))  # 24 MB, above the bound: its data is in the file
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps({"v": rows, "big": big}, protocol=2))
    back = io.load_pickle(tmp_path / "ok.pkl")
    assert back["v"].dtype == rows.dtype and back["big"].shape == (1000, 3000)


def test_check_ply_refuses_a_negative_list_count(tmp_path):
    """A face row whose stored list count is negative (a corrupt file) walked the body backwards, so a body shorter
    than its header declares passed the check and VTK's reader then crashed the process (``Memory allocation
    bombed``, SIGSEGV). A count must be >= 0, in ASCII and binary bodies."""
    header = ("ply\nformat {} 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
              "element face 2\nproperty list int int vertex_indices\nend_header\n")
    (tmp_path / "a.ply").write_text(header.format("ascii") + "0 0 0\n1 0 0\n0 1 0\n-9 0 1 2\n")
    body = np.zeros((3, 3), "<f4").tobytes() + np.array([3, 0, 1, 2, -4], "<i4").tobytes()
    (tmp_path / "b.ply").write_bytes(header.format("binary_little_endian").encode() + body)
    for name, count in (("a.ply", "-9"), ("b.ply", "-4")):
        with pytest.raises(InputError, match=rf"{name}: not a readable PLY mesh: a face row's list count is {count}, "
                                             "not a count"):
            io.check_ply(tmp_path / name)  # before pyvista reads it (on the old code, load_ply crashed)


def test_face_frame_refuses_sizes_beyond_the_placement_scale_either_way_and_far_centroids():
    """FaceFrame compares a prediction's mean frame with the GT's: a size more than PLACEMENT_SCALE times larger
    (mm against m) or smaller (offsets, m against mm), or a centroid further than the GT face's size, is refused;
    a 2x size and a shift of 0.9 sizes (a poor model) are still scored."""
    rng = np.random.default_rng(0)
    gt = rng.normal(0, 0.1, (1, 50, 3)) + np.array([0.0, 0.0, 1.0])
    frame = io.FaceFrame.of(np.repeat(gt, 4, axis=0))
    centre = gt.mean(axis=1, keepdims=True)
    assert frame.size == pytest.approx(float(np.sqrt(((gt[0] - centre[0]) ** 2).sum(axis=1).mean())))
    for ok in (centre + 2 * (gt - centre), centre + 0.5 * (gt - centre), gt + [0.9 * frame.size, 0, 0]):
        frame.check(ok, "pred.npy", "gt.npy")
    for bad, scale in ((centre + 4 * (gt - centre), "4"), (centre + 0.25 * (gt - centre), "0.25"),
                       (gt + [1.2 * frame.size, 0, 0], "1")):
        with pytest.raises(InputError, match=rf"pred.npy: not the coordinate frame of the ground truth gt.npy: "
                                             rf"its mean frame is {scale} times"):
            frame.check(bad, "pred.npy", "gt.npy")


def test_check_ply_needs_a_format_line_and_load_ply_some_vertices(tmp_path):
    """A PLY header without its ``format`` line cannot be walked (ASCII or binary, which byte order?): refused by
    name. A well-formed PLY of 0 vertices is no mesh: refused too."""
    (tmp_path / "nofmt.ply").write_text("ply\nelement vertex 1\nproperty float x\nend_header\n0\n")
    with pytest.raises(InputError, match=r"nofmt.ply: not a readable PLY mesh \(no 'format ascii\|binary"):
        io.check_ply(tmp_path / "nofmt.ply")
    (tmp_path / "none.ply").write_text("ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\n"
                                       "property float z\nend_header\n")
    with pytest.raises(InputError, match="none.ply: PLY holds no vertices"):
        io.load_ply(tmp_path / "none.ply")


def test_vertices_dir_names_a_raw_vocaset_release_only_when_it_is_one(tmp_path):
    """``vertices_dir`` takes ``vertices_npy/`` when present, else the folder itself; a raw VOCASET release (both
    data_verts.npy and subj_seq_to_idx.pkl, no vertices_npy/) is refused with the conversion command. A folder
    holding only one of the two raw files is a folder of clips like any other."""
    (tmp_path / "data_verts.npy").write_bytes(b"")
    assert io.raw_vocaset_hint(tmp_path) == "" and io.vertices_dir(tmp_path) == tmp_path
    (tmp_path / "subj_seq_to_idx.pkl").write_bytes(b"")
    with pytest.raises(InputError, match=r"no vertex files; .* is the raw VOCASET release .*`p3d data vocaset --raw"):
        io.vertices_dir(tmp_path)
    (tmp_path / "vertices_npy").mkdir()
    (tmp_path / "wav").mkdir()
    assert io.vertices_dir(tmp_path) == tmp_path / "vertices_npy" and io.audio_dir(tmp_path) == tmp_path / "wav"
    assert io.audio_dir(tmp_path / "vertices_npy") == tmp_path / "vertices_npy"
