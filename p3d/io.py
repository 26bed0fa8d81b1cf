"""Reading the real data formats safely: vertex sequences, pickles, audio, PLY, clip names.

Formats (those of VOCASET as processed by FaceFormer / CodeTalker / SelfTalk, and of MEAD-3D):

- vertex sequences: ``.npy`` of shape (T, V*3) or (T, V, 3), absolute positions (metres for FLAME);
- ``templates.pkl``: ``{subject: (V, 3) array}`` (a Python pickle);
- ``FLAME_masks.pkl``: ``{region: index array}`` (a Python 2 pickle);
- audio: ``.wav`` (any rate, mono or multi-channel);
- ``FLAME_sample.ply``: the FLAME mesh (vertices and triangles).
- JSON metadata (``meta.json``, a run's ``config.json``, a study manifest): :func:`load_json`.

Every reader validates and raises :class:`p3d.errors.InputError` naming the file and the problem.
``.npy`` files are read with ``allow_pickle=False`` after checking their header (a truncated file is
named as such); ``.npz`` archives member by member, with a bound on what they may expand to
(:func:`load_npz`); ``.pkl`` files with a restricted unpickler that only admits numpy arrays, numpy
scalars/dtypes and plain builtins (no code execution). Files are opened non-blocking and checked to be
regular files, so a named pipe in a data folder is an error (or, in folder discovery, skipped with a
reason) rather than a reader blocked forever. Vertex dtypes: see :func:`vertex_dtype`.
"""
from __future__ import annotations

import _compat_pickle
import dataclasses
import io as _io
import json
import logging
import math
import os
import pickle
import re
import stat
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from p3d.errors import InputError, one_line

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Opening files without blocking, and telling regular files from the rest
# ---------------------------------------------------------------------------------------------
def not_regular_reason(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file, as "is ..." / "not found" (None if it is one).

    Never opens the file (``os.stat`` only), so it is safe on named pipes.
    """
    try:
        st = os.stat(path)  # follows symbolic links
    except FileNotFoundError:
        if os.path.islink(path):
            return f"is a dangling symbolic link (its target {os.readlink(path)} does not exist)"
        return "not found"
    except OSError as exc:
        return f"cannot be inspected ({exc.strerror or exc})"
    reason = _mode_reason(st.st_mode)
    return None if reason is None else f"is {reason}"


def _mode_reason(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not a regular file"
    if stat.S_ISDIR(mode):
        return "a directory, not a file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], what: str = "file") -> IO[bytes]:
    """Open a regular file for binary reading; InputError (naming it) for anything else.

    The file is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor, so a
    named pipe (FIFO) in a data folder is refused at once instead of blocking the reader forever,
    and nothing can be swapped in between the check and the read. ``what`` names the file's role.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} {not_regular_reason(path) or 'not found'}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: {what} is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    reason = _mode_reason(os.fstat(fd).st_mode)
    if reason is not None:
        os.close(fd)
        raise InputError(f"{path}: {what} is {reason}")
    return os.fdopen(fd, "rb")


# Names a data folder may hold that are nobody's data: hidden files (``.name``, which also covers
# macOS ``._name`` forks, editors' ``.name.swp`` swap files and p3d.atomic's ``.name.tmp-XXXX``
# files being written), ``*.tmp``, ``*~`` backups and Emacs ``#name#`` autosaves.
_TEMPORARY_NAME = re.compile(r"^\.|\.tmp$|~$|^#.*#$")


def _short(exc: BaseException, limit: int = 120) -> str:
    """An exception's text on one printable line of at most ``limit`` characters (for error messages)."""
    text = " ".join(str(getattr(exc, "error_string", None) or exc).split())
    text = "".join(c if c.isascii() and c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_ignored_name(name: str) -> bool:
    """Whether a file name is a hidden or temporary file that data discovery ignores silently."""
    return bool(_TEMPORARY_NAME.search(name))


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
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a class or function outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only numpy arrays/scalars/dtypes and plain builtin containers.

    ``copyreg._reconstructor`` is admitted only to rebuild ``numpy.ndarray`` (Python 2 pickles of
    arrays use it); any other class or function raises :class:`pickle.UnpicklingError`.
    """

    #: The most elements (or bytes) a pickle may ask a constructor to create from a count alone: a pickle cannot
    #: spell out more items than it has bytes, so ``list(range(10**10))``, ``bytearray(10**10)`` or an empty
    #: object array of 10**9 entries (memory bombs of a few dozen bytes) are refused before allocating.
    max_items: int = 1 << 20
    #: The most bytes such an array may take: ``max_items`` float64 or object entries. A count within
    #: :attr:`max_items` of a wide dtype (``V1073741824``: 1 GiB each) is a memory bomb too.
    max_bytes: int = 8 << 20

    def find_class(self, module: str, name: str) -> Any:
        # Python 2's names, as protocol-2 pickles spell them (Python 2's own, and Python 3's with ``protocol=2``:
        # ``__builtin__.bytes`` for b"", so an empty array, ``__builtin__.xrange`` for range): checked as the
        # Python 3 names pickle's own ``fix_imports`` maps them to (the allow-list still decides)
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(f"refusing to load global {module}.{name} (not a numpy array or builtin)")
        if (module, name) == ("copyreg", "_reconstructor"):
            import copyreg

            def _reconstructor(cls: type, base: type, state: Any) -> Any:
                cls = getattr(cls, "__wrapped__", cls)  # the pickle's numpy.ndarray, admitted as _bounded below
                if cls is not np.ndarray:
                    raise UnsafePickleError(f"refusing to reconstruct {cls!r}")
                return copyreg._reconstructor(cls, base, state)  # type: ignore[attr-defined]

            return _reconstructor
        found = super().find_class(module, name)
        if name == "_reconstruct":  # numpy's (ndarray, shape, dtype): an empty array that BUILD then fills
            def _reconstruct(cls: type, shape: Any, dtype: Any) -> Any:
                cls = getattr(cls, "__wrapped__", cls)
                if cls is not np.ndarray:
                    raise UnsafePickleError(f"refusing to reconstruct {cls!r}")
                self._check_array(shape, dtype)
                return found(cls, shape, dtype)

            return _reconstruct
        if (module, name) in {("numpy", "ndarray"), ("builtins", "bytes"), ("builtins", "bytearray"),
                              ("builtins", "range")}:
            # called with a count (``ndarray(shape)``, ``bytes(n)``, ``range(n)``), they allocate what the file
            # does not hold; NEWOBJ (``cls.__new__``) needs a type, so a plain function refuses it too
            def _bounded(*args: Any, **kwargs: Any) -> Any:
                if found is range:
                    self._check_count(len(range(*args)), "range")
                elif found is np.ndarray:
                    self._check_array(args[0] if args else kwargs.get("shape", ()),
                                      args[1] if len(args) > 1 else kwargs.get("dtype", float))
                elif args and isinstance(args[0], (int, np.integer)):
                    raise UnsafePickleError(f"refusing {name}({args[0]}): a size, not data")
                return found(*args, **kwargs)

            _bounded.__wrapped__ = found  # type: ignore[attr-defined]
            return _bounded
        return found

    def _check_array(self, shape: Any, dtype: Any) -> None:
        """The elements of an array created from ``shape`` and ``dtype`` alone are within :attr:`max_items`, counting
        those of a subarray dtype (``('O', (1000, 1000))`` makes each element of ``shape`` a million), and its bytes
        within :attr:`max_bytes`."""
        count = math.prod(np.atleast_1d(np.asarray(shape, dtype=np.int64)).tolist())
        try:
            kind = np.dtype(dtype)
        except (TypeError, ValueError):
            kind = None  # not a dtype: numpy refuses it when called
        if kind is not None:
            self._check_count(count * math.prod(kind.shape), "array")
            if count * kind.itemsize > self.max_bytes:
                raise UnsafePickleError(f"refusing an array of {count * kind.itemsize} bytes ({count} x {kind}) "
                                        f"created from a count (at most {self.max_bytes})")
        else:
            self._check_count(count, "array")

    def _check_count(self, count: int, what: str) -> None:
        if not 0 <= count <= self.max_items:
            raise UnsafePickleError(f"refusing a {what} of {count} elements created from a count "
                                    f"(at most {self.max_items})")


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Load a ``.pkl`` data file with :class:`RestrictedUnpickler` (Python 2 pickles: latin1)."""
    path = Path(path)
    with open_regular(path, "pickle") as fh:
        try:
            data = fh.read()
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data:
        raise InputError(f"{path}: empty file (0 bytes), not a pickle")
    try:
        unpickler = RestrictedUnpickler(_io.BytesIO(data), encoding="latin1")
        unpickler.max_items = max(len(data), RestrictedUnpickler.max_items)
        return unpickler.load()
    except UnsafePickleError as exc:
        raise InputError(f"{path}: not a safe data pickle ({exc})") from None
    except Exception as exc:  # EOFError, ValueError, ... on truncated or corrupt files
        raise InputError(f"{path}: corrupt or unreadable pickle ({type(exc).__name__}: {_short(exc)})") from None


def load_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object (a dict) a metadata file holds; InputError naming the file when it is not valid JSON
    (UTF-8 text) or holds another JSON value (every p3d metadata file is an object)."""
    path = Path(path)
    with open_regular(path, "JSON file") as fh:  # missing, a folder or a named pipe: one line, never blocks
        try:
            raw = fh.read()
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        content = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, an integer of over 4300 digits
        raise InputError(f"{path}: corrupt JSON ({_short(exc)})") from None
    except RecursionError:
        raise InputError(f"{path}: corrupt JSON (nested too deeply)") from None
    if not isinstance(content, dict):
        raise InputError(f"{path}: expected a JSON object, got a JSON {type(content).__name__}")
    return content


# ---------------------------------------------------------------------------------------------
# Vertex sequences and templates
# ---------------------------------------------------------------------------------------------
def vertex_dtype(dtype: np.dtype, what: str = "vertices") -> np.dtype:
    """The native floating dtype a vertex array of ``dtype`` is read as; InputError if it is not numeric.

    Policy (vertex positions are real numbers; conversions are exact unless said otherwise):

    - float32 and float64 are kept (in native byte order: big-endian files are byte-swapped);
    - float16 becomes float32 (exact: every float16 is a float32);
    - wider floats (``longdouble``) become float64 (rounded; far below any mesh precision);
    - integers (signed or unsigned) become float64 (exact up to 2**53), with a logged warning:
      positions stored as integers are unusual (quantised, or cast from metres by mistake);
    - bool, complex, strings, dates, structured and object arrays are refused.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        if dtype.itemsize < 4:
            return np.dtype(np.float32)
        return np.dtype(np.float64) if dtype.itemsize > 8 else dtype.newbyteorder("=")
    if dtype.kind in "iu":
        return np.dtype(np.float64)
    kinds = {"b": "booleans", "c": "complex numbers", "O": "Python objects", "V": "a structured record",
             "U": "text", "S": "bytes", "M": "dates", "m": "time spans"}
    found = kinds.get(dtype.kind, "non-numeric values")
    raise InputError(f"{what}: expected a numeric array of vertex positions, found dtype {dtype} ({found}); "
                     "save real-valued positions, e.g. np.save(path, vertices.astype(np.float32))")


def as_frames(
    array: np.ndarray,
    n_vertices: int | None = None,
    *,
    what: str = "vertices",
) -> np.ndarray:
    """Validate a vertex sequence and return it as (T, V, 3) float32 or float64 (native byte order).

    Accepts (T, V*3) or (T, V, 3). ``n_vertices`` (if given) must match. Rejects NaN/inf, empty
    sequences, sequences without vertices and non-numeric arrays; other dtypes are converted as
    :func:`vertex_dtype` says (float32/float64 input is returned as a view, unchanged). ``what`` names
    the data in error messages (e.g. a file path).
    """
    a = np.asarray(array)
    target = vertex_dtype(a.dtype, what)
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
    if a.shape[1] == 0:
        raise InputError(f"{what}: shape {tuple(np.asarray(array).shape)} holds no vertices")
    if a.dtype.kind in "iu":
        log.warning("%s: vertex positions stored as integers (%s), read as float64; "
                    "check they are not truncated or in another unit", what, a.dtype)
    if a.dtype != target:
        a = a.astype(target)
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).any(axis=(1, 2)).sum())
        raise InputError(f"{what}: {bad} frame(s) hold NaN or inf values")
    return a


def _npy_header(fh: IO[bytes], path: Path | str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Read and check a ``.npy`` header: (shape, dtype, bytes of array data the header promises)."""
    if fh.read(6) != b"\x93NUMPY":
        raise InputError(f"{path}: not a readable .npy array (no NumPy header; save arrays with np.save)")
    fh.seek(0)
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:  # 2.0 and 3.0 share the layout (3.0 only allows utf-8 field names)
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise InputError(f"{path}: not a readable .npy array (corrupt header: {_short(exc)})") from None
    if dtype.hasobject:
        raise InputError(f"{path}: holds Python objects, not a numeric array (refused for safety: "
                         "pickled data can run code)")
    return tuple(shape), dtype, math.prod(shape) * dtype.itemsize


def _complete_header(fh: IO[bytes], path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """:func:`_npy_header`, and the file must hold as many data bytes as the header promises."""
    shape, dtype, n_bytes = _npy_header(fh, path)
    have = os.fstat(fh.fileno()).st_size - fh.tell()
    if have < n_bytes:
        raise InputError(f"{path}: truncated .npy file: its header promises a {dtype} array of shape "
                         f"{shape} ({n_bytes} bytes of data) but the file holds {max(have, 0)} "
                         "(incompletely written or copied?)")
    return shape, dtype


def npy_header(path: str | os.PathLike[str], what: str = "file") -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of a ``.npy`` file from its header alone, with :func:`load_npy`'s checks (regular
    file, valid header, no pickled objects, not truncated) but without reading the data."""
    path = Path(path)
    with open_regular(path, what) as fh:
        return _complete_header(fh, path)


def load_npy(path: str | os.PathLike[str], what: str = "file") -> np.ndarray:
    """Read one ``.npy`` array safely: a regular file (never blocks on a FIFO), a valid header, no
    pickled objects (``allow_pickle=False``) and as many data bytes as the header promises (a
    truncated file, e.g. an interrupted copy, is refused by name). The array is returned as stored.
    """
    path = Path(path)
    with open_regular(path, what) as fh:
        _complete_header(fh, path)
        fh.seek(0)
        try:
            array = np.load(fh, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"{path}: not a readable .npy array ({_short(exc)})") from None
    return array


#: The most bytes the members read from one ``.npz`` may expand to, unless the file itself is larger (a member
#: stored uncompressed by ``np.savez`` is never larger than its file). Deflated data can expand about 1000-fold,
#: so a compressed file of a few hundred kB could otherwise allocate gigabytes (a "zip bomb"), as
#: :attr:`RestrictedUnpickler.max_items` bounds what a pickle may create from a count alone.
NPZ_MAX_BYTES: int = 1 << 28


def load_npz(
    path: str | os.PathLike[str],
    what: str = "file",
    keys: Collection[str] | Callable[[str], bool] | None = None,
) -> dict[str, np.ndarray]:
    """Read arrays of an ``.npz`` archive (``np.savez`` / ``np.savez_compressed``) safely.

    Only the members ``keys`` selects are read (a collection of names or a predicate on a name; None: all
    ``.npy`` members), each as :func:`load_npy` reads a ``.npy``: a valid header, no pickled objects
    (``allow_pickle=False``), as many data bytes as the header promises. Before anything is decompressed, the
    uncompressed sizes the archive's directory records for those members (zipfile never reads past them) must
    total at most ``max(file size, NPZ_MAX_BYTES)`` bytes. The file must be a regular file (:func:`open_regular`).
    Anything else is a one-line :class:`InputError` naming the file and its role ``what``.
    """
    import zipfile

    path = Path(path)
    wanted: Callable[[str], bool]
    if keys is None:
        wanted = lambda name: True  # noqa: E731
    elif callable(keys):
        wanted = keys
    else:
        wanted = set(keys).__contains__
    with open_regular(path, what) as fh:
        file_bytes = os.fstat(fh.fileno()).st_size
        try:
            archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise InputError(f"{path}: not a readable {what} (not an .npz archive: {_short(exc)})") from None
        with archive:
            members = {info.filename[:-4]: info for info in archive.infolist()
                       if info.filename.endswith(".npy") and wanted(info.filename[:-4])}
            total = sum(info.file_size for info in members.values())
            limit = max(file_bytes, NPZ_MAX_BYTES)
            if total > limit:
                biggest = max(members.values(), key=lambda info: info.file_size)
                raise InputError(f"{path}: {what} refused: its arrays expand to {total} bytes from a {file_bytes}-byte "
                                 f"file ({biggest.filename!r}: {biggest.file_size}), more than the {limit} an .npz "
                                 "may expand to (a decompression bomb?)")
            out: dict[str, np.ndarray] = {}
            for name, info in members.items():
                label = f"{path}[{name!r}]"
                try:
                    with archive.open(info) as member:
                        _, _, n_bytes = _npy_header(member, label)
                        if member.tell() + n_bytes > info.file_size:
                            raise InputError(f"{label}: truncated .npy member: its header promises {n_bytes} bytes "
                                             f"of data, the member holds {max(info.file_size - member.tell(), 0)}")
                        member.seek(0)
                        out[name] = np.lib.format.read_array(member, allow_pickle=False)
                except InputError:
                    raise
                except Exception as exc:  # zipfile.BadZipFile (CRC), zlib.error, ValueError, OSError, EOFError
                    raise InputError(f"{label}: not a readable {what} member ({type(exc).__name__}: "
                                     f"{_short(exc)})") from None
    return out


def load_vertices(
    path: str | os.PathLike[str],
    topology: Any | None = None,
    n_vertices: int | None = None,
) -> np.ndarray:
    """Load a vertex sequence ``.npy`` as (T, V, 3) float32 or float64, validated.

    Args:
        path: ``.npy`` file of shape (T, V*3) or (T, V, 3), read by :func:`load_npy`; dtypes as
            :func:`vertex_dtype` says (float16 is read as float32, integers as float64).
        topology: a :class:`p3d.topology.Topology`; its ``n_vertices`` is enforced.
        n_vertices: enforce this vertex count (alternative to ``topology``).
    """
    path = Path(path)
    if topology is not None:
        n_vertices = topology.n_vertices
    return as_frames(load_npy(path), n_vertices, what=str(path))


def load_templates(path: str | os.PathLike[str], n_vertices: int | None = None) -> dict[str, np.ndarray]:
    """Load ``templates.pkl``: ``{subject: (V, 3) float array}`` (restricted unpickler, validated)."""
    data = load_pickle(path)
    if not isinstance(data, dict) or not data:
        raise InputError(f"{path}: expected a non-empty dict of subject -> (V, 3) template, "
                         f"found {type(data).__name__}{' (empty)' if isinstance(data, dict) else ''}")
    out: dict[str, np.ndarray] = {}
    for key, value in data.items():
        what = f"{path}[{key!r}]"
        try:
            template = np.asarray(value)
        except (ValueError, TypeError) as exc:  # ragged nested lists and the like
            raise InputError(f"{what}: not a (V, 3) array ({_short(exc)})") from None
        if not (template.ndim == 2 and template.shape[1] == 3) and template.ndim != 1:
            raise InputError(f"{what}: template of shape {template.shape}, expected (V, 3) or (V*3,)")
        if template.dtype.kind in "fc" and not np.isfinite(template).all():
            raise InputError(f"{what}: template holds NaN or inf values")
        frames = as_frames(template.reshape(1, -1), what=what)
        if n_vertices is not None and frames.shape[1] != n_vertices:
            raise InputError(f"{what}: template of shape {template.shape} has {frames.shape[1]} vertices, "
                             f"expected {n_vertices} (shape ({n_vertices}, 3))")
        if str(key) in out:  # e.g. keys 1 and "1": one subject name, two templates
            raise InputError(f"{what}: two templates for subject {str(key)!r} (keys differing only in type)")
        out[str(key)] = frames[0]
    return out


_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
_PLY_FORMATS = ("ascii", "binary_little_endian", "binary_big_endian")


def check_ply(path: str | os.PathLike[str]) -> None:
    """Refuse a PLY file whose header is malformed or whose body is shorter than its header declares.

    VTK's reader (behind ``pyvista.read``) does not: a truncated binary body crashes the process
    (segmentation fault) and a truncated ASCII body is read as zeros. The header must start with ``ply``,
    name one of the three formats and end with ``end_header``; each ``element NAME COUNT`` row is then walked
    (binary: its bytes, ``list`` properties by their stored counts; ASCII: its whitespace-separated numbers).
    """
    path = Path(path)
    with open_regular(path, "PLY mesh") as fh:
        data = fh.read()
    where = f"{path}: not a readable PLY mesh"
    end = data.find(b"end_header")
    body_at = data.find(b"\n", end) + 1 if end >= 0 else 0
    if not data.startswith(b"ply") or body_at == 0:
        raise InputError(f"{where} (no 'ply' ... 'end_header' header)")
    fmt = None
    elements: list[tuple[str, int, list[tuple[str | None, str]]]] = []  # (name, count, [(list count type, type)])
    for line in data[:end].decode("ascii", "replace").splitlines()[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) == 3 and words[1] in _PLY_FORMATS:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements and len(words) == 3 and words[1] in _PLY_TYPES:
            elements[-1][2].append((None, _PLY_TYPES[words[1]]))
        elif (words[0] == "property" and elements and len(words) == 5 and words[1] == "list"
              and words[2] in _PLY_TYPES and words[3] in _PLY_TYPES):
            elements[-1][2].append((_PLY_TYPES[words[2]], _PLY_TYPES[words[3]]))
        else:
            raise InputError(f"{where} (header line {line.strip()!r} not understood)")
    if fmt is None:
        raise InputError(f"{where} (no 'format ascii|binary_little_endian|binary_big_endian 1.0' line)")
    body = data[body_at:]
    if fmt == "ascii":
        tokens = body.split()
        pos = 0
        for name, count, props in elements:
            for _ in range(count):
                for count_type, _type in props:
                    if count_type is None:
                        pos += 1
                    else:
                        try:
                            n = int(tokens[pos])
                        except (IndexError, ValueError):
                            pos = len(tokens) + 1
                        else:
                            _check_list_count(n, name, where)
                            pos += 1 + n
                if pos > len(tokens):
                    raise InputError(f"{where}: truncated: its header declares {count} {name} rows, the file ends "
                                     "within them (incompletely written or copied?)")
        return
    import struct

    order = "<" if fmt == "binary_little_endian" else ">"
    pos = 0
    for name, count, props in elements:
        if all(count_type is None for count_type, _ in props):
            pos += count * sum(np.dtype(t).itemsize for _, t in props)
        else:
            for _ in range(count):
                for count_type, item_type in props:
                    if count_type is None:
                        pos += np.dtype(item_type).itemsize
                    elif pos + np.dtype(count_type).itemsize > len(body):
                        pos = len(body) + 1
                        break
                    else:
                        n = struct.unpack_from(order + np.dtype(count_type).char, body, pos)[0]
                        _check_list_count(n, name, where)
                        pos += np.dtype(count_type).itemsize + int(n) * np.dtype(item_type).itemsize
                if pos > len(body):
                    break
        if pos > len(body):
            raise InputError(f"{where}: truncated: its header declares {count} {name} rows, the file ends within "
                             f"them ({len(body)} bytes after the header; incompletely written or copied?)")


def _check_list_count(n: float, name: str, where: str) -> None:
    """A PLY ``list`` property's stored count must be a whole number >= 0: a negative one would walk the body
    backwards (and VTK's reader crashes on it), so a truncated file would pass :func:`check_ply`."""
    if not (n >= 0 and float(n).is_integer()):
        raise InputError(f"{where}: a {name} row's list count is {n!r}, not a count (corrupt file)")


def load_ply(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh from a PLY file (ASCII or binary): (vertices (V, 3) float64, faces (F, 3) int64).

    A ``.ply`` file is checked first (:func:`check_ply`: header, and a body as long as the header declares);
    other mesh formats pyvista reads by their extension (e.g. ``.obj``) are read as they are.
    """
    path = Path(path)
    if path.suffix.lower() == ".ply":
        check_ply(path)
    elif (reason := not_regular_reason(path)) is not None:  # before pyvista opens it: a named pipe would block it
        raise InputError(f"{path}: mesh file {reason}")
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    try:
        mesh = pv.read(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable PLY mesh ({one_line(exc)})") from None
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
def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """``samples`` (..., n) resampled along the last axis from ``orig_sr`` to ``target_sr`` Hz, float32, with
    resampy's ``kaiser_best`` filter and ``ceil(n * target_sr / orig_sr)`` samples: what ``librosa.load(path,
    sr=target_sr)`` did under librosa 0.8-0.9, the baselines' official audio loading (:func:`load_audio`)."""
    import librosa

    x = np.asarray(samples, dtype=np.float32)
    if int(orig_sr) == int(target_sr):
        return x
    return librosa.resample(x, orig_sr=int(orig_sr), target_sr=int(target_sr), res_type="kaiser_best",
                            axis=-1).astype(np.float32)


#: Float samples are read on [-1, 1] (torchaudio.load's scale, which the fbank's normalisation constants of Sec. 3.1
#: assume, and librosa.load's, which the talkers were trained on); a peak beyond this (+18 dB over full scale) is
#: integer PCM converted to float without scaling, refused by :func:`check_float_peak`.
FLOAT_PEAK_LIMIT = 8.0


def check_float_peak(samples: np.ndarray, where: str, remedy: str) -> None:
    """Refuse float ``samples`` whose peak exceeds :data:`FLOAT_PEAK_LIMIT`: integer PCM stored as float unscaled.

    The one rule for every reader of audio (:func:`load_audio` for files, :func:`p3d.audio.speech_windows` for
    arrays, the raw VOCASET conversion for its pickle). One-line InputError ``"{where}: float samples reach ..."``
    ending with ``remedy`` (how to fix it in the caller's terms). Integer arrays are not checked (their scale is
    their dtype's); samples must be finite (checked before).
    """
    x = np.asarray(samples)
    if x.dtype.kind != "f" or x.size == 0:
        return
    peak = float(np.abs(x).max())
    if peak > FLOAT_PEAK_LIMIT:  # e.g. wavfile.read(...).astype(float32): the fbank would be shifted by log(32768)
        raise InputError(f"{where}: float samples reach {peak:.4g}, beyond +-{FLOAT_PEAK_LIMIT:g}: integer PCM stored "
                         f"as float? Float audio is in [-1, 1] ({remedy})")


def pcm_to_float(samples: np.ndarray, where: str = "audio") -> np.ndarray:
    """Integer PCM ``samples`` (any shape) as float32 on [-1, 1], torchaudio's and soundfile's scaling: signed ones
    divided by minus the type's minimum (int16 / 32768), unsigned ones (offset binary, 8-bit WAV as
    ``scipy.io.wavfile`` reads it) centred on half the range and divided by it ((uint8 - 128) / 128). So an array
    read from a PCM file gives the samples :func:`load_audio` gives for that file. The one rule for every reader of
    integer sample arrays (:func:`p3d.audio.speech_windows`, :func:`p3d.viz.compare.load_audio_like`). Float
    samples are returned as they are; integers wider than 32 bits are no PCM format (their scale is unknown:
    ``np.array(list_of_int16_values)`` is int64): one-line InputError naming ``where``.
    """
    x = np.asarray(samples)
    if x.dtype.kind not in "iu":
        return x
    if x.dtype.itemsize > 4:  # e.g. np.array(list_of_int16_values): its range would scale the samples to ~1e-15
        raise InputError(f"{where}: {x.dtype} samples are not a PCM format, so their scale is unknown; pass the "
                         f"integer PCM as read (int16, int32, uint8) or float samples in [-1, 1]")
    info = np.iinfo(x.dtype)
    if x.dtype.kind == "u":  # unsigned PCM (8-bit WAV) is offset by half its range
        return ((x.astype(np.float64) - (info.max + 1) / 2) / ((info.max + 1) / 2)).astype(np.float32)
    return (x.astype(np.float64) / -float(info.min)).astype(np.float32)


def load_audio(path: str | os.PathLike[str], sr: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file: (samples float32, sample_rate).

    Samples are in [-1, 1] (soundfile's float scaling: int16 PCM / 32768). ``mono=True`` averages the
    channels, returning (n,); ``mono=False`` returns (n, channels). ``sr`` resamples the channel average as
    the baselines' official preprocessing does (FaceFormer, CodeTalker, SelfTalk and the perceptual loss' talkers:
    ``librosa.load(path, sr=16000)`` under librosa 0.8-0.9, whose default resampler is resampy's ``kaiser_best``;
    librosa >= 0.10 defaults to soxr, which differs above ~7 kHz at 22-44 kHz input: 35-38 dB SNR), so a
    checkpoint sees the waveform it was trained on.
    A missing, non-regular (FIFO), unreadable, empty or truncated (:func:`check_wav_length`) file, or one holding
    NaN/inf samples or float samples beyond :data:`FLOAT_PEAK_LIMIT` (:func:`check_float_peak`: integer PCM stored
    as float, which the talkers would read unscaled and PLRS refuses), raises :class:`InputError` naming it.
    """
    import soundfile as sf

    if sr is not None and (isinstance(sr, (bool, np.bool_)) or not isinstance(sr, (int, np.integer)) or sr <= 0):
        raise InputError(f"sr: expected a positive integer sample rate in Hz (or None: the file's own), got {sr!r}")
    path = Path(path)
    with open_regular(path, "audio file") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise InputError(f"{path}: audio file is empty (0 bytes)")
        check_wav_length(fh, path)
        try:
            data, rate = sf.read(fh, dtype="float32", always_2d=True)
        except Exception as exc:  # soundfile.LibsndfileError, RuntimeError, ... on corrupt files
            raise InputError(f"{path}: not a readable audio file ({_short(exc)})") from None
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise InputError(f"{path}: audio file holds no samples")
    if not rate or rate <= 0:
        raise InputError(f"{path}: audio file has no valid sample rate ({rate})")
    if not np.isfinite(data).all():
        raise InputError(f"{path}: audio holds NaN or inf samples")
    # a FLOAT/DOUBLE wav is read as stored (PCM subtypes come scaled to [-1, 1]); checked before mixing channels
    check_float_peak(data, str(path), "rewrite the file with its int16 values divided by 32768, or as 16-bit PCM")
    if mono:
        data = data.mean(axis=1, keepdims=True, dtype=np.float32)  # librosa.load: to mono, then resample
    if sr is not None and sr != rate:
        data = resample(data.T, rate, sr).T
        rate = sr
    if mono:
        return data[:, 0], int(rate)
    return data, int(rate)


#: A WAV ``data`` size at or above this is a streaming writer's placeholder, not a length (:func:`check_wav_length`).
_WAV_SIZE_PLACEHOLDER = 0x7FFFF000


def check_wav_length(fh: IO[bytes], path: Path) -> None:
    """Refuse a RIFF/WAVE file whose ``data`` chunk is shorter than its header declares (an interrupted write or
    copy): libsndfile reads such a file silently as a shorter recording. Other formats, and the sizes that
    streaming writers leave when they cannot seek back (0, 0xFFFFFFFF, SoX's 0x7FFFF000 and the like), are not
    checked. Leaves ``fh`` at 0."""
    import struct

    size = os.fstat(fh.fileno()).st_size
    fh.seek(0)
    head = fh.read(12)
    block = 1
    pos = 12
    try:
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return
        while pos + 8 <= size:
            fh.seek(pos)
            chunk, length = struct.unpack("<4sI", fh.read(8))
            if chunk == b"fmt ":
                fmt = fh.read(min(length, 16))
                if len(fmt) >= 14:
                    block = max(1, struct.unpack_from("<H", fmt, 12)[0])  # bytes per sample frame
            elif chunk == b"data":
                have = size - pos - 8
                if 0 < length < _WAV_SIZE_PLACEHOLDER and have // block < length // block:  # a frame not whole
                    raise InputError(f"{path}: truncated WAV file: its header promises {length // block} sample "
                                     f"frames ({length} bytes of audio) but the file holds {have // block} "
                                     "(incompletely written or copied?)")
                return
            pos += 8 + length + (length & 1)
    finally:
        fh.seek(0)


def check_frame_rate(value: Any, option: str = "--fps") -> float:
    """A frame rate (frames per second) as a float; InputError naming ``option`` unless positive and finite.

    Accepts numbers and numeric strings; refuses NaN, infinities, zero, negatives, booleans and text.
    """
    if isinstance(value, bool):
        raise InputError(f"{option} {value!r}: expected a frame rate in frames per second, e.g. 30")
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{option} {value!r}: expected a frame rate in frames per second, e.g. 30") from None
    if not math.isfinite(rate) or rate <= 0:
        raise InputError(f"{option} {value}: a frame rate must be a positive, finite number of frames "
                         "per second, e.g. 30")
    return rate


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
    - ``generic``: ``<name>[_condition_<cond>]``; identity = the part before the first ``_`` (with neutral faces
      at hand, :func:`identity_in_templates` takes the longest leading run of words that names one);
    - ``auto``: MEAD if it matches, else VOCASET, else generic.
    """
    stem = Path(stem).name
    if stem.endswith(".npy"):
        stem = stem[:-4]
    if dataset not in {"auto", "vocaset", "mead", "generic"}:
        raise InputError(f"unknown dataset convention {dataset!r} (vocaset, mead, generic or auto)")
    if not stem:
        raise InputError("clip name: empty (a clip's file needs a name before its .npy extension)")
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


def identity_in_templates(name: ClipName, templates: Mapping[str, Any]) -> ClipName:
    """``name`` with the identity the neutral faces ``templates`` know: unchanged when they have its identity, else
    the longest leading run of ``_``-separated words of its GT stem that names a template (a generic name
    ``spk_01_clip3`` takes ``spk``, the text before the first ``_``, unless ``spk_01`` is a template), else
    unchanged (the caller refuses or reports the missing template)."""
    if name.identity in templates:
        return name
    words = name.gt_stem.split("_")
    for k in range(len(words) - 1, 0, -1):
        if "_".join(words[:k]) in templates:
            return dataclasses.replace(name, identity="_".join(words[:k]))
    return name


def find_npy(
    folder: str | os.PathLike[str],
    what: str = "folder",
    *,
    skipped: list[dict[str, str]] | None = None,
) -> list[Path]:
    """Sorted ``*.npy`` files of a folder; InputError if it is missing or holds none.

    Discovery never opens a file (``os.scandir`` and ``stat`` only, so a named pipe cannot block it).
    Hidden and temporary names (:func:`is_ignored_name`: ``.name``, ``*.tmp``, ``*~``, ``#name#``, which
    covers files still being written by :mod:`p3d.atomic`) are ignored silently. Entries named
    ``*.npy`` that are not regular files (named pipes, dangling symbolic links, folders, sockets), and files
    whose extension is ``.npy`` in another case (``x.NPY``), are left out with a logged warning, and appended to
    ``skipped`` (if given) as ``{"file": name, "reason": why}``.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: {what} not found")
    if not folder.is_dir():
        raise InputError(f"{folder}: {what} is not a directory")
    try:
        with os.scandir(folder) as entries:
            listed = [e.name for e in entries if e.name.lower().endswith(".npy") and not is_ignored_name(e.name)]
    except OSError as exc:
        raise InputError(f"{folder}: cannot list {what} ({exc.strerror or exc})") from None
    names = sorted(n for n in listed if n.endswith(".npy"))
    files: list[Path] = []
    left_out: list[dict[str, str]] = []
    for name in sorted(set(listed) - set(names)):  # e.g. "x.NPY": named unlike every clip it could pair with
        left_out.append({"file": name, "reason": "extension not lower-case .npy; not read"})
        log.warning("%s: extension not lower-case .npy; not read", folder / name)
    for name in names:
        path = folder / name
        reason = not_regular_reason(path)
        if reason is None:
            files.append(path)
        else:
            left_out.append({"file": name, "reason": f"{reason}; not read"})
            log.warning("%s: %s; not read", path, reason)
    if skipped is not None:
        skipped.extend(left_out)
    if not files:
        extra = "; ".join(f"{s['file']}: {s['reason']}" for s in left_out[:3])
        raise InputError(f"{folder}: {what} holds no .npy files" + (f" that can be read ({extra})" if extra else ""))
    return files


#: The record ``p3d predict`` writes beside its predictions (the model, settings and the fingerprint of each corpus
#: predicted); ``p3d eval`` checks its ``--gt`` and ``--audio`` against it.
PREDICTIONS_RECORD = "predictions.json"


#: A prediction or template whose mean frame's size (RMS distance of its vertices from their centroid) is more
#: than this factor larger or smaller than its GT's is not in the GT's coordinate frame (:class:`FaceFrame`).
PLACEMENT_SCALE = 3.0

_PLACEMENT_CAUSES = ("Offsets from the template instead of positions (add the template), another unit or another "
                     "alignment? LVE and FDD need absolute positions in the GT's frame")


@dataclasses.dataclass(frozen=True)
class FaceFrame:
    """The coordinate frame of a GT sequence (T, V, 3): its mean frame's size (RMS distance of the vertices from
    their centroid) and centroid, computed once (:meth:`of`) and compared with each prediction or template
    (:meth:`check`).

    The baselines output absolute positions, template plus motion (FaceFormer, CodeTalker, SelfTalk add the
    neutral face inside the model), and LVE, FDD and the lip amplitude compare positions with the GT's and the
    template's; the talkers learn the vertices minus the template. A sequence saved as offsets from the template
    (a few mm across), or one in another unit (mm against m) or another alignment or normalisation, gives numbers
    of arbitrary size. Speech changes a face's size by a few per cent and leaves it in place, so the mean frames
    are compared: sizes more than :data:`PLACEMENT_SCALE` times apart, or centroids further apart than the GT
    face's size, are refused. The bounds are wide: a poorly trained model's prediction (a talker after a few
    steps: 1.1-1.3 times the GT's size, centroids 0.1-0.2 sizes apart) is still scored.
    """

    size: float
    centroid: np.ndarray

    @classmethod
    def of(cls, vertices: np.ndarray) -> "FaceFrame":
        mean = np.asarray(vertices).mean(axis=0, dtype=np.float64)
        centroid = mean.mean(axis=0)
        return cls(float(np.sqrt(np.mean(np.sum((mean - centroid) ** 2, axis=1)))), centroid)

    def check(self, vertices: np.ndarray, what: str, gt_path: str | os.PathLike[str],
              causes: str = _PLACEMENT_CAUSES) -> None:
        """InputError naming ``what`` and ``causes`` when ``vertices`` (T, V, 3), a prediction or a template
        (1, V, 3), are not in this frame (that of the GT at ``gt_path``)."""
        if self.size <= 0:
            return
        own = FaceFrame.of(vertices)
        scale, shift = own.size / self.size, float(np.linalg.norm(own.centroid - self.centroid))
        if not 1 / PLACEMENT_SCALE <= scale <= PLACEMENT_SCALE or shift > self.size:
            raise InputError(
                f"{what}: not the coordinate frame of the ground truth {Path(gt_path).name}: its mean frame is "
                f"{scale:.3g} times the GT's size ({own.size:.3g} against {self.size:.3g}, RMS distance from the "
                f"centroid) and its centroid lies {shift:.3g} from the GT's. {causes}")


#: The files of the raw VOCASET release (``p3d data vocaset`` converts them to ``vertices_npy/`` and ``wav/``).
RAW_VOCASET_FILES = ("data_verts.npy", "subj_seq_to_idx.pkl")


def raw_vocaset_hint(root: str | os.PathLike[str]) -> str:
    """A sentence telling to convert ``root`` first when it is an unconverted raw VOCASET release (its
    :data:`RAW_VOCASET_FILES` without ``vertices_npy/``), else ``""``."""
    root = Path(root)
    if (root / "vertices_npy").is_dir() or not all((root / name).is_file() for name in RAW_VOCASET_FILES):
        return ""
    return (f"; {root} is the raw VOCASET release (data_verts.npy, subj_seq_to_idx.pkl): convert it first with "
            f"`p3d data vocaset --raw {root} --out DIR` and give DIR")


def vertices_dir(root: str | os.PathLike[str]) -> Path:
    """The folder holding GT vertex files: ``root/vertices_npy`` if present (processed VOCASET), else ``root``.

    An unconverted raw VOCASET release (:func:`raw_vocaset_hint`) holds no clip files: InputError saying so."""
    root = Path(root)
    sub = root / "vertices_npy"
    hint = raw_vocaset_hint(root)
    if hint:
        raise InputError(f"{root}: no vertex files{hint}")
    return sub if sub.is_dir() else root


def audio_dir(root: str | os.PathLike[str]) -> Path:
    """The folder holding wav files: ``root/wav`` if present (processed VOCASET), else ``root``."""
    root = Path(root)
    sub = root / "wav"
    return sub if sub.is_dir() else root
