"""A ledger file that exists but is empty (0 bytes: ``touch``, a failed copy, a full disk).

Issue 10, trust at the edges: the reading commands say what the file is, with exit 2, and
leave it exactly as it was; ``plan`` plans against it as against a ledger that holds
nothing yet.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import row, run_cli, write_manifest


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["report", "--out", "{tmp}/out"],
        ["retry"],
        ["verify", "--base-url", "http://127.0.0.1:9"],
    ],
)
def test_reading_commands_refuse_an_empty_ledger_and_leave_it(
    tmp_path: Path, args: list[str]
) -> None:
    ledger = tmp_path / "ledger.db"
    ledger.touch()

    result = run_cli(
        [a.format(tmp=tmp_path) for a in args] + ["--ledger", str(ledger)], "sk-apik_a.B"
    )

    assert result.exit_code == 2, result.output
    assert f"ledger {ledger} is empty (0 bytes): nothing has been imported with it" in (
        result.output
    )
    assert "internal error" not in result.output
    assert ledger.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.db"]


def test_plan_reads_an_empty_ledger_as_one_that_holds_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    ledger.touch()
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])

    result = run_cli(["plan", str(manifest), "--ledger", str(ledger)])

    assert result.exit_code == 0, result.output
    assert "new" in result.stdout and "2" in result.stdout
    assert ledger.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.db", "m.csv"]
