"""The layout keeps its promises: what belongs where, each rule held by a test.

A module is as long as its one concept needs; these rules say where a concept goes. See
``docs/development.md`` for the map they protect.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "importer"

FLOORS = [
    # lowest first: a module may import from its own floor or any floor below it
    {"errors", "outcomes", "settings", "events", "small_files"},
    {"read"},
    {"rows"},
    {"ledger"},
    {"plan"},
    {"targets"},
    {"send"},
    {"report"},
    {"pipeline"},
    {"runner"},
    {"cli", "__main__"},
]
"""The stages bottom up. The sandbox is a separate server: it may use ``rows`` (the API's
rules, shared) and nothing above it; only the CLI, which starts it, imports it."""

SQL = re.compile(
    r"\b(SELECT\s[\s\S]*\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(TEMP\s+|TEMPORARY\s+)?(TABLE|INDEX|VIEW)|DROP\s+TABLE|PRAGMA\s+\w+)\b"
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def type_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:``: names for annotations, which
    never run, so they make no dependency between floors."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }


def imports_of(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """Each ``importer`` import the module runs, at any depth: (module, names, line)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    this = module_name(path)
    skipped = type_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if node.level:
                base = this.split(".")[: -node.level + (path.name == "__init__.py")]
                module = ".".join([*base, node.module])
            if module.startswith("importer"):
                yield module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("importer"):
                    yield alias.name, [], node.lineno


def resolved(module: str, names: list[str]) -> set[str]:
    """The modules an import really reaches (``from importer.read import kinds`` reaches
    ``importer.read.kinds``)."""
    reached = {module} if module in MODULES else set()
    reached |= {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES}
    if not reached and module not in MODULES:
        reached.add(module)
    return reached


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets: set[str] = set()
        for module, names, _ in imports_of(path):
            targets |= resolved(module, names)
        edges[name] = targets - {name}
    return edges


def floor(module: str) -> int | None:
    parts = module.split(".")
    stage = parts[1] if len(parts) > 1 else "__init__"
    for level, stages in enumerate(FLOORS):
        if stage in stages:
            return level
    return None


def test_every_module_is_on_a_floor() -> None:
    unplaced = {m for m in MODULES if floor(m) is None and m.split(".")[1:2] != ["sandbox"]}
    assert unplaced <= {"importer"}, f"add these to FLOORS (and the map): {sorted(unplaced)}"


def test_no_import_runs_back_up_the_floors() -> None:
    upward = []
    for module, targets in graph().items():
        here = floor(module)
        if here is None:
            continue
        for target in targets:
            there = floor(target)
            if there is not None and there > here:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports back up the floors:\n" + "\n".join(sorted(upward))


def test_no_import_circle() -> None:
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_no_module_imports_another_modules_private_name() -> None:
    private = [
        f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {module}.{name}"
        for m in MODULES
        for module, names, line in imports_of(MODULES[m])
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    tests = [
        f"{p.name}:{line} imports {module}.{name}"
        for p in sorted((PACKAGE.parent / "tests").glob("*.py"))
        for module, names, line in imports_of_file(p)
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not private + tests


def imports_of_file(path: Path) -> Iterator[tuple[str, list[str], int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("importer"):
            yield node.module, [a.name for a in node.names], node.lineno


def test_only_the_cli_imports_the_sandbox() -> None:
    reaching = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        if not module.startswith(("importer.sandbox", "importer.cli"))
        for target in targets
        if target.startswith("importer.sandbox")
    ]
    assert not reaching


def test_the_sandbox_uses_only_the_shared_rules() -> None:
    allowed = ("importer.sandbox", "importer.rows", "importer.errors", "importer.settings")
    reaching = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        if module.startswith("importer.sandbox")
        for target in targets
        if not target.startswith(allowed) and target != "importer"
    ]
    assert not reaching


@pytest.mark.parametrize(
    "path",
    [p for m, p in MODULES.items() if not m.startswith(("importer.ledger", "importer.sandbox"))],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_sql_outside_the_ledger(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [
        f"line {node.lineno}: {node.value[:60]!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)
    ]
    assert not found, "SQL belongs in importer/ledger/:\n" + "\n".join(found)


def test_the_sql_check_finds_sql() -> None:
    assert SQL.search("SELECT external_id FROM engagements")
    assert SQL.search("CREATE TEMP TABLE months (m TEXT)")
    assert not SQL.search("Select the rows from the file")


def test_the_planner_imports_nothing_from_the_database_layer() -> None:
    assert not {m for m in graph()["importer.plan.planner"] if m.startswith("importer.ledger")}


def test_the_sender_does_not_judge_changed_rows_itself() -> None:
    names = {
        f"{module}.{name}"
        for module, names, _ in imports_of(MODULES["importer.send.sender"])
        for name in names
    }
    assert "importer.plan.planner.server_view" not in names
    assert not names & {"importer.rows.hashes.payload_hash", "importer.rows.hashes.field_hashes"}


def test_every_exception_lives_in_errors_and_its_tree_names_it() -> None:
    import importer.errors

    elsewhere = []
    for name, path in MODULES.items():
        if name in ("importer.errors",) or name.startswith("importer.sandbox"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        elsewhere += [
            f"{name}.{node.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            and any(
                isinstance(base, ast.Name) and (base.id.endswith(("Error", "Exception")))
                for base in node.bases
            )
        ]
    assert not elsewhere, "exceptions belong in importer/errors.py"
    defined = {
        name
        for name, value in vars(importer.errors).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    doc = importer.errors.__doc__ or ""
    assert not {n for n in defined if not re.search(rf"\b{n}\b", doc)}


@pytest.mark.parametrize(
    "path",
    [p for m, p in MODULES.items() if m.startswith("importer.ledger")],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_status_values_in_sql_come_from_the_enum(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    spelt = [
        f"line {node.lineno}: {node.value[:60]!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and re.search(r"'(created|existing|pending|in_flight|failed|skipped|rejected)'", node.value)
    ]
    assert not spelt, "spell statuses with Status (sql_list, IMPORTED, NOT_SENT):\n" + "\n".join(
        spelt
    )
