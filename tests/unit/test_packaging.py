"""What `pip install saasmon` ships: one importable name, saasmon, built from the exporters/
folder; nothing of the reference app or the dev stack; the version written once."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import pytest

import saasmon

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SOURCE = REPO / "exporters"  # the folder keeps its name; the package is saasmon
NOT_SHIPPED = ("exporters", "refapp", "devstack", "tests", "bench", "scripts", "mirakuru")
# Dev-only code that the tests use and that must not use the tests.
DEV_FOLDERS = ("devstack", "bench", "scripts")
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


# Calls that import the module named by their first argument, as `import` does.
DYNAMIC_IMPORTS = frozenset({"import_module", "find_spec", "__import__"})


def imported_roots(path: Path) -> set[str]:
    """The top-level names `path` imports: import statements anywhere (inside functions too)
    and importlib calls with a literal name (`importlib.import_module("tests.x")`)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and (node.func.attr if isinstance(node.func, ast.Attribute)
                   else getattr(node.func, "id", None)) in DYNAMIC_IMPORTS):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def offenders(folder: Path, forbidden: Iterable[str]) -> dict[str, list[str]]:
    """Every module under `folder` (tracked or not) that imports one of `forbidden`."""
    found = {str(path.relative_to(REPO)): sorted(imported_roots(path) & set(forbidden))
             for path in folder.rglob("*.py") if "__pycache__" not in path.parts}
    return {name: roots for name, roots in found.items() if roots}


def python_files() -> list[Path]:
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "*.py"],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    return [REPO / name for name in listed.split("\0") if name and (REPO / name).exists()]


def test_shipped_code_imports_nothing_of_the_dev_stack() -> None:
    assert not offenders(SOURCE, NOT_SHIPPED)


def test_dev_code_imports_nothing_of_the_tests() -> None:
    # The dev stack, the benches and the scripts are the tests' building blocks, never their
    # users: `make demo`, the drills and the benches run without tests/ (issue 14).
    for folder in DEV_FOLDERS:
        assert list((REPO / folder).rglob("*.py")), f"{folder}/ has no modules: renamed?"
        assert not offenders(REPO / folder, ["tests"]), folder


def test_the_import_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("import importlib\n"
                      "from tests.support.metrics import parse\n"
                      "def later():\n"
                      "    import bench.report\n"
                      "    importlib.import_module('devstack.drills.app')\n"
                      "    return importlib.util.find_spec('refapp.schema'), __import__('scripts')\n")
    assert imported_roots(module) == {"importlib", "tests", "bench", "devstack", "refapp",
                                      "scripts"}


def test_nothing_imports_the_folder_name_as_a_module() -> None:
    # The repository root is on sys.path in the tests and the dev venv, so `import exporters`
    # would still work there and load a second copy of every module under another name.
    files = python_files()
    assert len(files) > 100
    imports = [str(path.relative_to(REPO)) for path in files if "exporters" in imported_roots(path)]
    assert not imports
    targets = [f"{path.relative_to(REPO)}:{node.lineno}: {node.value}"
               for path in files for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)
               and OLD_TARGET.fullmatch(node.value)]
    assert not targets


def test_mirakuru_is_no_dependency_any_more() -> None:
    # devstack/process.py runs the test Redis as it runs everything else.
    extras = PYPROJECT["project"]["optional-dependencies"]
    every = [*PYPROJECT["project"]["dependencies"], *(d for e in extras.values() for d in e)]
    assert not [d for d in every if d.lower().startswith("mirakuru")]


# Folders whose modules are the project's own (tests included): a private name of one of
# them is for its own module only.
OWN_ROOTS = ("saasmon", "refapp", "devstack", "bench", "scripts", "alert_rules", "dashboards",
             "tests")


def test_no_module_imports_another_modules_private_name() -> None:
    offenders = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    and node.module.split(".")[0] in OWN_ROOTS):
                offenders += [f"{path.relative_to(REPO)}: {node.module}.{alias.name}"
                              for alias in node.names
                              if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not offenders


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(("saasmon", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def _load_time_imports(tree: ast.Module) -> set[str]:
    """saasmon modules imported when the module loads: module-level statements only (an
    import inside a function or under TYPE_CHECKING runs later, or never)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.split(".")[0] == "saasmon"}


def test_the_shipped_package_has_no_import_cycle() -> None:
    graph = {_module_name(path): _load_time_imports(ast.parse(path.read_text(), str(path)))
             for path in SOURCE.rglob("*.py")}
    graph = {module: {name for name in names if name in graph and name != module}
             for module, names in graph.items()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join((*path, module)))
        if module in done:
            return
        for name in sorted(graph[module]):
            visit(name, (*path, module))
        done.add(module)

    assert len(graph) > 30
    for module in sorted(graph):
        visit(module, ())
