"""The DevRev target's pure parts: error mapping, rate-limit headers, the pacing window."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from importer.errors import (
    FatalError,
    IntegrityProblem,
    ListingUnbounded,
    PermanentError,
    RateLimited,
    ServerUnavailable,
    TransientError,
)
from importer.settings import RetrySettings, SendSettings
from importer.targets.devrev import DevRevTarget, classify
from importer.targets.http import reset_seconds
from tests.devrev_support import import_devrev, write_devrev_manifest


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def test_good_answers_are_accepted_per_operation() -> None:
    created = body({"engagement": {"id": "don:core:dvrv-us-1:devo/1:engagement/1"}})
    assert classify(201, {}, created, operation="create") is None
    assert classify(200, {}, body({"engagements": []}), operation="list") is None
    assert classify(200, {}, body({"engagements": []}), operation="create") is not None
    assert classify(200, {}, body({"accounts": []}), operation="accounts") is None
    assert classify(200, {}, body({"engagements": []}), operation="accounts") is not None


def test_devrev_error_messages_are_kept() -> None:
    error = classify(
        400, {}, body({"type": "bad_request", "message": "title is empty"}), operation="create"
    )
    assert isinstance(error, PermanentError)
    assert str(error) == "HTTP 400: title is empty" and error.detail == "title is empty"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(status: int) -> None:
    assert isinstance(classify(status, {}, b"", operation="create"), ServerUnavailable)


def test_credentials_and_wrong_urls_stop_the_run() -> None:
    assert "DEVREV_API_KEY" in str(classify(401, {}, b"", operation="list"))
    assert isinstance(classify(403, {}, b"", operation="create"), FatalError)
    assert isinstance(classify(404, {}, b"", operation="create"), FatalError)
    assert isinstance(classify(404, {}, b"", operation="get"), PermanentError)


def test_429_honours_retry_after_then_the_reset_header() -> None:
    error = classify(429, {"retry-after": "7"}, b"", operation="create")
    assert isinstance(error, RateLimited) and error.retry_after == 7.0
    error = classify(429, {"x-ratelimit-reset": "12"}, b"", operation="list")
    assert isinstance(error, RateLimited) and error.retry_after == 12.0


def test_429_honours_devrevs_retry_after_in_the_body() -> None:
    refused = {"type": "too_many_requests", "message": "slow down", "retry_after": 9}
    error = classify(429, {}, body(refused), operation="create")
    assert isinstance(error, RateLimited) and error.retry_after == 9.0
    assert str(error) == "HTTP 429 rate limited: slow down"
    # The header, when both are there, is the one HTTP defines; the body beats the reset.
    error = classify(429, {"retry-after": "2"}, body(refused), operation="list")
    assert isinstance(error, RateLimited) and error.retry_after == 2.0
    error = classify(429, {"x-ratelimit-reset": "30"}, body(refused), operation="accounts")
    assert isinstance(error, RateLimited) and error.retry_after == 9.0
    for useless in ("soon", None, True, [3]):
        error = classify(429, {}, body({**refused, "retry_after": useless}), operation="list")
        assert isinstance(error, RateLimited) and error.retry_after is None


def test_reset_is_read_as_seconds_or_as_a_unix_time() -> None:
    assert reset_seconds("30", wall_now=1_700_000_000.0) == 30.0
    assert reset_seconds("1700000045", wall_now=1_700_000_000.0) == 45.0
    assert reset_seconds("1600000000", wall_now=1_700_000_000.0) == 0.0
    assert reset_seconds("soon", wall_now=0.0) is None


def test_a_create_answered_with_another_external_ref_is_an_integrity_problem() -> None:
    # The sandbox never answers for another ref; a mock transport plays the broken server.
    def answer(request: httpx.Request) -> httpx.Response:
        engagement = {"id": "don:core:e/1", "external_ref": "crm:other"}
        return httpx.Response(201, json={"engagement": engagement})

    target = DevRevTarget("https://api.devrev.ai", "token", transport=httpx.MockTransport(answer))

    async def create() -> None:
        try:
            await target.create({"external_ref": "crm:mine", "title": "t"})
        finally:
            await target.aclose()

    with pytest.raises(IntegrityProblem, match="'crm:other' for a create of 'crm:mine'"):
        asyncio.run(create())


MALFORMED_PAGES = [
    {"engagements": [], "next_cursor": {"page": 2}},
    {"engagements": [], "next_cursor": ["2"]},
    {"engagements": [{"id": "don:core:e/1", "external_ref": ["crm:1"]}], "next_cursor": None},
    {"engagements": [{"id": {"n": 1}, "external_ref": "crm:1"}]},
    {"engagements": ["crm:1"]},
]


@pytest.mark.parametrize("page", MALFORMED_PAGES)
def test_a_malformed_list_answer_is_a_bad_answer_not_a_crash(page: dict[str, object]) -> None:
    # The sandbox never answers these; a mock transport plays the broken server.
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=page))
    target = DevRevTarget("https://api.devrev.ai", "token", transport=transport)

    async def look() -> None:
        try:
            await target.lookup(["crm:1"])
        finally:
            await target.aclose()

    with pytest.raises(TransientError):
        asyncio.run(look())


def test_a_malformed_list_answer_stops_the_run_with_exit_3(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/engagements.get":
            return httpx.Response(404, json={"type": "not_found", "message": "no such id"})
        return httpx.Response(200, json=MALFORMED_PAGES[0])

    manifest = write_devrev_manifest(tmp_path / "calls.csv", 3)
    send = SendSettings(concurrency=1, retry=RetrySettings(max_attempts=1))
    transport = httpx.MockTransport(answer)
    summary = import_devrev(
        cast(Any, FakeSandbox()), manifest, tmp_path / "l.db", send=send, transport=transport
    )
    assert summary.exit_code == 3
    assert "next_cursor that is not text" in str(summary.stop_reason)


class FakeSandbox:
    base_url = "https://api.devrev.ai"


@pytest.mark.parametrize("kind", ["engagements", "accounts"])
def test_a_list_that_ignores_its_filter_is_not_paged_past_the_first_page(kind: str) -> None:
    # A server that hands out every engagement (or account) of the org, whatever was asked,
    # would be paged to the bound (200 pages) before the look-up gave up: it stops at once.
    requests: list[int] = []

    def whole_org(request: httpx.Request) -> httpx.Response:
        n = len(requests)
        requests.append(n)
        item = (
            {"id": f"don:core:e/{n}", "external_ref": f"crm:other-{n}"}
            if kind == "engagements"
            else {"id": f"don:core:a/{n}", "external_refs": [f"001OTHER{n}"]}
        )
        return httpx.Response(200, json={kind: [item], "next_cursor": f"c{n}"})

    target = DevRevTarget(
        "https://api.devrev.ai", "token", transport=httpx.MockTransport(whole_org)
    )

    async def look() -> None:
        try:
            if kind == "engagements":
                await target.lookup(["crm:1"])
            else:
                await target.find_references(["001ACME"])
        finally:
            await target.aclose()

    with pytest.raises(ListingUnbounded, match="not asked about"):
        asyncio.run(look())
    assert len(requests) == 1
