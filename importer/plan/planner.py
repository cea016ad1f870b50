"""Planning: what to do with each manifest row, given what the ledger knows. Pure.

The same plan (actions are ``importer.outcomes.Action``) drives ``importer plan``,
``importer run --dry-run`` and ``importer run``:

    ===================  ==========================================================
    action               meaning
    ===================  ==========================================================
    new                  not sent yet (or only planned): send it
    retry                failed transiently, or interrupted mid-request: send again
    already imported     created or existing, and unchanged since: skip
    changed since import the row differs from what was sent; create cannot update it
    failed               rejected by the server for good, and unchanged since: skip
    invalid              breaks a rule; never sent
    duplicate            shares its external_id with other rows holding other values
    not retried          ``importer retry`` only: no run left the row unfinished (and it is
                         not imported unchanged: that is ``already imported``)
    skipped              nothing to import (e.g. no media URL with ``--skip-without-media``);
                         recorded, never sent, and not a problem for the exit code
    repeated             same external_id and values as an earlier row: sent once, with it
    ===================  ==========================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from importer.outcomes import SENDING_ACTIONS, Action, LedgerFact, Status
from importer.rows.dates import same_instant
from importer.rows.hashes import contacts_hash, field_hashes, payload_hash
from importer.rows.validate import MappedRow
from importer.settings import PlanOptions


@dataclass(frozen=True)
class DuplicateInfo:
    """For an external_id seen on more than one row: the first row, and if payloads differ."""

    first_row: int
    conflicting: bool
    rows: tuple[int, ...] = ()
    """Every row with this external_id (the first ones, when there are very many)."""
    more: int = 0
    """Rows beyond ``rows``."""
    lookalike: str = ""
    """For an id equal to another under Unicode NFKC: why the row is not sent, said."""

    def others(self, row_number: int) -> str:
        """The other rows, said for people: ``row 8``, ``rows 3, 9 and 2 more``."""
        others = [str(n) for n in self.rows if n != row_number]
        text = ("row " if len(others) + self.more == 1 else "rows ") + ", ".join(others)
        return text + (f" and {self.more:,} more" if self.more else "")


def lookalike_duplicates(pairs: Iterable[tuple[str, str, int | None]]) -> dict[str, DuplicateInfo]:
    """external_id -> its entry as a duplicate, from ``(external_id, lookalike, its row or
    None for the ledger)`` pairs (``Ledger.lookalike_ids``): never sent, like conflicting
    duplicates, whichever of the two came first."""
    others: dict[str, dict[str, int | None]] = {}
    for external_id, other, row in pairs:
        known = others.setdefault(external_id, {})
        if other not in known or (row is not None and known[other] is None):
            known[other] = row  # a manifest row says more than the ledger
    found = {}
    for external_id, known in others.items():
        other, row = next(iter(known.items()))
        where = f"on row {row}" if row is not None else "which the ledger holds as sent before"
        rows = tuple(sorted(n for n in known.values() if n is not None))
        found[external_id] = DuplicateInfo(
            min(rows, default=0),
            True,
            rows[:10],
            max(len(rows) - 10, 0),
            f"external_id {external_id!a} and {other!a} {where} differ as text but "
            "are one id under Unicode NFKC (an accent written apart, a full-width digit, a "
            "ligature): the API could take them for one engagement, so this row is not "
            "sent; write both ids alike",
        )
    return found


EXAMPLES_PER_ACTION = 5
"""How many rows of each action a plan shows."""

UNREAD_RULES = ("row_shape", "encoding")
"""Errors that mean the row's cells were not read as written: a blank there proves nothing."""


@dataclass(frozen=True)
class PlannedRow:
    """A row, its action and the reason, said for people."""

    row: MappedRow
    action: Action
    reason: str = ""
    sync_contacts: bool = False
    """The row's contact set differs from the one last applied."""
    engagement_id: str | None = None
    changed: tuple[str, ...] = ()
    """For ``changed since import``: the fields that differ."""
    sent_before: bool = False
    """An earlier run left the row ``in_flight``: its create may have been applied."""

    @property
    def sends(self) -> bool:
        return self.action in SENDING_ACTIONS


def settled_planned(file: str, row_number: int, external_id: str) -> PlannedRow:
    """A row known by its key as imported unchanged (never mapped), as a plan shows it:
    ``already imported``, nothing to send; its request is not known, and not needed."""
    return PlannedRow(MappedRow(file, row_number, {}, external_id, None), Action.IMPORTED)


def plan_row(
    row: MappedRow,
    fact: LedgerFact | None,
    duplicate: DuplicateInfo | None = None,
    options: PlanOptions | None = None,
) -> PlannedRow:
    """Decide one row's action."""
    options = options or PlanOptions()
    if row.skip_reason is not None and not any(e.rule in UNREAD_RULES for e in row.errors):
        # Nothing to import, whatever else the row lacks (unless its cells were misread:
        # then the media URL may be there after all).
        return PlannedRow(row, Action.SKIPPED, row.skip_reason)
    if not row.valid:
        # An imported row keeps its engagement id: sync-contacts says its contacts are stuck.
        imported = fact is not None and fact.status in (Status.CREATED, Status.EXISTING)
        engagement_id = fact.engagement_id if fact is not None and imported else None
        return PlannedRow(row, Action.INVALID, row.error_text(), engagement_id=engagement_id)
    if duplicate is not None:
        if duplicate.lookalike:
            return PlannedRow(row, Action.DUPLICATE, duplicate.lookalike)
        if duplicate.conflicting:
            return PlannedRow(
                row,
                Action.DUPLICATE,
                f"external_id {row.external_id} is also on {duplicate.others(row.row_number)} "
                "with different values (the API would keep only the first); make the ids unique",
            )
        if duplicate.first_row != row.row_number:
            return PlannedRow(row, Action.REPEATED, f"same as row {duplicate.first_row}; sent once")
    status = fact.status if fact else None
    imported = status in (Status.CREATED, Status.EXISTING)
    if options.only_failed and imported and fact and fact.payload_hash == row.payload_hash:
        # Called what retry's start calls them ("Skipping 2 already imported."), not
        # "not retried". A row changed since is left to `importer run`, which judges it.
        return PlannedRow(row, Action.IMPORTED, engagement_id=fact.engagement_id)
    if options.only_failed and status not in (Status.FAILED, Status.IN_FLIGHT, Status.PENDING):
        return PlannedRow(row, Action.NOT_RETRIED, "not left unfinished; `importer run` handles it")
    if fact is None or status in (Status.PENDING, None):
        return PlannedRow(row, Action.NEW)
    if status == Status.IN_FLIGHT:
        return PlannedRow(
            row, Action.RETRY, "interrupted mid-request; the re-send is safe", sent_before=True
        )
    changed = fact.payload_hash != row.payload_hash
    if status == Status.FAILED:
        # A refused answer may have named an engagement made anyway: checked before a re-create.
        made = fact.engagement_id
        if fact.transient:
            return PlannedRow(row, Action.RETRY, "failed transiently before", engagement_id=made)
        if changed:
            why = "rejected before, and the row has changed since"
            return PlannedRow(row, Action.NEW, why, engagement_id=made)
        if options.include_permanent:
            why = "rejected before; re-sent on request"
            return PlannedRow(row, Action.RETRY, why, engagement_id=made)
        return PlannedRow(
            row, Action.FAILED, "rejected by the server before; fix the row and run again"
        )
    # created or existing
    sync = _contacts_differ(row, fact)
    if changed:
        fields = tuple(changed_fields(row, fact))
        return PlannedRow(
            row,
            Action.CHANGED,
            "fields differ from what was imported: " + ", ".join(fields),
            sync_contacts=sync,
            engagement_id=fact.engagement_id,
            changed=fields,
        )
    return PlannedRow(row, Action.IMPORTED, sync_contacts=sync, engagement_id=fact.engagement_id)


def plan_rows(
    rows: list[MappedRow],
    facts: dict[str, LedgerFact],
    duplicates: dict[str, DuplicateInfo],
    options: PlanOptions,
) -> list[PlannedRow]:
    """``plan_row`` for each row, given the ledger's facts and the repeated ids by external_id.

    A valid row the ledger does not hold, on no other row, with something to import is
    ``new`` without ``plan_row``'s questions: almost every row of a first import."""
    plain_new = not options.only_failed
    new = object.__new__
    set_attribute = object.__setattr__  # a frozen dataclass: its fields set as __init__ would
    planned = []
    for row in rows:
        external_id = row.external_id
        fact = facts.get(external_id) if external_id else None
        duplicate = duplicates.get(external_id) if external_id else None
        if (
            plain_new
            and fact is None
            and duplicate is None
            and row.skip_reason is None
            and not row.errors
            and row.payload is not None
        ):
            fresh = new(PlannedRow)
            fields = _NEW_ROW.copy()
            fields["row"] = row
            set_attribute(fresh, "__dict__", fields)
            planned.append(fresh)
        else:
            planned.append(plan_row(row, fact, duplicate, options))
    return planned


_NEW_ROW: dict[str, Any] = {
    field.name: field.default for field in dataclasses.fields(PlannedRow)
} | {"action": Action.NEW}
"""A ``new`` row's fields: ``PlannedRow(row, Action.NEW)``'s, its row set apart."""


def _contacts_differ(row: MappedRow, fact: LedgerFact) -> bool:
    if row.contact_ids is None:
        return False
    return contacts_hash(row.contact_ids) != fact.contacts_hash


def changed_fields(row: MappedRow, fact: LedgerFact) -> list[str]:
    """The payload fields whose values differ from what was sent."""
    assert row.payload is not None
    now = field_hashes(row.payload)
    before = fact.field_hashes
    if not before:
        # Without per-field hashes every field would look changed: say we cannot tell.
        return ["(unknown: the earlier import predates per-field tracking)"]
    names = sorted(set(now) | set(before))
    differ = [name for name in names if now.get(name) != before.get(name)]
    return differ or ["(unknown: the earlier import predates per-field tracking)"]


@dataclass(frozen=True)
class Held:
    """What AskElephant holds after answering a create, as the ledger records it."""

    payload_hash: str
    field_hashes: dict[str, str]
    changed: tuple[str, ...] = ()
    """Fields it holds with other values than were sent: the row is changed since import."""
    difference: str = ""
    """Those fields with both values, for people: ``title 'Old' there, 'New' in the manifest``."""


def judge_answer(
    payload: dict[str, Any],
    sent_hash: str,
    sent_field_hashes: dict[str, str],
    *,
    created: bool,
    answer: dict[str, Any],
) -> Held:
    """A ``201`` holds what was sent; a ``200`` holds what already existed (``server_view``).

    Recording what is held, not what was sent, makes the next plan say "changed" when the
    two differ.
    """
    if created:
        return Held(sent_hash, sent_field_hashes)
    held = server_view(payload, answer)
    changed = tuple(sorted(name for name in held if held[name] != payload[name]))
    difference = ", ".join(
        f"{name} {held[name]!r} there, {payload[name]!r} in the manifest" for name in changed
    )
    return Held(payload_hash(held), field_hashes(held), changed, difference)


# Create fields the engagement answer shows back, by the name it uses for them.
ECHOED_FIELDS = {
    "title": "title",
    "type": "engagement_type",
    "start_at": "start_at",
    "is_private": "is_private",
}


def server_view(payload: dict[str, Any], engagement: dict[str, Any]) -> dict[str, Any]:
    """The payload with the values AskElephant actually holds, where its answer shows them.

    A ``200`` returns the engagement that already existed, unchanged: made by an earlier
    attempt whose answer was lost, or by another tool, maybe from other values.
    """
    view = dict(payload)
    for field, answer_field in ECHOED_FIELDS.items():
        held = engagement.get(answer_field)
        if held is None or field not in payload:
            continue
        if field == "start_at":
            if same_instant(str(payload[field]), str(held)):
                continue
            view[field] = str(held)
        elif held != payload[field]:
            view[field] = held
    return view
