"""The import pipeline: read, validate, index, plan, then send (or only show the plan).

Two passes over the manifest (``importer.plan.passes``) keep memory bounded whatever its size.
``run_import`` then takes each planned batch in turn, in plain sight: sorts it
(``take_stock``), records its rejects and changed rows in the ledger, looks up what the
target already holds, and queues the rest for the sender, until the manifest ends or the
run stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from importer.errors import EXIT_INTERRUPTED
from importer.events import FAILED_BEFORE, Reporter
from importer.ledger import Ledger
from importer.ledger.manifest_index import ManifestIndex
from importer.outcomes import (
    REJECTED_ACTIONS,
    REPORTED_ACTIONS,
    SENT_OUTCOMES,
    Action,
    Outcome,
    Reject,
    RunSummary,
    exit_code_for,
)
from importer.plan.passes import (
    index_manifest,
    kept_record,
    manifest_fingerprint,
    planned_batches,
    preflight_media,
    prepare,
    read_notices,
    refuse_changed_prefixes,
    refuse_changed_zone,
    reread_batches,
    restored,
    usable_record,
)
from importer.plan.planner import PlannedRow, plan_row, settled_planned
from importer.read.kinds import check_readable
from importer.read.manifest import ReadStats
from importer.rows.hashes import field_hashes
from importer.rows.validate import MappedRow
from importer.send import stopping
from importer.send.launch import check_key, confirm_big_run, target_line
from importer.send.sender import Sender, SendOutcome, WorkItem
from importer.settings import ImportSettings
from importer.targets.base import Target

if TYPE_CHECKING:
    from importer.events import Reporter
    from importer.ledger import Ledger
    from importer.outcomes import RunSummary


def reject_of(planned: PlannedRow, manifest: str) -> Reject | None:
    """Invalid, skipped rows and conflicting duplicates are kept, with their cells.

    Invalid rows and duplicates go to errors.csv, skipped ones to skipped.csv.
    """
    if planned.action in REJECTED_ACTIONS:
        row = planned.row
        rule = "; ".join(dict.fromkeys(f"{e.column}: {e.rule}" for e in row.errors))
        if planned.action == Action.SKIPPED:
            rule = ""  # a skipped row's other gaps do not matter: it is never sent
        if planned.action == Action.DUPLICATE:
            rule = "external_id: duplicate"
        return Reject(
            manifest,
            row.row_number,
            row.external_id,
            planned.action,
            planned.reason,
            row.cells,
            rule,
        )
    return None


def work_item(planned: PlannedRow, manifest: str, timezone: str | None = None) -> WorkItem:
    """The create request (or contacts-only update) for a planned row; ``timezone``: the
    zone its time without an offset was read in, recorded with it."""
    row = planned.row
    assert row.payload is not None and row.external_id is not None
    return WorkItem(
        external_id=row.external_id,
        manifest=manifest,
        row_number=row.row_number,
        payload=row.payload,
        payload_hash=row.payload_hash or "",
        field_hashes=field_hashes(row.payload),
        cells=row.cells,
        contact_ids=row.contact_ids,
        contacts_only=not planned.sends,
        engagement_id=planned.engagement_id,
        sent_before=planned.sent_before,
        source_id=row.source_id,
        timezone=timezone,
    )


@dataclass
class BatchStock:
    """What one planned batch holds: rows to keep as rejects, to note, and to send."""

    rejects: list[Reject] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    """Imported rows that differ from the manifest now, with the differing fields."""
    unchanged: list[str] = field(default_factory=list)
    imported: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    """(external_id, source id, media URL) of rows already imported: older ledgers learn them."""
    work: list[WorkItem] = field(default_factory=list)
    contacts_stuck: dict[str, str] = field(default_factory=dict)
    """sync-contacts: imported rows whose contacts cannot be applied (the row is invalid)."""


def take_stock(
    batch: list[PlannedRow],
    manifest: str,
    contacts_only: bool,
    summary: RunSummary,
    reporter: Reporter,
    timezone: str | None = None,
) -> BatchStock:
    """Sort a planned batch; count, and report, the rows it does not send. Writes nothing."""
    stock = BatchStock()
    for planned in batch:
        reject = reject_of(planned, manifest)
        if reject is not None:
            stock.rejects.append(reject)
        external_id = planned.row.external_id or ""
        if planned.action == Action.CHANGED:
            stock.changed[external_id] = list(planned.changed)
        elif planned.action == Action.IMPORTED:
            stock.unchanged.append(external_id)
        if planned.action in (Action.IMPORTED, Action.CHANGED) and planned.row.payload:
            media_url = planned.row.payload.get("media_url")
            stock.imported.append((external_id, planned.row.source_id, media_url))
        if planned.action == Action.SAME_RECORDING:
            # Sent, but said: the user decides whether two engagements are right.
            summary.planned[planned.action] += 1
            reporter.row_done(external_id, planned.row.row_number, planned.action, planned.reason)
        if planned.sends and contacts_only:
            summary.sent[Outcome.NOT_IMPORTED_YET] += 1
        if contacts_only and planned.action == Action.INVALID and planned.engagement_id:
            # The engagement exists, its row is broken: its contacts are what is stuck.
            stock.contacts_stuck[external_id] = (
                f"row {planned.row.row_number} is invalid: {planned.reason}"
            )
        if not planned.sends:
            summary.planned[planned.action] += 1
            if planned.action in REPORTED_ACTIONS:
                # Not "failed": that is a request's outcome, which the progress counts.
                shown = FAILED_BEFORE if planned.action == Action.FAILED else planned.action
                reporter.row_done(
                    planned.row.external_id or "", planned.row.row_number, shown, planned.reason
                )
    stock.work = [
        work_item(planned, manifest, timezone)
        for planned in batch
        if planned.sync_contacts or (planned.sends and not contacts_only)
    ]
    return stock


async def run_import(
    settings: ImportSettings,
    ledger: Ledger,
    target: Target,
    reporter: Reporter,
    run_id: int,
    *,
    install_signal_handlers: bool = True,
) -> RunSummary:
    """Plan the manifest against the ledger and send what needs sending."""
    started = time.monotonic()
    manifest_key = str(settings.manifest.resolve())
    reporter.notice(target_line(target, str(settings.manifest)))
    check_readable(settings.manifest)  # a typo in the path is said before any request
    await check_key(target)  # a refused key stops here, before the file is even read
    fingerprint = manifest_fingerprint(settings)
    kept = usable_record(ledger.kept_manifest(manifest_key, fingerprint) if fingerprint else None)
    unprepared = settings
    if kept is not None:
        settings, index, duplicates, seen = restored(ledger, settings, manifest_key, kept)
        notices = list(kept["prepare_notices"])
    else:
        settings, notices = prepare(settings, ledger)
    for notice in notices:
        reporter.notice(notice)
    if settings.check_media:
        await preflight_media(ledger, settings, reporter)
    stats = ReadStats()

    def record_rejects(batch: list[MappedRow]) -> None:
        # Judged as it is read: whatever stops the run later, these rows are in the ledger.
        rejects = [
            reject_of(plan_row(row, None, None, settings.plan), manifest_key)
            for row in batch
            if not row.valid or row.skip_reason is not None
        ]
        ledger.add_rejects([r for r in rejects if r is not None], run_id)

    prefixes: set[str] = set()
    record = None
    if kept is None:
        index, duplicates, seen = index_manifest(
            ledger, settings, stats, record_rejects, prefixes, settle=True
        )
        said = read_notices(settings, stats)
        record = kept_record(unprepared, settings, notices, said, seen, duplicates)
    else:
        said = list(kept["read_notices"])
        prefixes = {p for p in kept.get("prefixes", []) if isinstance(p, str)}
    for notice in said:
        reporter.notice(notice)
    conflicting = [i for i, d in duplicates.items() if d.conflicting]
    # The counts first: the one pass over the index they take also finds the rows the
    # prefix check and the pending registration need (nothing is written in between). On
    # pass one's scratch index, the rows it found settled are not joined again.
    ahead = index.summary(
        conflicting,
        only_failed=settings.plan.only_failed,
        include_permanent=settings.plan.include_permanent,
    )
    if fingerprint is not None and record is not None:
        record["prefixes"] = sorted(prefixes)  # the zone check reads them on a kept run
        kept_table = ledger.keep_manifest(manifest_key, fingerprint, record)
        if kept_table is not None:  # the same rows, in key order and indexed: cheaper joins
            index.kept_in(kept_table)
    refuse_changed_prefixes(index, settings, conflicting)
    refuse_changed_zone(ledger, settings, prefixes)
    reporter.notice(f"{seen['rows']:,} row(s) read from {settings.manifest.name}.")
    if kept is not None:
        reporter.notice(
            "Unchanged since a run kept its index: not read again before sending; rows "
            "imported unchanged before are not checked again."
        )
    for notice in settled_notice(seen, after_rows_read=True):
        reporter.notice(notice)
    if not settings.contacts_only:
        confirm_big_run(target, ahead["to send"], settings.confirm)
    if not (settings.plan.only_failed or settings.contacts_only):
        index.register_pending(manifest_key, conflicting)
    if settings.contacts_only:
        reporter.notice("Applying contact sets that differ from the ones last applied.")
    else:
        reporter.progress_total(
            ahead["to send"],
            {
                name: ahead[name]
                for name in ("already imported", "changed since import", "failed before")
            },
        )
    summary = RunSummary()
    sender = Sender(target, ledger, run_id, settings.send, reporter)

    read_to_the_end = False
    reached = judged = queued = 0
    """The last manifest row judged, and how many rows were: the rest was not read."""
    with _signals_stop(sender, install_signal_handlers):
        sender.start()
        try:
            batches = (
                reread_batches(ledger, settings, duplicates, index)
                if kept is not None
                else planned_batches(ledger, settings, duplicates, index)
            )
            for planned_batch in batches:
                batch = planned_batch.rows
                # Rows known by their key as imported unchanged: counted, nothing to do.
                if planned_batch.settled:
                    summary.planned[Action.IMPORTED] += planned_batch.settled
                # The whole batch is judged and recorded before any of it is queued: a stop
                # while a queue slot is awaited must not lose a row already reported.
                stock = take_stock(
                    batch,
                    manifest_key,
                    settings.contacts_only,
                    summary,
                    reporter,
                    settings.mapping.timezone,
                )
                ledger.add_rejects(stock.rejects, run_id)
                ledger.note_changes(stock.changed, stock.unchanged)
                ledger.note_recordings(stock.imported)
                for external_id, message in stock.contacts_stuck.items():
                    ledger.record_contacts_failure(external_id, message)
                if planned_batch.last_row:
                    reached = planned_batch.last_row
                judged += len(batch) + planned_batch.settled
                queued += sum(not item.contacts_only for item in stock.work)
                # A target without idempotent creates (DevRev) is looked up first: rows it
                # holds are recorded, not sent. In-flight rows of a crashed run are among them.
                creates = await sender.look_up([i for i in stock.work if not i.contacts_only])
                # Then each row's reference (DevRev's parent) becomes the target's own id.
                creates = await sender.resolve_references(creates)
                ready = {item.external_id: item for item in creates}
                work = [
                    i if i.contacts_only else ready[i.external_id]
                    for i in stock.work
                    if i.contacts_only or i.external_id in ready
                ]
                if not await _queue(sender, work):
                    break
                await asyncio.sleep(0)  # let workers run between batches
            else:
                read_to_the_end = True
        finally:
            outcome = await sender.finish()
    if read_to_the_end:
        # Only a complete pass knows every reject: older ones of this manifest are now stale.
        # A stopped run keeps them, so nothing is forgotten before it is decided again.
        ledger.drop_stale_rejects(manifest_key, run_id)
        summary.not_in_manifest = _name_left_behind(index, manifest_key, run_id, reporter)
    _merge(summary, outcome)
    if outcome.fatal or outcome.aborted or outcome.interrupted:
        reach = Reach(seen["rows"], reached, judged, queued, read_to_the_end)
        count_after_stop(summary, ledger, index, manifest_key, run_id, reach, reporter)
    summary.seconds = time.monotonic() - started
    summary.exit_code = exit_code_for(summary, settings.on_change)
    if outcome.fatal is not None:
        summary.stop_reason = str(outcome.fatal)
        summary.exit_code = outcome.fatal.exit_code
    elif outcome.aborted is not None:
        summary.stop_reason = str(outcome.aborted)
        summary.exit_code = outcome.aborted.exit_code
    elif outcome.interrupted:
        summary.stop_reason = "interrupted"
        summary.exit_code = EXIT_INTERRUPTED
    return summary


def _name_left_behind(
    index: ManifestIndex, manifest_key: str, run_id: int, reporter: Reporter
) -> int:
    """Say which rows the ledger holds unfinished for this manifest that it no longer has."""
    count, named = index.left_behind(manifest_key, run_id)
    if count:
        more = f" and {count - len(named):,} more" if count > len(named) else ""
        reporter.notice(
            f"{count:,} row(s) the ledger holds as pending or in flight for this manifest "
            f"are no longer in it: {', '.join(named)}{more}. A run stopped before sending them "
            "and the manifest was cut short or replaced since: pass the full manifest again "
            "(in-flight rows may already exist in the target)."
        )
    return count


async def _queue(sender: Sender, work: list[WorkItem]) -> bool:
    """Hand a batch's work to the sender; False as soon as the run is stopping."""
    for item in work:
        if not await sender.put(item):
            return False
    return True


def _merge(summary: RunSummary, outcome: SendOutcome) -> None:
    summary.sent.update(outcome.counts)
    summary.requests = outcome.requests
    summary.pacing = outcome.pacing


@contextlib.contextmanager
def _signals_stop(sender: Sender, install: bool) -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the sender cleanly instead of killing the process.

    Under ``importer.send.stopping`` (the CLI), a signal that came during planning stops the
    sender before its first request; one that comes later stops it at once.
    """
    loop = asyncio.get_running_loop()
    stop = stopping.current()
    if stop is not None:
        if stop.requested:
            sender.interrupt()
        with stop.on_request(lambda: loop.call_soon_threadsafe(sender.interrupt)):
            yield
        return
    if not install:
        yield
        return
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, sender.interrupt)
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def plan_manifest(
    settings: ImportSettings,
    ledger: Ledger,
    on_row: Callable[[PlannedRow], None],
    reporter: Reporter | None = None,
    on_notice: Callable[[str], None] | None = None,
    on_new_rows: Callable[[int], bool] | None = None,
    on_settled_rows: Callable[[int], None] | None = None,
    *,
    spool_records: bool = False,
) -> Counter[Action]:
    """The plan alone: every row's action, sending no create and writing nothing.

    ``on_new_rows`` is told first of a batch whose rows are all ``new``, by their number:
    True when it takes them so, and ``on_row`` sees none of them (nor are they read back).
    With ``on_settled_rows``, rows the ledger knows by their key as imported unchanged are
    not mapped, as in a run: ``on_row`` sees the first few of each batch (``settled_planned``
    rows, in file order with the others) and ``on_settled_rows`` is told how many more;
    without it, every row is mapped and seen. ``spool_records``: the batches of valid rows
    ``on_row`` sees are mapped again rather than kept mapped (for a plan that sees few)."""
    settings, notices = prepare(settings, ledger)
    if settings.check_media:
        from importer.events import HumanReporter

        asyncio.run(preflight_media(ledger, settings, reporter or HumanReporter()))
    stats = ReadStats()
    prefixes: set[str] = set()
    index, duplicates, seen = index_manifest(
        ledger,
        settings,
        stats,
        prefixes=prefixes,
        settle=on_settled_rows is not None,
        spool_records=spool_records,
    )
    refuse_changed_zone(ledger, settings, prefixes)
    for notice in [
        *notices,
        *read_notices(settings, stats),
        *settled_notice(seen, after_rows_read=False),
    ]:
        if on_notice is not None:
            on_notice(notice)
    counts: Counter[Action] = Counter()
    file = str(settings.manifest)
    for batch in planned_batches(ledger, settings, duplicates, index):
        shown = [settled_planned(file, *row) for row in batch.settled_shown]
        if batch.new_rows and on_new_rows is not None and on_new_rows(batch.new_rows):
            counts[Action.NEW] += batch.new_rows
            rows: Iterable[PlannedRow] = shown
        else:
            rows = heapq.merge(batch.rows, shown, key=lambda planned: planned.row.row_number)
        for planned in rows:
            counts[planned.action] += 1
            on_row(planned)
        if batch.settled > len(shown):
            counts[Action.IMPORTED] += batch.settled - len(shown)
            assert on_settled_rows is not None  # rows are settled only when it is given
            on_settled_rows(batch.settled - len(shown))
    return counts


def settled_notice(seen: Counter[str], *, after_rows_read: bool) -> list[str]:
    """What pass one says of the rows it knew by their key, if any (``after_rows_read``:
    said right after how many rows were read)."""
    if not seen["settled"]:
        return []
    rows = "of them" if after_rows_read else "row(s)"
    return [
        f"{seen['settled']:,} {rows} imported unchanged before (known by their hash): "
        "not checked again."
    ]


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
