"""Named read queries: what planning, ``status``, ``report`` and ``verify`` ask the ledger.

Callers name the question; the SQL stays here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from importer.ledger.db import STATUSES, UNFINISHED, LedgerDB, sql_list
from importer.ledger.rejects import CURRENT_REJECTS
from importer.outcomes import FINAL_SUCCESS, LedgerFact, Status
from importer.report.attention import ErrorGroup, group_errors

IMPORTED = f"status IN {sql_list(FINAL_SUCCESS)}"
PROCESSING_FAILED = ("FAILED", "ERROR", "ERRORED", "CANCELLED", "CANCELED", "NOT_FOUND")
"""processing_status values ``verify`` counts as failed (see ``importer.report.verify``)."""


class Queries(LedgerDB):
    """Reads of the ``engagements`` and ``rejects`` tables."""

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

    def unfinished(self, manifest: str, up_to_row: int | None = None) -> dict[str, int]:
        """A manifest's rows still pending or in flight (after a stopped run), up to a row."""
        return {
            row["status"]: row["n"]
            for row in self.db.query(
                "SELECT status, COUNT(*) AS n FROM engagements WHERE manifest = ? "
                "AND status IN ('pending', 'in_flight') AND row_number <= ? GROUP BY status",
                [manifest, up_to_row if up_to_row is not None else 2**62],
            )
        }

    def failed_manifests(self, include_permanent: bool) -> list[str]:
        """Manifests with rows worth re-sending: failed, in flight, or left pending."""
        condition = (
            f"status IN {UNFINISHED}"
            if include_permanent
            else "status IN ('in_flight', 'pending') OR (status = 'failed' AND transient = 1)"
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
            f"WHERE {IMPORTED} AND found_by IS NOT NULL GROUP BY found_by"
        )
        return {row["found_by"]: row["n"] for row in rows}

    def imported_rows(self) -> Iterator[dict[str, Any]]:
        """Engagements in AskElephant (created or existing), in manifest order."""
        return self._engagements(IMPORTED)

    def verifiable_rows(self) -> Iterator[dict[str, Any]]:
        """Imported engagements whose id is known (what ``verify`` can GET)."""
        return self._engagements(f"{IMPORTED} AND engagement_id IS NOT NULL")

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
            f"FROM {CURRENT_REJECTS} WHERE status != 'skipped' "
            "UNION ALL SELECT manifest, row_number, 1 AS kind, cells, status, error_message, "
            "transient, http_status, NULL FROM engagements WHERE status = 'failed' "
            "UNION ALL SELECT manifest, row_number, 2 AS kind, cells, status, NULL, 0, NULL, "
            "NULL FROM engagements WHERE status IN ('pending', 'in_flight') "
            "UNION ALL SELECT manifest, row_number, 3 AS kind, NULL, status, "
            f"CASE WHEN upper(processing_status) IN ({failed}) THEN processing_status END, "
            "0, NULL, contacts_error FROM engagements WHERE status IN ('created', 'existing') "
            f"AND (upper(processing_status) IN ({failed}) OR contacts_error IS NOT NULL) "
            "UNION ALL SELECT manifest, row_number, 4 AS kind, NULL, status, error_message, 0, "
            "NULL, NULL FROM engagements WHERE status IN ('created', 'existing') "
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
            f"FROM {CURRENT_REJECTS} WHERE status = 'skipped' ORDER BY manifest, row_number"
        )

    def top_errors(self, limit: int = 10) -> list[ErrorGroup]:
        """The most frequent problems, grouped by rule and column (or the server's answer)."""
        # SQLite takes the bare columns of a MIN() aggregate from the row holding the minimum.
        rejected = self.db.query(
            "SELECT COALESCE(rule, reason) AS rule, COUNT(*) AS n, MIN(row_number) AS first_row,"
            f" reason FROM {CURRENT_REJECTS} WHERE status != 'skipped' GROUP BY 1"
        )
        failed = self.db.query(
            "SELECT http_status, error_errors, COUNT(*) AS n, MIN(row_number) AS first_row, "
            "error_message FROM engagements WHERE status = 'failed' "
            "GROUP BY http_status, error_errors, "
            "CASE WHEN http_status IS NULL THEN error_message END"
        )
        return group_errors(rejected, failed, limit)

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
