"""Files as CRMs export them: delimiters, encodings, .xlsx sheets, footers, float ids, dates."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.errors import ManifestError
from importer.read.csv_dialect import FOOTER_IN_FIRST_CELLS, FOOTER_START
from importer.read.manifest import ManifestRow, read_columns, read_manifest
from importer.rows.mapping import load_mapping
from importer.rows.validate import MappingOptions, map_row
from importer.settings import SourceOptions
from tests.audit_support import run
from tests.conftest import Sandbox
from tests.factories import run_cli

HEADER = ["id", "type", "title", "media_url", "start_at", "source_system"]


def record(n: int, start_at: str = "2024-03-05T14:30:00Z", title: str = "") -> list[str]:
    media = f"https://media.example.com/{n}.mp3"
    return [str(n), "CALL", title or f"Call {n}", media, start_at, "crm"]


def rows_of(path: Path, source: SourceOptions | None = None) -> list[ManifestRow]:
    return [row for batch in read_manifest(path, 1000, source) for row in batch]


def write_text(path: Path, lines: list[list[str]], delimiter: str, encoding: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(lines)
    return path


def plan(manifest: Path, *options: str) -> tuple[int, str, str]:
    """``importer plan`` with the zone chosen (UTC), as its naive times need."""
    ledger = str(manifest.parent / "l.db")
    result = run_cli(["plan", str(manifest), "--ledger", ledger, "--timezone", "UTC", *options])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    path = write_text(tmp_path / "m.csv", [HEADER, record(1, title="a, b; c")], delimiter, "utf-8")
    assert read_columns(path) == HEADER
    assert rows_of(path)[0].cells["title"] == "a, b; c"


def test_delimiter_option_overrides_the_sniffing(tmp_path: Path) -> None:
    # The header has more commas than semicolons, but the file is semicolon-separated.
    path = tmp_path / "m.csv"
    path.write_text("id;type;title,with,commas\n1;CALL;x\n", encoding="utf-8")
    assert read_columns(path, SourceOptions(delimiter=";")) == ["id", "type", "title,with,commas"]


def test_excel_unicode_text_utf16_tab_separated(tmp_path: Path) -> None:
    path = write_text(tmp_path / "m.txt", [HEADER, record(1, title="Zoë ☕")], "\t", "utf-16")
    rows = rows_of(path)
    assert [(r.row_number, r.cells["title"]) for r in rows] == [(2, "Zoë ☕")]


def cp1252_file(tmp_path: Path) -> Path:
    lines = [HEADER] + [record(n, title=f"Café número {n}") for n in range(1, 6)]
    return write_text(tmp_path / "hubspot.csv", lines, ",", "cp1252")


def test_a_cp1252_file_is_one_file_level_message_with_a_hint(tmp_path: Path) -> None:
    path = cp1252_file(tmp_path)
    with pytest.raises(ManifestError) as caught:
        rows_of(path)
    assert str(caught.value) == (
        f"{path}: is not UTF-8 (5 of the first lines are not, e.g. line 2); read as "
        "Windows-1252, line 2 says '1,CALL,Café número 1,https://media.example.com/1.mp3,"
        "2024-03-05T14:30:00Z,crm'. If that reads right, pass --encoding cp1252 (or latin-1); "
        "else save the file as UTF-8"
    )
    rows = rows_of(path, SourceOptions(encoding="cp1252"))
    assert [r.cells["title"] for r in rows][:2] == ["Café número 1", "Café número 2"]


def test_a_cp1252_header_is_a_file_level_message(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes("Réf,Sujet\n1,a\n".encode("cp1252"))
    with pytest.raises(ManifestError) as caught:
        read_columns(path)
    assert str(caught.value) == (
        f"{path}: its header is not UTF-8 (column 'Réf' as Windows-1252 reads it); pass "
        "--encoding cp1252 (or latin-1), or save the file as UTF-8"
    )


def test_the_encoding_option_reaches_the_cli(tmp_path: Path) -> None:
    path = cp1252_file(tmp_path)
    code, _, err = plan(path)
    assert code == 2 and "pass --encoding cp1252" in err
    code, out, _ = plan(path, "--encoding", "windows-1252")
    assert code == 0 and "  new  " in out


def write_xlsx(path: Path, rows: list[list[object]], sheet: str = "Report") -> Path:
    book = openpyxl.Workbook()
    worksheet = book.active
    assert worksheet is not None
    worksheet.title = sheet
    for values in rows:
        worksheet.append(values)
    book.create_sheet("Notes").append(["note", "author"])
    book.save(path)
    return path


def test_xlsx_rows_are_numbered_as_in_excel_with_real_dates(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "export.xlsx",
        [
            HEADER,
            [
                1,
                "CALL",
                "First",
                "https://media.example.com/1.mp3",
                dt.datetime(2024, 3, 5, 14, 30),
                "crm",
            ],
            [None] * 6,
            [
                3,
                "CALL",
                "Third",
                "https://media.example.com/3.mp3",
                dt.datetime(2024, 3, 6, 9, 0),
                "crm",
            ],
        ],
    )
    rows = rows_of(path, SourceOptions(id_column="id"))
    assert [(r.row_number, r.cells["id"], r.cells["start_at"]) for r in rows] == [
        (2, "1", "2024-03-05T14:30:00"),
        (4, "3", "2024-03-06T09:00:00"),
    ]
    code, out, _ = plan(path, "--out", str(tmp_path / "plan.csv"))
    assert code == 0, out
    with (tmp_path / "plan.csv").open(encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    assert lines[1][4:6] == ["2024-03-05T14:30:00", "2024-03-05T14:30:00+00:00"]


def test_a_formatted_reports_title_block_is_passed_over(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "report.xlsx",
        [
            ["Calls with recordings"],
            ["As of 3/31/2024"],
            [],
            HEADER,
            record(1),
        ],
    )
    rows = rows_of(path)
    assert read_columns(path) == HEADER
    assert [(r.row_number, r.cells["id"]) for r in rows] == [(5, "1")]


def test_xlsx_sheet_option(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "export.xlsx", [HEADER], sheet="Calls")
    assert read_columns(path, SourceOptions(sheet="Notes")) == ["note", "author"]
    with pytest.raises(ManifestError, match="has no sheet 'Missing'; its sheets: 'Calls', 'Notes'"):
        read_columns(path, SourceOptions(sheet="Missing"))


SALESFORCE_FOOTER = [
    ["Grand Totals (2 records)", "", "", "", "", ""],
    [],
    ["Confidential Information - Do Not Distribute", "", "", "", "", ""],
    ["Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved.", "", "", "", "", ""],
]


def test_a_trailing_report_footer_is_skipped_with_one_notice(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "report.csv", [HEADER, record(1), record(2), *SALESFORCE_FOOTER], ",", "utf-8"
    )
    code, out, _ = plan(path)
    assert code == 0, out
    assert out.splitlines()[0] == (
        "Skipped the report footer after the last record (3 row(s): 4, 6, 7, starting "
        "'Grand Totals (2 records)')."
    )
    assert "invalid" not in out


def test_footer_words_in_the_middle_are_a_row(tmp_path: Path) -> None:
    lines = [HEADER, ["Total recall", "", "", "", "", ""], record(2)]
    path = write_text(tmp_path / "m.csv", lines, ",", "utf-8")
    assert [r.row_number for r in rows_of(path)] == [2, 3]


def test_float_ids_that_lost_digits_are_a_file_error(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": pa.array([1.0, 7782342274025937001.0], pa.float64()),
            "title": ["a", "b"],
        }
    )
    path = tmp_path / "gong.parquet"
    pq.write_table(table, path)
    with pytest.raises(ManifestError) as caught:
        rows_of(path, SourceOptions(id_column="id"))
    assert str(caught.value).startswith(
        f"{path}: column 'id' holds ids as floating-point numbers, which keep only 15-16 "
        "digits: row 2 has 7.782342274025937e+18"
    )
    assert "Export the id column as text" in str(caught.value)


def test_exact_integer_floats_become_integer_text(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"id": pa.array([12.0, 9007199254740992.0], pa.float64())}), path)
    assert [r.cells["id"] for r in rows_of(path, SourceOptions(id_column="id"))] == [
        "12",
        "9007199254740992",
    ]


def dated(tmp_path: Path, *dates: str) -> Path:
    lines = [HEADER] + [record(n, start_at=d) for n, d in enumerate(dates, start=1)]
    return write_text(tmp_path / "m.csv", lines, ",", "utf-8")


def test_a_day_above_12_decides_the_files_order_and_says_so(tmp_path: Path) -> None:
    path = dated(tmp_path, "03/05/2024 2:30 PM", "03/25/2024 9:00 AM")
    code, out, _ = plan(path, "--json")
    assert code == 0
    assert json.loads(out)["notices"] == [
        "Dates in column 'start_at' read month-first (row 3 has '03/25/2024 9:00 AM' -> "
        "2024-03-25T09:00:00+00:00); --dayfirst or --monthfirst to say otherwise."
    ]


def test_an_undecidable_file_asks_once(tmp_path: Path) -> None:
    path = dated(tmp_path, "03/05/2024 2:30 PM", "04/06/2024 9:00 AM")
    code, _, err = plan(path)
    assert code == 2
    assert err == (
        f"error: {path}: column 'start_at' has dates that read two ways and no day above 12 "
        "to settle it: row 2 '03/05/2024 2:30 PM' is 2024-05-03T14:30:00+00:00 day-first or "
        "2024-03-05T14:30:00+00:00 month-first; pass --dayfirst or --monthfirst (or [formats] "
        'start_at = "monthfirst" in the mapping; --date-format gives the exact format)\n'
    )
    code, _, _ = plan(path, "--dayfirst", "--out", str(tmp_path / "plan.csv"))
    assert code == 0
    with (tmp_path / "plan.csv").open(encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    assert [line[4:6] for line in lines[1:]] == [
        ["03/05/2024 2:30 PM", "2024-05-03T14:30:00+00:00"],
        ["04/06/2024 9:00 AM", "2024-06-04T09:00:00+00:00"],
    ]


def test_a_file_mixing_orders_is_one_message(tmp_path: Path) -> None:
    path = dated(tmp_path, "25/03/2024 10:00", "03/26/2024 10:00")
    code, _, err = plan(path)
    assert code == 2
    assert "mixes date orders: row 2 '25/03/2024 10:00' can only be day-first" in err


def test_the_date_format_option_and_the_mapping(tmp_path: Path) -> None:
    path = dated(tmp_path, "2024.03.05 14h30")
    assert plan(path, "--date-format", "%Y.%m.%d %Hh%M")[0] == 0
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[formats]\nstart_at = "%Y.%m.%d %Hh%M"\n', encoding="utf-8")
    assert plan(path, "--mapping", str(mapping))[0] == 0
    code, out, _ = plan(path)
    assert code == 1 and "'2024.03.05 14h30' is not a date and time" in out


def test_rows_not_utf8_past_the_sample_are_row_errors_with_one_word_for_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.csv"
    lines = [",".join(HEADER)] + [",".join(record(n, title="x" * 80)) for n in range(1, 1001)]
    late = [",".join(record(n, title="Café")) for n in (1001, 1002)]
    path.write_bytes(("\n".join(lines) + "\n").encode() + ("\n".join(late) + "\n").encode("cp1252"))
    code, out, _ = plan(path, "--json")
    data = json.loads(out)
    assert code == 1
    assert data["counts"] == {"new": 1000, "invalid": 2}
    assert data["notices"] == [
        "2 rows are not UTF-8 (the first: row 1002): if the file was saved in a Windows code "
        "page, pass --encoding cp1252 (or latin-1) instead of fixing rows one by one."
    ]


def test_later_commands_read_dates_as_the_run_did(sandbox: Sandbox, tmp_path: Path) -> None:
    path = dated(tmp_path, "03/05/2024 2:30 PM", "04/06/2024 9:00 AM")
    ledger = tmp_path / "ledger.db"
    assert run(sandbox, path, ledger, "--dayfirst", "--timezone", "UTC").exit_code == 0

    args = ["sync-contacts", str(path), "--ledger", str(ledger), "--base-url", sandbox.base_url]
    result = run_cli([*args, "--no-progress"], sandbox.api_key)

    assert result.exit_code == 0, result.output  # without --dayfirst it would be undecidable
    assert "not imported yet" not in result.stdout


def test_value_maps_in_the_mapping_for_types_and_booleans(tmp_path: Path) -> None:
    header = [*HEADER, "is_private"]
    lines = [
        header,
        [*record(1), "Private"],
        [*record(2), "Public"],
        [*record(3), "yes"],
        [*record(4), "Secret"],
    ]
    lines[1][1], lines[2][1], lines[3][1], lines[4][1] = "Inbound", "Video Meeting", "CALL", "X"
    path = write_text(tmp_path / "m.csv", lines, ",", "utf-8")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        '[values.type]\ninbound = "CALL"\n"Video Meeting" = "MEETING"\n\n'
        "[values.is_private]\nPrivate = true\nPublic = false\n",
        encoding="utf-8",
    )
    code, text, _ = plan(path, "--mapping", str(mapping))
    assert code == 1
    assert "invalid (first 1 of 1):\n  row 5 crm:4: type: must be CALL or MEETING, not 'X'" in text
    assert "new (first 3 of 3)" in text
    options = MappingOptions(columns=load_mapping(mapping))
    sent = [
        map_row(dict(zip(header, line, strict=True)), n, options).payload
        for n, line in enumerate(lines[1:4], start=2)
    ]
    assert [(p["type"], p["is_private"]) for p in sent if p] == [
        ("CALL", True),
        ("MEETING", False),
        ("CALL", True),
    ]


def test_xlsx_is_read_in_batches(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "big.xlsx", [HEADER, *(record(n) for n in range(1, 2501))])
    batches = read_manifest(path, 1000, SourceOptions(id_column="id"))
    first = next(batches)  # a generator: the rest of the sheet is not read yet
    sizes = [len(first), *(len(batch) for batch in batches)]
    assert sizes == [1000, 1000, 500]
    assert first[0].row_number == 2


pieces = st.sampled_from(["Total", "total ", "©", "12 records", "x", " ", "\x00", "é"])
first_cells = st.lists(st.lists(pieces, max_size=4).map("".join), max_size=5)


@settings(max_examples=300, deadline=None)
@given(first_cells)
def test_a_batch_is_searched_for_a_footer_wherever_one_cell_starts_like_one(
    cells: list[str],
) -> None:
    """One search of the batch's first cells joined finds every cell starting like a footer."""
    if any(FOOTER_START.match(cell) for cell in cells):
        assert FOOTER_IN_FIRST_CELLS.search("\x00".join(cells))
