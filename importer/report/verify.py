"""Verification: read every imported engagement back and record its processing_status.

AskElephant does not publish its processing_status values, so they are kept as opaque
strings; the ones below are treated as terminal (``--terminal`` adds more).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from importer.errors import EXIT_OK, EXIT_ROWS_FAILED, ApiError, FatalError, PermanentError
from importer.events import Reporter
from importer.ledger import Ledger
from importer.outcomes import format_counts
from importer.send.retry import retry_policy
from importer.settings import VerifySettings
from importer.targets.base import Target

TERMINAL_OK = frozenset({"COMPLETED", "COMPLETE", "DONE", "SUCCEEDED", "PROCESSED", "READY"})
TERMINAL_FAILED = frozenset({"FAILED", "ERROR", "ERRORED", "CANCELLED", "CANCELED"})
NOT_FOUND = "NOT_FOUND"
UNKNOWN = "UNKNOWN"
STATUS_PATTERN = re.compile(r"[A-Za-z0-9_ -]{1,64}\Z")
"""What a processing_status looks like (the API documents an enum of short words)."""


@dataclass
class VerifyResult:
    """processing_status counts after the last round, and how it ended."""

    counts: Counter[str] = field(default_factory=Counter)
    rounds: int = 0
    timed_out: bool = False
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(external_id, processing_status) of engagements that failed processing."""
    unread: list[tuple[str, str]] = field(default_factory=list)
    """(external_id, error) of engagements the last round could not read (a server down,
    or bad answers past the retry budget): their status is what an earlier round saw."""

    @property
    def pending(self) -> int:
        return sum(n for s, n in self.counts.items() if not is_terminal(s))

    @property
    def exit_code(self) -> int:
        """1 if any engagement failed processing, could not be read, or is still processing
        at the timeout."""
        return EXIT_ROWS_FAILED if self.failed or self.timed_out or self.unread else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """The result for ``--json``."""
        return {
            "processing_status": dict(self.counts),
            "failed": [{"external_id": e, "processing_status": s} for e, s in self.failed],
            "unread": [{"external_id": e, "error": m} for e, m in self.unread],
            "rounds": self.rounds,
            "timed_out": self.timed_out,
        }

    def lines(self, shown: int = 10) -> list[str]:
        """The result for people: counts by status, then the first failures."""
        lines = [format_counts(self.counts, "Processing status:")]
        lines += [f"  failed: {e} ({s})" for e, s in self.failed[:shown]]
        if self.unread:
            first = self.unread[0][1]
            lines.append(
                f"{len(self.unread):,} engagement(s) could not be read (e.g. {first}); "
                "their status is not known yet: run verify again later"
            )
        return lines


def is_terminal(status: str, extra: frozenset[str] = frozenset()) -> bool:
    """Whether a processing_status will not change any more."""
    upper = status.upper()
    return upper in TERMINAL_OK or upper in TERMINAL_FAILED or upper == NOT_FOUND or upper in extra


def reported_status(value: object) -> str:
    """An answer's processing_status when it reads as one, else UNKNOWN: a server cannot
    store megabytes or terminal codes in the ledger through it.

    >>> reported_status("COMPLETED"), reported_status("\\x1b[2J" + "x" * 9), reported_status(None)
    ('COMPLETED', 'UNKNOWN', 'UNKNOWN')
    """
    text = value if isinstance(value, str) else ""
    return text if STATUS_PATTERN.match(text) else UNKNOWN


def is_failed(status: str) -> bool:
    """Whether a processing_status means the recording was not processed."""
    return status.upper() in TERMINAL_FAILED or status.upper() == NOT_FOUND


async def verify(
    ledger: Ledger,
    target: Target,
    settings: VerifySettings,
    reporter: Reporter,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> VerifyResult:
    """GET each imported engagement (conditionally), record what was seen; poll if asked."""
    deadline = clock() + settings.timeout
    result = VerifyResult()
    while True:
        result.rounds += 1
        rows = list(ledger.verifiable_rows())
        todo = [
            r
            for r in rows
            if result.rounds == 1
            or not is_terminal(r["processing_status"] or "", settings.extra_terminal)
        ]
        result.unread = await _check_all(ledger, target, todo, settings)
        result.counts = Counter()
        result.failed = []
        for r in ledger.verifiable_rows():
            status = r["processing_status"] or "UNKNOWN"
            result.counts[status] += 1
            if is_failed(status):
                result.failed.append((r["external_id"], status))
        pending = sum(
            n for s, n in result.counts.items() if not is_terminal(s, settings.extra_terminal)
        )
        reporter.notice(
            f"Verify round {result.rounds}: "
            + ", ".join(f"{n:,} {s}" for s, n in sorted(result.counts.items()))
        )
        if not settings.wait or pending == 0:
            return result
        wait = min(settings.poll_cap, settings.poll_base * 2 ** (result.rounds - 1))
        if clock() + wait > deadline:
            result.timed_out = True
            return result
        await sleep(wait)


async def _check_all(
    ledger: Ledger, target: Target, rows: list[dict[str, Any]], settings: VerifySettings
) -> list[tuple[str, str]]:
    """Read each row's engagement and record its status; the (external_id, error) of the
    ones that could not be read."""
    semaphore = asyncio.Semaphore(settings.concurrency)
    fatal: list[FatalError] = []
    unread: list[tuple[str, str]] = []

    async def check(row: dict[str, Any]) -> None:
        async with semaphore:
            if fatal:
                return
            try:
                async for attempt in retry_policy(settings.retry):
                    with attempt:
                        got = await target.get(row["engagement_id"], etag=row["etag"])
            except FatalError as error:
                fatal.append(error)
                return
            except PermanentError as error:
                if error.status == 404:
                    ledger.record_processing(row["external_id"], NOT_FOUND, None)
                else:
                    unread.append((row["external_id"], str(error)[:300]))
                return
            except ApiError as error:
                unread.append((row["external_id"], str(error)[:300]))
                return  # transient past the retry budget: seen next round or next run
            if got.not_modified:
                ledger.record_processing(
                    row["external_id"], row["processing_status"] or "UNKNOWN", got.etag
                )
            else:
                body = got.body or {}
                status = reported_status(body.get("processing_status"))
                ledger.record_processing(row["external_id"], status, got.etag)

    # Every check ends before anything is raised: none may outlive the client (a ledger
    # that cannot be written, e.g. on a full disk, fails them all the same way).
    outcomes = await asyncio.gather(*(check(r) for r in rows), return_exceptions=True)
    if fatal:
        raise fatal[0]
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return unread
