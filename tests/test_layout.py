"""The layout keeps its promises: small modules, a pure planner, stages that do not reach in.

See the README's Development section for the map these checks protect.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "importer"
MAX_LINES = 400


def imported_modules(module: str) -> set[str]:
    """Every ``importer.*`` module (and name) the module imports, at any depth."""
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("importer")}


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if "sandbox" not in p.relative_to(PACKAGE).parts),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_module_is_over_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split it by concern"


def test_the_planner_imports_nothing_from_the_database_layer() -> None:
    assert not {m for m in imported_modules("plan.py") if m.startswith("importer.ledger")}


def test_the_sender_does_not_judge_changed_rows_itself() -> None:
    imported = imported_modules("send.py")
    assert "importer.plan.server_view" not in imported
    assert not imported & {"importer.hashes.payload_hash", "importer.hashes.field_hashes"}
