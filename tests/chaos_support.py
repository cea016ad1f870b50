"""Helpers for the reliability drills in ``test_chaos.py``.

The drills run the importer as a real subprocess (so it can be SIGKILLed), against a real
sandbox process, and then compare three views of the truth: the sandbox's store, the
sandbox's request stats, and the importer's ledger.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from importer.ledger import FINAL_SUCCESS
from tests.conftest import PROJECT_ROOT, Sandbox
from tests.factories import ledger_rows, row, run_args, write_manifest

CHAOS_FULL = os.environ.get("CHAOS_FULL") == "1"
CREATE = "POST /v2/engagements"


def size(full: int, reduced: int) -> int:
    """The drill's size: ``full`` under ``CHAOS_FULL=1`` (``make chaos``), else ``reduced``."""
    return full if CHAOS_FULL else reduced


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def chaos_manifest(path: Path, valid: int, invalid: int = 0) -> tuple[Path, set[str]]:
    """``valid`` good rows with ``invalid`` bad ones spread among them; the valid ids."""
    rows = [row(n) for n in range(valid)]
    for k in range(invalid):
        bad = row(100_000 + k, start_at="not a date") if k % 2 else row(100_000 + k, type="FAX")
        rows.insert((k + 1) * len(rows) // (invalid + 1), bad)
    write_manifest(path, rows)
    return path, {f"crm:rec-{n}" for n in range(valid)}


def create_counts(stats: dict[str, Any]) -> dict[str, int]:
    """The sandbox's create answers by status (``dropped`` included)."""
    return {k: int(v) for k, v in stats["requests"].get(CREATE, {}).items()}


def create_requests(stats: dict[str, Any]) -> int:
    """Every create request the sandbox saw, whatever it answered."""
    return sum(create_counts(stats).values())


class ImporterProcess:
    """``python -m importer run ...`` in a subprocess; stdout and stderr go to one file."""

    def __init__(
        self,
        manifest: Path,
        ledger: Path,
        sandbox: Sandbox,
        *extra: str,
        api_key: str | None = None,
    ) -> None:
        self.command = [
            sys.executable,
            "-m",
            "importer",
            *run_args(manifest, ledger, sandbox, "--log-format", "json", *extra),
        ]
        key = api_key or sandbox.api_key
        env = {**os.environ, "ASKELEPHANT_API_KEY": key, "DEVREV_API_KEY": key}
        env.pop("ASKELEPHANT_BASE_URL", None)
        env.pop("DEVREV_BASE_URL", None)
        self._log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: nothing is flushed, no handler runs."""
        if self.running():
            self.process.send_signal(signal.SIGKILL)
        self.wait(30)

    def wait(self, timeout: float) -> int:
        """Wait for the exit (SIGKILL after ``timeout``); the exit code."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self._collect()
            message = f"importer still running after {timeout}s:\n{self.output[-3000:]}"
            raise AssertionError(message) from None
        self._collect()
        return self.process.returncode

    def _collect(self) -> None:
        if not self._log.closed:
            self._log.seek(0)
            self.output = self._log.read()
            self._log.close()

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log events of this kind (lines that are not JSON are skipped)."""
        found = []
        for line in self.output.splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == name:
                    found.append(record)
        return found

    def summary(self) -> dict[str, Any]:
        """The ``run_finished`` event (the run's counts, requests, exit code, stop reason)."""
        finished = self.events("run_finished")
        assert finished, f"no run_finished event:\n{self.output[-3000:]}"
        return finished[-1]


def run_importer(
    manifest: Path,
    ledger: Path,
    sandbox: Sandbox,
    *extra: str,
    timeout: float = 180.0,
    api_key: str | None = None,
) -> ImporterProcess:
    """Run the importer to its end in a subprocess."""
    process = ImporterProcess(manifest, ledger, sandbox, *extra, api_key=api_key)
    process.wait(timeout)
    return process


def integrity(ledger: Path) -> str:
    """``PRAGMA integrity_check`` of the ledger."""
    with sqlite3.connect(ledger) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def ledger_statuses(ledger: Path) -> dict[str, str]:
    """external_id -> status, from the ledger's engagements table."""
    return {r["external_id"]: r["status"] for r in ledger_rows(ledger)}


def rejects(ledger: Path) -> list[dict[str, Any]]:
    """The ledger's rejects table."""
    with sqlite3.connect(ledger) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM rejects")]


def assert_exactly_once(
    sandbox: Sandbox, ledger: Path, valid_ids: set[str], *, stats: bool = True
) -> list[dict[str, Any]]:
    """Each valid row is one engagement on the server, and the ledger agrees; the engagements.

    ``stats=False`` after a sandbox restart (its stats start over; its store does not).
    """
    engagements = sandbox.engagements()
    server_ids = [e["external_id"] for e in engagements]
    assert len(server_ids) == len(set(server_ids)), "an external_id stored twice"
    assert set(server_ids) == valid_ids
    if stats:
        created = sandbox.stats()["created"]
        assert set(created) == valid_ids
        repeated = {k: v for k, v in created.items() if v != 1}
        assert not repeated, f"created more than once: {repeated}"
    rows = ledger_rows(ledger)
    bad = {r["external_id"]: r["status"] for r in rows if r["status"] not in FINAL_SUCCESS}
    assert not bad, f"rows not in a final state: {dict(list(bad.items())[:10])}"
    ledger_ids = {r["external_id"]: r["engagement_id"] for r in rows}
    assert ledger_ids == {e["external_id"]: e["id"] for e in engagements}
    return engagements


def status_of(ledger: Path, ids: Sequence[str]) -> dict[str, str]:
    """The ledger status of each of these ids (``absent`` if not there)."""
    statuses = ledger_statuses(ledger)
    return {i: statuses.get(i, "absent") for i in ids}
