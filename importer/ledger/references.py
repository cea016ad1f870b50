"""Reference lookups per run: what the target answered for a value naming one of its objects.

DevRev's ``parent`` may be a CRM account id; the target's ``accounts.list`` tells which
account(s) hold it as an external reference. Each distinct value is asked about once per
run, and the answer is kept here (several ids: ambiguous; none: unknown). The table is
made by the first answer kept: a ledger that never needed one (AskElephant) has none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from importer.ledger.db import LedgerDB, now_iso


class ReferenceLookups(LedgerDB):
    """The ``reference_lookups`` table."""

    def reference_answers(
        self, run_id: int, field: str, values: Iterable[str]
    ) -> dict[str, list[str]]:
        """Of these values, those this run already looked up, with the ids found for each."""
        wanted = list(dict.fromkeys(values))
        answers: dict[str, list[str]] = {}
        if not self.db.table("reference_lookups").exists():
            return answers
        for start in range(0, len(wanted), 500):  # within SQLite's bound on parameters
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self.db.execute(
                "SELECT value, target_ids FROM reference_lookups "
                f"WHERE run_id = ? AND field = ? AND value IN ({marks})",
                [run_id, field, *chunk],
            ).fetchall()
            answers.update({value: json.loads(ids) for value, ids in rows})
        return answers

    def record_reference_answers(
        self, run_id: int, field: str, answers: Mapping[str, list[str]]
    ) -> None:
        """Keep what the target answered for each value (an empty list: nothing held it)."""
        stamp = now_iso()
        with self.db.conn:
            self.db.table("reference_lookups").create(
                {"run_id": int, "field": str, "value": str, "target_ids": str, "looked_up_at": str},
                pk=("run_id", "field", "value"),
                if_not_exists=True,
            )
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO reference_lookups VALUES (?, ?, ?, ?, ?)",
                [(run_id, field, value, json.dumps(ids), stamp) for value, ids in answers.items()],
            )
