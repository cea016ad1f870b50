"""Reading manifests: CSV or Parquet, in bounded batches, with the file's own row numbers.

CSV goes through the standard library's ``csv`` module rather than pandas: only it can tell
the line a record starts on when quoted cells span several lines, and users fix files by
line number. Parquet goes through pyarrow record batches. Either way memory holds one batch.

    >>> sample = Path(__file__).parent.parent / "manifests" / "sample.csv"
    >>> for batch in read_manifest(sample, batch_size=2):
    ...     print([(row.row_number, row.cells["id"]) for row in batch])
    ...     break
    [(2, '00T0005000'), (3, '00T0005001')]
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importer.errors import ManifestError
from importer.spreadsheet import restore

DEFAULT_BATCH_SIZE = 1000
# A single cell may legitimately hold a whole transcript (up to 950,000 bytes) and more.
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True)
class ManifestRow:
    """One record: its row number as the user sees it and its cells by column name."""

    row_number: int
    cells: dict[str, str]
    problem: str | None = None
    """A structural problem with the record itself (e.g. too many cells)."""


def manifest_format(path: Path) -> str:
    """``csv`` or ``parquet``, from the extension, else from the file's magic bytes."""
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xls", ".xlsm", ".ods", ".numbers"}:
        raise ManifestError(
            str(path), "is a spreadsheet workbook: save it as CSV (UTF-8) or Parquet first"
        )
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix in {".csv", ".tsv", ".txt"}:
        return "csv"
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise ManifestError(str(path), f"cannot be read ({error.strerror})") from error
    return "parquet" if head == b"PAR1" else "csv"


def check_readable(path: Path) -> None:
    """Fail early, with a plain message, for a path that is not a readable file."""
    if not path.exists():
        raise ManifestError(str(path), "no such file")
    if path.is_dir():
        raise ManifestError(str(path), "is a folder, not a manifest file")
    if path.stat().st_size == 0:
        raise ManifestError(str(path), "is empty: a manifest needs a header row and data rows")


def read_columns(path: Path) -> list[str]:
    """The manifest's column names, without reading its rows."""
    check_readable(path)
    if manifest_format(path) == "parquet":
        return _parquet_file(path).schema_arrow.names
    with _open_csv(path) as handle:
        return _csv_header(path, csv.reader(handle))


def read_manifest(path: Path, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[list[ManifestRow]]:
    """Yield the manifest's records in batches of at most ``batch_size``."""
    check_readable(path)
    if manifest_format(path) == "parquet":
        yield from _read_parquet(path, batch_size)
    else:
        yield from _read_csv(path, batch_size)


def _open_csv(path: Path) -> io.TextIOWrapper:
    # surrogateescape keeps undecodable bytes so the row, not the file, is reported.
    return path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")


def _csv_header(path: Path, reader: Any) -> list[str]:
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise ManifestError(str(path), f"line 1 is not CSV ({error})") from error
    if not header or not any(cell.strip() for cell in header):
        raise ManifestError(str(path), "has no header row (line 1 is blank)")
    names = [name.strip() for name in header]
    if any("\x00" in name or _has_undecodable(name) for name in names):
        raise ManifestError(str(path), "is not a UTF-8 CSV file (binary data in the header)")
    repeated = sorted({name for name in names if names.count(name) > 1 and name})
    if repeated:
        raise ManifestError(str(path), f"header names a column twice: {', '.join(repeated)}")
    return names


def _has_undecodable(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _read_csv(path: Path, batch_size: int) -> Iterator[list[ManifestRow]]:
    with _open_csv(path) as handle:
        reader = csv.reader(handle, strict=False)
        header = _csv_header(path, reader)
        batch: list[ManifestRow] = []
        start_line = reader.line_num + 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                raise ManifestError(
                    str(path), f"line {start_line} cannot be read as CSV ({error})"
                ) from error
            line = start_line
            start_line = reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue  # blank lines carry no recording
            problem = None
            if len(record) > len(header):
                extra = record[len(header) :]
                if any(cell.strip() for cell in extra):
                    problem = (
                        f"has {len(record)} cells but the header has {len(header)} columns "
                        "(a delimiter inside an unquoted cell?)"
                    )
            cells = {name: restore(cell) for name, cell in zip(header, record, strict=False)}
            for name in header[len(record) :]:
                cells[name] = ""
            batch.append(ManifestRow(line, cells, problem))
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def _parquet_file(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise ManifestError(str(path), f"is not a readable Parquet file ({error})") from error


def _read_parquet(path: Path, batch_size: int) -> Iterator[list[ManifestRow]]:
    import pyarrow as pa

    parquet = _parquet_file(path)
    names = parquet.schema_arrow.names
    row_number = 0
    try:
        for record_batch in parquet.iter_batches(batch_size=batch_size):
            batch = []
            for record in record_batch.to_pylist():
                row_number += 1
                cells = {name: parquet_cell(record.get(name)) for name in names}
                if any(cell.strip() for cell in cells.values()):
                    batch.append(ManifestRow(row_number, cells))
            yield batch
    except (pa.ArrowException, OSError) as error:
        raise ManifestError(str(path), f"is damaged after row {row_number} ({error})") from error


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
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)
