"""Official FaceFormer / SelfTalk / CodeTalker checkpoints: safe reading, the key maps, outputs equal to the
official forward pass, and ``p3d predict --checkpoint``.

Fixtures have the official key names and structure (``EvelynFan/FaceFormer`` ``faceformer.py``,
``psyai-net/SelfTalk_release`` ``SelfTalk.py``, ``Doubiiu/CodeTalker`` ``models/stage*.py``), saved the way
the official code saves them, at tiny sizes: a wav2vec2 with the real CNN strides (50 Hz) but 8 channels,
hidden 128 (2 heads of 64) and one layer, built from a ``Wav2Vec2Config`` (no download), with the
transformers-4.x weight-norm names (``weight_g`` / ``weight_v``). The official predictions are re-stated
below in plain torch following the official code (the whole prefix re-decoded at every step, the
official mask and PPE constructions), independently of p3d's modules. The full-size key lists are built
on the ``meta`` device.
"""
from __future__ import annotations

import argparse
import logging
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from p3d.errors import InputError
from p3d.models.official_baselines import (
    VOCASET_TRAIN_SUBJECTS, detect_model, load_official, official_n_frames, read_official_state_dict,
    wav2vec2_config_from_state_dict,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HIDDEN = 128
V = 30  # the tiny corpus' vertex count


# ------------------------------------------------------------------------------------ official pieces

def tiny_wav2vec2_config(hidden: int = HIDDEN, large: bool = False):
    from transformers import Wav2Vec2Config

    kw = dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True) if large else {}
    return Wav2Vec2Config(hidden_size=hidden, num_hidden_layers=1, num_attention_heads=hidden // 64,
                          intermediate_size=64, conv_dim=(8,) * 7, num_conv_pos_embeddings=16,
                          num_conv_pos_embedding_groups=4, **kw)


def official_wav2vec2(seed: int, large: bool = False, prefix: str = "audio_encoder."):
    """(HF Wav2Vec2Model in eval mode, its state dict under ``prefix`` with transformers-4.x names)."""
    from transformers import Wav2Vec2Model

    torch.manual_seed(seed)
    model = Wav2Vec2Model(tiny_wav2vec2_config(large=large)).eval()
    sd = {}
    for k, v in model.state_dict().items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                             "weight_v")
        sd[prefix + k] = v.clone()
    return model, sd


def _under(sd, prefix: str) -> dict:
    """The entries of ``sd`` whose key starts with ``prefix``, the prefix taken off."""
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def reference_wav2vec2(sd, large: bool = False):
    """The HF Wav2Vec2Model holding an official checkpoint's ``audio_encoder.*`` weights (transformers-4.x names
    ``weight_g``/``weight_v`` mapped back), in eval mode: the reference forward passes' audio encoder."""
    from transformers import Wav2Vec2Model

    w2v = Wav2Vec2Model(tiny_wav2vec2_config(large=large)).eval()
    w2v.load_state_dict({k.replace("weight_g", "parametrizations.weight.original0")
                        .replace("weight_v", "parametrizations.weight.original1"): v
                         for k, v in _under(sd, "audio_encoder.").items()})
    return w2v


def official_transformer_decoder(sd, d_model: int, num_layers: int) -> nn.TransformerDecoder:
    """The baselines' ``nn.TransformerDecoder`` (4 heads, feed-forward 2 x ``d_model``, batch first) holding
    ``sd``'s ``transformer_decoder.*`` weights, in eval mode."""
    layer = nn.TransformerDecoderLayer(d_model=d_model, nhead=4, dim_feedforward=2 * d_model, batch_first=True)
    decoder = nn.TransformerDecoder(layer, num_layers=num_layers).eval()
    decoder.load_state_dict(_under(sd, "transformer_decoder."))
    return decoder


def official_audio_features(w2v, audio: np.ndarray, dataset: str, frame_num: int | None = None,
                            cut_odd: bool = True) -> torch.Tensor:
    """The official ``Wav2Vec2Model`` subclass (``wav2vec.py``) after ``Wav2Vec2Processor`` normalisation
    (``cut_odd=False``: SelfTalk's, without the BIWI branch that drops an odd last feature)."""
    x = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    x = torch.from_numpy(x.astype(np.float32))[None]
    with torch.no_grad():
        h = w2v.feature_extractor(x).transpose(1, 2)
        if dataset == "BIWI":
            if h.shape[1] % 2 and cut_odd:
                h = h[:, :-1]
        else:
            n = frame_num if frame_num is not None else int(h.shape[1] / 50.0 * 30)
            h = F.interpolate(h.transpose(1, 2), size=n, align_corners=True, mode="linear").transpose(1, 2)
        p = w2v.feature_projection(h)
        p = p[0] if isinstance(p, tuple) else p
        return w2v.encoder(p).last_hidden_state


def official_biased_mask(n_head: int, max_seq_len: int, period: int) -> torch.Tensor:
    def slopes(n):
        start = 2 ** (-2 ** -(math.log2(n) - 3))
        return [start * start ** i for i in range(n)]

    s = torch.tensor(slopes(n_head))
    bias = torch.arange(0, max_seq_len, period)[:, None].repeat(1, period).view(-1) // period
    bias = -torch.flip(bias, dims=[0])
    alibi = torch.zeros(max_seq_len, max_seq_len)
    for i in range(max_seq_len):
        alibi[i, :i + 1] = bias[-(i + 1):]
    alibi = s[:, None, None] * alibi[None]
    mask = (torch.triu(torch.ones(max_seq_len, max_seq_len)) == 1).transpose(0, 1)
    mask = mask.float().masked_fill(mask == 0, float("-inf")).masked_fill(mask == 1, 0.0)
    return mask[None] + alibi


def official_enc_dec_mask(dataset: str, t: int, s: int) -> torch.Tensor:
    mask = torch.ones(t, s)
    for i in range(t):
        if dataset == "BIWI":
            mask[i, 2 * i:2 * i + 2] = 0
        else:
            mask[i, i] = 0
    return mask == 1


def official_ppe(d_model: int, period: int, max_seq_len: int = 600) -> torch.Tensor:
    pe = torch.zeros(period, d_model)
    position = torch.arange(0, period, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe[None].repeat(1, max_seq_len // period + 1, 1)


def _randomise(module: nn.Module, seed: int, scale: float = 0.2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: (scale * torch.randn(v.shape, generator=g) + (1.0 if k.endswith("norm1.weight") or
                                                             k.endswith("norm2.weight") or
                                                             k.endswith("norm3.weight") or
                                                             k.endswith("norm.weight") else 0.0))
            for k, v in module.state_dict().items()}


# ------------------------------------------------------------------------------------ FaceFormer

FF_DIM = 16


def faceformer_state_dict(dataset: str = "vocaset", n_vertices: int = V, n_styles: int = 8, d: int = FF_DIM,
                          seed: int = 0) -> dict[str, torch.Tensor]:
    """An official ``Faceformer`` state dict (``faceformer.py`` module names), trained-looking random weights."""
    period = 25 if dataset == "BIWI" else 30
    _, sd = official_wav2vec2(seed)
    g = torch.Generator().manual_seed(seed + 1)
    layer = nn.TransformerDecoderLayer(d_model=d, nhead=4, dim_feedforward=2 * d, batch_first=True)
    sd.update({"audio_feature_map.weight": 0.1 * torch.randn(d, HIDDEN, generator=g),
               "audio_feature_map.bias": 0.1 * torch.randn(d, generator=g),
               "vertice_map.weight": 0.3 * torch.randn(d, 3 * n_vertices, generator=g),
               "vertice_map.bias": 0.1 * torch.randn(d, generator=g),
               "PPE.pe": official_ppe(d, period)})
    sd.update({f"transformer_decoder.layers.0.{k}": v for k, v in _randomise(layer, seed + 2).items()})
    sd.update({"vertice_map_r.weight": 0.01 * torch.randn(3 * n_vertices, d, generator=g),
               "vertice_map_r.bias": 0.01 * torch.randn(3 * n_vertices, generator=g),
               "obj_vector.weight": torch.randn(d, n_styles, generator=g)})
    return sd


def official_faceformer_predict(sd, audio: np.ndarray, template: torch.Tensor, style: int,
                                dataset: str = "vocaset") -> torch.Tensor:
    """``Faceformer.predict``, re-stated: (T, V*3) absolute vertices."""
    d = sd["audio_feature_map.weight"].shape[0]
    n_styles = sd["obj_vector.weight"].shape[1]
    w2v = reference_wav2vec2(sd)
    decoder = official_transformer_decoder(sd, d, num_layers=1)
    biased = official_biased_mask(4, 600, 25 if dataset == "BIWI" else 30)
    with torch.no_grad():
        hidden = official_audio_features(w2v, audio, dataset)
        frame_num = hidden.shape[1] // 2 if dataset == "BIWI" else hidden.shape[1]
        hidden = F.linear(hidden, sd["audio_feature_map.weight"], sd["audio_feature_map.bias"])
        one_hot = F.one_hot(torch.tensor([style]), n_styles).float()
        style_emb = F.linear(one_hot, sd["obj_vector.weight"])[:, None]
        vertice_emb = style_emb
        for i in range(frame_num):
            x = vertice_emb + sd["PPE.pe"][:, :vertice_emb.shape[1]]
            n = x.shape[1]
            out = decoder(x, hidden, tgt_mask=biased[:, :n, :n], memory_mask=official_enc_dec_mask(dataset, n,
                                                                                                 hidden.shape[1]))
            out = F.linear(out, sd["vertice_map_r.weight"], sd["vertice_map_r.bias"])
            new = F.linear(out[:, -1], sd["vertice_map.weight"], sd["vertice_map.bias"])[:, None] + style_emb
            vertice_emb = torch.cat([vertice_emb, new], 1)
    return (out + template.reshape(1, 1, -1))[0]


def _audio(seconds: float = 0.7, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) + 0.02 * rng.standard_normal(t.size)
            ).astype(np.float32)


def assert_reproduces(model, audio: np.ndarray, template: torch.Tensor, style: int, expected: torch.Tensor) -> None:
    """``model.predict`` has the official frame count and matches the re-stated official prediction
    ``expected`` (T, V*3) to float32 accuracy relative to the motion, which must be visible (> 1 mm)."""
    n = official_n_frames(model, audio.size)
    assert n == expected.shape[0]
    got = model.predict(torch.from_numpy(audio), template, style, n)
    assert got.shape == (n, V, 3)
    motion = (expected.reshape(n, V, 3) - template).abs().max()
    assert motion > 1e-3  # the test can fail: the weights move the face
    torch.testing.assert_close(got, expected.reshape(n, V, 3), atol=1e-5 * float(motion) + 1e-6, rtol=1e-4)


@pytest.mark.parametrize("dataset", ["vocaset", "BIWI"])
def test_faceformer_checkpoint_reproduces_the_official_predict(tmp_path, dataset):
    sd = faceformer_state_dict(dataset)
    path = tmp_path / "vocaset.pth"
    torch.save(sd, path)  # main.py: torch.save(model.state_dict(), ...)
    model = load_official(path, "faceformer", dataset=dataset)
    assert model.config.period_frames == (25 if dataset == "BIWI" else 30)
    assert model.config.audio.features_per_frame == (2 if dataset == "BIWI" else 1)
    audio = _audio()
    template = torch.randn(V, 3, generator=torch.Generator().manual_seed(5))
    expected = official_faceformer_predict(sd, audio, template, style=3, dataset=dataset)
    assert_reproduces(model, audio, template, 3, expected)


def test_style_conditions_are_the_official_training_subjects_in_their_official_order():
    """Style index i of an official file is the i-th of the official ``--train_subjects`` (FaceFormer / CodeTalker /
    SelfTalk main.py; paper-digest.md, anchors.md): a reordered list silently predicts a clip's
    ``_condition_<subject>`` file with another subject's style."""
    from p3d.models.official_baselines import BIWI_TRAIN_SUBJECTS

    official_vocaset = ("FaceTalk_170728_03272_TA FaceTalk_170904_00128_TA FaceTalk_170725_00137_TA "
                        "FaceTalk_170915_00223_TA FaceTalk_170811_03274_TA FaceTalk_170913_03279_TA "
                        "FaceTalk_170904_03276_TA FaceTalk_170912_03278_TA")
    assert VOCASET_TRAIN_SUBJECTS == tuple(official_vocaset.split())
    assert BIWI_TRAIN_SUBJECTS == tuple("F2 F3 F4 M3 M4 M5".split())


@pytest.mark.parametrize("dataset", ["vocaset", "BIWI"])
def test_faceformer_file_without_its_ppe_table_gets_the_official_period(tmp_path, dataset):
    """A state dict without the ``PPE.pe`` buffer: the period is the official training setting (main.py's
    --period: 30 on VOCASET, 25 on BIWI), visible in predictions longer than one period (1.5 s)."""
    sd = faceformer_state_dict(dataset)
    torch.save({k: v for k, v in sd.items() if k != "PPE.pe"}, tmp_path / "no_ppe.pth")
    model = load_official(tmp_path / "no_ppe.pth", "faceformer", dataset=dataset)
    assert model.config.period_frames == (25 if dataset == "BIWI" else 30)
    audio = _audio(seconds=1.5, seed=2)
    template = torch.randn(V, 3, generator=torch.Generator().manual_seed(6))
    assert_reproduces(model, audio, template, 1, official_faceformer_predict(sd, audio, template, 1, dataset))


def test_official_frame_count_truncates_as_the_official_interpolation(tmp_path):
    """VOCASET: the official ``linear_interpolation`` sizes its output ``int(n50 / 50 * 30)`` (truncated, never
    rounded); BIWI ``n50 // 2``; checked at lengths where rounding would give one frame more."""
    counts = {}
    for dataset in ("vocaset", "BIWI"):
        torch.save(faceformer_state_dict(dataset), tmp_path / f"{dataset}.pth")
        model = load_official(tmp_path / f"{dataset}.pth", "faceformer", dataset=dataset)
        for n_samples in range(9600, 12801, 160):
            n50 = model.audio_encoder.n_features(n_samples)
            expected = int(n50 / 50.0 * 30) if dataset == "vocaset" else n50 // 2
            assert official_n_frames(model, n_samples) == expected
            counts[dataset, n50] = expected
    assert any(round(n50 * 0.6) != n for (d, n50), n in counts.items() if d == "vocaset")  # the check can fail
    assert any(n50 % 2 for d, n50 in counts if d == "BIWI")


def test_faceformer_key_map_is_complete_at_full_size():
    """The official VOCASET model (wav2vec2-base-960h, feature_dim 64, 5023 vertices) on the meta device: every
    official key maps onto p3d's FaceFormer and every p3d key is filled."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from p3d.models.official_baselines import faceformer_from_official

    with torch.device("meta"):
        w2v = Wav2Vec2Model(Wav2Vec2Config())  # the defaults are wav2vec2-base's architecture
        sd = {"audio_encoder." + k.replace("parametrizations.weight.original0", "weight_g")
              .replace("parametrizations.weight.original1", "weight_v"): v for k, v in w2v.state_dict().items()}
        layer = nn.TransformerDecoderLayer(d_model=64, nhead=4, dim_feedforward=128, batch_first=True)
        sd.update({f"transformer_decoder.layers.0.{k}": v for k, v in layer.state_dict().items()})
        sd.update({"audio_feature_map.weight": torch.empty(64, 768), "audio_feature_map.bias": torch.empty(64),
                   "vertice_map.weight": torch.empty(64, 15069), "vertice_map.bias": torch.empty(64),
                   "vertice_map_r.weight": torch.empty(15069, 64), "vertice_map_r.bias": torch.empty(15069),
                   "obj_vector.weight": torch.empty(64, 8)})
    sd["PPE.pe"] = official_ppe(64, 30)
    assert len(sd) == 237  # 211 wav2vec2-base tensors + 26 FaceFormer ones (PPE.pe included)
    cfg = wav2vec2_config_from_state_dict(sd)
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["feat_extract_norm"],
            cfg["conv_bias"]) == (768, 12, 12, "group", False)
    with torch.device("meta"):
        model = faceformer_from_official(sd, source="vocaset.pth")
    assert model.n_vertices == 5023 and model.n_styles == 8 and model.config.period_frames == 30


def test_faceformer_wrong_or_unsafe_files_are_refused(tmp_path):
    sd = faceformer_state_dict()
    bad = dict(sd)
    bad["extra.weight"] = torch.zeros(2)
    torch.save(bad, tmp_path / "extra.pth")
    with pytest.raises(InputError, match="unexpected.*extra.weight"):
        load_official(tmp_path / "extra.pth", "faceformer")
    del bad["extra.weight"], bad["obj_vector.weight"]
    torch.save(bad, tmp_path / "nostyle.pth")
    with pytest.raises(InputError, match="not an official"):
        load_official(tmp_path / "nostyle.pth", "faceformer")
    torch.save(sd, tmp_path / "ff.pth")
    with pytest.raises(InputError, match="faceformer checkpoint, not selftalk"):
        load_official(tmp_path / "ff.pth", "selftalk")
    torch.save({"state_dict": sd, "opt": argparse.Namespace(lr=1e-4)}, tmp_path / "ns.pth")
    assert detect_model(read_official_state_dict(tmp_path / "ns.pth")) == "faceformer"
    torch.save({"state_dict": sd, "fn": F.relu}, tmp_path / "evil.pth")
    with pytest.raises(InputError, match="refused"):
        read_official_state_dict(tmp_path / "evil.pth")


def test_incomplete_official_files_are_one_line_input_errors(tmp_path):
    """An official file with an entry or a whole layer stack missing, or a tensor of fewer dimensions, is an
    InputError naming the file and the entry; reading the architecture off the shapes raised KeyError,
    ValueError (max() of no layers) or IndexError tracebacks."""
    def without(sd, *prefixes):
        return {k: v for k, v in sd.items() if not k.startswith(prefixes)}

    ff, st = faceformer_state_dict(), selftalk_state_dict()
    ct = codetalker_stage2_state_dict()
    cases = {
        "ff_map": (without(ff, "vertice_map.weight"), "no entry 'vertice_map.weight'"),
        "ff_decoder": (without(ff, "transformer_decoder."), "no transformer_decoder.layers.<i>.* entries"),
        "ff_w2v": (without(ff, "audio_encoder.encoder.layers.0.feed_forward.intermediate_dense.weight"),
                   "no entry 'encoder.layers.0.feed_forward.intermediate_dense.weight'"),
        "ff_style": ({**ff, "obj_vector.weight": torch.zeros(FF_DIM)}, "fewer dimensions"),
        "st_head": (without(st, "vertice_map_r.weight"), "no entry 'vertice_map_r.weight'"),
        "st_encoder": (without(st, "transformer.encoder."), "no transformer.encoder.layers.<i>.* entries"),
        "ct_decoder": (without(ct, "transformer_decoder."), "no transformer_decoder.layers.<i>.* entries"),
        "ct_vq": (without(ct, "autoencoder.encoder.encoder_transformer."), "no autoencoder.encoder.encoder_transformer"),
        "ct_mlp": (without(ct, "autoencoder.encoder.encoder_transformer.net.1.fn.fn.l1.weight"),
                   "no entry 'encoder.encoder_transformer.net.1.fn.fn.l1.weight'"),
    }
    for name, (sd, message) in cases.items():
        torch.save(sd, tmp_path / f"{name}.pth")
        with pytest.raises(InputError, match=f"{name}.pth: .*{re.escape(message)}"):
            load_official(tmp_path / f"{name}.pth")


def test_a_half_precision_faceformer_file_loads_and_a_misshaped_ppe_is_refused(tmp_path):
    """A checkpoint converted to float16 (half the download) keeps its PPE table to float16 rounding: it loads
    (its period recognised) and predicts as the official model with those weights; it was refused as "not a
    periodic positional encoding table". A PPE table of another width was a RuntimeError of allclose."""
    sd = {k: v.half() for k, v in faceformer_state_dict().items()}
    torch.save(sd, tmp_path / "half.pth")
    model = load_official(tmp_path / "half.pth", "faceformer")
    assert model.config.period_frames == 30
    audio = _audio()
    template = torch.randn(V, 3, generator=torch.Generator().manual_seed(5))
    expected = official_faceformer_predict({k: v.float() for k, v in sd.items()}, audio, template, style=2)
    assert_reproduces(model, audio, template, 2, expected)
    torch.save({**faceformer_state_dict(), "PPE.pe": official_ppe(8, 30)}, tmp_path / "ppe.pth")
    with pytest.raises(InputError, match="ppe.pth: PPE.pe \\(1, 630, 8\\) is not a \\(1, L, 16\\)"):
        load_official(tmp_path / "ppe.pth")


def test_non_finite_or_integer_weights_are_refused(tmp_path):
    """NaN weights (a diverged run) loaded and predicted NaN vertices; a float weight stored as int64 was cast and
    run. Both are InputErrors naming the entry."""
    sd = faceformer_state_dict()
    bad = dict(sd)
    bad["vertice_map_r.weight"] = bad["vertice_map_r.weight"].clone()
    bad["vertice_map_r.weight"][0, 0] = float("nan")
    torch.save(bad, tmp_path / "nan.pth")
    with pytest.raises(InputError, match="nan.pth: NaN or inf weights in \\['vertice_map_r.weight'\\]"):
        load_official(tmp_path / "nan.pth")
    torch.save({**sd, "obj_vector.weight": sd["obj_vector.weight"].round().long()}, tmp_path / "int.pth")
    with pytest.raises(InputError, match="int.pth: .*dtype mismatch \\['obj_vector.weight torch.int64 vs torch.float32"):
        load_official(tmp_path / "int.pth")


# ------------------------------------------------------------------------------------ SelfTalk

ST_DIM = 32
N_LIP = 6


def selftalk_state_dict(dataset: str = "vocaset", n_vertices: int = V, seed: int = 0) -> dict[str, torch.Tensor]:
    """An official ``SelfTalk`` state dict (``SelfTalk.py`` names; xlsr-style "large" wav2vec2, ASR head)."""
    from transformers import Wav2Vec2ForCTC

    per_frame = 2 if dataset == "BIWI" else 1
    _, sd = official_wav2vec2(seed, large=True)
    torch.manual_seed(seed + 7)
    asr = Wav2Vec2ForCTC(tiny_wav2vec2_config(large=True))
    sd.update({"text_encoder." + k: v for k, v in asr.state_dict().items()})
    g = torch.Generator().manual_seed(seed + 1)
    layer = nn.TransformerDecoderLayer(d_model=ST_DIM, nhead=4, dim_feedforward=2 * ST_DIM, batch_first=True)
    transformer = nn.Transformer(d_model=HIDDEN, nhead=8, num_encoder_layers=1, num_decoder_layers=1,
                                 dim_feedforward=64, batch_first=True)
    sd.update({"lip_map.weight": 0.1 * torch.randn(HIDDEN, 3 * N_LIP, generator=g),
               "lip_map.bias": torch.zeros(HIDDEN)})
    sd.update({f"transformer_decoder.layers.0.{k}": v for k, v in _randomise(layer, seed + 2).items()})
    sd.update({"audio_feature_map.weight": 0.1 * torch.randn(ST_DIM, per_frame * HIDDEN, generator=g),
               "audio_feature_map.bias": 0.1 * torch.randn(ST_DIM, generator=g)})
    sd.update({f"transformer.{k}": v for k, v in _randomise(transformer, seed + 3).items()})
    sd.update({"vertice_map_r.weight": 0.01 * torch.randn(3 * n_vertices, ST_DIM, generator=g),
               "vertice_map_r.bias": 0.01 * torch.randn(3 * n_vertices, generator=g),
               "lm_head.weight": 0.1 * torch.randn(33, HIDDEN, generator=g), "lm_head.bias": torch.zeros(33)})
    return sd


def official_selftalk_predict(sd, audio: np.ndarray, template: torch.Tensor, dataset: str = "vocaset"):
    """``SelfTalk.predict``'s vertices, re-stated: (T, V*3)."""
    w2v = reference_wav2vec2(sd, large=True)
    decoder = official_transformer_decoder(sd, ST_DIM, num_layers=1)
    with torch.no_grad():
        hidden = official_audio_features(w2v, audio, "BIWI" if dataset == "BIWI" else "vocaset", cut_odd=False)
        if dataset == "BIWI":  # SelfTalk.predict: an odd last feature dropped from the transformer's output
            hidden = hidden[:, :hidden.shape[1] - hidden.shape[1] % 2]
            hidden = hidden.reshape(1, hidden.shape[1] // 2, hidden.shape[2] * 2)
        x = F.linear(hidden, sd["audio_feature_map.weight"], sd["audio_feature_map.bias"])
        out = F.linear(decoder(x, x), sd["vertice_map_r.weight"], sd["vertice_map_r.bias"])
    return (out + template.reshape(1, 1, -1))[0]


@pytest.mark.parametrize("dataset", ["vocaset", "BIWI"])
def test_selftalk_checkpoint_reproduces_the_official_predict(tmp_path, dataset, caplog):
    sd = selftalk_state_dict(dataset)
    torch.save(sd, tmp_path / "vocaset.pth")
    model = load_official(tmp_path / "vocaset.pth", "selftalk", dataset=dataset)
    assert "placeholder" in caplog.text  # 6 lip vertices of a 30-vertex mesh: no known list
    assert model.config.audio.wav2vec2_config["do_stable_layer_norm"] is True
    audio = _audio(seed=1)
    template = torch.randn(V, 3, generator=torch.Generator().manual_seed(6))
    expected = official_selftalk_predict(sd, audio, template, dataset)
    assert_reproduces(model, audio, template, 0, expected)


@pytest.mark.parametrize("seconds", [0.7, 1.0])  # 34 and 49 wav2vec2 features
def test_selftalk_biwi_runs_wav2vec2_on_every_feature(tmp_path, seconds):
    """SelfTalk's ``wav2vec.py`` has no BIWI branch: the transformer runs on every 50 Hz feature, and ``predict``
    drops an odd last one from its output (FaceFormer and CodeTalker drop it before the transformer). p3d cut it
    before the transformer for SelfTalk too: at 1 s of audio (49 features) every frame moved, by up to
    3.8e-3 against 0.15 of motion in this fixture."""
    sd = selftalk_state_dict("BIWI")
    torch.save(sd, tmp_path / "BIWI.pth")
    model = load_official(tmp_path / "BIWI.pth", "selftalk")
    audio = _audio(seconds, seed=1)
    template = torch.randn(V, 3, generator=torch.Generator().manual_seed(6))
    assert_reproduces(model, audio, template, 0, official_selftalk_predict(sd, audio, template, "BIWI"))


def test_selftalk_frame_rate_comes_from_the_weights(tmp_path):
    """``SelfTalk.py``: ``audio_feature_map`` reads 2 x 1024 paired 50 Hz features on BIWI (25 fps), 1024
    interpolated ones on VOCASET (30 fps). A BIWI-shaped file on a mesh other than BIWI's was loaded at 30 fps
    and made 24 frames for 1 s of audio (25 Hz frames labelled 30 fps); ``dataset`` contradicting the weights
    (or a 23370 / 5023 vertex count doing so) loaded silently. Now the weights set the fps, and a contradiction
    is a one-line InputError."""
    audio = np.zeros(16000, np.float32)  # 1 s
    torch.save(selftalk_state_dict("BIWI"), tmp_path / "biwi.pth")
    for dataset in (None, "BIWI", "biwi"):
        model = load_official(tmp_path / "biwi.pth", "selftalk", dataset=dataset)
        n = official_n_frames(model, audio.size)
        assert (model.config.fps, model.config.audio.features_per_frame, n) == (25.0, 2, 24)
        assert model.predict(torch.from_numpy(audio), torch.zeros(V, 3), 0, n).shape == (24, V, 3)
    with pytest.raises(InputError, match=r"biwi.pth: dataset 'vocaset' \(--dataset\) contradicts the weights .*2 wav2"):
        load_official(tmp_path / "biwi.pth", "selftalk", dataset="vocaset")
    torch.save(selftalk_state_dict("vocaset"), tmp_path / "voca.pth")
    assert load_official(tmp_path / "voca.pth", "selftalk").config.fps == 30.0
    with pytest.raises(InputError, match=r"dataset 'BIWI' \(--dataset\) contradicts the weights .*vocaset layout at 30"):
        load_official(tmp_path / "voca.pth", "selftalk", dataset="BIWI")
    # a BIWI (23370-vertex) mesh with VOCASET's single-feature layout, and a FLAME mesh with BIWI's
    torch.save(selftalk_state_dict("vocaset", n_vertices=23370), tmp_path / "voca_on_biwi.pth")
    with pytest.raises(InputError, match=r"a 23370-vertex \(BIWI\) mesh contradicts the weights .*--dataset vocaset"):
        load_official(tmp_path / "voca_on_biwi.pth", "selftalk")
    assert load_official(tmp_path / "voca_on_biwi.pth", "selftalk", dataset="vocaset").config.fps == 30.0
    torch.save(selftalk_state_dict("BIWI", n_vertices=5023), tmp_path / "biwi_on_flame.pth")
    with pytest.raises(InputError, match=r"a 5023-vertex \(vocaset\) mesh contradicts the weights"):
        load_official(tmp_path / "biwi_on_flame.pth", "selftalk")
    # neither 1 nor 2 wav2vec2 features per frame
    sd = selftalk_state_dict("vocaset")
    sd["audio_feature_map.weight"] = torch.cat([sd["audio_feature_map.weight"]] * 3, dim=1)
    torch.save(sd, tmp_path / "three.pth")
    with pytest.raises(InputError, match=r"three.pth: audio_feature_map reads 384 features, not 1 or 2"):
        load_official(tmp_path / "three.pth", "selftalk")


def test_selftalk_key_map_is_complete_at_full_size():
    """The official VOCASET SelfTalk (wav2vec2-large-xlsr-53, feature_dim 512, FLAME lips) on the meta device."""
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC, Wav2Vec2Model

    from p3d.models.official_baselines import selftalk_from_official
    from p3d.topology import FLAME_LIPS

    large = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                 feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, vocab_size=33)
    with torch.device("meta"):
        sd = {"audio_encoder." + k: v for k, v in Wav2Vec2Model(Wav2Vec2Config(**large)).state_dict().items()}
        sd.update({"text_encoder." + k: v for k, v in Wav2Vec2ForCTC(Wav2Vec2Config(**large)).state_dict().items()})
        layer = nn.TransformerDecoderLayer(d_model=512, nhead=4, dim_feedforward=1024, batch_first=True)
        sd.update({f"transformer_decoder.layers.0.{k}": v for k, v in layer.state_dict().items()})
        sd.update({f"transformer.{k}": v for k, v in nn.Transformer(d_model=1024, batch_first=True).state_dict().items()})
        sd.update({"lip_map.weight": torch.empty(1024, 762), "lip_map.bias": torch.empty(1024),
                   "audio_feature_map.weight": torch.empty(512, 1024), "audio_feature_map.bias": torch.empty(512),
                   "vertice_map_r.weight": torch.empty(15069, 512), "vertice_map_r.bias": torch.empty(15069),
                   "lm_head.weight": torch.empty(33, 1024), "lm_head.bias": torch.empty(33)})
        model = selftalk_from_official(sd, source="vocaset.pth")
    assert model.config.lip_indices == tuple(FLAME_LIPS) and model.config.dim == 512
    assert model.config.audio.wav2vec2_config["num_attention_heads"] == 16


# ------------------------------------------------------------------------------------ CodeTalker

VQ, VQ_HEADS, N_CODES, CODE = 32, 8, 16, 8
CT_DIM = 32


def _official_vq_transformer(prefix: str, g: torch.Generator, n_layers: int = 2) -> dict[str, torch.Tensor]:
    """``Transformer`` of ``models/lib/base_models.py``: net.{2i} = Residual(Norm(Attention)),
    net.{2i+1} = Residual(Norm(MLP))."""
    sd = {}
    for i in range(n_layers):
        a, m = f"{prefix}.net.{2 * i}.fn", f"{prefix}.net.{2 * i + 1}.fn"
        sd.update({f"{a}.norm.weight": 1 + 0.1 * torch.randn(VQ, generator=g), f"{a}.norm.bias": 0.1 * torch.randn(VQ, generator=g),
                   f"{a}.fn.to_qkv.weight": 0.3 * torch.randn(3 * VQ, VQ, generator=g),
                   f"{a}.fn.to_out.weight": 0.2 * torch.randn(VQ, VQ, generator=g),
                   f"{a}.fn.to_out.bias": 0.1 * torch.randn(VQ, generator=g),
                   f"{m}.norm.weight": 1 + 0.1 * torch.randn(VQ, generator=g), f"{m}.norm.bias": 0.1 * torch.randn(VQ, generator=g),
                   f"{m}.fn.l1.weight": 0.2 * torch.randn(48, VQ, generator=g), f"{m}.fn.l1.bias": 0.1 * torch.randn(48, generator=g),
                   f"{m}.fn.l2.weight": 0.2 * torch.randn(VQ, 48, generator=g), f"{m}.fn.l2.bias": 0.1 * torch.randn(VQ, generator=g)})
    return sd


def _official_pe(d: int, max_len: int = 5000) -> torch.Tensor:
    pe = torch.zeros(max_len, d)
    position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2).float() * (-math.log(10000.0) / d))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.unsqueeze(0).transpose(0, 1)


def codetalker_stage1_state_dict(dataset: str = "vocaset", n_vertices: int = V, seed: int = 0):
    """An official ``VQAutoEncoder`` state dict (``stage1_vocaset.py`` / ``stage1_BIWI.py``)."""
    g = torch.Generator().manual_seed(seed)
    n_face = VQ // CODE if dataset == "vocaset" else 2
    sd = {"encoder.vertice_mapping.0.weight": 0.3 * torch.randn(VQ, 3 * n_vertices, generator=g),
          "encoder.vertice_mapping.0.bias": 0.1 * torch.randn(VQ, generator=g),
          "encoder.squasher.0.0.weight": 0.1 * torch.randn(VQ, VQ, 5, generator=g),
          "encoder.squasher.0.0.bias": 0.1 * torch.randn(VQ, generator=g),
          "encoder.encoder_linear_embedding.net.weight": 0.2 * torch.randn(VQ, VQ, generator=g),
          "encoder.encoder_linear_embedding.net.bias": 0.1 * torch.randn(VQ, generator=g),
          "encoder.encoder_pos_embedding.pe": _official_pe(VQ)}
    sd.update(_official_vq_transformer("encoder.encoder_transformer", g))
    if dataset == "BIWI":
        sd.update({"encoder.encoder_linear_embedding_post.net.weight": 0.2 * torch.randn(n_face * CODE, VQ, generator=g),
                   "encoder.encoder_linear_embedding_post.net.bias": 0.1 * torch.randn(n_face * CODE, generator=g),
                   "decoder.decoder_linear_embedding_pre.net.weight": 0.2 * torch.randn(VQ, n_face * CODE, generator=g),
                   "decoder.decoder_linear_embedding_pre.net.bias": 0.1 * torch.randn(VQ, generator=g)})
    sd.update({"decoder.expander.0.0.weight": 0.1 * torch.randn(VQ, VQ, 5, generator=g),
               "decoder.expander.0.0.bias": 0.1 * torch.randn(VQ, generator=g),
               "decoder.decoder_linear_embedding.net.weight": 0.2 * torch.randn(VQ, VQ, generator=g),
               "decoder.decoder_linear_embedding.net.bias": 0.1 * torch.randn(VQ, generator=g),
               "decoder.decoder_pos_embedding.pe": _official_pe(VQ)})
    sd.update(_official_vq_transformer("decoder.decoder_transformer", g))
    sd["decoder.vertice_map_reverse.weight"] = 0.01 * torch.randn(3 * n_vertices, VQ, generator=g)
    if dataset == "vocaset":
        sd["decoder.vertice_map_reverse.bias"] = 0.01 * torch.randn(3 * n_vertices, generator=g)
    sd["quantize.embedding.weight"] = torch.randn(N_CODES, CODE, generator=g)
    return sd


def official_vq_stack(sd, part: str, x: torch.Tensor) -> torch.Tensor:
    """The official encoder (``part="encoder"``, motion (1, T, V*3) -> (1, T, n_face*code)) or decoder
    (codes (1, T, n_face*code) -> motion)."""
    p = part + "."
    if part == "encoder":
        x = F.leaky_relu(F.linear(x, sd[p + "vertice_mapping.0.weight"], sd[p + "vertice_mapping.0.bias"]), 0.2)
        conv = "squasher.0.0"
    else:
        if p + "decoder_linear_embedding_pre.net.weight" in sd:
            x = F.linear(x, sd[p + "decoder_linear_embedding_pre.net.weight"], sd[p + "decoder_linear_embedding_pre.net.bias"])
        conv = "expander.0.0"
    h = F.conv1d(F.pad(x.transpose(1, 2), (2, 2), mode="replicate"), sd[p + conv + ".weight"], sd[p + conv + ".bias"])
    h = F.instance_norm(F.leaky_relu(h, 0.2)).transpose(1, 2)
    h = F.linear(h, sd[f"{p}{part}_linear_embedding.net.weight"], sd[f"{p}{part}_linear_embedding.net.bias"])
    h = h + sd[f"{p}{part}_pos_embedding.pe"][:h.shape[0]]  # pe[:x.size(0)]: the batch axis
    for i in range(2):
        a, m = f"{p}{part}_transformer.net.{2 * i}.fn.", f"{p}{part}_transformer.net.{2 * i + 1}.fn."
        y = F.layer_norm(h, (VQ,), sd[a + "norm.weight"], sd[a + "norm.bias"], eps=1e-5)
        q, k, v = (y @ sd[a + "fn.to_qkv.weight"].t()).view(1, -1, 3, VQ_HEADS, VQ // VQ_HEADS).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(torch.einsum("bhid,bhjd->bhij", q, k) * VQ ** -0.5, dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v).transpose(1, 2).reshape(1, -1, VQ)
        h = h + F.linear(out, sd[a + "fn.to_out.weight"], sd[a + "fn.to_out.bias"])
        y = F.layer_norm(h, (VQ,), sd[m + "norm.weight"], sd[m + "norm.bias"], eps=1e-5)
        y = F.linear(y, sd[m + "fn.l1.weight"], sd[m + "fn.l1.bias"])
        y = 0.5 * y * (1.0 + torch.tanh(math.sqrt(2 / math.pi) * (y + 0.044715 * torch.pow(y, 3))))
        h = h + F.linear(y, sd[m + "fn.l2.weight"], sd[m + "fn.l2.bias"])
    if part == "encoder":
        if p + "encoder_linear_embedding_post.net.weight" in sd:
            h = F.linear(h, sd[p + "encoder_linear_embedding_post.net.weight"], sd[p + "encoder_linear_embedding_post.net.bias"])
        return h
    return F.linear(h, sd[p + "vertice_map_reverse.weight"], sd.get(p + "vertice_map_reverse.bias"))


def official_quantize(sd, z: torch.Tensor) -> torch.Tensor:
    """``VectorQuantizer``: (..., code) -> nearest codebook rows."""
    e = sd["quantize.embedding.weight"]
    flat = z.reshape(-1, e.shape[1])
    d = flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2 * flat @ e.t()
    return e[d.argmin(1)].view(z.shape)


@pytest.mark.parametrize("dataset", ["vocaset", "BIWI"])
def test_codetalker_stage1_checkpoint_reproduces_the_official_vqvae(tmp_path, dataset):
    sd = codetalker_stage1_state_dict(dataset)
    path = tmp_path / f"{dataset}_stage1.pth.tar"
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 200}, path)  # DDP + save_checkpoint
    model = load_official(path, "codetalker", dataset=dataset)
    assert model.stage == "vqvae" and model.config.vq_io_linear == (dataset == "BIWI")
    motion = 0.01 * torch.randn(1, 9, 3 * V, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        z = official_vq_stack(sd, "encoder", motion)
        codes = official_quantize(sd, z.view(1, 9, -1, CODE))
        expected = official_vq_stack(sd, "decoder", codes.view(1, 9, -1))
        got_z = model.vqvae.encode(motion)
        got = model.vqvae(motion)[0]
    torch.testing.assert_close(got_z.reshape(z.shape), z, atol=1e-5, rtol=1e-4)
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(got, expected, atol=1e-5 * float(expected.abs().max()), rtol=1e-4)


def codetalker_stage2_state_dict(dataset: str = "vocaset", seed: int = 0) -> dict[str, torch.Tensor]:
    """An official ``CodeTalker`` (``models/stage2.py``) state dict, its VQ-VAE under ``autoencoder.``."""
    _, sd = official_wav2vec2(seed)
    g = torch.Generator().manual_seed(seed + 11)
    n_face = VQ // CODE if dataset == "vocaset" else 2
    layer = nn.TransformerDecoderLayer(d_model=CT_DIM, nhead=4, dim_feedforward=2 * CT_DIM, batch_first=True)
    sd.update({"audio_feature_map.weight": 0.1 * torch.randn(CT_DIM, HIDDEN, generator=g),
               "audio_feature_map.bias": 0.1 * torch.randn(CT_DIM, generator=g),
               "vertice_map.weight": 0.3 * torch.randn(CT_DIM, 3 * V, generator=g),
               "vertice_map.bias": 0.1 * torch.randn(CT_DIM, generator=g),
               "PPE.pe": official_ppe(CT_DIM, 25 if dataset == "BIWI" else 30)})
    for i in range(2):
        sd.update({f"transformer_decoder.layers.{i}.{k}": v for k, v in _randomise(layer, seed + 20 + i).items()})
    sd.update({"feat_map.weight": 0.5 * torch.randn(n_face * CODE, CT_DIM, generator=g),
               "learnable_style_emb.weight": torch.randn(8, CT_DIM, generator=g)})
    sd.update({"autoencoder." + k: v for k, v in codetalker_stage1_state_dict(dataset, seed=seed + 1).items()})
    return sd


def official_codetalker_predict(sd, audio: np.ndarray, template: torch.Tensor, style: int, dataset: str):
    """``CodeTalker.predict`` (``models/stage2.py``), re-stated: (T, V*3)."""
    vq = _under(sd, "autoencoder.")
    w2v = reference_wav2vec2(sd)
    decoder = official_transformer_decoder(sd, CT_DIM, num_layers=2)
    biased = official_biased_mask(4, 600, 25 if dataset == "BIWI" else 30)

    def decode(codes):  # (1, T, n_face * code)
        return official_vq_stack(vq, "decoder", codes)

    with torch.no_grad():
        hidden = official_audio_features(w2v, audio, dataset)
        frame_num = hidden.shape[1] // 2 if dataset == "BIWI" else hidden.shape[1]
        hidden = F.linear(hidden, sd["audio_feature_map.weight"], sd["audio_feature_map.bias"])
        style_emb = sd["learnable_style_emb.weight"][style][None, None]
        vertice_emb = style_emb
        for i in range(frame_num):
            x = vertice_emb + sd["PPE.pe"][:, :vertice_emb.shape[1]]
            n = x.shape[1]
            feat = decoder(x, hidden, tgt_mask=biased[:, :n, :n],
                           memory_mask=official_enc_dec_mask(dataset, n, hidden.shape[1]))
            feat = F.linear(feat, sd["feat_map.weight"])
            q = official_quantize(vq, feat.reshape(1, n, -1, CODE)).reshape(1, n, -1)
            if i == 0:
                out = decode(torch.cat([q, q], dim=1))[:, :1]
            else:
                out = decode(q)
            if i != frame_num - 1:
                new = F.linear(out[:, -1], sd["vertice_map.weight"], sd["vertice_map.bias"])[:, None] + style_emb
                vertice_emb = torch.cat([vertice_emb, new], 1)
        q = official_quantize(vq, feat.reshape(1, n, -1, CODE)).reshape(1, n, -1)
        return (decode(q) + template.reshape(1, 1, -1))[0]


@pytest.mark.parametrize("dataset", ["vocaset", "BIWI"])
def test_codetalker_stage2_checkpoint_reproduces_the_official_predict(tmp_path, dataset):
    sd = codetalker_stage2_state_dict(dataset)
    path = tmp_path / "vocaset_stage2.pth.tar"
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 100, "optimizer": {"lr": 1e-4}},
               path)
    model = load_official(path, "codetalker", dataset=dataset)
    assert model.stage == "speech"
    audio = _audio(0.5, seed=2)
    template = torch.randn(V, 3, generator=torch.Generator().manual_seed(7))
    expected = official_codetalker_predict(sd, audio, template, 5, dataset)
    assert_reproduces(model, audio, template, 5, expected)
    # --stage1: a stage-1 file replaces the stage-2 file's VQ-VAE
    other = codetalker_stage1_state_dict(dataset, seed=9)
    torch.save({"state_dict": other}, tmp_path / "stage1.pth.tar")
    swapped = load_official(path, "codetalker", dataset=dataset, stage1=tmp_path / "stage1.pth.tar")
    assert torch.equal(swapped.vqvae.quantizer.codebook.weight, other["quantize.embedding.weight"])


def test_codetalker_key_map_is_complete_at_full_size():
    """The official VOCASET stage-2 model (wav2vec2-base, feature_dim 1024, 6 decoder layers; VQ-VAE 1024 wide,
    6 layers, 16 x 64 codes, 256 entries, 5023 vertices) on the meta device."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from p3d.models.official_baselines import codetalker_from_official

    h, inter, n_vertices = 1024, 1536, 5023
    shapes = {"encoder.vertice_mapping.0.weight": (h, 3 * n_vertices), "encoder.vertice_mapping.0.bias": (h,),
              "encoder.squasher.0.0.weight": (h, h, 5), "encoder.squasher.0.0.bias": (h,),
              "decoder.expander.0.0.weight": (h, h, 5), "decoder.expander.0.0.bias": (h,),
              "decoder.vertice_map_reverse.weight": (3 * n_vertices, h), "decoder.vertice_map_reverse.bias": (3 * n_vertices,),
              "quantize.embedding.weight": (256, 64)}
    for part in ("encoder", "decoder"):
        shapes.update({f"{part}.{part}_linear_embedding.net.weight": (h, h), f"{part}.{part}_linear_embedding.net.bias": (h,),
                       f"{part}.{part}_pos_embedding.pe": (5000, 1, h)})
        for i in range(6):
            a, m = f"{part}.{part}_transformer.net.{2 * i}.fn", f"{part}.{part}_transformer.net.{2 * i + 1}.fn"
            shapes.update({f"{a}.norm.weight": (h,), f"{a}.norm.bias": (h,), f"{a}.fn.to_qkv.weight": (3 * h, h),
                           f"{a}.fn.to_out.weight": (h, h), f"{a}.fn.to_out.bias": (h,), f"{m}.norm.weight": (h,),
                           f"{m}.norm.bias": (h,), f"{m}.fn.l1.weight": (inter, h), f"{m}.fn.l1.bias": (inter,),
                           f"{m}.fn.l2.weight": (h, inter), f"{m}.fn.l2.bias": (h,)})
    shapes = {"autoencoder." + k: v for k, v in shapes.items()}
    shapes.update({"audio_feature_map.weight": (1024, 768), "audio_feature_map.bias": (1024,),
                   "vertice_map.weight": (1024, 3 * n_vertices), "vertice_map.bias": (1024,),
                   "feat_map.weight": (1024, 1024), "learnable_style_emb.weight": (8, 1024)})
    with torch.device("meta"):
        sd = {k: torch.empty(v) for k, v in shapes.items()}
        sd.update({"audio_encoder." + k: v for k, v in Wav2Vec2Model(Wav2Vec2Config()).state_dict().items()})
        layer = nn.TransformerDecoderLayer(d_model=1024, nhead=4, dim_feedforward=2048, batch_first=True)
        for i in range(6):
            sd.update({f"transformer_decoder.layers.{i}.{k}": v for k, v in layer.state_dict().items()})
    sd["PPE.pe"] = official_ppe(1024, 30)
    with torch.device("meta"):
        model = codetalker_from_official(sd, source="vocaset_stage2.pth.tar")
    c = model.config
    assert (c.n_vertices, c.vq_dim, c.vq_layers, c.n_face, c.code_dim, c.n_codes, c.layers, c.ffn, c.fps) == \
        (5023, 1024, 6, 16, 64, 256, 6, 2048, 30)
    assert (c.vq_block, c.vq_io_linear, c.vq_out_bias) == ("official", False, True)


@pytest.mark.parametrize("kind", ["faceformer", "selftalk", "codetalker"])
def test_official_biwi_predict_batch_equals_predict(tmp_path, kind):
    """``predict_batch`` on official BIWI models (wav2vec2, two 50 Hz features per frame): mixed lengths and
    styles, one clip twice; each item as ``predict`` alone, float32 rounding aside."""
    make = {"faceformer": faceformer_state_dict, "selftalk": selftalk_state_dict,
            "codetalker": codetalker_stage2_state_dict}[kind]
    sd = make("BIWI")
    path = tmp_path / "biwi.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}} if kind == "codetalker" else sd, path)
    model = load_official(path, kind, dataset="BIWI")
    audios = [torch.from_numpy(_audio(s, seed=i)) for i, s in enumerate((0.7, 0.4, 0.55))]
    items = [(0, 0), (1, 1), (0, 1), (2, 0)]
    styles = [s % model.n_styles for _, s in items]
    frames = [official_n_frames(model, audios[a].numel()) for a, _ in items]
    templates = [torch.randn(V, 3, generator=torch.Generator().manual_seed(k)) for k in range(len(items))]
    args = [audios[a] for a, _ in items], templates, styles, frames
    singles = [model.predict(*item) for item in zip(*args)]
    batched = model.predict_batch(*args)
    motion = max(float((p - t).abs().max()) for p, t in zip(singles, templates))
    assert motion > 1e-3 and len(set(frames)) == 3
    for one, many in zip(singles, batched):
        torch.testing.assert_close(many, one, rtol=1e-6, atol=1e-5 * motion)


def test_a_p3d_checkpoint_or_the_official_critic_given_as_an_official_baseline_is_named(tmp_path):
    """A p3d talker checkpoint (``final.pt``) or the official speech-mesh critic (``model_eval.pth``) given to
    ``load_official`` (``p3d predict --checkpoint``) says what the file is and where it goes; it was read as a
    state dict and refused with "no wav2vec2 under 'audio_encoder.'" or "not an official FaceFormer, ..."."""
    from p3d.models.faceformer import FaceFormer, FaceFormerConfig
    from p3d.models.speech_mesh import SpeechMeshConfig, SpeechMeshModel, official_checkpoint

    FaceFormer(FaceFormerConfig.from_preset("smoke", n_vertices=V), pretrained_audio=False).save(tmp_path / "final.pt")
    with pytest.raises(InputError, match="final.pt: a p3d 'faceformer' model checkpoint, not an official release "
                                         "file \\(predict with --run"):
        load_official(tmp_path / "final.pt")
    critic = SpeechMeshModel.from_config(SpeechMeshConfig.from_preset("smoke", n_vertices=V))
    torch.save(official_checkpoint(critic), tmp_path / "model_eval.pth")
    with pytest.raises(InputError, match="model_eval.pth: the official speech-mesh critic .*--plrs-checkpoint"):
        load_official(tmp_path / "model_eval.pth")
    critic.save(tmp_path / "critic.pt")
    with pytest.raises(InputError, match="critic.pt: a p3d 'speech_mesh' model checkpoint, .*not a talking-head"):
        load_official(tmp_path / "critic.pt")


def test_a_biwi_faceformer_on_a_custom_mesh_is_warned_of_its_period(tmp_path, caplog):
    """FaceFormer's weights are the same for VOCASET and BIWI; a BIWI file (period-25 table) on a mesh that is not
    BIWI's 23370 vertices loaded as VOCASET at 30 fps without a word. Its positional table's period now warns,
    naming --dataset BIWI; a matching or given dataset is quiet."""
    torch.save(faceformer_state_dict("BIWI"), tmp_path / "biwi.pth")
    torch.save(faceformer_state_dict("vocaset"), tmp_path / "voca.pth")
    with caplog.at_level(logging.WARNING, logger="p3d.models.official_baselines"):
        model = load_official(tmp_path / "biwi.pth", "faceformer")
    assert model.config.fps == 30 and "pass --dataset BIWI" in caplog.text and "period 25" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="p3d.models.official_baselines"):
        assert load_official(tmp_path / "biwi.pth", "faceformer", dataset="BIWI").config.fps == 25
        load_official(tmp_path / "voca.pth", "faceformer")
    assert "--dataset" not in caplog.text
