"""Figs. 3 and 6 helpers: choosing phoneme moments, word timings, rendered mouth crops (tiny, off-screen)."""
import numpy as np
import pytest

from p3d.corpus import Corpus
from p3d.errors import InputError
from p3d.synth import corpus as sc
from p3d.synth import face
from p3d.viz.lip_shapes import (
    FrameChoice, clip_record, intensity_comparison, lip_opening, lip_shape_grid, mouth_regions, pick_clip,
    pick_frames, pick_intensity_pair, word_at, word_timings,
)
from p3d.viz.render import BlankFrameError, Camera

NAMES = ["_", "p", "m", "f", "u:", "a"]


@pytest.fixture(scope="module")
def mead(tmp_path_factory):
    return Corpus.open(sc.build("synth-mead", "smoke", tmp_path_factory.mktemp("mead"), seed=0, progress=False))


@pytest.fixture(scope="module")
def mesh():
    topo = face.face_topology("base")
    return topo, face.faces("base"), face.template("base")


def _sequence(template, openings):
    """(T, V, 3): the jaw lowered by ``openings`` x 12 mm (the rig's jaw weights)."""
    jaw = face.jaw_weights("base")[:, None] * np.array([0.0, -0.012, -0.002])
    return np.stack([template + a * jaw for a in openings])


def test_pick_frames_takes_the_middle_of_the_longest_run():
    #        0  1  2  3  4  5  6  7  8  9 10 11 12
    lab = [0, 1, 1, 0, 2, 2, 2, 0, 3, 3, 5, 4, 4]
    words = [("up", 0.0, 0.1), ("mama", 0.1, 0.25), ("off", 0.25, 0.5)]
    got = pick_frames(lab, NAMES, {"bilabial": ("p", "b", "m"), "labiodental": ("f", "v")}, words=words, fps=30)
    assert got[0] == FrameChoice("bilabial", 5, "m", (4, 7), "mama")  # the /m/ run (3 frames) beats /p/ (2)
    assert got[1].frame == 8 and got[1].run == (8, 10) and got[1].word == "off"  # tie at length 2 -> (8+9)//2
    assert got[0].caption == '"mama" [m], frame 5'
    plain = pick_frames(lab, NAMES, [("u:",), "a"])
    assert [(c.target, c.frame, c.word) for c in plain] == [("/u:/", 11, None), ("/a/", 10, None)]
    assert plain[0].caption == "[u:], frame 11"
    assert word_at(words, 0.3) == "off" and word_at(words, 0.6) is None


def test_pick_frames_bad_input():
    with pytest.raises(InputError, match="does not occur|occurs in this clip"):
        pick_frames([0, 1, 1], NAMES, {"f": ("f",)})
    with pytest.raises(InputError, match="inventory"):
        pick_frames([0, 1, 1], NAMES, {"x": ("zz",)})
    with pytest.raises(InputError, match="ids must be"):
        pick_frames([0, 9], NAMES, {"p": ("p",)})
    with pytest.raises(InputError, match="fps"):
        pick_frames([0, 1], NAMES, {"p": ("p",)}, words=[("a", 0, 1)])


def test_word_timings_match_the_corpus_labels(mead):
    clip = mead.select("test")[0]
    words = word_timings(mead, clip)
    assert words is not None and [w for w, _, _ in words] == clip.sentence.rstrip(".").replace(",", "").split()
    # a frame inside a word is not a pause; frames after the last word are
    lab = mead.labels(clip)["phoneme"]
    fps = mead.model_fps
    pause = mead.meta["phonemes"].index("_")
    inside = [k for k in range(len(lab)) if word_at(words, (k + 0.5) / fps) is not None]
    assert inside and all(lab[k] != pause for k in inside[1:-1])


def test_pick_clip_and_intensity_pair(mead):
    clip = pick_clip(mead, "test", {"any vowel": ("a", "aI", "A:", "I", "i:", "E", "@")})
    assert clip.split == "test"
    with pytest.raises(InputError, match="no test clip"):
        pick_clip(mead, "test", {"rare": ("Z",), "other": ("OI",)})
    # same word: S001 says "the" at levels 1 and 2 (train split of the smoke corpus)
    pair = pick_intensity_pair(mead, "S001", split="train", levels=(1, 2), targets={"dh": ("D",)})
    assert pair.same_word and pair.low.level == 1 and pair.high.level == 2
    assert pair.low_choice.word.lower() == pair.high_choice.word.lower() == "the"
    names = mead.meta["phonemes"]
    for clip, choice in ((pair.low, pair.low_choice), (pair.high, pair.high_choice)):
        assert names[mead.labels(clip)["phoneme"][choice.frame]] == "D"
    # no shared word: the same phoneme at both levels
    pair = pick_intensity_pair(mead, split="test", use_words=False)
    assert not pair.same_word and pair.identity == "S002"
    assert pair.low_choice.phoneme == pair.high_choice.phoneme and pair.low_choice.word is None
    with pytest.raises(InputError, match="both levels"):
        pick_intensity_pair(mead, "S000", split="test")


def test_lip_shape_grid_renders_the_mouth(mesh):
    topo, faces, template = mesh
    regions = mouth_regions(topo)
    gt = _sequence(template, [0.0, 0.2, 1.0, 0.5])
    pred = _sequence(template, [0.0, 0.1, 0.4, 0.2])
    frames = [FrameChoice("closed", 0, "m", (0, 1), "some"), 2]
    fig = lip_shape_grid({"GT": gt, "model": pred}, frames, faces, regions["mouth"], cavity=regions["cavity"],
                         lip_pair=regions["lip_pair"], size=48)
    axes = fig.axes
    assert len(axes) == 4 and axes[0].get_title() == '"some" [m], frame 0' and axes[1].get_title() == "frame 2"
    assert axes[0].get_ylabel() == "GT" and axes[2].get_ylabel() == "model"
    images = [ax.images[0].get_array() for ax in axes]
    assert all(img.shape == (48, 48, 3) for img in images)
    dark = [int((np.asarray(img).max(axis=-1) < 60).sum()) for img in images]
    assert dark[1] > dark[0] + 5 and dark[1] > dark[3]  # the open GT mouth shows the dark cavity
    opening = lip_opening(gt[[0, 2]], regions["lip_pair"])
    assert axes[1].get_xlabel() == f"opening {opening[1]:.1f} mm" and opening[1] > opening[0] + 5


def test_lip_shape_grid_errors(mesh):
    topo, faces, template = mesh
    lips = mouth_regions(topo)["mouth"]
    gt = _sequence(template, [0.0, 1.0])
    away = Camera(position=(0.0, 0.0, 1.0), focal_point=(0.0, 0.0, 2.0))  # looks away from the face
    with pytest.raises(BlankFrameError, match="GT: rendering frames"):
        lip_shape_grid({"GT": gt}, [0], faces, lips, size=32, camera=away)
    with pytest.raises(InputError, match="outside its 2 frames"):
        lip_shape_grid({"GT": gt}, [5], faces, lips, size=32)
    with pytest.raises(InputError, match="vertices"):
        lip_shape_grid({"GT": gt, "bad": gt[:, :10]}, [0], faces, lips, size=32)
    with pytest.raises(InputError, match="captions"):
        lip_shape_grid({"GT": gt}, [0, 1], faces, lips, captions=["one"], size=32)
    # a topology without triangles (FLAME: faces None) was a TypeError traceback from int(np.max(None))
    for bad in (None, np.zeros((0, 3), dtype=np.int64), faces[:, :2]):
        with pytest.raises(InputError, match="faces"):
            lip_shape_grid({"GT": gt}, [0], bad, lips, size=32)
        with pytest.raises(InputError, match="faces"):
            intensity_comparison({"GT": gt}, {"GT": gt}, 0, 1, bad, lips)


def test_intensity_comparison(mesh):
    topo, faces, template = mesh
    regions = mouth_regions(topo)
    low = {"GT": _sequence(template, [0, 0.2, 0.3, 0.2, 0]), "model": _sequence(template, [0, 0.1, 0.2, 0.1, 0])}
    high = {"GT": _sequence(template, [0, 0.5, 1.0, 0.6, 0, 0]), "model": _sequence(template, [0, 0.3, 0.6, 0.3, 0, 0])}
    fig = intensity_comparison(low, high, 2, FrameChoice("open", 2, "a", (1, 4), "go"), faces, regions["mouth"],
                               cavity=regions["cavity"], lip_pair=regions["lip_pair"], fps=30, trace_s=0.04,
                               size=40)
    renders = [ax for ax in fig.axes if ax.images]
    traces = [ax for ax in fig.axes if ax.lines]
    assert len(renders) == 4 and len(traces) == 2
    assert renders[0].get_title() == "GT" and '"go" [a]' in renders[1].get_ylabel()
    t, y = traces[0].lines[1].get_data()  # GT, high level: frames 1..3 around frame 2
    np.testing.assert_allclose(t, [-1 / 30, 0, 1 / 30])
    np.testing.assert_allclose(y, lip_opening(high["GT"][1:4], regions["lip_pair"]))
    assert traces[0].get_ylim() == traces[1].get_ylim()
    with pytest.raises(InputError, match="same column labels"):
        intensity_comparison(low, {"GT": high["GT"]}, 0, 0, faces, regions["mouth"])


def test_prediction_sequences(tmp_path):
    from p3d.viz.lip_shapes import prediction_sequences

    for label, conds in (("a", ["X", "Y"]), ("b", ["Y", "Z"])):
        (tmp_path / label).mkdir()
        for k, cond in enumerate(conds):
            np.save(tmp_path / label / f"clip1_condition_{cond}.npy", np.full((3, 12), k + 1.0, np.float32))
    got = prediction_sequences({"A": tmp_path / "a", "B": tmp_path / "b"}, "clip1")
    assert list(got) == ["A", "B"] and got["A"].shape == (3, 4, 3)
    assert got["A"][0, 0, 0] == 2.0 and got["B"][0, 0, 0] == 1.0  # the shared condition Y
    with pytest.raises(InputError, match="not found"):
        prediction_sequences({"A": tmp_path / "a"}, "clip1", condition="Z")
    with pytest.raises(InputError, match="no prediction"):
        prediction_sequences({"A": tmp_path / "a"}, "clip2")


def test_common_condition_is_shared_by_every_folder(tmp_path):
    """Fig. 3's speaking style: the first condition every folder predicted, not the first of one folder (X here,
    which folder b lacks)."""
    from p3d.viz.lip_shapes import common_condition

    for label, conds in (("a", ["X", "Y"]), ("b", ["Y", "Z"])):
        (tmp_path / label).mkdir()
        for cond in conds:
            np.save(tmp_path / label / f"clip1_condition_{cond}.npy", np.zeros((3, 12), np.float32))
    assert common_condition({"A": tmp_path / "a", "B": tmp_path / "b"}, "clip1") == "Y"
    (tmp_path / "c").mkdir()
    np.save(tmp_path / "c" / "clip1_condition_Z.npy", np.zeros((3, 12), np.float32))
    with pytest.raises(InputError, match="share no condition"):
        common_condition({"A": tmp_path / "a", "C": tmp_path / "c"}, "clip1")
    with pytest.raises(InputError, match="no prediction"):
        common_condition({"A": tmp_path / "a"}, "clip2")


def test_clip_record_of_an_unreadable_label_file(tmp_path):
    # a damaged labels/<stem>.npz was a numpy ValueError / BadZipFile traceback
    from types import SimpleNamespace

    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "c1.npz").write_bytes(b"junk")
    with pytest.raises(InputError, match="c1.npz: not a readable"):
        clip_record(SimpleNamespace(root=tmp_path), SimpleNamespace(stem="c1"))
    np.savez(tmp_path / "labels" / "c2.npz", phoneme=np.zeros(3, int))
    assert clip_record(SimpleNamespace(root=tmp_path), SimpleNamespace(stem="c2")) is None


def test_topology_without_mtm_vertices_and_bad_lip_pair(mesh):
    # a topology without MTM vertices (BIWI) gave TypeError from int(None); a lip_pair outside the mesh an
    # IndexError after the renders
    from p3d.topology import Topology

    with pytest.raises(InputError, match="no MTM lip vertices"):
        mouth_regions(Topology("biwi", 10, regions={"lips": [1, 2, 3]}))
    topo, faces, template = mesh
    lips = mouth_regions(topo)["mouth"]
    gt = _sequence(template, [0.0, 1.0])
    with pytest.raises(InputError, match="lip_pair"):
        lip_shape_grid({"GT": gt}, [0, 1], faces, lips, lip_pair=(13, len(template)), size=32)
    with pytest.raises(InputError, match="lip_pair"):
        intensity_comparison({"GT": gt}, {"GT": gt}, 0, 1, faces, lips, lip_pair=(13,), size=32)
    with pytest.raises(InputError, match="lip_pair"):
        lip_opening(gt, (13, -1))
    np.testing.assert_allclose(lip_opening(gt, (13, 14)), lip_opening(gt, np.array([13, 14])))


def test_pick_frames_ties_go_to_the_earliest_run_and_words_are_read_at_the_frame_centre():
    """Equally long runs: the earliest. A frame k is at (k + 0.5) / fps s, and a word holds [start, end): frame
    2 at 10 fps (0.25 s) lies in the word starting at 0.25 s, not in the one ending there."""
    lab = [0, 0, 1, 1, 1, 0, 2, 2, 2, 0]
    words = [("early", 0.0, 0.25), ("late", 0.25, 0.5), ("last", 0.5, 1.0)]
    (got,) = pick_frames(lab, NAMES, {"bilabial": ("p", "m")}, words=words, fps=10)
    assert (got.run, got.frame, got.phoneme, got.word) == ((2, 5), 3, "p", "late")  # 3 at 0.35 s
    (got,) = pick_frames([1, 1, 1, 1, 1], NAMES, {"p": ("p",)}, words=words, fps=10)
    assert (got.frame, got.word) == (2, "late")  # 0.25 s: the start of "late", the end of "early"


def test_pick_frames_refuses_an_id_one_past_the_inventory():
    with pytest.raises(InputError, match="ids must be"):
        pick_frames([0, len(NAMES)], NAMES, {"p": ("p",)})


def test_mouth_camera_pads_the_mouth_by_its_largest_extent():
    """``pad`` times the mouth's largest extent on every side of a square crop: a 4 cm wide mouth with pad 0.25
    fills about the middle 1 / (1 + 2 x 0.25) of the image's width, centred (a little less: the crop's box is
    padded in depth too, and its front face is what fills the image)."""
    from p3d.viz.lip_shapes import mouth_camera
    from p3d.viz.yt_slices import project_points

    pts = np.array([[-0.02, 0.0, 0.0], [0.02, 0.0, 0.0], [0.0, 0.01, 0.0], [0.0, -0.01, 0.0]])
    cam = mouth_camera(pts, 60, pad=0.25)
    px = project_points(pts, cam, (60, 60))
    assert np.ptp(px[:, 0]) == pytest.approx(60 / 1.5, rel=0.1) and np.ptp(px[:, 0]) == pytest.approx(2 * np.ptp(px[:, 1]))
    assert px.mean(axis=0) == pytest.approx([29.5, 29.5])


def test_intensity_comparison_frames_both_clips_mouths(mesh, monkeypatch):
    """One camera for both rows, framed on the reference column's mouth at the low and at the high frame: the
    wide-open high frame's lips are in the crop too (rendering itself is not needed to check it)."""
    import p3d.viz.lip_shapes as L
    from p3d.viz.yt_slices import project_points

    topo, faces, template = mesh
    regions = mouth_regions(topo)
    cameras = []

    def fake_render(label, vertices, frames, faces, camera, size, cavity):
        cameras.append(camera)
        return np.zeros((len(frames), size, size, 3), np.uint8)

    monkeypatch.setattr(L, "_render", fake_render)
    low, high = {"GT": _sequence(template, [0.0, 0.1])}, {"GT": _sequence(template, [0.0, 4.0])}
    fig = intensity_comparison(low, high, 1, 1, faces, regions["mouth"], lip_pair=regions["lip_pair"], size=40)
    assert len(cameras) == 2 and cameras[0] == cameras[1]
    (trace,) = [ax for ax in fig.axes if ax.lines]
    styles = [(line.get_label(), line.get_linestyle()) for line in trace.lines if line.get_label()[0] != "_"]
    assert styles == [("low (level 1)", "--"), ("high (level 3)", "-")]  # low dashed, high solid
    for seq in (low["GT"][1], high["GT"][1]):
        px = project_points(seq[regions["mouth"]], cameras[0], (40, 40))
        assert px.min() > 0 and px.max() < 39
