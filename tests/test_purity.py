"""core/ and strategies/ are pure: no I/O, clock, environment, Prefect or DuckDB."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE_PACKAGES = ("core", "strategies")
FORBIDDEN_IMPORTS = {
    "prefect",
    "duckdb",
    "requests",
    "alpaca",
    "great_expectations",
    "feedparser",
    "urllib",
    "http",
    "socket",
    "subprocess",
    "os",
    "time",
    "pathlib",
    "io",
    "shutil",
    "tempfile",
    "logging",
    "adapters",
    "warehouse",
    "tasks",
    "flows",
    "backtest",
    "hydra",
}
FORBIDDEN_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today")}
FORBIDDEN_NAMES = {"open", "input", "print"}


def pure_sources() -> list[Path]:
    return sorted(path for package in PURE_PACKAGES for path in (ROOT / package).rglob("*.py"))


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots = [node.module.split(".")[0]]
        else:
            roots = []
        found += [f"imports {root}" for root in roots if root in FORBIDDEN_IMPORTS]
        if path.relative_to(ROOT).parts[0] == "core":
            found += [f"imports {root}" for root in roots if root == "strategies"]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if (owner_name, node.func.attr) in FORBIDDEN_CALLS:
                found.append(f"calls {owner_name}.{node.func.attr}()")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_NAMES:
            found.append(f"calls {node.func.id}()")
    return [f"{path.relative_to(ROOT)}:{v}" for v in found]


def test_the_scan_catches_what_it_is_meant_to(tmp_path: Path) -> None:
    sample = ROOT / "core" / "_purity_probe.py"
    sample.write_text("import os\nfrom datetime import datetime\nx = datetime.now()\nopen('f')\n", encoding="utf-8")
    try:
        assert violations(sample) == [
            "core/_purity_probe.py:imports os",
            "core/_purity_probe.py:calls datetime.now()",
            "core/_purity_probe.py:calls open()",
        ]
    finally:
        sample.unlink()


@pytest.mark.parametrize("path", pure_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_has_no_io_clock_or_environment(path: Path) -> None:
    assert violations(path) == []


def test_importing_the_pure_packages_loads_nothing_impure() -> None:
    modules = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for path in pure_sources()
    ]
    probe = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    loaded = set(
        json.loads(
            subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT).stdout
        )
    )
    impure = {
        "prefect",
        "duckdb",
        "requests",
        "alpaca",
        "great_expectations",
        "adapters",
        "warehouse",
        "tasks",
        "flows",
        "hydra",
    }
    assert loaded & impure == set()


# Which project packages each package may import: arrows point one way (DESIGN.md).
ALLOWED_PROJECT_IMPORTS = {
    "core": {"core"},
    "strategies": {"strategies", "core"},
    "adapters": {"adapters", "core"},
    "warehouse": {"warehouse", "sql"},
    "quality": {"quality", "core"},
    "backtest": {"backtest", "core", "strategies", "adapters", "warehouse"},
    "tasks": {"tasks", "core", "strategies", "adapters", "warehouse", "quality", "hydra"},
    "flows": {"flows", "tasks", "hydra", "core", "warehouse"},
}
PROJECT_PACKAGES = set(ALLOWED_PROJECT_IMPORTS) | {"hydra", "sql"}


@pytest.mark.parametrize("package", sorted(ALLOWED_PROJECT_IMPORTS))
def test_project_imports_point_one_way(package: str) -> None:
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                if root in PROJECT_PACKAGES and root not in ALLOWED_PROJECT_IMPORTS[package]:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []
