"""The ledger is never shared, clobbered or half-written: busy, corrupt and read-only cases."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, Sandbox
from tests.factories import api_args, row, run_cli, write_manifest

GARBAGE = bytes(range(256)) * 64


def api_command(name: str, sandbox: Sandbox, ledger: Path, manifest: Path) -> list[str]:
    """The command line of an API command, with a manifest where it takes one."""
    head = [name, str(manifest)] if name in ("run", "sync-contacts") else [name]
    return [*head, *api_args(sandbox, ledger)]


def local_command(name: str, ledger: Path, manifest: Path, out: Path) -> list[str]:
    if name == "plan":
        return ["plan", str(manifest), "--ledger", str(ledger)]
    if name == "report":
        return ["report", "--ledger", str(ledger), "--out", str(out)]
    return [name, "--ledger", str(ledger)]


def test_a_second_run_on_a_busy_ledger_is_refused(make_sandbox: object, tmp_path: Path) -> None:
    server: Sandbox = make_sandbox(latency_ms=200)  # type: ignore[operator]
    # Enough rows (about 20 s at 2 x 200 ms) that it is still running after three more
    # commands on a loaded machine; it is stopped as soon as they are done.
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(200)])
    other = write_manifest(tmp_path / "other.csv", [row(100)])
    ledger = tmp_path / "ledger.db"
    env = {**os.environ, "ASKELEPHANT_API_KEY": server.api_key}
    args = ["run", str(manifest), *api_args(server, ledger), "--concurrency", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "importer", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and server.stats()["engagements"] < 2:
            time.sleep(0.05)
        assert server.stats()["engagements"] >= 2

        second = run_cli(["run", str(other), *api_args(server, ledger)], server.api_key)
        verify = run_cli(["verify", *api_args(server, ledger)], server.api_key)
        sync = run_cli(["sync-contacts", str(other), *api_args(server, ledger)], server.api_key)

        still_running = process.poll() is None
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert still_running, output
    message = (
        f"error: another importer run (pid {process.pid}) is using the ledger {ledger}; "
        "wait for it to finish, or pass a different --ledger\n"
    )
    for result in (second, verify, sync):
        assert result.exit_code == 2
        assert result.stderr == message
        assert "Traceback" not in result.output
    assert "crm:rec-100" not in server.stats()["created"]
    with sqlite3.connect(ledger) as conn:
        runs = conn.execute("SELECT command, manifest FROM runs").fetchall()
    assert runs == [("run", str(manifest.resolve()))]
    # Once the first run has ended, the ledger is free again.
    after = run_cli(["run", str(other), *api_args(server, ledger)], server.api_key)
    assert after.exit_code == 0, after.output


@pytest.mark.parametrize("name", ["run", "verify", "sync-contacts", "retry"])
def test_garbage_ledger_is_refused_and_left_untouched_by_api_commands(
    sandbox: Sandbox, tmp_path: Path, name: str
) -> None:
    ledger = tmp_path / "ledger.db"
    ledger.write_bytes(GARBAGE)
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run_cli(api_command(name, sandbox, ledger, manifest), sandbox.api_key)

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {ledger} is not a usable importer ledger (")
    assert "it was left untouched: move it away or pass another file with --ledger" in (
        result.stderr
    )
    assert "Traceback" not in result.output
    assert ledger.read_bytes() == GARBAGE
    assert sorted(p.name for p in tmp_path.iterdir()) in (
        ["ledger.db", "m.csv"],
        ["ledger.db", "ledger.db.lock", "m.csv"],
    )
    assert sandbox.stats()["requests"] == {}


@pytest.mark.parametrize("name", ["plan", "status", "report"])
def test_garbage_ledger_is_refused_by_local_commands(tmp_path: Path, name: str) -> None:
    ledger = tmp_path / "ledger.db"
    ledger.write_bytes(GARBAGE)
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run_cli(local_command(name, ledger, manifest, tmp_path / "out"))

    assert result.exit_code == 2, result.output
    assert f"{ledger} is not a usable importer ledger" in result.stderr
    assert "Traceback" not in result.output
    assert ledger.read_bytes() == GARBAGE
    assert not (tmp_path / "out").exists()


def test_sqlite_file_of_another_program_is_left_untouched(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "app.db"
    with sqlite3.connect(ledger) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    conn.close()
    before = ledger.read_bytes()
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run_cli(api_command("run", sandbox, ledger, manifest), sandbox.api_key)

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {ledger} is a SQLite file of something else (tables: customers); "
        "it was left untouched: pass another --ledger\n"
    )
    assert ledger.read_bytes() == before
    assert sandbox.stats()["requests"] == {}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("run", "cannot create the ledger folder {blocker} ("),
        ("sync-contacts", "cannot create the ledger folder {blocker} ("),
        # verify reads an existing ledger: it says there is none rather than creating one.
        ("verify", "no ledger at {blocker}/ledger.db: "),
    ],
)
def test_ledger_inside_a_regular_file_fails_before_anything_is_sent(
    sandbox: Sandbox, tmp_path: Path, name: str, message: str
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file\n", encoding="utf-8")
    ledger = blocker / "ledger.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run_cli(api_command(name, sandbox, ledger, manifest), sandbox.api_key)

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: " + message.format(blocker=blocker))
    assert "Traceback" not in result.output
    assert blocker.read_text(encoding="utf-8") == "a file\n"
    assert sandbox.stats()["requests"] == {}


@pytest.mark.parametrize("what", ["folder", "file"])
def test_read_only_ledger_fails_before_anything_is_sent(
    sandbox: Sandbox, tmp_path: Path, what: str
) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    ledger = folder / "ledger.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    if what == "file":
        assert run_cli(["run", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)
        ledger.chmod(0o444)
        write_manifest(manifest, [row(1), row(2)])
        target = ledger
    else:
        folder.chmod(0o555)
        target = folder
    try:
        if os.access(target, os.W_OK):
            pytest.skip("running as root: file modes do not stop writes here")
        before = sandbox.stats()["requests"]

        result = run_cli(["run", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)
    finally:
        folder.chmod(0o755)
        if ledger.exists():
            ledger.chmod(0o644)

    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: ledger {ledger} is not writable; choose another location with --ledger\n"
    )
    assert sandbox.stats()["requests"] == before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_ledger_where_no_file_can_be_created_fails_before_anything_is_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # Even root cannot create a file in /proc: the read-only case, whoever runs the tests.
    ledger = Path("/proc/importer-test-ledger.db")
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run_cli(["run", str(manifest), *api_args(sandbox, ledger)], sandbox.api_key)

    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: cannot create the ledger {ledger} (unable to open database file); "
        "choose another location with --ledger\n"
    )
    assert not ledger.exists()
    assert sandbox.stats()["requests"] == {}
