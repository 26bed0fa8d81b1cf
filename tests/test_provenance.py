"""p3d.provenance: the commit a record names."""

import shutil
import subprocess

import pytest

from p3d.provenance import GENERATED_PATHS, git_commit


def _committed_repo(root, paths, ignore=None):
    """A git repository at ``root`` with ``paths`` (each holding "a\n", and a .gitignore of ``ignore``) committed."""
    def git(*args):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q")
    if ignore is not None:
        (root / ".gitignore").write_text(ignore)
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("a\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")



@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_is_dirty_for_code_changes_not_for_generated_outputs(tmp_path):
    _committed_repo(tmp_path, ("p3d/x.py", "results/tables/t.csv", "figures/f.png", "README.md"))
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert git_commit(tmp_path) == head
    for path in ("results/tables/t.csv", "figures/f.png", "README.md"):   # what make figures rewrites
        (tmp_path / path).write_text("b\n")
    assert set(GENERATED_PATHS) == {"results", "figures", "README.md"}
    assert git_commit(tmp_path) == head
    (tmp_path / "p3d" / "x.py").write_text("b\n")                        # the code itself
    assert git_commit(tmp_path) == f"{head}-dirty"
    assert git_commit(tmp_path / "not-a-repo") is None


def test_stamped_sha256_reads_a_file_once_until_it_is_rewritten(tmp_path, monkeypatch):
    import hashlib

    from p3d import provenance
    from p3d.atomic import write_json

    path = tmp_path / "ckpt.json"
    write_json(path, {"w": 1})
    reads = []
    real = provenance.file_sha256
    monkeypatch.setattr(provenance, "file_sha256", lambda p, *a: reads.append(p) or real(p, *a))
    first = provenance.stamped_sha256(path)
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()
    assert provenance.stamped_sha256(path) == first and len(reads) == 1  # not read again
    write_json(path, {"w": 2})  # the same size, written at once (a new file renamed over it)
    assert provenance.stamped_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest() != first
    assert len(reads) == 2


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_is_dirty_for_untracked_code(tmp_path):
    """make figures runs every notebook in notebooks/ (and they import p3d/): a new notebook or module that is not
    committed was recorded as the clean commit."""
    _committed_repo(tmp_path, ("p3d/x.py", "notebooks/00_a.ipynb"), ignore="__pycache__/\n")
    head = git_commit(tmp_path)
    assert head and not head.endswith("-dirty")
    for path in ("scratch.txt", "results/tables/new.csv", "figures/new.png", "p3d/__pycache__/x.pyc"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)       # not code, or ignored
        (tmp_path / path).write_text("b\n")
    assert git_commit(tmp_path) == head
    for path in ("notebooks/11_new.ipynb", "p3d/new.py", "p3d/sub/new.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("b\n")
        assert git_commit(tmp_path) == f"{head}-dirty", path
        (tmp_path / path).unlink()
    assert git_commit(tmp_path) == head


def test_versions_name_every_package_that_shapes_the_numbers():
    """scikit-learn (notebook 04's k-NN/t-SNE, notebook 08's viseme oracle), the audio resampling and the corpora's
    speech engine shape the tables, but the record named only numpy, scipy, numba, torch, pandas and pyvista."""
    from p3d.provenance import versions

    found = versions()
    assert {"python", "p3d", "numpy", "torch", "scikit-learn", "librosa", "resampy"} <= set(found)
    assert versions(("no-such-package-p3d",)).keys() == {"python", "p3d"}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_is_dirty_for_any_tracked_change_outside_the_outputs_and_quoted_code_names(tmp_path):
    """A tracked file outside GENERATED_PATHS (a Makefile, a test) with uncommitted changes makes the commit
    dirty, not only the code folders; an untracked code file whose name git quotes (a space) does too."""
    _committed_repo(tmp_path, ("p3d/x.py", "Makefile", "tests/test_x.py"))
    head = git_commit(tmp_path)
    assert head and not head.endswith("-dirty")
    for path in ("Makefile", "tests/test_x.py"):
        (tmp_path / path).write_text("b\n")
        assert git_commit(tmp_path) == f"{head}-dirty", path
        (tmp_path / path).write_text("a\n")
    assert git_commit(tmp_path) == head
    (tmp_path / "p3d" / "new module.py").write_text("b\n")
    assert git_commit(tmp_path) == f"{head}-dirty"


def test_record_names_version_commit_libraries_machine_and_extras():
    from p3d import __version__
    from p3d.provenance import machine, record, versions

    rec = record(split="test", n=3)
    assert rec["p3d_version"] == __version__
    assert rec["versions"] == versions() and rec["versions"]["torch"]
    assert rec["machine"] == machine() and set(rec["machine"]) == {"platform", "cpus", "cpu"}
    assert (rec["split"], rec["n"]) == ("test", 3)
    assert "git_commit" in rec
