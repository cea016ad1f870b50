"""A plan reads batches of plain records column by column (``PlainColumns``): the same rows
as ``read_manifest`` gives, the same fields, and the same index entries or mapped rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.errors import ImporterError
from importer.read.manifest import (
    Batch,
    ManifestRow,
    PlainColumns,
    read_manifest,
    read_manifest_columns,
)
from importer.rows.columnar import index_entries
from importer.rows.dates import DateStyle
from importer.rows.mapping import ColumnMapping
from importer.rows.validate import MappedRow, MappingOptions
from tests.factories import row, write_manifest
from tests.test_columnar import MANIFESTS, assert_same


def rows_of(batch: Batch) -> list[ManifestRow]:
    return batch.rows() if isinstance(batch, PlainColumns) else batch


def read_both(path: Path, size: int) -> tuple[list[Batch], list[list[ManifestRow]]]:
    return list(read_manifest_columns(path, size)), list(read_manifest(path, size))


OPTIONS = [
    MappingOptions(timezone="America/New_York", source_system="salesforce"),
    MappingOptions(
        timezone="Europe/Berlin", prefix="crm:", skip_without_media=True, dates=DateStyle()
    ),
]


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_every_manifest_reads_and_maps_the_same_column_by_column(manifest: Path) -> None:
    try:
        by_columns, by_rows = read_both(manifest, 7)
    except ImporterError:
        pytest.skip("the file itself is refused before any row is read")
    assert [rows_of(batch) for batch in by_columns] == by_rows
    for batch in by_columns:
        if not isinstance(batch, PlainColumns):
            continue
        assert [batch.row(i) for i in range(len(batch))] == batch.rows()
        for options in OPTIONS:
            found = index_entries(batch, options)
            expected = index_entries(batch.rows(), options)
            assert found == expected
            if found and isinstance(found[0], MappedRow):
                assert_same(found, batch.rows(), options)  # type: ignore[arg-type]


def test_plain_csv_and_parquet_batches_are_read_column_by_column(tmp_path: Path) -> None:
    rows = [row(n) for n in range(25)]
    csv_path = write_manifest(tmp_path / "m.csv", rows)
    parquet_path = tmp_path / "m.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet_path)
    # The CSV reader's batches are cut only at the default size (others are made of rows).
    for path, size, sizes in ((csv_path, 1000, [25]), (parquet_path, 10, [10, 10, 5])):
        by_columns, by_rows = read_both(path, size)
        assert [len(batch) for batch in by_columns] == sizes
        assert all(isinstance(batch, PlainColumns) for batch in by_columns)
        assert [batch.rows() for batch in by_columns] == by_rows  # type: ignore[union-attr]
        entries = index_entries(by_columns[0], MappingOptions(timezone="UTC"))
        assert [entry[:2] for entry in entries] == [  # type: ignore[index]
            (f"crm:rec-{n}", by_rows[0][n].row_number) for n in range(sizes[0])
        ]


@pytest.mark.parametrize("size", [7, 999, 1000, 5000])
def test_batches_are_batch_size_long_whatever_records_are_dropped(
    tmp_path: Path, size: int
) -> None:
    """As ``read_manifest`` cuts them (a run's batches are what it records before a fault):
    a blank line's chunk of 999 records joins the next chunk's columns, and each batch of
    plain records alone stays columns; one with a record wider than the header is rows."""
    lines = ["id,type,title", *[f"{n},CALL,t{n}" for n in range(2500)]]
    lines[500] = ""  # a blank line: its chunk of a thousand records holds 999
    path = tmp_path / "m.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    by_columns, by_rows = read_both(path, size)
    assert [len(b) for b in by_columns] == [len(b) for b in by_rows]
    assert [len(b) for b in by_rows][:-1] == [size] * (len(by_rows) - 1)
    assert all(isinstance(b, PlainColumns) for b in by_columns)
    assert [r for b in by_columns for r in rows_of(b)] == [r for b in by_rows for r in b]
    lines[1700] = "1699,CALL,t,extra"  # a record wider than the header
    path.write_text("\n".join(lines), encoding="utf-8")
    by_columns, by_rows = read_both(path, size)
    assert [len(b) for b in by_columns] == [len(b) for b in by_rows]
    assert [r for b in by_columns for r in rows_of(b)] == [r for b in by_rows for r in b]
    odd = [b for b in by_columns if any(r.row_number == 1701 for r in rows_of(b))]
    assert len(odd) == 1 and isinstance(odd[0], list)


def test_a_batch_with_an_odd_record_or_a_blank_first_cell_is_read_as_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.csv"
    path.write_text("id,type,title\n1,CALL,a\n2,CALL,b,extra\n3,CALL,c\n", encoding="utf-8")
    (batch,) = read_manifest_columns(path, 10)
    assert isinstance(batch, list) and batch[1].problem
    parquet_path = tmp_path / "m.parquet"
    table = pa.table({"title": ["", "t", None], "id": ["1", "2", None]})
    pq.write_table(table, parquet_path)
    (batch,) = read_manifest_columns(parquet_path, 10)
    assert isinstance(batch, list) and [r.row_number for r in batch] == [1, 2]


def test_a_row_not_plain_is_mapped_from_its_own_cells(tmp_path: Path) -> None:
    rows = [row(n) for n in range(6)]
    rows[2]["type"] = "memo"
    rows[4]["participants"] = "Ana Ng, Ben Wu <ben@acme.com>"  # not plain, yet valid
    rows[5]["start_at"] = "soon"
    path = write_manifest(tmp_path / "m.csv", rows)
    (batch,) = read_manifest_columns(path)
    assert isinstance(batch, PlainColumns)
    options = MappingOptions(timezone="UTC")
    mapped = index_entries(batch, options)
    assert_same(mapped, batch.rows(), options)  # type: ignore[arg-type]
    assert [r.valid for r in mapped] == [True, True, False, True, True, False]  # type: ignore[union-attr]


names = st.sampled_from(["id", "Id", "type", "Date", "Time", "Kind", "x"])
cells = st.sampled_from(["", " ", "7", "Inbound", "2024-03-01", "10:00", " call "])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(names, min_size=1, max_size=6),
    st.data(),
    st.sampled_from(
        [
            ColumnMapping(),
            ColumnMapping(
                columns={"id": "Id", "type": "Kind", "start_at": "Date + Time"},
                joined={"start_at": ("Date", "Time"), "id": ("id", "Id")},
                defaults={"source_system": "outreach", "type": "CALL"},
                values={"type": {"Inbound": "CALL"}},
            ),
        ]
    ),
)
def test_fields_read_from_columns_are_those_read_from_rows(
    header: list[str], data: st.DataObject, columns: ColumnMapping
) -> None:
    """Names used twice (the last cell wins, as in a row's dict), columns missing, joined
    columns, value maps and defaults."""
    records = data.draw(st.lists(st.lists(cells, min_size=len(header), max_size=len(header))))
    rows = [dict(zip(header, record, strict=True)) for record in records]
    by_column = list(zip(*records, strict=True)) or [() for _ in header]
    assert columns.field_columns_of(header, by_column) == columns.field_columns(rows)
