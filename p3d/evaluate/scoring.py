"""The second pass of ``p3d eval``: :func:`evaluate` scores the predictions one GT clip at a time (LVE,
FDD, MTM, the lip intensity, SLCC's speech intensity, PLRS, PLRS-c and the motion diagnostics of each
prediction). PLRS-c first needs its background: the speech embeddings of every evaluated GT clip
(:func:`_speech_background`, a pass over the wavs that keeps embeddings only)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError
from p3d.evaluate.config import (
    PLRS_METRICS,
    SILENT_RMS,
    EvalConfig,
    EvalReport,
    background_reason,
    plan_background,
    plan_metrics,
    plots_and_topology,
)
from p3d.evaluate.plan import _plan, check_corpus_source
from p3d.evaluate.report import check_out_dir, check_report_dir
from p3d.evaluate.summary import _summarise
from p3d.progress import show_progress
from p3d.stats import MIN_RESAMPLES, check_draws


def _integer(x: object) -> bool:
    """A Python or numpy integer, not a boolean (True was one resample / seed 1)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def evaluate(cfg: EvalConfig, *, progress: bool | None = None) -> EvalReport:
    """Evaluate every prediction in ``cfg.pred`` (see the module docstring). Raises InputError on bad input.

    Work is done one GT clip at a time (its predictions together, then the GT and its audio are
    dropped), so peak memory is one GT clip and one prediction, whatever the number of clips.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from p3d import io, metrics
    from p3d.topology import load_topology

    topology = None  # read once: here where --plots depends on it (MTM's lip vertices), else for the plan below
    if cfg.out is not None:
        plots, topology = plots_and_topology(cfg)
        check_report_dir(cfg.out, plots=plots)
    resamples = cfg.bootstrap_resamples
    # fewer than MIN_RESAMPLES gave every CI as "n/a (too few clips)" after all the work (percentile_interval's
    # min_count; SLCC's bootstrap refuses them)
    if not _integer(resamples) or resamples < MIN_RESAMPLES:
        raise InputError(f"--bootstrap: expected at least {MIN_RESAMPLES} resamples for the 95% CIs, got {resamples!r}")
    if not _integer(cfg.seed) or cfg.seed < 0:  # numpy's generators refuse others
        raise InputError(f"--seed {cfg.seed!r}: expected an integer >= 0")
    # numpy integers as Python ints: the summary records the config as JSON (which refuses numpy integers)
    cfg = dataclasses.replace(cfg, bootstrap_resamples=int(resamples), seed=int(cfg.seed))
    if cfg.speech_cache is not None and Path(cfg.speech_cache).exists() and not Path(cfg.speech_cache).is_dir():
        raise InputError(f"--speech-cache {cfg.speech_cache}: exists and is not a folder")
    if cfg.speech_cache is not None and not Path(cfg.speech_cache).exists():  # e.g. under a file: not creatable
        check_out_dir(cfg.speech_cache, f"--speech-cache {cfg.speech_cache}")
    if topology is None:
        topology = load_topology(cfg.topology)
    wanted, not_computed = plan_metrics(cfg, topology)
    cfg.gt_stride()  # a bad explicit rate pair fails before any file is read
    audio_dir = io.audio_dir(cfg.audio) if cfg.audio is not None else None
    if audio_dir is not None and not audio_dir.is_dir():
        raise InputError(f"{cfg.audio}: audio folder not found")
    use_templates = "fdd" in wanted or (cfg.diagnostics and cfg.templates is not None and cfg.gt is not None)
    checks = {"gt_check": check_corpus_source(cfg.pred, cfg.gt, "--gt"),
              "audio_check": check_corpus_source(cfg.pred, cfg.audio, "--audio"),
              "templates_check": check_corpus_source(cfg.pred, Path(cfg.templates).parent if use_templates else None,
                                                     "--templates")}
    groups, skipped, rates, accepted, wavs = _plan(cfg, topology, wanted, audio_dir)
    check_draws(resamples, len(groups), "--bootstrap")  # the CIs resample GT clips: refused before the scoring
    lips = topology.lips
    upper_face = topology.upper_face if "fdd" in wanted else None
    mtm_upper, mtm_lower = topology.mtm_vertices() if "mtm" in wanted else (None, None)
    templates = io.load_templates(cfg.templates, topology.n_vertices) if use_templates else {}
    # a generic name's speaker, e.g. spk_01 of spk_01_clip3, where the neutral faces name it; whenever --templates is
    # given, not only when FDD or the diagnostics read it: SLCC z-normalises per speaker (Eq. (7)), so the speakers
    # (and SLCC) must not depend on --metrics or --no-diagnostics
    speakers = templates or (io.load_templates(cfg.templates) if cfg.templates is not None else {})
    if speakers:
        for group in groups.values():
            for p in group:
                p.name = io.identity_in_templates(p.name, speakers)
    if "fdd" in wanted:
        for group in groups.values():
            for p in group:
                if p.name.identity not in templates:
                    raise InputError(f"{cfg.templates}: no template for identity {p.name.identity!r} "
                                     f"(needed by {p.pred_path.name})")
    if "plrs_calibrated" in wanted:  # too few clips for a background: known from the headers, before any audio
        wanted = plan_background(cfg, wanted, len(groups))
        if "plrs_calibrated" not in wanted:
            not_computed["plrs_calibrated"] = background_reason(len(groups))
    speech_wanted = any(m in wanted for m in PLRS_METRICS)
    if speech_wanted:  # before the evaluator and any audio: PLRS is not defined at other rates
        from p3d.audio import check_window_fps

        check_window_fps(rates.fps, f"PLRS at --fps {rates.fps:g}" if rates.pred_stride == 1 else "PLRS")
    plrs_model = _load_plrs_model(cfg.plrs_checkpoint) if speech_wanted else None
    banks: dict[str, np.ndarray] = {}
    if "plrs_calibrated" in wanted:
        cache = None if cfg.speech_cache is None else _SpeechBankCache(cfg.speech_cache, cfg.plrs_checkpoint)
        banks = _speech_background(groups, wavs, wanted, rates.fps, plrs_model, progress, cache)
        wanted = plan_background(cfg, wanted, len(banks))  # silent wavs may have left too few
        if "plrs_calibrated" not in wanted:
            not_computed["plrs_calibrated"] = background_reason(len(banks))
            banks = {}
    diag_upper = topology.regions.get("upper_face") if cfg.diagnostics else None
    # every clip's background is all the other clips' speech: stacked, checked and normalised once
    backgrounds = metrics.SpeechBackground(banks) if banks else None

    # LVE, FDD and the lip amplitude compare positions with the GT's or the template's; MTM, SLCC and the
    # other diagnostics read motion only
    placed = bool({"lve", "fdd"} & set(wanted)) or bool(cfg.diagnostics and templates)
    rows: list[dict[str, Any]] = []
    gt_rows: list[dict[str, Any]] = []
    silent: list[dict[str, Any]] = []  # GT clips whose wav is silent: left out of SLCC and PLRS only
    mtm_results: dict[str, Any] = {}
    n_pairs = sum(len(g) for g in groups.values())
    with tqdm(total=n_pairs, desc="p3d eval", unit="clip", disable=not show_progress(progress)) as bar:
        for stem, group in groups.items():
            gt_path = group[0].gt_path
            speech_int: float | None = None
            windows = None
            background = None
            audio_silent = False
            if stem in wavs:
                used, rate, rms = _clip_audio(wavs[stem], wanted)
                # SLCC and PLRS are undefined for a silent wav: its predictions are left out of those (NaN in
                # per_clip.csv, the reason in the summary) but still scored for the GT metrics, whose values must
                # not depend on whether an audio metric was asked for
                audio_silent = rms < SILENT_RMS
                if audio_silent:
                    silent.append({"gt": gt_path.name if gt_path is not None else f"{stem}.npy",
                                   "wav": wavs[stem].name, "rms": rms, "n_predictions": len(group)})
                else:
                    if "slcc" in wanted:
                        speech_int = metrics.speech_intensity(used["slcc"])
                    if speech_wanted:
                        windows = _speech_windows(used["plrs"], rate, rates.fps, wavs[stem])
                    if "plrs_calibrated" in wanted:
                        assert backgrounds is not None
                        background = backgrounds.excluding(stem)
                del used
            gt = None
            gt_diag: dict[str, float] = {}
            if gt_path is not None:
                # a contiguous copy of the subsampled GT: the full-rate array is freed at once
                gt = np.ascontiguousarray(io.load_vertices(gt_path, topology)[::rates.stride])
                if cfg.diagnostics:
                    gt_diag = {f"{k}_gt": v for k, v in motion_diagnostics(gt, lips, diag_upper, rates.fps).items()}
                    if templates:  # the GT's lip amplitude, once per GT clip (PLRS-e's enrolment reads it)
                        gt_diag["lip_amplitude_gt"] = _lip_amplitude(gt, lips, templates.get(group[0].name.identity))
            gt_frame = io.FaceFrame.of(gt) if placed and gt is not None else None
            if gt_frame is not None and templates.get(group[0].name.identity) is not None:
                gt_frame.check(templates[group[0].name.identity][None],
                               f"{cfg.templates}[{group[0].name.identity!r}]", gt_path,
                               "A template in another unit, normalisation or alignment? FDD and the "
                               "lip amplitude need the neutral face in the GT's frame")
            if "slcc" in wanted and not audio_silent:
                assert gt is not None and gt_path is not None
                gt_rows.append({"gt": gt_path.name, "identity": group[0].name.identity, "level": group[0].name.level,
                                "speech_intensity": speech_int,
                                "lip_intensity": metrics.lip_intensity(gt, lips, aggregate=cfg.lip_aggregate)})
            for p in group:
                pred = io.load_vertices(p.pred_path, topology)
                if rates.pred_stride > 1:
                    pred = np.ascontiguousarray(pred[::rates.pred_stride])
                if gt_frame is not None:
                    gt_frame.check(pred, str(p.pred_path), gt_path)
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
                    res = metrics.mtm(pred=pred, gt=gt, upper=mtm_upper, lower=mtm_lower)
                    mtm_results[p.pred_path.stem] = res  # a few KB per clip (1-D curves): kept for plots and callers
                    row["mtm_frames"] = res.mean_frames
                    row["mtm_ms"] = res.ms(rates.fps)
                    row["mtm_matches"] = len(res.deltas)
                    row["mtm_deltas"] = ";".join(str(int(d)) for d in res.deltas)
                if "slcc" in wanted:
                    row["speech_intensity"] = float("nan") if speech_int is None else speech_int
                    row["lip_intensity"] = metrics.lip_intensity(pred, lips, aggregate=cfg.lip_aggregate)
                if audio_silent:
                    row.update({m: float("nan") for m in PLRS_METRICS if m in wanted})
                elif "plrs_calibrated" in wanted:
                    # one forward pass for both; the speech side is the clip's bank, encoded once for the background
                    scores = _plrs_scores(windows, pred, plrs_model, background, p.pred_path, banks[stem])
                    row["plrs_calibrated"] = scores.calibrated
                    if "plrs" in wanted:
                        row["plrs"] = scores.official
                elif "plrs" in wanted:
                    row["plrs"] = _plrs(windows, pred, plrs_model, p.pred_path)
                if cfg.diagnostics:
                    row.update(motion_diagnostics(pred, lips, diag_upper, rates.fps))
                    row.update(gt_diag)
                    if gt is not None and templates:
                        row["lip_amplitude_ratio"] = _lip_amplitude_ratio(pred, gt, lips, templates.get(name.identity))
                        row["lip_amplitude"] = _lip_amplitude(pred, lips, templates.get(name.identity))
                rows.append(row)
                del pred
                bar.update(1)
            del gt, windows, background
            if plrs_model is not None:
                plrs_model.forget()  # speech embeddings are shared only within one GT clip

    if not rows:
        reasons = "; ".join(f"{s['pred']}: {s['reason']}" for s in skipped[:5])
        raise InputError(f"nothing could be evaluated in {cfg.pred} ({len(skipped)} skipped: {reasons})")
    if len(silent) == len(groups) and set(wanted) <= {"slcc", *PLRS_METRICS}:  # none of the metrics asked for
        raise InputError(f"nothing could be evaluated in {cfg.pred}: the audio of every GT clip is silent (RMS < "
                         f"{SILENT_RMS:g}, e.g. {silent[0]['wav']}), and SLCC and PLRS are undefined for it")

    per_clip = pd.DataFrame(rows)
    if "note" not in per_clip:
        per_clip["note"] = None
    if cfg.intensity_weight is not None:
        if "plrs_calibrated" in wanted:
            per_clip["plrs_enrolled"] = plrs_enrolled_column(per_clip, cfg.intensity_weight)
        else:
            not_computed["plrs_enrolled"] = "PLRS-c was not computed: " + not_computed.get("plrs_calibrated", "")
    # named columns: every GT clip's wav may be silent (no rows) while a GT metric keeps the evaluation going
    gt_df = pd.DataFrame(gt_rows, columns=["gt", "identity", "level", "speech_intensity", "lip_intensity"])
    summary = _summarise(cfg, wanted, not_computed, per_clip, gt_df, skipped, rates,
                         background_clips=len(banks) if banks else None, checks=checks, silent=silent)
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


def _lip_amplitude(vertices: np.ndarray, lips: np.ndarray, template: np.ndarray | None) -> float:
    """:func:`p3d.metrics.lip_amplitude` of the whole sequence, NaN without the identity's template."""
    from p3d import metrics

    return float("nan") if template is None else float(metrics.lip_amplitude(vertices, lips, template))


def plrs_enrolled_column(per_clip: Any, intensity_weight: float) -> np.ndarray:
    """PLRS-e of every row of ``per_clip`` (:func:`p3d.metrics.plrs_enrolled`): its ``plrs_calibrated`` and
    ``lip_amplitude`` against the speaker's enrolled amplitude, the mean ``lip_amplitude_gt`` of the *other* GT
    clips of the same identity (and level, where the clips have levels) in this evaluation
    (:func:`p3d.metrics.enrolled_lip_amplitude`) whose audio is scored (a finite ``plrs_calibrated``: a clip with
    silent audio is not enrolled). NaN for a speaker evaluated on one such clip only, and for a row without PLRS-c."""
    from p3d.metrics import enrolled_lip_amplitude
    from p3d.metrics.plrs import plrs_enrolled

    scored = per_clip[np.isfinite(per_clip["plrs_calibrated"].to_numpy(dtype=float))]
    gt = scored.drop_duplicates("gt")
    group = gt["identity"].astype(str)
    if "level" in gt and gt["level"].notna().any():
        group = group + "|" + gt["level"].astype(str)
    enrolled = dict(zip(gt["gt"], enrolled_lip_amplitude(gt["lip_amplitude_gt"].to_numpy(dtype=float),
                                                         group.to_numpy())))
    return plrs_enrolled(per_clip["plrs_calibrated"].to_numpy(dtype=float),
                         per_clip["lip_amplitude"].to_numpy(dtype=float),
                         np.array([enrolled.get(g, np.nan) for g in per_clip["gt"]], dtype=float),
                         intensity_weight)


def _lip_amplitude_ratio(pred: np.ndarray, gt: np.ndarray, lips: np.ndarray, template: np.ndarray | None) -> float:
    """:func:`p3d.metrics.lip_amplitude_ratio`, NaN without the identity's template (a diagnostic does not
    refuse a run; FDD does)."""
    from p3d import metrics

    if template is None:
        return float("nan")
    return float(metrics.lip_amplitude_ratio(pred, gt, lips, template))


def _clip_audio(wav: Path, wanted: tuple[str, ...]) -> tuple[dict[str, np.ndarray], int, float]:
    """The samples each audio metric reads from one wav, its rate and the lowest RMS among them (the clip is
    silent below :data:`SILENT_RMS`). SLCC's speech intensity: the channel mean (:func:`p3d.io.load_audio`);
    PLRS and PLRS-c (key ``"plrs"``): channel 0, as the official evaluate_PLRS.py
    (:func:`p3d.audio.load_speech_audio`)."""
    from p3d import io

    channels, rate = io.load_audio(wav, mono=False)
    used = {"slcc": channels.mean(axis=1)} if "slcc" in wanted else {}
    if any(m in wanted for m in PLRS_METRICS):
        used["plrs"] = np.ascontiguousarray(channels[:, 0])
    del channels
    rms = min(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) for x in used.values())
    return used, rate, rms


class _SpeechBankCache:
    """PLRS' speech embeddings of GT clips on disk, one ``<key>.npy`` per clip; the key is the sha256 of the
    evaluator checkpoint's bytes, the wav's bytes, the frame rate and the speech front-end's
    :data:`p3d.audio.FEATURE_VERSION`, so a changed evaluator, audio, rate or front-end never reads a stale file.
    Written atomically (grid workers evaluating other runs of the same split may write the same file at once: the
    same bytes). An unreadable or malformed file is recomputed."""

    def __init__(self, folder: Path, checkpoint: Path) -> None:
        from p3d.provenance import stamped_sha256

        self.folder = Path(folder)
        self.evaluator = stamped_sha256(checkpoint)

    def path(self, wav: Path, fps: float) -> Path:
        import hashlib

        from p3d.audio import FEATURE_VERSION
        from p3d.provenance import stamped_sha256

        key = hashlib.sha256(f"plrs-speech-bank-v1|{self.evaluator}|{stamped_sha256(wav)}|{fps!r}|"
                             f"{FEATURE_VERSION}".encode()).hexdigest()
        return self.folder / f"{key[:40]}.npy"

    def load(self, path: Path) -> np.ndarray | None:
        try:
            bank = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return bank if bank.ndim == 2 and bank.dtype == np.float32 and np.isfinite(bank).all() else None

    def save(self, path: Path, bank: np.ndarray) -> None:
        from p3d.atomic import save_npy

        self.folder.mkdir(parents=True, exist_ok=True)
        save_npy(path, np.ascontiguousarray(bank, dtype=np.float32))


def _speech_background(groups: dict[str, Any], wavs: dict[str, Path], wanted: tuple[str, ...], fps: float,
                       model: Any, progress: bool | None, cache: _SpeechBankCache | None = None
                       ) -> dict[str, np.ndarray]:
    """PLRS-c's background bank: ``{GT stem: (K_c, D) speech embeddings}`` of every evaluated GT clip whose
    audio is scored (:func:`p3d.metrics.plrs.speech_banks`: every 5th speech window of the clip, the speech side
    of its PLRS windows, from channel 0 with PLRS' front-end). A silent wav is left out, as its predictions are
    not scored. One clip at a time; the windows are dropped and only the embeddings kept (a few KB per clip),
    so memory stays flat. Each clip's background is then every *other* clip's bank
    (:func:`p3d.metrics.plrs.background_excluding`), and its own bank is the speech side of its PLRS windows
    (``speech_bank`` of :func:`p3d.metrics.plrs_scores`: encoded once). ``cache``: banks kept on disk across
    evaluations."""
    from tqdm.auto import tqdm

    from p3d.metrics import speech_banks

    banks: dict[str, np.ndarray] = {}
    for stem in tqdm(list(groups), desc="PLRS-c background", unit="clip", disable=not show_progress(progress)):
        used, rate, rms = _clip_audio(wavs[stem], wanted)
        if rms < SILENT_RMS:
            continue
        cached = cache.path(wavs[stem], fps) if cache is not None else None
        bank = cache.load(cached) if cache is not None and cached is not None else None
        if bank is not None:
            banks[stem] = bank
            continue
        windows = _speech_windows(used["plrs"], rate, fps, wavs[stem])
        del used
        if len(windows) == 0:
            raise InputError(f"{wavs[stem]}: too short for PLRS and PLRS-c (no complete speech window: it needs "
                             f"at least 5 frames of audio at {fps:g} fps)")
        try:
            banks.update(speech_banks({stem: windows}, model))
        except InputError as exc:
            raise InputError(f"{wavs[stem]}: PLRS-c background failed ({exc})") from None
        except (ValueError, RuntimeError) as exc:  # torch shape / dtype errors of the evaluator
            raise InputError(f"{wavs[stem]}: PLRS-c background failed ({type(exc).__name__}: {exc})") from None
        del windows
        model.forget()
        if cache is not None and cached is not None:
            cache.save(cached, banks[stem])
    return banks


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


def _plrs_scores(windows: Any, pred: np.ndarray, model: Any, background: np.ndarray, pred_path: Path,
                 own_bank: np.ndarray | None = None) -> Any:
    """:func:`p3d.metrics.plrs_scores` of one prediction against its clip's background embeddings (official
    PLRS and PLRS-c from one forward pass; ``own_bank``: the clip's own speech embeddings, encoded once for the
    background); errors name the prediction file, as :func:`_plrs`."""
    from p3d import metrics

    try:
        return metrics.plrs_scores(windows, pred, model, background, speech_bank=own_bank)
    except InputError as exc:
        raise InputError(f"{pred_path}: PLRS failed ({exc})") from None
    except (ValueError, RuntimeError) as exc:
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
