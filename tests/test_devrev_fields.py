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
    EXCERPT_MARK,
    TRANSCRIPT_EXCERPT_CHARS,
    excerpt,
    is_devrev_parent,
    map_row,
    parse_engagement_type,
    parse_members,
)

MEMBER = "don:identity:dvrv-us-1:devo/0:devu/1"
VALID: dict[str, str] = {
    "id": "00T1",
    "type": "CALL",
    "title": "Discovery call",
    "parent": "001A000001",
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
        "parent": "001A000001",
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


def test_members_are_optional_and_left_out_when_blank() -> None:
    row = mapped(members=" ")
    assert row.errors == () and row.payload is not None and "members" not in row.payload


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


def test_description_from_its_column_has_no_length_limit() -> None:
    # DevRev publishes no limit: a long description is sent whole, DevRev judges it.
    long = "x" * 50_000
    assert mapped(description=long).payload["description"] == long  # type: ignore[index]


def test_title_has_no_length_limit() -> None:
    title = "t" * 500
    row = mapped(title=title)
    assert row.errors == () and row.payload is not None and row.payload["title"] == title


def test_description_falls_back_to_a_transcript_excerpt() -> None:
    transcript = "word " * (TRANSCRIPT_EXCERPT_CHARS // 2)
    row = mapped(transcript_path="t.txt", read=lambda path: transcript)
    assert row.payload is not None
    description = row.payload["description"]
    assert len(description) <= TRANSCRIPT_EXCERPT_CHARS and description.endswith(EXCERPT_MARK)
    assert transcript.startswith(description.removesuffix(EXCERPT_MARK))


def test_excerpt_keeps_short_text_whole() -> None:
    assert excerpt("short", 10) == "short"


def test_title_and_parent_are_required() -> None:
    row = mapped(title="", parent=" ")
    assert sorted(e.column for e in row.errors) == ["parent", "title"]
    parent = next(e for e in row.errors if e.column == "parent")
    assert "[defaults] parent" in parent.message


def test_start_is_optional_and_left_out_when_blank() -> None:
    row = mapped(start_at="")
    assert row.errors == () and row.payload is not None and "scheduled_date" not in row.payload


def test_parent_from_the_mapping_defaults(tmp_path: Path) -> None:
    mapping = tmp_path / "devrev.toml"
    mapping.write_text('[defaults]\nparent = "ACC-12"\n', encoding="utf-8")
    row = mapped(options=devrev_options(mapping), parent="")
    assert row.payload is not None and row.payload["parent"] == "ACC-12"


@pytest.mark.parametrize(
    ("value", "native"),
    [
        ("ACC-12345", True),
        ("OPP-7", True),
        ("don:core:dvrv-us-1:devo/0:account/12", True),
        ("don:core:dvrv-us-1:devo/0:opportunity/abc", True),
        ("001A000001XyZ", False),  # a Salesforce account id
        ("don:core:dvrv-us-1:devo/0:engagement/3", False),  # not an account
        ("acc-12", False),
    ],
)
def test_a_devrev_parent_is_told_from_a_crm_account_id(value: str, native: bool) -> None:
    assert is_devrev_parent(value) is native


def test_the_external_ref_is_prefixed_as_for_askelephant() -> None:
    row = mapped(options=devrev_options(prefix="crm-"))
    assert row.payload is not None and row.payload["external_ref"] == "crm-00T1"


def test_required_columns_follow_the_devrev_table(tmp_path: Path) -> None:
    columns = devrev_options().columns
    assert "parent" in columns.required and "title" in columns.required
    assert "members" not in columns.required and "media_url" not in columns.required
    assert columns.unused_columns(["id", "members", "participants"]) == ["participants"]


def test_askelephant_only_fields_are_unknown_in_a_devrev_mapping(tmp_path: Path) -> None:
    mapping = tmp_path / "devrev.toml"
    mapping.write_text('[columns]\nparticipants = "Who"\n', encoding="utf-8")
    with pytest.raises(MappingError, match="unknown field 'participants'"):
        devrev_options(mapping)
