"""In doubt, never twice (issue 20): DevRev's create is not idempotent and its list may
show a new engagement late, so a create whose answer was lost is never sent again until a
look-up, a settling time after it, still finds nothing.

The sandbox's DevRev face lags its list (``list_delay_seconds``) and drops answers after
storing (``drop_after_commit_rate``). "Later" is written into the ledger (``sent_at``
moved back), never waited for.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, cast

import httpx

from importer.settings import PlanOptions, RetrySettings, SendSettings
from tests.conftest import SandboxProcess
from tests.devrev_support import (
    create_requests,
    import_devrev,
    ledger_rows,
    per_ref,
    write_devrev_manifest,
)

ROWS = 6
LAG = 600.0
"""Longer than any test: the list does not show the run's creates while it lags."""


def move_sent_back(ledger: Path, seconds: float) -> None:
    """As if the last attempts had been sent ``seconds`` earlier."""
    with sqlite3.connect(ledger) as db:
        db.execute(
            "UPDATE engagements SET sent_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', sent_at, ?)",
            [f"-{seconds} seconds"],
        )


def messages(ledger: Path) -> dict[str, str]:
    with sqlite3.connect(ledger) as db:
        return dict(db.execute("SELECT external_id, error_message FROM engagements").fetchall())


def test_a_lost_answer_under_a_lagging_list_is_in_doubt_never_sent_twice(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    sandbox.set_faults(list_delay_seconds=LAG, drop_after_commit_rate=1.0)
    manifest = write_devrev_manifest(tmp_path / "calls.csv", ROWS)
    ledger = tmp_path / "ledger.db"

    first = import_devrev(sandbox, manifest, ledger)
    # Each create was stored, its answer lost, and the look-up cannot see it yet.
    assert first.exit_code == 1 and first.counts["in doubt"] == ROWS
    assert first.counts["created"] == 0 and first.counts["failed"] == 0
    assert per_ref(sandbox) == {f"crm:rec-{n}": 1 for n in range(1, ROWS + 1)}
    assert {r["status"] for r in ledger_rows(ledger).values()} == {"in_flight"}
    assert all(m.startswith("in doubt: a create of crm:rec-") for m in messages(ledger).values())

    # A run right after: still in doubt, nothing created.
    creates = create_requests(sandbox)
    again = import_devrev(sandbox, manifest, ledger)
    assert again.exit_code == 1 and again.counts["in doubt"] == ROWS
    assert create_requests(sandbox) == creates

    # Later, the list has caught up: the look-up finds each one, nothing is created.
    sandbox.set_faults(list_delay_seconds=0.0, drop_after_commit_rate=0.0)
    move_sent_back(ledger, 3600)
    settled = import_devrev(sandbox, manifest, ledger)
    assert settled.exit_code == 0
    assert settled.counts["existing (an earlier attempt, answer lost)"] == ROWS
    assert create_requests(sandbox) == creates
    assert set(per_ref(sandbox).values()) == {1}
    assert {r["found_by"] for r in ledger_rows(ledger).values()} == {"lookup"}


def test_a_create_that_never_arrived_is_sent_again_once_the_doubt_has_settled(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    sandbox.set_faults(fail_rate=1.0)  # 500 before storing: the importer cannot know that
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 3)
    ledger = tmp_path / "ledger.db"
    send = SendSettings(concurrency=2, retry=RetrySettings(max_attempts=1))
    first = import_devrev(sandbox, manifest, ledger, send=send)
    assert first.counts["in doubt"] == 3 and per_ref(sandbox) == {}

    sandbox.set_faults(fail_rate=0.0)
    soon = import_devrev(sandbox, manifest, ledger)  # within the settling time: not sent
    assert soon.counts["in doubt"] == 3 and per_ref(sandbox) == {}

    move_sent_back(ledger, 3600)  # settled: the look-up's "absent" is believed
    settled = import_devrev(sandbox, manifest, ledger)
    assert settled.exit_code == 0 and settled.counts["created"] == 3
    assert set(per_ref(sandbox).values()) == {1} and len(per_ref(sandbox)) == 3


def test_a_crash_while_the_list_lags_resumes_without_a_second_create(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", ROWS)
    ledger = tmp_path / "ledger.db"
    assert import_devrev(sandbox, manifest, ledger).exit_code == 0
    # As if the process died mid-request a moment ago, with the list not showing them yet.
    sandbox.set_faults(list_delay_seconds=LAG)
    with sqlite3.connect(ledger) as db:
        db.execute("UPDATE engagements SET status = 'in_flight', found_by = NULL")
    creates = create_requests(sandbox)
    resumed = import_devrev(sandbox, manifest, ledger)
    assert resumed.exit_code == 1 and resumed.counts["in doubt"] == ROWS
    assert create_requests(sandbox) == creates
    assert set(per_ref(sandbox).values()) == {1}


def test_with_a_settling_time_of_zero_a_missed_create_is_sent_again_at_once(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    # What --settle-seconds 0 means, shown where it is wrong: the list lags, so the
    # look-up misses the stored create and a second one is made.
    sandbox.set_faults(list_delay_seconds=LAG, drop_after_commit_rate=1.0)
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 1)
    send = SendSettings(concurrency=1, settle_seconds=0, retry=RetrySettings(max_attempts=2))
    import_devrev(sandbox, manifest, tmp_path / "ledger.db", send=send)
    assert per_ref(sandbox) == {"crm:rec-1": 2}


class NormalisingDevRev:
    """A DevRev that stores external refs lower-cased: its 201 names another ref. The
    sandbox never does this; a mock transport plays it."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}
        self.creates = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/engagements.create":
            self.creates += 1
            engagement_id = f"don:core:dvrv-us-1:devo/x:engagement/{self.creates}"
            ref = json.loads(request.content)["external_ref"].lower()
            self.held[engagement_id] = ref
            return httpx.Response(
                201, json={"engagement": {"id": engagement_id, "external_ref": ref}}
            )
        if path == "/engagements.get":
            engagement_id = request.url.params["id"]
            if engagement_id in self.held:
                engagement = {"id": engagement_id, "external_ref": self.held[engagement_id]}
                return httpx.Response(200, json={"engagement": engagement})
            return httpx.Response(404, json={"type": "not_found", "message": "no such id"})
        if path == "/engagements.list":
            return httpx.Response(200, json={"engagements": []})  # never finds "CRM:REC-1"
        return httpx.Response(200, json={"accounts": []})


def test_an_engagement_named_by_a_refused_201_is_kept_and_never_made_twice(
    tmp_path: Path,
) -> None:
    server = NormalisingDevRev()
    manifest = tmp_path / "calls.csv"
    manifest.write_text("id,title,parent,source_system\nREC-1,Call,ACC-1,CRM\n", encoding="utf-8")
    ledger = tmp_path / "ledger.db"
    transport = httpx.MockTransport(server)
    offline = cast(Any, type("Offline", (), {"base_url": "https://api.devrev.ai"}))

    first = import_devrev(offline, manifest, ledger, transport=transport)
    assert first.counts["failed"] == 1 and server.creates == 1
    (row,) = ledger_rows(ledger).values()
    assert row["status"] == "failed" and row["engagement_id"] == next(iter(server.held))
    assert "it was created (don:core:" in messages(ledger)["CRM:REC-1"]

    again = import_devrev(
        offline, manifest, ledger, transport=transport, plan=PlanOptions(include_permanent=True)
    )
    assert again.counts["failed"] == 1 and server.creates == 1  # looked up by id: still there
    assert "still exists; the row is not created again" in messages(ledger)["CRM:REC-1"]

    server.held.clear()  # deleted in DevRev: now the row may be created
    import_devrev(
        offline, manifest, ledger, transport=transport, plan=PlanOptions(include_permanent=True)
    )
    assert server.creates == 2
