#!/usr/bin/env python
"""List the decimal numbers in README.md's prose that no result table it links to contains.

The README's generated blocks (``<!-- name:start ... -->`` .. ``<!-- name:end -->``, written by notebook 10) and
code blocks are skipped. Each remaining paragraph or list item is one unit: the tables it names (``x.md`` /
``x.csv`` files, or globs such as ``x_*.md``, that exist under ``results/tables/``, paths from the repository
root such as ``results/table3_seeds/faceformer/effects.csv``, and ``results/claims.md``; a
markdown table those its introduction names) are searched for each decimal
number it quotes, at the number's printed precision (a value v matches "0.42" when round(v, 2) == 0.42, also as a
percentage, and with either sign; ``results/claims.md`` and ``.md`` tables by their text). The report lists per
unit the numbers not found, and the units that quote numbers without naming any table. A helper for refreshing the
README after ``make figures PRESET=full``, not a verdict: a number can be a paper's value, a threshold or a
measurement in ``benchmarks/RESULTS.md`` (which this does not read)::

    .venv/bin/python scripts/check_readme_numbers.py [--readme README.md] [--tables results/tables]
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

NUMBER = re.compile(r"(?<![\w.])[-+−]?\d+\.\d+(?!\w|\.\d)")  # a full stop may end the number
TABLE_REF = re.compile(r"([\w./*-]+)\.(?:md|csv)\b")
BLOCK = re.compile(r"<!-- (\w+):start.*?-->.*?<!-- \1:end -->", re.S)
FENCE = re.compile(r"```.*?```", re.S)


def units(text: str) -> list[str]:
    """The README's prose units: paragraphs and list items, without generated blocks and code."""
    text = FENCE.sub("", BLOCK.sub("", text))
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        items = re.split(r"\n(?=\s*[-*] |\s*\d+\. )", para)
        out.extend(i.strip() for i in items if i.strip())
    return out


def _table_values(path: Path) -> tuple[list[float], str]:
    import pandas as pd

    text = path.read_text(errors="replace")
    values: list[float] = []
    csv = path.with_suffix(".csv")
    if csv.is_file():
        df = pd.read_csv(csv)
        for col in df.columns:
            values.extend(float(v) for v in pd.to_numeric(df[col], errors="coerce").dropna())
    values.extend(float(m.group().replace("−", "-")) for m in NUMBER.finditer(text))
    return values, text


def _matches(number: str, values: list[float], text: str) -> bool:
    if number in text:
        return True
    x = float(number.replace("−", "-"))
    places = len(number.split(".")[1])
    for v in values:
        for cand in (v, 100 * v):
            if math.isfinite(cand) and abs(round(abs(cand), places) - abs(x)) < 0.5 * 10 ** -places + 1e-12:
                return True
    return False


def check(readme: Path, tables: Path, claims: Path | None = None) -> list[tuple[str, list[str], list[str]]]:
    """``[(unit's first words, tables named, numbers not found)]`` for every unit with an unmatched number or
    with numbers but no table named."""
    cache: dict[Path, tuple[list[float], str]] = {}
    report = []
    previous: list[Path] = []
    for unit in units(readme.read_text()):
        numbers = [m.group() for m in NUMBER.finditer(unit)]
        named: list[Path] = []
        for ref in dict.fromkeys(TABLE_REF.findall(unit)):
            name = Path(ref).name
            rooted = [readme.parent / f"{ref}.{ext}" for ext in ("md", "csv")] if "/" in ref else []
            if name == "claims":
                named += [claims] if claims is not None and claims.is_file() else []
            elif any(p.is_file() for p in rooted):  # a path from the repository root (results/table3_seeds/...)
                named.append(next(p for p in rooted if p.is_file()))
            else:  # a table, or a glob of tables (stage2_retrieval_*.md)
                named += sorted(tables.glob(f"{name}.md"))
        if not named and unit.startswith("|"):  # a markdown table quotes the tables its introduction names
            named = previous
        previous = named
        if not numbers:
            continue
        if not named:
            report.append((unit[:90].replace("\n", " "), [], numbers))
            continue
        values: list[float] = []
        text = ""
        for path in named:
            if path not in cache:
                cache[path] = _table_values(path)
            values += cache[path][0]
            text += cache[path][1]
        missing = [n for n in numbers if not _matches(n, values, text)]
        if missing:
            report.append((unit[:90].replace("\n", " "), [p.name for p in named], missing))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--tables", type=Path, default=Path("results/tables"))
    args = parser.parse_args(argv)
    for path in (args.readme, args.tables):
        if not path.exists():
            parser.error(f"{path}: not found")
    claims = args.tables.parent / "claims.md"
    report = check(args.readme, args.tables, claims if claims.is_file() else None)
    for head, named, missing in report:
        where = ", ".join(named) if named else "no table named"
        print(f"- {head}...\n    [{where}] not found: {', '.join(missing)}")
    print(f"{len(report)} unit(s) to look at")
    return 0


if __name__ == "__main__":
    sys.exit(main())
