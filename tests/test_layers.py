"""Imports go one way: gateway → grid, sms, geo; grid → geo; sms and geo import none of ours."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"gateway", "grid", "sms", "geo", "deploy", "bench", "tests", "wsgi"}
ALLOWED = {
    "gateway": {"gateway", "grid", "sms", "geo"},
    "grid": {"grid", "geo"},
    "sms": {"sms"},
    "geo": {"geo"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages of ours that `path` imports (at any depth in the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_go_one_way(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    wrong = {str(f.relative_to(ROOT)): sorted(imported_packages(f) - ALLOWED[package])
             for f in files}
    assert {f: pkgs for f, pkgs in wrong.items() if pkgs} == {}


def test_the_check_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from gateway.runtime import settings\n", encoding="utf-8")
    assert imported_packages(bad) == {"gateway"}
