"""No silent duplicates: a changed prefix, and one recording under several ids.

Issue 10, points 1 and 2, end to end through the CLI against the sandbox.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.audit_support import CREATE, requests_of, run
from tests.conftest import Sandbox
from tests.factories import ledger_rows, row, run_cli, status_counts, write_manifest


def count(text: str, name: str) -> int | None:
    """A count from a summary or plan table (``  name   1,234``)."""
    found = re.search(rf"^  {re.escape(name)}\s+([\d,]+)$", text, re.MULTILINE)
    return int(found.group(1).replace(",", "")) if found else None


def plan(manifest: Path, ledger: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli(["plan", str(manifest), "--ledger", str(ledger), *extra])


# -- point 1: a changed source_system or --prefix ------------------------------------------------


def imported_then_renamed(sandbox: Sandbox, tmp_path: Path) -> tuple[Path, Path]:
    """Three rows imported as ``crm:rec-N``; the export now says ``CRM``."""
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1, 4)])
    assert run(sandbox, manifest, ledger).exit_code == 0
    write_manifest(manifest, [row(n, source_system="CRM") for n in range(1, 5)])
    return manifest, ledger


def test_plan_shows_rows_whose_prefix_changed(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest, ledger = imported_then_renamed(sandbox, tmp_path)

    result = plan(manifest, ledger)

    assert result.exit_code == 1
    assert count(result.stdout, "prefix changed") == 3
    assert count(result.stdout, "new") == 1
    assert (
        "row 2 CRM:rec-1: imported before as crm:rec-1 (the prefix was 'crm:', now 'CRM:')"
        in result.stdout
    )


def test_run_refuses_a_changed_prefix_naming_both(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest, ledger = imported_then_renamed(sandbox, tmp_path)
    before = requests_of(sandbox, CREATE)

    result = run(sandbox, manifest, ledger)

    assert result.exit_code == 2
    assert "3 row(s) were imported before under the prefix 'crm:'" in result.stderr
    assert "now 'CRM:'" in result.stderr and "--allow-new-prefix" in result.stderr
    assert requests_of(sandbox, CREATE) == before
    assert len(sandbox.engagements()) == 3


def test_allow_new_prefix_sends_them_as_new_engagements(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest, ledger = imported_then_renamed(sandbox, tmp_path)

    result = run(sandbox, manifest, ledger, "--allow-new-prefix")

    assert result.exit_code == 0, result.output
    assert len(sandbox.engagements()) == 7
    assert status_counts(ledger) == {"created": 7}


def test_the_prefix_option_is_guarded_as_well(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])
    assert run(sandbox, manifest, ledger, "--prefix", "sf-").exit_code == 0

    result = run(sandbox, manifest, ledger, "--prefix", "sf:")

    assert result.exit_code == 2
    assert "prefix 'sf-'" in result.stderr and "now 'sf:'" in result.stderr


def test_a_ledger_from_before_source_ids_is_migrated_and_then_guarded(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])
    assert run(sandbox, manifest, ledger).exit_code == 0
    with sqlite3.connect(ledger) as conn:  # as the previous version wrote it
        conn.execute("DROP INDEX IF EXISTS engagements_media_url")
        conn.execute("DROP INDEX IF EXISTS engagements_zone_read")
        conn.execute("DROP INDEX IF EXISTS engagements_beyond_ascii")
        conn.execute("ALTER TABLE engagements DROP COLUMN source_id")
        conn.execute("ALTER TABLE engagements DROP COLUMN media_url")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")

    again = run(sandbox, manifest, ledger)  # sees the rows imported: learns their source ids

    assert again.exit_code == 0, again.output
    assert {r["source_id"] for r in ledger_rows(ledger)} == {"rec-1", "rec-2"}
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "2",
        )
    write_manifest(manifest, [row(1, source_system="CRM"), row(2, source_system="CRM")])
    assert run(sandbox, manifest, ledger).exit_code == 2


# -- point 2: one recording under several ids ------------------------------------------------------


def copy_with_new_ids(tmp_path: Path, name: str = "copy.csv") -> Path:
    """The same two calls exported from another CRM: other ids, the same media URLs."""
    rows = [
        row(1, id="other-1", source_system="hubspot"),
        row(2, id="other-2", source_system="hubspot"),
        row(9, source_system="hubspot"),
    ]
    return write_manifest(tmp_path / name, rows)


def test_plan_flags_a_recording_already_imported_under_another_id(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    assert run(sandbox, write_manifest(tmp_path / "m.csv", [row(1), row(2)]), ledger).exit_code == 0

    result = plan(copy_with_new_ids(tmp_path), ledger)

    assert count(result.stdout, "same recording") == 2
    assert "row 2 hubspot:other-1: same recording as crm:rec-1" in result.stdout
    assert count(result.stdout, "new") == 1


def test_same_recording_is_warned_counted_and_sent_by_default(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    assert run(sandbox, write_manifest(tmp_path / "m.csv", [row(1), row(2)]), ledger).exit_code == 0

    result = run(sandbox, copy_with_new_ids(tmp_path), ledger)

    assert result.exit_code == 0, result.output
    assert "2 of the rows sent are the same recording as another row" in result.stdout
    assert count(result.stdout, "created") == 3
    assert "row 2 hubspot:other-1 same recording: same recording as crm:rec-1" in result.stderr
    assert len(sandbox.engagements()) == 5


def test_on_same_recording_skip_sends_none_of_them(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    assert run(sandbox, write_manifest(tmp_path / "m.csv", [row(1), row(2)]), ledger).exit_code == 0

    result = run(sandbox, copy_with_new_ids(tmp_path), ledger, "--on-same-recording", "skip")

    assert result.exit_code == 0, result.output
    assert len(sandbox.engagements()) == 3
    assert count(result.stdout, "skipped") == 2
    with sqlite3.connect(ledger) as conn:
        skipped = conn.execute("SELECT external_id, reason FROM rejects WHERE status = 'skipped'")
        assert sorted(skipped) == [
            ("hubspot:other-1", "same recording as crm:rec-1"),
            ("hubspot:other-2", "same recording as crm:rec-2"),
        ]


def test_two_rows_of_one_manifest_with_one_recording(sandbox: Sandbox, tmp_path: Path) -> None:
    media = "https://media.example.com/calls/shared.mp3"
    rows = [row(1, media_url=media), row(2), row(3, media_url=media)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "l.db"

    planned = plan(manifest, ledger, "--on-same-recording", "skip")
    result = run(sandbox, manifest, ledger, "--on-same-recording", "skip")

    assert "row 4 crm:rec-3: same recording as crm:rec-1" in planned.stdout
    assert result.exit_code == 0, result.output
    assert sorted(e["external_id"] for e in sandbox.engagements()) == ["crm:rec-1", "crm:rec-2"]


# -- issue 20: ids equal under Unicode NFKC, different as text ------------------------------------

NFC, NFD = "caf\u00e9", "cafe\u0301"


def test_ids_equal_under_nfkc_in_one_manifest_are_never_both_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = [NFC, NFD, "\uff11\uff12\uff13", "123", "\ufb01le", "file", "ABC", "abc", "rec-9"]
    rows = [row(n, id=value) for n, value in enumerate(ids, start=1)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "l.db"

    result = run(sandbox, manifest, ledger)

    assert result.exit_code == 1, result.output
    assert count(result.output, "duplicate") == 6
    assert count(result.output, "created") == 3  # case stays significant: ABC and abc
    assert sorted(e["external_id"] for e in sandbox.engagements()) == [
        "crm:ABC",
        "crm:abc",
        "crm:rec-9",
    ]
    assert (
        "external_id 'crm:cafe\\u0301' and 'crm:caf\\xe9' on row 2 differ as text but are one "
        "id under Unicode NFKC" in run_cli(["plan", str(manifest), "--ledger", str(ledger)]).output
    )


def test_an_id_equal_under_nfkc_to_one_sent_before_is_not_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    first = write_manifest(tmp_path / "first.csv", [row(1, id="\uff17"), row(2, id=NFD)])
    assert run(sandbox, first, ledger).exit_code == 0
    second = write_manifest(tmp_path / "second.csv", [row(1, id="7"), row(2, id=NFC), row(3)])

    result = run(sandbox, second, ledger)

    assert result.exit_code == 1, result.output
    assert count(result.output, "duplicate") == 2
    assert len(sandbox.engagements()) == 3  # the first two, and row 3 of the second
    reasons = plan(second, ledger).output
    assert "external_id 'crm:7' and 'crm:\\uff17' which the ledger holds as sent before" in reasons


def test_an_ascii_id_equal_under_nfkc_to_one_sent_before_is_not_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A manifest of ASCII ids alone holds no lookalike of its own: the ledger's still counts."""
    ledger = tmp_path / "l.db"
    first = write_manifest(tmp_path / "first.csv", [row(1, id="\uff17")])
    assert run(sandbox, first, ledger).exit_code == 0
    second = write_manifest(tmp_path / "second.csv", [row(1, id="7"), row(2)])

    result = run(sandbox, second, ledger)

    assert result.exit_code == 1, result.output
    assert count(result.output, "duplicate") == 1
    assert len(sandbox.engagements()) == 2


def test_ids_equal_under_nfkc_stay_unsent_when_the_manifest_is_run_again_unchanged(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1, id=NFC), row(2, id=NFD), row(3)])
    ledger = tmp_path / "l.db"
    assert run(sandbox, manifest, ledger).exit_code == 1

    again = run(sandbox, manifest, ledger)  # its index was kept: not read before sending

    assert "Unchanged since a run kept its index" in again.output
    assert again.exit_code == 1, again.output
    assert count(again.output, "duplicate") == 2
    assert sorted(e["external_id"] for e in sandbox.engagements()) == ["crm:rec-3"]
