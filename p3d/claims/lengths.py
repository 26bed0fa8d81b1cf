"""How long the two arms of each paired comparison trained, and whether the effects follow it.

At ``full`` every talking head stops on its own validation plateau (:mod:`p3d.train.convergence`), so the two
arms of one seed of a comparison (Table 2: without / with the loss; Table 3: an ablation critic / ours; Table 4:
synth-mead added, then the loss) may stop at different steps. The official FaceFormer script trains every model
for a fixed 100 epochs (paper digest, "Base-model settings"), so there both arms of a comparison train equally
long; here an effect may also carry a difference in training length. This module puts the steps beside the
effects (:func:`training_steps`, :func:`training_steps_note`) and tests whether the per-seed effects follow them
(:func:`length_sensitivity`): over the seed pairs whose arms' lengths differ by more than a quarter, how often the
longer-trained arm is the better one, with a two-sided sign test (with no effect of length, either arm is better
with probability 1/2). Where the arms were compared at equal length (``ExperimentSpec.equal_length``: each run
continued to the longest stop of its model and seed's arms, ``continued_from`` in ``convergence.csv``), no pair
differs, and the note shows where each arm's own rule had stopped it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from p3d import paper
from p3d.claims.seeds import SEED_COMPARISONS, _effect_table_seed_changes, _run_table_seed_changes, arm_rows
from p3d.claims.tables import _metric_key, _Missing, _read
from p3d.train.api import EVALUATOR_DIR, EVALUATOR_STAGE1_DIR

#: The table :func:`length_sensitivity` is written to (``results/tables/<stem>.csv``, notebook ``10_claims``).
LENGTH_SENSITIVITY_STEM = "training_length_sensitivity"
#: Two arms' lengths "differ" when the later stop is more than this factor past the earlier one.
UNEQUAL_FACTOR = 1.25
#: The run tables' per-seed metrics -> p3d.paper metric keys (for the direction of "better").
_RUN_METRIC_KEYS = {"mtm_ms": "mtm_ms", "lve": "lve", "fdd_abs": "fdd", "slcc_delta": "slcc_delta", "plrs": "plrs",
                    "plrs_calibrated": "plrs"}


def _run_tables(tables: str | Path, stem: str, convergence_columns: Sequence[str]) -> tuple[Any, Any, Any] | None:
    """The run table behind effect table ``stem`` (:data:`p3d.claims.seeds.SEED_COMPARISONS`), ``convergence.csv``
    and the comparisons of ``stem``; None when ``stem`` has none, either table is missing, the run table lacks
    ``seed, critic, run, model`` or ``convergence.csv`` lacks ``convergence_columns``."""
    if stem not in SEED_COMPARISONS:
        return None
    source, comparisons = SEED_COMPARISONS[stem]
    try:
        df, conv = _read(Path(tables), source), _read(Path(tables), "convergence")
    except _Missing:
        return None
    if not {"seed", "critic", "run", "model"} <= set(df.columns) or not set(convergence_columns) <= set(conv.columns):
        return None
    return df, conv, comparisons


def training_steps(tables: str | Path, stem: str, *, own_stop: bool = False) -> dict[str, dict[str, tuple[int, int]]]:
    """How long the two arms of each per-seed comparison of effect table ``stem`` trained
    (:data:`p3d.claims.judges.SEED_COMPARISONS`): ``comparison label -> {seed: (steps before, steps after)}``, the
    steps at which each arm's talker stopped (``convergence.csv``'s ``steps``, joined on the run table's ``run``
    as ``talkers/<run>``); with ``own_stop``, where each arm's own stopping rule had stopped it (an equal-length
    run's ``continued_from``, :func:`p3d.experiments.train_at_equal_length`; ``steps`` for a run trained to its own
    stop). Empty when the run table, its ``run`` column or ``convergence.csv`` is missing; a seed whose arm has no,
    or more than one, training run recorded is left out."""
    import pandas as pd

    read = _run_tables(tables, stem, ("run", "steps"))
    if read is None:
        return {}
    df, conv, comparisons = read
    ended = conv["steps"].astype(int)
    if own_stop and "continued_from" in conv:
        ended = pd.to_numeric(conv["continued_from"], errors="coerce").fillna(ended).astype(int)
    steps = dict(zip(conv["run"].astype(str), ended))
    keys = [k for k in ("model", "critic", "train", "seed", "run") if k in df]
    rows = df[df["seed"].astype(str) != "all"].drop_duplicates(keys)
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for model, sub in rows.groupby("model", sort=False):
        for template, before, after in comparisons:
            runs = []
            for critic, train in (before, after):
                arm = arm_rows(sub, critic, train)
                runs.append({str(s): g["run"].astype(str).tolist() for s, g in arm.groupby(arm["seed"].astype(str))})
            pairs = {}
            for seed in sorted(set(runs[0]) & set(runs[1]), key=lambda x: (len(x), x)):
                a, b = (f"talkers/{r[seed][0]}" if len(r[seed]) == 1 else None for r in runs)
                if a in steps and b in steps:
                    pairs[seed] = (steps[a], steps[b])
            if pairs:
                out[template.format(model=paper.MODEL_LABELS.get(model, model))] = pairs
    return out


def _own_run(run: str) -> str:
    """The own-length run that an equal-length run continued (:attr:`p3d.experiments.TalkerExperiment.own_length`:
    the name without ``_eq`` before the seed); other names as they are."""
    return re.sub(r"_eq(_seed\d+)$", r"\1", run)


def _not_converged(row: Any, own: Any | None) -> str | None:
    """Why a talker run of ``convergence.csv`` (``row``) did not end where its stopping rule ends it, or None: not
    finished (``finished`` false), or under the plateau rule a run that hit its step cap (``converged`` false) or
    whose rule never decided (empty). An equal-length run (a fixed-length continuation) is judged by ``own``, the
    row of the own-length run it continued, whose rule chose where it stopped (None: not in the table)."""
    def flag(v: Any) -> str:
        return str(v).strip().lower()

    if "finished" in row and flag(row["finished"]) == "false":
        return f"unfinished at {int(row['steps'])} steps"
    if "stop" not in row:  # a table without the rule: which runs hit a cap is unknown
        return None
    ruled = row if flag(row["stop"]) == "plateau" else own if own is not None and flag(own["stop"]) == "plateau" \
        else None
    if ruled is None or flag(ruled["converged"]) == "true":
        return None
    name = "" if ruled is row else f" (its own-length run {ruled['run']})"
    if flag(ruled["converged"]) == "false":
        return f"stopped at its {int(ruled['steps'])}-step cap before its validation plateau{name}"
    return f"its stopping rule never decided{name}"


#: The PLRS evaluator's training runs in ``convergence.csv`` (its own stage 1, then itself:
#: :attr:`p3d.experiments.layout.RunLayout.evaluator_stage1`, ``.evaluator``): every PLRS value rests on them.
EVALUATOR_RUNS: tuple[str, ...] = (EVALUATOR_STAGE1_DIR, EVALUATOR_DIR)
#: A talker run's critic pipeline in its folder name (:attr:`p3d.experiments.TalkerExperiment.name`: ``_c<seed>``
#: after the loss weight; none for pipeline 0).
_CRITIC_SEED = re.compile(r"_[kw][^_]+_c(\d+)(?=_|$)")


def critic_runs(critic: str, critic_seed: int = 0, *, loss: bool = True) -> tuple[str, ...]:
    """The training runs of ``convergence.csv`` that critic ``critic`` of critic pipeline ``critic_seed`` rests on,
    named as :class:`p3d.experiments.layout.RunLayout` places them under ``runs/<preset>`` (pipeline c >= 1 under
    ``critic_seed<c>/``): with ``loss``, first the loss critic fine-tuned from it (the perceptual loss of a talker
    trained with it); then the critic itself; for ``ours``, the stage 1 it starts from (the 2D prior, Sec. 3.1)."""
    from p3d.experiments.layout import RunLayout

    lay = RunLayout(Path(), Path(), "")  # runs/<preset> as "": each run's name relative to it
    paths = ([lay.loss_critic(critic, critic_seed)] if loss else []) + [lay.critic(critic, critic_seed)] + \
        ([lay.stage1(critic_seed)] if critic == "ours" else [])
    return tuple(p.as_posix() for p in paths)


def _critic_reasons(rows: dict[str, Any], runs: Sequence[str], role: str) -> list[str]:
    """``"<role> <run> <why>"`` for each of ``runs`` (``convergence.csv`` names) whose row in ``rows`` says it did
    not converge (:func:`_not_converged`); a run without a row is not listed."""
    out = []
    for run in runs:
        why = _not_converged(rows[run], None) if run in rows else None
        if why:
            out.append(f"{role} {run} {why}")
    return out


def unconverged_critics(tables: str | Path, runs: Sequence[str], role: str = "critic run") -> list[str]:
    """Those of ``runs`` (``convergence.csv`` names: :func:`critic_runs`, :data:`EVALUATOR_RUNS`) whose training did
    not converge (:func:`_not_converged`, the talkers' rule): ``["<role> <run> <why>", ...]`` in the order given.
    Empty when ``convergence.csv``, or a column needed, is missing; a run absent from it is not listed."""
    try:
        conv = _read(Path(tables), "convergence")
    except _Missing:
        return []
    if not {"run", "steps", "converged"} <= set(conv.columns):
        return []
    return _critic_reasons({str(r["run"]): r for r in conv.to_dict("records")}, runs, role)


def unconverged_runs(tables: str | Path, stem: str) -> dict[str, list[str]]:
    """The compared arms' training runs of effect table ``stem`` (:data:`p3d.claims.seeds.SEED_COMPARISONS`) that
    did not converge (:func:`_not_converged`): ``comparison label -> ["seed s: <run> <why>", ..., "critic run <run>
    <why>", ...]``: the arms' talker runs, from the run table's per-seed ``run`` column joined with
    ``convergence.csv`` as :func:`training_steps` joins them, and for an arm trained with a perceptual loss the
    critic runs that loss rests on (:func:`critic_runs` of the talker's critic pipeline, ``_c<seed>`` in its name),
    each listed once. Empty when either table, or a column needed, is missing; a run absent from
    ``convergence.csv`` is not listed."""
    read = _run_tables(tables, stem, ("run", "steps", "converged"))
    if read is None:
        return {}
    df, conv, comparisons = read
    rows = {str(r["run"]): r for r in conv.to_dict("records")}
    runs = df[df["seed"].astype(str) != "all"].drop_duplicates([k for k in ("model", "critic", "train", "seed", "run")
                                                               if k in df])
    out: dict[str, list[str]] = {}
    for model, sub in runs.groupby("model", sort=False):
        for template, before, after in comparisons:
            found = []
            for critic, train in (before, after):
                for r in arm_rows(sub, critic, train).itertuples(index=False):
                    row = rows.get(f"talkers/{r.run}")
                    why = None if row is None else _not_converged(row, rows.get(f"talkers/{_own_run(str(r.run))}"))
                    if why:
                        found.append(f"seed {r.seed}: {r.run} {why}")
                    if critic != "none":  # the critic of its loss (Eq. 6) and the runs it was trained from
                        found += _critic_reasons(rows, critic_runs(critic, _critic_seed(str(r.run))), "critic run")
            if found:
                out[template.format(model=paper.MODEL_LABELS.get(model, model))] = sorted(set(found))
    return out


def _critic_seed(run: str) -> int:
    """The critic pipeline of talker run ``run`` (its folder name, :data:`_CRITIC_SEED`; 0 when it names none)."""
    m = _CRITIC_SEED.search(run)
    return int(m.group(1)) if m else 0


def _unequal(before: int, after: int) -> bool:
    return max(before, after) > UNEQUAL_FACTOR * min(before, after)


def _steps_list(shown: Sequence[tuple[str, dict[str, tuple[int, int]]]]) -> str:
    return "; ".join(f"{c} " + ", ".join(f"{a}→{b}" for a, b in p.values()) for c, p in shown)


def training_steps_note(lengths: dict[str, dict[str, tuple[int, int]]], comparisons: Sequence[str] | None = None,
                        own_stops: dict[str, dict[str, tuple[int, int]]] | None = None) -> str:
    """One sentence of :func:`training_steps` for the comparisons named (all when None): each comparison's steps
    at the stop, before → after, per seed, and how many seed pairs differ in length by more than
    :data:`UNEQUAL_FACTOR`; empty when there are none. ``own_stops`` (:func:`training_steps` with ``own_stop``):
    where the arms' own rules had stopped them, shown when the arms trained past them (equal-length runs)."""
    shown = [(c, lengths[c]) for c in (lengths if comparisons is None else comparisons) if c in lengths]
    if not shown:
        return ""
    n = sum(len(p) for _, p in shown)
    far = sum(_unequal(a, b) for _, p in shown for a, b in p.values())
    stops = [(c, own_stops[c]) for c, _ in shown if own_stops and c in own_stops]
    if stops and stops != shown:
        text = ("Training steps per seed, before → after (`convergence.csv`; each arm continued without its stopping "
                "rule to the longest stop among its model and seed's arms): " + _steps_list(shown) + "; where their "
                "own validation plateaus had stopped them: " + _steps_list(stops) + ". ")
    else:
        text = ("Training steps at each arm's stop, before → after per seed (`convergence.csv`; each talker stops on "
                "its own validation plateau): " + _steps_list(shown) + ". ")
    return text + (f"{far} of {n} seed pairs differ in length by more than a quarter, so their effects also carry a "
                   "difference in training length." if far else "No seed pair differs in length by more than a "
                   "quarter.")


def _direction(metric: str) -> int | None:
    """+1 when a higher value of ``metric`` (a run-table key or an effect-table label) is better, -1 when lower
    is, None for a metric without a direction here."""
    key = _RUN_METRIC_KEYS.get(metric)
    if key is None:
        try:
            key = _metric_key(metric)
        except KeyError:
            return None
    return -1 if paper.LOWER_IS_BETTER[key] else 1


def length_sensitivity(tables: str | Path, stems: Sequence[str] = tuple(SEED_COMPARISONS)) -> Any:
    """Whether the per-seed effects of effect tables ``stems`` follow the arms' training lengths.

    For each effect table and metric with per-seed changes (:func:`p3d.claims.seeds.seed_changes_by_seed`: an
    effect-table label such as ``LVE (1e-5 m²)`` or ``PLRS-e`` when the per-seed effect table exists, else the run
    table's metrics, e.g. ``plrs_calibrated``; FDD as ``fdd_abs``, the change of |FDD|, the magnitude the FDD claim
    judges: signed FDD is GT minus prediction), pooled over the table's comparisons: ``pairs`` (seed pairs with both
    lengths and a defined change: a seed whose change is NaN is left out), ``unequal`` (pairs whose lengths differ
    by more than :data:`UNEQUAL_FACTOR`),
    ``longer_better`` (of those, pairs whose longer-trained arm is the better one: the change's sign is that of
    "better" when the after arm trained longer, and the opposite when it trained shorter), its share and the
    two-sided sign test's p value (binomial, 1/2; NaN without unequal pairs). A change of exactly 0 counts as not
    better. Returns a DataFrame with columns ``effect_table, metric, pairs, unequal, longer_better,
    longer_better_share, sign_test_p``, one row per effect table and metric, in table order."""
    import pandas as pd
    from scipy.stats import binomtest

    tables = Path(tables)
    rows = []
    for stem in stems:
        lengths = training_steps(tables, stem)
        if not lengths:
            continue
        changes = _effect_table_seed_changes(tables, stem)  # every metric and referee under its own label
        if not any(c in lengths for c, _ in changes):
            changes = _run_table_seed_changes(tables, stem, magnitude=True)  # FDD as |FDD| (fdd_abs)
        for metric in sorted({m for c, m in changes if c in lengths}):
            sign = _direction(metric)
            if sign is None:
                continue
            pairs = unequal = better = 0
            for comparison, by_seed in lengths.items():
                for seed, (before, after) in by_seed.items():
                    change = changes.get((comparison, metric), {}).get(seed)
                    if change is None or not math.isfinite(change):  # undefined (NaN) was counted as not better
                        continue
                    pairs += 1
                    if _unequal(before, after):
                        unequal += 1
                        longer_after = 1 if after > before else -1
                        better += change * sign * longer_after > 0
            if pairs:
                rows.append({"effect_table": stem, "metric": metric, "pairs": pairs, "unequal": unequal,
                             "longer_better": better,
                             "longer_better_share": better / unequal if unequal else float("nan"),
                             "sign_test_p": binomtest(better, unequal).pvalue if unequal else float("nan")})
    return pd.DataFrame(rows, columns=["effect_table", "metric", "pairs", "unequal", "longer_better",
                                       "longer_better_share", "sign_test_p"])
