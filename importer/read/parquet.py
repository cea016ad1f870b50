"""Typed cells as text: Parquet files read batch by batch, and ids that arrive as numbers.

Parquet (and ``.xlsx``) cells arrive typed; each becomes the text a CSV cell would hold, so
one validator serves every format. An id stored as a float that cannot hold it exactly is a
file error: the CRM's id may already be altered.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from importer.errors import ManifestError

# Integers above 2**53 cannot all be held by a float: such an id has already been altered.
MAX_EXACT_FLOAT = 2**53


def id_text(value: Any, path: str, column: str, row: int) -> str:
    """An id cell as text, exactly; a number a float cannot hold exactly is a file error."""
    if isinstance(value, float) and not math.isnan(value):
        if not value.is_integer() or abs(value) > MAX_EXACT_FLOAT:
            raise ManifestError(
                path,
                f"column {column!r} holds ids as floating-point numbers, which keep only "
                f"15-16 digits: row {row} has {value!r}, so the CRM's id may already be "
                "altered and would become a wrong idempotency key. Export the id column as "
                "text (Excel: format it as Text; pandas: read it with dtype=str) and try again",
                column=column,
            )
        return str(int(value))
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    return parquet_cell(value)


def parquet_file(path: Path) -> Any:
    """The file opened for reading its schema and batches; a file error if it is not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise ManifestError(str(path), f"is not a readable Parquet file ({error})") from error


def parquet_batches(
    path: Path, batch_size: int, id_column: str | None, columns: bool = False
) -> Iterator[list[tuple[int, dict[str, str]]] | tuple[list[str], list[int], list[list[str]]]]:
    """(row number, cells) of each non-blank record, batch by batch; ids read exactly.

    Column by column: a text column is taken as it is (nulls blank), other columns cell
    by cell through ``parquet_cell``, and rows are made of the columns at the end; with
    ``columns``, a batch whose first cells are all filled (none blank) is given as its
    (names, row numbers, columns) instead. Short rows are read from the file several
    batches at a time (``batches_read_at_once``); a fault there is read again a batch at a
    time, so the rows before it are handed on and the fault named where it is."""
    import pyarrow as pa

    parquet = parquet_file(path)
    names = parquet.schema_arrow.names
    batch_size = max(batch_size, 1)
    handed_on = 0
    at_once = batches_read_at_once(parquet, batch_size)
    for reading in (at_once, 1) if at_once > 1 else (1,):
        read = 0
        try:
            for block in parquet.iter_batches(batch_size=batch_size * reading):
                for start in range(0, block.num_rows, batch_size):
                    if read + start < handed_on:
                        continue  # handed on before a fault made the file be read again
                    record_batch = block.slice(start, batch_size)
                    yield _batch_texts(path, names, record_batch, handed_on + 1, id_column, columns)
                    handed_on += record_batch.num_rows
                read += block.num_rows
            return
        except (pa.ArrowException, OSError) as error:
            if reading == 1:
                raise ManifestError(
                    str(path), f"is damaged after row {handed_on} ({error})"
                ) from error


BATCHES_READ = 8
"""Batches read from the file at a time, then cut, when they hold short rows: each of
pyarrow's reads costs as much again as a thousand rows (0.3 s of 0.6 at a million rows, in
1,000-row batches)."""
BYTES_READ_AT_ONCE = 8 * 1024 * 1024
"""What several batches read at once may hold, by the file's own count of its rows' bytes:
memory stays bounded by ``--batch-size`` (a batch of transcripts is read alone)."""


def batches_read_at_once(parquet: Any, batch_size: int) -> int:
    """``BATCHES_READ`` when that many batches of the file's rows (their average size, as
    the file's metadata counts it) fit in ``BYTES_READ_AT_ONCE``; else one."""
    metadata = parquet.metadata
    row_groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
    rows = sum(group.num_rows for group in row_groups)
    if not rows:
        return 1
    row_bytes = sum(group.total_byte_size for group in row_groups) / rows
    return BATCHES_READ if row_bytes * batch_size * BATCHES_READ <= BYTES_READ_AT_ONCE else 1


def _batch_texts(
    path: Path,
    names: list[str],
    record_batch: Any,
    first: int,
    id_column: str | None,
    columns: bool,
) -> list[tuple[int, dict[str, str]]] | tuple[list[str], list[int], list[list[str]]]:
    """One batch's non-blank records as (row number, cells), or as (names, row numbers,
    columns) with ``columns`` when no first cell is blank."""
    table = _microsecond_times(record_batch)
    texts = [
        _id_texts(column.to_pylist(), str(path), name, first)
        if name == id_column and not _is_text(column)
        else _column_texts(column)
        for name, column in zip(names, table.columns, strict=True)
    ]
    if columns and texts and table.num_rows and all(map(str.strip, texts[0])):
        return names, list(range(first, first + table.num_rows)), texts
    return [
        (number, dict(zip(names, cells, strict=True)))
        for number, cells in enumerate(zip(*texts, strict=True), start=first)
        if cells[0].strip() or "".join(cells).strip()  # a blank record carries none
    ]


def _column_texts(column: Any) -> list[str]:
    if _is_text(column):  # nulls blank: the text a CSV cell would hold
        filled = column.fill_null("") if column.null_count else column  # a column, not a call
        return filled.to_pylist()  # type: ignore[no-any-return]
    return [parquet_cell(value) for value in column.to_pylist()]


def _is_text(column: Any) -> bool:
    """A column of text, taken as it is (an id in it is already exact)."""
    import pyarrow as pa

    return bool(pa.types.is_string(column.type) or pa.types.is_large_string(column.type))


def _id_texts(values: list[Any], path: str, column: str, first_row: int) -> list[str]:
    return [id_text(value, path, column, row) for row, value in enumerate(values, first_row)]


def _microsecond_times(record_batch: Any) -> Any:
    """Nanosecond times cast to microseconds: Python's datetime holds no finer, and without
    pandas pyarrow refuses to convert them at all."""
    import pyarrow as pa

    columns = []
    for column in record_batch.columns:
        kind = column.type
        if pa.types.is_timestamp(kind) and kind.unit == "ns":
            column = column.cast(pa.timestamp("us", tz=kind.tz), safe=False)
        elif pa.types.is_time64(kind) and kind.unit == "ns":
            column = column.cast(pa.time64("us"), safe=False)
        elif pa.types.is_duration(kind) and kind.unit == "ns":
            column = column.cast(pa.duration("us"), safe=False)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=record_batch.schema.names)


def parquet_cell(value: Any) -> str:
    """A Parquet value as the text a CSV cell would hold, so one validator serves both."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)
