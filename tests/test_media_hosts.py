"""Hostile media hosts (``--check-media``): rebinding DNS, bombs, trickles, odd URLs.

A public media host cannot exist in an offline test, so names are resolved by an injected
resolver (never the machine's) and the preflight's connections are routed by a small
transport to a hostile HTTP server on 127.0.0.1 (tests/hostile_server.py), which records
where each request was really meant to go: the pinned address, the Host header, the SNI.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest

from importer.errors import BadRedirect
from importer.events import HumanReporter
from importer.ledger import Ledger
from importer.pipeline import plan_manifest
from importer.plan.media import MediaVerdict, check_media
from importer.plan.planner import PlannedRow
from importer.rows import urlsafety
from importer.rows.validate import MappingOptions
from importer.settings import ImportSettings
from tests.conftest import Sandbox, engagement_body
from tests.factories import row, run_cli, write_manifest
from tests.hostile_server import Answer, HostileServer, Request, respond

PUBLIC = "93.184.216.34"
OTHER_PUBLIC = "93.184.216.35"


class Routed(httpx.AsyncBaseTransport):
    """Sends every request to the hostile server, recording where it was meant to go."""

    def __init__(self, server: HostileServer) -> None:
        self.port = int(server.base_url.rsplit(":", 1)[1])
        self.inner = httpx.AsyncHTTPTransport()
        self.meant: list[tuple[str, str, str | None, str]] = []
        """(method, URL host connected to, Host header, SNI name) per request."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sni = request.extensions.get("sni_hostname")
        self.meant.append((request.method, request.url.host, request.headers.get("host"), sni))
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Rebinding:
    """A resolver answering ``first`` once per name, then ``later`` (a DNS rebinding)."""

    def __init__(self, first: dict[str, list[str]], later: list[str]) -> None:
        self.first, self.later = first, later
        self.calls: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        if host in self.first and self.calls.count(host) == 1:
            return self.first[host]
        if host in self.first:
            return self.later
        raise OSError(f"unknown host {host}")


def check(
    url: str, server: HostileServer, resolve: Callable[[str], Any], **options: Any
) -> tuple[MediaVerdict, Routed]:
    routed = Routed(server)

    async def go() -> MediaVerdict:
        async with httpx.AsyncClient(transport=routed) as client:
            return await check_media(url, client, resolve, **options)

    return asyncio.run(go()), routed


def audio_answer(request: Request, out: BinaryIO) -> None:
    respond(out, 200, b"", content_type="audio/mpeg")


# -- 12: DNS rebinding: connect to the checked address, every hop ------------------------------


def test_the_preflight_connects_to_the_address_it_checked_keeping_host_and_sni() -> None:
    resolve = Rebinding({"media.rebind.example": [PUBLIC]}, later=["127.0.0.1"])
    with HostileServer(audio_answer) as server:
        verdict, routed = check("https://media.rebind.example/a.mp3", server, resolve)

    assert verdict.ok, verdict
    assert routed.meant == [("HEAD", PUBLIC, "media.rebind.example", "media.rebind.example")]
    assert resolve.calls == ["media.rebind.example"]  # never asked again, never rebound


def test_every_redirect_hop_is_pinned_to_its_own_checked_address() -> None:
    def answer(request: Request, out: BinaryIO) -> None:
        if request.headers["host"] == "first.rebind.example":
            respond(out, 302, b"", {"Location": "https://second.rebind.example:8443/b.mp3"})
        else:
            audio_answer(request, out)

    resolve = Rebinding(
        {"first.rebind.example": [PUBLIC], "second.rebind.example": [OTHER_PUBLIC]},
        later=["127.0.0.1"],
    )
    with HostileServer(answer) as server:
        verdict, routed = check("https://first.rebind.example/a.mp3", server, resolve)

    assert verdict.ok, verdict
    assert routed.meant == [
        ("HEAD", PUBLIC, "first.rebind.example", "first.rebind.example"),
        ("HEAD", OTHER_PUBLIC, "second.rebind.example:8443", "second.rebind.example"),
    ]


# -- 13: bounded reads, never inflated, one deadline per URL -----------------------------------


def head_refused_then(answer: Callable[[Request, BinaryIO], None]) -> Any:
    def handle(request: Request, out: BinaryIO) -> None:
        if request.method == "HEAD":
            respond(out, 405, b"")
        else:
            answer(request, out)

    return handle


async def public(host: str) -> list[str]:
    return [PUBLIC]


def test_a_gzip_bomb_is_never_read_nor_inflated() -> None:
    bomb = gzip.compress(b"\0" * 200_000_000, compresslevel=1)

    def send_bomb(request: Request, out: BinaryIO) -> None:
        respond(out, 200, bomb, {"Content-Encoding": "gzip"}, content_type="audio/mpeg")

    with HostileServer(head_refused_then(send_bomb)) as server:
        tracemalloc.start()
        try:
            verdict, routed = check("https://media.example.com/bomb.mp3", server, public)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert verdict.ok, verdict
    assert [m[0] for m in routed.meant] == ["HEAD", "GET"]
    assert peak < 20_000_000, peak


def trickle_body(trickled_out: threading.Event) -> Answer:
    """Headers at once, then a body of one byte every 0.2 s for 20 s."""

    def answer(request: Request, out: BinaryIO) -> None:
        out.write(b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nContent-Length: 100\r\n\r\n")
        out.flush()
        for _ in range(100):
            out.write(b"x")
            out.flush()
            time.sleep(0.2)
        trickled_out.set()

    return answer


def test_a_trickling_body_is_not_waited_for() -> None:
    trickled_out = threading.Event()
    with HostileServer(head_refused_then(trickle_body(trickled_out))) as server:
        verdict, _ = check("https://media.example.com/slow.mp3", server, public)
        waited_for_the_body = trickled_out.is_set()

    assert verdict.ok, verdict
    assert not waited_for_the_body


def trickle_headers(trickled_out: threading.Event) -> Answer:
    """Headers of one byte every 0.1 s, for 15 s."""

    def answer(request: Request, out: BinaryIO) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nX-Pad: " + b"p" * 100:
            out.write(bytes([byte]))
            out.flush()
            time.sleep(0.1)
        trickled_out.set()

    return answer


def test_each_url_has_an_overall_deadline() -> None:
    trickled_out = threading.Event()
    with HostileServer(trickle_headers(trickled_out)) as server:
        verdict, _ = check("https://media.example.com/slow.mp3", server, public, deadline=1.0)
        gave_up_first = not trickled_out.is_set()

    assert not verdict.ok
    assert "1 s" in verdict.detail, verdict
    assert gave_up_first  # the deadline ended it, not the end of the trickle


# -- 14: odd URLs are that row's error ---------------------------------------------------------


def test_a_url_httpx_cannot_use_is_the_rows_error(tmp_path: Path) -> None:
    rows = [row(1, media_url="https://i❤.ws/x.mp3"), row(2)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    with HostileServer(audio_answer) as server:
        planned, _ = plan_with_media(manifest, server, public)

    assert {p.row.row_number: p.action for p in planned} == {2: "invalid", 3: "new"}
    assert "cannot be fetched" in planned[0].reason, planned[0].reason


def test_a_backslash_redirect_is_refused_not_followed() -> None:
    def answer(request: Request, out: BinaryIO) -> None:
        respond(out, 302, b"", {"Location": "https:\\\\127.0.0.1\\x.mp3"})

    with HostileServer(answer) as server:
        verdict, routed = check("https://media.example.com/a.mp3", server, public)

    assert not verdict.ok
    assert "redirect" in verdict.detail, verdict
    assert len(routed.meant) == 1  # the target was never fetched


def test_a_backslash_location_is_never_read_as_a_url() -> None:
    with pytest.raises(BadRedirect, match="backslash"):
        urlsafety.redirect_target("https://a.example.com/x.mp3", "/\\127.0.0.1\\x.mp3")


def plan_with_media(
    manifest: Path, server: HostileServer, resolve: Callable[[str], Any]
) -> tuple[list[PlannedRow], Routed]:
    routed = Routed(server)
    settings = ImportSettings(
        manifest=manifest,
        mapping=MappingOptions(),
        check_media=True,
        media_client=httpx.AsyncClient(transport=routed),
        media_resolver=resolve,
    )
    planned: list[PlannedRow] = []
    ledger = Ledger(manifest.parent / "ledger.db", readonly=True)
    try:
        plan_manifest(settings, ledger, planned.append, HumanReporter(io.StringIO()))
    finally:
        ledger.close()
    return planned, routed


# -- 15: IPv4 in IPv6 clothing -----------------------------------------------------------------

EMBEDDED_PRIVATE = [
    "::127.0.0.1",  # IPv4-compatible (deprecated), i.e. ::7f00:1
    "::7f00:1",
    "::10.0.0.1",
    "64:ff9b::10.0.0.1",  # NAT64 of a private address
    "64:ff9b::8.8.8.8",  # NAT64 at all: it reaches IPv4 through a translator
    "64:ff9b:1::a00:1",  # local-use NAT64
    "::ffff:0:7f00:1",  # IPv4-translated
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
]


@pytest.mark.parametrize("address", EMBEDDED_PRIVATE)
def test_ipv6_forms_embedding_ipv4_are_not_public(address: str) -> None:
    assert urlsafety.first_private([address]) == address


def test_validation_refuses_ipv4_embedded_in_ipv6(tmp_path: Path) -> None:
    rows = [row(n, media_url=f"https://[{a}]/x.mp3") for n, a in enumerate(EMBEDDED_PRIVATE)]
    rows.append(row(99, media_url="https://[2606:2800:220:1:248:1893:25c8:1946]/x.mp3"))
    manifest = write_manifest(tmp_path / "m.csv", rows)

    result = run_cli(["plan", str(manifest), "--ledger", str(tmp_path / "l.db"), "--json"])

    assert result.exit_code == 1, result.output
    assert '"invalid": 9' in result.stdout and '"new": 1' in result.stdout


def test_the_preflight_refuses_names_resolving_to_ipv4_in_ipv6(tmp_path: Path) -> None:
    async def embedded(host: str) -> list[str]:
        return ["::7f00:1"] if host.startswith("a.") else ["64:ff9b::a00:1"]

    rows = [
        row(1, media_url="https://a.media.example.com/1.mp3"),
        row(2, media_url="https://b.media.example.com/2.mp3"),
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    with HostileServer(audio_answer) as server:
        planned, routed = plan_with_media(manifest, server, embedded)

    assert [p.action for p in planned] == ["invalid", "invalid"]
    assert all("private or internal" in p.reason for p in planned)
    assert routed.meant == []  # no connection attempted


@pytest.mark.parametrize("address", ["::127.0.0.1", "64:ff9b::10.0.0.1", "::ffff:0:a00:1"])
def test_the_sandbox_refuses_ipv4_embedded_in_ipv6(sandbox: Sandbox, address: str) -> None:
    answer = httpx.post(
        sandbox.base_url + "/v2/engagements",
        json=engagement_body(media_url=f"https://[{address}]/x.mp3"),
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
    )
    assert answer.status_code == 422, answer.text
    assert "media_url" in answer.text


# -- 12, the sandbox: its --media-check fetch is pinned the same way ---------------------------


def sandbox_fetch(url: str, server: HostileServer, dns: dict[str, list[str]]) -> Any:
    """The sandbox's fetch-mode check of ``url``, names resolved by ``dns`` (once each)."""
    from importer.sandbox.media_check import MediaChecker

    calls: list[str] = []

    def resolve(host: str) -> list[str]:
        calls.append(host)
        return dns[host] if calls.count(host) == 1 else ["127.0.0.1"]  # then rebinds

    routed = Routed(server)
    problem = asyncio.run(MediaChecker("fetch", resolve, transport=routed).check(url))
    return problem, routed, calls


def test_the_sandbox_fetch_connects_to_the_address_it_checked_every_hop() -> None:
    def answer(request: Request, out: BinaryIO) -> None:
        if request.headers["host"] == "first.rebind.acme.io":
            respond(out, 302, b"", {"Location": "https://second.rebind.acme.io/b.mp3"})
        else:
            audio_answer(request, out)

    dns = {"first.rebind.acme.io": [PUBLIC], "second.rebind.acme.io": [OTHER_PUBLIC]}
    with HostileServer(answer) as server:
        problem, routed, calls = sandbox_fetch("https://first.rebind.acme.io/a", server, dns)

    assert problem is None, problem
    assert routed.meant == [
        ("HEAD", PUBLIC, "first.rebind.acme.io", "first.rebind.acme.io"),
        ("HEAD", OTHER_PUBLIC, "second.rebind.acme.io", "second.rebind.acme.io"),
    ]
    assert calls == ["first.rebind.acme.io", "second.rebind.acme.io"]


def test_the_sandbox_fetch_never_reads_a_trickling_body() -> None:
    def trickle(request: Request, out: BinaryIO) -> None:
        out.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(100):  # would take 50 s to read
            out.write(b"x")
            out.flush()
            time.sleep(0.5)

    with HostileServer(trickle) as server:
        problem, routed, _ = sandbox_fetch(
            "https://slow.acme.io/a", server, {"slow.acme.io": [PUBLIC]}
        )

    assert problem is not None and problem.code == "unsupported_media_type", problem
    assert [m[0] for m in routed.meant] == ["HEAD", "GET"]
