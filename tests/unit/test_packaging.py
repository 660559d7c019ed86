"""What `pip install saasmon` ships: one importable name, saasmon, built from the exporters/
folder; nothing of the reference app or the dev stack; the version written once."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

import pytest

import saasmon

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SOURCE = REPO / "exporters"  # the folder keeps its name; the package is saasmon
NOT_SHIPPED = ("exporters", "refapp", "devstack", "tests", "bench", "scripts", "mirakuru")
# An importlib target spelled the old way, e.g. "exporters.postgres.exporter:PostgresExporter"
# (not "exporters.yml", a bundle file's name): exporters.<one of the folder's modules>...
MODULES = sorted({path.stem for path in SOURCE.iterdir()
                  if path.suffix == ".py" or (path / "__init__.py").exists()})
OLD_TARGET = re.compile(rf"exporters\.({'|'.join(MODULES)})(\.\w+)*(:\w+)?")


def test_the_version_is_read_from_the_package_not_written_again() -> None:
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "saasmon.__version__"}
    assert saasmon.__version__


def test_the_package_is_saasmon_from_the_exporters_folder() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"saasmon": "exporters"}
    assert PYPROJECT["project"]["scripts"] == {"saasmon": "saasmon.cli:main"}
    # The list is written out (packages.find cannot rename): every folder with an
    # __init__.py is in it, and nothing else.
    folders = {".".join(("saasmon", *init.parent.relative_to(SOURCE).parts))
               for init in SOURCE.rglob("__init__.py")}
    assert sorted(setuptools["packages"]) == sorted(folders)
    assert Path(saasmon.__file__).resolve() == SOURCE / "__init__.py"
    # No dev-only helper left inside the shipped package (devstack/servers.py lived here).
    assert not (SOURCE / "devservers.py").exists()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    # With build isolation: the build backend pyproject.toml asks for, as `pip install` uses.
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--wheel-dir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [built] = out.glob("saasmon-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_one_top_level_package(wheel: zipfile.ZipFile) -> None:
    names = [PurePosixPath(name) for name in wheel.namelist()]
    tops = {name.parts[0] for name in names}
    assert tops == {"saasmon", f"saasmon-{saasmon.__version__}.dist-info"}
    top_level = wheel.read(f"saasmon-{saasmon.__version__}.dist-info/top_level.txt").decode()
    assert top_level.split() == ["saasmon"]
    # Every module of the folder and its data files, under the package's name.
    shipped = {name.relative_to("saasmon") for name in names if name.parts[0] == "saasmon"}
    source = {PurePosixPath(path.relative_to(SOURCE).as_posix()) for path in SOURCE.rglob("*")
              if path.is_file() and "__pycache__" not in path.parts}
    assert shipped == source
    assert {PurePosixPath("business/default_pack.yaml"),
            PurePosixPath("cron/default_jobs.yaml")} <= shipped
    entry_points = wheel.read(f"saasmon-{saasmon.__version__}.dist-info/entry_points.txt")
    assert "saasmon = saasmon.cli:main" in entry_points.decode()


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def imported_roots(tree: ast.Module) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def python_files() -> list[Path]:
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "*.py"],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    return [REPO / name for name in listed.split("\0") if name and (REPO / name).exists()]


def test_shipped_code_imports_nothing_of_the_dev_stack() -> None:
    offenders = {str(path.relative_to(REPO)): sorted(imported_roots(parse(path)) & set(NOT_SHIPPED))
                 for path in SOURCE.rglob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}


def test_nothing_imports_the_folder_name_as_a_module() -> None:
    # The repository root is on sys.path in the tests and the dev venv, so `import exporters`
    # would still work there and load a second copy of every module under another name.
    trees = {path: parse(path) for path in python_files()}  # parsed once for both checks
    assert len(trees) > 100
    imports = [str(path.relative_to(REPO)) for path, tree in trees.items()
               if "exporters" in imported_roots(tree)]
    assert not imports
    targets = [f"{path.relative_to(REPO)}:{node.lineno}: {node.value}"
               for path, tree in trees.items() for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and isinstance(node.value, str)
               and OLD_TARGET.fullmatch(node.value)]
    assert not targets


def test_mirakuru_is_no_dependency_any_more() -> None:
    # devstack/process.py runs the test Redis as it runs everything else.
    extras = PYPROJECT["project"]["optional-dependencies"]
    every = [*PYPROJECT["project"]["dependencies"], *(d for e in extras.values() for d in e)]
    assert not [d for d in every if d.lower().startswith("mirakuru")]
