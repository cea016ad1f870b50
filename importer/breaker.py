"""One back-off shared by all workers, so an outage meets one probe, not a stampede.

When a request fails because the server is unavailable, the breaker opens for an
exponentially growing time; while it is open no worker sends. When it closes again a
single probe goes first, and the rest wait for its outcome. A 429 pauses everyone for the
server's Retry-After without counting as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any


class CircuitBreaker:
    """Shared open/half-open/closed state for every worker of one run."""

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.base, self.cap = base, cap
        self.clock, self.sleep = clock, sleep
        self.failures = 0
        self.open_until = 0.0
        self.probe_taken = False
        self._changed = asyncio.Event()

    @property
    def is_failing(self) -> bool:
        """True from a server failure until the next answer from the server."""
        return self.failures > 0

    async def acquire(self) -> bool:
        """Wait until a request may go; True when this request is the probe."""
        while True:
            now = self.clock()
            if now < self.open_until:
                await self.sleep(self.open_until - now)
                continue
            if self.failures == 0:
                return False
            if not self.probe_taken:
                self.probe_taken = True
                return True
            changed = self._changed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=self.cap)

    def server_answered(self) -> None:
        """Any real answer (even a 4xx) shows the server is back."""
        if self.failures or self.probe_taken:
            self.failures = 0
            self.probe_taken = False
            self._notify()

    def server_failed(self, was_probe: bool) -> None:
        """5xx, timeout or connection failure: open (or re-open) the breaker."""
        now = self.clock()
        if was_probe or (now >= self.open_until and not self.probe_taken):
            self.failures += 1
            delay = min(self.cap, self.base * 2 ** (self.failures - 1))
            self.open_until = max(self.open_until, now + delay)
        if was_probe:
            self.probe_taken = False
        self._notify()

    def pause(self, seconds: float) -> None:
        """Everyone waits ``seconds`` (the server's Retry-After); not a failure."""
        self.open_until = max(self.open_until, self.clock() + seconds)

    def release(self, was_probe: bool) -> None:
        """A probe that ended without an answer either way (e.g. cancelled)."""
        if was_probe and self.probe_taken:
            self.probe_taken = False
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


class RateLimiter:
    """At most ``rate`` requests per second across all workers (None: no limit)."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_slot = 0.0

    async def acquire(self) -> None:
        """Wait for this request's slot."""
        if not self.interval:
            return
        now = self.clock()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await self.sleep(slot - now)
