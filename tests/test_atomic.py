import json
from pathlib import Path

import numpy as np
import pytest

from p3d.atomic import atomic_open, save_npy, write_json


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_writers(tmp_path):
    write_json(tmp_path / "a" / "x.json", {"v": np.float32(1.5), "arr": np.arange(2)})
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"v": 1.5, "arr": [0, 1]}
    save_npy(tmp_path / "y.npy", np.eye(2))
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.eye(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "y.npy"]


def test_atomic_files_follow_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        save_npy(tmp_path / "m.npy", np.zeros(2))
    finally:
        os.umask(old)
    assert (tmp_path / "m.npy").stat().st_mode & 0o777 == 0o644


def test_check_out_file_refuses_before_any_work(tmp_path):
    """An output file with the wrong suffix, that is a folder, or whose folder cannot be created (a file in the
    way) is one InputError; a file in a folder still to be created is accepted and nothing is written."""
    from p3d.atomic import check_out_file
    from p3d.errors import InputError

    (tmp_path / "afile").write_text("x")
    (tmp_path / "video.mp4").mkdir()
    for path, message in [(tmp_path / "r.txt", "expected a .mp4 file name"), (tmp_path / "video.mp4", "is a folder"),
                          (tmp_path / "afile" / "r.mp4", "its folder")]:
        with pytest.raises(InputError, match=message):
            check_out_file(path, ".mp4")
    check_out_file(tmp_path / "new" / "r.mp4", ".mp4")
    assert not (tmp_path / "new").exists()
    with pytest.raises(InputError, match=r"^OUTPUT x: is a folder; give a file path$"):  # any suffix, own label
        check_out_file(tmp_path / "video.mp4", label="OUTPUT x")
    check_out_file(tmp_path / "critic.pth", label="OUTPUT x")


def test_save_figure_writes_the_format_of_the_suffix(tmp_path):
    from matplotlib.figure import Figure

    from p3d.viz import save_figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    png = save_figure(fig, tmp_path / "figs" / "a.png", dpi=50, bbox_inches="tight")
    pdf = save_figure(fig, str(tmp_path / "figs" / "b.pdf"))
    assert png == tmp_path / "figs" / "a.png" and pdf == tmp_path / "figs" / "b.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["a.png", "b.pdf"]  # no temporary left


def test_save_figure_keeps_the_old_file_when_drawing_fails(tmp_path):
    """A figure that fails half-way through being written leaves the previous file as it was, and nothing else."""
    from p3d.viz import save_figure

    class Breaks:
        def savefig(self, fname, **kwargs):
            Path(fname).write_bytes(b"\x89PNG half")
            raise RuntimeError("draw failed")

    target = tmp_path / "fig.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="draw failed"):
        save_figure(Breaks(), target, dpi=50)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


@pytest.mark.parametrize("name, match", [("figure", "no figure format"), ("figure.xyz", "cannot write a 'xyz'")])
def test_save_figure_without_a_known_format_is_one_line(tmp_path, name, match):
    """No suffix (matplotlib then took the temporary file's random suffix for the format and failed naming it) or
    an unknown one: a one-line InputError naming the path, and nothing written."""
    from matplotlib.figure import Figure

    from p3d.errors import InputError
    from p3d.viz import save_figure

    with pytest.raises(InputError, match=match):
        save_figure(Figure(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []
    assert save_figure(Figure(), tmp_path / "figure", format="png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("writer", ["atomic_path", "atomic_open"])
def test_the_data_and_the_rename_reach_the_disk(tmp_path, monkeypatch, writer):
    """atomic_path renamed without fsync (only atomic_open flushed): a file written by a library to the temporary
    name (np.save, torch.save, matplotlib) could be renamed before its data reached the disk, and a crash then
    leave a zero-length file on ext4 / XFS. Now the file is flushed before os.replace and the folder after it."""
    import os

    from p3d.atomic import atomic_path

    events: list[tuple[str, object]] = []
    fsync, replace = os.fsync, os.replace

    def spy_fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync", (st.st_dev, st.st_ino)))
        fsync(fd)

    def spy_replace(src, dst):
        events.append(("replace", (os.stat(src).st_dev, os.stat(src).st_ino)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    target = tmp_path / "sub" / "x.npy"
    if writer == "atomic_path":
        with atomic_path(target) as tmp:
            np.save(tmp, np.arange(3))
    else:
        with atomic_open(target, "wb") as fh:
            np.save(fh, np.arange(3))
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    st, folder = target.stat(), target.parent.stat()
    file_id, folder_id = (st.st_dev, st.st_ino), (folder.st_dev, folder.st_ino)
    assert ("fsync", file_id) in events and ("replace", file_id) in events
    assert events.index(("fsync", file_id)) < events.index(("replace", file_id))  # the data first
    assert events[-1] == ("fsync", folder_id)  # then the rename
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.npy"]


def test_check_out_dir_refuses_a_file_a_file_in_the_way_and_unwritable_folders(tmp_path, monkeypatch):
    """``out`` must be a folder or not exist yet; its nearest existing ancestor must be a writable folder; an
    existing ``out`` needs a writable parent too (the staging folder is its sibling)."""
    import os

    from p3d.atomic import check_out_dir
    from p3d.errors import InputError

    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="exists and is not a folder"):
        check_out_dir(tmp_path / "afile")
    with pytest.raises(InputError, match="afile is a file"):
        check_out_dir(tmp_path / "afile" / "sub" / "out")
    check_out_dir(tmp_path / "new" / "out")
    (tmp_path / "out").mkdir()
    check_out_dir(tmp_path / "out")
    real = os.access
    locked = {tmp_path / "out"}
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) not in locked and real(p, mode))
    with pytest.raises(InputError, match="is not writable"):
        check_out_dir(tmp_path / "out")          # root may write anywhere: the permission is simulated
    locked = {tmp_path}
    with pytest.raises(InputError, match="its parent .* is not writable"):
        check_out_dir(tmp_path / "out")
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_check_out_dir_refuses_a_folder_where_nothing_can_be_created_though_access_says_writable(tmp_path,
                                                                                                 monkeypatch):
    """``os.access`` answers yes to root for ``/proc``, where no folder can be created: ``--out /proc/x`` passed the
    check and the command then died in a traceback at its mkdir. The check now tries creating (and removing) an
    empty folder; root is simulated by an ``os.access`` that always says yes. A writable folder keeps nothing."""
    import os

    from p3d.atomic import check_out_dir
    from p3d.errors import InputError

    monkeypatch.setattr(os, "access", lambda p, mode: True)
    with pytest.raises(InputError, match="--out /proc/p3d-out: nothing can be created in /proc"):
        check_out_dir("/proc/p3d-out")
    check_out_dir(tmp_path / "new" / "out")
    assert list(tmp_path.iterdir()) == []


def test_dead_stages_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    """:func:`stage_dir` is named by this process; :func:`remove_dead_stages` deletes a dead process's staging
    folder and keeps this process's and a live one's (also one owned by another user: ``os.kill`` refused)."""
    import os
    import subprocess
    import sys

    from p3d.atomic import remove_dead_stages, stage_dir

    out = tmp_path / "report"
    own = stage_dir(out)
    assert own == tmp_path / f".report.tmp-{os.getpid()}"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    others = {"dead": tmp_path / f".report.tmp-{dead.pid}", "other_user": tmp_path / ".report.tmp-424242"}
    for stage in (own, *others.values()):
        stage.mkdir()
    real = os.kill

    def kill(pid, sig):
        if pid == 424242:
            raise PermissionError(1, "Operation not permitted")
        return real(pid, sig)

    monkeypatch.setattr(os, "kill", kill)
    remove_dead_stages(out)
    assert own.is_dir() and others["other_user"].is_dir()
    assert not others["dead"].exists()
