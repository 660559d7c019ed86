"""What `pip install saasmon` ships: the exporters (and the reference app), nothing of the
dev stack, the version written once."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import exporters

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SHIPPED = ("exporters", "refapp")
NOT_SHIPPED = ("devstack", "tests", "bench", "scripts", "mirakuru")


def test_the_version_is_read_from_the_package_not_written_again() -> None:
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "exporters.__version__"}
    assert exporters.__version__


def test_only_the_exporters_and_the_reference_app_are_packaged() -> None:
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert sorted(include) == sorted(f"{name}*" for name in SHIPPED)
    # No dev-only helper left inside a shipped package (devstack/servers.py lived here).
    assert not (REPO / "exporters" / "devservers.py").exists()


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_shipped_code_imports_nothing_of_the_dev_stack() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_roots(path) & set(NOT_SHIPPED))
        for package in SHIPPED for path in (REPO / package).rglob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}


def test_mirakuru_is_no_dependency_any_more() -> None:
    # devstack/process.py runs the test Redis as it runs everything else.
    extras = PYPROJECT["project"]["optional-dependencies"]
    every = [*PYPROJECT["project"]["dependencies"], *(d for e in extras.values() for d in e)]
    assert not [d for d in every if d.lower().startswith("mirakuru")]
