"""DevRev reconcile looks up every ref the manifest yields, not only the ledger's rows.

Engagements made behind the importer's back for refs the ledger never sent (a row it
rejected as invalid, one of a conflicting duplicate pair, a manifest row added after the
run) are ``unknown``: found through ``--manifest`` or the last run's manifest.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx

from tests.conftest import SANDBOX_KEY, Sandbox
from tests.devrev_support import DEVREV_COLUMNS, MEMBER, devrev_row
from tests.factories import row, run_args, run_cli, write_manifest

DEVREV_ENV = {"DEVREV_API_KEY": SANDBOX_KEY, "DEVREV_BASE_URL": ""}


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=DEVREV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def make_behind_its_back(sandbox: Sandbox, *refs: str) -> None:
    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers) as client:
        for ref in refs:
            body = {
                "title": "made by hand",
                "parent": "ACC-1",
                "scheduled_date": "2024-01-01T00:00:00Z",
                "members": [MEMBER],
                "external_ref": ref,
            }
            client.post("/engagements.create", json=body).raise_for_status()


def test_refs_the_ledger_never_sent_are_looked_up_from_the_manifest(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [
        devrev_row(1),
        devrev_row(2),
        devrev_row(3, title=""),  # invalid: rejected, never sent
        devrev_row(4),
        devrev_row(4, title="another title"),  # a conflicting duplicate: rejected
    ]
    manifest = write_rows(tmp_path / "calls.csv", rows)
    ledger = tmp_path / "devrev.db"
    target = ("--target", "devrev")
    result = run_cli(run_args(manifest, ledger, sandbox, *target), **DEVREV_ENV)
    assert result.exit_code == 1, result.output  # rows were rejected
    api = ("--ledger", str(ledger), *target, "--base-url", sandbox.base_url)
    clean = run_cli(["reconcile", *api, "--json"], **DEVREV_ENV)
    assert json.loads(clean.output)["agrees"] is True, clean.output

    # A row added to the manifest after the run, and engagements made by hand for it and
    # for the rejected rows' refs.
    write_rows(manifest, [*rows, devrev_row(9)])
    make_behind_its_back(sandbox, "crm:rec-3", "crm:rec-4", "crm:rec-9")

    found = run_cli(["reconcile", *api, "--json"], **DEVREV_ENV)  # the last run's manifest
    assert found.exit_code == 1, found.output
    findings = {(f["kind"], f["external_id"]) for f in json.loads(found.output)["findings"]}
    # rec-4's rows conflict, so neither was sent: the one engagement is the ledger's unknown.
    assert findings == {
        ("unknown", "crm:rec-3"),
        ("unknown", "crm:rec-4"),
        ("unknown", "crm:rec-9"),
    }

    # Another manifest, named: its refs are looked up too.
    other = write_rows(tmp_path / "more.csv", [devrev_row(20)])
    make_behind_its_back(sandbox, "crm:rec-20")
    named = run_cli(["reconcile", *api, "--manifest", str(other), "--json"], **DEVREV_ENV)
    kinds = {(f["kind"], f["external_id"]) for f in json.loads(named.output)["findings"]}
    assert ("unknown", "crm:rec-20") in kinds and ("unknown", "crm:rec-9") not in kinds


def test_a_gone_manifest_is_said_not_silently_skipped(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_rows(tmp_path / "calls.csv", [devrev_row(1)])
    ledger = tmp_path / "devrev.db"
    target = ("--target", "devrev")
    assert run_cli(run_args(manifest, ledger, sandbox, *target), **DEVREV_ENV).exit_code == 0
    manifest.unlink()
    api = ("--ledger", str(ledger), *target, "--base-url", sandbox.base_url)
    said = run_cli(["reconcile", *api], **DEVREV_ENV)
    assert said.exit_code == 0, said.output
    assert f"the last run's manifest {manifest.resolve()} is gone: pass --manifest" in said.output


def test_askelephant_reconcile_never_reads_the_manifest(sandbox: Sandbox, tmp_path: Path) -> None:
    # It reads each recorded id: a manifest's refs would be of no use, so a manifest that
    # is gone (or unreadable) neither slows it nor draws a note.
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1, 3)])
    ledger = tmp_path / "ledger.db"
    assert run_cli(run_args(manifest, ledger, sandbox), api_key=sandbox.api_key).exit_code == 0
    manifest.write_bytes(b"\x00\x01 not a manifest")
    api = ("--ledger", str(ledger), "--base-url", sandbox.base_url, "--json")
    checked = run_cli(["reconcile", *api], api_key=sandbox.api_key)
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["note"] is None
    manifest.unlink()
    gone = run_cli(["reconcile", *api], api_key=sandbox.api_key)
    assert json.loads(gone.output) == json.loads(checked.output)
