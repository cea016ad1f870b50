"""The sandbox's HTTP face: the app factory and the route table.

``create_app(settings)`` returns an ASGI app: ``Wire`` (request ids, X-Api-Version,
stats, dropped connections) around a Starlette router whose routes come from
``ROUTE_GROUPS``. Each group turns the sandbox's state into routes; a new API (another
target) is one more module with a route group, added to the tuple. Where the rest lives:

    state.py        engagements, keys, faults, stats; the clocks; auth, rate limit, outage
    api.py          the engagements API handlers       admin.py    /_sandbox handlers
    validation.py   request rules judged offline       media_check.py  rules needing DNS/HTTP
    params.py       key, JSON body, expand/limit/cursor rendering.py    the API document, ETag
    problems.py     problem+json error answers         wire.py     the outermost ASGI layer
    faults.py       latency, 429, 500, drops, outage   store.py    engagements in memory/SQLite
    devrev.py       DevRev's engagements.create/list (not idempotent), its own route group
    devrev_rules.py DevRev's published create rules   devrev_accounts.py  accounts.list's

Each API path is also served under ``/api`` so a base URL ending in ``/api`` works.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from importer.rows import urlsafety
from importer.sandbox.admin import AdminApi
from importer.sandbox.api import EngagementsApi
from importer.sandbox.devrev import devrev_routes
from importer.sandbox.media_check import MediaChecker, Resolve
from importer.sandbox.problems import EXCEPTION_HANDLERS
from importer.sandbox.settings import SandboxSettings
from importer.sandbox.state import Clock, SandboxState, Sleep
from importer.sandbox.wire import ADMIN_PREFIX, Wire

RouteGroup = Callable[[SandboxState], list[BaseRoute]]
Endpoint = Callable[[Request], Awaitable[Response]]
API_PREFIXES = ("", "/api")


def engagement_routes(state: SandboxState) -> list[BaseRoute]:
    """The engagements API, under ``/`` and ``/api``."""
    api = EngagementsApi(state)
    return routes(
        API_PREFIXES,
        ("/v2/engagements", api.create_engagement, "POST"),
        ("/v2/engagements", api.list_engagements, "GET"),
        ("/v2/engagements/{engagement_id}", api.get_engagement, "GET"),
        ("/v2/engagements/{engagement_id}/contacts", api.replace_contacts, "PUT"),
    )


def admin_routes(state: SandboxState) -> list[BaseRoute]:
    """The admin endpoints under ``/_sandbox``."""
    admin = AdminApi(state)
    return routes(
        (ADMIN_PREFIX,),
        ("/faults", admin.faults, "POST"),
        ("/faults", admin.faults, "GET"),
        ("/stats", admin.stats, "GET"),
        ("/reset", admin.reset, "POST"),
        ("/keys", admin.add_key, "POST"),
        ("/keys/{key}", admin.revoke_key, "DELETE"),
        ("/engagements", admin.engagements, "GET"),
        ("/contacts", admin.add_contacts, "POST"),
    )


def routes(prefixes: Sequence[str], *table: tuple[str, Endpoint, str]) -> list[BaseRoute]:
    """One route per (path, endpoint, method) under each prefix, prefixes outermost."""
    return [
        Route(prefix + path, endpoint, methods=[method])
        for prefix in prefixes
        for path, endpoint, method in table
    ]


ROUTE_GROUPS: tuple[RouteGroup, ...] = (engagement_routes, admin_routes, devrev_routes)
"""Every API the sandbox serves, in routing order."""


def create_app(
    settings: SandboxSettings,
    *,
    resolve: Resolve | None = None,
    media_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.time,
    monotonic: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    route_groups: Sequence[RouteGroup] = ROUTE_GROUPS,
) -> ASGIApp:
    """The sandbox as an ASGI app.

    ``resolve`` and ``media_transport`` let tests stay offline; ``clock`` (wall time),
    ``monotonic`` (rate limit and outage window) and ``sleep`` (create latency) let them
    stay off the wall clock.
    """
    media = MediaChecker(settings.media_check, resolve or urlsafety.resolve_host, media_transport)
    state = SandboxState(settings, media, clock=clock, monotonic=monotonic, sleep=sleep)
    app = Starlette(
        routes=[route for group in route_groups for route in group(state)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.router.redirect_slashes = False
    return Wire(app, state)
