"""The rejects table: manifest rows never sent (invalid or conflicting duplicates)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from importer.ledger.db import IMPORTED, LedgerDB, now_iso
from importer.outcomes import Reject

# Rejected rows still worth fixing: not imported or sent since, not rejected again later.
CURRENT_REJECTS = (
    "(SELECT r.* FROM rejects r WHERE NOT EXISTS (SELECT 1 FROM engagements e"
    f" WHERE e.external_id = r.external_id AND (e.status IN {IMPORTED}"
    " OR e.run_id > r.run_id))"
    " AND NOT EXISTS (SELECT 1 FROM rejects later"
    " WHERE later.external_id = r.external_id AND later.run_id > r.run_id))"
)


class Rejects(LedgerDB):
    """Keeping the rows that will not be sent, with their cells for ``errors.csv``."""

    def add_rejects(self, rejects: list[Reject], run_id: int) -> None:
        """Record rows that will not be sent, with their cells for errors.csv."""
        if not rejects:
            return
        stamp = now_iso()
        with self.db.conn:
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO rejects (manifest, row_number, external_id, status, "
                "reason, cells, run_id, updated_at, rule) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                        r.rule or None,
                    )
                    for r in rejects
                ],
            )

    def rejects_after(
        self, manifest: str, run_id: int, row_number: int
    ) -> Iterator[tuple[int, str, str, str]]:
        """A run's rejects of a manifest after a row (what a stop left unplanned), in file
        order: (row number, external_id, status, reason)."""
        for row in self.db.query(
            "SELECT row_number, external_id, status, reason FROM rejects WHERE manifest = ? "
            "AND run_id = ? AND row_number > ? ORDER BY row_number",
            [manifest, run_id, row_number],
        ):
            yield row["row_number"], row["external_id"] or "", row["status"], row["reason"]

    def drop_stale_rejects(self, manifest: str, run_id: int) -> None:
        """After a complete pass: rejects of this manifest that the run did not confirm."""
        with self.db.conn:
            self.db.execute(
                "DELETE FROM rejects WHERE manifest = ? AND run_id != ?", [manifest, run_id]
            )

    def rejected_external_ids(self) -> list[str]:
        """Every external id a rejected row carries (invalid or duplicate), for ``reconcile``."""
        return [
            row["external_id"]
            for row in self.db.query(
                "SELECT DISTINCT external_id FROM rejects WHERE COALESCE(external_id, '') != '' "
                "ORDER BY manifest, row_number"
            )
        ]
