"""The run summary's numbers: its rows add up to the manifest, its pace counts this run.

Issue 10 ("every number a user reads is right"), found in review: a row flagged ``same
recording`` is sent, so it was counted twice (as ``same recording`` and as ``created``),
and rows refused in an earlier run gave a run that sent nothing a pace in rows/s.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.audit_support import run
from tests.conftest import SandboxProcess
from tests.factories import row, write_manifest

HTML = "https://media.example.com/calls/{n}.html"  # the sandbox answers 422: not audio/video


def table(stdout: str) -> dict[str, int]:
    """The summary's count lines (``  name   1,234``)."""
    return {
        name: int(count.replace(",", ""))
        for name, count in re.findall(r"^  (\S.*?)\s+([\d,]+)$", stdout, re.MULTILINE)
    }


def test_same_recording_rows_are_counted_once(sandbox: SandboxProcess, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    assert run(sandbox, write_manifest(tmp_path / "a.csv", [row(1), row(2)]), ledger).exit_code == 0
    copy = [row(1, id="other-1"), row(2, id="other-2"), row(3, title="")]
    manifest = write_manifest(tmp_path / "b.csv", copy)

    result = run(sandbox, manifest, ledger)

    counts = table(result.stdout)
    assert counts == {"created": 2, "invalid": 1}, result.stdout
    assert sum(counts.values()) == 3
    assert "2 of the rows sent are the same recording as another row (listed" in result.stdout


def test_a_run_that_sends_nothing_has_no_pace(sandbox: SandboxProcess, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    rows = [row(n, media_url=HTML.format(n=n)) for n in range(1, 5)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    assert run(sandbox, manifest, ledger).exit_code == 1

    again = run(sandbox, manifest, ledger)

    assert again.exit_code == 1
    assert table(again.stdout) == {"failed": 4}
    assert "0 requests, 0.0 rows/s)" in again.stdout, again.stdout
