"""Say where it is sending, find a bad key first, ask before a big production run.

Issue 10, point 3.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from importer.errors import NotConfirmed
from importer.events import JsonReporter
from importer.ledger import open_ledger
from importer.pipeline import run_import
from importer.rows import contract
from importer.rows.validate import MappingOptions
from importer.settings import ImportSettings
from importer.targets.askelephant import AskElephantTarget
from tests.audit_support import CREATE, json_lines, requests_of, run
from tests.conftest import Sandbox
from tests.factories import row, status_counts, write_manifest


def test_a_run_names_its_target_and_rows_before_the_first_create(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(3)])

    result = run(sandbox, manifest, tmp_path / "l.db")

    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert lines[0] == f"Target: {sandbox.base_url}; manifest {manifest}"
    assert "3 row(s) read from m.csv." in lines
    assert lines.index("3 row(s) read from m.csv.") < lines.index("Sending 3 row(s).")


def test_a_refused_key_stops_before_the_file_is_planned(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(25)])
    ledger = tmp_path / "l.db"

    result = run(sandbox, manifest, ledger, key="sk-apik_wrong.KEY")

    assert result.exit_code == 3
    assert "401" in result.stderr and "API key" in result.stderr
    assert requests_of(sandbox, CREATE) == {}
    assert sum(requests_of(sandbox, "GET /v2/engagements/{engagement_id}").values()) == 1
    assert status_counts(ledger) == {}
    assert "row(s) read" not in result.stderr


def test_a_key_without_read_scope_still_imports(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.add_key("sk-apik_writer.ONLY", [contract.SCOPE_WRITE])
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])

    result = run(sandbox, manifest, tmp_path / "l.db", key="sk-apik_writer.ONLY")

    assert result.exit_code == 0, result.output
    assert requests_of(sandbox, "GET /v2/engagements/{engagement_id}") == {"403": 1}
    assert len(sandbox.engagements()) == 2


def big_run(sandbox: Sandbox, tmp_path: Path, rows: int, confirm: Any) -> Any:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(rows)])
    settings = ImportSettings(
        manifest=manifest, mapping=MappingOptions(), confirm=confirm, batch_size=5000
    )

    async def go() -> Any:
        target = AskElephantTarget(sandbox.base_url, sandbox.api_key)
        # The client talks to the sandbox; the decision sees production's name.
        target.base_url = contract.PRODUCTION_BASE_URL
        try:
            with open_ledger(tmp_path / "l.db") as ledger:
                run_id = ledger.start_run("run", str(manifest), {})
                return await run_import(
                    settings, ledger, target, JsonReporter(), run_id, install_signal_handlers=False
                )
        finally:
            await target.aclose()

    return asyncio.run(go())


def test_a_big_production_run_asks_once_and_a_no_sends_nothing(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[str] = []

    def no(question: str) -> bool:
        asked.append(question)
        return False

    with pytest.raises(NotConfirmed):
        big_run(sandbox, tmp_path, 1001, no)

    assert asked == [f"Send 1,001 new row(s) to production ({contract.PRODUCTION_BASE_URL})?"]
    assert requests_of(sandbox, CREATE) == {}
    assert status_counts(tmp_path / "l.db") == {}
    events = json_lines(capsys.readouterr().err)
    assert events[0]["message"].startswith(f"Target: {contract.PRODUCTION_BASE_URL} (production)")


def test_a_production_run_of_1000_rows_asks_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    def never(question: str) -> bool:
        raise AssertionError(question)

    summary = big_run(sandbox, tmp_path, 1000, never)

    assert summary.exit_code == 0
    assert len(sandbox.engagements()) == 1000


def test_yes_is_offered_on_run_and_retry() -> None:
    from tests.factories import run_cli

    for command in ("run", "retry"):
        assert "--yes" in run_cli([command, "--help"]).output
