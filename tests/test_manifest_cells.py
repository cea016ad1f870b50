"""Hostile files: manifest cells and headers written to break the importer, through the CLI.

A bad cell is that row's error, never the file's, never a crash; text we write (mapping
files, CSV reports, the terminal) cannot be turned into something else by what it quotes.
"""

from __future__ import annotations

import csv
import json
import os
import time
import tracemalloc
from pathlib import Path

import pytest

from importer.rows.mapping import tomllib
from importer.rows.validate import MappingOptions, map_row
from tests.audit_support import read_csv
from tests.conftest import Sandbox
from tests.factories import COLUMNS, row, run_args, run_cli, write_manifest


def plan_json(manifest: Path, tmp_path: Path, *extra: str) -> tuple[int, dict[str, object]]:
    args = ["plan", str(manifest), "--ledger", str(tmp_path / "plan.db"), "--json", *extra]
    result = run_cli(args)
    assert "internal error" not in result.output, result.output
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}


def invalid_reasons(plan: dict[str, object]) -> dict[int, str]:
    examples = plan["examples"]
    assert isinstance(examples, dict)
    return {e["row"]: e["reason"] for e in examples.get("invalid", [])}


# -- 16: transcript_path cells -----------------------------------------------------------------


def test_bad_transcript_paths_are_each_their_rows_error(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "good.txt").write_text("Hello there.", encoding="utf-8")
    rows = [
        row(1, transcript_path="a\x00b.txt"),
        row(2, transcript_path="x" * 300 + ".txt"),
        row(3, transcript_path="loop"),
        row(4, transcript_path=("d/" * 3000) + "t.txt"),
        row(5, transcript_path="good.txt"),
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)

    code, plan = plan_json(manifest, tmp_path)

    assert code == 1
    assert plan["counts"] == {"invalid": 4, "new": 1}
    reasons = invalid_reasons(plan)
    assert sorted(reasons) == [2, 3, 4, 5]
    assert all("transcript_path" in reason for reason in reasons.values())
    result = run_cli(run_args(manifest, tmp_path / "l.db", sandbox), api_key=sandbox.api_key)
    assert result.exit_code == 1, result.output
    [sent] = sandbox.engagements()
    assert sent["external_id"] == "crm:rec-5"


# -- 17: init writes TOML with a real writer ---------------------------------------------------

INJECTED = 'Notes\nis_private = "true"\nmedia_url = "https://attacker.example.net/x.mp3"'


def test_init_escapes_every_header_it_writes(tmp_path: Path) -> None:
    headers = ["Activity ID", "Subject", "Recording URL", "Call Date", INJECTED, 'a"b\\']
    manifest = tmp_path / "export.csv"
    with manifest.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerow(
            ["A-1", "Intro", "https://media.example.com/a.mp3", "2024-01-02T10:00Z", "n", ""]
        )
    mapping = tmp_path / "mapping.toml"

    result = run_cli(["init", str(manifest), "--out", str(mapping)])

    assert result.exit_code == 0, result.output
    data = tomllib.loads(mapping.read_text(encoding="utf-8"))
    assert data["columns"]["title"] == "Subject"
    assert data["defaults"] == {"type": "CALL"}
    assert "attacker" not in json.dumps(data)
    code, plan = plan_json(manifest, tmp_path, "--mapping", str(mapping), "--source-system", "c")
    assert (code, plan["counts"]) == (0, {"new": 1})


# -- 18: spreadsheet safety --------------------------------------------------------------------


def test_every_cell_we_write_is_quoted_and_formulas_after_spaces_are_defused(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    titles = ["x;=1+1;", "  =HYPERLINK(1)", "\t=1+1", "\r=1+1", " @SUM(1)"]
    rows = [row(n, title=title, type="BOGUS") for n, title in enumerate(titles, start=1)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "l.db"
    assert run_cli(run_args(manifest, ledger, sandbox), api_key=sandbox.api_key).exit_code == 1
    out = tmp_path / "report"
    assert run_cli(["report", "--ledger", str(ledger), "--out", str(out)]).exit_code == 0

    raw = (out / "errors.csv").read_text(encoding="utf-8")
    for record in csv.reader(raw.splitlines()[:1]):
        assert raw.startswith('"' + record[0] + '",')
    errors = read_csv(out / "errors.csv")
    column = errors[0].index("title")
    written = {line[column] for line in errors[1:]}
    assert '"x;=1+1;"' in raw
    assert written == {"x;=1+1;", "'  =HYPERLINK(1)", "'\t=1+1", "'\r=1+1", "' @SUM(1)"}


def test_restore_only_undoes_defusing_in_files_the_importer_wrote(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    titles = ["'+1 follow-up with Bob", "'=not a formula, a quote"]
    rows = [row(n, title=title) for n, title in enumerate(titles, start=1)]
    manifest = write_manifest(tmp_path / "m.csv", rows)

    result = run_cli(run_args(manifest, tmp_path / "l.db", sandbox), api_key=sandbox.api_key)

    assert result.exit_code == 0, result.output
    assert sorted(e["title"] for e in sandbox.engagements()) == sorted(titles)


def test_an_apostrophe_the_user_wrote_survives_a_round_trip_through_errors_csv(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [row(1, title="'=quoted by the user", type="BOGUS"), row(2, title="=1+1", type="X")]
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", rows)
    assert run_cli(run_args(manifest, ledger, sandbox), api_key=sandbox.api_key).exit_code == 1
    out = tmp_path / "report"
    assert run_cli(["report", "--ledger", str(ledger), "--out", str(out)]).exit_code == 0
    errors = read_csv(out / "errors.csv")
    for line in errors[1:]:
        line[errors[0].index("type")] = "CALL"
    fixed = tmp_path / "fixed.csv"
    with fixed.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(errors)

    result = run_cli(run_args(fixed, ledger, sandbox), api_key=sandbox.api_key)

    assert result.exit_code == 0, result.output
    assert sorted(e["title"] for e in sandbox.engagements()) == ["'=quoted by the user", "=1+1"]


# -- 19: control and invisible characters ------------------------------------------------------

BAD_IDS = {
    "esc": "rec\x1b[31mred",
    "nul": "rec\x00nul",
    "crlf": "rec\r\nline",
    "bidi": "rec\u202eevil",
    "zero width": "rec\u200bzw",
    "bom": "rec\ufeffbom",
    "del": "rec\x7fdel",
}


def test_ids_with_control_or_invisible_characters_are_invalid_rows(tmp_path: Path) -> None:
    rows = [row(n, id=value) for n, value in enumerate(BAD_IDS.values(), start=1)]
    rows.append(row(99))
    manifest = write_manifest(tmp_path / "m.csv", rows)

    code, plan = plan_json(manifest, tmp_path)

    assert code == 1
    assert plan["counts"] == {"invalid": len(BAD_IDS), "new": 1}
    for reason in invalid_reasons(plan).values():
        assert reason.startswith("id: contains a control or invisible"), reason


# Characters that look blank or like nothing, each inside an id (issue 20).
BLANK_LOOKING_IDS = {
    f"U+{ord(character):04X}": f"rec{character}x"
    for character in (
        "\u3164",  # Hangul filler
        "\uffa0",  # half-width Hangul filler
        "\u115f",  # Hangul choseong filler
        "\u1160",  # Hangul jungseong filler
        "\u034f",  # combining grapheme joiner
        "\ufe0f",  # variation selector 16
        "\U000e01ef",  # variation selector 256
        "\U000e0061",  # tag latin small letter a
        "\U000e0001",  # language tag
        "\u17b4",  # Khmer vowel inherent AQ
        "\u17b5",  # Khmer vowel inherent AA
        "\u2800",  # braille pattern blank
        "\u00a0",  # no-break space
        "\u202f",  # narrow no-break space
        "\u3000",  # ideographic space
        "\u2007",  # figure space
        "\u205f",  # medium mathematical space
        "\u1680",  # Ogham space mark
        "\u180f",  # Mongolian free variation selector
        "\ue000",  # private use
    )
}


def test_ids_with_blank_looking_characters_are_invalid_rows(tmp_path: Path) -> None:
    rows = [row(n, id=value) for n, value in enumerate(BLANK_LOOKING_IDS.values(), start=1)]
    rows += [row(97, id="rec 97"), row(98, id="réc-98"), row(99, id="记录99")]
    manifest = write_manifest(tmp_path / "m.csv", rows)

    code, plan = plan_json(manifest, tmp_path)

    assert code == 1
    assert plan["counts"] == {"invalid": len(BLANK_LOOKING_IDS), "new": 3}
    for name, value in BLANK_LOOKING_IDS.items():
        [error] = map_row(row(1, id=value), 2, MappingOptions()).errors
        assert error.message.startswith(f"contains a control or invisible character ({name} at "), (
            error.message
        )


def test_a_source_system_with_a_control_character_makes_its_row_invalid(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1, source_system="crm\x1b[0m"), row(2)])

    code, plan = plan_json(manifest, tmp_path)

    assert (code, plan["counts"]) == (1, {"invalid": 1, "new": 1})
    [reason] = invalid_reasons(plan).values()
    assert reason.startswith("source_system: the external_id prefix"), reason


def test_terminal_output_escapes_control_characters(sandbox: Sandbox, tmp_path: Path) -> None:
    rows = [row(1, id="ok\x1b]0;pwned\x07", title="\x1b[2J" + "t"), row(2, type="\x1b[31mX")]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "l.db"

    outputs = [
        run_cli(["plan", str(manifest), "--ledger", str(ledger)]),
        run_cli(run_args(manifest, ledger, sandbox), api_key=sandbox.api_key),
        run_cli(["status", "--ledger", str(ledger)]),
    ]

    for result in outputs:
        assert result.exit_code in (0, 1), result.output
        assert "\x1b" not in result.output and "\x07" not in result.output, result.output


def test_json_output_stays_valid_json_with_control_characters_escaped(tmp_path: Path) -> None:
    rows = [row(1, id="a\u202eb", type="\x9b31mX"), row(2, type="\u202eLLAC")]
    manifest = write_manifest(tmp_path / "m.csv", rows)

    result = run_cli(["plan", str(manifest), "--ledger", str(tmp_path / "l.db"), "--json"])

    assert "\x9b" not in result.stdout and "\u202e" not in result.stdout
    plan = json.loads(result.stdout)
    assert plan["counts"] == {"invalid": 2}


# -- 20: resource limits -----------------------------------------------------------------------


def plan_a_hundred_thousand_columns(tmp_path: Path) -> float:
    """Plan three rows with 100,000 extra columns; the CPU seconds it took."""
    extra = [f"c{n}" for n in range(100_000)]
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2), row(3)], COLUMNS + extra)
    started = time.process_time()

    code, plan = plan_json(manifest, tmp_path)

    assert (code, plan["counts"]) == (0, {"new": 3})
    return time.process_time() - started


def test_a_hundred_thousand_columns_are_checked(tmp_path: Path) -> None:
    plan_a_hundred_thousand_columns(tmp_path)


@pytest.mark.chaos_full
def test_a_hundred_thousand_columns_are_checked_in_linear_time(tmp_path: Path) -> None:
    # A timing bound: make chaos only, where the machine is not shared with the whole suite.
    assert plan_a_hundred_thousand_columns(tmp_path) < 30


def test_a_huge_sparse_manifest_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    manifest = tmp_path / "sparse.csv"
    with manifest.open("wb") as handle:
        handle.truncate(300 * 1024 * 1024)  # holes: all NUL bytes, no line end
    tracemalloc.start()
    try:
        result = run_cli(["plan", str(manifest), "--ledger", str(tmp_path / "l.db")])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 2, result.output
    assert "line 1" in result.output
    assert peak < 100 * 1024 * 1024, peak


@pytest.mark.parametrize(
    ("megabytes", "line", "why"),
    [
        (17, "x", "holds 17 MB; a cell may hold at most 16 MB"),
        (40, "x", "is longer than 20 MB on one line; the row was not read"),
        (17, "words on a line\n", "holds 17 MB; a cell may hold at most 16 MB"),
    ],
)
def test_one_huge_cell_refuses_its_row_not_the_file(
    tmp_path: Path, megabytes: int, line: str, why: str
) -> None:
    huge = line * (megabytes * 1024 * 1024 // len(line))
    rows = [row(1), row(2, transcript_text=huge), row(3)]
    manifest = write_manifest(tmp_path / "m.csv", rows)

    code, plan = plan_json(manifest, tmp_path)

    assert code == 1
    assert plan["counts"] == {"new": 2, "invalid": 1}
    assert list(invalid_reasons(plan)) == [3]
    assert why in invalid_reasons(plan)[3]
    os.remove(manifest)


def test_a_huge_line_inside_a_quoted_cell_refuses_its_row(tmp_path: Path) -> None:
    # The record keeps the header's width: only the marker in its cell tells.
    huge = "first line\n" + "x" * (21 * 1024 * 1024) + "\nlast line"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2, transcript_text=huge), row(3)])

    code, plan = plan_json(manifest, tmp_path)

    assert code == 1
    assert plan["counts"] == {"new": 2, "invalid": 1}
    assert "is longer than 20 MB on one line" in invalid_reasons(plan)[3]
