"""Reconcile: the ledger against the target, for both targets, over real HTTP."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from importer.outcomes import Status
from importer.report.reconcile import Finding, compare
from importer.runner import reconcile_ledger, target_factory
from importer.targets.base import RemoteEngagement
from importer.targets.registry import TARGETS
from tests.conftest import SANDBOX_KEY, Sandbox
from tests.devrev_support import (
    MEMBER,
    devrev_engagements,
    import_devrev,
    write_devrev_manifest,
)
from tests.factories import row, run_args, run_cli, write_manifest


def reconcile_with(sandbox: Sandbox, ledger: Path, target: str) -> dict[str, object]:
    factory = target_factory(
        TARGETS[target], sandbox.base_url, SANDBOX_KEY, concurrency=4, read_timeout=10
    )
    return reconcile_ledger(ledger, factory, target=target).as_dict()


def set_ledger(ledger: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(ledger) as db:
        db.execute(sql, params)


def test_compare_names_each_kind_of_disagreement() -> None:
    def held(*ids: str) -> list[RemoteEngagement]:
        return [RemoteEngagement(i, "x", {}) for i in ids]

    rows = [
        {"external_id": "a", "status": Status.CREATED, "engagement_id": "1"},
        {"external_id": "b", "status": Status.EXISTING, "engagement_id": "2"},
        {"external_id": "c", "status": Status.PENDING, "engagement_id": None},
        {"external_id": "d", "status": Status.CREATED, "engagement_id": "4"},
        {"external_id": "e", "status": Status.CREATED, "engagement_id": "5"},
    ]
    remote = {"a": held("1"), "b": [], "c": held("3"), "d": held("4", "9"), "e": held("6")}
    assert compare(rows, remote) == [
        Finding("missing", "b", "2"),
        Finding("unknown", "c", None, ("3",)),
        Finding("duplicate", "d", "4", ("4", "9")),
        Finding("mismatched", "e", "5", ("6",)),
    ]


def test_devrev_reconcile_finds_deleted_rows_and_duplicates_made_behind_its_back(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 5)
    ledger = tmp_path / "ledger.db"
    assert import_devrev(sandbox, manifest, ledger).exit_code == 0
    clean = reconcile_with(sandbox, ledger, "devrev")
    assert clean["agrees"] is True and clean["method"] == "lookup" and clean["checked"] == 5

    client = httpx.Client(
        base_url=sandbox.base_url, headers={"Authorization": f"Bearer {SANDBOX_KEY}"}
    )
    held = {e["external_ref"]: e["id"] for e in devrev_engagements(sandbox)}
    client.post("/engagements.delete", json={"id": held["crm:rec-1"]}).raise_for_status()
    extra = {
        "title": "made by hand",
        "parent": "ACC-1",
        "scheduled_date": "2024-01-01T00:00:00Z",
        "members": [MEMBER],
        "external_ref": "crm:rec-2",
    }
    copy = client.post("/engagements.create", json=extra).json()["engagement"]["id"]
    client.close()
    set_ledger(ledger, "UPDATE engagements SET status = 'failed' WHERE external_id = 'crm:rec-3'")
    set_ledger(ledger, "UPDATE engagements SET engagement_id = 'x' WHERE external_id = 'crm:rec-4'")

    found = reconcile_with(sandbox, ledger, "devrev")
    assert found["agrees"] is False
    assert found["counts"] == {"missing": 1, "unknown": 1, "duplicate": 1, "mismatched": 1}
    by_kind = {f["kind"]: f for f in found["findings"]}  # type: ignore[attr-defined]
    assert by_kind["missing"]["external_id"] == "crm:rec-1"
    assert by_kind["duplicate"]["remote_ids"] == [held["crm:rec-2"], copy]
    assert by_kind["unknown"]["external_id"] == "crm:rec-3"
    assert by_kind["mismatched"]["remote_ids"] == [held["crm:rec-4"]]


def test_askelephant_reconcile_reads_each_recorded_id(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1, 4)])
    ledger = tmp_path / "ledger.db"
    assert run_cli(run_args(manifest, ledger, sandbox), api_key=sandbox.api_key).exit_code == 0
    clean = reconcile_with(sandbox, ledger, "askelephant")
    assert clean["agrees"] is True and clean["method"] == "get" and clean["checked"] == 3

    with sqlite3.connect(ledger) as db:
        ids = dict(db.execute("SELECT external_id, engagement_id FROM engagements"))
    set_ledger(
        ledger, "UPDATE engagements SET engagement_id = 'ngmt_gone' WHERE external_id = 'crm:rec-1'"
    )
    set_ledger(
        ledger,
        "UPDATE engagements SET engagement_id = ?, etag = NULL WHERE external_id = 'crm:rec-2'",
        ids["crm:rec-3"],
    )
    found = reconcile_with(sandbox, ledger, "askelephant")
    assert found["counts"] == {"missing": 1, "unknown": 0, "duplicate": 0, "mismatched": 1}
