"""Atomic file writes: nothing half-written is ever left under a final file name.

Each writer writes to a temporary file in the destination folder, flushes it to disk (``fsync``), then renames
it over the final name with :func:`os.replace` (atomic on POSIX within one file system) and flushes the folder,
so that the rename itself is on disk. Without the first flush, a crash soon after the rename could leave the
final name holding a zero-length file (ext4 and XFS may commit the rename before the data).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from p3d.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success flush it to disk, rename it to ``path`` and flush the
    folder (module docstring), else delete it. The caller closes what it wrote before the block ends.

    ``suffix`` (default: ``path``'s own suffix) lets libraries that infer the format from the
    extension (``np.save``, ``soundfile``, ``matplotlib``) write to the temporary name.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.tmp-",
                               suffix=suffix if suffix is not None else final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files: follow the umask like open() does
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    with contextlib.suppress(OSError):  # the rename on disk too; a folder cannot be opened on some systems
        _fsync(final.parent)


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file, or on POSIX a folder: its entries) to disk: through a read-only descriptor, which
    POSIX allows and which opens a folder too (Windows' flush needs a writable one)."""
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open()`` for writing, atomically (see module docstring)."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    with atomic_open(path, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def stage_dir(out: str | os.PathLike[str], tag: str = "tmp") -> Path:
    """The hidden sibling folder ``.OUT.<tag>-<pid>`` in which this process builds a whole output folder ``out``
    before moving it into place (``p3d eval``'s report, ``p3d study make``'s study): named by the process, so a
    later run can tell a killed run's leftover (:func:`remove_dead_stages`) from a live one's."""
    out = Path(os.path.abspath(out))
    return out.parent / f".{out.name}.{tag}-{os.getpid()}"


def remove_dead_stages(out: str | os.PathLike[str], tag: str = "tmp") -> None:
    """Delete the staging folders (:func:`stage_dir`) of ``out`` whose process no longer exists: what a run killed
    while building ``out`` left (each as large as the output). A live process's, and this process's, are kept."""
    import shutil

    out = Path(os.path.abspath(out))
    for stage in out.parent.glob(f".{out.name}.{tag}-*"):
        try:
            pid = int(stage.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(stage, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            pass


def check_out_dir(out: str | os.PathLike[str], label: str | None = None) -> None:
    """Refuse an output folder that cannot be written, before any work: ``out`` must be a folder (or
    not exist yet) and it, or its nearest existing ancestor (created later), must be writable. ``label``
    names it in the message (default ``--out OUT``; e.g. ``--out FILE: its folder DIR`` for a file's folder)."""
    out = Path(os.path.abspath(out))  # "--out ." has a name and a parent
    label = label or f"--out {out}"
    if out.exists() and not out.is_dir():
        raise InputError(f"{label}: exists and is not a folder; give a folder path")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{label}: {probe} is a file, so the output folder cannot be created")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{label}: {probe} is not writable; choose another output folder")
    _try_creating_in(probe, label)
    if probe == out and not os.access(out.parent if out.parent != out else out, os.W_OK | os.X_OK):
        # outputs staged in a hidden sibling folder and moved in (p3d eval's write_report) need the parent
        raise InputError(f"{label}: its parent {out.parent} is not writable (needed for the staging folder)")


def _try_creating_in(folder: Path, label: str) -> None:
    """Create and remove an empty folder in ``folder``: ``os.access`` answers yes to root for places where nothing
    can be created (``/proc``, ``/sys``), so only trying tells."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".p3d-probe-", dir=folder))
    except OSError as exc:
        raise InputError(f"{label}: nothing can be created in {folder} ({exc.strerror or exc}); "
                         "choose another output folder") from None


def check_out_file(path: str | os.PathLike[str], suffix: str | None = None, label: str | None = None) -> None:
    """Refuse an output file that cannot be written, before any work: ``path`` must end in ``suffix`` (any name
    when None), not be a folder, and its folder must be creatable and writable (:func:`check_out_dir`).
    ``label`` names it in the message (default ``--out PATH``)."""
    path = Path(path)
    label = label or f"--out {path}"
    if suffix is not None and path.suffix.lower() != suffix:
        raise InputError(f"{label}: expected a {suffix} file name")
    if path.is_dir():
        raise InputError(f"{label}: is a folder; give a {suffix + ' ' if suffix else ''}file path")
    check_out_dir(path.parent, f"{label}: its folder {path.parent.resolve()}")
