"""Reading the real data formats safely: vertex sequences, pickles, audio, PLY, clip names.

Formats (those of VOCASET as processed by FaceFormer / CodeTalker / SelfTalk, and of MEAD-3D):

- vertex sequences: ``.npy`` of shape (T, V*3) or (T, V, 3), absolute positions (metres for FLAME);
- ``templates.pkl``: ``{subject: (V, 3) array}`` (a Python pickle);
- ``FLAME_masks.pkl``: ``{region: index array}`` (a Python 2 pickle);
- audio: ``.wav`` (any rate, mono or multi-channel);
- ``FLAME_sample.ply``: the FLAME mesh (vertices and triangles).

Every reader validates and raises :class:`p3d.errors.InputError` naming the file and the problem.
``.npy`` files are read with ``allow_pickle=False``; ``.pkl`` files with a restricted unpickler that
only admits numpy arrays, numpy scalars/dtypes and plain builtins (no code execution).
"""
from __future__ import annotations

import dataclasses
import io as _io
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError

# ---------------------------------------------------------------------------------------------
# Restricted unpickling
# ---------------------------------------------------------------------------------------------
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),  # protocol-2 pickles rebuild bytes with it (pure string encoding)
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "int"),
        ("builtins", "float"),
        ("builtins", "complex"),
        ("builtins", "str"),
        ("builtins", "bytes"),
        ("builtins", "bytearray"),
        ("builtins", "bool"),
        ("builtins", "slice"),
        ("builtins", "range"),
        ("__builtin__", "dict"),
        ("__builtin__", "list"),
        ("__builtin__", "tuple"),
        ("__builtin__", "set"),
        ("__builtin__", "int"),
        ("__builtin__", "float"),
        ("__builtin__", "str"),
        ("__builtin__", "bool"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
        ("__builtin__", "object"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a class or function outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only numpy arrays/scalars/dtypes and plain builtin containers.

    ``copyreg._reconstructor`` is admitted only to rebuild ``numpy.ndarray`` (Python 2 pickles of
    arrays use it); any other class or function raises :class:`pickle.UnpicklingError`.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(f"refusing to load global {module}.{name} (not a numpy array or builtin)")
        if (module, name) in {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")}:
            import copyreg

            def _reconstructor(cls: type, base: type, state: Any) -> Any:
                if cls is not np.ndarray:
                    raise UnsafePickleError(f"refusing to reconstruct {cls!r}")
                return copyreg._reconstructor(cls, base, state)  # type: ignore[attr-defined]

            return _reconstructor
        return super().find_class(module, name)


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Load a ``.pkl`` data file with :class:`RestrictedUnpickler` (Python 2 pickles: latin1)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    try:
        return RestrictedUnpickler(_io.BytesIO(data), encoding="latin1").load()
    except UnsafePickleError as exc:
        raise InputError(f"{path}: not a safe data pickle ({exc})") from None
    except Exception as exc:  # EOFError, ValueError, ... on truncated or corrupt files
        raise InputError(f"{path}: corrupt or unreadable pickle ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------------------------------------
# Vertex sequences and templates
# ---------------------------------------------------------------------------------------------
def as_frames(
    array: np.ndarray,
    n_vertices: int | None = None,
    *,
    what: str = "vertices",
) -> np.ndarray:
    """Validate a vertex sequence and return it as (T, V, 3) (a view, dtype preserved).

    Accepts (T, V*3) or (T, V, 3). ``n_vertices`` (if given) must match. Rejects NaN/inf, empty
    sequences and non-numeric arrays. ``what`` names the data in error messages (e.g. a file path).
    """
    a = np.asarray(array)
    if a.dtype.kind not in "fiu":
        raise InputError(f"{what}: expected a numeric array, found dtype {a.dtype}")
    if a.ndim == 2:
        if a.shape[1] % 3:
            raise InputError(f"{what}: shape {a.shape} is not (T, V*3): {a.shape[1]} is not a multiple of 3")
        a = a.reshape(a.shape[0], a.shape[1] // 3, 3)
    elif a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"{what}: shape {a.shape}, expected (T, V*3) or (T, V, 3)")
    if n_vertices is not None and a.shape[1] != n_vertices:
        raise InputError(
            f"{what}: shape {tuple(np.asarray(array).shape)} has {a.shape[1]} vertices per frame, "
            f"expected {n_vertices} (shape (T, {n_vertices * 3}) or (T, {n_vertices}, 3))"
        )
    if a.shape[0] == 0:
        raise InputError(f"{what}: the sequence has no frames")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).any(axis=(1, 2)).sum())
        raise InputError(f"{what}: {bad} frame(s) hold NaN or inf values")
    return a


def load_vertices(
    path: str | os.PathLike[str],
    topology: Any | None = None,
    n_vertices: int | None = None,
) -> np.ndarray:
    """Load a vertex sequence ``.npy`` as (T, V, 3), validated (dtype preserved).

    Args:
        path: ``.npy`` file of shape (T, V*3) or (T, V, 3).
        topology: a :class:`p3d.topology.Topology`; its ``n_vertices`` is enforced.
        n_vertices: enforce this vertex count (alternative to ``topology``).
    """
    path = Path(path)
    if topology is not None:
        n_vertices = topology.n_vertices
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if magic != b"\x93NUMPY":
        raise InputError(f"{path}: not a readable .npy array (no NumPy header)")
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise InputError(f"{path}: holds Python objects, not a numeric array (refused for safety)") from None
        raise InputError(f"{path}: not a readable .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(array, np.ndarray):  # np.load of a .npz returns an NpzFile
        raise InputError(f"{path}: expected a single .npy array")
    return as_frames(array, n_vertices, what=str(path))


def load_templates(path: str | os.PathLike[str], n_vertices: int | None = None) -> dict[str, np.ndarray]:
    """Load ``templates.pkl``: ``{subject: (V, 3) float array}`` (restricted unpickler, validated)."""
    data = load_pickle(path)
    if not isinstance(data, dict) or not data:
        raise InputError(f"{path}: expected a non-empty dict of subject -> (V, 3) template")
    out: dict[str, np.ndarray] = {}
    for key, value in data.items():
        arr = as_frames(np.asarray(value).reshape(1, -1), n_vertices, what=f"{path}[{key!r}]")[0]
        out[str(key)] = arr
    return out


def load_ply(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh from a PLY file (ASCII or binary): (vertices (V, 3) float64, faces (F, 3) int64)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    try:
        mesh = pv.read(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable PLY mesh ({exc})") from None
    if mesh.n_points == 0:
        raise InputError(f"{path}: PLY holds no vertices")
    faces = mesh.faces.reshape(-1, 4) if mesh.n_cells and mesh.is_all_triangles else None
    if faces is None:
        mesh = mesh.triangulate()
        faces = mesh.faces.reshape(-1, 4)
    return np.asarray(mesh.points, dtype=np.float64), faces[:, 1:].astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------------------------
def load_audio(path: str | os.PathLike[str], sr: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file: (samples float32, sample_rate).

    Samples are in [-1, 1] (soundfile's float scaling: int16 PCM / 32768). ``mono=True`` averages the
    channels, returning (n,); ``mono=False`` returns (n, channels). ``sr`` resamples (soxr via librosa).
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: audio file not found")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile.LibsndfileError and friends
        raise InputError(f"{path}: not a readable audio file ({exc})") from None
    if data.shape[0] == 0:
        raise InputError(f"{path}: audio file holds no samples")
    if not np.isfinite(data).all():
        raise InputError(f"{path}: audio holds NaN or inf samples")
    if sr is not None and sr != rate:
        import librosa

        data = librosa.resample(data.T, orig_sr=rate, target_sr=sr).T.astype(np.float32)
        rate = sr
    if mono:
        return data.mean(axis=1).astype(np.float32), int(rate)
    return data, int(rate)


# ---------------------------------------------------------------------------------------------
# Clip names
# ---------------------------------------------------------------------------------------------
_MEAD = re.compile(
    r"^(?P<identity>[^_]+)_(?P<emotion>[^_]+)_level_(?P<level>\d+)_(?P<clip>[^_]+?)(?:_condition_(?P<condition>.+))?$"
)
_VOCASET = re.compile(r"^(?P<identity>.+?)_(?P<sentence>sentence\d+)(?:_condition_(?P<condition>.+))?$")
_GENERIC = re.compile(r"^(?P<base>.+?)(?:_condition_(?P<condition>.+))?$")


@dataclasses.dataclass(frozen=True)
class ClipName:
    """What a prediction's (or GT's) file stem says.

    ``gt_stem`` is the stem of the ground-truth file it is compared with (the name without its
    ``_condition_<subject>`` suffix); ``identity`` is the speaker of the clip (the test subject),
    ``condition`` the training identity the prediction was conditioned on (None if absent, e.g.
    SelfTalk outputs), ``level`` the MEAD intensity level (None outside MEAD).
    """

    stem: str
    gt_stem: str
    identity: str
    condition: str | None = None
    level: int | None = None
    emotion: str | None = None
    sentence: str | None = None


def parse_clip_name(stem: str, dataset: str = "auto") -> ClipName:
    """Parse a clip file stem (no extension) in the VOCASET, MEAD or generic convention.

    - ``vocaset``: ``<subject>_sentenceNN[_condition_<train_subject>]``
      (e.g. ``FaceTalk_170731_00024_TA_sentence21_condition_FaceTalk_170725_00137_TA``);
    - ``mead``: ``{id}_{emotion}_level_{n}_{clip}[_condition_{cond}]`` (e.g. ``M003_angry_level_3_001``);
    - ``generic``: ``<name>[_condition_<cond>]``; identity = the part before the first ``_``;
    - ``auto``: MEAD if it matches, else VOCASET, else generic.
    """
    stem = Path(stem).name
    if stem.endswith(".npy"):
        stem = stem[:-4]
    if dataset not in {"auto", "vocaset", "mead", "generic"}:
        raise InputError(f"unknown dataset convention {dataset!r} (vocaset, mead, generic or auto)")
    if dataset in {"auto", "mead"}:
        m = _MEAD.match(stem)
        if m:
            gt = stem.split("_condition_")[0]
            return ClipName(stem, gt, m["identity"], m["condition"], int(m["level"]), m["emotion"])
        if dataset == "mead":
            raise InputError(f"{stem}: not a MEAD-style name ({{id}}_{{emotion}}_level_{{n}}_{{clip}}[_condition_{{cond}}])")
    if dataset in {"auto", "vocaset"}:
        m = _VOCASET.match(stem)
        if m:
            gt = f"{m['identity']}_{m['sentence']}"
            return ClipName(stem, gt, m["identity"], m["condition"], sentence=m["sentence"])
        if dataset == "vocaset":
            raise InputError(f"{stem}: not a VOCASET-style name (<subject>_sentenceNN[_condition_<subject>])")
    m = _GENERIC.match(stem)
    assert m is not None
    base = m["base"]
    return ClipName(stem, base, base.split("_")[0], m["condition"])


def find_npy(folder: str | os.PathLike[str], what: str = "folder") -> list[Path]:
    """Sorted ``*.npy`` files of a folder; InputError if it is missing or holds none."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: {what} not found")
    if not folder.is_dir():
        raise InputError(f"{folder}: {what} is not a directory")
    files = sorted(p for p in folder.glob("*.npy") if p.is_file())
    if not files:
        raise InputError(f"{folder}: {what} holds no .npy files")
    return files


def vertices_dir(root: str | os.PathLike[str]) -> Path:
    """The folder holding GT vertex files: ``root/vertices_npy`` if present (processed VOCASET), else ``root``."""
    root = Path(root)
    sub = root / "vertices_npy"
    return sub if sub.is_dir() else root


def audio_dir(root: str | os.PathLike[str]) -> Path:
    """The folder holding wav files: ``root/wav`` if present (processed VOCASET), else ``root``."""
    root = Path(root)
    sub = root / "wav"
    return sub if sub.is_dir() else root
