"""Provenance records: which code, which versions, which inputs produced an output."""
from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from p3d import __version__

_REPO = Path(__file__).resolve().parent.parent


#: What ``make figures`` itself rewrites in the checkout (the committed outputs and the README's generated
#: blocks): changes there do not make the code that produced an output differ from its commit.
GENERATED_PATHS = ("results", "figures", "README.md")
#: Where a file git does not track (nor ignore) is code that runs: ``make figures`` executes every notebook in
#: ``notebooks/``, and those import from ``p3d/``.
CODE_PATHS = ("p3d", "notebooks")


def git_commit(repo: str | os.PathLike[str] = _REPO) -> str | None:
    """The commit of the p3d checkout, suffixed ``-dirty`` when a tracked file outside :data:`GENERATED_PATHS`
    has uncommitted changes (so a run rewriting the committed outputs still records the commit it ran) or an
    untracked, not ignored file lies under :data:`CODE_PATHS` (a new notebook or module is not in the commit), or
    None outside a git checkout."""
    excluded = [f":(exclude){p}" for p in GENERATED_PATHS]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=normal", "--",
                                 ".", *excluded], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    code = tuple(f"{p}/" for p in CODE_PATHS)
    dirty = any(not line.startswith("??") or line[3:].lstrip('"').startswith(code) for line in status.splitlines())
    return f"{head}-dirty" if dirty else head


#: The packages whose version shapes p3d's numbers: the arrays and models; scikit-learn (the representation
#: analyses' k-NN, t-SNE and PCA, the level probe, the viseme oracle), librosa and resampy (the talkers' audio
#: resampling, :func:`p3d.io.load_audio`), transformers (the wav2vec 2.0 audio encoders), espeakng-loader (the
#: speech of the synthetic corpora) and pyvista (the rendered videos).
VERSIONED_PACKAGES = ("numpy", "scipy", "numba", "torch", "pandas", "scikit-learn", "librosa", "resampy",
                      "transformers", "espeakng-loader", "pyvista")


def versions(packages: tuple[str, ...] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape the numbers (:data:`VERSIONED_PACKAGES`)."""
    out = {"python": platform.python_version(), "p3d": __version__}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine() -> dict[str, Any]:
    """The machine a record's wall times were measured on: ``platform``, ``cpus`` (logical CPUs) and ``cpu``, the
    processor model (``/proc/cpuinfo``'s ``model name``, else :func:`platform.processor`; ``""`` when unknown): the
    same code takes 3.4x as long on one 2-core machine as on another (README, the timing of ``make figures``)."""
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "cpu": _cpu_model()}


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        model = ""
    return model or platform.processor()


def record(**extra: Any) -> dict[str, Any]:
    """A provenance dict: p3d version, git commit, library versions, machine (:func:`machine`), plus ``extra``."""
    return {
        "p3d_version": __version__,
        "git_commit": git_commit(),
        "versions": versions(),
        "machine": machine(),
        **extra,
    }


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def stamped_sha256(path: str | os.PathLike[str]) -> str:
    """:func:`file_sha256` of ``path``, read once per (resolved path, inode, size, modification and change time)
    in a process: the same checkpoint or wav checked again (every talker claiming its critic, every evaluation of a
    split) is not read again; a file rewritten since (p3d writes by renaming a new file: a new inode) is read."""
    st = os.stat(path)
    return _sha256_at(str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@functools.lru_cache(maxsize=4096)
def _sha256_at(path: str, inode: int, size: int, mtime_ns: int, ctime_ns: int) -> str:
    return file_sha256(path)
