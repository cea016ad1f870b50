"""A sliding count of events per second: what the pacer sent, and what came back."""

from __future__ import annotations

from collections import deque


class RecentRate:
    """Events per second over the last ``span`` seconds (shorter at the very start)."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.times: deque[float] = deque()
        self.first: float | None = None

    def add(self, now: float) -> None:
        if self.first is None:
            self.first = now
        self.times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.span:
            self.times.popleft()

    def per_second(self, now: float) -> float:
        self._trim(now)
        if self.first is None:
            return 0.0
        elapsed = min(self.span, max(now - self.first, self.span / 4))
        return len(self.times) / elapsed
