"""A discrete-event model of the sender around ``importer.send.pacing``: fake clock, a script.

It models what ``importer/send.py`` does with the pacer: ``concurrency`` request slots; a row
takes a slot, asks the outage guard, reserves a departure slot, sends, and gives the slot
back when its answer arrives; a refused row waits its ``Retry-After`` and a failed one its
back-off *without* holding a slot; a failed probe does not count against its row's
attempts. The server is a script: latency with jitter, a token-bucket limit answered at
once with ``429``, stray ``429``s and ``500``s drawn independently of the pace, an outage
window of instant failures. Nothing here waits on the wall clock.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from importer.send.pacing import Answer, Pacer
from importer.settings import PacingSettings
from importer.targets.http import RateHint


@dataclass
class Script:
    """How the scripted server answers."""

    latency: float = 0.03
    jitter: float = 0.5
    """Latency is uniform in latency * [1 - jitter, 1 + jitter]."""
    limit: float | None = None
    """Token bucket per key: this many requests/s, bursts of as many."""
    stray_refusals: float = 0.0
    """Share of requests answered 429 whatever the pace."""
    failures: float = 0.0
    """Share of requests answered 500 (after the latency)."""
    outage: tuple[float, float] | None = None
    """[start, end) seconds during which every request fails at once."""
    retry_after: float = 1.0
    window: tuple[int, float] | None = None
    """A fixed window: this many requests per this many seconds, counted down in every
    answer's ``X-RateLimit-Remaining``/``-Reset`` (handed to the pacer when ``hints``)."""
    hints: bool = True


class ScriptedServer:
    """Answers requests per ``Script``; every random draw from one seeded generator."""

    def __init__(self, script: Script, seed: int) -> None:
        self.script = script
        self.rng = random.Random(seed)
        self.tokens = script.limit or 0.0
        self.last = 0.0
        self.window_end, self.window_left = 0.0, 0
        self.hint: RateHint | None = None
        """The window as the last answer described it."""

    def answer(self, now: float) -> tuple[float, Answer]:
        """How long until the answer, and what it is."""
        script = self.script
        jitter, stray, fail = self.rng.random(), self.rng.random(), self.rng.random()
        if script.outage and script.outage[0] <= now < script.outage[1]:
            return 0.001, Answer.FAILED
        if script.window is not None:
            size, seconds = script.window
            if now >= self.window_end:
                self.window_end, self.window_left = now + seconds, size
            refused = self.window_left <= 0
            self.window_left = max(0, self.window_left - 1)
            self.hint = RateHint(self.window_left, self.window_end - now, size)
            if refused:
                return 0.001, Answer.REFUSED
        if script.limit is not None:
            self.tokens = min(script.limit, self.tokens + (now - self.last) * script.limit)
            self.last = now
            if self.tokens < 1.0:
                return 0.001, Answer.REFUSED
            self.tokens -= 1.0
        if stray < script.stray_refusals:
            return 0.001, Answer.REFUSED
        latency = script.latency * (1 - script.jitter + 2 * script.jitter * jitter)
        return latency, Answer.FAILED if fail < script.failures else Answer.ACCEPTED


@dataclass
class Result:
    """What happened, for the assertions."""

    sends: list[tuple[float, Answer, bool]] = field(default_factory=list)
    """(time sent, its answer, whether it was a probe) per request."""
    done_at: list[float] = field(default_factory=list)
    """When each row got its success."""
    failed_rows: int = 0
    gave_up_at: float | None = None
    end: float = 0.0
    pacer: Any = None

    def answers(self, start: float = 0.0, end: float = float("inf")) -> Counter[Answer]:
        return Counter(a for t, a, _ in self.sends if start <= t < end)

    def done_between(self, start: float, end: float) -> int:
        return sum(start <= t < end for t in self.done_at)


def simulate(
    script: Script,
    rows: int,
    *,
    concurrency: int,
    settings: PacingSettings | None = None,
    max_attempts: int = 6,
    seed: int = 1,
    until: float = 600.0,
) -> Result:
    """Send ``rows`` rows through a pacer against the scripted server; the fake clock's story."""
    pacer = Pacer(settings or PacingSettings())
    server = ScriptedServer(script, seed)
    rng = random.Random(seed + 1)
    result = Result(pacer=pacer)
    events: list[tuple[float, int, str, tuple[Any, ...]]] = []
    order = itertools.count()
    ready = list(range(rows))[::-1]  # a stack: pop() takes the lowest row first
    attempts = [0] * rows
    free = concurrency
    now = 0.0

    def schedule(at: float, kind: str, *args: Any) -> None:
        heapq.heappush(events, (at, next(order), kind, args))

    def dispatch() -> None:
        nonlocal free
        while free and ready and not pacer.outage.gave_up:
            gate = pacer.gate(now)
            if not gate.go:
                if gate.wait is not None:
                    schedule(now + gate.wait, "wake")
                return
            row = ready.pop()
            free -= 1
            schedule(now + pacer.reserve(now), "depart", row, gate.probe)

    def retry_later(row: int, wait: float) -> None:
        attempts[row] += 1
        if attempts[row] >= max_attempts:
            result.failed_rows += 1
        else:
            schedule(now + wait, "retry", row)

    while events or ready:
        if not events:
            dispatch()
            if not events:
                break
        now, _, kind, args = heapq.heappop(events)
        if now > until or pacer.outage.gave_up:
            break
        if kind == "depart":
            row, probe = args
            if pacer.outage.is_open and not probe:
                ready.append(row)  # the guard opened while it waited for its slot
                free += 1
            else:
                pacer.sent(now)
                delay, answer = server.answer(now)
                result.sends.append((now, answer, probe))
                schedule(now + delay, "answer", row, probe, now, answer, server.hint)
        elif kind == "answer":
            row, probe, sent_at, answer, hint = args
            if hint is not None and script.hints:
                pacer.hinted(now - (now - sent_at) / 2, hint)  # read at the server, mid-way
            pacer.answered(now, sent_at, answer, probe=probe)
            free += 1
            if answer is Answer.ACCEPTED:
                result.done_at.append(now)
            elif answer is Answer.REFUSED:
                retry_later(row, max(script.retry_after, backoff(attempts[row] + 1, rng)))
            elif probe and not pacer.outage.gave_up:
                ready.append(row)  # the outage's failure, not the row's
            else:
                retry_later(row, backoff(attempts[row] + 1, rng))
            if pacer.outage.gave_up:
                result.gave_up_at = now
        elif kind == "retry":
            ready.insert(0, args[0])
        dispatch()
    result.end = now
    return result


def backoff(retry_number: int, rng: random.Random) -> float:
    """The retry policy's full jitter: uniform in [0, min(30, 0.5 * 2**(n-1))]."""
    return rng.uniform(0, min(30.0, 0.5 * 2 ** (retry_number - 1)))
