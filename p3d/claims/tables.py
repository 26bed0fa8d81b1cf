"""Reading the result tables that ``make figures`` wrote (``results/tables/*.csv``) for :mod:`p3d.claims`:
:func:`_read` (a missing table raises :class:`_Missing`, which makes a claim "not measured") and the PLRS
referees' validity table (:func:`valid_referees`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from p3d import paper

#: Effect-table metric label -> p3d.paper metric key.
_METRIC_KEYS = {"MTM": "mtm_ms", "LVE": "lve", "PLRS": "plrs", "SLCC": "slcc_delta", "FDD": "fdd"}


def _metric_key(label: str) -> str:
    for prefix, key in _METRIC_KEYS.items():
        if label.startswith(prefix):
            return key
    raise KeyError(label)


#: The paper's models, as the result tables label them.
MODELS = tuple(paper.MODEL_LABELS[m] for m in paper.MODELS)


class _Missing(Exception):
    def __init__(self, stem: str) -> None:
        super().__init__(stem)
        self.stem = stem


#: The stems :func:`_read` returned since :func:`p3d.claims.catalogue.assess` began judging the current claim,
#: so that a table not in the layout ``make figures`` writes is named when judging it fails.
READ_STEMS: list[str] = []


def _read(tables: Path, stem: str) -> Any:
    import pandas as pd

    path = Path(tables) / f"{stem}.csv"
    if not path.is_file():
        raise _Missing(stem)
    READ_STEMS.append(stem)
    return pd.read_csv(path)


def _single(rows: Any, where: str) -> Any | None:
    """The one row of ``rows`` (a table's rows for one case), None when there is none. Rows repeated exactly count
    once; rows that differ are refused with :class:`InputError` naming ``where``: which of them judged the case
    would depend on their order in the file (e.g. a table concatenated from two runs)."""
    from p3d.errors import InputError

    if rows.empty:
        return None
    distinct = rows.drop_duplicates()
    if len(distinct) > 1:
        raise InputError(f"{where}: {len(distinct)} different rows where one is expected (a table concatenated "
                         "from two runs?); the verdict would depend on their order")
    return distinct.iloc[0]


def _pooled(df: Any) -> Any:
    """The seed-pooled rows of a long-form results table (``seed == "all"``, :func:`p3d.experiments.long_form`
    of arms) when it has them; else every row (one seed per run, or a table written before seeds)."""
    if "seed" in df:
        pooled = df[df["seed"].astype(str) == "all"]
        if len(pooled):
            return pooled
    return df


# -- PLRS referees ------------------------------------------------------------------------------------------
VALIDITY_STEM = "plrs_validity"
_VALIDITY_COLUMNS = {"variant", "degradation", "mean_minus_gt", "ci_low", "ci_high", "n_clips"}


def valid_referees(tables: str | Path) -> tuple[list[str], list[str]] | None:
    """(valid, invalid) lip-readability referee variants from ``plrs_validity.csv`` in ``tables`` (every variant
    but :data:`p3d.analysis.referee_validity.COMPARISON_METRICS`, which judge their own claims); None when the
    table is absent.

    A referee is valid when it passes every one of its degradations by the battery's rule
    (:func:`p3d.analysis.referee_validity.referee_validity`: ``ci_high < 0``, on at least ``MIN_VALIDITY_CLIPS``
    clips) and the table holds every degradation of the battery
    (:data:`~p3d.analysis.referee_validity.BATTERY_DEGRADATIONS`) for it.
    """
    from p3d.analysis.referee_validity import BATTERY_DEGRADATIONS, COMPARISON_METRICS, referee_validity
    from p3d.errors import InputError

    try:
        df = _read(Path(tables), VALIDITY_STEM)
    except _Missing:
        return None
    missing = _VALIDITY_COLUMNS - set(df.columns)
    if missing:
        raise InputError(f"{Path(tables) / VALIDITY_STEM}.csv lacks the columns {sorted(missing)}; it needs "
                         f"{', '.join(sorted(_VALIDITY_COLUMNS))}")
    referees = df[~df["variant"].astype(str).isin(COMPARISON_METRICS)]
    valid, invalid = [], []
    for r in referee_validity(referees).itertuples(index=False):
        given = set(referees.loc[referees["variant"] == r.variant, "degradation"].astype(str))
        ok = bool(r.valid) and set(BATTERY_DEGRADATIONS) <= given
        (valid if ok else invalid).append(str(r.variant))
    return valid, invalid
