"""p3d.train.api: fit reuses a finished run of the same request, refuses another, trains critics by name."""
import json

import pytest

from p3d.errors import InputError
from p3d.models.speech_mesh import load_critic
from p3d.train import api
from tiny_corpus import write_tiny_corpus


@pytest.fixture(scope="module")
def lrs3(tmp_path_factory):
    return write_tiny_corpus(tmp_path_factory.mktemp("lrs3"), identities={"train": 4, "test": 2},
                             clips_per_identity=2, seconds=1.5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test


def test_fit_reuses_finished_run_without_training(lrs3, tmp_path, monkeypatch):
    out = tmp_path / "syncnet3d"
    final = api.fit("syncnet3d", "smoke", lrs3, out, steps=3)
    assert final == out / "final.pt" and final.exists()
    assert json.loads((out / "request.json").read_text())["options"] == {"steps": 3}
    stamp = final.stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("a finished run must not be rebuilt")

    monkeypatch.setattr("p3d.train.representation.build", boom)
    assert api.fit("syncnet3d", "smoke", lrs3, out, steps=3) == final
    assert final.stat().st_mtime_ns == stamp


def test_fit_refuses_another_request_and_force_retrains(lrs3, tmp_path):
    out = tmp_path / "run"
    api.fit("syncnet3d", "smoke", lrs3, out, steps=2)
    with pytest.raises(InputError, match="another request"):
        api.fit("syncnet3d", "smoke", lrs3, out, steps=4)
    api.fit("syncnet3d", "smoke", lrs3, out, steps=4, force=True)
    assert json.loads((out / "request.json").read_text())["options"] == {"steps": 4}
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert rows[-1].startswith("4,")


def test_train_critic_ours_trains_stage1_then_stage2_and_evaluator_is_disjoint(lrs3, tmp_path, monkeypatch):
    ours = api.train_critic("ours", "smoke", lrs3, tmp_path, steps=2)
    assert (tmp_path / "stage1" / "final.pt").exists()
    critic_cfg = json.loads((tmp_path / "ours" / "config.json").read_text())
    evaluator = api.train_evaluator("smoke", lrs3, tmp_path, steps=2)
    eval_cfg = json.loads((tmp_path / "evaluator" / "config.json").read_text())
    assert set(critic_cfg["identity_list"]).isdisjoint(eval_cfg["identity_list"])
    assert critic_cfg["train"]["seed"] != eval_cfg["train"]["seed"]
    assert load_critic(ours).n_vertices == load_critic(evaluator).n_vertices


def test_train_critic_rejects_unknown_name(lrs3, tmp_path):
    with pytest.raises(InputError, match="unknown critic"):
        api.train_critic("clip", "smoke", lrs3, tmp_path)
