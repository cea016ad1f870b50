"""Small hostile HTTP servers for tests: raw sockets on 127.0.0.1, answers written by hand.

The sandbox behaves; these do not. Each test gives a function that receives the parsed
request and the socket's file, and writes whatever bytes it likes: a trickle, a gzip bomb,
an echo of the Authorization header, JSON nested 200,000 levels deep.

    with HostileServer(lambda request, out: respond(out, 500, b"{}")) as server:
        run_cli(["run", ..., "--base-url", server.base_url])
"""

from __future__ import annotations

import contextlib
import json
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from importer.targets.askelephant import ACCESS_CHECK_ID


@dataclass
class Request:
    """One request as the hostile server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[Request, BinaryIO], None]
ACCESS_CHECK = ACCESS_CHECK_ID
"""The path the importer GETs once at launch to check the key (``importer.send.launch``)."""


def respond(
    out: BinaryIO,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    content_type: str = "application/json",
) -> None:
    """Write a complete HTTP/1.1 answer (and close the connection after it)."""
    lines = [f"HTTP/1.1 {status} Whatever", f"Content-Type: {content_type}"]
    all_headers = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    lines += [f"{name}: {value}" for name, value in all_headers.items()]
    out.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    out.flush()


def engagement(request: Request, engagement_id: str = "ngmt_hostile1", **changes: Any) -> bytes:
    """A plausible engagement body for the request's payload."""
    payload = request.json()
    body = {**payload, "id": engagement_id, "processing_status": "QUEUED", **changes}
    return json.dumps(body).encode()


@dataclass
class HostileServer:
    """A threaded server on 127.0.0.1 answering every request with ``answer``."""

    answer: Answer
    requests: list[Request] = field(default_factory=list)
    _server: socketserver.ThreadingTCPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileServer:
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = _read_request(self.rfile)
                if request is None:
                    return
                if request.method == "GET" and ACCESS_CHECK in request.path:
                    # The importer's launch check (an id that cannot exist): the key is fine.
                    respond(self.wfile, 404, b'{"detail": "not found"}')  # type: ignore[arg-type]
                    return
                outer.requests.append(request)
                # The client may give up half-way, as it should.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    outer.answer(request, self.wfile)  # type: ignore[arg-type]

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        # A short poll: shutdown() waits for the loop's next look, 0.5 s by default, per test.
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


def _read_request(rfile: BinaryIO) -> Request | None:
    first = rfile.readline(65536).decode("latin-1").strip()
    if not first:
        return None
    method, path, _ = first.split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        line = rfile.readline(65536).decode("latin-1").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return Request(method, path, headers, rfile.read(length) if length else b"")
