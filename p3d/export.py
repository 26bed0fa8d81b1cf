"""``p3d export``: write a vertex sequence as one mesh file per frame (OBJ or PLY), for Blender, MeshLab, ...

Usage::

    p3d export --format obj|ply --in SEQ.npy --out DIR [--topology NAME|PATH] [--faces MESH.ply]
               [--stride N] [--prefix NAME] [--overwrite]

``SEQ.npy``: (T, V*3) or (T, V, 3) absolute positions (units kept as stored; metres for FLAME).
Frame ``t`` goes to ``DIR/[NAME_]ttttt.obj`` (``t`` the frame number in the input, zero-padded to 5 digits or
as many as the last frame needs, so ``--stride 2`` of 60 fps VOCASET meshes writes frames 0, 2, 4, ...).

Triangles come from, in this order:

1. ``--faces MESH``: a mesh file with the same vertex count (``FLAME_sample.ply`` from
   ``TimoBolkart/voca/template`` for FLAME / VOCASET), read with :func:`p3d.io.load_ply`;
2. ``--topology``: a topology that knows its faces (the built-in synthetic faces ``synth-face``,
   ``synth-face-base``, ``synth-face-dense``, or a topology ``.npz`` saved with faces);
3. otherwise none: p3d ships no FLAME triangles (the FLAME assets are licensed), so the frames are
   written as point clouds (OBJ ``v`` lines only, PLY with a vertex element only) and a warning says
   how to get triangles.

PLY files are binary little-endian (``float`` coordinates for float32 input, ``double`` otherwise,
so coordinates are stored exactly; note that VTK, hence :func:`p3d.io.load_ply`, reads PLY coordinates
back at float32 precision); OBJ coordinates are printed with enough digits to read back
bit-exactly (9 significant digits for float32, 17 for float64). Every file is written atomically.
``DIR/[NAME_]export-FORMAT.json`` records what an export wrote (the SHA-256 of the vertices and of the
triangles, the stride, the frame files): a folder that holds frames of another export with the same prefix
and format (another sequence, faces or point clouds, another length or ``--stride``), or such frames without
a record, is refused rather than overwritten or mixed with this one; ``--overwrite`` deletes that export's
frames first. The same export again rewrites its frames; exports with another prefix or format share the
folder. ``--prefix`` is a name, not a path.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError, whole_number

log = logging.getLogger(__name__)

FORMATS = ("obj", "ply")


def export_record_name(fmt: str, prefix: str = "") -> str:
    """The file in the output folder that records the export of this format and prefix."""
    return f"{prefix + '_' if prefix else ''}export-{fmt}.json"


def _sha256(array: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Faces
# ---------------------------------------------------------------------------------------------
def resolve_faces(
    n_vertices: int,
    *,
    topology: Any | None = None,
    faces_mesh: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray | None, str]:
    """Triangles (F, 3) int64 for meshes of ``n_vertices`` vertices, and where they came from.

    ``faces_mesh`` (a mesh file) wins over ``topology`` (a name, path or Topology, see
    :func:`p3d.topology.load_topology`). Without either, a 5023-vertex sequence is taken as FLAME.
    Returns ``(None, reason)`` when no triangles are known (the caller writes point clouds).
    """
    from p3d.topology import FLAME_N_VERTICES, load_topology

    if faces_mesh is not None:
        from p3d.io import load_ply

        verts, faces = load_ply(faces_mesh)
        if len(verts) != n_vertices:
            raise InputError(f"{faces_mesh}: mesh has {len(verts)} vertices, the sequence {n_vertices}; "
                             "give the template mesh of the sequence's topology")
        if len(faces) == 0:
            raise InputError(f"{faces_mesh}: mesh holds no faces")
        return faces.astype(np.int64), f"{len(faces)} triangles from {faces_mesh}"
    if topology is None:
        if n_vertices != FLAME_N_VERTICES:
            return None, (f"no faces known for {n_vertices}-vertex meshes; give --topology (e.g. synth-face) "
                          "or --faces MESH.ply")
        topology = "flame"
    topo = load_topology(topology)
    if topo.n_vertices != n_vertices:
        raise InputError(f"topology {topo.name!r} has {topo.n_vertices} vertices, the sequence {n_vertices}")
    if topo.faces is None:
        hint = " (FLAME_sample.ply from TimoBolkart/voca/template)" if topo.name == "flame" else ""
        return None, f"topology {topo.name!r} has no faces; give --faces MESH.ply{hint} for triangles"
    return topo.faces, f"{len(topo.faces)} triangles of topology {topo.name!r}"


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------
def _coordinate_dtype(vertices: np.ndarray) -> np.dtype:
    return np.dtype("<f4") if vertices.dtype == np.float32 else np.dtype("<f8")


def write_ply(path: str | os.PathLike[str], vertices: np.ndarray, faces: np.ndarray | None = None) -> None:
    """One mesh (or point cloud when ``faces`` is None) as binary little-endian PLY, atomically."""
    from p3d.atomic import atomic_open

    v = np.asarray(vertices)
    dtype = _coordinate_dtype(v)
    prop = "float" if dtype == np.dtype("<f4") else "double"
    header = ["ply", "format binary_little_endian 1.0", "comment written by p3d export",
              f"element vertex {len(v)}", f"property {prop} x", f"property {prop} y", f"property {prop} z"]
    if faces is not None:
        header += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    header.append("end_header")
    with atomic_open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(np.ascontiguousarray(v, dtype=dtype).tobytes())
        if faces is not None:
            rec = np.empty(len(faces), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
            rec["n"] = 3
            rec["idx"] = faces
            fh.write(rec.tobytes())


def write_obj(path: str | os.PathLike[str], vertices: np.ndarray, faces: np.ndarray | None = None,
              *, face_lines: str | None = None) -> None:
    """One mesh (or point cloud when ``faces`` is None) as Wavefront OBJ text, atomically.

    ``face_lines``: the ``f`` lines already formatted (:func:`obj_face_lines`), to reuse across frames.
    """
    from p3d.atomic import atomic_open

    v = np.asarray(vertices)
    digits = 9 if v.dtype == np.float32 else 17
    if face_lines is None and faces is not None:
        face_lines = obj_face_lines(faces)
    vertex_lines = (f"v %.{digits}g %.{digits}g %.{digits}g\n" * len(v)) % tuple(v.ravel().tolist())
    with atomic_open(path, "w", encoding="ascii") as fh:
        fh.write("# written by p3d export\n")
        fh.write(vertex_lines)
        if face_lines:
            fh.write(face_lines)


def obj_face_lines(faces: np.ndarray) -> str:
    """OBJ ``f`` lines (1-based indices) for (F, 3) triangles."""
    f = np.asarray(faces, dtype=np.int64) + 1
    return ("f %d %d %d\n" * len(f)) % tuple(f.ravel().tolist())


def check_stride(stride: object) -> int:
    """``stride`` (every N-th frame) as an int >= 1: a Python or numpy integer, or a float without a fraction
    (2.0 is 2); InputError for anything else (2.5 and NaN were range()'s TypeError traceback, text and None
    a comparison's, True a stride of 1)."""
    whole = whole_number(stride, 1)
    if whole is None:
        raise InputError(f"--stride {stride!r}: must be an integer at least 1")
    return whole


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is a file name prefix (``""`` for none); InputError for a path (``a/b``, ``..``): the files
    go into the output folder."""
    if any(sep in prefix for sep in filter(None, ("/", os.sep, os.altsep))) or prefix in (".", ".."):
        raise InputError(f"--prefix {prefix!r}: a file name prefix, not a path (the files go into --out)")
    return prefix


def export_sequence(
    vertices: np.ndarray,
    out_dir: str | os.PathLike[str],
    fmt: str,
    faces: np.ndarray | None = None,
    *,
    stride: int = 1,
    prefix: str = "",
    overwrite: bool = False,
    input_name: str | None = None,
) -> list[Path]:
    """Write frames ``0, stride, 2*stride, ...`` of ``vertices`` ((T, V, 3) or (T, V*3), finite) to ``out_dir``;
    returns the paths.

    ``prefix`` is a file name prefix, never a path. :func:`export_record_name` records the export (the SHA-256
    of ``vertices`` and ``faces``, format, prefix, stride, the files; ``input_name``, the input file, for the
    reader only). A folder that already holds frames named like this export's (the same prefix and format) of
    another export (another sequence, faces, length or stride), or without a record, is refused before anything
    is written: the two would mix into one sequence, or the other would be lost unasked. With ``overwrite`` those
    frames are deleted first and the record is written last, so an interrupted overwrite is never taken for this
    export. Re-running the same export (or finishing an interrupted one) overwrites its own frames.
    """
    import re

    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    stride = check_stride(stride)
    check_prefix(prefix)
    from p3d.io import as_frames

    # (T, V*3) as p3d stores sequences, checked: a (T, V*3) or (T, V, 2) array was written frame by frame as
    # PLY files whose header counts V*3 (V) vertices of 3 coordinates that the data did not hold
    v = as_frames(vertices, what=input_name or "vertices")
    if faces is not None:
        from p3d.topology import vertex_indices

        # vertex indices: integers, or floats without a fraction (1.5 was truncated to 1, a silently other triangle)
        faces = vertex_indices(faces, v.shape[1], "faces")
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise InputError(f"faces must be (F, 3) triangles, got shape {faces.shape}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    width = max(5, len(str(len(v) - 1)))
    stem = prefix + "_" if prefix else ""
    names = [f"{stem}{t:0{width}d}.{fmt}" for t in range(0, len(v), stride)]
    source = {"format": fmt, "prefix": prefix, "stride": stride,
              "vertices": {"shape": list(v.shape), "dtype": v.dtype.str, "sha256": _sha256(v)},
              "faces": None if faces is None else _sha256(faces)}
    record = out / export_record_name(fmt, prefix)
    frame_name = re.compile(rf"{re.escape(stem)}\d+\.{fmt}")
    present = sorted(p.name for p in out.iterdir() if frame_name.fullmatch(p.name)) if out.is_dir() else []
    again = "--overwrite deletes them first, or give another --out or --prefix"
    if overwrite:
        record.unlink(missing_ok=True)
        for name in present:
            (out / name).unlink()
    elif present:
        stale = sorted(set(present) - set(names))
        if stale:
            raise InputError(f"{out}: already holds {len(stale)} .{fmt} frame(s) named like this export's that it "
                             f"would not overwrite (e.g. {stale[0]}: another export's length or --stride); {again}")
        if not record.is_file():
            raise InputError(f"{out}: holds .{fmt} frames named like this export's without a record of the export "
                             f"that wrote them ({record.name}); {again}")
        from p3d.io import load_json

        recorded = load_json(record).get("source", {})
        changed = [k for k in dict.fromkeys([*recorded, *source]) if recorded.get(k) != source.get(k)]
        if changed:
            raise InputError(f"{out}: holds the .{fmt} frames of another export ({', '.join(changed)} differ); "
                             f"{again}")
    from p3d.atomic import write_json

    content = {"source": source, "input": input_name, "files": names}
    if not overwrite:
        write_json(record, content)
    face_lines = obj_face_lines(faces) if fmt == "obj" and faces is not None else None
    paths = []
    for t, name in zip(range(0, len(v), stride), names):
        path = out / name
        if fmt == "ply":
            write_ply(path, v[t], faces)
        else:
            write_obj(path, v[t], faces, face_lines=face_lines)
        paths.append(path)
    if overwrite:
        write_json(record, content)
    return paths


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    from p3d.cli import help_text

    p = subparsers.add_parser("export", help="write a vertex sequence as one OBJ/PLY mesh per frame",
                              description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", choices=FORMATS, required=True, help="mesh file format")
    p.add_argument("--in", dest="input", type=Path, required=True, metavar="SEQ.npy",
                   help="vertex sequence (T, V*3) or (T, V, 3)")
    p.add_argument("--out", type=Path, required=True, help="output folder (one file per frame)")
    p.add_argument("--topology", help="topology whose triangles to use: synth-face[-base|-dense] or a topology .npz "
                                      "saved with faces (flame has none: give --faces FLAME_sample.ply)")
    p.add_argument("--faces", "--template", dest="faces", type=Path, metavar="MESH.ply",
                   help="template mesh with the sequence's vertex count whose triangles to use "
                        "(FLAME_sample.ply for FLAME/VOCASET)")
    p.add_argument("--stride", type=int, default=1, help="write every N-th frame (default 1)")
    p.add_argument("--prefix", default="", help="file name prefix (files are [PREFIX_]00000.EXT)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier export of the same prefix and format (its frames are deleted first)")
    p.set_defaults(func=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    from p3d.atomic import check_out_dir
    from p3d.io import load_vertices

    check_stride(args.stride)
    check_prefix(args.prefix)  # before the point-cloud warning: one line on bad input
    check_out_dir(args.out)
    vertices = load_vertices(args.input)
    faces, source = resolve_faces(vertices.shape[1], topology=args.topology, faces_mesh=args.faces)
    if faces is None:
        log.warning("writing point clouds: %s", source)
    paths = export_sequence(vertices, args.out, args.format, faces, stride=args.stride, prefix=args.prefix,
                            overwrite=args.overwrite, input_name=str(args.input))
    what = source if faces is not None else "point clouds, no faces"
    print(f"export: {len(paths)} .{args.format} file(s) -> {args.out} ({what})")
    return 0

