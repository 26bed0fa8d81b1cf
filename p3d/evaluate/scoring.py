"""``p3d eval``: evaluate a folder of predicted vertex sequences against ground truth.

The official protocol (paper Sec. 6, the released evaluation scripts): one ground-truth clip may be
compared with many predictions, one per conditioning training identity, named
``<gt_stem>_condition_<train_identity>.npy`` (SelfTalk's suffix-less ``<gt_stem>.npy`` too). Ground
truth recorded at ``gt_fps`` is subsampled to the predictions' ``fps`` (VOCASET: 60 -> 30 fps, the
official ``[::2]``). A processed-VOCASET GT root (``vertices_npy/`` with VOCASET clip names) or
``--dataset vocaset`` means 60 fps GT unless ``--gt-fps`` says otherwise; predictions default to 30 fps.

Frame counts are checked for every pair before any metric is computed (a first pass that reads only
the ``.npy`` and ``.wav`` headers). After the GT subsampling, a prediction whose length differs from
its GT's by about an integer factor (2, 3, ... or 1/2, 1/3, ...: a wrong frame rate) or by more than
``max(2 frames, 10 %)`` is refused (exit 2, naming both counts, the file and ``--gt-fps``), unless both
``--fps`` and ``--gt-fps`` were given explicitly; smaller differences are truncated to the shorter
sequence for LVE and FDD, as the official code does, and counted (MTM's DDTW, the lip intensity and
PLRS take each sequence whole). The same rule compares each clip's audio duration
with its GT duration when SLCC or PLRS is computed; a silent wav (RMS below ``SILENT_RMS``) is
reported as skipped, not scored.

Without ``--gt`` only PLRS is computed, from the predictions and their audio, as the official
``evaluate_PLRS.py``: each prediction is paired with ``<gt_stem>.wav``; a prediction folder that is (or
holds) a processed-VOCASET ``vertices_npy/`` with VOCASET names is ground truth read at 60 fps and
subsampled ``[::2]`` (unless ``--fps`` gives its rate); the length rule then compares each prediction
with its audio's duration. PLRS reads channel 0 of the wav (:func:`p3d.audio.load_speech_audio`'s
choice, the official one); SLCC's speech intensity the channel mean. ``--dataset biwi`` reads BIWI
names (``F2_e37[_condition_M3]``) and defaults both rates to 25 fps.

Per prediction the command computes LVE, FDD, MTM and the lip intensity, and the motion diagnostics
of :data:`DIAGNOSTIC_COLUMNS` (prediction and GT; ``--no-diagnostics`` leaves them out); across predictions SLCC
(with the data's own SLCC from the ground truth and the Δ between them). It writes
``OUT/per_clip.csv`` and ``OUT/summary.json`` (each metric with a 95% bootstrap CI that resamples GT
clips, since the predictions of one clip under several conditions are not independent; ``n_clips``
and ``n_predictions``; counts of predictions evaluated, truncated and skipped with reasons; the
configuration and provenance) and with ``--plots`` the MTM matching plot of every clip (paper
Fig. S4) under ``OUT/plots/``. The predictions are processed one GT clip at a time, so memory does not
grow with the number of clips. The outputs of one run are written together (see :func:`write_report`).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError

log = logging.getLogger(__name__)

ALL_METRICS: tuple[str, ...] = ("lve", "fdd", "mtm", "slcc", "plrs")
DEFAULT_METRICS: tuple[str, ...] = ("lve", "fdd", "mtm", "slcc")

GT_METRICS: tuple[str, ...] = ("lve", "fdd", "mtm", "slcc")
"""Metrics that compare with the ground truth (SLCC too: its reference is the data's own SLCC). PLRS needs
only the predictions and their audio, as the official ``evaluate_PLRS.py``."""

DEFAULT_FPS = 30.0
"""Prediction frame rate when ``--fps`` is not given (the VOCASET models' 30 fps)."""
BIWI_FPS = 25.0
"""BIWI's frame rate (its ``vertices_npy`` and the BIWI models' predictions): the default of ``--dataset biwi``."""
VOCASET_GT_FPS = 60.0
"""Frame rate of processed VOCASET's ``vertices_npy`` (the official scripts subsample it ``[::2]``)."""
DIAGNOSTIC_COLUMNS: tuple[str, ...] = ("lip_jerk", "lip_jerk_gt", "lip_hf_energy", "lip_hf_energy_gt",
                                       "upper_face_motion", "upper_face_motion_gt", "lip_amplitude_ratio")
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
for it, so its predictions are skipped with a reason instead of scored."""


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


@dataclasses.dataclass
class _Pair:
    """One prediction and its GT, with the frame counts read from the file headers."""

    pred_path: Path
    name: Any  # p3d.io.ClipName
    gt_path: Path | None  # None without --gt
    pred_frames: int = 0  # after the prediction subsampling (rates.pred_stride)
    gt_frames_full: int = 0  # at gt_fps, before subsampling


def resolve_metrics(cfg: EvalConfig) -> tuple[str, ...]:
    """The metrics to compute: explicit ones are checked for their inputs; the default picks those possible.

    Without ``--gt`` only PLRS can be computed (it needs ``--plrs-checkpoint`` and ``--audio``)."""
    if cfg.gt is None:
        if cfg.metrics is None:
            if cfg.plrs_checkpoint is None or cfg.audio is None:
                raise InputError("without --gt only PLRS can be computed: pass --plrs-checkpoint CKPT and --audio DIR, "
                                 "or pass --gt DIR for LVE, FDD, MTM and SLCC")
            return ("plrs",)
        need_gt = [m for m in dict.fromkeys(cfg.metrics) if m in GT_METRICS]
        if need_gt:
            raise InputError(f"--metrics {','.join(need_gt)}: compared with the ground truth, so pass --gt DIR "
                             "(without --gt only plrs can be computed)")
    if cfg.metrics is None:
        chosen = ["lve", "mtm"]
        if cfg.templates is not None:
            chosen.insert(1, "fdd")
        if cfg.audio is not None:
            chosen.append("slcc")
        if cfg.plrs_checkpoint is not None and cfg.audio is not None:
            chosen.append("plrs")
        return tuple(chosen)
    unknown = [m for m in cfg.metrics if m not in ALL_METRICS]
    if unknown:
        raise InputError(f"unknown metric(s) {unknown}; choose from {', '.join(ALL_METRICS)}")
    if "fdd" in cfg.metrics and cfg.templates is None:
        raise InputError("FDD needs the neutral templates: pass --templates templates.pkl")
    if "slcc" in cfg.metrics and cfg.audio is None:
        raise InputError("SLCC needs the speech audio: pass --audio DIR (wav files named like the GT clips)")
    if "plrs" in cfg.metrics and (cfg.plrs_checkpoint is None or cfg.audio is None):
        raise InputError("PLRS needs --plrs-checkpoint CKPT and --audio DIR")
    return tuple(dict.fromkeys(cfg.metrics))


def plan_metrics(cfg: EvalConfig, topology: Any) -> tuple[tuple[str, ...], dict[str, str]]:
    """(metrics to compute, {metric: reason} for default metrics that cannot be computed).

    FDD needs the topology's ``upper_face`` region (FLAME: from ``FLAME_masks.pkl``). When FDD was
    only picked by default (``--templates`` given, no ``--metrics``), a topology without it makes FDD
    "not computed" with the reason; an explicit ``--metrics fdd`` is an InputError.
    """
    wanted = resolve_metrics(cfg)
    not_computed: dict[str, str] = {}
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
    return wanted, not_computed


def is_vocaset_gt_folder(folder: Path, pairs: Sequence[_Pair], dataset: str) -> bool:
    """Whether a prediction folder is processed-VOCASET ground truth (60 fps): its path (or the
    ``vertices_npy/`` it holds) names ``vertices_npy``, as the official ``evaluate_PLRS.py`` tests, and
    its files have VOCASET names (or ``--dataset vocaset``)."""
    from p3d import io

    where = Path(os.path.abspath(io.vertices_dir(folder)))
    named = any("vertices_npy" in part for part in where.parts)
    return named and dataset != "biwi" and (
        dataset == "vocaset" or (bool(pairs) and all(p.name.sentence for p in pairs)))


def resolve_rates(cfg: EvalConfig, pairs: Sequence[_Pair], gt_root: Path | None) -> FrameRates:
    """The prediction and GT frame rates (see :class:`EvalConfig`) and the subsampling strides.

    Predictions read from a processed-VOCASET ``vertices_npy`` folder (ground truth scored as
    predictions) are taken as 60 fps and subsampled ``[::2]`` to 30 fps, as the official
    ``evaluate_PLRS.py`` does, unless ``--fps`` gives their rate (then they are read at it, unsubsampled).
    """
    fps = cfg.pred_fps()
    pred_stride, pred_source = 1, "--fps" if cfg.fps is not None else f"default ({fps:g} fps)"
    if cfg.fps is None and is_vocaset_gt_folder(cfg.pred, pairs, cfg.dataset):
        pred_stride = int(round(VOCASET_GT_FPS / fps))
        pred_source = f"VOCASET vertices_npy ({VOCASET_GT_FPS:g} fps, [::{pred_stride}])"
    if gt_root is None:
        return FrameRates(fps=fps, gt_fps=fps, stride=1, gt_fps_source="no --gt", explicit=cfg.fps is not None,
                          pred_stride=pred_stride, pred_fps_source=pred_source)
    if cfg.gt_fps is not None:
        gt_fps, source = float(cfg.gt_fps), "--gt-fps"
    elif cfg.dataset == "vocaset" or (
            (Path(gt_root) / "vertices_npy").is_dir() and pairs and all(p.name.sentence for p in pairs)):
        gt_fps, source = VOCASET_GT_FPS, "VOCASET (60 fps)"
    else:
        gt_fps, source = fps, "--fps"
    stride = cfg.gt_stride(gt_fps)
    return FrameRates(fps=fps, gt_fps=gt_fps, stride=stride, gt_fps_source=source,
                      explicit=cfg.fps is not None and cfg.gt_fps is not None,
                      pred_stride=pred_stride, pred_fps_source=pred_source)


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


def check_out_dir(out: Path) -> None:
    """Refuse an output folder that cannot be written, before any work: ``out`` must be a folder (or
    not exist yet) and it, or its nearest existing ancestor (created later), must be writable."""
    out = Path(os.path.abspath(out))  # "--out ." has a name and a parent
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder; give a folder path")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"--out {out}: {probe} is a file, so the output folder cannot be created")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: {probe} is not writable; choose another output folder")
    if probe == out and not os.access(out.parent if out.parent != out else out, os.W_OK | os.X_OK):
        # the outputs are staged in a hidden sibling folder and moved in (write_report)
        raise InputError(f"--out {out}: its parent {out.parent} is not writable (needed for the staging folder)")


def _npy_frames(path: Path, n_vertices: int) -> int:
    """Frames of a vertex ``.npy``, from its header only (memory-mapped, no data read). A file that is
    not a plain (T, V*3) / (T, V, 3) numeric array with ``n_vertices`` is loaded by
    :func:`p3d.io.load_vertices`, which raises the error that names the file and the problem."""
    from p3d import io

    shape: tuple[int, ...] | None = None
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if isinstance(arr, np.ndarray) and arr.dtype.kind in "fiu":
            shape = tuple(arr.shape)
        del arr
    except Exception:  # corrupt, pickled, empty, ...: io.load_vertices words the error
        shape = None
    ok = shape is not None and shape[0] > 0 and (
        (len(shape) == 2 and shape[1] == 3 * n_vertices) or (len(shape) == 3 and shape[1:] == (n_vertices, 3)))
    if not ok:
        return len(io.load_vertices(path, n_vertices=n_vertices))
    assert shape is not None
    return int(shape[0])


def _wav_seconds(path: Path) -> float:
    """Duration of an audio file from its header (soundfile.info); unreadable files raise via io.load_audio."""
    import soundfile as sf

    from p3d import io

    try:
        info = sf.info(str(path))
        if info.samplerate > 0 and info.frames > 0:
            return info.frames / info.samplerate
    except Exception:
        pass
    samples, rate = io.load_audio(path)
    return len(samples) / rate


def _find_wav(audio_dir: Path | None, gt_stem: str) -> Path:
    assert audio_dir is not None
    wav = audio_dir / f"{gt_stem}.wav"
    if not wav.exists():
        raise InputError(f"{wav}: audio for clip {gt_stem!r} not found (SLCC/PLRS need one wav per GT clip)")
    return wav


def _rate_fix(rates: FrameRates) -> str:
    if rates.gt_fps_source == "no --gt":
        return (f"check the frame rate: the predictions are read at {rates.fps * rates.pred_stride:g} fps "
                f"({rates.pred_fps_source}) and evaluated at {rates.fps:g} fps; pass their true rate with --fps "
                "(processed VOCASET ground truth in a vertices_npy folder: 60 fps, subsampled [::2] like the "
                "official script), or pass --fps explicitly to evaluate the shorter length anyway")
    return (f"check the frame rates: the GT is read at {rates.gt_fps:g} fps ({rates.gt_fps_source}) and subsampled "
            f"{rates.stride}x to the predictions' {rates.fps:g} fps; pass the GT's true rate with --gt-fps "
            "(processed VOCASET vertices_npy: 60) and the predictions' with --fps, or pass both --fps and "
            "--gt-fps explicitly to evaluate the shorter length anyway")


def check_lengths(pairs: Sequence[_Pair], rates: FrameRates, audio_seconds: dict[str, float],
                  wavs: dict[str, Path] | None = None) -> dict[str, str]:
    """The first pass' verdict on every pair: InputError on the first mismatch that is not a truncation
    (see :func:`length_mismatch`) unless ``rates.explicit``; returns {pred file name: note} for the pairs
    whose mismatch was accepted only because both rates were given."""
    accepted: dict[str, str] = {}
    bad: list[str] = []
    if pairs and pairs[0].gt_path is None:  # no --gt: each prediction's duration against its audio's
        for p in pairs:
            seconds = audio_seconds.get(p.name.gt_stem)
            if seconds is None:
                continue
            audio_n = int(round(seconds * rates.fps))
            why = length_mismatch(audio_n, p.pred_frames)
            if why is None:
                continue
            wav = (wavs or {}).get(p.name.gt_stem, f"{p.name.gt_stem}.wav")
            sub = f" after [::{rates.pred_stride}]" if rates.pred_stride > 1 else ""
            msg = (f"{p.pred_path}: {p.pred_frames} frames{sub} at {rates.fps:g} fps, but its audio {wav} has "
                   f"{seconds:.3f} s = {audio_n} frames; the durations {why}")
            if rates.explicit:
                accepted[p.pred_path.name] = f"prediction/audio durations {why} (--fps given)"
            else:
                bad.append(msg)
        if bad:
            more = f" ({len(bad) - 1} more like it)" if len(bad) > 1 else ""
            raise InputError(f"{bad[0]}{more}: {_rate_fix(rates)}")
        return accepted
    for p in pairs:
        assert p.gt_path is not None
        gt_n = strided_length(p.gt_frames_full, rates.stride)
        why = length_mismatch(p.pred_frames, gt_n)
        if why is not None:
            sub = f" (after [::{rates.pred_stride}], {rates.pred_fps_source})" if rates.pred_stride > 1 else ""
            msg = (f"{p.pred_path}: {p.pred_frames} frames{sub} at {rates.fps:g} fps, but its ground truth {p.gt_path.name} "
                   f"has {p.gt_frames_full} frames at {rates.gt_fps:g} fps = {gt_n} after subsampling; "
                   f"the lengths {why}")
            if rates.explicit:
                accepted[p.pred_path.name] = f"prediction/GT lengths {why}; truncated (both rates given)"
            else:
                bad.append(msg)
    by_stem: dict[str, list[_Pair]] = {}
    for q in pairs:
        by_stem.setdefault(q.name.gt_stem, []).append(q)
    for stem, seconds in audio_seconds.items():
        p = by_stem[stem][0]
        assert p.gt_path is not None
        audio_n = int(round(seconds * rates.gt_fps))
        why = length_mismatch(audio_n, p.gt_frames_full)
        if why is not None:
            wav = (wavs or {}).get(stem, f"{stem}.wav")
            msg = (f"{wav}: {seconds:.3f} s of audio = {audio_n} frames at {rates.gt_fps:g} fps, but the ground truth "
                   f"{p.gt_path.name} has {p.gt_frames_full} frames; the durations {why}")
            if rates.explicit:
                for q in by_stem[stem]:
                    accepted.setdefault(q.pred_path.name, f"audio/GT durations {why} (both rates given)")
            else:
                bad.append(msg)
    if bad:
        more = f" ({len(bad) - 1} more pair(s) like it)" if len(bad) > 1 else ""
        raise InputError(f"{bad[0]}{more}: {_rate_fix(rates)}")
    return accepted


def _plan(cfg: EvalConfig, topology: Any, wanted: tuple[str, ...], audio_dir: Path | None
          ) -> tuple[dict[str, list[_Pair]], list[dict[str, str]], FrameRates, dict[str, str], dict[str, Path]]:
    """The cheap first pass: pair predictions with GT, read every header, resolve the rates, check lengths.

    Returns (pairs grouped by GT stem, skipped, rates, {pred: accepted-mismatch note}, {GT stem: wav}).
    """
    from p3d import io

    unreadable: list[dict[str, str]] = []
    # a processed-VOCASET root as --pred means its vertices_npy/ (GT scored as predictions)
    pred_files = io.find_npy(io.vertices_dir(cfg.pred), "prediction folder", skipped=unreadable)
    gt_dir = io.vertices_dir(cfg.gt) if cfg.gt is not None else None
    if gt_dir is not None and not gt_dir.is_dir():
        raise InputError(f"{cfg.gt}: ground-truth folder not found")
    skipped: list[dict[str, str]] = [{"pred": u["file"], "reason": u["reason"]} for u in unreadable]
    groups: dict[str, list[_Pair]] = {}
    for pred_path in pred_files:
        name = parse_name(pred_path.stem, cfg.dataset)
        gt_path = gt_dir / f"{name.gt_stem}.npy" if gt_dir is not None else None
        if gt_path is not None and not gt_path.exists():
            skipped.append({"pred": pred_path.name, "reason": f"ground truth {gt_path.name} not found in {gt_dir}"})
            continue
        groups.setdefault(name.gt_stem, []).append(_Pair(pred_path, name, gt_path))
    pairs = [p for group in groups.values() for p in group]
    rates = resolve_rates(cfg, pairs, Path(cfg.gt) if cfg.gt is not None else None)
    n_vertices = topology.n_vertices
    wavs: dict[str, Path] = {}
    audio_seconds: dict[str, float] = {}
    for stem, group in groups.items():
        gt_path = group[0].gt_path
        gt_frames = _npy_frames(gt_path, n_vertices) if gt_path is not None else 0
        for p in group:
            p.gt_frames_full = gt_frames
            p.pred_frames = strided_length(_npy_frames(p.pred_path, n_vertices), rates.pred_stride)
            if p.pred_frames < 2:
                raise InputError(f"{p.pred_path}: needs at least 2 frames")
            if gt_path is not None and strided_length(gt_frames, rates.stride) < 2:
                raise InputError(f"{gt_path}: needs at least 2 frames")
        if "slcc" in wanted or "plrs" in wanted:
            wavs[stem] = _find_wav(audio_dir, stem)
            audio_seconds[stem] = _wav_seconds(wavs[stem])
    accepted = check_lengths(pairs, rates, audio_seconds, wavs)
    return groups, skipped, rates, accepted, wavs


_BIWI = re.compile(r"^(?P<identity>[FM]\d+)_(?P<sentence>e\d+)(?:_condition_(?P<condition>.+))?$")


def parse_name(stem: str, dataset: str = "auto") -> Any:
    """:func:`p3d.io.parse_clip_name`, plus ``biwi``: ``<subject>_eNN[_condition_<train_subject>]``
    (e.g. ``F2_e37_condition_M3``: GT ``F2_e37``, identity ``F2``, condition ``M3``)."""
    from p3d import io

    if dataset != "biwi":
        return io.parse_clip_name(stem, dataset)
    m = _BIWI.match(Path(stem).name.removesuffix(".npy"))
    if not m:
        raise InputError(f"{stem}: not a BIWI-style name (<subject>_eNN[_condition_<subject>], e.g. "
                         "F2_e37_condition_M3); use --dataset generic for other names")
    return io.ClipName(m.group(0), f"{m['identity']}_{m['sentence']}", m["identity"], m["condition"])


def evaluate(cfg: EvalConfig, *, progress: bool = True) -> EvalReport:
    """Evaluate every prediction in ``cfg.pred`` (see the module docstring). Raises InputError on bad input.

    Work is done one GT clip at a time (its predictions together, then the GT and its audio are
    dropped), so peak memory is one GT clip and one prediction, whatever the number of clips.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from p3d import io, metrics
    from p3d.topology import load_topology

    if cfg.out is not None:
        check_out_dir(cfg.out)
    topology = load_topology(cfg.topology)
    wanted, not_computed = plan_metrics(cfg, topology)
    cfg.gt_stride()  # a bad explicit rate pair fails before any file is read
    audio_dir = io.audio_dir(cfg.audio) if cfg.audio is not None else None
    if audio_dir is not None and not audio_dir.is_dir():
        raise InputError(f"{cfg.audio}: audio folder not found")
    groups, skipped, rates, accepted, wavs = _plan(cfg, topology, wanted, audio_dir)
    lips = topology.lips
    upper_face = topology.upper_face if "fdd" in wanted else None
    mtm_upper, mtm_lower = topology.mtm_vertices() if "mtm" in wanted else (None, None)
    use_templates = "fdd" in wanted or (cfg.diagnostics and cfg.templates is not None and cfg.gt is not None)
    templates = io.load_templates(cfg.templates, topology.n_vertices) if use_templates else {}
    if "fdd" in wanted:
        for group in groups.values():
            for p in group:
                if p.name.identity not in templates:
                    raise InputError(f"{cfg.templates}: no template for identity {p.name.identity!r} "
                                     f"(needed by {p.pred_path.name})")
    plrs_model = _load_plrs_model(cfg.plrs_checkpoint) if "plrs" in wanted else None
    diag_upper = topology.regions.get("upper_face") if cfg.diagnostics else None

    rows: list[dict[str, Any]] = []
    gt_rows: list[dict[str, Any]] = []
    mtm_results: dict[str, Any] = {}
    n_pairs = sum(len(g) for g in groups.values())
    with tqdm(total=n_pairs, desc="p3d eval", unit="clip", disable=not progress) as bar:
        for stem, group in groups.items():
            gt_path = group[0].gt_path
            speech_int: float | None = None
            windows = None
            if stem in wavs:
                channels, rate = io.load_audio(wavs[stem], mono=False)
                # SLCC's speech intensity: the channel mean (p3d.io.load_audio); PLRS: channel 0, as the
                # official evaluate_PLRS.py (p3d.audio.load_speech_audio)
                used = {"slcc": channels.mean(axis=1)} if "slcc" in wanted else {}
                if "plrs" in wanted:
                    used["plrs"] = np.ascontiguousarray(channels[:, 0])
                del channels
                rms = min(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) for x in used.values())
                if rms < SILENT_RMS:
                    for p in group:
                        skipped.append({"pred": p.pred_path.name,
                                        "reason": f"audio {wavs[stem].name} is silent (RMS {rms:.2g} < {SILENT_RMS:g}): "
                                                  "SLCC/PLRS undefined, not scored"})
                    bar.update(len(group))
                    continue
                if "slcc" in wanted:
                    speech_int = metrics.speech_intensity(used["slcc"])
                if "plrs" in wanted:
                    windows = _speech_windows(used["plrs"], rate, rates.fps, wavs[stem])
                del used
            gt = None
            gt_diag: dict[str, float] = {}
            if gt_path is not None:
                # a contiguous copy of the subsampled GT: the full-rate array is freed at once
                gt = np.ascontiguousarray(io.load_vertices(gt_path, topology)[::rates.stride])
                if cfg.diagnostics:
                    gt_diag = {f"{k}_gt": v for k, v in motion_diagnostics(gt, lips, diag_upper, rates.fps).items()}
            if "slcc" in wanted:
                assert gt is not None and gt_path is not None
                gt_rows.append({"gt": gt_path.name, "identity": group[0].name.identity, "level": group[0].name.level,
                                "speech_intensity": speech_int,
                                "lip_intensity": metrics.lip_intensity(gt, lips, aggregate=cfg.lip_aggregate)})
            for p in group:
                pred = io.load_vertices(p.pred_path, topology)
                if rates.pred_stride > 1:
                    pred = np.ascontiguousarray(pred[::rates.pred_stride])
                name = p.name
                row: dict[str, Any] = {
                    "pred": p.pred_path.name,
                    "gt": gt_path.name if gt_path is not None else f"{stem}.npy",
                    "identity": name.identity,
                    "condition": name.condition,
                    "level": name.level,
                    "pred_frames": len(pred),
                    "gt_frames": len(gt) if gt is not None else None,
                    "frames": min(len(pred), len(gt)) if gt is not None else len(pred),
                    "truncated": gt is not None and len(pred) != len(gt),
                }
                if p.pred_path.name in accepted:
                    row["note"] = accepted[p.pred_path.name]
                if gt is not None:
                    # LVE and FDD compare frame by frame: truncated to the shorter, as the official code; MTM
                    # (DDTW), the lip intensity and PLRS take each sequence whole, as the official code
                    pred_t, gt_t = pred[:row["frames"]], gt[:row["frames"]]
                    if "lve" in wanted:
                        row["lve"] = metrics.lve(pred_t, gt_t, lips, variant=cfg.lve_variant)
                    if "fdd" in wanted:
                        row["fdd"] = metrics.fdd(pred_t, gt_t, templates[name.identity], upper_face)
                    del pred_t, gt_t
                if "mtm" in wanted:
                    res = metrics.mtm(gt, pred, upper=mtm_upper, lower=mtm_lower)
                    if cfg.plots:
                        mtm_results[p.pred_path.stem] = res
                    row["mtm_frames"] = res.mean_frames
                    row["mtm_ms"] = res.ms(rates.fps)
                    row["mtm_matches"] = len(res.deltas)
                    row["mtm_deltas"] = ";".join(str(int(d)) for d in res.deltas)
                if "slcc" in wanted:
                    row["speech_intensity"] = speech_int
                    row["lip_intensity"] = metrics.lip_intensity(pred, lips, aggregate=cfg.lip_aggregate)
                if "plrs" in wanted:
                    row["plrs"] = _plrs(windows, pred, plrs_model, p.pred_path)
                if cfg.diagnostics:
                    row.update(motion_diagnostics(pred, lips, diag_upper, rates.fps))
                    row.update(gt_diag)
                    if gt is not None and templates:
                        row["lip_amplitude_ratio"] = _lip_amplitude_ratio(pred, gt, lips, templates.get(name.identity))
                rows.append(row)
                del pred
                bar.update(1)
            del gt, windows
            if plrs_model is not None:
                plrs_model.forget()  # speech embeddings are shared only within one GT clip

    if not rows:
        reasons = "; ".join(f"{s['pred']}: {s['reason']}" for s in skipped[:5])
        raise InputError(f"nothing could be evaluated in {cfg.pred} ({len(skipped)} skipped: {reasons})")

    per_clip = pd.DataFrame(rows)
    if "note" not in per_clip:
        per_clip["note"] = None
    summary = _summarise(cfg, wanted, not_computed, per_clip, pd.DataFrame(gt_rows), skipped, rates)
    return EvalReport(per_clip=per_clip, summary=summary, mtm_results=mtm_results)


def motion_diagnostics(vertices: np.ndarray, lips: np.ndarray, upper_face: np.ndarray | None,
                       fps: float) -> dict[str, float]:
    """The per-sequence diagnostics of ``per_clip.csv`` (:mod:`p3d.metrics.diagnostics`), NaN where undefined.

    ``lip_jerk`` (m/s^3 for metres; needs >= 4 frames), ``lip_hf_energy`` (fraction of the lip motion's
    energy above 8 Hz; needs >= 8 frames and fps > 16) and, when the topology has an upper face,
    ``upper_face_motion`` (RMS temporal std of the upper-face vertices, length units). Computed on a
    prediction and on its GT at the same ``fps`` they explain a worse LVE, MTM or FDD (jitter, damping,
    a still upper face); none is a metric of the paper.
    """
    from p3d import metrics

    def safe(fn: Any, *args: Any) -> float:
        try:
            return float(fn(*args))
        except InputError:  # too few frames (or fps too low for the 8 Hz cutoff): undefined
            return float("nan")

    out = {"lip_jerk": safe(metrics.lip_jerk, vertices, lips, fps),
           "lip_hf_energy": safe(metrics.lip_high_frequency_energy, vertices, lips, fps)}
    if upper_face is not None:
        out["upper_face_motion"] = safe(metrics.upper_face_motion, vertices, upper_face)
    return out


def _lip_amplitude_ratio(pred: np.ndarray, gt: np.ndarray, lips: np.ndarray, template: np.ndarray | None) -> float:
    """:func:`p3d.metrics.lip_amplitude_ratio`, NaN without the identity's template (a diagnostic does not
    refuse a run; FDD does)."""
    from p3d import metrics

    if template is None:
        return float("nan")
    return float(metrics.lip_amplitude_ratio(pred, gt, lips, template))


def _speech_windows(samples: np.ndarray, rate: int, fps: float, wav: Path) -> np.ndarray:
    from p3d.audio import speech_windows

    try:
        return speech_windows(samples, rate, fps)
    except InputError as exc:
        raise InputError(f"{wav}: PLRS speech features failed ({exc})") from None
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"{wav}: PLRS speech features failed ({type(exc).__name__}: {exc})") from None


def _plrs(windows: Any, pred: np.ndarray, model: Any, pred_path: Path) -> float:
    """PLRS of one prediction (= metrics.plrs(samples, pred, model, fps, sr) with the clip's shared windows);
    errors of the features or the model name the prediction file."""
    from p3d import metrics

    try:
        return metrics.plrs_from_features(windows, pred, model)
    except InputError as exc:
        raise InputError(f"{pred_path}: PLRS failed ({exc})") from None
    except (ValueError, RuntimeError) as exc:  # torch shape / dtype errors of the evaluator
        raise InputError(f"{pred_path}: PLRS failed ({type(exc).__name__}: {exc})") from None


def _load_plrs_model(path: Path | None) -> Any:
    from p3d.models.speech_mesh import load_critic

    assert path is not None
    return _SpeechMemo(load_critic(path))


class _SpeechMemo:
    """The PLRS evaluator, remembering its speech embeddings by input: the predictions of one GT clip (one
    per condition) share its speech windows, and the speech encoder is most of PLRS' cost. :meth:`forget`
    drops them after each GT clip. Everything else is the evaluator's own (attribute access is delegated)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._memo: dict[tuple[Any, ...], Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def forget(self) -> None:
        self._memo.clear()

    def encode_speech(self, x: Any) -> Any:
        import hashlib

        data = x.detach().cpu().numpy()
        key = (tuple(data.shape), str(data.dtype), hashlib.sha1(data.tobytes()).hexdigest())
        if key not in self._memo:
            self._memo[key] = self._model.encode_speech(x)
        return self._memo[key]


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def _clip_ci(values: np.ndarray, clusters: np.ndarray, cfg: EvalConfig) -> list[float | None]:
    """95 % percentile CI of the pooled mean, resampling GT clips (:func:`p3d.stats.cluster_bootstrap_ci`):
    the predictions of one GT clip under several conditions are one unit of replication."""
    from p3d.stats import cluster_bootstrap_ci

    lo, hi = cluster_bootstrap_ci(values, clusters, n_resamples=cfg.bootstrap_resamples, seed=cfg.seed)
    return [_num(lo), _num(hi)]


def _counts(vals: np.ndarray, clusters: np.ndarray) -> dict[str, int]:
    ok = np.isfinite(vals)
    return {"n_clips": int(len(set(clusters[ok]))), "n_predictions": int(ok.sum())}


def _summarise(cfg: EvalConfig, wanted: tuple[str, ...], not_computed: dict[str, str], df: Any, gt_df: Any,
               skipped: list[dict[str, str]], rates: FrameRates) -> dict[str, Any]:
    from p3d import metrics
    from p3d.provenance import record

    clusters = df["gt"].to_numpy()
    out: dict[str, Any] = {}
    for key in ("lve", "fdd", "plrs"):
        if key in wanted:
            vals = df[key].to_numpy(dtype=np.float64)
            ok = np.isfinite(vals)
            out[key] = {"value": _num(vals[ok].mean()) if ok.any() else None,
                        "ci95": _clip_ci(vals, clusters, cfg), **_counts(vals, clusters)}
    if "fdd" in wanted:
        out["fdd"]["absolute"] = _num(np.abs(df["fdd"].to_numpy(dtype=np.float64)).mean())
    for key, reason in not_computed.items():
        out[key] = {"computed": False, "value": None, "reason": reason}
    if "mtm" in wanted:
        frames = df["mtm_frames"].to_numpy(dtype=np.float64)
        matched = frames[np.isfinite(frames)]
        ci = _clip_ci(frames, clusters, cfg)
        ms_per_frame = 1000.0 / rates.fps
        ci_ms = [None if c is None else c * ms_per_frame for c in ci]
        out["mtm"] = {
            "frames": _num(matched.mean()) if len(matched) else None,
            "ms": _num(matched.mean() * ms_per_frame) if len(matched) else None,
            "ci95": ci_ms,
            "ci95_frames": ci,
            "ci95_ms": ci_ms,
            "fps": rates.fps,
            **_counts(frames, clusters),
            "n_clips_matched": int(len(matched)),  # predictions with matched extrema (kept name)
            "n_clips_without_match": int(len(frames) - len(matched)),
        }
    if "slcc" in wanted:
        out["slcc"] = _slcc_summary(cfg, df, gt_df, metrics)
    diagnostics: dict[str, Any] = {}
    for key in DIAGNOSTIC_COLUMNS:
        if key in df:
            vals = df[key].to_numpy(dtype=np.float64)
            ok = np.isfinite(vals)
            diagnostics[key] = {"mean": _num(vals[ok].mean()) if ok.any() else None,
                                "ci95": _clip_ci(vals, clusters, cfg), **_counts(vals, clusters)}
    counts = {
        "evaluated": int(len(df)),
        "n_predictions": int(len(df)),
        "n_clips": int(df["gt"].nunique()),
        "ground_truth_clips": int(df["gt"].nunique()),
        "truncated": int(df["truncated"].sum()),
        "length_mismatch_accepted": int(df["note"].notna().sum()),  # beyond tolerance, both rates given
        "skipped": len(skipped),
    }
    return {
        "metrics": out,
        **({"diagnostics": diagnostics} if diagnostics else {}),
        "counts": counts,
        "skipped": skipped,
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
            "fps": rates.fps,
            "gt_fps": rates.gt_fps,
            "gt_fps_source": rates.gt_fps_source,
            "pred_stride": rates.pred_stride,
            "pred_fps_source": rates.pred_fps_source,
            "rates_explicit": rates.explicit,
            "metrics": list(wanted),
            "gt_stride": rates.stride,
            "ci": "95% percentile bootstrap of the pooled mean, resampling GT clips (p3d.stats.cluster_bootstrap_ci); "
                  "SLCC: paired bootstrap of rows (p3d.metrics.slcc_bootstrap_ci)",
            "diagnostics": "per_clip.csv columns lip_jerk[_gt] (m/s^3 for metres), lip_hf_energy[_gt] (fraction of "
                           "lip motion energy above 8 Hz), upper_face_motion[_gt] (RMS temporal std), "
                           "lip_amplitude_ratio (prediction / GT lip distance from the template); NaN where too "
                           "short; p3d.metrics.diagnostics, not paper metrics",
            "length_tolerance": f"max({LENGTH_TOLERANCE_FRAMES} frames, {LENGTH_TOLERANCE_FRACTION:.0%}); "
                                f"integer ratios within {FACTOR_TOLERANCE:.0%} refused",
        },
        "provenance": record(),
    }


def _slcc_summary(cfg: EvalConfig, df: Any, gt_df: Any, metrics: Any) -> dict[str, Any]:
    reasons: list[str] = []

    def _safe(fn: Any, *args: Any) -> float | None:
        try:
            return _num(fn(*args))
        except InputError as exc:
            reasons.append(str(exc))
            return None

    speech, lip, ident = (df[c].to_numpy() for c in ("speech_intensity", "lip_intensity", "identity"))
    model_r = _safe(metrics.slcc, speech, lip, ident)
    data_r = _safe(metrics.slcc, *(gt_df[c].to_numpy() for c in ("speech_intensity", "lip_intensity", "identity")))
    res: dict[str, Any] = {
        "value": model_r,
        "data_value": data_r,
        "delta": None if model_r is None or data_r is None else metrics.slcc_delta(model_r, data_r),
        "n_rows": int(len(df)),
        "n_clips": int(len(gt_df)),
        "n_predictions": int(len(df)),
        "ci95": [None, None],
    }
    if model_r is not None:
        try:
            lo, hi = metrics.slcc_bootstrap_ci(speech, lip, ident, n_resamples=cfg.bootstrap_resamples, seed=cfg.seed)
            res["ci95"] = [_num(lo), _num(hi)]
        except InputError as exc:
            reasons.append(f"CI: {exc}")
        if res["ci95"][0] is None:
            reasons.append("CI undefined: too few clips per identity for the bootstrap")
    if df["level"].notna().any():
        levels = df["level"].to_numpy()
        by_model = _safe_dict(metrics.slcc_by_level, reasons, speech, lip, ident, levels)
        by_data = _safe_dict(metrics.slcc_by_level, reasons, *(gt_df[c].to_numpy() for c in
                                                               ("speech_intensity", "lip_intensity", "identity", "level")))
        res["by_level"] = {
            str(k): {"value": _num(v), "data_value": _num(by_data.get(k)),
                     "delta": None if _num(by_data.get(k)) is None or _num(v) is None  # NaN: too few rows
                     else metrics.slcc_delta(v, by_data[k])}
            for k, v in by_model.items()
        }
    if reasons:
        res["notes"] = reasons
        log.debug("SLCC: %s", "; ".join(reasons))
    return res


def _safe_dict(fn: Any, reasons: list[str], *args: Any) -> dict[Any, float | None]:
    try:
        return dict(fn(*args))
    except InputError as exc:
        reasons.append(f"level-wise: {exc}")
        return {}



def _stage_dir(out: Path) -> Path:
    """The hidden sibling folder a run's outputs are written to before they are moved into ``out``."""
    return out.parent / f".{out.name}.tmp-{os.getpid()}"


def _remove_dead_stages(out: Path) -> None:
    """Delete staging folders of earlier runs that were killed (their process no longer exists)."""
    for stage in out.parent.glob(f".{out.name}.tmp-*"):
        try:
            pid = int(stage.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(stage, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            pass


def write_report(report: EvalReport, out: Path, *, plots: bool = False, fps: float | None = None) -> None:
    """Write ``per_clip.csv``, ``summary.json`` and (``plots``) ``plots/mtm_<pred>.png`` as one unit.

    Everything is written into a hidden sibling folder ``.OUT.tmp-<pid>`` first, then moved into ``out``
    with :func:`os.replace`: the old ``summary.json`` is removed first, ``per_clip.csv`` and the plots
    are moved in (stale ``plots/mtm_*.png`` of an earlier run are deleted), and ``summary.json`` comes
    last. So whenever ``OUT/summary.json`` exists, ``per_clip.csv`` and ``plots/`` are from the same run
    (``summary.json``'s ``outputs.per_clip_sha256`` lets a reader check it); a killed run leaves at most
    the hidden staging folder, which the next run removes. Other files in ``out`` are left alone.
    """
    import hashlib

    from p3d.atomic import write_json

    out = Path(os.path.abspath(out))
    check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_stages(out)
    stage = _stage_dir(out)
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        report.per_clip.to_csv(stage / "per_clip.csv", index=False)
        new_plots: list[str] = []
        if plots and report.mtm_results:
            from p3d.viz.mtm_plot import save_mtm_plot

            fps = fps if fps is not None else report.summary.get("config", {}).get("fps")
            for stem, res in report.mtm_results.items():
                save_mtm_plot(res, stage / "plots" / f"mtm_{stem}.png", title=stem, fps=fps)
                new_plots.append(f"mtm_{stem}.png")
        summary = dict(report.summary)
        summary["outputs"] = {
            "per_clip": "per_clip.csv",
            "per_clip_sha256": hashlib.sha256((stage / "per_clip.csv").read_bytes()).hexdigest(),
            "plots": len(new_plots),
        }
        write_json(stage / "summary.json", summary)

        out.mkdir(exist_ok=True)
        (out / "summary.json").unlink(missing_ok=True)  # withdraw the old run's commit marker first
        os.replace(stage / "per_clip.csv", out / "per_clip.csv")
        keep = set(new_plots)
        if (out / "plots").is_dir():
            for stale in (out / "plots").glob("mtm_*.png"):
                if stale.name not in keep:
                    stale.unlink(missing_ok=True)
        if new_plots:
            (out / "plots").mkdir(exist_ok=True)
            for name in new_plots:
                os.replace(stage / "plots" / name, out / "plots" / name)
        os.replace(stage / "summary.json", out / "summary.json")  # commit
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def format_summary(summary: dict[str, Any]) -> str:
    """A short human-readable summary (what ``p3d eval`` prints)."""
    m = summary["metrics"]
    c = summary["counts"]
    n_pred = c.get("n_predictions", c["evaluated"])
    n_clips = c.get("n_clips", c["ground_truth_clips"])
    lines = [f"evaluated {n_pred} prediction(s) of {n_clips} GT clip(s) (n_predictions={n_pred}, n_clips={n_clips}; "
             f"CIs resample GT clips); truncated {c.get('truncated', 0)}; skipped {c['skipped']}"]

    def fmt(x: float | None, spec: str = ".4g") -> str:
        return "n/a" if x is None else format(x, spec)

    def ci(c: list[float | None] | None, spec: str = ".4g") -> str:
        return "  [95% CI n/a (too few clips)]" if not c or c[0] is None else f"  [95% CI {fmt(c[0], spec)}, {fmt(c[1], spec)}]"

    def n(x: dict[str, Any]) -> str:
        return f"  (n_clips={x['n_clips']}, n_predictions={x['n_predictions']})" if "n_clips" in x else ""

    for key, label in (("lve", "LVE "), ("fdd", "FDD ")):
        if key in m and m[key].get("computed", True) is False:
            lines.append(f"  {label}  not computed: {m[key]['reason']}")
        elif key in m:
            lines.append(f"  {label}  {fmt(m[key]['value'])}{ci(m[key]['ci95'])}{n(m[key])}")
    if "mtm" in m and m["mtm"].get("computed", True) is False:
        lines.append(f"  MTM   not computed: {m['mtm']['reason']}")
    elif "mtm" in m:
        x = m["mtm"]
        lines.append(f"  MTM   {fmt(x['ms'], '.1f')} ms ({fmt(x['frames'], '.3f')} frames at {x['fps']:g} fps)"
                     f"{ci(x['ci95_ms'], '.1f')}{n(x)}; {x['n_clips_without_match']} prediction(s) without matched extrema")
    if "plrs" in m:
        lines.append(f"  PLRS  {fmt(m['plrs']['value'], '.3f')}{ci(m['plrs']['ci95'], '.3f')}{n(m['plrs'])}")
    if "slcc" in m:
        x = m["slcc"]
        ci_text = ci(x.get("ci95"), ".3f") if x["value"] is not None else ""
        lines.append(f"  SLCC  {fmt(x['value'], '.3f')}{ci_text}; data {fmt(x['data_value'], '.3f')}"
                     f", Δ {fmt(x['delta'], '.3f')}{n(x)}")
        for level, v in x.get("by_level", {}).items():
            lines.append(f"        level {level}: {fmt(v['value'], '.3f')} (data {fmt(v['data_value'], '.3f')}, Δ {fmt(v['delta'], '.3f')})")
    d = summary.get("diagnostics", {})
    if d:
        parts = [f"{k} {fmt(v['mean'])}" for k, v in d.items()]
        lines.append("  diagnostics (means; per prediction in per_clip.csv): " + ", ".join(parts))
    if c.get("length_mismatch_accepted"):
        lines.append(f"  note: {c['length_mismatch_accepted']} prediction(s) differ in length from their GT (or audio) "
                     "beyond the tolerance; evaluated (truncated) because both --fps and --gt-fps were given "
                     "(see per_clip.csv 'note')")
    for s in summary["skipped"][:10]:
        lines.append(f"  skipped {s['pred']}: {s['reason']}")
    if len(summary["skipped"]) > 10:
        lines.append(f"  ... and {len(summary['skipped']) - 10} more skipped (see summary.json)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
def _metric_list(text: str) -> tuple[str, ...]:
    items = tuple(s.strip().lower() for s in text.split(",") if s.strip())
    if not items:
        raise argparse.ArgumentTypeError("empty metric list")
    return items


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate predicted vertex sequences (LVE, FDD, MTM, SLCC, PLRS)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pred", type=Path, required=True,
                   help="folder of predicted .npy sequences (a processed-VOCASET vertices_npy/ folder, or a root "
                        "holding one, is ground truth scored as predictions: read at 60 fps and subsampled [::2] "
                        "like the official evaluate_PLRS.py, unless --fps gives its rate)")
    p.add_argument("--gt", type=Path, default=None,
                   help="folder of GT .npy sequences (or a processed-VOCASET root holding vertices_npy/); "
                        "without it only PLRS is computed (--plrs-checkpoint and --audio), as the official script")
    p.add_argument("--audio", type=Path, help="folder of .wav files named like the GT clips (or a root holding wav/)")
    p.add_argument("--templates", type=Path, help="templates.pkl (subject -> neutral mesh), needed by FDD")
    p.add_argument("--dataset", choices=["auto", "vocaset", "mead", "biwi", "generic"], default="auto",
                   help="file-name convention (default: auto-detect per file); biwi: F2_e37[_condition_M3], "
                        "and 25 fps predictions and GT unless --fps / --gt-fps say otherwise")
    p.add_argument("--fps", "--pred-fps", dest="fps", type=float, default=None,
                   help="frame rate of the prediction files (default 30; 25 with --dataset biwi; 60 then [::2] "
                        "for a VOCASET vertices_npy folder given as --pred)")
    p.add_argument("--gt-fps", type=float, default=None,
                   help="frame rate of the GT files (default: 60 for processed VOCASET, i.e. --dataset vocaset or a "
                        "vertices_npy/ root with VOCASET names; else --fps). Lengths that disagree with the rates "
                        "are refused unless both --fps and --gt-fps are given")
    p.add_argument("--metrics", type=_metric_list, default=None,
                   help="comma-separated subset of lve,fdd,mtm,slcc,plrs (default: all whose inputs are given)")
    p.add_argument("--topology", default="flame",
                   help="flame (default), FLAME_masks.pkl, a topology .npz, a BIWI regions folder, or a built-in name")
    p.add_argument("--plrs-checkpoint", type=Path, help="speech-mesh evaluator checkpoint for PLRS")
    p.add_argument("--lve-variant", choices=["max_sq", "max_l2", "meshtalk"], default="max_sq",
                   help="LVE definition (default max_sq: CodeTalker / torchmetrics)")
    p.add_argument("--lip-aggregate", choices=["rms", "mean"], default="rms",
                   help="lip-intensity aggregation over frames: rms (official code, default) or mean (paper Eq. c)")
    p.add_argument("--out", type=Path, default=Path("results/eval"), help="output folder (default results/eval)")
    p.add_argument("--plots", action="store_true", help="write the DDTW matching plot of every clip (Fig. S4)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95%% CIs (over GT clips)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--no-diagnostics", action="store_true",
                   help="leave out the motion diagnostics columns of per_clip.csv (lip_jerk, lip_hf_energy, "
                        "upper_face_motion, lip_amplitude_ratio, each also for the GT)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = EvalConfig(
        pred=args.pred, gt=args.gt, audio=args.audio, templates=args.templates, dataset=args.dataset,
        fps=args.fps, gt_fps=args.gt_fps, metrics=args.metrics, topology=args.topology, out=args.out,
        plots=args.plots, lve_variant=args.lve_variant, lip_aggregate=args.lip_aggregate,
        plrs_checkpoint=args.plrs_checkpoint, bootstrap_resamples=args.bootstrap, seed=args.seed,
        diagnostics=not args.no_diagnostics,
    )
    check_out_dir(args.out)  # before any work
    report = evaluate(cfg, progress=not args.no_progress)
    write_report(report, args.out, plots=args.plots, fps=report.summary["config"]["fps"])
    print(format_summary(report.summary))
    print(f"wrote {args.out / 'per_clip.csv'} and {args.out / 'summary.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - convenience
    from p3d.cli import main as cli_main

    return cli_main(["eval", *(argv or [])])
