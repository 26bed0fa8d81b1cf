"""One check of vertex indices (p3d.topology.vertex_indices) behind every entry point that takes them: the metrics'
index lists (as_indices), a topology's regions and faces, exported faces and the faces of a comparison video.

The same table of bad indices runs through all of them: each is refused with an InputError whose message names
the argument and then says the same thing everywhere (the metrics alone refuse whole floats too)."""
from __future__ import annotations

import numpy as np
import pytest

from p3d.errors import InputError
from p3d.export import export_sequence
from p3d.metrics._checks import as_indices
from p3d.topology import Topology
from p3d.viz.compare import resolve_faces

N = 10  # vertices of the mesh


def _metric(idx, tmp_path):
    return as_indices(idx, N, "lip_vertices")


def _region(idx, tmp_path):
    return Topology("t", N, regions={"lips": idx}).regions["lips"]


def _topology_faces(faces, tmp_path):
    return Topology("t", N, faces=faces).faces


def _export(faces, tmp_path):
    (path,) = export_sequence(np.zeros((1, N, 3), np.float32), tmp_path / "out", "obj", faces)
    rows = [line.split()[1:] for line in path.read_text().splitlines() if line.startswith("f ")]
    return np.asarray(rows, dtype=np.int64) - 1  # OBJ counts vertices from 1


def _comparison(faces, tmp_path):
    return resolve_faces(faces, None, N)


LISTS = [_metric, _region]  # take a 1-D list of indices
TRIANGLES = [_topology_faces, _export, _comparison]  # take (F, 3) triangles
#: the argument each names first in its messages
NAMES = {_metric: "lip_vertices", _region: "topology 't': region 'lips'", _topology_faces: "topology 't': faces",
         _export: "faces", _comparison: "faces"}


def _forms(value):
    """``value`` as the last entry of a 1-D index list and of (2, 3) triangles, otherwise valid."""
    return [0, 4, value], [[0, 1, 2], [3, 4, value]]


#: (case, 1-D list, triangles); every entry point refuses each
BAD = [
    ("fractional", *_forms(0.5)),
    ("NaN", *_forms(np.nan)),
    ("inf", *_forms(np.inf)),
    ("-inf", *_forms(-np.inf)),
    ("huge float", *_forms(1e20)),  # a cast to int64 wraps it around
    ("negative", *_forms(-1)),
    ("n_vertices", *_forms(N)),
    ("huge uint64", np.array([0, 2**63 + 5], np.uint64), np.array([[0, 1, 2**63 + 5]], np.uint64)),
    ("text", *_forms("1")),
    ("object", *_forms(None)),
    ("complex", *_forms(1 + 0j)),
    ("boolean mask", np.ones(3, bool), np.ones((2, 3), bool)),
    ("ragged", [[0, 1], [2]], [[0, 1, 2], [3, 4]]),
]
FLOATS = {"fractional", "NaN", "inf", "-inf", "huge float"}


@pytest.mark.parametrize("case, as_list, as_triangles", BAD, ids=[b[0] for b in BAD])
def test_every_entry_point_refuses_the_same_bad_indices_with_the_same_words(case, as_list, as_triangles, tmp_path):
    said = {}
    for entry in LISTS + TRIANGLES:
        with pytest.raises(InputError) as err:
            entry(as_list if entry in LISTS else as_triangles, tmp_path)
        name = NAMES[entry]
        message = str(err.value)
        assert message.startswith(name) and "\n" not in message, message
        said[entry.__name__] = message[len(name):]
    assert not (tmp_path / "out").exists()
    if case in FLOATS:  # the metrics take integers only; the others take whole floats, and refuse these
        assert said.pop("_metric") == " must hold integer vertex indices, got dtype float64 (integers only)"
    assert len(set(said.values())) == 1, said


@pytest.mark.parametrize("entry, bad", [(_metric, [[0, 1], [2, 3]]), (_region, [[0, 1], [2, 3]]), (_metric, []),
                                        (_topology_faces, [[0, 1, 2, 3]]), (_export, [[0, 1, 2, 3]]),
                                        (_comparison, [[0, 1, 2, 3]]), (_export, [0, 1, 2]), (_comparison, [0, 1, 2])])
def test_indices_of_another_shape_are_refused(entry, bad, tmp_path):
    with pytest.raises(InputError):
        entry(bad, tmp_path)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.uint64, np.float64, np.float32])
def test_integer_indices_pass_everywhere_and_whole_floats_all_but_the_metrics(dtype, tmp_path):
    for entry in LISTS + TRIANGLES:
        given = np.array([0, 4, 9], dtype) if entry in LISTS else np.array([[0, 4, 9], [1, 2, 3]], dtype)
        if entry is _metric and given.dtype.kind == "f":
            with pytest.raises(InputError, match="integers only"):
                entry(given, tmp_path)
            continue
        got = entry(given, tmp_path / entry.__name__)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, given.astype(np.int64))
    # a topology's regions may be empty (flame() and load_npz refuse empty metric regions by file name)
    assert Topology("t", N, regions={"x": []}).regions["x"].shape == (0,)
