"""The released checkpoints of FaceFormer, CodeTalker and SelfTalk, loaded into p3d's models by a key map.

    model = load_official("vocaset.pth", "faceformer")      # -> p3d FaceFormer, eval mode
    vertices = model.predict(audio_16k, template, style, official_n_frames(model, audio_16k.numel()))

**Files** (read with ``torch.load(weights_only=True)``; only tensors and plain containers, plus
``argparse.Namespace``, are unpickled, anything else is refused with an :class:`InputError`):

- FaceFormer ``vocaset.pth`` / ``biwi.pth`` (``EvelynFan/FaceFormer``): ``torch.save(model.state_dict())``;
- SelfTalk ``vocaset.pth`` / ``BIWI.pth`` (``psyai-net/SelfTalk_release``): the same;
- CodeTalker ``vocaset_stage1.pth.tar``, ``vocaset_stage2.pth.tar`` and the BIWI pair
  (``Doubiiu/CodeTalker``): ``{'state_dict': ..., 'epoch': ..., ...}``, keys possibly prefixed with
  ``module.`` (DataParallel / DistributedDataParallel); the stage-2 file holds the frozen stage-1 model
  under ``autoencoder.``, so it alone is enough to predict.

**Key maps** (official -> p3d; every official key is either mapped or listed as dropped, every p3d key
must be filled, otherwise an :class:`InputError` names the keys):

- wav2vec2, all three (``audio_encoder.X``; HF ``Wav2Vec2Model`` keys): -> ``audio_encoder.model.X``
  (FaceFormer, CodeTalker) or ``animator.audio_encoder.model.X`` (SelfTalk). The positional convolution's
  weight norm, saved by transformers 4.x as ``encoder.pos_conv_embed.conv.weight_g`` / ``weight_v``, maps
  to ``parametrizations.weight.original0`` / ``original1`` when the installed transformers uses
  parametrisations (and back). The wav2vec2 architecture is inferred from the shapes
  (:func:`wav2vec2_config_from_state_dict`), so no local wav2vec2 folder is needed.
- FaceFormer: ``audio_feature_map``, ``vertice_map``, ``obj_vector``, ``transformer_decoder.layers.0.*``,
  ``vertice_map_r``: same names. Dropped: ``PPE.pe`` (the periodic table; p3d builds it, the file's
  table is checked against p3d's and gives the period).
- SelfTalk: ``audio_feature_map`` -> ``animator.audio_map``, ``transformer_decoder`` ->
  ``animator.decoder``, ``vertice_map_r`` -> ``animator.head``, ``lip_map`` / ``transformer`` / ``lm_head``
  -> ``interpreter.lip_map`` / ``interpreter.transformer`` / ``interpreter.lm_head``. Dropped:
  ``text_encoder.*``, the frozen ``Wav2Vec2ForCTC`` speech recogniser (a training target; p3d keeps it out
  of the model, :class:`p3d.models.selftalk.CTCRecogniser`). On BIWI, SelfTalk's ``wav2vec.py`` runs the
  transformer on every 50 Hz feature and ``predict`` drops an odd last one from its output
  (``AudioEncoderConfig.trim_before_encoder = False``; FaceFormer and CodeTalker drop it before the transformer).
- CodeTalker stage 2: ``audio_feature_map`` -> ``audio_map``, ``vertice_map`` -> ``vertex_map``,
  ``transformer_decoder`` -> ``decoder``, ``feat_map`` -> ``feat_map``, ``learnable_style_emb`` ->
  ``style``; ``autoencoder.X`` as the stage-1 map below under ``vqvae.``. Dropped: ``PPE.pe``.
- CodeTalker stage 1 (``encoder.`` -> ``vqvae.encoder.``, ``decoder.`` -> ``vqvae.decoder.``):
  ``vertice_mapping.0`` -> ``inp.0``; ``squasher.0.0`` / ``expander.0.0`` -> ``conv.net.0``;
  ``{encoder,decoder}_linear_embedding.net`` -> ``embed``; ``*_transformer.net.{2i}.fn.norm`` ->
  ``blocks.i.norm1``, ``.fn.fn.to_qkv`` -> ``blocks.i.attn.to_qkv``, ``.fn.fn.to_out`` -> ``blocks.i.attn.to_out``,
  ``net.{2i+1}.fn.norm`` -> ``blocks.i.norm2``, ``.fn.fn.l1`` / ``l2`` -> ``blocks.i.mlp.l1`` / ``l2``;
  ``encoder_linear_embedding_post`` -> ``encoder.out``, ``decoder_linear_embedding_pre`` -> ``decoder.inp``
  (BIWI only), ``vertice_map_reverse`` -> ``decoder.out``; ``quantize.embedding`` -> ``quantizer.codebook``.
  ``*_pos_embedding.pe`` (5000 x 1 x H) is dropped after **folding** its row 0 into ``embed.bias``: the
  official ``PositionalEncoding`` indexes its table by the batch axis of a (B, T, C) tensor, so at batch
  size 1 it adds the constant ``pe[0] = (0, 1, 0, 1, ...)`` to every frame.
  CodeTalker's official VQ-VAE layers differ from p3d's default ones; :func:`codetalker_config_from_official` selects
  the official variant (``CodeTalkerConfig.vq_block = "official"``, see :mod:`p3d.models.codetalker`).

**Datasets.** The layout is recognised from the keys; VOCASET vs BIWI from the vertex count
(23370 -> BIWI: 25 fps, two 50 Hz audio features per frame, ``features_per_frame = 2``; otherwise
VOCASET: 30 fps, features interpolated to the frame count), unless ``dataset`` is given. SelfTalk's
weights say which (``audio_feature_map`` reads 2 x 1024 features on BIWI, 1024 on VOCASET): they decide,
and a ``dataset`` (or, without one, a 23370 / 5023 vertex count) contradicting them is an :class:`InputError`.

**Prediction length.** The official ``predict`` takes the frame count from the audio:
``int(n50 / 50 * 30)`` on VOCASET (n50 = wav2vec2's CNN feature count) and ``n50 // 2`` on BIWI
(:func:`official_n_frames`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
from typing import Any

import torch

from p3d import registry
from p3d.errors import InputError
from p3d.models.base import check_finite_parameters

log = logging.getLogger(__name__)

#: The official training subjects (the style one-hot order) of VOCASET and BIWI.
VOCASET_TRAIN_SUBJECTS = ("FaceTalk_170728_03272_TA", "FaceTalk_170904_00128_TA", "FaceTalk_170725_00137_TA",
                          "FaceTalk_170915_00223_TA", "FaceTalk_170811_03274_TA", "FaceTalk_170913_03279_TA",
                          "FaceTalk_170904_03276_TA", "FaceTalk_170912_03278_TA")
BIWI_TRAIN_SUBJECTS = ("F2", "F3", "F4", "M3", "M4", "M5")
BIWI_N_VERTICES = 23370
DATASETS = ("vocaset", "BIWI")
MODELS = registry.MODELS

StateDict = dict[str, torch.Tensor]


# ---------------------------------------------------------------------------------------------- reading

def read_official_state_dict(path: str | os.PathLike[str]) -> StateDict:
    """The state dict of an official baseline checkpoint: ``ckpt['state_dict']`` (CodeTalker) or the file
    itself, ``module.`` prefixes removed; read weights-only (allow-list: tensors, plain containers,
    ``argparse.Namespace``)."""
    from p3d.models.base import CHECKPOINT_FORMAT
    from p3d.models.speech_mesh import official_state_dict, read_weights_file

    ckpt = read_weights_file(path)
    if isinstance(ckpt, dict) and ckpt.get("format") == CHECKPOINT_FORMAT:
        use = ("predict with --run and its run folder; in Python p3d.models.load_model" if ckpt.get("kind") in MODELS
               else "not a talking-head model")
        raise InputError(f"{path}: a p3d {ckpt.get('kind')!r} model checkpoint, not an official release file ({use})")
    if official_state_dict(ckpt) is not None:
        raise InputError(f"{path}: the official speech-mesh critic (speech_mesh_rep), not a talking-head model (it is "
                         f"a PLRS / perceptual-loss checkpoint: --plrs-checkpoint)")
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict) and "state_dict" not in ckpt:
        sd = sd["model"]
    if not isinstance(sd, dict) or not sd or not all(isinstance(k, str) for k in sd):
        raise InputError(f"{path}: not a state dict of tensors (expected the official model's state_dict, or "
                         f"{{'state_dict': ...}})")
    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(sd):
        bad = [k for k in sd if k not in tensors][:3]
        raise InputError(f"{path}: entries {bad} of the state dict are not tensors")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def detect_model(sd: StateDict) -> str:
    """``faceformer``, ``codetalker`` (stage 1 or 2) or ``selftalk`` from the official key names."""
    if "obj_vector.weight" in sd and "vertice_map_r.weight" in sd:
        return "faceformer"
    if "lip_map.weight" in sd and "lm_head.weight" in sd:
        return "selftalk"
    if "learnable_style_emb.weight" in sd or "quantize.embedding.weight" in sd:
        return "codetalker"
    raise InputError("checkpoint: not an official FaceFormer, CodeTalker or SelfTalk state dict (none of "
                     "obj_vector.weight, lip_map.weight, learnable_style_emb.weight, quantize.embedding.weight)")


@contextlib.contextmanager
def _official_entries(source: str) -> Any:
    """Reading the architecture off an official state dict's shapes: an entry it lacks (KeyError) or a tensor
    with fewer dimensions than the official one (IndexError) -> :class:`InputError` naming ``source``."""
    try:
        yield
    except KeyError as exc:
        raise InputError(f"{source}: not a complete official state dict (no entry {exc})") from None
    except IndexError:
        raise InputError(f"{source}: not the official layout (a tensor has fewer dimensions than the official "
                         f"model's)") from None


def _n_layers(sd: StateDict, prefix: str, source: str) -> int:
    """The layer count of the stack under ``prefix`` (keys ``{prefix}{i}.*``); none -> :class:`InputError`."""
    found = {int(m.group(1)) for k in sd if k.startswith(prefix) and (m := re.match(r"(\d+)\.", k[len(prefix):]))}
    if not found:
        raise InputError(f"{source}: not a complete official state dict (no {prefix}<i>.* entries)")
    return max(found) + 1


def _dataset(n_vertices: int, dataset: str | None) -> str:
    if dataset is None:
        return "BIWI" if n_vertices == BIWI_N_VERTICES else "vocaset"
    lookup = {d.lower(): d for d in DATASETS}
    if dataset.lower() not in lookup:
        raise InputError(f"dataset: unknown dataset {dataset!r} (choose vocaset or BIWI)")
    return lookup[dataset.lower()]


def default_styles(model: Any, dataset: str | None = None) -> tuple[str, ...] | None:
    """The official training subjects for a model's style count (8: VOCASET, 6: BIWI), else None."""
    n = int(model.n_styles)
    if n == len(VOCASET_TRAIN_SUBJECTS) and dataset in (None, "vocaset"):
        return VOCASET_TRAIN_SUBJECTS
    if n == len(BIWI_TRAIN_SUBJECTS) and dataset in (None, "BIWI"):
        return BIWI_TRAIN_SUBJECTS
    return None


# ---------------------------------------------------------------------------------------------- wav2vec2

_CONV = re.compile(r"feature_extractor\.conv_layers\.(\d+)\.conv\.weight$")
_LAYER = re.compile(r"encoder\.layers\.(\d+)\.")


def wav2vec2_config_from_state_dict(sd: StateDict, prefix: str = "audio_encoder.") -> dict[str, Any]:
    """``Wav2Vec2Config`` fields of the wav2vec2 under ``prefix``, from its tensor shapes.

    Read from the shapes: conv widths and kernels, conv bias, group vs layer norm of the CNN, hidden and
    feed-forward sizes, layer count, positional-convolution kernel and groups. Fixed by the released
    models (facebook/wav2vec2-base-960h, jonatasgrosman/wav2vec2-large-xlsr-53-english): conv strides 5
    then 2, heads of 64 (12 for base, 16 for large), ``do_stable_layer_norm`` = the CNN uses layer norm.
    """
    sub = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if "feature_projection.projection.weight" not in sub:
        raise InputError(f"checkpoint: no wav2vec2 under {prefix!r} (feature_projection.projection.weight missing)")
    convs = sorted((int(m.group(1)), v) for k, v in sub.items() if (m := _CONV.match(k)))
    hidden = int(sub["feature_projection.projection.weight"].shape[0])
    layers = {int(m.group(1)) for k in sub if (m := _LAYER.match(k))}
    pos = sub.get("encoder.pos_conv_embed.conv.weight_v",
                  sub.get("encoder.pos_conv_embed.conv.parametrizations.weight.original1"))
    if pos is None or not convs or not layers:
        raise InputError(f"checkpoint: incomplete wav2vec2 under {prefix!r} (conv layers, encoder layers or the "
                         f"positional convolution missing)")
    layer_norm_cnn = "feature_extractor.conv_layers.1.layer_norm.weight" in sub
    return {
        "hidden_size": hidden,
        "num_hidden_layers": max(layers) + 1,
        "num_attention_heads": max(1, hidden // 64),
        "intermediate_size": int(sub["encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0]),
        "conv_dim": [int(w.shape[0]) for _, w in convs],
        "conv_kernel": [int(w.shape[2]) for _, w in convs],
        "conv_stride": [5] + [2] * (len(convs) - 1),
        "conv_bias": "feature_extractor.conv_layers.0.conv.bias" in sub,
        "feat_extract_norm": "layer" if layer_norm_cnn else "group",
        "do_stable_layer_norm": layer_norm_cnn,
        "num_conv_pos_embeddings": int(pos.shape[2]),
        "num_conv_pos_embedding_groups": hidden // int(pos.shape[1]),
        "feat_proj_layer_norm": "feature_projection.layer_norm.weight" in sub,
    }


_WEIGHT_NORM = {"conv.weight_g": "conv.parametrizations.weight.original0",
                "conv.weight_v": "conv.parametrizations.weight.original1"}


def _map_wav2vec2(key: str, target_keys: set[str], dst_prefix: str) -> str:
    """An official wav2vec2 key (without its prefix) -> the p3d key, weight-norm names converted."""
    out = dst_prefix + key
    if out not in target_keys:
        for a, b in list(_WEIGHT_NORM.items()) + [(b, a) for a, b in _WEIGHT_NORM.items()]:
            if key.endswith(a) and dst_prefix + key[: -len(a)] + b in target_keys:
                return dst_prefix + key[: -len(a)] + b
    return out


def _audio_config(sd: StateDict, prefix: str, features_per_frame: int, base: Any) -> Any:
    return dataclasses.replace(base, kind="wav2vec2", dim=None, wav2vec2_path=None,
                               wav2vec2_config=wav2vec2_config_from_state_dict(sd, prefix),
                               features_per_frame=features_per_frame, spec_augment=True)


# ---------------------------------------------------------------------------------------------- loading

def _rename_keys(sd: dict[str, torch.Tensor], target: set[str], renames: dict[str, str], audio_prefix: str,
                 skip: Any = lambda key: False) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Official keys renamed by prefix (``renames``: official prefix -> p3d prefix; the wav2vec2 weights under
    ``audio_encoder.`` go to ``audio_prefix``): (the p3d keys found in ``target``, the official keys that map to
    none). Keys for which ``skip(key)`` is true are dropped on purpose."""
    mapped: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    for key, value in sd.items():
        if skip(key):
            continue
        if key.startswith("audio_encoder."):
            new = _map_wav2vec2(key[len("audio_encoder."):], target, audio_prefix)
        else:
            new = next((dst + key[len(src):] for src, dst in renames.items() if key.startswith(src)), key)
        if new in target:
            mapped[new] = value
        else:
            unmapped.append(key)
    return mapped, unmapped


def _fill(model: torch.nn.Module, mapped: StateDict, source: str, unmapped: list[str]) -> None:
    """Load ``mapped`` strictly; name unmapped, missing and misshaped keys in one InputError."""
    own = model.state_dict()
    missing = sorted(set(own) - set(mapped))
    unexpected = sorted(set(mapped) - set(own)) + unmapped
    shapes = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in mapped.items()
              if k in own and tuple(v.shape) != tuple(own[k].shape)]
    # a float parameter stored as integers is a foreign file, not something to cast and run
    dtypes = [f"{k} {v.dtype} vs {own[k].dtype}" for k, v in mapped.items()
              if k in own and own[k].is_floating_point() and not v.is_floating_point()]
    if missing or unexpected or shapes or dtypes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:4]}{' ...' if len(missing) > 4 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:4]}{' ...' if len(unexpected) > 4 else ''}")
        if shapes:
            parts.append(f"shape mismatch {shapes[:3]}")
        if dtypes:
            parts.append(f"dtype mismatch {dtypes[:3]}")
        raise InputError(f"{source}: does not match the official layout ({'; '.join(parts)})")
    if any(t.is_meta for t in own.values()):  # a model built on the meta device: the key check is all there is
        return
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in mapped.items()}, strict=True)
    check_finite_parameters(model, source)  # a diverged or corrupted run: every prediction would be NaN


def _period_from_ppe(pe: torch.Tensor, d_model: int, source: str) -> int:
    """The period of an official ``PPE.pe`` buffer (1, period * (600 // period + 1), d), checked by value (to the
    rounding of the file's dtype: a checkpoint converted to float16 / bfloat16 keeps its table)."""
    from p3d.models.decoding import periodic_encoding

    if pe.ndim != 3 or pe.shape[0] != 1 or pe.shape[2] != d_model:
        raise InputError(f"{source}: PPE.pe {tuple(pe.shape)} is not a (1, L, {d_model}) positional encoding table "
                         f"(d_model {d_model} from audio_feature_map)")
    length = int(pe.shape[1])
    atol = max(1e-5, float(torch.finfo(pe.dtype).eps)) if pe.dtype.is_floating_point else 1e-5
    for period in range(1, 601):
        if period * (600 // period + 1) == length:
            with torch.device("cpu"):
                table = periodic_encoding(length, d_model, period)
            if torch.allclose(pe[0].float().cpu(), table, atol=atol):
                return period
    raise InputError(f"{source}: PPE.pe {tuple(pe.shape)} is not a periodic positional encoding table")


def faceformer_from_official(sd: StateDict, dataset: str | None = None, source: str = "checkpoint") -> Any:
    """An official FaceFormer state dict -> p3d :class:`~p3d.models.faceformer.FaceFormer` (eval mode)."""
    from p3d.models.faceformer import FaceFormer, FaceFormerConfig

    with _official_entries(source):
        n_vertices = int(sd["vertice_map.weight"].shape[1]) // 3
        d_model = int(sd["audio_feature_map.weight"].shape[0])
        given, dataset = dataset, _dataset(n_vertices, dataset)
        per_frame = 2 if dataset == "BIWI" else 1
        period = _period_from_ppe(sd["PPE.pe"], d_model, source) if "PPE.pe" in sd else (25 if per_frame == 2 else 30)
        fps = 25 if dataset == "BIWI" else 30
        if given is None and "PPE.pe" in sd and period in (25, 30) and period != fps:
            # FaceFormer's weights are the same for both datasets; the official scripts train BIWI with --period 25
            # and VOCASET with 30, so a table of the other period hints at the other frame rate
            other = "BIWI" if period == 25 else "vocaset"
            log.warning("%s: loaded as %s (%d fps, from its %d vertices), but its positional table has period %d, the "
                        "official %s setting (%d fps); pass --dataset %s if it is a %s model", source, dataset, fps,
                        n_vertices, period, other, period, other, other)
        base = FaceFormerConfig.from_preset("paper")
        config = dataclasses.replace(
            base, n_vertices=n_vertices, n_styles=int(sd["obj_vector.weight"].shape[1]),
            fps=float(fps), d_model=d_model, period=period,
            layers=_n_layers(sd, "transformer_decoder.layers.", source),
            ff_mult=int(sd["transformer_decoder.layers.0.linear1.weight"].shape[0]) // d_model,
            audio=_audio_config(sd, "audio_encoder.", per_frame, base.audio))
    model = FaceFormer(config, pretrained_audio=False)
    target = set(model.state_dict())
    mapped, unmapped = _rename_keys(sd, target, {}, "audio_encoder.model.", skip=lambda key: key == "PPE.pe")
    _fill(model, mapped, source, unmapped)
    return model.eval()


def _selftalk_features_per_frame(in_width: int, hidden: int, source: str) -> int:
    """wav2vec2 features per motion frame read by SelfTalk's ``audio_feature_map`` (``in_width`` = 1 or 2 x
    ``hidden``: ``SelfTalk.py`` builds ``Linear(1024)`` for VOCASET, ``Linear(2048)`` for BIWI's paired frames)."""
    if in_width not in (hidden, 2 * hidden):
        raise InputError(f"{source}: audio_feature_map reads {in_width} features, not 1 or 2 wav2vec2 features of "
                         f"{hidden} per frame (the official VOCASET or BIWI layout)")
    return in_width // hidden


def _selftalk_dataset(per_frame: int, n_vertices: int, dataset: str | None, source: str) -> str:
    """The dataset, hence the frame rate, an official SelfTalk file was trained for: its weights decide (two 50 Hz
    features per frame: BIWI, 25 fps; one, interpolated: VOCASET, 30 fps; ``SelfTalk.predict``). A ``dataset``
    that contradicts them is an :class:`InputError`, and so, when no ``dataset`` is given, is a vertex count of
    the other dataset's mesh (23370 BIWI, 5023 FLAME): loaded, the model would make frames at a rate other than
    the one it declares."""
    from p3d.topology import FLAME_N_VERTICES

    found = "BIWI" if per_frame == 2 else "vocaset"
    layout = (f"audio_feature_map reads {per_frame} wav2vec2 feature{'s' if per_frame > 1 else ''} per frame, the "
              f"official {found} layout at {25 if found == 'BIWI' else 30} fps")
    if dataset is not None:
        if _dataset(n_vertices, dataset) != found:
            raise InputError(f"{source}: dataset {dataset!r} (--dataset) contradicts the weights ({layout})")
        return found
    mesh = {BIWI_N_VERTICES: "BIWI", FLAME_N_VERTICES: "vocaset"}.get(n_vertices)
    if mesh is not None and mesh != found:
        raise InputError(f"{source}: a {n_vertices}-vertex ({mesh}) mesh contradicts the weights ({layout}); pass "
                         f"--dataset {found} if the file really is one")
    return found


def selftalk_from_official(sd: StateDict, dataset: str | None = None, source: str = "checkpoint",
                           lip_indices: Any = None) -> Any:
    """An official SelfTalk state dict -> p3d :class:`~p3d.models.selftalk.SelfTalk` (eval mode).

    The frame rate comes from the weights (``audio_feature_map`` reading two wav2vec2 features per frame: BIWI,
    25 fps; one: VOCASET, 30 fps); a ``dataset`` contradicting them is an :class:`InputError`.

    ``lip_indices``: the interpreter's lip vertices (default: FLAME's 254-entry list for a 5023-vertex
    model with a 762-wide ``lip_map``, the whole mesh when ``lip_map`` reads it; otherwise placeholders
    with a warning: prediction does not use the interpreter, training and ``read_lips`` would).
    """
    from p3d.models.selftalk import SelfTalk, SelfTalkConfig
    from p3d.topology import FLAME_LIPS, FLAME_N_VERTICES

    with _official_entries(source):
        n_vertices = int(sd["vertice_map_r.weight"].shape[0]) // 3
        dim = int(sd["audio_feature_map.weight"].shape[0])
        audio_cfg = wav2vec2_config_from_state_dict(sd, "audio_encoder.")
        per_frame = _selftalk_features_per_frame(int(sd["audio_feature_map.weight"].shape[1]),
                                                 int(audio_cfg["hidden_size"]), source)
        dataset = _selftalk_dataset(per_frame, n_vertices, dataset, source)
        n_lip = int(sd["lip_map.weight"].shape[1]) // 3
        if lip_indices is None:
            if n_lip == len(FLAME_LIPS) and n_vertices == FLAME_N_VERTICES:
                lip_indices = FLAME_LIPS
            elif n_lip == n_vertices:
                lip_indices = ()
            else:
                log.warning("%s: lip_map reads %d vertices and no lip list was given; the lip-reading interpreter gets "
                            "placeholder indices (predictions are unaffected)", source, n_lip)
                lip_indices = tuple(range(n_lip))
        n_enc = _n_layers(sd, "transformer.encoder.layers.", source)
        n_dec = _n_layers(sd, "transformer.decoder.layers.", source)
        base = SelfTalkConfig.from_preset("paper")
        config = dataclasses.replace(
            base, n_vertices=n_vertices, fps=25.0 if dataset == "BIWI" else 30.0, dim=dim,
            layers=_n_layers(sd, "transformer_decoder.layers.", source),
            ff_mult=int(sd["transformer_decoder.layers.0.linear1.weight"].shape[0]) // dim,
            lip_indices=tuple(lip_indices), interp_dim=int(sd["lip_map.weight"].shape[0]),
            interp_encoder_layers=n_enc, interp_decoder_layers=n_dec,
            interp_ff=int(sd["transformer.encoder.layers.0.linear1.weight"].shape[0]),
            vocab_size=int(sd["lm_head.weight"].shape[0]),
            # SelfTalk's wav2vec.py has no BIWI branch: the transformer runs on every 50 Hz feature and predict
            # drops an odd last one from its output
            audio=dataclasses.replace(_audio_config(sd, "audio_encoder.", per_frame, base.audio),
                                      trim_before_encoder=False))
    model = SelfTalk(config, pretrained_audio=False)
    target = set(model.state_dict())
    renames = {"audio_feature_map.": "animator.audio_map.", "transformer_decoder.": "animator.decoder.",
               "vertice_map_r.": "animator.head.", "lip_map.": "interpreter.lip_map.",
               "transformer.": "interpreter.transformer.", "lm_head.": "interpreter.lm_head."}
    mapped, unmapped = _rename_keys(sd, target, renames, "animator.audio_encoder.model.",
                                    skip=lambda key: key.startswith("text_encoder."))
    _fill(model, mapped, source, unmapped)
    return model.eval()


_VQ_BLOCK = re.compile(r"(encoder|decoder)_transformer\.net\.(\d+)\.fn\.(norm|fn)\.(.+)$")
_VQ_RENAMES = {"vertice_mapping.0.": "inp.0.", "squasher.0.0.": "conv.net.0.", "expander.0.0.": "conv.net.0.",
               "encoder_linear_embedding.net.": "embed.", "decoder_linear_embedding.net.": "embed.",
               "encoder_linear_embedding_post.net.": "out.", "decoder_linear_embedding_pre.net.": "inp.",
               "vertice_map_reverse.": "out."}


def _vq_key(key: str) -> str | None:
    """An official stage-1 key (``encoder.*``, ``decoder.*``, ``quantize.*``) -> p3d's under ``vqvae.``;
    None for the positional tables (folded separately)."""
    if key == "quantize.embedding.weight":
        return "vqvae.quantizer.codebook.weight"
    part, _, rest = key.partition(".")
    if part not in ("encoder", "decoder") or rest.endswith("_pos_embedding.pe"):
        return None
    if m := _VQ_BLOCK.match(rest):
        index, kind, tail = int(m.group(2)), m.group(3), m.group(4)
        if kind == "norm":
            return f"vqvae.{part}.blocks.{index // 2}.norm{1 + index % 2}.{tail}"
        sub = "attn" if index % 2 == 0 else "mlp"
        return f"vqvae.{part}.blocks.{index // 2}.{sub}.{tail}"
    for src, dst in _VQ_RENAMES.items():
        if rest.startswith(src):
            return f"vqvae.{part}.{dst}{rest[len(src):]}"
    return f"vqvae.{part}.{rest}"


def codetalker_config_from_official(sd: StateDict, dataset: str | None = None, prefix: str = "") -> Any:
    """The p3d :class:`~p3d.models.codetalker.CodeTalkerConfig` of an official CodeTalker state dict (stage 2,
    or stage 1 alone with ``prefix=""``; the stage-2 file's VQ-VAE is under ``autoencoder.``)."""
    from p3d.models.codetalker import CodeTalkerConfig

    vq = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if "encoder.vertice_mapping.0.weight" not in vq or "quantize.embedding.weight" not in vq:
        raise InputError("checkpoint: no official CodeTalker VQ-VAE (encoder.vertice_mapping.0.weight, "
                         "quantize.embedding.weight)")
    vq_dim, in_dim = (int(n) for n in vq["encoder.vertice_mapping.0.weight"].shape)
    n_codes, code_dim = (int(n) for n in vq["quantize.embedding.weight"].shape)
    io_linear = "encoder.encoder_linear_embedding_post.net.weight" in vq
    latent = int(vq["encoder.encoder_linear_embedding_post.net.weight"].shape[0]) if io_linear else vq_dim
    n_blocks = {int(m.group(2)) for k in vq if (m := _VQ_BLOCK.match(k.partition(".")[2])) and k.startswith("encoder.")}
    if not n_blocks:
        raise InputError(f"checkpoint: not a complete official CodeTalker VQ-VAE (no {prefix}encoder.encoder_transformer."
                         f"net.<i>.* entries)")
    dataset = _dataset(in_dim // 3, dataset)
    base = CodeTalkerConfig.from_preset("paper")
    fields: dict[str, Any] = dict(
        n_vertices=in_dim // 3, fps=25 if dataset == "BIWI" else 30, vq_dim=vq_dim, vq_layers=(max(n_blocks) + 1) // 2,
        vq_mlp_ratio=int(vq["encoder.encoder_transformer.net.1.fn.fn.l1.weight"].shape[0]) / vq_dim,
        n_codes=n_codes, code_dim=code_dim, n_face=latent // code_dim, vq_block="official",
        vq_io_linear=io_linear, vq_out_bias="decoder.vertice_map_reverse.bias" in vq)
    per_frame = 2 if dataset == "BIWI" else 1
    if "learnable_style_emb.weight" in sd:
        dim = int(sd["audio_feature_map.weight"].shape[0])
        fields.update(dim=dim, n_styles=int(sd["learnable_style_emb.weight"].shape[0]),
                      layers=_n_layers(sd, "transformer_decoder.layers.", "checkpoint"),
                      ffn=int(sd["transformer_decoder.layers.0.linear1.weight"].shape[0]),
                      audio=_audio_config(sd, "audio_encoder.", per_frame, base.audio))
    else:  # stage 1 alone: the speech side is not in the file (wav2vec2-base's architecture, random weights)
        # Wav2Vec2Config() defaults are wav2vec2-base's architecture
        fields.update(audio=dataclasses.replace(base.audio, wav2vec2_config={}, features_per_frame=per_frame))
    return dataclasses.replace(base, **fields)


def codetalker_from_official(sd: StateDict, dataset: str | None = None, source: str = "checkpoint",
                             stage1: StateDict | None = None) -> Any:
    """An official CodeTalker state dict -> p3d :class:`~p3d.models.codetalker.CodeTalker` (eval mode).

    A stage-2 file (``learnable_style_emb``, ``autoencoder.*``) gives the whole model in stage "speech";
    ``stage1`` (a stage-1 state dict) replaces its VQ-VAE. A stage-1 file alone fills ``vqvae.`` only
    (stage "vqvae"; the speech side keeps its fresh initialisation, with wav2vec2-base's architecture).
    """
    from p3d.models.codetalker import CodeTalker

    stage2 = "learnable_style_emb.weight" in sd
    if stage1 is not None and not stage2:
        raise InputError(f"{source}: --stage1 goes with a stage-2 CodeTalker checkpoint")
    vq_sd = stage1 if stage1 is not None else ({k[len("autoencoder."):]: v for k, v in sd.items()
                                                if k.startswith("autoencoder.")} if stage2 else sd)
    with _official_entries(source):
        config = codetalker_config_from_official({**sd, **{"autoencoder." + k: v for k, v in vq_sd.items()}}
                                                 if stage2 else vq_sd, dataset, "autoencoder." if stage2 else "")
        if stage2 and "PPE.pe" in sd and _period_from_ppe(sd["PPE.pe"], config.dim, source) != config.fps:
            raise InputError(f"{source}: its PPE period is not {config.fps} frames (the {config.fps} fps dataset)")
    model = CodeTalker(config, pretrained=False)
    own = model.state_dict()
    target = set(own)
    mapped: StateDict = {}
    unmapped: list[str] = []
    for key, value in vq_sd.items():
        new = _vq_key(key)
        if new is None:
            if not key.endswith("_pos_embedding.pe"):
                unmapped.append(key)
            continue
        if new in target:
            mapped[new] = value
        else:
            unmapped.append(key)
    for part in ("encoder", "decoder"):  # fold the constant positional row into the embedding bias
        pe = vq_sd.get(f"{part}.{part}_pos_embedding.pe")
        bias = f"vqvae.{part}.embed.bias"
        if pe is not None and bias in mapped:
            mapped[bias] = mapped[bias] + pe.reshape(pe.shape[0], -1)[0].to(mapped[bias].dtype)
    if stage2:
        renames = {"audio_feature_map.": "audio_map.", "vertice_map.": "vertex_map.",
                   "transformer_decoder.": "decoder.", "feat_map.": "feat_map.", "learnable_style_emb.": "style."}
        speech, unmapped_speech = _rename_keys(sd, target, renames, "audio_encoder.model.",
                                               skip=lambda key: key.startswith("autoencoder.") or key == "PPE.pe")
        mapped.update(speech)
        unmapped.extend(unmapped_speech)
        mapped["stage_index"] = torch.tensor(1)
    else:
        mapped.update({k: v for k, v in own.items() if not k.startswith("vqvae.")})
        mapped["stage_index"] = torch.tensor(0)
    _fill(model, mapped, source, unmapped)
    return model.eval()


def load_official(path: str | os.PathLike[str], model: str | None = None, dataset: str | None = None,
                  stage1: str | os.PathLike[str] | None = None) -> Any:
    """Read an official checkpoint and return the p3d model holding its weights (eval mode).

    ``model``: ``faceformer``, ``codetalker`` or ``selftalk`` (None: recognised from the keys; a mismatch
    is an :class:`InputError`). ``dataset``: ``vocaset`` / ``BIWI`` (None: from the vertex count).
    ``stage1``: CodeTalker only, a stage-1 file whose VQ-VAE replaces the stage-2 file's ``autoencoder``.
    """
    sd = read_official_state_dict(path)
    source = os.fspath(path)
    try:
        found = detect_model(sd)
        if model is not None and model != found:
            raise InputError(f"{path}: holds an official {found} checkpoint, not {model} (--model)")
        if found == "faceformer":
            return faceformer_from_official(sd, dataset, source)
        if found == "selftalk":
            return selftalk_from_official(sd, dataset, source)
        stage1_sd = read_official_state_dict(stage1) if stage1 is not None else None
        return codetalker_from_official(sd, dataset, source, stage1_sd)
    except InputError as exc:  # the shape readers say "checkpoint: ...": name the file instead
        if str(exc).startswith("checkpoint: "):
            raise InputError(f"{source}: {str(exc)[len('checkpoint: '):]}") from None
        raise


def official_n_frames(model: Any, n_samples: int) -> int:
    """The frame count the official ``predict`` gives for ``n_samples`` samples at 16 kHz:
    ``int(n50 / 50 * 30)`` (VOCASET; n50 = wav2vec2's CNN feature count) or ``n50 // 2`` (BIWI)."""
    encoder = _audio_encoder(model)
    n50 = encoder.n_features(n_samples)
    if encoder.config.features_per_frame == 2:
        return max(1, n50 // 2)
    return max(1, int(n50 / 50.0 * float(model.config.fps)))


def _audio_encoder(model: Any) -> Any:
    enc = getattr(model, "audio_encoder", None) or getattr(getattr(model, "animator", None), "audio_encoder", None)
    if enc is None or not hasattr(enc, "n_features"):
        raise InputError(f"{type(model).__name__}: has no wav2vec2 audio encoder (official frame count undefined)")
    return enc


__all__ = ["BIWI_TRAIN_SUBJECTS", "VOCASET_TRAIN_SUBJECTS", "default_styles", "detect_model",
           "codetalker_config_from_official", "codetalker_from_official", "faceformer_from_official", "load_official", "official_n_frames", "read_official_state_dict",
           "selftalk_from_official", "wav2vec2_config_from_state_dict"]
