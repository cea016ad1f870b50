"""The sandbox's DevRev face: engagements.create (deliberately NOT idempotent) and list.

    POST /engagements.create    a new engagement every time, even for a known external_ref
    POST /engagements.list      filters external_ref[], type[], limit, cursor, mode
    GET  /engagements.list      the same filters as query parameters
    GET  /engagements.get       ?id=...
    POST /engagements.delete    {"id": ...}: makes "missing remotely" cases for reconcile
    POST /accounts.list         filters external_refs[], limit, cursor (also GET)
    GET  /_sandbox/devrev/engagements   admin: every DevRev engagement, oldest first
    POST /_sandbox/devrev/accounts      admin: add an account ``{"external_refs": [...]}``

Create keeps DevRev's published contract: ``title`` and ``parent`` (an account or
opportunity, full or display id; an account must be one the sandbox holds) are required,
``members`` (at most 50) and ``scheduled_date`` are optional, ``engagement_type`` is one
of call, default, email, linked_in, offline. No length limit is enforced: DevRev
publishes none. Accounts are seeded with ``--devrev-account EXTERNAL_REF`` (one account
per option; the same ref twice makes an ambiguous pair) and survive a reset. The rules
and request reading are in ``devrev_rules.py``, the accounts in ``devrev_accounts.py``.

It shares the sandbox's keys, faults and stats: the outage answers 503, ``rate_limit``
answers 429 with ``Retry-After`` and DevRev's ``retry_after`` in the body, ``fail_rate``
answers 500 before storing and ``drop_after_commit_rate`` stores, then closes the
connection. Every answer carries ``X-RateLimit-Limit/Remaining/Reset`` while a rate limit
is set. Errors are DevRev's shape: ``{"type": ..., "message": ...}`` (plus ``field_name``,
``allowed_values`` or ``retry_after`` where DevRev gives them). Engagements live in memory
(``--db`` keeps only AskElephant's).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from importer.rows import contract
from importer.sandbox.devrev_accounts import DevRevAccounts
from importer.sandbox.devrev_rules import (
    DevRevError,
    create_problem,
    decode_cursor,
    encode_cursor,
    is_opportunity,
    json_object,
    list_query,
    page_limit,
    string_list,
)
from importer.sandbox.faults import FaultState, TokenBucket
from importer.sandbox.params import presented_key
from importer.sandbox.settings import SandboxSettings
from importer.sandbox.wire import DROP_HEADER

ID_PREFIX = "don:core:dvrv-us-1:devo/sandbox:engagement/"


class Host(Protocol):
    """What the DevRev face borrows from the sandbox it is mounted in."""

    settings: SandboxSettings
    keys: dict[str, frozenset[str]]
    faults: FaultState
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[Any]]
    on_reset: list[Callable[[], None]]


def devrev_routes(host: Host) -> list[BaseRoute]:
    """The DevRev API's routes on the sandbox's state; a sandbox reset forgets its engagements."""
    api = DevRevApi(host)
    host.on_reset.append(api.reset)
    return api.routes()


@dataclass
class DevRevEngagement:
    """One stored engagement, with its position for cursors."""

    seq: int
    id: str
    title: str
    parent: str
    scheduled_date: str | None
    members: list[str]
    engagement_type: str
    external_ref: str | None
    external_url: str | None
    description: str | None
    created: float

    def render(self) -> dict[str, Any]:
        """As DevRev answers it."""
        stamp = _timestamp(self.created)
        return {
            "id": self.id,
            "display_id": f"ENGAGEMENT-{self.seq}",
            "title": self.title,
            "parent": {"id": self.parent},
            "description": self.description,
            "engagement_type": self.engagement_type,
            "external_ref": self.external_ref,
            "external_url": self.external_url,
            "scheduled_date": self.scheduled_date,
            "members": [{"id": member} for member in self.members],
            "created_date": stamp,
            "modified_date": stamp,
        }


@dataclass
class DevRevStore:
    """Engagements in creation order; the same external_ref may be there many times."""

    engagements: dict[str, DevRevEngagement] = field(default_factory=dict)
    last_seq: int = 0
    created: dict[str, int] = field(default_factory=dict)
    """Creates per external_ref, deleted ones included (what tests compare with)."""

    def add(self, body: Mapping[str, Any], now: float) -> DevRevEngagement:
        self.last_seq += 1
        engagement = DevRevEngagement(
            seq=self.last_seq,
            id=f"{ID_PREFIX}{self.last_seq}",
            title=body["title"],
            parent=body["parent"],
            scheduled_date=body.get("scheduled_date"),
            members=list(dict.fromkeys(body.get("members") or [])),
            engagement_type=body.get("engagement_type") or "default",
            external_ref=body.get("external_ref"),
            external_url=body.get("external_url"),
            description=body.get("description"),
            created=now,
        )
        self.engagements[engagement.id] = engagement
        if engagement.external_ref is not None:
            ref = engagement.external_ref
            self.created[ref] = self.created.get(ref, 0) + 1
        return engagement

    def clear(self) -> None:
        self.engagements.clear()
        self.created.clear()
        self.last_seq = 0


class DevRevApi:
    """DevRev's engagement endpoints, mounted beside AskElephant's by ``create_app``."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.store = DevRevStore()
        self.accounts = DevRevAccounts(tuple(host.settings.devrev_accounts))
        self._bucket: TokenBucket | None = None
        self._bucket_rate: float | None = None

    def routes(self) -> list[BaseRoute]:
        """The DevRev paths and their admin view."""
        return [
            Route("/engagements.create", self._guarded(self.create, "create"), methods=["POST"]),
            Route(
                "/engagements.list",
                self._guarded(self.list_engagements, "list"),
                methods=["GET", "POST"],
            ),
            Route("/engagements.get", self._guarded(self.get, "get"), methods=["GET"]),
            Route("/engagements.delete", self._guarded(self.delete, "delete"), methods=["POST"]),
            Route(
                "/accounts.list",
                self._guarded(self.list_accounts, "list"),
                methods=["GET", "POST"],
            ),
            Route("/_sandbox/devrev/engagements", self.admin_engagements, methods=["GET"]),
            Route("/_sandbox/devrev/accounts", self.admin_add_account, methods=["POST"]),
        ]

    def reset(self) -> None:
        """Forget every DevRev engagement and added account (``POST /_sandbox/reset``)."""
        self.store.clear()
        self.accounts.restore()
        self._bucket, self._bucket_rate = None, None

    # -- guards --

    def _guarded(
        self, handler: Callable[[Request], Awaitable[Response]], action: str
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            headers: dict[str, str] = {}
            try:
                headers = self._authorize(request, action)
                response = await handler(request)
            except DevRevError as error:
                response = JSONResponse(
                    error.body(), status_code=error.status, headers=error.headers
                )
            for name, value in headers.items():
                response.headers.setdefault(name, value)
            return response

        return endpoint

    def _authorize(self, request: Request, action: str) -> dict[str, str]:
        """Outage, key, rate limit and scope; returns the rate-limit headers to send."""
        if self.host.faults.outage_active():
            raise DevRevError(
                503, "service_unavailable", "simulated outage", headers={"Retry-After": "1"}
            )
        key = presented_key(request.headers.get("authorization"))
        scopes = self.host.keys.get(key) if key else None
        if key is None or scopes is None:
            raise DevRevError(401, "unauthenticated", "the token is missing, unknown or revoked")
        headers = self._ratepage_limit(key)
        needed = contract.SCOPE_READ if action in ("list", "get") else contract.SCOPE_WRITE
        if needed not in scopes:
            raise DevRevError(403, "forbidden", f"the token may not {action} engagements")
        return headers

    def _ratepage_limit(self, key: str) -> dict[str, str]:
        rate = self.host.faults.faults.rate_limit
        if not rate:
            return {}
        if self._bucket is None or self._bucket_rate != rate:
            self._bucket, self._bucket_rate = TokenBucket(rate, time.monotonic), rate
        wait = self._bucket.take(key)
        limit = math.ceil(self._bucket.capacity)
        left = self._bucket.tokens(key)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, math.floor(left))),
            "X-RateLimit-Reset": str(math.ceil((self._bucket.capacity - left) / rate)),
        }
        if wait is not None:
            message = f"more than {rate:g} requests per second for this token"
            raise DevRevError(
                429,
                "too_many_requests",
                message,
                headers={**headers, "Retry-After": str(wait)},
                retry_after=wait,
            )
        return headers

    # -- endpoints --

    async def create(self, request: Request) -> Response:
        """A new engagement, always: DevRev's create has no idempotency key."""
        body = await json_object(request)
        problem = create_problem(body)
        if problem is not None:
            raise problem
        if not is_opportunity(body["parent"]) and not self.accounts.holds(body["parent"]):
            raise DevRevError(
                400,
                "invalid_field",
                f"parent {body['parent']!r} is not an account this org holds",
                field_name="parent",
            )
        plan = self.host.faults.plan_create()
        await self.host.sleep(plan.latency_seconds)
        if plan.fail:
            raise DevRevError(500, "internal_error", "simulated server error; nothing was stored")
        engagement = self.store.add(body, self.host.clock())
        if plan.drop:
            return Response(headers={DROP_HEADER: "1"})
        return JSONResponse({"engagement": engagement.render()}, status_code=201)

    def _page_size(self, query: dict[str, Any]) -> int:
        """The page a list call asked for, made smaller by the ``list_page_size`` fault."""
        limit = page_limit(query.get("limit"))
        return min(limit, self.host.faults.faults.list_page_size or limit)

    async def list_engagements(self, request: Request) -> Response:
        """Oldest first (mode after) or newest first (mode before), by opaque cursor."""
        query = await list_query(request, ("external_ref", "type"))
        refs = string_list(query.get("external_ref"), "external_ref")
        types = string_list(query.get("type"), "type")
        limit = self._page_size(query)
        mode = query.get("mode") or "after"
        if mode not in ("after", "before"):
            raise DevRevError(400, "bad_request", f"mode must be after or before, not {mode!r}")
        position = decode_cursor(query.get("cursor"))
        shown_before = self.host.clock() - self.host.faults.faults.list_delay_seconds
        ordered = sorted(
            (e for e in self.store.engagements.values() if e.created <= shown_before),
            key=lambda e: e.seq,
        )
        if mode == "before":
            ordered.reverse()
            candidates = [e for e in ordered if position is None or e.seq < position]
        else:
            candidates = [e for e in ordered if position is None or e.seq > position]
        matching = [
            e
            for e in candidates
            if (not refs or e.external_ref in refs) and (not types or e.engagement_type in types)
        ]
        page, more = matching[:limit], len(matching) > limit
        return JSONResponse(
            {
                "engagements": [e.render() for e in page],
                "next_cursor": encode_cursor(page[-1].seq) if more else None,
                "prev_cursor": encode_cursor(page[0].seq) if page and position else None,
            }
        )

    async def list_accounts(self, request: Request) -> Response:
        """Accounts holding any of ``external_refs`` (all, without it), oldest first."""
        query = await list_query(request, ("external_refs",))
        refs = string_list(query.get("external_refs"), "external_refs")
        limit = self._page_size(query)
        position = decode_cursor(query.get("cursor"))
        matching = [
            a
            for a in self.accounts.accounts
            if (position is None or a.seq > position)
            and (not refs or any(ref in refs for ref in a.external_refs))
        ]
        page, more = matching[:limit], len(matching) > limit
        answer: dict[str, Any] = {"accounts": [a.render() for a in page]}
        if more:
            answer["next_cursor"] = encode_cursor(page[-1].seq)
        return JSONResponse(answer)

    async def admin_add_account(self, request: Request) -> Response:
        """``{"external_refs": [...], "display_name": ...}``: one more account."""
        try:
            body = await json_object(request)
            refs = string_list(body.get("external_refs"), "external_refs")
        except DevRevError as error:
            return JSONResponse(error.body(), status_code=error.status)
        name = str(body.get("display_name") or f"Account {', '.join(refs)}")
        return JSONResponse({"account": self.accounts.add(refs, name).render()}, status_code=201)

    async def get(self, request: Request) -> Response:
        """One engagement by id."""
        engagement = self.store.engagements.get(request.query_params.get("id", ""))
        if engagement is None:
            raise DevRevError(404, "not_found", "no engagement with this id")
        return JSONResponse({"engagement": engagement.render()})

    async def delete(self, request: Request) -> Response:
        """Delete one engagement by id."""
        body = await json_object(request)
        if self.store.engagements.pop(str(body.get("id", "")), None) is None:
            raise DevRevError(404, "not_found", "no engagement with this id")
        return JSONResponse({})

    async def admin_engagements(self, request: Request) -> Response:
        """Every DevRev engagement, oldest first, and creates per external_ref."""
        ordered = sorted(self.store.engagements.values(), key=lambda e: e.seq)
        return JSONResponse(
            {"engagements": [e.render() for e in ordered], "created": self.store.created}
        )


def _timestamp(moment: float) -> str:
    utc = datetime.fromtimestamp(moment, timezone.utc)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
