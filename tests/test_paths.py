"""p3d.paths: the project root and a preset's output folders."""
from pathlib import Path

import pytest

import p3d
from p3d import paths
from p3d.errors import InputError


def test_the_project_root_is_the_checkout_holding_pyproject(monkeypatch, tmp_path):
    """Without ``P3D_ROOT``: the folder above the p3d package when it holds ``pyproject.toml``, wherever the
    command runs; with it: that folder."""
    monkeypatch.delenv("P3D_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    checkout = Path(p3d.__file__).resolve().parent.parent
    assert (checkout / "pyproject.toml").exists()
    assert paths.project_root() == checkout
    monkeypatch.setenv("P3D_ROOT", str(checkout / "results"))
    assert paths.project_root() == checkout / "results"


def test_an_unknown_preset_has_no_results_folder(tmp_path):
    with pytest.raises(InputError, match="unknown preset 'huge'") as info:
        paths.results_dir("huge", tmp_path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("preset", ["smoke", "full"])
def test_output_dirs_creates_the_figure_table_and_result_folders(tmp_path, monkeypatch, preset):
    """The folders notebooks write into exist once output_dirs returns; the data/runs caches are only named."""
    monkeypatch.setenv("P3D_ROOT", str(tmp_path))
    dirs = paths.output_dirs(preset)
    assert dirs.figures.is_dir() and dirs.tables.is_dir() and dirs.results.is_dir()
    assert (dirs.data, dirs.runs) == (tmp_path / "data", tmp_path / "runs")
