"""Stage 2: the speech-mesh synchronized representation, a CLIP-style dual encoder (paper Sec. 4).

``SpeechMeshModel(speech_encoder, mesh_encoder)`` embeds a 0.2 s-equivalent speech window
(fbank (B, 20, 128)) and the paired 5-frame mesh window ((B, 5, V*3)) into one unit sphere:

- ``encode_speech(fbank) -> (B, H)`` and ``encode_mesh(vertices) -> (B, H)``: mean-pooled,
  L2-normalised final-layer features (the official ``forward_features``);
- ``forward(fbank, vertices) -> (logits_per_speech, logits_per_mesh)``: cosine similarities / tau,
  like CLIP's ``model.py``;
- ``loss(fbank, vertices)``: symmetric InfoNCE (Eq. 5), tau = 0.07; with ``layers`` the sum over
  those encoder layers (Eq. 5's set L; the official loss uses the final layer only).

Two variants (Table 3):

- :meth:`SpeechMeshModel.ours`: the speech encoder comes from a stage-1 model and is **frozen**:
  its parameters have ``requires_grad=False`` and it stays in eval mode even when the model is put
  in train mode; only the mesh encoder E_m learns (the paper's method).
- :meth:`SpeechMeshModel.no2d`: "Ours w/o 2D prior": both encoders with the stage-2 architecture,
  trained from scratch.

Every critic (this one, :class:`p3d.models.syncnet3d.SyncNet3D`) subclasses
:class:`~p3d.models.dual_encoder.DualEncoder`,
so the perceptual loss and PLRS work with any of them.

**The official release's checkpoints** (``speech_mesh_rep``: ``model_eval.pth``, ``model_loss.pth``)
are this model at the ``paper`` preset, with another key layout (a fused ``qkv`` with separate query
and value biases and no key bias, ``mlp.fc1/fc2``, no input standardisation).
:func:`load_critic` reads them as they are (:func:`from_official`);
:func:`official_to_p3d_state_dict` / :func:`p3d_to_official_state_dict` map the weights both ways
(``p3d convert``, :mod:`p3d.convert`).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Sequence
from typing import Any

import torch

from p3d.errors import InputError, one_line
from p3d.losses.infonce import TEMPERATURE, multilayer_info_nce
from p3d.models.base import CHECKPOINT_FORMAT, Checkpointable, PresetConfig, check_finite_parameters
from p3d.models.dual_encoder import DualEncoder
from p3d.models.mesh_encoder import MeshEncoder, MeshEncoderConfig
from p3d.models.speech_encoder import SpeechEncoder, SpeechEncoderConfig


@dataclasses.dataclass(frozen=True)
class SpeechMeshConfig(PresetConfig):
    """Both encoders' configs, the temperature, and whether the speech encoder is frozen."""

    speech: SpeechEncoderConfig = SpeechEncoderConfig()
    mesh: MeshEncoderConfig = MeshEncoderConfig()
    temperature: float = TEMPERATURE
    freeze_speech: bool = True
    variant: str = "ours"  # "ours" (stage-1 speech encoder, frozen) or "no2d" (from scratch)

    @staticmethod
    def presets() -> dict[str, SpeechMeshConfig]:
        return {name: SpeechMeshConfig(SpeechEncoderConfig.from_preset(name), MeshEncoderConfig.from_preset(name))
                for name in ("paper", "cpu", "smoke")}

    @classmethod
    def from_preset(cls, name: str, n_vertices: int | None = None, **overrides: object) -> SpeechMeshConfig:
        """A preset (:class:`p3d.models.base.PresetConfig`), with the mesh encoder sized for ``n_vertices``."""
        config = super().from_preset(name, **overrides)
        if n_vertices is not None:
            config = dataclasses.replace(config, mesh=dataclasses.replace(config.mesh, n_vertices=n_vertices))
        return config


class SpeechMeshModel(Checkpointable, DualEncoder):
    """Stage-2 dual encoder: E_s (from stage 1, frozen, or from scratch) and E_m."""

    kind = "speech_mesh"
    config_class = SpeechMeshConfig

    @classmethod
    def _from_config(cls, config: SpeechMeshConfig) -> SpeechMeshModel:
        return cls.from_config(config)

    def __init__(self, speech_encoder: SpeechEncoder, mesh_encoder: MeshEncoder, temperature: float = TEMPERATURE,
                 freeze_speech: bool = True, variant: str = "ours") -> None:
        super().__init__()
        if speech_encoder.dim != mesh_encoder.dim:
            raise InputError(f"speech encoder width {speech_encoder.dim} != mesh encoder width {mesh_encoder.dim}")
        self.speech_encoder = speech_encoder
        self.mesh_encoder = mesh_encoder
        self.temperature = temperature
        self.variant = variant
        self.freeze_speech = freeze_speech
        if freeze_speech:
            self.speech_encoder.requires_grad_(False)
            self.speech_encoder.eval()

    @property
    def config(self) -> SpeechMeshConfig:
        return SpeechMeshConfig(self.speech_encoder.config, self.mesh_encoder.config, self.temperature,
                                self.freeze_speech, self.variant)

    @property
    def n_vertices(self) -> int:
        return self.mesh_encoder.config.n_vertices

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def ours(cls, stage1: Any, mesh_config: MeshEncoderConfig, temperature: float = TEMPERATURE) -> SpeechMeshModel:
        """The paper's model: the speech encoder of a stage-1 model (a ``Stage1Model``, a stage-1
        checkpoint path, or a ``SpeechEncoder``), copied and frozen, plus a new mesh encoder."""
        import copy

        from p3d.models.stage1 import Stage1Model

        if isinstance(stage1, (str, os.PathLike)):
            stage1 = Stage1Model.load(stage1)
        speech = stage1.speech_encoder if isinstance(stage1, Stage1Model) else stage1
        if not isinstance(speech, SpeechEncoder):
            raise InputError(f"stage1: expected a Stage1Model, its checkpoint path or a SpeechEncoder, "
                             f"got {type(stage1).__name__}")
        if mesh_config.dim != speech.dim:
            raise InputError(f"mesh_config.dim {mesh_config.dim} must equal the stage-1 width {speech.dim}")
        return cls(copy.deepcopy(speech), MeshEncoder(mesh_config), temperature, freeze_speech=True, variant="ours")

    @classmethod
    def no2d(cls, config: SpeechMeshConfig) -> SpeechMeshModel:
        """"Ours w/o 2D prior": both encoders from scratch, both trainable."""
        return cls(SpeechEncoder(config.speech), MeshEncoder(config.mesh), config.temperature,
                   freeze_speech=False, variant="no2d")

    @classmethod
    def from_config(cls, config: SpeechMeshConfig) -> SpeechMeshModel:
        return cls(SpeechEncoder(config.speech), MeshEncoder(config.mesh), config.temperature,
                   config.freeze_speech, config.variant)

    # -- modes --------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> SpeechMeshModel:
        """As ``nn.Module.train``, but a frozen speech encoder always stays in eval mode."""
        super().train(mode)
        if self.freeze_speech:
            self.speech_encoder.eval()
        return self

    # -- encoders -----------------------------------------------------------------------------
    def encode_speech(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, T_a, 128) normalised fbank -> (B, H) unit vectors (no graph when frozen)."""
        if self.freeze_speech:
            with torch.no_grad():
                return self.speech_encoder.embed(fbank)
        return self.speech_encoder.embed(fbank)

    def encode_mesh(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, 5, V*3) or (B, 5, V, 3) absolute vertex positions -> (B, H) unit vectors."""
        return self.mesh_encoder.embed(vertices)

    def loss(self, fbank: torch.Tensor, vertices: torch.Tensor, layers: Sequence[int] | None = None) -> torch.Tensor:
        """Eq. 5: symmetric InfoNCE, final layer (default, as the official code) or summed over ``layers``."""
        if layers is None:
            return super().loss(fbank, vertices)
        if self.speech_encoder.config.depth != self.mesh_encoder.config.depth:
            raise InputError("layers: per-layer InfoNCE needs encoders of equal depth")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_speech):
            speech = self.speech_encoder.embed_layers(fbank, layers)
        return multilayer_info_nce(speech, self.mesh_encoder.embed_layers(vertices, layers), self.temperature)

# -- the official release's checkpoints (``speech_mesh_rep``) ---------------------------------------
#: Encoder prefixes of the official state dict -> p3d's submodules.
OFFICIAL_ENCODERS = {"encoder": "mesh_encoder", "encoder_audio": "speech_encoder"}
#: Head width of the official model (8 heads of 64 at H = 512); sets the heads of a loaded official model.
OFFICIAL_HEAD_DIM = 64
#: Classes an official checkpoint may hold besides tensors and plain data (its training arguments).
SAFE_CHECKPOINT_GLOBALS = (argparse.Namespace,)
#: Official per-block names -> p3d's (the attention's qkv/q_bias/v_bias are handled separately).
_OFFICIAL_BLOCK_NAMES = {"norm1": "norm1", "norm2": "norm2", "attn.proj": "attn.proj", "mlp.fc1": "mlp.0",
                         "mlp.fc2": "mlp.2"}
_OFFICIAL_BLOCK_KEY = re.compile(r"^(encoder|encoder_audio)\.blocks\.(\d+)\.(.+)\.(weight|bias)$")


def read_weights_file(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` allowing only :data:`SAFE_CHECKPOINT_GLOBALS` besides plain data.

    A file needing any other Python object (a class, a function) is refused with an
    :class:`InputError` naming it; nothing else is unpickled.
    """
    import pickle

    if not os.path.isfile(path):
        raise InputError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(list(SAFE_CHECKPOINT_GLOBALS)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found is None:  # not a pickle the allow-list refused: bytes the unpickler cannot read
            raise InputError(f"{path}: not a readable weights-only checkpoint ({one_line(exc)})") from None
        raise InputError(f"{path}: refused: loading it would unpickle the Python object {found.group(1)}, which is "
                         f"not on the allow-list (tensors, plain data, argparse.Namespace)") from None
    except Exception as exc:  # corrupt bytes raise anything from the unpickler (IndexError, KeyError, ...)
        raise InputError(f"{path}: not a readable weights-only checkpoint ({one_line(exc)})") from None


def official_state_dict(ckpt: Any) -> dict[str, torch.Tensor] | None:
    """The official-layout state dict inside a loaded checkpoint, or None if it holds none.

    As the official evaluation script: ``ckpt["model"]``, else ``ckpt["module"]``, else ``ckpt``
    itself; it is official when it has both encoders' patch embeddings
    (``encoder.patch_embed.weight``, ``encoder_audio.patch_embed.proj.weight``).
    """
    if not isinstance(ckpt, dict):
        return None
    for candidate in (ckpt.get("model"), ckpt.get("module"), ckpt):
        if (isinstance(candidate, dict) and "encoder.patch_embed.weight" in candidate
                and "encoder_audio.patch_embed.proj.weight" in candidate):
            return candidate
    return None


def _official_encoder_shape(sd: dict[str, torch.Tensor], prefix: str) -> tuple[int, int, float]:
    """(width, depth, mlp_ratio) of one official encoder."""
    depth = 1 + max((int(m.group(2)) for k in sd if (m := _OFFICIAL_BLOCK_KEY.match(k)) and m.group(1) == prefix),
                    default=-1)
    if depth == 0:
        raise InputError(f"official checkpoint: no {prefix}.blocks.* entries")
    width = sd[f"{prefix}.norm.weight"].shape[0] if sd[f"{prefix}.norm.weight"].ndim == 1 else 0  # KeyError: missing
    hidden = sd[f"{prefix}.blocks.0.mlp.fc1.weight"].shape[0]
    if not width:
        raise InputError(f"official checkpoint: {prefix}.norm.weight has shape "
                         f"{tuple(sd[f'{prefix}.norm.weight'].shape)}, expected (width,)")
    return width, depth, hidden / width


def official_config(sd: dict[str, torch.Tensor], heads: dict[str, int] | None = None) -> SpeechMeshConfig:
    """The p3d config of an official-layout state dict: widths, depths and FFN ratio from the shapes;
    heads ``width // 64`` (the official 8 heads of 64) unless ``heads`` (``{"speech": h, "mesh": h}``)
    says otherwise; mesh vertices = inputs / 3; 128 mel bins; position tables of 5 and 64 x 8 rows."""
    try:
        mesh_w = sd["encoder.patch_embed.weight"]
        proj = sd["encoder_audio.patch_embed.proj.weight"]
        dim_m, depth_m, ratio_m = _official_encoder_shape(sd, "encoder")
        dim_s, depth_s, ratio_s = _official_encoder_shape(sd, "encoder_audio")
    except KeyError as exc:
        raise InputError(f"official checkpoint: missing entry {exc}") from None
    heads = heads or {}
    if mesh_w.ndim != 2 or mesh_w.shape[1] % 3 or proj.ndim != 4 or dim_m != dim_s:
        raise InputError(f"official checkpoint: unexpected shapes (mesh patch_embed {tuple(mesh_w.shape)}, "
                         f"speech patch_embed.proj {tuple(proj.shape)}, widths {dim_m} / {dim_s})")
    speech = SpeechEncoderConfig(dim=dim_s, depth=depth_s, heads=heads.get("speech", max(1, dim_s // OFFICIAL_HEAD_DIM)),
                                 mlp_ratio=ratio_s, n_mels=128, patch_width=proj.shape[-1], max_frames=64)
    mesh = MeshEncoderConfig(n_vertices=mesh_w.shape[1] // 3, dim=dim_m, depth=depth_m,
                             heads=heads.get("mesh", max(1, dim_m // OFFICIAL_HEAD_DIM)), mlp_ratio=ratio_m, n_frames=5)
    return SpeechMeshConfig(speech=speech, mesh=mesh)


def official_to_p3d_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official ``speech_mesh_rep`` state dict onto :class:`SpeechMeshModel`'s keys.

    ``encoder`` -> ``mesh_encoder``, ``encoder_audio`` -> ``speech_encoder``; per block
    ``attn.qkv.weight`` rows ``[0, H)`` -> ``attn.q.weight``, rows ``[H, 3H)`` -> ``attn.kv.weight``;
    ``q_bias`` -> ``attn.q.bias``; ``attn.kv.bias`` = H zeros (the official key projection has no
    bias) then ``v_bias``; ``mlp.fc1/fc2`` -> ``mlp.0/mlp.2``; ``norm`` -> ``encoder.norm``; the mesh
    input standardisation is the identity (mean 0, scale 1). Works on tensors of any device (also
    ``meta``). An unknown entry raises :class:`InputError`.
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    qkv_parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        prefix, _, rest = key.partition(".")
        if prefix not in OFFICIAL_ENCODERS:
            unknown.append(key)
            continue
        target = OFFICIAL_ENCODERS[prefix]
        if rest in ("patch_embed.weight", "patch_embed.bias", "patch_embed.proj.weight", "patch_embed.proj.bias"):
            out[f"{target}.patch_embed.{rest.rsplit('.', 1)[1]}"] = value
        elif rest in ("norm.weight", "norm.bias"):
            out[f"{target}.encoder.{rest}"] = value
        elif rest.startswith("blocks.") and rest.split(".", 2)[2] in ("attn.qkv.weight", "attn.q_bias", "attn.v_bias"):
            _, index, name = rest.split(".", 2)
            qkv_parts.setdefault(f"{target}.encoder.blocks.{index}.attn", {})[name] = value
        elif (m := _OFFICIAL_BLOCK_KEY.match(key)) and m.group(3) in _OFFICIAL_BLOCK_NAMES:
            out[f"{target}.encoder.blocks.{m.group(2)}.{_OFFICIAL_BLOCK_NAMES[m.group(3)]}.{m.group(4)}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise InputError(f"official checkpoint: unexpected entries {unknown[:4]}{' ...' if len(unknown) > 4 else ''}")
    for attn, parts in qkv_parts.items():
        if set(parts) != {"attn.qkv.weight", "attn.q_bias", "attn.v_bias"}:
            raise InputError(f"official checkpoint: {attn}: needs qkv.weight, q_bias and v_bias, has {sorted(parts)}")
        qkv, q_bias, v_bias = parts["attn.qkv.weight"], parts["attn.q_bias"], parts["attn.v_bias"]
        dim = q_bias.shape[0]
        out[f"{attn}.q.weight"] = qkv[:dim]
        out[f"{attn}.kv.weight"] = qkv[dim:]
        out[f"{attn}.q.bias"] = q_bias
        out[f"{attn}.kv.bias"] = torch.cat([torch.zeros_like(v_bias), v_bias])
    mesh_inputs = sd["encoder.patch_embed.weight"].shape[1]
    device = sd["encoder.patch_embed.weight"].device
    out["mesh_encoder.input_mean"] = torch.zeros(mesh_inputs, device=device)
    out["mesh_encoder.input_scale"] = torch.ones((), device=device)
    return out


def p3d_to_official_state_dict(model: SpeechMeshModel) -> dict[str, torch.Tensor]:
    """The inverse map: an official-layout state dict computing the same features as ``model``.

    The key bias (``attn.kv.bias[:H]``) is dropped: it adds one constant to all logits of a query
    and cancels in the softmax. The mesh input standardisation ``(x - mean) / scale`` is folded into
    the tokenizer ``Linear``: ``W' = W / scale``, ``b' = b - W mean / scale`` (float64, then float32),
    with ``mean`` over the V*3 flattened inputs (the official input layout) and ``scale`` a scalar. A
    standardisation that folds into NaN or inf weights (a NaN mean, a zero scale) raises :class:`InputError`.
    """
    if not isinstance(model, SpeechMeshModel):
        raise InputError(f"only a speech_mesh critic has the official layout, got a {getattr(model, 'kind', '?')!r} model")
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for official, ours in OFFICIAL_ENCODERS.items():
        embed = "patch_embed.proj" if ours == "speech_encoder" else "patch_embed"
        weight, bias = sd[f"{ours}.patch_embed.weight"], sd[f"{ours}.patch_embed.bias"]
        if ours == "mesh_encoder":
            mean = sd["mesh_encoder.input_mean"].double()
            scale = sd["mesh_encoder.input_scale"].double()
            w64 = weight.double()
            weight, bias = (w64 / scale).to(weight.dtype), (bias.double() - w64 @ mean / scale).to(bias.dtype)
            if not weight.is_meta and not (bool(torch.isfinite(weight).all()) and bool(torch.isfinite(bias).all())):
                raise InputError(f"its mesh input standardisation (input_mean / input_scale, scale "
                                 f"{float(scale):g}) folds into NaN or inf first-layer weights; the official "
                                 f"layout has no separate standardisation")
        out[f"{official}.{embed}.weight"] = weight.clone()
        out[f"{official}.{embed}.bias"] = bias.clone()
        encoder = getattr(model, ours).encoder
        for i in range(len(encoder.blocks)):
            src, dst = f"{ours}.encoder.blocks.{i}", f"{official}.blocks.{i}"
            dim = sd[f"{src}.attn.q.weight"].shape[0]
            out[f"{dst}.norm1.weight"], out[f"{dst}.norm1.bias"] = sd[f"{src}.norm1.weight"], sd[f"{src}.norm1.bias"]
            out[f"{dst}.attn.q_bias"] = sd[f"{src}.attn.q.bias"]
            out[f"{dst}.attn.v_bias"] = sd[f"{src}.attn.kv.bias"][dim:]
            out[f"{dst}.attn.qkv.weight"] = torch.cat([sd[f"{src}.attn.q.weight"], sd[f"{src}.attn.kv.weight"]])
            for o_name in ("attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
                for param in ("weight", "bias"):
                    out[f"{dst}.{o_name}.{param}"] = sd[f"{src}.{_OFFICIAL_BLOCK_NAMES[o_name]}.{param}"]
        out[f"{official}.norm.weight"] = sd[f"{ours}.encoder.norm.weight"]
        out[f"{official}.norm.bias"] = sd[f"{ours}.encoder.norm.bias"]
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def official_checkpoint(model: SpeechMeshModel) -> dict[str, Any]:
    """``{"model": state_dict}`` in the official layout (what the official evaluation and loss scripts read).

    When a width is not 64 per head (p3d's ``cpu``/``smoke`` presets), a plain ``p3d_heads`` entry
    (``{"speech": h, "mesh": h}``) records the heads, which the state dict cannot show; the official
    scripts ignore it.
    """
    ckpt: dict[str, Any] = {"model": p3d_to_official_state_dict(model)}
    heads = {"speech": model.speech_encoder.config.heads, "mesh": model.mesh_encoder.config.heads}
    dims = {"speech": model.speech_encoder.dim, "mesh": model.mesh_encoder.dim}
    if any(heads[k] * OFFICIAL_HEAD_DIM != dims[k] for k in heads):
        ckpt["p3d_heads"] = heads
    return ckpt


def from_official(ckpt: Any, source: str = "official checkpoint") -> SpeechMeshModel:
    """A :class:`SpeechMeshModel` ("ours": frozen speech encoder) holding an official checkpoint's weights, in eval mode."""
    sd = official_state_dict(ckpt)
    if sd is None:
        raise InputError(f"{source}: no official speech_mesh_rep state dict (no encoder.patch_embed.weight and "
                         f"encoder_audio.patch_embed.proj.weight under 'model', 'module' or at the top level)")
    not_tensors = [str(k) for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise InputError(f"{source}: entries that are not tensors {not_tensors[:4]}{' ...' if len(not_tensors) > 4 else ''}")
    heads = ckpt.get("p3d_heads") if isinstance(ckpt, dict) else None
    config = official_config(sd, heads if isinstance(heads, dict) else None)
    try:
        model = SpeechMeshModel.from_config(config)
    except (TypeError, ValueError) as exc:  # e.g. p3d_heads that do not divide the width
        raise InputError(f"{source}: its shapes and p3d_heads {heads!r} do not build a model ({one_line(exc)})") from None
    mapped = official_to_p3d_state_dict(sd)
    try:
        model.load_state_dict(mapped)
    except RuntimeError as exc:
        raise InputError(f"{source}: the official weights do not fit the inferred model ({str(exc).splitlines()[0]} "
                         f"...)") from None
    check_finite_parameters(model, source)
    return model.eval()


def load_critic(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> DualEncoder:
    """Load any speech-mesh critic checkpoint, in eval mode: a p3d checkpoint (stage 2 "ours"/"no2d",
    or 3D SyncNet) or an official ``speech_mesh_rep`` checkpoint (``model_eval.pth``,
    ``model_loss.pth``: the state dict under ``model``, ``module`` or bare, extra entries such as
    ``epoch`` and an ``argparse.Namespace`` of arguments allowed; see :func:`from_official`).

    This is what PLRS (``--plrs-checkpoint``) and the perceptual loss take. Read with
    :func:`read_weights_file` (weights only, explicit allow-list). A stage-1 checkpoint is refused:
    it has no mesh encoder. The module is returned on ``map_location`` (its parameters and buffers, the
    mesh encoder's input normalisation included).
    """
    from p3d.models.syncnet3d import SyncNet3D

    ckpt = read_weights_file(path, "cpu")  # the module is built on the CPU, then moved
    if official_state_dict(ckpt) is not None:
        return from_official(ckpt, str(path)).to(map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: neither a p3d model checkpoint (format={CHECKPOINT_FORMAT!r}) nor an official "
                         f"speech_mesh_rep checkpoint")
    critics = {c.kind: c for c in (SpeechMeshModel, SyncNet3D)}
    if ckpt.get("kind") not in critics:
        raise InputError(f"{path}: holds a {ckpt.get('kind')!r} model, "
                         f"not a speech-mesh critic (speech_mesh or syncnet3d)")
    return critics[ckpt["kind"]].from_checkpoint(ckpt, path).eval().to(map_location)
