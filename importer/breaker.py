"""One back-off shared by all workers, so an outage meets one probe, not a stampede.

When requests keep failing because the server is unavailable (``threshold`` in a row), the
breaker opens for an exponentially growing time; while it is open no worker sends. When it
closes again a single probe goes first, and the rest wait for its outcome; only an answer
to a request sent after the opening can close it. A 429 pauses everyone for the server's
Retry-After without counting as a failure. Once the run stops, nobody waits on it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any


class CircuitBreaker:
    """Shared open/half-open/closed state for every worker of one run.

    ``threshold`` failures in a row (with no answer from the server in between) open it: a
    lone 500 among successes is the row's bad luck, not an outage, and must not pause every
    worker. Requests report when they left (``sent_at``, from ``clock``): an answer to a
    request that left before the breaker opened is old news and cannot close it.
    """

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 30.0,
        *,
        threshold: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.base, self.cap, self.threshold = base, cap, max(1, threshold)
        self.clock, self.sleep = clock, sleep
        self.stop = stop
        """Once set, ``acquire`` returns at once: the caller checks it and sends nothing."""
        self.failures = 0
        """Back-off steps taken since the breaker opened (0 while closed)."""
        self.streak = 0
        """Failures in a row while closed."""
        self.opened_at = float("-inf")
        self.open_until = 0.0
        self.probe_taken = False
        self._changed = asyncio.Event()

    @property
    def is_failing(self) -> bool:
        """True from the opening of the breaker until a fresh answer from the server."""
        return self.failures > 0

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    async def acquire(self) -> bool:
        """Wait until a request may go; True when this request is the probe."""
        while not self._stopping():
            now = self.clock()
            if now < self.open_until:
                await self.sleep(self.open_until - now)
                continue
            if self.failures == 0:
                return False
            if not self.probe_taken:
                self.probe_taken = True
                return True
            await self._wait_for_change()
        return False

    async def _wait_for_change(self) -> None:
        """Until the probe's outcome (or a stop), at most ``cap`` seconds."""
        waits = [asyncio.ensure_future(self._changed.wait())]
        if self.stop is not None:
            waits.append(asyncio.ensure_future(self.stop.wait()))
        try:
            await asyncio.wait(waits, timeout=self.cap, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def server_answered(self, sent_at: float | None = None) -> None:
        """A real answer (even a 4xx) shows the server is back, if it left after the opening."""
        self.streak = 0
        if sent_at is not None and sent_at < self.opened_at:
            return  # sent before the breaker opened: says nothing about the server now
        if self.failures or self.probe_taken:
            self.failures = 0
            self.probe_taken = False
            self._notify()

    def server_failed(self, was_probe: bool, sent_at: float | None = None) -> None:
        """5xx, timeout or connection failure: open (or re-open) the breaker."""
        now = self.clock()
        if was_probe:
            self._open(now)
            self.probe_taken = False
        elif self.failures == 0:
            self.streak += 1
            if self.streak >= self.threshold:
                self._open(now)
        elif (sent_at is None or sent_at >= self.opened_at) and (
            now >= self.open_until and not self.probe_taken
        ):
            self._open(now)
        self._notify()

    def _open(self, now: float) -> None:
        if self.failures == 0:
            self.opened_at = now
        self.streak = 0
        self.failures += 1
        delay = min(self.cap, self.base * 2 ** (self.failures - 1))
        self.open_until = max(self.open_until, now + delay)

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
    """Paces requests across all workers: at most ``rate`` per second, slower after 429s.

    Without ``--rate`` there is no limit until the server answers 429. Then the limiter
    starts at half the rate it just saw, halves again on later 429s (at most once a
    second, so one burst of refusals counts once, and never below ``floor``), and each
    success raises it by ``step``: additive increase, multiplicative decrease, as TCP does.
    It never goes above ``--rate``.
    """

    WINDOW = 5.0

    def __init__(
        self,
        rate: float | None,
        *,
        floor: float = 0.2,
        step: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.ceiling = rate
        self.rate = rate
        self.floor, self.step = floor, step
        self.clock, self.sleep = clock, sleep
        self.next_slot = 0.0
        self.last_slow_down = -float("inf")
        self.recent: deque[float] = deque()
        """When the requests of the last WINDOW seconds were sent."""

    @property
    def interval(self) -> float:
        return 1.0 / self.rate if self.rate else 0.0

    async def acquire(self) -> None:
        """Wait for this request's slot."""
        now = self.clock()
        self._remember(now)
        if not self.rate:
            return
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await self.sleep(slot - now)

    def _remember(self, now: float) -> None:
        self.recent.append(now)
        while self.recent and self.recent[0] < now - self.WINDOW:
            self.recent.popleft()

    def slow_down(self) -> None:
        """A 429: halve the pace (once per second at most)."""
        now = self.clock()
        if now - self.last_slow_down < 1.0:
            return
        self.last_slow_down = now
        if self.rate is None:
            span = max(now - self.recent[0], 1.0) if self.recent else 1.0
            current = len(self.recent) / span
        else:
            current = self.rate
        self.rate = max(self.floor, current / 2)
        if self.ceiling is not None:
            self.rate = min(self.rate, self.ceiling)

    def speed_up(self) -> None:
        """A success: a little faster, up to the ceiling."""
        if self.rate is None:
            return
        self.rate += self.step
        if self.ceiling is not None:
            self.rate = min(self.rate, self.ceiling)
