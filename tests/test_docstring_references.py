"""Every Sphinx-style cross-reference in p3d's source (``:func:`name```, ``:class:``, ``:mod:``, ``:meth:``,
``:attr:``, ``:data:``, ``:exc:``) names something that exists: a function renamed or removed left docstrings
pointing at it (``_aligned_cross_attention``, ``codetalker_config``)."""
from __future__ import annotations

import builtins
import functools
import importlib
import inspect
import pkgutil
import re

import p3d

REFERENCE = re.compile(r":(?:func|class|mod|data|meth|attr|exc):`~?([A-Za-z_][\w.]*)`")
#: References that are examples in prose, not names.
EXAMPLES = {("p3d.cli", "p3d.x")}


@functools.lru_cache(maxsize=None)
def _source(klass: type) -> str:
    try:
        return inspect.getsource(klass)
    except (OSError, TypeError):  # builtins, classes without source
        return ""


def _instance_attribute(cls: type, name: str) -> bool:
    """Whether a class of ``cls``'s MRO annotates ``name`` (dataclass fields without defaults are not class
    attributes) or assigns ``self.<name>`` in its source."""
    for klass in cls.__mro__:
        if name in getattr(klass, "__annotations__", {}):
            return True
        if re.search(rf"\bself\.{re.escape(name)}\s*[:=]", _source(klass)):
            return True
    return False


def _follow(obj: object, parts: list[str]) -> bool:
    """Whether ``obj.parts[0].parts[1]...`` exists (an instance attribute of a class counts as its last part)."""
    for i, part in enumerate(parts):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        return inspect.isclass(obj) and i == len(parts) - 1 and _instance_attribute(obj, part)
    return True


def _absolute(ref: str) -> bool:
    parts = ref.split(".")
    for i in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        return _follow(module, parts[i:])
    return False


def _modules() -> dict[str, object]:
    names = ["p3d", *(m.name for m in pkgutil.walk_packages(p3d.__path__, "p3d."))]
    return {name: importlib.import_module(name) for name in names}


def _resolves(ref: str, module: object, modules: dict[str, object]) -> bool:
    """``ref`` as written in ``module``: absolute, or relative to the module, one of its classes, a builtin, or a
    name defined in another p3d module (imported inside a function, as p3d keeps heavy imports)."""
    parts = ref.split(".")
    if _absolute(ref) or _follow(module, parts) or hasattr(builtins, parts[0]):
        return True
    for mod in [module, *modules.values()]:
        if mod is not module and (len(parts) > 2 or _follow(mod, parts)):
            if len(parts) <= 2:
                return True
            continue
        own = [c for c in vars(mod).values() if inspect.isclass(c) and c.__module__ == mod.__name__]
        if any(_follow(c, parts) for c in own):
            return True
    return False


def test_docstring_references_name_what_exists():
    modules = _modules()
    broken = []
    for name, module in modules.items():
        for ref in REFERENCE.findall(inspect.getsource(module)):
            if (name, ref) not in EXAMPLES and not _resolves(ref, module, modules):
                broken.append(f"{name}: {ref}")
    assert not broken, "references to names that do not exist:\n" + "\n".join(sorted(set(broken)))
