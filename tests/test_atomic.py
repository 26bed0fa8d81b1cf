import json

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
