"""`importer run` against the sandbox over real HTTP: the core import's promises."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.audit_support import requests_but_key_checks
from tests.conftest import PROJECT_ROOT, Sandbox
from tests.factories import (
    COLUMNS,
    ledger_rows,
    row,
    run_args,
    run_cli,
    status_counts,
    write_manifest,
)


def created_counts(sandbox: Sandbox) -> dict[str, int]:
    return dict(sandbox.stats()["created"])


def test_clean_import_creates_each_row_once_and_records_ids(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(20)])
    ledger = tmp_path / "ledger.db"

    result = run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key)

    assert result.exit_code == 0, result.output
    assert "created" in result.output and "20" in result.output
    assert created_counts(sandbox) == {f"crm:rec-{n}": 1 for n in range(20)}
    server_ids = {e["external_id"]: e["id"] for e in sandbox.engagements()}
    ledger_ids = {r["external_id"]: r["engagement_id"] for r in ledger_rows(ledger)}
    assert ledger_ids == server_ids
    assert status_counts(ledger) == {"created": 20}
    sent = {e["external_id"]: e for e in sandbox.engagements()}["crm:rec-3"]
    assert sent["start_at"].startswith("2024-03-04T10:03:00")
    assert sent["source_system"] == "crm"


def test_rerun_sends_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(10)])
    ledger = tmp_path / "ledger.db"
    assert run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key).exit_code == 0
    before = requests_but_key_checks(sandbox)

    result = run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key)

    assert result.exit_code == 0, result.output
    assert requests_but_key_checks(sandbox) == before
    assert "Skipping 10 already imported" in result.output


def test_existing_engagement_answers_200_and_is_recorded_as_existing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(4)])
    run_cli(run_args(manifest, tmp_path / "first.db", sandbox), sandbox.api_key)

    # Another ledger (another machine, or a lost ledger): the API's idempotency holds.
    result = run_cli(run_args(manifest, tmp_path / "second.db", sandbox), sandbox.api_key)

    assert result.exit_code == 0, result.output
    assert status_counts(tmp_path / "second.db") == {"existing": 4}
    assert set(created_counts(sandbox).values()) == {1}


def import_under_rate_limit(
    make_sandbox: Any, tmp_path: Path, limit: float, rows: int, *extra: str
) -> dict[str, int]:
    """Import ``rows`` rows against a sandbox allowing ``limit`` requests/s; create statuses."""
    server = make_sandbox(rate_limit=limit)
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(rows)])
    ledger = tmp_path / "ledger.db"

    result = run_cli(run_args(manifest, ledger, server, *extra), server.api_key)

    assert result.exit_code == 0, result.output
    assert status_counts(ledger) == {"created": rows}
    assert set(created_counts(server).values()) == {1}
    return dict(server.stats()["requests"]["POST /v2/engagements"])


def test_rate_limit_429_is_honoured_and_every_row_lands(
    make_sandbox: object, tmp_path: Path
) -> None:
    # A limit under the slow start's first pace (10/s after a burst of 10): it is met.
    statuses = import_under_rate_limit(make_sandbox, tmp_path, 6, 40, "--max-attempts", "10")

    assert statuses.get("429", 0) > 0
    assert statuses["201"] == 40
    # Honouring Retry-After means workers pause together: far fewer 429s than requests.
    assert statuses["429"] < 40


def test_a_low_rate_limit_slows_the_importer_down_instead_of_failing_rows(
    make_sandbox: object, tmp_path: Path
) -> None:
    # Eight workers against four requests a second, with the default six attempts per row.
    statuses = import_under_rate_limit(make_sandbox, tmp_path, 4, 24, "--concurrency", "8")

    # A 429 costs only its own row a Retry-After; the pace learned from the refusals keeps
    # them bounded (about one per row here, where the limit is a tenth of what 8 slots send).
    assert 0 < statuses["429"] < 2 * 24


def test_server_errors_are_retried(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_faults(fail_rate=0.3)
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(30)])
    ledger = tmp_path / "ledger.db"

    result = run_cli(run_args(manifest, ledger, sandbox, "--max-attempts", "12"), sandbox.api_key)

    assert result.exit_code == 0, result.output
    assert sandbox.stats()["requests"]["POST /v2/engagements"].get("500", 0) > 0
    assert status_counts(ledger) == {"created": 30}
    assert max(r["attempts"] for r in ledger_rows(ledger)) > 1


def test_422_is_recorded_as_permanent_with_the_servers_message(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [row(1), row(2, media_url="https://media.example.com/page.html"), row(3)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "ledger.db"

    result = run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key)

    assert result.exit_code == 1, result.output
    failed = ledger_rows(ledger, "status = 'failed'")
    assert [r["external_id"] for r in failed] == ["crm:rec-2"]
    assert failed[0]["transient"] == 0
    assert failed[0]["http_status"] == 422
    assert failed[0]["attempts"] == 1
    assert "audio/video" in failed[0]["error_message"]
    assert failed[0]["request_id"]
    assert "row 3" in result.output and "audio/video" in result.output
    # A re-run does not resend a permanent failure of an unchanged row.
    requests_before = requests_but_key_checks(sandbox)
    assert run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key).exit_code == 1
    assert requests_but_key_checks(sandbox) == requests_before


def test_bad_key_aborts_with_exit_3_before_anything_is_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(25)])
    ledger = tmp_path / "ledger.db"

    result = run_cli(run_args(manifest, ledger, sandbox, "--concurrency", "4"), "sk-apik_wrong.KEY")

    assert result.exit_code == 3, result.output
    assert "401" in result.output and "API key" in result.output
    # The key check at the start stops the run: nothing planned, no create sent.
    assert status_counts(ledger) == {}
    assert "POST /v2/engagements" not in sandbox.stats()["requests"]
    assert "sk-apik_wrong.KEY" not in result.output


def test_missing_write_scope_aborts_naming_the_scope(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.add_key("sk-apik_readonly.K1", ["engagements:read"])
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(5)])

    result = run_cli(run_args(manifest, tmp_path / "l.db", sandbox), "sk-apik_readonly.K1")

    assert result.exit_code == 3, result.output
    assert "engagements:write" in result.output
    assert status_counts(tmp_path / "l.db") == {"pending": 5}


def import_one_row_to(tmp_path: Path, base_url: str, key: str) -> Result:
    """Run a one-row manifest against ``base_url``."""
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    ledger = tmp_path / "l.db"
    return run_cli(
        ["run", str(manifest), "--ledger", str(ledger), "--no-progress", "--base-url", base_url],
        key,
    )


def test_wrong_base_url_aborts_with_exit_3(sandbox: Sandbox, tmp_path: Path) -> None:
    result = import_one_row_to(tmp_path, sandbox.base_url + "/wrong/prefix", sandbox.api_key)

    assert result.exit_code == 3, result.output
    assert "--base-url" in result.output


def test_plain_http_base_url_is_refused_unless_loopback(tmp_path: Path) -> None:
    result = import_one_row_to(tmp_path, "http://api.example.com/api", "sk-apik_x.Y")

    assert result.exit_code == 2
    assert "clear text" in result.output
    assert not (tmp_path / "l.db").exists()


def test_missing_key_is_a_usage_error(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run_cli(run_args(manifest, tmp_path / "l.db", sandbox), "")

    assert result.exit_code == 2
    assert "ASKELEPHANT_API_KEY" in result.output


def test_duplicates_in_a_manifest(sandbox: Sandbox, tmp_path: Path) -> None:
    rows = [
        row(1),
        row(2),
        row(2),  # identical copy: sent once
        row(3),
        row(3, title="A different title"),  # same id, different payload: neither is sent
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "ledger.db"

    result = run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key)

    assert result.exit_code == 1, result.output
    assert created_counts(sandbox) == {"crm:rec-1": 1, "crm:rec-2": 1}
    assert "same as row 3" not in result.output  # a repeat is not a problem to report
    assert "row 5 crm:rec-3 duplicate" in result.output
    assert "row 6 crm:rec-3 duplicate" in result.output


def test_run_workflows_is_false_unless_asked(sandbox: Sandbox, tmp_path: Path) -> None:
    write_manifest(tmp_path / "a.csv", [row(1)])
    write_manifest(tmp_path / "b.csv", [row(2)])
    run_cli(run_args(tmp_path / "a.csv", tmp_path / "l.db", sandbox), sandbox.api_key)
    run_cli(
        run_args(tmp_path / "b.csv", tmp_path / "l.db", sandbox, "--run-workflows"),
        sandbox.api_key,
    )

    flags = {e["external_id"]: e.get("run_workflows") for e in sandbox.engagements()}

    assert flags == {"crm:rec-1": False, "crm:rec-2": True}


def test_interrupted_run_resumes_and_creates_each_row_once(
    make_sandbox: object, tmp_path: Path
) -> None:
    server = make_sandbox(latency_ms=60)  # type: ignore[operator]
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(120)])
    ledger = tmp_path / "ledger.db"
    env = {**os.environ, "ASKELEPHANT_API_KEY": server.api_key}
    command = [sys.executable, "-m", "importer", *run_args(manifest, ledger, server)]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and server.stats()["engagements"] < 30:
        time.sleep(0.05)
    # Slow the rest down, so the stop lands mid-run however loaded the machine is: at 60 ms
    # the last 90 rows take under a second. Each slow create stays within the 5 s grace.
    server.set_faults(latency_ms=1000)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    server.set_faults(latency_ms=60)

    assert process.returncode == 130, output
    assert "resume" in output
    partial = status_counts(ledger)
    assert 0 < partial.get("created", 0) < 120
    assert partial.get("in_flight", 0) == 0  # in-flight requests were given time to finish

    result = run_cli(run_args(manifest, ledger, server), server.api_key)

    assert result.exit_code == 0, result.output
    assert status_counts(ledger) == {"created": 120}
    assert created_counts(server) == {f"crm:rec-{n}": 1 for n in range(120)}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_parquet_and_csv_import_alike(sandbox: Sandbox, tmp_path: Path, fmt: str) -> None:
    rows = [row(n) for n in range(6)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        manifest = tmp_path / "m.parquet"
        pq.write_table(pa.Table.from_pylist(rows), manifest)

    result = run_cli(run_args(manifest, tmp_path / "l.db", sandbox), sandbox.api_key)

    assert result.exit_code == 0, result.output
    assert len(created_counts(sandbox)) == 6


def test_columns_no_field_reads_are_named(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "m.csv",
        [{**row(1), "Notes": "x", "Recording": "y"}],
        columns=[*COLUMNS, "Notes", "Recording"],
    )

    result = run_cli(run_args(manifest, tmp_path / "l.db", sandbox), sandbox.api_key)

    assert result.exit_code == 0, result.output
    assert "Columns not used (not in the mapping): Notes, Recording" in result.output


def invalid_count(ledger: Path) -> int:
    status = run_cli(["status", "--ledger", str(ledger), "--json"])
    return int(json.loads(status.stdout)["counts"].get("invalid", 0))


def test_rejects_are_kept_once_whatever_path_names_the_manifest(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_manifest(tmp_path / "m.csv", [row(1), row(2, id=""), row(3, type="VIDEO")])
    ledger = tmp_path / "l.db"
    monkeypatch.chdir(tmp_path)

    for name in ("m.csv", str(tmp_path / "m.csv"), "m.csv"):
        assert run_cli(run_args(Path(name), ledger, sandbox), sandbox.api_key).exit_code == 1
        assert invalid_count(ledger) == 2
    write_manifest(tmp_path / "m.csv", [row(1), row(3, type="VIDEO")])  # the id-less row gone
    assert run_cli(run_args(Path("m.csv"), ledger, sandbox), sandbox.api_key).exit_code == 1
    assert invalid_count(ledger) == 1


def test_a_stopped_run_forgets_no_reject(sandbox: Sandbox, tmp_path: Path) -> None:
    # The invalid rows sit at the end, where a run stopped early never reads.
    rows = [row(n, title="" if n > 194 else f"t{n}") for n in range(1, 201)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "l.db"
    assert run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key).exit_code == 1
    assert invalid_count(ledger) == 6
    more = write_manifest(tmp_path / "m.csv", [*(row(n) for n in range(300, 400)), *rows])

    # A bad key stops the next run at its first requests, long before the end of the file.
    stopped = run_cli(run_args(more, ledger, sandbox, "--batch-size", "10"), "sk-apik_bad.K")

    assert stopped.exit_code == 3
    assert invalid_count(ledger) == 6


def changed_after_a_lost_answer(sandbox: Sandbox, tmp_path: Path) -> tuple[Path, Path]:
    """A row stored under "Old title" whose answer was lost, and the manifest now saying
    "New title": (the manifest, the ledger)."""
    ledger = tmp_path / "l.db"
    old = write_manifest(tmp_path / "m.csv", [row(1, title="Old title")])
    sandbox.set_faults(drop_after_commit_rate=1.0)  # stored, but the answer is lost
    lost = run_cli(run_args(old, ledger, sandbox, "--max-attempts", "1"), sandbox.api_key)
    assert lost.exit_code == 1, lost.output
    sandbox.set_faults(drop_after_commit_rate=0.0)
    new = write_manifest(tmp_path / "m.csv", [row(1, title="New title")])
    return new, ledger


def test_a_row_changed_after_a_lost_answer_is_reported_not_hidden(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    new, ledger = changed_after_a_lost_answer(sandbox, tmp_path)

    result = run_cli(run_args(new, ledger, sandbox), sandbox.api_key)

    assert result.exit_code == 1, result.output
    assert "other values: title" in result.output
    assert status_counts(ledger) == {"existing": 1}
    assert [e["title"] for e in sandbox.engagements()] == ["Old title"]
    again = run_cli(["plan", str(new), "--ledger", str(ledger)])
    assert "changed since import" in again.output and "title" in again.output


def test_a_row_the_server_holds_with_other_values_is_counted_once_and_reported(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    new, ledger = changed_after_a_lost_answer(sandbox, tmp_path)

    result = run_cli(run_args(new, ledger, sandbox, "--log-format", "json"), sandbox.api_key)

    assert result.exit_code == 1, result.output
    finished = [json.loads(line) for line in result.stderr.splitlines() if "run_finished" in line]
    assert finished[-1]["counts"] == {"changed since import": 1}
    status = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)
    assert status["changed_since_import"]["count"] == 1
    assert status["changed_since_import"]["examples"][0]["external_id"] == "crm:rec-1"
    out = tmp_path / "reports"
    assert run_cli(["report", "--ledger", str(ledger), "--out", str(out)]).exit_code == 0
    with (out / "errors.csv").open(encoding="utf-8", newline="") as handle:
        errors = list(csv.DictReader(handle))
    assert [(e["id"], e["title"], e["error_status"]) for e in errors] == [
        ("rec-1", "New title", "changed since import")
    ]
    assert errors[0]["error_message"] == (
        "AskElephant already held this engagement with other values: title "
        "'Old title' there, 'New title' in the manifest; create cannot update it"
    )
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "Nothing: every row" not in summary
    assert "- Changed since import: 1 row(s) hold other values in AskElephant" in summary
