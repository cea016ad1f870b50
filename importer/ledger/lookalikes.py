"""Lookalike ids: external_ids that differ as text but are equal under Unicode NFKC.

``é`` as one character (NFC) or as ``e`` and a combining accent (NFD), a full-width ``１``
and ``1``, the ligature ``ﬁ`` and ``fi``: the same id to a person, and maybe to the API
(a server that normalises text would take the second for the first), two ids to the
ledger. Case is not folded: CRM ids such as Salesforce's differ by case.

Only ids with a character beyond ASCII can have another form (ASCII text is its own
NFKC form), so only those are normalised, in SQL over pass one's index
(``temp.manifest_index``) and the ledger's sent rows: memory stays flat.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

from importer.ledger.db import BEYOND_ASCII, LedgerDB
from importer.outcomes import Status

NOT_ASCII = BEYOND_ASCII
IS_ASCII = "length(CAST({0} AS BLOB)) = length({0})"


def nfkc(text: str | None) -> str | None:
    """The NFKC form of ``text`` (None stays None), as SQL's ``nfkc()``."""
    return None if text is None else unicodedata.normalize("NFKC", text)


class Lookalikes(LedgerDB):
    """Lookalike ids between the manifest being read and the ledger."""

    def sends_ids_beyond_ascii(self) -> bool:
        """Whether the ledger holds a sent id beyond ASCII: only such an id can be a
        lookalike of a manifest's ids when those are all ASCII."""
        return bool(
            self.db.execute(
                f"SELECT 1 FROM engagements WHERE status != '{Status.PENDING}' "
                f"AND {NOT_ASCII.format('external_id')} LIMIT 1"
            ).fetchone()
        )

    def lookalike_ids(self, index_table: str) -> Iterator[tuple[str, str, int | None]]:
        """``(external_id, lookalike, its row)`` for every id of the manifest's index (pass
        one's, or the table it was kept in) that another id, different as text, equals under
        NFKC: one of the manifest (its first row) or one the ledger holds as sent (row None).
        In the manifest's row order."""
        self.db.conn.create_function("nfkc", 1, nfkc, deterministic=True)
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS id_keys "
            "(id_key TEXT, external_id TEXT, row_number INTEGER)"
        )
        with self.db.conn:
            self.db.execute("DELETE FROM temp.id_keys")
            # Ids beyond ASCII: the manifest's (with their first row), the ledger's sent ones.
            self.db.execute(
                "INSERT INTO temp.id_keys SELECT nfkc(external_id), external_id, "
                f"MIN(row_number) FROM {index_table} WHERE {NOT_ASCII.format('external_id')}"
                " GROUP BY external_id"
            )
            self.db.execute(
                "INSERT INTO temp.id_keys SELECT nfkc(external_id), external_id, NULL "
                f"FROM engagements WHERE status != '{Status.PENDING}' "
                f"AND {NOT_ASCII.format('external_id')}"
            )
            self.db.execute("CREATE INDEX IF NOT EXISTS temp.id_keys_key ON id_keys (id_key)")
            # ASCII ids that are some such id's NFKC form (a full-width id's plain digits).
            self.db.execute(
                "INSERT INTO temp.id_keys SELECT external_id, external_id, MIN(row_number) "
                f"FROM {index_table} WHERE {IS_ASCII.format('external_id')} "
                "AND external_id IN (SELECT id_key FROM temp.id_keys) GROUP BY external_id"
            )
            self.db.execute(
                "INSERT INTO temp.id_keys SELECT external_id, external_id, NULL FROM engagements "
                f"WHERE status != '{Status.PENDING}' AND {IS_ASCII.format('external_id')} "
                "AND external_id IN (SELECT id_key FROM temp.id_keys)"
            )
        for row in self.db.query(
            "SELECT a.external_id AS external_id, b.external_id AS other, "
            "b.row_number AS other_row FROM temp.id_keys a JOIN temp.id_keys b "
            "ON b.id_key = a.id_key AND b.external_id != a.external_id "
            "WHERE a.row_number IS NOT NULL "
            "ORDER BY a.row_number, b.row_number IS NULL, b.row_number"
        ):
            yield row["external_id"], row["other"], row["other_row"]
