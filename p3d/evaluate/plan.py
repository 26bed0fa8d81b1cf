"""The first pass of ``p3d eval``: pair each prediction with its GT clip (and wav), read only the ``.npy``
and ``.wav`` headers, resolve the frame rates and check every pair's lengths before any metric is computed."""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError
from p3d.evaluate.config import (
    BIWI_FPS,
    PLRS_METRICS,
    VOCASET_GT_FPS,
    EvalConfig,
    FrameRates,
    length_mismatch,
    strided_length,
)

log = logging.getLogger("p3d.evaluate")


@dataclasses.dataclass
class _Pair:
    """One prediction and its GT, with the frame counts read from the file headers."""

    pred_path: Path
    name: Any  # p3d.io.ClipName
    gt_path: Path | None  # None without --gt
    pred_frames: int = 0  # after the prediction subsampling (rates.pred_stride)
    gt_frames_full: int = 0  # at gt_fps, before subsampling


def is_vocaset_gt_folder(folder: Path, pairs: Sequence[_Pair], dataset: str) -> bool:
    """Whether a prediction folder is processed-VOCASET ground truth (60 fps): its path (or the
    ``vertices_npy/`` it holds) names ``vertices_npy``, as the official ``evaluate_PLRS.py`` tests, and
    its files have VOCASET names (or ``--dataset vocaset``)."""
    from p3d import io

    where = Path(os.path.abspath(io.vertices_dir(folder)))
    named = any("vertices_npy" in part for part in where.parts)
    return named and dataset != "biwi" and (
        dataset == "vocaset" or (bool(pairs) and all(p.name.sentence for p in pairs)))


def check_corpus_source(pred: Path, folder: Path | None, option: str = "--gt") -> str:
    """Check the GT or audio ``folder`` (``option``: ``--gt`` or ``--audio``), or the folder of the templates file
    (``--templates``: FDD and the lip diagnostics measure motion from each speaker's neutral face, and a corpus
    regenerated with another seed has other faces under the same names), against the corpora the predictions
    in ``pred`` were made from, as ``p3d predict`` recorded them beside the predictions
    (:data:`p3d.io.PREDICTIONS_RECORD`, ``corpora``: path -> :func:`p3d.corpus.corpus_fingerprint`); return what
    was found (``summary.json``'s ``config.gt_check`` / ``config.audio_check`` / ``config.templates_check``).

    Refused (:class:`InputError`), since every score would compare the predictions with other clips of the same
    names: the recorded corpus at the folder's own path was regenerated or replaced since (its fingerprint
    differs: :func:`p3d.corpus.fingerprint_changes`, its templates.pkl and clips.csv included where the record
    has them), or the folder is another synthetic corpus (a ``meta.json`` unlike every recorded corpus', all of
    which have one: another preset, seed or generator). Not checked: predictions without a record (another
    tool's, or an older p3d's) and a folder without ``meta.json`` elsewhere (e.g. a copy of real data's
    ``vertices_npy/``), matched by name with a warning."""
    from p3d.corpus import corpus_fingerprint, corpus_root, fingerprint_changes
    from p3d.io import PREDICTIONS_RECORD, load_json

    if folder is None:
        return f"no {option}"
    record = Path(pred) / PREDICTIONS_RECORD
    corpora = load_json(record).get("corpora") if record.is_file() else None
    if not corpora:
        return f"not checked: --pred has no {PREDICTIONS_RECORD} naming the corpora predicted (not p3d predict's)"
    root = corpus_root(folder).resolve()
    here = corpus_fingerprint(root)
    if str(root) in corpora:
        changes = fingerprint_changes(corpora[str(root)], here)
        if changes:
            raise InputError(f"{option} {folder}: the corpus was regenerated or replaced since the predictions in "
                             f"{pred} were made from it ({PREDICTIONS_RECORD}: its {', '.join(changes)} differ); "
                             "predict again (p3d predict --overwrite), or pass the corpus they were made from")
        return f"the corpus the predictions were made from ({root})"
    same = [p for p, fp in corpora.items() if not fingerprint_changes(fp, here)]
    if same:
        return f"a copy of the corpus the predictions were made from ({same[0]})"
    if here["meta"] is not None:
        like = [p for p, fp in corpora.items() if fp.get("meta") == here["meta"]]
        if like:
            return f"a corpus of the same settings (meta.json) as the one the predictions were made from ({like[0]})"
        if all(fp.get("meta") for fp in corpora.values()):
            raise InputError(f"{option} {folder}: another corpus than the predictions in {pred} were made from "
                             f"({', '.join(corpora)}; its meta.json differs: another preset, seed or generator); "
                             f"pass that corpus as {option}, or predict from this one")
    log.warning("%s %s is not the corpus the predictions in %s were made from (%s); its clips are matched by name "
                "only", option, folder, pred, ", ".join(corpora))
    return f"not checked: {option} is not the corpus the predictions were made from ({', '.join(corpora)})"


def resolve_rates(cfg: EvalConfig, pairs: Sequence[_Pair], gt_root: Path | None) -> FrameRates:
    """The prediction and GT frame rates (see :class:`EvalConfig`) and the subsampling strides.

    Predictions read from a processed-VOCASET ``vertices_npy`` folder (ground truth scored as
    predictions) are taken as 60 fps and subsampled ``[::2]`` to 30 fps, as the official
    ``evaluate_PLRS.py`` does, unless ``--fps`` gives their rate (then they are read at it, unsubsampled).
    """
    from p3d import io

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
    elif cfg.dataset == "vocaset" or (  # a vertices_npy folder, or a root holding one, of VOCASET clips
            io.vertices_dir(gt_root).name == "vertices_npy" and pairs and all(p.name.sentence for p in pairs)):
        gt_fps, source = VOCASET_GT_FPS, "VOCASET (60 fps)"
    else:
        gt_fps, source = fps, "--fps"
    stride = cfg.gt_stride(gt_fps)
    return FrameRates(fps=fps, gt_fps=gt_fps, stride=stride, gt_fps_source=source,
                      explicit=cfg.fps is not None and cfg.gt_fps is not None,
                      pred_stride=pred_stride, pred_fps_source=pred_source)


def _npy_frames(path: Path, n_vertices: int) -> int:
    """Frames of a vertex ``.npy`` from its header only (:func:`p3d.io.npy_header`: never blocks on a named
    pipe, refuses truncated or pickled files). A file that is not a plain (T, V*3) / (T, V, 3) numeric
    array with ``n_vertices`` is loaded by :func:`p3d.io.load_vertices`, which raises the error that names
    the file and the problem."""
    from p3d import io

    shape, dtype = io.npy_header(path, "vertex file")
    ok = dtype.kind in "fiu" and len(shape) >= 1 and shape[0] > 0 and (
        (len(shape) == 2 and shape[1] == 3 * n_vertices) or (len(shape) == 3 and shape[1:] == (n_vertices, 3)))
    if not ok:
        return len(io.load_vertices(path, n_vertices=n_vertices))
    return int(shape[0])


def _wav_seconds(path: Path) -> float:
    """Duration of an audio file from its header (soundfile.info on a file opened by
    :func:`p3d.io.open_regular`, so a named pipe is refused at once); unreadable files raise via io.load_audio."""
    import soundfile as sf

    from p3d import io

    with io.open_regular(path, "audio file") as fh:
        io.check_wav_length(fh, path)  # a truncated WAV's header reads as the shorter recording it holds
        try:
            info = sf.info(fh)
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


def _refuse_mismatches(bad: Sequence[str], rates: FrameRates, pairs: Sequence[_Pair] = ()) -> None:
    """InputError naming the first refused length mismatch, how many more there are, and the fix (BIWI names
    read at another rate than BIWI's 25 fps: ``--dataset biwi``)."""
    if bad:
        more = f" ({len(bad) - 1} more like it)" if len(bad) > 1 else ""
        biwi = ""
        if rates.fps != BIWI_FPS and pairs and all(_BIWI.match(p.pred_path.stem) for p in pairs):
            biwi = f" (BIWI names: --dataset biwi reads predictions and GT at {BIWI_FPS:g} fps)"
        raise InputError(f"{bad[0]}{more}: {_rate_fix(rates)}{biwi}")


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
        _refuse_mismatches(bad, rates, pairs)
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
    _refuse_mismatches(bad, rates, pairs)
    return accepted


def _prediction_dir(pred: Path) -> Path:
    """The folder whose ``.npy`` files are scored: ``pred``, or the ``vertices_npy/`` it holds (processed-VOCASET
    ground truth scored as predictions, :func:`p3d.io.vertices_dir`). A folder holding both ``.npy`` files and a
    ``vertices_npy/`` is refused: its own files were left out silently and the other folder's scored instead."""
    from p3d import io

    where = io.vertices_dir(pred)
    if where != Path(pred):
        try:
            with os.scandir(pred) as entries:
                loose = sorted(e.name for e in entries
                               if e.name.lower().endswith(".npy") and not io.is_ignored_name(e.name))
        except OSError as exc:
            raise InputError(f"--pred {pred}: cannot list the folder ({exc.strerror or exc})") from None
        if loose:
            raise InputError(f"--pred {pred}: holds {len(loose)} .npy file(s) (e.g. {loose[0]}) beside a vertices_npy/ "
                             f"folder, whose files would be scored instead; pass --pred {where} to score those, or "
                             "move the predictions to a folder of their own")
    return where


def _plan(cfg: EvalConfig, topology: Any, wanted: tuple[str, ...], audio_dir: Path | None
          ) -> tuple[dict[str, list[_Pair]], list[dict[str, str]], FrameRates, dict[str, str], dict[str, Path]]:
    """The cheap first pass: pair predictions with GT, read every header, resolve the rates, check lengths.

    Returns (pairs grouped by GT stem, skipped, rates, {pred: accepted-mismatch note}, {GT stem: wav}).
    """
    from p3d import io
    from p3d.metrics.plrs import WINDOW as PLRS_WINDOW

    unreadable: list[dict[str, str]] = []
    # a processed-VOCASET root as --pred means its vertices_npy/ (GT scored as predictions)
    pred_files = io.find_npy(_prediction_dir(cfg.pred), "prediction folder", skipped=unreadable)
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
    plrs_frames = 2 * PLRS_WINDOW - 1  # p3d.metrics.plrs: G = (T - 4) // 5 windows at most
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
            if p.pred_frames < plrs_frames and any(m in wanted for m in PLRS_METRICS):
                # refused here, from the header, not by the scoring pass after the clips before it were scored
                raise InputError(f"{p.pred_path}: {p.pred_frames} frames at {rates.fps:g} fps; PLRS and PLRS-c need "
                                 f"at least {plrs_frames} (one complete non-overlapping 5-frame window, Eq. (a)); "
                                 "leave plrs and plrs_calibrated out of --metrics")
            if gt_path is not None and strided_length(gt_frames, rates.stride) < 2:
                raise InputError(f"{gt_path}: needs at least 2 frames")
        if "slcc" in wanted or any(m in wanted for m in PLRS_METRICS):
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


def computable_metrics(cfg: EvalConfig, wanted: Sequence[str]) -> tuple[str, ...]:
    """``wanted`` less the PLRS metrics ``cfg``'s inputs cannot give, as p3d eval's default metric set leaves them
    out: PLRS and PLRS-c without ``plrs_checkpoint`` and ``audio``; PLRS-c when the predictions cover too few GT
    clips for its background (:func:`p3d.evaluate.config.plan_background`; the GT clips counted from the prediction
    file names, :func:`parse_name`, before any file is read). For a caller that asks for one fixed set of metrics
    (``cfg.metrics``, which refuses what cannot be computed) over prediction folders of different sizes."""
    from p3d import io
    from p3d.evaluate.config import plan_background

    wanted = tuple(dict.fromkeys(wanted))
    if cfg.plrs_checkpoint is None or cfg.audio is None:
        return tuple(m for m in wanted if m not in PLRS_METRICS)
    if "plrs_calibrated" not in wanted:
        return wanted
    n_gt = len({parse_name(p.stem, cfg.dataset).gt_stem
                for p in io.find_npy(io.vertices_dir(cfg.pred), "prediction folder")})
    return plan_background(dataclasses.replace(cfg, metrics=None), wanted, n_gt)
