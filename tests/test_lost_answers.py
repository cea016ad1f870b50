"""A 200 for a row an earlier, crashed run left ``in_flight`` is that run's own create.

Issue 10, point 11: answers to the importer's own lost requests must not read as if
someone had imported before. A crash after the server stored a create, before the ledger
recorded the answer, leaves the row ``in_flight`` with the engagement already made; the
next run's re-send is answered ``200``, and says whose it is.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.audit_support import command, run
from tests.conftest import Sandbox
from tests.factories import row, status_counts, write_manifest

EARLIER = "existing (an earlier attempt, answer lost)"


def crashed_after_the_server_stored(sandbox: Sandbox, tmp_path: Path) -> Path:
    """Two rows created; the ledger lost rec-2's answer, as a kill -9 mid-request does."""
    ledger = tmp_path / "l.db"
    assert run(sandbox, write_manifest(tmp_path / "m.csv", [row(1), row(2)]), ledger).exit_code == 0
    with sqlite3.connect(ledger) as conn:
        conn.execute(
            "UPDATE engagements SET status = 'in_flight', engagement_id = NULL, "
            "http_status = NULL WHERE external_id = 'crm:rec-2'"
        )
    return ledger


def test_the_next_run_names_the_earlier_attempt(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = crashed_after_the_server_stored(sandbox, tmp_path)

    result = run(sandbox, tmp_path / "m.csv", ledger)

    assert result.exit_code == 0, result.output
    assert re.search(rf"^  {re.escape(EARLIER)}\s+1$", result.stdout, re.MULTILINE), result.stdout
    assert not re.search(r"^  existing\s+\d", result.stdout, re.MULTILINE)
    assert status_counts(ledger) == {"created": 1, "existing": 1}
    assert sandbox.stats()["created"] == {"crm:rec-1": 1, "crm:rec-2": 1}


def test_retry_names_the_earlier_attempt_too(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = crashed_after_the_server_stored(sandbox, tmp_path)

    result = command(sandbox, "retry", ledger)

    assert result.exit_code == 0, result.output
    assert re.search(rf"^  {re.escape(EARLIER)}\s+1$", result.stdout, re.MULTILINE), result.stdout


def test_a_row_someone_else_imported_is_still_plain_existing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    assert run(sandbox, manifest, tmp_path / "other.db").exit_code == 0

    result = run(sandbox, manifest, tmp_path / "l.db")

    assert result.exit_code == 0, result.output
    assert re.search(r"^  existing\s+1$", result.stdout, re.MULTILINE), result.stdout
    assert EARLIER not in result.output
