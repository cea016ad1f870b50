"""A DevRev import whose per-batch lookups span several pages of ``engagements.list``.

The sandbox pages small (``list_page_size``), whatever ``limit`` the importer asks: rows
already on the server are found on every page, not only the first, so none is created
again; a re-run creates nothing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from importer.outcomes import Outcome
from tests.conftest import SANDBOX_KEY, Sandbox
from tests.devrev_support import (
    MEMBER,
    create_requests,
    import_devrev,
    ledger_rows,
    per_ref,
    write_devrev_manifest,
)

PAGE = 3


def test_rows_found_on_later_pages_are_existing_not_created_again(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    already = [f"crm:rec-{n}" for n in (1, 2, 4, 5, 7, 8, 9, 10, 13, 17)]
    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers) as client:
        for ref in already:
            body = {
                "title": "made before the import",
                "parent": "ACC-1",
                "scheduled_date": "2024-01-01T00:00:00Z",
                "members": [MEMBER],
                "external_ref": ref,
            }
            client.post("/engagements.create", json=body).raise_for_status()
    made_by_hand = create_requests(sandbox)
    sandbox.set_faults(list_page_size=PAGE)
    try:
        manifest = write_devrev_manifest(tmp_path / "calls.csv", 20)
        ledger = tmp_path / "devrev.db"
        first = import_devrev(sandbox, manifest, ledger)
        # The hand-made ten differ from their rows: found (existing in the ledger), and
        # counted once, as changed (exit 1).
        assert first.sent[Outcome.CREATED] == 10 and first.sent[Outcome.CHANGED] == 10
        assert first.sent[Outcome.EXISTING] == 0
        lists = sum(sandbox.stats()["requests"]["POST /engagements.list"].values())
        # Batch 1 holds 8 known refs: 3 pages; batch 2 holds 2: 1 page.
        assert lists == 4
        assert per_ref(sandbox) == {f"crm:rec-{n}": 1 for n in range(1, 21)}
        rows = ledger_rows(ledger)
        found = {ref for ref, row in rows.items() if row["found_by"] == "lookup"}
        assert found == set(already)
        assert {rows[ref]["status"] for ref in already} == {"existing"}
        assert create_requests(sandbox) - made_by_hand == 10

        creates = create_requests(sandbox)
        again = import_devrev(sandbox, manifest, ledger)
        assert create_requests(sandbox) == creates  # a re-run creates nothing
        assert again.sent[Outcome.CREATED] == 0 and again.stop_reason is None
    finally:
        sandbox.set_faults(list_page_size=None)


def test_a_page_size_below_one_is_refused(sandbox: Sandbox) -> None:
    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers) as client:
        answer = client.post("/_sandbox/faults", json={"list_page_size": 0})
    assert answer.status_code == 422 and "list_page_size" in answer.text


def test_a_list_that_pages_past_its_bound_stops_the_run_creating_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 8)
    ledger = tmp_path / "ledger.db"
    assert import_devrev(sandbox, manifest, ledger).exit_code == 0
    with sqlite3.connect(ledger) as db:  # as if a crash left them: each is looked up
        db.execute("UPDATE engagements SET status = 'in_flight'")
    sandbox.set_faults(list_page_size=1)
    try:
        creates = create_requests(sandbox)
        summary = import_devrev(sandbox, manifest, ledger, max_pages=3)
    finally:
        sandbox.set_faults(list_page_size=None)
    assert summary.exit_code == 3
    assert "engagements.list was still handing out pages after 3" in str(summary.stop_reason)
    assert create_requests(sandbox) == creates
    assert {r["status"] for r in ledger_rows(ledger).values()} == {"in_flight"}
