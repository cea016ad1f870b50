"""Plain values that cross from the ledger to the planner and back: no SQL, no I/O.

The planner (``importer.plan``) stays pure by reading these, never the database layer.
"""

from __future__ import annotations

from dataclasses import dataclass


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
