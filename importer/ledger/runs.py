"""The runs table: each command's start, options, end, outcome and counts."""

from __future__ import annotations

import json
import os
from typing import Any

from importer.ledger.db import LedgerDB, now_iso


class Runs(LedgerDB):
    """Recording runs, and reading them back for ``status`` and ``retry``."""

    def start_run(
        self,
        command: str,
        manifest: str | None,
        options: dict[str, Any],
        settings: dict[str, Any] | None = None,
    ) -> int:
        """Record a run's start: the options as given (free of secrets, for people) and the
        settings' stored form (for ``retry``).

        Called under the run lock, so a run still marked ``running`` ended without saying
        so (killed, or its disk was full): it is marked ``stopped`` first.
        """
        with self.db.conn:
            # Its last write to the ledger is when it ended, near enough (a killed run's
            # elapsed time read 0.0 s). Runs hold the ledger one at a time: every write
            # since its start is its own.
            self.db.execute(
                "UPDATE runs SET outcome = 'stopped', ended_at = (SELECT MAX(t) FROM ("
                "SELECT MAX(updated_at) AS t FROM engagements WHERE updated_at >= "
                "runs.started_at UNION ALL SELECT MAX(updated_at) FROM rejects "
                "WHERE updated_at >= runs.started_at)) WHERE outcome = 'running'"
            )
            self.db.execute(
                "UPDATE runs SET seconds = ROUND((julianday(ended_at) - julianday(started_at)) "
                "* 86400, 3) WHERE outcome = 'stopped' AND seconds IS NULL AND ended_at IS NOT NULL"
            )
            cursor = self.db.execute(
                "INSERT INTO runs (command, manifest, options, pid, started_at, outcome, settings) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?)",
                [
                    command,
                    manifest,
                    json.dumps(options, default=str),
                    os.getpid(),
                    now_iso(),
                    json.dumps(settings) if settings is not None else None,
                ],
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

    def last_destination(self) -> tuple[int, str | None, str | None] | None:
        """(run id, target, base URL) of the last run that sent; None before any.

        The target is the ledger's own; the base URL is the one the run sent to, however
        it was given (a run recorded before it was kept says None).
        """
        runs = self.recent_runs(1)
        if not runs:
            return None
        try:
            options = json.loads(runs[0]["options"] or "{}")
        except (TypeError, ValueError):
            options = {}
        base_url = options.get("base_url") if isinstance(options, dict) else None
        row = self.db.execute("SELECT value FROM meta WHERE key = 'target'").fetchone()
        return (
            int(runs[0]["id"]),
            str(row[0]) if row else None,
            str(base_url) if isinstance(base_url, str) and base_url else None,
        )

    def last_settings(self, manifest: str) -> dict[str, Any]:
        """The stored settings of the last `run` of a manifest (retry and sync-contacts
        record fewer); for a run recorded before settings were, its options."""
        stored = "settings" if "settings" in self.db.table("runs").columns_dict else "NULL"
        for row in self.db.query(
            f"SELECT options, {stored} AS settings FROM runs WHERE manifest = ? "
            "AND command = 'run' ORDER BY id DESC LIMIT 1",
            [manifest],
        ):
            return dict(json.loads(row["settings"] or row["options"] or "{}"))
        return {}
