"""map_row and its parsers: every documented rule, the exact column blamed, and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.errors import InvalidCell, TranscriptUnavailable
from importer.rows import contract
from importer.rows.dates import parse_start_at
from importer.rows.hashes import canonical_json
from importer.rows.mapping import FIELDS, ColumnMapping
from importer.rows.participants import parse_participants
from importer.rows.validate import MappedRow, MappingOptions, map_row, parse_contact_ids

VALID: dict[str, str] = {
    "id": "00T1",
    "type": "CALL",
    "title": "Discovery call",
    "media_url": "https://media.example.com/calls/1.mp3",
    "start_at": "2024-03-05T14:30:00Z",
    "source_system": "salesforce",
}
OPTIONS = MappingOptions()


def mapped(
    options: MappingOptions = OPTIONS,
    read_transcript: Any = None,
    **cells: str,
) -> MappedRow:
    return map_row({**VALID, **cells}, 7, options, file="m.csv", read_transcript=read_transcript)


def assert_only_error(row: MappedRow, column: str, rule: str | None = None) -> None:
    """The row is invalid because of exactly this column (and rule)."""
    assert row.payload is None
    assert not row.valid
    assert [e.column for e in row.errors] == [column], row.errors
    error = row.errors[0]
    assert (error.file, error.row) == ("m.csv", 7)
    if rule is not None:
        assert error.rule == rule, error
    assert column in str(error) and "row 7" in str(error) and "m.csv" in str(error)


def test_a_valid_row_maps_to_the_full_payload() -> None:
    row = mapped()
    assert row.valid and row.errors == ()
    assert row.payload == {
        "source_system": "salesforce",
        "external_id": "salesforce:00T1",
        "type": "CALL",
        "title": "Discovery call",
        "media_url": "https://media.example.com/calls/1.mp3",
        "run_workflows": False,
        "start_at": "2024-03-05T14:30:00+00:00",
    }
    assert row.external_id == "salesforce:00T1"
    assert row.contact_ids is None
    assert row.payload_hash is not None and len(row.payload_hash) == 64


# -- id, external_id, prefix, source_system -----------------------------------------------


@pytest.mark.parametrize("value", ["", "   "])
def test_blank_id_names_the_id_column(value: str) -> None:
    row = mapped(id=value)
    assert_only_error(row, "id", "required")
    assert row.external_id is None


def test_external_id_over_500_characters_after_the_prefix() -> None:
    prefix_len = len("salesforce:")
    assert mapped(id="x" * (500 - prefix_len)).valid
    row = mapped(id="x" * (501 - prefix_len))
    assert_only_error(row, "id", "too_long")
    assert "external_id" in row.errors[0].message and "501" in row.errors[0].message


def test_prefix_default_override_and_empty() -> None:
    assert mapped().external_id == "salesforce:00T1"
    assert mapped(MappingOptions(prefix="crm-")).external_id == "crm-00T1"
    assert mapped(MappingOptions(prefix="")).external_id == "00T1"
    # An empty prefix gives the id its full 500 characters.
    assert mapped(MappingOptions(prefix=""), id="x" * 500).valid
    assert_only_error(mapped(MappingOptions(prefix=""), id="x" * 501), "id", "too_long")


def test_source_system_over_100_characters() -> None:
    assert mapped(source_system="s" * 100).valid
    row = mapped(source_system="s" * 101)
    assert "source_system" in [e.column for e in row.errors]
    assert row.payload is None
    assert any(e.rule == "too_long" for e in row.errors if e.column == "source_system")


def test_blank_source_system_needs_the_option() -> None:
    row = mapped(source_system="")
    assert "source_system" in [e.column for e in row.errors]
    assert "--source-system" in row.errors[0].message
    row = mapped(MappingOptions(source_system="hubspot"), source_system="")
    assert row.valid
    assert row.payload is not None and row.payload["source_system"] == "hubspot"
    assert row.external_id == "hubspot:00T1"


def test_the_row_source_system_wins_over_the_option() -> None:
    row = mapped(MappingOptions(source_system="hubspot"))
    assert row.payload is not None and row.payload["source_system"] == "salesforce"


# -- type and title -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("CALL", "CALL"), ("call", "CALL"), (" Call ", "CALL"), ("meeting", "MEETING")],
)
def test_type_is_case_insensitive(value: str, expected: str) -> None:
    row = mapped(type=value)
    assert row.payload is not None and row.payload["type"] == expected


@pytest.mark.parametrize("value", ["VIDEO", "video", "", "EMAIL", "CALLS"])
def test_other_types_are_rejected(value: str) -> None:
    assert_only_error(mapped(type=value), "type", "invalid_choice")


@pytest.mark.parametrize(("title", "rule"), [("", "required"), ("   ", "required")])
def test_empty_title(title: str, rule: str) -> None:
    assert_only_error(mapped(title=title), "title", rule)


def test_title_length_boundary() -> None:
    assert mapped(title="t" * 500).valid
    assert_only_error(mapped(title="t" * 501), "title", "too_long")


# -- media_url ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://media.example.com/a.mp3", "https_required"),
        ("ftp://media.example.com/a.mp3", "https_required"),
        ("media.example.com/a.mp3", "https_required"),
        ("https:///a.mp3", "invalid_url"),
        ("https://", "invalid_url"),
        ("https://[::1/a.mp3", "invalid_url"),
        ("https://10.0.0.5/a.mp3", "private_address"),
        ("https://10.255.255.255/a.mp3", "private_address"),
        ("https://172.16.0.1/a.mp3", "private_address"),
        ("https://172.31.255.254/a.mp3", "private_address"),
        ("https://192.168.1.10/a.mp3", "private_address"),
        ("https://127.0.0.1/a.mp3", "private_address"),
        ("https://127.8.9.10/a.mp3", "private_address"),
        ("https://169.254.169.254/latest/meta-data", "private_address"),
        ("https://[::1]/a.mp3", "private_address"),
        ("https://[fe80::1]/a.mp3", "private_address"),
        ("https://[fe80::1%25eth0]/a.mp3", "private_address"),
        ("https://localhost/a.mp3", "private_address"),
        ("https://LOCALHOST./a.mp3", "private_address"),
        ("https://media.localhost/a.mp3", "private_address"),
        ("https://[::ffff:127.0.0.1]/a.mp3", "private_address"),
        ("https://[::ffff:10.0.0.1]/a.mp3", "private_address"),
        ("https://2130706433/a.mp3", "private_address"),
        ("https://0x7f000001/a.mp3", "private_address"),
        ("https://0X7F000001/a.mp3", "private_address"),
        ("https://127.1/a.mp3", "private_address"),
        ("https://127.0.0.1./a.mp3", "private_address"),
        ("https://user:secret@media.example.com/a.mp3", "credentials"),
        ("https://token@media.example.com/a.mp3", "credentials"),
    ],
)
def test_media_url_rules(url: str, rule: str) -> None:
    assert_only_error(mapped(media_url=url), "media_url", rule)


@pytest.mark.parametrize(
    "url",
    [
        "https://media.example.com/a.mp3",
        "HTTPS://media.example.com/a.mp3",
        "https://8.8.8.8/a.mp3",
        "https://172.32.0.1/a.mp3",
        "https://[2606:4700::1111]/a.mp3",
        "https://media.example.com:8443/a.mp3?sig=abc",
    ],
)
def test_public_https_media_urls_are_accepted(url: str) -> None:
    assert mapped(media_url=url).valid


def test_blank_media_url_is_required() -> None:
    assert_only_error(mapped(media_url=""), "media_url", "required")


# -- start_at -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "timezone", "expected"),
    [
        ("2024-03-05T14:30:00Z", "UTC", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05t14:30:00z", "UTC", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05T15:30:00+01:00", "UTC", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05T09:30:00-05:00", "Europe/Paris", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05T14:30:00", "UTC", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05T09:30:00", "America/New_York", "2024-03-05T14:30:00+00:00"),
        ("2024-07-05 10:30", "America/New_York", "2024-07-05T14:30:00+00:00"),
        ("2024-03-05 14:30", "UTC", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05 14:30:00", "UTC", "2024-03-05T14:30:00+00:00"),
        ("1709649000", "America/New_York", "2024-03-05T14:30:00+00:00"),
        ("1709649000000", "UTC", "2024-03-05T14:30:00+00:00"),
        ("1709649000.5", "UTC", "2024-03-05T14:30:00.500+00:00"),
        ("2024-03-05T14:30:00.250Z", "UTC", "2024-03-05T14:30:00.250+00:00"),
    ],
)
def test_start_at_forms(value: str, timezone: str, expected: str) -> None:
    assert parse_start_at(value, timezone) == expected
    row = mapped(MappingOptions(timezone=timezone), start_at=value)
    assert row.payload is not None and row.payload["start_at"] == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "blank"),
        ("yesterday", "not a date and time"),
        ("05/03/2024 14:30", "pass --dayfirst or --monthfirst"),
        ("2024-13-45T25:00:00Z", "no real date or time"),
        ("2024-03-05", "no time of day"),
        ("1200", "outside"),
        ("-86400", "outside"),
        ("9999-12-31T23:00:00", "outside"),
        ("2100-12-31T23:00:00-05:00", "outside"),
        ("9" * 400, "epoch"),
    ],
)
def test_bad_start_at_names_the_column(value: str, fragment: str) -> None:
    with pytest.raises(InvalidCell, match=fragment):
        parse_start_at(value, "UTC")
    assert_only_error(mapped(start_at=value), "start_at", "date_time")


# -- is_private ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("Y", True),
        ("1", True),
        ("t", True),
        ("false", False),
        ("No", False),
        ("n", False),
        ("0", False),
        ("F", False),
    ],
)
def test_is_private_words(value: str, expected: bool) -> None:
    row = mapped(is_private=value)
    assert row.payload is not None and row.payload["is_private"] is expected


def test_blank_is_private_is_left_to_the_workspace() -> None:
    row = mapped(is_private="  ")
    assert row.payload is not None and "is_private" not in row.payload


@pytest.mark.parametrize("value", ["maybe", "2", "private"])
def test_other_is_private_values_are_rejected(value: str) -> None:
    assert_only_error(mapped(is_private=value), "is_private", "boolean")


# -- participants -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (
            '[{"name": "Ana", "email": "ana@acme.com"}, {"email": "bo@acme.com"}]',
            [{"name": "Ana", "email": "ana@acme.com"}, {"email": "bo@acme.com"}],
        ),
        (
            '[{"name": "Ana", "is_owner": true, "phone": 5551234}, {"name": "Bo"}]',
            [{"name": "Ana", "phone": "5551234", "is_owner": True}, {"name": "Bo"}],
        ),
        (
            "Ana Lima <ana@acme.com>; Bo <bo@acme.com>",
            [{"name": "Ana Lima", "email": "ana@acme.com"}, {"name": "Bo", "email": "bo@acme.com"}],
        ),
        ('"Lima, Ana" <ana@acme.com>', [{"name": "Lima, Ana", "email": "ana@acme.com"}]),
        ("ana@acme.com; Bo", [{"email": "ana@acme.com"}, {"name": "Bo"}]),
        (
            "Ana Ng (ana@acme.com), Ben Wu",
            [{"name": "Ana Ng", "email": "ana@acme.com"}, {"name": "Ben Wu"}],
        ),
        ("ana@acme.com, bo@acme.com", [{"email": "ana@acme.com"}, {"email": "bo@acme.com"}]),
        (
            '["Ana Ng <ana@acme.com>", "Ben Wu"]',
            [{"name": "Ana Ng", "email": "ana@acme.com"}, {"name": "Ben Wu"}],
        ),
        (
            '[{"name": "Ana Ng", "emailAddress": "ana@acme.com", "speakerId": "7"}]',
            [{"name": "Ana Ng", "email": "ana@acme.com"}],
        ),
        ("", []),
        ("[]", []),
    ],
)
def test_participants_forms(cell: str, expected: list[dict[str, Any]]) -> None:
    assert parse_participants(cell) == expected
    row = mapped(participants=cell)
    assert row.payload is not None
    assert row.payload.get("participants", []) == expected


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ('[{"name": "Ana"', "not valid JSON"),
        ('{"name": "Ana"}', "not a single object"),
        ("[1]", "not an object"),
        ("Ng, Ana <ana@acme.com>", "separate people with ';'"),
        ("Ana <ana@acme.com>; Ben <ben@acme>", r"participant 2 \('Ben <ben@acme>'\): 'ben@acme'"),
        ("[{}]", "neither a name nor an email"),
        ('[{"name": " ", "email": ""}]', "neither a name nor an email"),
        ('[{"phone": "555"}]', "neither a name nor an email"),
        ('[{"email": "not-an-email"}]', "not a valid email"),
        ("Ana <ana@@acme>", "not a valid email"),
        ('[{"name": 5}]', "name must be text"),
        ('[{"name": "A", "is_owner": true}, {"name": "B", "is_owner": true}]', "more than one"),
        ('[{"name": "A", "is_owner": "yes"}]', "is_owner must be true or false"),
        ('[{"name": "A", "phone": {"n": 1}}]', "phone must be text"),
        ('[{"name": "\\ud83d"}]', "unpaired"),
        ("[" * 100_000, "cannot be read as JSON"),
        ("[1" + "0" * 5000 + "]", "cannot be read as JSON"),
    ],
)
def test_bad_participants_name_the_column(cell: str, fragment: str) -> None:
    with pytest.raises(InvalidCell, match=fragment):
        parse_participants(cell)
    assert_only_error(mapped(participants=cell), "participants", "participants")


# -- transcripts --------------------------------------------------------------------------


def test_transcript_character_limit() -> None:
    exact = mapped(transcript_text="a" * contract.TRANSCRIPT_MAX_CHARS)
    assert exact.payload is not None
    assert len(exact.payload["transcript_text"]) == 900_000
    row = mapped(transcript_text="a" * 900_001)
    assert_only_error(row, "transcript_text", "too_long")


def test_cjk_transcript_under_the_character_limit_but_over_the_byte_limit() -> None:
    text = "語" * 316_667  # 950,001 bytes in UTF-8
    assert len(text) < contract.TRANSCRIPT_MAX_CHARS
    assert_only_error(mapped(transcript_text=text), "transcript_text", "too_large")
    assert mapped(transcript_text="語" * 316_666).valid  # 949,998 bytes


def test_blank_transcript_is_omitted() -> None:
    row = mapped(transcript_text="  \n ")
    assert row.payload is not None and "transcript_text" not in row.payload


class DictReader:
    """A transcript reader over a dict: the tests' file system."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.calls: list[str] = []

    def __call__(self, path: str) -> str:
        self.calls.append(path)
        if path not in self.files:
            raise TranscriptUnavailable(f"{path!r} not found")
        return self.files[path]


def test_transcript_path_is_read_through_the_injected_reader() -> None:
    reader = DictReader({"t/1.txt": "Ana: hello"})
    row = mapped(read_transcript=reader, transcript_path=" t/1.txt ")
    assert reader.calls == ["t/1.txt"]
    assert row.payload is not None and row.payload["transcript_text"] == "Ana: hello"


def test_missing_transcript_file_names_transcript_path() -> None:
    row = mapped(read_transcript=DictReader({}), transcript_path="t/missing.txt")
    assert_only_error(row, "transcript_path", "unreadable")
    assert "t/missing.txt" in row.errors[0].message


def test_transcript_path_without_a_reader() -> None:
    assert_only_error(mapped(transcript_path="t/1.txt"), "transcript_path", "unavailable")


def test_transcript_file_over_the_limit_names_transcript_path() -> None:
    reader = DictReader({"big.txt": "b" * 900_001})
    row = mapped(read_transcript=reader, transcript_path="big.txt")
    assert_only_error(row, "transcript_path", "too_long")


def test_both_inline_and_path_transcript() -> None:
    reader = DictReader({"t/1.txt": "file"})
    row = mapped(read_transcript=reader, transcript_text="inline", transcript_path="t/1.txt")
    assert_only_error(row, "transcript_path", "ambiguous")
    assert reader.calls == []


# -- contact_ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("", None),
        ("   ", None),
        ("[]", ()),
        ('["cnt_a1", "cnt_b2"]', ("cnt_a1", "cnt_b2")),
        ("cnt_a1, cnt_b2; cnt_a1", ("cnt_a1", "cnt_b2")),
        ("cnt_a1 cnt_b2", ("cnt_a1", "cnt_b2")),
    ],
)
def test_contact_ids(cell: str, expected: tuple[str, ...] | None) -> None:
    assert parse_contact_ids(cell) == expected
    row = mapped(contact_ids=cell)
    assert row.valid and row.contact_ids == expected
    assert row.payload is not None and "contact_ids" not in row.payload


@pytest.mark.parametrize(
    "cell",
    [
        "usr_1",
        "cnt_",
        "cnt_a-b",
        '["cnt_a", 5]',
        '{"a": 1}',
        '["cnt_a"',
        '["cnt_a\\n"]',
        "[" * 5000,
    ],
)
def test_bad_contact_ids(cell: str) -> None:
    with pytest.raises(InvalidCell):
        parse_contact_ids(cell)
    row = mapped(contact_ids=cell)
    assert_only_error(row, "contact_ids", "contact_ids")
    assert row.contact_ids is None


# -- options and mapping ------------------------------------------------------------------


def test_run_workflows_false_by_default_true_with_the_option() -> None:
    assert (mapped().payload or {})["run_workflows"] is False
    assert (mapped(MappingOptions(run_workflows=True)).payload or {})["run_workflows"] is True


def test_mapping_renames_columns_and_errors_name_the_manifest_column() -> None:
    columns = {name: name for name in FIELDS}
    columns.update({"id": "Activity ID", "title": "Subject"})
    options = MappingOptions(columns=ColumnMapping(columns=columns))
    cells = {k: v for k, v in VALID.items() if k not in ("id", "title")}
    row = map_row({**cells, "Activity ID": "9", "Subject": "Hi"}, 3, options)
    assert row.payload is not None and row.external_id == "salesforce:9"
    assert row.payload["title"] == "Hi"
    bad = map_row({**cells, "Activity ID": "9", "Subject": ""}, 3, options)
    assert [e.column for e in bad.errors] == ["Subject"]


def test_mapping_defaults_fill_blank_and_absent_cells() -> None:
    defaults = {"type": "MEETING", "source_system": "gong", "is_private": "true"}
    options = MappingOptions(columns=ColumnMapping(defaults=defaults))
    cells = {k: v for k, v in VALID.items() if k not in ("type", "source_system")}
    row = map_row({**cells, "type": "  "}, 2, options)
    assert row.payload is not None
    assert row.payload["type"] == "MEETING"
    assert row.payload["source_system"] == "gong"
    assert row.payload["is_private"] is True
    assert row.external_id == "gong:00T1"
    # A filled cell wins over the default.
    row = map_row({**cells, "type": "call", "is_private": "no"}, 2, options)
    assert row.payload is not None
    assert (row.payload["type"], row.payload["is_private"]) == ("CALL", False)


@pytest.mark.parametrize("title", ["caf\udce9", "caf\ud800"])
def test_undecodable_bytes_blame_only_that_column_and_cells_stay_valid_text(title: str) -> None:
    row = mapped(title=title)
    assert_only_error(row, "title", "encoding")
    assert "UTF-8" in row.errors[0].message
    assert row.cells["title"] == "caf\ufffd"
    row.cells["title"].encode("utf-8")  # storable in the ledger and errors.csv


def test_structural_problem_makes_the_row_invalid() -> None:
    row = map_row(VALID, 4, OPTIONS, file="m.csv", structural_problem="has 9 cells")
    assert [e.column for e in row.errors] == ["id"]
    assert "has 9 cells" in row.errors[0].message


def test_every_broken_rule_of_a_row_is_reported() -> None:
    row = mapped(type="VIDEO", title="", media_url="http://x.example.com/a.mp3", start_at="no")
    assert sorted(e.column for e in row.errors) == ["media_url", "start_at", "title", "type"]


# -- properties ---------------------------------------------------------------------------

# Plain text, text with lone surrogates (what undecodable CSV bytes become), and the shapes
# the parsers branch on.
cell_text = (
    st.text(max_size=40)
    | st.text(st.characters(exclude_categories=()), max_size=10)
    | st.sampled_from(
        [
            "",
            " ",
            "[",
            "{",
            "[{}]",
            "[[[",
            "0x7f.1",
            "true",
            "1e9",
            "cnt_1",
            "https://[",
            "https://a:b",
            "caf\udce9",
            '[{"name": "\\ud83d"}]',
            "[1" + "0" * 5000 + "]",
        ]
    )
)


@settings(max_examples=300, deadline=None)
@given(cells=st.fixed_dictionaries({name: cell_text for name in FIELDS}))
def test_map_row_never_raises(cells: dict[str, str]) -> None:
    reader = DictReader({})
    row = map_row(cells, 2, MappingOptions(timezone="America/New_York"), read_transcript=reader)
    if row.payload is None:
        assert len(row.errors) >= 1
        assert all(e.column in FIELDS for e in row.errors)
    else:
        assert row.errors == () and row.valid
        assert row.payload["external_id"] == row.external_id
        assert row.payload["type"] in contract.ENGAGEMENT_TYPES
        assert contract.check_media_url(row.payload["media_url"]) is None
        canonical_json(row.payload).encode("utf-8")  # what is sent is valid UTF-8
    # Whatever the cells, what is kept for the ledger encodes as UTF-8.
    for value in row.cells.values():
        value.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(cells=st.fixed_dictionaries({name: cell_text for name in FIELDS}))
def test_valid_payloads_are_accepted_by_the_contract(cells: dict[str, str]) -> None:
    row = map_row({**VALID, **{k: v for k, v in cells.items() if k not in VALID}}, 2, OPTIONS)
    if row.payload is not None:
        payload = row.payload
        assert contract.check_text_length("title", payload["title"], 500) is None
        if "transcript_text" in payload:
            assert contract.check_transcript(payload["transcript_text"]) is None
        # What is sent must be valid UTF-8 (no lone surrogates from JSON escapes).
        canonical_json(payload).encode("utf-8")


def expected_transcript_ok(text: str) -> bool:
    return len(text) <= 900_000 and len(text.encode("utf-8")) <= 950_000


# Building blocks whose repetition lands on either side of both limits.
BLOCKS = ["a", "é", "語", "😀", "a語", "ab😀"]
BOUNDARY_COUNTS = {
    "a": [900_000, 900_001],
    "é": [475_000, 475_001],
    "語": [316_666, 316_667],
    "😀": [237_500, 237_501],
    "a語": [237_499, 237_500, 237_501],
    "ab😀": [158_333, 158_334],
}


@settings(max_examples=60, deadline=None)
@given(
    block=st.sampled_from(BLOCKS),
    delta=st.integers(-2, 2),
    which=st.integers(0, 2),
    tail=st.text(max_size=3),
)
def test_transcript_limits_near_the_boundary(block: str, delta: int, which: int, tail: str) -> None:
    counts = BOUNDARY_COUNTS[block]
    text = block * (counts[which % len(counts)] + delta) + tail
    problem = contract.check_transcript(text)
    assert (problem is None) == expected_transcript_ok(text)
    if problem is not None:
        assert problem.field == "transcript_text"
        assert problem.code == ("too_long" if len(text) > 900_000 else "too_large")


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_small_transcripts_are_always_accepted(text: str) -> None:
    assert contract.check_transcript(text) is None


@pytest.mark.parametrize(
    ("column", "limit", "overhead"),
    [("title", 500, 0), ("source_system", 100, 0), ("id", 500, len("salesforce:"))],
)
@settings(max_examples=40, deadline=None)
@given(extra=st.integers(-5, 5), char=st.sampled_from(["x", "é", "語", "😀"]))
def test_length_limits_count_characters(
    column: str, limit: int, overhead: int, extra: int, char: str
) -> None:
    length = limit - overhead + extra
    row = mapped(OPTIONS, **{column: char * length})
    if overhead + length <= limit:
        assert row.valid, row.errors
    else:
        assert row.payload is None
        assert column in [e.column for e in row.errors]
        assert any(e.rule == "too_long" for e in row.errors)


def test_a_time_skipped_by_a_clock_change_is_an_error() -> None:
    with pytest.raises(InvalidCell, match="does not exist in Europe/Paris"):
        parse_start_at("2024-03-31 02:30", "Europe/Paris")


def test_a_time_that_happens_twice_is_read_as_the_first() -> None:
    # 02:30 on 27 October 2024 happens at +02:00, then again at +01:00.
    assert parse_start_at("2024-10-27 02:30", "Europe/Paris") == "2024-10-27T00:30:00+00:00"


def test_an_excel_serial_date_gets_a_hint() -> None:
    with pytest.raises(InvalidCell, match="Excel serial date"):
        parse_start_at("45356.6041", "UTC")
