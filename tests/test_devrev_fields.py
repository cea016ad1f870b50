"""DevRev's field table: every rule, the column blamed, and what the request looks like."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from importer.errors import MappingError
from importer.rows.mapping import load_mapping
from importer.rows.validate import InvalidCell, MappedRow, MappingOptions
from importer.targets import devrev_fields
from importer.targets.devrev_fields import (
    DESCRIPTION_MAX_CHARS,
    EXCERPT_MARK,
    excerpt,
    map_row,
    parse_engagement_type,
    parse_members,
)

MEMBER = "don:identity:dvrv-us-1:devo/0:devu/1"
VALID: dict[str, str] = {
    "id": "00T1",
    "type": "CALL",
    "title": "Discovery call",
    "start_at": "2024-03-05 14:30",
    "members": MEMBER,
    "media_url": "https://media.example.com/calls/1.mp3",
    "source_system": "salesforce",
}


def devrev_options(mapping: Path | None = None, **changes: Any) -> MappingOptions:
    columns = load_mapping(mapping, devrev_fields.FIELDS, devrev_fields.REQUIRED_FIELDS)
    return MappingOptions(columns=columns, **{"timezone": "UTC", **changes})


def mapped(options: MappingOptions | None = None, read: Any = None, **cells: str) -> MappedRow:
    return map_row(
        {**VALID, **cells}, 2, options or devrev_options(), file="calls.csv", read_transcript=read
    )


def test_a_valid_row_becomes_an_engagements_create_body() -> None:
    row = mapped(options=devrev_options(timezone="Europe/Paris"))
    assert row.errors == ()
    assert row.external_id == "salesforce:00T1"
    assert row.payload == {
        "title": "Discovery call",
        "scheduled_date": "2024-03-05T13:30:00+00:00",
        "engagement_type": "call",
        "members": [MEMBER],
        "external_ref": "salesforce:00T1",
        "external_url": "https://media.example.com/calls/1.mp3",
    }


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("CALL", "call"), ("meeting", "default"), ("linked_in", "linked_in"), ("Email", "email")],
)
def test_engagement_type_comes_from_type(cell: str, expected: str) -> None:
    assert parse_engagement_type(cell) == expected


def test_blank_type_leaves_engagement_type_out() -> None:
    row = mapped(type="")
    assert row.payload is not None and "engagement_type" not in row.payload


def test_unknown_type_names_the_column_and_the_choices() -> None:
    row = mapped(type="WEBINAR")
    assert [str(e) for e in row.errors] == [
        "calls.csv, row 2, column 'type': must be CALL, MEETING or one of call, default, "
        "email, linked_in, offline, not 'WEBINAR'"
    ]


def test_members_from_the_mapping_defaults(tmp_path: Path) -> None:
    mapping = tmp_path / "devrev.toml"
    mapping.write_text('[defaults]\nmembers = "DEVU-1, DEVU-2"\n', encoding="utf-8")
    row = mapped(options=devrev_options(mapping), members="")
    assert row.payload is not None and row.payload["members"] == ["DEVU-1", "DEVU-2"]


def test_members_missing_says_how_to_give_them() -> None:
    row = mapped(members=" ")
    assert row.errors[0].column == "members"
    assert "[defaults] members" in row.errors[0].message


def test_members_are_deduplicated_and_checked() -> None:
    assert parse_members(f"{MEMBER}; {MEMBER} DEVU-7") == [MEMBER, "DEVU-7"]
    with pytest.raises(InvalidCell, match=r"'alice@example\.com' is not a DevRev user id"):
        parse_members("alice@example.com")


def test_more_than_fifty_members_are_refused() -> None:
    many = ",".join(f"DEVU-{n}" for n in range(51))
    with pytest.raises(InvalidCell, match="has 51 members; DevRev takes at most 50"):
        parse_members(many)
    assert len(parse_members(",".join(f"DEVU-{n}" for n in range(50)))) == 50


def test_a_mapped_crm_link_wins_over_the_recording_url(tmp_path: Path) -> None:
    mapping = tmp_path / "devrev.toml"
    mapping.write_text('[columns]\nexternal_url = "CRM Link"\n', encoding="utf-8")
    cells = {**VALID, "CRM Link": "https://crm.example.com/calls/00T1"}
    row = map_row(cells, 2, devrev_options(mapping))
    assert row.payload is not None
    assert row.payload["external_url"] == "https://crm.example.com/calls/00T1"


def test_a_bad_link_blames_the_column_it_came_from() -> None:
    row = mapped(media_url="media.example.com/1.mp3")
    assert [(e.column, e.rule) for e in row.errors] == [("media_url", "invalid_url")]


def test_description_from_its_column_within_the_limit() -> None:
    assert mapped(description="Pricing talk").payload["description"] == "Pricing talk"  # type: ignore[index]
    row = mapped(description="x" * (DESCRIPTION_MAX_CHARS + 1))
    assert [(e.column, e.rule) for e in row.errors] == [("description", "too_long")]


def test_description_falls_back_to_a_transcript_excerpt() -> None:
    transcript = "word " * (DESCRIPTION_MAX_CHARS // 2)
    row = mapped(transcript_path="t.txt", read=lambda path: transcript)
    assert row.payload is not None
    description = row.payload["description"]
    assert len(description) <= DESCRIPTION_MAX_CHARS and description.endswith(EXCERPT_MARK)
    assert transcript.startswith(description.removesuffix(EXCERPT_MARK))


def test_excerpt_keeps_short_text_whole() -> None:
    assert excerpt("short", 10) == "short"


def test_title_and_start_are_required() -> None:
    row = mapped(title="", start_at="")
    assert sorted(e.column for e in row.errors) == ["start_at", "title"]


def test_the_external_ref_is_prefixed_as_for_askelephant() -> None:
    row = mapped(options=devrev_options(prefix="crm-"))
    assert row.payload is not None and row.payload["external_ref"] == "crm-00T1"


def test_required_columns_follow_the_devrev_table(tmp_path: Path) -> None:
    columns = devrev_options().columns
    assert "members" in columns.required and "media_url" not in columns.required
    assert columns.unused_columns(["id", "members", "participants"]) == ["participants"]


def test_askelephant_only_fields_are_unknown_in_a_devrev_mapping(tmp_path: Path) -> None:
    mapping = tmp_path / "devrev.toml"
    mapping.write_text('[columns]\nparticipants = "Who"\n', encoding="utf-8")
    with pytest.raises(MappingError, match="unknown field 'participants'"):
        devrev_options(mapping)
