"""``report`` on a ledger whose error rows hold hostile cells: one report, never exit 70.

The errors files copy each error row's transcript file beside them, so the cell that names
it is read again: a NUL, a 300-character name or a symlink loop in ``transcript_path``
made that copy raise (``ValueError: embedded null byte``, exit 70) after the run had
rightly made each the row's error.
"""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from importer.report.files import SafeCsvWriter
from tests.conftest import Sandbox, SandboxProcess
from tests.factories import api_args, row, run_cli, write_manifest


def test_report_copes_with_the_transcript_paths_a_run_refused(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    (tmp_path / "fine.txt").write_text("hello", encoding="utf-8")
    hostile = ["a\x00b.txt", "x" * 300 + ".txt", "loop1", "../outside.txt"]
    rows = [row(n, transcript_path=cell) for n, cell in enumerate(hostile, start=1)]
    rows.append(row(9, id="", transcript_path="fine.txt"))  # an error row with a real file
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "ledger.db"
    run = run_cli(["run", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)
    assert run.exit_code == 1, run.output

    out = tmp_path / "out"
    result = run_cli(["report", "--ledger", str(ledger), "--out", str(out)])

    assert result.exit_code == 0, result.output
    with (out / "errors.csv").open(encoding="utf-8", newline="") as handle:
        by_row = {r["transcript_path"]: r for r in csv.DictReader(handle)}
    assert len(by_row) == 5
    assert "x" * 300 + ".txt" in by_row and "loop1" in by_row  # left as written
    assert (out / "transcripts" / "m" / "fine.txt").read_text(encoding="utf-8") == "hello"


def test_summary_shows_hostile_cells_and_names_as_text(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    hostile = "</td><script>alert(1)</script> *bold* [link](x) `code` | ~~gone~~ _em_"
    manifest = write_manifest(tmp_path / "m.csv", [row(1, type=hostile), row(2)])
    ledger = tmp_path / "ledger.db"
    run = run_cli(["run", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)
    assert run.exit_code == 1, run.output

    out = tmp_path / "out\n```\n<b>x"  # a folder name a fence of three could not hold
    result = run_cli(["report", "--ledger", str(ledger), "--out", str(out)])

    assert result.exit_code == 0, result.output
    text = (out / "summary.md").read_text(encoding="utf-8")
    page, steps = text.split("## Next steps")
    assert "<" not in page and ">" not in page
    assert "&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert r"\*bold\* \[link\](x) \`code\` \| \~\~gone\~\~ \_em\_" in page
    [attention] = [line for line in page.splitlines() if "alert(1)" in line]
    assert attention.replace("\\|", "").count("|") == 4  # three cells: the table holds
    lines = steps.splitlines()
    assert lines[2] == "````console" and lines[-1] == "````"  # longer than the name's ```
    assert lines.count("````") == 1


# -- issue 20: report files written whole, into regular files only ------------------------------


def _ledger_with_errors(sandbox: SandboxProcess, tmp_path: Path, rows: int) -> Path:
    """A ledger whose last run left ``rows`` invalid rows (blank type) beside a valid one."""
    manifest = write_manifest(
        tmp_path / "m.csv", [row(n, type="") for n in range(1, rows + 1)] + [row(rows + 1)]
    )
    ledger = tmp_path / "ledger.db"
    run = run_cli(["run", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)
    assert run.exit_code == 1, run.output
    return ledger


def _report(ledger: Path, out: Path) -> Any:
    return run_cli(["report", "--ledger", str(ledger), "--out", str(out)])


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.mark.timeout(60)
def test_a_fifo_errors_csv_is_refused_not_waited_on(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    ledger = _ledger_with_errors(sandbox, tmp_path, 2)
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "errors.csv")

    result = _report(ledger, out)

    assert result.exit_code == 2, result.output
    assert f"{out / 'errors.csv'} is a named pipe (FIFO), not a regular file" in result.output
    assert "Traceback" not in result.output
    assert stat.S_ISFIFO(os.lstat(out / "errors.csv").st_mode)
    assert sorted(p.name for p in out.iterdir()) == ["errors.csv"]  # nothing half-written


def test_a_refused_report_leaves_the_earlier_report_as_it_was(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    ledger = _ledger_with_errors(sandbox, tmp_path, 2)
    out = tmp_path / "out"
    assert _report(ledger, out).exit_code == 0
    earlier = _files(out)
    _ledger_with_errors(sandbox, tmp_path, 5)  # the ledger now has more to say
    (out / "summary.md").unlink()
    (out / "summary.md").mkdir()  # written last: every CSV file is done by then

    result = _report(ledger, out)

    assert result.exit_code == 2, result.output
    assert "summary.md is a folder, not a regular file" in result.output
    assert _files(out) == {k: v for k, v in earlier.items() if k != "summary.md"}
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_an_interrupted_report_leaves_the_earlier_report_as_it_was(
    sandbox: SandboxProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = _ledger_with_errors(sandbox, tmp_path, 2)
    out = tmp_path / "out"
    assert _report(ledger, out).exit_code == 0
    earlier = _files(out)
    _ledger_with_errors(sandbox, tmp_path, 30)
    lines = iter(range(1_000))
    original = SafeCsvWriter.writerow

    def interrupted(writer: SafeCsvWriter, values: Any) -> None:
        if next(lines) == 10:  # Ctrl-C in the middle of errors.csv
            raise KeyboardInterrupt
        original(writer, values)

    monkeypatch.setattr(SafeCsvWriter, "writerow", interrupted)

    result = _report(ledger, out)

    assert result.exit_code == 130, result.output
    assert _files(out) == earlier
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_a_transcript_over_the_api_limit_is_not_copied(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(4 * 1024**3)  # 4 GB, sparse: it costs no disk until copied
    (tmp_path / "fine.txt").write_text("hello", encoding="utf-8")
    rows = [row(1, transcript_path="huge.txt"), row(2, id="", transcript_path="fine.txt")]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "ledger.db"
    run = run_cli(["run", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)
    assert run.exit_code == 1, run.output
    out = tmp_path / "out"

    result = _report(ledger, out)

    assert result.exit_code == 0, result.output
    with (out / "errors.csv").open(encoding="utf-8", newline="") as handle:
        cells = sorted(r["transcript_path"] for r in csv.DictReader(handle))
    assert cells == ["huge.txt", "transcripts/m/fine.txt"]  # the huge one left as written
    assert sorted(p.name for p in (out / "transcripts" / "m").iterdir()) == ["fine.txt"]
