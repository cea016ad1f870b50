"""The run summary's numbers: its rows add up to the manifest, its pace counts this run.

Issue 10 ("every number a user reads is right"), found in review: a row flagged ``same
recording`` is sent, so it was counted twice (as ``same recording`` and as ``created``),
and rows refused in an earlier run gave a run that sent nothing a pace in rows/s.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.audit_support import run
from tests.conftest import Sandbox
from tests.factories import interrupted_run, row, run_args, run_cli, write_manifest

HTML = "https://media.example.com/calls/{n}.html"  # the sandbox answers 422: not audio/video


def table(stdout: str) -> dict[str, int]:
    """The summary's count lines (``  name   1,234``)."""
    return {
        name: int(count.replace(",", ""))
        for name, count in re.findall(r"^  (\S.*?)\s+([\d,]+)$", stdout, re.MULTILINE)
    }


def test_same_recording_rows_are_counted_once(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    assert run(sandbox, write_manifest(tmp_path / "a.csv", [row(1), row(2)]), ledger).exit_code == 0
    copy = [row(1, id="other-1"), row(2, id="other-2"), row(3, title="")]
    manifest = write_manifest(tmp_path / "b.csv", copy)

    result = run(sandbox, manifest, ledger)

    counts = table(result.stdout)
    assert counts == {"created": 2, "invalid": 1}, result.stdout
    assert sum(counts.values()) == 3
    assert "2 of the rows sent are the same recording as another row (listed" in result.stdout


def test_a_run_that_sends_nothing_has_no_pace(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    rows = [row(n, media_url=HTML.format(n=n)) for n in range(1, 5)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    assert run(sandbox, manifest, ledger).exit_code == 1

    again = run(sandbox, manifest, ledger)

    assert again.exit_code == 1
    assert table(again.stdout) == {"failed": 4}
    assert "0 requests, 0.0 rows/s)" in again.stdout, again.stdout


def test_a_stopped_retry_counts_the_failed_rows_it_did_not_re_send(
    make_sandbox: object, tmp_path: Path
) -> None:
    server = make_sandbox(seed=3)  # type: ignore[operator]
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(40)])
    ledger = tmp_path / "l.db"
    server.set_faults(fail_rate=0.5)  # about half fail, too few to look like an outage
    assert run(server, manifest, ledger, "--max-attempts", "1").exit_code == 1
    imported = server.stats()["engagements"]
    server.set_faults(fail_rate=0.0, latency_ms=80)
    code, stdout, stderr = interrupted_run(
        server, run_args(manifest, ledger, server, "--concurrency", "2"), after=imported + 2
    )

    assert code == 130, stderr
    counts = table(stdout)
    assert sum(counts.values()) == 40, stdout
    assert 0 < counts["retry (not sent yet)"] < 40 - imported, stdout


def test_after_a_stop_status_and_the_summary_agree_and_add_up(
    make_sandbox: object, tmp_path: Path
) -> None:
    server = make_sandbox(latency_ms=80)  # type: ignore[operator]
    # Every tenth row is invalid, in every batch: most of them come after the stop.
    rows = [row(n, type="VIDEO" if n % 10 == 0 else "CALL") for n in range(300)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "l.db"
    code, stdout, stderr = interrupted_run(
        server,
        run_args(manifest, ledger, server, "--batch-size", "20", "--concurrency", "2"),
        after=4,
    )

    assert code == 130, stderr
    summary = table(stdout)
    told = run_cli(["status", "--ledger", str(ledger)])
    assert told.exit_code == 0, told.output
    in_ledger = table(told.stdout.split("Processing status")[0].split("Most frequent")[0])
    assert sum(summary.values()) == 300, stdout
    assert sum(in_ledger.values()) == 300, in_ledger
    assert summary["invalid"] == in_ledger["invalid"] == 30, (stdout, in_ledger)
    assert summary["pending"] == in_ledger["pending"], (stdout, in_ledger)
    listed = len(re.findall(r"^  row \d+ crm:rec-\d+ invalid: ", stderr, re.MULTILINE))
    more = re.search(r"^  \.\.\. and ([\d,]+) more$", stderr, re.MULTILINE)
    assert listed + (int(more.group(1).replace(",", "")) if more else 0) == 30, stderr
    report = run_cli(["report", "--out", str(tmp_path / "out"), "--ledger", str(ledger)])
    assert report.exit_code == 0, report.output
    errors = (tmp_path / "out" / "errors.csv").read_text(encoding="utf-8").splitlines()
    assert len(errors) - 1 == 300 - summary["created"], report.output


def test_retry_calls_imported_rows_what_its_start_called_them(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from tests.audit_support import command

    ledger = tmp_path / "l.db"
    rows = [row(1), row(2), row(3, media_url=HTML.format(n=3))]
    assert run(sandbox, write_manifest(tmp_path / "m.csv", rows), ledger).exit_code == 1

    result = command(sandbox, "retry", ledger, "--include-permanent")

    assert "Skipping 2 already imported." in result.stderr
    assert table(result.stdout) == {"already imported": 2, "failed": 1}, result.stdout


def test_contact_outcomes_are_said_beside_the_rows_not_counted_as_more_rows(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [row(1, contact_ids="cnt_a"), row(2, contact_ids="cnt_unknown1"), row(3, title="")]
    manifest = write_manifest(tmp_path / "m.csv", rows)

    result = run(sandbox, manifest, tmp_path / "l.db")

    assert result.exit_code == 1
    assert table(result.stdout) == {"created": 2, "invalid": 1}, result.stdout
    assert "Contact sets: 1 contacts applied, 1 contacts failed (rows counted above)." in (
        result.stdout
    )
    assert "contacts_failed" not in result.output
