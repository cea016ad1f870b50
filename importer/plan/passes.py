"""Reading the manifest for a command: rows mapped and validated batch by batch.

Two passes keep memory bounded whatever the manifest's size: pass one (``index_manifest``)
validates every row and indexes (external_id, row, payload hash) in SQLite's temp store,
which finds duplicates across the whole file (a plan hashes only the rows whose external_id
repeats: ``_hashes_of_repeated``); pass two (``planned_batches``) plans each row
against the ledger. ``prepare`` settles what the file as a whole decides first, and the
media preflight, when asked for, reads the manifest once before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import operator
from collections import Counter, deque
from collections.abc import Callable, Container, Iterator
from pathlib import Path
from typing import Any

from importer.errors import PrefixChanged, TranscriptUnavailable, ZoneChanged
from importer.events import Reporter
from importer.ledger import Ledger
from importer.ledger.manifest_index import ManifestIndex, SpooledRecord
from importer.ledger.row_cache import KeyedRow, SettledRow
from importer.outcomes import Action, LedgerFact
from importer.plan.mapping_pool import (
    MappedOutcome,
    MappingPool,
    learned_keys,
    media_url_of,
    owned,
    worker_count,
)
from importer.plan.media import preflight
from importer.plan.planner import (
    EXAMPLES_PER_ACTION,
    DuplicateInfo,
    PlannedRow,
    lookalike_duplicates,
    plan_rows,
)
from importer.plan.recordings import judge_recording, known_recordings, prefix_of
from importer.plan.repeats import SeenOnce
from importer.plan.spool_form import rows_of
from importer.read.fingerprint import file_fingerprint
from importer.read.manifest import (
    Batch,
    PlainColumns,
    ReadStats,
    batch_of,
    read_columns,
    read_manifest,
    read_manifest_columns,
)
from importer.rows import contract
from importer.rows.columnar import IndexEntry, index_entries, map_batch
from importer.rows.dates import DateStyle
from importer.rows.file_checks import require_zone, settle_dates
from importer.rows.row_keys import RowKeys, row_keys
from importer.rows.urlsafety import system_resolver
from importer.rows.validate import MappedRow, MappingOptions, RowError, TranscriptReader, map_row
from importer.settings import ImportSettings, PlanOptions, SourceOptions

# A transcript file this much larger than the byte limit is refused without being read.
TRANSCRIPT_READ_LIMIT = contract.TRANSCRIPT_MAX_BYTES * 4


def transcript_reader(manifest_dir: Path) -> TranscriptReader:
    """Reads transcript_path cells relative to (and only inside) the manifest's folder.

    Every problem with the cell (a NUL, a name too long, a symlink loop, a folder, a file
    too large or not UTF-8) is that row's error, never the run's.
    """
    root = manifest_dir.resolve()

    def read(relative: str) -> str:
        try:
            return _read_transcript(root, relative)
        except TranscriptUnavailable:
            raise
        except (OSError, ValueError, RuntimeError) as error:
            # ValueError: an embedded NUL; RuntimeError: a symlink loop (Python < 3.13).
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            raise TranscriptUnavailable(f"{relative[:200]!r} cannot be read ({reason})") from None

    return read


def _read_transcript(root: Path, relative: str) -> str:
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise TranscriptUnavailable(f"{relative!r} points outside the manifest's folder {root}")
    if not path.is_file():
        raise TranscriptUnavailable(f"{relative!r} not found in {root}")
    with path.open("rb") as handle:  # read at most the limit, even if the file grows
        data = handle.read(TRANSCRIPT_READ_LIMIT + 1)
    if len(data) > TRANSCRIPT_READ_LIMIT:
        raise TranscriptUnavailable(
            f"{relative!r} is over {TRANSCRIPT_READ_LIMIT:,} bytes; the API allows at most "
            f"{contract.TRANSCRIPT_MAX_BYTES:,} bytes of transcript"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TranscriptUnavailable(
            f"{relative!r} is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None


class BatchMapper:
    """Maps and validates batches of one manifest's records (media-checked when asked)."""

    def __init__(
        self,
        manifest: Path,
        options: MappingOptions,
        media_failures: Callable[[list[str]], dict[str, str]] | None = None,
    ) -> None:
        self.file = str(manifest)
        self.options = options
        self.reader = transcript_reader(manifest.parent)
        self.column = options.columns.column_of("media_url")
        self.mapper = options.row_mapper or map_row
        self.media_failures = media_failures

    def reads_files(self, batch: Batch) -> bool:
        """Whether a row of the batch names a transcript file (read as the row is mapped),
        itself or by the mapping's default."""
        columns = self.options.columns
        if "transcript_path" in columns.defaults:
            return True
        named = columns.columns_of("transcript_path")
        if isinstance(batch, PlainColumns):
            where = dict(zip(batch.header, batch.columns, strict=True))
            named_cells = [where[column] for column in named if column in where]
        else:
            cells = [row.cells for row in batch]
            named_cells = [list(map(operator.methodcaller("get", c, ""), cells)) for c in named]
        # A column's cells joined are blank exactly when each of them is: one look in C.
        return any("".join(column).strip() for column in named_cells)

    def index_entries(self, batch: Batch) -> list[IndexEntry] | list[MappedRow] | None:
        """``columnar.index_entries`` of the batch; None when its rows are not ``map_row``'s
        alone (another target's mapper, a media preflight)."""
        if self.mapper is not map_row or self.media_failures is not None:
            return None
        return index_entries(batch, self.options, file=self.file, read_transcript=self.reader)

    def __call__(self, batch: Batch) -> list[MappedRow]:
        if isinstance(batch, PlainColumns):
            batch = batch.rows()
        if self.mapper is map_row:  # the same rows as map_row's, decided column by column
            mapped = map_batch(batch, self.options, file=self.file, read_transcript=self.reader)
        else:
            mapped = [
                self.mapper(
                    row.cells,
                    row.row_number,
                    self.options,
                    file=self.file,
                    read_transcript=self.reader,
                    structural_problem=row.problem,
                )
                for row in batch
            ]
        if self.media_failures is not None:
            failing = self.media_failures([url for r in mapped if (url := media_url_of(r))])
            mapped = [
                with_media_failure(r, failing[url], self.column)
                if (url := media_url_of(r)) is not None and url in failing
                else r
                for r in mapped
            ]
        return mapped


def _checked_source(
    manifest: Path, options: MappingOptions, source: SourceOptions | None
) -> SourceOptions:
    """The reading options, once the manifest's columns are known to fit the mapping."""
    source = dataclasses.replace(
        source or SourceOptions(), id_column=options.columns.columns_of("id")[0]
    )
    options.columns.check_columns(
        manifest, read_columns(manifest, source), source_system_given=bool(options.source_system)
    )
    return source


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
    source = _checked_source(manifest, options, source)
    mapper = BatchMapper(manifest, options, media_failures)
    for batch in read_manifest(manifest, batch_size, source, stats):
        yield mapper(batch)


def with_media_failure(row: MappedRow, reason: str, column: str) -> MappedRow:
    """The row, made invalid by a failed media preflight."""
    error = RowError(row.file, row.row_number, column, "media_check", f"preflight: {reason}")
    return dataclasses.replace(row, payload=None, errors=(*row.errors, error))


async def preflight_media(ledger: Ledger, settings: ImportSettings, reporter: Reporter) -> None:
    """Check every distinct media URL of the manifest (cached in the ledger)."""

    totals: Counter[str] = Counter()
    unchecked: list[str] = []
    for batch in mapped_batches(
        settings.manifest, settings.mapping, settings.batch_size, source=settings.source
    ):
        urls = [url for r in batch if (url := media_url_of(r))]
        totals.update(
            await preflight(
                urls,
                ledger,
                client=settings.media_client,
                resolve=settings.media_resolver or system_resolver,
                concurrency=settings.send.concurrency,
                first_unchecked=unchecked,
            )
        )
    reporter.notice(
        f"Media preflight: {totals['checked']:,} URL(s) checked, {totals['cached']:,} cached, "
        f"{totals['failed']:,} failing."
    )
    if totals["unchecked"]:
        reporter.notice(
            f"Media preflight: {totals['unchecked']:,} URL(s) could not be checked from here "
            f"(e.g. {unchecked[0]}: no network or no DNS?); their rows are planned as if "
            "the check had passed. Run it again where names resolve."
        )


def _media_filter(ledger: Ledger, settings: ImportSettings) -> Any:
    return ledger.media_failures if settings.check_media else None


def _checked_batches(
    ledger: Ledger, settings: ImportSettings, stats: ReadStats | None = None
) -> Iterator[list[MappedRow]]:
    """The manifest's rows for a pass: mapped, validated, and media-checked if asked."""
    return mapped_batches(
        settings.manifest,
        settings.mapping,
        settings.batch_size,
        _media_filter(ledger, settings),
        settings.source,
        stats,
    )


def _known_by_key(
    ledger: Ledger,
    keys: RowKeys | None,
    records: Batch,
    index: ManifestIndex | None = None,
) -> tuple[list[SettledRow], Batch, list[bytes | None] | None]:
    """Of a batch: the rows the ledger knows by their key as imported unchanged (entered in
    ``index`` as settled, if given), the records left to map (in the batch's form), and
    those records' keys (None without ``keys``)."""
    if keys is None:
        return [], records, None
    record_keys = keys.keys(records)
    numbers = (
        records.numbers
        if isinstance(records, PlainColumns)
        else [record.row_number for record in records]
    )
    keyed = [
        (key, number) for number, key in zip(numbers, record_keys, strict=True) if key is not None
    ]
    settled = ledger.settled_rows(keyed, index.table if index is not None else None)
    if not settled:
        return settled, records, record_keys
    known = {r.row_number for r in settled}
    left = [place for place, number in enumerate(numbers) if number not in known]
    unsettled_keys = [record_keys[place] for place in left]
    if isinstance(records, PlainColumns):
        return settled, records.subset(left), unsettled_keys
    return settled, [records[place] for place in left], unsettled_keys


def _first_settled(settled: list[SettledRow]) -> list[tuple[int, str]]:
    """(row, external_id) of the settled rows a plan may show: the first of a batch."""
    return [(r.row_number, r.external_id) for r in settled[:EXAMPLES_PER_ACTION]]


def _kept_manifest_batches(
    ledger: Ledger, settings: ImportSettings, unsettled_ids: Container[str]
) -> Iterator[tuple[list[MappedRow | SettledRow], list[KeyedRow]]]:
    """A kept manifest's batches read again, in file order, and the keys its mapped rows
    taught: rows the ledger knows by key are not mapped, unless their external_id is one
    of ``unsettled_ids``."""
    manifest, mapping = settings.manifest, settings.mapping
    source = _checked_source(manifest, mapping, settings.source)
    mapper = BatchMapper(manifest, mapping, _media_filter(ledger, settings))
    keys = row_keys(mapping, source, mapper.mapper) if not settings.check_media else None
    for records in read_manifest(manifest, settings.batch_size, source):
        settled, unsettled, unsettled_keys = _known_by_key(ledger, keys, records)
        mapped = mapper(unsettled)
        known = {r.row_number: r for r in settled}
        fresh = iter(mapped)
        in_order: list[MappedRow | SettledRow] = [
            next(fresh)
            if (row := known.get(record.row_number)) is None
            else row
            if row.external_id not in unsettled_ids
            else mapper([record])[0]
            for record in records
        ]
        learned = learned_keys(mapped, unsettled_keys) if unsettled_keys is not None else []
        yield in_order, learned


def index_manifest(
    ledger: Ledger,
    settings: ImportSettings,
    stats: ReadStats | None = None,
    on_rejected: Callable[[list[MappedRow]], None] | None = None,
    prefixes: set[str] | None = None,
    *,
    settle: bool = False,
    spool_records: bool = False,
) -> tuple[ManifestIndex, dict[str, DuplicateInfo], Counter[str]]:
    """Pass one: validate everything and find external_ids used on several rows.

    ``on_rejected`` sees each batch's invalid and skipped rows as they are read (a run
    records them there); ``prefixes`` collects the external_id prefixes of the valid rows.
    With ``settle`` (a run), rows the ledger holds as imported unchanged are known by their
    key and not mapped, and the keys of the rows mapped are kept. A long manifest's batches
    are mapped by worker processes (``mapping_pool``) while this one reads the next.
    With ``spool_records`` (a plan that reads back few batches: no CSV of every row), a
    batch pass two would read back only to show it (its rows all valid, no transcript file
    named, a ledger read holding no engagement) is spooled as its records rather than its
    rows mapped, and mapped again if read back: spooling mapped rows is a sixth of mapping
    them."""
    index = ManifestIndex(ledger)
    index.start()
    seen: Counter[str] = Counter()
    manifest, mapping = settings.manifest, settings.mapping
    source = _checked_source(manifest, mapping, settings.source)
    mapper = BatchMapper(manifest, mapping, _media_filter(ledger, settings))
    index.spools_records = (
        spool_records
        and _plain_mapping(mapper)
        and ledger.reads_no_engagements  # else batches with known ids are read back
        and not settings.plan.only_failed  # else every batch is read back
    )
    index.defers_rows = index.spools_records  # a plan of rows new and unique reads none
    usable = settle and not settings.check_media and ledger.keys_of_use()
    keys = row_keys(mapping, source, mapper.mapper) if usable else None
    in_flight: deque[tuple[list[SettledRow], int]] = deque()
    """Per batch handed to the pool: its settled rows and its last row number."""
    seen_once = SeenOnce()

    def keep(outcome: MappedOutcome) -> None:
        settled, last_row = in_flight.popleft()
        if on_rejected is not None:
            on_rejected(outcome.rejected)
        index.add(outcome.valid)
        seen_once.add(outcome.valid)
        if settled:
            seen_once.not_hashed()
        if prefixes is not None:
            prefixes.update(outcome.prefixes)
            prefixes.update(
                prefix_of(r.external_id, r.source_id or "") for r in settled if r.external_id
            )
        head = (
            outcome.ids,
            outcome.importable,
            outcome.mapped,
            len(settled),
            last_row,
            _first_settled(settled),
        )
        assert outcome.spooled is not None  # the pool puts a plan's records in
        index.spool_serialized(outcome.spooled, head)
        ledger.learn_row_keys(outcome.learned)
        seen["rows"] += outcome.mapped + len(settled)
        seen["valid"] += len(outcome.valid) + len(settled)
        seen["settled"] += len(settled)
        if stats is not None:
            stats.count_undecodable(outcome.undecodable)

    def submit(pool: MappingPool, records: Batch) -> None:
        """Hand the batch's records the ledger does not know by key to the pool."""
        settled, unsettled, unsettled_keys = _known_by_key(ledger, keys, records, index)
        if isinstance(records, PlainColumns):
            last_row = records.numbers[-1]
        else:
            last_row = records[-1].row_number if records else 0
        # A transcript file is read once: its batch is spooled mapped.
        as_read = index.spools_records and not mapper.reads_files(unsettled)
        pool.submit(unsettled, unsettled_keys, index.compressing, spool_records=as_read)
        in_flight.append((settled, last_row))

    ledger.forget_learned_keys()  # any a pass one stopped before keeping them noted
    with MappingPool(
        mapper,
        (BatchMapper, (manifest, mapping)) if _plain_mapping(mapper) else None,
        settings.mapping_workers if settings.mapping_workers is not None else worker_count(),
        settings.rows_before_workers,
    ) as pool:
        try:
            # Batches of plain records are keyed, and reach the mapping, column by column.
            for records in read_manifest_columns(manifest, settings.batch_size, source, stats):
                submit(pool, records)
                for outcome in pool.ready():
                    keep(outcome)
        except Exception:
            # What was read before a fault in the file is kept (its rejects recorded), as
            # when each batch is mapped before the next is read; then the fault goes on.
            with contextlib.suppress(Exception):
                for outcome in pool.rest():
                    keep(outcome)
            raise
        for outcome in pool.rest():
            keep(outcome)
    ledger.keep_learned_keys()
    # SQL finds repeated ids and shared recordings only where hashes say there may be some.
    ids_once_each = seen_once.ids_once_each()
    if not ids_once_each and index.spools_records:
        _hashes_of_repeated(index, mapper)
    duplicates = {
        external_id: DuplicateInfo(first_row, conflicting, rows, more)
        for external_id, first_row, conflicting, rows, more in (
            index.repeated() if not ids_once_each else ()
        )
    }
    index.no_recording_elsewhere = not index.recordings_in_ledger() and seen_once.media_once_each()
    # Lookalikes need an id beyond ASCII: nearly every export's ids are ASCII, as a first
    # import's ledger holds none (the search of both costs half a second a million rows).
    if not seen_once.ids_ascii or ledger.sends_ids_beyond_ascii():
        duplicates.update(lookalike_duplicates(ledger.lookalike_ids(index.table)))
    if seen["settled"] and duplicates and index.settled_among(duplicates):
        # A row known by its key shares its external_id (or one alike) with another: judged
        # with them, as every row is without keys (rare; the index is built again, all
        # rows mapped).
        if stats is not None:
            for name, value in vars(ReadStats()).items():
                setattr(stats, name, value)
        return index_manifest(
            ledger, settings, stats, None, prefixes, settle=False, spool_records=spool_records
        )
    return index, duplicates, seen


def _hashes_of_repeated(index: ManifestIndex, mapper: BatchMapper) -> None:
    """The payload hashes a plan's index entries left out, of the rows whose external_id
    is on another row too: whether their payloads differ decides how they are planned.
    Only the spooled batches holding such a row are mapped again."""
    repeated = index.unhashed_repeated()
    if not repeated:
        return
    for record in index.spooled():
        if not record.holds_records or repeated.isdisjoint(record.head[0]):
            continue
        rows = mapper(batch_of(record.body(), record.holds_columns))
        index.hashes_given(
            (row.payload_hash, row.external_id, row.row_number)
            for row in rows
            if row.external_id in repeated and row.payload_hash
        )


def _plain_mapping(mapper: BatchMapper) -> bool:
    """The package's own mapping, with no media preflight: a worker makes it itself, and a
    batch mapped again gives the same rows (a preflight's failures are the ledger's cache,
    which may change meanwhile)."""
    return mapper.media_failures is None and owned(mapper.mapper)


MappedBatch = tuple[list[MappedRow], int, int, list[tuple[int, str]]]
"""What pass two needs of a batch: its mapped rows in order, how many rows were settled,
its last row number, and the (row, external_id) of its first ``EXAMPLES_PER_ACTION``
settled rows (settled rows are counted, never planned: a plan shows the first few)."""


def _mapped_form(batch: list[MappedRow | SettledRow]) -> MappedBatch:
    mapped = [r for r in batch if isinstance(r, MappedRow)]
    settled = [r for r in batch if isinstance(r, SettledRow)]
    last_row = batch[-1].row_number if batch else 0
    return mapped, len(settled), last_row, _first_settled(settled)


SpoolHead = tuple[list[str], bool, int, int, int, list[tuple[int, str]]]
"""What a spooled batch says of itself: its rows' external_ids, whether every row is valid
with something to import, how many rows were mapped, how many settled, its last row, its
first settled rows (``index_manifest`` writes it; pass two plans a batch of new rows by it
without reading the rows back)."""


class PlannedBatch:
    """One batch of pass two: its rows planned, and its settled rows counted, not planned.

    A settled row (known by its key as imported unchanged) is ``already imported`` with
    nothing to note or send: a re-sync of a million rows builds no plan for each of them.
    A batch of rows all ``new`` is read back from the spool only if its rows are asked for
    (``new_rows`` says how many): a plan of a million new rows counts most of them."""

    def __init__(
        self,
        settled: int,
        last_row: int,
        rows: list[PlannedRow] | None = None,
        new_rows: tuple[int, Callable[[], list[PlannedRow]]] = (0, list),
        settled_shown: list[tuple[int, str]] | None = None,
    ) -> None:
        self.settled = settled
        """Rows known by their key as imported unchanged."""
        self.settled_shown = settled_shown or []
        """(row, external_id) of the first ``EXAMPLES_PER_ACTION`` of them, in file order."""
        self.last_row = last_row
        """The batch's last row number (0: an empty batch)."""
        self.new_rows = new_rows[0]
        """How many rows, when every row is ``new`` (0 otherwise)."""
        self._rows = rows
        self._plan_new_rows = new_rows[1]

    @property
    def rows(self) -> list[PlannedRow]:
        """The rows mapped, planned, in file order."""
        if self._rows is None:
            self._rows = self._plan_new_rows()
        return self._rows


def planned_batches(
    ledger: Ledger,
    settings: ImportSettings,
    duplicates: dict[str, DuplicateInfo],
    index: ManifestIndex,
    *,
    shortcut: bool = True,
) -> Iterator[PlannedBatch]:
    """Pass two: each row's action, given the ledger (and where its recording already is).

    It plans pass one's spooled rows: the manifest is not read or validated again. A settled
    row is ``already imported`` as it stands (pass one made sure no other row shares its
    external_id). A batch of valid rows that neither the ledger, nor another row, nor a
    recording elsewhere says anything of is all ``new``: its rows are planned when asked
    for (``shortcut``; tests hold it to planning every batch at once)."""
    read_back = _spooled_rows(settings, index)
    for record in index.spooled():
        ids, importable, mapped, settled, last_row, shown = record.head
        facts = ledger.facts_for(ids)
        if shortcut and importable and _all_new(ids, facts, duplicates, index, settings):
            plan = functools.partial(
                _read_and_plan, read_back, record, facts, duplicates, settings.plan
            )
            yield PlannedBatch(settled, last_row, new_rows=(mapped, plan), settled_shown=shown)
        else:
            rows = (read_back(record), settled, last_row, shown)
            yield _planned(ledger, settings, duplicates, index, rows, facts)


def _spooled_rows(
    settings: ImportSettings, index: ManifestIndex
) -> Callable[[SpooledRecord], list[MappedRow]]:
    """How a spooled batch becomes its rows mapped: as spooled, or, for a batch of valid
    rows in a plan's spool (``index_manifest``'s ``spool_records``), its records mapped
    again, as pass one mapped them."""
    if not index.spools_records:
        return lambda record: rows_of(record.body())
    mapper = BatchMapper(settings.manifest, settings.mapping)

    def read_back(record: SpooledRecord) -> list[MappedRow]:
        body = record.body()
        return (
            mapper(batch_of(body, record.holds_columns)) if record.holds_records else rows_of(body)
        )

    return read_back


def _read_and_plan(
    read_back: Callable[[SpooledRecord], list[MappedRow]],
    record: SpooledRecord,
    facts: dict[str, LedgerFact],
    duplicates: dict[str, DuplicateInfo],
    options: PlanOptions,
) -> list[PlannedRow]:
    return plan_rows(read_back(record), facts, duplicates, options)


def _all_new(
    ids: list[str],
    facts: dict[str, LedgerFact],
    duplicates: dict[str, DuplicateInfo],
    index: ManifestIndex,
    settings: ImportSettings,
) -> bool:
    """Whether valid rows with these ids are all ``new``: unknown to the ledger, on no other
    row, their recordings nowhere else (``_planned`` would judge none of them otherwise)."""
    if facts or settings.plan.only_failed or any(i in duplicates for i in ids):
        return False
    return not known_recordings(index.recording_matches(ids))


def _planned(
    ledger: Ledger,
    settings: ImportSettings,
    duplicates: dict[str, DuplicateInfo],
    index: ManifestIndex,
    batch: MappedBatch,
    facts: dict[str, LedgerFact] | None = None,
) -> PlannedBatch:
    """One batch's actions (``_mapped_form``), given the ledger (and where its recordings
    already are); ``facts``: the ledger's, when already asked."""
    mapped, settled, last_row, shown = batch
    if facts is None:
        facts = ledger.facts_for(r.external_id for r in mapped if r.external_id)
    planned = plan_rows(mapped, facts, duplicates, settings.plan)
    known = known_recordings(
        index.recording_matches(
            p.row.external_id for p in planned if p.action == Action.NEW and p.row.external_id
        )
    )
    if known:
        planned = [
            judge_recording(p, known.get(p.row.external_id or ""), settings.recordings)
            for p in planned
        ]
    return PlannedBatch(settled, last_row, planned, settled_shown=shown)


def manifest_fingerprint(settings: ImportSettings) -> str | None:
    """The manifest's bytes and everything that reads and maps them, before ``prepare``;
    None when its index must not be kept (media checks, a mapper from elsewhere)."""
    if settings.check_media:
        return None
    source = dataclasses.replace(
        settings.source, id_column=settings.mapping.columns.column_of("id")
    )
    keys = row_keys(settings.mapping, source, settings.mapping.row_mapper or map_row)
    found = file_fingerprint(settings.manifest)
    if keys is None or found is None:
        return None
    return f"{found}:{keys.salt.hex()}"


def kept_record(
    before: ImportSettings,
    prepared: ImportSettings,
    prepare_notices: list[str],
    read_notices: list[str],
    seen: Counter[str],
    duplicates: dict[str, DuplicateInfo] | None = None,
) -> dict[str, Any] | None:
    """What a run keeps beside the index: ``prepare``'s decision, the counts, the notices,
    the ids repeated in the file (lookalikes are asked of the ledger again).

    None when ``prepare`` decided more than the date style: that could not be restored."""
    if dataclasses.replace(prepared.mapping, dates=before.mapping.dates) != before.mapping:
        return None
    dates = prepared.mapping.dates
    try:
        stored = json.loads(json.dumps(dataclasses.asdict(dates)))
        if DateStyle(**stored) != dates:
            return None  # it would not read back the same
    except (TypeError, ValueError):
        return None
    return {
        "dates": stored,
        "prepare_notices": prepare_notices,
        "read_notices": read_notices,
        "rows": seen["rows"],
        "valid": seen["valid"],
        "repeated": [
            [external_id, d.first_row, d.conflicting, list(d.rows), d.more]
            for external_id, d in (duplicates or {}).items()
            if not d.lookalike
        ],
    }


def usable_record(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A kept record with every part a run restores, else None (a damaged ledger)."""
    if record is None:
        return None
    try:
        DateStyle(**record["dates"])
        int(record["rows"]), int(record["valid"])
        str(record["index_table"])
        _kept_repeated(record)
        notices = [*record["prepare_notices"], *record["read_notices"]]
    except (KeyError, TypeError, ValueError):
        return None
    return record if all(isinstance(n, str) for n in notices) else None


def _kept_repeated(record: dict[str, Any]) -> dict[str, DuplicateInfo]:
    """The repeated ids a kept record holds (a ``TypeError`` or ``ValueError`` if damaged)."""
    found = {}
    for external_id, first_row, conflicting, rows, more in record["repeated"]:
        if not isinstance(external_id, str) or not isinstance(conflicting, bool):
            raise TypeError("a damaged repeated id")
        found[external_id] = DuplicateInfo(
            int(first_row), conflicting, tuple(int(n) for n in rows), int(more)
        )
    return found


def restored(
    ledger: Ledger, settings: ImportSettings, manifest_key: str, record: dict[str, Any]
) -> tuple[ImportSettings, ManifestIndex, dict[str, DuplicateInfo], Counter[str]]:
    """An unchanged manifest's kept index, instead of pass one: the settings ``prepare``
    settled, the index, its duplicates and its counts (``usable_record`` said it is whole)."""
    dates = DateStyle(**record["dates"])
    settings = dataclasses.replace(
        settings, mapping=dataclasses.replace(settings.mapping, dates=dates)
    )
    index = ManifestIndex(ledger, record["index_table"])
    duplicates = _kept_repeated(record)
    # Asked again: the ledger may hold a lookalike sent since the index was kept.
    duplicates.update(lookalike_duplicates(ledger.lookalike_ids(index.table)))
    seen = Counter({"rows": int(record["rows"]), "valid": int(record["valid"])})
    return settings, index, duplicates, seen


def reread_batches(
    ledger: Ledger,
    settings: ImportSettings,
    duplicates: dict[str, DuplicateInfo],
    index: ManifestIndex,
) -> Iterator[PlannedBatch]:
    """Pass two of a manifest whose index was kept: read again as it is planned, so the
    first request leaves with the first row to send; rows known by their key unmapped."""
    for batch, learned in _kept_manifest_batches(ledger, settings, duplicates):
        ledger.remember_row_keys(learned)
        yield _planned(ledger, settings, duplicates, index, _mapped_form(batch))


def refuse_changed_prefixes(
    index: ManifestIndex, settings: ImportSettings, conflicting: list[str]
) -> None:
    """Before any request: rows imported under another prefix would become second
    engagements. Refused (exit 2) unless ``--allow-new-prefix`` says it is intended."""
    if settings.contacts_only or settings.recordings.allow_new_prefix:
        return
    changes = index.prefix_changes(conflicting)
    if not changes:
        return
    lines = [
        f"{c.rows:,} row(s) were imported before under the prefix {c.old_prefix!r}, now "
        f"{c.new_prefix!r} (e.g. row {c.first_row}: {c.old_external_id} imported, "
        f"{c.new_external_id} now)"
        for c in changes
    ]
    first = changes[0]
    raise PrefixChanged(
        "; ".join(lines) + ". Sending them would create second engagements of the same "
        "recordings: a changed source_system or --prefix does this. Restore the old prefix "
        f"(e.g. --prefix {first.old_prefix!r}), or pass --allow-new-prefix if new engagements "
        "are intended; `importer plan` lists the rows"
    )


def refuse_changed_zone(ledger: Ledger, settings: ImportSettings, prefixes: set[str]) -> None:
    """Before any request: the latest rows of the same source (external_id prefix) were
    imported with their times read in another zone. Refused (exit 2) unless
    ``--allow-new-timezone`` (after which the new zone is the one kept): the same export
    read in two zones lands hours apart."""
    zone = settings.mapping.timezone
    if not prefixes or zone is None or settings.contacts_only:
        return
    if settings.recordings.allow_new_timezone:
        return
    latest: dict[str, tuple[str, str, int, str]] = {}
    for found in ledger.zones_read(prefixes):
        latest.setdefault(found[0], found)  # the zone its latest rows were read in
    others = [found for found in latest.values() if found[1] != zone]
    if not others:
        return
    prefix, other, rows, example = others[0]
    raise ZoneChanged(
        f"{rows:,} row(s) of this source (prefix {prefix!r}, e.g. {example}) were imported "
        f"with times without an offset read in {other}; this run reads them in {zone}, so the "
        f"same export would land hours apart. Pass --timezone {other} (or set [formats] "
        f'timezone = "{other}" in the mapping), or --allow-new-timezone to read them in '
        f"{zone} (the rows it sends are recorded in {zone})"
    )


def prepare(
    settings: ImportSettings, ledger: Ledger | None = None
) -> tuple[ImportSettings, list[str]]:
    """Settle what the file as a whole decides (its time zone is chosen if it needs one,
    its date order) before any row is mapped."""

    source = dataclasses.replace(
        settings.source, id_column=settings.mapping.columns.columns_of("id")[0]
    )
    if settings.mapping.timezone is None:
        earlier = sorted({zone for _, zone, _, _ in ledger.zones_read()}) if ledger else []
        require_zone(settings.manifest, settings.mapping, source, settings.batch_size, earlier)
    mapping, notices = settle_dates(
        settings.manifest, settings.mapping, source, settings.batch_size
    )
    return dataclasses.replace(settings, mapping=mapping), notices


UNDECODABLE_NOTICE = 2
"""Rows that fail UTF-8 from which the file, not each row, gets a word."""


def read_notices(settings: ImportSettings, stats: ReadStats) -> list[str]:
    """What a complete read noticed: unused columns, a dropped report footer and subtotals."""
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
    report_rows = stats.report_rows
    if report_rows.count:
        shown = ", ".join(str(n) for n in report_rows.rows)
        more = "" if report_rows.count == len(report_rows.rows) else ", ..."
        notices.append(
            f"Skipped {report_rows.count} report row(s) between records (group headings and "
            f"subtotals: no id, at most two cells filled): rows {shown}{more}."
        )
    if stats.undecodable_rows >= UNDECODABLE_NOTICE:
        notices.append(
            f"{stats.undecodable_rows:,} rows are not UTF-8 (the first: row "
            f"{stats.first_undecodable}): if the file was saved in a Windows code page, pass "
            "--encoding cp1252 (or latin-1) instead of fixing rows one by one."
        )
    return notices
