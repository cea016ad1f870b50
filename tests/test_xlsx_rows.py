"""The .xlsx reader's rows are openpyxl's: its ``parse_row`` of every row, the values by
column as the importer took them before it read the common cells itself (kept here as the
reference), over every .xlsx the suite has and sheets written cell by cell."""

from __future__ import annotations

import datetime as dt
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.cell.read_only import ReadOnlyCell
from openpyxl.styles.numbers import is_datetime
from openpyxl.utils.datetime import MAC_EPOCH
from openpyxl.worksheet._reader import ROW_TAG, WorkSheetParser
from openpyxl.xml.functions import iterparse

from importer.errors import ManifestError
from importer.read.xlsx import open_sheet, sheet_rows
from tests.factories import with_part_changed

EXPORTS = Path(__file__).parent / "exports"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SHARED_STRINGS = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"

# Number formats the styled workbook gives its first row's cells, in order: style ids 1-6.
FORMATS = ["yyyy-mm-dd", "yyyy-mm-dd h:mm", "h:mm:ss", "[h]:mm:ss", "0.00", "mm/dd/yyyy"]
DATE, DATE_TIME, TIME, DURATION, DECIMAL, US_DATE = range(1, 7)


def reference_rows(path: Path, sheet: str | None = None) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """The rows as openpyxl's ``WorkSheetParser.parse_row`` reads them, by column."""
    book, worksheet = open_sheet(path, sheet)
    try:
        with worksheet._get_source() as source:
            parser = WorkSheetParser(
                source,
                worksheet._shared_strings,
                data_only=book.data_only,
                epoch=book.epoch,
                date_formats=book._date_formats,
                timedelta_formats=book._timedelta_formats,
            )
            parents = []
            for event, element in iterparse(source, events=("start", "end")):
                if event == "start":
                    parents.append(element)
                    continue
                parents.pop()
                if element.tag == ROW_TAG:
                    number, cells = parser.parse_row(element)
                    yield number, reference_values(worksheet, cells)
                if parents and (element.tag == ROW_TAG or len(parents) == 1):
                    parents[-1].clear()
    finally:
        book.close()


def reference_values(worksheet: Any, cells: list[dict[str, Any]]) -> tuple[Any, ...]:
    if not cells:
        return ()
    values: list[Any] = [None] * max(cell["column"] for cell in cells)
    for cell in cells:
        value = cell["value"]
        if isinstance(value, dt.datetime) and cell["style_id"]:
            number_format = ReadOnlyCell(worksheet, **cell).number_format
            if is_datetime(number_format) == "date":
                value = value.date()
        values[cell["column"] - 1] = value
    return tuple(values)


def outcome(rows: Iterator[tuple[int, tuple[Any, ...]]]) -> tuple[Any, ...]:
    """Every row with its values' types (1 == True, a date == no datetime), the warnings
    given, and the error that stopped the reading (the reader's cause, openpyxl's own)."""
    read: list[Any] = []
    error = None
    with warnings.catch_warnings(record=True) as given:
        warnings.simplefilter("always")
        try:
            for number, values in rows:
                read.append((number, [(type(value), value) for value in values]))
        except ManifestError as refused:
            cause = refused.__cause__
            error = (type(cause).__name__, str(cause))
        except Exception as raised:
            error = (type(raised).__name__, str(raised))
    return read, [str(warning.message) for warning in given], error


def assert_read_as_openpyxl(path: Path, sheet: str | None = None) -> tuple[Any, ...]:
    ours = outcome(sheet_rows(path, sheet))
    assert ours == outcome(reference_rows(path, sheet))
    return ours


@pytest.mark.parametrize("name", sorted(p.name for p in EXPORTS.glob("*.xlsx")))
def test_every_xlsx_export_reads_as_openpyxl_reads_it(name: str) -> None:
    rows, _, error = assert_read_as_openpyxl(EXPORTS / name)
    assert rows and error is None


def styled_workbook(path: Path, epoch: dt.datetime | None = None) -> Path:
    """A workbook whose styles 1-6 are FORMATS (openpyxl numbers them as first used)."""
    book = openpyxl.Workbook()
    if epoch is not None:
        book.epoch = epoch
    sheet = book.active
    assert sheet is not None
    for column, number_format in enumerate(FORMATS, start=1):
        sheet.cell(row=1, column=column, value=1).number_format = number_format
    book.save(path)
    with zipfile.ZipFile(path) as archive:
        written = archive.read("xl/worksheets/sheet1.xml").decode()
    assert re.findall(r' s="(\d+)"', written) == [str(n) for n in range(1, 7)]
    return path


def with_sheet(
    source: Path,
    path: Path,
    rows: str,
    strings: Sequence[str] = (),
    first_style: int | None = None,
    damage: Callable[[str], str] = str,
) -> Path:
    """``source`` with its first sheet's rows replaced by ``rows`` (XML), a shared strings
    table of ``strings``, its default cell style set to number format ``first_style``, and
    the sheet's XML passed through ``damage``."""
    table = "".join(f"<si>{text}</si>" for text in strings)
    parts = {
        "xl/worksheets/sheet1.xml": damage(
            f'<worksheet xmlns="{MAIN}"><dimension ref="A1"/><sheetData>{rows}</sheetData>'
            '<mergeCells count="1"><mergeCell ref="A1:B1"/></mergeCells></worksheet>'
        ),
        "xl/sharedStrings.xml": f'<sst xmlns="{MAIN}" count="{len(strings)}">{table}</sst>',
    }
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as rewritten:
        for item in original.infolist():
            data = original.read(item.filename).decode()
            if item.filename == "[Content_Types].xml":
                override = (
                    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SHARED_STRINGS}"/>'
                )
                data = data.replace("</Types>", f"{override}</Types>")
            if item.filename == "xl/styles.xml" and first_style is not None:
                data = re.sub(
                    r'(<cellXfs[^>]*><xf numFmtId=")0"', rf'\g<1>{first_style}"', data, count=1
                )
            rewritten.writestr(item, parts.pop(item.filename, data))
        for name, data in parts.items():
            rewritten.writestr(name, data)
    return path


def c(
    ref: str | None,
    value: str | None = None,
    kind: str | None = None,
    style: int | str | None = None,
    inner: str = "",
) -> str:
    """One ``<c>`` element."""
    attributes = "".join(
        f' {name}="{given}"'
        for name, given in (("r", ref), ("s", style), ("t", kind))
        if given is not None
    )
    held = inner + (f"<v>{value}</v>" if value is not None else "")
    return f"<c{attributes}>{held}</c>" if held else f"<c{attributes}/>"


def inline(text: str) -> str:
    return f"<is>{text}</is>"


STRINGS = [
    "id",
    "title",
    "Discovery call",
    '<r><rPr><b/></rPr><t>Rich </t></r><r><t xml:space="preserve">text </t></r>',
    "",
    "caf\u00e9 &amp; &lt;co&gt;",
    "line one\nline two",
    "x_x005F_x000D_y",
    "  padded ",
]
STRINGS = [text if text.startswith("<r>") else f"<t>{text}</t>" for text in STRINGS]

# A column's first cell is read by openpyxl (its letters are then known): row 1 is that.
COLUMNS = [*"ABCDEFGHIJKLMNOP", "AB"]
CELLS = (
    '<row r="1">'
    + "".join(c(f"{letters}1", "0") for letters in COLUMNS)
    + "</row>"
    + '<row r="7" spans="1:9">'
    + "".join(c(ref, str(n), "s") for n, ref in enumerate(["A7", "B7", "C7", "D7", "E7"]))
    + c("F7", "5", "s")
    + c("G7", "6", "s")
    + c("H7", "7", "s")
    + c("I7", "8", "s")
    + "</row>"
    # inline strings: plain, empty, kept spaces, rich, phonetic, none at all, a v ignored
    + '<row r="2" ht="15" customHeight="1">'
    + c("A2", kind="inlineStr", inner=inline("<t>rec-1</t>"))
    + c("B2", kind="inlineStr", inner=inline("<t/>"))
    + c("C2", kind="inlineStr", inner=inline('<t xml:space="preserve">  two  words </t>'))
    + c("D2", kind="inlineStr", inner=inline("<r><t>rich</t></r><r><t> run</t></r>"))
    + c("E2", kind="inlineStr", inner=inline("<t>base</t><rPh sb='0' eb='1'><t>fu</t></rPh>"))
    + c("F2", kind="inlineStr")
    + c("G2", "9", kind="inlineStr", inner=inline("<t>text wins</t>"))
    + c("H2", kind="inlineStr", inner=inline("<t>a<b/>c</t>"))
    + "</row>"
    # numbers: ints, floats, large, negative, exponents; booleans; errors
    + '<row r="3">'
    + c("A3", "42")
    + c("B3", "-7", "n")
    + c("C3", "2.5")
    + c("D3", "12345678901234567890")
    + c("E3", "1.2345678901234567E+19")
    + c("F3", "-0.000125")
    + c("G3", "1e-3")
    + c("H3", "7", style=DECIMAL)
    + c("I3", "1", "b")
    + c("J3", "0", "b")
    + c("K3", "#N/A", "e")
    + c("L3", "#DIV/0!", "e")
    + "</row>"
    # formulas with their cached values, and without one
    + '<row r="4">'
    + c("A4", "ab", "str", inner="<f>A1&amp;B1</f>")
    + c("B4", "2", inner="<f>1+1</f>")
    + c("C4", "1", "b", inner="<f>TRUE()</f>")
    + c("D4", "#REF!", "e", inner="<f>#REF!</f>")
    + c("E4", inner="<f>NOW()</f>")
    + c("F4", "", inner="<f>NOW()</f>")
    + c("G4", "45352", style=DATE, inner="<f>TODAY()</f>")
    + c("H4", "3", inner='<f t="shared" ref="H4:H5" si="0">1+2</f>')
    + "</row>"
    # dates: date-only formats (a day, or a day with a time the format hides), date-time,
    # time, duration, Excel's days before 1900-03-01, ISO dates
    + '<row r="5">'
    + c("A5", "45352", style=DATE)
    + c("B5", "45352.75", style=DATE)
    + c("C5", "45352.5", style=DATE_TIME)
    + c("D5", "45352", style=DATE_TIME)
    + c("E5", "0.5", style=TIME)
    + c("F5", "1.75", style=DURATION)
    + c("G5", "30", style=US_DATE)
    + c("H5", "0", style=DATE)
    + c("I5", "2024-03-05T10:30:00", "d")
    + c("J5", "2024-03-05T00:00:00", "d", style=DATE)
    + c("K5", "45352.999999", style=DATE_TIME)
    + c("L5", "45352", "n", style=0)
    + c("M5", "60", style=DATE)
    + c("N5", "61.25", style=DATE_TIME)
    + c("O5", "-1", style=DURATION)
    + c("P5", "45352", style="")
    + "</row>"
    # empty cells, gaps, cells without a reference, lower case, out of order, twice
    + '<row r="6">'
    + c("A6", "1")
    + c("C6")
    + c("D6", style=DATE)
    + c("F6", "6")
    + c(None, "7")
    + c(None, "2", "s")
    + c("a6", "a lower", "str")
    + c("K6", "11")
    + c("B6", "back to B", "str")
    + c("K6", "K again", "str")
    + c("AB6", "28")
    + "</row>"
    # rows the sheet skips, a row without a number, "12.0", an empty row, another empty
    + '<row r="8">'
    + c("B8", "skipped 7", "str")
    + "</row>"
    + "<row>"
    + c(None, "no number: 9", "str")
    + c(None, "1", "b")
    + "</row>"
    + '<row r="12.0">'
    + c("A12", "twelve", "str")
    + "</row>"
    + '<row r="13"/>'
    + '<row r="14" s="1" customFormat="1"></row>'
    + "<row>"
    + c(None, "15")
    + c("c15", "-1.5")
    + "</row>"
    + '<row r="16">'
    + c("A16", "an unknown kind", "x")
    + c("B16", "", "s")
    + '<extLst><ext uri="{x}"/></extLst>'
    + c(None, "after a stray child", "str")
    + "</row>"
)


@pytest.mark.parametrize(
    "epoch, first_style", [(None, None), (MAC_EPOCH, None), (None, 14), (MAC_EPOCH, 22)]
)
def test_every_kind_of_cell_reads_as_openpyxl_reads_it(
    tmp_path: Path, epoch: dt.datetime | None, first_style: int | None
) -> None:
    # 14 and 22: a default style showing a date, or a date and time (style 0 is no date
    # to the importer's date-only rule, but openpyxl still reads its numbers as dates).
    styled = styled_workbook(tmp_path / "styled.xlsx", epoch)
    path = with_sheet(styled, tmp_path / "cells.xlsx", CELLS, STRINGS, first_style)
    rows, given, error = assert_read_as_openpyxl(path)
    assert error is None
    assert bool(given) == (first_style is not None)  # huge numbers as dates: openpyxl warns
    numbers = [number for number, _ in rows]
    assert numbers == [1, 7, 2, 3, 4, 5, 6, 8, 9, 12, 13, 14, 15, 16]
    if epoch is None and first_style is None:
        by_number = dict(rows)
        assert by_number[5][0] == (dt.date, dt.date(2024, 3, 1))
        assert by_number[5][2] == (dt.datetime, dt.datetime(2024, 3, 1, 12))
        assert by_number[3][10] == (str, "#N/A")
        assert by_number[4][0] == (str, "ab")
        assert by_number[7][8] == (str, "  padded ")


@pytest.mark.parametrize(
    "cell",
    [
        c("A2", "3", "s"),  # past the end of the shared strings
        c("A2", "x", "s"),
        c("A2", "1", style="x"),
        c("A2", "1", style=""),
        c("A2", "1", style=99),  # a style the workbook does not have
        c("A2", "45352", style=99),
        c("A", "1"),
        c("2", "1"),
        c("AAAA2", "1"),
        c("A2B", "1"),
        c("A2", "1.5.1"),
        c("A2", "abc"),
        c("A2", "2", "b"),
        c("A2", "yes", "b"),
        c("A2", "1e400", style=DATE),  # a date past the year 9999: openpyxl warns, #VALUE!
        c("A2", "1e10", style=DATE_TIME),
        c("A2", "not a date", "d"),
        c("A2", kind="inlineStr", inner='<is bold="1"><t>x</t></is>'),
    ],
)
def test_a_malformed_cell_is_refused_or_read_as_openpyxl_does(tmp_path: Path, cell: str) -> None:
    styled = styled_workbook(tmp_path / "styled.xlsx")
    rows = f'<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2">{cell}</row>'
    path = with_sheet(styled, tmp_path / "odd.xlsx", rows, ["<t>id</t>", "<t>x</t>"])
    assert_read_as_openpyxl(path)


@pytest.mark.parametrize("number", ["2.5", "x", "", "-1"])
def test_a_malformed_row_number_is_refused_or_read_as_openpyxl_does(
    tmp_path: Path, number: str
) -> None:
    styled = styled_workbook(tmp_path / "styled.xlsx")
    rows = f'<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="{number}"><c><v>1</v></c></row>'
    path = with_sheet(styled, tmp_path / "odd.xlsx", rows, ["<t>id</t>"])
    assert_read_as_openpyxl(path)


def test_a_sheet_written_by_openpyxl_in_write_only_mode(tmp_path: Path) -> None:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Calls")
    sheet.append(["id", "title", "start_at", "duration", "private", "score"])
    for n in range(300):
        start = dt.datetime(2024, 3, 1, 9) + dt.timedelta(days=n, minutes=n)
        sheet.append([f"rec-{n}", f"Call {n}", start, dt.timedelta(minutes=n), n % 2 == 0, n / 7])
    sheet.append([])
    sheet.append([None, None, dt.date(2024, 3, 1), dt.time(9, 30)])
    book.save(tmp_path / "write_only.xlsx")
    rows, _, error = assert_read_as_openpyxl(tmp_path / "write_only.xlsx")
    assert len(rows) == 303 and error is None


# Enough rows for the sheet's XML to be read in several chunks.
LONG = "".join(
    f'<row r="{n}">'
    + c(f"A{n}", kind="inlineStr", inner=inline(f"<t>rec-{n}</t>"))
    + c(f"B{n}", str(n))
    + c(f"C{n}", "0", "s")
    + "</row>"
    for n in range(1, 4001)
)


@pytest.mark.parametrize(
    "damage",
    [
        lambda xml: xml[: len(xml) // 2],  # cut inside a row
        lambda xml: xml[: xml.index('<row r="2345">')],  # cut between two rows
        lambda xml: xml[: xml.index('<row r="3001">') + len('<row r="3001">')],
        lambda xml: xml.replace('<row r="1500">', '<row r="1500"><c><v>1</v></row>'),
        lambda xml: xml.replace('<row r="3000">', "<junk/></sheetData><row>"),
        lambda xml: xml.replace('<row r="10">', '<row r="10"><c r="A10" t="s"><v>9</v></c>'),
        lambda xml: xml.replace("</sheetData>", ""),
        lambda xml: xml.replace("</worksheet>", ""),
        lambda xml: xml + "<after/>",
    ],
)
def test_a_damaged_sheet_gives_the_rows_before_its_fault_and_the_same_error(
    tmp_path: Path, damage: Callable[[str], str]
) -> None:
    styled = styled_workbook(tmp_path / "styled.xlsx")
    path = with_sheet(styled, tmp_path / "cut.xlsx", LONG, ["<t>x</t>"], damage=damage)
    rows, _, error = assert_read_as_openpyxl(path)
    assert error is not None and len(rows) > 5


def test_a_sheet_stating_no_size_is_not_read_before_its_rows_are(tmp_path: Path) -> None:
    """A sheet without ``<dimension>`` (openpyxl's write-only mode) was parsed whole when
    the book opened, each sheet of it, for a size that is not used: 17 µs a row. Here the
    other sheet is damaged past its first rows, which only a reading of it would meet."""
    book = openpyxl.Workbook(write_only=True)
    calls, other = book.create_sheet("Calls"), book.create_sheet("Other")
    calls.append(["id", "title"])
    calls.append(["rec-1", "Intro"])
    for n in range(50):
        other.append([f"x-{n}", n])
    book.save(tmp_path / "two.xlsx")
    with zipfile.ZipFile(tmp_path / "two.xlsx") as book_file:
        assert b"<dimension" not in book_file.read("xl/worksheets/sheet2.xml")
    damaged = with_part_changed(
        tmp_path / "two.xlsx",
        tmp_path / "damaged.xlsx",
        "xl/worksheets/sheet2.xml",
        lambda xml: xml.replace(b'<row r="40"', b'<row r="40"><junk'),
    )

    assert list(sheet_rows(damaged, "Calls")) == [(1, ("id", "title")), (2, ("rec-1", "Intro"))]
    with pytest.raises(ManifestError, match="is damaged"):
        list(sheet_rows(damaged, "Other"))
    # openpyxl's own look, outside the reader, is as it was (the file closed here: openpyxl
    # leaves it open when it fails).
    with damaged.open("rb") as handle, pytest.raises(SyntaxError):
        openpyxl.load_workbook(handle, read_only=True)
