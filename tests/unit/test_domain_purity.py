"""domain/ is pure (STYLE.md §1): it imports the standard library, eventsourcing.domain and pydantic."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
ALLOWED_THIRD_PARTY = {"pydantic", "pydantic_core", "eventsourcing.domain"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _allowed(name: str) -> bool:
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top in ("domain", "__future__"):
        return True
    return any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED_THIRD_PARTY)


def test_domain_imports_only_stdlib_pydantic_and_eventsourcing_domain() -> None:
    files = sorted(DOMAIN.rglob("*.py"))
    assert files, "no domain modules found"
    offenders = {str(path.relative_to(DOMAIN)): bad for path in files
                 if (bad := [name for name in _imports(path) if not _allowed(name)])}
    assert offenders == {}


def test_the_checker_catches_an_impure_import(tmp_path: Path) -> None:
    impure = tmp_path / "impure.py"
    impure.write_text("import psycopg\nfrom fastapi import FastAPI\nfrom eventsourcing.application import Application\n")
    assert [name for name in _imports(impure) if not _allowed(name)] == [
        "psycopg", "fastapi", "eventsourcing.application"]
