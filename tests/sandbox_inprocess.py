"""The sandbox app in this process, on a clock the test moves: no waiting, no subprocess.

For tests whose point is *when* something happens (processing states, the outage window,
the rate limit, the create latency and the race it opens). The app is called through
``httpx.ASGITransport``; its wall clock and monotonic clock are one ``FakeClock`` and its
``sleep`` is a ``FakeSleep``, which records the latency asked for and can hold a create
inside it until the test lets it go.

    async with InProcessSandbox(processing_seconds=0.5) as sandbox:
        created = await sandbox.client.post("/v2/engagements", json=engagement_body())
        sandbox.clock.advance(0.7)
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import httpx

from importer.sandbox.app import create_app
from importer.sandbox.settings import ApiKey, SandboxSettings
from tests.conftest import SANDBOX_KEY


class FakeClock:
    """Seconds since the epoch that only move when the test says so."""

    def __init__(self, now: float = 1_714_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds


class FakeSleep:
    """Records every sleep; while held, a sleeper waits until ``release()``."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.held = False
        self._entered = asyncio.Event()
        self._gate = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self._entered.set()
        if self.held:
            await self._gate.wait()
        else:
            await asyncio.sleep(0)

    def hold(self) -> None:
        """From now on, sleepers wait for ``release()``."""
        self.held = True
        self._gate.clear()
        self._entered.clear()

    async def entered(self) -> None:
        """Return once someone is sleeping (or has slept) since ``hold()``."""
        await asyncio.wait_for(self._entered.wait(), timeout=10)

    def release(self) -> None:
        """Let every sleeper go on, and stop holding."""
        self.held = False
        self._gate.set()


class InProcessSandbox:
    """An async context: the app on a fake clock, and a client sending the default key."""

    def __init__(self, **settings: Any) -> None:
        self.clock = FakeClock()
        self.sleep = FakeSleep()
        self.app = create_app(
            SandboxSettings(keys=[ApiKey(SANDBOX_KEY)], **settings),
            clock=self.clock,
            monotonic=self.clock,
            sleep=self.sleep,
        )
        self.client = self.new_client()

    def new_client(self, key: str = SANDBOX_KEY) -> httpx.AsyncClient:
        """Another client on the same app (another connection, as far as it can tell)."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://sandbox",
            headers={"Authorization": f"Bearer {key}"},
        )

    async def set_faults(self, **fields: Any) -> dict[str, Any]:
        """``POST /_sandbox/faults``; an outage given here counts from now."""
        response = await self.client.post("/_sandbox/faults", json=fields)
        response.raise_for_status()
        return dict(response.json())

    async def stats(self) -> dict[str, Any]:
        """``GET /_sandbox/stats``."""
        response = await self.client.get("/_sandbox/stats")
        response.raise_for_status()
        return dict(response.json())

    async def __aenter__(self) -> InProcessSandbox:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.client.aclose()
