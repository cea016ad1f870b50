"""What makes a re-sync cheap: rows known by their key, and the pace each server took.

- ``row_keys``: a manifest row's key (``importer.rows.row_keys``) with what it mapped to
  (external_id, payload hash, contact set hash, source id, media URL). Mapping is a pure
  function of the key, so an entry never goes stale; whether its row is *settled* (imported
  unchanged, nothing left to apply) is asked of ``engagements`` each time.
- ``kept_manifests`` and a ``kept_index_N`` table per manifest: a manifest's fingerprint and
  what pass one learned of it (its index, counts, notices), so an unchanged manifest is not
  indexed again.
- ``server_paces``: the requests per second a server last took, by base URL and a
  fingerprint of the API key (never the key), so a new run starts at that pace.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from importer.ledger.db import BEYOND_ASCII, IMPORTED, LedgerDB, now_iso

KEPT_TABLE = re.compile(r"kept_index_(\d+)")
"""The tables kept indexes live in, one per manifest (``kept_manifests`` names it)."""
SETTLED_KEYS = (
    "FROM keyed b CROSS JOIN row_keys k ON k.key = b.key "
    "CROSS JOIN engagements e ON e.external_id = k.external_id "
    f"WHERE e.status IN {IMPORTED} AND e.payload_hash = k.payload_hash "
    "AND e.changed_fields IS NULL "
    "AND (k.contacts_hash IS NULL OR k.contacts_hash = e.contacts_hash) "
    "AND e.source_id IS k.source_id AND e.media_url IS k.media_url"
)
"""SQL: the keyed rows (``keyed``: key, row number) whose row is settled (``settled_rows``),
each looked up by its key, then its external_id, in the order the rows were given."""
PAIRS_PER_LOOKUP = 499
"""(key, row number) pairs per look-up: 998 parameters, under SQLite's oldest limit of 999."""
SCRATCH_ID_INDEX = (
    "CREATE INDEX IF NOT EXISTS temp.manifest_index_id ON manifest_index (external_id, row_number)"
)
"""SQL: the scratch index's rows in the order a kept index is written (``keep_manifest``)
and repeated ids are found (``ManifestIndex.repeated``): no sort of every row to keep it."""


class KeyedRow(NamedTuple):
    """What a row key maps to (a tuple: a million of them are built and spooled quickly)."""

    key: bytes
    external_id: str
    payload_hash: str
    contacts_hash: str | None
    """None: the row leaves contacts alone."""
    source_id: str | None
    media_url: str | None


class SettledRow(NamedTuple):
    """A record whose key the ledger holds for a row imported unchanged: never mapped.

    A small tuple: a re-sync spools and reads back a million of them."""

    row_number: int
    external_id: str
    source_id: str | None


class RowCache(LedgerDB):
    """The ``row_keys`` and ``server_paces`` tables."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        super().__init__(path, readonly=readonly)
        self._keys_usable: bool | None = None
        self._learning = False
        """Whether ``learn_row_keys`` noted keys not yet kept."""
        if not readonly:
            with self.db.conn:
                self.db.execute(
                    "CREATE TABLE IF NOT EXISTS row_keys (key BLOB PRIMARY KEY, "
                    "external_id TEXT NOT NULL, payload_hash TEXT NOT NULL, contacts_hash TEXT, "
                    "source_id TEXT, media_url TEXT) WITHOUT ROWID"
                )
                self.db.execute(
                    "CREATE TABLE IF NOT EXISTS kept_manifests (manifest TEXT PRIMARY KEY, "
                    "fingerprint TEXT NOT NULL, record TEXT NOT NULL, kept_at TEXT)"
                )
                self.db.execute(
                    "CREATE TABLE IF NOT EXISTS server_paces (server TEXT PRIMARY KEY, "
                    "rate REAL NOT NULL, limited INTEGER NOT NULL, updated_at TEXT)"
                )

    def _has(self, table: str) -> bool:
        try:
            return table in self.db.table_names()
        except sqlite3.DatabaseError:
            return False

    def keys_of_use(self) -> bool:
        """Whether making rows' keys can help: a writable ledger keeps them for the next
        run; a read-only one (a plan) can only look them up, so it must hold some."""
        if not self.readonly:
            return True
        return self._row_keys_usable() and bool(
            self.db.execute("SELECT 1 FROM row_keys LIMIT 1").fetchone()
        )

    def _row_keys_usable(self) -> bool:
        """The table is there, and engagements know source ids and media URLs (schema 2)."""
        if self._keys_usable is None:
            self._keys_usable = self._has("row_keys") and (
                "media_url" in self.db.table("engagements").columns_dict
            )
        return self._keys_usable

    def learn_row_keys(self, rows: Iterable[KeyedRow]) -> None:
        """Note what these keys map to, kept by ``keep_learned_keys`` (a read-only ledger
        keeps nothing). Pass one learns a million keys: put into ``row_keys`` as they come,
        in no order, they cost 35 µs each, a third of a first million-row run's pass one;
        noted in a scratch table and kept in key order at its end, about 2."""
        if self.readonly:
            return
        rows = list(rows)
        if not rows:
            return
        if not self._learning:
            self.db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS learned_keys (key BLOB, external_id TEXT, "
                "payload_hash TEXT, contacts_hash TEXT, source_id TEXT, media_url TEXT)"
            )
            self.db.execute("DELETE FROM temp.learned_keys")
            self._learning = True
        with self.db.conn:
            self.db.conn.executemany(
                "INSERT INTO temp.learned_keys VALUES (?, ?, ?, ?, ?, ?)", rows
            )

    def forget_learned_keys(self) -> None:
        """Drop the keys noted and not kept (a pass one stopped midway keeps none)."""
        if self._learning:
            self.db.execute("DELETE FROM temp.learned_keys")
            self._learning = False

    def keep_learned_keys(self) -> None:
        """Keep the keys ``learn_row_keys`` noted, in key order, in one transaction (a later
        note of a key wins, as with one insert after another)."""
        if not self._learning:
            return
        self._learning = False
        with self.db.conn:
            self.db.execute(
                "INSERT OR REPLACE INTO row_keys SELECT key, external_id, payload_hash, "
                "contacts_hash, source_id, media_url FROM temp.learned_keys ORDER BY key, rowid"
            )
            self.db.execute("DELETE FROM temp.learned_keys")

    def remember_row_keys(self, rows: Iterable[KeyedRow]) -> None:
        """Keep what these keys map to (a read-only ledger keeps nothing)."""
        if self.readonly:
            return
        with self.db.conn:
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO row_keys VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.key,
                        r.external_id,
                        r.payload_hash,
                        r.contacts_hash,
                        r.source_id,
                        r.media_url,
                    )
                    for r in rows
                ],
            )

    def settled_rows(
        self, keyed: Sequence[tuple[bytes, int]], index: str | None = None
    ) -> list[SettledRow]:
        """Of these (key, row number) pairs, the rows imported unchanged with nothing left to
        apply, in the order given; with ``index`` (a manifest index's scratch table), their
        entries are added to it as settled, from the ledger straight (nothing read back but
        what is returned).

        Settled: created or existing, holding the payload the key maps to, its contact set
        applied (or left alone), no change noted, and its source id and media URL known:
        exactly the rows the plan would call ``already imported`` with nothing to write.
        """
        if not keyed or not self._row_keys_usable():
            return []
        found: list[tuple[int, str, str | None]] = []
        with self.db.conn:
            before = (
                self.db.execute(f"SELECT MAX(rowid) FROM {index}").fetchone()[0] or 0
                if index is not None
                else 0
            )
            for start in range(0, len(keyed), PAIRS_PER_LOOKUP):
                chunk = keyed[start : start + PAIRS_PER_LOOKUP]
                pairs = ", ".join(["(?, ?)"] * len(chunk))
                keyed_rows = f"WITH keyed (key, row_number) AS (VALUES {pairs}) "
                values = [value for pair in chunk for value in pair]
                if index is None:
                    found += self.db.execute(
                        f"{keyed_rows}SELECT b.row_number, k.external_id, k.source_id "
                        + SETTLED_KEYS,
                        values,
                    ).fetchall()
                else:
                    self.db.execute(
                        f"INSERT INTO {index} (external_id, row_number, payload_hash, source_id, "
                        f"media_url, settled) {keyed_rows}SELECT k.external_id, b.row_number, "
                        f"k.payload_hash, k.source_id, k.media_url, 1 {SETTLED_KEYS}",
                        values,
                    )
            if index is not None:
                found = self.db.execute(
                    f"SELECT row_number, external_id, source_id FROM {index} WHERE rowid > ?",
                    [before],
                ).fetchall()
        return list(map(SettledRow._make, found))

    def kept_manifest(self, manifest: str, fingerprint: str) -> dict[str, Any] | None:
        """What pass one learned of this manifest, if it was read with this fingerprint;
        ``index_table`` names the table its index was kept in."""
        if not self._has("kept_manifests"):
            return None
        row = self.db.execute(
            "SELECT record FROM kept_manifests WHERE manifest = ? AND fingerprint = ?",
            [manifest, fingerprint],
        ).fetchone()
        try:
            record = json.loads(row[0]) if row is not None else None
        except (TypeError, ValueError):
            return None  # a damaged record is no record: the manifest is read again
        if not isinstance(record, dict) or not self._is_kept_table(record.get("index_table")):
            return None  # kept by an earlier version, or its table is gone
        return record

    def _is_kept_table(self, name: object) -> bool:
        return isinstance(name, str) and KEPT_TABLE.fullmatch(name) is not None and self._has(name)

    def keep_manifest(self, manifest: str, fingerprint: str, record: dict[str, Any]) -> str | None:
        """Keep pass one's index (``temp.manifest_index``) and ``record`` for the next run.

        The index goes to a table of its own, in external_id order and indexed, so a run
        that finds it uses it as it is (joins with ``engagements`` read both in key order);
        the table this manifest's index was kept in before is dropped. Its name, or None
        (a read-only ledger keeps nothing)."""
        if self.readonly:
            return None
        with self.db.conn:
            self.db.execute(SCRATCH_ID_INDEX)  # made by pass one's duplicate search, else now
            table = self._next_kept_table()
            self.db.execute(
                f"CREATE TABLE {table} (external_id TEXT, row_number INTEGER, "
                "payload_hash TEXT, source_id TEXT, media_url TEXT)"
            )
            self.db.execute(
                f"INSERT INTO {table} SELECT external_id, row_number, payload_hash, source_id, "
                "media_url FROM temp.manifest_index ORDER BY external_id, row_number"
            )
            self.db.execute(f"CREATE INDEX {table}_id ON {table} (external_id)")
            self.db.execute(f"CREATE INDEX {table}_media ON {table} (media_url)")
            self.db.execute(  # the lookalike check's few ids beyond ASCII
                f"CREATE INDEX {table}_beyond_ascii ON {table} (external_id, row_number) "
                f"WHERE {BEYOND_ASCII.format('external_id')}"
            )
            before = self.db.execute(
                "SELECT record FROM kept_manifests WHERE manifest = ?", [manifest]
            ).fetchone()
            self._drop_kept_table(before[0] if before else None)
            if self._has("kept_index"):  # an earlier version kept every index in one table
                self.db.execute("DELETE FROM kept_index WHERE manifest = ?", [manifest])
            self.db.execute("DELETE FROM kept_manifests WHERE manifest = ?", [manifest])
            self.db.execute(
                "INSERT INTO kept_manifests VALUES (?, ?, ?, ?)",
                [manifest, fingerprint, json.dumps({**record, "index_table": table}), now_iso()],
            )
        return table

    def _next_kept_table(self) -> str:
        numbers = [
            int(found.group(1))
            for name in self.db.table_names()
            if (found := KEPT_TABLE.fullmatch(name)) is not None
        ]
        return f"kept_index_{max(numbers, default=0) + 1}"

    def _drop_kept_table(self, record_text: str | None) -> None:
        try:
            name = json.loads(record_text).get("index_table") if record_text else None
        except (TypeError, ValueError, AttributeError):
            return  # a damaged record: its table, if any, stays (never one not ours)
        if self._is_kept_table(name):
            # Freed pages left as they are, not zeroed (SQLite builds that default to
            # secure_delete write every page of the old index again: 0.6 s at a million rows);
            # the ledger holds the same ids, hashes and URLs in engagements anyway.
            secure = self.db.execute("PRAGMA secure_delete").fetchone()[0]
            self.db.execute("PRAGMA secure_delete = FAST")
            try:
                self.db.execute(f"DROP TABLE {name}")
            finally:
                self.db.execute(f"PRAGMA secure_delete = {int(secure)}")

    def server_pace(self, server: str) -> tuple[float, bool] | None:
        """Requests per second this server (and key) last took, and whether that was a limit
        it showed by refusing; None when no run learned it."""
        if not self._has("server_paces"):
            return None
        row = self.db.execute(
            "SELECT rate, limited FROM server_paces WHERE server = ?", [server]
        ).fetchone()
        if row is None or not isinstance(row[0], int | float) or not row[0] > 0:
            return None  # a damaged or hand-edited value is no pace
        return float(row[0]), bool(row[1])

    def remember_server_pace(self, server: str, rate: float, limited: bool) -> None:
        """The pace the server took in this run, for the next one."""
        if self.readonly:
            return
        with self.db.conn:
            self.db.execute(
                "INSERT OR REPLACE INTO server_paces VALUES (?, ?, ?, ?)",
                [server, rate, int(limited), now_iso()],
            )
