"""What a run did, counted by plan action and by send outcome, and the exit code that follows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from importer.errors import EXIT_OK, EXIT_ROWS_FAILED
from importer.outcomes import Action, Outcome


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
        }


def exit_code_for(summary: RunSummary, on_change: str) -> int:
    """0 when every row is in AskElephant; 1 when some are not (or changed, if reported)."""
    planned, sent = summary.planned, summary.sent
    bad = planned[Action.INVALID] + planned[Action.DUPLICATE] + planned[Action.FAILED]
    bad += sent[Outcome.FAILED] + sent[Outcome.CONTACTS_FAILED]
    if on_change == "report":
        bad += planned[Action.CHANGED] + sent[Outcome.CHANGED]
    return EXIT_ROWS_FAILED if bad else EXIT_OK


def plan_exit_code(counts: Counter[Action]) -> int:
    """``importer plan``: 1 when some row will not be sent as it is (invalid, duplicate,
    prefix changed)."""
    refused = (Action.INVALID, Action.DUPLICATE, Action.PREFIX_CHANGED)
    return EXIT_ROWS_FAILED if any(counts[action] for action in refused) else EXIT_OK
