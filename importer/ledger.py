"""The ledger: a SQLite file that records every row's outcome, so runs resume exactly.

Tables:

- ``engagements``: one row per ``external_id`` that was planned for sending: status
  (``pending``, ``in_flight``, ``created``, ``existing``, ``failed``), payload hash, engagement
  id, attempts, the last error, contact and verification state.
- ``rejects``: manifest rows that were never sendable (``invalid`` or ``duplicate``), keyed
  by manifest and row number, with their original cells so ``errors.csv`` can be fixed and
  fed back; and rows with nothing to import (``skipped``), listed in ``skipped.csv``.
- ``runs``: each run's command, options (never the API key), times, counts and outcome.
- ``media_checks``: cached ``--check-media`` results per URL.

A row is marked ``in_flight`` (and committed) before its request leaves, so a process that
dies mid-request leaves evidence, and the next run re-sends it; the API's idempotency on
``external_id`` turns that re-send into a harmless ``200``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from importer.errors import LedgerError

SCHEMA_VERSION = 1
FINAL_SUCCESS = ("created", "existing")
STATUSES = (
    "pending",
    "in_flight",
    "created",
    "existing",
    "failed",
    "invalid",
    "duplicate",
    "skipped",
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; locking is then skipped
    fcntl = None  # type: ignore[assignment]


# Rejected rows still worth fixing: not imported or sent since, not rejected again later.
CURRENT_REJECTS = (
    "(SELECT r.* FROM rejects r WHERE NOT EXISTS (SELECT 1 FROM engagements e"
    " WHERE e.external_id = r.external_id AND (e.status IN ('created', 'existing')"
    " OR e.run_id > r.run_id))"
    " AND NOT EXISTS (SELECT 1 FROM rejects later"
    " WHERE later.external_id = r.external_id AND later.run_id > r.run_id))"
)


def now_iso() -> str:
    """The current UTC time as ISO 8601 text (what every timestamp column holds)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def require_ledger(path: Path) -> Path:
    """The path of a ledger that must already exist (status, report, retry, verify)."""
    if not path.exists():
        raise LedgerError(
            f"no ledger at {path}: nothing has been imported with it yet "
            "(check --ledger, or run `importer run` first)"
        )
    return path


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


class Ledger:
    """One ledger file, opened for a command. Not shared between threads."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._media_memory: dict[str, dict[str, Any]] = {}
        if readonly and not path.exists():
            self.db = sqlite_utils.Database(memory=True)
        else:
            self.db = self._connect(path, readonly)
        self._check_is_ours()
        if not readonly:
            self._use_wal()
        if not readonly or not path.exists():
            self._create_tables()

    # -- opening -------------------------------------------------------------------------

    def _connect(self, path: Path, readonly: bool) -> sqlite_utils.Database:
        if path.is_dir():
            raise LedgerError(f"ledger {path} is a folder; pass a file path to --ledger")
        if not readonly:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise LedgerError(
                    f"cannot create the ledger folder {path.parent} ({error.strerror})"
                ) from error
            if not os.access(path.parent, os.W_OK) or (
                path.exists() and not os.access(path, os.W_OK)
            ):
                raise LedgerError(
                    f"ledger {path} is not writable; choose another location with --ledger"
                )
        try:
            if readonly:
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            else:
                conn = sqlite3.connect(str(path), timeout=30)
            db = sqlite_utils.Database(conn)
            db.execute("PRAGMA busy_timeout=30000")
        except sqlite3.OperationalError as error:
            if path.exists():
                raise LedgerError(self._not_a_ledger(error)) from error
            raise LedgerError(
                f"cannot create the ledger {path} ({error}); choose another location with --ledger"
            ) from error
        except sqlite3.DatabaseError as error:
            raise LedgerError(self._not_a_ledger(error)) from error
        return db

    def _use_wal(self) -> None:
        """WAL journaling, switched on only once the file is known to be ours (or new)."""
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.OperationalError as error:
            raise LedgerError(f"cannot write the ledger {self.path} ({error})") from error
        except sqlite3.DatabaseError as error:
            raise LedgerError(self._not_a_ledger(error)) from error

    def _not_a_ledger(self, error: Exception) -> str:
        return (
            f"{self.path} is not a usable importer ledger ({error}); it was left untouched: "
            "move it away or pass another file with --ledger"
        )

    def _check_is_ours(self) -> None:
        try:
            tables = set(self.db.table_names())
        except sqlite3.DatabaseError as error:
            raise LedgerError(self._not_a_ledger(error)) from error
        if tables and "meta" not in tables:
            raise LedgerError(
                f"{self.path} is a SQLite file of something else (tables: "
                f"{', '.join(sorted(tables)[:5])}); it was left untouched: pass another --ledger"
            )

    def _create_tables(self) -> None:
        try:
            with self.db.conn:
                self.db.table("meta").create(
                    {"key": str, "value": str}, pk="key", if_not_exists=True
                )
                self.db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    [str(SCHEMA_VERSION)],
                )
                self.db.table("engagements").create(
                    {
                        "external_id": str,
                        "manifest": str,
                        "row_number": int,
                        "status": str,
                        "transient": int,
                        "payload_hash": str,
                        "sent_hash": str,
                        "field_hashes": str,
                        "http_status": int,
                        "engagement_id": str,
                        "attempts": int,
                        "error_message": str,
                        "error_detail": str,
                        "error_errors": str,
                        "request_id": str,
                        "cells": str,
                        "contacts_hash": str,
                        "contacts_applied_at": str,
                        "contacts_error": str,
                        "processing_status": str,
                        "processing_seen_at": str,
                        "etag": str,
                        "changed_fields": str,
                        "run_id": int,
                        "first_seen_at": str,
                        "sent_at": str,
                        "completed_at": str,
                        "updated_at": str,
                    },
                    pk="external_id",
                    if_not_exists=True,
                    defaults={"attempts": 0, "transient": 0},
                )
                self.db.table("engagements").create_index(["status"], if_not_exists=True)
                self.db.table("rejects").create(
                    {
                        "manifest": str,
                        "row_number": int,
                        "external_id": str,
                        "status": str,
                        "reason": str,
                        "cells": str,
                        "run_id": int,
                        "updated_at": str,
                    },
                    pk=("manifest", "row_number"),
                    if_not_exists=True,
                )
                self.db.execute(
                    "CREATE INDEX IF NOT EXISTS rejects_external_id ON rejects (external_id)"
                )
                self.db.table("runs").create(
                    {
                        "id": int,
                        "command": str,
                        "manifest": str,
                        "options": str,
                        "pid": int,
                        "started_at": str,
                        "ended_at": str,
                        "seconds": float,
                        "outcome": str,
                        "exit_code": int,
                        "counts": str,
                    },
                    pk="id",
                    if_not_exists=True,
                )
                self.db.table("media_checks").create(
                    {"url": str, "ok": int, "detail": str, "checked_at": str},
                    pk="url",
                    if_not_exists=True,
                )
        except sqlite3.OperationalError as error:
            raise LedgerError(f"cannot write the ledger {self.path} ({error})") from error
        except sqlite3.DatabaseError as error:
            raise LedgerError(self._not_a_ledger(error)) from error

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the ledger for one run; a second run on it is refused, not queued."""
        if fcntl is None or self.readonly:
            yield
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            handle = lock_path.open("a+")
        except OSError as error:
            raise LedgerError(
                f"cannot create the lock file {lock_path} ({error.strerror})"
            ) from error
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LedgerError(
                f"another importer run (pid {holder}) is using the ledger {self.path}; "
                "wait for it to finish, or pass a different --ledger"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def close(self) -> None:
        """Checkpoint and close the database."""
        with contextlib.suppress(sqlite3.Error):
            self.db.conn.close()

    # -- runs ----------------------------------------------------------------------------

    def start_run(self, command: str, manifest: str | None, options: dict[str, Any]) -> int:
        """Record a run's start; the options must already be free of secrets."""
        with self.db.conn:
            cursor = self.db.execute(
                "INSERT INTO runs (command, manifest, options, pid, started_at, outcome) "
                "VALUES (?, ?, ?, ?, ?, 'running')",
                [command, manifest, json.dumps(options, default=str), os.getpid(), now_iso()],
            )
        return int(cursor.lastrowid or 0)

    def finish_run(
        self, run_id: int, outcome: str, exit_code: int, counts: dict[str, int], seconds: float
    ) -> None:
        """Record a run's end, outcome and counts."""
        with self.db.conn:
            self.db.execute(
                "UPDATE runs SET ended_at = ?, outcome = ?, exit_code = ?, counts = ?, seconds = ? "
                "WHERE id = ?",
                [now_iso(), outcome, exit_code, json.dumps(counts), round(seconds, 3), run_id],
            )

    def recent_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The last runs, newest first."""
        return list(self.db.query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", [limit]))

    # -- planning ------------------------------------------------------------------------

    def facts_for(self, external_ids: Iterable[str]) -> dict[str, LedgerFact]:
        """Ledger facts for a batch of external ids (absent ids are new)."""
        ids = list(dict.fromkeys(external_ids))
        facts: dict[str, LedgerFact] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(
                "SELECT external_id, status, transient, sent_hash, payload_hash, field_hashes, "
                f"contacts_hash, engagement_id FROM engagements WHERE external_id IN ({marks})",
                chunk,
            ):
                facts[row["external_id"]] = LedgerFact(
                    status=row["status"],
                    payload_hash=row["sent_hash"] or row["payload_hash"],
                    transient=bool(row["transient"]),
                    field_hashes=json.loads(row["field_hashes"] or "{}"),
                    contacts_hash=row["contacts_hash"],
                    engagement_id=row["engagement_id"],
                )
        return facts

    def drop_stale_rejects(self, manifest: str, run_id: int) -> None:
        """After a complete pass: rejects of this manifest that the run did not confirm."""
        with self.db.conn:
            self.db.execute(
                "DELETE FROM rejects WHERE manifest = ? AND run_id != ?", [manifest, run_id]
            )

    def add_rejects(self, rejects: list[Reject], run_id: int) -> None:
        """Record rows that will not be sent, with their cells for errors.csv."""
        if not rejects:
            return
        stamp = now_iso()
        with self.db.conn:
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO rejects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.manifest,
                        r.row_number,
                        r.external_id,
                        r.status,
                        r.reason,
                        json.dumps(r.cells, ensure_ascii=False),
                        run_id,
                        stamp,
                    )
                    for r in rejects
                ],
            )

    # -- sending -------------------------------------------------------------------------

    def mark_in_flight(
        self,
        external_id: str,
        manifest: str,
        row_number: int,
        payload_hash: str,
        run_id: int,
    ) -> None:
        """Committed before the request leaves: a crash then leaves evidence to resend."""
        stamp = now_iso()
        with self.db.conn:
            self.db.execute(
                "INSERT INTO engagements (external_id, manifest, row_number, status, transient, "
                "payload_hash, attempts, run_id, first_seen_at, sent_at, updated_at) "
                "VALUES (?, ?, ?, 'in_flight', 0, ?, 0, ?, ?, ?, ?) "
                "ON CONFLICT(external_id) DO UPDATE SET manifest = excluded.manifest, "
                "row_number = excluded.row_number, status = 'in_flight', transient = 0, "
                "payload_hash = excluded.payload_hash, run_id = excluded.run_id, "
                "sent_at = excluded.sent_at, updated_at = excluded.updated_at",
                [external_id, manifest, row_number, payload_hash, run_id, stamp, stamp, stamp],
            )

    def count_attempt(self, external_id: str) -> None:
        """One more request sent for this row (retries included)."""
        with self.db.conn:
            self.db.execute(
                "UPDATE engagements SET attempts = attempts + 1 WHERE external_id = ?",
                [external_id],
            )

    def record_success(
        self,
        external_id: str,
        *,
        created: bool,
        engagement_id: str,
        http_status: int,
        payload_hash: str,
        field_hashes: dict[str, str],
    ) -> None:
        """201 is ``created``, 200 is ``existing``; the engagement id is kept either way."""
        stamp = now_iso()
        with self.db.conn:
            self.db.execute(
                "UPDATE engagements SET status = ?, transient = 0, http_status = ?, "
                "engagement_id = ?, sent_hash = ?, payload_hash = ?, field_hashes = ?, "
                "error_message = NULL, error_detail = NULL, error_errors = NULL, "
                "request_id = NULL, cells = NULL, changed_fields = NULL, completed_at = ?, "
                "updated_at = ? "
                "WHERE external_id = ?",
                [
                    "created" if created else "existing",
                    http_status,
                    engagement_id,
                    payload_hash,
                    payload_hash,
                    json.dumps(field_hashes),
                    stamp,
                    stamp,
                    external_id,
                ],
            )

    def record_failure(
        self,
        external_id: str,
        *,
        message: str,
        transient: bool,
        http_status: int | None,
        detail: str | None,
        field_errors: list[dict[str, Any]],
        request_id: str | None,
        cells: dict[str, str],
    ) -> None:
        """A failed row keeps the server's words and its cells, for errors.csv."""
        stamp = now_iso()
        with self.db.conn:
            self.db.execute(
                "UPDATE engagements SET status = 'failed', transient = ?, http_status = ?, "
                "error_message = ?, error_detail = ?, error_errors = ?, request_id = ?, "
                "cells = ?, updated_at = ? WHERE external_id = ?",
                [
                    int(transient),
                    http_status,
                    message,
                    detail,
                    json.dumps(field_errors) if field_errors else None,
                    request_id,
                    json.dumps(cells, ensure_ascii=False),
                    stamp,
                    external_id,
                ],
            )

    def return_to_pending(self, external_id: str) -> None:
        """The request was never sent (the run stopped first): nothing to resolve later."""
        with self.db.conn:
            self.db.execute(
                "UPDATE engagements SET status = 'pending', updated_at = ? "
                "WHERE external_id = ? AND status = 'in_flight'",
                [now_iso(), external_id],
            )

    def note_changes(self, changed: dict[str, list[str]], unchanged: list[str]) -> None:
        """Remember which imported rows differ from the manifest now (for ``status``)."""
        with self.db.conn:
            self.db.conn.executemany(
                "UPDATE engagements SET changed_fields = ? WHERE external_id = ?",
                [(", ".join(fields), eid) for eid, fields in changed.items()],
            )
            self.db.conn.executemany(
                "UPDATE engagements SET changed_fields = NULL "
                "WHERE external_id = ? AND changed_fields IS NOT NULL",
                [(eid,) for eid in unchanged],
            )

    # -- after sending -------------------------------------------------------------------

    def record_contacts(self, external_id: str, contacts_hash: str) -> None:
        """The contact set now applied to the engagement."""
        stamp = now_iso()
        with self.db.conn:
            self.db.execute(
                "UPDATE engagements SET contacts_hash = ?, contacts_applied_at = ?, "
                "contacts_error = NULL, "
                "updated_at = ? WHERE external_id = ?",
                [contacts_hash, stamp, stamp, external_id],
            )

    def record_contacts_failure(self, external_id: str, message: str) -> None:
        """Replace contacts failed: kept for ``status``; the next run tries again."""
        with self.db.conn:
            self.db.execute(
                "UPDATE engagements SET contacts_error = ?, updated_at = ? WHERE external_id = ?",
                [message, now_iso(), external_id],
            )

    def contacts_failures(self, limit: int = 10) -> tuple[int, list[tuple[str, str]]]:
        """How many engagements still lack their contact set, and a few with the reason."""
        return self._flagged("contacts_error", limit)

    def _flagged(self, column: str, limit: int) -> tuple[int, list[tuple[str, str]]]:
        """Rows whose ``column`` is set: how many, and the first few (id, value)."""
        total = self.db.execute(
            f"SELECT COUNT(*) FROM engagements WHERE {column} IS NOT NULL"
        ).fetchone()[0]
        sample = [
            (row["external_id"], row[column])
            for row in self.db.query(
                f"SELECT external_id, {column} FROM engagements "
                f"WHERE {column} IS NOT NULL ORDER BY manifest, row_number LIMIT ?",
                [limit],
            )
        ]
        return int(total), sample

    def unfinished(self, manifest: str) -> dict[str, int]:
        """A manifest's rows still pending or in flight (after a stopped run)."""
        return {
            row["status"]: row["n"]
            for row in self.db.query(
                "SELECT status, COUNT(*) AS n FROM engagements WHERE manifest = ? "
                "AND status IN ('pending', 'in_flight') GROUP BY status",
                [manifest],
            )
        }

    def record_processing(self, external_id: str, processing_status: str, etag: str | None) -> None:
        """What ``verify`` saw, and when."""
        stamp = now_iso()
        with self.db.conn:
            self.db.execute(
                "UPDATE engagements SET processing_status = ?, etag = COALESCE(?, etag), "
                "processing_seen_at = ? WHERE external_id = ?",
                [processing_status, etag, stamp, external_id],
            )

    def media_check(self, url: str) -> dict[str, Any] | None:
        """The cached preflight result for a media URL, if any."""
        if url in self._media_memory:
            return self._media_memory[url]
        rows = list(self.db.query("SELECT * FROM media_checks WHERE url = ?", [url]))
        return rows[0] if rows else None

    def media_failures(self, urls: Iterable[str]) -> dict[str, str]:
        """Of these URLs, the ones whose preflight failed, with the reason."""
        failures = {}
        for url in dict.fromkeys(urls):
            result = self.media_check(url)
            if result is not None and not result["ok"]:
                failures[url] = result["detail"]
        return failures

    def record_media_check(self, url: str, ok: bool, detail: str) -> None:
        """Cache a preflight result with its time (in memory for a read-only ledger)."""
        if self.readonly:
            self._media_memory[url] = {
                "url": url,
                "ok": int(ok),
                "detail": detail,
                "checked_at": now_iso(),
            }
            return
        with self.db.conn:
            self.db.execute(
                "INSERT OR REPLACE INTO media_checks VALUES (?, ?, ?, ?)",
                [url, int(ok), detail, now_iso()],
            )

    # -- reading -------------------------------------------------------------------------

    def status_counts(self) -> dict[str, int]:
        """Rows by status across both tables; failed split into transient and permanent."""
        counts = dict.fromkeys(STATUSES, 0)
        for row in self.db.query("SELECT status, count(*) AS n FROM engagements GROUP BY status"):
            counts[row["status"]] = row["n"]
        for row in self.db.query(
            f"SELECT status, count(*) AS n FROM {CURRENT_REJECTS} GROUP BY status"
        ):
            counts[row["status"]] = counts.get(row["status"], 0) + row["n"]
        return counts

    def engagements(self, where: str = "1", params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
        """Engagement rows matching a SQL condition, in manifest order."""
        yield from self.db.query(
            f"SELECT * FROM engagements WHERE {where} ORDER BY manifest, row_number", list(params)
        )

    def error_records(self) -> Iterator[dict[str, Any]]:
        """Current rejects and failed rows together, in manifest order, straight from SQLite."""
        yield from self.db.query(
            "SELECT manifest, row_number, 0 AS kind, cells, status, reason AS message, "
            f"0 AS transient, NULL AS http_status FROM {CURRENT_REJECTS} "
            "WHERE status != 'skipped' "
            "UNION ALL SELECT manifest, row_number, 1 AS kind, cells, status, error_message, "
            "transient, http_status FROM engagements WHERE status = 'failed' "
            "ORDER BY manifest, row_number, kind"
        )

    def skipped_records(self) -> Iterator[dict[str, Any]]:
        """Current skipped rows (nothing to import), in manifest order."""
        yield from self.db.query(
            "SELECT manifest, row_number, external_id, reason, cells "
            f"FROM {CURRENT_REJECTS} WHERE status = 'skipped' ORDER BY manifest, row_number"
        )

    def start_index(self) -> None:
        """An empty scratch table of (external_id, row, payload hash) for this manifest."""
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS manifest_index "
            "(external_id TEXT, row_number INTEGER, payload_hash TEXT)"
        )
        self.db.execute("DELETE FROM temp.manifest_index")

    def index_rows(self, rows: list[tuple[str, int, str]]) -> None:
        """Add valid rows to the scratch table."""
        with self.db.conn:
            self.db.conn.executemany("INSERT INTO temp.manifest_index VALUES (?, ?, ?)", rows)

    def repeated_ids(self) -> Iterator[tuple[str, int, bool]]:
        """external_ids on more than one row: first row, and whether the payloads differ."""
        self.db.execute(
            "CREATE INDEX IF NOT EXISTS temp.manifest_index_id ON manifest_index (external_id)"
        )
        for row in self.db.query(
            "SELECT external_id, MIN(row_number) AS first_row, "
            "COUNT(DISTINCT payload_hash) > 1 AS conflicting FROM temp.manifest_index "
            "GROUP BY external_id HAVING COUNT(*) > 1"
        ):
            yield row["external_id"], row["first_row"], bool(row["conflicting"])

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

    def index_summary(
        self, conflicting: Iterable[str] = (), *, only_failed: bool = False
    ) -> dict[str, int]:
        """Before sending: how many indexed ids are already final, and how many remain.

        Conflicting duplicates are never sent, so they are not counted; with
        ``only_failed`` (retry) only rows that failed transiently are to send.
        """
        counts = {"already imported": 0, "failed before": 0, "to send": 0}
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS summary_skip (external_id TEXT)")
        self.db.execute("DELETE FROM temp.summary_skip")
        with self.db.conn:
            self.db.conn.executemany(
                "INSERT INTO temp.summary_skip VALUES (?)", [(i,) for i in conflicting]
            )
        to_send = "e.status = 'failed'" if only_failed else "1"
        for row in self.db.query(
            "SELECT CASE WHEN e.status IN ('created', 'existing') THEN 'already imported' "
            "WHEN e.status = 'failed' AND e.transient = 0 THEN 'failed before' "
            f"WHEN {to_send} THEN 'to send' ELSE 'other' END AS kind, "
            "COUNT(DISTINCT i.external_id) AS n "
            "FROM temp.manifest_index i LEFT JOIN engagements e USING (external_id) "
            "WHERE i.external_id NOT IN (SELECT external_id FROM temp.summary_skip) "
            "GROUP BY kind"
        ):
            if row["kind"] in counts:
                counts[row["kind"]] = row["n"]
        return counts

    # -- for status, retry -------------------------------------------------------------------

    def failed_manifests(self, include_permanent: bool) -> list[str]:
        """Manifests that have failed rows worth re-sending."""
        condition = "status = 'failed'" + ("" if include_permanent else " AND transient = 1")
        return [
            row["manifest"]
            for row in self.db.query(
                f"SELECT DISTINCT manifest FROM engagements WHERE {condition} ORDER BY manifest"
            )
        ]

    def last_options(self, manifest: str) -> dict[str, Any]:
        """The options of the last `run` of a manifest (retry and sync-contacts record fewer)."""
        for row in self.db.query(
            "SELECT options FROM runs WHERE manifest = ? AND command = 'run' "
            "ORDER BY id DESC LIMIT 1",
            [manifest],
        ):
            return dict(json.loads(row["options"] or "{}"))
        return {}

    def top_errors(self, limit: int = 10) -> list[tuple[str, int]]:
        """The most frequent failure and rejection messages, with counts."""
        rows = self.db.query(
            "SELECT message, SUM(n) AS n FROM ("
            " SELECT COALESCE(error_message, '(no message)') AS message, COUNT(*) AS n"
            " FROM engagements WHERE status = 'failed' GROUP BY message"
            f" UNION ALL SELECT reason AS message, COUNT(*) AS n FROM {CURRENT_REJECTS}"
            " GROUP BY reason"
            ") GROUP BY message ORDER BY n DESC, message LIMIT ?",
            [limit],
        )
        return [(row["message"], row["n"]) for row in rows]

    def changed_rows(self, limit: int = 10) -> tuple[int, list[tuple[str, str]]]:
        """How many imported rows differ from their manifest now, and a few of them."""
        return self._flagged("changed_fields", limit)

    def failed_split(self) -> dict[str, int]:
        """Failed rows: transient (retried later) and permanent."""
        counts = {"transient": 0, "permanent": 0}
        for row in self.db.query(
            "SELECT transient, COUNT(*) AS n FROM engagements WHERE status = 'failed' "
            "GROUP BY transient"
        ):
            counts["transient" if row["transient"] else "permanent"] = row["n"]
        return counts

    def processing_counts(self) -> dict[str, int]:
        """processing_status as last seen by ``verify``."""
        return {
            row["s"]: row["n"]
            for row in self.db.query(
                "SELECT COALESCE(processing_status, 'not verified') AS s, COUNT(*) AS n "
                "FROM engagements WHERE status IN ('created', 'existing') GROUP BY s"
            )
        }
