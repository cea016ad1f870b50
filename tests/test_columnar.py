"""A batch mapped column by column is row for row what ``map_row`` makes of it: the same
payloads, errors, messages, skips and ids, on every manifest of the suite and on rows made
of plain and awkward values alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.errors import ImporterError
from importer.read.manifest import ManifestRow, read_manifest
from importer.rows.columnar import index_entries, map_batch
from importer.rows.dates import DateStyle
from importer.rows.init import propose_mapping, render_mapping
from importer.rows.mapping import ColumnMapping, load_mapping
from importer.rows.validate import MappedRow, MappingOptions, map_row
from importer.settings import SourceOptions

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = sorted(
    path
    for folder in (ROOT / "manifests", ROOT / "tests" / "exports", ROOT / "tests" / "hostile")
    for path in folder.iterdir()
    if path.suffix in (".csv", ".xlsx", ".parquet") and path.is_file()
)


def row_by_row(batch: list[ManifestRow], options: MappingOptions) -> list[MappedRow]:
    return [
        map_row(row.cells, row.row_number, options, structural_problem=row.problem) for row in batch
    ]


def assert_same(mapped: list[MappedRow], batch: list[ManifestRow], options: MappingOptions) -> None:
    """The rows map_row makes, and the hashes it would keep (the batch mapper takes them
    another way for rows of text alone)."""
    expected = row_by_row(batch, options)
    assert mapped == expected
    assert [row.payload_hash for row in mapped] == [row.payload_hash for row in expected]


def assert_entries_same(batch: list[ManifestRow], options: MappingOptions) -> bool:
    """``index_entries``: map_row's rows when one is not plain, else what the index keeps of
    each (all of them valid, with nothing to skip; no payload hash). Whether it gave
    entries."""
    found = index_entries(batch, options)
    expected = row_by_row(batch, options)
    if found and isinstance(found[0], MappedRow):
        assert_same(found, batch, options)  # type: ignore[arg-type]
        return False
    assert all(row.valid and row.skip_reason is None for row in expected)
    assert found == [
        (r.external_id, r.row_number, None, r.source_id, r.payload["media_url"])
        for r in expected
        if r.payload is not None
    ]
    return True


def guessed_mapping(manifest: Path, folder: Path) -> ColumnMapping | None:
    """The mapping ``importer init`` writes for the file, read back; None if it cannot."""
    try:
        text = render_mapping(propose_mapping(manifest, SourceOptions()), str(manifest))
        path = folder / f"{manifest.stem}.toml"
        path.write_text(text, encoding="utf-8")
        return load_mapping(path)
    except ImporterError:
        return None


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_every_manifest_maps_the_same_by_column_as_row_by_row(
    manifest: Path, tmp_path: Path
) -> None:
    choices = [
        MappingOptions(timezone="America/New_York", source_system="salesforce"),
        MappingOptions(
            timezone="Europe/Berlin",
            prefix="crm:",
            skip_without_media=True,
            dates=DateStyle(order="dayfirst"),
        ),
    ]
    guessed = guessed_mapping(manifest, tmp_path)
    if guessed is not None:
        zone = guessed.timezone or "UTC"
        choices.append(MappingOptions(timezone=zone, source_system="hubspot", columns=guessed))
    try:
        batches = list(read_manifest(manifest, 7))
    except ImporterError:
        pytest.skip("the file itself is refused before any row is mapped")
    for options in choices:
        for batch in batches:
            assert_same(map_batch(batch, options), batch, options)
            assert_entries_same(batch, options)


def test_the_sample_manifest_is_mostly_plain_rows_mapped_by_column() -> None:
    """The comparison above is not between two calls of map_row: plain rows are built by
    the batch mapper itself (a row of map_row's would carry its cached hash)."""
    batch = next(read_manifest(ROOT / "manifests" / "sample.csv", 500))
    options = MappingOptions(timezone="UTC", source_system="salesforce")
    mapped = map_batch(batch, options)
    plain = [row for row in mapped if row.valid]
    assert len(plain) >= 40
    assert_same(mapped, batch, options)
    valid = [r for r in batch if r.row_number in {row.row_number for row in plain}]
    assert assert_entries_same(valid[:20], options)  # a plan's index keeps entries alone
    assert not assert_entries_same(batch, options)


PLAIN = {
    "id": st.sampled_from(["7", " 00T5 ", "a-1|b"]),
    "type": st.sampled_from(["call", " MEETING ", "Call"]),
    "title": st.sampled_from(["Intro", " Discovery call ", "Réunion 😀"]),
    "media_url": st.sampled_from(
        ["https://media.example.com/a.mp3", "https://cdn.x.io/r/1?sig=abc&t=2#x", "https://X.IO"]
    ),
    "start_at": st.sampled_from(
        ["2024-03-01 10:00", "2024-07-01T23:59:59", "2024-03-01T10:00:00+02:00", "3/5/2024 14:30"]
    ),
    "participants": st.sampled_from(
        ["Ana Ng <ana@acme.com>; Ben Wu <ben@acme.com>", "ana@acme.com", "", "<b@x.io>"]
    ),
    "source_system": st.sampled_from(["salesforce", "", " hubspot "]),
    "is_private": st.sampled_from(["", "yes", "False"]),
    "contact_ids": st.sampled_from(["", "cnt_1, cnt_2", "[]"]),
    "transcript_text": st.sampled_from(["", "Hello.\nBye."]),
    "transcript_path": st.just(""),
}
AWKWARD = {
    "id": ["", " ", "1.23457E+15", "a\u200bb", "x" * 490, "x" * 501, "\udce9"],
    "type": ["memo", "", "CALLS"],
    "title": ["", "  ", "x" * 501, "x" * 500, "Ana\x00"],
    "media_url": [
        "",
        "https://media.example.com/a\u200bb.mp3",  # a hidden character in the path
        "http://x.io/a",
        "https://localhost/a",
        "https://10.0.0.1/a",
        "https://127.1/a",
        "https://[::1]/a",
        "https://u:p@x.io/a",
        "https://x.io/@a",
        "https://x.io/a b",
        "https://x.io:8443/a",
        "https://x.io:bad/a",
        "HTTPS://x.io/a",
        "https://x..io/a",
        "https:///a",
        "https://x.io/\u200b",
        "https://printer.local/a",
    ],
    "start_at": [
        "",
        "2024-03-10 02:30",
        "2024-11-03 01:30",
        "2024-02-30 10:00",
        "1989-12-31 23:30",
        "2100-12-31 23:30",
        "2101-01-01 00:30",
        "2024-03-01 24:00",
        "2024-03-01 10:00 EST",
        "2024-03-01",
        "05/03/2024 10:00",
        "1709287200",
        "٢٠٢٤-03-01 10:00",
    ],
    "participants": [
        "Ng, Ana <a@x.io>",
        "Ana <a@x>",
        "12 <a@x.io>",
        "12",
        "Ana <a@x.io>;",
        " ; ",
        '[{"name": "A"}]',
        "Ana <a@x.io>\nBen <b@x.io>",
        '"Ng Ana" <a@x.io>',
        "Ana (a@x.io)",
        "Ana\u00a0<a@x.io>",
        "{",
    ],
    "source_system": ["x" * 101, "sales\u200bforce"],
    "is_private": ["maybe", " TRUE "],
    "contact_ids": ["cnt_1 xyz", "[1]", "[", "cnt_1;cnt_1"],
    "transcript_text": [" ", "x" * 900_001],
    "transcript_path": ["notes/1.txt"],
}


def awkward(field_name: str) -> st.SearchStrategy[tuple[str, str]]:
    value = st.one_of(st.sampled_from(AWKWARD[field_name]), st.text(max_size=8))
    return st.tuples(st.just(field_name), value)


plain_rows = st.fixed_dictionaries(PLAIN)
# Mostly plain rows, some with one or two awkward cells: an awkward cell in a row whose
# other cells are plain is what tells a wrong shortcut from map_row.
rows = st.builds(
    lambda row, spoilt: {**row, **dict(spoilt)},
    plain_rows,
    st.lists(st.sampled_from(list(PLAIN)).flatmap(awkward), max_size=2),
)
option_choices = st.builds(
    MappingOptions,
    source_system=st.sampled_from([None, "salesforce"]),
    prefix=st.sampled_from([None, None, "crm:", "bad\u200b:"]),
    timezone=st.sampled_from(["UTC", "America/New_York", "Australia/Lord_Howe", None]),
    skip_without_media=st.booleans(),
    dates=st.sampled_from([DateStyle(), DateStyle(order="dayfirst"), DateStyle(scanned=10)]),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(rows, min_size=1, max_size=5), option_choices, st.sampled_from([None, "short"]))
def test_generated_rows_map_the_same_by_column(
    cells: list[dict[str, str]], options: MappingOptions, problem: str | None
) -> None:
    batch = [ManifestRow(n, row, problem if n == 3 else None) for n, row in enumerate(cells, 2)]
    assert_same(map_batch(batch, options), batch, options)
    assert_entries_same(batch, options)


def test_joined_people_and_value_maps_map_the_same_by_column() -> None:
    columns = ColumnMapping(
        columns={
            "id": "Id",
            "type": "Kind",
            "title": "Subject",
            "media_url": "Recording",
            "start_at": "Date + Time",
            "participants": "Prospect + Rep",
            "source_system": "source_system",
        },
        joined={"start_at": ("Date", "Time"), "participants": ("Prospect", "Rep")},
        defaults={"source_system": "outreach"},
        values={"type": {"Inbound": "CALL", "Video": "MEETING"}},
    )
    options = dataclasses.replace(MappingOptions(timezone="UTC"), columns=columns)
    base = {
        "Id": "1",
        "Kind": "inbound",
        "Subject": "Call",
        "Recording": "https://m.example.com/1.mp3",
        "Date": "2024-03-01",
        "Time": "10:00",
        "Prospect": "ana@acme.com",
        "Rep": "Ben <ben@acme.com>; ana@acme.com",
    }
    batch = [
        ManifestRow(2, base),
        ManifestRow(3, {**base, "Kind": "Video", "Rep": "Ben <ben@acme>"}),
        ManifestRow(4, {**base, "Time": ""}),
    ]
    mapped = map_batch(batch, options)
    assert_same(mapped, batch, options)
    assert mapped[0].payload is not None
    assert mapped[0].payload["participants"] == [
        {"email": "ana@acme.com"},
        {"name": "Ben", "email": "ben@acme.com"},
    ]
    assert [row.valid for row in mapped] == [True, False, False]
