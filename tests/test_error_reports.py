"""Every row that needs attention is in a file: errors.csv, status, summary.md.

Issue 10, points 7, 8, 11 (errors.csv and the most frequent errors) and 12.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from pathlib import Path

from tests.audit_support import command, read_csv, run
from tests.conftest import Sandbox
from tests.factories import COLUMNS, api_args, row, run_cli, status_counts, write_manifest


def report(ledger: Path, out: Path, *extra: str):  # type: ignore[no-untyped-def]
    result = run_cli(["report", "--ledger", str(ledger), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result


def error_lines(out: Path, name: str = "errors.csv") -> dict[str, list[str]]:
    """errors.csv by the row's id cell: its cells, status, message."""
    lines = read_csv(out / name)
    header = lines[0]
    return {dict(zip(header, line, strict=True))["id"]: line for line in lines[1:]}


# -- point 11: errors.csv lists every row not in AskElephant -----


def test_errors_csv_lists_pending_and_in_flight_rows_with_their_cells(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    rows = [row(n) for n in range(1, 4)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    sandbox.add_key("sk-apik_reader.K", ["engagements:read"])  # 403 on create: stops at once
    assert run(sandbox, manifest, ledger, key="sk-apik_reader.K").exit_code == 3
    with sqlite3.connect(ledger) as conn:  # as a process killed mid-request leaves it
        conn.execute("UPDATE engagements SET status = 'in_flight' WHERE external_id = 'crm:rec-2'")
    out = tmp_path / "out"

    result = report(ledger, out)

    assert f"Wrote {out / 'errors.csv'} (3 rows)" in result.stdout
    lines = error_lines(out)
    assert lines["rec-1"][: len(COLUMNS)] == [rows[0][c] for c in COLUMNS]
    assert lines["rec-1"][-2] == "pending"
    assert lines["rec-2"][-2] == "in_flight"
    assert "importer retry" in lines["rec-2"][-1]


def test_errors_csv_lists_recordings_askelephant_could_not_process(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    broken = row(2, media_url="https://media.example.com/broken-call.mp3")
    assert run(sandbox, write_manifest(tmp_path / "m.csv", [row(1), broken]), ledger).exit_code == 0
    assert command(sandbox, "verify", ledger, "--wait", "--timeout", "30").exit_code == 1
    out = tmp_path / "out"

    report(ledger, out)

    lines = error_lines(out)
    assert list(lines) == ["rec-2"]
    assert lines["rec-2"][: len(COLUMNS)] == [broken[c] for c in COLUMNS]
    assert lines["rec-2"][-2] == "processing FAILED"


# -- point 7: sync-contacts problems are visible afterwards -----


def test_sync_contacts_problems_are_in_status_and_errors_csv(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2), row(3)])
    assert run(sandbox, manifest, ledger).exit_code == 0
    rows = [
        row(1, contact_ids="cnt_a"),
        row(2, contact_ids="bob"),
        row(3, contact_ids="cnt_unknown"),
    ]
    write_manifest(manifest, rows)

    result = run_cli(["sync-contacts", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)

    assert result.exit_code == 1
    assert not re.search(r"(?<![\d.])0\.0 rows/s", result.stdout)  # 60.0 rows/s is fine
    assert re.search(r"\(\d.* s, 2 requests, [1-9][\d.]* rows/s\)", result.stdout), result.stdout
    status = run_cli(["status", "--ledger", str(ledger)]).stdout
    assert "Contacts not applied: 2 engagement(s)" in status
    assert "crm:rec-2: row 3 is invalid: contact_ids: 'bob' is not a contact id" in status
    out = tmp_path / "out"
    report(ledger, out)
    lines = error_lines(out)
    assert sorted(lines) == ["rec-2", "rec-3"]
    assert lines["rec-3"][COLUMNS.index("contact_ids")] == "cnt_unknown"
    assert lines["rec-3"][-2] == "contacts failed"
    assert "cnt_unknown" in lines["rec-3"][-1]
    assert status_counts(ledger) == {"created": 3}


# -- point 11: the most frequent errors, by rule and column -----


def test_most_frequent_errors_group_by_rule_and_column(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    rows = [
        row(1, start_at="2024-13-45"),
        row(2, start_at="yesterday"),
        row(3, start_at="2024-02-30 10:00"),
        row(4, type="VIDEO"),
        row(5, media_url="https://media.example.com/5.html"),
        row(6, media_url="https://media.example.com/6.html"),
    ]
    assert run(sandbox, write_manifest(tmp_path / "m.csv", rows), ledger).exit_code == 1

    status = run_cli(["status", "--ledger", str(ledger)]).stdout

    frequent = status.split("Most frequent errors:\n")[1].split("\n")
    assert re.match(r"\s+3  start_at: date_time \(e\.g\. row 2: ", frequent[0]), frequent
    assert any(re.match(r"\s+2  HTTP 422 media_url", line) for line in frequent[:3]), frequent
    assert any(re.match(r"\s+1  type: invalid_choice", line) for line in frequent[:3]), frequent


# -- point 12: summary.md ---------------------------------------------------------------------


def test_report_writes_a_summary_to_paste(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    rows = [row(n, start_at=f"2024-01-{n:02d}T10:00:00Z") for n in range(1, 4)]
    rows += [
        row(n, start_at=f"2024-02-{n:02d}T10:00:00Z", media_url=f"https://m.example.com/{n}.html")
        for n in range(4, 6)
    ]
    rows += [row(6, start_at="2024-03-01T10:00:00Z", type="VIDEO")]
    rows += [row(7, start_at="2024-03-02 10:00", title="")]
    manifest = write_manifest(tmp_path / "calls.csv", rows)
    assert run(sandbox, manifest, ledger, "--timezone", "UTC").exit_code == 1
    out = tmp_path / "out"

    result = report(ledger, out)

    assert f"Wrote {out / 'summary.md'}" in result.stdout
    text = (out / "summary.md").read_text(encoding="utf-8")
    assert text.startswith(f"# Import summary: {ledger}\n")
    assert re.search(r"^  created\s+3$", text, re.MULTILINE)
    assert re.search(r"^  invalid\s+2$", text, re.MULTILINE)
    assert "| 2 | HTTP 422 media_url: unsupported_media_type | row 5: HTTP 422" in text
    assert "| 1 | type: invalid_choice | row 7: type: must be CALL or MEETING" in text
    assert "| 2024-01 | 3 | 3 | 0 |" in text
    assert "| 2024-02 | 2 | 0 | 2 |" in text
    assert "| 2024-03 | 2 | 0 | 2 |" in text  # an invalid row still has its month
    assert re.search(r"\| #1 \| run \| calls\.csv \| .* \| rows need attention \|", text)
    at = f"--base-url {sandbox.base_url} --ledger {ledger}"  # where the run sent
    assert f"importer run {out / 'errors.csv'} --timezone UTC {at}" in text  # the zone chosen
    assert f"importer retry --include-permanent {at}" in text
    assert f"importer verify --wait {at}" in text
    assert len(text.splitlines()) < 60


def test_the_summary_of_a_clean_import_says_nothing_is_left(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    assert run(sandbox, write_manifest(tmp_path / "m.csv", [row(1)]), ledger).exit_code == 0
    assert command(sandbox, "verify", ledger, "--wait", "--timeout", "30").exit_code == 0
    out = tmp_path / "out"

    report(ledger, out)

    text = (out / "summary.md").read_text(encoding="utf-8")
    assert "Nothing: every row the ledger knows is in AskElephant." in text
    assert "None: nothing is left to fix or resume." in text


# -- point 8: errors files that feed back ------------------------------------------------------


def test_errors_csv_fed_back_still_finds_its_transcripts(sandbox: Sandbox, tmp_path: Path) -> None:
    export = tmp_path / "export"
    (export / "transcripts").mkdir(parents=True)
    (export / "transcripts" / "1.txt").write_text("Hello from call one.", encoding="utf-8")
    bad = row(1, type="VIDEO", transcript_path="transcripts/1.txt")
    manifest = write_manifest(export / "calls.csv", [bad, row(2)])
    ledger = tmp_path / "l.db"
    assert run(sandbox, manifest, ledger).exit_code == 1
    out = tmp_path / "reports"
    report(ledger, out)
    lines = read_csv(out / "errors.csv")
    lines[1][COLUMNS.index("type")] = "CALL"
    fixed = tmp_path / "reports" / "errors.csv"
    with fixed.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(lines)

    again = run(sandbox, fixed, ledger)

    assert again.exit_code == 0, again.output
    stored = {e["external_id"]: e for e in sandbox.engagements()}
    assert stored["crm:rec-1"]["transcript"] == "Hello from call one."


def test_several_manifests_get_an_errors_file_each(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    first = write_manifest(tmp_path / "first.csv", [row(1, type="VIDEO")])
    extra = [*COLUMNS, "notes"]
    second = write_manifest(tmp_path / "second.csv", [{**row(2, title=""), "notes": "x"}], extra)
    assert run(sandbox, first, ledger).exit_code == 1
    assert run(sandbox, second, ledger).exit_code == 1
    out = tmp_path / "out"

    result = report(ledger, out)

    assert f"Wrote {out / 'errors-first.csv'} (1 rows)" in result.stdout
    assert read_csv(out / "errors-first.csv")[0] == [*COLUMNS, "error_status", "error_message"]
    assert read_csv(out / "errors-second.csv")[0] == [*extra, "error_status", "error_message"]
    summary = (out / "summary.md").read_text(encoding="utf-8")
    at = f"--base-url {sandbox.base_url} --ledger {ledger}"
    assert f"importer run {out / 'errors-first.csv'} {at}" in summary
    assert f"importer run {out / 'errors-second.csv'} {at}" in summary


def test_the_summary_commands_read_the_errors_file_as_the_manifest_was_read(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    rows = [row(1), row(2, type="VIDEO", start_at="2024-03-05 10:00")]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    options = ["--prefix", "sf-", "--timezone", "Europe/Paris", "--delimiter", ","]
    assert run(sandbox, manifest, ledger, *options).exit_code == 1
    out = tmp_path / "out"

    report(ledger, out)

    summary = (out / "summary.md").read_text(encoding="utf-8")
    expected = (
        f"importer run {out / 'errors.csv'} --prefix sf- --timezone Europe/Paris "
        f"--base-url {sandbox.base_url} --ledger"
    )
    assert expected in summary
