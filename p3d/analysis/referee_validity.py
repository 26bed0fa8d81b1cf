"""The referee validity battery: does a referee of lip readability score the ground truth above every
degraded version of it? (beyond the paper; the referees are PLRS, its calibrated companions, the viseme
oracle, LVE and MTM).

PLRS-p, the official PLRS with part of PLRS-c's hubness correction (:func:`p3d.metrics.plrs.plrs_partial`), has
one weight; :func:`select_hubness_weight` chooses it on a battery of validation speakers (minimax: the weight
whose least-separated degradation stays furthest below the GT), and the test speakers' battery then checks it.
PLRS-e, PLRS-c with a speaker-enrolled intensity term (:func:`p3d.metrics.plrs.plrs_enrolled`), has one weight
too, chosen by :func:`select_intensity_weight` on the same validation battery (the smallest that passes it).

:data:`BATTERY_DEGRADATIONS` (damped to 25/50/75 %, exaggerated to 125/150 %, shifted by +-2 and +-5
frames, a 5-frame moving average, jitter, another clip's motion, the static template) are built by
:func:`p3d.analysis.degradations.degradations` and scored by :func:`p3d.analysis.metric_validation.metric_rows`
(``calibrated=True`` adds PLRS-c and the retrieval scores of :mod:`p3d.metrics.plrs`).
:func:`referee_differences` pairs each with the GT over clips (clip-cluster bootstrap,
:func:`p3d.stats.paired_cluster_difference`), :func:`referee_validity` says which referees pass, and
:func:`plot_referee_forest` draws it (a matplotlib :class:`~matplotlib.figure.Figure`, no pyplot state).
The referees are :data:`REFEREES`: the official PLRS, its calibrated companions, the viseme oracle, LVE and
MTM (the last two sign-flipped).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from p3d.analysis.metric_validation import _nan_if_none, check_sign
from p3d.errors import InputError

#: The referee validity battery (:func:`referee_differences`): degradations that every referee of lip
#: readability should score below the ground truth. Names follow the grammar of
#: :func:`p3d.analysis.degradations.degradations`.
BATTERY_DEGRADATIONS: dict[str, str] = {
    "amp_0.25": "motion damped to 25 % (towards the template)",
    "amp_0.5": "motion damped to 50 %",
    "amp_0.75": "motion damped to 75 %",
    "amp_1.25": "motion exaggerated to 125 %",
    "amp_1.5": "motion exaggerated to 150 %",
    "shift_-5": "lips lead the speech by 5 frames",
    "shift_-2": "lips lead the speech by 2 frames",
    "shift_2": "lips lag the speech by 2 frames",
    "shift_5": "lips lag the speech by 5 frames",
    "movavg_5": "motion smoothed by a centred 5-frame moving average",
    "jitter_0.25": "small per-frame Gaussian noise on every vertex, sd 0.25 x its RMS motion (the lips and jaw most)",
    "other_clip": "another clip's motion on this template (mismatched content)",
    "static_template": "the speaker's neutral template in every frame (no motion)",
}

#: Referees of lip readability: variant name -> (column of :func:`p3d.analysis.metric_validation.metric_rows`,
#: sign). Sign +1: higher is better; -1: lower is better (flipped by :func:`referee_differences`). ``official``
#: is the paper's PLRS exactly as defined (Eq. (a)); ``calibrated`` is PLRS-c and ``retrieval_mrr`` /
#: ``retrieval_r1`` the retrieval scores of :func:`p3d.metrics.plrs.plrs_scores`; ``partial`` is PLRS-p
#: (:func:`p3d.metrics.plrs.plrs_partial`, its weight from :func:`select_hubness_weight` on validation
#: speakers; the column is added by :func:`with_plrs_partial`); ``enrolled`` is PLRS-e
#: (:func:`p3d.metrics.plrs.plrs_enrolled`, its weight from :func:`select_intensity_weight`, the column added by
#: :func:`with_plrs_enrolled`); ``oracle`` the viseme oracle's accuracy.
REFEREES: dict[str, tuple[str, int]] = {
    "official": ("plrs", 1),
    "calibrated": ("plrs_calibrated", 1),
    "retrieval_mrr": ("plrs_mrr", 1),
    "retrieval_r1": ("plrs_r1", 1),
    "partial": ("plrs_partial", 1),
    "enrolled": ("plrs_enrolled", 1),
    "oracle": ("oracle_accuracy", 1),
    "lve": ("lve", -1),
    "mtm": ("mtm", -1),
}
#: The entries of :data:`REFEREES` that are not referees of lip readability but scored beside them for comparison:
#: LVE (it needs the ground truth, so it cannot grade a prediction without one) and MTM (timing only).
COMPARISON_METRICS: frozenset[str] = frozenset({"lve", "mtm"})


def referee_differences(rows: Any, *, referees: Mapping[str, tuple[str, int]] | None = None, reference: str = "gt",
                        degradations_order: Sequence[str] | None = None, clip: str = "clip", sequence: str = "sequence",
                        confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Any:
    """Each referee's score of each degraded sequence minus its score of the ground truth, paired over clips.

    Args:
        rows: :func:`p3d.analysis.metric_validation.metric_rows` output (one row per clip and sequence),
            including the ``reference`` rows.
        referees: ``{variant: (column, sign)}``; default :data:`REFEREES` restricted to the columns present.
        reference: the sequence name of the ground truth.
        degradations_order: the degradations to report, in order (default: every other sequence, in order
            of appearance).
        confidence, n_resamples, seed: :func:`p3d.stats.paired_cluster_difference` (percentile bootstrap of
            clips; every referee and degradation sees the same clip draws).

    Returns:
        One row per (variant, degradation): ``variant``, ``degradation``, ``mean_minus_gt``, ``ci_low``,
        ``ci_high``, ``n_clips``. **Sign convention**: ``mean_minus_gt = sign * (mean score of the
        degradation - mean score of the GT)`` over the clips where both are defined, with ``sign`` = -1 for
        lower-is-better referees (LVE, MTM), so for *every* referee a negative value means the GT scored
        better, and the referee ranks the GT above that degradation when ``ci_high < 0``. NaN when the
        difference or its interval is undefined (e.g. MTM of a motionless sequence).
    """
    import pandas as pd

    from p3d.stats import paired_cluster_difference

    for col in (clip, sequence):
        if col not in rows:
            raise InputError(f"rows: no {col!r} column (have {list(rows.columns)})")
    if referees is None:
        referees = {k: v for k, v in REFEREES.items() if v[0] in rows}
    if not referees:
        raise InputError(f"rows: none of the referee columns {[c for c, _ in REFEREES.values()]}")
    ref = rows[rows[sequence] == reference]
    if ref.empty:
        raise InputError(f"rows: no {reference!r} sequence to compare with")
    if degradations_order is None:
        degradations_order = [n for n in dict.fromkeys(rows[sequence]) if n != reference]
    out = []
    for variant, (column, sign) in referees.items():
        if column not in rows:
            raise InputError(f"rows: no {column!r} column for referee {variant!r}")
        sign = check_sign(sign, f"referees[{variant!r}]")
        for name in degradations_order:
            sub = rows[rows[sequence] == name]
            if sub.empty:
                raise InputError(f"rows: no {name!r} sequence")
            # clips where both arms are defined (paired_cluster_difference pairs on clip labels)
            a = ref[[clip, column]].astype({column: float})
            b = sub[[clip, column]].astype({column: float})
            both = set(a.loc[np.isfinite(a[column]), clip]) & set(b.loc[np.isfinite(b[column]), clip])
            a, b = a[a[clip].isin(both)], b[b[clip].isin(both)]
            diff = lo = hi = None
            if both:
                d = paired_cluster_difference(a[column].to_numpy(), a[clip].tolist(), b[column].to_numpy(),
                                              b[clip].tolist(), confidence=confidence, n_resamples=n_resamples,
                                              seed=seed)
                diff, lo, hi = d.diff, d.low, d.high
            # (+ 0.0 turns the -0.0 of a flipped zero into 0.0)
            diff, lo, hi = (sign * _nan_if_none(x) + 0.0 for x in (diff, lo, hi))
            if sign < 0:  # flipping the sign swaps the ends of the interval
                lo, hi = hi, lo
            out.append({"variant": variant, "degradation": name, "mean_minus_gt": diff, "ci_low": lo, "ci_high": hi,
                        "n_clips": len(both)})
    return pd.DataFrame(out, columns=["variant", "degradation", "mean_minus_gt", "ci_low", "ci_high", "n_clips"])


def battery_sequences(corpus: Any, clips: Sequence[Any], seed: int = 0) -> Callable[[Any], dict[str, np.ndarray]]:
    """``clip -> {"gt": GT, degradation: sequence}`` for the battery (:data:`BATTERY_DEGRADATIONS`) of each of
    ``clips`` of ``corpus``, the input ``sequences`` of :func:`p3d.analysis.metric_validation.metric_rows`.
    Clip k's random draws come from ``default_rng([seed, k])``; ``other_clip`` takes clip k + 1's motion (the
    last clip takes the first's)."""
    from p3d.analysis.degradations import degradations

    clips = list(clips)
    if len(clips) < 2:
        raise InputError("clips: the battery's other_clip needs at least two clips")
    stems = [c.stem for c in clips]
    if len(set(stems)) != len(stems):  # other_clip would be the clip's own motion
        raise InputError(f"clips: repeated stems {sorted({s for s in stems if stems.count(s) > 1})}")
    names = ["gt", *BATTERY_DEGRADATIONS]

    def sequences(clip: Any) -> dict[str, np.ndarray]:
        if clip.stem not in stems:
            raise InputError(f"clip {clip.stem!r} is not one of the battery's clips")
        k = stems.index(clip.stem)
        other = clips[(k + 1) % len(clips)]
        return degradations(corpus.vertices(clip), corpus.templates[clip.identity], np.random.default_rng([seed, k]),
                            other_motion=corpus.vertices(other) - corpus.templates[other.identity], names=names)

    return sequences


#: The candidate weights of :func:`select_hubness_weight`: 0 (the official PLRS) to 1 (PLRS-c) in steps of 0.05.
HUBNESS_WEIGHTS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))


def with_plrs_partial(rows: Any, hubness_weight: float, *, official: str = "plrs",
                      calibrated: str = "plrs_calibrated", column: str = "plrs_partial") -> Any:
    """``rows`` (e.g. :func:`p3d.analysis.metric_validation.metric_rows` with ``calibrated=True``) with a
    ``column`` of PLRS-p at ``hubness_weight`` (:func:`p3d.metrics.plrs.plrs_partial`) added (a copy)."""
    from p3d.metrics.plrs import plrs_partial

    for col in (official, calibrated):
        if col not in rows:
            raise InputError(f"rows: no {col!r} column (PLRS-p needs the official PLRS and PLRS-c; score the rows "
                             "with calibrated=True)")
    out = rows.copy()
    out[column] = plrs_partial(rows[official].to_numpy(dtype=float), rows[calibrated].to_numpy(dtype=float),
                               hubness_weight)
    return out


def select_hubness_weight(rows: Any, *, weights: Sequence[float] = HUBNESS_WEIGHTS, confidence: float = 0.95,
                          n_resamples: int = 1000, seed: int = 0) -> tuple[float, Any]:
    """Choose PLRS-p's hubness weight (:func:`p3d.metrics.plrs.plrs_partial`) on a battery of *validation* clips.

    For each candidate weight, the battery of ``rows`` (:func:`p3d.analysis.metric_validation.metric_rows` of
    the GT and its degradations with ``calibrated=True``, sequence ``"gt"`` the reference) is scored as in
    :func:`referee_differences`; the weight chosen is the minimax one: the smallest worst-case ``ci_high`` over
    the degradations (how far the least-separated degradation stays below the GT; the first such weight on a
    tie). The chosen weight must then be checked on other clips (the test speakers' battery): choosing and
    judging on the same clips would make the battery's verdict circular.

    Returns:
        ``(weight, table)``: table has one row per candidate, ``hubness_weight``, ``worst_degradation``,
        ``worst_ci_high``, ``valid`` (:func:`referee_validity`'s verdict: every ``ci_high < 0``, each on at least
        :data:`MIN_VALIDITY_CLIPS` clips), ``chosen``.
    """
    table = _weight_scan(rows, [float(w) for w in weights], "hubness_weight", "partial",
                         with_plrs_partial, confidence, n_resamples, seed)
    best = int(np.argmin(table["worst_ci_high"].to_numpy()))
    table["chosen"] = np.arange(len(table)) == best
    return float(table["hubness_weight"].iloc[best]), table


def _weight_scan(rows: Any, weights: Sequence[float], name: str, variant: str, add_column: Callable[[Any, float], Any],
                 confidence: float, n_resamples: int, seed: int) -> Any:
    """One row per candidate weight: the battery of ``rows`` scored with the referee column that ``add_column``
    adds at that weight (:data:`REFEREES` ``variant``), its least-separated degradation and whether it passes
    (:func:`referee_validity`'s verdict: every ``ci_high < 0`` on at least :data:`MIN_VALIDITY_CLIPS` clips)."""
    import pandas as pd

    if not weights:
        raise InputError(f"weights: no candidate {name.replace('_', ' ')}")
    out = []
    for w in weights:
        diffs = referee_differences(add_column(rows, w), referees={variant: REFEREES[variant]}, confidence=confidence,
                                    n_resamples=n_resamples, seed=seed)
        hi = diffs["ci_high"].to_numpy(dtype=float)
        if not np.isfinite(hi).any():
            raise InputError("rows: no degradation could be compared with the GT")
        k = int(np.nanargmax(hi))
        # the verdict of referee_validity, which the chosen weight then faces (it also fails a degradation compared
        # on fewer than MIN_VALIDITY_CLIPS clips; np.all(hi < 0) alone passed such a battery)
        out.append({name: w, "worst_degradation": diffs["degradation"].iloc[k], "worst_ci_high": float(hi[k]),
                    "valid": bool(referee_validity(diffs)["valid"].iloc[0])})
    return pd.DataFrame(out)


#: The candidate weights of :func:`select_intensity_weight`: 0 (PLRS-c) to 1 in steps of 0.05.
INTENSITY_WEIGHTS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))


def with_plrs_enrolled(rows: Any, intensity_weight: float, *, calibrated: str = "plrs_calibrated",
                       amplitude: str = "lip_amplitude", identity: str = "identity", clip: str = "clip",
                       sequence: str = "sequence", reference: str = "gt", column: str = "plrs_enrolled") -> Any:
    """``rows`` (:func:`p3d.analysis.metric_validation.metric_rows` with ``calibrated=True``) with a ``column`` of
    PLRS-e at ``intensity_weight`` (:func:`p3d.metrics.plrs.plrs_enrolled`) added (a copy).

    Each clip's enrolled amplitude is the mean ``amplitude`` of the ``reference`` (GT) rows of the *other* clips
    of its speaker among ``rows`` (:func:`p3d.metrics.enrolled_lip_amplitude`); every sequence of a clip (its
    degradations) is judged against that one reference."""
    from p3d.metrics import enrolled_lip_amplitude
    from p3d.metrics.plrs import plrs_enrolled

    for col in (calibrated, amplitude, identity, clip, sequence):
        if col not in rows:
            raise InputError(f"rows: no {col!r} column (PLRS-e needs PLRS-c, the lip amplitude and the speaker; "
                             "score the rows with calibrated=True)")
    gt = rows[rows[sequence] == reference].drop_duplicates(clip)
    if gt.empty:
        raise InputError(f"rows: no {reference!r} sequence to enrol the speakers' lip amplitude from")
    enrolled = dict(zip(gt[clip], enrolled_lip_amplitude(gt[amplitude].to_numpy(dtype=float),
                                                         gt[identity].to_numpy())))
    out = rows.copy()
    out[column] = plrs_enrolled(rows[calibrated].to_numpy(dtype=float), rows[amplitude].to_numpy(dtype=float),
                                np.array([enrolled.get(c, np.nan) for c in rows[clip]], dtype=float),
                                intensity_weight)
    return out


def select_intensity_weight(rows: Any, *, weights: Sequence[float] = INTENSITY_WEIGHTS, confidence: float = 0.95,
                            n_resamples: int = 1000, seed: int = 0) -> tuple[float, Any]:
    """Choose PLRS-e's intensity weight (:func:`p3d.metrics.plrs.plrs_enrolled`) on a battery of *validation* clips:
    the **smallest** candidate with which the battery of ``rows`` passes (:func:`referee_validity`: every
    ``ci_high < 0``, each on at least :data:`MIN_VALIDITY_CLIPS` clips), i.e. the least departure from PLRS-c that
    ranks the GT above every degradation; the minimax weight (as :func:`select_hubness_weight`) when none passes.

    Why not minimax, as for PLRS-p: the enrolled term only ever separates the GT further from the amplitude and
    jitter degradations, so the worst case keeps improving with the weight and minimax would take the largest
    candidate, a referee that is mostly the amplitude term. As for PLRS-p, the chosen weight must then be
    checked on the test speakers' battery.

    Returns:
        ``(weight, table)``: one row per candidate, ``intensity_weight``, ``worst_degradation``,
        ``worst_ci_high``, ``valid``, ``chosen``.
    """
    table = _weight_scan(rows, sorted(float(w) for w in weights), "intensity_weight", "enrolled",
                         with_plrs_enrolled, confidence, n_resamples, seed)
    valid = np.flatnonzero(table["valid"].to_numpy())
    best = int(valid[0]) if valid.size else int(np.argmin(table["worst_ci_high"].to_numpy()))
    table["chosen"] = np.arange(len(table)) == best
    return float(table["intensity_weight"].iloc[best]), table


def referee_differences_by_speaker(rows: Any, *, identity: str = "identity", **options: Any) -> Any:
    """:func:`referee_differences` within each speaker (``identity`` column of ``rows``): one row per (speaker,
    variant, degradation), with the ``identity`` column first; ``options`` as :func:`referee_differences`.

    The pooled battery resamples clips, so with a few test speakers its intervals say nothing about *other*
    speakers; this table shows whether a referee's preference (e.g. for damped or exaggerated lips) holds for
    every speaker or only on average."""
    import pandas as pd

    if identity not in rows:
        raise InputError(f"rows: no {identity!r} column (have {list(rows.columns)})")
    parts = [referee_differences(grp, **options).assign(**{identity: spk})
             for spk, grp in rows.groupby(identity, sort=True)]
    if not parts:
        raise InputError("rows: no speaker to compare")
    out = pd.concat(parts, ignore_index=True)
    return out[[identity, *[c for c in out.columns if c != identity]]]


def battery_means(rows: Any) -> Any:
    """Notebook 08's chance view of the battery: per sequence of the battery's :func:`metric_rows
    <p3d.analysis.metric_validation.metric_rows>` (``rows``, with ``calibrated=True``), the mean over clips of the
    official PLRS, PLRS-c, the retrieval MRR and its chance level, and the oracle's accuracy; index ``sequence`` in
    the rows' order."""
    return rows.groupby("sequence", sort=False)[["plrs", "plrs_calibrated", "plrs_mrr", "plrs_mrr_chance",
                                                 "oracle_accuracy"]].mean()


def amplitude_view(by_speaker: Any) -> Any:
    """Notebook 08's per-speaker view of the amplitude degradations (``amp_*``) of
    :func:`referee_differences_by_speaker`: ``mean_minus_gt`` with one row per (variant, identity) and one column per
    degradation, in the table's order."""
    amp = by_speaker[by_speaker["degradation"].str.startswith("amp_")]
    return amp.pivot_table(index=["variant", "identity"], columns="degradation", values="mean_minus_gt", sort=False)


#: The fewest clips a degradation's difference may rest on for a referee to pass it: the clip bootstrap of one clip
#: is a zero-width interval, and of a handful hardly an interval at all.
MIN_VALIDITY_CLIPS = 10


def referee_validity(table: Any) -> Any:
    """Is each referee valid, i.e. does it score the GT above *every* degradation?

    ``table``: :func:`referee_differences` output (sign convention: negative = GT better). A degradation
    fails a referee when ``ci_high >= 0`` (the GT is not significantly better), the difference is undefined
    (NaN: the referee cannot score it) or rests on fewer than :data:`MIN_VALIDITY_CLIPS` clips (``n_clips``,
    where the table has it). Returns one row per variant, in table order: ``variant``, ``valid``
    (bool), ``failing`` (list of failing degradations, table order), ``n_degradations``.
    """
    import pandas as pd

    for col in ("variant", "degradation", "ci_high"):
        if col not in table:
            raise InputError(f"table: no {col!r} column (expected referee_differences output)")
    out = []
    for variant, grp in table.groupby("variant", sort=False):
        hi = grp["ci_high"].to_numpy(dtype=np.float64)
        fail = ~(np.isfinite(hi) & (hi < 0))
        if "n_clips" in grp:
            fail |= ~(grp["n_clips"].to_numpy(dtype=np.float64) >= MIN_VALIDITY_CLIPS)
        failing = grp.loc[fail, "degradation"].tolist()
        out.append({"variant": variant, "valid": not failing, "failing": failing, "n_degradations": len(grp)})
    return pd.DataFrame(out, columns=["variant", "valid", "failing", "n_degradations"])


# -- figure --------------------------------------------------------------------------------------------------
def plot_referee_forest(table: Any, *, validity: Any | None = None, labels: Mapping[str, str] | None = None,
                        title: str | None = None) -> Any:
    """Forest plot of :func:`referee_differences`: one panel per referee, one row per degradation, the
    sign-oriented difference from the GT with its CI, a line at 0. Red: the GT is not significantly better
    (the degradation fails the referee); undefined differences are marked "n/a". Panel titles say valid /
    not valid (from ``validity`` or computed)."""
    from matplotlib.figure import Figure

    if validity is None:
        validity = referee_validity(table)
    verdict = dict(zip(validity["variant"], validity["valid"]))
    variants = list(dict.fromkeys(table["variant"]))
    if not variants:
        raise InputError("table: no referee to plot")
    labels = {"official": "PLRS (official)", "calibrated": "PLRS-c (calibrated)", "retrieval_mrr": "retrieval MRR",
              "retrieval_r1": "retrieval R@1", "partial": "PLRS-p (partial correction)",
              "oracle": "viseme oracle accuracy", "lve": "LVE, mm$^2$ (flipped)", "mtm": "MTM, ms (flipped)",
              **(labels or {})}
    ncol = min(4, len(variants))
    nrow = -(-len(variants) // ncol)
    n_deg = max(len(g) for _, g in table.groupby("variant"))
    fig = Figure(figsize=(3.6 * ncol, 0.28 * n_deg * nrow + 1.4 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, variant in zip(axes, variants):
        grp = table[table["variant"] == variant].reset_index(drop=True)
        y = np.arange(len(grp))[::-1]
        for yi, (_, r) in zip(y, grp.iterrows()):
            ok = np.isfinite(r["ci_high"]) and r["ci_high"] < 0
            color = "tab:blue" if ok else "tab:red"
            if np.isfinite(r["mean_minus_gt"]):
                if np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"]):
                    ax.plot([r["ci_low"], r["ci_high"]], [yi, yi], color=color, lw=2)
                ax.plot(r["mean_minus_gt"], yi, "o", color=color, ms=4)
            else:
                ax.text(0, yi, "n/a", color="tab:red", va="center", ha="center", fontsize="small")
        ax.axvline(0, color="0.4", lw=1, ls="--")
        ax.set_yticks(y, grp["degradation"].tolist(), fontsize="small")
        ax.set_title(f"{labels.get(variant, variant)}\n{'valid' if verdict.get(variant) else 'NOT valid'}",
                     fontsize="medium", color="black" if verdict.get(variant) else "tab:red")
        ax.set_xlabel("degraded - GT (< 0: GT better)", fontsize="small")
        ax.grid(True, axis="x", alpha=0.3)
    for ax in axes[len(variants):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig
