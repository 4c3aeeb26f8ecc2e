"""Every third-party module the code imports is declared in pyproject.toml (the package's own
dependencies for explorer/, the test extras for tests/ and benchmarks/)."""
from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11

ROOT = Path(__file__).resolve().parents[1]
# Our own packages, and the test modules that tests and benchmarks import from one another (tests/ is on
# pytest's path: kymatio_reference, roto_direct, test_channels…; a benchmark's folder is on its own path).
LOCAL = ({"explorer", "tests", "benchmarks", "helpers"} | {p.stem for p in (ROOT / "tests").glob("*.py")}
         | {p.stem for p in (ROOT / "benchmarks").glob("*.py")})


def imported_modules(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in LOCAL}


def declared(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def undeclared(modules: set[str], allowed: set[str]) -> list[str]:
    owners = metadata.packages_distributions()
    missing = []
    for module in sorted(modules):
        distributions = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        if not distributions & allowed:
            missing.append(f"{module} (from {', '.join(sorted(distributions))})")
    return missing


def test_every_import_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = declared(project["dependencies"])
    test = runtime | declared(project["optional-dependencies"]["test"])
    assert undeclared(imported_modules(ROOT / "explorer"), runtime) == []
    assert undeclared(imported_modules(ROOT / "tests") | imported_modules(ROOT / "benchmarks"), test) == []
