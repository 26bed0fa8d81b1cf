"""Writing result tables: CSV and GitHub markdown side by side, atomically."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

#: The table of each training seed's own effects beside an effect table ``<stem>.csv``: ``<stem>_per_seed.csv``
#: (written by :func:`p3d.experiments.per_seed_effects` and ``scripts/merge_seed_tables.py``, read by
#: :func:`p3d.claims.seeds.seed_changes`).
PER_SEED_SUFFIX = "_per_seed"


def _cell(x: Any, digits: int) -> str:
    import pandas as pd

    if x is None or x is pd.NA or x is pd.NaT or (isinstance(x, float) and math.isnan(x)):
        return "–"  # a missing value of any dtype (nullable Int64/Float64 columns give pd.NA: "<NA>", an HTML tag)
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e-3 or abs(x) >= 1e5 else f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return markdown_cell(x)


def markdown_cell(x: Any) -> str:
    """``x`` as the text of one markdown table cell: a "|" escaped, a line break a space (either would split the
    row). Every markdown table p3d writes passes its text cells and headers through this."""
    return str(x).replace("|", "\\|").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def to_markdown(df: Any, digits: int = 4) -> str:
    """A GitHub markdown table of a DataFrame (no index); a "|" in a column name or cell is escaped (``\\|``)."""
    cols = [markdown_cell(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, digits) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_table(df: Any, path: str | os.PathLike[str], *, title: str | None = None, note: str | None = None,
                digits: int = 4) -> tuple[Path, Path]:
    """Write ``path``.csv and ``path``.md (a title, the table, a note); returns both paths. The suffixes are
    appended to the whole name (a name holding a dot, e.g. a run's loss weight ``w1.9e-07``, keeps it; a
    ``.csv`` or ``.md`` given is replaced)."""
    from p3d.atomic import atomic_open, write_text

    base = Path(path)
    if base.suffix in (".csv", ".md"):
        base = base.with_suffix("")
    csv_path, md_path = base.with_name(base.name + ".csv"), base.with_name(base.name + ".md")
    with atomic_open(csv_path, "w", newline="") as fh:
        df.to_csv(fh, index=False)
    parts = [f"### {title}\n" if title else "", to_markdown(df, digits), f"\n{note}\n" if note else ""]
    write_text(md_path, "\n".join(p for p in parts if p))
    return csv_path, md_path
