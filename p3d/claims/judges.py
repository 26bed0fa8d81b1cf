"""The paper's claims, each judged from the tables that ``make figures`` wrote: ``results/claims.md``.

A :class:`Claim` pairs a sentence of the paper and the paper's own evidence (built from :mod:`p3d.paper`, labelled
as the paper's) with a *judge*: a function that reads p3d's result tables (``results/tables/*.csv``) and returns
an :class:`Assessment` (p3d's evidence with its 95 % CIs, the verdict, and which referee / metric decided it).
Nothing here is typed by hand: change a result and the report changes with it.

**Verdicts** (:data:`VERDICTS`). A claim is made of *cases*: one (model, metric) effect, or one measured
property. Each case is an effect with a 95 % CI, and the claim predicts its sign (the paper's direction:
"the loss improves PLRS" predicts a positive PLRS change):

- ``reproduced``: the CI excludes 0 in the paper's direction;
- ``contradicted``: the CI excludes 0 the other way;
- ``inconclusive``: the CI includes 0. The **minimum detectable effect** at this sample size
  (:func:`p3d.stats.minimum_detectable_effect`: 80 % power, two-sided 5 %, about 1.43 CI half-widths) is
  stated beside the paper's own effect, so that a reader sees whether the test could have seen an effect of
  the paper's size (the paper's effect is on the real data, ours on the synthetic corpus: same metric, not
  the same data; compare orders of magnitude);
- ``not testable here``: the claim needs what this environment cannot have (human participants, the real
  datasets); the reason is given;
- ``not measured`` (a status, not a verdict on the claim): the table the judge needs does not exist yet
  (run ``make figures``).

**Aggregation** (:func:`aggregate`), for a claim over several cases ("for all three models", or several
metrics): ``reproduced`` only if every case the claim covers was measured and reproduced; ``contradicted`` if
any case is contradicted (the claim says *all*: one clear counter-example refutes it); otherwise
``inconclusive``. A case the claim covers but p3d did not measure (e.g. the critic ablation run for
FaceFormer only) therefore caps the verdict at ``inconclusive``. Cases without an interval (a property test
that reports only whether it passed) count as reproduced when they pass and inconclusive when not.

**Lip readability** (claims on PLRS). PLRS is a *referee*: a learned speech-mesh evaluator whose verdicts are
only as good as the evaluator. When ``plrs_validity.csv`` exists (columns ``variant, degradation,
mean_minus_gt, ci_low, ci_high, n_clips``: each referee's score of degraded ground truth minus its score of
the ground truth), a referee is *valid* when ``ci_high < 0`` for every degradation (it scores every
degradation clearly below the truth), and PLRS cases are judged on the valid referees only: the claim is
judged once per valid referee, and the referees must agree (all ``reproduced`` or all ``contradicted``),
else ``inconclusive`` (a disagreement between valid referees is not evidence either way). The official
evaluator's PLRS (variant :data:`OFFICIAL_PLRS`) is always shown beside. A referee ``v``'s effects are read
from the effect tables' rows labelled :func:`plrs_metric` (``PLRS`` for the official one, ``PLRS [v]``
otherwise). Without ``plrs_validity.csv`` the official PLRS decides, and the evidence says so.

:data:`INVENTORY` lists every table and figure of the paper with the file(s) p3d writes for it, or why it
cannot be made here; :func:`inventory` checks which exist.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p3d import paper
from p3d.stats import minimum_detectable_effect

VERDICTS = ("reproduced", "contradicted", "inconclusive", "not testable here", "not measured")
MODELS = tuple(paper.MODEL_LABELS[m] for m in paper.MODELS)
#: The variant name of the official PLRS evaluator in ``plrs_validity.csv``.
OFFICIAL_PLRS = "official"
#: Effect-table metric label -> p3d.paper metric key.
_METRIC_KEYS = {"MTM": "mtm_ms", "LVE": "lve", "PLRS": "plrs", "SLCC": "slcc_delta", "FDD": "fdd"}
#: How the paper's values are printed, per metric key.
_FORMATS = {"mtm_ms": ".1f", "lve": ".3f", "plrs": ".3f", "slcc_delta": ".2f", "fdd": ".3f"}


def plrs_metric(variant: str) -> str:
    """The ``metric`` label of referee ``variant``'s PLRS rows in the effect tables (``PLRS`` for the official
    evaluator, ``PLRS [variant]`` for the others)."""
    return "PLRS" if variant == OFFICIAL_PLRS else f"PLRS [{variant}]"


@dataclass(frozen=True)
class Assessment:
    """p3d's evidence for one claim: ``verdict`` (one of :data:`VERDICTS`), a sentence with the numbers and
    their 95 % CIs (and the MDE beside the paper's effect), the tables it was read from (file stems under the
    tables folder), and ``decided_by``: the referee / metric / cases that decided the verdict."""

    verdict: str
    evidence: str
    sources: tuple[str, ...] = ()
    decided_by: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: ``key`` (short id), ``text`` (the claim), ``paper`` (the paper's evidence, quoted
    as the paper's, built from :mod:`p3d.paper`), ``judge(tables_dir) -> Assessment``."""

    key: str
    text: str
    paper: str
    judge: Callable[[Path], Assessment]


class _Missing(Exception):
    def __init__(self, stem: str) -> None:
        super().__init__(stem)
        self.stem = stem


def _read(tables: Path, stem: str) -> Any:
    import pandas as pd

    path = Path(tables) / f"{stem}.csv"
    if not path.is_file():
        raise _Missing(stem)
    return pd.read_csv(path)


def _isnan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _num(x: Any) -> str:
    """Three significant digits; 'n/a' for NaN."""
    return "n/a" if _isnan(x) else f"{float(x):.3g}"


def _signed(x: Any) -> str:
    return "n/a" if _isnan(x) else f"{float(x):+.3g}"


# -- cases and their verdicts -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One measured effect of a claim. ``change`` and its 95 % CI (``low``, ``high``) in p3d's units; ``want``
    the sign the claim predicts (+1 or -1); ``paper_change`` the paper's own effect (its units; None when
    the paper gives no number); ``without`` / ``with_`` the two arms (for the text, optional); ``referee``
    the PLRS referee that measured it (None for other metrics). ``passed`` replaces the CI for a case whose
    table reports only a test's outcome (True / False)."""

    label: str
    change: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    want: int = 1
    paper_change: float | None = None
    without: float | None = None
    with_: float | None = None
    referee: str | None = None
    passed: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        """``reproduced`` / ``contradicted`` / ``inconclusive`` by the rules of the module docstring."""
        if self.passed is not None:
            return "reproduced" if self.passed else "inconclusive"
        if _isnan(self.low) or _isnan(self.high):
            return "inconclusive"
        if self.want * self.low > 0 and self.want * self.high > 0:
            return "reproduced"
        if self.want * self.low < 0 and self.want * self.high < 0:
            return "contradicted"
        return "inconclusive"

    @property
    def mde(self) -> float:
        """The minimum detectable effect (80 % power, 5 %) implied by the CI; NaN without one."""
        if self.passed is not None or _isnan(self.low) or _isnan(self.high):
            return float("nan")
        return minimum_detectable_effect(float(self.low), float(self.high))

    def text(self) -> str:
        if self.passed is not None:
            return f"{self.label}: {self.note}, {self.verdict}"
        arms = f"{_num(self.without)} -> {_num(self.with_)} " if self.without is not None else ""
        paper_part = (f" beside the paper's change {_signed(self.paper_change)}" if self.paper_change is not None
                      else "; the paper gives no number")
        note = f"; {self.note}" if self.note else ""
        return (f"{self.label}: {arms}(change {_signed(self.change)} [{_signed(self.low)}, {_signed(self.high)}]; "
                f"MDE {_num(self.mde)}{paper_part}{note}), {self.verdict}")


def aggregate(verdicts: Sequence[str], complete: bool = True) -> str:
    """One verdict for a claim over several cases (module docstring): ``reproduced`` only if ``complete`` (every
    case the claim covers was measured) and every verdict is ``reproduced``; ``contradicted`` if any is;
    otherwise ``inconclusive``. No verdicts at all: ``not measured``."""
    if not verdicts:
        return "not measured"
    if any(v == "contradicted" for v in verdicts):
        return "contradicted"
    if complete and all(v == "reproduced" for v in verdicts):
        return "reproduced"
    return "inconclusive"


def combine_referees(verdicts: dict[str, str]) -> str:
    """One verdict from the verdicts of a claim judged once per valid referee: their common verdict when they
    agree, ``inconclusive`` when they disagree; ``not measured`` when there is none."""
    values = set(verdicts.values())
    if not values:
        return "not measured"
    return values.pop() if len(values) == 1 else "inconclusive"


def _deciding(cases: Sequence[Case], verdict: str, complete: bool) -> str:
    """The cases that decided ``verdict``."""
    if verdict == "contradicted":
        hit = [c for c in cases if c.verdict == "contradicted"]
    elif verdict == "reproduced":
        hit = list(cases)
    else:
        hit = [c for c in cases if c.verdict == "inconclusive"]
    names = ", ".join(c.label for c in hit)
    if verdict == "inconclusive" and not complete:
        names = (names + "; " if names else "") + "cases not measured"
    return names


# -- PLRS referees ------------------------------------------------------------------------------------------
VALIDITY_STEM = "plrs_validity"
_VALIDITY_COLUMNS = {"variant", "degradation", "mean_minus_gt", "ci_low", "ci_high", "n_clips"}


def valid_referees(tables: str | Path) -> tuple[list[str], list[str]] | None:
    """(valid, invalid) referee variants from ``plrs_validity.csv`` in ``tables``; None when the table is absent.

    A referee is valid when ``ci_high < 0`` for every one of its degradations (NaN counts as not below 0).
    """
    from p3d.errors import InputError

    try:
        df = _read(Path(tables), VALIDITY_STEM)
    except _Missing:
        return None
    missing = _VALIDITY_COLUMNS - set(df.columns)
    if missing:
        raise InputError(f"{Path(tables) / VALIDITY_STEM}.csv lacks the columns {sorted(missing)}; it needs "
                         f"{', '.join(sorted(_VALIDITY_COLUMNS))}")
    valid, invalid = [], []
    for variant, rows in df.groupby("variant", sort=False):
        ok = bool((rows["ci_high"].astype(float) < 0).all())
        (valid if ok else invalid).append(str(variant))
    return valid, invalid


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


def _metric_key(label: str) -> str:
    for prefix, key in _METRIC_KEYS.items():
        if label.startswith(prefix):
            return key
    raise KeyError(label)


def _want_sign(metric_key: str, want: str) -> int:
    better = -1 if paper.LOWER_IS_BETTER[metric_key] else 1
    return better if want == "better" else -better


def _row_case(row: Any, label: str, metric: str, spec: _Spec, comparison: str, referee: str | None) -> Case:
    key = _metric_key(metric)
    pair = spec.paper_rows.get(comparison)
    paper_change = paper.effect(key, *pair) if pair else None
    return Case(f"{label} {row['metric']}", float(row["change"]), float(row["change CI low"]),
                float(row["change CI high"]), _want_sign(key, spec.want), paper_change,
                float(row["without"]), float(row["with"]), referee)


def _find(df: Any, comparison: str, metric: str) -> Any | None:
    """The row of ``comparison`` and ``metric``: the exact metric label, or the label followed by its unit in
    parentheses (``MTM`` finds ``MTM (ms)``; ``PLRS`` does not find ``PLRS [variant]``)."""
    m = df["metric"].astype(str)
    hit = df[(df["comparison"] == comparison) & ((m == metric) | m.str.startswith(metric + " ("))]
    return hit.iloc[0] if len(hit) else None


def _judge_effects(spec: _Spec, tables: Path) -> Assessment:
    """Judge a claim over ``spec``'s cases (module docstring: aggregation, PLRS referees)."""
    df = _read(tables, spec.stem)
    sources = [spec.stem]
    fixed, missing = [], []
    plrs_wanted = "PLRS" in spec.metrics
    for metric in spec.metrics:
        if metric == "PLRS":
            continue
        for label, comp in spec.comparisons:
            row = _find(df, comp, metric)
            if row is None:
                missing.append(f"{label} {metric}")
            else:
                fixed.append(_row_case(row, label, metric, spec, comp, None))
    notes = []
    validity = None
    by_referee: dict[str, list[Case]] = {}
    official: list[Case] = []
    if plrs_wanted:
        for label, comp in spec.comparisons:
            row = _find(df, comp, plrs_metric(OFFICIAL_PLRS))
            if row is not None:
                official.append(_row_case(row, label, "PLRS", spec, comp, OFFICIAL_PLRS))
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
                row = _find(df, comp, plrs_metric(ref))
                if row is None:
                    gaps.append(label)
                else:
                    cases.append(_row_case(row, label, "PLRS", spec, comp, ref))
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
    if not all_cases and plrs_wanted and not by_referee and validity is not None:
        shown = " Official PLRS (shown, not deciding): " + "; ".join(c.text() for c in official) + "." \
            if official else ""
        return Assessment("inconclusive", "No PLRS referee passed the validity battery, so lip readability is not "
                          "judged." + shown + " " + ". ".join(notes) + ".", tuple(sources), "no valid PLRS referee")
    if not all_cases:
        return Assessment("not measured", f"no rows for {', '.join(spec.metrics)} in {spec.stem}"
                          + (" (" + "; ".join(notes) + ")" if notes else "") + ".", tuple(sources))
    text = "; ".join(c.text() for c in all_cases) + "."
    judged_on_official = OFFICIAL_PLRS in by_referee
    if plrs_wanted and official and not judged_on_official:
        text += " Official PLRS (shown, not deciding): " + "; ".join(c.text() for c in official) + "."
    if missing:
        text += " Not measured: " + ", ".join(missing) + " (the claim covers them)."
    if notes:
        text += " " + ". ".join(notes) + "."
    if len(per_ref) > 1:
        decided = "; ".join(f"referee {r}: {v}" for r, v in per_ref.items())
        if verdict == "inconclusive" and len(set(per_ref.values())) > 1:
            decided = "the valid PLRS referees disagree (" + decided + ")"
    else:
        decided = _deciding(all_cases, verdict, complete)
        if plrs_wanted and by_referee:
            decided += " (PLRS referee: " + ", ".join(by_referee) + ")"
    return Assessment(verdict, text, tuple(sources), decided)


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
                          a.sources + ("table2_loss_effects_per_model_kappa",), a.decided_by)

    return judge


_CRITIC_NAMES = {"syncnet3d": "3D SyncNet", "no2d": "Ours w/o 2D prior"}


def _critic_spec(critic: str) -> _Spec:
    name = _CRITIC_NAMES[critic]
    comps = tuple((paper.MODEL_LABELS[m], f"{paper.MODEL_LABELS[m]}: ours vs {name}") for m in paper.MODELS)
    rows = {f"{paper.MODEL_LABELS[m]}: ours vs {name}": (paper.TABLE3[(m, critic)], paper.TABLE3[(m, "ours")])
            for m in paper.MODELS}
    return _Spec("table3_critic_effects", comps, ("MTM", "PLRS", "SLCC Δ"), "better", rows)


def _mead_spec(metric: str, want: str, step: str) -> _Spec:
    """Table 4: ``step`` ``mead`` (+ MEAD-3D vs VOCASET only) or ``ours`` (+ the loss vs + MEAD-3D)."""
    before, after, suffix = ("voca", "mead", "+ synth-mead") if step == "mead" else ("mead", "mead+ours", "+ ours")
    comps = tuple((paper.MODEL_LABELS[m], f"{paper.MODEL_LABELS[m]}: {suffix}") for m in paper.MODELS)
    rows = {f"{paper.MODEL_LABELS[m]}: {suffix}": (paper.TABLE4[(m, before)], paper.TABLE4[(m, after)])
            for m in paper.MODELS}
    return _Spec("table4_effects", comps, (metric,), want, rows)


# -- individual judges -------------------------------------------------------------------------------
def _fdd(tables: Path) -> Assessment:
    """|FDD| with vs without the loss, per model. The table has per-condition CIs, not a paired one: the
    difference's CI is approximated as change +- sqrt(h_without^2 + h_with^2) (independent arms, normal; wider
    than the paired interval when the arms are positively correlated, so conservative)."""
    df = _read(tables, "config1_results")
    df = df[(df["split"] == "test") & (df["metric"] == "fdd") & (df["train"] == "synth-voca")]
    cases, missing = [], []
    scale = 1e7
    for m in paper.MODELS:
        sub = df[df["model"] == m]
        base, ours = sub[sub["critic"] == "none"], sub[sub["critic"] == "ours"]
        if base.empty or ours.empty:
            missing.append(paper.MODEL_LABELS[m])
            continue
        b, o = base.iloc[0], ours.iloc[0]
        hb, ho = (b["ci_high"] - b["ci_low"]) / 2 * scale, (o["ci_high"] - o["ci_low"]) / 2 * scale
        change = (abs(o["value"]) - abs(b["value"])) * scale
        half = math.hypot(hb, ho)
        cases.append(Case(f"{paper.MODEL_LABELS[m]} |FDD| (1e-7 m²)", change, change - half, change + half, -1,
                          paper.TABLE_S7[(m, "ours")] - paper.TABLE_S7[(m, "none")],
                          abs(b["value"]) * scale, abs(o["value"]) * scale))
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
    return Assessment(verdict, "; ".join(c.text() for c in cases) + "." + note, ("config1_results",),
                      _deciding(cases, verdict, complete))


def _wilson(k: float, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(int(round(k)), n).proportion_ci(method="wilson")
    return ci.low, ci.high


def _retrieval(tables: Path) -> dict[str, tuple[float, float, float, int, float]]:
    out = {}
    for name in ("ours", "syncnet3d", "no2d"):
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
    arms), and Table 3's ours-vs-w/o-2D-prior effects; the GT-pair loss gap (medians, no CI) is shown only."""
    ret = _retrieval(tables)
    sources = ["stage2_retrieval_ours", "stage2_retrieval_no2d", "fig_s6_s7_medians", "table3_critic_effects"]
    cases, parts, missing = [], [], []
    if "ours" in ret and "no2d" in ret:
        (o, olo, ohi, n, chance), (w, wlo, whi, _, _) = ret["ours"], ret["no2d"]
        d = o - w
        half = math.hypot((ohi - olo) / 2, (whi - wlo) / 2)
        cases.append(Case("held-out speech->mesh R@1, ours minus w/o 2D prior", d, d - half, d + half, 1, None, w, o,
                          note=f"n={n} windows, chance {chance:.2%}"))
    else:
        missing.append("held-out retrieval")
    try:
        med = _read(tables, "fig_s6_s7_medians").set_index(["critic", "split"])
        gap = {c: med.loc[(c, "test"), "loss"] - med.loc[(c, "train"), "loss"] for c in ("ours", "no2d")}
        parts.append(f"GT-pair loss test-train gap ours {gap['ours']:.2f} vs w/o 2D prior {gap['no2d']:.2f} "
                     "(medians, no CI: shown, not deciding)")
    except (_Missing, KeyError):
        pass
    loss = None
    try:
        loss = _judge_effects(_critic_spec("no2d"), tables)
    except _Missing:
        missing.append("Table 3 (as a loss)")
    if not cases and (loss is None or loss.verdict == "not measured"):
        return Assessment("not measured", "no retrieval or critic tables", tuple(sources))
    verdicts = [c.verdict for c in cases]
    decided = [_deciding(cases, aggregate(verdicts), True)] if cases else []
    if loss is not None and loss.verdict != "not measured":
        verdicts.append(loss.verdict)
        parts.append(f"As a loss vs w/o 2D prior (change = ours - w/o 2D prior): {loss.evidence}")
        decided.append(f"as a loss: {loss.decided_by}")
    verdict = aggregate(verdicts, not missing)
    text = "; ".join(c.text() for c in cases)
    text = " ".join(p if p.endswith(".") else p + "." for p in ([text] if text else []) + parts)
    if missing:
        text += " Not measured: " + ", ".join(missing) + "."
    return Assessment(verdict, text, tuple(sources), "; ".join(d for d in decided if d))


def _property(name: str, control_matters: bool) -> Callable[[Path], Assessment]:
    """A representation property: the table reports whether its test passed (no interval). Passed:
    reproduced; not passed: inconclusive. When the no-learning control passes too, the evidence says the
    property is not distinctive (the claim is about the learned space, which still shows it)."""
    def judge(tables: Path) -> Assessment:
        df = _read(tables, "representation_properties")
        ours = df[(df["critic"] == "ours") & (df["property"] == name)]
        if ours.empty:
            return Assessment("not measured", f"no '{name}' row for ours", ("representation_properties",))
        o = ours.iloc[0]
        case = Case(f"ours, {name}", passed=bool(o["shows"]), note=str(o["evidence"]))
        text = case.text() + "."
        ctrl = df[(df["critic"].str.startswith("raw")) & (df["property"] == name)]
        if control_matters and not ctrl.empty and bool(ctrl.iloc[0]["shows"]):
            text += (f" Not distinctive: the no-learning control (raw inputs) shows it too: "
                     f"{ctrl.iloc[0]['evidence']}.")
        return Assessment(case.verdict, text, ("representation_properties",),
                          f"the '{name}' test of representation_properties (pass / fail, no interval)")

    return judge


def _temporal(tables: Path) -> Assessment:
    """Similarity at offset 0 minus the mean at |offset| >= 5 frames (the latter taken as fixed): stage 2
    (ours), and stage 1 (Fig. S1a) when present."""
    df = _read(tables, "fig5a_offset_summary").set_index("critic")
    if "ours" not in df.index:
        return Assessment("not measured", "no row for ours", ("fig5a_offset_summary",))
    r = df.loc["ours"]
    far = float(r["mean sim at |offset| >= 5"])
    cases = [Case("stage 2 (ours) speech-mesh cosine, offset 0 minus |offset| >= 5",
                  r["sim at 0"] - far, r["sim at 0 CI low"] - far, r["sim at 0 CI high"] - far, 1, None,
                  far, float(r["sim at 0"]), note=f"peak at offset {int(r['peak offset'])}")]
    try:
        s1 = _read(tables, "fig_s1a_offset_similarity").set_index("offset")
        far1 = float(s1[s1.index.to_series().abs() >= 5]["mean"].mean())
        cases.append(Case("stage 1 speech-video cosine (Fig. S1a), offset 0 minus |offset| >= 5",
                          s1.loc[0, "mean"] - far1, s1.loc[0, "ci_low"] - far1, s1.loc[0, "ci_high"] - far1, 1,
                          None, far1, float(s1.loc[0, "mean"])))
    except (_Missing, KeyError):
        pass
    verdict = aggregate([c.verdict for c in cases])
    return Assessment(verdict, "; ".join(c.text() for c in cases) + ".",
                      ("fig5a_offset_summary", "fig_s1a_offset_similarity"), _deciding(cases, verdict, True))


def _mead_loss(tables: Path) -> Assessment:
    return _judge_effects(_mead_spec("PLRS", "better", "ours"), tables)


def _mtm_validity(tables: Path) -> Assessment:
    """The slope of MTM against the injected offset (ms per ms): the claim predicts a positive slope."""
    r = _read(tables, "fig_s5_slope").iloc[0]
    case = Case("slope of MTM vs injected offset (ms per ms)", r["slope"], r["ci_low"], r["ci_high"], 1, None,
                note=f"r = {r['r']:.3f}, {int(r['n_clips'])} GT test clips, offsets "
                     f"{paper.FIG_S5_OFFSET_FRAMES[0]}-{paper.FIG_S5_OFFSET_FRAMES[1]} frames")
    accurate = r["ci_low"] > 0.8 and r["ci_high"] < 1.2
    return Assessment(case.verdict, case.text() + ". A perfect measure has slope 1; the CI "
                      + ("lies" if accurate else "does not lie") + " within [0.8, 1.2] (not deciding).",
                      ("fig_s5_slope",), "the slope's CI (" + case.verdict + ")")


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
    """Rule: per model, ``reproduced`` when the baseline's MTM CI lies inside the paper's band (Sec. 3, Fig. S8),
    ``contradicted`` when it lies entirely outside it, ``inconclusive`` when it straddles an edge; aggregated as
    the other claims."""
    lo_band, hi_band = paper.BASELINE_MTM_BAND_MS
    df = _read(tables, "config1_results")
    df = df[(df["split"] == "test") & (df["metric"] == "mtm_ms") & (df["critic"] == "none")
            & (df["train"] == "synth-voca")]
    parts, verdicts, missing = [], {}, []
    for m in paper.MODELS:
        sub = df[df["model"] == m]
        if sub.empty:
            missing.append(paper.MODEL_LABELS[m])
            continue
        r = sub.iloc[0]
        if lo_band <= r["ci_low"] and r["ci_high"] <= hi_band:
            v = "reproduced"
        elif r["ci_high"] < lo_band or r["ci_low"] > hi_band:
            v = "contradicted"
        else:
            v = "inconclusive"
        verdicts[paper.MODEL_LABELS[m]] = v
        parts.append(f"{paper.MODEL_LABELS[m]} {r['value']:.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}] ms "
                     f"(paper {paper.TABLE2[(m, 'none')].mtm_ms:.1f}), {v}")
    if not parts:
        return Assessment("not measured", "no baseline MTM rows", ("config1_results",))
    verdict = aggregate(list(verdicts.values()), not missing)
    decided = ", ".join(k for k, v in verdicts.items() if v == verdict) or ", ".join(verdicts)
    text = ("Baseline MTM on synth-voca test: " + "; ".join(parts) + f" (rule: the 95 % CI inside the paper's "
            f"{lo_band:.0f}-{hi_band:.0f} ms: reproduced; entirely outside: contradicted; else inconclusive). "
            "An absolute value on the synthetic corpus against the paper's on VOCASET: read it as a sanity check of the scale.")
    if missing:
        text += " Not measured: " + ", ".join(missing) + "."
    return Assessment(verdict, text, ("config1_results",), f"baseline MTM CI vs the band: {decided}")


def _overhead(tables: Path) -> Assessment:
    """Rule: the time ratio with / without the loss (cached speech embeddings) > 1 for every model measured:
    reproduced; otherwise inconclusive (the table has no interval, and a ratio <= 1 is timing noise, not a
    free loss)."""
    df = _read(tables, "table_s8_training_cost")
    need = {"Method", "x without loss", "peak mem (MB)"}
    if not need <= set(df.columns):
        return Assessment("not measured", f"table_s8_training_cost lacks {sorted(need - set(df.columns))}",
                          ("table_s8_training_cost",))
    parts, ratios, model = [], [], None
    base_mem = {}
    for r in df.itertuples(index=False):
        method, ratio, mem = r[df.columns.get_loc("Method")], r[df.columns.get_loc("x without loss")], \
            r[df.columns.get_loc("peak mem (MB)")]
        if not str(method).strip().startswith("+"):
            model, base_mem[method] = method, mem
            continue
        kind = "cached" if "cached" in method else "no cache" if "no cache" in method else method
        parts.append(f"{model} {kind} {float(ratio):.2f}x (+{float(mem) - float(base_mem.get(model, mem)):.0f} MB peak)")
        if kind == "cached":
            ratios.append(float(ratio))
    if not parts:
        return Assessment("not measured", "no '+ Ours rep.' rows in table_s8_training_cost", ("table_s8_training_cost",))
    verdict = "reproduced" if ratios and all(x > 1 for x in ratios) else "inconclusive"
    return Assessment(verdict, "Time per training iteration with the loss / without, one CPU thread: " + "; ".join(parts)
                      + ". No interval (mean of the timed iterations). The loss is a training term only: `p3d "
                      "predict` never loads the critic, so inference is unchanged by construction.",
                      ("table_s8_training_cost",), "time ratio with the loss (cached) / without, every model")


def _not_testable(reason: str) -> Callable[[Path], Assessment]:
    return lambda tables: Assessment("not testable here", reason, (), "needs what this environment cannot have")


_NO_PEOPLE = ("Needs human participants; none are available to this project. `p3d study make` builds the study "
              "(stimuli, counterbalanced survey page) and `p3d study analyze` computes this table with exact "
              "binomial tests and Wilson CIs once responses exist (notebook 09).")


# -- the paper's evidence, written from p3d.paper -------------------------------------------------------------
def _fmt(x: float, metric: str) -> str:
    return format(x, _FORMATS[metric])


def paper_changes(table: str, rows: dict[tuple[str, str], Any], metric: str, before: str, after: str,
                  unit: str = "") -> str:
    """``"<table>: <METRIC> a -> b, c -> d, e -> f<unit>."`` for the three models, from :mod:`p3d.paper` rows."""
    name = {"mtm_ms": "MTM", "lve": "LVE", "plrs": "PLRS", "slcc_delta": "SLCC Δ"}[metric]
    pairs = [(rows[(m, before)].value(metric), rows[(m, after)].value(metric)) for m in paper.MODELS]
    return f"{table}: {name} " + ", ".join(f"{_fmt(a, metric)} -> {_fmt(b, metric)}" for a, b in pairs) + f"{unit}."


def _s7_text() -> str:
    return "Table S7: FDD " + ", ".join(
        f"{paper.TABLE_S7[(m, 'none')]:.3f} -> {paper.TABLE_S7[(m, 'ours')]:.3f}" for m in paper.MODELS) \
        + f" ({paper.FDD_UNIT})."


def _s8_text() -> str:
    over = [paper.table_s8_overhead(m) for m in paper.MODELS]
    dt, ratio, dm = zip(*over)
    return (f"Table S8: +{min(dt):.2f}-{max(dt):.2f} s and +{min(dm):.0f}-{max(dm):.0f} MB per iteration "
            f"({min(ratio):.2f}x-{max(ratio):.2f}x time) on an {paper.TABLE_S8_DEVICE.split('x ', 1)[-1]}.")


def _syncnet_text() -> str:
    ff_s, ff_o = paper.TABLE3[("faceformer", "syncnet3d")], paper.TABLE3[("faceformer", "ours")]
    ct_n, ct_s = paper.TABLE3[("codetalker", "none")], paper.TABLE3[("codetalker", "syncnet3d")]
    return (f"Table 3: FaceFormer PLRS {ff_s.plrs:.3f} (3D SyncNet) vs {ff_o.plrs:.3f} (ours); 3D SyncNet raises "
            f"CodeTalker's LVE ({ct_n.lve:.3f} -> {ct_s.lve:.3f}) and SLCC Δ ({ct_n.slcc_delta:.2f} -> "
            f"{ct_s.slcc_delta:.2f}).")


def _s4_s6_text() -> str:
    b = paper.TABLE_S6["(b) + MEAD-3D vs + MEAD-3D + loss"].rows["Overall"][1]
    return (f"Tables S4/S5: {paper.TABLE_S4.rows['Overall'][1]:.1f} % / {paper.TABLE_S5.rows['Overall'][1]:.1f} % "
            f"overall ({paper.TABLE_S4.participants} / {paper.TABLE_S5.participants} participants); Table S6: "
            f"{b:.1f} % (+ loss vs + MEAD-3D, {paper.TABLE_S6_PARTICIPANTS} participants).")


_BAND = paper.BASELINE_MTM_BAND_MS

CLAIMS: tuple[Claim, ...] = (
    Claim("loss-plrs", "The perceptual loss improves lip readability (PLRS) for FaceFormer, CodeTalker and SelfTalk.",
          paper_changes("Table 2", paper.TABLE2, "plrs", "none", "ours"), _loss_effect("PLRS")),
    Claim("loss-mtm", "The perceptual loss improves temporal synchronization (MTM) for all three models.",
          paper_changes("Table 2", paper.TABLE2, "mtm_ms", "none", "ours", " ms"), _loss_effect("MTM")),
    Claim("loss-slcc", "The perceptual loss improves expressiveness (SLCC closer to the data's) for all three models.",
          paper_changes("Table 2", paper.TABLE2, "slcc_delta", "none", "ours"), _loss_effect("SLCC Δ")),
    Claim("loss-lve", "The perceptual loss also lowers LVE for all three models.",
          paper_changes("Table 2", paper.TABLE2, "lve", "none", "ours"), _loss_effect("LVE")),
    Claim("loss-fdd", "With the loss, upper-face dynamics (FDD) are similar or improved.", _s7_text(), _fdd),
    Claim("two-d-prior", "The 2D prior matters: without stage 1 the representation generalises worse and helps less.",
          "Table 3 (w/o 2D prior worse than ours as a loss for all models); Figs. S6/S7 (large train/test gap).",
          _two_d_prior),
    Claim("vs-syncnet", "Ours is a better perceptual loss than a CNN 3D SyncNet critic.", _syncnet_text(),
          _effects_judge(_critic_spec("syncnet3d"))),
    Claim("prop-clusters", "In the learned space, windows of the same phoneme cluster together (speech and mesh).",
          "Fig. 4c and Fig. S1b (t-SNE, qualitative).", _property("phoneme clustering", True)),
    Claim("prop-temporal", "The learned space is sensitive to temporal misalignment (similarity falls with offset).",
          "Fig. 5a and Fig. S1a (curves, values not given).", _temporal),
    Claim("prop-intensity", "Speech features move along a consistent direction as speech intensity rises.",
          "Fig. 5b (qualitative).", _property("intensity direction", True)),
    Claim("mead-slcc", "Adding MEAD-3D to training raises expressiveness (SLCC Δ falls).",
          paper_changes("Table 4", paper.TABLE4, "slcc_delta", "voca", "mead").replace("SLCC Δ", "Avg SLCC Δ"),
          _effects_judge(_mead_spec("SLCC Δ", "better", "mead"))),
    Claim("mead-plrs", "Adding MEAD-3D to training lowers lip readability (PLRS).",
          paper_changes("Table 4", paper.TABLE4, "plrs", "voca", "mead"),
          _effects_judge(_mead_spec("PLRS", "worse", "mead"))),
    Claim("mead-loss", "The perceptual loss counterbalances the PLRS drop from MEAD-3D.",
          paper_changes("Table 4", paper.TABLE4, "plrs", "mead", "mead+ours"), _mead_loss),
    Claim("mtm-valid", "MTM measures the degree of temporal mismatch.",
          f"Fig. S5: MTM grows with an injected offset of {paper.FIG_S5_OFFSET_FRAMES[0]}-"
          f"{paper.FIG_S5_OFFSET_FRAMES[1]} frames (values not given).", _mtm_validity),
    Claim("baselines-sync", f"Existing models already reach reasonable temporal sync (MTM about "
          f"{_BAND[0]:.0f}-{_BAND[1]:.0f} ms).",
          "Table 2 baselines " + " / ".join(f"{paper.TABLE2[(m, 'none')].mtm_ms:.1f}" for m in paper.MODELS)
          + " ms; Fig. S8.", _baseline_sync),
    Claim("plrs-people", "PLRS agrees with people better than LVE does.",
          f"Table S3: Spearman rho {paper.TABLE_S3.rho['plrs']:.3f} (PLRS) vs {paper.TABLE_S3.rho['lve']:.3f} (LVE), "
          f"{paper.TABLE_S3.participants} participants.", _plrs_people),
    Claim("cost", "The loss adds training cost only (time and memory per iteration); inference is unchanged.",
          _s8_text(), _overhead),
    Claim("people-intensity", "People prefer lip intensity that matches speech intensity.",
          f"Table 1 left, {paper.TABLE1_LEFT_PARTICIPANTS} participants (cell values not given).",
          _not_testable(_NO_PEOPLE)),
    Claim("people-expressive", f"People prefer expressive sync with {paper.TABLE1_RIGHT_ASYNCHRONY_MS:.0f} ms "
          "asynchrony over exact timing without it.",
          f"Table 1 right: {paper.TABLE1_RIGHT.rows['-'][1]:.1f} % vs {paper.TABLE1_RIGHT.rows['-'][0]:.1f} %, "
          f"{paper.TABLE1_RIGHT.participants} participants.", _not_testable(_NO_PEOPLE)),
    Claim("people-loss", "People prefer the models trained with the perceptual loss (lip sync and overall quality).",
          _s4_s6_text(), _not_testable(_NO_PEOPLE)),
    Claim("real-data", "The numbers of Tables 2-4 on VOCASET / MEAD-3D (the real datasets).",
          "Tables 2-4.", _not_testable("The real datasets (VOCASET, MEAD-3D, LRS3-3D) and FLAME cannot be downloaded "
                                       "here; p3d reads them from local paths (`paper` preset) but measured the synthetic "
                                       "corpus. Effects are compared, never absolute values.")),
)


def assess(tables_dir: str | Path, claims: Sequence[Claim] = CLAIMS) -> Any:
    """Judge every claim against the CSV tables in ``tables_dir``.

    Returns a DataFrame with one row per claim: ``key``, ``claim``, ``paper`` (the paper's evidence),
    ``p3d`` (p3d's evidence), ``verdict``, ``decided_by`` (the referee / metric / cases that decided it),
    ``sources`` (comma-separated table stems).
    """
    import pandas as pd

    tables = Path(tables_dir)
    rows = []
    for c in claims:
        try:
            a = c.judge(tables)
        except _Missing as exc:
            a = Assessment("not measured", f"table {exc.stem} not found in {tables} (run `make figures`)", (exc.stem,))
        rows.append({"key": c.key, "claim": c.text, "paper": c.paper, "p3d": a.evidence, "verdict": a.verdict,
                     "decided_by": a.decided_by, "sources": ", ".join(a.sources)})
    return pd.DataFrame(rows)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


RULES_MARKDOWN = (
    "Verdict rules (`p3d.claims`): each case of a claim (a model, a metric) is an effect with a 95 % CI; "
    "**reproduced** when the CI excludes 0 in the paper's direction, **contradicted** when it excludes 0 the other "
    "way, **inconclusive** when it includes 0. Beside each effect: the minimum detectable effect (MDE) at this "
    "sample size (80 % power, two-sided 5 %, normal approximation: 1.43 CI half-widths) and the paper's own "
    "effect (its data and units: compare orders of magnitude). A claim over several cases is reproduced only if "
    "every case it covers was measured and reproduced, contradicted if any case is contradicted, otherwise "
    "inconclusive. Lip-readability (PLRS) cases are judged on the PLRS referees that pass the validity battery "
    "(`plrs_validity.csv`; the official PLRS when that table is absent), and the valid referees must agree. "
    "'Decided by' names the referee, metric and cases that set the verdict.")


def claims_markdown(df: Any, preset: str, header: str = "") -> str:
    """``results/claims.md``: the verdict rules, a summary table (claim, verdict, decided by) and one section
    per claim with both evidences."""
    counts = df["verdict"].value_counts()
    decided = df["decided_by"] if "decided_by" in df else [""] * len(df)
    lines = ["# The paper's claims, checked by p3d", "",
             f"Generated by `p3d.claims` from the tables of `make figures` at preset `{preset}` (synthetic corpus). "
             "'Paper' quotes arXiv 2503.20308's own evidence on the real datasets (from `p3d.paper`); 'p3d' is "
             "measured here, with 95 % CIs (paired cluster bootstrap over test clips unless stated). Effects are "
             "compared, never absolute values (different data and units).", "", RULES_MARKDOWN, ""]
    if header:
        lines += [header, ""]
    lines += ["Verdicts: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS if counts.get(v, 0)) + ".", "",
              "| # | claim | verdict | decided by |", "|---|---|---|---|"]
    for i, (r, d) in enumerate(zip(df.itertuples(index=False), decided), 1):
        lines.append(f"| {i} | {_md_cell(r.claim)} | **{r.verdict}** | {_md_cell(d) or '–'} |")
    lines.append("")
    for i, (r, d) in enumerate(zip(df.itertuples(index=False), decided), 1):
        lines += [f"## {i}. {r.claim}", "", f"- **Verdict: {r.verdict}**", f"- Decided by: {_md_cell(d) or '–'}",
                  f"- Paper: {_md_cell(r.paper)}", f"- p3d: {r.p3d}", f"- Tables: {r.sources or '–'}", ""]
    return "\n".join(lines)


# -- what p3d makes for each of the paper's tables and figures -------------------------------------------
#: paper item -> (files p3d writes, under figures/ or results/tables/; reason when it cannot be made here)
INVENTORY: dict[str, tuple[tuple[str, ...], str]] = {
    "Table 1": ((), "human preference study (17 and 28 participants); no participants here. `p3d study make "
                    "--design rank|ab` builds it, `p3d study analyze` fills it (notebook 09)."),
    "Table 2": (("tables/table2_lipsync.md", "tables/table2_loss_effects.md"), ""),
    "Table 3": (("tables/table3_critics.md", "tables/table3_critic_effects.md"), ""),
    "Table 4": (("tables/table4_expressiveness.md", "tables/table4_effects.md"), ""),
    "Table S1": (("tables/table_s1.md",), ""),
    "Table S2": (("tables/table_s2.md",), ""),
    "Table S3": ((), "needs human rankings; a viseme-oracle proxy is in tables/metric_validation_spearman.md."),
    "Table S4": ((), "human A/B study; no participants here (the study kit makes it)."),
    "Table S5": ((), "human A/B study; no participants here (the study kit makes it)."),
    "Table S6": ((), "human A/B study; no participants here (the study kit makes it)."),
    "Table S7": (("tables/table_s7_fdd.md",), ""),
    "Table S8": (("tables/table_s8_training_cost.md",), ""),
    "Fig. 1a": ((), "an illustration of the three criteria (artwork, no data); Figs. 3, 6 and S5 show them measured."),
    "Fig. 1b": (("figures/fig1b_representation_space.png",), ""),
    "Fig. 2": (("figures/fig2_pipeline.png",), ""),
    "Fig. 3": (("figures/fig3_lip_shapes.png",), ""),
    "Fig. 4": (("figures/fig4_tsne_critics.png",), ""),
    "Fig. 5": (("figures/fig5a_offset_similarity.png", "figures/fig5b_intensity_direction.png"), ""),
    "Fig. 6": (("figures/fig6_intensity.png",), ""),
    "Fig. S1": (("figures/fig_s1a_offset_similarity.png", "figures/fig_s1b_tsne_speech.png"), ""),
    "Fig. S2": (("figures/fig_s2_intensity_histograms.png",), ""),
    "Fig. S3": (("figures/fig_s3_mtm_vertices.png",), ""),
    "Fig. S4": (("figures/fig_s4_ddtw_matching.png",), ""),
    "Fig. S5": (("figures/fig_s5_mtm_offset.png",), ""),
    "Fig. S6": (("figures/fig_s6_pair_loss.png",), ""),
    "Fig. S7": (("figures/fig_s7_pair_cosine.png",), ""),
    "Fig. S8": (("figures/fig_s8_yt_slices.png",), ""),
}


def inventory(results_dir: str | Path, figures_dir: str | Path) -> Any:
    """Every paper table/figure with p3d's file(s) and whether they exist.

    ``results_dir`` holds ``tables/``; ``figures_dir`` the figures. Returns a DataFrame: ``item``, ``files``,
    ``status`` ('made', 'missing: ...' or 'cannot be made here'), ``reason``.
    """
    import pandas as pd

    rows = []
    for item, (files, reason) in INVENTORY.items():
        if not files:
            rows.append({"item": item, "files": "–", "status": "cannot be made here", "reason": reason})
            continue
        paths = [(Path(figures_dir) / f.split("/", 1)[1]) if f.startswith("figures/") else Path(results_dir) / f
                 for f in files]
        missing = [f for f, p in zip(files, paths) if not p.is_file()]
        status = "made" if not missing else "missing: " + ", ".join(missing)
        rows.append({"item": item, "files": ", ".join(files), "status": status, "reason": reason})
    return pd.DataFrame(rows)


def inventory_markdown(df: Any) -> str:
    lines = ["| paper item | p3d file(s) | status | why not |", "|---|---|---|---|"]
    for r in df.itertuples(index=False):
        lines.append(f"| {r.item} | {_md_cell(r.files)} | {r.status} | {_md_cell(r.reason) or '–'} |")
    return "\n".join(lines)


README_START, README_END = "<!-- claims:start (generated by notebooks/10_claims; do not edit) -->", "<!-- claims:end -->"


def readme_markers(name: str) -> tuple[str, str]:
    """The README comment markers around the block ``name`` that notebook 10 generates."""
    if name == "claims":
        return README_START, README_END
    return f"<!-- {name}:start (generated by notebooks/10_claims; do not edit) -->", f"<!-- {name}:end -->"


def summary_markdown(df: Any) -> str:
    """The one-line-per-claim table (claim, verdict, p3d's key evidence shortened) for the README."""
    lines = ["| # | claim (paper) | verdict at cpu |", "|---|---|---|"]
    for i, r in enumerate(df.itertuples(index=False), 1):
        lines.append(f"| {i} | {_md_cell(r.claim)} | **{r.verdict}** |")
    return "\n".join(lines)


def update_readme(readme: str | Path, block: str, name: str = "claims") -> bool:
    """Replace the text between the markers of block ``name`` (:func:`readme_markers`) in ``readme`` with
    ``block`` (atomically). Returns False, changing nothing, when the markers are absent."""
    from p3d.atomic import atomic_open

    start, end = readme_markers(name)
    path = Path(readme)
    text = path.read_text()
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{block.strip()}\n{end}{tail}"
    if new != text:
        with atomic_open(path, "w") as f:
            f.write(new)
    return True
