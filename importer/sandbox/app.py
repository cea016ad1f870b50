"""The sandbox's HTTP face: the AskElephant engagements API, its admin endpoints, its faults.

``create_app(settings)`` returns an ASGI app. Its outermost layer (``_Wire``) stamps every
answer with ``X-Api-Version`` and ``X-Request-Id``, counts it in the stats, and turns a
"drop" answer into a closed connection. Inside, a Starlette router serves

    POST /v2/engagements                          create (idempotent on external_id)
    GET  /v2/engagements                          list, paginated
    GET  /v2/engagements/{engagement_id}          get, with ETag and ?expand=
    PUT  /v2/engagements/{engagement_id}/contacts replace contacts
    /_sandbox/...                                 admin: faults, stats, reset, keys, contacts

each API path also under ``/api`` so a base URL ending in ``/api`` works.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import json
import secrets
import socket
import string
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from importer import contract
from importer.contract import FieldProblem
from importer.sandbox.faults import FaultsInvalid, FaultState
from importer.sandbox.settings import Faults, SandboxSettings
from importer.sandbox.store import Engagement, EngagementStore, ExternalIdBusy

API_VERSION = "v2"
PROBLEM_JSON = "application/problem+json"
# The create handler answers with this header to ask _Wire to close the connection instead.
DROP_HEADER = "x-sandbox-drop-connection"
UNKNOWN_CONTACT_PREFIX = "cnt_unknown"
REQUIRED_CREATE_FIELDS = (
    "type",
    "title",
    "source_system",
    "external_id",
    "media_url",
    "run_workflows",
)
TEXT_LIMITS = (
    ("title", contract.TITLE_MAX_CHARS),
    ("source_system", contract.SOURCE_SYSTEM_MAX_CHARS),
    ("external_id", contract.EXTERNAL_ID_MAX_CHARS),
)
# RFC 2606/6761 names: never looked up, so tests and examples stay off the network.
DOCUMENTATION_DOMAINS = ("example", "example.com", "example.net", "example.org")
UNRESOLVABLE_DOMAINS = ("test", "invalid")
DNS_TIMEOUT_SECONDS = 2.0
MAX_REDIRECTS = 5
FETCH_TIMEOUT_SECONDS = 10.0
DEFAULT_PAGE_SIZE = 20
CLIENT_CLOSED = 499  # nginx's status for a request the client abandoned; never delivered

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str], list[str]]
Clock = Callable[[], float]


def generate_key() -> str:
    """A fresh sandbox API key in the real keys' shape."""
    return f"sk-apik_sandbox.{secrets.token_hex(12)}"


def create_app(
    settings: SandboxSettings,
    *,
    resolve: Resolve | None = None,
    media_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.time,
) -> ASGIApp:
    """The sandbox as an ASGI app; resolve and media_transport let tests stay offline."""
    media = MediaChecker(settings.media_check, resolve or resolve_host, media_transport)
    sandbox = Sandbox(settings, media, clock)
    app = Starlette(
        routes=sandbox.routes(),
        exception_handlers={
            Problem: _problem_handler,
            HTTPException: _http_exception_handler,
            Exception: _crash_handler,
        },
    )
    app.router.redirect_slashes = False
    return _Wire(app, sandbox)


# -- problems ---------------------------------------------------------------------------


class Problem(Exception):
    """An error answer, rendered as application/problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: Sequence[FieldProblem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})
        super().__init__(detail)


def invalid(problems: Sequence[FieldProblem]) -> Problem:
    """The 422 for a request whose fields break the documented rules."""
    fields = ", ".join(dict.fromkeys(p.field for p in problems))
    return Problem(422, "Unprocessable Entity", f"Validation failed: {fields}", problems)


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    """The problem+json answer for a Problem."""
    request_id = request.scope.get("sandbox.request_id", "")
    body = {
        "type": f"https://sandbox.askelephant.invalid/problems/{problem.status}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "request_id": request_id,
        "errors": [
            {"field": p.field, "code": p.code, "message": p.message} for p in problem.errors
        ],
    }
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


async def _problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(request, exc)


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem_response(request, Problem(exc.status_code, "Error", str(exc.detail)))


async def _crash_handler(request: Request, exc: Exception) -> Response:
    detail = f"The sandbox failed: {type(exc).__name__}: {exc}"
    return problem_response(request, Problem(500, "Internal Server Error", detail))


# -- validation of a create -------------------------------------------------------------


def create_problems(body: Mapping[str, Any]) -> list[FieldProblem]:
    """Every documented rule a create body breaks that can be judged offline."""
    found: list[FieldProblem | None] = [
        FieldProblem(name, "required", f"{name} is required")
        for name in REQUIRED_CREATE_FIELDS
        if name not in body
    ]
    if "type" in body:
        found.append(contract.check_engagement_type(body["type"]))
    for name, limit in TEXT_LIMITS:
        if name in body:
            found.append(contract.check_text_length(name, body[name], limit))
    if "media_url" in body:
        found.append(contract.check_media_url(body["media_url"]))
    for name in ("run_workflows", "is_private"):
        if name in body:
            found.append(_check_boolean(name, body[name]))
    if "start_at" in body:
        found.append(_check_start_at(body["start_at"]))
    if "transcript_text" in body:
        found.append(_check_transcript(body["transcript_text"]))
    if "participants" in body:
        found.extend(participant_problems(body["participants"]))
    return [p for p in found if p is not None]


def participant_problems(value: object) -> list[FieldProblem]:
    """Objects with a name and/or a valid email, optional phone, at most one owner."""
    if not isinstance(value, list):
        return [FieldProblem("participants", "type", "participants must be a list of objects")]
    problems: list[FieldProblem] = []
    owners = 0
    for index, item in enumerate(value):
        where = f"participants[{index}]"
        if not isinstance(item, dict):
            problems.append(FieldProblem(where, "type", f"{where} must be an object"))
            continue
        for key in ("name", "email", "phone"):
            if key in item and not isinstance(item[key], str):
                problems.append(FieldProblem(f"{where}.{key}", "type", f"{key} must be a string"))
        name, email = item.get("name"), item.get("email")
        has_name = isinstance(name, str) and bool(name.strip())
        has_email = isinstance(email, str) and bool(email.strip())
        if not has_name and not has_email:
            problems.append(FieldProblem(where, "required", f"{where} needs a name or an email"))
        if has_email and not contract.check_email(str(email)):
            message = f"{email!r} is not a valid e-mail address"
            problems.append(FieldProblem(f"{where}.email", "invalid_email", message))
        if "is_owner" in item:
            problem = _check_boolean(f"{where}.is_owner", item["is_owner"])
            problems.extend([problem] if problem else [])
            owners += item["is_owner"] is True
    if owners > 1:
        message = f"at most one participant may have is_owner true ({owners} do)"
        problems.append(FieldProblem("participants", "multiple_owners", message))
    return problems


def parse_timestamp(value: str) -> datetime | None:
    """An ISO 8601 date-time (naive means UTC), or None if it is not one."""
    text = value.strip()
    if len(text) < 11 or text[10] not in "Tt ":
        return None
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def format_timestamp(moment: float | datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as the API answers."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    utc = moment.astimezone(timezone.utc)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_boolean(name: str, value: object) -> FieldProblem | None:
    if isinstance(value, bool):
        return None
    return FieldProblem(name, "type", f"{name} must be true or false, not {value!r}")


def _check_start_at(value: object) -> FieldProblem | None:
    if isinstance(value, str) and parse_timestamp(value) is not None:
        return None
    message = f"start_at must be an ISO 8601 date-time such as 2024-05-01T14:30:00Z, not {value!r}"
    return FieldProblem("start_at", "invalid_datetime", message)


def _check_transcript(value: object) -> FieldProblem | None:
    if not isinstance(value, str):
        return FieldProblem("transcript_text", "type", "transcript_text must be a string")
    return contract.check_transcript(value)


# -- the media URL: where it points and what it serves ----------------------------------


def resolve_host(host: str) -> list[str]:
    """The addresses a name resolves to; raises OSError when it does not resolve."""
    infos = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class MediaChecker:
    """The media_url rules that need a resolver or the network, per the media_check mode."""

    def __init__(
        self, mode: str, resolve: Resolve, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.mode = mode
        self._resolve = resolve
        self._transport = transport
        self._cache: dict[str, list[Address] | None] = {}

    async def check(self, url: str) -> FieldProblem | None:
        """The problem with a syntactically valid https media URL, if any."""
        problem = await self._host_problem(url)
        if problem is not None:
            return problem
        if self.mode == "fetch":
            return await self._fetch(url.strip())
        if contract.media_type_from_extension(url) is None:
            message = "media_url is not audio/video: its path has no audio or video extension"
            return FieldProblem("media_url", "unsupported_media_type", message)
        return None

    async def _host_problem(self, url: str) -> FieldProblem | None:
        """Where the URL's host points: never private; unresolvable only in fetch mode."""
        host = urlsplit(url.strip()).hostname or ""
        if contract.parse_ip_literal(host) is not None:
            return None
        addresses = await self.addresses(host)
        if addresses is None and self.mode == "fetch":
            message = f"media_url host {host!r} cannot be resolved"
            return FieldProblem("media_url", "unresolvable", message)
        for address in addresses or ():
            if not contract.is_public_address(address):
                message = (
                    f"media_url host {host!r} resolves to {address}, a private, "
                    "loopback or link-local address"
                )
                return FieldProblem("media_url", "private_address", message)
        return None

    async def addresses(self, host: str) -> list[Address] | None:
        """What host resolves to (cached), [] for documentation names, None if unresolvable."""
        name = host.rstrip(".").lower()
        if _under(name, DOCUMENTATION_DOMAINS):
            return []
        if _under(name, UNRESOLVABLE_DOMAINS):
            return None
        if name not in self._cache:
            self._cache[name] = await self._lookup(name)
        return self._cache[name]

    async def _lookup(self, name: str) -> list[Address] | None:
        try:
            found = await asyncio.wait_for(
                asyncio.to_thread(self._resolve, name), DNS_TIMEOUT_SECONDS
            )
        except (OSError, UnicodeError, asyncio.TimeoutError):
            return None
        return [ipaddress.ip_address(text.split("%", 1)[0]) for text in found]

    async def _fetch(self, url: str) -> FieldProblem | None:
        # Redirects are followed by hand: each hop must pass the same rules as the URL.
        async with httpx.AsyncClient(
            transport=self._transport, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False
        ) as client:
            current = url
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    # HEAD first; many signed URLs refuse HEAD, so a one-byte GET decides.
                    head = await client.head(current)
                    if head.is_redirect:
                        current, problem = await self._next_hop(current, head)
                        if problem is not None:
                            return problem
                        continue
                    if head.is_success and contract.is_media_content_type(
                        head.headers.get("content-type")
                    ):
                        return None
                    # Streamed and closed unread: a server ignoring Range must not send it all.
                    async with client.stream("GET", current, headers={"Range": "bytes=0-0"}) as got:
                        pass
                    if got.is_redirect:
                        current, problem = await self._next_hop(current, got)
                        if problem is not None:
                            return problem
                        continue
                except httpx.HTTPError as error:
                    message = f"media_url could not be fetched ({type(error).__name__}: {error})"
                    return FieldProblem("media_url", "unreachable", message)
                return _media_problem(got.status_code, got.headers.get("content-type"))
        return FieldProblem("media_url", "unreachable", f"more than {MAX_REDIRECTS} redirects")

    async def _next_hop(
        self, current: str, response: httpx.Response
    ) -> tuple[str, FieldProblem | None]:
        target = urljoin(current, response.headers.get("location", ""))
        static = contract.check_media_url(target)
        if static is not None:
            return target, FieldProblem(
                "media_url", "redirect", f"media_url redirects to {target}: {static.message}"
            )
        problem = await self._host_problem(target)
        if problem is not None:
            return target, FieldProblem("media_url", "redirect", f"redirected: {problem.message}")
        return target, None


def _media_problem(status: int, content_type: str | None) -> FieldProblem | None:
    if status >= 400:
        return FieldProblem(
            "media_url", "unreachable", f"media_url could not be fetched (HTTP {status})"
        )
    if not contract.is_media_content_type(content_type):
        message = f"media_url is not audio/video: it serves {content_type or 'no content type'}"
        return FieldProblem("media_url", "unsupported_media_type", message)
    return None


def _under(name: str, domains: Iterable[str]) -> bool:
    return any(name == domain or name.endswith("." + domain) for domain in domains)


# -- engagement representation ----------------------------------------------------------


def processing_status(engagement: Engagement, now: float, step_seconds: float) -> tuple[str, float]:
    """The status at ``now`` and when it began: QUEUED, PROCESSING, then COMPLETED/FAILED."""
    elapsed = now - engagement.created_at
    if elapsed < step_seconds:
        return "QUEUED", engagement.created_at
    if elapsed < 2 * step_seconds:
        return "PROCESSING", engagement.created_at + step_seconds
    final = "FAILED" if "broken" in engagement.media_url.lower() else "COMPLETED"
    return final, engagement.created_at + 2 * step_seconds


def expanded_value(engagement: Engagement, name: str) -> object:
    """The value of one ``expand`` key; the sandbox knows no companies, users or signals."""
    if name == "transcript":
        return engagement.transcript_text
    if name == "media_url":
        return engagement.media_url
    if name == "contacts":
        return [{"id": contact_id} for contact_id in engagement.contact_ids]
    if name == "owner":
        return None
    return []


def etag_of(document: Mapping[str, object]) -> str:
    """A strong ETag for one rendering of an engagement."""
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:32]}"'


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names this ETag (weak or strong) or is ``*``."""
    if not header:
        return False
    candidates = [part.strip().removeprefix("W/") for part in header.split(",")]
    return "*" in candidates or etag in candidates


def new_engagement_id() -> str:
    """``ngmt_`` and 24 random letters and digits."""
    alphabet = string.ascii_letters + string.digits
    return "ngmt_" + "".join(secrets.choice(alphabet) for _ in range(24))


# -- state and handlers -----------------------------------------------------------------


@dataclass
class Stats:
    """What the sandbox answered, for tests and the demo to compare with the importer."""

    requests: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    created: Counter[str] = field(default_factory=Counter)
    hits: Counter[str] = field(default_factory=Counter)

    def as_dict(self, engagements: int) -> dict[str, object]:
        """The ``GET /_sandbox/stats`` document."""
        return {
            "requests": {name: dict(by_status) for name, by_status in self.requests.items()},
            "engagements": engagements,
            "created": dict(self.created),
            "hits": dict(self.hits),
        }


class Sandbox:
    """The sandbox's state (engagements, keys, faults, contacts, stats) and its endpoints."""

    def __init__(self, settings: SandboxSettings, media: MediaChecker, clock: Clock) -> None:
        self.settings = settings
        self.media = media
        self.clock = clock
        self.store = EngagementStore(settings.db_path)
        self.faults = FaultState(settings.faults, settings.seed)
        self.stats = Stats()
        self.keys: dict[str, frozenset[str]] = {}
        self.added_contacts: set[str] = set()
        self.restore_keys()

    def routes(self) -> list[BaseRoute]:
        """The API under ``/`` and ``/api``, and the admin endpoints under ``/_sandbox``."""
        api = [
            ("/v2/engagements", self.create_engagement, "POST"),
            ("/v2/engagements", self.list_engagements, "GET"),
            ("/v2/engagements/{engagement_id}", self.get_engagement, "GET"),
            ("/v2/engagements/{engagement_id}/contacts", self.replace_contacts, "PUT"),
        ]
        admin = [
            ("/_sandbox/faults", self.admin_faults, "POST"),
            ("/_sandbox/faults", self.admin_faults, "GET"),
            ("/_sandbox/stats", self.admin_stats, "GET"),
            ("/_sandbox/reset", self.admin_reset, "POST"),
            ("/_sandbox/keys", self.admin_add_key, "POST"),
            ("/_sandbox/keys/{key}", self.admin_revoke_key, "DELETE"),
            ("/_sandbox/engagements", self.admin_engagements, "GET"),
            ("/_sandbox/contacts", self.admin_add_contacts, "POST"),
        ]
        paths = [(prefix + path, h, m) for prefix in ("", "/api") for path, h, m in api]
        return [Route(path, handler, methods=[method]) for path, handler, method in paths + admin]

    def restore_keys(self) -> None:
        """Accept exactly the keys the sandbox was started with."""
        self.keys = {api_key.key: api_key.scopes for api_key in self.settings.keys}

    # -- guards --

    def authorize(self, request: Request, scope: str, action: str) -> frozenset[str]:
        """The caller's scopes, after the outage, key, rate-limit and scope checks."""
        if self.faults.outage_active():
            detail = "The sandbox is simulating an outage; try again shortly"
            raise Problem(503, "Service Unavailable", detail, headers={"Retry-After": "1"})
        key = presented_key(request.headers.get("authorization"))
        scopes = self.keys.get(key) if key else None
        if key is None or scopes is None:
            detail = "No API key was sent" if key is None else "The API key is unknown or revoked"
            raise Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})
        wait = self.faults.rate_limited(key)
        if wait is not None:
            detail = f"More than {self.faults.faults.rate_limit:g} requests per second for this key"
            raise Problem(429, "Too Many Requests", detail, headers={"Retry-After": str(wait)})
        require_scope(scopes, scope, action)
        return scopes

    def find(self, request: Request) -> Engagement:
        """The engagement named in the path, or a 404."""
        engagement_id = request.path_params["engagement_id"]
        engagement = self.store.get(engagement_id)
        if engagement is None:
            raise Problem(404, "Not Found", f"No engagement with id {engagement_id!r}")
        return engagement

    # -- rendering --

    def render(self, engagement: Engagement, expand: Iterable[str] = ()) -> dict[str, object]:
        """The engagement as the API shows it; expand keys only when asked for."""
        status, since = processing_status(
            engagement, self.clock(), self.settings.processing_seconds
        )
        document: dict[str, object] = {
            "object": "engagement",
            "id": engagement.id,
            "title": engagement.title,
            "engagement_type": engagement.engagement_type,
            "processing_status": status,
            "is_private": engagement.is_private,
            "created_at": format_timestamp(engagement.created_at),
            "updated_at": format_timestamp(max(since, engagement.updated_at)),
            "description": None,
            "data_source": "api",
            "is_internal": False,
            "engagement_at": engagement.start_at,
            "start_at": engagement.start_at,
            "end_at": None,
            "duration_seconds": None,
            "meeting_url": None,
            "owner_user_id": None,
            "host_user_id": None,
            "external_id": engagement.external_id,
            "source_system": engagement.source_system,
        }
        for name in expand:
            document[name] = expanded_value(engagement, name)
        return document

    def new_engagement(self, body: Mapping[str, Any]) -> Engagement:
        """A new engagement from a valid create body."""
        now = self.clock()
        start = parse_timestamp(body["start_at"]) if "start_at" in body else None
        return Engagement(
            id=new_engagement_id(),
            external_id=body["external_id"],
            source_system=body["source_system"],
            title=body["title"],
            engagement_type=body["type"],
            is_private=body.get("is_private", False),
            run_workflows=body["run_workflows"],
            start_at=format_timestamp(start or now),
            media_url=body["media_url"].strip(),
            created_at=now,
            updated_at=now,
            transcript_text=body.get("transcript_text"),
            participants=list(body.get("participants", [])),
        )

    def is_known_contact(self, contact_id: str) -> bool:
        """Any well-formed id not starting with ``cnt_unknown``, and any added by admin."""
        if contact_id in self.added_contacts:
            return True
        well_formed = bool(contract.CONTACT_ID_PATTERN.match(contact_id))
        return well_formed and not contact_id.startswith(UNKNOWN_CONTACT_PREFIX)

    # -- API endpoints --

    async def create_engagement(self, request: Request) -> Response:
        """POST /v2/engagements: 201 new, 200 existing (unchanged), 409 while in flight."""
        self.authorize(request, contract.SCOPE_WRITE, "create engagements")
        body = await json_object(request)
        problems = create_problems(body)
        if "media_url" in body and not any(p.field == "media_url" for p in problems):
            media_problem = await self.media.check(body["media_url"])
            problems.extend([media_problem] if media_problem else [])
        if problems:
            raise invalid(problems)
        external_id: str = body["external_id"]
        try:
            existing = self.store.claim(external_id)
        except ExternalIdBusy:
            detail = f"An engagement with external_id {external_id!r} is still being created"
            raise Problem(409, "Conflict", detail) from None
        if existing is not None:
            self.stats.hits[external_id] += 1
            return JSONResponse(self.render(existing))
        try:
            plan = self.faults.plan_create()
            await asyncio.sleep(plan.latency_seconds)  # the synchronous media fetch
            if plan.fail:
                detail = "Simulated server error (fail_rate); nothing was stored"
                raise Problem(500, "Internal Server Error", detail)
            engagement = self.store.commit(self.new_engagement(body))
        finally:
            self.store.release(external_id)
        self.stats.created[external_id] += 1
        if plan.drop:
            return Response(headers={DROP_HEADER: "1"})
        return JSONResponse(self.render(engagement), status_code=201)

    async def get_engagement(self, request: Request) -> Response:
        """GET /v2/engagements/{id}: ETag, If-None-Match, expand with its scopes."""
        scopes = self.authorize(request, contract.SCOPE_READ, "read engagements")
        expand = parse_expand(request.query_params.get("expand"))
        for name in expand:
            if name in contract.EXPAND_SCOPES:
                require_scope(scopes, contract.EXPAND_SCOPES[name], f"expand {name}")
        engagement = self.find(request)
        if engagement.is_private:
            require_scope(scopes, contract.SCOPE_PRIVATE_READ, "read private engagements")
        etag = etag_of(self.render(engagement, contract.EXPAND_VALUES))
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse(self.render(engagement, expand), headers={"ETag": etag})

    async def list_engagements(self, request: Request) -> Response:
        """GET /v2/engagements: oldest first, ``limit`` 1..100, opaque ``cursor``."""
        scopes = self.authorize(request, contract.SCOPE_READ, "list engagements")
        query = request.query_params
        limit = parse_limit(query.get("limit"))
        wanted = {
            "engagement_type": query.get("type"),
            "processing_status": query.get("processing_status"),
        }
        page: list[tuple[Engagement, dict[str, object]]] = []
        has_more = False
        for engagement in self.store.after(decode_cursor(query.get("cursor"))):
            if engagement.is_private and contract.SCOPE_PRIVATE_READ not in scopes:
                continue
            document = self.render(engagement)
            if any(value and document[name] != value for name, value in wanted.items()):
                continue
            if len(page) == limit:
                has_more = True
                break
            page.append((engagement, document))
        next_cursor = encode_cursor(page[-1][0].seq) if has_more else None
        data = [document for _, document in page]
        return JSONResponse({"data": data, "has_more": has_more, "next_cursor": next_cursor})

    async def replace_contacts(self, request: Request) -> Response:
        """PUT /v2/engagements/{id}/contacts: the full set of contact ids; [] clears."""
        self.authorize(request, contract.SCOPE_WRITE, "replace engagement contacts")
        body = await json_object(request)
        engagement = self.find(request)
        problems = contact_id_problems(body.get("contact_ids"), self.is_known_contact)
        if problems:
            raise invalid(problems)
        contact_ids = list(dict.fromkeys(body["contact_ids"]))
        self.store.replace_contacts(engagement.id, contact_ids, self.clock())
        return JSONResponse(self.render(engagement, ["contacts"]))

    # -- admin endpoints (no key needed) --

    async def admin_faults(self, request: Request) -> Response:
        """GET shows the faults; POST changes any of their fields (outage counted from now)."""
        if request.method == "POST":
            try:
                self.faults.update(await json_object(request))
            except FaultsInvalid as error:
                raise invalid(error.problems) from None
        return JSONResponse(self.faults.as_dict())

    async def admin_stats(self, request: Request) -> Response:
        """Requests by endpoint and status, engagements, creates and 200 hits per external_id."""
        return JSONResponse(self.stats.as_dict(len(self.store)))

    async def admin_reset(self, request: Request) -> Response:
        """Forget engagements, stats, faults, added keys and contacts."""
        self.store.clear()
        self.stats = Stats()
        self.faults.reset(Faults())
        self.restore_keys()
        self.added_contacts.clear()
        return JSONResponse({"reset": True})

    async def admin_add_key(self, request: Request) -> Response:
        """Accept a key (or change its scopes): ``{"key": K, "scopes": [...]}``."""
        body = await json_object(request)
        key, scopes = body.get("key"), body.get("scopes", list(contract.ALL_SCOPES))
        if not isinstance(key, str) or not key:
            raise invalid([FieldProblem("key", "required", "key must be a non-empty string")])
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise invalid([FieldProblem("scopes", "type", "scopes must be a list of strings")])
        self.keys[key] = frozenset(scopes)
        return JSONResponse({"key": key, "scopes": sorted(scopes)})

    async def admin_revoke_key(self, request: Request) -> Response:
        """Stop accepting a key: its next request answers 401."""
        key = request.path_params["key"]
        if self.keys.pop(key, None) is None:
            raise Problem(404, "Not Found", "No such key")
        return JSONResponse({"revoked": key})

    async def admin_engagements(self, request: Request) -> Response:
        """Every engagement with all its fields, what was sent included, oldest first."""
        return JSONResponse([self.admin_view(e) for e in self.store.all()])

    async def admin_add_contacts(self, request: Request) -> Response:
        """Make more contact ids known: ``{"contact_ids": [...]}``."""
        body = await json_object(request)
        ids = body.get("contact_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            message = "contact_ids must be a list of strings"
            raise invalid([FieldProblem("contact_ids", "type", message)])
        self.added_contacts.update(ids)
        return JSONResponse({"added": ids})

    def admin_view(self, engagement: Engagement) -> dict[str, object]:
        """The full engagement plus what only the sender knows (participants, workflows)."""
        document = self.render(engagement, contract.EXPAND_VALUES)
        document["participants"] = engagement.participants
        document["run_workflows"] = engagement.run_workflows
        return document


# -- request helpers --------------------------------------------------------------------


def presented_key(header: str | None) -> str | None:
    """The key from ``Authorization: Bearer KEY`` or a bare ``Authorization: KEY``."""
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else header.strip()


def require_scope(scopes: frozenset[str], scope: str, action: str) -> None:
    """403 naming the missing scope."""
    if scope not in scopes:
        detail = f"This API key lacks the {scope} scope, needed to {action}"
        raise Problem(403, "Forbidden", detail)


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400."""
    try:
        raw = await request.body()
    except ClientDisconnect:
        # The client went away mid-body (e.g. killed): nobody reads the answer, but the
        # stats should say what happened rather than count a server error.
        detail = "The client closed the connection before sending the whole body"
        raise Problem(CLIENT_CLOSED, "Client Closed Request", detail) from None
    try:
        # JSON on the wire is UTF-8 (RFC 8259); json.loads alone would also take UTF-16/32.
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise Problem(400, "Bad Request", f"The body is not valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise Problem(400, "Bad Request", "The body must be a JSON object")
    return body


def parse_expand(value: str | None) -> list[str]:
    """The ``expand`` names, in order, without repeats; 400 for an unknown one."""
    names = list(dict.fromkeys(n.strip() for n in (value or "").split(",") if n.strip()))
    unknown = [n for n in names if n not in contract.EXPAND_VALUES]
    if unknown:
        allowed = ", ".join(contract.EXPAND_VALUES)
        message = f"unknown expand value(s) {', '.join(unknown)}; allowed: {allowed}"
        raise Problem(400, "Bad Request", message, [FieldProblem("expand", "invalid", message)])
    return names


def parse_limit(value: str | None) -> int:
    """The page size: 1..100, default 20; 400 otherwise."""
    if value is None:
        return DEFAULT_PAGE_SIZE
    if value.strip().isdigit() and 1 <= int(value) <= 100:
        return int(value)
    message = f"limit must be a whole number from 1 to 100, not {value!r}"
    raise Problem(400, "Bad Request", message, [FieldProblem("limit", "invalid", message)])


def encode_cursor(seq: int) -> str:
    """An opaque cursor for 'after this position'."""
    return base64.urlsafe_b64encode(f"after:{seq}".encode()).decode().rstrip("=")


def decode_cursor(value: str | None) -> int:
    """The position a cursor stands for (0 for none); 400 for a cursor we never gave."""
    if not value:
        return 0
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        label, _, seq = text.partition(":")
        if label == "after" and seq.isdigit():
            return int(seq)
    except (binascii.Error, UnicodeDecodeError):
        pass
    message = "cursor is not one this server gave out"
    raise Problem(400, "Bad Request", message, [FieldProblem("cursor", "invalid", message)])


def contact_id_problems(value: object, is_known: Callable[[str], bool]) -> list[FieldProblem]:
    """A list of well-formed, known contact ids; unknown ones are named together."""
    if not isinstance(value, list):
        return [FieldProblem("contact_ids", "required", "contact_ids must be a list of strings")]
    problems: list[FieldProblem] = []
    unknown: list[str] = []
    for index, item in enumerate(value):
        where = f"contact_ids[{index}]"
        if not isinstance(item, str):
            problems.append(FieldProblem(where, "type", f"{where} must be a string"))
        elif not contract.CONTACT_ID_PATTERN.match(item):
            message = f"{item!r} is not a contact id (cnt_ and letters or digits)"
            problems.append(FieldProblem(where, "invalid_id", message))
        elif not is_known(item):
            unknown.append(item)
    if unknown:
        message = f"unknown contact ids: {', '.join(unknown)}"
        problems.append(FieldProblem("contact_ids", "unknown_contact", message))
    return problems


# -- the outermost layer ----------------------------------------------------------------


class _Wire:
    """Request ids, X-Api-Version, stats by endpoint and status, and dropped connections."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(8)
        scope["sandbox.request_id"] = request_id
        dropped = False

        async def stamped_send(message: Message) -> None:
            nonlocal dropped
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if DROP_HEADER in headers:
                    dropped = True
                    self.count(scope, "dropped")
                    await close_without_answer(send)
                    return
                headers["X-Api-Version"] = API_VERSION
                headers["X-Request-Id"] = request_id
                self.count(scope, str(message["status"]))
            elif dropped:
                return
            await send(message)

        await self.app(scope, receive, stamped_send)

    def count(self, scope: Scope, outcome: str) -> None:
        """Count an API request under ``METHOD /path/{template}``; admin calls are not counted."""
        if scope["path"].startswith("/_sandbox"):
            return
        route = scope.get("route")
        path = getattr(route, "path", None) or "(no route)"
        path = path.removeprefix("/api") if path.startswith("/api/") else path
        self.sandbox.stats.requests[f"{scope['method']} {path}"][outcome] += 1


async def close_without_answer(send: Callable[[Message], Awaitable[None]]) -> None:
    """Close the client's connection with no HTTP answer at all (a lost response).

    Only the server's transport can do that: uvicorn's ``send`` is a method of its
    request cycle, which holds it. Raising instead would make uvicorn answer 500.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("the sandbox dropped the connection after storing")
    transport.abort()
    # Let connection_lost run, so uvicorn sees a disconnect, not an app that never answered.
    for _ in range(10):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)
