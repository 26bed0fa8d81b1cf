#!/usr/bin/env python
"""Tables 3 and 4 at several seeds, merged over the models, and the paper's claims that they decide.

``scripts/table_seeds.py`` writes one model's Table 3 or 4 at several talker seeds under
``results/table<T>_seeds/<model>/``. This merges those folders into the effect tables that notebooks 06 and 07 write
(:func:`p3d.experiments.merge_seed_tables`: values copied, labels ``"<Model>: <comparison>"``), each with its
per-seed effects beside it (``<stem>_per_seed.csv``, read by :func:`p3d.claims.seeds.seed_changes`), copies the
tables that say which PLRS referees are valid (``plrs_validity``) and how well each critic retrieves held-out
windows (``stage2_retrieval_*``) from ``--referee-tables`` (the ``results/tables`` of a run with the same PLRS
evaluator and critics as the seed runs), and judges the claims that read Tables 3 and 4 (:mod:`p3d.claims`):
``claims.md`` in ``--out``, beside ``claims_vs_full.md`` (the same claims' verdicts from ``--against``, by default
the committed ``results/tables``) and ``provenance.json`` (each merged folder's commit and grid time, and the copied
tables' SHA-256)::

    .venv/bin/python scripts/merge_seed_tables.py [--results results] [--referee-tables DIR] [--out results/seeds]
                                                  [--against results/tables]

Every input is checked before anything is written; the outputs are written into a temporary folder beside
``--out``, which then replaces ``--out`` as one unit (no table of an earlier merge is left in it).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from p3d import claims
from p3d import experiments as ex
from p3d.atomic import write_json, write_text
from p3d.errors import InputError
from p3d.tables import PER_SEED_SUFFIX

#: The tables copied from ``--referee-tables`` (those present there; ``plrs_validity`` required).
REFEREE_TABLES = ("plrs_validity", "plrs_validity_verdicts", "stage2_retrieval_ours", "stage2_retrieval_no2d",
                  "stage2_retrieval_syncnet3d")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"),
                    help="folder holding table3_seeds/ and table4_seeds/ (default: results)")
    ap.add_argument("--referee-tables", type=Path, default=None, metavar="DIR",
                    help="result tables of a run with the seed runs' PLRS evaluator and critics (plrs_validity.csv "
                         "needed); without it, lip readability is judged on the official PLRS, as p3d.claims does")
    ap.add_argument("--out", type=Path, default=None, help="default: <results>/seeds")
    ap.add_argument("--against", type=Path, default=None, metavar="TABLES",
                    help="result tables whose verdicts on the same claims are set beside these in "
                         "claims_vs_full.md (default: <results>/tables, when it exists)")
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    out = args.out or args.results / "seeds"
    against = args.against or (args.results / "tables" if (args.results / "tables").is_dir() else None)
    if against is not None and not against.is_dir():
        raise InputError(f"--against {against}: not a folder of result tables")
    merged, provenance = {}, {"tables": {}, "referee_tables": {}}
    for table, stem in ex.EFFECT_TABLES.items():
        folder = args.results / f"table{table}_seeds"
        if not folder.is_dir():
            continue
        effects, per_seed, models = ex.merge_seed_tables(folder)
        sources = {m: json.loads((folder / m / "provenance.json").read_text()) for m in models
                   if (folder / m / "provenance.json").is_file()}
        merged[stem] = (table, effects, per_seed, models)
        provenance["tables"][stem] = {m: {k: p.get(k) for k in ("git_commit", "preset", "seeds", "grid_wall_s")}
                                      for m, p in sources.items()}
    if not merged:
        raise InputError(f"{args.results}: neither table3_seeds/ nor table4_seeds/ (run scripts/table_seeds.py)")
    copies: list[Path] = []
    if args.referee_tables is not None:
        if not (args.referee_tables / "plrs_validity.csv").is_file():
            raise InputError(f"--referee-tables {args.referee_tables}: no plrs_validity.csv")
        copies = [args.referee_tables / name for name in (f"{s}{ext}" for s in REFEREE_TABLES
                                                          for ext in (".csv", ".md"))
                  if (args.referee_tables / name).is_file()]
    presets = {p.get("preset") for t in provenance["tables"].values() for p in t.values()} - {None}
    if len(presets) > 1:
        raise InputError(f"the seed tables come from several presets ({', '.join(sorted(presets))}); merge one")
    preset = presets.pop() if presets else "full"
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it 0700: the published folder follows the umask
    try:
        rows, judged = _write(staging, out, merged, copies, provenance, preset, args.referee_tables)
        if against is not None:  # the same claims as the committed run judged them
            names = ("seed tables", "committed full")
            write_text(staging / "claims_vs_full.md", claims.comparison_markdown(
                claims.compare_verdicts(staging, against, names).loc[rows], names)
                + f"\n\n'committed full': the tables of `{against}`.\n")
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(claims.verdict_table_markdown(judged.loc[rows]))
    return 0


def _write(staging: Path, out: Path, merged: dict, copies: list[Path], provenance: dict, preset: str,
           referee_tables: Path | None) -> tuple[list[int], Any]:
    """Every output into ``staging`` (``out`` is the name the report gives it); returns the rows of the claims it
    judged and :func:`p3d.claims.assess`'s table."""
    for stem, (table, effects, per_seed, models) in merged.items():
        labels = ", ".join(ex.MODEL_LABELS[m] for m in models)
        ex.write_tables({
            stem: (effects, f"Table {table} at several seeds ({labels}; preset `{preset}`), merged from "
                   f"table{table}_seeds/", "Each model's effects pooled over its seeds (paired bootstrap over seeds "
                   "and test clips), copied from table<T>_seeds/<model>/effects.csv."),
            stem + PER_SEED_SUFFIX: (per_seed, f"Table {table}: each seed's own effects ({labels})",
                                     "Copied from table<T>_seeds/<model>/per_seed.csv; CIs over test clips.")}, staging)
    for src in copies:
        data = src.read_bytes()
        (staging / src.name).write_bytes(data)
        provenance["referee_tables"][src.name] = {"from": str(src), "sha256": hashlib.sha256(data).hexdigest()}
    if copies:
        provenance["referee_run"] = _run_record(referee_tables.parent / "provenance.json")

    df = claims.assess(staging)
    stems = set(merged)
    rows = [i for i, s in zip(df.index, df["sources"]) if stems & set(str(s).split(", "))]
    referees = ("the PLRS referees that pass the validity battery of the run named in `provenance.json` "
                "(`referee_run`; its `plrs_validity.csv` copied here)" if copies else
                "the official PLRS (no referee validity table given)")
    header = (f"Only the claims that read Tables 3 and 4 ({', '.join(sorted(stems))}); every other claim: "
              f"`results/claims.md`. Lip readability is judged on {referees}.")
    write_text(staging / "claims.md", claims.claims_markdown(
        df.loc[rows], preset, header=header,
        source=f"Tables 3 and 4 at several seeds (`{out}`, merged by `scripts/merge_seed_tables.py`)") + "\n")
    write_json(staging / "provenance.json", {**provenance, "preset": preset, "claims": [int(i) + 1 for i in rows]})
    return rows, df


def _publish(staging: Path, out: Path) -> None:
    """``staging`` becomes ``out``: the old folder, if any, is moved aside, the new one renamed into place, then
    the old one deleted (both renames within one folder)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old)


def _run_record(path: Path) -> dict:
    """What made the referee tables: the machine and the notebooks that ran (not skipped, not failed) in that run's
    ``provenance.json`` (:mod:`p3d.notebook_runner`), or an empty record when there is none."""
    if not path.is_file():
        return {}
    record = json.loads(path.read_text())
    return {"provenance": str(path), "machine": record.get("machine"),
            "notebooks": [{k: r.get(k) for k in ("executed", "git_commit", "wall_s")}
                          for r in record.get("notebooks", []) if not r.get("skipped") and not r.get("failed")]}


if __name__ == "__main__":
    sys.exit(main())
