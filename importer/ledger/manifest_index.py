"""The manifest index: pass one's scratch table of (external_id, row, payload hash).

It lives in SQLite's temp store on the ledger's connection, so memory stays flat whatever
the manifest's size, and SQLite can join it with the ledger's ``engagements`` table: to find
external_ids repeated across the whole file, to register every sendable row as ``pending``
before the first request, and to count what is ahead. It is gone when the ledger closes.

Beside it, the spool keeps pass one's mapped rows, a compressed batch per record (marshal,
else pickle; LZ4), so that planning reads them back instead of reading and validating the
manifest a second time; for a plan, which reads back few batches, the records as read.
The planner reads what these queries find as plain values (``RecordingMatch``).
"""

from __future__ import annotations

import functools
import gc
import marshal
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from importer.ledger import Ledger
from importer.ledger.db import IMPORTED, NOT_SENT, UNFINISHED, now_iso
from importer.ledger.row_cache import SCRATCH_ID_INDEX
from importer.outcomes import Status

MARSHALLED, PICKLED = 0, 1
"""How a spooled value is written: ``marshal`` (plain values: tuples, dicts, text, numbers),
else ``pickle`` (anything else)."""
COMPRESSED = 2
"""Added to a batch's form when its bytes are LZ4-compressed."""
RECORDS = 4
"""Added to a batch's form when it holds the batch's records as read, not its rows mapped
(a plan's spool: pass two maps them again)."""
COLUMNS = 8
"""Added with ``RECORDS`` when the records are kept column by column (``PlainColumns``)."""
LOOKUPS_BEFORE_CANDIDATES = 50_000
"""Rows looked up one by one (about 4 µs each) before the recording candidates are listed."""
RAW_SPOOL_BYTES = 8 * 1024 * 1024
"""A spool's first bytes are kept as they are: a run of a few thousand rows never loads
pyarrow for LZ4 (a tenth of a second and 30 MB before its first request)."""


def _serialized(value: object) -> tuple[int, bytes]:
    """(form, bytes) of a value."""
    try:
        # marshal writes plain values several times faster than pickle, and refuses the rest.
        return MARSHALLED, marshal.dumps(value)  # type: ignore[arg-type]
    except ValueError:
        # Pickle is safe here: the process reads back only what it wrote a moment ago.
        return PICKLED, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _deserialized(form: int, data: bytes) -> Any:
    return marshal.loads(data) if form == MARSHALLED else pickle.loads(data)


def serialized_batch(batch: object, compress: bool) -> tuple[int, int, bytes]:
    """A batch as the spool keeps it: its form, its size, its bytes (LZ4-compressed with
    ``compress``); made wherever the batch was mapped (``importer.plan.mapping_pool``)."""
    return _kept_as(*_serialized(batch), compress)


def serialized_records(data: bytes, compress: bool, columns: bool) -> tuple[int, int, bytes]:
    """A batch's records as read (``data``: marshalled; ``columns``: column by column), as
    the spool keeps them."""
    form, size, kept = _kept_as(MARSHALLED, data, compress)
    return form | records_form(columns), size, kept


def records_form(columns: bool) -> int:
    """What a batch's form adds when it holds its records as read (``columns``: column by
    column)."""
    return RECORDS | (COLUMNS if columns else 0)


def _kept_as(form: int, data: bytes, compress: bool) -> tuple[int, int, bytes]:
    size = len(data)
    if compress:
        form, data = form | COMPRESSED, _lz4().compress(data, asbytes=True)
    return form, size, data


def _read_back(form: int, size: int, blob: bytes) -> Any:
    """One spooled batch, read back with the cycle collector paused.

    Reading a thousand rows back makes tens of thousands of dicts and objects at once, which
    sets off collection after collection that finds nothing (the rows hold no cycles):
    paused, reading back is about four times faster. It resumes at once, on error too.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        if form & COMPRESSED:
            blob = _lz4().decompress(blob, decompressed_size=size, asbytes=True)
        return _deserialized(form & ~COMPRESSED & ~RECORDS & ~COLUMNS, blob)
    finally:
        if paused:
            gc.enable()


class SpooledRecord(NamedTuple):
    """One spooled batch: its head, read back, and its body, read back when asked."""

    head: Any
    form: int
    size: int
    blob: bytes

    def body(self) -> Any:
        """The batch as it was spooled."""
        return _read_back(self.form, self.size, self.blob)

    @property
    def holds_records(self) -> bool:
        """Whether the body is the batch's records as read, not its rows mapped."""
        return bool(self.form & RECORDS)

    @property
    def holds_columns(self) -> bool:
        """Whether those records are kept column by column (``PlainColumns``'s values)."""
        return bool(self.form & COLUMNS)


@functools.cache
def _lz4() -> Any:
    """LZ4, a tenth of zlib's time for a record a third larger (pyarrow loads when used)."""
    import pyarrow

    return pyarrow.Codec("lz4")


@dataclass(frozen=True)
class PrefixChange:
    """Rows imported under one prefix that a run would now send under another."""

    old_prefix: str
    new_prefix: str
    rows: int
    first_row: int
    old_external_id: str
    new_external_id: str


@dataclass(frozen=True)
class RecordingMatch:
    """A row whose recording is already under another external_id."""

    external_id: str
    source_id: str
    same_source_id: str | None
    """Imported under another prefix: same source id and media URL (None: not so)."""
    same_media: str | None
    """Imported, or earlier in this manifest, with the same media URL."""


SCRATCH = "temp.manifest_index"
"""Pass one's own index; a kept one (``RowCache.keep_manifest``) is a table of the ledger."""


class ManifestIndex:
    """The index of one manifest, on the ledger's connection: pass one's scratch table, or
    the table a run kept it in (ordered by external_id and indexed: nothing to restore)."""

    def __init__(self, ledger: Ledger, table: str = SCRATCH) -> None:
        self.db = ledger.db
        self._table = table
        self._ahead_for: frozenset[str] | None = None
        """The conflicting ids ``summary`` left out of ``temp.ahead`` (None: not usable)."""
        self.spooled_bytes = 0
        """What ``spool`` was given so far, in bytes, before any compression."""
        self.looked_up = 0
        """Rows ``recording_matches`` was asked about so far."""
        self.spools_records = False
        """Whether a batch may be spooled as its records as read rather than its rows mapped
        (``index_manifest``'s ``spool_records``; each batch's form says: ``RECORDS``)."""
        self.defers_rows = False
        """Whether ``add`` keeps rows aside, a batch a blob, until a query reads the table
        (``table``): a plan of new rows that each hashes once reads none of it, and a
        million rows cost two seconds to insert one by one."""
        self.no_recording_elsewhere = False
        """Set by pass one when each media URL of the file is on one row and the ledger holds
        none: no row's recording is under another external_id, so none is looked up (their
        indexes cost two seconds at a million rows). Rows this run sends add none: each has
        a media URL of its own."""

    @property
    def table(self) -> str:
        """The table the index's rows are in: every row ``add`` kept aside is in it now."""
        self._rows_in_table()
        return self._table

    def kept_in(self, table: str) -> None:
        """Read these same rows from now on from the table ``keep_manifest`` kept them in (in
        external_id order and indexed: cheaper joins); what ``summary`` found stays usable."""
        self._rows_in_table()
        self._table = table

    def start(self) -> None:
        """An empty scratch table of (external_id, row, payload hash, source id, media URL);
        the hash NULL for a plan's plain rows until ``hashes_given`` gives it."""
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS manifest_index "
            "(external_id TEXT, row_number INTEGER, payload_hash TEXT, source_id TEXT, "
            "media_url TEXT, settled INTEGER)"
        )
        self.db.execute("DELETE FROM temp.manifest_index")
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS manifest_rows_aside (rows BLOB)")
        self.db.execute("DELETE FROM temp.manifest_rows_aside")
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS manifest_spool "
            "(seq INTEGER PRIMARY KEY, head BLOB, form INTEGER, size INTEGER, rows BLOB)"
        )
        self.db.execute("DELETE FROM temp.manifest_spool")

    def spool(self, batch: object, head: object = None) -> None:
        """Keep what pass two needs of one batch, in file order, for ``spooled``; ``head``:
        what it says of the batch, read back without the batch."""
        self.spool_serialized(serialized_batch(batch, self.compressing), head)

    @property
    def compressing(self) -> bool:
        """Whether batches are spooled compressed by now: past the first ``RAW_SPOOL_BYTES``
        (a small run never loads the codec)."""
        return self.spooled_bytes >= RAW_SPOOL_BYTES

    def spool_serialized(self, batch: tuple[int, int, bytes], head: object = None) -> None:
        """``spool`` of a batch already serialized (``serialized_batch``)."""
        head_form, head_data = _serialized(head)
        self.spooled_bytes += batch[1]
        self.db.execute(
            "INSERT INTO temp.manifest_spool (head, form, size, rows) VALUES (?, ?, ?, ?)",
            [bytes([head_form]) + head_data, *batch],
        )

    def spooled(self) -> Iterator[SpooledRecord]:
        """The spooled batches in file order; one at a time, so memory stays flat."""
        seq = 0
        while True:
            found = self.db.execute(
                "SELECT seq, head, form, size, rows FROM temp.manifest_spool WHERE seq > ? "
                "ORDER BY seq LIMIT 1",
                [seq],
            ).fetchone()
            if found is None:
                return
            seq = found[0]
            head = found[1]
            yield SpooledRecord(_deserialized(head[0], head[1:]), *found[2:])

    def add(self, rows: list[tuple[str, int, str | None, str | None, str | None]]) -> None:
        """Add valid rows to the scratch table, or keep them aside for it (``defers_rows``);
        rows known by their key as imported unchanged enter it as settled from the ledger
        straight (``RowCache.settled_rows``)."""
        if not rows:
            return
        if self.defers_rows:
            try:
                kept = marshal.dumps(rows)
            except ValueError:  # a value marshal refuses: in the table, after those aside
                self._rows_in_table()
            else:
                self.db.execute("INSERT INTO temp.manifest_rows_aside VALUES (?)", [kept])
                return
        self._inserted(rows)

    def _inserted(self, rows: list[tuple[str, int, str | None, str | None, str | None]]) -> None:
        with self.db.conn:
            self.db.conn.executemany(
                "INSERT INTO temp.manifest_index VALUES (?, ?, ?, ?, ?, 0)", rows
            )

    def _rows_in_table(self) -> None:
        """The rows ``add`` kept aside, inserted in the order added; none are kept aside
        from now on."""
        if not self.defers_rows:
            return
        self.defers_rows = False
        for (kept,) in self.db.execute("SELECT rows FROM temp.manifest_rows_aside ORDER BY rowid"):
            self._inserted(marshal.loads(kept))
        self.db.execute("DELETE FROM temp.manifest_rows_aside")

    def unhashed_repeated(self) -> set[str]:
        """The external_ids on more than one row of which a row was added without its
        payload hash (a plan's index entries): ``repeated`` tells whether their payloads
        differ once ``hashes_given`` has them."""
        self._ids_indexed()
        return {
            external_id
            for (external_id,) in self.db.execute(
                f"SELECT external_id FROM {self.table} GROUP BY external_id "
                "HAVING COUNT(*) > 1 AND COUNT(payload_hash) < COUNT(*)"
            )
        }

    def hashes_given(self, hashes: Iterable[tuple[str, str, int]]) -> None:
        """``(payload hash, external_id, row)``: the hash of that row, added without it."""
        self._ids_indexed()
        with self.db.conn:
            self.db.conn.executemany(
                f"UPDATE {self.table} SET payload_hash = ? WHERE external_id = ? "
                "AND row_number = ? AND payload_hash IS NULL",
                hashes,
            )

    def settled_among(self, external_ids: Iterable[str]) -> bool:
        """Whether any of these external_ids is on a row added as settled."""
        self._ids_indexed()
        ids = list(external_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            if self.db.execute(
                "SELECT 1 FROM temp.manifest_index WHERE settled = 1 "
                f"AND external_id IN ({marks}) LIMIT 1",
                chunk,
            ).fetchone():
                return True
        return False

    @functools.cached_property
    def _ledger_knows_recordings(self) -> bool:
        """A read-only ledger of schema 1 has no source ids or media URLs to compare with."""
        return "media_url" in self.db.table("engagements").columns_dict

    def recordings_in_ledger(self) -> bool:
        """Whether the ledger holds media URLs a row's recording could be under (a first
        import's holds none)."""
        return self._ledger_knows_recordings and bool(
            self.db.execute(
                "SELECT 1 FROM engagements WHERE media_url IS NOT NULL LIMIT 1"
            ).fetchone()
        )

    def _ids_indexed(self) -> None:
        """The scratch table's external_id index, made when first needed (a kept table has
        one; a plan of ids and recordings each on one row never needs it)."""
        if self.table == SCRATCH:
            self.db.execute(SCRATCH_ID_INDEX)

    def _media_indexed(self) -> None:
        """The scratch table's media URL index, made when first needed (a kept table has
        one; a run that keeps its index never needs this one)."""
        if self.table == SCRATCH:
            self.db.execute(
                "CREATE INDEX IF NOT EXISTS temp.manifest_index_media ON manifest_index (media_url)"
            )

    def prefix_changes(self, conflicting: Iterable[str]) -> list[PrefixChange]:
        """Rows about to be sent as new whose source id and media URL were imported under
        another external_id: by (old prefix, new prefix), with a count and an example."""
        if not self._ledger_knows_recordings or self.no_recording_elsewhere:
            return []
        conflicting = list(conflicting)
        self._ids_indexed()
        self._media_indexed()
        self._fill("prefix_skip", conflicting)
        # The rows about to be sent as new first (no engagement, or a pending one: few on a
        # re-sync), then their recordings: not a media look-up for every row of the file.
        fresh = (
            "SELECT row_number, external_id, source_id, media_url FROM temp.ahead "
            f"WHERE registered = 0 OR status = '{Status.PENDING}'"
            if self._ahead(conflicting)
            else "SELECT i.row_number, i.external_id, i.source_id, "
            f"i.media_url FROM {self.table} i WHERE NOT EXISTS (SELECT 1 FROM engagements own "
            "WHERE own.external_id = i.external_id) UNION ALL SELECT i.row_number, "
            "i.external_id, i.source_id, i.media_url FROM engagements own "
            f"JOIN {self.table} i ON i.external_id = own.external_id "
            f"WHERE own.status = '{Status.PENDING}'"
        )
        moved = (
            f"WITH fresh AS MATERIALIZED ({fresh}), "
            "moved AS (SELECT i.row_number, i.external_id AS new_id, e.external_id AS old_id,"
            " substr(e.external_id, 1, length(e.external_id) - length(e.source_id)) AS old_prefix,"
            " substr(i.external_id, 1, length(i.external_id) - length(i.source_id)) AS new_prefix"
            " FROM fresh i CROSS JOIN engagements e ON e.media_url = i.media_url"  # fresh first
            " AND e.source_id = i.source_id AND e.external_id != i.external_id"
            f" AND e.status IN {IMPORTED}"
            " WHERE i.external_id NOT IN (SELECT external_id FROM temp.prefix_skip)) "
        )
        changes = []
        for row in list(
            self.db.query(
                moved + "SELECT old_prefix, new_prefix, COUNT(DISTINCT new_id) AS n, "
                "MIN(row_number) AS first FROM moved GROUP BY old_prefix, new_prefix ORDER BY first"
            )
        ):
            example = self.db.execute(
                moved + "SELECT old_id, new_id FROM moved WHERE row_number = ? "
                "AND old_prefix = ? AND new_prefix = ? LIMIT 1",
                [row["first"], row["old_prefix"], row["new_prefix"]],
            ).fetchone()
            changes.append(
                PrefixChange(row["old_prefix"], row["new_prefix"], row["n"], row["first"], *example)
            )
        return changes

    def recording_matches(
        self, external_ids: Iterable[str], *, every_row: bool = False
    ) -> list[RecordingMatch]:
        """For these rows: other external_ids their recording is already under (the ledger
        first, then an earlier row of this manifest); rows with none are left out.

        Past the first ``LOOKUPS_BEFORE_CANDIDATES`` rows, only rows listed as candidates
        are looked up (the list costs about a second at a million rows: a resumed run that
        plans a few thousand rows looks them up one by one); ``every_row`` looks up all of
        them, as tests do to hold the shortcut to the same matches."""
        ids = list(dict.fromkeys(external_ids))
        self.looked_up += len(ids)
        if self.no_recording_elsewhere:
            return []
        if not every_row and self.looked_up > LOOKUPS_BEFORE_CANDIDATES:
            ids = self._recording_candidates(ids)
        in_ledger = self._ledger_knows_recordings
        if ids:
            self._ids_indexed()
            self._media_indexed()
        imported = (
            "(SELECT e.external_id FROM engagements e WHERE e.media_url = i.media_url "
            "AND e.external_id != i.external_id AND e.status IN " + IMPORTED + " {} "
            "ORDER BY e.completed_at LIMIT 1)"
        )
        found: list[RecordingMatch] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            same_row = imported.format("AND e.source_id = i.source_id") if in_ledger else "NULL"
            same_media = imported.format("") if in_ledger else "NULL"
            # Only the rows with a match come back: almost none, of a million new rows.
            for external_id, source_id, prefix_of, imported_as, earlier in self.db.execute(
                "SELECT * FROM (SELECT i.external_id, i.source_id, "
                f"{same_row} AS prefix_of, {same_media} AS imported_as, "
                f"(SELECT j.external_id FROM {self.table} j WHERE j.media_url = i.media_url "
                "AND j.external_id != i.external_id AND j.row_number < i.row_number "
                "ORDER BY j.row_number LIMIT 1) AS earlier "
                f"FROM {self.table} i WHERE i.external_id IN ({marks})) "
                "WHERE prefix_of IS NOT NULL OR imported_as IS NOT NULL OR earlier IS NOT NULL",
                chunk,
            ):
                if prefix_of or imported_as or earlier:
                    found.append(
                        RecordingMatch(
                            external_id, source_id or "", prefix_of, imported_as or earlier
                        )
                    )
        return found

    @functools.cached_property
    def _any_recording_candidates(self) -> bool:
        """Whether any row may have a recording match, once its candidates are listed: the
        rows whose media URL is on another external_id, here or in the ledger.

        Asked once, during pass two. The ledger can gain such a row later only from this
        manifest (a row sent, or one an older ledger learns the media URL of), and that
        media URL is then on two ids of the index, found here already."""
        if self.no_recording_elsewhere:
            return False
        self._media_indexed()
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS recording_candidates "
            "(external_id TEXT PRIMARY KEY) WITHOUT ROWID"
        )
        with self.db.conn:
            self.db.execute("DELETE FROM temp.recording_candidates")
            self.db.execute(
                "INSERT OR IGNORE INTO temp.recording_candidates SELECT i.external_id "
                f"FROM {self.table} i WHERE i.media_url IN (SELECT media_url FROM {self.table} "
                "WHERE media_url IS NOT NULL GROUP BY media_url "
                "HAVING COUNT(DISTINCT external_id) > 1)"
            )
            if self._ledger_knows_recordings:
                self.db.execute(
                    "INSERT OR IGNORE INTO temp.recording_candidates SELECT i.external_id "
                    f"FROM engagements e JOIN {self.table} i ON i.media_url = e.media_url "
                    "AND i.external_id != e.external_id"
                )
        found = self.db.execute("SELECT 1 FROM temp.recording_candidates LIMIT 1").fetchone()
        return found is not None

    def _recording_candidates(self, external_ids: list[str]) -> list[str]:
        """These ids but those whose recording cannot be anywhere else (almost all)."""
        if not external_ids or not self._any_recording_candidates:
            return []
        candidates: set[str] = set()
        for start in range(0, len(external_ids), 500):
            chunk = external_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            candidates.update(
                found
                for (found,) in self.db.execute(
                    "SELECT external_id FROM temp.recording_candidates "
                    f"WHERE external_id IN ({marks})",
                    chunk,
                )
            )
        return [i for i in external_ids if i in candidates]

    def _fill(self, table: str, external_ids: Iterable[str]) -> None:
        self.db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (external_id TEXT)")
        with self.db.conn:
            self.db.execute(f"DELETE FROM temp.{table}")
            self.db.conn.executemany(
                f"INSERT INTO temp.{table} VALUES (?)", [(i,) for i in external_ids]
            )

    def repeated(self, shown: int = 10) -> Iterator[tuple[str, int, bool, tuple[int, ...], int]]:
        """external_ids on more than one row: first row, whether the payloads differ, the
        first ``shown`` rows and how many more there are. Their rows' hashes must be in
        (``unhashed_repeated`` names those that are not, ``hashes_given`` gives them)."""
        self._ids_indexed()
        # The repeated ids from the external_id index alone first; their rows only then.
        for row in self.db.query(
            "SELECT external_id, MIN(row_number) AS first_row, COUNT(*) AS n, "
            "GROUP_CONCAT(row_number) AS row_numbers, "
            f"COUNT(DISTINCT payload_hash) > 1 AS conflicting FROM {self.table} "
            f"WHERE external_id IN (SELECT external_id FROM {self.table} GROUP BY external_id "
            "HAVING COUNT(*) > 1) GROUP BY external_id"
        ):
            numbers = sorted(int(n) for n in row["row_numbers"].split(","))[:shown]
            yield (
                row["external_id"],
                row["first_row"],
                bool(row["conflicting"]),
                tuple(numbers),
                row["n"] - len(numbers),
            )

    def register_pending(self, manifest: str, conflicting: Iterable[str]) -> int:
        """Every sendable row becomes visible as ``pending`` before the first request."""
        conflicting = list(conflicting)
        stamp = now_iso()
        self._ids_indexed()
        if self._ahead(conflicting):
            self._ahead_for = None  # the ledger changes now
            with self.db.conn:
                cursor = self.db.execute(
                    "INSERT OR IGNORE INTO engagements (external_id, manifest, row_number, "
                    "status, transient, payload_hash, attempts, first_seen_at, updated_at, "
                    "source_id, media_url) "
                    f"SELECT external_id, ?, row_number, '{Status.PENDING}', 0, payload_hash, "
                    "0, ?, ?, source_id, media_url FROM temp.ahead WHERE registered = 0",
                    [manifest, stamp, stamp],
                )
            return int(cursor.rowcount)
        with self.db.conn:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS conflicting (external_id TEXT)")
            self.db.execute("DELETE FROM temp.conflicting")
            self.db.conn.executemany(
                "INSERT INTO temp.conflicting VALUES (?)", [(i,) for i in conflicting]
            )
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO engagements (external_id, manifest, row_number, status, "
                "transient, payload_hash, attempts, first_seen_at, updated_at, source_id, "
                "media_url) "
                f"SELECT external_id, ?, MIN(row_number), '{Status.PENDING}', 0, payload_hash, "
                "0, ?, ?, source_id, media_url "
                # Only ids the ledger does not hold yet (what OR IGNORE would keep anyway),
                # found through its key alone, not by reading every row it holds.
                f"FROM {self.table} i WHERE NOT EXISTS (SELECT 1 FROM engagements e "
                "WHERE e.external_id = i.external_id) AND external_id NOT IN "
                "(SELECT external_id FROM temp.conflicting) GROUP BY external_id",
                [manifest, stamp, stamp],
            )
        return int(cursor.rowcount)

    def unfinished_after(self, row_number: int) -> dict[str, int]:
        """Indexed ids first seen after a row that the ledger holds pending or in flight."""
        self._ids_indexed()
        # From the ledger's unfinished rows (its status index), not every row of the index.
        return {
            row["status"]: row["n"]
            for row in self.db.query(
                "SELECT e.status AS status, COUNT(*) AS n FROM engagements e "
                f"WHERE e.status IN {UNFINISHED} AND (SELECT MIN(i.row_number) FROM "
                f"{self.table} i WHERE i.external_id = e.external_id) > ? GROUP BY e.status",
                [row_number],
            )
        }

    def left_behind(self, manifest: str, run_id: int, shown: int = 10) -> tuple[int, list[str]]:
        """Rows the ledger holds pending or in flight for ``manifest`` that it no longer has.

        A manifest cut short or replaced after a stopped run leaves them: no run would ever
        send them again. Rows read this run as invalid or skipped are in it, so not counted.
        The count, and the first ``shown`` external_ids.
        """
        self._ids_indexed()
        where = (
            f"FROM engagements WHERE manifest = ? AND status IN {NOT_SENT} "
            f"AND external_id NOT IN (SELECT external_id FROM {self.table}) "
            "AND external_id NOT IN (SELECT external_id FROM rejects WHERE manifest = ? "
            "AND run_id = ? AND external_id IS NOT NULL)"
        )
        values = [manifest, manifest, run_id]
        count = self.db.execute(f"SELECT COUNT(*) {where}", values).fetchone()[0]
        named = self.db.execute(
            f"SELECT external_id {where} ORDER BY row_number LIMIT ?", [*values, shown]
        ).fetchall()
        return count, [row[0] for row in named]

    def summary(
        self,
        conflicting: Iterable[str] = (),
        *,
        only_failed: bool = False,
        include_permanent: bool = False,
    ) -> dict[str, int]:
        """Before sending: how many indexed ids are already final, and how many remain.

        It judges as the plan does: an imported row whose values differ is changed since
        import, not already imported; a row rejected for good is skipped only while it is
        unchanged (and ``include_permanent`` is off). Conflicting duplicates are never
        sent, so they are not counted; with ``only_failed`` (retry) only rows a run left
        unfinished are to send.
        """
        self._ids_indexed()
        counts = {
            "already imported": 0,
            "changed since import": 0,
            "failed before": 0,
            "to send": 0,
        }
        skipped = list(dict.fromkeys(conflicting))
        self._fill("summary_skip", skipped)
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS ahead (external_id TEXT, row_number INTEGER, "
            "payload_hash TEXT, source_id TEXT, media_url TEXT, kind TEXT, registered INTEGER, "
            "status TEXT)"
        )
        to_send = f"e.status IN {UNFINISHED}" if only_failed else "1"
        # Rows pass one found settled are already imported, and their ids on no other row
        # (``index_manifest``): the scratch index's settled rows are not joined again.
        unsettled = "AND i.settled = 0 " if self.table == SCRATCH else ""
        # One pass in the external_id index's order, one kind per id (an id whose rows differ
        # is conflicting, so left out). Only the ids not already imported are kept (few on a
        # re-sync or a resume): counted here, registered and prefix-checked from here.
        with self.db.conn:
            self.db.execute("DELETE FROM temp.ahead")
            self.db.execute(
                "INSERT INTO temp.ahead SELECT i.external_id, MIN(i.row_number), i.payload_hash, "
                "i.source_id, i.media_url, "
                f"CASE WHEN e.status IN {IMPORTED} AND (:only_failed "
                "OR i.payload_hash = e.payload_hash) THEN 'already imported' "
                f"WHEN e.status IN {IMPORTED} THEN 'changed since import' "
                f"WHEN e.status = '{Status.FAILED}' AND e.transient = 0 AND NOT :permanent "
                "AND i.payload_hash = COALESCE(e.sent_hash, e.payload_hash) THEN 'failed before' "
                f"WHEN {to_send} THEN 'to send' ELSE 'other' END AS kind, "
                "e.external_id IS NOT NULL, e.status "
                f"FROM {self.table} i LEFT JOIN engagements e USING (external_id) "
                "WHERE i.external_id NOT IN (SELECT external_id FROM temp.summary_skip) "
                f"{unsettled}GROUP BY i.external_id HAVING kind != 'already imported'",
                {"permanent": int(include_permanent), "only_failed": int(only_failed)},
            )
        for kind, n in self.db.execute("SELECT kind, COUNT(*) FROM temp.ahead GROUP BY kind"):
            if kind in counts:
                counts[kind] = n
        ahead = self.db.execute("SELECT COUNT(*) FROM temp.ahead").fetchone()[0]
        ids = self.db.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {self.table} GROUP BY external_id)"
        ).fetchone()[0]
        skipped_here = self.db.execute(
            "SELECT COUNT(*) FROM temp.summary_skip s WHERE EXISTS "
            f"(SELECT 1 FROM {self.table} i WHERE i.external_id = s.external_id)"
        ).fetchone()[0]
        counts["already imported"] = ids - skipped_here - ahead
        self._ahead_for = frozenset(skipped)
        return counts

    def _ahead(self, conflicting: Iterable[str]) -> bool:
        """Whether ``temp.ahead`` (``summary``) holds the rows not already imported, with
        these conflicting ids left out, and the ledger has not been written since."""
        return self._ahead_for == frozenset(conflicting)
