"""Media preflight (``--check-media``): will the server be able to fetch each recording?

AskElephant fetches ``media_url`` synchronously during create and answers 422 when it
cannot; a preflight finds most of those rows before any slow create. Per distinct URL:
resolve the host (every A/AAAA answer must be public), ``HEAD`` (falling back to a one-byte
ranged ``GET``) connected to the address just checked (DNS rebinding cannot redirect it),
follow redirects by hand so none leads to a private address, and require a 2xx with an
``audio/*`` or ``video/*`` content type. Only status and headers are read, never a body,
and each URL has one overall deadline. Results are cached in the ledger.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from importer.errors import BadRedirect, TooManyRedirects, UnreadableAnswer
from importer.ledger import Ledger
from importer.rows import contract, urlsafety
from importer.settings import DEFAULT_CONCURRENCY

Resolver = Callable[[str], Awaitable[list[str]]]
URL_DEADLINE = 30.0
"""Seconds for one URL's whole preflight, redirects included: a trickle cannot stall it."""


@dataclass(frozen=True)
class MediaVerdict:
    """Whether a media URL passed the preflight, and why not."""

    url: str
    ok: bool
    detail: str


async def check_media(
    url: str, client: httpx.AsyncClient, resolve: Resolver, *, deadline: float = URL_DEADLINE
) -> MediaVerdict:
    """Run every preflight check on one URL (and on every URL it redirects to).

    Within ``deadline`` seconds for the whole URL, redirects included; any URL problem
    (one httpx cannot use, an odd redirect) is this URL's verdict, never an exception.
    """
    try:
        return await asyncio.wait_for(_check_media(url, client, resolve), deadline)
    except asyncio.TimeoutError:
        return MediaVerdict(url, False, f"no complete answer within {deadline:g} s")
    except (httpx.InvalidURL, ValueError, UnicodeError) as error:
        # e.g. an IDN host httpx refuses: the URL cannot be fetched as written.
        reason = str(error)[:200] or type(error).__name__
        return MediaVerdict(url, False, f"cannot be fetched as written ({reason})")


async def _check_media(url: str, client: httpx.AsyncClient, resolve: Resolver) -> MediaVerdict:
    pinned: dict[str, str] = {}
    """The address each URL's host was checked at: the one connected to (no rebinding)."""

    async def refuse(current: str) -> str | None:
        problem, address = await _check_host(current, resolve)
        if address is not None:
            pinned[current] = address
        return problem

    async def fetch(current: str) -> httpx.Response:
        response = await urlsafety.peek(client, "HEAD", current, pinned[current])
        if response.status_code in (403, 405, 501) or (
            200 <= response.status_code < 300 and not response.headers.get("content-type")
        ):
            response = await urlsafety.peek(
                client, "GET", current, pinned[current], {"Range": "bytes=0-0"}
            )
        return response

    problem = await refuse(url)
    if problem:
        return MediaVerdict(url, False, problem)
    try:
        answer = await urlsafety.follow_redirects(url, fetch, refuse)
    except httpx.HTTPError as error:
        return MediaVerdict(url, False, f"could not be fetched ({type(error).__name__})")
    except (TooManyRedirects, BadRedirect, UnreadableAnswer) as error:
        return MediaVerdict(url, False, str(error))
    if isinstance(answer, str):
        return MediaVerdict(url, False, answer)
    if not 200 <= answer.status_code < 300:
        return MediaVerdict(url, False, f"answered HTTP {answer.status_code}")
    content_type = answer.headers.get("content-type", "")
    if not contract.is_media_content_type(content_type):
        shown = content_type or "no content type"
        return MediaVerdict(url, False, f"serves {shown}, not audio/* or video/*")
    return MediaVerdict(url, True, content_type)


async def _check_host(url: str, resolve: Resolver) -> tuple[str | None, str | None]:
    """The problem with the URL's host, or the checked address to connect to."""
    problem = contract.check_media_url(url)
    if problem is not None:
        return problem.message, None
    host = urlsplit(url).hostname or ""
    if urlsafety.parse_ip_literal(host) is not None:
        return None, host  # a public literal: check_media_url already judged it
    try:
        addresses = await resolve(host)
    except (OSError, UnicodeError, asyncio.TimeoutError) as error:
        return f"host {host!r} cannot be resolved ({type(error).__name__})", None
    if not addresses:
        return f"host {host!r} has no addresses", None
    private = urlsafety.first_private(addresses)
    if private is not None:
        return f"host {host!r} resolves to {private}, a private or internal address", None
    return None, addresses[0].split("%", 1)[0]


async def preflight(
    urls: Iterable[str],
    ledger: Ledger,
    *,
    client: httpx.AsyncClient | None = None,
    resolve: Resolver = urlsafety.system_resolver,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_age: dt.timedelta = dt.timedelta(hours=24),
) -> dict[str, int]:
    """Check each URL not checked within ``max_age``; results go to the ledger's cache."""
    own_client = client is None
    http = client or httpx.AsyncClient(
        timeout=httpx.Timeout(15.0), follow_redirects=False, headers={"User-Agent": "importer"}
    )
    semaphore = asyncio.Semaphore(concurrency)
    counts = {"checked": 0, "cached": 0, "failed": 0}
    oldest = dt.datetime.now(dt.timezone.utc) - max_age

    async def one(url: str) -> None:
        cached = ledger.media_check(url)
        if cached and dt.datetime.fromisoformat(cached["checked_at"]) >= oldest:
            counts["cached"] += 1
            counts["failed"] += 0 if cached["ok"] else 1
            return
        async with semaphore:
            verdict = await check_media(url, http, resolve)
        ledger.record_media_check(url, verdict.ok, verdict.detail)
        counts["checked"] += 1
        counts["failed"] += 0 if verdict.ok else 1

    try:
        await asyncio.gather(*(one(url) for url in dict.fromkeys(urls)))
    finally:
        if own_client:
            await http.aclose()
    return counts
