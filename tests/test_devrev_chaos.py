"""The DevRev drill (issues 11, 18): lost answers, 500s and a kill -9, against a create that
is NOT idempotent, still end with exactly one engagement per external_ref, each under the
account its CRM account id names; the row whose account is unknown fails alone.

Reduced size by default (CI); ``CHAOS_FULL=1`` runs 1,000 rows. Every random choice is seeded.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos_support import ImporterProcess, integrity, run_importer, size, wait_until
from tests.conftest import Sandbox
from tests.devrev_support import (
    DEVREV_COLUMNS,
    create_requests,
    devrev_engagements,
    devrev_row,
    ledger_rows,
    per_ref,
)

MakeSandbox = Callable[..., Sandbox]
ARGS = ("--target", "devrev", "--concurrency", "8", "--settle-seconds", "0")
"""No list lag here: a look-up that misses a create is believed at once (the lagging list
is ``tests/test_devrev_doubt.py``'s)."""
CRM_ACCOUNTS = ("001A", "001B", "001C")
"""Seeded in this order: the sandbox's accounts 1, 2 and 3."""
ACCOUNT = "don:core:dvrv-us-1:devo/sandbox:account/"


def write_drill_manifest(path: Path, rows: int) -> Path:
    """Rows under three CRM accounts, row 7's title 500 characters, the last one's account
    unknown to DevRev."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=DEVREV_COLUMNS)
        writer.writeheader()
        for n in range(1, rows + 1):
            cells = devrev_row(n, parent=CRM_ACCOUNTS[n % 3])
            if n == 7:
                cells["title"] = ("Long-title " * 50)[:500]  # ends in "-", not a space
            if n == rows:
                cells["parent"] = "001NOBODY"
            writer.writerow(cells)
    return path


@pytest.mark.chaos
def test_drops_500s_and_a_kill_9_end_with_one_engagement_per_external_ref(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    rows = size(1000, 200)
    server = make_sandbox(
        latency_ms=10,
        seed=13,
        fail_rate=0.1,
        drop_after_commit_rate=0.05,
        devrev_accounts=list(CRM_ACCOUNTS),
    )
    manifest = write_drill_manifest(tmp_path / "calls.csv", rows)
    unknown = f"crm:rec-{rows}"
    ledger = tmp_path / "ledger.db"

    process = ImporterProcess(manifest, ledger, server, *ARGS)
    wait_until(lambda: not process.running() or create_requests(server) >= rows // 2, 120)
    assert process.running(), "the importer finished before the kill"
    process.kill()

    for _ in range(4):
        final = run_importer(manifest, ledger, server, *ARGS)
        statuses = {i: r["status"] for i, r in ledger_rows(ledger).items() if i != unknown}
        if set(statuses.values()) <= {"created", "existing"}:
            break
    assert final.process.returncode == 1, final.output[-3000:]  # the unknown account's row

    held = per_ref(server)
    assert len(held) == rows - 1 and set(held.values()) == {1}, held.most_common(3)
    filed = {e["external_ref"]: e["parent"]["id"] for e in devrev_engagements(server)}
    expected = {f"crm:rec-{n}": f"{ACCOUNT}{n % 3 + 1}" for n in range(1, rows)}
    assert filed == expected
    titles = {e["external_ref"]: e["title"] for e in devrev_engagements(server)}
    assert len(titles["crm:rec-7"]) == 500
    recorded = ledger_rows(ledger)
    assert recorded.pop(unknown)["status"] == "failed"
    assert {r["status"] for r in recorded.values()} <= {"created", "existing"}
    assert {"create", "lookup"} <= {r["found_by"] for r in recorded.values()}
    assert integrity(ledger) == "ok"
    with sqlite3.connect(ledger) as db:
        (message,) = db.execute(
            "SELECT error_message FROM engagements WHERE external_id = ?", [unknown]
        ).fetchone()
    assert message.startswith("parent '001NOBODY': no account holds it as an external reference")

    creates = create_requests(server)
    again = run_importer(manifest, ledger, server, *ARGS)
    assert again.process.returncode == 1  # the unknown account's row, still unknown
    assert create_requests(server) == creates  # a re-run creates nothing
    print(f"\nDevRev drill: {rows} rows, {creates} create requests for {len(held)} engagements")
