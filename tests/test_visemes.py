"""Visemes, the espeak-ng phoneme map, coarticulation and frame labels."""
from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.synth import face, visemes as V
from p3d.synth.rig import CLOSURE, JAW, K, ROUND, TUCK, Rig

# "Bob, a map, baba fish": bilabials, open vowels, a labiodental and pauses.
PHONEMES = [("_", 0.0, 0.20), ("b", 0.20, 0.26), ("0", 0.26, 0.40), ("b", 0.40, 0.47),
            ("_", 0.47, 0.60), ("a#", 0.60, 0.66), ("m", 0.66, 0.74), ("a", 0.74, 0.90),
            ("p", 0.90, 0.97), ("_", 0.97, 1.10), ("b", 1.10, 1.16), ("A:", 1.16, 1.30),
            ("b", 1.30, 1.36), ("A:", 1.36, 1.50), ("f", 1.50, 1.60), ("I", 1.60, 1.68),
            ("S", 1.68, 1.80), ("_", 1.80, 2.00)]


@pytest.fixture(scope="module")
def rig() -> Rig:
    return Rig.from_topology("base")


def test_viseme_set_and_targets():
    assert len(V.VISEMES) == 15 and V.VISEMES[0] == "sil"
    assert set(V.VISEME_TARGETS) == set(V.VISEMES) == set(V.VISEME_DOMINANCE)
    for target in V.VISEME_TARGETS.values():
        assert target.shape == (K,) and target.min() >= 0 and target.max() <= 1
    assert set(V.PHONEME_TO_VISEME.values()) <= set(V.VISEMES)
    assert V.VISEME_TARGETS["PP"][CLOSURE] == 1
    assert V.VISEME_TARGETS["aa"][JAW] > V.VISEME_TARGETS["E"][JAW] > V.VISEME_TARGETS["ih"][JAW]
    assert V.VISEME_TARGETS["ou"][ROUND] == 1 and V.VISEME_TARGETS["FF"][TUCK] == 1
    for a, b in V.DIPHTHONGS.values():
        assert a in V.VISEMES and b in V.VISEMES


@pytest.mark.parametrize("phoneme, viseme", [
    ("p", "PP"), ("b", "PP"), ("m", "PP"), ("f", "FF"), ("v", "FF"), ("T", "TH"), ("D", "TH"),
    ("t", "DD"), ("d", "DD"), ("k", "kk"), ("g", "kk"), ("N", "kk"), ("tS", "CH"), ("dZ", "CH"),
    ("S", "CH"), ("Z", "CH"), ("s", "SS"), ("z", "SS"), ("n", "nn"), ("l", "nn"), ("r", "RR"),
    ("w", "ou"), ("j", "ih"), ("A:", "aa"), ("a", "aa"), ("aI", "aa"), ("E", "E"), ("eI", "E"),
    ("i:", "ih"), ("I", "ih"), ("oU", "oh"), ("O:", "oh"), ("u:", "ou"), ("U", "ou"), ("3:", "RR"),
    ("_", "sil"), ("_:", "sil"),
    # fallbacks: stress marks, trailing modifiers, unknown vowels/consonants
    ("'aI", "aa"), (",m", "PP"), ("z#2", "SS"), ("u:#", "ou"), ("Y", "DD"), ("y:", "DD"),
    ("e~", "E"), ("", "sil"), ("__", "sil"),
])
def test_phoneme_to_viseme(phoneme, viseme):
    assert V.viseme_of(phoneme) == viseme


def test_canonical_phoneme():
    assert V.canonical_phoneme("aI") == "aI"
    assert V.canonical_phoneme("'aI") == "aI"
    assert V.canonical_phoneme("s#2") == "s"
    assert V.canonical_phoneme("Y") is None and V.canonical_phoneme("x~Y") is None


def _en_us_phonemes() -> dict[str, int]:
    """Mnemonic -> type of every phoneme of espeak-ng's en-us table chain (en-us, en, base1, base),
    the most derived definition of each phoneme code winning, read from the binary ``phontab``."""
    import espeakng_loader as loader
    data = open(os.path.join(loader.get_data_path(), "phontab"), "rb").read()
    off, tables = 4, []
    for _ in range(data[0]):
        n, includes = data[off], data[off + 1]
        name = data[off + 4:off + 36].split(b"\0")[0].decode()
        off += 36
        entries = []
        for _ in range(n):
            mnemonic, _, _, code, kind = struct.unpack("<IIHBB", data[off:off + 12])
            entries.append((code, mnemonic.to_bytes(4, "little").rstrip(b"\0").decode("latin1"), kind))
            off += 16
        tables.append((name, includes, entries))
    names = [t[0] for t in tables]
    chain, i = [], names.index("en-us")
    while True:
        chain.append(i)
        if tables[i][1] == 0:
            break
        i = tables[i][1] - 1
    by_code: dict[int, tuple[str, int]] = {}
    for i in reversed(chain):
        for code, mnemonic, kind in tables[i][2]:
            by_code[code] = (mnemonic, kind)
    return {m: kind for m, kind in by_code.values()}


def test_every_en_us_phoneme_has_an_explicit_viseme():
    phonemes = _en_us_phonemes()
    assert {"p", "aI", "tS", "i:", "3:", "_"} <= set(phonemes)  # the table was read correctly
    sounds = {p for p, kind in phonemes.items() if 2 <= kind <= 8}  # vowels, liquids, stops, fricatives, nasals
    assert len(sounds) > 100
    assert not sorted(sounds - set(V.PHONEME_TO_VISEME))
    pauses = [p for p, kind in phonemes.items() if kind == 0]
    assert all(V.viseme_of(p) == "sil" for p in pauses), pauses


def test_paper_phoneme_groups():
    assert list(V.PAPER_PHONEME_GROUPS) == ["aj", "æ", "ɑ", "ej", "i", "s,z", "tʃ", "f,v", "m", "p"]
    for symbols in V.PAPER_PHONEME_GROUPS.values():
        assert all(s in V.PHONEME_TO_VISEME for s in symbols)
    consonants = {g: {V.viseme_of(s) for s in V.PAPER_PHONEME_GROUPS[g]} for g in ("s,z", "tʃ", "f,v", "m", "p")}
    assert consonants == {"s,z": {"SS"}, "tʃ": {"CH"}, "f,v": {"FF"}, "m": {"PP"}, "p": {"PP"}}


def test_frame_labels_rule():
    phonemes = [("_", 0.0, 0.05), ("b", 0.05, 0.12), ("A:", 0.12, 0.3)]
    labels, ids = V.frame_labels(phonemes, fps=20, n_frames=8)
    # frame centres 0.025 0.075 0.125 0.175 0.225 0.275 0.325 0.375
    assert labels == ["_", "b", "A:", "A:", "A:", "A:", "_", "_"]
    assert ids.tolist() == [V.VISEME_INDEX[v] for v in ("sil", "PP", "aa", "aa", "aa", "aa", "sil", "sil")]
    late = [("b", 0.1, 0.2)]
    assert V.frame_labels(late, fps=10, n_frames=3)[0] == ["_", "b", "_"]


@pytest.mark.parametrize("fps", [25, 30, 60])
@pytest.mark.parametrize("amplitude, anticipation", [(1.0, 0.0), (0.6, 0.06), (1.5, 0.03)])
def test_bilabials_close_and_open_vowels_open(rig, fps, amplitude, anticipation):
    n = int(2.0 * fps)
    params = V.articulate(PHONEMES, fps, n, V.ArticulationStyle(amplitude, anticipation))
    gap = face.lip_gap(rig.pose(params))
    labels, ids = V.frame_labels(PHONEMES, fps, n)
    visemes = np.asarray(V.VISEMES)[ids]
    assert (visemes == "PP").sum() >= 6
    assert gap[visemes == "PP"].max() < 0.001  # closed: below 1 mm
    assert gap.min() >= 0  # never crossed
    open_frames = np.isin(labels, ["0", "a", "A:"])
    # Open vowels open: several mm on average, although every one of them here touches a bilabial.
    assert gap[open_frames].mean() > 0.004
    for name in ("0", "a", "A:"):  # ... and each reaches several mm even between two bilabials
        assert gap[np.asarray(labels) == name].max() > 0.006, name
    ff = visemes == "FF"
    assert params[ff, TUCK].min() > 0.5


def test_articulation_is_deterministic_and_smooth():
    a = V.articulate(PHONEMES, 60, 120)
    np.testing.assert_array_equal(a, V.articulate(PHONEMES, 60, 120))
    assert a.shape == (120, K) and a.min() >= 0 and a.max() <= 1
    assert np.abs(np.diff(a, axis=0)).max() < 0.75  # at 60 fps even the fast lip closure takes > 1 frame
    # Coarser frame rates sample the same curve (frame centres coincide at t = 0.225 s).
    b = V.articulate(PHONEMES, 20, 40)
    np.testing.assert_allclose(b[4], a[13], atol=1e-12)


@pytest.mark.parametrize("amplitude", [0.9, 1.4])
def test_trajectories_are_continuously_differentiable(amplitude):
    """Second differences shrink 4x when the step halves (C1); a kink would give only 2x."""
    style = V.ArticulationStyle(amplitude, 0.04)
    d2 = [np.abs(np.diff(V.articulate(PHONEMES, fps, 2 * fps, style), 2, axis=0)).max()
          for fps in (2000, 4000)]
    assert d2[0] / d2[1] > 3.5


def test_style_amplitude_and_anticipation():
    base = V.articulate(PHONEMES, 60, 120)
    loud = V.articulate(PHONEMES, 60, 120, V.ArticulationStyle(amplitude=1.3))
    np.testing.assert_allclose(loud[:, CLOSURE], base[:, CLOSURE])
    np.testing.assert_allclose(loud[:, JAW], V.saturate(1.3 * base[:, JAW]))
    assert (loud[:, JAW] >= base[:, JAW]).all() and loud.max() < 1
    early = V.articulate(PHONEMES, 60, 120, V.ArticulationStyle(anticipation_s=0.06))
    # Just before the first vowel (0 at 0.26 s) the jaw is already further open.
    k = int(0.245 * 60)
    assert early[k, JAW] > base[k, JAW] + 0.02
    # The bilabial closure itself is not anticipated: it starts at the stop.
    before_b = int(0.16 * 60)
    assert early[before_b, CLOSURE] == pytest.approx(base[before_b, CLOSURE], abs=0.05)


def test_saturate():
    v = np.linspace(-1, 5, 601)
    out = V.saturate(v)
    np.testing.assert_array_equal(out[v <= 0.7], v[v <= 0.7])
    assert (np.diff(out) > 0).all() and out.max() < 1


def test_edge_cases_and_bad_input():
    rest = V.articulate([], 30, 5)
    np.testing.assert_allclose(rest, np.broadcast_to(V.VISEME_TARGETS["sil"], (5, K)))
    assert V.articulate(PHONEMES, 30, 0).shape == (0, K)
    with pytest.raises(InputError, match="fps"):
        V.articulate(PHONEMES, 0, 10)
    with pytest.raises(InputError, match="n_frames"):
        V.frame_labels(PHONEMES, 30, -1)
    with pytest.raises(InputError, match="ends before"):
        V.articulate([("a", 0.5, 0.4)], 30, 10)
    with pytest.raises(InputError, match="non-decreasing"):
        V.articulate([("a", 0.5, 0.6), ("b", 0.1, 0.2)], 30, 10)
    with pytest.raises(InputError, match="NaN"):
        V.articulate([("a", 0.0, float("nan"))], 30, 10)
    with pytest.raises(InputError, match="symbol, start_s, end_s"):
        V.articulate([("a", 0.0)], 30, 10)
    with pytest.raises(InputError, match="amplitude"):
        V.ArticulationStyle(amplitude=-1)
    with pytest.raises(InputError, match="unknown viseme"):
        V.viseme_pose("XX")


def test_phoneme_lookups_refuse_non_text_and_a_bare_string():
    from p3d.phonemes import canonical_phoneme, viseme_ids, viseme_of

    for bad in (None, 1, b"p"):  # AttributeError / TypeError from the string methods
        with pytest.raises(InputError, match="phoneme"):
            viseme_of(bad)
        with pytest.raises(InputError, match="phoneme"):
            canonical_phoneme(bad)
    with pytest.raises(InputError, match="single string"):  # was one viseme per character: [aa, PP, DD]
        viseme_ids("abc")
    with pytest.raises(InputError, match="phonemes"):
        viseme_ids(5)
    assert viseme_of(np.str_("p")) == "PP"
    assert viseme_ids(np.array(["p", "a"])).tolist() == viseme_ids(["p", "a"]).tolist() == [1, 10]


def test_frame_labels_at_exact_boundaries():
    """fps 4: centres 0.125, 0.375, 0.625, 0.875 s (exact in binary). Frame k gets the last phoneme whose
    start <= its centre (a centre ON a start belongs to the new phoneme); a centre at the last end is "_"."""
    phonemes = [("_", 0.0, 0.2), ("m", 0.2, 0.375), ("a", 0.375, 0.625)]
    labels, ids = V.frame_labels(phonemes, fps=4, n_frames=4)
    assert labels == ["_", "a", "_", "_"]
    assert ids.tolist() == [V.VISEME_INDEX[v] for v in ("sil", "aa", "sil", "sil")]


def test_diphthong_moves_from_onset_to_offset_at_55_percent():
    """A long /aI/ (2 s, so neighbours do not matter): the jaw holds the open onset (aa, jaw 0.62) early and
    the offset (ih, jaw 0.22, spread 0.6) late, and the switch sits at 55 % of the phoneme (module docstring)."""
    from p3d.synth.rig import SPREAD

    fps = 1000
    params = V.articulate([("aI", 0.0, 2.0)], fps, 2000)
    t = (np.arange(2000) + 0.5) / fps
    aa, ih = V.VISEME_TARGETS["aa"], V.VISEME_TARGETS["ih"]
    early, late = params[(t > 0.3) & (t < 0.9)], params[(t > 1.4) & (t < 1.9)]
    np.testing.assert_allclose(early[:, JAW], aa[JAW], atol=0.01)
    np.testing.assert_allclose(late[:, JAW], ih[JAW], atol=0.01)
    np.testing.assert_allclose(late[:, SPREAD], ih[SPREAD], atol=0.01)
    half = 0.5 * (aa[JAW] + ih[JAW])
    crossing = t[np.flatnonzero(params[:, JAW] < half)[0]]
    assert crossing == pytest.approx(0.55 * 2.0, abs=0.05)


def test_rounding_is_anticipated_longer_than_it_carries_over():
    """Rounded vowels: rounding anticipated over ~100 ms, carried over less (module docstring; tau_before 60 ms,
    tau_after 35 ms for /u:/). Symmetric pauses around a lone /u:/: 60 ms before its onset the lips are more
    rounded than 60 ms after its end."""
    from p3d.synth.rig import ROUND

    phonemes = [("_", 0.0, 0.2), ("u:", 0.2, 0.4), ("_", 0.4, 0.6)]
    p = V.articulate(phonemes, 1000, 600)  # frame k at (k + 0.5) ms
    before, after = p[140, ROUND], p[459, ROUND]
    assert before > after + 0.05, (before, after)
    assert p[100, ROUND] > 0.3  # still rounding 100 ms ahead


def test_h_takes_the_lip_shape_of_its_vowel():
    """/h/ has no lip shape of its own (dominance x0.1): in "who" the lips round through the /h/ almost as
    for the /u:/; a full-strength consonant of the same viseme (E for /h/ is an open-spread vowel shape) would not."""
    from p3d.synth.rig import ROUND

    phonemes = [("_", 0.0, 0.2), ("h", 0.2, 0.28), ("u:", 0.28, 0.5), ("_", 0.5, 0.7)]
    p = V.articulate(phonemes, 1000, 700)
    assert p[240, ROUND] > 0.9 * p[390, ROUND]


def test_labiodental_tuck_is_not_anticipated():
    """Anticipation moves every plateau earlier except the bilabial closure and the labiodental tuck, whose onset
    is the acoustic onset (module docstring): 50 ms before the /f/ of PHONEMES (1.50 s) the tuck is the same with
    and without 60 ms of anticipation."""
    fps = 200
    base = V.articulate(PHONEMES, fps, 400)
    early = V.articulate(PHONEMES, fps, 400, V.ArticulationStyle(anticipation_s=0.06))
    k = int(1.45 * fps)  # centre 1.4525 s
    assert early[k, TUCK] == pytest.approx(base[k, TUCK], abs=0.02)
    assert early[k, JAW] != pytest.approx(base[k, JAW], abs=1e-3)  # other parameters do move earlier


@pytest.mark.parametrize("phoneme, viseme", [
    ("=n", "nn"), ("%m", "PP"),    # every stress mark of the docstring (' , % =) is stripped
    ("m!", "PP"), ("s^", "SS"),    # so are the trailing modifiers ! and ^
    ("@x", "E"), ("Vq", "E"),      # unknown symbols starting with a vowel (schwa, strut) -> E
    ("|", "sil"), ("|||", "sil"),  # pause-like bars -> sil
])
def test_documented_fallbacks_of_unknown_symbols(phoneme, viseme):
    from p3d.phonemes import viseme_of

    assert viseme_of(phoneme) == viseme
