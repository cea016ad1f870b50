"""``report`` on a ledger whose error rows hold hostile cells: one report, never exit 70.

The errors files copy each error row's transcript file beside them, so the cell that names
it is read again: a NUL, a 300-character name or a symlink loop in ``transcript_path``
made that copy raise (``ValueError: embedded null byte``, exit 70) after the run had
rightly made each the row's error.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tests.conftest import Sandbox
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
