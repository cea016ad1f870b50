"""Hostile manifests, end to end: `importer run FILE` against the real sandbox.

Every file under tests/hostile/ is one case (two more are generated at test time, being
about a megabyte each). For each: no traceback, the right exit code (2 file-level problem,
1 row-level problems, 0 all valid), the message names the file (and for row problems the
row and the column), and the valid rows of the same file are in the sandbox, the invalid
ones never sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from importer.cli import cli
from tests.conftest import Sandbox

HOSTILE = Path(__file__).parent / "hostile"
HEADER = "id,type,title,media_url,start_at,source_system,transcript_text"
VALID_ROW = "{id},CALL,Call {id},https://media.example.com/calls/{id}.mp3,2024-03-05T14:30:00Z,crm"


@dataclass(frozen=True)
class Case:
    file: str
    exit_code: int
    invalid: tuple[tuple[int, str], ...] = ()
    """(row number, column) of every row that must be refused."""
    created: frozenset[str] = frozenset()
    """external_ids the sandbox must hold afterwards."""
    fragment: str = ""
    """For file-level problems: words the message must contain."""
    options: tuple[str, ...] = ()
    stored: dict[str, dict[str, object]] = field(default_factory=dict)
    """external_id -> fields the stored engagement must have."""


def ids(*numbers: int | str) -> frozenset[str]:
    return frozenset(f"crm:{n}" for n in numbers)


def media(file: str) -> Case:
    return Case(file, 1, ((3, "media_url"),), ids(1, 3))


FILE_LEVEL = [
    Case("empty.csv", 2, fragment="is empty"),
    Case("missing_column.csv", 2, fragment="'media_url' not found"),
    Case("semicolons.csv", 2, fragment="pass --delimiter", options=("--delimiter", ",")),
    Case("binary_garbage.csv", 2, fragment="not a UTF-8 CSV"),
    Case("duplicate_header.csv", 2, fragment="names column 'title' twice (columns 3 and 7)"),
    Case("no_source_system_column.csv", 2, fragment="--source-system"),
    Case("truncated.parquet", 2, fragment="not a readable Parquet file"),
    Case("folder.csv", 2, fragment="is a folder"),
]

ROW_LEVEL = [
    *(
        media(f"media_{name}.csv")
        for name in (
            "http",
            "ftp",
            "no_host",
            "private_10",
            "private_172_16",
            "private_192_168",
            "loopback_127",
            "metadata_169_254",
            "ipv6_loopback",
            "ipv6_link_local",
            "localhost",
            "credentials",
            "ipv4_mapped_ipv6",
            "decimal_ip",
            "trailing_dot_ip",
        )
    ),
    Case("title_empty.csv", 1, ((3, "title"),), ids(1)),
    Case("title_501.csv", 1, ((2, "title"),), ids(2, 3)),
    Case(
        "source_system_101.csv",
        1,
        ((3, "source_system"),),
        frozenset({"crm:1", "s" * 100 + ":3"}),
    ),
    Case("external_id_501.csv", 1, ((3, "id"),), ids(1, "y" * 496)),
    Case("start_at_unparsable.csv", 1, ((3, "start_at"), (4, "start_at")), ids(1, 4)),
    Case("participants_not_json.csv", 1, ((3, "participants"),), ids(1, 3)),
    Case("participants_no_name_or_email.csv", 1, ((3, "participants"),), ids(1)),
    Case("participants_bad_email.csv", 1, ((2, "participants"),), ids(2)),
    Case("participants_deep_json.csv", 1, ((3, "participants"),), ids(1)),
    Case("participants_lone_surrogate.csv", 1, ((3, "participants"),), ids(1)),
    Case("duplicate_ids_different.csv", 1, ((2, "id"), (4, "id")), ids(2)),
    Case("type_video.csv", 1, ((3, "type"),), ids(1, 3)),
    Case("is_private_bad.csv", 1, ((3, "is_private"),), ids(1)),
    Case("too_many_cells.csv", 1, ((3, "id"),), ids(1, 3)),
    Case("latin1_row.csv", 1, ((4, "title"),), ids(1, 3)),
    Case(
        "parquet_wrong_types.parquet",
        1,
        ((2, "participants"), (3, "is_private")),
        ids(1),
        stored={"crm:1": {"title": "101", "start_at": "2024-03-05T14:30:00.000Z"}},
    ),
]

ALL_VALID = [
    Case("header_only.csv", 0),
    Case("semicolons.csv", 0, created=ids(1)),  # the delimiter is sniffed
    Case("blank_rows.csv", 0, created=ids(1, 2)),
    Case("bom_crlf.csv", 0, created=ids(1, 2)),
    Case("duplicate_ids_equal.csv", 0, created=ids(1, 2)),
    Case(
        "emoji.csv",
        0,
        created=ids(1, 2, 3),
        stored={
            "crm:1": {"title": "Kick-off 🎉🚀 with Zoë"},
            "crm:2": {"title": "日本語の会議 📞"},
            "crm:3": {"title": 'Quote "and" comma, 👍🏽'},
        },
    ),
    Case(
        "start_at_naive_and_offset.csv",
        0,
        created=ids(1, 2, 3, 4),
        options=("--timezone", "America/New_York"),
        stored={f"crm:{n}": {"start_at": "2024-03-05T14:30:00.000Z"} for n in (1, 2, 3, 4)},
    ),
    Case(
        "no_source_system_column.csv",
        0,
        created=ids(1),
        options=("--source-system", "crm"),
        stored={"crm:1": {"source_system": "crm"}},
    ),
]


def generated_cases(tmp_path: Path) -> dict[str, Case]:
    """The two transcript cases, written into tmp_path (a megabyte each)."""
    too_long = tmp_path / "transcript_900001.csv"
    too_long.write_text(
        f"{HEADER}\n"
        f"{VALID_ROW.format(id=1)},{'a' * 900_000}\n"
        f"{VALID_ROW.format(id=2)},{'a' * 900_001}\n",
        encoding="utf-8",
    )
    too_big = tmp_path / "transcript_cjk_bytes.csv"
    too_big.write_text(
        f"{HEADER}\n"
        f"{VALID_ROW.format(id=1)},{'語' * 316_666}\n"  # 949,998 bytes
        f"{VALID_ROW.format(id=2)},{'語' * 316_667}\n",  # 950,001 bytes, 316,667 chars
        encoding="utf-8",
    )
    return {
        "transcript_900001": Case(str(too_long), 1, ((3, "transcript_text"),), ids(1)),
        "transcript_cjk_bytes": Case(str(too_big), 1, ((3, "transcript_text"),), ids(1)),
    }


def case_path(case: Case) -> Path:
    path = Path(case.file)
    return path if path.is_absolute() else HOSTILE / path


def run_importer(path: Path, sandbox: Sandbox, tmp_path: Path, *options: str) -> Result:
    args = [
        "run",
        str(path),
        "--ledger",
        str(tmp_path / "l.db"),
        "--base-url",
        sandbox.base_url,
        "--no-progress",
        *options,
    ]
    env = {"ASKELEPHANT_API_KEY": sandbox.api_key, "ASKELEPHANT_BASE_URL": "", "IMPORTER_DEBUG": ""}
    return CliRunner().invoke(cli, args, env=env)


def check_case(case: Case, sandbox: Sandbox, tmp_path: Path) -> Result:
    path = case_path(case)
    result = run_importer(path, sandbox, tmp_path, *case.options)
    output = result.output
    assert "Traceback" not in output, output
    assert "internal error" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert result.exit_code == case.exit_code, output
    assert str(path) in output, output  # the message names the file
    if case.fragment:
        assert case.fragment in result.stderr, output

    engagements = sandbox.engagements()
    assert {e["external_id"] for e in engagements} == set(case.created), output
    # Invalid rows were never sent: one create per valid row, nothing else.
    creates = sandbox.stats()["requests"].get("POST /v2/engagements", {})
    assert sum(creates.values()) == len(case.created), creates
    by_id = {e["external_id"]: e for e in engagements}
    for external_id, fields in case.stored.items():
        for name, value in fields.items():
            assert by_id[external_id][name] == value, (external_id, name)
    if case.exit_code == 1:
        assert re.search(rf"\binvalid\s+{len(case.invalid)}\b", output) or re.search(
            rf"\bduplicate\s+{len(case.invalid)}\b", output
        ), output
    return result


@pytest.mark.parametrize("case", FILE_LEVEL, ids=lambda c: c.file)
def test_file_level_problems(case: Case, sandbox: Sandbox, tmp_path: Path) -> None:
    result = check_case(case, sandbox, tmp_path)
    *before, last = result.stderr.splitlines()
    # One message, after the line naming the target: never a traceback.
    assert last.startswith("error: "), result.output
    assert all(line.startswith("Target: ") for line in before), result.output


def test_a_missing_file(sandbox: Sandbox, tmp_path: Path) -> None:
    check_case(Case(str(tmp_path / "nope.csv"), 2, fragment="no such file"), sandbox, tmp_path)


@pytest.mark.parametrize("case", ROW_LEVEL, ids=lambda c: c.file)
def test_row_level_problems(case: Case, sandbox: Sandbox, tmp_path: Path) -> None:
    check_case(case, sandbox, tmp_path)


@pytest.mark.parametrize("name", ["transcript_900001", "transcript_cjk_bytes"])
def test_transcript_limits(name: str, sandbox: Sandbox, tmp_path: Path) -> None:
    check_case(generated_cases(tmp_path)[name], sandbox, tmp_path)


@pytest.mark.parametrize("case", ALL_VALID, ids=lambda c: f"{c.file} {' '.join(c.options)}")
def test_all_valid(case: Case, sandbox: Sandbox, tmp_path: Path) -> None:
    result = check_case(case, sandbox, tmp_path)
    if not case.created:
        assert "(no rows)" in result.output


def test_a_second_run_sends_nothing_and_reports_the_same_rows(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    case = media("media_private_10.csv")
    check_case(case, sandbox, tmp_path)
    again = run_importer(case_path(case), sandbox, tmp_path)
    assert again.exit_code == 1, again.output
    assert sum(sandbox.stats()["requests"]["POST /v2/engagements"].values()) == 2


@pytest.mark.parametrize("case", ROW_LEVEL, ids=lambda c: c.file)
def test_row_problems_are_logged_with_row_and_column(
    case: Case, sandbox: Sandbox, tmp_path: Path
) -> None:
    """--log-format json: one event per refused row, with its row and the column."""
    result = run_importer(case_path(case), sandbox, tmp_path, "--log-format", "json")
    assert result.exit_code == 1, result.output
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    refused = {
        e["row"]: e["detail"]
        for e in events
        if e.get("event") == "row" and e.get("outcome") in ("invalid", "duplicate")
    }
    assert sorted(refused) == sorted(row for row, _ in case.invalid), events
    for row, column in case.invalid:
        detail = refused[row]
        if column == "id" and "external_id" in detail:
            continue  # a duplicate names the id it shares
        assert detail.startswith(f"{column}: "), detail


@pytest.mark.parametrize("case", ROW_LEVEL, ids=lambda c: c.file)
def test_row_problems_are_shown_with_file_row_and_column(
    case: Case, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The default (text) output must let the user find and fix each cell."""
    result = run_importer(case_path(case), sandbox, tmp_path)
    lines = result.output.splitlines()
    assert str(case_path(case)) in result.output
    for row, column in case.invalid:
        named = [line for line in lines if re.search(rf"\brow {row}\b", line)]
        assert named, f"row {row} is not named in:\n{result.output}"
        wanted = "external_id" if "duplicate" in case.file else column
        assert any(wanted in line for line in named), f"{column} not named for row {row}"
