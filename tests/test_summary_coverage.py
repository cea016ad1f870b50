"""summary.md's coverage by month shows a month without a single row, not only by absence.

Issue 10, point 12: coverage by month is there "so a gap in a backfill is visible". A
three-year export that lost one month had no line for it at all; a reader had to notice
that a month was missing from a list of 36.
"""

from __future__ import annotations

from pathlib import Path

from tests.audit_support import run
from tests.conftest import Sandbox
from tests.factories import row, run_cli, write_manifest


def test_a_month_without_rows_between_the_first_and_the_last_is_shown(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    days = ["2024-01-05", "2024-02-05", "2024-05-05"]  # March and April lost by the export
    rows = [row(n, start_at=f"{day}T10:00:00Z") for n, day in enumerate(days)]
    ledger = tmp_path / "l.db"
    assert run(sandbox, write_manifest(tmp_path / "m.csv", rows), ledger).exit_code == 0

    result = run_cli(["report", "--out", str(tmp_path / "out"), "--ledger", str(ledger)])

    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    table = [line for line in text.splitlines() if line.startswith("| 2024-")]
    assert [line.split(" | ")[0] for line in table] == [
        "| 2024-01",
        "| 2024-02",
        "| 2024-03",
        "| 2024-04",
        "| 2024-05",
    ]
    assert "| 2024-03 | 0 | 0 | 0 |" in text
    assert "No row at all in 2024-03, 2024-04: a gap in the export?" in text


def test_next_steps_send_where_the_runs_sent(sandbox: Sandbox, tmp_path: Path) -> None:
    """A rehearsal's "exact commands" must not resume against production."""
    ledger = tmp_path / "l.db"
    key_file = tmp_path / "key.txt"
    key_file.write_text(sandbox.api_key, encoding="utf-8")
    key_file.chmod(0o600)
    rows = [row(1), row(2, type="VIDEO")]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    args = ["run", str(manifest), "--ledger", str(ledger), "--base-url", sandbox.base_url]
    assert run_cli([*args, "--api-key-file", str(key_file), "--no-progress"]).exit_code == 1

    run_cli(["report", "--out", str(tmp_path / "out"), "--ledger", str(ledger)])

    text = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    at = f"--base-url {sandbox.base_url} --api-key-file {key_file} --ledger {ledger}"
    assert f"importer verify --wait {at}" in text, text
    assert f"importer run {tmp_path / 'out' / 'errors.csv'} {at}" in text, text
