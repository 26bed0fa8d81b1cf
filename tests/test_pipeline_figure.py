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


def test_every_size_in_the_labels_comes_from_the_configs(monkeypatch):
    """Configs with sizes no preset has: each label shows the config's value (the mask ratio, the InfoNCE layers,
    the fbank's frames x mels, E_m's depth), none typed by hand."""
    import dataclasses

    from p3d.models.mesh_encoder import MeshEncoderConfig

    s1 = dataclasses.replace(Stage1Config.from_preset("cpu"), mask_ratio=0.45, infonce_layers=(0, 2),
                             speech_frames=33, n_mels=80)
    me = dataclasses.replace(MeshEncoderConfig.from_preset("cpu", n_vertices=468), depth=7)
    monkeypatch.setattr(Stage1Config, "from_preset", classmethod(lambda cls, preset: s1))
    monkeypatch.setattr(MeshEncoderConfig, "from_preset", classmethod(lambda cls, preset, n_vertices: me))
    text = _texts(pipeline_diagram("cpu", n_vertices=468))
    assert text.count("mask 45%") == 2 and "[0, 2]" in text and "33x80" in text and "7 layers" in text
