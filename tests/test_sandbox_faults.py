"""Bad days on demand: latency, 429, 500, lost answers, outages, and the create race."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from importer.sandbox.faults import FaultState, TokenBucket
from importer.sandbox.settings import Faults
from tests.conftest import SANDBOX_KEY, SandboxProcess, engagement_body

AUTH = {"Authorization": f"Bearer {SANDBOX_KEY}"}


def timed_create(client: httpx.Client) -> float:
    """Seconds one successful create takes."""
    started = time.perf_counter()
    assert client.post("/v2/engagements", json=engagement_body()).status_code == 201
    return time.perf_counter() - started


def test_latency_delays_creates(sandbox: SandboxProcess, sandbox_client: httpx.Client) -> None:
    quick = timed_create(sandbox_client)
    sandbox.set_faults(latency_ms=400)
    slow = timed_create(sandbox_client)
    assert slow >= 0.19  # 400 ms with -50% jitter at worst
    assert slow > quick


def test_rate_limit_answers_429_with_retry_after(
    sandbox: SandboxProcess, sandbox_client: httpx.Client
) -> None:
    sandbox.set_faults(rate_limit=2)
    responses = [sandbox_client.get("/v2/engagements") for _ in range(8)]
    limited = [r for r in responses if r.status_code == 429]
    assert limited and responses[0].status_code == 200
    for response in limited:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert int(response.headers["retry-after"]) >= 1
    assert sandbox.stats()["requests"]["GET /v2/engagements"]["429"] == len(limited)


def test_rate_limit_is_per_key(sandbox: SandboxProcess, sandbox_client: httpx.Client) -> None:
    sandbox.add_key("sk-apik_other.KEY", ["engagements:read"])
    sandbox.set_faults(rate_limit=1)
    assert sandbox_client.get("/v2/engagements").status_code == 200
    assert sandbox_client.get("/v2/engagements").status_code == 429
    other = {"Authorization": "Bearer sk-apik_other.KEY"}
    assert sandbox_client.get("/v2/engagements", headers=other).status_code == 200


def test_fail_rate_answers_500_and_stores_nothing(
    sandbox: SandboxProcess, sandbox_client: httpx.Client
) -> None:
    sandbox.set_faults(fail_rate=1.0)
    body = engagement_body()
    response = sandbox_client.post("/v2/engagements", json=body)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["x-api-version"]
    assert sandbox.engagements() == []
    sandbox.set_faults(fail_rate=0.0)
    assert sandbox_client.post("/v2/engagements", json=body).status_code == 201


def test_drop_after_commit_closes_the_connection_but_stores(
    sandbox: SandboxProcess, sandbox_client: httpx.Client
) -> None:
    sandbox.set_faults(drop_after_commit_rate=1.0)
    body = engagement_body()
    with pytest.raises(httpx.TransportError):
        sandbox_client.post("/v2/engagements", json=body)
    assert [e["external_id"] for e in sandbox.engagements()] == [body["external_id"]]
    # The retry learns the truth: the engagement exists.
    retry = sandbox_client.post("/v2/engagements", json=body)
    assert retry.status_code == 200
    stats = sandbox.stats()
    assert stats["requests"]["POST /v2/engagements"] == {"dropped": 1, "200": 1}
    assert stats["created"] == {body["external_id"]: 1}
    # The server itself is fine: no 500 logged for the dropped answer.
    assert "Exception" not in sandbox.stderr_text()


def test_outage_answers_503_for_its_window(
    sandbox: SandboxProcess, sandbox_client: httpx.Client
) -> None:
    sandbox.set_faults(outage_start=0, outage_seconds=0.6)
    started = time.monotonic()
    during = sandbox_client.get("/v2/engagements")
    assert during.status_code == 503
    assert during.headers["x-api-version"]
    assert int(during.headers.get("retry-after", "1")) <= 5
    assert sandbox_client.post("/v2/engagements", json=engagement_body()).status_code == 503
    assert sandbox.stats()["requests"]["GET /v2/engagements"] == {"503": 1}  # admin still up
    time.sleep(max(0.0, started + 0.7 - time.monotonic()))
    assert sandbox_client.get("/v2/engagements").status_code == 200


def test_outage_can_start_later(sandbox: SandboxProcess, sandbox_client: httpx.Client) -> None:
    sandbox.set_faults(outage_start=0.3, outage_seconds=10)
    assert sandbox_client.get("/v2/engagements").status_code == 200
    time.sleep(0.4)
    assert sandbox_client.get("/v2/engagements").status_code == 503


def test_bad_fault_settings_answer_422(sandbox: SandboxProcess) -> None:
    with httpx.Client(base_url=sandbox.base_url) as client:
        response = client.post("/_sandbox/faults", json={"fail_rate": 2, "nonsense": 1})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"fail_rate", "nonsense"}


def test_reset_clears_faults_and_engagements(
    sandbox: SandboxProcess, sandbox_client: httpx.Client
) -> None:
    sandbox_client.post("/v2/engagements", json=engagement_body())
    sandbox.set_faults(fail_rate=1.0, latency_ms=50)
    sandbox.reset()
    assert sandbox.set_faults() == {
        "latency_ms": 0,
        "rate_limit": None,
        "fail_rate": 0.0,
        "drop_after_commit_rate": 0.0,
        "outage_start": None,
        "outage_seconds": 0.0,
    }
    assert sandbox.stats() == {"requests": {}, "engagements": 0, "created": {}, "hits": {}}


# -- the create race --------------------------------------------------------------------


async def _create_many(base_url: str, body: dict[str, object], count: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=10) as client:
        responses = await asyncio.gather(
            *(client.post("/v2/engagements", json=body) for _ in range(count))
        )
    return [r.status_code for r in responses]


def test_concurrent_creates_of_one_external_id_make_one_engagement(
    sandbox: SandboxProcess,
) -> None:
    sandbox.set_faults(latency_ms=300)
    body = engagement_body()
    statuses = asyncio.run(_create_many(sandbox.base_url, body, 20))
    assert statuses.count(201) == 1
    assert set(statuses) <= {200, 201, 409}
    stats = sandbox.stats()
    assert stats["engagements"] == 1
    assert stats["created"] == {body["external_id"]: 1}


def test_create_while_the_first_is_in_flight_answers_409(
    sandbox: SandboxProcess, sandbox_client: httpx.Client
) -> None:
    sandbox.set_faults(latency_ms=800)
    body = engagement_body()
    first: list[int] = []
    thread = threading.Thread(
        target=lambda: first.append(sandbox_client.post("/v2/engagements", json=body).status_code)
    )
    thread.start()
    time.sleep(0.2)
    with httpx.Client(base_url=sandbox.base_url, headers=AUTH) as other:
        second = other.post("/v2/engagements", json=body)
    thread.join()
    assert second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")
    assert first == [201]
    with httpx.Client(base_url=sandbox.base_url, headers=AUTH) as other:
        assert other.post("/v2/engagements", json=body).status_code == 200


# -- the decisions themselves, without a server -----------------------------------------


def test_seeded_faults_repeat_exactly() -> None:
    faults = Faults(latency_ms=100, fail_rate=0.3, drop_after_commit_rate=0.3)
    runs = [FaultState(faults, seed=42) for _ in range(2)]
    plans = [[state.plan_create() for _ in range(50)] for state in runs]
    assert plans[0] == plans[1]
    assert any(p.fail for p in plans[0]) and not all(p.fail for p in plans[0])
    assert all(0.05 <= p.latency_seconds <= 0.15 for p in plans[0])


def test_token_bucket_allows_the_rate_then_says_how_long_to_wait() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2, clock=lambda: now[0])
    assert [bucket.take("k") for _ in range(3)] == [None, None, 1]
    assert bucket.take("other") is None
    now[0] = 0.5
    assert bucket.take("k") is None
    slow = TokenBucket(rate=0.1, clock=lambda: now[0])
    assert slow.take("k") is None
    assert slow.take("k") == 10


def test_outage_window_counts_from_the_update() -> None:
    now = [100.0]
    state = FaultState(Faults(), seed=None, clock=lambda: now[0])
    assert not state.outage_active()
    now[0] = 200.0
    state.update({"outage_start": 5, "outage_seconds": 10})
    assert not state.outage_active()
    now[0] = 206.0
    assert state.outage_active()
    now[0] = 215.5
    assert not state.outage_active()
