import json
import re

import numpy as np
import pandas as pd
import pytest

from p3d.corpus import Corpus
from p3d.errors import InputError


def test_open_processed_vocaset(demo):
    c = Corpus.open(demo.vocaset)
    assert c.fps == 60 and c.model_fps == 30 and c.stride == 2
    test = c.select("test")
    assert len(test) == 4 and {x.identity for x in test} == {"FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA"}
    full = c.vertices(test[0], model_rate=False)
    np.testing.assert_array_equal(c.vertices(test[0]), full[::2])
    for clip in test:  # frame counts from the header alone, odd and even lengths alike
        assert c.n_frames(clip) == len(c.vertices(clip)) and c.n_frames(clip, model_rate=False) == len(
            c.vertices(clip, model_rate=False))
    samples, sr = c.audio(test[0])
    assert sr == 16000 and samples.ndim == 1
    assert set(c.templates) >= set(c.identities("test"))
    with pytest.raises(InputError, match="no clips in split"):
        c.select("train")
    with pytest.raises(InputError, match="labels"):
        c.labels(test[0])


def test_open_meta_corpus(tmp_path, demo):
    root = tmp_path / "c"
    (root / "vertices_npy").mkdir(parents=True)
    (root / "labels").mkdir()
    v = np.zeros((6, 5023 * 3), np.float32)
    np.save(root / "vertices_npy" / "S1_sentence01.npy", v)
    np.savez(root / "labels" / "S1_sentence01.npz", phoneme=np.arange(6, dtype=np.int16), viseme=np.zeros(6, np.int16))
    (root / "meta.json").write_text(json.dumps({"name": "t", "kind": "vocaset", "fps": 30, "topology": "flame",
                                                "splits": {"train": ["S1"]}}))
    with pytest.raises(InputError, match="clips.csv"):
        Corpus.open(root)
    pd.DataFrame([{"stem": "S1_sentence01", "identity": "S1", "split": "train", "speech_rms": 0.1}]).to_csv(
        root / "clips.csv", index=False)
    c = Corpus.open(root)
    assert c.stride == 1 and c.select("train")[0].speech_rms == 0.1
    assert c.labels("S1_sentence01")["phoneme"].tolist() == list(range(6))
    assert c.vertices("S1_sentence01").shape == (6, 5023, 3)


def test_an_odd_length_capture_keeps_frames_0_2_4_at_the_model_rate(tmp_path):
    """VOCASET-style 60 fps vertices seen at 30 fps: every second frame from frame 0 (the baselines' ``[::2]``),
    so a 7-frame capture gives 4 frames, and the header-only frame count says 4 as well."""
    root = tmp_path / "c"
    (root / "vertices_npy").mkdir(parents=True)
    v = np.repeat(np.arange(7, dtype=np.float32)[:, None], 5023 * 3, axis=1)
    np.save(root / "vertices_npy" / "S1_sentence01.npy", v)
    (root / "meta.json").write_text(json.dumps({"name": "t", "kind": "vocaset", "fps": 60, "model_fps": 30,
                                                "topology": "flame", "splits": {"train": ["S1"]}}))
    pd.DataFrame([{"stem": "S1_sentence01", "identity": "S1", "split": "train"}]).to_csv(root / "clips.csv",
                                                                                         index=False)
    c = Corpus.open(root)
    assert c.vertices("S1_sentence01")[:, 0, 0].tolist() == [0, 2, 4, 6]
    assert c.n_frames("S1_sentence01") == 4 and c.n_frames("S1_sentence01", model_rate=False) == 7


def test_official_splits_include_both_ends_of_each_sentence_range(tmp_path):
    """The official protocols' sentence ranges are inclusive at both ends (VOCASET train 1-40, val/test 21-40;
    BIWI e01-e32 / e33-e36 / e37-e40): read from the file names of a processed folder."""
    from p3d.corpus import VOCASET_SPLITS

    train, val, test = (VOCASET_SPLITS[s][0] for s in ("train", "val", "test"))
    stems = {f"{train}_sentence01": "train", f"{train}_sentence40": "train", f"{train}_sentence41": None,
             f"{val}_sentence20": None, f"{val}_sentence21": "val", f"{val}_sentence40": "val",
             f"{test}_sentence21": "test", f"{test}_sentence40": "test"}
    biwi = {"F2_e01": "train", "F2_e32": "train", "F2_e33": "val", "F2_e36": "val", "F2_e37": "test",
            "F2_e40": "test", "F1_e36": None, "F1_e37": "test_b", "F1_e40": "test_b"}
    for i, names in enumerate((stems, biwi)):
        root = tmp_path / str(i)
        (root / "vertices_npy").mkdir(parents=True)
        for stem in names:
            (root / "vertices_npy" / f"{stem}.npy").touch()
        got = {c.stem: c.split for c in Corpus.open(root).clips}
        assert got == {s: split for s, split in names.items() if split is not None}


def test_open_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Corpus.open(tmp_path / "none")
    (tmp_path / "clips.csv").write_text("stem\n")  # a file of a corpus given for the corpus: named as a file
    with pytest.raises(InputError, match="a file, not a corpus folder"):
        Corpus.open(tmp_path / "clips.csv")
    (tmp_path / "clips.csv").unlink()
    with pytest.raises(InputError, match="vertices_npy"):
        Corpus.open(tmp_path)
    (tmp_path / "vertices_npy").mkdir()
    with pytest.raises(InputError, match="no VOCASET clips"):
        Corpus.open(tmp_path)


def test_corpus_root_and_fingerprint(tmp_path):
    """corpus_root: a corpus' vertices_npy/ or wav/ stands for the corpus; corpus_fingerprint: the same for a copy,
    changed by meta.json or a clip file's size, meta None without meta.json."""
    import shutil

    from tiny_corpus import write_tiny_corpus

    from p3d.corpus import corpus_fingerprint, corpus_root

    a = write_tiny_corpus(tmp_path / "a", identities={"train": 1, "test": 1}, clips_per_identity=1, seconds=0.5,
                          lip_video=False, labels=False)
    assert corpus_root(a) == corpus_root(a / "vertices_npy") == corpus_root(a / "wav") == a
    assert corpus_root(a / "labels") == a / "labels"
    first = corpus_fingerprint(a)
    assert len(first["fingerprint"]) == 16 and len(first["meta"]) == 16
    assert corpus_fingerprint(shutil.copytree(a, tmp_path / "copy")) == first
    clip = next((a / "vertices_npy").iterdir())
    np.save(clip, np.zeros((3, 90), np.float32))
    assert corpus_fingerprint(a)["fingerprint"] != first["fingerprint"] and corpus_fingerprint(a)["meta"] == first["meta"]
    (a / "meta.json").unlink()
    assert corpus_fingerprint(a)["meta"] is None


def _move_a_clip_and_correct_a_template(root):
    """A clip moved from train to test in clips.csv, and one identity's neutral template scaled (templates.pkl)."""
    import pickle

    rows = pd.read_csv(root / "clips.csv")
    rows.loc[rows.index[rows["split"] == "train"][0], "split"] = "test"
    rows.to_csv(root / "clips.csv", index=False)
    templates = pickle.loads((root / "templates.pkl").read_bytes())
    identity = next(iter(templates))
    templates[identity] = np.asarray(templates[identity]) * 1.01
    (root / "templates.pkl").write_bytes(pickle.dumps(templates))


def test_corpus_fingerprint_covers_the_templates_and_the_split(tmp_path):
    """A clip moved to another split (clips.csv) or a corrected neutral template (templates.pkl: FDD and the lip
    amplitude change) left the fingerprint as it was, so predictions and experiment caches of the corpus before
    were reused; now each file has its content hash, and fingerprint_changes names it. A record from before the
    file fields (fingerprint and meta only) still matches on those."""
    from tiny_corpus import write_tiny_corpus

    from p3d.corpus import corpus_fingerprint, fingerprint_changes

    a = write_tiny_corpus(tmp_path / "a", identities={"train": 1, "test": 1}, clips_per_identity=2, seconds=0.5,
                          lip_video=False, labels=False)
    first = corpus_fingerprint(a)
    old_record = {"fingerprint": first["fingerprint"], "meta": first["meta"]}
    _move_a_clip_and_correct_a_template(a)
    now = corpus_fingerprint(a)
    assert now["fingerprint"] == first["fingerprint"] and now["meta"] == first["meta"]  # no clip file changed
    assert now["templates"] != first["templates"] and now["clips"] != first["clips"]
    assert fingerprint_changes(first, now) == ["templates.pkl", "clips.csv"]
    assert fingerprint_changes(old_record, now) == [] and fingerprint_changes(now, now) == []
    np.save(next((a / "vertices_npy").iterdir()), np.zeros((3, 90), np.float32))
    assert fingerprint_changes(old_record, corpus_fingerprint(a)) == ["meta.json or clip files"]
    (a / "clips.csv").unlink()
    assert corpus_fingerprint(a)["clips"] is None


@pytest.mark.parametrize("fps, model_fps", [(60, 25), (25, 30), (50, 30)])
def test_a_model_rate_that_does_not_divide_the_file_rate_is_refused(tmp_path, fps, model_fps):
    """Every n-th frame of a 60 fps file is 30 or 20 fps, never 25: a stride rounded from 60 / 25 fed 30 fps
    frames to the windows as 25 fps ones, so speech window i drifted i / 150 s off its frames."""
    from tiny_corpus import write_tiny_corpus

    from p3d.windows import SpeechMeshWindows

    root = write_tiny_corpus(tmp_path / "c", fps=fps, model_fps=model_fps, identities={"train": 1},
                             clips_per_identity=1, seconds=1.0, lip_video=False)
    c = Corpus.open(root)
    with pytest.raises(InputError, match="model_fps .* does not divide"):
        c.stride
    with pytest.raises(InputError, match="does not divide"):
        SpeechMeshWindows(c, "train")


def test_a_clip_listed_twice_in_clips_csv_is_refused(tmp_path):
    """A stem in two rows of clips.csv (here train and test) was served by both splits: a held-out clip trained on."""
    from tiny_corpus import write_tiny_corpus

    root = write_tiny_corpus(tmp_path / "c", fps=30, identities={"train": 2, "test": 1}, clips_per_identity=1,
                             seconds=0.5, lip_video=False)
    df = pd.read_csv(root / "clips.csv")
    leak = df[df.split == "test"].assign(split="train")
    pd.concat([df, leak]).to_csv(root / "clips.csv", index=False)
    with pytest.raises(InputError, match=r"clip 'test00_sentence01' is listed 2 times \(splits test, train\)"):
        Corpus.open(root)


def test_frame_labels_share_the_npz_size_limit(tmp_path, monkeypatch):
    """Frame-label ``.npz`` files were read in full as topology files were: deflated zeros expanded without bound.
    They go through ``p3d.io.load_npz`` too (the limit is lowered here so that the test stays small)."""
    import p3d.io
    from p3d.viz.lip_shapes import clip_record

    root = tmp_path / "c"
    (root / "vertices_npy").mkdir(parents=True)
    (root / "labels").mkdir()
    np.save(root / "vertices_npy" / "S1_sentence01.npy", np.zeros((6, 5023 * 3), np.float32))
    np.savez_compressed(root / "labels" / "S1_sentence01.npz", phoneme=np.zeros(1 << 20, np.int16),
                        record=np.asarray("{}"))
    (root / "meta.json").write_text(json.dumps({"name": "t", "kind": "vocaset", "fps": 30, "topology": "flame",
                                                "splits": {"train": ["S1"]}}))
    pd.DataFrame([{"stem": "S1_sentence01", "identity": "S1", "split": "train"}]).to_csv(root / "clips.csv",
                                                                                           index=False)
    c = Corpus.open(root)
    monkeypatch.setattr(p3d.io, "NPZ_MAX_BYTES", 1 << 16, raising=False)
    with pytest.raises(InputError, match="S1_sentence01.npz: frame-label .npz refused.*decompression bomb"):
        c.labels("S1_sentence01")
    assert clip_record(c, c.select("train")[0]) == {}  # reads the record alone


def test_a_corpus_reads_its_clip_table_topology_labels_lip_video_and_audio_rate(tmp_path):
    """What the module docstring promises of a ``p3d data synth`` layout: clips.csv's optional columns (level,
    sentence, speech_rms) on each clip, the corpus' own topology.npz, frame labels at the model rate (every
    ``stride``-th frame) or the file rate, (T, H, W) uint8 lip crops at the vertex rate, and audio at
    ``meta["sample_rate"]``."""
    import soundfile as sf
    from tiny_corpus import write_tiny_corpus

    root = write_tiny_corpus(tmp_path / "c", fps=50, model_fps=25, identities={"train": 4, "test": 1},
                             clips_per_identity=3, seconds=0.4, levels=True)
    c = Corpus.open(root)
    table = pd.read_csv(root / "clips.csv").set_index("stem")
    assert len(c) == len(table) == 15
    for clip in c.clips:
        row = table.loc[clip.stem]
        assert (clip.level, clip.sentence) == (int(row["level"]), str(row["sentence"]))
        samples, _ = sf.read(root / "wav" / f"{clip.stem}.wav", dtype="float32")
        assert clip.speech_rms == pytest.approx(np.sqrt(np.mean(samples.astype(np.float64) ** 2)), rel=1e-3)
    assert c.identities("train") == ["train00", "train01", "train02", "train03"]
    picked = c.select("train", identities=["train02"])
    assert len(picked) == 3 and {x.identity for x in picked} == {"train02"}
    assert c.topology.n_vertices == 30 and c.topology.name == "tiny"           # topology.npz, not meta's name
    assert c.name == "tiny-lrs3"
    clip = c.select("test")[0]
    full = c.labels(clip, model_rate=False)["phoneme"]
    assert len(full) == c.n_frames(clip, model_rate=False) == 20
    np.testing.assert_array_equal(c.labels(clip)["phoneme"], full[::2])       # stride 50 / 25 = 2
    video = c.lip_video(clip)
    assert video.dtype == np.uint8 and video.ndim == 3 and len(video) == 20   # the vertex rate, not the model rate
    np.testing.assert_array_equal(video, np.load(root / "lipvideo" / f"{clip.stem}.npy"))
    meta = json.loads((root / "meta.json").read_text())
    del meta["name"]
    (root / "meta.json").write_text(json.dumps({**meta, "sample_rate": 8000}))
    c = Corpus.open(root)
    assert c.name == "c"                                                       # no name: the folder's
    samples, sr = c.audio(clip)
    assert sr == 8000 and len(samples) == pytest.approx(0.4 * 8000, abs=2)


def test_missing_or_unreadable_labels_and_lip_video_are_one_line_input_errors(tmp_path):
    """A clip without labels or lip crops, or a lip-crop file that is not a plain .npy array (garbage bytes, a
    pickled object array), is an InputError naming the file, not a traceback (nor an unpickled object)."""
    from tiny_corpus import write_tiny_corpus

    root = write_tiny_corpus(tmp_path / "c", identities={"train": 1}, clips_per_identity=2, seconds=0.3)
    c = Corpus.open(root)
    first, second = c.clips
    (root / "labels" / f"{first.stem}.npz").unlink()
    with pytest.raises(InputError, match="no frame labels"):
        c.labels(first)
    (root / "lipvideo" / f"{first.stem}.npy").unlink()
    with pytest.raises(InputError, match="no lip video"):
        c.lip_video(first)
    path = root / "lipvideo" / f"{second.stem}.npy"
    path.write_bytes(b"not an npy file")
    with pytest.raises(InputError, match="not a readable .npy array"):
        c.lip_video(second)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="not a readable .npy array"):
        c.lip_video(second)
    import pickle

    with open(root / "templates.pkl", "wb") as fh:   # templates of another mesh than the corpus' 30-vertex one
        pickle.dump({"train00": np.zeros((31, 3), np.float32)}, fh)
    with pytest.raises(InputError, match="has 31 vertices, expected 30"):
        Corpus.open(root).templates


def test_clip_table_names_that_look_like_numbers_stay_text(tmp_path):
    """clips.csv's stem and identity are names: ``007`` stays ``'007'`` (read as a number it became 7, and the
    clip's files and templates.pkl entry were not found)."""
    root = tmp_path / "c"
    (root / "vertices_npy").mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps({"name": "t", "kind": "mead", "fps": 25, "topology": "flame",
                                                "splits": {"train": ["007"]}}))
    (root / "clips.csv").write_text("stem,identity,split\n0001,007,train\n")
    c = Corpus.open(root)
    assert (c.clips[0].stem, c.clips[0].identity) == ("0001", "007")
    assert c.model_fps == 25 and c.stride == 1                    # no model_fps: models see the files' rate
    assert c.vertices_path(c.clips[0]).name == "0001.npy"


def test_corpus_root_keeps_a_wav_folder_outside_a_corpus(tmp_path):
    """Only a corpus' own vertices_npy/ or wav/ stands for the corpus: a wav/ folder of loose audio is itself."""
    from p3d.corpus import corpus_root

    (tmp_path / "loose" / "wav").mkdir(parents=True)
    assert corpus_root(tmp_path / "loose" / "wav") == tmp_path / "loose" / "wav"



@pytest.mark.parametrize("meta, csv, message", [
    ({"name": "t"}, "stem,identity,split\ns1,a,train\n", "meta.json: 'fps' (the vertex files' frame rate) is missing"),
    ({"fps": "thirty"}, "stem,identity,split\ns1,a,train\n", "'fps' (the vertex files' frame rate) is 'thirty'"),
    ({"fps": 0}, "stem,identity,split\ns1,a,train\n", "'fps' (the vertex files' frame rate) is 0; expected a number > 0"),
    ({"fps": -60}, "stem,identity,split\ns1,a,train\n", "'fps' (the vertex files' frame rate) is -60"),
    ({"fps": float("nan")}, "stem,identity,split\ns1,a,train\n", "'fps' (the vertex files' frame rate) is nan"),
    ({"fps": 60, "model_fps": 0}, "stem,identity,split\ns1,a,train\n", "'model_fps' (the models' frame rate) is 0"),
    ({"fps": 30}, "stem,split\ns1,train\n", "clips.csv: no identity column (each row needs stem, identity, split)"),
    ({"fps": 30}, "name\ns1\n", "clips.csv: no stem, identity, split column"),
], ids=["no-fps", "text-fps", "zero-fps", "negative-fps", "nan-fps", "zero-model-fps", "no-identity",
        "no-columns"])
def test_a_malformed_meta_or_clip_table_is_refused_with_one_line(tmp_path, capsys, meta, csv, message):
    """meta.json without its frame rate, or clips.csv without a column every clip needs, was opened and failed
    later with a KeyError / AttributeError traceback (exit 1); it is refused on opening, one line, exit 2."""
    from p3d.cli import main

    root = tmp_path / "c"
    (root / "vertices_npy").mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps(meta))
    (root / "clips.csv").write_text(csv)
    with pytest.raises(InputError, match=re.escape(message)):
        Corpus.open(root)
    assert main(["train", "talker", "--data", str(root), "--model", "faceformer", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message.split(": ", 1)[-1] in err[0] and "Traceback" not in err[0]
