"""Audit commands against the sandbox: plan/dry-run, status, report, retry, verify,
sync-contacts, init, JSON logs and --quiet."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.audit_support import (
    CREATE,
    GET_ONE,
    PUT_CONTACTS,
    command,
    json_lines,
    read_csv,
    requests_but_key_checks,
    requests_of,
    run,
    server_ids,
)
from tests.conftest import Sandbox
from tests.factories import COLUMNS, ledger_rows, row, run_cli, status_counts, write_manifest

HTML_422 = (
    "HTTP 422: Validation failed: media_url; media_url: media_url is not audio/video: "
    "its path has no audio or video extension"
)
BOGUS_TYPE = "type: must be CALL or MEETING, not 'BOGUS'"


def conflict(external_id: str, other_row: int) -> str:
    return (
        f"external_id {external_id} is also on row {other_row} with different values (the API "
        "would keep only the first); make the ids unique"
    )


# -- plan and run --dry-run ----------------------------------------------------------------


def fail_transiently(
    sandbox: Sandbox, tmp_path: Path, ledger: Path, *rows_: dict[str, str]
) -> Result:
    """The first of ``rows_`` is imported; then all are sent one at a time while the key
    allows 0.5 requests/s, and the run's key check takes the only token: the others get a
    429 on their only attempt and are left failed (transient)."""
    manifest = write_manifest(tmp_path / "limited.csv", list(rows_[:1]))
    assert run(sandbox, manifest, ledger).exit_code == 0
    write_manifest(manifest, list(rows_))
    sandbox.set_faults(rate_limit=0.5)
    try:
        return run(sandbox, manifest, ledger, "--max-attempts", "1", "--concurrency", "1")
    finally:
        sandbox.set_faults(rate_limit=None)


def prepare_history(sandbox: Sandbox, tmp_path: Path, ledger: Path) -> None:
    """rec-1 and rec-2 imported; rec-3 failed transiently (429 on its only attempt)."""
    first = write_manifest(tmp_path / "first.csv", [row(1), row(2)])
    assert run(sandbox, first, ledger).exit_code == 0
    assert fail_transiently(sandbox, tmp_path, ledger, row(9), row(3)).exit_code == 1
    assert ledger_rows(ledger, "external_id = 'crm:rec-3'")[0]["transient"] == 1


AUDIT_ROWS = [
    row(1),  # already imported
    row(2, title="A new title"),  # changed since import
    row(3),  # retry
    row(4),  # new
    row(5, type="BOGUS"),  # invalid
    row(6),
    row(6, title="Other"),  # duplicate with a different payload
    row(4),  # repeated: same as row 5
]


def audit_manifest(tmp_path: Path) -> Path:
    rows = AUDIT_ROWS
    return write_manifest(tmp_path / "audit.csv", rows)


EXPECTED_PLAN_COUNTS = {
    "already imported": 1,
    "changed since import": 1,
    "retry": 1,
    "new": 1,
    "invalid": 1,
    "duplicate": 2,
    "repeated": 1,
}
PLAN_ROWS = [
    ["2", "crm:rec-1", "already imported", ""],
    ["3", "crm:rec-2", "changed since import", "fields differ from what was imported: title"],
    ["4", "crm:rec-3", "retry", "failed transiently before"],
    ["5", "crm:rec-4", "new", ""],
    ["6", "crm:rec-5", "invalid", BOGUS_TYPE],
    ["7", "crm:rec-6", "duplicate", conflict("crm:rec-6", 8)],
    ["8", "crm:rec-6", "duplicate", conflict("crm:rec-6", 7)],
    ["9", "crm:rec-4", "repeated", "same as row 5; sent once"],
]


def start_at_cells(n: int, sent: bool = True) -> list[str]:
    """The start_at cell of ``row(n)`` and, for a valid row, the value that is sent."""
    cell = row(n)["start_at"]
    return [cell, cell.replace("Z", "+00:00") if sent else ""]


def request_cells(cells: dict[str, str], sent: bool = True) -> list[str]:
    """What ``plan --out`` says of a row's request: title, type, start, people, and every
    field of it as JSON."""
    if not sent:
        return ["", "", "", "", ""]
    n = int(cells["id"].split("-")[1])
    request = {
        "external_id": f"crm:{cells['id']}",
        "media_url": cells["media_url"],
        "participants": [{"email": f"person{n}@example.com", "name": f"Person {n}"}],
        "run_workflows": False,
        "source_system": "crm",
        "start_at": cells["start_at"].replace("Z", "+00:00"),
        "title": cells["title"],
        "type": "CALL",
    }
    start = cells["start_at"].replace("T", " ")[:16] + " UTC"
    return [
        cells["title"],
        "CALL",
        start,
        f"Person {n} <person{n}@example.com>",
        json.dumps(request, ensure_ascii=False, sort_keys=True),
    ]


PLAN_HEADER = ["row", "external_id", "action", "reason", "start_at_cell", "start_at_sent"]
EXPECTED_PLAN_CSV = [
    [*PLAN_HEADER, "title", "type", "start_at_local", "participants", "request"],
    *(
        [
            *line,
            *start_at_cells(int(line[1].split("-")[1]), line[2] != "invalid"),
            *request_cells(cells, line[2] != "invalid"),
        ]
        for line, cells in zip(PLAN_ROWS, AUDIT_ROWS, strict=True)
    ),
]


@pytest.mark.parametrize("how", [["plan"], ["run", "--dry-run"]])
def test_plan_and_dry_run_classify_every_row_and_send_nothing(
    sandbox: Sandbox, tmp_path: Path, how: list[str]
) -> None:
    ledger = tmp_path / "ledger.db"
    prepare_history(sandbox, tmp_path, ledger)
    manifest = audit_manifest(tmp_path)
    before_stats = sandbox.stats()
    before_ledger = ledger_rows(ledger)
    out = tmp_path / "plan.csv"
    base = [*how, str(manifest), "--ledger", str(ledger)]
    if how[0] == "run":
        base += ["--base-url", sandbox.base_url]

    as_json = run_cli([*base, "--json"], sandbox.api_key)
    as_text = run_cli([*base, "--out", str(out)], sandbox.api_key)

    assert as_json.exit_code == 1, as_json.output
    assert as_text.exit_code == 1, as_text.output
    plan = json.loads(as_json.stdout)
    assert plan["manifest"] == str(manifest)
    assert plan["counts"] == EXPECTED_PLAN_COUNTS
    assert plan["examples"]["invalid"] == [
        {"row": 6, "external_id": "crm:rec-5", "reason": BOGUS_TYPE}
    ]
    assert plan["examples"]["changed since import"][0]["reason"].endswith(": title")
    assert read_csv(out) == EXPECTED_PLAN_CSV
    text = as_text.stdout
    assert text.startswith(f"Plan for {manifest} (nothing was sent):\n")
    for action, count in EXPECTED_PLAN_COUNTS.items():
        assert f"  {action:<20}  {count:>9,}" in text
    assert "invalid (first 1 of 1):\n  row 6 crm:rec-5: " + BOGUS_TYPE in text
    assert "duplicate (first 2 of 2):\n  row 7 crm:rec-6: " in text
    assert sandbox.stats() == before_stats
    assert ledger_rows(ledger) == before_ledger


def test_plan_and_dry_run_print_the_same_plan(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    prepare_history(sandbox, tmp_path, ledger)
    manifest = audit_manifest(tmp_path)

    planned = run_cli(["plan", str(manifest), "--ledger", str(ledger)])
    dry = run_cli(
        ["run", str(manifest), "--ledger", str(ledger), "--dry-run", "--base-url", "http://x"]
    )

    assert planned.stdout == dry.stdout
    assert planned.exit_code == dry.exit_code == 1


def test_plan_exits_0_when_nothing_is_invalid_and_writes_no_ledger(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(3)])
    ledger = tmp_path / "state" / "ledger.db"

    result = run_cli(["plan", str(manifest), "--ledger", str(ledger), "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {"new": 3}
    assert not ledger.exists()


# -- changed rows --------------------------------------------------------------------------


@pytest.mark.parametrize(("on_change", "code"), [("report", 1), ("skip", 0)])
def test_changed_row_is_reported_with_its_fields_never_counted_done(
    sandbox: Sandbox, tmp_path: Path, on_change: str, code: int
) -> None:
    ledger = tmp_path / "ledger.db"
    manifest = tmp_path / "m.csv"
    write_manifest(manifest, [row(1), row(2)])
    assert run(sandbox, manifest, ledger).exit_code == 0
    write_manifest(manifest, [row(1), row(2, title="Renamed", is_private="true")])
    before = requests_but_key_checks(sandbox)

    result = run(sandbox, manifest, ledger, "--on-change", on_change)

    assert result.exit_code == code, result.output
    assert requests_but_key_checks(sandbox) == before
    assert "changed since import" in result.stdout
    assert "row 3 crm:rec-2 changed since import: fields differ from what was imported: " in (
        result.output
    )
    assert "is_private, title" in result.output
    status = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)
    assert status["changed_since_import"] == {
        "count": 1,
        "examples": [{"external_id": "crm:rec-2", "fields": "is_private, title"}],
    }
    # Reverting the row clears the mark.
    write_manifest(manifest, [row(1), row(2)])
    assert run(sandbox, manifest, ledger).exit_code == 0
    status = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)
    assert status["changed_since_import"] == {"count": 0, "examples": []}


# -- status --------------------------------------------------------------------------------


def test_status_counts_errors_runs_and_text(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    rows = [row(1), row(2), row(3, media_url="https://media.example.com/3.html")]
    rows += [row(4, type="BOGUS"), row(5, type="BOGUS")]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    assert run(sandbox, manifest, ledger).exit_code == 1
    assert run(sandbox, manifest, ledger).exit_code == 1

    result = run_cli(["status", "--ledger", str(ledger), "--json"])
    text = run_cli(["status", "--ledger", str(ledger)])

    assert result.exit_code == 0 and text.exit_code == 0
    data = json.loads(result.stdout)
    assert data["counts"] == {"created": 2, "failed": 1, "invalid": 2}
    assert data["failed"] == {"transient": 0, "permanent": 1}
    assert data["processing"] == {"not verified": 2}
    assert data["top_errors"] == [
        {"rule": "type: invalid_choice", "count": 2, "example": f"row 5: {BOGUS_TYPE}"},
        {
            "rule": "HTTP 422 media_url: unsupported_media_type",
            "count": 1,
            "example": f"row 4: {HTML_422}",
        },
    ]
    runs = data["runs"]
    assert [(r["id"], r["command"], r["outcome"], r["exit_code"]) for r in runs] == [
        (2, "run", "rows need attention", 1),
        (1, "run", "rows need attention", 1),
    ]
    assert runs[1]["counts"] == {"created": 2, "failed": 1, "invalid": 2}
    assert runs[1]["seconds"] > 0
    assert runs[1]["rows_per_second"] == round(3 / runs[1]["seconds"], 1)
    assert dt.datetime.fromisoformat(runs[0]["started_at"]) >= dt.datetime.fromisoformat(
        runs[1]["started_at"]
    )
    assert f"  {2:>7,}  type: invalid_choice (e.g. row 5: {BOGUS_TYPE})" in text.stdout
    assert "(failed: 0 transient, retried by `importer retry`; 1 permanent)" in text.stdout
    assert "#1 run " in text.stdout and "rows need attention (exit 1)" in text.stdout


# -- report --------------------------------------------------------------------------------


def mixed_manifest(tmp_path: Path) -> Path:
    rows = [
        row(1),  # created
        row(2),  # existing (created earlier through another ledger)
        row(3, media_url="https://media.example.com/3.html"),  # failed 422
        row(4, type="BOGUS"),  # invalid
        row(5),
        row(5, title="Other"),  # duplicate, conflicting
        row(1),  # repeated: the same engagement as row 2
    ]
    return write_manifest(tmp_path / "mixed.csv", rows)


def expected_error_lines() -> list[list[str]]:
    def line(cells: dict[str, str], status: str, message: str) -> list[str]:
        return [*(cells[c] for c in COLUMNS), status, message]

    return [
        [*COLUMNS, "error_status", "error_message"],
        line(row(3, media_url="https://media.example.com/3.html"), "failed HTTP 422", HTML_422),
        line(row(4, type="BOGUS"), "invalid", BOGUS_TYPE),
        line(row(5), "duplicate", conflict("crm:rec-5", 7)),
        line(row(5, title="Other"), "duplicate", conflict("crm:rec-5", 6)),
    ]


def test_report_success_and_errors_exact_then_errors_csv_is_fixed_and_refed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    earlier = write_manifest(tmp_path / "earlier.csv", [row(2)])
    assert run(sandbox, earlier, tmp_path / "other.db").exit_code == 0
    manifest = mixed_manifest(tmp_path)
    assert run(sandbox, manifest, ledger).exit_code == 1
    out = tmp_path / "report"

    result = run_cli(["report", "--ledger", str(ledger), "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert f"Wrote {out / 'success.csv'} (2 rows)" in result.stdout
    assert f"Wrote {out / 'errors.csv'} (4 rows)" in result.stdout
    ids = server_ids(sandbox)
    when = {r["external_id"]: r["completed_at"] for r in ledger_rows(ledger)}
    key = str(manifest.resolve())
    assert read_csv(out / "success.csv") == [
        [
            "manifest",
            "row",
            "external_id",
            "engagement_id",
            "outcome",
            "when",
            "processing_status",
            "found_by",
        ],
        [key, "2", "crm:rec-1", ids["crm:rec-1"], "created", when["crm:rec-1"], "", "create"],
        [key, "3", "crm:rec-2", ids["crm:rec-2"], "existing", when["crm:rec-2"], "", "create"],
    ]
    assert all(dt.datetime.fromisoformat(when[i]) for i in ("crm:rec-1", "crm:rec-2"))
    assert read_csv(out / "errors.csv") == expected_error_lines()

    # Fix the cells, drop the conflicting copy, and feed errors.csv back as a manifest.
    with (out / "errors.csv").open(encoding="utf-8", newline="") as handle:
        fixed = list(csv.DictReader(handle))
    fixed[0]["media_url"] = "https://media.example.com/3.mp3"
    fixed[1]["type"] = "CALL"
    del fixed[3]
    refed = tmp_path / "fixed.csv"
    with refed.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fixed[0]))
        writer.writeheader()
        writer.writerows(fixed)

    again = run(sandbox, refed, ledger)

    assert again.exit_code == 0, again.output
    assert sandbox.stats()["created"] == {f"crm:rec-{n}": 1 for n in range(1, 6)}
    assert status_counts(ledger) == {"created": 4, "existing": 1}
    assert run_cli(["report", "--ledger", str(ledger), "--out", str(out)]).exit_code == 0
    ids = server_ids(sandbox)
    fixed_key = str(refed.resolve())
    expected = [
        [key, "2", "crm:rec-1", ids["crm:rec-1"], "created"],
        [key, "3", "crm:rec-2", ids["crm:rec-2"], "existing"],
        [fixed_key, "2", "crm:rec-3", ids["crm:rec-3"], "created"],
        [fixed_key, "3", "crm:rec-4", ids["crm:rec-4"], "created"],
        [fixed_key, "4", "crm:rec-5", ids["crm:rec-5"], "created"],
    ]
    success = read_csv(out / "success.csv")
    assert [line[:5] for line in success[1:]] == sorted(expected, key=lambda e: (e[0], int(e[1])))
    # Nothing is left to fix: no row is reported both imported and in error (the header
    # keeps the manifests' columns, so the empty file still reads back).
    assert read_csv(out / "errors.csv") == [[*COLUMNS, "error_status", "error_message"]]
    status = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)
    assert status["counts"] == {"created": 4, "existing": 1}
    assert status["top_errors"] == []


def test_a_row_still_wrong_in_a_refed_errors_csv_is_reported_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(4, type="BOGUS")])
    assert run(sandbox, manifest, ledger).exit_code == 1
    out = tmp_path / "report"
    assert run_cli(["report", "--ledger", str(ledger), "--out", str(out)]).exit_code == 0
    refed = tmp_path / "errors-again.csv"
    refed.write_bytes((out / "errors.csv").read_bytes())
    assert run(sandbox, refed, ledger).exit_code == 1

    assert run_cli(["report", "--ledger", str(ledger), "--out", str(out)]).exit_code == 0

    errors = read_csv(out / "errors.csv")
    assert errors[0] == [*COLUMNS, "error_status", "error_message"]
    assert [line[0] for line in errors[1:]] == ["rec-4"]
    assert errors[1][-2:] == ["invalid", BOGUS_TYPE]
    status = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)
    assert status["counts"] == {"created": 1, "invalid": 1}


# -- CSV injection ---------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_formula_cells_are_neutralised_in_every_csv(
    sandbox: Sandbox, tmp_path: Path, start: str
) -> None:
    ledger = tmp_path / "ledger.db"
    good_id = f"{start}cmd|calc"
    bad_title = f'{start}HYPERLINK("http://evil")'
    rows = [
        row(1, id=good_id),
        row(2, title=bad_title, type="BOGUS"),
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    plan_csv = tmp_path / "plan.csv"
    assert (
        run_cli(
            ["plan", str(manifest), "--ledger", str(ledger), "--prefix", "", "--out", str(plan_csv)]
        ).exit_code
        == 1
    )
    assert run(sandbox, manifest, ledger, "--prefix", "").exit_code == 1
    assert sandbox.engagements()[0]["external_id"] == good_id  # sent as is
    out = tmp_path / "report"
    assert run_cli(["report", "--ledger", str(ledger), "--out", str(out)]).exit_code == 0

    plan_lines = read_csv(plan_csv)
    success = read_csv(out / "success.csv")
    errors = read_csv(out / "errors.csv")

    assert plan_lines[1][:3] == ["2", "'" + good_id, "new"]
    assert success[1][2] == "'" + good_id
    title = errors[0].index("title")
    assert errors[1][title] == "'" + bad_title
    assert errors[1][errors[0].index("error_status")] == "invalid"
    every_cell = [c for f in (plan_lines, success, errors) for line in f for c in line]
    assert not [c for c in every_cell if c[:1] in ("=", "+", "-", "@")]

    # Fixed and fed back, the defused cell imports as the original text.
    errors[1][errors[0].index("type")] = "CALL"
    refed = tmp_path / "fixed.csv"
    with refed.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(errors)
    assert run(sandbox, refed, ledger, "--prefix", "").exit_code == 0
    titles = {e["external_id"]: e["title"] for e in sandbox.engagements()}
    assert titles[errors[1][errors[0].index("id")]] == bad_title


# -- retry ---------------------------------------------------------------------------------


def test_retry_resends_transient_failures_and_permanent_only_on_request(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    rows = [row(1), row(2), row(3, media_url="https://media.example.com/3.html")]
    assert fail_transiently(sandbox, tmp_path, ledger, *rows).exit_code == 1
    assert status_counts(ledger) == {"created": 1, "failed": 2}
    before = requests_of(sandbox, CREATE)

    first = command(sandbox, "retry", ledger)

    assert first.exit_code == 1, first.output  # the 422 row is now a permanent failure
    after = requests_of(sandbox, CREATE)
    assert after["201"] == before["201"] + 1  # rec-2 only: rec-1 is not sent again
    assert after["422"] == 1
    assert status_counts(ledger) == {"created": 2, "failed": 1}
    assert sandbox.stats()["created"] == {"crm:rec-1": 1, "crm:rec-2": 1}
    nothing = command(sandbox, "retry", ledger)
    assert nothing.exit_code == 1  # the 422 row is still not in AskElephant
    assert nothing.stdout.startswith("Nothing to retry, but 1 row(s) are not in AskElephant")
    assert requests_of(sandbox, CREATE) == after

    again = command(sandbox, "retry", ledger, "--include-permanent")

    assert again.exit_code == 1, again.output
    assert requests_of(sandbox, CREATE) == {**after, "422": 2}
    # Every request counts: its 429 in the limited run, a 422 in the first retry and again now.
    assert ledger_rows(ledger, "status = 'failed'")[0]["attempts"] == 3
    runs = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)["runs"]
    assert [r["command"] for r in runs] == ["retry", "retry", "run", "run"]


# -- verify --------------------------------------------------------------------------------


def test_verify_records_statuses_and_wait_sees_them_move(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # Not the session sandbox (0.5 s a status): on a loaded machine the first verify could
    # come after 1 s and see them done. 3 s a status leaves 6 s for run and first verify.
    sandbox = make_sandbox(processing_seconds=3)
    ledger = tmp_path / "ledger.db"
    rows = [row(1), row(2), row(3, media_url="https://media.example.com/broken-call.mp3")]
    assert run(sandbox, write_manifest(tmp_path / "m.csv", rows), ledger).exit_code == 0

    first = command(sandbox, "verify", ledger, "--json")

    assert first.exit_code == 0, first.output
    early = json.loads(first.stdout)
    assert set(early["processing_status"]) <= {"QUEUED", "PROCESSING"}
    assert sum(early["processing_status"].values()) == 3
    assert early["failed"] == [] and early["rounds"] == 1
    seen = ledger_rows(ledger)
    assert all(r["processing_status"] in ("QUEUED", "PROCESSING") for r in seen)
    assert all(r["etag"] and r["processing_seen_at"] for r in seen)

    waited = command(sandbox, "verify", ledger, "--wait", "--timeout", "20", "--json")

    assert waited.exit_code == 1, waited.output
    final = json.loads(waited.stdout)
    assert final["processing_status"] == {"COMPLETED": 2, "FAILED": 1}
    assert final["failed"] == [{"external_id": "crm:rec-3", "processing_status": "FAILED"}]
    assert final["rounds"] >= 2 and final["timed_out"] is False
    by_id = {r["external_id"]: r["processing_status"] for r in ledger_rows(ledger)}
    assert by_id == {"crm:rec-1": "COMPLETED", "crm:rec-2": "COMPLETED", "crm:rec-3": "FAILED"}
    # Unchanged engagements are read conditionally: the ETag gives 304s.
    before = requests_of(sandbox, GET_ONE)
    text = command(sandbox, "verify", ledger)
    assert text.exit_code == 1
    assert requests_of(sandbox, GET_ONE)["304"] == before.get("304", 0) + 3
    assert "  failed: crm:rec-3 (FAILED)" in text.stdout
    status = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)
    assert status["processing"] == {"COMPLETED": 2, "FAILED": 1}
    out = tmp_path / "report"
    assert run_cli(["report", "--ledger", str(ledger), "--out", str(out)]).exit_code == 0
    processing = {line[2]: line[6] for line in read_csv(out / "success.csv")[1:]}
    assert processing == {"crm:rec-1": "COMPLETED", "crm:rec-2": "COMPLETED", "crm:rec-3": "FAILED"}


def test_verify_wait_exits_0_when_everything_completes(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    assert run(sandbox, write_manifest(tmp_path / "m.csv", [row(1)]), ledger).exit_code == 0

    result = command(sandbox, "verify", ledger, "--wait", "--timeout", "20", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["processing_status"] == {"COMPLETED": 1}


def test_verify_wait_times_out_with_exit_1(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox = make_sandbox(processing_seconds=600)  # still processing, however slow
    ledger = tmp_path / "ledger.db"
    assert run(sandbox, write_manifest(tmp_path / "m.csv", [row(1)]), ledger).exit_code == 0

    result = command(sandbox, "verify", ledger, "--wait", "--timeout", "0")

    assert result.exit_code == 1, result.output
    assert "Still processing after 0 s." in result.stderr


# -- contacts --------------------------------------------------------------------------------


def contacts_on_server(sandbox: Sandbox) -> dict[str, list[str]]:
    return {
        e["external_id"]: sorted(c["id"] for c in e.get("contacts") or [])
        for e in sandbox.engagements()
    }


def test_contacts_applied_once_and_reapplied_only_after_a_change(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    manifest = tmp_path / "m.csv"
    write_manifest(
        manifest,
        [row(1, contact_ids="cnt_a1,cnt_b2"), row(2, contact_ids="[]"), row(3)],
    )

    assert run(sandbox, manifest, ledger).exit_code == 0
    assert requests_of(sandbox, PUT_CONTACTS) == {"200": 2}
    assert contacts_on_server(sandbox) == {
        "crm:rec-1": ["cnt_a1", "cnt_b2"],
        "crm:rec-2": [],
        "crm:rec-3": [],
    }

    # Same sets (another order, JSON form): nothing is re-applied, by run or sync-contacts.
    write_manifest(
        manifest,
        [row(1, contact_ids='["cnt_b2", "cnt_a1"]'), row(2, contact_ids="[]"), row(3)],
    )
    assert run(sandbox, manifest, ledger).exit_code == 0
    sync = ["sync-contacts", str(manifest), "--ledger", str(ledger)]
    sync += ["--base-url", sandbox.base_url, "--no-progress"]
    assert run_cli(sync, sandbox.api_key).exit_code == 0
    assert requests_of(sandbox, PUT_CONTACTS) == {"200": 2}

    # One set changes, one blank cell leaves contacts alone: exactly one PUT.
    write_manifest(manifest, [row(1, contact_ids="cnt_c3"), row(2), row(3)])
    before_creates = requests_of(sandbox, CREATE)
    result = run_cli(sync, sandbox.api_key)
    assert result.exit_code == 0, result.output
    assert requests_of(sandbox, PUT_CONTACTS) == {"200": 3}
    assert requests_of(sandbox, CREATE) == before_creates
    assert contacts_on_server(sandbox)["crm:rec-1"] == ["cnt_c3"]
    assert run_cli(sync, sandbox.api_key).exit_code == 0
    assert requests_of(sandbox, PUT_CONTACTS) == {"200": 3}

    # The same change seen by `run` instead.
    write_manifest(manifest, [row(1, contact_ids="cnt_c3"), row(2, contact_ids="cnt_d4"), row(3)])
    assert run(sandbox, manifest, ledger).exit_code == 0
    assert requests_of(sandbox, PUT_CONTACTS) == {"200": 4}
    assert contacts_on_server(sandbox)["crm:rec-2"] == ["cnt_d4"]


def test_sync_contacts_creates_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1, contact_ids="cnt_a1")])
    args = ["sync-contacts", str(manifest), "--ledger", str(ledger)]

    result = run_cli([*args, "--base-url", sandbox.base_url, "--no-progress"], sandbox.api_key)

    assert result.exit_code == 0, result.output
    assert "not imported yet" in result.stdout
    assert requests_but_key_checks(sandbox) == {}


def test_unknown_contact_is_reported_as_contacts_failed(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1, contact_ids="cnt_unknown1")])

    result = run(sandbox, manifest, ledger)

    assert result.exit_code == 1, result.output
    assert "contacts failed" in result.output and "cnt_unknown1" in result.output
    assert status_counts(ledger) == {"created": 1}
    assert ledger_rows(ledger)[0]["contacts_hash"] is None
    status = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)
    assert status["contacts_not_applied"]["count"] == 1
    assert status["contacts_not_applied"]["examples"][0]["external_id"] == "crm:rec-1"
    assert "cnt_unknown1" in status["contacts_not_applied"]["examples"][0]["error"]
    text = run_cli(["status", "--ledger", str(ledger)]).stdout
    assert "Contacts not applied: 1 engagement(s)" in text


# -- init ----------------------------------------------------------------------------------


def test_init_guesses_a_mapping_from_crm_headers(tmp_path: Path) -> None:
    headers = ["Activity ID", "Subject", "Recording URL", "Call Date", "Call Type", "Notes"]
    manifest = tmp_path / "export.csv"
    with manifest.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerow(
            ["A-1", "Intro", "https://media.example.com/a.mp3", "2024-01-02T03:04:05Z", "CALL", ""]
        )
    mapping = tmp_path / "mapping.toml"

    result = run_cli(["init", str(manifest), "--out", str(mapping)])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Wrote {mapping}: 5 field(s) mapped.",
        "  mapped:  id <- 'Activity ID'",
        "  mapped:  type <- 'Call Type'",
        "  mapped:  title <- 'Subject'",
        "  mapped:  media_url <- 'Recording URL'",
        "  mapped:  start_at <- 'Call Date'",
        '  default: source_system = "salesforce" (the headers look like a salesforce export)',
        "  missing (optional): is_private, participants, transcript_text, transcript_path, "
        "contact_ids",
        "  columns not used: Notes",
    ]
    text = mapping.read_text(encoding="utf-8")
    for line in (
        'id = "Activity ID"',
        'type = "Call Type"',
        'title = "Subject"',
        'media_url = "Recording URL"',
        'start_at = "Call Date"',
        '# participants = "..."   # not found (optional)',
        "# Columns not used: Notes",
    ):
        assert line + "\n" in text
    assert text.startswith("# ")
    planned = run_cli(
        [
            "plan",
            str(manifest),
            "--mapping",
            str(mapping),
            "--source-system",
            "hubspot",
            "--ledger",
            str(tmp_path / "l.db"),
            "--json",
        ]
    )
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["counts"] == {"new": 1}
    assert json.loads(planned.stdout)["examples"]["new"][0]["external_id"] == "hubspot:A-1"


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    mapping = tmp_path / "mapping.toml"
    mapping.write_text("keep me", encoding="utf-8")

    refused = run_cli(["init", str(manifest), "--out", str(mapping)])

    assert refused.exit_code == 2
    assert "exists; pass --force" in refused.stderr
    assert mapping.read_text(encoding="utf-8") == "keep me"
    assert run_cli(["init", str(manifest), "--out", str(mapping), "--force"]).exit_code == 0
    assert mapping.read_text(encoding="utf-8").startswith("# Mapping for")


# -- unattended: JSON logs and --quiet -----------------------------------------------------------


def test_json_log_has_one_event_per_line(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    rows = [row(1), row(2), row(3, type="BOGUS"), row(5), row(5, title="Other")]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    sandbox.set_faults(rate_limit=0.5)

    result = run(
        sandbox,
        manifest,
        ledger,
        "--log-format",
        "json",
        "--max-attempts",
        "3",
        "--concurrency",
        "1",
    )

    assert result.exit_code == 1
    assert result.stdout == ""
    events = json_lines(result.stderr)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert events[0]["command"] == "run" and events[0]["options"]["log_format"] == "json"
    assert all(dt.datetime.fromisoformat(e["time"]) for e in events)
    retries = [e for e in events if e["event"] == "retry"]
    # The run's key check takes the only token: both creates meet a 429, then go in.
    assert {(e["external_id"], e["row"]) for e in retries} == {("crm:rec-1", 2), ("crm:rec-2", 3)}
    assert all("429" in e["reason"] and e["wait_seconds"] >= 1 for e in retries)
    outcomes = sorted((e["row"], e["outcome"]) for e in events if e["event"] == "row")
    assert outcomes == [
        (2, "created"),
        (3, "created"),
        (4, "invalid"),
        (5, "duplicate"),
        (6, "duplicate"),
    ]
    planned = [e for e in events if e["event"] == "planned"]
    assert [(e["to_send"], e["skipped"]) for e in planned] == [
        (2, {"already imported": 0, "changed since import": 0, "failed before": 0})
    ]
    finished = events[-1]
    assert finished["counts"] == {"created": 2, "invalid": 1, "duplicate": 2}
    assert finished["exit_code"] == 1 and finished["requests"] == 2 + len(retries)


def test_json_log_for_verify_and_retry(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    assert run(sandbox, write_manifest(tmp_path / "m.csv", [row(1)]), ledger).exit_code == 0

    verify = command(sandbox, "verify", ledger, "--log-format", "json")
    retry = command(sandbox, "retry", ledger, "--log-format", "json")

    assert verify.exit_code == 0 and retry.exit_code == 0
    notices = json_lines(verify.stderr)
    assert [e["event"] for e in notices] == ["notice"]
    assert notices[0]["message"].startswith("Verify round 1: 1 ")


def test_quiet_prints_nothing_but_errors(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2, type="BOGUS")])

    quiet = run(sandbox, manifest, ledger, "--quiet")
    wrong_key = run(sandbox, manifest, tmp_path / "l2.db", "--quiet", key="sk-apik_no.NO")
    verify = command(sandbox, "verify", ledger, "--quiet")

    assert quiet.exit_code == 1
    assert quiet.output == ""
    assert verify.exit_code == 0 and verify.output == ""
    assert wrong_key.exit_code == 3
    assert wrong_key.stdout == ""
    assert "401" in wrong_key.stderr


def test_retry_keeps_the_mapping_and_options_of_the_run_across_retries(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\nid = "Activity ID"\n[defaults]\ntype = "CALL"\n', "utf-8")
    columns = ["Activity ID", "title", "media_url", "start_at"]
    rows = [
        {
            "Activity ID": f"a{n}",
            "title": f"t{n}",
            "start_at": "2024-01-15 09:00",
            "media_url": f"https://media.example.com/{n}.mp3",
        }
        for n in range(3)
    ]
    manifest = write_manifest(tmp_path / "crm.csv", rows, columns=columns)
    options = [
        "--mapping",
        str(mapping),
        "--source-system",
        "hub",
        "--timezone",
        "America/New_York",
        "--prefix",
        "hub-",
    ]
    sandbox.set_faults(rate_limit=0.5)
    first = run(sandbox, manifest, ledger, *options, "--max-attempts", "1", "--concurrency", "1")
    assert first.exit_code == 1, first.output
    # Still limited: the first retry leaves rows failed again (and records its own run).
    command(sandbox, "retry", ledger, "--max-attempts", "1", "--concurrency", "1")
    sandbox.set_faults(rate_limit=None)

    second = command(sandbox, "retry", ledger)

    assert second.exit_code == 0, second.output
    stored = {e["external_id"]: e["start_at"] for e in sandbox.engagements()}
    assert set(stored) == {"hub-a0", "hub-a1", "hub-a2"}
    assert {value[:19] for value in stored.values()} == {"2024-01-15T14:00:00"}
