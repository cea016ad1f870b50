"""`importer init`'s guesses for each system's real header set and value shapes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from importer.rows.init import guess_mapping
from tests.factories import run_cli

SYSTEMS = [
    (
        "chorus",
        [
            "Engagement ID",
            "Subject",
            "Date",
            "Duration",
            "Participants",
            "Recording URL",
            "Chorus URL",
            "Meeting Owner",
        ],
        [
            "c-1",
            "Acme sync",
            "2024-03-05T14:30:00Z",
            "1800",
            "Ana <ana@acme.com>",
            "https://rec.example.com/c-1.mp4",
            "https://chorus.ai/meeting/1",
            "Dana",
        ],
        {
            "id": "Engagement ID",
            "title": "Subject",
            "start_at": "Date",
            "participants": "Participants",
            "media_url": "Recording URL",
        },
        "MEETING",
    ),
    (
        "outreach",
        [
            "ID",
            "Created At",
            "Direction",
            "Outcome",
            "Purpose",
            "Duration",
            "Recording URL",
            "Note",
            "Prospect",
            "Sequence",
        ],
        [
            "81",
            "2024-03-05 14:30:00 UTC",
            "outbound",
            "Answered",
            "Discovery",
            "95",
            "https://rec.example.com/81.mp3",
            "",
            "Ana Ng",
            "Q1 outbound",
        ],
        {"id": "ID", "start_at": "Created At", "media_url": "Recording URL"},
        "CALL",
    ),
    (
        "salesloft",
        [
            "Call ID",
            "Date",
            "Person",
            "Cadence",
            "Step",
            "Disposition",
            "Sentiment",
            "Duration",
            "Recording",
        ],
        [
            "5501",
            "2024-03-05T14:30:00.000000-05:00",
            "Ana Ng",
            "Inbound leads",
            "2",
            "Connected",
            "Interested",
            "320",
            "https://rec.example.com/5501.mp3",
        ],
        {"id": "Call ID", "start_at": "Date", "media_url": "Recording"},
        "CALL",
    ),
    (
        "dialpad",
        [
            "call_id",
            "date_started",
            "date_ended",
            "direction",
            "external_number",
            "internal_number",
            "target",
            "name",
            "email",
            "recording_url",
            "voicemail_link",
        ],
        [
            "6211",
            "2024-03-05 14:30:00",
            "2024-03-05 14:42:10",
            "inbound",
            "+15551234567",
            "+15557654321",
            "Sales line",
            "Ana Ng",
            "ana@acme.com",
            "https://rec.example.com/6211.mp3",
            "",
        ],
        {
            "id": "call_id",
            "title": "name",
            "start_at": "date_started",
            "media_url": "recording_url",
        },
        "CALL",
    ),
]


@pytest.mark.parametrize(
    ("system", "headers", "values", "expected", "default_type"),
    SYSTEMS,
    ids=[s[0] for s in SYSTEMS],
)
def test_each_system(
    system: str,
    headers: list[str],
    values: list[str],
    expected: dict[str, str],
    default_type: str,
) -> None:
    guess = guess_mapping(headers, [dict(zip(headers, values, strict=True))])
    assert {k: v for k, v in guess.columns.items() if k in expected} == expected
    assert guess.source_system == system
    assert guess.defaults["type"] == default_type
    assert "direction" not in {v.lower() for v in guess.columns.values()}


def test_a_generic_dialer() -> None:
    headers = [
        "Call ID",
        "Caller",
        "Callee",
        "Call Start",
        "Duration (s)",
        "Disposition",
        "Recording File",
    ]
    row = [
        "9",
        "+1555",
        "+1666",
        "03/25/2024 10:00",
        "61",
        "ANSWERED",
        "https://rec.example.com/9.wav",
    ]
    guess = guess_mapping(headers, [dict(zip(headers, row, strict=True))])
    assert guess.columns == {
        "id": "Call ID",
        "media_url": "Recording File",
        "start_at": "Call Start",
    }
    assert guess.source_system is None
    # A dialer writes no subject: every row gets one title, printed as a default to check.
    assert "title" not in guess.unmapped_fields
    assert guess.defaults == {"type": "CALL", "title": "Call"}


def test_a_column_whose_values_do_not_fit_is_never_mapped() -> None:
    headers = ["Id", "Subject", "Type", "Recording URL", "Date", "Private"]
    rows = [
        {
            "Id": "1",
            "Subject": "a",
            "Type": "Inbound",
            "Recording URL": "see notes",
            "Date": "yesterday",
            "Private": "Maybe",
        },
    ]
    guess = guess_mapping(headers, rows)
    assert guess.columns == {"id": "Id", "title": "Subject"}
    assert guess.refused == {
        "type": "'Type' holds Inbound: a direction, not CALL or MEETING",
        "media_url": "'Recording URL' holds see notes, not URLs",
        "start_at": "'Date' holds yesterday, not dates and times",
        "is_private": "'Private' holds Maybe, not true or false",
    }


def test_value_maps_are_proposed() -> None:
    headers = ["Id", "Activity Type", "Is Private"]
    rows = [
        {"Id": "1", "Activity Type": "Phone Call", "Is Private": "Private"},
        {"Id": "2", "Activity Type": "Video Meeting", "Is Private": "Public"},
        {"Id": "3", "Activity Type": "CALL", "Is Private": "yes"},
    ]
    guess = guess_mapping(headers, rows)
    assert guess.values == {
        "type": {"Phone Call": "CALL", "Video Meeting": "MEETING"},
        "is_private": {"Private": "true", "Public": "false"},
    }


def test_a_named_column_with_a_few_bad_values_is_mapped_and_they_are_pointed_out() -> None:
    # One mistyped date in the first rows must not leave start_at unmapped (the plan would
    # then stop on a missing column): the column is mapped, the bad value's row is invalid.
    headers = ["Activity ID", "Subject", "Created Date", "Call Recording URL", "Private"]
    rows = [
        dict(zip(headers, values, strict=True))
        for values in [
            ["1", "a", "3/5/2024 2:30 PM", "https://r.example.com/1.mp3", "No"],
            ["2", "b", "31/02/2024 10:00", "https://r.example.com/2.mp3", "Yes"],
            ["3", "c", "3/6/2024 9:00 AM", "see notes", "Private"],
            ["4", "d", "3/7/2024 9:00 AM", "https://r.example.com/4.mp3", "Maybe"],
        ]
    ]
    guess = guess_mapping(headers, rows)
    assert guess.columns == {
        "id": "Activity ID",
        "title": "Subject",
        "media_url": "Call Recording URL",
        "start_at": "Created Date",
        "is_private": "Private",
    }
    assert guess.refused == {}
    assert guess.doubts == {
        "media_url": "'Call Recording URL': 1 of its first 4 values is not a URL "
        "('see notes'): that row will be invalid",
        "start_at": "'Created Date': 1 of its first 4 values is not a date and time "
        "('31/02/2024 10:00'): that row will be invalid",
        "is_private": "'Private': 1 of its first 4 values is not true or false ('Maybe'): "
        "that row will be invalid",
    }
    assert guess.values == {"is_private": {"Private": "true"}}


def test_ids_excel_rounded_are_named_as_such() -> None:
    headers = ["id", "title"]
    rows = [{"id": "7.78234E+18", "title": "a"}, {"id": "7.78234E+18", "title": "b"}]
    guess = guess_mapping(headers, rows)
    assert "id" not in guess.columns
    assert guess.refused["id"] == (
        "'id' holds 7.78234E+18: numbers Excel rounded into scientific notation, so the "
        "CRM's ids are lost; export the id column as text"
    )


@pytest.mark.parametrize(
    ("system", "headers", "values", "expected", "default_type"),
    SYSTEMS,
    ids=[s[0] for s in SYSTEMS],
)
def test_each_system_from_init_to_a_clean_plan(
    tmp_path: Path,
    system: str,
    headers: list[str],
    values: list[str],
    expected: dict[str, str],
    default_type: str,
) -> None:
    manifest = tmp_path / f"{system}.csv"
    with manifest.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([headers, values])
    mapping = tmp_path / "mapping.toml"
    init = run_cli(["init", str(manifest), "--out", str(mapping), "--timezone", "UTC"])
    assert init.exit_code == 0, init.output
    ledger = str(tmp_path / "l.db")
    plan = run_cli(["plan", str(manifest), "--mapping", str(mapping), "--ledger", ledger, "--json"])
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.stdout)["counts"] == {"new": 1}


def test_a_name_two_columns_share_is_not_mapped() -> None:
    headers = ["Id", "Subject", "Subject", "Recording URL", "Date"]
    guess = guess_mapping(headers, [])
    assert "title" not in guess.columns
    assert guess.refused["title"] == "'Subject' names two columns: rename one to map it"
    assert "title" not in guess.defaults  # the subject is there: no stand-in title


@pytest.mark.parametrize(
    ("value", "mapped"),
    [("Ana Ng; Ben Wu", True), ("Ana Ng", True), ("O'Brien, Seán", True), ("3", False)],
)
def test_participants_as_names_alone_are_people(value: str, mapped: bool) -> None:
    # Names without emails are participants; a count of them (Zoom's) is not.
    headers = ["Id", "Attendees"]
    guess = guess_mapping(headers, [{"Id": "1", "Attendees": value}])
    assert ("participants" in guess.columns) is mapped
