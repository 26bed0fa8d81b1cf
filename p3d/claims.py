"""The paper's claims, each judged from the tables that ``make figures`` wrote: ``results/claims.md``.

A :class:`Claim` pairs a sentence of the paper and the paper's own evidence (labelled as the paper's) with a
*judge*: a function that reads p3d's result tables (``results/tables/*.csv``) and returns an
:class:`Assessment` (p3d's evidence with its 95 % CIs, and a verdict). Nothing here is typed by hand: change a
result and the report changes with it. The verdicts follow fixed rules stated in each judge:

- ``reproduced``: p3d's measurement shows the claimed effect for every case the claim covers, with a 95 % CI
  that excludes no effect (or the wrong direction);
- ``partly reproduced``: some cases show it and none shows the opposite, or the effect is there but not
  distinctive (a no-learning control shows it too);
- ``not reproduced``: no case shows it, or some case shows the opposite;
- ``not testable here``: the claim needs what this environment cannot have (human participants, the real
  datasets); the reason is given;
- ``not measured``: the table the judge needs does not exist yet (run ``make figures``).

:data:`INVENTORY` lists every table and figure of the paper with the file(s) p3d writes for it, or why it
cannot be made here; :func:`inventory` checks which exist.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERDICTS = ("reproduced", "partly reproduced", "not reproduced", "not testable here", "not measured")
MODELS = ("FaceFormer", "CodeTalker", "SelfTalk")


@dataclass(frozen=True)
class Assessment:
    """p3d's evidence for one claim: ``verdict`` (one of :data:`VERDICTS`), a sentence with the numbers and
    their 95 % CIs, and the tables it was read from (file stems under the tables folder)."""

    verdict: str
    evidence: str
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: ``key`` (short id), ``text`` (the claim), ``paper`` (the paper's evidence, quoted
    as the paper's), ``judge(tables_dir) -> Assessment``."""

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


def _num(x: float) -> str:
    """Three significant digits; 'n/a' for NaN."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def _change(row: Any) -> str:
    return (f"{_num(row['without'])} -> {_num(row['with'])} "
            f"(change {_num(row['change'])} [{_num(row['change CI low'])}, {_num(row['change CI high'])}])")


# -- judges over paired-effect tables (p3d.experiments: comparison, metric, ..., verdict) ------------------
def _effect_rows(tables: Path, stem: str, metric: str, comparisons: Sequence[str]) -> list[Any]:
    df = _read(tables, stem)
    rows = []
    for comp in comparisons:
        hit = df[(df["comparison"] == comp) & (df["metric"].str.startswith(metric))]
        if len(hit):
            rows.append(hit.iloc[0])
    return rows


def _verdict_from_effects(rows: Sequence[Any], want: str = "better") -> str:
    """``want`` ('better' or 'worse'): reproduced when every row shows it, partly when some do and none shows
    the opposite, otherwise not reproduced."""
    opposite = "worse" if want == "better" else "better"
    n_want = sum(r["verdict"] == want for r in rows)
    n_opp = sum(r["verdict"] == opposite for r in rows)
    if not rows:
        return "not measured"
    if n_want == len(rows):
        return "reproduced"
    if n_want and not n_opp:
        return "partly reproduced"
    return "not reproduced"


def _effects_judge(stem: str, metric: str, comparisons: Sequence[str], labels: Sequence[str] | None = None,
                   want: str = "better") -> Callable[[Path], Assessment]:
    def judge(tables: Path) -> Assessment:
        rows = _effect_rows(tables, stem, metric, comparisons)
        if not rows:
            return Assessment("not measured", f"no {metric} rows in {stem}", (stem,))
        names = labels or [r["comparison"] for r in rows]
        parts = [f"{n}: {_change(r)}, {r['verdict']}" for n, r in zip(names, rows)]
        return Assessment(_verdict_from_effects(rows, want), f"{rows[0]['metric']}: " + "; ".join(parts) + ".",
                          (stem,))

    return judge


def _loss_effect(metric: str) -> Callable[[Path], Assessment]:
    """Table 2's paired effects; when the per-model-kappa sensitivity run exists (``make figures EXTRA=1``),
    its verdicts are appended (the verdict itself stays the main protocol's)."""
    main = _effects_judge("table2_loss_effects", metric, MODELS)

    def judge(tables: Path) -> Assessment:
        a = main(tables)
        try:
            rows = _effect_rows(tables, "table2_loss_effects_per_model_kappa", metric, MODELS)
        except _Missing:
            return a
        if not rows:
            return a
        alt = "; ".join(f"{m} {_num(r['change'])} [{_num(r['change CI low'])}, {_num(r['change CI high'])}] "
                        f"{r['verdict']}" for m, r in zip(MODELS, rows))
        return Assessment(a.verdict, a.evidence + f" Sensitivity, loss weight chosen on val for every model: {alt} "
                          f"(verdict {_verdict_from_effects(rows)}).",
                          a.sources + ("table2_loss_effects_per_model_kappa",))

    return judge


# -- individual judges -------------------------------------------------------------------------------
def _fdd(tables: Path) -> Assessment:
    df = _read(tables, "config1_results")
    df = df[(df["split"] == "test") & (df["metric"] == "fdd") & (df["train"] == "synth-voca")]
    parts, worse, better = [], 0, 0
    for model in MODELS:
        m = df[df["model"] == model.lower()]
        base, ours = m[m["critic"] == "none"], m[m["critic"] == "ours"]
        if base.empty or ours.empty:
            continue
        b, o = base.iloc[0], ours.iloc[0]
        # |FDD| intervals (FDD is signed: GT minus prediction); lower magnitude is better.
        def mag(r: Any) -> tuple[float, float, float]:
            lo, hi = sorted((abs(r["ci_low"]), abs(r["ci_high"])))
            if r["ci_low"] <= 0 <= r["ci_high"]:
                lo = 0.0
            return abs(r["value"]), lo, hi
        (bv, blo, bhi), (ov, olo, ohi) = mag(b), mag(o)
        scale = 1e7
        tag = "worse" if olo > bhi else "better" if ohi < blo else "overlapping CIs"
        worse += tag == "worse"
        better += tag == "better"
        parts.append(f"{model} |FDD| {bv * scale:.2f} [{blo * scale:.2f}, {bhi * scale:.2f}] -> "
                     f"{ov * scale:.2f} [{olo * scale:.2f}, {ohi * scale:.2f}] (1e-7 m², {tag})")
    if not parts:
        return Assessment("not measured", "no FDD rows in config1_results", ("config1_results",))
    verdict = "not reproduced" if worse else "reproduced"
    note = (" The synthetic face's upper face moves little, so GT FDD is near zero and any predicted upper-face "
            "motion raises it; CIs are per condition (not paired).")
    return Assessment(verdict, "; ".join(parts) + "." + note, ("config1_results",))


def _critic_vs(other: str, label: str) -> Callable[[Path], Assessment]:
    def judge(tables: Path) -> Assessment:
        df = _read(tables, "table3_critic_effects")
        rows = df[df["comparison"].str.endswith(f"ours vs {other}")]
        if rows.empty:
            return Assessment("not measured", f"no 'ours vs {other}' rows", ("table3_critic_effects",))
        models = sorted({c.split(":")[0] for c in rows["comparison"]})
        parts = [f"{r['comparison'].split(':')[0]} {r['metric']}: {_change(r)}, ours {r['verdict']}"
                 for _, r in rows.iterrows()]
        crit = rows[rows["metric"].str.startswith(("MTM", "PLRS", "SLCC"))]
        verdict = _verdict_from_effects(list(crit.to_dict("records")))
        scope = (f" Measured for {', '.join(models)} only (the cpu grid ablates the critic on FaceFormer); "
                 "the claim covers all three models.") if len(models) < len(MODELS) else ""
        if scope and verdict == "reproduced":
            verdict = "partly reproduced"
        return Assessment(verdict, f"As a loss vs {label} (change = ours - {label}): " + "; ".join(parts) + "." + scope,
                          ("table3_critic_effects",))

    return judge


def _wilson(k: float, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(int(round(k)), n).proportion_ci(method="wilson")
    return ci.low, ci.high


def _retrieval(tables: Path) -> tuple[dict[str, tuple[float, float, float, int]], float]:
    out, chance = {}, float("nan")
    for name in ("ours", "syncnet3d", "no2d"):
        try:
            df = _read(tables, f"stage2_retrieval_{name}")
        except _Missing:
            continue
        r = df.iloc[0]
        n = int(r["windows"])
        lo, hi = _wilson(r["speech->mesh R@1"] * n, n)
        out[name] = (float(r["speech->mesh R@1"]), lo, hi, n)
        chance = float(r["chance R@1"])
    return out, chance


def _two_d_prior(tables: Path) -> Assessment:
    ret, chance = _retrieval(tables)
    sources = ["stage2_retrieval_ours", "stage2_retrieval_no2d", "fig_s6_s7_medians"]
    parts, checks = [], []
    if "ours" in ret and "no2d" in ret:
        (o, olo, ohi, n), (w, wlo, whi, _) = ret["ours"], ret["no2d"]
        parts.append(f"held-out speech->mesh R@1 ours {o:.1%} [{olo:.1%}, {ohi:.1%}] vs w/o 2D prior {w:.1%} "
                     f"[{wlo:.1%}, {whi:.1%}] (n={n} windows, chance {chance:.2%}, Wilson CIs)")
        checks.append(olo > whi)
    try:
        med = _read(tables, "fig_s6_s7_medians").set_index(["critic", "split"])
        gap = {c: med.loc[(c, "test"), "loss"] - med.loc[(c, "train"), "loss"] for c in ("ours", "no2d")}
        parts.append(f"GT-pair loss test-train gap ours {gap['ours']:.2f} vs w/o 2D prior {gap['no2d']:.2f} (medians)")
        checks.append(gap["no2d"] > gap["ours"])
    except (_Missing, KeyError):
        pass
    try:
        loss = _critic_vs("Ours w/o 2D prior", "w/o 2D prior")(tables)
        parts.append(loss.evidence)
        checks.append(loss.verdict in ("reproduced", "partly reproduced"))
    except _Missing:
        pass
    if not parts:
        return Assessment("not measured", "no retrieval or critic tables", tuple(sources))
    verdict = "reproduced" if all(checks) else "partly reproduced" if any(checks) else "not reproduced"
    return Assessment(verdict, " ".join(p if p.endswith(".") else p + "." for p in parts),
                      tuple(sources + ["table3_critic_effects"]))


def _property(name: str, control_matters: bool) -> Callable[[Path], Assessment]:
    def judge(tables: Path) -> Assessment:
        df = _read(tables, "representation_properties")
        ours = df[(df["critic"] == "ours") & (df["property"] == name)]
        if ours.empty:
            return Assessment("not measured", f"no '{name}' row for ours", ("representation_properties",))
        o = ours.iloc[0]
        text = f"ours: {o['evidence']}."
        verdict = "reproduced" if bool(o["shows"]) else "not reproduced"
        ctrl = df[(df["critic"].str.startswith("raw")) & (df["property"] == name)]
        if control_matters and not ctrl.empty and bool(ctrl.iloc[0]["shows"]):
            text += f" But the no-learning control (raw inputs) shows it too: {ctrl.iloc[0]['evidence']}."
            if verdict == "reproduced":
                verdict = "partly reproduced"
        return Assessment(verdict, text, ("representation_properties",))

    return judge


def _temporal(tables: Path) -> Assessment:
    df = _read(tables, "fig5a_offset_summary").set_index("critic")
    if "ours" not in df.index:
        return Assessment("not measured", "no row for ours", ("fig5a_offset_summary",))
    r = df.loc["ours"]
    falls = r["peak offset"] == 0 and r["sim at 0 CI low"] > r["mean sim at |offset| >= 5"]
    text = (f"stage 2 (ours) speech-mesh cosine peaks at offset {int(r['peak offset'])}: {r['sim at 0']:.3f} "
            f"[{r['sim at 0 CI low']:.3f}, {r['sim at 0 CI high']:.3f}] vs {r['mean sim at |offset| >= 5']:.3f} at "
            f"|offset| >= 5 frames")
    try:
        s1 = _read(tables, "fig_s1a_offset_similarity").set_index("offset")
        far = s1[s1.index.to_series().abs() >= 5]["mean"].mean()
        text += (f"; stage 1 (speech-video, Fig. S1a): {s1.loc[0, 'mean']:.3f} [{s1.loc[0, 'ci_low']:.3f}, "
                 f"{s1.loc[0, 'ci_high']:.3f}] at 0 vs {far:.3f} at |offset| >= 5")
        falls = falls and s1.loc[0, "ci_low"] > far
    except (_Missing, KeyError):
        pass
    return Assessment("reproduced" if falls else "not reproduced", text + ".",
                      ("fig5a_offset_summary", "fig_s1a_offset_similarity"))


def _mead(metric: str, want: str) -> Callable[[Path], Assessment]:
    return _effects_judge("table4_effects", metric, [f"{m}: + synth-mead" for m in MODELS], MODELS, want=want)


def _loss_recovers(tables: Path) -> Assessment:
    rows = _effect_rows(tables, "table4_effects", "PLRS", [f"{m}: + ours" for m in MODELS])
    if not rows:
        return Assessment("not measured", "no '+ ours' rows in table4_effects", ("table4_effects",))
    parts = [f"{m}: {_change(r)}, {r['verdict']}" for m, r in zip(MODELS, rows)]
    return Assessment(_verdict_from_effects(rows), "PLRS, + synth-mead + ours vs + synth-mead: " + "; ".join(parts) + ".",
                      ("table4_effects",))


def _mtm_validity(tables: Path) -> Assessment:
    r = _read(tables, "fig_s5_slope").iloc[0]
    ok = r["ci_low"] > 0.8 and r["ci_high"] < 1.2 and r["r"] > 0.9
    return Assessment("reproduced" if ok else "not reproduced",
                      f"MTM against an injected offset of 0-10 frames on {int(r['n_clips'])} GT test clips: slope "
                      f"{r['slope']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] ms per ms, r = {r['r']:.3f} "
                      "(rule: slope CI within [0.8, 1.2] and r > 0.9).", ("fig_s5_slope",))


_DIFF = re.compile(r"PLRS minus LVE, rho with the oracle \((?P<scope>[^,]+),[^)]*\): "
                   r"(?P<d>[+-]?[\d.]+) \[(?P<lo>[+-]?[\d.]+), (?P<hi>[+-]?[\d.]+)\]")


def _plrs_people(tables: Path) -> Assessment:
    text = "Needs human rankings (16 participants in the paper); none collected here (`p3d study` builds the study)."
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
                f"{sc} {d:+.2f} [{lo:+.2f}, {hi:+.2f}]" for sc, d, lo, hi in diffs)
            agree = all(lo > 0 for _, _, lo, _ in diffs)
        else:
            agree = p["ci_low"] > lve["ci_high"]
        text += ". The proxy " + ("agrees with the claim (PLRS closer to the oracle than LVE)." if agree else
                                  "does not separate PLRS from LVE.")
    except (_Missing, KeyError):
        pass
    return Assessment("not testable here", text, tuple(sources))


def _baseline_sync(tables: Path) -> Assessment:
    df = _read(tables, "config1_results")
    df = df[(df["split"] == "test") & (df["metric"] == "mtm_ms") & (df["critic"] == "none")
            & (df["train"] == "synth-voca")]
    parts, inside = [], []
    for model in MODELS:
        m = df[df["model"] == model.lower()]
        if m.empty:
            continue
        r = m.iloc[0]
        parts.append(f"{model} {r['value']:.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}] ms")
        inside.append(r["ci_low"] <= 60 and r["ci_high"] >= 50)
    if not parts:
        return Assessment("not measured", "no baseline MTM rows", ("config1_results",))
    verdict = "reproduced" if all(inside) else "partly reproduced" if any(inside) else "not reproduced"
    return Assessment(verdict, "Baseline MTM on synth-voca test: " + "; ".join(parts)
                      + " (rule: the 95 % CI overlaps the paper's 50-60 ms).", ("config1_results",))


def _overhead(tables: Path) -> Assessment:
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
    verdict = "reproduced" if ratios and all(x > 1 for x in ratios) else "not reproduced"
    return Assessment(verdict, "Time per training iteration with the loss / without, one CPU thread: " + "; ".join(parts)
                      + ". The loss is a training term only: `p3d predict` never loads the critic, so inference is "
                      "unchanged by construction.", ("table_s8_training_cost",))


def _not_testable(reason: str) -> Callable[[Path], Assessment]:
    return lambda tables: Assessment("not testable here", reason)


_NO_PEOPLE = ("Needs human participants; none are available to this project. `p3d study make` builds the study "
              "(stimuli, counterbalanced survey page) and `p3d study analyze` computes this table with exact "
              "binomial tests and Wilson CIs once responses exist (notebook 09).")

CLAIMS: tuple[Claim, ...] = (
    Claim("loss-plrs", "The perceptual loss improves lip readability (PLRS) for FaceFormer, CodeTalker and SelfTalk.",
          "Table 2: PLRS 0.368 -> 0.463, 0.381 -> 0.388, 0.414 -> 0.418.", _loss_effect("PLRS")),
    Claim("loss-mtm", "The perceptual loss improves temporal synchronization (MTM) for all three models.",
          "Table 2: MTM 53.6 -> 52.2, 61.8 -> 60.9, 50.1 -> 49.2 ms.", _loss_effect("MTM")),
    Claim("loss-slcc", "The perceptual loss improves expressiveness (SLCC closer to the data's) for all three models.",
          "Table 2: SLCC Δ 0.08 -> 0.03, 0.04 -> 0.01, 0.07 -> 0.01.", _loss_effect("SLCC")),
    Claim("loss-lve", "The perceptual loss also lowers LVE for all three models.",
          "Table 2: LVE 3.357 -> 3.091, 3.700 -> 3.579, 2.971 -> 2.924.", _loss_effect("LVE")),
    Claim("loss-fdd", "With the loss, upper-face dynamics (FDD) are similar or improved.",
          "Table S7: FDD 3.789 -> 3.325, 3.414 -> 3.259, 3.319 -> 3.424 (x 1e-7).", _fdd),
    Claim("two-d-prior", "The 2D prior matters: without stage 1 the representation generalises worse and helps less.",
          "Table 3 (w/o 2D prior worse than ours as a loss for all models); Figs. S6/S7 (large train/test gap).",
          _two_d_prior),
    Claim("vs-syncnet", "Ours is a better perceptual loss than a CNN 3D SyncNet critic.",
          "Table 3: FaceFormer PLRS 0.435 (3D SyncNet) vs 0.463 (ours); 3D SyncNet raises CodeTalker's LVE and SLCC Δ.",
          _critic_vs("3D SyncNet", "3D SyncNet")),
    Claim("prop-clusters", "In the learned space, windows of the same phoneme cluster together (speech and mesh).",
          "Fig. 4c and Fig. S1b (t-SNE, qualitative).", _property("phoneme clustering", True)),
    Claim("prop-temporal", "The learned space is sensitive to temporal misalignment (similarity falls with offset).",
          "Fig. 5a and Fig. S1a (curves, values not given).", _temporal),
    Claim("prop-intensity", "Speech features move along a consistent direction as speech intensity rises.",
          "Fig. 5b (qualitative).", _property("intensity direction", True)),
    Claim("mead-slcc", "Adding MEAD-3D to training raises expressiveness (SLCC Δ falls).",
          "Table 4: Avg SLCC Δ 0.36 -> 0.07, 0.40 -> 0.31, 0.27 -> 0.11.", _mead("SLCC", "better")),
    Claim("mead-plrs", "Adding MEAD-3D to training lowers lip readability (PLRS).",
          "Table 4: PLRS 0.299 -> 0.176, 0.294 -> 0.154, 0.294 -> 0.216.", _mead("PLRS", "worse")),
    Claim("mead-loss", "The perceptual loss counterbalances the PLRS drop from MEAD-3D.",
          "Table 4: PLRS 0.176 -> 0.306, 0.154 -> 0.221, 0.216 -> 0.230.", _loss_recovers),
    Claim("mtm-valid", "MTM measures the degree of temporal mismatch.",
          "Fig. S5: MTM grows with an injected offset of 0-10 frames (values not given).", _mtm_validity),
    Claim("baselines-sync", "Existing models already reach reasonable temporal sync (MTM about 50-60 ms).",
          "Table 2 baselines 53.6 / 61.8 / 50.1 ms; Fig. S8.", _baseline_sync),
    Claim("plrs-people", "PLRS agrees with people better than LVE does.",
          "Table S3: Spearman rho 0.437 (PLRS) vs 0.166 (LVE), 16 participants.", _plrs_people),
    Claim("cost", "The loss adds training cost only (time and memory per iteration); inference is unchanged.",
          "Table S8: +0.09-0.15 s and about +280 MB per iteration (1.20x-2.09x time) on an A6000.", _overhead),
    Claim("people-intensity", "People prefer lip intensity that matches speech intensity.",
          "Table 1 left, 17 participants (cell values not given).", _not_testable(_NO_PEOPLE)),
    Claim("people-expressive", "People prefer expressive sync with 100 ms asynchrony over exact timing without it.",
          "Table 1 right: 82.6 % vs 17.4 %, 28 participants.", _not_testable(_NO_PEOPLE)),
    Claim("people-loss", "People prefer the models trained with the perceptual loss (lip sync and overall quality).",
          "Tables S4/S5: 72.9 % / 73.3 % overall; Table S6: 67.9 % (+ loss vs + MEAD-3D).", _not_testable(_NO_PEOPLE)),
    Claim("real-data", "The numbers of Tables 2-4 on VOCASET / MEAD-3D (the real datasets).",
          "Tables 2-4.", _not_testable("The real datasets (VOCASET, MEAD-3D, LRS3-3D) and FLAME cannot be downloaded "
                                       "here; p3d reads them from local paths (`paper` preset) but measured the synthetic "
                                       "corpus. Effects are compared, never absolute values.")),
)


def assess(tables_dir: str | Path, claims: Sequence[Claim] = CLAIMS) -> Any:
    """Judge every claim against the CSV tables in ``tables_dir``.

    Returns a DataFrame with one row per claim: ``key``, ``claim``, ``paper`` (the paper's evidence),
    ``p3d`` (p3d's evidence), ``verdict``, ``sources`` (comma-separated table stems).
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
                     "sources": ", ".join(a.sources)})
    return pd.DataFrame(rows)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def claims_markdown(df: Any, preset: str, header: str = "") -> str:
    """``results/claims.md``: a summary table (claim, verdict) and one section per claim with both evidences."""
    counts = df["verdict"].value_counts()
    lines = ["# The paper's claims, checked by p3d", "",
             f"Generated by `p3d.claims` from the tables of `make figures` at preset `{preset}` (synthetic corpus). "
             "'Paper' quotes arXiv 2503.20308's own evidence on the real datasets; 'p3d' is measured here, with 95 % "
             "CIs (paired cluster bootstrap over test clips unless stated). Effects are compared, never absolute values "
             "(different data and units).", ""]
    if header:
        lines += [header, ""]
    lines += ["Verdicts: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS if counts.get(v, 0)) + ".", "",
              "| # | claim | verdict |", "|---|---|---|"]
    for i, r in enumerate(df.itertuples(index=False), 1):
        lines.append(f"| {i} | {_md_cell(r.claim)} | **{r.verdict}** |")
    lines.append("")
    for i, r in enumerate(df.itertuples(index=False), 1):
        lines += [f"## {i}. {r.claim}", "", f"- **Verdict: {r.verdict}**", f"- Paper: {_md_cell(r.paper)}",
                  f"- p3d: {r.p3d}", f"- Tables: {r.sources or '–'}", ""]
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
