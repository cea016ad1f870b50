"""Messages a user reads: JSON logs that stay JSON, a closed pipe, and the small wordings.

Issue 10, points 9 to 11, through the CLI.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.audit_support import json_lines, run
from tests.conftest import PROJECT_ROOT, Sandbox
from tests.factories import COLUMNS, api_args, row, run_args, run_cli, write_manifest

# -- point 9: --log-format json ----------------------------------------------------------------


def json_run(sandbox: Sandbox, manifest: Path, tmp_path: Path, *extra: str, key: str = ""):  # type: ignore[no-untyped-def]
    args = run_args(manifest, tmp_path / "l.db", sandbox, "--log-format", "json", *extra)
    return run_cli(args, key)


def test_json_log_a_missing_key_is_a_json_error_and_run_finished(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = json_run(sandbox, manifest, tmp_path)

    assert result.exit_code == 2
    events = json_lines(result.stderr)  # fails on any line that is not JSON
    assert [e["event"] for e in events] == ["error", "run_finished"]
    assert "API key" in events[0]["message"]
    assert events[-1]["exit_code"] == 2 and events[-1]["command"] == "run"


def test_json_log_a_missing_manifest_is_a_json_error(
    sandbox: Sandbox, tmp_path: Path, api_key: str
) -> None:
    result = json_run(sandbox, tmp_path / "absent.csv", tmp_path, key=api_key)

    assert result.exit_code == 2
    events = json_lines(result.stderr)
    assert events[-1]["event"] == "run_finished" and events[-1]["exit_code"] == 2
    assert any(e["event"] == "error" and "absent.csv" in e["message"] for e in events)


def test_json_log_a_bad_header_ends_with_run_finished(
    sandbox: Sandbox, tmp_path: Path, api_key: str
) -> None:
    no_title = [c for c in COLUMNS if c != "title"]
    manifest = write_manifest(tmp_path / "m.csv", [row(1)], columns=no_title)

    result = json_run(sandbox, manifest, tmp_path, key=api_key)

    assert result.exit_code == 2
    events = json_lines(result.stderr)
    assert events[0]["event"] == "run_started"
    assert events[0]["manifest"] == str(manifest)
    assert [e["event"] for e in events[1:]] == ["notice", "error", "run_finished"]
    assert events[1]["message"].startswith("Target: ")
    assert "title" in events[2]["message"]
    assert events[-1]["exit_code"] == 2


def test_json_log_a_usage_error_is_json_too(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = json_run(sandbox, manifest, tmp_path, "--timezone", "Mars/Olympus")

    assert result.exit_code == 2
    events = json_lines(result.stderr)
    assert [e["event"] for e in events] == ["error", "run_finished"]
    assert "Mars/Olympus" in events[0]["message"]


def test_json_log_run_started_names_the_manifest(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run(sandbox, manifest, tmp_path / "l.db", "--log-format", "json")

    assert result.exit_code == 0
    started = json_lines(result.stderr)[0]
    assert started["event"] == "run_started" and started["manifest"] == str(manifest)


# -- point 10: a closed pipe -------------------------------------------------------------------


@pytest.mark.parametrize("command", ["plan", "status"])
def test_a_closed_stdout_ends_quietly(tmp_path: Path, command: str) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(50)])
    ledger = tmp_path / "l.db"
    if command == "status":
        from importer.ledger import open_ledger

        with open_ledger(ledger):
            pass  # an empty ledger to read
    args = {"plan": ["plan", str(manifest)], "status": ["status"]}[command]
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head -1` does once it has its line
    try:
        process = subprocess.run(
            [sys.executable, "-m", "importer", *args, "--ledger", str(ledger)],
            cwd=PROJECT_ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)

    assert process.stderr == ""
    assert process.returncode == 141


def test_json_log_a_key_file_warning_is_a_json_notice(
    sandbox: Sandbox, tmp_path: Path, api_key: str
) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_text(api_key)
    key_file.chmod(0o644)
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = json_run(sandbox, manifest, tmp_path, "--api-key-file", str(key_file))

    assert result.exit_code == 0
    notices = [e for e in json_lines(result.stderr) if e["event"] == "notice"]
    assert any("can be read by other users" in e["message"] for e in notices)


# -- point 11: the small wordings ---------------------------------------------------------------


def test_gave_up_after_1_probe_and_in_flight_rows_are_named(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # One attempt a row, so no time to ride an outage out: the first rows fail on their own
    # (bad luck, for all the importer knows), then the share of failures shows the outage
    # and the first probe's failure ends the run.
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(12)])
    sandbox.set_faults(outage_start=0, outage_seconds=30)

    result = run(sandbox, manifest, tmp_path / "l.db", "--max-attempts", "1", "--concurrency", "1")

    assert result.exit_code == 3
    assert "s of outage and 1 probe." in result.stderr
    assert "in flight" in result.stdout
    assert "rows in flight may or may not have been applied" in result.stderr


def test_a_lost_answer_to_our_own_create_is_not_reported_as_someone_elses(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])
    # Every new create is stored, then its answer lost: the re-send answers 200.
    sandbox.set_faults(drop_after_commit_rate=1.0)

    result = run(sandbox, manifest, tmp_path / "l.db")

    assert result.exit_code == 0, result.output
    assert "existing (an earlier attempt of this run)          2" in result.stdout
    assert not re.search(r"^  existing\s+\d", result.stdout, re.MULTILINE)
    assert sandbox.stats()["created"] == {"crm:rec-1": 1, "crm:rec-2": 1}


def test_a_duplicate_names_the_other_rows(tmp_path: Path) -> None:
    rows = [row(5), row(5, title="Other"), row(5, title="Third")]
    manifest = write_manifest(tmp_path / "m.csv", rows)

    result = run_cli(["plan", str(manifest), "--ledger", str(tmp_path / "l.db")])

    assert result.exit_code == 1
    assert "row 2 crm:rec-5: external_id crm:rec-5 is also on rows 3, 4 with" in result.stdout
    assert "row 4 crm:rec-5: external_id crm:rec-5 is also on rows 2, 3 with" in result.stdout


def test_last_runs_name_their_manifest(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "calls-2024.csv", [row(1)])
    assert run(sandbox, manifest, ledger).exit_code == 0

    result = run_cli(["status", "--ledger", str(ledger)])

    runs = result.stdout.split("Last runs:")[1]
    assert f"run {manifest.resolve()} " in runs


def test_sync_contacts_offers_no_option_it_cannot_use() -> None:
    result = run_cli(["sync-contacts", "--help"])

    assert "--timezone" not in result.output and "--run-workflows" not in result.output


def test_sync_contacts_reads_rows_as_the_last_run_did(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    rows = [row(1, start_at="2024-03-05 10:00", contact_ids="cnt_a")]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    assert run(sandbox, manifest, ledger, "--timezone", "Europe/Paris").exit_code == 0
    write_manifest(manifest, [row(1, start_at="2024-03-05 10:00", contact_ids="cnt_b")])

    result = run_cli(["sync-contacts", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)

    assert result.exit_code == 0, result.output
    assert "changed since import" not in result.output
    assert "1 contacts applied" in result.stdout


def test_verify_max_attempts_speaks_of_reads() -> None:
    result = run_cli(["verify", "--help"])

    assert "left failed" not in result.output
    assert "engagement read" in " ".join(result.output.split())
