"""Stage 2: the speech-mesh dual encoder ("ours" with a frozen stage-1 speech encoder, and "no2d")."""
from __future__ import annotations

import logging

import pytest
import torch

from p3d.errors import InputError
from p3d.losses.infonce import info_nce
from p3d.models import load_model, read_checkpoint
from p3d.models.mesh_encoder import MeshEncoder, MeshEncoderConfig
from p3d.models.speech_encoder import SpeechEncoder, SpeechEncoderConfig
from p3d.models.speech_mesh import SpeechMeshConfig, SpeechMeshModel, load_critic
from p3d.models.stage1 import Stage1Config, Stage1Model, count_parameters
from critic_checks import assert_encoders_cast_input

log = logging.getLogger(__name__)
V = 12


def _batch(b: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 20, 128, generator=g), torch.randn(b, 5, V * 3, generator=g)


def _ours() -> tuple[Stage1Model, SpeechMeshModel]:
    torch.manual_seed(0)
    stage1 = Stage1Model(Stage1Config.from_preset("smoke"))
    return stage1, SpeechMeshModel.ours(stage1, MeshEncoderConfig.from_preset("smoke", n_vertices=V))


def test_forward_logits_and_loss():
    _, model = _ours()
    fbank, verts = _batch()
    logits_s, logits_m = model(fbank, verts)
    assert logits_s.shape == (6, 6)
    torch.testing.assert_close(logits_m, logits_s.T)
    s, m = model.encode_speech(fbank), model.encode_mesh(verts)
    torch.testing.assert_close(s.norm(dim=1), torch.ones(6))
    torch.testing.assert_close(logits_s, s @ m.T / 0.07)
    torch.testing.assert_close(model.loss(fbank, verts), info_nce(s, m, 0.07))
    torch.testing.assert_close(model.encode_mesh(verts.view(6, 5, V, 3)), m)  # (B, 5, V, 3) accepted
    assert model.loss(fbank, verts, layers=(0, 1)).item() > 0


def test_ours_speech_encoder_is_a_frozen_copy_of_stage1():
    stage1, model = _ours()
    for (name, p), q in zip(model.speech_encoder.state_dict().items(), stage1.speech_encoder.state_dict().values()):
        assert torch.equal(p, q), name
    assert model.speech_encoder is not stage1.speech_encoder
    assert not any(p.requires_grad for p in model.speech_encoder.parameters())
    assert all(p.requires_grad for p in model.mesh_encoder.parameters())
    model.train()
    assert model.training and model.mesh_encoder.training and not model.speech_encoder.training


def test_stage2_step_leaves_the_speech_encoder_unchanged():
    _, model = _ours()
    before = {k: v.clone() for k, v in model.speech_encoder.state_dict().items()}
    mesh_before = {k: v.clone() for k, v in model.mesh_encoder.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)  # even if handed every parameter
    model.train()
    for seed in range(2):
        opt.zero_grad()
        model.loss(*_batch(seed=seed)).backward()
        opt.step()
    for k, v in model.speech_encoder.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(v, mesh_before[k]) for k, v in model.mesh_encoder.state_dict().items())


def test_no2d_trains_both_encoders():
    torch.manual_seed(0)
    model = SpeechMeshModel.no2d(SpeechMeshConfig.from_preset("smoke", n_vertices=V))
    assert model.variant == "no2d" and not model.freeze_speech
    before = [p.clone() for p in model.speech_encoder.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    model.loss(*_batch()).backward()
    opt.step()
    assert model.speech_encoder.training
    assert any(not torch.equal(p, q) for p, q in zip(model.speech_encoder.parameters(), before))


def test_ours_from_a_stage1_checkpoint(tmp_path):
    stage1, _ = _ours()
    stage1.save(tmp_path / "stage1.pt")
    model = SpeechMeshModel.ours(tmp_path / "stage1.pt", MeshEncoderConfig.from_preset("smoke", n_vertices=V))
    fbank, _ = _batch()
    torch.testing.assert_close(model.encode_speech(fbank), stage1.eval().speech_encoder.embed(fbank))
    with pytest.raises(InputError, match="width"):
        SpeechMeshModel.ours(stage1, MeshEncoderConfig.from_preset("cpu", n_vertices=V))


def test_checkpoint_round_trip(tmp_path):
    _, model = _ours()
    model.eval().save(tmp_path / "ours.pt")
    ckpt = read_checkpoint(tmp_path / "ours.pt", "speech_mesh")
    assert ckpt["config"]["variant"] == "ours"
    for loaded in (SpeechMeshModel.load(tmp_path / "ours.pt"), load_model(tmp_path / "ours.pt")):
        assert isinstance(loaded, SpeechMeshModel) and loaded.freeze_speech
        assert not any(p.requires_grad for p in loaded.speech_encoder.parameters())
        fbank, verts = _batch()
        for x, y in zip(model(fbank, verts), loaded(fbank, verts)):
            torch.testing.assert_close(x, y)
    with pytest.raises(InputError, match="expected 'syncnet3d'"):
        read_checkpoint(tmp_path / "ours.pt", "syncnet3d")


def test_bad_checkpoints_and_inputs(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a p3d model checkpoint"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "missing.pt")
    _, model = _ours()
    with pytest.raises(InputError, match="12-vertex"):
        model.encode_mesh(torch.zeros(2, 5, 13 * 3))
    with pytest.raises(InputError, match="fbank"):
        model.encode_speech(torch.zeros(2, 20, 64))


def test_encoders_cast_other_real_dtypes_and_refuse_empty_or_non_real_input():
    """float64 / float16 / integer windows were a torch dtype RuntimeError ("Input type (double) and bias type
    (float)", "mat1 and mat2 must have the same dtype"), a zero-frame fbank a conv RuntimeError: now cast to the
    weights' dtype (float32 input gives the same bits), and no frames / bool / complex / non-tensors are one-line
    InputErrors."""
    _, model = _ours()
    model.eval()
    fbank, vertices = _batch(3, seed=4)
    assert_encoders_cast_input(model, fbank, vertices, (torch.float64, torch.float16, torch.bfloat16))
    ints = torch.randint(-3, 4, (3, 20, 128), generator=torch.Generator().manual_seed(1))
    assert torch.equal(model.encode_speech(ints), model.encode_speech(ints.float()))
    assert torch.equal(model.mesh_encoder.embed_windows(vertices[0].double(), 1), model.mesh_encoder.embed_windows(
        vertices[0], 1))
    assert model.loss(fbank.double(), vertices.double(), layers=[0, 1]).dtype == torch.float32
    for bad, match in ((torch.zeros(2, 0, 128), r"fbank: no frames \(shape \(2, 0, 128\)\)"),
                       (torch.zeros(2, 20, 128, dtype=torch.bool), "fbank: expected real numbers, got a torch.bool"),
                       (torch.zeros(2, 20, 128, dtype=torch.complex64), "fbank: expected real numbers"),
                       (fbank.numpy(), "fbank: expected a torch tensor, got ndarray")):
        with pytest.raises(InputError, match=match):
            model.encode_speech(bad)
    with pytest.raises(InputError, match="vertices: expected real numbers, got a torch.bool"):
        model.encode_mesh(torch.zeros(2, 5, 3 * V, dtype=torch.bool))
    assert model.encode_speech(fbank[:0]).shape == (0, model.encode_speech(fbank).shape[1])  # an empty batch stays empty


def test_paper_preset_sizes():
    speech = SpeechEncoder(SpeechEncoderConfig.from_preset("paper"))
    mesh = MeshEncoder(MeshEncoderConfig.from_preset("paper"))
    n_s, n_m = count_parameters(speech), count_parameters(mesh)
    print(f"paper preset: speech encoder {n_s / 1e6:.1f}M, mesh encoder {n_m / 1e6:.1f}M "
          f"(of which Linear(15069, 512) {(15069 * 512 + 512) / 1e6:.1f}M)")
    assert 30e6 < n_s < 33e6
    assert n_m == n_s - count_parameters(speech.patch_embed) + 15069 * 512 + 512


def test_load_critic_accepts_critics_only(tmp_path):
    from p3d.models.syncnet3d import SyncNet3D, SyncNet3DConfig

    stage1, model = _ours()
    model.save(tmp_path / "ours.pt")
    SyncNet3D(SyncNet3DConfig.from_preset("smoke", n_vertices=V)).save(tmp_path / "sync.pt")
    stage1.save(tmp_path / "stage1.pt")
    assert isinstance(load_critic(tmp_path / "ours.pt"), SpeechMeshModel)
    sync = load_critic(tmp_path / "sync.pt")
    assert sync.kind == "syncnet3d" and not sync.training
    with pytest.raises(InputError, match="not a speech-mesh critic"):
        load_critic(tmp_path / "stage1.pt")


def test_mesh_input_standardisation_is_applied_and_saved(tmp_path):
    from p3d.errors import InputError
    from p3d.models.mesh_encoder import MeshEncoder

    torch.manual_seed(0)
    enc = MeshEncoder(MeshEncoderConfig.from_preset("smoke", n_vertices=4)).eval()
    x = torch.randn(2, 5, 12) * 1e-3 + 0.1
    plain = enc(x)
    mean, scale = torch.full((12,), 0.1), 1e-3
    enc.set_input_normalization(mean, scale)
    ref = MeshEncoder(enc.config).eval()
    ref.load_state_dict({k: v for k, v in enc.state_dict().items() if not k.startswith("input_")}, strict=False)
    torch.testing.assert_close(enc(x), ref((x - 0.1) / 1e-3))
    assert not torch.allclose(enc(x), plain)
    torch.save(enc.state_dict(), tmp_path / "sd.pt")
    again = MeshEncoder(enc.config).eval()
    again.load_state_dict(torch.load(tmp_path / "sd.pt", weights_only=True))
    torch.testing.assert_close(again(x), enc(x))
    with pytest.raises(InputError, match="scale > 0"):
        enc.set_input_normalization(mean, 0.0)
    with pytest.raises(InputError, match="12 values"):
        enc.set_input_normalization(torch.zeros(5), 1.0)
    for bad_mean, bad_scale in ((mean.clone().fill_(float("nan")), 1.0), (mean, float("inf")), (mean, float("nan"))):
        with pytest.raises(InputError, match="finite"):  # the docstring: mean finite, scale > 0
            enc.set_input_normalization(bad_mean, bad_scale)


@pytest.mark.parametrize("official", [False, True])
def test_load_critic_returns_the_module_on_map_location(tmp_path, official):
    """``load_critic(path, map_location=device)`` (the perceptual loss on ``--device cuda``) returns every parameter
    and buffer on that device, the mesh encoder's input normalisation included; it used to build the module on
    the CPU whatever the device, and the loss then mixed devices (found on a GPU). ``meta`` stands in for CUDA."""
    if official:
        from release_fixtures import official_critic_checkpoint

        path, _ = official_critic_checkpoint(tmp_path / "model_loss.pth", n_vertices=V)
    else:
        _, model = _ours()
        path = tmp_path / "ours.pt"
        model.eval().save(path)
    critic = load_critic(path, map_location="meta")
    tensors = list(critic.parameters()) + list(critic.buffers())
    assert tensors and {t.device.type for t in tensors} == {"meta"}
    assert critic.mesh_encoder.input_mean.device.type == "meta"
    assert {t.device.type for t in load_critic(path).parameters()} == {"cpu"}


def test_mesh_embed_layers_index_the_encoder_layers():
    """``embed_layers(v, [l])`` is the pooled, L2-normalised output of layer l (0-based; the last layer's equals
    :meth:`embed`, the encoder's layers passing through its final LN)."""
    from p3d.models.mesh_encoder import MeshEncoder
    from p3d.models.transformer import pooled

    torch.manual_seed(0)
    enc = MeshEncoder(MeshEncoderConfig.from_preset("smoke", n_vertices=4)).eval()
    x = torch.randn(2, 5, 12)
    last, first = enc.embed_layers(x, [enc.config.depth - 1, 0])
    torch.testing.assert_close(last, enc.embed(x))
    torch.testing.assert_close(enc.embed_layers(x, [-1])[0], enc.embed(x))
    h = enc.patch_embed((x - enc.input_mean) / enc.input_scale) + enc.pos_embed
    torch.testing.assert_close(first, pooled(enc.encoder.norm(enc.encoder.blocks[0](h))))


def test_a_no2d_checkpoint_loads_with_both_encoders_trainable(tmp_path):
    """"w/o 2D prior" trains its speech encoder (Table 3): its checkpoint must not come back as a frozen-speech
    critic, or fine-tuning it (``p3d train finetune``, "what was frozen stays frozen") would freeze a side that was
    trained."""
    torch.manual_seed(0)
    model = SpeechMeshModel.no2d(SpeechMeshConfig.from_preset("smoke", n_vertices=V))
    model.save(tmp_path / "no2d.pt")
    assert read_checkpoint(tmp_path / "no2d.pt", "speech_mesh")["config"]["freeze_speech"] is False
    loaded = load_critic(tmp_path / "no2d.pt").train()
    assert loaded.variant == "no2d" and not loaded.freeze_speech and not loaded.config.freeze_speech
    assert loaded.speech_encoder.training
    assert all(p.requires_grad for p in loaded.speech_encoder.parameters())


def test_a_critics_own_temperature_sets_its_logits_and_loss(tmp_path):
    """Logits are cosine similarities / tau and the loss is the symmetric cross-entropy of those logits (Eq. 5,
    CLIP), with the critic's own tau, here 0.2 instead of the default 0.07; the checkpoint keeps it."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    stage1 = Stage1Model(Stage1Config.from_preset("smoke"))
    model = SpeechMeshModel.ours(stage1, MeshEncoderConfig.from_preset("smoke", n_vertices=V), temperature=0.2)
    fbank, verts = _batch()
    s, m = model.encode_speech(fbank), model.encode_mesh(verts)
    cosine = F.cosine_similarity(s[:, None, :], m[None, :, :], dim=-1)  # (B, B), independent of the normalisation
    logits_s, logits_m = model(fbank, verts)
    torch.testing.assert_close(logits_s, cosine / 0.2)
    torch.testing.assert_close(logits_m, cosine.T / 0.2)
    target = torch.arange(6)
    expected = (F.cross_entropy(cosine / 0.2, target) + F.cross_entropy(cosine.T / 0.2, target)) / 2
    torch.testing.assert_close(model.loss(fbank, verts), expected)
    model.save(tmp_path / "tau.pt")
    assert load_critic(tmp_path / "tau.pt").temperature == 0.2


def test_per_layer_loss_needs_encoders_of_equal_depth_and_load_critic_refuses_other_files(tmp_path):
    """Eq. 5's set L pairs layer l of E_s with layer l of E_m: encoders of different depths are refused, not paired
    by index. ``load_critic`` names a file that is neither a p3d checkpoint nor an official one as such."""
    torch.manual_seed(0)
    speech = SpeechEncoder(SpeechEncoderConfig.from_preset("smoke"))
    mesh = MeshEncoder(MeshEncoderConfig.from_preset("smoke", n_vertices=V, depth=speech.config.depth + 1))
    model = SpeechMeshModel(speech, mesh, freeze_speech=False, variant="no2d")
    with pytest.raises(InputError, match="equal depth"):
        model.loss(*_batch(), layers=(0, 1))
    torch.save({"kind": "speech_mesh", "weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="neither a p3d model checkpoint"):
        load_critic(tmp_path / "other.pt")
    with pytest.raises(InputError, match="missing.pt: checkpoint not found"):
        load_critic(tmp_path / "missing.pt")
    # a config that does not say otherwise is the paper's model: "ours", its speech encoder frozen
    default = SpeechMeshModel.from_config(SpeechMeshConfig.from_preset("smoke", n_vertices=V))
    assert default.variant == "ours" and default.freeze_speech


def test_speech_encoder_takes_the_papers_64_frames_and_indexes_its_layers():
    """The position table holds the paper's 64-frame spectrogram (Sec. 4): 64 frames are encoded, 65 refused;
    ``embed_layers`` indexes the encoder's layers from 0, the last one being :meth:`embed`."""
    torch.manual_seed(0)
    enc = SpeechEncoder(SpeechEncoderConfig.from_preset("smoke")).eval()
    assert enc(torch.zeros(1, 64, 128)).shape == (1, 64 * 8, 32)
    with pytest.raises(InputError, match="65 frames exceed"):
        enc(torch.zeros(1, 65, 128))
    fbank = torch.randn(2, 20, 128)
    torch.testing.assert_close(enc.embed_layers(fbank, [enc.config.depth - 1])[0], enc.embed(fbank))
    assert not torch.allclose(enc.embed_layers(fbank, [0])[0], enc.embed(fbank))
