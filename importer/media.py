"""Media preflight (``--check-media``): will the server be able to fetch each recording?

AskElephant fetches ``media_url`` synchronously during create and answers 422 when it
cannot; a preflight finds most of those rows before any slow create. Per distinct URL:
resolve the host (every A/AAAA answer must be public), ``HEAD`` (falling back to a one-byte
ranged ``GET``), follow redirects by hand so none leads to a private address, and require
a 2xx with an ``audio/*`` or ``video/*`` content type. Results are cached in the ledger.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from importer import contract, defaults, urlsafety
from importer.ledger import Ledger

Resolver = Callable[[str], Awaitable[list[str]]]


@dataclass(frozen=True)
class MediaVerdict:
    """Whether a media URL passed the preflight, and why not."""

    url: str
    ok: bool
    detail: str


async def check_media(url: str, client: httpx.AsyncClient, resolve: Resolver) -> MediaVerdict:
    """Run every preflight check on one URL (and on every URL it redirects to)."""

    async def fetch(current: str) -> httpx.Response:
        response = await client.head(current)
        if response.status_code in (403, 405, 501) or (
            200 <= response.status_code < 300 and not response.headers.get("content-type")
        ):
            response = await client.get(current, headers={"Range": "bytes=0-0"})
        return response

    async def refuse(current: str) -> str | None:
        return await _check_host(current, resolve)

    problem = await _check_host(url, resolve)
    if problem:
        return MediaVerdict(url, False, problem)
    try:
        answer = await urlsafety.follow_redirects(url, fetch, refuse)
    except httpx.HTTPError as error:
        return MediaVerdict(url, False, f"could not be fetched ({type(error).__name__})")
    except urlsafety.TooManyRedirects as error:
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


async def _check_host(url: str, resolve: Resolver) -> str | None:
    problem = contract.check_media_url(url)
    if problem is not None:
        return problem.message
    host = urlsplit(url).hostname or ""
    if urlsafety.parse_ip_literal(host) is not None:
        return None  # a public literal: check_media_url already judged it
    try:
        addresses = await resolve(host)
    except (OSError, asyncio.TimeoutError) as error:
        return f"host {host!r} cannot be resolved ({type(error).__name__})"
    if not addresses:
        return f"host {host!r} has no addresses"
    private = urlsafety.first_private(addresses)
    if private is not None:
        return f"host {host!r} resolves to {private}, a private or internal address"
    return None


async def preflight(
    urls: Iterable[str],
    ledger: Ledger,
    *,
    client: httpx.AsyncClient | None = None,
    resolve: Resolver = urlsafety.system_resolver,
    concurrency: int = defaults.CONCURRENCY,
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
