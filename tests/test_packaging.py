"""Packaging policy: pyproject.toml declares compatible ranges (p3d installs into an existing environment);
constraints.txt pins the exact tested set, and every pin satisfies its range; environment.yml carries those
same pins (conda cannot run here). Plus the licence and citation files."""
import re
import sys
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
TESTED_PYTHON = "3.11"


def _name(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirements():
    """Requirements of the project and all its extras that apply on the tested Python."""
    data = _pyproject()["project"]
    reqs = [Requirement(r) for r in data["dependencies"]]
    for extra in data["optional-dependencies"].values():
        reqs.extend(Requirement(r) for r in extra)
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"python_version": TESTED_PYTHON})]


def _constraints():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            assert _name(name) not in pins, f"constraints.txt pins {name} twice"
            pins[_name(name)] = version.strip()
    return pins


def test_pyproject_declares_ranges_not_pins():
    for req in _requirements():
        assert not any(s.operator in ("==", "===") for s in req.specifier), f"{req}: pin it in constraints.txt"
        assert any(s.operator == ">=" for s in req.specifier), f"{req}: no lower bound"


def test_constraints_pin_every_requirement_within_its_range():
    pins = _constraints()
    assert pins["torch"] == "2.13.0"
    for req in _requirements():
        version = pins.get(_name(req.name))
        assert version is not None, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(Version(version), prereleases=True), \
            f"{req.name}: constraints.txt pins {version}, outside pyproject's {req.specifier}"
    # the tested Python is inside requires-python
    requires_python = Requirement("python" + _pyproject()["project"]["requires-python"]).specifier
    assert requires_python.contains(TESTED_PYTHON)


def test_environment_yml_carries_the_constraints_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert f"python={TESTED_PYTHON}" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    entries = [r.strip() for r in pip if r.strip() != "-e ."]
    assert all("==" in r for r in entries), f"environment.yml: unpinned entries in {entries}"
    listed = {_name(n): v for n, v in (r.split("==") for r in entries)}
    pins = _constraints()
    assert listed == {_name(r.name): pins[_name(r.name)] for r in _requirements()}
    assert "-e ." in pip


def test_license_file_is_the_declared_licence():
    assert _pyproject()["project"]["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_citation_cff_is_valid_and_cites_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors"):  # required by CFF 1.2.0
        assert cff.get(key), key
    assert cff["cff-version"] == "1.2.0"
    allowed = {"abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi", "identifiers",
               "keywords", "license", "license-url", "message", "preferred-citation", "references", "repository",
               "repository-artifact", "repository-code", "title", "type", "url", "version"}  # CFF 1.2.0 schema
    assert set(cff) <= allowed, set(cff) - allowed
    for ref in [cff["preferred-citation"], *cff.get("references", [])]:
        assert ref.get("type") and ref.get("title") and ref.get("authors"), ref  # required in a reference
    assert cff["license"] == "Apache-2.0" and cff["version"] == _pyproject()["project"]["version"]
    assert all(a.get("family-names") or a.get("name") for a in cff["authors"])
    paper = cff["preferred-citation"]
    assert paper["type"] == "conference-paper" and paper["year"] == 2025
    assert paper["title"].startswith("Perceptually Accurate 3D Talking Head Generation")
    assert any(i["value"] == "2503.20308" or "2503.20308" in str(i["value"]) for i in paper["identifiers"])
    assert all(a.get("family-names") and a.get("given-names") for a in paper["authors"])


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
