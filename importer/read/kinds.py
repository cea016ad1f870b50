"""What kind of file a manifest is: CSV, ``.xlsx`` or Parquet, or something to refuse.

The extension decides, unless the first bytes say the file is something no extension can
make readable (a password-protected workbook, a compressed export): then one message says
what it is and what to do, rather than a CSV reader's complaint about binary data.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from importer.errors import ManifestError

ZIP_MAGIC = b"PK\x03\x04"
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}
OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
"""A compound file: a password-protected (encrypted) workbook, or an old binary .xls."""


def manifest_format(path: Path) -> str:
    """``csv``, ``xlsx`` or ``parquet``, from the extension, else from the magic bytes.

    Bytes that no extension can make readable are refused whatever the name, saying what
    they are: a compound file (encrypted workbook or ``.xls``), a gzip or zip archive, a
    workbook or Parquet file named as CSV text.
    """
    suffix = path.suffix.lower()
    if suffix in {".xls", ".ods", ".numbers"}:
        raise ManifestError(
            str(path), f"is a {suffix} workbook: save it as .xlsx, CSV (UTF-8) or Parquet first"
        )
    try:
        with path.open("rb") as handle:
            head = handle.read(len(OLE2_MAGIC))
    except OSError as error:
        raise ManifestError(str(path), f"cannot be read ({error.strerror})") from error
    if head == OLE2_MAGIC:
        raise ManifestError(
            str(path),
            "is a password-protected (encrypted) workbook or an old Excel .xls file, not "
            ".xlsx or CSV: open it in Excel, remove the password if it has one, and save it "
            "as .xlsx or CSV (UTF-8)",
        )
    if suffix in {".xlsx", ".xlsm"}:
        return "xlsx"
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if head.startswith(GZIP_MAGIC):
        raise ManifestError(
            str(path), f"is gzip-compressed: decompress it first (gunzip {path.name})"
        )
    if head.startswith(ZIP_MAGIC):
        _check_workbook(path, suffix)
        return "xlsx"
    if head.startswith(PARQUET_MAGIC) and _ends_with(path, PARQUET_MAGIC):
        if suffix in TEXT_SUFFIXES:
            raise ManifestError(
                str(path),
                "is a Parquet file, not CSV text: rename it to "
                f"{path.with_suffix('.parquet').name}",
            )
        return "parquet"
    return "csv"


def _ends_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - len(magic)))
        return handle.read() == magic


def _check_workbook(path: Path, suffix: str) -> None:
    """A zip that is not an .xlsx workbook (a zipped export), or one named as CSV text."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return  # the workbook reader says what is wrong with it
    if "[Content_Types].xml" not in names:
        inside = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise ManifestError(
            str(path),
            f"is a zip archive, not a workbook: extract the export from it (it holds {inside})",
        )
    if suffix in TEXT_SUFFIXES:
        raise ManifestError(
            str(path),
            f"is an .xlsx workbook (a zip file), not CSV text: rename it to "
            f"{path.with_suffix('.xlsx').name}",
        )


def check_readable(path: Path) -> None:
    """Fail early, with a plain message, for a path that is not a readable file."""
    if not path.exists():
        raise ManifestError(str(path), "no such file")
    if path.is_dir():
        raise ManifestError(str(path), "is a folder, not a manifest file")
    if path.stat().st_size == 0:
        raise ManifestError(str(path), "is empty: a manifest needs a header row and data rows")
