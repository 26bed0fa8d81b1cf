"""Shared model machinery: eval_mode, config_from_dict and the talkers' one input check."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from p3d.errors import InputError
from p3d.models.base import eval_mode
from p3d.models.faceformer import FaceFormerConfig
from p3d.models.speech_mesh import SpeechMeshConfig
from p3d.models.syncnet3d import SyncNet3DConfig


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_restores_the_previous_mode_also_on_error(training):
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train(training)
    with eval_mode(model):
        assert not model.training and not model[1].training
    assert model.training is training and model[1].training is training
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError("inside")
    assert model.training is training


def test_config_from_dict_round_trips_through_json():
    for config in (FaceFormerConfig.from_preset("smoke"), SpeechMeshConfig.from_preset("smoke"), SyncNet3DConfig()):
        plain = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples become lists
        assert type(config).from_dict(plain) == config


def test_config_from_dict_keeps_defaults_and_refuses_unknown_keys():
    plain = dataclasses.asdict(SyncNet3DConfig())
    del plain["dilations"]  # a field an older checkpoint lacks: its default
    assert SyncNet3DConfig.from_dict(plain) == SyncNet3DConfig()
    with pytest.raises(InputError, match="not_a_field"):
        SyncNet3DConfig.from_dict({**plain, "not_a_field": 1})
    nested = dataclasses.asdict(FaceFormerConfig.from_preset("smoke"))
    nested["audio"]["bogus"] = 0
    with pytest.raises(InputError, match="bogus"):
        FaceFormerConfig.from_dict(nested)


def test_the_talkers_share_one_input_check():
    from p3d.models.faceformer import FaceFormer

    model = FaceFormer(FaceFormerConfig.from_preset("smoke", n_vertices=4, n_styles=2), pretrained_audio=False)
    audio, template = torch.zeros(1600), torch.zeros(4, 3)
    model.check_inputs(audio, template, 1)
    for bad_audio in (audio[None], audio[:0], torch.full((1600,), float("nan"))):
        with pytest.raises(InputError, match="audio"):
            model.check_inputs(bad_audio, template, 0)
    with pytest.raises(InputError, match="template"):
        model.check_inputs(audio, torch.full((4, 3), float("inf")), 0)
    with pytest.raises(InputError, match="style"):
        model.check_inputs(audio, template, 2)
    for bad_frames in (2.5, 0, -1):  # a positive integer frame count
        with pytest.raises(InputError, match="n_frames"):
            model.check_n_frames(bad_frames)
    assert model.check_n_frames(3.0) == 3 and model.check_n_frames(1) == 1
    from p3d.models.talker import TalkerBatch

    clip = TalkerBatch(audio=audio, template=template, style=0, vertices=torch.zeros(3, 4, 3), stem="c")
    assert model.check_clip(clip).shape == (3, 4, 3)
    clip.vertices[1, 2, 0] = float("nan")  # training targets must be finite
    with pytest.raises(InputError, match="c: vertices contain NaN"):
        model.check_clip(clip)


def test_embed_windows_equals_embed_of_the_stacked_windows():
    from p3d.losses.perceptual_loss import mesh_windows
    from p3d.models.mesh_encoder import MeshEncoder, MeshEncoderConfig

    torch.manual_seed(0)
    encoder = MeshEncoder(MeshEncoderConfig.from_preset("smoke", n_vertices=6)).eval()
    frames = torch.randn(12, 18)
    shared = encoder.embed_windows(frames, 8)
    assert torch.allclose(shared, encoder.embed(mesh_windows(frames, 8)), atol=1e-5)
    with pytest.raises(InputError, match="n_windows"):
        encoder.embed_windows(frames, 9)


def test_one_loss_weight_check():
    from p3d.losses.perceptual_loss import check_weight

    assert check_weight(0) == 0.0 and check_weight(1e-7) == 1e-7
    for bad in (-1.0, float("nan"), float("inf"), "x", "1e-7", b"1e-7", True):
        with pytest.raises(InputError, match="--loss-weight"):
            check_weight(bad, "--loss-weight")


def test_a_talker_experiment_refuses_a_weight_given_as_text():
    """Text passed check_weight but stayed a string in the request: loss_weight "1e-7" was another arm than
    1e-7, and relative_weight "0.1" raised ValueError from the run's name."""
    from p3d.experiments.spec import TalkerExperiment

    for field in ("loss_weight", "relative_weight"):
        with pytest.raises(InputError, match=f"^{field}: expected a finite weight"):
            TalkerExperiment("faceformer", "ours", **{field: "1e-7"})


def test_the_model_class_table_lists_the_registrys_models():
    from p3d import registry
    from p3d.models import official_baselines
    from p3d.models.talker import MODELS

    assert tuple(MODELS) == registry.MODELS and official_baselines.MODELS == registry.MODELS


def test_eval_mode_leaves_a_module_already_in_eval_mode_alone(monkeypatch):
    """A module none of whose submodules trains is not visited (eval / train would walk every submodule); one
    with a training submodule is set to eval inside and restored as before."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).eval()
    calls = []
    monkeypatch.setattr(nn.Sequential, "train", lambda self, mode=True: calls.append(mode) or self)
    with eval_mode(model):
        assert not model.training
    assert calls == []
    monkeypatch.undo()
    model[1].train()  # one submodule training: the whole module is set to eval, then train(False) as before
    with eval_mode(model):
        assert not model[1].training
    assert not model.training and not model[1].training


def test_a_checkpoint_that_does_not_fit_its_model_is_a_one_line_input_error(tmp_path):
    """Missing or extra weights, another vertex count in the config than in the weights, a config or state
    dict absent or of the wrong type: an InputError naming the file and the entries (a RuntimeError
    traceback from ``load_state_dict``, a KeyError or a TypeError before)."""
    from p3d.models import load_model
    from p3d.models.speech_mesh import load_critic
    from p3d.models.syncnet3d import SyncNet3D

    ckpt = SyncNet3D(SyncNet3DConfig.from_preset("smoke", n_vertices=30)).checkpoint()
    first = next(iter(ckpt["state_dict"]))
    cases = {
        "missing": ({**ckpt, "state_dict": {k: v for k, v in ckpt["state_dict"].items() if k != first}},
                    f"missing \\['{first}'\\]"),
        "extra": ({**ckpt, "state_dict": {**ckpt["state_dict"], "extra.weight": torch.zeros(2)}},
                  "unexpected \\['extra.weight'\\]"),
        "vertices": ({**ckpt, "config": {**ckpt["config"], "n_vertices": 40}}, "shape mismatch .*90.* vs .*120"),
        "no_config": ({k: v for k, v in ckpt.items() if k != "config"}, "needs a 'config' dict"),
        "sd_list": ({**ckpt, "state_dict": [1]}, "needs a 'config' dict and a 'state_dict' dict"),
        "bad_value": ({**ckpt, "config": {**ckpt["config"], "embed_dim": "wide"}}, "config does not build a model"),
        # a diverged run's weights: loaded, every embedding was NaN
        "nan": ({**ckpt, "state_dict": {**ckpt["state_dict"], first: torch.full_like(ckpt["state_dict"][first],
                                                                                     float("nan"))}},
                f"NaN or inf weights in \\['{first}'\\]"),
    }
    for name, (bad, message) in cases.items():
        path = tmp_path / f"{name}.pt"
        torch.save(bad, path)
        for load in (load_model, load_critic, SyncNet3D.load):
            with pytest.raises(InputError, match=f"{name}.pt: syncnet3d checkpoint: .*{message}"):
                load(path)
    torch.save(ckpt, tmp_path / "good.pt")
    assert isinstance(load_model(tmp_path / "good.pt"), SyncNet3D)


def test_an_official_critic_with_nan_weights_is_refused(tmp_path):
    """An official speech_mesh_rep file whose weights hold NaN (a diverged or corrupted run) loaded, and PLRS of
    every sequence was NaN: refused naming the file (the baselines' official loader already refused it)."""
    from release_fixtures import official_critic_checkpoint

    from p3d.models.speech_mesh import load_critic

    path, sd = official_critic_checkpoint(tmp_path / "model_loss.pth", n_vertices=30)
    load_critic(path)
    key = next(k for k, v in sd.items() if v.is_floating_point() and v.ndim == 2)
    torch.save({"model": {**sd, key: torch.full_like(sd[key], float("nan"))}, "epoch": 99}, tmp_path / "nan.pth")
    with pytest.raises(InputError, match="nan.pth: NaN or inf weights in"):
        load_critic(tmp_path / "nan.pth")
