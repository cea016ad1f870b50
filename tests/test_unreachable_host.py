"""A host that does not resolve or refuses connections: a clear error before any create has
left (exit 3, naming the host), and rows whose request never left stay ``pending``.

DNS failures come from an injected transport raising what httpx raises for them; refused
connections from a closed port on 127.0.0.1. Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx

from importer.errors import HostUnreachable
from importer.events import JsonReporter
from importer.ledger import Ledger
from importer.send.sender import Sender
from importer.settings import RetrySettings, SendSettings
from importer.targets.askelephant import AskElephantTarget
from tests.factories import ledger_rows, row, run_cli, status_counts, write_manifest
from tests.test_send import send_rows

NO_SUCH_NAME = "[Errno -2] Name or service not known"


def send_through(tmp_path: Path, handler: httpx.MockTransport, count: int) -> Sender:
    """Send ``count`` rows through ``handler`` on a fake clock; the sender, finished."""
    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    async def main() -> Sender:
        target = AskElephantTarget(
            "https://crm-import.example.com", "sk-apik_x.Y", transport=handler
        )
        ledger = Ledger(tmp_path / "l.db")
        settings = SendSettings(concurrency=1, retry=RetrySettings(max_attempts=3))
        sender = Sender(
            target, ledger, 1, settings, JsonReporter(), sleep=fake_sleep, clock=lambda: now[0]
        )
        await asyncio.wait_for(send_rows(sender, count), 10)
        await target.aclose()
        ledger.close()
        return sender

    return asyncio.run(main())


def test_a_name_that_does_not_resolve_before_any_create_is_a_clear_error(tmp_path: Path) -> None:
    def no_such_name(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(NO_SUCH_NAME)

    sender = send_through(tmp_path, httpx.MockTransport(no_such_name), count=3)

    fatal = sender.outcome.fatal
    assert isinstance(fatal, HostUnreachable) and fatal.exit_code == 3
    assert str(fatal).startswith(
        "cannot reach crm-import.example.com: connection failed (ConnectError: "
        f"{NO_SUCH_NAME}; the host name does not resolve (a typo in the URL, or no network?)); "
        "no create was sent"
    )
    assert sender.outcome.aborted is None  # not an outage ridden out
    assert {r["status"] for r in ledger_rows(tmp_path / "l.db")} <= {"pending"}


def test_rows_whose_request_never_left_are_pending_not_in_flight(tmp_path: Path) -> None:
    # The first create lands; then the network goes (DNS with it) and stays gone.
    calls = 0

    def then_offline(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(201, json={"id": "ngmt_first"})
        raise httpx.ConnectError(NO_SUCH_NAME)

    sender = send_through(tmp_path, httpx.MockTransport(then_offline), count=10)

    assert sender.outcome.aborted is not None  # an outage after creates left: ridden out
    statuses = {r["external_id"]: r["status"] for r in ledger_rows(tmp_path / "l.db")}
    assert statuses["crm:0"] == "created"
    assert "in_flight" not in statuses.values(), statuses


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_stops_a_run_at_once_naming_the_host(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])
    ledger = tmp_path / "l.db"
    base_url = f"http://127.0.0.1:{closed_port()}"

    result = run_cli(
        ["run", str(manifest), "--ledger", str(ledger), "--base-url", base_url, "--no-progress"],
        "sk-apik_x.Y",
    )

    assert result.exit_code == 3, result.output
    assert "cannot reach 127.0.0.1: connection failed (ConnectError" in result.stderr
    assert f"Check the base URL ({base_url})" in result.stderr
    assert "outage" not in result.output
    assert "in_flight" not in status_counts(ledger)
