"""media_url checks that need a resolver or the network, run in-process and offline.

The app takes the resolver and the media transport as arguments, so these tests hand it
fakes instead of touching DNS or the internet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from importer.sandbox.app import create_app
from importer.sandbox.settings import ApiKey, SandboxSettings
from tests.conftest import SANDBOX_KEY, engagement_body

Handler = Callable[[httpx.Request], httpx.Response]


def fake_dns(table: dict[str, list[str]]) -> Callable[[str], list[str]]:
    """A resolver that knows only this table."""

    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(f"{host} not found")
        return table[host]

    return resolve


def post_create(
    media_url: str,
    *,
    media_check: str = "extension",
    dns: dict[str, list[str]] | None = None,
    media: Handler | None = None,
) -> httpx.Response:
    """One create against an in-process sandbox with a fake resolver and media server."""
    settings = SandboxSettings(keys=[ApiKey(SANDBOX_KEY)], media_check=media_check)
    transport = httpx.MockTransport(media) if media else None
    app = create_app(settings, resolve=fake_dns(dns or {}), media_transport=transport)

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://sandbox",
            headers={"Authorization": f"Bearer {SANDBOX_KEY}"},
        ) as client:
            return await client.post("/v2/engagements", json=engagement_body(media_url=media_url))

    return asyncio.run(run())


def serving(content_type: str, head_status: int = 200) -> Handler:
    """A media server answering every GET with this content type."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(head_status, headers={"content-type": content_type})
        assert request.headers["range"] == "bytes=0-0"
        return httpx.Response(206, headers={"content-type": content_type}, content=b"\0")

    return handle


def codes(response: httpx.Response) -> set[str]:
    """The codes of a 422's field errors."""
    assert response.status_code == 422, response.text
    return {e["code"] for e in response.json()["errors"]}


# Documentation ranges (203.0.113/24, 2001:db8::/32) are not global, so real ones here.
PUBLIC = {"media.acme.io": ["93.184.215.14", "2606:4700::6810:84e5"]}


@pytest.mark.parametrize("address", ["10.0.0.8", "127.0.0.1", "169.254.169.254", "::1", "fe80::1"])
def test_a_name_resolving_to_a_private_address_is_rejected(address: str) -> None:
    response = post_create("https://media.acme.io/a.mp3", dns={"media.acme.io": [address]})
    assert codes(response) == {"private_address"}


def test_one_private_address_among_public_ones_is_enough() -> None:
    dns = {"media.acme.io": ["8.8.8.8", "192.168.0.2"]}
    assert codes(post_create("https://media.acme.io/a.mp3", dns=dns)) == {"private_address"}


def test_unresolvable_name_passes_in_extension_mode() -> None:
    assert post_create("https://nowhere.acme.io/a.mp3").status_code == 201


def test_documentation_names_are_never_looked_up() -> None:
    dns = {"media.example.com": ["127.0.0.1"]}  # would fail if it were consulted
    assert post_create("https://media.example.com/a.mp3", dns=dns).status_code == 201


def test_fetch_mode_accepts_audio() -> None:
    response = post_create(
        "https://media.acme.io/recording",
        media_check="fetch",
        dns=PUBLIC,
        media=serving("audio/mpeg"),
    )
    assert response.status_code == 201


def test_fetch_mode_falls_back_to_a_ranged_get_when_head_is_refused() -> None:
    media = serving("video/mp4; codecs=avc1", head_status=403)
    response = post_create("https://media.acme.io/r", media_check="fetch", dns=PUBLIC, media=media)
    assert response.status_code == 201


def test_fetch_mode_rejects_what_is_not_audio_or_video() -> None:
    media = serving("text/html; charset=utf-8")
    response = post_create(
        "https://media.acme.io/a.mp3", media_check="fetch", dns=PUBLIC, media=media
    )
    assert codes(response) == {"unsupported_media_type"}
    assert "not audio/video" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("media", "dns", "code"),
    [
        (lambda request: httpx.Response(404), PUBLIC, "unreachable"),
        (serving("audio/mpeg"), {}, "unresolvable"),
    ],
    ids=["404", "unresolvable"],
)
def test_fetch_mode_rejects_unreachable_media(
    media: Handler, dns: dict[str, Any], code: str
) -> None:
    response = post_create("https://media.acme.io/a.mp3", media_check="fetch", dns=dns, media=media)
    assert codes(response) == {code}


def test_fetch_mode_reports_connection_failures() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    response = post_create(
        "https://media.acme.io/a.mp3", media_check="fetch", dns=PUBLIC, media=refuse
    )
    assert codes(response) == {"unreachable"}


def redirecting(to: str) -> Handler:
    """A media server that sends /start elsewhere and serves audio everywhere else."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/start":
            return httpx.Response(302, headers={"location": to})
        return serving("audio/mpeg")(request)

    return handle


@pytest.mark.parametrize(
    ("to", "dns", "status"),
    [
        ("https://cdn.acme.io/a.mp3", {"cdn.acme.io": ["93.184.215.14"]}, 201),
        ("/elsewhere.mp3", {}, 201),
        ("https://inside.acme.io/a.mp3", {"inside.acme.io": ["10.1.2.3"]}, 422),
        ("https://127.0.0.1/a.mp3", {}, 422),
        ("http://cdn.acme.io/a.mp3", {"cdn.acme.io": ["93.184.215.14"]}, 422),
    ],
    ids=["public", "relative", "private-name", "loopback", "plain-http"],
)
def test_fetch_mode_checks_every_redirect(to: str, dns: dict[str, Any], status: int) -> None:
    response = post_create(
        "https://media.acme.io/start",
        media_check="fetch",
        dns={**PUBLIC, **dns},
        media=redirecting(to),
    )
    assert response.status_code == status, response.text
    if status == 422:
        assert codes(response) == {"redirect"}
