"""Table S1 by introspection: shapes from forward hooks, repeats collapsed, parameter counts exact."""
import torch
from torch import nn

from p3d.models.mesh_encoder import MeshEncoderConfig
from p3d.models.speech_mesh import SpeechMeshModel
from p3d.models.stage1 import Stage1Config, Stage1Model
from p3d.models.summary import layer_table, table_s1


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(4, 8)
        self.blocks = nn.Sequential(*(nn.Linear(8, 8) for _ in range(3)))
        self.unused = nn.Linear(8, 2)

    def forward(self, x):
        return self.blocks(self.inp(x))


def test_layer_table_shapes_params_and_repeats():
    df = layer_table(Toy(), lambda m: m(torch.zeros(5, 4)), max_depth=2)
    rows = {r.module: r for r in df.itertuples()}
    assert rows["inp"].output == "5x8" and rows["inp"].params == 4 * 8 + 8
    assert rows["blocks"].output == "5x8" and rows["blocks"].params == 3 * (8 * 8 + 8)
    assert rows["blocks.[0..]"].repeat == 3 and rows["blocks.[0..]"].params == 72
    assert rows["unused"].output == ""  # did not run
    flat = layer_table(Toy(), lambda m: m(torch.zeros(5, 4)), max_depth=2, collapse_repeats=False)
    assert {"blocks.0", "blocks.1", "blocks.2"} <= set(flat["module"])


def test_table_s1_describes_the_running_models():
    s1 = Stage1Model(Stage1Config.from_preset("smoke"))
    critic = SpeechMeshModel.ours(s1, MeshEncoderConfig.from_preset("smoke", n_vertices=30))
    df = table_s1(s1, critic, batch=2)
    assert set(df["component"]) == {"stage 1 (speech + video MAE)", "stage 2 mesh encoder"}
    mesh = df[df["component"] == "stage 2 mesh encoder"].set_index("module")
    assert mesh.loc["patch_embed", "output"] == f"2x5x{critic.mesh_encoder.dim}"
    assert mesh.loc["patch_embed", "params"] == 90 * critic.mesh_encoder.dim + critic.mesh_encoder.dim
    stage1 = df[df["component"] != "stage 2 mesh encoder"]
    assert stage1["params"][stage1["module"].str.count(r"\.") == 0].sum() == sum(p.numel() for p in s1.parameters())
