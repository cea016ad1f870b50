"""DevRev imports through the real pipeline against the sandbox, whose create is NOT idempotent.

These show that the importer's lookups keep one engagement per external_ref: before each
batch, after every unsure create, and for rows a crashed run left in flight.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from importer.errors import LedgerError
from importer.ledger import Ledger
from importer.settings import SendSettings
from importer.targets.registry import TARGETS
from tests.conftest import SANDBOX_KEY, Sandbox
from tests.devrev_support import (
    MEMBER,
    create_requests,
    devrev_engagements,
    import_devrev,
    ledger_rows,
    per_ref,
    write_devrev_manifest,
)

DEVREV = TARGETS["devrev"]


def test_a_clean_import_creates_each_row_once_and_a_rerun_creates_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 25)
    ledger = tmp_path / "ledger.db"
    first = import_devrev(sandbox, manifest, ledger)
    assert first.exit_code == 0 and first.counts["created"] == 25
    assert set(per_ref(sandbox).values()) == {1} and len(per_ref(sandbox)) == 25
    engagement = devrev_engagements(sandbox)[0]
    assert engagement["engagement_type"] == "call"
    assert engagement["members"] == [{"id": MEMBER}]
    assert {r["found_by"] for r in ledger_rows(ledger).values()} == {"create"}
    creates = create_requests(sandbox)

    again = import_devrev(sandbox, manifest, ledger)
    assert again.exit_code == 0 and again.counts["already imported"] == 25
    assert create_requests(sandbox) == creates


def test_dropped_and_failed_creates_end_with_one_engagement_per_ref(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.set_faults(drop_after_commit_rate=0.3, fail_rate=0.3)
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 40)
    ledger = tmp_path / "ledger.db"
    send = SendSettings(concurrency=4, settle_seconds=0)  # the list does not lag here
    for _ in range(5):
        if import_devrev(sandbox, manifest, ledger, send=send).exit_code == 0:
            break
    sandbox.set_faults(drop_after_commit_rate=0.0, fail_rate=0.0)
    assert import_devrev(sandbox, manifest, ledger, send=send).exit_code == 0
    assert len(per_ref(sandbox)) == 40 and set(per_ref(sandbox).values()) == {1}
    rows = ledger_rows(ledger)
    assert {r["status"] for r in rows.values()} <= {"created", "existing"}
    assert "lookup" in {r["found_by"] for r in rows.values()}  # the dropped ones
    held = {e["external_ref"]: e["id"] for e in devrev_engagements(sandbox)}
    assert {i: r["engagement_id"] for i, r in rows.items()} == held


def test_rows_left_in_flight_by_a_crash_are_looked_up_before_resending(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 6)
    ledger = tmp_path / "ledger.db"
    assert import_devrev(sandbox, manifest, ledger).exit_code == 0
    # As if the process died after sending: in flight in the ledger, created on the server.
    with sqlite3.connect(ledger) as db:
        db.execute("UPDATE engagements SET status = 'in_flight', found_by = NULL")
    creates = create_requests(sandbox)
    summary = import_devrev(sandbox, manifest, ledger)
    # Found by the lookup: the crashed run's own creates, and said so.
    earlier = "existing (an earlier attempt, answer lost)"
    assert summary.exit_code == 0 and summary.counts[earlier] == 6
    assert create_requests(sandbox) == creates
    assert {r["found_by"] for r in ledger_rows(ledger).values()} == {"lookup"}


def test_a_duplicate_on_the_server_is_reported_not_picked(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 3)
    ledger = tmp_path / "ledger.db"
    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    body = {
        "title": "made by hand",
        "parent": "ACC-1",
        "scheduled_date": "2024-01-01T00:00:00Z",
        "members": [MEMBER],
        "external_ref": "crm:rec-2",
    }
    for _ in range(2):
        httpx.post(sandbox.base_url + "/engagements.create", json=body, headers=headers)
    summary = import_devrev(sandbox, manifest, ledger)
    assert summary.exit_code == 1 and summary.counts["failed"] == 1
    rows = ledger_rows(ledger)
    assert rows["crm:rec-2"]["status"] == "failed" and rows["crm:rec-2"]["engagement_id"] is None
    assert per_ref(sandbox)["crm:rec-2"] == 2  # nothing added, nothing picked
    with sqlite3.connect(ledger) as db:
        (message,) = db.execute(
            "SELECT error_message FROM engagements WHERE external_id = 'crm:rec-2'"
        ).fetchone()
    assert "holds 2 engagements with external id crm:rec-2" in message


def test_a_ledger_of_one_target_is_refused_for_another(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 2)
    ledger = tmp_path / "ledger.db"
    assert import_devrev(sandbox, manifest, ledger).exit_code == 0
    with Ledger(ledger) as opened, pytest.raises(LedgerError, match="--target devrev"):
        opened.claim_target("askelephant")
    with Ledger(ledger, readonly=True) as opened:
        opened.claim_target("devrev")  # the same target: fine, read-only too


def test_a_ledger_from_before_targets_is_askelephants(tmp_path: Path) -> None:
    with Ledger(tmp_path / "old.db") as opened:
        opened.mark_in_flight("crm:1", "m.csv", 2, "hash", 1)
        with pytest.raises(LedgerError, match="records an import into askelephant, not devrev"):
            opened.claim_target("devrev")
        opened.claim_target("askelephant")
