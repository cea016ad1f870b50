"""Shared and hostile ledgers: aliases, damaged pages, a full disk, read-only places, signals.

Every test drives the CLI (in-process, or as a real process where signals or resource
limits are the point) against the sandbox, real SQLite files and a real file system.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from importer.ledger import open_ledger
from tests.conftest import PROJECT_ROOT, Sandbox
from tests.factories import api_args, row, run_cli, write_manifest


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def imported_ledger(sandbox: Sandbox, tmp_path: Path, rows: int = 40) -> Path:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1, rows + 1)])
    ledger = tmp_path / "state" / "ledger.db"
    result = run_cli(["run", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)
    assert result.exit_code == 0, result.output
    return ledger


def writing_command(name: str, sandbox: Sandbox, ledger: Path, manifest: Path) -> list[str]:
    head = [name, str(manifest)] if name in ("run", "sync-contacts") else [name]
    return [*head, *api_args(sandbox, ledger)]


def fail_one_row(ledger: Path) -> None:
    with sqlite3.connect(ledger) as conn:
        conn.execute(
            "UPDATE engagements SET status = 'failed', transient = 1 "
            "WHERE external_id = 'crm:rec-1'"
        )
    conn.close()


# -- 1: one lock per file, whatever its name ---------------------------------------------------


@pytest.mark.parametrize("alias", ["symlink", "symlinked folder"])
@pytest.mark.parametrize("command", ["run", "retry", "sync-contacts", "verify"])
def test_an_alias_of_a_ledger_in_use_is_refused(
    sandbox: Sandbox, tmp_path: Path, alias: str, command: str
) -> None:
    ledger = imported_ledger(sandbox, tmp_path, rows=2)
    fail_one_row(ledger)  # so that retry has something to send
    other = tmp_path / "elsewhere" / "alias.db"
    other.parent.mkdir()
    if alias == "symlink":
        other.symlink_to(ledger)
    else:  # the same name, reached through a symlinked folder
        other = tmp_path / "linked" / ledger.name
        other.parent.symlink_to(ledger.parent)
    manifest = write_manifest(tmp_path / "more.csv", [row(1), row(7)])
    before = sandbox.stats()["requests"]

    with open_ledger(ledger, exclusive=True):  # a run holding the ledger by its own name
        result = run_cli(writing_command(command, sandbox, other, manifest), sandbox.api_key)

    assert result.exit_code == 2, result.output
    assert f"another importer run (pid {os.getpid()}) is using the ledger" in result.stderr
    assert sandbox.stats()["requests"] == before


# -- 1b: one ledger, one name (issue 20) -------------------------------------------------------


EVERY_COMMAND = ["run", "retry", "sync-contacts", "verify", "reconcile", "status", "report", "plan"]


def any_command(name: str, sandbox: Sandbox, ledger: Path, manifest: Path) -> list[str]:
    if name == "status":
        return ["status", "--ledger", str(ledger)]
    if name == "report":
        return ["report", "--ledger", str(ledger), "--out", str(ledger.parent / "out")]
    if name == "plan":
        return ["plan", str(manifest), "--ledger", str(ledger)]
    if name == "reconcile":
        return ["reconcile", "--ledger", str(ledger), "--base-url", sandbox.base_url]
    return writing_command(name, sandbox, ledger, manifest)


def names_beside(ledger: Path) -> list[str]:
    return sorted(p.name for p in ledger.parent.iterdir())


@pytest.mark.parametrize("by", ["its first name", "the link"])
@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_a_ledger_with_a_hard_link_is_refused_by_every_command(
    sandbox: Sandbox, tmp_path: Path, command: str, by: str
) -> None:
    ledger = imported_ledger(sandbox, tmp_path, rows=2)
    fail_one_row(ledger)
    link = ledger.with_name("alias.db")
    os.link(ledger, link)
    manifest = write_manifest(tmp_path / "more.csv", [row(1), row(7)])
    before, files, requests = digest(ledger), names_beside(ledger), sandbox.stats()["requests"]

    used = ledger if by == "its first name" else link
    result = run_cli(any_command(command, sandbox, used, manifest), sandbox.api_key)

    assert result.exit_code == 2, result.output
    assert "has 2 hard links" in result.stderr and "left untouched" in result.stderr
    assert "Traceback" not in result.output
    assert (digest(ledger), names_beside(ledger)) == (before, files)
    assert sandbox.stats()["requests"] == requests


def test_a_wal_left_by_a_kill_is_never_read_stale_through_a_hard_link(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The reproduction: a WAL with committed rows, a run through another name."""
    ledger = imported_ledger(sandbox, tmp_path, rows=3)
    writer = sqlite3.connect(ledger)  # stays open: its WAL is what a kill -9 leaves
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE engagements SET status = 'pending' WHERE external_id = 'crm:rec-3'")
    writer.commit()
    link = tmp_path / "elsewhere.db"
    os.link(ledger, link)
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1, 5)])
    try:
        result = run_cli(["run", str(manifest), *api_args(sandbox, link)], sandbox.api_key)
    finally:
        writer.close()
    assert result.exit_code == 2, result.output
    assert "hard links" in result.stderr
    link.unlink()
    status = run_cli(["status", "--ledger", str(ledger)])
    assert status.exit_code in (0, 1), status.output
    assert "damaged" not in status.output


def newer_schema(ledger: Path, extra_column: bool) -> None:
    with sqlite3.connect(ledger) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        if extra_column:
            conn.execute("ALTER TABLE engagements ADD COLUMN tenant TEXT NOT NULL DEFAULT 'x'")
            conn.execute("CREATE TABLE IF NOT EXISTS future (a NOT NULL)")
    conn.close()


@pytest.mark.parametrize("extra_column", [False, True])
@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_a_ledger_from_a_newer_importer_is_refused_before_anything_is_read_or_sent(
    sandbox: Sandbox, tmp_path: Path, command: str, extra_column: bool
) -> None:
    ledger = imported_ledger(sandbox, tmp_path, rows=2)
    fail_one_row(ledger)
    newer_schema(ledger, extra_column)
    manifest = write_manifest(tmp_path / "more.csv", [row(n) for n in range(1, 11)])
    before, files, requests = digest(ledger), names_beside(ledger), sandbox.stats()["requests"]

    result = run_cli(any_command(command, sandbox, ledger, manifest), sandbox.api_key)

    assert result.exit_code == 2, result.output
    assert "written by a newer importer (schema version 99" in result.stderr, result.stderr
    assert "Sending" not in result.output and "Traceback" not in result.output
    assert (digest(ledger), names_beside(ledger)) == (before, files)
    assert sandbox.stats()["requests"] == requests


@pytest.mark.parametrize("command", ["status", "report", "plan"])
def test_reading_commands_leave_no_side_files_beside_a_ledger(
    sandbox: Sandbox, tmp_path: Path, command: str
) -> None:
    ledger = imported_ledger(sandbox, tmp_path, rows=3)
    manifest = write_manifest(tmp_path / "m2.csv", [row(1), row(2), row(4)])
    files = names_beside(ledger)
    assert not any(name.endswith(("-wal", "-shm")) for name in files)

    result = run_cli(any_command(command, sandbox, ledger, manifest), sandbox.api_key)

    assert result.exit_code in (0, 1), result.output
    assert [n for n in names_beside(ledger) if n != "out"] == files


# -- 2: a damaged ledger is refused and left as it is ------------------------------------------


def damage_a_page(ledger: Path) -> None:
    """Overwrite one page that is not the first with bytes SQLite cannot read."""
    with sqlite3.connect(ledger) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
    assert pages > 3
    with ledger.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(bytes((n * 37 + 11) % 256 for n in range(page_size)))


@pytest.mark.parametrize("command", ["run", "retry", "sync-contacts", "verify"])
def test_a_damaged_ledger_is_refused_and_left_byte_for_byte_untouched(
    sandbox: Sandbox, tmp_path: Path, command: str
) -> None:
    ledger = imported_ledger(sandbox, tmp_path)
    fail_one_row(ledger)  # so that retry has something to send
    damage_a_page(ledger)
    manifest = write_manifest(tmp_path / "more.csv", [row(100)])
    before, files = digest(ledger), sorted(p.name for p in ledger.parent.iterdir())
    requests = sandbox.stats()["requests"]

    result = run_cli(writing_command(command, sandbox, ledger, manifest), sandbox.api_key)

    assert result.exit_code == 2, result.output
    assert "damaged" in result.stderr and "left untouched" in result.stderr, result.stderr
    assert digest(ledger) == before
    assert sorted(p.name for p in ledger.parent.iterdir()) == files
    assert sandbox.stats()["requests"] == requests


# -- 3: a full disk ----------------------------------------------------------------------------


def limited_run(args: list[str], api_key: str, max_bytes: int) -> subprocess.CompletedProcess[str]:
    """The CLI in a process whose files cannot grow past ``max_bytes`` (a full disk)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return subprocess.run(
        [sys.executable, "-m", "importer", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "ASKELEPHANT_API_KEY": api_key, "IMPORTER_DEBUG": ""},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
        check=False,
    )


def test_a_full_disk_stops_the_run_cleanly_and_the_next_run_resumes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = imported_ledger(sandbox, tmp_path, rows=1)
    rows = [row(n, transcript_text="words " * 2000) for n in range(2, 402)]
    manifest = write_manifest(tmp_path / "big.csv", rows)
    args = ["run", str(manifest), *api_args(sandbox, ledger), "--concurrency", "2"]

    full = limited_run(args, sandbox.api_key, max_bytes=ledger.stat().st_size + 200_000)

    assert full.returncode == 3, full.stderr
    assert "internal error" not in full.stderr
    assert "disk" in full.stderr and str(ledger) in full.stderr, full.stderr
    with sqlite3.connect(ledger) as conn:
        outcomes = [r[0] for r in conn.execute("SELECT outcome FROM runs ORDER BY id")]
    assert outcomes[-1] != "running", outcomes
    again = run_cli(args, sandbox.api_key)
    assert again.exit_code == 0, again.output
    created = sandbox.stats()["created"]
    assert len(created) == 401 and set(created.values()) == {1}


# -- 4: reading commands on a read-only ledger -------------------------------------------------


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can create files in, not even root (``chattr +i`` when root)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    yield folder
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=False, capture_output=True)
    folder.chmod(0o755)


def make_read_only(folder: Path) -> None:
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(folder)], check=False, capture_output=True)
        if done.returncode != 0 or shutil.which("chattr") is None:
            pytest.skip("root, and no chattr +i here: cannot make a folder read-only")
    else:
        folder.chmod(0o555)


@pytest.mark.parametrize("command", ["status", "report", "plan"])
def test_reading_commands_work_on_a_read_only_ledger(
    sandbox: Sandbox, tmp_path: Path, read_only_folder: Path, command: str
) -> None:
    source = imported_ledger(sandbox, tmp_path, rows=3)
    ledger = read_only_folder / "ledger.db"
    shutil.copy(source, ledger)
    manifest = write_manifest(tmp_path / "m2.csv", [row(1), row(2), row(3), row(4)])
    make_read_only(read_only_folder)
    before = digest(ledger)
    args = {
        "status": ["status", "--ledger", str(ledger)],
        "report": ["report", "--ledger", str(ledger), "--out", str(tmp_path / "out")],
        "plan": ["plan", str(manifest), "--ledger", str(ledger), "--json"],
    }[command]

    result = run_cli(args)

    assert result.exit_code in (0, 1), result.output
    assert "not a usable" not in result.output
    if command == "plan":
        assert '"already imported": 3' in result.stdout and '"new": 1' in result.stdout
    if command == "status":
        assert "created" in result.stdout
    assert digest(ledger) == before


# -- 5: a stop during planning -----------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_planning_stops_cleanly_and_sends_nothing(
    sandbox: Sandbox, tmp_path: Path, signum: int
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1, 20_001)])
    ledger = tmp_path / "ledger.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "importer", "run", str(manifest), *api_args(sandbox, ledger)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "ASKELEPHANT_API_KEY": sandbox.api_key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _run_started(ledger):
            time.sleep(0.01)
        assert _run_started(ledger)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    with sqlite3.connect(ledger) as conn:
        outcomes = [r[0] for r in conn.execute("SELECT outcome FROM runs")]
    assert outcomes == ["interrupted"]
    assert "POST /v2/engagements" not in sandbox.stats()["requests"]  # no create was sent


def _run_started(ledger: Path) -> bool:
    if not ledger.exists():
        return False
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=0.1) as conn:
            return bool(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.Error:
        return False


def test_a_full_disk_during_verify_is_an_environment_error_not_a_bug(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = imported_ledger(sandbox, tmp_path, rows=300)
    size = ledger.stat().st_size

    full = limited_run(["verify", *api_args(sandbox, ledger)], sandbox.api_key, size + 20_000)

    assert full.returncode == 3, full.stderr
    assert "internal error" not in full.stderr
    assert "disk" in full.stderr and "full" in full.stderr, full.stderr
