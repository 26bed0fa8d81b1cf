"""The perceptual-loss weight carried from the paper's VOCASET setting to another corpus' units.

**The rule.** ``W_corpus = W_paper * (s_corpus / s_vocaset)^2`` with ``W_paper = 1e-7`` and ``s`` the
motion scale of a corpus' training data: the RMS, per coordinate, of ``vertices - template`` over all
mesh vertices and all frames (:func:`motion_rms`, pooled over clips by :func:`pooled_motion_rms`),
each in the corpus' own length units.

**Derivation.**

1. The paper's setting (C.2; official ``perceptual_loss/main.py``): FaceFormer on VOCASET trains
   ``L = L_mse + W * L_percp`` with ``W = 1e-7``. ``L_mse`` is ``nn.MSELoss`` of the predicted vertices:
   the mean over all T * V * 3 coordinates of the squared error, in metres^2 (FLAME, 5023 vertices).
   ``L_percp`` is an InfoNCE in nats: unitless, about ``log 80 = 4.4`` at chance for batches of 80.
2. Adam, the optimiser of the three baselines, is invariant to multiplying the whole loss by a
   constant. What the weight sets is therefore only the *balance* of the two terms; carrying the
   paper's weight means keeping ``W * L_percp / L_mse`` (and the ratio of their gradients) at its
   VOCASET value.
3. ``L_mse`` scales as ``s^2``. (a) Units: lengths in a unit k times smaller multiply ``s`` by k and
   ``L_mse`` by k^2. (b) At the start of training FaceFormer's output layer is zero-initialised and
   adds the template, so it predicts the template and ``L_mse`` *is* ``s^2`` (of that clip, over the
   same vertices and coordinates: hence this statistic). (c) Later, ``L_mse = rho * s^2`` where ``rho``
   is the model's relative error; the rule assumes ``rho`` is alike on both corpora (a model of
   similar quality), the one assumption it makes.
4. ``L_percp`` does not depend on length units (nats). Its gradient does: a critic reads vertices at
   the scale of its own training data (p3d's mesh encoder divides them by that data's coordinate
   RMS, :meth:`p3d.models.mesh_encoder.MeshEncoder.set_input_normalization`), so
   ``dL_percp/dx ~ 1/s`` while ``dL_mse/dx = 2 (x_hat - x) / N ~ s``. The gradient ratio
   ``W * (1/s) / s = W / s^2`` is kept by the same exponent: both views give ``W ~ s^2``.
5. Hence ``W_corpus / s_corpus^2 = W_paper / s_vocaset^2``.

**Why this statistic.** All vertices, not the lips: ``L_mse`` averages over all vertices, and a mesh
with more vertices that do not move in speech (FLAME's scalp, neck and eyeballs against a face-only
scan) dilutes its MSE by exactly the factor by which it dilutes the all-vertex RMS; a lip-only scale
would miss that. Per coordinate, as ``nn.MSELoss``. The template is the subject's neutral face, what
FaceFormer adds to its output. Clips pooled as ``sqrt(mean over clips of motion_rms^2)``: FaceFormer
trains on one clip per step, so its epoch loss is the mean of per-clip MSEs. ``vertices_subset``
(e.g. the lips) exists for diagnostics and for a loss restricted to those vertices; use the same
subset on both sides.

**The VOCASET reference scale** (:data:`VOCASET_MOTION_RMS`). No publication states VOCASET's motion
scale (the paper, its supplement and the baselines' papers report LVE, a per-frame maximum lip *error*,
and FDD, a *difference* of upper-face dynamics; neither is a motion scale), but FaceFormer's own training
log gives it, by step 3(b):

1. FaceFormer's output layer ``vertice_map_r`` is zero-initialised and the template is added to its output
   (official ``faceformer.py``), so its first loss on a clip is exactly that clip's ``motion_rms^2``;
   ``main.py`` prints the running mean of the epoch's per-clip losses (batch 1, clips shuffled).
2. FaceFormer issue #12 (:data:`p3d.paper.FACEFORMER_VOCASET_TRAIN_MSE_SOURCE`), a user retraining from
   scratch on VOCASET with the official defaults, quotes "(Epoch 1, iteration 115) TRAIN LOSS:0.0000014":
   :data:`p3d.paper.FACEFORMER_VOCASET_TRAIN_MSE_START` = 1.4e-6 m^2, the mean over the first 115 clips.
3. Hence ``s_vocaset = sqrt(1.4e-6 m^2) = 1.18e-3 m``, and the rule reads
   ``W_corpus = kappa_paper * s_corpus^2`` with ``kappa_paper = 1e-7 / 1.4e-6 m^2`` (the paper's weight
   relative to FaceFormer's start-of-training MSE) and ``s_corpus^2`` the same quantity on the corpus,
   measured from its data alone (:func:`split_motion_rms`, train split): no trained model's metric enters.

How good the estimate is: the printed value has 7 decimals (s^2 within -3.6 %/+3.6 %, so W within
-3.4 %/+3.7 %); it is one user's run, 115 of VOCASET's ~320 training clips (8 subjects x 40 sentences,
shuffled); and it includes 114 Adam steps (lr 1e-4) of learning, so if the loss only falls from its start
the mean lies below ``s^2`` and the carried W is an over-estimate by that factor. The same run's loss
"after half of the epoches", :data:`p3d.paper.FACEFORMER_VOCASET_TRAIN_MSE_MIDWAY` (3e-7 m^2, about
0.2 s^2), shows that later in training FaceFormer's MSE is a fraction of ``s^2`` (``rho`` of step 3(c));
it is not used. With VOCASET at hand, a measurement (``split_motion_rms(Corpus.open(processed_vocaset_dir),
"train")``, metres, 30 fps) replaces the estimate (``ExperimentSpec.vocaset_motion_rms``).

**Limits.** The rule carries the weight for a base loss that is FaceFormer's vertex MSE. The paper's
weights for CodeTalker and SelfTalk, whose own losses differ (CodeTalker: MSE + a feature MSE;
SelfTalk: 1000 * MSE + 1000 * velocity MSE + lip-reading terms), are not given. Keeping the same
balance against such a loss would scale W by that loss' factor on the vertex MSE (e.g. 1000 for
SelfTalk); that is an inference, not the paper's setting.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from p3d import paper
from p3d.errors import InputError
from p3d.losses.perceptual_loss import DEFAULT_WEIGHT
from p3d.metrics._checks import IndexLike, as_1d_finite, as_indices, as_template, as_vertices, check_finite

#: The paper's weight (official ``guidance_weight``), relative to FaceFormer's vertex MSE on VOCASET in metres.
PAPER_WEIGHT = DEFAULT_WEIGHT
#: VOCASET's motion scale ``s`` (metres per coordinate, all 5023 FLAME vertices, train split), estimated as the
#: square root of FaceFormer's start-of-training MSE on VOCASET (module doc, "The VOCASET reference scale").
VOCASET_MOTION_RMS = math.sqrt(paper.FACEFORMER_VOCASET_TRAIN_MSE_START)


def motion_rms(vertices: np.ndarray, template: np.ndarray, vertices_subset: IndexLike | None = None) -> float:
    """RMS per coordinate of ``vertices - template`` over frames and vertices (the motion scale ``s``).

    ``sqrt(mean over t, v, xyz of (x_t(v) - template(v))^2)``: the square root of the MSE a model
    predicting the template would have on this clip. Units: the input's length units.

    ``vertices``: (T, V, 3) or (T, V*3); ``template``: the subject's neutral face, (V, 3) or (V*3,);
    ``vertices_subset``: 1-D vertex indices to restrict to (default: all vertices, as the MSE).
    """
    v = as_vertices(vertices, "vertices")
    tmpl = as_template(template, v.shape[1])
    if vertices_subset is not None:
        idx = as_indices(vertices_subset, v.shape[1], "vertices_subset")
        v, tmpl = v[:, idx], tmpl[idx]
    motion = v.astype(np.float64, copy=False) - tmpl[None]
    check_finite(motion, "vertices")
    return float(np.sqrt(np.mean(np.square(motion))))


def pooled_motion_rms(per_clip_rms: Iterable[float] | np.ndarray) -> float:
    """``sqrt(mean of squares)`` of per-clip :func:`motion_rms` values: the scale of the mean per-clip MSE."""
    values = as_1d_finite(np.asarray(list(per_clip_rms) if not isinstance(per_clip_rms, np.ndarray)
                                     else per_clip_rms, dtype=np.float64), "per_clip_rms")
    if (values < 0).any():
        raise InputError("per_clip_rms: RMS values cannot be negative")
    return float(np.sqrt(np.mean(np.square(values))))


def split_motion_rms(corpus: Any, split: str = "train", vertices_subset: IndexLike | None = None) -> float:
    """:func:`pooled_motion_rms` over the clips of one split of a :class:`p3d.corpus.Corpus`.

    Every clip's vertices (at the rate models train on) against its identity's template.
    """
    clips = corpus.select(split)
    if not clips:
        raise InputError(f"{corpus.root}: the {split!r} split has no clips")
    templates = corpus.templates
    values = []
    for clip in clips:
        if clip.identity not in templates:
            raise InputError(f"{corpus.root}: no template for identity {clip.identity!r} (clip {clip.stem})")
        values.append(motion_rms(corpus.vertices(clip), templates[clip.identity], vertices_subset))
    return pooled_motion_rms(values)


def _positive(x: object, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise InputError(f"{name}: expected a positive number, got {x!r}")
    value = float(x)
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{name}: expected a finite number > 0, got {value}")
    return value


def carried_loss_weight(corpus_motion_rms: float, *, vocaset_motion_rms: float,
                        paper_weight: float = PAPER_WEIGHT) -> float:
    """``paper_weight * (corpus_motion_rms / vocaset_motion_rms)^2`` (see the module doc for the derivation).

    ``corpus_motion_rms``: the target corpus' motion scale in its own units; ``vocaset_motion_rms``: the
    same statistic on VOCASET's training split in metres (required, so every caller names its reference:
    :data:`VOCASET_MOTION_RMS`, the sourced estimate, or a measurement); ``paper_weight``: the weight in
    the paper's setting (1e-7).
    """
    s_corpus = _positive(corpus_motion_rms, "corpus_motion_rms")
    s_voca = _positive(vocaset_motion_rms, "vocaset_motion_rms")
    weight = _positive(paper_weight, "paper_weight")
    return weight * (s_corpus / s_voca) ** 2


def fixed_weight_note(vocaset_motion_rms: float | None) -> str:
    """One line saying where the fixed loss weight (``ExperimentSpec.fixed_weight``) comes from.

    ``vocaset_motion_rms``: the spec's VOCASET motion scale in metres. :data:`VOCASET_MOTION_RMS` (the ``full``
    spec's): the paper's weight carried to the corpus' units from the scale sourced from FaceFormer's training
    log (module doc, "The VOCASET reference scale"); another value: carried from that value (a measurement);
    None (the opt-out): the paper's weight unconverted.
    """
    rule = (f"W = {PAPER_WEIGHT:g} (s_corpus / s_vocaset)^2 (p3d.losses.weight.carried_loss_weight; s: RMS per "
            f"coordinate of vertices - template, train split)")
    if vocaset_motion_rms is None:
        return (f"vocaset_motion_rms = None (the opt-out): the paper's {PAPER_WEIGHT:g} as it is, not carried to the "
                f"corpus' units. Otherwise {rule}, with s_vocaset = {VOCASET_MOTION_RMS:.3g} m "
                f"(p3d.losses.weight.VOCASET_MOTION_RMS: the square root of FaceFormer's start-of-training MSE on "
                f"VOCASET, {paper.FACEFORMER_VOCASET_TRAIN_MSE_START:g} m^2, "
                f"{paper.FACEFORMER_VOCASET_TRAIN_MSE_SOURCE}).")
    s = _positive(vocaset_motion_rms, "vocaset_motion_rms")
    if math.isclose(s, VOCASET_MOTION_RMS, rel_tol=1e-12):
        return (f"{rule}, s_vocaset = {s:.3g} m: p3d.losses.weight.VOCASET_MOTION_RMS, the square root of "
                f"FaceFormer's start-of-training MSE on VOCASET ({paper.FACEFORMER_VOCASET_TRAIN_MSE_START:g} m^2, "
                f"quoted from its training log in {paper.FACEFORMER_VOCASET_TRAIN_MSE_SOURCE}).")
    return f"{rule}, s_vocaset = {s:.3g} m as given (vocaset_motion_rms of the spec, e.g. a measurement on VOCASET)."
