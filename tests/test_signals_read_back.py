"""Ctrl-C and SIGTERM during ``verify`` and ``reconcile``: a clean stop, never a kill.

``verify`` writes the ledger (each processing_status it reads), so a signal must stop it
the way it stops ``run``: what was read stays recorded, the ledger's lock is released,
"Interrupted." and exit 130. Before, SIGTERM killed it (exit 143) and Ctrl-C only worked
because Python's default handler raises ``KeyboardInterrupt``. The servers answer the first
reads, then hang, so the signal always lands mid-command.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.factories import ledger_rows, row, run_cli, write_manifest
from tests.hostile_server import HostileServer, Request, engagement, respond

KEY = "sk-apik_signals.READBACK-1"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class AnswersThenHangs:
    """Creates and the first ``answered`` reads are answered; later reads hang until freed."""

    def __init__(self, answered: int) -> None:
        self.answered = answered
        self.reads = 0
        self.hanging = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, request: Request, out: BinaryIO) -> None:
        if request.method == "POST":
            number = request.json()["external_id"].rsplit("-", 1)[1]
            respond(out, 201, engagement(request, engagement_id=f"ngmt_{number}"))
            return
        with self._lock:
            self.reads += 1
            answer = self.reads <= self.answered
        if answer:
            engagement_id = request.path.split("?")[0].rsplit("/", 1)[1]
            body = {"id": engagement_id, "processing_status": "COMPLETED"}
            respond(out, 200, json.dumps(body).encode())
            return
        self.hanging.set()
        self.release.wait(60)


def imported(server: HostileServer, tmp_path: Path, rows: int) -> Path:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1, rows + 1)])
    ledger = tmp_path / "ledger.db"
    args = ["run", str(manifest), "--ledger", str(ledger), "--base-url", server.base_url]
    result = run_cli([*args, "--no-progress"], api_key=KEY)
    assert result.exit_code == 0, result.output
    return ledger


def signalled(command: list[str], behaviour: AnswersThenHangs, signum: int) -> tuple[int, str]:
    """Run ``importer COMMAND`` until the server hangs on a read, then send ``signum``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "importer", *command],
        cwd=PROJECT_ROOT,
        env={**os.environ, "ASKELEPHANT_API_KEY": KEY, "ASKELEPHANT_BASE_URL": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert behaviour.hanging.wait(60), "the command never reached the hanging read"
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        behaviour.release.set()
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_verify_cleanly_keeping_what_it_read(tmp_path: Path, signum: int) -> None:
    behaviour = AnswersThenHangs(answered=3)
    with HostileServer(behaviour) as server:
        ledger = imported(server, tmp_path, rows=6)
        command = ["verify", "--ledger", str(ledger), "--base-url", server.base_url]
        code, stderr = signalled(
            [*command, "--concurrency", "1", "--no-progress"], behaviour, signum
        )

    assert code == 130, stderr
    assert "Interrupted." in stderr
    assert "Traceback" not in stderr
    statuses = sorted(r["processing_status"] or "" for r in ledger_rows(ledger))
    assert statuses.count("COMPLETED") == 3  # every status read before the signal is kept
    with sqlite3.connect(ledger) as conn:  # the ledger is whole and free for the next command
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    again = run_cli(["status", "--ledger", str(ledger)])
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_reconcile_cleanly(tmp_path: Path, signum: int) -> None:
    behaviour = AnswersThenHangs(answered=1)
    with HostileServer(behaviour) as server:
        ledger = imported(server, tmp_path, rows=4)
        before = ledger.read_bytes()
        command = ["reconcile", "--ledger", str(ledger), "--base-url", server.base_url]
        code, stderr = signalled([*command, "--concurrency", "1"], behaviour, signum)

    assert code == 130, stderr
    assert "Interrupted." in stderr
    assert "Traceback" not in stderr
    assert ledger.read_bytes() == before  # reconcile changes neither side
