"""Window datasets: indexing, pairing with the corpus' streams, 25/30 fps, caching, bad input."""
import numpy as np
import pytest
import torch

from p3d.audio import speech_windows
from p3d.corpus import Corpus
from p3d.errors import InputError
from p3d.windows import LIP_MEAN, LIP_STD, AVWindows, SpeechMeshWindows, identity_subset, windows_for_model
from tiny_corpus import write_tiny_corpus


@pytest.fixture(scope="module")
def lrs3(tmp_path_factory):
    return write_tiny_corpus(tmp_path_factory.mktemp("lrs3"), identities={"train": 4, "test": 2},
                             clips_per_identity=2, seconds=1.2)


def test_speech_mesh_windows_pair_the_corpus_streams(lrs3):
    corpus = Corpus.open(lrs3)
    ds = SpeechMeshWindows(corpus, "train")
    assert ds.n_clips == 8 and ds.n_vertices == 30
    clip = corpus.select("train")[0]
    samples, sr = corpus.audio(clip)
    verts = corpus.vertices(clip)
    speech = speech_windows(samples, sr, 25)
    n = min(len(speech), len(verts) - 4)
    assert ds.n_pairs[0] == n and len(ds) == sum(ds.n_pairs)  # every window of every clip
    labels = corpus.labels(clip)["phoneme"]
    b = ds.collate([0, n - 1])
    assert b["speech"].shape == (2, 20, 128) and b["mesh"].shape == (2, 5, 90)
    assert b["speech"].dtype == torch.float32 and b["mesh"].dtype == torch.float32
    np.testing.assert_allclose(b["speech"][1].numpy(), speech[n - 1], atol=1e-5)
    np.testing.assert_array_equal(b["mesh"][1].numpy(), verts[n - 1:n + 4].reshape(5, -1))
    assert b["start"].tolist() == [0, n - 1] and b["clip"] == [clip.stem] * 2
    assert b["phoneme"].tolist() == [labels[2], labels[n + 1]]  # the window's centre frame
    assert b["identity"] == [clip.identity] * 2 and b["level"].tolist() == [-1, -1]


def test_stride_and_max_per_clip(lrs3):
    full = SpeechMeshWindows(lrs3, "test")
    strided = SpeechMeshWindows(lrs3, "test", stride=5, max_per_clip=3)
    n = full.n_pairs[0]
    assert strided.starts(n) == [0, 5 * ((n - 1) // 5 // 2), 5 * ((n - 1) // 5)]
    assert len(strided) == 3 * strided.n_clips
    assert strided.starts(7) == [0, 5]


def test_vocaset_60fps_uses_model_rate_and_the_19_2_khz_rule(voca):
    corpus = Corpus.open(voca)
    ds = SpeechMeshWindows(corpus, "test")
    clip = corpus.select("test")[0]
    full = corpus.vertices(clip, model_rate=False)
    samples, sr = corpus.audio(clip)
    speech = speech_windows(samples, sr, 30)  # 640 * 30 = 19.2 kHz
    assert ds.n_pairs[0] == min(len(speech), len(full[::2]) - 4)
    b = ds.collate([3])
    np.testing.assert_array_equal(b["mesh"][0].numpy(), full[6:16:2].reshape(5, -1))
    np.testing.assert_allclose(b["speech"][0].numpy(), speech[3], atol=1e-5)
    assert b["phoneme"].item() == corpus.labels(clip, model_rate=False)["phoneme"][2 * 5]


def test_speech_windows_of_a_stereo_44k1_wav_are_channel_0_resampled_once(voca, tmp_path):
    """The critics train on the official front-end's windows (perceptual_loss/data_loader.py, official-interop.md):
    channel 0 of the file, resampled once from its own rate to 19.2 kHz; not the corpus' 16 kHz channel mean
    (``Corpus.audio``: resampled twice, channels averaged)."""
    import shutil

    import soundfile as sf

    root = tmp_path / "voca"
    shutil.copytree(voca, root)
    clip = Corpus.open(root).select("test")[0]
    wav = Corpus.open(root).wav_path(clip)
    seconds = sf.info(wav).duration
    rate = 44100
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(7)
    left = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t)) + 0.1 * np.sin(2 * np.pi * 9000 * t)
    right = 0.2 * rng.standard_normal(t.size)
    sf.write(wav, np.stack([left, right], axis=1), rate, subtype="FLOAT")

    ds = SpeechMeshWindows(root, "test")
    ci = [c.stem for c in ds.clips].index(clip.stem)
    got = ds.batch(ds.clip_pairs(ci))["speech"].numpy()
    expected = speech_windows(left.astype(np.float32), rate, 30)[: ds.n_pairs[ci]]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    mean16k, sr16k = Corpus.open(root).audio(clip)
    assert sr16k == 16000
    assert np.abs(got - speech_windows(mean16k, sr16k, 30)[: ds.n_pairs[ci]]).max() > 0.1  # the front-end matters


def test_av_windows_pad_resize_channels(lrs3):
    corpus = Corpus.open(lrs3)
    ds = AVWindows(corpus, "train", speech_frames=64, video_size=32, video_channels=3)
    b = ds.collate([4])
    assert b["speech"].shape == (1, 64, 128) and b["video"].shape == (1, 3, 5, 32, 32)
    plain = SpeechMeshWindows(corpus, "train").collate([4])["speech"]
    torch.testing.assert_close(b["speech"][:, :20], plain)
    torch.testing.assert_close(b["speech"][0, 20:], torch.full((44, 128), 4.2677393 / (2 * 4.5689974)))
    torch.testing.assert_close(b["video"][:, 0], b["video"][:, 2])  # grayscale repeated
    native = AVWindows(corpus, "train", speech_frames=16, video_channels=1).collate([4])
    raw = corpus.lip_video(corpus.select("train")[0])[4:9]
    torch.testing.assert_close(native["video"][0, 0], (torch.from_numpy(raw).float() / 255 - LIP_MEAN) / LIP_STD)
    torch.testing.assert_close(native["speech"], plain[:, 2:18])  # centre crop


def test_lip_video_at_a_corpus_stride_takes_every_stride_th_frame_with_the_mesh(tmp_path):
    """A 60 fps corpus trained at 30 fps (stride 2, as VOCASET): window ``s`` of stage 1 holds lip-video frames
    ``2 s, 2 s + 2, ..., 2 s + 8`` of the file, the same frames as the mesh window of stage 2, and both hold speech
    window ``s`` at 30 fps. Frame ``t`` of the lip video is painted with the value ``t`` so its index can be read
    back from the normalised batch; the mesh and speech are computed independently from the raw files. 63 frames:
    an odd count, whose last frame is a model frame."""
    import soundfile as sf

    root = write_tiny_corpus(tmp_path / "c60", fps=60, model_fps=30, identities={"train": 2}, clips_per_identity=1,
                             seconds=1.05)
    assert Corpus.open(root).stride == 2
    for path in (root / "lipvideo").glob("*.npy"):
        video = np.load(path)
        assert len(video) == 63
        np.save(path, np.broadcast_to(np.arange(len(video), dtype=np.uint8)[:, None, None], video.shape).copy())
    av, sm = AVWindows(root, "train", speech_frames=20), SpeechMeshWindows(root, "train")
    assert av.n_pairs == sm.n_pairs and len(av) == len(sm) > 0
    items = range(len(av))
    video, mesh = av.collate(items), sm.collate(items)
    assert video["clip"] == mesh["clip"] and torch.equal(video["start"], mesh["start"])
    frames = ((video["video"][:, 0] * LIP_STD + LIP_MEAN) * 255).round().long()  # (N, 5, S, S): the frame index
    for i in items:
        stem, s = video["clip"][i], int(video["start"][i])
        assert (frames[i] == torch.arange(2 * s, 2 * s + 10, 2)[:, None, None]).all(), (stem, s)
        raw = np.load(root / "vertices_npy" / f"{stem}.npy")
        np.testing.assert_array_equal(mesh["mesh"][i].numpy(), raw[2 * s:2 * s + 10:2])
        samples, sr = sf.read(root / "wav" / f"{stem}.wav", dtype="float32")
        np.testing.assert_allclose(video["speech"][i].numpy(), speech_windows(samples, sr, 30)[s], atol=1e-6)
        np.testing.assert_array_equal(video["speech"][i].numpy(), mesh["speech"][i].numpy())
    assert {int(s) for s in video["start"]} == set(range(av.n_pairs[0]))  # every window of a clip


def test_feature_cache_on_disk(lrs3, tmp_path):
    cached = SpeechMeshWindows(lrs3, "test", cache_dir=tmp_path / "cache", workers=2)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == cached.n_clips
    again = SpeechMeshWindows(lrs3, "test", cache_dir=tmp_path / "cache")
    plain = SpeechMeshWindows(lrs3, "test")
    idx = list(range(0, len(plain), 7))
    torch.testing.assert_close(again.collate(idx)["speech"], plain.collate(idx)["speech"])


def test_identity_halves_and_errors(lrs3, voca, tmp_path):
    corpus = Corpus.open(lrs3)
    h1, h2 = identity_subset(corpus, "train", "half1"), identity_subset(corpus, "train", "half2")
    assert sorted(h1 + h2) == corpus.identities("train") and not set(h1) & set(h2)
    assert identity_subset(corpus, "train", "all") is None
    assert {c.identity for c in SpeechMeshWindows(corpus, "train", identities=h2).clips} == set(h2)
    with pytest.raises(InputError, match="identities"):
        identity_subset(corpus, "test", "half3")
    with pytest.raises(InputError, match="lip video"):
        AVWindows(voca, "train")
    with pytest.raises(InputError, match="no clips in split"):
        SpeechMeshWindows(lrs3, "val")
    with pytest.raises(InputError, match="stride"):
        SpeechMeshWindows(lrs3, "test", stride=0)
    with pytest.raises(InputError, match="not found"):
        SpeechMeshWindows(tmp_path / "missing", "train")
    short = write_tiny_corpus(tmp_path / "short", identities={"train": 1}, clips_per_identity=1, seconds=0.12)
    with pytest.raises(InputError, match="no complete 5-frame window"):
        SpeechMeshWindows(short, "train")


def test_windows_for_model_checks_vertex_count(lrs3):
    from p3d.models.mesh_encoder import MeshEncoderConfig
    from p3d.models.speech_mesh import SpeechMeshConfig, SpeechMeshModel
    from p3d.models.stage1 import Stage1Config, Stage1Model

    model = SpeechMeshModel.no2d(SpeechMeshConfig.from_preset("smoke", n_vertices=12))
    with pytest.raises(InputError, match="30 vertices"):
        windows_for_model(model, lrs3, "test")
    ok = SpeechMeshModel.no2d(SpeechMeshConfig.from_preset("smoke", n_vertices=30))
    assert isinstance(windows_for_model(ok, lrs3, "test"), SpeechMeshWindows)
    assert MeshEncoderConfig().n_vertices == 5023
    av = windows_for_model(Stage1Model(Stage1Config.from_preset("smoke")), lrs3, "test")
    assert isinstance(av, AVWindows) and av.collate([0])["video"].shape == (1, 1, 5, 32, 32)


def test_vertex_statistics(lrs3):
    ds = SpeechMeshWindows(lrs3, "train")
    mean, scale = ds.vertex_statistics()
    frames = np.concatenate(ds._stream)
    np.testing.assert_allclose(mean, frames.mean(0), rtol=1e-5, atol=1e-7)
    assert scale == pytest.approx(float(np.sqrt(((frames - frames.mean(0)) ** 2).mean())), rel=1e-5)


def test_window_sizes_must_be_positive_whole_numbers(lrs3):
    # video_size=0 was read as "the crops' own size", a negative size was a torch RuntimeError, a fractional
    # one a TypeError; a fractional stride / speech_frames was truncated silently, a fractional max_per_clip
    # a TypeError
    for kw, name in ((dict(video_size=0), "video_size"), (dict(video_size=-4), "video_size"),
                     (dict(video_size=2.5), "video_size"), (dict(speech_frames=2.5), "speech_frames"),
                     (dict(stride=1.5), "stride"), (dict(max_per_clip=2.5), "max_per_clip"),
                     (dict(stride=True), "stride")):
        with pytest.raises(InputError, match=name):
            AVWindows(lrs3, "test", **kw)
    ok = AVWindows(lrs3, "test", video_size=np.int64(16), stride=5.0, max_per_clip=np.int64(2))
    assert ok.collate([0])["video"].shape == (1, 1, 5, 16, 16) and ok.starts(20) == [0, 15]


def test_unreadable_label_or_lip_video_file_is_one_line_error(lrs3, tmp_path):
    # a damaged labels/<stem>.npz was a numpy ValueError traceback (BadZipFile when truncated), an empty
    # lipvideo/<stem>.npy an EOFError
    import shutil

    corpus = Corpus.open(lrs3)
    stem = corpus.select("test")[0].stem
    for sub, name, data, cls in (("labels", f"{stem}.npz", b"junk", SpeechMeshWindows),
                                 ("labels", f"{stem}.npz", (lrs3 / "labels" / f"{stem}.npz").read_bytes()[:50],
                                  SpeechMeshWindows),
                                 ("lipvideo", f"{stem}.npy", b"", AVWindows)):
        root = tmp_path / f"{sub}{len(data)}"
        shutil.copytree(lrs3, root)
        (root / sub / name).write_bytes(data)
        with pytest.raises(InputError, match=f"{name}: not a readable"):
            cls(root, "test")


def test_a_clip_with_exactly_no_window_is_skipped(lrs3, tmp_path):
    """n = min(#speech windows, T - 4) windows per clip: a clip of exactly 4 frames has n = 0 and is skipped like a
    shorter one (kept, it was a clip with no window counted in n_clips and n_pairs)."""
    import shutil

    root = tmp_path / "c"
    shutil.copytree(lrs3, root)
    corpus = Corpus.open(root)
    clips = corpus.select("test")
    path = corpus.vertices_path(clips[0])
    np.save(path, np.load(path)[:4])
    labels = root / "labels" / f"{clips[0].stem}.npz"
    np.savez(labels, **{k: v[:4] for k, v in np.load(labels).items()})  # one label per frame
    assert len(Corpus.open(root).vertices(clips[0])) == 4  # T - 4 = 0
    ds = SpeechMeshWindows(root, "test")
    assert ds.n_clips == len(clips) - 1 and clips[0].stem not in [c.stem for c in ds.clips]
    assert min(ds.n_pairs) >= 1 and len(ds) == sum(ds.n_pairs)


def test_lip_video_normalisation_uses_the_documented_lip_roi_statistics():
    """The module docstring's grayscale lip-ROI statistics (after ``/ 255``): mean 0.421, std 0.165 (Auto-AVSR's
    mouth crops)."""
    assert (LIP_MEAN, LIP_STD) == (0.421, 0.165)


def test_video_channels_other_than_gray_or_rgb_are_refused(lrs3):
    for channels in (0, 2, 4):
        with pytest.raises(InputError, match="video_channels: expected 1 .* or 3"):
            AVWindows(lrs3, "test", video_channels=channels)


def test_video_channels_must_be_a_whole_number_not_a_boolean_or_text(lrs3):
    """True (and numpy's True) passed the ``in (1, 3)`` check as 1 channel; "3" was refused as ``got 3``."""
    for channels, shown in ((True, "True"), (np.True_, r"np.True_"), ("3", "'3'"), (None, "None"), (2.5, "2.5")):
        with pytest.raises(InputError, match=rf"^video_channels: expected 1 \(grayscale\) or 3 \(RGB\), got {shown}$"):
            AVWindows(lrs3, "test", video_channels=channels)
    assert AVWindows(lrs3, "test", video_channels=np.int64(3)).video_channels == 3
    assert AVWindows(lrs3, "test", video_channels=3.0).video_channels == 3  # a whole float, as elsewhere


def test_a_window_start_at_or_beyond_the_clips_pair_count_is_out_of_range(lrs3):
    """``batch`` takes any start below ``n_pairs[clip]``; the last one is a full window, the next an IndexError."""
    ds = SpeechMeshWindows(lrs3, "test")
    last = ds.n_pairs[0] - 1
    b = ds.batch([(0, last)])
    assert b["speech"].shape == (1, 20, 128) and b["mesh"].shape[1] == 5
    for pair in ((0, last + 1), (0, -1), (ds.n_clips, 0)):
        with pytest.raises(IndexError, match="out of range"):
            ds.batch([pair])


def test_vertex_statistics_refuse_identical_frames(lrs3):
    """Frames that never move have scale 0 (and the standardisation would divide by it): a one-line InputError."""
    ds = SpeechMeshWindows(lrs3, "test")
    ds._stream = [np.ones_like(v) for v in ds._stream]
    with pytest.raises(InputError, match="identical"):
        ds.vertex_statistics()


def test_identity_halves_are_the_even_and_odd_positions_and_need_two_identities(lrs3, tmp_path):
    """``half1`` = sorted identities at positions 0, 2, 4, ..., ``half2`` = 1, 3, 5, ... (IDENTITY_SUBSETS); a split
    with a single identity cannot be halved (one independently trained model would get no data)."""
    corpus = Corpus.open(lrs3)
    ids = corpus.identities("train")
    assert identity_subset(corpus, "train", "half1") == [ids[0], ids[2]]
    assert identity_subset(corpus, "train", "half2") == [ids[1], ids[3]]
    one = Corpus.open(write_tiny_corpus(tmp_path / "one", identities={"train": 1}, clips_per_identity=1, seconds=0.5))
    with pytest.raises(InputError, match="needs at least 2"):
        identity_subset(one, "train", "half1")


def test_batch_carries_the_clip_level_and_the_centre_frame_viseme(tmp_path):
    """``level`` is the clip's intensity level (-1 only without one) and ``viseme`` the viseme label of the window's
    centre frame ``start + 2``, read from its own array (here made different from the phoneme array)."""
    root = write_tiny_corpus(tmp_path / "m", kind="mead", fps=30, identities={"train": 1}, clips_per_identity=3,
                             seconds=0.6, levels=True, lip_video=False)
    for path in (root / "labels").glob("*.npz"):
        labels = dict(np.load(path))
        labels["viseme"] = (np.arange(len(labels["phoneme"])) % 7 + 100).astype(labels["phoneme"].dtype)
        np.savez(path, **labels)
    corpus = Corpus.open(root)
    ds = SpeechMeshWindows(corpus, "train")
    b = ds.collate(range(len(ds)))
    for i in range(len(ds)):
        clip = next(c for c in ds.clips if c.stem == b["clip"][i])
        s = int(b["start"][i])
        labels = corpus.labels(clip)
        assert clip.level in (1, 2, 3) and b["level"][i].item() == clip.level
        assert b["viseme"][i].item() == labels["viseme"][s + 2] and b["phoneme"][i].item() == labels["phoneme"][s + 2]
    assert {int(x) for x in b["level"]} == {1, 2, 3}


def test_windows_of_a_corpus_without_labels_have_label_minus_one(tmp_path):
    """Without ``labels/`` every window's ``phoneme`` and ``viseme`` is -1 (no label), never a real id such as 0."""
    root = write_tiny_corpus(tmp_path / "m", kind="mead", fps=30, identities={"train": 1}, clips_per_identity=1,
                             seconds=0.5, lip_video=False, labels=False)
    b = SpeechMeshWindows(root, "train").collate([0, 1])
    assert b["phoneme"].tolist() == [-1, -1] and b["viseme"].tolist() == [-1, -1]


def test_a_negative_clip_index_is_out_of_range(lrs3):
    """A clip index below 0 is refused like one past the end (Python's negative indexing would silently read the
    last clip)."""
    ds = SpeechMeshWindows(lrs3, "test")
    with pytest.raises(IndexError, match="out of range"):
        ds.batch([(-1, 0)])


def test_feature_cache_at_30_fps_gives_the_plain_windows(voca, tmp_path):
    """The on-disk fbank cache computes the clip's features at the corpus' model rate (30 fps: 640 * 30 = 19.2 kHz),
    as without the cache."""
    cached = SpeechMeshWindows(voca, "train", cache_dir=tmp_path / "cache")
    plain = SpeechMeshWindows(voca, "train")
    assert cached.n_pairs == plain.n_pairs
    idx = list(range(len(plain)))
    torch.testing.assert_close(cached.collate(idx)["speech"], plain.collate(idx)["speech"], atol=1e-6, rtol=0)


def test_lip_video_is_resized_bilinear_with_antialiasing_and_rounded(lrs3):
    """The module docstring's resize: ``F.interpolate`` bilinear with antialiasing, rounded back to uint8, once per
    clip; checked against that computation on the raw crops (24 x 24 -> 16 x 16)."""
    import torch.nn.functional as F

    corpus = Corpus.open(lrs3)
    clip = corpus.select("test")[0]
    ds = AVWindows(corpus, "test", video_size=16)
    raw = torch.from_numpy(corpus.lip_video(clip)).float()[:, None]
    ref = F.interpolate(raw, size=(16, 16), mode="bilinear", align_corners=False, antialias=True)[:, 0]
    ref = ref.round().clamp(0, 255)
    got = ds.collate([0])["video"][0, 0]  # (5, 16, 16) normalised
    pixels = got * LIP_STD + LIP_MEAN
    torch.testing.assert_close(pixels * 255, ref[:5], atol=1e-3, rtol=0)


def test_lip_video_of_another_dtype_or_no_frames_or_missing_is_one_line_error(lrs3, tmp_path):
    """lipvideo/<stem>.npy must hold (T, H, W) uint8 crops with at least one frame, and exist for every clip."""
    import shutil

    corpus = Corpus.open(lrs3)
    stem = corpus.select("test")[0].stem
    video = np.load(lrs3 / "lipvideo" / f"{stem}.npy")
    for name, data, match in (("float", video.astype(np.float32), "expected .T, H, W. uint8"),
                              ("empty", video[:0], "expected .T, H, W. uint8"),
                              ("missing", None, f"{stem}.npy: .*lip video")):
        root = tmp_path / name
        shutil.copytree(lrs3, root)
        path = root / "lipvideo" / f"{stem}.npy"
        if data is None:
            path.unlink()
        else:
            np.save(path, data)
        with pytest.raises(InputError, match=match):
            AVWindows(root, "test")


def test_av_windows_for_a_config_take_its_speech_frames_size_and_channels(lrs3):
    """``AVWindows.for_config`` shapes the items by the stage-1 config's speech_frames, video_size and
    video_channels."""
    from types import SimpleNamespace

    ds = AVWindows.for_config(SimpleNamespace(speech_frames=24, video_size=16, video_channels=3), lrs3, "test")
    b = ds.collate([0])
    assert b["speech"].shape == (1, 24, 128) and b["video"].shape == (1, 3, 5, 16, 16)


def test_max_per_clip_takes_the_nearest_of_evenly_spaced_starts(lrs3):
    """``max_per_clip`` starts at the rounded (not truncated) evenly spaced positions: 4 of 11 starts are the
    positions 0, 3.33, 6.67, 10 -> starts 0, 3, 7, 10."""
    ds = SpeechMeshWindows(lrs3, "test", max_per_clip=4)
    assert ds.starts(11) == [0, 3, 7, 10]
    assert SpeechMeshWindows(lrs3, "test", stride=2, max_per_clip=4).starts(21) == [0, 6, 14, 20]


def test_frame_labels_of_another_length_than_the_clip_are_refused(lrs3, tmp_path):
    """One phoneme / viseme label per frame (as TalkerClips requires): a label array one frame short gave the last
    window label -1 silently, one frame long was read as if aligned; now a one-line error naming the file."""
    import shutil

    corpus = Corpus.open(lrs3)
    stem = corpus.select("test")[0].stem
    for name, change in (("short", lambda v: v[:-1]), ("long", lambda v: np.append(v, v[-1]))):
        root = tmp_path / name
        shutil.copytree(lrs3, root)
        path = root / "labels" / f"{stem}.npz"
        labels = dict(np.load(path))
        labels["viseme"] = change(labels["viseme"])
        np.savez(path, **labels)
        with pytest.raises(InputError, match=rf"{stem}.npz: .* viseme labels for \d+ frames"):
            SpeechMeshWindows(root, "test")
