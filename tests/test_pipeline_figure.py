"""Fig. 2 by code: three panels whose labels come from the configs of the preset."""
from p3d.models.stage1 import Stage1Config
from p3d.viz.pipeline import pipeline_diagram


def _texts(fig):
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_pipeline_labels_follow_the_preset():
    paper, cpu = _texts(pipeline_diagram("paper")), _texts(pipeline_diagram("cpu", n_vertices=468))
    assert "H=512" in paper and "15069 -> 512" in paper and "5 x 5023 x 3" in paper
    c = Stage1Config.from_preset("cpu")
    assert f"H={c.dim}" in cpu and "1404 -> 128" in cpu and f"{c.lambda_infonce:g} L_InfoNCE" in cpu
    assert len(pipeline_diagram().axes) == 3
