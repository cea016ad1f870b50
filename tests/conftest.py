"""Shared fixtures: a real ``importer sandbox`` process for every test that needs the API.

    sandbox_server   one process for the whole session (--processing-seconds 0.5)
    sandbox          that process, reset before each test (empty, no faults, default key)
    make_sandbox     a dedicated process with extra CLI options, stopped after the test
    api_key          the default key, with every scope
    sandbox_client   an httpx.Client on the reset sandbox, sending the default key

``engagement_body(**changes)`` builds a valid create body with a fresh external_id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

SANDBOX_KEY = "sk-apik_test.TESTSECRET123"
DEVREV_CRM_ACCOUNT = "001ACME000001"
"""The CRM account id the session sandbox's one DevRev account was synced from (ACC-1)."""
STARTUP_TIMEOUT_SECONDS = 20.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def engagement_body(**changes: Any) -> dict[str, Any]:
    """A valid create body with a fresh external_id; ``changes`` override or add fields."""
    body: dict[str, Any] = {
        "type": "CALL",
        "title": "Discovery call",
        "source_system": "tests",
        "external_id": f"tests:{uuid.uuid4().hex}",
        "media_url": "https://media.example.com/calls/1.mp3",
        "run_workflows": False,
        "start_at": "2024-05-01T14:30:00Z",
    }
    body.update(changes)
    return body


class SandboxProcess:
    """``python -m importer sandbox`` in a subprocess, with its admin API at hand.

    With ``key=None`` no ``--key`` is passed and ``api_key`` is the generated key the
    sandbox prints. Without ``port`` the sandbox binds port 0 and reports the port it got:
    a port picked free beforehand could be taken by another suite before the sandbox binds
    it. A restart reuses that port.
    """

    def __init__(
        self,
        *extra_args: str,
        key: str | None = SANDBOX_KEY,
        db_path: str | os.PathLike[str] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = 0 if port is None else port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_key = key.partition(":")[0] if key else ""
        self.extra_args = list(extra_args)
        self.key = key
        self.db_path = str(db_path) if db_path is not None else None
        self.output: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._stderr: Any = None
        self._reader: threading.Thread | None = None
        self._admin = httpx.Client(timeout=10.0)

    @property
    def command(self) -> list[str]:
        """The command line that starts this sandbox."""
        args = [sys.executable, "-m", "importer", "sandbox", "--host", "127.0.0.1"]
        args += ["--port", str(self.port)]
        if self.key is not None:
            args += ["--key", self.key]
        if self.db_path is not None:
            args += ["--db", self.db_path]
        return args + self.extra_args

    def start(self) -> SandboxProcess:
        """Start the process on this port and wait until it answers."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("sandbox already running")
        self._close_pipes()
        self.output = []
        # Kept open while the process runs (stderr goes there); closed by stop() or kill().
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self._wait_until_ready()
        return self

    def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        # Read to the end so the pipe never fills, whatever the server prints.
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"sandbox exited at start-up:\n{self.stderr_text()}")
            urls = [line.rsplit(" ", 1)[1] for line in self.output if "listening on" in line]
            keys = [line.split(": ", 1)[1] for line in self.output if line.startswith("API key:")]
            if urls and keys:
                # With --port 0 the real port is only known now; a restart keeps it.
                self.base_url = urls[0]
                self.port = int(urls[0].rsplit(":", 1)[1])
                self.api_key = self.key.partition(":")[0] if self.key else keys[0]
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"sandbox did not start in time:\n{self.stderr_text()}")

    def stderr_text(self) -> str:
        """What the sandbox wrote on stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return str(self._stderr.read())

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait, SIGKILL if it will not go; the exit code."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: the crash case, nothing flushed on the way out."""
        return self._end(signal.SIGKILL, 10.0)

    def restart(self) -> SandboxProcess:
        """Stop, then start again on the same port with the same options."""
        self.stop()
        return self.start()

    def _end(self, sig: signal.Signals, timeout: float) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        code = self.process.returncode
        self._close_pipes()
        return code

    def _close_pipes(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        """Stop the process and close the admin client."""
        self.stop()
        self._admin.close()

    # -- admin API --

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._admin.request(method, self.base_url + path, **kwargs)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        """``GET /_sandbox/stats``."""
        return dict(self._call("GET", "/_sandbox/stats"))

    def set_faults(self, **fields: Any) -> dict[str, Any]:
        """Change faults at run time; an outage given here counts from now."""
        return dict(self._call("POST", "/_sandbox/faults", json=fields))

    def reset(self) -> None:
        """Empty store and stats, no faults, only the start-up keys."""
        self._call("POST", "/_sandbox/reset")

    def add_key(self, key: str, scopes: list[str] | tuple[str, ...]) -> None:
        """Accept a key with these scopes."""
        self._call("POST", "/_sandbox/keys", json={"key": key, "scopes": list(scopes)})

    def revoke_key(self, key: str) -> None:
        """Stop accepting a key."""
        self._call("DELETE", f"/_sandbox/keys/{key}")

    def add_contacts(self, *contact_ids: str) -> None:
        """Make these contact ids known."""
        self._call("POST", "/_sandbox/contacts", json={"contact_ids": list(contact_ids)})

    def engagements(self) -> list[dict[str, Any]]:
        """Every stored engagement, all fields."""
        return list(self._call("GET", "/_sandbox/engagements"))


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxProcess]:
    """One sandbox for the session: fast processing, the default key with every scope."""
    server = SandboxProcess(
        "--processing-seconds", "0.5", "--devrev-account", DEVREV_CRM_ACCOUNT
    ).start()
    yield server
    server.close()


@pytest.fixture
def sandbox(sandbox_server: SandboxProcess) -> SandboxProcess:
    """The session sandbox, emptied: no engagements, stats or faults; default key only."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxProcess]]:
    """Start dedicated sandboxes: ``make_sandbox("--latency-ms", "50", db_path=...)``."""
    started: list[SandboxProcess] = []

    def make(
        *extra_args: str, db_path: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> SandboxProcess:
        server = SandboxProcess(*extra_args, db_path=db_path, **kwargs)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.close()


@pytest.fixture
def api_key() -> str:
    """The default sandbox key (every scope)."""
    return SANDBOX_KEY


@pytest.fixture
def sandbox_client(sandbox: SandboxProcess) -> Iterator[httpx.Client]:
    """A client for the reset session sandbox that sends the default key."""
    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=10.0) as client:
        yield client
