"""Verdicts on the paper's three properties of a representation space (Sec. 4, Figs. 1b, 4, 5).

(1) **phoneme clustering**: phoneme groups are predictable from the features
    (:func:`p3d.analysis.representation.phoneme_separability`): the k-NN accuracy beats the
    majority-class rate by at least ``margin`` and its 95 % CI over clips lies above that rate (the
    windows of one clip are not independent trials; without clusters, a one-sided binomial test over the
    rows with p < ``alpha``);
(2) **temporal sensitivity**: similarity against offset (:func:`~p3d.analysis.representation.offset_similarity`)
    peaks within one frame of zero and the 95% CI over clips of the similarity at zero minus each clip's
    mean similarity at |offset| >= 5 frames (``vs_far``) lies above 0;
(3) **intensity direction**: the level means are ordered along the low->high direction for more
    identities than chance, judged leave-one-identity-out
    (:func:`~p3d.analysis.representation.intensity_direction`): a one-sided binomial test of the
    ordered identities against ``loio_chance`` with p < ``alpha``.

The thresholds are fixed here, before looking at any result, so a verdict is a computation, not a
judgement made after the fact.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from p3d.errors import InputError

PROPERTIES = ("phoneme clustering", "temporal sensitivity", "intensity direction")


def _binom_p(successes: int, n: int, p: float) -> float:
    from scipy.stats import binomtest

    if n <= 0:
        return math.nan
    return float(binomtest(successes, n, p, alternative="greater").pvalue)


def clustering_verdict(accuracy: float, chance: float, n: int, *, ci_low: float | None = None,
                       margin: float = 0.05, alpha: float = 0.01) -> tuple[bool, float]:
    """(holds, p-value) of property 1 for one feature set. With ``ci_low`` (the accuracy's 95 % CI over clips,
    :func:`~p3d.analysis.representation.phoneme_separability` with clusters) the test is that bound above
    ``chance`` and the p-value is NaN; a NaN ``ci_low`` (no interval) does not hold. Without it, a one-sided
    binomial test of ``n`` rows taken as independent."""
    if ci_low is not None:
        ok = math.isfinite(float(ci_low)) and float(ci_low) > chance
        return bool(accuracy - chance >= margin and ok), math.nan
    p = _binom_p(int(round(accuracy * n)), n, chance)
    return bool(accuracy - chance >= margin and p < alpha), p


def temporal_verdict(curve: Any, *, far: int = 5) -> tuple[bool, dict[str, float]]:
    """(holds, numbers) of property 2 from an ``offset_similarity`` DataFrame: the peak within one frame of 0 and
    the CI of ``vs_far`` at offset 0 (per clip, the similarity at 0 minus its own mean at ``|offset| >= far``)
    above 0. A curve without ``vs_far`` (written by an older p3d) is judged on the CI at 0 against the far mean
    taken as fixed, and says so (``far_fixed``). Without a CI (NaN: too few clips for one) the property is not
    shown."""
    if not {"offset", "mean", "ci_low"} <= set(curve.columns) or not (curve["offset"] == 0).any():
        raise InputError("curve: expected offset_similarity output with offset 0")
    peak = int(curve.loc[curve["mean"].idxmax(), "offset"])
    at0 = curve.loc[curve["offset"] == 0].iloc[0]
    far_mean = float(curve.loc[curve["offset"].abs() >= far, "mean"].mean())
    numbers = {"peak": peak, "at0": float(at0["mean"]), "far": far_mean}
    if "vs_far_ci_low" in curve.columns:
        lo, hi = float(at0["vs_far_ci_low"]), float(at0["vs_far_ci_high"])
        numbers.update(vs_far=float(at0["vs_far"]), vs_far_ci_low=lo, vs_far_ci_high=hi, far_fixed=False)
        holds = abs(peak) <= 1 and math.isfinite(lo) and lo > 0
    else:
        ci_low = float(at0["ci_low"])
        numbers.update(far_fixed=True)
        holds = abs(peak) <= 1 and math.isfinite(ci_low) and ci_low > far_mean
    return bool(holds), numbers


def temporal_evidence(numbers: Mapping[str, Any], far: int = 5) -> str:
    """The evidence sentence of :func:`temporal_verdict`'s numbers."""
    text = (f"peak at offset {numbers['peak']}; cos {numbers['at0']:.3f} at 0 vs {numbers['far']:.3f} "
            f"at |offset| >= {far}")
    if numbers.get("far_fixed", True):
        return text + " (far mean taken as fixed)"
    return text + (f"; per clip, 0 minus far {numbers['vs_far']:+.3f} "
                   f"[{numbers['vs_far_ci_low']:+.3f}, {numbers['vs_far_ci_high']:+.3f}]")


def intensity_verdict(result: Mapping[str, Any], *, alpha: float = 0.05) -> tuple[bool, float]:
    """(holds, p-value) of property 3 from an ``intensity_direction`` result with identities. The binomial test
    takes ``loio_chance``, the identities' mean chance (conservative when identities have different numbers of
    levels: the count of a mix of chances varies less than a binomial's of their mean)."""
    n = int(result.get("n_identities", 0))
    frac, chance = result.get("loio_ordered_fraction", math.nan), result.get("loio_chance", math.nan)
    if n < 2 or not math.isfinite(frac):
        return False, math.nan
    p = _binom_p(int(round(frac * n)), n, chance)
    return bool(p < alpha), p


def verdicts(separability: Any, curves: Mapping[str, Any], intensity: Mapping[str, Mapping[str, Any]]) -> Any:
    """A table with one row per (critic, property): the evidence and whether the property holds.

    Args:
        separability: DataFrame with ``critic``, ``features`` (speech / mesh), ``accuracy``,
            ``chance``, ``n`` (rows of :func:`~p3d.analysis.representation.phoneme_separability`).
        curves: {critic: offset_similarity DataFrame}.
        intensity: {critic: intensity_direction result (with identities)}.
    """
    import pandas as pd

    rows = []
    critics = list(dict.fromkeys(list(separability["critic"]) + list(curves) + list(intensity)))
    for critic in critics:
        sep = separability[separability["critic"] == critic]
        if len(sep):
            parts, holds_all = [], []
            for _, r in sep.iterrows():
                clipwise = "ci_low" in r and pd.notna(r.get("n_clusters"))
                ci_low = (float(r["ci_low"]) if pd.notna(r["ci_low"]) else math.nan) if clipwise else None
                holds, p = clustering_verdict(r["accuracy"], r["chance"], int(r["n"]), ci_low=ci_low)
                holds_all.append(holds)
                if clipwise:
                    ci = (f"[{r['ci_low']:.1%}, {r['ci_high']:.1%}]" if pd.notna(r["ci_low"]) else "[no CI]")
                    parts.append(f"{r['features']}: {r['accuracy']:.1%} {ci} over {int(r['n_clusters'])} clips vs "
                                 f"chance {r['chance']:.1%}")
                else:
                    parts.append(f"{r['features']}: {r['accuracy']:.1%} vs chance {r['chance']:.1%} (p={p:.2g})")
            rows.append({"critic": critic, "property": PROPERTIES[0], "shows": all(holds_all),
                         "evidence": "; ".join(parts)})
        if critic in curves:
            holds, d = temporal_verdict(curves[critic])
            rows.append({"critic": critic, "property": PROPERTIES[1], "shows": holds,
                         "evidence": temporal_evidence(d)})
        if critic in intensity:
            r = intensity[critic]
            holds, p = intensity_verdict(r)
            rows.append({"critic": critic, "property": PROPERTIES[2], "shows": holds,
                         "evidence": f"levels ordered for {r.get('loio_ordered_fraction', math.nan):.0%} of "
                                     f"{r.get('n_identities', 0)} identities held out (chance "
                                     f"{r.get('loio_chance', math.nan):.0%}, p={p:.2g}); identity directions' "
                                     f"mean cosine {r.get('direction_cosine_mean', math.nan):.2f}"})
    return pd.DataFrame(rows, columns=["critic", "property", "shows", "evidence"])
