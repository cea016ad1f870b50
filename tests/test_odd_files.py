"""Odd files a user may hand the importer: each is one clear message, never a traceback."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import re
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from importer.read.xlsx import MAX_HELD_PART_BYTES, sheet_rows
from tests.factories import run_cli

HEADER = "id,type,title,media_url,start_at,source_system"
# An OLE2 compound file: what Excel writes for a password-protected workbook (and for .xls).
OLE2 = bytes.fromhex("D0CF11E0A1B11AE1") + bytes(504)


def plan(manifest: Path, *options: str) -> tuple[int, str]:
    """Exit code and everything printed, of `importer plan MANIFEST`."""
    ledger = manifest.parent / "ledger.db"
    result = run_cli(["plan", str(manifest), "--ledger", str(ledger), *options])
    return result.exit_code, result.stdout + result.stderr


def plan_in_utc(manifest: Path, *options: str) -> tuple[int, str]:
    """`importer plan MANIFEST --timezone UTC`: the file's naive times read as UTC, chosen."""
    return plan(manifest, "--timezone", "UTC", *options)


def workbook(path: Path) -> Path:
    book = openpyxl.Workbook()
    book.active.append(HEADER.split(","))
    book.save(path)
    return path


def without_sheets(path: Path) -> Path:
    """A workbook whose list of sheets is empty (some tools write these)."""
    source = workbook(path.with_name("source.xlsx"))
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as stripped:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "xl/workbook.xml":
                data = re.sub(rb"<sheets>.*</sheets>", b"<sheets/>", data)
            if not item.filename.startswith("xl/worksheets/"):
                stripped.writestr(item, data)
    return path


def test_a_workbook_without_sheets(tmp_path: Path) -> None:
    path = without_sheets(tmp_path / "empty.xlsx")
    assert plan(path) == (2, f"error: {path}: is a workbook without sheets\n")


@pytest.mark.parametrize("name", ["protected.xlsx", "report.csv", "export"])
def test_a_password_protected_workbook_or_old_xls(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(OLE2 + b"E\x00n\x00c\x00r\x00y\x00p\x00t\x00i\x00o\x00n\x00")
    assert plan(path) == (
        2,
        f"error: {path}: is a password-protected (encrypted) workbook or an old Excel .xls "
        "file, not .xlsx or CSV: open it in Excel, remove the password if it has one, and "
        "save it as .xlsx or CSV (UTF-8)\n",
    )


def test_a_workbook_named_csv(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(workbook(tmp_path / "real.xlsx").read_bytes())
    assert plan(path) == (
        2,
        f"error: {path}: is an .xlsx workbook (a zip file), not CSV text: rename it to "
        "report.xlsx\n",
    )


ROWS = [
    "1\tCALL\tCafé call\thttps://media.example.com/1.mp3\t2024-03-05T14:30:00Z\tcrm",
    "2\tCALL\tSecond\thttps://media.example.com/2.mp3\t2024-03-06T14:30:00Z\tcrm",
]
UNICODE_TEXT = "\r\n".join([HEADER.replace(",", "\t"), *ROWS]) + "\r\n"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("option", [(), ("--encoding", "utf-16")])
def test_utf16_without_a_bom_is_read(tmp_path: Path, codec: str, option: tuple[str, ...]) -> None:
    path = tmp_path / "unicode.txt"
    path.write_bytes(UNICODE_TEXT.encode(codec))
    code, output = plan(path, *option)
    assert code == 0, output
    assert "  new          2\n" in output


def test_encoding_utf16_for_a_file_that_is_not(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(UNICODE_TEXT, encoding="utf-8")
    assert plan(path, "--encoding", "utf-16") == (
        2,
        f"error: {path}: is not UTF-16 (no byte-order mark, and its first line is not "
        "UTF-16 text): try without --encoding\n",
    )


@pytest.mark.parametrize("damage", [b"\n", b"\x00\xd8\n\x00"])
def test_damaged_utf16_costs_only_its_row(tmp_path: Path, damage: bytes) -> None:
    # A stray byte at the end, or half a character: the row holding it is invalid.
    path = tmp_path / "unicode.txt"
    path.write_bytes(UNICODE_TEXT.encode("utf-16") + damage)
    code, output = plan(path)
    assert code == 1, output
    assert "  invalid          1\n  new              2\n" in output
    assert "row 4 (no id): id: has bytes that are not UTF-8" in output


def test_a_row_with_another_delimiter_says_so(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        f"{HEADER}\n"
        "1;CALL;Call one;https://media.example.com/1.mp3;2024-03-05T14:30:00Z;crm\n"
        "2,CALL,Call two,https://media.example.com/2.mp3,2024-03-06T14:30:00Z,crm\n",
        encoding="utf-8",
    )
    code, output = plan(path, "--skip-without-media")
    assert code == 1, output
    assert "  invalid          1\n  new              1\n" in output
    assert (
        "id: the row has 1 cell(s) but the header has 6 columns: it is separated by ';', "
        "the header by ','" in output
    )


def test_numeric_dates_after_the_scanned_rows_are_never_guessed_row_by_row(
    tmp_path: Path,
) -> None:
    # The date order is decided from the column's first 10,000 values; when none of them is
    # a numeric date, later ones cannot each be read by their own digits (13/03 day-first,
    # 03/14 month-first): each is its row's error asking for the order.
    path = tmp_path / "joined.csv"
    iso = (
        f"{n},CALL,Call,https://media.example.com/{n}.mp3,2024-03-05T14:30:00Z,crm"
        for n in range(10_000)
    )
    late = [
        "a,CALL,Call,https://media.example.com/a.mp3,13/03/2024 14:30,crm",
        "b,CALL,Call,https://media.example.com/b.mp3,03/14/2024 14:30,crm",
    ]
    path.write_text("\n".join([HEADER, *iso, *late]) + "\n", encoding="utf-8")
    code, output = plan_in_utc(path)
    assert code == 1, output
    assert "  invalid          2\n  new         10,000\n" in output
    assert (
        "row 10002 crm:a: start_at: '13/03/2024 14:30' is a numeric date, and the column's "
        "first 10,000 dates did not say day-first or month-first; pass --dayfirst or "
        "--monthfirst" in output
    )
    code, output = plan_in_utc(path, "--dayfirst")
    assert code == 1, output
    assert "row 10003 crm:b: start_at: '03/14/2024 14:30' read day-first has month 14" in output


def rewritten(path: Path, part: str, change: Callable[[bytes], bytes]) -> Path:
    """A workbook with one part of its zip rewritten (as other tools, or damage, write it)."""
    source = workbook(path.with_name("source.xlsx"))
    book = openpyxl.load_workbook(source)
    book.active.append(["1", "CALL", "Call", "https://media.example.com/1.mp3", "x", "crm"])
    book.save(source)
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as copy:
        for item in original.infolist():
            data = original.read(item.filename)
            copy.writestr(item, change(data) if item.filename == part else data)
    return path


def test_a_workbook_whose_styles_openpyxl_refuses(tmp_path: Path) -> None:
    styles = b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    styles += b'<fills count="1"><fill/></fills></styleSheet>'
    path = rewritten(tmp_path / "minimal.xlsx", "xl/styles.xml", lambda _: styles)
    code, output = plan(path)
    assert code == 2, output
    assert output.startswith(f"error: {path}: is not a readable .xlsx workbook (")


def test_a_workbook_whose_sheet_is_cut_short(tmp_path: Path) -> None:
    path = rewritten(
        tmp_path / "cut.xlsx", "xl/worksheets/sheet1.xml", lambda data: data[: len(data) // 2]
    )
    code, output = plan(path)
    assert code == 2, output
    assert output.startswith(f"error: {path}: ")
    assert "internal error" not in output


def test_openpyxl_warnings_about_a_workbook_are_not_printed(tmp_path: Path) -> None:
    # Many exporters write no default cell style; openpyxl warns, which the user cannot act on.
    styles = (
        b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<fonts count="1"><font><sz val="11"/></font></fonts><fills count="1"><fill>'
        b'<patternFill patternType="none"/></fill></fills><borders count="1"><border><left/>'
        b'<right/><top/><bottom/><diagonal/></border></borders><cellXfs count="1">'
        b'<xf numFmtId="0"/></cellXfs></styleSheet>'
    )
    path = rewritten(tmp_path / "plain.xlsx", "xl/styles.xml", lambda _: styles)
    code, output = plan(path)
    assert "Warning" not in output
    assert "  invalid          1\n" in output  # its start_at 'x' is no date; the file is read
    assert code == 1


def test_a_date_only_xlsx_cell_is_not_sent_as_midnight(tmp_path: Path) -> None:
    # Salesforce's ActivityDate as a date cell: Excel holds midnight, but the sheet shows a
    # day. It is refused as "3/5/2024" in a CSV is, not sent as 00:00.
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    for n, (moment, shown) in enumerate(
        [(dt.datetime(2024, 3, 5), "mm/dd/yyyy"), (dt.datetime(2024, 3, 5), "mm/dd/yyyy h:mm")]
    ):
        media = f"https://media.example.com/{n}.mp3"
        sheet.append([str(n), "CALL", "Call", media, moment, "crm"])
        sheet.cell(row=n + 2, column=5).number_format = shown
    path = tmp_path / "dates.xlsx"
    book.save(path)
    code, output = plan_in_utc(path)
    assert code == 1, output
    assert "  invalid          1\n  new              1\n" in output
    assert "row 2 crm:0: start_at: '2024-03-05' has a date but no time of day" in output


def test_an_id_excel_rounded_into_scientific_notation_is_refused(tmp_path: Path) -> None:
    # A CSV saved by Excel writes Gong's 19-digit ids as 7.78234E+18: the id is gone, and
    # sent as is it would be a wrong idempotency key (and collide with its neighbours).
    path = tmp_path / "gong.csv"
    path.write_text(
        f"{HEADER}\n"
        "7.78234E+18,CALL,Call,https://media.example.com/1.mp3,2024-03-05T14:30:00Z,gong\n"
        "00T5e00000AbCdE,CALL,Call,https://media.example.com/2.mp3,2024-03-05T14:30:00Z,gong\n",
        encoding="utf-8",
    )
    code, output = plan(path)
    assert code == 1, output
    assert "  invalid          1\n  new              1\n" in output
    assert (
        "row 2 (no id): id: '7.78234E+18' is a number Excel rounded to 6 digits "
        "and wrote in scientific notation: the CRM's id is lost. Export the id column as text "
        "(Excel: format it as Text before saving) and try again" in output
    )


def test_a_workbook_whose_first_sheet_is_a_cover_names_its_sheets(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "Cover"
    book.active.append(["Call report, Q1"])
    book.create_sheet("Calls").append(HEADER.split(","))
    path = tmp_path / "report.xlsx"
    book.save(path)
    assert plan(path) == (
        2,
        f"error: {path}: has no header row in its first 20 rows of sheet 'Cover' (a header "
        "needs 2+ column names); its sheets: 'Cover', 'Calls': pass --sheet NAME\n",
    )
    code, output = plan(path, "--sheet", "Calls")
    assert (code, output) == (0, f"Plan for {path} (nothing was sent):\n  (no rows)\n")


def test_an_unclosed_quote_says_which_lines_it_swallowed(tmp_path: Path) -> None:
    path = tmp_path / "unclosed.csv"
    path.write_text(
        f"{HEADER}\n"
        "1,CALL,Call,https://media.example.com/1.mp3,2024-03-05T14:30:00Z,crm\n"
        '2,CALL,"Unclosed,https://media.example.com/2.mp3,2024-03-05T14:30:00Z,crm\n'
        "3,CALL,Call,https://media.example.com/3.mp3,2024-03-05T14:30:00Z,crm\n",
        encoding="utf-8",
    )
    code, output = plan(path)
    assert code == 1, output
    assert (
        "row 3 :2: id: the row has 3 cell(s) but the header has 6 columns: the quote "
        "opening column 'title' is never closed, so lines 3-4 were read as one record; "
        "close the quote and run again" in output
    )


def zoned(tmp_path: Path) -> Path:
    """US dates ending with a zone name, settled month-first by row 3 (March 14)."""
    path = tmp_path / "zoned.csv"
    rows = [
        f"{n},CALL,Call,https://media.example.com/{n}.mp3,{when},crm"
        for n, when in enumerate(["3/5/2024 2:30 PM EST", "3/14/2024 9:00 AM EDT"])
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_dates_with_a_zone_name_need_the_time_zone_once(tmp_path: Path) -> None:
    path = zoned(tmp_path)
    code, output = plan(path)  # no zone chosen: EST names several, never one by default
    assert code == 2
    assert "row 2 '3/5/2024 2:30 PM EST'" in output
    assert "'EST' is an abbreviation, not a zone" in output
    assert plan(path, "--timezone", "UTC") == (
        2,
        f"error: {path}: column 'start_at': row 2 '3/5/2024 2:30 PM EST' names the zone 'EST', "
        "but in UTC that time is UTC; pass --timezone with the zone the file's times are in "
        "(e.g. America/New_York for EST)\n",
    )
    code, output = plan(path, "--timezone", "America/New_York", "--out", str(tmp_path / "p.csv"))
    assert code == 0, output
    assert "read month-first (row 3 has '3/14/2024 9:00 AM EDT' -> 2024-03-14T13:00:00" in output
    with (tmp_path / "p.csv").open(encoding="utf-8", newline="") as handle:
        sent = [line["start_at_sent"] for line in csv.DictReader(handle)]
    assert sent == ["2024-03-05T19:30:00+00:00", "2024-03-14T13:00:00+00:00"]


def test_init_maps_dates_with_a_zone_name(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.toml"
    result = run_cli(["init", str(zoned(tmp_path)), "--out", str(mapping)])
    assert "  mapped:  start_at <- 'start_at'" in result.stdout


def test_compressed_and_misnamed_files_say_what_they_are(tmp_path: Path) -> None:
    text = f"{HEADER}\n1,CALL,Call,https://media.example.com/1.mp3,2024-03-05T14:30:00Z,crm\n"
    gzipped = tmp_path / "calls.csv.gz"
    gzipped.write_bytes(gzip.compress(text.encode()))
    assert plan(gzipped) == (
        2,
        f"error: {gzipped}: is gzip-compressed: decompress it first (gunzip {gzipped.name})\n",
    )
    archive = tmp_path / "calls.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("calls.csv", text)
    assert plan(archive) == (
        2,
        f"error: {archive}: is a zip archive, not a workbook: extract the export from it "
        "(it holds calls.csv)\n",
    )
    parquet = tmp_path / "calls.csv"
    pq.write_table(pa.table({"id": ["1"]}), parquet)
    assert plan(parquet) == (
        2,
        f"error: {parquet}: is a Parquet file, not CSV text: rename it to calls.parquet\n",
    )


def test_a_repeated_column_name_matters_only_when_it_is_read(tmp_path: Path) -> None:
    # Cross-object reports repeat labels ("Comments" of the task and of the account).
    path = tmp_path / "report.csv"
    path.write_text(
        f"{HEADER},Comments,Comments\n"
        "1,CALL,Call,https://media.example.com/1.mp3,2024-03-05T14:30:00Z,crm,a,b\n",
        encoding="utf-8",
    )
    code, output = plan(path)
    assert code == 0, output
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[columns]\ntitle = "Comments"\n', encoding="utf-8")
    assert plan(path, "--mapping", str(mapping)) == (
        2,
        f"error: {path}: the header names column 'Comments' twice (columns 7 and 8), and "
        "title is read from it: rename one of them in the file\n",
    )


def test_an_empty_workbook_says_its_sheet_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    openpyxl.Workbook().save(path)
    assert plan(path) == (2, f"error: {path}: sheet 'Sheet' is empty\n")


def test_init_asks_for_the_zone_that_dates_name(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.toml"
    result = run_cli(["init", str(zoned(tmp_path)), "--out", str(mapping)])
    assert (
        "  question: Dates name the zone 'EST' (row 2 '3/5/2024 2:30 PM EST'): pass --timezone "
        "with the zone they are in to plan and run (e.g. --timezone America/New_York)."
        in result.stdout.splitlines()
    )


# -- issue 20: sizes ---------------------------------------------------------------------------


SHARED_STRINGS_TYPE = (
    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)


def with_parts(path: Path, parts: dict[str, Callable[[IO[bytes]], None]]) -> Path:
    """The one-row workbook of ``rewritten``, with ``parts`` written by the given writers
    (streamed into the zip, so a part of any size costs no memory to make)."""
    source = rewritten(path.with_name("base.xlsx"), "", lambda data: data)
    with (
        zipfile.ZipFile(source) as original,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as copy,
    ):
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "[Content_Types].xml" and "xl/sharedStrings.xml" in parts:
                data = data.replace(b"</Types>", SHARED_STRINGS_TYPE + b"</Types>")
            if item.filename not in parts:
                copy.writestr(item, data, zipfile.ZIP_DEFLATED)
        for name, write in parts.items():
            with copy.open(name, "w", force_zip64=True) as part:
                write(part)
    return path


def test_a_part_larger_than_its_bound_is_refused_before_it_is_read(tmp_path: Path) -> None:
    chunk = b"<si><t>x</t></si>" * 65536

    def huge_shared_strings(part: IO[bytes]) -> None:
        part.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
        for _ in range(MAX_HELD_PART_BYTES // len(chunk) + 1):
            part.write(chunk)
        part.write(b"</sst>")

    path = with_parts(tmp_path / "bomb.xlsx", {"xl/sharedStrings.xml": huge_shared_strings})
    assert path.stat().st_size < 5 * 1024 * 1024

    code, output = plan(path)

    assert code == 2, output
    assert output.startswith(f"error: {path}: has a part 'xl/sharedStrings.xml' of ")
    assert f"reads at most {MAX_HELD_PART_BYTES:,} bytes for a part read whole" in output


def formatted_empty_rows(path: Path, rows: int) -> Path:
    """The one-row workbook of ``rewritten`` stretched by ``rows`` formatted empty rows,
    as a sheet formatted down to its last row is written."""

    def sheet(part: IO[bytes]) -> None:
        part.write(
            b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c>'
            b'<c r="B1" t="inlineStr"><is><t>title</t></is></c></row>'
            b'<row r="2"><c r="A2" t="inlineStr"><is><t>7</t></is></c>'
            b'<c r="B2" t="inlineStr"><is><t>Intro</t></is></c></row>'
        )
        for start in range(3, rows + 3, 10_000):
            end = min(start + 10_000, rows + 3)
            part.write(
                b"".join(
                    b'<row r="%d" s="1" ht="15" customFormat="1"/>' % n for n in range(start, end)
                )
            )
        part.write(b"</sheetData></worksheet>")

    return with_parts(path, {"xl/worksheets/sheet1.xml": sheet})


def test_empty_rows_at_the_end_of_a_sheet_cost_flat_memory(tmp_path: Path) -> None:
    path = formatted_empty_rows(tmp_path / "long.xlsx", 30_000)
    tracemalloc.start()
    try:
        rows = [(number, values) for number, values in sheet_rows(path, None) if values]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert rows == [(1, ("id", "title")), (2, ("7", "Intro"))]
    # openpyxl's own loop kept about 500 bytes of every row read: 15 MB here.
    assert peak < 4 * 1024 * 1024, peak
