"""Test data builders: manifest rows and files, and running the CLI in-process."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from importer.cli import cli
from importer.rows.mapping import FIELDS
from tests.sandboxes import PROJECT_ROOT

COLUMNS = list(FIELDS)


def row(n: int, **changes: str) -> dict[str, str]:
    """A valid manifest row numbered ``n``; ``changes`` override cells."""
    cells = {
        "id": f"rec-{n}",
        "type": "CALL",
        "title": f"Call number {n}",
        "media_url": f"https://media.example.com/calls/{n}.mp3",
        "start_at": f"2024-03-{1 + n % 28:02d}T10:{n % 60:02d}:00Z",
        "is_private": "",
        "participants": f"Person {n} <person{n}@example.com>",
        "transcript_text": "",
        "transcript_path": "",
        "source_system": "crm",
        "contact_ids": "",
    }
    cells.update(changes)
    return cells


def write_manifest(
    path: Path, rows: Sequence[dict[str, str]], columns: list[str] | None = None
) -> Path:
    """Write rows as a CSV manifest with a header line."""
    names = columns or COLUMNS
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def api_args(sandbox: Any, ledger: Path, *extra: str) -> list[str]:
    """``--ledger L --base-url URL --no-progress`` plus ``extra``, for a sandbox."""
    return ["--ledger", str(ledger), "--base-url", sandbox.base_url, "--no-progress", *extra]


def run_args(manifest: Path, ledger: Path, sandbox: Any, *extra: str) -> list[str]:
    """``run MANIFEST`` with the sandbox's API options."""
    return ["run", str(manifest), *api_args(sandbox, ledger, *extra)]


def run_cli(args: Sequence[str], api_key: str | None = None, **env: str) -> Result:
    """``importer ARGS`` in-process, with the key in the environment as users pass it."""
    environment = {"ASKELEPHANT_API_KEY": api_key or "", "ASKELEPHANT_BASE_URL": "", **env}
    return CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)


def ledger_rows(path: Path, where: str = "1") -> list[dict[str, Any]]:
    """Engagement rows of a ledger file, read with plain sqlite3."""
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM engagements WHERE {where}")]


def status_counts(path: Path) -> dict[str, int]:
    """Ledger rows by status (engagements table only)."""
    counts: dict[str, int] = {}
    for item in ledger_rows(path):
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    return counts


def interrupted_run(server: Any, args: Sequence[str], *, after: int) -> tuple[int, str, str]:
    """``importer ARGS`` in a child process, sent Ctrl-C once the server holds ``after``
    engagements: (exit code, stdout, stderr). The process boundary is the point here."""
    env = {**os.environ, "ASKELEPHANT_API_KEY": server.api_key}
    process = subprocess.Popen(
        [sys.executable, "-m", "importer", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and server.stats()["engagements"] < after:
        time.sleep(0.05)
    server.set_faults(latency_ms=1000)  # the stop lands mid-run however loaded the machine is
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    return process.returncode, stdout, stderr


def with_part_changed(
    source: Path, path: Path, part: str, change: Callable[[bytes], bytes]
) -> Path:
    """A copy of a zip file (an ``.xlsx``) at ``path``, its ``part`` passed through ``change``."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as changed:
        for item in original.infolist():
            data = original.read(item.filename)
            changed.writestr(item, change(data) if item.filename == part else data)
    return path
