"""Named read queries: what planning, ``status``, ``report`` and ``verify`` ask the ledger.

Callers name the question; the SQL stays here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from importer.ledger.db import (
    IMPORTED,
    NOT_SENT,
    STATUSES,
    UNFINISHED,
    ZONE_PREFIX,
    LedgerDB,
    sql_list,
)
from importer.ledger.rejects import CURRENT_REJECTS
from importer.outcomes import FINAL_SUCCESS, LedgerFact, Status

IS_IMPORTED = f"status IN {sql_list(FINAL_SUCCESS)}"
PROCESSING_FAILED = ("FAILED", "ERROR", "ERRORED", "CANCELLED", "CANCELED", "NOT_FOUND")
"""processing_status values ``verify`` counts as failed (see ``importer.report.verify``)."""


class Queries(LedgerDB):
    """Reads of the ``engagements`` and ``rejects`` tables."""

    def facts_for(self, external_ids: Iterable[str]) -> dict[str, LedgerFact]:
        """Ledger facts for a batch of external ids (absent ids are new)."""
        facts: dict[str, LedgerFact] = {}
        if self.reads_no_engagements:
            return facts
        ids = list(dict.fromkeys(external_ids))
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

    @functools.cached_property
    def reads_no_engagements(self) -> bool:
        """A ledger read only (a plan) that held no engagement when first asked: every batch
        of a plan of a first import would ask it in vain (a third of a second at a million
        rows). A plan reads the ledger as it was when it began."""
        return self.readonly and not self.db.execute("SELECT 1 FROM engagements LIMIT 1").fetchone()

    def zones_read(self, prefixes: Iterable[str] = ()) -> list[tuple[str, str, int, str]]:
        """(prefix, zone, rows, an external_id) for rows whose time without an offset was read
        in a zone, by external_id prefix, the zone of the latest sent first; only
        ``prefixes`` when some are given."""
        wanted = list(dict.fromkeys(prefixes))
        rows = self.db.query(
            f"SELECT {ZONE_PREFIX} AS prefix, "
            "timezone, COUNT(*) AS n, MIN(external_id) AS example, MAX(sent_at) AS last "
            "FROM engagements WHERE timezone IS NOT NULL AND source_id IS NOT NULL "
            "GROUP BY prefix, timezone ORDER BY last DESC"
        )
        return [
            (row["prefix"], row["timezone"], row["n"], row["example"])
            for row in rows
            if not wanted or row["prefix"] in wanted
        ]

    def unfinished(self, manifest: str, up_to_row: int | None = None) -> dict[str, int]:
        """A manifest's rows still pending or in flight (after a stopped run), up to a row."""
        return {
            row["status"]: row["n"]
            for row in self.db.query(
                "SELECT status, COUNT(*) AS n FROM engagements WHERE manifest = ? "
                f"AND status IN {NOT_SENT} AND row_number <= ? GROUP BY status",
                [manifest, up_to_row if up_to_row is not None else 2**62],
            )
        }

    def failed_manifests(self, include_permanent: bool) -> list[str]:
        """Manifests with rows worth re-sending: failed, in flight, or left pending."""
        condition = (
            f"status IN {UNFINISHED}"
            if include_permanent
            else f"status IN {NOT_SENT} OR (status = '{Status.FAILED}' AND transient = 1)"
        )
        return [
            row["manifest"]
            for row in self.db.query(
                f"SELECT DISTINCT manifest FROM engagements WHERE {condition} ORDER BY manifest"
            )
        ]

    def rows_not_in(self) -> int:
        """Rows the ledger knows that are not in AskElephant and should be (skipped are not)."""
        counts = self.status_counts()
        return sum(
            n for status, n in counts.items() if status not in (*FINAL_SUCCESS, Status.SKIPPED)
        )

    def status_counts(self) -> dict[str, int]:
        """Rows by status across both tables; failed split into transient and permanent."""
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for row in self.db.query("SELECT status, count(*) AS n FROM engagements GROUP BY status"):
            counts[row["status"]] = row["n"]
        for row in self.db.query(
            f"SELECT status, count(*) AS n FROM {CURRENT_REJECTS} GROUP BY status"
        ):
            counts[row["status"]] = counts.get(row["status"], 0) + row["n"]
        return counts

    def found_by_counts(self) -> dict[str, int]:
        """Imported rows by the check that found them (``create``, ``lookup``)."""
        if "found_by" not in self.db.table("engagements").columns_dict:
            return {}  # a ledger older than found_by, opened read-only
        rows = self.db.query(
            "SELECT found_by, count(*) AS n FROM engagements "
            f"WHERE {IS_IMPORTED} AND found_by IS NOT NULL GROUP BY found_by"
        )
        return {row["found_by"]: row["n"] for row in rows}

    def imported_rows(self) -> Iterator[dict[str, Any]]:
        """Engagements in AskElephant (created or existing), in manifest order."""
        return self._engagements(IS_IMPORTED)

    def verifiable_rows(self) -> Iterator[dict[str, Any]]:
        """Imported engagements whose id is known (what ``verify`` can GET)."""
        return self._engagements(f"{IS_IMPORTED} AND engagement_id IS NOT NULL")

    def known_rows(self) -> Iterator[dict[str, Any]]:
        """Every row the ledger has seen from a manifest, whatever its status (reconcile)."""
        return self._engagements("1")

    def _engagements(self, where: str) -> Iterator[dict[str, Any]]:
        """Engagement rows matching one of the conditions above, in manifest order."""
        yield from self.db.query(
            f"SELECT * FROM engagements WHERE {where} ORDER BY manifest, row_number"
        )

    def error_records(self, manifest: str | None = None) -> Iterator[dict[str, Any]]:
        """Every row that needs attention, in manifest order, straight from SQLite: current
        rejects, failed rows, rows a stopped run left pending or in flight, and imported
        rows whose processing failed or whose contacts could not be applied.

        ``kind``: 0 rejected, 1 failed, 2 unfinished, 3 imported (``message`` then holds
        the processing status and ``contacts_error`` the contacts problem), 4 imported but
        held by the server with other values than the manifest's. ``cells`` is
        NULL where the ledger did not keep them (the report reads them from the manifest).
        """
        failed = ", ".join(f"'{s}'" for s in PROCESSING_FAILED)
        only = "WHERE manifest = :manifest" if manifest is not None else ""
        yield from self.db.query(
            "SELECT * FROM ("
            "SELECT manifest, row_number, 0 AS kind, cells, status, reason AS message, "
            "0 AS transient, NULL AS http_status, NULL AS contacts_error "
            f"FROM {CURRENT_REJECTS} WHERE status != '{Status.SKIPPED}' "
            "UNION ALL SELECT manifest, row_number, 1 AS kind, cells, status, error_message, "
            f"transient, http_status, NULL FROM engagements WHERE status = '{Status.FAILED}' "
            "UNION ALL SELECT manifest, row_number, 2 AS kind, cells, status, NULL, 0, NULL, "
            f"NULL FROM engagements WHERE status IN {NOT_SENT} "
            "UNION ALL SELECT manifest, row_number, 3 AS kind, NULL, status, "
            f"CASE WHEN upper(processing_status) IN ({failed}) THEN processing_status END, "
            f"0, NULL, contacts_error FROM engagements WHERE status IN {IMPORTED} "
            f"AND (upper(processing_status) IN ({failed}) OR contacts_error IS NOT NULL) "
            "UNION ALL SELECT manifest, row_number, 4 AS kind, NULL, status, error_message, 0, "
            f"NULL, NULL FROM engagements WHERE status IN {IMPORTED} "
            "AND changed_fields IS NOT NULL AND error_message IS NOT NULL"
            f") {only} ORDER BY manifest, row_number, kind",
            {"manifest": manifest},
        )

    def known_manifests(self) -> list[str]:
        """Every manifest the ledger has rows of, sorted."""
        return [
            row["manifest"]
            for row in self.db.query(
                "SELECT manifest FROM engagements UNION SELECT manifest FROM rejects ORDER BY 1"
            )
            if row["manifest"]
        ]

    def error_manifests(self) -> list[str]:
        """The manifests that have rows in ``error_records``."""
        manifests: list[str] = []
        for row in self.error_records():
            if not manifests or manifests[-1] != row["manifest"]:
                manifests.append(row["manifest"])
        return manifests

    def skipped_records(self) -> Iterator[dict[str, Any]]:
        """Current skipped rows (nothing to import), in manifest order."""
        yield from self.db.query(
            "SELECT manifest, row_number, external_id, reason, cells "
            f"FROM {CURRENT_REJECTS} WHERE status = '{Status.SKIPPED}' "
            "ORDER BY manifest, row_number"
        )

    def start_coverage(self) -> None:
        """An empty scratch table of (external_id, month, imported): ``summary.md``'s
        coverage, counted once per external_id in the month of its first manifest row."""
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS coverage "
            "(external_id TEXT PRIMARY KEY, month TEXT, imported INTEGER)"
        )
        self.db.execute("DELETE FROM temp.coverage")

    def add_coverage(self, rows: Iterable[tuple[str, str, int]]) -> None:
        """(external_id, month, imported) rows; an external_id already counted is kept."""
        with self.db.conn:
            self.db.conn.executemany("INSERT OR IGNORE INTO temp.coverage VALUES (?, ?, ?)", rows)

    def coverage_counts(self) -> dict[str, tuple[int, int]]:
        """Month -> (rows, rows imported) of the coverage table."""
        return {
            found["month"]: (found["n"], found["imported"] or 0)
            for found in self.db.query(
                "SELECT month, COUNT(*) AS n, SUM(imported) AS imported FROM temp.coverage "
                "GROUP BY month"
            )
        }

    def error_tallies(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Problems counted by rule (rejected rows) and by the server's answer (failed rows),
        each with its first row: ``report.attention.top_errors`` groups them for people."""
        # SQLite takes the bare columns of a MIN() aggregate from the row holding the minimum.
        rejected = self.db.query(
            "SELECT COALESCE(rule, reason) AS rule, COUNT(*) AS n, MIN(row_number) AS first_row,"
            f" reason FROM {CURRENT_REJECTS} WHERE status != '{Status.SKIPPED}' GROUP BY 1"
        )
        failed = self.db.query(
            "SELECT http_status, error_errors, COUNT(*) AS n, MIN(row_number) AS first_row, "
            f"error_message FROM engagements WHERE status = '{Status.FAILED}' "
            "GROUP BY http_status, error_errors, "
            "CASE WHEN http_status IS NULL THEN error_message END"
        )
        return list(rejected), list(failed)

    def changed_rows(self, limit: int = 10) -> tuple[int, list[tuple[str, str]]]:
        """How many imported rows differ from their manifest now, and a few of them."""
        return self._flagged("changed_fields", limit)

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

    def failed_split(self) -> dict[str, int]:
        """Failed rows: transient (retried later) and permanent."""
        counts = {"transient": 0, "permanent": 0}
        for row in self.db.query(
            f"SELECT transient, COUNT(*) AS n FROM engagements WHERE status = '{Status.FAILED}' "
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
                f"FROM engagements WHERE status IN {IMPORTED} GROUP BY s"
            )
        }
