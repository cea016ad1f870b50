"""The sandbox for tests: served in the test process, or as a process when that is the point.

    SandboxThread    the app under uvicorn in a thread of the test process: real HTTP on a
                     free port, started in milliseconds; what almost every test uses
    SandboxProcess   ``python -m importer sandbox`` as a subprocess: only for what a process
                     shows (its output and exit code, signals, a SIGKILL mid-run)

Both have the admin API at hand (``stats``, ``set_faults``, ``reset``, keys, contacts).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from importer.sandbox.server import uvicorn_config
from importer.sandbox.settings import ApiKey, Faults, SandboxSettings

SANDBOX_KEY = "sk-apik_test.TESTSECRET123"
STARTUP_TIMEOUT_SECONDS = 20.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent
FAULT_NAMES = frozenset(f.name for f in dataclasses.fields(Faults))


class Sandbox:
    """A running sandbox: where it listens, the key it accepts, and its admin API."""

    def __init__(self, api_key: str) -> None:
        self.base_url = "http://127.0.0.1:0"
        self.api_key = api_key
        self._admin = httpx.Client(timeout=10.0)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop serving."""
        raise NotImplementedError

    def server_log(self) -> str:
        """What the server logged so far (its errors, with their tracebacks)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop serving and close the admin client."""
        self.stop()
        self._admin.close()

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


class SandboxThread(Sandbox):
    """The sandbox app served by uvicorn (as ``importer sandbox`` serves it) in a thread.

    ``options`` are ``SandboxSettings`` fields or ``Faults`` fields, e.g.
    ``SandboxThread(processing_seconds=0.5, latency_ms=20, seed=11)``. It binds a free port;
    a restart keeps that port and, with ``db_path``, the engagements.
    """

    def __init__(self, *, db_path: str | os.PathLike[str] | None = None, **options: Any) -> None:
        super().__init__(SANDBOX_KEY)
        faults = Faults(**{k: v for k, v in options.items() if k in FAULT_NAMES})
        settings = {k: v for k, v in options.items() if k not in FAULT_NAMES}
        self.settings = SandboxSettings(
            host="127.0.0.1",
            port=0,
            db_path=str(db_path) if db_path is not None else None,
            keys=[ApiKey(SANDBOX_KEY)],
            faults=faults,
            **settings,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._log = io.StringIO()
        self._log_handler = logging.StreamHandler(self._log)

    def start(self) -> SandboxThread:
        """Serve in a new thread; return once the socket listens."""
        server = uvicorn.Server(uvicorn_config(self.settings))  # configures uvicorn's loggers
        logging.getLogger("uvicorn.error").addHandler(self._log_handler)
        thread = threading.Thread(target=server.run, name="sandbox", daemon=True)
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.002)
        port = server.servers[0].sockets[0].getsockname()[1]
        self.settings = dataclasses.replace(self.settings, port=port)
        self.base_url = f"http://127.0.0.1:{port}"
        self._server, self._thread = server, thread
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop serving: connections are closed, the thread ends."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
        self._server = self._thread = None
        logging.getLogger("uvicorn.error").removeHandler(self._log_handler)
        return None

    def server_log(self) -> str:
        """What uvicorn logged while this sandbox served (another one's errors too)."""
        return self._log.getvalue()

    def restart(self) -> SandboxThread:
        """Stop, then serve again on the same port with the same settings."""
        self.stop()
        return self.start()


class SandboxProcess(Sandbox):
    """``python -m importer sandbox`` in a subprocess: for what only a process shows (its
    output, its exit code, signals, SIGKILL).

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
        super().__init__(key.partition(":")[0] if key else "")
        self.port = 0 if port is None else port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.key = key
        self.db_path = str(db_path) if db_path is not None else None
        self.output: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._stderr: Any = None
        self._reader: threading.Thread | None = None

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
                raise RuntimeError(f"sandbox exited at start-up:\n{self.server_log()}")
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
        raise RuntimeError(f"sandbox did not start in time:\n{self.server_log()}")

    def server_log(self) -> str:
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
