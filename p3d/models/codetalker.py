"""CodeTalker (Xing et al., CVPR 2023, arXiv 2301.02379): speech-driven 3D faces through a discrete motion prior.

Two stages, one :class:`CodeTalker` module (``kind = "codetalker"``), switched with :meth:`CodeTalker.set_stage`.
Layout and constants follow the official code (``Doubiiu/CodeTalker`` @1b7cb95: ``models/stage1_*.py``,
``models/lib/quantizer.py``, ``models/stage2.py``, ``config/vocaset/stage{1,2}.yaml``; anchors.md §2.2).

**Stage "vqvae"** (paper Sec. 3.1, the discrete facial motion prior). Motion ``m = vertices - template``,
(T, V*3) per clip, is encoded frame-wise into ``n_face`` tokens of ``code_dim`` each, every token is replaced by
its nearest entry of a codebook of ``n_codes = 256`` vectors, and the tokens are decoded back to motion:

- encoder: ``Linear(V*3 -> H) -> LeakyReLU(0.2)``; ``Conv1d(H, H, k=5, replicate padding) -> LeakyReLU ->
  InstanceNorm1d`` over time (``quant_factor = 0``: no temporal down-sampling, one code group per frame);
  ``Linear(H, H)``; dropout; ``vq_layers`` pre-norm transformer layers (``vq_heads`` heads, FFN ``vq_mlp_ratio
  * H``, GELU; attention over the whole clip, no mask); ``Linear(H -> n_face * code_dim)``;
- quantiser (:class:`VectorQuantizer`): nearest code by squared L2, straight-through gradient
  ``z + sg[e - z]``, codebook initialised U(-1/n_codes, 1/n_codes);
- decoder: ``Linear(n_face * code_dim -> H)``, the same conv block, ``Linear(H, H)``, dropout, ``vq_layers``
  transformer layers, ``Linear(H -> V*3, bias=False)``;
- loss (official ``calc_vq_loss``): ``L1(m_hat, m) + quant_weight * [beta * ||z - sg[e]||^2 + ||sg[z] - e||^2]``
  (means), ``beta = 0.25`` (commitment), ``quant_weight = 1``.

**Stage "speech"** (paper Sec. 3.2, speech-driven motion synthesis by code query). Encoder, codebook and decoder
are frozen (``requires_grad = False`` and kept in eval mode):

- audio: ``build_audio_encoder(config.audio)`` gives (1, T, audio_dim) at the motion rate (wav2vec2's 50 Hz
  features interpolated to 30 fps, as FaceFormer on VOCASET), then ``Linear(audio_dim -> dim)``;
- style: ``nn.Embedding(n_styles, dim)`` over the training identities (the official ``nnemb``; equal to a
  bias-free linear map of the one-hot vector), added to every input token;
- inputs: token 0 is the style vector, token t > 0 is ``Linear(V*3 -> dim)(m_{t-1}) + style``; periodic
  positional encoding (period ``fps``, :func:`p3d.models.decoding.periodic_encoding`) and dropout;
- ``nn.TransformerDecoder`` (``layers`` post-norm layers, ``heads`` heads, FFN ``ffn``, ReLU) with FaceFormer's
  masks (the official ``models/utils.py`` borrows them from FaceFormer, so p3d uses
  :mod:`p3d.models.faceformer`'s): the ALiBi-style biased causal self-attention mask (``biased_mask``) and the
  alignment mask (``alignment_mask``: frame t attends to audio frame t only);
- ``feat_map = Linear(dim -> n_face * code_dim, bias=False)``, zero-initialised; its output ``z_hat`` is
  quantised through the frozen codebook (straight-through) and decoded by the frozen decoder; template added;
- loss (official stage 2): ``motion_weight * MSE(vertices_hat, vertices) + reg_weight * MSE(z_hat, e_gt)``,
  where ``e_gt`` are the frozen encoder's quantised codes of the ground-truth motion; weights 1 and 1;
- training with teacher forcing (official ``teacher_forcing: True``); ``teacher_forcing=False`` in the config
  trains through the autoregressive rollout instead (costly: one decoder pass per frame);
- prediction (:meth:`CodeTalker.predict`) is autoregressive as the official ``predict``: at each step the
  prefix is decoded to vertices and the last frame is re-encoded as the next input token; the final output is
  the decoding of the whole predicted code sequence.

**How a trainer runs the two stages** (``p3d train talker --model codetalker``). The official code trains
stage 1 (VOCASET: 200 epochs, AdamW lr 1e-4, StepLR 20 / 0.5) and then stage 2 (100 epochs, Adam lr 1e-4,
batch 1) as two runs. With :func:`p3d.train.trainer.train`, use two calls on the same model, each with its own
run sub-folder (the two stages log different ``metrics.csv`` columns)::

    model = CodeTalker(config)                        # starts in stage "vqvae"
    train(model, data, step_fn, cfg_vq, run_dir / "vqvae")       # N1 steps, no perceptual loss
    model.set_stage("speech")                         # BEFORE train() builds its optimiser
    train(model, data, step_fn, cfg_speech, run_dir / "speech")  # N2 steps, critic loss added here
    model.save(run_dir / "final.pt")

``step_fn`` is the same in both: ``out = model(batch)``; add the perceptual loss on ``out.vertices`` only when
``model.stage == "speech"`` (in stage "vqvae" the vertices are reconstructions of the ground truth, not
predictions from speech). Resume is exact: rerunning the first call on a finished ``vqvae`` folder loads its
``last.pt`` and takes no step; the stage travels in the state dict (buffer ``stage_index``) and
:meth:`CodeTalker.load_state_dict` re-applies it (freezing included). Two separate runs work as well: run 1 in
stage "vqvae"; run 2 rebuilds the model with ``CodeTalker.load(run1 / "final.pt")`` (or loads its state dict),
calls ``set_stage("speech")`` and trains. Always call ``set_stage`` before building an optimiser: it decides
which parameters require gradients (speech stage: everything outside ``vqvae.``, except what the audio encoder
froze itself, e.g. wav2vec2's CNN).

**Deliberate differences from the official code** (all small):

- no positional encoding inside the VQ-VAE transformers: the official ``PositionalEncoding`` is applied to
  (B, T, C) tensors but indexes its table by the *batch* axis (``pe[:x.size(0)]``), so it adds one constant
  vector to every frame, which the preceding ``Linear``'s learnable bias absorbs; the dropout after it is kept;
- the transformer layers are p3d's pre-norm :class:`p3d.models.transformer.Block` (LayerNorm eps 1e-6, biased
  q/k/v, scale ``1/sqrt(head_dim)``); the official ones have bias-free q/k/v, eps 1e-5 and scale
  ``1/sqrt(H)`` (the full width);
- in training, token 0 is the style vector alone, as in the official ``predict`` (the official training input
  is ``vertice_map(0) + style``, i.e. it adds the map's bias; here train and test agree);
- masks and positional encodings are built for any length (official tables stop at 600 frames = 20 s);
- a one-frame sequence through the conv blocks is duplicated to two frames and the first output kept (InstanceNorm
  needs two frames); the official code does this only for the first autoregressive step.

**Official VQ-VAE layers** (``vq_block="official"``, ``vq_io_linear``, ``vq_out_bias``; set by the ``paper``
preset, needed to load the released checkpoints, :mod:`p3d.models.official_baselines`). With
``vq_block="official"`` the VQ-VAE transformer layers are CodeTalker's own (:class:`OfficialVQBlock`: pre-norm,
LayerNorm eps 1e-5, bias-free fused ``to_qkv``, attention scale ``1/sqrt(vq_dim)`` (the full width, not the
head width), the tanh approximation of GELU). ``vq_io_linear=False`` is the official VOCASET VQ-VAE: no linear
layer between the encoder's transformer and the codes, nor between the codes and the decoder's convolution
(needs ``vq_dim == n_face * code_dim``, 16 x 64 = 1024); the official BIWI VQ-VAE has them
(``encoder_linear_embedding_post``, ``decoder_linear_embedding_pre``, p3d's default). ``vq_out_bias=True``: the
decoder's output layer has a bias (official VOCASET; BIWI has none). The official ``PositionalEncoding`` constant
(above) is folded into ``embed.bias`` when an official checkpoint is loaded. Speech stage with
``audio.features_per_frame = 2`` (official BIWI, 25 fps): the decoder's memory holds two 50 Hz features per
frame and frame t attends to features 2t and 2t+1.

**NOT FOUND** in the official code or the paper: CPU-scale sizes (the ``cpu`` / ``smoke`` presets are ours);
CodeTalker's settings when trained with the perceptual loss (paper-digest §4: only the FaceFormer integration
is public).

Units: vertices in the corpus' units (metres for VOCASET / FLAME and the synthetic corpora).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from p3d.errors import InputError
from p3d.models.base import PresetConfig
from p3d.models.base import eval_mode
from p3d.models.decoding import alignment_mask, biased_mask, periodic_encoding, post_norm_layer_step
from p3d.models.audio_encoder import AudioEncoderConfig, build_audio_encoder, encode_clip, encode_clips
from p3d.models.talker import (ClipBatch, Talker, TalkerBatch, TalkerOutput, length_mask, masked_mean,
                               mean_over_clips, pad_sequences, shared_audio)
from p3d.models.transformer import Block

STAGES = ("vqvae", "speech")


@dataclasses.dataclass(frozen=True)
class CodeTalkerConfig(PresetConfig):
    """CodeTalker hyper-parameters. Defaults = the official VOCASET configs (``paper`` preset).

    Attributes:
        n_vertices: V (5023 for FLAME).
        n_styles: training identities (8 for VOCASET).
        fps: motion frame rate; also the period of the positional encoding and of the ALiBi bias (30 VOCASET).
        audio: the audio encoder (:class:`p3d.models.audio_encoder.AudioEncoderConfig`).
        vq_dim: H, width of the VQ-VAE (``hidden_size`` 1024).
        vq_layers, vq_heads: transformer layers / heads of the VQ-VAE encoder and decoder each (6, 8).
        vq_mlp_ratio: FFN width / H (``intermediate_size`` 1536 / 1024 = 1.5).
        n_codes: codebook entries (``n_embed`` 256).
        code_dim: width of one code (``zquant_dim`` 64).
        n_face: codes per frame, the face-part factor (``face_quan_num``: 16 for VOCASET, 8 for BIWI).
        beta: commitment weight of the quantisation loss (0.25).
        quant_weight: weight of the quantisation loss in stage 1 (``quant_loss_weight`` 1.0).
        leaky_slope: LeakyReLU slope (``neg`` 0.2).
        dim: width of the stage-2 decoder (``feature_dim`` 1024).
        layers, heads: ``nn.TransformerDecoder`` layers / heads (6, 4; BIWI uses 12 layers).
        ffn: decoder FFN width (2 * dim = 2048).
        motion_weight, reg_weight: stage-2 loss weights (1.0, 1.0).
        teacher_forcing: stage-2 training input (official: True).
        dropout: dropout of the positional encodings and of the decoder layers (PyTorch / official 0.1).
        vq_block: ``"p3d"`` (:class:`p3d.models.transformer.Block`) or ``"official"`` (:class:`OfficialVQBlock`).
        vq_io_linear: a linear layer between the VQ-VAE transformers and the codes (official BIWI, p3d);
            False: none (official VOCASET; ``vq_dim`` must equal ``n_face * code_dim``).
        vq_out_bias: bias of the VQ decoder's output layer (official VOCASET: True).
    """

    n_vertices: int = 5023
    n_styles: int = 8
    fps: int = 30
    audio: AudioEncoderConfig = AudioEncoderConfig(kind="wav2vec2")
    vq_dim: int = 1024
    vq_layers: int = 6
    vq_heads: int = 8
    vq_mlp_ratio: float = 1.5
    n_codes: int = 256
    code_dim: int = 64
    n_face: int = 16
    beta: float = 0.25
    quant_weight: float = 1.0
    leaky_slope: float = 0.2
    dim: int = 1024
    layers: int = 6
    heads: int = 4
    ffn: int = 2048
    motion_weight: float = 1.0
    reg_weight: float = 1.0
    teacher_forcing: bool = True
    dropout: float = 0.1
    vq_block: str = "p3d"
    vq_io_linear: bool = True
    vq_out_bias: bool = False

    def __post_init__(self) -> None:
        if self.vq_block not in ("p3d", "official"):
            raise InputError(f"CodeTalkerConfig.vq_block: choose p3d or official, got {self.vq_block!r}")
        if not self.vq_io_linear and self.vq_dim != self.n_face * self.code_dim:
            raise InputError(f"CodeTalkerConfig: vq_io_linear=False needs vq_dim ({self.vq_dim}) == n_face * code_dim "
                             f"({self.n_face * self.code_dim})")
        for name in ("n_vertices", "n_styles", "fps", "vq_dim", "vq_layers", "vq_heads", "n_codes", "code_dim",
                     "n_face", "dim", "layers", "heads", "ffn"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"CodeTalkerConfig.{name}: expected a positive integer, got {value!r}")
        if self.vq_dim % self.vq_heads or self.dim % self.heads:
            raise InputError(f"CodeTalkerConfig: widths (vq_dim {self.vq_dim}, dim {self.dim}) must be divisible "
                             f"by their heads ({self.vq_heads}, {self.heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"CodeTalkerConfig.dropout: expected a value in [0, 1), got {self.dropout}")

    @property
    def latent_dim(self) -> int:
        """Per-frame latent width ``n_face * code_dim``."""
        return self.n_face * self.code_dim

    @staticmethod
    def presets() -> dict[str, CodeTalkerConfig]:
        return {
            # Official VOCASET settings; set audio.wav2vec2_path to a local wav2vec2-base-960h folder.
            "paper": CodeTalkerConfig(audio=AudioEncoderConfig.from_preset("paper"), vq_block="official",
                                      vq_io_linear=False, vq_out_bias=True),
            # Ours: the synthetic corpus' base face (468 vertices), small widths, same structure.
            "cpu": CodeTalkerConfig(n_vertices=468, audio=AudioEncoderConfig.from_preset("cpu"), vq_dim=128,
                                    vq_layers=2, vq_heads=4, code_dim=16, n_face=4, dim=64, layers=2, heads=4,
                                    ffn=128),
            "smoke": CodeTalkerConfig(n_vertices=468, audio=AudioEncoderConfig.from_preset("smoke"), vq_dim=32,
                                      vq_layers=1, vq_heads=2, code_dim=8, n_face=2, dim=32, layers=1, heads=4,
                                      ffn=64, dropout=0.0),
        }


# --------------------------------------------------------------------------------------------------------------
# Stage 1: the VQ-VAE motion prior.


class VectorQuantizer(nn.Module):
    """Nearest-neighbour vector quantiser (VQ-VAE, van den Oord et al. 2017) with a straight-through gradient.

    ``forward(z (..., code_dim)) -> (z_q, loss, indices)``: ``z_q`` = nearest codebook entry by squared L2 in
    value, ``z`` in gradient (``z + sg[e - z]``); ``loss = beta * mean((z - sg[e])^2) + mean((sg[z] - e)^2)``
    (commitment + codebook terms); ``indices`` (...) long.
    """

    def __init__(self, n_codes: int, code_dim: int, beta: float) -> None:
        super().__init__()
        self.beta = beta
        self.codebook = nn.Embedding(n_codes, code_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / n_codes, 1.0 / n_codes)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code of each (..., code_dim) vector: (...) long."""
        flat = z.reshape(-1, z.shape[-1])
        codes = self.codebook.weight
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codes.t() + codes.pow(2).sum(1)[None]
        return dist.argmin(dim=1).view(z.shape[:-1])

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        indices = self.nearest(z)
        e = self.codebook(indices)
        loss = self.beta * F.mse_loss(z, e.detach()) + F.mse_loss(e, z.detach())
        return z + (e - z).detach(), loss, indices

    def forward_clips(self, z: torch.Tensor, mask: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded clips: ``z`` (B, T, ..., code_dim), ``mask`` (B, T) bool (True on a clip's frames) ->
        (z_q, per-clip losses (B,), indices); clip b's loss is :meth:`forward`'s on ``z[b, :T_b]`` alone (the
        same means, over the clip's frames only)."""
        indices = self.nearest(z)
        e = self.codebook(indices)
        commit = masked_mean((z - e.detach()).pow(2), mask)
        codebook = masked_mean((e - z.detach()).pow(2), mask)
        return z + (e - z).detach(), self.beta * commit + codebook, indices


def clip_perplexities(indices: torch.Tensor, mask: torch.Tensor, n_codes: int) -> torch.Tensor:
    """:func:`perplexity` of each clip's codes: ``indices`` (B, T, ...) long, ``mask`` (B, T) -> (B,)."""
    valid = mask.reshape(*mask.shape, *([1] * (indices.ndim - 2))).expand_as(indices)
    bins = torch.where(valid, indices, n_codes).flatten(1)  # padding goes to an extra bin, dropped below
    counts = torch.zeros(bins.shape[0], n_codes + 1, device=indices.device).scatter_add_(
        1, bins, torch.ones_like(bins, dtype=torch.float32))[:, :n_codes]
    p = counts / counts.sum(1, keepdim=True)
    return torch.exp(-(p * torch.log(p + 1e-10)).sum(1))


def perplexity(indices: torch.Tensor, n_codes: int) -> float:
    """``exp(entropy)`` of the code usage in ``indices`` (1 = one code used, n_codes = uniform)."""
    p = torch.bincount(indices.flatten(), minlength=n_codes).float()
    p = p / p.sum()
    return float(torch.exp(-(p * torch.log(p + 1e-10)).sum()))


class TemporalConv(nn.Module):
    """``Conv1d(k=5, replicate padding) -> LeakyReLU -> InstanceNorm1d`` over time: (B, T, C) -> (B, T, C).

    A one-frame input is duplicated and the first output frame kept (InstanceNorm needs two frames).
    """

    def __init__(self, dim: int, slope: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(dim, dim, 5, padding=2, padding_mode="replicate"),
                                 nn.LeakyReLU(slope), nn.InstanceNorm1d(dim, affine=False))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``lengths`` (B,): padded clips of these lengths; each clip's frames as the clip alone would give.

        The frames after a clip's end take the clip's last frame (the replicate padding the clip alone gets, so
        the convolution sees the same inputs), and InstanceNorm's mean and biased variance are taken over the
        clip's frames only. Whatever the padding frames held before does not reach the clip's frames.
        """
        n = x.shape[1]
        if lengths is None or n == 1 or bool((lengths == n).all()):
            if n == 1:
                x = x.expand(-1, 2, -1)
            return self.net(x.transpose(1, 2)).transpose(1, 2)[:, :n]
        conv, act, norm = self.net
        lengths = lengths.to(x.device)
        last = torch.minimum(torch.arange(n, device=x.device)[None], (lengths - 1)[:, None])  # (B, n)
        x = x.gather(1, last[..., None].expand(-1, -1, x.shape[-1]))
        y = act(conv(x.transpose(1, 2)))  # (B, C, n)
        mask = (torch.arange(n, device=x.device)[None] < lengths[:, None])[:, None].to(y.dtype)  # (B, 1, n)
        count = lengths.to(y.dtype)[:, None, None]
        mean = (y * mask).sum(2, keepdim=True) / count
        centred = y - mean
        var = (centred.pow(2) * mask).sum(2, keepdim=True) / count
        return (centred * torch.rsqrt(var + norm.eps)).transpose(1, 2)


class OfficialVQBlock(nn.Module):
    """CodeTalker's VQ-VAE transformer layer (``models/lib/base_models.py``): ``x + Attn(LN x)``, then
    ``x + MLP(LN x)``; LayerNorm eps 1e-5, bias-free fused ``to_qkv`` (q, k, v blocks, each heads x head_dim),
    logits scaled by ``1/sqrt(dim)`` (the full width), ``to_out`` with bias, MLP ``l1 -> tanh-GELU -> l2``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = nn.Module()
        self.attn.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn.to_out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = nn.Module()
        self.mlp.l1 = nn.Linear(dim, int(dim * mlp_ratio))
        self.mlp.l2 = nn.Linear(int(dim * mlp_ratio), dim)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``attn_mask``: None, or bool (B, 1, 1, n), True at the keys a frame may attend to (padding False)."""
        b, n, d = x.shape
        q, k, v = self.attn.to_qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=d ** -0.5)
        x = x + self.attn.to_out(out.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp.l2(F.gelu(self.mlp.l1(self.norm2(x)), approximate="tanh"))


class MotionTransformer(nn.Module):
    """``Linear(in -> H)`` [-> LeakyReLU] -> :class:`TemporalConv` -> ``Linear(H, H)`` -> dropout ->
    ``[Block] x L`` -> ``Linear(H -> out)``: the shared skeleton of the VQ-VAE encoder and decoder."""

    def __init__(self, c: CodeTalkerConfig, d_in: int, d_out: int, activate_input: bool, out_bias: bool) -> None:
        super().__init__()
        h = c.vq_dim
        if activate_input:
            self.inp = nn.Sequential(nn.Linear(d_in, h), nn.LeakyReLU(c.leaky_slope))
        else:
            self.inp = nn.Linear(d_in, h) if c.vq_io_linear else nn.Identity()
        self.conv = TemporalConv(h, c.leaky_slope)
        self.embed = nn.Linear(h, h)
        self.dropout = nn.Dropout(c.dropout)
        block = OfficialVQBlock if c.vq_block == "official" else Block
        self.blocks = nn.Sequential(*(block(h, c.vq_heads, c.vq_mlp_ratio) for _ in range(c.vq_layers)))
        self.out = nn.Linear(h, d_out, bias=out_bias) if (activate_input is False or c.vq_io_linear) \
            else nn.Identity()

    def forward(self, x: torch.Tensor, last_only: bool = False, lengths: torch.Tensor | None = None
                ) -> torch.Tensor:
        """(B, T, d_in) -> (B, T, d_out), or (B, 1, d_out) for the last frame only (the same values).

        ``lengths`` (B,): padded clips; clip b's first ``lengths[b]`` frames equal the clip alone's (the
        convolution block re-pads and normalises per clip, :class:`TemporalConv`; attention ignores the
        padding keys); its later frames are not meaningful.
        """
        x = self.dropout(self.embed(self.conv(self.inp(x), lengths)))
        if lengths is None or bool((lengths == x.shape[1]).all()):
            x = self.blocks(x)
        else:
            keys = (torch.arange(x.shape[1], device=x.device)[None] < lengths.to(x.device)[:, None])[:, None, None]
            for block in self.blocks:
                x = block(x, attn_mask=keys)
        return self.out(x[:, -1:] if last_only else x)


class MotionVQVAE(nn.Module):
    """Stage-1 motion prior: motion (B, T, V*3) <-> codes (B, T, n_face, code_dim)."""

    def __init__(self, c: CodeTalkerConfig) -> None:
        super().__init__()
        self.config = c
        self.encoder = MotionTransformer(c, 3 * c.n_vertices, c.latent_dim, activate_input=True, out_bias=True)
        self.quantizer = VectorQuantizer(c.n_codes, c.code_dim, c.beta)
        self.decoder = MotionTransformer(c, c.latent_dim, 3 * c.n_vertices, activate_input=False,
                                         out_bias=c.vq_out_bias)

    def encode(self, motion: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, V*3) -> continuous latents z (B, T, n_face, code_dim). ``lengths`` (B,): padded clips, each
        clip's frames as alone (:meth:`MotionTransformer.forward`)."""
        z = self.encoder(motion, lengths=lengths)
        return z.view(*z.shape[:2], self.config.n_face, self.config.code_dim)

    def decode(self, codes: torch.Tensor, last_only: bool = False, lengths: torch.Tensor | None = None
               ) -> torch.Tensor:
        """(B, T, n_face, code_dim) -> motion (B, T, V*3), or (B, 1, V*3) of the last frame (which still depends
        on every frame: InstanceNorm and attention span the sequence). ``lengths``: as :meth:`encode`."""
        return self.decoder(codes.flatten(2), last_only=last_only, lengths=lengths)

    def forward(self, motion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, V*3) -> (reconstruction (B, T, V*3), quantisation loss, code indices (B, T, n_face))."""
        z_q, quant_loss, indices = self.quantizer(self.encode(motion))
        return self.decode(z_q), quant_loss, indices

    def forward_clips(self, motion: torch.Tensor, lengths: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded clips (B, T, V*3) of ``lengths`` (B,) -> (reconstructions (B, T, V*3), per-clip quantisation
        losses (B,), indices (B, T, n_face)); clip b's first ``lengths[b]`` frames and loss as :meth:`forward`
        on the clip alone."""
        mask = length_mask(lengths.to(motion.device), motion.shape[1])
        z_q, quant_losses, indices = self.quantizer.forward_clips(self.encode(motion, lengths), mask)
        return self.decode(z_q, lengths=lengths), quant_losses, indices


# --------------------------------------------------------------------------------------------------------------
# The model.


class CodeTalker(Talker):
    """CodeTalker: stage "vqvae" (motion prior) and stage "speech" (speech -> codes); see the module docstring.

    ``forward(batch)`` computes the current stage's loss on one clip (or a :class:`ClipBatch`,
    :meth:`forward_clips`); ``predict`` decodes speech autoregressively
    (meaningful after the speech stage).
    """

    kind = "codetalker"
    config_class = CodeTalkerConfig
    min_training_frames = 2
    training_stages: tuple[str, ...] = STAGES

    def __init__(self, config: CodeTalkerConfig = CodeTalkerConfig(), pretrained: bool = True) -> None:
        """``pretrained=False`` builds a wav2vec2 audio encoder with random weights (to load a checkpoint into)."""
        super().__init__()
        c = self.config = config
        self.vqvae = MotionVQVAE(c)
        self.audio_encoder = build_audio_encoder(c.audio, pretrained=pretrained)
        self.per_frame = c.audio.features_per_frame
        self.audio_map = nn.Linear(int(self.audio_encoder.dim) // self.per_frame, c.dim)
        self.vertex_map = nn.Linear(3 * c.n_vertices, c.dim)
        self.style = nn.Embedding(c.n_styles, c.dim)
        self.ppe_dropout = nn.Dropout(c.dropout)
        layer = nn.TransformerDecoderLayer(c.dim, c.heads, c.ffn, dropout=c.dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, c.layers)
        self.feat_map = nn.Linear(c.dim, c.latent_dim, bias=False)
        nn.init.zeros_(self.feat_map.weight)
        self.register_buffer("stage_index", torch.zeros((), dtype=torch.long, device="cpu"))  # readable on meta too
        # The speech-side parameters that may train (the audio encoder may have frozen some, e.g. wav2vec2's CNN).
        self._speech_trainable = {n for n, p in self._speech_parameters() if p.requires_grad}
        self.set_stage("vqvae")

    @classmethod
    def _from_config(cls, config: CodeTalkerConfig) -> CodeTalker:
        return cls(config, pretrained=False)

    # ---------------------------------------------------------------------------------------------- stages

    @property
    def stage(self) -> str:
        """The current training stage, ``"vqvae"`` or ``"speech"``."""
        return STAGES[int(self.stage_index)]

    def _speech_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("vqvae.")]

    def set_stage(self, stage: str) -> None:
        """Select what ``forward`` trains: ``"vqvae"`` (only the VQ-VAE requires grad) or ``"speech"`` (the
        VQ-VAE is frozen and in eval mode; the speech side requires grad). Call before building an optimiser."""
        if stage not in STAGES:
            raise InputError(f"stage: unknown CodeTalker stage {stage!r} (choose from {', '.join(STAGES)})")
        self.stage_index.fill_(STAGES.index(stage))
        vq = stage == "vqvae"
        self.vqvae.requires_grad_(vq)
        for name, p in self._speech_parameters():
            p.requires_grad_(not vq and name in self._speech_trainable)
        self.train(self.training)

    def train(self, mode: bool = True) -> CodeTalker:
        super().train(mode)
        if self.stage == "speech":
            self.vqvae.eval()
        return self

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """``nn.Module.load_state_dict``, then re-apply the stored stage (and its freezing)."""
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        index = int(self.stage_index)
        if not 0 <= index < len(STAGES):
            raise InputError(f"state dict: stage_index {index} is not a CodeTalker stage")
        self.set_stage(STAGES[index])
        return result

    # ---------------------------------------------------------------------------------------------- stage 2

    def _audio_features(self, audio: torch.Tensor, n_frames: int, features: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """(S,) -> (1, features_per_frame * n_frames, dim) (``features``: the clip's cached audio front-end)."""
        feats = encode_clip(self.audio_encoder, audio.float(), n_frames, features)
        return self.audio_map(feats.reshape(feats.shape[0], self.per_frame * n_frames, -1))

    def _style_vector(self, style: int, device: torch.device) -> torch.Tensor:
        """(1, 1, dim) style embedding."""
        return self.style(torch.tensor([[int(style)]], device=device))

    def decode_features(self, tokens: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Stage-2 decoder: input tokens (B, T, dim), audio (B, S >= T, dim) -> predicted codes z_hat
        (B, T, n_face, code_dim) (continuous, before quantisation)."""
        c = self.config
        b, t, _ = tokens.shape
        x = self.ppe_dropout(tokens + periodic_encoding(t, c.dim, c.fps).to(tokens))
        tgt_mask = biased_mask(c.heads, t, c.fps).to(tokens).repeat(b, 1, 1)
        memory_mask = alignment_mask(t, audio.shape[1], self.per_frame).to(tokens.device)
        out = self.feat_map(self.decoder(x, audio, tgt_mask=tgt_mask, memory_mask=memory_mask))
        return out.view(b, t, c.n_face, c.code_dim)

    def _decoder_step(self, x: torch.Tensor, audio: torch.Tensor, cache: list[torch.Tensor | None],
                      mask_row: torch.Tensor) -> torch.Tensor:
        """One new row of :meth:`decode_features` (the same values; the causal mask makes earlier rows final).

        ``x`` (B, 1, dim): the new input token after the positional encoding; ``audio`` (B, 1, dim): its aligned
        audio feature (the only one the alignment mask lets it see); ``cache``: per layer, the inputs of the
        earlier rows (updated in place); ``mask_row`` (B * heads, 1, i + 1): its row of the biased causal mask.
        Returns z_hat of the new frame, (B, 1, n_face * code_dim). Each layer:
        :func:`p3d.models.decoding.post_norm_layer_step`.
        """
        for k, layer in enumerate(self.decoder.layers):
            prev = cache[k]
            cache[k] = keys = x if prev is None else torch.cat([prev, x], dim=1)
            x = post_norm_layer_step(layer, x, keys, audio, mask_row)
        return self.feat_map(x)

    def _rollout(self, audio: torch.Tensor, style: torch.Tensor, n_frames: int) -> torch.Tensor:
        """Autoregressive decoding (official ``predict``): -> z_hat (B, n_frames, n_face, code_dim).

        Step i computes z_hat_i from tokens 0..i; the quantised codes 0..i are decoded to motion by the frozen
        decoder and the last frame, mapped by ``vertex_map`` plus the style, becomes token i + 1. The stage-2
        decoder is evaluated incrementally (:meth:`_decoder_step`); the VQ decoder reruns on the whole prefix,
        as its last frame depends on all of them (O(T^2) frames in all).
        """
        c = self.config
        b = style.shape[0]
        mask = biased_mask(c.heads, n_frames, c.fps).to(style)
        ppe = periodic_encoding(n_frames, c.dim, c.fps).to(style)
        cache: list[torch.Tensor | None] = [None] * len(self.decoder.layers)
        feats: list[torch.Tensor] = []
        codes: list[torch.Tensor] = []
        token = style
        for i in range(n_frames):
            x = self.ppe_dropout(token + ppe[i])
            row = mask[:, i:i + 1, :i + 1].repeat(b, 1, 1)
            aligned = audio[:, self.per_frame * i:self.per_frame * (i + 1)]
            feats.append(self._decoder_step(x, aligned, cache, row).view(b, 1, c.n_face, c.code_dim))
            if i == n_frames - 1:
                break
            codes.append(self.vqvae.quantizer(feats[-1])[0])
            last = self.vqvae.decode(torch.cat(codes, dim=1), last_only=True)
            token = self.vertex_map(last) + style
        return torch.cat(feats, dim=1)

    # ---------------------------------------------------------------------------------------------- API

    def forward(self, batch: TalkerBatch | ClipBatch) -> TalkerOutput:
        """One clip: the current stage's loss, logs, and absolute vertices (T, V, 3) with their graph.

        Stage "vqvae": reconstruction of the ground truth (L1 + quantisation loss). Stage "speech": prediction
        from speech (teacher-forced unless ``config.teacher_forcing`` is False; MSE + code regression).
        """
        if isinstance(batch, ClipBatch):
            return self.forward_clips(batch)
        vertices = self.check_clip(batch)
        c = self.config
        t = vertices.shape[0]
        template = batch.template.to(vertices.dtype)
        motion = (vertices - template).reshape(1, t, 3 * c.n_vertices)
        if self.stage == "vqvae":
            recon, quant_loss, indices = self.vqvae(motion)
            rec_loss = F.l1_loss(recon, motion)
            loss = rec_loss + c.quant_weight * quant_loss
            out = recon.view(t, c.n_vertices, 3) + template
            logs = {"loss_rec": float(rec_loss.detach()), "loss_quant": float(quant_loss.detach()),
                    "perplexity": perplexity(indices, c.n_codes)}
            return TalkerOutput(loss=loss, logs=logs, vertices=out)

        with torch.no_grad():
            target_codes = self.vqvae.quantizer.codebook(self.vqvae.quantizer.nearest(self.vqvae.encode(motion)))
        audio = self._audio_features(batch.audio, t, batch.audio_features)
        style = self._style_vector(batch.style, vertices.device)
        if c.teacher_forcing:
            tokens = torch.cat([style, self.vertex_map(motion[:, :-1]) + style], dim=1)
            feats = self.decode_features(tokens, audio)
        else:
            feats = self._rollout(audio, style, t)
        z_q, _, _ = self.vqvae.quantizer(feats)
        out = self.vqvae.decode(z_q).view(t, c.n_vertices, 3) + template
        motion_loss = F.mse_loss(out, vertices)
        reg_loss = F.mse_loss(feats, target_codes)
        loss = c.motion_weight * motion_loss + c.reg_weight * reg_loss
        logs = {"loss_motion": float(motion_loss.detach()), "loss_reg": float(reg_loss.detach())}
        return TalkerOutput(loss=loss, logs=logs, vertices=out)

    def forward_clips(self, batch: ClipBatch) -> TalkerOutput:
        """B clips; every clip's loss as :meth:`forward` on it alone, the loss their mean over clips.

        The clips are padded to the longest and run together: the VQ-VAE (both stages) re-pads each clip's
        convolution input with its last frame, takes InstanceNorm's statistics over its frames and masks the
        padding keys in attention (:meth:`MotionVQVAE.forward_clips`); the speech stage's audio encoder and
        decoder see the padding only after a clip's frames (causal and alignment masks); every loss term is a
        mean over the clip's own frames (:func:`masked_mean`). The autoregressive speech stage
        (``teacher_forcing=False``) runs clip by clip.
        """
        c = self.config
        if self.stage == "speech" and not c.teacher_forcing:
            return super().forward_clips(batch)
        clips = batch.clips
        vertices = [self.check_clip(clip) for clip in clips]
        lengths = [v.shape[0] for v in vertices]
        n = len(clips)
        templates = torch.stack([clip.template.to(v.dtype) for clip, v in zip(clips, vertices)])[:, None]
        target, lens = pad_sequences(vertices)  # (B, T_max, V, 3)
        longest = target.shape[1]
        mask = length_mask(lens.to(target.device), longest)
        motion = (target - templates).reshape(n, longest, 3 * c.n_vertices)  # padding: finite, never used
        if self.stage == "vqvae":
            recon, quant_losses, indices = self.vqvae.forward_clips(motion, lens)
            rec_losses = masked_mean((recon - motion).abs(), mask)
            losses = rec_losses + c.quant_weight * quant_losses
            out = recon.view(n, longest, c.n_vertices, 3) + templates
            ppl = clip_perplexities(indices, mask, c.n_codes).tolist()
            logs = [{"loss_rec": r, "loss_quant": q, "perplexity": p}
                    for r, q, p in zip(rec_losses.detach().tolist(), quant_losses.detach().tolist(), ppl)]
            return mean_over_clips(list(losses), logs, [out[b, :t] for b, t in enumerate(lengths)])

        quantizer = self.vqvae.quantizer
        with torch.no_grad():
            targets = quantizer.codebook(quantizer.nearest(self.vqvae.encode(motion, lens)))
        feats = encode_clips(self.audio_encoder, [clip.audio.float() for clip in clips], lengths,
                             [clip.audio_features for clip in clips])
        audio = self.audio_map(feats.reshape(n, self.per_frame * longest, -1))
        style = self.style(torch.tensor([[int(clip.style)] for clip in clips], device=audio.device))  # (B, 1, dim)
        tokens = torch.cat([style, self.vertex_map(motion[:, :-1]) + style], dim=1)
        codes = self.decode_features(tokens, audio)  # (B, T_max, n_face, code_dim)
        z_q = codes + (quantizer.codebook(quantizer.nearest(codes)) - codes).detach()  # straight-through
        out = self.vqvae.decode(z_q, lengths=lens).view(n, longest, c.n_vertices, 3) + templates
        motion_losses = masked_mean((out - target).pow(2), mask)
        reg_losses = masked_mean((codes - targets).pow(2), mask)
        losses = c.motion_weight * motion_losses + c.reg_weight * reg_losses
        logs = [{"loss_motion": m, "loss_reg": r}
                for m, r in zip(motion_losses.detach().tolist(), reg_losses.detach().tolist())]
        return mean_over_clips(list(losses), logs, [out[b, :t] for b, t in enumerate(lengths)])

    @torch.no_grad()
    def predict(self, audio: torch.Tensor, template: torch.Tensor, style: int, n_frames: int) -> torch.Tensor:
        """Autoregressive inference: (S,) 16 kHz audio, (V, 3) template, style index -> (n_frames, V, 3)
        absolute vertices (eval mode inside; the previous mode is restored)."""
        self.check_inputs(audio, template, style)
        n_frames = self.check_n_frames(n_frames)
        with eval_mode(self):
            feats = self._rollout(self._audio_features(audio, n_frames),
                                  self._style_vector(style, template.device), n_frames)
            z_q, _, _ = self.vqvae.quantizer(feats)
            motion = self.vqvae.decode(z_q)
        return motion.view(n_frames, self.n_vertices, 3) + template.to(motion.dtype)

    def _rollout_batch(self, audios: list[torch.Tensor], styles: list[int], n_frames: list[int]) -> torch.Tensor:
        """:meth:`_rollout` of B items (checked inputs): z_hat (B, max n_frames, n_face, code_dim), item b's first
        ``n_frames[b]`` rows as its rollout alone; the audio encoder once per distinct audio tensor, batched."""
        longest = max(n_frames)
        unique, inverse = shared_audio(audios, n_frames)
        feats = encode_clips(self.audio_encoder, [audios[u].float() for u in unique], [n_frames[u] for u in unique])
        audio = self.audio_map(feats.reshape(len(unique), self.per_frame * longest, -1))
        audio = audio[inverse.to(audio.device)]
        style = self.style(torch.tensor([[int(s)] for s in styles], device=audio.device))  # (B, 1, dim)
        return self._rollout(audio, style, longest)

    @torch.no_grad()
    def predict_batch(self, audios: list[torch.Tensor], templates: list[torch.Tensor], styles: list[int],
                      n_frames: list[int]) -> list[torch.Tensor]:
        """B autoregressive predictions at once (eval mode): item b's (n_frames[b], V, 3), as :meth:`predict`.

        The audio encoder runs once per distinct audio tensor, batched; :meth:`_rollout` advances every item one
        frame per step (all items' prefixes have the same length at every step, so the frozen VQ decoder, whose
        InstanceNorm and attention span a sequence, sees each item's own prefix only; a shorter item is decoded
        past its end on zero-padded audio and cut, the causal and alignment masks keep its frames from seeing
        that). The final decoding of the codes runs once per distinct length (its InstanceNorm and attention span
        the whole clip, so items are grouped by length, never padded).
        """
        n_frames = self.check_prediction_batch(audios, templates, styles, n_frames)
        with eval_mode(self):
            z_q = self.vqvae.quantizer(self._rollout_batch(audios, styles, n_frames))[0]
            out: list[torch.Tensor | None] = [None] * len(n_frames)
            for t in sorted(set(n_frames)):
                items = [b for b, n in enumerate(n_frames) if n == t]
                motion = self.vqvae.decode(z_q[items, :t])
                for k, b in enumerate(items):
                    out[b] = motion[k].view(t, self.n_vertices, 3) + templates[b].to(motion.dtype)
        return out


__all__ = ["CodeTalker", "CodeTalkerConfig", "MotionVQVAE", "OfficialVQBlock", "VectorQuantizer", "perplexity"]
