"""Pacing from the server's own count: ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``.

Pure and clock-free like ``importer.pacing`` (whose ``Pacer`` composes it): a target only
reports each answer's ``RateHint``; the pacer decides. Far from the limit nothing waits;
once few requests remain (``LOW_WATER_SHARE`` of the limit, at least ``LOW_WATER_MIN``) the
remaining ones are spread over the time left; at zero, requests wait for the reset. So the
run slows down before the window is exhausted, not after, for any server sending them.

    >>> window = WindowPacer()
    >>> window.hinted(100.0, RateHint(remaining=4, reset_seconds=40.0))
    >>> [window.reserve(100.0) for _ in range(4)]
    [0.0, 10.0, 20.0, 30.0]
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

RESET_IS_EPOCH_ABOVE = 1_000_000_000
"""An ``X-RateLimit-Reset`` above this is a Unix time; below, seconds from now."""
LOW_WATER_SHARE = 0.2
"""Spread the requests once fewer than this share of the window's limit remain."""
LOW_WATER_MIN = 10


@dataclass(frozen=True)
class RateHint:
    """What one answer said about the rate window: requests left, seconds until it resets."""

    remaining: int
    reset_seconds: float
    limit: int | None = None


def reset_seconds(value: str | None, wall_now: float) -> float | None:
    """Seconds until the window resets: a Unix time or a number of seconds, either way."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if number > RESET_IS_EPOCH_ABOVE:
        number -= wall_now
    return max(0.0, number)


def rate_hint(headers: Mapping[str, str], wall_now: float) -> RateHint | None:
    """The hint an answer's headers carry, or None without both Remaining and Reset."""
    remaining = _integer(headers.get("x-ratelimit-remaining"))
    wait = reset_seconds(headers.get("x-ratelimit-reset"), wall_now)
    if remaining is None or wait is None:
        return None
    return RateHint(max(0, remaining), wait, _integer(headers.get("x-ratelimit-limit")))


def _integer(value: str | None) -> int | None:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return int(number) if math.isfinite(number) else None


class WindowPacer:
    """Departure slots from the last hint; every reserved slot counts against what remains."""

    def __init__(self) -> None:
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.limit: int | None = None
        self.next_slot = -math.inf
        self.hints = 0
        self.slots: deque[float] = deque()
        """Departures reserved in the future, oldest first."""

    def hinted(self, now: float, hint: RateHint, in_flight: int = 0) -> None:
        """Remember the window an answer describes, less what is already on its way to it
        (``in_flight`` other requests sent, and the slots reserved but not yet left)."""
        self.hints += 1
        while self.slots and self.slots[0] <= now:
            self.slots.popleft()
        self.remaining = max(0, hint.remaining - in_flight - len(self.slots))
        self.reset_at = now + hint.reset_seconds
        self.limit = hint.limit or self.limit

    def reserve(self, now: float) -> float:
        """Seconds the next request should wait; takes its slot."""
        if self.remaining is None or self.reset_at is None or now >= self.reset_at:
            return 0.0
        low_water = max(LOW_WATER_MIN, int((self.limit or 0) * LOW_WATER_SHARE))
        if self.remaining > low_water:
            self.remaining -= 1
            return 0.0
        slot = max(now, self.next_slot)
        if self.remaining <= 0:
            slot = max(slot, self.reset_at)
        else:
            self.next_slot = slot + max(0.0, self.reset_at - slot) / self.remaining
            self.remaining -= 1
        if slot > now:
            self.slots.append(slot)
        return slot - now
