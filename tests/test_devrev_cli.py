"""``--target devrev`` through the CLI: every command, the key and URL variables, reconcile."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx

from tests.conftest import SANDBOX_KEY, Sandbox
from tests.devrev_support import (
    ACCOUNT_ID,
    add_account,
    create_requests,
    devrev_engagements,
    per_ref,
    write_devrev_manifest,
)
from tests.factories import row, run_args, run_cli, write_manifest

DEVREV_ENV = {"DEVREV_API_KEY": SANDBOX_KEY, "DEVREV_BASE_URL": ""}


def devrev(args: list[str], **env: str) -> object:
    return run_cli(args, **{**DEVREV_ENV, **env})


def test_run_status_report_verify_and_reconcile_with_target_devrev(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 12)
    ledger = tmp_path / "devrev.db"
    target = ("--target", "devrev")

    planned = run_cli(["plan", str(manifest), "--ledger", str(ledger), *target, "--json"])
    assert planned.exit_code == 0, planned.output
    result = run_cli(run_args(manifest, ledger, sandbox, *target), **DEVREV_ENV)
    assert result.exit_code == 0, result.output
    assert len(per_ref(sandbox)) == 12
    creates = create_requests(sandbox)

    again = run_cli(run_args(manifest, ledger, sandbox, *target), **DEVREV_ENV)
    assert again.exit_code == 0 and create_requests(sandbox) == creates

    status = run_cli(["status", "--ledger", str(ledger), *target, "--json"])
    assert status.exit_code == 0, status.output
    report = run_cli(["report", "--ledger", str(ledger), *target, "--out", str(tmp_path / "r")])
    assert report.exit_code == 0 and (tmp_path / "r" / "success.csv").exists()

    api = ("--ledger", str(ledger), *target, "--base-url", sandbox.base_url)
    verified = run_cli(["verify", *api], **DEVREV_ENV)
    assert verified.exit_code == 0, verified.output
    assert "12 READY" in verified.output

    clean = run_cli(["reconcile", *api], **DEVREV_ENV)
    assert clean.exit_code == 0, clean.output
    assert "12 row(s) looked up by external id; the ledger and the target agree" in clean.output

    # Behind the importer's back: one engagement deleted, one made twice.
    held = {e["external_ref"]: e["id"] for e in devrev_engagements(sandbox)}
    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    httpx.post(
        sandbox.base_url + "/engagements.delete", json={"id": held["crm:rec-3"]}, headers=headers
    ).raise_for_status()
    copy = {
        "title": "again",
        "parent": "ACC-1",
        "scheduled_date": "2024-03-01T00:00:00Z",
        "members": ["DEVU-1"],
        "external_ref": "crm:rec-5",
    }
    httpx.post(
        sandbox.base_url + "/engagements.create", json=copy, headers=headers
    ).raise_for_status()

    found = run_cli(["reconcile", *api, "--json"], **DEVREV_ENV)
    assert found.exit_code == 1, found.output
    findings = json.loads(found.output)["findings"]
    assert sorted((f["kind"], f["external_id"]) for f in findings) == [
        ("duplicate", "crm:rec-5"),
        ("missing", "crm:rec-3"),
    ]
    text = run_cli(["reconcile", *api], **DEVREV_ENV)
    assert text.exit_code == 1 and "they disagree: 1 missing, 1 duplicate" in text.output
    assert SANDBOX_KEY not in found.output + text.output + clean.output + result.output
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert SANDBOX_KEY.encode() not in stored  # ledger (and its WAL), reports, manifest


def test_a_ledger_of_one_target_is_refused_for_another(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    ledger = tmp_path / "ledger.db"
    assert run_cli(run_args(manifest, ledger, sandbox), api_key=sandbox.api_key).exit_code == 0
    devrev_manifest = write_devrev_manifest(tmp_path / "calls.csv", 1)
    refused = run_cli(
        run_args(devrev_manifest, ledger, sandbox, "--target", "devrev"), **DEVREV_ENV
    )
    assert refused.exit_code == 2
    assert "records an import into askelephant, not devrev" in refused.output
    status = run_cli(["status", "--ledger", str(ledger), "--target", "devrev"])
    assert status.exit_code == 2 and "pass --target askelephant" in status.output


def test_the_devrev_key_comes_from_its_own_variable(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 1)
    args = run_args(manifest, tmp_path / "l.db", sandbox, "--target", "devrev")
    missing = run_cli(args, api_key=SANDBOX_KEY, DEVREV_API_KEY="")
    assert missing.exit_code == 2 and "DEVREV_API_KEY" in missing.output
    key_file = tmp_path / "devrev.key"
    key_file.write_text(SANDBOX_KEY, encoding="utf-8")
    key_file.chmod(0o600)
    by_file = run_cli([*args, "--api-key-file", str(key_file)], DEVREV_API_KEY="")
    assert by_file.exit_code == 0, by_file.output


def test_the_devrev_base_url_comes_from_its_own_variable(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 1)
    args = [
        "run", str(manifest), "--ledger", str(tmp_path / "l.db"), "--target", "devrev",
        "--no-progress",
    ]  # fmt: skip
    result = run_cli(args, DEVREV_API_KEY=SANDBOX_KEY, DEVREV_BASE_URL=sandbox.base_url)
    assert result.exit_code == 0, result.output
    refused = run_cli(args, DEVREV_API_KEY=SANDBOX_KEY, DEVREV_BASE_URL="http://example.com")
    assert refused.exit_code == 2 and "clear text" in refused.output


def test_devrev_rows_are_validated_with_its_field_table(tmp_path: Path) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 2)
    text = manifest.read_text(encoding="utf-8").replace("don:identity:", "nobody:", 1)
    manifest.write_text(text, encoding="utf-8")
    planned = run_cli(
        ["plan", str(manifest), "--ledger", str(tmp_path / "l.db"), "--target", "devrev"]
    )
    assert planned.exit_code == 1
    assert "row 2 crm:rec-1: members: 'nobody:dvrv-us-1:devo/0:devu/1' is not a DevRev user id" in (
        planned.output
    )


def test_status_says_which_check_found_the_rows(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_faults(drop_after_commit_rate=1.0)
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 2)
    ledger = tmp_path / "devrev.db"
    args = run_args(manifest, ledger, sandbox, "--target", "devrev", "--concurrency", "1")
    assert run_cli(args, **DEVREV_ENV).exit_code == 0  # each drop looked up, then recorded
    status = run_cli(["status", "--ledger", str(ledger), "--target", "devrev", "--json"])
    assert json.loads(status.stdout)["found_by"] == {"lookup": 2}
    text = run_cli(["status", "--ledger", str(ledger), "--target", "devrev"])
    assert "Found by (the check that found them):" in text.stdout
    assert len(per_ref(sandbox)) == 2 and set(per_ref(sandbox).values()) == {1}


def test_report_and_status_read_a_ledger_older_than_found_by(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    ledger = tmp_path / "ledger.db"
    assert run_cli(run_args(manifest, ledger, sandbox), api_key=sandbox.api_key).exit_code == 0
    with sqlite3.connect(ledger) as db:
        db.execute("ALTER TABLE engagements DROP COLUMN found_by")
    ledger.chmod(0o444)  # read-only: nothing may add the column back
    try:
        report = run_cli(["report", "--ledger", str(ledger), "--out", str(tmp_path / "r")])
        status = run_cli(["status", "--ledger", str(ledger), "--json"])
    finally:
        ledger.chmod(0o644)
    assert report.exit_code == 0, report.output
    assert status.exit_code == 0 and json.loads(status.stdout)["found_by"] == {}


def test_retry_reads_the_manifest_with_the_devrev_field_table_again(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 3)
    ledger = tmp_path / "devrev.db"
    sandbox.set_faults(fail_rate=1.0)
    first = run_args(manifest, ledger, sandbox, "--target", "devrev", "--max-attempts", "1")
    assert run_cli(first, **DEVREV_ENV).exit_code == 1
    sandbox.set_faults(fail_rate=0.0)
    api = ("--ledger", str(ledger), "--base-url", sandbox.base_url, "--no-progress")
    # Without --target, retry goes where the ledger's runs went, and says so.
    # The 500s said nothing was stored: no list to wait for (else the rows stay in doubt).
    retried = run_cli(["retry", *api, "--settle-seconds", "0"], **DEVREV_ENV)
    assert retried.exit_code == 0, retried.output
    assert f"Target of the last run (#1): {sandbox.base_url} (devrev)" in retried.stderr
    assert len(per_ref(sandbox)) == 3 and set(per_ref(sandbox).values()) == {1}


SALESFORCE_TASKS = (
    "Id,Subject,AccountId,ActivityDate,Recording_URL__c,TaskSubtype\n"
    "00T1,Discovery,001ACME000001,2024-03-05 10:00,https://media.example.com/1.mp3,Call\n"
    "00T2,Demo,001GLOBEX,2024-03-06 11:00,https://media.example.com/2.mp3,Call\n"
)


def test_init_for_devrev_proposes_the_account_column_and_its_mapping_imports(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = tmp_path / "tasks.csv"
    manifest.write_text(SALESFORCE_TASKS, encoding="utf-8")
    mapping = tmp_path / "devrev.toml"
    result = run_cli(
        ["init", str(manifest), "--target", "devrev", "--out", str(mapping), "--timezone", "UTC"]
    )
    assert result.exit_code == 0, result.output
    assert "mapped:  parent <- 'AccountId'" in result.output
    text = mapping.read_text(encoding="utf-8")
    assert 'parent = "AccountId"' in text and "\nparticipants =" not in text
    assert '# members = "..."   # not found (optional)' in text

    globex = add_account(sandbox, "001GLOBEX")["id"]
    args = run_args(manifest, tmp_path / "l.db", sandbox, "--target", "devrev")
    imported = devrev([*args, "--mapping", str(mapping), "--source-system", "salesforce"])
    assert imported.exit_code == 0, imported.output
    filed = {e["external_ref"]: e["parent"]["id"] for e in devrev_engagements(sandbox)}
    assert filed == {"salesforce:00T1": ACCOUNT_ID, "salesforce:00T2": globex}


def test_init_for_devrev_says_when_no_column_holds_the_account(tmp_path: Path) -> None:
    manifest = tmp_path / "tasks.csv"
    manifest.write_text("Id,Subject\n00T1,Discovery\n", encoding="utf-8")
    out = tmp_path / "devrev.toml"
    result = run_cli(["init", str(manifest), "--target", "devrev", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "missing: parent (required: map the CRM's account id column" in result.output
    assert '# parent = "..."   # not found (required)' in out.read_text(encoding="utf-8")
    # Without --target, AskElephant's table: no parent, the account column unused.
    plain = run_cli(["init", str(manifest), "--out", str(tmp_path / "a.toml")])
    assert "parent" not in plain.output
