"""DevRev's engagements API as a ``Target``: create is not idempotent, so we look first.

DevRev documents no idempotency key for ``engagements.create``. Exactly-once therefore
comes from lookups by ``external_ref`` with ``engagements.list``:

- the pipeline looks up each batch before creating (``lookup``, many refs per call,
  following ``next_cursor`` within a bound of pages and seconds);
- after a create whose outcome is unsure (timeout, dropped connection, ``5xx``) the
  sender looks its ``external_ref`` up before any retry (``importer.send.sender``). Found
  once: it is the engagement (``found_by="lookup"``); found several times:
  ``RemoteDuplicate``, reported, never picked; not found within the settling time: the row
  is ``in doubt`` (a list may show it late), never created a second time.

Parents: ``parent`` is required. A manifest value that is not a DevRev id (a CRM's account
id) is found with ``accounts.list`` by ``external_refs`` (``find_references``, many per
call); the sender resolves each distinct value once per run and keeps the answer in the
ledger.

Rate limits: ``429`` honours ``Retry-After``, else the ``retry_after`` of DevRev's error
body, else ``X-RateLimit-Reset``; every answer's
``X-RateLimit-Remaining``/``X-RateLimit-Reset`` is only reported (``on_rate_hint``): the
shared pacer (``importer.send.pacing``) slows down before the window is exhausted, not after.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from importer.errors import (
    ApiError,
    FatalError,
    IntegrityProblem,
    ListingUnbounded,
    PermanentError,
    RateLimited,
    ServerUnavailable,
    TransientError,
)
from importer.settings import DEFAULT_CONCURRENCY
from importer.targets.base import CreateResult, GetResult, Lookup, References, RemoteEngagement
from importer.targets.devrev_fields import is_devrev_parent
from importer.targets.http import (
    Answer,
    HintListener,
    build_timeout,
    check_base_url,
    open_client,
    pace_key,
    parse_problem,
    parse_retry_after,
    reset_seconds,
    scrub_error,
    send_request,
)

DEFAULT_BASE_URL = "https://api.devrev.ai"
MAX_PAGES_PER_LOOKUP = 200
"""Pages one look-up follows (200 x 100: far more than 50 refs can hold); past it, stop."""
MAX_LOOKUP_SECONDS = 300.0
"""Seconds one look-up may page for; past it, stop."""
REFS_PER_LOOKUP = 50
"""external_refs per ``engagements.list`` or ``accounts.list`` call (the body stays small;
our choice, not a published limit)."""
LOOKUP_PAGE_LIMIT = 100
PARENTS = References(field="parent", noun="account", is_native=is_devrev_parent)
"""``parent``: a DevRev id is sent as it is, any other value is a CRM account id to find."""
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

    ``operation`` is ``create``, ``list``, ``accounts`` or ``get``: a 404 means a wrong base
    URL for all but ``get``, where it is only a missing engagement. DevRev errors are JSON
    with a ``message`` (and a ``type``).
    """
    if 200 <= status < 300:
        document = parse_problem(body)
        if operation == "list":
            good = isinstance(document.get("engagements"), list)
        elif operation == "accounts":
            good = isinstance(document.get("accounts"), list)
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
            wait = parse_retry_after(_text(problem.get("retry_after")))
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


def _text(value: object) -> str | None:
    """A JSON number or string as text (``retry_after`` may be either); else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    return str(value)


class DevRevTarget:
    """Speaks DevRev's engagements API; the token lives only in the client's headers."""

    label = "DevRev"
    creates_idempotently = False
    references: References | None = PARENTS

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | None = None,
        max_connections: int = DEFAULT_CONCURRENCY,
        transport: httpx.AsyncBaseTransport | None = None,
        refs_per_lookup: int = REFS_PER_LOOKUP,
        page_limit: int = LOOKUP_PAGE_LIMIT,
        max_pages: int = MAX_PAGES_PER_LOOKUP,
        max_lookup_seconds: float = MAX_LOOKUP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.refs_per_lookup, self.page_limit = refs_per_lookup, page_limit
        self.max_pages, self.max_lookup_seconds = max_pages, max_lookup_seconds
        self._clock = clock
        self.base_url = check_base_url(base_url, example=DEFAULT_BASE_URL)
        self._key = api_key
        self.pace_key = pace_key(self.base_url, api_key)
        self.on_rate_hint: HintListener | None = None
        """Told each answer's ``X-RateLimit-*`` hint (the sender's pacer paces by them)."""
        self._timeout = timeout or build_timeout(60.0)
        self._client = open_client(
            self.base_url,
            api_key,
            timeout=self._timeout,
            max_connections=max_connections,
            transport=transport,
        )

    async def create(self, payload: dict[str, Any]) -> CreateResult:
        """POST /engagements.create: a new engagement every time (the sender looks up first
        after an unsure answer, and never re-creates a row in doubt)."""
        external_id = str(payload.get("external_ref", ""))
        response = await self._send("POST", "/engagements.create", json_body=payload)
        self._raise_for(response, "create")
        engagement = response.json()["engagement"]
        said = engagement.get("external_ref")
        if said is not None and said != external_id:
            raise IntegrityProblem(
                f"integrity problem: HTTP {response.status_code} answered an engagement with "
                f"external_ref {said!r} for a create of {external_id!r}; it was created "
                f"({engagement['id']}) but is not recorded as this row's: check it in DevRev "
                "(the row is not created again while it exists)",
                status=response.status_code,
                engagement_id=str(engagement["id"]),
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
            asked = wanted[start : start + self.refs_per_lookup]
            query = {"external_ref": asked}
            async for engagement in self._listed("engagements", {**query, "mode": "after"}):
                ref, engagement_id = engagement.get("external_ref"), engagement.get("id")
                if ref is not None and not isinstance(ref, str):
                    raise TransientError(
                        "engagements.list answered an external_ref that is not text"
                    )
                if ref not in asked:
                    raise _filter_ignored("engagements", ref)
                if not isinstance(engagement_id, str) or not engagement_id:
                    raise TransientError("engagements.list answered an engagement without an id")
                if all(r.engagement_id != engagement_id for r in found[ref]):
                    found[ref].append(RemoteEngagement(engagement_id, ref, engagement))
        return found

    async def find_references(self, values: Sequence[str]) -> dict[str, list[str]]:
        """The ids of the accounts DevRev holds under each of these external references.

        POST /accounts.list with ``external_refs``, a batch at a time, page by page; an
        account answers for every one of its external_refs asked about.
        """
        wanted = list(dict.fromkeys(values))
        found: dict[str, list[str]] = {value: [] for value in wanted}
        for start in range(0, len(wanted), self.refs_per_lookup):
            asked = wanted[start : start + self.refs_per_lookup]
            query_refs = set(asked)
            query = {"external_refs": asked}
            async for account in self._listed("accounts", query):
                account_id, held = account.get("id"), account.get("external_refs")
                if not isinstance(account_id, str) or not isinstance(held, list):
                    raise TransientError("accounts.list answered an account without id or refs")
                matched = [ref for ref in held if isinstance(ref, str) and ref in query_refs]
                if not matched:
                    raise _filter_ignored("accounts", held[0] if held else None)
                for ref in matched:
                    if account_id not in found[ref]:
                        found[ref].append(account_id)
        return found

    async def _listed(self, kind: str, query: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Every object of ``POST /<kind>.list`` for ``query``, following ``next_cursor``.

        Bounded: past ``max_pages`` pages or ``max_lookup_seconds``, ``ListingUnbounded``
        (the run stops, nothing created on a look-up it could not finish). A page that is
        not a list of objects, or a cursor that is not text, is a bad answer (retried).
        """
        started, cursor, seen = self._clock(), None, set()
        for _ in range(self.max_pages):
            body = {**query, "limit": self.page_limit, **({"cursor": cursor} if cursor else {})}
            response = await self._send("POST", f"/{kind}.list", json_body=body)
            self._raise_for(response, "list" if kind == "engagements" else kind)
            page = response.json()
            items = page[kind]
            if not all(isinstance(item, dict) for item in items):
                raise TransientError(f"{kind}.list answered a page with items that are not objects")
            for item in items:
                yield item
            cursor = page.get("next_cursor")
            if cursor is None or cursor == "":
                return
            if not isinstance(cursor, str):
                raise TransientError(f"{kind}.list answered a next_cursor that is not text")
            if cursor in seen:
                raise TransientError(f"{kind}.list gave the same next_cursor twice")
            seen.add(cursor)
            if self._clock() - started > self.max_lookup_seconds:
                raise ListingUnbounded(
                    f"{kind}.list was still paging after {self.max_lookup_seconds:g} s for one "
                    "look-up; nothing was created for its rows"
                )
        raise ListingUnbounded(
            f"{kind}.list was still handing out pages after {self.max_pages} for one look-up; "
            "nothing was created for its rows"
        )

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


def _filter_ignored(kind: str, ref: object) -> ListingUnbounded:
    """A filtered list that answers objects it was not asked about ignores its filter: paging
    on would walk the whole org, so the look-up stops at once (nothing is created)."""
    return ListingUnbounded(
        f"{kind}.list answered {ref!r}, an external reference it was not asked about: the "
        "filter is not applied, so the look-up stops here; nothing was created for its rows"
    )
