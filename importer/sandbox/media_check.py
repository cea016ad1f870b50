"""The media_url rules that need a resolver or the network, per the ``media_check`` mode.

``extension`` (the default) decides the content type from the URL's file extension and
needs no network, except to resolve the host; ``fetch`` really asks the media server
(``HEAD``, then a one-byte ranged ``GET``), following redirects by hand under the shared
rules of ``importer.rows.urlsafety``, each hop connected to the address just checked (as the
importer's preflight does: DNS rebinding cannot move it), bodies never read, one deadline
per URL. Either way the host must not resolve to a private address. Documentation names
(``example.com``...) are never looked up, so tests and examples stay off the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import httpx

from importer.errors import BadRedirect, TooManyRedirects, UnreadableAnswer
from importer.rows import contract, urlsafety
from importer.rows.contract import FieldProblem

# RFC 2606/6761 names: never looked up, so tests and examples stay off the network.
DOCUMENTATION_DOMAINS = ("example", "example.com", "example.net", "example.org")
UNRESOLVABLE_DOMAINS = ("test", "invalid")
DNS_TIMEOUT_SECONDS = 2.0
FETCH_TIMEOUT_SECONDS = 10.0
FETCH_DEADLINE_SECONDS = 30.0
"""One URL's whole fetch, redirects included: a trickling media host cannot hold a create."""

Resolve = Callable[[str], list[str]]
"""A blocking resolver (run in a thread): host name to address strings; OSError if none."""


class MediaChecker:
    """The media_url rules that need a resolver or the network, per the media_check mode."""

    def __init__(
        self,
        mode: str,
        resolve: Resolve = urlsafety.resolve_host,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.mode = mode
        self._resolve = resolve
        self._transport = transport
        self._cache: dict[str, list[str] | None] = {}

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
        if urlsafety.parse_ip_literal(host) is not None:
            return None
        addresses = await self.addresses(host)
        if addresses is None and self.mode == "fetch":
            message = f"media_url host {host!r} cannot be resolved"
            return FieldProblem("media_url", "unresolvable", message)
        private = urlsafety.first_private(addresses or ())
        if private is not None:
            message = (
                f"media_url host {host!r} resolves to {private}, a private, "
                "loopback or link-local address"
            )
            return FieldProblem("media_url", "private_address", message)
        return None

    async def addresses(self, host: str) -> list[str] | None:
        """What host resolves to (cached), [] for documentation names, None if unresolvable."""
        name = host.rstrip(".").lower()
        if _under(name, DOCUMENTATION_DOMAINS):
            return []
        if _under(name, UNRESOLVABLE_DOMAINS):
            return None
        if name not in self._cache:
            self._cache[name] = await self._lookup(name)
        return self._cache[name]

    async def _lookup(self, name: str) -> list[str] | None:
        try:
            found = await asyncio.wait_for(
                asyncio.to_thread(self._resolve, name), DNS_TIMEOUT_SECONDS
            )
        except (OSError, UnicodeError, asyncio.TimeoutError):
            return None
        return [text.split("%", 1)[0] for text in found]

    async def _fetch(self, url: str) -> FieldProblem | None:
        try:
            answer = await asyncio.wait_for(self._fetch_pinned(url), FETCH_DEADLINE_SECONDS)
        except asyncio.TimeoutError:
            message = f"media_url gave no complete answer within {FETCH_DEADLINE_SECONDS:g} s"
            return FieldProblem("media_url", "unreachable", message)
        except (httpx.InvalidURL, ValueError, UnicodeError) as error:
            message = f"media_url cannot be fetched as written ({str(error)[:200]})"
            return FieldProblem("media_url", "unreachable", message)
        except httpx.HTTPError as error:
            message = f"media_url could not be fetched ({type(error).__name__}: {error})"
            return FieldProblem("media_url", "unreachable", message)
        except (TooManyRedirects, UnreadableAnswer) as error:
            return FieldProblem("media_url", "unreachable", f"media_url {error}")
        except BadRedirect as error:
            return FieldProblem("media_url", "redirect", f"media_url {error}")
        if isinstance(answer, FieldProblem):
            return answer
        return _media_problem(answer.status_code, answer.headers.get("content-type"))

    async def _fetch_pinned(self, url: str) -> httpx.Response | FieldProblem:
        async with httpx.AsyncClient(
            transport=self._transport, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False
        ) as client:

            async def fetch(current: str) -> httpx.Response:
                address = await self._checked_address(current)
                # HEAD first; many signed URLs refuse HEAD, so a one-byte GET decides.
                head = await self._peek(client, "HEAD", current, address)
                if head.is_redirect or (
                    head.is_success
                    and contract.is_media_content_type(head.headers.get("content-type"))
                ):
                    return head
                # Closed unread: a server ignoring Range must not send it all.
                return await self._peek(client, "GET", current, address, {"Range": "bytes=0-0"})

            return await urlsafety.follow_redirects(url, fetch, self._hop_problem)

    async def _checked_address(self, url: str) -> str | None:
        """The address the URL's host was checked at (its literal, or the first resolved)."""
        host = urlsplit(url).hostname or ""
        if urlsafety.parse_ip_literal(host) is not None:
            return host
        addresses = await self.addresses(host)
        return addresses[0] if addresses else None  # None: a documentation name

    @staticmethod
    async def _peek(
        client: httpx.AsyncClient,
        method: str,
        url: str,
        address: str | None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        if address is not None:
            return await urlsafety.peek(client, method, url, address, headers)
        async with client.stream(method, url, headers=headers) as response:
            return response

    async def _hop_problem(self, target: str) -> FieldProblem | None:
        """Why a redirect target may not be followed: the same rules as the media URL."""
        static = contract.check_media_url(target)
        if static is not None:
            return FieldProblem(
                "media_url", "redirect", f"media_url redirects to {target}: {static.message}"
            )
        problem = await self._host_problem(target)
        if problem is not None:
            return FieldProblem("media_url", "redirect", f"redirected: {problem.message}")
        return None


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
