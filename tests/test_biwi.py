"""The processed BIWI layout (CodeTalker's ``BIWI/``): recognised as a corpus (official splits, 25 fps, 23 370
vertices, ``regions/``), trained at the paper preset, predicted and evaluated (LVE / FDD on its regions)."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from p3d.cli import main
from p3d.corpus import BIWI_SPLITS, Corpus
from p3d.errors import InputError
from p3d.models import load_model
from p3d.talker_data import TalkerClips
from p3d.train.talker import PAPER_BIWI_SETTINGS, build
from release_fixtures import (BIWI_LIPS, BIWI_UPPER, official_critic_checkpoint, tiny_wav2vec2,
                              write_processed_biwi)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test

CLIPS = [("F2", 1, 1.2), ("M3", 2, 1.0), ("F2", 33, 1.0), ("F2", 37, 1.0), ("M3", 38, 0.8), ("F1", 37, 1.0),
         ("F2", 41, 1.0), ("X9", 1, 1.0)]  # e41 and X9 are outside the protocol


@pytest.fixture(scope="module")
def biwi(tmp_path_factory):
    return write_processed_biwi(tmp_path_factory.mktemp("biwi") / "BIWI", CLIPS)


def test_biwi_corpus_official_splits(biwi):
    c = Corpus.open(biwi)
    assert c.meta["kind"] == "biwi" and c.fps == c.model_fps == 25 and c.stride == 1
    assert {split: [x.stem for x in c.select(split)] for split in ("train", "val", "test", "test_b")} == {
        "train": ["F2_e01", "M3_e02"], "val": ["F2_e33"], "test": ["F2_e37", "M3_e38"], "test_b": ["F1_e37"]}
    assert c.identities("train") == ["F2", "M3"] and set(BIWI_SPLITS["test_b"]).isdisjoint(BIWI_SPLITS["train"])
    topo = c.topology
    assert topo.name == "biwi" and topo.n_vertices == 23370
    np.testing.assert_array_equal(topo.lips, BIWI_LIPS)
    np.testing.assert_array_equal(topo.upper_face, BIWI_UPPER)
    assert c.vertices("F2_e01").shape == (30, 23370, 3)
    samples, sr = c.audio("F2_e01")
    assert sr == 16000 and samples.shape == (19200,)
    samples, sr = c.speech_audio("F2_e01")  # the file's own samples, for the critic's front-end
    assert sr == 44100 and samples.shape == (52920,)
    assert c.templates["F2"].shape == (23370, 3)


def test_biwi_protocol_is_the_official_one():
    """FaceFormer / CodeTalker data_loader.py (paper-digest.md, anchors.md): train / val / Test-A are F2 F3 F4 M3 M4 M5
    on e01-e32 / e33-e36 / e37-e40, Test-B the eight unseen subjects F1 F5 F6 F7 F8 M1 M2 M6 on e37-e40."""
    from p3d.corpus import BIWI_SENTENCES

    seen, unseen = "F2 F3 F4 M3 M4 M5".split(), "F1 F5 F6 F7 F8 M1 M2 M6".split()
    assert {k: sorted(v) for k, v in BIWI_SPLITS.items()} == {"train": seen, "val": seen, "test": seen,
                                                             "test_b": unseen}
    assert BIWI_SENTENCES == {"train": (1, 32), "val": (33, 36), "test": (37, 40), "test_b": (37, 40)}


def test_biwi_without_regions_and_vocaset_names_first(tmp_path):
    root = write_processed_biwi(tmp_path / "b", [("F3", 5, 0.4)], regions=False)
    c = Corpus.open(root)
    assert c.topology.n_vertices == 23370 and not c.topology.regions
    with pytest.raises(InputError, match="lips"):
        c.topology.lips
    # a folder of neither naming is refused, naming both conventions
    (tmp_path / "none" / "vertices_npy").mkdir(parents=True)
    np.save(tmp_path / "none" / "vertices_npy" / "clip.npy", np.zeros((2, 9), np.float32))
    with pytest.raises(InputError, match=r"no VOCASET clips .* no BIWI clips"):
        Corpus.open(tmp_path / "none")


def test_biwi_speech_windows_at_25_fps(biwi):
    """At 25 fps the critic's speech rate is 640 * 25 = 16 kHz: 44.1 kHz resampled once to 16 kHz."""
    from p3d.audio import load_speech_audio, resample, speech_windows

    class Recorder:  # stands in for PerceptualLoss: keeps the windows it is asked to embed
        def speech_embeddings(self, windows):
            return torch.from_numpy(windows).mean(dim=(1, 2))[:, None]

    data = TalkerClips(biwi, "train", perceptual=Recorder(), cache_speech=False)
    item = data[data.stems.index("F2_e01")]
    samples, sr = load_speech_audio(biwi / "wav" / "F2_e01.wav")
    assert sr == 44100
    once = speech_windows(resample(samples, 44100, 16000), 16000, 25, n_frames=30)
    assert item.speech.shape == (26, 20, 128)
    np.testing.assert_array_equal(item.speech.numpy(), once)


def test_official_flame_critic_on_biwi_is_refused(biwi, tmp_path):
    ckpt, _ = official_critic_checkpoint(tmp_path / "model_loss.pth", 5023)
    with pytest.raises(InputError, match="5023 vertices per frame, the training corpus has 23370"):
        build("faceformer", "smoke", biwi, critic="ours", critic_checkpoint=ckpt, device="cpu")


@pytest.mark.slow
def test_biwi_train_predict_eval(biwi, tmp_path):
    w2v = tiny_wav2vec2(tmp_path / "w2v")
    run, pred, report = tmp_path / "run", tmp_path / "pred", tmp_path / "eval"
    assert main(["train", "talker", "--model", "faceformer", "--preset", "paper", "--data", str(biwi),
                 "--wav2vec2", str(w2v), "--out", str(run), "--steps", "2", "--no-progress"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["fps"] == 25 and cfg["n_vertices"] == 23370 and cfg["styles"] == ["F2", "M3"]
    model = load_model(run / "final.pt")
    assert model.config.d_model == PAPER_BIWI_SETTINGS["faceformer"]["d_model"] == 128
    assert model.config.period_frames == 25
    assert main(["predict", "--run", str(run), "--split", "test", "--out", str(pred), "--no-progress"]) == 0
    assert sorted(p.name for p in pred.glob("*.npy")) == [f"{clip}_condition_{s}.npy" for clip in ("F2_e37", "M3_e38")
                                                          for s in ("F2", "M3")]
    assert main(["eval", "--pred", str(pred), "--gt", str(biwi), "--templates", str(biwi / "templates.pkl"),
                 "--topology", str(biwi / "regions"), "--fps", "25", "--metrics", "lve,fdd", "--out", str(report),
                 "--bootstrap", "10", "--no-progress"]) == 0
    per_clip = pd.read_csv(report / "per_clip.csv")
    assert len(per_clip) == 4 and per_clip["lve"].notna().all() and per_clip["fdd"].notna().all()
    # LVE re-computed (CodeTalker's cal_metric: max over lip vertices of the squared error, mean over frames)
    row = per_clip.iloc[0]
    name = str(row["pred"])
    p = np.load(pred / (name if name.endswith(".npy") else name + ".npy")).reshape(-1, 23370, 3)
    gt_stem = name.split("_condition_")[0].removesuffix(".npy")
    gt = np.load(biwi / "vertices_npy" / f"{gt_stem}.npy").reshape(-1, 23370, 3)
    lve = ((p - gt[: len(p)])[:, BIWI_LIPS] ** 2).sum(-1).max(1).mean()
    np.testing.assert_allclose(row["lve"], lve, rtol=1e-5)


def test_biwi_names_at_the_default_30_fps_point_to_dataset_biwi(biwi, tmp_path, capsys):
    """BIWI clips with their audio, evaluated without --dataset biwi, are read at the default 30 fps and refused
    by the length rule; the message names the option that reads them at BIWI's 25 fps."""
    pred = tmp_path / "pred"
    pred.mkdir()
    for stem in ("F2_e37", "M3_e38"):
        np.save(pred / f"{stem}_condition_F2.npy", np.load(biwi / "vertices_npy" / f"{stem}.npy"))
    args = ["eval", "--pred", str(pred), "--gt", str(biwi), "--audio", str(biwi / "wav"), "--templates",
            str(biwi / "templates.pkl"), "--topology", str(biwi / "regions"), "--metrics", "lve,slcc",
            "--bootstrap", "10", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--dataset biwi reads predictions and GT at 25 fps" in err, err
    assert main([*args, "--dataset", "biwi", "--out", str(tmp_path / "b")]) == 0


def test_official_selftalk_writes_one_file_per_clip_that_eval_reads(biwi, tmp_path, capsys):
    """The official SelfTalk has no speaking-style input; ``p3d predict --checkpoint BIWI.pth`` wrote 8 identical
    files per clip named after the VOCASET training subjects (``F2_e37_condition_FaceTalk_170728_03272_TA.npy``: a
    BIWI prediction under VOCASET conditions, 8x the work). It now writes one ``<clip>.npy`` per clip, as
    SelfTalk's ``test.py``, which ``p3d eval --dataset biwi`` reads; ``--styles`` is refused."""
    from test_baseline_checkpoints import selftalk_state_dict

    torch.save(selftalk_state_dict("BIWI", n_vertices=23370), tmp_path / "BIWI.pth")
    pred = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(tmp_path / "BIWI.pth"), "--data", str(biwi), "--out", str(pred),
                 "--device", "cpu", "--no-progress"]) == 0
    assert sorted(p.name for p in pred.glob("*.npy")) == ["F2_e37.npy", "M3_e38.npy"]
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(tmp_path / "BIWI.pth"), "--data", str(biwi), "--out",
                 str(tmp_path / "other"), "--styles", "F2,F3,F4,M3,M4,M5,a,b", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no speaking-style input" in err, err
    assert main(["eval", "--pred", str(pred), "--gt", str(biwi), "--templates", str(biwi / "templates.pkl"),
                 "--topology", str(biwi / "regions"), "--dataset", "biwi", "--metrics", "lve",
                 "--out", str(tmp_path / "eval"), "--bootstrap", "10", "--no-progress"]) == 0
    assert len(pd.read_csv(tmp_path / "eval" / "per_clip.csv")) == 2


def test_official_checkpoint_predicts_a_seen_speaker_under_its_own_condition_only(biwi, tmp_path):
    """FaceFormer's ``test.py`` and CodeTalker's ``test_pred.py``: a clip whose speaker is a training subject (BIWI
    Test-A, e37-e40 of F2..M5) is predicted under that subject's condition only (CodeTalker's Test-A LVE averages
    those files), an unseen speaker's clip under every training subject. ``p3d predict --checkpoint`` wrote all 6
    conditions for Test-A clips too, so ``p3d eval`` pooled LVE over the 5 other speakers' styles as well."""
    from test_baseline_checkpoints import faceformer_state_dict

    from p3d.models.official_baselines import BIWI_TRAIN_SUBJECTS

    torch.save(faceformer_state_dict("BIWI", n_vertices=23370, n_styles=6), tmp_path / "biwi.pth")
    for split, expected in (("test", ["F2_e37_condition_F2.npy", "M3_e38_condition_M3.npy"]),
                            ("test_b", sorted(f"F1_e37_condition_{s}.npy" for s in BIWI_TRAIN_SUBJECTS))):
        pred = tmp_path / split
        assert main(["predict", "--checkpoint", str(tmp_path / "biwi.pth"), "--data", str(biwi), "--split", split,
                     "--out", str(pred), "--device", "cpu", "--no-progress"]) == 0
        assert sorted(p.name for p in pred.glob("*.npy")) == expected


def test_a_biwi_checkpoint_with_eight_styles_is_not_given_vocasets_subjects(biwi, tmp_path, capsys):
    """A BIWI (25 fps) FaceFormer file with 8 style conditions got the 8 VOCASET training subjects as names
    (``F2_e37_condition_FaceTalk_170728_03272_TA.npy``): the style count alone chose the list. The default names
    are now those of the model's dataset, so its conditions must be named with --styles."""
    from test_baseline_checkpoints import faceformer_state_dict

    torch.save(faceformer_state_dict("BIWI", n_vertices=23370, n_styles=8), tmp_path / "biwi8.pth")
    args = ["predict", "--checkpoint", str(tmp_path / "biwi8.pth"), "--data", str(biwi), "--split", "test_b",
            "--device", "cpu", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has 8 style conditions; name them in order" in err, err
    assert main([*args, "--out", str(tmp_path / "b"), "--styles", "A,B,C,D,E,G,H,I"]) == 0
    assert len(list((tmp_path / "b").glob("F1_e37_condition_*.npy"))) == 8
