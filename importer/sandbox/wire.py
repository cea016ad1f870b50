"""The sandbox's outermost layer: request ids, the API version, stats, lost answers.

``Wire`` wraps the routed app. It stamps every answer with ``X-Api-Version`` and
``X-Request-Id``, counts it in the stats under ``METHOD /path/{template}`` (admin calls
are not counted), and turns an answer carrying ``DROP_HEADER`` into a closed connection
with no answer at all: the "stored, then the response was lost" fault.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from importer.sandbox.state import SandboxState

API_VERSION = "v2"
# The create handler answers with this header to ask Wire to close the connection instead.
DROP_HEADER = "x-sandbox-drop-connection"
ADMIN_PREFIX = "/_sandbox"


class Wire:
    """Request ids, X-Api-Version, stats by endpoint and status, and dropped connections."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

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
        if scope["path"].startswith(ADMIN_PREFIX):
            return
        route = scope.get("route")
        path = getattr(route, "path", None) or "(no route)"
        path = path.removeprefix("/api") if path.startswith("/api/") else path
        self.state.stats.requests[f"{scope['method']} {path}"][outcome] += 1


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
