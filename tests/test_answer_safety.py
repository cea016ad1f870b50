"""Hostile API servers: every answer comes from outside and is treated as hostile.

Each server here is a small raw HTTP server on 127.0.0.1 (tests/hostile_server.py) that
misbehaves in one way: it echoes the API key, trickles its answer, sends a gzip bomb or
JSON nested 200,000 levels deep, or names the wrong engagement. Every test goes through the
CLI and checks what the user sees, the ledger and the exit code.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import threading
import time
import tracemalloc
from pathlib import Path
from typing import BinaryIO

import pytest
from click.testing import Result

from tests.factories import ledger_rows, row, run_cli, write_manifest
from tests.hostile_server import Answer, HostileServer, Request, engagement, respond

KEY = "sk-apik_hostile.ECHOEDSECRET-77aa"


def run_against(
    server: HostileServer, tmp_path: Path, rows: int = 1, *extra: str, ledger: str = "l.db"
) -> tuple[Result, Path]:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(1, rows + 1)])
    path = tmp_path / ledger
    args = ["run", str(manifest), "--ledger", str(path), "--base-url", server.base_url]
    args += ["--no-progress", "--concurrency", "1", *extra]
    return run_cli(args, api_key=KEY), path


# -- 6: a key echoed by the server ------------------------------------------------------------


def echo_the_key(request: Request, out: BinaryIO) -> None:
    said = request.headers["authorization"]
    problem = {
        "detail": f"bad request from {said}",
        "errors": [{"field": "title", "code": said, "message": f"token {KEY} rejected"}],
        "request_id": said,
    }
    respond(out, 422, json.dumps(problem).encode(), {"X-Request-Id": said})


def test_a_key_echoed_by_the_server_is_scrubbed_from_everything_stored_or_printed(
    tmp_path: Path,
) -> None:
    with HostileServer(echo_the_key) as server:
        text, ledger = run_against(server, tmp_path, 2)
        as_json, _ = run_against(server, tmp_path, 2, "--log-format", "json", ledger="j.db")
    status = run_cli(["status", "--ledger", str(ledger)])
    status_json = run_cli(["status", "--ledger", str(ledger), "--json"])
    report = run_cli(["report", "--ledger", str(ledger), "--out", str(tmp_path / "out")])
    assert (text.exit_code, as_json.exit_code) == (1, 1), text.output
    assert "bad request from Bearer [API key]" in text.stderr
    for result in (text, as_json, status, status_json, report):
        assert "ECHOEDSECRET" not in result.stdout + result.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "errors.csv" for p in files)
    for path in files:
        assert b"ECHOEDSECRET" not in path.read_bytes(), path
    assert all("[API key]" in r["error_message"] for r in ledger_rows(ledger))


# -- 8: a slow trickle -------------------------------------------------------------------------


def trickle(trickled_out: threading.Event) -> Answer:
    """One byte every 0.2 s for 20 s: each read is fast, the answer never ends."""

    def answer(request: Request, out: BinaryIO) -> None:
        out.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n")
        out.write(b"Content-Length: 1000\r\n\r\n")
        out.flush()
        for _ in range(100):
            out.write(b" ")
            out.flush()
            time.sleep(0.2)
        trickled_out.set()

    return answer


def test_a_trickling_answer_meets_an_overall_deadline(tmp_path: Path) -> None:
    trickled_out = threading.Event()
    with HostileServer(trickle(trickled_out)) as server:
        result, ledger = run_against(
            server, tmp_path, 1, "--read-timeout", "1", "--max-attempts", "1"
        )
        gave_up_first = not trickled_out.is_set()
    assert result.exit_code == 1, result.output
    assert gave_up_first  # the deadline ended it, not the end of the trickle
    [record] = ledger_rows(ledger)
    assert (record["status"], record["transient"]) == ("failed", 1)
    assert "no answer in time" in record["error_message"]


# -- 9: unbounded bodies -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """A valid engagement padded to 200 MB when inflated; about 200 KB on the wire."""
    head = b'{"id": "ngmt_bomb1", "external_id": "crm:rec-1", "pad": "'
    return gzip.compress(head + b" " * 200_000_000 + b'"}', compresslevel=1)


def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path: Path, gzip_bomb: bytes) -> None:
    def bomb(request: Request, out: BinaryIO) -> None:
        respond(out, 201, gzip_bomb, {"Content-Encoding": "gzip"})

    with HostileServer(bomb) as server:
        tracemalloc.start()
        try:
            result, ledger = run_against(server, tmp_path, 1, "--max-attempts", "1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.exit_code == 1, result.output
    assert peak < 64_000_000, peak
    [record] = ledger_rows(ledger)
    assert (record["status"], record["transient"]) == ("failed", 1)
    assert "larger than" in record["error_message"]


def test_a_huge_plain_body_is_refused(tmp_path: Path) -> None:
    def huge(request: Request, out: BinaryIO) -> None:
        respond(out, 500, b'{"detail": "' + b"x" * 30_000_000 + b'"}')

    with HostileServer(huge) as server:
        result, ledger = run_against(server, tmp_path, 1, "--max-attempts", "1")
    assert result.exit_code == 1, result.output
    [record] = ledger_rows(ledger)
    assert "larger than" in record["error_message"]


# -- 10: deeply nested JSON --------------------------------------------------------------------

DEEP = b"[" * 200_000 + b"]" * 200_000


@pytest.mark.parametrize("status", [201, 500, 422])
def test_deeply_nested_json_is_a_transient_bad_answer(tmp_path: Path, status: int) -> None:
    def deep(request: Request, out: BinaryIO) -> None:
        respond(out, status, DEEP)

    with HostileServer(deep) as server:
        result, ledger = run_against(server, tmp_path, 1, "--max-attempts", "1")
    assert result.exit_code == 1, result.output
    [record] = ledger_rows(ledger)
    assert record["status"] == "failed"
    assert "internal error" not in result.output


# -- 11: an answer naming another row ----------------------------------------------------------


def test_a_201_naming_another_external_id_is_an_integrity_problem(tmp_path: Path) -> None:
    def other(request: Request, out: BinaryIO) -> None:
        respond(out, 201, engagement(request, external_id="crm:someone-else"))

    with HostileServer(other) as server:
        result, ledger = run_against(server, tmp_path, 2)
    assert result.exit_code == 1, result.output
    records = ledger_rows(ledger)
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert all(r["engagement_id"] is None for r in records)
    assert all("integrity" in r["error_message"] for r in records)
    assert "crm:someone-else" in records[0]["error_message"]
    creates = [r for r in server.requests if r.method == "POST"]
    assert len(creates) == 2  # not retried: the same answer would come back


def test_one_engagement_id_for_several_rows_is_an_integrity_problem(tmp_path: Path) -> None:
    def same(request: Request, out: BinaryIO) -> None:
        respond(out, 201, engagement(request, engagement_id="ngmt_shared1"))

    with HostileServer(same) as server:
        result, ledger = run_against(server, tmp_path, 3)
        again, _ = run_against(server, tmp_path, 3)
    assert (result.exit_code, again.exit_code) == (1, 1), result.output
    by_id = {r["external_id"]: r for r in ledger_rows(ledger)}
    assert by_id["crm:rec-1"]["status"] == "created"
    for external_id in ("crm:rec-2", "crm:rec-3"):
        assert by_id[external_id]["status"] == "failed"
        assert by_id[external_id]["engagement_id"] is None
        assert "integrity" in by_id[external_id]["error_message"]
        assert "crm:rec-1" in by_id[external_id]["error_message"]
    with sqlite3.connect(ledger) as conn:
        holders = conn.execute(
            "SELECT COUNT(*) FROM engagements WHERE engagement_id = 'ngmt_shared1'"
        ).fetchone()
    assert holders == (1,)


# -- 7: one row always answered 500 --------------------------------------------------------------


def test_a_row_always_answered_500_is_that_rows_failure_not_an_outage(tmp_path: Path) -> None:
    def refuse_row_2(request: Request, out: BinaryIO) -> None:
        if request.json()["external_id"] == "crm:rec-2":  # e.g. a NUL its database refuses
            respond(out, 500, b'{"detail": "internal error"}')
        else:
            respond(out, 201, engagement(request, engagement_id=f"ngmt_{len(server.requests)}"))

    with HostileServer(refuse_row_2) as server:
        result, ledger = run_against(server, tmp_path, 5, "--max-attempts", "3")

    assert result.exit_code == 1, result.output  # rows need attention; not 3, an outage
    by_id = {r["external_id"]: r for r in ledger_rows(ledger)}
    assert (by_id["crm:rec-2"]["status"], by_id["crm:rec-2"]["transient"]) == ("failed", 1)
    assert by_id["crm:rec-2"]["attempts"] == 3
    others = [by_id[f"crm:rec-{n}"]["status"] for n in (1, 3, 4, 5)]
    assert others == ["created"] * 4
