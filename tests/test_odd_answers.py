"""Odd answers to a create: redirects, odd Retry-After values, odd bodies and headers.

Each is that row's clear error (or, for a redirect, the run's), never an internal error
(exit 70) nor a hang. Raw HTTP servers on 127.0.0.1 (tests/hostile_server.py), through the
CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.factories import ledger_rows, run_cli
from tests.hostile_server import HostileServer, Request, engagement, respond
from tests.test_answer_safety import run_against


def numbered(request: Request) -> bytes:
    """A good engagement whose id is derived from the row (crm:rec-3 -> ngmt_3)."""
    number = request.json()["external_id"].rsplit("-", 1)[1]
    return engagement(request, engagement_id=f"ngmt_{number}")


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirected_create_stops_the_run_saying_so(tmp_path: Path, status: int) -> None:
    def redirect(request: Request, out: BinaryIO) -> None:
        respond(out, status, b"", {"Location": "https://elsewhere.example.net/v2/engagements"})

    with HostileServer(redirect) as server:
        result, ledger = run_against(server, tmp_path, 5, "--max-attempts", "5")

    assert result.exit_code == 3, result.output  # the URL is wrong: every answer would be
    assert f"HTTP {status}: the API answered with a redirect" in result.stderr
    assert "https://elsewhere.example.net/v2/engagements" in result.stderr
    assert "check --base-url" in result.stderr
    assert len(server.requests) == 1  # stopped at once, not ridden out as an outage
    assert {r["status"] for r in ledger_rows(ledger)} <= {"pending", "in_flight"}


@pytest.mark.parametrize(
    "value",
    [
        "-1",
        "NaN",
        "inf",
        "1e309",
        "Thu, 01 Jan 1970 00:00:00 GMT",  # in the past: now
        "Fri, 31 Dec 9999 23:59:59 GMT",  # far future: past the cap
        "soon",
    ],
)
def test_an_odd_retry_after_is_that_rows_clear_error(tmp_path: Path, value: str) -> None:
    def limited(request: Request, out: BinaryIO) -> None:
        respond(out, 429, b'{"detail": "slow down"}', {"Retry-After": value})

    with HostileServer(limited) as server:
        result, ledger = run_against(server, tmp_path, 2, "--max-attempts", "2")

    assert result.exit_code == 1, result.output
    for record in ledger_rows(ledger):
        assert record["status"] == "failed"
        assert record["error_message"].startswith("HTTP 429 rate limited: slow down")
        assert "inf" not in record["error_message"]  # no "Retry-After infs"
        assert "nan" not in record["error_message"].lower()


def test_a_json_engagement_under_another_content_type_is_read(tmp_path: Path) -> None:
    def plain(request: Request, out: BinaryIO) -> None:
        respond(out, 201, numbered(request), content_type="text/plain")

    with HostileServer(plain) as server:
        result, ledger = run_against(server, tmp_path, 2)

    assert result.exit_code == 0, result.output
    assert [r["engagement_id"] for r in ledger_rows(ledger)] == ["ngmt_1", "ngmt_2"]


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Welcome</body></html>",
        json.dumps({"id": "ngmt_" + "x" * 5_000_000}).encode(),  # 5 MB, under the body cap
        json.dumps({"id": "ngmt_" + "9" * 5000}).encode(),
        json.dumps({"id": 10**400}).encode(),
        json.dumps({"id": {"nested": "ngmt_1"}}).encode(),
        b"[1, 2, 3]",
        b"",
    ],
    ids=["html", "5 MB id", "5000-digit id", "huge number", "object id", "array", "empty"],
)
def test_a_201_that_is_not_an_engagement_is_a_transient_bad_answer(
    tmp_path: Path, body: bytes
) -> None:
    def odd(request: Request, out: BinaryIO) -> None:
        respond(
            out,
            201,
            body,
            content_type="text/html" if body.startswith(b"<") else "application/json",
        )

    with HostileServer(odd) as server:
        result, ledger = run_against(server, tmp_path, 1, "--max-attempts", "2")

    assert result.exit_code == 1, result.output
    [record] = ledger_rows(ledger)
    assert (record["status"], record["transient"]) == ("failed", 1)
    assert record["engagement_id"] is None
    assert "internal error" not in result.output


def test_ten_thousand_headers_are_read_and_over_100_kb_are_that_rows_bad_answer(
    tmp_path: Path,
) -> None:
    short = {f"X-N{n}": "v" for n in range(10_000)}  # 90 KB of headers: read
    long = {f"X-Noise-{n}": "v" * 20 for n in range(10_000)}  # 370 KB: refused by h11

    def noisy(request: Request, out: BinaryIO) -> None:
        too_many = request.json()["external_id"] == "crm:rec-2"
        respond(out, 201, numbered(request), long if too_many else short)

    with HostileServer(noisy) as server:
        result, ledger = run_against(server, tmp_path, 3, "--max-attempts", "2")

    assert result.exit_code == 1, result.output
    by_id = {r["external_id"]: r for r in ledger_rows(ledger)}
    assert [by_id[f"crm:rec-{n}"]["status"] for n in (1, 3)] == ["created", "created"]
    assert by_id["crm:rec-2"]["status"] == "failed"
    assert "headers are over 100 KB" in by_id["crm:rec-2"]["error_message"]


def test_a_201_without_external_id_is_recorded_as_the_documented_answer(tmp_path: Path) -> None:
    """The documented create response (id, title, processing_status, ...) has no
    external_id field, so its absence is no bad answer; only one that names another id is
    (test_answer_safety), and one engagement id for two rows stays an integrity problem."""

    def without(request: Request, out: BinaryIO) -> None:
        body = json.loads(numbered(request))
        del body["external_id"]
        respond(out, 201, json.dumps(body).encode())

    with HostileServer(without) as server:
        result, ledger = run_against(server, tmp_path, 2)

    assert result.exit_code == 0, result.output
    assert [r["engagement_id"] for r in ledger_rows(ledger)] == ["ngmt_1", "ngmt_2"]


def test_a_hostile_processing_status_is_not_stored_nor_printed(tmp_path: Path) -> None:
    hostile = "\x1b[2J" + "DONE" * 250_000  # terminal codes and a megabyte

    def answer(request: Request, out: BinaryIO) -> None:
        if request.method == "POST":
            respond(out, 201, numbered(request))
        else:
            body = {"id": "ngmt_1", "processing_status": hostile}
            respond(out, 200, json.dumps(body).encode())

    with HostileServer(answer) as server:
        _, ledger = run_against(server, tmp_path, 2)
        verify = run_cli(
            ["verify", "--ledger", str(ledger), "--base-url", server.base_url, "--no-progress"],
            api_key="sk-apik_hostile.ECHOEDSECRET-77aa",
        )
    status = run_cli(["status", "--ledger", str(ledger)])

    assert verify.exit_code == 0, verify.output[:500]
    assert [r["processing_status"] for r in ledger_rows(ledger)] == ["UNKNOWN", "UNKNOWN"]
    for result in (verify, status):
        assert len(result.output) < 5_000
        assert "DONEDONE" not in result.output


@pytest.mark.parametrize("status", [503, 422])
def test_verify_says_which_engagements_it_could_not_read(tmp_path: Path, status: int) -> None:
    def answer(request: Request, out: BinaryIO) -> None:
        if request.method == "POST":
            respond(out, 201, numbered(request))
        else:  # every read refused: a server down, or one that misbehaves on GET
            respond(out, status, b'{"detail": "not today"}')

    with HostileServer(answer) as server:
        _, ledger = run_against(server, tmp_path, 2)
        args = ["verify", "--ledger", str(ledger), "--base-url", server.base_url]
        text = run_cli([*args, "--no-progress", "--max-attempts", "2"], api_key="sk-apik_v.k")
        as_json = run_cli([*args, "--json", "--max-attempts", "2"], api_key="sk-apik_v.k")

    assert (text.exit_code, as_json.exit_code) == (1, 1), text.output  # not 0: nothing read
    assert "2 engagement(s) could not be read" in text.stdout
    assert f"HTTP {status}" in text.stdout and "run verify again later" in text.stdout
    unread = json.loads(as_json.stdout)["unread"]
    assert sorted(u["external_id"] for u in unread) == ["crm:rec-1", "crm:rec-2"]


@pytest.mark.parametrize("etag", ["x" * 5000, "\x01" * 50])
def test_a_hostile_etag_is_neither_stored_nor_sent_back(tmp_path: Path, etag: str) -> None:
    def answer(request: Request, out: BinaryIO) -> None:
        if request.method == "POST":
            respond(out, 201, numbered(request))
        else:
            body = json.dumps({"id": "ngmt_1", "processing_status": "PROCESSING"}).encode()
            respond(out, 200, body, {"ETag": etag})

    with HostileServer(answer) as server:
        _, ledger = run_against(server, tmp_path, 1)
        args = ["verify", "--ledger", str(ledger), "--base-url", server.base_url]
        first = run_cli(args, api_key="sk-apik_v.k")
        again = run_cli(args, api_key="sk-apik_v.k")

    assert (first.exit_code, again.exit_code) == (0, 0), again.output
    assert [r["etag"] for r in ledger_rows(ledger)] == [None]
    reads = [r for r in server.requests if r.method == "GET"]
    assert len(reads) == 2 and all("if-none-match" not in r.headers for r in reads)
