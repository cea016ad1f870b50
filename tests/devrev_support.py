"""Helpers for DevRev imports against the sandbox: manifests, server views, ledger views."""

from __future__ import annotations

import csv
import functools
import io
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from importer.events import JsonReporter
from importer.outcomes import RunSummary
from importer.rows.mapping import load_mapping
from importer.rows.validate import MappingOptions
from importer.runner import import_manifest, target_factory
from importer.settings import ImportSettings, PlanOptions, RetrySettings, SendSettings
from importer.targets.devrev import DevRevTarget
from importer.targets.registry import TARGETS
from tests.conftest import DEVREV_CRM_ACCOUNT, SANDBOX_KEY, Sandbox

DEVREV = TARGETS["devrev"]
MEMBER = "don:identity:dvrv-us-1:devo/0:devu/1"
DEVREV_COLUMNS = [
    "id",
    "type",
    "title",
    "parent",
    "start_at",
    "members",
    "media_url",
    "source_system",
]
ACCOUNT_ID = "don:core:dvrv-us-1:devo/sandbox:account/1"
"""The account the sandbox's seeded CRM account id (``DEVREV_CRM_ACCOUNT``) resolves to."""


def devrev_row(n: int, **changes: str) -> dict[str, str]:
    """A valid DevRev manifest row numbered ``n``."""
    cells = {
        "id": f"rec-{n}",
        "type": "CALL" if n % 2 else "MEETING",
        "title": f"Call number {n}",
        "parent": DEVREV_CRM_ACCOUNT,
        "start_at": f"2024-03-{1 + n % 28:02d}T10:{n % 60:02d}:00Z",
        "members": MEMBER,
        "media_url": f"https://media.example.com/calls/{n}.mp3",
        "source_system": "crm",
    }
    cells.update(changes)
    return cells


def write_devrev_manifest(path: Path, count: int, start: int = 1) -> Path:
    """``count`` valid rows as a CSV manifest."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=DEVREV_COLUMNS)
        writer.writeheader()
        writer.writerows(devrev_row(n) for n in range(start, start + count))
    return path


def add_account(sandbox: Sandbox, *external_refs: str) -> dict[str, Any]:
    """One more DevRev account in the sandbox, synced from these CRM ids (until a reset)."""
    body = {"external_refs": list(external_refs)}
    return dict(sandbox._call("POST", "/_sandbox/devrev/accounts", json=body)["account"])


def devrev_engagements(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Every DevRev engagement the sandbox holds, oldest first."""
    return list(sandbox._call("GET", "/_sandbox/devrev/engagements")["engagements"])


def per_ref(sandbox: Sandbox) -> Counter[str]:
    """How many engagements the sandbox holds per external_ref."""
    return Counter(str(e["external_ref"]) for e in devrev_engagements(sandbox))


def create_requests(sandbox: Sandbox) -> int:
    """POST /engagements.create requests the sandbox answered (or dropped)."""
    by_status = sandbox.stats()["requests"].get("POST /engagements.create", {})
    return sum(by_status.values())


def ledger_rows(ledger: Path) -> dict[str, dict[str, Any]]:
    """external_id -> status, engagement_id, found_by."""
    with sqlite3.connect(ledger) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT external_id, status, engagement_id, found_by FROM engagements")
        return {row["external_id"]: dict(row) for row in rows}


QUICK_BACK_OFF = RetrySettings(backoff_base=0.01)
"""Back-off waits of milliseconds: what is retried matters here, not how long it waits."""


def import_devrev(
    sandbox: Sandbox,
    manifest: Path,
    ledger: Path,
    *,
    send: SendSettings | None = None,
    plan: PlanOptions | None = None,
    **target_options: Any,
) -> RunSummary:
    """One in-process DevRev import of the manifest (batches of 10, 4 workers).

    ``target_options`` build the DevRev target with them (e.g. ``max_pages``)."""
    columns = load_mapping(None, DEVREV.fields, DEVREV.required)
    settings = ImportSettings(
        manifest=manifest,
        mapping=MappingOptions(columns=columns, row_mapper=DEVREV.row_mapper),
        send=send or SendSettings(concurrency=4, retry=QUICK_BACK_OFF),
        plan=plan or PlanOptions(),
        batch_size=10,
    )
    factory = target_factory(DEVREV, sandbox.base_url, SANDBOX_KEY, concurrency=4, read_timeout=10)
    if target_options:
        factory = functools.partial(DevRevTarget, sandbox.base_url, SANDBOX_KEY, **target_options)
    return import_manifest(
        settings,
        ledger_path=ledger,
        target_factory=factory,
        reporter=JsonReporter(io.StringIO()),
        command="run",
        options={"target": "devrev"},
        target="devrev",
    )
