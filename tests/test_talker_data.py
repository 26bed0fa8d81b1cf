"""Talker clip datasets: items, styles over several corpora, speech embeddings computed once, bad input."""
import json

import numpy as np
import pytest
import torch

from p3d.errors import InputError
from p3d.losses.perceptual_loss import PerceptualLoss
from p3d.talker_data import TalkerClips, style_identities
from tiny_corpus import prefix_identities, write_tiny_corpus


@pytest.fixture(scope="module")
def mead(tmp_path_factory):
    root = write_tiny_corpus(tmp_path_factory.mktemp("mead"), kind="mead", fps=30, identities={"train": 1, "test": 1},
                             clips_per_identity=2, seconds=1.0, levels=True, lip_video=False, labels=False, seed=1)
    return prefix_identities(root, "M")


@pytest.fixture(scope="module")
def perceptual(smoke_critic):
    return PerceptualLoss(smoke_critic, weight=1.0)


def test_items_at_model_rate(voca):
    ds = TalkerClips(voca)
    assert len(ds) == 4 and ds.styles == ["train00", "train01"] and ds.fps == 30
    b = ds.collate([1])
    assert b.vertices.shape == (30, 30, 3) and b.vertices.dtype == torch.float32
    assert b.audio.shape == (16000,) and b.template.shape == (30, 3)
    assert b.phonemes.shape == (30,) and b.phonemes.dtype == torch.int64
    assert b.speech is None and b.style == ds.style_index[b.stem.split("_")[0]]
    gt = np.load(voca / "vertices_npy" / f"{b.stem}.npy").reshape(-1, 30, 3)[::2]
    assert np.array_equal(b.vertices.numpy(), gt)
    pair = ds.collate([0, 1])  # several clips: a ClipBatch of them, in order
    assert [c.stem for c in pair.clips] == [ds[0].stem, ds[1].stem]
    with pytest.raises(ValueError):
        ds.collate([])


def test_test_split_uses_default_style(voca):
    ds = TalkerClips(voca, "test", default_style=1)
    assert ds.styles == ["train00", "train01"] and {ds[i].style for i in range(len(ds))} == {1}
    with pytest.raises(InputError, match=r"default_style: 2 outside \[0, 2\)"):  # a training identity's index
        TalkerClips(voca, "test", default_style=2)


def test_two_corpora(voca, mead):
    ds = TalkerClips([voca, mead])
    assert ds.styles == ["Mtrain00", "train00", "train01"] == style_identities(ds.corpora)
    assert len(ds) == 6
    mead_item = ds[next(i for i, it in enumerate(ds.items) if it.clip.identity == "Mtrain00")]
    assert mead_item.phonemes is None and mead_item.style == 0


def test_speech_embeddings_computed_once(voca, perceptual, monkeypatch):
    calls = []
    original = perceptual.speech_embeddings
    monkeypatch.setattr(perceptual, "speech_embeddings", lambda w: calls.append(len(w)) or original(w))
    ds = TalkerClips(voca, perceptual=perceptual)
    assert len(calls) == len(ds) == 4
    b = ds.collate([0])
    assert b.speech.shape == (26, 32)  # min(#windows, 30 - 4) windows x embedding width
    ds.collate([0]), ds.collate([1])
    assert len(calls) == 4  # no embedding at collate time
    raw = TalkerClips(voca, perceptual=perceptual, cache_speech=False)
    w = raw.collate([0]).speech
    assert w.shape == (26, 20, 128)
    assert torch.allclose(original(w), b.speech, atol=1e-6)


def test_a_clip_with_one_speech_mesh_window_is_skipped_like_a_short_one(tmp_path, perceptual, caplog):
    """Clips under 6 frames were skipped with a warning, but a 7-frame clip with 0.19 s of speech (accepted by the
    duration check: 6 frames of audio for 7) has 1 window pair, min(#windows, T - 4) = 1, and stopped the whole
    dataset with an InputError. The rule is now the loss' own: fewer than 2 pairs, skipped with a warning."""
    import soundfile as sf

    root = write_tiny_corpus(tmp_path / "c", kind="mead", fps=30, identities={"train": 2}, clips_per_identity=2,
                             seconds=0.25, lip_video=False)
    wav = root / "wav" / "train00_sentence01.wav"
    samples, rate = sf.read(wav, dtype="float32")
    sf.write(wav, samples[: int(0.19 * rate)], rate, subtype="PCM_16")
    with caplog.at_level("WARNING", logger="p3d.talker_data"):
        ds = TalkerClips(root, perceptual=perceptual)
    assert ds.stems == ["train00_sentence02", "train01_sentence01", "train01_sentence02"]
    assert "skipping 1 clips" in caplog.text and "train00_sentence01" in caplog.text
    assert all(ds[i].speech.shape[0] == 3 for i in range(len(ds)))  # 7 frames: min(#windows, 7 - 4)
    assert len(TalkerClips(root)) == 4  # without the loss every clip is kept


def test_bad_input(voca, tmp_path):
    with pytest.raises(InputError, match="val"):
        TalkerClips(voca, "val")
    other = write_tiny_corpus(tmp_path / "other", kind="vocaset", fps=60, model_fps=30, n_vertices=24,
                              identities={"train": 1}, clips_per_identity=1, seconds=0.5, lip_video=False)
    prefix_identities(other, "O")
    with pytest.raises(InputError, match="vertices per frame"):
        TalkerClips([voca, other])
    with pytest.raises(InputError, match="twice"):
        TalkerClips([voca, voca])
    clash = write_tiny_corpus(tmp_path / "clash", kind="vocaset", fps=60, model_fps=30, identities={"train": 1},
                              clips_per_identity=1, seconds=0.5, lip_video=False)
    with pytest.raises(InputError, match="in both"):
        TalkerClips([voca, clash])
    relabelled = prefix_identities(write_tiny_corpus(tmp_path / "relabelled", kind="vocaset", fps=60, model_fps=30,
                                                     identities={"train": 1}, clips_per_identity=1, seconds=0.5,
                                                     lip_video=False), "R")
    meta = json.loads((relabelled / "meta.json").read_text())
    meta["phonemes"] = ["sil", "a", "b"]
    (relabelled / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="phoneme inventory"):
        TalkerClips([voca, relabelled])
    broken = write_tiny_corpus(tmp_path / "broken", kind="vocaset", fps=60, model_fps=30, identities={"train": 1},
                               clips_per_identity=1, seconds=0.5, lip_video=False)
    next((broken / "wav").glob("*.wav")).unlink()
    with pytest.raises(InputError, match="audio file missing"):
        TalkerClips(broken)


def test_a_wav_much_shorter_than_its_vertices_is_refused(voca, tmp_path):
    """A truncated wav (half its recording) was trained on and predicted from: the talkers stretch the audio
    features to the vertex frame count, so the clip was silently misaligned. Now refused like p3d eval does."""
    import shutil

    import soundfile as sf

    from p3d.corpus import Corpus
    from p3d.predict import _write_predictions

    root = tmp_path / "voca"
    shutil.copytree(voca, root)
    corpus = Corpus.open(root)
    clip = corpus.select("train")[0]
    samples, rate = sf.read(corpus.wav_path(clip))
    sf.write(corpus.wav_path(clip), samples[: len(samples) // 2], rate)
    with pytest.raises(InputError, match=f"{clip.stem}.wav: .* the durations differ by a factor of about 2"):
        TalkerClips([root], "train")
    with pytest.raises(InputError, match=f"{clip.stem}.wav: .* the durations differ by a factor of about 2"):
        _write_predictions(None, ["s"], [(corpus, clip)], tmp_path / "pred", "cpu", False, False)
    assert not list((tmp_path / "pred").glob("*.npy"))


def test_own_vertices_npy_at_30_fps_is_refused_naming_the_frame_rates(tmp_path):
    """A processed-VOCASET layout is the 60 fps capture, read [::2]: vertex files saved at 30 fps (one's own
    vertices_npy) are half their audio's length. The refusal names the rates, not only a damaged file."""
    from release_fixtures import write_processed_vocaset

    from p3d.corpus import Corpus
    from p3d.predict import _write_predictions

    root = write_processed_vocaset(tmp_path / "vocaset", [("FaceTalk_170728_03272_TA", 1, 1.5),
                                                         ("FaceTalk_170725_00137_TA", 2, 1.5)])
    for path in (root / "vertices_npy").glob("*.npy"):
        np.save(path, np.load(path)[::2])
    rates = r"differ by a factor of about 2 .* wrong frame rate.* read as 60 fps and taken \[::2\] to 30 fps"
    with pytest.raises(InputError, match=rates):
        TalkerClips([root], "train")
    corpus = Corpus.open(root)
    with pytest.raises(InputError, match=rates):
        _write_predictions(None, ["s"], [(corpus, corpus.select("train")[0])], tmp_path / "pred", "cpu", False,
                           False, frames="gt")


@pytest.mark.parametrize("spoil", ["template in millimetres", "vertices as offsets"])
def test_a_template_outside_the_vertices_frame_is_refused(tmp_path, spoil):
    """The talkers learn vertices minus template: a templates.pkl in millimetres against vertices in metres, or
    vertex files saved as offsets from the template, trained silently on motions of arbitrary size."""
    import pickle

    from release_fixtures import write_processed_vocaset

    from p3d.io import load_pickle

    root = write_processed_vocaset(tmp_path / "vocaset", [("FaceTalk_170728_03272_TA", 1, 1.0),
                                                         ("FaceTalk_170725_00137_TA", 2, 1.0)])
    TalkerClips([root], "train")  # as written: one frame
    templates = load_pickle(root / "templates.pkl")
    if spoil == "template in millimetres":
        (root / "templates.pkl").write_bytes(pickle.dumps({k: 1000 * v for k, v in templates.items()}))
    else:
        path = root / "vertices_npy" / "FaceTalk_170725_00137_TA_sentence02.npy"
        np.save(path, np.load(path) - templates["FaceTalk_170725_00137_TA"].reshape(1, -1))
    with pytest.raises(InputError, match=r"templates.pkl\['FaceTalk_170.*not the coordinate frame of the ground truth"):
        TalkerClips([root], "train")


def test_critic_speech_windows_are_channel_0_of_the_file_resampled_once(voca, perceptual, tmp_path):
    """The perceptual loss' speech side is the official front-end (perceptual_loss/data_loader.py; official-interop.md):
    channel 0 of the wav at its own rate, resampled once to 19.2 kHz; not the talker's 16 kHz channel mean (which
    would be a second resampling of a 44.1 kHz file, and the wrong channel)."""
    import shutil

    import soundfile as sf

    from p3d.audio import speech_windows
    from p3d.corpus import Corpus

    root = tmp_path / "voca"
    shutil.copytree(voca, root)
    corpus = Corpus.open(root)
    clip = corpus.select("train")[0]
    wav = corpus.wav_path(clip)
    rate, seconds = 44100, sf.info(wav).duration
    t = np.arange(int(seconds * rate)) / rate
    left = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t)) + 0.1 * np.sin(2 * np.pi * 9000 * t)
    right = 0.2 * np.random.default_rng(3).standard_normal(t.size)
    sf.write(wav, np.stack([left, right], axis=1), rate, subtype="FLOAT")

    ds = TalkerClips(root, perceptual=perceptual, cache_speech=False)
    i = ds.stems.index(clip.stem)
    item = ds.collate([i])
    n_frames = item.vertices.shape[0]
    expected = speech_windows(left.astype(np.float32), rate, 30, n_frames=n_frames)
    np.testing.assert_allclose(item.speech.numpy(), expected, atol=1e-6)
    mean16k = speech_windows(item.audio.numpy(), 16000, 30, n_frames=n_frames)
    assert np.abs(item.speech.numpy() - mean16k).max() > 0.1  # the front-end matters


def test_each_clip_carries_its_speakers_template_and_frame_labels(voca):
    """A clip's template is its own speaker's entry of templates.pkl, its phoneme labels the corpus' frame labels
    of that clip at the model rate (one per vertex frame, aligned)."""
    from p3d.corpus import Corpus
    from p3d.io import load_pickle

    templates = load_pickle(voca / "templates.pkl")
    corpus = Corpus.open(voca)
    ds = TalkerClips(voca)
    identities = set()
    for i in range(len(ds)):
        item, identity = ds[i], ds.items[i].clip.identity
        identities.add(identity)
        np.testing.assert_array_equal(item.template.numpy(), np.asarray(templates[identity], np.float32).reshape(-1, 3))
        labels = corpus.labels(item.stem)["phoneme"]
        assert labels.shape == (item.n_frames,) and np.array_equal(item.phonemes.numpy(), labels)
        assert len(np.unique(labels)) > 1  # the alignment can fail
    assert len(identities) == 2 and not np.allclose(templates["train00"], templates["train01"])


def test_corpora_at_two_frame_rates_are_refused(voca, tmp_path):
    other = prefix_identities(write_tiny_corpus(tmp_path / "other", kind="mead", fps=25, identities={"train": 1},
                                                clips_per_identity=1, seconds=0.5, lip_video=False, labels=False), "O")
    with pytest.raises(InputError, match="frame rate"):
        TalkerClips([voca, other])


def test_cache_audio_features_none_clears_it(voca):
    ds = TalkerClips(voca)
    ds.cache_audio_features(lambda audio: audio[:10])
    assert torch.equal(ds[0].audio_features, ds[0].audio[:10])
    ds.cache_audio_features(None)
    assert all(ds[i].audio_features is None for i in range(len(ds)))


def test_a_six_frame_clip_has_one_contrastive_group_and_is_kept(tmp_path, perceptual):
    """MIN_FRAMES_WITH_CRITIC: 6 frames give 2 speech-mesh windows (frames [0, 5) and [1, 6)), one contrastive group:
    such clips train with the perceptual loss; 5 frames give one window and are skipped."""
    root = write_tiny_corpus(tmp_path / "c", kind="mead", fps=30, identities={"train": 2}, clips_per_identity=1,
                             seconds=0.2, lip_video=False)
    ds = TalkerClips(root, perceptual=perceptual)
    assert len(ds) == 2 and all(ds[i].n_frames == 6 and ds[i].speech.shape[0] == 2 for i in range(2))


@pytest.mark.parametrize("spoil", ["one frame", "labels one frame short"])
def test_a_one_frame_clip_or_labels_of_another_length_are_refused(tmp_path, spoil):
    """A clip needs 2 frames at the model rate (a talker's velocity and teacher forcing), and one phoneme label per
    frame (SelfTalk's CTC targets, read frame by frame)."""
    root = write_tiny_corpus(tmp_path / "c", kind="mead", fps=30, identities={"train": 1}, clips_per_identity=1,
                             seconds=0.5, lip_video=False)
    stem = "train00_sentence01"
    if spoil == "one frame":
        import soundfile as sf

        wav = root / "wav" / f"{stem}.wav"
        samples, rate = sf.read(wav, dtype="float32")
        sf.write(wav, samples[: rate // 30], rate, subtype="PCM_16")
        path = next((root / "vertices_npy").glob(f"{stem}*"))
        np.save(path, np.load(path)[:1])
        labels = dict(np.load(root / "labels" / f"{stem}.npz"))
        np.savez(root / "labels" / f"{stem}.npz", **{k: v[:1] for k, v in labels.items()})
        match = "1 frame.s. at 30 fps; a talker needs at least 2"
    else:
        labels = dict(np.load(root / "labels" / f"{stem}.npz"))
        labels["phoneme"] = labels["phoneme"][:-1]
        np.savez(root / "labels" / f"{stem}.npz", **labels)
        match = "phoneme labels for 15 frames"
    with pytest.raises(InputError, match=match):
        TalkerClips(root)


def test_a_negative_default_style_is_refused(voca):
    """``default_style`` indexes the training styles: -1 would silently mean the last identity's one-hot."""
    with pytest.raises(InputError, match=r"default_style: -1 outside \[0, 2\)"):
        TalkerClips(voca, "test", default_style=-1)


def test_no_styles_or_no_training_identities_are_refused(voca, tmp_path):
    """An empty style list, or corpora with no ``train`` identities to take the styles from, is a one-line error."""
    with pytest.raises(InputError, match="at least one style"):
        TalkerClips(voca, "test", styles=[])
    only_test = write_tiny_corpus(tmp_path / "t", kind="mead", fps=30, identities={"test": 1}, clips_per_identity=1,
                                  seconds=0.5, lip_video=False)
    with pytest.raises(InputError, match="no clips in split 'train'|split 'train': no identities"):
        TalkerClips(only_test, "test")


def test_with_the_loss_a_split_of_only_short_clips_is_refused(tmp_path, perceptual):
    """With a perceptual loss, a split where no clip has 2 speech-mesh windows (5 frames each here) is a one-line
    error, not an empty dataset."""
    root = write_tiny_corpus(tmp_path / "c", kind="mead", fps=30, identities={"train": 1}, clips_per_identity=1,
                             seconds=0.17, lip_video=False)
    with pytest.raises(InputError, match="no clip has 2 speech-mesh windows"):
        TalkerClips(root, perceptual=perceptual)


def test_workers_below_one_load_on_one_thread(voca):
    """``workers`` <= 0 means one loading thread (as the window datasets), not a ThreadPoolExecutor ValueError."""
    assert TalkerClips(voca, workers=0).stems == TalkerClips(voca).stems


def test_each_training_clip_gets_its_identitys_style_and_collate_keeps_the_order(voca):
    """A training clip's style is its identity's index in ``styles`` (not the default), and a ClipBatch keeps the
    order of the indices given."""
    ds = TalkerClips(voca)
    styles = [ds[i].style for i in range(len(ds))]
    assert styles == [ds.style_index[it.clip.identity] for it in ds.items] and set(styles) == {0, 1}
    assert [c.stem for c in ds.collate([3, 0]).clips] == [ds[3].stem, ds[0].stem]


def test_critic_windows_are_limited_to_the_mesh_frames(tmp_path, perceptual):
    """N = min(#speech windows, T - 4): audio 2 frames longer than the vertices (within the duration check) gives
    T - 4 speech windows, one per 5-frame mesh window, not one per speech window."""
    root = write_tiny_corpus(tmp_path / "c", kind="mead", fps=30, identities={"train": 1}, clips_per_identity=1,
                             seconds=0.6, lip_video=False, labels=False)
    path = next((root / "vertices_npy").glob("*.npy"))
    np.save(path, np.load(path)[:-2])
    ds = TalkerClips(root, perceptual=perceptual, cache_speech=False)
    t = ds[0].n_frames
    assert t == 16 and ds[0].speech.shape == (t - 4, 20, 128)


def test_an_identity_without_a_template_is_refused(voca, tmp_path):
    """templates.pkl must hold every identity of the clips served: a one-line error naming it, not a KeyError."""
    import pickle
    import shutil

    from p3d.io import load_pickle

    root = tmp_path / "voca"
    shutil.copytree(voca, root)
    templates = load_pickle(root / "templates.pkl")
    del templates["train01"]
    (root / "templates.pkl").write_bytes(pickle.dumps(templates))
    with pytest.raises(InputError, match="no template for identity 'train01'"):
        TalkerClips(root)
