"""Where a URL may lead: the host and redirect rules both the importer and the sandbox apply.

A media URL is fetched by a server (AskElephant's, or the preflight on this machine), so it
must never lead to this machine or a private network: not by its host, not by what the
host resolves to, not by any redirect. Both sides use this module:

* ``importer.plan.media`` (the ``--check-media`` preflight) and ``importer.rows.contract`` (the
  offline media URL rule, shared with ``validate``),
* ``importer.sandbox.media_check`` (the sandbox's ``media_check`` modes).

Both fetch with ``peek``: connected to the address just checked, so a host that resolves
elsewhere a moment later (DNS rebinding) cannot move the request.

    >>> parse_ip_literal("0x7f.1")
    IPv4Address('127.0.0.1')
    >>> is_public_address(parse_ip_literal("::ffff:10.0.0.1"))
    False
    >>> first_private(["93.184.216.34", "fe80::1%eth0"])
    'fe80::1%eth0'
    >>> redirect_target("https://a.example.com/x/1.mp3", "../2.mp3")
    'https://a.example.com/2.mp3'
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar
from urllib.parse import urljoin

import httpx

from importer.errors import BadRedirect, TooManyRedirects, UnreadableAnswer

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Refusal = TypeVar("Refusal")

MAX_REDIRECTS = 5
"""Redirects followed by hand before giving up; every hop is checked like the first URL."""


_IPV4_SPELLING = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)
"""Every character an IPv4 literal can be spelt with (decimal, octal, hex, dots)."""


def parse_ip_literal(host: str) -> Address | None:
    """The address a host names literally, including the odd IPv4 forms browsers accept.

    ``127.1``, ``0x7f.0.0.1`` and ``2130706433`` all mean 127.0.0.1 to a resolver, so a
    check that only knew dotted quads could be walked around.
    """
    bare = host.strip("[]")
    head = bare.split("%", 1)[0]
    if ":" not in head and not _IPV4_SPELLING.fullmatch(head):
        # Neither IPv6 (no colon) nor any IPv4 spelling: a name, answered without the cost of
        # two failed parses (this runs for every row of a manifest).
        return None
    try:
        return ipaddress.ip_address(head)
    except ValueError:
        pass
    # A resolver ignores one trailing dot (``127.0.0.1.`` is 127.0.0.1) and reads ``0X`` as hex.
    bare = bare[:-1] if bare.endswith(".") else bare
    if re.fullmatch(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}", bare, re.IGNORECASE):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


IPV4_IN_IPV6 = (
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated): ::7f00:1 is 127.0.0.1
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64: reaches any IPv4 through a translator
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64
)
"""IPv6 ranges that stand for IPv4 addresses without a way to judge which: all refused."""


def is_public_address(address: Address) -> bool:
    """False for private, loopback, link-local and every other non-global range.

    An IPv6 address that carries an IPv4 one is judged by it (IPv4-mapped, 6to4, Teredo);
    the ranges in ``IPV4_IN_IPV6`` are refused whatever they embed.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in IPV4_IN_IPV6):
            return False
        teredo_client = address.teredo[1] if address.teredo else None
        embedded = address.ipv4_mapped or address.sixtofour or teredo_client
        if embedded is not None:
            return is_public_address(embedded)
    return bool(address.is_global) and not address.is_multicast


def is_local_name(host: str) -> bool:
    """``localhost`` and its subdomains always mean this machine."""
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def first_private(addresses: Iterable[str]) -> str | None:
    """The first resolved address that is not public (or not an address at all), if any."""
    for address in addresses:
        literal = parse_ip_literal(address)
        if literal is None or not is_public_address(literal):
            return address
    return None


# -- resolving ---------------------------------------------------------------------------


def resolve_host(host: str) -> list[str]:
    """Every address the system resolver gives for ``host``; OSError when it does not resolve.

    Blocking: the sandbox runs it in a thread, under its own timeout.
    """
    infos = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def system_resolver(host: str, timeout: float = 5.0) -> list[str]:
    """Every address the system resolver gives for ``host``, without blocking the loop."""
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, 443, type=socket.SOCK_STREAM), timeout=timeout
    )
    return sorted({str(info[4][0]) for info in infos})


# -- redirects ----------------------------------------------------------------------------


def redirect_target(current: str, location: str) -> str:
    """The absolute URL a ``Location`` header sends to (relative to the current URL).

    Browsers read ``https:\\\\127.0.0.1\\x`` as ``https://127.0.0.1/x``, Python as a path:
    such a Location raises BadRedirect rather than be read either way.
    """
    if re.search(r"[\\\x00-\x20\x7f]", location.strip()):
        raise BadRedirect(location)
    return urljoin(current, location.strip())


async def follow_redirects(
    url: str,
    fetch: Callable[[str], Awaitable[httpx.Response]],
    refuse: Callable[[str], Awaitable[Refusal | None]],
) -> httpx.Response | Refusal:
    """Fetch ``url`` and follow its redirects by hand, never automatically.

    ``fetch`` makes the request(s) for one URL and answers the response that decides it;
    a redirect answer moves on to its target, after ``refuse`` has passed it (``None``) or
    said why not (returned as is, the target never fetched). The first URL is the caller's
    to check. Raises TooManyRedirects after ``MAX_REDIRECTS`` hops, BadRedirect for a
    Location that cannot be read one way, and whatever ``fetch`` raises.
    """
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        if hop:
            refusal = await refuse(current)
            if refusal is not None:
                return refusal
        response = await fetch(current)
        if not response.is_redirect:
            return response
        current = redirect_target(current, response.headers.get("location", ""))
    raise TooManyRedirects(url, MAX_REDIRECTS)


# -- pinned fetching ----------------------------------------------------------------------


async def peek(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    address: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """The status and headers of ``url``, connected to ``address``; the body is never read.

    The request goes to the checked address itself, with the name kept in the ``Host``
    header and in TLS's SNI (so the certificate is checked against the name): what the
    host resolves to a moment later does not matter. Closing unread means a gzip bomb or a
    trickling body costs nothing, and nothing is inflated.
    """
    target = httpx.URL(url)
    request = client.build_request(
        method,
        target.copy_with(host=address),
        headers={
            **(headers or {}),
            "Host": target.netloc.decode("ascii"),
            "Accept-Encoding": "identity",
        },
        extensions={"sni_hostname": target.host},
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.InvalidURL as error:
        # httpx reads a redirect's Location as it answers: one it cannot parse lands here.
        raise UnreadableAnswer(f"answered with a redirect that cannot be read ({error})") from None
    await response.aclose()
    return response
