"""Reading ``.xlsx`` workbooks: one sheet, streamed row by row, with Excel's row numbers.

openpyxl opens the workbook read-only (its styles, epoch and shared strings table, where
Excel keeps the text of every text cell, held whole: about 0.4 KB a row, see
docs/manifests.md); the sheet's XML is parsed as it goes (``pandas.read_excel`` would load
the whole sheet first), its common cells read here and any other by openpyxl's own cell
parser (``_RowReader``: about 20 µs a row instead of 80, docs/bench.md). Date cells arrive
as real ``datetime`` values, not as the text a locale would show.

Sizes are bounded before anything is parsed: the zip directory says how large each XML
part is once inflated, and a part over ``MAX_HELD_PART_BYTES`` (parts parsed whole: shared
strings, styles, the workbook) or ``MAX_SHEET_PART_BYTES`` (a sheet, streamed) is refused.
Rows are let go once read, so a sheet's memory stays flat whatever its length, empty
formatted rows at its end included (openpyxl keeps about 500 bytes of every row it read).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import warnings
import zipfile
from collections import deque
from collections.abc import Iterator
from contextvars import ContextVar
from itertools import islice
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import XMLPullParser, iterparse

from openpyxl.cell.read_only import ReadOnlyCell
from openpyxl.styles.numbers import is_datetime
from openpyxl.utils.datetime import from_excel

from importer.errors import ManifestError

MAX_HELD_PART_BYTES = 512 * 1024**2
"""Inflated size of a part parsed whole, shared strings above all: a full sheet of
1,048,576 rows with three distinct texts a row needs about 250 MB."""
MAX_SHEET_PART_BYTES = 4 * 1024**3
"""Inflated size of a sheet, which is streamed: time, not memory, grows with it."""


def check_part_sizes(path: Path) -> None:
    """Refuse a workbook with a part whose inflated size (from the zip directory, which
    the zip reader holds each part to) passes its bound: before any part is parsed."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # openpyxl says what is wrong with it
    for part in parts:
        if not part.filename.endswith((".xml", ".rels")):
            continue  # pictures, printer settings...: never parsed
        is_sheet = part.filename.startswith("xl/worksheets/")
        bound = MAX_SHEET_PART_BYTES if is_sheet else MAX_HELD_PART_BYTES
        if part.file_size > bound:
            raise ManifestError(
                str(path),
                f"has a part {part.filename!r} of {part.file_size:,} bytes once inflated "
                f"(compressed: {part.compress_size:,}); the importer reads at most "
                f"{bound:,} bytes for a {'sheet' if is_sheet else 'part read whole'}. "
                "Export the report as CSV instead",
            )


def open_sheet(path: Path, sheet: str | None) -> tuple[Any, Any]:
    """The workbook (to close) and the sheet named ``sheet``, or the first one."""
    import openpyxl

    check_part_sizes(path)
    try:
        with warnings.catch_warnings():
            # "Workbook contains no default style", "extension is not supported": about
            # formatting the importer does not read, and nothing the user can act on.
            warnings.simplefilter("ignore")
            with _stated_sizes_only():
                book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises whatever a malformed part makes it raise
        raise ManifestError(
            str(path), f"is not a readable .xlsx workbook ({_reason(error)})"
        ) from error
    if not book.worksheets:
        book.close()
        raise ManifestError(str(path), "is a workbook without sheets")
    if sheet is None:
        return book, book.worksheets[0]
    if sheet not in book.sheetnames:
        book.close()
        raise ManifestError(
            str(path),
            f"has no sheet {sheet!r}; its sheets: {', '.join(repr(n) for n in book.sheetnames)}",
        )
    return book, book[sheet]


_STATED_SIZE_ONLY: ContextVar[bool] = ContextVar("stated_size_only", default=False)


@contextlib.contextmanager
def _stated_sizes_only() -> Iterator[None]:
    """While a book opens (in this thread), its read-only sheets look for their stated size
    only where the schema puts it, before ``<sheetData>``. openpyxl's own look goes on to
    the end of ``<sheetData>`` when there is none (openpyxl's write-only mode writes none):
    every sheet of the book parsed whole before a row is read, 17 µs a row, for a size not
    used here."""
    _bound_size_look()
    token = _STATED_SIZE_ONLY.set(True)
    try:
        yield
    finally:
        _STATED_SIZE_ONLY.reset(token)


@functools.cache
def _bound_size_look() -> None:
    """Puts the choice in openpyxl's read-only sheet, once: a context variable, not a swap
    of the method, so books opened at once in other threads each get their own look."""
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    own = ReadOnlyWorksheet._get_size

    def get_size(worksheet: Any) -> None:
        (_stated_size if _STATED_SIZE_ONLY.get() else own)(worksheet)

    ReadOnlyWorksheet._get_size = get_size


def _stated_size(worksheet: Any) -> None:
    """The sheet's ``<dimension>``, as openpyxl's ``_get_size`` sets it, if it states one."""
    from openpyxl.worksheet._reader import DATA_TAG, DIMENSION_TAG
    from openpyxl.worksheet.dimensions import SheetDimension

    with worksheet._get_source() as source:
        for _, element in iterparse(source, events=("start",)):
            if element.tag == DATA_TAG:
                return
            if element.tag == DIMENSION_TAG:
                bounds = SheetDimension.from_tree(element).boundaries
                worksheet._min_column, worksheet._min_row = bounds[0], bounds[1]
                worksheet._max_column, worksheet._max_row = bounds[2], bounds[3]
                return


def sheet_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """``(row number, values)`` for every row of the sheet, header included."""
    book, worksheet = open_sheet(path, sheet)
    try:
        yield from _sheet_values(book, worksheet)
    except Exception as error:  # a cut or malformed sheet: ParseError, ValueError, KeyError...
        raise ManifestError(str(path), f"is damaged ({_reason(error)})") from error
    finally:
        book.close()


def _sheet_values(book: Any, worksheet: Any) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """``(row number, values)`` of every row the sheet writes.

    openpyxl's own loop clears each row's XML element but leaves it in the tree, and keeps
    the attributes of every formatted row: about 500 bytes a row, so a sheet stretched by
    a million formatted empty rows took 550 MB. Here each row is let go once parsed. Rows
    the sheet does not write are blank: they are not made up (the numbers say the gap),
    and the sheet's stated size, often wrong ("A1"), is not trusted.
    """
    from openpyxl.worksheet._reader import WorkSheetParser

    with worksheet._get_source() as source:
        # openpyxl's parser of one row's cells, as its read-only worksheet uses it: the
        # reference _RowReader holds to, and reads with, any row or cell out of the common.
        parser = WorkSheetParser(
            source,
            worksheet._shared_strings,
            data_only=book.data_only,
            epoch=book.epoch,
            date_formats=book._date_formats,
            timedelta_formats=book._timedelta_formats,
        )
        read_row = _RowReader(worksheet, parser).read
        rows = _row_elements(source)
        read = 0
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except Exception:  # a cut or malformed sheet: see below
                break
            yield read_row(row)
            read += 1
    # The rows before the fault, as the element by element walk finds them, and its error.
    with worksheet._get_source() as source:
        for row in islice(_row_elements_walked(source), read, None):
            yield read_row(row)


def _row_elements(source: IO[bytes]) -> Iterator[Any]:
    """The ``<row>`` elements of the sheet's ``<sheetData>``, each once complete, then let
    go with every finished part of the sheet (merged cells...).

    The XML is fed a chunk at a time; only elements' starts are reported (the first one is
    the sheet, then its parts; the rest are drained unread), and the rows before the
    last one started are complete: the tree is walked per row, not per element. A fault
    (cut XML, a bad zip entry) stops it at its chunk, before rows the chunk completed:
    ``_row_elements_walked`` says which.
    """
    from openpyxl.worksheet._reader import DATA_TAG, ROW_TAG

    parser: Any = XMLPullParser(events=("start",))  # typeshed's events are a union
    sheet: Any = None
    rows: Any = None
    finished = False
    while not finished:
        chunk = source.read(_CHUNK_BYTES)
        if chunk:
            parser.feed(chunk)
        else:
            parser.close()
            finished = True
        if rows is None:
            for _, element in parser.read_events():
                if sheet is None:
                    sheet = element
                if element.tag == DATA_TAG and rows is None:
                    rows = element
        else:
            deque(parser.read_events(), maxlen=0)
        if rows is not None:
            complete = len(rows) if finished else len(rows) - 1
            read = rows[:complete]
            del rows[:complete]
            yield from (row for row in read if row.tag == ROW_TAG)
        if sheet is not None:
            del sheet[:-1]


def _row_elements_walked(source: IO[bytes]) -> Iterator[Any]:
    """The ``<row>`` elements of the sheet as each one ends, wherever it is, walked element
    by element; each let go once read, with every finished part of the sheet."""
    from openpyxl.worksheet._reader import ROW_TAG
    from openpyxl.xml.functions import iterparse

    parents = []
    for event, element in iterparse(source, events=("start", "end")):
        if event == "start":
            parents.append(element)
            continue
        parents.pop()
        if element.tag == ROW_TAG:
            yield element
        if parents and (element.tag == ROW_TAG or len(parents) == 1):
            parents[-1].clear()


_CHUNK_BYTES = 16 * 1024
"""XML fed to the parser at a time: the rows it holds are all that is held of the sheet."""


# A formatted report starts with its title, date and filters, one cell a row.
MAX_TITLE_ROWS = 20


def skip_title_block(
    path: Path, sheet: str | None, records: Iterator[tuple[int, tuple[Any, ...]]]
) -> tuple[Any, ...]:
    """The header row's values: the first row with two or more cells, after a title block."""
    from importer.read.parquet import parquet_cell

    seen = 0
    for number, values in records:
        filled = sum(1 for value in values if parquet_cell(value).strip())
        seen += filled
        if filled >= 2:
            return tuple(values)
        if number > MAX_TITLE_ROWS:
            break
    book, worksheet = open_sheet(path, sheet)
    names = book.sheetnames
    book.close()
    if not seen and not (sheet is None and len(names) > 1):
        raise ManifestError(str(path), f"sheet {worksheet.title!r} is empty")
    hint = ""
    if sheet is None and len(names) > 1:
        hint = f"; its sheets: {', '.join(repr(name) for name in names)}: pass --sheet NAME"
    raise ManifestError(
        str(path),
        f"has no header row in its first {MAX_TITLE_ROWS} rows of sheet {worksheet.title!r} "
        f"(a header needs 2+ column names){hint}",
    )


class _RowReader:
    """A row's values by column from A (None where no cell is written), as openpyxl's
    ``WorkSheetParser.parse_row`` reads its cells, several times faster: the cells exports
    write (shared and inline strings, numbers, dates, booleans, errors, formulas' cached
    values) are read here, any other cell by openpyxl's own ``parse_cell``, which also
    says what is wrong with a malformed one. tests/test_xlsx_rows.py holds them equal.

    A date cell whose format shows no time is a ``date``, not midnight (Excel stores a day
    as that day's 00:00, and the importer refuses dates without times).
    """

    def __init__(self, worksheet: Any, parser: Any) -> None:
        if not parser.data_only:
            raise ValueError("the importer reads formulas' cached values (data_only)")
        self.worksheet = worksheet
        self.parser = parser
        self.number = 0
        self.columns: dict[str, int] = {}
        """Column letters seen, by their number."""
        self.date_only: dict[int, bool] = {}
        """Whether a date style's number format shows no time, by style id."""

    def read(self, row: Any) -> tuple[int, tuple[Any, ...]]:
        """``(row number, values)`` of a ``<row>`` element."""
        number = self.number + 1 if (stated := row.get("r")) is None else _row_number(stated)
        self.number = number
        strings = self.parser.shared_strings
        date_styles = self.parser.date_formats
        columns = self.columns
        values: list[Any] = []
        value: Any
        column = 0
        for cell in row:
            try:
                style = cell.get("s")
                style_id = 0 if style is None else int(style)  # "" is openpyxl's to read
                coordinate = cell.get("r")
                if coordinate is None:
                    at = column + 1
                else:
                    letters = coordinate.rstrip(_DIGITS)
                    if letters == coordinate:
                        raise ValueError(coordinate)  # no row number: openpyxl's to say
                    at = columns[letters]
                kind = cell.get("t", "n")
                if kind == "inlineStr":
                    value = _inline_text(cell)
                elif not (text := cell.findtext(_VALUE_TAG)):
                    value = None
                elif kind == "s":
                    value = strings[int(text)]
                elif kind == "n":
                    number_value = (
                        float(text) if "." in text or "E" in text or "e" in text else int(text)
                    )
                    if style_id in date_styles:
                        value = self._date(number_value, style_id)
                    else:
                        value = number_value
                elif kind == "b":
                    value = bool(int(text))
                elif kind == "d":
                    raise ValueError(kind)  # ISO 8601 dates: rare, openpyxl's to read
                else:
                    value = text  # "str" (a formula's text), "e" (#N/A...)
            except (KeyError, ValueError, TypeError, IndexError, OverflowError):
                at, value = self._by_openpyxl(cell, number, column)
            column = at
            if column == len(values) + 1:
                values.append(value)
            elif column > len(values):
                values.extend([None] * (column - len(values) - 1))
                values.append(value)
            else:
                values[column - 1] = value
        return number, tuple(values)

    def _date(self, serial: float, style: int) -> Any:
        """A date cell's value; a date whose format shows no time is a ``date``."""
        parser = self.parser
        value = from_excel(serial, parser.epoch, timedelta=style in parser.timedelta_formats)
        if isinstance(value, dt.datetime) and style and self._shows_date_only(style):
            return value.date()
        return value

    def _by_openpyxl(self, cell: Any, number: int, column: int) -> tuple[int, Any]:
        """``(column, value)`` of a cell as openpyxl reads it (or its error)."""
        self.parser.row_counter, self.parser.col_counter = number, column
        parsed = self.parser.parse_cell(cell)
        coordinate = cell.get("r")
        if coordinate:
            letters = coordinate.rstrip(_DIGITS)
            if letters != coordinate and letters.isascii() and letters.isalpha():
                self.columns[letters] = parsed["column"]
        value = parsed["value"]
        style = parsed["style_id"]
        if isinstance(value, dt.datetime) and style and self._shows_date_only(style):
            value = value.date()
        return parsed["column"], value

    def _shows_date_only(self, style: int) -> bool:
        known = self.date_only.get(style)
        if known is None:
            number_format = ReadOnlyCell(self.worksheet, 0, 0, None, "n", style).number_format
            known = self.date_only[style] = is_datetime(number_format) == "date"
        return known


_DIGITS = "0123456789"
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_VALUE_TAG = f"{_MAIN}v"
_INLINE_TAG = f"{_MAIN}is"
_TEXT_TAG = f"{_MAIN}t"


def _row_number(stated: str) -> int:
    """A ``<row>``'s ``r``, as openpyxl reads it ("3.0" is row 3)."""
    try:
        return int(stated)
    except ValueError:
        number = float(stated)
        if not number.is_integer():
            raise ValueError(f"{stated} is not a valid row number") from None
        return int(number)


def _inline_text(cell: Any) -> str | None:
    """An inline string's text when it is one plain ``<t>``; else ValueError (openpyxl's
    ``Text`` reads rich text, phonetic runs...)."""
    inline = cell.find(_INLINE_TAG)
    if inline is None:
        return None
    if len(inline) != 1 or inline.attrib or inline[0].tag != _TEXT_TAG or len(inline[0]):
        raise ValueError("rich inline string")
    text: str | None = inline[0].text
    return text or ""


def _reason(error: Exception) -> str:
    """What went wrong, as openpyxl, zipfile or the XML parser said it."""
    if isinstance(error, zipfile.BadZipFile | OSError):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
