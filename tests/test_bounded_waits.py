"""Bounded waits (issue 20): a rate window resetting years away, a silent server at the
default settings, and one row that always fails in a manifest of two.

A raw hostile server where the point is what a real server sends; ``httpx.MockTransport``
with a fake clock where the point is time (a 300 s read timeout is never waited for).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from importer.events import JsonReporter
from importer.ledger import Ledger
from importer.send.pacing import Answer, OutageGuard
from importer.send.sender import Sender, SendOutcome
from importer.settings import PacingSettings, SendSettings
from importer.targets.askelephant import AskElephantTarget
from importer.targets.http import build_timeout
from tests.factories import ledger_rows, row, run_cli, write_manifest
from tests.hostile_server import HostileServer, Request, engagement, respond
from tests.test_send import ENGAGEMENT, send_rows

KEY = "sk-apik_hostile.WAITS-1234"
YEARS = 10 * 365 * 24 * 3600


# -- a rate window that resets years from now ---------------------------------------------------


@pytest.mark.timeout(60)  # before the fix, the run slept until the reset
def test_a_rate_window_resetting_years_away_stops_the_run_with_rows_pending(
    tmp_path: Path,
) -> None:
    def exhausted(request: Request, out: BinaryIO) -> None:
        headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + YEARS)}
        respond(out, 201, engagement(request, f"ngmt_w{len(server.requests)}"), headers)

    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1, 6)])
    ledger = tmp_path / "l.db"
    with HostileServer(exhausted) as server:
        args = ["run", str(manifest), "--ledger", str(ledger), "--base-url", server.base_url]
        result = run_cli([*args, "--no-progress", "--concurrency", "1"], api_key=KEY)

    assert result.exit_code == 3, result.output
    assert "past the 120 s the importer waits" in result.output
    statuses = sorted(r["status"] for r in ledger_rows(ledger))
    assert statuses == ["created", "pending", "pending", "pending", "pending"]


# -- a silent server at the default read timeout ------------------------------------------------


def send_through(
    tmp_path: Path,
    answer: Callable[[httpx.Request, list[float]], httpx.Response],
    rows: int,
    settings: SendSettings,
) -> tuple[SendOutcome, float, int]:
    """Send ``rows`` rows; ``answer`` may move the fake clock. The outcome, fake seconds, calls."""
    now = [0.0]
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return answer(request, now)

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    async def main() -> SendOutcome:
        target = AskElephantTarget(
            "http://127.0.0.1:9",
            "sk-apik_x.Y",
            timeout=build_timeout(),  # the default read timeout
            transport=httpx.MockTransport(handler),
        )
        ledger = Ledger(tmp_path / "l.db")
        sender = Sender(
            target, ledger, 1, settings, JsonReporter(), sleep=fake_sleep, clock=lambda: now[0]
        )
        try:
            return await asyncio.wait_for(send_rows(sender, rows), 30)
        finally:
            await target.aclose()
            ledger.close()

    outcome = asyncio.run(main())
    return outcome, now[0], calls


def test_a_silent_server_at_the_default_settings_ends_the_run_within_minutes(
    tmp_path: Path,
) -> None:
    def silent(request: httpx.Request, now: list[float]) -> httpx.Response:
        now[0] += build_timeout().read or 0  # the whole read timeout passes, then nothing
        raise httpx.ReadTimeout("timed out", request=request)

    # One request at a time: the mock answers in turn, so the fake clock is exact.
    outcome, seconds, calls = send_through(tmp_path, silent, 3, SendSettings(concurrency=1))

    assert outcome.aborted is not None  # exit 3, not rows failed one by one
    assert "gave no answer at all" in str(outcome.aborted)
    assert calls == 2 and seconds < 2 * 300 + 60  # 10 minutes, not 6 x 300 s per row
    assert {r["status"] for r in ledger_rows(tmp_path / "l.db")} <= {"in_flight", "pending"}


def test_one_slow_answer_is_not_a_silent_server(tmp_path: Path) -> None:
    def slow_once(request: httpx.Request, now: list[float]) -> httpx.Response:
        if b'"crm:0"' in request.content and now[0] == 0:
            now[0] += 300
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(
            201, json=ENGAGEMENT | {"id": f"ngmt_{request.content[-40:].hex()[:8]}"}
        )

    outcome, _, _ = send_through(tmp_path, slow_once, 3, SendSettings(concurrency=1))

    assert outcome.aborted is None and outcome.fatal is None


# -- one row that always fails, in a manifest of two ------------------------------------------


def test_one_row_always_answered_500_in_a_manifest_of_two_fails_alone(tmp_path: Path) -> None:
    def refuse_row_1(request: httpx.Request, now: list[float]) -> httpx.Response:
        if b'"crm:1"' in request.content:
            return httpx.Response(500, json={"detail": "internal error"})
        return httpx.Response(201, json=ENGAGEMENT)

    outcome, _, calls = send_through(tmp_path, refuse_row_1, 2, SendSettings(concurrency=1))

    assert outcome.aborted is None, outcome.aborted  # not judged an outage
    by_id = {r["external_id"]: r for r in ledger_rows(tmp_path / "l.db")}
    assert by_id["crm:0"]["status"] == "created"
    assert (by_id["crm:1"]["status"], by_id["crm:1"]["transient"]) == ("failed", 1)
    assert by_id["crm:1"]["attempts"] == 6 and calls == 7


def test_the_outage_guard_counts_a_rows_retries_once() -> None:
    guard = OutageGuard(PacingSettings())
    guard.answered_with(0.0, 0.0, Answer.ACCEPTED, False, "a")
    for n in range(8):
        guard.answered_with(n + 0.5, n + 0.4, Answer.FAILED, False, "b")
    assert not guard.is_open
    for whose in "cdef":
        guard.answered_with(9.0, 8.9, Answer.FAILED, False, whose)
    assert guard.is_open  # five rows failing: an outage


def test_two_timeouts_after_the_outage_budget_of_silence_give_up() -> None:
    guard = OutageGuard(PacingSettings(outage_budget=31.0))
    guard.sent(0.0)
    guard.timed_out(300.0)
    assert not guard.gave_up  # one slow answer
    guard.heard(301.0)
    guard.timed_out(601.0)
    assert not guard.gave_up  # heard in between
    guard.timed_out(602.0)
    assert guard.gave_up
