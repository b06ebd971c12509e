"""No test module imports another test module: what tests share lives in tests/builders/ (or a
conftest.py's fixtures), so that each test_*.py can be read, moved or deleted on its own."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _imported_test_modules(path: Path) -> list[str]:
    """The test_* modules `path` imports, absolutely or relatively, as written."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names += [module] + [f"{module}.{alias.name}".replace("..", ".") for alias in node.names]
    return sorted({name for name in names if name.rsplit(".", 1)[-1].startswith("test_")})


def test_no_test_module_imports_another() -> None:
    files = sorted(TESTS.rglob("test_*.py"))
    assert len(files) > 20, "no test modules found"
    offenders = {str(path.relative_to(TESTS)): bad for path in files if (bad := _imported_test_modules(path))}
    assert offenders == {}


def test_the_checker_catches_every_form_of_such_an_import(tmp_path: Path) -> None:
    module = tmp_path / "test_offender.py"
    module.write_text("from tests.integration.test_read_models import snapshot\n"
                      "import tests.unit.test_replay\n"
                      "from tests.unit import test_merkle, scenario\n"
                      "from .test_neighbour import helper\n"
                      "from tests.builders.read_models import opened\n")
    assert _imported_test_modules(module) == [
        ".test_neighbour", "tests.integration.test_read_models", "tests.unit.test_merkle", "tests.unit.test_replay"]
