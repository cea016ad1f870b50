"""Run the sandbox under uvicorn until SIGTERM or Ctrl-C.

Once the socket listens it prints two lines on stdout, which scripts and tests wait for:

    Sandbox listening on http://127.0.0.1:8765
    API key: sk-apik_sandbox.0123456789abcdef01234567
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import Generator

import uvicorn

from importer.sandbox.app import create_app
from importer.sandbox.settings import ApiKey, SandboxSettings
from importer.sandbox.state import generate_key


def serve(settings: SandboxSettings) -> None:
    """Serve the sandbox in the foreground; returns once a signal has stopped it."""
    if not settings.keys:
        settings = dataclasses.replace(settings, keys=[ApiKey(generate_key())])
    _AnnouncingServer(uvicorn_config(settings), shown_key=settings.keys[0].key).run()


def uvicorn_config(settings: SandboxSettings) -> uvicorn.Config:
    """How uvicorn serves the sandbox app (the tests serve it the same way, in a thread)."""
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        # h11: its request cycle holds the transport, which dropped connections need.
        http="h11",
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints where it listens and exits quietly on a signal."""

    def __init__(self, config: uvicorn.Config, shown_key: str) -> None:
        super().__init__(config)
        self.shown_key = shown_key

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening, then print the address (the real port when asked for 0)."""
        await super().startup(sockets)
        if not self.started:
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        shown_host = f"[{host}]" if ":" in host else host
        print(f"Sandbox listening on http://{shown_host}:{port}", flush=True)
        print(f"API key: {self.shown_key}", flush=True)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Stop on SIGTERM/SIGINT, then return normally instead of re-raising the signal."""
        with super().capture_signals():
            yield
            # uvicorn re-raises captured signals after shutdown; a stopped sandbox exits 0.
            self._captured_signals.clear()
