#!/usr/bin/env python
"""Extract the MediaPipe canonical face mesh (Apache-2.0) into ``p3d/assets/mediapipe_face.npz``.

The canonical face mesh is not shipped in any ``mediapipe`` wheel, but the npm package
``@mediapipe/face_mesh@0.4.1657299874`` (Apache-2.0) embeds it: the file
``geometry_pipeline_metadata_landmarks.binarypb`` lies inside ``face_mesh_solution_packed_assets.data``
at the byte range listed in ``face_mesh_solution_packed_assets_loader.js``. It is a protobuf
``GeometryPipelineMetadata`` (mediapipe/modules/face_geometry/protos/geometry_pipeline_metadata.proto):

- field 1 ``canonical_mesh``: a ``Mesh3d`` (mediapipe/modules/face_geometry/protos/mesh_3d.proto) with
  field 1 ``vertex_type`` (0 = VERTEX_PT: x y z u v per vertex), field 2 ``primitive_type`` (0 = TRIANGLE),
  field 3 ``vertex_buffer`` (packed float32), field 4 ``index_buffer`` (packed uint32).

The wire format is decoded by hand (varints and length-delimited fields only), so no protobuf
dependency is needed. Result: 468 vertices (cm), 468 UVs, 898 triangles.

Usage::

    python scripts/extract_mediapipe_mesh.py [--out p3d/assets/mediapipe_face.npz]

Needs ``npm`` on PATH (it runs ``npm pack``, which fetches the tarball from the npm registry). The
tarball's sha256 is checked against :data:`TARBALL_SHA256`; the sha256 of the extracted ``.binarypb``
against :data:`BINARYPB_SHA256`. The output is written atomically and its sha256 is printed.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "@mediapipe/face_mesh"
VERSION = "0.4.1657299874"
TARBALL_NAME = "mediapipe-face_mesh-0.4.1657299874.tgz"
#: sha256 of the npm tarball (computed once with ``npm pack`` and pinned here).
TARBALL_SHA256 = "c08a7e0742a326285da666cf81d77c8b6f3a181a2ee948cadaf166008e0d3bc7"
#: sha256 of the extracted ``geometry_pipeline_metadata_landmarks.binarypb``.
BINARYPB_SHA256 = "bdbcda96dfcb7da883da124aaa2c55dee49770d934f0fcc71747f8c21bdc75b4"
DATA_MEMBER = "package/face_mesh_solution_packed_assets.data"
LOADER_MEMBER = "package/face_mesh_solution_packed_assets_loader.js"
BINARYPB_NAME = "geometry_pipeline_metadata_landmarks.binarypb"
N_VERTICES = 468
N_TRIANGLES = 898
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "p3d" / "assets" / "mediapipe_face.npz"


# -- protobuf wire format (just what Mesh3d needs) ---------------------------------------------
def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; return (value, next position)."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def parse_fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """Split a protobuf message into (field number, wire type, value) triples.

    Wire types: 0 varint (int value), 1 fixed64 and 5 fixed32 (raw bytes), 2 length-delimited (bytes).
    """
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
            out.append((field, wire, value))
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError(f"field {field}: length {length} runs past the end")
            out.append((field, wire, buf[pos:pos + length]))
            pos += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out.append((field, wire, buf[pos:pos + size]))
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire} (field {field})")
    return out


def decode_packed_varints(buf: bytes) -> list[int]:
    values, pos = [], 0
    while pos < len(buf):
        value, pos = read_varint(buf, pos)
        values.append(value)
    return values


def decode_mesh3d(binarypb: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode ``GeometryPipelineMetadata.canonical_mesh``: (vertices (V,3) cm, uv (V,2), faces (F,3))."""
    meshes = [v for f, w, v in parse_fields(binarypb) if f == 1 and w == 2]
    if len(meshes) != 1:
        raise ValueError(f"expected one canonical_mesh (field 1), found {len(meshes)}")
    floats: list[float] = []
    indices: list[int] = []
    vertex_type = primitive_type = 0  # proto2 defaults: VERTEX_PT, TRIANGLE
    for field, wire, value in parse_fields(meshes[0]):
        if field == 1 and wire == 0:
            vertex_type = int(value)
        elif field == 2 and wire == 0:
            primitive_type = int(value)
        elif field == 3 and wire == 2:  # packed float32
            assert isinstance(value, bytes)
            floats.extend(struct.unpack(f"<{len(value) // 4}f", value))
        elif field == 3 and wire == 5:  # unpacked float32 (allowed by the spec)
            assert isinstance(value, bytes)
            floats.extend(struct.unpack("<f", value))
        elif field == 4 and wire == 2:  # packed uint32 varints
            assert isinstance(value, bytes)
            indices.extend(decode_packed_varints(value))
        elif field == 4 and wire == 0:
            indices.append(int(value))
    if vertex_type != 0 or primitive_type != 0:
        raise ValueError(f"expected VERTEX_PT/TRIANGLE, found vertex_type={vertex_type}, "
                         f"primitive_type={primitive_type}")
    if len(floats) % 5 or len(indices) % 3:
        raise ValueError(f"buffer sizes {len(floats)} floats / {len(indices)} indices are not 5k / 3k")
    vt = np.asarray(floats, dtype=np.float32).reshape(-1, 5)
    faces = np.asarray(indices, dtype=np.int32).reshape(-1, 3)
    return vt[:, :3].astype(np.float64), vt[:, 3:].astype(np.float64), faces


# -- npm tarball ---------------------------------------------------------------------------------
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_tarball(workdir: Path) -> bytes:
    """Run ``npm pack`` in ``workdir`` and return the tarball bytes (sha256-checked)."""
    proc = subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}"], cwd=workdir,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"npm pack {PACKAGE}@{VERSION} failed ({proc.returncode}):\n{proc.stderr}")
    data = (workdir / TARBALL_NAME).read_bytes()
    digest = sha256_bytes(data)
    if digest != TARBALL_SHA256:
        raise SystemExit(f"{TARBALL_NAME}: sha256 {digest} does not match the pinned {TARBALL_SHA256}")
    return data


def extract_binarypb(tarball: bytes) -> bytes:
    """Cut ``geometry_pipeline_metadata_landmarks.binarypb`` out of the packed assets."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        loader = tar.extractfile(LOADER_MEMBER).read().decode("utf-8")  # type: ignore[union-attr]
        data = tar.extractfile(DATA_MEMBER).read()  # type: ignore[union-attr]
    match = re.search(r'\{"filename":\s*"[^"]*/' + re.escape(BINARYPB_NAME) + r'"[^}]*\}', loader)
    if match is None:
        raise SystemExit(f"{LOADER_MEMBER}: no entry for {BINARYPB_NAME}")
    entry = json.loads(match.group(0))
    blob = data[int(entry["start"]):int(entry["end"])]
    digest = sha256_bytes(blob)
    if digest != BINARYPB_SHA256:
        raise SystemExit(f"{BINARYPB_NAME}: sha256 {digest} does not match the pinned {BINARYPB_SHA256}")
    return blob


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz (default: %(default)s)")
    parser.add_argument("--tarball", type=Path, default=None,
                        help="use this already downloaded tarball instead of running npm pack")
    args = parser.parse_args(argv)

    if args.tarball is not None:
        tarball = args.tarball.read_bytes()
        if sha256_bytes(tarball) != TARBALL_SHA256:
            raise SystemExit(f"{args.tarball}: sha256 does not match the pinned {TARBALL_SHA256}")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            tarball = fetch_tarball(Path(tmp))
    vertices, uv, faces = decode_mesh3d(extract_binarypb(tarball))
    if vertices.shape != (N_VERTICES, 3) or faces.shape != (N_TRIANGLES, 3):
        raise SystemExit(f"unexpected mesh: {vertices.shape[0]} vertices, {faces.shape[0]} triangles")
    if faces.min() < 0 or faces.max() >= N_VERTICES:
        raise SystemExit("triangle indices out of range")

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from p3d.atomic import atomic_open

    with atomic_open(args.out, "wb") as fh:
        # np.savez writes zip entries with a fixed 1980 timestamp; stored (not deflated) so the bytes
        # do not depend on the zlib build either: the output is byte-reproducible (~30 kB).
        np.savez(fh, vertices=vertices, uv=uv, faces=faces)
    print(f"tarball sha256   {TARBALL_SHA256}")
    print(f"binarypb sha256  {BINARYPB_SHA256}")
    print(f"wrote {args.out}: {len(vertices)} vertices (cm), {len(faces)} triangles")
    print(f"sha256 {sha256_bytes(args.out.read_bytes())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
