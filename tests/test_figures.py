"""make figures' run list: notebooks in order, parameter sets expand to one executed copy each."""
from pathlib import Path

from p3d.figures import PARAMETER_SETS, executions, notebooks


def test_notebooks_in_order_and_stage2_runs_every_critic():
    names = [nb.name for nb in notebooks()]
    assert names == sorted(names) and names[0].startswith("00_")
    runs = executions(Path("notebooks/03_stage2.ipynb"), "cpu")
    assert [p["critic"] for p, _ in runs] == ["ours", "syncnet3d", "no2d"]
    assert all(p["preset"] == "cpu" for p, _ in runs)
    assert runs[0][1] == "03_stage2-critic=ours.ipynb"
    assert executions(Path("notebooks/01_data.ipynb"), "smoke") == [({"preset": "smoke"}, "01_data.ipynb")]
    assert set(PARAMETER_SETS) <= {nb.stem for nb in notebooks()}
