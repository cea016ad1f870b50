"""One HTTP request, with httpx's failures turned into our errors; shared by every target.

The key is scrubbed from every message: a socket or TLS reason may quote a header. The
answer is read whole but bounded (``importer.targets.answers``), within an overall deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from importer import __version__
from importer.errors import ApiError, FatalError, ServerUnavailable, TransientError
from importer.rate_window import RateHint, rate_hint
from importer.targets.answers import Answer, read_answer

HintListener = Callable[[RateHint], None]
"""Told each answer's ``X-RateLimit-*`` hint: the sender's pacer (``Pacer.hinted``)."""


def open_client(
    base_url: str,
    api_key: str,
    *,
    timeout: httpx.Timeout,
    max_connections: int,
    transport: httpx.AsyncBaseTransport | None,
    extra_headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """The connection pool a target speaks through: the key only in its headers, no redirects."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={
            "Authorization": f"Bearer {api_key}",
            "User-Agent": f"engagement-importer/{__version__}",
            "Accept": "application/json",
            **(extra_headers or {}),
        },
        timeout=timeout,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        transport=transport,
        follow_redirects=False,
    )


async def send_request(
    client: httpx.AsyncClient,
    api_key: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    deadline: float | None = None,
    on_hint: HintListener | None = None,
) -> Answer:
    """Send one request and read its bounded answer, all within ``deadline`` seconds.

    No answer at all (or none in time) becomes ``ServerUnavailable``: maybe applied. An
    answer's ``X-RateLimit-*`` headers are reported to ``on_hint``; the pacer decides.
    """
    content = None
    if json_body is not None:
        content = json.dumps(json_body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        headers = {**(headers or {}), "Content-Type": "application/json"}

    async def exchange() -> Answer:
        async with client.stream(
            method, path, content=content, headers=headers, params=params
        ) as response:
            return await read_answer(response)

    try:
        answer = await asyncio.wait_for(exchange(), timeout=deadline)
    except asyncio.TimeoutError:
        # A per-read timeout never fires for a body trickling one byte a second.
        raise ServerUnavailable(
            f"no answer in time (the whole answer took over {deadline:g} s); "
            "the request may have been applied"
        ) from None
    except httpx.TimeoutException as error:
        raise ServerUnavailable(
            f"no answer in time ({type(error).__name__}); the request may have been applied"
        ) from None
    except httpx.LocalProtocolError as error:
        # Raised before anything is sent, e.g. for a header value h11 refuses: its text
        # would quote the Authorization header, so it is never shown.
        raise FatalError(
            f"the request could not be formed ({type(error).__name__}); "
            "check that the API key is one line of plain characters"
        ) from None
    except httpx.TransportError as error:
        # The socket's or TLS library's words help (e.g. https to an http port); the key
        # is scrubbed from them all the same.
        reason = scrub(str(error).strip()[:200], api_key)
        hint = ""
        if "SSL" in reason or "TLS" in reason:
            hint = "; does the server speak https? (the sandbox speaks plain http)"
        elif "Receive buffer too long" in reason:  # h11's limit on an answer's head
            hint = "; the answer's headers are over 100 KB, more than any API sends"
        raise ServerUnavailable(
            f"connection failed ({type(error).__name__}{': ' + reason if reason else ''}{hint})"
        ) from None
    except httpx.HTTPError as error:
        # E.g. a body that cannot be decoded: the request may have been applied.
        raise TransientError(f"the answer could not be read ({type(error).__name__})") from None
    if on_hint is not None and (window := rate_hint(answer.headers, time.time())) is not None:
        on_hint(window)
    return answer


def scrub(text: str, api_key: str) -> str:
    """The text with the key replaced by a placeholder."""
    return text.replace(api_key, "[API key]") if api_key else text


def scrub_value(value: Any, api_key: str) -> Any:
    """``value`` (JSON from a server) with the key replaced in every string."""
    if isinstance(value, str):
        return scrub(value, api_key)
    if isinstance(value, list):
        return [scrub_value(item, api_key) for item in value]
    if isinstance(value, dict):
        return {scrub(str(k), api_key): scrub_value(v, api_key) for k, v in value.items()}
    return value


def scrub_error(error: ApiError, api_key: str) -> ApiError:
    """The server's words in ``error`` (message, detail, field errors, request id), scrubbed.

    A hostile or careless server may echo the Authorization header in any of them.
    """
    error.args = tuple(scrub(str(arg), api_key) for arg in error.args)
    error.detail = scrub(error.detail, api_key) if error.detail else error.detail
    error.field_errors = scrub_value(error.field_errors, api_key)
    error.request_id = scrub(error.request_id, api_key) if error.request_id else None
    return error
