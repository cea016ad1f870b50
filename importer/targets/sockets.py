"""httpcore's network streams, keeping their raw socket: a cheaper check for a closed idle
connection, and a request's head sent with its body.

Before every request, httpcore's pool asks each idle connection whether the server has
closed it (``get_extra_info("is_readable")``). anyio answers by building a dict of its
socket's attributes on every call: the largest single cost of a fast run's CPU. These
streams look the socket up once, when connected, and poll it as httpcore does; everything
else goes to httpcore's own stream unchanged.

httpx does not expose the pool's backend, so ``keep_sockets`` sets it on a transport's pool
only where that pool is the one it knows; on any other httpx/httpcore the transport stays
plain.
"""

from __future__ import annotations

import select
import ssl
import sys
from collections.abc import Iterable
from typing import Any, Protocol

import httpcore
import httpx


class Descriptor(Protocol):
    """A socket as anyio hands it over: under asyncio a ``TransportSocket``, not a socket."""

    def fileno(self) -> int: ...


def socket_readable(sock: Descriptor) -> bool:
    """Whether reading ``sock`` would not wait: data, an end, or no socket any more (as
    httpcore's own check, which an idle HTTP/1.1 connection reads as closed by the server).
    """
    descriptor = sock.fileno()
    if descriptor < 0:
        return True
    if sys.platform == "win32" or not hasattr(select, "poll"):
        readable, _, _ = select.select([descriptor], [], [], 0)
        return bool(readable)
    poller = select.poll()
    poller.register(descriptor, select.POLLIN)
    return bool(poller.poll(0))


class SocketKeepingStream(httpcore.AsyncNetworkStream):
    """httpcore's stream, answering ``is_readable`` from the socket it looked up once, and
    sending a request's head together with its body.

    httpcore writes a request's head, then its body: two sends, two TCP segments, two
    wake-ups of the server. The first write after a read (the head) is held until the
    next write (the body, or the empty end of a request without one) or read.
    """

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        found = stream.get_extra_info("socket")
        self._socket: Descriptor | None = (
            found if callable(getattr(found, "fileno", None)) else None
        )
        self._held = b""
        self._request_starts = True
        """The next write begins a request (nothing written since the last read)."""

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            await self._send_held(b"", timeout)
        self._request_starts = True
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._request_starts and buffer:
            self._request_starts = False
            self._held = buffer
        elif self._held:
            await self._send_held(buffer, timeout)
        else:
            await self._stream.write(buffer, timeout)

    async def _send_held(self, buffer: bytes, timeout: float | None) -> None:
        held, self._held = self._held, b""
        await self._stream.write(held + buffer, timeout)

    async def aclose(self) -> None:
        self._held = b""  # a request given up before its end: never sent, as if cut off
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return SocketKeepingStream(
            await self._stream.start_tls(ssl_context, server_hostname, timeout)
        )

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return socket_readable(self._socket)
        return self._stream.get_extra_info(info)


class SocketKeepingBackend(httpcore.AsyncNetworkBackend):
    """A network backend whose streams are ``SocketKeepingStream``s over ``backend``'s."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return SocketKeepingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return SocketKeepingStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def keep_sockets(transport: httpx.AsyncBaseTransport) -> bool:
    """Give ``transport``'s connection pool socket-keeping streams; whether it could.

    Only a direct pool of the httpcore this was written against is changed (a proxy's, or
    any other layout, is left as it is).
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if type(pool) is not httpcore.AsyncConnectionPool or not isinstance(
        backend, httpcore.AsyncNetworkBackend
    ):
        return False
    if not isinstance(backend, SocketKeepingBackend):
        pool._network_backend = SocketKeepingBackend(backend)
    return True
