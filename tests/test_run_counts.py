"""Every number a user reads is right: skip counts, progress, stopped runs, retry's exit code.

Issue 10, points 4 to 6, end to end through the CLI against the sandbox.
"""

from __future__ import annotations

import io
import re
import sqlite3
from pathlib import Path

from tests.audit_support import CREATE, command, requests_of, run
from tests.conftest import Sandbox
from tests.factories import interrupted_run, row, run_args, status_counts, write_manifest

HTML = "https://media.example.com/calls/{n}.html"  # the sandbox answers 422: not audio/video


def test_a_failed_row_that_changed_is_counted_as_sent_not_skipped(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2, media_url=HTML.format(n=2))])
    assert run(sandbox, manifest, ledger).exit_code == 1
    write_manifest(manifest, [row(1), row(2)])  # the media URL fixed

    result = run(sandbox, manifest, ledger)

    assert result.exit_code == 0, result.output
    assert "failed before" not in result.stderr
    assert "Skipping 1 already imported." in result.stderr
    assert "Sending 1 row(s)." in result.stderr
    assert status_counts(ledger) == {"created": 2}


def test_retry_include_permanent_says_how_many_it_sends(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    rows = [row(n, media_url=HTML.format(n=n)) for n in range(1, 5)]
    assert run(sandbox, write_manifest(tmp_path / "m.csv", rows), ledger).exit_code == 1

    again = command(sandbox, "retry", ledger, "--include-permanent")

    assert again.exit_code == 1
    assert requests_of(sandbox, CREATE)["422"] == 8
    assert "Sending 4 row(s)." in again.stderr
    assert "failed before" not in again.stderr


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so the progress bar is drawn."""

    def isatty(self) -> bool:
        return True


def test_the_progress_bar_counts_only_the_rows_it_sends(sandbox: Sandbox, tmp_path: Path) -> None:
    from importer.events import HumanReporter
    from importer.rows.validate import MappingOptions
    from importer.runner import api_target_factory, import_manifest
    from importer.settings import ApiChoices, ImportSettings

    ledger = tmp_path / "l.db"
    failing = [row(n, media_url=HTML.format(n=n)) for n in range(1, 4)]
    manifest = write_manifest(tmp_path / "m.csv", failing)
    assert run(sandbox, manifest, ledger).exit_code == 1
    write_manifest(manifest, [*failing, row(7), row(8)])
    stream = Terminal()

    import_manifest(
        ImportSettings(manifest=manifest, mapping=MappingOptions()),
        ledger_path=ledger,
        target_factory=api_target_factory(
            ApiChoices(base_url=sandbox.base_url, concurrency=2),
            "askelephant",
            lambda kind: sandbox.api_key,
        ),
        reporter=HumanReporter(stream=stream),
        command="run",
        options={},
    )

    drawn = re.findall(r"\b(\d+)/(\d+) \[", stream.getvalue())
    assert drawn, stream.getvalue()
    assert drawn[-1] == ("2", "2")
    assert "100%" in stream.getvalue()


def test_what_a_stopped_run_judged_is_in_the_ledger_and_the_summary_adds_up(
    make_sandbox: object, tmp_path: Path
) -> None:
    server = make_sandbox(latency_ms=80)  # type: ignore[operator]
    # The first row of every batch of 10 is invalid: a stop always lands after one is shown.
    rows = [row(n, type="VIDEO" if n % 10 == 0 else "CALL") for n in range(200)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "l.db"
    code, stdout, stderr = interrupted_run(
        server,
        run_args(manifest, ledger, server, "--batch-size", "10", "--concurrency", "2"),
        after=20,
    )

    assert code == 130, stderr
    shown = {int(n) for n in re.findall(r"row (\d+) crm:rec-\d+ invalid", stderr)}
    assert shown
    with sqlite3.connect(ledger) as conn:
        recorded = {n for (n,) in conn.execute("SELECT row_number FROM rejects")}
    assert shown <= recorded
    counts = {
        name.strip(): int(value.replace(",", ""))
        for name, value in re.findall(r"^  (\D+?)\s+([\d,]+)$", stdout, re.MULTILINE)
    }
    assert counts["invalid"] == len(recorded)
    assert sum(counts.values()) == 200, stdout
    # Every row after the stop was judged as it was read: invalid, or pending in the ledger.
    assert counts["invalid"] == 20 and "not reached" not in counts, stdout


def test_retry_resends_in_flight_rows(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    assert run(sandbox, write_manifest(tmp_path / "m.csv", [row(1), row(2)]), ledger).exit_code == 0
    # rec-2's answer was lost when the process died mid-request.
    with sqlite3.connect(ledger) as conn:
        conn.execute("UPDATE engagements SET status = 'in_flight' WHERE external_id = 'crm:rec-2'")

    result = command(sandbox, "retry", ledger)

    assert result.exit_code == 0, result.output
    assert "Sending 1 row(s)." in result.stderr
    assert status_counts(ledger) == {"created": 1, "existing": 1}


def test_retry_exits_1_while_rows_are_not_in_askelephant(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2, media_url=HTML.format(n=2))])
    assert run(sandbox, manifest, ledger).exit_code == 1

    nothing = command(sandbox, "retry", ledger)

    assert nothing.exit_code == 1, nothing.output
    assert "1 row(s) are not in AskElephant" in nothing.output


def test_retry_sends_the_rows_a_stopped_run_left_pending(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(5)])
    sandbox.add_key("sk-apik_reader.K", ["engagements:read"])  # passes the key check only
    stopped = run(sandbox, manifest, ledger, key="sk-apik_reader.K")
    assert stopped.exit_code == 3
    assert status_counts(ledger) == {"pending": 5}

    result = command(sandbox, "retry", ledger)

    assert result.exit_code == 0, result.output
    assert status_counts(ledger) == {"created": 5}
    assert sandbox.stats()["created"] == {f"crm:rec-{n}": 1 for n in range(5)}
