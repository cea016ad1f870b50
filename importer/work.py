"""What the sender is given and gives back: work items, how to send, and the outcome."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from importer import defaults
from importer.errors import ApiError, RunAborted
from importer.outcomes import Outcome
from importer.pacing import PacingSettings
from importer.retry import RetrySettings


@dataclass(frozen=True)
class WorkItem:
    """One create to send, with what the ledger and reports need about it."""

    external_id: str
    manifest: str
    row_number: int
    payload: dict[str, Any]
    payload_hash: str
    field_hashes: dict[str, str]
    cells: dict[str, str]
    contact_ids: tuple[str, ...] | None = None
    contacts_only: bool = False
    """The engagement exists; only its contacts need re-applying."""
    engagement_id: str | None = None
    source_id: str | None = None
    """The CRM's id before the prefix (kept in the ledger to notice a changed prefix)."""
    sent_before: bool = False
    """An earlier run left it ``in_flight``: a 200 is most likely that run's own create."""


@dataclass(frozen=True)
class SendSettings:
    """How hard and how fast to send."""

    concurrency: int = defaults.CONCURRENCY
    rate: float | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    grace_seconds: float = 5.0
    """After a stop, how long requests already in flight are given to finish."""
    rows_per_slot: int = 4
    """Rows in progress per request slot: the others wait out a Retry-After or a back-off."""
    outcome_interval: float = 0.05
    """Seconds an outcome may wait to be committed with others (the in-flight mark never
    waits): a crash loses at most these, whose rows stay in_flight and are re-sent safely."""

    @property
    def outage_budget(self) -> float:
        """Seconds an outage is ridden out: ``max_attempts`` shared back-off steps of 1, 2, 4,
        ... s (capped at 30 s), 31 s with the defaults."""
        steps = range(1, self.retry.max_attempts)
        return float(sum(min(30.0, 2.0 ** (n - 1)) for n in steps))

    def pacing(self) -> PacingSettings:
        """The pacer's settings for these options."""
        return PacingSettings(rate_cap=self.rate, outage_budget=self.outage_budget)


@dataclass
class SendOutcome:
    """Counts by outcome, and why the run stopped early, if it did."""

    counts: Counter[Outcome] = field(default_factory=Counter)
    requests: int = 0
    fatal: ApiError | None = None
    aborted: RunAborted | None = None
    interrupted: bool = False
    pacing: str | None = None
    """What the server's refusals taught (the limit it accepted), when it refused any."""
