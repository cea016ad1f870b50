"""--ledger pointing at something that is not a ledger file: a device, a pipe, a name too long.

Each is one clear message for every command (exit 2), never an internal error (exit 70)
and never a hang on a pipe nobody writes to.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Sandbox
from tests.factories import api_args, row, run_cli, write_manifest

COMMANDS = ["run", "plan", "retry", "sync-contacts", "status", "report", "verify", "reconcile"]


def command_line(name: str, ledger: Path, sandbox: Sandbox, tmp_path: Path) -> list[str]:
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])
    if name == "plan":
        return ["plan", str(manifest), "--ledger", str(ledger)]
    if name == "status":
        return ["status", "--ledger", str(ledger)]
    if name == "reconcile":
        return ["reconcile", "--ledger", str(ledger), "--base-url", sandbox.base_url]
    if name == "report":
        return ["report", "--ledger", str(ledger), "--out", str(tmp_path / "out")]
    head = [name, str(manifest)] if name in ("run", "sync-contacts") else [name]
    return [*head, *api_args(sandbox, ledger)]


@pytest.mark.timeout(60)  # a pipe opened by mistake would wait for a writer forever
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", ["/dev/null", "fifo"])
def test_a_ledger_that_is_not_a_regular_file_is_refused_clearly(
    sandbox: Sandbox, tmp_path: Path, command: str, kind: str
) -> None:
    if kind == "fifo":
        ledger = tmp_path / "pipe.db"
        os.mkfifo(ledger)
    else:
        ledger = Path(kind)
    before = sandbox.stats()["requests"]

    result = run_cli(command_line(command, ledger, sandbox, tmp_path), sandbox.api_key)

    assert result.exit_code == 2, result.output
    assert f"ledger {ledger} is not a regular file" in result.stderr
    assert sandbox.stats()["requests"] == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_ledger_name_too_long_is_a_usage_error(
    sandbox: Sandbox, tmp_path: Path, command: str
) -> None:
    ledger = tmp_path / ("x" * 300 + ".db")

    result = run_cli(command_line(command, ledger, sandbox, tmp_path), sandbox.api_key)

    assert result.exit_code == 2, result.output  # was exit 70, an OSError from exists()
    assert "File name too long" in result.stderr
    assert "internal error" not in result.stderr
