"""A connection the server closed while idle is noticed before a request is sent on it.

``importer.targets.sockets`` answers httpcore's ``is_readable`` from the raw socket; if it
answered wrong, the pool would reuse a dead connection and the request would fail with
"Server disconnected without sending a response".
"""

from __future__ import annotations

import asyncio
import select
import socket
import socketserver
import threading
from collections.abc import Iterator

import httpcore
import httpx
import pytest

from importer.targets.http import open_client
from importer.targets.sockets import (
    SocketKeepingBackend,
    SocketKeepingStream,
    keep_sockets,
    socket_readable,
)


class ClosingAfterOneAnswer(socketserver.StreamRequestHandler):
    """Answers one request with a keep-alive answer, then closes the connection."""

    connections: list[int]

    def handle(self) -> None:
        while self.rfile.readline(65536).strip():  # the request's head; GETs have no body
            pass
        self.connections.append(1)  # before the answer: the client cannot see it uncounted
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        self.wfile.flush()


@pytest.fixture
def closing_server() -> Iterator[tuple[str, list[int]]]:
    connections: list[int] = []
    handler = type("Handler", (ClosingAfterOneAnswer,), {"connections": connections})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", connections
    finally:
        server.shutdown()
        server.server_close()


def test_a_closed_idle_connection_is_noticed_and_the_request_goes_on_a_fresh_one(
    closing_server: tuple[str, list[int]],
) -> None:
    base_url, connections = closing_server

    async def main() -> None:
        client = open_client(
            base_url, "key", timeout=httpx.Timeout(10), max_connections=4, transport=None
        )
        async with client:
            first = await client.get("/one")
            stream = first.extensions["network_stream"]
            assert isinstance(stream, SocketKeepingStream)  # the piece under test is in use
            descriptor = stream.get_extra_info("socket").fileno()
            if descriptor >= 0:  # asyncio closes its end once it has read the server's
                # Wait (bounded) until the server's close has reached this end.
                readable, _, _ = select.select([descriptor], [], [], 10)
                assert readable
            second = await client.get("/two")
            assert second.status_code == 200
            assert second.extensions["network_stream"] is not stream

    asyncio.run(main())
    assert len(connections) == 2


def test_socket_readable_reports_data_an_end_and_a_closed_socket() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert not socket_readable(ours)
        theirs.sendall(b"x")
        assert socket_readable(ours)
        ours.recv(1)
        theirs.close()
        assert socket_readable(ours)  # the end of the stream: the peer has gone
        ours.close()
        assert socket_readable(ours)  # no descriptor any more


def test_only_a_known_pool_is_changed_else_the_transport_stays_plain() -> None:
    plain = httpx.AsyncHTTPTransport()
    assert keep_sockets(plain)
    assert keep_sockets(plain)  # once is enough: not wrapped twice
    backend = plain._pool._network_backend
    assert isinstance(backend, SocketKeepingBackend)
    assert not isinstance(backend._backend, SocketKeepingBackend)

    proxied = httpx.AsyncHTTPTransport(proxy="http://127.0.0.1:3128")
    assert not keep_sockets(proxied)
    assert not isinstance(proxied._pool._network_backend, SocketKeepingBackend)

    assert not keep_sockets(httpx.MockTransport(lambda request: httpx.Response(200)))


def test_a_target_given_a_transport_keeps_it() -> None:
    given = httpx.MockTransport(lambda request: httpx.Response(200))
    client = open_client(
        "http://127.0.0.1:1", "key", timeout=httpx.Timeout(1), max_connections=1, transport=given
    )
    assert client._transport is given


class InnerStream(httpcore.AsyncNetworkStream):
    """httpcore's stream as far as the wrapper asks it: a socket, and no readability."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock
        self.calls: list[tuple[str, bytes]] = []

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.calls.append(("write", buffer))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.calls.append(("read", b""))
        return b"answer"

    async def aclose(self) -> None:
        self.calls.append(("close", b""))

    def get_extra_info(self, info: str) -> object:
        if info == "socket":
            return self.sock
        if info == "is_readable":
            raise AssertionError("asked the inner stream (the costly path)")
        return f"inner {info}"


def test_readability_comes_from_the_kept_socket_and_the_rest_from_httpcore() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        stream = SocketKeepingStream(InnerStream(ours))
        assert stream.get_extra_info("is_readable") is False
        theirs.close()
        assert stream.get_extra_info("is_readable") is True
        assert stream.get_extra_info("server_addr") == "inner server_addr"


def test_a_requests_head_leaves_with_its_body_and_nothing_is_held_over_a_read() -> None:
    inner = InnerStream()
    stream = SocketKeepingStream(inner)

    async def main() -> None:
        # A POST: head, body, the empty end; its answer; then a GET: head, the empty end.
        for buffer in (b"POST head", b"body", b""):
            await stream.write(buffer)
        assert await stream.read(100) == b"answer"
        await stream.read(100)
        for buffer in (b"GET head", b""):
            await stream.write(buffer)
        await stream.read(100)
        # A head whose request is read at once (no end written), and one given up.
        await stream.write(b"odd head")
        await stream.read(100)
        await stream.write(b"given up")
        await stream.aclose()

    asyncio.run(main())
    assert inner.calls == [
        ("write", b"POST headbody"),
        ("write", b""),
        ("read", b""),
        ("read", b""),
        ("write", b"GET head"),
        ("read", b""),
        ("write", b"odd head"),
        ("read", b""),
        ("close", b""),
    ]


def test_a_request_with_a_body_in_chunks_sends_every_chunk_in_order() -> None:
    inner = InnerStream()
    stream = SocketKeepingStream(inner)

    async def main() -> None:
        for buffer in (b"head", b"1", b"2", b"3", b"end"):
            await stream.write(buffer)
        await stream.read(100)

    asyncio.run(main())
    sent = [buffer for call, buffer in inner.calls if call == "write"]
    assert sent == [b"head1", b"2", b"3", b"end"]
