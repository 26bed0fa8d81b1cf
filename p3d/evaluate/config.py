"""What ``p3d eval`` is asked to do and the rules it applies: :class:`EvalConfig`, the metrics it can
compute from the inputs given (:func:`resolve_metrics`, :func:`plan_metrics`), the frame-rate defaults and
the length rule that tells a truncation from a wrong frame rate (:func:`length_mismatch`)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError

ALL_METRICS: tuple[str, ...] = ("lve", "fdd", "mtm", "slcc", "plrs", "plrs_calibrated")

#: Metrics averaged over all frames of all predictions (each prediction weighted by its scored frames,
#: ``per_clip.csv``'s ``frames``), as the official LVE (CodeTalker's ``cal_metric.py``, the release's ``test.py``)
#: pools every clip's frames; the others are means over predictions, as their official scripts take them.
FRAME_WEIGHTED_METRICS: tuple[str, ...] = ("lve",)
GT_METRICS: tuple[str, ...] = ("lve", "fdd", "mtm", "slcc")
"""Metrics that compare with the ground truth (SLCC too: its reference is the data's own SLCC). PLRS needs
only the predictions and their audio, as the official ``evaluate_PLRS.py``, and so does PLRS-c."""
PLRS_METRICS: tuple[str, ...] = ("plrs", "plrs_calibrated")
"""Metrics scored by the speech-mesh evaluator (``--plrs-checkpoint``) from each clip's speech windows: the
official PLRS (Eq. (a)) and PLRS-c, its hubness-corrected companion (:func:`p3d.metrics.plrs_calibrated`;
beyond the paper)."""
MIN_BACKGROUND_CLIPS = 2
"""PLRS-c's background for a clip is the speech of every *other* evaluated GT clip; with fewer than this
many other clips it is not computed (a mean over one other clip's speech is one arbitrary sentence, not a
chance level)."""

DEFAULT_FPS = 30.0
"""Prediction frame rate when ``--fps`` is not given (the VOCASET models' 30 fps)."""
BIWI_FPS = 25.0
"""BIWI's frame rate (its ``vertices_npy`` and the BIWI models' predictions): the default of ``--dataset biwi``."""
VOCASET_GT_FPS = 60.0
"""Frame rate of processed VOCASET's ``vertices_npy`` (the official scripts subsample it ``[::2]``)."""
DIAGNOSTIC_COLUMNS: tuple[str, ...] = ("lip_jerk", "lip_jerk_gt", "lip_hf_energy", "lip_hf_energy_gt",
                                       "upper_face_motion", "upper_face_motion_gt", "lip_amplitude_ratio",
                                       "lip_amplitude", "lip_amplitude_gt")
"""Per-prediction diagnostics in ``per_clip.csv`` (:mod:`p3d.metrics.diagnostics`; not paper metrics)."""
LENGTH_TOLERANCE_FRAMES = 2
LENGTH_TOLERANCE_FRACTION = 0.10
"""Lengths (after the GT subsampling) may differ by up to ``max(2 frames, 10 % of the longer)`` and are
then truncated to the shorter; beyond that the pair is refused (a wrong frame rate or a wrong file)."""
FACTOR_TOLERANCE = 0.05
"""Lengths whose ratio is within 5 % of an integer k >= 2 (or 1/k) are refused at any length: the
signature of a wrong ``--gt-fps`` / ``--fps`` (e.g. 60 fps GT read as 30 fps gives a ratio of 2)."""
SILENT_RMS = 1e-4
"""A wav whose RMS (samples in [-1, 1]) is below this (-80 dBFS) is silent: SLCC/PLRS are undefined
for it, so its predictions are left out of the audio metrics (SLCC, PLRS, PLRS-c, PLRS-e) with a reason; the
GT metrics (LVE, FDD, MTM) and the diagnostics still score them."""


@dataclasses.dataclass
class EvalConfig:
    """Everything ``p3d eval`` needs. Paths are folders unless said otherwise.

    ``fps`` / ``gt_fps`` None mean "not given": predictions then default to 30 fps and GT to 60 fps for
    VOCASET (``--dataset vocaset``, or a ``vertices_npy/`` root with VOCASET names), else to ``fps``.
    Only when both are given does a length mismatch beyond the tolerance get truncated instead of refused.
    """

    pred: Path
    gt: Path | None = None  # None: PLRS only (it needs the predictions and their audio)
    audio: Path | None = None
    templates: Path | None = None
    dataset: str = "auto"
    fps: float | None = None
    gt_fps: float | None = None
    metrics: tuple[str, ...] | None = None  # None: every default metric whose inputs are given
    topology: str = "flame"
    out: Path | None = None
    plots: bool = False  # also keep every clip's MTMResult for write_report's plots
    lve_variant: str = "max_sq"
    lip_aggregate: str = "rms"
    plrs_checkpoint: Path | None = None
    bootstrap_resamples: int = 2000
    seed: int = 0
    diagnostics: bool = True  # per-prediction motion diagnostics in per_clip.csv (DIAGNOSTIC_COLUMNS)
    intensity_weight: float | None = None  # PLRS-e's mu (p3d.metrics.plrs_enrolled); None: PLRS-e not computed
    # PLRS' speech embeddings of each GT clip, kept across evaluations in this folder (keyed by the evaluator
    # checkpoint's, the wav's bytes and the frame rate): every run evaluated on the same audio encodes it once
    speech_cache: Path | None = None

    def gt_stride(self, gt_fps: float | None = None) -> int:
        """Frames of GT per prediction frame (``gt_fps / fps``), which must be a positive integer."""
        from p3d.io import check_frame_rate

        fps = check_frame_rate(self.pred_fps(), "--fps")
        gt_fps = check_frame_rate(gt_fps if gt_fps is not None else (fps if self.gt_fps is None else self.gt_fps),
                                  "--gt-fps")
        ratio = gt_fps / fps
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise InputError(f"--gt-fps {gt_fps:g} is not an integer multiple of --fps {fps:g}")
        return int(round(ratio))

    def pred_fps(self) -> float:
        """The frame rate predictions are evaluated at: ``--fps``, else 25 for ``--dataset biwi``, else 30."""
        if self.fps is not None:
            return float(self.fps)
        return BIWI_FPS if self.dataset == "biwi" else DEFAULT_FPS


@dataclasses.dataclass(frozen=True)
class FrameRates:
    """The frame rates one evaluation uses, and where the GT rate came from."""

    fps: float
    gt_fps: float
    stride: int
    gt_fps_source: str  # "--gt-fps", "VOCASET (60 fps)", "--fps" or "no --gt"
    explicit: bool  # both --fps and --gt-fps given (no --gt: --fps given): mismatches truncated, not refused
    pred_stride: int = 1  # prediction files subsampled [::pred_stride] (2: VOCASET GT scored as predictions)
    pred_fps_source: str = "--fps"


@dataclasses.dataclass
class EvalReport:
    per_clip: Any  # pandas.DataFrame, one row per evaluated prediction
    summary: dict[str, Any]
    mtm_results: dict[str, Any]  # prediction stem -> p3d.metrics.MTMResult (kept when cfg.plots)


def resolve_metrics(cfg: EvalConfig) -> tuple[str, ...]:
    """The metrics to compute: explicit ones are checked for their inputs; the default picks those possible.

    With ``--plrs-checkpoint`` and ``--audio`` the default has both PLRS and PLRS-c (``plrs_calibrated``; it
    reuses PLRS' speech windows and mesh embeddings, adding one speech-encoder pass over every 5th window of
    each GT clip). Without ``--gt`` only these two can be computed."""
    if cfg.gt is None:
        if cfg.metrics is None:
            if cfg.plrs_checkpoint is None or cfg.audio is None:
                raise InputError("without --gt only PLRS and PLRS-c can be computed: pass --plrs-checkpoint CKPT and "
                                 "--audio DIR, or pass --gt DIR for LVE, FDD, MTM and SLCC")
            return PLRS_METRICS
        need_gt = [m for m in dict.fromkeys(cfg.metrics) if m in GT_METRICS]
        if need_gt:
            raise InputError(f"--metrics {','.join(need_gt)}: compared with the ground truth, so pass --gt DIR "
                             "(without --gt only plrs and plrs_calibrated can be computed)")
    if cfg.metrics is None:
        chosen = ["lve", "mtm"]
        if cfg.templates is not None:
            chosen.insert(1, "fdd")
        if cfg.audio is not None:
            chosen.append("slcc")
        if cfg.plrs_checkpoint is not None and cfg.audio is not None:
            chosen.extend(PLRS_METRICS)
        return tuple(chosen)
    unknown = [m for m in cfg.metrics if m not in ALL_METRICS]
    if unknown:
        raise InputError(f"unknown metric(s) {unknown}; choose from {', '.join(ALL_METRICS)}")
    if "fdd" in cfg.metrics and cfg.templates is None:
        raise InputError("FDD needs the neutral templates: pass --templates templates.pkl")
    if "slcc" in cfg.metrics and cfg.audio is None:
        raise InputError("SLCC needs the speech audio: pass --audio DIR (wav files named like the GT clips)")
    for key, label in (("plrs", "PLRS"), ("plrs_calibrated", "PLRS-c (plrs_calibrated)")):
        if key in cfg.metrics and (cfg.plrs_checkpoint is None or cfg.audio is None):
            raise InputError(f"{label} needs --plrs-checkpoint CKPT and --audio DIR")
    return tuple(dict.fromkeys(cfg.metrics))


def plots_and_topology(cfg: EvalConfig) -> tuple[bool, Any]:
    """Whether ``--plots`` has plots to write, and the topology read for that (None where none was needed, or it
    was refused), so that the evaluation reads it once. The plots are MTM's matching plots (Fig. S4), so MTM must be
    among the metrics computed (:func:`plan_metrics`: by default not on a topology without MTM lip vertices, e.g.
    BIWI's, which is read here for that, a few index lists). A selection or topology that is refused counts as
    writing them (it is refused for its own reason once the output folder is checked)."""
    if not cfg.plots:
        return False, None
    try:
        if "mtm" not in resolve_metrics(cfg):
            return False, None
        if cfg.metrics is not None:  # asked for: computed, or refused by plan_metrics
            return True, None
        from p3d.topology import load_topology

        topology = load_topology(cfg.topology)
    except InputError:
        return True, None
    try:
        return "mtm" in plan_metrics(cfg, topology)[0], topology
    except InputError:
        return True, topology


def check_enrolled(cfg: EvalConfig, wanted: tuple[str, ...]) -> None:
    """Refuse ``--intensity-weight`` (PLRS-e, :func:`p3d.metrics.plrs_enrolled`) without its inputs: PLRS-c among
    the metrics, the GT (each speaker's enrolled lip amplitude comes from its other GT clips), the templates (the
    lip amplitude is the distance from the neutral face) and the diagnostics (which measure it); and a weight
    that is not a number in [0, :data:`p3d.metrics.plrs.MAX_INTENSITY_WEIGHT`]."""
    if cfg.intensity_weight is None:
        return
    from p3d.metrics.plrs import MAX_INTENSITY_WEIGHT

    mu = cfg.intensity_weight
    # float("x") was a ValueError traceback, True a weight of 1, 1e308 an overflow to a null PLRS-e after the work
    if isinstance(mu, (bool, np.bool_)) or not isinstance(mu, (int, float, np.integer, np.floating)) \
            or not np.isfinite(mu) or not 0 <= mu <= MAX_INTENSITY_WEIGHT:
        raise InputError(f"--intensity-weight: expected a number in [0, {MAX_INTENSITY_WEIGHT:g}], "
                         f"got {cfg.intensity_weight!r}")
    needs = [need for ok, need in (("plrs_calibrated" in wanted, "PLRS-c (--plrs-checkpoint CKPT and --audio DIR, "
                                    "plrs_calibrated among --metrics)"), (cfg.gt is not None, "--gt DIR"),
                                   (cfg.templates is not None, "--templates templates.pkl"),
                                   (cfg.diagnostics, "the diagnostics (drop --no-diagnostics)")) if not ok]
    if needs:
        raise InputError("--intensity-weight (PLRS-e) needs " + "; ".join(needs))


def plan_metrics(cfg: EvalConfig, topology: Any) -> tuple[tuple[str, ...], dict[str, str]]:
    """(metrics to compute, {metric: reason} for default metrics that cannot be computed).

    PLRS and PLRS-c need ``--audio``: with ``--plrs-checkpoint`` but no ``--audio`` they are "not computed" with
    the reason. FDD needs the topology's ``upper_face`` region (FLAME: from ``FLAME_masks.pkl``). When FDD was
    only picked by default (``--templates`` given, no ``--metrics``), a topology without it makes FDD
    "not computed" with the reason; an explicit ``--metrics fdd`` is an InputError.
    """
    wanted = resolve_metrics(cfg)
    not_computed: dict[str, str] = {}
    if cfg.metrics is None and cfg.plrs_checkpoint is not None and cfg.audio is None:
        # the evaluator was given for them: said, not left out of the summary without a word
        for key in PLRS_METRICS:
            not_computed[key] = "needs the speech audio: pass --audio DIR (wav files named like the GT clips)"
    if "fdd" in wanted and "upper_face" not in topology.regions:
        reason = (f"topology {topology.name!r} has no upper-face region (FDD's vertices); "
                  "pass --topology FLAME_masks.pkl (or a topology file that defines upper_face)")
        if cfg.metrics is not None:
            raise InputError(f"FDD cannot be computed: {reason}, or leave fdd out of --metrics")
        wanted = tuple(m for m in wanted if m != "fdd")
        not_computed["fdd"] = reason
    if "mtm" in wanted and (topology.mtm_upper is None or topology.mtm_lower is None):
        reason = (f"topology {topology.name!r} defines no MTM lip vertices (mtm_upper/mtm_lower; BIWI's region "
                  "files have none)")
        if cfg.metrics is not None:
            raise InputError(f"MTM cannot be computed: {reason}; pass a topology that defines them, "
                             "or leave mtm out of --metrics")
        wanted = tuple(m for m in wanted if m != "mtm")
        not_computed["mtm"] = reason
    check_enrolled(cfg, wanted)
    return wanted, not_computed


def plan_background(cfg: EvalConfig, wanted: tuple[str, ...], n_clips: int) -> tuple[str, ...]:
    """``wanted`` without PLRS-c when ``n_clips`` evaluated GT clips (with usable audio) leave a clip fewer
    than :data:`MIN_BACKGROUND_CLIPS` other clips as its background; raises InputError if PLRS-c was asked for
    explicitly (``--metrics``). Returns ``wanted`` unchanged otherwise. The reason is :func:`background_reason`."""
    if "plrs_calibrated" not in wanted or n_clips - 1 >= MIN_BACKGROUND_CLIPS:
        return wanted
    if cfg.metrics is not None:
        raise InputError(f"--metrics plrs_calibrated: PLRS-c cannot be computed: {background_reason(n_clips)}; "
                         "evaluate more clips together, or leave plrs_calibrated out of --metrics")
    return tuple(m for m in wanted if m != "plrs_calibrated")


def background_reason(n_clips: int) -> str:
    """Why PLRS-c is not computed for ``n_clips`` evaluated GT clips (see :func:`plan_background`)."""
    return (f"its background is the speech of the other evaluated GT clips, and {n_clips} GT clip(s) with audio "
            f"leave {max(n_clips - 1, 0)} (it needs at least {MIN_BACKGROUND_CLIPS})")


def length_mismatch(a: int, b: int) -> str | None:
    """Why lengths ``a`` and ``b`` (frames at one rate) are not one clip, or None if they may be truncated.

    "about k times" when the ratio is within :data:`FACTOR_TOLERANCE` of an integer k >= 2 either way
    (a wrong frame rate), "differ by n frames" beyond ``max(2 frames, 10 % of the longer)``.
    """
    lo, hi = sorted((int(a), int(b)))
    if lo <= 0:
        return f"differ ({a} vs {b} frames)"
    ratio = hi / lo
    k = round(ratio)
    if k >= 2 and abs(ratio / k - 1.0) <= FACTOR_TOLERANCE:
        return f"differ by a factor of about {k} ({ratio:.2f})"
    if hi - lo > max(LENGTH_TOLERANCE_FRAMES, LENGTH_TOLERANCE_FRACTION * hi):
        return f"differ by {hi - lo} frames (more than max({LENGTH_TOLERANCE_FRAMES} frames, "\
               f"{LENGTH_TOLERANCE_FRACTION:.0%}))"
    return None


def strided_length(n: int, stride: int) -> int:
    """``len(a[::stride])`` for ``len(a) == n``."""
    return -(-int(n) // int(stride))
