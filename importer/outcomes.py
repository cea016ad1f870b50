"""The names of what happens to a row, typed: plan actions, send outcomes, ledger statuses.

Each is a ``StrEnum``: a member *is* its text, so it prints, sorts, keys a ``Counter`` and
goes into JSON or SQLite exactly as the plain string did.

>>> Action.REPEATED == "repeated" and f"{Outcome.CONTACTS_FAILED}" == "contacts_failed"
True
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

from importer.errors import EXIT_OK, EXIT_ROWS_FAILED

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, Enum):
        """``enum.StrEnum`` before Python 3.11."""

        def __str__(self) -> str:
            return str(self.value)


class Action(StrEnum):
    """What the plan does with one manifest row (``importer plan`` shows these)."""

    NEW = "new"
    """Not sent yet (or only planned): send it."""
    RETRY = "retry"
    """Failed transiently, or interrupted mid-request: send again."""
    IMPORTED = "already imported"
    """Created or existing, and unchanged since: skip."""
    CHANGED = "changed since import"
    """The row differs from what was sent; create cannot update it."""
    FAILED = "failed"
    """Rejected by the server for good in an earlier run, and unchanged since: skip."""
    INVALID = "invalid"
    """Breaks a rule; never sent."""
    DUPLICATE = "duplicate"
    """Shares its external_id with other rows that hold different values; never sent."""
    NOT_RETRIED = "not retried"
    """``importer retry`` only: the row did not fail."""
    SKIPPED = "skipped"
    """Nothing to import (e.g. no media URL with ``--skip-without-media``)."""
    REPEATED = "repeated"
    """The same values as an earlier row with its external_id: sent once, with that row."""
    PREFIX_CHANGED = "prefix changed"
    """Imported before under another prefix (same source id and media URL); not sent."""
    SAME_RECORDING = "same recording"
    """Its media URL is imported, or on an earlier row, under another id: sent, and said."""


SENDING_ACTIONS = frozenset({Action.NEW, Action.RETRY, Action.SAME_RECORDING})
REJECTED_ACTIONS = frozenset({Action.INVALID, Action.DUPLICATE, Action.SKIPPED})
"""Rows kept in the ledger's rejects table, with their cells (errors.csv, skipped.csv)."""
REPORTED_ACTIONS = frozenset(
    {
        Action.INVALID,
        Action.DUPLICATE,
        Action.REPEATED,
        Action.CHANGED,
        Action.FAILED,
        Action.PREFIX_CHANGED,
        Action.SAME_RECORDING,
    }
)
"""Rows not sent that a run reports one by one (``row_done``)."""


class Outcome(StrEnum):
    """What sending did to a row (a run's counts and ``row_done`` events)."""

    CREATED = "created"
    EXISTING = "existing"
    EXISTING_OWN = "existing (an earlier attempt of this run)"
    """A 200 after an attempt of this run whose answer was lost: ours, not someone else's."""
    EXISTING_EARLIER = "existing (an earlier attempt, answer lost)"
    """A 200 for a row an earlier run left ``in_flight`` (it died mid-request): that run's
    create was applied, its answer never recorded."""
    FAILED = "failed"
    """The server refused the row in this run, or it failed transiently past its retries."""
    IN_DOUBT = "in doubt"
    """A create that may have been applied (answer lost) and that a look-up does not find
    yet: not created again until a look-up after the settling time (a later run)."""
    CHANGED = "changed since import"
    """A 200: AskElephant already held the engagement with other values."""
    CONTACTS_APPLIED = "contacts_applied"
    CONTACTS_FAILED = "contacts_failed"
    NOT_IMPORTED_YET = "not imported yet"
    """``importer sync-contacts``: the row has no engagement yet to apply contacts to."""


SENT_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.CREATED,
    Outcome.EXISTING,
    Outcome.EXISTING_OWN,
    Outcome.EXISTING_EARLIER,
    Outcome.CHANGED,
    Outcome.FAILED,
    Outcome.IN_DOUBT,
)
"""Rows a request was sent for, whatever came of it (progress bar, rows per second)."""


class Status(StrEnum):
    """A row's status in the ledger."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    CREATED = "created"
    EXISTING = "existing"
    FAILED = "failed"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"


FINAL_SUCCESS = (Status.CREATED, Status.EXISTING)
UNFINISHED = (Status.PENDING, Status.IN_FLIGHT)


@dataclass(frozen=True)
class LedgerFact:
    """What the ledger knows of one external_id, as planning needs it."""

    status: str
    payload_hash: str | None
    transient: bool
    field_hashes: dict[str, str]
    contacts_hash: str | None
    engagement_id: str | None


@dataclass(frozen=True)
class Reject:
    """A manifest row that will not be sent, and why."""

    manifest: str
    row_number: int
    external_id: str | None
    status: str
    reason: str
    cells: dict[str, str]
    rule: str = ""
    """The broken rules by column (``start_at: date_time``): what ``status`` groups by."""


@dataclass
class RunSummary:
    """What a run did, by outcome, and the exit code that follows."""

    planned: Counter[Action] = field(default_factory=Counter)
    """Rows not sent, by plan action."""
    sent: Counter[Outcome] = field(default_factory=Counter)
    """What sending did, by outcome."""
    unfinished: Counter[str] = field(default_factory=Counter)
    """After a stop: the manifest's rows still pending or in flight, by ledger status."""
    requests: int = 0
    seconds: float = 0.0
    exit_code: int = EXIT_OK
    stop_reason: str | None = None
    pacing: str | None = None
    """What the server's 429s taught, e.g. the rate it accepted; None when it refused none."""
    not_in_manifest: int = 0
    """Rows the ledger holds pending or in flight for this manifest that it no longer
    contains (cut short or replaced after a stop): never sent, so the run is not a success."""

    @property
    def counts(self) -> Counter[str]:
        """All counts by the name people see: the plan's ``failed`` (refused in an earlier
        run) and sending's ``failed`` (in this one) add up under one name."""
        total: Counter[str] = Counter()
        for part in (self.planned, self.sent, self.unfinished):
            for name, count in part.items():
                total[str(name)] += count
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code,
            "stop_reason": self.stop_reason,
            "pacing": self.pacing,
            "not_in_manifest": self.not_in_manifest,
        }


def exit_code_for(summary: RunSummary, on_change: str) -> int:
    """0 when every row is in AskElephant; 1 when some are not (or changed, if reported)."""
    planned, sent = summary.planned, summary.sent
    bad = planned[Action.INVALID] + planned[Action.DUPLICATE] + planned[Action.FAILED]
    bad += sent[Outcome.FAILED] + sent[Outcome.CONTACTS_FAILED] + sent[Outcome.IN_DOUBT]
    bad += summary.not_in_manifest
    if on_change == "report":
        bad += planned[Action.CHANGED] + sent[Outcome.CHANGED]
    return EXIT_ROWS_FAILED if bad else EXIT_OK


def plan_exit_code(counts: Counter[Action]) -> int:
    """``importer plan``: 1 when some row will not be sent as it is (invalid, duplicate,
    prefix changed)."""
    refused = (Action.INVALID, Action.DUPLICATE, Action.PREFIX_CHANGED)
    return EXIT_ROWS_FAILED if any(counts[action] for action in refused) else EXIT_OK


Name = TypeVar("Name", bound=str)


SUMMARY_ORDER: tuple[str, ...] = (
    Outcome.CREATED,
    Outcome.EXISTING,
    Outcome.EXISTING_OWN,
    Outcome.EXISTING_EARLIER,
    Outcome.FAILED,
    Action.IMPORTED,
    Action.CHANGED,
    Action.RETRY,
    Action.INVALID,
    Action.DUPLICATE,
    Action.REPEATED,
    Action.SKIPPED,
    Outcome.CONTACTS_APPLIED,
    Outcome.CONTACTS_FAILED,
    Status.PENDING,
    Status.IN_FLIGHT,
)


def format_counts(counts: Mapping[Name, int], title: str) -> str:
    """A small aligned table of counts, known outcomes first."""
    plain = {str(name): count for name, count in counts.items()}
    names = [n for n in SUMMARY_ORDER if plain.get(n)] + sorted(
        n for n in plain if n not in SUMMARY_ORDER and plain.get(n)
    )
    lines = [title]
    width = max((len(n) for n in names), default=0)
    lines += [f"  {name.replace('_', ' '):<{width}}  {plain[name]:>9,}" for name in names]
    if not names:
        lines.append("  (no rows)")
    return "\n".join(lines)


def rows_done(counts: Mapping[str, int]) -> int:
    """Rows a run sent a request for: creates, or (sync-contacts) contact sets."""
    sent = sum(counts.get(k, 0) for k in SENT_OUTCOMES)
    return sent or counts.get(Outcome.CONTACTS_APPLIED, 0) + counts.get(Outcome.CONTACTS_FAILED, 0)
