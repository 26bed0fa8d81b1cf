"""Every f-string placeholder in p3d's code and notebooks is interpolated.

Python joins adjacent string literals, so in ``f"a {x} " "b {y}"`` the second part is plain text: ``{y}`` lands
verbatim in the output (a committed table's caption once read "({s8_raw['mean_frames'].mean():.0f} frames on
average"). This scans the syntax trees of every module and notebook code cell for f-strings whose literal text
still holds an unescaped ``{name...}``.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{[A-Za-z_][^{}]*\}")


def _sources() -> list[tuple[str, str]]:
    out = []
    for folder in ("p3d", "scripts", "benchmarks"):
        out += [(str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / folder).rglob("*.py"))]
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            if cell["cell_type"] == "code":
                lines = "".join(cell["source"]).splitlines()
                code = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)
                out.append((f"{nb.relative_to(ROOT)} cell {i}", code))
    return out


def uninterpolated(source: str) -> list[str]:
    """The plain-text ``{...}`` placeholders inside f-strings of ``source`` (``{{...}}`` escapes excluded)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.JoinedStr):
            continue
        candidates = [m.group() for part in node.values if isinstance(part, ast.Constant)
                      for m in PLACEHOLDER.finditer(part.value)]
        if candidates:  # the source segment (a scan of the whole file) only where a placeholder may be plain text
            text = ast.get_source_segment(source, node) or ""
            found += [c for c in candidates if "{" + c not in text]
    return found


def test_the_scan_finds_a_plain_literal_joined_to_an_f_string():
    assert uninterpolated('n = 3\ns = f"{n} clips " "({n:.0f} frames)"\n') == ["{n:.0f}"]
    assert uninterpolated('n = 3\ns = f"{n} clips " f"({n:.0f} frames, {{id}})"\n') == []


def test_no_f_string_leaves_a_placeholder_as_text():
    offenders = {name: found for name, source in _sources() if (found := uninterpolated(source))}
    assert offenders == {}
