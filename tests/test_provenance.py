"""p3d.provenance: the commit a record names."""

import shutil
import subprocess

import pytest

from p3d.provenance import GENERATED_PATHS, git_commit


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_is_dirty_for_code_changes_not_for_generated_outputs(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    for path in ("p3d/x.py", "results/tables/t.csv", "figures/f.png", "README.md"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("a\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
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
