"""``p3d eval``: evaluate a folder of predicted vertex sequences against ground truth.

The official protocol (paper Sec. 6, the released evaluation scripts): one ground-truth clip may be
compared with many predictions, one per conditioning training identity, named
``<gt_stem>_condition_<train_identity>.npy`` (SelfTalk's suffix-less ``<gt_stem>.npy`` too). Ground
truth recorded at ``gt_fps`` is subsampled to the predictions' ``fps`` (VOCASET: 60 -> 30 fps, the
official ``[::2]``).

Per prediction the command computes LVE, FDD, MTM and the lip intensity; across predictions SLCC
(with the data's own SLCC from the ground truth and the Δ between them). It writes
``OUT/per_clip.csv`` and ``OUT/summary.json`` (each metric with a 95% bootstrap CI over clips, counts of
clips evaluated and skipped with reasons, the configuration and provenance) and with ``--plots`` the
MTM matching plot of every clip (paper Fig. S4) under ``OUT/plots/``.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError

log = logging.getLogger(__name__)

ALL_METRICS: tuple[str, ...] = ("lve", "fdd", "mtm", "slcc", "plrs")
DEFAULT_METRICS: tuple[str, ...] = ("lve", "fdd", "mtm", "slcc")


@dataclasses.dataclass
class EvalConfig:
    """Everything ``p3d eval`` needs. Paths are folders unless said otherwise."""

    pred: Path
    gt: Path
    audio: Path | None = None
    templates: Path | None = None
    dataset: str = "auto"
    fps: float = 30.0
    gt_fps: float | None = None
    metrics: tuple[str, ...] | None = None  # None: every default metric whose inputs are given
    topology: str = "flame"
    out: Path | None = None
    plots: bool = False
    lve_variant: str = "max_sq"
    lip_aggregate: str = "rms"
    plrs_checkpoint: Path | None = None
    bootstrap_resamples: int = 2000
    seed: int = 0

    def gt_stride(self) -> int:
        """Frames of GT per prediction frame (``gt_fps / fps``), which must be a positive integer."""
        gt_fps = self.fps if self.gt_fps is None else self.gt_fps
        if self.fps <= 0 or gt_fps <= 0:
            raise InputError(f"frame rates must be positive (--fps {self.fps}, --gt-fps {gt_fps})")
        ratio = gt_fps / self.fps
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise InputError(f"--gt-fps {gt_fps} is not an integer multiple of --fps {self.fps}")
        return int(round(ratio))


@dataclasses.dataclass
class EvalReport:
    per_clip: Any  # pandas.DataFrame, one row per evaluated prediction
    summary: dict[str, Any]
    mtm_results: dict[str, Any]  # prediction stem -> p3d.metrics.MTMResult


def resolve_metrics(cfg: EvalConfig) -> tuple[str, ...]:
    """The metrics to compute: explicit ones are checked for their inputs; the default picks those possible."""
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


def evaluate(cfg: EvalConfig, *, progress: bool = True) -> EvalReport:
    """Evaluate every prediction in ``cfg.pred`` (see the module docstring). Raises InputError on bad input."""
    import pandas as pd
    from tqdm.auto import tqdm

    from p3d import io, metrics
    from p3d.topology import load_topology

    topology = load_topology(cfg.topology)
    wanted = resolve_metrics(cfg)
    stride = cfg.gt_stride()
    pred_files = io.find_npy(cfg.pred, "prediction folder")
    gt_dir = io.vertices_dir(cfg.gt)
    if not gt_dir.is_dir():
        raise InputError(f"{cfg.gt}: ground-truth folder not found")
    audio_dir = io.audio_dir(cfg.audio) if cfg.audio is not None else None
    if audio_dir is not None and not audio_dir.is_dir():
        raise InputError(f"{cfg.audio}: audio folder not found")
    lips = topology.lips
    upper_face = topology.upper_face if "fdd" in wanted else None
    mtm_upper, mtm_lower = topology.mtm_vertices() if "mtm" in wanted else (None, None)
    templates = io.load_templates(cfg.templates, topology.n_vertices) if "fdd" in wanted else {}
    plrs_model = _load_plrs_model(cfg.plrs_checkpoint) if "plrs" in wanted else None

    gt_cache: dict[str, np.ndarray] = {}
    speech_cache: dict[str, tuple[np.ndarray, int]] = {}
    plrs_windows: dict[str, np.ndarray] = {}
    rows: list[dict[str, Any]] = []
    gt_rows: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, str]] = []
    mtm_results: dict[str, Any] = {}

    for pred_path in tqdm(pred_files, desc="p3d eval", unit="clip", disable=not progress):
        name = io.parse_clip_name(pred_path.stem, cfg.dataset)
        gt_path = gt_dir / f"{name.gt_stem}.npy"
        if not gt_path.exists():
            skipped.append({"pred": pred_path.name, "reason": f"ground truth {gt_path.name} not found in {gt_dir}"})
            continue
        pred = io.load_vertices(pred_path, topology)
        if name.gt_stem not in gt_cache:
            gt_cache[name.gt_stem] = io.load_vertices(gt_path, topology)[::stride]
        gt = gt_cache[name.gt_stem]
        if len(pred) < 2 or len(gt) < 2:
            raise InputError(f"{pred_path if len(pred) < 2 else gt_path}: needs at least 2 frames")
        row: dict[str, Any] = {
            "pred": pred_path.name,
            "gt": gt_path.name,
            "identity": name.identity,
            "condition": name.condition,
            "level": name.level,
            "pred_frames": len(pred),
            "gt_frames": len(gt),
        }
        if "lve" in wanted:
            row["lve"] = metrics.lve(pred, gt, lips, variant=cfg.lve_variant)
        if "fdd" in wanted:
            if name.identity not in templates:
                raise InputError(f"{cfg.templates}: no template for identity {name.identity!r} (needed by {pred_path.name})")
            row["fdd"] = metrics.fdd(pred, gt, templates[name.identity], upper_face)
        if "mtm" in wanted:
            res = metrics.mtm(gt, pred, upper=mtm_upper, lower=mtm_lower)
            mtm_results[pred_path.stem] = res
            row["mtm_frames"] = res.mean_frames
            row["mtm_ms"] = res.ms(cfg.fps)
            row["mtm_matches"] = len(res.deltas)
            row["mtm_deltas"] = ";".join(str(int(d)) for d in res.deltas)
        if "slcc" in wanted or "plrs" in wanted:
            wav = _find_wav(audio_dir, name.gt_stem)
            if name.gt_stem not in speech_cache:
                speech_cache[name.gt_stem] = io.load_audio(wav)
        if "slcc" in wanted:
            samples, _ = speech_cache[name.gt_stem]
            row["speech_intensity"] = metrics.speech_intensity(samples)
            row["lip_intensity"] = metrics.lip_intensity(pred, lips, aggregate=cfg.lip_aggregate)
            if name.gt_stem not in gt_rows:
                gt_rows[name.gt_stem] = {
                    "gt": gt_path.name,
                    "identity": name.identity,
                    "level": name.level,
                    "speech_intensity": row["speech_intensity"],
                    "lip_intensity": metrics.lip_intensity(gt, lips, aggregate=cfg.lip_aggregate),
                }
        if "plrs" in wanted:
            if name.gt_stem not in plrs_windows:  # one fbank per GT clip, shared by its predictions
                from p3d.audio import speech_windows

                samples, rate = speech_cache[name.gt_stem]
                plrs_windows[name.gt_stem] = speech_windows(samples, rate, cfg.fps)
            # = metrics.plrs(samples, pred, plrs_model, fps=cfg.fps, sr=rate)
            row["plrs"] = metrics.plrs_from_features(plrs_windows[name.gt_stem], pred, plrs_model)
        rows.append(row)

    if not rows:
        reasons = "; ".join(f"{s['pred']}: {s['reason']}" for s in skipped[:5])
        raise InputError(f"nothing could be evaluated in {cfg.pred} ({len(skipped)} skipped: {reasons})")

    per_clip = pd.DataFrame(rows)
    summary = _summarise(cfg, wanted, per_clip, pd.DataFrame(list(gt_rows.values())), skipped, stride)
    return EvalReport(per_clip=per_clip, summary=summary, mtm_results=mtm_results)


def _find_wav(audio_dir: Path | None, gt_stem: str) -> Path:
    assert audio_dir is not None
    wav = audio_dir / f"{gt_stem}.wav"
    if not wav.exists():
        raise InputError(f"{wav}: audio for clip {gt_stem!r} not found (SLCC/PLRS need one wav per GT clip)")
    return wav


def _load_plrs_model(path: Path | None) -> Any:
    from p3d.models.speech_mesh import load_critic

    assert path is not None
    return _SpeechMemo(load_critic(path))


class _SpeechMemo:
    """The PLRS evaluator, remembering its speech embeddings by input: the predictions of one GT clip (one
    per condition) share its speech windows, and the speech encoder is most of PLRS' cost. Everything
    else is the evaluator's own (attribute access is delegated)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._memo: dict[tuple[Any, ...], Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode_speech(self, x: Any) -> Any:
        import hashlib

        data = x.detach().cpu().numpy()
        key = (tuple(data.shape), str(data.dtype), hashlib.sha1(data.tobytes()).hexdigest())
        if key not in self._memo:
            self._memo[key] = self._model.encode_speech(x)
        return self._memo[key]


def _ci(values: np.ndarray, cfg: EvalConfig) -> list[float | None]:
    from p3d.metrics import bootstrap_ci

    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return [None, None]
    lo, hi = bootstrap_ci(values, n_resamples=cfg.bootstrap_resamples, seed=cfg.seed)
    return [_num(lo), _num(hi)]


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def _summarise(cfg: EvalConfig, wanted: tuple[str, ...], df: Any, gt_df: Any,
               skipped: list[dict[str, str]], stride: int) -> dict[str, Any]:
    from p3d import metrics
    from p3d.provenance import record

    out: dict[str, Any] = {}
    for key in ("lve", "fdd", "plrs"):
        if key in wanted:
            vals = df[key].to_numpy(dtype=np.float64)
            out[key] = {"value": _num(vals.mean()), "ci95": _ci(vals, cfg), "n_clips": int(len(vals))}
    if "fdd" in wanted:
        out["fdd"]["absolute"] = _num(np.abs(df["fdd"].to_numpy(dtype=np.float64)).mean())
    if "mtm" in wanted:
        frames = df["mtm_frames"].to_numpy(dtype=np.float64)
        matched = frames[np.isfinite(frames)]
        ci = _ci(matched, cfg)
        ms_per_frame = 1000.0 / cfg.fps
        out["mtm"] = {
            "frames": _num(matched.mean()) if len(matched) else None,
            "ms": _num(matched.mean() * ms_per_frame) if len(matched) else None,
            "ci95_frames": ci,
            "ci95_ms": [None if c is None else c * ms_per_frame for c in ci],
            "fps": cfg.fps,
            "n_clips_matched": int(len(matched)),
            "n_clips_without_match": int(len(frames) - len(matched)),
        }
    if "slcc" in wanted:
        out["slcc"] = _slcc_summary(cfg, df, gt_df, metrics)
    return {
        "metrics": out,
        "counts": {
            "evaluated": int(len(df)),
            "skipped": len(skipped),
            "ground_truth_clips": int(df["gt"].nunique()),
        },
        "skipped": skipped,
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
            "metrics": list(wanted),
            "gt_stride": stride,
        },
        "provenance": record(),
    }


def _slcc_summary(cfg: EvalConfig, df: Any, gt_df: Any, metrics: Any) -> dict[str, Any]:
    def _safe(fn: Any, *args: Any) -> float | None:
        try:
            return _num(fn(*args))
        except InputError as exc:
            log.warning("SLCC undefined: %s", exc)
            return None

    speech, lip, ident = (df[c].to_numpy() for c in ("speech_intensity", "lip_intensity", "identity"))
    model_r = _safe(metrics.slcc, speech, lip, ident)
    data_r = _safe(metrics.slcc, *(gt_df[c].to_numpy() for c in ("speech_intensity", "lip_intensity", "identity")))
    res: dict[str, Any] = {
        "value": model_r,
        "data_value": data_r,
        "delta": None if model_r is None or data_r is None else metrics.slcc_delta(model_r, data_r),
        "n_rows": int(len(df)),
    }
    if model_r is not None:
        try:
            lo, hi = metrics.slcc_bootstrap_ci(speech, lip, ident, n_resamples=cfg.bootstrap_resamples, seed=cfg.seed)
            res["ci95"] = [_num(lo), _num(hi)]
        except InputError as exc:
            res["ci95"] = [None, None]
            log.warning("SLCC CI undefined: %s", exc)
    if df["level"].notna().any():
        levels = df["level"].to_numpy()
        by_model = _safe_dict(metrics.slcc_by_level, speech, lip, ident, levels)
        by_data = _safe_dict(metrics.slcc_by_level, *(gt_df[c].to_numpy() for c in
                                                      ("speech_intensity", "lip_intensity", "identity", "level")))
        res["by_level"] = {
            str(k): {"value": _num(v), "data_value": _num(by_data.get(k)),
                     "delta": None if _num(by_data.get(k)) is None or _num(v) is None  # NaN: too few rows
                     else metrics.slcc_delta(v, by_data[k])}
            for k, v in by_model.items()
        }
    return res


def _safe_dict(fn: Any, *args: Any) -> dict[Any, float | None]:
    try:
        return dict(fn(*args))
    except InputError as exc:
        log.warning("level-wise SLCC undefined: %s", exc)
        return {}


def write_report(report: EvalReport, out: Path, *, plots: bool = False, fps: float | None = None) -> None:
    """Write ``per_clip.csv``, ``summary.json`` and (``plots``) ``plots/mtm_<pred>.png`` atomically."""
    from p3d.atomic import atomic_open, write_json

    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "per_clip.csv", "w", encoding="utf-8", newline="") as fh:
        report.per_clip.to_csv(fh, index=False)
    write_json(out / "summary.json", report.summary)
    if plots and report.mtm_results:
        from p3d.viz.mtm_plot import save_mtm_plot

        for stem, res in report.mtm_results.items():
            save_mtm_plot(res, out / "plots" / f"mtm_{stem}.png", title=stem, fps=fps)


def format_summary(summary: dict[str, Any]) -> str:
    """A short human-readable summary (what ``p3d eval`` prints)."""
    m = summary["metrics"]
    lines = [f"evaluated {summary['counts']['evaluated']} prediction(s) of "
             f"{summary['counts']['ground_truth_clips']} GT clip(s); skipped {summary['counts']['skipped']}"]

    def fmt(x: float | None, spec: str = ".4g") -> str:
        return "n/a" if x is None else format(x, spec)

    def ci(c: list[float | None], spec: str = ".4g") -> str:
        return "" if c[0] is None else f"  [95% CI {fmt(c[0], spec)}, {fmt(c[1], spec)}]"

    if "lve" in m:
        lines.append(f"  LVE   {fmt(m['lve']['value'])}{ci(m['lve']['ci95'])}")
    if "fdd" in m:
        lines.append(f"  FDD   {fmt(m['fdd']['value'])}{ci(m['fdd']['ci95'])}")
    if "mtm" in m:
        x = m["mtm"]
        lines.append(f"  MTM   {fmt(x['ms'], '.1f')} ms ({fmt(x['frames'], '.3f')} frames at {x['fps']:g} fps)"
                     f"{ci(x['ci95_ms'], '.1f')}; {x['n_clips_without_match']} clip(s) without matched extrema")
    if "plrs" in m:
        lines.append(f"  PLRS  {fmt(m['plrs']['value'], '.3f')}{ci(m['plrs']['ci95'], '.3f')}")
    if "slcc" in m:
        x = m["slcc"]
        lines.append(f"  SLCC  {fmt(x['value'], '.3f')}{ci(x.get('ci95', [None]), '.3f')}; data {fmt(x['data_value'], '.3f')}"
                     f", Δ {fmt(x['delta'], '.3f')}")
        for level, v in x.get("by_level", {}).items():
            lines.append(f"        level {level}: {fmt(v['value'], '.3f')} (data {fmt(v['data_value'], '.3f')}, Δ {fmt(v['delta'], '.3f')})")
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
    p.add_argument("--pred", type=Path, required=True, help="folder of predicted .npy sequences")
    p.add_argument("--gt", type=Path, required=True,
                   help="folder of GT .npy sequences (or a processed-VOCASET root holding vertices_npy/)")
    p.add_argument("--audio", type=Path, help="folder of .wav files named like the GT clips (or a root holding wav/)")
    p.add_argument("--templates", type=Path, help="templates.pkl (subject -> neutral mesh), needed by FDD")
    p.add_argument("--dataset", choices=["auto", "vocaset", "mead", "generic"], default="auto",
                   help="file-name convention (default: auto-detect per file)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the predictions (default 30)")
    p.add_argument("--gt-fps", type=float, default=None,
                   help="frame rate of the GT files (default: --fps; VOCASET's vertices_npy are 60)")
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
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95%% CIs")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = EvalConfig(
        pred=args.pred, gt=args.gt, audio=args.audio, templates=args.templates, dataset=args.dataset,
        fps=args.fps, gt_fps=args.gt_fps, metrics=args.metrics, topology=args.topology, out=args.out,
        plots=args.plots, lve_variant=args.lve_variant, lip_aggregate=args.lip_aggregate,
        plrs_checkpoint=args.plrs_checkpoint, bootstrap_resamples=args.bootstrap, seed=args.seed,
    )
    report = evaluate(cfg, progress=not args.no_progress)
    write_report(report, args.out, plots=args.plots, fps=args.fps)
    print(format_summary(report.summary))
    print(f"wrote {args.out / 'per_clip.csv'} and {args.out / 'summary.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - convenience
    from p3d.cli import main as cli_main

    return cli_main(["eval", *(argv or [])])
