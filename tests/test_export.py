"""`p3d export`: one OBJ/PLY mesh per frame; files parse back to the same vertices and faces."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from p3d import io
from p3d.errors import InputError
from p3d.export import FORMATS, export_sequence, resolve_faces, write_ply
from p3d.topology import FLAME_N_VERTICES, load_topology


def run_cli(monkeypatch, argv):
    """``p3d.cli.main`` with ``p3d.export`` among the command modules (if not listed there yet)."""
    import p3d.cli

    if "p3d.export" not in p3d.cli.COMMAND_MODULES:
        monkeypatch.setattr(p3d.cli, "COMMAND_MODULES", (*p3d.cli.COMMAND_MODULES, "p3d.export"))
    return p3d.cli.main(argv)


def read_obj(path):
    """(vertices (V, 3) as written, faces (F, 3) 0-based) of an OBJ file, parsed by hand."""
    verts, faces = [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "v":
            verts.append([float(x) for x in parts[1:4]])
        elif parts and parts[0] == "f":
            faces.append([int(x) - 1 for x in parts[1:4]])
    return np.asarray(verts), np.asarray(faces, dtype=np.int64).reshape(-1, 3)


@pytest.fixture(scope="module")
def synth():
    topo = load_topology("synth-face-base")
    rng = np.random.default_rng(0)
    from p3d.synth.face import template

    base = template("base").astype(np.float32)
    seq = base[None] + rng.normal(0, 1e-3, size=(5, *base.shape)).astype(np.float32)
    return topo, seq


@pytest.mark.parametrize("fmt", ["ply", "obj"])
def test_cli_export_with_topology_faces_round_trips(fmt, synth, tmp_path, monkeypatch, capsys):
    topo, seq = synth
    np.save(tmp_path / "seq.npy", seq.reshape(len(seq), -1))
    out = tmp_path / "meshes"
    code = run_cli(monkeypatch, ["export", "--format", fmt, "--in", str(tmp_path / "seq.npy"), "--out", str(out),
                                 "--topology", "synth-face-base"])
    assert code == 0
    assert f"5 .{fmt} file(s)" in capsys.readouterr().out
    files = sorted(out.glob(f"*.{fmt}"))
    assert [f.name for f in files] == [f"{t:05d}.{fmt}" for t in range(5)]
    for t, path in enumerate(files):
        verts, faces = io.load_ply(path) if fmt == "ply" else read_obj(path)
        assert verts.shape == seq[t].shape
        np.testing.assert_array_equal(verts.astype(np.float32), seq[t])  # float32 written exactly
        np.testing.assert_array_equal(faces, topo.faces)


def test_obj_is_readable_by_vtk(synth, tmp_path):
    topo, seq = synth
    (path,) = export_sequence(seq[:1], tmp_path, "obj", topo.faces)
    verts, faces = io.load_ply(path)  # pyvista reads OBJ too
    np.testing.assert_array_equal(verts.astype(np.float32), seq[0])
    np.testing.assert_array_equal(faces, topo.faces)


def test_float64_coordinates_survive_exactly(synth, tmp_path):
    topo, seq = synth
    seq64 = seq.astype(np.float64) + 1e-9 * np.arange(seq.shape[1])[None, :, None]
    ply, obj = (export_sequence(seq64[:1], tmp_path, fmt, topo.faces)[0] for fmt in ("ply", "obj"))
    np.testing.assert_array_equal(read_obj(obj)[0], seq64[0])
    raw = ply.read_bytes()
    header, body = raw.split(b"end_header\n", 1)
    assert b"property double x" in header
    np.testing.assert_array_equal(np.frombuffer(body, "<f8", count=seq64[0].size).reshape(-1, 3), seq64[0])
    verts, faces = io.load_ply(ply)  # VTK's PLY reader keeps float32 precision only
    np.testing.assert_allclose(verts, seq64[0], rtol=1e-6, atol=0)
    np.testing.assert_array_equal(faces, topo.faces)


@pytest.mark.parametrize("fmt", ["ply", "obj"])
def test_flame_without_faces_writes_point_clouds_with_a_warning(fmt, tmp_path, monkeypatch, capsys, caplog):
    rng = np.random.default_rng(1)
    seq = rng.normal(0, 0.1, size=(2, FLAME_N_VERTICES * 3)).astype(np.float32)
    np.save(tmp_path / "voca.npy", seq)
    with caplog.at_level(logging.WARNING):
        code = run_cli(monkeypatch, ["export", "--format", fmt, "--in", str(tmp_path / "voca.npy"),
                                     "--out", str(tmp_path / "out"), "--prefix", "clip"])
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "point clouds" in warnings[0] and "FLAME_sample.ply" in warnings[0]
    assert "no faces" in capsys.readouterr().out
    path = tmp_path / "out" / f"clip_00001.{fmt}"
    if fmt == "ply":
        text = path.read_bytes()
        assert b"element face" not in text.split(b"end_header")[0]
        verts, _ = io.load_ply(path)
    else:
        verts, faces = read_obj(path)
        assert faces.size == 0
    np.testing.assert_array_equal(verts.astype(np.float32), seq[1].reshape(-1, 3))


def test_faces_from_a_template_mesh(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    template = rng.normal(0, 0.1, size=(FLAME_N_VERTICES, 3)).astype(np.float32)
    tris = np.stack([np.arange(0, 3000), np.arange(1, 3001), np.arange(2, 3002)], axis=1)
    write_ply(tmp_path / "FLAME_sample.ply", template, tris)
    faces, source = resolve_faces(FLAME_N_VERTICES, faces_mesh=tmp_path / "FLAME_sample.ply")
    np.testing.assert_array_equal(faces, tris)
    assert "3000 triangles" in source
    np.save(tmp_path / "seq.npy", template[None])
    code = run_cli(monkeypatch, ["export", "--format", "ply", "--in", str(tmp_path / "seq.npy"), "--out",
                                 str(tmp_path / "out"), "--faces", str(tmp_path / "FLAME_sample.ply")])
    assert code == 0
    verts, read_faces = io.load_ply(tmp_path / "out" / "00000.ply")
    np.testing.assert_array_equal(read_faces, tris)
    np.testing.assert_array_equal(verts.astype(np.float32), template)


def test_stride_names_files_by_input_frame(synth, tmp_path):
    topo, seq = synth
    paths = export_sequence(seq, tmp_path, "ply", topo.faces, stride=2)
    assert [p.name for p in paths] == ["00000.ply", "00002.ply", "00004.ply"]
    verts, _ = io.load_ply(paths[1])
    np.testing.assert_array_equal(verts.astype(np.float32), seq[2])


def test_a_folder_holding_another_exports_frames_is_refused(synth, tmp_path):
    """Frames of an export with another stride (or of a longer sequence) would mix with this one's; the same
    export again overwrites its own frames, and another prefix or format shares the folder."""
    from p3d.errors import InputError

    topo, seq = synth
    export_sequence(seq, tmp_path, "obj", topo.faces, stride=1)
    with pytest.raises(InputError, match=r"already holds 2 .obj frame\(s\) .* \(e.g. 00001.obj"):
        export_sequence(seq, tmp_path, "obj", topo.faces, stride=2)
    assert len(export_sequence(seq, tmp_path, "obj", topo.faces, stride=1)) == 5  # the same export again
    export_sequence(seq[:3], tmp_path, "obj", topo.faces, prefix="gt")  # another prefix
    export_sequence(seq, tmp_path, "ply", topo.faces, stride=2)  # another format
    assert len(list(tmp_path.glob("*.obj"))) == 8 and len(list(tmp_path.glob("*.ply"))) == 3


def test_a_folder_holding_another_export_of_the_same_names_is_refused_unless_overwrite(synth, tmp_path):
    """Another sequence, or the same one as point clouds, named like the frames already there would overwrite them
    unasked (an interrupted run would leave two sequences mixed); ``overwrite`` deletes the old frames first."""
    from p3d.errors import InputError

    topo, seq = synth
    export_sequence(seq, tmp_path, "obj", topo.faces)
    before = (tmp_path / "00000.obj").read_text()
    with pytest.raises(InputError, match=r"frames of another export \(vertices differ\); --overwrite"):
        export_sequence(seq[::-1], tmp_path, "obj", topo.faces)
    with pytest.raises(InputError, match=r"frames of another export \(faces differ\)"):
        export_sequence(seq, tmp_path, "obj", None)
    assert (tmp_path / "00000.obj").read_text() == before
    paths = export_sequence(seq[:3], tmp_path, "obj", None, stride=2, overwrite=True)
    assert sorted(p.name for p in tmp_path.glob("*.obj")) == ["00000.obj", "00002.obj"] == [p.name for p in paths]
    assert io.load_json(tmp_path / "export-obj.json")["files"] == ["00000.obj", "00002.obj"]
    export_sequence(seq[:3], tmp_path, "obj", None, stride=2)  # the same export again
    (tmp_path / "export-obj.json").unlink()
    with pytest.raises(InputError, match="without a record"):
        export_sequence(seq[:3], tmp_path, "obj", None, stride=2)


def test_cli_export_into_another_export_is_one_line_exit_2_and_overwrite_replaces_it(synth, tmp_path, monkeypatch,
                                                                                       capsys):
    topo, seq = synth
    np.save(tmp_path / "a.npy", seq)
    np.save(tmp_path / "b.npy", seq[::-1])
    argv = ["export", "--format", "ply", "--out", str(tmp_path / "out"), "--topology", "synth-face-base", "--in"]
    assert run_cli(monkeypatch, [*argv, str(tmp_path / "a.npy")]) == 0
    capsys.readouterr()
    assert run_cli(monkeypatch, [*argv, str(tmp_path / "b.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another export" in err[0]
    assert run_cli(monkeypatch, [*argv, str(tmp_path / "b.npy"), "--overwrite"]) == 0
    verts, _ = io.load_ply(tmp_path / "out" / "00000.ply")
    np.testing.assert_array_equal(verts.astype(np.float32), seq[-1])


@pytest.mark.parametrize("prefix", ["../up", "a/b", "..", "."])
def test_a_prefix_is_a_name_not_a_path(synth, tmp_path, prefix):
    from p3d.errors import InputError

    topo, seq = synth
    with pytest.raises(InputError, match="--prefix"):
        export_sequence(seq, tmp_path / "out", "ply", topo.faces, prefix=prefix)
    assert not list(tmp_path.rglob("*.ply"))


@pytest.mark.parametrize("prefix", ["a/b", ".."])
def test_the_command_refuses_a_path_prefix_before_the_point_cloud_warning(tmp_path, capsys, caplog, prefix):
    """`p3d export --prefix a/b` of a sequence without faces printed "writing point clouds" before its error line:
    the prefix is checked with the other arguments now, so bad input is the one error line."""
    from p3d.cli import main

    seq = tmp_path / "seq.npy"
    np.save(seq, np.zeros((2, 30), np.float32))  # 10 vertices: no known topology, point clouds
    assert main(["export", "--format", "obj", "--in", str(seq), "--out", str(tmp_path / "out"),
                 "--prefix", prefix]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("p3d export: error: --prefix"), err
    assert not [r.getMessage() for r in caplog.records], "a log line before the error"  # stderr outside pytest
    assert not (tmp_path / "out").exists()
@pytest.mark.parametrize("stride", [2.5, float("nan"), 0, -1, True, False, "2", None])
def test_a_bad_stride_from_python_is_one_line_input_error(stride, synth, tmp_path):
    """export_sequence(stride=2.5) was range()'s TypeError traceback ("2" and None a comparison's), True a
    stride of 1; the CLI's check (argparse reads an int) is the same function."""
    topo, seq = synth
    with pytest.raises(InputError, match=r"^--stride .*: must be an integer at least 1$"):
        export_sequence(seq, tmp_path / "out", "obj", topo.faces, stride=stride)
    assert not (tmp_path / "out").exists()
    # a whole float or a numpy integer is that integer (recorded as such: the same export again)
    assert len(export_sequence(seq[:5], tmp_path / "ok", "obj", topo.faces, stride=2.0)) == 3
    assert len(export_sequence(seq[:5], tmp_path / "ok", "obj", topo.faces, stride=np.int64(2))) == 3



@pytest.mark.parametrize("bad", [0.5, np.nan, True])
def test_faces_that_are_not_vertex_indices_are_refused(bad, synth, tmp_path):
    """Faces were cast with np.asarray(faces, dtype=np.int64): a fractional index (1.5) was truncated to another
    vertex and NaN became an arbitrary integer, written as triangles without a word; booleans were indices 0 and 1."""
    topo, seq = synth
    faces = topo.faces.astype(type(bad) if isinstance(bad, bool) else np.float64)
    faces[0, 0] = bad
    with pytest.raises(InputError, match="faces must hold integer vertex indices"):
        export_sequence(seq[:1], tmp_path / "out", "obj", faces)
    assert not (tmp_path / "out").exists()
    # whole floats are those indices
    (path,) = export_sequence(seq[:1], tmp_path / "ok", "obj", topo.faces.astype(np.float64))
    np.testing.assert_array_equal(read_obj(path)[1], topo.faces)

@pytest.mark.parametrize("case", ["missing input", "topology of other size", "faces mesh of other size", "stride 0"])
def test_bad_input_is_one_line_exit_2(case, synth, tmp_path, monkeypatch, capsys):
    topo, seq = synth
    np.save(tmp_path / "seq.npy", seq)
    argv = ["export", "--format", "obj", "--in", str(tmp_path / "seq.npy"), "--out", str(tmp_path / "out")]
    if case == "missing input":
        argv[4] = str(tmp_path / "nope.npy")
    elif case == "topology of other size":
        argv += ["--topology", "flame"]
    elif case == "faces mesh of other size":
        write_ply(tmp_path / "small.ply", np.zeros((4, 3), np.float32), np.array([[0, 1, 2], [1, 2, 3]]))
        argv += ["--faces", str(tmp_path / "small.ply")]
    else:
        argv += ["--stride", "0"]
    code = run_cli(monkeypatch, argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("p3d export: error:")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cut", ["binary, in the vertices", "binary, last byte", "ascii, in the faces"])
def test_a_truncated_faces_mesh_is_one_line_exit_2(cut, synth, tmp_path):
    """VTK's PLY reader crashed the process (segmentation fault) on a truncated binary PLY and read a truncated
    ASCII one as zeros; the file is checked against its header first. Run in a subprocess: the crash kills it."""
    import subprocess
    import sys

    topo, seq = synth
    np.save(tmp_path / "seq.npy", seq)
    mesh = tmp_path / "mesh.ply"
    if cut.startswith("binary"):
        write_ply(mesh, seq[0], topo.faces)
        data = mesh.read_bytes()
        mesh.write_bytes(data[:-1] if cut.endswith("last byte") else data[:data.index(b"end_header") + 200])
    else:
        lines = ["ply", "format ascii 1.0", f"element vertex {len(seq[0])}", "property float x", "property float y",
                 "property float z", f"element face {len(topo.faces)}", "property list uchar int vertex_indices",
                 "end_header", *(f"{x} {y} {z}" for x, y, z in seq[0]), *(f"3 {a} {b} {c}" for a, b, c in topo.faces)]
        mesh.write_text("\n".join(lines[:-len(topo.faces) // 2]) + "\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "p3d", "export", "--format", "ply", "--in", str(tmp_path / "seq.npy"),
                           "--out", str(out), "--faces", str(mesh)], capture_output=True, text=True, timeout=300)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-500:])
    assert len(err) == 1 and err[0].startswith("p3d export: error:") and "truncated" in err[0], err
    assert not out.exists()


def test_a_flat_sequence_is_exported_as_its_meshes_and_a_malformed_one_refused(synth, tmp_path):
    """``export_sequence`` took (T, V*3), the layout p3d stores sequences in, as T frames of V*3 'vertices': the PLY
    files' headers counted V*3 vertices of 3 coordinates while V*3 values followed (unreadable files), the OBJ
    writer raised a TypeError; (T, V, 2), empty and NaN arrays were written too or raised a TypeError."""
    topo, seq = synth
    flat = seq[:2].reshape(2, -1)
    for fmt in FORMATS:
        paths = export_sequence(flat, tmp_path / "flat", fmt, topo.faces)
        assert len(paths) == 2
        verts, faces = io.load_ply(paths[1]) if fmt == "ply" else read_obj(paths[1])
        np.testing.assert_array_equal(verts.astype(np.float32), seq[1])
    nan = seq[:2].copy()
    nan[1, 0, 0] = np.nan
    for bad in (seq[:2, :, :2], seq[:0], nan):
        for fmt in FORMATS:
            with pytest.raises(InputError):
                export_sequence(bad, tmp_path / "bad", fmt)
    assert not (tmp_path / "bad").exists()


def test_the_topology_option_offers_only_topologies_with_triangles():
    """`p3d export --help` offered "--topology ...: topology whose faces to use: flame, ..." though FLAME is built in
    without triangles (p3d ships none): `--topology flame` writes point clouds with a warning. Every built-in name
    its help offers as a source of triangles has them."""
    import re

    from p3d.cli import _subparsers, build_parser
    from p3d.topology import _builtin_topologies, load_topology

    command = next(p for p in _subparsers(build_parser()) if p.prog == "p3d export")
    export = next(a for a in command._actions if "--topology" in a.option_strings)
    offered = re.split(r"\(|\bsaved with faces\b", export.help)[0]
    names = set()
    for word in re.findall(r"[\w-]+(?:\[[^\]]+\])?", offered):
        base, _, variants = word.partition("[")
        names |= {base} | {base + v for v in variants.rstrip("]").split("|") if v}
    names &= set(_builtin_topologies())
    assert names, export.help
    assert all(load_topology(n).faces is not None for n in names), sorted(names)


def test_frame_names_sort_in_frame_order_past_99999_frames(tmp_path):
    """Zero-padded to the widest frame number, so the files list in frame order: frame 100000 of a 100001-frame
    sequence is 100000.ply and frame 0 is 000000.ply (was 00000.ply, one digit shorter)."""
    v = np.zeros((100_001, 1, 3), np.float32)
    names = [p.name for p in export_sequence(v, tmp_path / "o", "ply", stride=100_000)]
    assert names == ["000000.ply", "100000.ply"] == sorted(names)


@pytest.mark.parametrize("shape", [(2, 4), (6,)])
def test_faces_that_are_not_triangles_are_refused_before_writing(shape, tmp_path):
    v = np.zeros((2, 6, 3), np.float32)
    with pytest.raises(InputError, match=r"\(F, 3\) triangles"):
        export_sequence(v, tmp_path / "o", "ply", np.zeros(shape, np.int64))
    assert not (tmp_path / "o").exists()
