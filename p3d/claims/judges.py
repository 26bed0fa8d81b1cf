"""The judges of :mod:`p3d.claims`: each reads result tables and returns an :class:`Assessment`. Claims on
paired effects (Tables 2-4) share :func:`_judge_effects` (aggregation over models and metrics, PLRS judged on
the valid referees); the others read their own table (FDD, the 2D prior, representation properties, MTM's
validity, the baselines' sync, the training cost) or are not testable here."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p3d import paper
from p3d.analysis.training_cost import OLD_MEM_NAMES, PEAK_MEM
from p3d.claims.lengths import (
    EVALUATOR_RUNS,
    critic_runs,
    training_steps,
    training_steps_note,
    unconverged_critics,
    unconverged_runs,
)
from p3d.claims.seeds import (
    SEED_COMPARISONS,
    _effect_table_seed_changes,
    _in_seed_order,
    _run_table_seed_changes,
    seed_changes_of,
)
from p3d.claims.tables import VALIDITY_STEM, _metric_key, _Missing, _pooled, _read, _single, valid_referees
from p3d.claims.verdicts import (
    OFFICIAL_PLRS,
    Assessment,
    Case,
    CaseBasis,
    _deciding,
    _signed,
    aggregate,
    combine_referees,
    plrs_metric,
)
from p3d.registry import CRITICS
from p3d.stats import minimum_detectable_effect, seed_agreement
from p3d.tables import PER_SEED_SUFFIX

# -- judges over paired-effect tables (p3d.experiments: comparison, metric, ..., change CI, verdict) ---------
@dataclass(frozen=True)
class _Spec:
    """What a claim reads from an effect table: ``(label, comparison)`` cases, metric labels, the wanted
    direction (``better`` or ``worse``) and the paper's (without, with) rows per comparison."""

    stem: str
    comparisons: tuple[tuple[str, str], ...]
    metrics: tuple[str, ...]
    want: str = "better"
    paper_rows: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def _want_sign(metric_key: str, want: str) -> int:
    better = -1 if paper.LOWER_IS_BETTER[metric_key] else 1
    return better if want == "better" else -better


#: Referees whose PLRS rows a lip-readability claim shows when they do not decide it (name in the text).
_SHOWN_REFEREES = {OFFICIAL_PLRS: "Official PLRS", "calibrated": "PLRS-c"}


#: The effects whose per-seed values the run tables hold: metric key or PLRS referee -> its metric there (PLRS-p and
#: PLRS-e are computed from the clips in notebook 06 and have no per-seed rows).
_SEED_METRICS = {"mtm_ms": "mtm_ms", "lve": "lve", "fdd": "fdd", "slcc_delta": "slcc_delta", OFFICIAL_PLRS: "plrs",
                 "calibrated": "plrs_calibrated"}


def _seed_note(change: float, per_seed: list[float] | None) -> str:
    """``"per seed: k of n changes share its sign"`` (:func:`seed_agreement`), or empty."""
    agree = seed_agreement(change, per_seed)
    return "" if agree is None else f"per seed: {agree[0]} of {agree[1]} changes share its sign"


def _caveat(unconverged: dict[str, list[str]], comparison: str, also: list[str] | tuple[str, ...] = ()) -> str:
    """Why a case of ``comparison`` cannot decide (:func:`p3d.claims.lengths.unconverged_runs`; ``also``: further
    unconverged runs it rests on, :func:`p3d.claims.lengths.unconverged_critics`), or empty."""
    runs = [*unconverged.get(comparison, ()), *also]
    return "training not converged (`convergence.csv`): " + "; ".join(runs) if runs else ""


#: Beside a case whose arms were trained at one seed (``n_seeds`` 1): its CI is over test clips only, so its power
#: (MDE) is that of re-testing one pair of trained talkers, not of retraining them (run-to-run variation unmeasured).
ONE_SEED_NOTE = "one training seed per arm: its CI spans test clips, not retraining"


def _one_seed(row: Any) -> bool:
    """Whether an effect row says its arms were trained at one seed (its ``n_seeds``; False without the column)."""
    return _count(row, "n_seeds") == 1


def _count(row: Any, column: str) -> int | None:
    """A row's ``n_seeds`` / ``n_clips`` as an int; None without the column (a table written before it) or a value."""
    try:
        value = float(row[column])
    except (KeyError, TypeError, ValueError):
        return None
    return int(value) if math.isfinite(value) else None


def _row_case(row: Any, label: str, metric: str, spec: _Spec, comparison: str, referee: str | None,
              per_seed: dict[tuple[str, str], list[float]] | None = None,
              unconverged: dict[str, list[str]] | None = None, evaluator: list[str] | None = None) -> Case:
    """One case of an effect table's row; ``unconverged`` (:func:`p3d.claims.lengths.unconverged_runs`) and, for a
    PLRS case (``referee`` given), ``evaluator`` (the PLRS evaluator's unconverged runs) make its caveat."""
    key = _metric_key(metric)
    pair = spec.paper_rows.get(comparison)
    paper_change = paper.effect(key, *pair) if pair else None
    change = float(row["change"])
    seed_metric = _SEED_METRICS.get(referee if referee is not None else key)
    note = _seed_note(change, seed_changes_of(per_seed or {}, comparison, str(row["metric"]), seed_metric))
    if not note and _one_seed(row):
        note = ONE_SEED_NOTE
    return Case(f"{label} {row['metric']}", change, float(row["change CI low"]),
                float(row["change CI high"]), _want_sign(key, spec.want), paper_change,
                float(row["without"]), float(row["with"]), referee, note=note,
                caveat=_caveat(unconverged or {}, comparison, (evaluator or []) if referee is not None else []),
                n_seeds=_count(row, "n_seeds"), n_clips=_count(row, "n_clips"))


def _find(df: Any, comparison: str, metric: str, source: str = "effect table") -> Any | None:
    """The row of ``comparison`` and ``metric``: the exact metric label, or the label followed by its unit in
    parentheses (``MTM`` finds ``MTM (ms)``; ``PLRS`` does not find ``PLRS [variant]``). Two different rows:
    :class:`InputError` naming ``source`` (:func:`_single`)."""
    m = df["metric"].astype(str)
    hit = df[(df["comparison"] == comparison) & ((m == metric) | m.str.startswith(metric + " ("))]
    return _single(hit, f"{source}, {comparison} {metric}")


def _judge_effects(spec: _Spec, tables: Path) -> Assessment:
    """Judge a claim over ``spec``'s cases (:mod:`p3d.claims`: aggregation, PLRS referees)."""
    df = _read(tables, spec.stem)
    where = f"{Path(tables) / spec.stem}.csv"
    sources = [spec.stem]
    from_runs, from_effects = _run_table_seed_changes(tables, spec.stem), _effect_table_seed_changes(tables, spec.stem)
    per_seed = _in_seed_order({**from_runs, **from_effects})  # seed_changes, each table read once
    if from_runs:
        sources.append(SEED_COMPARISONS[spec.stem][0])
    if from_effects:
        sources.append(spec.stem + PER_SEED_SUFFIX)
    unconverged = unconverged_runs(tables, spec.stem)
    fixed, missing = [], []
    plrs_wanted = "PLRS" in spec.metrics
    # every referee's PLRS is the evaluator's: its unconverged runs leave every PLRS case undecided
    evaluator = unconverged_critics(tables, EVALUATOR_RUNS, "PLRS evaluator run") if plrs_wanted else []
    for metric in spec.metrics:
        if metric == "PLRS":
            continue
        for label, comp in spec.comparisons:
            row = _find(df, comp, metric, where)
            if row is None:
                missing.append(f"{label} {metric}")
            else:
                fixed.append(_row_case(row, label, metric, spec, comp, None, per_seed, unconverged))
    notes = []
    validity = None
    by_referee: dict[str, list[Case]] = {}
    shown: dict[str, list[Case]] = {}  # the official PLRS and PLRS-c, shown beside whichever referee decides
    if plrs_wanted:
        for ref in _SHOWN_REFEREES:
            for label, comp in spec.comparisons:
                row = _find(df, comp, plrs_metric(ref), where)
                if row is not None:
                    shown.setdefault(ref, []).append(_row_case(row, label, "PLRS", spec, comp, ref, per_seed,
                                                               unconverged, evaluator))
        validity = valid_referees(tables)
        if validity is None:
            referees = [OFFICIAL_PLRS]
            notes.append(f"{VALIDITY_STEM}.csv absent: lip readability judged on the official PLRS, whose "
                         "validity has not been checked")
        else:
            sources.append(VALIDITY_STEM)
            referees, invalid = validity
            notes.append("PLRS referees passing the validity battery: " + (", ".join(referees) or "none")
                         + ("; failing: " + ", ".join(invalid) if invalid else ""))
        for ref in referees:
            cases, gaps = [], []
            for label, comp in spec.comparisons:
                row = _find(df, comp, plrs_metric(ref), where)
                if row is None:
                    gaps.append(label)
                else:
                    cases.append(_row_case(row, label, "PLRS", spec, comp, ref, per_seed, unconverged, evaluator))
            by_referee[ref] = cases
            missing += [f"{label} {plrs_metric(ref)}" for label in gaps]
        if not referees:
            missing.append("PLRS (no valid referee)")
    complete = not missing
    if by_referee:
        per_ref = {ref: aggregate([c.verdict for c in fixed + cases], complete) for ref, cases in by_referee.items()
                   if fixed or cases}
        verdict = combine_referees(per_ref)
        all_cases = fixed + [c for cases in by_referee.values() for c in cases]
    else:
        per_ref = {}
        all_cases = fixed
        verdict = aggregate([c.verdict for c in fixed], complete)
    beside = "".join(f" {_SHOWN_REFEREES[ref]} (shown, not deciding): " + "; ".join(c.text() for c in cases) + "."
                     for ref, cases in shown.items() if ref not in by_referee)
    if not all_cases and plrs_wanted and not by_referee and validity is not None:
        return Assessment("inconclusive", "No PLRS referee passed the validity battery, so lip readability is not "
                          "judged." + beside + " " + ". ".join(notes) + ".", tuple(sources), "no valid PLRS referee")
    if not all_cases:
        return Assessment("not measured", f"no rows for {', '.join(spec.metrics)} in {spec.stem}"
                          + (" (" + "; ".join(notes) + ")" if notes else "") + ".", tuple(sources))
    text = "; ".join(c.text() for c in all_cases) + "."
    text += beside
    if missing:
        text += " Not measured: " + ", ".join(missing) + " (the claim covers them)."
    if notes:
        text += " " + ". ".join(notes) + "."
    lengths = training_steps(tables, spec.stem)
    if lengths or unconverged or evaluator:
        sources.append("convergence")
    if lengths:
        text += " " + training_steps_note(lengths, [comp for _, comp in spec.comparisons],
                                          own_stops=training_steps(tables, spec.stem, own_stop=True))
    if len(per_ref) > 1:
        decided = "; ".join(f"referee {r}: {v}" for r, v in per_ref.items())
        if verdict == "inconclusive" and len(set(per_ref.values())) > 1:
            decided = "the valid PLRS referees disagree (" + decided + ")"
    else:
        decided = _deciding(all_cases, verdict, complete)
        if plrs_wanted and by_referee:
            decided += " (PLRS referee: " + ", ".join(by_referee) + ")"
    return Assessment(verdict, text, tuple(sources), decided, tuple(c.basis for c in all_cases))


def _effects_judge(spec: _Spec) -> Callable[[Path], Assessment]:
    return lambda tables: _judge_effects(spec, tables)


def _table2_spec(metric: str, stem: str = "table2_loss_effects") -> _Spec:
    return _Spec(stem, tuple((paper.MODEL_LABELS[m], paper.MODEL_LABELS[m]) for m in paper.MODELS), (metric,),
                 "better", {paper.MODEL_LABELS[m]: (paper.TABLE2[(m, "none")], paper.TABLE2[(m, "ours")])
                            for m in paper.MODELS})


def _loss_effect(metric: str) -> Callable[[Path], Assessment]:
    """Table 2's paired effects; when the per-model-kappa sensitivity run exists (``make figures EXTRA=1``),
    its verdict is appended (the verdict itself stays the main protocol's)."""
    main = _effects_judge(_table2_spec(metric))

    def judge(tables: Path) -> Assessment:
        a = main(tables)
        try:
            alt = _judge_effects(_table2_spec(metric, "table2_loss_effects_per_model_kappa"), tables)
        except _Missing:
            return a
        if alt.verdict == "not measured":
            return a
        return Assessment(a.verdict, a.evidence + f" Sensitivity, loss weight chosen on val for every model "
                          f"(not deciding): {alt.evidence} (verdict {alt.verdict}).",
                          a.sources + ("table2_loss_effects_per_model_kappa",), a.decided_by, a.cases)

    return judge


def _critic_spec(critic: str) -> _Spec:
    name = paper.critic_comparison(critic)
    rows = {f"{paper.MODEL_LABELS[m]}: {name}": paper.comparison_rows(3, m)[name] for m in paper.MODELS}
    return _Spec("table3_critic_effects", tuple(zip((paper.MODEL_LABELS[m] for m in paper.MODELS), rows)),
                 ("MTM", "PLRS", "SLCC Δ"), "better", rows)


def _mead_spec(metric: str, want: str, step: str) -> _Spec:
    """Table 4: ``step`` ``mead`` (+ MEAD-3D vs VOCASET only) or ``ours`` (+ the loss vs + MEAD-3D)."""
    label = list(paper.TABLE4_STEPS)[0 if step == "mead" else 1]  # "+ synth-mead", "+ ours"
    rows = {f"{paper.MODEL_LABELS[m]}: {label}": paper.comparison_rows(4, m)[label] for m in paper.MODELS}
    return _Spec("table4_effects", tuple(zip((paper.MODEL_LABELS[m] for m in paper.MODELS), rows)), (metric,),
                 want, rows)


# -- individual judges -------------------------------------------------------------------------------
def _fdd(tables: Path) -> Assessment:
    """|FDD| with vs without the loss, per model. The table has per-condition CIs, not a paired one: the
    difference's CI is approximated as change +- sqrt(h_without^2 + h_with^2) (independent arms, normal; wider
    than the paired interval when the arms are positively correlated, so conservative). Arms trained at one seed
    (``n_seeds`` 1): the case says so (:data:`ONE_SEED_NOTE`), as the effect tables' cases do."""
    df = _pooled(_read(tables, "config1_results"))
    df = df[(df["split"] == "test") & (df["metric"] == "fdd") & (df["train"] == "synth-voca")]
    cases, missing = [], []
    scale = 1e7
    unconverged = unconverged_runs(tables, "table2_loss_effects")  # the same arms: without / with the loss
    for m in paper.MODELS:
        sub = df[df["model"] == m]
        where = f"{Path(tables) / 'config1_results'}.csv, {paper.MODEL_LABELS[m]} FDD"
        b, o = (_single(sub[sub["critic"] == c], f"{where} ({c})") for c in ("none", "ours"))
        if b is None or o is None:
            missing.append(paper.MODEL_LABELS[m])
            continue
        hb, ho = (b["ci_high"] - b["ci_low"]) / 2 * scale, (o["ci_high"] - o["ci_low"]) / 2 * scale
        change = (abs(o["value"]) - abs(b["value"])) * scale
        half = math.hypot(hb, ho)
        n_seeds = _arms_count(b, o, "n_seeds")
        cases.append(Case(f"{paper.MODEL_LABELS[m]} |FDD| (1e-7 m²)", change, change - half, change + half, -1,
                          paper.TABLE_S7[(m, "ours")] - paper.TABLE_S7[(m, "none")],
                          abs(b["value"]) * scale, abs(o["value"]) * scale,
                          note=ONE_SEED_NOTE if n_seeds == 1 else "",
                          caveat=_caveat(unconverged, paper.MODEL_LABELS[m]),
                          n_seeds=n_seeds, n_clips=_arms_count(b, o, "n_clips")))
    if not cases:
        return Assessment("not measured", "no FDD rows in config1_results", ("config1_results",))
    complete = not missing
    verdict = aggregate([c.verdict for c in cases], complete)
    note = (" CIs of the change: independent-arms approximation from the per-condition CIs (conservative). "
            "'Similar' cannot be shown without an equivalence margin, which the paper does not give: an FDD that "
            "does not change clearly is inconclusive, not reproduced. The synthetic face's upper face moves "
            "little, so GT FDD is near zero and any predicted upper-face motion raises it.")
    if missing:
        note += " Not measured: " + ", ".join(missing) + "."
    # convergence.csv decides which cases cannot decide (their caveat): a source, as for the effect tables' claims
    read_convergence = bool(unconverged) or bool(training_steps(tables, "table2_loss_effects"))
    return Assessment(verdict, "; ".join(c.text() for c in cases) + "." + note,
                      ("config1_results",) + (("convergence",) if read_convergence else ()),
                      _deciding(cases, verdict, complete), tuple(c.basis for c in cases))


def _arms_count(a: Any, b: Any, column: str) -> int | None:
    """The ``n_seeds`` / ``n_clips`` of two arms' rows of a run table when they agree; None otherwise (or unknown)."""
    ca, cb = _count(a, column), _count(b, column)
    return ca if ca == cb else None


def _wilson(k: float, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(int(round(k)), n).proportion_ci(method="wilson")
    return ci.low, ci.high


def _retrieval(tables: Path) -> dict[str, tuple[float, float, float, int, float]]:
    out = {}
    for name in CRITICS:
        try:
            df = _read(tables, f"stage2_retrieval_{name}")
        except _Missing:
            continue
        r = df.iloc[0]
        n = int(r["windows"])
        lo, hi = _wilson(r["speech->mesh R@1"] * n, n)
        out[name] = (float(r["speech->mesh R@1"]), lo, hi, n, float(r["chance R@1"]))
    return out


def _two_d_prior(tables: Path) -> Assessment:
    """Cases: held-out retrieval, ours minus w/o 2D prior (difference CI from the two Wilson CIs, independent
    arms; critic pipeline 0's critics, notebook 03: inconclusive when one of them, or ours' stage 1, did not
    converge), and Table 3's ours-vs-w/o-2D-prior effects; the GT-pair loss gap (medians, no CI) is shown only."""
    ret = _retrieval(tables)
    sources = ["stage2_retrieval_ours", "stage2_retrieval_no2d", "fig_s6_s7_medians", "table3_critic_effects"]
    cases, parts, missing = [], [], []
    if "ours" in ret and "no2d" in ret:
        (o, olo, ohi, n, chance), (w, wlo, whi, _, _) = ret["ours"], ret["no2d"]
        d = o - w
        half = math.hypot((ohi - olo) / 2, (whi - wlo) / 2)
        critics = unconverged_critics(tables, critic_runs("ours", loss=False) + critic_runs("no2d", loss=False))
        cases.append(Case("held-out speech->mesh R@1, ours minus w/o 2D prior", d, d - half, d + half, 1, None, w, o,
                          note=f"n={n} windows, chance {chance:.2%}; CI from the two arms' Wilson CIs, "
                               "independent arms", caveat=_caveat({}, "", critics)))
        if critics:
            sources.append("convergence")
    else:
        missing.append("held-out retrieval")
    try:
        med = _read(tables, "fig_s6_s7_medians").set_index(["critic", "split"])
        gap = {c: med.loc[(c, "test"), "loss"] - med.loc[(c, "train"), "loss"] for c in ("ours", "no2d")}
        parts.append(f"GT-pair loss test-train gap ours {gap['ours']:.2f} vs w/o 2D prior {gap['no2d']:.2f} "
                     "(medians, no CI: shown, not deciding)")
    except (_Missing, KeyError):
        pass
    try:
        loss = _judge_effects(_critic_spec("no2d"), tables)
    except _Missing:
        loss = None
    if loss is None or loss.verdict == "not measured":  # the claim's "helps less" (Table 3): a part not measured
        missing.append("Table 3 (as a loss)")
    if not cases and (loss is None or loss.verdict == "not measured"):
        return Assessment("not measured", "no retrieval or critic tables", tuple(sources))
    verdicts = [c.verdict for c in cases]
    measured_loss = loss is not None and loss.verdict != "not measured"
    if measured_loss:
        verdicts.append(loss.verdict)
        sources += [s for s in loss.sources if s not in sources]
        parts.append(f"As a loss vs w/o 2D prior (change = ours - w/o 2D prior): {loss.evidence}")
    verdict = aggregate(verdicts, not missing)
    # 'decided by' names the parts that set the claim's verdict: a part with another verdict (e.g. a reproduced
    # retrieval beside an inconclusive loss) did not decide it
    decided = [_deciding(cases, verdict, True)] if cases else []
    if measured_loss and loss.verdict == verdict:
        decided.append(f"as a loss: {loss.decided_by}")
    if missing and verdict == "inconclusive":
        decided.append("not measured: " + ", ".join(missing))
    text = "; ".join(c.text() for c in cases)
    text = " ".join(p if p.endswith(".") else p + "." for p in ([text] if text else []) + parts)
    if missing:
        text += " Not measured: " + ", ".join(missing) + "."
    judged = tuple(c.basis for c in cases) + (loss.cases if loss is not None and loss.verdict != "not measured" else ())
    return Assessment(verdict, text, tuple(sources), "; ".join(d for d in decided if d), judged)


def _pass_fail(value: Any) -> bool | None:
    """A ``shows`` cell of ``representation_properties`` as a pass (True) or fail (False), also when it reads back as
    text (a column with another text cell); None for an empty cell (NaN) or anything else: no result, not a pass."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return bool(value) if type(value).__name__ in ("bool", "bool_") else None


def _property(name: str, control_matters: bool) -> Callable[[Path], Assessment]:
    """A representation property: the table reports whether its test passed (no interval). Passed:
    reproduced; not passed: inconclusive; inconclusive either way when critic ``ours`` of pipeline 0 (notebook 04)
    or its stage 1 did not converge (``convergence.csv``). When the no-learning control passes too, the evidence
    says the property is not distinctive (the claim is about the learned space, which still shows it)."""
    def judge(tables: Path) -> Assessment:
        df = _read(tables, "representation_properties")
        o = _single(df[(df["critic"] == "ours") & (df["property"] == name)],
                    f"{Path(tables) / 'representation_properties'}.csv, ours {name}")
        if o is None:
            return Assessment("not measured", f"no '{name}' row for ours", ("representation_properties",))
        shows = _pass_fail(o["shows"])
        if shows is None:  # empty (NaN) or not a pass / fail: no result, no pass
            return Assessment("not measured", f"the '{name}' test of ours has no pass / fail result "
                              f"({o['shows']!r})", ("representation_properties",))
        critics = unconverged_critics(tables, critic_runs("ours", loss=False))
        case = Case(f"ours, {name}", passed=bool(shows), note=str(o["evidence"]), caveat=_caveat({}, "", critics))
        text = case.text() + "."
        ctrl = df[(df["critic"].str.startswith("raw")) & (df["property"] == name)]
        if control_matters and not ctrl.empty and _pass_fail(ctrl.iloc[0]["shows"]) is True:
            text += (f" Not distinctive: the no-learning control (raw inputs) shows it too: "
                     f"{ctrl.iloc[0]['evidence']}.")
        return Assessment(case.verdict, text, ("representation_properties",) + (("convergence",) if critics else ()),
                          f"the '{name}' test of representation_properties (pass / fail, no interval)", (case.basis,))

    return judge


def _temporal(tables: Path) -> Assessment:
    """Similarity at offset 0 minus the mean at |offset| >= 5 frames, its CI over clips of the per-clip difference
    (``offset_similarity``'s ``vs_far``): stage 2 (ours), and stage 1 (Fig. S1a) when present. A table written
    before the per-clip difference existed is judged on the CI at 0 with the far mean taken as fixed, and the
    case says so. A case whose critic (``ours`` and its stage 1, pipeline 0: notebook 04) or stage 1 did not converge
    (``convergence.csv``) is inconclusive."""
    fixed_note = "far mean taken as fixed (the table has no per-clip difference)"
    df = _read(tables, "fig5a_offset_summary").set_index("critic")
    if "ours" not in df.index:
        return Assessment("not measured", "no row for ours", ("fig5a_offset_summary",))
    r = df.loc["ours"]
    far = float(r["mean sim at |offset| >= 5"])
    label = "stage 2 (ours) speech-mesh cosine, offset 0 minus |offset| >= 5"
    peak = f"peak at offset {int(r['peak offset'])}"
    stage2, stage1 = (_caveat({}, "", unconverged_critics(tables, runs))
                      for runs in (critic_runs("ours", loss=False), ("stage1",)))
    if "sim at 0 minus far" in r.index:
        cases = [Case(label, float(r["sim at 0 minus far"]), float(r["sim at 0 minus far CI low"]),
                      float(r["sim at 0 minus far CI high"]), 1, None, far, float(r["sim at 0"]), note=peak,
                      caveat=stage2)]
    else:
        cases = [Case(label, r["sim at 0"] - far, r["sim at 0 CI low"] - far, r["sim at 0 CI high"] - far, 1, None,
                      far, float(r["sim at 0"]), note=f"{peak}; {fixed_note}", caveat=stage2)]
    try:
        s1 = _read(tables, "fig_s1a_offset_similarity").set_index("offset")
        far1 = float(s1[s1.index.to_series().abs() >= 5]["mean"].mean())
        label1 = "stage 1 speech-video cosine (Fig. S1a), offset 0 minus |offset| >= 5"
        clips1 = _count(s1.loc[0], "n_clips")
        if "vs_far" in s1.columns:
            cases.append(Case(label1, s1.loc[0, "vs_far"], s1.loc[0, "vs_far_ci_low"], s1.loc[0, "vs_far_ci_high"],
                              1, None, far1, float(s1.loc[0, "mean"]), n_clips=clips1, caveat=stage1))
        else:
            cases.append(Case(label1, s1.loc[0, "mean"] - far1, s1.loc[0, "ci_low"] - far1,
                              s1.loc[0, "ci_high"] - far1, 1, None, far1, float(s1.loc[0, "mean"]), note=fixed_note,
                              n_clips=clips1, caveat=stage1))
    except (_Missing, KeyError):
        pass
    verdict = aggregate([c.verdict for c in cases])
    return Assessment(verdict, "; ".join(c.text() for c in cases) + ".",
                      ("fig5a_offset_summary", "fig_s1a_offset_similarity")
                      + (("convergence",) if any(c.caveat for c in cases) else ()), _deciding(cases, verdict, True),
                      tuple(c.basis for c in cases))


def _mead_loss(tables: Path) -> Assessment:
    return _judge_effects(_mead_spec("PLRS", "better", "ours"), tables)


#: The slopes of MTM against an injected offset (ms per ms) that count as measuring its degree (claim 14).
MTM_SLOPE_BAND: tuple[float, float] = (0.8, 1.2)


def _mtm_validity(tables: Path) -> Assessment:
    """The slope of MTM against the injected offset (ms per ms). The paper: "MTM accurately captures the degree of
    temporal mismatch" (Fig. S5), so the slope should be about 1: ``reproduced`` when its CI lies within
    :data:`MTM_SLOPE_BAND`, ``contradicted`` when it lies entirely outside it (MTM moves with the offset, or not,
    but does not measure its degree), else ``inconclusive``."""
    r = _read(tables, "fig_s5_slope").iloc[0]
    low, high = MTM_SLOPE_BAND
    case = Case("slope of MTM vs injected offset (ms per ms)", r["slope"], r["ci_low"], r["ci_high"], 1, None,
                n_clips=_count(r, "n_clips"), note=f"r = {r['r']:.3f}, {int(r['n_clips'])} GT test clips, offsets "
                     f"{paper.FIG_S5_OFFSET_FRAMES[0]}-{paper.FIG_S5_OFFSET_FRAMES[1]} frames")
    if not (math.isfinite(float(r["ci_low"])) and math.isfinite(float(r["ci_high"]))):
        verdict = "inconclusive"
    elif low <= r["ci_low"] and r["ci_high"] <= high:
        verdict = "reproduced"
    elif r["ci_high"] < low or r["ci_low"] > high:
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    where = {"reproduced": "lies within", "contradicted": "lies outside"}.get(verdict, "straddles or lacks")
    # the slope and its CI, not Case.text()'s "change" and MDE: the rule tests the CI against the band, not against 0,
    # so the MDE (power against a zero slope) is not this test's power
    text = f"{case.label}: {_signed(case.change)} [{_signed(case.low)}, {_signed(case.high)}] ({case.note})"
    return Assessment(verdict, text + f". A measure of the degree has slope 1: the CI "
                      f"{where} [{low}, {high}], {verdict}.", ("fig_s5_slope",),
                      f"the slope's CI against [{low}, {high}]", (case.basis,))


_DIFF = re.compile(r"PLRS minus LVE, rho with the oracle \((?P<scope>[^,]+),[^)]*\): "
                   r"(?P<d>[+-]?[\d.]+) \[(?P<lo>[+-]?[\d.]+), (?P<hi>[+-]?[\d.]+)\]")


def _plrs_people(tables: Path) -> Assessment:
    text = (f"Needs human rankings ({paper.TABLE_S3.participants} participants in the paper); none collected here "
            "(`p3d study` builds the study).")
    sources = ["metric_validation_spearman"]
    try:
        df = _read(tables, "metric_validation_spearman").set_index(["metric", "scope"])
        p, lve = df.loc[("plrs", "pooled")], df.loc[("lve", "pooled")]
        text += (f" Proxy, a viseme oracle instead of people (notebook 08): Spearman rho PLRS {p['rho']:.2f} "
                 f"[{p['ci_low']:.2f}, {p['ci_high']:.2f}] vs LVE {lve['rho']:.2f} [{lve['ci_low']:.2f}, "
                 f"{lve['ci_high']:.2f}] over {int(p['n_sequences'])} sequences")
        diffs = []
        try:
            for line in _read(tables, "metric_validation_findings")["finding"]:
                m = _DIFF.search(str(line))
                if m:
                    diffs.append((m["scope"], float(m["d"]), float(m["lo"]), float(m["hi"])))
            sources.append("metric_validation_findings")
        except _Missing:
            pass
        if diffs:
            text += "; PLRS minus LVE (paired clip bootstrap): " + ", ".join(
                f"{sc} {d:+.2f} [{lo:+.2f}, {hi:+.2f}] (MDE {minimum_detectable_effect(lo, hi):.2f})"
                for sc, d, lo, hi in diffs)
            agree = all(lo > 0 for _, _, lo, _ in diffs)
        else:
            agree = p["ci_low"] > lve["ci_high"]
        paper_diff = paper.TABLE_S3.rho["plrs"] - paper.TABLE_S3.rho["lve"]
        text += (f" (the paper's difference with people: {paper_diff:+.3f}). The proxy "
                 + ("agrees with the claim (PLRS closer to the oracle than LVE)." if agree else
                    "does not separate PLRS from LVE."))
    except (_Missing, KeyError):
        pass
    return Assessment("not testable here", text, tuple(sources), "needs people (the oracle proxy is shown only)")


def _baseline_sync(tables: Path) -> Assessment:
    """Rule: per model, ``reproduced`` when the baseline's MTM CI lies at or below the top of the paper's band
    (Sec. 3, Fig. S8: "reasonable temporal sync", 50-60 ms on VOCASET, close to the 50 ms threshold of noticeable
    asynchrony; a lower MTM is tighter sync, which reaches it all the more, and the synthetic corpus' absolute
    MTM is not VOCASET's), ``contradicted`` when it lies entirely above the band, ``inconclusive`` when it
    straddles the top; aggregated as the other claims."""
    lo_band, hi_band = paper.BASELINE_MTM_BAND_MS
    df = _pooled(_read(tables, "config1_results"))
    df = df[(df["split"] == "test") & (df["metric"] == "mtm_ms") & (df["critic"] == "none")
            & (df["train"] == "synth-voca")]
    parts, verdicts, missing, judged = [], {}, [], []
    for m in paper.MODELS:
        r = _single(df[df["model"] == m],
                    f"{Path(tables) / 'config1_results'}.csv, {paper.MODEL_LABELS[m]} baseline MTM")
        if r is None:
            missing.append(paper.MODEL_LABELS[m])
            continue
        if r["ci_high"] <= hi_band:
            v = "reproduced"
        elif r["ci_low"] > hi_band:
            v = "contradicted"
        else:
            v = "inconclusive"
        verdicts[paper.MODEL_LABELS[m]] = v
        judged.append(CaseBasis(f"{paper.MODEL_LABELS[m]} baseline MTM", None, _count(r, "n_seeds"),
                                _count(r, "n_clips")))
        parts.append(f"{paper.MODEL_LABELS[m]} {r['value']:.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}] ms "
                     f"(paper {paper.TABLE2[(m, 'none')].mtm_ms:.1f}), {v}")
    if not parts:
        return Assessment("not measured", "no baseline MTM rows", ("config1_results",))
    verdict = aggregate(list(verdicts.values()), not missing)
    # the models whose verdict is the claim's (an inconclusive claim measured for fewer models: those not measured)
    decided = ", ".join(k for k, v in verdicts.items() if v == verdict)
    if missing and verdict == "inconclusive":
        decided = "; ".join(d for d in (decided, "not measured: " + ", ".join(missing)) if d)
    text = ("Baseline MTM on synth-voca test: " + "; ".join(parts) + f" (rule: the 95 % CI at or below the top of the "
            f"paper's {lo_band:.0f}-{hi_band:.0f} ms band, i.e. sync at least as tight: reproduced; entirely above "
            f"it: contradicted; else inconclusive; the band is VOCASET's, not comparable in absolute terms). "
            "An absolute value on the synthetic corpus against the paper's on VOCASET: read it as a sanity check of the scale.")
    if missing:
        text += " Not measured: " + ", ".join(missing) + "."
    return Assessment(verdict, text, ("config1_results",), f"baseline MTM CI vs the band: {decided}", tuple(judged))


#: Table S8's column of the ratio's 95 % interval over measurement rounds (:func:`p3d.analysis.training_cost.table_s8`).
_S8_CI = "x without loss: 95 % CI over rounds"


def _overhead(tables: Path) -> Assessment:
    """Rule, with the interval over measurement rounds (several rounds, alternating order): the time ratio with /
    without the loss (cached speech embeddings) has its 95 % CI above 1 for every model measured: reproduced; below
    1 for any: contradicted; otherwise inconclusive. Without it (one round): every ratio > 1 is reproduced, else
    inconclusive (a ratio <= 1 is timing noise, not a free loss)."""
    df = _read(tables, "table_s8_training_cost")
    # a table written before the memory columns said MiB calls them "(MB)"; their values are MiB too
    df = df.rename(columns={old: new for old, new in OLD_MEM_NAMES.items() if new not in df.columns})
    need = {"Method", "x without loss", PEAK_MEM}
    if not need <= set(df.columns):
        return Assessment("not measured", f"table_s8_training_cost lacks {sorted(need - set(df.columns))}",
                          ("table_s8_training_cost",))
    with_ci = _S8_CI in df.columns
    parts, cached, model, cached_models = [], [], None, set()
    base_mem = {}
    for r in df.to_dict("records"):
        method, ratio, mem = str(r["Method"]), float(r["x without loss"]), r[PEAK_MEM]
        if not method.strip().startswith("+"):
            model, base_mem[method] = method, mem
            continue
        kind = "cached" if "cached" in method else "no cache" if "no cache" in method else method
        lo = hi = math.nan
        if with_ci and isinstance(r[_S8_CI], str) and r[_S8_CI].startswith("["):
            lo, hi = (float(x) for x in r[_S8_CI].strip("[]").split(","))
            if not (math.isfinite(lo) and math.isfinite(hi)):  # a half interval ("[1.10, nan]") is no interval
                lo = hi = math.nan
        ci = f" [{lo:.2f}, {hi:.2f}]" if math.isfinite(lo) else ""
        parts.append(f"{model} {kind} {ratio:.2f}x{ci} (+{float(mem) - float(base_mem.get(model, mem)):.0f} MiB peak)")
        if kind == "cached":
            cached.append((ratio, lo, hi))
            cached_models.add(model)
    if not parts:
        return Assessment("not measured", "no '+ Ours rep.' rows in table_s8_training_cost", ("table_s8_training_cost",))
    if with_ci and cached and all(math.isfinite(lo) for _, lo, _ in cached):
        verdict = ("contradicted" if any(hi < 1 for _, _, hi in cached) else
                   "reproduced" if all(lo > 1 for _, lo, _ in cached) else "inconclusive")
        how = "95 % CIs over measurement rounds (each round every setting in a fresh process, order alternating)"
        decided = "the CI of the time ratio with the loss (cached) / without, every model"
    else:
        verdict = "reproduced" if cached and all(x > 1 for x, _, _ in cached) else "inconclusive"
        how = "No interval (one round: mean of the timed iterations)"
        decided = "time ratio with the loss (cached) / without, every model"
    missing = [paper.MODEL_LABELS[m] for m in paper.MODELS if paper.MODEL_LABELS[m] not in cached_models]
    if missing and verdict == "reproduced":  # a claim over the three models, measured for fewer
        verdict = "inconclusive"
    if missing:  # 'decided by' says which models were read, and which were not where that capped the verdict
        decided = decided.replace("every model", "the models measured") + (
            "; not measured: " + ", ".join(missing) if verdict == "inconclusive" else "")
    return Assessment(verdict, "Time per training iteration with the loss / without, one CPU thread: " + "; ".join(parts)
                      + f". {how}." + (f" Not measured (cached): {', '.join(missing)}." if missing else "")
                      + " The loss is a training term only: `p3d predict` never loads the critic, so "
                      "inference is unchanged by construction.", ("table_s8_training_cost",), decided,
                      tuple(CaseBasis(f"{m} time ratio with the loss (cached)") for m in sorted(cached_models)))


def _not_testable(reason: str) -> Callable[[Path], Assessment]:
    return lambda tables: Assessment("not testable here", reason, (), "needs what this environment cannot have")


_NO_PEOPLE = ("Needs human participants; none are available to this project. `p3d study make` builds the study "
              "(stimuli, counterbalanced survey page) and `p3d study analyze` computes this table with exact "
              "binomial tests and Wilson CIs once responses exist (notebook 09).")
