"""Real exports from `importer init` to a clean `plan`, with nothing edited by hand.

The files in tests/exports/ (written by scripts/make_export_fixtures.py) have the header
sets and value shapes Salesforce, HubSpot, Gong, Zoom and Outreach really produce.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from importer.read.manifest import read_manifest
from importer.rows.participants import parse_participants
from importer.settings import SourceOptions
from tests.factories import run_cli

EXPORTS = Path(__file__).resolve().parent / "exports"


def init_then_plan(
    tmp_path: Path, name: str, *options: str
) -> tuple[list[str], str, dict[str, object]]:
    """``importer init`` then ``importer plan --json``: init's lines, the mapping, the plan."""
    manifest = EXPORTS / name
    mapping = tmp_path / "mapping.toml"
    init = run_cli(["init", str(manifest), "--out", str(mapping), *options])
    assert init.exit_code == 0, init.output
    plan = run_cli(
        [
            "plan",
            str(manifest),
            "--mapping",
            str(mapping),
            "--ledger",
            str(tmp_path / "l.db"),
            "--json",
            *options,
        ]
    )
    assert plan.exit_code == 0, plan.output
    return init.stdout.splitlines(), mapping.read_text(encoding="utf-8"), json.loads(plan.stdout)


SALESFORCE_INIT = [
    "  mapped:  id <- 'Activity ID'",
    "  mapped:  title <- 'Subject'",
    "  mapped:  media_url <- 'Call Recording URL'",
    "  mapped:  start_at <- 'Created Date'",
    '  default: source_system = "salesforce" (the headers look like a salesforce export)',
    '  default: type = "CALL" (no column holds CALL or MEETING)',
    "  rows:    1 of the first rows have no media URL: skip_without_media = true (skipped, "
    "not invalid)",
    "  not used for type: 'Call Type' holds Outbound, Inbound: a direction, not CALL or MEETING",
    "  missing (optional): is_private, participants, transcript_text, transcript_path, contact_ids",
    "  columns not used: Call Type, Call Duration (seconds), Assigned, Related To, Comments",
]
FOOTER_NOTICE = (
    "Skipped the report footer after the last record (3 row(s): 9, 11, 12, starting "
    "'Grand Totals (6 records)')."
)


def test_salesforce_report_csv_with_footer(tmp_path: Path) -> None:
    lines, mapping, plan = init_then_plan(tmp_path, "salesforce_calls.csv")
    assert lines[1:] == SALESFORCE_INIT
    assert "[rows]\nskip_without_media = true\n" in mapping
    assert plan["counts"] == {"new": 5, "skipped": 1}
    assert plan["notices"][0] == (
        "Dates in column 'Created Date' read month-first (row 5 has '3/14/2024 11:00 AM' -> "
        "2024-03-14T11:00:00+00:00); --dayfirst or --monthfirst to say otherwise."
    )
    assert plan["notices"][-1] == FOOTER_NOTICE
    assert [e["external_id"] for e in plan["examples"]["new"]][:2] == [
        "salesforce:00T5e00000AbCdE",
        "salesforce:00T5e00000AbCdF",
    ]


def test_salesforce_report_xlsx(tmp_path: Path) -> None:
    lines, _, plan = init_then_plan(tmp_path, "salesforce_calls.xlsx")
    assert lines[1:] == SALESFORCE_INIT
    assert plan["counts"] == {"new": 5, "skipped": 1}
    assert plan["notices"][-1] == FOOTER_NOTICE
    assert plan["examples"]["skipped"][0]["row"] == 4  # the spreadsheet's row number


def test_salesforce_api_names(tmp_path: Path) -> None:
    lines, _, plan = init_then_plan(tmp_path, "salesforce_api.csv")
    assert lines[1:5] == [
        "  mapped:  id <- 'Id'",
        "  mapped:  title <- 'Subject'",
        "  mapped:  media_url <- 'Recording_URL__c'",
        "  mapped:  start_at <- 'CreatedDate'",
    ]
    assert plan["counts"] == {"new": 3, "skipped": 1}


HUBSPOT_INIT = [
    "  mapped:  id <- 'Record ID'",
    "  mapped:  title <- 'Call Title'",
    "  mapped:  media_url <- 'Recording URL'",
    "  mapped:  start_at <- 'Activity date'",
    '  default: source_system = "hubspot" (the headers look like a hubspot export)',
]


@pytest.mark.parametrize(
    ("name", "options", "order"),
    [
        ("hubspot_calls.csv", (), "month-first (row 4 has '03/19/2024 05:40 PM'"),
        ("hubspot_calls_semicolon.csv", (), "day-first (row 4 has '19/03/2024 17:40'"),
        ("hubspot_calls_cp1252.csv", ("--encoding", "cp1252"), "month-first"),
    ],
)
def test_hubspot_variants(tmp_path: Path, name: str, options: tuple[str, ...], order: str) -> None:
    lines, _, plan = init_then_plan(tmp_path, name, *options)
    assert lines[1:6] == HUBSPOT_INIT
    assert plan["counts"] == {"new": 4}
    assert f"read {order}" in plan["notices"][0]


def test_hubspot_cp1252_asks_for_the_encoding_once(tmp_path: Path) -> None:
    out = tmp_path / "x.toml"
    result = run_cli(["init", str(EXPORTS / "hubspot_calls_cp1252.csv"), "--out", str(out)])
    assert result.exit_code == 2
    assert 'read as Windows-1252, line 2 says \'"48213307761","Intro call with Café Müller"' in (
        result.stderr
    )
    assert "pass --encoding cp1252 (or latin-1)" in result.stderr


def test_gong_parquet_with_participants_in_its_format(tmp_path: Path) -> None:
    lines, mapping, plan = init_then_plan(tmp_path, "gong_calls.parquet")
    assert lines[1:9] == [
        "  mapped:  id <- 'id'",
        "  mapped:  type <- 'media'",
        "  mapped:  title <- 'title'",
        "  mapped:  media_url <- 'mediaUrl'",
        "  mapped:  start_at <- 'started'",
        "  mapped:  participants <- 'participants'",
        '  default: source_system = "gong" (the headers look like a gong export)',
        "  values:  type: Video -> MEETING, Audio -> CALL",
    ]
    assert '[values.type]\n"Video" = "MEETING"\n"Audio" = "CALL"\n' in mapping
    assert plan["counts"] == {"new": 4}
    assert plan["examples"]["new"][0]["external_id"] == "gong:7782342274025937001"


def test_gong_list_of_structs_participants() -> None:
    rows = [
        r for b in read_manifest(EXPORTS / "gong_calls.parquet", 10, SourceOptions()) for r in b
    ]
    assert parse_participants(rows[0].cells["parties"]) == [
        {"name": "Ana Ng", "email": "ana@acme.com"},
        {"name": "Ben Wu"},
    ]
    assert pq.read_schema(EXPORTS / "gong_calls.parquet").field("parties").type.value_type


def test_gong_float_ids_are_a_file_level_error(tmp_path: Path) -> None:
    manifest = EXPORTS / "gong_calls_float_ids.parquet"
    mapping = tmp_path / "mapping.toml"
    init = run_cli(["init", str(manifest), "--out", str(mapping)])
    assert init.exit_code == 0
    assert init.stdout.splitlines()[-1].startswith(
        f"  problem: {manifest}: column 'id' holds ids as floating-point numbers"
    )
    ledger = str(tmp_path / "l.db")
    plan = run_cli(["plan", str(manifest), "--mapping", str(mapping), "--ledger", ledger])
    assert plan.exit_code == 2
    assert plan.stderr == (
        f"error: {manifest}: column 'id' holds ids as floating-point numbers, which keep only "
        "15-16 digits: row 1 has 7.782342274025937e+18, so the CRM's id may already be altered "
        "and would become a wrong idempotency key. Export the id column as text (Excel: format "
        "it as Text; pandas: read it with dtype=str) and try again\n"
    )


def test_zoom_recordings(tmp_path: Path) -> None:
    lines, _, plan = init_then_plan(tmp_path, "zoom_recordings.csv")
    assert lines[1:8] == [
        "  mapped:  id <- 'Meeting ID'",
        "  mapped:  title <- 'Topic'",
        "  mapped:  media_url <- 'Download URL'",
        "  mapped:  start_at <- 'Start Time'",
        "  mapped:  participants <- 'Participants'",
        '  default: source_system = "zoom" (the headers look like a zoom export)',
        '  default: type = "MEETING" (no column holds CALL or MEETING)',
    ]
    assert plan["counts"] == {"new": 3}


def test_gong_participants_from_the_list_of_structs_column(tmp_path: Path) -> None:
    manifest = EXPORTS / "gong_calls.parquet"
    mapping = tmp_path / "mapping.toml"
    assert run_cli(["init", str(manifest), "--out", str(mapping)]).exit_code == 0
    text = mapping.read_text(encoding="utf-8").replace(
        'participants = "participants"', 'participants = "parties"'
    )
    mapping.write_text(text, encoding="utf-8")
    out = tmp_path / "plan.csv"
    plan = run_cli(
        [
            "plan",
            str(manifest),
            "--mapping",
            str(mapping),
            "--ledger",
            str(tmp_path / "l.db"),
            "--out",
            str(out),
        ]
    )
    assert plan.exit_code == 0, plan.output
    with out.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle))
    assert [line[2] for line in lines[1:]] == ["new"] * 4  # every list of structs was read
    assert lines[1][4:] == ["2024-03-05T15:00:00+00:00", "2024-03-05T15:00:00+00:00"]


def test_the_readme_shows_inits_real_output_for_salesforce(tmp_path: Path) -> None:
    readme = (EXPORTS.parent.parent / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ importer init salesforce_calls.csv\n", 1)[1].split("\n$ ", 1)[0]
    mapping = tmp_path / "mapping.toml"
    result = run_cli(["init", str(EXPORTS / "salesforce_calls.csv"), "--out", str(mapping)])
    assert result.stdout.replace(str(mapping), "mapping.toml") == shown + "\n"
    written = [
        line
        for line in mapping.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    shown_file = readme.split("$ grep -v '^#' mapping.toml | grep .\n", 1)[1].split("\n$ ", 1)[0]
    assert written == shown_file.splitlines()


def test_outreach_data_export(tmp_path: Path) -> None:
    # Upper-cased API names, UTC times without a zone, no subject column, unanswered calls.
    lines, mapping, plan = init_then_plan(tmp_path, "outreach_calls.csv")
    assert lines[1:9] == [
        "  mapped:  id <- 'ID'",
        "  mapped:  media_url <- 'RECORDING_URL'",
        "  mapped:  start_at <- 'DIALED_AT'",
        '  default: source_system = "outreach" (the headers look like an outreach export)',
        '  default: type = "CALL" (no column holds CALL or MEETING)',
        '  default: title = "Outreach call" (no column holds a title: every row gets this one)',
        "  rows:    2 of the first rows have no media URL: skip_without_media = true (skipped, "
        "not invalid)",
        "  missing (optional): is_private, participants, transcript_text, transcript_path, "
        "contact_ids",
    ]
    assert 'title = "Outreach call"' in mapping
    assert plan["counts"] == {"new": 3, "skipped": 2}


def test_float_ids_under_another_name_are_mapped_and_stop_the_plan(tmp_path: Path) -> None:
    # init maps the id column whose floats collided ("repeats values" was the wrong reason),
    # so the plan stops on the file-level message rather than on a missing 'id' column.
    table = pq.read_table(EXPORTS / "gong_calls_float_ids.parquet")
    manifest = tmp_path / "gong.parquet"
    pq.write_table(table.rename_columns(["Conversation ID", *table.column_names[1:]]), manifest)
    mapping = tmp_path / "mapping.toml"
    init = run_cli(["init", str(manifest), "--out", str(mapping)])
    assert init.exit_code == 0, init.output
    assert "  mapped:  id <- 'Conversation ID'" in init.stdout
    assert "not used for id" not in init.stdout
    assert "missing: id" not in init.stdout
    ledger = str(tmp_path / "l.db")
    plan = run_cli(["plan", str(manifest), "--mapping", str(mapping), "--ledger", ledger])
    assert plan.exit_code == 2
    assert plan.stderr.startswith(
        f"error: {manifest}: column 'Conversation ID' holds ids as floating-point numbers"
    )


def test_a_mistyped_date_in_the_first_rows_costs_only_its_row(tmp_path: Path) -> None:
    manifest = tmp_path / "report.csv"
    manifest.write_text(
        '"Activity ID","Subject","Created Date","Call Recording URL"\n'
        '"00T1","Discovery","3/5/2024 2:30 PM","https://r.example.com/1.mp3"\n'
        '"00T2","Follow-up","31/02/2024 10:00","https://r.example.com/2.mp3"\n'
        '"00T3","Renewal","3/14/2024 9:00 AM","https://r.example.com/3.mp3"\n',
        encoding="utf-8",
    )
    mapping = tmp_path / "mapping.toml"
    init = run_cli(["init", str(manifest), "--out", str(mapping)])
    assert init.exit_code == 0, init.output
    assert (
        "  check:   start_at <- 'Created Date': 1 of its first 3 values is not a date and time "
        "('31/02/2024 10:00'): that row will be invalid" in init.stdout.splitlines()
    )
    ledger = str(tmp_path / "l.db")
    plan = run_cli(["plan", str(manifest), "--mapping", str(mapping), "--ledger", ledger])
    assert plan.exit_code == 1, plan.output
    assert "  invalid          1\n  new              2\n" in plan.stdout
    assert (
        "row 3 salesforce:00T2: Created Date: '31/02/2024 10:00' read month-first has month 31"
        in (plan.stdout)
    )
