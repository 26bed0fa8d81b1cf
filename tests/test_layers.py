"""The layers of p3d only point down.

Layers, lowest first: io / metrics -> models -> losses -> train -> experiments -> notebooks; synth
(the synthetic corpus) and viz (figures, renders) are leaves that upper layers use. The test reads
every import statement of every p3d module (module level and inside functions, with ``ast``; no
module is imported) and checks

- the rules of :data:`FORBIDDEN` (a package prefix must not import another), apart from the pairs in
  :data:`KNOWN_VIOLATIONS`;
- no import cycle among p3d modules at module level;
- no cycle at all (function-level imports included) apart from :data:`KNOWN_CYCLES`.

The allow-lists only shrink: an entry that no longer occurs fails the test too, so it gets removed.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import pytest

import p3d

P3D_DIR = Path(p3d.__file__).parent

#: (importer prefix, imported prefixes it must not import).
FORBIDDEN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("p3d.metrics", ("p3d.models",)),
    ("p3d.io", ("p3d.models",)),
    ("p3d.models", ("p3d.viz", "p3d.synth", "p3d.train", "p3d.experiments")),
    ("p3d.synth", ("p3d.viz", "p3d.train", "p3d.experiments")),
)

#: Imports that break a rule of FORBIDDEN today (importer module, imported module): to be removed.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()

#: Import cycles that exist only through imports inside functions: to be removed.
KNOWN_CYCLES: tuple[frozenset[str], ...] = ()


class Import(NamedTuple):
    importer: str
    imported: str
    line: int
    in_function: bool
    type_checking: bool


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package ``__init__``)."""
    out = {}
    for path in sorted(P3D_DIR.rglob("*.py")):
        parts = list(path.relative_to(P3D_DIR.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (path, package)
    return out


MODULES = _modules()


def _imports(name: str) -> list[Import]:
    """The p3d modules that module ``name`` imports (``from p3d.x import y`` names p3d.x.y when y is a module)."""
    path, package = MODULES[name]
    out: list[Import] = []

    def resolve(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        here = name.split(".") if package else name.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        return ".".join(here + ([node.module] if node.module else []))

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            fn = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            tc = type_checking or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.Import):
                out.extend(Import(name, a.name, child.lineno, fn, tc) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = resolve(child)
                for a in child.names:
                    sub = f"{base}.{a.name}"
                    out.append(Import(name, sub if sub in MODULES else base, child.lineno, fn, tc))
            visit(child, fn, tc)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False, False)
    return [i for i in out if (i.imported == "p3d" or i.imported.startswith("p3d.")) and i.imported != name]


IMPORTS = [i for name in MODULES for i in _imports(name)]


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _cycles(edges: list[Import]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        graph[e.importer].add(e.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def _violations() -> dict[tuple[str, str], list[int]]:
    out: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in IMPORTS:
        for importer, banned in FORBIDDEN:
            if _under(i.importer, importer) and any(_under(i.imported, b) for b in banned):
                out[(i.importer, i.imported)].append(i.line)
    return out


def test_the_walk_sees_the_package():
    assert {"p3d.metrics.lve", "p3d.models.stage1", "p3d.synth.face", "p3d.topology"} <= set(MODULES)
    # both kinds of import are seen: one at module level, one inside a function
    assert any(i.importer == "p3d.train.critics" and i.imported == "p3d.train.trainer" and not i.in_function
               for i in IMPORTS)
    assert any(i.importer == "p3d.study.cli" and i.imported == "p3d.study.analyze" and i.in_function
               for i in IMPORTS)


def test_layers_point_down():
    found = _violations()
    new = {pair: lines for pair, lines in found.items() if pair not in KNOWN_VIOLATIONS}
    assert not new, "imports against the layers (importer, imported): lines " + repr(new)


def test_known_violations_still_exist():
    gone = KNOWN_VIOLATIONS - set(_violations())
    assert not gone, f"remove these fixed entries from KNOWN_VIOLATIONS: {sorted(gone)}"


def test_no_cycle_at_module_level():
    runtime = [i for i in IMPORTS if not i.in_function and not i.type_checking]
    assert _cycles(runtime) == []


def test_no_new_cycle_through_function_imports():
    cycles = _cycles([i for i in IMPORTS if not i.type_checking])
    new = [sorted(c) for c in cycles if not any(c <= known for known in KNOWN_CYCLES)]
    assert not new, f"import cycles: {new}"
    gone = [sorted(k) for k in KNOWN_CYCLES if not any(c & k for c in cycles)]
    assert not gone, f"remove these fixed cycles from KNOWN_CYCLES: {gone}"


@pytest.mark.parametrize("pair", [("p3d.study.analyze", "p3d.study.cli"), ("p3d.topology", "p3d.synth.face"),
                                  ("p3d.predict", "p3d.train.critics"), ("p3d.train.api", "p3d.train.cli")])
def test_former_loops_stay_broken(pair):
    importer, imported = pair
    assert not [i.line for i in IMPORTS if i.importer == importer and _under(i.imported, imported)]


def test_cycle_finder_finds_a_cycle():
    edges = [Import("p3d.a", "p3d.b", 1, False, False), Import("p3d.b", "p3d.a", 1, True, False),
             Import("p3d.b", "p3d.c", 1, False, False)]
    assert _cycles(edges) == [frozenset({"p3d.a", "p3d.b"})]
