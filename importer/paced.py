"""Paced requests: each request in a slot, through the shared pacer and its outage guard.

The sender's part that talks to ``importer/pacing.py``: a request waits for the guard (one
probe at a time during an outage), for the pace, then goes; its answer is told back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from importer.errors import ApiError, RateLimited, RunAborted, ServerUnavailable
from importer.pacing import Answer, Pacer
from importer.work import SendOutcome


class _Stopped(Exception):
    """The run is stopping: this item's next attempt is not sent."""


class _OutageTooLong(Exception):
    """A probe failed after the outage lasted longer than the budget: give up the run."""

    def __init__(self, error: ServerUnavailable) -> None:
        self.error = error
        super().__init__(str(error))


def counted(n: int, noun: str) -> str:
    """``1 attempt``, ``2 attempts``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


class PacedRequests:
    """Sends requests through the pacer; the sender sets up the state it uses."""

    pacer: Pacer
    slots: asyncio.Semaphore
    clock: Callable[[], float]
    stop_event: asyncio.Event
    outcome: SendOutcome
    _changed: asyncio.Event
    """Set (and replaced) when a probe's answer may let waiting requests go."""
    _sleep: Callable[[float], Awaitable[Any]]

    async def _call(
        self, request: Callable[[], Awaitable[Any]], before: Callable[[], None] | None = None
    ) -> Any:
        """One request, in a slot, through the pacer; its answer reported to the pacer.

        A failed outage probe is the outage's failure, not the row's: the same call waits for
        the next probe (or for the guard to close) instead of spending one of the row's
        attempts, until the outage budget is spent.
        """
        async with self.slots:
            while True:
                probe = await self._gate()
                sent_at: float | None = None
                try:
                    delay = self.pacer.reserve(self.clock())
                    if delay > 0:
                        await self._sleep(delay)
                    if self.stop_event.is_set():
                        raise _Stopped()
                    if self.pacer.outage.is_open and not probe:
                        continue  # the guard opened while this request waited for its slot
                    if before is not None:
                        before()
                    self.outcome.requests += 1
                    sent_at = self.clock()
                    self.pacer.sent(sent_at)
                    result = await request()
                except RateLimited:
                    self._answered(sent_at, Answer.REFUSED, probe)
                    raise
                except ServerUnavailable as error:
                    self._answered(sent_at, Answer.FAILED, probe)
                    if self.pacer.outage.gave_up:
                        raise _OutageTooLong(error) from None
                    if probe:
                        continue
                    raise
                except ApiError:
                    self._answered(sent_at, Answer.ACCEPTED, probe)
                    raise
                except BaseException:
                    self.pacer.abandoned(probe)
                    self._notify()
                    raise
                self._answered(sent_at, Answer.ACCEPTED, probe)
                return result

    async def _gate(self) -> bool:
        """Wait until the outage guard lets this request go; True when it is the probe."""
        while True:
            if self.stop_event.is_set():
                raise _Stopped()
            gate = self.pacer.gate(self.clock())
            if gate.go:
                return gate.probe
            if gate.wait is not None:
                await self._sleep(gate.wait)
            else:
                await self._wait_for_change()

    async def _wait_for_change(self) -> None:
        """Until the probe's answer (or a stop), at most a few seconds."""
        waits = [
            asyncio.ensure_future(self._changed.wait()),
            asyncio.ensure_future(self.stop_event.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def _answered(self, sent_at: float | None, answer: Answer, probe: bool) -> None:
        if sent_at is None:  # nothing left
            self.pacer.abandoned(probe)
        else:
            self.pacer.answered(self.clock(), sent_at, answer, probe=probe)
        if probe:
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _unavailable(self, error: ApiError) -> RunAborted:
        outage = self.pacer.outage
        return RunAborted(
            f"the server is unavailable ({error}); gave up after "
            f"{self.clock() - outage.opened_at:.0f} s of outage "
            f"and {counted(outage.probes, 'probe')}. "
            "Rows not yet sent are still pending, and rows in flight may or may not have "
            "been applied: run the same command again later to resume (re-sending both is safe)"
        )
