"""DevRev's engagements API as a ``Target``: create is not idempotent, so we look first.

DevRev documents no idempotency key for ``engagements.create``. Exactly-once therefore
comes from lookups by ``external_ref`` with ``engagements.list``:

- the pipeline looks up each batch before creating (``lookup``, many refs per call,
  following ``next_cursor`` until it is empty);
- a create whose outcome is unsure (timeout, dropped connection, ``5xx``) marks its
  ``external_ref``; the next create of that ref looks it up first, so a retry never sends
  blindly. Found once: it is the engagement (``found_by="lookup"``); found several
  times: ``RemoteDuplicate``, reported, never silently picked.

Rate limits: ``429`` honours ``Retry-After`` (else ``X-RateLimit-Reset``); every answer's
``X-RateLimit-Remaining``/``X-RateLimit-Reset`` is only reported (``on_rate_hint``): the
shared pacer (``importer.send.pacing``) slows down before the window is exhausted, not after.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from importer import defaults
from importer.errors import (
    ApiError,
    FatalError,
    IntegrityProblem,
    PermanentError,
    RateLimited,
    RemoteDuplicate,
    ServerUnavailable,
    TransientError,
)
from importer.send.pacing import reset_seconds
from importer.targets.askelephant import build_timeout, check_base_url
from importer.targets.base import CreateResult, GetResult, Lookup, RemoteEngagement
from importer.targets.http import (
    Answer,
    HintListener,
    open_client,
    pace_key,
    parse_problem,
    parse_retry_after,
    scrub_error,
    send_request,
)

DEFAULT_BASE_URL = "https://api.devrev.ai"
REFS_PER_LOOKUP = 50
"""external_refs per ``engagements.list`` call (the body stays small; assumed, not published)."""
LOOKUP_PAGE_LIMIT = 100
ACCESS_CHECK_ID = "don:core:engagement-importer-access-check"
"""An engagement id no DevRev org holds: reading it answers 404 to a valid key."""
READY = "READY"
"""What ``verify`` records for a DevRev engagement that exists (nothing to process)."""

FATAL_ADVICE = {
    401: "the DevRev token was refused: check --api-key-file or DEVREV_API_KEY",
    403: "the DevRev token may not do this (it needs to read and write engagements)",
    404: f"DevRev answered 404 for the endpoint itself: check --base-url (e.g. {DEFAULT_BASE_URL})",
}


def classify(
    status: int, headers: Mapping[str, str], body: bytes, *, operation: str
) -> ApiError | None:
    """None for a good answer, else the error that says what to do about it.

    ``operation`` is ``create``, ``list`` or ``get``: a 404 means a wrong base URL for the
    first two, but only a missing engagement for ``get``. DevRev errors are JSON with a
    ``message`` (and a ``type``).
    """
    if 200 <= status < 300:
        document = parse_problem(body)
        if operation == "list":
            good = isinstance(document.get("engagements"), list)
        else:
            engagement = document.get("engagement")
            good = isinstance(engagement, dict) and bool(engagement.get("id"))
        if not good:
            return TransientError(f"HTTP {status} but the body is not what {operation} answers")
        return None
    problem = parse_problem(body)
    message = problem.get("message") or problem.get("detail")
    fields: dict[str, Any] = {
        "status": status,
        "detail": str(message) if message else None,
        "request_id": headers.get("x-request-id"),
    }
    said = f": {message}" if message else ""
    if status == 429:
        wait = parse_retry_after(headers.get("retry-after"))
        if wait is None:
            wait = reset_seconds(headers.get("x-ratelimit-reset"), time.time())
        return RateLimited(f"HTTP 429 rate limited{said}", retry_after=wait, **fields)
    if status in (500, 502, 503, 504):
        return ServerUnavailable(f"HTTP {status} server error{said}", **fields)
    if status == 409:
        return TransientError(f"HTTP 409 conflict{said}", **fields)
    if status in (401, 403):
        return FatalError(f"HTTP {status}: {FATAL_ADVICE[status]}{said}", **fields)
    if status == 404 and operation != "get":
        return FatalError(f"HTTP 404: {FATAL_ADVICE[404]}{said}", **fields)
    if 400 <= status < 500:
        return PermanentError(f"HTTP {status}{said}", **fields)
    return ServerUnavailable(f"HTTP {status} unexpected answer{said}", **fields)


class DevRevTarget:
    """Speaks DevRev's engagements API; the token lives only in the client's headers."""

    label = "DevRev"
    creates_idempotently = False

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | None = None,
        max_connections: int = defaults.CONCURRENCY,
        transport: httpx.AsyncBaseTransport | None = None,
        refs_per_lookup: int = REFS_PER_LOOKUP,
        page_limit: int = LOOKUP_PAGE_LIMIT,
    ) -> None:
        self.refs_per_lookup, self.page_limit = refs_per_lookup, page_limit
        self.base_url = check_base_url(base_url, example=DEFAULT_BASE_URL)
        self._key = api_key
        self.pace_key = pace_key(self.base_url, api_key)
        self.on_rate_hint: HintListener | None = None
        """Told each answer's ``X-RateLimit-*`` hint (the sender's pacer paces by them)."""
        self._unsure: set[str] = set()
        """external_refs whose last create got no clear answer: look them up before resending."""
        self._timeout = timeout or build_timeout(60.0)
        self._client = open_client(
            self.base_url,
            api_key,
            timeout=self._timeout,
            max_connections=max_connections,
            transport=transport,
        )

    async def create(self, payload: dict[str, Any]) -> CreateResult:
        """POST /engagements.create, after a lookup if an earlier create of it was unsure."""
        external_id = str(payload.get("external_ref", ""))
        if external_id in self._unsure:
            found = (await self.lookup([external_id])).get(external_id, [])
            self._unsure.discard(external_id)
            if len(found) > 1:
                raise RemoteDuplicate(external_id, [e.engagement_id for e in found])
            if found:
                return CreateResult(found[0].engagement_id, False, 200, found[0].body, "lookup")
        try:
            response = await self._send("POST", "/engagements.create", json_body=payload)
            self._raise_for(response, "create")
        except RateLimited:
            raise  # refused before anything was done
        except TransientError:
            if external_id:
                self._unsure.add(external_id)
            raise
        engagement = response.json()["engagement"]
        said = engagement.get("external_ref")
        if said is not None and said != external_id:
            raise IntegrityProblem(
                f"integrity problem: HTTP {response.status_code} answered an engagement with "
                f"external_ref {said!r} for a create of {external_id!r}; nothing was recorded",
                status=response.status_code,
            )
        return CreateResult(
            engagement_id=str(engagement["id"]),
            created=True,
            http_status=response.status_code,
            body=engagement,
        )

    async def lookup(self, external_ids: Sequence[str]) -> Lookup:
        """Every engagement with one of these external_refs: list by ref, page by page."""
        wanted = list(dict.fromkeys(external_ids))
        found: Lookup = {external_id: [] for external_id in wanted}
        for start in range(0, len(wanted), self.refs_per_lookup):
            refs = wanted[start : start + self.refs_per_lookup]
            cursor: str | None = None
            seen_cursors: set[str] = set()
            while True:
                body: dict[str, Any] = {
                    "external_ref": refs,
                    "limit": self.page_limit,
                    "mode": "after",
                }
                if cursor:
                    body["cursor"] = cursor
                response = await self._send("POST", "/engagements.list", json_body=body)
                self._raise_for(response, "list")
                page = response.json()
                for engagement in page["engagements"]:
                    ref = engagement.get("external_ref") if isinstance(engagement, dict) else None
                    if ref in found and engagement.get("id"):
                        remote = RemoteEngagement(str(engagement["id"]), str(ref), engagement)
                        if all(r.engagement_id != remote.engagement_id for r in found[ref]):
                            found[ref].append(remote)
                cursor = page.get("next_cursor") or None
                if cursor is None:
                    break
                if cursor in seen_cursors:
                    raise TransientError("engagements.list gave the same next_cursor twice")
                seen_cursors.add(cursor)
        return found

    async def get(
        self, engagement_id: str, *, etag: str | None = None, expand: Sequence[str] = ()
    ) -> GetResult:
        """GET /engagements.get?id=...; DevRev has no ETags, so every read is a full one.

        A DevRev engagement needs no processing: once it exists it is ``READY`` to verify.
        """
        response = await self._send("GET", "/engagements.get", params={"id": engagement_id})
        self._raise_for(response, "get")
        engagement = {"processing_status": READY, **response.json()["engagement"]}
        return GetResult(response.status_code, engagement, None)

    async def check_access(self) -> None:
        """One cheap authenticated read of an id that cannot exist: 404 means the key works."""
        response = await self._send("GET", "/engagements.get", params={"id": ACCESS_CHECK_ID})
        if response.status_code != 404:
            self._raise_for(response, "get")

    @property
    def is_production(self) -> bool:
        """Whether this is DevRev's real API (a big run there asks first on a terminal)."""
        return urlsplit(self.base_url).hostname == urlsplit(DEFAULT_BASE_URL).hostname

    async def replace_contacts(
        self, engagement_id: str, contact_ids: Sequence[str]
    ) -> dict[str, Any]:
        """DevRev engagements have members, not contacts: a contact set cannot be applied."""
        raise PermanentError(
            "DevRev engagements have no contacts; map DevRev user ids to members instead"
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        response = await send_request(
            self._client,
            self._key,
            method,
            path,
            json_body=json_body,
            params=params,
            deadline=self._timeout.read,
            on_hint=self.on_rate_hint,
        )
        return response

    def _raise_for(self, response: Answer, operation: str) -> None:
        error = classify(
            response.status_code, response.headers, response.content, operation=operation
        )
        if error is not None:
            raise scrub_error(error, self._key)
