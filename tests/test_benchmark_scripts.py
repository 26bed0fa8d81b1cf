"""The benchmark scripts of ``benchmarks/`` still fit the library: each imports as a module, its argument parser
builds (``--help`` exits 0), and every name it imports, at the top or inside a function (most import p3d lazily,
after parsing their arguments), exists, as does every attribute it reads off an imported module. The benchmarks
themselves are not run here (they take minutes); this catches the renamed function or module that would make one
fail at its first call."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(BENCH.glob("bench_*.py"))
# the scripts' own imports of helpers under tests/ (tiny_corpus, release_fixtures, tests.official_reference)
HELPER_PATHS = [str(ROOT), str(ROOT / "tests")]


def _trees(path: Path) -> list[ast.AST]:
    """The script's syntax tree, plus those of code it runs in a child process (a module-level string of Python
    that imports p3d, e.g. bench_plrs_cache's ``CHILD``)."""
    tree = ast.parse(path.read_text(), str(path))
    trees = [tree]
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str) and "from p3d" in node.value.value):
            trees.append(ast.parse(node.value.value, f"{path}:{node.targets[0].id}"))
    return trees


def _imported(trees: list[ast.AST]) -> list[tuple[str, str | None, str]]:
    """(module, name or None, local name) of every import statement that is not the standard library's."""
    out = []
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
                out += [(node.module, a.name, a.asname or a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                out += [(a.name, None, a.asname or a.name.split(".")[0]) for a in node.names]
    return [(m, n, local) for m, n, local in out if m.split(".")[0] not in sys.stdlib_module_names]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_help_exits_zero(script):
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_imports_resolve(script, monkeypatch):
    for p in reversed(HELPER_PATHS):
        monkeypatch.syspath_prepend(p)
    spec = importlib.util.spec_from_file_location(f"bench_module_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the module-level imports; main() is not called
    assert callable(module.main)
    trees = _trees(script)
    modules = {}
    for mod_name, name, local in _imported(trees):
        if mod_name.split(".")[0] in ("transformers",) and importlib.util.find_spec("transformers") is None:
            continue  # bench_gpu's paper-preset section: an optional dependency
        mod = importlib.import_module(mod_name)
        if name is None:
            modules[local] = mod
            continue
        submodule = hasattr(mod, "__path__") and importlib.util.find_spec(f"{mod_name}.{name}") is not None
        assert hasattr(mod, name) or submodule, f"{script.name}: from {mod_name} import {name}: no such name"
        value = importlib.import_module(f"{mod_name}.{name}") if submodule else getattr(mod, name)
        if isinstance(value, type(sys)) and value.__name__.startswith(("p3d", "tiny_corpus", "release_fixtures")):
            modules[local] = value
    # attributes read off an imported p3d module (``sc.build``, ``runs._eval_config``), where the local name is
    # never rebound in the script
    for tree in trees:
        stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                    and node.value.id not in stored and modules[node.value.id].__name__.startswith("p3d")):
                assert hasattr(modules[node.value.id], node.attr), \
                    f"{script.name}: {node.value.id}.{node.attr}: {modules[node.value.id].__name__} has no such name"


def _atomic_handles(tree: ast.AST) -> dict[int, str]:
    """``id(call) -> handle`` of every call in a ``with atomic_open(...) as handle:`` block of ``tree``."""
    inside = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                call, var = item.context_expr, item.optional_vars
                func = getattr(call, "func", None)
                name = getattr(func, "id", None) or getattr(func, "attr", None)
                if name == "atomic_open" and isinstance(var, ast.Name):
                    for stmt in node.body:
                        inside.update({id(c): var.id for c in ast.walk(stmt) if isinstance(c, ast.Call)})
    return inside


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_csv_outputs_are_written_atomically(script):
    """Every CSV a script writes (``--out``) goes through :func:`p3d.atomic.atomic_open`: ``df.to_csv(path)``
    wrote in place, so a benchmark interrupted mid-write (minutes of timing lost anyway) left a half CSV that
    read as a complete, shorter table."""
    tree = ast.parse(script.read_text(), str(script))
    handles = _atomic_handles(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "to_csv":
            target = node.args[0] if node.args else next((k.value for k in node.keywords
                                                          if k.arg == "path_or_buf"), None)
            if target is None:
                continue  # to_csv() returns the text
            assert isinstance(target, ast.Name) and handles.get(id(node)) == target.id, \
                f"{script.name}:{node.lineno}: to_csv into {ast.unparse(target)}, not an atomic_open handle"


def test_make_test_script_parses():
    done = subprocess.run(["bash", "-n", str(BENCH / "bench_make_test.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_grid_schedule_table_cells_are_markdown_cells():
    """bench_grid_schedule printed each task group as it came (a "|" in a run name split its row into more cells);
    the group is now one markdown cell (p3d.tables.markdown_cell), ordinary names as before."""
    spec = importlib.util.spec_from_file_location("bench_module_grid_cells", BENCH / "bench_grid_schedule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seconds = {"train:full:selftalk_ours_voca_seed0": 5400.0, "critic:full:ours": 1800.0, "eval:full:a|b_x": 1800.0}
    assert module.kind_rows(seconds, ["critic:full:ours"]) == [
        "| train selftalk | 1 | 0 | 1.50 | 60% |", "| critic | 1 | 1 | 0.50 | 20% |", "| eval a\\|b | 1 | 0 | 0.50 | 20% |"]


def test_bench_plateau_rules_replays_each_rule_on_a_recorded_curve(tmp_path):
    """A curve that falls 10 % per evaluation for 20 evaluations, then is flat: every rule stops after the fall (the
    default when its median of 3 has been at the floor, from evaluation 22, for 5 more), none leaves improvement to
    come, and the 500-step blocks are the means of their ten evaluations."""
    spec = importlib.util.spec_from_file_location("bench_plateau_rules", BENCH / "bench_plateau_rules.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    run = tmp_path / "run"
    run.mkdir()
    values = [1e-6 * 0.9 ** min(i, 20) for i in range(40)]
    lines = ["step,val"] + [f"{50 * (i + 1)},{v!r}" for i, v in enumerate(values)]
    (run / "val.csv").write_text("\n".join(lines) + "\n")
    text = mod.report([run])
    block0 = sum(values[:10]) / 10
    assert f"| run (to 2000) | {block0 * 1e7:.2f} ±" in text
    stops = {line.split(" | ")[1]: line.split(" | ")[2:] for line in text.splitlines() if line.startswith("| run | ")}
    assert len(stops) == 4 and all(int(stop) > 1000 for stop, _ in stops.values())
    assert all(come.startswith("none") for _, come in stops.values())
    assert int(stops["median 3, patience 5 (the default)"][0]) == 50 * (22 + 5)
