"""The per-training-seed changes behind the paired effect tables of Tables 2-4 (:func:`seed_changes`): from the
run tables' per-seed rows (``config1_results.csv``, ``config2_results.csv``) or the per-seed effect tables
(``<stem>_per_seed.csv``). :mod:`p3d.claims.judges` counts the seeds sharing each pooled change's sign;
:mod:`p3d.claims.lengths` pairs them with the arms' training steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from p3d import paper
from p3d.claims.tables import _Missing, _read
from p3d.tables import PER_SEED_SUFFIX

_VOCA, _VOCA_MEAD = "synth-voca", "synth-voca+synth-mead"
#: Each effect table's per-seed comparisons: stem -> (run table, [(comparison label, arm before, arm after)]), an arm
#: being (critic, training corpora); ``{model}`` is the model's label. The labels are the effect tables' own.
SEED_COMPARISONS: dict[str, tuple[str, tuple[tuple[str, tuple[str, str], tuple[str, str]], ...]]] = {
    "table2_loss_effects": ("config1_results", (("{model}", ("none", _VOCA), ("ours", _VOCA)),)),
    "table3_critic_effects": ("config1_results", (
        ("{model}: ours vs 3D SyncNet", ("syncnet3d", _VOCA), ("ours", _VOCA)),
        ("{model}: ours vs Ours w/o 2D prior", ("no2d", _VOCA), ("ours", _VOCA)))),
    "table4_effects": ("config2_results", (
        ("{model}: + synth-mead", ("none", _VOCA), ("none", _VOCA_MEAD)),
        ("{model}: + ours", ("none", _VOCA_MEAD), ("ours", _VOCA_MEAD)))),
}
#: The Table-2 effect table (critic ``ours`` against no loss).
_SEED_STEM = "table2_loss_effects"


def seed_changes(tables: Path, stem: str = _SEED_STEM) -> dict[tuple[str, str], list[float]]:
    """The per-training-seed changes behind effect table ``stem`` (:data:`SEED_COMPARISONS`: Table 2, the loss;
    Table 3, critic ours against each ablation critic; Table 4, synth-mead added, then the loss), from two sources:

    - the run table's per-seed rows on the whole test set (its ``test`` split: not the weight selection's ``val``
      runs, which notebook 06 writes beside them): ``(comparison label, run-table metric) -> [after - before
      of seed s, ...]`` over the seeds both arms have. None without them (one seed per run), for a stem without
      per-seed comparisons, or for an arm with more than one run per seed (e.g. a sensitivity run at another weight);
    - the per-seed effect table ``<stem>_per_seed.csv`` when it exists (columns ``comparison, metric, seed,
      change``: each seed's own paired effect, :func:`p3d.experiments.per_seed_effects` in notebooks 06 and 07,
      or ``scripts/merge_seed_tables.py``):
      ``(comparison label, effect-table metric label) -> [change of seed s, ...]`` in seed order. Its metric
      labels (``MTM (ms)``, ``PLRS-e``) never collide with the run tables' (``mtm_ms``); it also covers the
      referees that the run tables do not hold per seed (PLRS-p, PLRS-e)."""
    return _in_seed_order(seed_changes_by_seed(tables, stem))


def seed_changes_by_seed(tables: Path, stem: str = _SEED_STEM) -> dict[tuple[str, str], dict[str, float]]:
    """:func:`seed_changes` keyed by seed: ``(comparison label, metric) -> {seed: change}``, seeds as strings."""
    return {**_run_table_seed_changes(tables, stem), **_effect_table_seed_changes(tables, stem)}


def _in_seed_order(changes: dict[tuple[str, str], dict[str, float]]) -> dict[tuple[str, str], list[float]]:
    """``{seed: change}`` dicts as lists in seed order (numeric seeds by value)."""
    return {k: [v[s] for s in sorted(v, key=lambda x: (len(x), x))] for k, v in changes.items()}


def arm_rows(rows: Any, critic: str, train: str) -> Any:
    """The rows of a run table that belong to the arm (critic, training corpora) (``train`` ignored by a table
    without that column)."""
    return rows[(rows["critic"] == critic) & ((rows["train"] == train) if "train" in rows else True)]


#: Signed metrics whose direction lies in their magnitude (FDD: GT minus prediction; the FDD claim judges |FDD|).
MAGNITUDE_METRICS: tuple[str, ...] = ("fdd",)


def _run_table_seed_changes(tables: Path, stem: str, *, magnitude: bool = False
                            ) -> dict[tuple[str, str], dict[str, float]]:
    """The run table's per-seed changes behind ``stem`` (:func:`seed_changes_by_seed`, first source); with
    ``magnitude``, the change of |value| for :data:`MAGNITUDE_METRICS`, under ``<metric>_abs``."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    if stem not in SEED_COMPARISONS:
        return out
    source, comparisons = SEED_COMPARISONS[stem]
    try:
        df = _read(tables, source)
    except _Missing:
        return out
    if "seed" not in df or "critic" not in df:
        return out
    rows = df[df["seed"].astype(str) != "all"]
    if "split" in rows:  # the test runs: notebook 06 writes its weight selection's val runs beside them
        rows = rows[rows["split"].astype(str) == "test"]
    if "level" in rows:  # the whole test set (a level-wise row would repeat a seed)
        rows = rows[rows["level"].isna() | (rows["level"].astype(str).isin(["", "all"]))]
    for (model, metric), sub in rows.groupby(["model", "metric"]):
        for template, before, after in comparisons:
            arms = []
            for critic, train in (before, after):
                arm = arm_rows(sub, critic, train)
                arms.append(arm.set_index(arm["seed"].astype(str))["value"])
            if any(a.empty or a.index.has_duplicates for a in arms):
                continue
            seeds = sorted(set(arms[0].index) & set(arms[1].index), key=lambda x: (len(x), x))
            label = template.format(model=paper.MODEL_LABELS.get(model, model))
            if magnitude and metric in MAGNITUDE_METRICS:
                out[(label, f"{metric}_abs")] = {s: float(abs(arms[1][s]) - abs(arms[0][s])) for s in seeds}
            else:
                out[(label, metric)] = {s: float(arms[1][s] - arms[0][s]) for s in seeds}
    return out


def _effect_table_seed_changes(tables: Path, stem: str) -> dict[tuple[str, str], dict[str, float]]:
    """``<stem>_per_seed.csv``'s changes: ``(comparison, metric label) -> {seed: change}`` (:func:`seed_changes`);
    empty when the table is absent. A (comparison, metric) with a repeated seed is ambiguous and is left out."""
    from p3d.errors import InputError

    try:
        df = _read(tables, stem + PER_SEED_SUFFIX)
    except _Missing:
        return {}
    missing = {"comparison", "metric", "seed", "change"} - set(df.columns)
    if missing:
        raise InputError(f"{Path(tables) / (stem + PER_SEED_SUFFIX)}.csv lacks the columns {sorted(missing)}")
    out: dict[tuple[str, str], dict[str, float]] = {}
    for (comparison, metric), sub in df.groupby(["comparison", "metric"], sort=False):
        if sub["seed"].duplicated().any():
            continue
        out[(str(comparison), str(metric))] = {str(s): float(c) for s, c in zip(sub["seed"], sub["change"])}
    return out


def seed_changes_of(per_seed: dict[tuple[str, str], list[float]], comparison: str, metric_label: str,
                    run_metric: str | None) -> list[float] | None:
    """The per-seed changes of one effect-table row (:func:`seed_changes`): its own per-seed effects when the
    per-seed effect table has them, else the run tables' (``run_metric``), else None."""
    return per_seed.get((comparison, metric_label)) or (per_seed.get((comparison, run_metric)) if run_metric else None)
