"""Reading API answers: which status means what, problem+json, Retry-After. Pure.

>>> classify(429, {"retry-after": "3"}, b"", operation="create").retry_after
3.0
>>> classify(201, {}, b'{"id": "ngmt_1"}', operation="create") is None
True
>>> parse_retry_after("NaN") is None, parse_retry_after("-1")
(True, 0.0)
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
from collections.abc import Mapping
from typing import Any

from importer import contract
from importer.errors import (
    ApiError,
    FatalError,
    PermanentError,
    RateLimited,
    ServerUnavailable,
    TransientError,
)

FATAL_ADVICE = {
    401: "the API key was refused: check --api-key-file or ASKELEPHANT_API_KEY",
    403: "the API key lacks the scope this needs",
    404: "the API answered 404 for the endpoint itself: check --base-url "
    "(it should end in /api, e.g. https://app.askelephant.ai/api)",
}


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:  # "NaN" and "inf" say nothing usable: as if there were no header
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    current = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - current).total_seconds())


def parse_problem(body: bytes) -> dict[str, Any]:
    """The problem+json fields of an error body; empty when the body is not JSON."""
    try:
        data = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}  # RecursionError: JSON nested deeper than Python's stack
    return data if isinstance(data, dict) else {}


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    operation: str,
    scope: str = contract.SCOPE_WRITE,
) -> ApiError | None:
    """None for a good answer, else the error that says what to do about it.

    ``operation`` is ``create``, ``get`` or ``replace_contacts``: a 404 means a wrong base
    URL on create, but only a missing engagement on get.
    """
    if 200 <= status < 300:
        if status == 204 or (operation == "replace_contacts" and not body):
            return None
        engagement = parse_problem(body)
        engagement_id = str(engagement.get("id", ""))
        too_long = len(engagement_id) > contract.ENGAGEMENT_ID_MAX
        if too_long or not contract.ENGAGEMENT_ID_PATTERN.match(engagement_id):
            return TransientError(f"HTTP {status} but the body is not an engagement", status=status)
        return None
    if status == 304:
        return None
    if 300 <= status < 400:
        return _redirect(status, headers)
    problem = parse_problem(body)
    detail = problem.get("detail") or problem.get("title") or problem.get("message")
    raw_errors = problem.get("errors")
    errors: list[Any] = raw_errors if isinstance(raw_errors, list) else []
    fields: dict[str, Any] = {
        "status": status,
        "detail": str(detail) if detail else None,
        "field_errors": [e for e in errors if isinstance(e, dict)],
        "request_id": _request_id(problem, headers),
    }
    said = f": {detail}" if detail else ""
    if status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return RateLimited(f"HTTP 429 rate limited{said}", retry_after=retry_after, **fields)
    if status in (500, 502, 503, 504):
        return ServerUnavailable(f"HTTP {status} server error{said}", **fields)
    if status == 409:
        return TransientError(f"HTTP 409 conflict: still being processed{said}", **fields)
    if status == 401:
        return FatalError(f"HTTP 401: {FATAL_ADVICE[401]}{said}", **fields)
    if status == 403:
        return FatalError(f"HTTP 403: the API key lacks the {scope} scope{said}", **fields)
    if status == 404 and operation == "create":
        return FatalError(f"HTTP 404: {FATAL_ADVICE[404]}{said}", **fields)
    if status in (400, 404, 422) or 400 <= status < 500:
        return PermanentError(f"HTTP {status}{said}", **fields)
    return ServerUnavailable(f"HTTP {status} unexpected answer{said}", **fields)


def _redirect(status: int, headers: Mapping[str, str]) -> FatalError:
    """A redirect is never followed (it could take the key elsewhere): the URL is wrong.

    Every answer would be the same, so the run stops at once, rows left pending.
    """
    location = headers.get("location")
    to = f" to {location[:200]}" if location else ""
    return FatalError(
        f"HTTP {status}: the API answered with a redirect{to}, which the importer does not "
        "follow (it could carry the API key elsewhere): check --base-url",
        status=status,
    )


def _request_id(problem: dict[str, Any], headers: Mapping[str, str]) -> str | None:
    value = problem.get("request_id") or headers.get("x-request-id")
    return str(value) if value else None
