"""Reading manifests: CSV with the file's own line numbers, Parquet in batches, bad files."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.errors import ManifestError
from importer.read.csv_dialect import lines_are_short
from importer.read.manifest import ManifestRow, read_columns, read_manifest
from importer.read.parquet import batches_read_at_once, parquet_file
from importer.rows.mapping import ColumnMapping
from importer.rows.validate import MappingOptions, map_row

HEADER = "id,type,title,media_url,start_at,source_system"
ROW = "{id},CALL,{title},https://media.example.com/{id}.mp3,2024-03-05T14:30:00Z,crm"


def rows_of(path: Path, batch_size: int = 1000) -> list[ManifestRow]:
    return [row for batch in read_manifest(path, batch_size) for row in batch]


def write(tmp_path: Path, content: str | bytes, name: str = "m.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_utf8_csv_with_or_without_bom(tmp_path: Path, bom: bytes, newline: bytes) -> None:
    lines = [HEADER, ROW.format(id=1, title="Café ☕"), ROW.format(id=2, title="日本語")]
    path = write(tmp_path, bom + newline.join(line.encode() for line in lines) + newline)
    assert read_columns(path)[0] == "id"  # the BOM is not part of the first name
    rows = rows_of(path)
    assert [(r.row_number, r.cells["id"], r.cells["title"]) for r in rows] == [
        (2, "1", "Café ☕"),
        (3, "2", "日本語"),
    ]
    assert all(r.problem is None for r in rows)


def test_multi_line_cells_keep_the_line_the_record_starts_on(tmp_path: Path) -> None:
    two_lines = '"two\nlines"'
    content = (
        f"{HEADER},transcript_text\n"
        + ROW.format(id=1, title="a")
        + ',"line one\nline two\nline three"\n'
        + ROW.format(id=2, title="b")
        + ",plain\n"
        + ROW.format(id=3, title=two_lines)
        + ',"x\r\ny"\n'
        + ROW.format(id=4, title="d")
        + ",\n"
    )
    rows = rows_of(write(tmp_path, content))
    assert [(r.row_number, r.cells["id"]) for r in rows] == [(2, "1"), (5, "2"), (6, "3"), (9, "4")]
    assert rows[0].cells["transcript_text"] == "line one\nline two\nline three"
    assert rows[2].cells["title"] == "two\nlines"


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    content = (
        f"{HEADER}\n\n{ROW.format(id=1, title='a')}\n,,,,,\n   \n{ROW.format(id=2, title='b')}\n"
    )
    rows = rows_of(write(tmp_path, content))
    assert [(r.row_number, r.cells["id"]) for r in rows] == [(3, "1"), (6, "2")]


def test_too_many_cells_is_a_row_problem(tmp_path: Path) -> None:
    content = (
        f"{HEADER}\n"
        f"{ROW.format(id=1, title='Call, with comma')}\n"
        f"{ROW.format(id=2, title='ok')}\n"
        f"{ROW.format(id=3, title='trailing')},,\n"
    )
    rows = rows_of(write(tmp_path, content))
    assert rows[0].problem is not None and "7 cells" in rows[0].problem
    assert rows[1].problem is None
    assert rows[2].problem is None  # empty extra cells are harmless
    mapped = map_row(
        rows[0].cells, rows[0].row_number, MappingOptions(), structural_problem=rows[0].problem
    )
    assert not mapped.valid and mapped.errors[0].row == 2


def test_short_rows_get_blank_cells(tmp_path: Path) -> None:
    rows = rows_of(write(tmp_path, f"{HEADER}\n1,CALL\n"))
    assert rows[0].cells == {
        "id": "1",
        "type": "CALL",
        "title": "",
        "media_url": "",
        "start_at": "",
        "source_system": "",
    }


def test_latin1_bytes_spoil_only_their_row(tmp_path: Path) -> None:
    content = (
        f"{HEADER}\n".encode()
        + ROW.format(id=1, title="ok").encode()
        + b"\n"
        + ROW.format(id=2, title="caf\xe9").encode("latin-1")
        + b"\n"
        + ROW.format(id=3, title="fine").encode()
        + b"\n"
    )
    rows = rows_of(write(tmp_path, content))
    assert [r.row_number for r in rows] == [2, 3, 4]
    mapped = [map_row(r.cells, r.row_number, MappingOptions(), file="m.csv") for r in rows]
    assert [m.valid for m in mapped] == [True, False, True]
    [error] = mapped[1].errors
    assert (error.row, error.column) == (3, "title")
    assert "UTF-8" in error.message


def test_batches_are_bounded(tmp_path: Path) -> None:
    lines = [HEADER] + [ROW.format(id=n, title="t") for n in range(7)]
    batches = list(read_manifest(write(tmp_path, "\n".join(lines)), batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [r.row_number for b in batches for r in b] == list(range(2, 9))


@pytest.mark.parametrize(
    ("size", "sizes"),
    [
        (0, [1] * 2500),
        (-3, [1] * 2500),
        (999, [999, 999, 502]),
        (1000, [1000, 1000, 500]),
        (1001, [1001, 1001, 498]),
    ],
)
def test_batches_cut_across_the_readers_own(tmp_path: Path, size: int, sizes: list[int]) -> None:
    """The CSV reader reads a thousand records at a time; batches of any size cut across
    them, and a size below one (from a damaged ledger's settings) is one, not a hang."""
    lines = [HEADER] + [ROW.format(id=n, title="t") for n in range(2500)]
    batches = list(read_manifest(write(tmp_path, "\n".join(lines)), batch_size=size))
    assert [len(b) for b in batches] == sizes
    assert [r.row_number for b in batches for r in b] == list(range(2, 2502))


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "is empty"),
        (b"\n\nid,type\n", "no header row"),
        (b"\x00\x01\x02binary\n\x00\x00\n", "not a UTF-8 CSV"),
    ],
)
def test_bad_csv_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ManifestError, match=fragment) as caught:
        rows_of(path)
    assert str(path) in str(caught.value)


def test_a_repeated_column_is_refused_when_a_field_reads_it(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,type,id,note,note\n1,CALL,2,a,b\n")
    assert read_columns(path) == ["id", "type", "id", "note", "note"]  # 'note' is not read
    with pytest.raises(ManifestError, match=r"names column 'id' twice \(columns 1 and 3\)"):
        ColumnMapping().check_columns(path, read_columns(path), source_system_given=True)


def test_a_folder_is_not_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="folder"):
        rows_of(tmp_path)
    with pytest.raises(ManifestError, match="folder"):
        read_columns(tmp_path)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        rows_of(tmp_path / "nope.csv")


# -- Parquet ------------------------------------------------------------------------------


def write_parquet(
    path: Path, table: pa.Table, row_group_size: int | None = None, compression: str = "snappy"
) -> Path:
    pq.write_table(table, path, row_group_size=row_group_size, compression=compression)
    return path


def test_parquet_is_read_in_batches_numbered_from_one(tmp_path: Path) -> None:
    n = 25
    table = pa.table(
        {
            "id": [str(i) for i in range(n)],
            "type": ["CALL"] * n,
            "title": [f"t{i}" for i in range(n)],
        }
    )
    path = write_parquet(tmp_path / "m.parquet", table, row_group_size=10)
    batches = list(read_manifest(path, batch_size=8))
    assert all(len(b) <= 8 for b in batches) and len(batches) >= 4
    rows = [r for b in batches for r in b]
    assert [r.row_number for r in rows] == list(range(1, n + 1))
    assert rows[3].cells == {"id": "3", "type": "CALL", "title": "t3"}
    assert read_columns(path) == ["id", "type", "title"]


def test_parquet_without_extension_is_detected(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "export", pa.table({"id": ["1"]}))
    assert [r.cells for r in rows_of(path)] == [{"id": "1"}]


def test_parquet_non_string_types_are_converted(tmp_path: Path) -> None:
    utc = dt.timezone.utc
    table = pa.table(
        {
            "id": pa.array([7, 8, None], pa.int64()),
            "type": ["CALL", "meeting", "CALL"],
            "title": ["a", "b", "c"],
            "media_url": ["https://media.example.com/a.mp3"] * 3,
            "start_at": pa.array(
                [dt.datetime(2024, 3, 5, 14, 30, tzinfo=utc), dt.datetime(2024, 3, 5, 9, 30), None],
                pa.timestamp("us", tz="UTC"),
            ),
            "naive_at": pa.array([dt.datetime(2024, 3, 5, 9, 30)] * 3, pa.timestamp("ms")),
            "is_private": pa.array([True, False, None], pa.bool_()),
            "score": pa.array([1.0, 2.5, float("nan")], pa.float64()),
            "participants": pa.array(
                [[{"name": "Ana", "email": "ana@acme.com"}], [], None],
                pa.list_(pa.struct([("name", pa.string()), ("email", pa.string())])),
            ),
            "source_system": ["crm"] * 3,
        }
    )
    path = write_parquet(tmp_path / "typed.parquet", table)
    rows = rows_of(path)
    first, second, third = (r.cells for r in rows)
    assert first["id"] == "7" and third["id"] == ""
    assert first["start_at"] == "2024-03-05T14:30:00+00:00"
    assert first["naive_at"] == "2024-03-05T09:30:00"
    assert (first["is_private"], second["is_private"], third["is_private"]) == ("true", "false", "")
    assert (first["score"], second["score"], third["score"]) == ("1", "2.5", "")
    assert third["start_at"] == ""
    mapped = map_row(rows[0].cells, 1, MappingOptions())
    assert mapped.payload is not None
    assert mapped.payload["start_at"] == "2024-03-05T14:30:00+00:00"
    assert mapped.payload["is_private"] is True
    assert mapped.payload["participants"] == [{"name": "Ana", "email": "ana@acme.com"}]
    assert mapped.external_id == "crm:7"


def test_parquet_nanosecond_timestamps_are_readable(tmp_path: Path) -> None:
    table = pa.table(
        {
            "start_at": pa.array([1_709_649_000_123_456_789], pa.timestamp("ns", tz="UTC")),
        }
    )
    [row] = rows_of(write_parquet(tmp_path / "ns.parquet", table))
    from importer.rows.dates import parse_start_at

    assert parse_start_at(row.cells["start_at"], "UTC").startswith("2024-03-05T14:30:00.123")


def test_parquet_rows_with_only_nulls_are_skipped(tmp_path: Path) -> None:
    table = pa.table({"id": ["1", None, "3"], "title": ["a", None, "c"]})
    rows = rows_of(write_parquet(tmp_path / "m.parquet", table))
    assert [r.row_number for r in rows] == [1, 3]


def test_truncated_parquet(tmp_path: Path) -> None:
    good = write_parquet(tmp_path / "good.parquet", pa.table({"id": [str(i) for i in range(500)]}))
    data = good.read_bytes()
    path = write(tmp_path, data[: len(data) // 2], "cut.parquet")
    with pytest.raises(ManifestError, match="not a readable Parquet") as caught:
        rows_of(path)
    assert str(path) in str(caught.value)
    with pytest.raises(ManifestError):
        read_columns(path)


def test_a_damaged_parquet_hands_on_the_rows_before_the_fault_and_names_where(
    tmp_path: Path,
) -> None:
    """Rows are read eight batches at a time: a fault in the sixth is read again a batch at a
    time, so the five before it are handed on and the fault is named after row 5,000."""
    n = 8000
    table = pa.table({"id": [f"r{i}" for i in range(n)], "title": [f"t{i}" for i in range(n)]})
    path = write_parquet(tmp_path / "m.parquet", table, row_group_size=1000, compression="none")
    assert batches_read_at_once(parquet_file(path), 1000) == 8
    offset = pq.ParquetFile(path).metadata.row_group(5).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset : offset + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    handed_on: list[int] = []
    with pytest.raises(ManifestError, match="is damaged after row 5000"):
        for batch in read_manifest(path):
            handed_on.extend(row.row_number for row in batch)
    assert handed_on == list(range(1, 5001))


def test_parquet_rows_of_long_cells_are_read_a_batch_at_a_time(tmp_path: Path) -> None:
    """Memory stays bounded by the batch size: only short rows are read several at a time."""
    short = write_parquet(tmp_path / "s.parquet", pa.table({"id": [str(i) for i in range(50)]}))
    long = write_parquet(
        tmp_path / "l.parquet",
        pa.table(
            {"id": [str(i) for i in range(50)], "t": [f"{i}" + "x" * 5000 for i in range(50)]}
        ),
        compression="none",
    )
    assert batches_read_at_once(parquet_file(short), 1000) == 8
    assert batches_read_at_once(parquet_file(long), 1000) == 1
    assert batches_read_at_once(parquet_file(long), 20) == 8
    batches = list(read_manifest(long, batch_size=20))
    assert [len(b) for b in batches] == [20, 20, 10]
    assert batches[2][9].cells["t"] == "49" + "x" * 5000


def test_garbage_with_a_parquet_extension(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,type\n1,CALL\n", "m.parquet")
    with pytest.raises(ManifestError, match="Parquet"):
        rows_of(path)


def test_an_old_xls_workbook_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "export.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0 an old binary workbook")

    with pytest.raises(ManifestError, match=r"save it as \.xlsx, CSV"):
        next(read_manifest(path))


def test_a_damaged_xlsx_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")

    with pytest.raises(ManifestError, match=r"is not a readable \.xlsx workbook"):
        next(read_manifest(path))


# Cells that may span lines: every line ending the reader knows, inside and outside quotes,
# quotes left open or closed early, blank lines between records.
csv_cells = st.lists(
    st.sampled_from(["a", "b c", ",", '"', '""', "\n", "\r", "\r\n", " ", "é"]), max_size=6
).map("".join)
csv_records = st.lists(
    st.tuples(
        st.lists(csv_cells, min_size=1, max_size=3),
        st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\r\n \r\n"]),
    ),
    max_size=12,
)


def lines_read_one_record_at_a_time(text: str) -> list[tuple[int, list[str]]]:
    """Each record that is not blank with the line it starts on, as the reader counts."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    next(reader)
    found, start = [], reader.line_num + 1
    for record in reader:
        if "".join(record).strip():
            found.append((start, record))
        start = reader.line_num + 1
    return found


@settings(max_examples=400, deadline=None)
@given(csv_records)
def test_records_keep_the_lines_they_start_on_however_they_break(
    tmp_path_factory: pytest.TempPathFactory,
    records: list[tuple[list[str], str]],
) -> None:
    text = "x,y\n" + "".join(",".join(cells) + ending for cells, ending in records)
    path = tmp_path_factory.mktemp("lines") / "m.csv"
    path.write_bytes(text.encode("utf-8"))
    try:  # records read three at a time: the lines carry over from batch to batch
        with mock.patch("importer.read.manifest.CSV_BATCH", 3):
            rows = [row for batch in read_manifest(path, batch_size=5) for row in batch]
    except ManifestError:
        return  # a quote left open to the end: the file's error, the same either way
    expected = lines_read_one_record_at_a_time(text)
    assert [row.row_number for row in rows] == [line for line, _ in expected]
    for row, (_, record) in zip(rows, expected, strict=True):
        assert list(row.cells.values()) == [*record, "", ""][:2]


def test_a_record_the_reader_refuses_is_named_by_the_line_it_starts_on(tmp_path: Path) -> None:
    # Lines 2-3 one record, line 4 blank, line 5 opens a quoted cell past the field limit
    # (lowered for the test: at its real 20 MB the file would take seconds to write).
    huge = "\n".join(["x" * 100] * 200)
    path = write(tmp_path, f'id,title\n1,"two\nlines"\n\n2,"{huge}"\n3,after\n')
    limit = csv.field_size_limit(10_000)
    try:
        with pytest.raises(ManifestError, match="line 5 cannot be read as CSV") as caught:
            rows_of(path)
    finally:
        csv.field_size_limit(limit)
    assert "field larger than field limit" in str(caught.value)


def test_lines_are_short_only_when_no_line_can_reach_the_limit(tmp_path: Path) -> None:
    short = tmp_path / "short.csv"
    short.write_bytes(b"id,title\n" + b"1,abcdefgh\n" * 20)  # 229 bytes, lines of 11
    assert lines_are_short(short, "utf-8-sig", limit=1000)  # smaller than the limit
    assert lines_are_short(short, "cp1252", limit=20)  # scanned: every line under 20
    assert not lines_are_short(short, "utf-8", limit=11)  # a line of 11 reaches 11
    assert not lines_are_short(short, "utf-16", limit=1000)  # a 0x0a byte may be half a char
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"id,title\r\n" + b"1," + b"x" * 30 + b"\r\n")
    assert not lines_are_short(crlf, "utf-8", limit=30)
    assert lines_are_short(crlf, "utf-8", limit=40)
    with crlf.open("ab") as handle:  # the file changes: its lines are scanned again
        handle.write(b"2," + b"y" * 50 + b"\r\n")
    assert not lines_are_short(crlf, "utf-8", limit=40)
