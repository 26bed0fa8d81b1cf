"""Statistics of results: values with 95% CIs over test clips (:func:`summarise`: one run, a cluster bootstrap over
clips) and over seeds and clips (:func:`summarise_runs`: :func:`p3d.stats.seed_clip_interval`), and paired
differences between two arms (:func:`paired_difference`).

**Confidence intervals.** A run's CI is a percentile bootstrap over *test clips* (each clip's predictions
under every condition move together: a cluster bootstrap), so it reflects how many independent sentences were
tested. An arm with several training seeds combines the clips' bootstrap variance (the clips are the same
sentences for every seed: crossed) with the seeds' sample variance, under Student's t
(:func:`p3d.stats.seed_clip_interval`), so its CI also reflects how much a retrained model differs, honestly for
3-5 seeds. SLCC and its Delta are recomputed on every resample, Delta paired with the data's own SLCC of the same
clips.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from p3d import stats
from p3d.errors import InputError
from p3d.experiments.records import ArmResult, group_arms, runs_of

#: The per-prediction columns of ``p3d eval`` summarised as means over clips (each when present): the paper's MTM, LVE,
#: FDD and PLRS, and PLRS-c (``plrs_calibrated``; beyond the paper, absent when it was not computed).
MEAN_METRICS: tuple[str, ...] = ("mtm_ms", "lve", "fdd", "plrs", "plrs_calibrated")


# -- statistics over test clips (p3d.stats: clip-cluster bootstrap) ---------------------------------------
def _ci(resamples: np.ndarray) -> list[float | None]:
    """95% percentile interval of bootstrap resamples as a JSON list (None, None when undefined)."""
    return list(stats.percentile_interval(resamples, 0.95))


def _num(x: Any) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _slcc_levels(speech: np.ndarray, lip: np.ndarray, ident: np.ndarray, level: np.ndarray | None
                 ) -> dict[str, float]:
    """SLCC over all rows (``"all"``) and, with levels, per level (:func:`p3d.metrics.slcc_by_level`)."""
    from p3d import metrics

    try:
        if level is None:
            return {"all": metrics.slcc(speech, lip, ident)}
        return {str(k): v for k, v in metrics.slcc_by_level(speech, lip, ident, level).items()}
    except InputError:
        return {}


def summarise(per_clip: Any, data_per_clip: Any | None, levels: Mapping[str, Any] | None = None, *,
              n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Table values with 95% CIs from a cluster bootstrap over GT clips.

    Args:
        per_clip: ``p3d eval``'s per-prediction rows (``gt``, ``identity``, ``mtm_ms``, ``lve``, ``fdd``,
            ``plrs``, ``plrs_calibrated`` when computed, ``speech_intensity``, ``lip_intensity``).
        data_per_clip: the data's own rows (:func:`data_reference`), for SLCC's Delta (paired by clip);
            None for the data itself.
        levels: GT stem -> intensity level (None: no level); level-wise SLCC when any level is set.

    Returns:
        ``{"n_clips", "n_predictions", "mtm_ms", "lve", "fdd", "plrs", "plrs_calibrated": {"value", "ci"},
        "slcc": {level or "all": {"value", "ci", "data", "delta", "delta_ci"}}}``; LVE and FDD in m^2 (the
        corpus' squared units), MTM in ms at the model frame rate.
    """
    stems = sorted(per_clip["gt"].str.removesuffix(".npy").unique())
    code_of = {s: i for i, s in enumerate(stems)}
    codes = per_clip["gt"].str.removesuffix(".npy").map(code_of).to_numpy()
    counts = stats.resample_counts(len(stems), n_resamples, seed)
    out: dict[str, Any] = {"n_clips": len(stems), "n_predictions": int(len(per_clip)), "n_resamples": n_resamples}
    for key in MEAN_METRICS:
        if key not in per_clip:
            continue
        point, boot = stats.cluster_mean_resamples(per_clip[key].to_numpy(dtype=np.float64), codes, counts,
                                                   _frame_weights(per_clip, key))
        out[key] = {"value": _num(point), "ci": _ci(boot)}
    if "speech_intensity" not in per_clip:
        return out
    level_of = dict(levels or {})
    has_levels = any(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in level_of.values())

    def arrays(df: Any) -> tuple[np.ndarray, ...]:
        stem = df["gt"].str.removesuffix(".npy")
        lv = stem.map(lambda s: str(level_of.get(s))).to_numpy() if has_levels else None
        return (df["speech_intensity"].to_numpy(np.float64), df["lip_intensity"].to_numpy(np.float64),
                df["identity"].astype(str).to_numpy(), lv, stem.map(code_of).to_numpy())

    model = arrays(per_clip)
    data = None
    if data_per_clip is not None:
        d = data_per_clip[data_per_clip["gt"].str.removesuffix(".npy").isin(list(code_of))]
        data = arrays(d.drop_duplicates("gt"))
    point = _slcc_levels(*model[:4])
    point_data = _slcc_levels(*data[:4]) if data is not None else {}
    boot: dict[str, list[float]] = {k: [] for k in point}
    boot_delta: dict[str, list[float]] = {k: [] for k in point}
    for w in counts:
        rows = np.repeat(np.arange(len(model[4])), w[model[4]])
        r = _slcc_levels(*(a[rows] if a is not None else None for a in model[:4]))
        if data is not None:
            drows = np.repeat(np.arange(len(data[4])), w[data[4]])
            rd = _slcc_levels(*(a[drows] if a is not None else None for a in data[:4]))
        for k in point:
            boot[k].append(r.get(k, np.nan))
            if data is not None:
                boot_delta[k].append(abs(r.get(k, np.nan) - rd.get(k, np.nan)))
    out["slcc"] = {}
    for k, v in point.items():
        entry = {"value": _num(v), "ci": _ci(np.array(boot[k]))}
        if data is not None:
            dv = point_data.get(k)
            entry.update({"data": _num(dv), "delta": _num(abs(v - dv)) if dv is not None else None,
                          "delta_ci": _ci(np.array(boot_delta[k]))})
        out["slcc"][k] = entry
    return out


def _stems(df: Any) -> Any:
    return df["gt"].str.removesuffix(".npy")


def _frame_weights(per_clip: Any, key: str) -> np.ndarray | None:
    """Each row's scored frames for a metric pooled over frames (:data:`p3d.evaluate.config.FRAME_WEIGHTED_METRICS`,
    LVE: as ``p3d eval`` and the official scripts average it), from ``per_clip``'s ``frames``; None otherwise."""
    from p3d.evaluate.config import FRAME_WEIGHTED_METRICS

    if key in FRAME_WEIGHTED_METRICS and "frames" in per_clip:
        return per_clip["frames"].to_numpy(dtype=np.float64)
    return None


def _slcc_delta(df: Any, data: Any, code_of: Mapping[str, int], levels: Mapping[str, Any] | None, level: str,
                w: np.ndarray | None) -> float:
    """|SLCC(df) - SLCC(data)| at ``level`` on the clips drawn with multiplicities ``w`` (None: each once)."""
    codes = _stems(df).map(code_of).to_numpy()
    dcodes = _stems(data).map(code_of).to_numpy()
    rows = np.arange(len(df)) if w is None else np.repeat(np.arange(len(df)), w[codes])
    drows = np.arange(len(data)) if w is None else np.repeat(np.arange(len(data)), w[dcodes])
    lv = None if level == "all" or levels is None else _stems(df).map(lambda s: str(levels.get(s))).to_numpy()[rows]
    dlv = None if lv is None else _stems(data).map(lambda s: str(levels.get(s))).to_numpy()[drows]
    m = _slcc_levels(df["speech_intensity"].to_numpy(np.float64)[rows], df["lip_intensity"].to_numpy(np.float64)[rows],
                     df["identity"].astype(str).to_numpy()[rows], lv)
    d = _slcc_levels(data["speech_intensity"].to_numpy(np.float64)[drows],
                     data["lip_intensity"].to_numpy(np.float64)[drows], data["identity"].astype(str).to_numpy()[drows],
                     dlv)
    return abs(m.get(level, np.nan) - d.get(level, np.nan))


def _paired_runs(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """The runs of two results paired by talker seed (the seeds both have; refused when they share none, one run
    each included; one run each without a recorded seed: paired as they are)."""
    ra, rb = runs_of(a), runs_of(b)
    if len(ra) == 1 and len(rb) == 1 and None in (ra[0].get("experiment", {}).get("seed"),
                                                  rb[0].get("experiment", {}).get("seed")):
        return [(ra[0], rb[0])]
    by_a = {int(r["experiment"]["seed"]): r for r in ra}
    by_b = {int(r["experiment"]["seed"]): r for r in rb}
    common = sorted(set(by_a) & set(by_b))
    if not common:
        raise InputError(f"paired_difference: the two arms share no training seed (seeds {sorted(by_a)} and "
                         f"{sorted(by_b)})")
    return [(by_a[s], by_b[s]) for s in common]


def _paired_rows(pa: Any, pb: Any, metric: str) -> tuple[Any, int]:
    """The predictions of two runs' ``per_clip`` tables paired by file (``pred``: clip and condition) where
    ``metric`` is defined in both: a frame of ``pred``, ``gt``, ``a`` and ``b``; and how many predictions of
    either table were left unpaired or undefined."""
    extra = ["frames"] if "frames" in pa else []
    m = pa[["pred", "gt", metric, *extra]].merge(pb[["pred", metric]], on="pred", suffixes=("_a", "_b"),
                                                 validate="one_to_one")
    m = m.rename(columns={f"{metric}_a": "a", f"{metric}_b": "b"}).astype({"a": np.float64, "b": np.float64})
    ok = np.isfinite(m["a"].to_numpy()) & np.isfinite(m["b"].to_numpy())
    return m[ok].reset_index(drop=True), int(len(pa) + len(pb) - 2 * ok.sum())


def paired_difference(a: Mapping[str, Any], b: Mapping[str, Any], metric: str, *, level: str = "all",
                      n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """``metric(b) - metric(a)`` for two results evaluated on the same clips, with a paired 95% CI.

    ``a`` and ``b`` are run results or arms (:class:`ArmResult`); the runs of two arms are paired by talker
    seed (the seeds both have). The estimate is the mean over the paired seeds of each seed's difference;
    the CI resamples the clips (the same draw for both arms: a paired cluster bootstrap) and, with several
    seeds, adds the spread of the seeds' own differences under Student's t (:func:`p3d.stats.seed_clip_interval`). ``metric``: ``mtm_ms``, ``lve``, ``fdd``,
    ``plrs``, ``plrs_calibrated`` or ``slcc_delta`` (Delta of SLCC at ``level``). Returns
    ``{"a", "b", "diff", "ci", "n_seeds", "n_clips"}``, and for the per-prediction metrics ``n_paired`` and
    ``n_unpaired``: the predictions of a seed are paired by file (clip and condition) and kept where the metric is
    defined in both arms (MTM is undefined where no extrema match, which depends on the model), so that the change
    compares the same predictions; the others are counted in ``n_unpaired``. ``n_clips``: the test clips the change
    rests on (the clips both arms of every paired seed were scored on; for the per-prediction metrics, those of them
    with at least one prediction paired), the clusters of its bootstrap. No pair defined in every seed: no change
    (None) and no CI."""
    pairs = _paired_runs(a, b)
    stem_sets = [set(_stems(ra["per_clip"])) & set(_stems(rb["per_clip"])) for ra, rb in pairs]
    stems = sorted(set.intersection(*stem_sets))
    if not stems:
        raise InputError("paired_difference: the two results share no evaluated clip")
    code_of = {s: i for i, s in enumerate(stems)}

    def sel(df: Any) -> Any:
        return df[_stems(df).isin(list(code_of))]

    if metric != "slcc_delta":
        rows = [_paired_rows(sel(ra["per_clip"]), sel(rb["per_clip"]), metric) for ra, rb in pairs]
        counts = {"n_paired": int(sum(len(m) for m, _ in rows)), "n_unpaired": int(sum(n for _, n in rows)),
                  "n_clips": len(set().union(*(set(_stems(m)) for m, _ in rows)))}
        if any(m.empty for m, _ in rows):
            return {"a": None, "b": None, "diff": None, "ci": [None, None], "n_seeds": len(pairs), **counts}
        weights = [_frame_weights(m, metric) for m, _ in rows]  # the same predictions' frames in both arms
        if len(pairs) == 1:
            m = rows[0][0]
            d = stats.paired_cluster_difference(m["a"].to_numpy(), _stems(m), m["b"].to_numpy(), _stems(m),
                                                confidence=0.95, n_resamples=n_resamples, seed=seed,
                                                weights_a=weights[0], weights_b=weights[0])
            return {"a": d.a, "b": d.b, "diff": d.diff, "ci": [d.low, d.high], "n_seeds": 1, **counts}
        seeds = np.concatenate([np.full(len(m), i) for i, (m, _) in enumerate(rows)])
        d = stats.hierarchical_paired_difference(np.concatenate([m["a"].to_numpy() for m, _ in rows]),
                                                 np.concatenate([m["b"].to_numpy() for m, _ in rows]), seeds,
                                                 np.concatenate([_stems(m).to_numpy() for m, _ in rows]),
                                                 confidence=0.95, n_resamples=n_resamples, seed=seed,
                                                 weights=None if weights[0] is None else np.concatenate(weights))
        return {"a": d.a, "b": d.b, "diff": d.diff, "ci": [d.low, d.high], "n_seeds": len(pairs), **counts}
    # Delta of SLCC: SLCC is recomputed on every resample of the common clips (the same draw for both arms)
    levels = a.get("levels")
    data = sel(runs_of(a)[0]["data"]["per_clip"]).drop_duplicates("gt")
    sides = [[sel(p[i]["per_clip"]) for p in pairs] for i in (0, 1)]
    va = float(np.mean([_slcc_delta(df, data, code_of, levels, level, None) for df in sides[0]]))
    vb = float(np.mean([_slcc_delta(df, data, code_of, levels, level, None) for df in sides[1]]))

    def diff(s: int, w: np.ndarray | None) -> float:
        return (_slcc_delta(sides[1][s], data, code_of, levels, level, w)
                - _slcc_delta(sides[0][s], data, code_of, levels, level, w))

    _, low, high = stats.hierarchical_interval(diff, len(pairs), len(stems), n_resamples=n_resamples, seed=seed)
    return {"a": _num(va), "b": _num(vb), "diff": _num(vb - va), "ci": [low, high], "n_seeds": len(pairs),
            "n_clips": len(stems)}


# -- arms: runs pooled over seeds -------------------------------------------------------------------------------
def summarise_runs(runs: Sequence[Mapping[str, Any]], *, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """:func:`summarise`'s table values for runs of one arm that differ only in their seeds: each value the mean
    over seeds of the run's own value, its 95% CI over seeds and clips (:func:`p3d.stats.seed_clip_interval`). One run: that run's
    summary as it is. Adds ``n_seeds``. A metric that some seed's run did not compute (PLRS-c) is left out."""
    if len(runs) == 1:
        return {**runs[0]["summary"], "n_seeds": 1}
    frames = [r["per_clip"] for r in runs]
    stems = sorted(set.intersection(*(set(_stems(df)) for df in frames)))
    if not stems:
        raise InputError("summarise_runs: the runs share no evaluated clip")
    code_of = {s: i for i, s in enumerate(stems)}
    frames = [df[_stems(df).isin(list(code_of))] for df in frames]
    first = runs[0]["summary"]
    out: dict[str, Any] = {"n_clips": len(stems), "n_predictions": int(np.mean([len(df) for df in frames])),
                           "n_resamples": n_resamples, "n_seeds": len(runs)}
    seeds = np.concatenate([np.full(len(df), i) for i, df in enumerate(frames)])
    codes = np.concatenate([_stems(df).map(code_of).to_numpy() for df in frames])
    for key in MEAN_METRICS:
        if any(key not in df for df in frames):  # each when present: in every seed's run (PLRS-c needs the evaluator)
            continue
        values = np.concatenate([df[key].to_numpy(np.float64) for df in frames])
        weights = [_frame_weights(df, key) for df in frames]
        point, low, high = stats.hierarchical_mean_interval(
            values, seeds, codes, len(stems), n_resamples=n_resamples, seed=seed,
            weights=None if any(w is None for w in weights) else np.concatenate(weights))
        out[key] = {"value": _num(point), "ci": [low, high]}
    if any("slcc" not in r["summary"] for r in runs):  # SLCC when every seed's run has it, as the means above
        return out
    levels = runs[0].get("levels")
    data = runs[0]["data"]["per_clip"]
    data = data[_stems(data).isin(list(code_of))].drop_duplicates("gt")
    has_levels = any(k != "all" for k in first["slcc"])
    lv_map = levels if has_levels else None
    out["slcc"] = {}
    for level in first["slcc"]:
        def value(s: int, w: np.ndarray | None, df_key: str = "model") -> float:
            df = frames[s] if df_key == "model" else data
            codes_ = _stems(df).map(code_of).to_numpy()
            rows = np.arange(len(df)) if w is None else np.repeat(np.arange(len(df)), w[codes_])
            lv = None if lv_map is None else _stems(df).map(lambda x: str(lv_map.get(x))).to_numpy()[rows]
            r = _slcc_levels(df["speech_intensity"].to_numpy(np.float64)[rows],
                             df["lip_intensity"].to_numpy(np.float64)[rows], df["identity"].astype(str).to_numpy()[rows],
                             lv)
            return r.get(level, np.nan)

        point, low, high = stats.hierarchical_interval(value, len(frames), len(stems), n_resamples=n_resamples,
                                                       seed=seed)
        dpoint, dlow, dhigh = stats.hierarchical_interval(
            lambda s, w: _slcc_delta(frames[s], data, code_of, lv_map, level, w), len(frames), len(stems),
            n_resamples=n_resamples, seed=seed)
        data_value = value(0, None, "data")
        out["slcc"][level] = {"value": _num(point), "ci": [low, high], "data": _num(data_value),
                              "delta": _num(dpoint), "delta_ci": [dlow, dhigh]}
    return out


def arms(results: Sequence[Mapping[str, Any]], *, n_resamples: int = 1000, seed: int = 0) -> list[ArmResult]:
    """Run results pooled into one :class:`ArmResult` per arm (:func:`p3d.experiments.records.group_arms`), in
    first-appearance order; tables built from arms show the seed-pooled values."""
    out = []
    for group in group_arms(results):
        r0 = group[0]
        weights = {r["loss_weight"] for r in group}
        ratios = [r["loss_ratio"] for r in group if r["loss_ratio"] is not None]
        out.append(ArmResult(experiment=r0["experiment"], name=r0["name"], runs=tuple(group),
                             seeds=tuple(int(r["experiment"]["seed"]) for r in group),
                             summary=summarise_runs(group, n_resamples=n_resamples, seed=seed), data=r0["data"],
                             levels=r0["levels"], loss_weight=weights.pop() if len(weights) == 1 else None,
                             loss_ratio=float(np.median(ratios)) if ratios else None))
    return out
