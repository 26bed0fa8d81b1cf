"""pyproject.toml, environment.yml and constraints.txt must agree (conda cannot run here)."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_requirements():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(data["dependencies"])
    for extra in data["optional-dependencies"].values():
        reqs.extend(extra)
    return reqs


def _norm(req):
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", req.strip()).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def test_environment_yml_mirrors_pyproject():
    env = (ROOT / "environment.yml").read_text()
    pip_lines = [l.strip()[2:].strip() for l in env.splitlines() if re.match(r"^\s+- [A-Za-z]", l)]
    pip_reqs = {_norm(l) for l in pip_lines if "==" in l}
    assert pip_reqs == {_norm(r) for r in _pyproject_requirements()}
    assert "python=3.11" in env


def test_constraints_agree_with_pyproject():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version.strip()
    assert pins["torch"] == "2.13.0"
    for req in _pyproject_requirements():
        name, spec = _norm(req)
        assert spec.startswith("=="), f"{req} is not pinned"
        assert pins.get(name) == spec[2:], f"{name}: pyproject {spec} vs constraints {pins.get(name)}"


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make figures" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_links_and_images_exist():
    """Every relative link and image in the README points at a committed file (the gallery, claims, inventory)."""
    import re

    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(((?!https?://|#)[^)\s]+)\)", readme)
    assert any(t.startswith("figures/") for t in targets)
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"
