"""After a stop: every row of the manifest counted once, as the ledger holds it.

A run that stops (Ctrl-C, SIGTERM, a fatal answer, an outage) has planned only part of the
manifest. Its summary must still add up to the manifest's rows and agree with ``importer
status``, so the rows it did not finish are counted here:

- ``pending`` / ``in_flight``: as the ledger holds them, before and after the stop;
- ``retry (not sent yet)``: rows that failed before, were queued to be sent again, and
  were kept from leaving by the stop;
- invalid and skipped rows after the stop: recorded as pass one read them, counted and
  listed like the others;
- ``not reached``: the rest after the stop (read, not yet planned against the ledger).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from importer.outcomes import REPORTED_ACTIONS, SENT_OUTCOMES, Action

if TYPE_CHECKING:
    from importer.events import Reporter
    from importer.ledger import Ledger
    from importer.manifest_index import ManifestIndex
    from importer.run_summary import RunSummary

NOT_RESENT = "retry (not sent yet)"
"""After a stop: rows that failed before, were to be sent again, and were not."""

NOT_REACHED = "not reached"
"""After a stop: rows read but not yet planned against the ledger (run again to judge
and send them)."""


@dataclass
class Reach:
    """How far a run got through its manifest."""

    rows: int = 0
    """Rows pass one read."""
    reached: int = 0
    """The last row number planned."""
    judged: int = 0
    """Rows planned."""
    queued: int = 0
    """Rows handed to the sender to create."""
    read_to_the_end: bool = False


def count_after_stop(
    summary: RunSummary,
    ledger: Ledger,
    index: ManifestIndex,
    manifest: str,
    run_id: int,
    reach: Reach,
    reporter: Reporter,
) -> None:
    """Add to ``summary`` the rows a stopped run did not finish (see the module's list)."""
    summary.unfinished.update(ledger.unfinished(manifest, up_to_row=reach.reached))
    unfinished_before_the_stop = sum(summary.unfinished.values())
    answered = sum(summary.sent[o] for o in SENT_OUTCOMES)
    left = reach.queued - answered - unfinished_before_the_stop
    if left > 0:
        summary.unfinished[NOT_RESENT] = left
    if reach.read_to_the_end:
        return
    after = 0
    for number, external_id, status, reason in ledger.rejects_after(
        manifest, run_id, reach.reached
    ):
        summary.planned[Action(status)] += 1
        after += 1
        if status in REPORTED_ACTIONS:
            reporter.row_done(external_id, number, status, reason)
    waiting = index.unfinished_after(reach.reached)
    summary.unfinished.update(waiting)
    rest = reach.rows - reach.judged - after - sum(waiting.values())
    if rest > 0:
        summary.unfinished[NOT_REACHED] = rest
