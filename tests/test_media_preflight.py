"""--check-media: the preflight of each distinct media URL, offline.

A public https media host cannot exist in an offline test, so the HTTP side is an
``httpx.MockTransport`` and name resolution a fake; the pipeline-level tests then send
the surviving rows to the real sandbox.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from importer.events import HumanReporter
from importer.ledger import Ledger, open_ledger
from importer.pipeline import plan_manifest, run_import
from importer.plan.media import MediaVerdict, check_media, preflight
from importer.plan.planner import PlannedRow
from importer.report.files import PlanPrinter
from importer.rows.validate import MappingOptions
from importer.settings import ImportSettings
from importer.targets.askelephant import AskElephantTarget
from tests.conftest import Sandbox
from tests.factories import ledger_rows, row, run_cli, write_manifest

PUBLIC = "93.184.216.34"
ADDRESSES = {
    "media.example.com": [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"],
    "cdn.example.net": [PUBLIC],
    "internal.example.com": ["10.1.2.3"],
    "mixed.example.com": [PUBLIC, "127.0.0.1"],
    "v6.example.com": ["fd00::1"],
    "metadata.example.com": ["169.254.169.254"],
}


async def fake_resolve(host: str) -> list[str]:
    if host not in ADDRESSES:
        raise OSError(f"unknown host {host}")
    return ADDRESSES[host]


Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class FakeMedia:
    """A MockTransport that answers by URL path and records every request."""

    def __init__(self, answers: dict[str, list[httpx.Response] | httpx.Response]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []
        self.pinned: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        # The preflight connects to the checked address and names the host in Host (pinning):
        # answers are keyed, and requests recorded, by the URL as named.
        self.pinned.append(request.url.host)
        request.url = request.url.copy_with(netloc=request.headers["host"].encode("ascii"))
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            key = f"{request.method} {request.url}"
            answer = self.answers.get(key, self.answers.get(str(request.url)))
            if answer is None:
                return httpx.Response(404)
            if isinstance(answer, list):
                return answer.pop(0)
            return answer
        finally:
            self.in_flight -= 1

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def seen(self) -> list[tuple[str, str, str | None]]:
        return [(r.method, str(r.url), r.headers.get("range")) for r in self.requests]


def audio(content_type: str = "audio/mpeg", status: int = 200) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": content_type})


def redirect(location: str) -> httpx.Response:
    return httpx.Response(302, headers={"location": location})


def check(url: str, media: FakeMedia) -> MediaVerdict:
    async def go() -> MediaVerdict:
        async with media.client() as client:
            return await check_media(url, client, fake_resolve)

    return asyncio.run(go())


URL = "https://media.example.com/calls/1.mp3"


def test_public_host_serving_audio_passes_with_one_head() -> None:
    media = FakeMedia({URL: audio("audio/mpeg; charset=binary")})

    verdict = check(URL, media)

    assert verdict == MediaVerdict(URL, True, "audio/mpeg; charset=binary")
    assert media.seen() == [("HEAD", URL, None)]


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("internal.example.com", "10.1.2.3"),
        ("mixed.example.com", "127.0.0.1"),  # every answer must be public, not just one
        ("v6.example.com", "fd00::1"),
        ("metadata.example.com", "169.254.169.254"),
    ],
)
def test_host_resolving_to_a_private_address_fails_before_any_request(
    host: str, address: str
) -> None:
    url = f"https://{host}/a.mp3"
    media = FakeMedia({url: audio()})

    verdict = check(url, media)

    assert verdict == MediaVerdict(
        url, False, f"host {host!r} resolves to {address}, a private or internal address"
    )
    assert media.requests == []


def test_unresolvable_host_fails() -> None:
    url = "https://nowhere.example.org/a.mp3"
    media = FakeMedia({})

    verdict = check(url, media)

    assert verdict == MediaVerdict(
        url,
        False,
        "host 'nowhere.example.org' cannot be resolved (unknown host nowhere.example.org)",
    )
    assert media.requests == []


async def no_such_name(host: str) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


async def offline(host: str) -> list[str]:
    raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


def test_a_name_that_does_not_exist_says_so_not_a_bare_gaierror() -> None:
    url = "https://nowhere.example.org/a.mp3"

    verdict = asyncio.run(check_media(url, FakeMedia({}).client(), no_such_name))

    assert verdict == MediaVerdict(
        url, False, "host 'nowhere.example.org' does not resolve (Name or service not known)"
    )


def test_offline_the_preflight_judges_no_url_and_hides_no_duplicate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [row(1), row(2), row(1, title="Other"), row(3, media_url=row(2)["media_url"])]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    settings = ImportSettings(
        manifest=manifest,
        mapping=MappingOptions(timezone="UTC"),
        check_media=True,
        media_client=FakeMedia({}).client(),
        media_resolver=offline,
    )
    printer = PlanPrinter()

    with open_ledger(tmp_path / "l.db") as ledger:
        plan_manifest(settings, ledger, printer)

    assert printer.counts == {"duplicate": 2, "new": 1, "same recording": 1}
    assert capsys.readouterr().err.splitlines()[-1] == (
        "Media preflight: 2 URL(s) could not be checked from here (e.g. host "
        "'media.example.com' could not be looked up (Temporary failure in name resolution): "
        "no network or no DNS?); their rows are planned as if the check had passed. Run it "
        "again where names resolve."
    )


@pytest.mark.parametrize(
    ("location", "detail"),
    [
        (
            "https://internal.example.com/a.mp3",
            "host 'internal.example.com' resolves to 10.1.2.3, a private or internal address",
        ),
        (
            "https://192.168.0.7/a.mp3",
            "media_url host 192.168.0.7 is a private, loopback or link-local address",
        ),
        ("https://localhost/a.mp3", "media_url host 'localhost' is this machine"),
        ("http://cdn.example.net/a.mp3", "media_url must use https (found http)"),
    ],
)
def test_redirect_to_a_private_or_plain_http_target_fails_without_following_it(
    location: str, detail: str
) -> None:
    media = FakeMedia({URL: redirect(location), location: audio()})

    verdict = check(URL, media)

    assert verdict == MediaVerdict(URL, False, detail)
    assert media.seen() == [("HEAD", URL, None)]


def test_redirects_to_public_hosts_are_followed_and_checked() -> None:
    hop = "https://cdn.example.net/store/1.mp3"
    media = FakeMedia(
        {
            URL: redirect("/moved/1.mp3"),
            "https://media.example.com/moved/1.mp3": redirect(hop),
            hop: audio("video/mp4"),
        }
    )

    verdict = check(URL, media)

    assert verdict == MediaVerdict(URL, True, "video/mp4")
    assert [url for _, url, _ in media.seen()] == [
        URL,
        "https://media.example.com/moved/1.mp3",
        hop,
    ]


def test_redirect_loop_gives_up() -> None:
    media = FakeMedia({URL: redirect(URL)})

    verdict = check(URL, media)

    assert verdict == MediaVerdict(URL, False, "more than 5 redirects")
    assert len(media.requests) == 6


@pytest.mark.parametrize("head_status", [405, 403, 501])
def test_head_refused_falls_back_to_a_one_byte_ranged_get(head_status: int) -> None:
    media = FakeMedia(
        {f"HEAD {URL}": httpx.Response(head_status), f"GET {URL}": audio("audio/wav", 206)}
    )

    verdict = check(URL, media)

    assert verdict == MediaVerdict(URL, True, "audio/wav")
    assert media.seen() == [("HEAD", URL, None), ("GET", URL, "bytes=0-0")]


def test_head_without_content_type_falls_back_to_get() -> None:
    media = FakeMedia({f"HEAD {URL}": httpx.Response(200), f"GET {URL}": audio("audio/ogg", 206)})

    assert check(URL, media) == MediaVerdict(URL, True, "audio/ogg")
    assert [m for m, _, _ in media.seen()] == ["HEAD", "GET"]


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (
            audio("text/html; charset=utf-8"),
            "serves text/html; charset=utf-8, not audio/* or video/*",
        ),
        (
            audio("application/octet-stream"),
            "serves application/octet-stream, not audio/* or video/*",
        ),
        (httpx.Response(404), "answered HTTP 404"),
        (httpx.Response(500), "answered HTTP 500"),
    ],
)
def test_non_media_or_error_answers_fail(answer: httpx.Response, detail: str) -> None:
    media = FakeMedia({f"HEAD {URL}": answer})

    assert check(URL, media) == MediaVerdict(URL, False, detail)


def test_transport_error_fails_without_raising() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def go() -> MediaVerdict:
        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
            return await check_media(URL, client, fake_resolve)

    assert asyncio.run(go()) == MediaVerdict(URL, False, "could not be fetched (ConnectError)")


# -- preflight: distinct URLs, bounded concurrency, the ledger's cache ---------------------


def test_preflight_checks_each_distinct_url_once_and_caches_with_a_time(tmp_path: Path) -> None:
    urls = [f"https://media.example.com/{n}.mp3" for n in range(6)]
    bad = "https://media.example.com/page.html"
    media = FakeMedia({u: audio() for u in urls} | {bad: audio("text/html")})
    media.delay = 0.02
    ledger = Ledger(tmp_path / "ledger.db")
    started = dt.datetime.now(dt.timezone.utc)

    async def go(max_age: dt.timedelta = dt.timedelta(hours=24)) -> dict[str, int]:
        async with media.client() as client:
            return await preflight(
                [*urls, *urls, bad],
                ledger,
                client=client,
                resolve=fake_resolve,
                concurrency=2,
                max_age=max_age,
            )

    try:
        assert asyncio.run(go()) == {"checked": 7, "cached": 0, "failed": 1, "unchecked": 0}
        assert len(media.requests) == 7
        assert media.max_in_flight == 2
        assert asyncio.run(go()) == {"checked": 0, "cached": 7, "failed": 1, "unchecked": 0}
        assert len(media.requests) == 7  # the cache answered
        assert ledger.media_failures([*urls, bad]) == {
            bad: "serves text/html, not audio/* or video/*"
        }
        # A stale cache entry is checked again.
        assert asyncio.run(go(dt.timedelta(0))) == {
            "checked": 7,
            "cached": 0,
            "failed": 1,
            "unchecked": 0,
        }
        assert len(media.requests) == 14
    finally:
        ledger.close()
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        cached = conn.execute(
            "SELECT url, ok, checked_at FROM media_checks ORDER BY url"
        ).fetchall()
    assert [(u, ok) for u, ok, _ in cached] == sorted([(u, 1) for u in urls] + [(bad, 0)])
    assert all(dt.datetime.fromisoformat(stamp) >= started for _, _, stamp in cached)


# -- pipeline: failing rows become invalid and are never sent ----------------------------


def media_settings(manifest: Path, media: FakeMedia) -> ImportSettings:
    return ImportSettings(
        manifest=manifest,
        mapping=MappingOptions(),
        check_media=True,
        media_client=media.client(),
        media_resolver=fake_resolve,
    )


def preflight_rows(tmp_path: Path) -> tuple[Path, FakeMedia]:
    rows = [
        row(1),
        row(2, media_url="https://media.example.com/page.html"),
        row(3, media_url="https://internal.example.com/3.mp3"),
        row(4),
        row(5, media_url="https://media.example.com/calls/1.mp3"),  # the same URL as row 1
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    media = FakeMedia(
        {
            "https://media.example.com/calls/1.mp3": audio(),
            "https://media.example.com/calls/4.mp3": audio("video/webm"),
            "https://media.example.com/page.html": audio("text/html"),
        }
    )
    return manifest, media


EXPECTED_INVALID = {
    3: "media_url: preflight: serves text/html, not audio/* or video/*",
    4: "media_url: preflight: host 'internal.example.com' resolves to 10.1.2.3, a private or "
    "internal address",
}


def test_plan_with_check_media_marks_failing_rows_invalid(tmp_path: Path) -> None:
    manifest, media = preflight_rows(tmp_path)
    planned: list[PlannedRow] = []
    ledger = Ledger(tmp_path / "ledger.db", readonly=True)
    try:
        counts = plan_manifest(
            media_settings(manifest, media), ledger, planned.append, HumanReporter(io.StringIO())
        )
    finally:
        ledger.close()

    # Row 5 repeats row 1's recording under another id: flagged, and still sent (warn).
    assert counts == {"new": 2, "same recording": 1, "invalid": 2}
    invalid = {p.row.row_number: p.reason for p in planned if p.action == "invalid"}
    assert invalid == EXPECTED_INVALID
    assert len(media.requests) == 3  # three distinct public URLs, one HEAD each
    assert not (tmp_path / "ledger.db").exists()  # plan writes nothing


def test_run_with_check_media_never_sends_failing_rows(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest, media = preflight_rows(tmp_path)
    ledger = Ledger(tmp_path / "ledger.db")
    stream = io.StringIO()

    async def go() -> object:
        target = AskElephantTarget(sandbox.base_url, sandbox.api_key)
        try:
            run_id = ledger.start_run("run", str(manifest), {})
            return await run_import(
                media_settings(manifest, media),
                ledger,
                target,
                HumanReporter(stream, progress=False),
                run_id,
                install_signal_handlers=False,
            )
        finally:
            await target.aclose()

    try:
        summary = asyncio.run(go())
    finally:
        ledger.close()

    # Row 5 (same recording as row 1) is counted as a warning and created all the same.
    assert summary.counts == {  # type: ignore[attr-defined]
        "created": 3,
        "invalid": 2,
        "same recording": 1,
    }
    assert summary.exit_code == 1  # type: ignore[attr-defined]
    assert sandbox.stats()["created"] == {"crm:rec-1": 1, "crm:rec-4": 1, "crm:rec-5": 1}
    assert "Media preflight: 4 URL(s) checked, 0 cached, 2 failing." in stream.getvalue()
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        rejects = dict(conn.execute("SELECT row_number, reason FROM rejects").fetchall())
    assert rejects == EXPECTED_INVALID
    assert {r["external_id"] for r in ledger_rows(tmp_path / "ledger.db")} == {
        "crm:rec-1",
        "crm:rec-4",
        "crm:rec-5",
    }


def test_cli_check_media_uses_the_ledger_cache(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])
    ledger_path = tmp_path / "ledger.db"
    ledger = Ledger(ledger_path)
    ledger.record_media_check("https://media.example.com/calls/1.mp3", True, "audio/mpeg")
    ledger.record_media_check("https://media.example.com/calls/2.mp3", False, "answered HTTP 404")
    ledger.close()

    planned = run_cli(
        ["plan", str(manifest), "--ledger", str(ledger_path), "--check-media", "--json"]
    )
    result = run_cli(
        [
            "run",
            str(manifest),
            "--ledger",
            str(ledger_path),
            "--check-media",
            "--base-url",
            sandbox.base_url,
            "--no-progress",
        ],
        sandbox.api_key,
    )

    assert planned.exit_code == 1, planned.output
    plan = json.loads(planned.stdout)
    assert plan["counts"] == {"new": 1, "invalid": 1}
    assert plan["examples"]["invalid"] == [
        {"row": 3, "external_id": "crm:rec-2", "reason": "media_url: preflight: answered HTTP 404"}
    ]
    assert "Media preflight: 0 URL(s) checked, 2 cached, 1 failing." in planned.stderr
    assert result.exit_code == 1, result.output
    assert sandbox.stats()["created"] == {"crm:rec-1": 1}
