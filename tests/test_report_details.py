"""Smaller defects of issue 17: coverage and skipped calls, an empty errors.csv's columns,
the ``planned`` event against ``run_finished``, a killed run's elapsed time."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

from importer.ledger import open_ledger
from tests.conftest import SandboxProcess
from tests.factories import COLUMNS, row, run_args, run_cli, write_manifest


def report(ledger: Path, out: Path) -> str:
    result = run_cli(["report", "--ledger", str(ledger), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return (out / "summary.md").read_text(encoding="utf-8")


def test_coverage_does_not_count_skipped_calls_without_recording_as_missing(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2, media_url=""), row(3)])
    result = run_cli(run_args(manifest, ledger, sandbox, "--skip-without-media"), sandbox.api_key)
    assert result.exit_code == 0, result.output

    summary = report(ledger, tmp_path / "out")

    assert "| 2024-03 | 2 | 2 | 0 |" in summary


def test_an_empty_errors_csv_keeps_the_manifests_columns(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])
    assert run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key).exit_code == 0

    report(ledger, tmp_path / "out")

    with (tmp_path / "out" / "errors.csv").open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [[*COLUMNS, "error_status", "error_message"]]


def test_the_planned_event_counts_changed_rows_as_run_finished_does(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    rows = [row(n) for n in range(6)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    assert run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key).exit_code == 0
    changed = [row(n, title="Renamed") if n % 2 else row(n) for n in range(6)]
    write_manifest(manifest, changed)

    result = run_cli(
        run_args(manifest, ledger, sandbox, "--log-format", "json", "--on-change", "skip"),
        sandbox.api_key,
    )

    events = [json.loads(line) for line in result.stderr.splitlines()]
    planned = next(e for e in events if e["event"] == "planned")
    finished = next(e for e in events if e["event"] == "run_finished")
    assert planned["skipped"] == {
        "already imported": 3,
        "changed since import": 3,
        "failed before": 0,
    }
    assert finished["counts"] == {"already imported": 3, "changed since import": 3}


def test_a_killed_runs_elapsed_time_is_its_last_write_not_zero(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])
    assert run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key).exit_code == 0
    # A run killed (kill -9) 42.5 s after it started, after its last write to the ledger.
    with open_ledger(ledger) as book:
        killed = book.start_run("run", str(manifest.resolve()), {})
    with sqlite3.connect(ledger) as conn:
        conn.execute(
            "UPDATE runs SET started_at = '2026-01-05T10:00:00.000+00:00' WHERE id = ?", [killed]
        )
        conn.execute("UPDATE engagements SET updated_at = '2026-01-05T10:00:42.500+00:00'")

    assert run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key).exit_code == 0

    status = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)
    run = next(r for r in status["runs"] if r["id"] == killed)
    assert (run["outcome"], run["seconds"]) == ("stopped", 42.5)
