"""The question before a big production run, asked on a real terminal (a pty).

Issue 10, point 3: on a terminal, a run against production with more than 1,000 rows to
send and no ``--yes`` asks once; "n" sends nothing. The importer runs in a child process
on a pseudo-terminal, so the decision to ask is the CLI's own (``isatty`` on stdin and
stderr), and the answer is typed. Production here is the test's sandbox on 127.0.0.1: the
child treats that base URL as production's, and nothing leaves this machine.
"""

from __future__ import annotations

import os
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.audit_support import CREATE, requests_of
from tests.conftest import PROJECT_ROOT, Sandbox
from tests.factories import row, run_args, write_manifest

pty = pytest.importorskip("pty")

CHILD = """
import sys
from importer.targets.askelephant import AskElephantTarget
sandbox = sys.argv.pop(1)
AskElephantTarget.is_production = property(
    lambda self: self.base_url.rstrip("/") == sandbox.rstrip("/")
)
from importer.cli import main
main()
"""


def read_until(fd: int, wanted: bytes, seconds: float = 60) -> bytes:
    """What the terminal shows, up to ``wanted`` (or EOF, or the deadline)."""
    seen = b""
    deadline = time.monotonic() + seconds
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


def on_a_terminal(sandbox: Sandbox, args: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    main, child = pty.openpty()
    env = {**os.environ, "ASKELEPHANT_API_KEY": sandbox.api_key, "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, sandbox.base_url, *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=child,
        stdout=child,
        stderr=child,
        close_fds=True,
    )
    os.close(child)
    return process, main


def test_a_big_production_run_asks_on_a_terminal_and_no_sends_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1001)])
    ledger = tmp_path / "l.db"
    args = [a for a in run_args(manifest, ledger, sandbox) if a != "--no-progress"]
    process, terminal = on_a_terminal(sandbox, args)
    try:
        shown = read_until(terminal, b"[y/N]")
        assert f"Send 1,001 new row(s) to production ({sandbox.base_url})? [y/N]".encode() in (
            shown
        ), shown
        assert b"(production)" in shown
        os.write(terminal, b"n\r")
        shown += read_until(terminal, b"\x00", seconds=30)
        assert process.wait(timeout=30) == 2, shown
    finally:
        if process.poll() is None:
            process.kill()
        os.close(terminal)

    assert b"nothing was sent: the run was not confirmed" in shown
    assert requests_of(sandbox, CREATE) == {}
    assert sandbox.engagements() == []
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("SELECT COUNT(*) FROM engagements").fetchone() == (0,)


def test_yes_answers_for_you_on_a_terminal(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1001)])
    args = [*run_args(manifest, tmp_path / "l.db", sandbox), "--yes"]
    process, terminal = on_a_terminal(sandbox, args)
    try:
        shown = read_until(terminal, b"\x00", seconds=120)
        assert process.wait(timeout=60) == 0, shown
    finally:
        if process.poll() is None:
            process.kill()
        os.close(terminal)

    assert b"[y/N]" not in shown
    assert b"(production)" in shown
    assert len(sandbox.engagements()) == 1001
