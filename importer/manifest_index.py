"""The manifest index: pass one's scratch table of (external_id, row, payload hash).

It lives in SQLite's temp store on the ledger's connection, so memory stays flat whatever
the manifest's size, and SQLite can join it with the ledger's ``engagements`` table: to find
external_ids repeated across the whole file, to register every sendable row as ``pending``
before the first request, and to count what is ahead. It is gone when the ledger closes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from importer.ledger import Ledger, now_iso
from importer.ledger.db import UNFINISHED


class ManifestIndex:
    """The scratch index of one manifest, on the ledger's connection."""

    def __init__(self, ledger: Ledger) -> None:
        self.db = ledger.db

    def start(self) -> None:
        """An empty scratch table of (external_id, row, payload hash) for this manifest."""
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS manifest_index "
            "(external_id TEXT, row_number INTEGER, payload_hash TEXT)"
        )
        self.db.execute("DELETE FROM temp.manifest_index")

    def add(self, rows: list[tuple[str, int, str]]) -> None:
        """Add valid rows to the scratch table."""
        with self.db.conn:
            self.db.conn.executemany("INSERT INTO temp.manifest_index VALUES (?, ?, ?)", rows)

    def repeated(self, shown: int = 10) -> Iterator[tuple[str, int, bool, tuple[int, ...], int]]:
        """external_ids on more than one row: first row, whether the payloads differ, the
        first ``shown`` rows and how many more there are."""
        self.db.execute(
            "CREATE INDEX IF NOT EXISTS temp.manifest_index_id ON manifest_index (external_id)"
        )
        for row in self.db.query(
            "SELECT external_id, MIN(row_number) AS first_row, COUNT(*) AS n, "
            "GROUP_CONCAT(row_number) AS row_numbers, "
            "COUNT(DISTINCT payload_hash) > 1 AS conflicting FROM temp.manifest_index "
            "GROUP BY external_id HAVING COUNT(*) > 1"
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
        stamp = now_iso()
        with self.db.conn:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS conflicting (external_id TEXT)")
            self.db.execute("DELETE FROM temp.conflicting")
            self.db.conn.executemany(
                "INSERT INTO temp.conflicting VALUES (?)", [(i,) for i in conflicting]
            )
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO engagements (external_id, manifest, row_number, status, "
                "transient, payload_hash, attempts, first_seen_at, updated_at) "
                "SELECT external_id, ?, MIN(row_number), 'pending', 0, payload_hash, 0, ?, ? "
                "FROM temp.manifest_index WHERE external_id NOT IN "
                "(SELECT external_id FROM temp.conflicting) GROUP BY external_id",
                [manifest, stamp, stamp],
            )
        return cursor.rowcount

    def summary(
        self,
        conflicting: Iterable[str] = (),
        *,
        only_failed: bool = False,
        include_permanent: bool = False,
    ) -> dict[str, int]:
        """Before sending: how many indexed ids are already final, and how many remain.

        It judges as the plan does: a row rejected for good is skipped only while it is
        unchanged (and ``include_permanent`` is off). Conflicting duplicates are never
        sent, so they are not counted; with ``only_failed`` (retry) only rows a run left
        unfinished are to send.
        """
        counts = {"already imported": 0, "failed before": 0, "to send": 0}
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS summary_skip (external_id TEXT)")
        self.db.execute("DELETE FROM temp.summary_skip")
        with self.db.conn:
            self.db.conn.executemany(
                "INSERT INTO temp.summary_skip VALUES (?)", [(i,) for i in conflicting]
            )
        to_send = f"e.status IN {UNFINISHED}" if only_failed else "1"
        for row in self.db.query(
            "SELECT CASE WHEN e.status IN ('created', 'existing') THEN 'already imported' "
            "WHEN e.status = 'failed' AND e.transient = 0 AND NOT :permanent "
            "AND i.payload_hash = COALESCE(e.sent_hash, e.payload_hash) THEN 'failed before' "
            f"WHEN {to_send} THEN 'to send' ELSE 'other' END AS kind, "
            "COUNT(DISTINCT i.external_id) AS n "
            "FROM temp.manifest_index i LEFT JOIN engagements e USING (external_id) "
            "WHERE i.external_id NOT IN (SELECT external_id FROM temp.summary_skip) "
            "GROUP BY kind",
            {"permanent": int(include_permanent)},
        ):
            if row["kind"] in counts:
                counts[row["kind"]] = row["n"]
        return counts
