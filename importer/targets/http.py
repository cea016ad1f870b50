"""One HTTP request, with httpx's failures turned into our errors; shared by every target.

The key is scrubbed from every message: a socket or TLS reason may quote a header.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from importer.errors import FatalError, ServerUnavailable, TransientError


async def send_request(
    client: httpx.AsyncClient,
    api_key: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """Send one request; no answer at all becomes ``ServerUnavailable`` (maybe applied)."""
    content = None
    if json_body is not None:
        content = json.dumps(json_body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        headers = {**(headers or {}), "Content-Type": "application/json"}
    try:
        return await client.request(method, path, content=content, headers=headers, params=params)
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
        raise ServerUnavailable(
            f"connection failed ({type(error).__name__}{': ' + reason if reason else ''}{hint})"
        ) from None
    except httpx.HTTPError as error:
        # E.g. a body that cannot be decoded: the request may have been applied.
        raise TransientError(f"the answer could not be read ({type(error).__name__})") from None


def scrub(text: str, api_key: str) -> str:
    """The text with the key replaced by a placeholder."""
    return text.replace(api_key, "[API key]") if api_key else text
