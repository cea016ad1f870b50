"""The sender with answers the sandbox cannot give (a Retry-After of minutes, a bad 2xx body).

These use httpx.MockTransport on purpose: the rare case a real server does not produce.
Sleeping is patched out and every wait is recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from importer.errors import ServerUnavailable
from importer.events import JsonReporter
from importer.ledger import Ledger
from importer.rows.hashes import field_hashes, payload_hash
from importer.send.sender import Sender, SendOutcome, WorkItem
from importer.settings import RetrySettings, SendSettings
from importer.targets.askelephant import AskElephantTarget
from tests.factories import ledger_rows

PAYLOAD = {
    "type": "CALL",
    "title": "t",
    "source_system": "crm",
    "external_id": "crm:1",
    "media_url": "https://media.example.com/1.mp3",
    "run_workflows": False,
}
ENGAGEMENT = {"id": "ngmt_abc123", "title": "t"}


def work_item(n: int) -> WorkItem:
    """Row ``n``: external_id ``crm:n``."""
    payload = {**PAYLOAD, "external_id": f"crm:{n}"}
    return WorkItem(
        external_id=f"crm:{n}",
        manifest="m.csv",
        row_number=n + 2,
        payload=payload,
        payload_hash=payload_hash(payload),
        field_hashes=field_hashes(payload),
        cells={"id": str(n)},
    )


async def send_rows(sender: Sender, count: int) -> SendOutcome:
    """Rows 0 to ``count - 1`` through the sender, as the pipeline hands them over."""
    sender.start()
    try:
        for n in range(count):
            if not await sender.put(work_item(n)):
                break
    finally:
        outcome = await sender.finish()
    return outcome


def send_many(
    tmp_path: Path,
    answer: Callable[[httpx.Request, int], httpx.Response],
    count: int = 1,
    max_attempts: int = 4,
) -> tuple[list[dict[str, object]], list[float], int]:
    """Send ``count`` rows through ``answer(request, call number)``; ledger rows, waits, calls."""
    calls = 0
    waits: list[float] = []
    now = [0.0]  # the fake clock, moved only by the fake sleep

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return answer(request, calls)

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    async def main() -> None:
        target = AskElephantTarget(
            "http://127.0.0.1:9", "sk-apik_x.Y", transport=httpx.MockTransport(handler)
        )
        ledger = Ledger(tmp_path / "l.db")
        settings = SendSettings(concurrency=1, retry=RetrySettings(max_attempts=max_attempts))
        sender = Sender(
            target, ledger, 1, settings, JsonReporter(), sleep=fake_sleep, clock=lambda: now[0]
        )
        await asyncio.wait_for(send_rows(sender, count), 10)
        await target.aclose()
        ledger.close()

    asyncio.run(main())
    return ledger_rows(tmp_path / "l.db", "1 ORDER BY manifest, row_number"), waits, calls


def send_with(
    tmp_path: Path, answer: Callable[[int], httpx.Response], max_attempts: int = 4
) -> tuple[dict[str, object], list[float], int]:
    """Send one row through answers given by attempt number; the ledger row, waits, calls."""
    rows, waits, calls = send_many(tmp_path, lambda _, n: answer(n), max_attempts=max_attempts)
    return rows[0], waits, calls


def too_many(retry_after: str) -> httpx.Response:
    return httpx.Response(
        429, headers={"Retry-After": retry_after}, json={"status": 429, "detail": "slow down"}
    )


def test_retry_after_past_the_cap_leaves_the_row_for_a_later_run(tmp_path: Path) -> None:
    row, waits, calls = send_with(tmp_path, lambda n: too_many("600"))

    assert calls == 1
    assert not any(w >= 600 for w in waits)
    assert row["status"] == "failed" and row["transient"] == 1
    assert "past the 120s cap" in str(row["error_message"])


def test_rate_limited_until_attempts_run_out_says_so(tmp_path: Path) -> None:
    row, waits, calls = send_with(tmp_path, lambda n: too_many("3"), max_attempts=3)

    assert calls == 3
    assert len(waits) >= 2 and all(w >= 3 for w in waits)  # Retry-After honoured each time
    assert row["status"] == "failed" and row["transient"] == 1
    assert "still rate limited after 3 attempts" in str(row["error_message"])


def test_retry_after_as_http_date_is_honoured(tmp_path: Path) -> None:
    answers = [too_many("Wed, 21 Oct 2099 07:28:00 GMT"), httpx.Response(201, json=ENGAGEMENT)]
    row, _, calls = send_with(tmp_path, lambda n: answers[n - 1])

    # An HTTP date far away is past the cap: the row is left for later, not slept on.
    assert calls == 1 and row["status"] == "failed" and row["transient"] == 1


def test_a_2xx_that_is_not_an_engagement_is_retried(tmp_path: Path) -> None:
    answers = [
        httpx.Response(200, text="<html>proxy error</html>"),
        httpx.Response(201, json={"unexpected": True}),
        httpx.Response(201, content=json.dumps(ENGAGEMENT).encode()),
    ]
    row, _, calls = send_with(tmp_path, lambda n: answers[n - 1])

    assert calls == 3
    assert row["status"] == "created" and row["engagement_id"] == "ngmt_abc123"
    assert row["attempts"] == 3


def test_a_tls_failure_says_what_may_be_wrong(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number")

    async def main() -> str:
        target = AskElephantTarget(
            "https://127.0.0.1:9", "sk-apik_x.SECRET", transport=httpx.MockTransport(refuse)
        )
        try:
            await target.create(PAYLOAD)
        except ServerUnavailable as error:
            return str(error)
        finally:
            await target.aclose()
        return ""

    message = asyncio.run(main())

    assert "WRONG_VERSION_NUMBER" in message and "plain http" in message
    assert "SECRET" not in message


def test_one_extreme_retry_after_does_not_stall_the_other_rows(tmp_path: Path) -> None:
    def answer(request: httpx.Request, call: int) -> httpx.Response:
        external_id = json.loads(request.content)["external_id"]
        if call == 1:
            return too_many("86400")
        return httpx.Response(201, json={"id": "ngmt_" + external_id[4:] + "x"})

    rows, waits, _ = send_many(tmp_path, answer, count=3, max_attempts=6)

    assert waits == []  # a 429 delays only its own row: the others did not wait at all
    statuses = {r["external_id"]: r["status"] for r in rows}
    assert statuses == {"crm:0": "failed", "crm:1": "created", "crm:2": "created"}


def test_an_unexpected_error_in_a_worker_stops_the_run_instead_of_hanging(
    tmp_path: Path,
) -> None:
    class Broken:
        base_url = "http://127.0.0.1:9"
        pace_key = None

        async def create(self, payload: dict[str, object]) -> object:
            raise RuntimeError("bug")

        async def aclose(self) -> None:
            pass

    async def main() -> None:
        ledger = Ledger(tmp_path / "l.db")
        sender = Sender(Broken(), ledger, 1, SendSettings(concurrency=2), JsonReporter())  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(send_rows(sender, 50), 10)
        finally:
            ledger.close()

    with pytest.raises(RuntimeError, match="bug"):
        asyncio.run(main())


def test_an_unreadable_body_is_a_transient_error_not_a_crash(tmp_path: Path) -> None:
    answers = [
        httpx.Response(
            201, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip")
        ),
        httpx.Response(201, json=ENGAGEMENT),
    ]
    row, _, calls = send_with(tmp_path, lambda n: answers[n - 1])

    assert calls == 2 and row["status"] == "created"
