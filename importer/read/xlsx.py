"""Reading ``.xlsx`` workbooks: one sheet, streamed row by row, with Excel's row numbers.

openpyxl's read-only mode parses the sheet's XML as it goes (``pandas.read_excel`` would
load the whole sheet first); only the workbook's shared strings table, where Excel keeps
the text of every text cell, is held whole (about 0.4 KB a row, see docs/manifests.md).
Date cells arrive as real ``datetime`` values, not as the text a locale would show.
"""

from __future__ import annotations

import datetime as dt
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openpyxl.styles.numbers import is_datetime

from importer.errors import ManifestError


def open_sheet(path: Path, sheet: str | None) -> tuple[Any, Any]:
    """The workbook (to close) and the sheet named ``sheet``, or the first one."""
    import openpyxl

    try:
        with warnings.catch_warnings():
            # "Workbook contains no default style", "extension is not supported": about
            # formatting the importer does not read, and nothing the user can act on.
            warnings.simplefilter("ignore")
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


def sheet_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """``(row number, values)`` for every row of the sheet, header included."""
    book, worksheet = open_sheet(path, sheet)
    # Some exporters write a wrong sheet size (often "A1"); read-only mode trusts it.
    worksheet.reset_dimensions()
    try:
        for number, cells in enumerate(worksheet.iter_rows(), start=1):
            yield number, tuple(_value(cell) for cell in cells)
    except Exception as error:  # a cut or malformed sheet: ParseError, ValueError, KeyError...
        raise ManifestError(str(path), f"is damaged ({_reason(error)})") from error
    finally:
        book.close()


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


def _value(cell: Any) -> Any:
    """A cell's value; a date cell whose format shows no time is a ``date``, not midnight
    (Excel stores a day as that day's 00:00, and the importer refuses dates without times).
    """
    value = cell.value
    if isinstance(value, dt.datetime) and is_datetime(cell.number_format) == "date":
        return value.date()
    return value


def _reason(error: Exception) -> str:
    """What went wrong, as openpyxl, zipfile or the XML parser said it."""
    if isinstance(error, zipfile.BadZipFile | OSError):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
