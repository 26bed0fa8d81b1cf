"""The paper's tables from results: Tables 2, 3, 4 and S7 with 95% CIs and the paper's own numbers in separate,
labelled columns; the paired effects of the loss (:func:`loss_effects`) and on the motion diagnostics that explain
them (:func:`diagnostics_effects`); the weight selection on val
(:func:`select_kappa`); machine-readable long forms (:func:`long_form`) and timings.

Every builder takes run results (:class:`~p3d.experiments.records.RunResult`) or arms pooled over seeds
(:class:`~p3d.experiments.records.ArmResult`, :func:`p3d.experiments.summary.arms`); rows are selected by the
experiment's fields (:func:`find`), never by position."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from p3d import paper as paper_numbers
from p3d.errors import InputError
from p3d.experiments.spec import (ABLATION_CRITICS, CONFIG1, CONFIG2, CRITIC_LABELS, LVE_TOLERANCE, MODEL_LABELS,
                                  MODELS, TalkerExperiment)
from p3d.experiments.summary import MEAN_METRICS, arms, paired_difference, runs_of

#: Display units: LVE in 1e-5 m^2 and FDD in 1e-7 m^2 (the paper's scales for VOCASET, metres).
LVE_SCALE, FDD_SCALE = 1e5, 1e7


# -- choosing the weight on the validation split ------------------------------------------------------
def select_kappa(baseline: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]], *,
                 lve_tolerance: float = LVE_TOLERANCE) -> tuple[float, Any]:
    """Choose kappa from validation results: the candidate with the highest val PLRS among those whose val
    LVE is at most ``lve_tolerance`` (relative) above the baseline's; if none is, the smallest kappa.

    Args:
        baseline: :func:`run_experiment` result of the run without critic on the val split.
        candidates: results of the same model with critic ``ours`` and ``relative_weight`` = each kappa.

    Returns:
        (kappa, DataFrame of the evidence: one row per run with kappa, W, the ratio of the weighted
        perceptual loss to the model loss, val MTM / LVE / PLRS / SLCC Delta, the LVE change, chosen).
    """
    import pandas as pd

    if not candidates:
        raise InputError("select_kappa: no candidate results")
    base_lve = baseline["summary"]["lve"]["value"]
    rows = []
    for r in [baseline, *candidates]:
        s, exp = r["summary"], r["experiment"]
        lve = s["lve"]["value"]
        rows.append({
            "model": MODEL_LABELS[exp["model"]], "critic": exp["critic"], "kappa": exp["relative_weight"],
            "W": r["loss_weight"], "W*L_percp / L_model": r["loss_ratio"],
            "val MTM (ms)": s["mtm_ms"]["value"], "val LVE (1e-5 m²)": lve * LVE_SCALE,
            "val PLRS": s["plrs"]["value"], "val PLRS CI low": s["plrs"]["ci"][0],
            "val PLRS CI high": s["plrs"]["ci"][1], "val SLCC Δ": s["slcc"]["all"].get("delta"),
            "LVE change vs baseline": lve / base_lve - 1.0,
        })
    df = pd.DataFrame(rows)
    cand = df.iloc[1:]
    ok = cand[cand["LVE change vs baseline"] <= lve_tolerance]
    pick = ok.loc[ok["val PLRS"].idxmax()] if len(ok) else cand.loc[cand["kappa"].idxmin()]
    kappa = float(pick["kappa"])
    df["chosen"] = [False] + [bool(k == kappa) for k in cand["kappa"]]
    return kappa, df


def weight_table_name(per_model: bool = False) -> str:
    """The name of the loss-weight table in ``tables/`` (``.csv`` and ``.md``): ``loss_weight_selection``, with
    ``per_model`` ``loss_weight_selection_per_model_kappa``. :func:`p3d.experiments.grid.record_weight_choice`
    writes it, :func:`chosen_kappa` reads it."""
    return "loss_weight_selection" + ("_per_model_kappa" if per_model else "")


def chosen_kappa(tables: str | os.PathLike[str], per_model: bool = False) -> float | dict[str, float] | None:
    """The kappa marked ``chosen`` in ``tables/loss_weight_selection.csv`` (written by notebook 06, or by notebook
    07 when it chose the weight itself: :func:`p3d.experiments.grid.config_weight`), or None; with ``per_model``,
    ``{model: kappa}`` from ``loss_weight_selection_per_model_kappa.csv``."""
    import pandas as pd

    path = Path(tables) / f"{weight_table_name(per_model)}.csv"
    if not path.exists():
        return None
    df = pd.read_csv(path)
    if "chosen" not in df:  # a weight fixed in advance (p3d.experiments.grid.choose_weight): no kappa chosen
        return None
    rows = df[df["chosen"].astype(str) == "True"]
    if not len(rows):
        return None
    if per_model:
        labels = {v: k for k, v in MODEL_LABELS.items()}
        return {labels[r["model"]]: float(r["kappa"]) for _, r in rows.iterrows()}
    return float(rows["kappa"].iloc[0])




#: The per-clip columns notebook 05 shows (:func:`per_clip_frame`), those a result has, in this order.
PER_CLIP_COLUMNS = ("pred", "mtm_ms", "lve", "plrs", "fdd", "lip_intensity")


def per_clip_frame(result: Mapping[str, Any], rows: int = 10) -> Any:
    """The first ``rows`` rows of a result's per-clip table (one row per test clip and training-identity condition)
    with the columns of :data:`PER_CLIP_COLUMNS` it has: the prediction file, MTM (ms), LVE and FDD (m², unscaled,
    unlike :func:`summary_frame`), PLRS (absent without an evaluator), lip intensity (m / frame)."""
    per_clip = result["per_clip"]
    return per_clip[[c for c in PER_CLIP_COLUMNS if c in per_clip]].head(rows)


def summary_frame(result: Mapping[str, Any]) -> Any:
    """One result's summary as a small table: metric, value, 95% CI (LVE in 1e-5 m², FDD in 1e-7 m²); ``data``:
    the ground truth's own PLRS / PLRS-c / SLCC on the same clips."""
    import pandas as pd

    s = result["summary"]
    rows = []
    for key, label, scale in (("mtm_ms", "MTM (ms)", 1.0), ("lve", "LVE (1e-5 m²)", LVE_SCALE),
                              ("fdd", "FDD (1e-7 m²)", FDD_SCALE), ("plrs", "PLRS", 1.0),
                              ("plrs_calibrated", "PLRS-c", 1.0)):
        e = s.get(key)
        if e:
            lo, hi = e["ci"]
            rows.append({"metric": label, "value": None if e["value"] is None else e["value"] * scale,
                         "CI low": None if lo is None else lo * scale, "CI high": None if hi is None else hi * scale,
                         "data": ((result["data"]["summary"].get(key) or {}).get("value")
                                  if key in ("plrs", "plrs_calibrated") else None)})
    for lv, e in s.get("slcc", {}).items():
        name = "SLCC" if lv == "all" else f"SLCC level {lv}"
        rows.append({"metric": name, "value": e["value"], "CI low": e["ci"][0], "CI high": e["ci"][1],
                     "data": e.get("data")})
        rows.append({"metric": f"{name} Δ", "value": e.get("delta"), "CI low": e.get("delta_ci", [None])[0],
                     "CI high": e.get("delta_ci", [None, None])[1], "data": None})
    return pd.DataFrame(rows)




# -- tables -------------------------------------------------------------------------------------------
def _fmt(entry: Mapping[str, Any] | None, scale: float = 1.0, digits: int = 3, key: str = "value",
         ci_key: str = "ci") -> str:
    if not entry or entry.get(key) is None:
        return "–"
    v = entry[key] * scale
    ci = entry.get(ci_key) or [None, None]
    if ci[0] is None:
        return f"{v:.{digits}f}"
    return f"{v:.{digits}f} [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"


def find(results: Sequence[Mapping[str, Any]], **match: Any) -> Mapping[str, Any] | None:
    """The result whose experiment has every field in ``match`` (``train`` as a tuple or list); None if none has.
    Several (e.g. two loss weights, or a validation run beside the test one): :class:`InputError`, since a table
    would silently show whichever came first (filter the results first, e.g. :func:`config1_tests`)."""
    found = [r for r in results
             if all((tuple(r["experiment"][k]) == tuple(v)) if k == "train" else r["experiment"].get(k) == v
                    for k, v in match.items())]
    if len(found) > 1:
        names = ", ".join(str(r.get("name", r["experiment"])) for r in found[:3])
        raise InputError(f"{len(found)} results match {match} ({names}): one arm per table cell expected")
    return found[0] if found else None


def config1_tests(results: Sequence[Mapping[str, Any]], train: Sequence[str] = CONFIG1) -> list[Mapping[str, Any]]:
    """The results of Tables 2, 3 and S7: the ``test`` split of synth-voca, trained on ``train`` (fields an
    ``experiment`` leaves out take :class:`TalkerExperiment`'s defaults)."""
    exps = [TalkerExperiment.from_dict(r["experiment"]) for r in results]
    return [r for r, e in zip(results, exps) if e.split == "test" and e.train == tuple(train)
            and e.test in (None, "synth-voca")]


def config2_tests(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The results of Table 4: the ``test`` split of synth-mead."""
    exps = [TalkerExperiment.from_dict(r["experiment"]) for r in results]
    return [r for r, e in zip(results, exps) if e.split == "test" and e.test_corpus == "synth-mead"]


#: The paper's own numbers (arXiv 2503.20308, from :mod:`p3d.paper`), for the labelled reference columns only;
#: never results of p3d. Table 2/3 rows: (MTM ms, LVE, PLRS, SLCC, Delta) on VOCASET; Table 4 rows: (MTM, LVE,
#: PLRS, (SLCC, Delta) at levels 1, 2, 3 and Avg) on MEAD-3D; Table S7: FDD (x 1e-7).
PAPER_TABLE3: dict[tuple[str, str], tuple[float, ...]] = {
    k: (r.mtm_ms, r.lve, r.plrs, r.slcc, r.slcc_delta) for k, r in paper_numbers.TABLE3.items()}
PAPER_DATA_VOCASET = {"plrs": paper_numbers.VOCASET_DATA.plrs, "slcc": paper_numbers.VOCASET_DATA.slcc}
PAPER_DATA_MEAD = {"plrs": paper_numbers.MEAD_DATA.plrs, "slcc": paper_numbers.MEAD_DATA.slcc}
PAPER_TABLE4: dict[tuple[str, str], tuple[Any, ...]] = {
    k: (r.mtm_ms, r.lve, r.plrs, *r.levels) for k, r in paper_numbers.TABLE4.items()}
PAPER_TABLE_S7 = dict(paper_numbers.TABLE_S7)
PAPER_NOTE = ("Columns headed 'paper:' are the paper's own numbers on the real datasets (VOCASET / MEAD-3D), "
              "copied from arXiv 2503.20308 for reference; they are not p3d results and not in the same data or "
              "units (the paper's LVE scale is not stated; FDD x 1e-7).")


def ours_note(preset: str, corpus: str, results: Sequence[Mapping[str, Any]]) -> str:
    s = results[0]["summary"]
    conditions = sorted({r["summary"]["n_predictions"] // max(1, r["summary"]["n_clips"]) for r in results})
    seeds = sorted({int(r["summary"].get("n_seeds", 1)) for r in results})
    if seeds == [1]:
        ci = f"percentile cluster bootstrap over test clips ({s['n_resamples']} resamples)"
    else:
        ci = (f"each value the mean over {' or '.join(map(str, seeds))} training seeds; percentile bootstrap over "
              f"seeds and test clips, crossed ({s['n_resamples']} resamples)")
    if conditions == [1]:
        conditioning = "each predicted under one training identity, rotating over the run's identities"
    else:
        conditioning = f"each predicted under {' or '.join(map(str, conditions))} training identities"
    return (f"p3d at preset `{preset}`, synthetic corpus `{corpus}` (test split: {s['n_clips']} clips, "
            f"{conditioning}). "
            f"Cells: value [95% CI], {ci}. MTM in ms at the model "
            f"frame rate; LVE in 1e-5 m² (max over lip vertices of the squared error, mean over frames); PLRS from "
            f"the independent evaluator (synth-lrs3 half 2); SLCC Δ = |SLCC(model) - SLCC(data)| on the same clips.")


def _row(label: str, r: Mapping[str, Any] | None, level: str = "all") -> dict[str, str]:
    if r is None:
        return {"Method": label, "MTM (ms) ↓": "not run", "LVE ↓": "", "PLRS ↑": "", "SLCC": "", "Δ ↓": ""}
    s = r["summary"]
    sl = s["slcc"].get(level, {})
    return {"Method": label, "MTM (ms) ↓": _fmt(s["mtm_ms"], digits=1), "LVE ↓": _fmt(s["lve"], LVE_SCALE),
            "PLRS ↑": _fmt(s["plrs"]), "SLCC": _fmt(sl, digits=2), "Δ ↓": _fmt(sl, digits=2, key="delta", ci_key="delta_ci")}


def _data_row(label: str, data: Mapping[str, Any] | None, level: str = "all") -> dict[str, str]:
    if data is None:
        return {"Method": label}
    s = data["summary"]
    return {"Method": label, "MTM (ms) ↓": "–", "LVE ↓": "–", "PLRS ↑": _fmt(s["plrs"]),
            "SLCC": _fmt(s["slcc"].get(level), digits=2), "Δ ↓": "–"}


def _paper_cols(values: tuple[float, ...] | None, data: dict[str, Any] | None = None) -> dict[str, str]:
    if data is not None:
        return {"paper: MTM": "–", "paper: LVE": "–", "paper: PLRS": f"{data['plrs']:.3f}",
                "paper: SLCC / Δ": f"{data['slcc']:.2f} / –"}
    if values is None:
        return {"paper: MTM": "", "paper: LVE": "", "paper: PLRS": "", "paper: SLCC / Δ": ""}
    mtm, lve, plrs, slcc, delta = values
    return {"paper: MTM": f"{mtm:.1f}", "paper: LVE": f"{lve:.3f}", "paper: PLRS": f"{plrs:.3f}",
            "paper: SLCC / Δ": f"{slcc:.2f} / {delta:.2f}"}


def _train_match(r: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(r["experiment"]["train"])


def table2(results: Sequence[Mapping[str, Any]], models: Sequence[str] = MODELS, *, train: Sequence[str] = CONFIG1
           ) -> Any:
    """Table 2 (Config 1): the data's own PLRS and SLCC, then each model without and with the loss (critic
    ``ours``); results on the ``test`` split of ``synth-voca``."""
    import pandas as pd

    rows = []
    test = config1_tests(results, train)
    data = test[0]["data"] if test else None
    rows.append({**_data_row("synth-voca (GT data)", data), **_paper_cols(None, PAPER_DATA_VOCASET)})
    for m in models:
        for critic, label in (("none", MODEL_LABELS[m]), ("ours", "  + ours (perceptual loss)")):
            r = find(test, model=m, critic=critic)
            rows.append({**_row(label, r), **_paper_cols(PAPER_TABLE3[(m, critic)])})
    return pd.DataFrame(rows)


def table3(results: Sequence[Mapping[str, Any]], models: Sequence[str] = MODELS, *, train: Sequence[str] = CONFIG1
           ) -> Any:
    """Table 3 (Config 1): per model, the critic ablation none / 3D SyncNet / w/o 2D prior / ours."""
    import pandas as pd

    test = config1_tests(results, train)
    data = test[0]["data"] if test else None
    rows = [{"Model": "synth-voca (data)", "Perceptual loss": "–", **{k: v for k, v in _data_row("", data).items()
                                                                      if k != "Method"},
             **_paper_cols(None, PAPER_DATA_VOCASET)}]
    for m in models:
        for critic in ("none", *ABLATION_CRITICS, "ours"):  # Table 3's row order
            r = find(test, model=m, critic=critic)
            row = _row("", r)
            row.pop("Method")
            rows.append({"Model": MODEL_LABELS[m], "Perceptual loss": CRITIC_LABELS[critic], **row,
                         **_paper_cols(PAPER_TABLE3[(m, critic)])})
    return pd.DataFrame(rows)


def table4(results: Sequence[Mapping[str, Any]], models: Sequence[str] = MODELS) -> Any:
    """Table 4 (Config 2, test ``synth-mead``): per model trained on synth-voca only / + synth-mead /
    + synth-mead + ours, MTM, LVE, PLRS and SLCC / Δ per intensity level and over all levels (Avg)."""
    import pandas as pd

    test = config2_tests(results)
    levels = ["1", "2", "3", "all"]
    data = test[0]["data"] if test else None

    def level_cells(s: Mapping[str, Any] | None, with_delta: bool = True) -> dict[str, str]:
        out = {}
        for lv in levels:
            e = (s or {}).get("slcc", {}).get(lv)
            name = "Avg" if lv == "all" else f"Lv{lv}"
            out[f"SLCC {name}"] = _fmt(e, digits=2)
            if with_delta:
                out[f"Δ {name} ↓"] = _fmt(e, digits=2, key="delta", ci_key="delta_ci")
        return out

    def paper(v: tuple[Any, ...] | None) -> dict[str, str]:
        if v is None:
            return {"paper: MTM / LVE / PLRS": "", "paper: SLCC/Δ Lv1, Lv2, Lv3, Avg": ""}
        return {"paper: MTM / LVE / PLRS": f"{v[0]:.1f} / {v[1]:.3f} / {v[2]:.3f}",
                "paper: SLCC/Δ Lv1, Lv2, Lv3, Avg": ", ".join(f"{a:.2f}/{b:.2f}" for a, b in v[3:])}

    rows = []
    ds = data["summary"] if data else None
    data_cells = {k: ("–" if k.startswith("Δ") else v) for k, v in level_cells(ds).items()}
    rows.append({"Method": "synth-mead (GT data)", "MTM (ms) ↓": "–", "LVE ↓": "–",
                 "PLRS ↑": _fmt(ds["plrs"]) if ds else "–", **data_cells,
                 "paper: MTM / LVE / PLRS": f"– / – / {PAPER_DATA_MEAD['plrs']:.3f}",
                 "paper: SLCC/Δ Lv1, Lv2, Lv3, Avg": ", ".join(f"{a:.2f}/–" for a in PAPER_DATA_MEAD["slcc"])})
    for m in models:
        for key, train, critic, label in (("voca", CONFIG1, "none", f"{MODEL_LABELS[m]} (synth-voca only)"),
                                          ("mead", CONFIG2, "none", "  + synth-mead"),
                                          ("mead+ours", CONFIG2, "ours", "    + ours (perceptual loss)")):
            r = find(test, model=m, critic=critic, train=train)
            s = r["summary"] if r else None
            rows.append({"Method": label, "MTM (ms) ↓": _fmt(s["mtm_ms"], digits=1) if s else "not run",
                         "LVE ↓": _fmt(s["lve"], LVE_SCALE) if s else "", "PLRS ↑": _fmt(s["plrs"]) if s else "",
                         **level_cells(s), **paper(PAPER_TABLE4[(m, key)])})
    return pd.DataFrame(rows)


def table_s7(results: Sequence[Mapping[str, Any]], models: Sequence[str] = MODELS, *,
             train: Sequence[str] = CONFIG1) -> Any:
    """Table S7 (Config 1): FDD (GT minus prediction upper-face dynamics, signed; 1e-7 m²) without / with ours."""
    import pandas as pd

    test = config1_tests(results, train)
    rows = []
    for m in models:
        for critic, label in (("none", MODEL_LABELS[m]), ("ours", "  + ours (perceptual loss)")):
            r = find(test, model=m, critic=critic)
            rows.append({"Model": label, "FDD (1e-7 m²)": _fmt(r["summary"]["fdd"], FDD_SCALE) if r else "not run",
                         "paper: FDD (x 1e-7)": f"{PAPER_TABLE_S7[(m, critic)]:.3f}"})
    return pd.DataFrame(rows)


#: Direction of improvement per metric (+1: higher is better).
BETTER = {"mtm_ms": -1, "lve": -1, "plrs": +1, "plrs_calibrated": +1, "plrs_partial": +1, "plrs_enrolled": +1,
          "slcc_delta": -1, "fdd_abs": -1}
METRIC_LABELS = {"mtm_ms": "MTM (ms)", "lve": "LVE (1e-5 m²)", "plrs": "PLRS", "plrs_calibrated": "PLRS-c",
                 "plrs_partial": "PLRS-p", "plrs_enrolled": "PLRS-e", "slcc_delta": "SLCC Δ"}
#: :data:`BETTER` by the effect tables' metric labels (the ``better`` of :func:`p3d.viz.effects.plot_effects`).
BETTER_BY_LABEL = {METRIC_LABELS[k]: v for k, v in BETTER.items() if k in METRIC_LABELS}


def _check_pairs(pairs: Sequence[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]], what: str) -> None:
    """Refuse, with one line, a pair of :func:`loss_pairs` / :func:`critic_pairs` / :func:`config2_pairs` whose arm is
    missing from the results (None: its runs have not finished, or are not in the grid)."""
    for label, a, b in pairs:
        if a is None or b is None:
            side = "without (the first arm)" if a is None else "with (the second arm)"
            raise InputError(f"{what}: {label}: no result {side}: its runs are not among the results (not run or "
                             "not finished yet); leave the pair out or run it")


def _computed(result: Mapping[str, Any], metric: str) -> bool:
    """Whether every run of ``result`` (a run result or an arm) has per-clip values of ``metric``."""
    return metric == "slcc_delta" or all(metric in r["per_clip"] for r in runs_of(result))


def _with_run_column(result: Mapping[str, Any], add: Any) -> Mapping[str, Any]:
    """``result`` (a run result, an arm, or a plain dict of either) with ``add(per_clip)`` as every run's
    per-clip table; a copy."""
    def one(run: Mapping[str, Any]) -> Mapping[str, Any]:
        pc = add(run["per_clip"])
        return dataclasses.replace(run, per_clip=pc) if dataclasses.is_dataclass(run) else {**run, "per_clip": pc}

    if "runs" in result:
        runs = tuple(one(r) for r in result["runs"])
        return dataclasses.replace(result, runs=runs) if dataclasses.is_dataclass(result) else {**result, "runs": runs}
    return one(result)


def with_plrs_partial(result: Mapping[str, Any], hubness_weight: float) -> Mapping[str, Any]:
    """``result`` (a run result, an arm, or a plain dict of either) with a ``plrs_partial`` column (PLRS-p at
    ``hubness_weight``) added to every run's per-clip table by
    :func:`p3d.analysis.referee_validity.with_plrs_partial` (from its ``plrs`` and ``plrs_calibrated``); a copy."""
    from p3d.analysis.referee_validity import with_plrs_partial as rows_with_plrs_partial

    return _with_run_column(result, lambda pc: rows_with_plrs_partial(pc, hubness_weight))


def with_plrs_enrolled(result: Mapping[str, Any], intensity_weight: float,
                       gt_amplitude: Mapping[str, float]) -> Mapping[str, Any]:
    """``result`` (a run result, an arm, or a plain dict of either) with a ``plrs_enrolled`` column (PLRS-e at
    ``intensity_weight``, :func:`p3d.metrics.plrs.plrs_enrolled`) added to every run's per-clip table; a copy.

    A prediction's lip amplitude is its ``lip_amplitude_ratio`` (a diagnostic of ``p3d eval``) times its GT's
    amplitude (``gt_amplitude``: ``{GT file name: amplitude}``, :func:`p3d.experiments.runs.gt_lip_amplitudes`);
    the speaker's enrolled amplitude is the mean GT amplitude of the speaker's *other* clips in the table
    (:func:`p3d.evaluate.scoring.plrs_enrolled_column`, as ``p3d eval --intensity-weight``), as the battery of
    :func:`p3d.analysis.referee_validity.with_plrs_enrolled` enrols them; of the same intensity level where the
    table has levels (synth-mead, MEAD: louder speech opens the mouth wider, so a loud clip is judged against the
    speaker's loud clips)."""
    import numpy as np

    from p3d.evaluate.scoring import plrs_enrolled_column

    def add(pc: Any) -> Any:
        for col in ("gt", "identity", "lip_amplitude_ratio", "plrs_calibrated"):
            if col not in pc:
                raise InputError(f"per-clip table: no {col!r} column (PLRS-e needs PLRS-c and the diagnostics)")
        missing = sorted(set(pc["gt"]) - set(gt_amplitude))
        if missing:
            raise InputError(f"gt_amplitude: no lip amplitude for {missing[:3]} ({len(missing)} GT clips)")
        gt_amp = np.array([gt_amplitude[g] for g in pc["gt"]], dtype=float)
        amplitudes = pc.assign(lip_amplitude=pc["lip_amplitude_ratio"].to_numpy(dtype=float) * gt_amp,
                               lip_amplitude_gt=gt_amp)
        return pc.assign(plrs_enrolled=plrs_enrolled_column(amplitudes, intensity_weight))

    return _with_run_column(result, add)


def loss_pairs(results: Sequence[Mapping[str, Any]], models: Sequence[str]
               ) -> list[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]]:
    """Table 2's comparisons as :func:`loss_effects` pairs: per model, (its label, the result without a critic,
    critic ``ours``' result), from the results :func:`table2` shows (:func:`config1_tests`). A result missing
    from ``results`` is None (:func:`find`)."""
    test = config1_tests(results)
    return [(MODEL_LABELS[m], find(test, model=m, critic="none"), find(test, model=m, critic="ours"))
            for m in models]


def critic_pairs(results: Sequence[Mapping[str, Any]], models: Sequence[str], prefix: str | None = None
                 ) -> list[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]]:
    """Table 3's comparisons as :func:`loss_effects` pairs: per model and ablation critic
    (:data:`p3d.experiments.spec.ABLATION_CRITICS`), (label, that critic's result, critic ``ours``' result), the
    change read as ours minus the ablation critic. Label ``"<prefix>ours vs <critic>"``; ``prefix`` defaults to
    ``"<model>: "``. From the results :func:`table3` shows (:func:`config1_tests`); a result missing from
    ``results`` is None (:func:`find`)."""
    test = config1_tests(results)
    return [((f"{MODEL_LABELS[m]}: " if prefix is None else prefix) + paper_numbers.critic_comparison(c),
             find(test, model=m, critic=c), find(test, model=m, critic="ours"))
            for m in models for c in ABLATION_CRITICS]


#: Table 4's three training settings as its figures label them (paper Sec. 6.2: VOCASET only, + MEAD-3D, + MEAD-3D
#: and the loss): label -> (training corpora, critic).
CONFIG2_SETTINGS: dict[str, tuple[tuple[str, ...], str]] = {
    "synth-voca only": (CONFIG1, "none"), "+ synth-mead": (CONFIG2, "none"), "+ synth-mead + ours": (CONFIG2, "ours")}


def config2_settings(results: Sequence[Mapping[str, Any]], model: str, **match: Any
                     ) -> dict[str, Mapping[str, Any] | None]:
    """``model``'s result of each of :data:`CONFIG2_SETTINGS` among ``results``, by label (:func:`find` with
    ``match`` too, e.g. ``seed=0``; None where missing)."""
    return {label: find(results, model=model, critic=critic, train=train, **match)
            for label, (train, critic) in CONFIG2_SETTINGS.items()}


def levelwise_slcc_bars(results: Sequence[Mapping[str, Any]], models: Sequence[str]
                        ) -> tuple[dict[str, dict[str, Mapping[str, Any] | None]], Mapping[str, Any]]:
    """The inputs of :func:`p3d.viz.effects.plot_levelwise_slcc` (notebook 07): ``{model label:
    config2_settings(results, model)}`` and the data's own level-wise SLCC on the same test clips (the ``data``
    reference of the first model's synth-voca + synth-mead baseline; an :class:`InputError` when it is missing)."""
    bars = {MODEL_LABELS[m]: config2_settings(results, m) for m in models}
    base = find(results, model=models[0], critic="none", train=CONFIG2) if models else None
    if base is None:
        raise InputError("levelwise_slcc_bars: no synth-voca + synth-mead baseline among the results")
    return bars, base["data"]["summary"]["slcc"]


def config2_pairs(results: Sequence[Mapping[str, Any]], models: Sequence[str], prefix: str | None = None
                  ) -> list[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]]:
    """Table 4's two steps as :func:`loss_effects` pairs, per model (all results tested on ``synth-mead``):
    adding ``synth-mead`` to the training data (``"<prefix>+ synth-mead"``: the ``CONFIG1`` run without a critic,
    then the ``CONFIG2`` one) and adding the loss (``"<prefix>+ ours"``: ``CONFIG2`` without, then with critic
    ``ours``). ``prefix`` defaults to ``"<model>: "``; a result missing from ``results`` is None (:func:`find`)."""
    out = []
    test = config2_tests(results)
    for m in models:
        label = f"{MODEL_LABELS[m]}: " if prefix is None else prefix
        voca = find(test, model=m, critic="none", train=CONFIG1)
        mead = find(test, model=m, critic="none", train=CONFIG2)
        ours = find(test, model=m, critic="ours", train=CONFIG2)
        add_mead, add_loss = paper_numbers.TABLE4_STEPS  # "+ synth-mead", "+ ours"
        out += [(label + add_mead, voca, mead), (label + add_loss, mead, ours)]
    return out


def paper_changes(table: int, model: str) -> dict[tuple[str, str], float]:
    """The paper's own changes for the comparisons of :func:`critic_pairs` (``table`` 3) or :func:`config2_pairs`
    (4) of ``model``: ``{(comparison, metric label): with - without}`` for the metrics the paper reports
    (MTM, LVE, PLRS, SLCC Δ; Table 4's Δ the "Avg" column), in the paper's units (:func:`p3d.paper.effect`)."""
    if table not in (3, 4):
        raise InputError(f"table: expected 3 or 4, got {table!r}")
    rows = paper_numbers.comparison_rows(table, model)
    return {(comparison, METRIC_LABELS[m]): round(paper_numbers.effect(m, *pair), 6)  # the tables' decimals
            for comparison, pair in rows.items() for m in ("mtm_ms", "lve", "plrs", "slcc_delta")}


#: The effect tables of Tables 3 and 4 as notebooks 06 and 07 name them (``results/tables/<stem>.csv``).
EFFECT_TABLES = {3: "table3_critic_effects", 4: "table4_effects"}


def merge_seed_tables(folder: str | os.PathLike[str], models: Sequence[str] = MODELS) -> tuple[Any, Any, list[str]]:
    """One table's effects at several seeds, merged over the models that ``scripts/table_seeds.py`` ran, as
    notebooks 06 / 07 label them (``"FaceFormer: ours vs 3D SyncNet"``): ``folder/<model>/effects.csv`` (the effects
    pooled over the seeds; its labels ``"<Model>, seeds 0-2: <comparison>"``) and ``per_seed.csv`` (each seed's own:
    ``"seed <s>: <comparison>"``). Returns ``(effects, per_seed, merged models)``: ``per_seed`` gains a ``seed``
    column, so that it can be written as ``<stem>_per_seed.csv`` beside the effect table
    (:func:`p3d.claims.seeds.seed_changes`). Values are copied, never recomputed; a model without both files is not
    merged. Raises :class:`InputError` for a label in neither form, pooled effects labelled with another model's
    name, a seed's row repeated, or no model at all."""
    import pandas as pd

    effects, per_seed, merged = [], [], []
    for m in models:
        sub = Path(folder) / m
        if not ((sub / "effects.csv").is_file() and (sub / "per_seed.csv").is_file()):
            continue
        pooled, seeds = pd.read_csv(sub / "effects.csv"), pd.read_csv(sub / "per_seed.csv")
        heads = {str(c).partition(": ")[0] for c in pooled["comparison"]}
        if any(not h.startswith(f"{MODEL_LABELS[m]}, seeds ") for h in heads):
            raise InputError(f"{sub / 'effects.csv'}: labelled {sorted(heads)}, not {MODEL_LABELS[m]}'s "
                             f"(\"{MODEL_LABELS[m]}, seeds 0-N: ...\"): another model's output in {sub}?")
        pooled["comparison"] = [f"{MODEL_LABELS[m]}: {_after_prefix(c, sub / 'effects.csv')}"
                                for c in pooled["comparison"]]
        seed_of = [_after_prefix(c, sub / "per_seed.csv", seed=True) for c in seeds["comparison"]]
        keys = [(s, c, metric) for (s, c), metric in zip(seed_of, seeds["metric"])]
        if len(set(keys)) < len(keys):
            raise InputError(f"{sub / 'per_seed.csv'}: a seed's comparison and metric appear twice "
                             f"(e.g. seed {next(k for k in keys if keys.count(k) > 1)[0]})")
        seeds.insert(1, "seed", [s for s, _ in seed_of])
        seeds["comparison"] = [f"{MODEL_LABELS[m]}: {c}" for _, c in seed_of]
        effects.append(pooled)
        per_seed.append(seeds)
        merged.append(m)
    if not merged:
        raise InputError(f"{folder}: no <model>/effects.csv and per_seed.csv of scripts/table_seeds.py "
                         f"(models looked for: {', '.join(models)})")
    return pd.concat(effects, ignore_index=True), pd.concat(per_seed, ignore_index=True), merged


def _after_prefix(label: str, path: Path, seed: bool = False) -> Any:
    """``"<prefix>: <comparison>"`` -> the comparison; with ``seed``, ``"seed <s>: <comparison>"`` -> (s, it)."""
    head, sep, comparison = str(label).partition(": ")
    if not sep or (seed and not (head.startswith("seed ") and head[5:].isdigit())):
        raise InputError(f"{path}: comparison {label!r} is not labelled as scripts/table_seeds.py labels it")
    return (int(head[5:]), comparison) if seed else comparison


def seed_consistency(pooled: Any, per_seed: Mapping[int, Any],
                     paper: Mapping[tuple[str, str], float] | None = None) -> Any:
    """Effects pooled over seeds beside each seed's own: ``pooled`` and ``per_seed[s]`` are :func:`loss_effects`
    tables of the same pairs whose comparison labels are ``"<prefix>: <comparison>"`` (the prefix up to the first
    ``": "`` is dropped to match rows; one model's effects, so two rows left with the same comparison and metric
    are refused). One row per row of ``pooled``: comparison, metric, the pooled change and
    CI and verdict, ``MDE``: the smallest true change the pooled CI would detect with 80 % power
    (:func:`p3d.stats.minimum_detectable_effect`), ``seeds sharing its sign`` (``"k of n"``, :func:`p3d.stats.seed_agreement`; ``"–"`` when
    undefined), each seed's change and verdict (``seed <s>``), and ``paper's change`` (from ``paper``, e.g.
    :func:`paper_changes`; NaN where the paper has none; the paper's data and units, not p3d's)."""
    import pandas as pd

    from p3d.stats import minimum_detectable_effect, seed_agreement

    def keyed(df: Any) -> dict[tuple[str, str], Any]:
        out: dict[tuple[str, str], Any] = {}
        for _, r in df.iterrows():
            key = (str(r["comparison"]).split(": ", 1)[-1], r["metric"])
            if key in out:  # e.g. "FaceFormer: ours vs 3D SyncNet" and "SelfTalk: ours vs 3D SyncNet"
                raise InputError(f"seed_consistency: two rows compare {key[0]!r} on {key[1]} ({out[key]['comparison']!r}, "
                                 f"{r['comparison']!r}): give one model's effects")
            out[key] = r
        return out

    seeds = {s: keyed(df) for s, df in sorted(per_seed.items())}
    rows = []
    for key, r in keyed(pooled).items():
        changes = [float(seeds[s][key]["change"]) for s in seeds if key in seeds[s]]
        agree = seed_agreement(float(r["change"]), changes)
        row = {"comparison": key[0], "metric": key[1], "change": r["change"], "change CI low": r["change CI low"],
               "change CI high": r["change CI high"], "verdict": r["verdict"],
               "MDE": minimum_detectable_effect(float(r["change CI low"]), float(r["change CI high"])),
               "seeds sharing its sign": "–" if agree is None else f"{agree[0]} of {agree[1]}"}
        for s in seeds:
            got = seeds[s].get(key)
            row[f"seed {s}"] = float("nan") if got is None else float(got["change"])
            row[f"seed {s} verdict"] = "" if got is None else got["verdict"]
        row["paper's change"] = (paper or {}).get(key, float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def loss_effects(pairs: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]], *,
                 metrics: Sequence[str] = ("mtm_ms", "lve", "plrs", "plrs_calibrated", "plrs_partial",
                                           "plrs_enrolled", "slcc_delta"),
                 level: str = "all", n_resamples: int = 1000, hubness_weight: float | None = None,
                 intensity_weight: float | None = None, gt_amplitude: Mapping[str, float] | None = None) -> Any:
    """The paper's claim, tested: for each (label, without, with) pair of results on the same clips, the change
    of each metric with a paired 95% CI, and a verdict: ``better`` / ``worse`` when the CI excludes 0 in that
    direction, else ``no clear change``. A metric that either side did not compute (PLRS-c needs the evaluator
    and the audio) has no row for that pair. PLRS-p (``plrs_partial``) is derived from PLRS and PLRS-c at
    ``hubness_weight`` (:func:`with_plrs_partial`; the weight of
    :func:`p3d.experiments.runs.plrs_hubness_weight`); no row without a weight. PLRS-e (``plrs_enrolled``)
    likewise from PLRS-c and the lip amplitudes at ``intensity_weight`` with ``gt_amplitude``
    (:func:`with_plrs_enrolled`; :func:`p3d.experiments.runs.plrs_intensity_weight`). ``n_seeds``: the training
    seeds paired; ``n_clips``: the test clips the change rests on (:func:`paired_difference`: those both arms were
    scored on at every paired seed, so two tables' rows on different clips show it). A pair with a missing arm
    (None, as :func:`loss_pairs` gives it for runs not among the results) is refused (:class:`InputError`)."""
    import pandas as pd

    if (intensity_weight is None) != (gt_amplitude is None):
        raise InputError("intensity_weight and gt_amplitude: PLRS-e needs both")
    _check_pairs(pairs, "loss_effects")
    rows = []
    for label, a, b in pairs:
        if hubness_weight is not None and all(_computed(x, m) for x in (a, b) for m in ("plrs", "plrs_calibrated")):
            a, b = with_plrs_partial(a, hubness_weight), with_plrs_partial(b, hubness_weight)
        if intensity_weight is not None and all(_computed(x, m) for x in (a, b)
                                                for m in ("plrs_calibrated", "lip_amplitude_ratio")):
            a, b = (with_plrs_enrolled(x, intensity_weight, gt_amplitude) for x in (a, b))
        for metric in metrics:
            if not (_computed(a, metric) and _computed(b, metric)):
                continue
            d = paired_difference(a, b, metric, level=level, n_resamples=n_resamples)
            scale = LVE_SCALE if metric == "lve" else 1.0
            lo, hi = d["ci"]
            if lo is None or d["diff"] is None:
                verdict = "undefined"
            elif lo > 0 or hi < 0:
                verdict = "better" if (d["diff"] > 0) == (BETTER[metric] > 0) else "worse"
            else:
                verdict = "no clear change"
            rows.append({"comparison": label, "metric": METRIC_LABELS[metric], "n_seeds": d.get("n_seeds", 1),
                         "n_clips": d["n_clips"], "without": None if d["a"] is None else d["a"] * scale,
                         "with": None if d["b"] is None else d["b"] * scale,
                         "change": None if d["diff"] is None else d["diff"] * scale,
                         "change CI low": None if lo is None else lo * scale,
                         "change CI high": None if hi is None else hi * scale, "verdict": verdict})
    return pd.DataFrame(rows)


_PER_SEED_COLUMNS = ("comparison", "seed", "metric", "n_seeds", "n_clips", "without", "with", "change",
                     "change CI low", "change CI high", "verdict")


def per_seed_effects(results: Sequence[Mapping[str, Any]],
                     pairs_of: Callable[[Sequence[Any]], Sequence[tuple[str, Any, Any]]], *, n_resamples: int = 1000,
                     **referees: Any) -> Any:
    """Each training seed's own paired effects: for every seed of ``results`` (run results), :func:`loss_effects`
    of ``pairs_of`` (e.g. ``lambda a: critic_pairs(a, models)``) over the arms of that seed's runs alone, with a
    ``seed`` column after ``comparison``. The labels are ``pairs_of``'s, those of the pooled table, so the result is
    written as ``<stem>_per_seed.csv`` beside it (:data:`p3d.tables.PER_SEED_SUFFIX`): the claims then count how
    many seeds' own changes share each pooled change's sign, for every referee (PLRS-e included). A pair that one
    seed lacks (an arm trained at fewer seeds) has no row for that seed; with fewer than two seeds the table has no
    rows (a count over one seed says nothing). ``referees``: :func:`loss_effects`' PLRS-p / PLRS-e options."""
    import pandas as pd

    def seed_of(r: Mapping[str, Any]) -> int:
        return int(r["experiment"]["seed"])

    seeds = sorted({seed_of(r) for r in results})
    frames = []
    for s in seeds if len(seeds) > 1 else ():
        pairs = [(label, a, b) for label, a, b in pairs_of(arms([r for r in results if seed_of(r) == s],
                                                                n_resamples=n_resamples))
                 if a is not None and b is not None]
        df = loss_effects(pairs, n_resamples=n_resamples, **referees)
        if len(df):
            frames.append(df.assign(seed=s))
    if not frames:
        return pd.DataFrame(columns=list(_PER_SEED_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(_PER_SEED_COLUMNS)]


#: The motion diagnostics of ``p3d eval`` (:func:`p3d.evaluate.scoring.motion_diagnostics`, the lip amplitude
#: ratio) that explain a cost: label and display scale (upper-face motion in mm for metres).
DIAGNOSTIC_LABELS = {"lip_jerk": ("lip jerk (m/s³)", 1.0), "lip_hf_energy": ("lip energy above 8 Hz (fraction)", 1.0),
                     "upper_face_motion": ("upper-face motion (mm RMS)", 1e3),
                     "lip_amplitude_ratio": ("lip amplitude / GT's", 1.0)}


def diagnostics_effects(pairs: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]], *,
                        diagnostics: Sequence[str] = tuple(DIAGNOSTIC_LABELS), n_resamples: int = 1000) -> Any:
    """What the loss changes in the motion, to explain a worse (or better) LVE, MTM or FDD: for each (label,
    without, with) pair, each diagnostic's GT value, its value without and with, and the change with the paired
    95% CI of :func:`loss_effects` (seeds and clips). ``direction`` is ``higher`` / ``lower`` when the CI
    excludes 0, else ``no clear change``: a diagnostic has no better side, only the GT's value to be near
    (``GT``: the mean over the clips of ``<name>_gt``; 1 for the amplitude ratio). ``GT gap without / with``:
    |value - GT| of each arm. ``n_seeds`` and ``n_clips``: the seeds and test clips the change rests on, as in
    :func:`loss_effects`. A diagnostic that either side lacks (``p3d eval --no-diagnostics``; upper-face
    motion without an upper-face region) has no row."""
    import numpy as np
    import pandas as pd

    unknown = sorted(set(diagnostics) - set(DIAGNOSTIC_LABELS))
    if unknown:
        raise InputError(f"diagnostics: unknown {unknown} (have {list(DIAGNOSTIC_LABELS)})")
    _check_pairs(pairs, "diagnostics_effects")
    rows = []
    for label, a, b in pairs:
        for name in diagnostics:
            if not (_computed(a, name) and _computed(b, name)):
                continue
            title, scale = DIAGNOSTIC_LABELS[name]
            if name == "lip_amplitude_ratio":
                gt = 1.0
            else:
                pcs = [r["per_clip"] for r in runs_of(a)]
                gt_col = f"{name}_gt"
                gt = (float(np.nanmean(pd.concat(pcs).drop_duplicates("gt")[gt_col].to_numpy(np.float64)))
                      if all(gt_col in pc for pc in pcs) else float("nan"))
            d = paired_difference(a, b, name, n_resamples=n_resamples)
            lo, hi = d["ci"]
            if lo is None or d["diff"] is None:
                direction = "undefined"
            elif lo > 0 or hi < 0:
                direction = "higher" if d["diff"] > 0 else "lower"
            else:
                direction = "no clear change"

            def sc(x: float | None) -> float | None:
                return None if x is None else x * scale

            rows.append({"comparison": label, "diagnostic": title, "n_seeds": d.get("n_seeds", 1),
                         "n_clips": d["n_clips"], "GT": gt * scale,
                         "without": sc(d["a"]), "with": sc(d["b"]), "change": sc(d["diff"]),
                         "change CI low": sc(lo), "change CI high": sc(hi), "direction": direction,
                         "GT gap without": None if d["a"] is None else abs(d["a"] - gt) * scale,
                         "GT gap with": None if d["b"] is None else abs(d["b"] - gt) * scale})
    return pd.DataFrame(rows)


def timing_table(grid: Any) -> Any:
    """Per-task seconds of a grid (training runs and their evaluations) with the wall time."""
    df = grid.tasks.copy()
    df["kind"] = df["task"].str.split(":").str[0]
    return df


def runs_table(results: Sequence[Mapping[str, Any]], *, loss_only: bool = False, tested_on: bool = False,
               timing: bool = False) -> Any:
    """One row per run of a grid's ``results``, in their order: ``run`` (its folder name), ``seed``; with
    ``tested_on`` the corpus of its test split (``tested on``: the experiment's ``test``, else synth-mead when it
    trains on synth-mead, else synth-voca, as :attr:`TalkerExperiment.test_corpus`); ``W``, the absolute
    perceptual-loss weight (Eq. 6; None without a critic), and ``W*L_percp / L_model``, the weighted loss beside the
    model's own (:func:`p3d.experiments.runs.loss_ratio`); with ``timing`` the run's recorded seconds (its
    ``timing`` dict, as :func:`run_timing` reads it). ``loss_only``: only the runs with a critic."""
    import pandas as pd

    rows = []
    for r in results:
        e = r["experiment"]
        if loss_only and e["critic"] == "none":
            continue
        row = {"run": r["name"], "seed": r["seed"]}
        if tested_on:
            row["tested on"] = e["test"] or ("synth-mead" if "synth-mead" in e["train"] else "synth-voca")
        rows.append({**row, "W": r["loss_weight"], "W*L_percp / L_model": r["loss_ratio"],
                     **(r["timing"] if timing else {})})
    return pd.DataFrame(rows)


def grids_timing(grids: Mapping[str, Any]) -> tuple[Any, str]:
    """The per-task seconds of several grids (``{name: GridResult or None}``, a None grid left out, e.g. notebook
    06's selection grid when the weight is fixed in advance) as one table and its note: :func:`timing_table` of each,
    one below the other in ``grids``' order with a ``grid`` column naming it; the note gives each grid's wall time
    (s, rounded) and that a reused run's seconds are of loading it, not of training it."""
    import pandas as pd

    grids = {name: g for name, g in grids.items() if g is not None}
    if not grids:
        raise InputError("grids_timing: expected at least one grid, got none")
    table = pd.concat([timing_table(g).assign(grid=name) for name, g in grids.items()], ignore_index=True)
    note = ("Wall time: " + ", ".join(f"{name} {g.wall_s:.0f} s" for name, g in grids.items())
            + ". Reused runs show the seconds of loading them, not of training.")
    return table, note


def run_timing(results: Sequence[Mapping[str, Any]]) -> Any:
    """Seconds per run: training (as recorded when it trained, in its own process), prediction and evaluation
    of each evaluated split (as recorded when they ran); ``continued_s``: of ``train_s``, the seconds an
    equal-length run spent past its own stop (:func:`p3d.experiments.runs.train_at_equal_length`; empty for a run
    trained to its own stop); ``reused``: the training was found finished;
    ``loss_ratio``: how large the weighted perceptual loss was beside the model's own loss in the second half of
    training (median ``W * L_percp / L_model``, :func:`p3d.experiments.runs.loss_ratio`; empty without a critic)."""
    import pandas as pd

    rows = []
    for r in results:
        t = r["timing"]
        rows.append({"run": r["name"], "evaluated": Path(r["eval_dir"]).name.removeprefix("eval_"),
                     "train_s": t["train_s"], "continued_s": t.get("continued_s"), "predict_s": t["predict_s"],
                     "evaluate_s": t["evaluate_s"], "reused": t["reused"], "loss_ratio": r.get("loss_ratio")})
    return pd.DataFrame(rows)


def long_form(results: Sequence[Mapping[str, Any]]) -> Any:
    """Every result's numbers, machine-readable: one row per (run, evaluated split, metric[, level]). ``seed``:
    the run's training seed, or ``all`` for an arm pooled over its ``n_seeds`` seeds (:func:`p3d.experiments.arms`;
    ``run`` is then the first seed's run name)."""
    import pandas as pd

    rows = []
    for r in results:
        exp = r["experiment"]
        pooled = "runs" in r
        base = {"run": r["name"], "seed": "all" if pooled else int(exp["seed"]),
                "n_seeds": len(r["runs"]) if pooled else 1,
                "model": exp["model"], "critic": exp["critic"], "train": "+".join(exp["train"]),
                "test": TalkerExperiment.from_dict(exp).test_corpus, "split": exp["split"],
                "loss_weight": r["loss_weight"], "n_clips": r["summary"]["n_clips"]}
        for key in MEAN_METRICS:
            e = r["summary"].get(key)
            if e:
                rows.append({**base, "metric": key, "level": None, "value": e["value"], "ci_low": e["ci"][0],
                             "ci_high": e["ci"][1]})
        for lv, e in r["summary"].get("slcc", {}).items():
            rows.append({**base, "metric": "slcc", "level": lv, "value": e["value"], "ci_low": e["ci"][0],
                         "ci_high": e["ci"][1]})
            if "delta" in e:
                rows.append({**base, "metric": "slcc_delta", "level": lv, "value": e["delta"],
                             "ci_low": e["delta_ci"][0], "ci_high": e["delta_ci"][1]})
    return pd.DataFrame(rows)


def write_long_form(path: str | os.PathLike[str], *results: Sequence[Mapping[str, Any]]) -> Path:
    """Write :func:`long_form` of each of ``results`` one below the other to the CSV ``path``, atomically, and
    return it: the run tables :mod:`p3d.claims` reads (``config1_results.csv`` of notebook 06: its arms pooled over
    seeds, then every run; ``config2_results.csv`` of notebook 07)."""
    import pandas as pd

    from p3d.atomic import atomic_open

    path = Path(path)
    long = pd.concat([long_form(r) for r in results], ignore_index=True)
    with atomic_open(path, "w", newline="") as fh:
        long.to_csv(fh, index=False)
    return path


def write_tables(tables: Mapping[str, tuple[Any, str, str | None]], out: str | os.PathLike[str]) -> list[Path]:
    """``{name: (DataFrame, title, note)}`` -> ``out/<name>.csv`` and ``.md`` (:func:`p3d.tables.write_table`)."""
    from p3d.tables import write_table

    paths = []
    for name, (df, title, note) in tables.items():
        paths.extend(write_table(df, Path(out) / name, title=title, note=note))
    return paths
