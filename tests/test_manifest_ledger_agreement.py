"""The ledger and the manifest agree (issue 20): after a stop, a manifest cut short or
replaced must not let `run` or `retry` say all is well while the ledger holds rows of it
pending or in flight. End to end through the CLI, against the sandbox and a real ledger.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import SandboxProcess
from tests.factories import api_args, row, run_cli, write_manifest


def stopped_half_way(sandbox: SandboxProcess, tmp_path: Path) -> tuple[Path, Path]:
    """A 10-row import the ledger says stopped: rows 6-8 pending, 9-10 in flight."""
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1, 11)])
    ledger = tmp_path / "ledger.db"
    first = run_cli(["run", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)
    assert first.exit_code == 0, first.output
    with sqlite3.connect(ledger) as conn:
        for n in range(6, 11):
            status = "pending" if n <= 8 else "in_flight"
            conn.execute(
                "UPDATE engagements SET status = ?, engagement_id = NULL WHERE external_id = ?",
                [status, f"crm:rec-{n}"],
            )
    conn.close()
    return manifest, ledger


@pytest.mark.parametrize("how", ["cut to its first half", "replaced"])
@pytest.mark.parametrize("command", ["run", "retry"])
def test_rows_left_unfinished_that_the_manifest_no_longer_has_are_named(
    sandbox: SandboxProcess, tmp_path: Path, command: str, how: str
) -> None:
    manifest, ledger = stopped_half_way(sandbox, tmp_path)
    kept = range(1, 6) if how == "cut to its first half" else range(100, 104)
    write_manifest(manifest, [row(n) for n in kept])
    args = ["run", str(manifest)] if command == "run" else ["retry"]

    result = run_cli([*args, *api_args(sandbox, ledger)], sandbox.api_key)

    assert result.exit_code == 1, result.output
    assert "5 row(s) the ledger holds as pending or in flight for this manifest" in result.output
    assert "crm:rec-6, crm:rec-7, crm:rec-8, crm:rec-9, crm:rec-10" in result.output


def test_a_whole_manifest_after_a_stop_names_nothing(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    manifest, ledger = stopped_half_way(sandbox, tmp_path)

    result = run_cli(["run", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)

    assert result.exit_code == 0, result.output
    assert "no longer in it" not in result.output
