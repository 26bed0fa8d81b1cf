import pickle

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.topology import FLAME_LIPS, Topology, biwi, flame, load_topology, read_index_list


def test_flame_lips_official_list():
    topo = flame()
    assert topo.n_vertices == 5023
    assert len(topo.lips) == 254
    assert len(np.unique(topo.lips)) == 250
    dup = sorted({int(i) for i in FLAME_LIPS if FLAME_LIPS.count(i) > 1})
    assert dup == [1590, 1593, 2726, 2729]
    assert topo.mtm_vertices() == (3531, 3504)
    assert 3531 in topo.lips and 3504 in topo.lips


def test_flame_without_masks_has_no_upper_face():
    with pytest.raises(InputError, match="upper_face"):
        flame().upper_face


def test_flame_masks_pkl(tmp_path):
    from p3d.demo import fixture_masks

    masks = fixture_masks()
    path = tmp_path / "FLAME_masks.pkl"
    path.write_bytes(pickle.dumps(masks, protocol=2))
    topo = load_topology(path)
    expected = np.unique(np.concatenate([masks["eye_region"], masks["forehead"], masks["nose"]]))
    np.testing.assert_array_equal(topo.upper_face, expected)
    assert len(topo.lips) == 254  # the official list, not the mask file's 250
    assert len(topo.region("lips_mask")) == 250
    d = topo.eye_distance(np.random.default_rng(0).normal(size=(3, 5023, 3)))
    assert d > 0


def test_flame_masks_missing_keys(tmp_path):
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"lips": np.arange(3)}))
    with pytest.raises(InputError, match="lack"):
        flame(masks=path)


@pytest.mark.parametrize("empty", [("eye_region", "forehead", "nose"), ("nose",)])
def test_flame_masks_with_an_empty_upper_face_mask_are_refused(tmp_path, empty):
    """Empty eye_region / forehead / nose masks loaded silently: all three empty gave an empty upper_face, and FDD
    then failed on an unnamed index list while upper_face_motion became NaN; one empty made the FDD region another
    than the union of the three. The mask file is refused where it is read, by name, on one line."""
    masks = {"eye_region": np.arange(0, 10), "forehead": np.arange(10, 20), "nose": np.arange(20, 30)}
    masks.update({k: np.array([], dtype=np.int64) for k in empty})
    path = tmp_path / "FLAME_masks.pkl"
    path.write_bytes(pickle.dumps(masks))
    message = r"FLAME_masks.pkl: FLAME mask\(s\) \[.*'nose'\] hold no vertex indices"
    with pytest.raises(InputError, match=message) as err:
        flame(masks=path)
    assert "\n" not in str(err.value)


def test_index_out_of_range():
    with pytest.raises(InputError, match="outside"):
        Topology("t", 10, regions={"lips": [1, 2, 10]})
    with pytest.raises(InputError, match="non-integer"):
        Topology("t", 10, regions={"lips": [1.5]})
    with pytest.raises(InputError, match="faces"):
        Topology("t", 10, faces=np.zeros((3, 4), int))


def test_npz_roundtrip(tmp_path):
    topo = Topology("tiny", 12, regions={"lips": [1, 2, 3], "upper_face": [7, 8]}, mtm_upper=2, mtm_lower=3,
                    eye_pair=(8, 9), faces=np.array([[0, 1, 2], [2, 3, 4]]))
    path = tmp_path / "tiny.npz"
    topo.save_npz(path)
    back = load_topology(path)
    assert back.name == "tiny" and back.n_vertices == 12
    np.testing.assert_array_equal(back.lips, [1, 2, 3])
    assert back.mtm_vertices() == (2, 3) and back.eye_pair == (8, 9)
    np.testing.assert_array_equal(back.faces, topo.faces)


def test_npz_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Topology.load_npz(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(InputError, match="readable"):
        Topology.load_npz(bad)
    np.savez(tmp_path / "nov.npz", faces=np.zeros((1, 3), int))
    with pytest.raises(InputError, match="n_vertices"):
        Topology.load_npz(tmp_path / "nov.npz")


@pytest.mark.parametrize("empty", ["upper_face", "lips"])
def test_npz_with_an_empty_metric_region_is_refused_by_name(tmp_path, empty):
    """A topology .npz with an empty ``region_upper_face`` loaded silently, and FDD then failed on an unnamed
    index list ("upper_face_vertices: expected a non-empty 1-D list"); the file is refused where it is read, by
    name, on one line (as flame() refuses empty FLAME masks)."""
    regions = {"region_lips": np.arange(3), "region_upper_face": np.arange(5, 9)}
    regions[f"region_{empty}"] = np.array([], dtype=np.int64)
    path = tmp_path / "topo.npz"
    np.savez(path, n_vertices=np.array(12), **regions)
    with pytest.raises(InputError, match=rf"topo.npz: topology region\(s\) \['{empty}'\] hold no vertex indices") as err:
        Topology.load_npz(path)
    assert "\n" not in str(err.value)


def test_biwi_region_files(tmp_path):
    (tmp_path / "lve.txt").write_text("2, 5, 7,\n 23339")
    (tmp_path / "fdd.txt").write_text("7, 8, 23368")
    topo = load_topology(tmp_path)
    assert topo.name == "biwi" and topo.n_vertices == 23370
    np.testing.assert_array_equal(topo.lips, [2, 5, 7, 23339])
    np.testing.assert_array_equal(topo.upper_face, [7, 8, 23368])
    with pytest.raises(InputError, match="MTM"):
        topo.mtm_vertices()


def test_region_file_errors(tmp_path):
    (tmp_path / "e.txt").write_text("  ")
    with pytest.raises(InputError, match="empty"):
        read_index_list(tmp_path / "e.txt")
    (tmp_path / "x.txt").write_text("1, two")
    with pytest.raises(InputError, match="non-integer"):
        read_index_list(tmp_path / "x.txt")
    with pytest.raises(InputError, match="not found"):
        biwi(tmp_path / "missing.txt")


def test_unknown_topology():
    with pytest.raises(InputError, match="unknown topology"):
        load_topology("no-such-mesh")


def test_with_regions():
    topo = flame().with_regions(upper_face=np.arange(10))
    assert len(topo.upper_face) == 10 and len(topo.lips) == 254


def test_malformed_topology_files_and_regions(tmp_path):
    # entries of the wrong shape were IndexError/TypeError tracebacks; a boolean per-vertex mask was read as the
    # indices 0 and 1, a 2-D region or a fractional vertex count was accepted as it was
    for key, value in (("mtm_vertices", np.array(3)), ("mtm_vertices", np.array([3])), ("eye_pair", np.array([1])),
                       ("n_vertices", np.array([10, 11]))):
        arrays = {"n_vertices": np.asarray(10), key: value}
        np.savez(tmp_path / "t.npz", **arrays)
        with pytest.raises(InputError, match=key):
            load_topology(tmp_path / "t.npz")
    mask = np.zeros(10, bool)
    mask[[4, 7]] = True
    np.savez(tmp_path / "mask.npz", n_vertices=10, region_lips=mask)
    with pytest.raises(InputError, match="boolean mask"):
        load_topology(tmp_path / "mask.npz")
    with pytest.raises(InputError, match="1-D"):
        Topology("t", 10, regions={"lips": [[1, 2], [3, 4]]})
    with pytest.raises(InputError, match="non-numeric"):
        Topology("t", 10, regions={"lips": ["a"]})
    with pytest.raises(InputError, match="positive integer"):
        Topology("t", 10.5)
    assert Topology("t", np.int64(10)).n_vertices == 10
    topo = Topology("t", 10, eye_pair=(1, 2))
    with pytest.raises(InputError, match="eye distance"):
        topo.eye_distance(np.zeros((3, 5, 3)))
    v = np.zeros((3, 10, 3))
    v[:, 2, 0] = 0.5
    assert topo.eye_distance(v) == topo.eye_distance(v.reshape(3, 30)) == topo.eye_distance(v[0]) == 0.5


def test_flame_masks_ragged_entry_is_one_input_error(tmp_path):
    masks = {"eye_region": np.arange(10), "forehead": np.arange(10, 20), "nose": np.arange(20, 30), "x": [[1, 2], [3]]}
    (tmp_path / "FLAME_masks.pkl").write_bytes(pickle.dumps(masks, protocol=2))
    with pytest.raises(InputError, match="mask 'x' is not a list of vertex indices"):
        flame(masks=tmp_path / "FLAME_masks.pkl")


def test_topology_region_and_mesh_readers_refuse_a_named_pipe_at_once(tmp_path):
    """``Topology.load_npz``, ``read_index_list`` (BIWI) and ``load_ply`` of a non-PLY mesh opened a path straight
    away: a named pipe (FIFO) in its place blocked the reader forever. Each refuses it with one line, unopened."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code = ("import sys; from pathlib import Path; from p3d.errors import InputError; "
            "from p3d.topology import Topology, read_index_list; from p3d.io import load_ply; p = Path(sys.argv[1])\n"
            "for f, q in ((Topology.load_npz, p.with_suffix('.npz')), (read_index_list, p.with_suffix('.txt')), "
            "(load_ply, p.with_suffix('.obj'))):\n"
            "    q.unlink(missing_ok=True); p.rename(q); p = q\n"
            "    try:\n        f(q)\n    except InputError as e:\n        print(e)\n")
    done = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=60)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and len(lines) == 3, (done.stdout, done.stderr)
    assert all("named pipe" in line for line in lines), lines


def test_npz_reads_only_the_topology_entries_and_refuses_a_decompression_bomb(tmp_path, monkeypatch):
    """``Topology.load_npz`` decompressed every member of the archive in full: an entry a topology does not have
    was read (and a corrupt one refused the file), and a few hundred kB of deflated zeros expanded to gigabytes.
    Only its own entries are read now, and only if their recorded sizes total at most
    ``max(file size, p3d.io.NPZ_MAX_BYTES)``: a one-line InputError otherwise, before decompressing."""
    import zipfile

    import p3d.io

    path = tmp_path / "extra.npz"
    Topology(name="tiny", n_vertices=12, regions={"lips": np.array([1, 2, 3])}).save_npz(path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("notes.npy", b"not an array at all")  # not a topology entry: never read
    back = Topology.load_npz(path)
    assert back.n_vertices == 12 and set(back.regions) == {"lips"}

    monkeypatch.setattr(p3d.io, "NPZ_MAX_BYTES", 1 << 16, raising=False)
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, n_vertices=np.int64(12), region_lips=np.zeros(1 << 20, np.uint8))
    assert bomb.stat().st_size < 1 << 16
    with pytest.raises(InputError, match=r"expand to \d+ bytes from a \d+-byte file .*decompression bomb") as err:
        Topology.load_npz(bomb)
    assert "\n" not in str(err.value) and "region_lips" in str(err.value)
    small = tmp_path / "stored.npz"  # an uncompressed member is never larger than its file: always read
    np.savez(small, n_vertices=np.int64(12), region_lips=np.zeros(1 << 17, np.int8))
    assert len(Topology.load_npz(small).regions["lips"]) == 1 << 17


def test_npz_member_whose_header_promises_more_than_it_holds_is_refused(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<i8", "fortran_order": False, "shape": (10 ** 9,)})
    path = tmp_path / "lying.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("n_vertices.npy", buf.getvalue() + b"\0" * 8)
    with pytest.raises(InputError, match=r"\['n_vertices'\]: truncated .npy member"):
        Topology.load_npz(path)
