"""classify and parse_retry_after: each HTTP answer becomes the right error type."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from importer.errors import (
    FatalError,
    PermanentError,
    RateLimited,
    ServerUnavailable,
    TransientError,
)
from importer.targets.http import classify, parse_problem, parse_retry_after

NOW = dt.datetime(2024, 3, 5, 14, 30, 0, tzinfo=dt.timezone.utc)


def problem(status: int, **extra: Any) -> bytes:
    body = {"type": "about:blank", "title": "Problem", "status": status, "request_id": "req_1"}
    body.update(extra)
    return json.dumps(body).encode()


@pytest.mark.parametrize("status", [200, 201])
def test_a_good_engagement_body_is_no_error(status: int) -> None:
    body = json.dumps({"id": "ngmt_abc123", "object": "engagement"}).encode()
    assert classify(status, {}, body, operation="create") is None


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"id": 5}', b'{"id": "eng_1"}', b'{"id": "ngmt_"}', b"{}"],
)
@pytest.mark.parametrize("status", [200, 201])
def test_a_success_status_without_an_engagement_is_transient(status: int, body: bytes) -> None:
    error = classify(status, {}, body, operation="create")
    assert type(error) is TransientError
    assert error.status == status


def test_an_id_with_a_trailing_newline_is_not_an_engagement_id() -> None:
    body = json.dumps({"id": "ngmt_abc\n"}).encode()
    assert isinstance(classify(201, {}, body, operation="create"), TransientError)


@pytest.mark.parametrize("status", [400, 422])
def test_validation_failures_are_permanent_with_field_errors(status: int) -> None:
    errors = [
        {"field": "media_url", "code": "private_address", "message": "is private"},
        "not an object",
    ]
    body = problem(status, detail="Validation failed", errors=errors)
    error = classify(status, {}, body, operation="create")
    assert type(error) is PermanentError
    assert error.status == status
    assert error.detail == "Validation failed"
    assert error.field_errors == [errors[0]]
    assert error.request_id == "req_1"
    assert "media_url: is private" in error.describe()


def test_401_is_fatal() -> None:
    error = classify(401, {}, problem(401, detail="unknown key"), operation="create")
    assert type(error) is FatalError
    assert "API key" in str(error) and "unknown key" in str(error)


@pytest.mark.parametrize(
    ("operation", "scope"),
    [("create", "engagements:write"), ("get", "engagements:read")],
)
def test_403_is_fatal_and_names_the_scope(operation: str, scope: str) -> None:
    error = classify(403, {}, problem(403), operation=operation, scope=scope)
    assert type(error) is FatalError
    assert scope in str(error)


def test_404_on_create_is_fatal_but_on_get_permanent() -> None:
    fatal = classify(404, {}, problem(404), operation="create")
    assert type(fatal) is FatalError
    assert "--base-url" in str(fatal)
    missing = classify(404, {}, problem(404), operation="get", scope="engagements:read")
    assert type(missing) is PermanentError


def test_409_is_transient() -> None:
    error = classify(409, {}, problem(409), operation="create")
    assert type(error) is TransientError
    assert not isinstance(error, PermanentError)


def test_429_with_retry_after_seconds() -> None:
    error = classify(429, {"retry-after": "7"}, problem(429), operation="create")
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0


def test_429_with_an_http_date() -> None:
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=90)
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    error = classify(429, {"retry-after": header}, b"", operation="create")
    assert isinstance(error, RateLimited)
    assert error.retry_after is not None and 80 <= error.retry_after <= 90


def test_429_without_retry_after() -> None:
    error = classify(429, {}, b"", operation="create")
    assert isinstance(error, RateLimited) and error.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_unavailable(status: int) -> None:
    error = classify(status, {"x-request-id": "req_h"}, b"<html>oops</html>", operation="create")
    assert type(error) is ServerUnavailable
    assert isinstance(error, TransientError)
    assert error.request_id == "req_h"


def test_replace_contacts_with_an_empty_body_is_fine() -> None:
    assert classify(200, {}, b"", operation="replace_contacts") is None
    assert classify(204, {}, b"", operation="create") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("garbage", None),
        ("Tue, 99 Foo 2024 25:61:00 GMT", None),
        ("Tue, 05 Mar 2024 14:31:00 GMT", 60.0),
        ("Tue, 05 Mar 2024 14:29:00 GMT", 0.0),
        ("Mon, 01 Jan 1990 00:00:00 GMT", 0.0),
        ("Tue, 05 Mar 2024 14:30:30 -0000", 30.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


@pytest.mark.parametrize("body", [b"", b"\xff\xfe", b"[1, 2]", b"null", b"{bad"])
def test_parse_problem_tolerates_any_body(body: bytes) -> None:
    assert parse_problem(body) == {}
