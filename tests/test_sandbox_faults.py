"""Bad days on demand: latency, 429, 500, lost answers, outages, and the create race."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from importer.sandbox.faults import FaultState, TokenBucket
from importer.sandbox.settings import Faults
from tests.conftest import SANDBOX_KEY, Sandbox, engagement_body
from tests.sandbox_inprocess import InProcessSandbox

AUTH = {"Authorization": f"Bearer {SANDBOX_KEY}"}


def test_latency_delays_creates() -> None:
    async def scenario() -> list[float]:
        async with InProcessSandbox() as sandbox:
            quick = await sandbox.client.post("/v2/engagements", json=engagement_body())
            await sandbox.set_faults(latency_ms=400)
            slow = await sandbox.client.post("/v2/engagements", json=engagement_body())
            assert (quick.status_code, slow.status_code) == (201, 201)
            return sandbox.sleep.calls

    quick, slow = asyncio.run(scenario())
    assert quick == 0.0
    assert 0.2 <= slow <= 0.6  # 400 ms with +/-50% jitter


def test_rate_limit_answers_429_with_retry_after() -> None:
    async def scenario() -> tuple[list[httpx.Response], dict[str, Any]]:
        async with InProcessSandbox() as sandbox:
            await sandbox.set_faults(rate_limit=2)
            responses = [await sandbox.client.get("/v2/engagements") for _ in range(8)]
            sandbox.clock.advance(0.5)  # one more token
            responses.append(await sandbox.client.get("/v2/engagements"))
            return responses, await sandbox.stats()

    responses, stats = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200, 200] + [429] * 6 + [200]
    for response in responses[2:8]:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["retry-after"] == "1"
    assert stats["requests"]["GET /v2/engagements"] == {"200": 3, "429": 6}


def test_rate_limit_is_per_key() -> None:
    async def scenario() -> list[int]:
        async with InProcessSandbox() as sandbox:
            added = {"key": "sk-apik_other.KEY", "scopes": ["engagements:read"]}
            assert (await sandbox.client.post("/_sandbox/keys", json=added)).status_code == 200
            await sandbox.set_faults(rate_limit=1)
            statuses = [(await sandbox.client.get("/v2/engagements")).status_code for _ in "ab"]
            async with sandbox.new_client("sk-apik_other.KEY") as other:
                statuses.append((await other.get("/v2/engagements")).status_code)
            return statuses

    assert asyncio.run(scenario()) == [200, 429, 200]


def test_fail_rate_answers_500_and_stores_nothing(
    sandbox: Sandbox, sandbox_client: httpx.Client
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


def test_stray_429_rate_refuses_whatever_the_pace_and_stores_nothing(
    sandbox: Sandbox, sandbox_client: httpx.Client
) -> None:
    sandbox.set_faults(stray_429_rate=1.0)
    body = engagement_body()
    refused = sandbox_client.post("/v2/engagements", json=body)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert sandbox.engagements() == []
    sandbox.set_faults(stray_429_rate=0.0)
    assert sandbox_client.post("/v2/engagements", json=body).status_code == 201


def test_stray_429s_leave_the_seeded_draws_of_other_faults_alone() -> None:
    plain = FaultState(Faults(latency_ms=100, fail_rate=0.5), seed=3)
    stray = FaultState(Faults(latency_ms=100, fail_rate=0.5, stray_429_rate=0.0), seed=3)
    assert [plain.plan_create() for _ in range(20)] == [stray.plan_create() for _ in range(20)]
    some = FaultState(Faults(stray_429_rate=0.05), seed=3)
    refused = sum(some.plan_create().refuse for _ in range(4000))
    assert 140 <= refused <= 260  # about 5%


def test_drop_after_commit_closes_the_connection_but_stores(
    sandbox: Sandbox, sandbox_client: httpx.Client
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
    assert "Exception" not in sandbox.server_log()


def test_outage_answers_503_for_its_window() -> None:
    async def scenario() -> None:
        async with InProcessSandbox() as sandbox:
            await sandbox.set_faults(outage_start=0, outage_seconds=0.6)
            during = await sandbox.client.get("/v2/engagements")
            assert during.status_code == 503
            assert during.headers["content-type"].startswith("application/problem+json")
            assert during.headers["x-api-version"]
            assert int(during.headers.get("retry-after", "1")) <= 5
            create = await sandbox.client.post("/v2/engagements", json=engagement_body())
            assert create.status_code == 503
            stats = await sandbox.stats()  # admin still up
            assert stats["requests"]["GET /v2/engagements"] == {"503": 1}
            sandbox.clock.advance(0.59)
            assert (await sandbox.client.get("/v2/engagements")).status_code == 503
            sandbox.clock.advance(0.02)
            assert (await sandbox.client.get("/v2/engagements")).status_code == 200

    asyncio.run(scenario())


def test_outage_can_start_later() -> None:
    async def scenario() -> list[int]:
        async with InProcessSandbox() as sandbox:
            await sandbox.set_faults(outage_start=0.3, outage_seconds=10)
            statuses = [(await sandbox.client.get("/v2/engagements")).status_code]
            for step in (0.29, 0.02, 9.98, 0.02):
                sandbox.clock.advance(step)
                statuses.append((await sandbox.client.get("/v2/engagements")).status_code)
            return statuses

    assert asyncio.run(scenario()) == [200, 200, 503, 503, 200]


def test_bad_fault_settings_answer_422(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.base_url) as client:
        response = client.post("/_sandbox/faults", json={"fail_rate": 2, "nonsense": 1})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"fail_rate", "nonsense"}


def test_reset_clears_faults_and_engagements(
    sandbox: Sandbox, sandbox_client: httpx.Client
) -> None:
    sandbox_client.post("/v2/engagements", json=engagement_body())
    sandbox.set_faults(fail_rate=1.0, latency_ms=50)
    sandbox.reset()
    assert sandbox.set_faults() == {
        "latency_ms": 0,
        "rate_limit": None,
        "fail_rate": 0.0,
        "drop_after_commit_rate": 0.0,
        "stray_429_rate": 0.0,
        "outage_start": None,
        "outage_seconds": 0.0,
        "list_page_size": None,
        "list_delay_seconds": 0.0,
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
    sandbox: Sandbox,
) -> None:
    sandbox.set_faults(latency_ms=300)
    body = engagement_body()
    statuses = asyncio.run(_create_many(sandbox.base_url, body, 20))
    assert statuses.count(201) == 1
    assert set(statuses) <= {200, 201, 409}
    stats = sandbox.stats()
    assert stats["engagements"] == 1
    assert stats["created"] == {body["external_id"]: 1}


def test_create_while_the_first_is_in_flight_answers_409() -> None:
    async def scenario() -> None:
        async with InProcessSandbox() as sandbox:
            await sandbox.set_faults(latency_ms=800)
            body = engagement_body()
            sandbox.sleep.hold()
            first = asyncio.create_task(sandbox.client.post("/v2/engagements", json=body))
            await sandbox.sleep.entered()  # the first create is inside its media fetch
            async with sandbox.new_client() as other:
                # A create that did not see the claim would wait on the held sleep: time out.
                second = await asyncio.wait_for(other.post("/v2/engagements", json=body), 10)
            sandbox.sleep.release()
            assert second.status_code == 409
            assert second.headers["content-type"].startswith("application/problem+json")
            assert (await first).status_code == 201
            again = await sandbox.client.post("/v2/engagements", json=body)
            assert again.status_code == 200
            assert (await sandbox.stats())["created"] == {body["external_id"]: 1}

    asyncio.run(scenario())


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
