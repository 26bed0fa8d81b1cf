"""The official release's ``speech_mesh_rep`` checkpoints: safe loading, the key map, ``p3d convert``.

The fixtures have the official key names and structure (the list measured from the released
checkpoint, ``official-speech-mesh-rep-keys.json``) at scaled-down sizes (width 128, 2 blocks, a
40-vertex mesh); one test checks the full-size list on the ``meta`` device (no memory). The official
forward pass is re-stated in plain torch in ``tests/official_model.py``, independently of p3d's modules.
"""
from __future__ import annotations

import argparse
import collections
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from official_model import DEPTH, N_VERTICES, WIDTH, official_features, official_key_shapes
from official_model import official_state_dict as official_state_dict_fixture
from p3d.errors import InputError
from p3d.models.mesh_encoder import MeshEncoderConfig
from p3d.models.speech_encoder import SpeechEncoderConfig
from p3d.models.speech_mesh import (
    SpeechMeshConfig, SpeechMeshModel, from_official, load_critic, official_checkpoint, official_config,
    official_to_p3d_state_dict, p3d_to_official_state_dict,
)

#: [key, shape] of the released ``model_eval.pth`` / ``model_loss.pth`` (268 tensors, 70,764,032 parameters).
FULL_KEYS_PATH = Path(__file__).with_name("official_speech_mesh_rep_keys.json")

HEADS = 2  # heads of 64, as the official model


def _inputs(b: int = 4, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 20, 128, generator=g), 0.1 * torch.randn(b, 5, N_VERTICES, 3, generator=g)


def _features(model, fbank, vertices):
    with torch.no_grad():
        return model.encode_speech(fbank), model.encode_mesh(vertices)


# --- tests -------------------------------------------------------------------------------------

def test_the_full_official_key_list_maps_onto_the_paper_preset():
    import json

    listed = json.loads(FULL_KEYS_PATH.read_text())
    # the written-out structure is the measured one
    assert [(k, tuple(s)) for k, s in listed] == official_key_shapes(512, 10, 5023)
    official = {k: torch.empty(s, device="meta") for k, s in listed}
    assert len(official) == 268 and sum(math.prod(s) for _, s in listed) == 70_764_032
    assert official_config(official) == SpeechMeshConfig.from_preset("paper")
    mapped = official_to_p3d_state_dict(official)
    with torch.device("meta"):
        paper = SpeechMeshModel.from_config(SpeechMeshConfig.from_preset("paper"))
    ours = paper.state_dict()
    assert sorted(mapped) == sorted(ours)
    assert all(mapped[k].shape == ours[k].shape for k in ours)
    back = p3d_to_official_state_dict(paper)
    assert [(k, tuple(v.shape)) for k, v in back.items()] == [(k, tuple(s)) for k, s in listed]
    # the paper preset is the official architecture
    mesh, speech = paper.mesh_encoder, paper.speech_encoder
    assert tuple(mesh.pos_embed.shape) == (5, 512) and tuple(speech.pos_embed.shape) == (512, 512)
    block = mesh.encoder.blocks[0]
    assert block.norm1.eps == mesh.encoder.norm.eps == 1e-6 and block.attn.heads == 8
    assert isinstance(block.mlp[1], torch.nn.GELU) and block.mlp[1].approximate == "none"


def test_loaded_official_model_computes_the_official_features(tmp_path, one_torch_thread):
    sd = official_state_dict_fixture()
    fbank, vertices = _inputs()
    ref_s, ref_m = official_features(sd, fbank, vertices)
    for i, ckpt in enumerate([
        {"model": sd, "epoch": 7, "args": argparse.Namespace(lr=1e-4, model="speech_mesh_rep", layers=[1, 2])},
        {"module": sd},
        sd,
    ]):
        torch.save(ckpt, tmp_path / f"official{i}.pth")
        model = load_critic(tmp_path / f"official{i}.pth")
        assert isinstance(model, SpeechMeshModel) and not model.training and model.freeze_speech
        s, m = _features(model, fbank, vertices)
        np.testing.assert_allclose(s.double(), ref_s, atol=1e-6)
        np.testing.assert_allclose(m.double(), ref_m, atol=1e-6)
    # the official key projection has no bias: the mapped one is zero
    assert torch.equal(model.mesh_encoder.encoder.blocks[0].attn.kv.bias[:WIDTH], torch.zeros(WIDTH))


def test_a_checkpoint_with_model_and_module_uses_model_as_the_official_script(tmp_path, one_torch_thread):
    """evaluate_PLRS.py reads ``ckpt['model']``, and only without it ``ckpt['module']`` (official-interop.md):
    a file holding both (e.g. saved from a DDP wrapper beside its module) is scored with the ``model`` weights."""
    sd_model, sd_module = official_state_dict_fixture(seed=5), official_state_dict_fixture(seed=6)
    fbank, vertices = _inputs()
    ref_s, ref_m = official_features(sd_model, fbank, vertices)
    other_s, _ = official_features(sd_module, fbank, vertices)
    assert (ref_s - other_s).abs().max() > 1e-2  # the two weight sets give different features
    for ckpt in ({"model": sd_model, "module": sd_module}, {"module": sd_module, "model": sd_model}):
        torch.save(ckpt, tmp_path / "both.pth")
        s, m = _features(load_critic(tmp_path / "both.pth"), fbank, vertices)
        np.testing.assert_allclose(s.double(), ref_s, atol=1e-6)
        np.testing.assert_allclose(m.double(), ref_m, atol=1e-6)


def test_official_to_p3d_to_official_gives_the_same_tensors(tmp_path):
    sd = official_state_dict_fixture(seed=3)
    back = official_checkpoint(from_official({"model": sd}))
    assert set(back) == {"model"}  # heads of 64: nothing else needed
    assert list(back["model"]) == list(sd)
    for key in sd:
        assert torch.equal(back["model"][key], sd[key]), key


def _p3d_critic(heads: int = HEADS, seed: int = 0) -> SpeechMeshModel:
    torch.manual_seed(seed)
    config = SpeechMeshConfig(speech=SpeechEncoderConfig(dim=WIDTH, depth=DEPTH, heads=heads),
                              mesh=MeshEncoderConfig(n_vertices=N_VERTICES, dim=WIDTH, depth=DEPTH, heads=heads))
    model = SpeechMeshModel.from_config(config)
    with torch.no_grad():  # non-trivial biases (a key bias too) and input standardisation
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    g = torch.Generator().manual_seed(seed + 1)
    model.mesh_encoder.set_input_normalization(0.1 * torch.randn(N_VERTICES * 3, generator=g), 0.03)
    return model.eval()


@pytest.mark.parametrize("heads", [HEADS, 4])  # 4 heads of 32: p3d's cpu-preset head width
def test_p3d_critic_to_official_and_back_keeps_the_features(tmp_path, heads, one_torch_thread):
    model = _p3d_critic(heads)
    fbank, vertices = _inputs()
    vertices = vertices + model.mesh_encoder.input_mean.reshape(N_VERTICES, 3)  # near the training mean
    ckpt = official_checkpoint(model)
    assert ("p3d_heads" in ckpt) == (heads * 64 != WIDTH)
    torch.save(ckpt, tmp_path / "official.pth")
    again = load_critic(tmp_path / "official.pth")
    assert torch.equal(again.mesh_encoder.input_scale, torch.ones(()))  # folded into the first layer
    s0, m0 = _features(model, fbank, vertices)
    s1, m1 = _features(again, fbank, vertices)
    np.testing.assert_allclose(s1, s0, atol=2e-6)
    np.testing.assert_allclose(m1, m0, atol=2e-6)
    if heads * 64 == WIDTH:  # what the official code computes with the converted weights
        ref_s, ref_m = official_features(ckpt["model"], fbank, vertices)
        np.testing.assert_allclose(m0.double(), ref_m, atol=2e-6)
        np.testing.assert_allclose(s0.double(), ref_s, atol=2e-6)


class _TaggedStateDict(collections.OrderedDict):
    """A class no allow-list names: a checkpoint pickling it must be refused, not imported."""


def _not_allowed(x):
    return x


@pytest.mark.parametrize("payload", [
    lambda sd: {"model": _TaggedStateDict(sd)},
    lambda sd: {"model": sd, "hook": _not_allowed},
], ids=["dict-subclass", "function"])
def test_checkpoints_needing_other_globals_are_refused(tmp_path, payload, capsys):
    from p3d import convert

    path = tmp_path / "evil.pth"
    torch.save(payload(official_state_dict_fixture()), path)
    with pytest.raises(InputError, match=r"refused: .*(_TaggedStateDict|_not_allowed).*allow-list"):
        load_critic(path)
    assert _cli(convert, ["convert", "--from", "official", "--to", "p3d", str(path), str(tmp_path / "o.pt")]) == 2
    assert "allow-list" in capsys.readouterr().err and not (tmp_path / "o.pt").exists()


def test_not_a_critic_is_refused(tmp_path):
    torch.save({"model": {"something.else": torch.zeros(2)}}, tmp_path / "other.pth")
    with pytest.raises(InputError, match="neither a p3d model checkpoint .* nor an official"):
        load_critic(tmp_path / "other.pth")
    bad = official_state_dict_fixture()
    bad["encoder.extra.weight"] = torch.zeros(2)
    with pytest.raises(InputError, match="unexpected entries"):
        from_official(bad)
    with pytest.raises(InputError, match="not found"):
        load_critic(tmp_path / "missing.pth")


def _cli(module, argv):
    """Run a command module's parser the way ``p3d.cli.main`` does (InputError -> exit 2)."""
    from p3d import cli

    parser = argparse.ArgumentParser(prog="p3d")
    module.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        import sys

        print(f"p3d {args.command}: error: {exc}", file=sys.stderr)
        return cli.EXIT_BAD_INPUT


def test_convert_command_both_ways(tmp_path, monkeypatch, one_torch_thread):
    from p3d import cli, convert

    sd = official_state_dict_fixture(seed=5)
    torch.save({"model": sd, "epoch": 1, "args": argparse.Namespace(a=1)}, tmp_path / "model_eval.pth")
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("p3d.convert",))
    assert cli.main(["convert", "--from", "official", "--to", "p3d", str(tmp_path / "model_eval.pth"),
                     str(tmp_path / "critic.pt")]) == 0
    critic = load_critic(tmp_path / "critic.pt")  # a p3d checkpoint now
    assert torch.load(tmp_path / "critic.pt", weights_only=True)["format"] == "p3d-model"
    fbank, vertices = _inputs()
    ref_s, ref_m = official_features(sd, fbank, vertices)
    s, m = _features(critic, fbank, vertices)
    np.testing.assert_allclose(m.double(), ref_m, atol=1e-6)
    np.testing.assert_allclose(s.double(), ref_s, atol=1e-6)

    assert cli.main(["convert", "--from", "p3d", "--to", "official", str(tmp_path / "critic.pt"),
                     str(tmp_path / "back.pth")]) == 0
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert set(back) == {"model"} and all(torch.equal(back["model"][k], sd[k]) for k in sd)

    assert _cli(convert, ["convert", "--from", "official", "--to", "official", "a", "b"]) == 2
    assert _cli(convert, ["convert", "--from", "p3d", "--to", "official", str(tmp_path / "model_eval.pth"),
                          str(tmp_path / "x.pth")]) == 2  # already official
    assert _cli(convert, ["convert", "--from", "official", "--to", "p3d", str(tmp_path / "critic.pt"),
                          str(tmp_path / "x.pt")]) == 2  # not official
    assert not (tmp_path / "x.pth").exists() and not (tmp_path / "x.pt").exists()


def test_convert_refuses_an_output_it_cannot_write(tmp_path, capsys):
    """An OUTPUT that is a folder, or under a file, is one line and exit 2 before the input is read (were
    IsADirectoryError / FileExistsError tracebacks after the conversion)."""
    from p3d import convert

    torch.save({"model": official_state_dict_fixture(seed=5)}, tmp_path / "model_eval.pth")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    for out, message in [(tmp_path / "adir", "is a folder; give a file path"),
                         (tmp_path / "afile" / "critic.pt", "exists and is not a folder")]:
        assert _cli(convert, ["convert", "--from", "official", "--to", "p3d", str(tmp_path / "model_eval.pth"),
                              str(out)]) == 2
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile", "model_eval.pth"]
    assert not any((tmp_path / "adir").iterdir())


def test_convert_never_replaces_its_input(tmp_path, capsys):
    """OUTPUT = INPUT (by another spelling too) would replace the released model_eval.pth with a p3d file: refused,
    the input's bytes unchanged."""
    from p3d import convert

    path = tmp_path / "model_eval.pth"
    torch.save({"model": official_state_dict_fixture(seed=5)}, path)
    before = path.read_bytes()
    for out in (path, tmp_path / "." / "model_eval.pth"):
        assert _cli(convert, ["convert", "--from", "official", "--to", "p3d", str(path), str(out)]) == 2
        assert "would overwrite the input" in capsys.readouterr().err
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model_eval.pth"]


@pytest.mark.parametrize("damage, message", [
    (lambda sd: sd.update({"encoder.patch_embed.weight": [1.0]}), r"not tensors \['encoder.patch_embed.weight'\]"),
    (lambda sd: sd.update({"encoder.blocks.0.attn.q_bias": "x"}), r"not tensors \['encoder.blocks.0.attn.q_bias'\]"),
    (lambda sd: sd.pop("encoder.norm.weight"), r"missing entry 'encoder.norm.weight'"),
    (lambda sd: sd.update({"encoder_audio.norm.weight": torch.zeros(())}), r"encoder_audio.norm.weight has shape \(\)"),
], ids=["list", "string", "no-norm", "scalar-norm"])
def test_a_malformed_official_state_dict_is_one_line(tmp_path, damage, message, capsys):
    """Entries that are not tensors, or a missing / 0-d final norm, are one line and exit 2 (were AttributeError /
    ZeroDivisionError tracebacks from ``p3d convert`` and every loader of official checkpoints)."""
    from p3d import convert

    sd = official_state_dict_fixture()
    damage(sd)
    torch.save({"model": sd}, tmp_path / "model_eval.pth")
    with pytest.raises(InputError, match=message):
        load_critic(tmp_path / "model_eval.pth")
    assert _cli(convert, ["convert", "--from", "official", "--to", "p3d", str(tmp_path / "model_eval.pth"),
                          str(tmp_path / "critic.pt")]) == 2
    assert not (tmp_path / "critic.pt").exists()


@pytest.mark.parametrize("heads", [{"speech": 3, "mesh": 2}, {"speech": 0, "mesh": 2}, {"speech": -1, "mesh": 2},
                                   {"speech": 2.0, "mesh": 2}, {"speech": "x", "mesh": 2}])
def test_official_p3d_heads_that_build_no_model_are_one_line(tmp_path, heads, capsys):
    """``p3d_heads`` that do not divide the width, or are not positive integers, are one line and exit 2: were
    ValueError / ZeroDivisionError / TypeError tracebacks, and -1 or 2.0 were converted into a p3d checkpoint
    that loaded and then failed in the forward pass."""
    from p3d import convert

    torch.save({"model": official_state_dict_fixture(), "p3d_heads": heads}, tmp_path / "model_eval.pth")
    with pytest.raises(InputError, match="do not build a model"):
        load_critic(tmp_path / "model_eval.pth")
    assert _cli(convert, ["convert", "--from", "official", "--to", "p3d", str(tmp_path / "model_eval.pth"),
                          str(tmp_path / "critic.pt")]) == 2
    assert "do not build a model" in capsys.readouterr().err and not (tmp_path / "critic.pt").exists()
    # a p3d checkpoint whose config holds such heads is refused when loaded, too
    model = _p3d_critic()
    ckpt = model.checkpoint()
    ckpt["config"]["speech"]["heads"] = heads["speech"]
    torch.save(ckpt, tmp_path / "p3d.pt")
    with pytest.raises(InputError):
        load_critic(tmp_path / "p3d.pt")


@pytest.mark.parametrize("damage", [lambda m: m.mesh_encoder.input_mean.__setitem__(0, float("nan")),
                                    lambda m: m.mesh_encoder.input_scale.fill_(0.0)], ids=["nan-mean", "zero-scale"])
def test_convert_to_official_refuses_a_standardisation_that_folds_into_nan(tmp_path, damage, capsys):
    """A p3d critic whose mesh input standardisation (buffers, which the loaders' finite-weights rule does not
    check) folds into NaN / inf first-layer weights is one line and exit 2: was written (rc 0) as an official
    file that every loader then refused for NaN weights."""
    from p3d import convert

    model = _p3d_critic()
    damage(model)
    model.save(tmp_path / "critic.pt")
    assert _cli(convert, ["convert", "--from", "p3d", "--to", "official", str(tmp_path / "critic.pt"),
                          str(tmp_path / "model.pth")]) == 2
    err = capsys.readouterr().err
    assert "critic.pt: its mesh input standardisation" in err and not (tmp_path / "model.pth").exists()
