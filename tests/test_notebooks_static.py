"""The notebooks as committed: without outputs, with a ``parameters`` cell, and writing their tables and figures
only through p3d's atomic writers (``p3d.tables.write_table``, ``p3d.atomic``, ``p3d.viz.save_figure``), so that an
interrupted run never leaves a half-written table for a later notebook (``p3d.claims`` reads them) to parse, nor a
half-written figure under its final name."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _code_cells(nb: Path) -> list[tuple[int, dict]]:
    return [(i, c) for i, c in enumerate(json.loads(nb.read_text())["cells"]) if c["cell_type"] == "code"]


def direct_writes(source: str) -> list[str]:
    """Calls in ``source`` that write a file in place: ``df.to_csv(<path>)`` (a file object, a bare name bound
    by ``with atomic_open(...) as fh``, is fine), ``open(..., "w")`` and ``fig.savefig(<path>)`` (only a name
    bound by a ``with`` statement, ``with atomic_path(p) as tmp``, is fine: a figure goes through
    ``p3d.viz.save_figure``)."""
    lines = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())
    found = []
    tree = ast.parse(lines)
    with_names = {n.optional_vars.id for n in ast.walk(tree) if isinstance(n, ast.withitem)
                  and isinstance(n.optional_vars, ast.Name)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "savefig" and not (
                node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in with_names):
            found.append(ast.unparse(node))
        if isinstance(f, ast.Attribute) and f.attr == "to_csv" and node.args and not isinstance(node.args[0], ast.Name):
            found.append(ast.unparse(node))
        if isinstance(f, ast.Name) and f.id == "open" and any(
                isinstance(a, ast.Constant) and isinstance(a.value, str) and set(a.value) & set("wax")
                for a in [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "mode")]):
            found.append(ast.unparse(node))
    return found


def test_direct_writes_finds_a_path_to_csv():
    assert direct_writes('long.to_csv(dirs.tables / "x.csv", index=False)')
    assert direct_writes('open(p, "w").write("x")')
    assert not direct_writes("with atomic_open(p, 'w') as fh:\n    df.to_csv(fh, index=False)")
    assert not direct_writes("open(p).read()")


def test_direct_writes_finds_a_savefig():
    assert direct_writes('fig.savefig(dirs.figures / "x.png", dpi=120)')
    assert direct_writes('p = dirs.figures / "x.png"\nfig.savefig(p)')
    assert direct_writes('pipeline_diagram(preset).savefig(dirs.figures / f"fig2_{preset}.png", dpi=110)')
    assert not direct_writes('save_figure(fig, dirs.figures / "x.png", dpi=120)')
    assert not direct_writes("with atomic_path(p) as tmp:\n    fig.savefig(tmp, format='png')")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_with_parameters(nb):
    cells = _code_cells(nb)
    assert not [i for i, c in cells if c.get("outputs") or c.get("execution_count") is not None], \
        f"{nb.name}: outputs or execution counts committed"
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for _, c in cells), \
        f"{nb.name}: no cell tagged `parameters`"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_writes_tables_atomically(nb):
    hits = [f"cell {i}: {w}" for i, c in _code_cells(nb) for w in direct_writes("".join(c["source"]))]
    assert not hits, (f"{nb.name} writes in place (use p3d.tables.write_table, p3d.atomic.atomic_open or "
                      f"p3d.viz.save_figure): {hits}")
