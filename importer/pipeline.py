"""The import pipeline: read, validate, index, plan, then send (or only show the plan).

Two passes over the manifest keep memory bounded whatever its size: the first validates
every row and indexes (external_id, row, payload hash) in SQLite's temp store, which finds
duplicates across the whole file; the second plans each row against the ledger and feeds
the sendable ones to the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from importer import contract
from importer.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_ROWS_FAILED
from importer.events import FAILED_BEFORE, Reporter
from importer.facts import Reject
from importer.ledger import Ledger
from importer.manifest import ReadStats, SourceOptions, read_columns, read_manifest
from importer.manifest_index import ManifestIndex
from importer.outcomes import REJECTED_ACTIONS, REPORTED_ACTIONS, Action, Outcome
from importer.plan import DuplicateInfo, PlannedRow, PlanOptions, plan_row
from importer.send import Sender, SendOutcome, SendSettings, WorkItem
from importer.targets.base import Target
from importer.validate import (
    MappedRow,
    MappingOptions,
    RowError,
    TranscriptReader,
    TranscriptUnavailable,
    field_hashes,
    map_row,
)

# A transcript file this much larger than the byte limit is refused without being read.
TRANSCRIPT_READ_LIMIT = contract.TRANSCRIPT_MAX_BYTES * 4


@dataclass(frozen=True)
class ImportSettings:
    """One import: which manifest, how rows map, how to plan and how to send."""

    manifest: Path
    mapping: MappingOptions = field(default_factory=MappingOptions)
    source: SourceOptions = field(default_factory=SourceOptions)
    """How to read the file: delimiter, encoding, sheet."""
    plan: PlanOptions = field(default_factory=PlanOptions)
    send: SendSettings = field(default_factory=SendSettings)
    on_change: str = "report"
    """``report``: a changed row counts against the exit code; ``skip``: it does not."""
    batch_size: int = 1000
    contacts_only: bool = False
    """``importer sync-contacts``: apply contact sets; create nothing."""
    check_media: bool = False
    """Preflight every distinct media URL before planning (``--check-media``)."""
    media_client: Any = None
    """httpx.AsyncClient for the preflight (tests inject one); None builds one."""
    media_resolver: Any = None
    """Host resolver for the preflight (tests inject one); None uses the system's."""


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
        }


def transcript_reader(manifest_dir: Path) -> TranscriptReader:
    """Reads transcript_path cells relative to (and only inside) the manifest's folder."""
    root = manifest_dir.resolve()

    def read(relative: str) -> str:
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise TranscriptUnavailable(f"{relative!r} points outside the manifest's folder {root}")
        if not path.is_file():
            raise TranscriptUnavailable(f"{relative!r} not found in {root}")
        size = path.stat().st_size
        if size > TRANSCRIPT_READ_LIMIT:
            raise TranscriptUnavailable(
                f"{relative!r} is {size:,} bytes; the API allows at most "
                f"{contract.TRANSCRIPT_MAX_BYTES:,} bytes of transcript"
            )
        try:
            return path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise TranscriptUnavailable(
                f"{relative!r} is not UTF-8 text (byte {error.start}); save it as UTF-8"
            ) from None
        except OSError as error:
            raise TranscriptUnavailable(f"{relative!r} cannot be read ({error.strerror})") from None

    return read


def mapped_batches(
    manifest: Path,
    options: MappingOptions,
    batch_size: int,
    media_failures: Callable[[list[str]], dict[str, str]] | None = None,
    source: SourceOptions | None = None,
    stats: ReadStats | None = None,
) -> Iterator[list[MappedRow]]:
    """Every row of the manifest, mapped and validated, batch by batch.

    ``media_failures`` (from a preflight) maps failing media URLs to the reason.
    """
    source = dataclasses.replace(
        source or SourceOptions(), id_column=options.columns.column_of("id")
    )
    options.columns.check_columns(
        manifest, read_columns(manifest, source), source_system_given=bool(options.source_system)
    )
    reader = transcript_reader(manifest.parent)
    column = options.columns.column_of("media_url")
    mapper = options.row_mapper or map_row
    for batch in read_manifest(manifest, batch_size, source, stats):
        mapped = [
            mapper(
                row.cells,
                row.row_number,
                options,
                file=str(manifest),
                read_transcript=reader,
                structural_problem=row.problem,
            )
            for row in batch
        ]
        if media_failures is not None:
            failing = media_failures([url for r in mapped if (url := _media_url(r))])
            mapped = [
                with_media_failure(r, failing[url], column)
                if (url := _media_url(r)) is not None and url in failing
                else r
                for r in mapped
            ]
        yield mapped


def _media_url(row: MappedRow) -> str | None:
    """The media URL the row's request carries (DevRev's carries none to preflight)."""
    return row.payload.get("media_url") if row.payload else None


def with_media_failure(row: MappedRow, reason: str, column: str) -> MappedRow:
    """The row, made invalid by a failed media preflight."""
    error = RowError(row.file, row.row_number, column, "media_check", f"preflight: {reason}")
    return dataclasses.replace(row, payload=None, errors=(*row.errors, error))


async def preflight_media(ledger: Ledger, settings: ImportSettings, reporter: Reporter) -> None:
    """Check every distinct media URL of the manifest (cached in the ledger)."""
    from importer.media import preflight
    from importer.urlsafety import system_resolver

    totals: Counter[str] = Counter()
    for batch in mapped_batches(
        settings.manifest, settings.mapping, settings.batch_size, source=settings.source
    ):
        urls = [url for r in batch if (url := _media_url(r))]
        totals.update(
            await preflight(
                urls,
                ledger,
                client=settings.media_client,
                resolve=settings.media_resolver or system_resolver,
                concurrency=settings.send.concurrency,
            )
        )
    reporter.notice(
        f"Media preflight: {totals['checked']:,} URL(s) checked, {totals['cached']:,} cached, "
        f"{totals['failed']:,} failing."
    )


def _media_filter(ledger: Ledger, settings: ImportSettings) -> Any:
    return ledger.media_failures if settings.check_media else None


def index_manifest(
    ledger: Ledger, settings: ImportSettings, stats: ReadStats | None = None
) -> tuple[ManifestIndex, dict[str, DuplicateInfo], Counter[str]]:
    """Pass one: validate everything and find external_ids used on several rows."""
    index = ManifestIndex(ledger)
    index.start()
    seen: Counter[str] = Counter()
    for batch in mapped_batches(
        settings.manifest,
        settings.mapping,
        settings.batch_size,
        _media_filter(ledger, settings),
        settings.source,
        stats,
    ):
        valid = [(r.external_id, r.row_number, r.payload_hash) for r in batch if r.valid]
        index.add(valid)  # type: ignore[arg-type]
        seen["rows"] += len(batch)
        seen["valid"] += len(valid)
    duplicates = {
        external_id: DuplicateInfo(first_row, conflicting, rows, more)
        for external_id, first_row, conflicting, rows, more in index.repeated()
    }
    return index, duplicates, seen


def planned_batches(
    ledger: Ledger, settings: ImportSettings, duplicates: dict[str, DuplicateInfo]
) -> Iterator[list[PlannedRow]]:
    """Pass two: each row's action, given the ledger."""
    for batch in mapped_batches(
        settings.manifest,
        settings.mapping,
        settings.batch_size,
        _media_filter(ledger, settings),
        settings.source,
    ):
        facts = ledger.facts_for(r.external_id for r in batch if r.external_id)
        yield [
            plan_row(
                row,
                facts.get(row.external_id) if row.external_id else None,
                duplicates.get(row.external_id) if row.external_id else None,
                settings.plan,
            )
            for row in batch
        ]


def prepare(settings: ImportSettings) -> tuple[ImportSettings, list[str]]:
    """Settle what the file as a whole decides (its date order) before any row is mapped."""
    from importer.file_checks import settle_dates

    source = dataclasses.replace(
        settings.source, id_column=settings.mapping.columns.column_of("id")
    )
    mapping, notices = settle_dates(
        settings.manifest, settings.mapping, source, settings.batch_size
    )
    return dataclasses.replace(settings, mapping=mapping), notices


def read_notices(settings: ImportSettings, stats: ReadStats) -> list[str]:
    """What a complete read noticed: unused columns, a dropped report footer."""
    notices = []
    columns = read_columns(settings.manifest, settings.source)
    unused = settings.mapping.columns.unused_columns(columns)
    if unused:
        notices.append(f"Columns not used (not in the mapping): {', '.join(unused)}")
    footer = stats.footer
    if footer.rows:
        rows = ", ".join(str(n) for n in footer.rows)
        notices.append(
            f"Skipped the report footer after the last record ({len(footer.rows)} row(s): "
            f"{rows}, starting {footer.first_cell!r})."
        )
    return notices


def reject_of(planned: PlannedRow, manifest: str) -> Reject | None:
    """Invalid, skipped rows and conflicting duplicates are kept, with their cells.

    Invalid rows and duplicates go to errors.csv, skipped ones to skipped.csv.
    """
    if planned.action in REJECTED_ACTIONS:
        row = planned.row
        return Reject(
            manifest, row.row_number, row.external_id, planned.action, planned.reason, row.cells
        )
    return None


def work_item(planned: PlannedRow, manifest: str) -> WorkItem:
    """The create request (or contacts-only update) for a planned row."""
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
    )


NOT_REACHED = "not reached"
"""After a stop: rows the run had not read yet (run again to judge and send them)."""


def exit_code_for(summary: RunSummary, on_change: str) -> int:
    """0 when every row is in AskElephant; 1 when some are not (or changed, if reported)."""
    planned, sent = summary.planned, summary.sent
    bad = planned[Action.INVALID] + planned[Action.DUPLICATE] + planned[Action.FAILED]
    bad += sent[Outcome.FAILED] + sent[Outcome.CONTACTS_FAILED]
    if on_change == "report":
        bad += planned[Action.CHANGED] + sent[Outcome.CHANGED]
    return EXIT_ROWS_FAILED if bad else EXIT_OK


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
    settings, notices = prepare(settings)
    for notice in notices:
        reporter.notice(notice)
    if settings.check_media:
        await preflight_media(ledger, settings, reporter)
    stats = ReadStats()
    index, duplicates, seen = index_manifest(ledger, settings, stats)
    for notice in read_notices(settings, stats):
        reporter.notice(notice)
    conflicting = [i for i, d in duplicates.items() if d.conflicting]
    if not (settings.plan.only_failed or settings.contacts_only):
        index.register_pending(manifest_key, conflicting)
    ahead = index.summary(
        conflicting,
        only_failed=settings.plan.only_failed,
        include_permanent=settings.plan.include_permanent,
    )
    if settings.contacts_only:
        reporter.notice("Applying contact sets that differ from the ones last applied.")
    else:
        reporter.progress_total(
            ahead["to send"],
            {
                "already imported": ahead["already imported"],
                "failed before": ahead["failed before"],
            },
        )
    summary = RunSummary()
    sender = Sender(target, ledger, run_id, settings.send, reporter)

    read_to_the_end: list[bool] = []
    reached, judged = [0], [0]
    """The last manifest row judged, and how many rows were: the rest was not read."""

    async def items() -> AsyncIterator[WorkItem]:
        for batch in planned_batches(ledger, settings, duplicates):
            # The whole batch is judged and recorded before any of it is queued: a stop
            # while a queue slot is awaited must not lose a row already reported.
            rejects = []
            changed: dict[str, list[str]] = {}
            unchanged: list[str] = []
            for planned in batch:
                reject = reject_of(planned, manifest_key)
                if reject is not None:
                    rejects.append(reject)
                external_id = planned.row.external_id or ""
                if planned.action == Action.CHANGED:
                    changed[external_id] = list(planned.changed)
                elif planned.action == Action.IMPORTED:
                    unchanged.append(external_id)
                if planned.sends and settings.contacts_only:
                    summary.sent[Outcome.NOT_IMPORTED_YET] += 1
                if not planned.sends:
                    summary.planned[planned.action] += 1
                    if planned.action in REPORTED_ACTIONS:
                        # Not "failed": that is a request's outcome, which the progress counts.
                        shown = FAILED_BEFORE if planned.action == Action.FAILED else planned.action
                        reporter.row_done(
                            planned.row.external_id or "",
                            planned.row.row_number,
                            shown,
                            planned.reason,
                        )
            ledger.add_rejects(rejects, run_id)
            ledger.note_changes(changed, unchanged)
            if batch:
                reached[0] = batch[-1].row.row_number
                judged[0] += len(batch)
            work = [
                work_item(planned, manifest_key)
                for planned in batch
                if planned.sync_contacts or (planned.sends and not settings.contacts_only)
            ]
            # A target without idempotent creates (DevRev) is looked up first: rows it holds
            # are recorded, not sent. In-flight rows of a crashed run are among them.
            creates = await sender.look_up([item for item in work if not item.contacts_only])
            to_create = {item.external_id for item in creates}
            for item in work:
                if item.contacts_only or item.external_id in to_create:
                    yield item
            await asyncio.sleep(0)  # let workers run between batches
        read_to_the_end.append(True)

    with _signals_stop(sender, install_signal_handlers):
        outcome = await sender.run(items())
    if read_to_the_end:
        # Only a complete pass knows every reject: older ones of this manifest are now stale.
        # A stopped run keeps them, so nothing is forgotten before it is decided again.
        ledger.drop_stale_rejects(manifest_key, run_id)
    _merge(summary, outcome)
    if outcome.fatal or outcome.aborted or outcome.interrupted:
        summary.unfinished.update(ledger.unfinished(manifest_key, up_to_row=reached[0]))
        if not read_to_the_end:
            # Rows after the stop were never judged: say so, so the counts add up.
            summary.unfinished[NOT_REACHED] = seen["rows"] - judged[0]
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


def _merge(summary: RunSummary, outcome: SendOutcome) -> None:
    summary.sent.update(outcome.counts)
    summary.requests = outcome.requests


@contextlib.contextmanager
def _signals_stop(sender: Sender, install: bool) -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the sender cleanly instead of killing the process."""
    if not install:
        yield
        return
    loop = asyncio.get_running_loop()
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
) -> Counter[Action]:
    """The plan alone: every row's action, sending no create and writing nothing."""
    settings, notices = prepare(settings)
    if settings.check_media:
        from importer.events import HumanReporter

        asyncio.run(preflight_media(ledger, settings, reporter or HumanReporter()))
    stats = ReadStats()
    _, duplicates, _ = index_manifest(ledger, settings, stats)
    for notice in [*notices, *read_notices(settings, stats)]:
        if on_notice is not None:
            on_notice(notice)
    counts: Counter[Action] = Counter()
    for batch in planned_batches(ledger, settings, duplicates):
        for planned in batch:
            counts[planned.action] += 1
            on_row(planned)
    return counts
