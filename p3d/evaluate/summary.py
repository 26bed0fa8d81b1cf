"""The summary of a ``p3d eval`` run: each metric's pooled value with its 95 % bootstrap CI over GT clips,
SLCC against the data's own, the counts and the configuration (:func:`_summarise`), and the text the command
prints (:func:`format_summary`)."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError
from p3d.evaluate.config import (
    DIAGNOSTIC_COLUMNS,
    FACTOR_TOLERANCE,
    FRAME_WEIGHTED_METRICS,
    LENGTH_TOLERANCE_FRACTION,
    LENGTH_TOLERANCE_FRAMES,
    PLRS_METRICS,
    SILENT_RMS,
    EvalConfig,
    FrameRates,
)

log = logging.getLogger("p3d.evaluate")  # the command's logger (log lines read "p3d.evaluate: ...")


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def _clip_ci(values: np.ndarray, clusters: np.ndarray, cfg: EvalConfig,
             weights: np.ndarray | None = None) -> list[float | None]:
    """95 % percentile CI of the pooled mean (``weights``: weighted), resampling GT clips
    (:func:`p3d.stats.cluster_bootstrap_ci`): the predictions of one GT clip under several conditions are one unit
    of replication."""
    from p3d.stats import cluster_bootstrap_ci

    lo, hi = cluster_bootstrap_ci(values, clusters, n_resamples=cfg.bootstrap_resamples, seed=cfg.seed,
                                  weights=weights)
    return [_num(lo), _num(hi)]


def _counts(vals: np.ndarray, clusters: np.ndarray) -> dict[str, int]:
    ok = np.isfinite(vals)
    return {"n_clips": int(len(set(clusters[ok]))), "n_predictions": int(ok.sum())}


def _summarise(cfg: EvalConfig, wanted: tuple[str, ...], not_computed: dict[str, str], df: Any, gt_df: Any,
               skipped: list[dict[str, str]], rates: FrameRates, *, background_clips: int | None = None,
               checks: dict[str, str] | None = None, silent: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The summary dict of one run (``summary.json``); ``background_clips``: the GT clips whose speech forms
    PLRS-c's background bank (each clip is scored against the others'); ``checks``: what
    :func:`p3d.evaluate.plan.check_corpus_source` found for ``--gt``, ``--audio`` and the folder of
    ``--templates`` (``gt_check``, ``audio_check``, ``templates_check``); ``silent``: the GT clips whose wav is
    silent (``gt``, ``wav``, ``rms``, ``n_predictions``), whose predictions are left out of SLCC, PLRS, PLRS-c and
    PLRS-e only (a note in each, ``silent_audio``) and scored for the other metrics and the diagnostics."""
    from p3d import metrics
    from p3d.provenance import record
    from p3d.stats import STATISTICS_VERSION

    clusters = df["gt"].to_numpy()
    out: dict[str, Any] = {}
    for key in ("lve", "fdd", "plrs", "plrs_calibrated", "plrs_enrolled"):
        if key in wanted or (key == "plrs_enrolled" and key in df):
            vals = df[key].to_numpy(dtype=np.float64)
            ok = np.isfinite(vals)
            w = df["frames"].to_numpy(dtype=np.float64) if key in FRAME_WEIGHTED_METRICS else None
            value = _num(np.average(vals[ok], weights=None if w is None else w[ok])) if ok.any() else None
            out[key] = {"value": value, "ci95": _clip_ci(vals, clusters, cfg, w),
                        **_counts(vals, clusters),
                        **({"pooled": "over all scored frames (official)"} if key in FRAME_WEIGHTED_METRICS else {})}
    if "plrs_calibrated" in wanted:
        out["plrs_calibrated"].update({
            "chance": 0.0,
            "background_clips": background_clips,
            "background": "per GT clip, the speech (every 5th PLRS speech window, channel 0) of every other "
                          "evaluated GT clip with non-silent audio; p3d.metrics.plrs_calibrated",
        })
    if "plrs_enrolled" in df:
        out["plrs_enrolled"].update({
            "intensity_weight": cfg.intensity_weight,
            "enrolment": "per prediction, PLRS-c - mu |lip amplitude / the mean GT lip amplitude of the speaker's "
                         "other evaluated GT clips (same level where levels exist) - 1|; p3d.metrics.plrs_enrolled",
        })
    if "fdd" in wanted:
        fdd = df["fdd"].to_numpy(dtype=np.float64)
        fdd = fdd[np.isfinite(fdd)]  # the rows of ``value``: one NaN made the whole mean null
        out["fdd"]["absolute"] = _num(np.abs(fdd).mean()) if fdd.size else None
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
        out["slcc"] = _slcc_summary(cfg, df[np.isfinite(df["speech_intensity"].to_numpy(dtype=np.float64))],
                                    gt_df, metrics)
    if silent:
        n = sum(c["n_predictions"] for c in silent)
        note = (f"{n} prediction(s) of {len(silent)} GT clip(s) left out: their audio is silent (RMS < {SILENT_RMS:g}: "
                f"{', '.join(c['wav'] for c in silent[:3])}{', ...' if len(silent) > 3 else ''}), so this metric is "
                "undefined for them (NaN in per_clip.csv)")
        for key in ("slcc", *PLRS_METRICS, "plrs_enrolled"):
            if key in out and out[key].get("computed", True):
                out[key]["notes"] = [note, *out[key].get("notes", [])]
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
        "silent_audio": list(silent or []),
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
            "fps": rates.fps,
            "gt_fps": rates.gt_fps,
            "gt_fps_source": rates.gt_fps_source,
            **(checks or {}),
            "pred_stride": rates.pred_stride,
            "pred_fps_source": rates.pred_fps_source,
            "rates_explicit": rates.explicit,
            "metrics": list(wanted),
            "gt_stride": rates.stride,
            "statistics": STATISTICS_VERSION,
            "ci": "95% percentile bootstrap of the pooled mean, resampling GT clips (p3d.stats.cluster_bootstrap_ci); "
                  "SLCC: recomputed on each resample of the GT clips, a clip's predictions together "
                  "(p3d.metrics.slcc_bootstrap_ci with clusters)",
            "diagnostics": "per_clip.csv columns lip_jerk[_gt] (m/s^3 for metres), lip_hf_energy[_gt] (fraction of "
                           "lip motion energy above 8 Hz), upper_face_motion[_gt] (RMS temporal std), "
                           "lip_amplitude_ratio (prediction / GT lip distance from the template), lip_amplitude[_gt] "
                           "(that distance, length units, each sequence whole); NaN where too short; "
                           "p3d.metrics.diagnostics, not paper metrics",
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
        **_slcc_counts(df, reasons),
        "ci95": [None, None],
    }
    if model_r is not None:
        try:
            lo, hi = metrics.slcc_bootstrap_ci(speech, lip, ident, n_resamples=cfg.bootstrap_resamples, seed=cfg.seed,
                                               clusters=df["gt"].to_numpy())
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


def _slcc_counts(df: Any, reasons: list[str]) -> dict[str, int]:
    """``n_clips`` and ``n_predictions`` of the rows SLCC's r is taken over: a row whose identity-wise z-score is
    undefined (a speaker evaluated on one GT clip has one speech intensity; one row; constant values) is dropped
    from r (:func:`p3d.metrics.slcc`), so it is not counted (a note says how many were dropped)."""
    from p3d.metrics.slcc import slcc_rows_used

    try:
        used = slcc_rows_used(df["speech_intensity"].to_numpy(), df["lip_intensity"].to_numpy(),
                              df["identity"].to_numpy())
    except InputError:  # the value is None with its reason already
        return {"n_clips": 0, "n_predictions": 0}
    if not used.all():
        reasons.append(f"{int((~used).sum())} of {len(used)} prediction(s) left out: their speaker's z-score is "
                       "undefined (one GT clip, one row or constant intensities)")
    return {"n_clips": int(df["gt"][used].nunique()), "n_predictions": int(used.sum())}


def _safe_dict(fn: Any, reasons: list[str], *args: Any) -> dict[Any, float | None]:
    try:
        return dict(fn(*args))
    except InputError as exc:
        reasons.append(f"level-wise: {exc}")
        return {}


def summary_values(summary: dict[str, Any]) -> dict[str, float | None]:
    """The value of each metric a ``summary.json`` (:func:`_summarise`) holds, as :func:`format_summary` prints it:
    ``lve`` (pooled over every scored frame, as the official scripts), ``fdd``, ``mtm_ms`` (mean over the
    predictions with a matched extremum), ``plrs``, ``plrs_calibrated``, ``plrs_enrolled``, ``slcc`` (the
    correlation over all clips); a metric not computed is None, one not asked for is absent. Not the plain mean
    of ``per_clip.csv``'s column: LVE weights clips by their frames and SLCC is no mean."""
    m = summary["metrics"]
    out: dict[str, float | None] = {}
    for key in ("lve", "fdd", "mtm", "plrs", "plrs_calibrated", "plrs_enrolled", "slcc"):
        if key in m:
            out["mtm_ms" if key == "mtm" else key] = m[key].get("ms" if key == "mtm" else "value")
    return out


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
    def metric_line(key: str, label: str, text: Any) -> None:
        """``label`` and ``text(entry)`` for a computed metric, ``label not computed: reason`` for one that was not."""
        if key in m and m[key].get("computed", True) is False:
            lines.append(f"  {label} not computed: {m[key]['reason']}")
        elif key in m:
            lines.append(f"  {label} {text(m[key])}")

    metric_line("mtm", "MTM  ", lambda x: f"{fmt(x['ms'], '.1f')} ms ({fmt(x['frames'], '.3f')} frames at {x['fps']:g} "
                f"fps){ci(x['ci95_ms'], '.1f')}{n(x)}; {x['n_clips_without_match']} prediction(s) without matched extrema")
    metric_line("plrs", "PLRS ", lambda x: f"{fmt(x['value'], '.3f')}{ci(x['ci95'], '.3f')}{n(x)}")

    def background(x: dict[str, Any]) -> str:
        return "" if x.get("background_clips") is None else f" of the {x['background_clips'] - 1} other GT clips"

    metric_line("plrs_calibrated", "PLRS-c", lambda x: f"{fmt(x['value'], '.3f')}{ci(x['ci95'], '.3f')}{n(x)}; "
                f"chance 0 (background: the speech{background(x)})")
    metric_line("plrs_enrolled", "PLRS-e", lambda x: f"{fmt(x['value'], '.3f')}{ci(x['ci95'], '.3f')}{n(x)}; "
                f"intensity weight {x['intensity_weight']:g} (lip amplitude against the speaker's other GT clips)")
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
    silent = summary.get("silent_audio", [])
    if silent:
        lines.append(f"  note: the audio of {len(silent)} GT clip(s) is silent (e.g. {silent[0]['wav']}): their "
                     f"{sum(c['n_predictions'] for c in silent)} prediction(s) are left out of SLCC and PLRS only")
    for s in summary["skipped"][:10]:
        lines.append(f"  skipped {s['pred']}: {s['reason']}")
    if len(summary["skipped"]) > 10:
        lines.append(f"  ... and {len(summary['skipped']) - 10} more skipped (see summary.json)")
    return "\n".join(lines)
