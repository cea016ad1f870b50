"""The ``importer sandbox`` command: options, start-up output, signals, restarts with --db."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import SANDBOX_KEY, SandboxProcess, engagement_body

MakeSandboxProcess = Callable[..., SandboxProcess]
OPTIONS = (
    "--host",
    "--port",
    "--db",
    "--key",
    "--media-check",
    "--seed",
    "--processing-seconds",
    "--latency-ms",
    "--rate-limit",
    "--fail-rate",
    "--drop-after-commit-rate",
    "--outage",
)


def client_for(server: SandboxProcess, key: str | None = None) -> httpx.Client:
    """A client for this sandbox sending its key (or the one given)."""
    headers = {"Authorization": f"Bearer {key or server.api_key}"}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=10)


def test_help_mentions_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "importer", "sandbox", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in OPTIONS:
        assert option in result.stdout


def test_prints_address_and_generated_key(make_sandbox_process: MakeSandboxProcess) -> None:
    server = make_sandbox_process(key=None)
    assert server.output[0] == f"Sandbox listening on {server.base_url}"
    assert re.fullmatch(r"sk-apik_sandbox\.[0-9a-f]{24}", server.api_key)
    with client_for(server) as client:
        assert client.post("/v2/engagements", json=engagement_body()).status_code == 201


def test_port_zero_prints_the_real_port(make_sandbox_process: MakeSandboxProcess) -> None:
    server = make_sandbox_process(port=0)
    match = re.fullmatch(r"Sandbox listening on http://127\.0\.0\.1:(\d+)", server.output[0])
    assert match and int(match.group(1)) > 0
    with httpx.Client() as client:
        assert client.get(f"http://127.0.0.1:{match.group(1)}/_sandbox/stats").status_code == 200


def test_sigterm_stops_cleanly(make_sandbox_process: MakeSandboxProcess) -> None:
    server = make_sandbox_process()
    assert server.stop() == 0
    assert "Traceback" not in server.server_log()


def test_key_scopes_from_the_command_line(make_sandbox_process: MakeSandboxProcess) -> None:
    server = make_sandbox_process(key="sk-apik_ro.KEY:engagements:read")
    with client_for(server, "sk-apik_ro.KEY") as client:
        assert client.get("/v2/engagements").status_code == 200
        denied = client.post("/v2/engagements", json=engagement_body())
    assert denied.status_code == 403
    assert "engagements:write" in denied.json()["detail"]


def test_faults_from_the_command_line(make_sandbox_process: MakeSandboxProcess) -> None:
    failing = make_sandbox_process("--fail-rate", "1", "--seed", "7")
    with client_for(failing) as client:
        assert client.post("/v2/engagements", json=engagement_body()).status_code == 500
    down = make_sandbox_process("--outage", "0:30")
    with client_for(down) as client:
        assert client.get("/v2/engagements").status_code == 503


@pytest.mark.parametrize("stop", [SandboxProcess.stop, SandboxProcess.kill], ids=["term", "kill"])
def test_db_keeps_engagements_across_restarts(
    make_sandbox_process: MakeSandboxProcess,
    tmp_path: Path,
    stop: Callable[[SandboxProcess], object],
) -> None:
    server = make_sandbox_process(db_path=tmp_path / "sandbox.db")
    body = engagement_body()
    with client_for(server) as client:
        created = client.post("/v2/engagements", json=body).json()
        client.put(f"/v2/engagements/{created['id']}/contacts", json={"contact_ids": ["cnt_a"]})
    stop(server)
    server.start()
    with client_for(server) as client:
        got = client.get(f"/v2/engagements/{created['id']}", params={"expand": "contacts"})
        assert got.status_code == 200
        assert got.json()["contacts"] == [{"id": "cnt_a"}]
        again = client.post("/v2/engagements", json={**body, "title": "changed"})
        assert again.status_code == 200
        assert again.json()["id"] == created["id"]
        assert again.json()["title"] == created["title"]
        newer = client.post("/v2/engagements", json=engagement_body()).json()["id"]
        page = client.get("/v2/engagements").json()
    assert [item["id"] for item in page["data"]] == [created["id"], newer]
    assert [e["id"] for e in server.engagements()] == [created["id"], newer]


def test_without_db_a_restart_forgets(make_sandbox_process: MakeSandboxProcess) -> None:
    server = make_sandbox_process()
    with client_for(server) as client:
        client.post("/v2/engagements", json=engagement_body())
    server.restart()
    assert server.engagements() == []


def test_session_sandbox_uses_the_default_key(sandbox: SandboxProcess, api_key: str) -> None:
    assert api_key == SANDBOX_KEY == sandbox.api_key
    assert sandbox.base_url.startswith("http://127.0.0.1:")
