"""The real ``Sender`` against a scripted server, on simulated time: pacing, start to end.

The server is a ``Target`` whose answers follow a ``Script``: latency with jitter, a
token-bucket limit answered at once with ``429``, stray ``429``s and ``500``s drawn
independently of the pace, an outage window of instant failures, a counted window reported
in ``X-RateLimit-*`` hints. ``send_through`` runs ``importer.send.sender.Sender`` (its
pacer, retry policy, worker pool and ledger writes) on a ``VirtualTimeLoop``: the sender's
clock is the loop's, and every sleep and timeout ends as soon as nothing else can run.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from importer.errors import RateLimited, ServerUnavailable
from importer.ledger import Ledger
from importer.outcomes import Outcome
from importer.rows.hashes import field_hashes, payload_hash
from importer.send.pacing import Answer, Pacer
from importer.send.sender import Sender, WorkItem
from importer.settings import KnownPace, RetrySettings, SendSettings
from importer.targets.base import CreateResult, GetResult, Lookup
from importer.targets.http import RateHint
from tests.virtual_time import run_virtual

_FAST_DISK = "/dev/shm" if Path("/dev/shm").is_dir() else None
"""Thousands of ledger commits per simulation: in memory where the system offers it."""


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
    answer's ``X-RateLimit-Remaining``/``-Reset`` (reported to the sender when ``hints``)."""
    hints: bool = True


@dataclass
class Result:
    """What happened, for the assertions."""

    sends: list[tuple[float, Answer, bool]] = field(default_factory=list)
    """(time sent, its answer, whether it was the outage guard's probe) per request."""
    done_at: list[float] = field(default_factory=list)
    """When each row got its success."""
    failed_rows: int = 0
    gave_up_at: float | None = None
    end: float = 0.0
    pacer: Pacer = field(default_factory=Pacer)

    def answers(self, start: float = 0.0, end: float = float("inf")) -> Counter[Answer]:
        return Counter(a for t, a, _ in self.sends if start <= t < end)

    def done_between(self, start: float, end: float) -> int:
        return sum(start <= t < end for t in self.done_at)


class ScriptedServer:
    """A ``Target`` answering per ``Script``; every random draw from one seeded generator."""

    label = "Scripted"
    creates_idempotently = True
    base_url = "https://scripted.invalid"
    is_production = False
    pace_key: str | None = None

    def __init__(self, script: Script, seed: int, result: Result, clock: Callable[[], float]):
        self.script, self.result, self.clock = script, result, clock
        self.rng = random.Random(seed)
        self.tokens = script.limit or 0.0
        self.last = 0.0
        self.window_end, self.window_left = 0.0, 0
        self.on_rate_hint: Callable[[RateHint], None] | None = None
        self.pacer: Pacer | None = None
        """The sender's, to tell its outage probes from other requests."""

    def _answer(self, now: float) -> tuple[float, Answer, RateHint | None]:
        """How long until the answer, what it is, and the window it describes."""
        script = self.script
        jitter, stray, fail = self.rng.random(), self.rng.random(), self.rng.random()
        if script.outage and script.outage[0] <= now < script.outage[1]:
            return 0.001, Answer.FAILED, None
        hint = None
        if script.window is not None:
            size, seconds = script.window
            if now >= self.window_end:
                self.window_end, self.window_left = now + seconds, size
            refused = self.window_left <= 0
            self.window_left = max(0, self.window_left - 1)
            hint = RateHint(self.window_left, self.window_end - now, size)
            if refused:
                return 0.001, Answer.REFUSED, hint
        if script.limit is not None:
            self.tokens = min(script.limit, self.tokens + (now - self.last) * script.limit)
            self.last = now
            if self.tokens < 1.0:
                return 0.001, Answer.REFUSED, hint
            self.tokens -= 1.0
        if stray < script.stray_refusals:
            return 0.001, Answer.REFUSED, hint
        latency = script.latency * (1 - script.jitter + 2 * script.jitter * jitter)
        return latency, Answer.FAILED if fail < script.failures else Answer.ACCEPTED, hint

    async def create(self, payload: dict[str, Any]) -> CreateResult:
        now = self.clock()
        probe = self.pacer is not None and self.pacer.outage.is_open
        delay, answer, hint = self._answer(now)
        self.result.sends.append((now, answer, probe))
        await asyncio.sleep(delay)
        if hint is not None and self.script.hints and self.on_rate_hint is not None:
            # Read at the server, half-way: the window has moved on by the other half.
            self.on_rate_hint(RateHint(hint.remaining, hint.reset_seconds - delay / 2, hint.limit))
        if answer is Answer.REFUSED:
            raise RateLimited("HTTP 429", status=429, retry_after=self.script.retry_after)
        if answer is Answer.FAILED:
            raise ServerUnavailable("HTTP 500", status=500)
        self.result.done_at.append(self.clock())
        engagement_id = "ngmt_" + str(payload["external_id"])
        return CreateResult(engagement_id, True, 201, {"id": engagement_id, **payload})

    async def get(
        self, engagement_id: str, *, etag: str | None = None, expand: Sequence[str] = ()
    ) -> GetResult:
        raise NotImplementedError

    async def lookup(self, external_ids: Sequence[str]) -> Lookup | None:
        return None

    async def replace_contacts(
        self, engagement_id: str, contact_ids: Sequence[str]
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


class Silent:
    """A reporter that keeps nothing: thousands of rows go through each simulation."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def work_item(n: int) -> WorkItem:
    payload = {"type": "CALL", "title": f"Call {n}", "external_id": f"sim:{n}"}
    return WorkItem(
        external_id=f"sim:{n}",
        manifest="m.csv",
        row_number=n + 2,
        payload=payload,
        payload_hash=payload_hash(payload),
        field_hashes=field_hashes(payload),
        cells={},
    )


def send_through(
    script: Script,
    rows: int,
    *,
    concurrency: int,
    rate: float | None = None,
    max_attempts: int = 6,
    seed: int = 1,
    slow_start: bool = False,
    known: KnownPace | None = None,
) -> Result:
    """Send ``rows`` rows with the real sender to the scripted server; the clock's story.

    ``slow_start``: the sender's gentle first seconds; ``known``: the pace the ledger
    remembers this server took (the run starts there)."""
    send = SendSettings(
        concurrency=concurrency,
        rate=rate,
        retry=RetrySettings(max_attempts),
        slow_start=slow_start,
    )
    result = Result()

    async def main(ledger: Ledger) -> None:
        loop = asyncio.get_running_loop()
        server = ScriptedServer(script, seed, result, loop.time)
        if known is not None:
            server.pace_key = "scripted"
            ledger.remember_server_pace("scripted", known.rate, known.limited)
        sender = Sender(
            server, ledger, 1, send, Silent(), clock=loop.time, rng=random.Random(seed + 1)
        )
        server.pacer, result.pacer = sender.pacer, sender.pacer
        sender.start()
        for n in range(rows):
            if not await sender.put(work_item(n)):
                break
        outcome = await sender.finish()
        result.end = loop.time()
        result.failed_rows = outcome.counts[Outcome.FAILED]
        if sender.pacer.outage.gave_up:
            result.gave_up_at = result.end

    with tempfile.TemporaryDirectory(dir=_FAST_DISK) as folder:
        ledger = Ledger(Path(folder) / "ledger.db")
        try:
            run_virtual(main(ledger))
        finally:
            ledger.close()
    return result
