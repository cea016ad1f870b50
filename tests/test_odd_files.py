"""Odd files a user may hand the importer: each is one clear message, never a traceback."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from tests.factories import run_cli

HEADER = "id,type,title,media_url,start_at,source_system"
# An OLE2 compound file: what Excel writes for a password-protected workbook (and for .xls).
OLE2 = bytes.fromhex("D0CF11E0A1B11AE1") + bytes(504)


def plan(manifest: Path, *options: str) -> tuple[int, str]:
    """Exit code and everything printed, of `importer plan MANIFEST`."""
    ledger = manifest.parent / "ledger.db"
    result = run_cli(["plan", str(manifest), "--ledger", str(ledger), *options])
    return result.exit_code, result.stdout + result.stderr


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
