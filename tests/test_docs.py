"""The docs tell the truth about the tree and the exit codes.

docs/development.md maps every module under importer/ (a list per folder, each entry a path
such as `read/kinds.py`); the README's exit-code table is ``errors.EXIT_CODES``; every file
of importer/ or tests/ a doc names exists. Renaming a module is one line of the map.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from importer.errors import EXIT_CODES
from tests.conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "importer"
DEVELOPMENT = PROJECT_ROOT / "docs" / "development.md"
README = PROJECT_ROOT / "README.md"
DOCS = [README, *sorted((PROJECT_ROOT / "docs").glob("*.md"))]

# A module path in backticks, relative to importer/: `errors.py`, `read/kinds.py`.
MODULE_PATH = re.compile(r"`((?:[a-z_]+/)*[a-z_]+\.py)`")
# A path from the project root in backticks, possibly followed by ::test_name.
PROJECT_PATH = re.compile(r"`((?:importer|tests)/[\w/]+\.py)(?:::\w+)?`")


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a ``## `` line), up to the next heading of that level."""
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    end = text.find("\n## ", start)
    return text[start:] if end == -1 else text[start:end]


def modules_in_tree() -> set[str]:
    """Every module under importer/, as a path relative to it; a package's __init__.py only
    when it holds more than its docstring."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and holds_only_a_docstring(path):
            continue
        found.add(path.relative_to(PACKAGE).as_posix())
    return found


def holds_only_a_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


def modules_named(text: str) -> set[str]:
    """Module paths a doc names relative to importer/ (paths into tests/ or scripts/ aside)."""
    return {
        name
        for name in MODULE_PATH.findall(text)
        if not name.startswith(("tests/", "scripts/", "importer/"))
    }


def test_every_module_is_in_the_map() -> None:
    mapped = modules_named(section(DEVELOPMENT.read_text(encoding="utf-8"), "## The map"))

    assert sorted(modules_in_tree() - mapped) == []


def test_every_module_the_development_guide_names_exists() -> None:
    named = modules_named(DEVELOPMENT.read_text(encoding="utf-8"))

    assert len(named) > 50
    assert sorted(name for name in named if not (PACKAGE / name).is_file()) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_project_file_a_doc_names_exists(doc: Path) -> None:
    named = set(PROJECT_PATH.findall(doc.read_text(encoding="utf-8")))

    assert sorted(name for name in named if not (PROJECT_ROOT / name).is_file()) == []


def readme_exit_codes() -> dict[int, str]:
    """The README's exit-code table: code and meaning (later columns only explain)."""
    table = section(README.read_text(encoding="utf-8"), "## Exit codes")
    codes = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            codes[int(cells[0])] = cells[1]
    return codes


def test_the_readmes_exit_codes_are_errors_exit_codes() -> None:
    assert readme_exit_codes() == EXIT_CODES


def test_every_doc_in_docs_is_linked_from_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")

    for doc in DOCS[1:]:
        assert f"(docs/{doc.name}" in readme, doc.name


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(doc: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings: lower case, punctuation dropped."""
    headings = re.findall(r"^#+ (.+)$", doc.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings
    }


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_link_between_the_docs_leads_somewhere(doc: Path) -> None:
    broken = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        if not linked.is_file() or (anchor and anchor not in anchors(linked)):
            broken.append(target)

    assert broken == []


def test_the_readme_is_at_most_450_lines() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 450
