"""Shared fixtures: the sandbox app served in the test process for every test that needs the API.

    sandbox_server        one sandbox for the session (processing_seconds 0.5)
    sandbox               that sandbox, reset before each test (empty, no faults, default key)
    make_sandbox          a dedicated in-process sandbox with other settings, stopped after
                          the test: ``make_sandbox(latency_ms=50, seed=3, db_path=...)``
    make_sandbox_process  ``importer sandbox`` as a subprocess, for tests of the process itself
                          (its output, signals, a SIGKILL): ``make_sandbox_process("--seed", "3")``
    api_key               the default key, with every scope
    sandbox_client        an httpx.Client on the reset sandbox, sending the default key

``engagement_body(**changes)`` builds a valid create body with a fresh external_id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.sandboxes import PROJECT_ROOT, SANDBOX_KEY, Sandbox, SandboxProcess, SandboxThread

DEVREV_CRM_ACCOUNT = "001ACME000001"
"""The CRM account id the session sandbox's one DevRev account was synced from (ACC-1)."""

__all__ = [
    "DEVREV_CRM_ACCOUNT",
    "PROJECT_ROOT",
    "SANDBOX_KEY",
    "Sandbox",
    "SandboxProcess",
    "engagement_body",
]


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


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    """One sandbox for the session: fast processing, the default key with every scope."""
    server = SandboxThread(processing_seconds=0.5, devrev_accounts=[DEVREV_CRM_ACCOUNT]).start()
    yield server
    server.close()


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The session sandbox, emptied: no engagements, stats or faults; default key only."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxThread]]:
    """Start dedicated in-process sandboxes: ``make_sandbox(latency_ms=50, db_path=...)``."""
    started: list[SandboxThread] = []

    def make(**options: Any) -> SandboxThread:
        server = SandboxThread(**options)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.close()


@pytest.fixture
def make_sandbox_process() -> Iterator[Callable[..., SandboxProcess]]:
    """Start sandbox processes: ``make_sandbox_process("--latency-ms", "50", db_path=...)``."""
    started: list[SandboxProcess] = []

    def make(*extra_args: str, **kwargs: Any) -> SandboxProcess:
        server = SandboxProcess(*extra_args, **kwargs)
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
def sandbox_client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client for the reset session sandbox that sends the default key."""
    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=10.0) as client:
        yield client
