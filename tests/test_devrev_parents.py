"""DevRev's ``parent``: each row filed under the account its CRM account id names.

A CRM account id is found with ``accounts.list`` by ``external_refs``, each distinct value
once per run, the answers kept in the ledger; a DevRev id is sent as it is; a value no
account (or several) holds fails its row alone, and nothing is sent for it.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import DEVREV_CRM_ACCOUNT, SandboxProcess
from tests.devrev_support import (
    ACCOUNT_ID,
    DEVREV_COLUMNS,
    add_account,
    create_requests,
    devrev_engagements,
    devrev_row,
    import_devrev,
    ledger_rows,
)

LONG_TITLE = ("A title DevRev publishes no limit for; " * 13)[:500]


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=DEVREV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def account_lists(sandbox: SandboxProcess) -> int:
    return sum(sandbox.stats()["requests"].get("POST /accounts.list", {}).values())


def error_message(ledger: Path, external_id: str) -> str:
    with sqlite3.connect(ledger) as db:
        (message,) = db.execute(
            "SELECT error_message FROM engagements WHERE external_id = ?", [external_id]
        ).fetchone()
    return str(message)


def lookups(ledger: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as db:
        return db.execute(
            "SELECT run_id, field, value, target_ids FROM reference_lookups ORDER BY run_id, value"
        ).fetchall()


def parents(sandbox: SandboxProcess) -> dict[str, str]:
    """external_ref -> the parent id the engagement was filed under."""
    return {e["external_ref"]: e["parent"]["id"] for e in devrev_engagements(sandbox)}


def test_every_row_is_filed_under_the_account_its_crm_id_names(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    acme = ACCOUNT_ID  # seeded: synced from DEVREV_CRM_ACCOUNT
    globex = add_account(sandbox, "001GLOBEX")["id"]
    add_account(sandbox, "001TWIN")
    add_account(sandbox, "001TWIN")  # two accounts synced from one CRM id: ambiguous
    crm_ids = [DEVREV_CRM_ACCOUNT, "001GLOBEX"]
    rows = [devrev_row(n, parent=crm_ids[n % 2]) for n in range(1, 26)]
    rows[4]["title"] = LONG_TITLE
    rows += [
        devrev_row(26, parent="ACC-1"),  # a DevRev display id: sent as it is
        devrev_row(27, parent=f"  {globex} "),  # a full DevRev id: sent as it is
        devrev_row(28, parent="001NOBODY"),
        devrev_row(29, parent="001TWIN"),
    ]
    manifest = write_rows(tmp_path / "calls.csv", rows)
    ledger = tmp_path / "ledger.db"

    summary = import_devrev(sandbox, manifest, ledger)  # batches of 10

    assert summary.counts["created"] == 27 and summary.counts["failed"] == 2
    assert summary.exit_code == 1
    expected = {f"crm:rec-{n}": (acme if n % 2 == 0 else globex) for n in range(1, 26)}
    expected |= {"crm:rec-26": "ACC-1", "crm:rec-27": globex}
    assert parents(sandbox) == expected
    titles = {e["external_ref"]: e["title"] for e in devrev_engagements(sandbox)}
    assert titles["crm:rec-5"] == LONG_TITLE and len(LONG_TITLE) == 500
    # Each distinct CRM id asked about once: the first batch's two, the last batch's two.
    assert account_lists(sandbox) == 2
    assert [(field, value) for _, field, value, _ in lookups(ledger)] == [
        ("parent", DEVREV_CRM_ACCOUNT),
        ("parent", "001GLOBEX"),
        ("parent", "001NOBODY"),
        ("parent", "001TWIN"),
    ]
    assert json.loads(lookups(ledger)[2][3]) == []
    assert len(json.loads(lookups(ledger)[3][3])) == 2

    recorded = ledger_rows(ledger)
    assert recorded["crm:rec-28"]["status"] == "failed"
    assert recorded["crm:rec-28"]["engagement_id"] is None
    assert error_message(ledger, "crm:rec-28") == (
        "parent '001NOBODY': no account holds it as an external reference; nothing was sent: "
        "give the account's own id, or sync the account first, then run again"
    )
    assert error_message(ledger, "crm:rec-29").startswith(
        "parent '001TWIN': 2 accounts hold it as an external reference ("
    )
    assert "crm:rec-28" not in parents(sandbox) and "crm:rec-29" not in parents(sandbox)


def test_a_rerun_creates_nothing_and_asks_again_for_what_it_did_not_find(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    rows = [devrev_row(1), devrev_row(2, parent="001LATER")]
    manifest = write_rows(tmp_path / "calls.csv", rows)
    ledger = tmp_path / "ledger.db"
    assert import_devrev(sandbox, manifest, ledger).counts["failed"] == 1
    creates = create_requests(sandbox)

    again = import_devrev(sandbox, manifest, ledger)
    assert again.counts["failed"] == 1 and create_requests(sandbox) == creates
    assert account_lists(sandbox) == 2  # once per run: the new run asked again

    later = add_account(sandbox, "001LATER")["id"]  # synced from the CRM meanwhile
    third = import_devrev(sandbox, manifest, ledger)
    assert third.exit_code == 0 and third.counts["created"] == 1
    assert parents(sandbox)["crm:rec-2"] == later
    assert {run for run, *_ in lookups(ledger)} == {1, 2, 3}

    creates = create_requests(sandbox)
    assert import_devrev(sandbox, manifest, ledger).exit_code == 0
    assert create_requests(sandbox) == creates


def test_rows_with_devrev_ids_alone_never_ask_for_accounts(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    manifest = write_rows(tmp_path / "calls.csv", [devrev_row(n, parent="ACC-1") for n in (1, 2)])
    assert import_devrev(sandbox, manifest, tmp_path / "ledger.db").exit_code == 0
    assert account_lists(sandbox) == 0
    assert set(parents(sandbox).values()) == {"ACC-1"}


def test_devrevs_refusal_reaches_the_row_in_its_own_words(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    rows = [devrev_row(1), devrev_row(2, parent="ACC-99")]  # well formed, but no such account
    manifest = write_rows(tmp_path / "calls.csv", rows)
    ledger = tmp_path / "ledger.db"
    summary = import_devrev(sandbox, manifest, ledger)
    assert summary.counts["created"] == 1 and summary.counts["failed"] == 1
    assert error_message(ledger, "crm:rec-2") == (
        "HTTP 400: parent 'ACC-99' is not an account this org holds"
    )
