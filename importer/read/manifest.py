"""Reading manifests: CSV, Excel ``.xlsx`` or Parquet, in bounded batches, with row numbers.

CSV goes through the standard library's ``csv`` module rather than pandas: only it can tell
the line a record starts on when quoted cells span several lines, and users fix files by
line number. Its encoding and delimiter come from the file or the options
(``csv_dialect``). ``.xlsx`` sheets are streamed with openpyxl (``xlsx``), numbered as Excel
numbers rows; Parquet goes through pyarrow record batches. Either way memory holds one
batch (Parquet's short rows are read a few batches at a time, 8 MB at most). A report
footer after the last record, and a grouped report's headings and subtotals between
records (rows with no id and one or two cells), are dropped and counted.

    >>> sample = Path(__file__).parents[2] / "manifests" / "sample.csv"
    >>> for batch in read_manifest(sample, batch_size=2):
    ...     print([(row.row_number, row.cells["id"]) for row in batch])
    ...     break
    [(2, '00T0005000'), (3, '00T0005001')]
"""

from __future__ import annotations

import csv
import functools
import io
import operator
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any, NamedTuple

from importer.errors import ManifestError
from importer.read.csv_dialect import (
    DELIMITERS,
    LINE_TOO_LONG,
    MAX_LINE_CHARS,
    MAX_REPORT_ROW_CELLS,
    UNDECODABLE,
    BoundedLines,
    FooterStats,
    ReportRowStats,
    TrailingFooter,
    detect_encoding,
    drop_report_rows,
    drop_trailing_footer,
    few_cells_filled,
    lines_are_short,
    sniff_delimiter,
    without_report_rows,
)
from importer.read.formulas import restore, written_by_importer
from importer.read.kinds import check_readable, manifest_format
from importer.read.parquet import id_text, parquet_batches, parquet_cell, parquet_file
from importer.settings import DEFAULT_BATCH_SIZE, SourceOptions

MAX_CELL_CHARS = 16 * 1024 * 1024
"""A cell may hold a whole transcript (950,000 bytes) and more; beyond this its row is refused."""
csv.field_size_limit(MAX_LINE_CHARS)


class ManifestRow(NamedTuple):
    """One record: its row number as the user sees it and its cells by column name.

    A tuple: a million of them are made in a plan, a third of the time of a dataclass."""

    row_number: int
    cells: dict[str, str]
    problem: str | None = None
    """A structural problem with the record itself (e.g. too many cells)."""


class PlainColumns:
    """A batch of records each as wide as the header, nothing odd in any: kept column by
    column, its rows made only when asked (``rows``, ``row``). Pass one keys it
    (``RowKeys.keys``) and its workers map it as it is (``columnar.index_entries``): a
    row's dict is made only where a rule needs it, and columns cross to a worker in a third
    of the time of rows."""

    __slots__ = ("columns", "header", "numbers")

    def __init__(
        self, header: Sequence[str], numbers: list[int], columns: Sequence[Sequence[str]]
    ) -> None:
        self.header = header
        self.numbers = numbers
        """The rows' numbers, in order."""
        self.columns = columns
        """Each header column's cells, in the rows' order."""

    def __len__(self) -> int:
        return len(self.numbers)

    def row(self, index: int) -> ManifestRow:
        """The batch's ``index``-th row, as ``rows`` makes it."""
        cells = dict(zip(self.header, [column[index] for column in self.columns], strict=True))
        return ManifestRow(self.numbers[index], cells)

    def sliced(self, start: int, stop: int) -> PlainColumns:
        """The batch's rows from ``start`` to ``stop``, still column by column."""
        return PlainColumns(
            self.header, self.numbers[start:stop], [column[start:stop] for column in self.columns]
        )

    def subset(self, indexes: Sequence[int]) -> PlainColumns:
        """The batch's rows at these places (in order), still column by column."""
        return PlainColumns(
            self.header,
            [self.numbers[i] for i in indexes],
            [[column[i] for i in indexes] for column in self.columns],
        )

    def rows(self) -> list[ManifestRow]:
        """The batch's rows, as the reader makes them of records of the header's width."""
        header = self.header
        return manifest_rows(
            [
                (number, dict(zip(header, cells, strict=True)), None)
                for number, cells in zip(self.numbers, zip(*self.columns, strict=True), strict=True)
            ]
        )


Batch = list[ManifestRow] | PlainColumns
"""What ``read_manifest_columns`` yields: rows, or plain records column by column."""


def batch_values(batch: Batch) -> Any:
    """The batch as plain values (marshal's): its columns' (header, numbers, columns), or its
    rows' tuples; ``batch_of`` makes it again."""
    if isinstance(batch, PlainColumns):
        return batch.header, batch.numbers, batch.columns
    return list(map(tuple, batch))


def batch_of(values: Any, columns: bool) -> Batch:
    """The batch of these ``batch_values`` (``columns``: of a ``PlainColumns``)."""
    return PlainColumns(*values) if columns else manifest_rows(values)


@dataclass
class ReadStats:
    """What a complete read of the file noticed, for one notice each."""

    footer: FooterStats = field(default_factory=FooterStats)
    report_rows: ReportRowStats = field(default_factory=ReportRowStats)
    undecodable_rows: int = 0
    first_undecodable: int | None = None

    def count_undecodable(self, rows: Iterable[int]) -> None:
        """Rows whose bytes are not text in the file's encoding."""
        for row in rows:
            self.undecodable_rows += 1
            if self.first_undecodable is None:
                self.first_undecodable = row


def read_columns(path: Path, source: SourceOptions | None = None) -> list[str]:
    """The manifest's column names, without reading its rows."""
    source = source or SourceOptions()
    check_readable(path)
    kind = manifest_format(path)
    if kind == "parquet":
        return list(parquet_file(path).schema_arrow.names)
    if kind == "xlsx":
        return _sheet_header(path, _skip_title_block(path, source, _sheet_records(path, source)))
    with _open_csv(path, source) as handle:
        return _csv_header(path, _csv_reader(handle, source), handle.encoding)


def read_samples(
    path: Path, source: SourceOptions | None = None, limit: int = 50
) -> Iterator[ManifestRow]:
    """The first ``limit`` records (for ``importer init``)."""
    count = 0
    for batch in read_manifest(path, min(limit, DEFAULT_BATCH_SIZE), source):
        for row in batch:
            if _looks_like_report_row(row):
                continue  # a grouped report's heading or subtotal would mislead the guesses
            yield row
            count += 1
            if count >= limit:
                return


def read_manifest(
    path: Path,
    batch_size: int = DEFAULT_BATCH_SIZE,
    source: SourceOptions | None = None,
    stats: ReadStats | None = None,
) -> Iterator[list[ManifestRow]]:
    """Yield the manifest's records in batches of at most ``batch_size``."""
    for batch in _batches(path, batch_size, source, stats, columns=False):
        assert not isinstance(batch, PlainColumns)
        yield batch


def read_manifest_columns(
    path: Path,
    batch_size: int = DEFAULT_BATCH_SIZE,
    source: SourceOptions | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Batch]:
    """``read_manifest``'s batches, one of plain records (CSV, Parquet) kept column by
    column."""
    return _batches(path, batch_size, source, stats, columns=True)


def _batches(
    path: Path,
    batch_size: int,
    source: SourceOptions | None,
    stats: ReadStats | None,
    *,
    columns: bool,
) -> Iterator[Batch]:
    source = source or SourceOptions()
    check_readable(path)
    kind = manifest_format(path)
    if kind == "parquet":
        yield from _read_parquet(path, batch_size, source, columns)
    elif kind == "xlsx":
        yield from _rebatched(([row] for row in _read_sheet(path, source, stats)), batch_size)
    else:
        yield from _rebatched(_read_csv(path, source, stats, columns), batch_size)


def _looks_like_report_row(row: ManifestRow) -> bool:
    """One or two cells filled in a wide row: a heading or subtotal, whatever the id column."""
    cells = list(row.cells.values())
    return len(cells) > 2 * MAX_REPORT_ROW_CELLS and few_cells_filled(cells)


_manifest_row = functools.partial(tuple.__new__, ManifestRow)
"""``ManifestRow._make`` of all three fields, without a call of Python per row (as a
NamedTuple's own ``__new__`` is: a tenth of a plain CSV row's reading)."""


def manifest_rows(values: Iterable[tuple[int, dict[str, str], str | None]]) -> list[ManifestRow]:
    """The rows of these (row number, cells, problem) tuples, made in C."""
    return list(map(_manifest_row, values))


def _rebatched(chunks: Iterator[Batch], batch_size: int) -> Iterator[Batch]:
    """The rows of these chunks in batches of ``batch_size`` (the last may be shorter; a
    size below one is one), whatever the chunks' sizes. A batch made of ``PlainColumns``
    alone stays column by column: a record dropped (a blank line, a report's subtotal)
    joins two chunks' columns, and every batch after it stays columns."""
    batch_size = max(batch_size, 1)
    waiting: deque[Batch] = deque()
    used = 0
    """Rows of the first chunk waiting already handed on."""
    count = 0
    """Rows waiting, not handed on."""
    for chunk in chunks:
        if not waiting and len(chunk) == batch_size:
            yield chunk  # as read: the default batch is the reader's
            continue
        if chunk:
            waiting.append(chunk)
            count += len(chunk)
        while count >= batch_size:
            pieces: list[Batch] = []
            need = batch_size
            while need:
                first = waiting[0]
                take = min(need, len(first) - used)
                pieces.append(_part(first, used, used + take))
                used += take
                need -= take
                if used == len(first):
                    waiting.popleft()
                    used = 0
            count -= batch_size
            yield _joined(pieces)
    if count:
        yield _joined([_part(waiting[0], used, len(waiting[0])), *list(waiting)[1:]])


def _part(chunk: Batch, start: int, stop: int) -> Batch:
    """The chunk's rows from ``start`` to ``stop``: the chunk itself when that is all."""
    if start == 0 and stop == len(chunk):
        return chunk
    return chunk[start:stop] if isinstance(chunk, list) else chunk.sliced(start, stop)


def _joined(pieces: list[Batch]) -> Batch:
    """These pieces as one batch: columns if each is (and of one header), else rows."""
    if len(pieces) == 1:
        return pieces[0]
    plain = [p for p in pieces if isinstance(p, PlainColumns)]
    if len(plain) == len(pieces) and all(p.header == plain[0].header for p in plain):
        columns = zip(*(p.columns for p in plain), strict=True)
        return PlainColumns(
            plain[0].header,
            [n for p in plain for n in p.numbers],
            [list(chain.from_iterable(cells)) for cells in columns],
        )
    return list(chain.from_iterable(p.rows() if isinstance(p, PlainColumns) else p for p in pieces))


def _open_csv(path: Path, source: SourceOptions) -> io.TextIOWrapper:
    encoding = detect_encoding(path, source.encoding)
    # Undecodable bytes are kept (as lone surrogates) so the row, not the file, is reported.
    return path.open("r", encoding=encoding, errors=UNDECODABLE, newline="")


def _csv_reader(handle: io.TextIOWrapper, source: SourceOptions) -> Any:
    delimiter = source.delimiter
    if delimiter is None:
        first_line = handle.readline(MAX_LINE_CHARS)
        handle.seek(0)
        delimiter = sniff_delimiter(first_line)
    short = lines_are_short(Path(handle.name), handle.encoding)
    lines = handle if short else BoundedLines(handle)
    return csv.reader(lines, delimiter=delimiter, strict=False)


def _csv_header(path: Path, reader: Any, encoding: str) -> list[str]:
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise ManifestError(str(path), f"line 1 is not CSV ({error})") from error
    if not header or not any(cell.strip() for cell in header):
        raise ManifestError(str(path), "has no header row (line 1 is blank)")
    if LINE_TOO_LONG in header:
        raise ManifestError(
            str(path),
            f"line 1 is longer than {MAX_LINE_CHARS // (1024 * 1024)} MB: "
            "not a CSV manifest (its header is one short line)",
        )
    names = [name.strip() for name in header]
    if any("\x00" in name for name in names):
        raise ManifestError(str(path), "is not a UTF-8 CSV file (binary data in the header)")
    undecodable = next((name for name in names if _has_undecodable(name)), None)
    if undecodable is not None and encoding.startswith("utf-16"):
        raise ManifestError(str(path), "its header is not valid UTF-16 text: the file is damaged")
    if undecodable is not None:
        shown = undecodable.encode("utf-8", "surrogateescape").decode("cp1252", "replace")
        raise ManifestError(
            str(path),
            f"its header is not UTF-8 (column {shown!r} as Windows-1252 reads it); pass "
            "--encoding cp1252 (or latin-1), or save the file as UTF-8",
        )
    return names  # a name used twice matters only if read (mapping.check_columns)


def _column_index(header: list[str], column: str | None) -> int | None:
    return header.index(column) if column in header else None


def _has_undecodable(text: str) -> bool:
    return any("\udc00" <= ch <= "\udcff" for ch in text)


CSV_BATCH = 1000
"""Records read at a time: a batch's cells are checked at once for what is nearly never there."""


def _read_csv(
    path: Path, source: SourceOptions, stats: ReadStats | None, columns: bool = False
) -> Iterator[Batch]:
    """The file's rows, a list at a time (at most ``CSV_BATCH``; perhaps none); with
    ``columns``, a batch of plain records as ``PlainColumns``."""
    with _open_csv(path, source) as handle:
        reader = _csv_reader(handle, source)
        header = _csv_header(path, reader, handle.encoding)
        ours = written_by_importer(header)
        footer = TrailingFooter(stats.footer if stats is not None else None)
        report_rows = stats.report_rows if stats is not None else None
        delimiter = reader.dialect.delimiter
        id_index = _column_index(header, source.id_column)
        width = len(header)
        for batch in _csv_records(path, reader):
            cells = list(chain.from_iterable(map(_record_of, batch)))
            # One search of the joined cells: the separator is not in the marker; and no cell
            # is longer than all of them together.
            joined = "\x01".join(cells)
            odd = (
                ours
                or LINE_TOO_LONG in joined
                or (len(joined) > MAX_CELL_CHARS and max(map(len, cells)) > MAX_CELL_CHARS)
            )
            kept = without_report_rows(footer.feed(batch), id_index, report_rows)
            records = list(map(_record_of, kept))
            if not odd and set(map(len, records)) <= {width}:
                # What _row makes of records of the header's width with nothing odd.
                if columns and kept:
                    yield PlainColumns(
                        header, [n for n, _, _ in kept], list(zip(*records, strict=True))
                    )
                    continue
                plain = [(n, dict(zip(header, record, strict=True)), None) for n, record, _ in kept]
                yield manifest_rows(plain)
                continue
            rows = []
            for line, record, last in kept:
                if odd or len(record) != width:
                    too_long = LINE_TOO_LONG in "\x01".join(record)
                    shape = _csv_shape(header, record, delimiter, (line, last))
                    rows.append(
                        _row(header, line, record, ours=ours, too_long=too_long, shape=shape)
                    )
                else:
                    rows.append(ManifestRow(line, dict(zip(header, record, strict=True))))
            yield rows
        footer.end()


def _csv_records(path: Path, reader: Any) -> Iterator[list[tuple[int, list[str], int]]]:
    """``(first line, cells, last line)`` of every record that is not blank, in batches.

    Read a batch at a time: when the batch's records took one line each (the reader's
    line count says so), their lines follow from their places; otherwise each record's
    lines are counted from the line breaks its quoted cells hold."""
    while True:
        before = reader.line_num
        records: list[list[str]] = []
        try:
            for record in islice(reader, CSV_BATCH):
                records.append(record)
        except csv.Error as error:
            failing = before + sum(map(_lines_of, records)) + 1
            raise ManifestError(
                str(path), f"line {failing} cannot be read as CSV ({error})"
            ) from error
        if not records:
            return
        placed: Iterable[tuple[int, list[str], int]]
        if reader.line_num - before == len(records):
            lines = range(before + 1, before + 1 + len(records))
            placed = zip(lines, records, lines, strict=True)
        else:
            placed = []
            last = before
            for record in records:
                first, last = last + 1, last + _lines_of(record)
                placed.append((first, record, last))
            # A quote left open to the end of the file keeps the last line's break too.
            first, record, last = placed[-1]
            placed[-1] = (first, record, min(last, reader.line_num))
        # Blank lines carry no recording (the first cell, when filled, says so at once).
        try:
            filled = all(map(str.strip, map(_first_cell, records)))  # in C, nearly always
        except IndexError:  # a blank line: a record of no cell
            filled = False
        yield (
            list(placed)
            if filled
            else [
                (first, record, last)
                for first, record, last in placed
                if record and (record[0].strip() or "".join(record).strip())
            ]
        )


_first_cell = operator.itemgetter(0)
_record_of = operator.itemgetter(1)


def _lines_of(record: list[str]) -> int:
    """The lines a record took: one, and one more for each line break in its cells (the
    reader splits lines at ``\\r\\n``, ``\\n`` and ``\\r``, and keeps them in quoted cells)."""
    text = "\x01".join(record)
    return 1 + text.count("\n") + text.count("\r") - text.count("\r\n")


def _row(
    header: list[str],
    number: int,
    record: list[str],
    *,
    ours: bool = False,
    too_long: bool = False,
    shape: str | None = None,
) -> ManifestRow:
    """One record as a row; ``ours``: an errors.csv fed back, whose cells were defused.

    ``shape``: what is wrong with a CSV record's cells (``_csv_shape``), if anything.
    """
    problem = None
    if too_long:
        record = []  # nothing of it is kept
        problem = (
            f"is longer than {MAX_LINE_CHARS // (1024 * 1024)} MB on one line; the row was not read"
        )
    elif max(map(len, record), default=0) > MAX_CELL_CHARS:
        sizes = zip(header, map(len, record), strict=False)
        name, size = next((n, size) for n, size in sizes if size > MAX_CELL_CHARS)
        record = [cell if len(cell) <= MAX_CELL_CHARS else "" for cell in record]
        problem = (
            f"column {name!r} holds {size // (1024 * 1024)} MB; a cell may hold at most "
            f"{MAX_CELL_CHARS // (1024 * 1024)} MB"
        )
    elif shape is not None:
        problem = shape
    elif len(record) > len(header):
        extra = record[len(header) :]
        if any(cell.strip() for cell in extra):
            problem = (
                f"has {len(record)} cells but the header has {len(header)} columns "
                "(a delimiter inside an unquoted cell?)"
            )
    if ours:
        record = [restore(cell) for cell in record]
    cells = dict(zip(header, record, strict=False))
    for name in header[len(record) :]:
        cells[name] = ""
    return ManifestRow(number, cells, problem)


def _csv_shape(
    header: list[str], record: list[str], delimiter: str, lines: tuple[int, int]
) -> str | None:
    """Why a CSV record has fewer cells than the header, when the file can tell."""
    if len(record) >= len(header):
        return None
    short = f"has {len(record)} cell(s) but the header has {len(header)} columns"
    other = _other_delimiter(header, record, delimiter)
    if other is not None:
        return f"{short}: it is separated by {other!r}, the header by {delimiter!r}"
    first, last = lines
    if last > first and record and "\n" in record[-1]:
        return (
            f"{short}: the quote opening column {header[len(record) - 1]!r} is never closed, "
            f"so lines {first}-{last} were read as one record; close the quote and run again"
        )
    return None


def _other_delimiter(header: list[str], record: list[str], delimiter: str) -> str | None:
    """The delimiter that splits a short record into exactly the header's columns, if any:
    a row pasted in from a file of another locale."""
    if len(record) >= len(header):
        return None
    for other in DELIMITERS:
        if other != delimiter and len(record) + sum(c.count(other) for c in record) == len(header):
            return other
    return None


def _sheet_records(path: Path, source: SourceOptions) -> Iterator[tuple[int, tuple[Any, ...]]]:
    from importer.read.xlsx import sheet_rows

    return sheet_rows(path, source.sheet)


def _skip_title_block(path: Path, source: SourceOptions, records: Iterator[Any]) -> Any:
    from importer.read.xlsx import skip_title_block

    return skip_title_block(path, source.sheet, records)


def _sheet_header(path: Path, values: tuple[Any, ...]) -> list[str]:
    names = [parquet_cell(value).strip() for value in values]
    while names and not names[-1]:
        names.pop()  # formatting can stretch a sheet past its last column
    if not any(names):
        raise ManifestError(str(path), "has no header row (row 1 of the sheet is blank)")
    return names  # a name used twice matters only if read (mapping.check_columns)


def _read_sheet(
    path: Path, source: SourceOptions, stats: ReadStats | None
) -> Iterator[ManifestRow]:
    records = _sheet_records(path, source)
    header = _sheet_header(path, _skip_title_block(path, source, records))
    id_index = _column_index(header, source.id_column)

    def texts() -> Iterator[tuple[int, list[str], tuple[Any, ...]]]:
        for number, values in records:
            cells = [parquet_cell(value) for value in values]
            if any(cell.strip() for cell in cells):
                yield number, cells, values

    footer = stats.footer if stats is not None else None
    report_rows = stats.report_rows if stats is not None else None
    kept = drop_trailing_footer(texts(), footer)
    for number, cells, values in drop_report_rows(kept, id_index, report_rows):
        if id_index is not None and id_index < len(values):
            cells[id_index] = id_text(values[id_index], str(path), header[id_index], number)
        yield _row(header, number, cells)


def _read_parquet(
    path: Path, batch_size: int, source: SourceOptions, columns: bool = False
) -> Iterator[Batch]:
    for batch in parquet_batches(path, batch_size, source.id_column, columns):
        if isinstance(batch, tuple):
            yield PlainColumns(*batch)
        else:
            yield manifest_rows([(number, cells, None) for number, cells in batch])
