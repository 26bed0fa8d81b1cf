"""``p3d predict``: official file names (one file per test clip and training identity), shapes, then ``p3d eval``."""
import json

import numpy as np
import pytest
import torch

from p3d.cli import main
from p3d.errors import InputError
from p3d.predict import predict_split


@pytest.fixture(scope="module")
def run(voca_short, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "ff"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "talker", "--model", "faceformer", "--train", str(voca_short), "--preset", "smoke",
                     "--steps", "2", "--out", str(out), "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_predict_names_shapes_and_eval(voca_short, run, tmp_path):
    pred = tmp_path / "pred"
    assert main(["predict", "--run", str(run), "--split", "test", "--out", str(pred), "--no-progress"]) == 0
    names = sorted(p.name for p in pred.glob("*.npy"))
    expected = sorted(f"test00_sentence{k:02d}_condition_train{c:02d}.npy" for k in (1, 2) for c in (0, 1))
    assert names == expected
    for name in names:
        arr = np.load(pred / name, allow_pickle=False)
        gt = np.load(voca_short / "vertices_npy" / (name.split("_condition_")[0] + ".npy"))
        assert arr.dtype == np.float32 and arr.shape == (gt.shape[0] // 2, 30, 3)
    ev = tmp_path / "eval"
    assert main(["eval", "--pred", str(pred), "--gt", str(voca_short), "--audio", str(voca_short), "--fps", "30",
                 "--gt-fps", "60", "--topology", str(voca_short / "topology.npz"), "--metrics", "lve,mtm",
                 "--out", str(ev), "--no-progress"]) == 0
    summary = json.loads((ev / "summary.json").read_text())
    assert summary["counts"]["evaluated"] == 4 and summary["counts"]["skipped"] == 0


def test_predict_without_vertices_uses_audio_length(voca_short, run, tmp_path):
    import shutil

    data = tmp_path / "copy"
    shutil.copytree(voca_short, data)
    stem = "test00_sentence01"
    (data / "vertices_npy" / f"{stem}.npy").unlink()
    files = predict_split(run, tmp_path / "p", data=[data], progress=False)
    arr = np.load(tmp_path / "p" / f"{stem}_condition_train00.npy")
    assert len(files) == 4 and arr.shape == (18, 30, 3)  # floor(0.6 s * 30 fps)


def test_frames_audio_without_wav2vec2_is_refused_before_anything_is_written(run, tmp_path, capsys):
    """--frames audio (the official frame count, from wav2vec2's CNN features) on a talker without wav2vec2 was
    refused only after OUT/predictions.json was written (a record of predictions never made); now before any output,
    one line, exit 2."""
    pred = tmp_path / "pred"
    assert main(["predict", "--run", str(run), "--frames", "audio", "--out", str(pred), "--no-progress"]) == 2
    assert "--frames audio" in capsys.readouterr().err and not pred.exists()
    pred.mkdir()  # an existing folder is left as it was
    assert main(["predict", "--run", str(run), "--frames", "audio", "--out", str(pred), "--no-progress"]) == 2
    assert list(pred.iterdir()) == []


def test_predict_resumes_and_checks(voca_short, run, tmp_path):
    out = tmp_path / "p"
    predict_split(run, out, progress=False)
    target = out / "test00_sentence01_condition_train00.npy"
    mtime = target.stat().st_mtime_ns
    predict_split(run, out, progress=False)
    assert target.stat().st_mtime_ns == mtime  # kept
    with pytest.raises(InputError, match="config.json"):
        predict_split(tmp_path, out, progress=False)
    with pytest.raises(InputError, match="val"):
        predict_split(run, out, split="val", data=[voca_short], progress=False)


def test_predict_official_faceformer_checkpoint(voca_short, tmp_path):
    """``p3d predict --checkpoint vocaset.pth --model faceformer``: an official-layout FaceFormer file (tiny
    sizes) predicts every test sentence once per official training subject, length from the audio."""
    from test_baseline_checkpoints import faceformer_state_dict

    from p3d.models.official_baselines import VOCASET_TRAIN_SUBJECTS

    ckpt = tmp_path / "vocaset.pth"
    torch.save(faceformer_state_dict(), ckpt)
    pred = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(ckpt), "--model", "faceformer", "--data", str(voca_short),
                 "--out", str(pred), "--device", "cpu", "--no-progress"]) == 0
    names = sorted(p.name for p in pred.glob("*.npy"))
    assert names == sorted(f"test00_sentence{k:02d}_condition_{s}.npy" for k in (1, 2) for s in VOCASET_TRAIN_SUBJECTS)
    arr = np.load(pred / names[0], allow_pickle=False)
    assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[1:] == (30, 3) and 15 <= arr.shape[0] <= 18
    other = np.load(pred / names[1], allow_pickle=False)
    assert not np.allclose(arr, other)  # another style condition, another prediction
    # wrong model name, missing --data, --styles of the wrong length: one-line errors (exit 2)
    assert main(["predict", "--checkpoint", str(ckpt), "--model", "selftalk", "--data", str(voca_short),
                 "--out", str(pred)]) == 2
    assert main(["predict", "--checkpoint", str(ckpt), "--out", str(pred)]) == 2
    assert main(["predict", "--checkpoint", str(ckpt), "--data", str(voca_short), "--styles", "a,b", "--out",
                 str(pred)]) == 2
    assert main(["predict", "--run", str(tmp_path), "--model", "faceformer", "--out", str(pred)]) == 2


def test_predict_batch_size_same_files_and_resume(voca, run, tmp_path):
    """--batch-size 3 (batched passes, a batch of 3 and one of 1) writes the files of --batch-size 1 (one predict
    call each), to float32 rounding; a re-run predicts only the missing file; a bad size is a one-line error."""
    one = predict_split(run, tmp_path / "one", batch_size=1, progress=False)
    many = predict_split(run, tmp_path / "many", batch_size=3, progress=False)
    assert [p.name for p in one] == [p.name for p in many] and len(one) == 4
    for a, b in zip(one, many):
        x, y = np.load(a, allow_pickle=False), np.load(b, allow_pickle=False)
        assert x.dtype == y.dtype == np.float32 and x.shape == y.shape
        assert np.abs(x - x[:1]).max() > 1e-6  # the frames move: the comparison can fail
        np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-9)
    many[1].unlink()
    mtimes = {p: p.stat().st_mtime_ns for p in many if p.exists()}
    predict_split(run, tmp_path / "many", batch_size=3, progress=False)
    assert many[1].exists() and all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    with pytest.raises(InputError, match="--batch-size"):
        predict_split(run, tmp_path / "bad", batch_size=0, progress=False)
    assert main(["predict", "--run", str(run), "--out", str(tmp_path / "bad"), "--batch-size", "0"]) == 2


def test_each_file_is_its_clips_prediction_under_its_named_condition(voca, run, tmp_path):
    """``<clip>_condition_<identity>.npy`` holds the model's prediction from the clip's audio and its own speaker's
    template, conditioned on the named training identity, for the clip's ground-truth frame count."""
    from p3d.corpus import Corpus
    from p3d.io import load_audio
    from p3d.models import load_model
    from p3d.talker_data import AUDIO_RATE

    corpus = Corpus.open(voca)
    styles = json.loads((run / "config.json").read_text())["styles"]
    model = load_model(run / "final.pt").eval()
    files = predict_split(run, tmp_path / "p", data=[voca], batch_size=3, progress=False)
    assert len({t.tobytes() for t in corpus.templates.values()}) == len(corpus.templates) > 2
    for path in files:
        stem, condition = path.stem.split("_condition_")
        clip = next(c for c in corpus.clips if c.stem == stem)
        audio = torch.from_numpy(load_audio(corpus.wav_path(clip), sr=AUDIO_RATE)[0])
        template = torch.from_numpy(np.asarray(corpus.templates[clip.identity], dtype=np.float32))
        expected = model.predict(audio, template, styles.index(condition), corpus.n_frames(clip)).numpy()
        np.testing.assert_allclose(np.load(path, allow_pickle=False), expected, rtol=1e-5, atol=1e-7)
    a, b = (np.load(p, allow_pickle=False) for p in files[:2])
    assert np.abs(a - b).max() > 1e-6  # two conditions of one clip differ: the check can fail


def test_rotating_conditions_spread_the_styles():
    from p3d.predict import rotating_conditions

    assert rotating_conditions(5, [0, 2, 3], 1) == [[0], [2], [3], [0], [2]]
    assert rotating_conditions(3, [0, 1, 2, 3], 2) == [[0, 1], [2, 3], [0, 1]]
    for bad in (0, 4, True, 1.5):
        with pytest.raises(InputError, match="conditions-per-clip"):
            rotating_conditions(2, [0, 1, 2], bad)


def test_predict_one_condition_per_clip_is_the_full_protocols_file(voca, run, tmp_path):
    """Each clip under one training identity, rotating: the same file (bytes) as the every-identity protocol
    writes for that (clip, identity), and a bad count is refused before any prediction (exit 2)."""
    full, one = tmp_path / "all", tmp_path / "one"
    assert main(["predict", "--run", str(run), "--split", "test", "--out", str(full), "--no-progress",
                 "--batch-size", "1"]) == 0
    assert main(["predict", "--run", str(run), "--split", "test", "--out", str(one), "--no-progress",
                 "--batch-size", "1", "--conditions-per-clip", "1"]) == 0
    names = sorted(p.name for p in one.glob("*.npy"))
    assert names == ["test00_sentence01_condition_train00.npy", "test00_sentence02_condition_train01.npy"]
    for name in names:
        assert (one / name).read_bytes() == (full / name).read_bytes()
    assert main(["predict", "--run", str(run), "--split", "test", "--out", str(tmp_path / "bad"), "--no-progress",
                 "--conditions-per-clip", "3"]) == 2
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_conditions_per_clip_rotate_over_the_first_training_corpus_only(voca_short, tmp_path):
    """A run trained on two corpora (Config 2) predicts each clip under identities of its first corpus only, as the
    runs it is paired with (those trained on that corpus alone) do: the same files in every arm."""
    from tiny_corpus import prefix_identities, write_tiny_corpus

    mead = write_tiny_corpus(tmp_path / "mead", kind="mead", fps=30, identities={"train": 2, "test": 1},
                             clips_per_identity=2, seconds=0.6, lip_video=False, seed=2)
    prefix_identities(mead, "m", clips=True)
    run = tmp_path / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "talker", "--model", "faceformer", "--train", f"{voca_short},{mead}", "--preset",
                     "smoke", "--steps", "1", "--out", str(run), "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    styles = json.loads((run / "config.json").read_text())["styles"]
    assert sorted(styles) == ["mtrain00", "mtrain01", "train00", "train01"]
    files = predict_split(run, tmp_path / "p", data=[voca_short], conditions_per_clip=1, progress=False)
    assert [p.name for p in files] == ["test00_sentence01_condition_train00.npy",
                                       "test00_sentence02_condition_train01.npy"]


def test_a_folder_of_other_predictions_is_refused_not_mixed(voca_short, run, tmp_path, monkeypatch):
    """predictions.json records the checkpoint and settings: predictions of another checkpoint are refused (kept
    files would have been evaluated as the new model's), --overwrite recomputes and re-records them, files the
    new set would not write are refused even with --overwrite, and an interrupted overwrite leaves no record."""
    import shutil

    out = tmp_path / "p"
    first = predict_split(run, out, progress=False)
    source = json.loads((out / "predictions.json").read_text())["source"]
    assert source["split"] == "test" and len(source["checkpoint_sha256"]) == 64 and source["frames"] == "gt"
    other = tmp_path / "other"  # the same run trained one step longer: another checkpoint
    shutil.copytree(run, other)
    assert main(["train", "talker", "--model", "faceformer", "--train", str(voca_short), "--preset", "smoke",
                 "--steps", "3", "--out", str(other), "--no-progress"]) == 0
    before = {p: p.read_bytes() for p in first}
    with pytest.raises(InputError, match=r"another model or settings \(checkpoint_sha256 differ\)"):
        predict_split(other, out, progress=False)
    assert {p: p.read_bytes() for p in first} == before
    assert main(["predict", "--run", str(other), "--out", str(out), "--no-progress"]) == 2
    predict_split(other, out, progress=False, overwrite=True)
    assert any(p.read_bytes() != before[p] for p in first)
    assert json.loads((out / "predictions.json").read_text())["source"]["checkpoint_sha256"] != \
        source["checkpoint_sha256"]
    predict_split(other, out, progress=False)  # the same model again: resumed, nothing refused
    with pytest.raises(InputError, match="would not write"):
        predict_split(other, out, progress=False, conditions_per_clip=1, overwrite=True)
    (out / "predictions.json").unlink()
    with pytest.raises(InputError, match="without a record"):
        predict_split(other, out, progress=False)

    predict_split(other, out, progress=False, overwrite=True)
    assert (out / "predictions.json").is_file()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("p3d.atomic.save_npy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        predict_split(run, out, progress=False, overwrite=True)
    assert not (out / "predictions.json").exists()


@pytest.mark.parametrize("under", [False, True])
def test_an_out_that_is_a_file_is_one_line(run, tmp_path, capsys, under):
    """Was a FileExistsError / NotADirectoryError traceback."""
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "pred" if under else tmp_path / "afile"
    assert main(["predict", "--run", str(run), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"p3d predict: error: --out {out}: ")


def test_predictions_of_another_prediction_version_are_refused(voca_short, run, tmp_path, monkeypatch):
    """Predictions written before a change to what a checkpoint predicts (PREDICTION_VERSION raised) were kept as the
    checkpoint's; they are refused (``--overwrite`` recomputes them); a record without a version is version 1."""
    import p3d.predict

    pred = tmp_path / "pred"
    version = p3d.predict.PREDICTION_VERSION
    assert version >= 2
    predict_split(run, pred, data=[voca_short], progress=False)
    record = json.loads((pred / "predictions.json").read_text())
    assert record["source"]["prediction_version"] == version
    del record["source"]["prediction_version"]
    (pred / "predictions.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match="prediction_version differ"):  # a record from before the version: 1
        predict_split(run, pred, data=[voca_short], progress=False)
    monkeypatch.setattr(p3d.predict, "PREDICTION_VERSION", 1)
    predict_split(run, pred, data=[voca_short], progress=False)  # ... kept where the code is at version 1
    monkeypatch.setattr(p3d.predict, "PREDICTION_VERSION", version)
    with pytest.raises(InputError, match="prediction_version differ"):
        predict_split(run, pred, data=[voca_short], progress=False)
    predict_split(run, pred, data=[voca_short], progress=False, overwrite=True)
    assert json.loads((pred / "predictions.json").read_text())["source"]["prediction_version"] == version


def test_a_regenerated_corpus_is_refused_by_predict_and_eval(voca_short, run, tmp_path, capsys):
    """A corpus regenerated at the same path (another seed: the same clip names and lengths, so every length check
    passes) is not the one the predictions were made from: p3d predict refuses to keep them, p3d eval to score them
    against it (was silent: each prediction compared with another clip of its name); --overwrite predicts again."""
    import shutil

    from tiny_corpus import write_tiny_corpus

    data = tmp_path / "data"
    shutil.copytree(voca_short, data)
    pred = tmp_path / "pred"
    predict_split(run, pred, data=[data], progress=False)
    record = json.loads((pred / "predictions.json").read_text())
    assert list(record["corpora"]) == [str(data.resolve())]
    ev = ["eval", "--pred", str(pred), "--gt", str(data), "--audio", str(data), "--fps", "30", "--gt-fps", "60",
          "--topology", str(data / "topology.npz"), "--metrics", "lve", "--no-progress", "--out"]
    assert main([*ev, str(tmp_path / "ev0")]) == 0
    config = json.loads((tmp_path / "ev0" / "summary.json").read_text())["config"]
    for check in (config["gt_check"], config["audio_check"]):
        assert check.startswith("the corpus the predictions were made from")

    assert config["templates_check"] == "no --templates"
    orig = tmp_path / "orig"
    shutil.copytree(data, orig)
    shutil.rmtree(data)
    write_tiny_corpus(data, kind="vocaset", fps=60, model_fps=30, identities={"train": 2, "test": 1},
                      clips_per_identity=2, seconds=0.6, lip_video=False, seed=1)
    assert sorted(p.name for p in (data / "vertices_npy").iterdir()) == \
        sorted(p.name for p in (voca_short / "vertices_npy").iterdir())
    with pytest.raises(InputError, match="before it was regenerated or replaced"):
        predict_split(run, pred, data=[data], progress=False)
    capsys.readouterr()
    assert main([*ev, str(tmp_path / "ev1")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was regenerated or replaced since the predictions" in err[0]
    assert not (tmp_path / "ev1").exists()
    # the GT a copy of the corpus predicted, the neutral faces from the regenerated one: FDD would measure motion
    # from other faces (was not checked)
    ev_orig = [a if a != str(data) else str(orig) for a in ev[:-1]]
    fdd = [*ev_orig[:ev_orig.index("--metrics") + 1], "lve,fdd", "--no-progress", "--out"]
    assert main([*fdd, str(tmp_path / "ev3"), "--templates", str(orig / "templates.pkl")]) == 0
    config = json.loads((tmp_path / "ev3" / "summary.json").read_text())["config"]
    assert config["templates_check"].startswith("a copy of the corpus the predictions were made from")
    capsys.readouterr()
    assert main([*fdd, str(tmp_path / "ev4"), "--templates", str(data / "templates.pkl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"p3d eval: error: --templates {data}: the corpus was regenerated")
    predict_split(run, pred, data=[data], progress=False, overwrite=True)
    assert main([*ev, str(tmp_path / "ev2")]) == 0


def test_a_run_predicts_with_the_model_its_checkpoint_records_under_other_defaults(run, tmp_path, change_default):
    """``p3d predict --run`` (like every load of a p3d checkpoint: load_model, load_critic) rebuilds the model from
    the config its checkpoint records, every field of it, not from today's defaults: a default changed since the run
    trained (FaceFormer's decoder layers and feed-forward width, which the smoke preset leaves at their defaults)
    changes neither the model nor its predictions."""
    from p3d.models import load_model
    from p3d.models.faceformer import FaceFormerConfig

    args = ["predict", "--run", str(run), "--split", "test", "--no-progress", "--out"]
    assert main([*args, str(tmp_path / "before")]) == 0
    change_default(FaceFormerConfig, "layers", 2)
    change_default(FaceFormerConfig, "ff_mult", 4)
    assert (FaceFormerConfig.from_preset("smoke").layers, FaceFormerConfig().ff_mult) == (2, 4)
    model = load_model(run / "final.pt")
    assert (model.config.layers, model.config.ff_mult) == (1, 2)
    assert main([*args, str(tmp_path / "after")]) == 0
    names = sorted(p.name for p in (tmp_path / "before").glob("*.npy"))
    assert names and names == sorted(p.name for p in (tmp_path / "after").glob("*.npy"))
    for name in names:
        assert (tmp_path / "before" / name).read_bytes() == (tmp_path / "after" / name).read_bytes(), name


def test_a_huge_thread_count_is_one_line_exit_2(tmp_path):
    """--threads 100000 went to torch.set_num_threads, which crashed the process (pthread_create failed, then a
    segmentation fault) before anything was checked. Run in a subprocess: the crash kills it."""
    import subprocess
    import sys

    out = tmp_path / "pred"
    proc = subprocess.run([sys.executable, "-m", "p3d", "predict", "--run", str(tmp_path / "run"), "--out", str(out),
                           "--threads", "100000", "--no-progress"], capture_output=True, text=True, timeout=300)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-500:])
    assert len(err) == 1 and err[0].startswith("p3d predict: error: --threads: expected a thread count in 1.."), err
    assert not out.exists()


def test_a_killed_runs_temporary_file_does_not_block_the_rerun(run, tmp_path):
    """A run killed while writing a file leaves its atomic temporary (``.<name>.npy.tmp-XXXX.npy``): the rerun
    refused the folder as holding a .npy file of 'another split, corpus or --conditions-per-clip', --overwrite too,
    so a killed prediction could never be resumed in place. It resumes, and the temporary is not a prediction."""
    out = tmp_path / "p"
    files = predict_split(run, out, progress=False)
    files[-1].unlink()  # killed while writing the last one
    (out / f".{files[-1].name}.tmp-k1ll3d.npy").write_bytes(b"\x93NUMPY partial")
    assert [p.name for p in predict_split(run, out, progress=False)] == [p.name for p in files]
    assert files[-1].is_file()
    predict_split(run, out, progress=False, overwrite=True)


def test_two_corpora_holding_the_same_clip_name_are_refused_not_overwritten(voca_short, run, tmp_path, capsys):
    """``--data A,B`` where both corpora hold a clip ``test00_sentence01`` (e.g. two tiny or synthetic corpora): the
    second corpus's prediction overwrote the first's file, so --out held half as many files as reported (8
    predictions, 4 files) and p3d eval scored B's predictions against A's ground truth. Refused before any
    prediction; a corpus given twice too."""
    import shutil

    other = tmp_path / "other"
    shutil.copytree(voca_short, other)
    out = tmp_path / "p"
    for data in ([voca_short, other], [voca_short, voca_short]):
        with pytest.raises(InputError, match="test00_sentence01"):
            predict_split(run, out, data=data, progress=False)
        assert not list(out.glob("*.npy"))
    assert main(["predict", "--run", str(run), "--data", f"{voca_short},{other}", "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "both hold clip test00_sentence01" in err[0]


@pytest.mark.parametrize("styles", ["A,A,B,C,D,E,F,G", "A/x,B,C,D,E,F,G,H"])
def test_official_styles_that_would_share_or_leave_the_files_are_refused(voca_short, tmp_path, capsys, styles):
    """``--styles A,A,...``: both conditions were written to ``<clip>_condition_A.npy`` (the second overwrote the
    first: 16 predictions reported, 14 files, 'A' holding the second condition's); ``A/x`` wrote into
    ``<clip>_condition_A/`` folders. Refused in one line before any prediction."""
    from test_baseline_checkpoints import faceformer_state_dict

    ckpt = tmp_path / "vocaset.pth"
    torch.save(faceformer_state_dict(), ckpt)
    pred = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(ckpt), "--model", "faceformer", "--data", str(voca_short),
                 "--styles", styles, "--out", str(pred), "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("p3d predict: error: --styles: give each")
    assert not pred.exists() or not any(pred.iterdir())



@pytest.mark.parametrize("option", ["--data", "--styles"])
@pytest.mark.parametrize("value", [",", "", " , "])
def test_an_explicitly_empty_list_is_refused(voca_short, run, tmp_path, capsys, option, value):
    """``--run R --data ,`` (or ``--data ""``) silently predicted the run's training corpora and ``--checkpoint C
    --styles ,`` named the official training subjects: an empty list given on purpose is a mistake (leave the
    option out for the default). One line, exit 2, nothing written; predict_split(data=[]) and
    predict_official(styles=[]) are refused too."""
    from test_baseline_checkpoints import faceformer_state_dict

    out = tmp_path / "p"
    if option == "--data":
        argv = ["predict", "--run", str(run), option, value]
    else:
        torch.save(faceformer_state_dict(), tmp_path / "vocaset.pth")
        argv = ["predict", "--checkpoint", str(tmp_path / "vocaset.pth"), "--model", "faceformer", "--data",
                str(voca_short), "--device", "cpu", option, value]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"p3d predict: error: {option} {value!r}: an empty list")
    assert not out.exists() or not any(out.iterdir())
    if option == "--data":
        with pytest.raises(InputError, match="^--data: an empty list"):
            predict_split(run, out, data=[], progress=False)
    else:
        from p3d.predict import predict_official

        with pytest.raises(InputError, match="^--styles: an empty list"):
            predict_official(tmp_path / "vocaset.pth", out, [voca_short], model="faceformer", styles=[],
                             device="cpu", progress=False)
    assert not out.exists() or not any(out.iterdir())


def test_an_official_codetalker_stage1_file_alone_is_refused(voca_short, tmp_path, capsys):
    """``p3d predict --checkpoint vocaset_stage1.pth.tar``: the stage-1 file holds the VQ-VAE only; it was loaded
    with a randomly initialised wav2vec2 and decoder and predicted 16 files of noise-driven motion without a word.
    Now a one-line error naming the stage-2 file; with the stage-2 file, --stage1 still replaces its VQ-VAE."""
    from test_baseline_checkpoints import codetalker_stage1_state_dict, codetalker_stage2_state_dict

    torch.save({"state_dict": codetalker_stage1_state_dict(), "epoch": 200}, tmp_path / "vocaset_stage1.pth.tar")
    pred = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(tmp_path / "vocaset_stage1.pth.tar"), "--data", str(voca_short),
                 "--out", str(pred), "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a CodeTalker stage-1 file" in err and "stage-2 file" in err, err
    assert not list(pred.glob("*.npy")) if pred.exists() else True
    torch.save({"state_dict": codetalker_stage2_state_dict(), "epoch": 100}, tmp_path / "vocaset_stage2.pth.tar")
    assert main(["predict", "--checkpoint", str(tmp_path / "vocaset_stage2.pth.tar"), "--stage1",
                 str(tmp_path / "vocaset_stage1.pth.tar"), "--data", str(voca_short), "--out", str(pred),
                 "--device", "cpu", "--no-progress"]) == 0
    assert len(list(pred.glob("*.npy"))) == 16


def test_the_record_names_the_content_hash_of_codetalkers_stage1_file(voca_short, tmp_path, capsys):
    """predictions.json of an official CodeTalker checkpoint with --stage1 (its VQ-VAE replaced) records the SHA-256 of
    the stage-1 file's bytes beside the stage-2 file's, so kept predictions of another stage 1 are refused, not
    mixed."""
    import hashlib

    from test_baseline_checkpoints import codetalker_stage1_state_dict, codetalker_stage2_state_dict

    from p3d.io import PREDICTIONS_RECORD

    stage1, stage2 = tmp_path / "vocaset_stage1.pth.tar", tmp_path / "vocaset_stage2.pth.tar"
    torch.save({"state_dict": codetalker_stage1_state_dict(), "epoch": 200}, stage1)
    torch.save({"state_dict": codetalker_stage2_state_dict(), "epoch": 100}, stage2)
    pred = tmp_path / "pred"
    args = ["predict", "--checkpoint", str(stage2), "--data", str(voca_short), "--out", str(pred), "--device", "cpu",
            "--no-progress"]
    assert main([*args, "--stage1", str(stage1)]) == 0
    source = json.loads((pred / PREDICTIONS_RECORD).read_text())["source"]
    assert source["stage1_sha256"] == hashlib.sha256(stage1.read_bytes()).hexdigest()
    assert source["checkpoint_sha256"] == hashlib.sha256(stage2.read_bytes()).hexdigest()
    torch.save({"state_dict": codetalker_stage1_state_dict(), "epoch": 201}, stage1)  # another stage-1 file
    capsys.readouterr()
    assert main([*args, "--stage1", str(stage1)]) == 2
    assert "stage1_sha256" in capsys.readouterr().err


def test_kept_predictions_of_a_corpus_whose_templates_or_split_changed_are_refused(tmp_path):
    """check_prediction_folder kept predictions made before a clip moved to another split or a template was
    corrected (each prediction starts from its speaker's template); a record from before the file fields is
    still accepted on the clips' fingerprint."""
    from test_corpus import _move_a_clip_and_correct_a_template
    from tiny_corpus import write_tiny_corpus

    from p3d.corpus import corpus_fingerprint
    from p3d.predict import check_prediction_folder

    a = write_tiny_corpus(tmp_path / "a", identities={"train": 1, "test": 1}, clips_per_identity=2, seconds=0.5,
                          lip_video=False, labels=False)
    key, fp = str(a.resolve()), corpus_fingerprint(a)
    out = tmp_path / "pred"
    out.mkdir()
    np.save(out / "x.npy", np.zeros((2, 3), np.float32))
    _move_a_clip_and_correct_a_template(a)
    now = {key: corpus_fingerprint(a)}
    (out / "predictions.json").write_text(json.dumps({"source": {}, "corpora": {key: fp}}))
    with pytest.raises(InputError, match="before it was regenerated or replaced .*templates.pkl, clips.csv differ"):
        check_prediction_folder(out, ["x.npy"], {}, False, now)
    old = {"fingerprint": fp["fingerprint"], "meta": fp["meta"]}
    (out / "predictions.json").write_text(json.dumps({"source": {}, "corpora": {key: old}}))
    check_prediction_folder(out, ["x.npy"], {}, False, now)


def test_frame_count_without_vertices_is_the_floor_of_duration_times_fps(tmp_path):
    """Without GT vertices a clip gets ``floor(audio duration * fps)`` frames (at least 1), truncated, never rounded:
    checked at lengths where rounding would give one frame more."""
    import math
    from types import SimpleNamespace

    from p3d.predict import n_frames_of

    corpus = SimpleNamespace(model_fps=30.0, vertices_path=lambda clip: tmp_path / "absent.npy")
    rounded_up = 0
    for n_samples in range(9600, 12801, 50):
        expected = math.floor(n_samples / 16000 * 30)
        assert n_frames_of(corpus, None, n_samples, 16000) == expected
        rounded_up += round(n_samples / 16000 * 30) != expected
    assert rounded_up > 0  # the check can fail
    assert n_frames_of(corpus, None, 100, 16000) == 1  # under one frame's duration: still one frame


def _voca_like(root, **kwargs):
    """A tiny VOCASET-layout corpus as ``voca_short``'s (60 fps capture, 30 fps model, 30 vertices), changed by
    ``kwargs``."""
    from tiny_corpus import write_tiny_corpus

    return write_tiny_corpus(root, **{"kind": "vocaset", "fps": 60, "model_fps": 30, "identities": {"test": 1},
                                      "clips_per_identity": 1, "seconds": 0.6, "lip_video": False, **kwargs})


def test_corpora_the_model_cannot_predict_are_refused_before_any_file(run, tmp_path, capsys):
    """The module docstring's refusals of ``--data``: a corpus of another vertex count or model frame rate than the
    run's model, and an explicit ``--data`` corpus without the split (the run's own corpora that lack it are
    skipped instead); each one line, exit 2, before anything is written."""
    cases = {
        "vertices": ([_voca_like(tmp_path / "v40", n_vertices=40, prefix="v")], "40 vertices per frame, the model "
                                                                                 "predicts 30"),
        "fps": ([_voca_like(tmp_path / "fps25", fps=50, model_fps=25, prefix="f")], "model frame rate 25 fps, the "
                                                                                      "run runs at 30 fps"),
        "split": ([_voca_like(tmp_path / "t", prefix="t"), _voca_like(tmp_path / "trainonly", identities={"train": 1},
                                                                      prefix="o")], "no clips in split 'test'"),
    }
    for name, (roots, message) in cases.items():
        out = tmp_path / f"pred_{name}"
        capsys.readouterr()
        assert main(["predict", "--run", str(run), "--data", ",".join(map(str, roots)), "--out", str(out),
                     "--no-progress"]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (name, err)
        assert name != "split" or str(roots[1]) in err[0]  # the corpus that lacks the split is named
        assert not out.exists() or not any(out.iterdir()), name


def test_a_run_folder_without_final_pt_or_styles_is_refused(run, tmp_path, capsys):
    """``--run`` must be a finished ``p3d train talker`` run: a folder whose training has not finished (no
    final.pt), or whose config.json records no style identities or other ones than final.pt's, is refused in one
    line, exit 2."""
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_bytes((run / "config.json").read_bytes())
    no_styles = tmp_path / "no_styles"
    no_styles.mkdir()
    (no_styles / "final.pt").write_bytes((run / "final.pt").read_bytes())
    cfg = json.loads((run / "config.json").read_text())
    del cfg["styles"]
    (no_styles / "config.json").write_text(json.dumps(cfg))
    one_style = tmp_path / "one_style"  # config.json lists fewer styles than final.pt conditions on
    one_style.mkdir()
    (one_style / "final.pt").write_bytes((run / "final.pt").read_bytes())
    (one_style / "config.json").write_text(json.dumps({**cfg, "styles": ["train00"]}))
    for folder, message in ((unfinished, "no final.pt"), (no_styles, "not a talker run"),
                            (one_style, "final.pt has 2 styles, config.json lists 1")):
        capsys.readouterr()
        assert main(["predict", "--run", str(folder), "--out", str(tmp_path / "pred"), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "pred").exists()


@pytest.mark.parametrize("bad", [0, -2, True, 2.0, "4", None])
def test_batch_size_is_a_positive_whole_number_of_predictions(bad):
    """``--batch-size`` (``batch_size=`` from Python): a positive int; a bool is not a count (True is no batch of 1)."""
    from p3d.predict import check_batch_size

    assert check_batch_size(1) == 1 and check_batch_size(np.int64(3)) == 3
    with pytest.raises(InputError, match="--batch-size: expected a positive number"):
        check_batch_size(bad)


@pytest.mark.parametrize("damage", ["wav", "template"])
def test_a_clip_without_audio_or_template_is_refused_before_any_prediction(voca_short, run, tmp_path, damage):
    """Every clip is checked before the first prediction (``_write_predictions``): a clip whose wav file is missing,
    or whose identity has no template in templates.pkl, is refused naming it, and no prediction is written."""
    import pickle
    import shutil

    data = tmp_path / "copy"
    shutil.copytree(voca_short, data)
    if damage == "wav":
        (data / "wav" / "test00_sentence02.wav").unlink()
        message = "audio file missing for clip test00_sentence02"
    else:
        templates = pickle.loads((data / "templates.pkl").read_bytes())
        del templates["test00"]
        (data / "templates.pkl").write_bytes(pickle.dumps(templates))
        message = "no template for identity 'test00'"
    with pytest.raises(InputError, match=message):
        predict_split(run, tmp_path / "pred", data=[data], progress=False)
    assert not list((tmp_path / "pred").glob("*.npy"))


def test_official_styles_of_another_count_than_the_checkpoints_are_refused(voca_short, tmp_path, capsys):
    """``--styles`` names the checkpoint's style conditions in order: 7 names for the 8 of the VOCASET FaceFormer
    are refused in one line (count given and expected) before any prediction."""
    from test_baseline_checkpoints import faceformer_state_dict

    ckpt = tmp_path / "vocaset.pth"
    torch.save(faceformer_state_dict(), ckpt)
    pred = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(ckpt), "--model", "faceformer", "--data", str(voca_short),
                 "--styles", "A,B,C,D,E,F,G", "--out", str(pred), "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 8 style conditions" in err[0] and "got 7" in err[0], err
    assert not pred.exists() or not any(pred.iterdir())


@pytest.mark.parametrize("source, option", [(["--checkpoint", "vocaset.pth", "--conditions-per-clip", "1"],
                                             "--conditions-per-clip goes with --run"),
                                            (["--run", "RUN", "--styles", "A,B"], "go with --checkpoint")])
def test_options_of_the_other_source_are_refused_first(tmp_path, capsys, source, option):
    """``--conditions-per-clip`` is for a p3d run (``--run``), ``--model/--dataset/--styles/--stage1`` for an official
    checkpoint: given with the other source, one line, exit 2, before the checkpoint or run is read."""
    assert main(["predict", *source, "--out", str(tmp_path / "pred"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option in err[0], err
